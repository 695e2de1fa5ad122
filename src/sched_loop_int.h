/* sched_loop_int.h - friend interface of the daemon's scheduler object:
 * sched.c (the scheduler thread: DAG directory, run creation, promotion,
 * life cycle) and sched_claim.c (claiming queued task instances, finishing
 * attempts, taking over expired claims, sweeping running runs).
 *
 * Not for other modules: they use sched.h.  The thread rules of sched.h
 * apply; fields of struct sched say which lock guards them.
 */
#ifndef MLOPSD_SCHED_LOOP_INT_H
#define MLOPSD_SCHED_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "mlopsd/cfg.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "sched_int.h"

#define MOD "sched"
#define SCHED_EXCL_MAX 64
#define SCHED_SWEEP_MS 5000

struct cJSON;
struct metrics_counter;
struct queue;
/* One DAG in a snapshot.  next_check is used by the scheduler thread
 * only. */
struct sdag {
  struct dag *d;
  int paused;
  time_t next_check;       /* next time run creation may have work */
};

/* An immutable set of loaded DAGs, shared by reference count. */
struct snap {
  atomic_int refs;
  struct sdag *v;          /* sorted by dag_id */
  size_t n;
  char *in_list;           /* "?,?,?" for the claim filter */
};

/* A task instance this daemon gave back because the task is not in its
 * version of the DAG (unknown_task in sched_claim.c), at rescan gen. */
struct excl {
  int64_t id;
  uint64_t gen;
};

struct sched {
  struct sched_core core;
  struct cfg cfg;
  struct queue *q;
  struct cron_tz *tz;
  char dags_dir[512];
  int tick_ms, lease_s, workers, grace_ms, rescan_ms;

  pthread_t thr;
  int started, stopped;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stopping;
  int wake_promote, wake_rescan, wake_claim;
  int inflight;            /* attempts submitted or being claimed */
  struct snap *snap;
  uint64_t gen;            /* rescans done */
  struct excl excl[SCHED_EXCL_MAX];
  int nexcl;
  /* Database contact for sched_ready: the last bookkeeping connection
   * handed out and the last refused, with its error (db_err under mu). */
  _Atomic int64_t db_ok_ms, db_fail_ms;
  char db_err[ERR_MSG_MAX];

  /* scheduler thread only */
  struct dag_dir *dir;     /* the DAG directory as last scanned */
  int dir_warned;

  struct metrics_counter *m_ti[4];   /* success failed up_for_retry skipped */
  struct metrics_counter *m_run[2];  /* success failed */
};
struct runinfo {
  time_t logical_ts;
  char *conf;
  int found;
};

struct idlist {
  int64_t *id;
  char **str;
  size_t n, cap, scap; /* cap: of id, scap: of str */
  int oom;
};

/* ---- sched.c ------------------------------------------------------- */

/* Drop a snapshot reference (NULL-safe). */
void sched_snap_unref(struct snap *s);
/* The DAG dag_id of snapshot p, or NULL (binary search). */
struct sdag *sched_snap_find(const struct snap *p, const char *dag_id);
/* s->stopping under s->mu. */
int sched_is_stopping(struct sched *s);
/* A bookkeeping connection, or NULL (warned, rate limited); shorter wait
 * once stopping. */
struct db_conn *sched_conn_get(struct sched *s, const char *what);
void sched_conn_put(struct sched *s, struct db_conn *c);
/* Count a task outcome in the metrics. */
void sched_count_ti(struct sched *s, const char *state);
/* Row callback of "SELECT logical_date, conf FROM dag_run" (struct
 * runinfo; conf malloc'd, the caller frees it). */
int sched_runinfo_cb(void *user, const struct db_row *row);
/* A run ended: log, count, wake promotion, queue its callback.
 * logical_ts 0 / conf NULL: read from dag_run. */
void sched_run_finished(struct sched *s, struct dag *d, const char *run_id,
                        const struct sched_eval *ev, time_t logical_ts,
                        const struct cJSON *conf);
/* Row callback for (id, text) rows into a struct idlist. */
int sched_idlist_cb(void *user, const struct db_row *row);
void sched_idlist_free(struct idlist *l);

/* ---- sched_claim.c ------------------------------------------------- */

/* Claim up to the free worker slots and submit the attempts.  Any thread
 * (the scheduler thread, or a worker right after a task finished).
 * Returns the number submitted. */
int sched_claim(struct sched *s);
/* Take over claims whose lease expired (or whose daemon is gone). */
void sched_takeover(struct sched *s, struct snap *p);
/* Evaluate every running run (recovery after crashes and DAG edits). */
void sched_sweep(struct sched *s, struct snap *p);

#endif
