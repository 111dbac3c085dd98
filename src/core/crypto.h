/*
 * crypto.h: the cryptography hookd uses, on OpenSSL 3: SHA-256, HMAC-SHA256 over several
 * pieces (so a body is never concatenated just to be signed), base64, hex, constant-time
 * compare, the CSPRNG, and AES-256-GCM encryption of webhook secrets at rest in the
 * `enc:<iv hex>:<tag hex>:<ciphertext hex>` format (SPEC §2).
 */
#ifndef HK_CRYPTO_H
#define HK_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/common.h"

/* Fills p with n bytes from the CSPRNG; aborts if the CSPRNG fails (never returns bad data). */
void hk_random_bytes(void *p, size_t n);
/* Uniform random integer in [0, bound) from the CSPRNG (bound > 0). */
uint32_t hk_random_below(uint32_t bound);
/* Uniform double in [0, 1). Not for secrets (fast, per-thread xoshiro seeded from the CSPRNG). */
double hk_random_unit(void);

void hk_sha256(const void *p, size_t n, uint8_t out[32]);
/* Lowercase hex of SHA-256(p): 64 chars + NUL. */
void hk_sha256_hex(const void *p, size_t n, char out[65]);

/* HMAC-SHA256(key, part[0] || part[1] || ...): nparts pieces of (ptr, len). */
typedef struct hk_iov {
    const void *p;
    size_t n;
} hk_iov;
void hk_hmac_sha256(const void *key, size_t keylen, const hk_iov *parts, int nparts,
                    uint8_t out[32]);

/* Lowercase hex of n bytes into out (2n + 1 bytes incl. NUL). */
void hk_hex(const uint8_t *p, size_t n, char *out);
/* Strict hex decode (even length, [0-9a-fA-F]); HK_EINVAL if bad, HK_ETOOBIG if more than
 * outcap bytes. *outlen = bytes written. */
int hk_unhex(const char *s, size_t n, uint8_t *out, size_t outcap, size_t *outlen);

/* Standard base64 with padding, appended to out. */
int hk_base64_encode(const void *p, size_t n, hk_buf *out);
/* Strict standard-alphabet base64 decode (padding required when the length needs it; no
 * whitespace). HK_EINVAL if not valid base64, HK_ETOOBIG if over outcap. */
int hk_base64_decode(const char *s, size_t n, uint8_t *out, size_t outcap, size_t *outlen);

/* 1 if a and b (n bytes each) are equal, in time independent of where they differ. */
int hk_ct_equal(const void *a, const void *b, size_t n);

/* ---- secrets at rest -------------------------------------------------------------------- */

/* Parses WEBHOOK_ENCRYPTION_KEY: exactly 64 hex chars -> 32 bytes. HK_EINVAL otherwise. */
int hk_enc_key_parse(const char *hex, uint8_t key[32]);
/* AES-256-GCM with a fresh random 12-byte IV; appends "enc:<iv>:<tag>:<ct>" (lowercase hex). */
int hk_secret_encrypt(const uint8_t key[32], const char *plain, hk_buf *out);
/* 1 if s looks like an encrypted secret ("enc:" prefix), else 0. */
int hk_secret_is_encrypted(const char *s);
/* Decrypts "enc:<iv>:<tag>:<ct>" (any IV length 12..16 bytes, 16-byte tag) and appends the
 * plaintext to out. HK_EINVAL if malformed, HK_EDENIED if authentication fails (wrong key or
 * tampered). */
int hk_secret_decrypt(const uint8_t key[32], const char *enc, hk_buf *out);

/* A new webhook secret: "whsec_" + standard base64 of 32 random bytes (50 chars + NUL). */
#define HK_SECRET_GEN_LEN 51
void hk_secret_generate(char out[HK_SECRET_GEN_LEN]);

/* ---- Ed25519 (Standard Webhooks v1a) ------------------------------------------------------ */

/* A private key as text: "whsk_" + standard base64 of the 32-byte Ed25519 private key (the
 * RFC 8032 seed); a public key: "whpk_" + base64 of the 32-byte public key. 49 chars + NUL. */
#define HK_ED25519_TEXT_LEN 50
/* A new key pair from OpenSSL's CSPRNG: the private key's text into out. HK_EINTERNAL if
 * OpenSSL fails. */
int hk_ed25519_generate(char out[HK_ED25519_TEXT_LEN]);
/* Reads a private key's text ("whsk_..."). HK_EINVAL if it is not one. */
int hk_ed25519_parse(const char *text, uint8_t priv[32]);
/* The public key text ("whpk_...") of a private key's text. HK_EINVAL if text is not one. */
int hk_ed25519_public_text(const char *priv_text, char out[HK_ED25519_TEXT_LEN]);
/* Ed25519 signature (RFC 8032, pure) of part[0] || part[1] || ... with priv, or with pkey
 * when it is not NULL (a key made once by hk_ed25519_key_new: half the cost, the public key is
 * not derived again). HK_EINTERNAL if OpenSSL fails. */
int hk_ed25519_sign(const uint8_t priv[32], void *pkey, const hk_iov *parts, int nparts,
                    uint8_t sig[64]);
/* The OpenSSL key of priv, to sign with many times (free with hk_ed25519_key_free), or NULL. */
void *hk_ed25519_key_new(const uint8_t priv[32]);
void hk_ed25519_key_free(void *pkey); /* NULL ok */

#endif
