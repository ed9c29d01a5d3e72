import { api, idempotencyKey } from '../api.js';
import { renderLossChart } from '../chart.js';
import { $, $$, ACTIVE, fmtBytes, fmtDate, fmtDuration, fmtNumber, h, setProgress, statusBadge, TYPE_LABEL } from '../dom.js';
import { clearErrors, confirmDialog, openDialog, showErrors, toast } from '../ui.js';
import { etaText, phaseText } from '../jobs_view.js';
import { ValidationGrid } from '../valgrid.js';

const root = $('[data-job-page]');
const id = root.dataset.jobId;
const canWrite = root.dataset.canWrite === 'true';
const canFinalize = root.dataset.canFinalize === 'true';
let job = null;
let checkpoints = [];
let selected = [];
let source = null;

const grid = new ValidationGrid($('[data-val-grid]'), $('[data-lightbox]'), {
  selectable: canFinalize,
  onSelect: (steps) => { selected = steps; syncFinalizeBar(); },
});

const finalizable = () => job && (job.status === 'succeeded' || (job.status === 'cancelled' && checkpoints.some((c) => c.files.length)));

function syncFinalizeBar() {
  const bar = $('[data-finalize-bar]');
  bar.hidden = !(canFinalize && finalizable());
  $('[data-selected-text]').textContent = selected.length
    ? `${selected.length} step${selected.length === 1 ? '' : 's'} selected: ${selected.join(', ')}` : 'Tick the steps to keep';
  $('[data-finalize]').disabled = selected.length === 0;
}

function renderJob() {
  const p = job.progress;
  document.title = `${job.name} · Atelier`;
  $('[data-job-name]').textContent = job.name;
  $('[data-job-status]').replaceChildren(statusBadge(job.status));
  $('[data-job-meta]').replaceChildren(
    h('span', {}, TYPE_LABEL[job.type] || job.type), h('span', {}, job.base_model),
    h('span', {}, `${job.item_count} images`),
    job.dataset_id ? h('a', { href: `/datasets/${job.dataset_id}`, class: 'link' }, 'Dataset') : null,
    h('span', {}, `created ${fmtDate(job.created_at)}`));
  setProgress($('[data-job-bar]'), p.percent);
  $('[data-job-bar]').dataset.percent = String(p.percent);
  const kv = (k, v) => { $(`[data-kv="${k}"]`).textContent = v; };
  kv('percent', `${Math.round(p.percent)}%`);
  kv('step', `${p.step} / ${p.total_steps}`);
  kv('eta', job.status === 'queued' ? (job.queue_position ? `queued #${job.queue_position}` : 'queued') : etaText(job));
  kv('phase', ACTIVE.has(job.status) && job.status !== 'queued' ? (phaseText(p) || 'Starting') : '—');
  kv('loss', p.loss === null || p.loss === undefined ? '—' : fmtNumber(p.loss));
  kv('speed', p.images_per_second ? `${p.images_per_second.toFixed(2)} img/s` : '—');
  kv('gpu', fmtDuration(Math.max(job.gpu_seconds || 0, p.gpu_seconds || 0)));
  $('[data-live-indicator]').textContent = ACTIVE.has(job.status) ? '● Live' : job.finished_at ? `Finished ${fmtDate(job.finished_at)}` : '';
  const err = $('[data-job-error]');
  err.hidden = !job.error;
  err.textContent = job.error ? `This job failed: ${job.error}` : '';
  const c = job.config || {};
  $('[data-job-setup]').replaceChildren(...[
    ['Method', TYPE_LABEL[job.type]], ['Template', job.template || 'None'], ['Trigger', c.caption_prefix || c.placeholder_token || '—'],
    ['Learning rate', c.learning_rate], ['Resolution', c.resolution], ['Batch size', c.train_batch_size],
    ['Checkpoint every', c.save_every_n_steps ? `${c.save_every_n_steps} steps` : '—'],
    ['Prompts', (c.validation_prompts || []).length],
  ].map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v === undefined || v === null ? '—' : String(v)))));
  $('[data-job-config]').textContent = JSON.stringify(c, null, 2);
  const cancel = $('[data-job-cancel]');
  if (cancel) cancel.hidden = !['queued', 'running'].includes(job.status);
  const retry = $('[data-job-retry]');
  if (retry) retry.hidden = !['failed', 'cancelled'].includes(job.status);
  syncFinalizeBar();
}

async function loadJob() {
  try {
    job = await api(`/v1/jobs/${id}`);
    renderJob();
  } catch (err) {
    if (err.status === 404) {
      root.replaceChildren(h('div', { class: 'empty card' }, h('h1', {}, 'Job not found'),
        h('p', { class: 'muted' }, 'It may belong to another organization.'), h('a', { class: 'btn btn-secondary', href: '/jobs' }, 'All jobs')));
    }
    throw err;
  }
}

async function loadCheckpoints() {
  checkpoints = await api(`/v1/jobs/${id}/checkpoints`);
  if (job.status === 'finalized') {
    const models = (await api('/v1/models?limit=200')).items.filter((m) => m.job_id === id);
    $('[data-val-help]').replaceChildren('Finalized: the kept steps are in the ',
      h('a', { href: '/models', class: 'link' }, 'model library'), ` (${models.map((m) => `step ${m.step}`).join(', ') || 'none'}). Other checkpoints were deleted.`);
    if (!checkpoints.length) {
      $('[data-val-grid]').replaceChildren(h('div', { class: 'model-mini-grid' }, models.map((m) => h('a', { class: 'model-mini card', href: '/models' },
        m.preview_images[0] ? h('img', { src: m.preview_images[0].url, alt: '' }) : null, h('strong', {}, m.name), h('span', { class: 'small muted' }, fmtBytes(m.bytes))))));
      return;
    }
  }
  grid.render(checkpoints, { allowSelect: finalizable() });
}

let metricsTimer = 0;
async function loadMetrics() {
  const now = Date.now();
  if (now - metricsTimer < 1500) return;
  metricsTimer = now;
  renderLossChart($('[data-loss-chart]'), await api(`/v1/jobs/${id}/metrics`));
}

async function loadLogs() {
  const text = await api(`/v1/jobs/${id}/logs`);
  const pre = $('[data-logs]');
  const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 20;
  pre.textContent = text || 'No log lines yet.';
  if (atBottom) pre.scrollTop = pre.scrollHeight;
}

async function refreshAll() {
  await loadJob();
  await Promise.allSettled([loadCheckpoints(), loadMetrics(), loadLogs()]);
}

// Live updates: Server-Sent Events, with polling as the fallback.
function live() {
  if (!ACTIVE.has(job.status) || source) return;
  source = new EventSource(`/v1/jobs/${id}/events`);
  source.addEventListener('progress', (e) => {
    const d = JSON.parse(e.data);
    // Phase n/N and GPU time come with every progress event, so a live job looks live.
    job.progress = { ...job.progress, ...d, percent: d.total_steps ? Math.round((1000 * d.step) / d.total_steps) / 10 : 0 };
    if (d.gpu_seconds !== undefined) job.gpu_seconds = d.gpu_seconds;
    renderJob();
    loadMetrics();
  });
  const reloadGrid = () => loadCheckpoints().catch(() => {});
  source.addEventListener('checkpoint', reloadGrid);
  source.addEventListener('validation', reloadGrid);
  source.addEventListener('status', async (e) => {
    const d = JSON.parse(e.data);
    const ended = !ACTIVE.has(d.status);
    if (ended && source) { source.close(); source = null; } // or EventSource reconnects
    if (ended) metricsTimer = 0;
    await refreshAll().catch(() => {});
    if (ended) {
      if (d.status === 'succeeded') toast('Training finished. Compare the steps and finalize the ones you like.', 'success', { timeout: 7000 });
      if (d.status === 'failed') toast('Training failed. See the logs for details.', 'error');
    }
  });
  source.onerror = () => {
    if (source && source.readyState === EventSource.CLOSED) { source = null; setTimeout(poll, 3000); }
  };
}

async function poll() {
  await refreshAll().catch(() => {});
  if (ACTIVE.has(job.status)) { if (!source) live(); if (!source) setTimeout(poll, 3000); }
}

setInterval(() => { if (job && ACTIVE.has(job.status) && $('[data-logs-details]').open) loadLogs().catch(() => {}); }, 3000);
$('[data-logs-details]').addEventListener('toggle', () => loadLogs().catch(() => {}));

// --- actions -----------------------------------------------------------------------------

if (canWrite) {
  $('[data-job-cancel]').addEventListener('click', async () => {
    if (!await confirmDialog({ title: 'Cancel this job?', body: 'Training stops within seconds. Checkpoints already saved are kept and can still be finalized.', confirmText: 'Cancel job', cancelText: 'Keep training', danger: true })) return;
    try { job = await api(`/v1/jobs/${id}/cancel`, { method: 'POST' }); renderJob(); toast('Cancelling…'); } catch (err) { toast(err.message, 'error'); }
  });
  $('[data-job-retry]').addEventListener('click', async () => {
    try { const next = await api(`/v1/jobs/${id}/retry`, { method: 'POST' }); location.assign(`/jobs/${next.id}`); } catch (err) { toast(err.message, 'error'); }
  });
}

const finDialog = $('[data-finalize-dialog]');
$('[data-finalize]').addEventListener('click', () => {
  const kept = checkpoints.filter((c) => selected.includes(c.step));
  const dropped = checkpoints.filter((c) => c.files.length && !selected.includes(c.step));
  const images = checkpoints.filter((c) => !selected.includes(c.step)).reduce((n, c) => n + c.validation_images.length, 0);
  $('[data-finalize-summary]', finDialog).replaceChildren(
    h('div', { class: 'fin-block keep' }, h('h3', { class: 'subhead' }, `Kept — ${kept.length} model${kept.length === 1 ? '' : 's'} in your library`),
      h('p', { class: 'small muted' }, 'Name each model: names are unique in your library, and downloads are named after them.'),
      h('ul', { class: 'fin-names' }, kept.map((c) => h('li', { 'data-fin-keep': c.step },
        h('div', { class: 'field', 'data-field': `name-${c.step}` },
          h('label', { class: 'field-label', for: `fin-name-${c.step}` }, `Step ${c.step} (${fmtBytes(c.bytes)}, with its validation images as previews)`),
          h('input', { class: 'input', id: `fin-name-${c.step}`, name: `name-${c.step}`, 'data-fin-name': c.step, maxlength: '200', value: `${job.name} · step ${c.step}`, 'aria-describedby': `fin-err-${c.step}` }),
          h('p', { class: 'field-error', id: `fin-err-${c.step}`, 'data-error-for': `name-${c.step}` })))))),
    h('div', { class: 'fin-block drop' }, h('h3', { class: 'subhead' }, 'Deleted for good'),
      h('ul', {},
        dropped.length ? h('li', { 'data-fin-drop': '' }, `Checkpoints at step${dropped.length === 1 ? '' : 's'} ${dropped.map((c) => c.step).join(', ')} (${fmtBytes(dropped.reduce((n, c) => n + c.bytes, 0))})`) : h('li', {}, 'No other checkpoints'),
        h('li', {}, `${images} other validation image${images === 1 ? '' : 's'}, including the step-0 baseline`),
        h('li', {}, 'The saved training state (the job cannot be resumed)'))),
    h('p', { class: 'small muted' }, 'This frees storage on your account and cannot be undone.'));
  clearErrors($('[data-finalize-form]', finDialog));
  openDialog(finDialog);
  $('[data-fin-name]', finDialog)?.focus();
});

// The typed names, by step; a blank or repeated name is caught here, before anything is deleted.
function finalizeNames(form) {
  const names = {};
  const errors = [];
  const seen = new Map();
  for (const input of $$('[data-fin-name]', form)) {
    const step = Number(input.dataset.finName);
    const name = input.value.trim();
    if (!name) errors.push({ loc: [`name-${step}`], msg: 'Give this model a name.' });
    else if (seen.has(name)) errors.push({ loc: [`name-${step}`], msg: `Step ${seen.get(name)} already has this name; each model needs its own.` });
    else seen.set(name, step);
    names[step] = name;
  }
  return { names, errors };
}

// A 409 names the taken names: put the message beside each field that holds one.
function placeNameErrors(form, err, names) {
  const taken = new Set(err.body?.taken_names || []);
  const errors = Object.entries(names).filter(([, n]) => taken.has(n))
    .map(([step]) => ({ loc: [`name-${step}`], msg: 'A model with this name is already in your library. Choose another name.' }));
  return errors.length ? { message: '', errors } : err;
}
$('[data-finalize-form]', finDialog).addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.currentTarget;
  clearErrors(form);
  const { names, errors } = finalizeNames(form);
  if (errors.length) { showErrors(form, { message: '', errors }, (loc) => loc[0])?.focus(); return; }
  const button = $('[data-finalize-confirm]', finDialog);
  button.disabled = true;
  button.textContent = 'Finalizing…';
  try {
    const res = await api(`/v1/jobs/${id}/finalize`, { method: 'POST', json: { steps: selected, names }, headers: { 'Idempotency-Key': idempotencyKey() } });
    finDialog.close();
    toast(`${res.models.length} model${res.models.length === 1 ? '' : 's'} added to your library`, 'success');
    selected = [];
    await refreshAll();
  } catch (err) {
    showErrors(form, placeNameErrors(form, err, names), (loc) => (String(loc[0]).startsWith('name-') ? loc[0] : null))?.focus();
  } finally {
    button.disabled = false;
    button.textContent = 'Finalize and delete the rest';
  }
});

refreshAll().then(live).catch(() => {});
