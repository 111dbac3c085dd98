/*
 * server.js: the reference stack's API process (bench/reference/: the seed tutorial's design,
 * for the benchmark to measure hookd against; see queue.js and docs/BENCHMARKS.md). Express on
 * PORT, answering the requests bench/run.py and bench/loadgen send to hookd:
 *
 *   GET  /api/webhook/health            200 {"status":"ok"}
 *   POST /api/webhook/v1                a webhook {name, url, events[, secret]}: 201 {id, secret}
 *   POST /api/webhook/v1/sign-test-event  {webhookId, event, payload}: 200 {url, headers,
 *                                        rawBody}, the request a delivery would send (the
 *                                        benchmark's ceiling run replays it with wrk)
 *   POST /api/webhook/v1/events         one event {type, data} (the tutorial's POST /events)
 *   POST /api/webhook/v1/events/batch   {events: [...]}: the same handler for each, in order
 *
 * The event handler is the tutorial's: insert the event, `SELECT * FROM webhooks WHERE $1 =
 * ANY(event_types)`, then for each webhook insert a pending delivery and add a Bull job, each
 * awaited in turn, one statement per commit. Two additions so that the benchmark's requests
 * work: a pattern `prefix.*` in event_types also matches (the bench subscribes to `bench.*`;
 * the OR keeps the tutorial's sequential scan), and x-api-key must equal REF_API_KEY (401
 * otherwise). The schema (the tutorial's tables) is created at start-up. SIGTERM closes the
 * server, the queue and the pool, and exits 0.
 *
 * Environment: PORT, PG_URL, REDIS_URL, REF_API_KEY, REF_PG_POOL (queue.js).
 */
'use strict';
const crypto = require('crypto');
const express = require('express');
const { deliveryQueue, pool, deliveryHeaders } = require('./queue');

const SCHEMA = `
CREATE TABLE IF NOT EXISTS webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    event_types TEXT[] NOT NULL,
    max_retries INTEGER NOT NULL DEFAULT 5,
    timeout_ms INTEGER NOT NULL DEFAULT 10000,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS events (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    type TEXT NOT NULL,
    payload JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);
CREATE TABLE IF NOT EXISTS deliveries (
    id UUID PRIMARY KEY,
    webhook_id TEXT NOT NULL REFERENCES webhooks(id),
    event_id UUID NOT NULL REFERENCES events(id),
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_retry_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT NOW(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
);`;

const app = express();
app.use(express.json({ limit: '16mb' }));
app.use('/api/webhook/v1', (req, res, next) => {
    if (req.get('x-api-key') !== process.env.REF_API_KEY)
        return res.status(401).json({ error: 'unauthorized' });
    next();
});

app.get('/api/webhook/health', (req, res) => res.json({ status: 'ok', backend: 'reference' }));

/* Creates a webhook; answers its id and secret. maxRetries (5) and timeoutMs (10,000) are the
 * tutorial's constants made per webhook (the Reloop schema has maxRetries), so that a scenario
 * that sets them on hookd's webhooks sets them here too. */
app.post('/api/webhook/v1', async (req, res) => {
    const { url, events } = req.body || {};
    const maxRetries = req.body.maxRetries ?? 5;
    const timeoutMs = req.body.timeoutMs ?? 10000;
    if (typeof url !== 'string' || !Array.isArray(events) || events.length === 0 ||
        !Number.isInteger(maxRetries) || maxRetries < 0 || maxRetries > 50 ||
        !Number.isInteger(timeoutMs) || timeoutMs < 1)
        return res.status(422).json({ error: 'url and events are required; maxRetries 0..50,' +
                                             ' timeoutMs > 0' });
    const id = 'wh_' + crypto.randomUUID().replace(/-/g, '');
    const secret = req.body.secret || 'whsec_' + crypto.randomBytes(32).toString('base64');
    await pool.query('INSERT INTO webhooks (id, url, secret, event_types, max_retries, ' +
                         'timeout_ms) VALUES ($1, $2, $3, $4, $5, $6)',
                     [id, url, secret, events, maxRetries, timeoutMs]);
    res.status(201).json({ id, url, events, secret, maxRetries, timeoutMs });
});

/* The request a delivery of {event, payload} to webhookId would send (nothing stored). */
app.post('/api/webhook/v1/sign-test-event', async (req, res) => {
    const { webhookId, payload } = req.body || {};
    const r = await pool.query('SELECT * FROM webhooks WHERE id = $1', [webhookId]);
    if (r.rows.length === 0) return res.status(404).json({ error: 'no such webhook' });
    const rawBody = JSON.stringify(payload === undefined ? {} : payload);
    res.json({ url: r.rows[0].url, rawBody,
               headers: deliveryHeaders(rawBody, r.rows[0].secret, crypto.randomUUID()) });
});

/* The tutorial's POST /events handler for one event {type, data}; returns the event row. */
async function ingest(type, payload) {
    const result = await pool.query(
        'INSERT INTO events (type, payload) VALUES ($1, $2) RETURNING *', [type, payload]);
    const eventRow = result.rows[0];
    // Find all matching webhooks
    const webhooksResult = await pool.query(
        'SELECT * FROM webhooks WHERE $1 = ANY(event_types) OR $2 = ANY(event_types)',
        [type, type.split('.')[0] + '.*']);
    // Create delivery records and enqueue jobs
    for (const webhook of webhooksResult.rows) {
        const deliveryId = crypto.randomUUID();
        await pool.query(
            'INSERT INTO deliveries (id, webhook_id, event_id, status) VALUES ($1, $2, $3, $4)',
            [deliveryId, webhook.id, eventRow.id, 'pending']);
        await deliveryQueue.add({
            delivery_id: deliveryId,
            webhook_id: webhook.id,
            event_id: eventRow.id,
            webhook_url: webhook.url,
            webhook_secret: webhook.secret,
            payload: payload,
            attempt: 0,
            timeout_ms: webhook.timeout_ms,
        }, { attempts: webhook.max_retries + 1 });
    }
    return eventRow;
}

/* True when e is an event object with a string type. */
function validEvent(e) {
    return e && typeof e === 'object' && typeof e.type === 'string' && e.type.length > 0;
}

app.post('/api/webhook/v1/events', async (req, res) => {
    if (!validEvent(req.body)) return res.status(422).json({ error: 'type is required' });
    res.status(201).json(await ingest(req.body.type, req.body.data ?? req.body.payload ?? {}));
});

app.post('/api/webhook/v1/events/batch', async (req, res) => {
    const events = req.body && req.body.events;
    if (!Array.isArray(events) || !events.every(validEvent))
        return res.status(422).json({ error: 'events: an array of {type, data}' });
    for (const e of events) await ingest(e.type, e.data ?? e.payload ?? {});
    res.status(201).json({ count: events.length });
});

app.use((err, req, res, next) => {
    console.error(err);
    const status = err.status && err.status < 500 ? err.status : 500;
    res.status(status).json({ error: String(err.message) });
});

async function main() {
    await pool.query(SCHEMA);
    const server = app.listen(parseInt(process.env.PORT, 10), '127.0.0.1');
    server.keepAliveTimeout = 60000;
    process.on('SIGTERM', () => {
        server.close(async () => {
            await deliveryQueue.close();
            await pool.end();
            process.exit(0);
        });
        server.closeAllConnections();
    });
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});
