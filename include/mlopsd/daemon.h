/* daemon.h - start and stop of the whole `mlopsd serve` process.
 *
 * daemon_create builds, in order: the metrics registry, the MariaDB pools
 * (one for the scheduler and tasks, a small one of its own for the
 * prediction log, so a busy task pool never delays log flushes), the job
 * queue (scheduler.workers + 1 workers, one reserved for QUEUE_PRIO_HIGH
 * jobs such as log flushes), the model registry, the served models
 * (loaded now), the prediction log (its spool is replayed first once
 * running) and the HTTP server with its routes.  daemon_start starts the
 * threads and logs one line with the listen address, model and version;
 * daemon_run waits for signals; daemon_stop shuts down gracefully:
 *
 *   1. HTTP: stop accepting, finish requests in flight (stop_timeout_ms);
 *   2. the scheduler hook (sched_stop), the model watcher;
 *   3. the prediction log: every pending row to MariaDB or the spool;
 *   4. the queue (running jobs get stop_timeout_ms), then the pools.
 *
 * Signals: SIGTERM and SIGINT stop, SIGHUP reloads the config file and
 * applies what can change at run time (logging level and format; other
 * keys are reported as needing a restart).  SIGPIPE is ignored.
 * daemon_create blocks these signals in the calling thread before any
 * thread starts, so every thread inherits the mask and only daemon_run's
 * sigwait sees them.
 *
 * Hooks (daemon_opts) let later modules join without editing this file:
 * on_routes runs before the HTTP server starts (add routes, e.g. the
 * admin API); sched_start after it started; sched_stop first thing at
 * stop.  The accessors give hooks the shared parts.
 *
 * Thread rule: create/start/run/stop/destroy from the main thread.
 * daemon_request_stop from any thread.  Accessors from any thread while
 * the daemon exists.
 */
#ifndef MLOPSD_DAEMON_H
#define MLOPSD_DAEMON_H

#include "mlopsd/err.h"

struct daemon;
struct cfg;
struct db_pool;
struct queue;
struct registry;
struct serving;
struct plog;
struct http;
struct metrics;

typedef enum err_code (*daemon_hook_fn)(struct daemon *d, void *ud,
                                        struct err *e);
typedef void (*daemon_stop_fn)(struct daemon *d, void *ud);

struct daemon_opts {
  const struct cfg *cfg;    /* copied */
  const char *config_path;  /* re-read on SIGHUP; NULL = as cfg_load */
  const char *pid_file;     /* written at start, removed at exit; NULL */
  int stop_timeout_ms;      /* 0 = 10000 */
  int no_native;            /* predict through XGBoost only (benchmarks,
                               diagnosis; see serving_opts) */
  daemon_hook_fn on_routes; /* may be NULL */
  daemon_hook_fn sched_start;
  daemon_stop_fn sched_stop;
  void *hook_ud;
};

/* Build everything (see above).  A database that cannot be reached is
 * not an error (the log spools, /readyz says so); a bad registry or spool
 * directory, a listen address that cannot be parsed or a pid file held by
 * a running process are.  *out only on ERR_OK. */
enum err_code daemon_create(struct daemon **out, const struct daemon_opts *o,
                            struct err *e) MLOPSD_WUR;

/* Start the threads and bind the listen address (ERR_IO if it cannot be
 * bound). */
enum err_code daemon_start(struct daemon *d, struct err *e) MLOPSD_WUR;

/* Wait for SIGTERM/SIGINT (or daemon_request_stop); handles SIGHUP. */
void daemon_run(struct daemon *d);

/* Ask daemon_run to return (any thread). */
void daemon_request_stop(struct daemon *d);

/* Graceful stop (see above); idempotent.  ERR_TIMEOUT if requests or log
 * rows were cut off. */
enum err_code daemon_stop(struct daemon *d, struct err *e) MLOPSD_WUR;

/* Stop if needed and free everything.  NULL-safe. */
void daemon_destroy(struct daemon *d);

/* create + start + run + stop + destroy; returns a process exit code (0,
 * or 1 with the error logged). */
int daemon_main(const struct daemon_opts *o);

const struct cfg *daemon_cfg(const struct daemon *d);
struct db_pool *daemon_db(struct daemon *d);
struct queue *daemon_queue(struct daemon *d);
struct registry *daemon_registry(struct daemon *d);
struct serving *daemon_serving(struct daemon *d);
struct plog *daemon_plog(struct daemon *d);
struct http *daemon_http(struct daemon *d);
struct metrics *daemon_metrics(struct daemon *d);

#endif
