/* tree.h - native evaluator for saved XGBoost tree models.
 *
 * tree_compile_file() reads a model saved by XGBoost 1.7 (UBJSON ".ubj" or
 * JSON ".json", detected from the content) with mlopsd's own small parser
 * (no XGBoost code involved) and compiles it into one read-only structure:
 * all trees' nodes in one contiguous array, children of a node adjacent
 * (right = left + 1), leaf values inline.  tree_predict() then evaluates
 * rows with no allocation and no locks.
 *
 * Supported: booster "gbtree" with numerical splits (missing values follow
 * the node's default direction), one target, objectives multi:softprob,
 * multi:softmax, binary:logistic and reg:squarederror.  Anything else
 * (dart, gblinear, categorical splits, vector leaves, other objectives) is
 * refused with ERR_UNSUPPORTED and a message naming the feature.
 *
 * Arithmetic follows XGBoost 1.7's CPU predictor so that results are the
 * same bits: per output group, float leaf values are added in tree order to
 * the base margin (base_score, or logit(base_score) for binary:logistic);
 * then binary:logistic applies 1/(1+expf(-x)), multi:softprob a softmax
 * with expf in float and the sum in double, multi:softmax the index of the
 * first largest margin.  model.c verifies this against XGBoost at load.
 *
 * Output layout per row (same as XGBoost's predict): multi:softprob gives
 * num_class probabilities; multi:softmax one value (the class index as a
 * float); binary:logistic one value (P(class 1)); reg:squarederror one
 * value.  tree_output_dim() says how many.
 *
 * Thread rule: a compiled model is immutable; tree_predict and the
 * accessors may be called from any number of threads at once.
 * tree_destroy must not race with them (model.c refcounts for that).
 */
#ifndef MLOPSD_TREE_H
#define MLOPSD_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

/* Largest model file read (a cap on a buffer filled from outside). */
#define TREE_MAX_FILE_BYTES ((size_t)1 << 30)
/* Largest num_class supported (bounds the per-call stack buffer). */
#define TREE_MAX_CLASSES 1024

struct tree_model;

enum tree_objective {
  TREE_OBJ_SOFTPROB = 0, /* multi:softprob */
  TREE_OBJ_SOFTMAX,      /* multi:softmax */
  TREE_OBJ_LOGISTIC,     /* binary:logistic */
  TREE_OBJ_SQUAREDERROR  /* reg:squarederror */
};

/* Read and compile the model file at path.
 * Returns ERR_OK and *out (free with tree_destroy), or:
 * ERR_IO (cannot read; too large), ERR_PARSE (not valid UBJSON/JSON or not
 * an XGBoost model: message names the missing/bad field), ERR_UNSUPPORTED
 * (a model feature this evaluator does not implement), ERR_NOMEM. */
enum err_code tree_compile_file(const char *path, struct tree_model **out,
                                struct err *e) MLOPSD_WUR;

/* The same from a buffer holding the file's bytes (borrowed for the call
 * only).  Format is detected from the first byte. */
enum err_code tree_compile_buffer(const void *buf, size_t len,
                                  struct tree_model **out,
                                  struct err *e) MLOPSD_WUR;

/* Free a compiled model; NULL does nothing. */
void tree_destroy(struct tree_model *m);

/* Evaluate n rows (row-major n x nfeat floats, NaN = missing) into out
 * (n * tree_output_dim(m) floats).  nfeat must equal tree_nfeat(m), else
 * ERR_INVAL.  No allocation, no locks; rows and out are borrowed.  Rows
 * are evaluated in blocks, each tree walked for all rows of a block. */
enum err_code tree_predict(const struct tree_model *m, const float *rows,
                           size_t n, size_t nfeat, float *out,
                           struct err *e) MLOPSD_WUR;

/* Raw margins (before the objective's transform): n * tree_num_group(m)
 * floats.  Same rules as tree_predict. */
enum err_code tree_predict_margin(const struct tree_model *m,
                                  const float *rows, size_t n, size_t nfeat,
                                  float *out, struct err *e) MLOPSD_WUR;

/* tree_predict through the generic step (missing values and default
 * directions tested per node), whichever walk tree_predict takes: the
 * reference the tests hold the fast walk to.  Same rules as tree_predict. */
enum err_code tree_predict_generic(const struct tree_model *m,
                                   const float *rows, size_t n, size_t nfeat,
                                   float *out, struct err *e) MLOPSD_WUR;

/* 1 when tree_predict walks the fast copy of the nodes: every split
 * condition above -inf, no leaf value -inf and 2 * nfeat + 1 <= 4096
 * (the row copies it reads live on the stack); else 0 and tree_predict
 * takes the generic step.  Both give the same bits. */
int tree_fast(const struct tree_model *m);

/* Accessors (any thread). */
size_t tree_nfeat(const struct tree_model *m);      /* num_feature */
size_t tree_num_trees(const struct tree_model *m);
size_t tree_num_nodes(const struct tree_model *m);  /* reachable nodes */
size_t tree_num_group(const struct tree_model *m);  /* margins per row */
size_t tree_output_dim(const struct tree_model *m); /* outputs per row */
/* Classes the model tells apart: num_class for multi:*, 2 for binary,
 * 0 for regression. */
size_t tree_num_class(const struct tree_model *m);
enum tree_objective tree_objective(const struct tree_model *m);
/* Objective name as in the model ("multi:softprob"); static storage. */
const char *tree_objective_name(const struct tree_model *m);
/* base_score as stored (probability for binary:logistic). */
float tree_base_score(const struct tree_model *m);
/* Deepest leaf (root = depth 0). */
size_t tree_max_depth(const struct tree_model *m);

/* Fill out (n * tree_nfeat(m) floats) with rows that exercise the model's
 * splits: each value is, per feature, a split threshold used by some tree,
 * the float just below one, a value beyond all thresholds, or NaN
 * (missing).  Deterministic for a given seed.  Used to verify the
 * evaluator against XGBoost when no real rows are at hand. */
void tree_gen_rows(const struct tree_model *m, size_t n, uint64_t seed,
                   float *out);

#endif
