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

#endif
