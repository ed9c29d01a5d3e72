// Dataset uploads: drag-and-drop of files and whole folders (or the pickers), direct to
// storage through presigned URLs, then `uploads/complete` so the server verifies what arrived.
// .zip archives go through the multipart endpoint; same-name .txt files become captions.
import { api, authHeaders } from './api.js';
import { $, fmtBytes, h, setProgress } from './dom.js';

const IMAGE_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp' };
const MAX_FILE_BYTES = 50 * 1024 * 1024;
const BATCH = 100;
const PARALLEL = 4;
const IGNORED = /(^|\/)(\.[^/]*|__MACOSX|Thumbs\.db|desktop\.ini)(\/|$)/i;

const ext = (name) => (name.match(/\.([^./]+)$/) || [, ''])[1].toLowerCase();
const base = (path) => path.split('/').pop();
const stem = (path) => base(path).replace(/\.[^.]+$/, '').toLowerCase();

// --- collecting files ----------------------------------------------------------------------

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ file, path: entry.fullPath.replace(/^\//, '') || file.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) { // readEntries hands back at most ~100 entries per call
      const batch = await readEntries(reader);
      if (!batch.length) break;
      for (const child of batch) await walk(child, out);
    }
  }
}

// Must be called synchronously inside the drop handler: the DataTransfer empties afterwards.
export function snapshotDrop(dataTransfer) {
  const entries = [];
  const loose = [];
  for (const item of Array.from(dataTransfer.items || [])) {
    if (item.kind !== 'file') continue;
    const entry = item.webkitGetAsEntry ? item.webkitGetAsEntry() : null;
    if (entry) entries.push(entry);
    else { const f = item.getAsFile(); if (f) loose.push(f); }
  }
  if (!entries.length && !loose.length) loose.push(...Array.from(dataTransfer.files || []));
  return async () => {
    const out = [];
    for (const entry of entries) await walk(entry, out);
    for (const file of loose) out.push({ file, path: file.webkitRelativePath || file.name });
    return out;
  };
}

export const fromFileList = (list) => Array.from(list).map((file) => ({ file, path: file.webkitRelativePath || file.name }));

// --- the upload ----------------------------------------------------------------------------

function xhrSend(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, url);
    for (const [k, v] of Object.entries(headers || {})) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); };
    xhr.onload = () => {
      let data = null;
      try { data = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { data = null; }
      if (xhr.status >= 200 && xhr.status < 300) resolve(data);
      else reject(Object.assign(new Error((data && (data.detail || data.title)) || `storage answered ${xhr.status}`), { status: xhr.status }));
    };
    xhr.onerror = () => reject(Object.assign(new Error('network error while uploading'), { status: 0 }));
    xhr.send(body);
  });
}

// Storage refusing the file itself (not an image, too big) is final; anything else that kept
// it from landing (network, an expired or refused signature, a storage fault) is retryable:
// a retry asks for fresh presigned URLs.
const REFUSED_BY_STORAGE = new Set([400, 413, 415]);
function sendToStorage(u, file, onProgress) {
  const transferFailed = (err) => { throw Object.assign(err, { transfer: !REFUSED_BY_STORAGE.has(err.status) }); };
  if (u.method === 'PUT') return xhrSend('PUT', u.url, file, u.headers, onProgress).catch(transferFailed);
  const form = new FormData();
  for (const [k, v] of Object.entries(u.fields || {})) form.append(k, v);
  form.append('file', file);
  return xhrSend('POST', u.url, form, {}, onProgress).catch(transferFailed);
}

async function pool(tasks, n) {
  let next = 0;
  const run = async () => { while (next < tasks.length) { const i = next; next += 1; await tasks[i](); } };
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, run));
}

export class Uploader {
  constructor(root, datasetId, { onDone } = {}) {
    this.root = root;
    this.datasetId = datasetId;
    this.onDone = onDone;
    this.panel = $('[data-upload-panel]', root);
    this.list = $('[data-upload-list]', root);
    this.rejectBox = $('[data-rejections]', root);
    this.rejectList = $('[data-reject-list]', root);
    this.bar = $('[data-overall-bar]', root);
    this.text = $('[data-overall-text]', root);
    this.busy = false;
    // Transfers that failed (network, storage) can be sent again; refusals cannot.
    this.failed = [];
    this.captionFiles = [];
    this.retryButton = h('button', { class: 'btn btn-secondary btn-sm', type: 'button', 'data-retry-failed': '', hidden: true,
      onclick: () => this.retryFailed() }, 'Retry failed');
    this.text.after(this.retryButton);
  }

  retryFailed() {
    const again = [...this.failed.map(({ file, path }) => ({ file, path })), ...this.captionFiles];
    if (this.failed.length) this.start(async () => again);
  }

  reject(path, reason) {
    this.rejectedCount += 1;
    this.rejectBox.hidden = false;
    this.rejectList.append(h('li', { 'data-rejected': path }, h('strong', {}, path), h('span', { class: 'muted' }, ` — ${reason}`)));
  }

  row(path, size) {
    const bar = h('div', { class: 'progress progress-sm', role: 'progressbar', 'aria-label': `Upload of ${path}`, 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': 0 }, h('span', { class: 'progress-fill', style: { width: '0%' } }));
    const status = h('span', { class: 'upload-status small' }, 'Waiting');
    const li = h('li', { class: 'upload-row', 'data-upload-row': path },
      h('span', { class: 'upload-name', title: path }, path), h('span', { class: 'small muted' }, fmtBytes(size)), bar, status);
    this.list.append(li);
    return { li, bar, status, set: (state, label) => { li.dataset.state = state; status.textContent = label; } };
  }

  async start(collect) {
    if (this.busy) return;
    this.busy = true;
    this.panel.hidden = false;
    this.list.replaceChildren();
    this.rejectList.replaceChildren();
    this.rejectBox.hidden = true;
    this.text.textContent = 'Reading files…';
    this.rejectedCount = 0;
    this.failed = [];
    this.retryButton.hidden = true;
    this.bar.classList.remove('progress-failed');
    try {
      const files = await collect();
      await this.run(files);
    } catch (err) {
      this.text.textContent = `Upload stopped: ${err.message}`;
    } finally {
      this.busy = false;
    }
  }

  async run(files) {
    const images = []; const zips = []; const captions = new Map();
    let skipped = 0;
    for (const f of files) {
      const e = ext(f.path);
      if (IGNORED.test(f.path)) { skipped += 1; continue; }
      if (e === 'txt') { captions.set(stem(f.path), f.file); this.captionFiles.push(f); continue; }
      if (e === 'zip') { zips.push(f); continue; }
      if (!IMAGE_TYPES[e] && !Object.values(IMAGE_TYPES).includes(f.file.type)) {
        this.reject(f.path, 'not a PNG, JPEG or WebP image, a .zip or a .txt caption'); continue;
      }
      if (f.file.size > MAX_FILE_BYTES) { this.reject(f.path, `${fmtBytes(f.file.size)} is over the 50 MB limit`); continue; }
      if (f.file.size === 0) { this.reject(f.path, 'the file is empty'); continue; }
      images.push({ ...f, type: IMAGE_TYPES[e] || f.file.type, ui: null });
    }
    const all = [...images, ...zips];
    for (const f of all) f.ui = this.row(f.path, f.file.size);
    // The bar counts bytes on their way or stored; a failed transfer falls back to zero and a
    // refused file leaves the total, so the bar fills only as far as the upload really got.
    let total = all.reduce((n, f) => n + f.file.size, 0);
    const sent = new Map();
    const uploader = this;
    const stats = { added: 0, get rejected() { return uploader.rejectedCount; }, get failed() { return uploader.failed.length; } };
    const redraw = () => {
      const done = Array.from(sent.values()).reduce((a, b) => a + b, 0);
      setProgress(this.bar, total > 0 ? (100 * done) / total : 0);
      this.text.textContent = `${fmtBytes(done)} of ${fmtBytes(total)} · ${stats.added} added${stats.rejected ? ` · ${stats.rejected} not added` : ''}${stats.failed ? ` · ${stats.failed} failed` : ''}`;
    };
    const progress = (f) => (loaded, size) => {
      sent.set(f.path, Math.min(loaded, size, f.file.size));
      setProgress(f.ui.bar, (100 * loaded) / Math.max(1, size));
      redraw();
    };
    const refuse = (f, reason) => { f.ui.set('rejected', reason); sent.delete(f.path); total -= f.file.size; this.reject(f.path, reason); };
    const fail = (f, reason) => {
      f.ui.set('failed', `Failed: ${reason}`); setProgress(f.ui.bar, 0); sent.delete(f.path);
      if (!this.failed.includes(f)) this.failed.push(f);
    };
    // A thrown error with a status came from the API (an answer); anything else is a transfer
    // that did not arrive and is worth retrying.
    const retryable = (err) => err && (err.transfer ?? (!(err.status > 0) || err.status >= 500));
    const rejectRow = (f, reason, err) => (retryable(err) ? fail(f, reason) : refuse(f, reason));
    const created = [];
    redraw();
    for (let i = 0; i < images.length; i += BATCH) {
      created.push(...await this.batch(images.slice(i, i + BATCH), progress, rejectRow, stats, redraw));
    }
    for (const z of zips) created.push(...await this.zip(z, progress, rejectRow, stats, redraw));
    const captioned = captions.size && created.length ? await this.applyCaptions(created, captions) : 0;
    const tail = `${captioned ? ` · ${captioned} captions from .txt files` : ''}${skipped ? ` · ${skipped} system files skipped` : ''}`;
    if (this.failed.length) {
      redraw();
      this.bar.classList.add('progress-failed');
      this.text.textContent = `${this.failed.length} of ${all.length} upload${all.length === 1 ? '' : 's'} failed · ${stats.added} added${stats.rejected ? ` · ${stats.rejected} not added (see below)` : ''}${tail}`;
      this.retryButton.hidden = false;
    } else {
      setProgress(this.bar, 100);
      this.text.textContent = `Done · ${stats.added} added${stats.rejected ? ` · ${stats.rejected} not added (see below)` : ''}${tail}`;
    }
    if (this.onDone) this.onDone({ added: stats.added, rejected: stats.rejected, failed: this.failed.length });
  }

  async batch(group, progress, rejectRow, stats, redraw) {
    let presigned;
    try {
      presigned = await api(`/v1/datasets/${this.datasetId}/uploads`, { method: 'POST',
        json: { files: group.map((f) => ({ filename: f.path, content_type: f.type, size: f.file.size })) } });
    } catch (err) {
      group.forEach((f) => rejectRow(f, err.message, err));
      redraw();
      return [];
    }
    const reasons = new Map(presigned.rejected.map((r) => [r.filename, r.reason]));
    const queue = [...presigned.uploads];
    const jobs = [];
    for (const f of group) {
      if (queue.length && queue[0].filename === base(f.path)) {
        const u = queue.shift();
        jobs.push({ f, u });
      } else {
        rejectRow(f, reasons.get(base(f.path)) || 'refused by the server');
      }
    }
    const done = [];
    await pool(jobs.map(({ f, u }) => async () => {
      f.ui.set('uploading', 'Uploading');
      try {
        await sendToStorage(u, f.file, progress(f));
        f.ui.set('verifying', 'Verifying');
        done.push({ f, u });
      } catch (err) {
        rejectRow(f, err.message, err);
      }
      redraw();
    }), PARALLEL);
    if (!done.length) return [];
    let result;
    try {
      result = await api(`/v1/datasets/${this.datasetId}/uploads/complete`, { method: 'POST',
        json: { upload_ids: done.map((d) => d.u.upload_id) } });
    } catch (err) {
      done.forEach(({ f }) => rejectRow(f, err.message, err));
      redraw();
      return [];
    }
    return this.settle(done, result, rejectRow, stats, redraw);
  }

  settle(done, result, rejectRow, stats, redraw) {
    const createdByName = new Map();
    for (const item of result.created) {
      const list = createdByName.get(item.filename) || [];
      list.push(item); createdByName.set(item.filename, list);
    }
    const rejectedBy = new Map(result.rejected.map((r) => [r.filename, r.reason]));
    for (const { f, u } of done) {
      const hit = createdByName.get(u.filename);
      if (hit && hit.length) {
        hit.shift();
        f.ui.set('done', 'Added'); stats.added += 1; setProgress(f.ui.bar, 100);
      } else {
        rejectRow(f, rejectedBy.get(u.filename) || rejectedBy.get(u.upload_id) || 'not accepted');
      }
    }
    redraw();
    return result.created;
  }

  async zip(z, progress, rejectRow, stats, redraw) {
    const form = new FormData();
    form.append('files', z.file, base(z.path));
    z.ui.set('uploading', 'Uploading');
    try {
      const result = await xhrSend('POST', `/v1/datasets/${this.datasetId}/items`, form, authHeaders('POST'), progress(z));
      stats.added += result.created.length;
      for (const r of result.rejected) { this.reject(`${z.path} › ${r.filename}`, r.reason); }
      z.ui.set('done', `${result.created.length} added${result.rejected.length ? `, ${result.rejected.length} not` : ''}`);
      redraw();
      return result.created;
    } catch (err) {
      rejectRow(z, err.message, err);
      redraw();
      return [];
    }
  }

  async applyCaptions(created, captions) {
    const edits = [];
    for (const item of created) {
      const file = captions.get(stem(item.filename));
      if (file && !item.caption) edits.push({ id: item.id, caption: (await file.text()).trim() || null });
    }
    if (!edits.length) return 0;
    try {
      await api(`/v1/datasets/${this.datasetId}/items`, { method: 'PATCH', json: { items: edits } });
      return edits.length;
    } catch (err) {
      this.reject('captions (.txt)', err.message);
      return 0;
    }
  }
}

// Wire the drop zone and the two pickers to an Uploader.
export function wireDropzone(root, uploader) {
  const zone = $('[data-dropzone]', root);
  const fileInput = $('[data-file-input]', root);
  const folderInput = $('[data-folder-input]', root);
  let depth = 0;
  zone.addEventListener('dragenter', (e) => { e.preventDefault(); depth += 1; zone.classList.add('dragging'); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy'; });
  zone.addEventListener('dragleave', () => { depth = Math.max(0, depth - 1); if (!depth) zone.classList.remove('dragging'); });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    if (e.dataTransfer) uploader.start(snapshotDrop(e.dataTransfer));
  });
  // Dropping next to the zone must not navigate away to the image.
  window.addEventListener('dragover', (e) => e.preventDefault());
  window.addEventListener('drop', (e) => e.preventDefault());
  const pick = (input) => () => input.click();
  $('[data-pick-files]', root).addEventListener('click', (e) => { e.stopPropagation(); pick(fileInput)(); });
  $('[data-pick-folder]', root).addEventListener('click', (e) => { e.stopPropagation(); pick(folderInput)(); });
  zone.addEventListener('click', (e) => { if (e.target === zone || e.target.closest('.dropzone-title, svg')) fileInput.click(); });
  for (const input of [fileInput, folderInput]) {
    input.addEventListener('change', () => {
      const files = fromFileList(input.files);
      input.value = '';
      if (files.length) uploader.start(async () => files);
    });
  }
}
