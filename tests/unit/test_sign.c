/*
 * test_sign.c: the three signature schemes. The standard scheme against the SPEC's check
 * vector; every other expected value was computed by hand outside hookd with the openssl CLI:
 *   reloop   printf '%s' "$TS.$BODY" | openssl dgst -sha256 -hmac "$SECRET"
 *   sha256   printf '%s' "$BODY"     | openssl dgst -sha256 -hmac "$SECRET"
 *   standard printf '%s' "$ID.$TS.$BODY" | openssl dgst -sha256 -mac HMAC \
 *                -macopt hexkey:$(printf '%s' "${SECRET#whsec_}" | openssl base64 -d -A | xxd -p)
 *                -binary | openssl base64 -A
 *            (or -hmac "$SECRET" for the raw-secret fallback)
 * Also: header lines, their order and names, several secrets (newest first), the key
 * preparation rules and the error cases. Ed25519 (v1a): RFC 8032 section 7.1 TEST 1 (key,
 * public key, the empty message's signature), and the v1a header computed with the CLI:
 *   printf '%s' "$ID.$TS.$BODY" | openssl pkeyutl -sign -inkey k.pem -rawin | openssl base64 -A
 * where k.pem is TEST 1's secret key (DER 302e020100300506032b657004220420 + key).
 */
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
#include "delivery/sign.h"

#define SECRET  "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define MSG_ID  "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define TS      1614265330
#define BODY    "{\"test\": 2432232314}"
#define STD_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define RELOOP  "2e37df5d4a028c51a7f3133d64ae1e300d2c2c900f1b1d49d4369ad2530f8964"
#define SHA     "80ec8a89ce3cd22133a1066caecb4d04fea7467657c8514d717ec42c38a5c94c"
/* HMAC of the empty body */
#define SHA_EMPTY "da5f5865984e699a69cfec62ce49a76daf8ae4601b54a781fa13f3b2d3b2088a"

/* a second secret: base64 of "the new secret of the webhook!" */
#define SECRET2  "whsec_dGhlIG5ldyBzZWNyZXQgb2YgdGhlIHdlYmhvb2sh"
#define STD_SIG2 "v1,Yaqd/ATcomAL6fj7ejzpt8W1pNz5frFkA8ywe3Gu10Y="
#define RELOOP2  "3027cf80b51884fa6304b0fc552b6d6c38ce6cd87b2b8693a080a82c17813832"
#define SHA2     "04a2e2081bafe1e41050f8e2ed9a6f0d87b33277e38f83e10d8c355f1bcee406"

static void std_sig(const char *secret, char out[64])
{
    hk_sign_key k;
    assert_int_equal(hk_sign_key_init(&k, secret), HK_OK);
    hk_sign_standard(&k, MSG_ID, TS, BODY, strlen(BODY), out);
}

static void test_check_vector(void **state)
{
    (void)state;
    char sig[64];
    std_sig(SECRET, sig);
    assert_string_equal(sig, STD_SIG);
    std_sig(SECRET2, sig);
    assert_string_equal(sig, STD_SIG2);
    /* without the prefix the text is still base64: same key, as in the standardwebhooks libs */
    std_sig("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", sig);
    assert_string_equal(sig, STD_SIG);
}

static void test_key_init(void **state)
{
    (void)state;
    hk_sign_key k;
    assert_int_equal(hk_sign_key_init(&k, SECRET), HK_OK);
    assert_string_equal(k.raw, SECRET);
    assert_int_equal(k.raw_len, strlen(SECRET));
    assert_int_equal(k.std_len, 24);
    assert_int_equal(k.std[0], 0x31);
    assert_int_equal(k.std[23], 0xb0);

    /* "whsec_" + not base64: the whole secret string is the key */
    assert_int_equal(hk_sign_key_init(&k, "whsec_not base64!"), HK_OK);
    assert_int_equal(k.std_len, strlen("whsec_not base64!"));
    assert_memory_equal(k.std, "whsec_not base64!", k.std_len);
    /* nothing after the prefix: the raw string too (never an empty key) */
    assert_int_equal(hk_sign_key_init(&k, "whsec_"), HK_OK);
    assert_int_equal(k.std_len, 6);

    assert_int_equal(hk_sign_key_init(&k, ""), HK_EINVAL);
    assert_int_equal(hk_sign_key_init(&k, NULL), HK_EINVAL);
    char big[HK_SIGN_KEY_MAX + 2];
    memset(big, 'x', sizeof big);
    big[HK_SIGN_KEY_MAX] = '\0';
    assert_int_equal(hk_sign_key_init(&k, big), HK_OK);
    assert_int_equal(k.raw_len, HK_SIGN_KEY_MAX);
    big[HK_SIGN_KEY_MAX] = 'x';
    big[HK_SIGN_KEY_MAX + 1] = '\0';
    assert_int_equal(hk_sign_key_init(&k, big), HK_EINVAL);
}

static void test_raw_fallback(void **state)
{
    (void)state;
    char sig[64];
    /* the part after whsec_ is not base64 (space, '!'): HMAC keyed with the whole string */
    std_sig("whsec_not base64!", sig);
    assert_string_equal(sig, "v1,yUD2RuJUXJQ8HKsyjzbAMVmj4/ZkDavgvNxmEyGpKuU=");
    /* no prefix and not base64 (length 13, '-', '!') */
    std_sig("plain-secret!", sig);
    assert_string_equal(sig, "v1,6eMx/KWD2lLR/Bzeygc8M3sqYkNdMQ1Yl+zr+Vs/Leg=");
    /* no prefix but valid base64 ("mysecret" = 9b2b1e72b7ad): decoded, like the libraries do */
    std_sig("mysecret", sig);
    assert_string_equal(sig, "v1,2IQWiuIsbB+1Tj8KSVxnDXURLS1uWNzpyl2EscREzvc=");
}

static void test_scheme_names(void **state)
{
    (void)state;
    assert_int_equal(hk_sig_scheme_from_name("standard"), HK_SIG_STANDARD);
    assert_int_equal(hk_sig_scheme_from_name("reloop"), HK_SIG_RELOOP);
    assert_int_equal(hk_sig_scheme_from_name("sha256"), HK_SIG_SHA256);
    assert_int_equal(hk_sig_scheme_from_name("Standard"), 0);
    assert_int_equal(hk_sig_scheme_from_name("hmac"), 0);
    assert_int_equal(hk_sig_scheme_from_name(""), 0);
    assert_int_equal(hk_sig_scheme_from_name(NULL), 0);
    assert_string_equal(hk_sig_scheme_name(HK_SIG_STANDARD), "standard");
    assert_string_equal(hk_sig_scheme_name(HK_SIG_RELOOP), "reloop");
    assert_string_equal(hk_sig_scheme_name(HK_SIG_SHA256), "sha256");
    assert_null(hk_sig_scheme_name(0));
    assert_null(hk_sig_scheme_name(HK_SIG_STANDARD | HK_SIG_RELOOP));
    assert_null(hk_sig_scheme_name(1u << 5));
}

static void sign_into(unsigned schemes, const char **secrets, int n, hk_buf *out)
{
    hk_sign_key keys[2];
    for (int i = 0; i < n; i++) assert_int_equal(hk_sign_key_init(&keys[i], secrets[i]), HK_OK);
    assert_int_equal(hk_sign_headers(schemes, MSG_ID, TS, BODY, strlen(BODY), keys, n, out), HK_OK);
}

static void test_headers_one_secret(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET};
    hk_buf b;
    hk_buf_init(&b, 4096);
    sign_into(HK_SIG_ALL, secrets, 1, &b);
    assert_string_equal(hk_buf_cstr(&b), "webhook-id: " MSG_ID "\n"
                                         "webhook-timestamp: 1614265330\n"
                                         "webhook-signature: " STD_SIG "\n"
                                         "Reloop-Id: " MSG_ID "\n"
                                         "Reloop-Timestamp: 1614265330\n"
                                         "Reloop-Signature: t=1614265330,v1=" RELOOP "\n"
                                         "X-Webhook-Signature: sha256=" SHA "\n");

    /* each scheme alone, appended after what the buffer already holds */
    hk_buf_reset(&b);
    hk_buf_puts(&b, "X-Delivery-Id: whde_1\n");
    sign_into(HK_SIG_SHA256, secrets, 1, &b);
    assert_string_equal(hk_buf_cstr(&b),
                        "X-Delivery-Id: whde_1\nX-Webhook-Signature: sha256=" SHA "\n");
    hk_buf_reset(&b);
    sign_into(HK_SIG_RELOOP, secrets, 1, &b);
    assert_string_equal(hk_buf_cstr(&b), "Reloop-Id: " MSG_ID "\n"
                                         "Reloop-Timestamp: 1614265330\n"
                                         "Reloop-Signature: t=1614265330,v1=" RELOOP "\n");
    hk_buf_reset(&b);
    sign_into(HK_SIG_DEFAULT, secrets, 1, &b);
    assert_string_equal(hk_buf_cstr(&b), "webhook-id: " MSG_ID "\n"
                                         "webhook-timestamp: 1614265330\n"
                                         "webhook-signature: " STD_SIG "\n"
                                         "Reloop-Id: " MSG_ID "\n"
                                         "Reloop-Timestamp: 1614265330\n"
                                         "Reloop-Signature: t=1614265330,v1=" RELOOP "\n");
    hk_buf_reset(&b);
    sign_into(0, secrets, 1, &b);
    assert_int_equal(b.len, 0);
    hk_buf_free(&b);
}

static void test_headers_two_secrets(void **state)
{
    (void)state;
    const char *secrets[] = {SECRET2, SECRET}; /* newest first */
    hk_buf b;
    hk_buf_init(&b, 4096);
    sign_into(HK_SIG_ALL, secrets, 2, &b);
    assert_string_equal(hk_buf_cstr(&b),
                        "webhook-id: " MSG_ID "\n"
                        "webhook-timestamp: 1614265330\n"
                        "webhook-signature: " STD_SIG2 " " STD_SIG "\n"
                        "Reloop-Id: " MSG_ID "\n"
                        "Reloop-Timestamp: 1614265330\n"
                        "Reloop-Signature: t=1614265330,v1=" RELOOP2 ",v1=" RELOOP "\n"
                        "X-Webhook-Signature: sha256=" SHA2 ",sha256=" SHA "\n");
    hk_buf_free(&b);
}

static void test_headers_errors(void **state)
{
    (void)state;
    hk_sign_key k;
    assert_int_equal(hk_sign_key_init(&k, SECRET), HK_OK);
    hk_buf b;
    hk_buf_init(&b, 4096);
    hk_buf_puts(&b, "keep\n");
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, MSG_ID, TS, BODY, 5, &k, 0, &b), HK_EINVAL);
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, MSG_ID, TS, BODY, 5, NULL, 1, &b), HK_EINVAL);
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, NULL, TS, BODY, 5, &k, 1, &b), HK_EINVAL);
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, "id\r\nX-Evil: 1", TS, BODY, 5, &k, 1, &b),
                     HK_EINVAL);
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, MSG_ID, TS, NULL, 5, &k, 1, &b), HK_EINVAL);
    assert_string_equal(hk_buf_cstr(&b), "keep\n");
    hk_buf_free(&b);

    /* too small an output buffer: HK_ETOOBIG and nothing half-written */
    hk_buf small;
    hk_buf_init(&small, 150);
    hk_buf_puts(&small, "keep\n");
    assert_int_equal(hk_sign_headers(HK_SIG_ALL, MSG_ID, TS, BODY, strlen(BODY), &k, 1, &small),
                     HK_ETOOBIG);
    assert_string_equal(hk_buf_cstr(&small), "keep\n");
    hk_buf_free(&small);
}

static void test_empty_body(void **state)
{
    (void)state;
    hk_sign_key k;
    assert_int_equal(hk_sign_key_init(&k, SECRET), HK_OK);
    hk_buf b;
    hk_buf_init(&b, 4096);
    /* printf '' | openssl dgst -sha256 -hmac whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw */
    assert_int_equal(hk_sign_headers(HK_SIG_SHA256, MSG_ID, TS, NULL, 0, &k, 1, &b), HK_OK);
    assert_string_equal(hk_buf_cstr(&b), "X-Webhook-Signature: sha256=" SHA_EMPTY "\n");
    hk_buf_free(&b);
}

/* RFC 8032 7.1 TEST 1 */
#define ED_PRIV "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A="
#define ED_PUB  "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
#define ED_EMPTY_SIG                                                                               \
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9" \
    "b4"                                                                                           \
    "6bd25bf5f0595bbe24655141438e7a100b"
#define ED_V1A                                                                                     \
    "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="

static void test_ed25519(void **state)
{
    (void)state;
    hk_ed_key ed;
    memset(&ed, 0, sizeof ed);
    char pub[HK_ED25519_TEXT_LEN];
    assert_int_equal(hk_ed25519_parse(ED_PRIV, ed.priv), HK_OK);
    assert_int_equal(hk_ed25519_public_text(ED_PRIV, pub), HK_OK);
    assert_string_equal(pub, ED_PUB);
    uint8_t sig[64];
    char hex[129];
    hk_iov none = {"", 0};
    assert_int_equal(hk_ed25519_sign(ed.priv, NULL, &none, 1, sig), HK_OK);
    hk_hex(sig, sizeof sig, hex);
    assert_string_equal(hex, ED_EMPTY_SIG);
    /* the same with the OpenSSL key made once */
    ed.pkey = hk_ed25519_key_new(ed.priv);
    assert_non_null(ed.pkey);
    memset(sig, 0, sizeof sig);
    assert_int_equal(hk_ed25519_sign(ed.priv, ed.pkey, &none, 1, sig), HK_OK);
    hk_hex(sig, sizeof sig, hex);
    assert_string_equal(hex, ED_EMPTY_SIG);
    hk_ed_keys_clear(&ed, 1);
    assert_null(ed.pkey);
    /* not keys */
    assert_int_equal(
        hk_ed25519_parse("whsec_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=", ed.priv), HK_EINVAL);
    assert_int_equal(hk_ed25519_parse("whsk_AAAA", ed.priv), HK_EINVAL);
    assert_int_equal(hk_ed25519_public_text("whsk_!", pub), HK_EINVAL);
    /* a generated key reads back */
    char gen[HK_ED25519_TEXT_LEN];
    assert_int_equal(hk_ed25519_generate(gen), HK_OK);
    assert_int_equal(strlen(gen), 49);
    assert_int_equal(hk_ed25519_parse(gen, ed.priv), HK_OK);

    /* the headers: v1 then v1a in one webhook-signature; two keys: two v1a, newest first */
    hk_sign_key k;
    assert_int_equal(hk_sign_key_init(&k, SECRET), HK_OK);
    hk_ed_key two[2];
    memset(two, 0, sizeof two);
    assert_int_equal(hk_ed25519_parse(ED_PRIV, two[0].priv), HK_OK);
    assert_int_equal(hk_ed25519_parse(gen, two[1].priv), HK_OK);
    two[1].pkey = hk_ed25519_key_new(two[1].priv); /* one made once, one per signature */
    hk_buf b;
    hk_buf_init(&b, 4096);
    assert_int_equal(hk_sign_headers_ed(HK_SIG_STANDARD | HK_SIG_ED25519, MSG_ID, TS, BODY,
                                        strlen(BODY), &k, 1, two, 1, &b),
                     HK_OK);
    assert_string_equal(hk_buf_cstr(&b), "webhook-id: " MSG_ID "\nwebhook-timestamp: 1614265330\n"
                                         "webhook-signature: " STD_SIG " " ED_V1A "\n");
    hk_buf_reset(&b);
    assert_int_equal(
        hk_sign_headers_ed(HK_SIG_ED25519, MSG_ID, TS, BODY, strlen(BODY), &k, 1, two, 2, &b),
        HK_OK);
    const char *v = strstr(hk_buf_cstr(&b), "webhook-signature: ");
    assert_non_null(v);
    assert_memory_equal(v + 19, ED_V1A " v1a,", strlen(ED_V1A) + 5);
    /* ed25519 chosen without a key: nothing */
    hk_buf_reset(&b);
    assert_int_equal(hk_sign_headers_ed(HK_SIG_ED25519, MSG_ID, TS, BODY, 5, &k, 1, NULL, 0, &b),
                     HK_EINVAL);
    assert_int_equal(b.len, 0);
    /* hk_sign_headers ignores the scheme (no keys to sign with) */
    assert_int_equal(
        hk_sign_headers(HK_SIG_ED25519 | HK_SIG_SHA256, MSG_ID, TS, BODY, 5, &k, 1, &b), HK_OK);
    assert_null(strstr(hk_buf_cstr(&b), "v1a"));
    hk_buf_free(&b);
    hk_ed_keys_clear(two, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_vector),
        cmocka_unit_test(test_key_init),
        cmocka_unit_test(test_raw_fallback),
        cmocka_unit_test(test_scheme_names),
        cmocka_unit_test(test_headers_one_secret),
        cmocka_unit_test(test_headers_two_secrets),
        cmocka_unit_test(test_headers_errors),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_ed25519),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
