import type { AlertEvent, FatigueScored } from '../../schemas/types';

/**
 * The comparison `vigil rescore` prints: per session, the what-if model's scores and alerts beside the
 * live ones over the same event-time range. Pure: fed with decoded events, no database.
 */
export interface ModelStats {
  model: string;
  /** Scored windows, their mean and maximum score (null without windows) and the highest level. */
  windows: number;
  mean: number | null;
  max: number | null;
  maxLevel: number | null;
  /** AlertRaised events, in total and per reason. */
  alerts: number;
  alertsByReason: Record<string, number>;
}

interface Acc {
  model: string | null;
  windows: number;
  sum: number;
  max: number | null;
  maxLevel: number | null;
  alerts: number;
  alertsByReason: Record<string, number>;
}

const emptyAcc = (): Acc => ({
  model: null,
  windows: 0,
  sum: 0,
  max: null,
  maxLevel: null,
  alerts: 0,
  alertsByReason: {},
});

/** Per-session running totals of one model's scores and alerts (constant memory per session). */
export class Tally {
  private readonly sessions = new Map<string, Acc>();

  constructor(private readonly defaultModel: string) {}

  private acc(session: string): Acc {
    let a = this.sessions.get(session);
    if (!a) this.sessions.set(session, (a = emptyAcc()));
    return a;
  }

  addScore(e: FatigueScored): void {
    const a = this.acc(e.session_id);
    // Scores have one decimal (the model rounds them); a score read back from Avro is a float32 near
    // it (92.9 → 92.9000015...): round so the producer's and a reader's tallies agree.
    const score = Math.round(e.score * 10) / 10;
    a.model ??= e.model_version;
    a.windows += 1;
    a.sum += score;
    a.max = a.max === null ? score : Math.max(a.max, score);
    a.maxLevel = a.maxLevel === null ? e.level : Math.max(a.maxLevel, e.level);
  }

  addAlert(e: AlertEvent): void {
    const a = this.acc(e.session_id);
    if (e.event.type !== 'AlertRaised') return;
    a.alerts += 1;
    a.alertsByReason[e.event.reason] = (a.alertsByReason[e.event.reason] ?? 0) + 1;
  }

  sessionIds(): string[] {
    return [...this.sessions.keys()];
  }

  /** The session's stats; zeros under the tally's model name when nothing was seen of it. */
  statsOf(session: string): ModelStats {
    const a = this.sessions.get(session) ?? emptyAcc();
    return {
      model: a.model ?? this.defaultModel,
      windows: a.windows,
      // One decimal, as the scores themselves.
      mean: a.windows > 0 ? Math.round((a.sum / a.windows) * 10) / 10 : null,
      max: a.max,
      maxLevel: a.maxLevel,
      alerts: a.alerts,
      alertsByReason: Object.fromEntries(Object.entries(a.alertsByReason).sort(([x], [y]) => x.localeCompare(y))),
    };
  }
}

export interface SessionComparison {
  session_id: string;
  whatIf: ModelStats;
  live: ModelStats;
  /** whatIf.mean − live.mean (one decimal), null when either has no windows. */
  meanDelta: number | null;
  /** Windows scored by one model only (a different count means the models disagree on presence). */
  windowDelta: number;
}

/** One row per session seen by either side, sorted by session id. */
export function compareModels(whatIf: Tally, live: Tally): SessionComparison[] {
  const ids = [...new Set([...whatIf.sessionIds(), ...live.sessionIds()])].sort();
  return ids.map((session_id) => {
    const w = whatIf.statsOf(session_id);
    const l = live.statsOf(session_id);
    return {
      session_id,
      whatIf: w,
      live: l,
      meanDelta: w.mean !== null && l.mean !== null ? Math.round((w.mean - l.mean) * 10) / 10 : null,
      windowDelta: w.windows - l.windows,
    };
  });
}

const num = (x: number | null): string => (x === null ? '-' : x.toFixed(1));
const reasons = (r: Record<string, number>): string =>
  Object.entries(r)
    .map(([k, n]) => `${k}:${n}`)
    .join(' ');

/** The comparison as an aligned text table, two lines per session (live first, then the what-if). */
export function formatComparison(rows: readonly SessionComparison[]): string {
  const header = ['session', 'side', 'model', 'windows', 'mean', 'max', 'level', 'alerts', 'by reason'];
  const lines: string[][] = [header];
  for (const r of rows) {
    for (const side of ['live', 'what-if'] as const) {
      const s = side === 'live' ? r.live : r.whatIf;
      lines.push([
        side === 'live' ? r.session_id : '',
        side,
        s.windows === 0 && side === 'live' ? '-' : s.model,
        String(s.windows),
        num(s.mean),
        num(s.max),
        s.maxLevel === null ? '-' : String(s.maxLevel),
        String(s.alerts),
        reasons(s.alertsByReason),
      ]);
    }
  }
  const widths = header.map((_, i) => Math.max(...lines.map((l) => l[i]!.length)));
  const right = new Set([3, 4, 5, 6, 7]);
  return lines
    .map((l) =>
      l
        .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
