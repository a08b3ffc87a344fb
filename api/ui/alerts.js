// Alerts view: alerts not yet cleared; severe (level 2) unacknowledged ones first and marked until
// someone acknowledges them. Acknowledging posts to the API's ack route; the row says "acknowledging…"
// until the processor's AlertAcknowledged comes back over the live feed.

import { api } from './api.js';
import { store, markPending, markAcknowledged } from './store.js';
import { age, el, levelBadge } from './format.js';

const rank = (a) => (a.status === 'active' ? (a.level === 2 ? 0 : 1) : 2);

export function sortedAlerts() {
  return [...store.alerts.values()].sort(
    (a, b) => rank(a) - rank(b) || (b.level ?? 0) - (a.level ?? 0) || b.raisedAt - a.raisedAt,
  );
}

export function severeOpenCount() {
  let n = 0;
  for (const a of store.alerts.values()) if (a.level === 2 && a.status === 'active') n++;
  return n;
}

/**
 * Posts the acknowledgement, then asks the API until the alert reads acknowledged (at most a minute):
 * the processor's AlertAcknowledged normally arrives over the live feed first, but the feed skips
 * events older than the newest it has (a session whose devices run ahead of the clock), so the board
 * does not rely on it alone.
 */
async function acknowledge(a, button) {
  const status = document.getElementById('ack-status');
  button.disabled = true;
  markPending(a.alert_id);
  try {
    await api(`/v1/alerts/${encodeURIComponent(a.alert_id)}/ack`, { method: 'POST', body: { by: 'fleet board' } });
    status.textContent = `Acknowledgement of ${a.reason} on ${a.session_id} sent.`;
  } catch (err) {
    markPending(a.alert_id, false);
    status.textContent = `Could not acknowledge: ${err.message}`;
    return;
  }
  for (let i = 0; i < 60; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const known = store.alerts.get(a.alert_id);
    if (!known || known.status !== 'active') return;
    const { alerts } = await api(`/v1/sessions/${encodeURIComponent(a.session_id)}/alerts`).catch(() => ({
      alerts: [],
    }));
    const now = alerts.find((x) => x.alert_id === a.alert_id);
    if (now && now.status !== 'active') {
      markAcknowledged(a.alert_id);
      status.textContent = `${a.reason} on ${a.session_id} acknowledged.`;
      return;
    }
  }
}

let renderedVersion = -1;
let renderedAt = 0;

export function renderAlerts(now = Date.now()) {
  // Rebuilt when an alert changed, else every 5 s for the ages: not on every score update.
  if (store.alertsVersion === renderedVersion && now - renderedAt < 5000) return;
  renderedVersion = store.alertsVersion;
  renderedAt = now;
  const body = document.getElementById('alerts-body');
  const list = sortedAlerts();
  const rows = list.map((a) => {
    const open = a.status === 'active';
    const statusText = a.pending && open ? 'acknowledging…' : open ? 'unacknowledged' : 'acknowledged';
    const action = open
      ? el('button', {
          type: 'button',
          class: 'ack',
          disabled: a.pending,
          'aria-label': `Acknowledge ${a.reason} alert on session ${a.session_id}`,
          text: 'Acknowledge',
        })
      : el('span', { class: 'muted', text: '✓' });
    if (open) action.addEventListener('click', () => acknowledge(a, action));
    return el(
      'tr',
      { class: open && a.level === 2 ? 'severe-open' : open ? 'open' : 'acked', 'data-alert': a.alert_id },
      el('td', {}, levelBadge(a.level)),
      el('td', { text: a.reason ?? '—' }),
      el('td', {}, el('a', { href: `#/session/${encodeURIComponent(a.session_id)}`, text: a.session_id })),
      el('td', { class: 'status', text: statusText }),
      el('td', { class: 'num', text: String(a.escalations ?? 0) }),
      el('td', { text: age(a.raisedAt, now) }),
      el('td', {}, action),
    );
  });
  // Keep keyboard focus on the same alert's button across re-renders.
  const focused = document.activeElement?.closest?.('tr[data-alert]')?.getAttribute('data-alert');
  body.replaceChildren(...rows);
  if (focused) body.querySelector(`tr[data-alert="${CSS.escape(focused)}"] button`)?.focus();
  document.getElementById('alerts-empty').hidden = list.length > 0;
}
