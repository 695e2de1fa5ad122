/* stats.c - binomial tails, Clopper-Pearson, McNemar, the paired gate
 * (see stats.h).
 *
 * Why binomial sums rather than the incomplete beta function: every
 * count here is an integer, and a log-space sum of the pmf is short,
 * exact to rounding and easy to check against scipy; bounds then come
 * from bisection on the monotone tail.
 */
#include "mlopsd/stats.h"

#include <math.h>

double stats_binom_cdf(long k, long n, double p)
{
  if (k < 0)
    return 0;
  if (k >= n)
    return 1;
  if (p <= 0)
    return 1;
  if (p >= 1)
    return 0;
  double lp = log(p), lq = log1p(-p);
  /* log pmf by the recurrence pmf(i+1) = pmf(i) (n-i)/(i+1) p/q, from
   * log pmf(0) = n log q; two sweeps: the largest term, then the sum of
   * the terms relative to it (no underflow of a tail far from 0) */
  double t = (double)n * lq, mx = t;
  for (long i = 0; i < k; i++) {
    t += log((double)(n - i) / (double)(i + 1)) + lp - lq;
    if (t > mx)
      mx = t;
  }
  double s = 0;
  t = (double)n * lq;
  for (long i = 0; i <= k; i++) {
    s += exp(t - mx);
    t += log((double)(n - i) / (double)(i + 1)) + lp - lq;
  }
  double r = exp(mx + log(s));
  return r > 1 ? 1 : r;
}

double stats_norm_quantile(double p)
{
  if (!(p > 0 && p < 1))
    return p <= 0 ? -INFINITY : INFINITY;
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-15; i++) {
    double mid = (lo + hi) / 2;
    if (0.5 * erfc(-mid / sqrt(2.0)) < p)
      lo = mid;
    else
      hi = mid;
  }
  return (lo + hi) / 2;
}

void stats_clopper_pearson(long k, long n, double alpha, double *lo,
                           double *hi)
{
  *lo = 0;
  *hi = 1;
  if (n <= 0)
    return;
  if (k > 0) { /* P(X >= k; t) = alpha, increasing in t */
    double a = 0, b = 1;
    for (int i = 0; i < 100 && b - a > 1e-13; i++) {
      double t = (a + b) / 2;
      if (1 - stats_binom_cdf(k - 1, n, t) < alpha)
        a = t;
      else
        b = t;
    }
    *lo = (a + b) / 2;
  }
  if (k < n) { /* P(X <= k; t) = alpha, decreasing in t */
    double a = 0, b = 1;
    for (int i = 0; i < 100 && b - a > 1e-13; i++) {
      double t = (a + b) / 2;
      if (stats_binom_cdf(k, n, t) > alpha)
        a = t;
      else
        b = t;
    }
    *hi = (a + b) / 2;
  }
}

double stats_mcnemar_exact(long b, long c)
{
  long m = b + c;
  if (m <= 0)
    return 1;
  double p = 2 * stats_binom_cdf(b < c ? b : c, m, 0.5);
  return p > 1 ? 1 : p;
}

void stats_paired_gate(long n, long b, long c, double level,
                       double max_regression, struct stats_paired *o)
{
  if (!(level >= 0.5 && level < 1))
    level = 0.95;
  o->n = n;
  o->b = b;
  o->c = c;
  o->level = level;
  o->max_regression = max_regression;
  o->difference = n > 0 ? (double)(b - c) / (double)n : NAN;
  o->p_value = stats_mcnemar_exact(b, c);
  long m = b + c;
  if (n <= 0) {
    o->lo = o->hi = NAN;
    o->min_rows = 0;
    o->pass = 0;
    return;
  }
  double tl, th;
  stats_clopper_pearson(b, m, 1 - level, &tl, &th);
  double q = (double)m / (double)n;
  o->lo = m > 0 ? q * (2 * tl - 1) : 0;
  o->hi = m > 0 ? q * (2 * th - 1) : 0;
  o->min_rows = 0;
  if (max_regression > 0 && m > 0) {
    double z = stats_norm_quantile(level) + stats_norm_quantile(0.8);
    o->min_rows = (long)ceil(q * z * z / (max_regression * max_regression));
  }
  o->pass = o->lo > -max_regression && n >= o->min_rows;
}
