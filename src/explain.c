/* explain.c - reason codes: contributions per input field (see
 * explain.h).
 *
 * Why fold in double: a categorical field has up to a few hundred
 * columns, most contributing tiny amounts; summing them in float would
 * lose digits the client compares with the margin. */
#include "mlopsd/explain.h"

#include <math.h>
#include <stdlib.h>

#include "mlopsd/model.h"
#include "mlopsd/prep.h"

/* The output columns [*lo, *hi) of input field i. */
static void input_range(const struct prep *p, size_t i, size_t *lo,
                        size_t *hi)
{
  *lo = prep_input_offset(p, i);
  *hi = i + 1 < prep_n_inputs(p) ? prep_input_offset(p, i + 1)
                                 : prep_n_outputs(p);
}

/* per_input[i] = the sum, in double and column order, of input i's
 * columns of one of the float columns f or the double columns d (the
 * other is NULL): the two public folds differ only in the column type. */
static void fold_inputs(const struct prep *p, const float *f,
                        const double *d, double *per_input)
{
  size_t lo, hi;
  for (size_t i = 0; i < prep_n_inputs(p); i++) {
    double s = 0;
    input_range(p, i, &lo, &hi);
    for (size_t j = lo; j < hi; j++)
      s += f ? (double)f[j] : d[j];
    per_input[i] = s;
  }
}

void explain_fold(const struct prep *p, const float *contrib,
                  double *per_input, double *bias)
{
  fold_inputs(p, contrib, NULL, per_input);
  *bias = contrib[prep_n_outputs(p)];
}

void explain_fold_columns(const struct prep *p, const double *per_col,
                          double *per_input)
{
  fold_inputs(p, NULL, per_col, per_input);
}

void explain_rank(const double *v, size_t n, size_t *idx)
{
  /* insertion sort: n is the number of input fields (tens), and it is
   * stable without a comparator context */
  for (size_t i = 0; i < n; i++) {
    size_t j = i;
    double a = fabs(v[i]);
    while (j > 0 && fabs(v[idx[j - 1]]) < a) {
      idx[j] = idx[j - 1];
      j--;
    }
    idx[j] = i;
  }
}

void explain_mean_abs(const struct prep *p, const float *contribs,
                      size_t n_rows, size_t groups, double *scratch,
                      double *mean_abs)
{
  size_t ni = prep_n_inputs(p), w = prep_n_outputs(p) + 1;
  for (size_t i = 0; i < ni; i++)
    mean_abs[i] = 0;
  size_t cnt = n_rows * groups;
  for (size_t r = 0; r < cnt; r++) {
    double bias;
    explain_fold(p, contribs + r * w, scratch, &bias);
    for (size_t i = 0; i < ni; i++)
      mean_abs[i] += fabs(scratch[i]);
  }
  for (size_t i = 0; cnt && i < ni; i++)
    mean_abs[i] /= (double)cnt;
}

enum err_code explain_importance_json(const struct model *m,
                                      const struct prep *p,
                                      const float *rows, size_t n,
                                      const char *split, cJSON **out,
                                      struct err *e)
{
  *out = NULL;
  size_t ni = prep_n_inputs(p), nf = prep_n_outputs(p);
  if (!n || !rows || model_nfeat(m) != nf)
    return err_set(e, ERR_INVAL, "importance: %zu rows of %zu columns for "
                                 "a model of %zu", n, nf, model_nfeat(m));
  if (n > EXPLAIN_IMPORTANCE_MAX_ROWS)
    n = EXPLAIN_IMPORTANCE_MAX_ROWS;
  size_t G = model_num_group(m);
  float *c = malloc(n * G * (nf + 1) * sizeof(*c));
  double *buf = malloc((3 * ni + nf) * sizeof(*buf));
  size_t *idx = malloc(ni * sizeof(*idx));
  enum err_code rc = ERR_OK;
  if (!c || !buf || !idx) {
    rc = err_set(e, ERR_NOMEM, "importance: out of memory");
    goto out;
  }
  double *shap = buf, *scratch = buf + ni, *gain = buf + 2 * ni,
         *gcol = buf + 3 * ni;
  if ((rc = model_contribs(m, rows, n, c, e)) ||
      (rc = model_gain(m, gcol, e)))
    goto out;
  explain_mean_abs(p, c, n, G, scratch, shap);
  explain_fold_columns(p, gcol, gain);
  double total = 0;
  for (size_t i = 0; i < ni; i++)
    total += gain[i];
  explain_rank(shap, ni, idx);
  cJSON *o = cJSON_CreateObject(), *fields;
  if (!o || !cJSON_AddNumberToObject(o, "rows", (double)n) ||
      !cJSON_AddStringToObject(o, "split", split ? split : "") ||
      !(fields = cJSON_AddArrayToObject(o, "fields"))) {
    cJSON_Delete(o);
    rc = err_set(e, ERR_NOMEM, "importance: out of memory");
    goto out;
  }
  for (size_t r = 0; r < ni; r++) {
    size_t i = idx[r];
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddItemToArray(fields, f) ||
        !cJSON_AddStringToObject(f, "field", prep_input_name(p, i)) ||
        !cJSON_AddNumberToObject(f, "mean_abs_shap", shap[i]) ||
        !cJSON_AddNumberToObject(f, "gain", gain[i]) ||
        !cJSON_AddNumberToObject(f, "gain_share",
                                 total > 0 ? gain[i] / total : 0)) {
      cJSON_Delete(o);
      rc = err_set(e, ERR_NOMEM, "importance: out of memory");
      goto out;
    }
  }
  *out = o;
out:
  free(c);
  free(buf);
  free(idx);
  return rc;
}
