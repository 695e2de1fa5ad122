/* test_seed.c - the CSV reader and value parsers of the seed loader (no
 * server needed); loading into MariaDB is tests/integration/test_schema.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mlopsd/seed.h"

/* Parse text; return the reader (caller closes it and the FILE). */
static struct seed_csv *csv_of(const char *text, FILE **fp)
{
  *fp = fmemopen((void *)text, strlen(text), "r");
  struct seed_csv *r = NULL;
  struct err e = {0};
  if (!*fp || seed_csv_from(&r, *fp, "mem.csv", &e) != ERR_OK)
    return NULL;
  return r;
}

static const char *fld(struct seed_csv *r, int i)
{
  const char *s = seed_csv_field(r, i, NULL, NULL);
  return s ? s : "(none)";
}

TEST(csv_rfc4180)
{
  FILE *f;
  struct seed_csv *r =
      csv_of("a,b,c\r\n"
             "1,\"x, y\",\"say \"\"hi\"\"\"\n"
             "\n"
             "2,,\"multi\nline\"\n"
             "3,\"\",end",
             &f);
  REQUIRE(r != NULL);
  struct err e = {0};
  int nf;
  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_INT(nf, 3);
  CHECK_EQ_STR(fld(r, 2), "c");
  CHECK_EQ_INT(seed_csv_line(r), 1);

  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_INT(nf, 3);
  CHECK_EQ_STR(fld(r, 1), "x, y");
  CHECK_EQ_STR(fld(r, 2), "say \"hi\"");
  CHECK_EQ_INT(seed_csv_line(r), 2);

  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK); /* blank line skipped */
  CHECK_EQ_INT(nf, 3);
  CHECK_EQ_INT(seed_csv_line(r), 4);
  size_t len = 99;
  int q = 9;
  CHECK_EQ_STR(seed_csv_field(r, 1, &len, &q), "");
  CHECK_EQ_INT(len, 0);
  CHECK_EQ_INT(q, 0);
  CHECK_EQ_STR(fld(r, 2), "multi\nline");

  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK); /* no final newline */
  CHECK_EQ_INT(nf, 3);
  CHECK_EQ_INT(seed_csv_line(r), 6);
  CHECK_EQ_STR(seed_csv_field(r, 1, &len, &q), "");
  CHECK_EQ_INT(q, 1);
  CHECK_EQ_STR(fld(r, 2), "end");
  CHECK(seed_csv_field(r, 3, NULL, NULL) == NULL);

  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_INT(nf, 0);
  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_INT(nf, 0);
  seed_csv_close(r);
  fclose(f);
}

TEST(csv_bom_and_trailing_comma)
{
  FILE *f;
  struct seed_csv *r = csv_of("\xEF\xBB\xBFid,x\n1,\n", &f);
  REQUIRE(r != NULL);
  struct err e = {0};
  int nf;
  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_STR(fld(r, 0), "id");
  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_INT(nf, 2);
  CHECK_EQ_STR(fld(r, 1), "");
  seed_csv_close(r);
  fclose(f);

  /* 0xEF that is not a BOM stays data. */
  r = csv_of("\xEFx,y\n", &f);
  REQUIRE(r != NULL);
  CHECK_EQ_INT(seed_csv_next(r, &nf, &e), ERR_OK);
  CHECK_EQ_STR(fld(r, 0), "\xEFx");
  seed_csv_close(r);
  fclose(f);
}

static enum err_code first_error(const char *text, struct err *e)
{
  FILE *f;
  struct seed_csv *r = csv_of(text, &f);
  if (!r)
    return ERR_INTERNAL;
  int nf = 1;
  enum err_code rc = ERR_OK;
  while (rc == ERR_OK && nf > 0)
    rc = seed_csv_next(r, &nf, e);
  seed_csv_close(r);
  fclose(f);
  return rc;
}

TEST(csv_errors)
{
  struct err e = {0};
  CHECK_EQ_INT(first_error("a,b\n1,\"open\n2,3\n", &e), ERR_PARSE);
  CHECK(strstr(e.msg, "mem.csv:") != NULL);
  CHECK(strstr(e.msg, "unterminated") != NULL);
  CHECK(strstr(e.msg, "opened on line 2") != NULL);

  CHECK_EQ_INT(first_error("a,b\n1,\"x\"y\n", &e), ERR_PARSE);
  CHECK(strstr(e.msg, "mem.csv:2:") != NULL);
  CHECK(strstr(e.msg, "after the closing quote") != NULL);

  CHECK_EQ_INT(first_error("a,b\n\n1,x\"y\n", &e), ERR_PARSE);
  CHECK(strstr(e.msg, "mem.csv:3:") != NULL);
  CHECK(strstr(e.msg, "field 2") != NULL);
}

TEST(csv_limits)
{
  /* A record longer than 1 MiB is refused, not buffered without end. */
  size_t n = 2u * 1024 * 1024;
  char *big = malloc(n + 1);
  REQUIRE(big != NULL);
  memset(big, 'x', n);
  big[n] = '\0';
  struct err e = {0};
  CHECK_EQ_INT(first_error(big, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "longer than") != NULL);
  /* More than 1024 fields. */
  memset(big, ',', 2000);
  big[2000] = '\0';
  CHECK_EQ_INT(first_error(big, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "fields") != NULL);
  free(big);
}

TEST(csv_missing_file)
{
  struct seed_csv *r = NULL;
  struct err e = {0};
  CHECK_EQ_INT(seed_csv_open(&r, "/nonexistent/x.csv", &e), ERR_IO);
  CHECK(r == NULL);
  CHECK(strstr(e.msg, "/nonexistent/x.csv") != NULL);
  seed_csv_close(NULL);
}

TEST(parse_numbers)
{
  static const struct {
    const char *text;
    double want, eps;
  } f64_ok[] = {{"1066.4450000000004", 1066.445, 1e-9},
                {"-3.5e2", -350, 1e-12},
                {".5", 0.5, 0},
                {"7.", 7, 0}};
  static const char *const f64_bad[] = {"",    ".",    "abc",  "12_",
                                        " 1",  "nan",  "inf",  "0x10",
                                        "1e999", "1e"};
  static const struct {
    const char *text;
    int64_t want;
  } i64_ok[] = {{"957109944.0", 957109944},
                {"561676184", 561676184},
                {"-12.000", -12},
                {"9223372036854775807", INT64_MAX},
                {"-9223372036854775808", INT64_MIN}};
  static const char *const i64_bad[] = {"9223372036854775808", "1.5", "1e9",
                                        "", "-", "#F%$D@*&8"};
  for (size_t i = 0; i < sizeof(f64_ok) / sizeof(f64_ok[0]); i++) {
    double d = NAN;
    CHECK_CASE(f64_ok[i].text);
    CHECK_EQ_INT(seed_parse_f64(f64_ok[i].text, &d), 0);
    CHECK_NEAR(d, f64_ok[i].want, f64_ok[i].eps);
  }
  for (size_t i = 0; i < sizeof(f64_bad) / sizeof(f64_bad[0]); i++) {
    double d;
    CHECK_CASE(f64_bad[i]);
    CHECK_EQ_INT(seed_parse_f64(f64_bad[i], &d), -1);
  }
  for (size_t i = 0; i < sizeof(i64_ok) / sizeof(i64_ok[0]); i++) {
    int64_t x = 0;
    CHECK_CASE(i64_ok[i].text);
    CHECK_EQ_INT(seed_parse_i64(i64_ok[i].text, &x), 0);
    CHECK_EQ_INT(x, i64_ok[i].want);
  }
  for (size_t i = 0; i < sizeof(i64_bad) / sizeof(i64_bad[0]); i++) {
    int64_t x;
    CHECK_CASE(i64_bad[i]);
    CHECK_EQ_INT(seed_parse_i64(i64_bad[i], &x), -1);
  }
}

TEST(csv_reads_sample_files)
{
  /* The shipped sample files parse with the documented row and field
   * counts and the README's empty-field counts. */
  const char *src = getenv("MLOPSD_SRC");
  static const struct {
    const char *file;
    int rows, fields;
  } want[] = {{"customer_info.csv", 20000, 5},
              {"credit_score.csv", 20000, 4},
              {"credit_score_features.csv", 3414, 27}};
  for (int k = 0; k < 3; k++) {
    char path[1024];
    snprintf(path, sizeof(path), "%s/sql/data/%s", src ? src : ".",
             want[k].file);
    struct seed_csv *r = NULL;
    struct err e = {0};
    REQUIRE(seed_csv_open(&r, path, &e) == ERR_OK);
    int nf, rows = -1, bad = 0, empty_mix = 0, empty_age = 0;
    while (seed_csv_next(r, &nf, &e) == ERR_OK && nf > 0) {
      rows++;
      if (nf != want[k].fields)
        bad++;
      if (k == 2 && rows > 0) {
        size_t l;
        seed_csv_field(r, 18, &l, NULL); /* credit_mix */
        empty_mix += l == 0;
        seed_csv_field(r, 4, &l, NULL); /* age */
        empty_age += l == 0;
      }
    }
    CHECK_EQ_INT(e.code, ERR_OK);
    CHECK_EQ_INT(rows, want[k].rows);
    CHECK_EQ_INT(bad, 0);
    if (k == 2) {
      CHECK_EQ_INT(empty_mix, 520);
      CHECK_EQ_INT(empty_age, 56);
    }
    seed_csv_close(r);
  }
}

int main(void)
{
  RUN(csv_rfc4180);
  RUN(csv_bom_and_trailing_comma);
  RUN(csv_errors);
  RUN(csv_limits);
  RUN(csv_missing_file);
  RUN(parse_numbers);
  RUN(csv_reads_sample_files);
  return check_done();
}
