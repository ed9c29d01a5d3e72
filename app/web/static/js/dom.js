// Tiny DOM helpers. Text is always set as textContent: user data never becomes HTML.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export const svgNS = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0; let v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !isFinite(seconds)) return '—';
  const s0 = Math.max(0, Math.round(seconds));
  if (s0 < 60) return `${s0}s`;
  const m = Math.floor(s0 / 60); const sec = s0 % 60;
  if (m < 60) return sec ? `${m}m ${sec}s` : `${m}m`;
  const hr = Math.floor(m / 60);
  return `${hr}h ${m % 60}m`;
}

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
export function fmtAgo(iso) {
  if (!iso) return '—';
  const diff = (new Date(iso).getTime() - Date.now()) / 1000;
  const abs = Math.abs(diff);
  if (abs < 45) return 'just now';
  if (abs < 3600) return rtf.format(Math.round(diff / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(diff / 3600), 'hour');
  if (abs < 86400 * 30) return rtf.format(Math.round(diff / 86400), 'day');
  return new Date(iso).toLocaleDateString();
}

export function fmtDate(iso) {
  return iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—';
}

export function fmtNumber(n, digits = 4) {
  if (n === null || n === undefined) return '—';
  return Number(n).toPrecision(digits).replace(/\.?0+$/, '');
}

export const TYPE_LABEL = {
  lora: 'LoRA', dora: 'DoRA', pivotal: 'Pivotal', textual_inversion: 'Embedding',
};
export const STATUS_LABEL = {
  queued: 'Queued', running: 'Running', succeeded: 'Ready to finalize', finalized: 'Finalized',
  cancelling: 'Cancelling', cancelled: 'Cancelled', failed: 'Failed',
};
export const ACTIVE = new Set(['queued', 'running', 'cancelling']);

export function statusBadge(status) {
  return h('span', { class: `badge status-${status}`, 'data-status-badge': status },
    ACTIVE.has(status) && status !== 'queued' ? h('span', { class: 'pulse', 'aria-hidden': 'true' }) : null,
    STATUS_LABEL[status] || status);
}

export function typeBadge(type) {
  return h('span', { class: `badge type-${type}` }, TYPE_LABEL[type] || type);
}

export function progressBar(percent, label) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  return h('div', { class: 'progress', role: 'progressbar', 'aria-label': label || 'Progress',
    'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': p },
  h('span', { class: 'progress-fill', style: { width: `${p}%` } }));
}

export function setProgress(bar, percent) {
  const p = Math.max(0, Math.min(100, Number(percent) || 0));
  bar.setAttribute('aria-valuenow', String(Math.round(p)));
  bar.querySelector('.progress-fill').style.width = `${p}%`;
}

export function emptyState(title, text, action) {
  return h('div', { class: 'empty' },
    h('div', { class: 'empty-art', 'aria-hidden': 'true' }),
    h('h2', { class: 'empty-title' }, title), h('p', { class: 'muted' }, text), action || null);
}

export const scopes = () => new Set((document.querySelector('[data-scopes]')?.dataset.scopes || '').split(' ').filter(Boolean));
export const can = (scope) => scopes().has(scope);
