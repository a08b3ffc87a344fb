import type { AlertEvent, AlertEventKind, AlertReason } from '../../schemas/types';
import { alertEventIdOf, alertIdOf } from './ids';
import type { ActiveAlert, Sample } from './state';
import type { StepContext } from './step-context';

/**
 * The alert life cycle of the fatigue processor (rules in processor.ts's header, numbers in
 * config.ts): raising and clearing alerts, acknowledgements, and the alert timers (a microsleep's
 * clearing, the escalation of unacknowledged level-2 alerts) with the step's escalation budget.
 * Every alert output goes through `emitAlert`, which stamps its deterministic event id. The callers
 * decide when (windows.ts: drowsy and severe; samples.ts: microsleep and face_lost; event-time.ts:
 * timers; inputs.ts: session end).
 */

/**
 * At most this many `AlertEscalated` per step. A step that moves a session's clock far (a gap in its
 * telemetry within the accepted ts window) would otherwise emit one per 30 s of the gap; the due
 * escalations past this budget are coalesced: the count jumps, and the next escalation is emitted
 * at its regular time after the step's clock. Deterministic: the budget depends on the input only.
 */
export const MAX_ESCALATIONS_PER_STEP = 3;

/** An alert's next timed change: clearing by itself (microsleep) or escalating. */
export interface AlertTimer {
  at: number;
  alert: ActiveAlert;
  kind: 'clear' | 'escalate';
}

/** The session's active alert of `reason`, if any (at most one per reason). */
export function activeAlert(step: StepContext, reason: AlertReason): ActiveAlert | undefined {
  return step.state.alerts.find((alert) => alert.reason === reason);
}

export function raiseAlert(
  step: StepContext,
  reason: AlertReason,
  level: 1 | 2,
  ts: number,
  score: number | null,
): void {
  const state = step.state;
  const id = alertIdOf(step.config.model_version, state.session_id, reason, ts);
  state.alerts.push({ id, reason, level, raisedTs: ts, acknowledged: false, escalations: 0, clearAt: null });
  emitAlert(step, ts, { type: 'AlertRaised', alert_id: id, level, reason, score }, 0);
}

/** Clears `alert` with reason `recovered`. */
export function clearAlert(step: StepContext, alert: ActiveAlert, ts: number): void {
  step.state.alerts = step.state.alerts.filter((other) => other !== alert);
  emitAlert(step, ts, { type: 'AlertCleared', alert_id: alert.id, reason: 'recovered' }, 0);
}

/** Clears every active alert with reason `session_ended`, at `ts`. */
export function clearAlertsAtSessionEnd(step: StepContext, ts: number): void {
  for (const alert of step.state.alerts)
    emitAlert(step, ts, { type: 'AlertCleared', alert_id: alert.id, reason: 'session_ended' }, 0);
  step.state.alerts = [];
}

/**
 * An `AcknowledgeAlert` taking effect: naming an active, unacknowledged alert of the session (same
 * tenant), it emits `AlertAcknowledged` and stops the escalation; anything else is ignored.
 */
export function acknowledgeAlert(step: StepContext, command: Sample & { source: 'c' }): void {
  const state = step.state;
  if (command.tenant !== state.tenant_id) return;
  const alert = state.alerts.find((candidate) => candidate.id === command.alert);
  if (!alert || alert.acknowledged) return;
  alert.acknowledged = true;
  emitAlert(step, command.ts, { type: 'AlertAcknowledged', alert_id: alert.id, acknowledged_by: command.by }, 0);
}

/** The earliest alert timer of the session, null when none is pending. */
export function nextAlertTimer(step: StepContext): AlertTimer | null {
  let best: AlertTimer | null = null;
  for (const alert of step.state.alerts) {
    if (alert.clearAt !== null && (best === null || alert.clearAt < best.at))
      best = { at: alert.clearAt, alert, kind: 'clear' };
    if (alert.level === 2 && !alert.acknowledged) {
      const at = alert.raisedTs + step.config.escalateEveryMs * (alert.escalations + 1);
      if (best === null || at < best.at) best = { at, alert, kind: 'escalate' };
    }
  }
  return best;
}

/** Fires `timer`; an escalation past the step's budget is counted, up to `timerLimit`, not emitted. */
export function fireAlertTimer(step: StepContext, timer: AlertTimer, timerLimit: number): void {
  const alert = timer.alert;
  if (timer.kind === 'clear') {
    clearAlert(step, alert, timer.at);
  } else if (step.escalationsLeft <= 0) {
    // Budget spent: count every escalation due up to the limit without emitting them.
    const every = step.config.escalateEveryMs;
    const due = Number.isFinite(timerLimit) ? Math.floor((timerLimit - alert.raisedTs) / every) : alert.escalations + 1;
    alert.escalations = Math.max(alert.escalations + 1, due);
  } else {
    step.escalationsLeft -= 1;
    alert.escalations += 1;
    emitAlert(
      step,
      timer.at,
      { type: 'AlertEscalated', alert_id: alert.id, level: alert.level, count: alert.escalations },
      alert.escalations,
    );
  }
}

/** Appends one alert event (`seq` tells apart the same event type of one alert: the escalation count). */
function emitAlert(step: StepContext, ts: number, event: AlertEventKind, seq: number): void {
  const state = step.state;
  const alert: AlertEvent = {
    event_id: alertEventIdOf(event.alert_id, event.type, seq),
    tenant_id: state.tenant_id ?? '',
    session_id: state.session_id,
    ts,
    event,
  };
  step.outputs.push({ kind: 'alert', event: alert });
}
