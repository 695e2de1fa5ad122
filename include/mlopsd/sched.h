/* sched.h - the DAG scheduler: runs the DAGs of scheduler.dags_dir on
 * their cron schedule or on demand, with every run, task attempt and log
 * line in MariaDB (dag_run, task_instance, task_log).
 *
 * State lives in the database, not in the process, so that any number of
 * daemons can share one database and a restarted daemon carries on where
 * the dead one stopped (docs/scheduler.md has the whole story):
 *
 *  - runs: a dag_run per (dag_id, logical_date), UNIQUE in the table, so
 *    a fire time, a manual trigger or a catch-up run is recorded once
 *    whoever asks first.  Runs start `queued` and become `running` when a
 *    daemon promotes them (max_active_runs is counted under a row lock of
 *    the DAG's `dag` row);
 *  - task instances: created with the run (`scheduled`); a task whose
 *    upstream tasks satisfy its trigger rule becomes `queued`, and a
 *    daemon claims it with SELECT ... FOR UPDATE SKIP LOCKED, setting
 *    claimed_by ("host:pid:nonce") and heartbeat_at, then runs it as a
 *    job on the shared queue (never on the scheduler thread);
 *  - leases: each daemon refreshes heartbeat_at of its running claims
 *    every few seconds; a claim whose heartbeat is older than
 *    scheduler.lease_s (or whose daemon is a dead process on this host) is
 *    taken over: the orphaned attempt becomes up_for_retry or failed.
 *
 * Thread rule: sched_create/start/stop/destroy from one thread (the
 * daemon's main thread).  The scheduler runs its own two threads (the
 * scheduler loop and the heartbeat/log flusher) and uses queue workers for
 * task attempts and callbacks.  sched_trigger and sched_set_paused may be
 * called from any thread with the caller's own connection.
 */
#ifndef MLOPSD_SCHED_H
#define MLOPSD_SCHED_H

#include <stddef.h>
#include <time.h>

#include "mlopsd/err.h"

struct cfg;
struct cJSON;
struct cron_tz;
struct db_conn;
struct db_pool;
struct metrics;
struct queue;

struct sched;

struct sched_opts {
  const struct cfg *cfg;     /* required; copied.  Database settings for
                                the scheduler's own small pool, timezone,
                                dags_dir, tick_ms, lease_s, workers */
  struct queue *queue;       /* required; borrowed: task attempts run here
                                (QUEUE_PRIO_NORMAL), callbacks (LOW) */
  struct db_pool *task_db;   /* required; borrowed: given to tasks as
                                ctx->db (the feature store) */
  struct metrics *metrics;   /* may be NULL: mlopsd_task_outcomes_total,
                                mlopsd_dag_runs_total */
  int stop_grace_ms;         /* sched_stop lets running attempts finish
                                this long before cancelling them; 0 =
                                5000 */
  int rescan_ms;             /* DAG directory rescan period; 0 = 2000 */
};

/* Build the scheduler: load the time zone, create the bookkeeping pool
 * (cfg database settings, workers + 3 connections; nothing is connected
 * yet).  A DAG directory that does not exist or a database that cannot
 * be reached is not an error here: the scheduler logs it and keeps
 * trying.  ERR_INVAL (opts), ERR_NOTFOUND/ERR_PARSE (time zone),
 * ERR_NOMEM.  *out only on ERR_OK. */
enum err_code sched_create(struct sched **out, const struct sched_opts *o,
                           struct err *e) MLOPSD_WUR;

/* Start the scheduler and heartbeat threads.  ERR_INTERNAL if a thread
 * cannot be started; ERR_STATE if already started. */
enum err_code sched_start(struct sched *s, struct err *e) MLOPSD_WUR;

/* Stop claiming, let running attempts finish for stop_grace_ms, then
 * cancel the rest through the queue (a shell task's process group is
 * killed) and wait until every attempt has been recorded.  An attempt
 * cut short by the stop is put back as up_for_retry without using one of
 * its retries, so the next daemon runs it again.  Idempotent.  Must run
 * before the queue shuts down. */
void sched_stop(struct sched *s);

/* Stop if needed and free.  NULL-safe. */
void sched_destroy(struct sched *s);

/* For /readyz of a scheduler: 1 when the last bookkeeping connection the
 * scheduler asked for was handed out; else 0 with the reason in buf (not
 * started (s NULL), no contact yet, or the database error).  Lock-free
 * but for a short copy under sched.mu; no database call.  Any thread. */
int sched_ready(struct sched *s, char *buf, size_t cap);

/* ---- requests other modules make (CLI, admin API) ------------------- */

#define SCHED_RUN_ID_MAX 250
#define SCHED_CONF_MAX 65536      /* bytes of a run's conf JSON */

/* "YYYY-MM-DD HH:MM:SS" (UTC) for DATETIME parameters. */
void sched_fmt_utc(time_t t, char out[20]);
/* Parse "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC, as DATETIME columns read)
 * -> 0 and *out, -1 if bad. */
int sched_parse_utc(const char *s, time_t *out);
/* Parse a trigger date (sched_trigger's rules below) into *t.
 * ERR_INVAL. */
enum err_code sched_parse_date(const struct cron_tz *tz, const char *date,
                               time_t *t, struct err *e) MLOPSD_WUR;

/* Record a queued manual run of dag_id (the caller checked that the DAG
 * exists) for `date`: "YYYY-MM-DD" (midnight in tz), "YYYY-MM-DDTHH:MM"
 * or "YYYY-MM-DDTHH:MM:SS" (also with a blank for T), local time in tz;
 * NULL = now.  conf: a JSON object or NULL (copied into dag_run.conf).
 * The run id ("DAG__manual__2025-09-01T00:00:00+09:00") goes to run_id
 * (cap >= SCHED_RUN_ID_MAX + 1; may be NULL).  A running daemon starts it
 * within a tick (or when the DAG is unpaused).  Errors: ERR_INVAL (bad
 * date or conf), ERR_EXISTS "DAG 'x' already has a run for <date>:
 * RUN_ID", ERR_DB/ERR_DB_CONN.  Any thread, with the caller's
 * connection (not inside a transaction of its own). */
enum err_code sched_trigger(struct db_conn *c, const struct cron_tz *tz,
                            const char *dag_id, const char *date,
                            const struct cJSON *conf, char *run_id,
                            size_t cap, struct err *e) MLOPSD_WUR;

/* What an Airflow 3 client may add to a trigger (POST .../dagRuns). */
struct sched_trigger_opts {
  int us;           /* fraction of the logical date's second, 0..999999 */
  int logical_null; /* the client sent "logical_date": null: the run is
                       scheduled at `date` (its run_after) and the API
                       answers a null logical date */
};

/* sched_trigger with a fraction of a second and Airflow 3's null logical
 * date (migration 080: dag_run.logical_date_us / logical_date_null).  A
 * run id then carries the fraction ("...T10:11:12.123456+00:00"), so two
 * triggers within one second are two runs; a whole second (us 0) still
 * collides with the run of that second (ERR_EXISTS).  opts NULL = both 0,
 * exactly sched_trigger. */
enum err_code sched_trigger_opts(struct db_conn *c, const struct cron_tz *tz,
                                 const char *dag_id, const char *date,
                                 const struct sched_trigger_opts *opts,
                                 const struct cJSON *conf, char *run_id,
                                 size_t cap, struct err *e) MLOPSD_WUR;

/* Set the `dag` row's pause flag (created if missing).  A paused DAG gets
 * no scheduled runs and its queued runs wait; runs already running
 * finish.  ERR_DB/ERR_DB_CONN. */
enum err_code sched_set_paused(struct db_conn *c, const char *dag_id,
                               int paused, struct err *e) MLOPSD_WUR;

#endif
