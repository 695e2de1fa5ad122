/* test_sched.c - the DAG scheduler against a real MariaDB and real
 * `mlopsd serve` processes ($MLOPSD_BIN), driven like a user would: DAG
 * files in a directory, runs triggered (through sched_trigger and the
 * CLI), results read back from dag_run / task_instance / task_log and
 * from the side effects the shell tasks leave in files.
 *
 * Phases (one database, it_sched; the course DAG gets it_sched_ct):
 *   1. one daemon (4 workers): fan-out/fan-in, every trigger rule, retry
 *      then success, retry exhaustion, timeout kill, max_active_runs,
 *      trigger_dag, batched logs, callbacks, hot reload (good and broken
 *      edits), pause, catch-up true/false, the CLI (list, trigger --wait,
 *      runs, logs, dags test next to a running daemon), graceful stop;
 *   2. kill -9 of a daemon mid-task, restart: the orphaned attempt is
 *      marked up_for_retry, retried and the run completes;
 *   3. two daemons on one database, 50 runs of a 5-task DAG: every task
 *      instance executed exactly once (counted in a side-effect file);
 *   4. `mlopsd dags test credit_score_classification_ct --date 2025-09-01`
 *      on the seeded course data: 2,500 rows, as the hand-run query.
 * Waits have generous limits that only guard against a hang; nothing
 * asserts on how long something took.  On failure (or with SCHED_IT_KEEP
 * set) the temp dir with the daemons' logs is kept.
 *
 * check: tsan (the daemons run the tsan build under `make tsan`)
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/cron.h"
#include "mlopsd/db.h"
#include "mlopsd/sched.h"

#define DBNAME "it_sched"
#define DBNAME_CT "it_sched_ct"

static char g_src[1024], g_bin[1024], g_tmp[512], g_work[600], g_dags[600];
static char g_cfg_a[600], g_cfg_b[600], g_cfg_c[600], g_cfg_d[600];
static struct db_pool *g_db;
static struct cron_tz *g_tz;
static pid_t g_pid_a, g_pid_b, g_pid_c;
static int g_hook_port;

/* ---- small helpers ------------------------------------------------------ */

static int write_text(const char *path, const char *text)
{
  char tmp[1024];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f)
    return -1;
  fputs(text, f);
  fclose(f);
  return rename(tmp, path);
}

/* Whole file, malloc'd ("" if missing). */
static char *read_text(const char *path)
{
  char *s = fx_read_file(path, NULL);
  return s ? s : strdup("");
}

/* Run the CLI with args (a shell fragment), capture stdout+stderr into
 * *out (malloc'd, may be NULL); returns the exit code. */
static int cli(char **out, const char *cfg, const char *fmt, ...)
{
  char args[2048], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof(args), fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof(cmd), "cd %s && %s -c %s %s 2>&1", g_src, g_bin, cfg,
           args);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  char *buf = NULL;
  size_t n = 0, cap = 0;
  for (;;) {
    if (n + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      buf = realloc(buf, cap);
    }
    size_t k = fread(buf + n, 1, cap - n - 1, p);
    n += k;
    if (k == 0)
      break;
  }
  buf[n] = '\0';
  int st = pclose(p);
  if (out)
    *out = buf;
  else
    free(buf);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static pid_t daemon_spawn(const char *cfg, const char *log)
{
  static int nspawn;
  char spool[700];
  snprintf(spool, sizeof(spool), "%s/spool-%d", g_tmp, ++nspawn);
  pid_t pid = fork();
  if (pid == 0) {
    /* Two daemons may share one config: each its own spool. */
    setenv("MLOPSD_SERVER_SPOOL_DIR", spool, 1);
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    dup2(fd, 1);
    if (chdir(g_src) != 0)
      _exit(126);
    execl(g_bin, g_bin, "-c", cfg, "serve", (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* ---- database helpers ---------------------------------------------------- */

static int64_t q_i64(const char *sql, const struct db_val *p, int n)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t v = -1;
  if (db_acquire(g_db, 10000, &c, &e) != ERR_OK) {
    fprintf(stderr, "q_i64: %s\n", e.msg);
    return -1;
  }
  if (db_query_i64(c, sql, p, n, &v, &e) != ERR_OK && e.code != ERR_NOTFOUND)
    fprintf(stderr, "q_i64: %s\n", e.msg);
  db_release(g_db, c);
  return v;
}

struct rows {
  char **v; /* row-major, ncols per row, "" for NULL */
  int n, ncols;
};

static int rows_cb(void *user, const struct db_row *row)
{
  struct rows *r = user;
  int nc = db_row_ncols(row);
  r->ncols = nc;
  r->v = realloc(r->v, (size_t)(r->n + 1) * (size_t)nc * sizeof(char *));
  for (int i = 0; i < nc; i++) {
    const char *s = db_row_str(row, i, NULL);
    r->v[r->n * nc + i] = strdup(s ? s : "");
  }
  r->n++;
  return 0;
}

static void rows_free(struct rows *r)
{
  for (int i = 0; i < r->n * r->ncols; i++)
    free(r->v[i]);
  free(r->v);
  memset(r, 0, sizeof(*r));
}

static const char *cell(const struct rows *r, int row, int col)
{
  return row < r->n && col < r->ncols ? r->v[row * r->ncols + col] : "";
}

static int q_rows(struct rows *r, const char *sql, const struct db_val *p,
                  int n)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  memset(r, 0, sizeof(*r));
  if (db_acquire(g_db, 10000, &c, &e) != ERR_OK) {
    fprintf(stderr, "q_rows: %s\n", e.msg);
    return -1;
  }
  int rc = db_query(c, sql, p, n, rows_cb, r, NULL, &e);
  if (rc != ERR_OK)
    fprintf(stderr, "q_rows: %s\n", e.msg);
  db_release(g_db, c);
  return rc == ERR_OK ? 0 : -1;
}

/* The run's state ("" if none). */
static void run_state(const char *run_id, char *out, size_t cap)
{
  struct rows r;
  struct db_val p[1] = {DB_V_STR(run_id)};
  out[0] = '\0';
  if (q_rows(&r, "SELECT state FROM dag_run WHERE run_id = ?", p, 1) == 0 &&
      r.n)
    snprintf(out, cap, "%s", cell(&r, 0, 0));
  rows_free(&r);
}

/* Wait until the run ended; returns 1 success, 0 failed, -1 timeout. */
static int wait_run(const char *run_id, double limit_s)
{
  double t0 = fx_now_s();
  char st[32];
  while (fx_now_s() - t0 < limit_s) {
    run_state(run_id, st, sizeof(st));
    if (!strcmp(st, "success"))
      return 1;
    if (!strcmp(st, "failed"))
      return 0;
    fx_msleep(100);
  }
  fprintf(stderr, "  run %s still '%s' after %.0fs\n", run_id, st, limit_s);
  return -1;
}

static int trigger(const char *dag_id, const char *date, const char *conf,
                   char *run_id)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  cJSON *j = conf ? cJSON_Parse(conf) : NULL;
  int rc = -1;
  if (db_acquire(g_db, 10000, &c, &e) == ERR_OK) {
    rc = sched_trigger(c, g_tz, dag_id, date, j, run_id,
                       SCHED_RUN_ID_MAX + 1, &e) == ERR_OK
             ? 0
             : -1;
    db_release(g_db, c);
  }
  if (rc)
    fprintf(stderr, "trigger %s %s: %s\n", dag_id, date, e.msg);
  cJSON_Delete(j);
  return rc;
}

/* State of a task instance ("" if none) and its try number. */
static void ti(const char *run_id, const char *task, char *state, size_t cap,
               int *try_number)
{
  struct rows r;
  struct db_val p[2] = {DB_V_STR(run_id), DB_V_STR(task)};
  state[0] = '\0';
  if (try_number)
    *try_number = -1;
  if (q_rows(&r,
             "SELECT state, try_number FROM task_instance WHERE run_id = ? "
             "AND task_id = ?",
             p, 2) == 0 &&
      r.n) {
    snprintf(state, cap, "%s", cell(&r, 0, 0));
    if (try_number)
      *try_number = atoi(cell(&r, 0, 1));
  }
  rows_free(&r);
}

/* All log lines of an attempt, joined by '\n' (malloc'd). */
static char *task_log(const char *run_id, const char *task, int try_number)
{
  struct rows r;
  struct db_val p[3] = {DB_V_STR(run_id), DB_V_STR(task),
                        DB_V_INT(try_number)};
  size_t cap = 1, n = 0;
  char *s = NULL;
  if (q_rows(&r,
             "SELECT CONCAT(stream, ': ', line) FROM task_log WHERE run_id = "
             "? AND task_id = ? AND try_number = ? ORDER BY id",
             p, 3) != 0)
    return strdup("");
  for (int i = 0; i < r.n; i++)
    cap += strlen(cell(&r, i, 0)) + 1;
  s = malloc(cap);
  s[0] = '\0';
  for (int i = 0; i < r.n; i++) {
    size_t l = strlen(cell(&r, i, 0));
    memcpy(s + n, cell(&r, i, 0), l);
    n += l;
    s[n++] = '\n';
    s[n] = '\0';
  }
  rows_free(&r);
  return s;
}

/* ---- a tiny HTTP server for callbacks ------------------------------------ */

static pthread_mutex_t g_hook_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_hook_seen[16384];
static int g_hook_fd = -1;

static void *hook_main(void *arg)
{
  (void)arg;
  for (;;) {
    int c = accept(g_hook_fd, NULL, NULL);
    if (c < 0)
      return NULL;
    char buf[8192];
    size_t n = 0;
    long want = -1;
    char *body = NULL;
    while (n < sizeof(buf) - 1) {
      ssize_t k = read(c, buf + n, sizeof(buf) - 1 - n);
      if (k <= 0)
        break;
      n += (size_t)k;
      buf[n] = '\0';
      char *h = strstr(buf, "\r\n\r\n");
      if (h && want < 0) {
        char *cl = strcasestr(buf, "Content-Length:");
        want = cl ? atol(cl + 15) : 0;
        body = h + 4;
      }
      if (body && (long)(n - (size_t)(body - buf)) >= want)
        break;
    }
    const char *ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: "
                     "close\r\n\r\n";
    if (write(c, ok, strlen(ok)) < 0)
      perror("hook write");
    close(c);
    char line[4096];
    char path[256] = "";
    sscanf(buf, "%*s %255s", path);
    snprintf(line, sizeof(line), "%s %s\n", path, body ? body : "");
    pthread_mutex_lock(&g_hook_mu);
    strncat(g_hook_seen, line, sizeof(g_hook_seen) - strlen(g_hook_seen) - 1);
    pthread_mutex_unlock(&g_hook_mu);
  }
}

static int hook_start(void)
{
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof(a);
  g_hook_fd = socket(AF_INET, SOCK_STREAM, 0);
  if (g_hook_fd < 0 || bind(g_hook_fd, (struct sockaddr *)&a, sizeof(a)) ||
      listen(g_hook_fd, 16) ||
      getsockname(g_hook_fd, (struct sockaddr *)&a, &l))
    return -1;
  g_hook_port = ntohs(a.sin_port);
  pthread_t t;
  if (pthread_create(&t, NULL, hook_main, NULL))
    return -1;
  pthread_detach(t);
  return 0;
}

static int hook_has(const char *needle)
{
  pthread_mutex_lock(&g_hook_mu);
  int has = strstr(g_hook_seen, needle) != NULL;
  pthread_mutex_unlock(&g_hook_mu);
  return has;
}

/* ---- set-up ----------------------------------------------------------------- */

static int write_cfg(const char *path, const char *db, int workers,
                     int lease_s)
{
  char cfg[4096];
  snprintf(cfg, sizeof(cfg),
           "server:\n"
           "  listen: \"127.0.0.1:0\"\n"
           "database:\n"
           "  name: %s\n"
           "  connect_timeout: 2\n"
           "  pool: 6\n"
           "models:\n"
           "  specs_dir: %s/config/models\n"
           "  registry_dir: %s/registry\n"
           "scheduler:\n"
           "  dags_dir: %s\n"
           "  tick_ms: 200\n"
           "  lease_s: %d\n"
           "  workers: %d\n"
           "logging:\n"
           "  level: info\n",
           db, g_src, g_tmp, g_dags, lease_s, workers);
  return write_text(path, cfg);
}

/* DROP DATABASE NAME (if it exists); 0 or -1 (printed). */
static int db_fresh(const char *name)
{
  char sql[200];
  struct db_pool *p = fx_pool(NULL, 1);
  snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", name);
  int rc = p ? fx_exec(p, sql, 0) : -1;
  db_pool_destroy(p);
  return rc;
}

static int copy_dag(const char *name)
{
  char src[1200], dst[1200];
  snprintf(src, sizeof(src), "%s/tests/integration/dags/%s", g_src, name);
  snprintf(dst, sizeof(dst), "%s/%s", g_dags, name);
  char *t = read_text(src);
  int rc = t[0] ? write_text(dst, t) : -1;
  free(t);
  return rc;
}

/* Local (Asia/Seoul, UTC+9, no DST) date of now + days, and the UTC
 * DATETIME of its midnight. */
static void kst_day(int days, char date[11], char utc_midnight[20])
{
  time_t t = time(NULL) + 9 * 3600 + (time_t)days * 86400;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(date, 11, "%Y-%m-%d", &tm);
  time_t mid = t - (t % 86400) - 9 * 3600;
  gmtime_r(&mid, &tm);
  strftime(utc_midnight, 20, "%Y-%m-%d %H:%M:%S", &tm);
}

static char g_catchup_day0[11]; /* today (KST) when the DAGs were written */

static int write_dynamic_dags(void)
{
  char buf[4096], start[11], mid[20];
  kst_day(0, g_catchup_day0, mid);
  kst_day(-3, start, mid);
  for (int k = 0; k < 2; k++) {
    snprintf(buf, sizeof(buf),
             "dag_id: it_catchup_%s\n"
             "schedule: \"@daily\"\n"
             "start_date: %s\n"
             "catchup: %s\n"
             "tasks:\n"
             "  - {id: t, type: shell, command: 'echo {{ ds }} >> "
             "\"$SCHED_IT_WORK/catchup_%s.txt\"'}\n",
             k ? "true" : "false", start, k ? "true" : "false",
             k ? "true" : "false");
    char path[700];
    snprintf(path, sizeof(path), "%s/it_catchup_%s.yaml", g_dags,
             k ? "true" : "false");
    if (write_text(path, buf))
      return -1;
  }
  snprintf(buf, sizeof(buf),
           "dag_id: it_cb_ok\n"
           "schedule: null\n"
           "on_success: http://127.0.0.1:%d/ok\n"
           "on_failure: http://127.0.0.1:%d/ok-failed\n"
           "tasks:\n"
           "  - {id: t, type: shell, command: \"true\"}\n",
           g_hook_port, g_hook_port);
  char path[700];
  snprintf(path, sizeof(path), "%s/it_cb_ok.yaml", g_dags);
  if (write_text(path, buf))
    return -1;
  snprintf(buf, sizeof(buf),
           "dag_id: it_cb_fail\n"
           "schedule: null\n"
           "on_failure:\n"
           "  url: \"http://127.0.0.1:%d/fail?dag={{ dag_id }}\"\n"
           "  headers: {X-Run: \"{{ run_id }}\"}\n"
           "  body: '{\"dag\": \"{{ dag_id }}\", \"ds\": \"{{ ds }}\"}'\n"
           "tasks:\n"
           "  - {id: t, type: shell, command: \"exit 2\"}\n",
           g_hook_port);
  snprintf(path, sizeof(path), "%s/it_cb_fail.yaml", g_dags);
  if (write_text(path, buf))
    return -1;
  snprintf(path, sizeof(path), "%s/it_hr.yaml", g_dags);
  return write_text(path, "dag_id: it_hr\nschedule: null\ntasks:\n"
                          "  - {id: a, type: shell, command: \"true\"}\n");
}

static int setup(void)
{
  if (fx_env("test_sched", g_src, sizeof(g_src), g_bin, sizeof(g_bin)))
    return -1;
  if (fx_tmpdir(g_tmp, sizeof(g_tmp), "it-sched"))
    return -1;
  snprintf(g_work, sizeof(g_work), "%s/work", g_tmp);
  snprintf(g_dags, sizeof(g_dags), "%s/dags", g_tmp);
  mkdir(g_work, 0755);
  mkdir(g_dags, 0755);
  setenv("SCHED_IT_WORK", g_work, 1);
  setenv("MLOPSD_DATABASE_NAME", DBNAME, 1);
  setenv("MLOPSD_SQL_DIR", "sql/migrations", 1);
  unsetenv("MLOPSD_SERVER_LISTEN");
  unsetenv("MLOPSD_SCHEDULER_DAGS_DIR");
  snprintf(g_cfg_a, sizeof(g_cfg_a), "%s/a.yaml", g_tmp);
  snprintf(g_cfg_b, sizeof(g_cfg_b), "%s/b.yaml", g_tmp);
  snprintf(g_cfg_c, sizeof(g_cfg_c), "%s/c.yaml", g_tmp);
  snprintf(g_cfg_d, sizeof(g_cfg_d), "%s/d.yaml", g_tmp);
  if (hook_start())
    return -1;
  static const char *const files[] = {
      "it_fan.yaml",     "it_rules.yaml",   "it_retry_ok.yaml",
      "it_retry_exhaust.yaml", "it_timeout.yaml", "it_maxactive.yaml",
      "it_trigger.yaml", "it_target.yaml",  "it_chatty.yaml",
      "it_paused.yaml",  "it_crash.yaml",   "it_multi.yaml",
      "it_testkill.yaml"};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    if (copy_dag(files[i]))
      return -1;
  if (write_dynamic_dags() || write_cfg(g_cfg_a, DBNAME, 4, 10) ||
      write_cfg(g_cfg_b, DBNAME, 2, 2) || write_cfg(g_cfg_c, DBNAME, 2, 10) ||
      write_cfg(g_cfg_d, DBNAME_CT, 2, 10))
    return -1;
  if (db_fresh(DBNAME) || db_fresh(DBNAME_CT))
    return -1;
  char *out = NULL;
  if (cli(&out, g_cfg_a, "db init") != 0) {
    fprintf(stderr, "db init failed: %s\n", out ? out : "");
    free(out);
    return -1;
  }
  free(out);
  struct err e = {0};
  if (!(g_db = fx_pool(DBNAME, 4)))
    return -1;
  if (cron_tz_load(&g_tz, "Asia/Seoul", &e)) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return -1;
  }
  return 0;
}

/* `mlopsd -c A ARGS` exits WANT and its output has HAS1 and HAS2 but not
 * LACKS (each NULL: not looked at); a failure names the command. */
static void cli_says(const char *args, int want, const char *has1,
                     const char *has2, const char *lacks)
{
  char *out = NULL;
  int rc = cli(&out, g_cfg_a, "%s", args);
  if (rc != want)
    check_fail_at(__FILE__, __LINE__, "mlopsd %s: exit %d, want %d", args,
                  rc, want);
  if ((has1 || has2 || lacks) &&
      !(out && (!has1 || strstr(out, has1)) && (!has2 || strstr(out, has2)) &&
        (!lacks || !strstr(out, lacks))))
    check_fail_at(__FILE__, __LINE__, "mlopsd %s: want \"%s\", \"%s\" and "
                  "not \"%s\" in %.500s", args, has1 ? has1 : "",
                  has2 ? has2 : "", lacks ? lacks : "", out ? out : "");
  free(out);
}

/* ---- phase 1: before the daemon ------------------------------------------ */

TEST(cli_offline)
{
  char *out = NULL;
  char path[1200];
  snprintf(path, sizeof(path), "%s/tests/integration/dags/it_fan.yaml", g_src);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags validate %s", path), 0);
  CHECK(out && strstr(out, "ok  ") && strstr(out, "it_fan (5 tasks)"));
  free(out);
  snprintf(path, sizeof(path),
           "%s/tests/integration/dags/broken.yaml.bad", g_src);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags validate %s", path), 1);
  CHECK(out && strstr(out, "broken.yaml.bad:2:11: schedule"));
  free(out);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags validate"), 0); /* the whole dir */
  CHECK(out && strstr(out, "it_rules (18 tasks)"));
  free(out);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "dags"), 2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "dags frobnicate"), 2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "dags trigger"), 2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "dags trigger it_fan --conf '[1]'"), 2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "dags trigger it_fan --date 2025-02-30"),
               2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "runs list --limit 0"), 2);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "logs"), 2);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags --help"), 0);
  CHECK(out && strstr(out, "usage: mlopsd"));
  free(out);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "runs --help"), 0);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "logs --help"), 0);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags trigger no_such_dag"), 1);
  CHECK(out && strstr(out, "no DAG 'no_such_dag'"));
  free(out);
  CHECK_EQ_INT(cli(NULL, g_cfg_a, "runs show no_such_run"), 1);
  /* Pause before any daemon exists; a manual run of it waits. */
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags pause it_paused"), 0);
  free(out);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags trigger it_paused --date 2025-05-05"),
               0);
  CHECK(out && strstr(out, "queued run it_paused__manual__2025-05-05T00:00:00"
                           "+09:00") &&
        strstr(out, "is paused"));
  free(out);
}

/* ---- phase 1: one daemon ----------------------------------------------------- */

static char r_fan[256], r_rules[256], r_retry_ok[256], r_retry_ex[256],
    r_timeout[256], r_max[6][256], r_trig[256], r_chatty[256], r_cb_ok[256],
    r_cb_fail[256];

TEST(phase1_runs)
{
  char log[700];
  snprintf(log, sizeof(log), "%s/daemon-a.log", g_tmp);
  g_pid_a = daemon_spawn(g_cfg_a, log);
  REQUIRE(g_pid_a > 0);
  REQUIRE(trigger("it_fan", "2025-03-01", NULL, r_fan) == 0);
  REQUIRE(trigger("it_rules", "2025-03-01", NULL, r_rules) == 0);
  REQUIRE(trigger("it_retry_ok", "2025-03-01", NULL, r_retry_ok) == 0);
  REQUIRE(trigger("it_retry_exhaust", "2025-03-01", NULL, r_retry_ex) == 0);
  REQUIRE(trigger("it_timeout", "2025-03-01", NULL, r_timeout) == 0);
  for (int i = 0; i < 6; i++) {
    char d[32];
    snprintf(d, sizeof(d), "2025-03-%02d", i + 1);
    REQUIRE(trigger("it_maxactive", d, NULL, r_max[i]) == 0);
  }
  REQUIRE(trigger("it_trigger", "2025-03-01", NULL, r_trig) == 0);
  REQUIRE(trigger("it_chatty", "2025-03-01", NULL, r_chatty) == 0);
  REQUIRE(trigger("it_cb_ok", "2025-03-01", "{\"x\": 1}", r_cb_ok) == 0);
  REQUIRE(trigger("it_cb_fail", "2025-03-01", NULL, r_cb_fail) == 0);
  char dup[256];
  fprintf(stderr, "  (a duplicate trigger is refused:)\n");
  CHECK(trigger("it_fan", "2025-03-01", NULL, dup) != 0);
  CHECK_EQ_INT(wait_run(r_fan, 60), 1);
  CHECK_EQ_INT(wait_run(r_rules, 60), 0);
  CHECK_EQ_INT(wait_run(r_retry_ok, 60), 1);
  CHECK_EQ_INT(wait_run(r_retry_ex, 60), 0);
  CHECK_EQ_INT(wait_run(r_timeout, 60), 0);
  for (int i = 0; i < 6; i++)
    CHECK_EQ_INT(wait_run(r_max[i], 60), 1);
  CHECK_EQ_INT(wait_run(r_trig, 60), 1);
  CHECK_EQ_INT(wait_run(r_chatty, 60), 1);
  CHECK_EQ_INT(wait_run(r_cb_ok, 60), 1);
  CHECK_EQ_INT(wait_run(r_cb_fail, 60), 0);
}

TEST(fan_out_fan_in)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/fan.txt", g_work);
  char *t = read_text(path);
  CHECK_EQ_INT(fx_count_lines(t), 5);
  CHECK(!strncmp(t, "a\n", 2));
  size_t n = strlen(t);
  CHECK(n >= 2 && !strcmp(t + n - 2, "e\n"));
  CHECK(strstr(t, "b\n") && strstr(t, "c\n") && strstr(t, "d\n"));
  free(t);
  struct rows r;
  struct db_val p[1] = {DB_V_STR(r_fan)};
  REQUIRE(q_rows(&r,
                 "SELECT task_id, state, start_date, end_date FROM "
                 "task_instance WHERE run_id = ? ORDER BY task_id",
                 p, 1) == 0);
  REQUIRE(r.n == 5);
  for (int i = 0; i < 5; i++)
    CHECK_EQ_STR(cell(&r, i, 1), "success");
  /* b, c, d start after a ended; e after the last of b, c, d ended
   * (server times, same clock, microseconds). */
  for (int i = 1; i <= 3; i++)
    CHECK(strcmp(cell(&r, i, 2), cell(&r, 0, 3)) >= 0);
  for (int i = 1; i <= 3; i++)
    CHECK(strcmp(cell(&r, 4, 2), cell(&r, i, 3)) >= 0);
  rows_free(&r);
}

TEST(trigger_rules)
{
  static const struct {
    const char *task, *state;
  } want[] = {
      {"ok1", "success"},
      {"bad1", "failed"},
      {"r_all_success", "upstream_failed"},
      {"r_all_done", "success"},
      {"r_one_success", "success"},
      {"r_one_success_none", "upstream_failed"},
      {"r_all_failed", "success"},
      {"r_all_failed_mixed", "skipped"},
      {"r_none_failed", "success"},
      {"r_none_failed_bad", "upstream_failed"},
      {"r_one_failed", "success"},
      {"r_one_failed_none", "skipped"},
      {"r_none_skipped", "skipped"},
      {"r_none_skipped_ok", "success"},
      {"r_after_skip", "skipped"},
      {"r_none_failed_skip", "success"},
      {"r_after_ufail", "success"},
      {"r_cascade", "upstream_failed"},
  };
  char path[700];
  snprintf(path, sizeof(path), "%s/rules.txt", g_work);
  char *ran = read_text(path);
  int nran = 0;
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char st[32], line[64];
    int tn;
    ti(r_rules, want[i].task, st, sizeof(st), &tn);
    if (strcmp(st, want[i].state))
      fprintf(stderr, "  task %s: %s, want %s\n", want[i].task, st,
              want[i].state);
    CHECK_EQ_STR(st, want[i].state);
    /* Side effects: a task ran (once) iff it ended success or failed. */
    int should_run = !strcmp(want[i].state, "success") ||
                     !strcmp(want[i].state, "failed");
    snprintf(line, sizeof(line), "\n%s\n", want[i].task);
    char *hay = malloc(strlen(ran) + 2);
    hay[0] = '\n';
    strcpy(hay + 1, ran);
    char *at = strstr(hay, line);
    CHECK_EQ_INT(at != NULL, should_run);
    if (at)
      CHECK(strstr(at + 1, line) == NULL); /* once */
    free(hay);
    nran += should_run;
    CHECK_EQ_INT(tn, should_run ? 1 : 0);
  }
  CHECK_EQ_INT(fx_count_lines(ran), nran);
  free(ran);
}

/* Task TASK of RUN ended in STATE after TRIES tries, and its command
 * appended one line a try to the work file FILE. */
static void check_tries(const char *run, const char *task, const char *state,
                        int tries, const char *file)
{
  char st[32], path[700];
  int tn;
  ti(run, task, st, sizeof(st), &tn);
  if (strcmp(st, state) != 0)
    check_fail_at(__FILE__, __LINE__, "%s/%s: state %s, want %s", run, task,
                  st, state);
  if (tn != tries)
    check_fail_at(__FILE__, __LINE__, "%s/%s: %d tries, want %d", run, task,
                  tn, tries);
  snprintf(path, sizeof(path), "%s/%s", g_work, file);
  char *t = read_text(path);
  if (fx_count_lines(t) != tries)
    check_fail_at(__FILE__, __LINE__, "%s/%s: %d lines in %s, want %d", run,
                  task, fx_count_lines(t), path, tries);
  free(t);
}

TEST(retry_then_success)
{
  check_tries(r_retry_ok, "flaky", "success", 2, "retry_ok.txt");
  char *l1 = task_log(r_retry_ok, "flaky", 1);
  char *l2 = task_log(r_retry_ok, "flaky", 2);
  CHECK(strstr(l1, "stderr: first") && strstr(l1, "up for retry in 1s"));
  CHECK(strstr(l2, "stdout: second") && strstr(l2, "attempt 2: success"));
  CHECK(!strstr(l1, "stdout: second") && !strstr(l2, "stderr: first"));
  free(l1);
  free(l2);
}

TEST(retry_exhaustion)
{
  check_tries(r_retry_ex, "always_bad", "failed", 2, "retry_exhaust.txt");
  char *l2 = task_log(r_retry_ex, "always_bad", 2);
  CHECK(strstr(l2, "attempt 2 failed: command exited with status 3"));
  free(l2);
}

TEST(timeout_kill)
{
  char st[32], path[700];
  int tn;
  ti(r_timeout, "sleepy", st, sizeof(st), &tn);
  CHECK_EQ_STR(st, "failed");
  CHECK_EQ_INT(tn, 1);
  char *l = task_log(r_timeout, "sleepy", 1);
  CHECK(strstr(l, "timeout of 1s"));
  free(l);
  snprintf(path, sizeof(path), "%s/timeout.pid", g_work);
  char *t = read_text(path);
  long pid = atol(t);
  free(t);
  REQUIRE(pid > 0);
  errno = 0;
  CHECK(kill((pid_t)pid, 0) == -1 && errno == ESRCH); /* process gone */
  struct rows r;
  struct db_val p[1] = {DB_V_STR(r_timeout)};
  REQUIRE(q_rows(&r,
                 "SELECT duration FROM task_instance WHERE run_id = ?", p,
                 1) == 0);
  CHECK(r.n == 1 && atof(cell(&r, 0, 0)) < 60); /* not the 100 s sleep */
  rows_free(&r);
}

TEST(max_active_runs)
{
  struct rows r;
  REQUIRE(q_rows(&r,
                 "SELECT start_date, end_date, id FROM dag_run WHERE dag_id "
                 "= 'it_maxactive' ORDER BY logical_date",
                 NULL, 0) == 0);
  REQUIRE(r.n == 6);
  int worst = 0;
  for (int i = 0; i < r.n; i++) {
    int k = 0;
    for (int j = 0; j < r.n; j++)
      if (strcmp(cell(&r, j, 0), cell(&r, i, 0)) <= 0 &&
          strcmp(cell(&r, i, 0), cell(&r, j, 1)) < 0)
        k++;
    if (k > worst)
      worst = k;
  }
  CHECK(worst >= 1 && worst <= 2);
  /* Oldest logical date first. */
  for (int i = 1; i < r.n; i++)
    CHECK(strcmp(cell(&r, i - 1, 0), cell(&r, i, 0)) <= 0);
  rows_free(&r);
}

TEST(trigger_dag_task)
{
  char rid[256];
  struct rows r;
  REQUIRE(q_rows(&r,
                 "SELECT run_id, conf, run_type FROM dag_run WHERE dag_id = "
                 "'it_target'",
                 NULL, 0) == 0);
  REQUIRE(r.n == 1);
  snprintf(rid, sizeof(rid), "%s", cell(&r, 0, 0));
  CHECK(strstr(cell(&r, 0, 0), "2025-03-01T00:00:00+09:00") != NULL);
  CHECK(strstr(cell(&r, 0, 1), "\"who\"") &&
        strstr(cell(&r, 0, 1), "it_trigger"));
  CHECK_EQ_STR(cell(&r, 0, 2), "manual");
  rows_free(&r);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  char path[700];
  snprintf(path, sizeof(path), "%s/target.txt", g_work);
  char *t = read_text(path);
  CHECK_EQ_STR(t, "2025-03-01 it_trigger\n");
  free(t);
}

TEST(task_log_batched_in_order)
{
  struct rows r;
  struct db_val p[1] = {DB_V_STR(r_chatty)};
  REQUIRE(q_rows(&r,
                 "SELECT line, ts FROM task_log WHERE run_id = ? AND stream "
                 "= 'stdout' ORDER BY id",
                 p, 1) == 0);
  CHECK_EQ_INT(r.n, 3000);
  int bad = 0;
  for (int i = 0; i < r.n; i++) {
    char want[32];
    snprintf(want, sizeof(want), "line %d", i);
    if (strcmp(cell(&r, i, 0), want))
      bad++;
    if (i && strcmp(cell(&r, i - 1, 1), cell(&r, i, 1)) > 0)
      bad++;
  }
  CHECK_EQ_INT(bad, 0);
  rows_free(&r);
}

TEST(callbacks)
{
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < 20 &&
         !(hook_has("/ok {") && hook_has("/fail?dag=it_cb_fail")))
    fx_msleep(100);
  CHECK(hook_has("\"dag_id\":\"it_cb_ok\""));
  CHECK(hook_has("\"state\":\"success\""));
  CHECK(hook_has("\"ds\":\"2025-03-01\""));
  CHECK(hook_has("/fail?dag=it_cb_fail {\"dag\": \"it_cb_fail\", \"ds\": "
                 "\"2025-03-01\"}"));
  CHECK(!hook_has("/ok-failed"));
  if (!hook_has("/ok {"))
    fprintf(stderr, "  hook saw: %s\n", g_hook_seen);
}

/* The DAG version the daemon uses, by its `dag` row. */
static int64_t parsed_mark(const char *dag_id, char *err, size_t cap)
{
  struct rows r;
  struct db_val p[1] = {DB_V_STR(dag_id)};
  int64_t v = -1;
  if (err)
    err[0] = '\0';
  if (q_rows(&r,
             "SELECT UNIX_TIMESTAMP(last_parsed_at) * 1000000, import_error "
             "FROM dag WHERE dag_id = ?",
             p, 1) == 0 &&
      r.n) {
    v = (int64_t)atof(cell(&r, 0, 0));
    if (err)
      snprintf(err, cap, "%s", cell(&r, 0, 1));
  }
  rows_free(&r);
  return v;
}

static void run_tasks(const char *run_id, char *out, size_t cap)
{
  struct rows r;
  struct db_val p[1] = {DB_V_STR(run_id)};
  out[0] = '\0';
  if (q_rows(&r,
             "SELECT task_id FROM task_instance WHERE run_id = ? ORDER BY "
             "task_id",
             p, 1) == 0)
    for (int i = 0; i < r.n; i++) {
      strncat(out, cell(&r, i, 0), cap - strlen(out) - 2);
      strncat(out, " ", cap - strlen(out) - 1);
    }
  rows_free(&r);
}

TEST(hot_reload)
{
  char rid[256], tasks[256], path[700], err[600];
  snprintf(path, sizeof(path), "%s/it_hr.yaml", g_dags);
  REQUIRE(trigger("it_hr", "2025-04-01", NULL, rid) == 0);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  run_tasks(rid, tasks, sizeof(tasks));
  CHECK_EQ_STR(tasks, "a ");
  int64_t m0 = parsed_mark("it_hr", NULL, 0);
  REQUIRE(write_text(path, "dag_id: it_hr\nschedule: null\ntasks:\n"
                           "  - {id: a, type: shell, command: \"true\"}\n"
                           "  - {id: b, type: shell, command: \"true\", "
                           "depends_on: [a]}\n") == 0);
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < 30 && parsed_mark("it_hr", NULL, 0) == m0)
    fx_msleep(100);
  REQUIRE(parsed_mark("it_hr", NULL, 0) != m0);
  REQUIRE(trigger("it_hr", "2025-04-02", NULL, rid) == 0);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  run_tasks(rid, tasks, sizeof(tasks));
  CHECK_EQ_STR(tasks, "a b ");
  /* A broken edit: reported, the last good version keeps running. */
  REQUIRE(write_text(path, "dag_id: it_hr\nschedule: null\ntasks:\n"
                           "  - {id: a, type: shell, command: \"true\"}\n"
                           "  - {id: b, type: shell, depends_on: [zz], "
                           "command: \"true\"}\n") == 0);
  t0 = fx_now_s();
  while (fx_now_s() - t0 < 30) {
    parsed_mark("it_hr", err, sizeof(err));
    if (err[0])
      break;
    fx_msleep(100);
  }
  CHECK(strstr(err, "it_hr.yaml:5:") && strstr(err, "zz"));
  REQUIRE(trigger("it_hr", "2025-04-03", NULL, rid) == 0);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  run_tasks(rid, tasks, sizeof(tasks));
  CHECK_EQ_STR(tasks, "a b ");
  char *out = NULL;
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags list"), 0);
  CHECK(out && strstr(out, "broken: ") && strstr(out, "zz"));
  free(out);
  /* Fixed again, with a new task: a new run has it. */
  REQUIRE(write_text(path, "dag_id: it_hr\nschedule: null\ntasks:\n"
                           "  - {id: a, type: shell, command: \"true\"}\n"
                           "  - {id: c, type: shell, command: \"true\"}\n") ==
          0);
  t0 = fx_now_s();
  while (fx_now_s() - t0 < 30) {
    parsed_mark("it_hr", err, sizeof(err));
    if (!err[0])
      break;
    fx_msleep(100);
  }
  CHECK_EQ_STR(err, "");
  REQUIRE(trigger("it_hr", "2025-04-04", NULL, rid) == 0);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  run_tasks(rid, tasks, sizeof(tasks));
  CHECK_EQ_STR(tasks, "a c ");
}

TEST(paused_dag)
{
  char rid[] = "it_paused__manual__2025-05-05T00:00:00+09:00";
  char st[32];
  /* The daemon has been ticking for seconds: nothing ran. */
  run_state(rid, st, sizeof(st));
  CHECK_EQ_STR(st, "queued");
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = "
                     "'it_paused' AND run_type <> 'manual'",
                     NULL, 0),
               0);
  char *out = NULL;
  CHECK_EQ_INT(cli(&out, g_cfg_a, "dags unpause it_paused"), 0);
  free(out);
  CHECK_EQ_INT(wait_run(rid, 30), 1);
  /* catchup: false: exactly one scheduled run, the latest fire time. */
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < 30 &&
         q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = 'it_paused' AND "
               "run_type = 'scheduled'",
               NULL, 0) < 1)
    fx_msleep(100);
  fx_msleep(1000);
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = "
                     "'it_paused' AND run_type <> 'manual'",
                     NULL, 0),
               1);
  /* the scheduler's own run: queued by no one outside, with no conf */
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = "
                     "'it_paused' AND run_type = 'scheduled' AND "
                     "external_trigger = 0 AND conf IS NULL",
                     NULL, 0),
               1);
}

TEST(catchup)
{
  char day[11], mid[20], today_now[11];
  /* catchup: true -> start_date (3 days back) .. today, each once. */
  struct rows r;
  double t0 = fx_now_s();
  for (;;) {
    memset(&r, 0, sizeof(r));
    int64_t done = q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = "
                         "'it_catchup_true' AND state = 'success'",
                         NULL, 0);
    if (done >= 4 || fx_now_s() - t0 > 60)
      break;
    fx_msleep(200);
  }
  kst_day(0, today_now, mid);
  /* Around local midnight a fifth day may have come due: accept it. */
  int extra = strcmp(today_now, g_catchup_day0) != 0;
  REQUIRE(q_rows(&r,
                 "SELECT logical_date, run_type, state, run_id FROM dag_run "
                 "WHERE dag_id = 'it_catchup_true' ORDER BY id",
                 NULL, 0) == 0);
  CHECK(r.n == 4 || (extra && r.n == 5));
  for (int k = 0; k < r.n && k < 5; k++) {
    /* Oldest first: ids grow with the logical date, one day apart. */
    char want_mid[20];
    char d2[11];
    kst_day(k - 3, d2, want_mid);
    if (!extra)
      CHECK_EQ_STR(cell(&r, k, 0), want_mid);
    CHECK_EQ_STR(cell(&r, k, 1), k == r.n - 1 ? "scheduled" : "backfill");
    CHECK_EQ_STR(cell(&r, k, 2), "success");
    char iso[40];
    snprintf(iso, sizeof(iso), "__%sT00:00:00+09:00", d2);
    if (!extra)
      CHECK(strstr(cell(&r, k, 3), iso) != NULL);
  }
  rows_free(&r);
  char path[700];
  snprintf(path, sizeof(path), "%s/catchup_true.txt", g_work);
  char *t = read_text(path);
  CHECK(fx_count_lines(t) == 4 || (extra && fx_count_lines(t) == 5));
  for (int k = -3; k <= 0 && !extra; k++) { /* each {{ ds }} once */
    char line[16];
    kst_day(k, day, mid);
    snprintf(line, sizeof(line), "%s\n", day);
    char *a = strstr(t, line);
    CHECK(a && !strstr(a + 1, line));
  }
  free(t);
  /* catchup: false -> only the latest fire time. */
  t0 = fx_now_s();
  while (fx_now_s() - t0 < 60 &&
         q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = "
               "'it_catchup_false' AND state = 'success'",
               NULL, 0) < 1)
    fx_msleep(200);
  REQUIRE(q_rows(&r,
                 "SELECT logical_date, run_type FROM dag_run WHERE dag_id = "
                 "'it_catchup_false'",
                 NULL, 0) == 0);
  CHECK_EQ_INT(r.n, 1);
  kst_day(0, day, mid);
  if (!extra)
    CHECK_EQ_STR(cell(&r, 0, 0), mid);
  CHECK_EQ_STR(cell(&r, 0, 1), "scheduled");
  rows_free(&r);
}

TEST(cli_with_runs)
{
  char *out = NULL;
  /* Keyset pagination: 2 per page, then the rest. */
  CHECK_EQ_INT(cli(&out, g_cfg_a, "runs list it_maxactive --limit 2"), 0);
  char *more = out ? strstr(out, "--before ") : NULL;
  CHECK(more != NULL);
  CHECK(out && fx_count_lines(out) == 4); /* header, 2 rows, more line */
  long before = more ? atol(more + 9) : 0;
  free(out);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "runs list it_maxactive --before %ld",
                   before),
               0);
  CHECK(out && fx_count_lines(out) == 5 && !strstr(out, "--before"));
  free(out);
  CHECK_EQ_INT(cli(&out, g_cfg_a, "runs show '%s'", r_fan), 0);
  CHECK(out && strstr(out, "state:        success") &&
        strstr(out, "TASK_ID"));
  int n = 0;
  for (char *s = out; s && (s = strstr(s, "  success ")); s++)
    n++;
  CHECK_EQ_INT(n, 5);
  free(out);
  char args[300];
  snprintf(args, sizeof(args), "logs '%s' flaky --try 1", r_retry_ok);
  cli_says(args, 0, "--- flaky try 1 ---", "stderr| first", "stdout| second");
  snprintf(args, sizeof(args), "logs '%s'", r_retry_ok);
  cli_says(args, 0, "try 1", "try 2: success", NULL);
  snprintf(args, sizeof(args), "logs '%s' nope", r_retry_ok);
  cli_says(args, 1, NULL, NULL, NULL);
  cli_says("dags list --limit 3", 0, "it_catchup_false", "--after", NULL);
  cli_says("dags list --after it_paused", 0, "it_retry_ok", NULL, "it_fan");
  /* trigger --wait follows the run and exits with its outcome. */
  cli_says("dags trigger it_fan --date 2025-06-01 --wait --timeout 120", 0,
           "  e ", ": success", NULL);
  cli_says("dags trigger it_retry_exhaust --date 2025-06-01 --wait "
           "--timeout 120",
           1, "up_for_retry", ": failed", NULL);
  cli_says("dags trigger it_fan --date 2025-06-01", 1, "already has a run",
           NULL, NULL);
  /* dags test next to a running daemon: runs in the CLI only. */
  char path[700];
  snprintf(path, sizeof(path), "%s/fan.txt", g_work);
  char *t = read_text(path);
  int before_lines = fx_count_lines(t);
  free(t);
  cli_says("dags test it_fan --date 2025-07-01", 0, "=== e: success", NULL,
           NULL);
  fx_msleep(1500); /* a daemon that wrongly picked tasks up would show now */
  t = read_text(path);
  CHECK_EQ_INT(fx_count_lines(t), before_lines + 5);
  free(t);
  char st[32];
  run_state("it_fan__test__2025-07-01T00:00:00+09:00", st, sizeof(st));
  CHECK_EQ_STR(st, "success");
  /* a test run is a manual run someone asked for (external_trigger 1) */
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM dag_run WHERE run_id = "
                     "'it_fan__test__2025-07-01T00:00:00+09:00' AND "
                     "run_type = 'manual' AND external_trigger = 1",
                     NULL, 0),
               1);
  cli_says("dags test it_rules --date 2025-07-01", 1,
           "=== r_cascade: upstream_failed", NULL, NULL);
  /* Again on the same date: replaces the finished test run. */
  cli_says("dags test it_fan --date 2025-07-01", 0, "replacing run", NULL,
           NULL);
}

TEST(dags_test_killed)
{
  char rid[] = "it_testkill__test__2025-03-01T00:00:00+09:00";
  char st[32], path[700];
  int tn;
  snprintf(path, sizeof(path), "%s/testkill.pid", g_work);
  pid_t cli_pid = fork();
  if (cli_pid == 0) {
    int fd = open("/dev/null", O_WRONLY);
    dup2(fd, 1);
    dup2(fd, 2);
    if (chdir(g_src) != 0)
      _exit(126);
    execl(g_bin, g_bin, "-c", g_cfg_a, "dags", "test", "it_testkill",
          "--date", "2025-03-01", (char *)NULL);
    _exit(127);
  }
  REQUIRE(cli_pid > 0);
  double t0 = fx_now_s();
  long spid = 0;
  while (fx_now_s() - t0 < 30) {
    ti(rid, "slow", st, sizeof(st), &tn);
    char *t = read_text(path);
    spid = atol(t);
    free(t);
    if (!strcmp(st, "running") && spid > 0)
      break;
    fx_msleep(50);
  }
  REQUIRE(!strcmp(st, "running"));
  kill(cli_pid, SIGKILL);
  waitpid(cli_pid, NULL, 0);
  CHECK_EQ_INT(wait_run(rid, 60), 0);
  ti(rid, "slow", st, sizeof(st), &tn);
  CHECK_EQ_STR(st, "failed");
  ti(rid, "after", st, sizeof(st), &tn);
  CHECK_EQ_STR(st, "upstream_failed");
  CHECK_EQ_INT(tn, 0);
  fx_msleep(1000); /* nothing of it runs in the daemon afterwards */
  snprintf(path, sizeof(path), "%s/testkill.txt", g_work);
  CHECK(access(path, F_OK) != 0);
  char *l = task_log(rid, "slow", 1);
  CHECK(strstr(l, "dags test process") != NULL);
  free(l);
  if (spid > 0)
    kill((pid_t)spid, SIGKILL);
}

TEST(graceful_stop)
{
  CHECK_EQ_INT(fx_daemon_term(&g_pid_a), 0);
}

/* ---- phase 2: kill -9 and restart --------------------------------------------- */

TEST(kill9_recovery)
{
  char log[700], rid[256], st[32], path[700];
  int tn = 0;
  snprintf(log, sizeof(log), "%s/daemon-b.log", g_tmp);
  g_pid_b = daemon_spawn(g_cfg_b, log);
  REQUIRE(g_pid_b > 0);
  REQUIRE(trigger("it_crash", "2025-08-01", NULL, rid) == 0);
  snprintf(path, sizeof(path), "%s/crash.pid", g_work);
  double t0 = fx_now_s();
  for (;;) {
    ti(rid, "long", st, sizeof(st), &tn);
    char *t = read_text(path);
    int have = atol(t) > 0;
    free(t);
    if ((!strcmp(st, "running") && have) || fx_now_s() - t0 > 60)
      break;
    fx_msleep(50);
  }
  REQUIRE(!strcmp(st, "running") && tn == 1);
  fx_daemon_kill9(&g_pid_b);
  /* Restart (a new process: its claim id differs). */
  g_pid_b = daemon_spawn(g_cfg_b, log);
  REQUIRE(g_pid_b > 0);
  CHECK_EQ_INT(wait_run(rid, 60), 1);
  ti(rid, "long", st, sizeof(st), &tn);
  CHECK_EQ_STR(st, "success");
  CHECK_EQ_INT(tn, 2);
  char *l1 = task_log(rid, "long", 1);
  CHECK(strstr(l1, "lost") && strstr(l1, "up_for_retry"));
  free(l1);
  char *l2 = task_log(rid, "long", 2);
  CHECK(strstr(l2, "second try"));
  free(l2);
  /* The first attempt's sleep outlived its daemon: end it. */
  char *t = read_text(path);
  long pid = atol(t);
  free(t);
  if (pid > 0)
    kill((pid_t)pid, SIGKILL);
  CHECK_EQ_INT(fx_daemon_term(&g_pid_b), 0);
}

/* ---- phase 3: two daemons ------------------------------------------------------- */

TEST(two_daemons_exactly_once)
{
  char log1[700], log2[700], rid[256];
  snprintf(log1, sizeof(log1), "%s/daemon-c1.log", g_tmp);
  snprintf(log2, sizeof(log2), "%s/daemon-c2.log", g_tmp);
  g_pid_b = daemon_spawn(g_cfg_c, log1);
  g_pid_c = daemon_spawn(g_cfg_c, log2);
  REQUIRE(g_pid_b > 0 && g_pid_c > 0);
  for (int i = 0; i < 50; i++) {
    char d[32];
    snprintf(d, sizeof(d), "2024-%02d-%02d", 1 + i / 28, 1 + i % 28);
    REQUIRE(trigger("it_multi", d, NULL, rid) == 0);
  }
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < 180 &&
         q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = 'it_multi' AND "
               "state IN ('success', 'failed')",
               NULL, 0) < 50)
    fx_msleep(200);
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = 'it_multi' "
                     "AND state = 'success'",
                     NULL, 0),
               50);
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM task_instance WHERE dag_id = "
                     "'it_multi' AND state = 'success' AND try_number = 1",
                     NULL, 0),
               250);
  /* Side effects: each (run, task) line exactly once. */
  char path[700];
  snprintf(path, sizeof(path), "%s/multi.txt", g_work);
  char *t = read_text(path);
  CHECK_EQ_INT(fx_count_lines(t), 250);
  struct rows r;
  REQUIRE(q_rows(&r,
                 "SELECT CONCAT(run_id, ' ', task_id) FROM task_instance "
                 "WHERE dag_id = 'it_multi'",
                 NULL, 0) == 0);
  int dup = 0, missing = 0;
  for (int i = 0; i < r.n; i++) {
    char want[400];
    snprintf(want, sizeof(want), "%s\n", cell(&r, i, 0));
    char *a = strstr(t, want);
    /* lines are whole: match at line starts only */
    while (a && a != t && a[-1] != '\n')
      a = strstr(a + 1, want);
    if (!a) {
      missing++;
      continue;
    }
    char *b = strstr(a + 1, want);
    while (b && b[-1] != '\n')
      b = strstr(b + 1, want);
    if (b)
      dup++;
  }
  CHECK_EQ_INT(r.n, 250);
  CHECK_EQ_INT(missing, 0);
  CHECK_EQ_INT(dup, 0);
  rows_free(&r);
  free(t);
  struct rows w;
  if (q_rows(&w,
             "SELECT pid, COUNT(*) FROM task_instance WHERE dag_id = "
             "'it_multi' GROUP BY pid",
             NULL, 0) == 0) {
    for (int i = 0; i < w.n; i++)
      fprintf(stderr, "  daemon pid %s ran %s task instances\n",
              cell(&w, i, 0), cell(&w, i, 1));
    rows_free(&w);
  }
  CHECK_EQ_INT(fx_daemon_term(&g_pid_b), 0);
  CHECK_EQ_INT(fx_daemon_term(&g_pid_c), 0);
}

/* ---- phase 4: the course DAG ---------------------------------------------------- */

TEST(course_ct_dags_test)
{
  char *out = NULL;
  char cfg[700];
  snprintf(cfg, sizeof(cfg), "%s", g_cfg_d);
  /* The real DAG directory of the repository. */
  char buf[4096];
  snprintf(buf, sizeof(buf),
           "database:\n  name: " DBNAME_CT "\n  connect_timeout: 2\n"
           "server:\n  spool_dir: %s/spool-ct\n"
           "models:\n  specs_dir: %s/config/models\n"
           "  registry_dir: %s/registry-ct\n"
           "scheduler:\n  dags_dir: %s/config/dags\n"
           "logging:\n  level: warn\n",
           g_tmp, g_src, g_tmp, g_src);
  REQUIRE(write_text(cfg, buf) == 0);
  setenv("MLOPSD_DATABASE_NAME", DBNAME_CT, 1);
  int rc = cli(&out, cfg, "db init");
  free(out);
  REQUIRE(rc == 0);
  rc = cli(&out, cfg, "db seed");
  free(out);
  REQUIRE(rc == 0);
  rc = cli(&out, cfg,
           "dags test credit_score_classification_ct --date 2025-09-01");
  setenv("MLOPSD_DATABASE_NAME", DBNAME, 1);
  if (!out || !strstr(out, "=== data_extraction: success"))
    fprintf(stderr, "%s\n", out ? out : "");
  CHECK(out && strstr(out, "=== data_extraction: success"));
  free(out);
  CHECK_EQ_INT(rc, 0);
  /* The rows the course's SQL gives for 2025-09-01, run by hand. */
  struct db_pool *save = g_db;
  REQUIRE((g_db = fx_pool(DBNAME_CT, 1)) != NULL);
  int64_t got = q_i64("SELECT COUNT(*) FROM credit_score_features_target "
                      "WHERE base_dt = '2025-09-01'",
                      NULL, 0);
  int64_t hand = q_i64(
      "SELECT COUNT(*) FROM credit_score_features AS f JOIN (SELECT id, "
      "customer_id FROM credit_score WHERE date BETWEEN "
      "DATE_SUB(DATE('2025-09-01'), INTERVAL 1 MONTH) AND "
      "DATE('2025-09-01')) AS s ON f.id = s.id AND f.customer_id = "
      "s.customer_id",
      NULL, 0);
  CHECK_EQ_INT(got, hand);
  CHECK_EQ_INT(got, 2500);
  CHECK_EQ_INT(q_i64("SELECT COUNT(*) FROM task_instance WHERE task_id = "
                     "'data_extraction' AND state = 'success'",
                     NULL, 0),
               1);
  db_pool_destroy(g_db);
  g_db = save;
}

/* RUN, with the time each test took on stderr (for the eye only). */
#define RUN_T(fn)                                                            \
  do {                                                                       \
    double t0_ = fx_now_s();                                                    \
    RUN(fn);                                                                 \
    fprintf(stderr, "  (%s: %.1f s)\n", #fn, fx_now_s() - t0_);               \
  } while (0)

int main(void)
{
  if (setup() != 0) {
    fprintf(stderr, "test_sched: set-up failed\n");
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  RUN_T(cli_offline);
  RUN_T(phase1_runs);
  RUN_T(fan_out_fan_in);
  RUN_T(trigger_rules);
  RUN_T(retry_then_success);
  RUN_T(retry_exhaustion);
  RUN_T(timeout_kill);
  RUN_T(max_active_runs);
  RUN_T(trigger_dag_task);
  RUN_T(task_log_batched_in_order);
  RUN_T(callbacks);
  RUN_T(hot_reload);
  RUN_T(paused_dag);
  RUN_T(catchup);
  RUN_T(cli_with_runs);
  RUN_T(dags_test_killed);
  RUN_T(graceful_stop);
  RUN_T(kill9_recovery);
  RUN_T(two_daemons_exactly_once);
  RUN_T(course_ct_dags_test);
  fx_daemon_kill9(&g_pid_a);
  fx_daemon_kill9(&g_pid_b);
  fx_daemon_kill9(&g_pid_c);
  db_pool_destroy(g_db);
  cron_tz_destroy(g_tz);
  if (!check_failed && !getenv("SCHED_IT_KEEP")) {
    fx_rmtree(g_tmp);
  } else {
    fprintf(stderr, "daemon logs kept in %s\n", g_tmp);
  }
  return check_done();
}
