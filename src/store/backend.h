/*
 * backend.h: what a store backend implements (sqlite.c, pg.c), and the helpers they share.
 * Callers never see this: they use store.h. store.c owns the threads and the group commit;
 * a backend only knows how to run one request on one connection inside a transaction.
 *
 * One connection is opened per store thread, with a role: the writer (group commit; all write
 * requests, in submission order) or a reader (read requests, any order). A backend that
 * cannot serve reads concurrently may open readers as ordinary connections.
 */
#ifndef HK_STORE_BACKEND_H
#define HK_STORE_BACKEND_H

#include "core/config.h"
#include "store/match.h"
#include "store/store.h"

enum hk_conn_role { HK_CONN_WRITER = 0, HK_CONN_READER, HK_CONN_ADMIN };

typedef struct hk_store_backend {
    const char *name;
    /* Opens one connection. HK_EUNAVAIL (with err) if the database cannot be reached. */
    int (*open)(void **conn, const hk_config *cfg, int role, char *err, size_t errlen);
    /* Applies pending migrations (ADMIN connection, before any other). */
    int (*migrate)(void *conn, char *err, size_t errlen);
    /* Called once at start on the ADMIN connection after migrate, with this node's id: SQLite
     * hands back every lease (it is single-node), PostgreSQL registers the node. */
    int (*startup)(void *conn, const char *node_id, char *err, size_t errlen);
    /* Transactions: begin/commit/rollback, and a savepoint around each request. */
    int (*begin)(void *conn);
    int (*commit)(void *conn);
    int (*rollback)(void *conn);
    int (*savepoint)(void *conn);
    int (*release)(void *conn);
    int (*rollback_to)(void *conn);
    /* Called after the last request of a group, before commit (deferred group-wide writes). */
    int (*pre_commit)(void *conn);
    /* Runs one request; sets req->rc (and req->err) and returns it. HK_EUNAVAIL means the
     * connection is broken: store.c fails the whole group and reconnects. */
    int (*exec)(void *conn, hk_req *req);
    /* Cheap liveness check: 0 if the database answers. */
    int (*ping)(void *conn);
    void (*close)(void *conn);
} hk_store_backend;

extern const hk_store_backend hk_sqlite_backend;
extern const hk_store_backend hk_pg_backend;

/* ---- shared by backends: signature schemes as stored ("standard,reloop") ------------------ */

/* Writes the names of the HK_SIG_* bits, comma-separated, into out (truncated to n). */
void hk_schemes_str(unsigned bits, char *out, size_t n);
/* The HK_SIG_* bits of a stored list; HK_SIG_DEFAULT if it names none. */
unsigned hk_schemes_parse(const char *s);

/* ---- shared by backends: fan-out of an event to an organization's webhooks ---------------- */

/* One candidate webhook of an organization with its filter prepared. */
typedef struct hk_fanout_wh {
    hk_webhook *wh;      /* owned */
    hk_filter filter;
    int filter_ok;       /* 0: the stored filter is unreadable; the webhook gets everything */
    int touched;         /* a delivery was created for it in this group (last_triggered_at) */
} hk_fanout_wh;

typedef struct hk_fanout_org {
    char *org_id;
    hk_fanout_wh *whs;
    int n, cap;
} hk_fanout_org;

/* Takes ownership of wh and adds it to org's candidates. */
void hk_fanout_add(hk_fanout_org *o, hk_webhook *wh);
void hk_fanout_org_free(hk_fanout_org *o);

/* A target chosen for one event: the webhook, and its body's data when it differs from the
 * event's (excludeFields), else NULL. */
typedef struct hk_fanout_target {
    hk_fanout_wh *fw;
    char *data;          /* owned, or NULL: the event's own data */
    size_t data_len;
} hk_fanout_target;

/* Chooses the targets of an event among o's candidates: webhooks not disabled and not deleted
 * with an enabled subscription matching type whose matchConditions hold. data is the event's
 * compact JSON object. Returns the number of targets written to *out (allocated; free each
 * data and the array), or HK_EINVAL if data is not a JSON object. */
int hk_fanout_targets(hk_fanout_org *o, const char *type, const char *data, size_t data_len,
                      hk_fanout_target **out);

/* ---- shared by backends: custom headers at rest ------------------------------------------- */

/* With WEBHOOK_ENCRYPTION_KEY: writes to out the custom headers object json with every value
 * that is still plaintext encrypted (store.c's format) and returns 1; returns 0 (out untouched)
 * when there is no key or nothing to encrypt, HK_EINVAL if json is not an object of strings.
 * Backends call it at start-up (serve) for the rows written before the key was set. */
int hk_headers_seal_plain(const hk_config *cfg, const char *json, hk_buf *out);

/* Checks an ingest request's delivery caps (u.ingest.max_per_event, max_total; 0 = none)
 * before item idx creates nt deliveries, counting those of the items before it. Returns 0, or
 * HK_ELIMIT with req->err set (the caller stores nothing of the request). */
int hk_fanout_check_caps(hk_req *req, int idx, int nt);

#endif
