/*
 * fuzz_kumomta.c: the bus message mapper (ingest/kumomta.c): KumoMTA log records,
 * webhook.triggered and the generic subject rule. Byte 0 picks the subject, the rest is the
 * message body. Checks the contract of hk_bus_map: an event has a valid organization and type,
 * compact JSON object data that parses again, a valid idempotency key if any; anything else
 * leaves the event empty and gives a reason.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "ingest/kumomta.h"
#include "store/match.h"

static const char *const subjects[] = {
    "kumomta.event", "kumomta.event.delivery", "webhook.triggered",
    "tracking.open", "tracking.click",         "orders",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const char *subject = subjects[data[0] % (sizeof subjects / sizeof subjects[0])];
    hk_bus_event e;
    hk_bus_event_init(&e);
    char why[256];
    why[0] = '\0';
    int v = hk_bus_map(subject, (const char *)data + 1, size - 1, &e, why, sizeof why);
    if (v == HK_BUS_EVENT) {
        if (!e.org || !hk_bus_org_valid(e.org)) abort();
        if (!e.type || !hk_event_type_valid(e.type)) abort();
        if (e.idem_key && !hk_bus_key_valid(e.idem_key)) abort();
        const char *d = hk_buf_cstr(&e.data);
        if (d[0] != '{') abort();
        hk_jdoc doc;
        memset(&doc, 0, sizeof doc);
        if (hk_json_parse(&doc, d, e.data.len, (uint32_t)e.data.len + 1, 128)) abort();
        hk_buf again;
        hk_buf_init(&again, HK_BUF_UNLIMITED);
        if (hk_json_compact(&doc, 0, &again)) abort();
        if (again.len != e.data.len || memcmp(hk_buf_cstr(&again), d, again.len)) abort();
        hk_buf_free(&again);
        hk_json_free(&doc);
    } else {
        if (v != HK_BUS_IGNORED && v != HK_BUS_BAD) abort();
        if (e.org || e.type || e.idem_key || e.data.len) abort();
        if (!why[0]) abort();
    }
    hk_bus_event_free(&e);
    return 0;
}
