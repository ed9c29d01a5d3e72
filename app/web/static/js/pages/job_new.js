import { api, idempotencyKey } from '../api.js';
import { $, $$, fmtBytes, h } from '../dom.js';
import { clearErrors, showErrors } from '../ui.js';

const form = $('[data-job-form]');
const NUMERIC = new Set(['learning_rate', 'max_train_steps', 'save_every_n_steps', 'validate_every_n_steps']);
let templates = [];
let baseModels = [];
let datasets = [];

const kind = () => form.elements.kind.value;
const method = () => form.elements.method.value;

function syncKind() {
  const k = kind();
  // The method list follows the kind; keep a concept method when switching back.
  for (const opt of $$('option', form.elements.method)) opt.hidden = opt.dataset.kind !== k;
  if (form.elements.method.selectedOptions[0]?.dataset.kind !== k) form.elements.method.value = k === 'concept' ? 'lora' : 'textual_inversion';
  const m = method();
  for (const el of $$('[data-show-for]', form)) {
    const wants = el.dataset.showFor.split(' ');
    el.hidden = !(wants.includes(k) || wants.includes(m));
  }
  // Pivotal tuning trains a concept and an embedding: both fields apply.
  if (m === 'pivotal') $$('[data-show-for~="embedding"]', form).forEach((el) => { el.hidden = false; });
  syncTemplates();
}

function syncTemplates() {
  const arch = baseModels.find((b) => b.key === form.elements.base_model.value)?.architecture;
  const select = form.elements.template;
  const keep = select.value;
  const fits = templates.filter((t) => t.type === method() && (!arch || t.architecture === arch));
  select.replaceChildren(h('option', { value: '' }, 'No template (method defaults)'),
    ...fits.map((t) => h('option', { value: t.key }, t.name)));
  select.value = fits.some((t) => t.key === keep) ? keep : (fits[0]?.key || '');
  describeTemplate();
}

function describeTemplate() {
  const t = templates.find((x) => x.key === form.elements.template.value);
  $('[data-template-help]').textContent = t ? t.description : 'Method defaults, adjusted by the fields below.';
  const d = t ? t.defaults : {};
  form.elements.learning_rate.placeholder = d.learning_rate !== undefined ? `Default ${d.learning_rate}` : 'Method default';
  form.elements.max_train_steps.placeholder = d.max_train_steps !== undefined ? `Default ${d.max_train_steps}` : 'Method default';
  form.elements['advanced.resolution'].placeholder = d.resolution !== undefined ? `Default ${d.resolution}` : 'Default';
  if (form.elements['advanced.rank']) form.elements['advanced.rank'].placeholder = d.rank !== undefined ? `Default ${d.rank}` : 'Default';
  if (d.caption_prefix && !form.elements.caption_prefix.value) form.elements.caption_prefix.placeholder = `Template: ${d.caption_prefix}`;
  $('#h-max_train_steps').textContent = stepsHint(t);
  describeDefaults();
}

// Mirrors worker/training/templates.py: what the server uses when a field is left empty.
function tokenFromName() {
  const slug = form.elements.name.value.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim().split(/\s+/).join('-');
  return `<${slug.slice(0, 30).replace(/^-+|-+$/g, '') || 'concept'}>`;
}

function defaultPrompts() {
  const t = templates.find((x) => x.key === form.elements.template.value);
  const m = method();
  if (m === 'textual_inversion' || m === 'pivotal') {
    const token = form.elements.placeholder_token.value.trim() || tokenFromName();
    return (t && t.defaults.caption_templates === 'style')
      ? [`a painting in the style of ${token}`, `a landscape in the style of ${token}`]
      : [`a photo of ${token}`, `a close-up photo of ${token}`];
  }
  const prefix = form.elements.caption_prefix.value.trim() || (t && t.defaults.caption_prefix) || '';
  return prefix ? [prefix, `${prefix}, in a different setting`] : ['a photo', 'a painting'];
}

function describeDefaults() {
  const prompts = defaultPrompts();
  form.elements.validation_prompts.placeholder = `Left empty, we use:\n${prompts.join('\n')}`;
  const base = baseModels.find((b) => b.key === form.elements.base_model.value);
  if (base && base.resolution) {
    // Template sizes are written for 512 (SD 1.5) / 1024 (SDXL) and scale to the base model's.
    const t = templates.find((x) => x.key === form.elements.template.value);
    const native = { sd15: 512, sdxl: 1024 }[base.architecture] || base.resolution;
    const res = t && t.defaults.resolution ? Math.max(16, Math.floor((t.defaults.resolution * base.resolution) / native / 8) * 8) : base.resolution;
    const el = form.elements['advanced.resolution'];
    el.placeholder = `Default ${res} (base model: ${base.resolution})`;
    el.max = String(base.resolution * 2);
  }
}

// The hint follows the chosen template: it never recommends more steps than the template trains.
function stepsHint(t) {
  const steps = t && t.defaults.max_train_steps;
  if (!steps) return 'How long it trains. Left empty, the method default is used.';
  if (steps < 500) return `This template trains ${steps} steps: a quick look, not a finished model. For a keeper, use a full template.`;
  return `This template trains ${steps} steps. Fewer learns less; many more can overfit — compare the checkpoints and keep the best.`;
}

// An initial phrase longer than 8 characters is refused, never cut; say so while typing.
function checkInitialPhrase() {
  const input = form.elements.initial_phrase;
  const slot = $('[data-error-for="initial_phrase"]', form);
  const n = [...input.value.trim()].length;
  const tooLong = n > 8;
  slot.textContent = tooLong ? `At most 8 characters (this has ${n}); use one short word close to what you train, e.g. “cat”.` : '';
  input.toggleAttribute('aria-invalid', tooLong);
  input.closest('.field')?.classList.toggle('has-error', tooLong);
  return !tooLong;
}

function describeDataset() {
  const d = datasets.find((x) => x.id === form.elements.dataset_id.value);
  $('[data-dataset-help]').textContent = d ? `${d.item_count} images, ${d.captioned_count} captioned · ${fmtBytes(d.total_bytes)}` : '';
}

async function init() {
  const [ds, bases, tpls] = await Promise.all([
    api('/v1/datasets?limit=200'), api('/v1/base-models'), api('/v1/training-templates')]);
  datasets = ds.items; baseModels = bases; templates = tpls;
  const dsSelect = form.elements.dataset_id;
  dsSelect.replaceChildren(h('option', { value: '' }, datasets.length ? 'Choose a dataset…' : 'No datasets yet — create one first'),
    ...datasets.map((d) => h('option', { value: d.id, disabled: d.item_count === 0 }, `${d.name} (${d.item_count} images)`)));
  const wanted = new URLSearchParams(location.search).get('dataset');
  if (wanted && datasets.some((d) => d.id === wanted)) dsSelect.value = wanted;
  form.elements.base_model.replaceChildren(...baseModels.map((b) => h('option', { value: b.key }, `${b.name} · ${b.architecture === 'sdxl' ? 'SDXL' : 'SD 1.5'}`)));
  describeDataset();
  syncKind();
}

function numberOrNull(value) {
  if (value === '' || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : value;
}

function body() {
  const f = form.elements;
  const out = { name: f.name.value.trim(), dataset_id: f.dataset_id.value, type: method(), base_model: f.base_model.value };
  if (f.template.value) out.template = f.template.value;
  const concept = ['lora', 'dora', 'pivotal'].includes(out.type);
  const embedding = ['textual_inversion', 'pivotal'].includes(out.type);
  if (concept && f.caption_prefix.value.trim()) out.caption_prefix = f.caption_prefix.value.trim();
  if (embedding && f.initial_phrase.value.trim()) out.initial_phrase = f.initial_phrase.value.trim();
  if (embedding && f.placeholder_token.value.trim()) out.placeholder_token = f.placeholder_token.value.trim();
  for (const name of NUMERIC) { const v = numberOrNull(f[name].value); if (v !== null) out[name] = v; }
  const prompts = f.validation_prompts.value.split('\n').map((p) => p.trim()).filter(Boolean);
  if (prompts.length) out.validation_prompts = prompts;
  const advanced = {};
  for (const el of $$('[name^="advanced."]', form)) {
    if (el.closest('[hidden]')) continue;
    const v = numberOrNull(el.value);
    if (v !== null) advanced[el.name.slice('advanced.'.length)] = v;
  }
  const raw = f.advanced_json.value.trim();
  if (raw) {
    let extra;
    try { extra = JSON.parse(raw); } catch (e) { throw Object.assign(new Error('Other options is not valid JSON.'), { errors: [{ loc: ['body', 'advanced'], msg: `not valid JSON: ${e.message}` }] }); }
    if (!extra || typeof extra !== 'object' || Array.isArray(extra)) throw Object.assign(new Error('Other options must be a JSON object.'), { errors: [{ loc: ['body', 'advanced'], msg: 'must be a JSON object like {"key": value}' }] });
    Object.assign(advanced, extra);
  }
  if (Object.keys(advanced).length) out.advanced = advanced;
  return out;
}

// ["body","caption_prefix"] -> caption_prefix; ["body","advanced","rank"] -> advanced.rank when
// that field is on the form, else the JSON box ("advanced").
function locToName(loc) {
  const parts = loc.filter((p) => p !== 'body').map(String);
  if (!parts.length) return null;
  if (parts[0] === 'advanced' && parts.length > 1) {
    const name = `advanced.${parts[1]}`;
    if (form.elements[name] && !form.elements[name].closest('[hidden]')) return name;
    if (form.elements[parts[1]]) return parts[1];
    return 'advanced';
  }
  if (parts[0] === 'type') return 'method';
  return form.querySelector(`[data-error-for="${CSS.escape(parts[0])}"]`) ? parts[0] : null;
}

function report(err) {
  const first = showErrors(form, err, locToName);
  // Say which advanced field the JSON error belongs to.
  for (const e of err.errors || []) {
    const parts = (e.loc || []).filter((p) => p !== 'body').map(String);
    if (locToName(e.loc || []) === 'advanced' && parts.length > 1) {
      const slot = $('[data-error-for="advanced"]', form);
      slot.textContent = slot.textContent.replace(e.msg, `${parts.slice(1).join('.')}: ${e.msg}`);
    }
  }
  if (first && first.closest('details')) first.closest('details').open = true;
  (first || $('[data-form-error]', form)).focus();
}

function wire() {
form.addEventListener('change', (e) => {
  if (e.target.name === 'kind' || e.target.name === 'method') syncKind();
  if (e.target.name === 'base_model') syncTemplates();
  if (e.target.name === 'template') describeTemplate();
  if (e.target.name === 'dataset_id') describeDataset();
});
form.addEventListener('input', (e) => {
  if (['name', 'caption_prefix', 'placeholder_token'].includes(e.target.name)) describeDefaults();
  if (e.target.name === 'initial_phrase') checkInitialPhrase();
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const local = [];
  if (!form.elements.dataset_id.value) local.push({ loc: ['body', 'dataset_id'], msg: 'Choose a dataset.' });
  if (!form.elements.name.value.trim()) local.push({ loc: ['body', 'name'], msg: 'Name the model you are training.' });
  const phrase = form.elements.initial_phrase;
  if (!phrase.closest('[hidden]') && [...phrase.value.trim()].length > 8) local.push({ loc: ['body', 'initial_phrase'], msg: 'At most 8 characters; use one short word close to what you train, e.g. “cat”.' });
  if (local.length) { report({ message: '', errors: local }); return; }
  let payload;
  try { payload = body(); } catch (err) { report(err); return; }
  const button = $('[data-submit]', form);
  button.disabled = true;
  button.textContent = 'Starting…';
  try {
    const job = await api('/v1/jobs', { method: 'POST', json: payload, headers: { 'Idempotency-Key': idempotencyKey() } });
    location.assign(`/jobs/${job.id}`);
  } catch (err) {
    report(err);
    button.disabled = false;
    button.textContent = 'Begin training';
  }
});

}

if (form) {
  wire();
  init().catch((err) => report(err));
}
