/* compare.h - production against its shadow challenger over the logged
 * predictions (docs/serving.md "Shadow challenger", `mlopsd models
 * compare`, GET /api/v2/models/{name}/compare).
 *
 * Pairs: every row of prediction_shadow whose logged row (same
 * log_source, log_seq in credit_predictions_api_log) was answered by the
 * production version, for the shadow version compared.  Agreement is the
 * share of pairs with the same prediction.
 *
 * Accuracy: the labels are the label-feedback task's (task_feedback.c):
 * the credit_score row of the logged customer_id dated in the calendar
 * month of created_at (UTC; the latest if several).  A customer counts
 * once per month (the latest logged pair), so repeated requests for one
 * customer do not weigh several times.  On the labelled pairs the
 * decision is the validate gate's (stats_paired_gate: exact McNemar,
 * conditional Clopper-Pearson bound on shadow minus production accuracy,
 * the power-derived row count), with the model spec's
 * validate.max_regression and validate.confidence and at least
 * PIPELINE_MIN_ROWS pairs.
 *
 * Thread rule: no state; any thread, one db connection per call.
 */
#ifndef MLOPSD_COMPARE_H
#define MLOPSD_COMPARE_H

#include <stddef.h>

#include "mlopsd/err.h"
#include "mlopsd/stats.h"

struct db_pool;
struct registry;
struct cJSON;
struct pipeline_verdict;
struct pipeline_gate_opts;

struct compare_result {
  char model[129];
  int production, shadow;    /* versions compared */
  long pairs, agree;         /* logged pairs, with the same prediction */
  long customers;            /* pairs after one per customer and month */
  long labelled, unlabelled; /* of those, with a label / without yet */
  long prod_correct, shadow_correct;
  long b, c;                 /* only the shadow right / only production */
  double max_regression, level;
  long min_rows;             /* the most of PIPELINE_MIN_ROWS and the
                                power-derived count */
  struct stats_paired paired;
  int pass;                  /* promotion would be allowed */
  char reason[400];          /* why (or why not), one line */
};

/* The versions to compare for model name: production and staging as the
 * registry's aliases say now.  Errors (messages name the model):
 * ERR_INVAL (not a model name), ERR_NOTFOUND (no such model, no
 * production version, no staging version, or staging is production). */
MLOPSD_WUR enum err_code compare_versions(struct registry *reg,
                                          const char *name, int *production,
                                          int *shadow, struct err *e);

/* Compare versions production and shadow of name over the log (above);
 * specs_dir gives the spec's decision parameters (defaults 0.02 and 0.95
 * when the spec cannot be read).  Errors: ERR_DB / ERR_DB_CONN (message
 * says which query), ERR_NOMEM. */
MLOPSD_WUR enum err_code compare_run(struct db_pool *db, const char *specs_dir,
                                     const char *name, int production,
                                     int shadow, struct compare_result *r,
                                     struct err *e);

/* The result as JSON (caller frees with cJSON_Delete); NULL when out of
 * memory.  Keys: model, production_version, shadow_version, pairs,
 * agreement {agree, rate}, labels {customers, labelled, unlabelled,
 * production_accuracy, shadow_accuracy, b, c}, test {difference,
 * interval, level, p_value, max_regression, min_rows, method}, pass,
 * reason; rates and accuracies null when there are no rows. */
struct cJSON *compare_json(const struct compare_result *r);

/* The result as the validate gate's verdict, to record the decision in
 * table deployment (pipeline_record_gate). */
void compare_verdict(const struct compare_result *r,
                     struct pipeline_verdict *v,
                     struct pipeline_gate_opts *g);

#endif
