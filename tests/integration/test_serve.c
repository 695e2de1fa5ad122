/* test_serve.c - `mlopsd serve` over real HTTP against a real MariaDB.
 *
 * The test trains two small versions of the course model (spec
 * config/models/credit_score_classification.yaml, rows of
 * shared/data/credit/credit_score_features.csv with their labels) with
 * the train_/prep_ API into a registry in a temp dir, runs `mlopsd db
 * init` on its own database it_serve, starts the daemon binary
 * ($MLOPSD_BIN) on a free port and talks to it with libcurl:
 *
 *   valid single and batch predictions (predict_requests.jsonl), every
 *   validation rule and every kind of bad body (each the right 4xx with a
 *   clear message, the daemon still serving), metadata, readiness,
 *   metrics, log rows == 200 answers, hot swap under load, MariaDB
 *   stopped under a request stream (every answered row stored exactly
 *   once), kill -9 with rows in the spool (replayed exactly once after a
 *   restart) and a graceful SIGTERM that flushes the log.
 *
 * `test_serve --make-registry DIR [VERSIONS]` only builds the registry
 * (bench/bench_serve.sh uses it).
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* check: tsan */
#include "check.h"
#include "fixture.h"
#include "plog_int.h" /* plog_json_compact: what features holds */
#include "version_fx.h"
#include "mlopsd/db.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/train.h"

#define MODEL "credit_score_classification"
#define DBNAME "it_serve"

static char g_src[1024], g_bin[1024], g_tmp[256], g_cfg[512], g_reg[512],
    g_dbdir[512], g_log[512];
static int g_port;
static pid_t g_pid;
static char **g_lines; /* predict_requests.jsonl */
static char *g_lines_text;
static size_t g_nlines;
static struct db_pool *g_db;
static int g_v1, g_v2;

/* ---- small helpers ------------------------------------------------------ */

/* ---- CSV (RFC 4180: quoted fields may hold commas) ---------------------- */

struct csv {
  char ***rows; /* rows[i][j] */
  size_t nrows, ncols;
  char **header;
  char *text; /* fields point into it */
};

static void csv_free(struct csv *c)
{
  for (size_t i = 0; i < c->nrows; i++)
    free(c->rows[i]);
  free(c->rows);
  free(c->header);
  free(c->text);
  memset(c, 0, sizeof(*c));
}

static char **csv_line(char **pp, size_t *nf)
{
  char *p = *pp;
  size_t cap = 32, n = 0;
  char **f = malloc(cap * sizeof(*f));
  for (;;) {
    char *out = p, *start = p;
    if (*p == '"') {
      p++;
      start = out = p;
      for (;;) {
        if (*p == '"' && p[1] == '"') {
          *out++ = '"';
          p += 2;
        } else if (*p == '"') {
          p++;
          break;
        } else if (!*p) {
          break;
        } else {
          *out++ = *p++;
        }
      }
    } else {
      while (*p && *p != ',' && *p != '\n' && *p != '\r')
        out++, p++;
    }
    char end = *p;
    if (end)
      p++;
    *out = 0;
    if (n == cap)
      f = realloc(f, (cap *= 2) * sizeof(*f));
    f[n++] = start;
    if (end == ',')
      continue;
    while (*p == '\r' || *p == '\n')
      p++;
    break;
  }
  *pp = p;
  *nf = n;
  return f;
}

static int csv_load(const char *path, struct csv *c)
{
  char *text = fx_read_file(path, NULL), *p = text;
  if (!text)
    return -1;
  memset(c, 0, sizeof(*c));
  c->text = text;
  c->header = csv_line(&p, &c->ncols);
  size_t cap = 1024;
  c->rows = malloc(cap * sizeof(*c->rows));
  while (*p) {
    size_t nf;
    char **f = csv_line(&p, &nf);
    if (nf != c->ncols) {
      free(f);
      continue;
    }
    if (c->nrows == cap)
      c->rows = realloc(c->rows, (cap *= 2) * sizeof(*c->rows));
    c->rows[c->nrows++] = f;
  }
  return 0;
}

static int csv_col(const struct csv *c, const char *name)
{
  for (size_t j = 0; j < c->ncols; j++)
    if (strcmp(c->header[j], name) == 0)
      return (int)j;
  return -1;
}

/* ---- training a registry version ---------------------------------------- */

struct trainset {
  struct spec *spec;
  size_t n;
  struct prep_column *cols;
  float *y;
  struct csv feat; /* string columns point into it */
};

static void trainset_free(struct trainset *ts)
{
  for (size_t k = 0; ts->cols && k < ts->spec->n_features; k++) {
    free((void *)ts->cols[k].num);
    free((void *)ts->cols[k].str);
  }
  free(ts->cols);
  free(ts->y);
  csv_free(&ts->feat);
  spec_destroy(ts->spec);
  memset(ts, 0, sizeof(*ts));
}

static int trainset_load(const char *src, struct trainset *ts)
{
  char path[2048];
  struct err e = {0};
  struct csv lab;
  memset(ts, 0, sizeof(*ts));
  struct csv *feat = &ts->feat;
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", src, MODEL);
  if (spec_load(path, &ts->spec, &e) != ERR_OK) {
    fprintf(stderr, "spec: %s\n", e.msg);
    return -1;
  }
  if (csv_load(fx_data_path("credit_score_features.csv"), feat) ||
      csv_load(fx_data_path("credit_score.csv"), &lab)) {
    fprintf(stderr, "trainset: cannot read the sample data\n");
    return -1;
  }
  int lid = csv_col(&lab, "id"), ldate = csv_col(&lab, "date"),
      lcs = csv_col(&lab, "credit_score");
  int fid = csv_col(feat, "id"), fdate = csv_col(feat, "date");
  const struct spec *sp = ts->spec;
  size_t nf = sp->n_features;
  int *fc = calloc(nf, sizeof(int));
  for (size_t k = 0; k < nf; k++)
    if ((fc[k] = csv_col(feat, sp->features[k].name)) < 0) {
      fprintf(stderr, "trainset: no column %s\n", sp->features[k].name);
      return -1;
    }
  ts->cols = calloc(nf, sizeof(*ts->cols));
  double **num = calloc(nf, sizeof(double *));
  const char ***str = calloc(nf, sizeof(char **));
  for (size_t k = 0; k < nf; k++) {
    if (sp->features[k].kind == SPEC_NUMERIC)
      ts->cols[k].num = num[k] = malloc(feat->nrows * sizeof(double));
    else
      ts->cols[k].str = str[k] = malloc(feat->nrows * sizeof(char *));
  }
  ts->y = malloc(feat->nrows * sizeof(float));
  for (size_t i = 0; i < feat->nrows; i++) {
    char **r = feat->rows[i];
    int cls = -1;
    for (size_t j = 0; j < lab.nrows && cls < 0; j++)
      if (!strcmp(lab.rows[j][lid], r[fid]) &&
          !strcmp(lab.rows[j][ldate], r[fdate]))
        cls = spec_class_index(sp, lab.rows[j][lcs]);
    if (cls < 0)
      continue;
    size_t n = ts->n++;
    ts->y[n] = (float)cls;
    for (size_t k = 0; k < nf; k++) {
      const char *v = r[fc[k]];
      if (sp->features[k].kind == SPEC_NUMERIC)
        num[k][n] = *v ? strtod(v, NULL) : NAN;
      else
        str[k][n] = *v ? v : NULL;
    }
  }
  free(num);
  free(str);
  free(fc);
  csv_free(&lab);
  if (ts->n <= 100)
    fprintf(stderr, "trainset: only %zu labelled rows\n", ts->n);
  return ts->n > 100 ? 0 : -1;
}

/* Train one version (depth, rounds) and point production at it if asked. */
static int make_version(struct registry *reg, struct trainset *ts, int depth,
                        int rounds, int *version)
{
  struct err e = {0};
  struct prep_input in = {ts->n, ts->spec->n_features, ts->cols};
  struct fx_fit f;
  struct registry_draft *d = NULL;
  int ok = 0;
  if (fx_fit(ts->spec, &in, ts->y, depth, rounds, &f, &e) ||
      fx_draft_begin(reg, MODEL, &f, &d, &e))
    goto out;
  /* meta.json */
  cJSON *meta = cJSON_CreateObject();
  char ct[32];
  time_t t = time(NULL);
  strftime(ct, sizeof(ct), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
  cJSON_AddStringToObject(meta, "creation_time", ct);
  cJSON_AddItemToObject(meta, "params", fx_fit_params(&f));
  cJSON *met = cJSON_AddObjectToObject(meta, "metrics");
  cJSON_AddNumberToObject(met, "accuracy", f.res.metrics.accuracy);
  cJSON_AddNumberToObject(met, "logloss", f.res.metrics.logloss);
  if (fx_draft_json(d, "meta.json", meta, 1, &e))
    goto out;
  /* sample.json: request objects the server verifies the evaluator on */
  cJSON *sample = cJSON_CreateObject();
  cJSON *rows = cJSON_AddArrayToObject(sample, "rows");
  for (size_t i = 0; i < g_nlines && i < 200; i++) {
    cJSON *l = cJSON_Parse(g_lines[i]);
    cJSON *dd = cJSON_DetachItemFromObject(l, "data");
    cJSON_AddItemToArray(rows, dd);
    cJSON_Delete(l);
  }
  ok = fx_draft_json(d, "sample.json", sample, 0, &e) == 0;
out:
  return fx_version_end(&f, &d, ok, version, &e);
}

static int load_lines(void)
{
  size_t len;
  char *t = fx_read_file(fx_data_path("predict_requests.jsonl"), &len);
  if (!t)
    return -1;
  g_lines_text = t;
  size_t cap = 8192;
  g_lines = malloc(cap * sizeof(char *));
  for (char *p = t; *p;) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = 0;
    if (*p) {
      if (g_nlines == cap)
        g_lines = realloc(g_lines, (cap *= 2) * sizeof(char *));
      g_lines[g_nlines++] = p;
    }
    if (!nl)
      break;
    p = nl + 1;
  }
  return 0;
}

/* Build a registry with two versions; production -> v1. */
static int make_registry(const char *dir, int *v1, int *v2)
{
  struct registry *reg = NULL;
  struct err e = {0};
  struct trainset ts;
  if (!g_lines && load_lines())
    return -1;
  if (registry_open(dir, &reg, &e)) {
    fprintf(stderr, "registry: %s\n", e.msg);
    return -1;
  }
  if (trainset_load(g_src, &ts))
    return -1;
  int rc = -1;
  if (!make_version(reg, &ts, 4, 30, v1) &&
      !make_version(reg, &ts, 2, 8, v2) &&
      !registry_alias_set(reg, MODEL, REGISTRY_PRODUCTION, *v1, NULL, &e))
    rc = 0;
  trainset_free(&ts);
  registry_close(reg);
  return rc;
}

static int set_production(int version)
{
  struct registry *reg = NULL;
  struct err e = {0};
  if (registry_open(g_reg, &reg, &e))
    return -1;
  int rc = registry_alias_set(reg, MODEL, REGISTRY_PRODUCTION, version, NULL,
                              &e)
               ? -1
               : 0;
  registry_close(reg);
  return rc;
}

/* ---- HTTP client --------------------------------------------------------- */

/* method "GET" or "POST"; ctype NULL = application/json. */
static int req(const char *method, const char *path, const char *ctype,
               const char *body, size_t len, struct fx_answer *a)
{
  char ct[256];
  const char *h[2] = {NULL, NULL};
  int post = strcmp(method, "POST") == 0;
  if (post) {
    snprintf(ct, sizeof(ct), "Content-Type: %s",
             ctype ? ctype : "application/json");
    h[0] = ct;
  }
  return fx_http(g_port, method, path, h, post ? (body ? body : "") : NULL,
                 len, a);
}

static int post(const char *path, const char *body, struct fx_answer *a)
{
  return req("POST", path, NULL, body, strlen(body), a);
}

static int get(const char *path, struct fx_answer *a)
{
  return req("GET", path, NULL, NULL, 0, a);
}

static const char *jstr(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The field message of a 400 answer, or NULL. */
static const char *field_msg(const struct fx_answer *a, const char *field)
{
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(a->json, "fields");
  return jstr(f, field);
}

/* Value of an unlabelled metric in /metrics, or -1. */
static double metric(const char *name)
{
  struct fx_answer a;
  double v = -1;
  if (get("/metrics", &a) || a.status != 200) {
    fx_answer_free(&a);
    return -1;
  }
  size_t nl = strlen(name);
  for (char *p = a.body; p && *p;) {
    if (strncmp(p, name, nl) == 0 && p[nl] == ' ') {
      v = strtod(p + nl + 1, NULL);
      break;
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  fx_answer_free(&a);
  return v;
}

/* A request line with data.customer_id replaced by cid (a string). */
static char *with_cid(size_t line, const char *cid)
{
  cJSON *l = cJSON_Parse(g_lines[line % g_nlines]);
  cJSON *d = cJSON_GetObjectItemCaseSensitive(l, "data");
  cJSON_ReplaceItemInObjectCaseSensitive(d, "customer_id",
                                         cJSON_CreateString(cid));
  char *t = cJSON_PrintUnformatted(l);
  cJSON_Delete(l);
  return t;
}

/* A request line's data with one member replaced (json text of value, or
 * NULL to remove it). */
static char *with_field(size_t line, const char *field, const char *value)
{
  cJSON *l = cJSON_Parse(g_lines[line]);
  cJSON *d = cJSON_GetObjectItemCaseSensitive(l, "data");
  if (value) {
    cJSON *v = cJSON_Parse(value);
    if (cJSON_GetObjectItemCaseSensitive(d, field))
      cJSON_ReplaceItemInObjectCaseSensitive(d, field, v);
    else
      cJSON_AddItemToObject(d, field, v);
  } else {
    cJSON_DeleteItemFromObjectCaseSensitive(d, field);
  }
  char *t = cJSON_PrintUnformatted(l);
  cJSON_Delete(l);
  return t;
}

/* ---- database ------------------------------------------------------------ */

static int64_t db_count(const char *where)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  char sql[512];
  int64_t n = -1;
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM credit_predictions_api_log WHERE %s", where);
  if (db_acquire(g_db, 10000, &c, &e) == ERR_OK) {
    if (db_query_i64(c, sql, NULL, 0, &n, &e) != ERR_OK)
      fprintf(stderr, "db_count: %s\n", e.msg);
    db_release(g_db, c);
  } else {
    fprintf(stderr, "db_count: %s\n", e.msg);
  }
  return n;
}

struct idset {
  char **ids;
  size_t n, cap;
  pthread_mutex_t mu;
};

static void idset_add(struct idset *s, const char *id)
{
  pthread_mutex_lock(&s->mu);
  if (s->n == s->cap)
    s->ids = realloc(s->ids, (s->cap = s->cap ? s->cap * 2 : 256) *
                                 sizeof(char *));
  s->ids[s->n++] = strdup(id);
  pthread_mutex_unlock(&s->mu);
}

struct rowcount {
  struct idset *want;
  size_t found, dup, extra;
  char *seen; /* per want id */
};

static int count_row(void *user, const struct db_row *r)
{
  struct rowcount *rc = user;
  const char *id = db_row_str(r, 0, NULL);
  int64_t n = db_row_i64(r, 1);
  for (size_t i = 0; i < rc->want->n; i++) {
    if (strcmp(rc->want->ids[i], id) == 0) {
      rc->seen[i] = 1;
      rc->found++;
      if (n != 1)
        rc->dup++;
      return 0;
    }
  }
  rc->extra++;
  return 0;
}

/* N predictions with customer ids PREFIX000000.., those answered 200 added
 * to OK. */
static void post_ids(struct idset *ok, const char *prefix, int n)
{
  for (int i = 0; i < n; i++) {
    char cid[40], *b;
    snprintf(cid, sizeof(cid), "%s%06d", prefix, i);
    b = with_cid((size_t)i, cid);
    struct fx_answer a;
    if (post("/predict", b, &a) == 0 && a.status == 200)
      idset_add(ok, cid);
    fx_answer_free(&a);
    free(b);
  }
}

static void idset_free(struct idset *s)
{
  for (size_t i = 0; i < s->n; i++)
    free(s->ids[i]);
  free(s->ids);
}

/* Every id of want has exactly one row whose customer_id starts with
 * prefix; no row with that prefix is unexpected. */
static int check_exactly_once(struct idset *want, const char *prefix,
                              size_t *found, size_t *dup, size_t *extra)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  char like[32];
  struct rowcount rc = {want, 0, 0, 0, calloc(want->n + 1, 1)};
  snprintf(like, sizeof(like), "%s%%", prefix);
  struct db_val p = DB_V_STR(like);
  int ok = -1;
  if (db_acquire(g_db, 10000, &c, &e) == ERR_OK) {
    if (db_query(c,
                 "SELECT customer_id, COUNT(*) FROM credit_predictions_api_log"
                 " WHERE customer_id LIKE ? GROUP BY customer_id",
                 &p, 1, count_row, &rc, NULL, &e) == ERR_OK)
      ok = 0;
    else
      fprintf(stderr, "check_exactly_once: %s\n", e.msg);
    db_release(g_db, c);
  }
  *found = rc.found;
  *dup = rc.dup;
  *extra = rc.extra;
  free(rc.seen);
  return ok;
}

/* Wait until the log has nothing in memory nor in the spool. */
static int wait_log_drained(double timeout_s)
{
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < timeout_s) {
    if (metric("mlopsd_plog_backlog_rows") == 0 &&
        metric("mlopsd_plog_spool_records") == 0)
      return 0;
    fx_msleep(100);
  }
  return -1;
}

/* ---- the daemon ---------------------------------------------------------- */

static int daemon_start_(void)
{
  char pidf[600];
  snprintf(pidf, sizeof(pidf), "%s/mlopsd.pid", g_tmp);
  g_pid = fx_daemon_start(g_bin, g_cfg, g_log, pidf, NULL);
  return g_pid > 0 ? 0 : -1;
}

static int g_db_stopped; /* restart it at the end whatever happened */

/* tests/mariadb.sh VERB (stop, start) on the test server's datadir */
static void db_ctl(const char *verb)
{
  char cmd[2048];
  g_db_stopped = strcmp(verb, "stop") == 0;
  snprintf(cmd, sizeof(cmd), "%s/tests/mariadb.sh %s %s >/dev/null 2>&1",
           g_src, verb, g_dbdir);
  if (fx_run_cmd(cmd) != 0)
    fprintf(stderr, "  %s failed\n", cmd);
}

static void db_stop(void) { db_ctl("stop"); }
static void db_start(void) { db_ctl("start"); }

/* ---- tests ---------------------------------------------------------------- */

static size_t g_ok_items; /* items answered 200 (rows expected) */

TEST(single_valid)
{
  struct fx_answer a;
  REQUIRE(post("/predict", g_lines[0], &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(cJSON_IsNumber(cJSON_GetObjectItem(a.json, "customer_id")));
  CHECK_EQ_INT(cJSON_GetObjectItem(a.json, "customer_id")->valuedouble, 4096);
  const char *p = jstr(a.json, "predict");
  CHECK(p && (!strcmp(p, "Poor") || !strcmp(p, "Standard") ||
              !strcmp(p, "Good")));
  double conf = cJSON_GetNumberValue(cJSON_GetObjectItem(a.json, "confidence"));
  CHECK(conf > 0.33 && conf <= 1.0);
  CHECK_EQ_STR(jstr(a.json, "model_version"), "1");
  if (a.status == 200)
    g_ok_items++;
  fx_answer_free(&a);
  /* the same model by name */
  REQUIRE(post("/models/" MODEL "/predict", g_lines[1], &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  if (a.status == 200)
    g_ok_items++;
  fx_answer_free(&a);
  /* the first 200 lines one by one */
  int ok = 0;
  for (size_t i = 0; i < 200; i++) {
    if (post("/predict", g_lines[i], &a) == 0 && a.status == 200)
      ok++;
    else
      fprintf(stderr, "  line %zu: %ld %s\n", i, a.status,
              a.body ? a.body : "");
    fx_answer_free(&a);
  }
  CHECK_EQ_INT(ok, 200);
  g_ok_items += (size_t)ok;
}

TEST(batch_valid)
{
  size_t cap = 1 << 20, n = 0;
  char *b = malloc(cap);
  n += (size_t)snprintf(b, cap, "{\"data\": [");
  for (size_t i = 0; i < 200; i++) {
    const char *d = strstr(g_lines[i], "{\"customer_id\"");
    size_t l = strlen(d) - 1; /* drop the outer } */
    memcpy(b + n, d, l);
    n += l;
    b[n++] = i + 1 < 200 ? ',' : ']';
  }
  b[n++] = '}';
  b[n] = 0;
  struct fx_answer a;
  REQUIRE(post("/predict", b, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(cJSON_IsArray(a.json));
  CHECK_EQ_INT(cJSON_GetArraySize(a.json), 200);
  /* answers in order, the same as single requests */
  cJSON *first = cJSON_GetArrayItem(a.json, 0);
  CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "customer_id")),
               4096);
  struct fx_answer s;
  REQUIRE(post("/predict", g_lines[0], &s) == 0);
  CHECK_EQ_STR(jstr(first, "predict"), jstr(s.json, "predict"));
  CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(first, "confidence")),
             cJSON_GetNumberValue(cJSON_GetObjectItem(s.json, "confidence")),
             1e-9);
  if (s.status == 200)
    g_ok_items++;
  if (a.status == 200)
    g_ok_items += 200;
  fx_answer_free(&s);
  fx_answer_free(&a);
  /* a batch of one */
  char *one = malloc(strlen(g_lines[5]) + 8);
  const char *d = strstr(g_lines[5], "{\"customer_id\"");
  sprintf(one, "{\"data\":[%.*s]}", (int)(strlen(d) - 1), d);
  REQUIRE(post("/predict", one, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(cJSON_GetArraySize(a.json), 1);
  if (a.status == 200)
    g_ok_items++;
  fx_answer_free(&a);
  free(one);
  free(b);
}

/* Regression (issue 16 review): "data" spelled with an escape
 * ({"d\u0061ta": [...]}) is the member "data" for the parse tree, so it is
 * served, but the scan records spans only for the raw name: the log took
 * the items' bytes from spans the scan never set for this body (left from
 * an earlier request of the thread, or never written) and stored other
 * bytes as features.  Each logged item must be the item sent. */
TEST(escaped_data_key_logs_items)
{
  char *it[2];
  size_t l[2];
  for (int k = 0; k < 2; k++) {
    char cid[32];
    snprintf(cid, sizeof(cid), "escdata-%d", k);
    char *line = with_cid((size_t)(20 + k), cid); /* {"data":{...}} */
    const char *d = strchr(line + 1, '{');
    l[k] = strlen(d) - 1;
    it[k] = strndup(d, l[k]);
    free(line);
  }
  size_t cap = l[0] + l[1] + 64;
  char *plain = malloc(cap), *esc = malloc(cap);
  snprintf(plain, cap, "{\"data\":[%s,%s]}", it[0], it[1]);
  snprintf(esc, cap, "{\"d\\u0061ta\":[%s,%s]}", it[0], it[1]);
  struct fx_answer a;
  /* the plain spelling first (logged too, under the same ids): whatever
   * HTTP thread takes the next request may hold its spans */
  for (int k = 0; k < 4; k++) {
    REQUIRE(post("/predict", plain, &a) == 0);
    CHECK_EQ_INT(a.status, 200);
    if (a.status == 200)
      g_ok_items += 2;
    fx_answer_free(&a);
  }
  REQUIRE(post("/predict", esc, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_INT(cJSON_GetArraySize(a.json), 2);
  if (a.status == 200)
    g_ok_items += 2;
  fx_answer_free(&a);
  REQUIRE(wait_log_drained(20) == 0);
  for (int k = 0; k < 2; k++) {
    char cid[32];
    snprintf(cid, sizeof(cid), "escdata-%d", k);
    struct db_conn *c = NULL;
    struct err e = {0};
    int64_t same = -1, all = -1;
    struct db_val p[2] = {DB_V_STR(cid), DB_V_STRN(it[k], l[k])};
    REQUIRE(db_acquire(g_db, 5000, &c, &e) == ERR_OK);
    CHECK(db_query_i64(c,
                       "SELECT COUNT(*) FROM credit_predictions_api_log "
                       "WHERE customer_id = ?",
                       p, 1, &all, &e) == ERR_OK);
    CHECK(db_query_i64(c,
                       "SELECT COUNT(*) FROM credit_predictions_api_log "
                       "WHERE customer_id = ? AND features = ?",
                       p, 2, &same, &e) == ERR_OK);
    db_release(g_db, c);
    CHECK_EQ_INT(all, 5);
    CHECK_EQ_INT(same, 5);
  }
  free(plain);
  free(esc);
  free(it[0]);
  free(it[1]);
}

/* Expect a 400 naming field with msg (substring). */
static void expect_field(const char *body, const char *field,
                         const char *msg, int line)
{
  struct fx_answer a;
  if (post("/predict", body, &a) != 0) {
    fprintf(stderr, "  FAIL line %d: no answer\n", line);
    check_cur_failed = 1;
    return;
  }
  const char *m = field_msg(&a, field);
  if (a.status != 400 || !m || !strstr(m, msg) ||
      strcmp(jstr(a.json, "error") ? jstr(a.json, "error") : "",
             "invalid input") != 0) {
    fprintf(stderr, "  FAIL line %d: want 400 %s: %s, got %ld %s\n", line,
            field, msg, a.status, a.body);
    check_cur_failed = 1;
  }
  fx_answer_free(&a);
}

TEST(validation_rules)
{
  char *b;
  expect_field(b = with_field(0, "age", "-5"), "age", "must be > 0",
               __LINE__);
  free(b);
  expect_field(b = with_field(0, "age", "0"), "age", "must be > 0",
               __LINE__);
  free(b);
  expect_field(b = with_field(0, "age", "18.5"), "age", "integer", __LINE__);
  free(b);
  expect_field(b = with_field(0, "age", "\"abc\""), "age", "number",
               __LINE__);
  free(b);
  expect_field(b = with_field(0, "credit_history_age", "0"),
               "credit_history_age", "> 0", __LINE__);
  free(b);
  expect_field(b = with_field(0, "credit_mix", "\"Weird\""), "credit_mix",
               "one of", __LINE__);
  free(b);
  expect_field(b = with_field(0, "credit_mix", "7"), "credit_mix",
               "string", __LINE__);
  free(b);
  expect_field(b = with_field(0, "occupation", NULL), "occupation",
               "required", __LINE__);
  free(b);
  expect_field(b = with_field(0, "occupation", "null"), "occupation",
               "required", __LINE__);
  free(b);
  expect_field(b = with_field(0, "favourite_colour", "\"blue\""),
               "favourite_colour", "unknown field", __LINE__);
  free(b);
  /* huge numbers: the raw text, cJSON would print 1e400 as null */
  {
    const char *at = strstr(g_lines[0], "\"age\": 18,");
    REQUIRE(at != NULL);
    size_t k = (size_t)(at - g_lines[0]);
    char *t = malloc(strlen(g_lines[0]) + 16);
    sprintf(t, "%.*s\"age\": 1e400,%s", (int)k, g_lines[0],
            at + strlen("\"age\": 18,"));
    expect_field(t, "age", "number", __LINE__);
    sprintf(t, "%.*s\"age\": -1e400,%s", (int)k, g_lines[0],
            at + strlen("\"age\": 18,"));
    expect_field(t, "age", "number", __LINE__);
    sprintf(t, "%.*s\"age\": 1e300,%s", (int)k, g_lines[0],
            at + strlen("\"age\": 18,"));
    struct fx_answer a;
    CHECK(post("/predict", t, &a) == 0 && a.status == 200);
    if (a.status == 200)
      g_ok_items++;
    fx_answer_free(&a);
    free(t);
  }
  expect_field(b = with_field(0, "annual_income", "[1,2]"), "annual_income",
               "number", __LINE__);
  free(b);
  /* every bad field is named at once */
  {
    char *b1 = with_field(0, "age", "-1");
    char *b2 = with_field(0, "credit_mix", "\"x\"");
    cJSON *j1 = cJSON_Parse(b1), *j2 = cJSON_Parse(b2);
    cJSON *d1 = cJSON_GetObjectItem(j1, "data");
    cJSON_ReplaceItemInObject(
        d1, "credit_mix",
        cJSON_Duplicate(
            cJSON_GetObjectItem(cJSON_GetObjectItem(j2, "data"), "credit_mix"),
            1));
    cJSON_DeleteItemFromObject(d1, "monthly_balance");
    char *t = cJSON_PrintUnformatted(j1);
    struct fx_answer a;
    REQUIRE(post("/predict", t, &a) == 0);
    CHECK_EQ_INT(a.status, 400);
    CHECK(field_msg(&a, "age") != NULL);
    CHECK(field_msg(&a, "credit_mix") != NULL);
    CHECK(field_msg(&a, "monthly_balance") != NULL);
    fx_answer_free(&a);
    free(t);
    free(b1);
    free(b2);
    cJSON_Delete(j1);
    cJSON_Delete(j2);
  }
  /* a batch names the item */
  {
    char *bad = with_field(3, "age", "-7");
    const char *d0 = strstr(g_lines[0], "{\"customer_id\"");
    const char *d3 = strstr(bad, "{\"customer_id\"");
    size_t cap = strlen(g_lines[0]) * 4 + strlen(bad) + 64;
    char *t = malloc(cap);
    snprintf(t, cap, "{\"data\":[%.*s,%.*s,%.*s,%.*s]}",
             (int)(strlen(d0) - 1), d0, (int)(strlen(d0) - 1), d0,
             (int)(strlen(d0) - 1), d0, (int)(strlen(d3) - 1), d3);
    struct fx_answer a;
    REQUIRE(post("/predict", t, &a) == 0);
    CHECK_EQ_INT(a.status, 400);
    CHECK(field_msg(&a, "data[3].age") != NULL);
    CHECK(strstr(field_msg(&a, "data[3].age") ? field_msg(&a, "data[3].age")
                                              : "",
                 "> 0") != NULL);
    fx_answer_free(&a);
    free(t);
    free(bad);
  }
  /* shapes */
  expect_field("{}", "data", "required", __LINE__);
  expect_field("{\"data\": 5}", "data", "object", __LINE__);
  expect_field("{\"data\": []}", "data", "empty", __LINE__);
  expect_field("{\"data\": {}, \"extra\": 1}", "extra", "unknown field",
               __LINE__);
  expect_field("{\"data\": [5]}", "data[0]", "object", __LINE__);
}

/* Expect status and a substring of "error". */
static void expect_error(const char *ctype, const char *body, size_t len,
                         long status, const char *msg, int line)
{
  struct fx_answer a;
  if (req("POST", "/predict", ctype, body, len, &a) != 0) {
    fprintf(stderr, "  FAIL line %d: no answer\n", line);
    check_cur_failed = 1;
    return;
  }
  const char *m = jstr(a.json, "error");
  if (a.status != status || !m || (msg && !strstr(m, msg))) {
    fprintf(stderr, "  FAIL line %d: want %ld '%s', got %ld %.300s\n", line,
            status, msg ? msg : "", a.status, a.body);
    check_cur_failed = 1;
  }
  fx_answer_free(&a);
}

static void still_serving(void)
{
  struct fx_answer a;
  CHECK(get("/healthz", &a) == 0 && a.status == 200);
  fx_answer_free(&a);
  CHECK(post("/predict", g_lines[7], &a) == 0 && a.status == 200);
  if (a.status == 200)
    g_ok_items++;
  fx_answer_free(&a);
}

TEST(bad_bodies)
{
  const char *l0 = g_lines[0];
  size_t n0 = strlen(l0);
  expect_error(NULL, "{\"data\": {\"age\": }}", 19, 400, "malformed JSON",
               __LINE__);
  expect_error(NULL, "{\"data\": {\"age\": }}", 19, 400, "line 1, column",
               __LINE__);
  expect_error(NULL, l0, n0 / 2, 400, "unexpected end of input", __LINE__);
  expect_error(NULL, l0, n0 - 1, 400, "malformed JSON", __LINE__);
  expect_error(NULL, "{\"data\": {}} trailing", 21, 400, "after the JSON",
               __LINE__);
  expect_error(NULL, "{'data': 1}", 11, 400, "malformed JSON", __LINE__);
  expect_error(NULL, "", 0, 400, "empty", __LINE__);
  expect_error(NULL, "  \n ", 4, 400, "empty", __LINE__);
  expect_error(NULL, "[1,2]", 5, 400, "JSON object", __LINE__);
  /* deep nesting */
  {
    size_t n = 100000;
    char *d = malloc(n + 32);
    size_t k = (size_t)sprintf(d, "{\"data\":");
    for (size_t i = 0; i < n; i++)
      d[k++] = '[';
    expect_error(NULL, d, k, 400, "nested too deeply", __LINE__);
    free(d);
  }
  /* non-UTF-8 */
  {
    char *b = with_field(0, "occupation", "\"Lawyer\"");
    char *p = strstr(b, "Lawyer");
    p[1] = (char)0xff;
    expect_error(NULL, b, strlen(b), 400, "not valid UTF-8", __LINE__);
    p[1] = (char)0xc3; /* truncated 2-byte sequence */
    p[2] = 'x';
    expect_error(NULL, b, strlen(b), 400, "not valid UTF-8", __LINE__);
    free(b);
    const char *lone = "{\"data\": {\"occupation\": \"\\ud800\"}}";
    expect_error(NULL, lone, strlen(lone), 400, "surrogate", __LINE__);
    const char *nul = "{\"data\": {\"occupation\": \"a\\u0000b\"}}";
    expect_error(NULL, nul, strlen(nul), 400, "u0000", __LINE__);
    char ctl[] = "{\"data\": {\"occupation\": \"a\tb\"}}";
    expect_error(NULL, ctl, strlen(ctl), 400, "control character", __LINE__);
  }
  /* a number too long for any parser */
  {
    char b[256];
    snprintf(b, sizeof(b), "{\"data\": {\"age\": 1%080d}}", 0);
    expect_error(NULL, b, strlen(b), 400, "number too long", __LINE__);
  }
  /* wrong content types */
  expect_error("text/plain", l0, n0, 415, "content type", __LINE__);
  expect_error("application/x-www-form-urlencoded", l0, n0, 415,
               "application/json", __LINE__);
  expect_error("application/jsonx", l0, n0, 415, NULL, __LINE__);
  /* charset parameter is fine */
  {
    struct fx_answer a;
    CHECK(req("POST", "/predict", "application/json; charset=utf-8", l0, n0,
              &a) == 0 &&
          a.status == 200);
    if (a.status == 200)
      g_ok_items++;
    fx_answer_free(&a);
  }
  /* 2 MB body */
  {
    size_t n = 2u << 20;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, "{\"data\": {\"occupation\": \"", 25);
    big[n - 3] = '"';
    big[n - 2] = '}';
    big[n - 1] = '}';
    big[n] = 0;
    struct fx_answer a;
    int r = req("POST", "/predict", NULL, big, n, &a);
    /* the server may close the connection before reading it all */
    CHECK(r != 0 || a.status == 413);
    fx_answer_free(&a);
    free(big);
  }
  /* unknown model, GET on /predict */
  {
    struct fx_answer a;
    REQUIRE(post("/models/no_such_model/predict", l0, &a) == 0);
    CHECK_EQ_INT(a.status, 404);
    CHECK(jstr(a.json, "error") && strstr(jstr(a.json, "error"), "unknown"));
    fx_answer_free(&a);
    REQUIRE(get("/predict", &a) == 0);
    CHECK_EQ_INT(a.status, 405);
    fx_answer_free(&a);
  }
  still_serving();
}

TEST(metadata_metrics_ready)
{
  struct fx_answer a;
  REQUIRE(get("/metadata", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_STR(jstr(a.json, "model_name"), MODEL);
  CHECK_EQ_STR(jstr(a.json, "model_version"), "1");
  CHECK(jstr(a.json, "creation_time") != NULL);
  CHECK(cJSON_IsObject(cJSON_GetObjectItem(a.json, "params")));
  CHECK(cJSON_IsObject(cJSON_GetObjectItem(a.json, "metrics")));
  cJSON *nat = cJSON_GetObjectItem(a.json, "native");
  CHECK(cJSON_IsTrue(cJSON_GetObjectItem(nat, "enabled")));
  CHECK(jstr(nat, "status") && strstr(jstr(nat, "status"), "native"));
  fx_answer_free(&a);
  REQUIRE(req("POST", "/metadata", NULL, "{}", 2, &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  fx_answer_free(&a);
  REQUIRE(get("/models/nope/metadata", &a) == 0);
  CHECK_EQ_INT(a.status, 404);
  fx_answer_free(&a);
  REQUIRE(get("/readyz", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK_EQ_STR(jstr(a.json, "model_version"), "1");
  fx_answer_free(&a);
  REQUIRE(get("/metrics", &a) == 0);
  CHECK_EQ_INT(a.status, 200);
  CHECK(strstr(a.body, "mlopsd_predictions_total{model=\"" MODEL "\"") != NULL);
  CHECK(strstr(a.body, "mlopsd_plog_backlog_rows") != NULL);
  CHECK(strstr(a.body, "mlopsd_plog_spool_bytes") != NULL);
  CHECK(strstr(a.body, "mlopsd_queue_depth") != NULL);
  CHECK(strstr(a.body, "mlopsd_model_version{model=\"" MODEL "\"} 1") != NULL);
  CHECK(strstr(a.body, "mlopsd_model_load_seconds") != NULL);
  CHECK(strstr(a.body, "mlopsd_plog_rows_unlogged_total") != NULL);
  CHECK(strstr(a.body, "mlopsd_http_requests_total") != NULL);
  fx_answer_free(&a);
}

TEST(log_rows_match_answers)
{
  REQUIRE(wait_log_drained(20) == 0);
  CHECK_EQ_INT(db_count("1"), (int64_t)g_ok_items);
  /* features: the item as received without the blanks between its
   * tokens (plog_json_compact) - the same JSON value, so JSON_EQUALS
   * with the text sent and JSON_EXTRACT agree; customer_id as text */
  struct db_conn *c = NULL;
  struct err e = {0};
  REQUIRE(db_acquire(g_db, 5000, &c, &e) == ERR_OK);
  int64_t n = -1;
  const char *d = strstr(g_lines[0], "{\"customer_id\"");
  char *item = strndup(d, strlen(d) - 1);
  char *compact = malloc(strlen(item) + 1);
  REQUIRE(item && compact);
  size_t cl = plog_json_compact(compact, item, strlen(item));
  compact[cl] = 0;
  CHECK(cl < strlen(item));
  struct db_val p[3] = {DB_V_STR(compact), DB_V_STR(item), DB_V_STR("4096")};
  CHECK(db_query_i64(c,
                     "SELECT COUNT(*) FROM credit_predictions_api_log "
                     "WHERE features = ? AND JSON_EQUALS(features, ?) AND "
                     "JSON_EXTRACT(features, '$.customer_id') = 4096 AND "
                     "customer_id = ? AND "
                     "model_name = '" MODEL "' AND model_version = 1 AND "
                     "log_seq IS NOT NULL AND elapsed_ms >= 0",
                     p, 3, &n, &e) == ERR_OK);
  CHECK(n >= 3);
  db_release(g_db, c);
  free(compact);
  free(item);
}

/* ---- hot swap under load --------------------------------------------------- */

struct loader {
  atomic_int stop;
  atomic_long ok, bad, v1, v2, other;
};

static void *load_main(void *arg)
{
  struct loader *l = arg;
  size_t i = 0;
  while (!atomic_load(&l->stop)) {
    struct fx_answer a;
    if (post("/predict", g_lines[i++ % 500], &a) == 0 && a.status == 200) {
      atomic_fetch_add(&l->ok, 1);
      const char *v = jstr(a.json, "model_version");
      if (v && !strcmp(v, "1"))
        atomic_fetch_add(&l->v1, 1);
      else if (v && !strcmp(v, "2"))
        atomic_fetch_add(&l->v2, 1);
      else
        atomic_fetch_add(&l->other, 1);
    } else {
      atomic_fetch_add(&l->bad, 1);
      fprintf(stderr, "  hot swap: %ld %s\n", a.status, a.body ? a.body : "");
    }
    fx_answer_free(&a);
    /* a steady stream the log keeps up with on a busy machine: this test
     * is about swapping, the log's capacity is bench/'s business */
    fx_msleep(1);
  }
  fx_http_done();
  return NULL;
}

TEST(hot_swap)
{
  struct loader l = {0};
  pthread_t th[3];
  for (int i = 0; i < 3; i++)
    pthread_create(&th[i], NULL, load_main, &l);
  for (int k = 0; k < 10; k++) {
    fx_msleep(300);
    CHECK(set_production(k % 2 == 0 ? g_v2 : g_v1) == 0);
  }
  fx_msleep(300);
  CHECK(set_production(g_v2) == 0);
  fx_msleep(1500); /* watcher period 500 ms + load */
  atomic_store(&l.stop, 1);
  for (int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  g_ok_items += (size_t)l.ok;
  fprintf(stderr, "  hot swap: ok=%ld bad=%ld v1=%ld v2=%ld\n", l.ok, l.bad,
          l.v1, l.v2);
  CHECK_EQ_INT(l.bad, 0);
  CHECK_EQ_INT(l.other, 0);
  CHECK(l.v1 > 0 && l.v2 > 0);
  struct fx_answer a;
  REQUIRE(post("/predict", g_lines[0], &a) == 0);
  CHECK_EQ_STR(jstr(a.json, "model_version"), "2");
  if (a.status == 200)
    g_ok_items++;
  fx_answer_free(&a);
  REQUIRE(get("/metadata", &a) == 0);
  CHECK_EQ_STR(jstr(a.json, "model_version"), "2");
  fx_answer_free(&a);
  /* a broken version is refused, the old one keeps serving */
  {
    char path[1024];
    snprintf(path, sizeof(path), "%s/" MODEL "/versions/%d/model.ubj", g_reg,
             g_v1);
    char bad_dir[1024];
    snprintf(bad_dir, sizeof(bad_dir), "%s/" MODEL "/versions/%d", g_reg,
             g_v1);
    /* break v1's model file in place (tests only) */
    CHECK(fx_write_text(path, "not a model") == 0);
    CHECK(set_production(g_v1) == 0);
    fx_msleep(1500);
    REQUIRE(post("/predict", g_lines[0], &a) == 0);
    CHECK_EQ_INT(a.status, 200);
    CHECK_EQ_STR(jstr(a.json, "model_version"), "2");
    if (a.status == 200)
      g_ok_items++;
    fx_answer_free(&a);
    REQUIRE(get("/metadata", &a) == 0);
    cJSON *le = cJSON_GetObjectItem(a.json, "last_error");
    CHECK(cJSON_IsObject(le));
    CHECK_EQ_INT(cJSON_GetNumberValue(cJSON_GetObjectItem(le, "version")),
                 g_v1);
    fx_answer_free(&a);
    CHECK(set_production(g_v2) == 0);
  }
  REQUIRE(wait_log_drained(20) == 0);
  CHECK_EQ_INT(db_count("1"), (int64_t)g_ok_items);
}

/* ---- MariaDB stopped under a request stream -------------------------------- */

struct streamer {
  atomic_int stop;
  const char *prefix;
  struct idset *ok;
  atomic_long n, fail;
};

static void *stream_main(void *arg)
{
  struct streamer *s = arg;
  long i = 0;
  while (!atomic_load(&s->stop)) {
    char cid[40], *b;
    snprintf(cid, sizeof(cid), "%s%06ld", s->prefix, i % 1000000);
    b = with_cid((size_t)i, cid);
    struct fx_answer a;
    if (post("/predict", b, &a) == 0 && a.status == 200)
      idset_add(s->ok, cid);
    else
      atomic_fetch_add(&s->fail, 1);
    fx_answer_free(&a);
    free(b);
    i++;
    atomic_store(&s->n, i);
    fx_msleep(2);
  }
  fx_http_done();
  return NULL;
}

TEST(db_outage)
{
  struct idset ok = {.mu = PTHREAD_MUTEX_INITIALIZER};
  struct streamer s = {.prefix = "f", .ok = &ok};
  pthread_t th;
  pthread_create(&th, NULL, stream_main, &s);
  fx_msleep(1000);
  double t0 = fx_now_s();
  db_stop();
  /* while it is down: answers go on, /readyz says why */
  fx_msleep(1500);
  struct fx_answer a;
  CHECK(get("/readyz", &a) == 0 && a.status == 503);
  CHECK(a.body && strstr(a.body, "cannot write to MariaDB") != NULL);
  fx_answer_free(&a);
  CHECK(metric("mlopsd_plog_spool_records") > 0);
  while (fx_now_s() - t0 < 8)
    fx_msleep(100);
  db_start();
  fprintf(stderr, "  db outage: %.1f s\n", fx_now_s() - t0);
  fx_msleep(2000);
  atomic_store(&s.stop, 1);
  pthread_join(th, NULL);
  fprintf(stderr, "  db outage: requests=%ld ok=%zu failed=%ld\n",
          (long)s.n, ok.n, (long)s.fail);
  CHECK_EQ_INT(s.fail, 0);
  REQUIRE(wait_log_drained(30) == 0);
  REQUIRE(fx_wait_http(g_port, "/readyz", 10) == 0);
  size_t found = 0, dup = 0, extra = 0;
  REQUIRE(check_exactly_once(&ok, "f", &found, &dup, &extra) == 0);
  CHECK_EQ_INT(found, ok.n);
  CHECK_EQ_INT(dup, 0);
  CHECK_EQ_INT(extra, 0);
  CHECK(metric("mlopsd_plog_rows_replayed_total") > 0);
  idset_free(&ok);
}

TEST(kill9_with_spooled_rows)
{
  struct idset ok = {.mu = PTHREAD_MUTEX_INITIALIZER};
  db_stop();
  post_ids(&ok, "k", 300);
  CHECK_EQ_INT(ok.n, 300);
  /* wait until every row left memory for the spool */
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < 10 && metric("mlopsd_plog_backlog_rows") != 0)
    fx_msleep(50);
  CHECK_EQ_INT(metric("mlopsd_plog_backlog_rows"), 0);
  CHECK(metric("mlopsd_plog_spool_records") > 0);
  fx_daemon_kill9(&g_pid);
  db_start();
  REQUIRE(daemon_start_() == 0);
  REQUIRE(fx_wait_http(g_port, "/readyz", 30) == 0);
  REQUIRE(wait_log_drained(30) == 0);
  size_t found = 0, dup = 0, extra = 0;
  REQUIRE(check_exactly_once(&ok, "k", &found, &dup, &extra) == 0);
  CHECK_EQ_INT(found, 300);
  CHECK_EQ_INT(dup, 0);
  CHECK_EQ_INT(extra, 0);
  idset_free(&ok);
}

TEST(sigterm_flushes)
{
  struct idset ok = {.mu = PTHREAD_MUTEX_INITIALIZER};
  post_ids(&ok, "t", 100);
  CHECK_EQ_INT(fx_daemon_term(&g_pid), 0);
  size_t found = 0, dup = 0, extra = 0;
  REQUIRE(check_exactly_once(&ok, "t", &found, &dup, &extra) == 0);
  CHECK_EQ_INT(found, 100);
  CHECK_EQ_INT(dup, 0);
  idset_free(&ok);
  /* the pid file is gone, the log has the start line */
  char pidf[600];
  snprintf(pidf, sizeof(pidf), "%s/mlopsd.pid", g_tmp);
  CHECK(access(pidf, F_OK) != 0);
  char *log = fx_read_file(g_log, NULL);
  CHECK(log && strstr(log, "serving listen=127.0.0.1:") &&
        strstr(log, "model=" MODEL));
  free(log);
}

/* A daemon built with sanitizers writes its reports to its log. */
TEST(no_sanitizer_reports)
{
  char *log = fx_read_file(g_log, NULL);
  REQUIRE(log != NULL);
  CHECK(strstr(log, "ERROR: AddressSanitizer") == NULL);
  CHECK(strstr(log, "ERROR: LeakSanitizer") == NULL);
  CHECK(strstr(log, "WARNING: ThreadSanitizer") == NULL);
  CHECK(strstr(log, "runtime error:") == NULL);
  free(log);
}

/* ---- set-up ---------------------------------------------------------------- */

/* A fresh DBNAME made by `mlopsd db init`, and g_db on it. */
static int setup_db(void)
{
  if (fx_db_init(DBNAME, g_bin, g_src, g_cfg, g_log))
    return -1;
  g_db = fx_pool(DBNAME, 4);
  return g_db ? 0 : -1;
}

static int setup(void)
{
  const char *d = getenv("MLOPSD_TEST_DB_DIR");
  if (fx_env("test_serve", g_src, sizeof(g_src), g_bin, sizeof(g_bin)))
    return -1;
  if (!d) {
    fprintf(stderr, "test_serve: MLOPSD_TEST_DB_DIR must be set "
                    "(tests/run.sh)\n");
    return -1;
  }
  snprintf(g_dbdir, sizeof(g_dbdir), "%s", d);
  if (fx_tmpdir(g_tmp, sizeof(g_tmp), "it-serve"))
    return -1;
  snprintf(g_reg, sizeof(g_reg), "%s/registry", g_tmp);
  snprintf(g_cfg, sizeof(g_cfg), "%s/mlopsd.yaml", g_tmp);
  snprintf(g_log, sizeof(g_log), "%s/daemon.log", g_tmp);
  g_port = fx_free_port();
  setenv("MLOPSD_DATABASE_NAME", DBNAME, 1);
  unsetenv("MLOPSD_SERVER_LISTEN");
  if (fx_daemon_cfg(g_tmp, g_src, g_port, DBNAME, 0,
                    "  default_model: " MODEL "\n",
                    "logging:\n  level: info\n"))
    return -1;
  if (load_lines() || g_nlines < 500)
    return -1;
  if (make_registry(g_reg, &g_v1, &g_v2))
    return -1;
  if (setup_db())
    return -1;
  if (daemon_start_() || fx_wait_http(g_port, "/readyz", 30)) {
    fprintf(stderr, "daemon did not become ready; log %s\n", g_log);
    return -1;
  }
  return 0;
}

int main(int argc, char **argv)
{
  if (argc >= 3 && strcmp(argv[1], "--make-registry") == 0) {
    const char *s = getenv("MLOPSD_SRC");
    snprintf(g_src, sizeof(g_src), "%s", s ? s : ".");
    int v1, v2;
    if (make_registry(argv[2], &v1, &v2)) {
      fprintf(stderr, "make-registry failed\n");
      return 1;
    }
    printf("registry %s: versions %d and %d, production -> %d\n", argv[2],
           v1, v2, v1);
    free(g_lines);
    free(g_lines_text);
    return 0;
  }
  curl_global_init(CURL_GLOBAL_ALL);
  if (setup() != 0) {
    fprintf(stderr, "test_serve: set-up failed\n");
    if (g_pid > 0)
      fx_daemon_kill9(&g_pid);
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  RUN(single_valid);
  RUN(batch_valid);
  RUN(escaped_data_key_logs_items);
  RUN(validation_rules);
  RUN(bad_bodies);
  RUN(metadata_metrics_ready);
  RUN(log_rows_match_answers);
  RUN(hot_swap);
  RUN(db_outage);
  RUN(kill9_with_spooled_rows);
  RUN(sigterm_flushes);
  RUN(no_sanitizer_reports);
  if (g_pid > 0)
    fx_daemon_term(&g_pid);
  if (g_db_stopped)
    db_start(); /* the next integration test needs it */
  free(g_lines);
  free(g_lines_text);
  db_pool_destroy(g_db);
  fx_http_done();
  curl_global_cleanup();
  if (!getenv("MLOPSD_KEEP_TMP")) {
    fx_rmtree(g_tmp);
  }
  return check_done();
}
