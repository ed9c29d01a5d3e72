import { api } from '../api.js';
import { $, can, emptyState, fmtAgo, fmtBytes, h } from '../dom.js';
import { clearErrors, openDialog, showErrors, toast } from '../ui.js';

const box = $('[data-datasets]');
const dialog = $('[data-create-dialog]');

function card(d) {
  const pct = d.item_count ? Math.round((100 * d.captioned_count) / d.item_count) : 0;
  return h('li', { class: 'ds-card card', 'data-dataset': d.id },
    h('a', { class: 'ds-link stretched', href: `/datasets/${d.id}` }, h('h2', { class: 'ds-name' }, d.name)),
    h('p', { class: 'muted small clamp-2' }, d.description || 'No description'),
    h('dl', { class: 'kv-inline' },
      h('div', {}, h('dt', {}, 'Images'), h('dd', { 'data-item-count': '' }, d.item_count)),
      h('div', {}, h('dt', {}, 'Captioned'), h('dd', {}, `${d.captioned_count} (${pct}%)`)),
      h('div', {}, h('dt', {}, 'Size'), h('dd', {}, fmtBytes(d.total_bytes)))),
    h('div', { class: 'meter', title: `${pct}% captioned` }, h('span', { class: 'meter-fill', style: { width: `${pct}%` } })),
    h('p', { class: 'small muted' }, `Updated ${fmtAgo(d.updated_at)}`));
}

async function load() {
  try {
    const page = await api('/v1/datasets?limit=200');
    if (!page.items.length) {
      box.replaceChildren(emptyState('No datasets yet',
        'A dataset is a folder of images (and captions) to train on. Start with 10–100 images.',
        can('datasets:write') ? h('button', { class: 'btn btn-primary', type: 'button', onclick: () => openCreate() }, 'Create your first dataset') : null));
      return;
    }
    box.replaceChildren(h('ul', { class: 'ds-grid' }, page.items.map(card)));
  } catch (err) {
    box.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
  }
}

function openCreate() {
  const form = $('[data-create-form]', dialog);
  form.reset();
  clearErrors(form);
  openDialog(dialog);
}

if (dialog) {
  $('[data-open-create]').addEventListener('click', openCreate);
  const form = $('[data-create-form]', dialog);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const data = Object.fromEntries(new FormData(form));
    if (!data.name.trim()) {
      showErrors(form, { message: '', errors: [{ loc: ['body', 'name'], msg: 'Give the dataset a name.' }] });
      $('#ds-name').focus();
      return;
    }
    try {
      const d = await api('/v1/datasets', { method: 'POST', json: data });
      dialog.close();
      toast(`Dataset “${d.name}” created`, 'success');
      location.assign(`/datasets/${d.id}`);
    } catch (err) {
      (showErrors(form, err) || $('#ds-name')).focus();
    }
  });
}
load();
