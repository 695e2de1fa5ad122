/* test_psi.c - PSI arithmetic, binning, reference.json parsing (the
 * format src/pipeline.c writes) and the live accumulator, against values
 * computed by hand: shares written out, the formula
 * sum((a - e) * ln(a / e)) evaluated term by term (and once more in
 * Python for the literal constants).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/psi.h"
#include "mlopsd/stats.h"

#ifndef CHECK_NEAR
#define CHECK_NEAR(a, b, eps) CHECK(fabs((double)(a) - (double)(b)) <= (eps))
#endif

static struct err E;

/* (a - e) * ln(a / e) with the 1e-4 floor, written out for readability. */
static double term(double a, double e)
{
  if (a < 1e-4)
    a = 1e-4;
  if (e < 1e-4)
    e = 1e-4;
  return (a - e) * log(a / e);
}

TEST(counts_basic)
{
  double e[] = {50, 50}, a[] = {25, 75};
  /* 0.25 ln 2 + 0.25 ln 1.5 */
  CHECK_NEAR(psi_counts(e, a, 2, PSI_EPS, NULL), 0.27465307216702745,
             1e-12);
  /* symmetric in scale: counts are normalised per side */
  double e2[] = {1, 1}, a2[] = {1000, 3000};
  CHECK_NEAR(psi_counts(e2, a2, 2, PSI_EPS, NULL), 0.27465307216702745,
             1e-12);
  CHECK_NEAR(psi_counts(e, e, 2, PSI_EPS, NULL), 0.0, 1e-15);
}

TEST(counts_empty_bins)
{
  /* expected shares .5 .5 0 -> the third floored at 1e-4 */
  double e[] = {5, 5, 0}, a[] = {4, 4, 2};
  double c[3];
  double want = 2 * (-0.1) * log(0.8) + (0.2 - 1e-4) * log(0.2 / 1e-4);
  CHECK_NEAR(want, 1.5640491119253042, 1e-12);
  CHECK_NEAR(psi_counts(e, a, 3, PSI_EPS, c), want, 1e-12);
  CHECK_NEAR(c[2], (0.2 - 1e-4) * log(2000.0), 1e-12);
  /* a bin empty on both sides adds nothing */
  double e4[] = {5, 5, 0, 0}, a4[] = {4, 4, 2, 0};
  CHECK_NEAR(psi_counts(e4, a4, 4, PSI_EPS, NULL), want, 1e-12);
  /* empty on the live side */
  double e5[] = {2, 8}, a5[] = {0, 10};
  CHECK_NEAR(psi_counts(e5, a5, 2, PSI_EPS, NULL),
             (1e-4 - 0.2) * log(1e-4 / 0.2) + 0.2 * log(1.0 / 0.8), 1e-12);
  /* no rows at all: undefined */
  double z[] = {0, 0};
  CHECK(isnan(psi_counts(e, z, 2, PSI_EPS, NULL)));
  CHECK(isnan(psi_counts(z, a, 2, PSI_EPS, NULL)));
  CHECK(isnan(psi_counts(e, a, 0, PSI_EPS, NULL)));
}

TEST(bin_rule)
{
  double ed[] = {1, 2, 3};
  CHECK_EQ_INT(psi_bin(ed, 3, 0.5), 0);
  CHECK_EQ_INT(psi_bin(ed, 3, -1e300), 0);
  CHECK_EQ_INT(psi_bin(ed, 3, 1), 1); /* an edge opens its bin */
  CHECK_EQ_INT(psi_bin(ed, 3, 1.5), 1);
  CHECK_EQ_INT(psi_bin(ed, 3, 2.999), 2);
  CHECK_EQ_INT(psi_bin(ed, 3, 3), 3);
  CHECK_EQ_INT(psi_bin(ed, 3, 1e300), 3); /* above the last: last bin */
  CHECK_EQ_INT(psi_bin(ed, 0, 5), 0);
}

/* In the shape pipeline.c writes: numeric edges are the quantiles 0 (min),
 * inner cut points, 1 (max); shares are among present values. */
static const char *REF =
    "{\"format\": \"mlopsd.reference\", \"format_version\": 1, \"rows\": 10,"
    " \"bins\": 3, \"features\": ["
    "  {\"name\": \"x\", \"kind\": \"numeric\", \"missing_share\": 0.2,"
    "   \"edges\": [0, 10, 20, 30], \"counts\": [2, 4, 2],"
    "   \"shares\": [0.25, 0.5, 0.25]},"
    "  {\"name\": \"c\", \"kind\": \"categorical\", \"missing_share\": 0,"
    "   \"categories\": {\"B\": 0.4, \"A\": 0.6}, \"other_share\": 0,"
    "   \"distinct\": 2},"
    "  {\"name\": \"t\", \"kind\": \"text\", \"missing_share\": 0,"
    "   \"tokens\": {\"a\": 0.5, \"b\": 0.5}, \"other_share\": 0}"
    "]}";

static const char *LIVE[] = {
    "{\"x\": 5, \"c\": \"A\", \"t\": \"a,a b\", \"other\": 1}",
    "{\"x\": 15, \"c\": \"B\", \"t\": \"c\"}",
    "{\"x\": 25, \"c\": \"Z\", \"t\": \"a, c\"}",
    "{\"x\": null, \"t\": null}",
};

static struct psi_ref *load_ref(const char *text, const cJSON *prep)
{
  cJSON *j = cJSON_Parse(text);
  struct psi_ref *r = NULL;
  if (!j)
    return NULL;
  if (psi_ref_from_json(j, prep, "ref.json", &r, &E) != ERR_OK)
    r = NULL;
  cJSON_Delete(j);
  return r;
}

static struct psi_live *feed(const struct psi_ref *r, const char **rows,
                             size_t n)
{
  struct psi_live *l;
  if (psi_live_create(r, &l, &E) != ERR_OK)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    cJSON *j = cJSON_Parse(rows[i]);
    CHECK(psi_live_add(l, j) == 0);
    cJSON_Delete(j);
  }
  return l;
}

/* REF loaded and fed rows: the reference, the live accumulator and one
 * feature's score (the tests that need one). */
struct live_fx {
  struct psi_ref *r;
  struct psi_live *l;
  struct psi_score s;
};

/* Load the reference REF_TEXT and feed it ROWS[0..n); 1 when both worked,
 * else 0 after a failed check.  live_close() frees what was made, also
 * after a 0. */
static int live_open(struct live_fx *f, const char *ref_text,
                     const char **rows, size_t n)
{
  f->r = load_ref(ref_text, NULL);
  CHECK(f->r != NULL);
  f->l = f->r ? feed(f->r, rows, n) : NULL;
  CHECK(!f->r || f->l != NULL);
  return f->l != NULL;
}

static void live_close(struct live_fx *f)
{
  psi_live_destroy(f->l);
  psi_ref_destroy(f->r);
}

/* live_open, then the score of FEATURE into f->s; 1 when all worked, else
 * 0 after a failed check, with f closed. */
static int live_score(struct live_fx *f, const char *ref_text,
                      const char **rows, size_t n, size_t feature)
{
  enum err_code rc = ERR_INVAL;
  if (live_open(f, ref_text, rows, n)) {
    rc = psi_live_score(f->l, feature, &f->s, &E);
    CHECK_EQ_INT(rc, ERR_OK);
  }
  if (rc != ERR_OK)
    live_close(f);
  return rc == ERR_OK;
}

TEST(live_numeric_missing)
{
  struct psi_ref *r = load_ref(REF, NULL);
  REQUIRE(r);
  CHECK_EQ_INT(psi_ref_n_features(r), 3);
  CHECK_EQ_STR(psi_ref_feature_name(r, 1), "c");
  CHECK(psi_ref_feature_kind(r, 2) == SPEC_TEXT);
  struct psi_live *l = feed(r, LIVE, 4);
  REQUIRE(l);
  CHECK_EQ_INT(psi_live_rows(l), 4);
  struct psi_score s;
  REQUIRE(psi_live_score(l, 0, &s, &E) == ERR_OK);
  /* values among present rows: ref .25 .5 .25, live 1/3 each; missing
   * .2 -> .25 went up, so its two-bin PSI counts too */
  double value = 2 * term(1.0 / 3, 0.25) + term(1.0 / 3, 0.5);
  double missing = term(0.25, 0.2) + term(0.75, 0.8);
  CHECK_NEAR(s.value_psi, value, 1e-12);
  CHECK_NEAR(s.missing_psi, missing, 1e-12);
  CHECK_NEAR(s.psi, value + missing, 1e-12);
  CHECK_NEAR(s.psi, 0.12990863371591324, 1e-12);
  CHECK_NEAR(s.missing_ref, 0.2, 1e-12);
  CHECK_NEAR(s.missing_live, 0.25, 1e-12);
  CHECK_EQ_INT(s.n_bins, 4);
  CHECK_EQ_STR(s.top_bin, "[10, 20)");
  CHECK_NEAR(s.top_ref, 0.5, 1e-12);
  CHECK_NEAR(s.top_live, 1.0 / 3, 1e-12);
  psi_live_destroy(l);
  psi_ref_destroy(r);
}

TEST(live_categorical_unseen)
{
  struct live_fx f;
  REQUIRE(live_score(&f, REF, LIVE, 4, 1));
  /* present values A B unseen: ref .6 .4 0, live 1/3 each; missing 0 ->
   * .25 counts (more missing than in training) */
  double want = term(1.0 / 3, 0.6) + term(1.0 / 3, 0.4) +
                term(1.0 / 3, 0) + term(0.25, 0) + term(0.75, 1);
  CHECK_NEAR(f.s.psi, want, 1e-12);
  CHECK_NEAR(f.s.psi, 4.899145685613788, 1e-9);
  CHECK_NEAR(f.s.missing_live, 0.25, 1e-12);
  CHECK_NEAR(f.s.missing_ref, 0, 0);
  /* the unseen bin (2.70) outweighs the missing part (2.03) */
  CHECK_EQ_STR(f.s.top_bin, "(unseen)");
  CHECK_NEAR(f.s.top_ref, 0, 0);
  CHECK_NEAR(f.s.top_live, 1.0 / 3, 1e-12);
  live_close(&f);
}

TEST(live_text_multihot)
{
  struct live_fx f;
  REQUIRE(live_score(&f, REF, LIVE, 4, 2));
  /* token occurrences of the 3 present rows: a 3 (twice in the first),
   * b 1, unseen 2 (c twice) -> .5, 1/6, 1/3 of 6; ref a .5, b .5.
   * Missing 0 -> .25 counts. */
  double want = term(0.5, 0.5) + term(1.0 / 6, 0.5) + term(1.0 / 3, 0) +
                term(0.25, 0) + term(0.75, 1);
  CHECK_NEAR(f.s.psi, want, 1e-12);
  CHECK_NEAR(f.s.psi, 5.096451900742996, 1e-9);
  CHECK_NEAR(f.s.missing_live, 0.25, 1e-12);
  live_close(&f);
}

TEST(scores_json)
{
  struct live_fx f;
  REQUIRE(live_open(&f, REF, LIVE, 4));
  struct psi_ref *r = f.r;
  struct psi_live *l = f.l;
  cJSON *j;
  struct psi_summary sum;
  REQUIRE(psi_live_scores_json(l, 0.01, 0.2, &j, &sum, &E) == ERR_OK);
  CHECK_EQ_INT(sum.worst, 2); /* the text feature */
  CHECK_NEAR(sum.max_psi, 5.096451900742996, 1e-9);
  /* ...yet 4 rows against 10 say nothing: every bin expects fewer than 5
   * window rows, so all are pooled and there is nothing to test */
  CHECK_EQ_INT(sum.drifted, -1);
  CHECK_EQ_INT(sum.n_drifted, 0);
  const cJSON *t = cJSON_GetObjectItem(j, "t");
  CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "df")) == 0);
  /* only its missing share is tested: 1 of 4 rows against 0 of 10 */
  int df;
  double mr[2] = {0, 10}, ml[2] = {1, 3};
  double pm = stats_chi2_sf(stats_chi2_2xk(mr, ml, 2, &df), 1) / 2;
  CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "p")),
             fmin(1, 2 * pm), 1e-15);
  CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t, "p_holm")) > 0.1);
  cJSON_Delete(j);
  /* alpha 1: the tests are off, PSI alone decides (the old rule) */
  REQUIRE(psi_live_scores_json(l, 1, 0.2, &j, &sum, &E) == ERR_OK);
  CHECK_EQ_INT(sum.drifted, 2);
  CHECK_NEAR(sum.drifted_psi, 5.096451900742996, 1e-9);
  CHECK(sum.n_drifted >= 1);
  const cJSON *c = cJSON_GetObjectItem(j, "c");
  CHECK(cJSON_IsNumber(cJSON_GetObjectItem(c, "psi")));
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "kind")),
               "categorical");
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(c, "top_bin")),
               "(unseen)");
  cJSON_Delete(j);
  psi_live_destroy(l);
  /* no live rows: every psi is null, no worst feature */
  REQUIRE(psi_live_create(r, &l, &E) == ERR_OK);
  REQUIRE(psi_live_scores_json(l, 0.01, 0.2, &j, &sum, &E) == ERR_OK);
  CHECK_EQ_INT(sum.worst, -1);
  CHECK_EQ_INT(sum.drifted, -1);
  CHECK(isnan(sum.max_psi));
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "x"),
                                         "psi")));
  cJSON_Delete(j);
  CHECK(psi_live_add(l, NULL) == -1);
  psi_live_destroy(l);
  psi_ref_destroy(r);
}

TEST(live_odd_values)
{
  struct psi_ref *r = load_ref(REF, NULL);
  REQUIRE(r);
  /* a string for a numeric: missing; a number for a categorical: unseen;
   * text of delimiters only: present, but adds no token; values beyond the
   * reference's min and max: the end bins */
  const char *rows[] = {"{\"x\": \"5\", \"c\": 3, \"t\": \" ,,\"}",
                        "{\"x\": -100, \"c\": \"A\", \"t\": \"a\"}",
                        "{\"x\": 1e9, \"c\": \"A\", \"t\": \"a\"}"};
  struct psi_live *l = feed(r, rows, 3);
  REQUIRE(l);
  struct psi_score s;
  REQUIRE(psi_live_score(l, 0, &s, &E) == ERR_OK);
  CHECK_NEAR(s.missing_live, 1.0 / 3, 1e-15);
  /* present: <10 .5, [10,20) 0, >=20 .5 vs .25 .5 .25; missing .2 -> 1/3 */
  CHECK_NEAR(s.psi, 2 * term(0.5, 0.25) + term(0, 0.5) +
                        term(1.0 / 3, 0.2) + term(2.0 / 3, 0.8), 1e-12);
  CHECK_EQ_STR(s.top_bin, "[10, 20)");
  REQUIRE(psi_live_score(l, 1, &s, &E) == ERR_OK);
  CHECK_NEAR(s.missing_live, 0, 0);
  /* missing 0 -> 0: the missing part does not count */
  CHECK_NEAR(s.missing_psi, 0, 0);
  CHECK_NEAR(s.psi, term(2.0 / 3, 0.6) + term(0, 0.4) + term(1.0 / 3, 0),
             1e-12);
  CHECK_EQ_STR(s.top_bin, "B"); /* (0 - .4) ln(1e-4 / .4) is the largest */
  REQUIRE(psi_live_score(l, 2, &s, &E) == ERR_OK);
  CHECK_NEAR(s.missing_live, 0, 0);
  /* the token-less row adds no token: a is all the tokens there are */
  CHECK_NEAR(s.psi, term(1, 0.5) + term(0, 0.5), 1e-12);
  CHECK(psi_live_score(l, 3, &s, &E) == ERR_INVAL);
  psi_live_destroy(l);
  psi_ref_destroy(r);
}

static void bad_ref(const char *text, const char *needle)
{
  cJSON *j = cJSON_Parse(text);
  struct psi_ref *r = NULL;
  enum err_code rc = psi_ref_from_json(j, NULL, "r.json", &r, &E);
  CHECK(rc == ERR_PARSE);
  CHECK(r == NULL);
  if (!strstr(E.msg, needle)) {
    fprintf(stderr, "  message '%s' lacks '%s'\n", E.msg, needle);
    check_cur_failed = 1;
  }
  cJSON_Delete(j);
}

#define HDR "{\"format\": \"mlopsd.reference\", \"format_version\": 1, " \
            "\"rows\": 4, \"features\": ["

TEST(parse_errors)
{
  bad_ref("[]", "must be a JSON object");
  bad_ref("{\"format\": \"x\"}", "format");
  bad_ref("{\"format\": \"mlopsd.reference\", \"format_version\": 2}",
          "format_version");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [2, 1, 3],"
              " \"shares\": [1, 1]}]}", "x.edges[1]");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [1, 2],"
              " \"shares\": [1, 1]}]}", "2 edges need 1 shares, got 2");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [1],"
              " \"shares\": []}]}", "1 edges");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [1, 2],"
              " \"shares\": [-1]}]}", "x.shares[0]");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [1, 2],"
              " \"shares\": [1], \"missing_share\": 2}]}", "x.missing_share");
  bad_ref(HDR "{\"name\": \"c\", \"kind\": \"categorical\", \"categories\":"
              " {\"a\": 1, \"a\": 1}}]}", "duplicate \"a\"");
  bad_ref(HDR "{\"name\": \"c\", \"kind\": \"categorical\", \"categories\":"
              " [\"a\"]}]}", "c.categories");
  bad_ref(HDR "{\"name\": \"c\", \"kind\": \"categorical\", \"categories\":"
              " {\"a\": \"x\"}}]}", "c.categories[\"a\"]");
  bad_ref(HDR "{\"name\": \"t\", \"kind\": \"text\", \"categories\": {}}]}",
          "t.tokens");
  bad_ref(HDR "{\"name\": \"t\", \"kind\": \"blob\"}]}", "t.kind");
  bad_ref(HDR "{\"kind\": \"numeric\"}]}", "features[0]");
  bad_ref(HDR "{\"name\": \"x\", \"kind\": \"numeric\", \"edges\": [],"
              " \"shares\": []}, {\"name\": \"x\", \"kind\": \"numeric\","
              " \"edges\": [], \"shares\": []}]}", "listed twice");
}

TEST(numeric_all_missing_in_training)
{
  /* no present training value: edges and shares empty, all mass missing */
  const char *ref = "{\"format\": \"mlopsd.reference\", \"format_version\":"
                    " 1, \"rows\": 5, \"features\": [{\"name\": \"x\","
                    " \"kind\": \"numeric\", \"missing_share\": 1,"
                    " \"edges\": [], \"shares\": []}]}";
  const char *rows[] = {"{\"x\": 1}", "{\"x\": null}"};
  struct live_fx f;
  REQUIRE(live_score(&f, ref, rows, 2, 0));
  /* no present training value: only the shares compare, both ways */
  CHECK(isnan(f.s.value_psi));
  CHECK_NEAR(f.s.psi, term(0.5, 0) + term(0.5, 1), 1e-12);
  CHECK_EQ_STR(f.s.top_bin, "(missing)");
  live_close(&f);
}

TEST(text_delimiters_from_preprocess)
{
  const char *ref = "{\"format\": \"mlopsd.reference\", \"format_version\":"
                    " 1, \"rows\": 5, \"features\": [{\"name\": \"t\","
                    " \"kind\": \"text\", \"tokens\": {\"a b\": 0.5,"
                    " \"c\": 0.5}}]}";
  cJSON *prep = cJSON_Parse("{\"inputs\": [{\"name\": \"t\", \"kind\":"
                            " \"text\", \"delimiters\": \"|\"}]}");
  struct psi_ref *r = load_ref(ref, prep);
  cJSON_Delete(prep);
  REQUIRE(r);
  /* split on '|' only: "a b" is one token */
  const char *rows[] = {"{\"t\": \"a b|c\"}"};
  struct psi_live *l = feed(r, rows, 1);
  REQUIRE(l);
  struct psi_score s;
  REQUIRE(psi_live_score(l, 0, &s, &E) == ERR_OK);
  CHECK_NEAR(s.psi, 0, 1e-15);
  psi_live_destroy(l);
  psi_ref_destroy(r);
}

/* ---- the test: against scipy ------------------------------------------ */

/* Run python3 (Debian's, with scipy) on prog; the first line of its
 * output into line.  0 on success. */
static int python(const char *prog, char *line, size_t cap)
{
  if (access("/usr/bin/python3", X_OK) != 0) {
    fprintf(stderr, "  /usr/bin/python3 missing (scripts/install-deps.sh)\n");
    return -1;
  }
  char path[] = "/tmp/test_psi_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return -1;
  FILE *f = fdopen(fd, "w");
  if (!f)
    return -1;
  fputs(prog, f);
  fclose(f);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s 2>&1", path);
  FILE *pp = popen(cmd, "r");
  int ok = pp && fgets(line, (int)cap, pp) != NULL;
  if (pp)
    pclose(pp);
  unlink(path);
  return ok ? 0 : -1;
}

/* chi-square tails at (x, df) */
static const double SF[][2] = {
    {0.5, 1},  {3.84, 1},  {10, 1},   {40, 1},    {2, 2},     {21.67, 9},
    {9, 9},    {60, 9},    {200, 15}, {0.01, 30}, {29.5, 30}, {100, 3.5},
    {700, 20}, {1e-3, 4},  {45, 44},
};
#define NSF (sizeof(SF) / sizeof(SF[0]))

/* 2 x 4 tables (a row, b row); an empty column is dropped */
static const double TAB[][8] = {
    {10, 20, 30, 40, 12, 18, 33, 37},
    {100, 0, 50, 50, 80, 0, 70, 50},
    {5, 5, 5, 5, 50, 1, 1, 1},
    {1000, 2000, 1500, 500, 98, 205, 160, 37},
    {3.5, 7.25, 0.5, 9, 2, 2, 2, 2},
};
#define NTAB (sizeof(TAB) / sizeof(TAB[0]))

static const double PH[] = {0.001, 0.04, 0.03, 0.5, 0.0001, 0.04, 0.2, 0.9};
#define NPH (sizeof(PH) / sizeof(PH[0]))

static const long WIL[][2] = {{0, 10}, {7, 10}, {10, 10}, {60, 100},
                              {1234, 2000}, {1, 3}};
#define NWIL (sizeof(WIL) / sizeof(WIL[0]))

TEST(stats_against_scipy)
{
  char prog[8192], line[8192];
  size_t o = 0;
  o += (size_t)snprintf(prog + o, sizeof(prog) - o,
                        "from scipy import stats\n"
                        "import numpy as np\n"
                        "out = []\n");
  for (size_t i = 0; i < NSF; i++)
    o += (size_t)snprintf(prog + o, sizeof(prog) - o,
                          "out.append(stats.chi2.sf(%.17g, %.17g))\n",
                          SF[i][0], SF[i][1]);
  for (size_t i = 0; i < NTAB; i++) {
    const double *t = TAB[i];
    o += (size_t)snprintf(
        prog + o, sizeof(prog) - o,
        "t = np.array([[%g, %g, %g, %g], [%g, %g, %g, %g]])\n"
        "t = t[:, t.sum(axis=0) > 0]\n"
        "c = stats.chi2_contingency(t, correction=False)\n"
        "out += [c[0], c[2], c[1]]\n",
        t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]);
  }
  /* Holm, written out independently of stats.c's loop */
  o += (size_t)snprintf(prog + o, sizeof(prog) - o, "p = np.array([");
  for (size_t i = 0; i < NPH; i++)
    o += (size_t)snprintf(prog + o, sizeof(prog) - o, "%.17g,", PH[i]);
  o += (size_t)snprintf(
      prog + o, sizeof(prog) - o,
      "])\n"
      "r = np.argsort(p, kind=\"stable\")\n"
      "a = np.minimum(1, np.maximum.accumulate((len(p) - np.arange(len(p)))"
      " * p[r]))\n"
      "h = np.empty(len(p)); h[r] = a\n"
      "out += list(h)\n");
  for (size_t i = 0; i < NWIL; i++)
    o += (size_t)snprintf(
        prog + o, sizeof(prog) - o,
        "ci = stats.binomtest(%ld, %ld).proportion_ci(0.9, \"wilson\")\n"
        "out += [ci.low, ci.high]\n",
        WIL[i][0], WIL[i][1]);
  o += (size_t)snprintf(prog + o, sizeof(prog) - o,
                        "print(\" \".join(repr(float(x)) for x in out))\n");
  REQUIRE(o < sizeof(prog));
  REQUIRE(python(prog, line, sizeof(line)) == 0);
  double w[128];
  size_t n = 0;
  char *p = line, *end;
  while (n < 128 && (w[n] = strtod(p, &end), end != p)) {
    n++;
    p = end;
  }
  if (n != NSF + 3 * NTAB + NPH + 2 * NWIL)
    fprintf(stderr, "  python: %s\n", line);
  REQUIRE(n == NSF + 3 * NTAB + NPH + 2 * NWIL);
  size_t k = 0;
  for (size_t i = 0; i < NSF; i++, k++) {
    double v = stats_chi2_sf(SF[i][0], SF[i][1]);
    if (!(fabs(v - w[k]) <= 1e-12 * w[k] + 1e-300))
      fprintf(stderr, "  chi2.sf(%g, %g) = %.17g, scipy %.17g\n", SF[i][0],
              SF[i][1], v, w[k]);
    CHECK(fabs(v - w[k]) <= 1e-12 * w[k] + 1e-300);
  }
  for (size_t i = 0; i < NTAB; i++, k += 3) {
    int df;
    double x = stats_chi2_2xk(TAB[i], TAB[i] + 4, 4, &df);
    CHECK_NEAR(x, w[k], 1e-9 * w[k]);
    CHECK_EQ_INT(df, (int)w[k + 1]);
    CHECK_NEAR(stats_chi2_sf(x, df), w[k + 2], 1e-10 * w[k + 2] + 1e-300);
  }
  double adj[NPH];
  stats_holm(PH, NPH, adj);
  for (size_t i = 0; i < NPH; i++, k++)
    CHECK_NEAR(adj[i], w[k], 1e-15);
  for (size_t i = 0; i < NWIL; i++, k += 2) {
    double lo, hi;
    stats_wilson(WIL[i][0], WIL[i][1], 0.95, &lo, &hi);
    CHECK_NEAR(lo, w[k], 1e-9);
    CHECK_NEAR(hi, w[k + 1], 1e-9);
  }
  /* the edges */
  CHECK(stats_chi2_sf(0, 3) == 1);
  CHECK(isnan(stats_chi2_sf(1, 0)));
  double lo, hi;
  stats_wilson(0, 0, 0.95, &lo, &hi);
  CHECK(lo == 0 && hi == 1);
}

/* A categorical feature with shares (.5 .3 .2) over m = 2000 reference
 * rows; the window's counts are cnt.  Reference, window and the feature's
 * p-value through psi_live_score. */
static double cat_p(const int cnt[4], int m, struct psi_score *s)
{
  char ref[512];
  snprintf(ref, sizeof(ref),
           "{\"format\": \"mlopsd.reference\", \"format_version\": 1,"
           " \"rows\": %d, \"features\": [{\"name\": \"c\", \"kind\":"
           " \"categorical\", \"categories\": {\"a\": 0.5, \"b\": 0.3,"
           " \"c\": 0.2}, \"other_share\": 0}]}",
           m);
  struct psi_ref *r = load_ref(ref, NULL);
  struct psi_live *l;
  double p = NAN;
  if (!r || psi_live_create(r, &l, &E) != ERR_OK) {
    psi_ref_destroy(r);
    return NAN;
  }
  static const char *const row[4] = {"{\"c\": \"a\"}", "{\"c\": \"b\"}",
                                     "{\"c\": \"c\"}", "{\"c\": \"zz\"}"};
  for (int b = 0; b < 4; b++)
    for (int i = 0; i < cnt[b]; i++) {
      cJSON *j = cJSON_Parse(row[b]);
      psi_live_add(l, j);
      cJSON_Delete(j);
    }
  if (psi_live_score(l, 0, s, &E) == ERR_OK)
    p = s->p_value;
  psi_live_destroy(l);
  psi_ref_destroy(r);
  return p;
}

TEST(feature_test_against_scipy)
{
  /* (a, b, c, unseen) window counts; the last case's unseen bin is
   * pooled with nothing else (its reference share is 0) */
  static const int W[][4] = {
      {52, 28, 20, 0}, {40, 40, 20, 0}, {500, 330, 170, 0}, {45, 30, 20, 5}};
  char prog[4096], line[1024];
  size_t o = (size_t)snprintf(prog, sizeof(prog),
                              "from scipy import stats\nout = []\n");
  for (size_t i = 0; i < 4; i++)
    o += (size_t)snprintf(
        prog + o, sizeof(prog) - o,
        "t = [[1000, 600, 400, 0], [%d, %d, %d, %d]]\n"
        "t = [[r[j] for j in range(4) if t[0][j] + t[1][j] > 0] for r in t]\n"
        "out.append(stats.chi2_contingency(t, correction=False)[1])\n",
        W[i][0], W[i][1], W[i][2], W[i][3]);
  snprintf(prog + o, sizeof(prog) - o,
           "print(\" \".join(repr(float(x)) for x in out))\n");
  REQUIRE(python(prog, line, sizeof(line)) == 0);
  double w[4];
  REQUIRE(sscanf(line, "%lf %lf %lf %lf", &w[0], &w[1], &w[2], &w[3]) == 4);
  for (size_t i = 0; i < 4; i++) {
    struct psi_score s;
    double p = cat_p(W[i], 2000, &s);
    if (!(fabs(p - w[i]) <= 1e-10 * w[i] + 1e-300))
      fprintf(stderr, "  case %zu: p %.17g, scipy %.17g\n", i, p, w[i]);
    CHECK(fabs(p - w[i]) <= 1e-10 * w[i] + 1e-300);
  }
}

/* What the size-aware rule is for: the same shift in shares is noise in
 * a small window and drift in a large one, while a fixed PSI bar says the
 * same thing for both. */
TEST(threshold_depends_on_sizes)
{
  struct psi_score s;
  int small[4] = {12, 3, 5, 0}, large[4] = {600, 150, 250, 0};
  double ps = cat_p(small, 2000, &s);
  double psi_small = s.psi;
  double pl = cat_p(large, 2000, &s);
  CHECK_NEAR(psi_small, s.psi, 1e-12); /* the same shares, the same PSI */
  CHECK(s.psi > 0.1);
  CHECK(ps > 0.01);  /* 20 rows: could be chance */
  CHECK(pl < 1e-10); /* 1000 rows: is not */
  /* and the reference's size counts too: 1000 window rows against a
   * reference of 40 rows are much weaker evidence than against 2000 */
  double pm = cat_p(large, 40, &s);
  CHECK(pm > pl * 1e6);
  /* more missing values than in training enter one-sided */
  const char *ref = "{\"format\": \"mlopsd.reference\", \"format_version\":"
                    " 1, \"rows\": 1000, \"features\": [{\"name\": \"x\","
                    " \"kind\": \"numeric\", \"missing_share\": 0.1,"
                    " \"edges\": [0, 1, 2], \"shares\": [0.5, 0.5]}]}";
  struct psi_ref *r = load_ref(ref, NULL);
  REQUIRE(r);
  struct psi_live *l;
  REQUIRE(psi_live_create(r, &l, &E) == ERR_OK);
  for (int i = 0; i < 200; i++) {
    cJSON *j = cJSON_Parse(i % 4 == 0 ? "{\"x\": null}"
                                      : i % 2 ? "{\"x\": 0.5}"
                                              : "{\"x\": 1.5}");
    psi_live_add(l, j);
    cJSON_Delete(j);
  }
  REQUIRE(psi_live_score(l, 0, &s, &E) == ERR_OK);
  /* values: 75 / 75 vs 450 / 450, nothing; missing 50 of 200 vs 100 of
   * 1000: the 2 x 2 test, halved (one-sided), doubled (two tests) */
  int df;
  double a[2] = {100, 900}, b[2] = {50, 150};
  double pm1 = stats_chi2_sf(stats_chi2_2xk(a, b, 2, &df), 1) / 2;
  CHECK(pm1 < 1e-6);
  CHECK_NEAR(s.p_value, 2 * pm1, 1e-12 * pm1);
  psi_live_destroy(l);
  psi_ref_destroy(r);
}

int main(void)
{
  RUN(counts_basic);
  RUN(counts_empty_bins);
  RUN(bin_rule);
  RUN(live_numeric_missing);
  RUN(live_categorical_unseen);
  RUN(live_text_multihot);
  RUN(scores_json);
  RUN(live_odd_values);
  RUN(parse_errors);
  RUN(numeric_all_missing_in_training);
  RUN(text_delimiters_from_preprocess);
  RUN(stats_against_scipy);
  RUN(feature_test_against_scipy);
  RUN(threshold_depends_on_sizes);
  return check_done();
}
