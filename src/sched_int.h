/* sched_int.h - friend interface of the scheduler files: sched.c (the
 * daemon's loop), sched_run.c (run and task state transitions, attempts,
 * task logs, callbacks), sched_claim.c (claims) and sched_local.c (`dags
 * test` and `dags backfill --local` run attempts in the
 * CLI process with the same code).
 *
 * Lock order (never the other way round, so transactions cannot wait on
 * each other in a cycle; the rare deadlock left is retried):
 *   dag row -> dag_run row -> task_instance rows.
 * Claims lock only task_instance rows (SKIP LOCKED); the run row is
 * never locked after a task_instance row.
 *
 * Every transaction runs at READ COMMITTED (set per transaction, no
 * session state left on pooled connections), and every time written is
 * UTC_TIMESTAMP(6) from the server, so daemons with skewed clocks agree
 * on leases.
 */
#ifndef MLOPSD_SCHED_INT_H
#define MLOPSD_SCHED_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/err.h"
#include "mlopsd/sched.h"

struct cfg;
struct cJSON;
struct cron_tz;
struct queue_job_ctx;
struct sched_attempt;

#define SCHED_ACQUIRE_MS 5000     /* wait for a bookkeeping connection */
#define SCHED_STOP_ACQUIRE_MS 500 /* the same once a stop is requested */
#define SCHED_LOG_BATCH 256       /* lines that make a writer flush */
#define SCHED_LOG_FLUSH_MS 200    /* age that makes the flusher flush */
#define SCHED_LOG_MAX_PENDING 50000 /* lines kept while MariaDB is away */
#define SCHED_LOG_LINE_MAX 16384  /* bytes kept of one line */
#define SCHED_CLAIM_MAX 300       /* "test:" + host + pid + nonce */
#define SCHED_HOST_MAX 256

/* Task instance states (the CHECK constraint of task_instance). */
#define TI_SCHEDULED "scheduled"
#define TI_QUEUED "queued"
#define TI_RUNNING "running"
#define TI_SUCCESS "success"
#define TI_FAILED "failed"
#define TI_UP_FOR_RETRY "up_for_retry"
#define TI_SKIPPED "skipped"
#define TI_UPSTREAM_FAILED "upstream_failed"

/* What a process running attempts shares: the daemon's scheduler or the
 * `dags test` command. */
struct sched_core {
  const struct cfg *cfg;       /* borrowed */
  struct db_pool *meta;        /* bookkeeping connections */
  struct db_pool *task_db;     /* ctx->db */
  const struct cron_tz *tz;    /* borrowed */
  char host[SCHED_HOST_MAX];
  long pid;
  char claim_id[SCHED_CLAIM_MAX]; /* [test:]host:pid:nonce */
  int lease_s;
  int echo;                    /* print task log lines to stdout */
  int stopping;                /* read by finish: shorter DB retries */
  /* DAG lookup for the trigger callback: a new reference or NULL. */
  struct dag *(*dag_get)(void *user, const char *dag_id);
  void *dag_get_user;
  /* `dags test`: the dag_run row whose heartbeat_at the flusher keeps
   * fresh (0 = none). */
  _Atomic int64_t run_hb_id;

  /* live attempts (log flushing and heartbeats) */
  pthread_mutex_t mu;
  struct sched_attempt *live;
  int nlive;

  /* the heartbeat / flusher thread */
  pthread_t hb_thr;
  pthread_cond_t hb_cv;
  int hb_started, hb_stop;
  int hb_ms;
  _Atomic int64_t last_warn_ms;
};

/* One attempt of one task instance. */
struct sched_attempt {
  struct sched_core *core;
  struct dag *dag;             /* reference */
  size_t task;                 /* index in dag->tasks */
  int64_t ti_id;
  char run_id[SCHED_RUN_ID_MAX + 1];
  int try_number, max_tries;
  char ds[11];
  time_t logical_ts;
  struct cJSON *conf;          /* owned, may be NULL */
  int run_hb;                  /* 1: `dags test` attempt */

  /* log buffer: log_mu for the lines, flush_mu held across a flush so
   * batches reach the table in order */
  pthread_mutex_t log_mu, flush_mu;
  struct sched_logline *lines;
  size_t nlines, caplines;
  int64_t first_ms;            /* CLOCK_MONOTONIC of the oldest line */
  size_t dropped;

  /* result, filled by the job */
  int skip;
  _Atomic int interrupted;     /* stopped by our own shutdown */
  uint64_t job_id;             /* under core->mu */
  void *owner;                 /* struct sched * (daemon) */

  atomic_int refs;
  struct sched_attempt *prev, *next; /* core->live, under core->mu */
  int in_live;
};

struct sched_logline {
  char ts[27];                 /* "YYYY-MM-DD HH:MM:SS.uuuuuu" UTC */
  char stream[8];
  char *text;
};

/* ---- time and ids (sched_fmt_utc, sched_parse_*: sched.h) ----- */

/* The run id of dag_id at t: "DAG__TYPE__2025-09-01T00:00:00+09:00"
 * (the DAG part shortened with a hash if it would not fit). */
void sched_run_id(const char *dag_id, const char *type,
                  const struct cron_tz *tz, time_t t, char *out, size_t cap);
/* Fill host, pid and claim_id ("[prefix]host:pid:nonce"). */
void sched_core_ids(struct sched_core *c, const char *prefix);
/* Split a claim id into host and pid; 0 ok, -1 if malformed. */
int sched_claim_parse(const char *claim, char *host, size_t cap,
                      long *pid);
/* Non-zero if claim (someone else's) names a process on this host that
 * no longer exists, or this very process under another nonce. */
int sched_claim_dead(const struct sched_core *c, const char *claim);

/* ---- transactions ------------------------------------------------- */

/* READ COMMITTED transaction around fn, retried on deadlock (1213) and
 * lock wait timeout (1205) up to 6 times.  fn must be re-runnable. */
enum err_code sched_txn(struct db_conn *c, db_txn_fn fn, void *user,
                        struct err *e) MLOPSD_WUR;

/* ---- trigger rules and run evaluation ------------------------------- */

enum sched_decision { SCHED_WAIT = 0, SCHED_RUN, SCHED_SKIP, SCHED_UFAIL };

/* Airflow's trigger rules over the upstream states: n upstream tasks of
 * which succ succeeded, skip skipped, fail failed, ufail upstream_failed
 * (the rest not finished). */
enum sched_decision sched_trigger_rule(enum dag_trigger_rule r, int n,
                                       int succ, int skip, int fail,
                                       int ufail);

/* What an evaluation found. */
struct sched_eval {
  int queued;                  /* tasks made queued */
  int finished;                /* the run ended in this evaluation */
  char state[16];              /* its state if finished */
  char failed[512];            /* failed task ids, comma separated */
};

/* Inside a transaction that holds the dag_run row lock: move `scheduled`
 * tasks whose trigger rule decides, and end the run when every task is
 * done (failed if a leaf task failed or is upstream_failed).  d may be
 * NULL (DAG not loaded here): then nothing is decided. */
enum err_code sched_evaluate(struct db_conn *c, const struct dag *d,
                             const char *run_id, struct sched_eval *ev,
                             struct err *e) MLOPSD_WUR;

/* Insert the task instances of a new run of d, in topological order:
 * tasks without upstream `queued` (or `scheduled` if all_scheduled),
 * the others `scheduled`. */
enum err_code sched_insert_tis(struct db_conn *c, const struct dag *d,
                               const char *run_id, int all_scheduled,
                               struct err *e) MLOPSD_WUR;

/* Insert a queued run run_id of dag_id for logical date when (UTC,
 * "YYYY-MM-DD hh:mm:ss"), run_type type, conf (JSON text, NULL: none),
 * not externally triggered, unless the DAG has a run for that date already
 * (then nothing changes).  *created = 1 when this call inserted it.
 * Errors: the db_ codes.  Caller holds c (one thread). */
enum err_code sched_queue_run(struct db_conn *c, const char *run_id,
                              const char *dag_id, const char *when,
                              const char *type, const char *conf,
                              int *created, struct err *e) MLOPSD_WUR;

/* Insert one log line for an attempt directly (takeover notes). */
enum err_code sched_log_direct(struct db_conn *c, const char *run_id,
                               const char *task_id, int try_number,
                               const char *line, struct err *e) MLOPSD_WUR;

/* ---- attempts ----------------------------------------------------- */

/* A new attempt (refs 1) for task index ti of d (a reference is taken).
 * conf_text (may be NULL) is parsed.  NULL on out of memory. */
struct sched_attempt *sched_attempt_new(struct sched_core *core,
                                        struct dag *d, size_t ti,
                                        int64_t ti_id, const char *run_id,
                                        int try_number, int max_tries,
                                        time_t logical_ts,
                                        const char *conf_text);
void sched_attempt_ref(struct sched_attempt *a);
void sched_attempt_unref(struct sched_attempt *a);
/* Add to / remove from core->live (heartbeats and log flushing). */
void sched_live_add(struct sched_attempt *a);
void sched_live_remove(struct sched_attempt *a);

/* Run the task's executor (type->run) with a ctx for this attempt.  job
 * may be NULL; deadline_ms 0 = none.  Returns the executor's code. */
enum err_code sched_attempt_exec(struct sched_attempt *a,
                                 struct queue_job_ctx *job,
                                 int64_t deadline_ms, struct err *e);

/* Append a line to the attempt's log (as ctx->log_line). */
void sched_attempt_log(struct sched_attempt *a, const char *stream,
                       const char *line);
/* Write the buffered lines to task_log (lines that cannot be written are
 * kept for the next flush, up to SCHED_LOG_MAX_PENDING). */
void sched_attempt_flush(struct sched_attempt *a);

/* Record the outcome of an attempt: code/e from the executor (ERR_OK:
 * success, or skipped if a->skip).  A failure with tries left becomes
 * up_for_retry (next_try_at after the retry delay); an interrupted
 * attempt (a->interrupted) becomes up_for_retry at once without using a
 * try; otherwise failed.  Only if the row is still this attempt's claim
 * (claimed_by, try_number): a claim lost to a takeover is not touched
 * (*lost = 1).  Then evaluates the run (ev).  Retries the transaction
 * while the database is away (bounded).  *state_out (may be NULL, cap
 * 16) gets the state written. */
enum err_code sched_attempt_finish(struct sched_attempt *a,
                                   enum err_code code, const struct err *ae,
                                   char *state_out, int *lost,
                                   struct sched_eval *ev,
                                   struct err *e) MLOPSD_WUR;

/* ---- heartbeat / log flusher thread ----------------------------------- */

/* Start the thread that flushes live attempts' logs every ~200 ms and
 * refreshes heartbeat_at of their task instances (and of core->run_hb_id)
 * every core->hb_ms. */
enum err_code sched_core_hb_start(struct sched_core *c,
                                  struct err *e) MLOPSD_WUR;
void sched_core_hb_stop(struct sched_core *c);
int sched_core_init(struct sched_core *c);   /* mutex/cv; 0 ok */
void sched_core_fini(struct sched_core *c);

/* ---- callbacks ------------------------------------------------------ */

/* POST the DAG's on_success / on_failure callback for a finished run
 * (best effort: the outcome is logged, never an error).  ds and iso are
 * the logical date as {{ ds }} and as local ISO 8601; conf may be NULL.
 * Uses nothing but its arguments (runs as a queue job that may outlive
 * the scheduler). */
void sched_callback_send(const struct dag *d, const char *run_id,
                         const char *state, const char *ds, const char *iso,
                         const struct cJSON *conf, const char *failed_tasks);

/* Rate-limited warning (one per 10 s per core). */
void sched_warn(struct sched_core *c, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3);

#endif
