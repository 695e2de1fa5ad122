/* prep.h - preprocessing: fitted on the training split, saved with the
 * model as preprocess.json, applied identically at serving time.
 *
 * Inputs are the spec's features in spec order (numeric, categorical,
 * text).  Each input becomes one or more output columns, in input order:
 *
 *   numeric NAME       1 column  "NAME": robust (x - median) / IQR exactly
 *                      as sklearn RobustScaler (quantile range 25-75, numpy
 *                      linear percentiles, NaN ignored, IQR ~0 -> 1),
 *                      standard (x - mean) / population std (std ~0 -> 1),
 *                      or none.  Missing stays NaN (XGBoost's missing).
 *   categorical NAME   one column "NAME=VALUE" per vocabulary value (sorted
 *                      by bytes) then "NAME#unknown": one-hot; a value not
 *                      in the vocabulary sets the unknown column; missing
 *                      (NULL / JSON null / absent) sets no column.
 *   text NAME          one column "NAME:TOKEN" per vocabulary token (sorted)
 *                      then "NAME#unknown": multi-hot (1 if the token occurs
 *                      at least once); tokens are split on any delimiter
 *                      byte, empty tokens dropped; the unknown column is 1
 *                      if any token is not in the vocabulary.
 *
 * Vocabularies hold the training split's values (tokens) that occur in at
 * least min_count training rows, capped at max_vocab (most frequent first,
 * ties by bytes), sorted by bytes.  Output names can contain any bytes of
 * the data's values: sanitise them before handing them to XGBoost as
 * feature names ('[', ']' and '<' are refused there).
 * Output matrices are dense, row-major float, prep_n_outputs() wide.
 *
 * Thread rule: a fitted or loaded prep is immutable; every function taking
 * a const struct prep * may run concurrently from any thread.  The
 * transform functions do not allocate.
 */
#ifndef MLOPSD_PREP_H
#define MLOPSD_PREP_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/spec.h"

#define PREP_FILE_MAX (64u << 20) /* preprocess.json is at most 64 MiB */

struct prep; /* opaque */

/* One input column.  Numeric inputs use num (NaN = missing); categorical
 * and text inputs use str (NULL = missing).  Arrays are borrowed. */
struct prep_column {
  const double *num;
  const char *const *str;
};

/* Column arrays of n_rows rows; cols[i] is spec feature i (spec order). */
struct prep_input {
  size_t n_rows;
  size_t n_cols;
  const struct prep_column *cols;
};

/* Fit on rows idx[0..n-1] of in (idx NULL: rows 0..n-1).  in->n_cols must
 * equal spec->n_features.  The prep copies what it needs: spec and input
 * may be freed afterwards.  Errors: ERR_INVAL (shape, NULL column, index
 * out of range, n == 0), ERR_NOMEM. */
MLOPSD_WUR enum err_code prep_fit(const struct spec *spec,
                                  const struct prep_input *in,
                                  const size_t *idx, size_t n,
                                  struct prep **out, struct err *e);

void prep_destroy(struct prep *p); /* NULL-safe */

size_t prep_n_inputs(const struct prep *p);
/* Input i's name and kind (borrowed for the prep's lifetime). */
const char *prep_input_name(const struct prep *p, size_t i);
enum spec_kind prep_input_kind(const struct prep *p, size_t i);
/* First output column of input i (columns of i are contiguous). */
size_t prep_input_offset(const struct prep *p, size_t i);

size_t prep_n_outputs(const struct prep *p);
/* Output column j's name ("age", "occupation=Lawyer", "type_of_loan:loan",
 * "occupation#unknown"), borrowed for the prep's lifetime; NULL if j is out
 * of range. */
const char *prep_output_name(const struct prep *p, size_t j);

/* Transform rows idx[0..n-1] of in (idx NULL: rows 0..n-1) into out
 * (n * prep_n_outputs() floats, row i at out + i * n_outputs).  in must
 * have the prep's inputs in order.  Errors: ERR_INVAL (shape). */
MLOPSD_WUR enum err_code prep_transform_rows(const struct prep *p,
                                             const struct prep_input *in,
                                             const size_t *idx, size_t n,
                                             float *out, struct err *e);

/* One value handed to prep_transform_one by a lookup callback. */
enum prep_vkind {
  PREP_V_MISSING = 0, /* absent or null: NaN / no column set */
  PREP_V_NUM,         /* a number (NaN counts as missing) */
  PREP_V_STR,         /* a string */
  PREP_V_OTHER,       /* some other type: rejected with ERR_INVAL */
};
struct prep_value {
  enum prep_vkind kind;
  double num;      /* PREP_V_NUM */
  const char *str; /* PREP_V_STR, NUL-terminated, borrowed */
};

/* Fills *v for input i named name; returns 0, or -1 to abort the
 * transform (reported as ERR_INVAL). */
typedef int (*prep_lookup_fn)(void *ctx, size_t i, const char *name,
                              struct prep_value *v);

/* Transform one record into row (prep_n_outputs() floats) by asking
 * lookup for each input.  Errors: ERR_INVAL (wrong value kind for the
 * input, e.g. a string for a numeric input; or lookup returned -1). */
MLOPSD_WUR enum err_code prep_transform_one(const struct prep *p,
                                            prep_lookup_fn lookup, void *ctx,
                                            float *row, struct err *e);

/* Transform one request object ({"age": 18, ...}); absent or null members
 * are missing, unknown members are ignored (validate first with
 * spec_validate_request).  Errors: ERR_INVAL naming the field ("age: must
 * be a number"). */
MLOPSD_WUR enum err_code prep_transform_json(const struct prep *p,
                                             const cJSON *obj, float *row,
                                             struct err *e);

/* Serialise to path (fsx_write_atomic: temp file, fsync, rename, mode
 * 0644).  Numbers are written with 17 significant digits so a load gives
 * the same bits.  Errors: ERR_IO, ERR_NOMEM, ERR_INVAL (path too long). */
MLOPSD_WUR enum err_code prep_save_json(const struct prep *p,
                                        const char *path, struct err *e);

/* Load and validate a preprocess.json (every field's type, names, sorted
 * unique vocabularies, finite non-zero scales, output names).  Errors:
 * ERR_IO, ERR_PARSE, ERR_CONFIG; the message names the file and the
 * field ("preprocess.json: inputs[3].vocabulary[2]: must be a string"). */
MLOPSD_WUR enum err_code prep_load_json(const char *path, struct prep **out,
                                        struct err *e);
MLOPSD_WUR enum err_code prep_from_json(const cJSON *root, const char *what,
                                        struct prep **out, struct err *e);
/* The JSON document prep_save_json writes; caller frees with cJSON_Delete;
 * NULL on allocation failure. */
cJSON *prep_to_json(const struct prep *p);

/* Feature schema for meta.json: {"inputs": [{"name", "kind"}...],
 * "outputs": ["age", "occupation=Lawyer", ...]}; NULL on no memory. */
cJSON *prep_schema_json(const struct prep *p);

/* Fitted numeric parameters of input i: out = (x - center) / scale.
 * Returns -1 if i is not a numeric input. */
int prep_numeric_params(const struct prep *p, size_t i, double *center,
                        double *scale);

/* ---- deterministic train/validation split -----------------------------
 * The PRNG is splitmix64 seeded with seed; a Fisher-Yates shuffle (draws
 * reduced to a range without modulo bias, by rejection) permutes 0..n-1;
 * the first n_val = ceil(n * val_fraction) indices of the permutation are
 * the validation split, clamped to [1, n-1] when n >= 2.  Both index lists
 * are returned sorted ascending.  The same (n, val_fraction, seed) always
 * gives the same split, on every platform.
 *
 * prep_split_stratified does the same per class (labels[i] in
 * [0, n_classes)): each class's indices are shuffled with the one PRNG, in
 * class order, and class c contributes floor(n_c * f) rows plus one of the
 * remaining rows assigned by largest remainder (ties: lower class first)
 * so the total is still ceil(n * f).
 *
 * *train and *val are new arrays (free()); n == 0 or val_fraction outside
 * (0, 1) is ERR_INVAL; n == 1 puts the row in train. */
MLOPSD_WUR enum err_code prep_split(size_t n, double val_fraction,
                                    uint64_t seed, size_t **train,
                                    size_t *n_train, size_t **val,
                                    size_t *n_val, struct err *e);
MLOPSD_WUR enum err_code prep_split_stratified(
    size_t n, const int *labels, size_t n_classes, double val_fraction,
    uint64_t seed, size_t **train, size_t *n_train, size_t **val,
    size_t *n_val, struct err *e);

/* splitmix64 step, exposed for tests and for other deterministic users. */
uint64_t prep_splitmix64(uint64_t *state);

#endif
