/* model.h - a saved XGBoost model loaded for serving.
 *
 * model_load() loads the file twice: into an XGBoost booster (nthread=1,
 * so one request never takes more than one core) and into the native
 * evaluator (tree.h).  It then predicts verification rows both ways; when
 * every value agrees within the tolerance (1e-6) the native evaluator
 * serves, otherwise XGBoost does and model_native_status() says why.
 * Models the native evaluator does not implement (dart, gblinear,
 * categorical splits, other objectives) are served through XGBoost.
 *
 * Output layout per row is XGBoost's (model_output_dim values):
 * multi:softprob -> num_class probabilities; binary:logistic -> P(class
 * 1); multi:softmax -> class index as float; regression -> the value.
 *
 * Thread rule: model_load may run on any thread.  A loaded model is
 * read-only: model_predict*, accessors, model_ref and model_unref may be
 * called from any number of threads at once.  The server publishes a
 * model pointer, readers take model_ref before use and model_unref after;
 * the last model_unref frees it (so a swap never frees a model that is
 * still predicting).
 */
#ifndef MLOPSD_MODEL_H
#define MLOPSD_MODEL_H

#include <stddef.h>

#include "mlopsd/err.h"

struct model;

#define MODEL_FILE_NAME "model.ubj"
#define MODEL_TOLERANCE 1e-6

struct model_load_opts {
  /* Rows (n_sample x nfeat, NaN = missing) predicted both ways before the
   * native evaluator is accepted, e.g. the validation split.  Borrowed for
   * the call.  Rows generated from the trees' split thresholds (with NaNs)
   * are always added. */
  const float *sample_rows;
  size_t n_sample;
  size_t n_generated; /* generated rows; 0 = 256 */
  int no_native;      /* non-zero: serve through XGBoost only */
};

/* Load path (a model file, or a directory holding MODEL_FILE_NAME).
 * nfeat: features per row the caller will send; 0 = take the model's.
 * opts may be NULL.  Returns ERR_OK and *out with one reference, or
 * ERR_NOTFOUND (no file), ERR_XGB (XGBoost cannot load it: corrupt or not
 * a model), ERR_INVAL (nfeat differs from the model's), ERR_NOMEM.
 * A refused native evaluator is not an error. */
enum err_code model_load(const char *path, size_t nfeat,
                         const struct model_load_opts *opts,
                         struct model **out, struct err *e) MLOPSD_WUR;

/* Take one more reference; returns m (NULL-safe). */
struct model *model_ref(struct model *m);
/* Drop one reference; the last one frees the model (NULL-safe). */
void model_unref(struct model *m);

/* Predict n rows (n x model_nfeat floats, NaN = missing) into out
 * (n * model_output_dim floats) with the native evaluator when it was
 * accepted, else through XGBoost; then the version's calibration
 * (calib.h: the temperature of calibration.json when model_load was
 * given the version directory).  Rows and out are borrowed.
 * Errors: ERR_INVAL (NULL), ERR_XGB. */
enum err_code model_predict(const struct model *m, const float *rows,
                            size_t n, float *out, struct err *e) MLOPSD_WUR;

/* Always through XGBoost's in-place predict (per-thread proxy DMatrix;
 * nthread=1).  For tests, benchmarks and the fallback. */
enum err_code model_predict_xgb(const struct model *m, const float *rows,
                                size_t n, float *out,
                                struct err *e) MLOPSD_WUR;

/* Always through the native evaluator; ERR_UNSUPPORTED when the model has
 * none (refused at compile; a model that failed verification keeps its
 * evaluator for diagnosis). */
enum err_code model_predict_native(const struct model *m, const float *rows,
                                   size_t n, float *out,
                                   struct err *e) MLOPSD_WUR;

/* The temperature model_predict applies (1: none).  model_predict_xgb
 * and model_predict_native give the raw outputs. */
double model_temperature(const struct model *m);

/* Margins per row: num_class for multi:*, else 1 (the raw margins
 * model_contribs explains). */
size_t model_num_group(const struct model *m);

/* Exact TreeSHAP contributions through XGBoost (its pred_contribs, a
 * DMatrix per call; XGBoost 1.7 keeps the trees' node means per call, so
 * concurrent calls on one booster mutate nothing): out gets
 * n * model_num_group * (model_nfeat + 1) floats; row r, group g starts
 * at out + (r * G + g) * (nfeat + 1) and its last value is the bias (the
 * expected margin, base_score included).  A group's values sum to its
 * raw margin (model_predict_margin), before calibration.  Any thread.
 * Errors: ERR_INVAL (NULL), ERR_XGB. */
enum err_code model_contribs(const struct model *m, const float *rows,
                             size_t n, float *out,
                             struct err *e) MLOPSD_WUR;

/* XGBoost's total gain per column (model_nfeat doubles into per_col;
 * 0 for columns no split uses; multi-class: summed over the classes'
 * trees).  Any thread.  Errors: ERR_INVAL, ERR_XGB. */
enum err_code model_gain(const struct model *m, double *per_col,
                         struct err *e) MLOPSD_WUR;

/* Raw margins (n * model_num_group floats): the native evaluator when
 * it serves, else XGBoost (output_margin).  Any thread. */
enum err_code model_predict_margin(const struct model *m, const float *rows,
                                   size_t n, float *out,
                                   struct err *e) MLOPSD_WUR;

/* 1 when model_predict uses the native evaluator. */
int model_native(const struct model *m);
/* "native: ..." (accepted, with rows compared and max difference) or
 * "xgboost: reason".  Borrowed, valid while the caller holds a
 * reference. */
const char *model_native_status(const struct model *m);

size_t model_nfeat(const struct model *m);
/* K for multi:*, 2 for binary:*, 0 for regression. */
size_t model_num_class(const struct model *m);
size_t model_output_dim(const struct model *m);
/* Objective name ("multi:softprob"), borrowed like the status. */
const char *model_objective(const struct model *m);
/* Boosted rounds in the model (XGBoosterBoostedRounds). */
size_t model_num_rounds(const struct model *m);
/* Path of the model file loaded, borrowed like the status. */
const char *model_path(const struct model *m);

/* Fill e with ERR_XGB "XGBoost WHAT: <message>": the first line of
 * XGBGetLastError() without its "[hh:mm:ss] " stamp (the Debian build
 * appends a stack trace).  Returns ERR_XGB.  For model.c and train.c. */
enum err_code model_xgb_error(struct err *e, const char *what);

#endif
