/*
 * nats_pub.c: the NATS client of the integration tests and of the NATS ingest benchmark, on
 * cnats (Debian has no Python NATS client and no `nats` CLI). It publishes lines read from
 * stdin, each "SUBJECT BODY" (BODY is the rest of the line, sent as is), over core NATS or
 * JetStream, and manages and inspects streams and consumers:
 *
 *   nats_pub -s URL pub [--js|--js-async] [--id-prefix P]
 *                                                publish stdin's lines; with --js each one is a
 *                                                JetStream publish retried until the stream
 *                                                acknowledges it (header Nats-Msg-Id = P + line
 *                                                number, so a retry is deduplicated); --js-async
 *                                                pipelines them (4096 unacknowledged at most)
 *                                                and fails if any is not acknowledged (for
 *                                                loading a stream fast); prints
 *                                                {"published":N,"seconds":S}
 *   nats_pub -s URL stream-add NAME SUBJECT...   creates a file stream (kept if it exists)
 *   nats_pub -s URL stream-info NAME             prints {"messages":N,"last_seq":N}
 *   nats_pub -s URL consumer-add STREAM DURABLE [ACK_WAIT_MS]
 *                                                creates a durable pull consumer, explicit acks
 *   nats_pub -s URL consumer-info STREAM DURABLE prints {"num_pending":N,"num_ack_pending":N,
 *                                                "num_redelivered":N,"delivered":N,"ack_floor":N}
 * Exit status 0 on success, 1 on failure (message on stderr), 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#define RETRY_FOR_S 120 /* a JetStream publish is retried this long before giving up */

static const char *url = "nats://127.0.0.1:4222";

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Prints what went wrong with s and returns 1 (the exit status). */
static int fail(const char *what, natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    fprintf(stderr, "nats_pub: %s: %s\n", what, last ? last : natsStatus_GetText(s));
    return 1;
}

/* Parses a non-negative decimal integer; -1 if s is not one. */
static long parse_count(const char *s)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || !end || *end || end == s || v < 0) return -1;
    return v;
}

/* Connects with reconnects forever (the tests restart the server under the publisher). */
static natsStatus pub_connect(natsConnection **nc)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(o, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(o, 200);
    if (s == NATS_OK) s = natsOptions_SetReconnectBufSize(o, 64 * 1024 * 1024);
    if (s == NATS_OK) s = natsOptions_SetTimeout(o, 2000);
    /* with no callback, a first connect that fails blocks, retrying, until the server is up */
    if (s == NATS_OK) s = natsOptions_SetRetryOnFailedConnect(o, true, NULL, NULL);
    if (s == NATS_OK) s = natsConnection_Connect(nc, o);
    natsOptions_Destroy(o);
    return s;
}

/* One JetStream publish, retried until acknowledged or RETRY_FOR_S passed. */
static natsStatus js_pub_retry(jsCtx *js, const char *subject, const char *body, int len,
                               const char *msg_id)
{
    double deadline = now_s() + RETRY_FOR_S;
    natsStatus s;
    for (;;) {
        natsMsg *m = NULL;
        s = natsMsg_Create(&m, subject, NULL, body, len);
        if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", msg_id);
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        if (s == NATS_OK) s = js_PublishMsg(&pa, js, m, &po, &jerr);
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
        if (s == NATS_OK || now_s() > deadline) return s;
        usleep(100 * 1000);
    }
}

static int async_errors;

/* A pipelined JetStream publish that failed (cnats thread): counted, reported at the end. */
static void on_async_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
    __atomic_add_fetch(&async_errors, 1, __ATOMIC_SEQ_CST);
}

static int cmd_pub(int argc, char **argv)
{
    int use_js = 0, use_async = 0;
    const char *prefix = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--js") == 0)
            use_js = 1;
        else if (strcmp(argv[i], "--js-async") == 0)
            use_js = use_async = 1;
        else if (strcmp(argv[i], "--id-prefix") == 0 && i + 1 < argc)
            prefix = argv[++i];
        else {
            fprintf(stderr, "nats_pub: pub: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    char rnd[32];
    if (!prefix) {
        snprintf(rnd, sizeof rnd, "p%ld-%d-", (long)time(NULL), (int)getpid());
        prefix = rnd;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = pub_connect(&nc);
    if (s != NATS_OK) return fail("connect", s);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = 4096;
    jo.PublishAsync.ErrHandler = on_async_err;
    if (use_js && (s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK)
        return fail("JetStream", s);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    long n = 0;
    int rc = 0;
    double t0 = now_s();
    while ((got = getline(&line, &cap, stdin)) > 0) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = '\0';
        if (!got) continue;
        char *sp = strchr(line, ' ');
        if (!sp) {
            fprintf(stderr, "nats_pub: line %ld has no body (\"SUBJECT BODY\")\n", n + 1);
            rc = 2;
            break;
        }
        *sp = '\0';
        const char *body = sp + 1;
        int len = (int)(got - (body - line));
        if (use_async) {
            char id[256];
            snprintf(id, sizeof id, "%s%ld", prefix, n);
            natsMsg *m = NULL;
            s = natsMsg_Create(&m, line, NULL, body, len);
            if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
            if (s == NATS_OK) s = js_PublishMsgAsync(js, &m, NULL);
            natsMsg_Destroy(m); /* NULL once handed over */
        } else if (use_js) {
            char id[256];
            snprintf(id, sizeof id, "%s%ld", prefix, n);
            s = js_pub_retry(js, line, body, len, id);
        } else {
            s = natsConnection_Publish(nc, line, body, len);
        }
        if (s != NATS_OK) {
            rc = fail("publish", s);
            break;
        }
        n++;
    }
    free(line);
    if (!rc && use_async) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK) rc = fail("async publishes", s);
        if (!rc && __atomic_load_n(&async_errors, __ATOMIC_SEQ_CST)) {
            fprintf(stderr, "nats_pub: %d publishes were not acknowledged\n", async_errors);
            rc = 1;
        }
    }
    if (!rc && (s = natsConnection_FlushTimeout(nc, 30000)) != NATS_OK) rc = fail("flush", s);
    double secs = now_s() - t0;
    printf("{\"published\":%ld,\"seconds\":%.3f}\n", n, secs);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_stream_add(int argc, char **argv)
{
    if (argc < 2) return 2;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = pub_connect(&nc);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) return fail("connect", s);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = argv[0];
    sc.Subjects = (const char **)(argv + 1);
    sc.SubjectsLen = argc - 1;
    sc.Storage = js_FileStorage;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_AddStream(&si, js, &sc, NULL, &jerr);
    jsStreamInfo_Destroy(si);
    int rc = s == NATS_OK || jerr == JSStreamNameExistErr ? 0 : fail("stream-add", s);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_stream_info(int argc, char **argv)
{
    if (argc != 1) return 2;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = pub_connect(&nc);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) return fail("connect", s);
    jsStreamInfo *si = NULL;
    s = js_GetStreamInfo(&si, js, argv[0], NULL, NULL);
    int rc = 0;
    if (s == NATS_OK)
        printf("{\"messages\":%llu,\"last_seq\":%llu}\n", (unsigned long long)si->State.Msgs,
               (unsigned long long)si->State.LastSeq);
    else
        rc = fail("stream-info", s);
    jsStreamInfo_Destroy(si);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_consumer_add(int argc, char **argv)
{
    if (argc < 2 || argc > 3) return 2;
    long ack_ms = argc == 3 ? parse_count(argv[2]) : 30000;
    if (ack_ms <= 0) return 2;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = pub_connect(&nc);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) return fail("connect", s);
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = argv[1];
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = (int64_t)ack_ms * 1000000LL;
    cc.DeliverPolicy = js_DeliverAll;
    cc.MaxAckPending = 16384;
    jsConsumerInfo *ci = NULL;
    s = js_AddConsumer(&ci, js, argv[0], &cc, NULL, NULL);
    jsConsumerInfo_Destroy(ci);
    int rc = s == NATS_OK ? 0 : fail("consumer-add", s);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

static int cmd_consumer_info(int argc, char **argv)
{
    if (argc != 2) return 2;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = pub_connect(&nc);
    if (s == NATS_OK) s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK) return fail("connect", s);
    jsConsumerInfo *ci = NULL;
    s = js_GetConsumerInfo(&ci, js, argv[0], argv[1], NULL, NULL);
    int rc = 0;
    if (s == NATS_OK)
        printf("{\"num_pending\":%llu,\"num_ack_pending\":%lld,\"num_redelivered\":%lld,"
               "\"delivered\":%llu,\"ack_floor\":%llu}\n",
               (unsigned long long)ci->NumPending, (long long)ci->NumAckPending,
               (long long)ci->NumRedelivered, (unsigned long long)ci->Delivered.Stream,
               (unsigned long long)ci->AckFloor.Stream);
    else
        rc = fail("consumer-info", s);
    jsConsumerInfo_Destroy(ci);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return rc;
}

int main(int argc, char **argv)
{
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-s") == 0) {
        url = argv[i + 1];
        i += 2;
    }
    if (i >= argc) {
        fprintf(stderr, "usage: nats_pub [-s URL] pub|stream-add|stream-info|consumer-add|"
                        "consumer-info ... (see the comment at the top of nats_pub.c)\n");
        return 2;
    }
    const char *cmd = argv[i++];
    int rc;
    if (strcmp(cmd, "pub") == 0)
        rc = cmd_pub(argc - i, argv + i);
    else if (strcmp(cmd, "stream-add") == 0)
        rc = cmd_stream_add(argc - i, argv + i);
    else if (strcmp(cmd, "stream-info") == 0)
        rc = cmd_stream_info(argc - i, argv + i);
    else if (strcmp(cmd, "consumer-add") == 0)
        rc = cmd_consumer_add(argc - i, argv + i);
    else if (strcmp(cmd, "consumer-info") == 0)
        rc = cmd_consumer_info(argc - i, argv + i);
    else
        rc = 2;
    if (rc == 2) fprintf(stderr, "nats_pub: bad usage of '%s' (see nats_pub.c)\n", cmd);
    nats_Close();
    return rc;
}
