// The caption editor: a grid of thumbnails with editable captions, saved as you go.
// Keyboard: j/k or arrows move between images, Enter edits; in a caption Enter saves and moves
// on (Shift+Enter back), Escape stops editing.
import { api, listAll } from './api.js';
import { $, $$, emptyState, h } from './dom.js';
import { confirmDialog, toast } from './ui.js';
import { wireBulk } from './captions_bulk.js';

const SAVE_DELAY_MS = 700;
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
const TRASH = () => h('span', { class: 'trash-icon', 'aria-hidden': 'true' });

export class CaptionEditor {
  constructor(root, datasetId, { canWrite, onChange }) {
    this.root = root;
    this.datasetId = datasetId;
    this.canWrite = canWrite;
    this.onChange = onChange || (() => {});
    this.grid = $('[data-caption-grid]', root);
    this.emptyBox = $('[data-caption-empty]', root);
    this.items = [];
    this.filter = 'all';
    this.query = '';
    this.selected = new Set();
    this.cards = new Map();
    this.wire();
  }

  async load() {
    const items = await listAll(`/v1/datasets/${this.datasetId}/items?order=asc`);
    this.items = items.sort((a, b) => collator.compare(a.filename, b.filename));
    this.render();
  }

  visible() {
    const q = this.query.toLowerCase();
    return this.items.filter((it) => (this.filter === 'all' || !it.caption)
      && (!q || it.filename.toLowerCase().includes(q) || (it.caption || '').toLowerCase().includes(q)));
  }

  counts() {
    $('[data-count-all]', this.root).textContent = this.items.length;
    $('[data-count-uncaptioned]', this.root).textContent = this.items.filter((i) => !i.caption).length;
    this.updateBulkLabel();
  }

  render() {
    this.cards.clear();
    const shown = this.visible();
    this.grid.replaceChildren(...shown.map((it, i) => this.card(it, i === 0)));
    this.counts();
    this.emptyBox.hidden = shown.length > 0;
    if (!shown.length) {
      this.emptyBox.replaceChildren(this.items.length
        ? emptyState('Every image has a caption', this.filter === 'uncaptioned' ? 'Nothing left to caption. Nice work.' : 'No image matches your search.')
        : emptyState('No images yet', this.canWrite ? 'Drop a folder of images above to get started.' : 'Nobody has uploaded images to this dataset yet.'));
    }
  }

  card(item, first) {
    const id = `cap-${item.id}`;
    const textarea = h('textarea', { class: 'input caption-input', id, rows: 3, maxlength: 10000,
      readonly: !this.canWrite, placeholder: this.canWrite ? 'Describe the image…' : 'No caption', 'data-caption': '' });
    textarea.value = item.caption || '';
    const state = h('span', { class: 'save-state small', 'aria-live': 'polite' }, item.caption ? '' : 'Uncaptioned');
    const card = h('div', { class: `cap-card${item.caption ? '' : ' uncaptioned'}`, role: 'listitem', tabindex: first ? 0 : -1,
      'data-item': item.id, 'aria-label': item.filename },
    h('div', { class: 'thumb' },
      h('img', { src: item.thumbnail_url || item.url, alt: item.caption || item.filename, loading: 'lazy', width: 256, height: 256 }),
      this.canWrite ? h('label', { class: 'thumb-check' }, h('input', { type: 'checkbox', 'data-select': '', 'aria-label': `Select ${item.filename}`, checked: this.selected.has(item.id), tabindex: -1 })) : null),
    h('div', { class: 'cap-meta' }, h('span', { class: 'cap-name', title: item.filename }, item.filename),
      h('span', { class: 'small muted' }, `${item.width}×${item.height}`)),
    h('label', { class: 'sr-only', for: id }, `Caption for ${item.filename}`),
    textarea,
    h('div', { class: 'cap-foot' }, state,
      this.canWrite ? h('button', { class: 'icon-btn danger', type: 'button', 'data-delete-item': '', 'aria-label': `Delete ${item.filename}`, title: 'Delete image', tabindex: -1 }, TRASH()) : null));
    this.cards.set(item.id, { card, textarea, state, item, timer: null, saving: null });
    return card;
  }

  // --- saving ------------------------------------------------------------------------------

  schedule(entry) {
    clearTimeout(entry.timer);
    entry.state.textContent = 'Editing…';
    entry.timer = setTimeout(() => this.save(entry), SAVE_DELAY_MS);
  }

  async save(entry) {
    clearTimeout(entry.timer);
    const value = entry.textarea.value.trim();
    if (value === (entry.item.caption || '')) { if (entry.state.textContent === 'Editing…') entry.state.textContent = ''; return; }
    entry.state.textContent = 'Saving…';
    entry.card.dataset.saving = '1';
    try {
      const saved = await api(`/v1/datasets/${this.datasetId}/items/${entry.item.id}`, { method: 'PATCH', json: { caption: value || null } });
      Object.assign(entry.item, saved);
      entry.state.textContent = 'Saved ✓';
      entry.card.classList.toggle('uncaptioned', !saved.caption);
      entry.card.dataset.saved = '1';
      if (this.onCaptionSaved) this.onCaptionSaved();
      this.counts();
      this.onChange();
    } catch (err) {
      entry.state.textContent = `Not saved: ${err.message}`;
      entry.card.classList.add('save-error');
    } finally {
      delete entry.card.dataset.saving;
    }
  }

  // --- keyboard ----------------------------------------------------------------------------

  focusCard(card, edit = false) {
    if (!card) return;
    $$('.cap-card[tabindex="0"]', this.grid).forEach((c) => c.setAttribute('tabindex', '-1'));
    card.setAttribute('tabindex', '0');
    if (edit) { const ta = $('[data-caption]', card); ta.focus(); ta.setSelectionRange(ta.value.length, ta.value.length); } else card.focus();
    card.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  }

  neighbour(card, delta) {
    const cards = $$('.cap-card', this.grid);
    const i = cards.indexOf(card);
    return cards[Math.max(0, Math.min(cards.length - 1, i + delta))];
  }

  columns() {
    const cards = $$('.cap-card', this.grid);
    if (!cards.length) return 1;
    const top = cards[0].offsetTop;
    const n = cards.findIndex((c) => c.offsetTop !== top);
    return n === -1 ? cards.length : n;
  }

  onCardKey(e, card) {
    const moves = { j: 1, k: -1, ArrowRight: 1, ArrowLeft: -1, ArrowDown: this.columns(), ArrowUp: -this.columns() };
    if (e.key in moves) { e.preventDefault(); this.focusCard(this.neighbour(card, moves[e.key])); } else if (e.key === 'Home') { e.preventDefault(); this.focusCard($('.cap-card', this.grid)); } else if (e.key === 'End') { e.preventDefault(); this.focusCard($$('.cap-card', this.grid).pop()); } else if (e.key === 'Enter' || e.key === 'e') { e.preventDefault(); this.focusCard(card, true); } else if (e.key === 'x' && this.canWrite) { const box = $('[data-select]', card); box.checked = !box.checked; box.dispatchEvent(new Event('change', { bubbles: true })); }
  }

  onCaptionKey(e, card) {
    const entry = this.cards.get(card.dataset.item);
    if (e.key === 'Enter' && !e.isComposing && !e.ctrlKey && !e.metaKey) {
      e.preventDefault();
      this.save(entry);
      const next = this.neighbour(card, e.shiftKey ? -1 : 1);
      this.focusCard(next, true);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      this.save(entry);
      this.focusCard(card);
    }
  }

  // --- events ------------------------------------------------------------------------------

  wire() {
    this.grid.addEventListener('keydown', (e) => {
      const card = e.target.closest('.cap-card');
      if (!card) return;
      if (e.target.matches('[data-caption]')) this.onCaptionKey(e, card);
      else if (e.target === card) this.onCardKey(e, card);
    });
    this.grid.addEventListener('input', (e) => {
      if (!e.target.matches('[data-caption]')) return;
      this.schedule(this.cards.get(e.target.closest('.cap-card').dataset.item));
    });
    this.grid.addEventListener('focusout', (e) => {
      if (e.target.matches('[data-caption]') && this.canWrite) this.save(this.cards.get(e.target.closest('.cap-card').dataset.item));
    });
    this.grid.addEventListener('focusin', (e) => {
      const card = e.target.closest('.cap-card');
      if (card) { $$('.cap-card[tabindex="0"]', this.grid).forEach((c) => c !== card && c.setAttribute('tabindex', '-1')); card.setAttribute('tabindex', '0'); }
    });
    this.grid.addEventListener('change', (e) => {
      if (!e.target.matches('[data-select]')) return;
      const id = e.target.closest('.cap-card').dataset.item;
      if (e.target.checked) this.selected.add(id); else this.selected.delete(id);
      e.target.closest('.cap-card').classList.toggle('selected', e.target.checked);
      this.updateBulkLabel();
    });
    this.grid.addEventListener('click', (e) => {
      const del = e.target.closest('[data-delete-item]');
      if (del) this.deleteItem(this.cards.get(del.closest('.cap-card').dataset.item));
    });
    $$('[data-filter]', this.root).forEach((b) => b.addEventListener('click', () => {
      this.filter = b.dataset.filter;
      $$('[data-filter]', this.root).forEach((x) => { x.classList.toggle('active', x === b); x.setAttribute('aria-pressed', String(x === b)); });
      this.render();
    }));
    let t = null;
    $('[data-caption-search]', this.root).addEventListener('input', (e) => {
      clearTimeout(t); t = setTimeout(() => { this.query = e.target.value.trim(); this.render(); }, 150);
    });
    wireBulk(this);
  }

  async deleteItem(entry) {
    const ok = await confirmDialog({ title: 'Delete this image?', body: `“${entry.item.filename}” and its caption are removed from the dataset. Jobs already started keep their copy.`, confirmText: 'Delete image', danger: true });
    if (!ok) return;
    try {
      await api(`/v1/datasets/${this.datasetId}/items/${entry.item.id}`, { method: 'DELETE' });
      this.items = this.items.filter((i) => i.id !== entry.item.id);
      this.selected.delete(entry.item.id);
      this.render();
      this.onChange();
      toast('Image deleted', 'success');
    } catch (err) { toast(err.message, 'error'); }
  }

  // --- bulk operations ---------------------------------------------------------------------

  targetIds() {
    if (this.selected.size) return [...this.selected];
    if (this.filter === 'all' && !this.query) return null; // every item
    return this.visible().map((i) => i.id);
  }

  updateBulkLabel() {
    const button = $('[data-bulk-apply]', this.root);
    if (!button) return;
    const ids = this.targetIds();
    const n = ids === null ? this.items.length : ids.length;
    button.textContent = this.selected.size ? `Apply to ${n} selected` : `Apply to all ${n}`;
    button.disabled = n === 0;
    const all = $('[data-select-all]', this.root);
    const shown = this.visible();
    all.checked = shown.length > 0 && shown.every((i) => this.selected.has(i.id));
    if (this.onTargets) this.onTargets();
  }
}
