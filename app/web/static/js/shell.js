// The app shell: mobile navigation, org switcher, sign out.
import { api, replacingSession } from './api.js';
import { $ } from './dom.js';
import { toast } from './ui.js';

const toggle = $('[data-nav-toggle]');
const sidebar = $('#sidebar');
if (toggle && sidebar) {
  const set = (open) => {
    sidebar.classList.toggle('open', open);
    toggle.setAttribute('aria-expanded', String(open));
    toggle.setAttribute('aria-label', open ? 'Close navigation' : 'Open navigation');
  };
  toggle.addEventListener('click', () => set(!sidebar.classList.contains('open')));
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && sidebar.classList.contains('open')) { set(false); toggle.focus(); }
  });
}

const switcher = $('[data-org-switcher]');
if (switcher) {
  switcher.addEventListener('change', async () => {
    replacingSession();
    try {
      await api('/v1/auth/switch-org', { method: 'POST', json: { org_id: switcher.value } });
      location.assign('/');
    } catch (err) {
      toast(err.message, 'error');
    }
  });
}

const signOut = $('[data-sign-out]');
if (signOut) {
  signOut.addEventListener('click', async () => {
    replacingSession();
    try { await api('/v1/auth/logout', { method: 'POST' }); } catch { /* signed out anyway */ }
    location.assign('/login');
  });
}
