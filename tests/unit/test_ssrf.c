/*
 * test_ssrf.c: the SSRF guard. Range classification of IPv4 and IPv6 addresses (every range,
 * its boundaries, every IPv4 range in each IPv6 form that carries an IPv4 address), the
 * connect-time check with and without HOOKD_ALLOW_NETWORKS (and its messages), and webhook
 * URL validation (schemes, credentials, length, control characters, literal hosts in every
 * spelling curl and the resolver accept, localhost names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "core/config.h"
#include "delivery/ssrf.h"

#define FIX "hookd refuses it (allow with HOOKD_ALLOW_NETWORKS)"

/* An address in text form as the 16 bytes hk_ssrf_classify takes (IPv4 as IPv4-mapped). */
static void parse_addr(const char *s, uint8_t a[16])
{
    uint8_t v4[4];
    memset(a, 0, 16);
    if (inet_pton(AF_INET, s, v4) == 1) {
        a[10] = a[11] = 0xff;
        memcpy(a + 12, v4, 4);
        return;
    }
    if (inet_pton(AF_INET6, s, a) != 1) fail_msg("bad test address %s", s);
}

/* A guard for the allow list `allow` (HOOKD_ALLOW_NETWORKS syntax, parsed by config.c). */
static hk_ssrf_guard *guard_for(const char *allow)
{
    hk_config cfg;
    char err[256] = "";
    memset(&cfg, 0, sizeof cfg);
    int n = hk_cidr_list_parse(allow, cfg.allow_networks, HK_CONFIG_MAX_NETWORKS, err, sizeof err);
    if (n < 0) fail_msg("bad allow list %s: %s", allow, err);
    cfg.allow_networks_len = n;
    return hk_ssrf_guard_new(&cfg);
}

/* ---- classification ------------------------------------------------------------------------- */

typedef struct class_case {
    const char *addr;
    const char *cls; /* NULL: public */
} class_case;

static const class_case class_cases[] = {
    /* IPv4: every range and the addresses just outside it */
    {"0.0.0.0", "unspecified"},
    {"0.255.255.255", "unspecified"},
    {"1.0.0.0", NULL},
    {"1.1.1.1", NULL},
    {"8.8.8.8", NULL},
    {"9.255.255.255", NULL},
    {"10.0.0.0", "private"},
    {"10.255.255.255", "private"},
    {"11.0.0.0", NULL},
    {"100.63.255.255", NULL},
    {"100.64.0.0", "cgnat"},
    {"100.127.255.255", "cgnat"},
    {"100.128.0.0", NULL},
    {"126.255.255.255", NULL},
    {"127.0.0.0", "loopback"},
    {"127.0.0.1", "loopback"},
    {"127.255.255.255", "loopback"},
    {"128.0.0.0", NULL},
    {"169.253.255.255", NULL},
    {"169.254.0.0", "link-local"},
    {"169.254.169.254", "link-local"},
    {"169.254.255.255", "link-local"},
    {"169.255.0.0", NULL},
    {"172.15.255.255", NULL},
    {"172.16.0.0", "private"},
    {"172.31.255.255", "private"},
    {"172.32.0.0", NULL},
    {"191.255.255.255", NULL},
    {"192.0.0.0", "ietf-protocol"},
    {"192.0.0.255", "ietf-protocol"},
    {"192.0.1.0", NULL},
    {"192.0.2.0", "documentation"},
    {"192.0.2.255", "documentation"},
    {"192.0.3.0", NULL},
    {"192.167.255.255", NULL},
    {"192.168.0.0", "private"},
    {"192.168.255.255", "private"},
    {"192.169.0.0", NULL},
    {"198.17.255.255", NULL},
    {"198.18.0.0", "benchmarking"},
    {"198.19.255.255", "benchmarking"},
    {"198.20.0.0", NULL},
    {"198.51.99.255", NULL},
    {"198.51.100.0", "documentation"},
    {"198.51.100.255", "documentation"},
    {"198.51.101.0", NULL},
    {"203.0.112.255", NULL},
    {"203.0.113.0", "documentation"},
    {"203.0.113.255", "documentation"},
    {"203.0.114.0", NULL},
    {"223.255.255.255", NULL},
    {"224.0.0.0", "multicast"},
    {"239.255.255.255", "multicast"},
    {"240.0.0.0", "reserved"},
    {"255.255.255.254", "reserved"},
    {"255.255.255.255", "reserved"},
    /* IPv6 */
    {"::", "unspecified"},
    {"::1", "loopback"},
    {"2606:4700::1111", NULL},
    {"2001:4860:4860::8888", NULL},
    {"2a00:1450:4001:80b::200e", NULL},
    {"2000::", NULL},
    {"3fff:1000::", NULL},
    {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"4000::1", "reserved"},
    {"100::1", "reserved"},
    {"5f00::1", "reserved"},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"fc00::", "ula"},
    {"fd12:3456::1", "ula"},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ula"},
    {"fe00::1", "reserved"},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "reserved"},
    {"fe80::", "link-local"},
    {"fe80::1", "link-local"},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link-local"},
    {"fec0::1", "site-local"},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site-local"},
    {"ff00::", "multicast"},
    {"ff02::1", "multicast"},
    {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "multicast"},
    {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", NULL},
    {"2001:db8::", "documentation"},
    {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
    {"2001:db9::", NULL},
    {"3fff::1", "documentation"},
    {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"},
    {"2001:1::", "ietf-protocol"},
    {"2001:1::1", NULL},
    {"2001:1::2", NULL},
    {"2001:2::1", "benchmarking"},
    {"2001:2:0:ffff::1", "benchmarking"},
    {"2001:2:1::1", "ietf-protocol"},
    {"2001:3::1", NULL},
    {"2001:4:112::1", NULL},
    {"2001:10::1", "ietf-protocol"},
    {"2001:20::1", NULL},
    {"2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "ietf-protocol"},
    {"2001:200::", NULL},
    /* IPv4-mapped */
    {"::ffff:127.0.0.1", "loopback"},
    {"::ffff:10.0.0.1", "private"},
    {"::ffff:169.254.169.254", "link-local"},
    {"::ffff:0.0.0.0", "unspecified"},
    {"::ffff:8.8.8.8", NULL},
    /* IPv4-translated (SIIT ::ffff:0:0:0/96): not mapped, in ::/8 */
    {"::ffff:0:7f00:1", "reserved"},
    {"::ffff:0:808:808", "reserved"},
    /* IPv4-compatible */
    {"::127.0.0.1", "loopback"},
    {"::10.1.2.3", "private"},
    {"::2", "unspecified"},
    {"::8.8.8.8", NULL},
    {"::1:0:0:1", "reserved"},
    /* NAT64 */
    {"64:ff9b::a9fe:a9fe", "link-local"},
    {"64:ff9b::7f00:1", "loopback"},
    {"64:ff9b::a00:1", "private"},
    {"64:ff9b::808:808", NULL},
    {"64:ff9b::", "unspecified"},
    {"64:ff9b:1::c0a8:101", "private"},
    {"64:ff9b:1::808:808", NULL},
    {"64:ff9b:1:ffff::808:808", "reserved"}, /* local-use /48, not in its /96 form */
    {"64:ff9b:0:1::808:808", "reserved"},
    {"64:ff9b:1:0:0:1:808:808", "reserved"},
    /* 6to4 */
    {"2002:7f00:1::", "loopback"},
    {"2002:a9fe:a9fe::1", "link-local"},
    {"2002:c0a8:101::", "private"},
    {"2002:0808:0808::", NULL},
    {"2002:0101:0101:1::1", NULL},
    {"2002::", "unspecified"},
    /* Teredo: client address = last 32 bits XOR 0xffffffff */
    {"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"},   /* 127.0.0.1 */
    {"2001:0:4136:e378:8000:63bf:3f57:fefe", "private"},    /* 192.168.1.1 */
    {"2001:0:4136:e378:8000:63bf:5601:5601", "link-local"}, /* 169.254.169.254 */
    {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", NULL},         /* 8.8.8.8 */
    {"2001::ffff:ffff", "unspecified"},                     /* 0.0.0.0 */
};

static void test_classify_table(void **state)
{
    (void)state;
    assert_true(HK_ARRAY_LEN(class_cases) >= 60);
    for (size_t i = 0; i < HK_ARRAY_LEN(class_cases); i++) {
        uint8_t a[16];
        parse_addr(class_cases[i].addr, a);
        const char *got = hk_ssrf_classify(a);
        const char *want = class_cases[i].cls;
        if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
            fail_msg("%s: got %s, want %s", class_cases[i].addr, got ? got : "public",
                     want ? want : "public");
    }
}

/* Every IPv4 range, seen through every IPv6 form that carries an IPv4 address, is classified
 * as the IPv4 address itself: IPv4-mapped, IPv4-compatible, NAT64 (64:ff9b::/96 and the
 * local-use 64:ff9b:1::/96), 6to4 (2002::/16) and Teredo (2001::/32, client XOR 0xff). */
static void test_classify_every_v4_range_in_every_v6_form(void **state)
{
    (void)state;
    static const class_case v4[] = {
        {"0.1.2.3", "unspecified"},
        {"10.1.2.3", "private"},
        {"100.64.1.2", "cgnat"},
        {"100.127.255.254", "cgnat"},
        {"127.0.0.1", "loopback"},
        {"127.9.9.9", "loopback"},
        {"169.254.169.254", "link-local"},
        {"172.16.5.4", "private"},
        {"172.31.0.1", "private"},
        {"192.0.0.8", "ietf-protocol"},
        {"192.0.2.1", "documentation"},
        {"192.168.1.1", "private"},
        {"198.18.0.1", "benchmarking"},
        {"198.51.100.1", "documentation"},
        {"203.0.113.1", "documentation"},
        {"224.0.0.1", "multicast"},
        {"239.255.0.1", "multicast"},
        {"240.0.0.1", "reserved"},
        {"255.255.255.255", "reserved"},
        {"8.8.8.8", NULL},
        {"1.1.1.1", NULL},
        {"100.128.0.1", NULL},
        {"172.32.0.1", NULL},
        {"223.255.255.254", NULL},
    };
    enum { MAPPED, COMPAT, NAT64, NAT64_LOCAL, SIX_TO_FOUR, TEREDO, NFORMS };
    static const char *const form_names[NFORMS] = {"mapped",          "compatible", "NAT64",
                                                   "NAT64 local-use", "6to4",       "Teredo"};
    for (size_t i = 0; i < HK_ARRAY_LEN(v4); i++) {
        uint8_t b[4];
        assert_int_equal(inet_pton(AF_INET, v4[i].addr, b), 1);
        for (int f = 0; f < NFORMS; f++) {
            uint8_t a[16] = {0};
            switch (f) {
            case MAPPED:
                a[10] = a[11] = 0xff;
                memcpy(a + 12, b, 4);
                break;
            case COMPAT:
                memcpy(a + 12, b, 4);
                break;
            case NAT64:
            case NAT64_LOCAL:
                a[1] = 0x64, a[2] = 0xff, a[3] = 0x9b;
                if (f == NAT64_LOCAL) a[5] = 1;
                memcpy(a + 12, b, 4);
                break;
            case SIX_TO_FOUR:
                a[0] = 0x20, a[1] = 0x02;
                memcpy(a + 2, b, 4);
                a[15] = 1;
                break;
            case TEREDO:
                a[0] = 0x20, a[1] = 0x01, a[4] = 0x41, a[5] = 0x36; /* server 65.54.x.x */
                for (int k = 0; k < 4; k++) a[12 + k] = (uint8_t)(b[k] ^ 0xffu);
                break;
            }
            const char *got = hk_ssrf_classify(a), *want = v4[i].cls;
            if ((got == NULL) != (want == NULL) || (got && strcmp(got, want) != 0))
                fail_msg("%s in its %s form: got %s, want %s", v4[i].addr, form_names[f],
                         got ? got : "public", want ? want : "public");
            /* the connect-time check refuses exactly the refused ones, and allowing the IPv4
             * block allows every form of it */
            struct sockaddr_in6 sin6;
            memset(&sin6, 0, sizeof sin6);
            sin6.sin6_family = AF_INET6;
            memcpy(&sin6.sin6_addr, a, 16);
            char allow[40];
            snprintf(allow, sizeof allow, "%s/32", v4[i].addr);
            hk_ssrf_guard *none = guard_for(""), *g = guard_for(allow);
            assert_int_equal(hk_ssrf_check(none, (struct sockaddr *)&sin6, sizeof sin6, NULL, 0),
                             want ? HK_EDENIED : HK_OK);
            assert_int_equal(hk_ssrf_check(g, (struct sockaddr *)&sin6, sizeof sin6, NULL, 0),
                             HK_OK);
            hk_ssrf_guard_free(none);
            hk_ssrf_guard_free(g);
        }
    }
}

/* The names are stable constants: the same pointer every time, for IPv4 and IPv6 alike. */
static void test_classify_names_stable(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    parse_addr("127.0.0.1", a);
    parse_addr("::1", b);
    const char *x = hk_ssrf_classify(a);
    assert_string_equal(x, "loopback");
    assert_ptr_equal(hk_ssrf_classify(a), x);
    assert_string_equal(hk_ssrf_classify(b), "loopback");
}

/* ---- connect-time check ---------------------------------------------------------------------- */

static int check4(const hk_ssrf_guard *g, const char *s, char *msg, size_t msglen)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons(443);
    assert_int_equal(inet_pton(AF_INET, s, &sin.sin_addr), 1);
    return hk_ssrf_check(g, (const struct sockaddr *)&sin, sizeof sin, msg, msglen);
}

static int check6(const hk_ssrf_guard *g, const char *s, char *msg, size_t msglen)
{
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_port = htons(443);
    assert_int_equal(inet_pton(AF_INET6, s, &sin6.sin6_addr), 1);
    return hk_ssrf_check(g, (const struct sockaddr *)&sin6, sizeof sin6, msg, msglen);
}

/* hk_ssrf_check on either family, by the text's form. */
static int check_any(const hk_ssrf_guard *g, const char *s)
{
    char msg[256];
    return strchr(s, ':') ? check6(g, s, msg, sizeof msg) : check4(g, s, msg, sizeof msg);
}

static void test_check_messages(void **state)
{
    (void)state;
    hk_ssrf_guard *g = guard_for("");
    char msg[256];

    msg[0] = '\0';
    assert_int_equal(check4(g, "8.8.8.8", msg, sizeof msg), HK_OK);
    assert_string_equal(msg, "");
    assert_int_equal(check6(g, "2606:4700::1111", msg, sizeof msg), HK_OK);

    assert_int_equal(check4(g, "127.0.0.1", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address 127.0.0.1 is loopback; " FIX);
    assert_int_equal(check4(g, "169.254.169.254", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address 169.254.169.254 is link-local; " FIX);
    assert_int_equal(check6(g, "::1", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address ::1 is loopback; " FIX);
    assert_int_equal(check6(g, "::ffff:10.0.0.1", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address ::ffff:10.0.0.1 is private; " FIX);
    assert_int_equal(check6(g, "64:ff9b::a9fe:a9fe", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(
        msg, "address 64:ff9b::a9fe:a9fe (NAT64 of 169.254.169.254) is link-local; " FIX);
    assert_int_equal(check6(g, "2002:7f00:1::", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address 2002:7f00:1:: (6to4 of 127.0.0.1) is loopback; " FIX);
    assert_int_equal(check6(g, "2001:0:4136:e378:8000:63bf:80ff:fffe", msg, sizeof msg),
                     HK_EDENIED);
    assert_string_equal(msg, "address 2001:0:4136:e378:8000:63bf:80ff:fffe (Teredo client "
                             "127.0.0.1) is loopback; " FIX);
    assert_int_equal(check6(g, "fd00::1", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address fd00::1 is ula; " FIX);
    assert_int_equal(check6(g, "fe80::1", msg, sizeof msg), HK_EDENIED);
    assert_string_equal(msg, "address fe80::1 is link-local; " FIX);

    /* a short buffer is truncated and terminated; no buffer at all is fine */
    char small[12];
    memset(small, 'x', sizeof small);
    assert_int_equal(check4(g, "10.0.0.1", small, sizeof small), HK_EDENIED);
    assert_string_equal(small, "address 10.");
    assert_int_equal(check4(g, "10.0.0.1", NULL, 0), HK_EDENIED);
    assert_int_equal(check4(NULL, "10.0.0.1", NULL, 0), HK_EDENIED); /* no guard: no allow list */
    assert_int_equal(check4(NULL, "8.8.8.8", NULL, 0), HK_OK);
    hk_ssrf_guard_free(g);
}

static void test_check_bad_sockaddr(void **state)
{
    (void)state;
    hk_ssrf_guard *g = guard_for("0.0.0.0/0, ::/0");
    char msg[256];
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    assert_int_equal(hk_ssrf_check(g, (struct sockaddr *)&sun, sizeof sun, msg, sizeof msg),
                     HK_EDENIED);
    assert_string_equal(msg, "address family 1 is not IPv4 or IPv6; hookd refuses it");
    assert_int_equal(hk_ssrf_check(g, NULL, 0, msg, sizeof msg), HK_EDENIED);

    /* a length too short for the family it claims */
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    assert_int_equal(hk_ssrf_check(g, (struct sockaddr *)&sin, sizeof sin - 1, msg, sizeof msg),
                     HK_EDENIED);
    struct sockaddr_in6 sin6;
    memset(&sin6, 0, sizeof sin6);
    sin6.sin6_family = AF_INET6;
    sin6.sin6_addr.s6_addr[15] = 1;
    assert_int_equal(hk_ssrf_check(g, (struct sockaddr *)&sin6, sizeof sin, msg, sizeof msg),
                     HK_EDENIED);
    assert_int_equal(hk_ssrf_check(g, (struct sockaddr *)&sin6, sizeof sin6, msg, sizeof msg),
                     HK_OK);
    hk_ssrf_guard_free(g);
}

typedef struct allow_case {
    const char *allow;
    const char *addr;
    int rc;
} allow_case;

static const allow_case allow_cases[] = {
    {"127.0.0.0/8", "127.0.0.1", HK_OK},
    {"127.0.0.0/8", "127.255.255.255", HK_OK},
    {"127.0.0.0/8", "::ffff:127.0.0.1", HK_OK},
    {"127.0.0.0/8", "::127.0.0.1", HK_OK},
    {"127.0.0.0/8", "64:ff9b::7f00:1", HK_OK},
    {"127.0.0.0/8", "64:ff9b:1::7f00:1", HK_OK},
    {"127.0.0.0/8", "2002:7f00:1::", HK_OK},
    {"127.0.0.0/8", "2001:0:4136:e378:8000:63bf:80ff:fffe", HK_OK},
    {"127.0.0.0/8", "::1", HK_EDENIED},
    {"127.0.0.0/8", "10.0.0.1", HK_EDENIED},
    {"127.0.0.0/8", "::ffff:10.0.0.1", HK_EDENIED},
    {"127.0.0.0/8", "64:ff9b::a9fe:a9fe", HK_EDENIED},
    {"127.0.0.1", "127.0.0.1", HK_OK},
    {"127.0.0.1", "127.0.0.2", HK_EDENIED},
    {"::1/128", "::1", HK_OK},
    {"::1/128", "127.0.0.1", HK_EDENIED},
    {"10.1.0.0/16", "10.0.255.255", HK_EDENIED},
    {"10.1.0.0/16", "10.1.0.0", HK_OK},
    {"10.1.0.0/16", "10.1.255.255", HK_OK},
    {"10.1.0.0/16", "10.2.0.0", HK_EDENIED},
    {"10.1.0.0/16", "8.8.8.8", HK_OK}, /* public stays allowed */
    {"192.168.0.0/16, 172.16.0.0/12", "172.20.1.1", HK_OK},
    {"192.168.0.0/16, 172.16.0.0/12", "192.168.9.9", HK_OK},
    {"192.168.0.0/16, 172.16.0.0/12", "10.0.0.1", HK_EDENIED},
    {"169.254.169.254/32", "169.254.169.254", HK_OK},
    {"169.254.169.254/32", "169.254.169.253", HK_EDENIED},
    {"fd00::/8", "fd12::1", HK_OK},
    {"fd00::/8", "fc00::1", HK_EDENIED},
    {"fe80::/10", "fe80::1", HK_OK},
    {"64:ff9b::/96", "64:ff9b::a9fe:a9fe", HK_OK}, /* the IPv6 block itself */
    {"::ffff:0:0/96", "127.0.0.1", HK_OK},         /* IPv4 is compared in mapped form */
    {"0.0.0.0/0", "127.0.0.1", HK_OK},
    {"0.0.0.0/0", "::ffff:10.0.0.1", HK_OK},
    {"0.0.0.0/0", "2002:a9fe:a9fe::", HK_OK},
    {"0.0.0.0/0", "::1", HK_EDENIED},
    {"0.0.0.0/0", "fe80::1", HK_EDENIED},
    {"::/0", "::1", HK_OK},
    {"::/0", "10.0.0.1", HK_OK},
    {"", "127.0.0.1", HK_EDENIED},
};

static void test_check_allow(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(allow_cases); i++) {
        hk_ssrf_guard *g = guard_for(allow_cases[i].allow);
        int rc = check_any(g, allow_cases[i].addr);
        hk_ssrf_guard_free(g);
        if (rc != allow_cases[i].rc)
            fail_msg("allow \"%s\", %s: got %d, want %d", allow_cases[i].allow, allow_cases[i].addr,
                     rc, allow_cases[i].rc);
    }
}

/* The guard copies the allow list: changing the config afterwards changes nothing. */
static void test_guard_copies_config(void **state)
{
    (void)state;
    hk_config cfg;
    char err[128];
    memset(&cfg, 0, sizeof cfg);
    cfg.allow_networks_len = hk_cidr_list_parse("10.0.0.0/8", cfg.allow_networks,
                                                HK_CONFIG_MAX_NETWORKS, err, sizeof err);
    assert_int_equal(cfg.allow_networks_len, 1);
    hk_ssrf_guard *g = hk_ssrf_guard_new(&cfg);
    memset(&cfg, 0, sizeof cfg);
    assert_int_equal(check_any(g, "10.9.9.9"), HK_OK);
    hk_ssrf_guard_free(g);

    g = hk_ssrf_guard_new(NULL); /* never NULL; nothing allowed */
    assert_non_null(g);
    assert_int_equal(check_any(g, "10.9.9.9"), HK_EDENIED);
    hk_ssrf_guard_free(g);
    hk_ssrf_guard_free(NULL);
}

/* ---- URL validation ------------------------------------------------------------------------ */

typedef struct url_case {
    const char *url;
    int https_only;
    const char *allow;
    const char *msg; /* NULL: accepted; else the exact message */
} url_case;

#define ABS        "url must be an absolute http or https URL"
#define SCHEME     "url must use http or https"
#define CREDS      "url must not contain a user name or password"
#define CTRL(b, o) "url must not contain spaces or control characters (byte " b " at offset " o ")"
#define LOOP       "url host 127.0.0.1 is a loopback address; " FIX

static const url_case url_cases[] = {
    /* accepted */
    {"https://example.com/hook", 0, "", NULL},
    {"http://example.com/hook", 0, "", NULL},
    {"HTTPS://Example.COM:8443/a/b?x=1&y=%20#frag", 0, "", NULL},
    {"https://example.com/hook", 1, "", NULL},
    {"https://8.8.8.8/", 0, "", NULL},
    {"https://[2606:4700::1111]:443/x", 0, "", NULL},
    {"http://[::ffff:8.8.8.8]/", 0, "", NULL},
    {"http://134744072/", 0, "", NULL},        /* 8.8.8.8 */
    {"http://127.0.0.1.nip.io/", 0, "", NULL}, /* a name: checked at connect time */
    {"http://localhost.example.com/", 0, "", NULL},
    {"http://mylocalhost/", 0, "", NULL},
    {"https://xn--bcher-kva.example/", 0, "", NULL},
    {"http://08.0.0.1/", 0, "", NULL}, /* not a number for inet_aton: a (bad) name */
    {"http://example.com:65535/", 0, "", NULL},
    /* scheme, form */
    {"ftp://example.com/", 0, "", SCHEME},
    {"gopher://example.com/", 0, "", SCHEME},
    {"file:///etc/passwd", 0, "", SCHEME},
    {"javascript:alert(1)", 0, "", SCHEME},
    {"javascript://example.com/%0aalert(1)", 0, "", SCHEME},
    {"/relative/path", 0, "", ABS},
    {"relative", 0, "", ABS},
    {"//example.com/x", 0, "", ABS},
    {"", 0, "", ABS},
    {"http://", 0, "", "url must have a host"},
    {"http:///x", 0, "", "url must have a host (scheme://host/path)"}, /* curl: host x */
    {"http:/x", 0, "", "url must have a host (scheme://host/path)"},
    {"HTTPS:///x", 0, "", "url must have a host (scheme://host/path)"},
    {"https:///", 0, "", "url must have a host"},
    {"http://:80/x", 0, "", "url must have a host"},
    {"http://?x", 0, "", "url must have a host"},
    {"http://example.com:0/", 0, "", "url port must be a number 1..65535"},
    {"http://example.com:65536/", 0, "", "url port must be a number 1..65535"},
    {"http://example.com/hook", 1, "", "url must use https (HOOKD_HTTPS_ONLY=1)"},
    {"http://127.0.0.1/", 1, "127.0.0.0/8", "url must use https (HOOKD_HTTPS_ONLY=1)"},
    /* credentials */
    {"http://user:pass@example.com/", 0, "", CREDS},
    {"http://user@example.com/", 0, "", CREDS},
    {"http://:pass@example.com/", 0, "", CREDS},
    {"http://@example.com/", 0, "", CREDS},
    /* bytes */
    {"http://example.com/\r\nX-Injected: 1", 0, "", CTRL("0x0d", "19")},
    {"http://example.com/a\nb", 0, "", CTRL("0x0a", "20")},
    {"http://exa mple.com/", 0, "", CTRL("0x20", "10")},
    {"http://example.com/\ta", 0, "", CTRL("0x09", "19")},
    {"http://example.com/\x7f", 0, "", CTRL("0x7f", "19")},
    {" http://example.com/", 0, "", CTRL("0x20", "0")},
    /* literal addresses in every spelling */
    {"http://127.0.0.1/", 0, "", LOOP},
    {"http://127.0.0.1:8080/x", 0, "", LOOP},
    {"http://2130706433/", 0, "", LOOP},
    {"http://0x7f000001/", 0, "", LOOP},
    {"http://0x7f.1/", 0, "", LOOP},
    {"http://0177.0.0.1/", 0, "", LOOP},
    {"http://127.1/", 0, "", LOOP},
    {"http://127.0.1/", 0, "", LOOP},
    {"http://017700000001/", 0, "", LOOP},
    {"http://%31%32%37.0.0.1/", 0, "", LOOP},
    {"http://127.0.0.1./", 0, "", "url host 127.0.0.1. (= 127.0.0.1) is a loopback address; " FIX},
    {"http://0x7f.1%2e/", 0, "", "url host 0x7f.1. (= 127.0.0.1) is a loopback address; " FIX},
    {"http://0.0.0.0/", 0, "", "url host 0.0.0.0 is an unspecified address; " FIX},
    {"http://0/", 0, "", "url host 0.0.0.0 is an unspecified address; " FIX},
    {"http://10.0.0.1/", 0, "", "url host 10.0.0.1 is a private address; " FIX},
    {"http://172.16.0.1/", 0, "", "url host 172.16.0.1 is a private address; " FIX},
    {"http://172.15.255.255/", 0, "", NULL},
    {"http://192.168.1.1/", 0, "", "url host 192.168.1.1 is a private address; " FIX},
    {"http://100.64.0.1/", 0, "", "url host 100.64.0.1 is a cgnat address; " FIX},
    {"http://100.63.255.255/", 0, "", NULL},
    {"http://169.254.169.254/latest/meta-data", 0, "",
     "url host 169.254.169.254 is a link-local address; " FIX},
    {"http://224.0.0.1/", 0, "", "url host 224.0.0.1 is a multicast address; " FIX},
    {"http://255.255.255.255/", 0, "", "url host 255.255.255.255 is a reserved address; " FIX},
    {"http://192.0.0.8/", 0, "", "url host 192.0.0.8 is an ietf-protocol address; " FIX},
    {"http://[::1]/", 0, "", "url host ::1 is a loopback address; " FIX},
    {"http://[::]/", 0, "", "url host :: is an unspecified address; " FIX},
    {"http://[::ffff:127.0.0.1]/", 0, "", "url host ::ffff:127.0.0.1 is a loopback address; " FIX},
    {"http://[0:0:0:0:0:ffff:7f00:1]/", 0, "",
     "url host ::ffff:127.0.0.1 is a loopback address; " FIX},
    {"http://[::127.0.0.1]/", 0, "", "url host ::127.0.0.1 is a loopback address; " FIX},
    {"http://[64:ff9b::a9fe:a9fe]/", 0, "",
     "url host 64:ff9b::a9fe:a9fe (NAT64 of 169.254.169.254) is a link-local address; " FIX},
    {"http://[2002:7f00:1::]/", 0, "",
     "url host 2002:7f00:1:: (6to4 of 127.0.0.1) is a loopback address; " FIX},
    {"http://[fe80::1%25eth0]/", 0, "", "url host fe80::1 is a link-local address; " FIX},
    {"http://[fe80::1%eth0]:8080/", 0, "", "url host fe80::1 is a link-local address; " FIX},
    {"http://[fd00::1]/", 0, "", "url host fd00::1 is a ula address; " FIX},
    {"http://[2001:db8::1]/", 0, "", "url host 2001:db8::1 is a documentation address; " FIX},
    /* localhost names */
    {"http://localhost/", 0, "", "url host localhost is a loopback name; " FIX},
    {"http://localhost:8080/hook", 0, "", "url host localhost is a loopback name; " FIX},
    {"http://LOCALHOST/", 0, "", "url host LOCALHOST is a loopback name; " FIX},
    {"http://localhost./", 0, "", "url host localhost. is a loopback name; " FIX},
    {"http://loc%61lhost/", 0, "", "url host localhost is a loopback name; " FIX},
    {"http://foo.localhost/", 0, "", "url host foo.localhost is a loopback name; " FIX},
    {"http://a.b.Localhost./", 0, "", "url host a.b.Localhost. is a loopback name; " FIX},
    /* names curl maps through IDNA in a UTF-8 locale (fullwidth "localhost", "127.0.0.1") */
    {"http://\xef\xbd\x8c\xef\xbd\x8f\xef\xbd\x83\xef\xbd\x81\xef\xbd\x8c\xef\xbd\x88\xef\xbd\x8f"
     "\xef\xbd\x93\xef\xbd\x94/",
     0, "", "url host must be ASCII (write an internationalized name in its punycode xn-- form)"},
    {"http://\xef\xbc\x91\xef\xbc\x92\xef\xbc\x97.0.0.1/", 0, "",
     "url host must be ASCII (write an internationalized name in its punycode xn-- form)"},
    /* allowed when HOOKD_ALLOW_NETWORKS covers it */
    {"http://127.0.0.1:9000/hook", 0, "127.0.0.0/8", NULL},
    {"http://2130706433/", 0, "127.0.0.0/8", NULL},
    {"http://0x7f.1/", 0, "127.0.0.0/8", NULL},
    {"http://[::ffff:127.0.0.1]/", 0, "127.0.0.0/8", NULL},
    {"http://[::1]/", 0, "127.0.0.0/8", "url host ::1 is a loopback address; " FIX},
    {"http://[::1]/", 0, "::1/128", NULL},
    {"http://localhost:9000/", 0, "127.0.0.0/8", NULL},
    {"http://foo.localhost/", 0, "127.0.0.0/8", NULL},
    {"http://localhost/", 0, "::1", NULL},
    {"http://localhost/", 0, "10.0.0.0/8", "url host localhost is a loopback name; " FIX},
    {"http://10.1.2.3/", 0, "10.0.0.0/8", NULL},
    {"http://169.254.169.254/", 0, "10.0.0.0/8",
     "url host 169.254.169.254 is a link-local address; " FIX},
    {"https://[fe80::1%25eth0]/", 1, "fe80::/10", NULL},
};

static void test_url_validate_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < HK_ARRAY_LEN(url_cases); i++) {
        const url_case *c = &url_cases[i];
        hk_ssrf_guard *g = guard_for(c->allow);
        char msg[320] = "";
        int rc = hk_url_validate(g, c->url, c->https_only, msg, sizeof msg);
        hk_ssrf_guard_free(g);
        if (!c->msg && rc != HK_OK) fail_msg("%s: refused (%d): %s", c->url, rc, msg);
        if (c->msg && rc != HK_EINVAL) fail_msg("%s: accepted, want \"%s\"", c->url, c->msg);
        if (c->msg && strcmp(msg, c->msg) != 0)
            fail_msg("%s:\n got \"%s\"\nwant \"%s\"", c->url, msg, c->msg);
    }
}

static void test_url_validate_length(void **state)
{
    (void)state;
    hk_ssrf_guard *g = guard_for("");
    char msg[320];
    char url[2100];
    const char *head = "https://example.com/";
    size_t hl = strlen(head);
    memcpy(url, head, hl);
    memset(url + hl, 'a', 2048 - hl);
    url[2048] = '\0';
    assert_int_equal(hk_url_validate(g, url, 0, msg, sizeof msg), HK_OK); /* exactly 2048 */
    url[2048] = 'a';
    url[2049] = '\0';
    assert_int_equal(hk_url_validate(g, url, 0, msg, sizeof msg), HK_EINVAL);
    assert_string_equal(msg, "url must be at most 2048 bytes");

    /* a host name as long as the URL allows */
    memcpy(url, "http://", 7);
    memset(url + 7, 'a', 2040);
    memcpy(url + 2040, ".localhost", 11);
    assert_int_equal(strlen(url), 2050);
    assert_int_equal(hk_url_validate(g, url, 0, msg, sizeof msg), HK_EINVAL);
    assert_string_equal(msg, "url must be at most 2048 bytes");
    memcpy(url + 2038, ".localhost", 11);
    assert_int_equal(strlen(url), 2048);
    assert_int_equal(hk_url_validate(g, url, 0, msg, sizeof msg), HK_EINVAL);
    assert_true(strncmp(msg, "url host aaaa", 13) == 0);
    assert_non_null(strstr(msg, " is a loopback name; " FIX));
    hk_ssrf_guard_free(g);
}

static void test_url_validate_edges(void **state)
{
    (void)state;
    hk_ssrf_guard *g = guard_for("");
    char msg[320];
    assert_int_equal(hk_url_validate(g, NULL, 0, msg, sizeof msg), HK_EINVAL);
    assert_string_equal(msg, ABS);
    assert_int_equal(hk_url_validate(g, "http://127.0.0.1/", 0, NULL, 0), HK_EINVAL);
    assert_int_equal(hk_url_validate(NULL, "http://127.0.0.1/", 0, msg, sizeof msg), HK_EINVAL);
    assert_string_equal(msg, LOOP);
    assert_int_equal(hk_url_validate(NULL, "https://example.com/", 0, msg, sizeof msg), HK_OK);
    char small[8];
    assert_int_equal(hk_url_validate(g, "ftp://x/", 0, small, sizeof small), HK_EINVAL);
    assert_string_equal(small, "url mus");
    hk_ssrf_guard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_table),
        cmocka_unit_test(test_classify_every_v4_range_in_every_v6_form),
        cmocka_unit_test(test_classify_names_stable),
        cmocka_unit_test(test_check_messages),
        cmocka_unit_test(test_check_bad_sockaddr),
        cmocka_unit_test(test_check_allow),
        cmocka_unit_test(test_guard_copies_config),
        cmocka_unit_test(test_url_validate_table),
        cmocka_unit_test(test_url_validate_length),
        cmocka_unit_test(test_url_validate_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
