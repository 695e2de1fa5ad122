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
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"

#define MAX_KV 256

/* ---- small helpers ---------------------------------------------------- */

static double mono_s(void)
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

static void plog(const struct pipeline_opts *o, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3);
static void plog(const struct pipeline_opts *o, const char *fmt, ...)
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

static int add_num(cJSON *o, const char *k, double v)
{
  return cJSON_AddItemToObject(o, k, isfinite(v) ? cJSON_CreateNumber(v)
                                                 : cJSON_CreateNull())
             ? 0
             : -1;
}

/* Write a cJSON document to path (inside a draft: the commit fsyncs). */
static enum err_code write_json(const char *path, const cJSON *doc,
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

static enum err_code draft_path(struct registry_draft *d, const char *file,
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

/* ---- reference.json --------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_ptr(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t) * (const char *const *)a;
  uintptr_t y = (uintptr_t) * (const char *const *)b;
  return x < y ? -1 : x > y;
}

/* A counted string (a category or a token). */
struct cnt {
  const char *s;
  size_t len;
  size_t n;
};

static int cmp_cnt_bytes(const void *a, const void *b)
{
  const struct cnt *x = a, *y = b;
  size_t m = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, m);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int cmp_cnt_freq(const void *a, const void *b)
{
  const struct cnt *x = a, *y = b;
  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return cmp_cnt_bytes(a, b);
}

/* Sort by bytes and merge equal strings, summing counts. */
static size_t merge_cnt(struct cnt *c, size_t n)
{
  if (n == 0)
    return 0;
  qsort(c, n, sizeof(*c), cmp_cnt_bytes);
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (cmp_cnt_bytes(&c[k], &c[i]) == 0)
      c[k].n += c[i].n;
    else
      c[++k] = c[i];
  }
  return k + 1;
}

/* numpy-style linear quantile of sorted a[0..n-1]. */
static double quantile(const double *a, size_t n, double q)
{
  double pos = q * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo >= n - 1)
    return a[n - 1];
  double f = pos - (double)lo;
  return a[lo] + (a[lo + 1] - a[lo]) * f;
}

static int ref_numeric(cJSON *o, const double *col, const size_t *idx,
                       size_t n, double *buf)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(col[idx[i]]))
      buf[k++] = col[idx[i]];
  add_num(o, "missing_share", n ? (double)(n - k) / (double)n : 0);
  cJSON *edges = cJSON_AddArrayToObject(o, "edges");
  cJSON *counts = cJSON_AddArrayToObject(o, "counts");
  cJSON *shares = cJSON_AddArrayToObject(o, "shares");
  if (!edges || !counts || !shares)
    return -1;
  if (k == 0)
    return 0;
  qsort(buf, k, sizeof(double), cmp_double);
  double e[PIPELINE_REF_BINS + 1];
  size_t c[PIPELINE_REF_BINS] = {0};
  for (int b = 0; b <= PIPELINE_REF_BINS; b++)
    e[b] = quantile(buf, k, (double)b / PIPELINE_REF_BINS);
  /* bin = number of inner edges <= v (values sorted: one sweep) */
  size_t b = 0;
  for (size_t i = 0; i < k; i++) {
    while (b + 1 < PIPELINE_REF_BINS && e[b + 1] <= buf[i])
      b++;
    c[b]++;
  }
  for (int j = 0; j <= PIPELINE_REF_BINS; j++)
    cJSON_AddItemToArray(edges, cJSON_CreateNumber(e[j]));
  for (int j = 0; j < PIPELINE_REF_BINS; j++) {
    cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)c[j]));
    cJSON_AddItemToArray(shares,
                         cJSON_CreateNumber((double)c[j] / (double)k));
  }
  return 0;
}

/* Categories (text: tokens) of a string column over rows idx. */
static int ref_strings(cJSON *o, const char *const *col, const size_t *idx,
                       size_t n, const char *delims, const char **pbuf)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (col[idx[i]])
      pbuf[k++] = col[idx[i]];
  add_num(o, "missing_share", n ? (double)(n - k) / (double)n : 0);
  /* interned strings: equal values are equal pointers */
  qsort(pbuf, k, sizeof(*pbuf), cmp_ptr);
  size_t nd = 0, cap = 64;
  struct cnt *c = malloc(cap * sizeof(*c));
  if (!c)
    return -1;
  for (size_t i = 0; i < k;) {
    size_t j = i;
    while (j < k && pbuf[j] == pbuf[i])
      j++;
    size_t run = j - i;
    const char *s = pbuf[i];
    if (!delims) {
      if (nd == cap) {
        struct cnt *q = realloc(c, 2 * cap * sizeof(*c));
        if (!q)
          goto oom;
        c = q;
        cap *= 2;
      }
      c[nd++] = (struct cnt){s, strlen(s), run};
    } else {
      const char *p = s;
      while (*p) {
        p += strspn(p, delims);
        size_t len = strcspn(p, delims);
        if (!len)
          break;
        if (nd == cap) {
          struct cnt *q = realloc(c, 2 * cap * sizeof(*c));
          if (!q)
            goto oom;
          c = q;
          cap *= 2;
        }
        c[nd++] = (struct cnt){p, len, run};
        p += len;
      }
    }
    i = j;
  }
  nd = merge_cnt(c, nd);
  qsort(c, nd, sizeof(*c), cmp_cnt_freq);
  size_t total = 0, other = 0;
  for (size_t i = 0; i < nd; i++) {
    total += c[i].n;
    if (i >= PIPELINE_REF_MAX_CATS)
      other += c[i].n;
  }
  cJSON *cats = cJSON_AddObjectToObject(o, delims ? "tokens" : "categories");
  if (!cats)
    goto oom;
  for (size_t i = 0; i < nd && i < PIPELINE_REF_MAX_CATS; i++) {
    char kb[512];
    snprintf(kb, sizeof(kb), "%.*s", (int)(c[i].len < 511 ? c[i].len : 511),
             c[i].s);
    cJSON_AddItemToObject(
        cats, kb, cJSON_CreateNumber((double)c[i].n / (double)total));
  }
  add_num(o, "other_share", total ? (double)other / (double)total : 0);
  add_num(o, "distinct", (double)nd);
  free(c);
  return 0;
oom:
  free(c);
  return -1;
}

static cJSON *build_reference(const struct spec *sp,
                              const struct fstore_set *s, const size_t *idx,
                              size_t n)
{
  cJSON *root = cJSON_CreateObject();
  double *dbuf = malloc((n ? n : 1) * sizeof(double));
  const char **pbuf = malloc((n ? n : 1) * sizeof(char *));
  if (!root || !dbuf || !pbuf)
    goto fail;
  cJSON_AddStringToObject(root, "format", "mlopsd.reference");
  cJSON_AddNumberToObject(root, "format_version", 1);
  cJSON_AddStringToObject(root, "split", "train");
  cJSON_AddNumberToObject(root, "rows", (double)n);
  cJSON_AddNumberToObject(root, "bins", PIPELINE_REF_BINS);
  cJSON *feats = cJSON_AddArrayToObject(root, "features");
  if (!feats)
    goto fail;
  for (size_t j = 0; j < sp->n_features; j++) {
    const struct spec_feature *f = &sp->features[j];
    cJSON *h = cJSON_CreateObject();
    if (!h || !cJSON_AddItemToArray(feats, h))
      goto fail;
    cJSON_AddStringToObject(h, "name", f->name);
    cJSON_AddStringToObject(h, "kind", spec_kind_name(f->kind));
    if (f->kind == SPEC_TEXT)
      cJSON_AddStringToObject(h, "delimiters", f->delimiters);
    int bad = f->kind == SPEC_NUMERIC
                  ? ref_numeric(h, s->cols[j].num, idx, n, dbuf)
                  : ref_strings(h, s->cols[j].str, idx, n,
                                f->kind == SPEC_TEXT ? f->delimiters : NULL,
                                pbuf);
    if (bad)
      goto fail;
  }
  free(dbuf);
  free(pbuf);
  return root;
fail:
  free(dbuf);
  free(pbuf);
  cJSON_Delete(root);
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
  if ((rc = draft_path(d, PIPELINE_TRAIN_KEYS, path, sizeof(path), e)))
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
  if ((rc = draft_path(d, file, path, sizeof(path), e)) ||
      (rc = draft_path(d, "sample.json", spath, sizeof(spath), e)))
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
  rc = with_sample ? write_json(spath, sample, 0, e) : ERR_OK;
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
    add_num(o, "rmse", r->metrics.rmse);
    add_num(o, "mae", r->metrics.mae);
  } else {
    add_num(o, "accuracy", r->metrics.accuracy);
    add_num(o, "f1_macro", r->metrics.f1_macro);
    add_num(o, "logloss", r->metrics.logloss);
  }
  add_num(o, "best_iteration", r->best_iteration);
  add_num(o, "n_trees", r->num_trees);
  add_num(o, "rounds_run", r->rounds_run);
  add_num(o, "best_score", r->best_score);
  cJSON_AddStringToObject(o, "eval_metric", r->eval_metric);
  add_num(o, "seconds", round(seconds * 1000) / 1000);
  return o;
}

struct ptrain;
static int ptrain_stopping(struct ptrain *T);


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
    add_num(mm, "rmse", m->rmse);
    add_num(mm, "mae", m->mae);
  } else {
    add_num(mm, "accuracy", m->accuracy);
    add_num(mm, "f1_macro", m->f1_macro);
    add_num(mm, "logloss", m->logloss);
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
    add_num(sel, "value",
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
  cJSON *tr = cJSON_AddObjectToObject(o, "training");
  if (tr) {
    cJSON_AddNumberToObject(tr, "nthread", m->nthread);
    cJSON_AddNumberToObject(tr, "num_boost_round", m->num_boost_round);
    cJSON_AddNumberToObject(tr, "early_stopping_rounds",
                            m->early_stopping_rounds);
    add_num(tr, "read_seconds", round(m->res->read_s * 1000) / 1000);
    add_num(tr, "prep_seconds", round(m->res->prep_s * 1000) / 1000);
    add_num(tr, "search_seconds", round(m->res->search_s * 1000) / 1000);
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

/* What pipeline_train's stages share; freed by ptrain_free. */
struct ptrain {
  struct registry *reg;
  struct db_pool *db;
  const struct spec *sp;
  const struct pipeline_opts *o;
  struct pipeline_result *res;
  struct err *e;
  char prefix[PIPELINE_RUN_ID_MAX + 1];
  /* read, split, preprocessing */
  struct fstore_set *s;        /* until the artefacts are written */
  struct prep *prep;
  size_t *tr, *va, *ga, n_tr, n_va, n_ga;
  float *xtr, *xva, *xga, *ytr, *yva, *yga;
  char **names;
  size_t nout;
  char sql[FSTORE_SQL_MAX];    /* the training query, for meta.json */
  struct registry_draft *draft;
  double t_art;                /* seconds writing the artefacts */
  /* the grid */
  const char *objective, *eval_metric;
  struct train_kv *kv;
  size_t n_base, total;
  int nbr, esr, nthread, width;
  enum train_select sel;
  struct train_data td;
  int parallel;                /* trials at once */
  /* shared trials (trialq.h): the search row and this run's claim name */
  int shared, lease_s;
  int64_t sid;
  char owner[TRIALQ_OWNER_MAX + 1];
  double search_hb;            /* last search heartbeat (under mu) */
  /* distributed training (workers: N): this rank's shard of the rows */
  int shards, rank;
  char (*trial_sha)[SHA256_HEX_LEN]; /* model SHA-256 per trial */
  pid_t tracker;               /* rank 0: the python tracker, or 0 */
  int comm;                    /* this thread joined the collective */
  cJSON *dist;                 /* rank 0: meta.json's "distributed" */
  /* shared by the trial threads, under mu */
  pthread_mutex_t mu;
  size_t next, done;           /* next grid point to start, trials done */
  int failed;                  /* a trial failed: start no more */
  /* the best trial so far */
  int have_best;
  struct train_result best;
  size_t best_i;
  char best_run[PIPELINE_RUN_ID_MAX + 16];
  /* the kept model on the training and gate splits (NaN: not scored) */
  struct train_metrics m_train, m_gate;
  cJSON *best_params, *best_metrics;
};

static void ptrain_free(struct ptrain *T)
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
  free_names(T->names, T->nout);
  free(T->kv);
  free(T->trial_sha);
  cJSON_Delete(T->dist);
}

/* ---- the three-way split ------------------------------------------------ */

/* A row's split unit as text: the group_by value, else the row key (its
 * columns joined by 0x1f), else the row number (not stable across
 * logical dates: a table without keys). */
static const char *split_unit(const struct spec *sp,
                              const struct fstore_set *s, size_t i, int gcol,
                              char *buf, size_t cap)
{
  if (sp->group_by) {
    if (gcol < 0) /* source.key */
      return s->keys && s->keys[i] ? s->keys[i] : "";
    if (s->cols[gcol].num) {
      double v = s->cols[gcol].num[i];
      if (isnan(v))
        return "";
      snprintf(buf, cap, "%.17g", v);
      return buf;
    }
    return s->cols[gcol].str[i] ? s->cols[gcol].str[i] : "";
  }
  if (s->n_row_key_cols == 0) {
    snprintf(buf, cap, "#%zu", i);
    return buf;
  }
  size_t n = 0;
  buf[0] = '\0';
  for (size_t k = 0; k < s->n_row_key_cols && n + 1 < cap; k++) {
    const char *v = s->row_keys[i * s->n_row_key_cols + k];
    int w = snprintf(buf + n, cap - n, "%s%s", k ? "\x1f" : "",
                     v ? v : "\x1e");
    if (w < 0)
      break;
    n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
  }
  return buf;
}

/* A number in [0, 1) from (seed, salt, text): FNV-1a 64 of the bytes,
 * mixed with the seed by a splitmix64 step.  The same unit gets the same
 * number on every logical date and machine, which keeps a record (or a
 * customer) in the same split every day: a candidate's gate rows were
 * then never fitted on by the production version either. */
static double split_hash01(uint64_t seed, uint64_t salt, const char *u)
{
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)u; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  uint64_t st = h ^ (seed * 0x9E3779B97F4A7C15ULL) ^ salt;
  return (double)(prep_splitmix64(&st) >> 11) * 0x1.0p-53;
}

/* Train / valid / gate.  Without a gate fraction or group_by: the
 * documented prep_split of all rows (no gate).  With group_by: each
 * group's hash puts it in gate (< gate_fraction), else valid (a second
 * hash < val_fraction), else train.  Without group_by: gate by the row
 * key's hash, then prep_split (stratified if asked) of the other rows.
 * val_fraction is a share of the rows outside the gate split. */
static enum err_code split_three(const struct spec *sp,
                                 const struct fstore_set *s,
                                 struct ptrain *T, struct err *e)
{
  size_t n = s->n_rows;
  enum err_code rc;
  if (!(sp->gate_fraction > 0) && !sp->group_by) {
    if (sp->stratify && sp->task != SPEC_TASK_REGRESSION)
      return prep_split_stratified(n, s->labels, sp->target.n_classes,
                                   sp->val_fraction, sp->seed, &T->tr,
                                   &T->n_tr, &T->va, &T->n_va, e);
    return prep_split(n, sp->val_fraction, sp->seed, &T->tr, &T->n_tr,
                      &T->va, &T->n_va, e);
  }
  int gcol = -1;
  if (sp->group_by && !(sp->source.key && !strcmp(sp->group_by,
                                                   sp->source.key)))
    gcol = spec_feature_index(sp, sp->group_by);
  size_t *ga = malloc(n * sizeof(*ga)), *rest = malloc(n * sizeof(*rest));
  size_t *va = malloc(n * sizeof(*va));
  int *lab = s->labels ? malloc(n * sizeof(*lab)) : NULL;
  if (!ga || !rest || !va || (s->labels && !lab)) {
    free(ga);
    free(rest);
    free(va);
    free(lab);
    return err_set(e, ERR_NOMEM, "split: out of memory");
  }
  size_t ng = 0, nr = 0, nv = 0;
  char buf[512];
  for (size_t i = 0; i < n; i++) {
    const char *u = split_unit(sp, s, i, gcol, buf, sizeof(buf));
    if (split_hash01(sp->seed, 0x67617465 /* gate */, u) < sp->gate_fraction)
      ga[ng++] = i;
    else if (sp->group_by &&
             split_hash01(sp->seed, 0x76616c /* val */, u) < sp->val_fraction)
      va[nv++] = i;
    else
      rest[nr++] = i;
  }
  rc = ERR_OK;
  if (sp->group_by) {
    T->tr = rest;
    T->n_tr = nr;
    T->va = va;
    T->n_va = nv;
    rest = va = NULL;
    if (T->n_tr == 0 || T->n_va == 0)
      rc = err_set(e, ERR_INVAL,
                   "split: grouping %zu rows by %s left %zu training and "
                   "%zu validation rows (%zu in the gate split): need at "
                   "least one of each",
                   n, sp->group_by, T->n_tr, T->n_va, ng);
  } else if (nr < 2) {
    rc = err_set(e, ERR_INVAL,
                 "split: only %zu of %zu rows outside the gate split "
                 "(gate_fraction %g): need at least 2 to train and validate",
                 nr, n, sp->gate_fraction);
  } else {
    size_t *tr2 = NULL, *va2 = NULL, ntr = 0, nva = 0;
    for (size_t i = 0; lab && i < nr; i++)
      lab[i] = s->labels[rest[i]];
    if (sp->stratify && sp->task != SPEC_TASK_REGRESSION)
      rc = prep_split_stratified(nr, lab, sp->target.n_classes,
                                 sp->val_fraction, sp->seed, &tr2, &ntr,
                                 &va2, &nva, e);
    else
      rc = prep_split(nr, sp->val_fraction, sp->seed, &tr2, &ntr, &va2,
                      &nva, e);
    if (!rc) { /* indices into rest -> rows; still ascending */
      for (size_t i = 0; i < ntr; i++)
        tr2[i] = rest[tr2[i]];
      for (size_t i = 0; i < nva; i++)
        va2[i] = rest[va2[i]];
      T->tr = tr2;
      T->n_tr = ntr;
      T->va = va2;
      T->n_va = nva;
    }
  }
  free(rest);
  free(va);
  free(lab);
  if (rc) {
    free(ga);
    return rc;
  }
  T->ga = ga;
  T->n_ga = ng;
  return ERR_OK;
}

/* Stage 1: read the training rows of the logical date. */
static enum err_code ptrain_read(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  const struct pipeline_opts *o = T->o;
  struct fstore_set *s;
  enum err_code rc;
  plog(o, "reading %s for %s", sp->source.table, o->ds);
  if ((rc = fstore_read_training_shard(T->db, sp, o->ds,
                                       T->shards > 1 ? T->shards : 1,
                                       T->rank, o->cancel, o->cancel_ud,
                                       &T->s, T->e)))
    return rc;
  if (T->shards > 1)
    plog(o, "shard %d of %d: the rows with MOD(`%s`, %d) = %d", T->rank,
         T->shards, sp->source.key, T->shards, T->rank);
  s = T->s;
  T->res->n_rows = s->n_rows;
  T->res->read_s = s->read_s;
  T->res->arena_bytes = s->arena_bytes;
  T->res->n_inputs = sp->n_features;
  plog(o, "read %zu rows x %zu features in %.2f s (%.0f rows/s, %zu "
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

/* Stage 2: split, fit the preprocessing on the training rows, transform
 * both sides into XGBoost's matrices. */
static enum err_code ptrain_prepare(struct ptrain *T)
{
  const struct spec *sp = T->sp;
  struct fstore_set *s = T->s;
  struct err *e = T->e;
  enum err_code rc;
  double t0 = mono_s();
  if ((rc = split_three(sp, s, T, e)))
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
  T->res->prep_s = mono_s() - t0;
  char gate[160] = "";
  if (sp->gate_fraction > 0 || sp->group_by)
    snprintf(gate, sizeof(gate), " / %zu gate rows (%s%s)", T->n_ga,
             sp->group_by ? "grouped by " : "by row key",
             sp->group_by ? sp->group_by : "");
  plog(T->o, "split %zu train / %zu validation rows%s (seed %llu%s); "
             "preprocessing: %zu inputs -> %zu columns in %.2f s",
       T->n_tr, T->n_va, gate, (unsigned long long)sp->seed,
       sp->stratify ? ", stratified" : "", sp->n_features, T->nout,
       T->res->prep_s);
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
  double tw = mono_s();
  if ((rc = registry_version_begin(T->reg, sp->name, &T->draft, e)))
    return rc;
  if ((rc = draft_path(T->draft, "preprocess.json", path, sizeof(path), e)) ||
      (rc = prep_save_json(T->prep, path, e)))
    return rc;
  cJSON *ref = build_reference(sp, s, T->tr, T->n_tr);
  if (!ref)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory building "
                                 "reference.json");
  if (!(rc = draft_path(T->draft, "reference.json", path, sizeof(path), e)))
    rc = write_json(path, ref, 0, e);
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
    plog(T->o, "%s has no primary key and the spec no source.key: no %s "
               "(the validate gate will score on all validation rows)",
         sp->source.table, PIPELINE_TRAIN_KEYS);
  else if (n_keys != T->n_tr)
    plog(T->o, "%s: %zu distinct row keys for %zu training rows",
         PIPELINE_TRAIN_KEYS, n_keys, T->n_tr);
  fstore_set_sha256(s, sp, T->res->data_sha256);
  snprintf(T->sql, sizeof(T->sql), "%s", s->sql);
  fstore_set_free(s);
  T->s = NULL;
  T->t_art = mono_s() - tw;
  return ERR_OK;
}

/* Stage 4: the spec's fixed XGBoost params, the number of trials and the
 * training settings of every trial. */
static enum err_code ptrain_grid(struct ptrain *T)
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
  plog(o, "grid search: %zu trial%s of %zu, up to %d rounds, early "
          "stopping %d, %d at a time with %d XGBoost thread%s each, "
          "selection by %s",
       T->total, T->total == 1 ? "" : "s", sp->grid_size, T->nbr, T->esr,
       T->parallel, T->nthread, T->nthread == 1 ? "" : "s",
       spec_metric_name(sp->metric));
  T->td = (struct train_data){.x_train = T->xtr, .y_train = T->ytr,
                              .n_train = T->n_tr, .x_val = T->xva,
                              .y_val = T->yva, .n_val = T->n_va,
                              .nfeat = T->nout,
                              .feature_names =
                                  (const char *const *)T->names};
  return ERR_OK;
}

/* Record trial t (run_id) in the registry's runs and keep it if it is the
 * best so far (r, pj and mj are taken over in any case). */
static enum err_code ptrain_record(struct ptrain *T, size_t t,
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

/* One trial being trained: its claim (shared trials) and what it gives. */
struct ptrial {
  struct ptrain *T;
  size_t t;
  /* shared trials: the claimed row, renewed from the cancel poll */
  int64_t sid;
  int row;                     /* its row: the trial, or a worker's rank */
  const char *owner;
  double hb_at;
  int lost;
  /* the outcome */
  struct train_result r;
  cJSON *pj, *mj;
  double secs;
  char desc[512];
  char run_id[PIPELINE_RUN_ID_MAX + 16];
};

/* Polled before every boosting round of a trial. */
static void ptrain_search_alive(struct ptrain *T);

static int trial_cancel(void *ud)
{
  struct ptrial *P = ud;
  struct ptrain *T = P->T;
  ptrain_search_alive(T); /* a long trial must not look like a dead run */
  if (P->sid > 0 && mono_s() - P->hb_at >= T->lease_s / 3.0) {
    struct err he = {0};
    P->hb_at = mono_s();
    if (trialq_heartbeat(T->db, P->sid, P->row, P->owner, &he) ==
        ERR_STATE)
      P->lost = 1; /* another daemon took it over: its result counts */
  }
  return P->lost || ptrain_stopping(T);
}

/* Stage 5a: train grid point P->t into P (r, pj, mj, secs, desc, run_id).
 * Any trial thread; touches nothing shared. */
static enum err_code ptrain_fit(struct ptrial *P, struct err *e)
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
  double t1 = mono_s();
  if ((rc = train_fit(&T->td, &tp, r, e))) {
    if (P->lost)
      err_set(e, ERR_STATE, "trial %zu/%zu: claim lost", t + 1, T->total);
    err_prefix(e, "trial %zu/%zu%s", t + 1, T->total, desc);
    return P->lost ? ERR_STATE : rc;
  }
  P->secs = mono_s() - t1;
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

static void ptrain_trial_log(struct ptrain *T, size_t t, const char *desc,
                             const struct pipeline_trial *pt, double secs,
                             const char *by)
{
  const struct spec *sp = T->sp;
  plog(T->o, "trial %zu/%zu%s: %s=%.4f best so far %.4f (trial %zu) "
             "[%d rounds, best %d, %.1f s%s%s]",
       t + 1, T->total, desc, spec_metric_name(sp->metric),
       pipeline_metric_value(sp->metric, &pt->m),
       pipeline_metric_value(sp->metric, &T->best.metrics), T->best_i + 1,
       pt->rounds_run, pt->best_iteration, secs, by ? ", by " : "",
       by ? by : "");
}

/* Distributed training: the SHA-256 of trial t's model on this rank, so
 * the coordinator can check every rank ended with the same bytes. */
static enum err_code ptrain_model_sha(struct ptrain *T, size_t t,
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

static int ptrain_stopping(struct ptrain *T)
{
  pthread_mutex_lock(&T->mu);
  int failed = T->failed;
  pthread_mutex_unlock(&T->mu);
  return failed || (T->o->cancel && T->o->cancel(T->o->cancel_ud));
}

struct ptrain_worker {
  struct ptrain *T;
  enum err_code rc;
  struct err e;
};

static void *ptrain_shared_worker(struct ptrain_worker *w);

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

/* ---- shared trials (trialq.h) ----------------------------------------- */

/* Keep the search alive for helpers: heartbeat it every lease/3 from
 * whichever trial thread gets here first. */
static void ptrain_search_alive(struct ptrain *T)
{
  if ((!T->shared && T->shards < 2) || T->sid <= 0)
    return;
  double now = mono_s();
  pthread_mutex_lock(&T->mu);
  int due = now - T->search_hb >= T->lease_s / 3.0;
  if (due)
    T->search_hb = now;
  pthread_mutex_unlock(&T->mu);
  struct err he = {0};
  if (due && trialq_search_heartbeat(T->db, T->sid, &he))
    plog(T->o, "shared trials: search heartbeat failed: %s", he.msg);
}

/* Train claimed trial `trial` of search sid and store its outcome in its
 * row.  A lost claim is not an error: the daemon that took the trial over
 * stores the result. */
static enum err_code ptrain_shared_trial(struct ptrain *T, int64_t sid,
                                         int trial, const char *owner,
                                         struct err *e)
{
  struct ptrial P = {.T = T, .t = (size_t)trial, .sid = sid, .row = trial,
                     .owner = owner, .hb_at = mono_s()};
  struct err fe = {0};
  enum err_code rc = ptrain_fit(&P, e);
  if (rc == ERR_STATE)
    return ERR_OK;
  if (rc == ERR_CANCELED) {
    if (trialq_release(T->db, sid, trial, owner, &fe))
      plog(T->o, "shared trials: giving trial %d back: %s", trial + 1,
           fe.msg);
    return rc;
  }
  if (rc) {
    if (trialq_finish(T->db, sid, trial, owner, 0, 0, NULL, NULL, NULL, 0,
                      e->msg, &fe))
      plog(T->o, "shared trials: recording trial %d's failure: %s",
           trial + 1, fe.msg);
    return rc;
  }
  char *buf = NULL, *pjs = NULL, *mjs = NULL;
  size_t len = 0;
  if (!(rc = train_result_to_buffer(&P.r, &buf, &len, e))) {
    pjs = cJSON_PrintUnformatted(P.pj);
    mjs = cJSON_PrintUnformatted(P.mj);
    rc = !pjs || !mjs ? err_set(e, ERR_NOMEM, "pipeline: out of memory")
                      : trialq_finish(T->db, sid, trial, owner, 1, P.secs,
                                      mjs, pjs, buf, len, NULL, e);
  }
  if (!rc)
    plog(T->o, "trial %d/%d%s: %s=%.4f [%d rounds, best %d, %.1f s]",
         trial + 1, (int)T->total, P.desc, spec_metric_name(T->sp->metric),
         pipeline_metric_value(T->sp->metric, &P.r.metrics),
         P.r.rounds_run, P.r.best_iteration, P.secs);
  if (rc == ERR_STATE)
    rc = ERR_OK;
  free(buf);
  free(pjs);
  free(mjs);
  cJSON_Delete(P.pj);
  cJSON_Delete(P.mj);
  train_result_free(&P.r);
  return rc;
}

static void ptrain_fail(struct ptrain_worker *w, enum err_code rc)
{
  pthread_mutex_lock(&w->T->mu);
  if (!w->T->failed) {
    w->T->failed = 1;
    w->rc = rc;
  }
  pthread_mutex_unlock(&w->T->mu);
}

/* A trial thread of a shared search: claim the search's trials from
 * MariaDB until none is queued or running anywhere. */
static void *ptrain_shared_worker(struct ptrain_worker *w)
{
  struct ptrain *T = w->T;
  while (!ptrain_stopping(T)) {
    ptrain_search_alive(T);
    int64_t sid;
    int trial, tries;
    enum err_code rc = trialq_claim(T->db, T->sid, NULL, NULL, 0, T->owner,
                                    T->lease_s, &sid, &trial, &tries, &w->e);
    if (rc == ERR_NOTFOUND) {
      struct trialq_counts c;
      if ((rc = trialq_count(T->db, T->sid, &c, &w->e))) {
        ptrain_fail(w, rc);
        break;
      }
      if (c.failed) {
        ptrain_fail(w, err_set(&w->e, ERR_XGB,
                               "%d trial%s failed on another daemon "
                               "(table train_trial, search %lld)",
                               c.failed, c.failed == 1 ? "" : "s",
                               (long long)T->sid));
        break;
      }
      if (!c.queued && !c.running)
        break;
      struct timespec ts = {0, 200 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    if (!rc)
      rc = ptrain_shared_trial(T, sid, trial, T->owner, &w->e);
    if (rc) {
      ptrain_fail(w, rc);
      break;
    }
  }
  const struct pipeline_opts *o = T->o;
  if (o->cancel && o->cancel(o->cancel_ud))
    ptrain_fail(w, err_set(&w->e, ERR_CANCELED, "training cancelled while "
                                                "waiting for shared trials"));
  return NULL;
}

/* A finished trial row, copied out of trialq_results. */
struct srow {
  int state_ok;
  char by[TRIALQ_OWNER_MAX + 1];
  cJSON *metrics, *params;
};

static int srow_cb(void *ud, const struct trialq_row *r)
{
  struct srow *v = ud;
  if (r->trial < 0)
    return 0;
  struct srow *x = &v[r->trial];
  x->state_ok = r->state && !strcmp(r->state, "success");
  snprintf(x->by, sizeof(x->by), "%s", r->claimed_by ? r->claimed_by : "");
  x->metrics = r->metrics ? cJSON_Parse(r->metrics) : NULL;
  x->params = r->params ? cJSON_Parse(r->params) : NULL;
  return 0;
}

static double jnum_or_nan(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* After every trial of the search is done: record them all in the
 * registry's runs in grid order, pick the best (the sequential rule) and
 * load its model from its row. */
static enum err_code ptrain_shared_collect(struct ptrain *T)
{
  struct err *e = T->e;
  struct srow *v = calloc(T->total, sizeof(*v));
  if (!v)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  enum err_code rc = trialq_results(T->db, T->sid, srow_cb, v, e);
  size_t here = 0;
  for (size_t t = 0; !rc && t < T->total; t++) {
    struct srow *x = &v[t];
    if (!x->state_ok || !x->metrics || !x->params) {
      rc = err_set(e, ERR_INTERNAL, "shared trials: trial %zu of search "
                                    "%lld has no result", t + 1,
                   (long long)T->sid);
      break;
    }
    struct pipeline_trial *pt = &T->res->trials[t];
    pt->m = (struct train_metrics){
        .accuracy = jnum_or_nan(x->metrics, "accuracy"),
        .f1_macro = jnum_or_nan(x->metrics, "f1_macro"),
        .logloss = jnum_or_nan(x->metrics, "logloss"),
        .rmse = jnum_or_nan(x->metrics, "rmse"),
        .mae = jnum_or_nan(x->metrics, "mae")};
    pt->best_iteration = (int)jnum_or_nan(x->metrics, "best_iteration");
    pt->rounds_run = (int)jnum_or_nan(x->metrics, "rounds_run");
    pt->n_trees = (int)jnum_or_nan(x->metrics, "n_trees");
    pt->seconds = jnum_or_nan(x->metrics, "seconds");
    int mine = !strcmp(x->by, T->owner);
    here += mine;
    /* a stand-in result: metrics for the comparison, booster loaded
     * for the winner only */
    struct train_result r = {.metrics = pt->m,
                             .best_iteration = pt->best_iteration,
                             .num_rounds = pt->best_iteration + 1,
                             .rounds_run = pt->rounds_run,
                             .num_trees = pt->n_trees,
                             .best_score =
                                 jnum_or_nan(x->metrics, "best_score")};
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(x->metrics,
                                                       "eval_metric");
    snprintf(r.eval_metric, sizeof(r.eval_metric), "%s",
             cJSON_IsString(em) ? em->valuestring : "");
    r.num_class = T->sp->task == SPEC_TASK_MULTICLASS
                      ? (int)T->sp->target.n_classes
                  : T->sp->task == SPEC_TASK_REGRESSION ? 0
                                                        : 2;
    char run_id[PIPELINE_RUN_ID_MAX + 16];
    snprintf(run_id, sizeof(run_id), "%s-t%0*zu", T->prefix, T->width, t + 1);
    /* r has no booster yet: the winner's model is loaded after */
    rc = ptrain_record(T, t, run_id, &r, x->params, x->metrics, e);
    x->params = x->metrics = NULL; /* taken */
    if (!rc && !mine)
      ptrain_trial_log(T, t, "", pt, pt->seconds, x->by);
  }
  for (size_t t = 0; t < T->total; t++) {
    cJSON_Delete(v[t].metrics);
    cJSON_Delete(v[t].params);
  }
  free(v);
  if (rc)
    return rc;
  char *buf = NULL;
  size_t len = 0;
  if ((rc = trialq_model(T->db, T->sid, (int)T->best_i, &buf, &len, e)))
    return rc;
  rc = train_result_load_buffer(buf, len, T->nout, &T->best, e);
  free(buf);
  if (rc)
    return rc;
  T->res->n_trials = T->total;
  plog(T->o, "shared trials: %zu of %zu trained by this run, %zu by other "
             "daemons (search %lld)",
       here, T->total, T->total - here, (long long)T->sid);
  return ERR_OK;
}

/* Stage 5 with shared trials: the search and its trials as rows, trained
 * by this run's threads and any daemon that helps. */
static enum err_code ptrain_shared_search(struct ptrain *T)
{
  struct trialq_search q = {.trials = (int)T->total,
                            .num_boost_round = T->nbr,
                            .early_stopping_rounds = T->esr};
  snprintf(q.model, sizeof(q.model), "%s", T->sp->name);
  snprintf(q.ds, sizeof(q.ds), "%s", T->o->ds);
  snprintf(q.run_prefix, sizeof(q.run_prefix), "%s", T->prefix);
  snprintf(q.spec_sha256, sizeof(q.spec_sha256), "%s", T->sp->sha256);
  snprintf(q.data_sha256, sizeof(q.data_sha256), "%s",
           T->res->data_sha256);
  trialq_owner_name(T->owner, sizeof(T->owner), "train");
  snprintf(q.owner, sizeof(q.owner), "%s", T->owner);
  enum err_code rc = trialq_search_create(T->db, &q, T->e);
  if (rc)
    return rc;
  T->sid = q.id;
  T->search_hb = mono_s();
  plog(T->o, "shared trials: search %lld, %zu trials claimable by any "
             "daemon (table train_trial)",
       (long long)T->sid, T->total);
  return ERR_OK;
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
      plog(T->o, "shared trials: ending search %lld: %s", (long long)T->sid,
           ee.msg);
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

/* Metrics of the kept model on rows x (n x nout); n == 0: all NaN. */
static enum err_code split_metrics(struct ptrain *T, const float *x,
                                   const float *y, size_t n,
                                   struct train_metrics *m)
{
  m->accuracy = m->f1_macro = m->logloss = m->rmse = m->mae = NAN;
  if (!n)
    return ERR_OK;
  size_t k = T->best.num_class > 2 ? (size_t)T->best.num_class : 1;
  size_t got = 0;
  float *out = malloc(n * k * sizeof(float));
  if (!out)
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  enum err_code rc = train_result_predict(&T->best, x, n, T->nout, out,
                                          n * k, &got, T->e);
  if (!rc)
    rc = train_eval_metrics(T->objective, T->best.num_class, y, out, n, m,
                            T->e);
  free(out);
  return rc;
}

static cJSON *bins_json(const struct calib_bin *b)
{
  cJSON *a = cJSON_CreateArray();
  for (int i = 0; a && i < CALIB_BINS; i++) {
    if (!b[i].count)
      continue;
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(a, o))
      break;
    add_num(o, "confidence", b[i].confidence);
    add_num(o, "accuracy", b[i].accuracy);
    cJSON_AddNumberToObject(o, "count", (double)b[i].count);
  }
  return a;
}

/* Calibration (calib.h): fit the temperature on the gate split (the
 * validation split without one), write calibration.json into the draft
 * and give meta.json's "calibration" object (*out, NULL for regression).
 * model_predict applies the file, so every consumer of the version gets
 * the calibrated probabilities. */
static enum err_code ptrain_calibrate(struct ptrain *T, cJSON **out)
{
  *out = NULL;
  int multi = !strcmp(T->objective, "multi:softprob");
  int bin = !strcmp(T->objective, "binary:logistic");
  const float *x = T->n_ga ? T->xga : T->xva;
  const float *y = T->n_ga ? T->yga : T->yva;
  size_t n = T->n_ga ? T->n_ga : T->n_va;
  if ((!multi && !bin) || n < 2)
    return ERR_OK;
  size_t k = multi ? (size_t)T->best.num_class : 1, got = 0;
  float *p = malloc(n * k * sizeof(float));
  if (!p)
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  enum err_code rc = train_result_predict(&T->best, x, n, T->nout, p, n * k,
                                          &got, T->e);
  if (rc) {
    free(p);
    return rc;
  }
  struct calib_bin b0[CALIB_BINS], b1[CALIB_BINS];
  double ece0, br0, ece1, br1;
  calib_stats(p, y, n, k, &ece0, &br0, b0);
  double t = calib_fit_temperature(p, y, n, k);
  calib_apply(p, n, k, t);
  calib_stats(p, y, n, k, &ece1, &br1, b1);
  free(p);
  const char *split = T->n_ga ? "gate" : "valid";
  char path[REGISTRY_PATH_MAX];
  cJSON *f = cJSON_CreateObject(), *m = cJSON_CreateObject();
  if (!f || !m) {
    cJSON_Delete(f);
    cJSON_Delete(m);
    return err_set(T->e, ERR_NOMEM, "pipeline: out of memory");
  }
  cJSON_AddStringToObject(f, "format", "mlopsd.calibration");
  cJSON_AddNumberToObject(f, "format_version", 1);
  cJSON_AddStringToObject(f, "method", "temperature");
  cJSON_AddNumberToObject(f, "temperature", t);
  cJSON_AddStringToObject(f, "split", split);
  cJSON_AddNumberToObject(f, "rows", (double)n);
  if (!(rc = draft_path(T->draft, CALIB_FILE, path, sizeof(path), T->e)))
    rc = write_json(path, f, 1, T->e);
  cJSON_Delete(f);
  if (rc) {
    cJSON_Delete(m);
    return rc;
  }
  cJSON_AddStringToObject(m, "method", "temperature");
  add_num(m, "temperature", t);
  cJSON_AddStringToObject(m, "split", split);
  cJSON_AddNumberToObject(m, "rows", (double)n);
  add_num(m, "ece_before", ece0);
  add_num(m, "ece_after", ece1);
  add_num(m, "brier_before", br0);
  add_num(m, "brier_after", br1);
  cJSON_AddItemToObject(m, "bins", bins_json(b1));
  cJSON_AddItemToObject(m, "bins_before", bins_json(b0));
  plog(T->o, "calibration on the %zu %s rows: temperature %.4f, ECE %.4f "
             "-> %.4f, Brier %.4f -> %.4f",
       n, split, t, ece0, ece1, br0, br1);
  *out = m;
  return ERR_OK;
}

/* Stage 6: the best trial's model and meta.json into the draft, which
 * becomes the next version. */
static enum err_code ptrain_version(struct ptrain *T)
{
  struct err *e = T->e;
  struct pipeline_result *res = T->res;
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  double tw = mono_s();
  if ((rc = draft_path(T->draft, MODEL_FILE_NAME, path, sizeof(path), e)) ||
      (rc = train_result_save(&T->best, path, e)))
    return rc;
  cJSON *calibration = NULL;
  if ((rc = split_metrics(T, T->xtr, T->ytr, T->n_tr, &T->m_train)) ||
      (rc = split_metrics(T, T->xga, T->yga, T->n_ga, &T->m_gate)) ||
      (rc = ptrain_calibrate(T, &calibration)))
    return rc;
  if (T->n_ga)
    plog(T->o, "kept model on the %zu gate rows (unseen by fitting and "
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
                       .early_stopping_rounds = T->esr, .dist = T->dist};
  T->best_params = T->best_metrics = NULL; /* taken by build_meta */
  cJSON *meta = build_meta(&mi);
  if (!meta)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory building "
                                 "meta.json");
  if (!(rc = draft_path(T->draft, "meta.json", path, sizeof(path), e)))
    rc = write_json(path, meta, 1, e);
  cJSON_Delete(meta);
  if (rc)
    return rc;
  rc = registry_version_commit(T->draft, &res->version, e);
  T->draft = NULL;
  if (rc)
    return rc;
  res->write_s = mono_s() - tw + T->t_art;
  return ERR_OK;
}

/* ---- distributed training (workers: N) --------------------------------- */

#define TRACKER_PYTHON "/usr/bin/python3"

/* Start XGBoost's rabit tracker (python3-xgboost; 1.7 has no C one) for
 * n workers and read the address it listens on from its stdout. */
static enum err_code tracker_start(int n, const char *host, pid_t *pid,
                                   char *addr, size_t cap, struct err *e)
{
  const char *py = getenv("MLOPSD_TRACKER_PYTHON");
  if (!py || !*py)
    py = TRACKER_PYTHON;
  int fd[2];
  if (pipe(fd))
    return err_set(e, ERR_IO, "tracker: pipe: %s", strerror(errno));
  char nw[16];
  snprintf(nw, sizeof(nw), "%d", n);
  pid_t p = fork();
  if (p < 0) {
    close(fd[0]);
    close(fd[1]);
    return err_set(e, ERR_IO, "tracker: fork: %s", strerror(errno));
  }
  if (p == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    int dn = open("/dev/null", O_WRONLY);
    if (dn >= 0)
      dup2(dn, 2);
    setpgid(0, 0);
    if (host && *host)
      execl(py, py, "-m", "xgboost.tracker", "--num-workers", nw,
            "--host-ip", host, (char *)NULL);
    else
      execl(py, py, "-m", "xgboost.tracker", "--num-workers", nw,
            (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  FILE *f = fdopen(fd[0], "r");
  char line[512], uri[256] = "";
  int port = 0;
  while (f && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!strncmp(line, "DMLC_TRACKER_URI=", 17))
      snprintf(uri, sizeof(uri), "%.*s", (int)sizeof(uri) - 1, line + 17);
    else if (!strncmp(line, "DMLC_TRACKER_PORT=", 18))
      port = atoi(line + 18);
    else if (!strcmp(line, "DMLC_TRACKER_ENV_END"))
      break;
  }
  if (f)
    fclose(f);
  else
    close(fd[0]);
  if (!uri[0] || port <= 0) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    return err_set(e, ERR_STATE, "tracker: %s -m xgboost.tracker gave no "
                                 "address (is python3-xgboost installed?)",
                   py);
  }
  *pid = p;
  snprintf(addr, cap, "%s:%d", uri, port);
  return ERR_OK;
}

static void tracker_stop(pid_t *pid)
{
  if (*pid <= 0)
    return;
  /* it exits by itself once every worker said shutdown; give it a moment,
   * then make sure (a failed run leaves it waiting for workers) */
  for (int i = 0; i < 50 && waitpid(*pid, NULL, WNOHANG) == 0; i++) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (kill(*pid, 0) == 0) {
    kill(-*pid, SIGKILL);
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
  }
  *pid = 0;
}

static enum err_code join_collective(struct ptrain *T, const char *addr,
                                     struct err *e)
{
  char host[256];
  snprintf(host, sizeof(host), "%s", addr);
  char *colon = strrchr(host, ':');
  if (!colon)
    return err_set(e, ERR_INVAL, "tracker address '%s' has no port", addr);
  *colon = '\0';
  int rank = -1, world = 0;
  enum err_code rc =
      train_comm_init(host, atoi(colon + 1), T->rank, &rank, &world, e);
  if (rc)
    return rc;
  T->comm = 1;
  plog(T->o, "joined XGBoost's collective at %s: XGBoost rank %d of %d",
       addr, rank, world);
  return ERR_OK;
}

/* Rank 0: wait until every other rank's row is claimed (they must all
 * reach the tracker), or finished; fail when one failed or nobody came. */
static enum err_code wait_ranks(struct ptrain *T, int done, double limit_s,
                                struct err *e)
{
  double t0 = mono_s();
  for (;;) {
    struct trialq_counts c;
    enum err_code rc = trialq_count(T->db, T->sid, &c, e);
    if (rc)
      return rc;
    if (c.failed)
      return err_set(e, ERR_XGB, "distributed training: %d worker%s failed "
                                 "(table train_trial, search %lld)",
                     c.failed, c.failed == 1 ? "" : "s", (long long)T->sid);
    int others = T->shards - 1;
    if (done ? c.success == others
             : c.running + c.success == others)
      return ERR_OK;
    if (ptrain_stopping(T))
      return err_set(e, ERR_CANCELED, "training cancelled while waiting for "
                                      "workers");
    if (mono_s() - t0 > limit_s)
      return err_set(e, ERR_TIMEOUT, "distributed training: %d of %d "
                                     "workers %s after %.0f s (are %d "
                                     "scheduler daemons running on this "
                                     "database?)",
                     done ? c.success : c.running + c.success, others,
                     done ? "finished" : "started", limit_s, T->shards);
    ptrain_search_alive(T);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Rank 0 before the trials: tracker, the search row with one row per rank
 * and the preprocessing, then join the collective once all ranks came. */
static enum err_code ptrain_dist_start(struct ptrain *T)
{
  struct err *e = T->e;
  char addr[300];
  enum err_code rc = tracker_start(T->shards, T->o->tracker_host,
                                   &T->tracker, addr, sizeof(addr), e);
  if (rc)
    return rc;
  cJSON *pj = prep_to_json(T->prep);
  char *prep = pj ? cJSON_PrintUnformatted(pj) : NULL;
  cJSON_Delete(pj);
  if (!prep)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  struct trialq_search q = {.trials = (int)T->total,
                            .num_boost_round = T->nbr,
                            .early_stopping_rounds = T->esr,
                            .workers = T->shards, .prep_json = prep};
  snprintf(q.kind, sizeof(q.kind), "workers");
  snprintf(q.model, sizeof(q.model), "%s", T->sp->name);
  snprintf(q.ds, sizeof(q.ds), "%s", T->o->ds);
  snprintf(q.run_prefix, sizeof(q.run_prefix), "%s", T->prefix);
  snprintf(q.spec_sha256, sizeof(q.spec_sha256), "%s", T->sp->sha256);
  snprintf(q.data_sha256, sizeof(q.data_sha256), "%s",
           T->res->data_sha256);
  snprintf(q.tracker, sizeof(q.tracker), "%.*s", (int)sizeof(q.tracker) - 1,
           addr);
  trialq_owner_name(T->owner, sizeof(T->owner), "rank0");
  snprintf(q.owner, sizeof(q.owner), "%s", T->owner);
  rc = trialq_search_create(T->db, &q, e);
  free(prep);
  if (rc)
    return rc;
  T->sid = q.id;
  T->search_hb = mono_s(); /* heartbeats: ptrain_search_alive */
  plog(T->o, "distributed training: %d workers, tracker %s, search %lld: "
             "waiting for %d worker%s (trial helpers of other daemons)",
       T->shards, addr, (long long)T->sid, T->shards - 1,
       T->shards == 2 ? "" : "s");
  if ((rc = wait_ranks(T, 0, 4.0 * T->lease_s, e)))
    return rc;
  return join_collective(T, addr, e);
}

struct rank_rows {
  struct ptrain *T;
  cJSON *rows, *train_rows;
  int mismatch, missing;
  char who[TRIALQ_OWNER_MAX + 1];
};

static int rank_row_cb(void *ud, const struct trialq_row *r)
{
  struct rank_rows *rr = ud;
  struct ptrain *T = rr->T;
  if (r->trial == 0)
    return 0;
  cJSON *m = r->metrics ? cJSON_Parse(r->metrics) : NULL;
  const cJSON *sha = cJSON_GetObjectItemCaseSensitive(m, "model_sha256");
  if (!m || cJSON_GetArraySize(sha) != (int)T->total) {
    rr->missing++;
  } else {
    for (size_t t = 0; t < T->total; t++) {
      const cJSON *h = cJSON_GetArrayItem(sha, (int)t);
      if (!cJSON_IsString(h) || strcmp(h->valuestring, T->trial_sha[t])) {
        rr->mismatch++;
        snprintf(rr->who, sizeof(rr->who), "rank %d (%s) trial %zu",
                 r->trial, r->claimed_by ? r->claimed_by : "?", t + 1);
        break;
      }
    }
  }
  cJSON_AddItemToArray(rr->rows, cJSON_CreateNumber(jnum_or_nan(m, "rows")));
  cJSON_AddItemToArray(rr->train_rows,
                       cJSON_CreateNumber(jnum_or_nan(m, "train_rows")));
  cJSON_Delete(m);
  return 0;
}

/* Rank 0 after the trials: leave the collective, wait for the other
 * ranks, check they ended with the same model bytes for every trial, and
 * describe it all for meta.json. */
static enum err_code ptrain_dist_finish(struct ptrain *T)
{
  struct err *e = T->e;
  train_comm_finalize();
  T->comm = 0;
  enum err_code rc = wait_ranks(T, 1, 4.0 * T->lease_s, e);
  if (rc)
    return rc;
  struct rank_rows rr = {.T = T, .rows = cJSON_CreateArray(),
                         .train_rows = cJSON_CreateArray()};
  cJSON_AddItemToArray(rr.rows, cJSON_CreateNumber((double)T->res->n_rows));
  cJSON_AddItemToArray(rr.train_rows,
                       cJSON_CreateNumber((double)T->res->n_train));
  rc = trialq_results(T->db, T->sid, rank_row_cb, &rr, e);
  if (!rc && (rr.missing || rr.mismatch))
    rc = err_set(e, ERR_XGB, "distributed training: %s", rr.missing
                     ? "a worker recorded no model hashes"
                     : "a worker ended with other model bytes");
  if (!rc) {
    T->dist = cJSON_CreateObject();
    char shard[200];
    snprintf(shard, sizeof(shard), "MOD(`%s`, %d) = rank", T->sp->source.key,
             T->shards);
    cJSON_AddNumberToObject(T->dist, "workers", T->shards);
    cJSON_AddStringToObject(T->dist, "sharding", shard);
    cJSON_AddItemToObject(T->dist, "rows_per_rank", rr.rows);
    cJSON_AddItemToObject(T->dist, "train_rows_per_rank", rr.train_rows);
    cJSON_AddBoolToObject(T->dist, "same_model_on_every_rank", 1);
    cJSON_AddStringToObject(T->dist, "metrics_from",
                            "rank 0's validation rows");
    cJSON_AddStringToObject(T->dist, "preprocessing_from",
                            "rank 0's training rows");
    rr.rows = rr.train_rows = NULL;
    plog(T->o, "distributed training: %d workers ended with the same model "
               "bytes for all %zu trials",
         T->shards, T->total);
  }
  cJSON_Delete(rr.rows);
  cJSON_Delete(rr.train_rows);
  return rc;
}

/* Any rank: give up the collective and the tracker after a failure. */
static void ptrain_dist_abort(struct ptrain *T)
{
  if (T->comm) {
    train_comm_finalize();
    T->comm = 0;
  }
  tracker_stop(&T->tracker);
}

enum err_code pipeline_train(struct registry *reg, struct db_pool *db,
                             const struct spec *sp,
                             const struct pipeline_opts *o,
                             struct pipeline_result *res, struct err *e)
{
  double t_start = mono_s();
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
  double ts0 = mono_s();
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
      plog(o, "distributed training: ending search %lld: %s",
           (long long)T->sid, ee.msg);
  }
  if (!rc) {
    res->search_s = mono_s() - ts0;
    res->best_trial = T->best_i;
    res->best = T->best.metrics;
    rc = ptrain_version(T);
  }
  if (!rc) {
    res->total_s = mono_s() - t_start;
    plog(o, "registered %s version %d from trial %zu/%zu (%s): "
            "accuracy=%.4f f1_macro=%.4f logloss=%.4f; %zu rows, data "
            "sha256 %.12s; total %.1f s",
         sp->name, res->version, T->best_i + 1, res->n_trials, T->best_run,
         T->best.metrics.accuracy, T->best.metrics.f1_macro,
         T->best.metrics.logloss, res->n_rows, res->data_sha256,
         res->total_s);
  }
  ptrain_free(T);
  pthread_mutex_destroy(&T->mu);
  free(T);
  if (rc)
    pipeline_result_free(res);
  return rc;
}

/* ---- helping with another run's shared trials ------------------------- */

struct pipeline_helper {
  struct ptrain T;
  struct pipeline_opts o;
  struct pipeline_result res;
  struct trialq_search q;
  struct err e;
};

enum err_code pipeline_helper_open(struct db_pool *db, const struct spec *sp,
                                   const struct trialq_search *q,
                                   int nthread, int lease_s,
                                   pipeline_log_fn log, void *log_ud,
                                   pipeline_cancel_fn cancel,
                                   void *cancel_ud,
                                   struct pipeline_helper **out,
                                   struct err *e)
{
  *out = NULL;
  if (strcmp(sp->sha256, q->spec_sha256))
    return err_set(e, ERR_STATE, "search %lld: spec %s has sha256 %.12s "
                                 "here, %.12s at the coordinating run",
                   (long long)q->id, sp->path, sp->sha256, q->spec_sha256);
  struct pipeline_helper *h = calloc(1, sizeof(*h));
  if (!h)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  h->q = *q;
  h->o = (struct pipeline_opts){
      .ds = h->q.ds, .nthread = nthread, .max_trials = (size_t)q->trials,
      .num_boost_round = q->num_boost_round,
      .early_stopping_rounds = q->early_stopping_rounds > 0
                                   ? q->early_stopping_rounds
                                   : -1,
      .log = log, .log_ud = log_ud, .cancel = cancel, .cancel_ud = cancel_ud,
      .lease_s = lease_s};
  struct ptrain *T = &h->T;
  *T = (struct ptrain){.db = db, .sp = sp, .o = &h->o, .res = &h->res,
                       .e = e, .lease_s = lease_s > 0 ? lease_s : 30};
  pthread_mutex_init(&T->mu, NULL);
  snprintf(T->prefix, sizeof(T->prefix), "%.*s",
           (int)sizeof(T->prefix) - 1, q->run_prefix);
  enum err_code rc = ptrain_read(T);
  if (!rc)
    rc = ptrain_prepare(T);
  if (!rc) {
    fstore_set_sha256(T->s, sp, h->res.data_sha256);
    fstore_set_free(T->s);
    T->s = NULL;
    if (strcmp(h->res.data_sha256, q->data_sha256))
      rc = err_set(e, ERR_STATE, "search %lld: the training rows of %s for "
                                 "%s have sha256 %.12s here, %.12s at the "
                                 "coordinating run",
                   (long long)q->id, sp->source.table, q->ds,
                   h->res.data_sha256, q->data_sha256);
  }
  if (!rc)
    rc = ptrain_grid(T);
  if (!rc && T->total != (size_t)q->trials)
    rc = err_set(e, ERR_STATE, "search %lld has %d trials, the spec here "
                               "gives %zu",
                 (long long)q->id, q->trials, T->total);
  T->e = &h->e;
  if (rc) {
    pipeline_helper_close(h);
    return rc;
  }
  *out = h;
  return ERR_OK;
}

enum err_code pipeline_helper_trial(struct pipeline_helper *h, int trial,
                                    const char *owner, struct err *e)
{
  if (!h || trial < 0 || (size_t)trial >= h->T.total)
    return err_set(e, ERR_INVAL, "pipeline: no trial %d in this search",
                   trial + 1);
  return ptrain_shared_trial(&h->T, h->q.id, trial, owner, e);
}

void pipeline_helper_close(struct pipeline_helper *h)
{
  if (!h)
    return;
  ptrain_free(&h->T);
  pthread_mutex_destroy(&h->T.mu);
  pipeline_result_free(&h->res);
  free(h);
}

/* ---- a worker of another run's distributed training ------------------- */

enum err_code pipeline_rank_run(struct db_pool *db, const struct spec *sp,
                                const struct trialq_search *q, int rank,
                                const char *owner, int nthread, int lease_s,
                                pipeline_log_fn log, void *log_ud,
                                pipeline_cancel_fn cancel, void *cancel_ud,
                                struct err *e)
{
  if (strcmp(sp->sha256, q->spec_sha256))
    return err_set(e, ERR_STATE, "search %lld: spec %s has sha256 %.12s "
                                 "here, %.12s at rank 0",
                   (long long)q->id, sp->path, sp->sha256, q->spec_sha256);
  struct pipeline_opts o = {
      .ds = q->ds, .nthread = nthread, .max_trials = (size_t)q->trials,
      .num_boost_round = q->num_boost_round,
      .early_stopping_rounds = q->early_stopping_rounds > 0
                                   ? q->early_stopping_rounds
                                   : -1,
      .log = log, .log_ud = log_ud, .cancel = cancel, .cancel_ud = cancel_ud,
      .lease_s = lease_s};
  struct pipeline_result res = {0};
  struct ptrain *T = calloc(1, sizeof(*T));
  if (!T)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  *T = (struct ptrain){.db = db, .sp = sp, .o = &o, .res = &res, .e = e,
                       .lease_s = lease_s > 0 ? lease_s : 30,
                       .shards = q->workers, .rank = rank};
  pthread_mutex_init(&T->mu, NULL);
  snprintf(T->prefix, sizeof(T->prefix), "%.*s", (int)sizeof(T->prefix) - 1,
           q->run_prefix);
  char *pj = NULL;
  cJSON *root = NULL;
  enum err_code rc = trialq_search_prep(db, q->id, &pj, e);
  if (!rc && !(root = cJSON_Parse(pj)))
    rc = err_set(e, ERR_INVAL, "search %lld: prep_json is not JSON",
                 (long long)q->id);
  if (!rc)
    rc = prep_from_json(root, "rank 0's preprocessing", &T->prep, e);
  cJSON_Delete(root);
  free(pj);
  if (!rc)
    rc = ptrain_read(T);
  if (!rc)
    rc = ptrain_prepare(T);
  if (!rc) {
    fstore_set_free(T->s);
    T->s = NULL;
    rc = ptrain_grid(T);
  }
  if (!rc && T->total != (size_t)q->trials)
    rc = err_set(e, ERR_STATE, "search %lld has %d trials, the spec here "
                               "gives %zu",
                 (long long)q->id, q->trials, T->total);
  if (!rc)
    rc = join_collective(T, q->tracker, e);
  for (size_t t = 0; !rc && t < T->total; t++) {
    struct ptrial P = {.T = T, .t = t, .sid = q->id, .row = rank,
                       .owner = owner, .hb_at = mono_s()};
    if ((rc = ptrain_fit(&P, e)))
      break;
    rc = ptrain_model_sha(T, t, &P.r, e);
    if (!rc)
      plog(&o, "rank %d: trial %zu/%zu%s: %s=%.4f on this rank's validation "
               "rows [%d rounds, best %d, %.1f s]",
           rank, t + 1, T->total, P.desc, spec_metric_name(sp->metric),
           pipeline_metric_value(sp->metric, &P.r.metrics), P.r.rounds_run,
           P.r.best_iteration, P.secs);
    cJSON_Delete(P.pj);
    cJSON_Delete(P.mj);
    train_result_free(&P.r);
  }
  if (T->comm) {
    train_comm_finalize();
    T->comm = 0;
  }
  struct err fe = {0};
  if (!rc) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "rank", rank);
    cJSON_AddNumberToObject(m, "rows", (double)res.n_rows);
    cJSON_AddNumberToObject(m, "train_rows", (double)res.n_train);
    cJSON *a = cJSON_AddArrayToObject(m, "model_sha256");
    for (size_t t = 0; a && t < T->total; t++)
      cJSON_AddItemToArray(a, cJSON_CreateString(T->trial_sha[t]));
    char *ms = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    rc = ms ? trialq_finish(db, q->id, rank, owner, 1, 0, ms, NULL, NULL, 0,
                            NULL, e)
            : err_set(e, ERR_NOMEM, "pipeline: out of memory");
    free(ms);
  } else if (trialq_finish(db, q->id, rank, owner, 0, 0, NULL, NULL, NULL, 0,
                           e->msg, &fe)) {
    plog(&o, "rank %d: recording the failure: %s", rank, fe.msg);
  }
  ptrain_free(T);
  pthread_mutex_destroy(&T->mu);
  free(T);
  pipeline_result_free(&res);
  return rc;
}
