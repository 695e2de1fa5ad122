/* cli_db.c - `mlopsd db init`, `db seed`, `db load-archive` and
 * `db clean`.
 *
 * init: create the configured database if missing, then apply the
 * migrations of the SQL directory (schema.c).  seed: load the sample CSVs
 * (seed.c).  Both connect with the [database] settings of the config; a
 * failure is one line on stderr, "mlopsd: db init: <what>: <detail>", and
 * exit 1; a bad command line exits 2.  The password never appears in
 * output: it is not part of any message we build, and connection errors
 * from the server are scrubbed of it as well.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/cli.h"
#include "mlopsd/db.h"
#include "mlopsd/dbclean.h"
#include "mlopsd/logpart.h"
#include "mlopsd/schema.h"
#include "mlopsd/seed.h"

/* How long a CLI command waits for a connection (and reconnects). */
#define DB_CLI_ACQUIRE_MS_MIN 1000
/* Bounds a hung server; migrations and seeding take seconds. */
#define DB_CLI_READ_TIMEOUT_S 600

static void usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] db init [--sql-dir DIR]\n"
          "       mlopsd [-c FILE] db seed [--dir DIR]\n"
          "       mlopsd [-c FILE] db load-archive FILE [--table T]\n"
          "       mlopsd [-c FILE] db clean --older-than AGE [--dry-run]\n"
          "                                 [--batch N]\n"
          "\n"
          "init  create the configured database if it does not exist and\n"
          "      apply the migrations (NNN_name.sql) not applied yet, in\n"
          "      order, recording each in schema_version; running it again\n"
          "      is a no-op.  A migration edited after it was applied is an\n"
          "      error (checksum mismatch).\n"
          "      --sql-dir DIR  migrations directory (default:\n"
          "                     $" SCHEMA_DIR_ENV " or " SCHEMA_DIR_DEFAULT
          ")\n"
          "seed  load customer_info.csv, credit_score.csv and\n"
          "      credit_score_features.csv into the course tables; rows\n"
          "      already present are kept, so running it again adds\n"
          "      nothing.  Empty fields become NULL.\n"
          "      --dir DIR      data directory (default: " SEED_DIR_DEFAULT
          ")\n"
          "load-archive  load a prediction log partition archived before\n"
          "      retention dropped it (logging.archive_dir,\n"
          "      TABLE.PARTITION.jsonl.gz) back; ids, times and keys are\n"
          "      kept, so loading it again adds nothing.\n"
          "      --table T      target table with the log's columns\n"
          "                     (default: credit_predictions_api_log)\n"
          "clean  remove finished DAG runs older than AGE (N days, or Nd,\n"
          "      Nh, Nm, Ns) with their task instances and task logs, and\n"
          "      drift reports older than AGE; each DAG's newest run and\n"
          "      each model's newest report stay; running and queued runs\n"
          "      are never touched.  DELETEs of at most N rows (--batch,\n"
          "      default 1000), each waiting at most 2 s for a lock.\n"
          "      --dry-run      print what would go, change nothing\n"
          "\n"
          "The connection comes from the database section of the config\n"
          "(MLOPSD_DATABASE_HOST, _PORT, _USER, _NAME, _SOCKET and the\n"
          "password from MLOPSD_DATABASE_PASSWORD or a file).\n"
          "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

/* Replace every occurrence of secret in msg by "***" and newlines by
 * spaces.  db.c never puts the password in a message; this guards the
 * connection errors, the one place where server text and credentials
 * meet, in case a server or proxy echoes it. */
static void scrub(char *msg, size_t cap, const char *secret)
{
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  size_t sl = secret ? strlen(secret) : 0;
  if (sl == 0)
    return;
  char *p;
  while ((p = strstr(msg, secret)) != NULL) {
    size_t tail = strlen(p + sl);
    if ((size_t)(p - msg) + 3 + tail + 1 > cap)
      tail = cap - (size_t)(p - msg) - 4;
    memmove(p + 3, p + sl, tail);
    p[3 + tail] = '\0';
    memcpy(p, "***", 3);
  }
}

static int fail(const char *what, struct err *e)
{
  for (char *p = e->msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "mlopsd: db %s: %s\n", what, e->msg);
  return CLI_FAIL;
}

/* Create a pool for database (NULL: none) and take one connection. */
static enum err_code open_conn(const struct cfg *c, const char *database,
                             struct db_pool **pool, struct db_conn **conn,
                             struct err *e)
{
  struct db_opts o;
  db_opts_from_cfg(&o, c, c->db_pool > 0 ? c->db_pool : 1,
                   DB_CLI_READ_TIMEOUT_S);
  o.database = database;
  *conn = NULL;
  enum err_code rc = db_pool_create(pool, &o, e);
  if (rc != ERR_OK)
    return rc;
  int ms = c->db_connect_timeout_s * 1000;
  if (ms < DB_CLI_ACQUIRE_MS_MIN)
    ms = DB_CLI_ACQUIRE_MS_MIN;
  rc = db_acquire(*pool, ms, conn, e);
  if (rc != ERR_OK) {
    /* db.c says "cannot connect to database USER@WHERE<rest>"; keep its
     * <rest> (attempts, server message) under our own wording. */
    static const char pre[] = "cannot connect to database ";
    const char *rest = e->msg;
    if (strncmp(rest, pre, sizeof(pre) - 1) == 0) {
      const char *a = strstr(rest + sizeof(pre) - 1, ": ");
      const char *b = strstr(rest + sizeof(pre) - 1, " (");
      const char *cut = a && (!b || a < b) ? a : b;
      if (cut)
        rest = cut;
    }
    char ep[600], detail[ERR_MSG_MAX + 4];
    cli_db_endpoint(c, ep, sizeof(ep));
    snprintf(detail, sizeof(detail), "%s%s", rest == e->msg ? ": " : "",
             rest);
    scrub(detail, sizeof(detail), c->db_password);
    if (strstr(detail, "Unknown database"))
      err_set(e, rc,
              "database %s does not exist at %s (run mlopsd db init "
              "first)",
              database, ep);
    else
      err_set(e, rc, "cannot connect to MariaDB at %s as %s%s", ep,
              c->db_user, detail);
    db_pool_destroy(*pool);
    *pool = NULL;
  }
  return rc;
}

static void disconnect(struct db_pool *pool, struct db_conn *conn)
{
  db_release(pool, conn);
  db_pool_destroy(pool);
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Parse "--NAME DIR" / "--NAME=DIR" (the only option of each command).
 * Returns CLI_OK, or CLI_USAGE after printing why. */
static int parse_dir_opt(int argc, char **argv, const char *sub,
                         const char *opt, const char **dir)
{
  size_t ol = strlen(opt);
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, opt) == 0) {
      if (i + 1 >= argc || argv[i + 1][0] == '\0') {
        fprintf(stderr, "mlopsd: db %s: option %s needs a DIR argument\n",
                sub, opt);
        return CLI_USAGE;
      }
      *dir = argv[++i];
    } else if (strncmp(a, opt, ol) == 0 && a[ol] == '=') {
      if (a[ol + 1] == '\0') {
        fprintf(stderr, "mlopsd: db %s: option %s needs a DIR argument\n",
                sub, opt);
        return CLI_USAGE;
      }
      *dir = a + ol + 1;
    } else {
      fprintf(stderr,
              "mlopsd: db %s: unexpected argument '%s' (try mlopsd db "
              "--help)\n",
              sub, a);
      return CLI_USAGE;
    }
  }
  return CLI_OK;
}

static void on_applied(void *user, const struct schema_file *f, int nst,
                       double ms)
{
  (void)user;
  printf("applied %s (%d statements, %.0f ms)\n", f->name, nst, ms);
  fflush(stdout);
}

/* CREATE DATABASE IF NOT EXISTS, unless it is there (so a user without
 * the CREATE privilege can still init a database made for it). */
static enum err_code ensure_database(const struct cfg *c, int *created,
                                     struct err *e)
{
  struct db_pool *pool;
  struct db_conn *conn;
  *created = 0;
  enum err_code rc = open_conn(c, NULL, &pool, &conn, e);
  if (rc != ERR_OK)
    return rc;
  int64_t n = 0;
  struct db_val p[1] = {DB_V_STR(c->db_name)};
  rc = db_query_i64(conn,
                    "SELECT COUNT(*) FROM information_schema.SCHEMATA "
                    "WHERE SCHEMA_NAME = ?",
                    p, 1, &n, e);
  if (rc == ERR_OK && n == 0) {
    char sql[256];
    /* The name passed db_ident_ok, so it can be quoted as is. */
    snprintf(sql, sizeof(sql),
             "CREATE DATABASE IF NOT EXISTS `%s` CHARACTER SET utf8mb4",
             c->db_name);
    int64_t aff = 0;
    rc = db_exec(conn, sql, &aff, e);
    if (rc == ERR_OK)
      *created = aff > 0;
    else
      err_prefix(e, "creating database %s", c->db_name);
  }
  disconnect(pool, conn);
  return rc;
}

static int check_name(const struct cfg *c, const char *sub)
{
  if (!db_ident_ok(c->db_name)) {
    fprintf(stderr,
            "mlopsd: db %s: database name '%s' (database.name) must be a "
            "plain identifier: letters, digits and _, not starting with a "
            "digit, at most 64 characters\n",
            sub, c->db_name);
    return CLI_USAGE;
  }
  return CLI_OK;
}

static int db_init(int argc, char **argv)
{
  const char *dir_opt = NULL;
  int rc = parse_dir_opt(argc, argv, "init", "--sql-dir", &dir_opt);
  if (rc != CLI_OK)
    return rc;
  struct cfg c;
  if ((rc = cli_load_config(&c)) != CLI_OK)
    return rc;
  if ((rc = check_name(&c, "init")) != CLI_OK)
    return rc;
  const char *dir = schema_dir(dir_opt);
  struct err e = {0};
  int created = 0;
  if (ensure_database(&c, &created, &e) != ERR_OK)
    return fail("init", &e);
  if (created)
    printf("created database %s\n", c.db_name);
  struct db_pool *pool;
  struct db_conn *conn;
  if (open_conn(&c, c.db_name, &pool, &conn, &e) != ERR_OK)
    return fail("init", &e);
  struct schema_result res;
  enum err_code erc = schema_migrate(conn, dir, on_applied, NULL, &res, &e);
  disconnect(pool, conn);
  if (erc != ERR_OK)
    return fail("init", &e);
  if (res.applied == 0)
    printf("schema up to date (version %d)\n", res.version);
  else
    printf("schema at version %d (%d migration%s applied now, %d in all)\n",
           res.version, res.applied, res.applied == 1 ? "" : "s",
           res.total);
  return CLI_OK;
}

static void on_table(void *user, const struct seed_result *r)
{
  (void)user;
  printf("%s: %lld rows (%lld new) in %.0f ms\n", r->table,
         (long long)r->rows, (long long)r->inserted, r->ms);
  fflush(stdout);
}

static int db_seed(int argc, char **argv)
{
  const char *dir = NULL;
  int rc = parse_dir_opt(argc, argv, "seed", "--dir", &dir);
  if (rc != CLI_OK)
    return rc;
  struct cfg c;
  if ((rc = cli_load_config(&c)) != CLI_OK)
    return rc;
  if ((rc = check_name(&c, "seed")) != CLI_OK)
    return rc;
  struct err e = {0};
  struct db_pool *pool;
  struct db_conn *conn;
  if (open_conn(&c, c.db_name, &pool, &conn, &e) != ERR_OK)
    return fail("seed", &e);
  double t0 = now_ms();
  struct seed_result res[SEED_NTABLES];
  enum err_code erc = seed_load(conn, dir, on_table, NULL, res, &e);
  disconnect(pool, conn);
  if (erc != ERR_OK)
    return fail("seed", &e);
  int64_t rows = 0, fresh = 0;
  for (int i = 0; i < SEED_NTABLES; i++) {
    rows += res[i].rows;
    fresh += res[i].inserted;
  }
  printf("seeded %lld rows (%lld new) in %.2f s\n", (long long)rows,
         (long long)fresh, (now_ms() - t0) / 1e3);
  return CLI_OK;
}

static int db_load_archive(int argc, char **argv)
{
  const char *file = NULL, *table = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--table") == 0 && i + 1 < argc) {
      table = argv[++i];
    } else if (strncmp(argv[i], "--table=", 8) == 0) {
      table = argv[i] + 8;
    } else if (argv[i][0] != '-' && !file) {
      file = argv[i];
    } else {
      fprintf(stderr, "mlopsd: db load-archive: unexpected argument '%s' "
                      "(try mlopsd db --help)\n",
              argv[i]);
      return CLI_USAGE;
    }
  }
  if (!file) {
    fprintf(stderr, "mlopsd: db load-archive: which FILE? (try mlopsd db "
                    "--help)\n");
    return CLI_USAGE;
  }
  if (table && !db_ident_ok(table)) {
    fprintf(stderr, "mlopsd: db load-archive: --table '%s' is not a plain "
                    "table name\n",
            table);
    return CLI_USAGE;
  }
  struct cfg c;
  int rc;
  if ((rc = cli_load_config(&c)) != CLI_OK)
    return rc;
  if ((rc = check_name(&c, "load-archive")) != CLI_OK)
    return rc;
  struct err e = {0};
  struct db_pool *pool;
  struct db_conn *conn;
  if (open_conn(&c, c.db_name, &pool, &conn, &e) != ERR_OK)
    return fail("load-archive", &e);
  db_release(pool, conn);
  int64_t rows = 0, added = 0;
  double t0 = now_ms();
  enum err_code erc =
      logpart_load_archive(pool, file, table, &rows, &added, &e);
  db_pool_destroy(pool);
  if (erc != ERR_OK)
    return fail("load-archive", &e);
  printf("%s: %lld rows (%lld new) into %s in %.2f s\n", file,
         (long long)rows, (long long)added,
         table ? table : "credit_predictions_api_log",
         (now_ms() - t0) / 1e3);
  return CLI_OK;
}

static int db_clean(int argc, char **argv)
{
  struct dbclean_opts o = {0};
  const char *age = NULL;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--older-than") == 0 && i + 1 < argc)
      age = argv[++i];
    else if (strncmp(a, "--older-than=", 13) == 0)
      age = a + 13;
    else if (strcmp(a, "--dry-run") == 0)
      o.dry_run = 1;
    else if ((strcmp(a, "--batch") == 0 && i + 1 < argc) ||
             strncmp(a, "--batch=", 8) == 0) {
      const char *v = a[7] == '=' ? a + 8 : argv[++i];
      char *end;
      long b = strtol(v, &end, 10);
      if (*end || b < 1 || b > 100000) {
        fprintf(stderr, "mlopsd: db clean: --batch '%s': expected 1..100000 "
                        "rows\n",
                v);
        return CLI_USAGE;
      }
      o.batch = (int)b;
    } else {
      fprintf(stderr, "mlopsd: db clean: unexpected argument '%s' (try "
                      "mlopsd db --help)\n",
              a);
      return CLI_USAGE;
    }
  }
  if (!age) {
    fprintf(stderr, "mlopsd: db clean: --older-than AGE is required (e.g. "
                    "--older-than 30 for 30 days)\n");
    return CLI_USAGE;
  }
  o.older_than_s = dbclean_parse_age(age);
  if (o.older_than_s <= 0) {
    fprintf(stderr, "mlopsd: db clean: --older-than '%s': expected a "
                    "positive number of days, or N followed by d, h, m or "
                    "s\n",
            age);
    return CLI_USAGE;
  }
  struct cfg c;
  int rc;
  if ((rc = cli_load_config(&c)) != CLI_OK)
    return rc;
  if ((rc = check_name(&c, "clean")) != CLI_OK)
    return rc;
  struct err e = {0};
  struct db_pool *pool;
  struct db_conn *conn;
  if (open_conn(&c, c.db_name, &pool, &conn, &e) != ERR_OK)
    return fail("clean", &e);
  db_release(pool, conn);
  struct dbclean_result r;
  enum err_code erc = dbclean_run(pool, &o, &r, &e);
  db_pool_destroy(pool);
  const char *verb = o.dry_run ? "would remove" : "removed";
  printf("dag_run: %s %lld rows\n"
         "task_instance: %s %lld rows\n"
         "task_log: %s %lld rows\n"
         "drift_report: %s %lld rows\n",
         verb, (long long)r.dag_run, verb, (long long)r.task_instance, verb,
         (long long)r.task_log, verb, (long long)r.drift_report);
  if (o.dry_run)
    printf("older than %s UTC; dry run, nothing changed\n", r.cutoff);
  else
    printf("older than %s UTC: %lld rows in %lld statements (%lld "
           "retried), longest %.0f ms, %.2f s\n",
           r.cutoff,
           (long long)(r.dag_run + r.task_instance + r.task_log +
                       r.drift_report),
           (long long)r.statements, (long long)r.retries, r.max_stmt_ms,
           r.ms / 1e3);
  if (erc != ERR_OK)
    return fail("clean", &e);
  return CLI_OK;
}

int cli_db(int argc, char **argv)
{
  if (cli_wants_help(argc, argv)) {
    usage(stdout);
    return CLI_OK;
  }
  if (argc < 2) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (strcmp(argv[1], "init") == 0)
    return db_init(argc, argv);
  if (strcmp(argv[1], "seed") == 0)
    return db_seed(argc, argv);
  if (strcmp(argv[1], "load-archive") == 0)
    return db_load_archive(argc, argv);
  if (strcmp(argv[1], "clean") == 0)
    return db_clean(argc, argv);
  fprintf(stderr, "mlopsd: db: unknown subcommand '%s' (try mlopsd db "
                  "--help)\n",
          argv[1]);
  return CLI_USAGE;
}
