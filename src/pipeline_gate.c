/* pipeline_gate.c - scoring versions on stored validation rows, the
 * validate gate, and the `deployment` table (see pipeline.h).
 *
 * Why raw rows: each version has its own fitted preprocessing (a new
 * vocabulary, new medians), so the candidate's preprocessed matrix means
 * nothing to the production model.  The candidate's validation split is
 * stored as raw rows in the request shape (validation.jsonl), and each
 * version scores them through its own preprocess.json and model, exactly
 * as it would answer those rows over HTTP.
 *
 * Why held-out rows: daily windows overlap (each day extracts the month
 * before it), so most of a candidate's validation rows were in the
 * production version's training split; scored on them, production is
 * largely in-sample and no later model can beat it.  Each version stores
 * the row keys of its training split (train_keys.jsonl), each validation
 * row its key, and the gate scores both versions only on the rows
 * production was not trained on (the candidate never trains on its own
 * validation rows).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/model.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/stats.h"
#include "mlopsd/vec.h"

#define LINE_MAX_BYTES ((size_t)1 << 20)
#define VALIDATION_ROWS "validation.jsonl"
#define DB_WAIT_MS 10000
/* train_keys.jsonl: one key a training row, at most FSTORE_MAX_ROWS rows;
 * the cap only stops a runaway file from being read whole. */
#define KEYS_FILE_MAX ((size_t)4 << 30)

/* ---- scoring ------------------------------------------------------------ */

struct scored {
  cJSON *meta;
  const cJSON *classes;
  const char *objective;
  int num_class;
  struct prep *prep;
  struct model *model;
};

static void scored_free(struct scored *s)
{
  cJSON_Delete(s->meta);
  prep_destroy(s->prep);
  model_unref(s->model);
  memset(s, 0, sizeof(*s));
}

static enum err_code scored_load(struct registry *reg, const char *name,
                                 int version, struct scored *s, struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  memset(s, 0, sizeof(*s));
  if ((rc = registry_read_meta(reg, name, version, &s->meta, e)))
    return rc;
  const cJSON *obj = cJSON_GetObjectItemCaseSensitive(s->meta, "objective");
  const cJSON *nc = cJSON_GetObjectItemCaseSensitive(s->meta, "num_class");
  s->classes = cJSON_GetObjectItemCaseSensitive(s->meta, "classes");
  if (!cJSON_IsString(obj) || !cJSON_IsNumber(nc) ||
      !cJSON_IsArray(s->classes)) {
    scored_free(s);
    return err_set(e, ERR_CONFIG,
                   "%s version %d: meta.json lacks objective, num_class or "
                   "classes",
                   name, version);
  }
  s->objective = obj->valuestring;
  s->num_class = (int)nc->valuedouble;
  if ((rc = registry_path(reg, name, version, "preprocess.json", path,
                          sizeof(path), e)) ||
      (rc = prep_load_json(path, &s->prep, e)) ||
      (rc = registry_path(reg, name, version, NULL, path, sizeof(path), e)) ||
      (rc = model_load(path, prep_n_outputs(s->prep), NULL, &s->model, e))) {
    scored_free(s);
    err_prefix(e, "%s version %d", name, version);
    return rc;
  }
  return ERR_OK;
}

static int class_of(const cJSON *classes, const char *label)
{
  int i = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, classes)
  {
    if (cJSON_IsString(c) && strcmp(c->valuestring, label) == 0)
      return i;
    i++;
  }
  return -1;
}

/* ---- row keys ----------------------------------------------------------- */

/* The training row keys of a version (train_keys.jsonl), sorted. */
struct keyset {
  char *text;   /* the file, lines cut in place */
  char **k;     /* n keys (pointers into text) */
  size_t n;
  char *cols;   /* the header's "columns" as compact JSON */
};

static void keyset_free(struct keyset *ks)
{
  free(ks->text);
  free(ks->k);
  cJSON_free(ks->cols);
  memset(ks, 0, sizeof(*ks));
}

static int cmp_key(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read NAME/versions/V/train_keys.jsonl.  ERR_NOTFOUND when the version
 * has none (trained before row keys were kept, or no key columns). */
static enum err_code keyset_load(struct registry *reg, const char *name,
                                 int version, struct keyset *ks,
                                 struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  memset(ks, 0, sizeof(*ks));
  if ((rc = registry_path(reg, name, version, PIPELINE_TRAIN_KEYS, path,
                          sizeof(path), e)))
    return rc;
  size_t got;
  if ((rc = fsx_read(path, KEYS_FILE_MAX, 0, &ks->text, &got, e))) {
    err_prefix(e, "%s version %d has no readable %s", name, version,
               PIPELINE_TRAIN_KEYS);
    return rc;
  }
  size_t lines = 0;
  for (size_t i = 0; i < got; i++)
    lines += ks->text[i] == '\n';
  ks->k = malloc((lines + 1) * sizeof(*ks->k));
  if (!ks->k) {
    keyset_free(ks);
    return err_set(e, ERR_NOMEM, "out of memory reading %s", path);
  }
  char *p = ks->text;
  int sorted = 1;
  for (size_t ln = 1; *p; ln++) {
    char *nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    if (ln == 1) {
      cJSON *h = cJSON_Parse(p);
      const cJSON *fm = cJSON_GetObjectItemCaseSensitive(h, "format");
      const cJSON *c = cJSON_GetObjectItemCaseSensitive(h, "columns");
      if (cJSON_IsString(fm) &&
          strcmp(fm->valuestring, "mlopsd.train_keys") == 0 &&
          cJSON_IsArray(c))
        ks->cols = cJSON_PrintUnformatted(c);
      cJSON_Delete(h);
      if (!ks->cols) {
        keyset_free(ks);
        return err_set(e, ERR_PARSE,
                       "%s:1: header {\"format\": \"mlopsd.train_keys\", "
                       "\"columns\": [...]} missing",
                       path);
      }
    } else if (*p) {
      if (ks->n > 0 && strcmp(ks->k[ks->n - 1], p) > 0)
        sorted = 0;
      ks->k[ks->n++] = p;
    }
    if (!nl)
      break;
    p = nl + 1;
  }
  if (!ks->cols) {
    keyset_free(ks);
    return err_set(e, ERR_PARSE, "%s: empty file", path);
  }
  if (!sorted) /* edited by hand: still usable */
    qsort(ks->k, ks->n, sizeof(*ks->k), cmp_key);
  return ERR_OK;
}

static int keyset_has(const struct keyset *ks, const char *key)
{
  return bsearch(&key, ks->k, ks->n, sizeof(*ks->k), cmp_key) != NULL;
}

/* The "key_columns" of a version's validation.jsonl header as compact
 * JSON into buf ("" when the rows carry no keys). */
static enum err_code rows_key_columns(struct registry *reg, const char *name,
                                      int version, const char *file,
                                      char *buf, size_t cap, struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  buf[0] = '\0';
  if ((rc = registry_path(reg, name, version, file, path,
                          sizeof(path), e)))
    return rc;
  FILE *f = fopen(path, "r");
  if (!f)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "%s version %d has no readable validation rows (%s: %s)",
                   name, version, path, strerror(errno));
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len = getline(&line, &lcap, f);
  fclose(f);
  cJSON *h = len > 0 ? cJSON_ParseWithLength(line, (size_t)len) : NULL;
  free(line);
  const cJSON *c = cJSON_GetObjectItemCaseSensitive(h, "key_columns");
  char *t = cJSON_IsArray(c) ? cJSON_PrintUnformatted(c) : NULL;
  if (t)
    snprintf(buf, cap, "%s", t);
  cJSON_free(t);
  cJSON_Delete(h);
  return ERR_OK;
}

/* ---- scoring ------------------------------------------------------------ */

/* Line 1 of a validation rows file (j, taken): the mlopsd.validation
 * header, with the same key columns as drop's when dropping. */
static enum err_code rows_header(cJSON *j, const char *path,
                                 const struct keyset *drop, struct err *e)
{
  enum err_code rc = ERR_OK;
  const cJSON *fm = cJSON_GetObjectItemCaseSensitive(j, "format");
  int ok = cJSON_IsString(fm) &&
           strcmp(fm->valuestring, "mlopsd.validation") == 0;
  char *kc = NULL;
  if (ok && drop) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "key_columns");
    kc = cJSON_IsArray(c) ? cJSON_PrintUnformatted(c) : NULL;
  }
  cJSON_Delete(j);
  if (!ok)
    return err_set(e, ERR_PARSE,
                   "%s:1: header {\"format\": \"mlopsd.validation\"} "
                   "missing",
                   path);
  if (drop && (!kc || strcmp(kc, drop->cols) != 0))
    rc = err_set(e, kc ? ERR_CONFIG : ERR_NOTFOUND,
                 "%s: the validation rows' key columns %s are not the "
                 "training keys' %s",
                 path, kc ? kc : "(none)", drop->cols);
  cJSON_free(kc);
  return rc;
}

/* The rows read so far: features (nf per row) and labels. */
struct rowset {
  float *x, *y;
  size_t n, cap, xcap, dropped;
};

/* One row line (j, taken) into rs, through the scored version's
 * preprocessing; rows whose key is in drop (or that have no key) are
 * counted in rs->dropped instead. */
static enum err_code rows_add(struct rowset *rs, cJSON *j,
                              const struct scored *s, size_t nf,
                              const struct keyset *drop, const char *path,
                              long lineno, const char *name, int version,
                              struct err *e)
{
  enum err_code rc = ERR_OK;
  const cJSON *lab = cJSON_GetObjectItemCaseSensitive(j, "label");
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
  if (!cJSON_IsObject(data) ||
      !(cJSON_IsString(lab) || cJSON_IsNumber(lab))) {
    cJSON_Delete(j);
    return err_set(e, ERR_PARSE, "%s:%ld: expected {\"label\": ..., "
                                 "\"data\": {...}}",
                   path, lineno);
  }
  if (drop) {
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(j, "key");
    char *kt = cJSON_IsArray(key) ? cJSON_PrintUnformatted(key) : NULL;
    int trained = !kt || keyset_has(drop, kt);
    cJSON_free(kt);
    if (trained) { /* or without a key: not known to be held out */
      rs->dropped++;
      cJSON_Delete(j);
      return ERR_OK;
    }
  }
  size_t n = rs->n;
  if (VEC_RESERVE(rs->x, rs->xcap, (n + 1) * nf) ||
      VEC_RESERVE(rs->y, rs->cap, n + 1)) {
    cJSON_Delete(j);
    return err_set(e, ERR_NOMEM, "out of memory scoring %s", name);
  }
  if (cJSON_IsString(lab)) {
    int k = class_of(s->classes, lab->valuestring);
    if (k < 0) {
      rc = err_set(e, ERR_INVAL,
                   "%s:%ld: label '%.60s' is not a class of %s version %d",
                   path, lineno, lab->valuestring, name, version);
      cJSON_Delete(j);
      return rc;
    }
    rs->y[n] = (float)k;
  } else {
    rs->y[n] = (float)lab->valuedouble;
  }
  rc = prep_transform_json(s->prep, data, rs->x + n * nf, e);
  cJSON_Delete(j);
  if (rc) {
    err_prefix(e, "%s:%ld", path, lineno);
    return rc;
  }
  rs->n++;
  return ERR_OK;
}

/* Whether one row's output (od values: class probabilities, or one
 * binary probability) picks label y (ties: the first class, as
 * train_eval_metrics counts). */
static unsigned char row_correct(const float *p, size_t od, float y)
{
  size_t c = 0;
  if (od == 1)
    c = p[0] > 0.5f;
  else
    for (size_t j = 1; j < od; j++)
      if (p[j] > p[c])
        c = j;
  return (float)c == y;
}

/* What a version answered on n rows (out: od values a row): the count
 * of rows per class it picked (ties: the first class, as row_correct)
 * and the mean and spread of the top probability, the `confidence` the
 * server reports (model_predict applies the version's calibration). */
static void tally_answers(struct pipeline_answers *a, const struct scored *s,
                          const float *out, size_t n, size_t od)
{
  memset(a->counts, 0, sizeof(a->counts));
  a->n_classes = 0;
  const cJSON *c;
  cJSON_ArrayForEach(c, s->classes)
  {
    if (a->n_classes == PIPELINE_ANSWER_CLASSES)
      break;
    snprintf(a->classes[a->n_classes++], sizeof(a->classes[0]), "%s",
             cJSON_IsString(c) ? c->valuestring : "");
  }
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) {
    const float *p = out + i * od;
    size_t k = 0;
    double top;
    if (od == 1) {
      k = p[0] > 0.5f;
      top = k ? p[0] : 1 - p[0];
    } else {
      for (size_t j = 1; j < od; j++)
        if (p[j] > p[k])
          k = j;
      top = p[k];
    }
    if (k < a->n_classes)
      a->counts[k] += 1;
    sum += top;
    sq += top * top;
  }
  a->n_rows = n;
  a->conf_mean = n ? sum / (double)n : NAN;
  double var = n > 1 ? (sq - sum * sum / (double)n) / (double)(n - 1) : 0;
  a->conf_sd = var > 0 ? sqrt(var) : 0;
}

/* Score version on rows_version's validation rows (FILE), leaving out
 * those whose key is in drop (NULL: none).  With drop, zero rows left is
 * not an error (*n_rows = 0).  correct (may be NULL): a new array of one
 * flag a scored row, 1 when the version's answer is the label. */
static enum err_code score_rows(struct registry *reg, const char *name,
                                int version, int rows_version,
                                const char *file, const struct keyset *drop,
                                struct train_metrics *m, size_t *n_rows,
                                size_t *n_dropped, unsigned char **correct,
                                struct pipeline_answers *ans, struct err *e)
{
  struct scored s;
  char path[REGISTRY_PATH_MAX];
  enum err_code rc;
  struct rowset rs = {0};
  float *out = NULL;
  char *line = NULL;
  size_t lcap = 0;
  FILE *f = NULL;
  if (n_rows)
    *n_rows = 0;
  if (n_dropped)
    *n_dropped = 0;
  if ((rc = registry_path(reg, name, rows_version, file, path, sizeof(path),
                          e)))
    return rc;
  if ((rc = scored_load(reg, name, version, &s, e)))
    return rc;
  size_t nf = prep_n_outputs(s.prep);
  f = fopen(path, "r");
  if (!f) {
    rc = err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                 "%s version %d has no readable validation rows (%s: %s)",
                 name, rows_version, path, strerror(errno));
    goto out;
  }
  long lineno = 0;
  ssize_t len;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    lineno++;
    if ((size_t)len > LINE_MAX_BYTES) {
      rc = err_set(e, ERR_PARSE, "%s:%ld: line longer than %zu bytes", path,
                   lineno, LINE_MAX_BYTES);
      goto out;
    }
    cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
    if (!j) {
      rc = err_set(e, ERR_PARSE, "%s:%ld: not valid JSON (corrupt file?)",
                   path, lineno);
      goto out;
    }
    rc = lineno == 1 ? rows_header(j, path, drop, e)
                     : rows_add(&rs, j, &s, nf, drop, path, lineno, name,
                                version, e);
    if (rc)
      goto out;
  }
  if (n_dropped)
    *n_dropped = rs.dropped;
  if (rs.n == 0 && drop)
    goto out; /* all dropped: the caller decides */
  if (rs.n == 0) {
    rc = err_set(e, ERR_PARSE, "%s: no validation rows", path);
    goto out;
  }
  size_t od = model_output_dim(s.model);
  out = malloc(rs.n * od * sizeof(float));
  if (!out) {
    rc = err_set(e, ERR_NOMEM, "out of memory scoring %s", name);
    goto out;
  }
  if ((rc = model_predict(s.model, rs.x, rs.n, out, e)) ||
      (rc = train_eval_metrics(s.objective, s.num_class, rs.y, out, rs.n, m,
                               e))) {
    err_prefix(e, "scoring %s version %d", name, version);
    goto out;
  }
  if (correct && (*correct = malloc(rs.n)) == NULL) {
    rc = err_set(e, ERR_NOMEM, "out of memory scoring %s", name);
    goto out;
  }
  for (size_t i = 0; correct && i < rs.n; i++)
    (*correct)[i] = row_correct(out + i * od, od, rs.y[i]);
  if (ans)
    tally_answers(ans, &s, out, rs.n, od);
  if (n_rows)
    *n_rows = rs.n;
out:
  if (f)
    fclose(f);
  free(line);
  free(rs.x);
  free(rs.y);
  free(out);
  scored_free(&s);
  return rc;
}

enum err_code pipeline_score(struct registry *reg, const char *name,
                             int version, int rows_version,
                             struct train_metrics *m, size_t *n_rows,
                             struct err *e)
{
  return score_rows(reg, name, version, rows_version, VALIDATION_ROWS, NULL,
                    m, n_rows, NULL, NULL, NULL, e);
}

enum err_code pipeline_score_heldout(struct registry *reg, const char *name,
                                     int version, int rows_version,
                                     int exclude_version,
                                     struct train_metrics *m, size_t *n_rows,
                                     size_t *n_dropped, struct err *e)
{
  struct keyset ks;
  if (n_rows)
    *n_rows = 0;
  if (n_dropped)
    *n_dropped = 0;
  enum err_code rc = keyset_load(reg, name, exclude_version, &ks, e);
  if (rc)
    return rc;
  rc = score_rows(reg, name, version, rows_version, VALIDATION_ROWS, &ks, m,
                  n_rows, n_dropped, NULL, NULL, e);
  keyset_free(&ks);
  return rc;
}

enum err_code pipeline_answers(struct registry *reg, const char *name,
                               int version, struct pipeline_answers *a,
                               struct err *e)
{
  char gp[REGISTRY_PATH_MAX];
  struct train_metrics m;
  memset(a, 0, sizeof(*a));
  const char *file = VALIDATION_ROWS;
  if (registry_path(reg, name, version, PIPELINE_GATE_ROWS, gp, sizeof(gp),
                    e) == ERR_OK &&
      access(gp, F_OK) == 0)
    file = PIPELINE_GATE_ROWS;
  snprintf(a->file, sizeof(a->file), "%s", file);
  return score_rows(reg, name, version, version, file, NULL, &m, NULL, NULL,
                    NULL, a, e);
}

/* ---- the gate ----------------------------------------------------------- */

enum err_code pipeline_validate(struct registry *reg, const char *name,
                                enum spec_metric metric, double tolerance,
                                size_t min_rows, struct pipeline_verdict *v,
                                struct err *e)
{
  struct pipeline_gate_opts g = {.metric = metric, .tolerance = tolerance,
                                 .min_rows = min_rows};
  return pipeline_gate(reg, name, &g, v, e);
}

/* The paired verdict: counts, interval, decision and its message. */
static void paired_verdict(struct pipeline_verdict *v,
                           const struct pipeline_gate_opts *g,
                           const unsigned char *cc, const unsigned char *pc,
                           size_t n, const char *rows)
{
  long b = 0, c = 0;
  for (size_t i = 0; i < n; i++) {
    b += cc[i] && !pc[i];
    c += pc[i] && !cc[i];
  }
  struct stats_paired *st = &v->paired;
  stats_paired_gate((long)n, b, c, g->confidence, g->max_regression, st);
  size_t need = g->min_rows ? g->min_rows : 1;
  v->min_rows = (size_t)st->min_rows > need ? (size_t)st->min_rows : need;
  v->pass = st->pass && n >= need;
  const char *why;
  char wb[200];
  if (n < v->min_rows) {
    snprintf(wb, sizeof(wb),
             "fewer than the %zu rows needed to tell a regression of %g at "
             "this disagreement (%.1f%% of rows) with 80%% power: too few "
             "to compare, production stays",
             v->min_rows, g->max_regression, 100.0 * (double)(b + c) /
                                                (double)(n ? n : 1));
    why = wb;
  } else if (!st->pass) {
    snprintf(wb, sizeof(wb), "lower bound %+.4f is not above -%g",
             st->lo, g->max_regression);
    why = wb;
  } else {
    snprintf(wb, sizeof(wb), "lower bound %+.4f > -%g", st->lo,
             g->max_regression);
    why = wb;
  }
  snprintf(v->method, sizeof(v->method), "exact McNemar, conditional "
                                         "Clopper-Pearson interval");
  /* long verdicts are cut: the numbers come first */
  if (snprintf(v->message, sizeof(v->message),
               "candidate %d %s: %.160s; vs production %d on %.110s: "
               "accuracy %.4f vs %.4f, difference=%+.4f interval=[%+.4f, "
               "%+.4f] (%g%% one-sided bounds) p=%.3g (exact McNemar; "
               "only-candidate-right %ld, only-production-right %ld) n=%zu "
               "min_rows=%zu max_regression=%g",
               v->candidate, v->pass ? "passes" : "fails", why,
               v->production, rows, v->cand_score, v->prod_score,
               st->difference, st->lo, st->hi, 100 * st->level, st->p_value,
               b, c, n, v->min_rows, g->max_regression) < 0)
    v->message[0] = '\0';
}

/* The verdict by the tolerance rule (not paired): the message gives both
 * scores and the rows they are on. */
static void tolerance_verdict(struct pipeline_verdict *v,
                              enum spec_metric metric, double tolerance,
                              int held, size_t nc, size_t dropped,
                              const char *what)
{
  const char *mn = spec_metric_name(metric);
  if (spec_metric_higher_is_better(metric))
    v->pass = v->cand_score >= v->prod_score - tolerance;
  else
    v->pass = v->cand_score <= v->prod_score + tolerance;
  if (isnan(v->cand_score) || isnan(v->prod_score))
    v->pass = 0;
  char rows[160];
  if (held)
    snprintf(rows, sizeof(rows),
             "%zu %s rows of version %d that neither version "
             "trained on, %zu dropped",
             nc, what, v->candidate, dropped);
  else
    snprintf(rows, sizeof(rows),
             "all %zu %s rows of version %d, not checked against "
             "production's training rows",
             nc, what, v->candidate);
  snprintf(v->message, sizeof(v->message),
           "candidate %d %s=%.6f %s production %d %s=%.6f on %s "
           "(tolerance %g, %s is better): %s",
           v->candidate, mn, v->cand_score,
           v->pass ? "vs" : "is worse than", v->production, mn,
           v->prod_score, rows, tolerance,
           spec_metric_higher_is_better(metric) ? "higher" : "lower",
           v->pass ? "passes" : "fails");
}

enum err_code pipeline_gate(struct registry *reg, const char *name,
                            const struct pipeline_gate_opts *g,
                            struct pipeline_verdict *v, struct err *e)
{
  enum spec_metric metric = g->metric;
  double tolerance = g->tolerance;
  size_t min_rows = g->min_rows;
  unsigned char *cc = NULL, *pcr = NULL;
  memset(v, 0, sizeof(*v));
  v->cand_score = v->prod_score = NAN;
  enum err_code rc = registry_latest(reg, name, &v->candidate, e);
  if (rc) {
    err_prefix(e, "validate: no candidate version");
    return rc;
  }
  struct err ae = {0};
  rc = registry_alias_get(reg, name, REGISTRY_PRODUCTION, &v->production,
                          &ae);
  if (rc == ERR_NOTFOUND) {
    v->production = 0;
    v->pass = 1;
    snprintf(v->message, sizeof(v->message),
             "no production version: candidate %d passes", v->candidate);
    return ERR_OK;
  }
  if (rc) {
    *e = ae;
    return rc;
  }
  if (v->production == v->candidate) {
    v->pass = 1;
    snprintf(v->message, sizeof(v->message),
             "candidate %d is already the production version: passes",
             v->candidate);
    return ERR_OK;
  }

  /* which rows: the candidate's gate split (unseen by its fitting and
   * trial selection) when it has one, else its validation split; of
   * those, the ones production was not trained on, when both versions
   * carry the keys to tell */
  const char *file = VALIDATION_ROWS, *what = "validation";
  char gp[REGISTRY_PATH_MAX];
  if (registry_path(reg, name, v->candidate, PIPELINE_GATE_ROWS, gp,
                    sizeof(gp), e) == ERR_OK &&
      access(gp, F_OK) == 0) {
    file = PIPELINE_GATE_ROWS;
    what = "gate";
  }
  v->gate_split = what[0] == 'g';
  struct keyset ks;
  struct err ke = {0};
  char kc[2048];
  int held = 0;
  rc = keyset_load(reg, name, v->production, &ks, &ke);
  if (rc == ERR_NOTFOUND) {
    snprintf(v->note, sizeof(v->note),
             "production version %d has no %s (trained before row keys "
             "were kept): scoring on all %s rows of version %d, "
             "as before row keys",
             v->production, PIPELINE_TRAIN_KEYS, what, v->candidate);
  } else if (rc) {
    *e = ke;
    return rc;
  } else if ((rc = rows_key_columns(reg, name, v->candidate, file, kc,
                                    sizeof(kc), e))) {
    keyset_free(&ks);
    return rc;
  } else if (strcmp(kc, ks.cols) != 0) {
    snprintf(v->note, sizeof(v->note),
             "the %s rows of version %d are keyed by %.160s, "
             "production version %d's training rows by %.160s: scoring on "
             "all %s rows",
             what, v->candidate, kc[0] ? kc : "nothing", v->production,
             ks.cols, what);
  } else {
    held = 1;
  }

  struct train_metrics mc, mp;
  size_t nc = 0, np = 0, dropped = 0;
  int paired = g->paired && metric == SPEC_METRIC_ACCURACY;
  rc = score_rows(reg, name, v->candidate, v->candidate, file,
                  held ? &ks : NULL, &mc, &nc, &dropped, paired ? &cc : NULL,
                  NULL, e);
  size_t need = min_rows ? min_rows : 1;
  if (rc == ERR_OK && held && nc < need) {
    v->heldout = 1;
    v->n_rows = nc;
    v->n_dropped = dropped;
    snprintf(v->note, sizeof(v->note),
             "scored on %zu rows neither version trained on (%zu dropped: "
             "in production version %d's training split)",
             nc, dropped, v->production);
    snprintf(v->message, sizeof(v->message),
             "candidate %d: only %zu of its %zu %s rows were not in "
             "production version %d's training split (%zu dropped), fewer "
             "than min_rows %zu: too few to compare, production stays",
             v->candidate, nc, nc + dropped, what, v->production, dropped,
             need);
    keyset_free(&ks);
    free(cc);
    return ERR_OK;
  }
  if (rc == ERR_OK)
    rc = score_rows(reg, name, v->production, v->candidate, file,
                    held ? &ks : NULL, &mp, &np, NULL, paired ? &pcr : NULL,
                    NULL, e);
  keyset_free(&ks);
  if (rc == ERR_OK && paired && (!cc || !pcr || np != nc))
    paired = 0; /* regression target: no per-row answer to pair */
  if (rc) {
    free(cc);
    free(pcr);
    return rc;
  }
  v->heldout = held;
  v->n_rows = nc;
  v->n_dropped = dropped;
  if (held)
    snprintf(v->note, sizeof(v->note),
             "scored on %zu rows neither version trained on (%zu dropped: "
             "in production version %d's training split)",
             nc, dropped, v->production);
  v->cand_score = pipeline_metric_value(metric, &mc);
  v->prod_score = pipeline_metric_value(metric, &mp);
  if (paired) {
    char rows[200];
    snprintf(rows, sizeof(rows), "%s%zu %s rows of version %d%s",
             held ? "" : "all ", nc, what, v->candidate,
             held ? " that neither version trained on"
                  : ", not checked against production's training rows");
    v->is_paired = 1;
    paired_verdict(v, g, cc, pcr, nc, rows);
    free(cc);
    free(pcr);
    return ERR_OK;
  }
  free(cc);
  free(pcr);
  tolerance_verdict(v, metric, tolerance, held, nc, dropped, what);
  return ERR_OK;
}

/* ---- deployment table --------------------------------------------------- */

/* Cut s to at most cap-1 bytes on a UTF-8 boundary. */
static void cut_utf8(const char *s, char *buf, size_t cap)
{
  size_t n = strlen(s);
  if (n >= cap) {
    n = cap - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
}

/* One row of table deployment, for both recorders: the gate's figures
 * when v is paired and g given, NULL columns otherwise. */
enum err_code pipeline_record_gate(struct db_pool *db, const char *model,
                                   const char *alias, int from, int to,
                                   const char *action, const char *reason,
                                   const char *actor, const char *dag_run,
                                   const struct pipeline_verdict *v,
                                   const struct pipeline_gate_opts *g,
                                   struct err *e)
{
  if (v && !v->is_paired)
    v = NULL;
  struct db_conn *c = NULL;
  enum err_code rc = db_acquire(db, DB_WAIT_MS, &c, e);
  if (rc)
    return rc;
  int64_t run_pk = 0;
  int have_run = 0;
  if (dag_run && *dag_run) {
    struct db_val p[1] = {DB_V_STR(dag_run)};
    struct err le = {0};
    enum err_code r2 = db_query_i64(
        c, "SELECT id FROM dag_run WHERE run_id = ?", p, 1, &run_pk, &le);
    if (r2 == ERR_OK)
      have_run = 1;
    else if (r2 != ERR_NOTFOUND) {
      *e = le;
      db_release(db, c);
      return r2;
    }
  }
  char rb[1024], ab[256];
  if (reason)
    cut_utf8(reason, rb, sizeof(rb));
  if (actor)
    cut_utf8(actor, ab, sizeof(ab));
  struct db_val p[8] = {
      DB_V_STR(model),
      DB_V_STR(alias),
      from > 0 ? DB_V_INT(from) : DB_V_NULL,
      to > 0 ? DB_V_INT(to) : DB_V_NULL,
      DB_V_STR(action),
      reason ? DB_V_STR(rb) : DB_V_NULL,
      actor ? DB_V_STR(ab) : DB_V_NULL,
      have_run ? DB_V_INT(run_pk) : DB_V_NULL,
  };
  if (v && g) { /* the gate's numbers beside the decision */
    const struct stats_paired *st = &v->paired;
#define GNUM(x) (isfinite(x) ? DB_V_DBL(x) : DB_V_NULL)
    struct db_val q[20] = {
        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7],
        DB_V_INT(st->n), GNUM(st->difference), GNUM(st->lo), GNUM(st->hi),
        GNUM(st->p_value), GNUM(st->level), GNUM(st->max_regression),
        DB_V_INT((int64_t)v->min_rows), GNUM(v->cand_score),
        GNUM(v->prod_score), DB_V_STR(spec_metric_name(g->metric)),
        DB_V_STR(v->method)};
#undef GNUM
    rc = db_exec_params_retry(
        c,
        "INSERT INTO deployment (model, alias, from_version, to_version, "
        "action, reason, actor, dag_run_id, gate_n, gate_difference, "
        "gate_ci_low, gate_ci_high, gate_p_value, gate_level, "
        "gate_max_regression, gate_min_rows, gate_candidate_score, "
        "gate_production_score, gate_metric, gate_method, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "?, UTC_TIMESTAMP(6))",
        q, 20, 3, NULL, e);
  } else {
    rc = db_exec_params_retry(
        c,
        "INSERT INTO deployment (model, alias, from_version, to_version, "
        "action, reason, actor, dag_run_id, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, UTC_TIMESTAMP(6))",
        p, 8, 3, NULL, e);
  }
  if (rc)
    err_prefix(e, "recording the %s of %s in table deployment", action,
               model);
  db_release(db, c);
  return rc;
}

enum err_code pipeline_record_deployment(struct db_pool *db,
                                         const char *model, const char *alias,
                                         int from, int to, const char *action,
                                         const char *reason,
                                         const char *actor,
                                         const char *dag_run, struct err *e)
{
  return pipeline_record_gate(db, model, alias, from, to, action, reason,
                              actor, dag_run, NULL, NULL, e);
}

struct hist {
  int *v;
  size_t n, cap;
  int oom;
};

static int hist_push(struct hist *h, int x)
{
  if (VEC_PUSH(h->v, h->n, h->cap, x)) {
    h->oom = 1;
    return 1;
  }
  return 0;
}

static int hist_row(void *user, const struct db_row *row)
{
  struct hist *h = user;
  const char *action = db_row_str(row, 0, NULL);
  int to = db_row_is_null(row, 2) ? 0 : (int)db_row_i64(row, 2);
  if (!action || to <= 0)
    return 0;
  if (strcmp(action, "rollback") == 0) {
    if (h->n > 0)
      h->n--;
    if (h->n == 0 || h->v[h->n - 1] != to)
      return hist_push(h, to);
    return 0;
  }
  if (h->n == 0 || h->v[h->n - 1] != to)
    return hist_push(h, to);
  return 0;
}

enum err_code pipeline_previous_version(struct db_pool *db,
                                        const char *model, const char *alias,
                                        int *current, int *previous,
                                        struct err *e)
{
  struct db_conn *c = NULL;
  *current = *previous = 0;
  enum err_code rc = db_acquire(db, DB_WAIT_MS, &c, e);
  if (rc)
    return rc;
  struct hist h = {0};
  struct db_val p[2] = {DB_V_STR(model), DB_V_STR(alias)};
  rc = db_query(c,
                "SELECT action, from_version, to_version FROM deployment "
                "WHERE model = ? AND alias = ? AND action IN ('deploy', "
                "'promote', 'rollback') ORDER BY id",
                p, 2, hist_row, &h, NULL, e);
  db_release(db, c);
  if (rc == ERR_OK && h.oom)
    rc = err_set(e, ERR_NOMEM, "out of memory reading deployments");
  if (rc == ERR_OK) {
    if (h.n > 0)
      *current = h.v[h.n - 1];
    if (h.n < 2)
      rc = err_set(e, ERR_NOTFOUND,
                   "no earlier %s version of %s is recorded in table "
                   "deployment",
                   alias, model);
    else
      *previous = h.v[h.n - 2];
  }
  free(h.v);
  return rc;
}
