import { scoresModel } from './model';
import { buildScore } from '../../test/support/build';

const T0 = Date.UTC(2026, 0, 1, 8);
const scored = (session: string, windowEnd: number, score: number, level: number) =>
  buildScore({
    tenant_id: 't',
    session_id: session,
    ts: T0 + windowEnd * 1000,
    score,
    level,
    components: { ocular: 0.5, driving: null, eeg: null, reaction: 0.25, yawn: 0 },
  });

describe('scores read model', () => {
  const events = [scored('s1', 65, 42.5, 0), scored('s2', 65, 71, 2)];
  const statements = scoresModel.project(
    events.map((value, i) => ({ topic: 'scores' as const, partition: 0, offset: String(i), value })),
  );

  it('writes the batch as one multi-row insert, one array per fatigue_scores column', () => {
    expect(statements).toHaveLength(1);
    expect(statements[0]!.values).toEqual([
      ['s1', 's2'],
      ['2026-01-01T08:01:05.000Z', '2026-01-01T08:01:05.000Z'],
      events.map((e) => e.event_id),
      ['t', 't'],
      ['2026-01-01T08:00:05.000Z', '2026-01-01T08:00:05.000Z'],
      [42.5, 71],
      [0, 2],
      [0.5, 0.5],
      [null, null],
      [null, null],
      [0.25, 0.25],
      [0, 0],
      JSON.stringify([events[0]!.features, events[1]!.features]),
      [false, false],
      ['fatigue-v1', 'fatigue-v1'],
    ]);
    expect(statements[0]!.text).toContain(
      'INSERT INTO fatigue_scores (session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn, features, baseline_ready, model_version)',
    );
    expect(statements[0]!.text).toContain(
      'ON CONFLICT DO NOTHING\n  RETURNING session_id, tenant_id, ts, score, level',
    );
  });

  it('moves the session’s last score and level only to a newer window, and its maxima only up', () => {
    const text = statements[0]!.text;
    expect(text).toContain(
      `last_score = CASE WHEN sessions.last_score_at IS NULL OR EXCLUDED.last_score_at > sessions.last_score_at`,
    );
    expect(text).toContain(
      `last_level = CASE WHEN sessions.last_score_at IS NULL OR EXCLUDED.last_score_at > sessions.last_score_at`,
    );
    expect(text).toContain('(array_agg(score ORDER BY ts DESC))[1] AS last_score');
    expect(text).toContain('max_score = GREATEST(sessions.max_score, EXCLUDED.max_score)');
    expect(text).toContain('max_level = GREATEST(sessions.max_level, EXCLUDED.max_level)');
    expect(text).toContain('score_count = sessions.score_count + EXCLUDED.score_count');
  });

  it('returns no statement for an empty batch', () => {
    expect(scoresModel.project([])).toEqual([]);
  });
});
