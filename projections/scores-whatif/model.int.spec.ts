import { buildScore } from '../../test/support/build';
import { columnValues } from '../columns';
import { scoreColumns } from '../scores/model';
import { scoresWhatIfModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const scored = (model: string, score: number) =>
  buildScore({ session_id: 's1', ts: T0 + 65_000, score, model_version: model });

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
