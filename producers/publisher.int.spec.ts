import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { processEnv, testConfig } from '../test/support/env';
import { kafkaFixture, readAll, type KafkaFixture } from '../test/support/stack';
import { startVigil } from '../test/support/processes';
import { Publisher } from './publisher';
import { sessionEvents } from './simulator/session';
import type { Kafka, ProducerConfig } from 'kafkajs';
import type { EegBandPower, SessionEvent } from '../schemas/types';

const config = testConfig();
const plan = {
  seed: 11,
  index: 0,
  tenantId: 'tenant-p',
  startTs: Date.UTC(2026, 1, 1),
  durationMs: 120_000,
  profile: 'alert' as const,
};
const eeg = [...sessionEvents(plan)].flatMap((e) => (e.topic === 'eeg' ? [e.event as EegBandPower] : []));
const vigilEnv = processEnv(config);

describe('producer library and publish CLI against the real broker', () => {
  let fx: KafkaFixture;
  beforeAll(async () => {
    fx = await kafkaFixture(config);
  });
  afterAll(() => fx?.close());

  const endOf = async (topic: string) =>
    (await fx.admin.fetchTopicOffsets(topic)).reduce((n, p) => n + Number(p.high), 0);

  it('publishes events that decode back equal, keyed by session id, splitting requests by bytes', async () => {
    const publisher = new Publisher(fx.kafka, fx.serde, fx.topics, { batchMaxBytes: 1_500 }); // ~6 EEG events a request
    await publisher.connect();
    await publisher.publish('eeg', eeg.slice(0, 20));
    await publisher.disconnect();
    const records = await readAll(fx.kafka, fx.topics.eeg);
    const decoded = await Promise.all(records.map(async (r) => (await fx.serde.decode<EegBandPower>(r.value)).value));
    expect(decoded.sort((a, b) => a.seq - b.seq)).toEqual(eeg.slice(0, 20));
    expect(new Set(records.map((r) => r.key!.toString()))).toEqual(new Set([eeg[0]!.session_id]));
  });

  it('sends a session event only after the events queued before it are acknowledged, in a request of its own', async () => {
    const ended = [...sessionEvents(plan)].flatMap((e) => (e.topic === 'sessions' ? [e.event as SessionEvent] : []));
    expect(ended.map((e) => e.event.type)).toEqual(['SessionStarted', 'SessionEnded']);
    // The real producer, its requests recorded: topics, and when each started and ended.
    const requests: { topics: string[]; start: number; end?: number }[] = [];
    let clock = 0;
    const recording = {
      producer: (o: ProducerConfig) => {
        const producer = fx.kafka.producer(o);
        const send = producer.sendBatch.bind(producer);
        producer.sendBatch = async (batch) => {
          const request = {
            topics: batch.topicMessages!.map((t) => t.topic),
            start: ++clock,
            end: undefined as number | undefined,
          };
          requests.push(request);
          const acks = await send(batch);
          request.end = ++clock;
          return acks;
        };
        return producer;
      },
    } as unknown as Kafka;
    const publisher = new Publisher(recording, fx.serde, fx.topics, { lingerMs: 50 });
    await publisher.connect();
    try {
      // Both calls within one linger: without the rule they would share one request.
      await Promise.all([publisher.publish('eeg', eeg.slice(0, 5)), publisher.publish('sessions', ended.slice(1))]);
    } finally {
      await publisher.disconnect();
    }
    expect(requests.map((r) => r.topics)).toEqual([[fx.topics.eeg], [fx.topics.sessions]]);
    expect(requests[1]!.start).toBeGreaterThan(requests[0]!.end!);
  });

  it('holds queued events under its bound while many calls publish at once (backpressure)', async () => {
    const publisher = new Publisher(fx.kafka, fx.serde, fx.topics, {
      maxQueuedEvents: 1_000,
      batchMaxEvents: 400,
      lingerMs: 20,
    });
    await publisher.connect();
    const before = await endOf(fx.topics.eeg);
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, publisher.queued)), 1);
    const calls = Array.from({ length: 12 }, (_, i) => publisher.publish('eeg', eeg.slice(i * 50, i * 50 + 300)));
    await Promise.all(calls);
    clearInterval(sampler);
    await publisher.disconnect();
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(1_000);
    expect((await endOf(fx.topics.eeg)) - before).toBe(12 * 300);
  });

  it('sends nothing of a call that holds one invalid event, naming the field', async () => {
    const publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
    await publisher.connect();
    const before = await endOf(fx.topics.eeg);
    const bad = { ...eeg[1]!, seq: 'one' } as unknown as EegBandPower;
    await expect(publisher.publish('eeg', [eeg[0]!, bad])).rejects.toMatchObject({
      code: 'EVENT_INVALID',
      details: { problems: [expect.stringMatching(/^seq: expected long/)] },
    });
    await publisher.disconnect();
    expect(await endOf(fx.topics.eeg)).toBe(before);
  });

  it('sends nothing of a call that holds one value outside its physical range, naming the field and the rule', async () => {
    const publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
    await publisher.connect();
    const before = await endOf(fx.topics.eeg);
    const channels = eeg[1]!.channels.map((c, i) => (i === 0 ? { ...c, quality: 1.5 } : c));
    await expect(publisher.publish('eeg', [eeg[0]!, { ...eeg[1]!, channels }])).rejects.toMatchObject({
      code: 'RULE_VIOLATION',
      details: { violations: [{ field: 'channels.0.quality', rule: 'fraction', message: expect.any(String) }] },
    });
    await publisher.disconnect();
    expect(await endOf(fx.topics.eeg)).toBe(before);
  });

  describe('vigil publish', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vigil-publish-'));
    const file = (name: string, lines: string[]) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, lines.join('\n') + '\n');
      return f;
    };

    it('loses nothing when killed with SIGKILL right after it reported the events published', async () => {
      const lines = eeg.slice(0, 500).map((e) => JSON.stringify(e));
      const before = await endOf(fx.topics.eeg);
      const p = startVigil(['publish', '--topic', 'eeg', file('good.ndjson', lines)], vigilEnv);
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if (p.output().includes('published 500')) {
            p.child.kill('SIGKILL');
            clearInterval(poll);
            resolve();
          }
        }, 5);
      });
      await p.exited;
      expect((await endOf(fx.topics.eeg)) - before).toBe(500);
    });

    it('reports each bad line with its number and reason, publishes the good ones, and exits 1', async () => {
      const lines = [
        JSON.stringify(eeg[0]),
        '{not json',
        JSON.stringify(eeg[1]),
        JSON.stringify({ ...eeg[2], ts: 'noon' }),
        JSON.stringify(eeg[3]),
      ];
      const before = await endOf(fx.topics.eeg);
      const p = startVigil(['publish', '--topic', fx.topics.eeg, file('mixed.ndjson', lines)], vigilEnv);
      expect(await p.exited).toBe(1);
      expect(p.output()).toMatch(/line 2: not JSON/);
      expect(p.output()).toMatch(/line 4: ts: expected long, got "noon"/);
      expect(p.output()).toContain('published 3, failed 2');
      expect((await endOf(fx.topics.eeg)) - before).toBe(3);
    });

    it('stops at the first bad line with --strict', async () => {
      const lines = [JSON.stringify(eeg[0]), '[]', JSON.stringify(eeg[1])];
      const p = startVigil(['publish', '--strict', '--topic', 'eeg', file('strict.ndjson', lines)], vigilEnv);
      expect(await p.exited).toBe(1);
      expect(p.output()).toContain('published 1, failed 1 (stopped at the first bad line: --strict)');
    });
  });
});
