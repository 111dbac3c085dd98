/*
 * fuzz_retry_after.c: the Retry-After parser (delivery/backoff.c, its HTTP-dates in core/time.c):
 * any accepted value gives a delay within [0, 24 h].
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "delivery/backoff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    int64_t d = -1;
    if (hk_retry_after_parse(s, 1700000000000LL, &d) == 0 && (d < 0 || d > HK_RETRY_AFTER_CAP_MS))
        abort();
    free(s);
    return 0;
}
