// Bulk caption operations for the caption editor: a live preview of what will change (the same
// rules as app/datasets/captions.py apply_op, computed here), the server applies the operation,
// and one step of undo puts back the captions that operation changed (a plain bulk caption
// edit with the previous values, so undo needs no server-side history).
import { api } from './api.js';
import { $, h } from './dom.js';
import { confirmDialog, toast } from './ui.js';

const MAX_CAPTION_CHARS = 10000;
const MAX_BULK_ITEMS = 1000;
const PREVIEW_ROWS = 4;

function normalize(text) {
  if (text === null || text === undefined) return null;
  return text.replaceAll('\u0000', '').trim().slice(0, MAX_CAPTION_CHARS) || null;
}

// Mirrors captions.apply_op: what `op` makes of one caption.
export function applyOp(caption, { op, text = '', find = '', replace = '' }, separator = ' ') {
  if (op === 'clear') return null;
  if (op === 'replace') return find ? normalize((caption || '').split(find).join(replace)) : caption;
  if (!text) return caption;
  if (op === 'prepend') return normalize(caption ? `${text}${separator}${caption}` : text);
  return normalize(caption ? `${caption}${separator}${text}` : text);
}

export function wireBulk(editor) {
  const form = $('[data-bulk-form]', editor.root);
  if (!form) return;
  const op = $('[data-bulk-op]', form);
  const preview = $('[data-bulk-preview]', editor.root);
  const undoBar = $('[data-bulk-undo]', editor.root);
  let undo = null;  // [{ id, caption }] of the last operation's changes, before it ran
  let applied = false;

  const params = () => {
    const data = Object.fromEntries(new FormData(form));
    return { op: data.op, text: data.text || '', find: data.find || '', replace: data.replace || '' };
  };
  const targets = () => {
    const ids = editor.targetIds();
    if (ids === null) return editor.items;
    const wanted = new Set(ids);
    return editor.items.filter((i) => wanted.has(i.id));
  };
  const changes = () => {
    const p = params();
    return targets().map((it) => ({ item: it, after: applyOp(it.caption || null, p) }))
      .filter((c) => c.after !== (c.item.caption || null));
  };

  function renderPreview() {
    if (!preview) return;
    if (applied) { preview.hidden = true; return; }  // until the form changes again
    const p = params();
    const ready = p.op === 'clear' || (p.op === 'replace' ? p.find : p.text);
    if (!ready) { preview.hidden = true; return; }
    const list = changes();
    preview.hidden = false;
    preview.replaceChildren(...[
      h('p', { class: 'small', 'data-preview-count': list.length },
        list.length ? h('strong', {}, `${list.length} caption${list.length === 1 ? '' : 's'} will change`) : 'No caption would change.',
        list.length > PREVIEW_ROWS ? h('span', { class: 'muted' }, ` · first ${PREVIEW_ROWS} shown`) : null),
      list.length ? h('ul', { class: 'preview-list' }, list.slice(0, PREVIEW_ROWS).map((c) => h('li', { 'data-preview-item': c.item.id },
        h('span', { class: 'preview-name' }, c.item.filename),
        h('del', { class: 'preview-before' }, c.item.caption || '(no caption)'),
        h('ins', { class: 'preview-after' }, c.after || '(no caption)')))) : null].filter(Boolean));
  }

  const sync = () => {
    $('[data-bulk-field="text"]', form).hidden = !['prepend', 'append'].includes(op.value);
    $('[data-bulk-field="find"]', form).hidden = op.value !== 'replace';
    $('[data-bulk-field="replace"]', form).hidden = op.value !== 'replace';
    renderPreview();
  };
  op.addEventListener('change', () => { applied = false; sync(); });
  form.addEventListener('input', () => { applied = false; renderPreview(); });
  editor.onTargets = renderPreview;
  // A caption edited by hand after the operation would be overwritten by its undo: drop it.
  editor.onCaptionSaved = () => { undo = null; if (undoBar) undoBar.hidden = true; };
  sync();

  $('[data-select-all]', form).addEventListener('change', (e) => {
    for (const it of editor.visible()) { if (e.target.checked) editor.selected.add(it.id); else editor.selected.delete(it.id); }
    editor.render();
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const p = params();
    const body = { op: p.op };
    if (['prepend', 'append'].includes(p.op)) {
      if (!p.text) { toast('Type the text to add first.', 'error'); $('[data-bulk-field="text"]', form).focus(); return; }
      body.text = p.text;
    }
    if (p.op === 'replace') {
      if (!p.find) { toast('Type what to find first.', 'error'); $('[data-bulk-field="find"]', form).focus(); return; }
      body.find = p.find; body.replace = p.replace;
    }
    const ids = editor.targetIds();
    if (ids) body.item_ids = ids;
    const n = ids ? ids.length : editor.items.length;
    if (p.op === 'clear' && !await confirmDialog({ title: `Clear ${n} captions?`, body: 'The captions are removed; the images stay. You can undo this right after.', confirmText: 'Clear captions', danger: true })) return;
    const before = new Map(editor.items.map((i) => [i.id, i.caption || null]));
    const button = $('[data-bulk-apply]', form);
    button.disabled = true;
    try {
      const res = await api(`/v1/datasets/${editor.datasetId}/captions/bulk`, { method: 'POST', json: body });
      editor.selected.clear();
      applied = true;
      await editor.load();
      // Undo restores exactly what this operation changed, as the server reports it now.
      undo = editor.items.filter((i) => before.has(i.id) && before.get(i.id) !== (i.caption || null))
        .map((i) => ({ id: i.id, caption: before.get(i.id) }));
      showUndo(res.updated);
      editor.onChange();
    } catch (err) {
      toast(err.message, 'error');
    } finally { button.disabled = false; editor.updateBulkLabel(); }
  });

  function showUndo(updated) {
    const text = `Updated ${updated} caption${updated === 1 ? '' : 's'}`;
    toast(text, 'success');
    if (!undoBar) return;
    undoBar.hidden = !undo.length;
    $('[data-undo-text]', undoBar).textContent = `${text}.`;
  }

  $('[data-undo-bulk]', undoBar)?.addEventListener('click', async (e) => {
    if (!undo || !undo.length) return;
    e.target.disabled = true;
    try {
      for (let i = 0; i < undo.length; i += MAX_BULK_ITEMS) {
        await api(`/v1/datasets/${editor.datasetId}/items`, { method: 'PATCH', json: { items: undo.slice(i, i + MAX_BULK_ITEMS) } });
      }
      toast(`Restored ${undo.length} caption${undo.length === 1 ? '' : 's'}`, 'success');
      undo = null;
      undoBar.hidden = true;
      await editor.load();
      editor.onChange();
    } catch (err) { toast(`Undo failed: ${err.message}`, 'error'); } finally { e.target.disabled = false; }
  });
}
