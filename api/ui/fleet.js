// Fleet view: every live session of the tenant, highest risk first (level, then score). Rows are kept
// per session and only the cells that changed are written; rows move only when the order changed.

import { store, recordRender, openAlertsOf } from './store.js';
import { ago, el, levelText, num } from './format.js';

const rows = new Map();
const COMPONENTS = ['ocular', 'driving', 'eeg', 'reaction', 'yawn'];

function risk(a, b) {
  return (
    (b.level ?? -1) - (a.level ?? -1) ||
    (b.score ?? -1) - (a.score ?? -1) ||
    (a.session_id < b.session_id ? -1 : a.session_id > b.session_id ? 1 : 0)
  );
}

function newRow(s) {
  const link = el('a', { href: `#/session/${encodeURIComponent(s.session_id)}`, text: s.session_id });
  const cells = {
    session: el('th', { scope: 'row' }, link),
    driver: el('td'),
    level: el('td'),
    score: el('td', { class: 'num' }),
    components: el('td', { class: 'components' }),
    alerts: el('td', { class: 'num' }),
    seen: el('td'),
  };
  const badge = el('span', { class: 'lvl' });
  cells.level.append(badge);
  const tr = el('tr', { 'data-session': s.session_id }, ...Object.values(cells));
  return { tr, cells, badge, last: {} };
}

function set(row, key, value, write) {
  if (row.last[key] === value) return;
  row.last[key] = value;
  write(value);
}

/** Rows are re-ordered by risk at most this often: cells update at once, rows do not jump around. */
const REORDER_MS = 1000;
let order = [];
let orderedAt = 0;

export function renderFleet(now = Date.now()) {
  const t0 = performance.now();
  const body = document.getElementById('fleet-body');
  let reorder = now - orderedAt >= REORDER_MS;
  for (const [id, row] of rows)
    if (!store.sessions.has(id)) {
      row.tr.remove();
      rows.delete(id);
      reorder = true;
    }
  for (const s of store.sessions.values()) {
    let row = rows.get(s.session_id);
    if (!row) {
      rows.set(s.session_id, (row = newRow(s)));
      reorder = true;
    }
    set(row, 'driver', s.driver_id ?? '—', (v) => (row.cells.driver.textContent = v));
    set(row, 'level', s.level ?? 'none', (v) => {
      row.badge.className = `lvl lvl-${v}`;
      row.badge.textContent = levelText(s.level);
      row.tr.className = s.level === 2 ? 'risk-2' : s.level === 1 ? 'risk-1' : '';
    });
    set(row, 'score', num(s.score), (v) => (row.cells.score.textContent = v));
    const comps = s.components ? COMPONENTS.map((c) => num(s.components[c], 2)).join(' · ') : '—';
    set(row, 'components', comps, (v) => (row.cells.components.textContent = v));
    set(row, 'alerts', String(openAlertsOf(s.session_id)), (v) => (row.cells.alerts.textContent = v));
    set(row, 'seen', ago(s.lastSeen, now), (v) => (row.cells.seen.textContent = v));
  }
  if (reorder) {
    orderedAt = now;
    order = [...store.sessions.values()].sort(risk).map((s) => rows.get(s.session_id).tr);
    // From the end, each row placed before the one after it: a row that moved costs one DOM move,
    // the rows it passed stay where they are.
    let ref = null;
    for (let i = order.length - 1; i >= 0; i--) {
      const tr = order[i];
      if (tr.parentNode !== body || tr.nextSibling !== ref) body.insertBefore(tr, ref);
      ref = tr;
    }
  }
  document.getElementById('fleet-count').textContent = `(${store.sessions.size} live)`;
  document.getElementById('fleet-empty').hidden = store.sessions.size > 0;
  recordRender(performance.now() - t0);
}

export function resetFleet() {
  for (const row of rows.values()) row.tr.remove();
  rows.clear();
  order = [];
  orderedAt = 0;
}
