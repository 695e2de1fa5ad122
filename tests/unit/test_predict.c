/* test_predict.c - the /predict body pre-check (reqjson_scan): what it
 * accepts, where it reports the first error, and the spans it records
 * for the prediction log; the shape check and the 400 body writer that
 * the server and `mlopsd predict` share (predict_shape, predict_bad).  The HTTP path itself is covered by
 * tests/integration/test_serve.c.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mlopsd/predict.h"
#include "mlopsd/reqjson.h"

static struct reqjson_span sp8[8];

static struct reqjson_span sp8b[8];
static int scan_parse_differs;

/* reqjson_scan, checked against reqjson_scan_parse on the same body: the
 * same result, error, position and spans (the tree itself is compared
 * with cJSON's in test_predict_tree.c). */
static int scan(const char *s, struct reqjson_scan *sc)
{
  memset(sc, 0, sizeof(*sc));
  sc->items = sp8;
  sc->items_cap = 8;
  int rc = reqjson_scan(s, strlen(s), sc);
  struct reqjson_scan b;
  memset(&b, 0, sizeof(b));
  b.items = sp8b;
  b.items_cap = 8;
  cJSON *t = NULL;
  int rb = reqjson_scan_parse(s, strlen(s), &b, malloc, &t);
  if (rb != rc || !b.err != !sc->err ||
      (b.err && (strcmp(b.err, sc->err) != 0 || b.err_pos != sc->err_pos ||
                 b.err_line != sc->err_line || b.err_col != sc->err_col)) ||
      b.has_data != sc->has_data || b.n_items != sc->n_items ||
      b.data_kind != sc->data_kind ||
      memcmp(&b.data, &sc->data, sizeof(b.data)) != 0 ||
      memcmp(sp8b, sp8, sizeof(sp8)) != 0 || (rb == 0 && !t)) {
    fprintf(stderr, "  reqjson_scan_parse differs on %s\n", s);
    scan_parse_differs++;
  }
  cJSON_Delete(t); /* also a partial tree of an invalid body (ASan) */
  return rc;
}

static int ok(const char *s)
{
  struct reqjson_scan sc;
  return scan(s, &sc) == 0;
}

/* The error message (substring) and byte offset of a bad body. */
static int bad_at(const char *s, const char *msg, size_t pos)
{
  struct reqjson_scan sc;
  if (scan(s, &sc) == 0) {
    fprintf(stderr, "  accepted: %s\n", s);
    return 0;
  }
  if (!strstr(sc.err, msg) || sc.err_pos != pos) {
    fprintf(stderr, "  %s: got '%s' at %zu, want '%s' at %zu\n", s, sc.err,
            sc.err_pos, msg, pos);
    return 0;
  }
  return 1;
}

TEST(valid_json)
{
  CHECK(ok("{}"));
  CHECK(ok("[]"));
  CHECK(ok(" \t\r\n{ \"a\" : [ 1 , -2.5e+3 , 0 , 0.0 , 1E9 ] } \n"));
  CHECK(ok("\"x\""));
  CHECK(ok("true"));
  CHECK(ok("null"));
  CHECK(ok("-0"));
  CHECK(ok("{\"s\": \"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\ud83d\\ude00\"}"));
  CHECK(ok("{\"s\": \"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"));
  CHECK(ok("{\"age\": 1e400}")); /* syntax is fine; the spec refuses it */
}

TEST(errors_and_positions)
{
  CHECK(bad_at("", "end of input", 0));
  CHECK(bad_at("{", "end of input", 1));
  CHECK(bad_at("{\"a\": }", "value expected", 6));
  CHECK(bad_at("{\"a\" 1}", "expected ':'", 5));
  CHECK(bad_at("{\"a\": 1,}", "member name", 8));
  CHECK(bad_at("[1,]", "value expected", 3));
  CHECK(bad_at("[1 2]", "expected ',' or ']'", 3));
  CHECK(bad_at("{\"a\": 1 \"b\": 2}", "expected ',' or '}'", 8));
  CHECK(bad_at("{} x", "after the JSON value", 3));
  CHECK(bad_at("{'a': 1}", "member name", 1));
  CHECK(bad_at("[01]", "expected ',' or ']'", 2));
  CHECK(bad_at("[1.]", "digit expected after '.'", 3));
  CHECK(bad_at("[1e]", "exponent", 3));
  CHECK(bad_at("[-]", "invalid number", 2));
  CHECK(bad_at("[tru]", "invalid literal", 1));
  CHECK(bad_at("[NaN]", "unexpected character", 1));
  CHECK(bad_at("[\"abc", "unterminated string", 5));
  CHECK(bad_at("[\"a\\x\"]", "invalid escape", 3));
  CHECK(bad_at("[\"\\u12G4\"]", "4 hex digits", 2));
  CHECK(bad_at("[\"\\ud800\"]", "lone high surrogate", 2));
  CHECK(bad_at("[\"\\udc00\"]", "lone low surrogate", 2));
  CHECK(bad_at("[\"\\ud800\\u0041\"]", "lone high surrogate", 2));
  CHECK(bad_at("[\"a\\u0000\"]", "u0000", 3));
  CHECK(bad_at("[\"a\tb\"]", "control character", 3));
  {
    char num[100] = "[";
    memset(num + 1, '1', 64);
    strcat(num, "]");
    CHECK(bad_at(num, "number too long", 1));
    num[64] = ']';
    num[65] = 0;
    CHECK(ok(num)); /* 63 digits */
  }
}

/* Strings are scanned eight bytes at a time: a quote, backslash or
 * control byte is found at every offset and string length, UTF-8 bytes
 * (>= 0x80) are plain. */
TEST(string_runs)
{
  char buf[128];
  int bad = 0;
  for (int len = 0; len < 40; len++) {
    for (int at = 0; at <= len; at++) {
      /* {"k":"<len plain bytes, one of them replaced>"} */
      char str[64];
      for (int k = 0; k < len; k++)
        str[k] = (char)('a' + k % 26);
      str[len] = 0;
      snprintf(buf, sizeof(buf), "{\"k\":\"%s\"}", str);
      bad += !ok(buf);
      if (at == len)
        continue;
      size_t pos = 6 + (size_t)at;
      buf[pos] = '\x01';
      bad += !bad_at(buf, "control character", pos);
      buf[pos] = '\x1f';
      bad += !bad_at(buf, "control character", pos);
      buf[pos] = '"'; /* the string ends early: '}' expected after it */
      bad += ok(buf);
      snprintf(buf, sizeof(buf), "{\"k\":\"%.*s\\\"%s\"}", at, str,
               str + at); /* an escaped quote at offset at */
      bad += !ok(buf);
      snprintf(buf, sizeof(buf), "{\"k\":\"%.*s\\q%s\"}", at, str,
               str + at);
      bad += !bad_at(buf, "invalid escape", 6 + (size_t)at);
      snprintf(buf, sizeof(buf), "{\"k\":\"%.*s\xc3\xa9%s\"}", at, str,
               str + at); /* U+00E9 */
      bad += !ok(buf);
    }
  }
  CHECK_EQ_INT(bad, 0);
}

TEST(utf8)
{
  CHECK(bad_at("[\"\xff\"]", "invalid UTF-8", 2));
  CHECK(bad_at("[\"\xc3\"]", "invalid UTF-8", 2));        /* cut short */
  CHECK(bad_at("[\"\xc0\xaf\"]", "invalid UTF-8", 2));    /* overlong */
  CHECK(bad_at("[\"\xe0\x80\xaf\"]", "invalid UTF-8", 2)); /* overlong */
  CHECK(bad_at("[\"\xed\xa0\x80\"]", "invalid UTF-8", 2)); /* surrogate */
  CHECK(bad_at("[\"\xf4\x90\x80\x80\"]", "invalid UTF-8", 2)); /* > U+10FFFF */
  CHECK(bad_at("[\"ok\", \"\x80\"]", "invalid UTF-8", 8));
  /* an invalid byte far into an ASCII run (the 8-byte fast path) */
  char b[64];
  snprintf(b, sizeof(b), "[\"aaaaaaaaaaaaaaaaaaaaaaa\xfe\"]");
  CHECK(bad_at(b, "invalid UTF-8", 25));
  /* line and column of an error */
  struct reqjson_scan sc;
  CHECK(scan("{\n  \"a\": 1,\n  \"\xc3\xa9\": x\n}", &sc) == -1);
  CHECK_EQ_INT(sc.err_line, 3);
  CHECK_EQ_INT(sc.err_col, 8);
}

TEST(depth)
{
  char b[256];
  struct reqjson_scan sc;
  /* 16 levels pass, 17 do not */
  memset(b, '[', 16);
  memset(b + 16, ']', 16);
  b[32] = 0;
  CHECK(ok(b));
  memset(b, '[', 17);
  memset(b + 17, ']', 17);
  b[34] = 0;
  CHECK(bad_at(b, "nested too deeply", 16));
  memset(&sc, 0, sizeof(sc));
  sc.max_depth = 3;
  CHECK(reqjson_scan("{\"data\": [{}]}", 14, &sc) == 0);
  sc.max_depth = 2;
  CHECK(reqjson_scan("{\"data\": [{}]}", 14, &sc) == -1);
  /* a long run of '[' is refused at the limit, not parsed to the end */
  char big[100001];
  memset(big, '[', 100000);
  big[100000] = 0;
  CHECK(bad_at(big, "nested too deeply", 16));
}

TEST(spans)
{
  struct reqjson_scan sc;
  const char *one = "{\"x\": 1, \"data\" : {\"age\": 18, \"n\": [1, 2]} }";
  REQUIRE(scan(one, &sc) == 0);
  CHECK(sc.has_data);
  CHECK_EQ_INT(sc.data_kind, '{');
  CHECK(strncmp(one + sc.data.start, "{\"age\": 18, \"n\": [1, 2]}",
                sc.data.end - sc.data.start) == 0);
  CHECK_EQ_INT(sc.data.end - sc.data.start, 24);
  CHECK_EQ_INT(sc.n_items, 0);

  const char *batch = "{\"data\": [ {\"a\": 1} ,{\"b\": \"]\"}, 7 ]}";
  REQUIRE(scan(batch, &sc) == 0);
  CHECK_EQ_INT(sc.data_kind, '[');
  CHECK_EQ_INT(sc.n_items, 3);
  CHECK(strncmp(batch + sp8[0].start, "{\"a\": 1}", 8) == 0);
  CHECK_EQ_INT(sp8[0].end - sp8[0].start, 8);
  CHECK(strncmp(batch + sp8[1].start, "{\"b\": \"]\"}", 10) == 0);
  CHECK_EQ_INT(sp8[1].end - sp8[1].start, 10);
  CHECK_EQ_INT(sp8[2].end - sp8[2].start, 1);

  /* only the top-level "data", the first one; nested ones are ignored */
  const char *nested = "{\"a\": {\"data\": [1]}, \"data\": {}, \"data\": []}";
  REQUIRE(scan(nested, &sc) == 0);
  CHECK_EQ_INT(sc.data_kind, '{');
  CHECK(strncmp(nested + sc.data.start, "{}", 2) == 0);
  CHECK(scan("[{\"data\": 1}]", &sc) == 0 && !sc.has_data);

  /* more items than room: counted, not recorded past the cap */
  char many[256] = "{\"data\": [";
  for (int i = 0; i < 20; i++)
    strcat(many, i ? ",{}" : "{}");
  strcat(many, "]}");
  REQUIRE(scan(many, &sc) == 0);
  CHECK_EQ_INT(sc.n_items, 20);
}

/* The shape check names every breach, and the body lists them in
 * "fields" and "detail" (pydantic's loc/type) in order. */
TEST(shape_and_400_body)
{
  cJSON *root = cJSON_Parse("{\"data\":[],\"x\":1,\"data\":2}");
  REQUIRE(root != NULL);
  struct predict_bad v = {0};
  const cJSON *data;
  int batch;
  size_t n;
  CHECK_EQ_INT(predict_shape(root, 8, &v, &data, &batch, &n, NULL), 0);
  CHECK(batch && n == 0);
  predict_bad_end(&v);
  CHECK_EQ_INT(buf_error(&v.body), ERR_OK);
  CHECK_EQ_STR(buf_str(&v.body),
               "{\"error\":\"invalid input\",\"fields\":{"
               "\"x\":\"unknown field\",\"data\":\"duplicate field\","
               "\"data\":\"must not be an empty list\"},\"detail\":["
               "{\"type\":\"extra_forbidden\",\"loc\":[\"body\",\"x\"],"
               "\"msg\":\"unknown field\",\"input\":1},"
               "{\"type\":\"value_error\",\"loc\":[\"body\",\"data\"],"
               "\"msg\":\"duplicate field\",\"input\":2},"
               "{\"type\":\"value_error\",\"loc\":[\"body\",\"data\"],"
               "\"msg\":\"must not be an empty list\",\"input\":[]}]}");
  predict_bad_free(&v);
  cJSON_Delete(root);

  root = cJSON_Parse("{\"data\":[{},{},{}]}");
  REQUIRE(root != NULL);
  CHECK_EQ_INT(predict_shape(root, 2, &v, &data, &batch, &n, NULL), 0);
  CHECK(strstr(buf_str(&v.body), "\"data\":\"at most 2 items per "
                                 "request\"") != NULL);
  predict_bad_free(&v);
  CHECK_EQ_INT(predict_shape(root, 3, &v, &data, &batch, &n, NULL), 1);
  CHECK(batch && n == 3 && data == cJSON_GetObjectItem(root, "data"));
  CHECK_EQ_INT(v.nf, 0);
  cJSON_Delete(root);
}

/* "explain" is a member the server takes (its value is the server's to
 * check) and an unknown field where the caller passes no explain slot
 * (`mlopsd predict`); given twice it is a duplicate. */
TEST(shape_explain_member)
{
  cJSON *root = cJSON_Parse("{\"data\":{},\"explain\":{\"top_k\":2}}");
  REQUIRE(root != NULL);
  struct predict_bad v = {0};
  const cJSON *data, *ex = NULL;
  int batch;
  size_t n;
  CHECK_EQ_INT(predict_shape(root, 8, &v, &data, &batch, &n, &ex), 1);
  CHECK(ex == cJSON_GetObjectItem(root, "explain") && n == 1 && !batch);
  CHECK_EQ_INT(predict_shape(root, 8, &v, &data, &batch, &n, NULL), 0);
  CHECK(strstr(buf_str(&v.body), "\"explain\":\"unknown field\"") != NULL);
  predict_bad_free(&v);
  cJSON_Delete(root);
  root = cJSON_Parse("{\"data\":{},\"explain\":true,\"explain\":1}");
  REQUIRE(root != NULL);
  CHECK_EQ_INT(predict_shape(root, 8, &v, &data, &batch, &n, &ex), 0);
  CHECK(strstr(buf_str(&v.body), "\"explain\":\"duplicate field\"") !=
        NULL);
  predict_bad_free(&v);
  cJSON_Delete(root);
}

/* Past PREDICT_MAX_FIELDS the body counts what it leaves out; a batch
 * item's field is named data[i].field with a quoted message. */
TEST(bad_fields_capped)
{
  struct predict_bad v = {0};
  for (int i = 0; i < PREDICT_MAX_FIELDS + 3; i++)
    predict_bad_add(&v, "data", (size_t)i, 1, "age", "must be \"> 0\"",
                    NULL);
  CHECK_EQ_INT(v.nf, PREDICT_MAX_FIELDS);
  CHECK_EQ_INT(v.more, 3);
  predict_bad_end(&v);
  const char *s = buf_str(&v.body);
  CHECK(strstr(s, "\"data[0].age\":\"must be \\\"> 0\\\"\"") != NULL);
  CHECK(strstr(s, ",\"...\":\"3 more invalid fields not listed\"}") != NULL);
  CHECK(strstr(s, "\"loc\":[\"body\",\"data\",63,\"age\"]") != NULL);
  CHECK(strstr(s, "data[64]") == NULL);
  cJSON *j = cJSON_Parse(s);
  CHECK(j != NULL);
  CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(j, "detail")),
               PREDICT_MAX_FIELDS);
  cJSON_Delete(j);
  predict_bad_free(&v);
}

/* every body the tests above scanned, also through reqjson_scan_parse */
TEST(scan_parse_agrees)
{
  CHECK(ok("{\"data\": [{\"a\": 1}, {\"b\": \"x\\n\"}]}"));
  CHECK_EQ_INT(scan_parse_differs, 0);
}

int main(void)
{
  RUN(valid_json);
  RUN(errors_and_positions);
  RUN(string_runs);
  RUN(utf8);
  RUN(depth);
  RUN(spans);
  RUN(shape_and_400_body);
  RUN(shape_explain_member);
  RUN(bad_fields_capped);
  RUN(scan_parse_agrees);
  return check_done();
}
