// Both reset pages: ask for a link (/reset-password) and set the password (/reset-password/{token}).
import { api } from '../api.js';
import { $ } from '../dom.js';
import { clearErrors, showErrors } from '../ui.js';

const requestForm = $('[data-reset-request-form]');
if (requestForm) {
  requestForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(requestForm);
    const email = String(new FormData(requestForm).get('email') || '').trim();
    if (!email) { showErrors(requestForm, { message: '', errors: [{ loc: ['body', 'email'], msg: 'Enter your email.' }] }); return; }
    const button = requestForm.querySelector('[type=submit]');
    button.disabled = true;
    try {
      const answer = await api('/v1/auth/password-reset', { method: 'POST', json: { email } });
      requestForm.hidden = true;
      const sent = $('[data-reset-sent]');
      sent.textContent = answer.detail;
      sent.hidden = false;
    } catch (err) {
      (showErrors(requestForm, err) || requestForm.elements.email).focus();
      button.disabled = false;
    }
  });
}

const setForm = $('[data-reset-set-form]');
if (setForm) {
  setForm.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(setForm);
    const data = new FormData(setForm);
    const password = String(data.get('password') || '');
    if (password !== String(data.get('confirm') || '')) {
      showErrors(setForm, { message: '', errors: [{ loc: ['body', 'confirm'], msg: 'The two passwords differ.' }] });
      setForm.elements.confirm.focus();
      return;
    }
    const button = setForm.querySelector('[type=submit]');
    button.disabled = true;
    try {
      await api(`/v1/auth/password-reset/${encodeURIComponent(setForm.dataset.token)}`, { method: 'POST', json: { password } });
      setForm.hidden = true;
      $('[data-reset-done]').hidden = false;
      $('[data-reset-done] a').focus();
    } catch (err) {
      (showErrors(setForm, err) || setForm.elements.password).focus();
      button.disabled = false;
    }
  });
}
