/*
 * kumomta.h: what a message from the NATS bus means as a hookd event (SPEC §5). Pure functions
 * of (subject, body): no I/O, no state, so every rule is unit-tested (tests/unit/test_kumomta.c)
 * and nats.c only moves messages.
 *
 *   kumomta.event*     a KumoMTA log record: its `type` picks the event type (Delivery ->
 *                      email.delivered, Bounce/AdminBounce/OOB -> email.bounced,
 *                      TransientFailure -> email.delivery_delayed, Feedback -> email.complained,
 *                      Expiration -> email.failed; the other KumoMTA record types are ignored),
 *                      the organization is headers["X-Org-ID"], data is
 *                      {"email_id","from","to","subject","status","error"?} and the idempotency
 *                      key is <org>:<type>:<email_id>:<record type>:<record id>. Source "kumomta".
 *   webhook.triggered  {"event":T,"payload":{...},"organizationId":O}. Source "nats".
 *   anything else      {"type"?,"data"?,"organizationId",...}: type defaults to the subject, data
 *                      to the whole body without organizationId. Source "nats".
 * Both non-KumoMTA forms also take an optional "idempotencyKey" and "userId" (strings, as in the
 * HTTP API). "kumomta.event*" means every subject that starts with "kumomta.event".
 */
#ifndef HK_KUMOMTA_H
#define HK_KUMOMTA_H

#include <stddef.h>

#include "core/buf.h"
#include "core/json.h"

#define HK_BUS_ORG_MAX 128 /* organization ids: [A-Za-z0-9_.:-]{1,128}, as API keys' */
#define HK_BUS_KEY_MAX 255 /* idempotency keys: 1..255 bytes, no control characters */

/* What became of a message. */
enum hk_bus_verdict {
    HK_BUS_EVENT = 0,   /* an event: *out is filled */
    HK_BUS_IGNORED = 1, /* a valid message hookd has no event for (a KumoMTA Reception record) */
    HK_BUS_BAD = 2,     /* malformed: bad JSON, no organization, unknown record type, ... */
};

typedef struct hk_bus_event {
    int source;     /* HK_SRC_NATS or HK_SRC_KUMOMTA (core/metrics.h) */
    char *org;      /* organization id (owned) */
    char *type;     /* event type, valid per hk_event_type_valid (owned) */
    hk_buf data;    /* the event's data: a compact JSON object */
    char *idem_key; /* idempotency key, or NULL (owned) */
    char *user_id;  /* or NULL (owned) */
} hk_bus_event;

/* Starts an empty event (nothing allocated). */
void hk_bus_event_init(hk_bus_event *e);
/* Frees what e holds and leaves it empty, ready for reuse. */
void hk_bus_event_free(hk_bus_event *e);

/* Maps one bus message. subject is the NATS subject, body[0..len) the payload (any bytes).
 * Returns HK_BUS_EVENT with *out filled (out must be empty: hk_bus_event_init), or
 * HK_BUS_IGNORED / HK_BUS_BAD with a one-line reason in why (no secrets, at most whylen
 * bytes) and *out left empty. */
int hk_bus_map(const char *subject, const char *body, size_t len, hk_bus_event *out, char *why,
               size_t whylen);

/* The KumoMTA rule alone, on a parsed record (token 0 is its root). Same contract. */
int hk_kumo_map(const hk_jdoc *doc, hk_bus_event *out, char *why, size_t whylen);

/* 1 if subject falls under the KumoMTA rule ("kumomta.event" and everything after it). */
int hk_bus_is_kumomta_subject(const char *subject);

/* 1 if s is a valid organization id ([A-Za-z0-9_.:-]{1,128}), else 0. */
int hk_bus_org_valid(const char *s);

/* 1 if s can be used as an idempotency key as is (1..255 bytes, no control character). */
int hk_bus_key_valid(const char *s);

/* Sets *key (owned; freed first) to s if it is a valid key, else to "sha256:" + the hex digest
 * of s, so that any string names the same event every time it is seen. */
void hk_bus_key_set(char **key, const char *s);

/* 1 if the NATS subject matches the NATS subscription pattern (`*` = one token, `>` = one or
 * more trailing tokens), else 0. Used to keep only the configured subjects of a stream. */
int hk_nats_subject_match(const char *pattern, const char *subject);

#endif
