import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ruleError } from '../schemas/rules';
import type { Kafka, Message, Producer } from 'kafkajs';
import type { TopicKey, TopicNames, ValueOf } from '../schemas/catalogue';
import type { AvroSerde } from '../core/serde';
import type { Logger } from '../core/logger';
import { keyOf, traceHeaders } from '../core/kafka';
import { VigilError } from '../core/errors';

/**
 * The producer library: typed `publish` for any catalogue event.
 *
 * Contract:
 * - A call is validated and encoded whole before anything is queued: an invalid event throws
 *   EVENT_INVALID (naming the field and rule) and none of the call's events is sent.
 * - `publish` resolves once Kafka acknowledged every event of the call (acks=all, idempotent
 *   producer, key = session_id, `traceparent` of the caller's context in the headers). If it
 *   rejects, a call that spanned several requests may be partly written: retrying it is safe because
 *   consumers de-duplicate by `event_id`.
 * - Calls are batched: events wait at most `lingerMs` (or until `batchMaxEvents` or
 *   `batchMaxBytes`) and go out in one request across topics; a large call spans several requests. One request is in flight at a time (the idempotent producer's sequence
 *   numbers stay in order); what arrives meanwhile forms the next batch.
 * - A session event (`sessions` topic: start, end) never shares a request with events queued before
 *   it, so it is written only once they are acknowledged, hence readable. The processor releases a
 *   SessionEnded once its other inputs are seen caught up; in one request, a session's last frames
 *   could still be invisible (a partition whose high watermark waits for a dead follower) while its
 *   end on another partition was readable, and the frames would then start a new life of the session.
 * - Memory is bounded: when `maxQueuedEvents` are queued or in flight, `publish` waits for room
 *   (backpressure) instead of growing without limit.
 * - A broker failover does not fail a call: kafkajs retries a send itself, but its idempotent
 *   producer cannot recover from a sequence error after a partition changed leader (e.g.
 *   OUT_OF_ORDER_SEQUENCE_NUMBER: it cannot take a new producer id, KIP-360), so a failed send is
 *   tried again (up to `sendAttempts` in all, with backoff) on a new producer, unless the broker refused
 *   it for good (authorization, size: the same on any producer). Parts of the failed
 *   request may have been written: those events are then in the topic twice, with the same `event_id`.
 * - `flush()` waits for everything queued; `disconnect()` flushes first.
 * - Tracing: one PRODUCER span per call (`send <topic>`, child of the caller's context, from
 *   validation to the acknowledgement), never one per event; its context is the records' `traceparent`.
 */
interface PublisherOptions {
  lingerMs: number;
  batchMaxEvents: number;
  /** Bytes (keys + values) per request: stays under the broker's default 1 MiB message.max.bytes. */
  batchMaxBytes: number;
  maxQueuedEvents: number;
  /** Sends of one batch before its callers get KAFKA_UNAVAILABLE (each after the first on a new producer). */
  sendAttempts: number;
  /** Where a failed send that is tried again on a new producer is logged (warn); silent without one. */
  log?: Pick<Logger, 'warn'>;
}

const tracer = trace.getTracer('vigil.publisher');

const defaultPublisherOptions: Omit<PublisherOptions, 'log'> = {
  lingerMs: 5,
  batchMaxEvents: 5_000,
  batchMaxBytes: 512 * 1024,
  maxQueuedEvents: 50_000,
  sendAttempts: 4,
};

/** One request's worth of events, across topics, and the callers waiting for it. */
interface Batch {
  byTopic: Map<string, Message[]>;
  count: number;
  bytes: number;
  acked: Promise<void>;
  settle: (err?: unknown) => void;
}

function newBatch(): Batch {
  let settle!: (err?: unknown) => void;
  const acked = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(err) : resolve())));
  acked.catch(() => {}); // observed by the callers; never an unhandled rejection here
  return { byTopic: new Map(), count: 0, bytes: 0, acked, settle };
}

/** Errors a new producer would meet again: not tried again. */
const FOR_GOOD = /AUTHORIZATION_FAILED|MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE|INVALID_RECORD|CORRUPT_MESSAGE/;

function refusedForGood(err: unknown): boolean {
  for (let e = err as { type?: unknown; originalError?: unknown; cause?: unknown } | undefined; e;) {
    if (typeof e.type === 'string' && FOR_GOOD.test(e.type)) return true;
    e = (e.originalError ?? e.cause) as typeof e;
  }
  return false;
}

export class Publisher {
  private producer: Producer;
  private readonly opts: PublisherOptions;
  /** Batches waiting to be sent, oldest first; the last one is still filling. */
  private readonly batches: Batch[] = [];
  private inFlight = 0;
  private sending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private roomWaiters: (() => void)[] = [];

  constructor(
    private readonly kafka: Kafka,
    private readonly serde: AvroSerde,
    private readonly topics: TopicNames,
    opts: Partial<PublisherOptions> = {},
  ) {
    this.opts = { ...defaultPublisherOptions, ...opts };
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return this.kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** Events queued or in flight right now (bounded by maxQueuedEvents). */
  get queued(): number {
    let n = this.inFlight;
    for (const b of this.batches) n += b.count;
    return n;
  }

  async publish<K extends TopicKey>(key: K, events: readonly ValueOf<K>[]): Promise<void> {
    if (events.length === 0) return;
    const topic = this.topics[key];
    const attributes = {
      'messaging.system': 'kafka',
      'messaging.operation.type': 'send',
      'messaging.destination.name': topic,
      'messaging.batch.message_count': events.length,
    };
    await tracer.startActiveSpan(`send ${topic}`, { kind: SpanKind.PRODUCER, attributes }, async (span) => {
      try {
        await this.enqueue(key, events);
      } catch (err) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
        throw err;
      } finally {
        span.end();
      }
    });
  }

  private async enqueue<K extends TopicKey>(key: K, events: readonly ValueOf<K>[]): Promise<void> {
    const headers = traceHeaders();
    // Encode (and so validate against the schema: EVENT_INVALID), then check the rule table
    // (RULE_VIOLATION), everything before anything is queued: an invalid event throws and sends nothing.
    const messages: Message[] = events.map((e) => ({ key: keyOf(e), value: this.serde.encode(key, e), headers }));
    for (const e of events) {
      const broken = ruleError(key, e);
      if (broken) throw broken;
    }
    while (this.queued > 0 && this.queued + messages.length > this.opts.maxQueuedEvents) {
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    const topic = this.topics[key];
    const waits = new Set<Promise<void>>();
    let afterEarlierEvents = key === 'sessions'; // see the contract: its own request
    for (const m of messages) {
      const size = (m.key as Buffer).length + (m.value as Buffer).length;
      let batch = this.batches.at(-1);
      if (
        !batch ||
        batch.count >= this.opts.batchMaxEvents ||
        (batch.count > 0 && (afterEarlierEvents || batch.bytes + size > this.opts.batchMaxBytes))
      ) {
        batch = newBatch();
        this.batches.push(batch);
      }
      const list = batch.byTopic.get(topic);
      if (list) list.push(m);
      else batch.byTopic.set(topic, [m]);
      batch.count++;
      batch.bytes += size;
      afterEarlierEvents = false;
      waits.add(batch.acked);
    }
    if (this.batches.length > 1 || this.batches[0]!.count >= this.opts.batchMaxEvents) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.lingerMs);
    await Promise.all(waits);
  }

  /** Resolves when every event queued so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    while (this.batches.length > 0 || this.sending) {
      this.kick();
      await this.sending;
    }
  }

  async disconnect(): Promise<void> {
    await this.flush();
    await this.producer.disconnect();
  }

  /** Starts sending the oldest batch unless a send is in flight (it chains to the next when done). */
  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending) return;
    const batch = this.batches.shift();
    if (!batch) return;
    this.inFlight = batch.count;
    this.sending = this.send(batch).finally(() => {
      this.inFlight = 0;
      this.sending = undefined;
      for (const r of this.roomWaiters.splice(0)) r();
      if (this.batches.length > 0) this.kick();
    });
  }

  private async send(batch: Batch): Promise<void> {
    const topicMessages = [...batch.byTopic].map(([topic, messages]) => ({ topic, messages }));
    for (let attempt = 1; ; attempt++) {
      try {
        await this.producer.sendBatch({ acks: -1, topicMessages });
        batch.settle();
        return;
      } catch (cause) {
        if (attempt >= this.opts.sendAttempts || refusedForGood(cause)) {
          batch.settle(
            new VigilError('KAFKA_UNAVAILABLE', `publishing ${batch.count} events failed`, { cause, retriable: true }),
          );
          return;
        }
        // A new producer (a new producer id, sequences from 0): the old one's state may be unusable.
        this.opts.log?.warn(
          { err: cause, attempt, events: batch.count, topics: [...batch.byTopic.keys()] },
          'publishing failed; sending the batch again on a new producer (its events may be written twice)',
        );
        const old = this.producer;
        this.producer = this.newProducer();
        await old.disconnect().catch(() => {});
        await new Promise((r) => setTimeout(r, Math.min(5_000, 500 * 2 ** (attempt - 1))));
        await this.producer.connect().catch(() => {}); // a failed connect fails the next send, counted
      }
    }
  }
}
