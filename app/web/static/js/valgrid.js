// The validation grid: rows are steps (step 0, the untrained baseline, first), columns are
// prompt × image. Tick steps to keep; click an image to enlarge it and compare across steps,
// one at a time or two chosen steps side by side.
import { $, $$, fmtBytes, h } from './dom.js';
import { openDialog } from './ui.js';

export class ValidationGrid {
  constructor(box, lightbox, { selectable, onSelect }) {
    this.box = box;
    this.lightbox = lightbox;
    this.selectable = selectable;
    this.onSelect = onSelect || (() => {});
    this.rows = [];
    this.columns = [];
    this.selected = new Set();
    this.current = null;
    this.compareStep = null;  // the right-hand step while comparing side by side
    this.wireLightbox();
    this.wireCompare();
  }

  render(checkpoints, { allowSelect }) {
    this.rows = [...checkpoints].sort((a, b) => a.step - b.step);
    const cols = new Map();
    for (const row of this.rows) for (const img of row.validation_images) {
      cols.set(`${img.prompt_index}:${img.index}`, { p: img.prompt_index, i: img.index, prompt: img.prompt });
    }
    this.columns = [...cols.values()].sort((a, b) => a.p - b.p || a.i - b.i);
    const keepable = new Set(this.rows.filter((r) => r.files.length).map((r) => r.step));
    for (const step of [...this.selected]) if (!keepable.has(step)) this.selected.delete(step);
    if (!this.rows.length) {
      this.box.replaceChildren(h('p', { class: 'muted small' }, 'Validation images appear here as training runs.'));
      return;
    }
    const prompts = [];
    for (const c of this.columns) {
      const last = prompts[prompts.length - 1];
      if (last && last.p === c.p) last.n += 1; else prompts.push({ p: c.p, prompt: c.prompt, n: 1 });
    }
    const showSelect = this.selectable && allowSelect;
    const head = h('thead', {},
      h('tr', {}, h('th', { scope: 'col', class: 'step-col' }, 'Step'),
        ...prompts.map((p) => h('th', { scope: 'colgroup', colspan: p.n, class: 'prompt-col', title: p.prompt },
          h('span', { class: 'prompt-text' }, p.prompt || `Prompt ${p.p + 1}`)))));
    const body = h('tbody', {}, this.rows.map((row) => {
      const imgs = new Map(row.validation_images.map((v) => [`${v.prompt_index}:${v.index}`, v]));
      const canKeep = showSelect && row.files.length > 0;
      const label = row.step === 0 ? 'Step 0 · before training' : `Step ${row.step}`;
      return h('tr', { 'data-step': row.step, class: this.selected.has(row.step) ? 'kept' : '' },
        h('th', { scope: 'row', class: 'step-col' },
          canKeep ? h('label', { class: 'check keep' },
            h('input', { type: 'checkbox', 'data-keep': row.step, checked: this.selected.has(row.step) }),
            h('span', {}, label)) : h('span', { class: 'step-label' }, label),
          row.files.length ? h('span', { class: 'small muted step-size' }, fmtBytes(row.bytes)) : null),
        ...this.columns.map((c) => {
          const img = imgs.get(`${c.p}:${c.i}`);
          return h('td', {}, img ? h('button', { type: 'button', class: 'val-cell', 'data-cell': `${row.step}:${c.p}:${c.i}`,
            'aria-label': `Enlarge step ${row.step}, prompt ${c.p + 1}, image ${c.i + 1}` },
          h('img', { src: img.url, alt: `Step ${row.step}: ${img.prompt}`, loading: 'lazy' })) : h('span', { class: 'val-missing muted small' }, '—'));
        }));
    }));
    this.box.replaceChildren(h('table', { class: 'val-table' }, head, body));
    $$('[data-keep]', this.box).forEach((box) => box.addEventListener('change', () => {
      const step = Number(box.dataset.keep);
      if (box.checked) this.selected.add(step); else this.selected.delete(step);
      box.closest('tr').classList.toggle('kept', box.checked);
      this.onSelect([...this.selected].sort((a, b) => a - b));
    }));
    $$('[data-cell]', this.box).forEach((b) => b.addEventListener('click', () => {
      const [step, p, i] = b.dataset.cell.split(':').map(Number);
      this.open(step, p, i);
    }));
    this.onSelect([...this.selected].sort((a, b) => a - b));
  }

  image(step, p, i) {
    const row = this.rows.find((r) => r.step === step);
    return row && row.validation_images.find((v) => v.prompt_index === p && v.index === i);
  }

  open(step, p, i) {
    this.current = { step, p, i };
    this.paint();
    if (!this.lightbox.open) openDialog(this.lightbox);
  }

  paint() {
    const { step, p, i } = this.current;
    const img = this.image(step, p, i);
    if (!img) return;
    $('[data-lb-title]', this.lightbox).textContent = `Step ${step}${step === 0 ? ' (before training)' : ''} · prompt ${p + 1}, image ${i + 1}`;
    const big = $('[data-lb-img]', this.lightbox);
    big.src = img.url;
    big.alt = `Step ${step}: ${img.prompt}`;
    $('[data-lb-caption]', this.lightbox).textContent = `“${img.prompt}” · seed ${img.seed}`;
    this.paintPair();
    const strip = $('[data-lb-strip]', this.lightbox);
    strip.replaceChildren(...this.rows.map((row) => {
      const v = row.validation_images.find((x) => x.prompt_index === p && x.index === i);
      if (!v) return null;
      return h('button', { type: 'button', class: `strip-item${row.step === step ? ' current' : ''}`, 'aria-pressed': String(row.step === step),
        onclick: () => this.open(row.step, p, i) },
      h('img', { src: v.url, alt: '' }), h('span', { class: 'small' }, `Step ${row.step}`));
    }));
  }

  move(dStep, dCol) {
    if (!this.current) return;
    const stepIdx = this.rows.findIndex((r) => r.step === this.current.step);
    const colIdx = this.columns.findIndex((c) => c.p === this.current.p && c.i === this.current.i);
    const row = this.rows[Math.max(0, Math.min(this.rows.length - 1, stepIdx + dStep))];
    const col = this.columns[(colIdx + dCol + this.columns.length) % this.columns.length];
    this.open(row.step, col.p, col.i);
  }

  // --- two steps side by side ---------------------------------------------------------------

  wireCompare() {
    this.compareBtn = h('button', { type: 'button', class: 'btn btn-secondary btn-sm', 'data-lb-compare': '', 'aria-pressed': 'false',
      onclick: () => this.toggleCompare() }, 'Side by side');
    const close = $('.lb-head [data-close]', this.lightbox);
    const tools = h('div', { class: 'lb-tools' }, this.compareBtn);
    close.before(tools);
    tools.append(close);
    this.pair = h('div', { class: 'lb-pair', 'data-lb-pair': '', hidden: true });
    $('.lb-figure', this.lightbox).after(this.pair);
    this.lightbox.addEventListener('close', () => { this.compareStep = null; });
  }

  toggleCompare() {
    if (this.compareStep === null) {
      const others = this.rows.filter((r) => r.step !== this.current.step && this.image(r.step, this.current.p, this.current.i));
      this.compareStep = others.length ? others[others.length - 1].step : this.current.step;
    } else this.compareStep = null;
    this.paint();
  }

  paintPair() {
    const comparing = this.compareStep !== null;
    this.compareBtn.setAttribute('aria-pressed', String(comparing));
    this.compareBtn.textContent = comparing ? 'One at a time' : 'Side by side';
    $('.lb-figure', this.lightbox).hidden = comparing;
    this.pair.hidden = !comparing;
    if (!comparing) { this.pair.replaceChildren(); return; }
    const { step, p, i } = this.current;
    $('[data-lb-title]', this.lightbox).textContent = `Step ${step} and step ${this.compareStep} · prompt ${p + 1}, image ${i + 1}`;
    this.pair.replaceChildren(
      this.side('left', 'Left step', step, (s) => this.open(s, p, i)),
      this.side('right', 'Right step', this.compareStep, (s) => { this.compareStep = s; this.paint(); }));
  }

  side(key, label, step, pick) {
    const { p, i } = this.current;
    const img = this.image(step, p, i);
    const id = `lb-side-${key}`;
    const select = h('select', { class: 'select input-sm', id },
      this.rows.filter((r) => this.image(r.step, p, i)).map((r) => h('option', { value: r.step, selected: r.step === step },
        r.step === 0 ? 'Step 0 · before training' : `Step ${r.step}`)));
    select.addEventListener('change', () => pick(Number(select.value)));
    return h('figure', { class: 'lb-side', 'data-lb-side': key, 'data-step': step },
      h('label', { class: 'field-label small', for: id }, label), select,
      img ? h('img', { src: img.url, alt: `Step ${step}: ${img.prompt}` }) : h('p', { class: 'muted small' }, 'No image at this step'));
  }

  wireLightbox() {
    this.lightbox.addEventListener('keydown', (e) => {
      if (e.target.closest('select')) return;  // arrows there pick a step
      const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (moves[e.key]) { e.preventDefault(); this.move(...moves[e.key]); }
    });
  }
}
