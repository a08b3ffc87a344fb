import type { Kafka, Message, Producer } from 'kafkajs';
import type { TopicKey, TopicNames, ValueOf } from '../schemas/catalogue';
import type { AvroSerde } from '../core/serde';
import { keyOf, traceHeaders } from '../core/kafka';
import { VigilError } from '../core/errors';

/**
 * The producer library: typed `publish` for any catalogue event.
 *
 * Contract:
 * - A call is validated and encoded whole before anything is queued: an invalid event throws
 *   EVENT_INVALID (naming the field and rule) and none of the call's events is sent.
 * - `publish` resolves once Kafka acknowledged every event of the call (acks=all, idempotent
 *   producer, key = session_id, `traceparent` of the caller's context in the headers).
 * - Calls are batched: events wait at most `lingerMs` (or until `batchMaxEvents`) and go out in one
 *   request across topics. One request is in flight at a time (the idempotent producer's sequence
 *   numbers stay in order); what arrives meanwhile forms the next batch.
 * - Memory is bounded: when `maxQueuedEvents` are queued or in flight, `publish` waits for room
 *   (backpressure) instead of growing without limit.
 * - `flush()` waits for everything queued; `disconnect()` flushes first.
 */
export interface PublisherOptions {
  lingerMs: number;
  batchMaxEvents: number;
  maxQueuedEvents: number;
}

export const defaultPublisherOptions: PublisherOptions = {
  lingerMs: 5,
  batchMaxEvents: 5_000,
  maxQueuedEvents: 50_000,
};

interface Pending {
  byTopic: Map<string, Message[]>;
  count: number;
  waiters: { resolve: () => void; reject: (e: unknown) => void }[];
}

const emptyBatch = (): Pending => ({ byTopic: new Map(), count: 0, waiters: [] });

export class Publisher {
  private readonly producer: Producer;
  private readonly opts: PublisherOptions;
  private pending = emptyBatch();
  private inFlight = 0;
  private sending?: Promise<void>;
  private timer?: NodeJS.Timeout;
  private roomWaiters: (() => void)[] = [];

  constructor(
    kafka: Kafka,
    private readonly serde: AvroSerde,
    private readonly topics: TopicNames,
    opts: Partial<PublisherOptions> = {},
  ) {
    this.opts = { ...defaultPublisherOptions, ...opts };
    this.producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  /** Events queued or in flight right now (bounded by maxQueuedEvents). */
  get queued(): number {
    return this.pending.count + this.inFlight;
  }

  async publish<K extends TopicKey>(key: K, events: readonly ValueOf<K>[]): Promise<void> {
    if (events.length === 0) return;
    const headers = traceHeaders();
    // Encode (and so validate) everything first: an invalid event throws before anything is queued.
    const messages: Message[] = events.map((e) => ({ key: keyOf(e), value: this.serde.encode(key, e), headers }));
    while (this.queued > 0 && this.queued + messages.length > this.opts.maxQueuedEvents) {
      await new Promise<void>((r) => this.roomWaiters.push(r));
    }
    const topic = this.topics[key];
    const batch = this.pending;
    const list = batch.byTopic.get(topic);
    if (list) for (const m of messages) list.push(m);
    else batch.byTopic.set(topic, messages);
    batch.count += messages.length;
    const acked = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (batch.count >= this.opts.batchMaxEvents) this.kick();
    else this.timer ??= setTimeout(() => this.kick(), this.opts.lingerMs);
    return acked;
  }

  /** Resolves when every event queued so far is acknowledged (or failed). */
  async flush(): Promise<void> {
    while (this.pending.count > 0 || this.sending) {
      this.kick();
      await this.sending;
    }
  }

  async disconnect(): Promise<void> {
    await this.flush();
    await this.producer.disconnect();
  }

  /** Starts sending the pending batch unless a send is in flight (it will chain when done). */
  private kick(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.sending || this.pending.count === 0) return;
    const batch = this.pending;
    this.pending = emptyBatch();
    this.inFlight = batch.count;
    this.sending = this.send(batch).finally(() => {
      this.inFlight = 0;
      this.sending = undefined;
      for (const r of this.roomWaiters.splice(0)) r();
      if (this.pending.count > 0) this.kick();
    });
  }

  private async send(batch: Pending): Promise<void> {
    try {
      await this.producer.sendBatch({
        acks: -1,
        topicMessages: [...batch.byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
      for (const w of batch.waiters) w.resolve();
    } catch (cause) {
      const err = new VigilError('KAFKA_UNAVAILABLE', `publishing ${batch.count} events failed`, {
        cause,
        retriable: true,
      });
      for (const w of batch.waiters) w.reject(err);
    }
  }
}
