// /invite/{token}: signed in as the invited email -> "Join ORG as ROLE"; an existing account
// -> sign in first and come back; a new person -> name + password, then join.
import { api, replacingSession } from '../api.js';
import { $, $$ } from '../dom.js';
import { clearErrors, showErrors } from '../ui.js';

const card = $('[data-invite]');
const token = card.dataset.token;
const signedInAs = card.dataset.signedInAs;
const acceptPath = `/v1/invitations/${encodeURIComponent(token)}/accept`;
const article = (role) => (/^[aeiou]/.test(role) ? 'an' : 'a');

function show(sel) { $(sel, card).hidden = false; }

function fail(message) {
  $('[data-invite-title]').textContent = 'This invitation cannot be used';
  $('[data-invite-lede]').textContent = '';
  const box = $('[data-invite-error]');
  box.textContent = message;
  box.hidden = false;
}

async function joined() {
  replacingSession();
  location.assign('/');
}

async function main() {
  let info;
  try {
    info = await api(`/v1/invitations/${encodeURIComponent(token)}`);
  } catch (err) { fail(err.message); return; }
  const org = info.organization.name;
  $('[data-invite-title]').textContent = `Join ${org}`;
  $('[data-invite-lede]').textContent = `You are invited to ${org} as ${article(info.role)} ${info.role}.`;
  $$('[data-invited-email]', card).forEach((el) => { el.textContent = info.email; });

  if (signedInAs && signedInAs === info.email) {
    const button = $('[data-join-button]');
    button.textContent = `Join ${org} as ${info.role}`;
    show('[data-join]');
    button.addEventListener('click', async () => {
      button.disabled = true;
      try { await api(acceptPath, { method: 'POST', json: {} }); joined(); } catch (err) { fail(err.message); }
    });
    button.focus();
  } else if (signedInAs) {
    show('[data-wrong-account]');
    $('[data-switch-account]').addEventListener('click', async () => {
      replacingSession();
      await api('/v1/auth/logout', { method: 'POST' }).catch(() => null);
      location.reload();
    });
  } else if (info.account_exists) {
    $('[data-sign-in-link]').href = `/login?next=${encodeURIComponent(location.pathname)}`;
    show('[data-sign-in-first]');
  } else {
    const form = $('[data-new-account-form]');
    $('[data-invited-email-input]', form).value = info.email;
    form.hidden = false;
    form.elements.name.focus();
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      clearErrors(form);
      const data = Object.fromEntries(new FormData(form));
      if (!String(data.name || '').trim()) {
        showErrors(form, { message: '', errors: [{ loc: ['body', 'name'], msg: 'Tell your team who you are.' }] });
        form.elements.name.focus();
        return;
      }
      const button = form.querySelector('[type=submit]');
      button.disabled = true;
      try {
        await api(acceptPath, { method: 'POST', json: { name: data.name.trim(), password: data.password } });
        joined();
      } catch (err) {
        (showErrors(form, err) || form.elements.password).focus();
        button.disabled = false;
      }
    });
  }
}

main();
