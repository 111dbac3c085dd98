/*
 * request.c: builds the headers of a delivery attempt (see request.h). Used by the dispatcher
 * for every attempt and by the sign-test-event route, so both send byte-for-byte the same.
 */
#include "delivery/request.h"

#include <string.h>

#include "core/crypto.h"
#include "core/json.h"

char *hk_request_static_headers(const hk_config *cfg, const hk_webhook *wh)
{
    hk_buf b;
    hk_buf_init(&b, HK_BUF_UNLIMITED);
    hk_buf_printf(&b, "Content-Type: application/json\nUser-Agent: %s\n", cfg->user_agent);
    if (wh->custom_headers) {
        hk_jdoc doc = {0};
        if (hk_json_parse(&doc, wh->custom_headers, strlen(wh->custom_headers), 4096, 4) == 0 &&
            hk_json_type(&doc, 0) == HK_J_OBJECT) {
            hk_buf tmp;
            hk_buf_init(&tmp, 8192);
            for (int k = hk_json_first(&doc, 0); k >= 0 && (uint32_t)k < doc.ntoks;
                 k = hk_json_next(&doc, k + 1)) {
                /* names and values were validated at create/patch: tokens, no CR/LF */
                hk_buf_reset(&tmp);
                if (hk_json_str(&doc, k, &tmp)) continue;
                hk_buf_append(&b, tmp.data, tmp.len);
                hk_buf_puts(&b, ": ");
                hk_buf_reset(&tmp);
                if (hk_json_str(&doc, k + 1, &tmp) == 0) hk_buf_append(&b, tmp.data, tmp.len);
                hk_buf_putc(&b, '\n');
                if (doc.toks[k + 1].next >= doc.ntoks) break;
            }
            hk_buf_free(&tmp);
        }
        hk_json_free(&doc);
    }
    return hk_buf_steal(&b);
}

int hk_request_keys(const hk_webhook *wh, int64_t now_ms, hk_sign_key keys[2])
{
    int n = 0;
    if (wh->secret && hk_sign_key_init(&keys[0], wh->secret) == 0) n = 1;
    if (n && wh->prev_secret && wh->prev_secret_expires_at > now_ms &&
        hk_sign_key_init(&keys[n], wh->prev_secret) == 0)
        n++;
    return n;
}

int hk_request_ed_keys(const hk_webhook *wh, int64_t now_ms, hk_ed_key ed[2])
{
    int n = 0;
    memset(ed, 0, 2 * sizeof ed[0]);
    if (wh->signing_key && hk_ed25519_parse(wh->signing_key, ed[0].priv) == 0) n = 1;
    if (n && wh->prev_signing_key && wh->prev_signing_key_expires_at > now_ms &&
        hk_ed25519_parse(wh->prev_signing_key, ed[n].priv) == 0)
        n++;
    for (int i = 0; i < n; i++) ed[i].pkey = hk_ed25519_key_new(ed[i].priv);
    return n;
}

int hk_request_can_sign(const hk_webhook *wh, int nkeys, int ned)
{
    return nkeys > 0 && (!(wh->schemes & HK_SIG_ED25519) || ned > 0);
}

void hk_request_attempt_headers(const hk_webhook *wh, const hk_sign_key *keys, int nkeys,
                                const hk_ed_key *ed, int ned, const char *delivery_id,
                                const char *event_id, int64_t ts_s, const char *body,
                                size_t body_len, hk_buf *out)
{
    if (delivery_id) {
        hk_buf_puts(out, "X-Delivery-Id: ");
        hk_buf_puts(out, delivery_id);
        hk_buf_putc(out, '\n');
    }
    if (hk_request_can_sign(wh, nkeys, ned))
        hk_sign_headers_ed(wh->schemes, event_id, ts_s, body, body_len, keys, nkeys, ed, ned, out);
}

void hk_request_headers_json(const char *lines, hk_buf *out)
{
    hk_jw w;
    hk_jw_init(&w, out);
    hk_jw_obj_open(&w);
    char name[256];
    for (const char *p = lines; *p;) {
        const char *nl = strchr(p, '\n');
        const char *e = nl ? nl : p + strlen(p);
        const char *colon = memchr(p, ':', (size_t)(e - p));
        if (colon && (size_t)(colon - p) < sizeof name) {
            memcpy(name, p, (size_t)(colon - p));
            name[colon - p] = '\0';
            const char *v = colon + 1;
            while (v < e && *v == ' ') v++;
            hk_jw_key(&w, name);
            hk_jw_strn(&w, v, (size_t)(e - v));
        }
        p = nl ? nl + 1 : e;
    }
    hk_jw_obj_close(&w);
}
