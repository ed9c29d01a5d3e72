// Settings → Audit log: newest first, filtered by action family, actor type and date range,
// one page at a time ("Load more" follows the cursor).
import { api, listAll } from './api.js';
import { $, emptyState, fmtAgo, fmtDate, h } from './dom.js';

const PAGE = 50;

function describeTarget(e) {
  if (!e.target_type) return '—';
  return h('span', {}, e.target_type, ' ', h('code', { class: 'mono small' }, e.target_id || ''));
}

export function wireAudit(section) {
  const form = $('[data-audit-filters]', section);
  const box = $('[data-audit]', section);
  const more = $('[data-audit-more]', section);
  let cursor = null;
  let body = null;
  let people = new Map();

  // Actor ids are user or key ids; show people and keys by name where this page can see them.
  const names = Promise.all([
    listAll('/v1/members').then((ms) => ms.map((m) => [m.user_id, m.email])).catch(() => []),
    listAll('/v1/api-keys').then((ks) => ks.map((k) => [k.id, `key “${k.name}”`])).catch(() => []),
  ]).then(([a, b]) => { people = new Map([...a, ...b]); });

  function query() {
    const data = new FormData(form);
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const name of ['action', 'actor_type']) if (data.get(name)) params.set(name, String(data.get(name)));
    // Dates are the viewer's local days: from the start of "From" to the end of "Until".
    if (data.get('since')) params.set('since', new Date(`${data.get('since')}T00:00:00`).toISOString());
    if (data.get('until')) params.set('until', new Date(new Date(`${data.get('until')}T00:00:00`).getTime() + 86400000).toISOString());
    return params;
  }

  function row(e) {
    const who = e.actor_type === 'system' ? 'System' : (people.get(e.actor_id) || `${e.actor_type.replace('_', ' ')} ${e.actor_id || ''}`);
    return h('tr', { 'data-audit-event': e.id, 'data-action': e.action },
      h('td', { class: 'small', title: fmtDate(e.created_at) }, fmtAgo(e.created_at)),
      h('td', { class: 'wrap-cell' }, who),
      h('td', {}, h('code', { class: 'mono small' }, e.action)),
      h('td', { class: 'small wrap-cell' }, describeTarget(e)),
      h('td', { class: 'small muted' }, e.ip || ''));
  }

  async function load(reset) {
    if (reset) { cursor = null; body = null; }
    const params = query();
    if (cursor) params.set('cursor', cursor);
    more.disabled = true;
    try {
      const [page] = await Promise.all([api(`/v1/audit-events?${params}`), names]);
      if (!body) {
        if (!page.items.length) {
          box.replaceChildren(emptyState('No matching events', 'Try a wider date range or fewer filters.'));
          more.hidden = true;
          return;
        }
        body = h('tbody', {});
        box.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'table' },
          h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'IP'].map((c) => h('th', { scope: 'col' }, c)))), body)));
      }
      body.append(...page.items.map(row));
      cursor = page.next_cursor;
      more.hidden = !cursor;
    } catch (err) {
      box.replaceChildren(h('p', { class: 'alert alert-error' }, err.message));
      more.hidden = true;
    } finally { more.disabled = false; }
  }

  form.addEventListener('submit', (e) => { e.preventDefault(); load(true); });
  form.addEventListener('reset', () => setTimeout(() => load(true), 0));
  more.addEventListener('click', () => load(false));
  load(true);
}
