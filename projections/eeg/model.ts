import type { EegBandPower } from '../../schemas/types';
import { isoOf, type ProjectedRecord, type ReadModel } from '../model';

/**
 * `eeg_frames` rows from `telemetry.eeg.v1`, and the session's EEG counters (frame count, first and
 * last ts). One statement per batch, whatever its size: the rows travel as arrays and `unnest` turns
 * them into a multi-row insert. The counters add only the rows the insert really created
 * (`RETURNING` after `ON CONFLICT DO NOTHING`), so a redelivered frame is counted once.
 */
export const eegModel: ReadModel = {
  name: 'eeg',
  topics: ['eeg'],
  project(records) {
    if (records.length === 0) return [];
    const cols: unknown[][] = [[], [], [], [], [], [], []];
    for (const { value: e } of records as ProjectedRecord<EegBandPower>[]) {
      const row = [e.event_id, isoOf(e.ts), e.tenant_id, e.session_id, e.device_id, e.seq, JSON.stringify(e.channels)];
      row.forEach((v, i) => cols[i]!.push(v));
    }
    return [
      {
        text: `WITH ins AS (
                 INSERT INTO eeg_frames (event_id, ts, tenant_id, session_id, device_id, seq, channels)
                 SELECT * FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::jsonb[])
                 ON CONFLICT DO NOTHING
                 RETURNING tenant_id, session_id, ts)
               INSERT INTO sessions (session_id, tenant_id, eeg_frame_count, first_ts, last_ts)
               SELECT session_id, min(tenant_id), count(*), min(ts), max(ts) FROM ins GROUP BY session_id
               ON CONFLICT (session_id) DO UPDATE SET
                 eeg_frame_count = sessions.eeg_frame_count + EXCLUDED.eeg_frame_count,
                 first_ts = LEAST(sessions.first_ts, EXCLUDED.first_ts),
                 last_ts = GREATEST(sessions.last_ts, EXCLUDED.last_ts),
                 updated_at = now()`,
        values: cols,
      },
    ];
  },
};
