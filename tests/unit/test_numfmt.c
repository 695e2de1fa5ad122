/* test_numfmt.c - numfmt_i64 and numfmt_g9 write exactly what snprintf's
 * "%lld" and "%.9g" write: the edges (limits, powers of ten and their
 * neighbours, rounding ties, the ends of the fast range and beyond) and
 * millions of random values in the forms the answers carry (floats,
 * 1 - p of a float, any double). */
#include "check.h"
#include "mlopsd/numfmt.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint64_t next_u64(void)
{
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static int bad_g9;
static void same_g9(double v)
{
  char want[64], got[NUMFMT_CAP + 8];
  snprintf(want, sizeof(want), "%.9g", v);
  memset(got, 'x', sizeof(got));
  size_t n = numfmt_g9(got, v);
  if (n != strlen(want) || strcmp(got, want) != 0) {
    if (bad_g9++ < 10)
      fprintf(stderr, "  %.17g: numfmt_g9 '%s' (%zu), snprintf '%s'\n", v,
              got, n, want);
  }
}

static int bad_i64;
static void same_i64(int64_t v)
{
  char want[64], got[NUMFMT_CAP + 8];
  snprintf(want, sizeof(want), "%lld", (long long)v);
  size_t n = numfmt_i64(got, v);
  if (n != strlen(want) || strcmp(got, want) != 0) {
    if (bad_i64++ < 10)
      fprintf(stderr, "  %lld: numfmt_i64 '%s'\n", (long long)v, got);
  }
}

TEST(i64_edges_and_random)
{
  bad_i64 = 0;
  const int64_t edge[] = {0, 1, -1, 9, 10, -10, 99, 100, 4096,
                          INT64_MAX, INT64_MIN, INT64_MAX - 1,
                          INT64_MIN + 1, 9007199254740992LL,
                          -9007199254740993LL, 1000000000000000000LL};
  for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
    same_i64(edge[i]);
  for (int i = 0; i < 1000000; i++) {
    uint64_t r = next_u64();
    same_i64((int64_t)(r >> (r & 63)) * ((r & 64) ? -1 : 1));
  }
  CHECK_EQ_INT(bad_i64, 0);
}

TEST(g9_edges)
{
  bad_g9 = 0;
  /* the ends of the fast range and the fallback beyond them */
  const double edge[] = {0.0, -0.0, 1e-4, 1e8, 9.99999999e7, 99999999.5,
                         99999999.49999999, 1e-5, 1e300, -1e300, DBL_MIN,
                         DBL_MAX, 5e-324, NAN, INFINITY, -INFINITY, 1.0,
                         -1.0, 0.5, 0.1, 0.2, 0.3, 2.0 / 3.0, 1.0 / 3.0,
                         0.999999999, 0.9999999995, 0.99999999949999,
                         0.0001, 0.00012345678949999, 123.456,
                         1234567.891, 0.000999999999, 9.9999999949e-5};
  for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++) {
    same_g9(edge[i]);
    same_g9(-edge[i]);
  }
  /* powers of ten and their neighbours, every digit position */
  for (int e = -6; e <= 9; e++) {
    double p = pow(10.0, e);
    double v = p;
    for (int k = 0; k < 40; k++)
      v = nextafter(v, 0.0);
    for (int k = 0; k < 80; k++) {
      same_g9(v);
      v = nextafter(v, INFINITY);
    }
    for (int d = 1; d < 10; d++) {
      same_g9(d * p);
      same_g9(nextafter(d * p, 0.0));
      same_g9(nextafter(d * p, INFINITY));
    }
  }
  /* exact ties at the ninth digit (binary fractions): halves round to
   * even, both ways */
  for (int i = 0; i < 200000; i++) {
    uint64_t r = next_u64();
    double base = (double)(r % 100000000ULL); /* up to 8 digits */
    same_g9(base + 0.5);
    same_g9(base / 10 + 0.25);
    same_g9(base / 100 + 0.125);
    same_g9((base + 0.5) / 1024.0);
    same_g9(-(base + 0.5));
  }
  CHECK_EQ_INT(bad_g9, 0);
}

TEST(g9_random)
{
  bad_g9 = 0;
  for (int i = 0; i < 2000000; i++) {
    uint64_t r = next_u64();
    float f;
    uint32_t fb = (uint32_t)r;
    memcpy(&f, &fb, sizeof(f));
    same_g9(f); /* any float: confidences of multi-class models */
    /* probabilities of a float and their complement (binary models) */
    float p = (float)((r >> 32) & 0xffffff) / 16777216.0f;
    same_g9(p);
    same_g9(1.0 - p);
    /* any double with an exponent around the fast range */
    uint64_t db = (next_u64() & 0x800FFFFFFFFFFFFFULL) |
                  ((uint64_t)(1023 - 20 + (r % 50)) << 52);
    double d;
    memcpy(&d, &db, sizeof(d));
    same_g9(d);
  }
  CHECK_EQ_INT(bad_g9, 0);
}

int main(void)
{
  RUN(i64_edges_and_random);
  RUN(g9_edges);
  RUN(g9_random);
  return check_done();
}
