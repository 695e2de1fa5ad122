/* test_admin.c - the admin API (/api/v2) and the console's assets over
 * real HTTP, against a real `mlopsd serve` ($MLOPSD_BIN) and MariaDB.
 *
 * Set-up: a temp dir with a registry holding two versions of the course
 * model (trained here with the prep_/train_ API on the request examples
 * of shared/data/credit/predict_requests.jsonl, labels derived from
 * credit_mix: small and quick, real XGBoost models the daemon loads and
 * verifies), grid-search trial records, two DAG files, a config file, its
 * own database it_admin (mlopsd db init) with runs, task instances, log
 * lines and drift reports inserted by SQL, and the daemon on a free port
 * with MLOPSD_ADMIN_TOKEN set.
 *
 * Checked: no token / wrong token -> 401 with WWW-Authenticate: Bearer;
 * a daemon without a token -> admin API off (403 saying how to enable),
 * with auth.console_read_open reads open and writes still refused; DAG
 * list (schedule, next run, tasks in order); trigger -> dag_run row, 409
 * on a duplicate date, 422 on bad JSON / date / conf, 404 on an unknown
 * DAG; pause and unpause (dag row); run pages with keyset cursors; task
 * instances, attempts, logs as JSON, JSON lines and text with a cursor;
 * models, versions with metrics and lineage, trials; promote -> alias
 * file changes, deployment row, /metadata serves the new version; rollback
 * back; serving figures after predictions; drift reports with the DAG's
 * threshold; console assets with ETag/304 and CSP; MariaDB stopped -> 503
 * and back.
 *
 * `test_admin --fixture DIR PORT DBNAME` only builds the same fixture in
 * DIR (config, registry, DAGs, database rows) for the browser test
 * (tests/integration/test_console.sh) and prints nothing else on success.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "version_fx.h"
#include "mlopsd/db.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/train.h"

#define MODEL "credit_score_classification"
#define DAG "it_etl"
#define TOKEN "it-admin-t0ken"
#define RUN_OK "scheduled__2025-08-30T03:00:00+09:00"
#define RUN_BAD "scheduled__2025-08-31T03:00:00+09:00"
#define RUN_LIVE "manual__2025-09-05T00:00:00+09:00"

static char g_src[1024], g_bin[1024], g_tmp[512], g_cfg[600], g_reg[600],
    g_log[600], g_dbdir[512], g_db[64] = "it_admin";
static int g_port;
static pid_t g_pid;
static struct db_pool *g_pool;

/* ---- small helpers ------------------------------------------------------ */

/* ---- HTTP client ---------------------------------------------------------- */

/* token: NULL = no Authorization header.  extra: one more header line. */
static int req_port(int port, const char *method, const char *path,
                    const char *token, const char *body, const char *extra,
                    struct fx_answer *a)
{
  char auth[300];
  const char *h[3];
  int n = 0;
  if (token) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h[n++] = auth;
  }
  if (extra)
    h[n++] = extra;
  h[n] = NULL;
  return fx_http(port, method, path, h, body, body ? strlen(body) : 0, a);
}

static int req(const char *method, const char *path, const char *token,
               const char *body, struct fx_answer *a)
{
  return req_port(g_port, method, path, token, body, NULL, a);
}

/* METHOD PATH with TOKEN and BODY answers STATUS (a failed check naming
 * the request otherwise); -1 when nothing answered. */
static int req_status(const char *method, const char *path,
                      const char *token, const char *body, long status)
{
  struct fx_answer a;
  if (req(method, path, token, body, &a) != 0) {
    check_fail_at(__FILE__, __LINE__, "%s %s: no answer", method, path);
    return -1;
  }
  if (a.status != status)
    check_fail_at(__FILE__, __LINE__, "%s %s %s(token %s): %ld, want %ld: "
                  "%.300s", method, path, body ? body : "",
                  token ? "yes" : "no", a.status, status, a.body);
  fx_answer_free(&a);
  return 0;
}

static int get(const char *path, struct fx_answer *a)
{
  return req("GET", path, TOKEN, NULL, a);
}

static const cJSON *jget(const cJSON *o, const char *k)
{
  return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *jstr(const cJSON *o, const char *k)
{
  const cJSON *v = jget(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
  const cJSON *v = jget(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* Header value (case-insensitive name) from a captured header block into
 * out; 0 when found. */
static int header(const struct fx_answer *a, const char *name, char *out,
                  size_t cap)
{
  size_t nl = strlen(name);
  for (const char *p = a->headers; p && *p;) {
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      p += nl + 1;
      while (*p == ' ')
        p++;
      size_t k = strcspn(p, "\r\n");
      snprintf(out, cap, "%.*s", (int)k, p);
      return 0;
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return -1;
}

/* ---- database ------------------------------------------------------------- */

static int64_t sql_i64(const char *sql, const char *arg)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t n = -1;
  struct db_val p[] = {DB_V_STR(arg ? arg : "")};
  if (db_acquire(g_pool, 10000, &c, &e) == ERR_OK) {
    if (db_query_i64(c, sql, p, arg ? 1 : 0, &n, &e) != ERR_OK)
      fprintf(stderr, "sql_i64: %s\n", e.msg);
    db_release(g_pool, c);
  } else {
    fprintf(stderr, "sql_i64: %s\n", e.msg);
  }
  return n;
}

static int sql_exec(const char *sql)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int rc = -1;
  if (db_acquire(g_pool, 10000, &c, &e) == ERR_OK) {
    rc = db_exec(c, sql, NULL, &e) == ERR_OK ? 0 : -1;
    if (rc)
      fprintf(stderr, "sql_exec: %s\n", e.msg);
    db_release(g_pool, c);
  }
  return rc;
}

/* ---- the fixture: registry ------------------------------------------------- */

struct rows {
  cJSON **items; /* the "data" objects */
  size_t n;
};

static int load_requests(struct rows *r, size_t max)
{
  char *text = fx_read_file(fx_data_path("predict_requests.jsonl"), NULL);
  if (!text)
    return -1;
  r->items = calloc(max, sizeof(*r->items));
  r->n = 0;
  for (char *p = text; *p && r->n < max;) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = 0;
    cJSON *l = cJSON_Parse(p);
    cJSON *d = l ? cJSON_DetachItemFromObject(l, "data") : NULL;
    cJSON_Delete(l);
    if (cJSON_IsObject(d))
      r->items[r->n++] = d;
    else
      cJSON_Delete(d);
    if (!nl)
      break;
    p = nl + 1;
  }
  free(text);
  return r->n >= 200 ? 0 : -1;
}

static void rows_free(struct rows *r)
{
  for (size_t i = 0; i < r->n; i++)
    cJSON_Delete(r->items[i]);
  free(r->items);
}

/* Train a version (max_depth depth) on the request examples with labels
 * from credit_mix (Bad -> Poor), write it with its trial records. */
static int make_version(struct registry *reg, const struct spec *sp,
                        const struct rows *rq, int depth, const char *prefix,
                        int *version)
{
  struct err e = {0};
  size_t n = rq->n, nf = sp->n_features;
  struct prep_column *cols = calloc(nf, sizeof(*cols));
  double **num = calloc(nf, sizeof(*num));
  const char ***str = calloc(nf, sizeof(*str));
  float *y = calloc(n, sizeof(float));
  for (size_t k = 0; k < nf; k++) {
    if (sp->features[k].kind == SPEC_NUMERIC)
      cols[k].num = num[k] = calloc(n, sizeof(double));
    else
      cols[k].str = str[k] = calloc(n, sizeof(char *));
  }
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < nf; k++) {
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(
          rq->items[i], sp->features[k].name);
      if (num[k])
        num[k][i] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
      else
        str[k][i] = cJSON_IsString(v) ? v->valuestring : NULL;
    }
    /* the label follows credit_mix for most rows and the customer id
     * for the rest, so deeper trees score differently */
    const char *mix = jstr(rq->items[i], "credit_mix");
    int cid = (int)jnum(rq->items[i], "customer_id");
    int cls = spec_class_index(sp, mix && !strcmp(mix, "Bad") ? "Poor"
                                   : mix && !strcmp(mix, "Good") ? "Good"
                                                                 : "Standard");
    if (cid % 10 >= 7)
      cls = (cid / 10) % 3;
    y[i] = (float)(cls < 0 ? 0 : cls);
  }
  struct prep_input in = {n, nf, cols};
  struct fx_fit f;
  struct registry_draft *d = NULL;
  int ok = 0;
  if (fx_fit(sp, &in, y, depth, 8, &f, &e))
    goto out;
  const struct train_metrics *m = &f.res.metrics;
  /* two trial records per version: the kept one and a worse one */
  char best[128], other[128];
  snprintf(best, sizeof(best), "%s-t01", prefix);
  snprintf(other, sizeof(other), "%s-t02", prefix);
  cJSON *pj = cJSON_CreateObject(), *mj = cJSON_CreateObject();
  cJSON_AddStringToObject(pj, "max_depth", f.depth);
  cJSON_AddNumberToObject(mj, "accuracy", m->accuracy);
  cJSON_AddNumberToObject(mj, "logloss", m->logloss);
  int wr = registry_run_write(reg, MODEL, best, pj, mj, &e);
  cJSON_ReplaceItemInObject(pj, "max_depth", cJSON_CreateString("1"));
  cJSON_ReplaceItemInObject(mj, "accuracy",
                            cJSON_CreateNumber(m->accuracy / 2));
  if (!wr)
    wr = registry_run_write(reg, MODEL, other, pj, mj, &e);
  cJSON_Delete(pj);
  cJSON_Delete(mj);
  if (wr || fx_draft_begin(reg, MODEL, &f, &d, &e))
    goto out;
  cJSON *meta = cJSON_CreateObject();
  cJSON_AddStringToObject(meta, "format", "mlopsd.meta");
  cJSON_AddStringToObject(meta, "name", MODEL);
  cJSON_AddStringToObject(meta, "creation_time", "2025-09-01T00:10:00Z");
  cJSON_AddStringToObject(meta, "logical_date", "2025-09-01");
  cJSON_AddStringToObject(meta, "dag_id", "credit_score_ct");
  cJSON_AddStringToObject(meta, "dag_run_id", prefix);
  cJSON_AddStringToObject(meta, "best_run", best);
  cJSON_AddItemToObject(meta, "params", fx_fit_params(&f));
  cJSON *met = cJSON_AddObjectToObject(meta, "metrics");
  cJSON_AddNumberToObject(met, "accuracy", m->accuracy);
  cJSON_AddNumberToObject(met, "f1_macro", m->f1_macro);
  cJSON_AddNumberToObject(met, "logloss", m->logloss);
  cJSON *sel = cJSON_AddObjectToObject(meta, "selection");
  cJSON_AddStringToObject(sel, "metric", "accuracy");
  cJSON_AddNumberToObject(sel, "value", m->accuracy);
  cJSON_AddNumberToObject(meta, "training_rows", (double)n);
  cJSON_AddNumberToObject(meta, "train_rows", (double)f.ntr);
  cJSON_AddNumberToObject(meta, "val_rows", (double)f.nva);
  cJSON_AddNumberToObject(meta, "trial_count", 2);
  cJSON_AddStringToObject(meta, "data_sha256",
                          "9f2b6c1d0e4a7b3c5d8e1f2a3b4c5d6e7f8091a2b3c4d5e6f"
                          "708192a3b4c5d6e7f");
  ok = fx_draft_json(d, "meta.json", meta, 1, &e) == 0;
out:;
  int rc = fx_version_end(&f, &d, ok, version, &e);
  for (size_t k = 0; k < nf; k++) {
    free(num[k]);
    free(str[k]);
  }
  free(num);
  free(str);
  free(cols);
  free(y);
  return rc;
}

/* Two versions; production -> v1 when set_prod. */
static int make_registry(const char *dir, int set_prod)
{
  struct registry *reg = NULL;
  struct spec *sp = NULL;
  struct err e = {0};
  struct rows rq = {0};
  char path[1400];
  int v1 = 0, v2 = 0, rc = -1;
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", g_src, MODEL);
  if (spec_load(path, &sp, &e) != ERR_OK) {
    fprintf(stderr, "spec: %s\n", e.msg);
    return -1;
  }
  if (load_requests(&rq, 1500) || registry_open(dir, &reg, &e))
    goto out;
  if (make_version(reg, sp, &rq, 2, "ct-2025-09-01", &v1) ||
      make_version(reg, sp, &rq, 5, "ct-2025-09-02", &v2))
    goto out;
  if (set_prod &&
      registry_alias_set(reg, MODEL, REGISTRY_PRODUCTION, v1, NULL, &e))
    goto out;
  rc = (v1 == 1 && v2 == 2) ? 0 : -1;
out:
  if (rc)
    fprintf(stderr, "make_registry: %s\n", e.msg);
  registry_close(reg);
  spec_destroy(sp);
  rows_free(&rq);
  return rc;
}

/* ---- the fixture: files, database ------------------------------------------ */

static int write_files(const char *dir, int port, const char *db,
                       int read_open)
{
  char p[700], cfg[4096];
  snprintf(p, sizeof(p), "%s/dags", dir);
  if (mkdir(p, 0755) != 0 && errno != EEXIST)
    return -1;
  snprintf(p, sizeof(p), "%s/dags/etl.yaml", dir);
  if (fx_write_text(p,
                 "dag_id: " DAG "\n"
                 "description: Extract, transform and load every day\n"
                 "schedule: \"0 3 * * *\"\n"
                 "start_date: 2025-01-01\n"
                 "tags: [it, etl]\n"
                 "tasks:\n"
                 "  - id: extract\n"
                 "    type: shell\n"
                 "    command: echo extract {{ ds }}\n"
                 "  - id: transform\n"
                 "    type: shell\n"
                 "    depends_on: [extract]\n"
                 "    command: echo transform\n"
                 "  - id: load\n"
                 "    type: shell\n"
                 "    depends_on: [transform]\n"
                 "    command: echo load\n"))
    return -1;
  snprintf(p, sizeof(p), "%s/dags/monitor.yaml", dir);
  if (fx_write_text(p,
                 "dag_id: it_monitor\n"
                 "description: Drift check of the served model (manual)\n"
                 "schedule: null\n"
                 "tasks:\n"
                 "  - id: drift\n"
                 "    type: drift\n"
                 "    model: " MODEL "\n"
                 "    window: 500\n"
                 "    threshold: 0.2\n"))
    return -1;
  snprintf(cfg, sizeof(cfg),
           "auth:\n"
           "  console_read_open: %s\n"
           "logging:\n"
           "  level: info\n",
           read_open ? "true" : "false");
  return fx_daemon_cfg(dir, g_src, port, db, 500,
                       "  default_model: " MODEL "\n", cfg);
}

/* Drop and create db with `mlopsd db init`, then insert the rows. */
static int setup_db(const char *dir, const char *db)
{
  char cfg[512], log[512];
  snprintf(cfg, sizeof(cfg), "%s/mlopsd.yaml", dir);
  snprintf(log, sizeof(log), "%s/daemon.log", dir);
  if (fx_db_init(db, g_bin, g_src, cfg, log) != 0)
    return -1;
  if (!(g_pool = fx_pool(db, 2)))
    return -1;
  /* Runs of it_etl: one success, one failed (transform failed twice,
   * load upstream_failed), one running whose claim holds a lease far in
   * the future so no scheduler takes it over.  The DAG is paused so no
   * scheduler starts new runs of it during the test. */
  static const char *const rows[] = {
      "INSERT INTO dag (dag_id, is_paused) VALUES ('" DAG "', 1)",
      "INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state, "
      "conf, queued_at, start_date, end_date) VALUES "
      "('" RUN_OK "', '" DAG "', '2025-08-29 18:00:00', 'scheduled', "
      "'success', '{}', UTC_TIMESTAMP(6) - INTERVAL 3 HOUR, "
      "UTC_TIMESTAMP(6) - INTERVAL 3 HOUR, UTC_TIMESTAMP(6) - INTERVAL 170 "
      "MINUTE), "
      "('" RUN_BAD "', '" DAG "', '2025-08-30 18:00:00', 'scheduled', "
      "'failed', '{}', UTC_TIMESTAMP(6) - INTERVAL 2 HOUR, "
      "UTC_TIMESTAMP(6) - INTERVAL 2 HOUR, UTC_TIMESTAMP(6) - INTERVAL 100 "
      "MINUTE), "
      "('" RUN_LIVE "', '" DAG "', '2025-09-04 15:00:00', 'manual', "
      "'running', '{\"why\": \"test\"}', UTC_TIMESTAMP(6) - INTERVAL 2 "
      "MINUTE, UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE, NULL)",
      "INSERT INTO task_instance (run_id, dag_id, task_id, try_number, "
      "max_tries, state, start_date, end_date, duration, hostname, pid, "
      "claimed_by, heartbeat_at) VALUES "
      "('" RUN_OK "', '" DAG "', 'extract', 1, 1, 'success', UTC_TIMESTAMP(6)"
      " - INTERVAL 3 HOUR, UTC_TIMESTAMP(6) - INTERVAL 178 MINUTE, 120, "
      "'it-host', 101, NULL, NULL), "
      "('" RUN_OK "', '" DAG "', 'transform', 1, 1, 'success', "
      "UTC_TIMESTAMP(6) - INTERVAL 178 MINUTE, UTC_TIMESTAMP(6) - INTERVAL "
      "175 MINUTE, 180, 'it-host', 102, NULL, NULL), "
      "('" RUN_OK "', '" DAG "', 'load', 1, 1, 'success', UTC_TIMESTAMP(6) "
      "- INTERVAL 175 MINUTE, UTC_TIMESTAMP(6) - INTERVAL 170 MINUTE, 300, "
      "'it-host', 103, NULL, NULL), "
      "('" RUN_BAD "', '" DAG "', 'extract', 1, 1, 'success', "
      "UTC_TIMESTAMP(6) - INTERVAL 2 HOUR, UTC_TIMESTAMP(6) - INTERVAL 118 "
      "MINUTE, 120, 'it-host', 201, NULL, NULL), "
      "('" RUN_BAD "', '" DAG "', 'transform', 2, 2, 'failed', "
      "UTC_TIMESTAMP(6) - INTERVAL 118 MINUTE, UTC_TIMESTAMP(6) - INTERVAL "
      "100 MINUTE, 1080, 'it-host', 202, NULL, NULL), "
      "('" RUN_BAD "', '" DAG "', 'load', 0, 1, 'upstream_failed', NULL, "
      "UTC_TIMESTAMP(6) - INTERVAL 100 MINUTE, NULL, NULL, NULL, NULL, "
      "NULL), "
      "('" RUN_LIVE "', '" DAG "', 'extract', 1, 1, 'success', "
      "UTC_TIMESTAMP(6) - INTERVAL 2 MINUTE, UTC_TIMESTAMP(6) - INTERVAL 1 "
      "MINUTE, 60, 'it-host', 301, NULL, NULL), "
      "('" RUN_LIVE "', '" DAG "', 'transform', 1, 2, 'running', "
      "UTC_TIMESTAMP(6) - INTERVAL 1 MINUTE, NULL, NULL, 'it-host', 302, "
      "'it-other-host:302:fixture', UTC_TIMESTAMP(6) + INTERVAL 1 DAY), "
      "('" RUN_LIVE "', '" DAG "', 'load', 0, 1, 'scheduled', NULL, NULL, "
      "NULL, NULL, NULL, NULL, NULL)",
      "INSERT INTO task_log (run_id, task_id, try_number, ts, stream, line) "
      "VALUES "
      "('" RUN_OK "', 'extract', 1, UTC_TIMESTAMP(6), 'stdout', "
      "'extract 2025-08-30'), "
      "('" RUN_BAD "', 'transform', 1, UTC_TIMESTAMP(6), 'stdout', "
      "'transform: reading 2,500 rows'), "
      "('" RUN_BAD "', 'transform', 1, UTC_TIMESTAMP(6), 'stderr', "
      "'ZeroDivisionError: division by zero'), "
      "('" RUN_BAD "', 'transform', 2, UTC_TIMESTAMP(6), 'stdout', "
      "'transform: reading 2,500 rows (attempt 2)'), "
      "('" RUN_BAD "', 'transform', 2, UTC_TIMESTAMP(6), 'stderr', "
      "'ValueError: column credit_mix has <b>no</b> values'), "
      "('" RUN_BAD "', 'transform', 2, UTC_TIMESTAMP(6), 'log', "
      "'task failed after 2 attempts (exit status 1)'), "
      "('" RUN_LIVE "', 'transform', 1, UTC_TIMESTAMP(6), 'stdout', "
      "'transform: started')",
      "INSERT INTO drift_report (model, version, window_rows, scores, "
      "max_score, verdict, created_at) VALUES "
      "('" MODEL "', 1, 500, '{\"age\": {\"psi\": 0.02, \"kind\": "
      "\"numeric\"}, \"annual_income\": {\"psi\": 0.05}, \"credit_mix\": "
      "{\"psi\": 0.01}}', 0.05, 'ok', UTC_TIMESTAMP(6) - INTERVAL 3 HOUR), "
      "('" MODEL "', 1, 500, '{\"age\": {\"psi\": 0.08}, \"annual_income\": "
      "{\"psi\": 0.12}, \"credit_mix\": {\"psi\": 0.03}}', 0.12, 'ok', "
      "UTC_TIMESTAMP(6) - INTERVAL 2 HOUR), "
      "('" MODEL "', 1, 500, '{\"age\": {\"psi\": 0.11}, \"annual_income\": "
      "{\"psi\": 0.31}, \"credit_mix\": {\"psi\": 0.04}}', 0.31, 'drift', "
      "UTC_TIMESTAMP(6) - INTERVAL 1 HOUR)",
  };
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
    if (sql_exec(rows[i]))
      return -1;
  return 0;
}

/* ---- daemon -------------------------------------------------------------- */

/* Start `mlopsd -c CFG serve` with the admin token (or none). */
static pid_t daemon_spawn(const char *cfg, const char *log, const char *db,
                          const char *token)
{
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 2);
    dup2(fd, 1);
    setenv("MLOPSD_DATABASE_NAME", db, 1);
    setenv("MLOPSD_ADMIN_SAMPLE_MS", "500", 1);
    unsetenv("MLOPSD_SERVER_LISTEN");
    unsetenv("MLOPSD_AUTH_CONSOLE_READ_OPEN");
    if (token)
      setenv("MLOPSD_ADMIN_TOKEN", token, 1);
    else
      unsetenv("MLOPSD_ADMIN_TOKEN");
    execl(g_bin, g_bin, "-c", cfg, "serve", (char *)NULL);
    _exit(127);
  }
  return pid;
}

static int wait_up(int port, double timeout_s)
{
  for (int i = 0; i < timeout_s * 10; i++) {
    struct fx_answer a;
    if (req_port(port, "GET", "/healthz", NULL, NULL, NULL, &a) == 0 &&
        a.status == 200) {
      fx_answer_free(&a);
      return 0;
    }
    fx_answer_free(&a);
    fx_msleep(100);
  }
  return -1;
}

/* ---- tests ---------------------------------------------------------------- */

TEST(auth_required)
{
  struct fx_answer a;
  char h[256];
  REQUIRE(req("GET", "/api/v2/dags", NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 401);
  CHECK(header(&a, "WWW-Authenticate", h, sizeof(h)) == 0 &&
        strncmp(h, "Bearer", 6) == 0);
  CHECK(jstr(a.json, "error") != NULL);
  fx_answer_free(&a);
  /* wrong token, and a token that is a prefix of the right one */
  REQUIRE(req("GET", "/api/v2/dags", "wrong", NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 401);
  CHECK(header(&a, "WWW-Authenticate", h, sizeof(h)) == 0 &&
        strstr(h, "invalid_token") != NULL);
  fx_answer_free(&a);
  REQUIRE(req_status("GET", "/api/v2/dags", "it-admin", NULL, 401) == 0);
  REQUIRE(req("POST", "/api/v2/models/" MODEL "/rollback", "nope", "{}",
              &a) == 0);
  CHECK_EQ_INT(a.status, 401);
  fx_answer_free(&a);
  /* a Basic header is not a Bearer token */
  REQUIRE(req_port(g_port, "GET", "/api/v2/models", NULL, NULL,
                   "Authorization: Basic aXQ6aXQ=", &a) == 0);
  CHECK_EQ_INT(a.status, 401);
  fx_answer_free(&a);
  /* the right one; the scheme is case-insensitive */
  REQUIRE(req_port(g_port, "GET", "/api/v2/models", NULL, NULL,
                   "Authorization: bearer " TOKEN, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  fx_answer_free(&a);
  REQUIRE(req("GET", "/api/v2/auth", NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(cJSON_IsTrue(jget(a.json, "admin_enabled")));
  CHECK(cJSON_IsFalse(jget(a.json, "authenticated")));
  CHECK(cJSON_IsFalse(jget(a.json, "read_open")));
  fx_answer_free(&a);
  REQUIRE(req("GET", "/api/v2/auth", TOKEN, NULL, &a) == 0);
  CHECK(cJSON_IsTrue(jget(a.json, "authenticated")));
  fx_answer_free(&a);
}

/* A second daemon without a token: the admin API is off; with
 * console_read_open the GETs answer, changes still do not. */
TEST(token_off)
{
  char dir[600], cfg[700], log[700];
  struct fx_answer a;
  int port = fx_free_port();
  snprintf(dir, sizeof(dir), "%s/off", g_tmp);
  REQUIRE(mkdir(dir, 0755) == 0);
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "ln -s %s %s/registry", g_reg, dir);
  REQUIRE(fx_run_cmd(cmd) == 0);
  REQUIRE(write_files(dir, port, g_db, 0) == 0);
  snprintf(cfg, sizeof(cfg), "%s/mlopsd.yaml", dir);
  snprintf(log, sizeof(log), "%s/daemon.log", dir);
  pid_t pid = daemon_spawn(cfg, log, g_db, NULL);
  REQUIRE(wait_up(port, 30) == 0);
  REQUIRE(req_port(port, "GET", "/api/v2/dags", TOKEN, NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 403);
  CHECK(jstr(a.json, "detail") &&
        strstr(jstr(a.json, "detail"), "MLOPSD_ADMIN_TOKEN"));
  fx_answer_free(&a);
  REQUIRE(req_port(port, "POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
                   "{\"logical_date\": \"2030-01-01\"}", NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 403);
  fx_answer_free(&a);
  CHECK_EQ_INT(fx_daemon_term(&pid), 0);

  /* read-open */
  REQUIRE(write_files(dir, port, g_db, 1) == 0);
  pid = daemon_spawn(cfg, log, g_db, NULL);
  REQUIRE(wait_up(port, 30) == 0);
  REQUIRE(req_port(port, "GET", "/api/v2/dags", NULL, NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  fx_answer_free(&a);
  REQUIRE(req_port(port, "GET", "/api/v2/models/" MODEL, NULL, NULL, NULL,
                   &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  fx_answer_free(&a);
  REQUIRE(req_port(port, "PATCH", "/api/v2/dags/" DAG, NULL,
                   "{\"is_paused\": false}", NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 403);
  fx_answer_free(&a);
  REQUIRE(req_port(port, "GET", "/api/v2/auth", NULL, NULL, NULL, &a) == 0);
  CHECK(cJSON_IsFalse(jget(a.json, "admin_enabled")));
  CHECK(cJSON_IsTrue(jget(a.json, "read_open")));
  fx_answer_free(&a);
  CHECK_EQ_INT(fx_daemon_term(&pid), 0);
}

static const cJSON *find_by(const cJSON *arr, const char *key,
                            const char *val)
{
  const cJSON *x;
  cJSON_ArrayForEach(x, arr)
  {
    const char *s = jstr(x, key);
    if (s && !strcmp(s, val))
      return x;
  }
  return NULL;
}

TEST(list_dags)
{
  struct fx_answer a;
  REQUIRE(get("/api/v2/dags", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *dags = jget(a.json, "dags");
  CHECK_EQ_INT(cJSON_GetArraySize(dags), 2);
  CHECK_EQ_INT(jnum(a.json, "total_entries"), 2);
  const cJSON *d = find_by(dags, "dag_id", DAG);
  REQUIRE(d != NULL);
  CHECK_EQ_STR(jstr(d, "schedule"), "0 3 * * *");
  CHECK(jstr(d, "next_dagrun_logical_date") &&
        strstr(jstr(d, "next_dagrun_logical_date"), "T03:00:00+09:00"));
  CHECK(cJSON_IsTrue(jget(d, "is_paused")));
  const cJSON *tasks = jget(d, "tasks");
  CHECK_EQ_INT(cJSON_GetArraySize(tasks), 3);
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tasks, 0), "task_id"), "extract");
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tasks, 2), "task_id"), "load");
  CHECK_EQ_STR(jstr(jget(d, "last_run"), "dag_run_id"), RUN_LIVE);
  const cJSON *m = find_by(dags, "dag_id", "it_monitor");
  REQUIRE(m != NULL);
  CHECK(cJSON_IsNull(jget(m, "schedule")));
  CHECK(cJSON_IsNull(jget(m, "next_dagrun_logical_date")));
  fx_answer_free(&a);
  /* keyset page by dag_id */
  REQUIRE(get("/api/v2/dags?limit=1", &a) == 0);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "dags")), 1);
  CHECK_EQ_STR(jstr(a.json, "next_after"), DAG);
  fx_answer_free(&a);
  REQUIRE(get("/api/v2/dags?limit=1&after=" DAG, &a) == 0);
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(jget(a.json, "dags"), 0), "dag_id"),
               "it_monitor");
  CHECK(cJSON_IsNull(jget(a.json, "next_after")));
  fx_answer_free(&a);
  REQUIRE(get("/api/v2/dags/" DAG, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_STR(jstr(a.json, "dag_id"), DAG);
  fx_answer_free(&a);
  REQUIRE(get("/api/v2/dags?limit=0", &a) == 0);
  CHECK_EQ_INT(a.status, 200); /* Airflow: limit >= 0 */
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "dags")), 0);
  fx_answer_free(&a);
}

TEST(trigger_run)
{
  struct fx_answer a;
  REQUIRE(req("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
              "{\"logical_date\": \"2025-09-01\", \"conf\": {\"k\": \"v\"}}",
              &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const char *rid = jstr(a.json, "dag_run_id");
  REQUIRE(rid != NULL);
  CHECK_EQ_STR(jstr(a.json, "dag_id"), DAG);
  CHECK_EQ_STR(jstr(a.json, "run_type"), "manual");
  CHECK_EQ_STR(jstr(jget(a.json, "conf"), "k"), "v");
  /* midnight in Asia/Seoul is 15:00 UTC the day before */
  CHECK_EQ_STR(jstr(a.json, "logical_date"), "2025-08-31T15:00:00Z");
  CHECK_EQ_INT(sql_i64("SELECT COUNT(*) FROM dag_run WHERE run_id = ?", rid),
               1);
  CHECK_EQ_INT(sql_i64("SELECT COUNT(*) FROM dag_run WHERE run_id = ? AND "
                       "JSON_VALUE(conf, '$.k') = 'v'",
                       rid),
               1);
  fx_answer_free(&a);
  /* the same date again */
  REQUIRE(req("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
              "{\"logical_date\": \"2025-09-01\"}", &a) == 0);
  CHECK_EQ_INT(a.status, 409);
  CHECK(jstr(a.json, "error") != NULL);
  fx_answer_free(&a);
  CHECK_EQ_INT(sql_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND "
                       "logical_date = '2025-08-31 15:00:00'",
                       DAG),
               1);
  /* bad bodies */
  REQUIRE(req("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
              "{\"logical_date\": \"2025-09-0", &a) == 0);
  CHECK_EQ_INT(a.status, 422);
  CHECK(jstr(a.json, "error") && strstr(jstr(a.json, "error"), "column"));
  fx_answer_free(&a);
  REQUIRE(req_status("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
                     "{\"logical_date\": \"2025-02-30\"}", 422) == 0);
  REQUIRE(req_status("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
                     "{\"logical_date\": \"2025-09-03\", \"conf\": [1]}",
                     422) == 0);
  REQUIRE(req_status("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN, "[1, 2]",
                     422) == 0);
  /* an unknown DAG */
  REQUIRE(req_status("POST", "/api/v2/dags/no_such_dag/dagRuns", TOKEN,
                     "{\"logical_date\": \"2025-09-01\"}", 404) == 0);
  /* an explicit time with an offset, and injection-looking input stays
   * data */
  REQUIRE(req("POST", "/api/v2/dags/" DAG "/dagRuns", TOKEN,
              "{\"logical_date\": \"2025-09-02T06:30:00Z\", \"conf\": "
              "{\"x\": \"'); DROP TABLE dag_run; --\"}}",
              &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_STR(jstr(a.json, "logical_date"), "2025-09-02T06:30:00Z");
  fx_answer_free(&a);
  CHECK(sql_i64("SELECT COUNT(*) FROM dag_run WHERE dag_id = ?", DAG) >= 5);
}

TEST(pause_unpause)
{
  /* PAUSED: what is_paused is after the call (answer and table), -1 when
   * the call is refused */
  static const struct {
    const char *method, *path, *token, *body;
    long status;
    int paused;
  } cases[] = {
      {"PATCH", "/api/v2/dags/it_monitor", TOKEN, "{\"is_paused\": true}",
       200, 1},
      {"POST", "/api/v2/dags/it_monitor", TOKEN, "{\"is_paused\": false}",
       200, 0},
      {"PATCH", "/api/v2/dags/it_monitor", TOKEN, "{\"is_paused\": \"yes\"}",
       422, -1},
      {"PATCH", "/api/v2/dags/nope", TOKEN, "{\"is_paused\": true}", 404, -1},
      {"PATCH", "/api/v2/dags/it_monitor", NULL, "{\"is_paused\": true}",
       401, -1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fx_answer a;
    REQUIRE(req(cases[i].method, cases[i].path, cases[i].token,
                cases[i].body, &a) == 0);
    if (a.status != cases[i].status)
      check_fail_at(__FILE__, __LINE__, "%s %s %s (token %s): status %ld, "
                    "want %ld", cases[i].method, cases[i].path,
                    cases[i].body, cases[i].token ? "yes" : "no", a.status,
                    cases[i].status);
    if (cases[i].paused >= 0) {
      const cJSON *p = jget(a.json, "is_paused");
      if (!cJSON_IsBool(p) || cJSON_IsTrue(p) != cases[i].paused)
        check_fail_at(__FILE__, __LINE__, "%s %s %s: is_paused in %.200s, "
                      "want %d", cases[i].method, cases[i].path,
                      cases[i].body, a.body, cases[i].paused);
      int64_t in_db = sql_i64("SELECT is_paused FROM dag WHERE dag_id = ?",
                              "it_monitor");
      if (in_db != cases[i].paused)
        check_fail_at(__FILE__, __LINE__, "%s %s %s: dag.is_paused %lld, "
                      "want %d", cases[i].method, cases[i].path,
                      cases[i].body, (long long)in_db, cases[i].paused);
    }
    fx_answer_free(&a);
  }
}

TEST(list_runs)
{
  struct fx_answer a;
  int total;
  REQUIRE(get("/api/v2/dags/" DAG "/dagRuns", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  total = (int)jnum(a.json, "total_entries");
  CHECK(total >= 5);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "dag_runs")), total);
  fx_answer_free(&a);
  /* walk back two at a time with the before cursor: every run once,
   * newest first */
  int seen = 0;
  double before = 0, last_id = 1e18;
  for (int page = 0; page < 10; page++) {
    char path[200];
    if (before > 0)
      snprintf(path, sizeof(path), "/api/v2/dags/" DAG
               "/dagRuns?limit=2&before=%.0f", before);
    else
      snprintf(path, sizeof(path), "/api/v2/dags/" DAG "/dagRuns?limit=2");
    REQUIRE(get(path, &a) == 0);
    const cJSON *r;
    cJSON_ArrayForEach(r, jget(a.json, "dag_runs"))
    {
      CHECK(jnum(r, "id") < last_id);
      last_id = jnum(r, "id");
      seen++;
    }
    const cJSON *nb = jget(a.json, "next_before");
    int more = cJSON_IsNumber(nb);
    before = more ? nb->valuedouble : 0;
    fx_answer_free(&a);
    if (!more)
      break;
  }
  CHECK_EQ_INT(seen, total);
  /* forward from the oldest */
  char path[200];
  snprintf(path, sizeof(path), "/api/v2/dags/" DAG "/dagRuns?limit=2&after=%.0f",
           last_id);
  REQUIRE(get(path, &a) == 0);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "dag_runs")), 2);
  CHECK(cJSON_IsNumber(jget(a.json, "next_after")));
  fx_answer_free(&a);
  /* one run */
  REQUIRE(get("/api/v2/dags/" DAG "/dagRuns/" RUN_BAD, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_STR(jstr(a.json, "state"), "failed");
  fx_answer_free(&a);
  /* the same id percent-encoded ('+' as %2B) */
  REQUIRE(get("/api/v2/dags/" DAG
              "/dagRuns/scheduled__2025-08-31T03:00:00%2B09:00",
              &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  fx_answer_free(&a);
  REQUIRE(req_status("GET", "/api/v2/dags/" DAG "/dagRuns/nope", TOKEN, NULL,
                     404) == 0);
  REQUIRE(req_status("GET", "/api/v2/dags/nope/dagRuns", TOKEN, NULL,
                     404) == 0);
  REQUIRE(req_status("GET", "/api/v2/dags/" DAG "/dagRuns?before=x", TOKEN,
                     NULL, 422) == 0);
}

#define TIS "/api/v2/dags/" DAG "/dagRuns/" RUN_BAD "/taskInstances"

TEST(task_instances_and_logs)
{
  struct fx_answer a;
  char h[128];
  REQUIRE(get(TIS, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *tis = jget(a.json, "task_instances");
  CHECK_EQ_INT(cJSON_GetArraySize(tis), 3);
  /* in the DAG's order */
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tis, 0), "task_id"), "extract");
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tis, 1), "task_id"), "transform");
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tis, 1), "state"), "failed");
  CHECK_EQ_INT(jnum(cJSON_GetArrayItem(tis, 1), "try_number"), 2);
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(tis, 2), "state"), "upstream_failed");
  fx_answer_free(&a);
  REQUIRE(get(TIS "/transform", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *att = jget(a.json, "attempts");
  CHECK_EQ_INT(cJSON_GetArraySize(att), 2);
  CHECK_EQ_INT(jnum(cJSON_GetArrayItem(att, 1), "lines"), 3);
  fx_answer_free(&a);
  /* JSON log of attempt 1 */
  REQUIRE(get(TIS "/transform/logs/1", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *content = jget(a.json, "content");
  CHECK_EQ_INT(cJSON_GetArraySize(content), 2);
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(content, 1), "line"),
               "ZeroDivisionError: division by zero");
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(content, 1), "stream"), "stderr");
  CHECK_EQ_STR(jstr(a.json, "task_state"), "failed");
  const char *tok = jstr(a.json, "continuation_token");
  REQUIRE(tok != NULL);
  char path[300];
  snprintf(path, sizeof(path), TIS "/transform/logs/1?after=%s", tok);
  fx_answer_free(&a);
  /* nothing after the cursor */
  REQUIRE(get(path, &a) == 0);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "content")), 0);
  fx_answer_free(&a);
  /* cursor paging one line at a time */
  REQUIRE(get(TIS "/transform/logs/2?limit=1", &a) == 0);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "content")), 1);
  CHECK(cJSON_IsTrue(jget(a.json, "more")));
  fx_answer_free(&a);
  /* text and JSON lines */
  REQUIRE(req_port(g_port, "GET", TIS "/transform/logs/2", TOKEN, NULL,
                   "Accept: text/plain", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(header(&a, "Content-Type", h, sizeof(h)) == 0 &&
        strncmp(h, "text/plain", 10) == 0);
  CHECK(strstr(a.body, "stderr ValueError: column credit_mix has <b>no</b> "
                       "values\n") != NULL);
  CHECK(header(&a, "X-Continuation-Token", h, sizeof(h)) == 0);
  fx_answer_free(&a);
  REQUIRE(get(TIS "/transform/logs/2?format=jsonl", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  int lines = 0;
  for (char *p = a.body; (p = strchr(p, '\n')) != NULL; p++)
    lines++;
  CHECK_EQ_INT(lines, 3);
  cJSON *first = cJSON_ParseWithLength(a.body, strcspn(a.body, "\n"));
  CHECK(first && jstr(first, "line") &&
        strstr(jstr(first, "line"), "attempt 2"));
  cJSON_Delete(first);
  fx_answer_free(&a);
  /* attempts that did not start, unknown tasks */
  REQUIRE(req_status("GET", TIS "/transform/logs/3", TOKEN, NULL, 404) == 0);
  REQUIRE(req_status("GET", TIS "/transform/logs/0", TOKEN, NULL, 422) == 0);
  REQUIRE(req_status("GET", TIS "/nope/logs/1", TOKEN, NULL, 404) == 0);
  REQUIRE(req_status("GET", TIS "/nope", TOKEN, NULL, 404) == 0);
  /* the grid: runs x tasks in one answer */
  REQUIRE(get("/api/v2/dags/" DAG "/grid?limit=10", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *runs = jget(a.json, "dag_runs");
  const cJSON *bad = find_by(runs, "dag_run_id", RUN_BAD);
  REQUIRE(bad != NULL);
  CHECK_EQ_STR(jstr(jget(jget(bad, "task_instances"), "transform"), "state"),
               "failed");
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "tasks")), 3);
  fx_answer_free(&a);
}

TEST(unknown_things)
{
  static const char *const paths[] = {
      "/api/v2/dags/nope",
      "/api/v2/dags/nope/grid",
      "/api/v2/models/nope",
      "/api/v2/models/nope/drift",
      "/api/v2/models/nope/versions/1/trials",
      "/api/v2/models/" MODEL "/versions/99/trials",
      "/api/v2/models/..%2F..%2Fetc/versions/1/trials",
      "/api/v2/nope",
  };
  for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
    struct fx_answer a;
    REQUIRE(get(paths[i], &a) == 0);
    if (a.status != 404)
      fprintf(stderr, "  %s -> %ld\n", paths[i], a.status);
    CHECK_EQ_INT(a.status, 404);
    CHECK(jstr(a.json, "error") != NULL);
    fx_answer_free(&a);
  }
  REQUIRE(req_status("POST", "/api/v2/models/nope/promote", TOKEN,
                     "{\"version\": 1}", 404) == 0);
  REQUIRE(req_status("POST", "/api/v2/models/nope/rollback", TOKEN, "{}",
                     404) == 0);
}

static int alias_file(void)
{
  char p[800];
  snprintf(p, sizeof(p), "%s/" MODEL "/aliases/production", g_reg);
  char *t = fx_read_file(p, NULL);
  int v = t ? atoi(t) : 0;
  free(t);
  return v;
}

static int served(void)
{
  struct fx_answer a;
  int v = 0;
  if (req("GET", "/metadata", NULL, NULL, &a) == 0 && a.status == 200)
    v = atoi(jstr(a.json, "model_version") ? jstr(a.json, "model_version")
                                           : "0");
  fx_answer_free(&a);
  return v;
}

TEST(models)
{
  struct fx_answer a;
  REQUIRE(get("/api/v2/models", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *m = find_by(jget(a.json, "models"), "name", MODEL);
  REQUIRE(m != NULL);
  CHECK_EQ_INT(jnum(m, "versions"), 2);
  CHECK_EQ_INT(jnum(m, "latest_version"), 2);
  fx_answer_free(&a);
  REQUIRE(get("/api/v2/models/" MODEL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *vs = jget(a.json, "versions");
  CHECK_EQ_INT(cJSON_GetArraySize(vs), 2);
  const cJSON *v2 = cJSON_GetArrayItem(vs, 0);
  CHECK_EQ_INT(jnum(v2, "version"), 2);
  CHECK(jnum(jget(v2, "metrics"), "accuracy") > 0.3);
  CHECK_EQ_STR(jstr(jget(v2, "params"), "max_depth"), "5");
  CHECK_EQ_STR(jstr(jget(v2, "lineage"), "logical_date"), "2025-09-01");
  CHECK_EQ_STR(jstr(jget(v2, "lineage"), "dag_run_id"), "ct-2025-09-02");
  CHECK(jstr(jget(v2, "lineage"), "data_sha256") != NULL);
  CHECK_EQ_STR(jstr(a.json, "selection_metric"), "accuracy");
  CHECK(cJSON_IsArray(jget(a.json, "deployments")));
  fx_answer_free(&a);
  /* trials of v2: its two runs, the kept one marked */
  REQUIRE(get("/api/v2/models/" MODEL "/versions/2/trials", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *tr = jget(a.json, "trials");
  CHECK_EQ_INT(cJSON_GetArraySize(tr), 2);
  const cJSON *best = find_by(tr, "run_id", "ct-2025-09-02-t01");
  REQUIRE(best != NULL);
  CHECK(cJSON_IsTrue(jget(best, "is_best")));
  CHECK(jnum(jget(best, "metrics"), "accuracy") > 0.3);
  CHECK_EQ_STR(jstr(jget(best, "params"), "max_depth"), "5");
  fx_answer_free(&a);
}

TEST(promote_and_rollback)
{
  struct fx_answer a;
  /* nothing recorded yet: production was set on disk (v1) */
  CHECK_EQ_INT(alias_file(), 1);
  CHECK_EQ_INT(served(), 1);
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/rollback", TOKEN, "",
                     409) == 0);
  /* bad bodies and versions */
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
                     "{\"version\": \"two\"}", 422) == 0);
  REQUIRE(req("POST", "/api/v2/models/" MODEL "/promote", TOKEN, "{\"vers",
              &a) == 0);
  CHECK_EQ_INT(a.status, 422);
  fx_answer_free(&a);
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
                     "{\"version\": 7}", 404) == 0);
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
                     "{\"version\": 1}", 409) == 0);
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/promote", NULL,
                     "{\"version\": 2}", 401) == 0);
  CHECK_EQ_INT(alias_file(), 1);
  /* promote v2 */
  REQUIRE(req("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
              "{\"version\": 2, \"reason\": \"it test\"}", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(jnum(a.json, "from_version"), 1);
  CHECK_EQ_INT(jnum(a.json, "to_version"), 2);
  CHECK_EQ_INT(jnum(jget(a.json, "serving"), "version"), 2);
  fx_answer_free(&a);
  CHECK_EQ_INT(alias_file(), 2);
  CHECK_EQ_INT(served(), 2);
  CHECK_EQ_INT(sql_i64("SELECT COUNT(*) FROM deployment WHERE model = ? AND "
                       "action = 'promote' AND to_version = 2 AND "
                       "from_version = 1 AND reason = 'it test'",
                       MODEL),
               1);
  /* promote v1 back, then roll back: the history says v2 */
  REQUIRE(req_status("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
                     "{\"version\": \"1\"}", 200) == 0);
  CHECK_EQ_INT(served(), 1);
  REQUIRE(req("POST", "/api/v2/models/" MODEL "/rollback", TOKEN, NULL, &a) ==
          0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(jnum(a.json, "from_version"), 1);
  CHECK_EQ_INT(jnum(a.json, "to_version"), 2);
  fx_answer_free(&a);
  CHECK_EQ_INT(alias_file(), 2);
  CHECK_EQ_INT(served(), 2);
  CHECK_EQ_INT(sql_i64("SELECT COUNT(*) FROM deployment WHERE model = ? AND "
                       "action = 'rollback' AND to_version = 2",
                       MODEL),
               1);
  /* the model page shows it */
  REQUIRE(get("/api/v2/models/" MODEL, &a) == 0);
  CHECK_EQ_INT(jnum(a.json, "production_version"), 2);
  CHECK_EQ_INT(jnum(a.json, "served_version"), 2);
  CHECK(jstr(a.json, "production_since") != NULL);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "deployments")), 3);
  fx_answer_free(&a);
}

TEST(serving_figures)
{
  struct fx_answer a;
  char *line = NULL;
  struct rows rq = {0};
  REQUIRE(load_requests(&rq, 300) == 0);
  int ok = 0;
  for (size_t i = 0; i < 20; i++) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "data", cJSON_Duplicate(rq.items[i], 1));
    line = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (req("POST", "/predict", NULL, line, &a) == 0 && a.status == 200)
      ok++;
    fx_answer_free(&a);
    free(line);
  }
  rows_free(&rq);
  CHECK_EQ_INT(ok, 20);
  REQUIRE(get("/api/v2/serving", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *tot = jget(a.json, "totals");
  CHECK(jnum(tot, "items") >= 20);
  CHECK(jnum(tot, "requests") >= 20);
  double by_class = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, jget(jget(tot, "predictions"), MODEL))
  by_class += c->valuedouble;
  CHECK(by_class >= 20);
  CHECK(cJSON_IsObject(jget(a.json, "log")));
  CHECK(cJSON_IsArray(jget(a.json, "series")));
  CHECK(cJSON_IsTrue(jget(jget(a.json, "log"), "db_up")));
  CHECK_EQ_STR(jstr(a.json, "default_model"), MODEL);
  fx_answer_free(&a);
  /* the sampler runs every 500 ms here: within a few seconds the ring
   * holds intervals that saw the predictions */
  double seen = 0;
  for (int i = 0; i < 40 && seen < 20; i++) {
    fx_msleep(250);
    REQUIRE(get("/api/v2/serving", &a) == 0);
    seen = 0;
    const cJSON *pt;
    cJSON_ArrayForEach(pt, jget(a.json, "series")) seen += jnum(pt, "requests");
    fx_answer_free(&a);
  }
  CHECK(seen >= 20);
}

TEST(drift_reports)
{
  struct fx_answer a;
  REQUIRE(get("/api/v2/models/" MODEL "/drift", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *r = jget(a.json, "reports");
  CHECK_EQ_INT(cJSON_GetArraySize(r), 3);
  CHECK_EQ_STR(jstr(cJSON_GetArrayItem(r, 0), "verdict"), "drift");
  CHECK_NEAR(jnum(jget(jget(cJSON_GetArrayItem(r, 0), "scores"),
                       "annual_income"),
                  "psi"),
             0.31, 1e-9);
  CHECK_NEAR(jnum(a.json, "threshold"), 0.2, 1e-9);
  fx_answer_free(&a);
  REQUIRE(get("/api/v2/models/" MODEL "/drift?limit=1", &a) == 0);
  CHECK_EQ_INT(cJSON_GetArraySize(jget(a.json, "reports")), 1);
  CHECK(cJSON_IsNumber(jget(a.json, "next_before")));
  fx_answer_free(&a);
}

TEST(console_assets)
{
  struct fx_answer a;
  char h[512], etag[128];
  REQUIRE(req("GET", "/", NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(header(&a, "Content-Type", h, sizeof(h)) == 0 &&
        strncmp(h, "text/html", 9) == 0);
  CHECK(header(&a, "Content-Security-Policy", h, sizeof(h)) == 0 &&
        strstr(h, "default-src 'self'"));
  CHECK(strstr(a.body, "/console/app.js") != NULL);
  fx_answer_free(&a);
  REQUIRE(req("GET", "/console/app.js", NULL, NULL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(header(&a, "Content-Type", h, sizeof(h)) == 0 &&
        strstr(h, "javascript"));
  REQUIRE(header(&a, "ETag", etag, sizeof(etag)) == 0);
  /* the embedded file is the source file */
  char p[1200];
  snprintf(p, sizeof(p), "%s/web/app.js", g_src);
  char *src = fx_read_file(p, NULL);
  CHECK(src && strcmp(src, a.body) == 0);
  free(src);
  fx_answer_free(&a);
  char inm[200];
  snprintf(inm, sizeof(inm), "If-None-Match: %s", etag);
  REQUIRE(req_port(g_port, "GET", "/console/app.js", NULL, NULL, inm, &a) ==
          0);
  CHECK_EQ_INT(a.status, 304);
  fx_answer_free(&a);
  REQUIRE(req_status("GET", "/console/style.css", NULL, NULL, 200) == 0);
  REQUIRE(req_status("GET", "/console/nope.js", NULL, NULL, 404) == 0);
}

/* MariaDB away: the admin endpoints that need it answer 503 quickly, the
 * registry-only ones still work; back to 200 when it returns. */
TEST(database_down)
{
  struct fx_answer a;
  char cmd[2048];
  snprintf(cmd, sizeof(cmd), "%s/tests/mariadb.sh stop %s >/dev/null 2>&1",
           g_src, g_dbdir);
  REQUIRE(fx_run_cmd(cmd) == 0);
  /* no REQUIRE until MariaDB runs again: the later tests need it */
  if (get("/api/v2/dags/" DAG "/dagRuns", &a) == 0) {
    CHECK_EQ_INT(a.status, 503);
    CHECK(jstr(a.json, "error") &&
          strstr(jstr(a.json, "error"), "database"));
  } else {
    CHECK(!"request failed");
  }
  fx_answer_free(&a);
  if (req("POST", "/api/v2/models/" MODEL "/promote", TOKEN,
          "{\"version\": 1}", &a) == 0)
    CHECK_EQ_INT(a.status, 503);
  else
    CHECK(!"request failed");
  fx_answer_free(&a);
  CHECK_EQ_INT(alias_file(), 2); /* not moved without a record */
  if (get("/api/v2/models/" MODEL, &a) == 0) {
    CHECK_EQ_INT(a.status, 200);
    CHECK(jstr(a.json, "deployments_unavailable") != NULL);
  } else {
    CHECK(!"request failed");
  }
  fx_answer_free(&a);
  snprintf(cmd, sizeof(cmd), "%s/tests/mariadb.sh start %s >/dev/null 2>&1",
           g_src, g_dbdir);
  REQUIRE(fx_run_cmd(cmd) == 0);
  int st = 0;
  for (int i = 0; i < 100 && st != 200; i++) {
    REQUIRE(get("/api/v2/dags/" DAG "/dagRuns", &a) == 0);
    st = (int)a.status;
    fx_answer_free(&a);
    if (st != 200)
      fx_msleep(200);
  }
  CHECK_EQ_INT(st, 200);
}

TEST(clean_stop)
{
  CHECK_EQ_INT(fx_daemon_term(&g_pid), 0);
  g_pid = 0;
}

/* ---- set-up ------------------------------------------------------------------ */

static int fixture(const char *dir, int port, const char *db, int set_prod)
{
  char reg[700];
  snprintf(reg, sizeof(reg), "%s/registry", dir);
  if (make_registry(reg, set_prod) || write_files(dir, port, db, 0) ||
      setup_db(dir, db))
    return -1;
  if (!set_prod) {
    /* production v1 through a recorded deploy, as a CT run leaves it */
    struct registry *r = NULL;
    struct err e = {0};
    if (registry_open(reg, &r, &e) ||
        registry_alias_set(r, MODEL, REGISTRY_PRODUCTION, 1, NULL, &e)) {
      registry_close(r);
      return -1;
    }
    registry_close(r);
    if (sql_exec("INSERT INTO deployment (model, alias, from_version, "
                 "to_version, action, reason, actor, created_at) VALUES ('" MODEL
                 "', 'production', NULL, 1, 'deploy', 'first model of the "
                 "CT DAG', 'task:deploy', UTC_TIMESTAMP(6) - INTERVAL 1 DAY)"))
      return -1;
  }
  return 0;
}

static int env_paths(void)
{
  const char *s = getenv("MLOPSD_SRC"), *b = getenv("MLOPSD_BIN"),
             *d = getenv("MLOPSD_TEST_DB_DIR");
  if (!s || !b) {
    fprintf(stderr, "test_admin: MLOPSD_SRC and MLOPSD_BIN must be set "
                    "(tests/run.sh)\n");
    return -1;
  }
  snprintf(g_src, sizeof(g_src), "%s", s);
  snprintf(g_bin, sizeof(g_bin), "%s", b);
  snprintf(g_dbdir, sizeof(g_dbdir), "%s", d ? d : "");
  return 0;
}

static int setup(void)
{
  if (env_paths() || !g_dbdir[0])
    return -1;
  if (fx_tmpdir(g_tmp, sizeof(g_tmp), "it-admin"))
    return -1;
  snprintf(g_reg, sizeof(g_reg), "%s/registry", g_tmp);
  snprintf(g_cfg, sizeof(g_cfg), "%s/mlopsd.yaml", g_tmp);
  snprintf(g_log, sizeof(g_log), "%s/daemon.log", g_tmp);
  g_port = fx_free_port();
  if (g_port <= 0 || fixture(g_tmp, g_port, g_db, 1))
    return -1;
  g_pid = daemon_spawn(g_cfg, g_log, g_db, TOKEN);
  if (wait_up(g_port, 60)) {
    fprintf(stderr, "daemon did not come up; log %s\n", g_log);
    return -1;
  }
  return 0;
}

/* A gate decision's numbers (sql/migrations/070) reach the deployment
 * rows as a `gate` object, the names web/app.js's gateOf reads; rows
 * without them carry gate null. */
TEST(deployment_rows_carry_the_gate)
{
  struct fx_answer a;
  REQUIRE(sql_exec("INSERT INTO deployment (model, alias, from_version, "
                   "to_version, action, reason, actor, gate_n, "
                   "gate_difference, gate_ci_low, gate_ci_high, "
                   "gate_p_value, gate_level, gate_max_regression, "
                   "gate_min_rows, gate_candidate_score, "
                   "gate_production_score, gate_metric, gate_method, "
                   "created_at) VALUES ('" MODEL "', 'production', 2, 3, "
                   "'skip', 'validate: candidate 3 fails: too few', "
                   "'dag:t/r', 498, -0.008, -0.041, 0.025, 0.68, 0.95, "
                   "0.02, 2310, 0.61, 0.618, 'accuracy', 'exact McNemar', "
                   "UTC_TIMESTAMP(6))") ==
          0);
  REQUIRE(get("/api/v2/models/" MODEL, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  const cJSON *d = find_by(jget(a.json, "deployments"), "action", "skip");
  REQUIRE(d != NULL);
  const cJSON *g = jget(d, "gate");
  REQUIRE(cJSON_IsObject(g));
  CHECK_EQ_INT(jnum(g, "n"), 498);
  CHECK(fabs(jnum(g, "difference") + 0.008) < 1e-12);
  const cJSON *iv = jget(g, "interval");
  CHECK(cJSON_IsArray(iv) && cJSON_GetArraySize(iv) == 2);
  CHECK(fabs(cJSON_GetArrayItem(iv, 0)->valuedouble + 0.041) < 1e-12);
  CHECK(fabs(jnum(g, "p_value") - 0.68) < 1e-12);
  CHECK(fabs(jnum(g, "max_regression") - 0.02) < 1e-12);
  CHECK_EQ_INT(jnum(g, "min_rows"), 2310);
  CHECK_EQ_STR(jstr(g, "metric"), "accuracy");
  const cJSON *p = find_by(jget(a.json, "deployments"), "action", "promote");
  REQUIRE(p != NULL);
  CHECK(cJSON_IsNull(jget(p, "gate")));
  fx_answer_free(&a);
}

int main(int argc, char **argv)
{
  curl_global_init(CURL_GLOBAL_ALL);
  if (argc == 5 && strcmp(argv[1], "--fixture") == 0) {
    int rc = env_paths() == 0 &&
                     fixture(argv[2], atoi(argv[3]), argv[4], 0) == 0
                 ? 0
                 : 1;
    db_pool_destroy(g_pool);
    curl_global_cleanup();
    return rc;
  }
  if (setup() != 0) {
    fprintf(stderr, "test_admin: set-up failed (log %s)\n", g_log);
    if (g_pid > 0) {
      kill(g_pid, SIGKILL);
      waitpid(g_pid, NULL, 0);
    }
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  RUN(auth_required);
  RUN(token_off);
  RUN(list_dags);
  RUN(trigger_run);
  RUN(pause_unpause);
  RUN(list_runs);
  RUN(task_instances_and_logs);
  RUN(unknown_things);
  RUN(models);
  RUN(promote_and_rollback);
  RUN(deployment_rows_carry_the_gate);
  RUN(serving_figures);
  RUN(drift_reports);
  RUN(console_assets);
  RUN(database_down);
  RUN(clean_stop);
  if (g_pid > 0)
    fx_daemon_term(&g_pid);
  db_pool_destroy(g_pool);
  curl_global_cleanup();
  int rc = check_done();
  if (rc != 0 || getenv("MLOPSD_KEEP_TMP"))
    fprintf(stderr, "test_admin: files kept in %s\n", g_tmp);
  else {
    fx_rmtree(g_tmp);
  }
  return rc;
}
