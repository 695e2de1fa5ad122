/* test_explain.c - reason codes folded per input field (src/explain.c):
 * a fitted prep with numeric, categorical (one-hot) and text (multi-hot)
 * inputs; the columns of each input are found here independently from
 * the output names ("occ=a", "occ#unknown", "loans:auto"), and the fold,
 * the ranking and the mean |value| are checked against sums computed
 * from those names.  The comparison with XGBoost's own contributions is
 * tests/integration/test_explain.sh.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mlopsd/explain.h"
#include "mlopsd/prep.h"
#include "mlopsd/spec.h"

static const char yaml[] =
    "name: m\nsource: {table: t}\ntarget: {column: y}\n"
    "features:\n"
    "  numeric: [{name: age}, {name: inc}]\n"
    "  categorical: [{name: occ}]\n"
    "  text: [{name: loans, delimiters: \",\"}]\n";

#define NROWS 4
static const double age_v[NROWS] = {20, 30, 40, 50};
static const double inc_v[NROWS] = {1, 2, 3, 4};
static const char *const occ_v[NROWS] = {"b", "a", "c", "b"};
static const char *const loans_v[NROWS] = {"auto,home", "home", "auto",
                                           "pay"};

static struct prep *fit(struct spec **sp)
{
  struct err e = {0};
  if (spec_load_buf("/t/m.yaml", yaml, strlen(yaml), sp, &e)) {
    fprintf(stderr, "  spec: %s\n", e.msg);
    return NULL;
  }
  struct prep_column cols[4] = {{.num = age_v}, {.num = inc_v},
                                {.str = occ_v}, {.str = loans_v}};
  struct prep_input in = {.n_rows = NROWS, .n_cols = 4, .cols = cols};
  struct prep *p = NULL;
  if (prep_fit(*sp, &in, NULL, NROWS, &p, &e))
    fprintf(stderr, "  prep: %s\n", e.msg);
  return p;
}

/* Input of output column j by its name: "NAME", "NAME=...", "NAME:...",
 * "NAME#unknown". */
static size_t input_of(const struct prep *p, size_t j)
{
  const char *o = prep_output_name(p, j);
  for (size_t i = 0; i < prep_n_inputs(p); i++) {
    const char *nm = prep_input_name(p, i);
    size_t l = strlen(nm);
    if (!strncmp(o, nm, l) && strchr("=:#", o[l] ? o[l] : '='))
      return i;
  }
  return (size_t)-1;
}

TEST(fold_sums_each_inputs_columns)
{
  struct spec *sp = NULL;
  struct prep *p = fit(&sp);
  REQUIRE(p != NULL);
  size_t ni = prep_n_inputs(p), no = prep_n_outputs(p);
  CHECK_EQ_INT(ni, 4);
  /* 2 numeric + occ a,b,c,#unknown + loans auto,home,pay,#unknown */
  CHECK_EQ_INT(no, 10);
  float c[11];
  double want[4] = {0}, got[4], bias = 0;
  for (size_t j = 0; j < no; j++) {
    c[j] = (float)((j % 2 ? -1.0 : 1.0) * 0.25 * (double)(j + 1));
    size_t i = input_of(p, j);
    REQUIRE(i < ni);
    want[i] += c[j];
  }
  c[no] = -0.75f;
  explain_fold(p, c, got, &bias);
  for (size_t i = 0; i < ni; i++)
    CHECK_NEAR(got[i], want[i], 1e-12);
  CHECK_NEAR(bias, -0.75, 0);
  /* additivity: the fields and the bias give the sum of all values */
  double all = 0, sum = bias;
  for (size_t j = 0; j <= no; j++)
    all += c[j];
  for (size_t i = 0; i < ni; i++)
    sum += got[i];
  CHECK_NEAR(sum, all, 1e-12);

  double col[10], per[4];
  for (size_t j = 0; j < no; j++)
    col[j] = (double)j;
  explain_fold_columns(p, col, per);
  double wcol[4] = {0};
  for (size_t j = 0; j < no; j++)
    wcol[input_of(p, j)] += (double)j;
  for (size_t i = 0; i < ni; i++)
    CHECK_NEAR(per[i], wcol[i], 0);
  prep_destroy(p);
  spec_destroy(sp);
}

TEST(rank_by_absolute_value_ties_in_order)
{
  const double v[6] = {0.1, -0.5, 0.5, 0.0, -2.0, 0.1};
  size_t idx[6];
  explain_rank(v, 6, idx);
  const size_t want[6] = {4, 1, 2, 0, 5, 3};
  for (int i = 0; i < 6; i++)
    CHECK_EQ_INT(idx[i], want[i]);
  explain_rank(v, 1, idx);
  CHECK_EQ_INT(idx[0], 0);
}

TEST(mean_abs_over_rows_and_groups)
{
  struct spec *sp = NULL;
  struct prep *p = fit(&sp);
  REQUIRE(p != NULL);
  size_t ni = prep_n_inputs(p), no = prep_n_outputs(p), w = no + 1;
  /* 3 rows x 2 groups; row r group g column j = (r + 1) * (g ? -1 : 1)
   * * (j - 4), so a field's folded value changes sign between groups */
  float *c = calloc(3 * 2 * w, sizeof(float));
  REQUIRE(c != NULL);
  double want[4] = {0};
  for (size_t r = 0; r < 3; r++)
    for (size_t g = 0; g < 2; g++) {
      double f[4] = {0};
      for (size_t j = 0; j < no; j++) {
        float x = (float)((double)(r + 1) * (g ? -1.0 : 1.0) *
                          ((double)j - 4.0));
        c[(r * 2 + g) * w + j] = x;
        f[input_of(p, j)] += x;
      }
      c[(r * 2 + g) * w + no] = 9.0f; /* the bias never counts */
      for (size_t i = 0; i < ni; i++)
        want[i] += fabs(f[i]) / 6.0;
    }
  double scratch[4], got[4];
  explain_mean_abs(p, c, 3, 2, scratch, got);
  for (size_t i = 0; i < ni; i++)
    CHECK_NEAR(got[i], want[i], 1e-12);
  CHECK(got[0] > 0);
  free(c);
  prep_destroy(p);
  spec_destroy(sp);
}

int main(void)
{
  RUN(fold_sums_each_inputs_columns);
  RUN(rank_by_absolute_value_ties_in_order);
  RUN(mean_abs_over_rows_and_groups);
  return check_done();
}
