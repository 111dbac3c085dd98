// views.js: the dashboard's pages as preact views (htm templates, no build step). They read the
// state of app.js and call its actions; they never build HTML from data: every value is a text
// child or an attribute, and links are made from ids by href() (encoded, always #/...).
import { h } from './vendor/preact.mjs';
import htm from './vendor/htm.mjs';
import { Chart, Sparkline } from './charts.js';

const html = htm.bind(h);
let S, A;

export function bind(state, actions) {
  S = state;
  A = actions;
}

// ---- small pieces -----------------------------------------------------------------------------

const fmtTime = (s) => {
  if (!s) return '—';
  const d = new Date(s);
  return isNaN(d) ? s : d.toLocaleString();
};
const pct = (x) => (x === null || x === undefined ? '—' : `${(x * 100).toFixed(x >= 0.999 || x === 0 ? 0 : 1)}%`);
const json = (v) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));
const localInput = (iso) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
};

const Badge = ({ status }) => html`<span class=${'badge badge-' + status}>${status}</span>`;

function Flash() {
  if (!S.flash) return null;
  return html`<p class=${'flash flash-' + S.flash.kind} role=${S.flash.kind === 'error' ? 'alert' : 'status'}>${S.flash.text}</p>`;
}

function Pager({ next, page }) {
  const q = S.route.q;
  if (!next && !q.cursor) return null;
  const first = { ...q };
  delete first.cursor;
  return html`<nav class="pager" aria-label="Pages">
    ${q.cursor ? html`<a href=${A.href(page, S.route.id, first)}>First page</a>` : null}
    ${next ? html`<a href=${A.href(page, S.route.id, { ...q, cursor: next })} rel="next">Next page</a>` : html`<span>Last page</span>`}
  </nav>`;
}

function Headers({ headers, label }) {
  if (!headers || typeof headers !== 'object' || !Object.keys(headers).length)
    return html`<p class="muted">No headers.</p>`;
  return html`<table class="kv" aria-label=${label}>
    <thead><tr><th scope="col">Header</th><th scope="col">Value</th></tr></thead>
    <tbody>${Object.entries(headers).map(([k, v]) => html`<tr><th scope="row">${k}</th><td><code>${String(v)}</code></td></tr>`)}</tbody>
  </table>`;
}

const Pre = ({ text, label }) => html`<pre class="body" tabindex="0" aria-label=${label}>${text === null || text === undefined || text === '' ? '(empty)' : json(text)}</pre>`;

// ---- sign-in ----------------------------------------------------------------------------------

function SignIn() {
  return html`<main id="main" class="signin">
    <h1 tabindex="-1">hookd dashboard</h1>
    <p>Sign in with an API key of your organization (or an admin key), or open the link of a portal
    session. The key stays in this tab only and is forgotten when the tab closes.</p>
    ${S.signinError ? html`<p class="flash flash-error" role="alert">${S.signinError}</p>` : null}
    <form onSubmit=${A.signIn} class="stack">
      <label for="credential">API key or session token</label>
      <input id="credential" name="credential" type="password" autocomplete="off" required
        spellcheck="false" />
      <button type="submit" class="primary" disabled=${S.loading}>${S.loading ? 'Signing in…' : 'Sign in'}</button>
    </form>
  </main>`;
}

// ---- the frame ----------------------------------------------------------------------------------

function Header() {
  const p = S.route.page;
  const link = (page, label) => html`<a href=${A.href(page)} aria-current=${p === page ? 'page' : undefined}>${label}</a>`;
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${(e) => { e.preventDefault(); const m = document.querySelector('main h1'); if (m) m.focus(); }}>Skip to content</a>
    <span class="brand">hookd</span>
    <nav aria-label="Main">
      ${link('endpoints', 'Endpoints')}
      ${link('deliveries', 'Deliveries')}
      ${A.limited() ? null : link('events', 'Events')}
    </nav>
    <div class="who">
      ${S.orgs ? html`<span class="org"><label for="org">Organization</label>
        <select id="org" onChange=${A.switchOrg}>
          ${S.orgs.map((o) => html`<option value=${o.id} selected=${o.id === (S.me && S.me.organizationId)}>${o.name && o.name !== o.id ? `${o.name} (${o.id})` : o.id}</option>`)}
        </select></span>`
        : html`<span class="org-name" title="Organization">${S.me ? S.me.organizationId : ''}</span>`}
      ${S.me && S.me.scope === 'read' ? html`<span class="badge badge-read">read only</span>` : null}
      <button type="button" class="link" onClick=${() => A.signOut()}>Sign out</button>
    </div>
  </header>`;
}

export function App() {
  if (S.route.page === 'signin' || !S.me) {
    if (S.route.page !== 'signin' && S.loading) return html`<main id="main" class="signin"><h1 tabindex="-1">hookd dashboard</h1><p role="status">Signing in…</p></main>`;
    return html`<${SignIn} />`;
  }
  let body;
  if (S.error) body = html`<h1 tabindex="-1">Error</h1><p class="flash flash-error" role="alert">${S.error}</p>`;
  else if (!S.data) body = html`<h1 tabindex="-1">Loading…</h1><p role="status" class="muted">Loading…</p>`;
  else {
    const r = S.route;
    if (r.page === 'endpoints') body = r.id === 'new' || r.sub === 'edit' ? html`<${EndpointForm} />` : r.id ? html`<${EndpointPage} />` : html`<${EndpointsPage} />`;
    else if (r.page === 'deliveries') body = r.id ? html`<${DeliveryPage} />` : html`<${DeliveriesPage} />`;
    else if (r.page === 'events') body = r.id ? html`<${EventPage} />` : html`<${EventsPage} />`;
  }
  return html`<${Header} /><main id="main"><${Flash} />${body}</main>`;
}

// ---- endpoints ----------------------------------------------------------------------------------

function EndpointsPage() {
  const { rows, sparks } = S.data;
  return html`<div class="head-row"><h1 tabindex="-1">Endpoints</h1>
      ${A.canWrite() && !A.limited() ? html`<a class="button primary" href=${A.href('endpoints', 'new')}>New endpoint</a>` : null}
      <button type="button" onClick=${A.refresh}>Refresh</button></div>
    ${rows.length === 0 ? html`<p class="muted">No endpoints yet.</p>` : html`
    <ul class="cards" aria-label="Endpoints">
      ${rows.map((r) => html`<li class="card">
        <div class="card-main">
          <a class="title" href=${A.href('endpoints', r.webhookId)}>${r.name || r.webhookId}</a>
          <span class="url">${r.url}</span>
        </div>
        <dl class="facts">
          <div><dt>Status</dt><dd><${Badge} status=${r.status} /></dd></div>
          <div><dt>Success, 24 h</dt><dd>${pct(r.successRate)}</dd></div>
          <div><dt>Backlog</dt><dd>${r.backlog}${r.backlogCapped ? '+' : ''}</dd></div>
          <div><dt>Attempts, 24 h</dt><dd><${Sparkline} buckets=${sparks[r.webhookId]} label=${r.name || r.webhookId} /></dd></div>
        </dl>
      </li>`)}
    </ul>`}`;
}

const SCHEMES = ['standard', 'reloop', 'sha256', 'ed25519'];

function EndpointForm() {
  const isNew = S.route.id === 'new';
  const w = isNew ? { name: '', url: '', events: [], signatureSchemes: ['standard', 'reloop'], rateLimitEnabled: true,
    maxRequestsPerMinute: 60, maxRetries: 6, ordering: 'parallel', customHeaders: null, filteringOptions: null,
    retrySchedule: null, timeoutMs: null } : S.data.wh;
  if (!A.canWrite()) return html`<h1 tabindex="-1">Read only</h1><p>This session may not change endpoints.</p>`;
  const field = (name, label, value, extra = {}) => html`<div class="field">
    <label for=${'f-' + name}>${label}</label>
    <input id=${'f-' + name} name=${name} defaultValue=${value ?? ''} ...${extra} /></div>`;
  return html`<h1 tabindex="-1">${isNew ? 'New endpoint' : 'Edit ' + (w.name || w.id)}</h1>
    <form class="stack form" onSubmit=${A.saveEndpoint} key=${S.route.id}>
      ${field('name', 'Name', w.name, { required: true, maxLength: 255 })}
      ${field('url', 'URL', w.url, { required: true, type: 'url', placeholder: 'https://example.com/hooks' })}
      ${field('events', 'Event types (comma separated; a segment may be *)', (w.events || []).join(', '), { required: true, placeholder: 'invoice.paid, email.*' })}
      <fieldset><legend>Signature schemes</legend>
        ${SCHEMES.map((s) => html`<label class="check"><input type="checkbox" name="signatureSchemes" value=${s}
          defaultChecked=${(w.signatureSchemes || []).includes(s)} /> ${s}</label>`)}
      </fieldset>
      <div class="field"><label class="check"><input type="checkbox" name="rateLimitEnabled" defaultChecked=${w.rateLimitEnabled} /> Rate limit</label></div>
      ${field('maxRequestsPerMinute', 'Requests per minute', w.maxRequestsPerMinute, { type: 'number', min: 1, max: 100000 })}
      ${field('maxRetries', 'Retries', w.maxRetries, { type: 'number', min: 0, max: 50 })}
      ${field('retrySchedule', 'Retry schedule (e.g. 10s, 1m, 10m; empty = the server\'s)', (w.retrySchedule || []).join(', '))}
      ${field('timeoutMs', 'Timeout, ms (empty = the server\'s)', w.timeoutMs, { type: 'number', min: 100 })}
      <div class="field"><label for="f-ordering">Ordering</label>
        <select id="f-ordering" name="ordering">
          ${['parallel', 'fifo'].map((o) => html`<option value=${o} defaultSelected=${w.ordering === o}>${o}</option>`)}
        </select></div>
      <div class="field"><label for="f-headers">Custom headers (JSON object)</label>
        <textarea id="f-headers" name="customHeaders" rows="3" placeholder='{"X-Team": "billing"}'
          defaultValue=${w.customHeaders ? JSON.stringify(w.customHeaders, null, 1) : ''}></textarea></div>
      <div class="field"><label for="f-filter">Filtering options (JSON)</label>
        <textarea id="f-filter" name="filteringOptions" rows="3" placeholder='{"matchConditions": {"plan": "pro"}}'
          defaultValue=${w.filteringOptions ? JSON.stringify(w.filteringOptions, null, 1) : ''}></textarea></div>
      <div class="actions">
        <button type="submit" class="primary" disabled=${S.busy}>${isNew ? 'Create endpoint' : 'Save'}</button>
        <a class="button" href=${isNew ? A.href('endpoints') : A.href('endpoints', w.id)}>Cancel</a>
      </div>
    </form>`;
}

function SecretOnce() {
  const s = S.secret;
  if (!s || s.webhookId !== S.route.id) return null;
  return html`<section class="secret" aria-labelledby="secret-h">
    <h2 id="secret-h">Signing secret (${s.why}): shown this once</h2>
    <p>Copy it to the receiving application now; hookd shows it masked from now on.
      ${s.until ? ` The previous secret keeps signing until ${fmtTime(s.until)}.` : ''}</p>
    <code class="secret-value" tabindex="0">${s.secret}</code>
    <button type="button" onClick=${A.hideSecret}>I have copied it</button>
  </section>`;
}

function TestWatch() {
  const t = S.test;
  if (!t || t.webhookId !== S.route.id) return null;
  const d = t.delivery;
  return html`<p class="test-watch" role="status">Test event ${t.type}: ${d
    ? html`delivery <a href=${A.href('deliveries', d.id)}>${d.id}</a> <${Badge} status=${d.status} />${d.responseStatus ? ` HTTP ${d.responseStatus}` : ''}`
    : t.error || 'waiting for its delivery…'}</p>`;
}

function EndpointPage() {
  const { wh, stats, deliveries, range } = S.data;
  const id = wh.id;
  const w = A.canWrite();
  const b = stats.buckets;
  return html`<div class="head-row"><h1 tabindex="-1">${wh.name || id}</h1><${Badge} status=${wh.status} /></div>
    <p class="url">${wh.url}</p>
    <${SecretOnce} />
    ${w ? html`<div class="actions" role="group" aria-label="Endpoint actions">
      <a class="button" href=${A.href('endpoints', id, null, 'edit')}>Edit</a>
      ${wh.status === 'active'
        ? html`<button type="button" onClick=${() => A.setStatus(id, 'paused')} disabled=${S.busy}>Pause</button>`
        : html`<button type="button" onClick=${() => A.setStatus(id, 'active')} disabled=${S.busy}>Resume</button>`}
      <button type="button" onClick=${() => A.rotateSecret(id)} disabled=${S.busy}>Rotate secret</button>
      ${A.limited() ? null : html`<button type="button" onClick=${() => A.sendTest(wh)} disabled=${S.busy}>Send test event</button>`}
      ${S.confirmDelete
        ? html`<span class="confirm">Delete this endpoint?
            <button type="button" id="confirm-delete" class="danger" onClick=${() => A.deleteEndpoint(id)}>Yes, delete</button>
            <button type="button" onClick=${() => A.askDelete(false)}>No</button></span>`
        : html`<button type="button" id="delete" class="danger" onClick=${() => A.askDelete(true)}>Delete</button>`}
    </div>` : null}
    <${TestWatch} />
    <dl class="facts wide">
      <div><dt>Events</dt><dd>${(wh.events || []).join(', ')}</dd></div>
      <div><dt>Secret</dt><dd><code>${wh.secret}</code></dd></div>
      <div><dt>Signature schemes</dt><dd>${(wh.signatureSchemes || []).join(', ')}</dd></div>
      <div><dt>Retries</dt><dd>${wh.maxRetries}${wh.retrySchedule ? ` (${wh.retrySchedule.join(', ')})` : ''}</dd></div>
      <div><dt>Rate limit</dt><dd>${wh.rateLimitEnabled ? `${wh.maxRequestsPerMinute}/min` : 'off'}</dd></div>
      <div><dt>Ordering</dt><dd>${wh.ordering}</dd></div>
      <div><dt>Backlog</dt><dd>${stats.backlog}${stats.backlogCapped ? '+' : ''}</dd></div>
      <div><dt>Consecutive failures</dt><dd>${wh.consecutiveFailures}</dd></div>
    </dl>
    <section aria-labelledby="stats-h">
      <div class="head-row"><h2 id="stats-h">Attempts and latency</h2>
        <nav class="ranges" aria-label="Time range">
          ${['1h', '24h', '7d'].map((r) => html`<a href=${A.href('endpoints', id, { range: r })} aria-current=${r === range ? 'true' : undefined}>${r}</a>`)}
        </nav></div>
      <p class="muted">Last ${range}: ${stats.totals.delivered} delivered, ${stats.totals.failed} failed (retried), ${stats.totals.givenUp} given up.</p>
      <div class="charts">
        <${Chart} title="Attempts by outcome" stacked=${true} buckets=${b} series=${[
          { label: 'delivered', value: (x) => x.delivered, color: '#1a7f37' },
          { label: 'failed', value: (x) => x.failed, color: '#bf8700' },
          { label: 'given up', value: (x) => x.givenUp, color: '#cf222e' }]} />
        <${Chart} title="Attempt latency (ms)" unit="ms" buckets=${b} series=${[
          { label: 'p50', value: (x) => x.attemptLatencyMs && x.attemptLatencyMs.p50, color: '#0969da' },
          { label: 'p99', value: (x) => x.attemptLatencyMs && x.attemptLatencyMs.p99, color: '#8250df' }]} />
      </div>
    </section>
    ${w ? html`<section aria-labelledby="recover-h"><h2 id="recover-h">Recover failed deliveries</h2>
      <form class="inline" onSubmit=${(e) => A.recover(e, id)}>
        <label for="recover-since">Send again every failed delivery since</label>
        <input id="recover-since" name="since" type="datetime-local" required
          defaultValue=${localInput(new Date(Date.now() - 86400e3).toISOString())} />
        <button type="submit" disabled=${S.busy}>Recover</button>
      </form></section>` : null}
    <section aria-labelledby="dl-h">
      <h2 id="dl-h">Deliveries</h2>
      <${DeliveryList} items=${deliveries.deliveries} />
      <${Pager} next=${deliveries.next} page="endpoints" />
    </section>`;
}

// ---- deliveries ----------------------------------------------------------------------------------

function DeliveryList({ items, names }) {
  if (!items.length) return html`<p class="muted">No deliveries.</p>`;
  return html`<ul class="rows" aria-label="Deliveries">
    ${items.map((d) => html`<li class="row">
      <a href=${A.href('deliveries', d.id)} class="mono">${d.id}</a>
      <${Badge} status=${d.status} />
      <span>${d.eventType}</span>
      ${names ? html`<span class="muted">${names[d.webhookId] || d.webhookId}</span>` : null}
      <span class="muted">${d.responseStatus ? `HTTP ${d.responseStatus}` : d.errorMessage || ''}</span>
      <span class="muted">${d.attemptNumber} attempt${d.attemptNumber === 1 ? '' : 's'}</span>
      <time datetime=${d.createdAt}>${fmtTime(d.createdAt)}</time>
    </li>`)}
  </ul>`;
}

const STATUSES = ['', 'pending', 'retrying', 'success', 'failed'];

function DeliveriesPage() {
  const { endpoints, list } = S.data;
  const q = S.route.q;
  const names = Object.fromEntries(endpoints.map((e) => [e.webhookId, e.name || e.url]));
  const lim = A.limited();
  return html`<div class="head-row"><h1 tabindex="-1">Deliveries</h1><button type="button" onClick=${A.refresh}>Refresh</button></div>
    <form class="filters" onSubmit=${(e) => A.applyFilters(e, 'deliveries')} key=${JSON.stringify(q)} aria-label="Filters">
      <div class="field"><label for="q-status">Status</label>
        <select id="q-status" name="status">${STATUSES.map((s) => html`<option value=${s} defaultSelected=${(q.status || '') === s}>${s || 'any'}</option>`)}</select></div>
      <div class="field"><label for="q-wh">Endpoint</label>
        <select id="q-wh" name="webhookId">
          ${lim ? null : html`<option value="" defaultSelected=${!q.webhookId}>any</option>`}
          ${endpoints.map((e) => html`<option value=${e.webhookId} defaultSelected=${q.webhookId === e.webhookId}>${e.name || e.url}</option>`)}
        </select></div>
      ${lim ? null : html`
      <div class="field"><label for="q-type">Event type</label><input id="q-type" name="eventType" defaultValue=${q.eventType || ''} /></div>
      <div class="field"><label for="q-since">Since</label><input id="q-since" name="since" type="datetime-local" defaultValue=${localInput(q.since)} /></div>
      <div class="field"><label for="q-until">Until</label><input id="q-until" name="until" type="datetime-local" defaultValue=${localInput(q.until)} /></div>
      <div class="field"><label for="q-id">Delivery id, event id or idempotency key</label><input id="q-id" name="q" defaultValue=${q.q || ''} spellcheck="false" /></div>`}
      <div class="actions"><button type="submit" class="primary">Filter</button>
        <a class="button" href=${A.href('deliveries')}>Clear</a></div>
    </form>
    <${DeliveryList} items=${list.deliveries} names=${names} />
    <${Pager} next=${list.next} page="deliveries" />`;
}

function DeliveryPage() {
  const d = S.data.d;
  const req = d.requestBody;
  return html`<div class="head-row"><h1 tabindex="-1">Delivery <span class="mono">${d.id}</span></h1><${Badge} status=${d.status} /></div>
    ${A.canWrite() ? html`<div class="actions">
      <button type="button" class="primary" onClick=${() => A.retryDelivery(d.id)} disabled=${S.busy}>Retry</button></div>` : null}
    <dl class="facts wide">
      <div><dt>Endpoint</dt><dd>${S.data.wh ? html`<a href=${A.href('endpoints', d.webhookId)}>${S.data.wh.name || d.webhookId}</a>` : html`<span class="mono">${d.webhookId}</span> (deleted)`}</dd></div>
      <div><dt>Event</dt><dd>${A.limited() ? html`<span class="mono">${d.webhookEventId}</span>` : html`<a href=${A.href('events', d.webhookEventId)} class="mono">${d.webhookEventId}</a>`} (${d.eventType})</dd></div>
      <div><dt>Attempts</dt><dd>${d.attemptNumber} of ${d.maxAttempts}</dd></div>
      <div><dt>Created</dt><dd>${fmtTime(d.createdAt)}</dd></div>
      <div><dt>Next retry</dt><dd>${fmtTime(d.nextRetryAt)}</dd></div>
      <div><dt>Completed</dt><dd>${fmtTime(d.completedAt)}</dd></div>
      ${d.replayOfDeliveryId ? html`<div><dt>Replay of</dt><dd><a href=${A.href('deliveries', d.replayOfDeliveryId)} class="mono">${d.replayOfDeliveryId}</a></dd></div>` : null}
      ${d.errorMessage ? html`<div><dt>Error</dt><dd>${d.errorMessage}</dd></div>` : null}
    </dl>
    <section aria-labelledby="req-h"><h2 id="req-h">Request</h2>
      <p><span class="mono">POST ${d.requestUrl || ''}</span></p>
      <h3>Headers</h3><${Headers} headers=${d.requestHeaders} label="Request headers" />
      <h3>Body</h3><${Pre} text=${req} label="Request body" />
    </section>
    <section aria-labelledby="att-h"><h2 id="att-h">Attempts</h2>
      ${(d.attempts || []).length === 0 ? html`<p class="muted">No attempt yet.</p>` : null}
      <ol class="attempts">
        ${(d.attempts || []).map((a, i, all) => html`<li class="attempt">
          <h3>Attempt ${a.attemptNumber} <${Badge} status=${a.status} /></h3>
          <dl class="facts">
            <div><dt>Response</dt><dd>${a.responseStatus ? `HTTP ${a.responseStatus}` : 'none'}</dd></div>
            <div><dt>Duration</dt><dd>${a.durationMs} ms</dd></div>
            <div><dt>At</dt><dd>${fmtTime(a.createdAt)}</dd></div>
            ${a.errorMessage ? html`<div><dt>Error</dt><dd>${a.errorMessage}</dd></div>` : null}
          </dl>
          <details open=${i === all.length - 1}><summary>Response headers</summary><${Headers} headers=${a.responseHeaders} label=${`Response headers of attempt ${a.attemptNumber}`} /></details>
          <h4>Response body</h4><${Pre} text=${a.responseBody} label=${`Response body of attempt ${a.attemptNumber}`} />
        </li>`)}
      </ol>
    </section>`;
}

// ---- events -----------------------------------------------------------------------------------

function EventsPage() {
  const { list } = S.data;
  const q = S.route.q;
  return html`<div class="head-row"><h1 tabindex="-1">Events</h1><button type="button" onClick=${A.refresh}>Refresh</button></div>
    <form class="filters" onSubmit=${(e) => A.applyFilters(e, 'events')} key=${JSON.stringify(q)} aria-label="Filters">
      <div class="field"><label for="q-etype">Event type</label><input id="q-etype" name="type" defaultValue=${q.type || ''} /></div>
      <div class="actions"><button type="submit" class="primary">Filter</button><a class="button" href=${A.href('events')}>Clear</a></div>
    </form>
    ${list.events.length === 0 ? html`<p class="muted">No events.</p>` : html`<ul class="rows" aria-label="Events">
      ${list.events.map((e) => html`<li class="row">
        <a href=${A.href('events', e.id)} class="mono">${e.id}</a>
        <span>${e.type}</span>
        <span class="muted">${e.source}</span>
        <time datetime=${e.createdAt}>${fmtTime(e.createdAt)}</time>
      </li>`)}</ul>`}
    <${Pager} next=${list.next} page="events" />`;
}

function EventPage() {
  const e = S.data.ev;
  return html`<h1 tabindex="-1">Event <span class="mono">${e.id}</span></h1>
    <dl class="facts wide">
      <div><dt>Type</dt><dd>${e.type}</dd></div>
      <div><dt>Source</dt><dd>${e.source}</dd></div>
      <div><dt>Created</dt><dd>${fmtTime(e.createdAt)}</dd></div>
      <div><dt>Idempotency key</dt><dd>${e.idempotencyKey || '—'}</dd></div>
    </dl>
    <section aria-labelledby="data-h"><h2 id="data-h">Data</h2><${Pre} text=${e.data} label="Event data" /></section>
    <section aria-labelledby="evd-h"><h2 id="evd-h">Deliveries</h2>
      ${(e.deliveries || []).length === 0 ? html`<p class="muted">This event matched no endpoint.</p>` : html`<ul class="rows" aria-label="Deliveries of this event">
        ${e.deliveries.map((d) => html`<li class="row"><a href=${A.href('deliveries', d.id)} class="mono">${d.id}</a>
          <${Badge} status=${d.status} /><a href=${A.href('endpoints', d.webhookId)} class="mono">${d.webhookId}</a></li>`)}
      </ul>`}
    </section>`;
}
