import type { Publisher } from '../publisher';
import { digestSimulation, runSimulation, topicsOf, type SimTopic, type SimulateOptions } from './run';
import { sessionIdOf } from './session';

const opts: SimulateOptions = {
  sessions: 4,
  durationMs: 60_000,
  speed: 'max',
  seed: 5,
  profile: 'mixed',
  tenantId: 'demo',
  startTs: Date.UTC(2026, 0, 1, 8),
};

/** A publisher that records each call (after an asynchronous "ack"), in call order. */
function recorder() {
  const calls: { topic: SimTopic; events: { session_id: string; ts: number; event?: { type?: string } }[] }[] = [];
  const publisher = {
    async publish(topic: SimTopic, events: readonly never[]) {
      calls.push({ topic, events: [...events] });
      await new Promise((r) => setImmediate(r));
    },
  } as unknown as Publisher;
  return { calls, publisher };
}

describe('digestSimulation', () => {
  it('gives the same digest for the same options, another for another seed, start or modality set', () => {
    const d = digestSimulation(opts);
    expect(d.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(digestSimulation({ ...opts }).sha256).toBe(d.sha256);
    expect(digestSimulation({ ...opts, speed: 'realtime' }).sha256).toBe(d.sha256);
    expect(digestSimulation({ ...opts, seed: 6 }).sha256).not.toBe(d.sha256);
    expect(digestSimulation({ ...opts, startTs: opts.startTs + 1 }).sha256).not.toBe(d.sha256);
    expect(digestSimulation({ ...opts, modalities: ['eeg'] }).sha256).not.toBe(d.sha256);
  });

  it('counts the events per topic: 2 session events, EEG 10/s, face 15/s, vehicle 10/s per session', () => {
    const d = digestSimulation(opts);
    expect(d.events).toMatchObject({ sessions: 8, eeg: 4 * 600, face: 4 * 900, vehicle: 4 * 600 });
    expect(d.events.game).toBeGreaterThanOrEqual(4 * 2);
    expect(d.total).toBe(Object.values(d.events).reduce((a, b) => a + b, 0));
    expect(digestSimulation({ ...opts, modalities: ['eeg', 'game'] }).events).toMatchObject({
      sessions: 8,
      eeg: 2400,
      face: 0,
      vehicle: 0,
      game: d.events.game,
    });
  });
});

describe('runSimulation', () => {
  it('publishes every topic, each session started before its telemetry, and counts what was acknowledged', async () => {
    const { calls, publisher } = recorder();
    const result = await runSimulation(publisher, opts);
    const expected = digestSimulation(opts).events;
    expect(result.published).toEqual(expected);
    expect(result.sessionIds).toEqual([0, 1, 2, 3].map((i) => sessionIdOf(opts.seed, i)));

    const seen = new Map<SimTopic, number>();
    const started = new Set<string>();
    const lastTs = new Map<string, number>();
    for (const { topic, events } of calls) {
      seen.set(topic, (seen.get(topic) ?? 0) + events.length);
      for (const e of events) {
        if (topic === 'sessions' && e.event?.type === 'SessionStarted') started.add(e.session_id);
        else expect(started.has(e.session_id)).toBe(true);
        // Within a topic and session, events go out in event-time order.
        const key = `${topic}/${e.session_id}`;
        expect(e.ts).toBeGreaterThanOrEqual(lastTs.get(key) ?? 0);
        lastTs.set(key, e.ts);
      }
    }
    expect(Object.fromEntries(seen)).toEqual(expected);
  });

  it('publishes only the chosen modalities (plus sessions)', async () => {
    const { calls, publisher } = recorder();
    const only = { ...opts, sessions: 2, modalities: ['face' as const] };
    expect(topicsOf(only)).toEqual(['sessions', 'face']);
    const result = await runSimulation(publisher, only);
    expect(new Set(calls.map((c) => c.topic))).toEqual(new Set(['sessions', 'face']));
    expect(result.published).toEqual({ sessions: 4, eeg: 0, face: 1800, vehicle: 0, game: 0 });
  });

  it('paces event time to the wall clock in realtime', async () => {
    const { publisher } = recorder();
    const t0 = performance.now();
    const result = await runSimulation(publisher, { ...opts, sessions: 2, durationMs: 500, speed: 'realtime' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(400);
    expect(result.published).toMatchObject({ sessions: 4, eeg: 10, face: 14, vehicle: 10 });
  });

  it('stops when aborted', async () => {
    const { publisher } = recorder();
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 150);
    const result = await runSimulation(publisher, { ...opts, sessions: 1, speed: 'realtime' }, abort.signal);
    expect(result.published.eeg).toBeLessThan(10);
  });
});
