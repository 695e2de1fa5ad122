/* test_predict_tree.c - reqjson_scan_parse builds exactly the tree cJSON
 * builds for every body reqjson_scan accepts: node types, member names and
 * order (repeated names kept), decoded strings byte for byte, valuedouble
 * bit for bit, valueint, the links (head->prev is the last sibling).
 * Compared on every request of the sample data (single and as batches),
 * on strings with every kind of escape, on numbers at and beyond the edges
 * of the fast conversion, on a million random numbers, and with an
 * allocator that fails at every possible point (the partial tree must
 * free cleanly: run under ASan).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mlopsd/reqjson.h"

static struct reqjson_span spans[8192];

static int accepted(const char *s, size_t n)
{
  struct reqjson_scan sc;
  memset(&sc, 0, sizeof(sc));
  sc.items = spans;
  sc.items_cap = sizeof(spans) / sizeof(spans[0]);
  return reqjson_scan(s, n, &sc) == 0;
}

static char why[256];

/* 1 when a and b are the same tree; else 0 and a reason in why. */
static int same(const cJSON *a, const cJSON *b, const char *path)
{
  if (a->type != b->type) {
    snprintf(why, sizeof(why), "%s: type %d vs %d", path, a->type, b->type);
    return 0;
  }
  if (!a->string != !b->string ||
      (a->string && strcmp(a->string, b->string) != 0)) {
    snprintf(why, sizeof(why), "%s: member name", path);
    return 0;
  }
  if (!a->valuestring != !b->valuestring ||
      (a->valuestring && strcmp(a->valuestring, b->valuestring) != 0)) {
    snprintf(why, sizeof(why), "%s: string '%.40s' vs '%.40s'", path,
             a->valuestring ? a->valuestring : "(null)",
             b->valuestring ? b->valuestring : "(null)");
    return 0;
  }
  if (memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) != 0 ||
      a->valueint != b->valueint) {
    snprintf(why, sizeof(why), "%s: number %.17g/%d vs %.17g/%d", path,
             a->valuedouble, a->valueint, b->valuedouble, b->valueint);
    return 0;
  }
  const cJSON *x = a->child, *y = b->child;
  int k = 0;
  for (; x && y; x = x->next, y = y->next, k++) {
    char sub[200];
    snprintf(sub, sizeof(sub), "%.150s/%d", path, k);
    if (!same(x, y, sub))
      return 0;
    if ((x->next && x->next->prev != x) || (y->next && y->next->prev != y)) {
      snprintf(why, sizeof(why), "%s: prev link", sub);
      return 0;
    }
  }
  if (x || y) {
    snprintf(why, sizeof(why), "%s: child count", path);
    return 0;
  }
  if (a->child && b->child) {
    const cJSON *la = a->child, *lb = b->child;
    while (la->next)
      la = la->next;
    while (lb->next)
      lb = lb->next;
    if ((a->child->prev == la) != (b->child->prev == lb)) {
      snprintf(why, sizeof(why), "%s: head->prev", path);
      return 0;
    }
  }
  return 1;
}

/* malloc that remembers what it gave (a tree partly in a bump region
 * cannot go to cJSON_Delete) */
static void *spill[1 << 20];
static size_t n_spill;
static void *spill_alloc(size_t n)
{
  if (n_spill >= sizeof(spill) / sizeof(spill[0]))
    return NULL;
  return spill[n_spill++] = malloc(n);
}

/* Parse s both ways; 1 when the trees are the same. */
static int both(const char *s, size_t n)
{
  cJSON *ref = cJSON_ParseWithLengthOpts(s, n, NULL, 0), *t = NULL;
  /* the one-pass check and parse: from malloc, and from a bump region of
   * 1 KiB (the rest, if any, from a tracking malloc) */
  struct reqjson_scan sc;
  memset(&sc, 0, sizeof(sc));
  sc.items = spans;
  sc.items_cap = sizeof(spans) / sizeof(spans[0]);
  t = NULL;
  int ok2 = ref && reqjson_scan_parse(s, n, &sc, malloc, &t) == 0 && t &&
            same(t, ref, "");
  if (!ok2)
    fprintf(stderr, "  reqjson_scan_parse differs on %.80s: %s\n", s, why);
  cJSON_Delete(t);
  static _Alignas(16) char region[1024];
  size_t used = 0;
  memset(&sc, 0, sizeof(sc));
  sc.bump = region;
  sc.bump_cap = sizeof(region);
  sc.bump_used = &used;
  n_spill = 0;
  t = NULL;
  int ok3 = ref && reqjson_scan_parse(s, n, &sc, spill_alloc, &t) == 0 &&
            t && same(t, ref, "") && used <= sizeof(region) && used % 16 == 0;
  if (!ok3)
    fprintf(stderr, "  reqjson_scan_parse (bump) differs on %.80s: %s\n", s,
            why);
  for (size_t k = 0; k < n_spill; k++)
    free(spill[k]);
  cJSON_Delete(ref);
  return ok2 && ok3;
}

static int both_str(const char *s)
{
  if (!accepted(s, strlen(s))) {
    fprintf(stderr, "  scan refused %s\n", s);
    return 0;
  }
  return both(s, strlen(s));
}

static char *data_path(void)
{
  static char p[1024];
  const char *sh = getenv("MLOPSD_SHARED");
  snprintf(p, sizeof(p), "%s/data/credit/predict_requests.jsonl",
           sh ? sh : "../shared");
  return p;
}

TEST(sample_requests)
{
  FILE *f = fopen(data_path(), "r");
  REQUIRE(f != NULL);
  static char line[16384];
  static char batch[1 << 20];
  size_t blen = 0, items = 0, lines = 0, bad = 0;
  memcpy(batch, "{\"data\": [", 10);
  blen = 10;
  while (fgets(line, sizeof(line), f)) {
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (!n)
      continue;
    lines++;
    CHECK(accepted(line, n));
    bad += !both(line, n);
    /* the item, as the next element of a batch */
    const char *it = strstr(line, "{\"customer_id\"");
    const char *end = strrchr(line, '}');
    if (it && end && blen + (size_t)(end - it) + 16 < sizeof(batch)) {
      if (items++)
        batch[blen++] = ',';
      memcpy(batch + blen, it, (size_t)(end - it));
      blen += (size_t)(end - it);
    }
  }
  fclose(f);
  memcpy(batch + blen, "]}", 3);
  blen += 2;
  CHECK(lines > 1000);
  CHECK_EQ_INT(bad, 0);
  CHECK(accepted(batch, blen));
  CHECK(both(batch, blen));
}

TEST(strings_and_shapes)
{
  static const char *const cases[] = {
      "{}",
      "[]",
      "  {\"data\" : { } }  ",
      "{\"data\":[{},[],{\"a\":[]}]}",
      "{\"a\":1,\"a\":2,\"a\":{\"a\":null}}",
      "[true,false,null,\"\",0]",
      "\"plain\"",
      "{\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
      "{\"u\":\"\\u0041\\u00e9\\u07ff\\u0800\\uffff\\u20ac\"}",
      "{\"pair\":\"\\ud83d\\ude00 and \\uD834\\uDD1E\"}",
      "{\"raw\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}",
      "{\"k\\u00e9y\":\"v\",\"\\n\":1}",
      "{\"mixed\":\"a\\\\u0041\\u0041\\\\\"}",
      "[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]",
      "{\"data\":{\"customer_id\":\"C-1\",\"age\":18,\"occupation\":\"Lawyer\"}}",
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    CHECK(both_str(cases[i]));
}

TEST(numbers)
{
  static const char *const nums[] = {
      "0", "-0", "0.0", "-0.0", "0e0", "-0e-5", "0.000", "1", "-1", "7.0",
      "30625.94", "2706.1616666666664", "0.1", "0.2", "0.3",
      "0.30000000000000004", "1e22", "1e23", "1e-22", "1e-23", "9e15",
      "123456789012345", "1234567890123456", "12345678901234567",
      "123456789012345678901234567890", "9007199254740991",
      "9007199254740992", "9007199254740993", "2147483647", "2147483648",
      "-2147483648", "-2147483649", "2147483647.5", "-2147483648.5",
      "1.7976931348623157e308", "1.7976931348623159e308", "1e308", "1e309",
      "1e400", "-1e400", "4.9e-324", "5e-324", "2e-324", "1e-400",
      "2.2250738585072011e-308", "2.2250738585072014e-308", "1E5", "1e+5",
      "1.5E-3", "100000000000000000000000", "0.0000000000000000000001",
      "0.000000000000000000000123456789012345", "123.456e-10",
      "99999999999999.99", "999999999999999", "9999999999999999",
      "1.000000000000000000001", "3.141592653589793238462643383279",
      "0.00000000000000000000000000000000000000000000000000000000001",
      "1e-10000", "1e10000", "-5e-1", "6.02214076e23", "1.602176634e-19",
      /* 16 digits around 2^53 (the fast path's edge) and +-22 */
      "9007199254740992e-22", "9007199254740993e-22", "9007199254740992e22",
      "9007199254740993e22", "0.9007199254740992", "0.9007199254740993",
      "1234567890123456e-22", "1234567890123456e-23", "8999999999999999e22",
      "-9007199254740991.5", "1000000000000001", "0.0000000000000001234567890123456",
      /* 17 to 19 digits (exact_big): exact ties between two doubles
       * round to even, both ways; ends of its exponent range */
      "9007199254740993", "9007199254740995", "-9007199254740993",
      "4503599627370496.5", "4503599627370497.5", "45035996273704965e-1",
      "18014398509481986", "18014398509481990", "18014398509481994",
      "9223372036854775807", "18446744073709551615", "18446744073709551616",
      "9999999999999999999", "99999999999999999999", "9999999999999999999e19",
      "9999999999999999999e20", "1844674407370955161e-22",
      "18446744073709551615e-22", "18446744073709551615e-23",
      "2706.1616666666664", "42.941090422469365", "400.36080052211616",
      "0.30000000000000004441", "1.0000000000000002220446",
      "1.00000000000000011102230246251565", "2.2250738585072012e-20",
      /* 2^-22 of a unit in the last place below and above a midpoint
       * between two doubles: the remainder (sticky bit) decides */
      "83886080003736699e-10", "83886080006028926e-10"};
  char body[128];
  for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
    snprintf(body, sizeof(body), "[%s]", nums[i]);
    CHECK(both_str(body));
  }
}

TEST(random_numbers)
{
  /* a million random decimals in the shapes requests use and beyond */
  static char body[1 << 16];
  uint64_t x = 88172645463325252ull;
  size_t bad = 0, total = 0;
  for (int round = 0; round < 400; round++) {
    size_t blen = 0;
    body[blen++] = '[';
    for (int k = 0; k < 2500; k++) {
      char num[80];
      int n = 0;
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      int intd = (int)(x % 12), fracd = (int)((x >> 8) % 19);
      int exp = (int)((x >> 16) % 5) == 0 ? (int)((x >> 24) % 61) - 30 : 0;
      if ((x >> 40) & 1)
        num[n++] = '-';
      uint64_t y = x * 2862933555777941757ull + 3037000493ull;
      if (intd == 0) {
        num[n++] = '0';
      } else {
        num[n++] = (char)('1' + (y % 9));
        for (int i = 1; i < intd; i++, y /= 10)
          num[n++] = (char)('0' + (y % 10));
      }
      if (fracd) {
        num[n++] = '.';
        for (int i = 0; i < fracd; i++) {
          y = y * 6364136223846793005ull + 1442695040888963407ull;
          num[n++] = (char)('0' + ((y >> 33) % 10));
        }
      }
      if (exp)
        n += snprintf(num + n, sizeof(num) - (size_t)n, "e%d", exp);
      if (k)
        body[blen++] = ',';
      memcpy(body + blen, num, (size_t)n);
      blen += (size_t)n;
      total++;
    }
    body[blen++] = ']';
    body[blen] = '\0';
    if (!accepted(body, blen) || !both(body, blen))
      bad++;
  }
  CHECK(total == 1000000);
  CHECK_EQ_INT(bad, 0);
}

/* An allocator that fails after `budget` calls. */
static long budget;
static void *failing_alloc(size_t n)
{
  if (budget-- <= 0)
    return NULL;
  return malloc(n);
}

/* the allocations a tree takes: each node, each member name and string */
static size_t allocations(const cJSON *t)
{
  size_t n = 0;
  for (; t; t = t->next)
    n += 1 + (t->string != NULL) + (t->valuestring != NULL) +
         allocations(t->child);
  return n;
}

TEST(out_of_memory_at_every_step)
{
  const char *s = "{\"data\":[{\"a\":\"x\\n\",\"b\":[1,2.5,\"s\"],\"c\":null},"
                  "{\"d\":{\"e\":true}}],\"f\":\"\"}";
  REQUIRE(accepted(s, strlen(s)));
  /* -2 until every node and string could be allocated, then the same
   * tree as cJSON's */
  cJSON *ref = cJSON_Parse(s);
  REQUIRE(ref);
  long calls2 = 0;
  for (long b = 0;; b++) {
    cJSON *t = NULL;
    struct reqjson_scan sc;
    memset(&sc, 0, sizeof(sc));
    budget = b;
    int rc = reqjson_scan_parse(s, strlen(s), &sc, failing_alloc, &t);
    if (rc == 0) {
      CHECK(t != NULL && same(t, ref, ""));
      cJSON_Delete(t);
      calls2 = b;
      break;
    }
    CHECK_EQ_INT(rc, -2);
    cJSON_Delete(t); /* the partial tree frees cleanly (ASan) */
    if (b > 1000)
      break;
  }
  CHECK_EQ_INT(calls2, (long)allocations(ref));
  cJSON_Delete(ref);
}

int main(void)
{
  RUN(sample_requests);
  RUN(strings_and_shapes);
  RUN(numbers);
  RUN(random_numbers);
  RUN(out_of_memory_at_every_step);
  return check_done();
}
