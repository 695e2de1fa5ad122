/* cli_runs.c - `mlopsd runs ...` and `mlopsd logs`: what the scheduler
 * recorded, read from MariaDB (no daemon needed).
 *
 * Listings are paginated by the tables' indexes (runs by (dag_id, id),
 * logs by (run_id, task_id, try_number, id)), so months of history cost
 * the same as a day.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/cli.h"
#include "mlopsd/cron.h"
#include "mlopsd/db.h"
#include "mlopsd/sched.h"
#include "cli_sched_int.h"

#define RUNS_DEFAULT 25

/* ------------------------------------------------------------------ */
/* runs                                                                */

static void runs_usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] runs list [DAG_ID] [--limit N] [--before "
          "ID]\n"
          "       mlopsd [-c FILE] runs show RUN_ID\n"
          "\n"
          "list  DAG runs, newest first, N per page (default 25, at most\n"
          "      1000); the next page with --before the last ID shown.\n"
          "      Logical dates are shown in scheduler.timezone.\n"
          "show  one run (RUN_ID, or its numeric ID) and its task instances:\n"
          "      state, try, start, end, duration, host and pid.\n"
          "\n"
          "Exit codes: 0 ok, 1 failure (also: no such run), 2 usage "
          "error.\n");
}

struct runlist {
  const struct cron_tz *tz;
  long limit;
  long shown;
  int64_t last_id;
  int more;
};

static int runlist_cb(void *user, const struct db_row *row)
{
  struct runlist *l = user;
  if (l->shown == l->limit) {
    l->more = 1;
    return 1;
  }
  char ld[CRON_ISO_LEN + 8], dur[32] = "-";
  cli_sched_iso(l->tz, db_row_str(row, 5, NULL), ld, sizeof(ld));
  time_t s, en;
  if (sched_parse_utc(db_row_str(row, 6, NULL), &s) == 0 &&
      sched_parse_utc(db_row_str(row, 7, NULL), &en) == 0)
    snprintf(dur, sizeof(dur), "%lds", (long)(en - s));
  l->last_id = db_row_i64(row, 0);
  printf("%-7lld  %-9s  %-9s  %-25s  %-7s  %s  %s\n", (long long)l->last_id,
         cli_sched_nz(db_row_str(row, 4, NULL)), cli_sched_nz(db_row_str(row, 3, NULL)), ld, dur,
         cli_sched_nz(db_row_str(row, 2, NULL)), cli_sched_nz(db_row_str(row, 1, NULL)));
  l->shown++;
  return 0;
}

static int runs_list(int argc, char **argv)
{
  const char *W = "runs list";
  const char *dag_id = NULL, *v;
  long limit = RUNS_DEFAULT, before = 0;
  for (int i = 2; i < argc; i++) {
    int r;
    if ((r = cli_sched_opt(argc, argv, &i, "--limit", &v)) != 0) {
      if (r < 0 || cli_parse_long(v, 1, CLI_SCHED_LIST_MAX_ROWS, &limit))
        return cli_sched_usage("runs", "--limit needs a number 1..1000", v);
    } else if ((r = cli_sched_opt(argc, argv, &i, "--before", &v)) != 0) {
      if (r < 0 || cli_parse_long(v, 1, 0x7fffffffffffffffL, &before))
        return cli_sched_usage("runs", "--before needs a run ID (number)", v);
    } else if (argv[i][0] == '-') {
      return cli_sched_usage("runs", "unknown option", argv[i]);
    } else if (!dag_id) {
      dag_id = argv[i];
    } else {
      return cli_sched_usage("runs", "unexpected argument", argv[i]);
    }
  }
  struct cli_sched_ctx x;
  int rc = cli_sched_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    cli_sched_close(&x);
    return rc;
  }
  char sql[512];
  struct db_val p[3];
  int np = 0;
  snprintf(sql, sizeof(sql),
           "SELECT id, run_id, dag_id, run_type, state, logical_date, "
           "start_date, end_date FROM dag_run%s%s%s ORDER BY id DESC LIMIT ?",
           dag_id || before ? " WHERE " : "", dag_id ? "dag_id = ?" : "",
           before ? (dag_id ? " AND id < ?" : "id < ?") : "");
  if (dag_id)
    p[np++] = DB_V_STR(dag_id);
  if (before)
    p[np++] = DB_V_INT(before);
  p[np++] = DB_V_INT(limit + 1);
  printf("%-7s  %-9s  %-9s  %-25s  %-7s  %s  %s\n", "ID", "STATE", "TYPE",
         "LOGICAL_DATE", "TOOK", "DAG_ID", "RUN_ID");
  struct runlist l = {.tz = x.tz, .limit = limit};
  struct err e = {0};
  if (db_query(x.c, sql, p, np, runlist_cb, &l, NULL, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  if (l.more)
    printf("(more: mlopsd runs list%s%s --before %lld)\n", dag_id ? " " : "",
           dag_id ? dag_id : "", (long long)l.last_id);
  cli_sched_close(&x);
  return CLI_OK;
}

struct runhdr {
  int found;
  char run_id[SCHED_RUN_ID_MAX + 1];
  char text[2048];
  const struct cron_tz *tz;
};

static int runhdr_cb(void *user, const struct db_row *row)
{
  struct runhdr *h = user;
  char ld[CRON_ISO_LEN + 8], q[CRON_ISO_LEN + 8], s[CRON_ISO_LEN + 8],
      en[CRON_ISO_LEN + 8];
  h->found = 1;
  snprintf(h->run_id, sizeof(h->run_id), "%s", cli_sched_nz(db_row_str(row, 1, NULL)));
  cli_sched_iso(h->tz, db_row_str(row, 5, NULL), ld, sizeof(ld));
  cli_sched_iso(h->tz, db_row_str(row, 6, NULL), q, sizeof(q));
  cli_sched_iso(h->tz, db_row_str(row, 7, NULL), s, sizeof(s));
  cli_sched_iso(h->tz, db_row_str(row, 8, NULL), en, sizeof(en));
  snprintf(h->text, sizeof(h->text),
           "run:          %s (id %lld)\n"
           "dag:          %s\n"
           "type:         %s\n"
           "state:        %s\n"
           "logical date: %s\n"
           "queued:       %s\n"
           "started:      %s\n"
           "ended:        %s\n"
           "conf:         %s\n",
           h->run_id, (long long)db_row_i64(row, 0),
           cli_sched_nz(db_row_str(row, 2, NULL)), cli_sched_nz(db_row_str(row, 3, NULL)),
           cli_sched_nz(db_row_str(row, 4, NULL)), ld, q, s, en,
           cli_sched_nz(db_row_str(row, 9, NULL)));
  return 1;
}

struct tirows {
  const struct cron_tz *tz;
  size_t wid;
};

static int tirow_cb(void *user, const struct db_row *row)
{
  struct tirows *t = user;
  char s[CRON_ISO_LEN + 8], en[CRON_ISO_LEN + 8], dur[32] = "-";
  cli_sched_iso(t->tz, db_row_str(row, 4, NULL), s, sizeof(s));
  cli_sched_iso(t->tz, db_row_str(row, 5, NULL), en, sizeof(en));
  if (!db_row_is_null(row, 6))
    snprintf(dur, sizeof(dur), "%.3fs", db_row_f64(row, 6));
  char host[300] = "-";
  if (!db_row_is_null(row, 7))
    snprintf(host, sizeof(host), "%s:%lld", cli_sched_nz(db_row_str(row, 7, NULL)),
             (long long)db_row_i64(row, 8));
  printf("%-*s  %-15s  %3lld/%-3lld  %-25s  %-25s  %-9s  %s\n",
         (int)t->wid, cli_sched_nz(db_row_str(row, 0, NULL)),
         cli_sched_nz(db_row_str(row, 1, NULL)), (long long)db_row_i64(row, 2),
         (long long)db_row_i64(row, 3), s, en, dur, host);
  return 0;
}

static int maxlen_cb(void *user, const struct db_row *row)
{
  size_t *w = user;
  size_t n = strlen(cli_sched_nz(db_row_str(row, 0, NULL)));
  if (n > *w)
    *w = n;
  return 0;
}

static const char RUN_SHOW_SQL[] =
    "SELECT id, run_id, dag_id, run_type, state, logical_date, queued_at, "
    "start_date, end_date, conf FROM dag_run WHERE ";

/* Find a run by run_id (or numeric id); fills h.  CLI code. */
static int find_run(const char *W, struct cli_sched_ctx *x, const char *arg,
                    struct runhdr *h)
{
  struct err e = {0};
  char sql[400];
  struct db_val p[1] = {DB_V_STR(arg)};
  h->tz = x->tz;
  snprintf(sql, sizeof(sql), "%srun_id = ?", RUN_SHOW_SQL);
  if (db_query(x->c, sql, p, 1, runhdr_cb, h, NULL, &e) != ERR_OK)
    return cli_sched_fail(W, e.msg);
  long id;
  if (!h->found && cli_parse_long(arg, 1, 0x7fffffffffffffffL, &id) == 0) {
    struct db_val q[1] = {DB_V_INT(id)};
    snprintf(sql, sizeof(sql), "%sid = ?", RUN_SHOW_SQL);
    if (db_query(x->c, sql, q, 1, runhdr_cb, h, NULL, &e) != ERR_OK)
      return cli_sched_fail(W, e.msg);
  }
  if (!h->found) {
    char msg[400];
    snprintf(msg, sizeof(msg), "no run '%s'", arg);
    return cli_sched_fail(W, msg);
  }
  return CLI_OK;
}

/* Connect and find the run (id or run_id) for `runs show` and `logs`;
 * on failure the context is closed and the error printed. */
static int open_run(const char *W, struct cli_sched_ctx *x, const char *run,
                    struct runhdr *h)
{
  int rc = cli_sched_open(x, W, 1, 1);
  if (rc == CLI_OK) {
    memset(h, 0, sizeof(*h));
    rc = find_run(W, x, run, h);
  }
  if (rc != CLI_OK)
    cli_sched_close(x);
  return rc;
}

static int runs_show(int argc, char **argv)
{
  const char *W = "runs show";
  if (argc != 3 || argv[2][0] == '-')
    return cli_sched_usage("runs", "show needs one RUN_ID", NULL);
  struct cli_sched_ctx x;
  struct runhdr h;
  int rc = open_run(W, &x, argv[2], &h);
  if (rc != CLI_OK)
    return rc;
  fputs(h.text, stdout);
  struct tirows t = {.tz = x.tz, .wid = 7};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(h.run_id)};
  if (db_query(x.c, "SELECT task_id FROM task_instance WHERE run_id = ?", p,
               1, maxlen_cb, &t.wid, NULL, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  printf("\n%-*s  %-15s  %7s  %-25s  %-25s  %-9s  %s\n", (int)t.wid, "TASK_ID",
         "STATE", "TRY/MAX", "START", "END", "DURATION", "HOST:PID");
  if (db_query(x.c,
               "SELECT task_id, state, try_number, max_tries, start_date, "
               "end_date, duration, hostname, pid FROM task_instance WHERE "
               "run_id = ? ORDER BY id",
               p, 1, tirow_cb, &t, NULL, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  cli_sched_close(&x);
  return CLI_OK;
}

int cli_runs(int argc, char **argv)
{
  if (argc < 2 || cli_wants_help(argc, argv)) {
    runs_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_USAGE : CLI_OK;
  }
  if (!strcmp(argv[1], "list"))
    return runs_list(argc, argv);
  if (!strcmp(argv[1], "show"))
    return runs_show(argc, argv);
  return cli_sched_usage("runs", "unknown subcommand", argv[1]);
}

/* ------------------------------------------------------------------ */
/* logs                                                                */

static void logs_usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] logs RUN_ID [TASK_ID] [--try N]\n"
          "\n"
          "Print the task log of a run (RUN_ID or its numeric ID): every\n"
          "task in run order, every attempt, or only TASK_ID, or only its\n"
          "attempt N.  Lines are \"TIME STREAM| TEXT\", TIME in UTC; STREAM\n"
          "is stdout, stderr (a shell task's output) or log (the task's and\n"
          "scheduler's own notes).\n"
          "\n"
          "Exit codes: 0 ok, 1 failure (no such run or task), 2 usage "
          "error.\n");
}

static int logline_cb(void *user, const struct db_row *row)
{
  (void)user;
  const char *ts = db_row_str(row, 0, NULL);
  char t[40];
  snprintf(t, sizeof(t), "%.10sT%.15sZ", ts ? ts : "",
           ts && strlen(ts) > 11 ? ts + 11 : "");
  printf("%s %-6s| %s\n", t, cli_sched_nz(db_row_str(row, 1, NULL)),
         db_row_str(row, 2, NULL) ? db_row_str(row, 2, NULL) : "");
  return 0;
}

int cli_logs(int argc, char **argv)
{
  const char *W = "logs";
  const char *run = NULL, *task = NULL, *v;
  long try_n = 0;
  if (cli_wants_help(argc, argv)) {
    logs_usage(stdout);
    return CLI_OK;
  }
  for (int i = 1; i < argc; i++) {
    int r;
    if ((r = cli_sched_opt(argc, argv, &i, "--try", &v)) != 0) {
      if (r < 0 || cli_parse_long(v, 1, 1000000, &try_n))
        return cli_sched_usage("logs", "--try needs an attempt number", v);
    } else if (argv[i][0] == '-') {
      return cli_sched_usage("logs", "unknown option", argv[i]);
    } else if (!run) {
      run = argv[i];
    } else if (!task) {
      task = argv[i];
    } else {
      return cli_sched_usage("logs", "unexpected argument", argv[i]);
    }
  }
  if (!run) {
    logs_usage(stderr);
    return CLI_USAGE;
  }
  struct cli_sched_ctx x;
  struct runhdr h;
  int rc = open_run(W, &x, run, &h);
  if (rc != CLI_OK)
    return rc;
  struct cli_sched_tistates tis = {0};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(h.run_id)};
  if (db_query(x.c,
               "SELECT task_id, state, try_number FROM task_instance WHERE "
               "run_id = ? ORDER BY id",
               p, 1, cli_sched_tistate_cb, &tis, NULL, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  int shown = 0;
  for (size_t i = 0; i < tis.n; i++) {
    const struct cli_sched_tistate *t = &tis.v[i];
    if (task && strcmp(task, t->task))
      continue;
    shown++;
    int lo = try_n ? (int)try_n : 1, hi = try_n ? (int)try_n : t->try_number;
    if (!try_n && hi < 1)
      printf("--- %s: %s, no attempt yet ---\n", t->task, t->state);
    for (int k = lo; k <= hi; k++) {
      printf("--- %s try %d%s%s ---\n", t->task, k,
             k == t->try_number ? ": " : "",
             k == t->try_number ? t->state : "");
      struct db_val q[3] = {DB_V_STR(h.run_id), DB_V_STR(t->task),
                            DB_V_INT(k)};
      if (db_query(x.c,
                   "SELECT ts, stream, line FROM task_log WHERE run_id = ? "
                   "AND task_id = ? AND try_number = ? ORDER BY id",
                   q, 3, logline_cb, NULL, NULL, &e) != ERR_OK) {
        free(tis.v);
        cli_sched_close(&x);
        return cli_sched_fail(W, e.msg);
      }
    }
  }
  free(tis.v);
  cli_sched_close(&x);
  if (task && !shown) {
    char msg[600];
    snprintf(msg, sizeof(msg), "run %s has no task '%s'", h.run_id, task);
    return cli_sched_fail(W, msg);
  }
  return CLI_OK;
}
