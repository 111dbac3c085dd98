// app.js: the dashboard's state, router and actions (docs/DASHBOARD.md). The page is one
// document: every view is a URL fragment (#/endpoints, #/deliveries?status=failed, ...), so a
// link can be shared and Back works, and changing view never reloads the page. A view's data
// is fetched from hookd's API when its fragment is entered; the views (views.js) render it with
// preact, which writes every value as text (no innerHTML anywhere: an event payload or a
// response body is shown, never run).
//
// Sign-in: an API key typed in, or a portal session token read from the fragment #token=...
// (the url that POST /v1/portal-sessions answers), which is taken out of the address bar and
// the history at once. GET /v1/whoami tells what the credential may do; a read scope shows no
// button that changes anything. An admin key picks the organization it acts on.
import { h, render } from './vendor/preact.mjs';
import * as API from './api.js';
import { bind, App } from './views.js';

const FINAL = { success: 1, failed: 1 };

export const S = {
  me: null,        // GET /v1/whoami, or {kind:'admin'} before an organization is chosen
  orgs: null,      // an admin key's organizations
  route: { page: 'signin', id: null, sub: null, q: {} },
  data: null,      // the current view's data
  loading: false,
  error: null,     // an error of the current view
  flash: null,     // {kind, text}: the last action's outcome
  signinError: null,
  busy: false,     // an action is running
  secret: null,    // a secret just made (create, rotate): shown once
  confirmDelete: false,
  test: null,      // the test event being watched on the endpoint page
};

let seq = 0;       // the current view's load; a late answer of an older one is dropped
let pollTimer = null;

export function rerender() {
  render(h(App, null), document.getElementById('app'));
}

export const canWrite = () => !!S.me && S.me.scope === 'full';
export const limited = () => !!S.me && Array.isArray(S.me.webhookIds);

// ---- routing ----------------------------------------------------------------------------------

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = (path || '').split('/').filter(Boolean).map(decodeURIComponent);
  const q = Object.fromEntries(new URLSearchParams(query || ''));
  return { page: parts[0] || 'endpoints', id: parts[1] || null, sub: parts[2] || null, q };
}

export function href(page, id, q, sub) {
  let s = '#/' + page;
  if (id) s += '/' + encodeURIComponent(id);
  if (sub) s += '/' + sub;
  return s + API.qs(q);
}

// Enters a view (the flash of the action that goes there stays).
export function go(hash) {
  if (S.flash) S.flash.fresh = true;
  if (location.hash === hash) onRoute();
  else location.hash = hash;
}

function onRoute() {
  clearTimeout(pollTimer);
  S.route = parseHash();
  S.error = null;
  if (S.flash && S.flash.fresh) S.flash.fresh = false;
  else S.flash = null;
  S.secret = S.route.page === 'endpoints' && S.route.id ? S.secret : null;
  S.confirmDelete = false;
  if (!API.getCredential()) {
    S.route = { page: 'signin', id: null, q: {} };
    rerender();
    return;
  }
  if (!S.me) {
    boot();
    return;
  }
  load(true);
}

// ---- loading a view ---------------------------------------------------------------------------

const RANGES = {
  '1h': { ms: 3600e3, interval: 'minute' },
  '24h': { ms: 86400e3, interval: 'hour' },
  '7d': { ms: 7 * 86400e3, interval: 'hour' },
};

function deliveriesQuery(q) {
  const f = { status: q.status, eventType: q.eventType, webhookId: q.webhookId,
    since: q.since, until: q.until, cursor: q.cursor, limit: 20 };
  const id = (q.q || '').trim();
  if (id.startsWith('whde_')) f.deliveryId = id;
  else if (id.startsWith('whev_')) f.eventId = id;
  else if (id) f.idempotencyKey = id;
  return f;
}

async function endpointsSummary() {
  const rows = [];
  let cursor = null;
  for (let i = 0; i < 10; i++) { // up to 5,000 endpoints
    const r = await API.get('/v1/stats' + API.qs({ limit: 500, cursor }));
    rows.push(...r.data);
    if (!r.more || !r.next) break;
    cursor = r.next;
  }
  return rows;
}

async function fetchView(r) {
  const q = r.q;
  switch (r.page) {
    case 'endpoints': {
      if (r.id === 'new') return {};
      if (r.id) {
        const range = RANGES[q.range] ? q.range : '24h';
        const to = new Date();
        const from = new Date(to.getTime() - RANGES[range].ms);
        const [wh, stats, dl] = await Promise.all([
          API.get('/v1/' + encodeURIComponent(r.id)),
          API.get(`/v1/${encodeURIComponent(r.id)}/stats` + API.qs({
            from: from.toISOString(), to: to.toISOString(), interval: RANGES[range].interval })),
          API.get(`/v1/${encodeURIComponent(r.id)}/deliveries` +
            API.qs({ status: q.status, cursor: q.cursor, limit: 20 })),
        ]);
        return { wh, stats, deliveries: dl, range };
      }
      const rows = await endpointsSummary();
      return { rows, sparks: {} };
    }
    case 'deliveries': {
      if (r.id) {
        const d = await API.get('/v1/deliveries/' + encodeURIComponent(r.id));
        const wh = await API.get('/v1/' + encodeURIComponent(d.webhookId)).catch(() => null); // deleted
        return { d, wh };
      }
      const endpoints = await endpointsSummary();
      let list;
      if (limited()) { // a session limited to some webhooks reads them one by one
        const wid = q.webhookId || (endpoints[0] && endpoints[0].webhookId);
        list = wid ? await API.get(`/v1/${encodeURIComponent(wid)}/deliveries` +
          API.qs({ status: q.status, cursor: q.cursor, limit: 20 })) : { deliveries: [], next: null };
      } else {
        list = await API.get('/v1/deliveries' + API.qs(deliveriesQuery(q)));
      }
      return { endpoints, list };
    }
    case 'events': {
      if (r.id) return { ev: await API.get('/v1/events/' + encodeURIComponent(r.id)) };
      return { list: await API.get('/v1/events' + API.qs({ type: q.type, cursor: q.cursor, limit: 20 })) };
    }
    default:
      throw new API.ApiError(404, { message: 'No such page: ' + r.page });
  }
}

// Loads the current view; fresh: a new view (its data is emptied first and the heading focused).
async function load(fresh) {
  const my = ++seq;
  if (fresh) {
    S.data = null;
    S.loading = true;
  }
  rerender();
  try {
    const data = await fetchView(S.route);
    if (my !== seq) return;
    S.data = data;
    S.error = null;
  } catch (e) {
    if (my !== seq) return;
    S.error = e.message;
  }
  S.loading = false;
  rerender();
  if (fresh) focusHeading();
  if (my !== seq || !S.data) return;
  afterLoad(my);
}

function focusHeading() {
  const hd = document.querySelector('main h1');
  if (hd && document.activeElement && document.activeElement.tagName !== 'INPUT' &&
      document.activeElement.tagName !== 'SELECT') hd.focus({ preventScroll: true });
}

// What a view does once shown: the sparklines of the list; watching an open delivery.
function afterLoad(my) {
  const r = S.route;
  if (r.page === 'endpoints' && !r.id && S.data.rows) {
    const to = new Date(), from = new Date(to.getTime() - 86400e3);
    for (const row of S.data.rows.slice(0, 50)) {
      API.get(`/v1/${encodeURIComponent(row.webhookId)}/stats` +
        API.qs({ from: from.toISOString(), to: to.toISOString(), interval: 'hour' }))
        .then((st) => { if (my === seq) { S.data.sparks[row.webhookId] = st.buckets; rerender(); } })
        .catch(() => {});
    }
  }
  if (r.page === 'deliveries' && r.id && S.data.d && !FINAL[S.data.d.status]) {
    pollTimer = setTimeout(() => { if (my === seq) load(false); }, 1000);
  }
}

export function refresh() { load(false); }

// ---- sign-in ----------------------------------------------------------------------------------

async function boot() {
  S.loading = true;
  rerender();
  try {
    let me;
    try {
      me = await API.get('/v1/whoami', { quiet401: true });
    } catch (e) {
      // 422: an admin key without an organization (choose one); 404/403: the organization an
      // admin key had chosen is gone or disabled (choose again)
      if (!(e.status === 422 || (API.getOrg() && (e.status === 404 || e.status === 403)))) throw e;
      API.setOrg('');
      me = null;
    }
    if (!me || me.kind === 'admin') {
      const orgs = await API.get('/v1/organizations' + API.qs({ limit: 100 }), { org: false, quiet401: true });
      S.orgs = orgs.organizations;
      if (!API.getOrg() || !S.orgs.some((o) => o.id === API.getOrg()))
        API.setOrg(S.orgs.length ? S.orgs[0].id : '');
      me = API.getOrg() ? await API.get('/v1/whoami') : { kind: 'admin', scope: 'full', organizationId: '' };
    }
    S.me = me;
    S.signinError = null;
    S.loading = false;
    if (S.route.page === 'signin' || location.hash === '' || location.hash === '#') {
      history.replaceState(null, '', location.pathname + '#/endpoints');
    }
    S.route = parseHash();
    load(true);
  } catch (e) {
    signOut(e.status === 401 ? 'That key or session is not valid (or has expired): ' + e.message
      : e.message);
  }
}

export function signIn(ev) {
  ev.preventDefault();
  const v = new FormData(ev.target).get('credential').trim();
  if (!v) {
    S.signinError = 'Enter an API key or a portal session token.';
    rerender();
    return;
  }
  API.setCredential(v);
  API.setOrg('');
  S.me = null;
  S.orgs = null;
  if (!location.hash.startsWith('#/') || location.hash.startsWith('#/signin'))
    history.replaceState(null, '', location.pathname + '#/endpoints');
  boot();
}

export function signOut(why) {
  clearTimeout(pollTimer);
  seq++;
  API.setCredential('');
  API.setOrg('');
  S.me = null;
  S.orgs = null;
  S.data = null;
  S.loading = false;
  S.flash = null;
  S.signinError = typeof why === 'string' ? why : null;
  S.route = { page: 'signin', id: null, q: {} };
  history.replaceState(null, '', location.pathname + '#/signin');
  rerender();
  const input = document.getElementById('credential');
  if (input) input.focus();
}

export async function switchOrg(ev) {
  API.setOrg(ev.target.value);
  S.me = null;
  S.flash = null;
  history.replaceState(null, '', location.pathname + '#/endpoints');
  boot();
}

// ---- actions ----------------------------------------------------------------------------------

// The outcome of an action, shown until the next view is entered (the view an action goes to
// keeps it).
function flash(kind, text) {
  S.flash = { kind, text, fresh: false };
}

// Runs an API action: busy while it runs, its error shown as the flash.
async function act(fn) {
  if (S.busy) return;
  S.busy = true;
  S.flash = null;
  rerender();
  try {
    await fn();
  } catch (e) {
    const why = e.body && e.body.fix ? ` ${e.body.fix}` : '';
    flash('error', `${e.message}.${why}`);
  }
  S.busy = false;
  rerender();
}

function splitList(s) {
  return (s || '').split(/[\s,]+/).map((x) => x.trim()).filter(Boolean);
}

function parseJsonField(fd, name, label) {
  const t = (fd.get(name) || '').trim();
  if (!t) return null;
  try {
    return JSON.parse(t);
  } catch (e) {
    throw new Error(`${label} is not valid JSON (${e.message})`);
  }
}

// The body of create/update from the endpoint form.
function endpointBody(form) {
  const fd = new FormData(form);
  const body = {
    name: fd.get('name').trim(),
    url: fd.get('url').trim(),
    events: splitList(fd.get('events')),
    signatureSchemes: fd.getAll('signatureSchemes'),
    rateLimitEnabled: fd.get('rateLimitEnabled') === 'on',
    ordering: fd.get('ordering'),
    customHeaders: parseJsonField(fd, 'customHeaders', 'Custom headers'),
    filteringOptions: parseJsonField(fd, 'filteringOptions', 'Filtering options'),
  };
  const num = (n) => { const v = (fd.get(n) || '').trim(); return v === '' ? null : Number(v); };
  if (num('maxRequestsPerMinute') !== null) body.maxRequestsPerMinute = num('maxRequestsPerMinute');
  if (num('maxRetries') !== null) body.maxRetries = num('maxRetries');
  body.timeoutMs = num('timeoutMs');
  const sched = splitList(fd.get('retrySchedule'));
  body.retrySchedule = sched.length ? sched : null;
  if (!body.signatureSchemes.length) delete body.signatureSchemes;
  return body;
}

export function saveEndpoint(ev) {
  ev.preventDefault();
  const form = ev.target;
  const id = S.route.id === 'new' ? null : S.route.id;
  act(async () => {
    let body;
    try {
      body = endpointBody(form);
    } catch (e) {
      throw new Error(e.message);
    }
    if (id) {
      await API.patch('/v1/' + encodeURIComponent(id), body);
      flash('ok', 'Endpoint saved');
      go(href('endpoints', id));
    } else {
      const wh = await API.post('/v1', body);
      S.secret = { webhookId: wh.id, secret: wh.secret, why: 'created' };
      flash('ok', 'Endpoint created');
      go(href('endpoints', wh.id));
    }
  });
}

export function setStatus(id, status) {
  act(async () => {
    await API.patch('/v1/' + encodeURIComponent(id), { status });
    flash('ok', status === 'paused' ? 'Endpoint paused' : 'Endpoint resumed');
    await load(false);
  });
}

export function askDelete(yes) {
  S.confirmDelete = yes;
  rerender();
  const b = document.getElementById(yes ? 'confirm-delete' : 'delete');
  if (b) b.focus();
}

export function deleteEndpoint(id) {
  act(async () => {
    const r = await API.del('/v1/' + encodeURIComponent(id));
    flash('ok', `Endpoint deleted${r.failedDeliveries ? ` (${r.failedDeliveries} open deliveries ended failed)` : ''}`);
    go(href('endpoints'));
  });
}

export function rotateSecret(id) {
  act(async () => {
    const wh = await API.post(`/v1/${encodeURIComponent(id)}/rotate-secret`, {});
    S.secret = { webhookId: id, secret: wh.secret, why: 'rotated', until: wh.previousSecretExpiresAt };
    flash('ok', 'Secret rotated');
    await load(false);
  });
}

export function hideSecret() {
  S.secret = null;
  rerender();
}

// A test event of a type the endpoint subscribes to (a pattern's * made "test"); its delivery
// to this endpoint is then watched until it ends.
export function sendTest(wh) {
  act(async () => {
    const pat = (wh.events || []).find((e) => !e.startsWith('hookd')) || 'test.event';
    const type = pat === '*' ? 'dashboard.test' : pat.split('.').map((s) => (s === '*' ? 'test' : s)).join('.');
    const ev = await API.post('/v1/events', { type, data: { test: true, sentFrom: 'hookd dashboard', at: new Date().toISOString() } });
    S.test = { webhookId: wh.id, eventId: ev.id, type, status: 'sent', delivery: null };
    flash('ok', `Test event ${type} sent (${ev.deliveries} deliveries)`);
    watchTest(S.test, 0);
  });
}

function watchTest(t, n) {
  if (S.test !== t || n > 60) return;
  API.get('/v1/deliveries' + API.qs({ eventId: t.eventId, webhookId: t.webhookId, limit: 1 }))
    .then((r) => {
      if (S.test !== t) return;
      t.delivery = r.deliveries[0] || null;
      rerender();
      if (!t.delivery || !FINAL[t.delivery.status]) setTimeout(() => watchTest(t, n + 1), 1000);
    })
    .catch((e) => { t.error = e.message; rerender(); });
}

export function retryDelivery(id) {
  act(async () => {
    const r = await API.post(`/v1/deliveries/${encodeURIComponent(id)}/retry`, {});
    flash('ok', `Retry sent as a new delivery ${r.newDeliveryId}`);
    go(href('deliveries', r.newDeliveryId));
  });
}

export function recover(ev, id) {
  ev.preventDefault();
  const fd = new FormData(ev.target);
  act(async () => {
    const since = fd.get('since');
    if (!since) throw new Error('Choose the time to recover from');
    const r = await API.post(`/v1/${encodeURIComponent(id)}/recover`, { since: new Date(since).toISOString() });
    flash('ok', `${r.count} failed deliveries sent again`);
    await load(false);
  });
}

// The filter forms: their fields become the fragment's query (the first page again).
export function applyFilters(ev, page) {
  ev.preventDefault();
  const fd = new FormData(ev.target);
  const q = {};
  for (const [k, v] of fd.entries()) {
    const s = String(v).trim();
    if (!s) continue;
    q[k] = (k === 'since' || k === 'until') ? new Date(s).toISOString() : s;
  }
  if (S.route.q.range) q.range = S.route.q.range;
  go(href(page, S.route.id, q));
}

// ---- start ------------------------------------------------------------------------------------

function start() {
  bind(S, { signIn, signOut, switchOrg, saveEndpoint, setStatus, askDelete, deleteEndpoint,
    rotateSecret, hideSecret, sendTest, retryDelivery, recover, applyFilters, refresh, href,
    canWrite, limited });
  API.setUnauthorizedHandler((msg) => {
    if (S.me) signOut(`Signed out: ${msg} (the key or session has expired or was revoked).`);
  });
  // a portal session's url: #token=hkps_... (taken out of the address bar and the history)
  const m = location.hash.match(/^#token=([^&]+)/);
  if (m) {
    API.setCredential(decodeURIComponent(m[1]));
    API.setOrg('');
    history.replaceState(null, '', location.pathname + '#/endpoints');
  }
  window.addEventListener('hashchange', onRoute);
  onRoute();
}

start();
