// One job as a list row: name, type, status, live progress bar.
import { fmtAgo, fmtDuration, h, progressBar, statusBadge, typeBadge } from './dom.js';

export function progressText(job) {
  const p = job.progress || {};
  if (job.status === 'queued') return job.queue_position ? `Queued · position ${job.queue_position}` : 'Queued';
  if (job.status === 'failed') return job.error ? `Failed: ${job.error}` : 'Failed';
  const parts = [`Step ${p.step ?? 0} of ${p.total_steps ?? '?'}`];
  if (job.status === 'running' && p.eta_seconds) parts.push(`${fmtDuration(p.eta_seconds)} left`);
  return parts.join(' · ');
}

export function jobRow(job, { compact = false } = {}) {
  const p = job.progress || {};
  return h('li', { class: `job-row${compact ? ' compact' : ''}`, 'data-job': job.id, 'data-status': job.status },
    h('div', { class: 'job-main' },
      h('a', { class: 'job-name stretched', href: `/jobs/${job.id}` }, job.name),
      h('div', { class: 'job-badges' }, typeBadge(job.type), statusBadge(job.status)),
      compact ? null : h('p', { class: 'small muted' }, `${job.base_model} · ${job.item_count} images · created ${fmtAgo(job.created_at)}`)),
    h('div', { class: 'job-progress' },
      h('div', { class: 'job-progress-top small' },
        h('span', { 'data-progress-text': '' }, progressText(job)),
        h('strong', { 'data-percent': '' }, `${Math.round(p.percent || 0)}%`)),
      progressBar(p.percent, `Progress of ${job.name}`)));
}
