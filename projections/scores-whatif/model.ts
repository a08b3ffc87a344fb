import type { FatigueScored } from '../../schemas/types';
import { columnValues, unnestOf } from '../columns';
import type { ProjectedRecord, ReadModel } from '../model';
import { scoreColumns } from '../scores/model';

/**
 * `fatigue_scores_whatif` rows from `fatigue.scores.whatif.v1` (what `vigil rescore` writes): the
 * live scores' column mapping, keyed (model_version, session_id, ts) so every model's score of a
 * window has its own row, and idempotent by that key (a rerun of the same rescore inserts nothing).
 * Unlike the live `scores` model it leaves `sessions` alone: a what-if is not the session's status.
 */
const scoresWhatIfSql = `INSERT INTO fatigue_scores_whatif (${scoreColumns.map((c) => c.name).join(', ')})
SELECT * FROM ${unnestOf(scoreColumns)}
ON CONFLICT DO NOTHING`;

export const scoresWhatIfModel: ReadModel = {
  name: 'scores-whatif',
  topics: ['scoresWhatIf'],
  // Its own table only (no session columns, so nothing to seed for `rebuild --from`).
  writes: { tables: [{ name: 'fatigue_scores_whatif', timeColumn: 'ts' }], sessionColumns: [], seed: [] },
  project(records) {
    if (records.length === 0) return [];
    const events = (records as ProjectedRecord<FatigueScored>[]).map((r) => r.value);
    return [{ text: scoresWhatIfSql, values: columnValues(scoreColumns, events) }];
  },
};
