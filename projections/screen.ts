import type { KafkaMessage } from 'kafkajs';
import { SessionOwners } from '../core/session-owners';
import type { Pool } from '../core/db';
import type { Admission } from '../core/reactor';
import { VigilError, isVigilError } from '../core/errors';
import type { Refusal } from '../core/dlq';
import type { AvroSerde } from '../core/serde';
import { recordRefusal, ruleError, type TsWindow } from '../schemas/rules';
import type { TopicKey } from '../schemas/catalogue';
import { isExternalInput } from '../schemas/topics';

/** A decoded record the screen refused, with the error it is dead-lettered with. */
export interface Refused<R> {
  record: R;
  err: VigilError;
}

/**
 * Screening before apply (issue 11, items 1 and 3), shared by the projection runners and the jobs
 * trigger: a record is applied only when
 * 1. it keeps the rule table (schemas/rules.ts), else `RULE_VIOLATION` (reason `rule_violation`);
 * 2. on a topic written from outside (LogAppendTime, schemas/topics.ts) and with `time` given, its
 *    `ts` lies in the accepted window around the record's append time, else `TS_OUT_OF_WINDOW`
 *    (`ts_out_of_window`), as the processor decides;
 * 3. its tenant owns its session (core/session-owners.ts), else `TENANT_MISMATCH` (`tenant_mismatch`).
 * Ownership is claimed for the whole batch in one call (the first tenant to name an unclaimed session
 * owns it; within a batch, the first record in offset order), autocommitted apart from the batch's
 * transaction: a claim is never undone, so every consumer and every replay decides the same way.
 * Records refused by a rule claim nothing. Database errors of the claim are retriable (thrown).
 */
export async function screen<R>(
  owners: Pick<SessionOwners, 'claim'>,
  key: TopicKey,
  records: readonly R[],
  valueOf: (r: R) => unknown,
  time?: { window: TsWindow; appendTsOf: (r: R) => number },
): Promise<{ good: R[]; refused: Refused<R>[] }> {
  const windowed = time !== undefined && isExternalInput(key);
  const refused: Refused<R>[] = [];
  const ruled: { record: R; session_id: string; tenant_id: string }[] = [];
  for (const record of records) {
    const value = valueOf(record);
    // The rule table, and on topics written from outside the ts window around the append time.
    const err = windowed ? recordRefusal(key, value, time.appendTsOf(record), time.window) : ruleError(key, value);
    if (err) {
      refused.push({ record, err });
      continue;
    }
    const { session_id, tenant_id } = value as { session_id?: unknown; tenant_id?: unknown };
    if (typeof session_id !== 'string' || typeof tenant_id !== 'string') {
      // Every topic's schema requires both; a schema that ever made them optional must not skip the owner check.
      refused.push({ record, err: new VigilError('RULE_VIOLATION', `${key}: session_id and tenant_id are required`) });
      continue;
    }
    ruled.push({ record, session_id, tenant_id });
  }
  if (ruled.length === 0) return { good: [], refused };
  const owner = await owners.claim(ruled);
  const good: R[] = [];
  for (const r of ruled) {
    if (owner.get(r.session_id) === r.tenant_id) good.push(r.record);
    else {
      refused.push({
        record: r.record,
        err: new VigilError(
          'TENANT_MISMATCH',
          `session ${r.session_id} is owned by another tenant than ${r.tenant_id}: the record never touches it`,
          { details: { session_id: r.session_id, tenant_id: r.tenant_id } },
        ),
      });
    }
  }
  return { good, refused };
}

/** A record that passed decoding and the screen, with the Kafka message it came from. */
type Admitted = Admission['good'][number];

/**
 * The step every projection consumer (PostgreSQL and Redis runners, jobs trigger) and the rebuild
 * take before applying a batch: decode each message (undecodable: refused in phase `decode`), then
 * `screen` (refused in phase `validate`), the ts window against each message's append time. Errors
 * that may pass on a retry (registry, database) are thrown: the caller's batch is fetched again.
 */
export async function admit(
  deps: { serde: AvroSerde; owners: Pick<SessionOwners, 'claim'>; tsWindow?: TsWindow },
  key: TopicKey,
  messages: readonly KafkaMessage[],
): Promise<Admission> {
  const decoded: Admitted[] = [];
  const refused: Refusal[] = [];
  for (const message of messages) {
    try {
      const { value } = deps.serde.decodeKnown(message.value) ?? (await deps.serde.decode(message.value));
      decoded.push({ message, value });
    } catch (err) {
      if (!isVigilError(err) || err.retriable) throw err;
      refused.push({ message, phase: 'decode', err });
    }
  }
  const screened = await screen(
    deps.owners,
    key,
    decoded,
    (r) => r.value,
    deps.tsWindow && { window: deps.tsWindow, appendTsOf: (r) => Number(r.message.timestamp) },
  );
  for (const r of screened.refused) refused.push({ message: r.record.message, phase: 'validate', err: r.err });
  return { good: screened.good, refused };
}

/**
 * `admit` bound to a consumer's dependencies, as core/reactor.ts takes it: the serde, the session
 * owners (one cache per consumer, claims in PostgreSQL) and the ts window.
 */
export function admitWith(deps: { serde: AvroSerde; pool: Pool; tsWindow?: TsWindow }) {
  const screening = { serde: deps.serde, owners: new SessionOwners(deps.pool), tsWindow: deps.tsWindow };
  return (key: TopicKey, messages: readonly KafkaMessage[]): Promise<Admission> => admit(screening, key, messages);
}
