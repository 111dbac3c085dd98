/*
 * queue.js: the reference stack's shared parts (bench/reference/, the benchmark's comparison
 * with the seed tutorial's design: Node + Express + Bull + Redis + PostgreSQL, as its module 03
 * writes it). The Bull queue `delivery` (src/queue/deliveryQueue.ts of the tutorial), the
 * PostgreSQL pool (src/db/pool.ts), and signPayload (the worker's HMAC-SHA256 of the JSON body,
 * hex, sent as `X-Webhook-Signature: sha256=<hex>` with `X-Delivery-ID`).
 *
 * Tuned fairly, as the benchmark issue asks, and nothing else changed: the retries use Bull's
 * own backoff with the tutorial's delays (1, 4, 16, 64, 256 s; 5 retries) instead of the
 * tutorial's hand-made re-add (`throw job.queue.add(...)`, which also never increments
 * `attempt`), completed jobs are removed from Redis (Bull keeps them by default: Redis would
 * grow by one hash per delivery), and the pool size comes from REF_PG_POOL (pg's default is 10).
 *
 * Environment: PG_URL, REDIS_URL (redis://host:port[/db]), REF_PG_POOL.
 */
'use strict';
const crypto = require('crypto');
const Queue = require('bull');
const { Pool } = require('pg');

const BACKOFF_DELAYS = [1000, 4000, 16000, 64000, 256000]; // ms, the tutorial's
const MAX_RETRIES = 5;

const redisUrl = new URL(process.env.REDIS_URL || 'redis://127.0.0.1:6379');

/* The queue, with the tutorial's schedule as a Bull backoff strategy: the delay before retry
 * n (n = 1..MAX_RETRIES) is BACKOFF_DELAYS[n - 1]. */
const deliveryQueue = new Queue('delivery', {
    redis: {
        host: redisUrl.hostname,
        port: parseInt(redisUrl.port || '6379', 10),
        db: parseInt(redisUrl.pathname.slice(1) || '0', 10),
    },
    defaultJobOptions: {
        attempts: MAX_RETRIES + 1,
        backoff: { type: 'tutorial' },
        removeOnComplete: true,
    },
    settings: {
        backoffStrategies: {
            tutorial: (attemptsMade) => BACKOFF_DELAYS[Math.min(attemptsMade, MAX_RETRIES) - 1],
        },
    },
});

const pool = new Pool({
    connectionString: process.env.PG_URL,
    max: parseInt(process.env.REF_PG_POOL || '10', 10),
});

/* HMAC-SHA256 of body (the exact bytes sent) with the webhook's secret, as hex. */
function signPayload(body, secret) {
    return crypto.createHmac('sha256', secret).update(body).digest('hex');
}

/* The headers a delivery sends (the tutorial's three). */
function deliveryHeaders(body, secret, deliveryId) {
    return {
        'Content-Type': 'application/json',
        'X-Webhook-Signature': `sha256=${signPayload(body, secret)}`,
        'X-Delivery-ID': deliveryId,
    };
}

module.exports = { deliveryQueue, pool, deliveryHeaders, BACKOFF_DELAYS, MAX_RETRIES };
