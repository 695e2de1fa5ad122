/* test_schema.c - `mlopsd db init` and `mlopsd db seed` end to end: the
 * real binary ($MLOPSD_BIN, run from $MLOPSD_SRC) against the test
 * MariaDB, checked with queries through the db layer.
 *
 * Databases used (all created here, dropped first): it_schema (the main
 * flow), it_schema_ck (migration directory edits), it_schema_bad (broken
 * CSVs).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/db.h"
#include "mlopsd/schema.h"

#define DB_MAIN "it_schema"
#define DB_CK "it_schema_ck"
#define DB_BAD "it_schema_bad"

static char bin[256], src[256]; /* MLOPSD_BIN, MLOPSD_SRC */
static char tmpdir[256];

/* ------------------------------------------------------------- helpers */

/* Run mlopsd with args (NULL-terminated) in $MLOPSD_SRC with env changes
 * ("K=V" sets, "K" unsets; NULL-terminated, may be NULL). */
static void mlopsd(struct fx_run *r, const char *const *env,
                   const char *const *args)
{
  fx_run_bin(r, tmpdir, src, env, bin, args);
}

/* mlopsd with ENV and ARGS (as mlopsd()) exits 0; when not, what it said
 * is shown under WHAT.  1 or 0. */
static int ran_ok(struct fx_run *r, const char *const *env,
                  const char *const *args, const char *what)
{
  mlopsd(r, env, args);
  if (r->rc != 0)
    fx_show(what, r);
  return r->rc == 0;
}

/* First column of the first row of sql on database db as an integer;
 * -1 on any error (printed). */
static int64_t q1(const char *database, const char *sql)
{
  struct db_pool *p = fx_pool(database, 1);
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t v = -1;
  if (p && db_acquire(p, 10000, &c, &e) == ERR_OK &&
      db_query_i64(c, sql, NULL, 0, &v, &e) == ERR_OK) {
  } else {
    fprintf(stderr, "  query failed: %s: %s\n", sql, e.msg);
    v = -1;
  }
  db_release(p, c);
  db_pool_destroy(p);
  return v;
}

/* Run sql on database; 1 if it succeeded.  Failures are printed unless
 * quiet (for statements expected to fail). */
static int exec_q(const char *database, const char *sql, int quiet)
{
  struct db_pool *p = fx_pool(database, 1);
  int ok = p && fx_exec(p, sql, quiet) == 0;
  db_pool_destroy(p);
  return ok;
}

static int exec_on(const char *database, const char *sql)
{
  return exec_q(database, sql, 0);
}

static int copy_file(const char *from, const char *to)
{
  FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
  int ok = a && b;
  char buf[65536];
  size_t n;
  while (ok && (n = fread(buf, 1, sizeof(buf), a)) > 0)
    ok = fwrite(buf, 1, n, b) == n;
  if (a)
    fclose(a);
  if (b && fclose(b) != 0)
    ok = 0;
  return ok;
}

static int write_text(const char *path, const char *mode, const char *text)
{
  FILE *f = fopen(path, mode);
  if (!f)
    return 0;
  fputs(text, f);
  return fclose(f) == 0;
}

/* Number of shipped migrations; *top gets the highest version. */
static int n_migrations(int *top)
{
  char dir[600];
  snprintf(dir, sizeof(dir), "%s/sql/migrations", src);
  struct schema_file *f = NULL;
  int n = 0;
  struct err e = {0};
  *top = -1;
  if (schema_scan(dir, &f, &n, &e) != ERR_OK)
    return -1;
  if (n > 0)
    *top = f[n - 1].version;
  free(f);
  return n;
}

static const char *const env_main[] = {"MLOPSD_DATABASE_NAME=" DB_MAIN,
                                       "MLOPSD_SQL_DIR", NULL};

/* --------------------------------------------------------------- tests */

TEST(init_twice)
{
  struct fx_run r;
  const char *init[] = {"db", "init", NULL};
  REQUIRE(ran_ok(&r, env_main, init, "init 1"));
  CHECK(strstr(r.out, "created database " DB_MAIN) != NULL);
  CHECK(strstr(r.out, "applied 001_course_tables.sql") != NULL);
  CHECK(strstr(r.out, "applied 002_mlopsd_tables.sql") != NULL);
  int top;
  int n = n_migrations(&top);
  CHECK(n >= 2);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM schema_version"), n);

  CHECK(ran_ok(&r, env_main, init, "init 2"));
  char want[64];
  snprintf(want, sizeof(want), "schema up to date (version %d)\n", top);
  CHECK_EQ_STR(r.out, want);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM schema_version"), n);

  /* Every table, with the course's columns. */
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(*) FROM information_schema.TABLES "
                  "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("
                  "'customer_info','credit_score','credit_score_features',"
                  "'credit_score_features_target',"
                  "'credit_predictions_api_log','schema_version','dag',"
                  "'dag_run','task_instance','task_log','deployment',"
                  "'drift_report','live_metrics')"),
               13);
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(*) FROM information_schema.COLUMNS "
                  "WHERE TABLE_SCHEMA = DATABASE() "
                  "AND TABLE_NAME = 'credit_score_features'"),
               27);
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(*) FROM information_schema.COLUMNS "
                  "WHERE TABLE_SCHEMA = DATABASE() "
                  "AND TABLE_NAME = 'credit_score_features_target'"),
               27);
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(DISTINCT INDEX_NAME) FROM "
                  "information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                  "DATABASE() AND INDEX_NAME IN ("
                  "'credit_score_customer_date',"
                  "'dag_run_dag_logical_us','task_instance_run_task',"
                  "'task_instance_state_next','task_log_attempt')"),
               5);
  /* The prediction log keeps its two keys (id, exactly-once) and nothing
   * else: 095 dropped the created_at index, partitions serve the time
   * windows (issue 16). */
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(DISTINCT INDEX_NAME) FROM "
                  "information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                  "DATABASE() AND TABLE_NAME = 'credit_predictions_api_log'"),
               2);
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(DISTINCT INDEX_NAME) FROM "
                  "information_schema.STATISTICS WHERE TABLE_SCHEMA = "
                  "DATABASE() AND TABLE_NAME = 'credit_predictions_api_log'"
                  " AND NON_UNIQUE = 0 AND INDEX_NAME IN ('PRIMARY',"
                  "'credit_predictions_api_log_seq')"),
               2);
  /* Course partitioning kept. */
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(*) FROM information_schema.PARTITIONS "
                  "WHERE TABLE_SCHEMA = DATABASE() "
                  "AND TABLE_NAME = 'credit_score'"),
               8);
  /* A logical date runs once per DAG; states are checked. */
  CHECK(exec_on(DB_MAIN,
                "INSERT INTO dag_run (run_id, dag_id, logical_date, "
                "run_type) VALUES ('r1', 'd', '2025-09-01', 'manual')"));
  CHECK_EQ_INT(exec_q(DB_MAIN,
                      "INSERT INTO dag_run (run_id, dag_id, logical_date, "
                      "run_type) VALUES ('r2', 'd', '2025-09-01', "
                      "'scheduled')",
                      1),
               0);
  CHECK_EQ_INT(exec_q(DB_MAIN,
                      "UPDATE dag_run SET state = 'bogus' "
                      "WHERE run_id = 'r1'",
                      1),
               0);
  CHECK(exec_on(DB_MAIN, "DELETE FROM dag_run"));
}

TEST(seed_twice)
{
  struct fx_run r;
  const char *seed[] = {"db", "seed", NULL};
  REQUIRE(ran_ok(&r, env_main, seed, "seed 1"));
  CHECK(strstr(r.out, "customer_info: 20000 rows (20000 new)") != NULL);
  CHECK(strstr(r.out, "credit_score: 20000 rows (20000 new)") != NULL);
  CHECK(strstr(r.out, "credit_score_features: 3414 rows (3414 new)") !=
        NULL);
  fprintf(stderr, "  first seed: %s", r.out);

  const char *seed_dir[] = {"db", "seed", "--dir", "sql/data", NULL};
  CHECK(ran_ok(&r, env_main, seed_dir, "seed 2"));
  CHECK(strstr(r.out, "customer_info: 20000 rows (0 new)") != NULL);
  CHECK(strstr(r.out, "credit_score: 20000 rows (0 new)") != NULL);
  CHECK(strstr(r.out, "credit_score_features: 3414 rows (0 new)") != NULL);

  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM customer_info"), 20000);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score"), 20000);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score_features"),
               3414);
}

TEST(seed_values)
{
  /* Empty fields are NULL, with the README's counts. */
  static const struct {
    const char *col;
    int nulls;
  } want[] = {{"credit_mix", 520},
              {"type_of_loan", 259},
              {"payment_behaviour", 224},
              {"occupation", 191},
              {"amount_invested_monthly", 111},
              {"num_of_loan", 102},
              {"total_emi_per_month", 76},
              {"changed_credit_limit", 57},
              {"age", 56},
              {"num_credit_card", 53},
              {"interest_rate", 51},
              {"num_credit_inquiries", 36},
              {"num_bank_accounts", 32},
              {"num_of_delayed_payment", 32},
              {"annual_income", 0},
              {"monthly_balance", 0}};
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM credit_score_features WHERE `%s` IS NULL",
             want[i].col);
    int64_t got = q1(DB_MAIN, sql);
    if (got != want[i].nulls)
      fprintf(stderr, "  column %s\n", want[i].col);
    CHECK_EQ_INT(got, want[i].nulls);
  }
  /* ... not 0 or '': */
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score_features "
                           "WHERE credit_mix = ''"),
               0);
  /* ssn "957109944.0" -> 957109944; "" escapes; numbers. */
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT ssn FROM customer_info WHERE id = '22794' "
                           "AND customer_id = '31182'"),
               957109944);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM customer_info WHERE id = "
                           "'20682' AND name = 'Eileen OGrady\"t'"),
               1);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM customer_info "
                           "WHERE ssn IS NULL OR name IS NULL"),
               0);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score_features "
                           "WHERE id = '36942' AND type_of_loan = 'not "
                           "specified,auto loan,mortgage loan,student loan' "
                           "AND ABS(monthly_inhand_salary - 2537.47) < 0.01"),
               1);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score "
                           "WHERE credit_score NOT IN "
                           "('Good', 'Standard', 'Poor')"),
               0);
  /* The non-dates load as they are. */
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM credit_score "
                           "WHERE date = '2025-02-29'"),
               92);
  CHECK_EQ_INT(q1(DB_MAIN, "SELECT COUNT(*) FROM customer_info "
                           "WHERE date = '2025-02-29'"),
               92);
}

TEST(course_feature_join)
{
  /* The course's feature query (sql/features.sql without the INSERT):
   * labels of the month before the logical date joined with features. */
  static const char *const q =
      "SELECT COUNT(*) FROM credit_score_features AS f "
      "JOIN (SELECT id, customer_id, date, credit_score FROM credit_score "
      "WHERE date BETWEEN DATE_SUB(DATE('%s'), INTERVAL 1 MONTH) "
      "AND DATE('%s')) AS s "
      "ON f.id = s.id AND f.customer_id = s.customer_id";
  char sql[512];
  snprintf(sql, sizeof(sql), q, "2025-09-01", "2025-09-01");
  CHECK_EQ_INT(q1(DB_MAIN, sql), 2500);
  snprintf(sql, sizeof(sql), q, "2025-02-01", "2025-02-01");
  CHECK_EQ_INT(q1(DB_MAIN, sql), 914);
  snprintf(sql, sizeof(sql), q, "2025-05-01", "2025-05-01");
  CHECK_EQ_INT(q1(DB_MAIN, sql), 0);
  /* The same with the key-and-date join of the label tables. */
  CHECK_EQ_INT(q1(DB_MAIN,
                  "SELECT COUNT(*) FROM credit_score_features f "
                  "JOIN credit_score s ON f.id = s.id AND f.customer_id = "
                  "s.customer_id AND f.date = s.date "
                  "WHERE s.date BETWEEN '2025-08-01' AND '2025-08-31'"),
               2500);
}

TEST(wrong_password)
{
  struct fx_run r;
  const char *secret = "Wr0ng-pw-7f3a9c";
  const char *env[] = {"MLOPSD_DATABASE_NAME=" DB_MAIN,
                       "MLOPSD_DATABASE_PASSWORD=Wr0ng-pw-7f3a9c", NULL};
  const char *init[] = {"db", "init", NULL};
  mlopsd(&r, env, init);
  CHECK_EQ_INT(r.rc, 1);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strncmp(r.err, "mlopsd: db init: cannot connect to MariaDB at ",
                46) == 0);
  CHECK(strstr(r.err, "Access denied") != NULL);
  CHECK(strstr(r.err, secret) == NULL);
  CHECK(strstr(r.out, secret) == NULL);
  if (r.rc != 1 || fx_count_lines(r.err) != 1)
    fx_show("wrong password", &r);
  const char *seed[] = {"db", "seed", NULL};
  mlopsd(&r, env, seed);
  CHECK_EQ_INT(r.rc, 1);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strstr(r.err, secret) == NULL);
}

TEST(bad_config_and_usage)
{
  char cfgf[300];
  snprintf(cfgf, sizeof(cfgf), "%s/bad.yaml", tmpdir);
  REQUIRE(write_text(cfgf, "w", "database:\n  hostname: db\n"));
  struct fx_run r;
  const char *init[] = {"-c", cfgf, "db", "init", NULL};
  mlopsd(&r, env_main, init);
  CHECK_EQ_INT(r.rc, 2);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strstr(r.err, cfgf) != NULL);
  CHECK(strstr(r.err, "hostname") != NULL);
  if (r.rc != 2)
    fx_show("bad config", &r);
  /* -c after the command works too. */
  const char *seed[] = {"db", "seed", "-c", cfgf, NULL};
  mlopsd(&r, env_main, seed);
  CHECK_EQ_INT(r.rc, 2);

  const char *help[] = {"db", "--help", NULL};
  mlopsd(&r, env_main, help);
  CHECK_EQ_INT(r.rc, 0);
  CHECK(strstr(r.out, "db init") != NULL && strstr(r.out, "--sql-dir"));
  const char *none[] = {"db", NULL};
  mlopsd(&r, env_main, none);
  CHECK_EQ_INT(r.rc, 2);
  const char *bogus[] = {"db", "frobnicate", NULL};
  mlopsd(&r, env_main, bogus);
  CHECK_EQ_INT(r.rc, 2);
  CHECK(strstr(r.err, "frobnicate") != NULL);
  const char *badopt[] = {"db", "init", "--dir", "x", NULL};
  mlopsd(&r, env_main, badopt);
  CHECK_EQ_INT(r.rc, 2);
  const char *noarg[] = {"db", "seed", "--dir", NULL};
  mlopsd(&r, env_main, noarg);
  CHECK_EQ_INT(r.rc, 2);
  const char *badname_env[] = {"MLOPSD_DATABASE_NAME=x`; DROP", NULL};
  mlopsd(&r, badname_env, (const char *[]){"db", "init", NULL});
  CHECK_EQ_INT(r.rc, 2);
}

/* A private copy of the tree's sql/SUB files NAMES (NULL-terminated) in
 * tmpdir/SUB, whose path goes to DIR; 0, or -1 with a failed check naming
 * the step. */
static int copy_into(const char *sub, const char *const *names, char *dir,
                     size_t cap)
{
  char from[700], to[700];
  snprintf(dir, cap, "%s/%s", tmpdir, sub);
  if (mkdir(dir, 0755) != 0) {
    check_fail_at(__FILE__, __LINE__, "mkdir %s: %s", dir, strerror(errno));
    return -1;
  }
  for (size_t i = 0; names[i]; i++) {
    snprintf(from, sizeof(from), "%s/sql/%s/%s", src, sub, names[i]);
    snprintf(to, sizeof(to), "%s/%s", dir, names[i]);
    if (!copy_file(from, to)) {
      check_fail_at(__FILE__, __LINE__, "cannot copy %s to %s", from, to);
      return -1;
    }
  }
  return 0;
}

TEST(migration_dir_changes)
{
  /* A private copy of the migrations, selected by MLOPSD_SQL_DIR and by
   * --sql-dir (which wins). */
  char dir[300], from[700], to[700];
  static const char *const names[] = {"001_course_tables.sql",
                                      "002_mlopsd_tables.sql", NULL};
  REQUIRE(copy_into("migrations", names, dir, sizeof(dir)) == 0);
  char envdir[400];
  snprintf(envdir, sizeof(envdir), "MLOPSD_SQL_DIR=%s", dir);
  const char *env[] = {"MLOPSD_DATABASE_NAME=" DB_CK, envdir, NULL};
  const char *env_bad[] = {"MLOPSD_DATABASE_NAME=" DB_CK,
                           "MLOPSD_SQL_DIR=/nonexistent/sql", NULL};
  const char *init[] = {"db", "init", NULL};
  struct fx_run r;
  mlopsd(&r, env_bad, init);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "/nonexistent/sql") != NULL);
  const char *init_dir[] = {"db", "init", "--sql-dir", dir, NULL};
  CHECK(ran_ok(&r, env_bad, init_dir, "init --sql-dir"));
  CHECK(strstr(r.out, "applied 002_mlopsd_tables.sql") != NULL);

  /* A new migration is applied alone. */
  snprintf(to, sizeof(to), "%s/003_extra.sql", dir);
  REQUIRE(write_text(to, "w",
                     "-- extra; not a split point\n"
                     "CREATE TABLE IF NOT EXISTS extra (\n"
                     "  a int, b varchar(20) DEFAULT 'x;'\n"
                     ");\n"
                     "INSERT INTO extra VALUES (1, 'semi;\ncolon');\n"));
  CHECK(ran_ok(&r, env, init, "003"));
  CHECK(strstr(r.out, "applied 003_extra.sql (2 statements") != NULL);
  CHECK(strstr(r.out, "001_") == NULL);
  CHECK(strstr(r.out, "schema at version 3") != NULL);
  CHECK_EQ_INT(q1(DB_CK, "SELECT COUNT(*) FROM extra WHERE b LIKE "
                         "'semi;%'"),
               1);

  /* A failing migration names file and line and is not recorded. */
  snprintf(to, sizeof(to), "%s/004_bad.sql", dir);
  REQUIRE(write_text(to, "w",
                     "CREATE TABLE IF NOT EXISTS t4 (x int);\n\n"
                     "SELEC oops;\n"));
  mlopsd(&r, env, init);
  CHECK_EQ_INT(r.rc, 1);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strstr(r.err, "004_bad.sql:3") != NULL);
  CHECK_EQ_INT(q1(DB_CK, "SELECT COUNT(*) FROM schema_version"), 3);
  /* Fixed before it was ever recorded: fine. */
  REQUIRE(write_text(to, "w", "CREATE TABLE IF NOT EXISTS t4 (x int);\n"));
  mlopsd(&r, env, init);
  CHECK_EQ_INT(r.rc, 0);
  CHECK_EQ_INT(q1(DB_CK, "SELECT MAX(version) FROM schema_version"), 4);

  /* Editing an applied migration is refused, naming the file. */
  snprintf(to, sizeof(to), "%s/002_mlopsd_tables.sql", dir);
  REQUIRE(write_text(to, "a", "-- edited\n"));
  mlopsd(&r, env, init);
  CHECK_EQ_INT(r.rc, 1);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strstr(r.err, "002_mlopsd_tables.sql") != NULL);
  CHECK(strstr(r.err, "checksum mismatch") != NULL);
  if (r.rc != 1)
    fx_show("checksum", &r);
  /* So is a recorded migration whose file is gone. */
  snprintf(from, sizeof(from), "%s/sql/migrations/002_mlopsd_tables.sql",
           src);
  REQUIRE(copy_file(from, to));
  snprintf(to, sizeof(to), "%s/003_extra.sql", dir);
  REQUIRE(unlink(to) == 0);
  mlopsd(&r, env, init);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "003_extra.sql") != NULL);
}

TEST(seed_bad_csv)
{
  struct fx_run r;
  const char *env[] = {"MLOPSD_DATABASE_NAME=" DB_BAD, "MLOPSD_SQL_DIR",
                       NULL};
  const char *seed0[] = {"db", "seed", NULL};
  mlopsd(&r, env, seed0); /* before init: the database is missing */
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "db init") != NULL);
  mlopsd(&r, env, (const char *[]){"db", "init", NULL});
  REQUIRE(r.rc == 0);

  char dir[300], from[700], to[700];
  static const char *const files[] = {"customer_info.csv", "credit_score.csv",
                                      NULL};
  REQUIRE(copy_into("data", files, dir, sizeof(dir)) == 0);
  const char *seed[] = {"db", "seed", "--dir", dir, NULL};
  mlopsd(&r, env, seed); /* third file missing: nothing loads */
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "credit_score_features.csv") != NULL);
  CHECK_EQ_INT(q1(DB_BAD, "SELECT COUNT(*) FROM customer_info"), 0);

  /* Features with a bad number on line 3000, after some batches went in:
   * the table is rolled back, the tables before it stay loaded. */
  snprintf(from, sizeof(from), "%s/sql/data/credit_score_features.csv", src);
  snprintf(to, sizeof(to), "%s/credit_score_features.csv", dir);
  FILE *in = fopen(from, "r"), *out = fopen(to, "w");
  REQUIRE(in && out);
  char line[4096];
  int ln = 0;
  while (fgets(line, sizeof(line), in)) {
    ln++;
    if (ln == 3000) {
      /* id,customer_id,date,name,age,...: make age "4x5". */
      char *p = line;
      for (int k = 0; k < 4; k++)
        p = strchr(p, ',') + 1;
      char *q = strchr(p, ',');
      char rest[4096];
      snprintf(rest, sizeof(rest), "%s", q);
      snprintf(p, sizeof(line) - (size_t)(p - line), "4x5%s", rest);
    }
    fputs(line, out);
  }
  fclose(in);
  fclose(out);
  mlopsd(&r, env, seed);
  CHECK_EQ_INT(r.rc, 1);
  CHECK_EQ_INT(fx_count_lines(r.err), 1);
  CHECK(strstr(r.err, "credit_score_features.csv:3000: column age: '4x5' "
                      "is not a number") != NULL);
  if (r.rc != 1)
    fx_show("bad csv", &r);
  CHECK_EQ_INT(q1(DB_BAD, "SELECT COUNT(*) FROM customer_info"), 20000);
  CHECK_EQ_INT(q1(DB_BAD, "SELECT COUNT(*) FROM credit_score_features"), 0);

  /* A short row. */
  REQUIRE(write_text(to, "w",
                     "id,customer_id,date,name,age,ssn,occupation,"
                     "annual_income,monthly_inhand_salary,num_bank_accounts,"
                     "num_credit_card,interest_rate,num_of_loan,type_of_loan,"
                     "delay_from_due_date,num_of_delayed_payment,"
                     "changed_credit_limit,num_credit_inquiries,credit_mix,"
                     "outstanding_debt,credit_utilization_ratio,"
                     "credit_history_age,payment_of_min_amount,"
                     "total_emi_per_month,amount_invested_monthly,"
                     "payment_behaviour,monthly_balance\n"
                     "1,2,2025-01-01,x\n"));
  mlopsd(&r, env, seed);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "credit_score_features.csv:2: 4 fields, expected 27") !=
        NULL);
  /* A wrong header. */
  REQUIRE(write_text(to, "w", "id,customer,date\n"));
  mlopsd(&r, env, seed);
  CHECK_EQ_INT(r.rc, 1);
  CHECK(strstr(r.err, "header column 2 is 'customer', expected "
                      "'customer_id'") != NULL);
  CHECK_EQ_INT(q1(DB_BAD, "SELECT COUNT(*) FROM credit_score_features"), 0);
}

int main(void)
{
  if (fx_env("test_schema", src, sizeof(src), bin, sizeof(bin)))
    return 1;
  if (fx_tmpdir(tmpdir, sizeof(tmpdir), "it-schema"))
    return 1;
  if (!exec_on(NULL, "DROP DATABASE IF EXISTS " DB_MAIN) ||
      !exec_on(NULL, "DROP DATABASE IF EXISTS " DB_CK) ||
      !exec_on(NULL, "DROP DATABASE IF EXISTS " DB_BAD))
    return 1;
  RUN(init_twice);
  RUN(seed_twice);
  RUN(seed_values);
  RUN(course_feature_join);
  RUN(wrong_password);
  RUN(bad_config_and_usage);
  RUN(migration_dir_changes);
  RUN(seed_bad_csv);
  fx_rmtree(tmpdir);
  return check_done();
}
