import { fatigueProcessor } from './fatigue/keyed-processor';
import { step } from './fatigue/processor';
import { decodeStateBinary, encodeStateBinary } from './fatigue/state-codec';
import { initialState, serializeState, type FatigueInput, type FatigueState } from './fatigue/state';
import { SESSION, T0, eeg, every, face, merge, sessionStarted, vehicle } from './fatigue/testing';
import { decodeSnapshot, encodeSnapshot } from './snapshot-codec';

/**
 * Changelog values (docs/design.md §4 "Snapshots"): binary envelope and binary fatigue state, lossless
 * (a restored session steps exactly as the one in memory), and the JSON values of earlier versions
 * still read.
 */

/** Eight minutes of a session with face at 30 Hz, vehicle and EEG at 10 Hz, eyes sometimes closing. */
function inputs(minutes = 8): FatigueInput[] {
  const end = T0 + minutes * 60_000;
  return merge(
    [sessionStarted(T0)],
    every(T0, end, 33, (ts, i) => face(ts, { closure: i % 97 < 9 ? 0.9 : 0.1 + (i % 7) / 100 })),
    every(T0, end, 100, (ts, i) => vehicle(ts, { speed: 80 + (i % 5), offset: ((i % 13) - 6) / 31 })),
    every(T0, end, 100, (ts, i) => eeg(ts, { ratio: 1 + (i % 11) / 17 })),
  );
}

function run(state: FatigueState, xs: FatigueInput[]): { state: FatigueState; outputs: string[] } {
  const outputs: string[] = [];
  for (const x of xs) {
    const r = step(state, x);
    state = r.state;
    for (const o of r.outputs) outputs.push(JSON.stringify(o));
  }
  return { state, outputs };
}

describe('changelog snapshots', () => {
  const all = inputs();
  const cut = Math.floor(all.length * 0.7);
  const first = run(initialState(SESSION), all.slice(0, cut));

  it('given a fatigue state mid-session, then its binary form decodes to the same state (numbers exact) and is smaller than the JSON', () => {
    const bytes = encodeStateBinary(first.state);
    const back = decodeStateBinary(bytes);
    expect(serializeState(back)).toBe(serializeState(first.state));
    expect(first.state.pending.length - first.state.pendingHead).toBeGreaterThan(0);
    expect(first.state.buckets.length).toBeGreaterThan(5);
    expect(bytes.length).toBeLessThan(Buffer.byteLength(serializeState(first.state)));
  });

  it('given a session restored from its binary snapshot, then the rest of the input gives byte-identical outputs to the session kept in memory', () => {
    const restoredFrom = decodeStateBinary(encodeStateBinary(first.state));
    const kept = run(structuredClone(first.state), all.slice(cut)); // step works in place
    const restored = run(restoredFrom, all.slice(cut));
    expect(kept.outputs.length).toBeGreaterThan(10);
    expect(restored.outputs).toEqual(kept.outputs);
    expect(serializeState(restored.state)).toBe(serializeState(kept.state));
  });

  it('given an envelope, then it round-trips partition, offsets, owner, clock and state bytes; an ended session has no state', () => {
    const state = fatigueProcessor.stateCodec!.encode(first.state);
    const value = encodeSnapshot({
      p: 7,
      applied: { 'vigil.telemetry.face.v1': '123456789012', 'vigil.sessions.v1': '0' },
      owner: 'tenant-1',
      seenAt: T0 + 5_000,
      state: { codec: 1, bytes: state },
    });
    expect(value[0]).toBe(0xb1);
    expect(decodeSnapshot(value)).toEqual({
      p: 7,
      applied: { 'vigil.telemetry.face.v1': '123456789012', 'vigil.sessions.v1': '0' },
      owner: 'tenant-1',
      seenAt: T0 + 5_000,
      state: { codec: 1, bytes: state },
    });
    expect(decodeSnapshot(encodeSnapshot({ p: 0, applied: { x: '4' } }))).toEqual({ p: 0, applied: { x: '4' } });
  });

  it('given a JSON changelog value written before binary snapshots, then it decodes with its state as text the processor reads', () => {
    const legacy = JSON.stringify({
      p: 2,
      applied: { 'vigil.telemetry.face.v1': '41' },
      state: serializeState(first.state),
      owner: 'tenant-1',
      seenAt: 99,
    });
    const decoded = decodeSnapshot(Buffer.from(legacy));
    expect(decoded).toMatchObject({
      p: 2,
      applied: { 'vigil.telemetry.face.v1': '41' },
      owner: 'tenant-1',
      seenAt: 99,
    });
    expect(decoded.state?.codec).toBe(0);
    const text = decoded.state?.codec === 0 ? decoded.state.text : '';
    expect(serializeState(fatigueProcessor.deserialize(text))).toBe(serializeState(first.state));
  });

  it('given a value of an unknown format, then decoding refuses it as EVENT_INVALID', () => {
    expect(() => decodeSnapshot(Buffer.from([0x02, 0x00]))).toThrow(expect.objectContaining({ code: 'EVENT_INVALID' }));
  });
});
