/*
 * render.c: the JSON shapes of the API's resources (camelCase, SPEC §2 fields). Stored JSON
 * (custom headers, filters, payloads, header maps) is copied in as raw JSON, not re-encoded;
 * response header maps (written from an endpoint's answer) are parsed first, to be sure.
 * Response bodies are text (delivery/capture.h) and escaped like every string.
 */
#include <string.h>

#include "api/api.h"
#include "core/crypto.h"
#include "core/time.h"
#include "delivery/capture.h"
#include "delivery/sign.h"
#include "store/job.h"

/* "whsec_…" + the last characters of the secret: enough to tell secrets apart, nothing to sign
 * with. At most 4 characters are shown, and never more than a quarter of the secret's own
 * characters (after a "whsec_" prefix, which is not secret): an 8-character secret shows 2,
 * "whsec_abc" shows none. */
static void masked(hk_jw *w, const char *secret)
{
    char out[32];
    const char *s = secret ? secret : "";
    if (strncmp(s, "whsec_", 6) == 0) s += 6;
    size_t n = strlen(s), shown = HK_MIN(n / 4, (size_t)4);
    snprintf(out, sizeof out, "whsec_\xe2\x80\xa6%s", s + n - shown);
    hk_jw_str(w, out);
}

static void raw_or_null(hk_jw *w, const char *key, const char *json)
{
    if (json && *json)
        hk_jw_kraw(w, key, json, strlen(json));
    else
        hk_jw_knull(w, key);
}

/* A stored map of response headers: an endpoint's answer, so checked before it is copied in
 * (a row written before hookd sanitized captures may hold a cut-off object): anything but a
 * JSON object within the capture's bounds is shown as null. */
static void headers_or_null(hk_jw *w, const char *key, const char *json)
{
    hk_jdoc doc;
    memset(&doc, 0, sizeof doc);
    size_t n = json ? strlen(json) : 0;
    if (n && hk_json_parse(&doc, json, n, 2 * HK_CAPTURE_HEADER_LINES + 1, 2) == 0 &&
        hk_json_type(&doc, 0) == HK_J_OBJECT)
        hk_jw_kraw(w, key, json, n);
    else
        hk_jw_knull(w, key);
    hk_json_free(&doc);
}

void hk_render_webhook(hk_jw *w, const hk_webhook *wh, int secret_mode)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", wh->id);
    hk_jw_kstr(w, "name", wh->name);
    hk_jw_kstr(w, "url", wh->url);
    hk_jw_key(w, "secret");
    if (secret_mode)
        hk_jw_str(w, wh->secret);
    else
        masked(w, wh->secret);
    hk_jw_kstr(w, "organizationId", wh->org_id);
    hk_jw_kstr(w, "userId", wh->user_id);
    hk_jw_kstr(w, "status", hk_wh_status_name(wh->status));
    hk_jw_key(w, "events");
    hk_jw_arr_open(w);
    for (int i = 0; i < wh->nevents; i++) hk_jw_str(w, wh->events[i]);
    hk_jw_arr_close(w);
    raw_or_null(w, "customHeaders", wh->custom_headers);
    hk_jw_kbool(w, "rateLimitEnabled", wh->rate_limit_enabled);
    hk_jw_kint(w, "maxRequestsPerMinute", wh->max_per_minute);
    hk_jw_kint(w, "maxRetries", wh->max_retries);
    raw_or_null(w, "filteringOptions", wh->filtering_options);
    hk_jw_key(w, "signatureSchemes");
    hk_jw_arr_open(w);
    for (unsigned b = 1; b <= HK_SIG_LAST; b <<= 1)
        if (wh->schemes & b) hk_jw_str(w, hk_sig_scheme_name(b));
    hk_jw_arr_close(w);
    if (wh->prev_secret && wh->prev_secret_expires_at)
        hk_jw_ktime(w, "previousSecretExpiresAt", wh->prev_secret_expires_at);
    /* Ed25519: the public keys only; the private key never leaves the store and the dispatcher */
    char pk[HK_ED25519_TEXT_LEN];
    if (wh->signing_key && hk_ed25519_public_text(wh->signing_key, pk) == 0)
        hk_jw_kstr(w, "publicKey", pk);
    else
        hk_jw_knull(w, "publicKey");
    if (wh->prev_signing_key && wh->prev_signing_key_expires_at > hk_now_ms() &&
        hk_ed25519_public_text(wh->prev_signing_key, pk) == 0) {
        hk_jw_kstr(w, "previousPublicKey", pk);
        hk_jw_ktime(w, "previousPublicKeyExpiresAt", wh->prev_signing_key_expires_at);
    }
    /* the delivery policy: null = the global HOOKD_RETRY_SCHEDULE / HOOKD_HTTP_TIMEOUT_MS */
    hk_jw_key(w, "retrySchedule");
    if (wh->retry_schedule) {
        hk_jw_arr_open(w);
        for (const char *p = wh->retry_schedule; *p;) {
            size_t n = strcspn(p, ",");
            hk_jw_strn(w, p, n);
            p += n + (p[n] == ',');
        }
        hk_jw_arr_close(w);
    } else {
        hk_jw_null(w);
    }
    if (wh->timeout_ms > 0)
        hk_jw_kint(w, "timeoutMs", wh->timeout_ms);
    else
        hk_jw_knull(w, "timeoutMs");
    hk_jw_kstr(w, "ordering", wh->fifo ? "fifo" : "parallel");
    hk_jw_ktime(w, "lastTriggeredAt", wh->last_triggered_at);
    hk_jw_kint(w, "successCount", wh->success_count);
    hk_jw_kint(w, "failureCount", wh->failure_count);
    hk_jw_kint(w, "consecutiveFailures", wh->consecutive_failures);
    hk_jw_ktime(w, "createdAt", wh->created_at);
    hk_jw_ktime(w, "updatedAt", wh->updated_at);
    hk_jw_obj_close(w);
}

static void render_attempt(hk_jw *w, const hk_attempt *a)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", a->id);
    hk_jw_kint(w, "attemptNumber", a->attempt_number);
    hk_jw_kstr(w, "status", hk_dl_status_name(a->status));
    if (a->response_status)
        hk_jw_kint(w, "responseStatus", a->response_status);
    else
        hk_jw_knull(w, "responseStatus");
    hk_jw_kstr(w, "responseBody", a->response_body);
    headers_or_null(w, "responseHeaders", a->response_headers);
    hk_jw_kint(w, "durationMs", a->duration_ms);
    hk_jw_kstr(w, "errorMessage", a->error_message);
    hk_jw_ktime(w, "createdAt", a->created_at);
    hk_jw_obj_close(w);
}

void hk_render_delivery(hk_jw *w, const hk_delivery *d)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", d->id);
    hk_jw_kstr(w, "webhookId", d->webhook_id);
    hk_jw_kstr(w, "webhookEventId", d->event_id);
    hk_jw_kstr(w, "replayOfDeliveryId", d->replay_of[0] ? d->replay_of : NULL);
    hk_jw_kstr(w, "eventType", d->event_type);
    raw_or_null(w, "eventData", d->event_data);
    hk_jw_kstr(w, "status", hk_dl_status_name(d->status));
    hk_jw_kstr(w, "requestUrl", d->request_url);
    raw_or_null(w, "requestHeaders", d->request_headers);
    hk_jw_key(w, "requestBody");
    if (d->event_data && d->event_type) {
        hk_blob *b = hk_envelope_render(d->event_id, d->event_type, d->event_created_at,
                                        d->event_data, strlen(d->event_data));
        hk_jw_raw(w, b->data, b->len);
        hk_blob_unref(b);
    } else {
        hk_jw_null(w);
    }
    if (d->response_status)
        hk_jw_kint(w, "responseStatus", d->response_status);
    else
        hk_jw_knull(w, "responseStatus");
    hk_jw_kstr(w, "responseBody", d->response_body);
    headers_or_null(w, "responseHeaders", d->response_headers);
    hk_jw_kint(w, "attemptNumber", d->attempt_number);
    hk_jw_kint(w, "maxAttempts", d->max_attempts);
    hk_jw_ktime(w, "nextRetryAt", d->next_retry_at);
    hk_jw_ktime(w, "lastAttemptAt", d->last_attempt_at);
    hk_jw_kstr(w, "errorMessage", d->error_message);
    hk_jw_ktime(w, "completedAt", d->completed_at);
    if (d->last_attempt_at)
        hk_jw_kint(w, "durationMs", d->duration_ms);
    else
        hk_jw_knull(w, "durationMs");
    hk_jw_ktime(w, "createdAt", d->created_at);
    hk_jw_key(w, "attempts");
    hk_jw_arr_open(w);
    for (int i = 0; i < d->nattempts; i++) render_attempt(w, &d->attempts[i]);
    hk_jw_arr_close(w);
    hk_jw_obj_close(w);
}

void hk_render_event(hk_jw *w, const hk_event *e, int with_deliveries)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", e->id);
    hk_jw_kstr(w, "type", e->type);
    raw_or_null(w, "data", e->payload);
    hk_jw_kstr(w, "source", e->source);
    hk_jw_kstr(w, "idempotencyKey", e->idempotency_key);
    hk_jw_kstr(w, "organizationId", e->org_id);
    hk_jw_kstr(w, "userId", e->user_id);
    hk_jw_ktime(w, "createdAt", e->created_at);
    if (with_deliveries) {
        hk_jw_key(w, "deliveries");
        hk_jw_arr_open(w);
        for (int i = 0; i < e->ndeliveries; i++) {
            hk_jw_obj_open(w);
            hk_jw_kstr(w, "id", e->deliveries[i].id);
            hk_jw_kstr(w, "webhookId", e->deliveries[i].webhook_id);
            hk_jw_kstr(w, "status", hk_dl_status_name(e->deliveries[i].status));
            hk_jw_obj_close(w);
        }
        hk_jw_arr_close(w);
    }
    hk_jw_obj_close(w);
}

void hk_render_org(hk_jw *w, const hk_org *o)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", o->id);
    hk_jw_kstr(w, "name", o->name ? o->name : o->id);
    if (o->metadata && *o->metadata)
        hk_jw_kraw(w, "metadata", o->metadata, strlen(o->metadata));
    else
        hk_jw_kraw(w, "metadata", "{}", 2);
    hk_jw_kbool(w, "disabled", o->disabled);
    hk_jw_ktime(w, "createdAt", o->created_at);
    hk_jw_ktime(w, "updatedAt", o->updated_at);
    hk_jw_obj_close(w);
}

void hk_render_apikey(hk_jw *w, const hk_apikey *k, const char *plaintext)
{
    hk_jw_obj_open(w);
    hk_jw_kstr(w, "id", k->id);
    if (k->org_id && *k->org_id)
        hk_jw_kstr(w, "organizationId", k->org_id);
    else
        hk_jw_knull(w, "organizationId"); /* an admin key */
    if (k->name)
        hk_jw_kstr(w, "name", k->name);
    else
        hk_jw_knull(w, "name");
    hk_jw_kstr(w, "prefix", k->prefix ? k->prefix : "");
    hk_jw_kstr(w, "scope", hk_scope_name(k->scope));
    if (plaintext) hk_jw_kstr(w, "key", plaintext);
    hk_jw_ktime(w, "createdAt", k->created_at);
    if (k->revoked_at)
        hk_jw_ktime(w, "revokedAt", k->revoked_at);
    else
        hk_jw_knull(w, "revokedAt");
    hk_jw_obj_close(w);
}

void hk_render_paging(hk_jw *w, int64_t total, int capped, int page, int limit, int more,
                      int64_t last_at, const char *last_id)
{
    hk_jw_kint(w, "total", total);
    hk_jw_kbool(w, "totalCapped", capped);
    hk_jw_kint(w, "page", page);
    hk_jw_kint(w, "limit", limit);
    if (more && last_id) {
        char cur[HK_CURSOR_MAX];
        hk_cursor_encode(last_at, last_id, cur);
        hk_jw_kstr(w, "next", cur);
    } else {
        hk_jw_knull(w, "next");
    }
}
