/*
 * deliveries.c: reading deliveries: a webhook's deliveries (newest first, each with its
 * attempts) and one delivery by id.
 */
#include "api/api.h"

static void on_listed(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "webhook");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_jw_obj_open(&w);
    hk_jw_key(&w, "deliveries");
    hk_jw_arr_open(&w);
    for (int i = 0; i < req->u.dl_list.n; i++) hk_render_delivery(&w, &req->u.dl_list.items[i]);
    hk_jw_arr_close(&w);
    const hk_delivery *last = req->u.dl_list.n ? &req->u.dl_list.items[req->u.dl_list.n - 1] : NULL;
    hk_render_paging(&w, req->u.dl_list.total, req->u.dl_list.capped, req->u.dl_list.page,
                     req->u.dl_list.limit, req->u.dl_list.more, last ? last->created_at : 0,
                     last ? last->id : NULL);
    hk_jw_obj_close(&w);
    hk_call_json(c, 200);
}

void hk_h_delivery_list(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "wh")) {
        hk_call_error(c, 404, "not_found", "webhook not found", NULL, NULL);
        return;
    }
    int page, limit;
    hk_cursor after;
    if (hk_call_paging(c, "whde", &page, &limit, &after)) return;
    char status[32];
    int st = -1;
    int r = hk_call_query(c, "status", status, sizeof status);
    if (r < 0) return;
    if (r == 0) {
        st = hk_dl_status_parse(status);
        if (st < 0) {
            hk_call_invalid(c, "status must be pending, success, failed or retrying");
            return;
        }
    }
    c->req.kind = HK_REQ_DELIVERY_LIST;
    c->req.u.dl_list.webhook_id = c->params[0];
    c->req.u.dl_list.status = st;
    c->req.u.dl_list.page = page;
    c->req.u.dl_list.limit = limit;
    c->req.u.dl_list.after = after;
    hk_call_submit(c, on_listed);
}

static void on_got(hk_req *req)
{
    hk_call *c = hk_call_of(req);
    if (req->rc) {
        hk_call_store_error(c, "delivery");
        return;
    }
    hk_jw w;
    hk_jw_init(&w, &c->out);
    hk_render_delivery(&w, &req->u.dl_get.out);
    hk_call_json(c, 200);
}

void hk_h_delivery_get(hk_call *c)
{
    if (!hk_id_valid(c->params[0], "whde")) {
        hk_call_error(c, 404, "not_found", "delivery not found", NULL, NULL);
        return;
    }
    c->req.kind = HK_REQ_DELIVERY_GET;
    c->req.u.dl_get.id = c->params[0];
    hk_call_submit(c, on_got);
}
