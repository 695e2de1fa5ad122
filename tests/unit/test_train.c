/* test_train.c - XGBoost training (train.c) with real XGBoost: metrics
 * against hand-computed values, early stopping keeps best+1 rounds (and
 * the saved model holds exactly those), cancel, errors, grid order and
 * selection, concurrent trials.
 */
/* check: tsan */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/model.h"
#include "mlopsd/train.h"
#include "mlopsd/tree.h"
#include "tree_testdata.h"


static struct train_data data_of(const struct td *d)
{
  struct train_data x = {d->xt, d->yt, d->nt, d->xv, d->yv, d->nv,
                         d->nfeat, NULL, NULL, NULL};
  return x;
}

/* ---- metrics -------------------------------------------------------- */

TEST(metrics_softprob)
{
  const float y[] = {0, 1, 2, 1};
  const float p[] = {0.7f, 0.2f, 0.1f, /* -> 0 ok */
                     0.1f, 0.6f, 0.3f, /* -> 1 ok */
                     0.2f, 0.5f, 0.3f, /* -> 1, true 2 */
                     0.3f, 0.3f, 0.4f}; /* -> 2, true 1 */
  struct train_metrics m;
  struct err e = {0};
  CHECK_EQ_INT(train_eval_metrics("multi:softprob", 3, y, p, 4, &m, &e),
               ERR_OK);
  CHECK_NEAR(m.accuracy, 0.5, 1e-12);
  /* F1: class 0 = 1, class 1 = 2*1/(2+1+1) = 0.5, class 2 = 0 */
  CHECK_NEAR(m.f1_macro, 0.5, 1e-12);
  double ll = -(log(0.7f) + log(0.6f) + log(0.3f) + log(0.3f)) / 4;
  CHECK_NEAR(m.logloss, ll, 1e-12);
  CHECK(isnan(m.rmse));
  /* A class in neither labels nor predictions does not count (as
   * scikit-learn); a zero probability is clipped at 1e-15. */
  const float p0[] = {1, 0, 0, 0, 0, 0, 1, 0};
  const float y0[] = {0, 1};
  CHECK_EQ_INT(train_eval_metrics("multi:softprob", 4, y0, p0, 2, &m, &e),
               ERR_OK);
  CHECK_NEAR(m.accuracy, 0.5, 1e-12);
  /* class 0: tp1 -> 1; class 1: fn1 -> 0; class 2: fp1 -> 0; class 3
   * absent */
  CHECK_NEAR(m.f1_macro, 1.0 / 3, 1e-12);
  CHECK_NEAR(m.logloss, (-log(1 - 1e-15) - log(1e-15)) / 2, 1e-9);
}

TEST(metrics_softmax_binary_reg)
{
  struct train_metrics m;
  struct err e = {0};
  const float ys[] = {0, 1, 2}, ps[] = {0, 2, 2};
  CHECK_EQ_INT(train_eval_metrics("multi:softmax", 3, ys, ps, 3, &m, &e),
               ERR_OK);
  CHECK_NEAR(m.accuracy, 2.0 / 3, 1e-12);
  CHECK_NEAR(m.f1_macro, (1 + 0 + 2.0 / 3) / 3, 1e-12);
  CHECK(isnan(m.logloss));

  const float yb[] = {0, 1, 1, 0, 1};
  const float pb[] = {0.2f, 0.8f, 0.4f, 0.6f, 0.5f}; /* 0.5 -> class 0 */
  CHECK_EQ_INT(train_eval_metrics("binary:logistic", 2, yb, pb, 5, &m, &e),
               ERR_OK);
  CHECK_NEAR(m.accuracy, 0.4, 1e-12);
  /* class 1: tp1 fp1 fn2 -> 0.4; class 0: tp1 fp2 fn1 -> 0.4 */
  CHECK_NEAR(m.f1_macro, 0.4, 1e-12);
  double ll = -(log(1 - (double)0.2f) + log(0.8f) + log(0.4f) +
                log(1 - (double)0.6f) + log(0.5f)) / 5;
  CHECK_NEAR(m.logloss, ll, 1e-12);

  const float yr[] = {1, 2, 3}, pr[] = {1.5f, 2, 2};
  CHECK_EQ_INT(train_eval_metrics("reg:squarederror", 0, yr, pr, 3, &m, &e),
               ERR_OK);
  CHECK_NEAR(m.rmse, sqrt(1.25 / 3), 1e-12);
  CHECK_NEAR(m.mae, 0.5, 1e-12);
  CHECK(isnan(m.accuracy));

  const float ybad[] = {3}, pbad[] = {0.2f, 0.3f, 0.5f};
  CHECK_EQ_INT(train_eval_metrics("multi:softprob", 3, ybad, pbad, 1, &m,
                                  &e),
               ERR_INVAL);
}

/* ---- training ------------------------------------------------------- */

struct prog {
  int calls;
  double vals[512];
  int cancel_at; /* -1 never */
  int polls;
};

static void on_progress(void *ud, int round, double metric)
{
  struct prog *p = ud;
  if (round == p->calls && round < 512)
    p->vals[round] = metric;
  p->calls++;
}

static int on_cancel(void *ud)
{
  struct prog *p = ud;
  return p->cancel_at >= 0 && p->polls++ >= p->cancel_at;
}

TEST(early_stopping_keeps_best)
{
  struct td d;
  REQUIRE(td_load("wine_data.csv", &d) == 0);
  td_add_nan(&d, 0.1, 21);
  struct train_data data = data_of(&d);
  static const struct train_kv kv[] = {{"max_depth", "3"}, {"eta", "0.5"},
                                       {"tree_method", "hist"},
                                       {"seed", "7"}};
  struct prog pg = {.cancel_at = -1};
  struct train_params p = {.objective = "multi:softprob",
                           .params = kv,
                           .n_params = 4,
                           .num_boost_round = 300,
                           .early_stopping_rounds = 5,
                           .nthread = 1,
                           .progress = on_progress,
                           .cancel = on_cancel,
                           .ud = &pg};
  struct train_result r;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &r, &e) == ERR_OK);
  fprintf(stderr, "  rounds_run=%d best=%d score=%.6f acc=%.4f f1=%.4f "
                  "logloss=%.5f\n", r.rounds_run, r.best_iteration,
          r.best_score, r.metrics.accuracy, r.metrics.f1_macro,
          r.metrics.logloss);
  CHECK(r.rounds_run < 300); /* stopped early */
  CHECK_EQ_INT(r.rounds_run, r.best_iteration + 1 + 5);
  CHECK_EQ_INT(r.num_rounds, r.best_iteration + 1);
  CHECK_EQ_INT(r.num_trees, r.num_rounds * 3);
  CHECK_EQ_INT(r.num_class, 3);
  CHECK_EQ_STR(r.eval_metric, "mlogloss");
  CHECK_EQ_INT(pg.calls, r.rounds_run);
  /* best = first strict minimum of the reported values */
  int am = 0;
  for (int i = 1; i < pg.calls; i++)
    if (pg.vals[i] < pg.vals[am])
      am = i;
  CHECK_EQ_INT(am, r.best_iteration);
  CHECK(pg.vals[am] == r.best_score);
  /* XGBoost's val-mlogloss of the kept model = our log loss (printed with
   * 6 digits by XGBoost). */
  CHECK_NEAR(r.metrics.logloss, r.best_score, 2e-6 + 1e-5 * r.best_score);

  /* The saved model holds exactly the kept trees, and reloads to the same
   * predictions. */
  char path[512];
  snprintf(path, sizeof(path), "%s/es.ubj", fx_tmp());
  CHECK_EQ_INT(train_result_save(&r, path, &e), ERR_OK);
  struct tree_model *tm = NULL;
  CHECK_EQ_INT(tree_compile_file(path, &tm, &e), ERR_OK);
  if (tm)
    CHECK_EQ_INT(tree_num_trees(tm), r.num_trees);
  tree_destroy(tm);
  struct model *m = NULL;
  CHECK_EQ_INT(model_load(path, d.nfeat, NULL, &m, &e), ERR_OK);
  float *a = malloc(d.nv * 3 * sizeof(float));
  float *b = malloc(d.nv * 3 * sizeof(float));
  size_t nout = 0;
  if (m) {
    CHECK_EQ_INT(model_num_rounds(m), r.num_rounds);
    CHECK_EQ_INT(model_predict_xgb(m, d.xv, d.nv, a, &e), ERR_OK);
    CHECK_EQ_INT(train_result_predict(&r, d.xv, d.nv, d.nfeat, b,
                                      d.nv * 3, &nout, &e),
                 ERR_OK);
    CHECK(memcmp(a, b, d.nv * 3 * sizeof(float)) == 0);
    struct train_metrics mm;
    CHECK_EQ_INT(train_eval_metrics("multi:softprob", 3, d.yv, a, d.nv, &mm,
                                    &e),
                 ERR_OK);
    CHECK(mm.accuracy == r.metrics.accuracy);
    CHECK(mm.logloss == r.metrics.logloss);
    model_unref(m);
  }
  /* Training exactly best+1 rounds gives the same model (deterministic
   * with one thread). */
  struct train_params p2 = p;
  p2.num_boost_round = r.num_rounds;
  p2.early_stopping_rounds = 0;
  p2.progress = NULL;
  p2.cancel = NULL;
  struct train_result r2;
  CHECK_EQ_INT(train_fit(&data, &p2, &r2, &e), ERR_OK);
  CHECK_EQ_INT(r2.num_rounds, r.num_rounds);
  CHECK_EQ_INT(r2.rounds_run, r.num_rounds);
  CHECK_EQ_INT(train_result_predict(&r2, d.xv, d.nv, d.nfeat, a, d.nv * 3,
                                    &nout, &e),
               ERR_OK);
  CHECK(memcmp(a, b, d.nv * 3 * sizeof(float)) == 0);
  train_result_free(&r2);
  free(a);
  free(b);
  train_result_free(&r);
  train_result_free(&r); /* second free is a no-op */
  td_free(&d);
}

TEST(no_early_stopping_keeps_all)
{
  struct td d;
  REQUIRE(td_load("breast_cancer.csv", &d) == 0);
  struct train_data data = data_of(&d);
  static const struct train_kv kv[] = {{"max_depth", "2"}, {"eta", "1.5"}};
  struct train_params p = {.objective = "binary:logistic",
                           .params = kv,
                           .n_params = 2,
                           .num_boost_round = 15,
                           .nthread = 1};
  struct train_result r;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &r, &e) == ERR_OK);
  CHECK_EQ_INT(r.rounds_run, 15);
  CHECK_EQ_INT(r.num_rounds, 15);
  CHECK_EQ_INT(r.best_iteration, 14);
  CHECK_EQ_INT(r.num_trees, 15);
  CHECK_EQ_INT(r.num_class, 2);
  CHECK_EQ_STR(r.eval_metric, "logloss");
  CHECK(r.metrics.accuracy > 0.8);
  train_result_free(&r);
  td_free(&d);
}

TEST(maximized_metric_and_multiple_metrics)
{
  struct td d;
  REQUIRE(td_load("breast_cancer.csv", &d) == 0);
  struct train_data data = data_of(&d);
  /* eval_metric also in params: appended, the string has both. */
  static const struct train_kv kv[] = {{"max_depth", "3"},
                                       {"eval_metric", "error"}};
  struct prog pg = {.cancel_at = -1};
  struct train_params p = {.objective = "binary:logistic",
                           .params = kv,
                           .n_params = 2,
                           .num_boost_round = 40,
                           .early_stopping_rounds = 3,
                           .nthread = 1,
                           .eval_metric = "auc",
                           .progress = on_progress,
                           .ud = &pg};
  struct train_result r;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &r, &e) == ERR_OK);
  int am = 0;
  for (int i = 1; i < pg.calls; i++)
    if (pg.vals[i] > pg.vals[am])
      am = i;
  CHECK_EQ_INT(am, r.best_iteration);
  CHECK(r.best_score > 0.9 && r.best_score <= 1.0); /* an AUC, not error */
  CHECK_EQ_STR(r.eval_metric, "auc");
  train_result_free(&r);
  td_free(&d);
}

TEST(regression_metrics)
{
  struct td d;
  REQUIRE(td_load("wine_data.csv", &d) == 0);
  struct train_data data = data_of(&d);
  struct train_params p = {.objective = "reg:squarederror",
                           .num_boost_round = 30,
                           .early_stopping_rounds = 5,
                           .nthread = 1};
  struct train_result r;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &r, &e) == ERR_OK);
  CHECK_EQ_STR(r.eval_metric, "rmse");
  CHECK_EQ_INT(r.num_class, 0);
  /* XGBoost's val-rmse at the best round = our rmse of the kept model */
  CHECK_NEAR(r.metrics.rmse, r.best_score, 1e-5);
  CHECK(isnan(r.metrics.accuracy));
  train_result_free(&r);
  td_free(&d);
}

TEST(cancel)
{
  struct td d;
  REQUIRE(td_load("iris.csv", &d) == 0);
  struct train_data data = data_of(&d);
  struct prog pg = {.cancel_at = 3};
  struct train_params p = {.objective = "multi:softprob",
                           .num_boost_round = 50,
                           .nthread = 1,
                           .cancel = on_cancel,
                           .progress = on_progress,
                           .ud = &pg};
  struct train_result r;
  struct err e = {0};
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_CANCELED);
  CHECK(r.booster == NULL);
  CHECK_EQ_INT(pg.calls, 3);
  td_free(&d);
}

TEST(errors)
{
  struct td d;
  REQUIRE(td_load("iris.csv", &d) == 0);
  struct train_data data = data_of(&d);
  struct train_result r;
  struct err e = {0};
  /* XGBoost refuses a parameter: ERR_XGB, one line, names the param. */
  static const struct train_kv bad[] = {{"max_depth", "-3"}};
  struct train_params p = {.objective = "multi:softprob",
                           .params = bad,
                           .n_params = 1,
                           .num_boost_round = 3,
                           .nthread = 1};
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_XGB);
  CHECK(strchr(e.msg, '\n') == NULL);
  fprintf(stderr, "  bad param: %s\n", e.msg);
  p.params = NULL;
  p.n_params = 0;
  p.objective = "no:such";
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_XGB);
  CHECK(strchr(e.msg, '\n') == NULL);
  fprintf(stderr, "  bad objective: %s\n", e.msg);
  /* Labels that do not fit the objective. */
  p.objective = "binary:logistic";
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "label") != NULL);
  p.objective = "multi:softprob";
  p.num_class = 2;
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_INVAL);
  p.num_class = 0;
  p.num_boost_round = 0;
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_INVAL);
  p.num_boost_round = 2;
  struct train_data empty = data;
  empty.n_val = 0;
  CHECK_EQ_INT(train_fit(&empty, &p, &r, &e), ERR_INVAL);
  /* Saving needs a .ubj/.json name. */
  CHECK_EQ_INT(train_fit(&data, &p, &r, &e), ERR_OK);
  char path[512];
  snprintf(path, sizeof(path), "%s/model.bin", fx_tmp());
  CHECK_EQ_INT(train_result_save(&r, path, &e), ERR_INVAL);
  snprintf(path, sizeof(path), "%s/nodir/model.ubj", fx_tmp());
  CHECK_EQ_INT(train_result_save(&r, path, &e), ERR_XGB);
  float out[3];
  size_t n;
  CHECK_EQ_INT(train_result_predict(&r, d.x, 1, d.nfeat + 1, out, 3, &n, &e),
               ERR_INVAL);
  CHECK_EQ_INT(train_result_predict(&r, d.x, 2, d.nfeat, out, 3, &n, &e),
               ERR_INVAL); /* no room for 6 values */
  train_result_free(&r);
  td_free(&d);
}

TEST(feature_names_in_model)
{
  struct td d;
  REQUIRE(td_load("iris.csv", &d) == 0);
  static const char *const names[] = {"sepal_length", "sepal_width",
                                      "petal_length", "petal_width"};
  struct train_data data = data_of(&d);
  data.feature_names = names;
  struct train_params p = {.objective = "multi:softprob",
                           .num_boost_round = 2,
                           .nthread = 1};
  struct train_result r;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &r, &e) == ERR_OK);
  char path[512];
  snprintf(path, sizeof(path), "%s/names.json", fx_tmp());
  CHECK_EQ_INT(train_result_save(&r, path, &e), ERR_OK);
  FILE *f = fopen(path, "r");
  char buf[4096] = "";
  if (f) {
    size_t got = fread(buf, 1, sizeof(buf) - 1, f);
    buf[got] = 0;
    fclose(f);
  }
  CHECK(strstr(buf, "\"petal_width\"") != NULL);
  train_result_free(&r);
  td_free(&d);
}

/* ---- grid ----------------------------------------------------------- */

static const char *const depth_vals[] = {"2", "4"};
static const char *const lambda_vals[] = {"1", "5", "9"};
static const struct train_grid_axis axes[] = {
    {"max_depth", depth_vals, 2}, {"lambda", lambda_vals, 3}};

TEST(grid_params_order)
{
  static const struct train_kv base_kv[] = {{"eta", "0.3"},
                                            {"max_depth", "6"}};
  struct train_params base = {.params = base_kv, .n_params = 2};
  CHECK_EQ_INT(train_grid_size(axes, 2), 6);
  CHECK_EQ_INT(train_grid_size(NULL, 0), 1);
  struct train_kv kv[4];
  size_t n;
  struct err e = {0};
  const char *want[6][2] = {{"2", "1"}, {"2", "5"}, {"2", "9"},
                            {"4", "1"}, {"4", "5"}, {"4", "9"}};
  for (size_t i = 0; i < 6; i++) {
    CHECK_EQ_INT(train_grid_params(&base, axes, 2, i, kv, 4, &n, &e),
                 ERR_OK);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(kv[0].key, "eta");
    CHECK_EQ_STR(kv[1].key, "max_depth"); /* replaced in place */
    CHECK_EQ_STR(kv[1].value, want[i][0]);
    CHECK_EQ_STR(kv[2].key, "lambda"); /* appended */
    CHECK_EQ_STR(kv[2].value, want[i][1]);
  }
  CHECK_EQ_INT(train_grid_params(&base, axes, 2, 6, kv, 4, &n, &e),
               ERR_INVAL);
  CHECK_EQ_INT(train_grid_params(&base, axes, 2, 0, kv, 2, &n, &e),
               ERR_INVAL);
  enum train_select s;
  CHECK_EQ_INT(train_select_parse("f1_macro", &s, &e), ERR_OK);
  CHECK_EQ_INT(s, TRAIN_SELECT_F1_MACRO);
  CHECK_EQ_INT(train_select_parse("auc", &s, &e), ERR_INVAL);
  struct train_metrics a = {.accuracy = 0.9, .logloss = 0.2};
  struct train_metrics b = {.accuracy = 0.9, .logloss = 0.3};
  CHECK(!train_better(TRAIN_SELECT_ACCURACY, &a, &b)); /* tie */
  CHECK(train_better(TRAIN_SELECT_LOGLOSS, &a, &b));
  CHECK(!train_better(TRAIN_SELECT_LOGLOSS, &b, &a));
  b.accuracy = NAN;
  CHECK(train_better(TRAIN_SELECT_ACCURACY, &a, &b));
  CHECK(!train_better(TRAIN_SELECT_ACCURACY, &b, &a));
}

struct trials {
  int n;
  double acc[8];
  char depth[8][4], lambda[8][4];
  int stop_after;
};

static int on_trial(void *ud, size_t index, size_t total,
                    const struct train_kv *kv, size_t n_kv,
                    const struct train_result *r)
{
  struct trials *t = ud;
  (void)total;
  if ((int)index == t->n && index < 8) {
    t->acc[index] = r->metrics.accuracy;
    for (size_t i = 0; i < n_kv; i++) {
      if (!strcmp(kv[i].key, "max_depth"))
        snprintf(t->depth[index], 4, "%s", kv[i].value);
      if (!strcmp(kv[i].key, "lambda"))
        snprintf(t->lambda[index], 4, "%s", kv[i].value);
    }
  }
  t->n++;
  return t->stop_after && t->n >= t->stop_after;
}

TEST(grid_search)
{
  struct td d;
  REQUIRE(td_load("wine_data.csv", &d) == 0);
  td_add_nan(&d, 0.1, 4);
  struct train_data data = data_of(&d);
  static const struct train_kv kv[] = {{"eta", "0.3"},
                                       {"tree_method", "hist"}};
  struct train_params base = {.objective = "multi:softprob",
                              .params = kv,
                              .n_params = 2,
                              .num_boost_round = 20,
                              .early_stopping_rounds = 3,
                              .nthread = 1};
  struct trials t = {0};
  struct train_result best;
  size_t bi = 99;
  struct err e = {0};
  REQUIRE(train_grid(&data, &base, axes, 2, TRAIN_SELECT_ACCURACY, on_trial,
                     &t, &best, &bi, &e) == ERR_OK);
  CHECK_EQ_INT(t.n, 6);
  CHECK_EQ_STR(t.depth[0], "2");
  CHECK_EQ_STR(t.lambda[0], "1");
  CHECK_EQ_STR(t.depth[5], "4");
  CHECK_EQ_STR(t.lambda[5], "9");
  size_t want = 0;
  for (size_t i = 1; i < 6; i++)
    if (t.acc[i] > t.acc[want])
      want = i;
  CHECK_EQ_INT(bi, want);
  CHECK(best.booster != NULL);
  CHECK(best.metrics.accuracy == t.acc[want]);
  fprintf(stderr, "  best trial %zu: acc %.4f f1 %.4f\n", bi,
          best.metrics.accuracy, best.metrics.f1_macro);
  train_result_free(&best);
  /* The callback can stop the search. */
  struct trials t2 = {.stop_after = 2};
  CHECK_EQ_INT(train_grid(&data, &base, axes, 2, TRAIN_SELECT_ACCURACY,
                          on_trial, &t2, &best, NULL, &e),
               ERR_CANCELED);
  CHECK_EQ_INT(t2.n, 2);
  CHECK(best.booster == NULL);
  /* A failing trial fails the search with the trial named. */
  static const char *const bad_vals[] = {"3", "-1"};
  static const struct train_grid_axis bad_axes[] = {
      {"max_depth", bad_vals, 2}};
  CHECK_EQ_INT(train_grid(&data, &base, bad_axes, 1, TRAIN_SELECT_ACCURACY,
                          NULL, NULL, &best, NULL, &e),
               ERR_XGB);
  CHECK(strstr(e.msg, "trial 2 of 2") != NULL);
  td_free(&d);
}

/* ---- trials on several threads -------------------------------------- */

struct job {
  const struct train_data *data;
  struct train_params p;
  struct train_result r;
  enum err_code rc;
};

static void *job_run(void *arg)
{
  struct job *j = arg;
  struct err e = {0};
  j->rc = train_fit(j->data, &j->p, &j->r, &e);
  return NULL;
}

TEST(concurrent_trials)
{
  struct td d;
  REQUIRE(td_load("breast_cancer.csv", &d) == 0);
  td_add_nan(&d, 0.1, 8);
  struct train_data data = data_of(&d);
  static const struct train_kv kv[] = {{"max_depth", "3"},
                                       {"tree_method", "hist"}};
  struct train_params p = {.objective = "binary:logistic",
                           .params = kv,
                           .n_params = 2,
                           .num_boost_round = 10,
                           .nthread = 1};
  struct train_result ref;
  struct err e = {0};
  REQUIRE(train_fit(&data, &p, &ref, &e) == ERR_OK);
  float *a = malloc(d.n * sizeof(float)), *b = malloc(d.n * sizeof(float));
  size_t n;
  CHECK_EQ_INT(train_result_predict(&ref, d.x, d.n, d.nfeat, a, d.n, &n, &e),
               ERR_OK);
  struct job jobs[3];
  pthread_t th[3];
  for (int i = 0; i < 3; i++) {
    jobs[i] = (struct job){.data = &data, .p = p};
    CHECK(pthread_create(&th[i], NULL, job_run, &jobs[i]) == 0);
  }
  for (int i = 0; i < 3; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(jobs[i].rc, ERR_OK);
    if (jobs[i].rc)
      continue;
    CHECK_EQ_INT(train_result_predict(&jobs[i].r, d.x, d.n, d.nfeat, b, d.n,
                                      &n, &e),
                 ERR_OK);
    CHECK(memcmp(a, b, d.n * sizeof(float)) == 0);
    train_result_free(&jobs[i].r);
  }
  free(a);
  free(b);
  train_result_free(&ref);
  td_free(&d);
}

int main(void)
{
  RUN(metrics_softprob);
  RUN(metrics_softmax_binary_reg);
  RUN(early_stopping_keeps_best);
  RUN(no_early_stopping_keeps_all);
  RUN(maximized_metric_and_multiple_metrics);
  RUN(regression_metrics);
  RUN(cancel);
  RUN(errors);
  RUN(feature_names_in_model);
  RUN(grid_params_order);
  RUN(grid_search);
  RUN(concurrent_trials);
  return check_done();
}
