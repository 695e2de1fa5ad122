/* dbclean.h - remove old rows of the scheduler's tables (dag_run,
 * task_instance, task_log) and of drift_report, in short batches
 * (`mlopsd db clean`, the `db_clean` task type; docs/operations.md
 * "Housekeeping").  Airflow's `airflow db clean`, for mlopsd's tables.
 *
 * What goes, with cutoff = now - older_than_s (UTC):
 *   dag_run        finished runs (success, failed) whose end (else start,
 *                  else queued time) is before the cutoff, except the
 *                  newest run of each DAG (the console and `runs list`
 *                  keep showing where a DAG stands);
 *   task_instance  the task instances of those runs;
 *   task_log       the log lines of those runs;
 *   drift_report   reports created before the cutoff, except the newest
 *                  of each model.
 * Running and queued runs and their rows are never touched.
 *
 * Batches: runs are taken DBCLEAN_RUNS_PER_BATCH at a time; each DELETE
 * removes at most `batch` rows in its own autocommit transaction, with
 * innodb_lock_wait_timeout = DBCLEAN_LOCK_WAIT_S (SET STATEMENT), so the
 * scheduler's transactions wait for one short DELETE at most, and a
 * DELETE that meets a lock for longer is retried (up to 5 times) rather
 * than waiting behind it.  Children go before their run, so a stop
 * half-way leaves no orphans.
 *
 * Thread rule: any thread; uses one connection of pool at a time.
 */
#ifndef MLOPSD_DBCLEAN_H
#define MLOPSD_DBCLEAN_H

#include <stdint.h>
#include <time.h>

#include "mlopsd/err.h"

struct db_pool;

#define DBCLEAN_LOCK_WAIT_S 2
#define DBCLEAN_RUNS_PER_BATCH 50
#define DBCLEAN_BATCH_DEFAULT 1000

struct dbclean_opts {
  int64_t older_than_s; /* > 0 */
  int dry_run;          /* count only */
  int batch;            /* rows per DELETE; 0 = DBCLEAN_BATCH_DEFAULT */
  time_t now;           /* 0 = time(NULL) */
};

struct dbclean_result {
  char cutoff[24];      /* "YYYY-MM-DD HH:MM:SS" UTC */
  int64_t dag_run, task_instance, task_log, drift_report;
  int64_t statements;   /* DELETEs run */
  int64_t retries;      /* DELETEs retried after a lock wait timeout or a
                           deadlock */
  double max_stmt_ms;   /* the longest DELETE, wall clock */
  double ms;            /* all of it */
};

/* Remove (or with dry_run count) the rows above.  r gets the counts, also
 * what was removed before an error.  ERR_INVAL (older_than_s), ERR_DB,
 * ERR_DB_CONN. */
enum err_code dbclean_run(struct db_pool *pool, const struct dbclean_opts *o,
                          struct dbclean_result *r,
                          struct err *e) MLOPSD_WUR;

/* Parse an age: N (days) or N followed by d, h, m or s.  -1 if malformed
 * or not positive. */
int64_t dbclean_parse_age(const char *s);

#endif
