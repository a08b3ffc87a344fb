import { Router } from 'express';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import type { Pool } from '../../core/db';
import { route } from '../openapi';
import { badRequest } from '../../core/http/problem';
import { Instant, SessionIdParams, iso } from '../schemas';
import { sessionOf } from './sessions';
import { bucketed, modelsOf, rawScores } from '../score-queries';

/**
 * `GET /v1/sessions/:id/scores?from&to&bucket`: a session's fatigue scores in [from, to), raw or in
 * buckets of 1m, 5m or 1h (avg and max score, max level, count). Buckets cover every bucket that
 * intersects [from, to), whole. The range is bounded per bucket size (MAX_SPAN_MS): a reversed or
 * longer range is a 400. Without from/to, the session's own span (its start to its newest score),
 * clipped to the bound from the newest end.
 *
 * TimescaleDB (checked once per router): buckets come from the continuous aggregate
 * `fatigue_scores_1m` (5m and 1h re-aggregated from it, averages weighted by count). Plain
 * PostgreSQL: `date_bin` over `fatigue_scores` (the plain `fatigue_scores_1m` view could not use the
 * time index). With `model=<version>`: the what-if scores of that model (api/score-queries.ts), buckets
 * by `date_bin`; `GET /v1/sessions/:id/models` lists the versions there are.
 */
export const buckets = ['raw', '1m', '5m', '1h'] as const;
type Bucket = (typeof buckets)[number];

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
/** Longest range per bucket: at most ~17k raw rows (one score per 5 s), ~10k 1m buckets, ~9k 5m, ~9k 1h. */
const MAX_SPAN_MS: Record<Bucket, number> = { raw: DAY, '1m': 7 * DAY, '5m': 31 * DAY, '1h': 366 * DAY };

const Query = z.object({
  from: Instant('start of the range (inclusive); default: the session start').optional(),
  to: Instant('end of the range (exclusive); default: just after the newest score').optional(),
  bucket: z.enum(buckets).default('raw').openapi({
    description: `raw scores, or buckets; longest range: raw 24 h, 1m 7 d, 5m 31 d, 1h 366 d`,
  }),
  model: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a model version: 1-64 letters, digits or ._-')
    .optional()
    .openapi({
      description:
        'a what-if model version (`vigil rescore` output, see /v1/sessions/{id}/models); default: the live scores',
    }),
  features: z.enum(['true', 'false']).default('false').openapi({
    description: 'raw scores also carry `features` (PERCLOS, SDLP, EEG ratio, lapses, ...) when true',
  }),
});

const RawScore = z.object({
  ts: z.string(),
  window_start_ts: z.string(),
  score: z.number(),
  level: z.number().int(),
  components: z.object({
    ocular: z.number().nullable(),
    driving: z.number().nullable(),
    eeg: z.number().nullable(),
    reaction: z.number().nullable(),
    yawn: z.number().nullable(),
  }),
  baseline_ready: z.boolean(),
  model_version: z.string(),
  features: z.record(z.unknown()).optional(),
});
const BucketScore = z.object({
  bucket_start: z.string(),
  score_avg: z.number(),
  score_max: z.number(),
  level_max: z.number().int(),
  count: z.number().int(),
});
const Scores = z
  .object({
    session_id: z.string(),
    bucket: z.enum(buckets),
    from: z.string().nullable(),
    to: z.string().nullable(),
    model: z.string().optional().openapi({ description: 'the what-if model asked for' }),
    scores: z.array(z.union([RawScore, BucketScore])),
  })
  .openapi('Scores');

/** True when the database has the timescaledb extension (then `fatigue_scores_1m` is a continuous aggregate). */
function timescaleProbe(pool: Pool): () => Promise<boolean> {
  let probe: Promise<boolean> | undefined;
  return () =>
    (probe ??= pool
      .query("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'")
      .then((r) => (r.rowCount ?? 0) > 0)
      .catch((err) => {
        probe = undefined; // ask again next time
        throw err;
      }));
}

export function scoresRouter(deps: ApiDeps): Router {
  const r = Router();
  const isTimescale = timescaleProbe(deps.pool);
  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/scores',
      summary: 'Fatigue scores of a session over a bounded time range, raw or bucketed (1m, 5m, 1h)',
      tags: ['sessions'],
      params: SessionIdParams,
      query: Query,
      responses: {
        200: { description: 'scores in time order', schema: Scores },
        404: { description: 'no such session in the caller’s tenant' },
      },
    },
    async ({ params, query: q, principal }, _req, res) => {
      const s = await sessionOf(deps, principal.tenantId, params.id);
      const max = MAX_SPAN_MS[q.bucket];
      const newest = s.last_score_at ?? s.last_seen_at;
      const to = q.to ?? (newest ? new Date(newest.getTime() + 1) : null);
      let from = q.from ?? s.started_at ?? (to ? new Date(to.getTime() - max) : null);
      if (!q.from && from && to && to.getTime() - from.getTime() > max) from = new Date(to.getTime() - max);
      const base = { session_id: s.session_id, bucket: q.bucket, from: iso(from), to: iso(to) };
      if (!from || !to) return void res.json({ ...base, scores: [] }); // nothing scored yet
      if (from.getTime() >= to.getTime()) {
        throw badRequest([{ field: q.to ? 'to' : 'from', message: 'must be after from (the range is [from, to))' }]);
      }
      if (to.getTime() - from.getTime() > max) {
        throw badRequest([
          {
            field: q.from && q.to ? 'to' : q.from ? 'from' : 'to',
            message: `the range may span at most ${max / DAY} days with bucket=${q.bucket}`,
          },
        ]);
      }
      const withFeatures = q.features === 'true';
      const scores =
        q.bucket === 'raw'
          ? await rawScores(deps.pool, s.session_id, principal.tenantId, from, to, withFeatures, q.model)
          : await bucketed(
              deps.pool,
              await isTimescale(),
              s.session_id,
              principal.tenantId,
              from,
              to,
              q.bucket,
              q.model,
            );
      res.json({ ...base, ...(q.model ? { model: q.model } : {}), scores });
    },
  );
  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/models',
      summary: 'The model versions that scored a session: the live model and every what-if model (vigil rescore)',
      tags: ['sessions'],
      params: SessionIdParams,
      responses: {
        200: {
          description: 'model versions with their score counts; pass a what-if one as `model` to /scores',
          schema: z.object({
            session_id: z.string(),
            models: z.array(
              z.object({ model_version: z.string(), kind: z.enum(['live', 'whatif']), scores: z.number().int() }),
            ),
          }),
        },
        404: { description: 'no such session in the caller’s tenant' },
      },
    },
    async ({ params, principal }, _req, res) => {
      const s = await sessionOf(deps, principal.tenantId, params.id);
      res.json({ session_id: s.session_id, models: await modelsOf(deps.pool, s.session_id, principal.tenantId) });
    },
  );
  return r;
}
