/* trialq.h - grid-search trials as claimable work items in MariaDB
 * (tables train_search and train_trial, sql/migrations/050_train_trials.sql;
 * docs/training.md "Shared trials").
 *
 * A `train` run with shared trials creates one search row and one queued
 * row per grid point.  Any daemon claims a trial the way the scheduler
 * claims a task instance: SELECT ... FOR UPDATE SKIP LOCKED, then
 * claimed_by / heartbeat_at as a lease; a claim whose heartbeat is older
 * than the lease is taken over (try_number counts the claims).  The
 * coordinating run heartbeats its search while it waits; helpers take
 * trials only of searches that are running with a fresh heartbeat, so a
 * search whose coordinator died is left alone.  Writes of a claimant that
 * lost its claim change nothing (ERR_STATE): a trial has one result.
 *
 * This module is only the SQL; pipeline.c (coordinator and trial runs)
 * and trialw.c (the daemon's helper threads) drive it.
 *
 * Thread rule: every function may be called from any thread; each takes
 * its own connection from the pool for the call.
 */
#ifndef MLOPSD_TRIALQ_H
#define MLOPSD_TRIALQ_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct db_pool;

#define TRIALQ_OWNER_MAX 255

/* A search: what every daemon that helps must reproduce. */
struct trialq_search {
  int64_t id;                  /* set by trialq_search_create */
  char model[129];
  char ds[11];                 /* YYYY-MM-DD */
  char run_prefix[161];
  char spec_sha256[65];
  char data_sha256[65];
  int trials;                  /* grid points 0..trials-1 */
  int num_boost_round;
  int early_stopping_rounds;
  char owner[TRIALQ_OWNER_MAX + 1]; /* the coordinating run */
  /* distributed training (051): kind "workers", one row per rank */
  char kind[9];                /* "grid" (default when empty) or "workers" */
  int workers;                 /* ranks; rows 0..workers-1 */
  char tracker[256];           /* "host:port" of the rabit tracker */
  const char *prep_json;       /* create only: rank 0's preprocessing */
};

/* A unique claimant name for this process and thread of work:
 * "host:pid:tag:random". */
void trialq_owner_name(char *buf, size_t cap, const char *tag);

/* "host:pid:": what every owner name of this process starts with. */
void trialq_owner_prefix(char *buf, size_t cap);

/* Insert the search (state running, heartbeat now) and its queued trials
 * in one transaction; s->id is set.  Kind "workers": rows 0..workers-1,
 * row 0 in state 'coord' (the run itself, never claimed), the others
 * queued. */
enum err_code trialq_search_create(struct db_pool *db,
                                   struct trialq_search *s,
                                   struct err *e) MLOPSD_WUR;

/* The coordinator is alive: heartbeat_at = now. */
enum err_code trialq_search_heartbeat(struct db_pool *db, int64_t id,
                                      struct err *e) MLOPSD_WUR;

/* The search is over (state "success" or "failed"); trials still queued
 * become "skipped" so no helper starts them. */
enum err_code trialq_search_end(struct db_pool *db, int64_t id,
                                const char *state, struct err *e) MLOPSD_WUR;

/* The search's prep_json, malloc'd (caller frees); ERR_NOTFOUND when
 * none. */
enum err_code trialq_search_prep(struct db_pool *db, int64_t id, char **json,
                                 struct err *e) MLOPSD_WUR;

/* Set the coordinator's own row (rank 0 of a "workers" search) to state. */
enum err_code trialq_coord_state(struct db_pool *db, int64_t sid,
                                 const char *state, const char *metrics,
                                 struct err *e) MLOPSD_WUR;

/* Read search id into *s.  ERR_NOTFOUND when there is none. */
enum err_code trialq_search_get(struct db_pool *db, int64_t id,
                                struct trialq_search *s,
                                struct err *e) MLOPSD_WUR;

/* Claim one trial as owner: of search search_id (> 0), or (search_id 0)
 * of any running search whose heartbeat is younger than lease_s, whose
 * owner does not start with exclude_owner (may be NULL; a process passes
 * trialq_owner_prefix to leave its own runs' searches to their own
 * threads) and whose id is not in
 * skip[0..nskip).  Queued trials first, in grid order, then running ones
 * whose heartbeat is older than lease_s.  *sid, *trial and *try_number
 * (1 for a first claim) are set.  ERR_NOTFOUND when nothing is
 * claimable. */
enum err_code trialq_claim(struct db_pool *db, int64_t search_id,
                           const char *exclude_owner, const int64_t *skip,
                           int nskip, const char *owner, int lease_s,
                           int64_t *sid, int *trial, int *try_number,
                           struct err *e) MLOPSD_WUR;

/* Renew the lease.  ERR_STATE when owner no longer holds the trial. */
enum err_code trialq_heartbeat(struct db_pool *db, int64_t sid, int trial,
                               const char *owner, struct err *e) MLOPSD_WUR;

/* Give a claimed trial back (queued again), e.g. a helper that cannot
 * reproduce the search's data. */
enum err_code trialq_release(struct db_pool *db, int64_t sid, int trial,
                             const char *owner, struct err *e) MLOPSD_WUR;

/* Record the outcome: state "success" with metrics/params JSON and the
 * model (UBJSON bytes, stored as hex), or "failed" with error (the other
 * fields may be NULL).  ERR_STATE when owner no longer holds the trial
 * (nothing written). */
enum err_code trialq_finish(struct db_pool *db, int64_t sid, int trial,
                            const char *owner, int ok, double seconds,
                            const char *metrics, const char *params,
                            const void *model, size_t model_len,
                            const char *error, struct err *e) MLOPSD_WUR;

struct trialq_counts {
  int queued, running, success, failed, other;
};

enum err_code trialq_count(struct db_pool *db, int64_t sid,
                           struct trialq_counts *c, struct err *e) MLOPSD_WUR;

/* One finished trial for trialq_results (all borrowed for the call). */
struct trialq_row {
  int trial;
  const char *state;
  const char *claimed_by;
  int try_number;
  double seconds;
  const char *metrics;     /* JSON or NULL */
  const char *params;      /* JSON or NULL */
  const char *error;       /* or NULL */
};

/* Every trial of search sid in grid order (without the models). */
typedef int (*trialq_row_fn)(void *ud, const struct trialq_row *r);
enum err_code trialq_results(struct db_pool *db, int64_t sid,
                             trialq_row_fn fn, void *ud,
                             struct err *e) MLOPSD_WUR;

/* The model of a successful trial, malloc'd into *buf (UBJSON bytes).
 * ERR_NOTFOUND when the trial has none. */
enum err_code trialq_model(struct db_pool *db, int64_t sid, int trial,
                           char **buf, size_t *len, struct err *e) MLOPSD_WUR;

#endif
