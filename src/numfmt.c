/* numfmt.c - "%lld" and "%.9g" without printf (see numfmt.h).
 *
 * %.9g for 1e-4 <= |v| < 1e8: |v| is M / 2^sh with a 53-bit integer M
 * and 26 <= sh <= 66 in that range, so N = M * 10^p for p = 8 - X (X the
 * decimal exponent, -4..7, so p <= 12) fits in 128 bits (M < 2^53,
 * 10^12 < 2^40) and q = N >> sh is the 9-digit integer part of |v| * 10^p;
 * the bits shifted out decide the rounding exactly (above half up, half
 * to even).  X is found by trying: q must have exactly 9 digits.  Within
 * this range %g always uses the fixed form (-4 <= X < 9, also after a
 * round up to 10^9), with trailing zeros and a bare point dropped.
 */
#include "mlopsd/numfmt.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

size_t numfmt_i64(char *out, int64_t v)
{
  char tmp[24];
  size_t n = 0, len = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0)
    out[len++] = '-';
  while (n)
    out[len++] = tmp[--n];
  out[len] = '\0';
  return len;
}

static const uint64_t pow10_u64[13] = {
    1ULL,          10ULL,          100ULL,          1000ULL,
    10000ULL,      100000ULL,      1000000ULL,      10000000ULL,
    100000000ULL,  1000000000ULL,  10000000000ULL,  100000000000ULL,
    1000000000000ULL};

size_t numfmt_g9(char *out, double v)
{
  double a = fabs(v);
  if (!(a >= 1e-4 && a < 1e8)) { /* also NaN */
    int k = snprintf(out, NUMFMT_CAP, "%.9g", v);
    return k > 0 && k < NUMFMT_CAP ? (size_t)k : 0;
  }
  /* a = m / 2^sh with the 53-bit significand m (a is normal here) */
  uint64_t u;
  memcpy(&u, &a, sizeof(u));
  int be = (int)((u >> 52) & 0x7ff);
  uint64_t m = (u & ((UINT64_C(1) << 52) - 1)) | (UINT64_C(1) << 52);
  int sh = 1075 - be; /* 26 <= sh <= 66 */
  /* X, at most one too low (2^(be-1023) <= a; 78913 / 2^18 < log10(2)),
   * corrected by the loop below */
  int x = ((be - 1023) * 78913) >> 18;
  if (x < -4)
    x = -4;
  if (x > 7)
    x = 7;
  unsigned __int128 n, rem, half;
  uint64_t q;
  for (;;) {
    n = (unsigned __int128)m * pow10_u64[8 - x];
    q = (uint64_t)(n >> sh);
    if (q < 100000000ULL && x > -4) {
      x--;
      continue;
    }
    if (q >= 1000000000ULL && x < 7) {
      x++;
      continue;
    }
    break;
  }
  rem = n & ((((unsigned __int128)1) << sh) - 1);
  half = ((unsigned __int128)1) << (sh - 1);
  if (rem > half || (rem == half && (q & 1)))
    q++;
  if (q == 1000000000ULL) {
    q = 100000000ULL;
    x++;
  }
  char d[9];
  for (int i = 8; i >= 0; i--) {
    d[i] = (char)('0' + q % 10);
    q /= 10;
  }
  int nd = 9; /* significant digits left after dropping trailing zeros */
  while (nd > 1 && d[nd - 1] == '0')
    nd--;
  size_t len = 0;
  if (v < 0)
    out[len++] = '-';
  if (x >= 0) {
    int ip = x + 1; /* digits before the point */
    for (int i = 0; i < ip; i++)
      out[len++] = i < nd ? d[i] : '0';
    if (nd > ip) {
      out[len++] = '.';
      for (int i = ip; i < nd; i++)
        out[len++] = d[i];
    }
  } else {
    out[len++] = '0';
    out[len++] = '.';
    for (int i = 0; i < -x - 1; i++)
      out[len++] = '0';
    for (int i = 0; i < nd; i++)
      out[len++] = d[i];
  }
  out[len] = '\0';
  return len;
}
