/* cli_sched_int.h - what the scheduler's command line files share:
 * cli_sched.c (`mlopsd dags ...`), cli_runs.c (`mlopsd runs ...`,
 * `mlopsd logs`) and their helpers in cli_sched_util.c.
 *
 * Errors are one line on stderr, "mlopsd: WHAT: message" (CLI_FAIL); a bad
 * command line says what and where and exits CLI_USAGE.
 */
#ifndef MLOPSD_CLI_SCHED_INT_H
#define MLOPSD_CLI_SCHED_INT_H

#include <stddef.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"

#define CLI_SCHED_LIST_MAX_ROWS 1000
#define CLI_SCHED_WAIT_POLL_MS 500

/* "mlopsd: what: msg" (newlines flattened) on stderr; returns CLI_FAIL. */
int cli_sched_fail(const char *what, const char *msg);
/* "mlopsd: what: msg 'arg' (try mlopsd what --help)"; returns CLI_USAGE. */
int cli_sched_usage(const char *what, const char *msg, const char *arg);
/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 and *val set (i moved
 * past it), 0 if argv[*i] is not this option, -1 if VALUE is missing. */
int cli_sched_opt(int argc, char **argv, int *i, const char *name,
                  const char **val);

/* What a command opens: config, time zone, one connection. */
struct cli_sched_ctx {
  struct cfg cfg;
  struct cron_tz *tz;
  struct db_pool *pool;
  struct db_conn *c;
};

/* Config, time zone and (if db) one connection of a pool of pool_size.
 * Returns a CLI code (the error printed); cli_sched_close in any case. */
int cli_sched_open(struct cli_sched_ctx *x, const char *what, int db,
                   int pool_size);
void cli_sched_close(struct cli_sched_ctx *x);

/* "2025-09-01T00:00:00+09:00" of a DATETIME (UTC) text, or "-". */
void cli_sched_iso(const struct cron_tz *tz, const char *utc, char *out,
                   size_t cap);
/* s, or "-" when NULL or empty. */
const char *cli_sched_nz(const char *s);
/* Load the DAG directory (NULL and the error printed if it cannot be
 * read); print broken files to stderr when show_errors. */
struct dag_set *cli_sched_load_dags(const char *what, const struct cfg *c,
                                    int show_errors);

/* Task instance rows (task_id, state, try_number), for cli_sched_tistate_cb. */
struct cli_sched_tistate {
  char task[256];
  char state[16];
  int try_number;
};

struct cli_sched_tistates {
  struct cli_sched_tistate *v;
  size_t n, cap;
};

int cli_sched_tistate_cb(void *user, const struct db_row *row);

#endif
