/*
 * crypto.c: the cryptography hookd uses (see crypto.h), on OpenSSL 3 without deprecated APIs.
 *
 * The SHA-256 digest and the AES-256-GCM cipher are fetched from the default provider once per
 * process (pthread_once) and shared read-only by every thread: fetching per call costs a
 * method-store lookup under a lock. HMAC-SHA256 is computed directly over an EVP_MD_CTX with
 * the RFC 2104 ipad/opad construction rather than through EVP_MAC, whose per-call setup
 * (context, parameter parsing, digest fetch) costs more than hashing a 1 KiB body.
 *
 * Randomness: hk_random_bytes/hk_random_below use OpenSSL's CSPRNG (per-thread DRBGs, safe from
 * any thread); hk_random_unit is a per-thread xoshiro256** seeded from that CSPRNG, for jitter.
 * Base64 and hex are our own strict codecs; secrets are zeroed from the stack after use.
 */
#include "core/crypto.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

/* ---- fetched-once algorithms ------------------------------------------------------------- */

static pthread_once_t algs_once = PTHREAD_ONCE_INIT;
static EVP_MD *alg_sha256;
static EVP_CIPHER *alg_aes_gcm;

static void die(const char *what)
{
    fprintf(stderr, "hookd: OpenSSL %s failed\n", what);
    abort();
}

static void algs_init(void)
{
    alg_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    alg_aes_gcm = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
    if (!alg_sha256 || !alg_aes_gcm) die("algorithm fetch (SHA256, AES-256-GCM)");
}

static const EVP_MD *sha256_md(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_sha256;
}

static const EVP_CIPHER *aes_gcm_cipher(void)
{
    pthread_once(&algs_once, algs_init);
    return alg_aes_gcm;
}

/* ---- randomness --------------------------------------------------------------------------- */

void hk_random_bytes(void *p, size_t n)
{
    unsigned char *q = p;
    while (n > 0) {
        int chunk = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        if (RAND_bytes(q, chunk) != 1) die("RAND_bytes");
        q += chunk;
        n -= (size_t)chunk;
    }
}

/* Rejection sampling: draws are retried while they fall in the short last stretch of the
 * 32-bit range that would bias the result towards small values. */
uint32_t hk_random_below(uint32_t bound)
{
    if (bound <= 1) return 0;
    uint32_t limit = UINT32_MAX - (UINT32_MAX % bound + 1) % bound; /* largest fair value */
    uint32_t r;
    do {
        hk_random_bytes(&r, sizeof r);
    } while (r > limit);
    return r % bound;
}

/* xoshiro256** (Blackman and Vigna), one state per thread, seeded on first use. */
static _Thread_local uint64_t xo_state[4];
static _Thread_local int xo_seeded;

static inline uint64_t rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

double hk_random_unit(void)
{
    uint64_t *s = xo_state;
    if (HK_UNLIKELY(!xo_seeded)) {
        do {
            hk_random_bytes(s, sizeof xo_state);
        } while ((s[0] | s[1] | s[2] | s[3]) == 0); /* the one state xoshiro cannot leave */
        xo_seeded = 1;
    }
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return (double)(result >> 11) * 0x1.0p-53; /* 53 random bits: [0, 1) */
}

/* ---- SHA-256 and HMAC-SHA256 -------------------------------------------------------------- */

void hk_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    if (EVP_Digest(p, n, out, &len, sha256_md(), NULL) != 1 || len != 32) die("SHA-256");
}

void hk_sha256_hex(const void *p, size_t n, char out[65])
{
    uint8_t d[32];
    hk_sha256(p, n, d);
    hk_hex(d, sizeof d, out);
}

#define SHA256_BLOCK 64

/* HMAC(K, m) = H((K0 ^ opad) || H((K0 ^ ipad) || m)), K0 = K (or H(K) if longer than a block)
 * zero-padded to the block size (RFC 2104). */
void hk_hmac_sha256(const void *key, size_t keylen, const hk_iov *parts, int nparts,
                    uint8_t out[32])
{
    const EVP_MD *md = sha256_md();
    uint8_t pad[SHA256_BLOCK];
    uint8_t inner[32];
    unsigned int len = 0;
    int ok = 1;

    memset(pad, 0, sizeof pad);
    if (keylen > SHA256_BLOCK)
        hk_sha256(key, keylen, pad);
    else if (keylen > 0)
        memcpy(pad, key, keylen);
    for (size_t i = 0; i < sizeof pad; i++) pad[i] ^= 0x36;

    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx) die("EVP_MD_CTX_new");
    ok &= EVP_DigestInit_ex2(ctx, md, NULL);
    ok &= EVP_DigestUpdate(ctx, pad, sizeof pad);
    for (int i = 0; i < nparts; i++)
        if (parts[i].n > 0) ok &= EVP_DigestUpdate(ctx, parts[i].p, parts[i].n);
    ok &= EVP_DigestFinal_ex(ctx, inner, &len);

    for (size_t i = 0; i < sizeof pad; i++) pad[i] ^= 0x36 ^ 0x5c;
    ok &= EVP_DigestInit_ex2(ctx, md, NULL);
    ok &= EVP_DigestUpdate(ctx, pad, sizeof pad);
    ok &= EVP_DigestUpdate(ctx, inner, sizeof inner);
    ok &= EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(pad, sizeof pad);
    OPENSSL_cleanse(inner, sizeof inner);
    if (ok != 1) die("HMAC-SHA256");
}

/* ---- hex ---------------------------------------------------------------------------------- */

static const char hex_digits[] = "0123456789abcdef";

void hk_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex_digits[p[i] >> 4];
        out[2 * i + 1] = hex_digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int hk_unhex(const char *s, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
    if (outlen) *outlen = 0;
    if (!s || n % 2) return HK_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (hex_val((unsigned char)s[i]) < 0) return HK_EINVAL;
    if (n / 2 > outcap) return HK_ETOOBIG;
    for (size_t i = 0; i < n / 2; i++)
        out[i] =
            (uint8_t)(hex_val((unsigned char)s[2 * i]) << 4 | hex_val((unsigned char)s[2 * i + 1]));
    if (outlen) *outlen = n / 2;
    return HK_OK;
}

/* ---- base64 ------------------------------------------------------------------------------- */

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the (n + 2) / 3 * 4 characters of base64(p) to o (no NUL). */
static void b64_encode_to(const uint8_t *s, size_t n, char *o)
{
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = '=';
    }
}

int hk_base64_encode(const void *p, size_t n, hk_buf *out)
{
    if (n > HK_BUF_UNLIMITED / 4 * 3) return HK_ETOOBIG;
    size_t olen = (n + 2) / 3 * 4;
    int rc = hk_buf_reserve(out, olen);
    if (rc) return rc;
    b64_encode_to(p, n, out->data + out->len);
    out->len += olen;
    return HK_OK;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Accepts exactly: groups of 4 alphabet characters, the last of which may end in "=" or "==".
 * Rejects whitespace, the URL-safe alphabet, missing or misplaced padding. Like most decoders
 * (Python's, the standardwebhooks libraries'), it ignores non-zero bits in the last character
 * before the padding, so a secret those accept gets the same key bytes here. */
int hk_base64_decode(const char *s, size_t n, uint8_t *out, size_t outcap, size_t *outlen)
{
    if (outlen) *outlen = 0;
    if (!s || n % 4) return HK_EINVAL;
    size_t pad = 0;
    if (n >= 1 && s[n - 1] == '=') pad++;
    if (n >= 2 && s[n - 2] == '=') pad++;
    for (size_t i = 0; i < n - pad; i++)
        if (b64_val((unsigned char)s[i]) < 0) return HK_EINVAL;
    size_t dlen = n / 4 * 3 - pad;
    if (dlen > outcap) return HK_ETOOBIG;

    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = (uint32_t)b64_val((unsigned char)s[i]) << 18 |
                     (uint32_t)b64_val((unsigned char)s[i + 1]) << 12;
        int last = i + 4 == n;
        if (last && pad == 2) {
            out[o++] = (uint8_t)(v >> 16);
            break;
        }
        v |= (uint32_t)b64_val((unsigned char)s[i + 2]) << 6;
        if (last && pad == 1) {
            out[o++] = (uint8_t)(v >> 16);
            out[o++] = (uint8_t)(v >> 8);
            break;
        }
        v |= (uint32_t)b64_val((unsigned char)s[i + 3]);
        out[o++] = (uint8_t)(v >> 16);
        out[o++] = (uint8_t)(v >> 8);
        out[o++] = (uint8_t)v;
    }
    if (outlen) *outlen = o;
    return HK_OK;
}

int hk_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

/* ---- secrets at rest ---------------------------------------------------------------------- */

#define GCM_IV_LEN     12
#define GCM_IV_MIN     12
#define GCM_IV_MAX     16
#define GCM_TAG_LEN    16
#define ENC_PREFIX     "enc:"
#define ENC_PREFIX_LEN 4

int hk_enc_key_parse(const char *hex, uint8_t key[32])
{
    size_t n = 0;
    if (!hex || strlen(hex) != 64) return HK_EINVAL;
    return hk_unhex(hex, 64, key, 32, &n) == HK_OK && n == 32 ? HK_OK : HK_EINVAL;
}

int hk_secret_encrypt(const uint8_t key[32], const char *plain, hk_buf *out)
{
    size_t plen = strlen(plain);
    if (plen > (size_t)INT_MAX) return HK_ETOOBIG;
    uint8_t iv[GCM_IV_LEN], tag[GCM_TAG_LEN];
    hk_random_bytes(iv, sizeof iv);

    uint8_t *ct = hk_malloc(plen ? plen : 1);
    int rc = HK_EINTERNAL, len = 0, ok = 1;
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) die("EVP_CIPHER_CTX_new");
    ok &= EVP_EncryptInit_ex2(c, aes_gcm_cipher(), key, iv, NULL);
    if (ok && plen) ok &= EVP_EncryptUpdate(c, ct, &len, (const uint8_t *)plain, (int)plen);
    if (ok) ok &= EVP_EncryptFinal_ex(c, ct + len, &len);
    if (ok) ok &= EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, GCM_TAG_LEN, tag);
    EVP_CIPHER_CTX_free(c);
    if (ok != 1) goto out;

    /* "enc:" iv ':' tag ':' ct, all hex */
    size_t total = ENC_PREFIX_LEN + 2 * sizeof iv + 1 + 2 * sizeof tag + 1 + 2 * plen;
    rc = hk_buf_reserve(out, total);
    if (rc) goto out;
    char *o = out->data + out->len;
    memcpy(o, ENC_PREFIX, ENC_PREFIX_LEN);
    o += ENC_PREFIX_LEN;
    hk_hex(iv, sizeof iv, o);
    o += 2 * sizeof iv;
    *o++ = ':';
    hk_hex(tag, sizeof tag, o);
    o += 2 * sizeof tag;
    *o++ = ':';
    hk_hex(ct, plen, o); /* writes the NUL in the reserved spare byte */
    out->len += total;
    rc = HK_OK;
out:
    OPENSSL_cleanse(ct, plen);
    free(ct);
    return rc;
}

int hk_secret_is_encrypted(const char *s)
{
    return s && strncmp(s, ENC_PREFIX, ENC_PREFIX_LEN) == 0;
}

int hk_secret_decrypt(const uint8_t key[32], const char *enc, hk_buf *out)
{
    if (!hk_secret_is_encrypted(enc)) return HK_EINVAL;
    const char *iv_s = enc + ENC_PREFIX_LEN;
    const char *c1 = strchr(iv_s, ':');
    if (!c1) return HK_EINVAL;
    const char *tag_s = c1 + 1;
    const char *c2 = strchr(tag_s, ':');
    if (!c2) return HK_EINVAL;
    const char *ct_s = c2 + 1;
    size_t ct_hex_len = strlen(ct_s);

    uint8_t iv[GCM_IV_MAX], tag[GCM_TAG_LEN];
    size_t iv_len = 0, tag_len = 0;
    if (hk_unhex(iv_s, (size_t)(c1 - iv_s), iv, sizeof iv, &iv_len) != HK_OK || iv_len < GCM_IV_MIN)
        return HK_EINVAL;
    if (hk_unhex(tag_s, (size_t)(c2 - tag_s), tag, sizeof tag, &tag_len) != HK_OK ||
        tag_len != GCM_TAG_LEN)
        return HK_EINVAL;
    /* the ciphertext hex: validated here, decoded below straight into the buffer */
    if (ct_hex_len % 2 || ct_hex_len / 2 > (size_t)INT_MAX) return HK_EINVAL;
    for (size_t i = 0; i < ct_hex_len; i++)
        if (hex_val((unsigned char)ct_s[i]) < 0) return HK_EINVAL;
    size_t ct_len = ct_hex_len / 2;
    uint8_t *ct = hk_malloc(ct_len ? ct_len : 1);
    hk_unhex(ct_s, ct_hex_len, ct, ct_len, &ct_len);

    /* Decrypt in place at the end of out; the plaintext only counts (len grows) once the tag
     * has verified, and is wiped otherwise. */
    int rc = hk_buf_reserve(out, ct_len);
    if (rc) goto out;
    uint8_t *pt = (uint8_t *)out->data + out->len;
    int len = 0, fin = 0, ok = 1;
    OSSL_PARAM params[2] = {OSSL_PARAM_construct_size_t(OSSL_CIPHER_PARAM_AEAD_IVLEN, &iv_len),
                            OSSL_PARAM_construct_end()};
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    if (!c) die("EVP_CIPHER_CTX_new");
    ok &= EVP_DecryptInit_ex2(c, aes_gcm_cipher(), NULL, NULL, params);
    if (ok) ok &= EVP_DecryptInit_ex2(c, NULL, key, iv, NULL);
    if (ok && ct_len) ok &= EVP_DecryptUpdate(c, pt, &len, ct, (int)ct_len);
    if (ok) ok &= EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, GCM_TAG_LEN, tag);
    if (!ok) {
        rc = HK_EINTERNAL;
    } else if (EVP_DecryptFinal_ex(c, pt + len, &fin) != 1) {
        rc = HK_EDENIED; /* wrong key, or iv/tag/ciphertext altered */
    } else {
        out->len += (size_t)len + (size_t)fin;
        rc = HK_OK;
    }
    EVP_CIPHER_CTX_free(c);
    if (rc) OPENSSL_cleanse(pt, ct_len);
out:
    free(ct);
    return rc;
}

void hk_secret_generate(char out[HK_SECRET_GEN_LEN])
{
    uint8_t raw[32];
    hk_random_bytes(raw, sizeof raw);
    memcpy(out, "whsec_", 6);
    b64_encode_to(raw, sizeof raw, out + 6); /* 32 bytes -> 44 characters */
    out[50] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);
}

/* ---- Ed25519 ---------------------------------------------------------------------------------
 */

#define WHSK "whsk_"
#define WHPK "whpk_"

/* "<prefix>" + base64 of 32 bytes into out (49 chars + NUL). */
static void key_text(const char *prefix, const uint8_t raw[32], char out[HK_ED25519_TEXT_LEN])
{
    memcpy(out, prefix, 5);
    b64_encode_to(raw, 32, out + 5); /* 32 bytes -> 44 characters */
    out[49] = '\0';
}

int hk_ed25519_generate(char out[HK_ED25519_TEXT_LEN])
{
    int rc = HK_EINTERNAL;
    EVP_PKEY *pkey = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
    uint8_t raw[32];
    size_t n = sizeof raw;
    if (!ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &pkey) != 1) goto out;
    if (EVP_PKEY_get_raw_private_key(pkey, raw, &n) != 1 || n != sizeof raw) goto out;
    key_text(WHSK, raw, out);
    rc = HK_OK;
out:
    OPENSSL_cleanse(raw, sizeof raw);
    EVP_PKEY_free(pkey);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int hk_ed25519_parse(const char *text, uint8_t priv[32])
{
    size_t n = 0;
    if (!text || strncmp(text, WHSK, 5) != 0) return HK_EINVAL;
    if (hk_base64_decode(text + 5, strlen(text + 5), priv, 32, &n) != HK_OK || n != 32)
        return HK_EINVAL;
    return HK_OK;
}

/* The OpenSSL key of a raw private key, or NULL. */
static EVP_PKEY *ed_key(const uint8_t priv[32])
{
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, priv, 32);
}

int hk_ed25519_public_text(const char *priv_text, char out[HK_ED25519_TEXT_LEN])
{
    uint8_t priv[32], pub[32];
    size_t n = sizeof pub;
    int rc = hk_ed25519_parse(priv_text, priv);
    EVP_PKEY *pkey = rc ? NULL : ed_key(priv);
    OPENSSL_cleanse(priv, sizeof priv);
    if (rc) return rc;
    if (!pkey || EVP_PKEY_get_raw_public_key(pkey, pub, &n) != 1 || n != sizeof pub) {
        EVP_PKEY_free(pkey);
        return HK_EINTERNAL;
    }
    EVP_PKEY_free(pkey);
    key_text(WHPK, pub, out);
    return HK_OK;
}

void *hk_ed25519_key_new(const uint8_t priv[32])
{
    return ed_key(priv);
}

void hk_ed25519_key_free(void *pkey)
{
    EVP_PKEY_free(pkey);
}

int hk_ed25519_sign(const uint8_t priv[32], void *pkey, const hk_iov *parts, int nparts,
                    uint8_t sig[64])
{
    /* pure Ed25519 signs the whole message at once: join the parts */
    size_t total = 0;
    for (int i = 0; i < nparts; i++) total += parts[i].n;
    uint8_t *msg = hk_malloc(total ? total : 1);
    size_t at = 0;
    for (int i = 0; i < nparts; i++) {
        if (parts[i].n) memcpy(msg + at, parts[i].p, parts[i].n);
        at += parts[i].n;
    }
    int rc = HK_EINTERNAL;
    EVP_PKEY *own = pkey ? NULL : ed_key(priv);
    EVP_PKEY *k = pkey ? (EVP_PKEY *)pkey : own;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t siglen = 64;
    if (k && md && EVP_DigestSignInit(md, NULL, NULL, NULL, k) == 1 &&
        EVP_DigestSign(md, sig, &siglen, msg, total) == 1 && siglen == 64)
        rc = HK_OK;
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(own);
    free(msg);
    return rc;
}
