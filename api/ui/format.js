// Small formatting helpers shared by the views.

export const LEVEL_TEXT = ['normal', 'drowsy', 'severe'];

export function levelText(level) {
  return level === null || level === undefined ? 'no score' : LEVEL_TEXT[level] || `level ${level}`;
}

export function ago(ms, now = Date.now()) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min ago`;
}

export function age(ms, now = Date.now()) {
  if (!ms) return '—';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

export function num(x, digits = 1) {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(digits);
}

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

export function levelBadge(level) {
  const cls = level === null || level === undefined ? 'lvl lvl-none' : `lvl lvl-${level}`;
  return el('span', { class: cls, text: levelText(level) });
}
