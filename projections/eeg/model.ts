import type { EegBandPower } from '../../schemas/types';
import { telemetryColumns, telemetryModelSql, telemetrySeedSql, telemetryStatements, type Column } from '../columns';
import type { ProjectedRecord, ReadModel } from '../model';

/** `eeg_frames` columns, in table order, from EegBandPower (telemetry.eeg.v1). */
export const eegColumns: Column<EegBandPower>[] = [
  ...telemetryColumns,
  { name: 'channels', type: 'jsonb', of: (e) => JSON.stringify(e.channels) },
];

const sql = telemetryModelSql('eeg_frames', eegColumns, 'eeg_frame_count', { span: true });

/**
 * `eeg_frames` rows from `telemetry.eeg.v1`, and the session's EEG counters (frame count, first and
 * last ts, last_seen_at). One statement per batch, whatever its size: the rows travel as arrays and
 * `unnest` turns them into a multi-row insert. The counters add only the rows the insert really
 * created (`RETURNING` after `ON CONFLICT DO NOTHING`), so a redelivered frame is counted once.
 */
export const eegModel: ReadModel = {
  name: 'eeg',
  topics: ['eeg'],
  writes: {
    tables: [{ name: 'eeg_frames', timeColumn: 'ts' }],
    sessionColumns: ['eeg_frame_count', 'first_ts', 'last_ts'],
    seed: [telemetrySeedSql('eeg_frames', 'eeg_frame_count', { span: true })],
  },
  project(records) {
    return telemetryStatements(
      sql,
      eegColumns,
      (records as ProjectedRecord<EegBandPower>[]).map((r) => r.value),
    );
  },
};
