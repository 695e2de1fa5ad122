/* serving.c - the set of served models and their hot swap (serving.h).
 *
 * Why a per-slot reader counter next to the bundle's refcount: a reader
 * must not increment the refcount of a bundle that the swapper has just
 * released for the last time.  Readers announce themselves in
 * slot->readers before loading the pointer and leave after taking their
 * reference; the swapper exchanges the pointer and then waits until it
 * sees slot->readers at zero before dropping the slot's own reference.
 * Any reader that loaded the old pointer was counted at that moment, so
 * it holds its reference before the swapper can drop the last one.
 * Readers never wait; the swapper waits for a window of a few
 * instructions.  All atomics are sequentially consistent, which is what
 * the argument needs (the store to readers must not pass the load of cur).
 *
 * Slots live in a fixed array and are only ever appended (under add_mu),
 * published by a release store of n_slots, so lookups take no lock.  A
 * slot's mutex serialises loads of that model (watcher vs serving_reload)
 * and guards its stamp; a second one guards the error fields, so
 * /metadata and /readyz never wait for a load.  The request path takes
 * neither.
 */
#include "mlopsd/serving.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"

#define MOD "serving"
#define DISCOVER_EVERY 4 /* polls between two discoveries of names */
#define FOLLOW_ACQUIRE_MS 1000 /* wait for a connection to follow with */
#define FOLLOW_RETRY_MS 5000   /* a version that failed to load: again */

struct serving_model {
  atomic_int refs;
  char name[SPEC_NAME_MAX + 1];
  int version;
  char version_json[24]; /* "\"3\"" */
  size_t version_json_len;
  struct model *model;
  struct prep *prep;
  struct spec *spec;
  size_t nfeat, out_dim, n_class;
  int regression, softmax, binary;
  struct metrics_counter **class_ctr; /* n_class (1 for regression) */
  cJSON *meta;                        /* pre-built /metadata object */
  uint32_t *fmap;                     /* feature name hash: index + 1 */
  size_t fmap_mask;
};

struct slot {
  char name[SPEC_NAME_MAX + 1];
  _Atomic(struct serving_model *) cur;
  atomic_int readers;
  pthread_mutex_t mu; /* loads and the stamp */
  struct registry_stamp stamp;
  int stamp_valid;
  pthread_mutex_t emu; /* the error fields below (never held long) */
  int failed_version; /* version whose load failed (0: none) */
  char last_error[ERR_MSG_MAX];
  char last_error_at[32];
  int64_t follow_retry_at; /* under mu: when a failed followed version
                              may be tried again (monotonic ms) */
  struct metrics_gauge *g_version, *g_load_ms, *g_loaded_at, *g_native;
  struct metrics_counter *c_fail;
  /* the shadow (serving_opts.shadow): the version aliased staging, under
   * the same reader-counter scheme as cur; stamp and retry under mu,
   * the error fields under emu */
  _Atomic(struct serving_model *) shadow;
  atomic_int sreaders;
  struct registry_stamp sstamp;
  int sstamp_valid;
  int shadow_failed; /* version whose shadow load failed (0: none) */
  char shadow_error[ERR_MSG_MAX];
  int64_t shadow_retry_at;
};

struct serving {
  struct registry *reg;
  struct metrics *metrics;
  char *specs_dir;
  char default_name[SPEC_NAME_MAX + 1];
  int poll_ms;
  int no_native;
  int shadow;                /* also serve alias staging in shadow */
  struct db_pool *follow_db; /* NULL: alias files only */
  int follow_ms;
  int64_t next_follow;       /* watcher thread only (monotonic ms) */
  int follow_warned;         /* watcher thread only */

  pthread_mutex_t add_mu; /* appending slots */
  struct slot slots[SERVING_MAX_MODELS];
  atomic_size_t n_slots;

  pthread_t th;
  int started;
  pthread_mutex_t th_mu;
  pthread_cond_t th_cv;
  int stop;
};

/* ---- bundles ---------------------------------------------------------- */

static void bundle_free(struct serving_model *m)
{
  if (!m)
    return;
  model_unref(m->model);
  prep_destroy(m->prep);
  spec_destroy(m->spec);
  free(m->class_ctr);
  free(m->fmap);
  cJSON_Delete(m->meta);
  free(m);
}

void serving_release(struct serving_model *m)
{
  if (m && atomic_fetch_sub(&m->refs, 1) == 1)
    bundle_free(m);
}

const char *serving_model_name(const struct serving_model *m)
{
  return m->name;
}
int serving_model_version(const struct serving_model *m)
{
  return m->version;
}
const char *serving_model_version_json(const struct serving_model *m,
                                       size_t *len)
{
  if (len)
    *len = m->version_json_len;
  return m->version_json;
}
const struct model *serving_model_model(const struct serving_model *m)
{
  return m->model;
}
const struct prep *serving_model_prep(const struct serving_model *m)
{
  return m->prep;
}
const struct spec *serving_model_spec(const struct serving_model *m)
{
  return m->spec;
}
size_t serving_model_nfeat(const struct serving_model *m)
{
  return m->nfeat;
}
size_t serving_model_out_dim(const struct serving_model *m)
{
  return m->out_dim;
}

int serving_model_decide(const struct serving_model *m, const float *out,
                         const char **label, double *confidence,
                         double *value)
{
  int idx = 0;
  double conf = 1.0;
  *value = out[0];
  if (m->regression) {
    *label = NULL;
    *confidence = 0;
    return -1;
  }
  if (m->softmax) {
    idx = (int)out[0];
    if (idx < 0 || (size_t)idx >= m->n_class)
      idx = 0;
  } else if (m->binary) {
    double p = out[0];
    idx = p >= 0.5 ? 1 : 0;
    conf = idx ? p : 1.0 - p;
  } else {
    float best = out[0];
    for (size_t k = 1; k < m->out_dim; k++)
      if (out[k] > best) {
        best = out[k];
        idx = (int)k;
      }
    conf = best;
  }
  *label = m->spec->target.classes[idx];
  *confidence = conf;
  return idx;
}

void serving_model_count(const struct serving_model *m, int idx)
{
  if (!m->class_ctr)
    return;
  if (idx < 0)
    idx = 0;
  if ((size_t)idx < m->n_class && m->class_ctr[idx])
    metrics_counter_add(m->class_ctr[idx], 1);
}

/* ---- feature name map -------------------------------------------------- */

static uint32_t fnv1a(const char *s)
{
  uint32_t h = 2166136261u;
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * 16777619u;
  return h;
}

/* Open addressing, at most half full: a lookup is one hash and usually
 * one strcmp, against a linear scan of every feature name. */
static enum err_code build_fmap(struct serving_model *m, struct err *e)
{
  size_t n = m->spec->n_features, cap = 16;
  while (cap < n * 2)
    cap *= 2;
  m->fmap = calloc(cap, sizeof(*m->fmap));
  if (!m->fmap)
    return err_set(e, ERR_NOMEM, "out of memory");
  m->fmap_mask = cap - 1;
  for (size_t i = 0; i < n; i++) {
    size_t k = fnv1a(m->spec->features[i].name) & m->fmap_mask;
    while (m->fmap[k])
      k = (k + 1) & m->fmap_mask;
    m->fmap[k] = (uint32_t)i + 1;
  }
  return ERR_OK;
}

int serving_model_feature_index(const struct serving_model *m,
                                const char *name)
{
  size_t k = fnv1a(name) & m->fmap_mask;
  for (;;) {
    uint32_t v = m->fmap[k];
    if (!v)
      return -1;
    if (strcmp(m->spec->features[v - 1].name, name) == 0)
      return (int)v - 1;
    k = (k + 1) & m->fmap_mask;
  }
}

/* ---- helpers ---------------------------------------------------------- */

static void utc_now(char *buf, size_t cap)
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  if (n > 0 && n + 6 <= cap)
    snprintf(buf + n, cap - n, ".%03uZ",
             (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

static double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum err_code find_spec(const char *specs_dir, const char *name,
                               char *path, size_t cap, struct err *e)
{
  static const char *const ext[] = {".yaml", ".yml"};
  for (size_t i = 0; i < 2; i++) {
    int n = snprintf(path, cap, "%s/%s%s", specs_dir, name, ext[i]);
    if (n < 0 || (size_t)n >= cap)
      return err_set(e, ERR_INVAL, "spec path for model '%s' is too long",
                     name);
    FILE *f = fopen(path, "r");
    if (f) {
      fclose(f);
      return ERR_OK;
    }
  }
  return err_set(e, ERR_NOTFOUND, "no model spec %s/%s.yaml", specs_dir,
                 name);
}

/* The version's preprocessing must take exactly the spec's features. */
static enum err_code check_prep_spec(const struct prep *p,
                                     const struct spec *sp, struct err *e)
{
  if (prep_n_inputs(p) != sp->n_features)
    return err_set(e, ERR_CONFIG,
                   "preprocess.json has %zu inputs but spec %s has %zu "
                   "features",
                   prep_n_inputs(p), sp->path, sp->n_features);
  for (size_t i = 0; i < sp->n_features; i++) {
    const char *pn = prep_input_name(p, i);
    if (strcmp(pn, sp->features[i].name) != 0 ||
        prep_input_kind(p, i) != sp->features[i].kind)
      return err_set(e, ERR_CONFIG,
                     "preprocess.json input %zu is '%s' (%s) but spec %s "
                     "feature %zu is '%s' (%s)",
                     i, pn, spec_kind_name(prep_input_kind(p, i)), sp->path,
                     i, sp->features[i].name,
                     spec_kind_name(sp->features[i].kind));
  }
  return ERR_OK;
}

/* sample.json: {"rows": [{...}, ...]} -> preprocessed float rows. */
static void load_sample(struct registry *reg, const char *name, int version,
                        const struct prep *p, float **rows, size_t *n)
{
  cJSON *doc = NULL;
  struct err e = {0};
  *rows = NULL;
  *n = 0;
  if (registry_read_json(reg, name, version, "sample.json", &doc, &e) !=
      ERR_OK) {
    if (e.code != ERR_NOTFOUND)
      LOG_W(MOD, "model=%s version=%d sample.json ignored: %s", name,
            version, e.msg);
    return;
  }
  const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "rows");
  int cnt = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : 0;
  if (cnt > SERVING_SAMPLE_MAX)
    cnt = SERVING_SAMPLE_MAX;
  size_t nf = prep_n_outputs(p);
  float *buf = cnt > 0 ? malloc((size_t)cnt * nf * sizeof(float)) : NULL;
  size_t k = 0;
  if (buf) {
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
      if (k >= (size_t)cnt)
        break;
      if (prep_transform_json(p, it, buf + k * nf, &e) == ERR_OK)
        k++;
    }
  }
  cJSON_Delete(doc);
  if (k == 0) {
    free(buf);
    return;
  }
  *rows = buf;
  *n = k;
}

static cJSON *meta_copy(const cJSON *meta, const char *key)
{
  const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
  return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

static enum err_code build_meta(struct serving_model *m, const cJSON *meta,
                                double load_ms, struct err *e)
{
  cJSON *o = cJSON_CreateObject();
  char ts[32];
  if (!o)
    return err_set(e, ERR_NOMEM, "out of memory building metadata");
  utc_now(ts, sizeof(ts));
  char ver[16];
  snprintf(ver, sizeof(ver), "%d", m->version);
  cJSON_AddStringToObject(o, "model_name", m->name);
  cJSON_AddStringToObject(o, "model_version", ver);
  cJSON_AddItemToObject(o, "creation_time", meta_copy(meta, "creation_time"));
  cJSON_AddItemToObject(o, "params", meta_copy(meta, "params"));
  cJSON_AddItemToObject(o, "metrics", meta_copy(meta, "metrics"));
  /* ECE and Brier before/after and the temperature (calib.h) */
  cJSON_AddItemToObject(o, "calibration", meta_copy(meta, "calibration"));
  /* global importance per input field (explain.h) */
  cJSON_AddItemToObject(o, "importance", meta_copy(meta, "importance"));
  cJSON_AddStringToObject(o, "objective", model_objective(m->model));
  cJSON *cls = cJSON_AddArrayToObject(o, "classes");
  for (size_t i = 0; cls && i < m->spec->target.n_classes; i++)
    cJSON_AddItemToArray(cls,
                         cJSON_CreateString(m->spec->target.classes[i]));
  cJSON_AddNumberToObject(o, "n_features", (double)m->nfeat);
  cJSON *nat = cJSON_AddObjectToObject(o, "native");
  if (nat) {
    cJSON_AddBoolToObject(nat, "enabled", model_native(m->model));
    cJSON_AddStringToObject(nat, "status", model_native_status(m->model));
  }
  cJSON_AddStringToObject(o, "loaded_at", ts);
  cJSON_AddNumberToObject(o, "load_ms", round(load_ms * 10) / 10);
  m->meta = o;
  return ERR_OK;
}

static enum err_code register_counters(struct metrics *metrics,
                                       struct serving_model *m,
                                       struct err *e)
{
  size_t n = m->regression ? 1 : m->n_class;
  if (!metrics)
    return ERR_OK;
  m->class_ctr = calloc(n, sizeof(*m->class_ctr));
  if (!m->class_ctr)
    return err_set(e, ERR_NOMEM, "out of memory");
  for (size_t i = 0; i < n; i++) {
    const char *cl = m->regression ? "value" : m->spec->target.classes[i];
    const char *lab[] = {"model", m->name, "class", cl, NULL};
    if (metrics_counter_new(metrics, "mlopsd_predictions_total",
                            "Predictions answered, by model and class.",
                            lab, 0, &m->class_ctr[i], e) != ERR_OK)
      return e->code;
  }
  return ERR_OK;
}

/* Load name@version into a new bundle (refs = 1); counters are
 * registered in metrics when not NULL; meta.json is read (and must be
 * valid when present) only with read_meta.  Runs off the request path
 * (watcher thread, creation, serving_reload, serving_model_load). */
static enum err_code load_bundle(struct registry *reg, const char *specs_dir,
                                 struct metrics *metrics, int no_native,
                                 int read_meta, const char *name,
                                 int version, struct serving_model **out,
                                 struct err *e)
{
  double t0 = mono_ms();
  char dir[REGISTRY_PATH_MAX], path[REGISTRY_PATH_MAX];
  cJSON *meta = NULL;
  float *sample = NULL;
  size_t n_sample = 0;
  enum err_code rc;
  struct serving_model *m = calloc(1, sizeof(*m));
  if (!m)
    return err_set(e, ERR_NOMEM, "out of memory loading %s", name);
  atomic_init(&m->refs, 1);
  snprintf(m->name, sizeof(m->name), "%s", name);
  m->version = version;
  m->version_json_len = (size_t)snprintf(
      m->version_json, sizeof(m->version_json), "\"%d\"", version);

  if ((rc = registry_path(reg, name, version, NULL, dir, sizeof(dir), e)))
    goto fail;
  if ((rc = registry_path(reg, name, version, "preprocess.json", path,
                          sizeof(path), e)))
    goto fail;
  if ((rc = prep_load_json(path, &m->prep, e)))
    goto fail;
  if ((rc = find_spec(specs_dir, name, path, sizeof(path), e)))
    goto fail;
  if ((rc = spec_load(path, &m->spec, e)))
    goto fail;
  if ((rc = check_prep_spec(m->prep, m->spec, e)))
    goto fail;
  if (read_meta) {
    rc = registry_read_meta(reg, name, version, &meta, e);
    if (rc != ERR_OK && rc != ERR_NOTFOUND)
      goto fail;
    err_clear(e);
  }
  m->nfeat = prep_n_outputs(m->prep);
  load_sample(reg, name, version, m->prep, &sample, &n_sample);
  struct model_load_opts lo = {.sample_rows = sample,
                               .n_sample = n_sample,
                               .no_native = no_native};
  rc = model_load(dir, m->nfeat, &lo, &m->model, e);
  FREE_NULL(sample);
  if (rc)
    goto fail;
  m->out_dim = model_output_dim(m->model);
  const char *obj = model_objective(m->model);
  m->n_class = m->spec->target.n_classes;
  if (m->spec->task == SPEC_TASK_REGRESSION) {
    m->regression = 1;
  } else if (strcmp(obj, "binary:logistic") == 0) {
    m->binary = 1;
    if (m->n_class != 2 || m->out_dim != 1) {
      rc = err_set(e, ERR_CONFIG,
                   "model objective %s does not fit spec with %zu classes",
                   obj, m->n_class);
      goto fail;
    }
  } else if (strncmp(obj, "multi:", 6) == 0) {
    m->softmax = strcmp(obj, "multi:softmax") == 0;
    if (model_num_class(m->model) != m->n_class ||
        (!m->softmax && m->out_dim != m->n_class)) {
      rc = err_set(e, ERR_CONFIG,
                   "model has %zu classes but spec %s declares %zu",
                   model_num_class(m->model), m->spec->path, m->n_class);
      goto fail;
    }
  } else {
    rc = err_set(e, ERR_UNSUPPORTED,
                 "objective %s cannot serve classification spec %s", obj,
                 m->spec->path);
    goto fail;
  }
  if ((rc = register_counters(metrics, m, e)) || (rc = build_fmap(m, e)))
    goto fail;
  if ((rc = build_meta(m, meta, mono_ms() - t0, e)))
    goto fail;
  cJSON_Delete(meta);
  *out = m;
  return ERR_OK;
fail:
  free(sample);
  cJSON_Delete(meta);
  bundle_free(m);
  err_prefix(e, "model %s version %d", name, version);
  return rc;
}

static enum err_code load_version(struct serving *s, const char *name,
                                  int version, struct serving_model **out,
                                  struct err *e)
{
  return load_bundle(s->reg, s->specs_dir, s->metrics, s->no_native, 1,
                     name, version, out, e);
}

enum err_code serving_model_load(struct registry *reg, const char *specs_dir,
                                 const char *name, int version,
                                 struct serving_model **out, struct err *e)
{
  *out = NULL;
  if (!reg || !specs_dir || !name)
    return err_set(e, ERR_INVAL, "serving_model_load: missing argument");
  return load_bundle(reg, specs_dir, NULL, 0, 0, name, version, out, e);
}

/* ---- slots ------------------------------------------------------------ */

static struct slot *find_slot(struct serving *s, const char *name)
{
  size_t n = atomic_load_explicit(&s->n_slots, memory_order_acquire);
  for (size_t i = 0; i < n; i++)
    if (strcmp(s->slots[i].name, name) == 0)
      return &s->slots[i];
  return NULL;
}

static void slot_metrics(struct serving *s, struct slot *sl)
{
  struct err e = {0};
  const char *lab[] = {"model", sl->name, NULL};
  if (!s->metrics)
    return;
  if (metrics_gauge_new(s->metrics, "mlopsd_model_version",
                        "Version served, 0 = none.", lab, 0, &sl->g_version,
                        &e) ||
      metrics_gauge_new(s->metrics, "mlopsd_model_load_seconds",
                        "Time the served version took to load and verify.",
                        lab, 0, &sl->g_load_ms, &e) ||
      metrics_gauge_new(s->metrics, "mlopsd_model_loaded_timestamp_seconds",
                        "When the served version was swapped in.", lab, 0,
                        &sl->g_loaded_at, &e) ||
      metrics_gauge_new(s->metrics, "mlopsd_model_native",
                        "1 when the native evaluator serves the model.", lab,
                        0, &sl->g_native, &e) ||
      metrics_counter_new(s->metrics, "mlopsd_model_load_failures_total",
                          "Versions that failed to load.", lab, 0,
                          &sl->c_fail, &e))
    LOG_W(MOD, "model=%s metrics not registered: %s", sl->name, e.msg);
}

/* Append a slot (any thread); returns the existing one if present. */
static struct slot *add_slot(struct serving *s, const char *name)
{
  struct slot *sl;
  if (!fsx_name_valid(name))
    return NULL;
  pthread_mutex_lock(&s->add_mu);
  sl = find_slot(s, name);
  if (!sl) {
    size_t n = atomic_load(&s->n_slots);
    if (n < SERVING_MAX_MODELS) {
      sl = &s->slots[n];
      snprintf(sl->name, sizeof(sl->name), "%s", name);
      slot_metrics(s, sl);
      atomic_store_explicit(&s->n_slots, n + 1, memory_order_release);
    } else {
      LOG_W(MOD, "model=%s not served: more than %d models", name,
            SERVING_MAX_MODELS);
    }
  }
  pthread_mutex_unlock(&s->add_mu);
  return sl;
}

static void publish(struct slot *sl, struct serving_model *m)
{
  struct serving_model *old = atomic_exchange(&sl->cur, m);
  while (atomic_load(&sl->readers) != 0)
    sched_yield();
  serving_release(old);
}

enum serving_status serving_acquire(struct serving *s, const char *name,
                                    struct serving_model **out)
{
  struct slot *sl;
  struct serving_model *m;
  *out = NULL;
  if (!name || !*name) {
    if (!s->default_name[0])
      return SERVING_NOT_DEPLOYED;
    sl = &s->slots[0];
  } else {
    sl = find_slot(s, name);
    if (!sl)
      return SERVING_UNKNOWN;
  }
  atomic_fetch_add(&sl->readers, 1);
  m = atomic_load(&sl->cur);
  if (m)
    atomic_fetch_add(&m->refs, 1);
  atomic_fetch_sub(&sl->readers, 1);
  if (!m)
    return SERVING_NOT_DEPLOYED;
  *out = m;
  return SERVING_OK;
}

/* Record a failed load in the slot. */
static void slot_fail(struct slot *sl, int version, const struct err *e)
{
  pthread_mutex_lock(&sl->emu);
  sl->failed_version = version;
  snprintf(sl->last_error, sizeof(sl->last_error), "%s", e->msg);
  utc_now(sl->last_error_at, sizeof(sl->last_error_at));
  pthread_mutex_unlock(&sl->emu);
  if (sl->c_fail)
    metrics_counter_add(sl->c_fail, 1);
}

/* Load version into sl and publish it (caller holds sl->mu). */
static enum err_code slot_load(struct serving *s, struct slot *sl,
                               int version, struct err *e)
{
  struct serving_model *m = NULL;
  struct serving_model *cur = atomic_load(&sl->cur);
  int old = cur ? cur->version : 0;
  double t0 = mono_ms();
  enum err_code rc = load_version(s, sl->name, version, &m, e);
  if (rc != ERR_OK) {
    slot_fail(sl, version, e);
    if (old)
      LOG_E(MOD, "model=%s version=%d load failed, still serving version "
                 "%d: %s",
            sl->name, version, old, e->msg);
    else
      LOG_E(MOD, "model=%s version=%d load failed, nothing served: %s",
            sl->name, version, e->msg);
    return rc;
  }
  double ms = mono_ms() - t0;
  int native = model_native(m->model);
  publish(sl, m);
  pthread_mutex_lock(&sl->emu);
  sl->failed_version = 0;
  sl->last_error[0] = 0;
  sl->last_error_at[0] = 0;
  pthread_mutex_unlock(&sl->emu);
  if (sl->g_version) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    metrics_gauge_set(sl->g_version, version);
    metrics_gauge_set(sl->g_load_ms, ms / 1e3);
    metrics_gauge_set(sl->g_loaded_at,
                      (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    metrics_gauge_set(sl->g_native, native);
  }
  LOG_I(MOD, "model=%s version=%d %s ms=%.1f evaluator=%s", sl->name,
        version, old ? "swapped in" : "loaded", ms,
        native ? "native" : "xgboost");
  if (old)
    LOG_I(MOD, "model=%s version=%d replaced (freed after its last request)",
          sl->name, old);
  return ERR_OK;
}

/* Check the alias of one slot; load when it changed (or force). */
static enum err_code slot_check(struct serving *s, struct slot *sl,
                                int force, struct err *e)
{
  struct registry_stamp st;
  int version = 0;
  enum err_code rc;
  pthread_mutex_lock(&sl->mu);
  rc = registry_alias_stamp(s->reg, sl->name, REGISTRY_PRODUCTION, &st, e);
  if (rc != ERR_OK) {
    pthread_mutex_unlock(&sl->mu);
    return rc;
  }
  if (!force && sl->stamp_valid && registry_stamp_equal(&st, &sl->stamp)) {
    pthread_mutex_unlock(&sl->mu);
    return ERR_OK;
  }
  sl->stamp = st;
  sl->stamp_valid = 1;
  if (!st.exists) {
    struct serving_model *cur = atomic_load(&sl->cur);
    if (cur)
      LOG_W(MOD, "model=%s alias %s removed; still serving version %d",
            sl->name, REGISTRY_PRODUCTION, cur->version);
    pthread_mutex_unlock(&sl->mu);
    return force ? err_set(e, ERR_NOTFOUND, "model %s has no alias %s",
                           sl->name, REGISTRY_PRODUCTION)
                 : ERR_OK;
  }
  rc = registry_alias_get(s->reg, sl->name, REGISTRY_PRODUCTION, &version, e);
  if (rc != ERR_OK) {
    /* Not a version number, or removed since the stat: report it, retry
     * at the next change. */
    struct err le = *e;
    slot_fail(sl, 0, &le);
    LOG_E(MOD, "model=%s alias %s unreadable: %s", sl->name,
          REGISTRY_PRODUCTION, e->msg);
    pthread_mutex_unlock(&sl->mu);
    return rc;
  }
  struct serving_model *cur = atomic_load(&sl->cur);
  if (!force && cur && cur->version == version) {
    pthread_mutex_unlock(&sl->mu);
    return ERR_OK;
  }
  rc = slot_load(s, sl, version, e);
  pthread_mutex_unlock(&sl->mu);
  return rc;
}

/* ---- the shadow: the version aliased staging -------------------------
 * Loaded and swapped like production (same bundle, same reader-counter
 * publication), but without the per-class counters: the shadow answers
 * nobody, its predictions only go into the log (shadow.h). */

static void shadow_publish(struct slot *sl, struct serving_model *m)
{
  struct serving_model *old = atomic_exchange(&sl->shadow, m);
  while (atomic_load(&sl->sreaders) != 0)
    sched_yield();
  serving_release(old);
}

/* Load version as sl's shadow and publish it (caller holds sl->mu). */
static enum err_code shadow_load(struct serving *s, struct slot *sl,
                                 int version, struct err *e)
{
  struct serving_model *m = NULL;
  double t0 = mono_ms();
  enum err_code rc = load_bundle(s->reg, s->specs_dir, NULL, s->no_native,
                                 1, sl->name, version, &m, e);
  pthread_mutex_lock(&sl->emu);
  sl->shadow_failed = rc ? version : 0;
  snprintf(sl->shadow_error, sizeof(sl->shadow_error), "%s",
           rc ? e->msg : "");
  pthread_mutex_unlock(&sl->emu);
  if (rc != ERR_OK) {
    LOG_E(MOD, "model=%s shadow version=%d (alias %s) load failed, "
               "shadow unchanged: %s",
          sl->name, version, SERVING_SHADOW_ALIAS, e->msg);
    return rc;
  }
  shadow_publish(sl, m);
  LOG_I(MOD, "model=%s shadow version=%d (alias %s) loaded ms=%.1f",
        sl->name, version, SERVING_SHADOW_ALIAS, mono_ms() - t0);
  return ERR_OK;
}

/* Alias staging of one slot: load the version on a change, drop the
 * shadow when the alias is removed. */
static void shadow_check(struct serving *s, struct slot *sl)
{
  struct registry_stamp st;
  struct err e = {0};
  int version = 0;
  pthread_mutex_lock(&sl->mu);
  if (registry_alias_stamp(s->reg, sl->name, SERVING_SHADOW_ALIAS, &st,
                           &e) != ERR_OK ||
      (sl->sstamp_valid && registry_stamp_equal(&st, &sl->sstamp))) {
    pthread_mutex_unlock(&sl->mu);
    return;
  }
  sl->sstamp = st;
  sl->sstamp_valid = 1;
  struct serving_model *cur = atomic_load(&sl->shadow);
  if (!st.exists) {
    if (cur) {
      LOG_I(MOD, "model=%s alias %s removed: shadow version %d dropped",
            sl->name, SERVING_SHADOW_ALIAS, cur->version);
      shadow_publish(sl, NULL);
    }
  } else if (registry_alias_get(s->reg, sl->name, SERVING_SHADOW_ALIAS,
                                &version, &e) != ERR_OK) {
    LOG_E(MOD, "model=%s alias %s unreadable: %s", sl->name,
          SERVING_SHADOW_ALIAS, e.msg);
  } else if (!cur || cur->version != version) {
    (void)shadow_load(s, sl, version, &e);
  }
  pthread_mutex_unlock(&sl->mu);
}

struct serving_model *serving_acquire_shadow(struct serving *s,
                                             const struct serving_model *prod)
{
  struct slot *sl;
  struct serving_model *m;
  if (!s->shadow || !(sl = find_slot(s, prod->name)))
    return NULL;
  atomic_fetch_add(&sl->sreaders, 1);
  m = atomic_load(&sl->shadow);
  if (m)
    atomic_fetch_add(&m->refs, 1);
  atomic_fetch_sub(&sl->sreaders, 1);
  if (m && m->version == prod->version) {
    /* staging caught up with production (a promotion): nothing to
     * compare until staging moves on */
    serving_release(m);
    m = NULL;
  }
  return m;
}

static void discover(struct serving *s)
{
  char **names = NULL;
  size_t n = 0;
  struct err e = {0};
  if (registry_list_models(s->reg, &names, &n, &e) == ERR_OK) {
    for (size_t i = 0; i < n; i++)
      add_slot(s, names[i]);
    registry_strv_free(names);
  } else {
    LOG_W(MOD, "registry not listed: %s", e.msg);
  }
  DIR *d = opendir(s->specs_dir);
  if (!d)
    return;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    char nm[SPEC_NAME_MAX + 8];
    size_t len = strlen(de->d_name);
    const char *dot = strrchr(de->d_name, '.');
    if (!dot || len >= sizeof(nm) || de->d_name[0] == '.')
      continue;
    if (strcmp(dot, ".yaml") != 0 && strcmp(dot, ".yml") != 0)
      continue;
    memcpy(nm, de->d_name, (size_t)(dot - de->d_name));
    nm[dot - de->d_name] = 0;
    add_slot(s, nm);
  }
  closedir(d);
}

static void poll_all(struct serving *s)
{
  size_t n = atomic_load_explicit(&s->n_slots, memory_order_acquire);
  for (size_t i = 0; i < n; i++) {
    struct err e = {0};
    if (slot_check(s, &s->slots[i], 0, &e) != ERR_OK &&
        e.code != ERR_NOTFOUND)
      LOG_D(MOD, "model=%s check: %s", s->slots[i].name, e.msg);
    if (s->shadow)
      shadow_check(s, &s->slots[i]);
  }
}

/* ---- following production through MariaDB ----------------------------
 * Replicas on other hosts may not see this host's alias files, but they
 * all see the database: the last `deployment` row of alias production per
 * model (deploy, promote or rollback, written by whoever moved the alias)
 * names the version to serve.  One indexed query per follow_ms for all
 * models; the version files come from the registry as always. */

struct follow_row {
  char name[SPEC_NAME_MAX + 1];
  int version;
};
struct follow_set {
  struct follow_row v[SERVING_MAX_MODELS];
  size_t n;
};

static int follow_cb(void *user, const struct db_row *row)
{
  struct follow_set *fs = user;
  const char *name = db_row_str(row, 0, NULL);
  int64_t v = db_row_i64(row, 1);
  if (fs->n >= SERVING_MAX_MODELS)
    return 1;
  if (!name || !fsx_name_valid(name) || v < 1 || v > 1000000000)
    return 0;
  snprintf(fs->v[fs->n].name, sizeof(fs->v[fs->n].name), "%s", name);
  fs->v[fs->n].version = (int)v;
  fs->n++;
  return 0;
}

static void follow_one(struct serving *s, const struct follow_row *r,
                       int64_t now)
{
  struct slot *sl = add_slot(s, r->name);
  if (!sl)
    return;
  pthread_mutex_lock(&sl->mu);
  struct serving_model *cur = atomic_load(&sl->cur);
  int fv;
  pthread_mutex_lock(&sl->emu);
  fv = sl->failed_version;
  pthread_mutex_unlock(&sl->emu);
  if ((!cur || cur->version != r->version) &&
      (fv != r->version || now >= sl->follow_retry_at)) {
    struct err e = {0};
    LOG_I(MOD, "model=%s production is version %d in table deployment "
               "(serving %d): loading",
          r->name, r->version, cur ? cur->version : 0);
    if (slot_load(s, sl, r->version, &e) != ERR_OK)
      sl->follow_retry_at = now + FOLLOW_RETRY_MS;
  }
  pthread_mutex_unlock(&sl->mu);
}

/* The shadow's counterpart of follow_one (alias staging). */
static void follow_shadow_one(struct serving *s, const struct follow_row *r,
                              int64_t now)
{
  struct slot *sl = add_slot(s, r->name);
  if (!sl)
    return;
  pthread_mutex_lock(&sl->mu);
  struct serving_model *cur = atomic_load(&sl->shadow);
  int fv;
  pthread_mutex_lock(&sl->emu);
  fv = sl->shadow_failed;
  pthread_mutex_unlock(&sl->emu);
  if ((!cur || cur->version != r->version) &&
      (fv != r->version || now >= sl->shadow_retry_at)) {
    struct err e = {0};
    LOG_I(MOD, "model=%s staging is version %d in table deployment "
               "(shadow %d): loading",
          r->name, r->version, cur ? cur->version : 0);
    if (shadow_load(s, sl, r->version, &e) != ERR_OK)
      sl->shadow_retry_at = now + FOLLOW_RETRY_MS;
  }
  pthread_mutex_unlock(&sl->mu);
}

/* The latest deployment row of alias per model (actions that move it;
 * staging is also moved by the gate's 'pass'). */
static enum err_code follow_query(struct db_conn *c, const char *alias,
                                  struct follow_set *fs, struct err *e)
{
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT d.model, d.to_version FROM deployment d JOIN "
           "(SELECT model, MAX(id) AS id FROM deployment WHERE alias "
           "= '%s' AND action IN ('deploy', 'promote', 'rollback'%s) AND "
           "to_version IS NOT NULL GROUP BY model) m ON d.id = m.id",
           alias, strcmp(alias, SERVING_SHADOW_ALIAS) == 0 ? ", 'pass'" : "");
  return db_query(c, sql, NULL, 0, follow_cb, fs, NULL, e);
}

static void follow_db(struct serving *s)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  struct follow_set *fs = calloc(2, sizeof(*fs));
  if (!fs)
    return;
  enum err_code rc = db_acquire(s->follow_db, FOLLOW_ACQUIRE_MS, &c, &e);
  if (rc == ERR_OK) {
    rc = follow_query(c, REGISTRY_PRODUCTION, &fs[0], &e);
    if (rc == ERR_OK && s->shadow)
      rc = follow_query(c, SERVING_SHADOW_ALIAS, &fs[1], &e);
    db_release(s->follow_db, c);
  }
  if (rc != ERR_OK) {
    if (!s->follow_warned)
      LOG_W(MOD, "following production in table deployment: %s (serving "
                 "what is loaded; retrying)",
            e.msg);
    s->follow_warned = 1;
    free(fs);
    return;
  }
  if (s->follow_warned)
    LOG_I(MOD, "following production in table deployment again");
  s->follow_warned = 0;
  int64_t now = (int64_t)mono_ms();
  for (size_t i = 0; i < fs[0].n; i++)
    follow_one(s, &fs[0].v[i], now);
  for (size_t i = 0; i < fs[1].n; i++)
    follow_shadow_one(s, &fs[1].v[i], now);
  free(fs);
}

static void *watch_main(void *arg)
{
  struct serving *s = arg;
  unsigned tick = 0;
  pthread_mutex_lock(&s->th_mu);
  while (!s->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += (long)s->poll_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    while (!s->stop &&
           pthread_cond_timedwait(&s->th_cv, &s->th_mu, &ts) != ETIMEDOUT)
      ;
    if (s->stop)
      break;
    pthread_mutex_unlock(&s->th_mu);
    if (++tick % DISCOVER_EVERY == 0)
      discover(s);
    poll_all(s);
    if (s->follow_db && (int64_t)mono_ms() >= s->next_follow) {
      follow_db(s);
      s->next_follow = (int64_t)mono_ms() + s->follow_ms;
    }
    pthread_mutex_lock(&s->th_mu);
  }
  pthread_mutex_unlock(&s->th_mu);
  return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

enum err_code serving_create(struct serving **out,
                             const struct serving_opts *o, struct err *e)
{
  struct serving *s;
  *out = NULL;
  if (!o || !o->registry || !o->specs_dir)
    return err_set(e, ERR_INVAL, "serving: registry and specs_dir needed");
  if (o->default_model && *o->default_model &&
      !fsx_name_valid(o->default_model))
    return err_set(e, ERR_INVAL, "serving: bad default model name '%s'",
                   o->default_model);
  s = calloc(1, sizeof(*s));
  if (!s || !(s->specs_dir = strdup(o->specs_dir))) {
    free(s);
    return err_set(e, ERR_NOMEM, "serving: out of memory");
  }
  s->reg = o->registry;
  s->metrics = o->metrics;
  s->poll_ms = o->poll_ms > 0 ? o->poll_ms : 500;
  s->no_native = o->no_native;
  s->shadow = o->shadow;
  s->follow_db = o->follow_db;
  s->follow_ms = o->follow_ms > 0 ? o->follow_ms : 1000;
  pthread_mutex_init(&s->add_mu, NULL);
  pthread_mutex_init(&s->th_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->th_cv, &ca);
  pthread_condattr_destroy(&ca);
  for (size_t i = 0; i < SERVING_MAX_MODELS; i++) {
    atomic_init(&s->slots[i].cur, NULL);
    atomic_init(&s->slots[i].readers, 0);
    atomic_init(&s->slots[i].shadow, NULL);
    atomic_init(&s->slots[i].sreaders, 0);
    pthread_mutex_init(&s->slots[i].mu, NULL);
    pthread_mutex_init(&s->slots[i].emu, NULL);
  }
  atomic_init(&s->n_slots, 0);
  if (o->default_model && *o->default_model) {
    snprintf(s->default_name, sizeof(s->default_name), "%s",
             o->default_model);
    add_slot(s, s->default_name); /* always slot 0 */
  }
  discover(s);
  poll_all(s);
  *out = s;
  return ERR_OK;
}

enum err_code serving_start(struct serving *s, struct err *e)
{
  if (s->started)
    return err_set(e, ERR_STATE, "serving watcher already started");
  s->stop = 0;
  if (pthread_create(&s->th, NULL, watch_main, s) != 0)
    return err_set(e, ERR_INTERNAL, "cannot start the model watcher thread");
  pthread_setname_np(s->th, "serving-watch");
  s->started = 1;
  return ERR_OK;
}

void serving_stop(struct serving *s)
{
  if (!s || !s->started)
    return;
  pthread_mutex_lock(&s->th_mu);
  s->stop = 1;
  pthread_cond_broadcast(&s->th_cv);
  pthread_mutex_unlock(&s->th_mu);
  pthread_join(s->th, NULL);
  s->started = 0;
}

void serving_destroy(struct serving *s)
{
  if (!s)
    return;
  serving_stop(s);
  size_t n = atomic_load(&s->n_slots);
  for (size_t i = 0; i < SERVING_MAX_MODELS; i++) {
    if (i < n) {
      serving_release(atomic_exchange(&s->slots[i].cur, NULL));
      serving_release(atomic_exchange(&s->slots[i].shadow, NULL));
    }
    pthread_mutex_destroy(&s->slots[i].mu);
    pthread_mutex_destroy(&s->slots[i].emu);
  }
  pthread_mutex_destroy(&s->add_mu);
  pthread_mutex_destroy(&s->th_mu);
  pthread_cond_destroy(&s->th_cv);
  free(s->specs_dir);
  free(s);
}

enum err_code serving_reload(struct serving *s, const char *name,
                             struct err *e)
{
  struct slot *sl;
  if (!name || !*name)
    name = s->default_name;
  sl = find_slot(s, name);
  if (!sl) {
    if (!fsx_name_valid(name))
      return err_set(e, ERR_INVAL, "bad model name '%s'", name);
    int v;
    if (registry_latest(s->reg, name, &v, e) != ERR_OK)
      return err_set(e, ERR_NOTFOUND, "unknown model '%s'", name);
    sl = add_slot(s, name);
    if (!sl)
      return err_set(e, ERR_FULL, "model '%s' not served: more than %d "
                                  "models", name, SERVING_MAX_MODELS);
  }
  return slot_check(s, sl, 1, e);
}

const char *serving_default_name(const struct serving *s)
{
  return s->default_name;
}

int serving_ready(struct serving *s, char *buf, size_t cap)
{
  struct serving_model *m = NULL;
  if (!s->default_name[0]) {
    snprintf(buf, cap, "no default model configured (server.default_model)");
    return 0;
  }
  if (serving_acquire(s, NULL, &m) == SERVING_OK) {
    serving_release(m);
    return 1;
  }
  struct slot *sl = &s->slots[0];
  pthread_mutex_lock(&sl->emu);
  if (sl->last_error[0])
    snprintf(buf, cap, "model '%s' is not loaded: %s", sl->name,
             sl->last_error);
  else
    snprintf(buf, cap, "no version of model '%s' is deployed (alias %s not "
                       "set)",
             sl->name, REGISTRY_PRODUCTION);
  pthread_mutex_unlock(&sl->emu);
  return 0;
}

/* "shadow": {"alias", "model_version" (null: none loaded),
 * "last_error"} of a slot (models.shadow on). */
static void describe_shadow(struct slot *sl, cJSON *o)
{
  struct serving_model *sh;
  cJSON *so = cJSON_AddObjectToObject(o, "shadow");
  if (!so)
    return;
  atomic_fetch_add(&sl->sreaders, 1);
  sh = atomic_load(&sl->shadow);
  if (sh)
    atomic_fetch_add(&sh->refs, 1);
  atomic_fetch_sub(&sl->sreaders, 1);
  cJSON_AddStringToObject(so, "alias", SERVING_SHADOW_ALIAS);
  if (sh) {
    char v[16];
    snprintf(v, sizeof(v), "%d", sh->version);
    cJSON_AddStringToObject(so, "model_version", v);
  } else {
    cJSON_AddNullToObject(so, "model_version");
  }
  serving_release(sh);
  pthread_mutex_lock(&sl->emu);
  if (sl->shadow_error[0])
    cJSON_AddStringToObject(so, "last_error", sl->shadow_error);
  else
    cJSON_AddNullToObject(so, "last_error");
  pthread_mutex_unlock(&sl->emu);
}

cJSON *serving_describe(struct serving *s, const char *name,
                        int *http_status)
{
  struct slot *sl;
  cJSON *o;
  struct serving_model *m = NULL;
  if (!name || !*name) {
    if (!s->default_name[0]) {
      *http_status = 503;
      o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "error", "no default model configured");
      return o;
    }
    sl = &s->slots[0];
  } else {
    sl = find_slot(s, name);
  }
  if (!sl) {
    *http_status = 404;
    o = cJSON_CreateObject();
    if (o) {
      cJSON_AddStringToObject(o, "error", "unknown model");
      cJSON_AddStringToObject(o, "model_name", name);
    }
    return o;
  }
  serving_acquire(s, sl->name, &m);
  if (m) {
    o = cJSON_Duplicate(m->meta, 1);
    *http_status = 200;
  } else {
    o = cJSON_CreateObject();
    if (o) {
      cJSON_AddStringToObject(o, "error", "no model deployed");
      cJSON_AddStringToObject(o, "model_name", sl->name);
      cJSON_AddNullToObject(o, "model_version");
    }
    *http_status = 503;
  }
  serving_release(m);
  if (!o)
    return NULL;
  pthread_mutex_lock(&sl->emu);
  if (sl->last_error[0]) {
    cJSON *le = cJSON_AddObjectToObject(o, "last_error");
    if (le) {
      cJSON_AddStringToObject(le, "message", sl->last_error);
      cJSON_AddStringToObject(le, "at", sl->last_error_at);
      if (sl->failed_version)
        cJSON_AddNumberToObject(le, "version", sl->failed_version);
    }
  } else {
    cJSON_AddNullToObject(o, "last_error");
  }
  pthread_mutex_unlock(&sl->emu);
  if (s->shadow)
    describe_shadow(sl, o);
  return o;
}
