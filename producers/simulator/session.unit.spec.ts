import { createHash } from 'node:crypto';
import { EEG_HZ, sessionEvents, type SessionPlan } from './session';

const plan: SessionPlan = {
  seed: 7,
  index: 0,
  tenantId: 't1',
  startTs: Date.UTC(2026, 0, 1, 8),
  durationMs: 30_000,
  profile: 'severe',
};
const digest = (p: SessionPlan) =>
  createHash('sha256')
    .update(JSON.stringify([...sessionEvents(p)]))
    .digest('hex');
const ratio = (c: { theta_uv2: number; alpha_uv2: number; beta_uv2: number }) =>
  (c.theta_uv2 + c.alpha_uv2) / c.beta_uv2;

describe('simulated session', () => {
  it('gives the same events for the same seed, and different ones for another seed', () => {
    expect(digest(plan)).toBe(digest({ ...plan }));
    expect(digest({ ...plan, seed: 8 })).not.toBe(digest(plan));
  });

  it('starts with SessionStarted, ends with SessionEnded, and sends EEG at 10 Hz in event-time order', () => {
    const events = [...sessionEvents(plan)];
    expect(events[0]!.topic).toBe('sessions');
    expect(events.at(-1)!.event).toMatchObject({ event: { type: 'SessionEnded' }, ts: plan.startTs + plan.durationMs });
    const eeg = events.filter((e) => e.topic === 'eeg');
    expect(eeg).toHaveLength((plan.durationMs / 1000) * EEG_HZ);
    const ts = events.map((e) => e.event.ts);
    expect(ts).toEqual([...ts].sort((a, b) => a - b));
    expect(new Set(events.map((e) => e.event.event_id)).size).toBe(events.length);
  });

  it('raises the EEG (theta+alpha)/beta ratio over a severe session but not an alert one', () => {
    const meanRatio = (p: SessionPlan, from: number, to: number) => {
      const frames = [...sessionEvents(p)].flatMap((e) => (e.topic === 'eeg' ? [e.event] : [])).slice(from, to);
      const rs = frames.flatMap((f) => f.channels.map(ratio));
      return rs.reduce((a, b) => a + b, 0) / rs.length;
    };
    const severe = { ...plan, durationMs: 120_000 };
    expect(meanRatio(severe, -200, undefined as never) / meanRatio(severe, 0, 200)).toBeGreaterThan(1.5);
    const alert = { ...severe, profile: 'alert' as const };
    const drift = meanRatio(alert, -200, undefined as never) / meanRatio(alert, 0, 200);
    expect(drift).toBeGreaterThan(0.9);
    expect(drift).toBeLessThan(1.1);
  });
});
