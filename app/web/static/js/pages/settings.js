import { api, listAll } from '../api.js';
import { $, emptyState, fmtAgo, fmtBytes, fmtDate, fmtDuration, h } from '../dom.js';
import { clearErrors, confirmDialog, copyText, openDialog, showErrors, toast } from '../ui.js';
import { wireAudit } from '../settings_audit.js';
import { wireWebhooks } from '../settings_webhooks.js';

const root = $('[data-settings-page]');
const scopes = new Set(root.dataset.scopes.split(' '));
const isAdmin = root.dataset.isAdmin === 'true';
const myRole = root.dataset.role;

function meter(label, used, limit, fmt, hint) {
  const pct = limit ? Math.min(100, (100 * used) / limit) : 0;
  return h('div', { class: 'usage-item' },
    h('div', { class: 'usage-top' }, h('span', { class: 'stat-label' }, label), h('span', { class: 'small muted' }, `${Math.round(pct)}%`)),
    h('div', { class: 'stat-value' }, fmt(used), h('span', { class: 'muted of' }, ` of ${fmt(limit)}`)),
    h('div', { class: `meter${pct > 90 ? ' meter-danger' : pct > 75 ? ' meter-warn' : ''}`, role: 'meter', 'aria-label': label, 'aria-valuemin': 0, 'aria-valuemax': limit, 'aria-valuenow': used },
      h('span', { class: 'meter-fill', style: { width: `${pct}%` } })),
    hint ? h('p', { class: 'small muted' }, hint) : null);
}

async function usage() {
  const box = $('[data-usage]');
  try {
    const u = await api('/v1/usage');
    $('[data-usage-period]').textContent = `This month: ${fmtDate(u.period_start)} – ${fmtDate(u.period_end)}`;
    box.replaceChildren(
      meter('Storage', u.storage_bytes_used, u.storage_bytes_limit, fmtBytes, 'Datasets, checkpoints and models. Finalizing frees unused checkpoints.'),
      meter('Running jobs', u.running_jobs, u.max_concurrent_jobs, String, `${u.queued_jobs} queued`),
      meter('GPU time', u.gpu_seconds_this_month, u.monthly_gpu_seconds_limit, fmtDuration, 'Training time used this month.'));
  } catch (err) { box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
}

// --- API keys ------------------------------------------------------------------------------

async function keys() {
  const box = $('[data-keys]');
  if (!box) return;
  try {
    const items = await listAll('/v1/api-keys');
    if (!items.length) { box.replaceChildren(emptyState('No API keys', 'Create a key to call the API from scripts, CI or other tools.')); return; }
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Name', 'Key', 'Scopes', 'Created', 'Last used', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((k) => h('tr', { 'data-key': k.id, class: k.revoked_at ? 'revoked' : '' },
        h('td', {}, h('strong', {}, k.name)), h('td', {}, h('code', { class: 'mono small' }, `atl_${k.prefix}_…`)),
        h('td', {}, h('div', { class: 'scope-chips' }, k.scopes.map((s) => h('span', { class: 'chip chip-sm' }, s)))),
        h('td', { class: 'small' }, fmtAgo(k.created_at)), h('td', { class: 'small' }, k.last_used_at ? fmtAgo(k.last_used_at) : 'Never'),
        h('td', { class: 'right' }, k.revoked_at ? h('span', { class: 'badge status-cancelled' }, 'Revoked')
          : h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', 'data-revoke': k.id, onclick: () => revoke(k) }, 'Revoke'))))))));
  } catch (err) { box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
}

async function revoke(k) {
  const ok = await confirmDialog({ title: `Revoke “${k.name}”?`, body: 'Anything using this key stops working immediately. This cannot be undone.', confirmText: 'Revoke key', danger: true });
  if (!ok) return;
  try { await api(`/v1/api-keys/${k.id}`, { method: 'DELETE' }); toast('Key revoked', 'success'); keys(); } catch (err) { toast(err.message, 'error'); }
}

const keyDialog = $('[data-key-dialog]');
if (keyDialog) {
  const form = $('[data-key-form]', keyDialog);
  for (const box of form.querySelectorAll('input[name=scopes]')) if (!scopes.has(box.value)) { box.checked = false; box.disabled = true; }
  $('[data-new-key]').addEventListener('click', () => { form.reset(); clearErrors(form); openDialog(keyDialog); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const body = { name: String(data.get('name') || '').trim(), scopes: data.getAll('scopes') };
    if (!body.name) { showErrors(form, { message: '', errors: [{ loc: ['body', 'name'], msg: 'Name the key after what will use it.' }] }); form.elements.name.focus(); return; }
    if (!body.scopes.length) { showErrors(form, { message: '', errors: [{ loc: ['body', 'scopes'], msg: 'Pick at least one scope.' }] }); return; }
    try {
      const created = await api('/v1/api-keys', { method: 'POST', json: body });
      keyDialog.close();
      const reveal = $('[data-key-reveal]');
      $('[data-key-value]', reveal).textContent = created.key;
      reveal.hidden = false;
      $('[data-copy-key]', reveal).focus();
      keys();
    } catch (err) { (showErrors(form, err) || form.elements.name).focus(); }
  });
  $('[data-copy-key]').addEventListener('click', async () => {
    if (await copyText($('[data-key-value]').textContent)) toast('Key copied to the clipboard', 'success');
  });
  $('[data-dismiss-key]').addEventListener('click', () => { $('[data-key-value]').textContent = ''; $('[data-key-reveal]').hidden = true; });
}

// --- members -------------------------------------------------------------------------------

const ROLES = ['viewer', 'member', 'admin', 'owner'];

async function members() {
  const box = $('[data-members]');
  try {
    const items = await listAll('/v1/members?order=asc');
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Person', 'Role', 'Joined', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((m) => h('tr', { 'data-member': m.id },
        h('td', {}, h('strong', {}, m.name || m.email), m.name ? h('div', { class: 'small muted' }, m.email) : null),
        h('td', {}, isAdmin ? roleSelect(m) : h('span', { class: `badge role-${m.role}` }, m.role)),
        h('td', { class: 'small' }, fmtAgo(m.created_at)),
        h('td', { class: 'right' }, isAdmin ? h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', onclick: () => removeMember(m) }, 'Remove') : null)))))));
  } catch (err) { box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
}

function roleSelect(m) {
  const select = h('select', { class: 'select input-sm', 'aria-label': `Role of ${m.email}` },
    ROLES.filter((r) => r !== 'owner' || myRole === 'owner' || m.role === 'owner').map((r) => h('option', { value: r, selected: r === m.role }, r)));
  select.addEventListener('change', async () => {
    try { await api(`/v1/members/${m.id}`, { method: 'PATCH', json: { role: select.value } }); toast(`${m.email} is now ${select.value}`, 'success'); } catch (err) { toast(err.message, 'error'); select.value = m.role; }
  });
  return select;
}

async function removeMember(m) {
  if (!await confirmDialog({ title: `Remove ${m.email}?`, body: 'They lose access to this organization at once.', confirmText: 'Remove', danger: true })) return;
  try { await api(`/v1/members/${m.id}`, { method: 'DELETE' }); toast('Member removed', 'success'); members(); } catch (err) { toast(err.message, 'error'); }
}

// --- invitations (joining is by invitation; nobody sets another person's password) ----------

async function invitations() {
  const box = $('[data-invitations]');
  if (!box) return;
  try {
    const items = await listAll('/v1/invitations');
    if (!items.length) { box.replaceChildren(h('p', { class: 'muted small' }, 'No pending invitations.')); return; }
    box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, ['Email', 'Role', 'Invited by', 'Expires', ''].map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, items.map((i) => h('tr', { 'data-invitation': i.id },
        h('td', {}, h('strong', {}, i.email)), h('td', {}, h('span', { class: `badge role-${i.role}` }, i.role)),
        h('td', { class: 'small' }, i.invited_by.replace(/^(user|api_key):/, '')), h('td', { class: 'small' }, fmtDate(i.expires_at)),
        h('td', { class: 'right' }, h('button', { class: 'btn btn-danger-ghost btn-sm', type: 'button', onclick: () => revokeInvitation(i) }, 'Revoke'))))))));
  } catch (err) { box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message)); }
}

async function revokeInvitation(i) {
  if (!await confirmDialog({ title: `Revoke the invitation for ${i.email}?`, body: 'The link stops working at once.', confirmText: 'Revoke', danger: true })) return;
  try { await api(`/v1/invitations/${i.id}`, { method: 'DELETE' }); toast('Invitation revoked', 'success'); invitations(); } catch (err) { toast(err.message, 'error'); }
}

const memberDialog = $('[data-member-dialog]');
if (memberDialog) {
  const form = $('[data-member-form]', memberDialog);
  const reveal = $('[data-invite-reveal]');
  $('[data-new-member]').addEventListener('click', () => { form.reset(); clearErrors(form); openDialog(memberDialog); });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const data = Object.fromEntries(new FormData(form));
    try {
      const made = await api('/v1/invitations', { method: 'POST', json: { email: data.email, role: data.role } });
      memberDialog.close();
      $('[data-invite-email]', reveal).textContent = made.email;
      $('[data-invite-url]', reveal).textContent = made.url;  // shown once: not kept anywhere else
      reveal.hidden = false;
      $('[data-copy-invite]', reveal).focus();
      invitations();
    } catch (err) { (showErrors(form, err) || form.elements.email).focus(); }
  });
  $('[data-copy-invite]').addEventListener('click', async () => {
    if (await copyText($('[data-invite-url]').textContent)) toast('Invitation link copied', 'success');
  });
  $('[data-dismiss-invite]').addEventListener('click', () => { $('[data-invite-url]').textContent = ''; reveal.hidden = true; });
}

usage();
keys();
members();
invitations();
const webhooksSection = $('[data-webhooks-section]');
if (webhooksSection) wireWebhooks(webhooksSection);
const auditSection = $('[data-audit-section]');
if (auditSection) wireAudit(auditSection);
