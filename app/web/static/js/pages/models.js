import { api } from '../api.js';
import { $, emptyState, fmtAgo, fmtBytes, fmtDate, h, typeBadge } from '../dom.js';
import { clearErrors, confirmDialog, copyText, openDialog, showErrors, toast } from '../ui.js';

const root = $('[data-models-page]');
const canWrite = root.dataset.canWrite === 'true';
const box = $('[data-models]');
const renameDialog = $('[data-rename-dialog]');
const usageDialog = $('[data-usage-dialog]');
const CLIENT_NAMES = { comfyui: 'ComfyUI', a1111: 'AUTOMATIC1111', invokeai: 'InvokeAI', diffusers: 'diffusers' };

const copyButton = (text, label = 'Copy') => h('button', { type: 'button', class: 'btn btn-ghost btn-sm', 'data-copy': '',
  onclick: async () => { if (await copyText(text)) toast('Copied', 'success'); } }, label);

function linkState(l) {
  if (l.revoked_at) return 'Revoked';
  if (new Date(l.expires_at).getTime() <= Date.now()) return 'Expired';
  return `Active until ${fmtDate(l.expires_at)}`;
}

// Install links (POST/GET/DELETE /v1/models/{id}/links): long-lived URLs without an API key
// for InvokeAI's "install from URL". A new link's URLs are shown once (only a hash is kept).
function linksSection(m) {
  const list = h('ul', { class: 'stack small', 'data-link-list': '' });
  const fresh = h('div', { class: 'stack', 'data-link-new': '' });
  async function refresh() {
    try {
      const page = await api(`/v1/models/${m.id}/links?limit=200`);
      list.replaceChildren(...(page.items.length ? page.items.map((l) => h('li', { class: 'toolbar', 'data-link': l.id },
        h('span', {}, l.name || 'Install link', ' · ', h('span', { class: 'muted', 'data-link-state': '' }, linkState(l)),
          ' · ', h('span', { class: 'muted' }, l.last_used_at ? `last used ${fmtAgo(l.last_used_at)}` : 'never used')),
        canWrite && !l.revoked_at ? h('button', { type: 'button', class: 'btn btn-danger-ghost btn-sm', 'data-revoke-link': '', onclick: () => revoke(l) }, 'Revoke') : null))
        : [h('li', { class: 'muted' }, 'No install links yet.')]));
    } catch (err) { list.replaceChildren(h('li', { class: 'alert alert-error', role: 'alert' }, err.message)); }
  }
  async function revoke(l) {
    const ok = await confirmDialog({ title: 'Revoke this install link?', body: 'Its URLs stop working at once, for everyone who has them.', confirmText: 'Revoke link', danger: true });
    if (!ok) return;
    try { await api(`/v1/models/${m.id}/links/${l.id}`, { method: 'DELETE' }); fresh.replaceChildren(); toast('Link revoked', 'success'); refresh(); } catch (err) { toast(err.message, 'error'); }
  }
  async function create() {
    try {
      const link = await api(`/v1/models/${m.id}/links`, { method: 'POST', json: {} });
      fresh.replaceChildren(
        h('p', { class: 'small' }, `Copy now: these URLs are shown only once. They work without an API key until ${fmtDate(link.expires_at)} or until you revoke them.`),
        ...link.files.map((f) => h('div', { class: 'toolbar' }, h('code', { class: 'small', 'data-link-url': '' }, f.url), copyButton(f.url, `Copy ${f.download_name}`))));
      refresh();
    } catch (err) { toast(err.message, 'error'); }
  }
  refresh();
  return h('section', { class: 'stack', 'data-links': '' },
    h('h3', {}, 'Install links'),
    h('p', { class: 'small muted' }, 'For InvokeAI on another machine or a script: a link that lasts 90 days and can be revoked.'),
    canWrite ? h('div', {}, h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-create-link': '', onclick: create }, 'Create install link')) : null,
    fresh, list);
}

// "Use this model": the trigger and per-client steps from GET /v1/models/{id}/usage.
async function openUsage(m) {
  const body = $('[data-usage-body]', usageDialog);
  try {
    const u = await api(`/v1/models/${m.id}/usage`);
    body.replaceChildren(
      h('p', {}, 'Trigger: ', u.trigger ? h('code', { 'data-usage-trigger': '' }, u.trigger) : h('span', { class: 'muted' }, 'none')),
      ...u.clients.map((c) => h('section', { class: 'stack', 'data-usage-client': c.client },
        h('h3', {}, CLIENT_NAMES[c.client] || c.client),
        h('ol', { class: 'small' }, c.steps.map((s) => h('li', {}, s))),
        c.snippet ? h('div', { class: 'toolbar' }, h('pre', { class: 'small' }, h('code', {}, c.snippet)), copyButton(c.snippet)) : null)),
      linksSection(m),
      u.note ? h('p', { class: 'small muted' }, u.note) : null);
    openDialog(usageDialog);
  } catch (err) { toast(err.message, 'error'); }
}
let renaming = null;

function downloads(m) {
  if (m.files.length <= 1) {
    return h('a', { class: 'btn btn-secondary btn-sm', href: `/v1/models/${m.id}/download`, download: m.files[0]?.download_name || '', 'data-download': '', title: m.files[0]?.download_name }, 'Download');
  }
  return h('details', { class: 'menu' }, h('summary', { class: 'btn btn-secondary btn-sm' }, `Download (${m.files.length} files)`),
    h('div', { class: 'menu-list' }, m.files.map((f) => h('a', { href: `/v1/models/${m.id}/download?file=${encodeURIComponent(f.name)}`, download: f.download_name || '' }, `${f.download_name || f.name} · ${fmtBytes(f.bytes)}`))));
}

function card(m) {
  const preview = m.preview_images[0];
  const trigger = m.trigger ? h('button', { type: 'button', class: 'chip', title: 'Copy trigger', 'aria-label': `Copy trigger ${m.trigger}`,
    onclick: async () => { if (await copyText(m.trigger)) toast(`Copied “${m.trigger}”`, 'success'); } }, m.trigger) : h('span', { class: 'muted' }, '—');
  return h('article', { class: 'model-card card', 'data-model': m.id },
    h('div', { class: 'model-preview' }, preview ? h('img', { src: preview.url, alt: `Preview: ${preview.prompt}`, loading: 'lazy' }) : h('div', { class: 'no-preview muted small' }, 'No preview'),
      h('div', { class: 'preview-badges' }, typeBadge(m.type))),
    h('div', { class: 'model-body' },
      h('h2', { class: 'model-name', 'data-model-name': '' }, m.name),
      h('dl', { class: 'kv-grid small' },
        h('div', {}, h('dt', {}, 'Base model'), h('dd', {}, `${m.base_model} · ${m.architecture === 'sdxl' ? 'SDXL' : 'SD 1.5'}`)),
        h('div', {}, h('dt', {}, 'Trigger'), h('dd', {}, trigger)),
        h('div', {}, h('dt', {}, 'Size'), h('dd', {}, fmtBytes(m.bytes))),
        h('div', {}, h('dt', {}, 'Step'), h('dd', {}, m.job_id ? h('a', { class: 'link', href: `/jobs/${m.job_id}` }, `${m.step}`) : `${m.step}`))),
      h('p', { class: 'small muted' }, `Created ${fmtAgo(m.created_at)}`)),
    h('div', { class: 'model-actions' }, downloads(m),
      h('button', { class: 'btn btn-secondary btn-sm', type: 'button', 'data-use': '', onclick: () => openUsage(m) }, 'Use'),
      canWrite ? h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-rename': '', onclick: () => openRename(m) }, 'Rename') : null,
      canWrite ? h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', 'data-delete': '', onclick: () => remove(m) }, 'Delete') : null));
}

async function load() {
  const params = new URLSearchParams({ limit: '200' });
  const type = $('[data-model-type]').value;
  const q = $('[data-model-q]').value.trim();
  if (type) params.set('type', type);
  if (q) params.set('q', q);
  try {
    const page = await api(`/v1/models?${params}`);
    box.replaceChildren(...(page.items.length ? page.items.map(card)
      : [emptyState(type || q ? 'No models match' : 'Your library is empty', type || q ? 'Try another filter.' : 'Finalize the steps you like from a finished training job and they appear here.',
        type || q ? null : h('a', { class: 'btn btn-secondary', href: '/jobs' }, 'Go to training'))]));
  } catch (err) {
    box.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
  }
}

function openRename(m) {
  renaming = m;
  const form = $('[data-rename-form]', renameDialog);
  clearErrors(form);
  form.elements.name.value = m.name;
  openDialog(renameDialog);
  form.elements.name.select();
}

async function remove(m) {
  const ok = await confirmDialog({ title: `Delete “${m.name}”?`, body: `Its files (${fmtBytes(m.bytes)}) and previews are deleted from storage. Anyone using the download link loses access.`, confirmText: 'Delete model', danger: true });
  if (!ok) return;
  try { await api(`/v1/models/${m.id}`, { method: 'DELETE' }); toast('Model deleted', 'success'); load(); } catch (err) { toast(err.message, 'error'); }
}

if (renameDialog) {
  const form = $('[data-rename-form]', renameDialog);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api(`/v1/models/${renaming.id}`, { method: 'PATCH', json: { name: form.elements.name.value } });
      renameDialog.close();
      toast('Model renamed', 'success');
      load();
    } catch (err) {
      // A 409 (the name is taken) has no field list: its message belongs beside the name.
      const placed = err.errors.length ? err : { message: '', errors: [{ loc: ['name'], msg: err.message }] };
      (showErrors(form, placed) || form.elements.name).focus();
    }
  });
}
let t = null;
$('[data-model-q]').addEventListener('input', () => { clearTimeout(t); t = setTimeout(load, 200); });
$('[data-model-type]').addEventListener('change', load);
load();
