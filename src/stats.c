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

/* ---- chi-square, Holm, Wilson (drift and label feedback) ---------------- */

/* Regularised upper incomplete gamma Q(a, x), a > 0, x >= 0: the power
 * series of P below x < a + 1 (where it converges fast), else the
 * continued fraction of Q evaluated by the modified Lentz method. */
static double gamma_q(double a, double x)
{
  if (x <= 0)
    return 1;
  double lead = a * log(x) - x - lgamma(a);
  if (x < a + 1) {
    double term = 1 / a, sum = term;
    for (int n = 1; n < 10000; n++) {
      term *= x / (a + n);
      sum += term;
      if (fabs(term) < fabs(sum) * 1e-16)
        break;
    }
    double p = sum * exp(lead);
    return p >= 1 ? 0 : 1 - p;
  }
  const double tiny = 1e-300;
  double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
  for (int i = 1; i < 10000; i++) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (fabs(d) < tiny)
      d = tiny;
    c = b + an / c;
    if (fabs(c) < tiny)
      c = tiny;
    d = 1 / d;
    double del = d * c;
    h *= del;
    if (fabs(del - 1) < 1e-16)
      break;
  }
  return exp(lead) * h;
}

double stats_chi2_sf(double x, double df)
{
  if (!(df > 0) || isnan(x))
    return NAN;
  return gamma_q(df / 2, x / 2);
}

double stats_chi2_2xk(const double *a, const double *b, size_t k, int *df)
{
  double ta = 0, tb = 0;
  int cols = 0;
  for (size_t i = 0; i < k; i++) {
    ta += a[i];
    tb += b[i];
    cols += a[i] + b[i] > 0;
  }
  *df = cols > 0 ? cols - 1 : 0;
  if (!(ta > 0) || !(tb > 0) || cols < 2)
    return 0;
  double t = ta + tb, s = 0;
  for (size_t i = 0; i < k; i++) {
    double c = a[i] + b[i];
    if (!(c > 0))
      continue;
    double ea = ta * c / t, eb = tb * c / t;
    s += (a[i] - ea) * (a[i] - ea) / ea + (b[i] - eb) * (b[i] - eb) / eb;
  }
  return s;
}

/* O(n^2) without allocation: n is a count of features, a few dozen. */
static size_t holm_rank(const double *p, size_t n, size_t j)
{
  size_t r = 0;
  for (size_t k = 0; k < n; k++)
    r += p[k] < p[j] || (p[k] == p[j] && k < j);
  return r;
}

void stats_holm(const double *p, size_t n, double *adj)
{
  for (size_t i = 0; i < n; i++) {
    size_t ri = holm_rank(p, n, i);
    double run = 0;
    /* adjusted values never decrease along the order */
    for (size_t j = 0; j < n; j++) {
      size_t rj = holm_rank(p, n, j);
      if (rj > ri)
        continue;
      double v = (double)(n - rj) * p[j];
      if (v > run)
        run = v < 1 ? v : 1;
    }
    adj[i] = run;
  }
}

void stats_wilson(long k, long n, double level, double *lo, double *hi)
{
  if (n <= 0) {
    *lo = 0;
    *hi = 1;
    return;
  }
  double z = stats_norm_quantile(level), z2 = z * z, nn = (double)n;
  double p = (double)k / nn, den = 1 + z2 / nn;
  double mid = (p + z2 / (2 * nn)) / den;
  double half = z / den * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn));
  *lo = mid - half < 0 ? 0 : mid - half;
  *hi = mid + half > 1 ? 1 : mid + half;
}
