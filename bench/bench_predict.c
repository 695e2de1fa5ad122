/* bench_predict.c - per-row prediction latency, native evaluator vs
 * XGBoost's in-place predict (both through model.c, nthread=1).
 *
 *   bench_predict [MODEL.ubj]
 *
 * Without an argument it trains a model shaped like the course's credit
 * model (3 classes, 28 rounds = 84 trees, depth 8, 60 features, 2,500
 * rows of synthetic data with 5% missing values).  With a model file it
 * loads that and predicts rows generated from its split thresholds.
 * Prints p50/p99 per row for single-row calls and 64-row batches and the
 * speed-up.  Figures only; nothing is judged.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/log.h"
#include "mlopsd/model.h"
#include "mlopsd/train.h"
#include "mlopsd/tree.h"

#define NROWS 2500
#define NFEAT 60
#define NCLS 3

static double now_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static uint64_t rs = 0x1234567;
static double urand(void)
{
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return (double)(rs >> 11) / 9007199254740992.0;
}

/* Synthetic 3-class data with interactions so depth-8 trees fill up. */
static void make_data(float *x, float *y, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    float *r = x + i * NFEAT;
    for (size_t j = 0; j < NFEAT; j++)
      r[j] = (float)(urand() * 10 - 5);
    double s = r[0] + 0.8 * r[1] * (r[2] > 0) - 0.5 * r[3] * r[4] / 5 +
               sin(r[5]) * 2 + (r[6] > 1 ? 1.5 : -0.5) + 0.3 * r[7] +
               (urand() - 0.5) * 4;
    y[i] = s < -1.5 ? 0.0f : s < 1.5 ? 1.0f : 2.0f;
    for (size_t j = 0; j < NFEAT; j++)
      if (urand() < 0.05)
        r[j] = NAN;
  }
}

static int cmp_d(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef enum err_code (*pred_fn)(const struct model *, const float *,
                                 size_t, float *, struct err *);

struct lat {
  double p50, p99, mean;
};

/* Time `calls` calls of batch rows each; per-row latency percentiles. */
static struct lat measure(pred_fn f, const struct model *m, const float *x,
                          size_t nrows, size_t batch, size_t calls)
{
  size_t nf = model_nfeat(m);
  float *out = malloc(batch * model_output_dim(m) * sizeof(float));
  double *t = malloc(calls * sizeof(double));
  struct err e = {0};
  double sum = 0;
  /* warm-up */
  for (size_t i = 0; i < 200; i++)
    (void)f(m, x + ((i * batch) % (nrows - batch + 1)) * nf, batch, out, &e);
  for (size_t i = 0; i < calls; i++) {
    size_t r0 = (i * batch) % (nrows - batch + 1);
    double t0 = now_us();
    if (f(m, x + r0 * nf, batch, out, &e)) {
      fprintf(stderr, "predict: %s\n", e.msg);
      exit(1);
    }
    t[i] = (now_us() - t0) / (double)batch;
    sum += t[i];
  }
  qsort(t, calls, sizeof(double), cmp_d);
  struct lat l = {t[calls / 2], t[calls * 99 / 100], sum / (double)calls};
  free(t);
  free(out);
  return l;
}

int main(int argc, char **argv)
{
  log_set_level(LOG_WARN);
  char path[256];
  char dir[] = "/tmp/mlopsd-bench-predict.XXXXXX";
  float *x = NULL;
  size_t nrows = NROWS;
  struct err e = {0};
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  if (argc > 1) {
    snprintf(path, sizeof(path), "%s", argv[1]);
  } else {
    float *y = malloc(NROWS * sizeof(float));
    x = malloc((size_t)NROWS * NFEAT * sizeof(float));
    make_data(x, y, NROWS);
    size_t nt = NROWS * 7 / 10;
    static const struct train_kv kv[] = {{"max_depth", "8"},
                                         {"eta", "0.3"},
                                         {"tree_method", "hist"},
                                         {"colsample_bytree", "0.9"},
                                         {"lambda", "3"},
                                         {"seed", "42"}};
    struct train_data d = {x, y, nt, x + nt * NFEAT, y + nt, NROWS - nt,
                           NFEAT, NULL, NULL, NULL};
    struct train_params p = {.objective = "multi:softprob",
                             .params = kv,
                             .n_params = 6,
                             .num_boost_round = 28,
                             .nthread = 2};
    struct train_result r;
    double t0 = now_us();
    if (train_fit(&d, &p, &r, &e)) {
      fprintf(stderr, "train: %s\n", e.msg);
      return 1;
    }
    printf("trained %d rounds (%d trees) on %zu x %d in %.0f ms; val acc "
           "%.3f\n", r.num_rounds, r.num_trees, nt, NFEAT,
           (now_us() - t0) / 1e3, r.metrics.accuracy);
    snprintf(path, sizeof(path), "%s/model.ubj", dir);
    if (train_result_save(&r, path, &e)) {
      fprintf(stderr, "save: %s\n", e.msg);
      return 1;
    }
    train_result_free(&r);
    free(y);
  }
  double t0 = now_us();
  struct tree_model *tm = NULL;
  if (tree_compile_file(path, &tm, &e)) {
    fprintf(stderr, "compile: %s\n", e.msg);
    return 1;
  }
  double tc = now_us() - t0;
  t0 = now_us();
  struct model *m = NULL;
  struct model_load_opts o = {0};
  if (x) {
    o.sample_rows = x;
    o.n_sample = nrows;
  }
  if (model_load(path, 0, &o, &m, &e)) {
    fprintf(stderr, "load: %s\n", e.msg);
    return 1;
  }
  double tl = now_us() - t0;
  if (!x) {
    nrows = NROWS;
    x = malloc(nrows * model_nfeat(m) * sizeof(float));
    tree_gen_rows(tm, nrows, 99, x);
  }
  printf("model: %s, %zu trees, %zu nodes, max depth %zu, %zu features, "
         "%zu outputs/row\n", tree_objective_name(tm), tree_num_trees(tm),
         tree_num_nodes(tm), tree_max_depth(tm), tree_nfeat(tm),
         tree_output_dim(tm));
  printf("compile %.2f ms; model_load (XGBoost load + compile + verify on "
         "%zu rows) %.1f ms\n", tc / 1e3, nrows + 256, tl / 1e3);
  printf("evaluator: %s\n", model_native_status(m));
  if (!model_native(m)) {
    fprintf(stderr, "native evaluator not accepted\n");
    return 1;
  }
  printf("%-22s %10s %10s %10s\n", "per-row latency (us)", "p50", "p99",
         "mean");
  struct lat n1 = measure(model_predict_native, m, x, nrows, 1, 100000);
  struct lat x1 = measure(model_predict_xgb, m, x, nrows, 1, 20000);
  struct lat n64 = measure(model_predict_native, m, x, nrows, 64, 4000);
  struct lat x64 = measure(model_predict_xgb, m, x, nrows, 64, 1000);
  printf("%-22s %10.2f %10.2f %10.2f\n", "native 1 row", n1.p50, n1.p99,
         n1.mean);
  printf("%-22s %10.2f %10.2f %10.2f\n", "xgboost 1 row", x1.p50, x1.p99,
         x1.mean);
  printf("%-22s %10.2f %10.2f %10.2f\n", "native 64-row batch", n64.p50,
         n64.p99, n64.mean);
  printf("%-22s %10.2f %10.2f %10.2f\n", "xgboost 64-row batch", x64.p50,
         x64.p99, x64.mean);
  printf("speed-up native/xgboost (p50): 1 row %.1fx, 64 rows %.1fx\n",
         x1.p50 / n1.p50, x64.p50 / n64.p50);
  model_unref(m);
  tree_destroy(tm);
  free(x);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return 0;
}
