/* test_sqlsplit.c - splitting SQL scripts on the right semicolons. */
#include "check.h"
#include "mlopsd/sqlsplit.h"

/* Split sql and compare with want[] (NULL-terminated) and lines[]. */
static int split_is(const char *sql, const char *const *want,
                    const int *lines)
{
  struct sqlsplit_list l;
  struct err e = {0};
  if (sqlsplit_split(sql, &l, &e) != ERR_OK) {
    fprintf(stderr, "  split failed: %s\n", e.msg);
    return 0;
  }
  int ok = 1;
  size_t n = 0;
  while (want[n])
    n++;
  if (l.n != n) {
    fprintf(stderr, "  got %zu statements, want %zu\n", l.n, n);
    ok = 0;
  }
  for (size_t i = 0; i < l.n && i < n; i++) {
    if (strcmp(l.v[i].sql, want[i]) != 0) {
      fprintf(stderr, "  stmt %zu: got [%s] want [%s]\n", i, l.v[i].sql,
              want[i]);
      ok = 0;
    }
    if (lines && l.v[i].line != lines[i]) {
      fprintf(stderr, "  stmt %zu: line %d want %d\n", i, l.v[i].line,
              lines[i]);
      ok = 0;
    }
    if (strncmp(sql + l.v[i].off, l.v[i].sql, strlen(l.v[i].sql)) != 0)
      ok = 0;
  }
  sqlsplit_list_free(&l);
  return ok;
}

TEST(basic)
{
  const char *w[] = {"SELECT 1", "SELECT 2", NULL};
  const int ln[] = {1, 1};
  CHECK(split_is("SELECT 1; SELECT 2;", w, ln));
  CHECK(split_is("SELECT 1;SELECT 2", w, ln));
  CHECK(split_is("  SELECT 1  ;\t;  ; SELECT 2 ;;; ", w, ln));
  const char *none[] = {NULL};
  CHECK(split_is("", none, NULL));
  CHECK(split_is(" ;; \n ; ", none, NULL));
  CHECK(split_is("-- only a comment\n/* and another; */ # third;\n", none,
                 NULL));
}

TEST(quotes)
{
  const char *w1[] = {"INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`)",
                      "SELECT 'it''s; fine'", "SELECT 'back\\'slash;'",
                      "SELECT \"dq\"\"x;\"", "SELECT `a``b;`", NULL};
  CHECK(split_is("INSERT INTO t VALUES ('a;b', \"c;d\", `e;f`);\n"
                 "SELECT 'it''s; fine';\n"
                 "SELECT 'back\\'slash;';\n"
                 "SELECT \"dq\"\"x;\";\n"
                 "SELECT `a``b;`;",
                 w1, (const int[]){1, 2, 3, 4, 5}));
  /* a backslash escapes the next byte, also a backslash */
  const char *w2[] = {"SELECT '\\\\'", "SELECT 2", NULL};
  CHECK(split_is("SELECT '\\\\'; SELECT 2", w2, NULL));
  /* backslash is no escape in backticks; comment markers in strings */
  const char *w3[] = {"SELECT `a\\`", "SELECT '-- no', '# no', '/* no'",
                      NULL};
  CHECK(split_is("SELECT `a\\`; SELECT '-- no', '# no', '/* no';", w3,
                 NULL));
  /* a newline inside a string: the next statement's line is right */
  const char *w4[] = {"SELECT 'a\nb;\nc'", "SELECT 2", NULL};
  CHECK(split_is("SELECT 'a\nb;\nc';\n\nSELECT 2", w4,
                 (const int[]){1, 5}));
}

TEST(comments)
{
  const char *w1[] = {"SELECT 1", "SELECT 2", "SELECT 3", NULL};
  CHECK(split_is("-- header; not a statement\n"
                 "SELECT 1; -- trailing; comment\n"
                 "# hash comment;\n"
                 "/* block; comment\n spanning; lines */ SELECT 2;\n"
                 "SELECT 3 /* in; */",
                 w1, (const int[]){2, 5, 6}));
  /* "--" not followed by a blank is the minus operator twice */
  const char *w2[] = {"SELECT 5--1", "SELECT 2", NULL};
  CHECK(split_is("SELECT 5--1; SELECT 2", w2, NULL));
  /* "-- " at the very end, and "--\t" */
  const char *w3[] = {"SELECT 1", NULL};
  CHECK(split_is("SELECT 1 --", w3, NULL));
  CHECK(split_is("SELECT 1 --\t;x\n", w3, NULL));
  /* a comment inside a statement is kept, leading/trailing ones are not */
  const char *w4[] = {"SELECT a, -- the a; column\n  b FROM t", NULL};
  CHECK(split_is("/* lead */ SELECT a, -- the a; column\n  b FROM t "
                 "/* tail */ ; -- end",
                 w4, (const int[]){1}));
  /* executable comments are code: kept and a statement on their own */
  const char *w5[] = {"/*!40101 SET NAMES utf8 */", "/*M!100100 SET x=1 */",
                      NULL};
  CHECK(split_is("/*!40101 SET NAMES utf8 */;\n/*M!100100 SET x=1 */;", w5,
                 (const int[]){1, 2}));
  /* a block comment does not nest and "* /" inside a string is harmless */
  const char *w6[] = {"SELECT '*/'", "SELECT 2", NULL};
  CHECK(split_is("/* /* */ SELECT '*/'; SELECT 2", w6, NULL));
}

TEST(params_and_lines)
{
  struct sqlsplit_list l;
  struct err e = {0};
  REQUIRE(sqlsplit_split("\n\n  DELETE FROM t WHERE a = ? AND b = '?'"
                         " -- ?\n AND c = ?;\r\n"
                         "SELECT `?`, \"?\" /* ? */;\nSELECT ?",
                         &l, &e) == ERR_OK);
  REQUIRE(l.n == 3);
  CHECK_EQ_INT(l.v[0].line, 3);
  CHECK_EQ_INT(l.v[0].nparams, 2);
  CHECK_EQ_INT(l.v[0].off, 4);
  CHECK_EQ_INT(l.v[1].line, 5);
  CHECK_EQ_INT(l.v[1].nparams, 0);
  CHECK_EQ_INT(l.v[2].line, 6);
  CHECK_EQ_INT(l.v[2].nparams, 1);
  sqlsplit_list_free(&l);
  sqlsplit_list_free(&l); /* reset: second free is harmless */
  sqlsplit_list_free(NULL);
}

TEST(errors)
{
  struct sqlsplit_list l;
  struct err e = {0};
  CHECK_EQ_INT(sqlsplit_split("SELECT 1;\nSELECT 'abc;\n", &l, &e),
               ERR_PARSE);
  CHECK_EQ_STR(e.msg, "line 2: a '...' string is never closed");
  CHECK(l.n == 0 && l.v == NULL);
  CHECK_EQ_INT(sqlsplit_split("SELECT \"x", &l, &e), ERR_PARSE);
  CHECK_EQ_STR(e.msg, "line 1: a \"...\" string is never closed");
  CHECK_EQ_INT(sqlsplit_split("SELECT 1;\n\n/* open", &l, &e), ERR_PARSE);
  CHECK_EQ_STR(e.msg, "line 3: a /* */ comment is never closed");
  CHECK_EQ_INT(sqlsplit_split("SELECT `x", &l, &e), ERR_PARSE);
  CHECK_EQ_STR(e.msg, "line 1: a `...` identifier is never closed");
  CHECK_EQ_INT(sqlsplit_split("SELECT 'it\\'", &l, &e), ERR_PARSE);
  CHECK_EQ_INT(sqlsplit_split("SELECT 1;\ndelimiter $$\nSELECT 2$$", &l,
                              &e),
               ERR_PARSE);
  CHECK_EQ_STR(e.msg, "line 2: DELIMITER is a mysql client command, not SQL "
                      "(statements are split on ';' only)");
  /* DELIMITER as a column name is fine */
  CHECK_EQ_INT(sqlsplit_split("SELECT delimiter_x FROM t", &l, &e), ERR_OK);
  sqlsplit_list_free(&l);
  CHECK_EQ_INT(sqlsplit_split(NULL, &l, &e), ERR_OK);
  CHECK(l.n == 0);
}

TEST(scanner)
{
  const char *s = "a 'b''c' -- d\n\"e\" /* f */ `g` # h\ni 'j\\'k'";
  struct sqlsplit_scan sc;
  sqlsplit_scan_init(&sc, s, strlen(s));
  const char *p;
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 0), SQLSPLIT_CODE);
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 2), SQLSPLIT_CODE); /* opening ' */
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 3), SQLSPLIT_SQUOTE);
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 5), SQLSPLIT_SQUOTE); /* in '' */
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 6), SQLSPLIT_SQUOTE); /* c */
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, 8), SQLSPLIT_CODE);
  p = strchr(s, 'd');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)), SQLSPLIT_LINE_COMMENT);
  p = strchr(s, 'e');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)), SQLSPLIT_DQUOTE);
  CHECK_EQ_INT(sc.line, 2);
  p = strchr(s, 'f');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)),
               SQLSPLIT_BLOCK_COMMENT);
  p = strchr(s, 'g');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)), SQLSPLIT_BACKTICK);
  p = strchr(s, 'h');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)),
               SQLSPLIT_LINE_COMMENT);
  p = strchr(s, 'i');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)), SQLSPLIT_CODE);
  p = strchr(s, 'k');
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, (size_t)(p - s)), SQLSPLIT_SQUOTE);
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, strlen(s)), SQLSPLIT_CODE);
  CHECK_EQ_INT(sqlsplit_scan_to(&sc, strlen(s) + 10), SQLSPLIT_CODE);
}

int main(void)
{
  RUN(basic);
  RUN(quotes);
  RUN(comments);
  RUN(params_and_lines);
  RUN(errors);
  RUN(scanner);
  return check_done();
}
