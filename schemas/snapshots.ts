import type { Schema } from 'avsc';

/**
 * Avro schemas of the processor's changelog values (internal: never registered, never read outside
 * processors/; the changelog is rebuilt by replaying the inputs). docs/design.md §4 "Snapshots".
 *
 * A changelog value is one format byte then the body: `{` (0x7b) is the JSON snapshot written
 * before binary snapshots existed (read, never written); SNAPSHOT_FORMAT_AVRO_V1 is
 * `sessionSnapshotV1` below.
 */
export const SNAPSHOT_FORMAT_AVRO_V1 = 0xb1;

/** The runner's envelope: partition, last applied offset per input topic, owner, append-time clock, state. */
export const sessionSnapshotV1: Schema = {
  type: 'record',
  name: 'SessionSnapshot',
  namespace: 'vigil.internal.v1',
  fields: [
    { name: 'p', type: 'int' },
    { name: 'applied', type: { type: 'map', values: 'long' } },
    { name: 'owner', type: ['null', 'string'], default: null },
    { name: 'seenAt', type: ['null', 'long'], default: null },
    /** 0: the processor's `serialize` text (UTF-8); 1: its binary `stateCodec`. */
    { name: 'codec', type: 'int' },
    { name: 'state', type: ['null', 'bytes'], default: null },
  ],
};

const nullable = (type: string): { type: Schema; default: null } => ({ type: ['null', type], default: null });
const moments: Schema = {
  type: 'record',
  name: 'Moments',
  fields: [
    { name: 'n', type: 'long' },
    { name: 'mean', type: 'double' },
    { name: 'm2', type: 'double' },
  ],
};

/**
 * fatigue-v1's session state (processors/fatigue/state.ts FatigueState, state version 1). Counts are
 * longs (varints); everything measured in ms or fractions is a double, so a value round-trips exactly.
 * The reorder buffer's samples travel as (source, ts, fields) like the JSON snapshot's tuples.
 */
export const fatigueStateV1: Schema = {
  type: 'record',
  name: 'FatigueState',
  namespace: 'vigil.internal.fatigue.v1',
  fields: [
    { name: 'v', type: 'int' },
    { name: 'model_version', type: 'string' },
    { name: 'session_id', type: 'string' },
    { name: 'tenant_id', ...nullable('string') },
    { name: 'ended', type: 'boolean' },
    { name: 'startTs', ...nullable('double') },
    { name: 'maxTs', ...nullable('double') },
    { name: 'clock', ...nullable('double') },
    { name: 'nextEnd', ...nullable('double') },
    {
      name: 'pending',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Sample',
          fields: [
            { name: 's', type: { type: 'enum', name: 'Source', symbols: ['f', 'v', 'e', 'g', 'c'] } },
            { name: 'ts', type: 'double' },
            { name: 'x', type: { type: 'array', items: ['null', 'boolean', 'double', 'string'] } },
          ],
        },
      },
    },
    {
      name: 'buckets',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Bucket',
          fields: [
            { name: 'k', type: 'long' },
            { name: 'faceN', type: 'long' },
            { name: 'faceMs', type: 'double' },
            { name: 'closedMs', type: 'double' },
            { name: 'closures', type: 'long' },
            { name: 'longClosures', type: 'long' },
            { name: 'yawns', type: 'long' },
            { name: 'drvN', type: 'long' },
            { name: 'lane', type: moments },
            { name: 'departures', type: 'long' },
            { name: 'eegN', type: 'long' },
            { name: 'eegGoodN', type: 'long' },
            { name: 'eegSum', type: 'double' },
            { name: 'stimN', type: 'long' },
            { name: 'lapses', type: 'long' },
          ],
        },
      },
    },
    {
      name: 'face',
      type: {
        type: 'record',
        name: 'FaceTrack',
        fields: [
          { name: 'lastTs', ...nullable('double') },
          { name: 'lastKind', type: 'int' },
          { name: 'closureStart', ...nullable('double') },
          { name: 'closureLast', type: 'double' },
          { name: 'closureMicro', type: 'boolean' },
          { name: 'mouthStart', ...nullable('double') },
          { name: 'mouthLast', type: 'double' },
          { name: 'mouthCounted', type: 'boolean' },
          { name: 'lostSince', ...nullable('double') },
        ],
      },
    },
    {
      name: 'vehicle',
      type: {
        type: 'record',
        name: 'VehicleTrack',
        fields: [
          { name: 'lastTs', ...nullable('double') },
          { name: 'movingSince', ...nullable('double') },
        ],
      },
    },
    {
      name: 'baseline',
      type: {
        type: 'record',
        name: 'Baseline',
        fields: [
          { name: 'endTs', ...nullable('double') },
          { name: 'ready', type: 'boolean' },
          { name: 'faceMs', type: 'double' },
          { name: 'closedMs', type: 'double' },
          { name: 'lane', type: 'Moments' },
          { name: 'eeg', type: 'Moments' },
          { name: 'pb', type: 'double' },
          { name: 'b', type: 'double' },
          { name: 'eegMean', ...nullable('double') },
          { name: 'eegStd', ...nullable('double') },
        ],
      },
    },
    {
      name: 'levels',
      type: {
        type: 'record',
        name: 'LevelState',
        fields: [
          { name: 'level', type: 'int' },
          { name: 'enter2Since', ...nullable('double') },
          { name: 'enter1Since', ...nullable('double') },
          { name: 'leave2Since', ...nullable('double') },
          { name: 'leave1Since', ...nullable('double') },
        ],
      },
    },
    {
      name: 'alerts',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'ActiveAlert',
          fields: [
            { name: 'id', type: 'string' },
            { name: 'reason', type: 'string' },
            { name: 'level', type: 'int' },
            { name: 'raisedTs', type: 'double' },
            { name: 'acknowledged', type: 'boolean' },
            { name: 'escalations', type: 'long' },
            { name: 'clearAt', ...nullable('double') },
          ],
        },
      },
    },
  ],
};
