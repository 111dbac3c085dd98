/*
 * sign.c: the signature headers of a delivery attempt (SPEC §4, see sign.h).
 *
 * A webhook's secrets are prepared once (hk_sign_key_init: the raw string, and the standard
 * scheme's key decoded from the base64 after "whsec_"); each attempt then signs its body with
 * every live secret in every selected scheme and appends "Name: value\n" lines. The HMAC input
 * is passed as pieces (id, ".", timestamp, ".", body), so the body is never copied.
 */
#include "delivery/sign.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"
#include "core/crypto.h"

#define WHSEC_PREFIX     "whsec_"
#define WHSEC_PREFIX_LEN 6

/* The standard scheme's key: the base64 text after "whsec_" (or the whole secret when it has no
 * prefix, as the standardwebhooks libraries do) decoded strictly; if that is not base64 or
 * decodes to nothing, the secret string's own bytes. */
int hk_sign_key_init(hk_sign_key *key, const char *secret)
{
    memset(key, 0, sizeof *key);
    if (!secret || !secret[0]) return HK_EINVAL;
    size_t n = strnlen(secret, HK_SIGN_KEY_MAX + 1);
    if (n > HK_SIGN_KEY_MAX) return HK_EINVAL;
    memcpy(key->raw, secret, n);
    key->raw[n] = '\0';
    key->raw_len = n;

    const char *b64 = secret;
    size_t b64_len = n;
    if (n >= WHSEC_PREFIX_LEN && memcmp(secret, WHSEC_PREFIX, WHSEC_PREFIX_LEN) == 0) {
        b64 += WHSEC_PREFIX_LEN;
        b64_len -= WHSEC_PREFIX_LEN;
    }
    if (hk_base64_decode(b64, b64_len, key->std, sizeof key->std, &key->std_len) != HK_OK ||
        key->std_len == 0) {
        memcpy(key->std, secret, n);
        key->std_len = n;
    }
    return HK_OK;
}

/* HMAC-SHA256(key->std, "<msg_id>.<ts>.<body>"). */
static void standard_mac(const hk_sign_key *key, const char *msg_id, const char *ts,
                         const char *body, size_t body_len, uint8_t mac[32])
{
    hk_iov parts[] = {
        {msg_id, strlen(msg_id)}, {".", 1}, {ts, strlen(ts)}, {".", 1}, {body, body_len}};
    hk_hmac_sha256(key->std, key->std_len, parts, (int)HK_ARRAY_LEN(parts), mac);
}

/* Appends lowercase hex of mac to out. */
static int put_hex(hk_buf *out, const uint8_t mac[32])
{
    char hex[65];
    hk_hex(mac, 32, hex);
    return hk_buf_append(out, hex, 64);
}

void hk_sign_standard(const hk_sign_key *key, const char *msg_id, int64_t ts, const char *body,
                      size_t body_len, char out[64])
{
    char ts_s[24];
    uint8_t mac[32];
    snprintf(ts_s, sizeof ts_s, "%" PRId64, ts);
    standard_mac(key, msg_id, ts_s, body, body_len, mac);
    hk_buf b;
    hk_buf_init(&b, 63);
    hk_buf_append(&b, "v1,", 3);
    hk_base64_encode(mac, sizeof mac, &b); /* "v1," + 44 characters: always fits */
    memcpy(out, hk_buf_cstr(&b), b.len + 1);
    hk_buf_free(&b);
}

void hk_ed_keys_clear(hk_ed_key *ed, int n)
{
    for (int i = 0; i < n; i++) {
        hk_ed25519_key_free(ed[i].pkey);
        memset(&ed[i], 0, sizeof ed[i]);
    }
}

/* 1 if s may go into a header value as it is: no control characters (CR, LF, NUL...). */
static int header_safe(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 0;
    return 1;
}

int hk_sign_headers(unsigned schemes, const char *event_id, int64_t ts, const char *body,
                    size_t body_len, const hk_sign_key *keys, int nkeys, hk_buf *out)
{
    return hk_sign_headers_ed(schemes & ~(unsigned)HK_SIG_ED25519, event_id, ts, body, body_len,
                              keys, nkeys, NULL, 0, out);
}

int hk_sign_headers_ed(unsigned schemes, const char *event_id, int64_t ts, const char *body,
                       size_t body_len, const hk_sign_key *keys, int nkeys, const hk_ed_key *ed,
                       int ned, hk_buf *out)
{
    if (!keys || nkeys < 1 || !event_id || !header_safe(event_id) || (!body && body_len))
        return HK_EINVAL;
    if ((schemes & HK_SIG_ED25519) && (!ed || ned < 1)) return HK_EINVAL;
    if (!body) body = "";
    const size_t start = out->len;
    char ts_s[24];
    snprintf(ts_s, sizeof ts_s, "%" PRId64, ts);
    uint8_t mac[32];
    int rc = HK_OK;

    if (schemes & (HK_SIG_STANDARD | HK_SIG_ED25519)) {
        rc = hk_buf_printf(
            out, "webhook-id: %s\nwebhook-timestamp: %s\nwebhook-signature: ", event_id, ts_s);
        int first = 1;
        for (int i = 0; (schemes & HK_SIG_STANDARD) && i < nkeys && !rc; i++) {
            standard_mac(&keys[i], event_id, ts_s, body, body_len, mac);
            rc = hk_buf_puts(out, first ? "v1," : " v1,");
            if (!rc) rc = hk_base64_encode(mac, sizeof mac, out);
            first = 0;
        }
        for (int i = 0; (schemes & HK_SIG_ED25519) && i < ned && !rc; i++) {
            uint8_t sig[64];
            hk_iov parts[] = {{event_id, strlen(event_id)},
                              {".", 1},
                              {ts_s, strlen(ts_s)},
                              {".", 1},
                              {body, body_len}};
            rc = hk_ed25519_sign(ed[i].priv, ed[i].pkey, parts, (int)HK_ARRAY_LEN(parts), sig);
            if (!rc) rc = hk_buf_puts(out, first ? "v1a," : " v1a,");
            if (!rc) rc = hk_base64_encode(sig, sizeof sig, out);
            first = 0;
        }
        if (!rc) rc = hk_buf_putc(out, '\n');
        if (rc) goto out;
    }
    if (schemes & HK_SIG_RELOOP) {
        rc = hk_buf_printf(out, "Reloop-Id: %s\nReloop-Timestamp: %s\nReloop-Signature: t=%s",
                           event_id, ts_s, ts_s);
        for (int i = 0; i < nkeys && !rc; i++) {
            hk_iov parts[] = {{ts_s, strlen(ts_s)}, {".", 1}, {body, body_len}};
            hk_hmac_sha256(keys[i].raw, keys[i].raw_len, parts, (int)HK_ARRAY_LEN(parts), mac);
            rc = hk_buf_puts(out, ",v1=");
            if (!rc) rc = put_hex(out, mac);
        }
        if (!rc) rc = hk_buf_putc(out, '\n');
        if (rc) goto out;
    }
    if (schemes & HK_SIG_SHA256) {
        rc = hk_buf_puts(out, "X-Webhook-Signature: ");
        for (int i = 0; i < nkeys && !rc; i++) {
            hk_iov part = {body, body_len};
            hk_hmac_sha256(keys[i].raw, keys[i].raw_len, &part, 1, mac);
            rc = hk_buf_puts(out, i ? ",sha256=" : "sha256=");
            if (!rc) rc = put_hex(out, mac);
        }
        if (!rc) rc = hk_buf_putc(out, '\n');
    }
out:
    if (rc) out->len = start; /* all or nothing */
    return rc;
}
