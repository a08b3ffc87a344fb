import { retentionPlan } from './retention';

describe('retention plan', () => {
  const now = Date.parse('2026-06-30T12:00:00.000Z');

  it('on plain PostgreSQL: raw telemetry before now - 90 days, scores and alert events before now - 365 days', () => {
    expect(retentionPlan(false, now).map((p) => [p.table, p.cutoff.toISOString()])).toEqual([
      ['eeg_frames', '2026-04-01T12:00:00.000Z'],
      ['face_frames', '2026-04-01T12:00:00.000Z'],
      ['vehicle_frames', '2026-04-01T12:00:00.000Z'],
      ['game_events', '2026-04-01T12:00:00.000Z'],
      ['fatigue_scores', '2025-06-30T12:00:00.000Z'],
      ['alert_events', '2025-06-30T12:00:00.000Z'],
    ]);
  });

  it('with TimescaleDB installed: nothing (its retention policies drop the chunks)', () => {
    expect(retentionPlan(true, now)).toEqual([]);
  });
});
