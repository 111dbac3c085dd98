/*
 * match.h: which webhooks an event goes to, and what they receive.
 *
 * Event types match [A-Za-z0-9_.-]{1,255}. A subscription is a type or a pattern: the same
 * characters where a whole dot-separated segment may be `*`, standing for exactly one segment
 * ("email.*" matches "email.bounced", not "email" nor "email.a.b"); a lone "*" matches every
 * type but the reserved ones below.
 *
 * Reserved types: hookd's own operational events (src/store/opevents.h, docs/API.md
 * "Operational events") have types starting with "hookd.", which ingest refuses. Only a
 * subscription whose first segment is literally "hookd" matches them: "hookd.*" matches every
 * one of them (whatever their depth), "hookd.webhook.*" and exact types as usual; "*" and
 * patterns starting with a "*" segment never do, so webhooks subscribed to everything before
 * operational events existed do not get new traffic.
 *
 * filteringOptions (SPEC §3), stored as compact JSON:
 *   {"matchConditions": {k: v, ...}}  the event is delivered only if every top-level key k of
 *                                      the event's data equals v (hk_json_equal semantics;
 *                                      of duplicate keys the last counts, as receivers read it)
 *                                      (excludeFields removes every occurrence)
 *   {"excludeFields": [k, ...]}        those top-level keys are removed from data before sending
 * Both may be present; no other key is allowed.
 */
#ifndef HK_MATCH_H
#define HK_MATCH_H

#include <stddef.h>

#include "core/buf.h"
#include "core/json.h"

#define HK_EVENT_TYPE_MAX        255
#define HK_FILTER_MAX_EXCLUDE    64
#define HK_FILTER_MAX_CONDITIONS 64

/* 1 if s is a valid event type, else 0. */
int hk_event_type_valid(const char *s);
/* 1 if s is a valid subscription (type or pattern), else 0. */
int hk_pattern_valid(const char *s);
/* 1 if s starts with the reserved prefix "hookd." (hookd's operational events), else 0. */
int hk_event_type_reserved(const char *s);
/* 1 if the valid pattern matches the valid event type, else 0 (see the reserved types above). */
int hk_pattern_match(const char *pattern, const char *type);

typedef struct hk_filter {
    char *match_json;  /* compact JSON object of matchConditions, or NULL */
    hk_jdoc match_doc; /* parsed match_json (valid only if match_json) */
    char **exclude;    /* excluded top-level keys */
    int nexclude;
} hk_filter;

/* Validates filteringOptions given as JSON text (an object; `null` or "{}" means no filter)
 * and prepares f. On invalid input returns HK_EINVAL with err saying which part is wrong
 * ("filteringOptions.excludeFields must be an array of strings"). f must be released with
 * hk_filter_free whatever the result. */
int hk_filter_parse(const char *json, size_t len, hk_filter *f, char *err, size_t errlen);
void hk_filter_free(hk_filter *f);

/* Writes the canonical compact form of a valid filter (for storage) to out: keys in the order
 * matchConditions, excludeFields; absent parts omitted; "{}" for an empty filter. */
int hk_filter_canonical(const hk_filter *f, hk_buf *out);

/* 1 if the object at data_tok passes f's matchConditions (always 1 with none), else 0. */
int hk_filter_matches(const hk_filter *f, const hk_jdoc *data, int data_tok);

/* 1 if f removes any field at all (so the body differs from the event's), else 0. */
static inline int hk_filter_excludes(const hk_filter *f)
{
    return f->nexclude > 0;
}

/* Appends the compact JSON of the object at data_tok without f's excluded top-level keys. */
int hk_filter_apply_exclude(const hk_filter *f, const hk_jdoc *data, int data_tok, hk_buf *out);

#endif
