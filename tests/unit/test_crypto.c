/*
 * test_crypto.c: SHA-256 (FIPS 180-2 vectors), HMAC-SHA256 (RFC 4231 vectors, in one piece and
 * split into parts, from several threads at once), hex and base64 (RFC 4648 vectors, round
 * trips, strict rejection), constant-time compare, the random helpers, and the secrets-at-rest
 * format: AES-256-GCM round trip, decryption of values made by Node's crypto (12- and 16-byte
 * IVs), tampering and wrong keys (HK_EDENIED), malformed strings (HK_EINVAL), key parsing.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/common.h"
#include "core/crypto.h"

/* Decodes a hex constant of the test into a fresh buffer; *n = its length. */
static uint8_t *unhex_const(const char *hex, size_t *n)
{
    size_t len = strlen(hex);
    uint8_t *p = malloc(len / 2 + 1);
    assert_non_null(p);
    assert_int_equal(hk_unhex(hex, len, p, len / 2, n), HK_OK);
    return p;
}

/* ---- SHA-256 ------------------------------------------------------------------------------ */

static void test_sha256_vectors(void **state)
{
    (void)state;
    char hex[65];
    hk_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hk_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hk_sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    size_t n = 1000000;
    char *a = malloc(n);
    assert_non_null(a);
    memset(a, 'a', n);
    hk_sha256_hex(a, n, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    uint8_t raw[32];
    hk_sha256(a, n, raw);
    assert_int_equal(raw[0], 0xcd);
    assert_int_equal(raw[31], 0xd0);
    free(a);
}

/* ---- HMAC-SHA256 (RFC 4231 §4) ------------------------------------------------------------ */

static const struct {
    const char *key_hex;
    const char *data_hex;
    const char *mac_hex;
    size_t mac_len; /* test case 5 checks a truncated output */
} rfc4231[] = {
    {"0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
     "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 32},
    {"4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 32},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
     "dddddddddddddd",
     "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 32},
    {"0102030405060708090a0b0c0d0e0f10111213141516171819",
     "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
     "cdcdcdcdcdcd",
     "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 32},
    {"0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
     "a3b6167473100ee06e0c796c2955552b", 16},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368"
     "204b6579204669727374",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 32},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a"
     "65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865"
     "206b6579206e6565647320746f20626520686173686564206265666f7265206265696e672075736564206279"
     "2074686520484d414320616c676f726974686d2e",
     "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 32},
};

static void test_hmac_rfc4231(void **state)
{
    (void)state;
    for (size_t t = 0; t < HK_ARRAY_LEN(rfc4231); t++) {
        size_t klen, dlen;
        uint8_t *key = unhex_const(rfc4231[t].key_hex, &klen);
        uint8_t *data = unhex_const(rfc4231[t].data_hex, &dlen);
        uint8_t mac[32];
        char hex[65];

        hk_iov one = {data, dlen};
        hk_hmac_sha256(key, klen, &one, 1, mac);
        hk_hex(mac, rfc4231[t].mac_len, hex);
        if (strcmp(hex, rfc4231[t].mac_hex) != 0) print_error("RFC 4231 case %zu\n", t + 1);
        assert_string_equal(hex, rfc4231[t].mac_hex);

        /* the same message in three pieces, one of them empty */
        hk_iov parts[] = {{data, 3}, {"", 0}, {data + 3, dlen - 3}};
        memset(mac, 0, sizeof mac);
        hk_hmac_sha256(key, klen, parts, 3, mac);
        hk_hex(mac, rfc4231[t].mac_len, hex);
        assert_string_equal(hex, rfc4231[t].mac_hex);
        free(key);
        free(data);
    }
}

static void test_hmac_edges(void **state)
{
    (void)state;
    uint8_t mac[32];
    char hex[65];
    /* expected values here: `openssl dgst -sha256 -hmac KEY` (and Python's hmac) by hand */
    /* empty key and empty message */
    hk_hmac_sha256("", 0, NULL, 0, mac);
    hk_hex(mac, 32, hex);
    assert_string_equal(hex, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
    /* a key of exactly one block (64 bytes) is used as is, one byte more is hashed first */
    uint8_t k64[65];
    memset(k64, 'k', sizeof k64);
    hk_iov m = {"message", 7};
    hk_hmac_sha256(k64, 64, &m, 1, mac);
    hk_hex(mac, 32, hex);
    assert_string_equal(hex, "890f3a16e0ca0aaa3bf180f70fa8e3970b3fd6505e98fde157988dcc19d1685c");
    hk_hmac_sha256(k64, 65, &m, 1, mac);
    hk_hex(mac, 32, hex);
    assert_string_equal(hex, "0c256505306af48015530c139bb7add5ad7a6a9291cd511278a067e765816fbd");
}

/* Several threads computing the same HMAC at once must all get the right answer (the digest is
 * fetched once and shared). */
static void *hmac_thread(void *arg)
{
    int *bad = arg;
    size_t klen, dlen;
    uint8_t *key = unhex_const(rfc4231[1].key_hex, &klen);
    uint8_t *data = unhex_const(rfc4231[1].data_hex, &dlen);
    for (int i = 0; i < 2000; i++) {
        uint8_t mac[32];
        char hex[65];
        hk_iov one = {data, dlen};
        hk_hmac_sha256(key, klen, &one, 1, mac);
        hk_hex(mac, 32, hex);
        if (strcmp(hex, rfc4231[1].mac_hex) != 0) (*bad)++;
    }
    free(key);
    free(data);
    return NULL;
}

static void test_hmac_threads(void **state)
{
    (void)state;
    pthread_t th[4];
    int bad[4] = {0};
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hmac_thread, &bad[i]), 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(bad[i], 0);
    }
}

/* ---- hex ---------------------------------------------------------------------------------- */

static void test_hex(void **state)
{
    (void)state;
    uint8_t all[256], back[256];
    char hex[513];
    for (int i = 0; i < 256; i++) all[i] = (uint8_t)i;
    hk_hex(all, 256, hex);
    assert_int_equal(strlen(hex), 512);
    assert_memory_equal(hex, "000102", 6);
    assert_string_equal(hex + 506, "fdfeff");
    size_t n = 0;
    assert_int_equal(hk_unhex(hex, 512, back, sizeof back, &n), HK_OK);
    assert_int_equal(n, 256);
    assert_memory_equal(back, all, 256);

    assert_int_equal(hk_unhex("DEADbeef", 8, back, 4, &n), HK_OK);
    assert_int_equal(n, 4);
    assert_int_equal(back[0], 0xde);
    assert_int_equal(back[3], 0xef);
    assert_int_equal(hk_unhex("", 0, back, 0, &n), HK_OK);
    assert_int_equal(n, 0);

    const char *bad[] = {"abc", "0g", "zz", " 00", "00 ", "0x00", "-1", "\xff\xff"};
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++)
        assert_int_equal(hk_unhex(bad[i], strlen(bad[i]), back, sizeof back, &n), HK_EINVAL);
    assert_int_equal(hk_unhex("0011", 4, back, 1, &n), HK_ETOOBIG);
    /* only n bytes are read: the NUL-free prefix "ab" of "abc" is valid */
    assert_int_equal(hk_unhex("abc", 2, back, 1, &n), HK_OK);
    assert_int_equal(back[0], 0xab);
}

/* ---- base64 ------------------------------------------------------------------------------- */

static void test_base64_rfc4648(void **state)
{
    (void)state;
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < HK_ARRAY_LEN(plain); i++) {
        hk_buf b;
        hk_buf_init(&b, 64);
        assert_int_equal(hk_base64_encode(plain[i], strlen(plain[i]), &b), HK_OK);
        assert_string_equal(hk_buf_cstr(&b), enc[i]);
        hk_buf_free(&b);

        uint8_t out[16];
        size_t n = 99;
        assert_int_equal(hk_base64_decode(enc[i], strlen(enc[i]), out, sizeof out, &n), HK_OK);
        assert_int_equal(n, strlen(plain[i]));
        assert_memory_equal(out, plain[i], n);
    }
    /* the last two alphabet characters, appended after existing content */
    hk_buf b;
    hk_buf_init(&b, 200);
    hk_buf_puts(&b, "x:");
    hk_base64_encode("\xfb\xff\xbf", 3, &b);
    assert_string_equal(hk_buf_cstr(&b), "x:+/+/");
    hk_buf_free(&b);
}

static void test_base64_round_trip(void **state)
{
    (void)state;
    uint8_t src[200], back[200];
    for (size_t n = 0; n <= sizeof src; n++) {
        hk_random_bytes(src, n);
        hk_buf b;
        hk_buf_init(&b, 1000);
        assert_int_equal(hk_base64_encode(src, n, &b), HK_OK);
        assert_int_equal(b.len, (n + 2) / 3 * 4);
        size_t m = 0;
        assert_int_equal(hk_base64_decode(b.data, b.len, back, sizeof back, &m), HK_OK);
        assert_int_equal(m, n);
        assert_memory_equal(back, src, n);
        hk_buf_free(&b);
    }
}

static void test_base64_rejects(void **state)
{
    (void)state;
    const char *bad[] = {
        "Zg",        /* padding missing */
        "Zg=",       /* padding short */
        "Z",         /* 1 char */
        "Zm9vY",     /* 5 chars */
        "Zg===",     /* too much padding */
        "====",      /* padding only */
        "Z===",      /* 3 pads */
        "=Zm9",      /* leading pad */
        "Zg==Zg==",  /* data after padding */
        "Zm=v",      /* pad in the middle of a group */
        "Zm9v\n",    /* whitespace */
        " Zm9v",     /* whitespace */
        "Zm 9v",     /* whitespace */
        "Zm9-",      /* URL-safe alphabet */
        "Zm9_",      /* URL-safe alphabet */
        "Zm9.",      /* other */
        "Zm\xc3\xa9" /* non-ASCII */
    };
    uint8_t out[16];
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        size_t n = 99;
        int rc = hk_base64_decode(bad[i], strlen(bad[i]), out, sizeof out, &n);
        if (rc != HK_EINVAL) print_error("accepted: \"%s\"\n", bad[i]);
        assert_int_equal(rc, HK_EINVAL);
        assert_int_equal(n, 0);
    }
    size_t n;
    assert_int_equal(hk_base64_decode("Zm9vYmFy", 8, out, 5, &n), HK_ETOOBIG);
    assert_int_equal(hk_base64_decode("Zm9vYmFy", 8, out, 6, &n), HK_OK);
    /* non-zero bits under the padding are ignored, as Python's and JS's decoders do */
    assert_int_equal(hk_base64_decode("Zh==", 4, out, sizeof out, &n), HK_OK);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'f');
}

static void test_ct_equal(void **state)
{
    (void)state;
    assert_int_equal(hk_ct_equal("abcdef", "abcdef", 6), 1);
    assert_int_equal(hk_ct_equal("abcdef", "abcdeF", 6), 0);
    assert_int_equal(hk_ct_equal("xbcdef", "abcdef", 6), 0);
    assert_int_equal(hk_ct_equal("abc", "xyz", 0), 1);
}

/* ---- randomness --------------------------------------------------------------------------- */

static void test_random(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    hk_random_bytes(a, sizeof a);
    hk_random_bytes(b, sizeof b);
    assert_memory_not_equal(a, b, sizeof a);

    int seen[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint32_t r = hk_random_below(7);
        assert_true(r < 7);
        seen[r]++;
    }
    for (int i = 0; i < 7; i++) assert_in_range(seen[i], 700, 1300);
    assert_int_equal(hk_random_below(1), 0);
    assert_true(hk_random_below(UINT32_MAX) < UINT32_MAX);

    double sum = 0, lo = 1, hi = 0;
    for (int i = 0; i < 100000; i++) {
        double u = hk_random_unit();
        assert_true(u >= 0.0 && u < 1.0);
        sum += u;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
    }
    assert_true(sum / 100000 > 0.49 && sum / 100000 < 0.51);
    assert_true(lo < 0.001 && hi > 0.999);
}

/* ---- secrets at rest ---------------------------------------------------------------------- */

static const char *KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
static const char *SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

static void test_enc_key_parse(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(hk_enc_key_parse(KEY_HEX, key), HK_OK);
    assert_int_equal(key[0], 0);
    assert_int_equal(key[31], 0x1f);
    assert_int_equal(
        hk_enc_key_parse("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", key),
        HK_OK);
    assert_int_equal(key[0], 0xff);
    const char *bad[] = {
        "",
        "00",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1",   /* 63 */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f0", /* 65 */
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f00",
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1g",
        " 00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
    };
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++)
        assert_int_equal(hk_enc_key_parse(bad[i], key), HK_EINVAL);
    assert_int_equal(hk_enc_key_parse(NULL, key), HK_EINVAL);
}

static void test_secret_round_trip(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(hk_enc_key_parse(KEY_HEX, key), HK_OK);
    hk_buf e1, e2, d;
    hk_buf_init(&e1, 4096);
    hk_buf_init(&e2, 4096);
    hk_buf_init(&d, 4096);
    assert_int_equal(hk_secret_encrypt(key, SECRET, &e1), HK_OK);
    assert_int_equal(hk_secret_encrypt(key, SECRET, &e2), HK_OK);
    const char *s1 = hk_buf_cstr(&e1);
    /* enc: + 24 hex iv + : + 32 hex tag + : + 2 hex per plaintext byte */
    assert_int_equal(e1.len, 4 + 24 + 1 + 32 + 1 + 2 * strlen(SECRET));
    assert_true(hk_secret_is_encrypted(s1));
    assert_int_equal(s1[28], ':');
    assert_int_equal(s1[61], ':');
    assert_string_not_equal(s1, hk_buf_cstr(&e2)); /* fresh IV each time */
    for (const char *p = s1 + 4; *p; p++) assert_true(strchr("0123456789abcdef:", *p) != NULL);

    assert_int_equal(hk_secret_decrypt(key, s1, &d), HK_OK);
    assert_string_equal(hk_buf_cstr(&d), SECRET);
    hk_buf_reset(&d);
    assert_int_equal(hk_secret_decrypt(key, hk_buf_cstr(&e2), &d), HK_OK);
    assert_string_equal(hk_buf_cstr(&d), SECRET);

    /* decrypt appends; the empty plaintext round-trips too */
    hk_buf_reset(&e1);
    hk_buf_reset(&d);
    hk_buf_puts(&d, "pre:");
    assert_int_equal(hk_secret_encrypt(key, "", &e1), HK_OK);
    assert_int_equal(e1.len, 4 + 24 + 1 + 32 + 1);
    assert_int_equal(hk_secret_decrypt(key, hk_buf_cstr(&e1), &d), HK_OK);
    assert_string_equal(hk_buf_cstr(&d), "pre:");
    hk_buf_free(&e1);
    hk_buf_free(&e2);
    hk_buf_free(&d);

    assert_int_equal(hk_secret_is_encrypted("whsec_abc"), 0);
    assert_int_equal(hk_secret_is_encrypted("enc"), 0);
    assert_int_equal(hk_secret_is_encrypted(NULL), 0);
}

/* Values made by Node's crypto.createCipheriv("aes-256-gcm", key, iv), as the seed system's
 * secrets are: one with a 12-byte IV, one with a 16-byte IV. */
static const char *NODE_ENC12 =
    "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:"
    "91700f4826944fd92934bea13f3d8b8701de0d67f8e21228a4476ad625e21a339e170b9efc55";
static const char *NODE_ENC16 =
    "enc:b0b1b2b3b4b5b6b7b8b9babbbcbdbebf:4ef84d9db7a914dd695a28e4c7f5c27c:"
    "c665f717890c58d664f29202ffa2ab43db6ffcab845b2e7264d8744d03aad1b77d53f4010729";

static void test_secret_decrypt_node(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(hk_enc_key_parse(KEY_HEX, key), HK_OK);
    hk_buf d;
    hk_buf_init(&d, 4096);
    assert_int_equal(hk_secret_decrypt(key, NODE_ENC12, &d), HK_OK);
    assert_string_equal(hk_buf_cstr(&d), SECRET);
    hk_buf_reset(&d);
    assert_int_equal(hk_secret_decrypt(key, NODE_ENC16, &d), HK_OK);
    assert_string_equal(hk_buf_cstr(&d), SECRET);
    hk_buf_free(&d);
}

/* Flips one hex digit at position i of s (a copy) and expects decryption to fail with want. */
static void expect_tampered(const uint8_t key[32], const char *s, size_t i, int want)
{
    char *t = strdup(s);
    assert_non_null(t);
    t[i] = t[i] == '0' ? '1' : '0';
    hk_buf d;
    hk_buf_init(&d, 4096);
    assert_int_equal(hk_secret_decrypt(key, t, &d), want);
    assert_int_equal(d.len, 0); /* nothing unauthenticated is handed out */
    hk_buf_free(&d);
    free(t);
}

static void test_secret_tamper_and_wrong_key(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    assert_int_equal(hk_enc_key_parse(KEY_HEX, key), HK_OK);
    memcpy(other, key, 32);
    other[31] ^= 1;
    size_t len = strlen(NODE_ENC12);
    expect_tampered(key, NODE_ENC12, 4, HK_EDENIED);                   /* iv */
    expect_tampered(key, NODE_ENC12, 4 + 25, HK_EDENIED);              /* tag */
    expect_tampered(key, NODE_ENC12, len - 1, HK_EDENIED);             /* last ciphertext digit */
    expect_tampered(key, NODE_ENC12, 4 + 24 + 1 + 32 + 1, HK_EDENIED); /* first ct digit */

    hk_buf d;
    hk_buf_init(&d, 4096);
    assert_int_equal(hk_secret_decrypt(other, NODE_ENC12, &d), HK_EDENIED);
    assert_int_equal(hk_secret_decrypt(other, NODE_ENC16, &d), HK_EDENIED);
    assert_int_equal(d.len, 0);

    /* a ciphertext cut short fails authentication too */
    char *cut = strndup(NODE_ENC12, len - 2);
    assert_int_equal(hk_secret_decrypt(key, cut, &d), HK_EDENIED);
    free(cut);
    hk_buf_free(&d);
}

static void test_secret_malformed(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(hk_enc_key_parse(KEY_HEX, key), HK_OK);
    const char *bad[] = {
        "",
        "enc:",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201",
        "enc::3117ffca8a6e52f452bd65903f34d201:9170",
        /* iv of 11 and 17 bytes */
        "enc:a0a1a2a3a4a5a6a7a8a9aa:3117ffca8a6e52f452bd65903f34d201:9170",
        "enc:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0:3117ffca8a6e52f452bd65903f34d201:9170",
        /* tag of 15 and 17 bytes */
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d2:9170",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d20100:9170",
        /* odd or non-hex ciphertext, an extra field, upper-case prefix, spaces */
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:917",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:91zz",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:9170:00",
        "ENC:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:9170",
        "enc: a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:9170",
        "enc:a0a1a2a3a4a5a6a7a8a9aaab:3117ffca8a6e52f452bd65903f34d201:9170 ",
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    };
    hk_buf d;
    hk_buf_init(&d, 4096);
    for (size_t i = 0; i < HK_ARRAY_LEN(bad); i++) {
        int rc = hk_secret_decrypt(key, bad[i], &d);
        if (rc != HK_EINVAL) print_error("not refused as malformed: \"%s\"\n", bad[i]);
        assert_int_equal(rc, HK_EINVAL);
    }
    assert_int_equal(hk_secret_decrypt(key, NULL, &d), HK_EINVAL);
    assert_int_equal(d.len, 0);
    /* the output cap applies */
    hk_buf small;
    hk_buf_init(&small, 8);
    assert_int_equal(hk_secret_decrypt(key, NODE_ENC12, &small), HK_ETOOBIG);
    assert_int_equal(small.len, 0);
    hk_buf_free(&small);
    hk_buf_free(&d);
}

static void test_secret_generate(void **state)
{
    (void)state;
    char a[HK_SECRET_GEN_LEN], b[HK_SECRET_GEN_LEN];
    hk_secret_generate(a);
    hk_secret_generate(b);
    assert_int_equal(strlen(a), 50);
    assert_memory_equal(a, "whsec_", 6);
    assert_string_not_equal(a, b);
    uint8_t raw[64];
    size_t n = 0;
    assert_int_equal(hk_base64_decode(a + 6, 44, raw, sizeof raw, &n), HK_OK);
    assert_int_equal(n, 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_rfc4231),
        cmocka_unit_test(test_hmac_edges),
        cmocka_unit_test(test_hmac_threads),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64_rfc4648),
        cmocka_unit_test(test_base64_round_trip),
        cmocka_unit_test(test_base64_rejects),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_enc_key_parse),
        cmocka_unit_test(test_secret_round_trip),
        cmocka_unit_test(test_secret_decrypt_node),
        cmocka_unit_test(test_secret_tamper_and_wrong_key),
        cmocka_unit_test(test_secret_malformed),
        cmocka_unit_test(test_secret_generate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
