/* spec.h - model specs: config/models/NAME.yaml (docs/model-spec.md).
 *
 * A model spec declares how a model is built (source table and filter,
 * target, features by kind, XGBoost params, search grid, split, selection
 * metric) and what a prediction request must contain (per-field validation
 * rules).  spec_load() parses and validates the whole file: every error
 * names FILE:LINE:COL, and unknown keys are errors.
 *
 * A loaded spec is a documented READ-ONLY struct: callers read the fields
 * below directly and never modify or free them; spec_destroy() frees it.
 * The feature order is fixed: all numeric features in file order, then
 * categorical, then text.  prep (prep.h) keeps that order.
 *
 * Thread rule: loading and destroying from one thread; a loaded spec may
 * be read (including spec_validate_request) from any number of threads.
 */
#ifndef MLOPSD_SPEC_H
#define MLOPSD_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/fsx.h"
#include "mlopsd/sha256.h"

#define SPEC_NAME_MAX FSX_NAME_MAX /* model and feature names: bytes, no NUL */
#define SPEC_FILE_MAX (1u << 20) /* a spec file is at most 1 MiB */

enum spec_kind { SPEC_NUMERIC = 0, SPEC_CATEGORICAL, SPEC_TEXT };

enum spec_scaling {
  SPEC_SCALE_NONE = 0,
  SPEC_SCALE_ROBUST,   /* (x - median) / IQR, as sklearn RobustScaler */
  SPEC_SCALE_STANDARD, /* (x - mean) / population std */
};

enum spec_task {
  SPEC_TASK_REGRESSION = 0, /* target without classes */
  SPEC_TASK_BINARY,         /* exactly 2 classes */
  SPEC_TASK_MULTICLASS,     /* 3 or more classes */
};

enum spec_metric {
  SPEC_METRIC_ACCURACY = 0, /* classification, higher is better */
  SPEC_METRIC_F1_MACRO,     /* classification, higher is better */
  SPEC_METRIC_LOGLOSS,      /* classification, lower is better */
  SPEC_METRIC_RMSE,         /* regression, lower is better */
};

/* Bit flags of struct spec_feature.bounds (numeric features only). */
#define SPEC_BOUND_GT 1u /* value >  gt */
#define SPEC_BOUND_GE 2u /* value >= ge (YAML: ge or min) */
#define SPEC_BOUND_LT 4u /* value <  lt */
#define SPEC_BOUND_LE 8u /* value <= le (YAML: le or max) */

struct spec_feature {
  char *name;            /* identifier, unique in the spec */
  enum spec_kind kind;
  int required;          /* request must carry a non-null value (default 1) */
  char *description;     /* or NULL */
  /* numeric */
  enum spec_scaling scaling; /* default SPEC_SCALE_NONE */
  unsigned bounds;           /* SPEC_BOUND_* bits that are set */
  double gt, ge, lt, le;     /* meaningful when the bit is set */
  int integer;               /* request value must be a whole number */
  /* categorical: allowed values (n_allowed == 0: any string) */
  char **allowed;
  size_t n_allowed;
  /* categorical and text: vocabulary limits used by prep_fit */
  size_t min_count; /* values in fewer training rows -> unknown (def. 1) */
  size_t max_vocab; /* keep the most frequent this many (default 1000) */
  /* text: split on any of these bytes (non-empty) */
  char *delimiters;
};

/* One XGBoost parameter as XGBoosterSetParam takes it (both strings).
 * A YAML list value (eval_metric: [mlogloss, merror]) gives one entry per
 * element with the same key, in order. */
struct spec_param {
  char *key;
  char *value;
};

/* One search axis: key and its candidate values as strings. */
struct spec_grid_axis {
  char *key;
  char **values;
  size_t n_values;
};

struct spec {
  char *path;        /* the file it was loaded from */
  char *name;        /* equals the file's basename without .yaml/.yml */
  char *description; /* or NULL */
  char sha256[SHA256_HEX_LEN]; /* of the file's bytes */

  struct {
    char *table;  /* validated identifier, optionally db.table */
    char *filter; /* templated SQL condition, or NULL (no WHERE) */
    char *key;    /* entity key column (accepted in requests), or NULL */
  } source;

  struct {
    char *column;
    char **classes; /* label order = class index (0..n_classes-1) */
    size_t n_classes; /* 0 for regression */
  } target;
  enum spec_task task;

  char **drop; /* source columns that are neither features nor target */
  size_t n_drop;

  struct spec_feature *features; /* numeric, then categorical, then text */
  size_t n_features;
  size_t n_numeric, n_categorical, n_text;

  struct spec_param *params; /* xgboost.params; objective always present */
  size_t n_params;
  int num_boost_round;       /* 1..100000, default 100 */
  int early_stopping_rounds; /* 0 = off (default) */

  struct spec_grid_axis *grid; /* search.grid, file order; may be empty */
  size_t n_grid;
  size_t grid_size; /* product of axis sizes; 1 when there is no grid */

  enum spec_metric metric; /* selection.metric */

  double val_fraction; /* split.val_fraction, (0, 1), default 0.3 */
  uint64_t seed;       /* split.seed, default 42 */
  int stratify;        /* split.stratify, default 0 */
  /* split.gate_fraction, [0, 1), default 0 (off): share of all rows held
   * out of fitting and trial selection for the validate gate (gate.jsonl);
   * a row (or group) is in the gate split by a seeded hash of its row key
   * (group value), so it stays there on every logical date. */
  double gate_fraction;
  /* split.group_by: source.key or a feature; rows with one value never sit
   * in two splits.  NULL: rows split one by one. */
  char *group_by;

  /* train_window (docs/model-spec.md): which of the rows the source gives
   * for a logical date are trained on, so that candidates of different
   * days are comparable.  days > 0: rows whose window column lies in
   * (ds - days, ds]; rows > 0: the newest `rows` rows by the window
   * column (ties: the newest row key first), and fewer rows than that
   * refuse to train.  At most one of the two is set; both 0: no window
   * (window_column NULL). */
  struct {
    long days;
    long rows;
    char *column; /* identifier; NULL without a window */
  } window;

  /* weights: balanced gives each training (and validation) row of class c
   * the weight n / (K * n_c) of its split (XGBoost DMatrix weights);
   * 0 = every row weighs 1 (default).  Classifiers only. */
  int weights_balanced;

  double tolerance; /* validate.tolerance, >= 0, default 0 */
  /* validate.max_regression, [0, 1), default 0.02: the gate deploys when
   * the lower confidence bound of (candidate - production) accuracy on
   * the gate rows is above -max_regression. */
  double max_regression;
  /* validate.confidence, [0.5, 1), default 0.95: one-sided level of that
   * bound. */
  double confidence;

  /* Private to spec.c: open-addressing hash of the feature names built by
   * spec_load (slots hold index + 1, 0 = empty; mask + 1 slots), used by
   * spec_feature_index and request validation.  NULL in a spec built by
   * hand: lookups then compare names one by one. */
  uint32_t *fmap;
  size_t fmap_mask;
};

/* Load and validate one spec file.  On success *out is a new spec (free
 * with spec_destroy).  Errors: ERR_IO (unreadable, too big), ERR_PARSE
 * (YAML syntax), ERR_CONFIG (schema: unknown key, wrong type, bad value,
 * name != basename); e->msg starts with "FILE:LINE:COL: ". */
MLOPSD_WUR enum err_code spec_load(const char *path, struct spec **out,
                                   struct err *e);

/* Same, from a buffer; path is used for messages and the basename check. */
MLOPSD_WUR enum err_code spec_load_buf(const char *path, const char *buf,
                                       size_t len, struct spec **out,
                                       struct err *e);

/* Load every *.yaml / *.yml file of dir, sorted by name.  *out is a new
 * array of *n specs (free with spec_free_all).  Stops at the first bad file
 * (its error is returned; nothing is handed back).  An empty directory
 * gives n == 0 and ERR_OK. */
MLOPSD_WUR enum err_code spec_load_dir(const char *dir, struct spec ***out,
                                       size_t *n, struct err *e);

void spec_destroy(struct spec *s); /* NULL-safe */
void spec_free_all(struct spec **specs, size_t n); /* NULL-safe */

/* Find a spec by name in an array from spec_load_dir; NULL if absent. */
const struct spec *spec_find(struct spec *const *specs, size_t n,
                             const char *name);

/* Index of a feature by name, or -1. */
int spec_feature_index(const struct spec *s, const char *name);

/* Class index of a label (0..n_classes-1), or -1 if not a class. */
int spec_class_index(const struct spec *s, const char *label);

/* First value of an XGBoost parameter, or NULL (borrowed from s). */
const char *spec_param(const struct spec *s, const char *key);

/* Grid search: trial t in [0, grid_size) picks, for axis a, the value
 * spec_grid_value(s, t, a) (mixed radix, the last axis varies fastest).
 * NULL if t or a is out of range.  Borrowed from s. */
const char *spec_grid_value(const struct spec *s, size_t trial, size_t axis);

/* Names for enums ("robust", "accuracy", "multiclass", "numeric"). */
const char *spec_scaling_name(enum spec_scaling s);
const char *spec_metric_name(enum spec_metric m);
const char *spec_task_name(enum spec_task t);
const char *spec_kind_name(enum spec_kind k);
/* 1 if a larger value of the metric is better (accuracy, f1_macro). */
int spec_metric_higher_is_better(enum spec_metric m);

/* ---- request validation ------------------------------------------------
 * spec_validate_request checks one request object ({"age": 18, ...}, the
 * value of "data") against the spec and records EVERY bad field; it does
 * not allocate.  Rules:
 *   - a feature that is absent or JSON null: "is required" if required,
 *     else accepted as missing;
 *   - numeric: must be a finite JSON number ("must be a number"); then
 *     "must be an integer", "must be > X", ">= X", "< X", "<= X";
 *   - categorical: must be a string ("must be a string"); with allowed
 *     values "must be one of A, B, C";
 *   - text: must be a string;
 *   - the spec's source.key (customer_id) is accepted (number or string)
 *     but is not a feature;
 *   - any other member: "unknown field".
 * Up to SPEC_REPORT_MAX fields are recorded; report->n_more counts the
 * rest.  Returns ERR_OK when valid, ERR_INVAL when the report holds errors
 * (also when obj is not an object: one entry with an empty field name). */
#define SPEC_REPORT_MAX 48
#define SPEC_REPORT_FIELD 80
#define SPEC_REPORT_MSG 112

struct spec_report_entry {
  char field[SPEC_REPORT_FIELD]; /* member name (truncated if longer) */
  char msg[SPEC_REPORT_MSG];     /* "must be > 0" */
};

struct spec_report {
  size_t n;
  size_t n_more; /* errors beyond SPEC_REPORT_MAX, not recorded */
  struct spec_report_entry e[SPEC_REPORT_MAX];
};

MLOPSD_WUR enum err_code spec_validate_request(const struct spec *s,
                                               const cJSON *obj,
                                               struct spec_report *report);

/* The same, and when members is non-NULL (n_features entries) it also
 * stores at each feature's index the member that carries it, or NULL when
 * the feature is absent (whatever the result), so that the caller need
 * not look the names up again. */
MLOPSD_WUR enum err_code spec_validate_request_members(
    const struct spec *s, const cJSON *obj, struct spec_report *report,
    const cJSON **members);

/* The report as a JSON object {"age": "must be > 0", ...} for the 400
 * body's "fields"; NULL on allocation failure.  Caller frees with
 * cJSON_Delete. */
cJSON *spec_report_json(const struct spec_report *report);

#endif
