/*
 * health.c: the unauthenticated operational routes: /api/webhook/health (each dependency
 * checked, 503 naming the failing one), its two probe forms /health/live (the process answers:
 * no dependency is asked) and /health/ready (the same checks as /health, and 503 while hookd
 * drains at shutdown), and /metrics (Prometheus text).
 */
#include <string.h>

#include "api/api.h"
#include "core/time.h"

/* Writes the health document (status, checks, backend, version, uptime) of a finished ping
 * and answers 200 when every check passes, else 503. ready: also 503 (status "draining")
 * once a SIGTERM/SIGINT has begun the graceful stop. */
static void answer_checks(hk_call *c, hk_req *req, int ready)
{
    hk_api *api = c->api;
    const char *store = req->rc == 0 ? "ok" : "down";
    hk_m_gauge(api->metrics, HK_G_STORE_UP, req->rc == 0); /* hookd_store_up: the last check */
    const char *queue = hk_queue_healthy(api->queue) ? "ok" : "down";
    const char *nats = api->nats_state ? api->nats_state : "disabled";
    int ok = strcmp(store, "ok") == 0 && strcmp(queue, "ok") == 0 &&
             (strcmp(nats, "ok") == 0 || strcmp(nats, "disabled") == 0);
    const char *status = ok ? "ok" : "degraded";
    if (ready && api->draining) {
        ok = 0;
        status = "draining";
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "status", status);
    hk_jw_key(&w, "checks");
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "store", store);
    hk_jw_kstr(&w, "queue", queue);
    hk_jw_kstr(&w, "nats", nats);
    hk_jw_obj_close(&w);
    hk_jw_kstr(&w, "backend", hk_store_backend_name(api->store));
    hk_jw_kstr(&w, "version", HK_VERSION);
    hk_jw_kint(&w, "uptimeSeconds", (hk_now_ms() - api->started_ms) / 1000);
    hk_jw_obj_close(&w);
    hk_call_json(c, ok ? 200 : 503);
}

static void on_ping(hk_req *req)
{
    answer_checks(hk_call_of(req), req, 0);
}

static void on_ready_ping(hk_req *req)
{
    answer_checks(hk_call_of(req), req, 1);
}

void hk_h_health(hk_call *c)
{
    c->req.kind = HK_REQ_PING;
    hk_call_submit(c, on_ping);
}

/* Readiness: the checks of /health; 503 also while draining, so a load balancer stops sending
 * before the listener closes. */
void hk_h_health_ready(hk_call *c)
{
    c->req.kind = HK_REQ_PING;
    hk_call_submit(c, on_ready_ping);
}

/* Liveness: 200 {"status":"ok"} from the event loop itself, whatever the store, queue or NATS
 * say and while draining: only a hung or dead process fails it. */
void hk_h_health_live(hk_call *c)
{
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_kstr(&w, "status", "ok");
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_metrics(hk_call *c)
{
    hk_metrics_render(c->api->metrics, &c->out);
    hk_call_raw(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, c->out.data, c->out.len);
}
