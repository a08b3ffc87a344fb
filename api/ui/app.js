// The board's entry point: sign-in, the views (hash routes #/fleet, #/alerts, #/session/<id>), the
// live state line, and sign-out. The API key is sent once, to POST /v1/auth/session, and never kept:
// the session is an HttpOnly cookie; the CSRF token lives only in this page's memory.

import { api, setCsrf, ApiError } from './api.js';
import { store, onChange, loadAndFollow, stopFollowing, refresh } from './store.js';
import { renderFleet, resetFleet } from './fleet.js';
import { renderAlerts, severeOpenCount } from './alerts.js';
import { showSession, leaveSession, changeRange, changeOverlay, playBack } from './session.js';

const $ = (id) => document.getElementById(id);
const VIEWS = ['signin', 'fleet', 'alerts', 'session'];
let signedIn = false;
let view = 'signin';

function show(name) {
  view = name;
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== name;
  for (const a of document.querySelectorAll('#nav a'))
    a.getAttribute('data-view') === name ? a.setAttribute('aria-current', 'page') : a.removeAttribute('aria-current');
}

function renderVisible() {
  if (view === 'fleet') renderFleet();
  if (view === 'alerts') renderAlerts();
  const severe = severeOpenCount();
  const badge = $('alert-badge');
  badge.textContent = severe ? `${severe} severe` : store.alerts.size ? String(store.alerts.size) : '';
  badge.className = severe ? 'badge badge-severe' : 'badge';
}

async function route() {
  if (!signedIn) return show('signin');
  const hash = location.hash || '#/fleet';
  const m = /^#\/session\/(.+)$/.exec(hash);
  if (m) {
    show('session');
    try {
      await showSession(decodeURIComponent(m[1]));
    } catch (err) {
      $('session-status').textContent = `Could not load the session: ${err.message}`;
    }
    return;
  }
  leaveSession();
  show(hash === '#/alerts' ? 'alerts' : 'fleet');
  renderVisible();
}

function signedInAs(s) {
  signedIn = true;
  setCsrf(s.csrf_token);
  $('who-text').textContent = `${s.tenant_id} · ${s.role}`;
  $('who').hidden = false;
  $('nav').hidden = false;
  loadAndFollow((state) => ($('live-state').textContent = state)).catch((err) => {
    if (err instanceof ApiError && err.status === 401) return signedOut('Your session has ended: sign in again.');
    $('live-state').textContent = `could not load: ${err.message}`;
  });
  route();
}

function signedOut(message = '') {
  signedIn = false;
  setCsrf('');
  stopFollowing();
  resetFleet();
  leaveSession();
  $('who').hidden = true;
  $('nav').hidden = true;
  $('signin-error').textContent = message;
  show('signin');
  $('signin-key').focus();
}

async function signIn(ev) {
  ev.preventDefault();
  const input = $('signin-key');
  const key = input.value.trim();
  input.value = '';
  $('signin-error').textContent = '';
  try {
    signedInAs(await api('/v1/auth/session', { method: 'POST', key, body: {} }));
    $('main').focus();
  } catch (err) {
    $('signin-error').textContent =
      err instanceof ApiError && (err.status === 401 || err.status === 403)
        ? 'That key was not accepted (a reader or admin key is needed).'
        : `Sign-in failed: ${err.message}`;
  }
}

async function signOut() {
  await api('/v1/auth/session', { method: 'DELETE' }).catch(() => {});
  history.replaceState(null, '', '#/fleet');
  signedOut('Signed out.');
}

async function boot() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', signOut);
  $('range-bucket').addEventListener('change', () =>
    changeRange().catch((e) => ($('session-status').textContent = e.message)),
  );
  $('overlay-model').addEventListener('change', () =>
    changeOverlay().catch((e) => ($('session-status').textContent = e.message)),
  );
  $('playback').addEventListener('click', playBack);
  window.addEventListener('hashchange', route);
  onChange(renderVisible);
  // "Last seen" and ages move with the clock.
  setInterval(() => signedIn && refresh(), 5000);
  window.vigilBoard = { store, stats: store.stats };
  const state = await api('/ui/session').catch(() => ({ signed_in: false }));
  if (state.signed_in) signedInAs(state);
  else signedOut();
}

boot();
