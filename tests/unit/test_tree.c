/* test_tree.c - native evaluator (tree.c) and serving model (model.c)
 * against real XGBoost: every row of iris, wine and breast_cancer, with
 * and without missing values, for each supported objective; unsupported
 * and corrupt models; concurrent predictions; python-xgboost reading our
 * saved model.
 */
/* check: tsan */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/model.h"
#include "mlopsd/train.h"
#include "mlopsd/tree.h"
#include "tree_testdata.h"


static void path_in_tmp(char *buf, size_t cap, const char *name)
{
  snprintf(buf, cap, "%s/%s", fx_tmp(), name);
}

/* Train a small model on d and save it to tmpdir/name. */
static int train_save(const struct td *d, const char *obj,
                      const struct train_kv *kv, size_t nkv, int rounds,
                      const char *name, struct train_result *r)
{
  struct train_data data = {d->xt, d->yt, d->nt, d->xv, d->yv, d->nv,
                            d->nfeat, NULL, NULL, NULL};
  struct train_params p = {.objective = obj,
                           .params = kv,
                           .n_params = nkv,
                           .num_boost_round = rounds,
                           .nthread = 1};
  struct err e = {0};
  if (train_fit(&data, &p, r, &e)) {
    fprintf(stderr, "  train %s: %s\n", obj, e.msg);
    return -1;
  }
  char path[512];
  path_in_tmp(path, sizeof(path), name);
  if (train_result_save(r, path, &e)) {
    fprintf(stderr, "  save: %s\n", e.msg);
    train_result_free(r);
    return -1;
  }
  return 0;
}

/* A dataset and a model trained on it and saved in the temp dir: the
 * set-up the tests here start from. */
struct trained {
  struct td d;
  struct train_result r;
  char path[512]; /* where the model was saved */
};

/* Load FILE (10% NaN seeded by NAN_SEED, none when 0), train OBJ with KV for
 * ROUNDS rounds and save it as NAME; 1 when all worked, else 0 after a
 * failed check, with nothing held.  trained_close() frees a 1. */
static int trained_open(struct trained *t, const char *file,
                        unsigned nan_seed, const char *obj,
                        const struct train_kv *kv, size_t nkv, int rounds,
                        const char *name)
{
  if (td_load(file, &t->d) != 0) {
    check_fail_at(__FILE__, __LINE__, "cannot load %s", file);
    return 0;
  }
  if (nan_seed)
    td_add_nan(&t->d, 0.1, nan_seed);
  if (train_save(&t->d, obj, kv, nkv, rounds, name, &t->r) != 0) {
    check_fail_at(__FILE__, __LINE__, "cannot train %s on %s as %s", obj,
                  file, name);
    td_free(&t->d);
    return 0;
  }
  path_in_tmp(t->path, sizeof(t->path), name);
  return 1;
}

static void trained_close(struct trained *t)
{
  train_result_free(&t->r);
  td_free(&t->d);
}

/* model_load of PATH with NFEAT features and options O: the model, or
 * NULL after a failed check that names the path and the error. */
static struct model *load_model(const char *path, size_t nfeat,
                                const struct model_load_opts *o)
{
  struct err e = {0};
  struct model *m = NULL;
  if (model_load(path, nfeat, o, &m, &e) != ERR_OK)
    check_fail_at(__FILE__, __LINE__, "model_load %s: %s", path, e.msg);
  return m;
}

struct cmp {
  double maxd;
  size_t exact, total;
};

/* Predict all rows of d natively and through XGBoost; 0 on success. */
static int compare_rows(const struct model *m, const float *x, size_t n,
                        struct cmp *c)
{
  size_t od = model_output_dim(m);
  float *a = malloc(n * od * sizeof(float));
  float *b = malloc(n * od * sizeof(float));
  struct err e = {0};
  int rc = 0;
  if (model_predict_native(m, x, n, a, &e) ||
      model_predict_xgb(m, x, n, b, &e)) {
    fprintf(stderr, "  predict: %s\n", e.msg);
    rc = -1;
  }
  memset(c, 0, sizeof(*c));
  for (size_t i = 0; !rc && i < n * od; i++) {
    double d = fabs((double)a[i] - (double)b[i]);
    if (d > c->maxd || isnan(d))
      c->maxd = isnan(d) ? INFINITY : d;
    c->exact += memcmp(&a[i], &b[i], sizeof(float)) == 0;
    c->total++;
  }
  free(a);
  free(b);
  return rc;
}

/* tree_predict (the fast walk when tree_fast) and tree_predict_generic
 * give the same bits on the n rows x, in one call and row by row. */
static void fast_vs_generic(const struct tree_model *tm, const float *x,
                            size_t n, const char *what)
{
  size_t od = tree_output_dim(tm), nf = tree_nfeat(tm);
  float *a = malloc(n * od * sizeof(float));
  float *b = malloc(n * od * sizeof(float));
  float *c = malloc(n * od * sizeof(float));
  struct err e = {0};
  REQUIRE(a && b && c);
  CHECK_EQ_INT(tree_predict(tm, x, n, nf, a, &e), ERR_OK);
  CHECK_EQ_INT(tree_predict_generic(tm, x, n, nf, b, &e), ERR_OK);
  for (size_t r = 0; r < n; r++)
    CHECK_EQ_INT(tree_predict(tm, x + r * nf, 1, nf, c + r * od, &e),
                 ERR_OK);
  size_t diff = 0, first = n * od;
  for (size_t i = 0; i < n * od; i++)
    if (memcmp(&a[i], &b[i], sizeof(float)) ||
        memcmp(&c[i], &b[i], sizeof(float))) {
      diff++;
      if (first == n * od)
        first = i;
    }
  if (diff)
    check_fail_at(__FILE__, __LINE__,
                  "%s: fast walk differs from the generic step in %zu of "
                  "%zu values, first at row %zu (%.9g / %.9g vs %.9g)",
                  what, diff, n * od, first / od, (double)a[first],
                  (double)c[first], (double)b[first]);
  free(a);
  free(b);
  free(c);
}

/* The fast walk against the generic step on the training rows (with their
 * NaN), rows generated from the thresholds (on, just below and beyond
 * each, NaN) and the same with a third of the values +-inf. */
static void check_fast_walk(const struct tree_model *tm, const float *x,
                            size_t n)
{
  CHECK(tree_fast(tm));
  fast_vs_generic(tm, x, n, "training rows");
  size_t ng = 700, nf = tree_nfeat(tm);
  float *g = malloc(ng * nf * sizeof(float));
  REQUIRE(g);
  tree_gen_rows(tm, ng, 11, g);
  fast_vs_generic(tm, g, ng, "generated rows");
  for (size_t i = 0; i < ng * nf; i += 3)
    g[i] = (i / 3) % 2 ? INFINITY : -INFINITY;
  fast_vs_generic(tm, g, ng, "generated rows with infinities");
  free(g);
}

/* Train obj on dataset `file` (optionally with 10% NaN), check that the
 * native evaluator is accepted and matches XGBoost on every row. */
static void check_objective(const char *file, const char *obj, int nan,
                            const struct train_kv *kv, size_t nkv)
{
  struct train_kv base[8] = {{"max_depth", "4"}, {"eta", "0.3"},
                             {"tree_method", "hist"}, {"seed", "1"}};
  size_t nb = 4;
  for (size_t i = 0; i < nkv && nb < 8; i++)
    base[nb++] = kv[i];
  char name[64];
  snprintf(name, sizeof(name), "m_%s_%d.ubj", obj + 5, nan);
  for (char *p = name; *p; p++)
    if (*p == ':')
      *p = '_';
  struct trained t;
  REQUIRE(trained_open(&t, file, nan ? 7 : 0, obj, base, nb, 12, name));

  struct tree_model *tm = NULL;
  struct err e = {0};
  CHECK_EQ_INT(tree_compile_file(t.path, &tm, &e), ERR_OK);
  if (tm) {
    CHECK_EQ_INT(tree_num_trees(tm), t.r.num_trees);
    CHECK_EQ_STR(tree_objective_name(tm), obj);
    CHECK_EQ_INT(tree_nfeat(tm), t.d.nfeat);
    for (size_t i = 0; i < nkv; i++)
      if (!strcmp(kv[i].key, "base_score"))
        CHECK(tree_base_score(tm) == strtof(kv[i].value, NULL));
    check_fast_walk(tm, t.d.x, t.d.n);
    tree_destroy(tm);
  } else {
    fprintf(stderr, "  compile: %s\n", e.msg);
  }

  struct model_load_opts o = {.sample_rows = t.d.xv, .n_sample = t.d.nv};
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(t.path, t.d.nfeat, &o, &m, &e), ERR_OK);
  if (m) {
    CHECK(model_native(m));
    struct cmp c;
    CHECK(compare_rows(m, t.d.x, t.d.n, &c) == 0);
    fprintf(stderr, "  %-18s %-16s nan=%d trees=%d: %zu/%zu values "
                    "bit-equal, max |diff| %.3g; %s\n",
            file, obj, nan, t.r.num_trees, c.exact, c.total, c.maxd,
            model_native_status(m));
    CHECK(c.maxd <= 1e-6);
    CHECK_EQ_INT(c.exact, c.total);
    /* The output of model_predict is the native one, same as XGBoost's
     * predict through train_result_predict on a DMatrix. */
    size_t od = model_output_dim(m), nout = 0;
    float *a = malloc(t.d.n * od * sizeof(float));
    float *b = malloc(t.d.n * od * sizeof(float));
    CHECK_EQ_INT(model_predict(m, t.d.x, t.d.n, a, &e), ERR_OK);
    CHECK_EQ_INT(train_result_predict(&t.r, t.d.x, t.d.n, t.d.nfeat, b,
                                      t.d.n * od, &nout, &e),
                 ERR_OK);
    CHECK_EQ_INT(nout, t.d.n * od);
    CHECK(memcmp(a, b, t.d.n * od * sizeof(float)) == 0);
    free(a);
    free(b);
    model_unref(m);
  } else {
    fprintf(stderr, "  model_load: %s\n", e.msg);
  }
  trained_close(&t);
}

/* One objective scenario: check_objective on a dataset, run by
 * RUN_CASE as a scenario of its own under its name. */
struct obj_case {
  const char *name, *file, *obj;
  int nan;
  struct train_kv kv[3];
  size_t nkv;
};

/* base_score is stored as a probability; the margin starts at its logit
 * (cancer_logistic_base_score). */
static const struct obj_case OBJ_CASES[] = {
    {"iris_softprob", "iris.csv", "multi:softprob", 0, {{0}}, 0},
    {"iris_softprob_nan", "iris.csv", "multi:softprob", 1, {{0}}, 0},
    {"iris_softmax_nan", "iris.csv", "multi:softmax", 1, {{0}}, 0},
    {"wine_softprob", "wine_data.csv", "multi:softprob", 0, {{0}}, 0},
    {"wine_softprob_nan", "wine_data.csv", "multi:softprob", 1,
     {{"colsample_bytree", "0.8"}, {"lambda", "3"}}, 2},
    {"wine_softmax", "wine_data.csv", "multi:softmax", 0, {{0}}, 0},
    {"wine_regression_nan", "wine_data.csv", "reg:squarederror", 1, {{0}},
     0},
    {"cancer_logistic", "breast_cancer.csv", "binary:logistic", 0, {{0}}, 0},
    {"cancer_logistic_nan", "breast_cancer.csv", "binary:logistic", 1, {{0}},
     0},
    {"cancer_logistic_base_score", "breast_cancer.csv", "binary:logistic", 1,
     {{"base_score", "0.3"}}, 1},
    {"cancer_regression_base_score", "breast_cancer.csv", "reg:squarederror",
     1, {{"base_score", "0.7"}, {"max_depth", "8"}}, 2},
    {"cancer_deep_lossguide", "breast_cancer.csv", "binary:logistic", 1,
     {{"max_depth", "0"}, {"grow_policy", "lossguide"}, {"max_leaves", "64"}},
     3},
};

static void run_obj_case(const struct obj_case *c)
{
  check_objective(c->file, c->obj, c->nan, c->nkv ? c->kv : NULL, c->nkv);
}

/* The JSON form of a model compiles to the same evaluator. */
TEST(json_equals_ubj)
{
  static const struct train_kv kv[] = {{"max_depth", "5"}};
  struct trained t;
  REQUIRE(trained_open(&t, "wine_data.csv", 3, "multi:softprob", kv, 1, 8,
                       "j.ubj"));
  char pj[512];
  path_in_tmp(pj, sizeof(pj), "j.json");
  struct err e = {0};
  CHECK_EQ_INT(train_result_save(&t.r, pj, &e), ERR_OK);
  struct tree_model *a = NULL, *b = NULL;
  CHECK_EQ_INT(tree_compile_file(pj, &a, &e), ERR_OK);
  CHECK_EQ_INT(tree_compile_file(t.path, &b, &e), ERR_OK);
  if (a && b) {
    CHECK_EQ_INT(tree_num_nodes(a), tree_num_nodes(b));
    size_t od = tree_output_dim(a);
    float *pa = malloc(t.d.n * od * sizeof(float));
    float *pb = malloc(t.d.n * od * sizeof(float));
    CHECK_EQ_INT(tree_predict(a, t.d.x, t.d.n, t.d.nfeat, pa, &e), ERR_OK);
    CHECK_EQ_INT(tree_predict(b, t.d.x, t.d.n, t.d.nfeat, pb, &e), ERR_OK);
    CHECK(memcmp(pa, pb, t.d.n * od * sizeof(float)) == 0);
    free(pa);
    free(pb);
  }
  tree_destroy(a);
  tree_destroy(b);
  /* A model saved as JSON also loads for serving. */
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(pj, 0, NULL, &m, &e), ERR_OK);
  if (m)
    CHECK(model_native(m));
  model_unref(m);
  trained_close(&t);
}

/* Unsupported models: refused by the compiler with a clear message and
 * served through XGBoost by model_load. */
static void check_refused(const char *obj, const struct train_kv *kv,
                          size_t nkv, const char *name, const char *needle)
{
  struct trained t;
  REQUIRE(trained_open(&t, "breast_cancer.csv", 5, obj, kv, nkv, 5, name));
  struct tree_model *tm = NULL;
  struct err e = {0};
  CHECK_EQ_INT(tree_compile_file(t.path, &tm, &e), ERR_UNSUPPORTED);
  CHECK(tm == NULL);
  CHECK(strstr(e.msg, needle) != NULL);
  fprintf(stderr, "  refused: %s\n", e.msg);
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(t.path, t.d.nfeat, NULL, &m, &e), ERR_OK);
  if (!m)
    fprintf(stderr, "  model_load: %s\n", e.msg);
  if (m) {
    CHECK(!model_native(m));
    CHECK(strncmp(model_native_status(m), "xgboost: ", 9) == 0);
    CHECK(strstr(model_native_status(m), needle) != NULL);
    float *a = malloc(t.d.n * sizeof(float)),
          *b = malloc(t.d.n * sizeof(float));
    size_t nout = 0;
    CHECK_EQ_INT(model_predict(m, t.d.x, t.d.n, a, &e), ERR_OK);
    CHECK_EQ_INT(train_result_predict(&t.r, t.d.x, t.d.n, t.d.nfeat, b, t.d.n,
                                      &nout, &e),
                 ERR_OK);
    CHECK(memcmp(a, b, t.d.n * sizeof(float)) == 0);
    CHECK_EQ_INT(model_predict_native(m, t.d.x, 1, a, &e), ERR_UNSUPPORTED);
    free(a);
    free(b);
    model_unref(m);
  }
  trained_close(&t);
}

TEST(dart_refused)
{
  static const struct train_kv kv[] = {{"booster", "dart"},
                                       {"rate_drop", "0.1"},
                                       {"max_depth", "3"}};
  check_refused("binary:logistic", kv, 3, "dart.ubj", "dart");
}
TEST(gblinear_refused)
{
  static const struct train_kv kv[] = {{"booster", "gblinear"}};
  check_refused("binary:logistic", kv, 1, "linear.ubj", "gblinear");
}
TEST(objective_refused)
{
  static const struct train_kv kv[] = {{"max_depth", "3"}};
  check_refused("reg:logistic", kv, 1, "reglog.ubj", "reg:logistic");
}

static int write_file(const char *path, const void *buf, size_t len)
{
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  size_t w = fwrite(buf, 1, len, f);
  return (fclose(f) || w != len) ? -1 : 0;
}

/* Replace the first occurrence of from by to in a malloc'd string. */
static char *replace1(const char *s, const char *from, const char *to)
{
  const char *p = strstr(s, from);
  if (!p)
    return NULL;
  size_t a = (size_t)(p - s), fl = strlen(from), tl = strlen(to);
  char *o = malloc(strlen(s) - fl + tl + 1);
  memcpy(o, s, a);
  memcpy(o + a, to, tl);
  strcpy(o + a + tl, p + fl);
  return o;
}

/* Copy of the JSON model j with element idx of the first array named
 * key replaced by val (a number's text); NULL if there is none. */
static char *set_elem(const char *j, const char *key, size_t idx,
                      const char *val)
{
  char from[64];
  snprintf(from, sizeof(from), "\"%s\":[", key);
  const char *p = strstr(j, from);
  if (!p)
    return NULL;
  p += strlen(from);
  for (size_t i = 0; i < idx; i++) {
    p = strpbrk(p, ",]");
    if (!p || *p == ']')
      return NULL;
    p++;
  }
  const char *q = strpbrk(p, ",]");
  if (!q)
    return NULL;
  size_t a = (size_t)(p - j), vl = strlen(val);
  char *o = malloc(strlen(j) + vl + 1);
  memcpy(o, j, a);
  memcpy(o + a, val, vl);
  strcpy(o + a + vl, q);
  return o;
}

/* Which models take the fast walk: it is exact only when every split
 * condition is above -inf and no leaf is -inf (a NaN goes to a slot of
 * +-inf there).  A -inf condition with the default left, or a -inf leaf,
 * must keep the generic step; a +inf condition may take the fast walk and
 * give the generic step's bits. */
TEST(fast_walk_conditions)
{
  struct trained t;
  REQUIRE(trained_open(&t, "iris.csv", 7, "multi:softprob", NULL, 0, 4,
                       "fw.json"));
  size_t jl;
  char *j = fx_read_file(t.path, &jl);
  REQUIRE(j);
  struct tree_model *tm = NULL;
  struct err e = {0};
  REQUIRE(tree_compile_buffer(j, jl, &tm, &e) == ERR_OK);
  check_fast_walk(tm, t.d.x, t.d.n);
  tree_destroy(tm);
  /* The first leaf of the first tree (a -1 in its left_children). */
  const char *lc = strstr(j, "\"left_children\":[");
  REQUIRE(lc);
  lc += strlen("\"left_children\":[");
  size_t leaf = 0;
  for (char *end; strtol(lc, &end, 10) != -1; lc = end + 1, leaf++)
    REQUIRE(*end == ',');
  struct {
    const char *key;
    size_t idx;
    const char *val;
    int fast;
  } cases[] = {
      {"split_conditions", 0, "-1e39", 0}, /* -inf: strtof overflows */
      {"split_conditions", leaf, "-1e39", 0},
      {"split_conditions", 0, "1e39", 1},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *m1 = set_elem(j, cases[i].key, cases[i].idx, cases[i].val);
    REQUIRE(m1);
    char *m2 = set_elem(m1, "default_left", 0, "1");
    REQUIRE(m2);
    CHECK_EQ_INT(tree_compile_buffer(m2, strlen(m2), &tm, &e), ERR_OK);
    if (tm) {
      if (tree_fast(tm) != cases[i].fast)
        check_fail_at(__FILE__, __LINE__, "case %zu (%s[%zu] = %s): "
                      "tree_fast %d, want %d", i, cases[i].key,
                      cases[i].idx, cases[i].val, tree_fast(tm),
                      cases[i].fast);
      if (cases[i].fast)
        check_fast_walk(tm, t.d.x, t.d.n);
      tree_destroy(tm);
    }
    free(m1);
    free(m2);
  }
  free(j);
  trained_close(&t);
}

TEST(corrupt_models)
{
  struct trained t;
  REQUIRE(
      trained_open(&t, "iris.csv", 0, "multi:softprob", NULL, 0, 4, "c.ubj"));
  char bad[512], js[512];
  path_in_tmp(bad, sizeof(bad), "bad.ubj");
  path_in_tmp(js, sizeof(js), "c.json");
  struct err e = {0};
  CHECK_EQ_INT(train_result_save(&t.r, js, &e), ERR_OK);
  size_t len;
  char *buf = fx_read_file(t.path, &len);
  REQUIRE(buf && len > 100);
  struct tree_model *tm = NULL;
  struct model *m = NULL;

  /* Truncated at several points: a parse error naming the byte. */
  size_t cuts[] = {1, 7, len / 3, len / 2, len - 3};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    CHECK_EQ_INT(tree_compile_buffer(buf, cuts[i], &tm, &e), ERR_PARSE);
    CHECK(tm == NULL);
    CHECK(strchr(e.msg, '\n') == NULL);
  }
  fprintf(stderr, "  truncated: %s\n", e.msg);
  /* Truncated file: refused before XGBoost reads it (its UBJSON reader
   * reads past the end of a truncated buffer); one-line message. */
  CHECK(write_file(bad, buf, len / 2) == 0);
  CHECK_EQ_INT(model_load(bad, 0, NULL, &m, &e), ERR_PARSE);
  CHECK(m == NULL);
  CHECK(strchr(e.msg, '\n') == NULL);
  CHECK(strstr(e.msg, "bad.ubj") != NULL);
  fprintf(stderr, "  model_load truncated: %s\n", e.msg);
  /* Garbage and empty files. */
  CHECK(write_file(bad, "hello world, not a model", 24) == 0);
  CHECK_EQ_INT(tree_compile_file(bad, &tm, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "not an XGBoost model") != NULL);
  CHECK_EQ_INT(model_load(bad, 0, NULL, &m, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "corrupt") != NULL);
  CHECK(write_file(bad, "", 0) == 0);
  CHECK_EQ_INT(tree_compile_file(bad, &tm, &e), ERR_PARSE);
  CHECK(model_load(bad, 0, NULL, &m, &e) != ERR_OK);
  /* Every single-byte corruption of the header area fails cleanly or
   * compiles (fuzz-ish, for ASan). */
  for (size_t i = 0; i < len && i < 600; i += 3) {
    char save = buf[i];
    buf[i] = (char)(buf[i] ^ 0x5a);
    if (tree_compile_buffer(buf, len, &tm, &e) == ERR_OK)
      tree_destroy(tm);
    tm = NULL;
    buf[i] = save;
  }
  /* Missing file. */
  CHECK_EQ_INT(model_load("/nonexistent/model.ubj", 0, NULL, &m, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(tree_compile_file("/nonexistent/model.ubj", &tm, &e),
               ERR_IO);
  /* Wrong feature count. */
  CHECK_EQ_INT(model_load(t.path, t.d.nfeat + 1, NULL, &m, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "features") != NULL);
  /* A cycle in a tree (left child of the root is the root). */
  size_t jl;
  char *j = fx_read_file(js, &jl);
  REQUIRE(j);
  char *cyc = replace1(j, "\"left_children\":[1,", "\"left_children\":[0,");
  REQUIRE(cyc);
  CHECK_EQ_INT(tree_compile_buffer(cyc, strlen(cyc), &tm, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "child") != NULL);
  fprintf(stderr, "  cycle: %s\n", e.msg);
  /* model_load refuses it too (XGBoost would walk the cycle forever). */
  CHECK(write_file(bad, cyc, strlen(cyc)) == 0);
  char badj[512];
  path_in_tmp(badj, sizeof(badj), "cycle.json");
  CHECK(rename(bad, badj) == 0);
  CHECK_EQ_INT(model_load(badj, 0, NULL, &m, &e), ERR_PARSE);
  CHECK(m == NULL);
  free(cyc);
  /* A split on a feature the model does not have. */
  char *feat = replace1(j, "\"split_indices\":[", "\"split_indices\":[99");
  REQUIRE(feat);
  CHECK_EQ_INT(tree_compile_buffer(feat, strlen(feat), &tm, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "feature") != NULL);
  free(feat);
  /* Categorical split marked in split_type. */
  char *cat = replace1(j, "\"split_type\":[0", "\"split_type\":[1");
  REQUIRE(cat);
  CHECK_EQ_INT(tree_compile_buffer(cat, strlen(cat), &tm, &e),
               ERR_UNSUPPORTED);
  CHECK(strstr(e.msg, "categorical") != NULL);
  free(cat);
  free(j);
  /* Wrong feature count at predict time. */
  CHECK_EQ_INT(tree_compile_file(t.path, &tm, &e), ERR_OK);
  if (tm) {
    float out[3];
    CHECK_EQ_INT(tree_predict(tm, t.d.x, 1, t.d.nfeat - 1, out, &e), ERR_INVAL);
    CHECK(strstr(e.msg, "features") != NULL);
    tree_destroy(tm);
  }
  free(buf);
  trained_close(&t);
}

/* A model where XGBoost and the native parser read different numbers
 * (a duplicated key in JSON): verification must refuse native. */
TEST(verification_refuses_mismatch)
{
  struct trained t;
  REQUIRE(trained_open(&t, "wine_data.csv", 0, "reg:squarederror", NULL, 0, 4,
                       "v.json"));
  char bad[512];
  path_in_tmp(bad, sizeof(bad), "vdup.json");
  size_t len;
  char *j = fx_read_file(t.path, &len);
  REQUIRE(j);
  /* XGBoost keeps the last of duplicated keys, the native reader the
   * first: base_score 0.9 vs 0.5 shifts every native value by 0.4. */
  char *dup = replace1(j, "\"base_score\":", "\"base_score\":\"9E-1\","
                                             "\"base_score\":");
  REQUIRE(dup);
  CHECK(write_file(bad, dup, strlen(dup)) == 0);
  struct err e = {0};
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(bad, 0, NULL, &m, &e), ERR_OK);
  if (m) {
    CHECK(!model_native(m));
    CHECK(strstr(model_native_status(m), "refused") != NULL);
    fprintf(stderr, "  %s\n", model_native_status(m));
    float a[4], b[4];
    CHECK_EQ_INT(model_predict(m, t.d.x, 4, a, &e), ERR_OK);
    CHECK_EQ_INT(model_predict_xgb(m, t.d.x, 4, b, &e), ERR_OK);
    CHECK(memcmp(a, b, sizeof(a)) == 0);
    model_unref(m);
  }
  free(dup);
  free(j);
  trained_close(&t);
}

/* Generated verification rows: thresholds, just below them, NaN. */
TEST(generated_rows)
{
  struct trained t;
  REQUIRE(trained_open(&t, "breast_cancer.csv", 0, "binary:logistic", NULL, 0,
                       6, "g.ubj"));
  struct tree_model *tm = NULL;
  struct err e = {0};
  REQUIRE(tree_compile_file(t.path, &tm, &e) == ERR_OK);
  size_t n = 512, nf = tree_nfeat(tm);
  float *x = malloc(n * nf * sizeof(float));
  float *y = malloc(n * nf * sizeof(float));
  tree_gen_rows(tm, n, 42, x);
  tree_gen_rows(tm, n, 42, y);
  CHECK(memcmp(x, y, n * nf * sizeof(float)) == 0);
  size_t nans = 0;
  for (size_t i = 0; i < n * nf; i++)
    nans += isnan(x[i]) != 0;
  CHECK(nans > n * nf / 20 && nans < n * nf / 5);
  struct model *m = NULL;
  struct model_load_opts o = {.n_generated = 64};
  CHECK_EQ_INT(model_load(t.path, nf, &o, &m, &e), ERR_OK);
  if (m) {
    CHECK(model_native(m));
    CHECK(strstr(model_native_status(m), "64 rows") != NULL);
    struct cmp c;
    CHECK(compare_rows(m, x, n, &c) == 0);
    CHECK_EQ_INT(c.exact, c.total);
    /* Infinities and huge values are values, not missing: same path. */
    for (size_t i = 0; i < n * nf; i += 7)
      x[i] = (i / 7) % 3 == 0 ? INFINITY : (i / 7) % 3 == 1 ? -INFINITY
                                                            : 3e38f;
    CHECK(compare_rows(m, x, n, &c) == 0);
    CHECK_EQ_INT(c.exact, c.total);
    model_unref(m);
  }
  o.no_native = 1;
  CHECK_EQ_INT(model_load(t.path, nf, &o, &m, &e), ERR_OK);
  if (m) {
    CHECK(!model_native(m));
    model_unref(m);
  }
  free(x);
  free(y);
  tree_destroy(tm);
  trained_close(&t);
}

/* Loading from a directory holding model.ubj, refcounting. */
TEST(load_dir_and_refs)
{
  struct trained t;
  REQUIRE(trained_open(&t, "iris.csv", 0, "multi:softprob", NULL, 0, 3,
                       "model.ubj"));
  struct model *m = load_model(fx_tmp(), 4, NULL);
  REQUIRE(m);
  struct err e = {0};
  CHECK(strstr(model_path(m), "/model.ubj") != NULL);
  CHECK_EQ_INT(model_num_class(m), 3);
  CHECK_EQ_INT(model_output_dim(m), 3);
  CHECK_EQ_INT(model_nfeat(m), 4);
  CHECK_EQ_INT(model_num_rounds(m), 3);
  CHECK_EQ_STR(model_objective(m), "multi:softprob");
  CHECK(model_ref(m) == m);
  model_unref(m);
  float out[3];
  CHECK_EQ_INT(model_predict(m, t.d.x, 1, out, &e), ERR_OK);
  CHECK_NEAR(out[0] + out[1] + out[2], 1.0, 1e-6);
  model_unref(m);
  model_unref(NULL);
  CHECK(model_ref(NULL) == NULL);
  trained_close(&t);
}

/* ---- concurrency ---------------------------------------------------- */

struct conc {
  struct model *m;
  const float *x;
  size_t n, nfeat, od;
  const float *want; /* single-threaded native result */
  int xgb;           /* 1: through XGBoost */
  int bad;
};

static void *conc_run(void *arg)
{
  struct conc *c = arg;
  float out[64 * 3];
  struct err e = {0};
  for (int it = 0; it < 30; it++) {
    for (size_t r0 = 0; r0 < c->n; r0 += 64) {
      size_t nb = c->n - r0 < 64 ? c->n - r0 : 64;
      if (it & 1)
        nb = 1;
      struct model *m = model_ref(c->m);
      enum err_code rc =
          c->xgb ? model_predict_xgb(m, c->x + r0 * c->nfeat, nb, out, &e)
                 : model_predict(m, c->x + r0 * c->nfeat, nb, out, &e);
      model_unref(m);
      if (rc || memcmp(out, c->want + r0 * c->od, nb * c->od * 4))
        c->bad++;
    }
  }
  return NULL;
}

TEST(concurrent_predict)
{
  struct trained t;
  REQUIRE(trained_open(&t, "wine_data.csv", 9, "multi:softprob", NULL, 0, 10,
                       "t.ubj"));
  struct model *m = load_model(t.path, t.d.nfeat, NULL);
  REQUIRE(m);
  CHECK(model_native(m));
  struct err e = {0};
  float *want = malloc(t.d.n * 3 * sizeof(float));
  CHECK_EQ_INT(model_predict(m, t.d.x, t.d.n, want, &e), ERR_OK);
  pthread_t th[4];
  struct conc c[4];
  for (int i = 0; i < 4; i++) {
    c[i] =
        (struct conc){model_ref(m), t.d.x, t.d.n, t.d.nfeat, 3, want, i & 1, 0};
    CHECK(pthread_create(&th[i], NULL, conc_run, &c[i]) == 0);
  }
  /* The publisher drops its reference while readers still predict: the
   * last reader frees the model. */
  model_unref(m);
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(c[i].bad, 0);
    model_unref(c[i].m);
  }
  free(want);
  trained_close(&t);
}

/* ---- another XGBoost consumer reads our model ----------------------- */

TEST(python_xgboost_reads_model)
{
  if (access("/usr/bin/python3", X_OK) != 0) {
    fprintf(stderr, "  /usr/bin/python3 missing\n");
    CHECK(0);
    return;
  }
  static const struct train_kv kv[] = {{"max_depth", "6"}};
  struct trained t;
  REQUIRE(trained_open(&t, "wine_data.csv", 11, "multi:softprob", kv, 1, 20,
                       "py.ubj"));
  char xpath[512], ppath[512], cmd[2048];
  path_in_tmp(xpath, sizeof(xpath), "rows.f32");
  path_in_tmp(ppath, sizeof(ppath), "py.f32");
  CHECK(write_file(xpath, t.d.x, t.d.n * t.d.nfeat * sizeof(float)) == 0);
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 -c '\n"
           "import sys, numpy as np, xgboost as xgb\n"
           "b = xgb.Booster(model_file=sys.argv[1])\n"
           "x = np.fromfile(sys.argv[2], dtype=np.float32)"
           ".reshape(-1, %zu)\n"
           "p = b.predict(xgb.DMatrix(x, missing=np.nan))\n"
           "p.astype(np.float32).tofile(sys.argv[3])\n"
           "' %s %s %s",
           t.d.nfeat, t.path, xpath, ppath);
  CHECK_EQ_INT(system(cmd), 0);
  size_t len = 0;
  char *py = fx_read_file(ppath, &len);
  REQUIRE(py);
  CHECK_EQ_INT(len, t.d.n * 3 * sizeof(float));
  struct err e = {0};
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(t.path, t.d.nfeat, NULL, &m, &e), ERR_OK);
  if (m && len == t.d.n * 3 * sizeof(float)) {
    CHECK(model_native(m));
    float *ours = malloc(len);
    CHECK_EQ_INT(model_predict(m, t.d.x, t.d.n, ours, &e), ERR_OK);
    const float *pp = (const float *)py;
    double maxd = 0;
    for (size_t i = 0; i < t.d.n * 3; i++)
      if (fabs((double)ours[i] - pp[i]) > maxd)
        maxd = fabs((double)ours[i] - pp[i]);
    fprintf(stderr, "  python-xgboost vs mlopsd native: max |diff| %.3g "
                    "over %zu values\n", maxd, t.d.n * 3);
    CHECK(maxd <= 1e-6);
    free(ours);
  }
  model_unref(m);
  free(py);
  trained_close(&t);
}

static void rm_tmp(void)
{
}

int main(void)
{
  for (size_t i = 0; i < sizeof(OBJ_CASES) / sizeof(OBJ_CASES[0]); i++)
    RUN_CASE(OBJ_CASES[i].name, run_obj_case, &OBJ_CASES[i]);
  RUN(json_equals_ubj);
  RUN(dart_refused);
  RUN(gblinear_refused);
  RUN(objective_refused);
  RUN(fast_walk_conditions);
  RUN(corrupt_models);
  RUN(verification_refuses_mismatch);
  RUN(generated_rows);
  RUN(load_dir_and_refs);
  RUN(concurrent_predict);
  RUN(python_xgboost_reads_model);
  rm_tmp();
  return check_done();
}
