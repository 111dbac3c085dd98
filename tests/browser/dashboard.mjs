// The dashboard end to end in a real browser (issue 18 "Tests"): playwright-core drives Debian's
// /usr/bin/chromium headless against a real hookd and a real receiver, both started by
// tests/integration/test_dashboard.py, which passes them in the environment:
//   HOOKD_URL, HOOKD_KEY (a full key of org_test), HOOKD_ADMIN_KEY, RECEIVER_OK (a URL that
//   answers 200), RECEIVER_FLAKY (one that answers 500 twice, then 200), OTHER_ORG (a second
//   organization, with an endpoint named "Other org endpoint"), OUT_DIR, HOOKD_TEST_SLOWDOWN.
// Every step saves OUT_DIR/<step>.png and checks that the page is not blank and shows what it
// should. Throughout: no dialog opens and window.__xss stays unset (the payloads below would
// set it if anything ran them). axe-core runs on each main page: no serious or critical
// violation. OUT_DIR/results.json gets the axe findings and the page weight of the first load.
// Exit 0 when every step passed.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const env = process.env;
const BASE = env.HOOKD_URL;
const OUT = env.OUT_DIR;
const SLOW = Number(env.HOOKD_TEST_SLOWDOWN || '1');
const T = (ms) => ms * SLOW;
const UI = BASE + '/api/webhook/ui/';
const AXE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const XSS_NAME = 'Orders <img src=x onerror="window.__xss=1">';
const XSS_DATA = { note: '<img src=x onerror="window.__xss=2">', close: '</script><script>window.__xss=4</script>' };
const XSS_BODY = '<img src=x onerror="window.__xss=3"> down';

fs.mkdirSync(OUT, { recursive: true });
const results = { steps: [], axe: {}, weight: null, dialogs: [] };
const say = (...a) => console.log('[dashboard]', ...a);

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
}

async function api(method, p, body, key = env.HOOKD_KEY, headers = {}) {
  const r = await fetch(BASE + '/api/webhook' + p, {
    method, headers: { 'x-api-key': key, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: text ? JSON.parse(text) : null };
}

async function until(what, fn, ms = 15000) {
  const end = Date.now() + T(ms);
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
  headless: true,
});

async function newPage(width = 1100, height = 850) {
  const ctx = await browser.newContext({ viewport: { width, height } });
  // what the page's CSP refused: the dashboard itself must need nothing it forbids
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(T(15000));
  page.on('dialog', (d) => { results.dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on('pageerror', (e) => { say('page error:', e.message); results.pageErrors = (results.pageErrors || 0) + 1; });
  page.on('console', (m) => { if (m.type() === 'error') say('console error:', m.text()); });
  return page;
}

// The step's screenshot, and the checks every step makes: something is shown, the texts
// expected are, nothing ran.
async function shot(page, name, texts = []) {
  await page.waitForTimeout(150); // let the last render settle
  const file = path.join(OUT, name + '.png');
  await page.screenshot({ path: file, fullPage: true });
  const body = await page.innerText('body');
  check(body.trim().length > 40, `${name}: the page is not blank (${JSON.stringify(body.slice(0, 80))})`);
  for (const t of texts) check(body.includes(t), `${name}: the page shows ${JSON.stringify(t)}`);
  const xss = await page.evaluate(() => window.__xss);
  check(xss === undefined, `${name}: no payload ran (window.__xss = ${xss})`);
  const csp = await page.evaluate(() => window.__csp);
  check(csp.length === 0, `${name}: the CSP refused nothing the dashboard does: ${csp.join(', ')}`);
  check(results.dialogs.length === 0, `${name}: no dialog opened (${results.dialogs.join(' | ')})`);
  check(fs.statSync(file).size > 5000, `${name}: the screenshot has content`);
  results.steps.push(name);
  say('ok', name);
}

// axe-core on the page as it is (evaluated through the DevTools protocol: the page's CSP,
// which allows no script from elsewhere, stays on).
async function axe(page, name) {
  await page.evaluate(AXE);
  const r = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  const found = r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length,
    help: v.help, targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  results.axe[name] = found;
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  check(bad.length === 0, `${name}: axe finds no serious or critical violation: ${JSON.stringify(bad)}`);
}

async function go(page, hash) {
  await page.evaluate((h) => { location.hash = h; }, hash);
}

async function signIn(page, key) {
  await page.goto(UI);
  await page.fill('#credential', key);
  await page.click('button[type=submit]');
  await page.waitForSelector('main h1:text-is("Endpoints")');
}

try {
  // ---- 1. sign in, with the page weight of the first load ---------------------------------------
  const page = await newPage();
  const sizes = [];
  page.on('requestfinished', async (req) => {
    try {
      const s = await req.sizes();
      sizes.push({ url: req.url(), bytes: s.responseBodySize + s.responseHeadersSize });
    } catch (e) { /* gone */ }
  });
  await page.goto(UI);
  await page.waitForSelector('#credential');
  await shot(page, '01-sign-in', ['hookd dashboard', 'API key or session token']);
  await axe(page, 'sign-in');
  await page.fill('#credential', 'not-a-key');
  await page.click('button[type=submit]');
  await page.waitForSelector('.flash-error');
  await page.fill('#credential', env.HOOKD_KEY);
  await page.click('button[type=submit]');
  await page.waitForSelector('main h1:text-is("Endpoints")');
  await page.waitForTimeout(300);
  results.weight = { bytes: sizes.reduce((a, s) => a + s.bytes, 0), requests: sizes.length,
    files: sizes.map((s) => `${s.url.replace(BASE, '')} ${s.bytes}`) };
  check(await page.evaluate(() => localStorage.length === 0 && document.cookie === ''),
    'the key is in neither localStorage nor a cookie');
  check(await page.evaluate(() => Object.values(sessionStorage).length > 0), 'the key is in sessionStorage');
  await shot(page, '02-endpoints-empty', ['Endpoints', 'No endpoints yet', 'org_test']);
  await axe(page, 'endpoints');

  // ---- 2. create an endpoint (its name is an XSS payload: shown as text) -------------------------
  await page.click('text=New endpoint');
  await page.waitForSelector('main h1:text-is("New endpoint")');
  await page.fill('#f-name', XSS_NAME);
  await page.fill('#f-url', env.RECEIVER_OK);
  await page.fill('#f-events', 'order.*');
  await shot(page, '03-endpoint-form', ['New endpoint', 'Signature schemes']);
  await axe(page, 'endpoint-form');
  await page.click('button:text-is("Create endpoint")');
  await page.waitForSelector('.secret-value');
  const secret = await page.innerText('.secret-value');
  check(secret.startsWith('whsec_'), 'the new secret is shown once: ' + secret);
  const okId = decodeURIComponent(page.url().split('#/endpoints/')[1]);
  check(okId.startsWith('wh_'), 'the endpoint page is in the URL: ' + page.url());
  await shot(page, '04-endpoint-created', [XSS_NAME, 'shown this once', 'order.*']);

  // ---- 3. send a test event and watch it arrive; an event with XSS payloads ------------------------
  await page.click('button:text-is("Send test event")');
  await page.waitForSelector('.test-watch .badge-success', { timeout: T(20000) });
  await shot(page, '05-test-event-delivered', ['Test event order.test', 'success']);
  const ev = await api('POST', '/v1/events', { type: 'order.created', data: XSS_DATA });
  check(ev.status === 202, 'ingest: ' + JSON.stringify(ev));
  const okDelivery = await until('the delivery of order.created', async () => {
    const r = await api('GET', `/v1/deliveries?eventId=${ev.json.id}&limit=1`);
    const d = r.json.deliveries[0];
    return d && d.status === 'success' ? d : null;
  });
  await go(page, '#/deliveries');
  await page.waitForSelector('main h1:text-is("Deliveries")');
  await page.waitForSelector(`a:text-is("${okDelivery.id}")`);
  await shot(page, '06-deliveries', ['Deliveries', okDelivery.id, 'order.created', 'success']);
  await axe(page, 'deliveries');
  // keyset paging: 25 more deliveries make a second page, reached through the next cursor
  const bulk = await api('POST', '/v1/events/batch', { events: Array.from({ length: 25 }, (_, i) => ({ type: 'order.bulk', data: { i } })) });
  check(bulk.status === 202, 'batch: ' + bulk.status);
  await until('the bulk deliveries', async () => (await api('GET', '/v1/deliveries?eventType=order.bulk&status=success&limit=100')).json.deliveries.length === 25);
  await page.click('button:text-is("Refresh")');
  await page.waitForSelector('a[rel=next]');
  const first = await page.$$eval('ul.rows a.mono', (a) => a.map((x) => x.textContent));
  check(first.length === 20, 'a page holds 20 deliveries: ' + first.length);
  await page.click('a[rel=next]');
  await page.waitForFunction(() => location.hash.includes('cursor='));
  await page.waitForSelector('a:text-is("First page")');
  const second = await page.$$eval('ul.rows a.mono', (a) => a.map((x) => x.textContent));
  check(second.length > 0 && second.every((id) => !first.includes(id)), 'the second page holds other deliveries');
  check(second.includes(okDelivery.id), 'the oldest deliveries are on the second page');
  await page.click(`a:text-is("${okDelivery.id}")`);
  await page.waitForSelector('h2:text-is("Request")');
  await shot(page, '07-delivery-request', ['Request', 'webhook-signature', 'X-Delivery-Id',
    JSON.stringify(XSS_DATA.note), 'window.__xss=4', 'HTTP 200', 'Attempt 1']);
  await axe(page, 'delivery');
  check(await page.evaluate(() => document.querySelectorAll('main img, main script').length === 0),
    'no element was made from the payload');

  // ---- 4. a failing receiver: failed attempts with its body, retry after it recovers -------------
  await go(page, '#/endpoints/new');
  await page.waitForSelector('main h1:text-is("New endpoint")');
  await page.fill('#f-name', 'Billing');
  await page.fill('#f-url', env.RECEIVER_FLAKY);
  await page.fill('#f-events', 'billing.*');
  await page.fill('#f-maxRetries', '1');
  await page.fill('#f-retrySchedule', '300ms');
  await page.click('button:text-is("Create endpoint")');
  await page.waitForSelector('.secret-value');
  const flakyId = decodeURIComponent(page.url().split('#/endpoints/')[1]);
  const ev2 = await api('POST', '/v1/events', { type: 'billing.failed', data: { invoice: 42 } });
  const failed = await until('the failed delivery', async () => {
    const r = await api('GET', `/v1/deliveries?eventId=${ev2.json.id}&limit=1`);
    const d = r.json.deliveries[0];
    return d && d.status === 'failed' ? d : null;
  }, 20000);
  check(failed.attemptNumber === 2, 'two attempts failed: ' + failed.attemptNumber);
  await go(page, '#/deliveries');
  await page.waitForSelector('main h1:text-is("Deliveries")');
  await page.selectOption('#q-status', 'failed');
  await page.fill('#q-type', 'billing.failed');
  await page.click('button:text-is("Filter")');
  await page.waitForFunction(() => location.hash.includes('status=failed') && location.hash.includes('eventType=billing.failed'));
  await page.waitForSelector(`a:text-is("${failed.id}")`);
  check(await page.locator('ul.rows li').count() === 1, 'the filters leave the failed delivery alone');
  await page.click(`a:text-is("${failed.id}")`);
  await page.waitForSelector('h3:has-text("Attempt 2")');
  await shot(page, '08-delivery-failed', ['failed', 'Attempt 1', 'Attempt 2', 'HTTP 500', XSS_BODY]);
  await page.click('button:text-is("Retry")');
  await page.waitForSelector('.head-row .badge-success', { timeout: T(20000) });
  await shot(page, '09-delivery-retried', ['Replay of', failed.id, 'success', 'HTTP 200']);

  // ---- 5. the endpoint's page: charts, its deliveries; events ------------------------------------
  await go(page, `#/endpoints/${flakyId}?range=1h`);
  await page.waitForSelector('h2:text-is("Attempts and latency")');
  await page.waitForSelector('.chart-box canvas');
  await shot(page, '10-endpoint-detail', ['Billing', 'Attempts by outcome', 'Attempt latency', '1 delivered', '1 failed (retried), 1 given up']);
  await axe(page, 'endpoint');
  await go(page, '#/events');
  await page.waitForSelector(`a:text-is("${ev2.json.id}")`);
  await page.fill('#q-etype', 'order.created');
  await page.click('button:text-is("Filter")');
  await page.waitForFunction(() => location.hash.includes('type=order.created'));
  await page.waitForSelector(`a:text-is("${ev.json.id}")`);
  check(await page.locator('ul.rows li').count() === 1, 'the type filter leaves one event');
  await shot(page, '11-events', ['Events', 'order.created']);
  await axe(page, 'events');
  await page.click(`a:text-is("${ev.json.id}")`);
  await page.waitForSelector('h2:text-is("Data")');
  await shot(page, '12-event', ['order.created', JSON.stringify(XSS_DATA.note), okDelivery.id]);
  await axe(page, 'event');
  await go(page, '#/endpoints');
  await page.waitForSelector('.spark');
  await shot(page, '13-endpoints', [XSS_NAME, 'Billing', 'Success, 24 h']);

  // ---- 6. 360 px wide --------------------------------------------------------------------------
  await page.setViewportSize({ width: 360, height: 740 });
  await page.waitForTimeout(200);
  const over = await page.evaluate(() => document.documentElement.scrollWidth);
  check(over <= 360, 'nothing overflows 360 px: ' + over);
  await shot(page, '14-mobile-endpoints', ['Endpoints', 'Billing']);
  await go(page, '#/deliveries/' + failed.id);
  await page.waitForSelector('h2:text-is("Attempts")');
  check(await page.evaluate(() => document.documentElement.scrollWidth) <= 360, 'delivery at 360 px');
  await shot(page, '15-mobile-delivery', ['Attempt 2']);
  for (const [hash, sel] of [[`#/endpoints/${flakyId}`, '.chart-box canvas'], ['#/endpoints/new', '#f-name'],
    ['#/deliveries', '#q-status'], ['#/events', '#q-etype']]) {
    await go(page, hash);
    await page.waitForSelector(sel);
    await page.waitForTimeout(100);
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    check(w <= 360, `${hash} fits 360 px: ${w}`);
  }
  await go(page, '#/deliveries/' + failed.id);
  await page.waitForSelector('h2:text-is("Attempts")');
  // keyboard: the skip link moves focus to the page's heading; Tab reaches the main
  // navigation and Enter follows it
  await page.focus('a.skip');
  await page.keyboard.press('Enter');
  check(await page.evaluate(() => document.activeElement.tagName === 'H1'), 'skip link focuses the heading');
  await page.focus('a.skip');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.textContent) === 'Deliveries', 'Tab reaches the navigation');
  await page.keyboard.press('Enter');
  await page.waitForSelector('main h1:text-is("Deliveries")');
  await page.context().close();

  // ---- 6b. an endpoint's actions: recover, pause, resume, rotate, edit; delete another -----------
  const page2 = await newPage();
  await signIn(page2, env.HOOKD_KEY);
  await go(page2, '#/endpoints/' + flakyId);
  await page2.waitForSelector('h2:text-is("Recover failed deliveries")');
  await page2.click('button:text-is("Recover")');
  await page2.waitForSelector('.flash-ok:has-text("1 failed deliveries sent again")');
  await page2.click('button:text-is("Pause")');
  await page2.waitForSelector('.head-row .badge-paused');
  await page2.click('button:text-is("Resume")');
  await page2.waitForSelector('.head-row .badge-active');
  await page2.click('button:text-is("Rotate secret")');
  await page2.waitForSelector('.secret-value');
  check((await page2.innerText('.secret-value')).startsWith('whsec_'), 'the rotated secret is shown once');
  await shot(page2, '15b-endpoint-rotated', ['Signing secret (rotated)', 'previous secret keeps signing']);
  await page2.click('button:text-is("I have copied it")');
  await page2.click('a:text-is("Edit")');
  await page2.waitForSelector('main h1:has-text("Edit")');
  await page2.fill('#f-name', 'Billing (renamed)');
  await page2.click('button:text-is("Save")');
  await page2.waitForSelector('main h1:text-is("Billing (renamed)")');
  const tmpWh = await api('POST', '/v1', { name: 'Temporary', url: env.RECEIVER_OK, events: ['tmp.*'] });
  await go(page2, '#/endpoints/' + tmpWh.json.id);
  await page2.waitForSelector('main h1:text-is("Temporary")');
  await page2.click('button#delete');
  await page2.click('button:text-is("Yes, delete")');
  await page2.waitForSelector('main h1:text-is("Endpoints")');
  await page2.waitForSelector('.flash-ok:has-text("Endpoint deleted")');
  check(await page2.locator('a:text-is("Temporary")').count() === 0, 'the deleted endpoint is gone');
  check((await api('GET', '/v1/' + tmpWh.json.id)).status === 404, 'deleted in hookd');
  await page2.context().close();

  // ---- 7. a read-only portal session: no write button, and the API refuses anyway ---------------
  const rs = await api('POST', '/v1/portal-sessions', { scope: 'read', ttlSeconds: 600 });
  check(rs.status === 201, 'read session: ' + JSON.stringify(rs));
  const rp = await newPage();
  const rurl = rs.json.url.startsWith('http') ? rs.json.url : BASE + rs.json.url;
  await rp.goto(rurl);
  await rp.waitForSelector('main h1:text-is("Endpoints")');
  check(!rp.url().includes('token'), 'the token left the address bar: ' + rp.url());
  check(!(await rp.evaluate(() => history.length > 1 && location.href.includes('token'))), 'history');
  check(await rp.locator('text=New endpoint').count() === 0, 'no New endpoint for a read session');
  await shot(rp, '16-read-session', ['read only', 'Billing']);
  await go(rp, '#/endpoints/' + flakyId);
  await rp.waitForSelector('h2:text-is("Attempts and latency")');
  for (const b of ['Pause', 'Delete', 'Rotate secret', 'Send test event', 'Edit', 'Recover'])
    check(await rp.locator(`main button:text-is("${b}"), main a:text-is("${b}")`).count() === 0, `no ${b} button`);
  await go(rp, '#/deliveries/' + failed.id);
  await rp.waitForSelector('h2:text-is("Request")');
  check(await rp.locator('button:text-is("Retry")').count() === 0, 'no Retry button');
  await shot(rp, '17-read-session-delivery', ['read only', 'Attempt 2']);
  const refused = await rp.evaluate(async (id) => {
    const r = await fetch(`/api/webhook/v1/deliveries/${id}/retry`, { method: 'POST',
      headers: { 'x-api-key': sessionStorage.getItem('hookd.credential'), 'content-type': 'application/json' }, body: '{}' });
    return r.status;
  }, failed.id);
  check(refused === 403, 'the API refuses a read session a retry: ' + refused);
  await rp.context().close();

  // ---- 7b. a session limited to one endpoint: that endpoint and its deliveries only -------------
  const ls = await api('POST', '/v1/portal-sessions', { scope: 'full', webhookIds: [flakyId] });
  check(ls.status === 201, 'limited session: ' + JSON.stringify(ls));
  const lp = await newPage();
  await lp.goto(ls.json.url.startsWith('http') ? ls.json.url : BASE + ls.json.url);
  await lp.waitForSelector('main h1:text-is("Endpoints")');
  await lp.waitForSelector('a:text-is("Billing (renamed)")');
  check(await lp.locator('ul.cards li').count() === 1, 'one endpoint');
  check(await lp.locator('nav a:text-is("Events")').count() === 0, 'no events for a limited session');
  check(await lp.locator('text=New endpoint').count() === 0, 'no New endpoint for a limited session');
  await go(lp, '#/deliveries');
  await lp.waitForSelector(`a:text-is("${failed.id}")`);
  await shot(lp, '17b-limited-session-deliveries', ['Deliveries', 'billing.failed']);
  await lp.context().close();

  // ---- 8. an expired session: back to sign-in ---------------------------------------------------
  const es = await api('POST', '/v1/portal-sessions', { scope: 'full', ttlSeconds: Math.ceil(3 * SLOW) });
  const ep = await newPage();
  await ep.goto(es.json.url.startsWith('http') ? es.json.url : BASE + es.json.url);
  await ep.waitForSelector('main h1:text-is("Endpoints")');
  await ep.waitForTimeout(T(3500));
  await ep.click('button:text-is("Refresh")');
  await ep.waitForSelector('#credential');
  await shot(ep, '18-expired-session', ['Signed out', 'expired', 'API key or session token']);
  check(await ep.evaluate(() => sessionStorage.length === 0), 'the expired token is forgotten');
  await ep.context().close();

  // ---- 9. an admin key: the organization switcher -----------------------------------------------
  const ap = await newPage();
  await ap.goto(UI);
  await ap.fill('#credential', env.HOOKD_ADMIN_KEY);
  await ap.click('button[type=submit]');
  await ap.waitForSelector('select#org');
  const orgs = await ap.$$eval('select#org option', (o) => o.map((x) => x.value));
  check(orgs.includes('org_test') && orgs.includes(env.OTHER_ORG), 'both organizations: ' + orgs);
  await ap.selectOption('select#org', 'org_test');
  await ap.waitForSelector('text=Billing');
  await ap.selectOption('select#org', env.OTHER_ORG);
  await ap.waitForSelector('text=Other org endpoint');
  check(await ap.locator('text=Billing').count() === 0, 'the other organization sees its own endpoints only');
  await shot(ap, '19-admin-org-switcher', ['Organization', 'Other org endpoint']);
  await axe(ap, 'endpoints-admin');
  await ap.context().close();

  check(!results.pageErrors, 'no script error on any page');
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2));
  say('all steps passed;', `first load ${results.weight.bytes} bytes in ${results.weight.requests} requests`);
  await browser.close();
} catch (e) {
  results.error = String(e.stack || e);
  fs.writeFileSync(path.join(OUT, 'results.json'), JSON.stringify(results, null, 2));
  console.error('[dashboard] FAILED:', e.stack || e);
  await browser.close();
  process.exit(1);
}
