import { api } from '../api.js';
import { $, emptyState, fmtBytes, h } from '../dom.js';
import { jobRow } from '../jobs_view.js';

async function load() {
  const [datasets, running, models, usage, recent] = await Promise.allSettled([
    api('/v1/datasets?limit=200'), api('/v1/jobs?status=running&limit=200'),
    api('/v1/models?limit=200'), api('/v1/usage'), api('/v1/jobs?limit=5'),
  ]);
  const count = (r) => (r.status === 'fulfilled' ? `${r.value.items.length}${r.value.next_cursor ? '+' : ''}` : '—');
  $('[data-stat="datasets"]').textContent = count(datasets);
  $('[data-stat="running"]').textContent = count(running);
  $('[data-stat="models"]').textContent = count(models);
  if (usage.status === 'fulfilled') {
    const u = usage.value;
    $('[data-stat="storage"]').textContent = `${fmtBytes(u.storage_bytes_used)} of ${fmtBytes(u.storage_bytes_limit)}`;
    $('[data-stat-meter]').style.width = `${Math.min(100, (100 * u.storage_bytes_used) / Math.max(1, u.storage_bytes_limit))}%`;
  }
  const box = $('[data-recent-jobs]');
  if (recent.status !== 'fulfilled') { box.replaceChildren(h('p', { class: 'muted' }, 'Jobs are not available with your access.')); return; }
  const jobs = recent.value.items;
  box.replaceChildren(jobs.length ? h('ul', { class: 'job-list compact' }, jobs.map((j) => jobRow(j, { compact: true })))
    : emptyState('No training yet', 'Create a dataset, then start your first job.', h('a', { class: 'btn btn-secondary', href: '/datasets' }, 'Go to datasets')));
}
load();
