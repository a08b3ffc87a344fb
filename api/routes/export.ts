import { Router, type Response } from 'express';
import { stringify } from 'csv-stringify/sync';
import { escapeFormula } from '../../projections/replay/format';
import { z } from 'zod';
import type { ApiDeps } from '../app';
import { route } from '../openapi';
import { SessionIdParams } from '../schemas';
import { sessionOf } from './sessions';

/**
 * `GET /v1/sessions/:id/export?format=csv|ndjson&stream=...`: every row of one stream of a session,
 * in time order, streamed with bounded memory: keyset batches of BATCH rows (never one big result),
 * each written only after the previous one drained (`res.write` backpressure); a client that goes
 * away stops the reads. An error after the first byte can only cut the response short.
 */
const BATCH = 2_000;

interface StreamSpec {
  table: string;
  columns: string[];
  /** The keyset: `ts` alone when (session_id, ts) is unique, else (ts, event_id). */
  byEventId: boolean;
}

const streamSpecs = {
  scores: {
    table: 'fatigue_scores',
    columns: [
      ...['ts', 'window_start_ts', 'score', 'level', 'ocular', 'driving', 'eeg', 'reaction', 'yawn'],
      ...['baseline_ready', 'model_version', 'event_id'],
    ],
    byEventId: false,
  },
  alerts: {
    table: 'alert_events',
    columns: ['ts', 'event_id', 'alert_id', 'type', 'level', 'reason', 'score', 'escalation', 'acknowledged_by'],
    byEventId: true,
  },
  eeg: { table: 'eeg_frames', columns: ['ts', 'event_id', 'device_id', 'seq', 'channels'], byEventId: true },
  face: {
    table: 'face_frames',
    columns: [
      ...['ts', 'event_id', 'device_id', 'seq', 'face_detected', 'eye_closure', 'mouth_open'],
      ...['head_pitch_deg', 'head_yaw_deg', 'head_roll_deg'],
    ],
    byEventId: true,
  },
  vehicle: {
    table: 'vehicle_frames',
    columns: ['ts', 'event_id', 'device_id', 'seq', 'speed_kmh', 'lane_offset_m', 'steering_deg'],
    byEventId: true,
  },
  game: { table: 'game_events', columns: ['ts', 'event_id', 'device_id', 'seq', 'kind', 'details'], byEventId: true },
} satisfies Record<string, StreamSpec>;

type StreamName = keyof typeof streamSpecs;
const streamNames = Object.keys(streamSpecs) as [StreamName, ...StreamName[]];

const Query = z.object({
  format: z.enum(['csv', 'ndjson']).default('csv'),
  stream: z
    .enum(streamNames)
    .default('scores')
    .openapi({ description: 'which rows: scores, alerts or a telemetry stream' }),
});

/** Resolves once `res` can take more, or is closed (then `closed` is true). */
const drained = (res: Response) =>
  new Promise<void>((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
  });

/** Text cells are formula-escaped (a cell starting with = + - @ tab or CR gets a leading '); numbers are not. */
const csvCast = {
  string: (v: string) => escapeFormula(v),
  boolean: (v: boolean) => (v ? 'true' : 'false'),
  date: (v: Date) => v.toISOString(),
  object: (v: object) => JSON.stringify(v),
};

export function exportRouter(deps: ApiDeps): Router {
  const r = Router();
  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/export',
      summary: 'All rows of one stream of a session in time order, as CSV (with a header row) or NDJSON, streamed',
      tags: ['sessions'],
      params: SessionIdParams,
      query: Query,
      responses: {
        200: {
          description: 'text/csv or application/x-ndjson (format), one row per event',
          contentType: 'text/csv',
          schema: z.string(),
        },
        404: { description: 'no such session in the caller’s tenant' },
      },
    },
    async ({ params, query, principal }, _req, res) => {
      const s = await sessionOf(deps, principal.tenantId, params.id);
      const spec: StreamSpec = streamSpecs[query.stream];
      res.status(200);
      res.setHeader('Content-Type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      res.setHeader(
        'Content-Disposition',
        `attachment; filename="${s.session_id}-${query.stream}.${query.format === 'csv' ? 'csv' : 'ndjson'}"`,
      );
      let closed = false;
      res.once('close', () => (closed = true));
      const key = spec.byEventId
        ? '($3::timestamptz IS NULL OR (ts, event_id) > ($3, $4::uuid)) ORDER BY ts, event_id'
        : '($3::timestamptz IS NULL OR ts > $3) AND $4::uuid IS NULL ORDER BY ts';
      const sql = `SELECT ${spec.columns.join(', ')} FROM ${spec.table}
                    WHERE session_id = $1 AND tenant_id = $2 AND ${key} LIMIT ${BATCH}`;
      let after: [Date | null, string | null] = [null, null];
      let first = true;
      while (!closed) {
        const { rows } = await deps.pool.query(sql, [s.session_id, principal.tenantId, ...after]);
        let chunk =
          query.format === 'csv'
            ? stringify(rows, { header: first, columns: spec.columns, cast: csvCast })
            : rows.map((x) => JSON.stringify(x)).join('\n') + (rows.length ? '\n' : '');
        if (first && query.format === 'csv' && !rows.length) chunk = `${spec.columns.join(',')}\n`;
        first = false;
        if (chunk && !res.write(chunk)) await drained(res);
        if (rows.length < BATCH) break;
        const last = rows[rows.length - 1];
        after = [last.ts, spec.byEventId ? last.event_id : null];
      }
      if (!closed) res.end();
    },
  );
  return r;
}
