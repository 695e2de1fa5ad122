/* cli_sched.c - `mlopsd dags ...`, `mlopsd runs ...` and `mlopsd logs`:
 * the scheduler's command line.
 *
 * Every command reads and writes MariaDB directly and needs no running
 * daemon: `dags trigger` records a queued run that a daemon starts when
 * it sees it (now or later), `dags test` runs the tasks in this process.
 * `dags backfill` does either for every logical date of a range: queued
 * runs for the daemons (max_active_runs at a time, --wait follows them),
 * or with --local one run after another here, with the code `dags test`
 * uses (local_run), so the course's history replays without a daemon.
 * Listings are paginated by the tables' indexes (runs by (dag_id, id),
 * logs by (run_id, task_id, try_number, id)), so months of history cost
 * the same as a day.  `dags validate` needs no database at all.
 *
 * Errors are one line on stderr, "mlopsd: dags trigger: ...", exit 1; a
 * bad command line exits 2.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
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
#include "sched_int.h"

#define LIST_DEFAULT 100
#define RUNS_DEFAULT 25
#define LIST_MAX_ROWS 1000
#define WAIT_POLL_MS 500

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

static int fail(const char *what, const char *msg)
{
  char buf[ERR_MSG_MAX + 64];
  snprintf(buf, sizeof(buf), "%s", msg);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "mlopsd: %s: %s\n", what, buf);
  return CLI_FAIL;
}

static int usage_err(const char *what, const char *msg, const char *arg)
{
  fprintf(stderr, "mlopsd: %s: %s%s%s%s (try mlopsd %s --help)\n", what, msg,
          arg ? " '" : "", arg ? arg : "", arg ? "'" : "", what);
  return CLI_USAGE;
}

/* "--name VALUE" or "--name=VALUE" at argv[*i]: 1 and *val set (i moved
 * past it), 0 if argv[*i] is not this option, -1 if VALUE is missing. */
static int opt_val(int argc, char **argv, int *i, const char *name,
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

static int parse_count(const char *s, long min, long max, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

struct ctx {
  struct cfg cfg;
  struct cron_tz *tz;
  struct db_pool *pool;
  struct db_conn *c;
};

static void ctx_close(struct ctx *x)
{
  if (x->c)
    db_release(x->pool, x->c);
  db_pool_destroy(x->pool);
  cron_tz_destroy(x->tz);
  memset(&x->cfg, 0, sizeof(x->cfg));
}

/* Config, time zone and (if db) one connection.  Returns a CLI code. */
static int ctx_open(struct ctx *x, const char *what, int db, int pool_size)
{
  struct err e = {0};
  memset(x, 0, sizeof(*x));
  int rc = cli_load_config(&x->cfg);
  if (rc != CLI_OK)
    return rc;
  if (cron_tz_load(&x->tz, x->cfg.sched_timezone, &e) != ERR_OK) {
    err_prefix(&e, "scheduler.timezone");
    return fail(what, e.msg);
  }
  if (!db)
    return CLI_OK;
  struct db_opts o;
  memset(&o, 0, sizeof(o));
  o.host = x->cfg.db_host;
  o.port = x->cfg.db_port;
  o.user = x->cfg.db_user;
  o.password = x->cfg.db_password;
  o.database = x->cfg.db_name;
  o.socket = x->cfg.db_socket[0] ? x->cfg.db_socket : NULL;
  o.size = pool_size > 0 ? pool_size : 1;
  o.connect_timeout_s = x->cfg.db_connect_timeout_s;
  o.read_timeout_s = 60;
  int ms = x->cfg.db_connect_timeout_s * 1000;
  if (db_pool_create(&x->pool, &o, &e) != ERR_OK ||
      db_acquire(x->pool, ms < 1000 ? 1000 : ms, &x->c, &e) != ERR_OK)
    return fail(what, e.msg);
  return CLI_OK;
}

/* "2025-09-01T00:00:00+09:00" of a DATETIME (UTC) text, or "-". */
static void local_iso(const struct cron_tz *tz, const char *utc, char *out,
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

static const char *nz(const char *s) { return s && *s ? s : "-"; }

/* Load the DAG directory; print broken files to stderr when verbose. */
static struct dag_set *load_dags(const char *what, const struct cfg *c,
                                 int show_errors)
{
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err e = {0};
  if (dag_load_dir(c->sched_dags_dir, &s, &errs, &e) != ERR_OK) {
    fail(what, e.msg);
    return NULL;
  }
  if (show_errors)
    for (size_t i = 0; i < errs.n; i++)
      fprintf(stderr, "mlopsd: %s: warning: %s\n", what, errs.v[i].msg);
  dag_errors_free(&errs);
  return s;
}

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
      return usage_err("dags", "unknown option", argv[i]);
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
    return fail("dags validate", e.msg);
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
  const char *s;
  r->found = 1;
  r->paused = (int)db_row_i64(row, 0);
  snprintf(r->last_sched, sizeof(r->last_sched), "%s",
           (s = db_row_str(row, 1, NULL)) ? s : "");
  snprintf(r->import_error, sizeof(r->import_error), "%s",
           (s = db_row_str(row, 2, NULL)) ? s : "");
  return 1;
}

static int lastrun_cb(void *user, const struct db_row *row)
{
  struct dagrow *r = user;
  const char *s;
  snprintf(r->last_state, sizeof(r->last_state), "%s",
           (s = db_row_str(row, 0, NULL)) ? s : "");
  snprintf(r->last_date, sizeof(r->last_date), "%s",
           (s = db_row_str(row, 1, NULL)) ? s : "");
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
    if ((r = opt_val(argc, argv, &i, "--limit", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, LIST_MAX_ROWS, &limit))
        return usage_err("dags", "--limit needs a number 1..1000", v);
    } else if ((r = opt_val(argc, argv, &i, "--after", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--after needs a DAG id", NULL);
      after = v;
    } else {
      return usage_err("dags", "unexpected argument", argv[i]);
    }
  }
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err le = {0};
  if (dag_load_dir(x.cfg.sched_dags_dir, &s, &errs, &le) != ERR_OK) {
    ctx_close(&x);
    return fail(W, le.msg);
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
      ctx_close(&x);
      return fail(W, e.msg);
    }
    char nxt[CRON_ISO_LEN + 8], ld[CRON_ISO_LEN + 8];
    next_run(x.tz, d, r.last_sched, nxt, sizeof(nxt));
    local_iso(x.tz, r.last_date[0] ? r.last_date : NULL, ld, sizeof(ld));
    printf("%-*s  %-15s  %-25s  %-8s  %-25s  %-6s  %zu\n", (int)wid,
           d->dag_id, d->schedule ? d->schedule : "none", nxt,
           nz(r.last_state), ld, r.paused ? "yes" : "no", d->ntasks);
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
  ctx_close(&x);
  return CLI_OK;
}

/* ---- dags pause / unpause ---- */

static int dags_pause(int argc, char **argv, int paused)
{
  const char *W = paused ? "dags pause" : "dags unpause";
  if (argc != 3 || argv[2][0] == '-')
    return usage_err("dags", paused ? "pause needs one DAG_ID"
                                    : "unpause needs one DAG_ID",
                     NULL);
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  struct dag_set *s = load_dags(W, &x.cfg, 0);
  int64_t known = 0;
  struct err e = {0};
  if (s && dag_set_find(s, argv[2]))
    known = 1;
  dag_set_destroy(s);
  struct db_val p[1] = {DB_V_STR(argv[2])};
  if (!known &&
      db_query_i64(x.c, "SELECT COUNT(*) FROM dag WHERE dag_id = ?", p, 1,
                   &known, &e) != ERR_OK) {
    ctx_close(&x);
    return fail(W, e.msg);
  }
  if (!known) {
    char msg[600];
    snprintf(msg, sizeof(msg), "no DAG '%s' in %s", argv[2],
             x.cfg.sched_dags_dir);
    ctx_close(&x);
    return fail(W, msg);
  }
  if (sched_set_paused(x.c, argv[2], paused, &e) != ERR_OK) {
    ctx_close(&x);
    return fail(W, e.msg);
  }
  printf("DAG %s %s\n", argv[2], paused ? "paused" : "unpaused");
  ctx_close(&x);
  return CLI_OK;
}

/* ---- dags trigger ---- */

struct tistate {
  char task[256];
  char state[16];
  int try_number;
};

struct tistates {
  struct tistate *v;
  size_t n, cap;
};

static int tistate_cb(void *user, const struct db_row *row)
{
  struct tistates *t = user;
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 16;
    struct tistate *nv = realloc(t->v, nc * sizeof(*nv));
    if (!nv)
      return 1;
    t->v = nv;
    t->cap = nc;
  }
  const char *s;
  struct tistate *x = &t->v[t->n++];
  snprintf(x->task, sizeof(x->task), "%s",
           (s = db_row_str(row, 0, NULL)) ? s : "");
  snprintf(x->state, sizeof(x->state), "%s",
           (s = db_row_str(row, 1, NULL)) ? s : "");
  x->try_number = (int)db_row_i64(row, 2);
  return 0;
}

static int str1_cb(void *user, const struct db_row *row)
{
  char *out = user;
  const char *s = db_row_str(row, 0, NULL);
  snprintf(out, 32, "%s", s ? s : "");
  return 1;
}

/* Follow a run until it ends; 0 success, 1 failed or timed out. */
static int wait_run(struct ctx *x, const char *run_id, long timeout_s)
{
  struct tistates prev = {0};
  char last_run[32] = "";
  struct err e = {0};
  int64_t until = timeout_s > 0 ? queue_now_ms() + timeout_s * 1000 : 0;
  for (;;) {
    char st[32] = "";
    struct tistates cur = {0};
    struct db_val p[1] = {DB_V_STR(run_id)};
    if (db_query(x->c, "SELECT state FROM dag_run WHERE run_id = ?", p, 1,
                 str1_cb, st, NULL, &e) != ERR_OK ||
        db_query(x->c,
                 "SELECT task_id, state, try_number FROM task_instance "
                 "WHERE run_id = ? ORDER BY id",
                 p, 1, tistate_cb, &cur, NULL, &e) != ERR_OK) {
      /* The connection may have dropped: take a new one and go on. */
      fprintf(stderr, "mlopsd: dags trigger: %s (retrying)\n", e.msg);
      db_release(x->pool, x->c);
      x->c = NULL;
      if (db_acquire(x->pool, 5000, &x->c, &e) != ERR_OK) {
        free(prev.v);
        free(cur.v);
        return fail("dags trigger", e.msg);
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
      const struct tistate *o = NULL;
      for (size_t k = 0; k < prev.n && !o; k++)
        if (!strcmp(prev.v[k].task, cur.v[i].task))
          o = &prev.v[k];
      if (o && !strcmp(o->state, cur.v[i].state) &&
          o->try_number == cur.v[i].try_number)
        continue;
      if (!o && !strcmp(cur.v[i].state, TI_SCHEDULED))
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
      return fail("dags trigger", msg);
    }
    usleep(WAIT_POLL_MS * 1000);
  }
}

static int dags_trigger(int argc, char **argv)
{
  const char *W = "dags trigger";
  const char *dag_id = NULL, *date = NULL, *conf_text = NULL, *v;
  int wait = 0;
  long timeout_s = 0;
  for (int i = 2; i < argc; i++) {
    int r;
    if ((r = opt_val(argc, argv, &i, "--date", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--date needs YYYY-MM-DD", NULL);
      date = v;
    } else if ((r = opt_val(argc, argv, &i, "--conf", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--conf needs a JSON object", NULL);
      conf_text = v;
    } else if ((r = opt_val(argc, argv, &i, "--timeout", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, 86400 * 30, &timeout_s))
        return usage_err("dags", "--timeout needs seconds", v);
    } else if (!strcmp(argv[i], "--wait")) {
      wait = 1;
    } else if (argv[i][0] == '-') {
      return usage_err("dags", "unknown option", argv[i]);
    } else if (!dag_id) {
      dag_id = argv[i];
    } else {
      return usage_err("dags", "unexpected argument", argv[i]);
    }
  }
  if (!dag_id)
    return usage_err("dags", "trigger needs a DAG_ID", NULL);
  cJSON *conf = NULL;
  if (conf_text) {
    conf = cJSON_Parse(conf_text);
    if (!conf || !cJSON_IsObject(conf)) {
      cJSON_Delete(conf);
      return usage_err("dags", "--conf must be a JSON object", conf_text);
    }
  }
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    cJSON_Delete(conf);
    ctx_close(&x);
    return rc;
  }
  struct dag_set *s = load_dags(W, &x.cfg, 0);
  int known = s && dag_set_find(s, dag_id);
  dag_set_destroy(s);
  if (!known) {
    char msg[600];
    snprintf(msg, sizeof(msg),
             "no DAG '%s' in %s (mlopsd dags validate shows broken files)",
             dag_id, x.cfg.sched_dags_dir);
    cJSON_Delete(conf);
    ctx_close(&x);
    return fail(W, msg);
  }
  char run_id[SCHED_RUN_ID_MAX + 1];
  struct err e = {0};
  if (sched_trigger(x.c, x.tz, dag_id, date, conf, run_id, sizeof(run_id),
                    &e) != ERR_OK) {
    cJSON_Delete(conf);
    ctx_close(&x);
    return e.code == ERR_INVAL ? usage_err("dags", e.msg, NULL)
                               : fail(W, e.msg);
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
  ctx_close(&x);
  return rc;
}

/* ---- running a DAG in this process: dags test, dags backfill --local ---- */

struct prep {
  const struct dag *d;
  const struct sched_core *core;
  const char *run_id;
  const char *when;
  const char *conf;          /* JSON text or NULL */
  int backfill;              /* existing run: report, don't replace;
                                count max_active_runs */
  /* out (reset by every try of the transaction) */
  int64_t run_row;
  int exists;                /* backfill: the date already has a run */
  int busy;                  /* backfill: max_active_runs are running */
  int64_t running;
  char other[SCHED_RUN_ID_MAX + 64]; /* the existing or replaced run */
};

struct oldrun {
  int64_t id;
  char state[16];
  char run_id[SCHED_RUN_ID_MAX + 1];
  char claimed_by[SCHED_CLAIM_MAX];
};

static int oldrun_cb(void *user, const struct db_row *row)
{
  struct oldrun *o = user;
  const char *s;
  o->id = db_row_i64(row, 0);
  snprintf(o->state, sizeof(o->state), "%s",
           (s = db_row_str(row, 1, NULL)) ? s : "");
  snprintf(o->run_id, sizeof(o->run_id), "%s",
           (s = db_row_str(row, 2, NULL)) ? s : "");
  snprintf(o->claimed_by, sizeof(o->claimed_by), "%s",
           (s = db_row_str(row, 3, NULL)) ? s : "");
  return 1;
}

static int noop_cb(void *user, const struct db_row *row)
{
  (void)user;
  (void)row;
  return 0;
}

static enum err_code drop_run(struct db_conn *c, const struct oldrun *o,
                              struct err *e)
{
  enum err_code rc;
  struct db_val q[1] = {DB_V_STR(o->run_id)};
  struct db_val qi[1] = {DB_V_INT(o->id)};
  if ((rc = db_exec_params(c, "DELETE FROM task_log WHERE run_id = ?", q, 1,
                           NULL, e)) != ERR_OK ||
      (rc = db_exec_params(c, "DELETE FROM task_instance WHERE run_id = ?",
                           q, 1, NULL, e)) != ERR_OK)
    return rc;
  return db_exec_params(c, "DELETE FROM dag_run WHERE id = ?", qi, 1, NULL,
                        e);
}

/* Record the run as running under this process's claim, with its task
 * instances.  dags test replaces a finished run of the date and refuses an
 * active one; backfill keeps any run it finds (pr->exists) except one left
 * running by a dead `test:` process on this host, and counts running runs
 * under the `dag` row lock the daemons take when they promote runs. */
static enum err_code prep_txn(struct db_conn *c, void *user, struct err *e)
{
  struct prep *pr = user;
  struct oldrun o;
  enum err_code rc;
  memset(&o, 0, sizeof(o));
  pr->run_row = 0;
  pr->exists = pr->busy = 0;
  pr->running = 0;
  pr->other[0] = '\0';
  struct db_val p[2] = {DB_V_STR(pr->d->dag_id), DB_V_STR(pr->when)};
  if (pr->backfill &&
      ((rc = db_exec_params(c, "INSERT IGNORE INTO dag (dag_id) VALUES (?)",
                            p, 1, NULL, e)) != ERR_OK ||
       (rc = db_query(c, "SELECT dag_id FROM dag WHERE dag_id = ? FOR UPDATE",
                      p, 1, noop_cb, NULL, NULL, e)) != ERR_OK))
    return rc;
  rc = db_query(c,
                "SELECT id, state, run_id, claimed_by FROM dag_run WHERE "
                "dag_id = ? AND logical_date = ? FOR UPDATE",
                p, 2, oldrun_cb, &o, NULL, e);
  if (rc != ERR_OK)
    return rc;
  int orphan = 0;
  if (o.id) {
    int active = !strcmp(o.state, "queued") || !strcmp(o.state, "running");
    orphan = pr->backfill && !strcmp(o.state, "running") &&
             !strncmp(o.claimed_by, "test:", 5) &&
             sched_claim_dead(pr->core, o.claimed_by);
    if (pr->backfill && !orphan) {
      pr->exists = 1;
      snprintf(pr->other, sizeof(pr->other), "%s (%s)", o.run_id, o.state);
      return ERR_OK;
    }
    if (active && !orphan)
      return err_set(e, ERR_STATE,
                     "run %s of that date is %s; wait for it to finish or "
                     "test another date",
                     o.run_id, o.state);
  }
  if (pr->backfill) {
    if ((rc = db_query_i64(c,
                           "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? "
                           "AND state = 'running'",
                           p, 1, &pr->running, e)) != ERR_OK)
      return rc;
    if (orphan)
      pr->running--;
    if (pr->running >= pr->d->max_active_runs) {
      pr->busy = 1;
      return ERR_OK;
    }
  }
  if (o.id) {
    if ((rc = drop_run(c, &o, e)) != ERR_OK)
      return rc;
    snprintf(pr->other, sizeof(pr->other), "%s (%s%s)", o.run_id, o.state,
             orphan ? ", left by a process that is gone" : "");
  }
  struct db_val ins[6] = {DB_V_STR(pr->run_id),
                          DB_V_STR(pr->d->dag_id),
                          DB_V_STR(pr->when),
                          DB_V_STR(pr->backfill ? "backfill" : "manual"),
                          pr->conf ? DB_V_STR(pr->conf) : DB_V_NULL,
                          DB_V_STR(pr->core->claim_id)};
  if ((rc = db_exec_params(c,
                           pr->backfill
                               ? "INSERT INTO dag_run (run_id, dag_id, "
                                 "logical_date, run_type, state, conf, "
                                 "queued_at, start_date, external_trigger, "
                                 "claimed_by, heartbeat_at) VALUES (?, ?, ?, "
                                 "?, 'running', ?, UTC_TIMESTAMP(6), "
                                 "UTC_TIMESTAMP(6), 0, ?, UTC_TIMESTAMP(6))"
                               : "INSERT INTO dag_run (run_id, dag_id, "
                                 "logical_date, run_type, state, conf, "
                                 "queued_at, start_date, external_trigger, "
                                 "claimed_by, heartbeat_at) VALUES (?, ?, ?, "
                                 "?, 'running', ?, UTC_TIMESTAMP(6), "
                                 "UTC_TIMESTAMP(6), 1, ?, UTC_TIMESTAMP(6))",
                           ins, 6, NULL, e)) != ERR_OK)
    return rc;
  pr->run_row = db_last_insert_id(c);
  return sched_insert_tis(c, pr->d, pr->run_id, 1, e);
}

static enum err_code ti_mark(struct db_conn *c, const char *run_id,
                             const char *task_id, const char *state,
                             const struct sched_core *core, int64_t *ti_id,
                             struct err *e)
{
  struct db_val p[2] = {DB_V_STR(run_id), DB_V_STR(task_id)};
  enum err_code rc = db_query_i64(c,
                                  "SELECT id FROM task_instance WHERE "
                                  "run_id = ? AND task_id = ?",
                                  p, 2, ti_id, e);
  if (rc != ERR_OK)
    return rc;
  if (!strcmp(state, TI_RUNNING)) {
    struct db_val u[4] = {DB_V_STR(core->host), DB_V_INT(core->pid),
                          DB_V_STR(core->claim_id), DB_V_INT(*ti_id)};
    return db_exec_params(c,
                          "UPDATE task_instance SET state = 'running', "
                          "try_number = 1, start_date = UTC_TIMESTAMP(6), "
                          "hostname = ?, pid = ?, claimed_by = ?, "
                          "heartbeat_at = UTC_TIMESTAMP(6) WHERE id = ?",
                          u, 4, NULL, e);
  }
  struct db_val u[2] = {DB_V_STR(state), DB_V_INT(*ti_id)};
  return db_exec_params(c,
                        "UPDATE task_instance SET state = ?, end_date = "
                        "UTC_TIMESTAMP(6) WHERE id = ?",
                        u, 2, NULL, e);
}

struct test_lookup {
  struct dag_set *set;
};

static struct dag *test_dag_get(void *user, const char *dag_id)
{
  struct test_lookup *l = user;
  struct dag *d = dag_set_find(l->set, dag_id);
  return d ? dag_ref(d) : NULL;
}

/* What running DAGs in this process needs: the tasks' own pool (as in the
 * daemon) and a scheduler core with its heartbeat / log flusher thread. */
struct local {
  struct ctx *x;
  struct db_pool *task_db;
  struct sched_core core;
  struct test_lookup tl;
  int core_ok, hb_ok;
};

/* Returns a CLI code (the error printed). */
static int local_open(struct local *l, const char *W, struct ctx *x,
                      struct dag_set *set, int echo)
{
  struct err e = {0};
  memset(l, 0, sizeof(*l));
  l->x = x;
  l->tl.set = set;
  struct db_opts o;
  memset(&o, 0, sizeof(o));
  o.host = x->cfg.db_host;
  o.port = x->cfg.db_port;
  o.user = x->cfg.db_user;
  o.password = x->cfg.db_password;
  o.database = x->cfg.db_name;
  o.socket = x->cfg.db_socket[0] ? x->cfg.db_socket : NULL;
  o.size = 3;
  o.connect_timeout_s = x->cfg.db_connect_timeout_s;
  o.read_timeout_s = 0;
  if (db_pool_create(&l->task_db, &o, &e) != ERR_OK)
    return fail(W, e.msg);
  if (sched_core_init(&l->core) != 0)
    return fail(W, "out of memory");
  l->core_ok = 1;
  l->core.cfg = &x->cfg;
  l->core.meta = x->pool;
  l->core.task_db = l->task_db;
  l->core.tz = x->tz;
  l->core.lease_s = x->cfg.sched_lease_s > 0 ? x->cfg.sched_lease_s : 30;
  l->core.echo = echo;
  l->core.dag_get = test_dag_get;
  l->core.dag_get_user = &l->tl;
  sched_core_ids(&l->core, "test:");
  return CLI_OK;
}

static void local_close(struct local *l)
{
  if (l->hb_ok)
    sched_core_hb_stop(&l->core);
  if (l->core_ok)
    sched_core_fini(&l->core);
  db_pool_destroy(l->task_db);
  memset(l, 0, sizeof(*l));
}

/* The outcome of one run in this process. */
struct lres {
  char run_id[SCHED_RUN_ID_MAX + 1];
  int exists;                  /* backfill: the date has a run: nothing done */
  int busy;                    /* backfill: max_active_runs: nothing done */
  int64_t running;             /* ... that many are running */
  char other[SCHED_RUN_ID_MAX + 64];
  int failed;                  /* the run ended failed */
  double secs;
  char failed_task[DAG_ID_MAX + 1];
  char error[ERR_MSG_MAX];     /* of the first failed task */
};

enum local_mode { LOCAL_TEST, LOCAL_BACKFILL, LOCAL_BACKFILL_VERBOSE };

/* Run every task of d for logical time lt in this process, in topological
 * order with the trigger rules, no retries, no callbacks.  LOCAL_TEST
 * prints what `dags test` prints; the backfill modes print nothing but
 * (verbose) the task lines.  CLI_OK when the run was decided (r->exists,
 * r->busy, or it ran: r->failed), else a CLI code with the error
 * printed. */
static int local_run(struct local *l, const char *W, struct dag *d,
                     time_t lt, enum local_mode mode, const char *conf,
                     struct lres *r)
{
  struct ctx *x = l->x;
  struct sched_core *core = &l->core;
  struct err e = {0};
  int tasks_out = mode != LOCAL_BACKFILL;
  memset(r, 0, sizeof(*r));
  char when[20], iso[CRON_ISO_LEN], ds[CRON_DATE_LEN];
  sched_run_id(d->dag_id, mode == LOCAL_TEST ? "test" : "backfill", x->tz,
               lt, r->run_id, sizeof(r->run_id));
  sched_fmt_utc(lt, when);
  cron_fmt_iso(x->tz, lt, iso);
  cron_fmt_date(x->tz, lt, ds);
  struct prep pr = {.d = d,
                    .core = core,
                    .run_id = r->run_id,
                    .when = when,
                    .conf = conf,
                    .backfill = mode != LOCAL_TEST};
  if (sched_txn(x->c, prep_txn, &pr, &e) != ERR_OK)
    return fail(W, e.msg);
  snprintf(r->other, sizeof(r->other), "%s", pr.other);
  if (pr.exists || pr.busy) {
    r->exists = pr.exists;
    r->busy = pr.busy;
    r->running = pr.running;
    return CLI_OK;
  }
  atomic_store(&core->run_hb_id, pr.run_row);
  if (!l->hb_ok) {
    if (sched_core_hb_start(core, &e) != ERR_OK)
      return fail(W, e.msg);
    l->hb_ok = 1;
  }
  if (mode == LOCAL_TEST) {
    if (pr.other[0])
      printf("replacing run %s\n", pr.other);
    printf("dags test: DAG %s, run %s, logical date %s (ds %s), %zu tasks\n",
           d->dag_id, r->run_id, iso, ds, d->ntasks);
  } else if (pr.other[0]) {
    printf("replacing run %s\n", pr.other);
  }
  fflush(stdout);

  /* In-memory states in dag task order: every upstream task is decided
   * before its downstream ones (topological order), so trigger rules
   * never have to wait. */
  enum { T_SUCCESS = 1, T_FAILED, T_SKIPPED, T_UFAIL };
  int code = CLI_FAIL;
  int64_t run_t0 = queue_now_ms();
  int *st = calloc(d->ntasks ? d->ntasks : 1, sizeof(*st));
  if (!st) {
    fail(W, "out of memory");
    goto out;
  }
  for (size_t k = 0; k < d->ntasks; k++) {
    size_t i = d->topo[k];
    const struct dag_task *t = &d->tasks[i];
    int cnt[5] = {0};
    for (size_t u = 0; u < t->nupstream; u++)
      cnt[st[t->upstream[u]]]++;
    enum sched_decision dec =
        sched_trigger_rule(t->trigger_rule, (int)t->nupstream, cnt[T_SUCCESS],
                           cnt[T_SKIPPED], cnt[T_FAILED], cnt[T_UFAIL]);
    int64_t ti_id = 0;
    if (dec != SCHED_RUN) {
      const char *s = dec == SCHED_SKIP ? TI_SKIPPED : TI_UPSTREAM_FAILED;
      st[i] = dec == SCHED_SKIP ? T_SKIPPED : T_UFAIL;
      if (ti_mark(x->c, r->run_id, t->id, s, core, &ti_id, &e) != ERR_OK) {
        fail(W, e.msg);
        goto out;
      }
      if (tasks_out)
        printf("=== %s: %s (trigger rule %s) ===\n", t->id, s,
               dag_trigger_rule_name(t->trigger_rule));
      fflush(stdout);
      continue;
    }
    if (ti_mark(x->c, r->run_id, t->id, TI_RUNNING, core, &ti_id, &e) !=
        ERR_OK) {
      fail(W, e.msg);
      goto out;
    }
    if (tasks_out) {
      printf("=== %s (%s) ===\n", t->id, t->type_name);
      fflush(stdout);
    }
    struct sched_attempt *a =
        sched_attempt_new(core, d, i, ti_id, r->run_id, 1, 1, lt, conf);
    if (!a) {
      fail(W, "out of memory");
      goto out;
    }
    a->run_hb = 1;
    sched_live_add(a);
    int64_t t0 = queue_now_ms();
    int64_t deadline =
        t->retry.timeout_s > 0 ? t0 + (int64_t)t->retry.timeout_s * 1000 : 0;
    struct err te = {0};
    enum err_code trc = sched_attempt_exec(a, NULL, deadline, &te);
    char state[16] = "";
    int lost = 0;
    struct err fe = {0};
    enum err_code frc =
        sched_attempt_finish(a, trc, &te, state, &lost, NULL, &fe);
    sched_live_remove(a);
    sched_attempt_unref(a);
    if (frc != ERR_OK) {
      fail(W, fe.msg);
      goto out;
    }
    st[i] = !strcmp(state, TI_SUCCESS)   ? T_SUCCESS
            : !strcmp(state, TI_SKIPPED) ? T_SKIPPED
                                         : T_FAILED;
    if (st[i] == T_FAILED && !r->failed_task[0]) {
      snprintf(r->failed_task, sizeof(r->failed_task), "%s", t->id);
      snprintf(r->error, sizeof(r->error), "%s",
               te.msg[0] ? te.msg : err_str(trc));
    }
    if (tasks_out) {
      printf("=== %s: %s (%.1fs)%s%s ===\n", t->id, state,
             (double)(queue_now_ms() - t0) / 1000.0, trc ? ": " : "",
             trc ? te.msg : "");
      fflush(stdout);
    }
  }
  int failed = 0;
  for (size_t i = 0; i < d->ntasks; i++) {
    int leaf = d->tasks[i].ndownstream == 0;
    if (leaf && (st[i] == T_FAILED || st[i] == T_UFAIL))
      failed = 1;
  }
  const char *rs = failed ? "failed" : "success";
  struct db_val u[3] = {DB_V_STR(rs), DB_V_INT(pr.run_row),
                        DB_V_STR(core->claim_id)};
  if (db_exec_params(x->c,
                     "UPDATE dag_run SET state = ?, end_date = "
                     "UTC_TIMESTAMP(6) WHERE id = ? AND claimed_by = ?",
                     u, 3, NULL, &e) != ERR_OK) {
    fail(W, e.msg);
    goto out;
  }
  r->failed = failed;
  r->secs = (double)(queue_now_ms() - run_t0) / 1000.0;
  if (mode == LOCAL_TEST)
    printf("run %s: %s\n", r->run_id, rs);
  code = CLI_OK;
out:
  atomic_store(&core->run_hb_id, 0);
  free(st);
  return code;
}

/* ---- dags test ---- */

static int dags_test(int argc, char **argv)
{
  const char *W = "dags test";
  const char *dag_id = NULL, *date = NULL, *v;
  for (int i = 2; i < argc; i++) {
    int r;
    if ((r = opt_val(argc, argv, &i, "--date", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--date needs YYYY-MM-DD", NULL);
      date = v;
    } else if (argv[i][0] == '-') {
      return usage_err("dags", "unknown option", argv[i]);
    } else if (!dag_id) {
      dag_id = argv[i];
    } else {
      return usage_err("dags", "unexpected argument", argv[i]);
    }
  }
  if (!dag_id)
    return usage_err("dags", "test needs a DAG_ID", NULL);
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 3);
  if (rc != CLI_OK) {
    ctx_close(&x);
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
    ctx_close(&x);
    return usage_err("dags", e.msg, NULL);
  }
  struct dag_set *set = load_dags(W, &x.cfg, 0);
  struct dag *d = set ? dag_set_find(set, dag_id) : NULL;
  if (!d) {
    char msg[600];
    snprintf(msg, sizeof(msg),
             "no DAG '%s' in %s (mlopsd dags validate shows broken files)",
             dag_id, x.cfg.sched_dags_dir);
    dag_set_destroy(set);
    ctx_close(&x);
    return fail(W, msg);
  }
  struct local l;
  struct lres r;
  int code = local_open(&l, W, &x, set, 1);
  if (code == CLI_OK) {
    code = local_run(&l, W, d, lt, LOCAL_TEST, NULL, &r);
    if (code == CLI_OK && r.failed)
      code = CLI_FAIL;
  }
  local_close(&l);
  dag_set_destroy(set);
  ctx_close(&x);
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
    if (cnt == cap) {
      size_t nc = cap ? cap * 2 : 64;
      time_t *nv = realloc(v, nc * sizeof(*nv));
      if (!nv) {
        free(v);
        return -1;
      }
      v = nv;
      cap = nc;
    }
    v[cnt++] = t;
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

/* Queue a backfill run of d at t (daemon mode).  *created 0: the date has
 * a run already, described in other. */
static enum err_code backfill_queue(struct db_conn *c,
                                    const struct cron_tz *tz,
                                    const struct dag *d, time_t t,
                                    const char *conf, char *run_id,
                                    size_t cap, int *created, char *other,
                                    size_t ocap, struct err *e)
{
  char when[20];
  sched_run_id(d->dag_id, "backfill", tz, t, run_id, cap);
  sched_fmt_utc(t, when);
  int64_t aff = 0;
  struct db_val p[4] = {DB_V_STR(run_id), DB_V_STR(d->dag_id),
                        DB_V_STR(when), conf ? DB_V_STR(conf) : DB_V_NULL};
  enum err_code rc = db_exec_params(
      c,
      "INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state, "
      "conf, queued_at, external_trigger) VALUES (?, ?, ?, 'backfill', "
      "'queued', ?, UTC_TIMESTAMP(6), 0) ON DUPLICATE KEY UPDATE id = id",
      p, 4, &aff, e);
  if (rc != ERR_OK)
    return rc;
  *created = aff == 1;
  if (*created)
    return ERR_OK;
  struct oldrun o;
  memset(&o, 0, sizeof(o));
  struct db_val q[2] = {DB_V_STR(d->dag_id), DB_V_STR(when)};
  if ((rc = db_query(c,
                     "SELECT id, state, run_id, claimed_by FROM dag_run "
                     "WHERE dag_id = ? AND logical_date = ?",
                     q, 2, oldrun_cb, &o, NULL, e)) != ERR_OK)
    return rc;
  snprintf(other, ocap, "%s (%s)", o.id ? o.run_id : "?",
           o.id ? o.state : "?");
  return ERR_OK;
}

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
  struct tistates t = {0};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(run_id)};
  if (db_query(c,
               "SELECT task_id, state, try_number FROM task_instance WHERE "
               "run_id = ? AND state = 'failed' ORDER BY id",
               p, 1, tistate_cb, &t, NULL, &e) != ERR_OK)
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
static int backfill_wait(struct ctx *x, const struct dag *d,
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
    return fail(W, "out of memory");
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
        return fail(W, e.msg);
      usleep(WAIT_POLL_MS * 1000);
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
      return fail(W, msg);
    }
    usleep(WAIT_POLL_MS * 1000);
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

static int dags_backfill(int argc, char **argv)
{
  const char *W = "dags backfill";
  const char *dag_id = NULL, *from_s = NULL, *to_s = NULL, *conf_text = NULL;
  const char *v;
  int wait = 0, local = 0, verbose = 0;
  long timeout_s = 0;
  for (int i = 2; i < argc; i++) {
    int r;
    if ((r = opt_val(argc, argv, &i, "--from", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--from needs YYYY-MM-DD", NULL);
      from_s = v;
    } else if ((r = opt_val(argc, argv, &i, "--to", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--to needs YYYY-MM-DD", NULL);
      to_s = v;
    } else if ((r = opt_val(argc, argv, &i, "--conf", &v)) != 0) {
      if (r < 0)
        return usage_err("dags", "--conf needs a JSON object", NULL);
      conf_text = v;
    } else if ((r = opt_val(argc, argv, &i, "--timeout", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, 86400 * 30, &timeout_s))
        return usage_err("dags", "--timeout needs seconds", v);
    } else if (!strcmp(argv[i], "--wait")) {
      wait = 1;
    } else if (!strcmp(argv[i], "--local")) {
      local = 1;
    } else if (!strcmp(argv[i], "--verbose") || !strcmp(argv[i], "-v")) {
      verbose = 1;
    } else if (argv[i][0] == '-') {
      return usage_err("dags", "unknown option", argv[i]);
    } else if (!dag_id) {
      dag_id = argv[i];
    } else {
      return usage_err("dags", "unexpected argument", argv[i]);
    }
  }
  if (!dag_id)
    return usage_err("dags", "backfill needs a DAG_ID", NULL);
  if (!from_s || !to_s)
    return usage_err("dags", "backfill needs --from DATE and --to DATE",
                     NULL);
  if (timeout_s && (!wait || local))
    return usage_err("dags", "--timeout goes with --wait (not --local)",
                     NULL);
  if (verbose && !local)
    return usage_err("dags", "--verbose goes with --local", NULL);
  cJSON *conf = NULL;
  char *conf_norm = NULL;
  if (conf_text) {
    conf = cJSON_Parse(conf_text);
    if (!conf || !cJSON_IsObject(conf)) {
      cJSON_Delete(conf);
      return usage_err("dags", "--conf must be a JSON object", conf_text);
    }
    conf_norm = cJSON_PrintUnformatted(conf);
    cJSON_Delete(conf);
    if (!conf_norm)
      return fail(W, "out of memory");
    if (strlen(conf_norm) > SCHED_CONF_MAX) {
      free(conf_norm);
      return usage_err("dags", "--conf is larger than 64 KiB", NULL);
    }
  }
  struct ctx x;
  int rc = ctx_open(&x, W, 1, local ? 3 : 1);
  if (rc != CLI_OK) {
    free(conf_norm);
    ctx_close(&x);
    return rc;
  }
  struct err e = {0};
  time_t t_from, t_to;
  if (sched_parse_date(x.tz, from_s, &t_from, &e) != ERR_OK ||
      sched_parse_date(x.tz, to_s, &t_to, &e) != ERR_OK) {
    free(conf_norm);
    ctx_close(&x);
    return usage_err("dags", e.msg, NULL);
  }
  /* A plain date as --to takes in the whole day. */
  if (strlen(to_s) == 10) {
    struct cron_civil c;
    int y, m, dd;
    cron_tz_civil(x.tz, t_to, &c);
    cron_civil_from_days(cron_days_from_civil(c.year, c.month, c.day) + 1,
                         &y, &m, &dd);
    t_to = cron_tz_resolve(x.tz, y, m, dd, 0, 0, 0) - 1;
  }
  if (t_to < t_from) {
    free(conf_norm);
    ctx_close(&x);
    return usage_err("dags", "--to is before --from", NULL);
  }
  struct dag_set *set = load_dags(W, &x.cfg, 0);
  struct dag *d = set ? dag_set_find(set, dag_id) : NULL;
  if (!d) {
    char msg[600];
    snprintf(msg, sizeof(msg),
             "no DAG '%s' in %s (mlopsd dags validate shows broken files)",
             dag_id, x.cfg.sched_dags_dir);
    free(conf_norm);
    dag_set_destroy(set);
    ctx_close(&x);
    return fail(W, msg);
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
    ctx_close(&x);
    return fail(W, msg);
  }
  char iso_a[CRON_ISO_LEN], iso_b[CRON_ISO_LEN];
  cron_fmt_iso(x.tz, t_from, iso_a);
  cron_fmt_iso(x.tz, t_to, iso_b);
  printf("backfill %s: %zu logical date(s) in [%s, %s] (%s%s), "
         "max_active_runs %d, %s\n",
         d->dag_id, n, iso_a, iso_b, d->schedule ? "schedule " : "",
         d->schedule ? d->schedule : "no schedule: one a day",
         d->max_active_runs,
         local ? "running in this process" : "queued for the daemons");
  fflush(stdout);

  int64_t t0 = queue_now_ms();
  int created = 0, existing = 0, succeeded = 0, failed = 0;
  int code = CLI_OK;
  if (local) {
    struct local l;
    code = local_open(&l, W, &x, set, verbose);
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
      struct lres r;
      int waited = 0;
      for (;;) {
        code = local_run(&l, W, d, dates[i],
                         verbose ? LOCAL_BACKFILL_VERBOSE : LOCAL_BACKFILL,
                         conf_norm, &r);
        if (code != CLI_OK || !r.busy || backfill_stop)
          break;
        if (!waited++) {
          char iso[CRON_ISO_LEN];
          cron_fmt_iso(x.tz, dates[i], iso);
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
        existing++;
        backfill_line(x.tz, dates[i], "exists", -1, r.other);
        continue;
      }
      created++;
      if (r.failed)
        failed++;
      else
        succeeded++;
      backfill_line(x.tz, dates[i], r.failed ? "failed" : "success", r.secs,
                    r.run_id);
      if (r.failed) {
        printf("    %s: %s\n", r.failed_task[0] ? r.failed_task : "run",
               r.failed_task[0] ? r.error : "a leaf task did not succeed");
        fflush(stdout);
      }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    local_close(&l);
  } else {
    struct bfrun *runs = calloc(n ? n : 1, sizeof(*runs));
    if (!runs)
      code = fail(W, "out of memory");
    for (size_t i = 0; code == CLI_OK && i < n; i++) {
      char other[SCHED_RUN_ID_MAX + 64];
      int made = 0;
      runs[i].lt = dates[i];
      if (backfill_queue(x.c, x.tz, d, dates[i], conf_norm, runs[i].run_id,
                         sizeof(runs[i].run_id), &made, other,
                         sizeof(other), &e) != ERR_OK) {
        code = fail(W, e.msg);
        break;
      }
      if (made) {
        created++;
        runs[i].wait = 1;
        if (!wait)
          backfill_line(x.tz, dates[i], "queued", -1, runs[i].run_id);
      } else {
        existing++;
        backfill_line(x.tz, dates[i], "exists", -1, other);
      }
    }
    int64_t paused = 0;
    struct db_val p[1] = {DB_V_STR(d->dag_id)};
    if (code == CLI_OK && created &&
        db_query_i64(x.c, "SELECT is_paused FROM dag WHERE dag_id = ?", p, 1,
                     &paused, &e) == ERR_OK &&
        paused)
      printf("note: DAG %s is paused; its runs start when it is unpaused\n",
             d->dag_id);
    fflush(stdout);
    if (code == CLI_OK && wait && created) {
      struct bfwait w = {.tz = x.tz, .runs = runs, .n = n,
                         .left = (size_t)created};
      code = backfill_wait(&x, d, &w, timeout_s);
      succeeded = w.succeeded;
      failed = w.failed;
      free(w.done);
    }
    free(runs);
  }
  double secs = (double)(queue_now_ms() - t0) / 1000.0;
  if (local || wait)
    printf("backfill %s: %zu date(s): %d run(s) succeeded, %d failed, %d "
           "already had a run (skipped)%s; %.1fs\n",
           d->dag_id, n, succeeded, failed, existing,
           created - succeeded - failed > 0 ? ", some not finished" : "",
           secs);
  else
    printf("backfill %s: %zu date(s): %d run(s) queued, %d already had a "
           "run (skipped)\n",
           d->dag_id, n, created, existing);
  if (code == CLI_OK && failed)
    code = CLI_FAIL;
  free(dates);
  free(conf_norm);
  dag_set_destroy(set);
  ctx_close(&x);
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
  return usage_err("dags", "unknown subcommand", sub);
}

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
  local_iso(l->tz, db_row_str(row, 5, NULL), ld, sizeof(ld));
  time_t s, en;
  if (sched_parse_utc(db_row_str(row, 6, NULL), &s) == 0 &&
      sched_parse_utc(db_row_str(row, 7, NULL), &en) == 0)
    snprintf(dur, sizeof(dur), "%lds", (long)(en - s));
  l->last_id = db_row_i64(row, 0);
  printf("%-7lld  %-9s  %-9s  %-25s  %-7s  %s  %s\n", (long long)l->last_id,
         nz(db_row_str(row, 4, NULL)), nz(db_row_str(row, 3, NULL)), ld, dur,
         nz(db_row_str(row, 2, NULL)), nz(db_row_str(row, 1, NULL)));
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
    if ((r = opt_val(argc, argv, &i, "--limit", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, LIST_MAX_ROWS, &limit))
        return usage_err("runs", "--limit needs a number 1..1000", v);
    } else if ((r = opt_val(argc, argv, &i, "--before", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, 0x7fffffffffffffffL, &before))
        return usage_err("runs", "--before needs a run ID (number)", v);
    } else if (argv[i][0] == '-') {
      return usage_err("runs", "unknown option", argv[i]);
    } else if (!dag_id) {
      dag_id = argv[i];
    } else {
      return usage_err("runs", "unexpected argument", argv[i]);
    }
  }
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    ctx_close(&x);
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
    ctx_close(&x);
    return fail(W, e.msg);
  }
  if (l.more)
    printf("(more: mlopsd runs list%s%s --before %lld)\n", dag_id ? " " : "",
           dag_id ? dag_id : "", (long long)l.last_id);
  ctx_close(&x);
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
  snprintf(h->run_id, sizeof(h->run_id), "%s", nz(db_row_str(row, 1, NULL)));
  local_iso(h->tz, db_row_str(row, 5, NULL), ld, sizeof(ld));
  local_iso(h->tz, db_row_str(row, 6, NULL), q, sizeof(q));
  local_iso(h->tz, db_row_str(row, 7, NULL), s, sizeof(s));
  local_iso(h->tz, db_row_str(row, 8, NULL), en, sizeof(en));
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
           nz(db_row_str(row, 2, NULL)), nz(db_row_str(row, 3, NULL)),
           nz(db_row_str(row, 4, NULL)), ld, q, s, en,
           nz(db_row_str(row, 9, NULL)));
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
  local_iso(t->tz, db_row_str(row, 4, NULL), s, sizeof(s));
  local_iso(t->tz, db_row_str(row, 5, NULL), en, sizeof(en));
  if (!db_row_is_null(row, 6))
    snprintf(dur, sizeof(dur), "%.3fs", db_row_f64(row, 6));
  char host[300] = "-";
  if (!db_row_is_null(row, 7))
    snprintf(host, sizeof(host), "%s:%lld", nz(db_row_str(row, 7, NULL)),
             (long long)db_row_i64(row, 8));
  printf("%-*s  %-15s  %3lld/%-3lld  %-25s  %-25s  %-9s  %s\n",
         (int)t->wid, nz(db_row_str(row, 0, NULL)),
         nz(db_row_str(row, 1, NULL)), (long long)db_row_i64(row, 2),
         (long long)db_row_i64(row, 3), s, en, dur, host);
  return 0;
}

static int maxlen_cb(void *user, const struct db_row *row)
{
  size_t *w = user;
  size_t n = strlen(nz(db_row_str(row, 0, NULL)));
  if (n > *w)
    *w = n;
  return 0;
}

static const char RUN_SHOW_SQL[] =
    "SELECT id, run_id, dag_id, run_type, state, logical_date, queued_at, "
    "start_date, end_date, conf FROM dag_run WHERE ";

/* Find a run by run_id (or numeric id); fills h.  CLI code. */
static int find_run(const char *W, struct ctx *x, const char *arg,
                    struct runhdr *h)
{
  struct err e = {0};
  char sql[400];
  struct db_val p[1] = {DB_V_STR(arg)};
  h->tz = x->tz;
  snprintf(sql, sizeof(sql), "%srun_id = ?", RUN_SHOW_SQL);
  if (db_query(x->c, sql, p, 1, runhdr_cb, h, NULL, &e) != ERR_OK)
    return fail(W, e.msg);
  long id;
  if (!h->found && parse_count(arg, 1, 0x7fffffffffffffffL, &id) == 0) {
    struct db_val q[1] = {DB_V_INT(id)};
    snprintf(sql, sizeof(sql), "%sid = ?", RUN_SHOW_SQL);
    if (db_query(x->c, sql, q, 1, runhdr_cb, h, NULL, &e) != ERR_OK)
      return fail(W, e.msg);
  }
  if (!h->found) {
    char msg[400];
    snprintf(msg, sizeof(msg), "no run '%s'", arg);
    return fail(W, msg);
  }
  return CLI_OK;
}

static int runs_show(int argc, char **argv)
{
  const char *W = "runs show";
  if (argc != 3 || argv[2][0] == '-')
    return usage_err("runs", "show needs one RUN_ID", NULL);
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  struct runhdr h;
  memset(&h, 0, sizeof(h));
  if ((rc = find_run(W, &x, argv[2], &h)) != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  fputs(h.text, stdout);
  struct tirows t = {.tz = x.tz, .wid = 7};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(h.run_id)};
  if (db_query(x.c, "SELECT task_id FROM task_instance WHERE run_id = ?", p,
               1, maxlen_cb, &t.wid, NULL, &e) != ERR_OK) {
    ctx_close(&x);
    return fail(W, e.msg);
  }
  printf("\n%-*s  %-15s  %7s  %-25s  %-25s  %-9s  %s\n", (int)t.wid, "TASK_ID",
         "STATE", "TRY/MAX", "START", "END", "DURATION", "HOST:PID");
  if (db_query(x.c,
               "SELECT task_id, state, try_number, max_tries, start_date, "
               "end_date, duration, hostname, pid FROM task_instance WHERE "
               "run_id = ? ORDER BY id",
               p, 1, tirow_cb, &t, NULL, &e) != ERR_OK) {
    ctx_close(&x);
    return fail(W, e.msg);
  }
  ctx_close(&x);
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
  return usage_err("runs", "unknown subcommand", argv[1]);
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
  printf("%s %-6s| %s\n", t, nz(db_row_str(row, 1, NULL)),
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
    if ((r = opt_val(argc, argv, &i, "--try", &v)) != 0) {
      if (r < 0 || parse_count(v, 1, 1000000, &try_n))
        return usage_err("logs", "--try needs an attempt number", v);
    } else if (argv[i][0] == '-') {
      return usage_err("logs", "unknown option", argv[i]);
    } else if (!run) {
      run = argv[i];
    } else if (!task) {
      task = argv[i];
    } else {
      return usage_err("logs", "unexpected argument", argv[i]);
    }
  }
  if (!run) {
    logs_usage(stderr);
    return CLI_USAGE;
  }
  struct ctx x;
  int rc = ctx_open(&x, W, 1, 1);
  if (rc != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  struct runhdr h;
  memset(&h, 0, sizeof(h));
  if ((rc = find_run(W, &x, run, &h)) != CLI_OK) {
    ctx_close(&x);
    return rc;
  }
  struct tistates tis = {0};
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(h.run_id)};
  if (db_query(x.c,
               "SELECT task_id, state, try_number FROM task_instance WHERE "
               "run_id = ? ORDER BY id",
               p, 1, tistate_cb, &tis, NULL, &e) != ERR_OK) {
    ctx_close(&x);
    return fail(W, e.msg);
  }
  int shown = 0;
  for (size_t i = 0; i < tis.n; i++) {
    const struct tistate *t = &tis.v[i];
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
        ctx_close(&x);
        return fail(W, e.msg);
      }
    }
  }
  free(tis.v);
  ctx_close(&x);
  if (task && !shown) {
    char msg[600];
    snprintf(msg, sizeof(msg), "run %s has no task '%s'", h.run_id, task);
    return fail(W, msg);
  }
  return CLI_OK;
}
