/* test_stats.c - the gate's statistics (src/stats.c) against scipy
 * (python3-scipy from Debian, run as /usr/bin/python3 at test time):
 * binomial CDF, normal quantile, Clopper-Pearson bounds, the exact
 * McNemar p-value and the paired gate's interval; then the gate's
 * false-accept rate measured by simulation: a candidate truly worse by
 * max_regression must pass at most 1 - level of the time.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/stats.h"

#ifndef CHECK_NEAR
#define CHECK_NEAR(a, b, eps) CHECK(fabs((double)(a) - (double)(b)) <= (eps))
#endif

/* Cases: (b, c, n, level).  m = b + c discordant rows of n. */
static const long cases[][3] = {
    {0, 0, 100},   {0, 5, 100},    {5, 0, 100},   {12, 20, 150},
    {40, 31, 500}, {75, 95, 1000}, {1, 1, 10},    {300, 260, 4000},
    {3, 17, 60},   {250, 250, 2000},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* scipy's answers, one line per case: cdf p_mcnemar cp_lo cp_hi z */
static int scipy_values(double out[][5], double level)
{
  if (access("/usr/bin/python3", X_OK) != 0)
    return 0;
  char prog[4096];
  size_t n = (size_t)snprintf(
      prog, sizeof(prog),
      "/usr/bin/python3 -c '\n"
      "from scipy import stats\n"
      "lev = %.17g\n"
      "for b, c, n in [",
      level);
  for (size_t i = 0; i < NCASES; i++)
    n += (size_t)snprintf(prog + n, sizeof(prog) - n, "(%ld,%ld,%ld),",
                          cases[i][0], cases[i][1], cases[i][2]);
  snprintf(prog + n, sizeof(prog) - n,
           "]:\n"
           "    m = b + c\n"
           "    cdf = stats.binom.cdf(min(b, c), m, 0.5) if m else 1.0\n"
           "    p = stats.binomtest(b, m, 0.5).pvalue if m else 1.0\n"
           "    lo, hi = (stats.binomtest(b, m).proportion_ci(\n"
           "        2 * lev - 1, \"exact\") if m else (0.0, 1.0))\n"
           "    z = stats.norm.ppf(lev)\n"
           "    print(repr(cdf), repr(p), repr(lo), repr(hi), repr(z))\n"
           "' 2>&1");
  FILE *f = popen(prog, "r");
  if (!f)
    return 0;
  size_t got = 0;
  char line[512];
  while (got < NCASES && fgets(line, sizeof(line), f))
    if (sscanf(line, "%lf %lf %lf %lf %lf", &out[got][0], &out[got][1],
               &out[got][2], &out[got][3], &out[got][4]) == 5)
      got++;
    else
      fprintf(stderr, "  python: %s", line);
  pclose(f);
  return got == NCASES;
}

TEST(against_scipy)
{
  double want[NCASES][5];
  double level = 0.95;
  if (!scipy_values(want, level)) {
    fprintf(stderr, "  /usr/bin/python3 with scipy (python3-scipy) "
                    "missing\n");
    CHECK(0);
    return;
  }
  for (size_t i = 0; i < NCASES; i++) {
    long b = cases[i][0], c = cases[i][1], n = cases[i][2], m = b + c;
    CHECK_NEAR(stats_binom_cdf(b < c ? b : c, m, 0.5), want[i][0], 1e-10);
    CHECK_NEAR(stats_mcnemar_exact(b, c), want[i][1], 1e-10);
    double lo, hi;
    stats_clopper_pearson(b, m, 1 - level, &lo, &hi);
    CHECK_NEAR(lo, want[i][2], 1e-9);
    CHECK_NEAR(hi, want[i][3], 1e-9);
    CHECK_NEAR(stats_norm_quantile(level), want[i][4], 1e-9);
    /* the gate's interval is the bounds mapped to the difference */
    struct stats_paired g;
    stats_paired_gate(n, b, c, level, 0.02, &g);
    double q = (double)m / (double)n;
    CHECK_NEAR(g.difference, (double)(b - c) / (double)n, 1e-15);
    CHECK_NEAR(g.lo, m ? q * (2 * want[i][2] - 1) : 0, 1e-9);
    CHECK_NEAR(g.hi, m ? q * (2 * want[i][3] - 1) : 0, 1e-9);
    CHECK_NEAR(g.p_value, want[i][1], 1e-10);
    double z = want[i][4] + 0.8416212335729143; /* norm.ppf(0.8) */
    CHECK_EQ_INT(g.min_rows, m ? (long)ceil(q * z * z / 0.0004) : 0);
    CHECK_EQ_INT(g.pass, g.lo > -0.02 && n >= g.min_rows);
  }
}

TEST(gate_decisions)
{
  struct stats_paired g;
  /* 4,000 rows, candidate clearly better: passes */
  stats_paired_gate(4000, 300, 200, 0.95, 0.02, &g);
  CHECK(g.lo > 0);
  CHECK_EQ_INT(g.pass, 1);
  /* too few rows for the discordance: kept out even when better */
  stats_paired_gate(150, 20, 12, 0.95, 0.02, &g);
  CHECK(g.min_rows > 150);
  CHECK_EQ_INT(g.pass, 0);
  /* clearly worse: the bound is below -max_regression */
  stats_paired_gate(4000, 200, 400, 0.95, 0.02, &g);
  CHECK(g.lo < -0.02);
  CHECK_EQ_INT(g.pass, 0);
  /* identical answers: difference 0, nothing to test, passes */
  stats_paired_gate(100, 0, 0, 0.95, 0.02, &g);
  CHECK_EQ_INT(g.min_rows, 0);
  CHECK_EQ_INT(g.pass, 1);
  CHECK_NEAR(g.p_value, 1, 0);
  /* no rows: never passes */
  stats_paired_gate(0, 0, 0, 0.95, 0.02, &g);
  CHECK_EQ_INT(g.pass, 0);
}

/* splitmix64 for the simulation (fixed seed: the figure is the same on
 * every run). */
static uint64_t sm(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/* Share of simulated gates that pass a candidate truly worse by delta
 * at discordance q on n rows. */
static double accept_rate(long n, double q, double delta, double max_reg,
                          int sims, uint64_t seed)
{
  double pb = (q - delta) / 2, pc = (q + delta) / 2;
  int pass = 0;
  uint64_t s = seed;
  for (int k = 0; k < sims; k++) {
    long b = 0, c = 0;
    for (long i = 0; i < n; i++) {
      double u = (double)(sm(&s) >> 11) * 0x1.0p-53;
      if (u < pb)
        b++;
      else if (u < pb + pc)
        c++;
    }
    struct stats_paired g;
    stats_paired_gate(n, b, c, 0.95, max_reg, &g);
    /* the interval alone (the row rule would only lower the rate) */
    pass += g.lo > -max_reg;
  }
  return (double)pass / sims;
}

TEST(false_accept_rate)
{
  /* a candidate exactly max_regression worse, at the course data's
   * discordance (about 0.15-0.25 between two versions) and gate sizes */
  static const long ns[] = {500, 2000, 5000};
  static const double qs[] = {0.15, 0.25};
  for (size_t i = 0; i < 3; i++)
    for (size_t j = 0; j < 2; j++) {
      double r = accept_rate(ns[i], qs[j], 0.02, 0.02, 1000, 42 + i * 7 + j);
      fprintf(stderr, "  false accepts at n=%ld q=%.2f delta=0.02: %.4f\n",
              ns[i], qs[j], r);
      /* 0.05 plus three binomial standard errors of 1,000 runs */
      CHECK(r <= 0.05 + 3 * sqrt(0.05 * 0.95 / 1000));
    }
  /* and a candidate as good as production passes often at min_rows */
  struct stats_paired g;
  stats_paired_gate(3000, 300, 300, 0.95, 0.02, &g);
  double pw = accept_rate(g.min_rows, 0.2, 0, 0.02, 400, 99);
  fprintf(stderr, "  equal candidate at min_rows %ld (q=0.2): passes %.3f\n",
          g.min_rows, pw);
  CHECK(pw > 0.7);
}

int main(void)
{
  RUN(against_scipy);
  RUN(gate_decisions);
  RUN(false_accept_rate);
  return check_done();
}
