import pino, { type Logger } from 'pino';
import { trace } from '@opentelemetry/api';

export type { Logger };

/**
 * JSON lines on stdout. Every line logged inside an active span carries its `trace_id` and `span_id`,
 * so an SRE can jump from a log line to the trace.
 */
export function createLogger(opts: { level: string; role: string }): Logger {
  return pino({
    level: opts.level,
    base: { role: opts.role, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = trace.getActiveSpan()?.spanContext();
      return ctx ? { trace_id: ctx.traceId, span_id: ctx.spanId } : {};
    },
  });
}
