// A hand-written SVG line chart for the loss curve: raw points, an EMA-smoothed line, axes,
// and a crosshair that reads out the step and loss under the pointer (or arrow keys).
import { fmtNumber, h, s } from './dom.js';

const W = 640; const H = 240;
const PAD = { l: 52, r: 16, t: 12, b: 30 };

function ema(values, alpha = 0.3) {
  const out = []; let acc = null;
  for (const v of values) { acc = acc === null ? v : alpha * v + (1 - alpha) * acc; out.push(acc); }
  return out;
}

function ticks(min, max, n = 4) {
  if (min === max) return [min];
  const step = (max - min) / n;
  return Array.from({ length: n + 1 }, (_, i) => min + i * step);
}

export function renderLossChart(box, metrics) {
  const steps = metrics.steps || []; const loss = metrics.loss || [];
  if (!steps.length) { box.replaceChildren(h('p', { class: 'muted small' }, 'No loss recorded yet.')); return; }
  const smooth = ema(loss, steps.length > 50 ? 0.1 : 0.35);
  const xMin = Math.min(...steps); const xMax = Math.max(...steps, xMin + 1);
  let yMin = Math.min(...loss); let yMax = Math.max(...loss);
  if (yMin === yMax) { yMin -= 0.5; yMax += 0.5; }
  const padY = (yMax - yMin) * 0.08; yMin = Math.max(0, yMin - padY); yMax += padY;
  const x = (v) => PAD.l + ((v - xMin) / (xMax - xMin)) * (W - PAD.l - PAD.r);
  const y = (v) => PAD.t + (1 - (v - yMin) / (yMax - yMin)) * (H - PAD.t - PAD.b);
  const line = (vals) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(steps[i]).toFixed(1)},${y(v).toFixed(1)}`).join('');
  const decimals = Math.min(6, Math.max(0, Math.ceil(-Math.log10((yMax - yMin) / 4)) + 1));
  const grid = ticks(yMin, yMax).map((v) => s('g', {},
    s('line', { x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v), class: 'grid' }),
    s('text', { x: PAD.l - 8, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, v.toFixed(decimals))));
  const xt = [...new Set(ticks(xMin, xMax, Math.min(5, xMax - xMin)).map(Math.round))].map((v) => s('text', { x: x(v), y: H - 8, 'text-anchor': 'middle', class: 'tick' }, v));
  const cross = s('line', { class: 'cross', y1: PAD.t, y2: H - PAD.b, visibility: 'hidden' });
  const dot = s('circle', { class: 'dot', r: 4, visibility: 'hidden' });
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'loss-svg', tabindex: 0, 'aria-label': `Loss from step ${xMin} to ${xMax}; last ${fmtNumber(loss[loss.length - 1])}` },
    ...grid, ...xt,
    s('text', { x: PAD.l - 8, y: H - 8, 'text-anchor': 'end', class: 'tick axis-label' }, 'step'),
    steps.length > 1 ? s('path', { d: line(loss), class: 'raw' }) : null,
    s('path', { d: line(smooth), class: 'smooth' }),
    steps.length === 1 ? s('circle', { cx: x(steps[0]), cy: y(loss[0]), r: 3, class: 'dot-static' }) : null,
    cross, dot);
  const readout = h('div', { class: 'chart-readout small', 'aria-live': 'polite' }, `Last: step ${steps[steps.length - 1]} · loss ${fmtNumber(loss[loss.length - 1])}`);
  let idx = steps.length - 1;
  const show = (i) => {
    idx = Math.max(0, Math.min(steps.length - 1, i));
    cross.setAttribute('x1', x(steps[idx])); cross.setAttribute('x2', x(steps[idx]));
    dot.setAttribute('cx', x(steps[idx])); dot.setAttribute('cy', y(loss[idx]));
    cross.setAttribute('visibility', 'visible'); dot.setAttribute('visibility', 'visible');
    readout.textContent = `Step ${steps[idx]} · loss ${fmtNumber(loss[idx])} · smoothed ${fmtNumber(smooth[idx])}`;
  };
  svg.addEventListener('pointermove', (e) => {
    const r = svg.getBoundingClientRect();
    const sx = ((e.clientX - r.left) / r.width) * W;
    const target = xMin + ((sx - PAD.l) / (W - PAD.l - PAD.r)) * (xMax - xMin);
    let best = 0;
    steps.forEach((st, i) => { if (Math.abs(st - target) < Math.abs(steps[best] - target)) best = i; });
    show(best);
  });
  svg.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowLeft') { e.preventDefault(); show(idx - 1); }
    if (e.key === 'ArrowRight') { e.preventDefault(); show(idx + 1); }
  });
  box.replaceChildren(svg, readout);
}
