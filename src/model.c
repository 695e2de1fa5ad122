/* model.c - a saved XGBoost model loaded for serving (see model.h).
 *
 * Why two evaluators: XGBoost is the reference and handles every model;
 * the native evaluator (tree.c) is 10x faster for the models it supports.
 * It is only trusted after it reproduced XGBoost on real and generated
 * rows for this very model file.
 *
 * XGBoost rules followed here (shared/NOTES.md): nthread=1 is set before
 * the booster serves and nothing mutates it afterwards; in-place predict
 * needs "cache_id" and "missing" in its config (built once per model);
 * the proxy DMatrix is per thread (a pthread key frees it at thread exit);
 * the result buffer belongs to the (thread, booster) pair and is copied at
 * once.
 */
#include "mlopsd/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xgboost/c_api.h>

#include "mlopsd/calib.h"
#include "mlopsd/log.h"
#include "mlopsd/tree.h"

#define GEN_ROWS_DEFAULT 256
#define VERIFY_BATCH 256

struct model {
  atomic_int refs;
  BoosterHandle h;
  struct tree_model *tm; /* NULL when refused at compile */
  int native;            /* tm verified: model_predict uses it */
  int inplace;           /* XGBoost in-place predict works */
  size_t nfeat, out_dim, num_class, rounds;
  char objective[64];
  char status[ERR_MSG_MAX + 64];
  char path[4096];
  char pred_cfg[160];    /* in-place predict config, built once */
  double temperature;    /* calibration.json of the version; 1 = none */
};

/* ---- per-thread proxy DMatrix -------------------------------------- */

static pthread_key_t proxy_key;
static pthread_once_t proxy_once = PTHREAD_ONCE_INIT;
static int proxy_key_ok;

static void proxy_free(void *p)
{
  if (p)
    XGDMatrixFree(p);
}

static void proxy_init(void)
{
  proxy_key_ok = pthread_key_create(&proxy_key, proxy_free) == 0;
}

/* This thread's proxy, created on first use; NULL if that failed (XGBoost
 * then makes its own, slower but correct). */
static DMatrixHandle thread_proxy(void)
{
  pthread_once(&proxy_once, proxy_init);
  if (!proxy_key_ok)
    return NULL;
  DMatrixHandle p = pthread_getspecific(proxy_key);
  if (!p) {
    if (XGProxyDMatrixCreate(&p))
      return NULL;
    if (pthread_setspecific(proxy_key, p)) {
      XGDMatrixFree(p);
      return NULL;
    }
  }
  return p;
}

/* ---- helpers -------------------------------------------------------- */

enum err_code model_xgb_error(struct err *e, const char *what)
{
  const char *m = XGBGetLastError();
  if (!m)
    m = "unknown error";
  /* Drop the "[hh:mm:ss] " time stamp XGBoost puts first. */
  if (m[0] == '[' && strlen(m) > 11 && m[9] == ']' && m[10] == ' ')
    m += 11;
  size_t n = strcspn(m, "\n");
  return err_set(e, ERR_XGB, "XGBoost %s: %.*s", what, (int)n, m);
}

static void model_free(struct model *m)
{
  if (!m)
    return;
  if (m->h)
    XGBoosterFree(m->h);
  tree_destroy(m->tm);
  free(m);
}

struct model *model_ref(struct model *m)
{
  if (m)
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
  return m;
}

void model_unref(struct model *m)
{
  if (m && atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
    model_free(m);
}

/* Copy XGBoost's result (owned by the thread/booster pair) at once. */
/* XGBoost's answer res (its shape) into out: want values, else an error
 * naming what was asked (predict, contributions, margins). */
static enum err_code copy_result(const char *what, size_t n, size_t want,
                                 bst_ulong const *shape, bst_ulong dim,
                                 const float *res, float *out,
                                 struct err *e)
{
  size_t len = 1;
  for (bst_ulong i = 0; i < dim; i++)
    len *= (size_t)shape[i];
  if (len != want)
    return err_set(e, ERR_XGB, "XGBoost %s: %zu values for %zu rows, "
                               "expected %zu", what, len, n, want);
  memcpy(out, res, len * sizeof(float));
  return ERR_OK;
}

/* In-place predict: the fast XGBoost path (gbtree and dart). */
static enum err_code xgb_inplace(const struct model *m, const float *rows,
                                 size_t n, float *out, struct err *e)
{
  char arr[192];
  snprintf(arr, sizeof(arr),
           "{\"data\": [%ju, true], \"shape\": [%zu, %zu], "
           "\"typestr\": \"<f4\", \"version\": 3}",
           (uintmax_t)(uintptr_t)rows, n, m->nfeat);
  bst_ulong const *shape;
  bst_ulong dim;
  const float *res;
  if (XGBoosterPredictFromDense(m->h, arr, m->pred_cfg, thread_proxy(),
                                &shape, &dim, &res))
    return model_xgb_error(e, "predict");
  return copy_result("predict", n, n * m->out_dim, shape, dim, res, out, e);
}

/* Through a DMatrix per call, with XGBoost's predict config cfg: for
 * boosters without in-place predict (gblinear), and for contributions
 * and margins, which have no in-place path in 1.7. */
static enum err_code xgb_dmatrix(const struct model *m, const float *rows,
                                 size_t n, const char *cfg, const char *what,
                                 size_t want, float *out, struct err *e)
{
  DMatrixHandle dm;
  if (XGDMatrixCreateFromMat(rows, (bst_ulong)n, (bst_ulong)m->nfeat, NAN,
                             &dm))
    return model_xgb_error(e, "DMatrix");
  bst_ulong const *shape;
  bst_ulong dim;
  const float *res;
  enum err_code rc;
  if (XGBoosterPredictFromDMatrix(m->h, dm, cfg, &shape, &dim, &res))
    rc = model_xgb_error(e, what);
  else
    rc = copy_result(what, n, want, shape, dim, res, out, e);
  XGDMatrixFree(dm);
  return rc;
}

enum err_code model_predict_xgb(const struct model *m, const float *rows,
                                size_t n, float *out, struct err *e)
{
  if (!m || (n && (!rows || !out)))
    return err_set(e, ERR_INVAL, "model_predict: NULL argument");
  if (!n)
    return ERR_OK;
  return m->inplace ? xgb_inplace(m, rows, n, out, e)
                    : xgb_dmatrix(m, rows, n, m->pred_cfg, "predict",
                                  n * m->out_dim, out, e);
}

enum err_code model_predict_native(const struct model *m, const float *rows,
                                   size_t n, float *out, struct err *e)
{
  if (!m || !m->tm)
    return err_set(e, ERR_UNSUPPORTED, "model has no native evaluator");
  return tree_predict(m->tm, rows, n, m->nfeat, out, e);
}

enum err_code model_predict(const struct model *m, const float *rows,
                            size_t n, float *out, struct err *e)
{
  enum err_code rc = m && m->native
                         ? tree_predict(m->tm, rows, n, m->nfeat, out, e)
                         : model_predict_xgb(m, rows, n, out, e);
  if (rc == ERR_OK && m->temperature != 1)
    calib_apply(out, n, m->out_dim, m->temperature);
  return rc;
}

double model_temperature(const struct model *m) { return m->temperature; }

size_t model_num_group(const struct model *m)
{
  return strncmp(m->objective, "multi:", 6) == 0 ? m->num_class : 1;
}

enum err_code model_contribs(const struct model *m, const float *rows,
                             size_t n, float *out, struct err *e)
{
  if (!m || (n && (!rows || !out)))
    return err_set(e, ERR_INVAL, "model_contribs: NULL argument");
  if (!n)
    return ERR_OK;
  /* type 2: pred_contribs (exact TreeSHAP) */
  return xgb_dmatrix(m, rows, n,
                     "{\"type\": 2, \"training\": false, "
                     "\"iteration_begin\": 0, \"iteration_end\": 0, "
                     "\"strict_shape\": false}",
                     "contributions", n * model_num_group(m) * (m->nfeat + 1),
                     out, e);
}

enum err_code model_gain(const struct model *m, double *per_col,
                         struct err *e)
{
  if (!m || !per_col)
    return err_set(e, ERR_INVAL, "model_gain: NULL argument");
  for (size_t j = 0; j < m->nfeat; j++)
    per_col[j] = 0;
  bst_ulong nf = 0, dim = 0, nnames = 0;
  char const **feats = NULL, **names = NULL;
  bst_ulong const *shape = NULL;
  const float *score = NULL;
  if (XGBoosterFeatureScore(m->h, "{\"importance_type\": \"total_gain\", "
                                  "\"feature_map\": \"\"}",
                            &nf, &feats, &dim, &shape, &score))
    return model_xgb_error(e, "feature score");
  if (dim != 1 || shape[0] != nf)
    return err_set(e, ERR_XGB, "XGBoost feature score: %ju-dimensional "
                               "scores (expected one per feature)",
                   (uintmax_t)dim);
  /* the answer lives in the thread's XGBoost buffers, which the next
   * call (the feature names) reuses: take the column of each score
   * first, as "fN" or as its name's position */
  float *sc = malloc((nf ? nf : 1) * sizeof(*sc));
  char **fname = calloc(nf ? nf : 1, sizeof(*fname));
  enum err_code rc = ERR_OK;
  if (!sc || !fname) {
    rc = err_set(e, ERR_NOMEM, "model_gain: out of memory");
    goto out;
  }
  for (bst_ulong i = 0; i < nf; i++) {
    sc[i] = score[i];
    if (!(fname[i] = strdup(feats[i]))) {
      rc = err_set(e, ERR_NOMEM, "model_gain: out of memory");
      goto out;
    }
  }
  if (XGBoosterGetStrFeatureInfo(m->h, "feature_name", &nnames, &names))
    nnames = 0;
  for (bst_ulong i = 0; i < nf; i++) {
    size_t j = m->nfeat;
    if (nnames == m->nfeat) {
      for (j = 0; j < m->nfeat && strcmp(names[j], fname[i]); j++)
        ;
    } else if (fname[i][0] == 'f') {
      char *end;
      unsigned long v = strtoul(fname[i] + 1, &end, 10);
      if (!*end)
        j = v;
    }
    if (j >= m->nfeat) {
      rc = err_set(e, ERR_XGB, "XGBoost feature score: unknown feature "
                               "'%.64s'", fname[i]);
      goto out;
    }
    per_col[j] += sc[i];
  }
out:
  for (bst_ulong i = 0; fname && i < nf; i++)
    free(fname[i]);
  free(sc);
  free(fname);
  return rc;
}

enum err_code model_predict_margin(const struct model *m, const float *rows,
                                   size_t n, float *out, struct err *e)
{
  if (!m || (n && (!rows || !out)))
    return err_set(e, ERR_INVAL, "model_predict_margin: NULL argument");
  if (!n)
    return ERR_OK;
  if (m->native)
    return tree_predict_margin(m->tm, rows, n, m->nfeat, out, e);
  return xgb_dmatrix(m, rows, n,
                     "{\"type\": 1, \"training\": false, "
                     "\"iteration_begin\": 0, \"iteration_end\": 0, "
                     "\"strict_shape\": false}",
                     "margins", n * model_num_group(m), out, e);
}

/* DIR/calibration.json of a version directory: its temperature (1 when
 * the file is absent: versions trained before calibration).  Only for
 * probability outputs; a file that is there but wrong is an error naming
 * it (a silently uncalibrated model would report other confidences than
 * the version promised). */
static enum err_code read_calibration(struct model *m, const char *dir,
                                      struct err *e)
{
  char p[4200];
  m->temperature = 1;
  if (!dir)
    return ERR_OK;
  snprintf(p, sizeof(p), "%s/%s", dir, CALIB_FILE);
  FILE *f = fopen(p, "r");
  if (!f)
    return errno == ENOENT ? ERR_OK
                           : err_set(e, ERR_IO, "cannot read %s: %s", p,
                                     strerror(errno));
  char buf[4096];
  size_t len = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[len] = '\0';
  cJSON *j = cJSON_Parse(buf);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "temperature");
  const cJSON *me = cJSON_GetObjectItemCaseSensitive(j, "method");
  int ok = cJSON_IsNumber(t) && cJSON_IsString(me) &&
           !strcmp(me->valuestring, "temperature") &&
           t->valuedouble >= CALIB_T_MIN && t->valuedouble <= CALIB_T_MAX;
  double tv = ok ? t->valuedouble : 1;
  cJSON_Delete(j);
  if (!ok)
    return err_set(e, ERR_CONFIG,
                   "%s: expected {\"method\": \"temperature\", "
                   "\"temperature\": %g..%g}",
                   p, CALIB_T_MIN, CALIB_T_MAX);
  if (!strcmp(m->objective, "multi:softprob") ||
      !strcmp(m->objective, "binary:logistic"))
    m->temperature = tv;
  return ERR_OK;
}

int model_native(const struct model *m) { return m->native; }
const char *model_native_status(const struct model *m) { return m->status; }
size_t model_nfeat(const struct model *m) { return m->nfeat; }
size_t model_num_class(const struct model *m) { return m->num_class; }
size_t model_output_dim(const struct model *m) { return m->out_dim; }
const char *model_objective(const struct model *m) { return m->objective; }
size_t model_num_rounds(const struct model *m) { return m->rounds; }
const char *model_path(const struct model *m) { return m->path; }

/* Objective and num_class from the booster's JSON config. */
static enum err_code read_config(struct model *m, struct err *e)
{
  bst_ulong len;
  const char *cfg;
  if (XGBoosterSaveJsonConfig(m->h, &len, &cfg))
    return model_xgb_error(e, "config");
  cJSON *j = cJSON_ParseWithLength(cfg, (size_t)len);
  if (!j)
    return err_set(e, ERR_XGB, "XGBoost config is not JSON");
  cJSON *l = cJSON_GetObjectItemCaseSensitive(j, "learner");
  cJSON *on = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(l, "objective"), "name");
  cJSON *nc = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(l, "learner_model_param"),
      "num_class");
  enum err_code rc = ERR_OK;
  if (!cJSON_IsString(on) || !cJSON_IsString(nc)) {
    rc = err_set(e, ERR_XGB, "XGBoost config lacks objective/num_class");
  } else {
    snprintf(m->objective, sizeof(m->objective), "%s", on->valuestring);
    long k = strtol(nc->valuestring, NULL, 10);
    if (!strncmp(m->objective, "multi:", 6))
      m->num_class = k > 0 ? (size_t)k : 0;
    else if (!strncmp(m->objective, "binary:", 7))
      m->num_class = 2;
    else
      m->num_class = 0;
  }
  cJSON_Delete(j);
  return rc;
}

/* Predict rows both ways in batches; *maxd gets the largest difference
 * (INFINITY when one side is NaN and the other not). */
static enum err_code compare(const struct model *m, const float *rows,
                             size_t n, double *maxd, size_t *at,
                             struct err *e)
{
  size_t od = m->out_dim;
  float *a = malloc(VERIFY_BATCH * od * sizeof(float));
  float *b = malloc(VERIFY_BATCH * od * sizeof(float));
  enum err_code rc = ERR_OK;
  if (!a || !b) {
    rc = err_set(e, ERR_NOMEM, "model: out of memory");
    goto out;
  }
  for (size_t r0 = 0; r0 < n; r0 += VERIFY_BATCH) {
    size_t nb = n - r0 < VERIFY_BATCH ? n - r0 : VERIFY_BATCH;
    const float *x = rows + r0 * m->nfeat;
    if ((rc = model_predict_xgb(m, x, nb, a, e)) ||
        (rc = tree_predict(m->tm, x, nb, m->nfeat, b, e)))
      goto out;
    for (size_t i = 0; i < nb * od; i++) {
      double d = fabs((double)a[i] - (double)b[i]);
      if (isnan(a[i]) != isnan(b[i]))
        d = INFINITY;
      else if (isnan(a[i]))
        d = 0;
      if (d > *maxd) {
        *maxd = d;
        *at = r0 + i / od;
      }
    }
  }
out:
  free(a);
  free(b);
  return rc;
}

/* Message of te without the "PATH: " prefix tree.c puts first. */
static const char *strip_path(const struct model *m, const struct err *te)
{
  size_t pl = strlen(m->path);
  if (!strncmp(te->msg, m->path, pl) && !strncmp(te->msg + pl, ": ", 2))
    return te->msg + pl + 2;
  return te->msg;
}

/* Parse the file with mlopsd's own reader before XGBoost sees it: XGBoost
 * 1.7's UBJSON reader reads past the end of a truncated file (found with
 * ASan), and a corrupt tree (a cycle) would loop forever in its predict.
 * A malformed file is refused here; a well-formed model the native
 * evaluator does not implement goes on to XGBoost. */
static enum err_code precheck(struct model *m, struct err *e)
{
  struct err te = {0};
  enum err_code rc = tree_compile_file(m->path, &m->tm, &te);
  switch (rc) {
  case ERR_OK:
    return ERR_OK;
  case ERR_UNSUPPORTED:
    snprintf(m->status, sizeof(m->status), "xgboost: %s",
             strip_path(m, &te));
    return ERR_OK;
  case ERR_PARSE:
    return err_set(e, ERR_PARSE, "model %s is corrupt or not an XGBoost "
                                 "model: %s", m->path, strip_path(m, &te));
  default:
    if (e)
      *e = te;
    return rc;
  }
}

/* Verify the compiled native evaluator against XGBoost; sets m->status.
 * Only errors of the XGBoost side (or memory) are returned. */
static enum err_code setup_native(struct model *m,
                                  const struct model_load_opts *o,
                                  struct err *e)
{
  if (!m->tm)
    return ERR_OK; /* refused at compile: status already set */
  if (o->no_native) {
    snprintf(m->status, sizeof(m->status), "xgboost: native evaluator "
                                           "disabled");
    return ERR_OK;
  }
  if (tree_nfeat(m->tm) != m->nfeat || tree_output_dim(m->tm) != m->out_dim) {
    snprintf(m->status, sizeof(m->status),
             "xgboost: native evaluator sees %zu features x %zu outputs, "
             "XGBoost %zu x %zu", tree_nfeat(m->tm), tree_output_dim(m->tm),
             m->nfeat, m->out_dim);
    return ERR_OK;
  }
  size_t ng = o->n_generated ? o->n_generated : GEN_ROWS_DEFAULT;
  float *gen = malloc(ng * m->nfeat * sizeof(float));
  if (!gen)
    return err_set(e, ERR_NOMEM, "model: out of memory");
  tree_gen_rows(m->tm, ng, 0x6d6c6f707364ull, gen);
  double maxd = 0;
  size_t at = 0, at2 = 0;
  double maxd2 = 0;
  enum err_code rc = ERR_OK;
  if (o->n_sample && o->sample_rows)
    rc = compare(m, o->sample_rows, o->n_sample, &maxd, &at, e);
  if (!rc)
    rc = compare(m, gen, ng, &maxd2, &at2, e);
  free(gen);
  if (rc)
    return rc;
  size_t nrows = (o->sample_rows ? o->n_sample : 0) + ng;
  if (maxd > MODEL_TOLERANCE || maxd2 > MODEL_TOLERANCE) {
    int given = maxd > MODEL_TOLERANCE;
    snprintf(m->status, sizeof(m->status),
             "xgboost: native evaluator refused: max |diff| %.3g > %g at "
             "%s row %zu", given ? maxd : maxd2, MODEL_TOLERANCE,
             given ? "sample" : "generated", given ? at : at2);
    return ERR_OK;
  }
  m->native = 1;
  snprintf(m->status, sizeof(m->status),
           "native: verified on %zu rows, max |diff| %.3g", nrows,
           maxd > maxd2 ? maxd : maxd2);
  return ERR_OK;
}

enum err_code model_load(const char *path, size_t nfeat,
                         const struct model_load_opts *opts,
                         struct model **out, struct err *e)
{
  static const struct model_load_opts defaults = {0};
  const struct model_load_opts *o = opts ? opts : &defaults;
  *out = NULL;
  if (!path)
    return err_set(e, ERR_INVAL, "model_load: no path");
  struct model *m = calloc(1, sizeof(*m));
  if (!m)
    return err_set(e, ERR_NOMEM, "model_load: out of memory");
  atomic_init(&m->refs, 1);
  enum err_code rc = ERR_OK;
  struct stat sb;
  int n = snprintf(m->path, sizeof(m->path), "%s", path);
  int is_dir = n > 0 && !stat(path, &sb) && S_ISDIR(sb.st_mode);
  m->temperature = 1;
  if (is_dir)
    n = snprintf(m->path, sizeof(m->path), "%s/%s", path, MODEL_FILE_NAME);
  if (n < 0 || (size_t)n >= sizeof(m->path)) {
    rc = err_set(e, ERR_INVAL, "model_load: path too long");
    goto fail;
  }
  if (stat(m->path, &sb) || !S_ISREG(sb.st_mode)) {
    rc = err_set(e, ERR_NOTFOUND, "model %s: %s", m->path,
                 errno == ENOENT ? "no such file" : "not a readable file");
    goto fail;
  }
  if ((rc = precheck(m, e)))
    goto fail;
  if (XGBoosterCreate(NULL, 0, &m->h)) {
    rc = model_xgb_error(e, "create booster");
    goto fail;
  }
  if (XGBoosterLoadModel(m->h, m->path)) {
    rc = model_xgb_error(e, "load");
    err_prefix(e, "model %s", m->path);
    goto fail;
  }
  bst_ulong nf = 0;
  int rounds = 0;
  if (XGBoosterSetParam(m->h, "nthread", "1") ||
      XGBoosterGetNumFeature(m->h, &nf) ||
      XGBoosterBoostedRounds(m->h, &rounds)) {
    rc = model_xgb_error(e, "configure");
    err_prefix(e, "model %s", m->path);
    goto fail;
  }
  m->nfeat = (size_t)nf;
  m->rounds = rounds > 0 ? (size_t)rounds : 0;
  if (!m->nfeat || (nfeat && nfeat != m->nfeat)) {
    rc = err_set(e, ERR_INVAL, "model %s expects %zu features, not %zu",
                 m->path, m->nfeat, nfeat);
    goto fail;
  }
  if ((rc = read_config(m, e)))
    goto fail;
  snprintf(m->pred_cfg, sizeof(m->pred_cfg),
           "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
           "\"iteration_end\": 0, \"strict_shape\": false, "
           "\"cache_id\": 0, \"missing\": NaN}");
  /* One row through XGBoost: configures the booster before it is shared,
   * tells the output width and whether in-place predict works (not for
   * gblinear). */
  {
    float *row = malloc(m->nfeat * sizeof(float));
    if (!row) {
      rc = err_set(e, ERR_NOMEM, "model_load: out of memory");
      goto fail;
    }
    for (size_t i = 0; i < m->nfeat; i++)
      row[i] = NAN;
    bst_ulong const *shape;
    bst_ulong dim;
    const float *out1;
    DMatrixHandle dm = NULL;
    m->inplace = 1;
    char arr[192];
    snprintf(arr, sizeof(arr),
             "{\"data\": [%ju, true], \"shape\": [1, %zu], "
             "\"typestr\": \"<f4\", \"version\": 3}",
             (uintmax_t)(uintptr_t)row, m->nfeat);
    if (XGBoosterPredictFromDense(m->h, arr, m->pred_cfg, thread_proxy(),
                                  &shape, &dim, &out1)) {
      m->inplace = 0;
      if (XGDMatrixCreateFromMat(row, 1, (bst_ulong)m->nfeat, NAN, &dm) ||
          XGBoosterPredictFromDMatrix(m->h, dm, m->pred_cfg, &shape, &dim,
                                      &out1)) {
        rc = model_xgb_error(e, "predict");
        err_prefix(e, "model %s", m->path);
      }
    }
    size_t len = 1;
    for (bst_ulong i = 0; !rc && i < dim; i++)
      len *= (size_t)shape[i];
    if (!rc && (!len || len > TREE_MAX_CLASSES))
      rc = err_set(e, ERR_UNSUPPORTED, "model %s: %zu outputs per row",
                   m->path, len);
    if (dm)
      XGDMatrixFree(dm);
    free(row);
    if (rc)
      goto fail;
    m->out_dim = len;
  }
  if ((rc = setup_native(m, o, e)) ||
      (rc = read_calibration(m, is_dir ? path : NULL, e)))
    goto fail;
  LOG_I("model", "loaded path=%s objective=%s nfeat=%zu rounds=%zu "
                 "evaluator=\"%s\"", m->path, m->objective, m->nfeat,
        m->rounds, m->status);
  *out = m;
  return ERR_OK;
fail:
  model_free(m);
  return rc;
}
