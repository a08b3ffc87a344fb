import type { TopicKey } from '../../schemas/catalogue';
import type { AlertEvent } from '../../schemas/types';
import { Replay, type ReplayOutput } from '../rescore/replay';
import { fatigueV1 } from './config';
import { alertIdOf } from './ids';
import { MAX_ESCALATIONS_PER_STEP } from './alerts';
import { step } from './processor';
import { fatigueProcessor } from './keyed-processor';
import { deserializeState, initialState, serializeState, type FatigueInput, type FatigueOutput } from './state';
import { SESSION, T0, alertLog, face, faceEpisodes, run, split } from './testing';

/**
 * Issue 11: one step never emits an unbounded number of escalations. A session whose clock jumps
 * by hours (a gap in its telemetry, or a clock that moved) with an unacknowledged level-2 alert would
 * otherwise emit one AlertEscalated per 30 s of the gap in that one step.
 */
const s = (sec: number) => T0 + sec * 1000;
const HOURS = 3;
const JUMP = s(HOURS * 3600);
const microsleepId = alertIdOf(fatigueV1.model_version, SESSION, 'microsleep', s(11));

/** Eyes closed from 10 s and still closed at the last frame (19.9 s): the microsleep alert raised at 11 s stays active. */
const beforeJump: FatigueInput[] = faceEpisodes(s(0), s(20), { closures: [[s(10), 60_000]] });
/** Then one frame (eyes closed) 3 hours later, and the frames after it. */
const jump: FatigueInput = face(JUMP, { closure: 0.95 });
const afterJump: FatigueInput[] = Array.from({ length: 400 }, (_, i) => face(JUMP + 100 * (i + 1), { closure: 0.1 }));
const inputs = [...beforeJump, jump, ...afterJump];

const escalations = (outputs: FatigueOutput[]) =>
  split(outputs).alerts.filter((a) => a.event.type === 'AlertEscalated');

describe('escalation budget: at most MAX_ESCALATIONS_PER_STEP AlertEscalated per step', () => {
  it('is 3', () => {
    expect(MAX_ESCALATIONS_PER_STEP).toBe(3);
  });

  it(`given an unacknowledged microsleep alert, when one frame jumps the session's clock by ${HOURS} h, then that step emits 3 escalations, not one per 30 s`, () => {
    // given
    const { state, alerts } = run(beforeJump);
    expect(alertLog(alerts)).toEqual(['+11 AlertRaised microsleep L2']);
    // when
    const { outputs } = step(state, jump);
    // then: the first three due (+41, +71, +101 s) are emitted; the other ~360 due before the
    // watermark are coalesced into the count, without an event each
    const esc = escalations(outputs);
    expect(esc).toHaveLength(MAX_ESCALATIONS_PER_STEP);
    expect(alertLog(esc)).toEqual(['+41 AlertEscalated 1', '+71 AlertEscalated 2', '+101 AlertEscalated 3']);
    const watermark = JUMP - fatigueV1.allowedLatenessMs;
    const due = Math.floor((watermark - s(11)) / fatigueV1.escalateEveryMs);
    expect(due).toBeGreaterThan(300);
    expect(state.alerts.find((a) => a.id === microsleepId)!.escalations).toBe(due);
  });

  it('given the coalesced count, when the clock moves on, then escalation resumes at its regular time with the jumped count, one per step', () => {
    // given the step of the jump
    const { state } = run([...beforeJump, jump]);
    const count = state.alerts.find((a) => a.id === microsleepId)!.escalations;
    // when the frames after the jump follow (40 s of them, one per step)
    const perStep = afterJump.map((x) => escalations(step(state, x).outputs).length);
    // then no step emits more than one, and the next escalation carries count + 1 at raise + 30 s * (count + 1)
    expect(Math.max(...perStep)).toBeLessThanOrEqual(1);
    const r = run(inputs);
    const after = escalations(r.outputs).slice(MAX_ESCALATIONS_PER_STEP);
    expect(after[0]!.event).toEqual({ type: 'AlertEscalated', alert_id: microsleepId, level: 2, count: count + 1 });
    expect(after[0]!.ts).toBe(s(11) + fatigueV1.escalateEveryMs * (count + 1));
    // and every step of the whole run stays within the budget
    const fresh = initialState(SESSION);
    for (const x of inputs) expect(escalations(step(fresh, x).outputs).length).toBeLessThanOrEqual(3);
  });

  it('given the same inputs, when replayed (run again, from snapshots between steps, through Replay in any batch size), then the outputs are identical', () => {
    const reference = run(inputs).outputs;
    // run again
    expect(run(inputs).outputs).toEqual(reference);
    // restored from a snapshot before every step, as after a crash
    let json = serializeState(initialState(SESSION));
    const restored: FatigueOutput[] = [];
    for (const x of inputs) {
      const r = step(deserializeState(json), x);
      restored.push(...r.outputs);
      json = serializeState(r.state);
    }
    expect(restored).toEqual(reference);
    // through Replay (the live runner's merge, ownership and eviction) in batches of 1, 7 and all
    const expected = split(reference).alerts;
    for (const batch of [1, 7, inputs.length]) {
      const out: ReplayOutput[] = [];
      const replay = new Replay(
        fatigueProcessor,
        (o) => out.push(o),
        () => fatigueProcessor.inputs.filter((t) => t !== 'face'),
      );
      const records = inputs.map((x, i) => {
        const e = (x as Extract<FatigueInput, { kind: 'face' }>).event;
        // appended as the frames came in: the frame after the gap was appended 3 h later too
        return { offset: String(i), session: e.session_id, ts: e.ts, appendTs: e.ts + 50, value: e };
      });
      for (let i = 0; i < records.length; i += batch) replay.push(0, 'face' as TopicKey, records.slice(i, i + batch));
      replay.finish();
      const alerts = out.filter((o) => o.topic === 'alerts').map((o) => o.value as AlertEvent);
      expect(alerts).toEqual(expected);
      expect(alerts.filter((a) => a.event.type === 'AlertEscalated').length).toBeLessThan(10);
    }
  });
});
