/* explain.c - reason codes: contributions per input field (see
 * explain.h).
 *
 * Why fold in double: a categorical field has up to a few hundred
 * columns, most contributing tiny amounts; summing them in float would
 * lose digits the client compares with the margin. */
#include "mlopsd/explain.h"

#include <math.h>

#include "mlopsd/prep.h"

void explain_fold(const struct prep *p, const float *contrib,
                  double *per_input, double *bias)
{
  size_t ni = prep_n_inputs(p), no = prep_n_outputs(p);
  for (size_t i = 0; i < ni; i++) {
    size_t lo = prep_input_offset(p, i);
    size_t hi = i + 1 < ni ? prep_input_offset(p, i + 1) : no;
    double s = 0;
    for (size_t j = lo; j < hi; j++)
      s += contrib[j];
    per_input[i] = s;
  }
  *bias = contrib[no];
}

void explain_fold_columns(const struct prep *p, const double *per_col,
                          double *per_input)
{
  size_t ni = prep_n_inputs(p), no = prep_n_outputs(p);
  for (size_t i = 0; i < ni; i++) {
    size_t lo = prep_input_offset(p, i);
    size_t hi = i + 1 < ni ? prep_input_offset(p, i + 1) : no;
    double s = 0;
    for (size_t j = lo; j < hi; j++)
      s += per_col[j];
    per_input[i] = s;
  }
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
