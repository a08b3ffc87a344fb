import { QUEUE, type JobRequest } from '../core/jobs';
import type { AlertEvent, SessionEvent } from '../schemas/types';
import type { SessionReportJobData } from './reports/job';
import type { AlertWebhookJobData } from './webhooks/deliver';

/** Topics the jobs trigger consumes. */
export const TRIGGER_TOPICS = ['sessions', 'alerts'] as const;
export type TriggerTopic = (typeof TRIGGER_TOPICS)[number];

/**
 * The jobs one decoded record asks for (pure): `SessionEnded` → `session-report`; every alert event
 * (AlertRaised, AlertEscalated, AlertAcknowledged, AlertCleared) → `alert-webhook`. Other records ask
 * for nothing. The job id derives from the record's event_id, so a redelivered record asks for the
 * same job, which pg-boss ignores.
 */
export function jobRequestsOf(topic: TriggerTopic, value: unknown): JobRequest[] {
  if (topic === 'sessions') {
    const e = value as SessionEvent;
    if (e.event.type !== 'SessionEnded') return [];
    const data: SessionReportJobData = {
      session_id: e.session_id,
      tenant_id: e.tenant_id,
      ended_at: e.ts,
      end_reason: e.event.reason,
    };
    return [{ queue: QUEUE.sessionReport, triggerEventId: e.event_id, data }];
  }
  const e = value as AlertEvent;
  const data: AlertWebhookJobData = {
    event_id: e.event_id,
    tenant_id: e.tenant_id,
    alert_id: e.event.alert_id,
    type: e.event.type,
    body: JSON.stringify({
      event_id: e.event_id,
      tenant_id: e.tenant_id,
      session_id: e.session_id,
      ts: e.ts,
      event: e.event,
    }),
  };
  return [{ queue: QUEUE.alertWebhook, triggerEventId: e.event_id, data }];
}
