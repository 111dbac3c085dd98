/*
 * fuzz_config.c: the .env parser and the CIDR list parser (core/config.c), plus durations and
 * retry schedules (core/time.c). A parsed .env name is never empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/time.h"

static void on_pair(const char *name, const char *value, void *arg)
{
    (void)arg;
    if (name[0] == '\0') abort();
    (void)strlen(value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[128];
    hk_dotenv_parse((const char *)data, size, on_pair, NULL, err, sizeof err);
    char *s = malloc(size + 1);
    if (!s) abort();
    memcpy(s, data, size);
    s[size] = '\0';
    hk_cidr c[4];
    hk_cidr_list_parse(s, c, 4, err, sizeof err);
    int64_t ms[HK_RETRY_SCHEDULE_MAX];
    int n = hk_duration_list_parse(s, ms, HK_RETRY_SCHEDULE_MAX, err, sizeof err);
    for (int i = 0; i < n; i++)
        if (ms[i] <= 0) abort();
    int64_t one;
    hk_duration_parse(s, &one);
    free(s);
    return 0;
}
