/*
 * worker.js: the reference stack's delivery process (bench/reference/: the seed tutorial's
 * src/worker/deliveryWorker.ts; see queue.js). Takes jobs from the Bull queue `delivery`, 50 at
 * a time (REF_CONCURRENCY; the tutorial's process() has 1), and for each: marks the delivery
 * `processing`, POSTs the payload signed with HMAC-SHA256 through axios (a
 * keep-alive agent of up to REF_CONCURRENCY sockets), and marks it `success`. A failure (an
 * error, a timeout, a non-2xx answer) records `pending` with the error and the next retry time
 * and throws, so Bull retries it after the tutorial's delay; the last one (the webhook's
 * max_retries + 1 attempts, 6 by default) records `failed`. The timeout is the webhook's
 * timeout_ms (the tutorial's 10 s by default).
 * SIGTERM closes the queue (letting jobs in flight finish) and the pool, and exits 0.
 *
 * Environment: PG_URL, REDIS_URL, REF_PG_POOL (queue.js), REF_CONCURRENCY (50).
 */
'use strict';
const http = require('http');
const https = require('https');
const axios = require('axios');
const { deliveryQueue, pool, deliveryHeaders, BACKOFF_DELAYS } = require('./queue');

const CONCURRENCY = parseInt(process.env.REF_CONCURRENCY || '50', 10);
const agentOpts = { keepAlive: true, maxSockets: CONCURRENCY };
const client = axios.create({
    httpAgent: new http.Agent(agentOpts),
    httpsAgent: new https.Agent(agentOpts),
    timeout: 10000,
    maxRedirects: 0,
    validateStatus: () => true,
});

deliveryQueue.process(CONCURRENCY, async (job) => {
    const { delivery_id, webhook_url, webhook_secret, payload, timeout_ms } = job.data;
    const attempt = job.attemptsMade; // 0 on the first try
    try {
        // Update status to processing
        await pool.query('UPDATE deliveries SET status = $1 WHERE id = $2',
                         ['processing', delivery_id]);
        // Sign and send
        const body = JSON.stringify(payload);
        const response = await client.post(webhook_url, body, {
            headers: deliveryHeaders(body, webhook_secret, delivery_id),
            timeout: timeout_ms || 10000,
        });
        if (response.status >= 200 && response.status < 300) {
            await pool.query(
                'UPDATE deliveries SET status = $1, attempts = $2, updated_at = NOW() ' +
                    'WHERE id = $3',
                ['success', attempt + 1, delivery_id]);
            return { success: true };
        }
        throw new Error(`HTTP ${response.status}`);
    } catch (error) {
        const errorMsg = error instanceof Error ? error.message : String(error);
        if (attempt + 1 >= job.opts.attempts) {
            // Permanent failure (the tutorial's module 04 moves it to a dead-letter queue)
            await pool.query(
                'UPDATE deliveries SET status = $1, attempts = $2, last_error = $3, ' +
                    'updated_at = NOW() WHERE id = $4',
                ['failed', attempt + 1, errorMsg, delivery_id]);
        } else {
            await pool.query(
                'UPDATE deliveries SET status = $1, attempts = $2, last_error = $3, ' +
                    'next_retry_at = $4, updated_at = NOW() WHERE id = $5',
                ['pending', attempt + 1, errorMsg, new Date(Date.now() + BACKOFF_DELAYS[attempt]),
                 delivery_id]);
        }
        throw error; // Bull retries it after BACKOFF_DELAYS[attempt] (queue.js)
    }
});

process.on('SIGTERM', async () => {
    await deliveryQueue.close();
    await pool.end();
    process.exit(0);
});
console.log('Webhook delivery worker started');
