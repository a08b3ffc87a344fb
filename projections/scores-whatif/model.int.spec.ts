import { buildScore } from '../../test/support/build';
import { readModelDb } from '../../test/support/read-model';
import { scoresWhatIfModel } from './model';

const T0 = Date.UTC(2026, 0, 1, 8);
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();
/** `model`'s what-if score of the window ending at +60 s. */
const scored = (model: string, score: number, overrides: Parameters<typeof buildScore>[0] = {}) =>
  buildScore({ ts: T0 + 60_000, score, model_version: model, ...overrides });

describe('what-if scores read model: fatigue_scores_whatif only', () => {
  const db = readModelDb();
  const whatIf = () =>
    db.rows(
      `SELECT model_version, tenant_id, session_id, ts, window_start_ts, score, level, ocular, features, baseline_ready
       FROM fatigue_scores_whatif ORDER BY model_version, tenant_id, session_id, ts`,
    );

  it('stores one row per model of a window, once however often a rescore is applied, and leaves the live scores and sessions alone', async () => {
    const events = [scored('fatigue-v1', 42.5), scored('fatigue-v1-sensitive', 51, { level: 1 })];
    const { once, twice } = await db.appliedTwice(scoresWhatIfModel, events, async () => ({
      whatIf: await whatIf(),
      live: await db.rows('SELECT * FROM fatigue_scores'),
      sessions: await db.rows('SELECT * FROM sessions'),
    }));

    const row = {
      tenant_id: 'tenant-a',
      session_id: 'session-0001',
      ts: iso(60),
      window_start_ts: iso(0),
      ocular: 0.5,
      features: events[0]!.features,
      baseline_ready: false,
    };
    expect(once).toEqual({
      whatIf: [
        { ...row, model_version: 'fatigue-v1', score: 42.5, level: 0 },
        { ...row, model_version: 'fatigue-v1-sensitive', score: 51, level: 1 },
      ],
      live: [],
      sessions: [],
    });
    expect(twice).toEqual(once);
  });

  it('keeps another tenant’s what-if score of the same session, window and model in its own row', async () => {
    await db.given(scoresWhatIfModel, [scored('fatigue-v1', 42.5)]);
    const before = await db.rows(`SELECT * FROM fatigue_scores_whatif WHERE tenant_id = 'tenant-a'`);

    const other = scored('fatigue-v1', 90, { tenant_id: 'tenant-b', level: 2 });
    await db.given(scoresWhatIfModel, [other]);
    await db.given(scoresWhatIfModel, [other]);

    expect(await db.rows(`SELECT * FROM fatigue_scores_whatif WHERE tenant_id = 'tenant-a'`)).toEqual(before);
    expect((await whatIf()).map((r) => [r.tenant_id, r.model_version, r.score, r.level])).toEqual([
      ['tenant-a', 'fatigue-v1', 42.5, 0],
      ['tenant-b', 'fatigue-v1', 90, 2],
    ]);
  });
});
