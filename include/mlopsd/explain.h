/* explain.h - reason codes (issue 13): TreeSHAP contributions of the
 * model's output columns folded back to the request's input fields.
 *
 * XGBoost explains its own columns: one per numeric input, one per
 * vocabulary value (plus "#unknown") of a categorical or text input
 * (prep.h).  A user sent fields, so a field's contribution is the sum of
 * its columns' contributions; SHAP values are additive, so the fields'
 * contributions plus the bias still sum to the margin.
 *
 * The fold/rank functions are pure (any thread) and allocate nothing;
 * explain_importance_json (training time) allocates.
 */
#ifndef MLOPSD_EXPLAIN_H
#define MLOPSD_EXPLAIN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"

struct prep;
struct model;

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

/* Rows scored by explain_importance_json at most (the first ones). */
#define EXPLAIN_IMPORTANCE_MAX_ROWS 2000

/* Global importance of a version for meta.json: {"rows": N, "split":
 * split, "fields": [{"field", "mean_abs_shap", "gain", "gain_share"},
 * ...]} with one entry per input field of p, sorted by mean_abs_shap
 * (descending, ties in input order): mean_abs_shap as explain_mean_abs
 * over rows (n x model_nfeat(m) floats, at most
 * EXPLAIN_IMPORTANCE_MAX_ROWS used), gain XGBoost's total gain of the
 * field's columns (model_gain) and gain_share its share of all gain.
 * Any thread.  Errors: ERR_INVAL (no rows, shapes differ), ERR_NOMEM,
 * those of model_contribs / model_gain. */
enum err_code explain_importance_json(const struct model *m,
                                      const struct prep *p,
                                      const float *rows, size_t n,
                                      const char *split, cJSON **out,
                                      struct err *e) MLOPSD_WUR;

#endif
