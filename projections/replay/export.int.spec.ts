import { Writable } from 'node:stream';
import { testConfig } from '../../test/support/env';
import { kafkaFixture, type KafkaFixture } from '../../test/support/stack';
import { buildChannel, buildEeg } from '../../test/support/build';
import { Publisher } from '../../producers/publisher';
import type { EegBandPower } from '../../schemas/types';
import { exportEvents, type ExportOptions } from './export';
import { partitionOfKey } from '../../core/offset-ranges';

/**
 * `exportEvents` against real Kafka and registry: six sessions of EEG frames with known event times
 * over three partitions (one frame published late, out of offset order), exported by event-time
 * range, by session, as NDJSON and CSV, into a slow stream, and over empty ranges.
 */
describe('replay export (Kafka → NDJSON/CSV)', () => {
  const config = testConfig();
  let fx: KafkaFixture;
  let publisher: Publisher;

  const base = Date.UTC(2026, 0, 1, 8);
  const sessions = ['session-a', 'session-b', 'session-c', 'session-d', 'session-e', 'session-f'];
  const frame = (session: string, seq: number, ts: number) =>
    buildEeg({
      tenant_id: 'tenant-x',
      session_id: session,
      device_id: `eeg-${session}`,
      seq,
      ts,
      channels: [buildChannel({ channel: 'Fp1' }), buildChannel({ channel: 'Fp2', delta_uv2: seq })],
    });
  // Seq 0..9 at +0 s .. +9 s, then seq 10 stamped +2.5 s: late, after the others in its partition.
  const events = sessions.flatMap((s) => [
    ...Array.from({ length: 10 }, (_, i) => frame(s, i, base + i * 1000)),
    frame(s, 10, base + 2500),
  ]);
  const inRange = (from: number, to: number, session?: string) =>
    events.filter((e) => e.ts >= from && e.ts < to && (!session || e.session_id === session));

  class Sink extends Writable {
    text = '';
    maxBuffered = 0;
    maxChunk = 0;
    constructor(private readonly delayMs = 0) {
      super({ highWaterMark: 256 });
    }
    override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void) {
      this.maxBuffered = Math.max(this.maxBuffered, this.writableLength);
      this.maxChunk = Math.max(this.maxChunk, chunk.length);
      this.text += chunk.toString();
      setTimeout(cb, this.delayMs);
    }
  }
  const run = async (opts: Omit<ExportOptions, 'topic'>, sink = new Sink()) => {
    const result = await exportEvents(fx, sink, { topic: 'eeg', ...opts });
    return { result, sink, lines: sink.text.split('\n').filter(Boolean) };
  };
  type Line = { partition: number; offset: string; key: string; value: EegBandPower };
  const bySessionSeq = (a: Line, b: Line) => (a.key === b.key ? a.value.seq - b.value.seq : a.key < b.key ? -1 : 1);
  const bySessionSeqEvents = (a: EegBandPower, b: EegBandPower) =>
    a.session_id === b.session_id ? a.seq - b.seq : a.session_id < b.session_id ? -1 : 1;

  beforeAll(async () => {
    fx = await kafkaFixture(config);
    publisher = new Publisher(fx.kafka, fx.serde, fx.topics);
    await publisher.connect();
    await publisher.publish('eeg', events);
    await publisher.flush();
  });
  afterAll(async () => {
    await publisher?.disconnect();
    await fx?.close();
  });

  it('spreads the sessions over more than one partition (the range reads several)', () => {
    expect(new Set(sessions.map((s) => partitionOfKey(s, 3))).size).toBeGreaterThan(1);
  });

  it('exports exactly the events with from <= ts < to as tail-shaped NDJSON, late events included', async () => {
    const from = base + 2000;
    const to = base + 5000;
    const { result, lines } = await run({ from, to, format: 'ndjson' });
    const parsed = lines.map((l) => JSON.parse(l) as Line);
    expect(parsed.map((l) => Object.keys(l))).toEqual(parsed.map(() => ['partition', 'offset', 'key', 'value']));
    expect([...parsed].sort(bySessionSeq).map((l) => l.value)).toEqual(inRange(from, to).sort(bySessionSeqEvents));
    expect(parsed.length).toBe(6 * 4); // seq 2, 3, 4 and the late 10 of each session
    for (const l of parsed) {
      expect(l.key).toBe(l.value.session_id);
      expect(l.partition).toBe(partitionOfKey(l.key, 3));
    }
    // Offset order within each partition.
    for (const p of [0, 1, 2]) {
      const offsets = parsed.filter((l) => l.partition === p).map((l) => Number(l.offset));
      expect(offsets).toEqual([...offsets].sort((a, b) => a - b));
    }
    expect(result).toEqual({
      exported: 24,
      partitions: new Set(sessions.map((s) => partitionOfKey(s, 3))).size,
      scanned: events.length,
      undecodable: 0,
      aborted: false,
    });
  });

  it('reads only the partition of --session and exports only that session', async () => {
    const { result, lines } = await run({ from: base + 8000, session: 'session-c', format: 'ndjson' });
    const parsed = lines.map((l) => JSON.parse(l) as Line);
    expect(parsed.map((l) => l.value)).toEqual([
      frame('session-c', 8, base + 8000),
      frame('session-c', 9, base + 9000),
    ]);
    expect(result.partitions).toBe(1);
    expect(result.scanned).toBe(
      events.filter((e) => partitionOfKey(e.session_id, 3) === partitionOfKey('session-c', 3)).length,
    );
  });

  it('writes CSV: a header row, then one row per event with nested fields as JSON text', async () => {
    const { lines: ndjson } = await run({ to: base + 1000, session: 'session-e', format: 'ndjson' });
    const { partition, offset } = JSON.parse(ndjson[0]!) as Line;
    const { sink } = await run({ to: base + 1000, session: 'session-e', format: 'csv' });
    const e = frame('session-e', 0, base);
    const channels = JSON.stringify(e.channels).replace(/"/g, '""');
    expect(sink.text).toBe(
      'partition,offset,key,event_id,tenant_id,session_id,device_id,seq,ts,channels\n' +
        `${partition},${offset},session-e,${e.event_id},tenant-x,session-e,eeg-session-e,0,${base},"${channels}"\n`,
    );
  });

  it('respects the stream: a slow sink never has more than one batch buffered, and gets every event', async () => {
    const { lines, sink } = await run({ format: 'ndjson' }, new Sink(5));
    expect(lines.length).toBe(events.length);
    expect(sink.maxBuffered).toBeLessThanOrEqual(sink.maxChunk);
  });

  it('reads a partition holding more than one fetch (1 MiB) to its end, each event once', async () => {
    const big = Array.from({ length: 5000 }, (_, i) => ({
      ...frame('session-big', i, base + 3_600_000 + i),
      channels: Array.from({ length: 8 }, (_, c) => buildChannel({ channel: `C${c}`, delta_uv2: i, theta_uv2: c })),
    }));
    await publisher.publish('eeg', big);
    await publisher.flush();
    const { result, lines } = await run({ session: 'session-big', format: 'ndjson' });
    expect(result.exported).toBe(5000);
    expect(lines.map((l) => (JSON.parse(l) as Line).value.seq)).toEqual(big.map((e) => e.seq));
    expect(Buffer.byteLength(lines.join('\n'))).toBeGreaterThan(2 * 1024 * 1024);
  });

  it('gives nothing and terminates for ranges without events', async () => {
    const before = await run({ to: base, format: 'ndjson' });
    expect(before.lines).toEqual([]);
    expect(before.result).toMatchObject({ exported: 0, scanned: events.length + 5000 });
    const future = Date.UTC(2100, 0, 1);
    const after = await run({ from: future, format: 'csv' });
    expect(after.lines).toEqual(['partition,offset,key,event_id,tenant_id,session_id,device_id,seq,ts,channels']);
    expect(after.result).toEqual({ exported: 0, partitions: 0, scanned: 0, undecodable: 0, aborted: false });
  });
});
