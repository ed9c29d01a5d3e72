import { api } from '../api.js';
import { $ } from '../dom.js';
import { nextFromQuery } from '../next.js';
import { clearErrors, showErrors } from '../ui.js';

const form = $('[data-login-form]');
form.addEventListener('submit', async (e) => {
  e.preventDefault();
  clearErrors(form);
  const data = Object.fromEntries(new FormData(form));
  const button = form.querySelector('[type=submit]');
  button.disabled = true;
  button.textContent = 'Signing in…';
  try {
    await api('/v1/auth/login', { method: 'POST', json: data });
    location.assign(nextFromQuery('/'));
  } catch (err) {
    if (err.status === 401) err.message = 'That email and password do not match an account.';
    if (err.status === 429) err.message = `Too many failed attempts. ${err.message}`;
    const first = showErrors(form, err);
    (first || $('#password')).focus();
    button.disabled = false;
    button.textContent = 'Sign in';
  }
});
