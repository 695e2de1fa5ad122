/* test_pipeline.c - the training pipeline end to end on the course data:
 * real MariaDB (database it_pipeline, seeded with `mlopsd db init` and
 * `db seed`, features built by sql/features.sql for 2025-09-01), real
 * XGBoost, a registry in a temp dir, and the real binary for the CLI.
 *
 * Covers: fstore (2,500 rows, canonical hash stable across reads, point
 * lookup, unknown labels), pipeline_train with a small grid (registry
 * layout, runs, meta.json fields, reference.json, validation rows),
 * split/training determinism, the train / validate / deploy task types
 * (pass with no production, fail against a better production with a
 * 'skip' row), promote / rollback through the CLI with their deployment
 * rows, corrupt meta.json, offline predict, zero-row dates, cancel;
 * overlapping windows (2025-09-01 and 2025-09-02): the gate scores only
 * the candidate's validation rows that production was not trained on
 * (train_keys.jsonl), fails safe with too few, falls back to all rows
 * for a production without train keys; alias staging set by a passing
 * validate and deployed by `version: staging`.
 *
 * The grid is cut to 2 trials of at most 30 rounds (pipeline_opts
 * overrides; the train task reads a copy of the spec with a small grid),
 * so the whole binary runs in seconds.
 */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "monitor_fx.h"
#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/fstore.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"
#include "mlopsd/calib.h"
#include "mlopsd/model.h"
#include "mlopsd/spec.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"

#define DBNAME "it_pipeline"
#define MODEL "credit_score_classification"
#define DS "2025-09-01"

static char bin[256], src[256]; /* MLOPSD_BIN, MLOPSD_SRC */
static char tmpdir[256], regdir[300], specsdir[300];
static struct db_pool *pool;
static struct registry *reg;
static struct spec *spec;
static int setup_ok;

/* ------------------------------------------------------------- helpers */

/* Run mlopsd args in $MLOPSD_SRC with the test database and registry. */
static void mlopsd(struct fx_run *r, const char *const *args)
{
  char regenv[400], specs[400];
  snprintf(regenv, sizeof(regenv), "MLOPSD_MODELS_REGISTRY_DIR=%s", regdir);
  snprintf(specs, sizeof(specs), "MLOPSD_MODELS_SPECS_DIR=%s", specsdir);
  const char *env[] = {"MLOPSD_DATABASE_NAME=" DBNAME, regenv, specs,
                       "USER=tester", NULL};
  fx_run_bin(r, tmpdir, src, env, bin, args);
}

static int exec_sql(struct db_pool *p, const char *sql)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int ok = db_acquire(p, 10000, &c, &e) == ERR_OK &&
           db_exec(c, sql, NULL, &e) == ERR_OK;
  if (!ok)
    fprintf(stderr, "  exec failed: %.200s: %s\n", sql, e.msg);
  db_release(p, c);
  return ok;
}

static int64_t q1(const char *sql, const char *arg)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t v = -1;
  struct db_val p[1] = {DB_V_STR(arg)};
  if (db_acquire(pool, 10000, &c, &e) != ERR_OK ||
      db_query_i64(c, sql, p, arg ? 1 : 0, &v, &e) != ERR_OK) {
    fprintf(stderr, "  query failed: %s: %s\n", sql, e.msg);
    v = -1;
  }
  db_release(pool, c);
  return v;
}

/* s with the first old replaced by new (s is freed; NULL if absent). */
static char *replace(char *s, const char *old, const char *nw)
{
  char *p = s ? strstr(s, old) : NULL;
  if (!p) {
    free(s);
    return NULL;
  }
  size_t a = (size_t)(p - s), lo = strlen(old), ln = strlen(nw);
  char *r = malloc(strlen(s) - lo + ln + 1);
  if (r) {
    memcpy(r, s, a);
    memcpy(r + a, nw, ln);
    strcpy(r + a + ln, p + lo);
  }
  free(s);
  return r;
}

static int write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (!f)
    return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

static int exists(const char *fmt, ...) MLOPSD_PRINTF(1, 2);
static int exists(const char *fmt, ...)
{
  char p[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p, sizeof(p), fmt, ap);
  va_end(ap);
  struct stat st;
  return stat(p, &st) == 0;
}

/* Run sql/features.sql for ds on pool. */
static int run_features(const char *ds)
{
  char path[600];
  snprintf(path, sizeof(path), "%s/sql/features.sql", src);
  char *text = fx_read_file(path, NULL), *sql = NULL;
  struct tmpl_ctx tc = {.ds = ds};
  struct tmpl_binds b = {0};
  struct sqlsplit_list l = {0};
  struct err e = {0};
  int ok = text && tmpl_render(text, &tc, TMPL_SQL, &sql, &b, &e) == ERR_OK &&
           sqlsplit_split(sql, &l, &e) == ERR_OK;
  for (size_t i = 0; ok && i < l.n; i++)
    ok = exec_sql(pool, l.v[i].sql);
  if (!ok && e.msg[0])
    fprintf(stderr, "  features.sql: %s\n", e.msg);
  sqlsplit_list_free(&l);
  tmpl_binds_free(&b);
  free(sql);
  free(text);
  return ok;
}

static cJSON *read_json(const char *fmt, ...) MLOPSD_PRINTF(1, 2);
static cJSON *read_json(const char *fmt, ...)
{
  char p[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(p, sizeof(p), fmt, ap);
  va_end(ap);
  char *t = fx_read_file(p, NULL);
  cJSON *j = t ? cJSON_Parse(t) : NULL;
  free(t);
  return j;
}

static double jnum(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Lines collected from pipeline progress. */
static char logbuf[65536];
static size_t loglen;
static void log_cb(void *ud, const char *line)
{
  (void)ud;
  int n = snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", line);
  if (n > 0 && loglen + (size_t)n < sizeof(logbuf))
    loglen += (size_t)n;
}

static enum err_code train_small(const char *run_id, size_t trials,
                                 int rounds, int esr,
                                 struct pipeline_result *res, struct err *e)
{
  struct pipeline_opts o = {.ds = DS,
                            .dag_id = "test_dag",
                            .dag_run_id = run_id,
                            .nthread = 1,
                            .max_trials = trials,
                            .num_boost_round = rounds,
                            .early_stopping_rounds = esr,
                            .log = log_cb};
  loglen = 0;
  logbuf[0] = '\0';
  return pipeline_train(reg, pool, spec, &o, res, e);
}

/* ---- a task context over a flat list of fields ----------------------- */

struct tfields {
  const char *k[4], *v[4];
  int n;
  char log[16384];
  size_t loglen;
  struct cfg cfg;
};

static const char *tf_field(const struct task_ctx *t, const char *name)
{
  const struct tfields *f = t->field_user;
  for (int i = 0; i < f->n; i++)
    if (strcmp(f->k[i], name) == 0)
      return f->v[i];
  return NULL;
}

static void tf_log(const struct task_ctx *t, const char *stream,
                   const char *line)
{
  struct tfields *f = t->log_user;
  (void)stream;
  int n = snprintf(f->log + f->loglen, sizeof(f->log) - f->loglen, "%s\n",
                   line);
  if (n > 0 && f->loglen + (size_t)n < sizeof(f->log))
    f->loglen += (size_t)n;
}

static void task_setup(struct task_ctx *t, struct tfields *f,
                       const char *run_id)
{
  memset(t, 0, sizeof(*t));
  cfg_defaults(&f->cfg);
  snprintf(f->cfg.models_registry_dir, sizeof(f->cfg.models_registry_dir),
           "%s", regdir);
  snprintf(f->cfg.models_specs_dir, sizeof(f->cfg.models_specs_dir), "%s",
           specsdir);
  f->cfg.models_train_threads = 1;
  f->loglen = 0;
  f->log[0] = '\0';
  t->dag_id = "test_dag";
  t->run_id = run_id;
  t->task_id = "task";
  t->try_number = 1;
  t->ds = DS;
  t->field = tf_field;
  t->field_user = f;
  t->cfg = &f->cfg;
  t->db = pool;
  t->log_line = tf_log;
  t->log_user = f;
}

/* ------------------------------------------------------------- setup */

static int setup(void)
{
  if (fx_env("test_pipeline", src, sizeof(src), bin, sizeof(bin)))
    return 0;
  if (fx_tmpdir(tmpdir, sizeof(tmpdir), "it_pipeline"))
    return 0;
  snprintf(regdir, sizeof(regdir), "%s/registry", tmpdir);
  snprintf(specsdir, sizeof(specsdir), "%s/specs", tmpdir);
  mkdir(specsdir, 0755);
  /* A copy of the course spec with a small grid for the train task. */
  char path[700];
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", src, MODEL);
  char *y = fx_read_file(path, NULL);
  if (!y)
    return 0;
  y = replace(y, "num_boost_round: 2000", "num_boost_round: 30");
  /* These tests check the two-way split's exact sizes on the whole day
   * (2,500 rows: 1,750 / 750); the course spec's gate split, customer
   * groups and 28-day window have their own tests below. */
  if (y)
    y = replace(y, "  gate_fraction: 0.2\n  group_by: customer_id\n", "");
  if (y)
    y = replace(y, "train_window:\n  days: 28\n  column: date\n", "");
  if (!y)
    return 0;
  char *g = strstr(y, "search:");
  char *sel = strstr(y, "selection:");
  if (!g || !sel)
    return 0;
  *g = '\0';
  char spec_copy[8192];
  snprintf(spec_copy, sizeof(spec_copy),
           "%ssearch:\n  grid:\n    max_depth: [3, 4]\n\n%s", y, sel);
  free(y);
  snprintf(path, sizeof(path), "%s/%s.yaml", specsdir, MODEL);
  if (!write_text(path, spec_copy))
    return 0;

  struct db_pool *root = fx_pool(NULL, 1);
  if (!root || !exec_sql(root, "DROP DATABASE IF EXISTS " DBNAME)) {
    db_pool_destroy(root);
    return 0;
  }
  db_pool_destroy(root);
  struct fx_run r;
  const char *init[] = {"db", "init", NULL};
  mlopsd(&r, init);
  if (r.rc != 0) {
    fx_show("db init", &r);
    return 0;
  }
  const char *seed[] = {"db", "seed", NULL};
  mlopsd(&r, seed);
  if (r.rc != 0) {
    fx_show("db seed", &r);
    return 0;
  }
  pool = fx_pool(DBNAME, 4);
  if (!pool || !run_features(DS))
    return 0;
  struct err e = {0};
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", src, MODEL);
  if (spec_load(path, &spec, &e) != ERR_OK ||
      registry_open(regdir, &reg, &e) != ERR_OK) {
    fprintf(stderr, "setup: %s\n", e.msg);
    return 0;
  }
  /* the two-way split on the whole day, as the spec copy above */
  if (!spec->group_by || spec->gate_fraction != 0.2 ||
      spec->window.days != 28) {
    fprintf(stderr, "setup: the course spec's split or window changed\n");
    return 0;
  }
  fx_spec_whole_day(spec);
  return 1;
}

/* ------------------------------------------------------------- fstore */

TEST(fstore_reads_the_training_set)
{
  REQUIRE(setup_ok);
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM credit_score_features_target "
                  "WHERE base_dt = ?",
                  DS),
               2500);
  struct fstore_set *s = NULL, *s2 = NULL;
  struct err e = {0};
  REQUIRE(fstore_read_training(pool, spec, DS, NULL, NULL, &s, &e) ==
          ERR_OK);
  CHECK_EQ_INT(s->n_rows, 2500);
  CHECK_EQ_INT(s->n_features, spec->n_features);
  CHECK(strstr(s->sql, "ORDER BY `base_dt`, `id`, `customer_id`") != NULL);
  CHECK(strstr(s->sql, "WHERE (base_dt = '2025-09-01')") != NULL);
  /* real missing values: NaN for numbers, NULL for strings */
  size_t nan_num = 0, null_str = 0, cls[3] = {0};
  for (size_t j = 0; j < s->n_features; j++)
    for (size_t i = 0; i < s->n_rows; i++) {
      if (s->cols[j].num)
        nan_num += isnan(s->cols[j].num[i]);
      else
        null_str += s->cols[j].str[i] == NULL;
    }
  for (size_t i = 0; i < s->n_rows; i++)
    cls[s->labels[i]]++;
  CHECK(nan_num > 0);
  CHECK(cls[0] > 0 && cls[1] > 0 && cls[2] > 0);
  CHECK_EQ_INT(cls[0] + cls[1] + cls[2], 2500);
  /* interning: equal strings share one copy */
  int occ = spec_feature_index(spec, "occupation");
  REQUIRE(occ >= 0);
  const char *a = NULL;
  int shared = 0;
  for (size_t i = 0; i < s->n_rows && !shared; i++) {
    const char *v = s->cols[occ].str[i];
    if (!v)
      continue;
    if (!a) {
      a = v;
      continue;
    }
    if (strcmp(a, v) == 0)
      shared = a == v;
  }
  CHECK(shared);
  CHECK(s->n_distinct_strings < 2500 * 5);
  /* the keys come along, and the hash is stable across reads */
  REQUIRE(s->keys != NULL);
  /* row keys: the primary key without base_dt (one value over the set) */
  CHECK(strstr(s->sql, "`customer_id`, `base_dt`, `id`, `customer_id` FROM")
        != NULL);
  CHECK_EQ_INT(s->n_row_key_cols, 2);
  CHECK_EQ_STR(s->row_key_cols[0], "id");
  CHECK_EQ_STR(s->row_key_cols[1], "customer_id");
  REQUIRE(s->row_keys != NULL);
  CHECK_EQ_STR(s->row_keys[1], s->keys[0]); /* row 0's customer_id */
  int distinct_ids = 1;
  for (size_t i = 1; i < s->n_rows && distinct_ids; i++)
    distinct_ids = strcmp(s->row_keys[2 * i], s->row_keys[2 * (i - 1)]) ||
                   strcmp(s->row_keys[2 * i + 1],
                          s->row_keys[2 * (i - 1) + 1]);
  CHECK(distinct_ids);
  REQUIRE(fstore_read_training(pool, spec, DS, NULL, NULL, &s2, &e) ==
          ERR_OK);
  char h1[SHA256_HEX_LEN], h2[SHA256_HEX_LEN];
  fstore_set_sha256(s, spec, h1);
  fstore_set_sha256(s2, spec, h2);
  CHECK_EQ_STR(h1, h2);
  CHECK_EQ_INT(strlen(h1), 64);
  (void)null_str;

  /* point lookup of the newest row of one customer */
  cJSON *obj = NULL;
  const char *key = s->keys[0];
  REQUIRE(fstore_lookup(pool, spec, key, &obj, &e) == ERR_OK);
  CHECK(cJSON_GetObjectItemCaseSensitive(obj, "customer_id") != NULL);
  CHECK(cJSON_GetObjectItemCaseSensitive(obj, "age") != NULL);
  CHECK(cJSON_GetObjectItemCaseSensitive(obj, "credit_score") == NULL);
  cJSON_Delete(obj);
  obj = NULL;
  CHECK(fstore_lookup(pool, spec, "no-such", &obj, &e) == ERR_NOTFOUND);
  CHECK(strstr(e.msg, "no row in credit_score_features_target with "
                      "customer_id=no-such") != NULL);
  fstore_set_free(s);
  fstore_set_free(s2);
}

TEST(fstore_errors)
{
  REQUIRE(setup_ok);
  struct fstore_set *s = NULL;
  struct err e = {0};
  CHECK(fstore_read_training(pool, spec, "2025-05-01", NULL, NULL, &s, &e) ==
        ERR_NOTFOUND);
  CHECK_EQ_STR(e.msg, "no training rows in credit_score_features_target for "
                      "base_dt=2025-05-01");
  CHECK(fstore_read_training(pool, spec, "2025-02-30", NULL, NULL, &s, &e) ==
        ERR_INVAL);
  CHECK(strstr(e.msg, "not a valid YYYY-MM-DD") != NULL);
  CHECK(fstore_read_training(pool, spec, "x' OR '1'='1", NULL, NULL, &s, &e) ==
        ERR_INVAL);
  /* a label outside the spec's classes is named with its row */
  char path[700];
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", src, MODEL);
  char *y = fx_read_file(path, NULL);
  REQUIRE(y);
  char *c = strstr(y, "classes: [Poor, Standard, Good]");
  REQUIRE(c);
  memcpy(c, "classes: [Poor, Standard]      ", 31);
  y = replace(y, "objective: multi:softprob", "objective: binary:logistic");
  REQUIRE(y);
  struct spec *bad = NULL;
  if (spec_load_buf(path, y, strlen(y), &bad, &e) != ERR_OK)
    fprintf(stderr, "  %s\n", e.msg);
  REQUIRE(bad);
  CHECK(fstore_read_training(pool, bad, DS, NULL, NULL, &s, &e) ==
        ERR_INVAL);
  CHECK(strstr(e.msg, "label 'Good' in column credit_score (row ") != NULL);
  CHECK(strstr(e.msg, "is not one of the classes Poor, Standard") != NULL);
  spec_destroy(bad);
  free(y);
}

/* ------------------------------------------------------------- train */

static int version1;

TEST(train_registers_a_version)
{
  REQUIRE(setup_ok);
  struct pipeline_result res;
  struct err e = {0};
  enum err_code rc = train_small("manual__2025-09-01T00:00:00+00:00", 2, 30,
                                 0, &res, &e);
  if (rc)
    fprintf(stderr, "  %s\n%s", e.msg, logbuf);
  REQUIRE(rc == ERR_OK);
  version1 = res.version;
  CHECK_EQ_INT(res.version, 1);
  CHECK_EQ_INT(res.n_rows, 2500);
  CHECK_EQ_INT(res.n_val, 750);
  CHECK_EQ_INT(res.n_train, 1750);
  CHECK_EQ_INT(res.n_trials, 2);
  CHECK(res.best.accuracy > 0.5 && res.best.accuracy <= 1);
  CHECK_EQ_STR(res.run_prefix, "manual__2025-09-01T00_00_00_00_00");
  /* progress lines */
  CHECK(strstr(logbuf, "read 2500 rows x 22 features") != NULL);
  CHECK(strstr(logbuf, "trial 1/2 max_depth=7 colsample_bytree=0.8 "
                       "lambda=3: accuracy=") != NULL);
  CHECK(strstr(logbuf, "trial 2/2 max_depth=7 colsample_bytree=0.8 "
                       "lambda=5: accuracy=") != NULL);
  CHECK(strstr(logbuf, "best so far") != NULL);
  CHECK(strstr(logbuf, "registered credit_score_classification version 1")
        != NULL);

  /* layout */
  const char *files[] = {"model.ubj",        "preprocess.json", "meta.json",
                         "reference.json",   "validation.jsonl",
                         "sample.json"};
  for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
    CHECK(exists("%s/%s/versions/1/%s", regdir, MODEL, files[i]));
  for (int t = 1; t <= 2; t++) {
    CHECK(exists("%s/%s/runs/%s-t%02d/params.json", regdir, MODEL,
                 res.run_prefix, t));
    CHECK(exists("%s/%s/runs/%s-t%02d/metrics.json", regdir, MODEL,
                 res.run_prefix, t));
  }
  cJSON *p2 = read_json("%s/%s/runs/%s-t02/params.json", regdir, MODEL,
                        res.run_prefix);
  cJSON *m2 = read_json("%s/%s/runs/%s-t02/metrics.json", regdir, MODEL,
                        res.run_prefix);
  REQUIRE(p2 && m2);
  CHECK_EQ_STR(jstr(p2, "objective"), "multi:softprob");
  CHECK_EQ_INT(jnum(p2, "num_class"), 3);
  CHECK_NEAR(jnum(p2, "eta"), 0.3, 1e-12);
  CHECK_EQ_INT(jnum(p2, "max_depth"), 7);
  CHECK_EQ_INT(jnum(p2, "lambda"), 5);
  CHECK_EQ_INT(jnum(p2, "num_boost_round"), 30);
  CHECK_EQ_INT(jnum(p2, "early_stopping_rounds"), 50);
  CHECK_NEAR(jnum(m2, "accuracy"), res.trials[1].m.accuracy, 1e-12);
  CHECK(jnum(m2, "f1_macro") > 0);
  CHECK(jnum(m2, "logloss") > 0);
  CHECK(jnum(m2, "best_iteration") >= 0);
  CHECK_EQ_INT(jnum(m2, "n_trees"), 3 * (jnum(m2, "best_iteration") + 1));
  CHECK(jnum(m2, "seconds") >= 0);
  cJSON_Delete(p2);
  cJSON_Delete(m2);

  /* meta.json */
  cJSON *meta = NULL;
  REQUIRE(registry_read_meta(reg, MODEL, 1, &meta, &e) == ERR_OK);
  CHECK_EQ_STR(jstr(meta, "logical_date"), DS);
  CHECK_EQ_STR(jstr(meta, "dag_id"), "test_dag");
  CHECK_EQ_STR(jstr(meta, "dag_run_id"), "manual__2025-09-01T00:00:00+00:00");
  CHECK_EQ_INT(jnum(meta, "training_rows"), 2500);
  CHECK_EQ_INT(jnum(meta, "val_rows"), 750);
  CHECK_EQ_INT(jnum(meta, "trial_count"), 2);
  CHECK_EQ_INT(jnum(meta, "grid_size"), 27);
  CHECK_EQ_STR(jstr(meta, "spec_sha256"), spec->sha256);
  CHECK_EQ_STR(jstr(meta, "data_sha256"), res.data_sha256);
  CHECK_EQ_STR(jstr(meta, "xgboost_version"), train_xgb_version());
  const char *ct = jstr(meta, "creation_time");
  CHECK(ct && strlen(ct) == 27 && ct[10] == 'T' && ct[26] == 'Z');
  const cJSON *params = cJSON_GetObjectItemCaseSensitive(meta, "params");
  const cJSON *metrics = cJSON_GetObjectItemCaseSensitive(meta, "metrics");
  CHECK(cJSON_IsObject(params) && cJSON_IsObject(metrics));
  CHECK_NEAR(jnum(metrics, "accuracy"), res.best.accuracy, 1e-12);
  CHECK_NEAR(jnum(metrics, "f1_macro"), res.best.f1_macro, 1e-12);
  const cJSON *fs = cJSON_GetObjectItemCaseSensitive(meta, "feature_schema");
  const cJSON *outs = cJSON_GetObjectItemCaseSensitive(fs, "outputs");
  CHECK_EQ_INT(cJSON_GetArraySize(outs), res.n_outputs);
  const cJSON *cls = cJSON_GetObjectItemCaseSensitive(meta, "classes");
  CHECK_EQ_INT(cJSON_GetArraySize(cls), 3);
  cJSON_Delete(meta);

  /* reference.json: train split histograms */
  cJSON *ref = read_json("%s/%s/versions/1/reference.json", regdir, MODEL);
  REQUIRE(ref);
  CHECK_EQ_STR(jstr(ref, "format"), "mlopsd.reference");
  CHECK_EQ_INT(jnum(ref, "rows"), 1750);
  const cJSON *feats = cJSON_GetObjectItemCaseSensitive(ref, "features");
  CHECK_EQ_INT(cJSON_GetArraySize(feats), 22);
  const cJSON *f0 = cJSON_GetArrayItem(feats, 0);
  CHECK_EQ_STR(jstr(f0, "name"), "age");
  CHECK_EQ_INT(cJSON_GetArraySize(
                   cJSON_GetObjectItemCaseSensitive(f0, "edges")),
               11);
  double sum = 0;
  const cJSON *it;
  cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(f0, "counts"))
      sum += it->valuedouble;
  CHECK_NEAR(sum, 1750 * (1 - jnum(f0, "missing_share")), 0.5);
  const cJSON *occ = cJSON_GetArrayItem(feats, 17);
  CHECK_EQ_STR(jstr(occ, "kind"), "categorical");
  CHECK(cJSON_GetObjectItemCaseSensitive(occ, "categories") != NULL);
  const cJSON *tl = cJSON_GetArrayItem(feats, 20);
  CHECK_EQ_STR(jstr(tl, "kind"), "text");
  CHECK(cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(tl, "tokens"), "loan") != NULL);
  cJSON_Delete(ref);

  /* validation rows: 750 lines after the header, request shape */
  char path[900];
  snprintf(path, sizeof(path), "%s/%s/versions/1/validation.jsonl", regdir,
           MODEL);
  char *v = fx_read_file(path, NULL);
  REQUIRE(v);
  int lines = 0;
  for (char *q = v; *q; q++)
    lines += *q == '\n';
  CHECK_EQ_INT(lines, 751);
  CHECK(strncmp(v, "{\"format\":\"mlopsd.validation\"", 29) == 0);
  CHECK(strstr(v, "\"data\":{\"customer_id\":") != NULL);
  free(v);

  /* scoring the version on its own rows gives its recorded metrics */
  struct train_metrics sm;
  size_t n = 0;
  REQUIRE(pipeline_score(reg, MODEL, 1, 1, &sm, &n, &e) == ERR_OK);
  CHECK_EQ_INT(n, 750);
  CHECK_NEAR(sm.accuracy, res.best.accuracy, 1e-12);
  /* scoring goes through the version's calibration (fitted on these
   * rows without a gate split): the same classes, a log loss no worse
   * than the recorded uncalibrated one, and the calibration's own */
  CHECK(sm.logloss <= res.best.logloss + 1e-6);
  cJSON *mc = read_json("%s/%s/versions/1/meta.json", regdir, MODEL);
  const cJSON *cal = cJSON_GetObjectItemCaseSensitive(mc, "calibration");
  CHECK_EQ_STR(jstr(cal, "split"), "valid");
  CHECK_EQ_INT(jnum(cal, "rows"), 750);
  cJSON_Delete(mc);
  pipeline_result_free(&res);
}

TEST(training_is_deterministic)
{
  REQUIRE(setup_ok && version1);
  /* the same data, split seed and params give the same metrics; the
   * version is thrown away afterwards by training into a scratch name */
  struct pipeline_result a, b;
  struct err e = {0};
  REQUIRE(train_small("det-a", 1, 20, 0, &a, &e) == ERR_OK);
  REQUIRE(train_small("det-b", 1, 20, 0, &b, &e) == ERR_OK);
  CHECK_EQ_INT(b.version, a.version + 1);
  CHECK_EQ_STR(a.data_sha256, b.data_sha256);
  CHECK_NEAR(a.best.accuracy, b.best.accuracy, 0);
  CHECK_NEAR(a.best.logloss, b.best.logloss, 0);
  /* the model files are byte-identical */
  char pa[900], pb[900];
  snprintf(pa, sizeof(pa), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           a.version);
  snprintf(pb, sizeof(pb), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           b.version);
  char *fa = fx_read_file(pa, NULL), *fb = fx_read_file(pb, NULL);
  struct stat sa, sb;
  CHECK(fa && fb && stat(pa, &sa) == 0 && stat(pb, &sb) == 0 &&
        sa.st_size == sb.st_size &&
        memcmp(fa, fb, (size_t)sa.st_size) == 0);
  free(fa);
  free(fb);
  pipeline_result_free(&a);
  pipeline_result_free(&b);
}

/* Trials trained several at a time pick the same winner, with the same
 * model bytes and the same per-trial metrics, as one after another; every
 * trial is recorded once. */
TEST(parallel_trials_match_sequential)
{
  REQUIRE(setup_ok && version1);
  struct pipeline_result r[2];
  struct err e = {0};
  const int par[2] = {1, 3};
  for (int k = 0; k < 2; k++) {
    struct pipeline_opts o = {.ds = DS, .dag_id = "test_dag",
                              .dag_run_id = k ? "par-3" : "par-1",
                              .nthread = 1, .parallel = par[k],
                              .max_trials = 7, .num_boost_round = 25,
                              .early_stopping_rounds = 5, .log = log_cb};
    loglen = 0;
    REQUIRE(pipeline_train(reg, pool, spec, &o, &r[k], &e) == ERR_OK);
    CHECK_EQ_INT(r[k].n_trials, 7);
  }
  CHECK(strstr(logbuf, "3 at a time with 1 XGBoost thread each") != NULL);
  CHECK_EQ_INT(r[1].best_trial, r[0].best_trial);
  CHECK_NEAR(r[1].best.accuracy, r[0].best.accuracy, 0);
  for (size_t i = 0; i < 7; i++) {
    CHECK_NEAR(r[1].trials[i].m.accuracy, r[0].trials[i].m.accuracy, 0);
    CHECK_NEAR(r[1].trials[i].m.logloss, r[0].trials[i].m.logloss, 0);
    CHECK_EQ_INT(r[1].trials[i].rounds_run, r[0].trials[i].rounds_run);
    CHECK(exists("%s/%s/runs/par-3-t%02zu/metrics.json", regdir, MODEL,
                 i + 1));
  }
  CHECK(!exists("%s/%s/runs/par-3-t08", regdir, MODEL));
  char pa[900], pb[900];
  snprintf(pa, sizeof(pa), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           r[0].version);
  snprintf(pb, sizeof(pb), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           r[1].version);
  char *fa = fx_read_file(pa, NULL), *fb = fx_read_file(pb, NULL);
  struct stat sa, sb;
  CHECK(fa && fb && stat(pa, &sa) == 0 && stat(pb, &sb) == 0 &&
        sa.st_size == sb.st_size &&
        memcmp(fa, fb, (size_t)sa.st_size) == 0);
  free(fa);
  free(fb);
  cJSON *m = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL,
                       r[1].version);
  REQUIRE(m);
  CHECK_EQ_INT(jnum(cJSON_GetObjectItem(m, "selection"), "trial"),
               r[0].best_trial + 1);
  cJSON_Delete(m);
  pipeline_result_free(&r[0]);
  pipeline_result_free(&r[1]);
}

/* Shared trials with no daemon helping: this run claims every row itself
 * and registers the version a sequential run gives (same model bytes). */
TEST(shared_trials_alone_match_sequential)
{
  REQUIRE(setup_ok && version1);
  struct pipeline_result r;
  struct err e = {0};
  struct pipeline_opts o = {.ds = DS, .dag_id = "test_dag",
                            .dag_run_id = "shared-1", .nthread = 1,
                            .parallel = 2, .shared_trials = 1,
                            .max_trials = 7, .num_boost_round = 25,
                            .early_stopping_rounds = 5, .log = log_cb};
  loglen = 0;
  REQUIRE(pipeline_train(reg, pool, spec, &o, &r, &e) == ERR_OK);
  CHECK(strstr(logbuf, "shared trials: 7 of 7 trained by this run, 0 by "
                       "other daemons") != NULL);
  int64_t sid = q1("SELECT MAX(id) FROM train_search", NULL);
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM train_trial WHERE search_id = %lld AND "
           "state = 'success' AND try_number = 1 AND model_hex IS NOT NULL",
           (long long)sid);
  CHECK_EQ_INT(q1(sql, NULL), 7);
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(DISTINCT claimed_by) FROM train_trial WHERE "
           "search_id = %lld", (long long)sid);
  CHECK_EQ_INT(q1(sql, NULL), 1);
  snprintf(sql, sizeof(sql),
           "SELECT state = 'success' FROM train_search WHERE id = %lld",
           (long long)sid);
  CHECK_EQ_INT(q1(sql, NULL), 1);
  /* par-1 is parallel_trials_match_sequential's sequential run */
  cJSON *a = read_json("%s/%s/runs/par-1-t03/metrics.json", regdir, MODEL);
  cJSON *b = read_json("%s/%s/runs/shared-1-t03/metrics.json", regdir,
                       MODEL);
  REQUIRE(a && b);
  CHECK_NEAR(jnum(a, "accuracy"), jnum(b, "accuracy"), 0);
  CHECK_NEAR(jnum(a, "logloss"), jnum(b, "logloss"), 0);
  cJSON_Delete(a);
  cJSON_Delete(b);
  char pa[900], pb[900];
  snprintf(pa, sizeof(pa), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           r.version);
  int seq = 0;
  {
    /* the version par-1 registered: the one whose best_run starts par-1 */
    for (int v = 1; v < r.version && !seq; v++) {
      cJSON *m = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL, v);
      if (m && !strncmp(jstr(m, "best_run"), "par-1-", 6))
        seq = v;
      cJSON_Delete(m);
    }
  }
  REQUIRE(seq > 0);
  snprintf(pb, sizeof(pb), "%s/%s/versions/%d/model.ubj", regdir, MODEL,
           seq);
  char *fa = fx_read_file(pa, NULL), *fb = fx_read_file(pb, NULL);
  struct stat sa, sb;
  CHECK(fa && fb && stat(pa, &sa) == 0 && stat(pb, &sb) == 0 &&
        sa.st_size == sb.st_size &&
        memcmp(fa, fb, (size_t)sa.st_size) == 0);
  free(fa);
  free(fb);
  pipeline_result_free(&r);
}

/* The claim protocol on its own: queued trials first, an expired claim is
 * taken over (try 2), and the old claimant can neither renew nor finish. */
TEST(trialq_lease_takeover)
{
  REQUIRE(setup_ok);
  struct trialq_search q = {.trials = 2, .num_boost_round = 5,
                            .early_stopping_rounds = 0};
  snprintf(q.model, sizeof(q.model), "m");
  snprintf(q.ds, sizeof(q.ds), "2025-09-01");
  snprintf(q.run_prefix, sizeof(q.run_prefix), "lease");
  snprintf(q.spec_sha256, sizeof(q.spec_sha256), "%064d", 0);
  snprintf(q.data_sha256, sizeof(q.data_sha256), "%064d", 0);
  snprintf(q.owner, sizeof(q.owner), "coord:1:x");
  struct err e = {0};
  REQUIRE(trialq_search_create(pool, &q, &e) == ERR_OK);
  int64_t sid;
  int trial, tries;
  REQUIRE(trialq_claim(pool, q.id, NULL, NULL, 0, "dead:1:a", 30, &sid,
                       &trial, &tries, &e) == ERR_OK);
  CHECK_EQ_INT(trial, 0);
  CHECK_EQ_INT(tries, 1);
  /* a helper (search_id 0) sees the live search unless it is excluded */
  int64_t skip = q.id;
  CHECK(trialq_claim(pool, 0, NULL, &skip, 1, "h:2:b", 30, &sid, &trial,
                     &tries, &e) == ERR_NOTFOUND);
  CHECK(trialq_claim(pool, 0, "coord:", NULL, 0, "h:2:b", 30, &sid, &trial,
                     &tries, &e) == ERR_NOTFOUND);
  REQUIRE(trialq_claim(pool, 0, "other:", NULL, 0, "h:2:b", 30, &sid,
                       &trial, &tries, &e) == ERR_OK);
  CHECK_EQ_INT(sid, q.id);
  CHECK_EQ_INT(trial, 1);
  /* nothing left until trial 0's lease runs out */
  CHECK(trialq_claim(pool, q.id, NULL, NULL, 0, "h:2:b", 30, &sid, &trial,
                     &tries, &e) == ERR_NOTFOUND);
  char sql[256];
  snprintf(sql, sizeof(sql),
           "UPDATE train_trial SET heartbeat_at = UTC_TIMESTAMP(6) - "
           "INTERVAL 1 HOUR WHERE search_id = %lld AND trial = 0",
           (long long)q.id);
  REQUIRE(exec_sql(pool, sql));
  REQUIRE(trialq_claim(pool, q.id, NULL, NULL, 0, "h:2:b", 30, &sid, &trial,
                       &tries, &e) == ERR_OK);
  CHECK_EQ_INT(trial, 0);
  CHECK_EQ_INT(tries, 2);
  CHECK(trialq_heartbeat(pool, q.id, 0, "dead:1:a", &e) == ERR_STATE);
  CHECK(trialq_finish(pool, q.id, 0, "dead:1:a", 1, 1.0, "{}", "{}", "x", 1,
                      NULL, &e) == ERR_STATE);
  CHECK(trialq_heartbeat(pool, q.id, 0, "h:2:b", &e) == ERR_OK);
  CHECK(trialq_finish(pool, q.id, 0, "h:2:b", 1, 1.0, "{\"a\":1}", "{}",
                      "\x00\xff", 2, NULL, &e) == ERR_OK);
  char *buf = NULL;
  size_t len = 0;
  REQUIRE(trialq_model(pool, q.id, 0, &buf, &len, &e) == ERR_OK);
  CHECK(len == 2 && (unsigned char)buf[0] == 0 &&
        (unsigned char)buf[1] == 0xff);
  free(buf);
  struct trialq_counts c;
  REQUIRE(trialq_count(pool, q.id, &c, &e) == ERR_OK);
  CHECK_EQ_INT(c.success, 1);
  CHECK_EQ_INT(c.running, 1);
  CHECK(trialq_search_end(pool, q.id, "failed", &e) == ERR_OK);
  /* an ended search is no longer offered to helpers */
  CHECK(trialq_claim(pool, 0, NULL, NULL, 0, "h:3:c", 30, &sid, &trial,
                     &tries, &e) == ERR_NOTFOUND);
}

/* The version the staging alias names (0: none); -1, a failed check,
 * when it cannot be read. */
static int staging_version(void)
{
  struct err e = {0};
  int v = 0;
  if (registry_alias_get(reg, MODEL, PIPELINE_STAGING, &v, &e) != ERR_OK) {
    check_fail_at(__FILE__, __LINE__, "staging alias of %s: %s", MODEL,
                  e.msg);
    return -1;
  }
  return v;
}

/* Rows of deployment for MODEL matching COND (SQL); -1 on error. */
static int64_t deployments(const char *cond)
{
  char sql[1024];
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM deployment WHERE model = ? AND %s", cond);
  return q1(sql, MODEL);
}

static int latest_version(void);
static _Atomic int cancel_after;
static int cancel_fn(void *ud)
{
  (void)ud;
  return --cancel_after < 0;
}

/* pipeline_train with O, asked to stop after AFTER polls of its cancel
 * callback: ERR_CANCELED with a message containing WANT (NULL: not looked
 * at), no new version and no draft left behind. */
static void check_canceled(struct pipeline_opts *o, int after,
                           const char *want)
{
  int before = latest_version();
  struct pipeline_result res;
  struct err e = {0};
  o->cancel = cancel_fn;
  cancel_after = after;
  enum err_code rc = pipeline_train(reg, pool, spec, o, &res, &e);
  if (rc != ERR_CANCELED)
    check_fail_at(__FILE__, __LINE__, "stop after %d polls (parallel %d): "
                  "%s: %s, want cancelled", after, o->parallel, err_str(rc),
                  e.msg);
  if (want && !strstr(e.msg, want))
    check_fail_at(__FILE__, __LINE__, "stop after %d polls: \"%s\" lacks "
                  "\"%s\"", after, e.msg, want);
  if (latest_version() != before)
    check_fail_at(__FILE__, __LINE__, "stop after %d polls: version %d, "
                  "want %d", after, latest_version(), before);
  char tdir[900];
  snprintf(tdir, sizeof(tdir), "%s/%s/tmp", regdir, MODEL);
  DIR *d = opendir(tdir);
  int drafts = 0;
  struct dirent *de;
  while (d && (de = readdir(d)))
    drafts += strncmp(de->d_name, "draft-", 6) == 0 &&
              !strstr(de->d_name, ".lock");
  if (d)
    closedir(d);
  if (drafts != 0)
    check_fail_at(__FILE__, __LINE__, "stop after %d polls: %d drafts left "
                  "in %s", after, drafts, tdir);
}

/* A stop request reaches every trial thread: no version, no draft. */
TEST(parallel_cancel_leaves_no_version)
{
  REQUIRE(setup_ok);
  struct pipeline_opts o = {.ds = DS, .nthread = 1, .parallel = 2,
                            .max_trials = 6, .num_boost_round = 30,
                            .early_stopping_rounds = -1};
  check_canceled(&o, 60, "cancel"); /* past the read: inside the trials */
}

/* ------------------------------------------------------------- tasks */

static int latest_version(void)
{
  int v = 0;
  struct err e = {0};
  if (registry_latest(reg, MODEL, &v, &e) != ERR_OK)
    return 0;
  return v;
}

TEST(validate_passes_without_production_and_deploy_records)
{
  REQUIRE(setup_ok && version1);
  struct task_ctx t;
  struct tfields f = {.k = {"model"}, .v = {MODEL}, .n = 1};
  task_setup(&t, &f, "run_validate_1");
  struct err e = {0};
  int latest = latest_version();
  REQUIRE(task_type_validate.run(&t, &e) == ERR_OK);
  char want[128];
  snprintf(want, sizeof(want), "no production version: candidate %d passes",
           latest);
  CHECK(strstr(f.log, want) != NULL);
  /* a candidate that passes gets alias staging (no deployment row) */
  int st = 0;
  REQUIRE((st = staging_version()) >= 0);
  CHECK_EQ_INT(st, latest);
  snprintf(want, sizeof(want), "alias staging of %s -> %d", MODEL, latest);
  CHECK(strstr(f.log, want) != NULL);
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM deployment WHERE model = ?", MODEL),
               0);

  /* deploy version 1 explicitly */
  struct tfields d = {.k = {"model", "version"}, .v = {MODEL, "1"}, .n = 2};
  task_setup(&t, &d, "run_deploy_1");
  enum err_code rc = task_type_deploy.run(&t, &e);
  if (rc)
    fprintf(stderr, "  deploy: %s\n", e.msg);
  REQUIRE(rc == ERR_OK);
  int v = 0;
  REQUIRE(registry_alias_get(reg, MODEL, "production", &v, &e) == ERR_OK);
  CHECK_EQ_INT(v, 1);
  CHECK_EQ_INT(deployments("action = 'deploy' AND to_version = 1 AND "
                           "from_version IS NULL AND alias = 'production' AND "
                           "actor = 'dag:test_dag/run_deploy_1' AND created_at "
                           "IS NOT NULL"),
               1);
  /* a bad version field is refused at load time (a name is an alias) */
  const char *badv[] = {"../x", "0", "2x", "a b"};
  for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
    struct tfields b = {.k = {"model", "version"}, .v = {MODEL, badv[i]},
                        .n = 2};
    task_setup(&t, &b, "r");
    CHECK(task_type_deploy.check(&t, &e) == ERR_INVAL);
    CHECK(strstr(e.msg, "'latest' or an alias name") != NULL);
  }
  struct tfields ba = {.k = {"model", "version"}, .v = {MODEL, "staging"},
                       .n = 2};
  task_setup(&t, &ba, "r");
  CHECK(task_type_deploy.check(&t, &e) == ERR_OK);
  struct tfields bm = {.k = {"model"}, .v = {"../etc"}, .n = 1};
  task_setup(&t, &bm, "r");
  CHECK(task_type_train.check(&t, &e) == ERR_INVAL);
  struct tfields bv = {.k = {"model", "metric"}, .v = {MODEL, "auc"},
                       .n = 2};
  task_setup(&t, &bv, "r");
  CHECK(task_type_validate.check(&t, &e) == ERR_INVAL);
}

TEST(validate_fails_a_worse_candidate)
{
  REQUIRE(setup_ok && version1);
  /* one boosting round: clearly worse than production (version 1) */
  struct pipeline_result w;
  struct err e = {0};
  REQUIRE(train_small("worse", 1, 1, -1, &w, &e) == ERR_OK);
  struct task_ctx t;
  struct tfields f = {.k = {"model", "tolerance"}, .v = {MODEL, "0"}, .n = 2};
  task_setup(&t, &f, "run_validate_2");
  enum err_code rc = task_type_validate.run(&t, &e);
  CHECK(rc == ERR_STATE);
  CHECK(strstr(e.msg, "validation failed: candidate") != NULL);
  CHECK(strstr(e.msg, "accuracy=") != NULL);
  CHECK(strstr(e.msg, "is worse than production 1") != NULL);
  fprintf(stderr, "  (gate: %s)\n", e.msg);
  /* every version here trained on the same rows with the same split: no
   * validation row of the candidate was a training row of version 1 */
  char want[160];
  snprintf(want, sizeof(want), "scored on 750 rows neither version trained "
                               "on (0 dropped: in production version 1's "
                               "training split)");
  CHECK(strstr(f.log, want) != NULL);
  /* a failed gate leaves staging where it was */
  int st = 0;
  REQUIRE((st = staging_version()) >= 0);
  CHECK(st != w.version);
  CHECK_EQ_INT(deployments("action = 'skip' AND from_version = 1 AND "
                           "to_version = (SELECT MAX(to_version) FROM "
                           "deployment) AND reason LIKE 'validate: candidate % "
                           "fails'"),
               1);
  /* logloss as the metric: lower is better, still fails */
  struct tfields g = {.k = {"model", "metric"}, .v = {MODEL, "logloss"},
                      .n = 2};
  task_setup(&t, &g, "run_validate_3");
  CHECK(task_type_validate.run(&t, &e) == ERR_STATE);
  CHECK(strstr(e.msg, "logloss=") != NULL);
  /* a huge tolerance lets it pass, and it becomes staging */
  struct tfields h = {.k = {"model", "tolerance"}, .v = {MODEL, "1"}, .n = 2};
  task_setup(&t, &h, "run_validate_4");
  CHECK(task_type_validate.run(&t, &e) == ERR_OK);
  REQUIRE((st = staging_version()) >= 0);
  CHECK_EQ_INT(st, w.version);
  /* min_rows must be a positive integer */
  struct tfields mr = {.k = {"model", "min_rows"}, .v = {MODEL, "0"}, .n = 2};
  task_setup(&t, &mr, "r");
  CHECK(task_type_validate.check(&t, &e) == ERR_INVAL);
  pipeline_result_free(&w);
}

TEST(train_task_logs_progress_and_version)
{
  REQUIRE(setup_ok);
  struct task_ctx t;
  struct tfields f = {.k = {"model"}, .v = {MODEL}, .n = 1};
  task_setup(&t, &f, "run_train_1");
  struct err e = {0};
  int before = latest_version();
  enum err_code rc = task_type_train.run(&t, &e);
  if (rc)
    fprintf(stderr, "  train: %s\n%s", e.msg, f.log);
  REQUIRE(rc == ERR_OK);
  CHECK_EQ_INT(latest_version(), before + 1);
  CHECK(strstr(f.log, "trial 1/2 max_depth=3: accuracy=") != NULL);
  CHECK(strstr(f.log, "trial 2/2 max_depth=4: accuracy=") != NULL);
  char want[64];
  snprintf(want, sizeof(want), "\nversion %d\n", before + 1);
  CHECK(strstr(f.log, want) != NULL);
  /* its runs are named after the DAG run */
  CHECK(exists("%s/%s/runs/run_train_1-t01/metrics.json", regdir, MODEL));
  /* a zero-row date fails the task clearly */
  t.ds = "2025-05-01";
  CHECK(task_type_train.run(&t, &e) == ERR_NOTFOUND);
  CHECK_EQ_STR(e.msg, "no training rows in credit_score_features_target for "
                      "base_dt=2025-05-01");
  CHECK_EQ_INT(latest_version(), before + 1);
}

TEST(cancel_leaves_no_version)
{
  REQUIRE(setup_ok);
  struct pipeline_opts o = {.ds = DS, .nthread = 1, .max_trials = 2,
                            .num_boost_round = 30};
  check_canceled(&o, 3, NULL); /* a few polls: stops while reading or
                                * training */
  check_canceled(&o, 40, NULL);
}

/* ------------------------------------------------------------- CLI */

TEST(cli_promote_rollback_show_list)
{
  REQUIRE(setup_ok && version1);
  int latest = latest_version();
  REQUIRE(latest >= 3);
  char vs[16];
  snprintf(vs, sizeof(vs), "%d", latest);
  struct fx_run r;
  const char *pr[] = {"models", "promote", MODEL, vs, NULL};
  mlopsd(&r, pr);
  if (r.rc)
    fx_show("promote", &r);
  CHECK_EQ_INT(r.rc, 0);
  char want[128];
  snprintf(want, sizeof(want), "%s: production 1 -> %d (promote)", MODEL,
           latest);
  CHECK(strstr(r.out, want) != NULL);
  CHECK_EQ_INT(deployments("action = 'promote' AND from_version = 1 AND actor "
                           "= 'cli:tester'"),
               1);

  const char *rb[] = {"models", "rollback", MODEL, NULL};
  mlopsd(&r, rb);
  if (r.rc)
    fx_show("rollback", &r);
  CHECK_EQ_INT(r.rc, 0);
  snprintf(want, sizeof(want), "%s: production %d -> 1 (rollback)", MODEL,
           latest);
  CHECK(strstr(r.out, want) != NULL);
  int v = 0;
  struct err e = {0};
  REQUIRE(registry_alias_get(reg, MODEL, "production", &v, &e) == ERR_OK);
  CHECK_EQ_INT(v, 1);
  CHECK_EQ_INT(deployments("action = 'rollback' AND to_version = 1"),
               1);
  /* nothing before version 1: a second rollback fails, alias unchanged */
  mlopsd(&r, rb);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "no earlier production version of "
                      "credit_score_classification") != NULL);
  REQUIRE(registry_alias_get(reg, MODEL, "production", &v, &e) == ERR_OK);
  CHECK_EQ_INT(v, 1);

  /* usage errors */
  const char *bad1[] = {"models", "promote", MODEL, "x", NULL};
  mlopsd(&r, bad1);
  CHECK_EQ_INT(r.rc, 2);
  const char *bad2[] = {"models", "promote", MODEL, "999", NULL};
  mlopsd(&r, bad2);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "has no version 999") != NULL);
  const char *bad3[] = {"models", "frobnicate", NULL};
  mlopsd(&r, bad3);
  CHECK_EQ_INT(r.rc, 2);
  const char *help[] = {"models", "rollback", "--help", NULL};
  mlopsd(&r, help);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(strstr(r.out, "usage: mlopsd [-c FILE] models rollback") != NULL);

  /* show and list */
  const char *sh[] = {"models", "show", MODEL, NULL};
  mlopsd(&r, sh);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(strstr(r.out, "version        1  (production)") != NULL);
  CHECK(strstr(r.out, "logical date   2025-09-01") != NULL);
  CHECK(strstr(r.out, "rows           2500 (train 1750, validation 750)") !=
        NULL);
  CHECK(strstr(r.out, "data sha256    ") != NULL);
  CHECK(strstr(r.out, "metrics        accuracy=") != NULL);
  const char *shj[] = {"models", "show", MODEL ":1", "--json", NULL};
  mlopsd(&r, shj);
  CHECK_EQ_INT(r.rc, 0);
  cJSON *j = cJSON_Parse(r.out);
  CHECK(j && jnum(j, "version") == 1);
  CHECK(j && jnum(cJSON_GetObjectItemCaseSensitive(j, "meta"),
                  "training_rows") == 2500);
  cJSON_Delete(j);
  const char *ls[] = {"models", "list", NULL};
  mlopsd(&r, ls);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(strstr(r.out, MODEL) != NULL);
  CHECK(strstr(r.out, "accuracy=") != NULL);
}

TEST(corrupt_meta_is_reported_and_others_still_work)
{
  REQUIRE(setup_ok && version1);
  char p[900];
  snprintf(p, sizeof(p), "%s/%s/versions/2/meta.json", regdir, MODEL);
  REQUIRE(write_text(p, "{\"format\": \"mlopsd.meta\", \"params\": {"));
  struct fx_run r;
  const char *sh[] = {"models", "show", MODEL ":2", NULL};
  mlopsd(&r, sh);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "versions/2/meta.json") != NULL);
  CHECK(strstr(r.err, "invalid JSON") != NULL);
  const char *sh1[] = {"models", "show", MODEL ":1", NULL};
  mlopsd(&r, sh1);
  CHECK_EQ_INT(r.rc, 0);
  const char *ls[] = {"models", "list", "--json", NULL};
  mlopsd(&r, ls);
  CHECK_EQ_INT(r.rc, 0);
  /* predict with version 2 needs no meta.json; with version 1 neither */
  const char *body = "{\"data\": {\"customer_id\": 4096, \"age\": 18, "
                     "\"occupation\": \"Lawyer\", \"annual_income\": "
                     "30625.94, \"monthly_inhand_salary\": 2706.16, "
                     "\"num_bank_accounts\": 6, \"num_credit_card\": 5, "
                     "\"interest_rate\": 27, \"num_of_loan\": 2, "
                     "\"type_of_loan\": \"credit-builder loan,home equity "
                     "loan\", \"delay_from_due_date\": 57, "
                     "\"num_of_delayed_payment\": 26, "
                     "\"changed_credit_limit\": 1.63, "
                     "\"num_credit_inquiries\": 11, \"credit_mix\": \"Bad\", "
                     "\"outstanding_debt\": 1562.91, "
                     "\"credit_utilization_ratio\": 30.07, "
                     "\"credit_history_age\": 129, \"payment_of_min_amount\": "
                     "\"Yes\", \"total_emi_per_month\": 42.94, "
                     "\"amount_invested_monthly\": 77.31, "
                     "\"payment_behaviour\": "
                     "\"High_spent_Medium_value_payments\", "
                     "\"monthly_balance\": 400.36}}";
  const char *pv[] = {"predict", MODEL, "--json", body, NULL};
  mlopsd(&r, pv);
  if (r.rc)
    fx_show("predict", &r);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(strstr(r.out, "{\"customer_id\":4096,\"predict\":\"") != NULL);
  CHECK(strstr(r.out, "\"model_version\":\"1\"}") != NULL);
  /* invalid input: every bad field, exit 1, 400 body on stdout */
  const char *bad = "{\"data\": [{\"age\": -3, \"credit_mix\": \"Weird\", "
                    "\"x\": 1}]}";
  const char *pb[] = {"predict", MODEL ":2", "--json", bad, NULL};
  mlopsd(&r, pb);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.out, "{\"error\":\"invalid input\",\"fields\":{") != NULL);
  CHECK(strstr(r.out, "\"data[0].age\":\"must be > 0\"") != NULL);
  CHECK(strstr(r.out, "\"data[0].credit_mix\":\"must be one of Good, Bad, "
                      "Standard\"") != NULL);
  CHECK(strstr(r.out, "\"data[0].x\":\"unknown field\"") != NULL);
  const char *pj[] = {"predict", MODEL, "--json", "{\"data\": ", NULL};
  mlopsd(&r, pj);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.out, "{\"error\":\"malformed JSON: ") != NULL);
  cJSON *m = NULL;
  struct err e = {0};
  CHECK(registry_read_meta(reg, MODEL, 2, &m, &e) == ERR_PARSE);
  cJSON_Delete(m);
}

/* ---- overlapping windows: held-out rows only ------------------------- */

/* Rows of version val_version's validation.jsonl whose "key" is a line of
 * version train_version's train_keys.jsonl; *n_val gets all its rows. */
static size_t count_overlap(int val_version, int train_version,
                            size_t *n_val)
{
  char p[900];
  snprintf(p, sizeof(p), "%s/%s/versions/%d/train_keys.jsonl", regdir, MODEL,
           train_version);
  char *keys = fx_read_file(p, NULL);
  snprintf(p, sizeof(p), "%s/%s/versions/%d/validation.jsonl", regdir, MODEL,
           val_version);
  char *rows = fx_read_file(p, NULL);
  size_t hits = 0;
  *n_val = 0;
  char *save = NULL;
  for (char *l = rows ? strtok_r(rows, "\n", &save) : NULL; l && keys;
       l = strtok_r(NULL, "\n", &save)) {
    cJSON *j = cJSON_Parse(l);
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key");
    char *kt = cJSON_IsArray(k) ? cJSON_PrintUnformatted(k) : NULL;
    if (kt) {
      char needle[256];
      snprintf(needle, sizeof(needle), "\n%s\n", kt);
      hits += strstr(keys, needle) != NULL;
      (*n_val)++;
    }
    cJSON_free(kt);
    cJSON_Delete(j);
  }
  free(keys);
  free(rows);
  return hits;
}

TEST(validate_scores_rows_neither_version_trained_on)
{
  REQUIRE(setup_ok && version1);
  struct err e = {0};
  int prod = 0;
  REQUIRE(registry_alias_get(reg, MODEL, "production", &prod, &e) == ERR_OK);
  REQUIRE(prod == 1); /* the CLI test rolled back to it */
  /* the next day's window (2025-08-02..09-02) is most of version 1's */
  REQUIRE(run_features("2025-09-02"));
  CHECK(q1("SELECT COUNT(*) FROM credit_score_features_target WHERE "
           "base_dt = ?",
           "2025-09-02") > 2000);
  struct pipeline_opts o = {.ds = "2025-09-02", .dag_id = "test_dag",
                            .dag_run_id = "overlap", .nthread = 1,
                            .max_trials = 2, .num_boost_round = 30,
                            .log = log_cb};
  struct pipeline_result res;
  REQUIRE(pipeline_train(reg, pool, spec, &o, &res, &e) == ERR_OK);
  int cand = res.version;

  /* version 1's training keys: the (id, customer_id) of its 1,750 rows
   * (base_dt, one value over the set, is not part of the key) */
  cJSON *h = NULL;
  {
    char p[900];
    snprintf(p, sizeof(p), "%s/%s/versions/1/train_keys.jsonl", regdir,
             MODEL);
    char *t = fx_read_file(p, NULL);
    REQUIRE(t);
    char *nl = strchr(t, '\n');
    if (nl)
      *nl = '\0';
    h = cJSON_Parse(t);
    free(t);
  }
  REQUIRE(h);
  CHECK_EQ_STR(jstr(h, "format"), "mlopsd.train_keys");
  CHECK_EQ_INT(jnum(h, "rows"), 1750);
  CHECK_EQ_INT(jnum(h, "keys"), 1750);
  char *cols =
      cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(h, "columns"));
  CHECK_EQ_STR(cols, "[\"id\",\"customer_id\"]");
  cJSON_free(cols);
  cJSON_Delete(h);
  size_t n_val = 0;
  size_t overlap = count_overlap(cand, 1, &n_val);
  CHECK_EQ_INT(n_val, res.n_val);
  CHECK(overlap > n_val / 2); /* most were version 1's training rows */

  /* the gate scores both on the rest only */
  struct pipeline_verdict v;
  REQUIRE(pipeline_validate(reg, MODEL, SPEC_METRIC_ACCURACY, 0, 50, &v,
                            &e) == ERR_OK);
  CHECK_EQ_INT(v.candidate, cand);
  CHECK_EQ_INT(v.production, 1);
  CHECK_EQ_INT(v.heldout, 1);
  CHECK_EQ_INT(v.n_dropped, overlap);
  CHECK_EQ_INT(v.n_rows, n_val - overlap);
  char want[256];
  snprintf(want, sizeof(want),
           "scored on %zu rows neither version trained on (%zu dropped",
           n_val - overlap, overlap);
  CHECK(strstr(v.note, want) != NULL);
  snprintf(want, sizeof(want),
           "on %zu validation rows of version %d that neither version "
           "trained on, %zu dropped (tolerance 0",
           n_val - overlap, cand, overlap);
  CHECK(strstr(v.message, want) != NULL);
  /* the old way (all the candidate's validation rows) scores production
   * largely in-sample: far above its held-out score */
  struct train_metrics all, ho;
  size_t n = 0, nd = 0;
  REQUIRE(pipeline_score(reg, MODEL, 1, cand, &all, &n, &e) == ERR_OK);
  CHECK_EQ_INT(n, n_val);
  fprintf(stderr,
          "  (production 1 on all %zu rows: accuracy %.4f; on the %zu "
          "held-out rows: %.4f; candidate %d there: %.4f)\n",
          n, all.accuracy, v.n_rows, v.prod_score, cand, v.cand_score);
  CHECK(all.accuracy > v.prod_score + 0.1);
  REQUIRE(pipeline_score_heldout(reg, MODEL, 1, cand, 1, &ho, &n, &nd,
                                 &e) == ERR_OK);
  CHECK_EQ_INT(n, v.n_rows);
  CHECK_EQ_INT(nd, overlap);
  CHECK_NEAR(ho.accuracy, v.prod_score, 0);

  /* too few held-out rows: the candidate fails, production stays */
  int staged = 0;
  REQUIRE((staged = staging_version()) >= 0);
  struct task_ctx t;
  struct tfields f = {.k = {"model", "min_rows"}, .v = {MODEL, "100000"},
                      .n = 2};
  task_setup(&t, &f, "run_validate_few");
  CHECK(task_type_validate.run(&t, &e) == ERR_STATE);
  snprintf(want, sizeof(want),
           "candidate %d: only %zu of its %zu validation rows were not in "
           "production version 1's training split (%zu dropped), fewer than "
           "min_rows 100000",
           cand, n_val - overlap, n_val, overlap);
  CHECK(strstr(e.msg, want) != NULL);
  CHECK_EQ_INT(deployments("action = 'skip' AND reason LIKE '%fewer than "
                           "min_rows%'"),
               1);
  int st = 0;
  REQUIRE((st = staging_version()) >= 0);
  CHECK_EQ_INT(st, staged);

  /* a production version without train keys (an old one): all rows, as
   * before, and the note says why */
  char kp[900], kb[920];
  snprintf(kp, sizeof(kp), "%s/%s/versions/1/train_keys.jsonl", regdir,
           MODEL);
  snprintf(kb, sizeof(kb), "%s.away", kp);
  REQUIRE(rename(kp, kb) == 0);
  struct pipeline_verdict fb;
  enum err_code rc = pipeline_validate(reg, MODEL, SPEC_METRIC_ACCURACY, 0,
                                       50, &fb, &e);
  REQUIRE(rename(kb, kp) == 0);
  REQUIRE(rc == ERR_OK);
  CHECK_EQ_INT(fb.heldout, 0);
  CHECK_EQ_INT(fb.n_rows, n_val);
  CHECK_EQ_INT(fb.n_dropped, 0);
  CHECK(strstr(fb.note, "production version 1 has no train_keys.jsonl") !=
        NULL);
  CHECK(strstr(fb.message, "on all ") != NULL);
  CHECK_NEAR(fb.prod_score, all.accuracy, 0);

  /* a pass moves staging; `version: staging` deploys it */
  struct tfields g = {.k = {"model", "tolerance"}, .v = {MODEL, "1"},
                      .n = 2};
  task_setup(&t, &g, "run_validate_overlap");
  REQUIRE(task_type_validate.run(&t, &e) == ERR_OK);
  snprintf(want, sizeof(want),
           "scored on %zu rows neither version trained on (%zu dropped",
           n_val - overlap, overlap);
  CHECK(strstr(g.log, want) != NULL);
  REQUIRE((st = staging_version()) >= 0);
  CHECK_EQ_INT(st, cand);
  struct tfields d = {.k = {"model", "version"}, .v = {MODEL, "staging"},
                      .n = 2};
  task_setup(&t, &d, "run_deploy_staging");
  rc = task_type_deploy.run(&t, &e);
  if (rc)
    fprintf(stderr, "  deploy: %s\n", e.msg);
  CHECK(rc == ERR_OK);
  REQUIRE(registry_alias_get(reg, MODEL, "production", &prod, &e) == ERR_OK);
  CHECK_EQ_INT(prod, cand);
  CHECK_EQ_INT(deployments("action = 'deploy' AND from_version = 1 AND reason "
                           "LIKE 'deploy task: version % (alias staging) "
                           "replaces 1'"),
               1);
  /* an alias that is not set: a clear failure; with only_if_newer (the
   * CD branch) a skip */
  struct tfields u = {.k = {"model", "version"}, .v = {MODEL, "canary"},
                      .n = 2};
  task_setup(&t, &u, "run_deploy_canary");
  CHECK(task_type_deploy.run(&t, &e) == ERR_NOTFOUND);
  CHECK(strstr(e.msg, "alias canary of credit_score_classification is not "
                      "set") != NULL);
  struct tfields un = {.k = {"model", "version", "only_if_newer"},
                       .v = {MODEL, "canary", "true"}, .n = 3};
  task_setup(&t, &un, "run_deploy_canary2");
  CHECK(task_type_deploy.run(&t, &e) == ERR_OK);
  CHECK_EQ_INT(t.skip, 1);
  REQUIRE(registry_alias_get(reg, MODEL, "production", &prod, &e) == ERR_OK);
  CHECK_EQ_INT(prod, cand);
  pipeline_result_free(&res);
}

/* ---- the three-way split (issue 13) ----------------------------------- */

/* The customer_id (second key element) of every row of a version's
 * FILE (validation.jsonl, gate.jsonl: "key" of each line; train_keys.jsonl:
 * each line is the key) appended to out as "\n<id>\n" entries. */
static size_t customers_of(int version, const char *file, char *out,
                           size_t cap)
{
  char p[900];
  snprintf(p, sizeof(p), "%s/%s/versions/%d/%s", regdir, MODEL, version,
           file);
  char *t = fx_read_file(p, NULL);
  size_t n = 0, len = strlen(out);
  char *save = NULL;
  int first = 1;
  for (char *l = t ? strtok_r(t, "\n", &save) : NULL; l;
       l = strtok_r(NULL, "\n", &save), first = 0) {
    if (first)
      continue; /* header */
    cJSON *j = cJSON_Parse(l);
    const cJSON *k = cJSON_IsArray(j)
                         ? j
                         : cJSON_GetObjectItemCaseSensitive(j, "key");
    const cJSON *c = cJSON_GetArrayItem(k, 1);
    if (cJSON_IsString(c) && len + strlen(c->valuestring) + 3 < cap) {
      len += (size_t)snprintf(out + len, cap - len, "\n%s\n",
                              c->valuestring);
      n++;
    }
    cJSON_Delete(j);
  }
  free(t);
  return n;
}

/* how many "\n<id>\n" entries of a occur in b */
static size_t shared_entries(const char *a, const char *b)
{
  size_t hits = 0;
  char id[64];
  for (const char *p = a; (p = strchr(p, '\n')) && p[1];) {
    const char *q = strchr(p + 1, '\n');
    if (!q)
      break;
    snprintf(id, sizeof(id), "\n%.*s\n", (int)(q - p - 1), p + 1);
    hits += strstr(b, id) != NULL;
    p = q + 1;
  }
  return hits;
}

TEST(three_way_split_grouped_by_customer)
{
  REQUIRE(setup_ok && version1);
  struct err e = {0};
  double gf = spec->gate_fraction;
  spec->gate_fraction = 0.2;
  spec->group_by = strdup("customer_id");
  REQUIRE(spec->group_by);
  struct pipeline_opts o = {.ds = DS, .dag_id = "test_dag",
                            .dag_run_id = "gate1", .nthread = 1,
                            .max_trials = 2, .num_boost_round = 30,
                            .log = log_cb};
  struct pipeline_result r1, r2;
  enum err_code rc = pipeline_train(reg, pool, spec, &o, &r1, &e);
  if (rc)
    fprintf(stderr, "  train: %s\n", e.msg);
  REQUIRE(rc == ERR_OK);
  CHECK(strstr(logbuf, "gate rows (grouped by customer_id)") != NULL);
  CHECK(strstr(logbuf, "kept model on the ") != NULL);
  CHECK_EQ_INT(r1.n_train + r1.n_val + r1.n_gate, r1.n_rows);
  /* about a fifth of the rows (customers: a binomial share) */
  CHECK(r1.n_gate > r1.n_rows / 10 && r1.n_gate < r1.n_rows * 3 / 10);
  cJSON *meta = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL,
                          r1.version);
  REQUIRE(meta);
  const cJSON *sp = cJSON_GetObjectItemCaseSensitive(meta, "splits");
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(sp, "gate");
  CHECK_EQ_INT(jnum(meta, "gate_rows"), r1.n_gate);
  CHECK_EQ_INT(jnum(g, "rows"), r1.n_gate);
  double ga = jnum(cJSON_GetObjectItemCaseSensitive(g, "metrics"),
                   "accuracy");
  CHECK(ga > 0.3 && ga <= 1);
  CHECK_EQ_INT(jnum(cJSON_GetObjectItemCaseSensitive(sp, "train"), "rows"),
               r1.n_train);
  CHECK_NEAR(jnum(cJSON_GetObjectItemCaseSensitive(
                      cJSON_GetObjectItemCaseSensitive(sp, "valid"),
                      "metrics"),
                  "accuracy"),
             r1.best.accuracy, 1e-9);
  CHECK_EQ_STR(jstr(cJSON_GetObjectItemCaseSensitive(meta, "split"),
                    "group_by"),
               "customer_id");
  /* calibration fitted on the gate rows, recorded and applied by
   * model_predict (what the server and offline predict call) */
  const cJSON *cal = cJSON_GetObjectItemCaseSensitive(meta, "calibration");
  REQUIRE(cal);
  CHECK_EQ_STR(jstr(cal, "split"), "gate");
  CHECK_EQ_INT(jnum(cal, "rows"), r1.n_gate);
  double temp = jnum(cal, "temperature");
  CHECK(temp >= 0.05 && temp <= 20 && temp != 1);
  CHECK(jnum(cal, "ece_after") <= jnum(cal, "ece_before") + 1e-9);
  CHECK(jnum(cal, "brier_after") <= jnum(cal, "brier_before") + 1e-9);
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(cal, "bins")) >
        0);
  fprintf(stderr, "  (calibration: T=%.4f ECE %.4f -> %.4f)\n", temp,
          jnum(cal, "ece_before"), jnum(cal, "ece_after"));
  cJSON_Delete(meta);
  {
    char vd[900];
    snprintf(vd, sizeof(vd), "%s/%s/versions/%d", regdir, MODEL,
             r1.version);
    struct model *mo = NULL;
    REQUIRE(model_load(vd, 0, NULL, &mo, &e) == ERR_OK);
    CHECK_NEAR(model_temperature(mo), temp, 1e-12);
    size_t nf = model_nfeat(mo), k = model_output_dim(mo);
    float *x = calloc(8 * nf, sizeof(float)), a[8 * 16], b[8 * 16];
    REQUIRE(x && k <= 16);
    for (size_t i = 0; i < 8 * nf; i++)
      x[i] = (i * 7 % 11 == 0) ? NAN : (float)((int)(i % 5) - 2);
    REQUIRE(model_predict(mo, x, 8, a, &e) == ERR_OK);
    REQUIRE(model_predict_xgb(mo, x, 8, b, &e) == ERR_OK);
    calib_apply(b, 8, k, temp);
    for (size_t i = 0; i < 8 * k; i++)
      CHECK_NEAR(a[i], b[i], 1e-6);
    free(x);
    model_unref(mo);
  }
  /* no customer sits in two splits */
  static char ctr[1 << 18], cva[1 << 18], cga[1 << 18];
  ctr[0] = cva[0] = cga[0] = '\0';
  size_t ntr = customers_of(r1.version, "train_keys.jsonl", ctr, sizeof(ctr));
  size_t nva = customers_of(r1.version, "validation.jsonl", cva, sizeof(cva));
  size_t nga = customers_of(r1.version, "gate.jsonl", cga, sizeof(cga));
  CHECK_EQ_INT(ntr, r1.n_train);
  CHECK_EQ_INT(nva, r1.n_val);
  CHECK_EQ_INT(nga, r1.n_gate);
  CHECK_EQ_INT(shared_entries(cga, ctr), 0);
  CHECK_EQ_INT(shared_entries(cga, cva), 0);
  CHECK_EQ_INT(shared_entries(cva, ctr), 0);

  /* the next day: a customer stays in its split, so the candidate's gate
   * rows were never in production's training split either */
  o.ds = "2025-09-02";
  o.dag_run_id = "gate2";
  rc = pipeline_train(reg, pool, spec, &o, &r2, &e);
  REQUIRE(rc == ERR_OK);
  static char c2[1 << 18];
  c2[0] = '\0';
  REQUIRE(customers_of(r2.version, "gate.jsonl", c2, sizeof(c2)) ==
          r2.n_gate);
  CHECK(shared_entries(c2, cga) > r2.n_gate / 2); /* mostly the same */
  CHECK_EQ_INT(shared_entries(c2, ctr), 0);
  CHECK_EQ_INT(shared_entries(c2, cva), 0);
  REQUIRE(registry_alias_set(reg, MODEL, "production", r1.version, NULL,
                             &e) == ERR_OK);
  struct pipeline_verdict v;
  REQUIRE(pipeline_validate(reg, MODEL, SPEC_METRIC_ACCURACY, 0, 50, &v,
                            &e) == ERR_OK);
  CHECK_EQ_INT(v.candidate, r2.version);
  CHECK_EQ_INT(v.gate_split, 1);
  CHECK_EQ_INT(v.heldout, 1);
  CHECK_EQ_INT(v.n_dropped, 0);
  CHECK_EQ_INT(v.n_rows, r2.n_gate);
  CHECK(strstr(v.message, "gate rows of version") != NULL);

  /* the validate task decides with the paired test (no tolerance field):
   * the decision and its numbers are a deployment row */
  struct task_ctx t;
  struct tfields f = {.k = {"model"}, .v = {MODEL}, .n = 1};
  task_setup(&t, &f, "run_gate_paired");
  rc = task_type_validate.run(&t, &e);
  fprintf(stderr, "  (paired gate: %s)\n", f.log);
  CHECK(strstr(f.log, "difference=") != NULL);
  CHECK(strstr(f.log, "p=") != NULL);
  /* ~500 gate rows are far fewer than a 0.02 regression needs */
  CHECK(rc == ERR_STATE);
  CHECK(strstr(f.log, "too few to compare, production stays") != NULL);
  {
    struct db_conn *c = NULL;
    REQUIRE(db_acquire(pool, 10000, &c, &e) == ERR_OK);
    struct db_val p[1] = {DB_V_STR(MODEL)};
    int64_t n = -1, mr = -1;
    CHECK(db_query_i64(c, "SELECT gate_n FROM deployment WHERE model = ? "
                          "AND action = 'skip' ORDER BY id DESC LIMIT 1",
                       p, 1, &n, &e) == ERR_OK);
    CHECK(db_query_i64(c, "SELECT gate_min_rows FROM deployment WHERE "
                          "model = ? ORDER BY id DESC LIMIT 1",
                       p, 1, &mr, &e) == ERR_OK);
    CHECK_EQ_INT(n, r2.n_gate);
    CHECK(mr > n);
    int64_t ok = -1;
    /* paired difference == difference of the two accuracies; the
     * interval holds it; the level and metric are recorded */
    CHECK(db_query_i64(c,
                       "SELECT ABS(gate_difference - (gate_candidate_score "
                       "- gate_production_score)) < 1e-12 AND gate_ci_low "
                       "<= gate_difference AND gate_difference <= "
                       "gate_ci_high AND gate_p_value BETWEEN 0 AND 1 AND "
                       "gate_level = 0.95 AND gate_max_regression = 0.02 "
                       "AND gate_metric = 'accuracy' FROM deployment WHERE "
                       "model = ? ORDER BY id DESC LIMIT 1",
                       p, 1, &ok, &e) == ERR_OK);
    CHECK_EQ_INT(ok, 1);
    db_release(pool, c);
  }
  /* a generous max_regression: few rows suffice, the candidate passes,
   * staging moves and the pass is a row */
  struct tfields f2 = {.k = {"model", "max_regression"},
                       .v = {MODEL, "0.5"}, .n = 2};
  task_setup(&t, &f2, "run_gate_paired_pass");
  rc = task_type_validate.run(&t, &e);
  if (rc)
    fprintf(stderr, "  validate: %s\n", e.msg);
  CHECK(rc == ERR_OK);
  CHECK(strstr(f2.log, "passes: lower bound") != NULL);
  int st = 0;
  REQUIRE((st = staging_version()) >= 0);
  CHECK_EQ_INT(st, r2.version);
  CHECK_EQ_INT(deployments("action = 'pass' AND alias = 'staging' AND gate_n > "
                           "0 AND gate_max_regression = 0.5 AND reason LIKE "
                           "'validate: candidate % passes: %'"),
               1);
  struct tfields f3 = {.k = {"model", "confidence"}, .v = {MODEL, "0.3"},
                       .n = 2};
  task_setup(&t, &f3, "r");
  CHECK(task_type_validate.check(&t, &e) == ERR_INVAL);
  CHECK(strstr(e.msg, "field 'confidence'") != NULL);

  /* a spec naming an unknown group column is refused where it says so */
  struct spec *bad = NULL;
  const char *y = "name: m\nsource: {table: t, key: customer_id}\n"
                  "target: {column: y, classes: [a, b]}\n"
                  "features: {numeric: [x]}\n"
                  "split: {gate_fraction: 0.2, group_by: nobody}\n";
  CHECK(spec_load_buf("m.yaml", y, strlen(y), &bad, &e) == ERR_CONFIG);
  CHECK(strstr(e.msg, "split.group_by: 'nobody' is neither source.key nor "
                      "a feature") != NULL);
  spec_destroy(bad);
  free(spec->group_by);
  spec->group_by = NULL;
  spec->gate_fraction = gf;
  pipeline_result_free(&r1);
  pipeline_result_free(&r2);
}

/* Two files of two versions are byte-equal (or both unreadable). */
static int same_file(int va, int vb, const char *name)
{
  char pa[900], pb[900];
  snprintf(pa, sizeof(pa), "%s/%s/versions/%d/%s", regdir, MODEL, va, name);
  snprintf(pb, sizeof(pb), "%s/%s/versions/%d/%s", regdir, MODEL, vb, name);
  size_t la = 0, lb = 0;
  char *fa = fx_read_file(pa, &la), *fb = fx_read_file(pb, &lb);
  int same = fa && fb && la == lb && memcmp(fa, fb, la) == 0;
  free(fa);
  free(fb);
  return same;
}

/* train_window limits the rows (newest N by the date column, or the
 * dates within N days of the logical date) and says so in meta.json;
 * too few rows for a rows window refuse to train; weights: balanced
 * changes the model and records the class weights. */
TEST(train_window_and_balanced_weights)
{
  REQUIRE(setup_ok && version1);
  struct err e = {0};
  struct pipeline_result a, b, c, d;
  spec->window.column = strdup("date");
  REQUIRE(spec->window.column);
  /* rows: the newest 1,000 of the 2,500 */
  spec->window.rows = 1000;
  REQUIRE(train_small("win-rows", 1, 20, 0, &a, &e) == ERR_OK);
  CHECK_EQ_INT(a.n_rows, 1000);
  CHECK_EQ_INT(a.n_train + a.n_val + a.n_gate, 1000);
  cJSON *meta = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL,
                          a.version);
  REQUIRE(meta);
  const cJSON *w = cJSON_GetObjectItemCaseSensitive(meta, "train_window");
  CHECK_EQ_INT(jnum(w, "rows"), 1000);
  CHECK_EQ_STR(jstr(w, "column"), "date");
  CHECK_EQ_STR(jstr(cJSON_GetObjectItemCaseSensitive(meta, "weights"),
                    "mode"),
               "none");
  CHECK(strstr(jstr(cJSON_GetObjectItemCaseSensitive(meta, "source"),
                    "query") ?: "", "LIMIT 1000") != NULL);
  cJSON_Delete(meta);
  /* the kept rows are the newest: no training row (train_keys.jsonl) is
   * older than the 1,000th newest date */
  char kp[900];
  snprintf(kp, sizeof(kp), "%s/%s/versions/%d/train_keys.jsonl", regdir,
           MODEL, a.version);
  char *keys = fx_read_file(kp, NULL);
  REQUIRE(keys);
  size_t cap = strlen(keys) + 512, len = 0, nk = 0;
  char *sql = malloc(cap);
  REQUIRE(sql);
  len = (size_t)snprintf(sql, cap,
                         "SELECT COUNT(*) FROM credit_score_features_target "
                         "WHERE base_dt = ? AND date < (SELECT MIN(date) "
                         "FROM (SELECT date FROM credit_score_features_target"
                         " WHERE base_dt = '" DS "' ORDER BY date DESC LIMIT "
                         "1000) AS t) AND id IN (");
  for (char *l = strchr(keys, '\n'); l && l[1] == '['; l = strchr(l + 1, '\n'))
    len += (size_t)snprintf(sql + len, cap - len, "%s%ld", nk++ ? "," : "",
                            strtol(l + 3, NULL, 10));
  snprintf(sql + len, cap - len, ")");
  CHECK_EQ_INT(nk, a.n_train);
  CHECK_EQ_INT(q1(sql, DS), 0);
  free(sql);
  free(keys);
  /* more rows than the day has: refused, saying why and where */
  spec->window.rows = 3000;
  struct pipeline_result x;
  CHECK_EQ_INT(train_small("win-few", 1, 20, 0, &x, &e), ERR_NOTFOUND);
  CHECK(strstr(e.msg, "train_window.rows is 3000 but "
                      "credit_score_features_target has only 2500 rows") !=
        NULL);
  CHECK(strstr(e.msg, MODEL ".yaml") != NULL);
  /* days: the rows dated within 10 days of the logical date */
  spec->window.rows = 0;
  spec->window.days = 10;
  REQUIRE(train_small("win-days", 1, 20, 0, &b, &e) == ERR_OK);
  int64_t in10 = q1("SELECT COUNT(*) FROM credit_score_features_target "
                    "WHERE base_dt = ? AND date > '2025-08-22' AND "
                    "date <= '" DS "'",
                    DS);
  CHECK(in10 > 100 && in10 < 2500);
  CHECK_EQ_INT(b.n_rows, in10);
  /* weights: balanced, same window: another model, weights recorded */
  spec->weights_balanced = 1;
  REQUIRE(train_small("win-bal", 1, 20, 0, &c, &e) == ERR_OK);
  CHECK(strstr(logbuf, "weights: balanced (Poor=") != NULL);
  CHECK_EQ_INT(c.n_rows, b.n_rows);
  CHECK_EQ_STR(c.data_sha256, b.data_sha256);
  CHECK(!same_file(b.version, c.version, "model.ubj"));
  meta = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL, c.version);
  REQUIRE(meta);
  w = cJSON_GetObjectItemCaseSensitive(meta, "weights");
  CHECK_EQ_STR(jstr(w, "mode"), "balanced");
  const cJSON *cw = cJSON_GetObjectItemCaseSensitive(w, "class_weights");
  /* n / (3 * n_c): the majority class (Standard) below 1, the smallest
   * (Good) above; sum_c n_c * w_c = n, so sum_c 1 / w_c = 3 */
  double wp = jnum(cw, "Poor"), ws = jnum(cw, "Standard"),
         wg = jnum(cw, "Good");
  CHECK(ws < 1 && wg > 1 && wp > 0);
  CHECK_NEAR(1 / wp + 1 / ws + 1 / wg, 3, 1e-3);
  cJSON_Delete(meta);
  /* and the same settings again give the same bytes: the difference
   * above is the weights' */
  REQUIRE(train_small("win-bal2", 1, 20, 0, &d, &e) == ERR_OK);
  CHECK(same_file(c.version, d.version, "model.ubj"));
  spec->weights_balanced = 0;
  spec->window.days = 0;
  free(spec->window.column);
  spec->window.column = NULL;
  pipeline_result_free(&a);
  pipeline_result_free(&b);
  pipeline_result_free(&c);
  pipeline_result_free(&d);
}

/* The course spec as shipped (config/models): 28 days of labels up to the
 * logical date, a fifth of the customers in the gate split, calibration
 * on those rows. */
TEST(course_spec_as_shipped)
{
  REQUIRE(setup_ok && version1);
  struct err e = {0};
  struct spec *shipped = NULL;
  char path[700];
  snprintf(path, sizeof(path), "%s/config/models/%s.yaml", src, MODEL);
  REQUIRE(spec_load(path, &shipped, &e) == ERR_OK);
  struct pipeline_opts o = {.ds = DS, .dag_id = "test_dag",
                            .dag_run_id = "shipped", .nthread = 1,
                            .max_trials = 1, .num_boost_round = 20,
                            .log = log_cb};
  struct pipeline_result r;
  loglen = 0;
  enum err_code rc = pipeline_train(reg, pool, shipped, &o, &r, &e);
  if (rc)
    fprintf(stderr, "  train: %s\n", e.msg);
  REQUIRE(rc == ERR_OK);
  int64_t in28 = q1("SELECT COUNT(*) FROM credit_score_features_target "
                    "WHERE base_dt = ? AND date > '2025-08-04' AND "
                    "date <= '" DS "'",
                    DS);
  CHECK(in28 > 2000 && in28 < 2500);
  CHECK_EQ_INT(r.n_rows, in28);
  CHECK((int64_t)r.n_gate > in28 / 10 && (int64_t)r.n_gate < in28 * 3 / 10);
  CHECK(strstr(logbuf, "gate rows (grouped by customer_id)") != NULL);
  cJSON *meta = read_json("%s/%s/versions/%d/meta.json", regdir, MODEL,
                          r.version);
  REQUIRE(meta);
  CHECK_EQ_INT(jnum(cJSON_GetObjectItemCaseSensitive(meta, "train_window"),
                    "days"),
               28);
  CHECK_EQ_STR(jstr(cJSON_GetObjectItemCaseSensitive(meta, "calibration"),
                    "split"),
               "gate");
  cJSON_Delete(meta);
  pipeline_result_free(&r);
  spec_destroy(shipped);
}

int main(void)
{
  setup_ok = setup();
  if (!setup_ok)
    fprintf(stderr, "setup failed\n");
  RUN(fstore_reads_the_training_set);
  RUN(fstore_errors);
  RUN(train_registers_a_version);
  RUN(training_is_deterministic);
  RUN(validate_passes_without_production_and_deploy_records);
  RUN(validate_fails_a_worse_candidate);
  RUN(train_task_logs_progress_and_version);
  RUN(cancel_leaves_no_version);
  RUN(parallel_trials_match_sequential);
  RUN(parallel_cancel_leaves_no_version);
  RUN(shared_trials_alone_match_sequential);
  RUN(trialq_lease_takeover);
  RUN(cli_promote_rollback_show_list);
  RUN(corrupt_meta_is_reported_and_others_still_work);
  RUN(validate_scores_rows_neither_version_trained_on);
  RUN(three_way_split_grouped_by_customer);
  RUN(train_window_and_balanced_weights);
  RUN(course_spec_as_shipped);
  registry_close(reg);
  spec_destroy(spec);
  db_pool_destroy(pool);
  if (setup_ok) {
    fx_rmtree(tmpdir);
  }
  return check_done();
}
