/* test_schema.c - the parts of the migration runner that need no server:
 * directory scanning and selection, and that the shipped migrations split
 * cleanly.  The runner against MariaDB is tests/integration/test_schema.c;
 * the splitter itself is tested in test_sqlsplit.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/schema.h"
#include "mlopsd/sha256.h"
#include "mlopsd/sqlsplit.h"

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
}

TEST(scan_dir)
{
  char dir[] = "/tmp/mlopsd-schema-XXXXXX";
  REQUIRE(mkdtemp(dir) != NULL);
  char p[512];
  snprintf(p, sizeof(p), "%s/010_later.sql", dir);
  write_file(p, "SELECT 10;\n");
  snprintf(p, sizeof(p), "%s/002_two.sql", dir);
  write_file(p, "SELECT 2;\n");
  snprintf(p, sizeof(p), "%s/README.md", dir);
  write_file(p, "ignored\n");
  snprintf(p, sizeof(p), "%s/.hidden.sql", dir);
  write_file(p, "ignored\n");
  struct schema_file *f = NULL;
  int n = 0;
  struct err e = {0};
  CHECK_EQ_INT(schema_scan(dir, &f, &n, &e), ERR_OK);
  REQUIRE(n == 2);
  CHECK_EQ_INT(f[0].version, 2);
  CHECK_EQ_STR(f[0].name, "002_two.sql");
  CHECK_EQ_INT(f[1].version, 10);
  uint8_t d[SHA256_DIGEST_LEN];
  char hex[SHA256_HEX_LEN];
  sha256_buf("SELECT 2;\n", 10, d);
  sha256_hex(d, hex);
  CHECK_EQ_STR(f[0].checksum, hex);
  free(f);

  /* Same version twice. */
  snprintf(p, sizeof(p), "%s/02_again.sql", dir);
  write_file(p, "SELECT 2;\n");
  CHECK_EQ_INT(schema_scan(dir, &f, &n, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "same version 2") != NULL);
  unlink(p);
  /* A .sql file with a bad name. */
  snprintf(p, sizeof(p), "%s/init.sql", dir);
  write_file(p, "SELECT 2;\n");
  CHECK_EQ_INT(schema_scan(dir, &f, &n, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "init.sql") != NULL);
  unlink(p);
  snprintf(p, sizeof(p), "%s/000_zero.sql", dir);
  write_file(p, "SELECT 2;\n");
  CHECK_EQ_INT(schema_scan(dir, &f, &n, &e), ERR_INVAL);
  unlink(p);

  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  CHECK_EQ_INT(system(cmd), 0);
  CHECK_EQ_INT(schema_scan(dir, &f, &n, &e), ERR_IO);
  CHECK(strstr(e.msg, dir) != NULL);
}

static int count_of(const char *s, const char *needle)
{
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

TEST(scan_repo_migrations)
{
  /* The shipped migrations scan cleanly and split without error. */
  const char *src = getenv("MLOPSD_SRC");
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/sql/migrations", src ? src : ".");
  struct schema_file *f = NULL;
  int n = 0;
  struct err e = {0};
  REQUIRE(schema_scan(dir, &f, &n, &e) == ERR_OK);
  CHECK(n >= 2);
  CHECK_EQ_INT(f[0].version, 1);
  for (int i = 0; i < n; i++) {
    CHECK(i == 0 || f[i].version > f[i - 1].version);
    FILE *fp = fopen(f[i].path, "rb");
    REQUIRE(fp != NULL);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[len] = '\0';
    struct sqlsplit_list l;
    CHECK_EQ_INT(sqlsplit_split(buf, &l, &e), ERR_OK);
    CHECK(l.n >= 1);
    for (size_t k = 0; k < l.n; k++) {
      /* Never destructive, never outside the configured database, and
       * re-runnable (see docs/schema.md). */
      const char *q = l.v[k].sql;
      int ok = strstr(q, "DROP ") == NULL && strncmp(q, "USE ", 4) != 0 &&
               strstr(q, "CREATE DATABASE") == NULL &&
               ((strncmp(q, "CREATE ", 7) != 0 &&
                 strncmp(q, "ALTER ", 6) != 0) ||
                strstr(q, "IF NOT EXISTS") != NULL);
      /* 040 repartitions the log in one ALTER that restates the whole
       * key set (DROP PRIMARY KEY + ADD, DROP INDEX IF EXISTS + ADD) and
       * the partitioning: running it again gives the same table
       * (tests/integration/test_logpart applies it a second time) */
      if (!ok && f[i].version == 40 && strncmp(q, "ALTER TABLE ", 12) == 0 &&
          strstr(q, "ADD PRIMARY KEY") && strstr(q, "PARTITION BY RANGE"))
        ok = 1;
      /* a CHECK constraint restated: dropped if there and added again in
       * one ALTER (070 widens deployment's action check) */
      if (!ok && strncmp(q, "ALTER TABLE ", 12) == 0 &&
          strstr(q, "DROP CONSTRAINT IF EXISTS ") &&
          strstr(q, "ADD CONSTRAINT ") && strstr(q, " CHECK ") &&
          !strstr(strstr(q, "DROP CONSTRAINT IF EXISTS ") + 1, "DROP "))
        ok = 1;
      /* an index re-keyed: the new one added if missing and the old one
       * dropped if there, in one ALTER that drops nothing else (080
       * widens dag_run's unique key); no row is lost either way */
      if (!ok && strncmp(q, "ALTER TABLE ", 12) == 0 &&
          strstr(q, "ADD UNIQUE KEY IF NOT EXISTS ") &&
          count_of(q, "DROP ") == count_of(q, "DROP INDEX IF EXISTS "))
        ok = 1;
      /* a secondary index dropped if there, and nothing else (095 drops
       * the log's created_at index): no row is lost */
      if (!ok && strncmp(q, "DROP INDEX IF EXISTS ", 21) == 0 &&
          count_of(q, "DROP ") == 1 && strstr(q, " ON "))
        ok = 1;
      if (!ok)
        fprintf(stderr, "  %s:%d: not a safe re-runnable statement\n",
                f[i].name, l.v[k].line);
      CHECK(ok);
    }
    sqlsplit_list_free(&l);
  }
  free(f);
}

TEST(dir_choice)
{
  unsetenv(SCHEMA_DIR_ENV);
  CHECK_EQ_STR(schema_dir(NULL), SCHEMA_DIR_DEFAULT);
  CHECK_EQ_STR(schema_dir(""), SCHEMA_DIR_DEFAULT);
  setenv(SCHEMA_DIR_ENV, "/opt/x", 1);
  CHECK_EQ_STR(schema_dir(NULL), "/opt/x");
  CHECK_EQ_STR(schema_dir("mine"), "mine");
  setenv(SCHEMA_DIR_ENV, "", 1);
  CHECK_EQ_STR(schema_dir(NULL), SCHEMA_DIR_DEFAULT);
  unsetenv(SCHEMA_DIR_ENV);
}

int main(void)
{
  RUN(scan_dir);
  RUN(scan_repo_migrations);
  RUN(dir_choice);
  return check_done();
}
