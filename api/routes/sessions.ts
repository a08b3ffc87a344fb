import { Router } from 'express';
import type { Pool } from '../../core/db';
import { badRequest, notFound } from '../problem';

/** Session ids are UUIDs or short slugs; anything else is refused before it reaches SQL. */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

interface SessionRow {
  session_id: string;
  tenant_id: string;
  driver_id: string | null;
  vehicle_id: string | null;
  status: string;
  started_at: Date | null;
  ended_at: Date | null;
  end_reason: string | null;
  eeg_frame_count: string;
  first_ts: Date | null;
  last_ts: Date | null;
}

export function sessionsRouter(pool: Pool): Router {
  const r = Router();
  r.get('/v1/sessions/:id', async (req, res) => {
    const id = req.params.id;
    if (!SESSION_ID.test(id))
      throw badRequest([
        { field: 'id', message: 'must be 1-128 letters, digits or _.:- and start with a letter or digit' },
      ]);
    const { rows } = await pool.query<SessionRow>('SELECT * FROM sessions WHERE session_id = $1', [id]);
    const s = rows[0];
    if (!s) throw notFound(`session ${id}`);
    res.json({
      session_id: s.session_id,
      tenant_id: s.tenant_id,
      driver_id: s.driver_id,
      vehicle_id: s.vehicle_id,
      status: s.status,
      started_at: s.started_at?.toISOString() ?? null,
      ended_at: s.ended_at?.toISOString() ?? null,
      end_reason: s.end_reason,
      telemetry: {
        eeg: {
          frames: Number(s.eeg_frame_count),
          first_ts: s.first_ts?.toISOString() ?? null,
          last_ts: s.last_ts?.toISOString() ?? null,
        },
      },
    });
  });
  return r;
}
