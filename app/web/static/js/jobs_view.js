// One job as a list row: name, type, status, live progress bar.
import { fmtAgo, fmtDuration, h, progressBar, statusBadge, typeBadge } from './dom.js';

const PHASE_LABEL = {
  loading_model: 'Loading the base model',
  caching_latents: 'Caching latents',
  rendering_step0: 'Rendering step-0 images',
  training: 'Training',
  saving: 'Saving a checkpoint',
  validating: 'Rendering validation images',
};

// What a running job is doing now, with its n/N count: "Caching latents 3/12".
export function phaseText(p) {
  if (!p || !p.phase) return '';
  const label = PHASE_LABEL[p.phase] || p.phase;
  return p.phase_total ? `${label} ${p.phase_done ?? 0}/${p.phase_total}` : label;
}

// Time left: the server's smoothed estimate; "estimating…" until training steps are measured.
export function etaText(job) {
  const p = job.progress || {};
  if (job.status === 'cancelling') return 'stopping…';
  if (job.status !== 'running') return '—';
  return p.eta_seconds === null || p.eta_seconds === undefined ? 'estimating…' : fmtDuration(p.eta_seconds);
}

export function progressText(job) {
  const p = job.progress || {};
  if (job.status === 'queued') return job.queue_position ? `Queued · position ${job.queue_position}` : 'Queued';
  if (job.status === 'failed') return job.error ? `Failed: ${job.error}` : 'Failed';
  const parts = [];
  if (job.status === 'running' && p.phase && p.phase !== 'training') parts.push(phaseText(p));
  parts.push(`Step ${p.step ?? 0} of ${p.total_steps ?? '?'}`);
  if (job.status === 'running') parts.push(p.eta_seconds ? `${fmtDuration(p.eta_seconds)} left` : 'estimating time left');
  if (job.status === 'cancelling') parts.push('stopping…');
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
