// Session view: score timeline with its components and alert markers (uPlot), the range picker (the
// API's buckets), the latest features, another model's scores overlaid (what-if models from
// `vigil rescore`), playback of an ended session, and its report when there is one.

import uPlot from '/ui/vendor/uPlot.esm.js';
import { api } from './api.js';
import { scoreTaps } from './store.js';
import { el, levelBadge, num } from './format.js';

const COMPONENTS = ['ocular', 'driving', 'eeg', 'reaction', 'yawn'];
const COLORS = {
  score: '#1f4e9c',
  ocular: '#b35806',
  driving: '#5e3c99',
  eeg: '#1b7837',
  reaction: '#878787',
  yawn: '#c51b7d',
  overlay: '#d7301f',
  alert: '#b2182b',
};
const FEATURES = [
  ['perclos', 'PERCLOS (share of time eyes ≥ 80 % closed)', 3],
  ['long_blink_share', 'Long-blink share', 3],
  ['sdlp_m', 'SDLP (lane position std-dev, m)', 3],
  ['lane_departures', 'Lane departures', 0],
  ['eeg_ratio', 'EEG ratio (θ+α)/β', 2],
  ['lapses', 'Reaction lapses', 0],
  ['yawns', 'Yawns', 0],
];

let current = null;

function destroy() {
  if (!current) return;
  current.plot?.destroy();
  current.playback?.close();
  if (current.tap) scoreTaps.delete(current.tap);
  current = null;
}

const secs = (iso) => Date.parse(iso) / 1000;

function seriesFrom(scores, bucket) {
  const x = [];
  const score = [];
  const comps = COMPONENTS.map(() => []);
  for (const s of scores) {
    x.push(secs(bucket === 'raw' ? s.ts : s.bucket_start));
    score.push(bucket === 'raw' ? s.score : s.score_avg);
    COMPONENTS.forEach((c, i) =>
      comps[i].push(bucket === 'raw' && s.components[c] !== null ? s.components[c] * 100 : null),
    );
  }
  return { x, score, comps };
}

/** Joins the overlay's points onto the x axis of the live series (nearest earlier-or-equal time). */
function alignOverlay(x, overlay) {
  const out = new Array(x.length).fill(null);
  if (!overlay) return out;
  const byTs = new Map(overlay.x.map((t, i) => [t, overlay.score[i]]));
  x.forEach((t, i) => (out[i] = byTs.has(t) ? byTs.get(t) : null));
  return out;
}

function alertMarkers(x, score, alerts) {
  const out = new Array(x.length).fill(null);
  for (const a of alerts) {
    const t = Date.parse(a.raised_at || a.last_event_ts) / 1000;
    let best = -1;
    for (let i = 0; i < x.length; i++) if (x[i] <= t) best = i;
    if (best >= 0) out[best] = score[best] ?? 100;
  }
  return out;
}

function chartData(c) {
  const { x, score, comps } = c.series;
  return [x, score, ...comps, alignOverlay(x, c.overlay), alertMarkers(x, score, c.alerts)];
}

function makePlot(c) {
  const box = document.getElementById('chart');
  box.replaceChildren();
  const width = Math.max(320, box.clientWidth || 800);
  const opts = {
    width,
    height: 300,
    scales: { y: { range: [0, 100] } },
    axes: [{}, { label: 'score / component × 100' }],
    series: [
      {},
      { label: 'score', stroke: COLORS.score, width: 2 },
      ...COMPONENTS.map((k) => ({ label: k, stroke: COLORS[k], width: 1, show: k !== 'yawn' })),
      {
        label: c.overlayModel ? `model ${c.overlayModel}` : 'other model',
        stroke: COLORS.overlay,
        width: 2,
        dash: [6, 4],
        show: Boolean(c.overlayModel),
      },
      {
        label: 'alert raised',
        stroke: COLORS.alert,
        width: 0,
        paths: () => null,
        points: { show: true, size: 10, fill: COLORS.alert },
      },
    ],
  };
  c.plot = new uPlot(opts, chartData(c), box);
  document.getElementById('chart-legend').textContent =
    `${c.series.x.length} points (${c.bucket}); red dots: alerts raised`;
}

function renderFeatures(features) {
  const dl = document.getElementById('features');
  if (!features) {
    dl.replaceChildren(el('dt', { text: 'Features' }), el('dd', { text: 'none measured yet' }));
    return;
  }
  dl.replaceChildren(
    ...FEATURES.flatMap(([k, label, d]) => [el('dt', { text: label }), el('dd', { text: num(features[k], d) })]),
  );
}

function renderSessionAlerts(alerts) {
  document
    .getElementById('session-alerts')
    .replaceChildren(
      ...(alerts.length
        ? alerts.map((a) =>
            el(
              'li',
              {},
              levelBadge(a.level),
              ` ${a.reason} — ${a.status}, raised ${new Date(a.raised_at || a.last_event_ts).toLocaleTimeString()}, escalations ${a.escalations}`,
            ),
          )
        : [el('li', { class: 'muted', text: 'none' })]),
    );
}

async function renderReport(sessionId) {
  const box = document.getElementById('report');
  const { sessions } = await api('/v1/reports/sessions?days=365');
  const r = sessions.find((x) => x.session_id === sessionId);
  if (!r)
    return void box.replaceChildren(
      el('p', { class: 'muted', text: 'No report yet (written when the session ends).' }),
    );
  const rows = Object.entries(r).filter(([k]) => k !== 'session_id');
  box.replaceChildren(
    el(
      'dl',
      { class: 'features' },
      ...rows.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v === null ? '—' : String(v) })]),
    ),
  );
}

async function loadScores(c) {
  const q = `bucket=${c.bucket}${c.bucket === 'raw' ? '&features=true' : ''}`;
  const live = await api(`/v1/sessions/${encodeURIComponent(c.id)}/scores?${q}`);
  c.series = seriesFrom(live.scores, c.bucket);
  const last = live.scores[live.scores.length - 1];
  if (last && last.features) renderFeatures(last.features);
  c.overlay = null;
  if (c.overlayModel) {
    const other = await api(
      `/v1/sessions/${encodeURIComponent(c.id)}/scores?${q}&model=${encodeURIComponent(c.overlayModel)}`,
    );
    c.overlay = seriesFrom(other.scores, c.bucket);
  }
}

export async function showSession(id) {
  destroy();
  const c = (current = { id, bucket: document.getElementById('range-bucket').value, overlayModel: '', alerts: [] });
  document.getElementById('session-title').textContent = `Session ${id}`;
  const status = document.getElementById('session-status');
  status.textContent = 'loading…';
  renderFeatures(null);
  const [detail, alerts, models] = await Promise.all([
    api(`/v1/sessions/${encodeURIComponent(id)}`),
    api(`/v1/sessions/${encodeURIComponent(id)}/alerts`),
    api(`/v1/sessions/${encodeURIComponent(id)}/models`),
  ]);
  if (current !== c) return;
  c.alerts = alerts.alerts;
  const select = document.getElementById('overlay-model');
  select.replaceChildren(
    el('option', { value: '', text: 'none' }),
    ...models.models
      .filter((m) => m.kind === 'whatif')
      .map((m) => el('option', { value: m.model_version, text: `${m.model_version} (${m.scores} scores)` })),
  );
  status.replaceChildren(
    `${detail.status === 'ended' ? 'Ended' : 'Live'} · driver ${detail.driver_id ?? '—'} · vehicle ${detail.vehicle_id ?? '—'} · level `,
    levelBadge(detail.last_level),
    ` · score ${num(detail.last_score)}`,
  );
  renderSessionAlerts(c.alerts);
  await loadScores(c);
  if (current !== c) return;
  makePlot(c);
  document.getElementById('playback').hidden = detail.status !== 'ended';
  c.tap = (score) => {
    if (!score || score.session_id !== id || c.bucket !== 'raw' || c.playback) return;
    c.series.x.push(score.ts / 1000);
    c.series.score.push(score.score);
    COMPONENTS.forEach((k, i) =>
      c.series.comps[i].push(score.components?.[k] != null ? score.components[k] * 100 : null),
    );
    if (score.features) renderFeatures(score.features);
    c.plot.setData(chartData(c));
  };
  scoreTaps.add(c.tap);
  renderReport(id).catch(() => {});
}

export function leaveSession() {
  destroy();
}

export async function changeRange() {
  const c = current;
  if (!c) return;
  c.bucket = document.getElementById('range-bucket').value;
  await loadScores(c);
  if (current === c) makePlot(c);
}

export async function changeOverlay() {
  const c = current;
  if (!c) return;
  c.overlayModel = document.getElementById('overlay-model').value;
  await loadScores(c);
  if (current === c) makePlot(c);
}

/** Replays an ended session at 8× over the playback route (Server-Sent Events), redrawing as it goes. */
export function playBack() {
  const c = current;
  if (!c) return;
  c.playback?.close();
  c.series = { x: [], score: [], comps: COMPONENTS.map(() => []) };
  c.bucket = 'raw';
  makePlot(c);
  const status = document.getElementById('session-status');
  const es = new EventSource(`/v1/sessions/${encodeURIComponent(c.id)}/playback?speed=8`, { withCredentials: true });
  c.playback = es;
  es.addEventListener('score', (ev) => {
    const s = JSON.parse(ev.data);
    c.series.x.push(secs(s.ts));
    c.series.score.push(s.score);
    COMPONENTS.forEach((k, i) => c.series.comps[i].push(s.components[k] !== null ? s.components[k] * 100 : null));
    c.plot.setData(chartData(c));
    status.textContent = `Playing back: ${new Date(s.ts).toLocaleTimeString()} score ${num(s.score)}`;
  });
  es.addEventListener('end', () => {
    es.close();
    c.playback = null;
    status.textContent = 'Playback finished.';
  });
  es.onerror = () => {
    es.close();
    c.playback = null;
  };
}
