// Same-origin JSON API client: cookie session + X-CSRF-Token on unsafe methods.

export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.title)) || `Request failed (${status})`;
    super(typeof detail === 'string' ? detail : JSON.stringify(detail));
    this.status = status;
    this.body = body || {};
    this.errors = Array.isArray(this.body.errors) ? this.body.errors : [];
  }
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)atelier_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
let leaving = false;
export function replacingSession() { leaving = true; }

export function authHeaders(method = 'GET') {
  return SAFE.has(method.toUpperCase()) ? {} : { 'X-CSRF-Token': csrfToken() };
}

async function parse(res) {
  const type = res.headers.get('content-type') || '';
  if (res.status === 204) return null;
  if (type.includes('json')) return res.json();
  return res.text();
}

export async function api(path, { method = 'GET', json, body, headers = {}, signal } = {}) {
  const init = { method, credentials: 'same-origin', signal,
    headers: { Accept: 'application/json, text/plain', ...authHeaders(method), ...headers } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  } else if (body !== undefined) {
    init.body = body;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { detail: 'Cannot reach the server. Check your connection and try again.' });
  }
  const data = await parse(res).catch(() => null);
  // A session that ended sends the user to sign in, except while this page is deliberately
  // replacing it (org switch, sign out): requests still in flight then see a 401 too.
  if (res.status === 401 && !path.startsWith('/v1/auth/') && !leaving) {
    const next = encodeURIComponent(location.pathname + location.search);
    location.assign(`/login?next=${next}`);
  }
  if (!res.ok) throw new ApiError(res.status, typeof data === 'object' ? data : { detail: data });
  return data;
}

// Every page of a cursor-paginated list.
export async function listAll(path, { max = 5000 } = {}) {
  const out = [];
  let cursor = null;
  const sep = path.includes('?') ? '&' : '?';
  do {
    const page = await api(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}

export function idempotencyKey() {
  return (crypto.randomUUID && crypto.randomUUID()) || `${Date.now()}-${Math.random()}`;
}
