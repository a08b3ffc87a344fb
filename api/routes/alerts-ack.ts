import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { z } from 'zod';
import type { Producer } from 'kafkajs';
import type { Pool } from '../../core/db';
import type { Redis } from '../../core/redis';
import type { Logger } from '../../core/logger';
import type { AvroSerde } from '../../core/serde';
import { keyOf, traceHeaders } from '../../core/kafka';
import { VigilError } from '../../core/errors';
import type { TopicNames } from '../../schemas/catalogue';
import type { Command } from '../../schemas/types';
import { redisKeys } from '../../core/redis-keys';
import { route } from '../openapi';
import { HttpProblem, notFound } from '../../core/http/problem';
import type { ApiDeps } from '../app';

interface AlertAckDeps {
  pool: Pool;
  redis: Redis;
  log: Logger;
  /** With the commands schema registered; absent (as `producer`) in a process that appends no commands. */
  serde?: AvroSerde;
  topics: TopicNames;
  /** Key prefix of the Redis read model (the topic prefix). */
  prefix: string;
  /** Connected. Without it (or `serde`) the route answers 503. */
  producer?: Producer;
  /** The command's `ts` (the API's clock: a command is issued now, it has no event time of its own). */
  now?: () => number;
}

const AlertIdParam = z.object({
  id: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$/,
      'must be 1-200 letters, digits or _.:- and start with a letter or digit',
    ),
});

const AckBody = z
  .object({
    by: z
      .string()
      .min(1)
      .max(200)
      // eslint-disable-next-line no-control-regex
      .regex(/^[^\u0000-\u001f\u007f]*$/, 'must not contain control characters')
      .optional()
      .openapi({
        description:
          'who acknowledges, free text; recorded after the key that made the request: `acknowledged_by` = `key:<key_id> (<by>)`, or `key:<key_id>` without it',
      }),
    note: z.string().max(2000).optional().openapi({
      description: 'free text, logged with the request; AcknowledgeAlert v1 has no field for it, so it is not stored',
    }),
  })
  .strict()
  .default({});

const Accepted = z.object({
  command_id: z.string().uuid(),
  alert_id: z.string(),
  session_id: z.string(),
  status: z.literal('accepted'),
});

const tracer = trace.getTracer('vigil-api');

/**
 * What an acknowledgement records as its author: the API key that made it, always (`key:<key_id>`,
 * an audit trail: free text alone could name anyone), then the free text `by` if given. At most
 * 17 + 3 + 200 characters, within the rule table's bound on free text.
 */
const acknowledgedBy = (keyId: string, by?: string): string =>
  by === undefined ? `key:${keyId}` : `key:${keyId} (${by})`;

interface AlertRef {
  tenant_id: string;
  session_id: string;
  status: string;
}

/**
 * The tenant's alert as the read models know it: PostgreSQL's `alerts` (tenant_id, alert_id), else the
 * Redis alert hash under the tenant's key (written by the Redis projection, which may run ahead of
 * PostgreSQL). Another tenant's alert of the same id is not found.
 */
async function findAlert(deps: AlertAckDeps, tenantId: string, alertId: string): Promise<AlertRef | undefined> {
  const { rows } = await deps.pool.query<AlertRef>(
    'SELECT tenant_id, session_id, status FROM alerts WHERE tenant_id = $1 AND alert_id = $2',
    [tenantId, alertId],
  );
  if (rows[0]) return rows[0];
  const h = await deps.redis
    .hgetall(redisKeys(deps.prefix).alert(tenantId, alertId))
    .catch(() => ({}) as Record<string, string>);
  return h.tenant_id === tenantId && h.session_id && h.status
    ? { tenant_id: h.tenant_id, session_id: h.session_id, status: h.status }
    : undefined;
}

/**
 * `POST /v1/alerts/:id/ack`: acknowledging is a command (docs/design.md §2). The API checks the alert
 * exists for the caller's tenant and is not cleared, then appends `AcknowledgeAlert` to the commands
 * topic (Avro, key = session_id, the request's `traceparent` in the headers) and answers 202 with the
 * command's id. The fatigue processor, the alerts topic's one writer, turns it into AlertAcknowledged;
 * the alert reads as acknowledged once the projections have it. Acknowledging an already acknowledged
 * alert is accepted again (the processor ignores it).
 */
export const alertAckRoutes = (d: ApiDeps): Router =>
  alertAckRouter({ ...d, serde: d.serde, prefix: d.config.topicPrefix });

function alertAckRouter(deps: AlertAckDeps): Router {
  const r = Router();
  route(
    r,
    {
      method: 'post',
      path: '/v1/alerts/:id/ack',
      summary: 'Acknowledge an alert (appends an AcknowledgeAlert command)',
      tags: ['alerts'],
      params: AlertIdParam,
      body: AckBody,
      responses: {
        202: { description: 'the command was appended to the commands topic', schema: Accepted },
        404: { description: 'no such alert for this tenant' },
        409: { description: 'the alert is already cleared' },
        503: { description: 'Kafka is unavailable; retry later' },
      },
    },
    async ({ params, body, principal }, _req, res) => {
      const alert = await findAlert(deps, principal.tenantId, params.id);
      if (!alert || alert.tenant_id !== principal.tenantId) throw notFound(`alert ${params.id}`);
      if (alert.status === 'cleared') {
        throw new HttpProblem({
          type: 'https://vigil.dev/problems/alert-cleared',
          title: 'Conflict',
          status: 409,
          detail: `alert ${params.id} is already cleared`,
        });
      }
      const command: Command = {
        event_id: randomUUID(),
        tenant_id: principal.tenantId,
        session_id: alert.session_id,
        ts: (deps.now ?? Date.now)(),
        event: {
          type: 'AcknowledgeAlert',
          alert_id: params.id,
          acknowledged_by: acknowledgedBy(principal.keyId, body?.by),
        },
      };
      const { producer, serde } = deps;
      if (!producer || !serde) throw new VigilError('KAFKA_UNAVAILABLE', 'this API process has no command producer');
      // A producer span for the append, child of the request's server span: its context travels in the
      // record's `traceparent`, so the processor's handling of the command joins the request's trace.
      await tracer.startActiveSpan(
        `${deps.topics.commands} send`,
        { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'kafka', 'vigil.alert_id': params.id } },
        async (span) => {
          try {
            await producer.send({
              topic: deps.topics.commands,
              acks: -1,
              messages: [{ key: keyOf(command), value: serde.encode('commands', command), headers: traceHeaders() }],
            });
          } catch (cause) {
            span.setStatus({ code: SpanStatusCode.ERROR });
            throw new VigilError('KAFKA_UNAVAILABLE', 'could not append the command', { cause, retriable: true });
          } finally {
            span.end();
          }
        },
      );
      deps.log.info(
        { command_id: command.event_id, alert_id: params.id, key_id: principal.keyId, note: body?.note },
        'alert acknowledgement requested',
      );
      res.status(202).json({
        command_id: command.event_id,
        alert_id: params.id,
        session_id: alert.session_id,
        status: 'accepted',
      });
    },
  );
  return r;
}
