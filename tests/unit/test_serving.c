/* test_serving.c - the serving set (serving.c) on its own: publishing a
 * registry version, serving_acquire/serving_release references, hot swap
 * while a reference is held, a failed load that keeps the old version,
 * and the errors for unknown names, missing, corrupt and mismatched
 * versions.  Real registry files: each version is trained with XGBoost
 * (train.c) on a small synthetic set and fitted with prep.c.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/fsx.h"
#include "mlopsd/log.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"
#include "mlopsd/train.h"

#define NROWS 400

static char g_specs[512], g_regdir[512];
static struct registry *g_reg;
static int g_v1, g_v2, g_vbad, g_vnomodel;
/* One request row [x1, x2] and what v1 / v2 answer for it (P(yes)). */
static const double g_row[2] = {7.5, 2.0};
static float g_p1, g_p2;

static const char SPEC_M[] =
    "name: m\n"
    "source: {table: t}\n"
    "target: {column: y, classes: [\"no\", \"yes\"]}\n"
    "features:\n"
    "  numeric: [x1, x2]\n";
/* Same model name space, other feature names: a version fitted for m
 * does not fit it. */
static const char SPEC_OTHER[] =
    "name: other\n"
    "source: {table: t}\n"
    "target: {column: y, classes: [\"no\", \"yes\"]}\n"
    "features:\n"
    "  numeric: [x1, x3]\n";

/* Deterministic data: y = x1 + small noise > 5. */
static void make_data(double *x1, double *x2, float *y)
{
  uint32_t s = 12345;
  for (size_t i = 0; i < NROWS; i++) {
    s = s * 1664525u + 1013904223u;
    x1[i] = (double)(s >> 8) / (double)(1u << 24) * 10.0;
    s = s * 1664525u + 1013904223u;
    x2[i] = (double)(s >> 8) / (double)(1u << 24) * 4.0;
    s = s * 1664525u + 1013904223u;
    double noise = ((double)(s >> 8) / (double)(1u << 24) - 0.5) * 2.0;
    y[i] = x1[i] + noise > 5.0 ? 1.0f : 0.0f;
  }
}

/* Train one version of name with spec file spec_path; rounds/depth make
 * versions predict differently.  Returns the version or -1. */
static int make_version(const char *name, const char *spec_path, int depth,
                        int rounds)
{
  struct err e = {0};
  struct spec *sp = NULL;
  struct prep *pp = NULL;
  struct registry_draft *d = NULL;
  struct train_result res;
  int version = -1, trained = 0;
  static double x1[NROWS], x2[NROWS];
  static float y[NROWS], x[NROWS * 2];
  char path[REGISTRY_PATH_MAX], dep[16];
  memset(&res, 0, sizeof(res));
  make_data(x1, x2, y);
  struct prep_column cols[2] = {{x1, NULL}, {x2, NULL}};
  struct prep_input in = {NROWS, 2, cols};
  if (spec_load(spec_path, &sp, &e) || prep_fit(sp, &in, NULL, NROWS, &pp, &e))
    goto out;
  if (prep_n_outputs(pp) != 2) {
    snprintf(e.msg, sizeof(e.msg), "prep has %zu outputs", prep_n_outputs(pp));
    goto out;
  }
  if (prep_transform_rows(pp, &in, NULL, NROWS, x, &e))
    goto out;
  snprintf(dep, sizeof(dep), "%d", depth);
  struct train_kv kv[] = {{"max_depth", dep}, {"eta", "0.3"}, {"seed", "7"}};
  struct train_data td = {x, y, NROWS, x, y, NROWS, 2, NULL, NULL, NULL};
  struct train_params tp = {.objective = "binary:logistic",
                            .params = kv,
                            .n_params = 3,
                            .num_boost_round = rounds,
                            .nthread = 1};
  if (train_fit(&td, &tp, &res, &e))
    goto out;
  trained = 1;
  if (registry_version_begin(g_reg, name, &d, &e) ||
      registry_draft_path(d, "model.ubj", path, sizeof(path), &e) ||
      train_result_save(&res, path, &e) ||
      registry_draft_path(d, "preprocess.json", path, sizeof(path), &e) ||
      prep_save_json(pp, path, &e))
    goto out;
  static const char meta[] =
      "{\"creation_time\": \"2026-01-01T00:00:00Z\", \"params\": {}, "
      "\"metrics\": {}}";
  if (registry_draft_path(d, "meta.json", path, sizeof(path), &e) ||
      fsx_write_atomic(path, meta, strlen(meta), &e))
    goto out;
  /* sample.json: the server checks the native evaluator on these rows */
  static const char sample[] = "{\"rows\": [{\"x1\": 1, \"x2\": 1}, "
                               "{\"x1\": 9, \"x2\": 3}, {\"x1\": 5}]}";
  if (registry_draft_path(d, "sample.json", path, sizeof(path), &e) ||
      fsx_write_atomic(path, sample, strlen(sample), &e))
    goto out;
  enum err_code rc = registry_version_commit(d, &version, &e);
  d = NULL;
  if (rc)
    version = -1;
out:
  if (version < 0)
    fprintf(stderr, "make_version %s: %s\n", name, e.msg);
  registry_version_abort(d);
  if (trained)
    train_result_free(&res);
  prep_destroy(pp);
  spec_destroy(sp);
  return version;
}

static int set_production(const char *name, int version)
{
  struct err e = {0};
  if (registry_alias_set(g_reg, name, REGISTRY_PRODUCTION, version, NULL,
                         &e)) {
    fprintf(stderr, "alias: %s\n", e.msg);
    return -1;
  }
  return 0;
}

/* P(yes) the bundle m answers for g_row (NaN on error). */
static float predict_row(const struct serving_model *m)
{
  struct err e = {0};
  float in[2], out[1];
  const struct prep *p = serving_model_prep(m);
  double raw[2] = {g_row[0], g_row[1]};
  struct prep_column cols[2] = {{&raw[0], NULL}, {&raw[1], NULL}};
  struct prep_input pin = {1, 2, cols};
  if (serving_model_nfeat(m) != 2 || serving_model_out_dim(m) != 1 ||
      prep_transform_rows(p, &pin, NULL, 1, in, &e) ||
      model_predict(serving_model_model(m), in, 1, out, &e)) {
    fprintf(stderr, "predict: %s\n", e.msg);
    return NAN;
  }
  return out[0];
}

static struct serving *new_set(const char *dflt, int poll_ms)
{
  struct err e = {0};
  struct serving *s = NULL;
  struct serving_opts o = {.registry = g_reg,
                           .specs_dir = g_specs,
                           .default_model = dflt,
                           .poll_ms = poll_ms};
  if (serving_create(&s, &o, &e)) {
    fprintf(stderr, "serving_create: %s\n", e.msg);
    return NULL;
  }
  return s;
}

/* Wait until name serves version want: its production model, or with
 * SHADOW its shadow (want 0: none). */
static int wait_served(struct serving *s, const char *name, int shadow,
                       int want)
{
  for (int i = 0; i < 400; i++) {
    struct serving_model *m = NULL, *sh = NULL;
    int v = -1;
    if (serving_acquire(s, name, &m) == SERVING_OK) {
      if (shadow) {
        sh = serving_acquire_shadow(s, m);
        v = sh ? serving_model_version(sh) : 0;
        serving_release(sh);
      } else {
        v = serving_model_version(m);
      }
      serving_release(m);
    }
    if (v == want)
      return 1;
    fx_msleep(25);
  }
  return 0;
}

/* Wait until name serves version want (the watcher swapped it in). */
static int wait_version(struct serving *s, const char *name, int want)
{
  return wait_served(s, name, 0, want);
}

/* Model m's production aliased to version V, then a serving set for m
 * (watcher polling every POLL_MS, 0: none); NULL after a failed check. */
static struct serving *serving_on(int v, int poll_ms)
{
  if (set_production("m", v)) {
    check_fail_at(__FILE__, __LINE__, "cannot alias m's production to %d",
                  v);
    return NULL;
  }
  struct serving *s = new_set("m", poll_ms);
  if (!s)
    check_fail_at(__FILE__, __LINE__, "no serving set for m");
  return s;
}

/* ---- tests ------------------------------------------------------------ */

TEST(t_publish_acquire)
{
  struct serving *s = serving_on(g_v1, 0);
  REQUIRE(s);
  CHECK_EQ_STR(serving_default_name(s), "m");
  char why[256];
  CHECK(serving_ready(s, why, sizeof(why)));

  struct serving_model *a = NULL, *b = NULL, *c = NULL;
  CHECK_EQ_INT(serving_acquire(s, "m", &a), SERVING_OK);
  CHECK_EQ_INT(serving_acquire(s, NULL, &b), SERVING_OK); /* default */
  CHECK_EQ_INT(serving_acquire(s, "", &c), SERVING_OK);
  REQUIRE(a && b && c);
  /* one bundle, shared by every request */
  CHECK(a == b && b == c);
  CHECK_EQ_STR(serving_model_name(a), "m");
  CHECK_EQ_INT(serving_model_version(a), g_v1);
  size_t len = 0;
  char vj[32];
  snprintf(vj, sizeof(vj), "\"%d\"", g_v1);
  CHECK_EQ_STR(serving_model_version_json(a, &len), vj);
  CHECK_EQ_INT(len, strlen(vj));
  CHECK_EQ_INT(serving_model_feature_index(a, "x1"), 0);
  CHECK_EQ_INT(serving_model_feature_index(a, "x2"), 1);
  CHECK_EQ_INT(serving_model_feature_index(a, "x3"), -1);
  CHECK(fabsf(predict_row(a) - g_p1) < 1e-6f);

  /* decide: binary classification -> label and confidence */
  const char *label = NULL;
  double conf = -1, value = -1;
  float hi = 0.9f, lo = 0.2f;
  CHECK_EQ_INT(serving_model_decide(a, &hi, &label, &conf, &value), 1);
  CHECK_EQ_STR(label, "yes");
  CHECK(fabs(conf - 0.9) < 1e-6);
  CHECK_EQ_INT(serving_model_decide(a, &lo, &label, &conf, &value), 0);
  CHECK_EQ_STR(label, "no");
  CHECK(fabs(conf - 0.8) < 1e-6);

  /* /metadata of the published version */
  int st = 0;
  cJSON *md = serving_describe(s, "m", &st);
  CHECK_EQ_INT(st, 200);
  REQUIRE(md);
  cJSON *ver = cJSON_GetObjectItem(md, "model_version");
  CHECK(ver != NULL);
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(md, "last_error")));
  cJSON_Delete(md);

  serving_release(a);
  serving_release(b);
  serving_release(c);
  serving_release(NULL); /* NULL-safe */
  serving_destroy(s);
  serving_destroy(NULL);
}

TEST(t_unknown_and_not_deployed)
{
  struct serving *s = serving_on(g_v1, 0);
  REQUIRE(s);
  struct serving_model *m = (struct serving_model *)&m; /* poisoned */
  CHECK_EQ_INT(serving_acquire(s, "nosuch", &m), SERVING_UNKNOWN);
  CHECK(m == NULL);
  int st = 0;
  cJSON *o = serving_describe(s, "nosuch", &st);
  CHECK_EQ_INT(st, 404);
  cJSON_Delete(o);
  /* "other" has a spec but no version in the registry: known, not
   * deployed */
  m = (struct serving_model *)&m;
  CHECK_EQ_INT(serving_acquire(s, "other", &m), SERVING_NOT_DEPLOYED);
  CHECK(m == NULL);
  o = serving_describe(s, "other", &st);
  CHECK_EQ_INT(st, 503);
  CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "model_version")));
  cJSON_Delete(o);

  struct err E = {0};
  CHECK_EQ_INT(serving_reload(s, "nosuch", &E), ERR_NOTFOUND);
  CHECK_HAS(E.msg, "nosuch");
  CHECK_EQ_INT(serving_reload(s, "../m", &E), ERR_INVAL);
  CHECK_HAS(E.msg, "../m");
  serving_destroy(s);

  /* No default model: acquire(NULL) is "not deployed", ready says why. */
  s = new_set(NULL, 0);
  REQUIRE(s);
  CHECK_EQ_INT(serving_acquire(s, NULL, &m), SERVING_NOT_DEPLOYED);
  char why[256] = "";
  CHECK(!serving_ready(s, why, sizeof(why)));
  CHECK_HAS(why, "no default model");
  CHECK_EQ_INT(serving_acquire(s, "m", &m), SERVING_OK);
  serving_release(m);
  serving_destroy(s);
}

/* A reference taken before a swap keeps its version whole until released;
 * new requests get the new version. */
TEST(t_hot_swap_held_reference)
{
  struct serving *s = serving_on(g_v1, 20);
  REQUIRE(s);
  struct err E = {0};
  REQUIRE_OK(serving_start(s, &E));
  CHECK_EQ_INT(serving_start(s, &E), ERR_STATE);

  struct serving_model *old = NULL, *cur = NULL;
  REQUIRE(serving_acquire(s, "m", &old) == SERVING_OK);
  CHECK_EQ_INT(serving_model_version(old), g_v1);

  REQUIRE(!set_production("m", g_v2));
  CHECK(wait_version(s, "m", g_v2)); /* the watcher swapped it in */

  REQUIRE(serving_acquire(s, "m", &cur) == SERVING_OK);
  CHECK(cur != old);
  CHECK_EQ_INT(serving_model_version(cur), g_v2);
  CHECK(fabsf(predict_row(cur) - g_p2) < 1e-6f);
  /* the replaced bundle is still complete for its holder (ASan would
   * report a use after free here if the swap had freed it) */
  CHECK_EQ_INT(serving_model_version(old), g_v1);
  CHECK_EQ_STR(serving_model_name(old), "m");
  CHECK(fabsf(predict_row(old) - g_p1) < 1e-6f);
  CHECK_EQ_INT(serving_model_feature_index(old, "x2"), 1);
  serving_release(old); /* last user: freed here */
  serving_release(cur);

  /* back to v1 through serving_reload (no watcher needed) */
  serving_stop(s);
  serving_stop(s); /* idempotent */
  REQUIRE(!set_production("m", g_v1));
  CHECK_OK(serving_reload(s, "m", &E));
  REQUIRE(serving_acquire(s, NULL, &cur) == SERVING_OK);
  CHECK_EQ_INT(serving_model_version(cur), g_v1);
  /* destroying the set leaves a held reference valid */
  serving_destroy(s);
  CHECK_EQ_INT(serving_model_version(cur), g_v1);
  CHECK(fabsf(predict_row(cur) - g_p1) < 1e-6f);
  serving_release(cur);
}

/* A version that cannot load is recorded and the previous one serves on. */
TEST(t_failed_load_keeps_old)
{
  struct serving *s = serving_on(g_v1, 0);
  REQUIRE(s);
  struct err E = {0};
  const int bad[2] = {g_vbad, g_vnomodel};
  for (int k = 0; k < 2; k++) {
    REQUIRE(!set_production("m", bad[k]));
    enum err_code rc = serving_reload(s, "m", &E);
    CHECK(rc != ERR_OK);
    char want[64];
    snprintf(want, sizeof(want), "model m version %d", bad[k]);
    CHECK_HAS(E.msg, want);
    struct serving_model *m = NULL;
    REQUIRE(serving_acquire(s, "m", &m) == SERVING_OK);
    CHECK_EQ_INT(serving_model_version(m), g_v1);
    serving_release(m);
    int st = 0;
    cJSON *o = serving_describe(s, "m", &st);
    CHECK_EQ_INT(st, 200);
    cJSON *le = o ? cJSON_GetObjectItem(o, "last_error") : NULL;
    CHECK(cJSON_IsObject(le));
    cJSON *lv = cJSON_GetObjectItem(le, "version");
    CHECK(cJSON_IsNumber(lv) && lv->valueint == bad[k]);
    CHECK_HAS(cJSON_GetStringValue(cJSON_GetObjectItem(le, "message")),
              want);
    cJSON_Delete(o);
  }
  /* a good version clears the error */
  REQUIRE(!set_production("m", g_v2));
  CHECK_OK(serving_reload(s, "m", &E));
  int st = 0;
  cJSON *o = serving_describe(s, "m", &st);
  CHECK_EQ_INT(st, 200);
  CHECK(o && cJSON_IsNull(cJSON_GetObjectItem(o, "last_error")));
  cJSON_Delete(o);
  serving_destroy(s);

  /* A set created while production points at a corrupt version: known,
   * nothing served, ready() gives the load error. */
  REQUIRE(!set_production("m", g_vbad));
  s = new_set("m", 0);
  REQUIRE(s);
  struct serving_model *m = NULL;
  CHECK_EQ_INT(serving_acquire(s, "m", &m), SERVING_NOT_DEPLOYED);
  char why[512] = "";
  CHECK(!serving_ready(s, why, sizeof(why)));
  CHECK_HAS(why, "is not loaded");
  serving_destroy(s);
  REQUIRE(!set_production("m", g_v1));
}

/* serving_model_load: the offline bundle and its errors. */
TEST(t_model_load)
{
  struct err E = {0};
  struct serving_model *m = NULL;
  REQUIRE_OK(serving_model_load(g_reg, g_specs, "m", g_v2, &m, &E));
  CHECK_EQ_INT(serving_model_version(m), g_v2);
  CHECK(fabsf(predict_row(m) - g_p2) < 1e-6f);
  serving_release(m);

  m = (struct serving_model *)&m;
  CHECK(serving_model_load(g_reg, g_specs, "m", 999, &m, &E) != ERR_OK);
  CHECK(m == NULL);
  CHECK_HAS(E.msg, "version 999");

  CHECK(serving_model_load(g_reg, g_specs, "m", g_vbad, &m, &E) != ERR_OK);
  CHECK(m == NULL);
  CHECK_HAS(E.msg, "model.ubj");

  CHECK(serving_model_load(g_reg, g_specs, "m", g_vnomodel, &m, &E) !=
        ERR_OK);
  CHECK(m == NULL);

  /* a version of "other" fitted with m's spec: prep and spec disagree */
  char ms[600];
  snprintf(ms, sizeof(ms), "%s/m.yaml", g_specs);
  int vo = make_version("other", ms, 2, 3);
  REQUIRE(vo > 0);
  CHECK_EQ_INT(serving_model_load(g_reg, g_specs, "other", vo, &m, &E),
               ERR_CONFIG);
  CHECK_HAS(E.msg, "x3");

  /* no spec file for the name */
  char nospec[600];
  snprintf(nospec, sizeof(nospec), "%s/none", fx_tmp());
  CHECK_EQ_INT(serving_model_load(g_reg, nospec, "m", g_v1, &m, &E),
               ERR_NOTFOUND);
  CHECK_HAS(E.msg, "m.yaml");
  CHECK_EQ_INT(serving_model_load(NULL, g_specs, "m", g_v1, &m, &E),
               ERR_INVAL);
}

/* Readers acquire and release while the main thread swaps v1 <-> v2:
 * every reference is one whole version that answers as that version. */
static int acquire_whole_version(void *arg)
{
  struct serving_model *m = NULL;
  if (serving_acquire(arg, "m", &m) != SERVING_OK)
    return 0;
  int v = serving_model_version(m);
  float p = predict_row(m);
  float want = v == g_v1 ? g_p1 : g_p2;
  serving_release(m);
  return (v == g_v1 || v == g_v2) && fabsf(p - want) <= 1e-6f;
}

TEST(t_swap_under_readers)
{
  struct serving *s = serving_on(g_v1, 0);
  REQUIRE(s);
  struct check_watch r[2];
  for (int i = 0; i < 2; i++)
    REQUIRE(check_watch_start(&r[i], acquire_whole_version, s) == 0);
  struct err E = {0};
  int swaps = 0;
  for (int k = 0; k < 10; k++) {
    REQUIRE(!set_production("m", k % 2 ? g_v1 : g_v2));
    if (serving_reload(s, "m", &E) == ERR_OK)
      swaps++;
  }
  fx_msleep(50);
  for (int i = 0; i < 2; i++)
    check_watch_stop(&r[i]);
  CHECK_EQ_INT(swaps, 10);
  CHECK(r[0].n > 0 && r[1].n > 0);
  CHECK_EQ_INT(r[0].bad + r[1].bad, 0);
  serving_destroy(s);
  REQUIRE(!set_production("m", g_v1));
}

/* ---- set-up ------------------------------------------------------------ */

/* The specs and the registry versions the scenarios use: NULL, or the step
 * that failed. */
static const char *setup(void)
{
  struct err e = {0};
  char path[600];
  snprintf(g_specs, sizeof(g_specs), "%s/specs", fx_tmp());
  snprintf(g_regdir, sizeof(g_regdir), "%s/registry", fx_tmp());
  if (mkdir(g_specs, 0755))
    return "mkdir specs";
  snprintf(path, sizeof(path), "%s/m.yaml", g_specs);
  if (fx_write_text(path, SPEC_M))
    return "write specs/m.yaml";
  char other[600];
  snprintf(other, sizeof(other), "%s/other.yaml", g_specs);
  if (fx_write_text(other, SPEC_OTHER))
    return "write specs/other.yaml";
  if (registry_open(g_regdir, &g_reg, &e)) {
    fprintf(stderr, "registry_open: %s\n", e.msg);
    return "registry_open";
  }
  g_v1 = make_version("m", path, 1, 2);
  g_v2 = make_version("m", path, 4, 20);
  g_vbad = make_version("m", path, 2, 3);
  g_vnomodel = make_version("m", path, 2, 3);
  if (g_v1 < 0 || g_v2 < 0 || g_vbad < 0 || g_vnomodel < 0)
    return "train the four versions";
  /* corrupt: model.ubj truncated to half; missing: model.ubj removed */
  char mp[REGISTRY_PATH_MAX];
  size_t len = 0;
  if (registry_path(g_reg, "m", g_vbad, "model.ubj", mp, sizeof(mp), &e))
    return "path of the bad version's model.ubj";
  char *ubj = fx_read_file(mp, &len);
  if (!ubj || truncate(mp, (off_t)(len / 2))) {
    free(ubj);
    return "truncate the bad version's model.ubj";
  }
  free(ubj);
  if (registry_path(g_reg, "m", g_vnomodel, "model.ubj", mp, sizeof(mp),
                    &e) ||
      unlink(mp))
    return "remove the model-less version's model.ubj";
  /* what each version answers for g_row, straight from the files */
  struct serving_model *m = NULL;
  if (set_production("m", g_v1) ||
      serving_model_load(g_reg, g_specs, "m", g_v1, &m, &e))
    return "load version 1";
  g_p1 = predict_row(m);
  serving_release(m);
  if (serving_model_load(g_reg, g_specs, "m", g_v2, &m, &e))
    return "load version 2";
  g_p2 = predict_row(m);
  serving_release(m);
  if (!(fabsf(g_p1 - g_p2) > 1e-4f)) {
    fprintf(stderr, "setup: v1 and v2 answer alike (%g, %g)\n", g_p1, g_p2);
    return "two versions that answer apart";
  }
  return NULL;
}

/* Wait until the shadow of name is version want (0: none). */
static int wait_shadow(struct serving *s, const char *name, int want)
{
  return wait_served(s, name, 1, want);
}

/* The shadow (opts.shadow): the version aliased staging, loaded and
 * swapped like production; none when shadows are off, when staging is
 * production's version, or when the alias is removed; /metadata names
 * it; a held shadow reference outlives its swap. */
TEST(t_shadow)
{
  struct err E = {0};
  REQUIRE(!set_production("m", g_v1));
  REQUIRE_OK(registry_alias_set(g_reg, "m", SERVING_SHADOW_ALIAS, g_v2,
                                NULL, &E));
  struct serving_model *p = NULL, *sh = NULL;
  struct serving *off = new_set("m", 20);
  REQUIRE(off);
  REQUIRE(serving_acquire(off, "m", &p) == SERVING_OK);
  CHECK(serving_acquire_shadow(off, p) == NULL);
  serving_release(p);
  serving_destroy(off);

  struct serving_opts o = {.registry = g_reg, .specs_dir = g_specs,
                           .default_model = "m", .poll_ms = 20,
                           .shadow = 1};
  struct serving *s = NULL;
  REQUIRE_OK(serving_create(&s, &o, &E));
  REQUIRE_OK(serving_start(s, &E));
  REQUIRE(serving_acquire(s, "m", &p) == SERVING_OK);
  CHECK_EQ_INT(serving_model_version(p), g_v1);
  sh = serving_acquire_shadow(s, p);
  REQUIRE(sh);
  CHECK_EQ_INT(serving_model_version(sh), g_v2);
  CHECK(fabsf(predict_row(sh) - g_p2) < 1e-6f);
  CHECK(fabsf(predict_row(p) - g_p1) < 1e-6f);
  int st = 0;
  cJSON *d = serving_describe(s, "m", &st);
  REQUIRE(d);
  const cJSON *so = cJSON_GetObjectItemCaseSensitive(d, "shadow");
  const cJSON *sv = cJSON_GetObjectItemCaseSensitive(so, "model_version");
  char want[16];
  snprintf(want, sizeof(want), "%d", g_v2);
  CHECK_EQ_INT(st, 200);
  CHECK(cJSON_IsString(sv) && strcmp(sv->valuestring, want) == 0);
  cJSON_Delete(d);

  /* staging moved to production's version: no challenger */
  REQUIRE_OK(registry_alias_set(g_reg, "m", SERVING_SHADOW_ALIAS, g_v1,
                                NULL, &E));
  CHECK(wait_shadow(s, "m", 0));
  /* the held shadow bundle is still whole after its swap */
  CHECK_EQ_INT(serving_model_version(sh), g_v2);
  CHECK(fabsf(predict_row(sh) - g_p2) < 1e-6f);
  serving_release(sh);
  /* back to 2, then the alias removed: the shadow is dropped */
  REQUIRE_OK(registry_alias_set(g_reg, "m", SERVING_SHADOW_ALIAS, g_v2,
                                NULL, &E));
  CHECK(wait_shadow(s, "m", g_v2));
  REQUIRE_OK(registry_alias_delete(g_reg, "m", SERVING_SHADOW_ALIAS, &E));
  CHECK(wait_shadow(s, "m", 0));
  serving_release(p);
  serving_destroy(s);
}

int main(void)
{
  log_set_level(LOG_ERROR);
  const char *failed = fx_tmp() ? setup() : "a temporary directory";
  if (failed) {
    fprintf(stderr, "test_serving: set-up failed: %s\n", failed);
    return 1;
  }
  RUN(t_publish_acquire);
  RUN(t_unknown_and_not_deployed);
  RUN(t_hot_swap_held_reference);
  RUN(t_failed_load_keeps_old);
  RUN(t_model_load);
  RUN(t_swap_under_readers);
  RUN(t_shadow);
  registry_close(g_reg);
  return check_done();
}
