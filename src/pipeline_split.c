/* pipeline_split.c - the three-way split of the training rows and the calibration
 * step of pipeline_train (see pipeline.c).
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
#include "mlopsd/hash.h"
#include "mlopsd/fstore.h"
#include "mlopsd/fsx.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"


#include "pipeline_int.h"

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
  uint64_t st = hash_fnv1a(u, strlen(u)) ^ (seed * 0x9E3779B97F4A7C15ULL) ^ salt;
  return (double)(prep_splitmix64(&st) >> 11) * 0x1.0p-53;
}

/* Train / valid / gate.  Without a gate fraction or group_by: the
 * documented prep_split of all rows (no gate).  With group_by: each
 * group's hash puts it in gate (< gate_fraction), else valid (a second
 * hash < val_fraction), else train.  Without group_by: gate by the row
 * key's hash, then prep_split (stratified if asked) of the other rows.
 * val_fraction is a share of the rows outside the gate split. */
enum err_code pipeline_split_three(const struct spec *sp,
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

/* Metrics of the kept model on rows x (n x nout); n == 0: all NaN. */
enum err_code pipeline_split_metrics(struct ptrain *T, const float *x,
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
    pipeline_add_num(o, "confidence", b[i].confidence);
    pipeline_add_num(o, "accuracy", b[i].accuracy);
    cJSON_AddNumberToObject(o, "count", (double)b[i].count);
  }
  return a;
}

/* Calibration (calib.h): fit the temperature on the gate split (the
 * validation split without one), write calibration.json into the draft
 * and give meta.json's "calibration" object (*out, NULL for regression).
 * model_predict applies the file, so every consumer of the version gets
 * the calibrated probabilities. */
enum err_code ptrain_calibrate(struct ptrain *T, cJSON **out)
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
  if (!(rc = pipeline_draft_path(T->draft, CALIB_FILE, path, sizeof(path),
                                 T->e)))
    rc = pipeline_write_json(path, f, 1, T->e);
  cJSON_Delete(f);
  if (rc) {
    cJSON_Delete(m);
    return rc;
  }
  cJSON_AddStringToObject(m, "method", "temperature");
  pipeline_add_num(m, "temperature", t);
  cJSON_AddStringToObject(m, "split", split);
  cJSON_AddNumberToObject(m, "rows", (double)n);
  pipeline_add_num(m, "ece_before", ece0);
  pipeline_add_num(m, "ece_after", ece1);
  pipeline_add_num(m, "brier_before", br0);
  pipeline_add_num(m, "brier_after", br1);
  cJSON_AddItemToObject(m, "bins", bins_json(b1));
  cJSON_AddItemToObject(m, "bins_before", bins_json(b0));
  pipeline_plog(T->o,
                "calibration on the %zu %s rows: temperature %.4f, ECE %.4f "
                "-> %.4f, Brier %.4f -> %.4f",
                n, split, t, ece0, ece1, br0, br1);
  *out = m;
  return ERR_OK;
}
