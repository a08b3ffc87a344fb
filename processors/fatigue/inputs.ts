import type { Command, SessionEvent } from '../../schemas/types';
import { VigilError } from '../../core/errors';
import { acknowledgeAlert, clearAlertsAtSessionEnd } from './alerts';
import { advance } from './event-time';
import { eventIdHash } from './ids';
import type { Sample, TelemetryInput } from './state';
import { alignDown, type StepContext } from './step-context';

/**
 * How each kind of input changes a session's state (rules in processor.ts's header): telemetry is
 * late or enters the reorder buffer and moves the watermark; `SessionStarted` sets the start;
 * `SessionEnded` and an idle `tick` flush and end the session; an `AcknowledgeAlert` waits in the
 * buffer or takes effect at once. Every input must be of the state's session (EVENT_INVALID otherwise).
 * What is due then happens in event-time order (event-time.ts).
 */

export function onTelemetry(step: StepContext, input: TelemetryInput, sample: Sample & { id?: number }): void {
  const { state, config } = step;
  checkSession(step, input.event.session_id);
  const ts = sample.ts;
  if (state.ended || (state.maxTs !== null && ts <= state.maxTs - config.allowedLatenessMs)) {
    step.outputs.push({ kind: 'late', input });
    return;
  }
  // A producer that resends a batch after a failed send (producers/publisher.ts) may write an event
  // twice. While the first copy waits in the reorder buffer the second is dropped here; once the
  // first is processed the watermark has passed its ts, so the second is late (above), never counted.
  sample.id = eventIdHash(input.event.event_id);
  if (isBuffered(step, sample)) {
    step.outputs.push({ kind: 'duplicate', input });
    return;
  }
  state.tenant_id ??= input.event.tenant_id;
  if (state.startTs === null) setStart(step, ts);
  enqueue(step, sample);
  if (state.maxTs === null || ts > state.maxTs) {
    state.maxTs = ts;
    const watermark = ts - config.allowedLatenessMs;
    advance(step, watermark, watermark, watermark);
  }
}

export function onSessionEvent(step: StepContext, event: SessionEvent): void {
  const state = step.state;
  checkSession(step, event.session_id);
  if (state.ended) return;
  state.tenant_id ??= event.tenant_id;
  if (event.event.type === 'SessionStarted') {
    // The start may move earlier only while nothing has been processed yet.
    if (state.clock === null && (state.startTs === null || event.ts < state.startTs)) setStart(step, event.ts);
  } else {
    flush(step, event.ts);
  }
}

export function onCommand(step: StepContext, command: Command): void {
  const { state, config } = step;
  checkSession(step, command.session_id);
  if (command.event.type !== 'AcknowledgeAlert' || state.ended) return;
  const ack: Sample = {
    source: 'c',
    ts: command.ts,
    alert: command.event.alert_id,
    by: command.event.acknowledged_by,
    tenant: command.tenant_id,
  };
  // A command takes effect at its event time, in order with telemetry, without moving the watermark;
  // one at or behind the watermark takes effect at once (it is never late).
  if (state.maxTs === null || command.ts <= state.maxTs - config.allowedLatenessMs) acknowledgeAlert(step, ack);
  else enqueue(step, ack);
}

/** Idle eviction: flushes and ends the session when its newest telemetry is `idleEvictMs` older than `ts`. */
export function onTick(step: StepContext, ts: number): void {
  const state = step.state;
  const lastSeen = state.maxTs ?? state.startTs;
  if (state.ended || lastSeen === null || ts - lastSeen < step.config.idleEvictMs) return;
  flush(step, lastSeen);
}

/** Inserts in ts order, after equal ts (arrival order); inputs mostly arrive in order. */
function enqueue(step: StepContext, sample: Sample): void {
  const buffer = step.state.pending;
  let i = buffer.length;
  while (i > step.state.pendingHead && buffer[i - 1]!.ts > sample.ts) i--;
  if (i === buffer.length) buffer.push(sample);
  else buffer.splice(i, 0, sample);
}

/** True when the buffer holds a sample of the same source, ts and event id hash. */
function isBuffered(step: StepContext, sample: Sample & { id?: number }): boolean {
  const buffer = step.state.pending;
  let i = buffer.length;
  while (i > step.state.pendingHead && buffer[i - 1]!.ts > sample.ts) i--;
  for (; i > step.state.pendingHead && buffer[i - 1]!.ts === sample.ts; i--) {
    const other = buffer[i - 1]! as Sample & { id?: number };
    if (other.source === sample.source && other.id === sample.id) return true;
  }
  return false;
}

function checkSession(step: StepContext, sessionId: string): void {
  const stateSessionId = step.state.session_id;
  if (sessionId !== stateSessionId) {
    throw new VigilError('EVENT_INVALID', `event of session ${sessionId} fed to the state of ${stateSessionId}`, {
      details: { session_id: sessionId, state_session_id: stateSessionId },
    });
  }
}

function setStart(step: StepContext, ts: number): void {
  const { state, config } = step;
  state.startTs = ts;
  state.baseline.endTs = ts + config.baselineMs;
  state.nextEnd = alignDown(config, ts) + config.hopMs;
}

/**
 * Ends the session at `endTs`: all buffered inputs, windows up to the first one that holds the last
 * telemetry and reaches the end, timers up to the end; then the active alerts clear (`session_ended`).
 */
function flush(step: StepContext, endTs: number): void {
  const { state, config } = step;
  if (state.maxTs !== null) {
    // Windows up to the first that holds the last telemetry and reaches the end; timers up to the end.
    const hop = config.hopMs;
    const lastWindow = Math.max(alignDown(config, state.maxTs) + hop, Math.ceil(endTs / hop) * hop);
    advance(step, Infinity, lastWindow, Math.max(endTs, state.maxTs));
  }
  const clearTs = Math.max(endTs, state.maxTs ?? endTs, state.clock ?? endTs);
  clearAlertsAtSessionEnd(step, clearTs);
  state.ended = true;
  state.clock = clearTs;
  // An ended session keeps only what identifies it; late telemetry needs nothing more.
  state.pending = [];
  state.pendingHead = 0;
  state.buckets = [];
}
