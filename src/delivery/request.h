/*
 * request.h: the HTTP request a delivery attempt sends (SPEC §4), in one place, so the
 * dispatcher and `sign-test-event` produce exactly the same thing.
 *
 * Headers are built as "Name: value\n" lines (the form httpc.h takes) in two parts: the
 * per-webhook part that never changes between attempts (Content-Type, User-Agent, the custom
 * headers), built once per webhook version, and the per-attempt part (X-Delivery-Id and the
 * signatures, whose timestamp is taken afresh for every attempt).
 */
#ifndef HK_DELIVERY_REQUEST_H
#define HK_DELIVERY_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "delivery/sign.h"
#include "store/store.h"

/* The per-webhook header lines (malloc'ed, NUL-terminated): Content-Type, User-Agent, then
 * the webhook's custom headers in their stored order. */
char *hk_request_static_headers(const hk_config *cfg, const hk_webhook *wh);

/* The webhook's live signing keys, newest first: the secret, then the previous secret while
 * its grace period (ends at prev_secret_expires_at) is not over at now_ms. keys must hold 2.
 * Returns how many were prepared (0 if the secret is unusable). */
int hk_request_keys(const hk_webhook *wh, int64_t now_ms, hk_sign_key keys[2]);

/* The webhook's live Ed25519 keys, newest first: its key, then the previous one while its
 * grace period (ends at prev_signing_key_expires_at) is not over at now_ms, each with its
 * OpenSSL key made once. ed must hold 2. Returns how many were prepared (0 if it has no usable
 * key); release them with hk_ed_keys_clear(ed, 2). */
int hk_request_ed_keys(const hk_webhook *wh, int64_t now_ms, hk_ed_key ed[2]);

/* 1 if an attempt to wh may be signed with these keys: a secret, and a key pair when its
 * schemes include ed25519. Never send unsigned: the dispatcher fails the attempt otherwise. */
int hk_request_can_sign(const hk_webhook *wh, int nkeys, int ned);

/* Appends the per-attempt lines to out: X-Delivery-Id (when delivery_id is not NULL), then
 * the signature headers of wh's schemes over body at unix time ts_s, with the secrets
 * keys[0..nkeys) and the Ed25519 keys ed[0..ned). */
void hk_request_attempt_headers(const hk_webhook *wh, const hk_sign_key *keys, int nkeys,
                                const hk_ed_key *ed, int ned, const char *delivery_id,
                                const char *event_id, int64_t ts_s, const char *body,
                                size_t body_len, hk_buf *out);

/* Converts header lines ("Name: value\n"...) to a compact JSON object appended to out. */
void hk_request_headers_json(const char *lines, hk_buf *out);

#endif
