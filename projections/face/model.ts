import type { FaceFrame } from '../../schemas/types';
import { telemetryColumns, telemetryModelSql, telemetrySeedSql, telemetryStatements, type Column } from '../columns';
import type { ProjectedRecord, ReadModel } from '../model';

/** `face_frames` columns, in table order, from FaceFrame (telemetry.face.v1). */
const faceColumns: Column<FaceFrame>[] = [
  ...telemetryColumns,
  { name: 'face_detected', type: 'boolean', of: (e) => e.face_detected },
  { name: 'eye_closure', type: 'real', of: (e) => e.eye_closure },
  { name: 'mouth_open', type: 'real', of: (e) => e.mouth_open },
  { name: 'head_pitch_deg', type: 'real', of: (e) => e.head_pitch_deg },
  { name: 'head_yaw_deg', type: 'real', of: (e) => e.head_yaw_deg },
  { name: 'head_roll_deg', type: 'real', of: (e) => e.head_roll_deg },
];

const sql = telemetryModelSql('face_frames', faceColumns, 'face_frame_count');

/**
 * `face_frames` rows from `telemetry.face.v1`, and the session's face frame count and last_seen_at: one multi-row statement per batch (see `telemetryModelSql`).
 */
export const faceModel: ReadModel = {
  name: 'face',
  topics: ['face'],
  writes: {
    tables: [{ name: 'face_frames', timeColumn: 'ts' }],
    sessionColumns: ['face_frame_count'],
    seed: [telemetrySeedSql('face_frames', 'face_frame_count')],
  },
  project(records) {
    return telemetryStatements(
      sql,
      faceColumns,
      (records as ProjectedRecord<FaceFrame>[]).map((r) => r.value),
    );
  },
};
