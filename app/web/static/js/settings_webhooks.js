// Settings → Webhooks: add (the signing secret is shown once), enable/disable, delete, and a
// delivery history per endpoint with redelivery.
import { api, listAll } from './api.js';
import { $, emptyState, fmtAgo, fmtDate, h } from './dom.js';
import { clearErrors, confirmDialog, copyText, openDialog, showErrors, toast } from './ui.js';

const DELIVERY_LABEL = { pending: 'Pending', succeeded: 'Delivered', failed: 'Failed' };
const DELIVERY_CLASS = { pending: 'status-queued', succeeded: 'status-succeeded', failed: 'status-failed' };

export function wireWebhooks(section) {
  const box = $('[data-webhooks]', section);
  const panel = $('[data-deliveries]', section);
  let openId = null;

  async function list() {
    try {
      const items = await listAll('/v1/webhooks');
      if (!items.length) {
        box.replaceChildren(emptyState('No webhooks', 'Add one to be told when training starts, finishes, fails or is finalized.'));
        return;
      }
      box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ['Endpoint', 'Events', 'State', 'Added', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, items.map(row)))));
    } catch (err) { box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
  }

  function row(w) {
    return h('tr', { 'data-webhook': w.id, class: w.active ? '' : 'revoked' },
      h('td', { class: 'wrap-cell' }, h('code', { class: 'mono small' }, w.url), w.description ? h('div', { class: 'small muted' }, w.description) : null),
      h('td', {}, h('div', { class: 'scope-chips' }, w.events.map((e) => h('span', { class: 'chip chip-sm' }, e)))),
      h('td', {}, h('span', { class: `badge ${w.active ? 'status-succeeded' : 'status-cancelled'}` }, w.active ? 'Active' : 'Disabled')),
      h('td', { class: 'small' }, fmtAgo(w.created_at)),
      h('td', { class: 'right row-actions' },
        h('button', { class: 'btn btn-secondary btn-sm', type: 'button', onclick: () => deliveries(w) }, 'Deliveries'),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', onclick: () => toggle(w) }, w.active ? 'Disable' : 'Enable'),
        h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', onclick: () => remove(w) }, 'Delete')));
  }

  async function toggle(w) {
    try {
      await api(`/v1/webhooks/${w.id}`, { method: 'PATCH', json: { active: !w.active } });
      toast(w.active ? 'Webhook disabled' : 'Webhook enabled', 'success');
      list();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function remove(w) {
    if (!await confirmDialog({ title: 'Delete this webhook?', body: `Events stop going to ${w.url}, and its delivery history is deleted.`, confirmText: 'Delete webhook', danger: true })) return;
    try {
      await api(`/v1/webhooks/${w.id}`, { method: 'DELETE' });
      if (openId === w.id) { panel.hidden = true; openId = null; }
      toast('Webhook deleted', 'success');
      list();
    } catch (err) { toast(err.message, 'error'); }
  }

  async function deliveries(w) {
    openId = w.id;
    $('[data-deliveries-url]', panel).textContent = w.url;
    panel.hidden = false;
    const out = $('[data-delivery-list]', panel);
    try {
      const page = await api(`/v1/webhooks/${w.id}/deliveries?limit=50`);
      if (!page.items.length) { out.replaceChildren(h('p', { class: 'muted small' }, 'No deliveries yet. They appear when a subscribed event happens.')); return; }
      out.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ['Event', 'Result', 'Attempts', 'Sent', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, page.items.map((d) => h('tr', { 'data-delivery': d.id },
          h('td', {}, h('code', { class: 'mono small' }, d.event)),
          h('td', { class: 'wrap-cell' }, h('span', { class: `badge ${DELIVERY_CLASS[d.status] || ''}` }, DELIVERY_LABEL[d.status] || d.status),
            d.response_code ? h('span', { class: 'small muted' }, ` HTTP ${d.response_code}`) : null,
            d.last_error ? h('div', { class: 'small muted' }, d.last_error) : null),
          h('td', { class: 'small' }, String(d.attempts)),
          h('td', { class: 'small', title: fmtDate(d.created_at) }, fmtAgo(d.created_at)),
          h('td', { class: 'right' }, h('button', { class: 'btn btn-secondary btn-sm', type: 'button', 'data-redeliver': d.id, onclick: () => redeliver(w, d) }, 'Redeliver'))))))));
      panel.scrollIntoView({ block: 'nearest' });
    } catch (err) { out.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
  }

  async function redeliver(w, d) {
    try {
      await api(`/v1/webhooks/${w.id}/deliveries/${d.id}/redeliver`, { method: 'POST' });
      toast(`${d.event} queued for redelivery`, 'success');
      deliveries(w);
    } catch (err) { toast(err.message, 'error'); }
  }

  $('[data-close-deliveries]', panel).addEventListener('click', () => { panel.hidden = true; openId = null; });

  // --- add, with the secret revealed once -----------------------------------------------------
  const dialog = $('[data-webhook-dialog]');
  const form = $('[data-webhook-form]', dialog);
  const reveal = $('[data-secret-reveal]', section);
  $('[data-new-webhook]', section).addEventListener('click', () => { form.reset(); clearErrors(form); openDialog(dialog); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const body = { url: String(data.get('url') || '').trim(), description: String(data.get('description') || '').trim(), events: data.getAll('events') };
    const local = [];
    if (!body.url) local.push({ loc: ['body', 'url'], msg: 'Enter the URL that should receive the events.' });
    if (!body.events.length) local.push({ loc: ['body', 'events'], msg: 'Pick at least one event.' });
    if (local.length) { (showErrors(form, { message: '', errors: local }) || form.elements.url).focus(); return; }
    try {
      const made = await api('/v1/webhooks', { method: 'POST', json: body });
      dialog.close();
      $('[data-secret-url]', reveal).textContent = made.url;
      $('[data-secret-value]', reveal).textContent = made.secret;  // shown once: kept nowhere else
      reveal.hidden = false;
      $('[data-copy-secret]', reveal).focus();
      list();
    } catch (err) { (showErrors(form, err) || form.elements.url).focus(); }
  });
  $('[data-copy-secret]', reveal).addEventListener('click', async () => {
    if (await copyText($('[data-secret-value]', reveal).textContent)) toast('Secret copied to the clipboard', 'success');
  });
  $('[data-dismiss-secret]', reveal).addEventListener('click', () => { $('[data-secret-value]', reveal).textContent = ''; reveal.hidden = true; });

  list();
}
