/* psi.h - Population Stability Index: how far the inputs a model sees in
 * production moved from the inputs it was trained on (docs/monitoring.md).
 *
 * The training side is a version's reference.json, written by the
 * training pipeline (src/pipeline.c, build_reference): per-feature
 * histograms of the training split.  psi_ref_from_json() reads it.  The
 * live side is a psi_live accumulator fed one request object at a time
 * (the `features` JSON of credit_predictions_api_log); psi_live_score()
 * gives each feature's PSI against the reference.
 *
 *   PSI = sum over bins i of (a_i - e_i) * ln(a_i / e_i)
 *
 * with e_i the reference share and a_i the live share of bin i.  A share
 * of 0 would make the log infinite, so every share is floored at PSI_EPS
 * (1e-4, the usual choice) before the sum; shares are not renormalised
 * afterwards.  A bin empty on both sides adds exactly 0.
 *
 * Each feature gets two comparisons:
 *   value_psi    PSI of the value bins among present values (each side's
 *                shares renormalised over its present rows);
 *   missing_psi  PSI of the two shares (missing, present).  Missing means
 *                JSON null, an absent member, or a numeric feature given
 *                something other than a number.
 * and its score is
 *   psi = value_psi + (missing_live > missing_ref ? missing_psi : 0)
 * The missing part counts one way only: the server rejects requests that
 * lack a required field, so served rows have fewer missing values than
 * the training table as a matter of course (the sample data: up to 21%
 * missing in training, none in requests); more missing values than in
 * training is a data-quality regression and counts.  When one side has no
 * present value at all, psi = missing_psi.  Value bins per kind:
 *   numeric      reference.json's edges are the quantiles 0, 0.1, ...,
 *                1 of the training values (min and max at the ends; ties
 *                repeat an edge).  Bin j holds e_j <= x < e_{j+1}; values
 *                below the first edge fall in the first bin and values at
 *                or above the last inner edge in the last
 *                (numpy.digitize over the inner edges, right=False).
 *   categorical  one bin per reference category, and an "unseen" bin for
 *                values the reference does not list (its reference share
 *                is other_share: categories beyond the most frequent
 *                1000); a value that is not a string is unseen too.
 *   text         token shares: every token occurrence of a present value
 *                (split on the feature's delimiters, empty tokens
 *                dropped) counts once in its token's bin or in "unseen";
 *                a present value made of delimiters only adds no token
 *                (as in pipeline.c).
 *
 * The test.  PSI alone cannot tell drift from noise: the PSI of a window
 * drawn from the reference population itself shrinks like (k - 1)(1/n +
 * 1/m) (n window rows, m reference rows, k bins), so a fixed PSI bar
 * fires on noise in small windows.  Each feature is therefore also
 * tested, window against reference, by Pearson's chi-square test of
 * homogeneity (2 x k table, no continuity correction) on its value bins
 * among present rows (reference counts: shares x m; a text feature's
 * token counts are scaled so its present rows count once each between
 * their tokens, which keeps the many tokens of one row from passing for
 * independent draws; bins expected to hold fewer than PSI_MIN_EXPECTED
 * window rows are pooled into one, the unseen bin with them), and, when
 * the window has more missing values than the reference, by the
 * one-sided 2 x 2 test of the missing shares; with both, p = min(1, 2
 * min(p_value, p_missing)).  The p-values of all features are adjusted
 * by Holm's method (stats_holm), and a feature drifts when its adjusted
 * p is below alpha AND its PSI is above min_psi: a real change that is
 * also big enough to matter.  Under no drift the chance that a window
 * reports drift is then at most alpha (as far as the chi-square law
 * holds; tests/integration/test_drift.c measures it on resampled
 * training rows).
 *
 * Thread rule: a struct psi_ref is immutable after loading and may be read
 * from any number of threads; a struct psi_live belongs to one thread.
 */
#ifndef MLOPSD_PSI_H
#define MLOPSD_PSI_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/spec.h"

#define PSI_EPS 1e-4          /* share floor for empty bins */
#define PSI_TEXT_DELIMS ", _" /* text delimiters without a spec */
#define PSI_FORMAT "mlopsd.reference"
#define PSI_FORMAT_VERSION 1
#define PSI_LABEL_MAX 96      /* bin labels in scores */
#define PSI_MIN_EXPECTED 5.0  /* expected window rows of a tested bin */

/* ---- the arithmetic ---------------------------------------------------- */

/* PSI of two histograms over the same n bins, given as counts (any
 * non-negative scale: each side is divided by its own total).  Shares are
 * floored at eps (pass PSI_EPS).  contrib (may be NULL) gets each bin's
 * term.  Returns NaN when a side's total is 0 or n == 0. */
double psi_counts(const double *expected, const double *actual, size_t n,
                  double eps, double *contrib);

/* The bin of x for sorted cut points edges[0..n-1]: the number of edges
 * <= x (0..n).  x must not be NaN. */
size_t psi_bin(const double *edges, size_t n, double x);

/* ---- the reference ----------------------------------------------------- */

struct psi_ref; /* opaque, immutable */

/* Parse and check a reference.json document (format, version, every
 * field: edges in order, shares or counts matching the edges, shares in
 * [0, 1]).  A text feature is split on its own "delimiters" member if the
 * reference has one, else on the delimiters of the same input in the
 * version's preprocess.json document (preprocess, may be NULL), else on
 * PSI_TEXT_DELIMS.  what names the file in messages
 * ("NAME/versions/3/reference.json").  *out: psi_ref_destroy.
 * Errors: ERR_PARSE (wrong shape: the message names the field),
 * ERR_NOMEM. */
MLOPSD_WUR enum err_code psi_ref_from_json(const cJSON *root,
                                           const cJSON *preprocess,
                                           const char *what,
                                           struct psi_ref **out,
                                           struct err *e);
void psi_ref_destroy(struct psi_ref *r); /* NULL-safe */

size_t psi_ref_n_features(const struct psi_ref *r);
/* Feature i's name (borrowed for r's lifetime) and kind. */
const char *psi_ref_feature_name(const struct psi_ref *r, size_t i);
enum spec_kind psi_ref_feature_kind(const struct psi_ref *r, size_t i);
/* Rows the reference was built from. */
double psi_ref_rows(const struct psi_ref *r);

/* ---- the live side ----------------------------------------------------- */

struct psi_live; /* opaque: counts per bin of every reference feature */

/* ref is borrowed and must outlive the accumulator.  ERR_NOMEM. */
MLOPSD_WUR enum err_code psi_live_create(const struct psi_ref *ref,
                                         struct psi_live **out,
                                         struct err *e);
void psi_live_destroy(struct psi_live *l); /* NULL-safe */

/* Count one request object ({"age": 18, "occupation": "Lawyer", ...}).
 * Members the reference does not know are ignored; a feature absent or
 * null is missing.  Returns 0, or -1 (nothing counted) when obj is not a
 * JSON object. */
int psi_live_add(struct psi_live *l, const cJSON *obj);
size_t psi_live_rows(const struct psi_live *l);

/* One feature's comparison. */
struct psi_score {
  const char *name;      /* borrowed from the reference */
  enum spec_kind kind;
  double psi;            /* the score (see top); NaN: no live rows */
  double value_psi;      /* value bins among present values; NaN if a
                            side has no present value */
  double missing_psi;    /* (missing, present) shares, both ways */
  double missing_ref;    /* share of missing rows, reference */
  double missing_live;   /* share of missing rows, live */
  size_t n_bins;         /* value bins + the missing bin */
  double top_contrib;    /* the largest term: a value bin's, or
                            missing_psi when it counts */
  char top_bin[PSI_LABEL_MAX]; /* its label: "[1.5, 2.25)", "<1.5",
                                  ">=9", "Lawyer", "(unseen)",
                                  "(missing)" */
  double top_ref, top_live;    /* that bin's shares (unfloored) */
  double chi2;           /* the value bins' statistic (0: not tested) */
  int df;                /* its degrees of freedom */
  double p_value;        /* the feature's p (see top; 1: nothing to
                            test) */
};

/* Score feature i (0 <= i < psi_ref_n_features).  ERR_INVAL for a bad i,
 * ERR_NOMEM. */
MLOPSD_WUR enum err_code psi_live_score(const struct psi_live *l, size_t i,
                                        struct psi_score *out,
                                        struct err *e);

/* The window's verdict over all features (psi_live_scores_json). */
struct psi_summary {
  double max_psi;      /* the largest feature PSI; NaN with no rows */
  int worst;           /* its index, -1 if none */
  int drifted;         /* of the features that drift (Holm-adjusted p <
                          alpha and PSI > min_psi) the one with the
                          largest PSI; -1: no drift */
  size_t n_drifted;    /* how many drift */
  double drifted_psi;  /* its PSI and adjusted p */
  double drifted_p;
};

/* Every feature's score as JSON (drift_report.scores.features):
 * {"age": {"psi": 0.01, "value_psi": 0.01, "missing_psi": 0,
 * "kind": "numeric", "missing_ref": 0, "missing_live": 0, "chi2": 9.1,
 * "df": 9, "p": 0.43, "p_holm": 1, "top_bin": "[30, 34)", "top_ref": 0.1,
 * "top_live": 0.2}, ...} and the verdict at family-wise level alpha
 * with the effect floor min_psi (see top) in *sum; alpha >= 1 turns the
 * tests off (PSI > min_psi alone, the rule before them).  *out:
 * cJSON_Delete.
 * ERR_NOMEM. */
MLOPSD_WUR enum err_code psi_live_scores_json(const struct psi_live *l,
                                              double alpha, double min_psi,
                                              cJSON **out,
                                              struct psi_summary *sum,
                                              struct err *e);

#endif
