/* cli_sched_util.c - helpers of the scheduler's command line
 * (cli_sched_int.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/cli.h"
#include "mlopsd/sched.h"
#include "mlopsd/vec.h"
#include "cli_sched_int.h"

int cli_sched_fail(const char *what, const char *msg)
{
  char buf[ERR_MSG_MAX + 64];
  snprintf(buf, sizeof(buf), "%s", msg);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "mlopsd: %s: %s\n", what, buf);
  return CLI_FAIL;
}

int cli_sched_usage(const char *what, const char *msg, const char *arg)
{
  fprintf(stderr, "mlopsd: %s: %s%s%s%s (try mlopsd %s --help)\n", what, msg,
          arg ? " '" : "", arg ? arg : "", arg ? "'" : "", what);
  return CLI_USAGE;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 and *val set (i moved
 * past it), 0 if argv[*i] is not this option, -1 if VALUE is missing. */
int cli_sched_opt(int argc, char **argv, int *i, const char *name,
                  const char **val)
{
  size_t n = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, n) != 0)
    return 0;
  if (a[n] == '=') {
    *val = a + n + 1;
    return 1;
  }
  if (a[n] != '\0')
    return 0;
  if (*i + 1 >= argc)
    return -1;
  *val = argv[++*i];
  return 1;
}

void cli_sched_close(struct cli_sched_ctx *x)
{
  if (x->c)
    db_release(x->pool, x->c);
  db_pool_destroy(x->pool);
  cron_tz_destroy(x->tz);
  memset(&x->cfg, 0, sizeof(x->cfg));
}

/* Config, time zone and (if db) one connection.  Returns a CLI code. */
int cli_sched_open(struct cli_sched_ctx *x, const char *what, int db, int pool_size)
{
  struct err e = {0};
  memset(x, 0, sizeof(*x));
  int rc = cli_load_config(&x->cfg);
  if (rc != CLI_OK)
    return rc;
  if (cron_tz_load(&x->tz, x->cfg.sched_timezone, &e) != ERR_OK) {
    err_prefix(&e, "scheduler.timezone");
    return cli_sched_fail(what, e.msg);
  }
  if (!db)
    return CLI_OK;
  struct db_opts o;
  db_opts_from_cfg(&o, &x->cfg, pool_size > 0 ? pool_size : 1, 60);
  int ms = x->cfg.db_connect_timeout_s * 1000;
  if (db_pool_create(&x->pool, &o, &e) != ERR_OK ||
      db_acquire(x->pool, ms < 1000 ? 1000 : ms, &x->c, &e) != ERR_OK)
    return cli_sched_fail(what, e.msg);
  return CLI_OK;
}

/* "2025-09-01T00:00:00+09:00" of a DATETIME (UTC) text, or "-". */
void cli_sched_iso(const struct cron_tz *tz, const char *utc, char *out,
                   size_t cap)
{
  time_t t;
  char iso[CRON_ISO_LEN];
  if (!utc || sched_parse_utc(utc, &t) != 0) {
    snprintf(out, cap, "-");
    return;
  }
  cron_fmt_iso(tz, t, iso);
  snprintf(out, cap, "%s", iso);
}

const char *cli_sched_nz(const char *s) { return s && *s ? s : "-"; }

/* Load the DAG directory; print broken files to stderr when verbose. */
struct dag_set *cli_sched_load_dags(const char *what, const struct cfg *c,
                                    int show_errors)
{
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err e = {0};
  if (dag_load_dir(c->sched_dags_dir, &s, &errs, &e) != ERR_OK) {
    cli_sched_fail(what, e.msg);
    return NULL;
  }
  if (show_errors)
    for (size_t i = 0; i < errs.n; i++)
      fprintf(stderr, "mlopsd: %s: warning: %s\n", what, errs.v[i].msg);
  dag_errors_free(&errs);
  return s;
}

int cli_sched_tistate_cb(void *user, const struct db_row *row)
{
  struct cli_sched_tistates *t = user;
  if (VEC_RESERVE(t->v, t->cap, t->n + 1))
    return 1;
  struct cli_sched_tistate *x = &t->v[t->n++];
  db_row_copy(row, 0, x->task, sizeof(x->task));
  db_row_copy(row, 1, x->state, sizeof(x->state));
  x->try_number = (int)db_row_i64(row, 2);
  return 0;
}
