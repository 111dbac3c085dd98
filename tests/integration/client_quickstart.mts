/*
 * client_quickstart.mts: README's quick start ("First webhook in one minute") done by a client
 * generated from hookd's OpenAPI document, for tests/integration/test_openapi_client.py.
 *
 * The test generates ./hookd-api.d.ts beside this file with openapi-typescript from GET
 * /api/webhook/openapi/json of a running hookd, type-checks this file against it (tsc --strict:
 * every request body, path, query and field read here must be what the document describes) and
 * runs it with Node. It uses openapi-fetch, typed by the generated `paths`, with the API key of
 * HOOKD_KEY against HOOKD_BASE: create a webhook for RECEIVER_URL, ingest an event, wait until
 * its delivery succeeded, list the webhook's deliveries, search them by event, read the
 * delivery, and make one invalid create (422, the documented Error). It prints one JSON object:
 * {"calls": [{method, path, status, body}, ...], ...the ids}, so that the test checks every
 * answer against the document's schema for that status at run time too. Any unexpected answer
 * throws (exit 1).
 */
import createClient from "openapi-fetch";
import type { components, paths } from "./hookd-api";

/* Node's globals this file uses (no @types/node in the tree). */
declare const process: {
    env: Record<string, string | undefined>;
    stdout: { write(s: string): boolean };
    exitCode: number | undefined;
};

type Webhook = components["schemas"]["Webhook"];
type Delivery = components["schemas"]["Delivery"];
type ApiError = components["schemas"]["Error"];

function env(name: string): string {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
}

const base = env("HOOKD_BASE");
const key = env("HOOKD_KEY");
const receiverUrl = env("RECEIVER_URL");
const timeoutMs = Number(process.env.TIMEOUT_MS ?? "15000");

interface Call {
    method: string;
    path: string;
    status: number;
    body: unknown;
}
const calls: Call[] = [];

const client = createClient<paths>({ baseUrl: base, headers: { "x-api-key": key } });
// every answer is recorded with its documented path (the template), for the schema check
client.use({
    async onResponse({ request, response, schemaPath }) {
        const body: unknown = await response.clone().json();
        calls.push({ method: request.method.toLowerCase(), path: schemaPath, status: response.status, body });
        return undefined;
    },
});

function fail(what: string, status: number, error: unknown): never {
    throw new Error(`${what}: ${status} ${JSON.stringify(error)}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// 1. a webhook for the receiver (README: name, url, events, rateLimitEnabled)
const created = await client.POST("/api/webhook/v1", {
    body: { name: "demo", url: receiverUrl, events: ["order.*"], rateLimitEnabled: false },
});
if (!created.data) fail("create webhook", created.response.status, created.error);
const webhook: Webhook = created.data;
if (created.response.status !== 201 || !webhook.secret.startsWith("whsec_"))
    fail("create webhook", created.response.status, webhook);

// 2. an event
const ingested = await client.POST("/api/webhook/v1/events", {
    body: { type: "order.paid", data: { order: 42 } },
});
if (!ingested.data) fail("ingest", ingested.response.status, ingested.error);
const event = ingested.data;
if (ingested.response.status !== 202 || event.deliveries !== 1 || event.duplicate)
    fail("ingest", ingested.response.status, event);

// 3. its delivery succeeds: the webhook's deliveries, until the one of this event is a success
let delivered: Delivery | undefined;
for (const start = Date.now(); !delivered; await sleep(100)) {
    const list = await client.GET("/api/webhook/v1/{id}/deliveries", {
        params: { path: { id: webhook.id }, query: { limit: 10 } },
    });
    if (!list.data) fail("list deliveries", list.response.status, list.error);
    delivered = list.data.deliveries.find((d) => d.webhookEventId === event.id && d.status === "success");
    if (!delivered && Date.now() - start > timeoutMs)
        fail("delivery never succeeded", list.response.status, list.data);
}
const attempt = delivered.attempts[0];
if (!attempt || attempt.responseStatus !== 200 || delivered.attemptNumber !== 1)
    fail("delivery", 200, delivered);

// 4. the organization's deliveries of this event, and the delivery itself
const search = await client.GET("/api/webhook/v1/deliveries", {
    params: { query: { eventId: event.id, limit: 5 } },
});
if (!search.data) fail("search deliveries", search.response.status, search.error);
if (search.data.deliveries.length !== 1 || search.data.deliveries[0]?.id !== delivered.id)
    fail("search deliveries", search.response.status, search.data);
const one = await client.GET("/api/webhook/v1/deliveries/{id}", {
    params: { path: { id: delivered.id } },
});
if (!one.data) fail("read delivery", one.response.status, one.error);
if (one.data.requestBody?.data.order !== 42 || one.data.requestBody.type !== "order.paid")
    fail("read delivery", one.response.status, one.data);

// 5. a refused create answers the documented Error
const refused = await client.POST("/api/webhook/v1", {
    body: { name: "demo", url: receiverUrl, events: [] },
});
if (refused.data || refused.response.status !== 422) fail("empty events", refused.response.status, refused.data);
const err: ApiError = refused.error;
if (err.code !== "validation_failed" || !err.message || !err.fix) fail("empty events", 422, err);

process.stdout.write(
    JSON.stringify({ calls, webhookId: webhook.id, eventId: event.id, deliveryId: delivered.id }) + "\n",
);
