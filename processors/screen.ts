import { VigilError } from '../core/errors';
import type { TopicKey } from '../schemas/catalogue';
import { DEFAULT_TS_WINDOW, ruleError, tsWindowViolation, type TsWindow } from '../schemas/rules';

/**
 * What the processors refuse before a record reaches a session (issue 11): the rule table, and a
 * `ts` outside the accepted window around the record's append time (`message.timestamp`, the
 * broker's clock on LogAppendTime topics; stored with the record, so a replay decides the same).
 * The live runner dead-letters what this returns; `vigil rescore` skips it, so both see one input.
 */
export function screenRecord(
  key: TopicKey,
  value: { ts: number },
  appendTs: number,
  window: TsWindow = DEFAULT_TS_WINDOW,
): VigilError | undefined {
  const broken = ruleError(key, value);
  if (broken) return broken;
  const v = tsWindowViolation(value.ts, appendTs, window);
  return (
    v && new VigilError('TS_OUT_OF_WINDOW', `ts ${v.message}`, { details: { ...v, ts: value.ts, append_ts: appendTs } })
  );
}
