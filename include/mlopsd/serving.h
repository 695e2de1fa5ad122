/* serving.h - the models the HTTP server answers with, and hot swap.
 *
 * A serving set holds one slot per model name: the default model
 * (server.default_model), every spec in models.specs_dir and every model
 * of the registry.  A slot publishes the version its alias `production`
 * points at as one immutable bundle (struct serving_model): the model
 * (native evaluator verified at load, model.h), the version's fitted
 * preprocessing (prep.h), the model spec used to validate requests
 * (spec.h), the version number and the pre-rendered /metadata body.
 *
 * Publishing is an atomic pointer swap.  A request takes a reference with
 * serving_acquire (wait-free: three atomic operations, no lock) and drops
 * it with serving_release; the bundle replaced by a swap is freed after
 * its last request.  A watcher thread polls the alias file of every slot
 * (registry_alias_stamp: one stat) every poll_ms; on a change it loads and
 * verifies the new version on its own thread, then swaps it in.  A version
 * that fails to load is logged and recorded in the slot (shown by
 * serving_describe) and the previous one keeps serving; it is not tried
 * again until the alias changes or serving_reload is called.
 *
 * Following production through MariaDB (serving_opts.follow_db, the
 * daemon sets it for role api): every follow_ms the watcher also reads
 * the latest `deployment` row of alias production per model (actions
 * deploy, promote, rollback) and loads that version from the registry
 * when it differs from the one served, so a promotion made on any host
 * reaches every replica within follow_ms + the load time, whether or not
 * this host's alias file changed.  The row wins over the alias file when
 * they disagree.  A version that fails to load is tried again every 5 s
 * while the row names it.  The database being away only delays this.
 *
 * Shadow (opts.shadow, config models.shadow): each slot also holds the
 * version its alias `staging` points at, published the same way, for
 * serving_acquire_shadow (docs/serving.md "Shadow challenger").
 *
 * Model names are discovered at creation and again every few polls; a
 * name that is neither in the registry nor in the specs is unknown (404),
 * a known name without a loaded version is "not deployed" (503).
 *
 * Version files read (besides model.ubj and preprocess.json): meta.json
 * (creation_time, params, metrics; optional) and sample.json (optional,
 * {"rows": [{request object}, ...]}: raw request objects that are run
 * through the version's preprocessing and predicted by both XGBoost and
 * the native evaluator before the version is accepted, see model.h).
 *
 * Thread rule: create/start/stop/destroy from one thread.  serving_acquire,
 * serving_release, the serving_model accessors, serving_describe,
 * serving_ready and serving_reload may be called from any thread while the
 * set exists (serving_reload blocks while it loads).
 */
#ifndef MLOPSD_SERVING_H
#define MLOPSD_SERVING_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"

struct serving;
struct serving_model;
struct registry;
struct metrics;
struct db_pool;
struct model;
struct prep;
struct spec;
struct metrics_counter;

#define SERVING_MAX_MODELS 64
#define SERVING_SAMPLE_MAX 2000 /* sample.json rows used at most */
#define SERVING_SHADOW_ALIAS "staging" /* the challenger (opts.shadow) */

struct serving_opts {
  struct registry *registry; /* borrowed, must outlive the set */
  const char *specs_dir;     /* copied */
  const char *default_model; /* copied; "" or NULL = none */
  struct metrics *metrics;   /* borrowed, may be NULL: gauges per model
                                (version, load time), counters per class */
  int poll_ms;               /* alias polling period; 0 = 500 */
  struct db_pool *follow_db; /* borrowed, may be NULL: also follow
                                production through table deployment
                                (below); must outlive the set */
  int follow_ms;             /* its period; 0 = 1000 (rounded up to a
                                multiple of poll_ms) */
  int no_native;             /* non-zero: predict through XGBoost only */
  int shadow;                /* non-zero: also load the version alias
                                SERVING_SHADOW_ALIAS points at, per model,
                                as its shadow (serving_acquire_shadow) */
};

/* Create the set, discover the model names and load every production
 * version now, on this thread (a version that fails is logged and
 * recorded, not an error here).  Errors: ERR_INVAL (opts), ERR_NOMEM. */
enum err_code serving_create(struct serving **out,
                             const struct serving_opts *o,
                             struct err *e) MLOPSD_WUR;

/* Start the watcher thread.  ERR_INTERNAL if it cannot start, ERR_STATE
 * if already started. */
enum err_code serving_start(struct serving *s, struct err *e) MLOPSD_WUR;

/* Stop and join the watcher (a load in progress finishes first).
 * Idempotent.  Serving continues with what is published. */
void serving_stop(struct serving *s);

/* Stop, drop every published bundle (each is freed after its last
 * reference) and free the set.  No serving_acquire may run concurrently or
 * later; references still held stay valid until released.  NULL-safe. */
void serving_destroy(struct serving *s);

/* The request path. */
enum serving_status {
  SERVING_OK = 0,       /* *out holds a reference */
  SERVING_UNKNOWN,      /* no such model name */
  SERVING_NOT_DEPLOYED, /* known, but no version loaded */
};

/* Take a reference on the bundle currently published for name (NULL or
 * "" = the default model).  Wait-free, no allocation.  On SERVING_OK the
 * caller must serving_release(*out). */
enum serving_status serving_acquire(struct serving *s, const char *name,
                                    struct serving_model **out);
/* The shadow of prod's model (opts.shadow): a reference on the bundle of
 * the version aliased staging, or NULL when shadows are off, none is
 * loaded, or it is prod's own version.  Loaded, swapped and followed
 * (alias file, table deployment rows of alias staging including the
 * gate's 'pass') like production, by the same watcher; a version that
 * fails to load keeps the previous shadow and shows in /metadata's
 * "shadow" object.  Wait-free, no allocation; release with
 * serving_release. */
struct serving_model *serving_acquire_shadow(struct serving *s,
                                             const struct serving_model *prod);
/* Drop a reference (NULL-safe); the last one frees the bundle. */
void serving_release(struct serving_model *m);

/* Load the version alias `production` of name points at now (also when
 * it did not change) and publish it.  A name not yet known is added when
 * the registry has it.  Errors: ERR_NOTFOUND (unknown model or alias not
 * set), ERR_FULL (SERVING_MAX_MODELS), or the load error (the old version
 * keeps serving).  Blocks for the load; any thread. */
enum err_code serving_reload(struct serving *s, const char *name,
                             struct err *e) MLOPSD_WUR;

/* /metadata of name (NULL = default) as a new cJSON object (cJSON_Delete):
 * model_name, model_version, creation_time, params, metrics, objective,
 * classes, n_features, native {enabled, status}, loaded_at, load_ms and
 * last_error (null or the last failed load), and with opts.shadow
 * "shadow": {alias, model_version (null: none), last_error}.
 * *http_status gets 200, 404 (unknown name) or 503 (nothing deployed:
 * the object then says why).
 * NULL on allocation failure. */
cJSON *serving_describe(struct serving *s, const char *name,
                        int *http_status);

/* 1 when the default model has a version loaded; else 0 with a reason
 * in buf ("no version of model 'x' is deployed: ..."). */
int serving_ready(struct serving *s, char *buf, size_t cap);

/* Name of the default model (borrowed for the life of s; "" if none). */
const char *serving_default_name(const struct serving *s);

/* ---- a published bundle (valid while a reference is held) ------------
 * Pointers returned are borrowed for as long as the reference. */

const char *serving_model_name(const struct serving_model *m);
int serving_model_version(const struct serving_model *m);
/* The version as a JSON string literal with quotes, e.g. "\"3\"". */
const char *serving_model_version_json(const struct serving_model *m,
                                       size_t *len);
const struct model *serving_model_model(const struct serving_model *m);
const struct prep *serving_model_prep(const struct serving_model *m);
const struct spec *serving_model_spec(const struct serving_model *m);
/* Index of a spec feature (= prep input) by name, or -1; one hash
 * lookup.  Lock-free. */
int serving_model_feature_index(const struct serving_model *m,
                                const char *name);
/* Floats per input row (prep outputs = model features). */
size_t serving_model_nfeat(const struct serving_model *m);
/* Floats per output row (model_output_dim). */
size_t serving_model_out_dim(const struct serving_model *m);

/* Turn one output row into the answer: for classification *label is the
 * class label (spec target class) and *confidence the probability of
 * that class (1 for multi:softmax); for regression *label is NULL and
 * *value the prediction.  The class index is returned (-1 for
 * regression). */
int serving_model_decide(const struct serving_model *m, const float *out,
                         const char **label, double *confidence,
                         double *value);
/* Load name@version outside any serving set (the offline `mlopsd
 * predict`): the very bundle a server would publish for that version
 * (same files, checks and messages, native evaluator verified on
 * sample.json), without metrics counters and without reading meta.json
 * (not needed to answer: its /metadata fields are null).  reg is borrowed
 * for the call; on success the caller owns one reference:
 * serving_release(*out).  Errors: ERR_INVAL (arguments), ERR_NOTFOUND (no
 * spec), ERR_CONFIG (prep, spec and model disagree), and those of
 * registry_path, prep_load_json, spec_load and model_load. */
enum err_code serving_model_load(struct registry *reg, const char *specs_dir,
                                 const char *name, int version,
                                 struct serving_model **out,
                                 struct err *e) MLOPSD_WUR;

/* Count one prediction of class idx (from serving_model_decide) in
 * mlopsd_predictions_total{model,class}; lock-free. */
void serving_model_count(const struct serving_model *m, int idx);

#endif
