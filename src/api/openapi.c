/*
 * openapi.c: the API's own documentation: the OpenAPI 3.1 document and the interactive page.
 * Placeholder until the full document lands (issue 3): both routes answer, the page links the
 * JSON.
 */
#include <string.h>

#include "api/api.h"

static const char doc_json[] =
    "{\"openapi\":\"3.1.0\",\"info\":{\"title\":\"hookd\",\"version\":\"" HK_VERSION "\"},"
    "\"paths\":{}}";

void hk_h_openapi_json(hk_call *c)
{
    hk_call_raw(c, 200, "application/json", NULL, doc_json, sizeof doc_json - 1);
}

void hk_h_openapi_page(hk_call *c)
{
    static const char page[] =
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>hookd API</title></head>"
        "<body><p>The OpenAPI document: <a href=\"/api/webhook/openapi/json\">"
        "/api/webhook/openapi/json</a></p></body></html>";
    hk_call_raw(c, 200, "text/html; charset=utf-8", NULL, page, sizeof page - 1);
}
