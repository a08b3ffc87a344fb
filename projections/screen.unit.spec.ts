import type { Claim } from '../core/session-owners';
import type { FaceFrame } from '../schemas/types';
import { screen } from './screen';

/** Session owners in memory, claiming as core/session-owners.ts does (first claim wins, for good). */
const memoryOwners = (initial: Record<string, string> = {}) => {
  const owner = new Map(Object.entries(initial));
  const calls: Claim[][] = [];
  return {
    calls,
    async claim(claims: readonly Claim[]) {
      calls.push([...claims]);
      for (const c of claims) if (!owner.has(c.session_id)) owner.set(c.session_id, c.tenant_id);
      return new Map(claims.map((c) => [c.session_id, owner.get(c.session_id)!]));
    },
  };
};

const frame = (over: Partial<FaceFrame> = {}): FaceFrame => ({
  event_id: '8f14e45f-ceea-467a-9af1-2f1e8ad7c1aa',
  tenant_id: 'tenant-a',
  session_id: 'session-a-0001',
  ts: Date.UTC(2026, 0, 1, 8),
  device_id: 'cam-0001',
  seq: 1,
  face_detected: true,
  eye_closure: 0.25,
  mouth_open: 0.125,
  head_pitch_deg: 1,
  head_yaw_deg: 2,
  head_roll_deg: 3,
  ...over,
});

describe('screen: rule table and session ownership before apply', () => {
  it('given good records of the owner, then all pass, claimed in one call', async () => {
    const owners = memoryOwners();
    const records = [frame(), frame({ seq: 2 })];
    const r = await screen(owners, 'face', records, (x) => x);
    expect(r).toEqual({ good: records, refused: [] });
    expect(owners.calls).toHaveLength(1);
  });

  it('given a record breaking the rule table, then it is refused with RULE_VIOLATION and claims nothing', async () => {
    const owners = memoryOwners();
    const bad = frame({ tenant_id: 'tenant-b', session_id: 'session-b-0001', eye_closure: 5 });
    const r = await screen(owners, 'face', [bad], (x) => x);
    expect(r.good).toEqual([]);
    expect(r.refused.map((x) => x.err.code)).toEqual(['RULE_VIOLATION']);
    expect(r.refused[0]!.err.message).toContain('eye_closure');
    expect(owners.calls).toEqual([]);
  });

  it.each([
    ['a ts of 8.7e15', { ts: 8.7e15 }],
    ['U+0000 in a string', { device_id: 'a\u0000b' }],
    ['a short session id', { session_id: 's1' }],
  ])('given %s, then it is refused with RULE_VIOLATION', async (_, over) => {
    const r = await screen(memoryOwners(), 'face', [frame(over)], (x) => x);
    expect(r.refused.map((x) => x.err.code)).toEqual(['RULE_VIOLATION']);
  });

  it('given another tenant naming an owned session, then it is refused with TENANT_MISMATCH', async () => {
    const intruder = frame({ tenant_id: 'tenant-b' });
    const r = await screen(memoryOwners({ 'session-a-0001': 'tenant-a' }), 'face', [frame(), intruder], (x) => x);
    expect(r.good).toEqual([frame()]);
    expect(r.refused).toEqual([{ record: intruder, err: expect.objectContaining({ code: 'TENANT_MISMATCH' }) }]);
  });

  it('given an unclaimed session named by two tenants in one batch, then the first in offset order owns it', async () => {
    const first = frame({ tenant_id: 'tenant-b' });
    const second = frame({ seq: 2 });
    const r = await screen(memoryOwners(), 'face', [first, second], (x) => x);
    expect(r.good).toEqual([first]);
    expect(r.refused.map((x) => x.record)).toEqual([second]);
  });

  it('given a time window, then a telemetry ts a year off its append time is refused with TS_OUT_OF_WINDOW', async () => {
    const window = { maxAheadMs: 60_000, maxAgeMs: 24 * 3_600_000 };
    const append = Date.UTC(2026, 0, 1, 8);
    const year = 365 * 24 * 3_600_000;
    const ahead = frame({ ts: append + year, seq: 2 });
    const behind = frame({ ts: append - year, seq: 3 });
    const r = await screen(memoryOwners(), 'face', [frame(), ahead, behind], (x) => x, {
      window,
      appendTsOf: () => append,
    });
    expect(r.good).toEqual([frame()]);
    expect(r.refused.map((x) => [x.record.seq, x.err.code, x.err.details.rule])).toEqual([
      [2, 'TS_OUT_OF_WINDOW', 'ts_ahead'],
      [3, 'TS_OUT_OF_WINDOW', 'ts_too_old'],
    ]);
  });
});
