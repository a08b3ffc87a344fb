import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  isSpanContextValid,
  propagation,
  trace,
  type Link,
  type SpanContext,
} from '@opentelemetry/api';
import type { IHeaders } from 'kafkajs';

const tracer = trace.getTracer('vigil');

/** Links one batch span carries at most (the span stays small however large the batch). */
const MAX_LINKS = 32;

function contextOf(headers: IHeaders | undefined): SpanContext | undefined {
  if (!headers?.traceparent) return undefined;
  const carrier: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) carrier[k] = String(v);
  const sc = trace.getSpanContext(propagation.extract(ROOT_CONTEXT, carrier));
  return sc && isSpanContextValid(sc) ? sc : undefined;
}

/**
 * Runs `fn` (a consumer's work on one batch) inside a span that continues the trace of the batch's
 * first record carrying a `traceparent` and links the others' (docs/design.md §8: each consumer
 * continues or links). kafkajs's instrumentation gives eachBatch consumers only a new root span with
 * links; with this, a low-rate record (a score, an alert) is projected inside its own trace, and the
 * database or Redis calls of `fn` are children of that span.
 */
export async function inBatchSpan<T>(
  name: string,
  messages: readonly { headers?: IHeaders }[],
  attributes: Record<string, string | number>,
  fn: () => Promise<T>,
): Promise<T> {
  let parent: SpanContext | undefined;
  const links: Link[] = [];
  for (const m of messages) {
    const sc = contextOf(m.headers);
    if (!sc) continue;
    if (!parent) parent = sc;
    else if (links.length < MAX_LINKS) links.push({ context: sc });
  }
  const ctx = parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  return tracer.startActiveSpan(name, { kind: SpanKind.CONSUMER, links, attributes }, ctx, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      throw err;
    } finally {
      span.end();
    }
  });
}
