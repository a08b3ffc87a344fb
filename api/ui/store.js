// The board's state: the tenant's live sessions and its not-cleared alerts, loaded once over the API
// and then kept current from the tenant live feed (GET /v1/live, Server-Sent Events). Views subscribe
// and re-render at most once per animation frame.

import { api } from './api.js';

const RENDER_SAMPLES = 2000;

export const store = {
  /** session_id -> { session_id, driver_id, vehicle_id, score, level, components, lastSeen, features } */
  sessions: new Map(),
  /** alert_id -> { alert_id, session_id, level, reason, status, escalations, raisedAt, pending } */
  alerts: new Map(),
  listeners: new Set(),
  /** Performance figures read by the browser spec and `npm run bench -- ui`. */
  stats: { updates: 0, renders: 0, renderMs: [], lastEventAt: 0, lastEventId: null },
  source: null,
  dirty: false,
  /** Bumped on every change to `alerts`: the alerts table is rebuilt only when it moved. */
  alertsVersion: 0,
};

export function onChange(fn) {
  store.listeners.add(fn);
  return () => store.listeners.delete(fn);
}

/** Views call this after they render: the time is kept in a bounded ring (memory stays flat). */
export function recordRender(ms) {
  const s = store.stats;
  s.renders++;
  if (s.renderMs.length >= RENDER_SAMPLES) s.renderMs.shift();
  s.renderMs.push(ms);
}

function changed(alerts = false) {
  if (alerts) store.alertsVersion++;
  if (store.dirty) return;
  store.dirty = true;
  requestAnimationFrame(() => {
    store.dirty = false;
    openCounts = null;
    for (const fn of store.listeners) fn();
  });
}

const tsOf = (v) => (typeof v === 'number' ? v : v ? Date.parse(v) : 0);

function upsertSession(id, patch) {
  const s = store.sessions.get(id) || {
    session_id: id,
    driver_id: null,
    vehicle_id: null,
    score: null,
    level: null,
    components: null,
    features: null,
    lastSeen: 0,
  };
  Object.assign(s, patch);
  store.sessions.set(id, s);
  return s;
}

/** Open (not cleared) alerts per session, recounted once per change batch rather than per row. */
let openCounts = null;
export function openAlertsOf(sessionId) {
  if (!openCounts) {
    openCounts = new Map();
    for (const a of store.alerts.values()) openCounts.set(a.session_id, (openCounts.get(a.session_id) || 0) + 1);
  }
  return openCounts.get(sessionId) || 0;
}

async function allPages(path, field, maxPages = 10) {
  const out = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const page = await api(`${path}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page[field]);
    cursor = page.next_cursor;
    if (!cursor) break;
  }
  return out;
}

function alertFromRow(a) {
  return {
    alert_id: a.alert_id,
    session_id: a.session_id,
    level: a.level,
    reason: a.reason,
    status: a.status,
    escalations: a.escalations,
    raisedAt: tsOf(a.raised_at || a.last_event_ts),
    pending: false,
  };
}

/** Loads the current picture, then follows the live feed. */
export async function loadAndFollow(onLiveState) {
  const [sessions, active, acked] = await Promise.all([
    allPages('/v1/sessions?status=active&limit=500', 'sessions'),
    allPages('/v1/alerts?state=active&limit=500', 'alerts'),
    allPages('/v1/alerts?state=acknowledged&limit=500', 'alerts', 2),
  ]);
  for (const s of sessions)
    upsertSession(s.session_id, {
      driver_id: s.driver_id,
      vehicle_id: s.vehicle_id,
      score: s.last_score,
      level: s.last_level,
      lastSeen: tsOf(s.last_seen_at),
    });
  for (const a of [...active, ...acked]) store.alerts.set(a.alert_id, alertFromRow(a));
  changed(true);
  follow(onLiveState);
}

function follow(onLiveState) {
  const es = new EventSource('/v1/live', { withCredentials: true });
  store.source = es;
  es.onopen = () => onLiveState('live');
  es.onerror = () => onLiveState(es.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…');
  const handle = (kind) => (ev) => {
    store.stats.updates++;
    store.stats.lastEventAt = Date.now();
    store.stats.lastEventId = ev.lastEventId;
    try {
      apply(kind, JSON.parse(ev.data));
    } catch (err) {
      console.warn('live feed: unreadable entry', err);
    }
    changed(kind === 'alert');
  };
  es.addEventListener('score', handle('score'));
  es.addEventListener('session', handle('session'));
  es.addEventListener('alert', handle('alert'));
}

export function stopFollowing() {
  store.source?.close();
  store.source = null;
  store.sessions.clear();
  store.alerts.clear();
}

/** Score events for the open session view (set by session.js). */
export const scoreTaps = new Set();

function apply(kind, e) {
  if (kind === 'score') {
    upsertSession(e.session_id, {
      score: e.score,
      level: e.level,
      components: e.components,
      features: e.features || null,
      lastSeen: tsOf(e.ts),
    });
    for (const tap of scoreTaps) tap(e);
  } else if (kind === 'session') {
    const type = e.event && e.event.type;
    if (type === 'SessionStarted')
      upsertSession(e.session_id, {
        driver_id: e.event.driver_id ?? null,
        vehicle_id: e.event.vehicle_id ?? null,
        lastSeen: tsOf(e.ts),
      });
    else if (type === 'SessionEnded') store.sessions.delete(e.session_id);
  } else if (kind === 'alert') {
    const a = e.event || {};
    const known = store.alerts.get(a.alert_id);
    if (a.type === 'AlertRaised')
      store.alerts.set(a.alert_id, {
        alert_id: a.alert_id,
        session_id: e.session_id,
        level: a.level,
        reason: a.reason,
        status: 'active',
        escalations: 0,
        raisedAt: tsOf(e.ts),
        pending: false,
      });
    else if (a.type === 'AlertCleared') store.alerts.delete(a.alert_id);
    else if (known && a.type === 'AlertEscalated') {
      known.escalations = a.count ?? known.escalations + 1;
      if (a.level !== undefined && a.level !== null) known.level = a.level;
    } else if (known && a.type === 'AlertAcknowledged') {
      known.status = 'acknowledged';
      known.pending = false;
    }
    for (const tap of scoreTaps) tap(null, e);
  }
}

export function markPending(alertId, pending = true) {
  const a = store.alerts.get(alertId);
  if (a) a.pending = pending;
  changed(true);
}

/** The API's word on an alert: its status now (the feed may not carry an acknowledgement, see below). */
export function markAcknowledged(alertId) {
  const a = store.alerts.get(alertId);
  if (a) {
    a.status = 'acknowledged';
    a.pending = false;
  }
  changed(true);
}

export function refresh() {
  changed(true);
}
