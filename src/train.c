/* train.c - XGBoost training through its C API (see train.h).
 *
 * Why by hand: the C API has no training loop, early stopping or
 * best_iteration (shared/NOTES.md).  Each round is one
 * XGBoosterUpdateOneIter plus one XGBoosterEvalOneIter on the validation
 * DMatrix; the metric is read from the eval string by its key
 * ("val-mlogloss:"), since each eval_metric set is appended, not replaced.
 * Improvement is strict, as in XGBoost's Python EarlyStopping, so a tie
 * keeps the earlier round.  At the end the booster is sliced to best+1
 * rounds, so the saved model holds only the kept trees and any consumer
 * (python-xgboost, our native evaluator) predicts the same.
 *
 * A trial owns its DMatrix handles and booster: trials may run on several
 * threads at once.  (A DMatrix is not shared between trials because
 * XGBoost caches per-booster quantile data inside it.)
 */
#include "mlopsd/train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "mlopsd/model.h"

struct train_booster {
  BoosterHandle h;
  size_t nfeat;
};

const char *train_xgb_version(void)
{
  static char buf[32];
  int maj = 0, min = 0, pat = 0;
  XGBoostVersion(&maj, &min, &pat);
  snprintf(buf, sizeof(buf), "%d.%d.%d", maj, min, pat);
  return buf;
}

enum obj_kind { OBJ_MULTI, OBJ_BINARY, OBJ_REG };

static enum obj_kind obj_kind_of(const char *obj)
{
  if (!strncmp(obj, "multi:", 6))
    return OBJ_MULTI;
  if (!strncmp(obj, "binary:", 7))
    return OBJ_BINARY;
  return OBJ_REG;
}

/* Metrics whose larger value is better (XGBoost's Python callback list). */
static int metric_maximize(const char *name)
{
  static const char *const mx[] = {"auc", "aucpr", "pre", "map", "ndcg"};
  size_t n = strcspn(name, "@");
  for (size_t i = 0; i < sizeof(mx) / sizeof(mx[0]); i++)
    if (strlen(mx[i]) == n && !strncmp(name, mx[i], n))
      return 1;
  return 0;
}

/* Find "<set>-<metric>:" in an eval string and parse the value. */
static int parse_eval(const char *s, const char *set, const char *metric,
                      double *out)
{
  char key[96];
  snprintf(key, sizeof(key), "%s-%s:", set, metric);
  size_t kl = strlen(key);
  for (const char *p = s; (p = strstr(p, key)); p += kl) {
    /* Must start a field: after a tab or at the beginning. */
    if (p != s && p[-1] != '\t')
      continue;
    char *end;
    *out = strtod(p + kl, &end);
    return end == p + kl ? -1 : 0;
  }
  return -1;
}

static enum err_code make_dmatrix(const float *x, const float *y,
                                  const float *w, size_t n,
                                  const struct train_data *d, int nthread,
                                  DMatrixHandle *out, struct err *e)
{
  int rc;
  if (nthread > 0)
    rc = XGDMatrixCreateFromMat_omp(x, (bst_ulong)n, (bst_ulong)d->nfeat,
                                    NAN, out, nthread);
  else
    rc = XGDMatrixCreateFromMat(x, (bst_ulong)n, (bst_ulong)d->nfeat, NAN,
                                out);
  if (rc)
    return model_xgb_error(e, "DMatrix");
  if (y && XGDMatrixSetFloatInfo(*out, "label", y, (bst_ulong)n)) {
    XGDMatrixFree(*out);
    *out = NULL;
    return model_xgb_error(e, "labels");
  }
  if (w && XGDMatrixSetFloatInfo(*out, "weight", w, (bst_ulong)n)) {
    XGDMatrixFree(*out);
    *out = NULL;
    return model_xgb_error(e, "weights");
  }
  if (d->feature_names &&
      XGDMatrixSetStrFeatureInfo(*out, "feature_name",
                                 (const char **)d->feature_names,
                                 (bst_ulong)d->nfeat)) {
    XGDMatrixFree(*out);
    *out = NULL;
    return model_xgb_error(e, "feature names");
  }
  return ERR_OK;
}

static int is_class_label(float v, int k)
{
  return v >= 0 && v < (float)k && v == floorf(v);
}

static enum err_code check_labels(const float *y, size_t n, enum obj_kind k,
                                  int num_class, const char *which,
                                  struct err *e)
{
  for (size_t i = 0; i < n; i++) {
    int ok = k == OBJ_MULTI    ? is_class_label(y[i], num_class)
             : k == OBJ_BINARY ? (y[i] == 0.0f || y[i] == 1.0f)
                               : isfinite(y[i]);
    if (!ok)
      return err_set(e, ERR_INVAL,
                     "train: %s label %zu is %g: not a valid label for this "
                     "objective", which, i, (double)y[i]);
  }
  return ERR_OK;
}

static enum err_code predict_dm(BoosterHandle h, DMatrixHandle dm,
                                float **out, size_t *n_out, struct err *e)
{
  const char *cfg = "{\"type\": 0, \"training\": false, "
                    "\"iteration_begin\": 0, \"iteration_end\": 0, "
                    "\"strict_shape\": false}";
  bst_ulong const *shape;
  bst_ulong dim;
  const float *res;
  if (XGBoosterPredictFromDMatrix(h, dm, cfg, &shape, &dim, &res))
    return model_xgb_error(e, "predict");
  size_t len = 1;
  for (bst_ulong i = 0; i < dim; i++)
    len *= (size_t)shape[i];
  *out = malloc((len ? len : 1) * sizeof(float));
  if (!*out)
    return err_set(e, ERR_NOMEM, "train: out of memory");
  memcpy(*out, res, len * sizeof(float));
  *n_out = len;
  return ERR_OK;
}

static const char *kv_find(const struct train_params *p, const char *key)
{
  const char *v = NULL;
  for (size_t i = 0; i < p->n_params; i++)
    if (p->params[i].key && !strcmp(p->params[i].key, key))
      v = p->params[i].value;
  return v;
}

/* Stage 1 of train_fit: the inputs are usable and every label fits the
 * objective; gives the objective's kind and class count (0 for
 * regression, 2 for binary, the given or derived count for multi). */
static enum err_code fit_check_input(const struct train_data *d,
                                     const struct train_params *p,
                                     enum obj_kind *kind_out,
                                     int *num_class_out, struct err *e)
{
  if (!d || !p || !p->objective || !d->x_train || !d->y_train ||
      !d->x_val || !d->y_val || !d->n_train || !d->n_val || !d->nfeat)
    return err_set(e, ERR_INVAL,
                   "train: need objective, training and validation rows");
  if (p->num_boost_round < 1 || p->early_stopping_rounds < 0 ||
      p->nthread < 0 || (p->n_params && !p->params))
    return err_set(e, ERR_INVAL, "train: bad num_boost_round, "
                                 "early_stopping_rounds or nthread");
  enum obj_kind kind = obj_kind_of(p->objective);
  int num_class = 0;
  if (kind == OBJ_MULTI) {
    num_class = p->num_class;
    if (num_class <= 0) {
      float mx = 0;
      for (size_t i = 0; i < d->n_train; i++)
        if (d->y_train[i] > mx)
          mx = d->y_train[i];
      num_class = (int)mx + 1;
    }
    if (num_class < 2 || num_class > 100000)
      return err_set(e, ERR_INVAL, "train: num_class %d out of range",
                     num_class);
  } else if (kind == OBJ_BINARY) {
    num_class = 2;
  }
  enum err_code rc;
  if ((rc = check_labels(d->y_train, d->n_train, kind, num_class,
                         "training", e)) ||
      (rc = check_labels(d->y_val, d->n_val, kind, num_class, "validation",
                         e)))
    return rc;
  *kind_out = kind;
  *num_class_out = num_class;
  return ERR_OK;
}

/* Stage 2: the booster's parameters - objective, class count, threads,
 * the caller's key/value pairs in order, then the eval metric whose
 * "val-<metric>" fit_boost reads back. */
static enum err_code fit_set_params(BoosterHandle b,
                                    const struct train_params *p,
                                    enum obj_kind kind, int num_class,
                                    const char *metric, struct err *e)
{
  char nc[16], nt[16];
  snprintf(nc, sizeof(nc), "%d", num_class);
  snprintf(nt, sizeof(nt), "%d", p->nthread);
  if (XGBoosterSetParam(b, "objective", p->objective) ||
      (kind == OBJ_MULTI && XGBoosterSetParam(b, "num_class", nc)) ||
      (p->nthread > 0 && XGBoosterSetParam(b, "nthread", nt)))
    return model_xgb_error(e, "set parameter");
  for (size_t i = 0; i < p->n_params; i++) {
    const struct train_kv *kv = &p->params[i];
    if (!kv->key || !kv->value)
      return err_set(e, ERR_INVAL, "train: parameter %zu has no key/value",
                     i);
    if (XGBoosterSetParam(b, kv->key, kv->value)) {
      enum err_code rc = model_xgb_error(e, "set parameter");
      err_prefix(e, "%s=%s", kv->key, kv->value);
      return rc;
    }
  }
  if (XGBoosterSetParam(b, "eval_metric", metric))
    return model_xgb_error(e, "set eval_metric");
  return ERR_OK;
}

/* Stage 3: the boosting rounds with early stopping on the validation
 * metric; fills r->rounds_run, r->best_iteration and r->best_score. */
static enum err_code fit_boost(BoosterHandle b, DMatrixHandle dtrain,
                               DMatrixHandle dval,
                               const struct train_params *p,
                               const char *metric, struct train_result *r,
                               struct err *e)
{
  int maximize = metric_maximize(metric);
  double best = NAN, last = NAN;
  int best_it = 0, it;
  const char *names[1] = {"val"};
  for (it = 0; it < p->num_boost_round; it++) {
    if (p->cancel && p->cancel(p->ud))
      return err_set(e, ERR_CANCELED, "train: canceled at round %d", it);
    if (XGBoosterUpdateOneIter(b, it, dtrain))
      return model_xgb_error(e, "update");
    const char *evs;
    double v;
    if (XGBoosterEvalOneIter(b, it, &dval, names, 1, &evs))
      return model_xgb_error(e, "eval");
    if (parse_eval(evs, "val", metric, &v))
      return err_set(e, ERR_XGB,
                     "train: no \"val-%s\" in eval output \"%s\"", metric,
                     evs);
    last = v;
    if (p->progress)
      p->progress(p->ud, it, v);
    if (it == 0 || (maximize ? v > best : v < best) ||
        (isnan(best) && !isnan(v))) {
      best = v;
      best_it = it;
    }
    if (p->early_stopping_rounds > 0 &&
        it - best_it >= p->early_stopping_rounds) {
      it++;
      break;
    }
  }
  if (p->early_stopping_rounds == 0) {
    /* No early stopping: every round is kept, as XGBoost does. */
    best_it = it - 1;
    best = last;
  }
  r->rounds_run = it;
  r->best_iteration = best_it;
  r->best_score = best;
  return ERR_OK;
}

/* Stage 4: keep only the rounds up to the best one (*b may be replaced by
 * its slice), name the features in the model, and count its trees. */
static enum err_code fit_keep_best(BoosterHandle *b,
                                   const struct train_data *d,
                                   const struct train_params *p,
                                   enum obj_kind kind,
                                   struct train_result *r, struct err *e)
{
  r->num_rounds = r->best_iteration + 1;
  if (r->num_rounds < r->rounds_run) {
    BoosterHandle s = NULL;
    if (XGBoosterSlice(*b, 0, r->num_rounds, 1, &s))
      return model_xgb_error(e, "slice");
    XGBoosterFree(*b);
    *b = s;
  }
  /* Names go into the saved model (the C API does not take them from the
   * DMatrix). */
  if (d->feature_names &&
      XGBoosterSetStrFeatureInfo(*b, "feature_name",
                                 (const char **)d->feature_names,
                                 (bst_ulong)d->nfeat))
    return model_xgb_error(e, "feature names");
  int rounds = 0;
  if (XGBoosterBoostedRounds(*b, &rounds))
    return model_xgb_error(e, "boosted rounds");
  if (rounds != r->num_rounds)
    return err_set(e, ERR_INTERNAL, "train: kept %d rounds, expected %d",
                   rounds, r->num_rounds);
  const char *npt = kv_find(p, "num_parallel_tree");
  int par = npt ? atoi(npt) : 1;
  r->num_trees = r->num_rounds * (kind == OBJ_MULTI ? r->num_class : 1) *
                 (par > 0 ? par : 1);
  return ERR_OK;
}

enum err_code train_fit(const struct train_data *d,
                        const struct train_params *p,
                        struct train_result *r, struct err *e)
{
  memset(r, 0, sizeof(*r));
  enum obj_kind kind = OBJ_REG;
  int num_class = 0;
  enum err_code rc = fit_check_input(d, p, &kind, &num_class, e);
  if (rc)
    return rc;

  const char *metric = p->eval_metric;
  if (!metric)
    metric = kind == OBJ_MULTI    ? "mlogloss"
             : kind == OBJ_BINARY ? "logloss"
                                  : "rmse";
  if (strlen(metric) >= sizeof(r->eval_metric))
    return err_set(e, ERR_INVAL, "train: eval metric name too long");

  DMatrixHandle dtrain = NULL, dval = NULL;
  BoosterHandle b = NULL;
  float *pred = NULL;
  size_t npred = 0;
  if ((rc = make_dmatrix(d->x_train, d->y_train, d->w_train, d->n_train, d,
                         p->nthread, &dtrain, e)) ||
      (rc = make_dmatrix(d->x_val, d->y_val, d->w_val, d->n_val, d,
                         p->nthread, &dval, e)))
    goto out;
  DMatrixHandle cache[2] = {dtrain, dval};
  if (XGBoosterCreate(cache, 2, &b)) {
    rc = model_xgb_error(e, "create booster");
    goto out;
  }
  if ((rc = fit_set_params(b, p, kind, num_class, metric, e)) ||
      (rc = fit_boost(b, dtrain, dval, p, metric, r, e)))
    goto out;
  r->num_class = num_class;
  snprintf(r->eval_metric, sizeof(r->eval_metric), "%s", metric);
  if ((rc = fit_keep_best(&b, d, p, kind, r, e)) ||
      (rc = predict_dm(b, dval, &pred, &npred, e)) ||
      (rc = train_eval_metrics(p->objective, num_class, d->y_val, pred,
                               d->n_val, &r->metrics, e)))
    goto out;
  r->booster = malloc(sizeof(*r->booster));
  if (!r->booster) {
    rc = err_set(e, ERR_NOMEM, "train: out of memory");
    goto out;
  }
  r->booster->h = b;
  r->booster->nfeat = d->nfeat;
  b = NULL;
out:
  free(pred);
  if (b)
    XGBoosterFree(b);
  if (dtrain)
    XGDMatrixFree(dtrain);
  if (dval)
    XGDMatrixFree(dval);
  if (rc)
    memset(r, 0, sizeof(*r));
  return rc;
}

void train_result_free(struct train_result *r)
{
  if (!r)
    return;
  if (r->booster) {
    XGBoosterFree(r->booster->h);
    free(r->booster);
  }
  memset(r, 0, sizeof(*r));
}

static int ends_with(const char *s, const char *suf)
{
  size_t a = strlen(s), b = strlen(suf);
  return a > b && !strcmp(s + a - b, suf);
}

enum err_code train_result_save(const struct train_result *r,
                                const char *path, struct err *e)
{
  if (!r || !r->booster || !path)
    return err_set(e, ERR_INVAL, "train: no model to save");
  if (!ends_with(path, ".ubj") && !ends_with(path, ".json"))
    return err_set(e, ERR_INVAL,
                   "train: model file %s must end in .ubj or .json", path);
  if (XGBoosterSaveModel(r->booster->h, path)) {
    enum err_code rc = model_xgb_error(e, "save");
    err_prefix(e, "%s", path);
    return rc;
  }
  return ERR_OK;
}

enum err_code train_result_to_buffer(const struct train_result *r,
                                    char **buf, size_t *len, struct err *e)
{
  if (!r || !r->booster || !buf || !len)
    return err_set(e, ERR_INVAL, "train: no model to serialise");
  bst_ulong n = 0;
  const char *raw = NULL;
  if (XGBoosterSaveModelToBuffer(r->booster->h, "{\"format\": \"ubj\"}", &n,
                                 &raw))
    return model_xgb_error(e, "save to buffer");
  *buf = malloc(n ? (size_t)n : 1);
  if (!*buf)
    return err_set(e, ERR_NOMEM, "train: out of memory");
  memcpy(*buf, raw, (size_t)n);
  *len = (size_t)n;
  return ERR_OK;
}

enum err_code train_result_load_buffer(const void *buf, size_t len,
                                       size_t nfeat, struct train_result *r,
                                       struct err *e)
{
  if (!buf || !len || !r)
    return err_set(e, ERR_INVAL, "train: empty model buffer");
  BoosterHandle h = NULL;
  if (XGBoosterCreate(NULL, 0, &h))
    return model_xgb_error(e, "create booster");
  if (XGBoosterLoadModelFromBuffer(h, buf, (bst_ulong)len)) {
    enum err_code rc = model_xgb_error(e, "load from buffer");
    XGBoosterFree(h);
    return rc;
  }
  r->booster = malloc(sizeof(*r->booster));
  if (!r->booster) {
    XGBoosterFree(h);
    return err_set(e, ERR_NOMEM, "train: out of memory");
  }
  r->booster->h = h;
  r->booster->nfeat = nfeat;
  return ERR_OK;
}

enum err_code train_comm_init(const char *uri, int port, int task_id,
                              int *rank, int *world, struct err *e)
{
  char cfg[512];
  if (!uri || port <= 0 ||
      snprintf(cfg, sizeof(cfg),
               "{\"DMLC_TRACKER_URI\": \"%s\", \"DMLC_TRACKER_PORT\": %d, "
               "\"DMLC_TASK_ID\": \"%d\"}",
               uri, port, task_id) >= (int)sizeof(cfg))
    return err_set(e, ERR_INVAL, "train: bad tracker address");
  if (XGCommunicatorInit(cfg)) {
    enum err_code rc = model_xgb_error(e, "join the tracker");
    err_prefix(e, "%s:%d", uri, port);
    return rc;
  }
  if (rank)
    *rank = XGCommunicatorGetRank();
  if (world)
    *world = XGCommunicatorGetWorldSize();
  return ERR_OK;
}

void train_comm_finalize(void)
{
  XGCommunicatorFinalize();
}

enum err_code train_result_predict(const struct train_result *r,
                                   const float *x, size_t n, size_t nfeat,
                                   float *out, size_t out_cap,
                                   size_t *n_out, struct err *e)
{
  if (!r || !r->booster || !x || !n || !out)
    return err_set(e, ERR_INVAL, "train: predict needs a model and rows");
  if (nfeat != r->booster->nfeat)
    return err_set(e, ERR_INVAL,
                   "train: rows have %zu features, model expects %zu",
                   nfeat, r->booster->nfeat);
  struct train_data d = {.nfeat = nfeat};
  DMatrixHandle dm;
  enum err_code rc = make_dmatrix(x, NULL, NULL, n, &d, 1, &dm, e);
  if (rc)
    return rc;
  float *pred = NULL;
  size_t np = 0;
  rc = predict_dm(r->booster->h, dm, &pred, &np, e);
  XGDMatrixFree(dm);
  if (rc)
    return rc;
  if (np > out_cap) {
    free(pred);
    return err_set(e, ERR_INVAL, "train: %zu predictions, room for %zu", np,
                   out_cap);
  }
  memcpy(out, pred, np * sizeof(float));
  free(pred);
  *n_out = np;
  return ERR_OK;
}

/* ---- metrics -------------------------------------------------------- */

#define LOGLOSS_EPS 1e-15

static double clip_p(double p)
{
  if (p < LOGLOSS_EPS)
    return LOGLOSS_EPS;
  if (p > 1 - LOGLOSS_EPS)
    return 1 - LOGLOSS_EPS;
  return p;
}

enum err_code train_eval_metrics(const char *objective, int num_class,
                                 const float *y, const float *pred,
                                 size_t n, struct train_metrics *m,
                                 struct err *e)
{
  m->accuracy = m->f1_macro = m->logloss = m->rmse = m->mae = NAN;
  if (!objective || !y || !pred || !n)
    return err_set(e, ERR_INVAL, "metrics: need objective and rows");
  enum obj_kind kind = obj_kind_of(objective);
  if (kind == OBJ_REG) {
    double se = 0, ae = 0;
    for (size_t i = 0; i < n; i++) {
      double d = (double)pred[i] - (double)y[i];
      se += d * d;
      ae += fabs(d);
    }
    m->rmse = sqrt(se / (double)n);
    m->mae = ae / (double)n;
    return ERR_OK;
  }
  int k = kind == OBJ_BINARY ? 2 : num_class;
  if (k < 2)
    return err_set(e, ERR_INVAL, "metrics: num_class %d < 2", num_class);
  int probs = !strcmp(objective, "multi:softprob");
  int bin_prob = !strcmp(objective, "binary:logistic");
  size_t *tp = calloc((size_t)k * 3, sizeof(size_t));
  if (!tp)
    return err_set(e, ERR_NOMEM, "metrics: out of memory");
  size_t *fp = tp + k, *fn = tp + 2 * k;
  size_t correct = 0;
  double ll = 0;
  enum err_code rc = ERR_OK;
  for (size_t i = 0; i < n; i++) {
    if (!is_class_label(y[i], k)) {
      rc = err_set(e, ERR_INVAL, "metrics: label %zu (%g) not in 0..%d", i,
                   (double)y[i], k - 1);
      goto out;
    }
    int t = (int)y[i], c;
    if (probs) {
      const float *pr = pred + i * (size_t)k;
      c = 0;
      for (int j = 1; j < k; j++)
        if (pr[j] > pr[c])
          c = j;
      ll -= log(clip_p(pr[t]));
    } else if (kind == OBJ_BINARY) {
      double pv = pred[i];
      if (bin_prob) {
        c = pv > 0.5;
        ll -= log(clip_p(t ? pv : 1 - pv));
      } else if (!strcmp(objective, "binary:logitraw")) {
        c = pv > 0;
      } else {
        c = pv > 0.5;
      }
    } else {
      c = (int)pred[i];
      if (!is_class_label(pred[i], k)) {
        rc = err_set(e, ERR_INVAL, "metrics: prediction %zu (%g) not a "
                                   "class", i, (double)pred[i]);
        goto out;
      }
    }
    if (c == t) {
      correct++;
      tp[t]++;
    } else {
      fp[c]++;
      fn[t]++;
    }
  }
  m->accuracy = (double)correct / (double)n;
  double f1 = 0;
  int present = 0;
  for (int j = 0; j < k; j++) {
    size_t den = 2 * tp[j] + fp[j] + fn[j];
    if (!den)
      continue; /* class in neither labels nor predictions */
    present++;
    f1 += 2.0 * (double)tp[j] / (double)den;
  }
  m->f1_macro = present ? f1 / present : NAN;
  if (probs || bin_prob)
    m->logloss = ll / (double)n;
out:
  free(tp);
  return rc;
}

/* ---- grid search ---------------------------------------------------- */

enum err_code train_select_parse(const char *s, enum train_select *out,
                                 struct err *e)
{
  static const char *const names[] = {"accuracy", "f1_macro", "logloss",
                                      "rmse"};
  for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
    if (!strcmp(s, names[i])) {
      *out = (enum train_select)i;
      return ERR_OK;
    }
  return err_set(e, ERR_INVAL,
                 "unknown selection metric \"%s\" (accuracy, f1_macro, "
                 "logloss, rmse)", s ? s : "(null)");
}

size_t train_grid_size(const struct train_grid_axis *axes, size_t n_axes)
{
  size_t n = 1;
  for (size_t i = 0; i < n_axes; i++)
    n *= axes[i].n_values;
  return n;
}

enum err_code train_grid_params(const struct train_params *base,
                                const struct train_grid_axis *axes,
                                size_t n_axes, size_t index,
                                struct train_kv *kv, size_t cap,
                                size_t *n_kv, struct err *e)
{
  size_t total = train_grid_size(axes, n_axes);
  if (index >= total)
    return err_set(e, ERR_INVAL, "grid: trial %zu of %zu", index, total);
  if (base->n_params > cap)
    return err_set(e, ERR_INVAL, "grid: no room for parameters");
  size_t n = base->n_params;
  if (n)
    memcpy(kv, base->params, n * sizeof(*kv));
  size_t rest = index;
  /* Last axis fastest: peel digits from the end. */
  for (size_t a = n_axes; a-- > 0;) {
    const struct train_grid_axis *ax = &axes[a];
    const char *val = ax->values[rest % ax->n_values];
    rest /= ax->n_values;
    size_t j;
    for (j = 0; j < n; j++)
      if (!strcmp(kv[j].key, ax->name))
        break;
    if (j == n) {
      if (n == cap)
        return err_set(e, ERR_INVAL, "grid: no room for parameters");
      n++;
    }
    kv[j].key = ax->name;
    kv[j].value = val;
  }
  *n_kv = n;
  return ERR_OK;
}

int train_better(enum train_select sel, const struct train_metrics *a,
                 const struct train_metrics *b)
{
  switch (sel) {
  case TRAIN_SELECT_ACCURACY:
    return a->accuracy > b->accuracy || (isnan(b->accuracy) &&
                                         !isnan(a->accuracy));
  case TRAIN_SELECT_F1_MACRO:
    return a->f1_macro > b->f1_macro || (isnan(b->f1_macro) &&
                                         !isnan(a->f1_macro));
  case TRAIN_SELECT_LOGLOSS:
    return a->logloss < b->logloss || (isnan(b->logloss) &&
                                       !isnan(a->logloss));
  case TRAIN_SELECT_RMSE:
    return a->rmse < b->rmse || (isnan(b->rmse) && !isnan(a->rmse));
  }
  return 0;
}

enum err_code train_grid(const struct train_data *d,
                         const struct train_params *base,
                         const struct train_grid_axis *axes, size_t n_axes,
                         enum train_select sel, train_trial_fn on_trial,
                         void *ud, struct train_result *best,
                         size_t *best_index, struct err *e)
{
  memset(best, 0, sizeof(*best));
  if (!d || !base || (n_axes && !axes))
    return err_set(e, ERR_INVAL, "grid: NULL argument");
  for (size_t a = 0; a < n_axes; a++)
    if (!axes[a].name || !axes[a].n_values || !axes[a].values)
      return err_set(e, ERR_INVAL, "grid: axis %zu has no values", a);
  size_t total = train_grid_size(axes, n_axes), cap = base->n_params + n_axes;
  struct train_kv *kv = malloc((cap ? cap : 1) * sizeof(*kv));
  if (!kv)
    return err_set(e, ERR_NOMEM, "grid: out of memory");
  enum err_code rc = ERR_OK;
  for (size_t i = 0; i < total; i++) {
    size_t n_kv;
    if ((rc = train_grid_params(base, axes, n_axes, i, kv, cap, &n_kv, e)))
      break;
    struct train_params tp = *base;
    tp.params = kv;
    tp.n_params = n_kv;
    struct train_result r;
    if ((rc = train_fit(d, &tp, &r, e))) {
      err_prefix(e, "trial %zu of %zu", i + 1, total);
      break;
    }
    int stop = on_trial ? on_trial(ud, i, total, kv, n_kv, &r) : 0;
    if (!best->booster || train_better(sel, &r.metrics, &best->metrics)) {
      train_result_free(best);
      *best = r;
      if (best_index)
        *best_index = i;
    } else {
      train_result_free(&r);
    }
    if (stop) {
      rc = err_set(e, ERR_CANCELED, "grid: stopped after trial %zu of %zu",
                   i + 1, total);
      break;
    }
  }
  free(kv);
  if (rc)
    train_result_free(best);
  return rc;
}
