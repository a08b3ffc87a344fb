import type { FatigueScored } from '../../schemas/types';
import { columnValues } from '../columns';
import { scoreColumns } from '../scores/model';
import { scoresWhatIfModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const scored = (model: string, score: number): FatigueScored => ({
  event_id: '00000000-0000-4000-8000-000000000065',
  tenant_id: 't',
  session_id: 's1',
  ts: T0 + 65_000,
  window_start_ts: T0 + 5_000,
  window_end_ts: T0 + 65_000,
  score,
  level: 0,
  components: { ocular: 0.5, driving: null, eeg: null, reaction: 0.25, yawn: 0 },
  features: {
    perclos: 0.1,
    long_blink_share: 0.2,
    sdlp_m: null,
    lane_departures: 0,
    eeg_ratio: null,
    eeg_ratio_z: null,
    lapses: 1,
    yawns: 0,
  },
  baseline_ready: false,
  model_version: model,
});

describe('what-if scores read model', () => {
  const events = [scored('fatigue-v1', 42.5), scored('fatigue-v1-sensitive', 51)];
  const statements = scoresWhatIfModel.project(
    events.map((value, i) => ({ topic: 'scoresWhatIf' as const, partition: 0, offset: String(i), value })),
  );

  it('reads the what-if topic only', () => {
    expect(scoresWhatIfModel.topics).toEqual(['scoresWhatIf']);
  });

  it('inserts the batch into fatigue_scores_whatif with the live scores columns, one row per model of a window', () => {
    expect(statements).toHaveLength(1);
    const { text, values } = statements[0]!;
    expect(text.split('\n')[0]).toBe(
      'INSERT INTO fatigue_scores_whatif (session_id, ts, event_id, tenant_id, window_start_ts, score, level, ocular, driving, eeg, reaction, yawn, features, baseline_ready, model_version)',
    );
    expect(text.endsWith('\nON CONFLICT DO NOTHING')).toBe(true);
    // The live scores model's mapping, parameter for parameter.
    expect(values).toEqual(columnValues(scoreColumns, events));
    expect(values![0]).toEqual(['s1', 's1']);
    expect(values![5]).toEqual([42.5, 51]);
    expect(values![14]).toEqual(['fatigue-v1', 'fatigue-v1-sensitive']);
  });

  it('never writes the live scores table or the sessions status', () => {
    expect(statements[0]!.text).not.toMatch(/fatigue_scores |fatigue_scores\(|sessions/);
    expect(scoresWhatIfModel.writes).toEqual({
      tables: [{ name: 'fatigue_scores_whatif', timeColumn: 'ts' }],
      sessionColumns: [],
      seed: [],
    });
  });

  it('makes no statement for an empty batch', () => {
    expect(scoresWhatIfModel.project([])).toEqual([]);
  });
});
