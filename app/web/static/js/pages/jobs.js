import { api } from '../api.js';
import { $, $$, ACTIVE, can, emptyState, h } from '../dom.js';
import { jobRow } from '../jobs_view.js';

const box = $('[data-jobs]');
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
      box.replaceChildren(h('ul', { class: 'job-list card' }, page.items.map((j) => jobRow(j))));
    }
    // Live: poll while anything is still moving.
    const live = page.items.some((j) => ACTIVE.has(j.status));
    timer = setTimeout(load, live ? 1500 : 10000);
  } catch (err) {
    box.replaceChildren(h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
    timer = setTimeout(load, 10000);
  }
}

$$('[data-status]').forEach((b) => b.addEventListener('click', () => {
  status = b.dataset.status;
  $$('[data-status]').forEach((x) => { x.classList.toggle('active', x === b); x.setAttribute('aria-pressed', String(x === b)); });
  load();
}));
document.addEventListener('visibilitychange', () => { if (!document.hidden) load(); });
load();
