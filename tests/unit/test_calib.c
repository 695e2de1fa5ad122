/* test_calib.c - temperature scaling, ECE and Brier (src/calib.c) against
 * numpy/scipy (python3-numpy, python3-scipy from Debian, run as
 * /usr/bin/python3 at test time) on overconfident synthetic probabilities:
 * the tempered probabilities (softmax(log p / T)), the fitted temperature
 * (scipy.optimize.minimize_scalar on the same NLL), ECE over 15
 * equal-width bins and the multi-class Brier score, before and after.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/calib.h"

#ifndef CHECK_NEAR
#define CHECK_NEAR(a, b, eps) CHECK(fabs((double)(a) - (double)(b)) <= (eps))
#endif

#define N 600
#define K 3

static float P[N * K], Y[N];

static uint64_t sm(uint64_t *s)
{
  uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static double u01(uint64_t *s) { return (double)(sm(s) >> 11) * 0x1.0p-53; }

/* Labels drawn from softmax(z), the model reports softmax(2 z): about
 * twice too confident, as boosted trees often are. */
static void make_data(void)
{
  uint64_t s = 7;
  for (int i = 0; i < N; i++) {
    double z[K], q[K], r[K], sq = 0, sr = 0;
    for (int j = 0; j < K; j++) {
      z[j] = 2 * u01(&s) - 1;
      q[j] = exp(z[j]);
      r[j] = exp(2 * z[j]);
      sq += q[j];
      sr += r[j];
    }
    double u = u01(&s) * sq, acc = 0;
    int lab = K - 1;
    for (int j = 0; j < K; j++) {
      acc += q[j];
      if (u < acc) {
        lab = j;
        break;
      }
    }
    Y[i] = (float)lab;
    for (int j = 0; j < K; j++)
      P[i * K + j] = (float)(r[j] / sr);
  }
}

TEST(against_numpy_scipy)
{
  make_data();
  char path[] = "/tmp/test_calib_XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE *f = fdopen(fd, "w");
  REQUIRE(f);
  for (int i = 0; i < N; i++)
    fprintf(f, "%.9g %.9g %.9g %d\n", (double)P[i * K], (double)P[i * K + 1],
            (double)P[i * K + 2], (int)Y[i]);
  fclose(f);
  if (access("/usr/bin/python3", X_OK) != 0) {
    unlink(path);
    fprintf(stderr, "  /usr/bin/python3 missing\n");
    CHECK(0);
    return;
  }
  char cmd[4096];
  snprintf(cmd, sizeof(cmd),
           "/usr/bin/python3 -c '\n"
           "import numpy as np\n"
           "from scipy.optimize import minimize_scalar\n"
           "d = np.loadtxt(\"%s\")\n"
           "p = d[:, :3].astype(np.float32).astype(np.float64)\n"
           "y = d[:, 3].astype(int)\n"
           "def temper(p, t):\n"
           "    l = np.log(p) / t\n"
           "    l -= l.max(axis=1, keepdims=True)\n"
           "    e = np.exp(l)\n"
           "    return e / e.sum(axis=1, keepdims=True)\n"
           "def nll(u):\n"
           "    q = np.clip(temper(p, np.exp(u)), 1e-15, 1 - 1e-15)\n"
           "    return -np.mean(np.log(q[np.arange(len(y)), y]))\n"
           "def stats(q):\n"
           "    top = q.max(axis=1); pred = q.argmax(axis=1)\n"
           "    b = np.clip(np.ceil(top * 15).astype(int) - 1, 0, 14)\n"
           "    ece = 0.0\n"
           "    for k in range(15):\n"
           "        m = b == k\n"
           "        if m.any():\n"
           "            ece += m.sum() / len(y) * abs((pred[m] == y[m]).mean()"
           " - top[m].mean())\n"
           "    oh = np.eye(3)[y]\n"
           "    return ece, np.mean(np.sum((q - oh) ** 2, axis=1))\n"
           "r = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20)), "
           "method=\"bounded\", options={\"xatol\": 1e-10})\n"
           "t = float(np.exp(r.x))\n"
           "e0, b0 = stats(p); e1, b1 = stats(temper(p, t))\n"
           "print(repr(t), repr(nll(r.x)), repr(e0), repr(b0), repr(e1), "
           "repr(b1), repr(float(temper(p, 1.7)[5, 1])))\n"
           "' 2>&1",
           path);
  FILE *pp = popen(cmd, "r");
  REQUIRE(pp);
  char line[1024] = "";
  double w[7];
  int got = fgets(line, sizeof(line), pp) &&
            sscanf(line, "%lf %lf %lf %lf %lf %lf %lf", &w[0], &w[1], &w[2],
                   &w[3], &w[4], &w[5], &w[6]) == 7;
  pclose(pp);
  unlink(path);
  if (!got)
    fprintf(stderr, "  python: %s\n", line);
  REQUIRE(got);
  /* read back what python read: the printed %.9g floats are exact */
  double t = calib_fit_temperature(P, Y, N, K);
  fprintf(stderr, "  temperature %.6f (scipy %.6f)\n", t, w[0]);
  CHECK_NEAR(t, w[0], 1e-4);
  CHECK_NEAR(calib_nll(P, Y, N, K, t), w[1], 1e-8);
  CHECK(t > 1.5); /* the data are twice too confident */
  double ece, brier;
  calib_stats(P, Y, N, K, &ece, &brier, NULL);
  CHECK_NEAR(ece, w[2], 1e-9);
  CHECK_NEAR(brier, w[3], 1e-6);
  float q[N * K];
  memcpy(q, P, sizeof(q));
  calib_apply(q, N, K, t);
  struct calib_bin bins[CALIB_BINS];
  calib_stats(q, Y, N, K, &ece, &brier, bins);
  fprintf(stderr, "  ECE %.4f -> %.4f, Brier %.4f -> %.4f\n", w[2], w[4],
          w[3], w[5]);
  CHECK_NEAR(ece, w[4], 1e-5); /* float32 probabilities after tempering */
  CHECK_NEAR(brier, w[5], 1e-5);
  CHECK(w[4] < w[2]);
  size_t total = 0;
  for (int b = 0; b < CALIB_BINS; b++)
    total += bins[b].count;
  CHECK_EQ_INT(total, N);
  memcpy(q, P, sizeof(q));
  calib_apply(q, N, K, 1.7);
  CHECK_NEAR(q[5 * K + 1], w[6], 1e-6);
  /* the class never changes */
  for (int i = 0; i < N; i++) {
    int a = 0, b = 0;
    for (int j = 1; j < K; j++) {
      a = P[i * K + j] > P[i * K + a] ? j : a;
      b = q[i * K + j] > q[i * K + b] ? j : b;
    }
    CHECK(a == b);
  }
}

TEST(binary_and_identity)
{
  float p[4] = {0.9f, 0.2f, 0.5f, 0.999f}, q[4];
  memcpy(q, p, sizeof(q));
  calib_apply(q, 4, 1, 1.0);
  CHECK(memcmp(p, q, sizeof(p)) == 0);
  calib_apply(q, 4, 1, 2.0);
  /* sigmoid(logit(p) / 2) */
  for (int i = 0; i < 4; i++) {
    double l = log(p[i] / (1 - (double)p[i])) / 2;
    CHECK_NEAR(q[i], 1 / (1 + exp(-l)), 1e-6);
  }
  CHECK_NEAR(q[2], 0.5, 1e-7);
}

int main(void)
{
  RUN(against_numpy_scipy);
  RUN(binary_and_identity);
  return check_done();
}
