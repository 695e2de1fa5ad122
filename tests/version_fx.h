/* version_fx.h - a small model version made by hand, for the daemon tests
 * that need a registry without running the pipeline (test_admin.c,
 * test_serve.c): a prep fitted on a 70/30 split of the given rows (seed
 * 42), an XGBoost multi:softprob booster of a given depth and rounds
 * trained on it (eta 0.3, hist, seed 7, one thread), and the draft files
 * a version holds (model.ubj, preprocess.json, JSON files).
 *
 *   struct fx_fit f;
 *   int ok = fx_fit(sp, &in, y, 2, 8, &f, &e) == 0 &&
 *            fx_draft_begin(reg, MODEL, &f, &d, &e) == 0 &&
 *            fx_draft_json(d, "meta.json", meta, 1, &e) == 0;
 *   rc = fx_version_end(&f, &d, ok, &version, &e);
 *
 * Ownership: the caller owns f (fx_fit_free) and the draft (commit or
 * abort); fx_draft_json takes the cJSON it is given.  f.kv points into f:
 * do not copy f.  Test thread only.
 */
#ifndef MLOPSD_TEST_VERSION_FX_H
#define MLOPSD_TEST_VERSION_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/fsx.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/train.h"

struct fx_fit {
  struct prep *pp;          /* fitted on the training split */
  struct train_result res;  /* the booster and its validation metrics */
  size_t ntr, nva;          /* rows in the two splits */
  char depth[16];
  struct train_kv kv[4];    /* the booster's params (values in f) */
};

static inline void fx_fit_free(struct fx_fit *f)
{
  train_result_free(&f->res);
  prep_destroy(f->pp);
  f->pp = NULL;
}

/* Fit a prep and train a booster of DEPTH and ROUNDS on the rows of IN
 * with labels Y (class indices of SP), split 70/30.  0, or -1 with E set;
 * free F with fx_fit_free either way. */
static inline int fx_fit(const struct spec *sp, const struct prep_input *in,
                         const float *y, int depth, int rounds,
                         struct fx_fit *f, struct err *e)
{
  size_t *tr = NULL, *va = NULL;
  float *xtr = NULL, *xva = NULL, *ytr = NULL, *yva = NULL;
  const char **names = NULL;
  int rc = -1;
  memset(f, 0, sizeof(*f));
  snprintf(f->depth, sizeof(f->depth), "%d", depth);
  f->kv[0] = (struct train_kv){"max_depth", f->depth};
  f->kv[1] = (struct train_kv){"eta", "0.3"};
  f->kv[2] = (struct train_kv){"tree_method", "hist"};
  f->kv[3] = (struct train_kv){"seed", "7"};
  if (prep_split(in->n_rows, 0.3, 42, &tr, &f->ntr, &va, &f->nva, e) ||
      prep_fit(sp, in, tr, f->ntr, &f->pp, e))
    goto out;
  size_t no = prep_n_outputs(f->pp);
  xtr = malloc(f->ntr * no * sizeof(float));
  xva = malloc(f->nva * no * sizeof(float));
  ytr = malloc(f->ntr * sizeof(float));
  yva = malloc(f->nva * sizeof(float));
  names = malloc(no * sizeof(char *));
  if (!xtr || !xva || !ytr || !yva || !names) {
    err_set(e, ERR_NOMEM, "fx_fit: out of memory");
    goto out;
  }
  if (prep_transform_rows(f->pp, in, tr, f->ntr, xtr, e) ||
      prep_transform_rows(f->pp, in, va, f->nva, xva, e))
    goto out;
  for (size_t i = 0; i < f->ntr; i++)
    ytr[i] = y[tr[i]];
  for (size_t i = 0; i < f->nva; i++)
    yva[i] = y[va[i]];
  for (size_t j = 0; j < no; j++)
    names[j] = prep_output_name(f->pp, j);
  struct train_data td = {xtr,  ytr, f->ntr, xva,  yva, f->nva,
                          no,   names, NULL, NULL};
  struct train_params tp = {.objective = "multi:softprob",
                            .num_class = 3,
                            .params = f->kv,
                            .n_params = 4,
                            .num_boost_round = rounds,
                            .nthread = 1};
  rc = train_fit(&td, &tp, &f->res, e) == ERR_OK ? 0 : -1;
out:
  free(xtr);
  free(xva);
  free(ytr);
  free(yva);
  free(names);
  free(tr);
  free(va);
  return rc;
}

/* The booster's params as a JSON object (meta.json's "params"). */
static inline cJSON *fx_fit_params(const struct fx_fit *f)
{
  cJSON *par = cJSON_CreateObject();
  for (size_t i = 0; i < 4; i++)
    cJSON_AddStringToObject(par, f->kv[i].key, f->kv[i].value);
  return par;
}

/* Begin a version of MODEL in REG holding F's model.ubj and
 * preprocess.json; 0, or -1 with E set (*d, when not NULL, is the caller's
 * to abort). */
static inline int fx_draft_begin(struct registry *reg, const char *model,
                                 const struct fx_fit *f,
                                 struct registry_draft **d, struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  *d = NULL;
  if (registry_version_begin(reg, model, d, e) ||
      registry_draft_path(*d, "model.ubj", path, sizeof(path), e) ||
      train_result_save(&f->res, path, e) ||
      registry_draft_path(*d, "preprocess.json", path, sizeof(path), e) ||
      prep_save_json(f->pp, path, e))
    return -1;
  return 0;
}

/* Write J (taken over, freed here) as the draft's file NAME, formatted or
 * on one line; 0, or -1 with E set. */
static inline int fx_draft_json(struct registry_draft *d, const char *name,
                                cJSON *j, int formatted, struct err *e)
{
  char path[REGISTRY_PATH_MAX];
  char *txt = formatted ? cJSON_Print(j) : cJSON_PrintUnformatted(j);
  cJSON_Delete(j);
  if (!txt)
    return err_set(e, ERR_NOMEM, "%s: cannot format", name), -1;
  int rc = registry_draft_path(d, name, path, sizeof(path), e) ||
                   fsx_write_atomic(path, txt, strlen(txt), e)
               ? -1
               : 0;
  free(txt);
  return rc;
}

/* The end of a hand-made version: the draft *D committed (number in
 * *VERSION) when OK, else aborted; F freed.  0, or -1 with what failed
 * (E) on stderr. */
static inline int fx_version_end(struct fx_fit *f, struct registry_draft **d,
                                 int ok, int *version, struct err *e)
{
  int rc = -1;
  if (ok)
    rc = registry_version_commit(*d, version, e) == ERR_OK ? 0 : -1;
  else
    registry_version_abort(*d);
  *d = NULL;
  if (rc)
    fprintf(stderr, "make_version: %s\n", e->msg);
  fx_fit_free(f);
  return rc;
}

#endif
