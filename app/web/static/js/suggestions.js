// Suggested captions on the dataset page: start a caption job, follow it live (n/N, cancel),
// then review each suggestion beside the current caption. Nothing changes a caption until the
// person accepts it here; accept sends the edited text when they changed it.
import { api } from './api.js';
import { $, $$, h, setProgress } from './dom.js';
import { confirmDialog, toast } from './ui.js';

const ACTIVE = new Set(['queued', 'running', 'cancelling']);
const STATUS_TEXT = {
  queued: 'Waiting for a worker', running: 'Captioning', cancelling: 'Stopping',
  cancelled: 'Cancelled', succeeded: 'Done', failed: 'Failed',
};
const MAX_LABEL = { sentence: 'Max tokens', tags: 'Max tags' };
const MAX_DEFAULT = { sentence: 40, tags: 30 };
const CHUNK = 500;             // items per accept/discard request
const RELOAD_EVERY_MS = 1500;  // while a job runs, fetch its new suggestions at most this often
const POLL_MS = 2000;          // when the event stream is unavailable

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

// "Tiny tags captioner" needs no "(tags)" after it; a name that does not say what it writes does.
function captionerLabel(c) {
  const name = c.name || c.key;
  const noun = c.kind === 'tags' ? 'tags' : 'sentences';
  return name.toLowerCase().includes(noun.slice(0, -1)) ? name : `${name} (${noun})`;
}

// A suggestion shows whole, however long: the box grows with its text (up to a point).
function fitHeight(textarea) {
  if (!textarea.isConnected) return;
  textarea.style.height = 'auto';
  textarea.style.height = `${Math.min(textarea.scrollHeight + 2, 240)}px`;
}

export class SuggestionPanel {
  constructor(root, datasetId, { canWrite, editor, onAccepted }) {
    this.section = $('[data-suggest]', root);
    this.datasetId = datasetId;
    this.canWrite = canWrite;
    this.editor = editor;
    this.onAccepted = onAccepted || (() => {});
    this.form = $('[data-sg-form]', this.section);
    this.review = $('[data-sg-review]', this.section);
    this.list = $('[data-sg-list]', this.section);
    this.rows = new Map();  // item id -> { li, textarea, suggestion, item }
    this.captioners = [];
    this.job = null;
    this.source = null;
    this.reloadAt = 0;
    this.reloadTimer = null;
    if (this.canWrite) this.wire();
  }

  async init() {
    const work = [this.loadSuggestions()];
    if (this.canWrite) work.push(this.loadCaptioners(), this.resumeLatestJob());
    const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected');
    if (failed) this.showError(`Suggested captions are unavailable right now: ${failed.reason.message}`);
  }

  // --- starting a job ----------------------------------------------------------------------

  async loadCaptioners() {
    const select = $('[data-sg-captioner]', this.form);
    const { items } = await api('/v1/captioners');
    this.captioners = items;
    if (!items.length) {
      select.replaceChildren(h('option', { value: '' }, 'No captioner installed'));
      this.showError('No captioning model is installed yet. An operator adds one with “atelier captioners add”.');
      return;
    }
    select.replaceChildren(...items.map((c) => h('option', { value: c.key }, captionerLabel(c))));
    select.disabled = false;
    this.syncForm();
  }

  // The editor's items changed (loaded, saved by hand): counts and the "Now" column follow.
  syncFromEditor() {
    const items = this.editor.items;
    if (this.form) {
      $('[data-sg-count="all"]', this.form).textContent = items.length;
      $('[data-sg-count="uncaptioned"]', this.form).textContent = items.filter((i) => !i.caption).length;
    }
    const byId = new Map(items.map((i) => [i.id, i]));
    for (const [id, row] of this.rows) {
      const item = byId.get(id);
      if (item && (item.caption || null) !== (row.current || null)) {
        row.current = item.caption;
        $('[data-sg-current]', row.li).replaceChildren(this.currentText(item.caption));
      }
    }
  }

  syncForm() {
    const kind = this.captioners.find((c) => c.key === $('[data-sg-captioner]', this.form).value)?.kind;
    const label = $('[data-sg-max-label]', this.form);
    label.firstChild.textContent = `${MAX_LABEL[kind] || 'Max length'} `;
    $('[data-sg-max]', this.form).placeholder = MAX_DEFAULT[kind] ? String(MAX_DEFAULT[kind]) : '';
    const busy = this.job && ACTIVE.has(this.job.status);
    $('[data-sg-start]', this.form).disabled = busy || !this.captioners.length;
  }

  wire() {
    this.form.addEventListener('change', (e) => {
      if (e.target.matches('[data-sg-captioner]')) this.syncForm();
    });
    this.form.addEventListener('input', () => this.showError(null));
    this.form.addEventListener('submit', (e) => { e.preventDefault(); this.start(); });
    $('[data-sg-cancel]', this.section).addEventListener('click', () => this.cancel());
    $('[data-sg-accept-all]', this.section).addEventListener('click', () => this.acceptAll());
    $('[data-sg-discard-all]', this.section).addEventListener('click', () => this.discardAll());
    $('[data-sg-accept-prefix]', this.section).addEventListener('input', () => this.syncPrefixes());
    this.list.addEventListener('click', (e) => {
      const button = e.target.closest('[data-sg-accept], [data-sg-discard]');
      if (!button) return;
      const row = this.rows.get(button.closest('[data-sg-item]').dataset.sgItem);
      if (button.matches('[data-sg-accept]')) this.accept([row]); else this.discard([row]);
    });
    this.list.addEventListener('input', (e) => {
      if (e.target.matches('[data-sg-text]')) this.syncRow(this.rows.get(e.target.closest('[data-sg-item]').dataset.sgItem));
    });
    this.list.addEventListener('keydown', (e) => {
      if (!e.target.matches('[data-sg-text]')) return;
      const row = this.rows.get(e.target.closest('[data-sg-item]').dataset.sgItem);
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.accept([row]);
      } else if (e.key === 'Escape') {
        e.preventDefault();
        row.textarea.value = row.suggestion.text;
        this.syncRow(row);
      }
    });
  }

  async start() {
    this.showError(null);
    const data = new FormData(this.form);
    const body = { captioner: data.get('captioner'), mode: data.get('mode') || 'uncaptioned' };
    const prefix = String(data.get('prefix') || '').trim();
    if (prefix) body.prefix = prefix;
    const max = String(data.get('max_length') || '').trim();
    if (max) {
      const n = Number(max);
      if (!Number.isInteger(n) || n < 1) {
        this.showError('Max length must be a whole number, 1 or more.');
        $('[data-sg-max]', this.form).focus();
        return;
      }
      body.max_length = n;
    }
    if (!body.captioner) { this.showError('Choose a captioner first.'); return; }
    const button = $('[data-sg-start]', this.form);
    button.disabled = true;
    try {
      const job = await api(`/v1/datasets/${this.datasetId}/caption-jobs`, { method: 'POST', json: body });
      // The review's trigger word starts as the one this job will apply.
      if (prefix) $('[data-sg-accept-prefix]', this.section).value = prefix;
      this.follow(job);
    } catch (err) {
      this.showError(`Could not start: ${err.message}`);
      // Another job is already captioning this dataset: show that one's progress.
      if (err.status === 409) await this.resumeLatestJob().catch(() => {});
    } finally { this.syncForm(); }
  }

  showError(message, slot = '[data-sg-error]') {
    const box = $(slot, this.section);
    if (!box) return;
    box.hidden = !message;
    box.textContent = message || '';
  }

  // --- following a job ---------------------------------------------------------------------

  async resumeLatestJob() {
    const page = await api(`/v1/datasets/${this.datasetId}/caption-jobs?limit=1`);
    const latest = page.items[0];
    if (latest && ACTIVE.has(latest.status)) this.follow(latest);
  }

  follow(job) {
    this.job = job;
    this.renderJob();
    this.syncForm();
    if (!ACTIVE.has(job.status)) { this.finished(); return; }
    this.closeStream();
    const source = new EventSource(`/v1/caption-jobs/${job.id}/events`);
    this.source = source;
    source.addEventListener('progress', (e) => {
      const d = JSON.parse(e.data);
      const p = d.progress || d;
      this.job.progress = { done: p.done ?? this.job.progress.done, total: p.total ?? this.job.progress.total };
      if (this.job.status === 'queued') this.job.status = 'running';
      this.renderJob();
      this.reloadSoon();
    });
    source.addEventListener('status', (e) => {
      const d = JSON.parse(e.data);
      this.job.status = d.status;
      if (d.error) this.job.error = d.error;
      this.renderJob();
      if (!ACTIVE.has(d.status)) { this.closeStream(); this.refreshJob(); }
    });
    source.onerror = () => {
      // EventSource retries by itself while CONNECTING; once CLOSED, fall back to polling.
      if (source.readyState === EventSource.CLOSED && this.source === source) {
        this.source = null;
        setTimeout(() => this.refreshJob(), POLL_MS);
      }
    };
  }

  closeStream() {
    if (this.source) { this.source.close(); this.source = null; }
  }

  async refreshJob() {
    if (!this.job) return;
    try {
      const job = await api(`/v1/caption-jobs/${this.job.id}`);
      this.job = job;
      this.renderJob();
      if (!ACTIVE.has(job.status)) this.finished();
      else if (!this.source) { this.reloadSoon(); setTimeout(() => this.refreshJob(), POLL_MS); }
    } catch (err) {
      this.showError(`Lost track of the caption job: ${err.message}`);
    }
  }

  renderJob() {
    const box = $('[data-sg-progress]', this.section);
    const job = this.job;
    const { done = 0, total = 0 } = job.progress || {};
    box.hidden = false;
    box.dataset.status = job.status;
    $('[data-sg-status]', box).replaceChildren(h('span', { class: `badge status-${job.status}` },
      ACTIVE.has(job.status) && job.status !== 'queued' ? h('span', { class: 'pulse', 'aria-hidden': 'true' }) : null,
      STATUS_TEXT[job.status] || job.status));
    $('[data-sg-progress-text]', box).textContent = `${done} / ${total} ${total === 1 ? 'image' : 'images'}`;
    setProgress($('[data-sg-bar]', box), total ? (100 * done) / total : 0);
    const note = {
      queued: 'Starts when a worker is free.',
      running: 'Suggestions appear below as they are made; you can review them already.',
      cancelling: 'Finishing the current image, then stopping.',
      succeeded: 'Every suggestion is below. Nothing has changed yet.',
      cancelled: 'Stopped. Suggestions made before that are below.',
      failed: job.error ? `Captioning failed: ${job.error}` : 'Captioning failed.',
    }[job.status] || '';
    $('[data-sg-progress-note]', box).textContent = note;
    $('[data-sg-cancel]', box).hidden = !['queued', 'running'].includes(job.status);
  }

  async cancel() {
    const button = $('[data-sg-cancel]', this.section);
    button.disabled = true;
    try {
      this.job = await api(`/v1/caption-jobs/${this.job.id}/cancel`, { method: 'POST' });
      this.renderJob();
    } catch (err) {
      if (err.status === 409) this.refreshJob(); else this.showError(`Could not cancel: ${err.message}`);
    } finally { button.disabled = false; }
  }

  async finished() {
    this.syncForm();
    await this.loadSuggestions().catch((err) => this.showError(`Could not load the suggestions: ${err.message}`));
    if (this.job.status === 'succeeded') toast(`${plural(this.rows.size, 'suggestion')} ready to review`, 'success');
    if (this.job.status === 'failed') toast('Captioning failed', 'error');
  }

  reloadSoon() {
    if (this.reloadTimer) return;
    const wait = Math.max(0, this.reloadAt + RELOAD_EVERY_MS - Date.now());
    this.reloadTimer = setTimeout(() => {
      this.reloadTimer = null;
      this.reloadAt = Date.now();
      this.loadSuggestions().catch(() => {});  // the next progress event tries again
    }, wait);
  }

  // --- review ------------------------------------------------------------------------------

  async loadSuggestions() {
    const { items } = await api(`/v1/datasets/${this.datasetId}/suggestions`);
    this.renderReview(items.filter((s) => s.suggestion));
  }

  // Rows are kept by item, so reloading while a job runs never loses what someone is typing.
  renderReview(list) {
    const byId = new Map(this.editor.items.map((i) => [i.id, i]));
    const wanted = new Map(list.map((s) => [s.item_id, s]));
    for (const [id, row] of this.rows) {
      const s = wanted.get(id);
      if (!s || s.suggestion.text !== row.suggestion.text) { row.li.remove(); this.rows.delete(id); }
    }
    const prefixBox = $('[data-sg-accept-prefix]', this.section);
    const jobPrefix = list.find((s) => s.suggestion.prefix)?.suggestion.prefix;
    if (prefixBox && !prefixBox.value && jobPrefix) prefixBox.value = jobPrefix;
    const name = (s) => byId.get(s.item_id)?.filename || '';
    const sorted = list.slice().sort((a, b) => name(a).localeCompare(name(b), undefined, { numeric: true }));
    let before = null;
    for (const s of sorted) {
      let row = this.rows.get(s.item_id);
      if (!row) {
        row = this.row(s, byId.get(s.item_id));
        this.rows.set(s.item_id, row);
      } else {
        row.current = s.caption;
        $('[data-sg-current]', row.li).replaceChildren(this.currentText(s.caption));
      }
      if (before) before.after(row.li); else this.list.prepend(row.li);
      before = row.li;
    }
    this.syncPrefixes();
    this.syncReviewHead();
  }

  currentText(caption) {
    return caption ? caption : h('em', { class: 'muted' }, 'No caption yet');
  }

  row(s, item) {
    const filename = item?.filename || 'Image';
    const id = `sg-${s.item_id}`;
    const text = this.canWrite
      ? h('textarea', { class: 'input sg-text', id, rows: 2, maxlength: 10000, 'data-sg-text': '',
        'aria-describedby': `${id}-prefix` })
      : h('p', { class: 'sg-text-static', id }, s.suggestion.text);
    if (this.canWrite) text.value = s.suggestion.text;
    const li = h('li', { class: 'sg-row', 'data-sg-item': s.item_id, 'aria-label': filename },
      h('div', { class: 'sg-thumb' }, item ? h('img', { src: item.thumbnail_url || item.url, alt: '', width: 72, height: 72, loading: 'lazy' }) : null),
      h('div', { class: 'sg-name', title: filename }, filename),
      h('div', { class: 'sg-side sg-now' },
        h('span', { class: 'sg-label' }, 'Now', h('span', { class: 'sr-only' }, ` for ${filename}`)),
        h('p', { class: 'sg-current', 'data-sg-current': '' }, this.currentText(s.caption))),
      h('div', { class: 'sg-side sg-new' },
        h('div', { class: 'sg-new-head' },
          h('label', { class: 'sg-label', for: id }, 'Suggested', h('span', { class: 'sr-only' }, ` for ${filename}`)),
          h('span', { class: 'sg-prefix small', id: `${id}-prefix`, 'data-sg-prefix-note': '' })),
        text),
      this.canWrite ? h('div', { class: 'sg-actions' },
        h('button', { class: 'btn btn-primary btn-sm', type: 'button', 'data-sg-accept': '' }, 'Accept'),
        h('button', { class: 'btn btn-ghost btn-sm', type: 'button', 'data-sg-discard': '', 'aria-label': `Discard the suggestion for ${filename}` }, 'Discard')) : null);
    return { li, textarea: this.canWrite ? text : null, suggestion: s.suggestion, current: s.caption, item };
  }

  prefix() {
    return ($('[data-sg-accept-prefix]', this.section)?.value || '').trim();
  }

  edited(row) {
    return row.textarea && row.textarea.value.trim() !== row.suggestion.text;
  }

  syncRow(row) {
    const edited = this.edited(row);
    row.li.classList.toggle('edited', edited);
    const accept = $('[data-sg-accept]', row.li);
    if (accept) accept.textContent = edited ? 'Accept edit' : 'Accept';
    // Shows what accept will store, so the trigger word is never a surprise. The server's rule:
    // "PREFIX, text" unless the text already starts with the prefix (the request's, else the job's).
    const prefix = this.prefix() || row.suggestion.prefix || '';
    const text = row.textarea ? row.textarea.value.trim() : row.suggestion.text;
    const note = $('[data-sg-prefix-note]', row.li);
    const adds = Boolean(prefix) && !text.startsWith(prefix);
    note.hidden = !adds;
    note.textContent = adds ? `Saved as “${prefix}, …”` : '';
    if (row.textarea) fitHeight(row.textarea);
  }

  syncPrefixes() {
    for (const row of this.rows.values()) this.syncRow(row);
  }

  syncReviewHead() {
    const n = this.rows.size;
    this.review.hidden = n === 0;
    if (!this.canWrite) this.section.hidden = n === 0;
    $('[data-sg-review-title]', this.section).textContent = n
      ? `${plural(n, 'suggestion')} to review` : 'Review';
    const all = $('[data-sg-accept-all]', this.section);
    if (all) all.textContent = `Accept all ${n}`;
  }

  // --- accept / discard --------------------------------------------------------------------

  async accept(rows, { confirmReplace = false } = {}) {
    this.showError(null, '[data-sg-review-error]');
    const empty = rows.find((r) => this.edited(r) && !r.textarea.value.trim());
    if (empty) {
      this.showError(`The caption for ${empty.item?.filename || 'this image'} is empty. Type one, or discard the suggestion.`, '[data-sg-review-error]');
      empty.textarea.focus();
      return;
    }
    if (confirmReplace) {
      const replacing = rows.filter((r) => r.current).length;
      if (replacing && !await confirmDialog({
        title: `Accept ${plural(rows.length, 'suggestion')}?`,
        body: `${plural(replacing, 'image')} already ${replacing === 1 ? 'has a caption' : 'have captions'}; the suggestion replaces it.`,
        confirmText: 'Accept all' })) return;
    }
    const prefix = this.prefix() || null;
    const items = rows.map((r) => ({ item_id: r.li.dataset.sgItem, caption: this.edited(r) ? r.textarea.value.trim() : null }));
    const next = this.nextRow(rows);
    this.setBusy(rows, true);
    let accepted = 0;
    try {
      for (let i = 0; i < items.length; i += CHUNK) {
        const res = await api(`/v1/datasets/${this.datasetId}/suggestions/accept`, {
          method: 'POST', json: { items: items.slice(i, i + CHUNK), all: false, prefix } });
        accepted += res.accepted;
        this.drop(rows.slice(i, i + CHUNK));
      }
      toast(`Accepted ${plural(accepted, 'caption')}`, 'success');
    } catch (err) {
      this.showError(`Could not accept: ${err.message}`, '[data-sg-review-error]');
    } finally {
      this.setBusy(rows, false);
      this.afterChange(accepted ? next : null);
      if (accepted) this.onAccepted();
    }
  }

  async discard(rows) {
    this.showError(null, '[data-sg-review-error]');
    const next = this.nextRow(rows);
    this.setBusy(rows, true);
    let discarded = 0;
    try {
      for (let i = 0; i < rows.length; i += CHUNK) {
        const chunk = rows.slice(i, i + CHUNK);
        const res = await api(`/v1/datasets/${this.datasetId}/suggestions/discard`, {
          method: 'POST', json: { item_ids: chunk.map((r) => r.li.dataset.sgItem), all: false } });
        discarded += res.discarded;
        this.drop(chunk);
      }
      toast(`Discarded ${plural(discarded, 'suggestion')}; captions unchanged`, 'info');
    } catch (err) {
      this.showError(`Could not discard: ${err.message}`, '[data-sg-review-error]');
    } finally {
      this.setBusy(rows, false);
      this.afterChange(discarded ? next : null);
    }
  }

  // What is on screen is what gets accepted: every row, with its edits.
  acceptAll() { this.accept([...this.rows.values()], { confirmReplace: true }); }

  async discardAll() {
    const rows = [...this.rows.values()];
    const ok = await confirmDialog({ title: `Discard ${plural(rows.length, 'suggestion')}?`,
      body: 'The suggestions are thrown away. Every caption stays as it is now.', confirmText: 'Discard all', danger: true });
    if (ok) this.discard(rows);
  }

  nextRow(rows) {
    const gone = new Set(rows);
    const order = [...this.rows.values()];
    const last = order.indexOf(rows[rows.length - 1]);
    return order.slice(last + 1).find((r) => !gone.has(r)) || order.slice(0, last).reverse().find((r) => !gone.has(r)) || null;
  }

  drop(rows) {
    for (const r of rows) { r.li.remove(); this.rows.delete(r.li.dataset.sgItem); }
  }

  setBusy(rows, on) {
    for (const r of rows) {
      $$('button', r.li).forEach((b) => { b.disabled = on; });
      r.li.toggleAttribute('aria-busy', on);
    }
    for (const sel of ['[data-sg-accept-all]', '[data-sg-discard-all]']) {
      const b = $(sel, this.section);
      if (b) b.disabled = on;
    }
  }

  // Keyboard flow: focus moves on to the next suggestion, or back to the start button when none
  // is left. `next` is null when nothing was done (focus stays where it is).
  afterChange(next) {
    this.syncReviewHead();
    // Everything reviewed: the ended job's "nothing has changed yet" would now mislead.
    const progress = $('[data-sg-progress]', this.section);
    if (progress && !this.rows.size && this.job && ['succeeded', 'cancelled'].includes(this.job.status)) progress.hidden = true;
    if (next === null && this.rows.size) return;
    if (next && this.rows.has(next.li.dataset.sgItem)) {
      const t = next.textarea;
      t.focus();
      t.setSelectionRange(t.value.length, t.value.length);
    } else if (this.rows.size === 0 && this.form) {
      $('[data-sg-start]', this.form).focus();
    }
  }
}
