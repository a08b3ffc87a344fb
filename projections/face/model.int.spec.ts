import { faceModel } from './model';
import type { FaceFrame } from '../../schemas/types';

const T0 = Date.UTC(2026, 0, 1, 8);
const frame = (seq: number, detected = true): FaceFrame => ({
  event_id: `00000000-0000-4000-8000-00000000000${seq}`,
  tenant_id: 't',
  session_id: 's1',
  device_id: 'cam',
  seq,
  ts: T0 + seq * 50,
  face_detected: detected,
  eye_closure: detected ? 0.25 : null,
  mouth_open: detected ? 0.5 : null,
  head_pitch_deg: detected ? -3 : null,
  head_yaw_deg: detected ? 4.5 : null,
  head_roll_deg: detected ? 0 : null,
});
const records = (frames: FaceFrame[]) =>
  frames.map((value, i) => ({ topic: 'face' as const, partition: 0, offset: String(i), value }));

describe('face read model', () => {
  it('turns a batch into one multi-row insert with one array per face_frames column, nulls kept', () => {
    const statements = faceModel.project(records([frame(1), frame(2, false)]));
    expect(statements).toHaveLength(1);
    expect(statements[0]!.values).toEqual([
      ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'],
      ['2026-01-01T08:00:00.050Z', '2026-01-01T08:00:00.100Z'],
      ['t', 't'],
      ['s1', 's1'],
      ['cam', 'cam'],
      [1, 2],
      [true, false],
      [0.25, null],
      [0.5, null],
      [-3, null],
      [4.5, null],
      [0, null],
    ]);
  });

  it('inserts idempotently and counts only the inserted frames on the session', () => {
    const [s] = faceModel.project(records([frame(1)]));
    expect(s!.text).toContain(
      'INSERT INTO face_frames (event_id, ts, tenant_id, session_id, device_id, seq, face_detected, eye_closure, mouth_open, head_pitch_deg, head_yaw_deg, head_roll_deg)',
    );
    expect(s!.text).toContain(
      'unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::boolean[], $8::real[], $9::real[], $10::real[], $11::real[], $12::real[])',
    );
    expect(s!.text).toContain('ON CONFLICT DO NOTHING\n  RETURNING tenant_id, session_id, ts');
    expect(s!.text).toContain('face_frame_count = sessions.face_frame_count + EXCLUDED.face_frame_count');
    expect(s!.text).toContain('last_seen_at = GREATEST(sessions.last_seen_at, EXCLUDED.last_seen_at)');
    expect(s!.text).toContain(
      'GROUP BY tenant_id, session_id ORDER BY session_id COLLATE "C", tenant_id COLLATE "C"\nON CONFLICT (tenant_id, session_id)',
    );
    expect(s!.text).not.toContain('first_ts'); // the EEG span's: the API reports it as EEG's
  });

  it('returns no statement for an empty batch', () => {
    expect(faceModel.project([])).toEqual([]);
  });
});
