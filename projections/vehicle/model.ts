import type { VehicleFrame } from '../../schemas/types';
import { telemetryColumns, telemetryModelSql, telemetrySeedSql, telemetryStatements, type Column } from '../columns';
import type { ProjectedRecord, ReadModel } from '../model';

/** `vehicle_frames` columns, in table order, from VehicleFrame (telemetry.vehicle.v1). */
const vehicleColumns: Column<VehicleFrame>[] = [
  ...telemetryColumns,
  { name: 'speed_kmh', type: 'real', of: (e) => e.speed_kmh },
  { name: 'lane_offset_m', type: 'real', of: (e) => e.lane_offset_m },
  { name: 'steering_deg', type: 'real', of: (e) => e.steering_deg },
];

const sql = telemetryModelSql('vehicle_frames', vehicleColumns, 'vehicle_frame_count');

/**
 * `vehicle_frames` rows from `telemetry.vehicle.v1`, and the session's vehicle frame count and
 * last_seen_at: one multi-row statement per batch (see `telemetryModelSql`).
 */
export const vehicleModel: ReadModel = {
  name: 'vehicle',
  topics: ['vehicle'],
  writes: {
    tables: [{ name: 'vehicle_frames', timeColumn: 'ts' }],
    sessionColumns: ['vehicle_frame_count'],
    seed: [telemetrySeedSql('vehicle_frames', 'vehicle_frame_count')],
  },
  project(records) {
    return telemetryStatements(
      sql,
      vehicleColumns,
      (records as ProjectedRecord<VehicleFrame>[]).map((r) => r.value),
    );
  },
};
