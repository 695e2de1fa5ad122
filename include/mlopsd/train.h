/* train.h - XGBoost training through its C API, with early stopping,
 * validation metrics and grid search.
 *
 * Only train.c and model.c include the XGBoost C API.  Input is plain
 * row-major float matrices (NaN = missing); preprocessing and the registry
 * live elsewhere and this module does not depend on them.
 *
 * A trial is train_fit(data, params) -> result: it builds its own DMatrix
 * handles and booster, shares no mutable state, and can run as a queue job
 * on any thread (several at once; each uses params->nthread OpenMP
 * threads).  train_grid() runs the cartesian product of a parameter grid
 * one trial after another; a caller that runs trials as jobs uses
 * train_grid_size / train_grid_params / train_better itself.
 */
#ifndef MLOPSD_TRAIN_H
#define MLOPSD_TRAIN_H

#include <stddef.h>

#include "mlopsd/err.h"

/* "MAJOR.MINOR.PATCH" of the XGBoost library in use (static string). */
const char *train_xgb_version(void);

/* Training data, all borrowed for the duration of the call.
 * Labels: class index 0..K-1 (multi:*), 0/1 (binary:*) or any real. */
struct train_data {
  const float *x_train;  /* n_train x nfeat, row-major, NaN = missing */
  const float *y_train;  /* n_train labels */
  size_t n_train;
  const float *x_val;    /* n_val x nfeat: early stopping and metrics */
  const float *y_val;
  size_t n_val;
  size_t nfeat;
  const char *const *feature_names; /* nfeat names stored in the model, or
                                       NULL */
  /* Row weights (XGBoost's DMatrix "weight"), n_train and n_val of them,
   * or NULL: every row weighs 1.  The validation weights weigh the
   * early-stopping metric. */
  const float *w_train;
  const float *w_val;
};

/* One XGBoost parameter, e.g. {"max_depth", "8"}; strings borrowed. */
struct train_kv {
  const char *key;
  const char *value;
};

/* Called after each round with the validation metric (any thread: the
 * thread running train_fit). */
typedef void (*train_progress_fn)(void *ud, int round, double metric);
/* Polled before each round; non-zero cancels the trial (ERR_CANCELED). */
typedef int (*train_cancel_fn)(void *ud);

struct train_params {
  const char *objective;   /* "multi:softprob", "binary:logistic", ... */
  int num_class;           /* multi:*: 0 = 1 + largest training label */
  const struct train_kv *params; /* more XGBoost params (eta, max_depth,
                                    tree_method, seed, lambda, ...) */
  size_t n_params;
  int num_boost_round;     /* maximum rounds, >= 1 */
  int early_stopping_rounds; /* stop after this many rounds without a
                                strict improvement and keep the best
                                round and those before it; 0 = train
                                num_boost_round rounds and keep all */
  int nthread;             /* XGBoost/OpenMP threads; 0 = XGBoost default */
  const char *eval_metric; /* metric for early stopping ("mlogloss",
                              "logloss", "rmse", "merror", "auc", ...);
                              NULL = mlogloss / logloss / rmse by
                              objective */
  train_progress_fn progress; /* may be NULL */
  train_cancel_fn cancel;     /* may be NULL */
  void *ud;                   /* passed to both */
};

/* Metrics on the validation split (NAN where they do not apply).
 * Classification: accuracy, macro-F1 (mean F1 over classes that occur in
 * the labels or the predictions, as scikit-learn), log loss (natural log,
 * probabilities clipped to [1e-15, 1-1e-15]; for binary the two-class
 * loss).  Regression: rmse and mae. */
struct train_metrics {
  double accuracy;
  double f1_macro;
  double logloss;
  double rmse;
  double mae;
};

struct train_booster; /* opaque: the trained (kept) model */

struct train_result {
  int rounds_run;      /* rounds trained before stopping */
  int best_iteration;  /* 0-based round with the best validation metric */
  int num_rounds;      /* rounds kept in the model: best_iteration + 1 */
  int num_trees;       /* trees in the kept model */
  double best_score;   /* validation eval metric at best_iteration */
  char eval_metric[32];/* the metric name used for early stopping */
  int num_class;       /* K for multi:*, 2 for binary:*, 0 regression */
  struct train_metrics metrics; /* of the kept model on the val split */
  struct train_booster *booster; /* owned; train_result_free */
};

/* Train one model.  On ERR_OK r holds the kept model (only best+1 rounds,
 * so every consumer of the saved file gets the same predictions) and its
 * metrics; free it with train_result_free.  On error r is left empty.
 * Errors: ERR_INVAL (bad data/params), ERR_XGB (XGBoost refused: first
 * line of its message), ERR_CANCELED, ERR_NOMEM. */
enum err_code train_fit(const struct train_data *d,
                        const struct train_params *p,
                        struct train_result *r, struct err *e) MLOPSD_WUR;

/* Free the booster held by r and zero r; NULL or empty r does nothing. */
void train_result_free(struct train_result *r);

/* Save the kept model; the path must end in ".ubj" (preferred, the
 * registry's format) or ".json".  ERR_INVAL for another name, ERR_XGB
 * when XGBoost cannot write. */
enum err_code train_result_save(const struct train_result *r,
                                const char *path, struct err *e) MLOPSD_WUR;

/* The kept model as UBJSON bytes (what train_result_save writes to a
 * .ubj file), malloc'd into *buf (caller frees).  ERR_INVAL, ERR_XGB. */
enum err_code train_result_to_buffer(const struct train_result *r,
                                    char **buf, size_t *len,
                                    struct err *e) MLOPSD_WUR;

/* Load a model saved by train_result_to_buffer into r->booster (nfeat
 * features).  Only the booster is set: the caller fills the other fields
 * (they are not in the model).  r must hold no booster.  ERR_XGB for
 * bytes XGBoost refuses. */
enum err_code train_result_load_buffer(const void *buf, size_t len,
                                       size_t nfeat, struct train_result *r,
                                       struct err *e) MLOPSD_WUR;

/* ---- XGBoost's collective (distributed training) ---------------------- */

/* Join the rabit tracker at uri:port as task task_id on the calling
 * thread (the communicator is thread-local in 1.7): every train_fit on
 * this thread then trains together with the other workers, and each must
 * run the same trials in the same order.  *rank and *world (may be NULL) get
 * XGBoost's rank and world size.  ERR_XGB when the tracker refuses or
 * cannot be reached. */
enum err_code train_comm_init(const char *uri, int port, int task_id,
                              int *rank, int *world, struct err *e) MLOPSD_WUR;

/* Leave the collective (calling thread); tells the tracker this worker is
 * done. */
void train_comm_finalize(void);

/* Predict rows (n x nfeat) with the kept model through XGBoost into out
 * (n * output values per row, as XGBoost predicts: num_class for
 * multi:softprob, else 1). *n_out receives the number of values. */
enum err_code train_result_predict(const struct train_result *r,
                                   const float *x, size_t n, size_t nfeat,
                                   float *out, size_t out_cap,
                                   size_t *n_out, struct err *e) MLOPSD_WUR;

/* Metrics of predictions pred (layout as train_result_predict) against
 * labels y for an objective (multi:softprob, multi:softmax, binary:*,
 * reg:*).  num_class as in train_result. */
enum err_code train_eval_metrics(const char *objective, int num_class,
                                 const float *y, const float *pred,
                                 size_t n, struct train_metrics *m,
                                 struct err *e) MLOPSD_WUR;

/* ---- grid search ---------------------------------------------------- */

/* One grid axis: a parameter and its values (borrowed strings). */
struct train_grid_axis {
  const char *name;
  const char *const *values;
  size_t n_values;
};

enum train_select {
  TRAIN_SELECT_ACCURACY = 0, /* higher is better */
  TRAIN_SELECT_F1_MACRO,     /* higher is better */
  TRAIN_SELECT_LOGLOSS,      /* lower is better */
  TRAIN_SELECT_RMSE          /* lower is better */
};

/* Parse "accuracy", "f1_macro", "logloss", "rmse"; ERR_INVAL otherwise. */
enum err_code train_select_parse(const char *s, enum train_select *out,
                                 struct err *e) MLOPSD_WUR;

/* Number of trials in the grid (product of n_values; 1 for no axes). */
size_t train_grid_size(const struct train_grid_axis *axes, size_t n_axes);

/* The params of trial index (0 <= index < train_grid_size): base->params
 * with each axis' value for this trial replacing a key of the same name
 * or appended.  Order is fixed: the first axis varies slowest, the last
 * fastest.  Strings are borrowed from base and axes.  ERR_INVAL when
 * cap is too small or index out of range. */
enum err_code train_grid_params(const struct train_params *base,
                                const struct train_grid_axis *axes,
                                size_t n_axes, size_t index,
                                struct train_kv *kv, size_t cap,
                                size_t *n_kv, struct err *e) MLOPSD_WUR;

/* Non-zero when metrics a are strictly better than b for sel (NaN is
 * never better).  Ties keep the earlier trial. */
int train_better(enum train_select sel, const struct train_metrics *a,
                 const struct train_metrics *b);

/* Called after each trial with its params and result (borrowed for the
 * call).  Return non-zero to stop the search (ERR_CANCELED). */
typedef int (*train_trial_fn)(void *ud, size_t index, size_t total,
                              const struct train_kv *kv, size_t n_kv,
                              const struct train_result *r);

/* Run every trial of the grid in order with train_fit and keep the best
 * by sel in *best (free with train_result_free); *best_index gets its
 * index (may be NULL).  A failing trial fails the search. */
enum err_code train_grid(const struct train_data *d,
                         const struct train_params *base,
                         const struct train_grid_axis *axes, size_t n_axes,
                         enum train_select sel, train_trial_fn on_trial,
                         void *ud, struct train_result *best,
                         size_t *best_index, struct err *e) MLOPSD_WUR;

#endif
