// Toasts, dialogs, confirmations and form error display.
import { $, $$, h } from './dom.js';

export function toast(message, kind = 'info', { timeout = 4500 } = {}) {
  const box = $('[data-toasts]');
  if (!box) return;
  const el = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, message);
  box.append(el);
  setTimeout(() => { el.classList.add('leaving'); setTimeout(() => el.remove(), 300); }, timeout);
}

// Native <dialog>: Escape closes; [data-close] buttons close; focus returns to the opener.
export function openDialog(dialog) {
  const opener = document.activeElement;
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = '1';
    $$('[data-close]', dialog).forEach((b) => b.addEventListener('click', () => dialog.close('cancel')));
    dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close('cancel'); });
  }
  dialog.addEventListener('close', () => { if (opener && opener.focus) opener.focus(); }, { once: true });
  dialog.showModal();
  const first = dialog.querySelector('[autofocus], input:not([type=hidden]):not([disabled]), select, textarea, button[type=submit]');
  if (first) first.focus();
}

// A yes/no confirmation; Enter confirms, Escape cancels. Resolves true/false.
export function confirmDialog({ title, body, confirmText = 'Confirm', cancelText = 'Cancel', danger = false }) {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': 'confirm-title' },
      h('form', { method: 'dialog', class: 'dialog-body stack' },
        h('h2', { class: 'dialog-title', id: 'confirm-title' }, title),
        typeof body === 'string' ? h('p', {}, body) : body,
        h('div', { class: 'dialog-actions' },
          h('button', { class: 'btn btn-ghost', type: 'submit', value: 'cancel' }, cancelText),
          h('button', { class: `btn ${danger ? 'btn-danger' : 'btn-primary'}`, type: 'submit', value: 'ok', autofocus: true, 'data-confirm': '' }, confirmText))));
    document.body.append(dialog);
    dialog.addEventListener('close', () => { resolve(dialog.returnValue === 'ok'); dialog.remove(); });
    openDialog(dialog);
    dialog.querySelector('[data-confirm]').focus();
  });
}

// Show problem+json validation errors beside their fields. `locToName` maps an error's loc
// (e.g. ["body","advanced","rank"]) to a field name in the form; the rest go to the summary.
export function showErrors(form, err, locToName = defaultLocToName) {
  clearErrors(form);
  const summary = $('[data-form-error]', form);
  const unplaced = [];
  let firstField = null;
  for (const e of err.errors || []) {
    const name = locToName(e.loc || [], form);
    const slot = name && $(`[data-error-for="${CSS.escape(name)}"]`, form);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${e.msg}` : e.msg;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`) || slot.closest('.field')?.querySelector('input,select,textarea');
      if (input) { input.setAttribute('aria-invalid', 'true'); firstField = firstField || input; }
      slot.closest('.field')?.classList.add('has-error');
    } else {
      unplaced.push(`${(e.loc || []).filter((p) => p !== 'body').join('.')}: ${e.msg}`);
    }
  }
  if (summary) {
    const lines = [err.message, ...unplaced].filter(Boolean);
    summary.replaceChildren(h('strong', {}, (err.errors || []).length ? 'Please fix the highlighted fields.' : 'Something went wrong.'),
      ...lines.map((l) => h('div', {}, l)));
    summary.hidden = false;
  }
  return firstField;
}

export function clearErrors(form) {
  $$('[data-error-for]', form).forEach((el) => { el.textContent = ''; });
  $$('[aria-invalid]', form).forEach((el) => el.removeAttribute('aria-invalid'));
  $$('.has-error', form).forEach((el) => el.classList.remove('has-error'));
  const summary = $('[data-form-error]', form);
  if (summary) { summary.hidden = true; summary.replaceChildren(); }
}

function defaultLocToName(loc) {
  const parts = loc.filter((p) => p !== 'body');
  return parts.length ? String(parts[0]) : null;
}

export async function busy(button, fn) {
  const label = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  try { return await fn(); } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = label;
  }
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = h('textarea', { style: { position: 'fixed', opacity: '0' } }, text);
    document.body.append(ta); ta.select();
    const ok = document.execCommand('copy'); ta.remove();
    return ok;
  }
}
