/* test_spec.c - model spec loading (the course spec, fixtures, every kind
 * of schema error with FILE:LINE:COL) and request validation messages. */
#include "check.h"
#include "mlopsd/fsx.h"
#include "mlopsd/spec.h"

#include <math.h>

static const char *src_dir(void)
{
  const char *s = getenv("MLOPSD_SRC");
  return s && *s ? s : ".";
}

static struct spec *load_course(void)
{
  char p[4096];
  snprintf(p, sizeof(p), "%s/config/models/credit_score_classification.yaml",
           src_dir());
  struct spec *s = NULL;
  struct err e = {0};
  if (spec_load(p, &s, &e))
    fprintf(stderr, "  %s\n", e.msg);
  return s;
}

TEST(course_spec)
{
  struct spec *s = load_course();
  REQUIRE(s);
  CHECK_EQ_STR(s->name, "credit_score_classification");
  CHECK_EQ_STR(s->source.table, "credit_score_features_target");
  CHECK_EQ_STR(s->source.filter, "base_dt = '{{ ds }}'");
  CHECK_EQ_STR(s->source.key, "customer_id");
  CHECK_EQ_STR(s->target.column, "credit_score");
  CHECK_EQ_INT(s->target.n_classes, 3);
  CHECK_EQ_INT(s->task, SPEC_TASK_MULTICLASS);
  CHECK_EQ_INT(spec_class_index(s, "Poor"), 0);
  CHECK_EQ_INT(spec_class_index(s, "Standard"), 1);
  CHECK_EQ_INT(spec_class_index(s, "Good"), 2);
  CHECK_EQ_INT(spec_class_index(s, "good"), -1);
  const char *drop[] = {"base_dt", "id", "customer_id", "date"};
  CHECK_EQ_INT(s->n_drop, 4);
  for (size_t i = 0; i < 4 && i < s->n_drop; i++)
    CHECK_EQ_STR(s->drop[i], drop[i]);

  CHECK_EQ_INT(s->n_features, 22);
  CHECK_EQ_INT(s->n_numeric, 17);
  CHECK_EQ_INT(s->n_categorical, 3);
  CHECK_EQ_INT(s->n_text, 2);
  /* spec order: numeric, categorical, text */
  static const struct {
    size_t i;
    const char *name;
  } at[] = {{0, "age"},
            {16, "monthly_balance"},
            {17, "occupation"},
            {21, "payment_behaviour"}};
  for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
    CHECK_CASE(at[k].name);
    CHECK_EQ_STR(s->features[at[k].i].name, at[k].name);
  }
  CHECK_CASE(NULL);
  for (size_t i = 0; i < 17; i++) {
    CHECK_EQ_INT(s->features[i].kind, SPEC_NUMERIC);
    CHECK_EQ_INT(s->features[i].scaling, SPEC_SCALE_ROBUST);
    CHECK_EQ_INT(s->features[i].required, 1);
  }
  const struct spec_feature *age = &s->features[spec_feature_index(s, "age")];
  CHECK_EQ_INT(age->bounds, SPEC_BOUND_GT);
  CHECK(age->gt == 0);
  CHECK_EQ_INT(age->integer, 1);
  const struct spec_feature *cha =
      &s->features[spec_feature_index(s, "credit_history_age")];
  CHECK_EQ_INT(cha->bounds, SPEC_BOUND_GT);
  CHECK_EQ_INT(cha->integer, 0);
  const struct spec_feature *mix =
      &s->features[spec_feature_index(s, "credit_mix")];
  CHECK_EQ_INT(mix->kind, SPEC_CATEGORICAL);
  CHECK_EQ_INT(mix->n_allowed, 3);
  const struct spec_feature *pay =
      &s->features[spec_feature_index(s, "payment_of_min_amount")];
  CHECK_EQ_INT(pay->n_allowed, 3);
  if (pay->n_allowed == 3) {
    CHECK_EQ_STR(pay->allowed[0], "NM");
    CHECK_EQ_STR(pay->allowed[1], "Yes");
    CHECK_EQ_STR(pay->allowed[2], "No");
  }
  const struct spec_feature *occ =
      &s->features[spec_feature_index(s, "occupation")];
  CHECK_EQ_INT(occ->n_allowed, 0);
  const struct spec_feature *tol =
      &s->features[spec_feature_index(s, "type_of_loan")];
  CHECK_EQ_INT(tol->kind, SPEC_TEXT);
  CHECK_EQ_STR(tol->delimiters, ", _");
  CHECK_EQ_INT(spec_feature_index(s, "customer_id"), -1);

  CHECK_EQ_STR(s->params[0].key, "objective");
  CHECK_EQ_STR(spec_param(s, "objective"), "multi:softprob");
  CHECK_EQ_STR(spec_param(s, "eta"), "0.3");
  CHECK_EQ_STR(spec_param(s, "tree_method"), "hist");
  CHECK(spec_param(s, "nthread") == NULL);
  CHECK_EQ_INT(s->num_boost_round, 2000);
  CHECK_EQ_INT(s->early_stopping_rounds, 50);
  CHECK_EQ_INT(s->n_grid, 3);
  CHECK_EQ_INT(s->grid_size, 27);
  CHECK_EQ_STR(s->grid[0].key, "max_depth");
  CHECK_EQ_STR(s->grid[1].key, "colsample_bytree");
  CHECK_EQ_STR(s->grid[2].key, "lambda");
  /* trial 0 = first of each; the last axis varies fastest */
  static const struct {
    size_t trial, axis;
    const char *want;
  } grid[] = {{0, 0, "7"},  {0, 1, "0.8"},  {0, 2, "3"},  {1, 2, "5"},
              {3, 1, "0.9"}, {13, 0, "8"},  {13, 1, "0.9"}, {13, 2, "5"},
              {26, 0, "9"}, {26, 1, "1.0"}, {26, 2, "7"}};
  for (size_t k = 0; k < sizeof(grid) / sizeof(grid[0]); k++) {
    char what[32];
    snprintf(what, sizeof(what), "trial %zu axis %zu", grid[k].trial,
             grid[k].axis);
    CHECK_CASE(what);
    CHECK_EQ_STR(spec_grid_value(s, grid[k].trial, grid[k].axis),
                 grid[k].want);
  }
  CHECK_CASE(NULL);
  CHECK(spec_grid_value(s, 27, 0) == NULL);
  CHECK(spec_grid_value(s, 0, 3) == NULL);
  CHECK_EQ_INT(s->metric, SPEC_METRIC_ACCURACY);
  CHECK(spec_metric_higher_is_better(s->metric));
  CHECK(s->val_fraction == 0.3);
  CHECK_EQ_INT(s->seed, 42);
  CHECK_EQ_INT(s->stratify, 0);
  CHECK(s->tolerance == 0);
  /* the gate split and window the course spec ships with */
  CHECK(s->gate_fraction == 0.2);
  CHECK_EQ_STR(s->group_by, "customer_id");
  CHECK_EQ_INT(s->window.days, 28);
  CHECK_EQ_INT(s->window.rows, 0);
  CHECK_EQ_STR(s->window.column, "date");
  CHECK_EQ_INT(s->weights_balanced, 0);
  CHECK(s->max_regression == 0.02);
  CHECK(s->confidence == 0.95);

  char hex[SHA256_HEX_LEN];
  struct err e = {0};
  CHECK_EQ_INT(sha256_file(s->path, hex, &e), ERR_OK);
  CHECK_EQ_STR(s->sha256, hex);
  spec_destroy(s);
}

TEST(fixtures_dir)
{
  char p[4096];
  snprintf(p, sizeof(p), "%s/tests/unit/data/models/ok", src_dir());
  struct spec **v = NULL;
  size_t n = 0;
  struct err e = {0};
  CHECK_EQ_INT(spec_load_dir(p, &v, &n, &e), ERR_OK);
  REQUIRE(n == 2);
  CHECK_EQ_STR(v[0]->name, "binary_ok"); /* sorted by file name */
  CHECK_EQ_STR(v[1]->name, "regress_ok");

  const struct spec *b = spec_find(v, n, "binary_ok");
  REQUIRE(b);
  CHECK_EQ_INT(b->task, SPEC_TASK_BINARY);
  CHECK_EQ_STR(b->source.table, "mlops.applicants");
  CHECK(b->source.filter == NULL && b->source.key == NULL);
  CHECK_EQ_STR(spec_param(b, "objective"), "binary:logistic");
  CHECK_EQ_INT(b->num_boost_round, 100);
  CHECK_EQ_INT(b->early_stopping_rounds, 0);
  CHECK_EQ_INT(b->grid_size, 1);
  CHECK_EQ_INT(b->n_grid, 0);
  CHECK_EQ_INT(b->metric, SPEC_METRIC_ACCURACY);
  CHECK(b->val_fraction == 0.3);
  CHECK_EQ_INT(b->seed, 42);
  CHECK_EQ_INT(b->features[0].scaling, SPEC_SCALE_NONE);
  CHECK_EQ_INT(b->features[0].required, 1);
  CHECK_EQ_INT(b->features[3].required, 0);
  CHECK_EQ_INT(b->features[2].min_count, 1);
  CHECK_EQ_INT(b->features[2].max_vocab, 1000);

  const struct spec *r = spec_find(v, n, "regress_ok");
  REQUIRE(r);
  CHECK_EQ_INT(r->task, SPEC_TASK_REGRESSION);
  CHECK_EQ_INT(r->target.n_classes, 0);
  CHECK_EQ_STR(spec_param(r, "objective"), "reg:squarederror");
  /* list values become repeated keys, in order */
  CHECK_EQ_INT(r->n_params, 4);
  CHECK_EQ_STR(r->params[1].key, "eval_metric");
  CHECK_EQ_STR(r->params[1].value, "rmse");
  CHECK_EQ_STR(r->params[2].key, "eval_metric");
  CHECK_EQ_STR(r->params[2].value, "mae");
  CHECK_EQ_INT(r->metric, SPEC_METRIC_RMSE);
  CHECK(!spec_metric_higher_is_better(r->metric));
  CHECK(r->val_fraction == 0.25);
  CHECK_EQ_INT(r->seed, 7);
  const struct spec_feature *rooms = &r->features[0];
  CHECK_EQ_INT(rooms->scaling, SPEC_SCALE_STANDARD);
  CHECK_EQ_INT(rooms->bounds, SPEC_BOUND_GE | SPEC_BOUND_LE);
  CHECK(rooms->ge == 1 && rooms->le == 20);
  const struct spec_feature *tags = &r->features[2];
  CHECK_EQ_STR(tags->delimiters, "|");
  CHECK_EQ_INT(tags->min_count, 2);
  CHECK_EQ_INT(tags->max_vocab, 50);
  CHECK(spec_find(v, n, "nope") == NULL);
  spec_free_all(v, n);

  snprintf(p, sizeof(p), "%s/tests/unit/data/models/bad", src_dir());
  CHECK_EQ_INT(spec_load_dir(p, &v, &n, &e), ERR_CONFIG);
  CHECK(v == NULL && n == 0);
  CHECK(strstr(e.msg, "typo_key.yaml:7:18: features.numeric[1]: unknown "
                      "key 'scalling'") != NULL);
  snprintf(p, sizeof(p), "%s/tests/unit/data/models/none", src_dir());
  CHECK_EQ_INT(spec_load_dir(p, &v, &n, &e), ERR_NOTFOUND);
}

/* A minimal valid spec with one line replaced or appended. */
static const char base_yaml[] =
    "name: m\n"
    "source: {table: t}\n"
    "target: {column: y, classes: [a, b, c]}\n"
    "features:\n"
    "  numeric: [{name: x, gt: 0}]\n"
    "  categorical: [{name: c, allowed: [Yes, No]}]\n";

static enum err_code load_str(const char *yaml, struct spec **s,
                              struct err *e)
{
  return spec_load_buf("/specs/m.yaml", yaml, strlen(yaml), s, e);
}

struct bad_case {
  const char *yaml;
  enum err_code code;
  const char *msg; /* expected substring */
};

TEST(schema_errors)
{
  static const struct bad_case cases[] = {
      {"nme: m\n", ERR_CONFIG, "m.yaml:1:1: spec: unknown key 'nme'"},
      {"name: other\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\n",
       ERR_CONFIG, "m.yaml:1:7: name: 'other' must equal the file name 'm'"},
      {"name: m\nsource: [\n", ERR_PARSE, "m.yaml:3:1: YAML:"},
      {"", ERR_CONFIG, "m.yaml:1:1: empty spec"},
      {"name: m\n", ERR_CONFIG, "'source' is required"},
      {"name: m\nsource: {table: \"t;drop\"}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\n",
       ERR_CONFIG, "m.yaml:2:17: source.table: 't;drop' is not a valid"},
      {"name: m\nsource: {table: t, filter: \"d = '{{ ds'\"}\n"
       "target: {column: y}\nfeatures: {numeric: [x]}\n",
       ERR_CONFIG, "source.filter: '{{' without '}}'"},
      {"name: m\nsource: {table: t}\ntarget: {column: y, classes: [a]}\n"
       "features: {numeric: [x]}\n",
       ERR_CONFIG, "m.yaml:3:30: target.classes: needs at least 2 classes"},
      {"name: m\nsource: {table: t}\ntarget: {column: y, classes: [a, a]}\n"
       "features: {numeric: [x]}\n",
       ERR_CONFIG, "target.classes[1]: duplicate value 'a'"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\nfeatures: {}\n",
       ERR_CONFIG, "features: declares no feature"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, scaling: minmax}]}\n",
       ERR_CONFIG, "m.yaml:4:41: features.numeric[0].scaling: must be one "
                   "of robust, standard, none"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, min: 0, ge: 1}]}\n",
       ERR_CONFIG, "features.numeric[0].ge: give one of min and ge"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, gt: 0, ge: 1}]}\n",
       ERR_CONFIG, "features.numeric[0]: give one of gt and ge/min"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, gt: 5, lt: 5}]}\n",
       ERR_CONFIG, "features.numeric[0]: the bounds admit no value"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, min: \"0\"}]}\n",
       ERR_CONFIG, "features.numeric[0].min: must be a number"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [{name: x, required: yes}]}\n",
       ERR_CONFIG, "features.numeric[0].required: must be true or false"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x, x]}\n",
       ERR_CONFIG, "m.yaml:4:25: features.numeric[1]: feature 'x' is "
                   "declared twice"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [y]}\n",
       ERR_CONFIG, "features.numeric[0]: 'y' is the target column"},
      {"name: m\nsource: {table: t, key: k}\ntarget: {column: y}\n"
       "features: {numeric: [k]}\n",
       ERR_CONFIG, "'k' is the source key, not a feature"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {text: [{name: x}]}\n",
       ERR_CONFIG, "features.text[0]: 'delimiters' is required"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {categorical: [{name: c, allowed: []}]}\n",
       ERR_CONFIG, "features.categorical[0].allowed: must not be empty"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ndrop: [x]\n",
       ERR_CONFIG, "drop: 'x' is also a feature"},
      {"name: m\nsource: {table: t}\ntarget: {column: y, classes: [a, b, c]}"
       "\nfeatures: {numeric: [x]}\n"
       "xgboost: {params: {objective: \"multi:softmax\"}}\n",
       ERR_CONFIG, "needs multi:softprob (probabilities), not multi:softmax"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nxgboost: {params: {nthread: 4}}\n",
       ERR_CONFIG, "m.yaml:5:20: xgboost.params.nthread: is set by the "
                   "daemon"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nxgboost: {num_boost_round: 0}\n",
       ERR_CONFIG, "xgboost.num_boost_round: must be between 1 and 100000"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsearch: {grid: {max_depth: []}}\n",
       ERR_CONFIG, "search.grid.max_depth: must not be empty"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsearch: {grid: {objective: [a]}}\n",
       ERR_CONFIG, "search.grid.objective: the objective follows"},
      {"name: m\nsource: {table: t}\ntarget: {column: y, classes: [a, b]}\n"
       "features: {numeric: [x]}\nselection: {metric: rmse}\n",
       ERR_CONFIG, "selection.metric: rmse does not fit a binary target"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nselection: {metric: auc}\n",
       ERR_CONFIG, "selection.metric: must be one of accuracy"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsplit: {val_fraction: 1}\n",
       ERR_CONFIG, "split.val_fraction: must be > 0 and < 1"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsplit: {seed: -1}\n",
       ERR_CONFIG, "m.yaml:5:15: split.seed: must be an integer >= 0"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nvalidate: {tolerance: -0.1}\n",
       ERR_CONFIG, "validate.tolerance: must be >= 0"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsplit: {gate_fraction: 1}\n",
       ERR_CONFIG, "split.gate_fraction: must be >= 0 and < 1"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nsplit: {group_by: z}\n",
       ERR_CONFIG, "split.group_by: 'z' is neither source.key nor a feature"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nvalidate: {max_regression: -0.01}\n",
       ERR_CONFIG, "validate.max_regression: must be >= 0 and < 1"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nvalidate: {confidence: 0.3}\n",
       ERR_CONFIG, "validate.confidence: must be >= 0.5 and < 1"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {days: 30}\n",
       ERR_CONFIG, "m.yaml:5:15: train_window: 'column' is required"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {days: 3, rows: 9, column: d}\n",
       ERR_CONFIG, "m.yaml:5:15: train_window: give exactly one of days and "
                   "rows"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {column: d}\n",
       ERR_CONFIG, "train_window: give exactly one of days and rows"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {days: 0, column: d}\n",
       ERR_CONFIG, "m.yaml:5:22: train_window.days: must be between 1 and"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {rows: 1.5, column: d}\n",
       ERR_CONFIG, "m.yaml:5:22: train_window.rows: must be an integer, not "
                   "'1.5'"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {rows: 10, column: \"a b\"}\n",
       ERR_CONFIG, "m.yaml:5:34: train_window.column: 'a b' is not a valid "
                   "column name"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\ntrain_window: {weeks: 2}\n",
       ERR_CONFIG, "m.yaml:5:16: train_window: unknown key 'weeks' (allowed: "
                   "days, rows, column)"},
      {"name: m\nsource: {table: t}\ntarget: {column: y, classes: [a, b]}\n"
       "features: {numeric: [x]}\nweights: heavy\n",
       ERR_CONFIG, "m.yaml:5:10: weights: must be balanced or none"},
      {"name: m\nsource: {table: t}\ntarget: {column: y}\n"
       "features: {numeric: [x]}\nweights: balanced\n",
       ERR_CONFIG, "m.yaml:5:10: weights: balanced needs target.classes"},
      {"name: m\nname: m\n", ERR_CONFIG, "m.yaml:2:1: spec: duplicate key "
                                         "'name'"},
      {"- a\n- b\n", ERR_CONFIG, "m.yaml:1:1: spec: must be a mapping"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct spec *s = NULL;
    struct err e = {0};
    enum err_code rc = load_str(cases[i].yaml, &s, &e);
    if (rc != cases[i].code || !strstr(e.msg, cases[i].msg)) {
      fprintf(stderr, "  case %zu: rc %d, msg: %s\n    want: %s\n", i, rc,
              e.msg, cases[i].msg);
      CHECK(0);
    }
    CHECK(s == NULL);
  }
  /* the base spec itself is fine, and "Yes"/"No" stay strings */
  struct spec *s = NULL;
  struct err e = {0};
  CHECK_EQ_INT(load_str(base_yaml, &s, &e), ERR_OK);
  REQUIRE(s);
  CHECK_EQ_STR(s->features[1].allowed[0], "Yes");
  CHECK_EQ_STR(s->features[1].allowed[1], "No");
  spec_destroy(s);
}

/* train_window and weights: the values and their defaults */
TEST(window_and_weights)
{
  static const struct {
    const char *extra; /* appended to base_yaml */
    int days, rows;
    const char *column; /* NULL: no column */
    int balanced;
  } c[] = {
      {"", 0, 0, NULL, 0}, /* the defaults */
      {"train_window: {days: 28, column: date}\nweights: balanced\n", 28, 0,
       "date", 1},
      {"train_window: {rows: 1500, column: dt}\nweights: none\n", 0, 1500,
       "dt", 0},
  };
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    char buf[1024];
    struct spec *s = NULL;
    struct err e = {0};
    snprintf(buf, sizeof(buf), "%s%s", base_yaml, c[i].extra);
    CHECK_CASE(c[i].extra[0] ? c[i].extra : "defaults");
    CHECK_EQ_INT(load_str(buf, &s, &e), ERR_OK);
    if (!s) {
      CHECK(s != NULL);
      continue;
    }
    CHECK_EQ_INT(s->window.days, c[i].days);
    CHECK_EQ_INT(s->window.rows, c[i].rows);
    if (c[i].column)
      CHECK_EQ_STR(s->window.column, c[i].column);
    else
      CHECK(s->window.column == NULL);
    CHECK_EQ_INT(s->weights_balanced, c[i].balanced);
    spec_destroy(s);
  }
}

TEST(name_rule)
{
  CHECK(fsx_name_valid("credit_score_classification"));
  CHECK(fsx_name_valid("a.b-c_1"));
  CHECK(!fsx_name_valid(""));
  CHECK(!fsx_name_valid("."));
  CHECK(!fsx_name_valid("a..b"));
  CHECK(!fsx_name_valid("a/b"));
  CHECK(!fsx_name_valid("-a"));
  CHECK(!fsx_name_valid(NULL));
}

/* a valid request: the first line of the course's predict_requests.jsonl */
static const char good_req[] =
    "{\"customer_id\": 4096, \"age\": 18, \"occupation\": \"Lawyer\", "
    "\"annual_income\": 30625.94, \"monthly_inhand_salary\": "
    "2706.1616666666664, \"num_bank_accounts\": 6.0, \"num_credit_card\": "
    "5.0, \"interest_rate\": 27.0, \"num_of_loan\": 2, \"type_of_loan\": "
    "\"credit-builder loan,home equity loan\", \"delay_from_due_date\": 57.0, "
    "\"num_of_delayed_payment\": 26.0, \"changed_credit_limit\": 1.63, "
    "\"num_credit_inquiries\": 11.0, \"credit_mix\": \"Bad\", "
    "\"outstanding_debt\": 1562.91, \"credit_utilization_ratio\": "
    "30.07719135017377, \"credit_history_age\": 129.0, "
    "\"payment_of_min_amount\": \"Yes\", \"total_emi_per_month\": "
    "42.941090422469365, \"amount_invested_monthly\": 77.31427572208112, "
    "\"payment_behaviour\": \"High_spent_Medium_value_payments\", "
    "\"monthly_balance\": 400.36080052211616}";

static const char *report_msg(const struct spec_report *r, const char *f)
{
  for (size_t i = 0; i < r->n; i++)
    if (!strcmp(r->e[i].field, f))
      return r->e[i].msg;
  return NULL;
}

TEST(validate_request)
{
  struct spec *s = load_course();
  REQUIRE(s);
  struct spec_report r;
  cJSON *o = cJSON_Parse(good_req);
  REQUIRE(o);
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_OK);
  CHECK_EQ_INT(r.n, 0);
  /* the key is optional */
  cJSON_DeleteItemFromObject(o, "customer_id");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_OK);

  cJSON_ReplaceItemInObject(o, "age", cJSON_CreateNumber(0));
  cJSON_ReplaceItemInObject(o, "credit_history_age", cJSON_CreateNumber(-3));
  cJSON_ReplaceItemInObject(o, "num_of_loan", cJSON_CreateNumber(2.5));
  cJSON_ReplaceItemInObject(o, "annual_income", cJSON_CreateString("a lot"));
  cJSON_ReplaceItemInObject(o, "monthly_balance", cJSON_CreateTrue());
  cJSON_ReplaceItemInObject(o, "credit_mix", cJSON_CreateString("Excellent"));
  cJSON_ReplaceItemInObject(o, "payment_of_min_amount",
                            cJSON_CreateString("yes"));
  cJSON_ReplaceItemInObject(o, "occupation", cJSON_CreateNumber(3));
  cJSON_ReplaceItemInObject(o, "type_of_loan", cJSON_CreateNull());
  cJSON_DeleteItemFromObject(o, "interest_rate");
  cJSON_AddStringToObject(o, "favourite_colour", "blue");
  cJSON_AddItemToObject(o, "customer_id", cJSON_CreateObject());
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, 12);
  CHECK_EQ_INT(r.n_more, 0);
  CHECK_EQ_STR(report_msg(&r, "age"), "must be > 0");
  CHECK_EQ_STR(report_msg(&r, "credit_history_age"), "must be > 0");
  CHECK_EQ_STR(report_msg(&r, "num_of_loan"), "must be an integer");
  CHECK_EQ_STR(report_msg(&r, "annual_income"), "must be a number");
  CHECK_EQ_STR(report_msg(&r, "monthly_balance"), "must be a number");
  CHECK_EQ_STR(report_msg(&r, "credit_mix"),
               "must be one of Good, Bad, Standard");
  CHECK_EQ_STR(report_msg(&r, "payment_of_min_amount"),
               "must be one of NM, Yes, No");
  CHECK_EQ_STR(report_msg(&r, "occupation"), "must be a string");
  CHECK_EQ_STR(report_msg(&r, "type_of_loan"), "is required");
  CHECK_EQ_STR(report_msg(&r, "interest_rate"), "is required");
  CHECK_EQ_STR(report_msg(&r, "favourite_colour"), "unknown field");
  CHECK_EQ_STR(report_msg(&r, "customer_id"), "must be a number or a string");

  cJSON *fields = spec_report_json(&r);
  REQUIRE(fields);
  CHECK_EQ_INT(cJSON_GetArraySize(fields), 12);
  CHECK_EQ_STR(cJSON_GetObjectItem(fields, "age")->valuestring,
               "must be > 0");
  cJSON_Delete(fields);
  cJSON_Delete(o);

  /* not an object */
  o = cJSON_Parse("[1, 2]");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, 1);
  CHECK_EQ_STR(r.e[0].msg, "must be a JSON object");
  cJSON_Delete(o);

  /* a duplicated member and an over-long unknown name */
  o = cJSON_Parse(good_req);
  cJSON_AddNumberToObject(o, "age", 30);
  char longname[300];
  memset(longname, 'z', sizeof(longname) - 1);
  longname[sizeof(longname) - 1] = '\0';
  cJSON_AddNumberToObject(o, longname, 1);
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, 2);
  CHECK_EQ_STR(r.e[0].msg, "duplicate field");
  CHECK_EQ_INT(strlen(r.e[1].field), SPEC_REPORT_FIELD - 1);
  cJSON_Delete(o);

  /* more bad fields than the report holds */
  o = cJSON_Parse(good_req);
  for (int i = 0; i < SPEC_REPORT_MAX + 5; i++) {
    char k[32];
    snprintf(k, sizeof(k), "extra%d", i);
    cJSON_AddNumberToObject(o, k, i);
  }
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, SPEC_REPORT_MAX);
  CHECK_EQ_INT(r.n_more, 5);
  fields = spec_report_json(&r);
  CHECK(fields && cJSON_GetObjectItem(fields, "...") != NULL);
  cJSON_Delete(fields);
  cJSON_Delete(o);
  spec_destroy(s);
}

TEST(validate_bounds_and_optional)
{
  struct spec *s = NULL;
  struct err e = {0};
  const char *y = "name: m\nsource: {table: t, key: id}\ntarget: {column: y}\n"
                  "features:\n  numeric:\n"
                  "    - {name: a, min: 1, max: 2.5}\n"
                  "    - {name: b, ge: -1, lt: 1e3, required: false}\n";
  REQUIRE(load_str(y, &s, &e) == ERR_OK);
  struct spec_report r;
  cJSON *o = cJSON_Parse("{\"a\": 2.5, \"id\": \"C-1\"}");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_OK);
  cJSON_Delete(o);
  o = cJSON_Parse("{\"a\": 0.5, \"b\": 1000}");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_STR(report_msg(&r, "a"), "must be >= 1");
  CHECK_EQ_STR(report_msg(&r, "b"), "must be < 1000");
  cJSON_Delete(o);
  o = cJSON_Parse("{\"a\": 2.6, \"b\": null}");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, 1);
  CHECK_EQ_STR(report_msg(&r, "a"), "must be <= 2.5");
  cJSON_Delete(o);
  o = cJSON_Parse("{\"a\": 1, \"b\": -1.5}");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_STR(report_msg(&r, "b"), "must be >= -1");
  cJSON_Delete(o);
  spec_destroy(s);
}

/* The validation remembers, per thread, which feature sat at each
 * position of the previous request (issue 16): requests in another order,
 * with the source key, a repeated or an unknown member where a feature
 * was before, and another spec in between must get the same report and
 * the same members as without that memory. */
static int members_match(const struct spec *s, const cJSON **mem,
                         const cJSON *o)
{
  for (size_t i = 0; i < s->n_features; i++) {
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(o,
                                                         s->features[i].name);
    if (mem[i] != want)
      return 0;
  }
  return 1;
}

TEST(validate_member_order)
{
  struct spec *s = load_course(), *s2 = NULL;
  REQUIRE(s);
  struct err e = {0};
  REQUIRE(load_str("name: m\nsource: {table: t, key: id}\n"
                   "target: {column: y}\nfeatures:\n  numeric:\n"
                   "    - {name: a}\n    - {name: b}\n",
                   &s2, &e) == ERR_OK);
  struct spec_report r;
  const cJSON *mem[64];
  cJSON *base = cJSON_Parse(good_req);
  REQUIRE(base);
  int n = cJSON_GetArraySize(base);
  int bad_members = 0, bad_report = 0;
  for (int rot = 0; rot < 2 * n; rot++) {
    /* members rotated by rot (reversed on the second round) */
    cJSON *o = cJSON_CreateObject();
    for (int k = 0; k < n; k++) {
      int j = rot < n ? (k + rot) % n : (n - 1 - k + rot) % n;
      cJSON *m = cJSON_GetArrayItem(base, j);
      cJSON_AddItemToObject(o, m->string, cJSON_Duplicate(m, 1));
    }
    for (int twice = 0; twice < 2; twice++) {
      if (spec_validate_request_members(s, o, &r, mem) != ERR_OK ||
          r.n != 0)
        bad_report++;
      if (!members_match(s, mem, o))
        bad_members++;
    }
    /* the other spec in between: its own members, its own answer */
    cJSON *o2 = cJSON_Parse("{\"b\": 2, \"id\": 7, \"a\": 1}");
    const cJSON *mem2[2];
    CHECK_EQ_INT(spec_validate_request_members(s2, o2, &r, mem2), ERR_OK);
    CHECK(mem2[0] == cJSON_GetObjectItem(o2, "a") &&
          mem2[1] == cJSON_GetObjectItem(o2, "b"));
    cJSON_Delete(o2);
    cJSON_Delete(o);
  }
  CHECK_EQ_INT(bad_report, 0);
  CHECK_EQ_INT(bad_members, 0);

  /* where "age" was (position 1 of good_req): the key again, the previous
   * member repeated, an unknown name */
  REQUIRE(spec_validate_request(s, base, &r) == ERR_OK);
  cJSON *o = cJSON_Parse("{\"customer_id\": 1, \"customer_id\": 2}");
  CHECK_EQ_INT(spec_validate_request(s, o, &r), ERR_INVAL);
  CHECK_EQ_INT(r.n, 1 + s->n_features); /* the duplicate, each feature */
  CHECK_EQ_STR(r.e[0].field, "customer_id");
  CHECK_EQ_STR(r.e[0].msg, "duplicate field");
  cJSON_Delete(o);
  REQUIRE(spec_validate_request(s, base, &r) == ERR_OK);
  o = cJSON_Parse(good_req);
  cJSON_DeleteItemFromObject(o, "customer_id");
  cJSON_AddNumberToObject(o, "age", 30); /* last: a repeated "age" */
  cJSON_AddNumberToObject(o, "agе", 30); /* Cyrillic e: unknown */
  CHECK_EQ_INT(spec_validate_request_members(s, o, &r, mem), ERR_INVAL);
  CHECK_EQ_INT(r.n, 2);
  CHECK_EQ_STR(r.e[0].field, "age");
  CHECK_EQ_STR(r.e[0].msg, "duplicate field");
  CHECK_EQ_STR(r.e[1].msg, "unknown field");
  CHECK(mem[spec_feature_index(s, "age")] == cJSON_GetObjectItem(o, "age"));
  cJSON_Delete(o);
  cJSON_Delete(base);
  spec_destroy(s2);
  spec_destroy(s);
}

int main(void)
{
  RUN(course_spec);
  RUN(fixtures_dir);
  RUN(schema_errors);
  RUN(window_and_weights);
  RUN(name_rule);
  RUN(validate_request);
  RUN(validate_bounds_and_optional);
  RUN(validate_member_order);
  return check_done();
}
