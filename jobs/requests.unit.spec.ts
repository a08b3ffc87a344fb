import { QUEUE, jobIdOf } from '../core/jobs';
import type { AlertEvent, SessionEvent } from '../schemas/types';
import { jobRequestsOf } from './requests';

const envelope = { tenant_id: 'acme', session_id: 's1', ts: 1767254400000 };

describe('jobs asked for by a record', () => {
  it('SessionEnded asks for a session report', () => {
    const e: SessionEvent = { ...envelope, event_id: 'e1', event: { type: 'SessionEnded', reason: 'COMPLETED' } };
    expect(jobRequestsOf('sessions', e)).toEqual([
      {
        queue: 'session-report',
        triggerEventId: 'e1',
        data: { session_id: 's1', tenant_id: 'acme', ended_at: 1767254400000, end_reason: 'COMPLETED' },
      },
    ]);
  });

  it('SessionStarted asks for nothing', () => {
    const e: SessionEvent = {
      ...envelope,
      event_id: 'e0',
      event: { type: 'SessionStarted', driver_id: 'd', vehicle_id: 'v', devices: [] },
    };
    expect(jobRequestsOf('sessions', e)).toEqual([]);
  });

  it.each<AlertEvent['event']>([
    { type: 'AlertRaised', alert_id: 'a1', level: 2, reason: 'microsleep', score: null },
    { type: 'AlertEscalated', alert_id: 'a1', level: 2, count: 1 },
    { type: 'AlertAcknowledged', alert_id: 'a1', acknowledged_by: 'ops' },
    { type: 'AlertCleared', alert_id: 'a1', reason: 'recovered' },
  ])('$type asks for an alert webhook carrying the event as JSON', (event) => {
    const e: AlertEvent = { ...envelope, event_id: 'e2', event };
    const [r, ...more] = jobRequestsOf('alerts', e);
    expect(more).toEqual([]);
    expect(r).toEqual({
      queue: 'alert-webhook',
      triggerEventId: 'e2',
      data: { event_id: 'e2', tenant_id: 'acme', alert_id: 'a1', type: event.type, body: expect.any(String) },
    });
    expect(JSON.parse((r!.data as { body: string }).body)).toEqual(e);
  });
});

describe('job ids', () => {
  it('are a uuid v5 of queue and event id: the same event, the same job', () => {
    const id = jobIdOf(QUEUE.sessionReport, '7d444840-9dc0-11d1-b245-5ffdce74fad2');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(jobIdOf(QUEUE.sessionReport, '7d444840-9dc0-11d1-b245-5ffdce74fad2')).toBe(id);
    expect(jobIdOf(QUEUE.alertWebhook, '7d444840-9dc0-11d1-b245-5ffdce74fad2')).not.toBe(id);
    expect(jobIdOf(QUEUE.sessionReport, '7d444840-9dc0-11d1-b245-5ffdce74fad3')).not.toBe(id);
  });
});
