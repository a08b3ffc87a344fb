/**
 * Whether the projections have caught up with an ended session, so its report can be written (pure).
 * The report job is triggered by SessionEnded on the sessions topic, but the rows it reads are written
 * by other projections that may lag behind it. The fatigue processor flushes a session at
 * SessionEnded: it scores the windows up to the one holding the last telemetry (and reaching the end)
 * and clears every active alert (`session_ended`). So the rows are complete once
 * - the sessions model has applied SessionEnded (status `ended`, ended_at set),
 * - no alert of the session is still open,
 * - the newest score is past the last telemetry frame (the window holding a frame ends after it) or
 *   reaches the end, whichever is first (only when the session had telemetry: without frames there is
 *   nothing to score). This is necessary, not sufficient (a flush may score one more window), so the
 *   job retries a few times and finally writes what there is (`complete: false`).
 * Each reason returned is a fact still missing; none means ready.
 */
interface ReadinessFacts {
  session: {
    status: string;
    ended_at: number | null;
    last_score_at: number | null;
    open_alert_count: number;
  } | null;
  /** Newest EEG, face or vehicle frame of the session, epoch ms; null without frames. */
  lastTelemetryTs: number | null;
}

export function pendingOf(f: ReadinessFacts): string[] {
  const s = f.session;
  if (!s) return ['session not projected yet'];
  const pending: string[] = [];
  if (s.status !== 'ended' || s.ended_at === null) pending.push('SessionEnded not projected yet');
  if (s.open_alert_count > 0) pending.push(`${s.open_alert_count} alert(s) still open`);
  if (f.lastTelemetryTs !== null) {
    const pastLastFrame = f.lastTelemetryTs + 1;
    const needed = s.ended_at === null ? pastLastFrame : Math.min(s.ended_at, pastLastFrame);
    if (s.last_score_at === null || s.last_score_at < needed) pending.push('scores not projected up to the end');
  }
  return pending;
}
