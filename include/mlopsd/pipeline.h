/* pipeline.h - the training pipeline and the registry glue around it
 * (docs/training.md).
 *
 * pipeline_train() turns a model spec and a logical date into a new
 * registry version, end to end:
 *
 *   fstore_read_training -> split (spec seed / val_fraction / stratify)
 *   -> prep_fit on the training split only -> transform both splits
 *   -> grid search: one train_fit per grid point, the grid values set
 *      after the spec's params; each trial recorded under
 *      NAME/runs/<run prefix>-tNN/{params,metrics}.json
 *   -> the best trial by the spec's selection metric becomes a version
 *      draft: model.ubj, preprocess.json, meta.json, reference.json,
 *      validation.jsonl, train_keys.jsonl, sample.json -> commit ->
 *      version N.
 *
 * The version directory (files beyond DESIGN.md's four):
 *   validation.jsonl  the validation split as raw rows in the request
 *                     shape, one JSON object per line:
 *                     {"key": [...], "label": "Good", "data":
 *                     {...request object...}}; the first line is a header
 *                     {"format": "mlopsd.validation", "format_version": 1,
 *                     "rows": N, "target": COLUMN, "key_columns": [...]}.
 *                     "key" is the row key (fstore.h: the primary-key
 *                     values that identify the source record across
 *                     logical dates; absent, with key_columns, when the
 *                     table has none).  Any version's preprocess.json can
 *                     transform these rows, so the validate gate scores
 *                     candidate and production on the same rows.
 *   train_keys.jsonl  the distinct row keys of the training split: a
 *                     header {"format": "mlopsd.train_keys",
 *                     "format_version": 1, "columns": [...], "rows": N,
 *                     "keys": K}, then one key per line as a compact JSON
 *                     array, sorted by bytes.  The gate drops the
 *                     candidate's validation rows whose key is here for
 *                     the production version (rows it was trained on).
 *   sample.json       {"rows": [request objects]}: the first
 *                     PIPELINE_SAMPLE_ROWS validation rows, which the
 *                     server predicts through XGBoost and the native
 *                     evaluator before it accepts a version (serving.h).
 *
 * Thread rule: every function may be called from any thread; calls share
 * no state except the registry files (which registry.h makes safe).
 */
#ifndef MLOPSD_PIPELINE_H
#define MLOPSD_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/sha256.h"
#include "mlopsd/spec.h"
#include "mlopsd/stats.h"
#include "mlopsd/train.h"

struct db_pool;
struct registry;
struct prep;
struct model;

#define PIPELINE_SAMPLE_ROWS 2000   /* rows of sample.json */
#define PIPELINE_REF_BINS 10        /* numeric bins of reference.json */
#define PIPELINE_REF_MAX_CATS 1000  /* categories kept per feature */
#define PIPELINE_RUN_ID_MAX 120     /* run prefix, before "-tNN" */
#define PIPELINE_TRAIN_KEYS "train_keys.jsonl"
/* The gate split as raw rows (validation.jsonl's format), when the spec
 * has split.gate_fraction > 0 (docs/training.md). */
#define PIPELINE_GATE_ROWS "gate.jsonl"
/* Fewest held-out rows the gate decides on (validate field min_rows). */
#define PIPELINE_MIN_ROWS 50
/* The alias the validate gate points at a candidate that passes; the
 * deploy tasks of the CT and CD DAGs deploy it. */
#define PIPELINE_STAGING "staging"

/* One line of progress for the task log (no newline). */
typedef void (*pipeline_log_fn)(void *ud, const char *line);
/* Polled while reading, between trials and before every boosting round;
 * non-zero stops with ERR_CANCELED. */
typedef int (*pipeline_cancel_fn)(void *ud);

struct pipeline_opts {
  const char *ds;         /* logical date YYYY-MM-DD, required */
  const char *dag_id;     /* lineage (may be NULL) */
  const char *dag_run_id; /* lineage; also names the trial runs (made a
                             valid registry name: other bytes -> '_').
                             NULL: "adhoc-YYYYMMDDTHHMMSSZ-PID" */
  int nthread;            /* XGBoost threads per trial; 0 = 1 */
  int parallel;           /* trials run at once (threads of the call, the
                             calling one included); 0 or 1 = one after
                             another.  The best trial is the same either
                             way (ties keep the earlier grid point). */
  int shared_trials;      /* non-zero: the trials become rows in MariaDB
                             (trialq.h) that this run's `parallel`
                             threads and any other daemon's trial helpers
                             claim; the best is chosen when all are done */
  int workers;            /* >= 2: distributed training (docs/training.md):
                             this run is rank 0 of `workers` ranks, each
                             reading the rows with MOD(source.key,
                             workers) = rank; ranks 1.. are other
                             daemons' trial helpers; trials one at a time
                             through XGBoost's collective */
  const char *tracker_host; /* workers: address the tracker listens on
                               and workers connect to; NULL = the
                               tracker's guess of this host's address */
  int lease_s;            /* shared trials: a claim or a search without a
                             heartbeat for this long is taken over /
                             abandoned; 0 = 30 */
  /* Overrides for tests and benchmarks (0 = the spec's value): */
  size_t max_trials;          /* run only the first N grid points */
  int num_boost_round;        /* > 0 replaces xgboost.num_boost_round */
  int early_stopping_rounds;  /* > 0 replaces it; -1 turns it off */
  pipeline_log_fn log;
  void *log_ud;
  pipeline_cancel_fn cancel;
  void *cancel_ud;
};

/* One trial's outcome (for benchmarks and reports). */
struct pipeline_trial {
  struct train_metrics m;
  int best_iteration;
  int rounds_run;
  int n_trees;
  double seconds;
};

struct pipeline_result {
  int version;               /* the version committed */
  char run_prefix[PIPELINE_RUN_ID_MAX + 1];
  size_t n_rows, n_train, n_val, n_gate;
  size_t n_inputs, n_outputs; /* spec features, preprocessed columns */
  size_t n_trials, best_trial; /* best_trial is 0-based */
  struct pipeline_trial *trials; /* n_trials entries, owned */
  struct train_metrics best;
  double read_s;    /* query + fetch into columns */
  double prep_s;    /* split + fit + transform + reference + hashes */
  double search_s;  /* all trials */
  double write_s;   /* version files + commit */
  double total_s;
  size_t arena_bytes;            /* string arena of the read */
  char data_sha256[SHA256_HEX_LEN];
};

/* Train spec for o->ds into registry reg, reading from db.  On ERR_OK
 * res describes the new version (pipeline_result_free).  The spec is
 * borrowed; reg and db are used from this thread only for the call.
 * Errors: those of fstore_read_training (ERR_NOTFOUND "no training rows
 * in ..."), prep (ERR_INVAL), train (ERR_XGB, ERR_INVAL), the registry
 * (ERR_IO), ERR_CANCELED.  On error no version is created (trial records
 * already written stay, as MLflow keeps failed runs) and res is left
 * empty. */
MLOPSD_WUR enum err_code pipeline_train(struct registry *reg,
                                        struct db_pool *db,
                                        const struct spec *spec,
                                        const struct pipeline_opts *o,
                                        struct pipeline_result *res,
                                        struct err *e);

void pipeline_result_free(struct pipeline_result *r); /* NULL-safe */

/* ---- scoring and the validate gate ------------------------------------ */

/* Score version `version` of model name on the validation rows stored
 * with version `rows_version` (validation.jsonl): each row is transformed
 * with the scored version's own preprocess.json and predicted by its
 * model (model_predict).  Labels are mapped through the scored version's
 * classes (meta.json "classes").  *n_rows (may be NULL) gets the rows
 * scored.  Errors: ERR_NOTFOUND (version or file missing), ERR_PARSE /
 * ERR_CONFIG (corrupt file, naming it), ERR_INVAL (a label the scored
 * version does not know), ERR_XGB, ERR_NOMEM. */
MLOPSD_WUR enum err_code pipeline_score(struct registry *reg,
                                        const char *name, int version,
                                        int rows_version,
                                        struct train_metrics *m,
                                        size_t *n_rows, struct err *e);

/* As pipeline_score, but leaving out the rows whose key is in
 * train_keys.jsonl of version `exclude_version` (the rows it was trained
 * on).  *n_rows gets the rows scored, *n_dropped (may be NULL) those left
 * out (rows without a key included: they cannot be shown to be held
 * out).  No row left: ERR_OK with *n_rows 0 and m untouched.  Errors as
 * pipeline_score, and ERR_NOTFOUND when exclude_version has no
 * train_keys.jsonl or rows_version's validation rows carry no keys,
 * ERR_CONFIG when their key columns differ. */
MLOPSD_WUR enum err_code pipeline_score_heldout(struct registry *reg,
                                                const char *name,
                                                int version,
                                                int rows_version,
                                                int exclude_version,
                                                struct train_metrics *m,
                                                size_t *n_rows,
                                                size_t *n_dropped,
                                                struct err *e);

/* How a version answers rows it never trained on: the reference of the
 * drift task's prediction drift (docs/monitoring.md). */
#define PIPELINE_ANSWER_CLASSES 64
struct pipeline_answers {
  char file[32];          /* the rows: gate.jsonl or validation.jsonl */
  size_t n_rows;          /* rows answered */
  size_t n_classes;       /* meta.json "classes" (at most the cap) */
  char classes[PIPELINE_ANSWER_CLASSES][64];
  double counts[PIPELINE_ANSWER_CLASSES]; /* rows answered with class i */
  double conf_mean;       /* top probability, as served (calibrated) */
  double conf_sd;         /* its sample standard deviation */
};

/* Score version `version` of model name on its own gate rows
 * (gate.jsonl) when it has them, else its validation rows, as
 * pipeline_score does, and count its answers into *a.  A regression
 * model gives n_classes 0.  Errors as pipeline_score. */
MLOPSD_WUR enum err_code pipeline_answers(struct registry *reg,
                                          const char *name, int version,
                                          struct pipeline_answers *a,
                                          struct err *e);

/* The value of metric in m (NaN when it does not apply). */
double pipeline_metric_value(enum spec_metric metric,
                             const struct train_metrics *m);

/* Outcome of the validate gate. */
struct pipeline_verdict {
  int pass;
  int candidate;        /* latest version */
  int production;       /* alias production, 0 when unset */
  double cand_score;    /* NaN when not scored */
  double prod_score;
  size_t n_rows;        /* validation rows scored */
  size_t n_dropped;     /* validation rows left out (production's
                           training rows) */
  int gate_split;       /* 1: scored on the candidate's gate split
                           (gate.jsonl); 0: on its validation split */
  int heldout;          /* 1: scored on held-out rows only; 0: on all
                           the candidate's validation rows (fallback, see
                           note) or not scored */
  /* the paired test (pipeline_gate with paired set; is_paired 0 when the
   * point rule decided): counts, interval, p-value (stats.h) */
  int is_paired;
  struct stats_paired paired;
  size_t min_rows;           /* rows the decision needed */
  char method[64];           /* the test, for the deployment row */
  char note[ERR_MSG_MAX];    /* which rows were scored and why, for the
                                task log ("" when nothing was scored) */
  char message[ERR_MSG_MAX]; /* one line, for the task log / reason */
};

/* The gate: the candidate (latest version) passes when there is no
 * production version, or when it is the production version, or when its
 * score is at least the production version's minus tolerance (for
 * logloss and rmse: at most the production score plus tolerance), both
 * scored on the candidate's validation rows that production was not
 * trained on (pipeline_score_heldout: rows neither version trained on).
 * Fewer than min_rows such rows: the candidate fails (production stays;
 * the message says so).  Production without train_keys.jsonl (trained
 * before row keys were kept), a candidate whose validation rows carry no
 * keys, or different key columns: both are scored on all the candidate's
 * validation rows, as before, and v->note says why.  ERR_OK means the
 * gate ran (see v->pass); errors mean it could not run (no version,
 * unreadable files). */
MLOPSD_WUR enum err_code pipeline_validate(struct registry *reg,
                                           const char *name,
                                           enum spec_metric metric,
                                           double tolerance,
                                           size_t min_rows,
                                           struct pipeline_verdict *v,
                                           struct err *e);

/* How the gate decides (pipeline_gate). */
struct pipeline_gate_opts {
  enum spec_metric metric;
  double tolerance;      /* the point rule: cand >= prod - tolerance */
  int paired;            /* 1: the paired test instead, when metric is
                            accuracy and the target has classes */
  double max_regression; /* paired: deploy when the lower bound of
                            (cand - prod) > -max_regression */
  double confidence;     /* paired: one-sided level of that bound */
  size_t min_rows;       /* fewest rows (the paired test also needs its
                            power-derived count, stats.h) */
};

/* The gate as pipeline_validate, with the paired test when g->paired:
 * both versions answer the same rows (the candidate's gate split, else
 * its validation split, less production's training rows); b rows only
 * the candidate gets right, c only production; stats_paired_gate decides
 * (v->paired, v->min_rows; v->message gives the difference, interval,
 * p-value, the row counts and the decision). */
MLOPSD_WUR enum err_code pipeline_gate(struct registry *reg,
                                       const char *name,
                                       const struct pipeline_gate_opts *g,
                                       struct pipeline_verdict *v,
                                       struct err *e);

/* Record a gate decision in `deployment` (sql/migrations/070): action
 * "pass" (alias staging, from = the staging version before, to =
 * candidate) or "skip" (alias production, from = production, to =
 * candidate), with the gate's numbers in the gate_* columns when
 * v->is_paired.  Errors as pipeline_record_deployment. */
MLOPSD_WUR enum err_code pipeline_record_gate(
    struct db_pool *db, const char *model, const char *alias, int from,
    int to, const char *action, const char *reason, const char *actor,
    const char *dag_run, const struct pipeline_verdict *v,
    const struct pipeline_gate_opts *g, struct err *e);

/* ---- deployments -------------------------------------------------------- */

/* Insert one row into `deployment` (sql/migrations/002): action is
 * "deploy", "promote", "rollback" or "skip"; from/to 0 = NULL; reason and
 * actor may be NULL; dag_run may be NULL or a dag_run.run_id (its numeric
 * id is looked up; unknown -> NULL).  Errors: ERR_DB, ERR_DB_CONN,
 * ERR_TIMEOUT. */
MLOPSD_WUR enum err_code pipeline_record_deployment(
    struct db_pool *db, const char *model, const char *alias, int from,
    int to, const char *action, const char *reason, const char *actor,
    const char *dag_run, struct err *e);

/* The version `alias` of model pointed at before its current one, from
 * the `deployment` history: replaying deploy/promote (push to_version)
 * and rollback (pop) rows in id order gives a stack of versions; the
 * answer is the entry below the top.  Errors: ERR_NOTFOUND (no earlier
 * version recorded), ERR_DB, ERR_DB_CONN. */
MLOPSD_WUR enum err_code pipeline_previous_version(struct db_pool *db,
                                                   const char *model,
                                                   const char *alias,
                                                   int *current,
                                                   int *previous,
                                                   struct err *e);

/* ---- offline prediction (`mlopsd predict`) ------------------------------ */

struct pipeline_served; /* opaque: spec + prep + model of one version */

/* Load version `version` of name: preprocess.json and model.ubj of the
 * version, the spec from specs_dir/NAME.yaml (as the server does), the
 * native evaluator verified on sample.json.  Errors as model_load,
 * prep_load_json, spec_load; ERR_CONFIG when prep and spec disagree. */
MLOPSD_WUR enum err_code pipeline_served_load(struct registry *reg,
                                              const char *specs_dir,
                                              const char *name, int version,
                                              struct pipeline_served **out,
                                              struct err *e);
void pipeline_served_free(struct pipeline_served *m); /* NULL-safe */
const struct spec *pipeline_served_spec(const struct pipeline_served *m);
const struct prep *pipeline_served_prep(const struct pipeline_served *m);
const struct model *pipeline_served_model(const struct pipeline_served *m);

/* Answer one /predict body exactly as the server does (same checks, same
 * messages, same JSON): *status gets the HTTP status (200 or 400) and
 * *answer a malloc'd NUL-terminated JSON text (free()).  With rows_out
 * non-NULL (the --print-rows debugging aid), *rows_out gets instead a
 * malloc'd JSON text {"columns": [...], "rows": [[...], ...], "outputs":
 * [[...], ...]} of the preprocessed float rows and the model's raw
 * outputs (class probabilities; %.9g, NaN as null) when the body is
 * valid.
 * Errors (not answers): ERR_NOMEM, ERR_XGB. */
MLOPSD_WUR enum err_code pipeline_predict_body(
    const struct pipeline_served *m, const char *body, size_t len,
    int *status, char **answer, char **rows_out, struct err *e);

/* ---- helping with another run's shared trials (trialq.h) -------------- */

struct pipeline_helper;
struct trialq_search;

/* Get ready to train trials of search q (another daemon's run): read
 * q->ds's training rows with spec, split and preprocess them as the
 * coordinating run did.  ERR_STATE when spec's sha256 or the data's
 * differs from the search's (the trials would not be the same); log and
 * cancel (may be NULL) serve every later call.  Free with
 * pipeline_helper_close. */
MLOPSD_WUR enum err_code pipeline_helper_open(
    struct db_pool *db, const struct spec *spec,
    const struct trialq_search *q, int nthread, int lease_s,
    pipeline_log_fn log, void *log_ud, pipeline_cancel_fn cancel,
    void *cancel_ud, struct pipeline_helper **out, struct err *e);

/* Train trial `trial` of the search, claimed as owner, and store its
 * outcome in its row (renewing the claim while it trains).  A lost claim
 * is ERR_OK (the daemon that took it over stores the result); a stop
 * request gives the trial back (ERR_CANCELED).  One thread at a time per
 * helper. */
MLOPSD_WUR enum err_code pipeline_helper_trial(struct pipeline_helper *h,
                                               int trial, const char *owner,
                                               struct err *e);

void pipeline_helper_close(struct pipeline_helper *h); /* NULL-safe */

/* Be rank `rank` (claimed as owner) of distributed-training search q: read
 * this rank's shard, preprocess it with rank 0's preprocessing, join the
 * tracker on the calling thread, train every trial with the others, and
 * store the row count and each trial's model SHA-256 in the rank's row.
 * Blocks for the whole training. */
MLOPSD_WUR enum err_code pipeline_rank_run(
    struct db_pool *db, const struct spec *spec,
    const struct trialq_search *q, int rank, const char *owner,
    int nthread, int lease_s, pipeline_log_fn log, void *log_ud,
    pipeline_cancel_fn cancel, void *cancel_ud, struct err *e);

/* Load the spec of model name from specs_dir (NAME.yaml, else NAME.yml).
 * Errors: ERR_INVAL (not a valid model name), ERR_NOTFOUND ("no model
 * spec DIR/NAME.yaml"), and those of spec_load. */
MLOPSD_WUR enum err_code pipeline_spec_load(const char *specs_dir,
                                            const char *name,
                                            struct spec **out,
                                            struct err *e);

/* Turn a name into a valid registry name: bytes outside [A-Za-z0-9_.-]
 * become '_', ".." is broken up, at most cap-1 bytes; "" -> "_". */
void pipeline_safe_name(const char *in, char *out, size_t cap);

#endif
