import { alertsModel } from './model';
import type { AlertEvent, AlertEventKind } from '../../schemas/types';

const T0 = Date.UTC(2026, 0, 1, 8);
const alert = (n: number, session: string, at: number, event: AlertEventKind): AlertEvent => ({
  event_id: `00000000-0000-4000-8000-00000000000${n}`,
  tenant_id: 't',
  session_id: session,
  ts: T0 + at * 1000,
  event,
});

describe('alerts read model', () => {
  const events = [
    alert(1, 's2', 0, { type: 'AlertRaised', alert_id: 'a1', level: 2, reason: 'microsleep', score: null }),
    alert(2, 's2', 30, { type: 'AlertEscalated', alert_id: 'a1', level: 2, count: 1 }),
    alert(3, 's2', 35, { type: 'AlertAcknowledged', alert_id: 'a1', acknowledged_by: 'ops@fleet' }),
    alert(4, 's1', 40, { type: 'AlertRaised', alert_id: 'a2', level: 1, reason: 'drowsy', score: 52.5 }),
    alert(5, 's2', 95, { type: 'AlertCleared', alert_id: 'a1', reason: 'recovered' }),
  ];
  const statements = alertsModel.project(
    events.map((value, i) => ({ topic: 'alerts' as const, partition: 2, offset: String(i), value })),
  );

  it('writes the alert events as one multi-row insert, each kind’s fields in their columns', () => {
    expect(statements).toHaveLength(2);
    expect(statements[0]!.values).toEqual([
      events.map((e) => e.event_id),
      [
        '2026-01-01T08:00:00.000Z',
        '2026-01-01T08:00:30.000Z',
        '2026-01-01T08:00:35.000Z',
        '2026-01-01T08:00:40.000Z',
        '2026-01-01T08:01:35.000Z',
      ],
      ['t', 't', 't', 't', 't'],
      ['s2', 's2', 's2', 's1', 's2'],
      ['a1', 'a1', 'a1', 'a2', 'a1'],
      ['AlertRaised', 'AlertEscalated', 'AlertAcknowledged', 'AlertRaised', 'AlertCleared'],
      [2, 2, null, 1, null],
      ['microsleep', null, null, 'drowsy', 'recovered'],
      [null, null, null, 52.5, null],
      [null, 1, null, null, null],
      [null, null, 'ops@fleet', null, null],
    ]);
    expect(statements[0]!.text).toContain(
      'INSERT INTO alert_events (event_id, ts, tenant_id, session_id, alert_id, type, level, reason, score, escalation, acknowledged_by)',
    );
    expect(statements[0]!.text).toContain('ON CONFLICT DO NOTHING');
  });

  it('folds only the inserted events into the alerts’ state, order-free', () => {
    const text = statements[0]!.text;
    expect(text).toContain('FROM ins GROUP BY tenant_id, alert_id');
    expect(text).toContain('ON CONFLICT (tenant_id, alert_id) DO UPDATE SET');
    expect(text).toContain('escalations = GREATEST(a.escalations, EXCLUDED.escalations)');
    expect(text).toContain('cleared_at = COALESCE(a.cleared_at, EXCLUDED.cleared_at)');
    expect(text).toContain(`status = CASE WHEN COALESCE(a.cleared_at, EXCLUDED.cleared_at) IS NOT NULL THEN 'cleared'`);
  });

  it('then recomputes the alert counts of the batch’s sessions, (tenant, session) pairs in session order', () => {
    expect(statements[1]!.values).toEqual([
      ['t', 't'],
      ['s1', 's2'],
    ]);
    expect(statements[1]!.text).toContain(`count(*) FILTER (WHERE status <> 'cleared')`);
    expect(statements[1]!.text).toContain(
      'WHERE (tenant_id, session_id) IN (SELECT t, s FROM unnest($1::text[], $2::text[]) AS p(t, s))',
    );
    expect(statements[1]!.text).toContain('ON CONFLICT (tenant_id, session_id) DO UPDATE SET');
  });

  it('returns no statement for an empty batch', () => {
    expect(alertsModel.project([])).toEqual([]);
  });
});
