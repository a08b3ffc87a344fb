import { vehicleModel } from './model';
import type { VehicleFrame } from '../../schemas/types';

const T0 = Date.UTC(2026, 0, 1, 8);
const frame = (seq: number, offset: number | null): VehicleFrame => ({
  event_id: `00000000-0000-4000-8000-00000000000${seq}`,
  tenant_id: 't',
  session_id: `s${seq}`,
  device_id: 'veh',
  seq,
  ts: T0 + seq * 100,
  speed_kmh: 80 + seq,
  lane_offset_m: offset,
  steering_deg: -1.5,
});

describe('vehicle read model', () => {
  it('turns a batch (of any sessions) into one multi-row insert with one array per vehicle_frames column', () => {
    const records = [frame(1, 0.12), frame(2, null)].map((value, i) => ({
      topic: 'vehicle' as const,
      partition: 0,
      offset: String(i),
      value,
    }));
    const statements = vehicleModel.project(records);
    expect(statements).toHaveLength(1);
    expect(statements[0]!.values).toEqual([
      ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'],
      ['2026-01-01T08:00:00.100Z', '2026-01-01T08:00:00.200Z'],
      ['t', 't'],
      ['s1', 's2'],
      ['veh', 'veh'],
      [1, 2],
      [81, 82],
      [0.12, null],
      [-1.5, -1.5],
    ]);
    const text = statements[0]!.text;
    expect(text).toContain(
      'INSERT INTO vehicle_frames (event_id, ts, tenant_id, session_id, device_id, seq, speed_kmh, lane_offset_m, steering_deg)',
    );
    expect(text).toContain(
      'unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::real[], $8::real[], $9::real[])',
    );
    expect(text).toContain('ON CONFLICT DO NOTHING');
    expect(text).toContain('vehicle_frame_count = sessions.vehicle_frame_count + EXCLUDED.vehicle_frame_count');
  });

  it('returns no statement for an empty batch', () => {
    expect(vehicleModel.project([])).toEqual([]);
  });
});
