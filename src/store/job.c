/*
 * job.c: delivery jobs, shared bodies (blobs) and the SPEC §4 envelope.
 */
#include "store/job.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/time.h"

hk_blob *hk_blob_new(const void *p, size_t n)
{
    hk_blob *b = hk_malloc(sizeof *b + n + 1);
    b->refs = 1;
    b->len = n;
    if (n) memcpy(b->data, p, n);
    b->data[n] = '\0';
    return b;
}

void hk_blob_unref(hk_blob *b)
{
    if (b && --b->refs == 0) free(b);
}

hk_blob *hk_envelope_render(const char *event_id, const char *type, int64_t created_ms,
                            const char *data, size_t data_len)
{
    char iso[HK_ISO_LEN];
    hk_iso_format(created_ms, iso);
    size_t idl = strlen(event_id), tl = strlen(type), isol = strlen(iso);
    /* {"id":"","type":"","created_at":"","data":} = 43 bytes of fixed text */
    size_t n = 43 + idl + tl + isol + data_len;
    hk_blob *b = hk_malloc(sizeof *b + n + 1);
    b->refs = 1;
    char *o = b->data;
#define PUT(s, l) (memcpy(o, (s), (l)), o += (l))
    PUT("{\"id\":\"", 7);
    PUT(event_id, idl);
    PUT("\",\"type\":\"", 10);
    PUT(type, tl);
    PUT("\",\"created_at\":\"", 16);
    PUT(iso, isol);
    PUT("\",\"data\":", 9);
    PUT(data, data_len);
    PUT("}", 1);
#undef PUT
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return b;
}

static const char *const dl_status_names[] = {"pending", "success", "failed", "retrying"};

const char *hk_dl_status_name(int status)
{
    return status >= 0 && status < (int)HK_ARRAY_LEN(dl_status_names) ? dl_status_names[status]
                                                                      : "unknown";
}

int hk_dl_status_parse(const char *s)
{
    for (int i = 0; s && i < (int)HK_ARRAY_LEN(dl_status_names); i++)
        if (strcmp(s, dl_status_names[i]) == 0) return i;
    return -1;
}

hk_job *hk_job_new(void)
{
    return hk_calloc(1, sizeof(hk_job));
}

void hk_job_free(hk_job *job)
{
    if (!job) return;
    hk_blob_unref(job->body);
    free(job);
}
