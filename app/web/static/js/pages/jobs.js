import { api } from '../api.js';
import { $, $$, ACTIVE, can, emptyState, h } from '../dom.js';
import { jobRow } from '../jobs_view.js';
import { confirmDialog, toast } from '../ui.js';

const box = $('[data-jobs]');
const ENDED = new Set(['succeeded', 'finalized', 'failed', 'cancelled']);
let status = '';
let timer = null;

async function load() {
  clearTimeout(timer);
  try {
    const page = await api(`/v1/jobs?limit=100${status ? `&status=${status}` : ''}`);
    if (!page.items.length) {
      box.replaceChildren(emptyState(status ? 'No jobs here' : 'No training jobs yet',
        status ? 'Nothing matches this filter right now.' : 'Pick a dataset and a base model; a first run on the defaults takes minutes to set up.',
        !status && can('jobs:write') ? h('a', { class: 'btn btn-primary', href: '/jobs/new' }, 'Create your first job') : null));
    } else {
      box.replaceChildren(h('ul', { class: 'job-list card' }, page.items.map(row)));
    }
    // Live: poll while anything is still moving.
    const live = page.items.some((j) => ACTIVE.has(j.status));
    timer = setTimeout(load, live ? 1500 : 10000);
  } catch (err) {
    box.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
    timer = setTimeout(load, 10000);
  }
}

// A job that has ended can be deleted from the list (DELETE /v1/jobs/{id}).
function row(job) {
  const li = jobRow(job);
  if (can('jobs:write') && ENDED.has(job.status)) {
    li.querySelector('.job-badges').append(h('button', { class: 'btn btn-danger-ghost btn-sm row-delete', type: 'button',
      'data-delete-job': job.id, 'aria-label': `Delete ${job.name}`, onclick: () => removeJob(job) }, 'Delete'));
  }
  return li;
}

async function removeJob(job) {
  const body = job.status === 'finalized'
    ? 'Its logs, loss curve and remaining files are deleted. Models you finalized from it stay in your library.'
    : job.status === 'succeeded' || job.status === 'cancelled'
      ? 'Its checkpoints and validation images are deleted too, and no model is kept. To keep a step, finalize it first.'
      : 'Its logs and any files it wrote are deleted.';
  if (!await confirmDialog({ title: `Delete “${job.name}”?`, body: `${body} This cannot be undone.`, confirmText: 'Delete job', danger: true })) return;
  try {
    await api(`/v1/jobs/${job.id}`, { method: 'DELETE' });
    toast(`“${job.name}” deleted`, 'success');
    load();
  } catch (err) { toast(err.message, 'error'); }
}

$$('[data-status]').forEach((b) => b.addEventListener('click', () => {
  status = b.dataset.status;
  $$('[data-status]').forEach((x) => { x.classList.toggle('active', x === b); x.setAttribute('aria-pressed', String(x === b)); });
  load();
}));
document.addEventListener('visibilitychange', () => { if (!document.hidden) load(); });
load();
