/*
 * main.c: wiring only. Reads the configuration, runs a subcommand (serve, migrate, apikey,
 * backup, prune, version), and for `serve` builds the parts in order (store -> queue -> dispatcher
 * -> ingest door -> API -> NATS source -> HTTP server), runs the loop, and on SIGTERM/SIGINT takes
 * them down gracefully: stop taking work (ingest and /health/ready answer 503), store and ack
 * the NATS messages in hand, let attempts in flight finish (HOOKD_SHUTDOWN_TIMEOUT_MS), write
 * every result, hand every other delivery back to the store, stop accepting, answer every
 * pending request, exit 0.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "api/api.h"
#include "core/config.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/sdnotify.h"
#include "core/time.h"
#include "delivery/dispatcher.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "ingest/nats.h"
#include "queue/queue.h"
#include "store/prune.h"
#include "store/sqlite_backup.h"
#include "store/store.h"
#include "store/store_stats.h"

static void usage(FILE *out)
{
    fprintf(out,
            "hookd %s: webhook delivery service\n\n"
            "Usage:\n"
            "  hookd [options] [serve]                      run the API and the delivery workers\n"
            "  hookd [options] migrate                      apply the store schema and exit\n"
            "  hookd [options] apikey create --org ORG [--name NAME] [--scope full|read]\n"
            "                                               create an API key (printed once)\n"
            "  hookd [options] apikey create --admin [--name NAME] [--scope full|read]\n"
            "                                               create an admin key (of no\n"
            "                                               organization; printed once)\n"
            "  hookd [options] apikey list                  list API keys (never the keys)\n"
            "  hookd [options] apikey revoke ID             revoke an API key\n"
            "  hookd [options] backup [--force] PATH        copy the SQLite store to PATH (a new\n"
            "                                               file, mode 0600) while hookd serves;\n"
            "                                               --force replaces an existing PATH\n"
            "  hookd [options] prune [--dry-run]            delete what HOOKD_RETENTION and\n"
            "                                               HOOKD_RETENTION_UNMATCHED let go, now\n"
            "                                               (--dry-run: count it, delete nothing)\n"
            "  hookd version                                print the version\n"
            "  hookd --help                                 this text and every option\n\n",
            HK_VERSION);
    hk_config_print_help(out);
}

/* ---- CLI subcommands ---------------------------------------------------------------------------
 */

static int open_sync_store(const hk_config *cfg, hk_store **st)
{
    char err[512];
    if (hk_store_open(st, NULL, cfg, err, sizeof err)) {
        fprintf(stderr, "hookd: %s\n", err);
        return 1;
    }
    return 0;
}

/* Creates a key for org ("" = an admin key) with scope; prints it on stdout (the only place it
 * ever appears), or with `given` makes sure that key exists (bootstrap). */
static int create_key(hk_store *st, const char *org, const char *name, const char *given, int scope)
{
    char key[HK_APIKEY_GEN_LEN + 128];
    if (given)
        hk_strlcpy(key, given, sizeof key);
    else
        hk_apikey_generate(key);
    char hash[65], prefix[16];
    hk_sha256_hex(key, strlen(key), hash);
    snprintf(prefix, sizeof prefix, "%.8s", key);
    hk_req req = {0};
    req.kind = given ? HK_REQ_APIKEY_ENSURE : HK_REQ_APIKEY_CREATE;
    req.org_id = org;
    req.u.key_create.name = name;
    req.u.key_create.key_hash = hash;
    req.u.key_create.prefix = prefix;
    req.u.key_create.scope = scope;
    int rc = hk_store_exec(st, &req);
    if (rc) {
        fprintf(stderr, "hookd: cannot create the API key: %s\n",
                req.err[0] ? req.err : hk_strerror(rc));
        hk_req_clear(&req);
        return 1;
    }
    if (!given) {
        printf("%s\n", key);
        fflush(stdout);
        if (org[0])
            fprintf(stderr,
                    "hookd: created API key %s (%s) for organization %s; it is shown only once\n",
                    req.u.key_create.out.id, hk_scope_name(scope), org);
        else
            fprintf(stderr, "hookd: created admin key %s (%s); it is shown only once\n",
                    req.u.key_create.out.id, hk_scope_name(scope));
    } else if (req.u.key_create.out.revoked_at) {
        HK_LOG(HK_LOG_WARN, "apikey.bootstrap_revoked",
               HK_LS("msg", "HOOKD_BOOTSTRAP_KEY exists but was revoked; it stays revoked"),
               HK_LS("key_id", req.u.key_create.out.id));
    } else if (req.u.key_create.created) {
        HK_LOG(HK_LOG_INFO, "apikey.bootstrap_created", HK_LS("key_id", req.u.key_create.out.id),
               HK_LS("org", org[0] ? org : "(admin)"));
    }
    hk_req_clear(&req);
    return 0;
}

static int cmd_apikey(const hk_config *cfg, int argc, char **argv)
{
    if (argc < 1) {
        fprintf(stderr, "hookd: apikey needs create, list or revoke (see hookd --help)\n");
        return 2;
    }
    const char *sub = argv[0], *org = NULL, *name = NULL, *id = NULL, *scope_s = "full";
    int admin = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--admin") == 0)
            admin = 1;
        else if (strcmp(argv[i], "--scope") == 0 && i + 1 < argc)
            scope_s = argv[++i];
        else if (strncmp(argv[i], "--scope=", 8) == 0)
            scope_s = argv[i] + 8;
        else if (strcmp(argv[i], "--org") == 0 && i + 1 < argc)
            org = argv[++i];
        else if (strncmp(argv[i], "--org=", 6) == 0)
            org = argv[i] + 6;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strncmp(argv[i], "--name=", 7) == 0)
            name = argv[i] + 7;
        else if (argv[i][0] != '-' && !id)
            id = argv[i];
        else {
            fprintf(stderr, "hookd: unexpected argument '%s' for apikey %s\n", argv[i], sub);
            return 2;
        }
    }
    hk_store *st;
    int rc = 0;
    if (strcmp(sub, "create") == 0) {
        if (admin && org) {
            fprintf(stderr, "hookd: apikey create takes --org ORG or --admin, not both\n");
            return 2;
        }
        if (!admin && !hk_org_id_valid(org)) {
            fprintf(stderr, "hookd: apikey create needs --org ORG ([A-Za-z0-9_.:-]{1,128}) or "
                            "--admin\n");
            return 2;
        }
        int scope = hk_scope_parse(scope_s);
        if (scope < 0) {
            fprintf(stderr, "hookd: --scope must be full or read\n");
            return 2;
        }
        if (name && (strlen(name) > 255 || strpbrk(name, "\r\n"))) {
            fprintf(stderr, "hookd: --name must be at most 255 characters on one line\n");
            return 2;
        }
        if (open_sync_store(cfg, &st)) return 1;
        rc = create_key(st, admin ? "" : org, name, NULL, scope);
    } else if (strcmp(sub, "list") == 0) {
        if (open_sync_store(cfg, &st)) return 1;
        hk_req req = {0};
        req.kind = HK_REQ_APIKEY_LIST;
        if (hk_store_exec(st, &req)) {
            fprintf(stderr, "hookd: %s\n", req.err[0] ? req.err : hk_strerror(req.rc));
            rc = 1;
        } else {
            printf("%-30s %-24s %-10s %-6s %-24s %-24s %s\n", "ID", "ORGANIZATION", "PREFIX",
                   "SCOPE", "CREATED", "REVOKED", "NAME");
            for (int i = 0; i < req.u.key_list.n; i++) {
                hk_apikey *k = &req.u.key_list.items[i];
                char c[HK_ISO_LEN], r[HK_ISO_LEN] = "-";
                hk_iso_format(k->created_at, c);
                if (k->revoked_at) hk_iso_format(k->revoked_at, r);
                printf("%-30s %-24s %-10s %-6s %-24s %-24s %s\n", k->id,
                       k->org_id && k->org_id[0] ? k->org_id : "(admin)", k->prefix,
                       hk_scope_name(k->scope), c, r, k->name ? k->name : "");
            }
        }
        hk_req_clear(&req);
    } else if (strcmp(sub, "revoke") == 0) {
        if (!id) {
            fprintf(stderr, "hookd: apikey revoke needs the key's id (see hookd apikey list)\n");
            return 2;
        }
        if (open_sync_store(cfg, &st)) return 1;
        hk_req req = {0};
        req.kind = HK_REQ_APIKEY_REVOKE;
        req.u.key_revoke.id = id;
        if (hk_store_exec(st, &req)) {
            fprintf(stderr, "hookd: %s\n",
                    req.rc == HK_ENOTFOUND ? "no active API key with that id"
                                           : hk_strerror(req.rc));
            rc = 1;
        } else {
            printf("revoked %s\n", id);
        }
    } else {
        fprintf(stderr, "hookd: unknown apikey command '%s'\n", sub);
        return 2;
    }
    hk_store_close(st);
    return rc;
}

/* `backup [--force] PATH`: an online copy of the SQLite store (store/sqlite_backup.h). Exit 2
 * for a usage mistake (no PATH, an unknown flag, PG_URL set: PostgreSQL has its own tools), 1
 * when the copy fails or PATH exists without --force, 0 with the copy in place. */
static int cmd_backup(const hk_config *cfg, int argc, char **argv)
{
    const char *path = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            fprintf(stderr, "hookd: unexpected argument '%s' for backup\n", argv[i]);
            return 2;
        }
    }
    if (cfg->pg_url && cfg->pg_url[0]) {
        fprintf(stderr, "hookd: backup copies the SQLite store (HOOKD_DB) only, and PG_URL is "
                        "set: back up PostgreSQL with its own tools (pg_dump -Fc, or "
                        "pg_basebackup with WAL archiving; see docs/OPERATIONS.md)\n");
        return 2;
    }
    if (!path) {
        fprintf(stderr, "hookd: backup needs the PATH of the copy (hookd backup [--force] "
                        "PATH)\n");
        return 2;
    }
    char err[512];
    hk_backup_stats st;
    int rc = hk_sqlite_backup(cfg->db_path, path, force, &st, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hookd: backup of %s failed: %s\n", cfg->db_path, err);
        return 1;
    }
    printf("backed up %s to %s (%lld pages, %lld bytes, %lld ms)\n", cfg->db_path, path,
           (long long)st.pages, (long long)st.bytes, (long long)st.ms);
    return 0;
}

/* `prune [--dry-run]`: what retention lets go, now, in the same steps as the server's pruner
 * (each its own transaction, so a running hookd is held at most one step at a time). Prints
 * the rows per table. Exit 2 for a usage mistake, 1 if the store fails, else 0. */
static int cmd_prune(const hk_config *cfg, int argc, char **argv)
{
    int dry = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry = 1;
        } else {
            fprintf(stderr, "hookd: unexpected argument '%s' for prune\n", argv[i]);
            return 2;
        }
    }
    if (cfg->retention_ms <= 0 && cfg->retention_unmatched_ms <= 0) {
        printf("retention is off (HOOKD_RETENTION and HOOKD_RETENTION_UNMATCHED): nothing to "
               "prune\n");
        return 0;
    }
    hk_store *st;
    if (open_sync_store(cfg, &st)) return 1;
    int64_t now = hk_now_ms(), ev = 0, dl = 0, att = 0, floor = 0;
    int rc = 0, busy_waits = 0;
    for (;;) {
        hk_req req = {0};
        hk_prune_req_init(&req, cfg, now); /* one cut-off for the whole run */
        req.u.prune.dry_run = dry;
        req.u.prune.dl_floor = floor;
        req.u.prune.vacuum_pages = 1 << 30; /* all beyond the reserve */
        if (hk_store_exec(st, &req)) {
            fprintf(stderr, "hookd: prune failed: %s\n",
                    req.err[0] ? req.err : hk_strerror(req.rc));
            rc = 1;
            break;
        }
        if (req.u.prune.skipped) { /* a running node holds the prune lock for a step */
            if (++busy_waits > 600) {
                fprintf(stderr, "hookd: prune: another node kept the prune lock for a minute\n");
                rc = 1;
                break;
            }
            usleep(100 * 1000);
            continue;
        }
        ev += req.u.prune.events;
        dl += req.u.prune.deliveries;
        att += req.u.prune.attempts;
        if (dry || !req.u.prune.more) break;
        floor = req.u.prune.oldest ? req.u.prune.oldest : req.u.prune.dl_cut;
    }
    if (!rc)
        printf("%s: events %lld, deliveries %lld, attempts %lld\n", dry ? "would prune" : "pruned",
               (long long)ev, (long long)dl, (long long)att);
    hk_store_close(st);
    return rc;
}

/* Bootstrap: HOOKD_BOOTSTRAP_ADMIN_KEY and HOOKD_BOOTSTRAP_KEY exist, or, with no key at all,
 * one is made for org_default. */
static int bootstrap_keys(const hk_config *cfg)
{
    hk_store *st;
    if (open_sync_store(cfg, &st)) return 1;
    int rc = 0;
    if (cfg->bootstrap_admin_key && cfg->bootstrap_admin_key[0])
        rc = create_key(st, "", "bootstrap-admin", cfg->bootstrap_admin_key, HK_SCOPE_FULL);
    if (rc) {
        /* the admin key could not be made: stop */
    } else if (cfg->bootstrap_key && cfg->bootstrap_key[0]) {
        rc = create_key(st, cfg->bootstrap_org, "bootstrap", cfg->bootstrap_key, HK_SCOPE_FULL);
    } else {
        hk_req req = {0};
        req.kind = HK_REQ_APIKEY_COUNT;
        rc = hk_store_exec(st, &req) ? 1 : 0;
        if (!rc && req.u.key_count.count == 0) {
            fprintf(stderr, "hookd: no API key exists yet; creating one for %s:\n",
                    cfg->bootstrap_org);
            rc = create_key(st, cfg->bootstrap_org, "default", NULL, HK_SCOPE_FULL);
        }
    }
    hk_store_close(st);
    return rc;
}

/* ---- serve
 * --------------------------------------------------------------------------------------- */

typedef struct server {
    const hk_config *cfg;
    struct event_base *base;
    hk_store *store;
    hk_queue *queue;
    hk_metrics *metrics;
    hk_dispatch *dispatch;
    hk_ingest *ingest;
    hk_api api;
    hk_http_server *http;
    hk_store_stats *store_stats;
    hk_nats *nats;     /* NULL without NATS_URL */
    hk_pruner *pruner; /* NULL with retention off */
    struct event *sigterm, *sigint, *drain_timer;
    int stopping;
    int64_t stop_deadline;
} server;

static void on_drain_poll(evutil_socket_t fd, short what, void *arg)
{
    server *s = arg;
    if (hk_http_server_pending(s->http) == 0 || hk_mono_ms() > s->stop_deadline) {
        event_base_loopexit(s->base, NULL);
        return;
    }
    struct timeval tv = {0, 10000};
    evtimer_add(s->drain_timer, &tv);
}

static void on_dispatch_stopped(void *arg)
{
    server *s = arg;
    HK_LOG(HK_LOG_INFO, "hookd.dispatch_stopped", HK_LS("msg", "every result written"));
    /* a second signal ended the loop: cmd_serve is cleaning up, the server is gone */
    if (!s->http) return;
    hk_http_server_drain(s->http); /* only now: until here /health/ready said 503 */
    on_drain_poll(-1, 0, s);
}

/* The NATS source has stored and acked what it held: now the dispatcher. */
static void on_nats_stopped(void *arg)
{
    server *s = arg;
    hk_dispatch_shutdown(s->dispatch, s->cfg->shutdown_timeout_ms, on_dispatch_stopped, s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    server *s = arg;
    if (s->stopping) {
        HK_LOG(HK_LOG_WARN, "hookd.signal", HK_LS("msg", "second signal: exiting now"));
        event_base_loopbreak(s->base);
        return;
    }
    s->stopping = 1;
    hk_sd_notify("STOPPING=1"); /* systemd: draining, TimeoutStopSec runs */
    s->stop_deadline = hk_mono_ms() + s->cfg->shutdown_timeout_ms + 5000;
    HK_LOG(HK_LOG_INFO, "hookd.stopping", HK_LS("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
           HK_LI("timeout_ms", s->cfg->shutdown_timeout_ms));
    /* Ingest and /health/ready answer 503 from now on; the listener stays open (live probes,
     * reads) until the attempts in flight are done, so a load balancer sees the node go unready
     * instead of a refused connection. */
    s->api.draining = 1;
    if (s->nats)
        hk_nats_stop(s->nats, s->cfg->shutdown_timeout_ms / 2, on_nats_stopped, s);
    else
        on_nats_stopped(s);
}

/* Raises the descriptor limit to its hard limit, then makes sure idle keep-alive connections
 * cannot take the descriptors that connections from clients and attempts in flight need: when
 * the limit is short of HOOKD_MAX_CONNECTIONS + HOOKD_MAX_INFLIGHT +
 * HOOKD_MAX_IDLE_CONNECTIONS + 256 (the store, listeners, logs), the idle connections get what
 * is left, at least 64 (keep-alive to a few endpoints is worth more than clients that may
 * never come), with a warning. */
static void raise_nofile(hk_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur == RLIM_INFINITY) return;
    long long need = (long long)cfg->max_connections + cfg->max_inflight + 256;
    long long left = (long long)rl.rlim_cur - need;
    int idle = (int)HK_MIN(HK_MAX(left, 64), cfg->max_idle_connections);
    if (idle == cfg->max_idle_connections) return;
    HK_LOG(HK_LOG_WARN, "hookd.nofile_low", HK_LI("limit", (int64_t)rl.rlim_cur),
           HK_LI("max_idle_connections", cfg->max_idle_connections), HK_LI("kept", idle),
           HK_LS("msg", "the descriptor limit (ulimit -n) is short of HOOKD_MAX_CONNECTIONS + "
                        "HOOKD_MAX_INFLIGHT + HOOKD_MAX_IDLE_CONNECTIONS + 256: fewer idle "
                        "connections are kept"));
    cfg->max_idle_connections = idle;
}

static int cmd_serve(hk_config *cfg)
{
    char err[512];
    if (cfg->tls_insecure)
        HK_LOG(HK_LOG_WARN, "hookd.tls_insecure",
               HK_LS("msg", "TLS certificate verification is OFF (HOOKD_TLS_INSECURE or "
                            "NODE_TLS_REJECT_UNAUTHORIZED=0): deliveries can be intercepted"));
    if (bootstrap_keys(cfg)) return 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit (disk quota) is an I/O error, not death */
    raise_nofile(cfg);

    server s;
    memset(&s, 0, sizeof s);
    s.cfg = cfg;
    if (cfg->nats_url && cfg->nats_url[0]) hk_nats_global_init(); /* before the loop exists */
    s.base = event_base_new();
    if (!s.base) {
        fprintf(stderr, "hookd: cannot create the event loop\n");
        return 1;
    }
    int rc = 1;
    if (hk_store_open(&s.store, s.base, cfg, err, sizeof err)) {
        fprintf(stderr, "hookd: %s\n", err);
        goto out;
    }
    s.metrics = hk_metrics_new();
    if (cfg->redis_url && cfg->redis_url[0]) {
        s.queue = hk_queue_redis_new(s.base, s.store, cfg, err, sizeof err);
        if (!s.queue) {
            fprintf(stderr, "hookd: %s\n", err);
            goto out;
        }
    } else {
        s.queue = hk_queue_local_new(s.store, cfg->node_id);
    }
    s.dispatch = hk_dispatch_new(s.base, cfg, s.store, s.queue, s.metrics, err, sizeof err);
    if (!s.dispatch) {
        fprintf(stderr, "hookd: %s\n", err);
        goto out;
    }
    s.ingest = hk_ingest_new(cfg, s.store, s.dispatch, s.metrics);
    hk_api_init(&s.api, cfg, s.store, s.dispatch, s.queue, s.metrics);
    s.api.ingest = s.ingest;
    if (cfg->nats_url && cfg->nats_url[0]) {
        s.nats =
            hk_nats_start(s.base, cfg, s.ingest, s.metrics, &s.api.nats_state, err, sizeof err);
        if (!s.nats) {
            fprintf(stderr, "hookd: %s\n", err);
            goto out;
        }
    }
    hk_http_limits lim;
    hk_http_limits_default(&lim);
    lim.max_body_bytes = (size_t)cfg->max_body_bytes;
    lim.max_connections = cfg->max_connections;
    lim.error_body = hk_api_error_body;
    lim.on_head = hk_api_head; /* API keys are checked before a body is read */
    s.http = hk_http_server_new(s.base, &lim, hk_api_handle, &s.api);
    if (hk_http_server_listen(s.http, cfg->host, cfg->port, err, sizeof err)) {
        fprintf(stderr, "hookd: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, err);
        goto out;
    }
    s.sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
    s.sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
    s.drain_timer = evtimer_new(s.base, on_drain_poll, &s);
    event_add(s.sigterm, NULL);
    event_add(s.sigint, NULL);
    hk_dispatch_start(s.dispatch);
    s.store_stats = hk_store_stats_start(s.base, s.store, s.metrics);
    s.pruner = hk_pruner_start(s.base, s.store, cfg, s.metrics);
    HK_LOG(HK_LOG_INFO, "hookd.listening", HK_LS("host", cfg->host),
           HK_LI("port", hk_http_server_port(s.http)),
           HK_LS("store", hk_store_backend_name(s.store)), HK_LS("queue", hk_queue_name(s.queue)),
           HK_LS("node", cfg->node_id), HK_LS("version", HK_VERSION),
           HK_LS("node_env", cfg->node_env));
    hk_sd_notify("READY=1"); /* systemd Type=notify: started once the port is open */
    event_base_dispatch(s.base);
    rc = 0;
    HK_LOG(HK_LOG_INFO, "hookd.stopped", HK_LS("msg", "bye"));
out:
    if (s.http) hk_http_server_free(s.http);
    s.http = NULL; /* on_dispatch_stopped may still run, from hk_store_close */
    hk_pruner_stop(s.pruner);
    if (s.store) hk_store_close(s.store); /* completes queued requests */
    hk_store_stats_free(s.store_stats);   /* after its request completed */
    hk_pruner_free(s.pruner);             /* after its step's callback */
    hk_nats_free(s.nats);     /* after the store's last callbacks, before the loop goes */
    hk_ingest_free(s.ingest); /* after the store's last callbacks too */
    if (s.dispatch) hk_dispatch_free(s.dispatch);
    hk_queue_free(s.queue);
    hk_api_free(&s.api);
    hk_metrics_free(s.metrics);
    if (s.sigterm) event_free(s.sigterm);
    if (s.sigint) event_free(s.sigint);
    if (s.drain_timer) event_free(s.drain_timer);
    event_base_free(s.base);
    return rc;
}

/* A node id for leases: HOOKD_NODE_ID, or host-pid-random (unique per process). */
static void ensure_node_id(hk_config *cfg)
{
    if (cfg->node_id && cfg->node_id[0]) return;
    char host[64] = "node";
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = '\0';
    char rnd[HK_ID_MAX];
    hk_id_new("n", rnd);
    char id[160];
    snprintf(id, sizeof id, "%.40s-%d-%s", host, (int)getpid(), rnd + 2 + 9);
    free(cfg->node_id);
    cfg->node_id = hk_strdup(id);
}

int main(int argc, char **argv)
{
    hk_config cfg;
    int *rest = hk_calloc((size_t)argc + 1, sizeof(int));
    int nrest = 0, help = 0;
    char err[512];
    int rc = hk_config_load(&cfg, argc, argv, NULL, rest, &nrest, &help, err, sizeof err);
    if (rc) {
        fprintf(stderr, "hookd: %s\n", err);
        free(rest);
        hk_config_free(&cfg);
        return 2;
    }
    if (help) {
        usage(stdout);
        free(rest);
        hk_config_free(&cfg);
        return 0;
    }
    if (hk_log_setup(cfg.log_format, cfg.log_level)) {
        fprintf(stderr, "hookd: bad log settings\n");
        return 2;
    }
    ensure_node_id(&cfg);
    char **args = hk_calloc((size_t)nrest + 1, sizeof(char *));
    for (int i = 0; i < nrest; i++) args[i] = argv[rest[i]];
    const char *cmd = nrest ? args[0] : "serve";
    if (nrest && args[0][0] == '-') {
        fprintf(stderr, "hookd: unknown option '%s' (see hookd --help)\n", args[0]);
        rc = 2;
    } else if (strcmp(cmd, "serve") == 0) {
        if (nrest > 1) {
            fprintf(stderr, "hookd: unexpected argument '%s'\n", args[1]);
            rc = 2;
        } else {
            rc = cmd_serve(&cfg);
        }
    } else if (strcmp(cmd, "migrate") == 0) {
        hk_store *st;
        rc = open_sync_store(&cfg, &st);
        if (!rc) {
            printf("migrated (%s)\n", hk_store_backend_name(st));
            hk_store_close(st);
        }
    } else if (strcmp(cmd, "apikey") == 0) {
        rc = cmd_apikey(&cfg, nrest - 1, args + 1);
    } else if (strcmp(cmd, "backup") == 0) {
        rc = cmd_backup(&cfg, nrest - 1, args + 1);
    } else if (strcmp(cmd, "prune") == 0) {
        rc = cmd_prune(&cfg, nrest - 1, args + 1);
    } else if (strcmp(cmd, "version") == 0) {
        printf("hookd %s\n", HK_VERSION);
        rc = 0;
    } else {
        fprintf(stderr, "hookd: unknown command '%s' (see hookd --help)\n", cmd);
        rc = 2;
    }
    free(args);
    free(rest);
    hk_config_free(&cfg);
    return rc;
}
