/*
 * prune.h: retention (HOOKD_RETENTION, HOOKD_RETENTION_UNMATCHED), the part above the store.
 * The rules of what may go are pure functions here (cut-offs, the lag), unit-tested; the SQL
 * of one step is each backend's (HK_REQ_PRUNE in store.h); the pruner below runs steps on the
 * loop, on every node (PostgreSQL: one node at a time under an advisory lock, the others skip).
 *
 * Finished data goes once older than the retention: deliveries that ended `success` or `failed`
 * (by completed_at), their attempts, then their event once no delivery of it is left. Events
 * that matched no webhook (no delivery at all) go after HOOKD_RETENTION_UNMATCHED (never later
 * than HOOKD_RETENTION when that is set). Open work (pending, retrying, parked) is never
 * touched, so an event with an open delivery stays whatever its age.
 *
 * Rounds: every HOOKD_PRUNE_INTERVAL_MS a round runs steps of at most HOOKD_PRUNE_BATCH rows
 * per table, 50 ms apart, until a step finds less than a full batch; each step is one short
 * write request in the store's group commit, so an ingest waits at most one step. A round that
 * deleted something logs one line `store.pruned` with its counts; the metrics are
 * hookd_pruned_total{table} and hookd_retention_lag_seconds.
 */
#ifndef HK_STORE_PRUNE_H
#define HK_STORE_PRUNE_H

#include <stdint.h>

#include "core/config.h"
#include "core/metrics.h"
#include "store/store.h"

struct event_base;

/* The cut-offs at now (ms) for a retention and an unmatched retention (ms, 0 = off):
 * *dl_cut = now - retention (finished deliveries completed before it go), or 0 when retention
 * is off; *ev_cut = now - the shorter of the two that are set (events with no delivery created
 * before it go), or 0 when both are off. */
void hk_prune_cutoffs(int64_t now, int64_t retention_ms, int64_t unmatched_ms, int64_t *dl_cut,
                      int64_t *ev_cut);

/* The retention lag in whole seconds after a step: how far before dl_cut the oldest finished
 * delivery left completed (oldest, 0 = none), or, when the event scan has more to do
 * (ev_more), how far before ev_cut its position is; the larger, never below 0. */
int64_t hk_prune_lag_s(int64_t dl_cut, int64_t oldest, int64_t ev_cut, int64_t ev_pos_at,
                       int ev_more);

/* Fills a PRUNE request's inputs for a step at now from cfg (cut-offs, batch, vacuum). The
 * floor is the caller's. */
void hk_prune_req_init(hk_req *req, const hk_config *cfg, int64_t now);

typedef struct hk_pruner hk_pruner;

/* Starts the rounds on base (the first one a second after start). Returns NULL (nothing to
 * do, no timer) when both retention settings are off. m may be NULL. */
hk_pruner *hk_pruner_start(struct event_base *base, hk_store *st, const hk_config *cfg,
                           hk_metrics *m);

/* No new step starts after this (a step in flight completes). NULL ok. */
void hk_pruner_stop(hk_pruner *p);

/* Frees p. Call after hk_store_close (no step may be in flight). NULL ok. */
void hk_pruner_free(hk_pruner *p);

#endif
