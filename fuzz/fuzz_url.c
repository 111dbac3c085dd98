/*
 * fuzz_url.c: webhook URL validation and the SSRF address check (delivery/ssrf.c). The first
 * 16 bytes are also classified as an address; a URL the validator accepts must never name a
 * refused literal address that curl would connect to (checked by re-validating: accepting is
 * deterministic) and must be free of CR, LF, NUL and spaces.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "delivery/ssrf.h"

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
    }
    hk_url_validate(g, url, 1, msg, sizeof msg);
    free(url);
    return 0;
}
