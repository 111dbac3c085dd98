/*
 * fanout.c: which of an organization's webhooks an event goes to, and with what data. An
 * organization's candidate webhooks are loaded through the backend's org_webhooks op and kept
 * across transactions while the organization's version does not move (rows.c's fan-out cache);
 * hk_fanout_targets runs for every event of that organization (rows.c's hk_ingest_event).
 *
 * The pattern index makes an event's cost follow the webhooks that could match it, not all of
 * the organization's (match.h has the pattern rules). Each subscription goes to one list:
 *  - an exact type (no `*` segment): a hash from the type (it matches that type only);
 *  - "*": every type but the reserved ones; "hookd.*": every reserved type;
 *  - only `*` segments, n of them (n >= 2): the types of n segments, reserved ones excepted;
 *  - else (a `*` and a literal segment): a hash from (segments, position, text) of its LAST
 *    literal segment, probed for each segment of the event's type.
 * Each list gives a superset of the webhooks that match through it; the candidates (repeats
 * removed, in the organization's order) are then checked with hk_pattern_match as before, so
 * the result equals the linear match exactly (tests/unit/test_fanout_index.c). A bucket holds
 * the wildcard patterns that share a segment count and last literal segment: the one case that
 * still costs one check per pattern.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "core/log.h"
#include "core/map.h"
#include "store/match.h"
#include "store/backend.h"

/* One list of webhook indexes (into o->whs), keyed by key[] in its map. */
typedef struct plist {
    int *v;
    int n, cap;
    char key[]; /* the map's key: kept here, valid as long as the list */
} plist;

typedef struct hk_patidx {
    hk_map exact; /* type -> plist */
    hk_map wild;  /* "<segments>:<position>:<text>" and "<segments>:*" -> plist */
    plist *star, *reserved;
    plist **all; /* every plist made, to free them */
    int nall, allcap;
    int built_n;    /* o->n when built */
    uint32_t *seen; /* per webhook: the query that listed it last */
    uint32_t query;
    int *cand; /* the current query's candidates */
    int ncand, candcap;
} hk_patidx;

static plist *plist_new(hk_patidx *x, const char *key)
{
    size_t kl = strlen(key);
    plist *l = hk_calloc(1, sizeof *l + kl + 1);
    memcpy(l->key, key, kl + 1);
    if (x->nall == x->allcap) {
        x->allcap = x->allcap ? x->allcap * 2 : 16;
        x->all = hk_realloc(x->all, sizeof *x->all * (size_t)x->allcap);
    }
    x->all[x->nall++] = l;
    return l;
}

static void plist_add(plist *l, int wi)
{
    if (l->n && l->v[l->n - 1] == wi) return; /* two patterns of one webhook */
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->v = hk_realloc(l->v, sizeof *l->v * (size_t)l->cap);
    }
    l->v[l->n++] = wi;
}

static plist *bucket(hk_patidx *x, hk_map *m, const char *key)
{
    plist *l = hk_map_get(m, key);
    if (!l) {
        l = plist_new(x, key);
        hk_map_put(m, l->key, l);
    }
    return l;
}

/* The key of a wildcard bucket: segment count, position and text of a literal segment. */
static void wild_key(char *buf, size_t n, int nseg, int pos, const char *seg, size_t len)
{
    snprintf(buf, n, "%d:%d:%.*s", nseg, pos, (int)len, seg);
}

/* Files pattern p of webhook wi. */
static void index_pattern(hk_patidx *x, const char *p, int wi)
{
    char key[HK_EVENT_TYPE_MAX + 32];
    if (strcmp(p, "*") == 0) {
        if (!x->star) x->star = plist_new(x, "*");
        plist_add(x->star, wi);
        return;
    }
    if (strcmp(p, "hookd.*") == 0) {
        if (!x->reserved) x->reserved = plist_new(x, "hookd.*");
        plist_add(x->reserved, wi);
        return;
    }
    int nseg = 0, stars = 0, lpos = -1;
    const char *lseg = NULL;
    size_t llen = 0;
    for (const char *s = p;;) {
        const char *e = strchr(s, '.');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 1 && s[0] == '*') {
            stars++;
        } else {
            lpos = nseg;
            lseg = s;
            llen = len;
        }
        nseg++;
        if (!e) break;
        s = e + 1;
    }
    if (!stars) {
        plist_add(bucket(x, &x->exact, p), wi);
    } else if (lpos < 0) {
        snprintf(key, sizeof key, "%d:*", nseg);
        plist_add(bucket(x, &x->wild, key), wi);
    } else {
        wild_key(key, sizeof key, nseg, lpos, lseg, llen);
        plist_add(bucket(x, &x->wild, key), wi);
    }
}

static void patidx_free(hk_patidx *x)
{
    if (!x) return;
    for (int i = 0; i < x->nall; i++) {
        free(x->all[i]->v);
        free(x->all[i]);
    }
    free(x->all);
    hk_map_free(&x->exact);
    hk_map_free(&x->wild);
    free(x->seen);
    free(x->cand);
    free(x);
}

static hk_patidx *patidx_build(const hk_fanout_org *o)
{
    hk_patidx *x = hk_calloc(1, sizeof *x);
    x->built_n = o->n;
    x->seen = hk_calloc((size_t)(o->n ? o->n : 1), sizeof *x->seen);
    for (int i = 0; i < o->n; i++)
        for (int k = 0; k < o->whs[i].wh->nevents; k++)
            index_pattern(x, o->whs[i].wh->events[k], i);
    return x;
}

/* Adds the webhooks of l (NULL: none) not listed yet in this query to the candidates. */
static void collect(hk_patidx *x, const plist *l)
{
    if (!l) return;
    for (int i = 0; i < l->n; i++) {
        int wi = l->v[i];
        if (x->seen[wi] == x->query) continue;
        x->seen[wi] = x->query;
        if (x->ncand == x->candcap) {
            x->candcap = x->candcap ? x->candcap * 2 : 16;
            x->cand = hk_realloc(x->cand, sizeof *x->cand * (size_t)x->candcap);
        }
        x->cand[x->ncand++] = wi;
    }
}

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Lists in x->cand, ascending, every webhook of o that may subscribe to type (a superset of
 * those that do). */
static void candidates(hk_fanout_org *o, const char *type)
{
    if (!o->idx || o->idx->built_n != o->n) {
        patidx_free(o->idx);
        o->idx = patidx_build(o);
    }
    hk_patidx *x = o->idx;
    x->ncand = 0;
    if (++x->query == 0) { /* wrapped: no stale mark may equal a new query */
        memset(x->seen, 0, sizeof *x->seen * (size_t)(o->n ? o->n : 1));
        x->query = 1;
    }
    char key[HK_EVENT_TYPE_MAX + 32];
    collect(x, hk_map_get(&x->exact, type));
    int nseg = 1;
    for (const char *c = type; *c; c++) nseg += *c == '.';
    if (hk_event_type_reserved(type)) {
        collect(x, x->reserved);
    } else {
        collect(x, x->star);
        snprintf(key, sizeof key, "%d:*", nseg);
        collect(x, hk_map_get(&x->wild, key));
    }
    int pos = 0;
    for (const char *s = type;; pos++) {
        const char *e = strchr(s, '.');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        wild_key(key, sizeof key, nseg, pos, s, len);
        collect(x, hk_map_get(&x->wild, key));
        if (!e) break;
        s = e + 1;
    }
    if (x->ncand > 1) qsort(x->cand, (size_t)x->ncand, sizeof *x->cand, cmp_int);
}

void hk_fanout_add(hk_fanout_org *o, hk_webhook *wh)
{
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 8;
        o->whs = hk_realloc(o->whs, sizeof(hk_fanout_wh) * (size_t)o->cap);
    }
    hk_fanout_wh *fw = &o->whs[o->n++];
    memset(fw, 0, sizeof *fw);
    fw->wh = wh;
    fw->filter_ok = 1;
    if (wh->filtering_options) {
        char err[160];
        if (hk_filter_parse(wh->filtering_options, strlen(wh->filtering_options), &fw->filter, err,
                            sizeof err)) {
            /* Stored filters were validated on the way in; an unreadable one is a bug or a
             * hand-edited row. Deliver everything rather than drop events silently. */
            HK_LOG(HK_LOG_ERROR, "fanout.bad_filter", HK_LS("webhook_id", wh->id),
                   HK_LS("msg", err));
            hk_filter_free(&fw->filter);
            memset(&fw->filter, 0, sizeof fw->filter);
            fw->filter_ok = 0;
        }
    }
}

int hk_fanout_take(hk_fanout_org *o, hk_webhook **whs, int n, int rc)
{
    for (int i = 0; i < n; i++) {
        if (rc)
            hk_webhook_free(whs[i]);
        else
            hk_fanout_add(o, whs[i]);
    }
    free(whs);
    return rc;
}

void hk_fanout_org_free(hk_fanout_org *o)
{
    for (int i = 0; i < o->n; i++) {
        hk_filter_free(&o->whs[i].filter);
        hk_webhook_free((hk_webhook *)o->whs[i].wh); /* owned: const only for its readers */
    }
    patidx_free(o->idx);
    free(o->whs);
    free(o->org_id);
    memset(o, 0, sizeof *o);
}

static int subscribed(const hk_webhook *wh, const char *type)
{
    for (int i = 0; i < wh->nevents; i++)
        if (hk_pattern_match(wh->events[i], type)) return 1;
    return 0;
}

int hk_fanout_targets(hk_fanout_org *o, const char *type, const char *data, size_t data_len,
                      hk_fanout_target **out)
{
    *out = NULL;
    hk_jdoc doc = {0};
    int parsed = 0, n = 0, rc = 0;
    hk_fanout_target *t = NULL;
    candidates(o, type);
    for (int c = 0; c < o->idx->ncand; c++) {
        hk_fanout_wh *fw = &o->whs[o->idx->cand[c]];
        const hk_webhook *wh = fw->wh;
        if (wh->deleted_at || wh->status == HK_WH_DISABLED) continue;
        if (!subscribed(wh, type)) continue;
        int needs_doc = fw->filter_ok && (fw->filter.match_json || fw->filter.nexclude);
        if (needs_doc && !parsed) {
            if (hk_json_parse(&doc, data, data_len, 1u << 24, HK_JSON_MAX_DEPTH_DEFAULT) ||
                hk_json_type(&doc, 0) != HK_J_OBJECT) {
                rc = HK_EINVAL;
                goto out;
            }
            parsed = 1;
        }
        if (needs_doc && !hk_filter_matches(&fw->filter, &doc, 0)) continue;
        t = hk_realloc(t, sizeof *t * (size_t)(n + 1));
        t[n].fw = fw;
        t[n].data = NULL;
        t[n].data_len = 0;
        if (needs_doc && hk_filter_excludes(&fw->filter)) {
            hk_buf b;
            hk_buf_init(&b, HK_BUF_UNLIMITED);
            hk_filter_apply_exclude(&fw->filter, &doc, 0, &b);
            t[n].data_len = b.len;
            t[n].data = hk_buf_steal(&b);
        }
        n++;
    }
out:
    hk_json_free(&doc);
    if (rc) {
        for (int i = 0; i < n; i++) free(t[i].data);
        free(t);
        return rc;
    }
    *out = t;
    return n;
}

int hk_fanout_check_caps(hk_req *req, int idx, int nt)
{
    const hk_ingest_item *it = &req->u.ingest.items[idx];
    int per_event = req->u.ingest.max_per_event, total_max = req->u.ingest.max_total;
    if (per_event > 0 && nt > per_event) {
        snprintf(req->err, sizeof req->err,
                 "event %d of the request (type %.64s) matches %d webhooks: more than "
                 "HOOKD_MAX_DELIVERIES_PER_EVENT (%d) deliveries; nothing was stored",
                 idx, it->type, nt, per_event);
        return HK_ELIMIT;
    }
    if (total_max <= 0) return HK_OK;
    int64_t total = nt;
    for (int k = 0; k < idx; k++)
        if (!req->u.ingest.items[k].duplicate) total += req->u.ingest.items[k].ndeliveries;
    if (total > total_max) {
        snprintf(req->err, sizeof req->err,
                 "the request would create more than HOOKD_MAX_DELIVERIES_PER_BATCH (%d) "
                 "deliveries (%lld by event %d); nothing was stored: send fewer events per "
                 "request",
                 total_max, (long long)total, idx);
        return HK_ELIMIT;
    }
    return HK_OK;
}
