import { Router } from 'express';
import { z } from 'zod';
import type { Pool } from '../../core/db';
import type { Logger } from '../../core/logger';
import { messageOf } from '../../core/errors';
import { route } from '../openapi';
import { badRequest, notFound } from '../../core/http/problem';
import { loadPlayback, pace } from '../playback';
import { SseStream, defaultSseOptions, type SseOptions } from '../sse';
import { recordSseClients } from '../metrics';
import type { StreamLimiter } from '../streams';
import { SessionIdParam } from './live';
import type { ApiDeps } from '../app';

interface PlaybackDeps {
  pool: Pool;
  log: Logger;
  sse?: SseOptions;
  /** Caps open streams per key and process and ends a revoked key's streams (api/streams.ts). */
  streams?: StreamLimiter;
}

const PlaybackQuery = z.object({
  speed: z.coerce
    .number()
    .int()
    .min(1)
    .max(32)
    .default(1)
    .openapi({ description: 'event time runs this many times faster than the wall clock (1-32)' }),
});

/**
 * `GET /v1/sessions/:id/playback?speed=1..32`: an ended session's scores, alert events and per-minute
 * telemetry summaries over Server-Sent Events, paced by event time / speed (see playback.ts). `id:` is
 * the event's index in the timeline: reconnecting with Last-Event-ID continues after it. Ends with an
 * `end` event. A live (not ended) session is a 400: its history is still being written.
 */
export const playbackRoutes = (d: ApiDeps): Router => playbackRouter({ ...d, sse: d.live?.sse });

function playbackRouter(deps: PlaybackDeps): Router {
  const r = Router();
  route(
    r,
    {
      method: 'get',
      path: '/v1/sessions/:id/playback',
      summary: 'Replay an ended session at 1-32x (Server-Sent Events)',
      tags: ['live'],
      params: SessionIdParam,
      query: PlaybackQuery,
      responses: {
        200: {
          description:
            'text/event-stream: `event:` score | alert | telemetry (a per-minute summary), `data:` JSON, `id:` the index in the timeline; then `event: end` with `{"count": n}`.',
          contentType: 'text/event-stream',
          schema: z.string(),
        },
        404: { description: 'no such session for this tenant' },
      },
    },
    async ({ params, query, principal }, req, res) => {
      const { rows } = await deps.pool.query<{ status: string; ended_at: Date | null }>(
        'SELECT status, ended_at FROM sessions WHERE tenant_id = $1 AND session_id = $2',
        [principal.tenantId, params.id],
      );
      const s = rows[0];
      if (!s) throw notFound(`session ${params.id}`);
      if (s.status !== 'ended' || !s.ended_at)
        throw badRequest([{ field: 'id', message: 'the session has not ended; follow it live at /live instead' }]);
      const resumeHeader = req.get('last-event-id');
      const from = resumeHeader !== undefined && /^\d{1,9}$/.test(resumeHeader) ? Number(resumeHeader) + 1 : 0;
      const timeline = await loadPlayback(deps.pool, principal.tenantId, params.id, s.ended_at);
      const lease = deps.streams?.acquire(principal.keyId, res);
      const sse = new SseStream(res, deps.sse ?? defaultSseOptions);
      lease?.attach(sse);
      recordSseClients('playback', 1);
      try {
        const sent = await pace(
          timeline,
          query.speed,
          (e, i) => sse.send({ id: String(i), event: e.kind, data: JSON.stringify(e.data) }),
          from,
        );
        if (sse.isOpen) sse.send({ event: 'end', data: JSON.stringify({ count: sent }) });
      } catch (err) {
        deps.log.warn({ err: messageOf(err), session_id: params.id }, 'playback ended by an error');
      } finally {
        recordSseClients('playback', -1);
        sse.end();
        lease?.release();
      }
    },
  );
  return r;
}
