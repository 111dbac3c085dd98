/*
 * fuzz_url.c: webhook URL validation and the SSRF address check (delivery/ssrf.c). The first
 * 16 bytes are also classified as an address. A URL the validator accepts must:
 *  - be free of CR, LF, NUL, spaces and tabs, and be accepted again (accepting is
 *    deterministic);
 *  - never name a literal address that the connect-time check refuses: curl's own URL parser
 *    gives the host, and the resolver reads it as numeric (getaddrinfo with AI_NUMERICHOST, the
 *    spellings curl would connect to without DNS: "0x7f.1", "2130706433", "[::ffff:7f00:1]");
 *    every address it yields must pass hk_ssrf_check;
 *  - never name localhost or a *.localhost host (any case, trailing dots ignored).
 */
#include <ctype.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/config.h"
#include "delivery/ssrf.h"

/* Aborts unless the accepted url's host, as curl parses it, is neither a refused literal
 * address nor a localhost name. */
static void check_accepted_host(const hk_ssrf_guard *g, const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    if (!u) abort();
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK)
        abort(); /* accepted, so curl must be able to parse it and find a host */
    size_t n = strlen(host);
    char *h = malloc(n + 1);
    if (!h) abort();
    const char *from = host;
    if (from[0] == '[') { /* IPv6 literal: no brackets, no zone id */
        from++;
        n = strcspn(from, "]%");
    }
    memcpy(h, from, n);
    h[n] = '\0';
    while (n > 0 && h[n - 1] == '.') h[--n] = '\0';
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_NUMERICHOST;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (n > 0 && getaddrinfo(h, NULL, &hints, &res) == 0) {
        char msg[320];
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            if (hk_ssrf_check(g, ai->ai_addr, ai->ai_addrlen, msg, sizeof msg) != 0) abort();
        freeaddrinfo(res);
    }
    for (size_t i = 0; i < n; i++) h[i] = (char)tolower((unsigned char)h[i]);
    static const char suffix[] = ".localhost";
    size_t sl = sizeof suffix - 1;
    if (strcmp(h, "localhost") == 0 || (n > sl && strcmp(h + n - sl, suffix) == 0)) abort();
    free(h);
    curl_free(host);
    curl_url_cleanup(u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hk_ssrf_guard *g;
    if (!g) {
        hk_config cfg;
        memset(&cfg, 0, sizeof cfg);
        g = hk_ssrf_guard_new(&cfg);
    }
    char msg[320];
    if (size >= 16) {
        hk_ssrf_classify(data);
        struct sockaddr_in6 sa;
        memset(&sa, 0, sizeof sa);
        sa.sin6_family = AF_INET6;
        memcpy(&sa.sin6_addr, data, 16);
        hk_ssrf_check(g, (const struct sockaddr *)&sa, sizeof sa, msg, sizeof msg);
        struct sockaddr_in sa4;
        memset(&sa4, 0, sizeof sa4);
        sa4.sin_family = AF_INET;
        memcpy(&sa4.sin_addr, data, 4);
        hk_ssrf_check(g, (const struct sockaddr *)&sa4, sizeof sa4, msg, sizeof msg);
    }
    char *url = malloc(size + 1);
    if (!url) abort();
    memcpy(url, data, size);
    url[size] = '\0';
    int rc = hk_url_validate(g, url, 0, msg, sizeof msg);
    if (rc == 0) { /* (the API never passes a NUL: JSON strings with one are refused) */
        if (strpbrk(url, "\r\n \t")) abort();
        if (hk_url_validate(g, url, 0, msg, sizeof msg) != 0) abort();
        check_accepted_host(g, url);
    }
    hk_url_validate(g, url, 1, msg, sizeof msg);
    free(url);
    return 0;
}
