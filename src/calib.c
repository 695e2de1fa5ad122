/* calib.c - temperature scaling, ECE and Brier (see calib.h).
 *
 * Why temperature scaling: one parameter cannot over-fit the few hundred
 * gate rows, it keeps every prediction's class, and it fixes the usual
 * fault of boosted trees on this data (confidence above accuracy).
 */
#include "mlopsd/calib.h"

#include <math.h>
#include <stdlib.h>

#define CLIP 1e-15

static double clip(double x)
{
  return x < CLIP ? CLIP : x > 1 - CLIP ? 1 - CLIP : x;
}

/* Tempered probability of class `want` (and the top class) of one row. */
static void temper_row(const float *p, size_t k, double inv_t, double *out)
{
  if (k == 1) {
    double a = pow(clip(p[0]), inv_t), b = pow(clip(1 - p[0]), inv_t);
    out[0] = b / (a + b);
    out[1] = a / (a + b);
    return;
  }
  /* p^(1/t) relative to the largest p, so no underflow at small t */
  double mx = 0, s = 0;
  for (size_t j = 0; j < k; j++)
    if (p[j] > mx)
      mx = p[j];
  if (!(mx > 0))
    mx = 1;
  for (size_t j = 0; j < k; j++) {
    out[j] = p[j] > 0 ? exp(inv_t * log(p[j] / mx)) : 0;
    s += out[j];
  }
  for (size_t j = 0; j < k; j++)
    out[j] /= s;
}

void calib_apply(float *p, size_t n, size_t k, double t)
{
  if (t == 1 || !(t > 0) || !k)
    return;
  double buf[256], *q = k + 1 <= 256 ? buf : malloc((k + 1) * sizeof(*q));
  if (!q)
    return;
  for (size_t i = 0; i < n; i++) {
    float *r = p + i * k;
    temper_row(r, k, 1 / t, q);
    if (k == 1)
      r[0] = (float)q[1];
    else
      for (size_t j = 0; j < k; j++)
        r[j] = (float)q[j];
  }
  if (q != buf)
    free(q);
}

double calib_nll(const float *p, const float *y, size_t n, size_t k,
                 double t)
{
  size_t w = k == 1 ? 2 : k;
  double buf[256], *q = w <= 256 ? buf : malloc(w * sizeof(*q));
  if (!q || !n) {
    if (q && q != buf)
      free(q);
    return NAN;
  }
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    temper_row(p + i * k, k, 1 / t, q);
    size_t c = (size_t)y[i];
    s -= log(clip(c < w ? q[c] : 0));
  }
  if (q != buf)
    free(q);
  return s / (double)n;
}

double calib_fit_temperature(const float *p, const float *y, size_t n,
                             size_t k)
{
  if (!n)
    return 1;
  /* golden section on u = log t */
  const double g = (sqrt(5.0) - 1) / 2;
  double a = log(CALIB_T_MIN), b = log(CALIB_T_MAX);
  double c = b - g * (b - a), d = a + g * (b - a);
  double fc = calib_nll(p, y, n, k, exp(c)), fd = calib_nll(p, y, n, k,
                                                            exp(d));
  for (int i = 0; i < 100 && b - a > 1e-9; i++) {
    if (fc < fd) {
      b = d;
      d = c;
      fd = fc;
      c = b - g * (b - a);
      fc = calib_nll(p, y, n, k, exp(c));
    } else {
      a = c;
      c = d;
      fc = fd;
      d = a + g * (b - a);
      fd = calib_nll(p, y, n, k, exp(d));
    }
  }
  return exp((a + b) / 2);
}

void calib_stats(const float *p, const float *y, size_t n, size_t k,
                 double *ece, double *brier, struct calib_bin *bins)
{
  double conf[CALIB_BINS] = {0}, acc[CALIB_BINS] = {0};
  size_t cnt[CALIB_BINS] = {0};
  double br = 0;
  for (size_t i = 0; i < n; i++) {
    const float *r = p + i * k;
    size_t lab = (size_t)y[i], top;
    double pt;
    if (k == 1) {
      top = r[0] > 0.5f;
      pt = top ? r[0] : 1 - (double)r[0];
      double p1 = r[0], t1 = lab == 1;
      br += 2 * (p1 - t1) * (p1 - t1);
    } else {
      top = 0;
      for (size_t j = 1; j < k; j++)
        if (r[j] > r[top])
          top = j;
      pt = r[top];
      for (size_t j = 0; j < k; j++) {
        double d = (double)r[j] - (j == lab);
        br += d * d;
      }
    }
    int b = (int)ceil(pt * CALIB_BINS) - 1;
    if (b < 0)
      b = 0;
    if (b >= CALIB_BINS)
      b = CALIB_BINS - 1;
    conf[b] += pt;
    acc[b] += top == lab;
    cnt[b]++;
  }
  double e = 0;
  for (int b = 0; b < CALIB_BINS; b++) {
    double cb = cnt[b] ? conf[b] / (double)cnt[b] : 0;
    double ab = cnt[b] ? acc[b] / (double)cnt[b] : 0;
    if (cnt[b])
      e += (double)cnt[b] / (double)n * fabs(ab - cb);
    if (bins)
      bins[b] = (struct calib_bin){cb, ab, cnt[b]};
  }
  *ece = n ? e : NAN;
  *brier = n ? br / (double)n : NAN;
}
