/* task_batch_predict.c - the `batch_predict` task type: score the rows of
 * a SQL query (e.g. the feature table for {{ ds }}) with a model version
 * and write one row per entity into a table, with the version and the
 * time (docs/tasks.md).
 *
 * Fields: model (templated), sql (templated query; conf values are bound
 * as parameters), table (identifier; created if missing), version
 * (optional: a number, default the production alias).
 *
 * Why it looks like this:
 *
 * - Idempotent per logical date: the rows of the run's ds are replaced in
 *   one transaction (DELETE of that ds, then the inserts, then COMMIT),
 *   so a retry, or a second run for the same date, leaves exactly one row
 *   per entity and never a half-written date.
 * - Any size: the query is read unbuffered (db_query streams its rows)
 *   and scored in blocks (bscore.h) while the answers are inserted on a
 *   second connection; memory does not grow with the row count.
 * - Same answers as /predict: bscore uses serving_model_load, the bundle
 *   the server would publish for that version.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/bscore.h"
#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/registry.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"

#define BP_COLS 10
#define BP_ACQUIRE_MS 10000
#define BP_MAX_COLS 1024

static const struct task_field bp_fields[] = {
    {.name = "model", .required = 1, .templated = 1},
    {.name = "sql", .required = 1, .templated = 1},
    {.name = "table", .required = 1},
    {.name = "version", .kind = TASK_F_INT},
    {.name = NULL},
};

static const char *const bp_cols[BP_COLS] = {
    "ds",         "customer_id", "prediction", "confidence", "value",
    "model_name", "model_version", "run_id",   "scored_at",  "error"};

static enum err_code bp_check(const struct task_ctx *t, struct err *e)
{
  char buf[256];
  const char *table = NULL;
  long v;
  enum err_code rc = task_field_text(t, "table", buf, sizeof(buf), &table, e);
  if (rc)
    return rc;
  if (!table || !db_ident_ok(table))
    return err_set(e, ERR_INVAL, "field 'table': '%s' is not a plain table "
                                 "name",
                   table ? table : "");
  return task_field_int(t, "version", 0, 1, 1000000000L, &v, e);
}

/* The answers of one block, inserted on the writer connection. */
struct bp_run {
  struct task_ctx *t;
  struct db_conn *w;
  const char *table, *ds, *model, *run_id;
  int version;
  char scored_at[32];
  struct db_val *vals;
  size_t n, cap;
  char **keep; /* copies of the strings of the pending answers */
  size_t nkeep;
  int64_t rows, invalid, missing_key;
  enum err_code rc;
  struct err e;
  /* reading */
  struct bscore *bs;
  const char *names[BP_MAX_COLS];
  const char *vals_in[BP_MAX_COLS];
};

static void bp_reset(struct bp_run *r)
{
  for (size_t i = 0; i < r->nkeep; i++)
    free(r->keep[i]);
  r->nkeep = 0;
  r->n = 0;
}

static enum err_code bp_write(struct bp_run *r)
{
  if (!r->n)
    return ERR_OK;
  enum err_code rc = db_bulk_insert(
      r->w, r->table, bp_cols, BP_COLS, r->vals, (int64_t)r->n, 0,
      " ON DUPLICATE KEY UPDATE prediction = VALUES(prediction), "
      "confidence = VALUES(confidence), value = VALUES(value), "
      "model_name = VALUES(model_name), "
      "model_version = VALUES(model_version), run_id = VALUES(run_id), "
      "scored_at = VALUES(scored_at), error = VALUES(error)",
      NULL, &r->e);
  bp_reset(r);
  return rc;
}

static char *keep(struct bp_run *r, const char *s)
{
  char *c = s ? strdup(s) : NULL;
  if (c)
    r->keep[r->nkeep++] = c;
  return c;
}

static int bp_emit(void *arg, const struct bscore_answer *a)
{
  struct bp_run *r = arg;
  if (r->n == r->cap) {
    r->rc = err_set(&r->e, ERR_INTERNAL, "batch_predict: block overflow");
    return 1;
  }
  if (!a->customer_id) {
    r->missing_key++;
    return 0; /* counted; the run fails at the end */
  }
  struct db_val *v = r->vals + r->n * BP_COLS;
  const char *cid = keep(r, a->customer_id);
  const char *lab = a->label ? keep(r, a->label) : NULL;
  const char *err = a->error ? keep(r, a->error) : NULL;
  if (!cid || (a->label && !lab) || (a->error && !err)) {
    r->rc = err_set(&r->e, ERR_NOMEM, "batch_predict: out of memory");
    return 1;
  }
  v[0] = DB_V_STR(r->ds);
  v[1] = DB_V_STR(cid);
  v[2] = lab ? DB_V_STR(lab) : DB_V_NULL;
  v[3] = a->error || !a->label ? DB_V_NULL : DB_V_DBL(a->confidence);
  v[4] = a->error || a->label ? DB_V_NULL : DB_V_DBL(a->value);
  v[5] = DB_V_STR(r->model);
  v[6] = DB_V_INT(r->version);
  v[7] = DB_V_STR(r->run_id);
  v[8] = DB_V_STR(r->scored_at);
  v[9] = err ? DB_V_STR(err) : DB_V_NULL;
  r->n++;
  r->rows++;
  if (a->error)
    r->invalid++;
  if (r->n == r->cap && (r->rc = bp_write(r)) != ERR_OK)
    return 1;
  return 0;
}

static int bp_row(void *arg, const struct db_row *row)
{
  struct bp_run *r = arg;
  int n = db_row_ncols(row);
  if (n > BP_MAX_COLS)
    n = BP_MAX_COLS;
  for (int i = 0; i < n; i++) {
    r->names[i] = db_row_name(row, i);
    r->vals_in[i] = db_row_str(row, i, NULL);
  }
  if (bscore_add_text(r->bs, r->names, r->vals_in, n, &r->e) != ERR_OK) {
    if (r->rc == ERR_OK)
      r->rc = r->e.code;
    return 1;
  }
  if (task_should_stop(r->t)) {
    r->rc = task_stopped(r->t, "batch_predict stopped", task_timeout_s(r->t),
                         &r->e);
    return 1;
  }
  return 0;
}

static enum err_code bp_run(struct task_ctx *t, struct err *e)
{
  struct cfg defaults;
  const struct cfg *c = t->cfg;
  if (!c) {
    cfg_defaults(&defaults);
    c = &defaults;
  }
  char nb[256], tb[256];
  const char *raw_model, *table, *raw_sql;
  char *name = NULL, *sql = NULL;
  struct tmpl_binds binds = {0};
  struct db_val *params = NULL;
  struct registry *reg = NULL;
  struct serving_model *sm = NULL;
  struct db_conn *rd = NULL, *wr = NULL;
  struct bp_run r = {.t = t};
  long version = 0;
  enum err_code rc;
  if ((rc = task_field_text(t, "model", nb, sizeof(nb), &raw_model, e)) ||
      (rc = task_field_text(t, "table", tb, sizeof(tb), &table, e)) ||
      (rc = task_field_int(t, "version", 0, 1, 1000000000L, &version, e)) ||
      (rc = task_render(t, "model", raw_model, TMPL_PLAIN, &name, NULL, e)))
    goto out;
  raw_sql = t->field ? t->field(t, "sql") : NULL;
  if (!raw_sql) {
    rc = err_set(e, ERR_INVAL, "field 'sql' must be a string");
    goto out;
  }
  if ((rc = task_render(t, "sql", raw_sql, TMPL_SQL, &sql, &binds, e)))
    goto out;
  if (!t->db) {
    rc = err_set(e, ERR_INVAL, "batch_predict: no database");
    goto out;
  }
  if ((rc = registry_open_cfg(c, &reg, e)))
    goto out;
  int v = (int)version;
  if (!v && (rc = registry_alias_get(reg, name, REGISTRY_PRODUCTION, &v, e))) {
    err_prefix(e, "batch_predict: no version given and no %s alias",
               REGISTRY_PRODUCTION);
    goto out;
  }
  if ((rc = serving_model_load(reg, c->models_specs_dir, name, v, &sm, e)))
    goto out;
  task_logf(t, "scoring with %s version %d into %s for ds %s", name, v,
            table, t->ds ? t->ds : "");

  r.table = table;
  r.ds = t->ds ? t->ds : "";
  r.model = name;
  r.run_id = t->run_id ? t->run_id : "";
  r.version = v;
  {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(r.scored_at, sizeof(r.scored_at), "%Y-%m-%d %H:%M:%S", &tm);
  }
  r.cap = BSCORE_BLOCK;
  r.vals = calloc(r.cap * BP_COLS, sizeof(*r.vals));
  r.keep = calloc(r.cap * 3, sizeof(*r.keep));
  if (binds.n)
    params = calloc(binds.n, sizeof(*params));
  if (!r.vals || !r.keep || (binds.n && !params)) {
    rc = err_set(e, ERR_NOMEM, "batch_predict: out of memory");
    goto out;
  }
  for (size_t i = 0; i < binds.n; i++)
    params[i] = DB_V_STR(binds.v[i]);
  if ((rc = bscore_create(&r.bs, sm, bp_emit, &r, e)))
    goto out;
  if ((rc = db_acquire(t->db, BP_ACQUIRE_MS, &wr, e)) ||
      (rc = db_acquire(t->db, BP_ACQUIRE_MS, &rd, e)))
    goto out;

  char ddl[1024];
  snprintf(ddl, sizeof(ddl),
           "CREATE TABLE IF NOT EXISTS %s ("
           "ds DATE NOT NULL, customer_id VARCHAR(64) NOT NULL, "
           "prediction VARCHAR(64) NULL, confidence DOUBLE NULL, "
           "value DOUBLE NULL, model_name VARCHAR(128) NOT NULL, "
           "model_version INT NOT NULL, run_id VARCHAR(250) NOT NULL, "
           "scored_at DATETIME NOT NULL, error VARCHAR(1024) NULL, "
           "PRIMARY KEY (ds, customer_id))",
           table);
  char del[300];
  snprintf(del, sizeof(del), "DELETE FROM %s WHERE ds = ?", table);
  struct db_val dsv = DB_V_STR(r.ds);
  int64_t deleted = 0;
  if ((rc = db_exec(wr, ddl, NULL, e)) ||
      (rc = db_exec(wr, "SET time_zone = '+00:00'", NULL, e)) ||
      (rc = db_begin(wr, e)) ||
      (rc = db_exec_params(wr, del, &dsv, 1, &deleted, e)))
    goto out;
  r.w = wr;
  int64_t nread = 0;
  rc = db_query(rd, sql, params, (int)binds.n, bp_row, &r, &nread, e);
  if (rc == ERR_OK && r.rc == ERR_OK)
    rc = bscore_flush(r.bs, &r.e) ? r.e.code : ERR_OK;
  if (rc == ERR_OK && r.rc == ERR_OK)
    r.rc = bp_write(&r);
  if (rc == ERR_OK && r.rc != ERR_OK) {
    rc = r.rc;
    *e = r.e;
  }
  if (rc == ERR_OK && r.missing_key) {
    rc = err_set(e, ERR_INVAL,
                 "batch_predict: %lld of %lld rows have no %s column value "
                 "(the query must return the key)",
                 (long long)r.missing_key, (long long)nread,
                 serving_model_spec(sm)->source.key
                     ? serving_model_spec(sm)->source.key
                     : "customer_id");
  }
  if (rc == ERR_OK)
    rc = db_commit(wr, e);
  if (rc != ERR_OK) {
    struct err re;
    (void)db_rollback(wr, &re);
    goto out;
  }
  task_logf(t, "scored rows=%lld invalid=%lld into %s (ds %s: %lld old rows "
               "replaced) model=%s version=%d",
            (long long)r.rows, (long long)r.invalid, table, r.ds,
            (long long)deleted, name, v);
out:
  bp_reset(&r);
  if (rd)
    db_release(t->db, rd);
  if (wr)
    db_release(t->db, wr);
  bscore_destroy(r.bs);
  free(r.vals);
  free(r.keep);
  free(params);
  tmpl_binds_free(&binds);
  serving_release(sm);
  registry_close(reg);
  free(sql);
  free(name);
  return rc;
}

const struct task_type task_type_batch_predict = {
    .name = "batch_predict",
    .fields = bp_fields,
    .check = bp_check,
    .run = bp_run,
};
