import { api } from '../api.js';
import { $, fmtAgo, fmtBytes, h } from '../dom.js';
import { CaptionEditor } from '../captions.js';
import { SuggestionPanel } from '../suggestions.js';
import { clearErrors, confirmDialog, openDialog, showErrors, toast } from '../ui.js';
import { Uploader, wireDropzone } from '../upload.js';

const root = $('[data-dataset-page]');
const id = root.dataset.datasetId;
const canWrite = root.dataset.canWrite === 'true';
let current = null;

async function header() {
  try {
    const d = await api(`/v1/datasets/${id}`);
    current = d;
    document.title = `${d.name} · Atelier`;
    $('[data-ds-name]').textContent = d.name;
    $('[data-ds-desc]').textContent = d.description || '';
    const pct = d.item_count ? Math.round((100 * d.captioned_count) / d.item_count) : 0;
    $('[data-ds-meta]').replaceChildren(
      h('span', { 'data-ds-count': d.item_count }, `${d.item_count} images`),
      h('span', {}, `${d.captioned_count} captioned (${pct}%)`),
      h('span', {}, fmtBytes(d.total_bytes)),
      h('span', {}, `updated ${fmtAgo(d.updated_at)}`));
    $('[data-ds-export]').href = `/v1/datasets/${id}/export`;
    const train = $('[data-ds-train]');
    if (train) train.href = `/jobs/new?dataset=${encodeURIComponent(id)}`;
    return d;
  } catch (err) {
    if (err.status === 404) {
      root.replaceChildren(h('div', { class: 'empty card' }, h('h1', {}, 'Dataset not found'),
        h('p', { class: 'muted' }, 'It may have been deleted, or it belongs to another organization.'),
        h('a', { class: 'btn btn-secondary', href: '/datasets' }, 'Back to datasets')));
    } else toast(err.message, 'error');
    return null;
  }
}

const editor = new CaptionEditor(root, id, { canWrite, onChange: () => { header(); suggestions.syncFromEditor(); } });
const suggestions = new SuggestionPanel(root, id, {
  canWrite, editor, onAccepted: async () => { await Promise.all([header(), editor.load()]); suggestions.syncFromEditor(); },
});

if (canWrite) {
  const uploader = new Uploader(root, id, {
    onDone: async ({ added, rejected }) => {
      toast(`${added} image${added === 1 ? '' : 's'} added${rejected ? `, ${rejected} not added` : ''}`, rejected && !added ? 'error' : 'success');
      await Promise.all([header(), editor.load()]);
      suggestions.syncFromEditor();
    },
  });
  wireDropzone(root, uploader);
  $('[data-ds-delete]').addEventListener('click', async () => {
    const name = $('[data-ds-name]').textContent;
    const ok = await confirmDialog({ title: `Delete “${name}”?`, body: 'Every image and caption in it is deleted. Jobs already trained on it keep their frozen copy.', confirmText: 'Delete dataset', danger: true });
    if (!ok) return;
    try {
      await api(`/v1/datasets/${id}`, { method: 'DELETE' });
      location.assign('/datasets');
    } catch (err) { toast(err.message, 'error'); }
  });
}

// Rename and describe: the dialog starts from what the server holds now.
const dsDialog = $('[data-ds-dialog]');
if (dsDialog) {
  const form = $('[data-ds-form]', dsDialog);
  $('[data-ds-edit]').addEventListener('click', () => {
    clearErrors(form);
    form.elements.name.value = current ? current.name : '';
    form.elements.description.value = current ? current.description || '' : '';
    openDialog(dsDialog);
  });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { name: form.elements.name.value.trim(), description: form.elements.description.value.trim() };
    if (!body.name) { showErrors(form, { message: '', errors: [{ loc: ['body', 'name'], msg: 'A dataset needs a name.' }] }); form.elements.name.focus(); return; }
    try {
      await api(`/v1/datasets/${id}`, { method: 'PATCH', json: body });
      dsDialog.close();
      toast('Dataset details saved', 'success');
      await header();
    } catch (err) { (showErrors(form, err) || form.elements.name).focus(); }
  });
}

header().then(async (d) => {
  if (!d) return;
  await editor.load();
  suggestions.syncFromEditor();
  await suggestions.init();
});
