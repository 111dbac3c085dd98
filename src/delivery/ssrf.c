/*
 * ssrf.c: the SSRF guard (SPEC §3 validation, §4 SSRF guard). It classifies an address into the
 * refused range it falls in (IPv4 and IPv6, looking through the IPv6 forms that carry an IPv4
 * address: mapped, compatible, NAT64, 6to4, Teredo), lets HOOKD_ALLOW_NETWORKS override that,
 * and validates webhook URLs with libcurl's own URL parser, so that the host checked here is the
 * host curl will connect to. A host that is a literal address is read the way the resolver reads
 * it (inet_aton: "2130706433", "0x7f.1", "0177.0.0.1", "127.1"); names are left to the
 * connect-time check, except localhost and *.localhost, which always mean loopback.
 *
 * No global mutable state: the range tables are constant, a guard is read-only after
 * hk_ssrf_guard_new, so every function here may run on any thread.
 */
#include "delivery/ssrf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#define URL_MAX   2048
#define ALLOW_FIX "hookd refuses it (allow with HOOKD_ALLOW_NETWORKS)"

struct hk_ssrf_guard {
    int nallow;
    hk_cidr allow[HK_CONFIG_MAX_NETWORKS];
};

/* ---- range tables ------------------------------------------------------------------------- */

/* Marks a table entry that is publicly reachable (an exception inside a refused block). */
static const char PUBLIC[] = "public";

typedef struct v4_range {
    uint32_t net;
    int prefix;
    const char *name;
} v4_range;

/* IPv4 refused ranges (first match wins). */
static const v4_range v4_ranges[] = {
    {0x00000000u, 8, "unspecified"},    /* 0.0.0.0/8 "this network" */
    {0x0a000000u, 8, "private"},        /* 10.0.0.0/8 */
    {0x64400000u, 10, "cgnat"},         /* 100.64.0.0/10 shared address space */
    {0x7f000000u, 8, "loopback"},       /* 127.0.0.0/8 */
    {0xa9fe0000u, 16, "link-local"},    /* 169.254.0.0/16, incl. cloud metadata */
    {0xac100000u, 12, "private"},       /* 172.16.0.0/12 */
    {0xc0000000u, 24, "ietf-protocol"}, /* 192.0.0.0/24 IETF protocol assignments */
    {0xc0000200u, 24, "documentation"}, /* 192.0.2.0/24 TEST-NET-1 */
    {0xc0a80000u, 16, "private"},       /* 192.168.0.0/16 */
    {0xc6120000u, 15, "benchmarking"},  /* 198.18.0.0/15 */
    {0xc6336400u, 24, "documentation"}, /* 198.51.100.0/24 TEST-NET-2 */
    {0xcb007100u, 24, "documentation"}, /* 203.0.113.0/24 TEST-NET-3 */
    {0xe0000000u, 4, "multicast"},      /* 224.0.0.0/4 */
    {0xf0000000u, 4, "reserved"},       /* 240.0.0.0/4, incl. 255.255.255.255 */
};

typedef struct v6_range {
    uint8_t net[16];
    int prefix;
    const char *name;
} v6_range;

#define B2(x) (uint8_t)((unsigned)(x) >> 8), (uint8_t)((unsigned)(x)&0xffu)
#define V6(a, b, c, d, e, f, g, h)                                                                 \
    {                                                                                              \
        B2(a), B2(b), B2(c), B2(d), B2(e), B2(f), B2(g), B2(h)                                     \
    }

/* IPv6 ranges (first match wins), used after the IPv4-carrying forms have been looked through.
 * The last two entries say: global unicast (2000::/3) is public, everything else is reserved
 * (not allocated for unicast; this covers 100::/64 discard, the rest of ::/8 and of
 * 64:ff9b::/32, 5f00::/16 SRv6 SIDs, ...). */
static const v6_range v6_ranges[] = {
    {V6(0, 0, 0, 0, 0, 0, 0, 0), 128, "unspecified"},
    {V6(0, 0, 0, 0, 0, 0, 0, 1), 128, "loopback"},
    /* inside 2001::/23, what the IANA special-purpose registry marks globally reachable */
    {V6(0x2001, 1, 0, 0, 0, 0, 0, 1), 128, PUBLIC},    /* PCP anycast */
    {V6(0x2001, 1, 0, 0, 0, 0, 0, 2), 128, PUBLIC},    /* TURN anycast */
    {V6(0x2001, 1, 0, 0, 0, 0, 0, 3), 128, PUBLIC},    /* DNS-SD SRP anycast */
    {V6(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, PUBLIC},     /* AMT */
    {V6(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, PUBLIC}, /* AS112-v6 */
    {V6(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, PUBLIC},  /* ORCHIDv2 */
    {V6(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, PUBLIC},  /* drone remote ID (DET) */
    {V6(0x2001, 2, 0, 0, 0, 0, 0, 0), 48, "benchmarking"},
    {V6(0x2001, 0, 0, 0, 0, 0, 0, 0), 23, "ietf-protocol"},
    {V6(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, "documentation"},
    {V6(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, "documentation"},
    {V6(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, "ula"},
    {V6(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"},
    {V6(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, "site-local"},
    {V6(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"},
    {V6(0x2000, 0, 0, 0, 0, 0, 0, 0), 3, PUBLIC},
    {V6(0, 0, 0, 0, 0, 0, 0, 0), 0, "reserved"},
};

/* The IPv6 forms that carry an IPv4 address. */
typedef enum emb_form {
    EMB_NONE,
    EMB_MAPPED, /* ::ffff:0:0/96 */
    EMB_COMPAT, /* ::/96 but :: and ::1 */
    EMB_NAT64,  /* 64:ff9b::/96, and 64:ff9b:1::/96 inside the local-use 64:ff9b:1::/48 */
    EMB_6TO4,   /* 2002::/16, address in bytes 2..5 */
    EMB_TEREDO, /* 2001::/32, client address in bytes 12..15 XOR 0xff */
} emb_form;

/* 1 if the first `prefix` bits of a and net are equal. */
static int prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
    int full = prefix / 8, rest = prefix % 8;
    if (memcmp(a, net, (size_t)full) != 0) return 0;
    if (rest == 0) return 1;
    uint8_t m = (uint8_t)(0xffu << (8 - rest));
    return (a[full] & m) == (net[full] & m);
}

static int all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* Which IPv4-carrying form a is, if any; the IPv4 address it carries goes to v4. Local-use
 * NAT64 addresses (64:ff9b:1::/48) are only read in their /96 form: the others are "reserved"
 * by the table, whatever they carry. */
static emb_form embedded_v4(const uint8_t a[16], uint8_t v4[4])
{
    static const uint8_t nat64[4] = {0x00, 0x64, 0xff, 0x9b};
    static const uint8_t teredo[4] = {0x20, 0x01, 0x00, 0x00};
    emb_form f = EMB_NONE;
    if (all_zero(a, 10) && a[10] == 0xff && a[11] == 0xff) {
        f = EMB_MAPPED;
    } else if (all_zero(a, 12)) {
        if (!(all_zero(a + 12, 3) && a[15] <= 1)) f = EMB_COMPAT;
    } else if (memcmp(a, nat64, 4) == 0) {
        if (all_zero(a + 4, 8) || (a[4] == 0 && a[5] == 1 && all_zero(a + 6, 6))) f = EMB_NAT64;
    } else if (a[0] == 0x20 && a[1] == 0x02) {
        memcpy(v4, a + 2, 4);
        return EMB_6TO4;
    } else if (memcmp(a, teredo, 4) == 0) {
        for (int i = 0; i < 4; i++) v4[i] = (uint8_t)(a[12 + i] ^ 0xffu);
        return EMB_TEREDO;
    }
    if (f != EMB_NONE) memcpy(v4, a + 12, 4);
    return f;
}

static const char *classify_v4(const uint8_t v4[4])
{
    uint32_t x = (uint32_t)v4[0] << 24 | (uint32_t)v4[1] << 16 | (uint32_t)v4[2] << 8 | v4[3];
    for (size_t i = 0; i < HK_ARRAY_LEN(v4_ranges); i++) {
        uint32_t mask = 0xffffffffu << (32 - v4_ranges[i].prefix);
        if ((x & mask) == v4_ranges[i].net) return v4_ranges[i].name;
    }
    return NULL;
}

const char *hk_ssrf_classify(const uint8_t addr[16])
{
    uint8_t v4[4];
    if (embedded_v4(addr, v4) != EMB_NONE) return classify_v4(v4);
    for (size_t i = 0; i < HK_ARRAY_LEN(v6_ranges); i++) {
        if (prefix_match(addr, v6_ranges[i].net, v6_ranges[i].prefix))
            return v6_ranges[i].name == PUBLIC ? NULL : v6_ranges[i].name;
    }
    return NULL; /* not reached: the last entry matches everything */
}

/* ---- the guard ------------------------------------------------------------------------------ */

hk_ssrf_guard *hk_ssrf_guard_new(const hk_config *cfg)
{
    hk_ssrf_guard *g = hk_calloc(1, sizeof *g);
    if (!cfg) return g;
    for (int i = 0; i < cfg->allow_networks_len && i < HK_CONFIG_MAX_NETWORKS; i++) {
        const hk_cidr *c = &cfg->allow_networks[i];
        if (c->prefix < 0 || c->prefix > 128) continue; /* config.c never makes one */
        g->allow[g->nallow++] = *c;
    }
    return g;
}

void hk_ssrf_guard_free(hk_ssrf_guard *g)
{
    free(g);
}

/* 1 if a (16 bytes) is inside an allowed network, directly or, for the IPv6 forms that carry an
 * IPv4 address, by that IPv4 address (compared in its IPv4-mapped form, as config.c stores
 * IPv4 blocks): allowing 127.0.0.0/8 also allows ::ffff:127.0.0.1 and 64:ff9b::7f00:1. */
static int is_allowed(const hk_ssrf_guard *g, const uint8_t a[16])
{
    if (!g) return 0;
    uint8_t v4[4], mapped[16] = {0};
    int has_mapped = embedded_v4(a, v4) != EMB_NONE;
    if (has_mapped) {
        mapped[10] = mapped[11] = 0xff;
        memcpy(mapped + 12, v4, 4);
    }
    for (int i = 0; i < g->nallow; i++) {
        if (prefix_match(a, g->allow[i].addr, g->allow[i].prefix)) return 1;
        if (has_mapped && prefix_match(mapped, g->allow[i].addr, g->allow[i].prefix)) return 1;
    }
    return 0;
}

static void say(char *msg, size_t msglen, const char *fmt, ...) HK_PRINTF(3, 4);

static void say(char *msg, size_t msglen, const char *fmt, ...)
{
    if (!msg || msglen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, msglen, fmt, ap);
    va_end(ap);
}

/* The address a in its usual text form ("127.0.0.1" when v4_only, else inet_ntop's IPv6 form),
 * followed, for the forms whose text does not show it, by the IPv4 address it carries
 * ("64:ff9b::a9fe:a9fe (NAT64 of 169.254.169.254)"). */
static void addr_text(const uint8_t a[16], int v4_only, char *out, size_t outlen)
{
    char t[INET6_ADDRSTRLEN], e[INET_ADDRSTRLEN];
    uint8_t v4[4];
    if (v4_only) {
        inet_ntop(AF_INET, a + 12, t, sizeof t);
        snprintf(out, outlen, "%s", t);
        return;
    }
    inet_ntop(AF_INET6, a, t, sizeof t);
    emb_form f = embedded_v4(a, v4);
    const char *how = f == EMB_NAT64    ? "NAT64 of"
                      : f == EMB_6TO4   ? "6to4 of"
                      : f == EMB_TEREDO ? "Teredo client"
                                        : NULL;
    if (how) {
        inet_ntop(AF_INET, v4, e, sizeof e);
        snprintf(out, outlen, "%s (%s %s)", t, how, e);
    } else {
        snprintf(out, outlen, "%s", t);
    }
}

int hk_ssrf_check(const hk_ssrf_guard *g, const struct sockaddr *addr, size_t addrlen, char *msg,
                  size_t msglen)
{
    uint8_t a[16] = {0};
    int v4_only = 0;
    if (addr && addr->sa_family == AF_INET && addrlen >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in sin;
        memcpy(&sin, addr, sizeof sin);
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &sin.sin_addr, 4);
        v4_only = 1;
    } else if (addr && addr->sa_family == AF_INET6 && addrlen >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 sin6;
        memcpy(&sin6, addr, sizeof sin6);
        memcpy(a, &sin6.sin6_addr, 16);
    } else {
        say(msg, msglen, "address family %d is not IPv4 or IPv6; hookd refuses it",
            addr ? (int)addr->sa_family : -1);
        return HK_EDENIED;
    }
    const char *cls = hk_ssrf_classify(a);
    if (!cls || is_allowed(g, a)) return HK_OK;
    char text[INET6_ADDRSTRLEN + INET_ADDRSTRLEN + 32];
    addr_text(a, v4_only, text, sizeof text);
    say(msg, msglen, "address %s is %s; " ALLOW_FIX, text, cls);
    return HK_EDENIED;
}

/* ---- URL validation ------------------------------------------------------------------------- */

static const char *article(const char *cls)
{
    return strchr("aeio", cls[0]) || strcmp(cls, "unspecified") == 0 ? "an" : "a";
}

/* 1 if h (lowercase, trailing dots removed) is a name that always means loopback. */
static int is_localhost_name(const char *h)
{
    static const char suffix[] = ".localhost";
    size_t n = strlen(h), sl = sizeof suffix - 1;
    return strcmp(h, "localhost") == 0 || (n > sl && strcmp(h + n - sl, suffix) == 0);
}

/* Checks a literal address a (16 bytes) found as the URL host `written`. */
static int check_literal(const hk_ssrf_guard *g, const uint8_t a[16], int v4, const char *written,
                         char *msg, size_t msglen)
{
    const char *cls = hk_ssrf_classify(a);
    if (!cls || is_allowed(g, a)) return HK_OK;
    char text[INET6_ADDRSTRLEN + INET_ADDRSTRLEN + 32];
    addr_text(a, v4, text, sizeof text);
    if (!v4 || strcmp(text, written) == 0)
        say(msg, msglen, "url host %s is %s %s address; " ALLOW_FIX, text, article(cls), cls);
    else
        say(msg, msglen, "url host %.64s (= %s) is %s %s address; " ALLOW_FIX, written, text,
            article(cls), cls);
    return HK_EINVAL;
}

/* Checks the host curl parsed from the URL (IPv6 in brackets, percent-decoded): refused when it
 * is a literal address in a refused range or a localhost name, unless allowed. */
static int check_host(const hk_ssrf_guard *g, const char *host, char *msg, size_t msglen)
{
    char h[URL_MAX + 1];
    size_t n = strlen(host);
    uint8_t a[16] = {0};
    if (n == 0 || n > URL_MAX) {
        say(msg, msglen, "url must have a host");
        return HK_EINVAL;
    }
    if (host[0] == '[') { /* IPv6 literal: drop the brackets and any zone id */
        size_t len = strcspn(host + 1, "]%");
        memcpy(h, host + 1, len);
        h[len] = '\0';
        if (inet_pton(AF_INET6, h, a) != 1) {
            say(msg, msglen, "url host [%.64s] is not a valid IPv6 address", h);
            return HK_EINVAL;
        }
        return check_literal(g, a, 0, h, msg, msglen);
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)host[i];
        if (c >= 0x80) {
            /* curl would map it through IDNA, where "ｌｏｃａｌｈｏｓｔ" is "localhost" */
            say(msg, msglen,
                "url host must be ASCII (write an internationalized name in its "
                "punycode xn-- form)");
            return HK_EINVAL;
        }
        h[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    while (n > 0 && h[n - 1] == '.') n--; /* "127.0.0.1." and "localhost." resolve the same */
    h[n] = '\0';
    if (n == 0) {
        say(msg, msglen, "url must have a host");
        return HK_EINVAL;
    }
    /* a literal IPv4 address in any spelling the resolver accepts (glibc's getaddrinfo reads
     * numeric hosts with inet_aton); the charset test keeps inet_aton's tolerance of trailing
     * whitespace out */
    struct in_addr in;
    if (strspn(h, "0123456789abcdefx.") == n && inet_aton(h, &in)) {
        a[10] = a[11] = 0xff;
        memcpy(a + 12, &in, 4);
        return check_literal(g, a, 1, host, msg, msglen);
    }
    if (is_localhost_name(h)) {
        static const uint8_t lo4[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1};
        static const uint8_t lo6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
        if (is_allowed(g, lo4) || is_allowed(g, lo6)) return HK_OK;
        say(msg, msglen, "url host %.100s is a loopback name; " ALLOW_FIX, host);
        return HK_EINVAL;
    }
    return HK_OK; /* a name: its addresses are checked at connect time */
}

static void curl_oom(void)
{
    fputs("hookd: out of memory (libcurl URL API)\n", stderr);
    abort();
}

int hk_url_validate(const hk_ssrf_guard *g, const char *url, int https_only, char *msg,
                    size_t msglen)
{
    int rc = HK_EINVAL;
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *part = NULL;
    if (!url || !*url) {
        say(msg, msglen, "url must be an absolute http or https URL");
        goto out;
    }
    size_t len = strnlen(url, URL_MAX + 1);
    if (len > URL_MAX) {
        say(msg, msglen, "url must be at most %d bytes", URL_MAX);
        goto out;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c < 0x21 || c == 0x7f) {
            say(msg, msglen,
                "url must not contain spaces or control characters (byte 0x%02x at "
                "offset %zu)",
                c, i);
            goto out;
        }
    }
    if (!(u = curl_url())) curl_oom();
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, url, 0);
    switch (uc) {
    case CURLUE_OK:
        break;
    case CURLUE_OUT_OF_MEMORY:
        curl_oom();
        break;
    case CURLUE_UNSUPPORTED_SCHEME:
        say(msg, msglen, "url must use http or https");
        goto out;
    case CURLUE_BAD_SCHEME:
    case CURLUE_NO_SCHEME:
    case CURLUE_BAD_SLASHES:
    case CURLUE_MALFORMED_INPUT:
        say(msg, msglen, "url must be an absolute http or https URL");
        goto out;
    case CURLUE_BAD_PORT_NUMBER:
        say(msg, msglen, "url port must be a number 1..65535");
        goto out;
    case CURLUE_NO_HOST:
        say(msg, msglen, "url must have a host");
        goto out;
    default:
        say(msg, msglen, "url is not a valid URL: %s", curl_url_strerror(uc));
        goto out;
    }
    if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)) {
        say(msg, msglen, "url must use http or https");
        goto out;
    }
    /* libcurl reads one to three slashes after the scheme alike ("http:/x" and "http:///x"
     * mean host x to it): the URL as written must name its host right after "scheme://". */
    size_t sl = strlen(scheme);
    if (strncmp(url + sl, "://", 3) != 0 || strchr("/?#", url[sl + 3])) {
        say(msg, msglen, "url must have a host (scheme://host/path)");
        goto out;
    }
    if (https_only && strcmp(scheme, "https") != 0) {
        say(msg, msglen, "url must use https (HOOKD_HTTPS_ONLY=1)");
        goto out;
    }
    /* any user part, even empty ("http://@host/"), counts as credentials */
    int creds = curl_url_get(u, CURLUPART_USER, &part, 0) == CURLUE_OK;
    curl_free(part);
    part = NULL;
    creds = creds || curl_url_get(u, CURLUPART_PASSWORD, &part, 0) == CURLUE_OK;
    curl_free(part);
    part = NULL;
    if (creds) {
        say(msg, msglen, "url must not contain a user name or password");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &part, 0) == CURLUE_OK && strcmp(part, "0") == 0) {
        say(msg, msglen, "url port must be a number 1..65535");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        say(msg, msglen, "url must have a host");
        goto out;
    }
    rc = check_host(g, host, msg, msglen);
out:
    curl_free(part);
    curl_free(host);
    curl_free(scheme);
    curl_url_cleanup(u);
    return rc;
}
