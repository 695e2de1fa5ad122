/* cli_sched.c - `mlopsd dags ...`: the scheduler's command line (`runs`
 * and `logs` are in cli_runs.c, their shared helpers in cli_sched_util.c).
 *
 * Every command reads and writes MariaDB directly and needs no running
 * daemon: `dags trigger` records a queued run that a daemon starts when
 * it sees it (now or later), `dags test` runs the tasks in this process.
 * `dags backfill` does either for every logical date of a range: queued
 * runs for the daemons (max_active_runs at a time, --wait follows them),
 * or with --local one run after another here, with the code `dags test`
 * uses (sched_local.h), so the course's history replays without a daemon.
 * `dags validate` needs no database at all.
 *
 * Errors are one line on stderr, "mlopsd: dags trigger: ...", exit 1; a
 * bad command line exits 2.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cli.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/queue.h"
#include "mlopsd/sched.h"
#include "mlopsd/sched_local.h"
#include "mlopsd/vec.h"
#include "cli_sched_int.h"

#define LIST_DEFAULT 100

/* ------------------------------------------------------------------ */
/* dags                                                                */

static void dags_usage(FILE *f)
{
  fprintf(
      f,
      "usage: mlopsd [-c FILE] dags list [--limit N] [--after DAG_ID]\n"
      "       mlopsd [-c FILE] dags validate [FILE...]\n"
      "       mlopsd [-c FILE] dags trigger DAG_ID [--date DATE] [--conf "
      "JSON]\n"
      "                                    [--wait [--timeout SECONDS]]\n"
      "       mlopsd [-c FILE] dags test DAG_ID [--date DATE]\n"
      "       mlopsd [-c FILE] dags backfill DAG_ID --from DATE --to DATE\n"
      "                  [--conf JSON] [--wait [--timeout S] | --local "
      "[--verbose]]\n"
      "       mlopsd [-c FILE] dags pause|unpause DAG_ID\n"
      "\n"
      "list      the DAGs of scheduler.dags_dir: id, schedule, next run (in\n"
      "          scheduler.timezone), state of the last run, paused, tasks;\n"
      "          N per page (default 100), the next page with --after the\n"
      "          last id shown.\n"
      "validate  check DAG files without a database or daemon (default: "
      "every\n"
      "          file of scheduler.dags_dir); errors as FILE:LINE:COL: "
      "message.\n"
      "          Exit 1 if any file is invalid.\n"
      "trigger   record a queued manual run for DATE (YYYY-MM-DD = midnight\n"
      "          local, or YYYY-MM-DDTHH:MM[:SS]; default now) with an\n"
      "          optional conf object ({{ conf.NAME }}).  A running daemon\n"
      "          starts it within a tick; without one it waits in MariaDB.\n"
      "          --wait follows it, printing task states as they change,\n"
      "          and exits 0 if it succeeds, 1 if it fails (or after\n"
      "          --timeout seconds).\n"
      "test      run every task of the DAG once, in this process, in\n"
      "          topological order with trigger rules, printing task log\n"
      "          lines as they come (no retries, no callbacks).  The run is\n"
      "          recorded (run_type manual, run id DAG__test__DATE) and\n"
      "          replaces a finished run of the same date.  Exit 0 if the\n"
      "          run succeeds, 1 otherwise.\n"
      "backfill  create runs (run_type backfill) for every logical date\n"
      "          in [--from, --to], oldest first: the DAG's cron fire times,\n"
      "          or one a day (at --from's time) for a DAG without schedule;\n"
      "          a plain date as --to includes that whole day.  A date that\n"
      "          already has a run is skipped and reported, never run twice.\n"
      "          The daemons run them, max_active_runs at a time; --wait\n"
      "          follows them and prints a line per run as it finishes.\n"
      "          --local runs them here instead, one after another, as\n"
      "          `dags test` does (no daemon needed; waits while the DAG has\n"
      "          max_active_runs running elsewhere); --verbose prints the\n"
      "          task logs.  Ctrl-C stops after the run in progress.  Exit 0\n"
      "          if every run created succeeded (or was only queued), 1 if\n"
      "          one failed.\n"
      "pause     stop creating scheduled runs (queued runs wait; running\n"
      "          ones finish); unpause resumes (catch-up rules apply).\n"
      "\n"
      "Exit codes: 0 ok, 1 failure, 2 usage error.  See docs/scheduler.md.\n");
}

/* ---- dags validate ---- */

static int dags_validate(int argc, char **argv)
{
  int bad = 0, n = 0;
  struct err e = {0};
  for (int i = 2; i < argc; i++) {
    if (argv[i][0] == '-' && argv[i][1])
      return cli_sched_usage("dags", "unknown option", argv[i]);
  }
  if (argc > 2) {
    for (int i = 2; i < argc; i++) {
      struct dag *d = NULL;
      if (dag_load_file(argv[i], &d, &e) != ERR_OK) {
        fprintf(stderr, "%s\n", e.msg);
        bad++;
        continue;
      }
      printf("ok  %s: %s (%zu tasks)\n", argv[i], d->dag_id, d->ntasks);
      dag_destroy(d);
      n++;
    }
    return bad ? CLI_FAIL : CLI_OK;
  }
  struct cfg c;
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  if (dag_load_dir(c.sched_dags_dir, &s, &errs, &e) != ERR_OK) {
    memset(&c, 0, sizeof(c));
    return cli_sched_fail("dags validate", e.msg);
  }
  for (size_t i = 0; i < dag_set_count(s); i++) {
    struct dag *d = dag_set_at(s, i);
    printf("ok  %s: %s (%zu tasks)\n", d->path, d->dag_id, d->ntasks);
  }
  for (size_t i = 0; i < errs.n; i++)
    fprintf(stderr, "%s\n", errs.v[i].msg);
  bad = (int)errs.n;
  dag_errors_free(&errs);
  dag_set_destroy(s);
  memset(&c, 0, sizeof(c));
  return bad ? CLI_FAIL : CLI_OK;
}

/* ---- dags list ---- */

struct dagrow {
  int found, paused;
  char last_sched[32];
  char import_error[160];
  char last_state[16];
  char last_date[32];
};

static int dagrow_cb(void *user, const struct db_row *row)
{
  struct dagrow *r = user;
  r->found = 1;
  r->paused = (int)db_row_i64(row, 0);
  db_row_copy(row, 1, r->last_sched, sizeof(r->last_sched));
  db_row_copy(row, 2, r->import_error, sizeof(r->import_error));
  return 1;
}

static int lastrun_cb(void *user, const struct db_row *row)
{
  struct dagrow *r = user;
  db_row_copy(row, 0, r->last_state, sizeof(r->last_state));
  db_row_copy(row, 1, r->last_date, sizeof(r->last_date));
  return 1;
}

static void next_run(const struct cron_tz *tz, const struct dag *d,
                     const char *last_sched, char *out, size_t cap)
{
  time_t now = time(NULL), from = now, t, last;
  struct err e = {0};
  if (!d->schedule) {
    snprintf(out, cap, "-");
    return;
  }
  if (d->catchup && last_sched[0] && sched_parse_utc(last_sched, &last) == 0)
    from = last;
  if (d->start_date.set) {
    time_t st = cron_tz_resolve(tz, d->start_date.year, d->start_date.month,
                                d->start_date.day, d->start_date.hour,
                                d->start_date.minute, d->start_date.second);
    if (st - 1 > from)
      from = st - 1;
  }
  if (cron_next(&d->cron, tz, from, &t, &e) != ERR_OK) {
    snprintf(out, cap, "never");
    return;
  }
  char iso[CRON_ISO_LEN];
  cron_fmt_iso(tz, t, iso);
  snprintf(out, cap, "%s", iso);
}

static int dags_list(int argc, char **argv)
{
  const char *W = "dags list";
  long limit = LIST_DEFAULT;
  const char *after = NULL, *v;
  for (int i = 2; i < argc; i++) {
    int r;
    if ((r = cli_sched_opt(argc, argv, &i, "--limit", &v)) != 0) {
      if (r < 0 || cli_parse_long(v, 1, CLI_SCHED_LIST_MAX_ROWS, &limit))
        return cli_sched_usage("dags", "--limit needs a number 1..1000", v);
    } else if ((r = cli_sched_opt(argc, argv, &i, "--after", &v)) != 0) {
      if (r < 0)
        return cli_sched_usage("dags", "--after needs a DAG id", NULL);
      after = v;
    } else {
      return cli_sched_usage("dags", "unexpected argument", argv[i]);
    }
  }
  struct cli_sched_ctx x;
  int rc = cli_sched_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    cli_sched_close(&x);
    return rc;
  }
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err le = {0};
  if (dag_load_dir(x.cfg.sched_dags_dir, &s, &errs, &le) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, le.msg);
  }
  size_t n = dag_set_count(s), first = 0;
  if (after)
    while (first < n && strcmp(dag_set_at(s, first)->dag_id, after) <= 0)
      first++;
  size_t end = first + (size_t)limit < n ? first + (size_t)limit : n;
  size_t wid = 6;
  for (size_t i = first; i < end; i++)
    if (strlen(dag_set_at(s, i)->dag_id) > wid)
      wid = strlen(dag_set_at(s, i)->dag_id);
  printf("%-*s  %-15s  %-25s  %-8s  %-25s  %-6s  %s\n", (int)wid, "DAG_ID",
         "SCHEDULE", "NEXT_RUN", "LAST", "LAST_LOGICAL_DATE", "PAUSED",
         "TASKS");
  struct err e = {0};
  for (size_t i = first; i < end; i++) {
    struct dag *d = dag_set_at(s, i);
    struct dagrow r;
    memset(&r, 0, sizeof(r));
    struct db_val p[1] = {DB_V_STR(d->dag_id)};
    if (db_query(x.c,
                 "SELECT is_paused, last_scheduled_date, import_error FROM "
                 "dag WHERE dag_id = ?",
                 p, 1, dagrow_cb, &r, NULL, &e) != ERR_OK ||
        db_query(x.c,
                 "SELECT state, logical_date FROM dag_run WHERE dag_id = ? "
                 "ORDER BY logical_date DESC LIMIT 1",
                 p, 1, lastrun_cb, &r, NULL, &e) != ERR_OK) {
      dag_errors_free(&errs);
      dag_set_destroy(s);
      cli_sched_close(&x);
      return cli_sched_fail(W, e.msg);
    }
    char nxt[CRON_ISO_LEN + 8], ld[CRON_ISO_LEN + 8];
    next_run(x.tz, d, r.last_sched, nxt, sizeof(nxt));
    cli_sched_iso(x.tz, r.last_date[0] ? r.last_date : NULL, ld, sizeof(ld));
    printf("%-*s  %-15s  %-25s  %-8s  %-25s  %-6s  %zu\n", (int)wid,
           d->dag_id, d->schedule ? d->schedule : "none", nxt,
           cli_sched_nz(r.last_state), ld, r.paused ? "yes" : "no", d->ntasks);
    if (r.import_error[0])
      printf("  import error: %s\n", r.import_error);
  }
  if (end < n)
    printf("(%zu more: mlopsd dags list --after %s)\n", n - end,
           dag_set_at(s, end - 1)->dag_id);
  /* Files that do not load now (a daemon may still run their last good
   * version: see "import error" above). */
  for (size_t i = 0; i < errs.n; i++)
    printf("broken: %s\n", errs.v[i].msg);
  dag_errors_free(&errs);
  dag_set_destroy(s);
  cli_sched_close(&x);
  return CLI_OK;
}

/* ---- dags pause / unpause ---- */

static int dags_pause(int argc, char **argv, int paused)
{
  const char *W = paused ? "dags pause" : "dags unpause";
  if (argc != 3 || argv[2][0] == '-')
    return cli_sched_usage("dags", paused ? "pause needs one DAG_ID"
                                    : "unpause needs one DAG_ID",
                     NULL);
  struct cli_sched_ctx x;
  int rc = cli_sched_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    cli_sched_close(&x);
    return rc;
  }
  struct dag_set *s = cli_sched_load_dags(W, &x.cfg, 0);
  int64_t known = 0;
  struct err e = {0};
  if (s && dag_set_find(s, argv[2]))
    known = 1;
  dag_set_destroy(s);
  struct db_val p[1] = {DB_V_STR(argv[2])};
  if (!known &&
      db_query_i64(x.c, "SELECT COUNT(*) FROM dag WHERE dag_id = ?", p, 1,
                   &known, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  if (!known) {
    char msg[600];
    snprintf(msg, sizeof(msg), "no DAG '%s' in %s", argv[2],
             x.cfg.sched_dags_dir);
    cli_sched_close(&x);
    return cli_sched_fail(W, msg);
  }
  if (sched_set_paused(x.c, argv[2], paused, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_fail(W, e.msg);
  }
  printf("DAG %s %s\n", argv[2], paused ? "paused" : "unpaused");
  cli_sched_close(&x);
  return CLI_OK;
}

/* ---- dags trigger ---- */

static int str1_cb(void *user, const struct db_row *row)
{
  char *out = user;
  const char *s = db_row_str(row, 0, NULL);
  snprintf(out, 32, "%s", s ? s : "");
  return 1;
}

/* Follow a run until it ends; 0 success, 1 failed or timed out. */
static int wait_run(struct cli_sched_ctx *x, const char *run_id, long timeout_s)
{
  struct cli_sched_tistates prev = {0};
  char last_run[32] = "";
  struct err e = {0};
  int64_t until = timeout_s > 0 ? queue_now_ms() + timeout_s * 1000 : 0;
  for (;;) {
    char st[32] = "";
    struct cli_sched_tistates cur = {0};
    struct db_val p[1] = {DB_V_STR(run_id)};
    if (db_query(x->c, "SELECT state FROM dag_run WHERE run_id = ?", p, 1,
                 str1_cb, st, NULL, &e) != ERR_OK ||
        db_query(x->c,
                 "SELECT task_id, state, try_number FROM task_instance "
                 "WHERE run_id = ? ORDER BY id",
                 p, 1, cli_sched_tistate_cb, &cur, NULL, &e) != ERR_OK) {
      /* The connection may have dropped: take a new one and go on. */
      fprintf(stderr, "mlopsd: dags trigger: %s (retrying)\n", e.msg);
      db_release(x->pool, x->c);
      x->c = NULL;
      if (db_acquire(x->pool, 5000, &x->c, &e) != ERR_OK) {
        free(prev.v);
        free(cur.v);
        return cli_sched_fail("dags trigger", e.msg);
      }
      free(cur.v);
      continue;
    }
    int run_changed = strcmp(st, last_run) != 0;
    if (run_changed && strcmp(st, "success") && strcmp(st, "failed")) {
      printf("run %s: %s\n", run_id, st);
      snprintf(last_run, sizeof(last_run), "%s", st);
      run_changed = 0;
    }
    for (size_t i = 0; i < cur.n; i++) {
      const struct cli_sched_tistate *o = NULL;
      for (size_t k = 0; k < prev.n && !o; k++)
        if (!strcmp(prev.v[k].task, cur.v[i].task))
          o = &prev.v[k];
      if (o && !strcmp(o->state, cur.v[i].state) &&
          o->try_number == cur.v[i].try_number)
        continue;
      if (!o && !strcmp(cur.v[i].state, "scheduled"))
        continue;
      printf("  %-30s %s", cur.v[i].task, cur.v[i].state);
      if (cur.v[i].try_number > 0)
        printf(" (try %d)", cur.v[i].try_number);
      printf("\n");
    }
    if (run_changed)
      printf("run %s: %s\n", run_id, st);
    fflush(stdout);
    free(prev.v);
    prev = cur;
    if (!strcmp(st, "success") || !strcmp(st, "failed")) {
      free(prev.v);
      return strcmp(st, "success") ? CLI_FAIL : CLI_OK;
    }
    if (until && queue_now_ms() >= until) {
      free(prev.v);
      char msg[400];
      snprintf(msg, sizeof(msg), "run %s still %s after %lds", run_id, st,
               timeout_s);
      return cli_sched_fail("dags trigger", msg);
    }
    usleep(CLI_SCHED_WAIT_POLL_MS * 1000);
  }
}

/* The command lines of `dags trigger`, `dags test` and `dags backfill`:
 * DAG_ID and the options the command takes (DA_* bits); an option of
 * another of them is an unknown option here. */
enum {
  DA_DATE = 1,     /* --date YYYY-MM-DD */
  DA_RANGE = 2,    /* --from DATE --to DATE */
  DA_WAIT = 4,     /* --conf JSON, --wait, --timeout SECONDS */
  DA_LOCAL = 8,    /* --local, --verbose/-v */
  DA_TRIGGER = DA_DATE | DA_WAIT,
  DA_TEST = DA_DATE,
  DA_BACKFILL = DA_RANGE | DA_WAIT | DA_LOCAL,
};

struct dag_args {
  const char *dag_id, *date, *from_s, *to_s, *conf_text;
  int wait, local, verbose;
  long timeout_s;
};

/* The options that take a string value: flag, the set it belongs to,
 * the usage answer when its value is missing, and where it goes. */
static const struct dag_str_opt {
  const char *flag;
  unsigned takes;
  const char *bad;
  size_t off;
} DAG_STR_OPTS[] = {
    {"--date", DA_DATE, "--date needs YYYY-MM-DD",
     offsetof(struct dag_args, date)},
    {"--from", DA_RANGE, "--from needs YYYY-MM-DD",
     offsetof(struct dag_args, from_s)},
    {"--to", DA_RANGE, "--to needs YYYY-MM-DD",
     offsetof(struct dag_args, to_s)},
    {"--conf", DA_WAIT, "--conf needs a JSON object",
     offsetof(struct dag_args, conf_text)},
};

/* One option of the set `takes` at argv[*i] into o: 1 taken (i moved
 * past its value), 0 not one of them, or -1 with *code the usage
 * answer's exit code (a value missing or bad). */
static int dag_opt(int argc, char **argv, int *i, unsigned takes,
                   struct dag_args *o, int *code)
{
  const char *v = NULL, *a = argv[*i];
  int r = 0;
  for (size_t k = 0; k < sizeof(DAG_STR_OPTS) / sizeof(DAG_STR_OPTS[0]);
       k++) {
    const struct dag_str_opt *s = &DAG_STR_OPTS[k];
    if (!(takes & s->takes) ||
        (r = cli_sched_opt(argc, argv, i, s->flag, &v)) == 0)
      continue;
    *(const char **)((char *)o + s->off) = v;
    if (r < 0)
      *code = cli_sched_usage("dags", s->bad, NULL);
    return r;
  }
  if ((takes & DA_WAIT) &&
      (r = cli_sched_opt(argc, argv, i, "--timeout", &v)) != 0) {
    if (r > 0 && cli_parse_long(v, 1, 86400 * 30, &o->timeout_s))
      r = -1;
    if (r < 0)
      *code = cli_sched_usage("dags", "--timeout needs seconds", v);
  } else if ((takes & DA_WAIT) && !strcmp(a, "--wait")) {
    o->wait = r = 1;
  } else if ((takes & DA_LOCAL) && !strcmp(a, "--local")) {
    o->local = r = 1;
  } else if ((takes & DA_LOCAL) &&
             (!strcmp(a, "--verbose") || !strcmp(a, "-v"))) {
    o->verbose = r = 1;
  }
  return r;
}

/* argv[2..] of the command `cmd` ("trigger", "test", "backfill") taking
 * the options `takes` into *o (zeroed first).  CLI_OK, or the usage
 * answer's exit code; DAG_ID is required. */
static int dag_args_parse(int argc, char **argv, const char *cmd,
                          unsigned takes, struct dag_args *o)
{
  memset(o, 0, sizeof(*o));
  for (int i = 2; i < argc; i++) {
    int code = CLI_OK, r = dag_opt(argc, argv, &i, takes, o, &code);
    if (r < 0)
      return code;
    if (r > 0)
      continue;
    if (argv[i][0] == '-')
      return cli_sched_usage("dags", "unknown option", argv[i]);
    if (o->dag_id)
      return cli_sched_usage("dags", "unexpected argument", argv[i]);
    o->dag_id = argv[i];
  }
  if (!o->dag_id) {
    char msg[64];
    snprintf(msg, sizeof(msg), "%s needs a DAG_ID", cmd);
    return cli_sched_usage("dags", msg, NULL);
  }
  return CLI_OK;
}

/* The failure "no DAG_ID in the DAG directory": closes x (after reading
 * its configuration) and returns the failure's exit code. */
static int no_dag(const char *W, struct cli_sched_ctx *x, const char *dag_id)
{
  char msg[600];
  snprintf(msg, sizeof(msg),
           "no DAG '%s' in %s (mlopsd dags validate shows broken files)",
           dag_id, x->cfg.sched_dags_dir);
  cli_sched_close(x);
  return cli_sched_fail(W, msg);
}

static int dags_trigger(int argc, char **argv)
{
  const char *W = "dags trigger";
  struct dag_args o;
  int ar = dag_args_parse(argc, argv, "trigger", DA_TRIGGER, &o);
  if (ar != CLI_OK)
    return ar;
  const char *dag_id = o.dag_id, *date = o.date, *conf_text = o.conf_text;
  int wait = o.wait;
  long timeout_s = o.timeout_s;
  cJSON *conf = NULL;
  if (conf_text) {
    conf = cJSON_Parse(conf_text);
    if (!conf || !cJSON_IsObject(conf)) {
      cJSON_Delete(conf);
      return cli_sched_usage("dags", "--conf must be a JSON object", conf_text);
    }
  }
  struct cli_sched_ctx x;
  int rc = cli_sched_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    cJSON_Delete(conf);
    cli_sched_close(&x);
    return rc;
  }
  struct dag_set *s = cli_sched_load_dags(W, &x.cfg, 0);
  int known = s && dag_set_find(s, dag_id);
  dag_set_destroy(s);
  if (!known) {
    cJSON_Delete(conf);
    return no_dag(W, &x, dag_id);
  }
  char run_id[SCHED_RUN_ID_MAX + 1];
  struct err e = {0};
  if (sched_trigger(x.c, x.tz, dag_id, date, conf, run_id, sizeof(run_id),
                    &e) != ERR_OK) {
    cJSON_Delete(conf);
    cli_sched_close(&x);
    return e.code == ERR_INVAL ? cli_sched_usage("dags", e.msg, NULL)
                               : cli_sched_fail(W, e.msg);
  }
  cJSON_Delete(conf);
  printf("queued run %s\n", run_id);
  int64_t paused = 0;
  struct db_val p[1] = {DB_V_STR(dag_id)};
  if (db_query_i64(x.c, "SELECT is_paused FROM dag WHERE dag_id = ?", p, 1,
                   &paused, &e) == ERR_OK &&
      paused)
    printf("note: DAG %s is paused; the run starts when it is unpaused\n",
           dag_id);
  fflush(stdout);
  rc = wait ? wait_run(&x, run_id, timeout_s) : CLI_OK;
  cli_sched_close(&x);
  return rc;
}

/* ---- dags test ---- */

static int dags_test(int argc, char **argv)
{
  const char *W = "dags test";
  struct dag_args o;
  int ar = dag_args_parse(argc, argv, "test", DA_TEST, &o);
  if (ar != CLI_OK)
    return ar;
  const char *dag_id = o.dag_id, *date = o.date;
  struct cli_sched_ctx x;
  int rc = cli_sched_open(&x, W, 1, 3);
  if (rc != CLI_OK) {
    cli_sched_close(&x);
    return rc;
  }
  struct err e = {0};
  time_t lt;
  char today[CRON_DATE_LEN];
  if (!date) {
    cron_fmt_date(x.tz, time(NULL), today);
    date = today;
  }
  if (sched_parse_date(x.tz, date, &lt, &e) != ERR_OK) {
    cli_sched_close(&x);
    return cli_sched_usage("dags", e.msg, NULL);
  }
  struct dag_set *set = cli_sched_load_dags(W, &x.cfg, 0);
  struct dag *d = set ? dag_set_find(set, dag_id) : NULL;
  if (!d) {
    dag_set_destroy(set);
    return no_dag(W, &x, dag_id);
  }
  struct sched_local *l = NULL;
  struct sched_local_result r;
  int code = CLI_OK;
  if (sched_local_create(&l, &x.cfg, x.tz, x.pool, x.c, set, 1, &e) !=
          ERR_OK ||
      sched_local_run(l, d, lt, SCHED_LOCAL_TEST, NULL, &r, &e) != ERR_OK)
    code = cli_sched_fail(W, e.msg);
  else if (r.failed)
    code = CLI_FAIL;
  sched_local_destroy(l);
  dag_set_destroy(set);
  cli_sched_close(&x);
  return code;
}

/* ---- dags backfill ---- */

#define BACKFILL_MAX 10000
#define BACKFILL_BUSY_POLL_MS 2000

/* The logical dates of d in [from, to], oldest first: its cron fire times,
 * or for a DAG without schedule one a day at from's local time of day.
 * *out is malloc'd.  0 ok, -1 out of memory, -2 more than BACKFILL_MAX. */
static int backfill_dates(const struct dag *d, const struct cron_tz *tz,
                          time_t from, time_t to, time_t **out, size_t *n)
{
  time_t *v = NULL, t;
  size_t cnt = 0, cap = 0;
  struct err e = {0};
  struct cron_civil c0;
  cron_tz_civil(tz, from, &c0);
  int64_t day = cron_days_from_civil(c0.year, c0.month, c0.day);
  for (;;) {
    if (d->schedule) {
      if (cron_next(&d->cron, tz, cnt ? v[cnt - 1] : from - 1, &t, &e) !=
          ERR_OK)
        break;
    } else {
      int y, m, dd;
      cron_civil_from_days(day++, &y, &m, &dd);
      t = cron_tz_resolve(tz, y, m, dd, c0.hour, c0.minute, c0.second);
    }
    if (t > to)
      break;
    if (cnt == BACKFILL_MAX) {
      free(v);
      return -2;
    }
    if (VEC_PUSH(v, cnt, cap, t)) {
      free(v);
      return -1;
    }
  }
  *out = v;
  *n = cnt;
  return 0;
}

/* "ISO  STATE  SECONDS  RUN_ID": one finished (or skipped) date. */
static void backfill_line(const struct cron_tz *tz, time_t lt,
                          const char *state, double secs, const char *what)
{
  char iso[CRON_ISO_LEN], took[32] = "-";
  cron_fmt_iso(tz, lt, iso);
  if (secs >= 0)
    snprintf(took, sizeof(took), "%.1fs", secs);
  printf("%s  %-7s  %8s  %s\n", iso, state, took, what);
  fflush(stdout);
}

struct bfrun {
  time_t lt;
  char run_id[SCHED_RUN_ID_MAX + 1];
  int wait;                    /* created by us, not finished yet */
};

/* Print "    TASK: attempt 1 failed: ..." for the failed tasks of a run. */
static int failline_cb(void *user, const struct db_row *row)
{
  const char *task = user;
  const char *s = db_row_str(row, 0, NULL);
  printf("    %s: %s\n", task, s ? s : "failed");
  return 1;
}

static void backfill_why(struct db_conn *c, const char *run_id)
{
  struct cli_sched_tistates t = {0};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(run_id)};
  if (db_query(c,
               "SELECT task_id, state, try_number FROM task_instance WHERE "
               "run_id = ? AND state = 'failed' ORDER BY id",
               p, 1, cli_sched_tistate_cb, &t, NULL, &e) != ERR_OK)
    return;
  for (size_t i = 0; i < t.n; i++) {
    struct db_val q[2] = {DB_V_STR(run_id), DB_V_STR(t.v[i].task)};
    if (db_query(c,
                 "SELECT line FROM task_log WHERE run_id = ? AND task_id = "
                 "? AND stream = 'log' AND line LIKE 'attempt % failed:%' "
                 "ORDER BY id DESC LIMIT 1",
                 q, 2, failline_cb, t.v[i].task, NULL, &e) != ERR_OK)
      break;
  }
  fflush(stdout);
  free(t.v);
}

struct bfwait {
  const struct cron_tz *tz;
  struct bfrun *runs;
  size_t n;
  size_t left;
  int failed, succeeded;
  char (*done)[SCHED_RUN_ID_MAX + 1]; /* finished this poll, to explain */
  size_t ndone;
};

static int bfdone_cb(void *user, const struct db_row *row)
{
  struct bfwait *w = user;
  const char *rid = db_row_str(row, 0, NULL);
  const char *st = db_row_str(row, 1, NULL);
  if (!rid || !st)
    return 0;
  for (size_t i = 0; i < w->n; i++) {
    struct bfrun *r = &w->runs[i];
    if (!r->wait || strcmp(r->run_id, rid))
      continue;
    r->wait = 0;
    w->left--;
    double secs = db_row_is_null(row, 2) ? -1 : db_row_f64(row, 2);
    backfill_line(w->tz, r->lt, st, secs, rid);
    if (!strcmp(st, "success")) {
      w->succeeded++;
    } else {
      w->failed++;
      snprintf(w->done[w->ndone++], SCHED_RUN_ID_MAX + 1, "%s", rid);
    }
    break;
  }
  return 0;
}

/* Follow the runs we queued until each has finished (a line each, in the
 * order they finish) or timeout_s passed.  CLI code. */
static int backfill_wait(struct cli_sched_ctx *x, const struct dag *d,
                         struct bfwait *w, long timeout_s)
{
  const char *W = "dags backfill";
  struct err e = {0};
  int64_t until = timeout_s > 0 ? queue_now_ms() + timeout_s * 1000 : 0;
  char lo[20], hi[20];
  time_t tlo = 0, thi = 0;
  for (size_t i = 0; i < w->n; i++) {
    if (!w->runs[i].wait)
      continue;
    if (!tlo || w->runs[i].lt < tlo)
      tlo = w->runs[i].lt;
    if (w->runs[i].lt > thi)
      thi = w->runs[i].lt;
  }
  sched_fmt_utc(tlo, lo);
  sched_fmt_utc(thi, hi);
  w->done = calloc(w->n ? w->n : 1, sizeof(*w->done));
  if (!w->done)
    return cli_sched_fail(W, "out of memory");
  while (w->left > 0) {
    w->ndone = 0;
    struct db_val p[3] = {DB_V_STR(d->dag_id), DB_V_STR(lo), DB_V_STR(hi)};
    if (db_query(x->c,
                 "SELECT run_id, state, TIMESTAMPDIFF(MICROSECOND, "
                 "start_date, end_date) / 1e6 FROM dag_run WHERE dag_id = ? "
                 "AND logical_date BETWEEN ? AND ? AND run_type = "
                 "'backfill' AND state IN ('success', 'failed') ORDER BY "
                 "end_date, id",
                 p, 3, bfdone_cb, w, NULL, &e) != ERR_OK) {
      fprintf(stderr, "mlopsd: %s: %s (retrying)\n", W, e.msg);
      db_release(x->pool, x->c);
      x->c = NULL;
      if (db_acquire(x->pool, 5000, &x->c, &e) != ERR_OK)
        return cli_sched_fail(W, e.msg);
      usleep(CLI_SCHED_WAIT_POLL_MS * 1000);
      continue;
    }
    for (size_t i = 0; i < w->ndone; i++)
      backfill_why(x->c, w->done[i]);
    if (w->left == 0)
      break;
    if (until && queue_now_ms() >= until) {
      char msg[200];
      snprintf(msg, sizeof(msg), "%zu run(s) still unfinished after %lds",
               w->left, timeout_s);
      return cli_sched_fail(W, msg);
    }
    usleep(CLI_SCHED_WAIT_POLL_MS * 1000);
  }
  return CLI_OK;
}

static volatile sig_atomic_t backfill_stop;

/* First Ctrl-C: finish the run in progress, then stop; second: die. */
static void backfill_sig(int sig)
{
  static const char msg[] = "\nmlopsd: dags backfill: stopping after the "
                            "run in progress (again to abort it)\n";
  if (backfill_stop) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  backfill_stop = 1;
  ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
  (void)w;
}

/* dags backfill's command line: the options and their combinations;
 * CLI_OK or the usage code. */
static int bf_parse_args(int argc, char **argv, struct dag_args *o)
{
  int rc = dag_args_parse(argc, argv, "backfill", DA_BACKFILL, o);
  if (rc != CLI_OK)
    return rc;
  if (!o->from_s || !o->to_s)
    return cli_sched_usage("dags", "backfill needs --from DATE and --to DATE",
                     NULL);
  if (o->timeout_s && (!o->wait || o->local))
    return cli_sched_usage("dags", "--timeout goes with --wait (not --local)",
                     NULL);
  if (o->verbose && !o->local)
    return cli_sched_usage("dags", "--verbose goes with --local", NULL);
  return CLI_OK;
}

/* --conf as the run's conf: one JSON object, printed compactly into
 * *norm (free; NULL without --conf), at most SCHED_CONF_MAX bytes. */
static int bf_conf(const char *text, char **norm)
{
  *norm = NULL;
  if (!text)
    return CLI_OK;
  cJSON *conf = cJSON_Parse(text);
  if (!conf || !cJSON_IsObject(conf)) {
    cJSON_Delete(conf);
    return cli_sched_usage("dags", "--conf must be a JSON object", text);
  }
  *norm = cJSON_PrintUnformatted(conf);
  cJSON_Delete(conf);
  if (!*norm)
    return cli_sched_fail("dags backfill", "out of memory");
  if (strlen(*norm) > SCHED_CONF_MAX) {
    free(*norm);
    *norm = NULL;
    return cli_sched_usage("dags", "--conf is larger than 64 KiB", NULL);
  }
  return CLI_OK;
}

/* --from and --to in the scheduler's zone; a plain date as --to takes in
 * the whole day. */
static int bf_range(const struct cli_sched_ctx *x, const struct dag_args *o,
                    time_t *t_from, time_t *t_to)
{
  struct err e = {0};
  if (sched_parse_date(x->tz, o->from_s, t_from, &e) != ERR_OK ||
      sched_parse_date(x->tz, o->to_s, t_to, &e) != ERR_OK)
    return cli_sched_usage("dags", e.msg, NULL);
  if (strlen(o->to_s) == 10) {
    struct cron_civil c;
    int y, m, dd;
    cron_tz_civil(x->tz, *t_to, &c);
    cron_civil_from_days(cron_days_from_civil(c.year, c.month, c.day) + 1,
                         &y, &m, &dd);
    *t_to = cron_tz_resolve(x->tz, y, m, dd, 0, 0, 0) - 1;
  }
  if (*t_to < *t_from)
    return cli_sched_usage("dags", "--to is before --from", NULL);
  return CLI_OK;
}

/* What a backfill did, for its last line. */
struct bf_tally {
  int created, existing, succeeded, failed;
};

/* --local: each date run to its end in this process, one after the
 * other (sched_local); the first Ctrl-C stops after the run in
 * progress. */
static int bf_run_local(struct cli_sched_ctx *x, struct dag_set *set,
                        struct dag *d, const time_t *dates, size_t n,
                        const char *conf_norm, int verbose,
                        struct bf_tally *t)
{
  const char *W = "dags backfill";
  struct err e = {0};
  int code = CLI_OK;
  struct sched_local *l = NULL;
  if (sched_local_create(&l, &x->cfg, x->tz, x->pool, x->c, set, verbose,
                         &e) != ERR_OK)
    code = cli_sched_fail(W, e.msg);
  /* Ctrl-C / SIGTERM: stop after the run in progress. */
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = backfill_sig;
  sigemptyset(&sa.sa_mask);
  backfill_stop = 0;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  for (size_t i = 0; code == CLI_OK && i < n; i++) {
    if (backfill_stop) {
      printf("stopped by a signal: %zu date(s) not run\n", n - i);
      code = CLI_FAIL;
      break;
    }
    struct sched_local_result r;
    int waited = 0;
    for (;;) {
      if (sched_local_run(l, d, dates[i],
                          verbose ? SCHED_LOCAL_BACKFILL_VERBOSE
                                  : SCHED_LOCAL_BACKFILL,
                          conf_norm, &r, &e) != ERR_OK)
        code = cli_sched_fail(W, e.msg);
      if (code != CLI_OK || !r.busy || backfill_stop)
        break;
      if (!waited++) {
        char iso[CRON_ISO_LEN];
        cron_fmt_iso(x->tz, dates[i], iso);
        printf("%s  waiting: %lld run(s) of %s running "
               "(max_active_runs %d)\n",
               iso, (long long)r.running, d->dag_id, d->max_active_runs);
        fflush(stdout);
      }
      usleep(BACKFILL_BUSY_POLL_MS * 1000);
    }
    if (code != CLI_OK || r.busy)
      continue;
    if (r.exists) {
      t->existing++;
      backfill_line(x->tz, dates[i], "exists", -1, r.other);
      continue;
    }
    t->created++;
    if (r.failed)
      t->failed++;
    else
      t->succeeded++;
    backfill_line(x->tz, dates[i], r.failed ? "failed" : "success", r.secs,
                  r.run_id);
    if (r.failed) {
      printf("    %s: %s\n", r.failed_task[0] ? r.failed_task : "run",
             r.failed_task[0] ? r.error : "a leaf task did not succeed");
      fflush(stdout);
    }
  }
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  sched_local_destroy(l);
  return code;
}

/* Without --local: one queued backfill run per date for the daemons;
 * with --wait, followed until each finished (backfill_wait). */
static int bf_queue(struct cli_sched_ctx *x, const struct dag *d,
                    const time_t *dates, size_t n, const char *conf_norm,
                    const struct dag_args *o, struct bf_tally *t)
{
  const char *W = "dags backfill";
  struct err e = {0};
  int code = CLI_OK;
  struct bfrun *runs = calloc(n ? n : 1, sizeof(*runs));
  if (!runs)
    code = cli_sched_fail(W, "out of memory");
  for (size_t i = 0; code == CLI_OK && i < n; i++) {
    char other[SCHED_RUN_ID_MAX + 64];
    int made = 0;
    runs[i].lt = dates[i];
    if (sched_backfill_queue(x->c, x->tz, d, dates[i], conf_norm,
                             runs[i].run_id, sizeof(runs[i].run_id), &made,
                             other, sizeof(other), &e) != ERR_OK) {
      code = cli_sched_fail(W, e.msg);
      break;
    }
    if (made) {
      t->created++;
      runs[i].wait = 1;
      if (!o->wait)
        backfill_line(x->tz, dates[i], "queued", -1, runs[i].run_id);
    } else {
      t->existing++;
      backfill_line(x->tz, dates[i], "exists", -1, other);
    }
  }
  int64_t paused = 0;
  struct db_val p[1] = {DB_V_STR(d->dag_id)};
  if (code == CLI_OK && t->created &&
      db_query_i64(x->c, "SELECT is_paused FROM dag WHERE dag_id = ?", p, 1,
                   &paused, &e) == ERR_OK &&
      paused)
    printf("note: DAG %s is paused; its runs start when it is unpaused\n",
           d->dag_id);
  fflush(stdout);
  if (code == CLI_OK && o->wait && t->created) {
    struct bfwait w = {.tz = x->tz, .runs = runs, .n = n,
                       .left = (size_t)t->created};
    code = backfill_wait(x, d, &w, o->timeout_s);
    t->succeeded = w.succeeded;
    t->failed = w.failed;
    free(w.done);
  }
  free(runs);
  return code;
}

static int dags_backfill(int argc, char **argv)
{
  const char *W = "dags backfill";
  struct dag_args o;
  char *conf_norm = NULL;
  int rc = bf_parse_args(argc, argv, &o);
  if (rc == CLI_OK)
    rc = bf_conf(o.conf_text, &conf_norm);
  if (rc != CLI_OK)
    return rc;
  struct cli_sched_ctx x;
  rc = cli_sched_open(&x, W, 1, o.local ? 3 : 1);
  time_t t_from, t_to;
  if (rc == CLI_OK)
    rc = bf_range(&x, &o, &t_from, &t_to);
  if (rc != CLI_OK) {
    free(conf_norm);
    cli_sched_close(&x);
    return rc;
  }
  struct dag_set *set = cli_sched_load_dags(W, &x.cfg, 0);
  struct dag *d = set ? dag_set_find(set, o.dag_id) : NULL;
  if (!d) {
    free(conf_norm);
    dag_set_destroy(set);
    return no_dag(W, &x, o.dag_id);
  }
  time_t *dates = NULL;
  size_t n = 0;
  int dr = backfill_dates(d, x.tz, t_from, t_to, &dates, &n);
  if (dr != 0) {
    char msg[200];
    snprintf(msg, sizeof(msg),
             dr == -2 ? "more than %d logical dates in that range: "
                        "backfill a shorter one"
                      : "out of memory (%d)",
             BACKFILL_MAX);
    free(conf_norm);
    dag_set_destroy(set);
    cli_sched_close(&x);
    return cli_sched_fail(W, msg);
  }
  char iso_a[CRON_ISO_LEN], iso_b[CRON_ISO_LEN];
  cron_fmt_iso(x.tz, t_from, iso_a);
  cron_fmt_iso(x.tz, t_to, iso_b);
  printf("backfill %s: %zu logical date(s) in [%s, %s] (%s%s), "
         "max_active_runs %d, %s\n",
         d->dag_id, n, iso_a, iso_b, d->schedule ? "schedule " : "",
         d->schedule ? d->schedule : "no schedule: one a day",
         d->max_active_runs,
         o.local ? "running in this process" : "queued for the daemons");
  fflush(stdout);

  int64_t t0 = queue_now_ms();
  struct bf_tally t = {0};
  int code = o.local ? bf_run_local(&x, set, d, dates, n, conf_norm,
                                    o.verbose, &t)
                     : bf_queue(&x, d, dates, n, conf_norm, &o, &t);
  double secs = (double)(queue_now_ms() - t0) / 1000.0;
  if (o.local || o.wait)
    printf("backfill %s: %zu date(s): %d run(s) succeeded, %d failed, %d "
           "already had a run (skipped)%s; %.1fs\n",
           d->dag_id, n, t.succeeded, t.failed, t.existing,
           t.created - t.succeeded - t.failed > 0 ? ", some not finished"
                                                  : "",
           secs);
  else
    printf("backfill %s: %zu date(s): %d run(s) queued, %d already had a "
           "run (skipped)\n",
           d->dag_id, n, t.created, t.existing);
  if (code == CLI_OK && t.failed)
    code = CLI_FAIL;
  free(dates);
  free(conf_norm);
  dag_set_destroy(set);
  cli_sched_close(&x);
  return code;
}

int cli_dags(int argc, char **argv)
{
  if (argc < 2 || cli_wants_help(argc, argv)) {
    dags_usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_USAGE : CLI_OK;
  }
  const char *sub = argv[1];
  if (!strcmp(sub, "list"))
    return dags_list(argc, argv);
  if (!strcmp(sub, "validate"))
    return dags_validate(argc, argv);
  if (!strcmp(sub, "trigger"))
    return dags_trigger(argc, argv);
  if (!strcmp(sub, "test"))
    return dags_test(argc, argv);
  if (!strcmp(sub, "backfill"))
    return dags_backfill(argc, argv);
  if (!strcmp(sub, "pause"))
    return dags_pause(argc, argv, 1);
  if (!strcmp(sub, "unpause"))
    return dags_pause(argc, argv, 0);
  return cli_sched_usage("dags", "unknown subcommand", sub);
}

