/* test_plog_compact.c - plog_json_compact (src/plog_rec.c, plog_int.h), what
 * the prediction log stores in `features`: the blanks between tokens
 * go, strings (with their blanks, escaped quotes and backslashes) stay
 * byte for byte, and every item of the course's requests keeps its JSON
 * value (cJSON_Compare), so JSON_EXTRACT(features, ...) gives the same
 * results as on the text the client sent. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "plog_int.h"

static int compacts_to(const char *in, const char *want)
{
  size_t n = strlen(in);
  char *out = malloc(n + PLOG_COMPACT_SLACK + 1);
  if (!out)
    return 0;
  size_t m = plog_json_compact(out, in, n);
  int ok = m == strlen(want) && memcmp(out, want, m) == 0;
  if (!ok)
    fprintf(stderr, "  %s -> %.*s, want %s\n", in, (int)m, out, want);
  free(out);
  return ok;
}

TEST(blanks_and_strings)
{
  CHECK(compacts_to("", ""));
  CHECK(compacts_to("{}", "{}"));
  CHECK(compacts_to(" { \"a\" : 1 , \"b\":[1, 2 ,\t{\"c\" :\n\"x y\"}] }\r\n",
                    "{\"a\":1,\"b\":[1,2,{\"c\":\"x y\"}]}"));
  /* an escaped quote does not end the string, an escaped backslash
   * before the closing quote does not hide it */
  CHECK(compacts_to("{\"d\": \"q\\\" , :\", \"e\": \"\\\\\" , \"f\": 2}",
                    "{\"d\":\"q\\\" , :\",\"e\":\"\\\\\",\"f\":2}"));
  CHECK(compacts_to("[\"\\u0020 \", true, null, -1.5e+3]",
                    "[\"\\u0020 \",true,null,-1.5e+3]"));
  /* bytes of UTF-8 texts are copied as they are */
  CHECK(compacts_to("{\"n\": \"\xea\xb9\x80 \xec\xb2\xa0\"}",
                    "{\"n\":\"\xea\xb9\x80 \xec\xb2\xa0\"}"));
}

/* The "data" object of each request line, compacted: the same JSON
 * value, no longer, compacting again changes nothing; and the course's
 * items do have blanks to drop (else this test would show nothing). */
TEST(course_items_keep_their_value)
{
  char path[1024];
  const char *sh = getenv("MLOPSD_SHARED");
  snprintf(path, sizeof(path), "%s/data/credit/predict_requests.jsonl",
           sh ? sh : "../shared");
  FILE *f = fopen(path, "r");
  REQUIRE(f != NULL);
  static char line[16384], out[16384], again[16384];
  size_t items = 0, shorter = 0, bad = 0, before = 0, after = 0;
  while (fgets(line, sizeof(line), f)) {
    char *s = strstr(line, "\"data\":");
    char *end = strrchr(line, '}');
    if (!s || !end || !(s = strchr(s, '{')) || end <= s)
      continue;
    size_t n = (size_t)(end - s); /* up to data's closing brace */
    size_t m = plog_json_compact(out, s, n);
    cJSON *a = cJSON_ParseWithLength(s, n);
    cJSON *b = cJSON_ParseWithLength(out, m);
    size_t m2 = plog_json_compact(again, out, m);
    if (!a || !b || !cJSON_Compare(a, b, 1) || m > n || m2 != m ||
        memcmp(again, out, m) != 0) {
      if (bad++ < 3)
        fprintf(stderr, "  item %zu: %.*s -> %.*s\n", items, (int)n, s,
                (int)m, out);
    }
    cJSON_Delete(a);
    cJSON_Delete(b);
    items++;
    shorter += m < n;
    before += n;
    after += m;
  }
  fclose(f);
  CHECK(items > 1000);
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(shorter, items);
  fprintf(stderr, "  %zu items, %zu -> %zu bytes\n", items, before, after);
}

/* The byte-at-a-time rule, for the 16-byte code to match. */
static size_t compact_ref(char *dst, const char *src, size_t len)
{
  size_t o = 0;
  for (size_t i = 0; i < len; i++) {
    char ch = src[i];
    if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')
      continue;
    dst[o++] = ch;
    if (ch != '"')
      continue;
    for (i++; i < len; i++) {
      ch = src[i];
      dst[o++] = ch;
      if (ch == '\\' && i + 1 < len)
        dst[o++] = src[++i];
      else if (ch == '"')
        break;
    }
  }
  return o;
}

/* Random texts of blanks, quotes, backslashes and other bytes (cut
 * anywhere, strings left open, backslashes at block edges) give what the
 * byte rule gives, at every length and alignment, and nothing is
 * written past len + PLOG_COMPACT_SLACK. */
TEST(random_texts_match_the_byte_rule)
{
  static const char alphabet[] = "  \t\n\r\"\"\\\\ab:,{}[]1\x80\xe9";
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  char in[160], want[160], got[200];
  int bad = 0;
  for (int round = 0; round < 300000; round++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    size_t n = (size_t)(x % 100), off = (size_t)((x >> 8) % 16);
    uint64_t y = x;
    int dense = (x >> 20) & 1; /* half the texts mostly plain bytes */
    /* a quarter without backslashes: blocks with quotes and blanks and
     * no escape take the quote-parity path, strings open across blocks */
    int no_bs = ((x >> 21) & 3) == 0;
    for (size_t k = 0; k < n; k++) {
      y = y * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t a = (y >> 33) % (sizeof(alphabet) - 1);
      if (!dense && ((y >> 45) & 3))
        a = 9 + (y >> 50) % 9; /* plain: a b : , { } [ ] 1 */
      if (no_bs && alphabet[a] == '\\')
        a = 5; /* a quote */
      in[off + k] = alphabet[a];
    }
    size_t mw = compact_ref(want, in + off, n);
    memset(got, 'Z', sizeof(got));
    size_t mg = plog_json_compact(got + off, in + off, n);
    if (mg != mw || memcmp(got + off, want, mw) != 0 ||
        got[off + n + PLOG_COMPACT_SLACK] != 'Z') {
      if (bad++ < 3)
        fprintf(stderr, "  n=%zu off=%zu: %zu vs %zu bytes\n", n, off, mg,
                mw);
    }
  }
  CHECK_EQ_INT(bad, 0);
}

int main(void)
{
  RUN(blanks_and_strings);
  RUN(course_items_keep_their_value);
  RUN(random_texts_match_the_byte_rule);
  return check_done();
}
