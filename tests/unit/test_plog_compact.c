/* test_plog_compact.c - plog_json_compact (src/plog_rec.c, plog_int.h), what
 * the prediction log stores in `features`: the blanks between tokens
 * go, strings (with their blanks, escaped quotes and backslashes) stay
 * byte for byte, and every item of the course's requests keeps its JSON
 * value (cJSON_Compare), so JSON_EXTRACT(features, ...) gives the same
 * results as on the text the client sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "plog_int.h"

static int compacts_to(const char *in, const char *want)
{
  size_t n = strlen(in);
  char *out = malloc(n + 1);
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

int main(void)
{
  RUN(blanks_and_strings);
  RUN(course_items_keep_their_value);
  return check_done();
}
