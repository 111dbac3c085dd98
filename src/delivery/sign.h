/*
 * sign.h: the three signature schemes of SPEC §4, turned into request headers.
 *
 *   standard  webhook-id: <event id>, webhook-timestamp: T,
 *             webhook-signature: v1,<base64 HMAC(key, "<id>.T.<body>")> [ v1,<...>]
 *             key = base64-decoded text after "whsec_" (the raw secret bytes if that is not
 *             valid base64); verifies with the standardwebhooks libraries.
 *   reloop    Reloop-Id: <event id>, Reloop-Timestamp: T,
 *             Reloop-Signature: t=T,v1=<hex HMAC(whole secret string, "T.<body>")>[,v1=<...>]
 *   sha256    X-Webhook-Signature: sha256=<hex HMAC(whole secret string, body)>[,sha256=<...>]
 *   ed25519   Standard Webhooks' asymmetric signature: the standard scheme's three headers, with
 *             v1a,<base64 Ed25519(private key, "<id>.T.<body>")> in webhook-signature, after
 *             the v1 ones when both schemes are chosen (space separated, as the Standard
 *             Webhooks spec writes several signatures). Verified with the public key
 *             ("whpk_" + base64, the API shows it).
 *
 * With several live secrets (a rotation's grace period) each scheme carries one signature per
 * secret, newest first; with several live Ed25519 keys (a key rotation's grace period), one
 * v1a per key, newest first.
 */
#ifndef HK_SIGN_H
#define HK_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/sig_scheme.h" /* the scheme bits and names */

/* A secret prepared for signing: the raw string and the standard scheme's decoded key. */
#define HK_SIGN_KEY_MAX 512
typedef struct hk_sign_key {
    char raw[HK_SIGN_KEY_MAX + 1]; /* the secret string, NUL-terminated */
    size_t raw_len;
    uint8_t std[HK_SIGN_KEY_MAX]; /* key bytes for the standard scheme */
    size_t std_len;
} hk_sign_key;

/* Prepares key from a plaintext secret. HK_EINVAL if empty or longer than HK_SIGN_KEY_MAX. */
int hk_sign_key_init(hk_sign_key *key, const char *secret);

/* An Ed25519 private key prepared for signing (crypto.h's hk_ed25519_parse), and optionally its
 * OpenSSL key made once (hk_ed25519_key_new; owned, released by hk_ed_keys_clear), else NULL:
 * made per signature. */
typedef struct hk_ed_key {
    uint8_t priv[32];
    void *pkey;
} hk_ed_key;

/* Releases the OpenSSL keys of ed[0..n) and wipes them. */
void hk_ed_keys_clear(hk_ed_key *ed, int n);

/* Appends the signature headers of every scheme in `schemes` as "Name: value\n" lines to out,
 * signing body with each of keys[0..nkeys) (nkeys >= 1) at unix time ts (seconds). */
int hk_sign_headers(unsigned schemes, const char *event_id, int64_t ts, const char *body,
                    size_t body_len, const hk_sign_key *keys, int nkeys, hk_buf *out);

/* hk_sign_headers with the webhook's live Ed25519 keys ed[0..ned) too, for HK_SIG_ED25519
 * (ned >= 1 when that scheme is chosen, else HK_EINVAL). All or nothing: on an error nothing is
 * appended. */
int hk_sign_headers_ed(unsigned schemes, const char *event_id, int64_t ts, const char *body,
                       size_t body_len, const hk_sign_key *keys, int nkeys, const hk_ed_key *ed,
                       int ned, hk_buf *out);

/* The standard scheme's signature alone ("v1,<base64>") for one key: used by the unit test's
 * check vector. out must hold 64 bytes. */
void hk_sign_standard(const hk_sign_key *key, const char *msg_id, int64_t ts, const char *body,
                      size_t body_len, char out[64]);

#endif
