/* explain.h - reason codes (issue 13): TreeSHAP contributions of the
 * model's output columns folded back to the request's input fields.
 *
 * XGBoost explains its own columns: one per numeric input, one per
 * vocabulary value (plus "#unknown") of a categorical or text input
 * (prep.h).  A user sent fields, so a field's contribution is the sum of
 * its columns' contributions; SHAP values are additive, so the fields'
 * contributions plus the bias still sum to the margin.
 *
 * All functions are pure (any thread) and allocate nothing.
 */
#ifndef MLOPSD_EXPLAIN_H
#define MLOPSD_EXPLAIN_H

#include <stddef.h>

struct prep;

/* Reason codes listed when a request asks for an explanation without
 * saying how many. */
#define EXPLAIN_TOP_K_DEFAULT 5

/* Fold one row's contributions to one margin (prep_n_outputs(p) + 1
 * floats, the bias last, as model_contribs gives them) per input field:
 * per_input[i] (prep_n_inputs(p) doubles) = the sum of input i's columns
 * in column order, in double; *bias = the last value. */
void explain_fold(const struct prep *p, const float *contrib,
                  double *per_input, double *bias);

/* Fold per-column values (prep_n_outputs(p) doubles, e.g. XGBoost's
 * total gain per column) into per_input (prep_n_inputs(p) doubles). */
void explain_fold_columns(const struct prep *p, const double *per_col,
                          double *per_input);

/* idx[0..n) = 0..n-1 ordered by |v| descending, ties by index (stable,
 * so the answer is the same for the same request). */
void explain_rank(const double *v, size_t n, size_t *idx);

/* Global importance: mean_abs[i] (prep_n_inputs(p) doubles) = the mean,
 * over n_rows rows and their groups margins, of |input i's folded
 * contribution|.  contribs holds n_rows * groups * (prep_n_outputs(p) +
 * 1) floats (model_contribs' layout); scratch needs prep_n_inputs(p)
 * doubles. */
void explain_mean_abs(const struct prep *p, const float *contribs,
                      size_t n_rows, size_t groups, double *scratch,
                      double *mean_abs);

#endif
