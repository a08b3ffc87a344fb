import { codecOf, toAvro } from '../../core/serde';
import { avroSchemaOf, type TopicKey } from '../../schemas/catalogue';
import { violationsOf } from '../../schemas/rules';
import { buildAlert, buildEeg, buildFace, buildGame, buildScore, buildSession, buildVehicle } from './build';

/** Avro validation problems of `value` on `key`'s schema, as field paths (empty when valid). */
function avroProblems(key: TopicKey, value: unknown): string[] {
  const { type, shape } = codecOf(avroSchemaOf(key));
  const problems: string[] = [];
  type.isValid(toAvro(value, shape), { errorHook: (path) => problems.push(path.join('.')) });
  return problems;
}

/** Every factory with no overrides, and every kind of the multi-kind topics, by its topic. */
const defaults: [TopicKey, string, unknown][] = [
  ['sessions', 'SessionStarted', buildSession('SessionStarted')],
  ['sessions', 'SessionEnded', buildSession('SessionEnded')],
  ['eeg', 'EegBandPower', buildEeg()],
  ['face', 'FaceFrame', buildFace()],
  ['vehicle', 'VehicleFrame', buildVehicle()],
  ['game', 'LaneDeparture', buildGame('LaneDeparture')],
  ['game', 'Collision', buildGame('Collision')],
  ['game', 'StimulusShown', buildGame('StimulusShown')],
  ['game', 'StimulusResponse', buildGame('StimulusResponse')],
  ['game', 'StimulusMissed', buildGame('StimulusMissed')],
  ['scores', 'FatigueScored', buildScore()],
  ['alerts', 'AlertRaised', buildAlert('AlertRaised')],
  ['alerts', 'AlertEscalated', buildAlert('AlertEscalated')],
  ['alerts', 'AlertAcknowledged', buildAlert('AlertAcknowledged')],
  ['alerts', 'AlertCleared', buildAlert('AlertCleared')],
];

describe('test data factories', () => {
  it.each(defaults)('%s %s: valid Avro of the topic and keeps every rule', (key, _kind, value) => {
    expect(avroProblems(key, value)).toEqual([]);
    expect(violationsOf(key, value)).toEqual([]);
  });

  it('takes overrides as a partial: envelope, device and kind fields flat, the rest defaulted', () => {
    const response = buildGame('StimulusResponse', { seq: 7, reaction_ms: 450 });
    expect(response).toMatchObject({ seq: 7, device_id: 'simulator-1', tenant_id: 'tenant-a' });
    expect(response.event).toEqual({ type: 'StimulusResponse', stimulus_id: 'stimulus-1', reaction_ms: 450 });
    expect(buildSession('SessionEnded', { reason: 'TIMEOUT' }).event).toEqual({
      type: 'SessionEnded',
      reason: 'TIMEOUT',
    });
    expect(buildVehicle({ lane_offset_m: null })).toMatchObject({ lane_offset_m: null, speed_kmh: 80 });
  });

  it('derives the event id from the event’s identity: the same arguments give the same id, another seq another', () => {
    expect(buildEeg({ seq: 1 }).event_id).toBe(buildEeg({ seq: 1 }).event_id);
    expect(buildEeg({ seq: 1 }).event_id).not.toBe(buildEeg({ seq: 2 }).event_id);
    expect(buildSession('SessionStarted').event_id).not.toBe(buildSession('SessionEnded').event_id);
    expect(buildGame('Collision', { tenant_id: 'tenant-b' }).event_id).not.toBe(buildGame('Collision').event_id);
  });
});
