import { buildAlert } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { alertsModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
const at = (s: number) => ({ ts: T0 + s * 1000 });

/** A microsleep alert of session-0001 raised, escalated, acknowledged and cleared, in event order. */
const microsleep = (tenant = 'tenant-a') => {
  const of = { tenant_id: tenant, alert_id: 'alert-microsleep' };
  return [
    buildAlert('AlertRaised', { ...of, ...at(0), level: 2, reason: 'microsleep', score: null }),
    buildAlert('AlertEscalated', { ...of, ...at(30), level: 2, count: 1 }),
    buildAlert('AlertEscalated', { ...of, ...at(60), level: 2, count: 2 }),
    buildAlert('AlertAcknowledged', { ...of, ...at(65), acknowledged_by: 'ops@fleet' }),
    buildAlert('AlertCleared', { ...of, ...at(95), reason: 'recovered' }),
  ];
};
/** A drowsy alert of session-0002, raised and left active. */
const drowsy = buildAlert('AlertRaised', {
  session_id: 'session-0002',
  alert_id: 'alert-drowsy',
  ...at(40),
  score: 52.5,
});

const microsleepRow = {
  alert_id: 'alert-microsleep',
  tenant_id: 'tenant-a',
  session_id: 'session-0001',
  level: 2,
  reason: 'microsleep',
  score: null,
  status: 'cleared',
  raised_at: iso(0),
  escalations: 2,
  acknowledged_at: iso(65),
  acknowledged_by: 'ops@fleet',
  cleared_at: iso(95),
  clear_reason: 'recovered',
  last_event_ts: iso(95),
};
const session1 = {
  tenant_id: 'tenant-a',
  session_id: 'session-0001',
  alert_count: 1,
  open_alert_count: 0,
  max_alert_level: 2,
  last_alert_at: iso(95),
  last_seen_at: iso(95),
};

describe('alerts read model: alert_events, each alert’s state and the session’s alert counts', () => {
  const db = readModelDb();
  const alerts = () =>
    db.rows(
      `SELECT alert_id, tenant_id, session_id, level, reason, score, status, raised_at, escalations, acknowledged_at,
              acknowledged_by, cleared_at, clear_reason, last_event_ts
       FROM alerts ORDER BY tenant_id, alert_id`,
    );
  const events = () =>
    db.rows(
      `SELECT tenant_id, session_id, alert_id, ts, type, level, reason, score, escalation, acknowledged_by
       FROM alert_events ORDER BY tenant_id, ts`,
    );
  const state = async () => ({ alerts: await alerts(), sessions: await db.sessions(alertsModel) });

  it('stores each alert event once and folds the alerts’ life cycles into state and counts, however often applied', async () => {
    const given = [...microsleep(), drowsy];
    const { once, twice } = await db.appliedTwice(alertsModel, given, async () => ({
      events: await events(),
      ...(await state()),
    }));

    const row = { tenant_id: 'tenant-a', session_id: 'session-0001', alert_id: 'alert-microsleep' };
    const none = { level: null, reason: null, score: null, escalation: null, acknowledged_by: null };
    expect(once.events).toEqual([
      { ...row, ts: iso(0), ...none, type: 'AlertRaised', level: 2, reason: 'microsleep' },
      { ...row, ts: iso(30), ...none, type: 'AlertEscalated', level: 2, escalation: 1 },
      {
        ...{ tenant_id: 'tenant-a', session_id: 'session-0002', alert_id: 'alert-drowsy', ts: iso(40) },
        ...{ type: 'AlertRaised', level: 1, reason: 'drowsy', score: 52.5, escalation: null, acknowledged_by: null },
      },
      { ...row, ts: iso(60), ...none, type: 'AlertEscalated', level: 2, escalation: 2 },
      { ...row, ts: iso(65), ...none, type: 'AlertAcknowledged', acknowledged_by: 'ops@fleet' },
      { ...row, ts: iso(95), ...none, type: 'AlertCleared', reason: 'recovered' },
    ]);
    expect(once.alerts).toEqual([
      {
        ...{ alert_id: 'alert-drowsy', tenant_id: 'tenant-a', session_id: 'session-0002', level: 1, reason: 'drowsy' },
        ...{ score: 52.5, status: 'active', raised_at: iso(40), escalations: 0, acknowledged_at: null },
        ...{ acknowledged_by: null, cleared_at: null, clear_reason: null, last_event_ts: iso(40) },
      },
      microsleepRow,
    ]);
    expect(once.sessions).toEqual([
      session1,
      {
        ...{ tenant_id: 'tenant-a', session_id: 'session-0002', alert_count: 1, open_alert_count: 1 },
        ...{ max_alert_level: 1, last_alert_at: iso(40), last_seen_at: iso(40) },
      },
    ]);
    expect(twice).toEqual(once);
  });

  it('folds to the same state whether the life cycle comes in one batch or in two, the clear and acknowledgement first', async () => {
    const [raised, escalated1, escalated2, acknowledged, cleared] = microsleep();
    await db.given(alertsModel, [cleared!, acknowledged!, escalated2!]);
    await db.given(alertsModel, [raised!, escalated1!]);
    const inTwo = await state();

    await db.clear();
    await db.given(alertsModel, microsleep());
    expect(await state()).toEqual(inTwo);
    expect(inTwo).toEqual({ alerts: [microsleepRow], sessions: [session1] });
  });

  it('counts an alert cleared before it was seen raised as closed, and it stays closed when the raise arrives', async () => {
    const [raised, , , , cleared] = microsleep();
    await db.given(alertsModel, [cleared!]);
    expect(await db.sessions(alertsModel)).toEqual([{ ...session1, max_alert_level: null }]);

    await db.given(alertsModel, [raised!]);
    expect(await alerts()).toEqual([
      { ...microsleepRow, escalations: 0, acknowledged_at: null, acknowledged_by: null },
    ]);
    expect(await db.sessions(alertsModel)).toEqual([session1]);
  });

  it('keeps another tenant’s alert under the same alert and session ids in its own row and counts', async () => {
    await db.given(alertsModel, microsleep());
    const before = await db.rows(`SELECT * FROM alerts WHERE tenant_id = 'tenant-a'`);

    const other = [microsleep('tenant-b')[0]!];
    await db.given(alertsModel, other);
    await db.given(alertsModel, other);

    expect(await db.rows(`SELECT * FROM alerts WHERE tenant_id = 'tenant-a'`)).toEqual(before);
    expect((await alerts()).map((a) => [a.tenant_id, a.alert_id, a.status])).toEqual([
      ['tenant-a', 'alert-microsleep', 'cleared'],
      ['tenant-b', 'alert-microsleep', 'active'],
    ]);
    expect(await db.sessions(alertsModel)).toEqual([
      session1,
      {
        ...{ tenant_id: 'tenant-b', session_id: 'session-0001', alert_count: 1, open_alert_count: 1 },
        ...{ max_alert_level: 2, last_alert_at: iso(0), last_seen_at: iso(0) },
      },
    ]);
  });
});
