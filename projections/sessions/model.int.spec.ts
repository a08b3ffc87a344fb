import { sessionsModel } from './model';
import type { SessionEvent } from '../../schemas/types';

const T0 = Date.UTC(2026, 0, 1, 8);
const started = (session: string, at: number): SessionEvent => ({
  event_id: `00000000-0000-4000-8000-0000000000${at}`,
  tenant_id: 't',
  session_id: session,
  ts: T0 + at * 1000,
  event: { type: 'SessionStarted', driver_id: 'd', vehicle_id: 'v', devices: [] },
});
const ended = (session: string, at: number): SessionEvent => ({
  ...started(session, at),
  event: { type: 'SessionEnded', reason: 'COMPLETED' },
});

describe('sessions read model', () => {
  it('upserts one session per event, in session byte order and offset order within a session', () => {
    const events = [started('b', 10), started('B', 11), started('a', 12), ended('b', 13)];
    const statements = sessionsModel.project(
      events.map((value, i) => ({ topic: 'sessions' as const, partition: 0, offset: String(i), value })),
    );
    expect(statements.map((s) => s.values)).toEqual([
      ['B', 't', 'd', 'v', '2026-01-01T08:00:11.000Z'],
      ['a', 't', 'd', 'v', '2026-01-01T08:00:12.000Z'],
      ['b', 't', 'd', 'v', '2026-01-01T08:00:10.000Z'],
      ['b', 't', '2026-01-01T08:00:13.000Z', 'COMPLETED'],
    ]);
    expect(statements[3]!.text).toContain('last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at)');
  });

  it('keys each upsert by (tenant_id, session_id), and orders two tenants of one session id by tenant', () => {
    const other = (e: SessionEvent, tenant: string): SessionEvent => ({ ...e, tenant_id: tenant });
    const statements = sessionsModel.project(
      [other(started('a', 10), 'u'), started('a', 11)].map((value, i) => ({
        topic: 'sessions' as const,
        partition: 0,
        offset: String(i),
        value,
      })),
    );
    expect(statements.map((s) => s.values?.slice(0, 2))).toEqual([
      ['a', 't'],
      ['a', 'u'],
    ]);
    for (const s of statements) expect(s.text).toContain('ON CONFLICT (tenant_id, session_id) DO UPDATE SET');
  });
});
