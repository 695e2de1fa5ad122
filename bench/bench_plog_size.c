/* bench_plog_size.c - bytes per logged prediction row and MariaDB's CPU
 * per row, for the prediction log table's possible formats (issue 20).
 *
 * Each variant is a table shaped like credit_predictions_api_log (the
 * course's columns plus migration 010's) in a different format.  Rows go
 * in through the daemon's own writer (plog: the same multi-row INSERT ...
 * ON DUPLICATE KEY UPDATE statements and 500-row transactions as
 * `mlopsd serve`), with the features JSON of the course's requests
 * (predict_requests.jsonl, as the course's client sends them, ", " and
 * ": " separators).  Then it prints, per variant:
 *
 *   data+idx B/row   (DATA_LENGTH + INDEX_LENGTH) / rows after ANALYZE
 *                    TABLE: pages in use, what the 1,093 B counted
 *   disk B/row       ALLOCATED_SIZE of the table's tablespaces / rows,
 *                    after FLUSH TABLES ... FOR EXPORT wrote every page:
 *                    the bytes the file system gives it (page compression
 *                    shows only here, as punched holes)
 *   server us/row    mariadbd's CPU time (user + system, /proc) over the
 *                    insert, per row: needs the server on this machine
 *   rows/s           wall clock of the insert
 *   pages/1k rows    InnoDB pages written (Innodb_pages_written) over the
 *                    insert and the flush, per 1,000 rows: the flush work,
 *                    counted (a page written twice counts twice)
 *
 * Needs MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD of a server it may create
 * a database on (tests/mariadb.sh prints them; bench/run.sh scripts start
 * one).  BENCH_PLOG_ROWS (default 50000) rows per variant; arguments pick
 * the variants whose name contains any of them; BENCH_PLOG_REPS rounds
 * (default 1).  A variant's algorithm is set with SET GLOBAL
 * innodb_compression_algorithm (lz4 and snappy need their provider
 * plugin loaded; without it the variant is skipped), and the server's own
 * setting is restored at the end.  Prints figures, never fails on them.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/plog.h"
#include "bench_util.h"

#define DBNAME "bench_plog_size"

static const char COLS[] =
    "`id` bigint(20) NOT NULL AUTO_INCREMENT,"
    "`customer_id` varchar(10) NOT NULL,"
    "`features` json %s NOT NULL,"
    "`prediction` varchar(10) NOT NULL,"
    "`confidence` float NOT NULL,"
    "`elapsed_ms` int NOT NULL,"
    "`created_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,"
    "`model_name` varchar(128) DEFAULT NULL,"
    "`model_version` int DEFAULT NULL,"
    "`log_source` bigint DEFAULT NULL,"
    "`log_seq` bigint DEFAULT NULL,";

static const char KEYS_BEFORE[] =
    "PRIMARY KEY (`id`), KEY `c` (`created_at`),"
    "UNIQUE KEY `s` (`log_source`, `log_seq`)";
static const char KEYS_PART[] =
    "PRIMARY KEY (`id`, `created_at`), KEY `c` (`created_at`),"
    "UNIQUE KEY `s` (`log_source`, `log_seq`, `created_at`)";
static const char KEYS_PART_NOC[] =
    "PRIMARY KEY (`id`, `created_at`),"
    "UNIQUE KEY `s` (`log_source`, `log_seq`, `created_at`)";

/* InnoDB's pages written so far (every table: the bench is alone on its
 * server); per row, the flush work a variant or server setting causes,
 * counted rather than timed */
#define PAGES_WRITTEN                                                         \
  "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE "        \
  "VARIABLE_NAME = 'INNODB_PAGES_WRITTEN'"

struct variant {
  const char *name;
  const char *col_attr; /* after `features json` */
  const char *keys;
  const char *table_opts;
  int partitioned; /* 1: today's, tomorrow's and pmax; N > 1: N - 1 days
                      before today's too (a month's retention: 31) */
  int compact; /* features without the separators' spaces */
  const char *algo; /* innodb_compression_algorithm for the run; NULL:
                       zlib, what the server uses without a provider */
};

static const struct variant VARS[] = {
    {"before: 001+010 (DYNAMIC)", "", KEYS_BEFORE, "", 0, 0, NULL},
    {"before, compact JSON", "", KEYS_BEFORE, "", 0, 1, NULL},
    {"daily partitions", "", KEYS_PART, "", 1, 0, NULL},
    {"partitions, no created_at idx", "", KEYS_PART_NOC, "", 1, 0, NULL},
    {"partitions + COMPRESSED column", "COMPRESSED", KEYS_PART, "", 1, 0,
     NULL},
    {"partitions + PAGE_COMPRESSED", "", KEYS_PART, " PAGE_COMPRESSED=1", 1,
     0, NULL},
    {"partitions + PAGE_COMPRESSED, compact", "", KEYS_PART,
     " PAGE_COMPRESSED=1", 1, 1, NULL},
    {"partitions + PAGE_COMPRESSED lvl1", "", KEYS_PART,
     " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 1, 0, NULL},
    {"partitions + PAGE_COMPRESSED lvl1, no created_at idx", "",
     KEYS_PART_NOC, " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 1, 0,
     NULL},
    {"partitions + PAGE_COMPRESSED lz4", "", KEYS_PART,
     " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 1, 0, "lz4"},
    {"partitions + PAGE_COMPRESSED lz4, no created_at idx", "",
     KEYS_PART_NOC, " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 1, 0,
     "lz4"},
    {"31 partitions + PAGE_COMPRESSED lz4, no created_at idx", "",
     KEYS_PART_NOC, " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 31, 0,
     "lz4"},
    {"partitions + PAGE_COMPRESSED snappy", "", KEYS_PART,
     " PAGE_COMPRESSED=1 PAGE_COMPRESSION_LEVEL=1", 1, 0, "snappy"},
    {"partitions + ROW_FORMAT=COMPRESSED 8K", "", KEYS_PART,
     " ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=8", 1, 0, NULL},
    {"partitions + ROW_FORMAT=COMPRESSED 4K", "", KEYS_PART,
     " ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=4", 1, 0, NULL},
};
#define NVARS (sizeof(VARS) / sizeof(VARS[0]))

static struct db_pool *P;
static char **FEAT, **FEAT_C;
static size_t NFEAT;
static pid_t SERVER_PID;

static void die(const char *what, const struct err *e)
{
  fprintf(stderr, "bench_plog_size: %s: %s\n", what, e ? e->msg : "");
  exit(1);
}

static void exec(const char *sql)
{
  struct err e;
  struct db_conn *c;
  if (db_acquire(P, 5000, &c, &e) != ERR_OK)
    die("connect", &e);
  if (db_exec(c, sql, NULL, &e) != ERR_OK) {
    fprintf(stderr, "bench_plog_size: %s\n", sql);
    die("exec", &e);
  }
  db_release(P, c);
}

static int64_t q1(const char *sql)
{
  struct err e;
  struct db_conn *c;
  int64_t v = -1;
  if (db_acquire(P, 5000, &c, &e) != ERR_OK)
    die("connect", &e);
  if (db_query_i64(c, sql, NULL, 0, &v, &e) != ERR_OK) {
    fprintf(stderr, "bench_plog_size: %s\n", sql);
    die("query", &e);
  }
  db_release(P, c);
  return v;
}

static int str_cb(void *user, const struct db_row *r)
{
  size_t len;
  const char *s = db_row_str(r, 0, &len);
  snprintf(user, 512, "%.*s", (int)len, s ? s : "");
  return 0;
}

/* the server's page compression algorithm for the next variant; 0 when
 * the server cannot use it (no provider plugin for lz4 or snappy) */
static int set_algo(const char *algo)
{
  char sql[128];
  struct err e;
  struct db_conn *c;
  if (db_acquire(P, 5000, &c, &e) != ERR_OK)
    die("connect", &e);
  snprintf(sql, sizeof(sql), "SET GLOBAL innodb_compression_algorithm = '%s'",
           algo);
  int ok = db_exec(c, sql, NULL, &e) == ERR_OK;
  db_release(P, c);
  return ok;
}

static void find_server_pid(void)
{
  struct err e;
  struct db_conn *c;
  char pidfile[512] = "";
  if (db_acquire(P, 5000, &c, &e) != ERR_OK)
    die("connect", &e);
  if (db_query(c, "SELECT @@pid_file", NULL, 0, str_cb, pidfile, NULL, &e) !=
      ERR_OK)
    die("pid_file", &e);
  db_release(P, c);
  SERVER_PID = bench_pidfile_pid(pidfile);
}

/* The course's requests: the "data" object of each line, as sent. */
static void load_features(void)
{
  const char *env = getenv("BENCH_REQUESTS");
  const char *src = getenv("MLOPSD_SRC");
  char path[1024];
  FILE *f = NULL;
  if (env)
    f = fopen(env, "r");
  if (!f && src) {
    snprintf(path, sizeof(path),
             "%s/../shared/data/credit/predict_requests.jsonl", src);
    f = fopen(path, "r");
    if (!f) {
      snprintf(path, sizeof(path),
               "%s/../../shared/data/credit/predict_requests.jsonl", src);
      f = fopen(path, "r");
    }
  }
  if (!f && getenv("MLOPSD_SHARED")) {
    snprintf(path, sizeof(path), "%s/data/credit/predict_requests.jsonl",
             getenv("MLOPSD_SHARED"));
    f = fopen(path, "r");
  }
  if (!f) {
    fprintf(stderr, "bench_plog_size: predict_requests.jsonl not found "
                    "(set BENCH_REQUESTS)\n");
    exit(1);
  }
  char line[8192];
  size_t cap = 0;
  while (fgets(line, sizeof(line), f)) {
    char *s = strstr(line, "\"data\":");
    if (!s)
      continue;
    s = strchr(s, '{');
    char *end = strrchr(line, '}');
    if (!s || !end || end <= s)
      continue;
    /* the line's own closing brace is the last; data's is before it */
    *end = 0;
    end = strrchr(s, '}');
    if (!end)
      continue;
    end[1] = 0;
    if (NFEAT == cap) {
      cap = cap ? cap * 2 : 1024;
      FEAT = realloc(FEAT, cap * sizeof(*FEAT));
      FEAT_C = realloc(FEAT_C, cap * sizeof(*FEAT_C));
      if (!FEAT || !FEAT_C)
        die("out of memory", NULL);
    }
    FEAT[NFEAT] = strdup(s);
    /* compact: drop the space after ',' and ':' outside strings */
    char *c = strdup(s), *w = c;
    int in_str = 0;
    for (const char *r = s; *r; r++) {
      if (*r == '"' && (r == s || r[-1] != '\\'))
        in_str = !in_str;
      if (!in_str && *r == ' ' && r > s && (r[-1] == ',' || r[-1] == ':'))
        continue;
      *w++ = *r;
    }
    *w = 0;
    FEAT_C[NFEAT] = c;
    NFEAT++;
  }
  fclose(f);
  if (!NFEAT)
    die("no requests in predict_requests.jsonl", NULL);
}

static void run_variant(const struct variant *v, int64_t nrows, int idx)
{
  char sql[4096], cols[1024], table[64], spool[256];
  struct err e;
  const char *algo = v->algo ? v->algo : "zlib";
  if (!set_algo(algo)) {
    printf("  %-38s skipped: the server has no %s provider (Debian: "
           "mariadb-plugin-provider-%s, plugin_load_add)\n",
           v->name, algo, algo);
    return;
  }
  snprintf(table, sizeof(table), "log_v%d", idx);
  snprintf(cols, sizeof(cols), COLS, v->col_attr);
  snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", table);
  exec(sql);
  int n = snprintf(sql, sizeof(sql),
                   "CREATE TABLE %s (%s %s) ENGINE=InnoDB DEFAULT "
                   "CHARSET=utf8mb4%s",
                   table, cols, v->keys, v->table_opts);
  if (v->partitioned) {
    /* daily partitions: the N - 1 days before today's, today's (p1),
     * tomorrow's (p2) and pmax, as logpart keeps them */
    long long day = (long long)time(NULL) / 86400 * 86400;
    n += snprintf(sql + n, sizeof(sql) - (size_t)n, "%s",
                  " PARTITION BY RANGE (UNIX_TIMESTAMP(`created_at`)) (");
    for (int k = v->partitioned - 1; k >= 1 && n < 3900; k--)
      n += snprintf(sql + n, sizeof(sql) - (size_t)n,
                    "PARTITION d%d VALUES LESS THAN (%lld),", k,
                    day - (long long)(k - 1) * 86400);
    snprintf(sql + n, sizeof(sql) - (size_t)n,
             "PARTITION p1 VALUES LESS THAN (%lld),"
             "PARTITION p2 VALUES LESS THAN (%lld),"
             "PARTITION pmax VALUES LESS THAN MAXVALUE)",
             day + 86400, day + 2 * 86400);
  }
  exec(sql);

  snprintf(spool, sizeof(spool), "/tmp/bench_plog_size.%ld.%d", (long)getpid(),
           idx);
  struct plog_opts o;
  plog_opts_defaults(&o);
  o.pool = P;
  o.table = table;
  o.spool_dir = spool;
  o.max_rows = 200000;
  o.max_bytes = (size_t)256 << 20;
  o.pace_us = -1;
  o.full_wait_ms = 60000;
  struct plog *pl;
  if (plog_create(&pl, &o, &e) != ERR_OK)
    die("plog_create", &e);
  if (plog_start(pl, &e) != ERR_OK)
    die("plog_start", &e);
  int64_t pw0 = q1(PAGES_WRITTEN);
  double c0 = bench_proc_cpu_s(SERVER_PID), t0 = bench_now_s();
  struct timeval tv;
  for (int64_t i = 0; i < nrows; i++) {
    char cid[16];
    snprintf(cid, sizeof(cid), "%" PRId64, 1000 + i % 50000);
    gettimeofday(&tv, NULL);
    const char *f = v->compact ? FEAT_C[i % (int64_t)NFEAT]
                               : FEAT[i % (int64_t)NFEAT];
    struct plog_row r = {.customer_id = cid,
                         .customer_id_len = strlen(cid),
                         .features = f,
                         .features_len = strlen(f),
                         .prediction = (i % 3) ? "Standard" : "Good",
                         .confidence = 0.5 + (double)(i % 500) / 1000.0,
                         .elapsed_ms = (int)(i % 7),
                         .created_us = (int64_t)tv.tv_sec * 1000000 +
                                       tv.tv_usec,
                         .model = "credit_score_classification",
                         .model_version = 3};
    if (plog_append(pl, &r, 1, NULL) != ERR_OK)
      die("plog_append: log full", NULL);
  }
  size_t lost = 0;
  plog_stop(pl, 60000, &lost);
  double t1 = bench_now_s();
  /* write every page of the table out, so the tablespace files show
   * what compression gives (page compression happens when a page is
   * written) and the server's CPU includes that work */
  {
    struct db_conn *c;
    if (db_acquire(P, 5000, &c, &e) != ERR_OK)
      die("connect", &e);
    snprintf(sql, sizeof(sql), "FLUSH TABLES %s FOR EXPORT", table);
    if (db_exec(c, sql, NULL, &e) != ERR_OK)
      die("flush for export", &e);
    if (db_exec(c, "UNLOCK TABLES", NULL, &e) != ERR_OK)
      die("unlock", &e);
    db_release(P, c);
  }
  double c1 = bench_proc_cpu_s(SERVER_PID);
  int64_t pw1 = q1(PAGES_WRITTEN);
  struct plog_stats st;
  plog_get_stats(pl, &st);
  plog_destroy(pl);
  snprintf(sql, sizeof(sql), "rm -rf '%s'", spool);
  if (system(sql) != 0)
    fprintf(stderr, "bench_plog_size: could not remove %s\n", spool);
  if (lost || st.spooled)
    fprintf(stderr, "bench_plog_size: %s: %zu lost, %" PRIu64
                    " spooled (database trouble?)\n",
            v->name, lost, st.spooled);

  snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
  int64_t rows = q1(sql);
  snprintf(sql, sizeof(sql), "ANALYZE TABLE %s", table);
  exec(sql);
  snprintf(sql, sizeof(sql),
           "SELECT DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES"
           " WHERE TABLE_SCHEMA = '" DBNAME "' AND TABLE_NAME = '%s'",
           table);
  int64_t dil = q1(sql);
  snprintf(sql, sizeof(sql),
           "SELECT SUM(ALLOCATED_SIZE) FROM "
           "information_schema.INNODB_SYS_TABLESPACES WHERE NAME = "
           "'" DBNAME "/%s' OR NAME LIKE '" DBNAME "/%s#P#%%'",
           table, table);
  int64_t alloc = q1(sql);
  double cpu = (c0 >= 0 && c1 >= 0) ? (c1 - c0) * 1e6 / (double)rows : -1;
  printf("  %-38s %7" PRId64 " rows  data+idx %5.0f B/row  disk %5.0f B/row"
         "  server %5.1f us/row  %6.0f rows/s  %5.1f pages/1k rows\n",
         v->name, rows, (double)dil / (double)rows,
         (double)alloc / (double)rows, cpu, (double)rows / (t1 - t0),
         (double)(pw1 - pw0) * 1000.0 / (double)rows);
  fflush(stdout);
  snprintf(sql, sizeof(sql), "DROP TABLE %s", table);
  exec(sql);
}

int main(int argc, char **argv)
{
  struct err e;
  struct db_opts o;
  if (bench_db_opts(&o, 2, 5) != 0) {
    printf("bench_plog_size: no MLOPSD_DATABASE_HOST/PORT/USER: skipped\n");
    return 0;
  }
  int64_t nrows = getenv("BENCH_PLOG_ROWS") ? atoll(getenv("BENCH_PLOG_ROWS"))
                                            : 50000;
  if (nrows < 1000)
    nrows = 1000;
  log_set_level(LOG_WARN);
  load_features();

  if (db_pool_create(&P, &o, &e) != ERR_OK)
    die("connect", &e);
  exec("CREATE DATABASE IF NOT EXISTS " DBNAME);
  db_pool_destroy(P);
  o.database = DBNAME;
  if (db_pool_create(&P, &o, &e) != ERR_OK)
    die("connect", &e);
  find_server_pid();

  size_t flen = 0, clen = 0;
  for (size_t i = 0; i < NFEAT; i++) {
    flen += strlen(FEAT[i]);
    clen += strlen(FEAT_C[i]);
  }
  printf("bench_plog_size: %" PRId64 " rows per variant, features JSON "
         "%.0f B as sent, %.0f B compact (%zu requests); server pid %ld\n",
         nrows, (double)flen / (double)NFEAT, (double)clen / (double)NFEAT,
         NFEAT, (long)SERVER_PID);
  char algo0[512] = "zlib";
  {
    struct db_conn *c;
    if (db_acquire(P, 5000, &c, &e) != ERR_OK ||
        db_query(c, "SELECT @@innodb_compression_algorithm", NULL, 0, str_cb,
                 algo0, NULL, &e) != ERR_OK)
      die("innodb_compression_algorithm", &e);
    db_release(P, c);
  }
  /* BENCH_PLOG_REPS rounds: each round runs every selected variant once,
   * so a change of the machine's load hits them alike */
  int reps = getenv("BENCH_PLOG_REPS") ? atoi(getenv("BENCH_PLOG_REPS")) : 1;
  for (int k = 0; k < (reps > 0 ? reps : 1); k++)
    for (size_t i = 0; i < NVARS; i++) {
      int pick = argc < 2;
      for (int a = 1; a < argc && !pick; a++)
        pick = strstr(VARS[i].name, argv[a]) != NULL;
      if (pick)
        run_variant(&VARS[i], nrows, (int)i);
    }
  set_algo(algo0);
  exec("DROP DATABASE " DBNAME);
  db_pool_destroy(P);
  return 0;
}
