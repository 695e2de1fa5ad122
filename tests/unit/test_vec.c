/* test_vec.c - growing arrays: push and reserve keep every element, grow
 * geometrically, refuse sizes that overflow size_t and leave the array
 * untouched when they fail. */
#include "check.h"
#include "mlopsd/vec.h"

#include <stdint.h>

struct pair {
  int a;
  double b;
};

TEST(push_keeps_elements)
{
  int *v = NULL;
  size_t n = 0, cap = 0;
  for (int i = 0; i < 10000; i++)
    REQUIRE(VEC_PUSH(v, n, cap, i * 3) == 0);
  CHECK_EQ_INT(n, 10000);
  CHECK(cap >= n);
  int ok = 1;
  for (int i = 0; i < 10000; i++)
    ok &= v[i] == i * 3;
  CHECK(ok);
  free(v);
  /* structs, and the expression v is evaluated as written */
  struct pair *p = NULL;
  size_t np = 0, pcap = 0;
  CHECK_EQ_INT(VEC_PUSH(p, np, pcap, ((struct pair){7, 0.5})), 0);
  CHECK_EQ_INT(np, 1);
  CHECK(p && p[0].a == 7 && p[0].b == 0.5);
  free(p);
}

TEST(growth_is_geometric)
{
  char *v = NULL;
  size_t cap = 0, grows = 0, last = 0;
  for (size_t need = 1; need <= 1000000; need++) {
    REQUIRE(VEC_RESERVE(v, cap, need) == 0);
    if (cap != last) {
      grows++;
      last = cap;
    }
  }
  CHECK(cap >= 1000000);
  CHECK(grows < 20); /* doubling from 256 bytes: 12 steps */
  free(v);
  /* the first block: at least 16 elements, at least 256 bytes */
  struct pair *p = NULL;
  size_t pcap = 0;
  REQUIRE(VEC_RESERVE(p, pcap, 1) == 0);
  CHECK_EQ_INT(pcap, 16);
  free(p);
  v = NULL;
  cap = 0;
  REQUIRE(VEC_RESERVE(v, cap, 1) == 0);
  CHECK_EQ_INT(cap, 256);
  /* a reserve within the capacity does nothing */
  char *same = v;
  CHECK_EQ_INT(VEC_RESERVE(v, cap, 200), 0);
  CHECK(v == same);
  CHECK_EQ_INT(cap, 256);
  /* a large jump is met at once */
  CHECK_EQ_INT(VEC_RESERVE(v, cap, 100000), 0);
  CHECK(cap >= 100000);
  free(v);
}

TEST(overflow_fails_cleanly)
{
  struct pair *p = NULL;
  size_t cap = 0;
  REQUIRE(VEC_RESERVE(p, cap, 4) == 0);
  p[0].a = 42;
  struct pair *before = p;
  size_t cap_before = cap;
  /* need * elem wraps around size_t: refused, array unchanged */
  CHECK_EQ_INT(VEC_RESERVE(p, cap, SIZE_MAX / sizeof(*p) + 2), -1);
  CHECK(p == before);
  CHECK_EQ_INT(cap, cap_before);
  CHECK_EQ_INT(p[0].a, 42);
  CHECK_EQ_INT(VEC_RESERVE(p, cap, SIZE_MAX), -1);
  CHECK(p == before);
#ifndef __SANITIZE_ADDRESS__ /* ASan aborts on such a request */
  /* more than memory can hold: realloc fails, array unchanged */
  CHECK_EQ_INT(VEC_RESERVE(p, cap, SIZE_MAX / sizeof(*p) / 2), -1);
  CHECK(p == before);
  CHECK_EQ_INT(p[0].a, 42);
#endif
  free(p);
}

int main(void)
{
  RUN(push_keeps_elements);
  RUN(growth_is_geometric);
  RUN(overflow_fails_cleanly);
  return check_done();
}
