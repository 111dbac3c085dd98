/*
 * nats.h: bus ingest (SPEC §5). With NATS_URL, hookd turns NATS messages into events with the
 * official C client (cnats) attached to hookd's libevent loop.
 *
 * Two modes:
 *   core       (HOOKD_NATS_STREAM empty) one subscription per subject of HOOKD_NATS_SUBJECTS in
 *              queue group `webhook-dispatcher`: every hookd node subscribes, each message goes
 *              to one of them. At most once, as core NATS is: a message in hookd's hands when
 *              it dies is lost.
 *   JetStream  (HOOKD_NATS_STREAM set) a durable pull consumer (HOOKD_NATS_DURABLE) on that
 *              stream, shared by every node. A message is acked only after the store committed
 *              its event, so a crash before the ack means a redelivery, and the event's
 *              idempotency key makes the second copy a duplicate, never a second event.
 *
 * Messages become events as kumomta.h says; bad ones are counted (hookd_nats_dropped_total),
 * logged and acked. At most HK_NATS_MAX_INFLIGHT messages are in hookd's hands at once (being
 * mapped, waiting, or in a store transaction): past that, core subscriptions stop taking
 * messages (cnats buffers, then counts slow-consumer drops) and the JetStream consumer stops
 * pulling. The connection reconnects forever; health says "down" while it is not connected
 * (or the JetStream consumer is not ready) and "ok" otherwise.
 *
 * Threads: cnats delivers core messages on its own threads and JetStream messages are pulled by
 * a thread of this module (cnats's JetStream calls block); both only map messages and queue
 * them. Everything else (store requests, acks, health, logs of dropped messages) happens on
 * the loop thread.
 */
#ifndef HK_NATS_H
#define HK_NATS_H

#include <stddef.h>

#include "core/config.h"
#include "core/metrics.h"
#include "ingest/ingest.h"

struct event_base;

#define HK_NATS_QUEUE_GROUP  "webhook-dispatcher"
#define HK_NATS_MAX_INFLIGHT 4096 /* messages in hookd's hands at most */

typedef struct hk_nats hk_nats;

/* Prepares libevent for the cnats adapter (its locks: cnats threads touch the loop's events).
 * Must run before the event_base is created, once, when NATS_URL is set. */
void hk_nats_global_init(void);

/* Connects to NATS_URL (if the server is down, keeps trying in the background: health says
 * "down" meanwhile), subscribes (core) or starts the consumer (JetStream), and from then on
 * ingests through the door `ingest`. *health is the API's nats check ("ok"/"down"), written on
 * the loop thread only. Returns NULL with err on a configuration error (bad URL, bad subject). */
hk_nats *hk_nats_start(struct event_base *base, const hk_config *cfg, hk_ingest *ingest,
                       hk_metrics *metrics, const char **health, char *err, size_t errlen);

/* Graceful stop, on the loop: takes no new message, stores the ones in hand and acks them,
 * naks (JetStream) what could not be stored within timeout_ms, closes the connection, then
 * calls done(arg) on the loop. Call once. */
void hk_nats_stop(hk_nats *n, int timeout_ms, void (*done)(void *arg), void *arg);

/* Frees everything. Call after the store was closed (its last callbacks may still ack) and
 * before the event_base is freed. Works whether or not hk_nats_stop finished. NULL ok. */
void hk_nats_free(hk_nats *n);

#endif
