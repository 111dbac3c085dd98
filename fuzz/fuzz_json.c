/*
 * fuzz_json.c: the JSON reader and writer (core/json.c) and filteringOptions (store/match.c).
 * Properties checked beyond "no crash": compacting any token and parsing the result gives an
 * equal value; escaping any bytes gives a valid JSON string; a canonical filter parses again.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "store/match.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hk_jdoc d;
    hk_buf b;
    if (hk_json_parse(&d, (const char *)data, size, 4096, 32) == 0) {
        hk_buf_init(&b, 1 << 20);
        for (uint32_t t = 0; t < d.ntoks; t++) {
            int64_t i;
            double x;
            int bo;
            hk_json_int(&d, (int)t, &i);
            hk_json_double(&d, (int)t, &x);
            hk_json_bool(&d, (int)t, &bo);
            free(hk_json_strdup(&d, (int)t, 100, NULL));
            hk_json_obj_dup_key(&d, (int)t);
            hk_json_obj_get(&d, (int)t, "a");
            hk_buf_reset(&b);
            hk_json_compact(&d, (int)t, &b);
            hk_jdoc e;
            if (hk_json_parse(&e, b.data, b.len, 4096, 32) || !hk_json_equal(&d, (int)t, &e, 0))
                abort();
            hk_json_free(&e);
        }
        hk_buf_free(&b);
    }
    hk_json_free(&d);

    hk_buf_init(&b, 1 << 20);
    hk_json_escape(&b, (const char *)data, size);
    if (hk_json_parse(&d, b.data, b.len, 4, 4)) abort();
    hk_json_free(&d);
    hk_buf_free(&b);

    hk_filter f;
    char err[200];
    if (hk_filter_parse((const char *)data, size, &f, err, sizeof err) == 0) {
        hk_buf_init(&b, 1 << 20);
        hk_filter_canonical(&f, &b);
        hk_filter g;
        if (hk_filter_parse(b.data, b.len, &g, err, sizeof err)) abort();
        hk_filter_free(&g);
        hk_buf_free(&b);
    }
    hk_filter_free(&f);
    return 0;
}
