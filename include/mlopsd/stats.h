/* stats.h - the small statistics the trust decisions rest on (issue 13,
 * docs/training.md "The gate"): binomial tails, Clopper-Pearson bounds,
 * the exact McNemar test and the paired accuracy gate built from them.
 *
 * All functions are pure (no state, any thread).  Exactness: binomial
 * probabilities are summed in log space (pmf recurrence), so results agree
 * with scipy.stats to about 1e-10 for counts up to a few million; bounds
 * are found by bisection to 1e-12.
 */
#ifndef MLOPSD_STATS_H
#define MLOPSD_STATS_H

#include <stddef.h>

/* P(X <= k) for X ~ Binomial(n, p); k < 0 gives 0, k >= n gives 1. */
double stats_binom_cdf(long k, long n, double p);

/* The standard normal quantile: x with P(Z <= x) = p, p in (0, 1). */
double stats_norm_quantile(double p);

/* One-sided Clopper-Pearson bounds for k successes in n trials, each at
 * error alpha (so [lo, hi] is a two-sided 1 - 2 alpha interval, what
 * scipy's binomtest(k, n).proportion_ci(1 - 2 alpha, "exact") gives):
 * lo = 0 when k == 0, hi = 1 when k == n; n == 0 gives [0, 1]. */
void stats_clopper_pearson(long k, long n, double alpha, double *lo,
                           double *hi);

/* Exact McNemar test of b against c discordant pairs: the two-sided
 * binomial test of b ~ Binomial(b + c, 1/2), p = min(1, 2 P(X <= min)).
 * b + c == 0 gives 1. */
double stats_mcnemar_exact(long b, long c);

/* The paired accuracy gate: both models answered the same n rows; b rows
 * only the candidate got right, c rows only production.
 *
 *   difference  (b - c) / n, the candidate's accuracy minus production's
 *   interval    the conditional exact interval: given m = b + c
 *               discordant rows, b ~ Binomial(m, t) and the difference
 *               is (m / n)(2 t - 1); t's one-sided Clopper-Pearson
 *               bounds at alpha = 1 - level map to [lo, hi]
 *   p_value     the exact McNemar test (H0: equal accuracy)
 *   min_rows    the rows needed for an equal candidate to pass with
 *               80% power at the observed discordance q = m / n:
 *               ceil(q (z_level + z_0.8)^2 / max_regression^2); 0 when
 *               max_regression is 0 or the models never disagree
 *   pass        lo > -max_regression and n >= min_rows
 *
 * A candidate truly worse by max_regression passes with probability at
 * most 1 - level (the bound is exact given m, hence conservative);
 * tests/unit/test_stats.c measures it by simulation. */
struct stats_paired {
  long n, b, c;
  double difference, lo, hi, p_value;
  double level, max_regression;
  long min_rows;
  int pass;
};

void stats_paired_gate(long n, long b, long c, double level,
                       double max_regression, struct stats_paired *out);

/* ---- drift and label feedback (docs/monitoring.md) --------------------- */

/* P(X > x) for X ~ chi-square with df > 0 degrees of freedom (the
 * regularised upper incomplete gamma Q(df/2, x/2)); x <= 0 gives 1, a bad
 * df or a NaN x gives NaN.  Agrees with scipy.stats.chi2.sf to about
 * 1e-12 relative where the result is above 1e-300. */
double stats_chi2_sf(double x, double df);

/* Pearson's chi-square statistic of the 2 x k table with rows a and b
 * (counts, any non-negative scale), over the columns whose total is
 * non-zero; *df gets (those columns - 1).  What
 * scipy.stats.chi2_contingency(table, correction=False) computes after
 * dropping empty columns.  A row with total 0 or fewer than two columns:
 * 0 (with *df as counted). */
double stats_chi2_2xk(const double *a, const double *b, size_t k, int *df);

/* Holm's step-down adjustment of n p-values: adj[i] is the smallest
 * family-wise level at which hypothesis i is rejected (p sorted
 * ascending, the r-th (0-based) gets max over s <= r of min(1, (n - s)
 * p_s)).  Rejecting every adj[i] < alpha keeps the chance of any false
 * rejection below alpha whatever the dependence between the tests.
 * adj may not alias p. */
void stats_holm(const double *p, size_t n, double *adj);

/* Wilson score bounds of a proportion, k successes of n, each one-sided
 * at level (0.95: P(true < lo) <= 5%), i.e. the two-sided interval at
 * 2 level - 1 (scipy's binomtest(k, n).proportion_ci(2 level - 1,
 * "wilson")).  n <= 0 gives [0, 1]. */
void stats_wilson(long k, long n, double level, double *lo, double *hi);

#endif
