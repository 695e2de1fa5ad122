/* pipeline.c - from a model spec and a logical date to a registry version
 * (see pipeline.h and docs/training.md).
 *
 * Why the order of steps: everything derived from the raw columns (the
 * fitted preprocessing, the drift reference, the validation rows in the
 * request shape, the data hash) is produced first and written into the
 * version draft, then the raw columns are freed, so the grid search runs
 * with only the two float matrices in memory.  The draft is opened before
 * the search and committed only after the best model is saved, so a
 * failed or cancelled run leaves no version (its trial records stay, as
 * MLflow keeps failed runs).
 *
 * Trials run `parallel` at a time (models.train_parallel): the calling
 * thread (the task's job) and parallel-1 threads of its own take the next
 * grid point from a shared counter, each trial with nthread XGBoost
 * threads (models.train_threads), so the run uses parallel x nthread
 * cores.  Why threads of the run and not jobs on the daemon's queue: a
 * trial job could wait behind the very train task that waits for it.
 * Trials share only the read-only matrices (XGBoost builds a DMatrix per
 * trial; boosters and DMatrix handles of different threads are
 * independent in 1.7).  The winner does not depend on the finishing
 * order: a trial beats the best so far when it is strictly better, or
 * equal and earlier in the grid, which is the sequential rule (ties keep
 * the earlier trial).  Only the best trial's booster is kept in memory,
 * plus the ones being trained.
 */
#include "mlopsd/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/calib.h"
#include "mlopsd/db.h"
#include "mlopsd/fstore.h"
#include "mlopsd/fsx.h"
#include "mlopsd/explain.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"

#include "pipeline_int.h"

#define MAX_KV 256

/* ---- small helpers ---------------------------------------------------- */

double pipeline_mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void utc_iso(char *buf, size_t cap, int compact)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  if (compact)
    strftime(buf, cap, "%Y%m%dT%H%M%SZ", &tm);
  else {
    char b[32];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    if (snprintf(buf, cap, "%s.%06ldZ", b, ts.tv_nsec / 1000) >= (int)cap)
      buf[0] = '\0';
  }
}

void pipeline_plog(const struct pipeline_opts *o, const char *fmt, ...)
{
  if (!o->log)
    return;
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  o->log(o->log_ud, line);
}

void pipeline_safe_name(const char *in, char *out, size_t cap)
{
  size_t n = 0;
  if (cap == 0)
    return;
  for (const char *p = in ? in : ""; *p && n + 1 < cap; p++) {
    char c = *p;
    int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
    if (!ok || (c == '.' && n > 0 && out[n - 1] == '.'))
      c = '_';
    if (n == 0 && (c == '.' || c == '-'))
      c = '_';
    out[n++] = c;
  }
  if (n == 0 && cap > 1)
    out[n++] = '_';
  out[n] = '\0';
}

enum err_code pipeline_spec_load(const char *specs_dir, const char *name,
                                 struct spec **out, struct err *e)
{
  static const char *const ext[] = {".yaml", ".yml"};
  char path[4096];
  *out = NULL;
  if (!name || !fsx_name_valid(name))
    return err_set(e, ERR_INVAL, "'%.130s' is not a valid model name",
                   name ? name : "(null)");
  for (size_t i = 0; i < 2; i++) {
    int n = snprintf(path, sizeof(path), "%s/%s%s", specs_dir, name, ext[i]);
    if (n < 0 || (size_t)n >= sizeof(path))
      return err_set(e, ERR_INVAL, "spec path for model '%s' is too long",
                     name);
    if (access(path, F_OK) == 0)
      return spec_load(path, out, e);
  }
  return err_set(e, ERR_NOTFOUND, "no model spec %s/%s.yaml", specs_dir,
                 name);
}

/* A parameter value as JSON: a number when the text is one, else text. */
static cJSON *json_scalar(const char *v)
{
  char *end;
  errno = 0;
  double d = strtod(v, &end);
  if (end != v && *end == '\0' && !errno && isfinite(d) &&
      (v[0] == '-' || (v[0] >= '0' && v[0] <= '9') || v[0] == '.'))
    return cJSON_CreateNumber(d);
  return cJSON_CreateString(v);
}

int pipeline_add_num(cJSON *o, const char *k, double v)
{
  return cJSON_AddItemToObject(o, k, isfinite(v) ? cJSON_CreateNumber(v)
                                                 : cJSON_CreateNull())
             ? 0
             : -1;
}

/* Write a cJSON document to path (inside a draft: the commit fsyncs). */
enum err_code pipeline_write_json(const char *path, const cJSON *doc,
                                         int pretty, struct err *e)
{
  char *txt = pretty ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
  if (!txt)
    return err_set(e, ERR_NOMEM, "out of memory printing %s", path);
  FILE *f = fopen(path, "w");
  if (!f) {
    cJSON_free(txt);
    return err_set(e, ERR_IO, "cannot create %s: %s", path, strerror(errno));
  }
  size_t n = strlen(txt);
  int bad = fwrite(txt, 1, n, f) != n || fputc('\n', f) == EOF;
  bad |= fclose(f) != 0;
  cJSON_free(txt);
  if (bad)
    return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(errno));
  return ERR_OK;
}

enum err_code pipeline_draft_path(struct registry_draft *d, const char *file,
                                         char *buf, size_t cap, struct err *e)
{
  return registry_draft_path(d, file, buf, cap, e);
}

/* Row i of the set as a request object. */
static cJSON *row_request(const struct spec *sp, const struct fstore_set *s,
                          size_t i)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  if (s->keys && sp->source.key) {
    cJSON *k =
        s->keys[i] ? fstore_key_json(s->keys[i]) : cJSON_CreateNull();
    if (!cJSON_AddItemToObject(o, sp->source.key, k))
      goto fail;
  }
  for (size_t j = 0; j < s->n_features; j++) {
    cJSON *v;
    if (s->cols[j].num)
      v = isnan(s->cols[j].num[i]) ? cJSON_CreateNull()
                                   : cJSON_CreateNumber(s->cols[j].num[i]);
    else
      v = s->cols[j].str[i] ? cJSON_CreateString(s->cols[j].str[i])
                            : cJSON_CreateNull();
    if (!cJSON_AddItemToObject(o, sp->features[j].name, v))
      goto fail;
  }
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

/* ---- row keys ---------------------------------------------------------- */

/* Row i's key as a JSON array of its key columns' values (text as read,
 * null for SQL NULL); NULL when the set has no row keys or on ENOMEM. */
static cJSON *row_key_json(const struct fstore_set *s, size_t i)
{
  if (s->n_row_key_cols == 0)
    return NULL;
  cJSON *a = cJSON_CreateArray();
  for (size_t k = 0; a && k < s->n_row_key_cols; k++) {
    const char *v = s->row_keys[i * s->n_row_key_cols + k];
    cJSON *x = v ? cJSON_CreateString(v) : cJSON_CreateNull();
    if (!x || !cJSON_AddItemToArray(a, x)) {
      cJSON_Delete(x);
      cJSON_Delete(a);
      a = NULL;
    }
  }
  return a;
}

/* ["col", ...] of the set's row-key columns (NULL on ENOMEM). */
static cJSON *row_key_columns(const struct fstore_set *s)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t k = 0; a && k < s->n_row_key_cols; k++)
    if (!cJSON_AddItemToArray(a, cJSON_CreateString(s->row_key_cols[k]))) {
      cJSON_Delete(a);
      a = NULL;
    }
  return a;
}

static int cmp_cstr(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* train_keys.jsonl: a header line, then the distinct row keys of the
 * training split, one compact JSON array per line, sorted by their bytes
 * (docs/training.md).  Not written when the set has no row keys. */
static enum err_code write_train_keys(struct registry_draft *d,
                                      const struct fstore_set *s,
                                      const size_t *tr, size_t n_tr,
                                      size_t *n_keys, struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  *n_keys = 0;
  if (s->n_row_key_cols == 0)
    return ERR_OK;
  if ((rc = pipeline_draft_path(d, PIPELINE_TRAIN_KEYS, path, sizeof(path), e)))
    return rc;
  char **k = calloc(n_tr ? n_tr : 1, sizeof(*k));
  cJSON *cols = row_key_columns(s);
  char *ctext = cols ? cJSON_PrintUnformatted(cols) : NULL;
  cJSON_Delete(cols);
  if (!k || !ctext) {
    free(k);
    cJSON_free(ctext);
    return err_set(e, ERR_NOMEM, "out of memory writing %s", path);
  }
  size_t n = 0;
  rc = ERR_OK;
  for (size_t i = 0; i < n_tr; i++) {
    cJSON *a = row_key_json(s, tr[i]);
    k[n] = a ? cJSON_PrintUnformatted(a) : NULL;
    cJSON_Delete(a);
    if (!k[n]) {
      rc = err_set(e, ERR_NOMEM, "out of memory writing %s", path);
      break;
    }
    n++;
  }
  size_t u = 0;
  if (rc == ERR_OK && n > 0) {
    qsort(k, n, sizeof(*k), cmp_cstr);
    u = 1;
    for (size_t i = 1; i < n; i++)
      if (strcmp(k[i], k[u - 1]) != 0)
        k[u++] = k[i];
      else
        cJSON_free(k[i]);
  } else {
    u = n;
  }
  FILE *f = rc == ERR_OK ? fopen(path, "w") : NULL;
  if (rc == ERR_OK && !f)
    rc = err_set(e, ERR_IO, "cannot create %s: %s", path, strerror(errno));
  if (f) {
    int bad = fprintf(f,
                      "{\"format\":\"mlopsd.train_keys\",\"format_version\":"
                      "1,\"columns\":%s,\"rows\":%zu,\"keys\":%zu}\n",
                      ctext, n_tr, u) < 0;
    for (size_t i = 0; i < u && !bad; i++)
      bad = fputs(k[i], f) == EOF || fputc('\n', f) == EOF;
    int err = errno;
    if (fclose(f) != 0 && !bad) {
      bad = 1;
      err = errno;
    }
    if (bad)
      rc = err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(err));
  }
  for (size_t i = 0; i < u; i++)
    cJSON_free(k[i]);
  free(k);
  cJSON_free(ctext);
  if (rc == ERR_OK)
    *n_keys = u;
  return rc;
}

/* ---- validation rows -------------------------------------------------- */

/* Rows val[0..n_val) as FILE (validation.jsonl, gate.jsonl: the same
 * format, the header's "split" says which); with_sample also writes
 * sample.json from the first of them. */
static enum err_code write_rows(struct registry_draft *d,
                                const struct spec *sp,
                                const struct fstore_set *s,
                                const size_t *val, size_t n_val,
                                const char *file, const char *split,
                                int with_sample, struct err *e)
{
  char path[REGISTRY_PATH_MAX], spath[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = pipeline_draft_path(d, file, path, sizeof(path), e)) ||
      (rc = pipeline_draft_path(d, "sample.json", spath, sizeof(spath), e)))
    return rc;
  FILE *f = fopen(path, "w");
  if (!f)
    return err_set(e, ERR_IO, "cannot create %s: %s", path, strerror(errno));
  cJSON *sample = cJSON_CreateObject();
  cJSON *srows = sample ? cJSON_AddArrayToObject(sample, "rows") : NULL;
  int bad = !srows;
  fprintf(f,
          "{\"format\":\"mlopsd.validation\",\"format_version\":1,"
          "\"split\":\"%s\",\"rows\":%zu,\"target\":",
          split, n_val);
  {
    cJSON *t = cJSON_CreateString(sp->target.column);
    char *tt = t ? cJSON_PrintUnformatted(t) : NULL;
    bad |= !tt;
    fprintf(f, "%s", tt ? tt : "null");
    cJSON_free(tt);
    cJSON_Delete(t);
    if (s->n_row_key_cols > 0) {
      cJSON *kc = row_key_columns(s);
      char *kt = kc ? cJSON_PrintUnformatted(kc) : NULL;
      bad |= !kt;
      fprintf(f, ",\"key_columns\":%s", kt ? kt : "null");
      cJSON_free(kt);
      cJSON_Delete(kc);
    }
    fputs("}\n", f);
  }
  for (size_t i = 0; i < n_val && !bad; i++) {
    size_t r = val[i];
    cJSON *line = cJSON_CreateObject();
    cJSON *data = row_request(sp, s, r);
    cJSON *key = s->n_row_key_cols > 0 ? row_key_json(s, r) : NULL;
    if (!line || !data || (s->n_row_key_cols > 0 && !key)) {
      cJSON_Delete(line);
      cJSON_Delete(data);
      cJSON_Delete(key);
      bad = 1;
      break;
    }
    if (key)
      cJSON_AddItemToObject(line, "key", key);
    if (s->target)
      cJSON_AddNumberToObject(line, "label", s->target[r]);
    else
      cJSON_AddStringToObject(line, "label",
                              sp->target.classes[s->labels[r]]);
    cJSON_AddItemToObject(line, "data", data);
    char *txt = cJSON_PrintUnformatted(line);
    if (!txt) {
      cJSON_Delete(line);
      bad = 1;
      break;
    }
    bad |= fputs(txt, f) == EOF || fputc('\n', f) == EOF;
    cJSON_free(txt);
    if (with_sample && i < PIPELINE_SAMPLE_ROWS) {
      cJSON *copy = cJSON_Duplicate(data, 1);
      bad |= !copy || !cJSON_AddItemToArray(srows, copy);
    }
    cJSON_Delete(line);
  }
  bad |= fclose(f) != 0;
  if (bad) {
    int err = errno; /* from the failed write or close (ENOSPC, EIO) */
    cJSON_Delete(sample);
    return err_set(e, ERR_IO, "cannot write %s: %s", path, strerror(err));
  }
  rc = with_sample ? pipeline_write_json(spath, sample, 0, e) : ERR_OK;
  cJSON_Delete(sample);
  return rc;
}

/* ---- the search ------------------------------------------------------- */

static enum train_select select_of(enum spec_metric m)
{
  switch (m) {
  case SPEC_METRIC_F1_MACRO:
    return TRAIN_SELECT_F1_MACRO;
  case SPEC_METRIC_LOGLOSS:
    return TRAIN_SELECT_LOGLOSS;
  case SPEC_METRIC_RMSE:
    return TRAIN_SELECT_RMSE;
  default:
    return TRAIN_SELECT_ACCURACY;
  }
}

double pipeline_metric_value(enum spec_metric metric,
                             const struct train_metrics *m)
{
  switch (metric) {
  case SPEC_METRIC_ACCURACY:
    return m->accuracy;
  case SPEC_METRIC_F1_MACRO:
    return m->f1_macro;
  case SPEC_METRIC_LOGLOSS:
    return m->logloss;
  case SPEC_METRIC_RMSE:
    return m->rmse;
  }
  return NAN;
}

/* Params as a JSON object: later keys replace earlier ones, except that
 * a key repeated within the base params (eval_metric lists) becomes an
 * array, as the spec wrote it. */
static cJSON *params_json(const char *objective, int num_class,
                          const struct train_kv *kv, size_t n, size_t n_base)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "objective", objective);
  if (num_class)
    cJSON_AddNumberToObject(o, "num_class", num_class);
  for (size_t i = 0; i < n; i++) {
    cJSON *v = json_scalar(kv[i].value);
    cJSON *old = cJSON_GetObjectItemCaseSensitive(o, kv[i].key);
    if (!v)
      goto fail;
    if (!old) {
      cJSON_AddItemToObject(o, kv[i].key, v);
    } else if (i >= n_base) {
      cJSON_ReplaceItemViaPointer(o, old, v);
    } else if (cJSON_IsArray(old)) {
      cJSON_AddItemToArray(old, v);
    } else {
      cJSON *arr = cJSON_CreateArray();
      if (!arr) {
        cJSON_Delete(v);
        goto fail;
      }
      cJSON_AddItemToArray(arr, cJSON_Duplicate(old, 1));
      cJSON_AddItemToArray(arr, v);
      cJSON_ReplaceItemViaPointer(o, old, arr);
    }
  }
  return o;
fail:
  cJSON_Delete(o);
  return NULL;
}

static cJSON *metrics_json(const struct spec *sp,
                           const struct train_result *r, double seconds)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  if (sp->task == SPEC_TASK_REGRESSION) {
    pipeline_add_num(o, "rmse", r->metrics.rmse);
    pipeline_add_num(o, "mae", r->metrics.mae);
  } else {
    pipeline_add_num(o, "accuracy", r->metrics.accuracy);
    pipeline_add_num(o, "f1_macro", r->metrics.f1_macro);
    pipeline_add_num(o, "logloss", r->metrics.logloss);
  }
  pipeline_add_num(o, "best_iteration", r->best_iteration);
  pipeline_add_num(o, "n_trees", r->num_trees);
  pipeline_add_num(o, "rounds_run", r->rounds_run);
  pipeline_add_num(o, "best_score", r->best_score);
  cJSON_AddStringToObject(o, "eval_metric", r->eval_metric);
  pipeline_add_num(o, "seconds", round(seconds * 1000) / 1000);
  return o;
}


/* XGBoost refuses '[', ']' and '<' in feature names, and names must be
 * unique: replace those bytes and suffix duplicates. */
static char **xgb_names(const struct prep *p, size_t n)
{
  char **v = calloc(n ? n : 1, sizeof(char *));
  if (!v)
    return NULL;
  for (size_t j = 0; j < n; j++) {
    const char *s = prep_output_name(p, j);
    size_t len = strlen(s);
    char *t = malloc(len + 24);
    if (!t)
      goto fail;
    for (size_t k = 0; k <= len; k++)
      t[k] = (s[k] == '[' || s[k] == ']' || s[k] == '<') ? '_' : s[k];
    for (size_t k = 0; k < j; k++)
      if (strcmp(v[k], t) == 0) {
        snprintf(t + len, 24, "~%zu", j);
        break;
      }
    v[j] = t;
  }
  return v;
fail:
  for (size_t j = 0; j < n; j++)
    free(v[j]);
  free(v);
  return NULL;
}

static void free_names(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t j = 0; j < n; j++)
    free(v[j]);
  free(v);
}

/* ---- meta.json --------------------------------------------------------- */

struct meta_in {
  const struct spec *sp;
  const struct pipeline_opts *o;
  const struct pipeline_result *res;
  const struct prep *prep;
  const char *sql;
  const char *best_run;
  cJSON *params;  /* taken */
  cJSON *metrics; /* taken */
  const struct train_result *best;
  const struct train_metrics *m_train, *m_gate;
  cJSON *calibration; /* taken (may be NULL) */
  const char *objective;
  int nthread, num_boost_round, early_stopping_rounds;
  const cJSON *dist; /* distributed training, or NULL */
  const double *class_w; /* weights: balanced, per class; or NULL */
};

/* {"rows": n, "metrics": {...}} of one split (metrics only when scored). */
static void add_split(cJSON *splits, const char *name, const struct spec *sp,
                      size_t rows, const struct train_metrics *m)
{
  cJSON *o = cJSON_AddObjectToObject(splits, name);
  if (!o)
    return;
  cJSON_AddNumberToObject(o, "rows", (double)rows);
  if (!m || !rows)
    return;
  cJSON *mm = cJSON_AddObjectToObject(o, "metrics");
  if (!mm)
    return;
  if (sp->task == SPEC_TASK_REGRESSION) {
    pipeline_add_num(mm, "rmse", m->rmse);
    pipeline_add_num(mm, "mae", m->mae);
  } else {
    pipeline_add_num(mm, "accuracy", m->accuracy);
    pipeline_add_num(mm, "f1_macro", m->f1_macro);
    pipeline_add_num(mm, "logloss", m->logloss);
  }
}

static cJSON *build_meta(struct meta_in *m)
{
  char now[48];
  cJSON *o = cJSON_CreateObject();
  if (!o) {
    cJSON_Delete(m->params);
    cJSON_Delete(m->metrics);
    cJSON_Delete(m->calibration);
    return NULL;
  }
  utc_iso(now, sizeof(now), 0);
  cJSON_AddStringToObject(o, "format", "mlopsd.meta");
  cJSON_AddNumberToObject(o, "format_version", 1);
  cJSON_AddStringToObject(o, "name", m->sp->name);
  cJSON_AddStringToObject(o, "creation_time", now);
  cJSON_AddStringToObject(o, "logical_date", m->o->ds);
  cJSON_AddItemToObject(o, "dag_id", m->o->dag_id
                                         ? cJSON_CreateString(m->o->dag_id)
                                         : cJSON_CreateNull());
  cJSON_AddItemToObject(o, "dag_run_id",
                        m->o->dag_run_id ? cJSON_CreateString(m->o->dag_run_id)
                                         : cJSON_CreateNull());
  cJSON_AddStringToObject(o, "best_run", m->best_run);
  cJSON_AddStringToObject(o, "task", spec_task_name(m->sp->task));
  cJSON_AddStringToObject(o, "objective", m->objective);
  cJSON_AddNumberToObject(o, "num_class", m->best->num_class);
  cJSON_AddStringToObject(o, "target", m->sp->target.column);
  cJSON *cls = cJSON_AddArrayToObject(o, "classes");
  for (size_t i = 0; cls && i < m->sp->target.n_classes; i++)
    cJSON_AddItemToArray(cls, cJSON_CreateString(m->sp->target.classes[i]));
  cJSON_AddItemToObject(o, "params", m->params);
  /* the run record's bookkeeping is not a metric of the version */
  cJSON_DeleteItemFromObjectCaseSensitive(m->metrics, "trial");
  cJSON_DeleteItemFromObjectCaseSensitive(m->metrics, "trials");
  cJSON_DeleteItemFromObjectCaseSensitive(m->metrics, "logical_date");
  cJSON_AddItemToObject(o, "metrics", m->metrics);
  cJSON *sel = cJSON_AddObjectToObject(o, "selection");
  if (sel) {
    cJSON_AddStringToObject(sel, "metric", spec_metric_name(m->sp->metric));
    pipeline_add_num(sel, "value",
                     pipeline_metric_value(m->sp->metric, &m->best->metrics));
    cJSON_AddNumberToObject(sel, "trial", (double)m->res->best_trial + 1);
  }
  cJSON_AddNumberToObject(o, "training_rows", (double)m->res->n_rows);
  cJSON_AddNumberToObject(o, "train_rows", (double)m->res->n_train);
  cJSON_AddNumberToObject(o, "val_rows", (double)m->res->n_val);
  cJSON_AddNumberToObject(o, "gate_rows", (double)m->res->n_gate);
  cJSON *splits = cJSON_AddObjectToObject(o, "splits");
  if (splits) {
    add_split(splits, "train", m->sp, m->res->n_train, m->m_train);
    add_split(splits, "valid", m->sp, m->res->n_val, &m->best->metrics);
    add_split(splits, "gate", m->sp, m->res->n_gate, m->m_gate);
  }
  cJSON_AddNumberToObject(o, "trial_count", (double)m->res->n_trials);
  cJSON_AddNumberToObject(o, "grid_size", (double)m->sp->grid_size);
  cJSON_AddStringToObject(o, "data_sha256", m->res->data_sha256);
  cJSON_AddStringToObject(o, "spec_sha256", m->sp->sha256);
  cJSON_AddStringToObject(o, "spec_path", m->sp->path);
  cJSON_AddStringToObject(o, "xgboost_version", train_xgb_version());
  cJSON_AddStringToObject(o, "mlopsd_version", MLOPSD_VERSION);
  cJSON *src = cJSON_AddObjectToObject(o, "source");
  if (src) {
    cJSON_AddStringToObject(src, "table", m->sp->source.table);
    cJSON_AddStringToObject(src, "query", m->sql);
  }
  cJSON *split = cJSON_AddObjectToObject(o, "split");
  if (split) {
    cJSON_AddNumberToObject(split, "val_fraction", m->sp->val_fraction);
    cJSON_AddNumberToObject(split, "seed", (double)m->sp->seed);
    cJSON_AddBoolToObject(split, "stratify", m->sp->stratify);
    cJSON_AddNumberToObject(split, "gate_fraction", m->sp->gate_fraction);
    cJSON_AddItemToObject(split, "group_by",
                          m->sp->group_by
                              ? cJSON_CreateString(m->sp->group_by)
                              : cJSON_CreateNull());
  }
  cJSON *win = cJSON_AddObjectToObject(o, "train_window");
  if (win && m->sp->window.column) {
    cJSON_AddNumberToObject(win, m->sp->window.days > 0 ? "days" : "rows",
                            m->sp->window.days > 0
                                ? (double)m->sp->window.days
                                : (double)m->sp->window.rows);
    cJSON_AddStringToObject(win, "column", m->sp->window.column);
  }
  cJSON *wt = cJSON_AddObjectToObject(o, "weights");
  if (wt) {
    cJSON_AddStringToObject(wt, "mode", m->class_w ? "balanced" : "none");
    cJSON *cw = m->class_w ? cJSON_AddObjectToObject(wt, "class_weights")
                           : NULL;
    for (size_t c = 0; cw && c < m->sp->target.n_classes; c++)
      pipeline_add_num(cw, m->sp->target.classes[c], m->class_w[c]);
  }
  cJSON *tr = cJSON_AddObjectToObject(o, "training");
  if (tr) {
    cJSON_AddNumberToObject(tr, "nthread", m->nthread);
    cJSON_AddNumberToObject(tr, "num_boost_round", m->num_boost_round);
    cJSON_AddNumberToObject(tr, "early_stopping_rounds",
                            m->early_stopping_rounds);
    pipeline_add_num(tr, "read_seconds", round(m->res->read_s * 1000) / 1000);
    pipeline_add_num(tr, "prep_seconds", round(m->res->prep_s * 1000) / 1000);
    pipeline_add_num(tr, "search_seconds",
                     round(m->res->search_s * 1000) / 1000);
  }
  if (m->dist)
    cJSON_AddItemToObject(o, "distributed", cJSON_Duplicate(m->dist, 1));
  if (m->calibration)
    cJSON_AddItemToObject(o, "calibration", m->calibration);
  m->calibration = NULL;
  cJSON *schema = prep_schema_json(m->prep);
  if (schema)
    cJSON_AddItemToObject(o, "feature_schema", schema);
  return o;
}

/* ---- pipeline_train ------------------------------------------------------ */

void pipeline_result_free(struct pipeline_result *r)
{
  if (!r)
    return;
  free(r->trials);
  memset(r, 0, sizeof(*r));
}

/* Labels as floats for XGBoost. */
static float *labels_of(const struct fstore_set *s, const size_t *idx,
                        size_t n)
{
  float *y = malloc((n ? n : 1) * sizeof(float));
  if (!y)
    return NULL;
  for (size_t i = 0; i < n; i++)
    y[i] = s->target ? (float)s->target[idx[i]] : (float)s->labels[idx[i]];
  return y;
}


void ptrain_free(struct ptrain *T)
{
  registry_version_abort(T->draft);
  cJSON_Delete(T->best_params);
  cJSON_Delete(T->best_metrics);
  train_result_free(&T->best);
  fstore_set_free(T->s);
  prep_destroy(T->prep);
  free(T->tr);
  free(T->va);
  free(T->ga);
  free(T->xtr);
  free(T->xva);
  free(T->xga);
  free(T->ytr);
  free(T->yva);
  free(T->yga);
  free(T->wtr);
  free(T->wva);
  free(T->class_w);
  free_names(T->names, T->nout);
  free(T->kv);
  free(T->trial_sha);
  cJSON_Delete(T->dist);
}

/* Stage 1: read the training rows of the logical date. */
enum err_code ptrain_read(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  const struct pipeline_opts *o = T->o;
  struct fstore_set *s;
  enum err_code rc;
  pipeline_plog(o, "reading %s for %s", sp->source.table, o->ds);
  if ((rc = fstore_read_training_shard(T->db, sp, o->ds,
                                       T->shards > 1 ? T->shards : 1,
                                       T->rank, o->cancel, o->cancel_ud,
                                       &T->s, T->e)))
    return rc;
  if (T->shards > 1)
    pipeline_plog(o, "shard %d of %d: the rows with MOD(`%s`, %d) = %d",
                  T->rank, T->shards, sp->source.key, T->shards, T->rank);
  s = T->s;
  T->res->n_rows = s->n_rows;
  T->res->read_s = s->read_s;
  T->res->arena_bytes = s->arena_bytes;
  T->res->n_inputs = sp->n_features;
  pipeline_plog(o, "read %zu rows x %zu features in %.2f s (%.0f rows/s, %zu "
                   "distinct strings)",
                s->n_rows, s->n_features, s->read_s,
                s->read_s > 0 ? (double)s->n_rows / s->read_s : 0.0,
                s->n_distinct_strings);
  if (s->n_rows < 2)
    return err_set(T->e, ERR_INVAL,
                   "only %zu training row in %s for %s: need at least 2 to "
                   "split",
                   s->n_rows, sp->source.table, o->ds);
  return ERR_OK;
}

/* weights: balanced.  Class c weighs n / (K * n_c) with the counts of
 * the training split (scikit-learn's "balanced"), so every class carries
 * the same total weight in fitting; the validation rows get the same
 * class weights, so that early stopping watches the same loss.  A class
 * without training rows gets weight 1 (it has no rows to weigh). */
static enum err_code balanced_weights(struct ptrain *T, struct err *e)
{
  size_t k = T->sp->target.n_classes;
  size_t *cnt = calloc(k ? k : 1, sizeof(*cnt));
  T->class_w = calloc(k ? k : 1, sizeof(*T->class_w));
  T->wtr = malloc((T->n_tr ? T->n_tr : 1) * sizeof(float));
  T->wva = malloc((T->n_va ? T->n_va : 1) * sizeof(float));
  if (!cnt || !T->class_w || !T->wtr || !T->wva) {
    free(cnt);
    return err_set(e, ERR_NOMEM, "pipeline: out of memory for weights");
  }
  for (size_t i = 0; i < T->n_tr; i++)
    if (T->ytr[i] >= 0 && (size_t)T->ytr[i] < k)
      cnt[(size_t)T->ytr[i]]++;
  for (size_t c = 0; c < k; c++)
    T->class_w[c] = cnt[c] ? (double)T->n_tr / ((double)k * (double)cnt[c])
                           : 1.0;
  free(cnt);
  for (size_t i = 0; i < T->n_tr; i++)
    T->wtr[i] = (float)T->class_w[(size_t)T->ytr[i] % k];
  for (size_t i = 0; i < T->n_va; i++)
    T->wva[i] = T->yva[i] >= 0 && (size_t)T->yva[i] < k
                    ? (float)T->class_w[(size_t)T->yva[i]]
                    : 1.0f;
  return ERR_OK;
}

/* Stage 2: split, fit the preprocessing on the training rows, transform
 * both sides into XGBoost's matrices. */
enum err_code ptrain_prepare(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  struct fstore_set *s = T->s;
  struct err *e = T->e;
  enum err_code rc;
  double t0 = pipeline_mono_s();
  if ((rc = pipeline_split_three(sp, s, T, e)))
    return rc;
  T->res->n_train = T->n_tr;
  T->res->n_val = T->n_va;
  T->res->n_gate = T->n_ga;
  /* a worker of distributed training got rank 0's preprocessing */
  if (!T->prep && (rc = prep_fit(sp, &s->input, T->tr, T->n_tr, &T->prep, e)))
    return rc;
  T->nout = prep_n_outputs(T->prep);
  T->res->n_outputs = T->nout;
  T->xtr = malloc(T->n_tr * T->nout * sizeof(float));
  T->xva = malloc(T->n_va * T->nout * sizeof(float));
  T->xga = malloc((T->n_ga ? T->n_ga : 1) * T->nout * sizeof(float));
  T->ytr = labels_of(s, T->tr, T->n_tr);
  T->yva = labels_of(s, T->va, T->n_va);
  T->yga = labels_of(s, T->ga, T->n_ga);
  T->names = xgb_names(T->prep, T->nout);
  if (!T->xtr || !T->xva || !T->xga || !T->ytr || !T->yva || !T->yga ||
      !T->names)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory for %zu x %zu "
                                 "matrices",
                   s->n_rows, T->nout);
  if ((rc = prep_transform_rows(T->prep, &s->input, T->tr, T->n_tr, T->xtr,
                                e)) ||
      (rc = prep_transform_rows(T->prep, &s->input, T->va, T->n_va, T->xva,
                                e)) ||
      (T->n_ga && (rc = prep_transform_rows(T->prep, &s->input, T->ga,
                                            T->n_ga, T->xga, e))))
    return rc;
  if (sp->weights_balanced && (rc = balanced_weights(T, e)))
    return rc;
  T->res->prep_s = pipeline_mono_s() - t0;
  char gate[160] = "";
  if (sp->gate_fraction > 0 || sp->group_by)
    snprintf(gate, sizeof(gate), " / %zu gate rows (%s%s)", T->n_ga,
             sp->group_by ? "grouped by " : "by row key",
             sp->group_by ? sp->group_by : "");
  pipeline_plog(T->o, "split %zu train / %zu validation rows%s (seed %llu%s); "
                      "preprocessing: %zu inputs -> %zu columns in %.2f s",
                T->n_tr, T->n_va, gate, (unsigned long long)sp->seed,
                sp->stratify ? ", stratified" : "", sp->n_features, T->nout,
                T->res->prep_s);
  if (T->class_w) {
    char cw[256];
    size_t off = 0;
    cw[0] = '\0';
    for (size_t c = 0; c < sp->target.n_classes && off < sizeof(cw); c++) {
      int w = snprintf(cw + off, sizeof(cw) - off, "%s%s=%.4f", c ? " " : "",
                       sp->target.classes[c], T->class_w[c]);
      if (w < 0)
        break;
      off += (size_t)w;
    }
    pipeline_plog(T->o, "weights: balanced (%s)", cw);
  }
  return ERR_OK;
}

/* Stage 3: the artefacts that need the raw columns, into a new draft;
 * then the raw columns are freed. */
static enum err_code ptrain_artefacts(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  struct fstore_set *s = T->s;
  struct err *e = T->e;
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  double tw = pipeline_mono_s();
  if ((rc = registry_version_begin(T->reg, sp->name, &T->draft, e)))
    return rc;
  if ((rc = pipeline_draft_path(T->draft, "preprocess.json", path, sizeof(path),
                                e)) ||
      (rc = prep_save_json(T->prep, path, e)))
    return rc;
  cJSON *ref = pipeline_build_reference(sp, s, T->tr, T->n_tr);
  if (!ref)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory building "
                                 "reference.json");
  if (!(rc = pipeline_draft_path(T->draft, "reference.json", path, sizeof(path),
                                 e)))
    rc = pipeline_write_json(path, ref, 0, e);
  cJSON_Delete(ref);
  if (rc)
    return rc;
  if ((rc = write_rows(T->draft, sp, s, T->va, T->n_va, "validation.jsonl",
                       "valid", 1, e)) ||
      (T->n_ga && (rc = write_rows(T->draft, sp, s, T->ga, T->n_ga,
                                   PIPELINE_GATE_ROWS, "gate", 0, e))))
    return rc;
  size_t n_keys = 0;
  if ((rc = write_train_keys(T->draft, s, T->tr, T->n_tr, &n_keys, e)))
    return rc;
  if (s->n_row_key_cols == 0)
    pipeline_plog(T->o,
                  "%s has no primary key and the spec no source.key: no %s "
                  "(the validate gate will score on all validation rows)",
                  sp->source.table, PIPELINE_TRAIN_KEYS);
  else if (n_keys != T->n_tr)
    pipeline_plog(T->o, "%s: %zu distinct row keys for %zu training rows",
                  PIPELINE_TRAIN_KEYS, n_keys, T->n_tr);
  fstore_set_sha256(s, sp, T->res->data_sha256);
  snprintf(T->sql, sizeof(T->sql), "%s", s->sql);
  fstore_set_free(s);
  T->s = NULL;
  T->t_art = pipeline_mono_s() - tw;
  return ERR_OK;
}

/* Stage 4: the spec's fixed XGBoost params, the number of trials and the
 * training settings of every trial. */
enum err_code ptrain_grid(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  const struct pipeline_opts *o = T->o;
  T->objective = spec_param(sp, "objective");
  T->kv = calloc(MAX_KV, sizeof(*T->kv));
  if (!T->kv)
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  for (size_t i = 0; i < sp->n_params; i++) {
    const char *k = sp->params[i].key;
    if (!strcmp(k, "objective") || !strcmp(k, "num_class") ||
        !strcmp(k, "nthread") || !strcmp(k, "n_jobs"))
      continue;
    if (!strcmp(k, "eval_metric"))
      T->eval_metric = sp->params[i].value; /* the last one stops early */
    if (T->n_base + sp->n_grid >= MAX_KV)
      return err_set(T->e, ERR_INVAL, "%s: more than %d xgboost params",
                     sp->path, MAX_KV);
    T->kv[T->n_base++] = (struct train_kv){k, sp->params[i].value};
  }
  T->total = sp->grid_size ? sp->grid_size : 1;
  if (o->max_trials && o->max_trials < T->total)
    T->total = o->max_trials;
  T->nbr = o->num_boost_round > 0 ? o->num_boost_round : sp->num_boost_round;
  T->esr = o->early_stopping_rounds > 0   ? o->early_stopping_rounds
           : o->early_stopping_rounds < 0 ? 0
                                          : sp->early_stopping_rounds;
  T->nthread = o->nthread > 0 ? o->nthread : 1;
  T->parallel = o->parallel > 1 ? o->parallel : 1;
  T->shared = o->shared_trials;
  T->lease_s = o->lease_s > 0 ? o->lease_s : 30;
  if ((size_t)T->parallel > T->total)
    T->parallel = (int)T->total;
  T->res->trials = calloc(T->total, sizeof(*T->res->trials));
  if (!T->res->trials)
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  T->width = T->total >= 1000 ? 4 : T->total >= 100 ? 3 : 2;
  T->sel = select_of(sp->metric);
  pipeline_plog(o,
                "grid search: %zu trial%s of %zu, up to %d rounds, early "
                "stopping %d, %d at a time with %d XGBoost thread%s each, "
                "selection by %s",
                T->total, T->total == 1 ? "" : "s", sp->grid_size, T->nbr,
                T->esr, T->parallel, T->nthread, T->nthread == 1 ? "" : "s",
                spec_metric_name(sp->metric));
  T->td = (struct train_data){.x_train = T->xtr, .y_train = T->ytr,
                              .n_train = T->n_tr, .x_val = T->xva,
                              .y_val = T->yva, .n_val = T->n_va,
                              .w_train = T->wtr, .w_val = T->wva,
                              .nfeat = T->nout,
                              .feature_names =
                                  (const char *const *)T->names};
  return ERR_OK;
}

/* Record trial t (run_id) in the registry's runs and keep it if it is the
 * best so far (r, pj and mj are taken over in any case). */
enum err_code ptrain_record(struct ptrain *T, size_t t,
                                   const char *run_id, struct train_result *r,
                                   cJSON *pj, cJSON *mj, struct err *e)
{
  enum err_code rc =
      registry_run_write(T->reg, T->sp->name, run_id, pj, mj, e);
  /* Strictly better, or as good and earlier in the grid: the same winner
   * whatever order parallel trials finish in. */
  int better = rc == ERR_OK &&
               (!T->have_best ||
                train_better(T->sel, &r->metrics, &T->best.metrics) ||
                (t < T->best_i &&
                 !train_better(T->sel, &T->best.metrics, &r->metrics)));
  if (!better) {
    train_result_free(r);
    cJSON_Delete(pj);
    cJSON_Delete(mj);
    return rc;
  }
  train_result_free(&T->best);
  T->best = *r;
  T->have_best = 1;
  T->best_i = t;
  cJSON_Delete(T->best_params);
  cJSON_Delete(T->best_metrics);
  T->best_params = pj;
  T->best_metrics = mj;
  snprintf(T->best_run, sizeof(T->best_run), "%s", run_id);
  return ERR_OK;
}

/* Polled before every boosting round of a trial. */
static int trial_cancel(void *ud)
{
  struct ptrial *P = ud;
  struct ptrain *T = P->T;
  ptrain_search_alive(T); /* a long trial must not look like a dead run */
  if (P->sid > 0 && pipeline_mono_s() - P->hb_at >= T->lease_s / 3.0) {
    struct err he = {0};
    P->hb_at = pipeline_mono_s();
    if (trialq_heartbeat(T->db, P->sid, P->row, P->owner, &he) ==
        ERR_STATE)
      P->lost = 1; /* another daemon took it over: its result counts */
  }
  return P->lost || ptrain_stopping(T);
}

/* Stage 5a: train grid point P->t into P (r, pj, mj, secs, desc, run_id).
 * Any trial thread; touches nothing shared. */
enum err_code ptrain_fit(struct ptrial *P, struct err *e)
{
  struct ptrain *T = P->T;
  size_t t = P->t;
  const struct spec *sp = T->sp;
  const struct pipeline_opts *o = T->o;
  enum err_code rc;
  if (o->cancel && o->cancel(o->cancel_ud))
    return err_set(e, ERR_CANCELED, "training cancelled before trial %zu/%zu",
                   t + 1, T->total);
  struct train_kv kv[MAX_KV];
  size_t n_kv = T->n_base;
  memcpy(kv, T->kv, n_kv * sizeof(*kv));
  char *desc = P->desc;
  size_t dl = 0;
  desc[0] = '\0';
  for (size_t a = 0; a < sp->n_grid; a++) {
    const char *v = spec_grid_value(sp, t, a);
    kv[n_kv++] = (struct train_kv){sp->grid[a].key, v};
    if (dl < sizeof(P->desc))
      dl += (size_t)snprintf(desc + dl, sizeof(P->desc) - dl, " %s=%s",
                             sp->grid[a].key, v);
  }
  struct train_params tp = {
      .objective = T->objective,
      .num_class = sp->task == SPEC_TASK_MULTICLASS
                       ? (int)sp->target.n_classes
                       : 0,
      .params = kv,
      .n_params = n_kv,
      .num_boost_round = T->nbr,
      .early_stopping_rounds = T->esr,
      .nthread = T->nthread,
      .eval_metric = T->eval_metric,
      .cancel = trial_cancel,
      .ud = P,
  };
  struct train_result *r = &P->r;
  double t1 = pipeline_mono_s();
  if ((rc = train_fit(&T->td, &tp, r, e))) {
    if (P->lost)
      err_set(e, ERR_STATE, "trial %zu/%zu: claim lost", t + 1, T->total);
    err_prefix(e, "trial %zu/%zu%s", t + 1, T->total, desc);
    return P->lost ? ERR_STATE : rc;
  }
  P->secs = pipeline_mono_s() - t1;
  if (snprintf(P->run_id, sizeof(P->run_id), "%s-t%0*zu", T->prefix,
               T->width, t + 1) >= (int)sizeof(P->run_id)) {
    train_result_free(r);
    return err_set(e, ERR_INTERNAL, "pipeline: run id too long");
  }
  cJSON *pj = params_json(T->objective, r->num_class > 2 ? r->num_class : 0,
                          kv, n_kv, T->n_base);
  cJSON *mj = metrics_json(sp, r, P->secs);
  if (pj) {
    cJSON_AddNumberToObject(pj, "num_boost_round", T->nbr);
    cJSON_AddNumberToObject(pj, "early_stopping_rounds", T->esr);
  }
  if (mj) {
    cJSON_AddNumberToObject(mj, "trial", (double)t + 1);
    cJSON_AddNumberToObject(mj, "trials", (double)T->total);
    cJSON_AddStringToObject(mj, "logical_date", o->ds);
  }
  if (!pj || !mj) {
    cJSON_Delete(pj);
    cJSON_Delete(mj);
    train_result_free(r);
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  }
  P->pj = pj;
  P->mj = mj;
  return ERR_OK;
}

void ptrain_trial_log(struct ptrain *T, size_t t, const char *desc,
                             const struct pipeline_trial *pt, double secs,
                             const char *by)
{
  const struct spec *sp = T->sp;
  pipeline_plog(T->o,
                "trial %zu/%zu%s: %s=%.4f best so far %.4f (trial %zu) "
                "[%d rounds, best %d, %.1f s%s%s]",
                t + 1, T->total, desc, spec_metric_name(sp->metric),
                pipeline_metric_value(sp->metric, &pt->m),
                pipeline_metric_value(sp->metric, &T->best.metrics),
                T->best_i + 1, pt->rounds_run, pt->best_iteration, secs,
                by ? ", by " : "", by ? by : "");
}

/* Distributed training: the SHA-256 of trial t's model on this rank, so
 * the coordinator can check every rank ended with the same bytes. */
enum err_code ptrain_model_sha(struct ptrain *T, size_t t,
                                      const struct train_result *r,
                                      struct err *e)
{
  char *buf = NULL;
  size_t len = 0;
  enum err_code rc = train_result_to_buffer(r, &buf, &len, e);
  if (rc)
    return rc;
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_buf(buf, len, d);
  free(buf);
  if (!T->trial_sha &&
      !(T->trial_sha = calloc(T->total, sizeof(*T->trial_sha))))
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  sha256_hex(d, T->trial_sha[t]);
  return ERR_OK;
}

/* Stage 5, once per trial t of the grid: train, record, compare.  Runs on
 * any trial thread: T's shared fields are touched only under T->mu. */
static enum err_code ptrain_trial(struct ptrain *T, size_t t, struct err *e)
{
  struct ptrial P = {.T = T, .t = t};
  enum err_code rc = ptrain_fit(&P, e);
  if (rc)
    return rc;
  struct pipeline_trial *pt = &T->res->trials[t]; /* this thread's slot */
  pt->m = P.r.metrics;
  pt->best_iteration = P.r.best_iteration;
  pt->rounds_run = P.r.rounds_run;
  pt->n_trees = P.r.num_trees;
  pt->seconds = P.secs;
  if (T->shards > 1 && (rc = ptrain_model_sha(T, t, &P.r, e))) {
    cJSON_Delete(P.pj);
    cJSON_Delete(P.mj);
    train_result_free(&P.r);
    return rc;
  }
  pthread_mutex_lock(&T->mu);
  rc = ptrain_record(T, t, P.run_id, &P.r, P.pj, P.mj, e);
  if (!rc)
    ptrain_trial_log(T, t, P.desc, pt, P.secs, NULL);
  pthread_mutex_unlock(&T->mu);
  return rc;
}

int ptrain_stopping(struct ptrain *T)
{
  pthread_mutex_lock(&T->mu);
  int failed = T->failed;
  pthread_mutex_unlock(&T->mu);
  return failed || (T->o->cancel && T->o->cancel(T->o->cancel_ud));
}

/* A trial thread: take the next grid point until none is left or a trial
 * failed.  The first failure is the run's error. */
static void *ptrain_worker(void *arg)
{
  struct ptrain_worker *w = arg;
  struct ptrain *T = w->T;
  if (T->shared)
    return ptrain_shared_worker(w);
  for (;;) {
    pthread_mutex_lock(&T->mu);
    size_t t = T->failed ? T->total : T->next;
    if (t < T->total)
      T->next++;
    pthread_mutex_unlock(&T->mu);
    if (t >= T->total)
      break;
    enum err_code rc = ptrain_trial(T, t, &w->e);
    pthread_mutex_lock(&T->mu);
    if (rc && !T->failed) {
      T->failed = 1;
      w->rc = rc;
    }
    if (!rc)
      T->done++;
    pthread_mutex_unlock(&T->mu);
    if (rc)
      break;
  }
  return NULL;
}

/* Stage 5: every trial, T->parallel at a time (the calling thread is one
 * of them). */
static enum err_code ptrain_search(struct ptrain *T)
{
  int n = T->parallel;
  if (T->shared) {
    enum err_code src = ptrain_shared_search(T);
    if (src)
      return src;
  }
  struct ptrain_worker *w = calloc((size_t)n, sizeof(*w));
  pthread_t *th = calloc((size_t)n, sizeof(*th));
  if (!w || !th) {
    free(w);
    free(th);
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  }
  int started = 1;
  for (int i = 0; i < n; i++)
    w[i].T = T;
  for (; started < n; started++)
    if (pthread_create(&th[started], NULL, ptrain_worker, &w[started]))
      break; /* fewer threads: the ones there take every trial */
  ptrain_worker(&w[0]);
  for (int i = 1; i < started; i++)
    pthread_join(th[i], NULL);
  enum err_code rc = ERR_OK;
  for (int i = 0; i < started && !rc; i++)
    if (w[i].rc) {
      rc = w[i].rc;
      *T->e = w[i].e;
    }
  if (T->shared) {
    if (!rc)
      rc = ptrain_shared_collect(T);
    struct err ee = {0};
    if (trialq_search_end(T->db, T->sid, rc ? "failed" : "success", &ee))
      pipeline_plog(T->o, "shared trials: ending search %lld: %s",
                    (long long)T->sid, ee.msg);
  } else {
    if (!rc && T->done < T->total)
      rc = err_set(T->e, ERR_INTERNAL, "pipeline: %zu of %zu trials ran",
                   T->done, T->total);
    T->res->n_trials = T->done;
  }
  free(w);
  free(th);
  return rc;
}

/* meta.json's "importance" (explain.h): the saved model at path (loaded
 * as the server loads it) on the gate rows, or the validation rows when
 * there is no gate split. */
static enum err_code ptrain_importance(struct ptrain *T, const char *path,
                                       cJSON *meta)
{
  const float *x = T->n_ga ? T->xga : T->xva;
  size_t n = T->n_ga ? T->n_ga : T->n_va;
  if (!n)
    return ERR_OK;
  struct model_load_opts lo = {.no_native = 1};
  struct model *m;
  cJSON *imp = NULL;
  enum err_code rc = model_load(path, T->nout, &lo, &m, T->e);
  if (rc)
    return rc;
  rc = explain_importance_json(m, T->prep, x, n, T->n_ga ? "gate" : "valid",
                               &imp, T->e);
  model_unref(m);
  if (!rc)
    cJSON_AddItemToObject(meta, "importance", imp);
  return rc;
}

/* Stage 6: the best trial's model and meta.json into the draft, which
 * becomes the next version. */
static enum err_code ptrain_version(struct ptrain *T)
{
  struct err *e = T->e;
  struct pipeline_result *res = T->res;
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  double tw = pipeline_mono_s();
  if ((rc = pipeline_draft_path(T->draft, MODEL_FILE_NAME, path, sizeof(path),
                                e)) ||
      (rc = train_result_save(&T->best, path, e)))
    return rc;
  cJSON *calibration = NULL;
  if ((rc = pipeline_split_metrics(T, T->xtr, T->ytr, T->n_tr, &T->m_train)) ||
      (rc = pipeline_split_metrics(T, T->xga, T->yga, T->n_ga, &T->m_gate)) ||
      (rc = ptrain_calibrate(T, &calibration)))
    return rc;
  if (T->n_ga)
    pipeline_plog(T->o,
                  "kept model on the %zu gate rows (unseen by fitting and "
                  "selection): accuracy=%.4f f1_macro=%.4f logloss=%.4f",
                  T->n_ga, T->m_gate.accuracy, T->m_gate.f1_macro,
                  T->m_gate.logloss);
  struct meta_in mi = {.sp = T->sp, .o = T->o, .res = res, .prep = T->prep,
                       .m_train = &T->m_train, .m_gate = &T->m_gate,
                       .calibration = calibration,
                       .sql = T->sql, .best_run = T->best_run,
                       .params = T->best_params, .metrics = T->best_metrics,
                       .best = &T->best, .objective = T->objective,
                       .nthread = T->nthread, .num_boost_round = T->nbr,
                       .early_stopping_rounds = T->esr, .dist = T->dist,
                       .class_w = T->class_w};
  T->best_params = T->best_metrics = NULL; /* taken by build_meta */
  cJSON *meta = build_meta(&mi);
  if (!meta)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory building "
                                 "meta.json");
  if (!(rc = pipeline_draft_path(T->draft, MODEL_FILE_NAME, path,
                                 sizeof(path), e)) &&
      !(rc = ptrain_importance(T, path, meta)) &&
      !(rc = pipeline_draft_path(T->draft, "meta.json", path, sizeof(path), e)))
    rc = pipeline_write_json(path, meta, 1, e);
  cJSON_Delete(meta);
  if (rc)
    return rc;
  rc = registry_version_commit(T->draft, &res->version, e);
  T->draft = NULL;
  if (rc)
    return rc;
  res->write_s = pipeline_mono_s() - tw + T->t_art;
  return ERR_OK;
}

enum err_code pipeline_train(struct registry *reg, struct db_pool *db,
                             const struct spec *sp,
                             const struct pipeline_opts *o,
                             struct pipeline_result *res, struct err *e)
{
  double t_start = pipeline_mono_s();
  memset(res, 0, sizeof(*res));
  if (!reg || !db || !sp || !o || !o->ds)
    return err_set(e, ERR_INVAL, "pipeline: registry, database, spec and "
                                 "logical date are required");
  struct ptrain *T = calloc(1, sizeof(*T));
  if (!T)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  *T = (struct ptrain){.reg = reg, .db = db, .sp = sp, .o = o, .res = res,
                       .e = e, .shards = o->workers > 1 ? o->workers : 1};
  pthread_mutex_init(&T->mu, NULL);
  if (o->dag_run_id) {
    pipeline_safe_name(o->dag_run_id, T->prefix, sizeof(T->prefix));
  } else {
    char ts[32];
    utc_iso(ts, sizeof(ts), 1);
    snprintf(T->prefix, sizeof(T->prefix), "adhoc-%s-%ld", ts,
             (long)getpid());
  }
  snprintf(res->run_prefix, sizeof(res->run_prefix), "%s", T->prefix);

  enum err_code rc = ptrain_read(T);
  if (!rc)
    rc = ptrain_prepare(T);
  if (!rc)
    rc = ptrain_artefacts(T);
  if (!rc)
    rc = ptrain_grid(T);
  double ts0 = pipeline_mono_s();
  if (!rc && T->shards > 1) {
    T->parallel = 1; /* the collective belongs to this thread */
    if (o->shared_trials)
      rc = err_set(e, ERR_INVAL, "train: workers and shared_trials do not "
                                 "go together");
    if (!rc)
      rc = ptrain_dist_start(T);
  }
  if (!rc)
    rc = ptrain_search(T);
  if (!rc && T->shards > 1)
    rc = ptrain_dist_finish(T);
  if (T->shards > 1) {
    ptrain_dist_abort(T);
    struct err ee = {0};
    if (T->sid > 0 &&
        (trialq_coord_state(db, T->sid, rc ? "failed" : "success", NULL,
                            &ee) ||
         trialq_search_end(db, T->sid, rc ? "failed" : "success", &ee)))
      pipeline_plog(o, "distributed training: ending search %lld: %s",
                    (long long)T->sid, ee.msg);
  }
  if (!rc) {
    res->search_s = pipeline_mono_s() - ts0;
    res->best_trial = T->best_i;
    res->best = T->best.metrics;
    rc = ptrain_version(T);
  }
  if (!rc) {
    res->total_s = pipeline_mono_s() - t_start;
    pipeline_plog(o,
                  "registered %s version %d from trial %zu/%zu (%s): "
                  "accuracy=%.4f f1_macro=%.4f logloss=%.4f; %zu rows, data "
                  "sha256 %.12s; total %.1f s",
                  sp->name, res->version, T->best_i + 1, res->n_trials,
                  T->best_run, T->best.metrics.accuracy,
                  T->best.metrics.f1_macro, T->best.metrics.logloss,
                  res->n_rows, res->data_sha256, res->total_s);
  }
  ptrain_free(T);
  pthread_mutex_destroy(&T->mu);
  free(T);
  if (rc)
    pipeline_result_free(res);
  return rc;
}

