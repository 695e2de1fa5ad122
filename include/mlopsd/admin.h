/* admin.h - the admin API (/api/v2/...), shaped like Airflow's REST API,
 * and the live serving figures behind the web console (docs/admin-api.md).
 *
 * Routes (admin_routes):
 *   GET   /api/v2/auth                        what the caller may do (open)
 *   GET   /api/v2/dags                        DAGs: schedule, next run,
 *                                             paused, tasks, last run
 *   GET   /api/v2/dags/{dag_id}
 *   PATCH /api/v2/dags/{dag_id}               {"is_paused": true|false}
 *   POST  /api/v2/dags/{dag_id}               (the same, for clients
 *                                             without PATCH)
 *   GET   /api/v2/dags/{dag_id}/grid          recent runs x task states
 *   POST  /api/v2/dags/{dag_id}/dagRuns       {"logical_date", "conf"}
 *   GET   /api/v2/dags/{dag_id}/dagRuns
 *   GET   /api/v2/dags/{dag_id}/dagRuns/{run_id}
 *   GET   .../dagRuns/{run_id}/taskInstances
 *   GET   .../dagRuns/{run_id}/taskInstances/{task_id}   with attempts
 *   GET   .../taskInstances/{task_id}/logs/{try_number}  JSON, JSON lines
 *                                             or text (Accept header)
 *   GET   /api/v2/models
 *   GET   /api/v2/models/{name}               versions, production,
 *                                             deployments
 *   GET   /api/v2/models/{name}/versions/{version}/trials
 *   GET   /api/v2/models/{name}/drift         drift_report rows
 *   POST  /api/v2/models/{name}/promote       {"version": N}
 *   POST  /api/v2/models/{name}/rollback
 *   GET   /api/v2/serving                     req/s, latency percentiles,
 *                                             predictions per class, log
 *                                             backlog and spool: now and
 *                                             a one-hour ring
 *
 * Authentication: "Authorization: Bearer TOKEN", compared in constant
 * time (SHA-256 of both sides, compared without an early exit) with
 * cfg->admin_token.  No token configured: the admin API is off (403 with
 * how to turn it on).  Missing or wrong token: 401 with
 * WWW-Authenticate: Bearer.  With cfg->auth_console_read_open the GET
 * routes answer without a token; anything that changes state always
 * needs it.  Errors are JSON {"error": "...", "detail": ...}.
 *
 * Database, and the real rule for the HTTP threads: /predict never
 * touches MariaDB, but the admin handlers do, on the HTTP thread that
 * serves them (dag, dag_run, task_instance, task_log, deployment and
 * drift_report; /api/v2/auth and /api/v2/serving excepted).  The wait is
 * bounded:
 *   - a pool of its own, ADMIN_DB_POOL (2) connections: never the task
 *     pool or the log's, so at most 2 HTTP threads are inside a MariaDB
 *     call for the admin API at any moment;
 *   - a connection is waited for at most ADMIN_DB_ACQUIRE_MS (1 s,
 *     connecting included); then 503.  The one exception: promote and
 *     rollback, once MariaDB answered that check, record through
 *     pipeline_previous_version / pipeline_record_deployment (pipeline.h),
 *     which wait up to 10 s for a connection of the same pool;
 *   - every statement at most ADMIN_DB_IO_TIMEOUT_S (5 s, the pool's read
 *     and write timeout);
 *   - after a failed contact, 503 at once for two seconds without trying,
 *     so an outage does not make console polls hold the HTTP workers.
 * A prediction that arrives on an HTTP thread busy with an admin request
 * waits behind it (within those bounds); docs/architecture.md says why
 * the queries are not moved to the queue.  Models come from the registry
 * files, serving figures from the metrics registry (sampled by a thread
 * of this module into a ring of per-interval samples).
 *
 * Thread rule: create/routes/destroy from one thread (routes before the
 * server starts, destroy after it stopped); handlers run on any number of
 * HTTP threads.
 */
#ifndef MLOPSD_ADMIN_H
#define MLOPSD_ADMIN_H

#include "mlopsd/err.h"

struct admin;
struct cfg;
struct db_pool;
struct http;
struct metrics;
struct registry;
struct serving;

#define ADMIN_RING 60           /* samples kept for the serving charts */
#define ADMIN_SAMPLE_MS 60000   /* default sample interval: 1 minute */
#define ADMIN_DB_POOL 2         /* connections of the admin API's pool */
#define ADMIN_DB_ACQUIRE_MS 1000 /* longest wait for one, connect included */
#define ADMIN_DB_IO_TIMEOUT_S 5  /* longest wait for one statement */
#define ADMIN_LIMIT_MAX 1000    /* largest ?limit= of a list */

struct admin_opts {
  const struct cfg *cfg;       /* borrowed, must outlive the admin: token,
                                  read_open, database, scheduler.dags_dir
                                  and timezone */
  struct registry *registry;   /* borrowed, required */
  struct serving *serving;     /* borrowed, may be NULL: promote/rollback
                                  then do not reload the served model */
  struct metrics *metrics;     /* borrowed, may be NULL: no serving
                                  figures */
  struct db_pool *db;          /* borrowed; NULL = a pool of
                                  ADMIN_DB_POOL made from cfg (owned) */
  int sample_ms;               /* 0 = $MLOPSD_ADMIN_SAMPLE_MS if set, else
                                  ADMIN_SAMPLE_MS */
  int acquire_ms;              /* 0 = ADMIN_DB_ACQUIRE_MS */
};

/* Build the admin state and start the sampler thread (when metrics are
 * given).  Loads nothing from MariaDB.  Errors: ERR_INVAL (opts),
 * ERR_NOMEM, ERR_INTERNAL (thread). */
enum err_code admin_create(struct admin **out, const struct admin_opts *o,
                           struct err *e) MLOPSD_WUR;

/* Register the routes above on srv (before http_start).  a must outlive
 * the server's threads. */
enum err_code admin_routes(struct admin *a, struct http *srv,
                           struct err *e) MLOPSD_WUR;

/* Stop the sampler and free.  After the HTTP server stopped.  NULL-safe. */
void admin_destroy(struct admin *a);

/* Take one serving sample now (tests; the sampler thread does this every
 * sample_ms).  Any thread. */
void admin_sample_now(struct admin *a);

#endif
