// Page weight and first meaningful render of the dashboard's pages (docs/DASHBOARD.md), in
// headless Chromium (playwright-core, /usr/bin/chromium). Run by bench/dashboard.py, which
// starts hookd with 100,000 deliveries stored and passes HOOKD_URL, HOOKD_KEY, DELIVERY_ID,
// WEBHOOK_ID and RUNS in the environment. Each run of a page is a new browser context (an
// empty cache): the page is opened already signed in (the key put in sessionStorage before the
// page's scripts run), and the time is taken in the page when the view's content is in the
// document (a MutationObserver, so no polling delay is counted), beside Chromium's first
// contentful paint. Then the page is reloaded in the same context (a warm cache: 304s). Prints
// one JSON object: per page, the median of RUNS of each figure, and the bytes transferred.
import { chromium } from 'playwright-core';

const env = process.env;
const BASE = env.HOOKD_URL;
const RUNS = Number(env.RUNS || '5');
const UI = BASE + '/api/webhook/ui/';
const PAGES = [
  { name: 'endpoints', hash: '#/endpoints', sel: '.cards .spark' },
  { name: 'deliveries', hash: '#/deliveries', sel: 'ul.rows li' },
  { name: 'delivery', hash: '#/deliveries/' + env.DELIVERY_ID, sel: 'ol.attempts li' },
  { name: 'endpoint', hash: '#/endpoints/' + env.WEBHOOK_ID, sel: '.chart-box canvas' },
  { name: 'events', hash: '#/events', sel: 'ul.rows li' },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
};

const browser = await chromium.launch({
  executablePath: env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-dev-shm-usage'],
});

async function once(p) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await ctx.addInitScript(([key, sel]) => {
    sessionStorage.setItem('hookd.credential', key);
    const seen = () => {
      if (window.__rendered === undefined && document.querySelector(sel)) window.__rendered = performance.now();
    };
    new MutationObserver(seen).observe(document, { childList: true, subtree: true });
  }, [env.HOOKD_KEY, p.sel]);
  const page = await ctx.newPage();
  let bytes = 0, requests = 0;
  page.on('requestfinished', async (req) => {
    try {
      const s = await req.sizes();
      bytes += s.responseBodySize + s.responseHeadersSize;
      requests++;
    } catch (e) { /* gone */ }
  });
  await page.goto(UI + p.hash);
  await page.waitForFunction(() => window.__rendered !== undefined, null, { timeout: 30000 });
  await page.waitForLoadState('networkidle');
  const cold = await page.evaluate(() => ({
    rendered: window.__rendered,
    fcp: (performance.getEntriesByName('first-contentful-paint')[0] || {}).startTime ?? null,
  }));
  const coldBytes = bytes, coldRequests = requests;
  bytes = 0;
  requests = 0;
  await page.reload();
  await page.waitForFunction(() => window.__rendered !== undefined, null, { timeout: 30000 });
  await page.waitForLoadState('networkidle');
  const warm = await page.evaluate(() => window.__rendered);
  await ctx.close();
  return { rendered: cold.rendered, fcp: cold.fcp, bytes: coldBytes, requests: coldRequests,
    warm, warmBytes: bytes };
}

const out = { runs: RUNS, pages: {} };
for (const p of PAGES) {
  const rs = [];
  for (let i = 0; i < RUNS; i++) rs.push(await once(p));
  out.pages[p.name] = {
    renderedMs: Math.round(median(rs.map((r) => r.rendered))),
    renderedMaxMs: Math.round(Math.max(...rs.map((r) => r.rendered))),
    fcpMs: Math.round(median(rs.map((r) => r.fcp))),
    bytes: median(rs.map((r) => r.bytes)),
    requests: median(rs.map((r) => r.requests)),
    warmRenderedMs: Math.round(median(rs.map((r) => r.warm))),
    warmBytes: median(rs.map((r) => r.warmBytes)),
  };
}
console.log(JSON.stringify(out, null, 1));
await browser.close();
