// api.js: the dashboard's only way to the server. Every call goes to hookd's own API
// (/api/webhook, same origin: the page's CSP allows nothing else) with the credential the user
// signed in with, kept in this tab's sessionStorage (never localStorage or a cookie, so it ends
// with the tab and no other site's request ever carries it). An admin key acts on the
// organization chosen in the switcher (X-Organization-Id). A 401 ends the sign-in: the caller
// is sent back to the sign-in page with the server's message.

export const BASE = '/api/webhook';
const KEY = 'hookd.credential';
const ORG = 'hookd.org';

let credential = sessionStorage.getItem(KEY) || '';
let org = sessionStorage.getItem(ORG) || '';
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

export function setCredential(c) {
  credential = c || '';
  if (credential) sessionStorage.setItem(KEY, credential);
  else sessionStorage.removeItem(KEY);
}
export function getCredential() { return credential; }
export function setOrg(o) {
  org = o || '';
  if (org) sessionStorage.setItem(ORG, org);
  else sessionStorage.removeItem(ORG);
}
export function getOrg() { return org; }
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

// Query string of the defined, non-empty values of params.
export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {}))
    if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? '?' + s : '';
}

// Calls the API; resolves with the parsed JSON answer, rejects with an ApiError.
// opts.org: false to send no X-Organization-Id (the admin routes).
export async function api(method, path, body, opts = {}) {
  const headers = { 'x-api-key': credential };
  if (org && opts.org !== false) headers['X-Organization-Id'] = org;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let res;
  try {
    res = await fetch(BASE + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store',
    });
  } catch (e) {
    throw new ApiError(0, { message: 'hookd did not answer: ' + e.message });
  }
  let data = null;
  const text = await res.text();
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = { message: text }; }
  if (res.status === 401 && !opts.quiet401) {
    onUnauthorized((data && data.message) || 'Signed out');
  }
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const get = (p, o) => api('GET', p, undefined, o);
export const post = (p, b, o) => api('POST', p, b === undefined ? {} : b, o);
export const patch = (p, b) => api('PATCH', p, b);
export const del = (p) => api('DELETE', p);
