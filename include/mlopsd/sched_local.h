/* sched_local.h - run a DAG in the calling process, outside the daemon's
 * scheduler loop: what `mlopsd dags test` and `mlopsd dags backfill
 * --local` do, and the queued runs of `mlopsd dags backfill`.
 *
 * A local run is recorded in MariaDB like a daemon's run (dag_run and
 * task_instance rows claimed as "test:HOST:PID:NONCE", task logs, the
 * run's heartbeat), runs every task once in topological order with the
 * trigger rules (no retries, no callbacks) through the scheduler's own
 * attempt code (sched_run.c), so a task behaves as under the daemon.  A
 * daemon fails such a run when the process that drives it is gone.
 *
 * Output: progress lines go to stdout (see enum sched_local_mode); task
 * log lines too when `echo` was set at create time.
 *
 * Thread rule: one thread uses a handle (the CLI's main thread); the
 * handle runs one heartbeat / log-flusher thread of its own while it
 * lives.
 */
#ifndef MLOPSD_SCHED_LOCAL_H
#define MLOPSD_SCHED_LOCAL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mlopsd/dag.h"
#include "mlopsd/err.h"
#include "mlopsd/sched.h"

struct cfg;
struct cron_tz;
struct db_conn;
struct db_pool;

struct sched_local; /* opaque */

/* A runner.  cfg, tz, meta (bookkeeping connections), c (a connection of
 * meta the runner records runs with) and set (where the trigger task looks
 * DAGs up) are borrowed and must outlive the handle.  A pool of 3
 * connections for the tasks' own ctx->db is created from cfg.  echo:
 * print task log lines to stdout.  ERR_NOMEM, ERR_DB*. */
enum err_code sched_local_create(struct sched_local **out,
                                 const struct cfg *cfg,
                                 const struct cron_tz *tz,
                                 struct db_pool *meta, struct db_conn *c,
                                 struct dag_set *set, int echo,
                                 struct err *e) MLOPSD_WUR;
void sched_local_destroy(struct sched_local *l); /* NULL-safe */

enum sched_local_mode {
  SCHED_LOCAL_TEST,            /* `dags test`: run id DAG__test__DATE,
                                  replaces a finished run of the date,
                                  prints a header, a line per task and the
                                  run's outcome */
  SCHED_LOCAL_BACKFILL,        /* run_type backfill: keeps any run the date
                                  has (exists), waits for max_active_runs
                                  (busy); prints only "replacing run" */
  SCHED_LOCAL_BACKFILL_VERBOSE /* the same with a line per task */
};

/* The outcome of one local run. */
struct sched_local_result {
  char run_id[SCHED_RUN_ID_MAX + 1];
  int exists;                  /* backfill: the date has a run: nothing done */
  int busy;                    /* backfill: max_active_runs: nothing done */
  int64_t running;             /* ... that many are running */
  char other[SCHED_RUN_ID_MAX + 64]; /* the existing or replaced run */
  int failed;                  /* the run ended failed */
  double secs;
  char failed_task[DAG_ID_MAX + 1];
  char error[ERR_MSG_MAX];     /* of the first failed task */
};

/* Run every task of d (a DAG of the set given to create) for logical time
 * lt.  conf: the run's conf as JSON text, or NULL.  ERR_OK when the run
 * was decided: r->exists, r->busy, or it ran (r->failed says how it
 * ended).  ERR_STATE (dags test: an active run of that date), ERR_DB*,
 * ERR_NOMEM otherwise, with e set. */
enum err_code sched_local_run(struct sched_local *l, struct dag *d,
                              time_t lt, enum sched_local_mode mode,
                              const char *conf,
                              struct sched_local_result *r,
                              struct err *e) MLOPSD_WUR;

/* Queue a backfill run of d at logical time t for the daemons
 * (run_type backfill, state queued; conf JSON text or NULL).  Its run id
 * goes to run_id (cap >= SCHED_RUN_ID_MAX + 1).  *created 0: the date has
 * a run already, described as "RUN_ID (STATE)" in other.  ERR_DB*. */
enum err_code sched_backfill_queue(struct db_conn *c,
                                   const struct cron_tz *tz,
                                   const struct dag *d, time_t t,
                                   const char *conf, char *run_id,
                                   size_t cap, int *created, char *other,
                                   size_t ocap, struct err *e) MLOPSD_WUR;

#endif
