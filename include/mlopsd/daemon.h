/* daemon.h - start and stop of the whole `mlopsd serve` process.
 *
 * The daemon is the only wirer: it builds every part and hands each the
 * parts it needs through that module's own *_opts at create time; no
 * module includes this header or calls back into the daemon (the module
 * graph is checked by `make check-deps`).
 *
 * daemon_create builds, in order: the metrics registry, the MariaDB pools
 * (one for the scheduler and tasks, a small one of its own for the
 * prediction log, so a busy task pool never delays log flushes), the job
 * queue (scheduler.workers + 1 workers, one reserved for QUEUE_PRIO_HIGH
 * jobs such as log flushes), the model registry, the served models
 * (loaded now), the prediction log (its spool is replayed first once
 * running), the HTTP server, and its routes: /predict (predict.h), the
 * admin API (admin.h: cfg, registry, serving, metrics; a pool of its own)
 * and the web console.  daemon_start starts the threads, logs one line
 * with the listen address, model and version, then builds and starts the
 * scheduler (sched.h: cfg, queue, task pool, metrics) unless no_sched;
 * daemon_run waits for signals; daemon_stop shuts down gracefully:
 *
 *   1. HTTP: stop accepting, finish requests in flight (stop_timeout_ms);
 *   2. the scheduler (sched_destroy), the model watcher;
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
 * A new part joins by being built here and given what it needs; it
 * never reaches for the daemon.
 *
 * Thread rule: create/start/run/stop/destroy from the main thread.
 * daemon_request_stop and daemon_http_port from any thread while the
 * daemon exists.
 */
#ifndef MLOPSD_DAEMON_H
#define MLOPSD_DAEMON_H

#include "mlopsd/err.h"

struct daemon;
struct cfg;

/* server.role (docs/scale-out.md).  all: everything below (one machine).
 * api: the served models, the prediction log, /predict, /metadata,
 * /readyz, the admin API and the console; no scheduler, no log partition
 * maintenance.  scheduler: the scheduler, its tasks and the log partition
 * maintenance; the HTTP server answers only /healthz, /livez, /metrics
 * and /readyz (ready once the scheduler got a database connection). */
enum daemon_role { DAEMON_ALL = 0, DAEMON_API, DAEMON_SCHED };

/* "all" / "api" / "scheduler" -> *out; ERR_INVAL naming the value. */
enum err_code daemon_role_parse(const char *s, enum daemon_role *out,
                                struct err *e) MLOPSD_WUR;
const char *daemon_role_name(enum daemon_role r);

struct daemon_opts {
  const struct cfg *cfg;    /* copied */
  const char *config_path;  /* re-read on SIGHUP; NULL = as cfg_load */
  const char *pid_file;     /* written at start, removed at exit; NULL */
  int stop_timeout_ms;      /* 0 = 10000 */
  int no_native;            /* predict through XGBoost only (benchmarks,
                               diagnosis; see serving_opts) */
  int no_sched;             /* do not run the scheduler (serving only:
                               tests, benchmarks); the role is
                               cfg->server_role */
};

/* Build everything (see above).  A database that cannot be reached is
 * not an error (the log spools, /readyz says so); a bad registry or spool
 * directory or a pid file held by a running process are.  *out only on
 * ERR_OK. */
enum err_code daemon_create(struct daemon **out, const struct daemon_opts *o,
                            struct err *e) MLOPSD_WUR;

/* Start the threads and bind the listen address (ERR_INVAL naming it if
 * it cannot be parsed, ERR_IO if it cannot be bound), then the
 * scheduler. */
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

/* The TCP port the HTTP server listens on (after daemon_start; useful
 * with server.listen port 0). */
int daemon_http_port(const struct daemon *d);

#endif
