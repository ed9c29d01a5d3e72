// Where to go after signing in: only a path on this origin, never another site.
// Browsers read "/\host" as "//host" and drop tabs/newlines, so those are refused too; the
// final check resolves the URL the way the browser will and compares origins.
export function safeNext(raw, fallback = '/') {
  const next = String(raw || '');
  if (!next.startsWith('/') || next[1] === '/' || next[1] === '\\') return fallback;
  if (/[\\\u0000-\u001f\u007f]/.test(next)) return fallback;
  try {
    const url = new URL(next, location.origin);
    if (url.origin !== location.origin) return fallback;
    return url.pathname + url.search + url.hash;
  } catch {
    return fallback;
  }
}

export function nextFromQuery(fallback = '/') {
  return safeNext(new URLSearchParams(location.search).get('next'), fallback);
}
