// Alerts view: alerts not yet cleared; severe (level 2) unacknowledged ones first and marked until
// someone acknowledges them. Acknowledging posts to the API's ack route; the row says "acknowledging…"
// until the processor's AlertAcknowledged comes back over the live feed.

import { api } from './api.js';
import { store, markPending } from './store.js';
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

async function acknowledge(a, button) {
  const status = document.getElementById('ack-status');
  button.disabled = true;
  markPending(a.alert_id);
  try {
    await api(`/v1/alerts/${encodeURIComponent(a.alert_id)}/ack`, { method: 'POST', body: { by: 'fleet board' } });
    status.textContent = `Acknowledgement of ${a.reason} on ${a.session_id} sent.`;
  } catch (err) {
    a.pending = false;
    button.disabled = false;
    status.textContent = `Could not acknowledge: ${err.message}`;
  }
}

export function renderAlerts(now = Date.now()) {
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
  const severe = severeOpenCount();
  const badge = document.getElementById('alert-badge');
  badge.textContent = severe ? `${severe} severe` : list.length ? String(list.length) : '';
  badge.className = severe ? 'badge badge-severe' : 'badge';
}
