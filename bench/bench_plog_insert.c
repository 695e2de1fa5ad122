/* bench_plog_insert.c - CPU per logged row, of the client (the daemon's
 * flusher) and of MariaDB, for three ways to store the prediction log's
 * rows (issue 16):
 *
 *   multi-row INSERT   db_bulk_insert with db_opts.multirow_insert (what
 *                      plog did before): one prepared INSERT of 500 rows
 *                      (5,000 placeholders) ... ON DUPLICATE KEY UPDATE
 *                      log_seq = log_seq
 *   array binding      db_bulk_insert as plog uses it now: one single-row
 *                      prepared INSERT (10 placeholders, same suffix)
 *                      executed once for 500 rows with STMT_ATTR_ARRAY_SIZE
 *                      (column-wise arrays; COM_STMT_BULK_EXECUTE)
 *   LOAD DATA LOCAL    LOAD DATA LOCAL INFILE ... IGNORE fed from memory
 *                      (mysql_set_local_infile_handler): 500 rows as
 *                      tab-separated text per statement
 *
 * into the real table: `credit_predictions_api_log` as sql/migrations
 * make it (schema_migrate in its own database: the course's columns,
 * migration 010's (log_source, log_seq), 040's partitions and page
 * compression), with the session settings of the log writer (time_zone
 * +00:00, check_constraint_checks = 0), one transaction per 500 rows as
 * plog stores them, the features JSON of the course's requests.  Client
 * CPU includes building the statement's input from the rows (binds,
 * text).  Each way also stores its first 1,000 rows a second time: the
 * table must still hold each row once (the exactly-once key), else it
 * exits 1.
 *
 * Prints, per way, the median of BENCH_PLOG_REPS runs (default 3) of
 * BENCH_PLOG_ROWS rows (default 50000): client us/row (getrusage), server
 * us/row (mariadbd's /proc/PID/stat, so the server must run on this
 * machine), rows/s (wall clock: noise on a busy machine).  Run it through
 * bench/plog_insert.sh (its own MariaDB).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <mysql.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/schema.h"
#include "bench_util.h"

#define DBNAME "bench_plog_insert"
#define TABLE "credit_predictions_api_log"
#define NCOLS 10
#define CHUNK 500 /* rows per statement and transaction, as plog */
#define MAXREPS 9
#define SUFFIX " ON DUPLICATE KEY UPDATE log_seq = log_seq"

static const char *const COLS[NCOLS] = {
    "customer_id", "features",   "prediction",    "confidence",
    "elapsed_ms",  "created_at", "model_name",    "model_version",
    "log_source",  "log_seq"};
static const char COLS_SQL[] =
    "customer_id, features, prediction, confidence, elapsed_ms, created_at, "
    "model_name, model_version, log_source, log_seq";

/* the rows, column-wise (array binding reads these arrays directly) */
struct rows {
  size_t n;
  const char **cid, **feat, **pred, **ts, **model;
  unsigned long *cid_len, *feat_len, *pred_len, *ts_len, *model_len;
  double *conf;
  long long *elapsed, *version, *source, *seq;
};

static pid_t SERVER_PID;

static void die(const char *what, const char *msg)
{
  fprintf(stderr, "bench_plog_insert: %s: %s\n", what, msg ? msg : "");
  exit(1);
}

static void *xcalloc(size_t n, size_t sz)
{
  void *p = calloc(n ? n : 1, sz);
  if (!p)
    die("out of memory", NULL);
  return p;
}

static void q(MYSQL *my, const char *sql)
{
  if (mysql_query(my, sql) != 0) {
    fprintf(stderr, "bench_plog_insert: %s\n", sql);
    die("query", mysql_error(my));
  }
  MYSQL_RES *r = mysql_store_result(my);
  if (r)
    mysql_free_result(r);
}

static long long q1(MYSQL *my, const char *sql)
{
  if (mysql_query(my, sql) != 0)
    die(sql, mysql_error(my));
  MYSQL_RES *r = mysql_store_result(my);
  MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
  long long v = row && row[0] ? atoll(row[0]) : -1;
  if (r)
    mysql_free_result(r);
  return v;
}

/* The course's requests: the "data" object of each line, as sent. */
static char **load_features(size_t *n)
{
  const char *path = getenv("BENCH_REQUESTS");
  char buf[1024];
  if (!path && getenv("MLOPSD_SHARED")) {
    snprintf(buf, sizeof(buf), "%s/data/credit/predict_requests.jsonl",
             getenv("MLOPSD_SHARED"));
    path = buf;
  }
  FILE *f = path ? fopen(path, "r") : NULL;
  if (!f)
    die("predict_requests.jsonl not found", "set MLOPSD_SHARED or "
                                            "BENCH_REQUESTS");
  char line[8192];
  char **v = NULL;
  size_t cap = 0;
  *n = 0;
  while (fgets(line, sizeof(line), f)) {
    char *s = strstr(line, "\"data\":");
    char *end = strrchr(line, '}');
    if (!s || !end || !(s = strchr(s, '{')) || end <= s)
      continue;
    *end = 0; /* the line's closing brace; data's is the one before */
    if (!(end = strrchr(s, '}')))
      continue;
    end[1] = 0;
    if (*n == cap) {
      cap = cap ? cap * 2 : 1024;
      v = realloc(v, cap * sizeof(*v));
      if (!v)
        die("out of memory", NULL);
    }
    if (!(v[(*n)++] = strdup(s)))
      die("out of memory", NULL);
  }
  fclose(f);
  if (!*n)
    die("no requests in", path);
  return v;
}

/* The same JSON without the blanks between tokens (", " -> ",",
 * ": " -> ":"; strings untouched): the bytes a compact writer would store
 * (issue 16: fewer bytes per row for MariaDB to copy, log and page). */
static char **compact_features(char **feat, size_t n)
{
  char **v = xcalloc(n, sizeof(*v));
  for (size_t i = 0; i < n; i++) {
    const char *s = feat[i];
    char *d = v[i] = xcalloc(1, strlen(s) + 1);
    int in_str = 0;
    for (; *s; s++) {
      if (in_str) {
        *d++ = *s;
        if (*s == '\\' && s[1])
          *d++ = *++s;
        else if (*s == '"')
          in_str = 0;
      } else if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') {
        *d++ = *s;
        in_str = *s == '"';
      }
    }
  }
  return v;
}

static void make_rows(struct rows *r, size_t n, char **feat, size_t nfeat)
{
  static const char *const CLS[3] = {"Good", "Standard", "Poor"};
  static char ts[24];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
  r->n = n;
  r->cid = xcalloc(n, sizeof(char *));
  r->feat = xcalloc(n, sizeof(char *));
  r->pred = xcalloc(n, sizeof(char *));
  r->ts = xcalloc(n, sizeof(char *));
  r->model = xcalloc(n, sizeof(char *));
  r->cid_len = xcalloc(n, sizeof(unsigned long));
  r->feat_len = xcalloc(n, sizeof(unsigned long));
  r->pred_len = xcalloc(n, sizeof(unsigned long));
  r->ts_len = xcalloc(n, sizeof(unsigned long));
  r->model_len = xcalloc(n, sizeof(unsigned long));
  r->conf = xcalloc(n, sizeof(double));
  r->elapsed = xcalloc(n, sizeof(long long));
  r->version = xcalloc(n, sizeof(long long));
  r->source = xcalloc(n, sizeof(long long));
  r->seq = xcalloc(n, sizeof(long long));
  char(*cids)[11] = xcalloc(n, 11);
  for (size_t i = 0; i < n; i++) {
    snprintf(cids[i], 11, "%zu", 1000 + i % 50000);
    r->cid[i] = cids[i];
    r->cid_len[i] = strlen(cids[i]);
    r->feat[i] = feat[i % nfeat];
    r->feat_len[i] = strlen(r->feat[i]);
    r->pred[i] = CLS[i % 3];
    r->pred_len[i] = strlen(CLS[i % 3]);
    r->ts[i] = ts;
    r->ts_len[i] = strlen(ts);
    r->model[i] = "credit_score_classification";
    r->model_len[i] = strlen(r->model[i]);
    r->conf[i] = 0.5 + (double)(i % 500) / 1000.0;
    r->elapsed[i] = (long long)(i % 7);
    r->version[i] = 3;
    r->source[i] = 7777;
    r->seq[i] = (long long)i + 1;
  }
}

/* ---- the daemon's db_bulk_insert: multi-row INSERTs or array binding,
 * by the pool's db_opts.multirow_insert -------------------------------- */

static struct db_val *VALS;
static void fill_vals(const struct rows *r, size_t first, size_t n);

/* how a db way calls db_bulk_insert */
struct dbway {
  struct db_conn *c;
  int set; /* the log session's SET before each call, as plog's flush */
  int txn; /* BEGIN ... COMMIT around it (plog's flush before 2026-12-05) */
};

static void store_multirow(void *ctx, MYSQL *my, const struct rows *r,
                           size_t first, size_t n)
{
  (void)my;
  const struct dbway *w = ctx;
  struct err e = {0};
  fill_vals(r, first, n);
  int64_t aff = 0;
  if ((w->set &&
       db_exec(w->c, "SET time_zone = '+00:00', check_constraint_checks = 0",
               NULL, &e) != ERR_OK) ||
      (w->txn && db_begin(w->c, &e) != ERR_OK) ||
      db_bulk_insert(w->c, TABLE, COLS, NCOLS, VALS, (int64_t)n, CHUNK,
                     SUFFIX, &aff, &e) != ERR_OK ||
      (w->txn && db_commit(w->c, &e) != ERR_OK))
    die("db_bulk_insert", e.msg);
}

/* VALS = rows first..first+n of r */
static void fill_vals(const struct rows *r, size_t first, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    size_t k = first + i;
    struct db_val *v = VALS + i * NCOLS;
    v[0] = DB_V_STRN(r->cid[k], r->cid_len[k]);
    v[1] = DB_V_STRN(r->feat[k], r->feat_len[k]);
    v[2] = DB_V_STRN(r->pred[k], r->pred_len[k]);
    v[3] = DB_V_DBL(r->conf[k]);
    v[4] = DB_V_INT(r->elapsed[k]);
    v[5] = DB_V_STRN(r->ts[k], r->ts_len[k]);
    v[6] = DB_V_STRN(r->model[k], r->model_len[k]);
    v[7] = DB_V_INT(r->version[k]);
    v[8] = DB_V_INT(r->source[k]);
    v[9] = DB_V_INT(r->seq[k]);
  }
}

/* ---- array binding straight through libmariadb, with other parameter
 * types: features as MYSQL_TYPE_BLOB (a binary parameter: the server
 * skips the character scan of a text parameter), created_at as
 * MYSQL_TYPE_DATETIME (no date text to parse) --------------------------- */

struct raw {
  MYSQL_STMT *st;
  int blob_feat, time_ts;
  int lean; /* the statement alone (autocommit), no SET/BEGIN/COMMIT */
  MYSQL_TIME *tm;   /* created_at per row, when time_ts */
  MYSQL_TIME **tmp; /* pointers to them: libmariadb takes a column of a
                       type without a fixed packed length as pointers */
};

static void store_raw(void *ctx, MYSQL *my, const struct rows *r,
                      size_t first, size_t n)
{
  struct raw *w = ctx;
  if (!w->st) {
    char sql[512];
    snprintf(sql, sizeof(sql),
             "INSERT INTO " TABLE " (%s) VALUES (?,?,?,?,?,?,?,?,?,?)" SUFFIX,
             COLS_SQL);
    if (!(w->st = mysql_stmt_init(my)) ||
        mysql_stmt_prepare(w->st, sql, (unsigned long)strlen(sql)))
      die("prepare", mysql_error(my));
  }
  if (w->time_ts && !w->tm) {
    w->tm = xcalloc(r->n, sizeof(MYSQL_TIME));
    w->tmp = xcalloc(r->n, sizeof(MYSQL_TIME *));
    for (size_t i = 0; i < r->n; i++) {
      MYSQL_TIME *t = w->tmp[i] = &w->tm[i];
      if (sscanf(r->ts[i], "%u-%u-%u %u:%u:%u", &t->year, &t->month,
                 &t->day, &t->hour, &t->minute, &t->second) != 6)
        die("bad created_at", r->ts[i]);
      t->time_type = MYSQL_TIMESTAMP_DATETIME;
    }
  }
  MYSQL_BIND b[NCOLS];
  memset(b, 0, sizeof(b));
#define STRCOL(j, arr, lens, type)                                             \
  b[j].buffer_type = (type);                                                 \
  b[j].buffer = (void *)((arr) + first);                                     \
  b[j].length = (lens) + first
#define NUMCOL(j, arr, type)                                                   \
  b[j].buffer_type = (type);                                                 \
  b[j].buffer = (void *)((arr) + first)
  STRCOL(0, r->cid, r->cid_len, MYSQL_TYPE_STRING);
  STRCOL(1, r->feat, r->feat_len,
         w->blob_feat ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING);
  STRCOL(2, r->pred, r->pred_len, MYSQL_TYPE_STRING);
  NUMCOL(3, r->conf, MYSQL_TYPE_DOUBLE);
  NUMCOL(4, r->elapsed, MYSQL_TYPE_LONGLONG);
  if (w->time_ts) {
    NUMCOL(5, w->tmp, MYSQL_TYPE_DATETIME);
  } else {
    STRCOL(5, r->ts, r->ts_len, MYSQL_TYPE_STRING);
  }
  STRCOL(6, r->model, r->model_len, MYSQL_TYPE_STRING);
  NUMCOL(7, r->version, MYSQL_TYPE_LONGLONG);
  NUMCOL(8, r->source, MYSQL_TYPE_LONGLONG);
  NUMCOL(9, r->seq, MYSQL_TYPE_LONGLONG);
#undef STRCOL
#undef NUMCOL
  unsigned int an = (unsigned int)n;
  if (!w->lean) { /* as plog's flush: the session settings, a transaction */
    q(my, "SET time_zone = '+00:00', check_constraint_checks = 0");
    q(my, "START TRANSACTION");
  }
  if (mysql_stmt_attr_set(w->st, STMT_ATTR_ARRAY_SIZE, &an) ||
      mysql_stmt_bind_param(w->st, b) || mysql_stmt_execute(w->st))
    die("array insert", mysql_stmt_error(w->st));
  if (!w->lean)
    q(my, "COMMIT");
}

/* ---- LOAD DATA LOCAL INFILE from memory ------------------------------- */

struct infile {
  const char *p;
  size_t left;
};
static char *TXT;
static size_t TXT_CAP;
static struct infile INF;

static int inf_init(void **ptr, const char *name, void *user)
{
  (void)name;
  *ptr = user;
  return 0;
}

static int inf_read(void *ptr, char *buf, unsigned int len)
{
  struct infile *f = ptr;
  size_t n = f->left < len ? f->left : len;
  memcpy(buf, f->p, n);
  f->p += n;
  f->left -= n;
  return (int)n;
}

static void inf_end(void *ptr) { (void)ptr; }

static int inf_error(void *ptr, char *msg, unsigned int len)
{
  (void)ptr;
  snprintf(msg, len, "in-memory infile error");
  return 1;
}

/* a field for LOAD DATA's default escaping (ESCAPED BY '\\'): backslash,
 * tab, newline and NUL escaped */
static char *put_field(char *d, const char *s, size_t len)
{
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    switch (ch) {
    case '\\': *d++ = '\\'; *d++ = '\\'; break;
    case '\t': *d++ = '\\'; *d++ = 't'; break;
    case '\n': *d++ = '\\'; *d++ = 'n'; break;
    case '\0': *d++ = '\\'; *d++ = '0'; break;
    default: *d++ = ch;
    }
  }
  return d;
}

static void store_load(void *ctx, MYSQL *my, const struct rows *r,
                       size_t first, size_t n)
{
  (void)ctx;
  size_t need = 0;
  for (size_t i = first; i < first + n; i++)
    need += 2 * (r->cid_len[i] + r->feat_len[i] + r->pred_len[i] +
                 r->ts_len[i] + r->model_len[i]) + 128;
  if (need > TXT_CAP) {
    free(TXT);
    TXT_CAP = need;
    TXT = xcalloc(1, TXT_CAP);
  }
  char *d = TXT;
  for (size_t i = first; i < first + n; i++) {
    d = put_field(d, r->cid[i], r->cid_len[i]);
    *d++ = '\t';
    d = put_field(d, r->feat[i], r->feat_len[i]);
    *d++ = '\t';
    d = put_field(d, r->pred[i], r->pred_len[i]);
    d += sprintf(d, "\t%.9g\t%lld\t", r->conf[i], r->elapsed[i]);
    d = put_field(d, r->ts[i], r->ts_len[i]);
    *d++ = '\t';
    d = put_field(d, r->model[i], r->model_len[i]);
    d += sprintf(d, "\t%lld\t%lld\t%lld\n", r->version[i], r->source[i],
                 r->seq[i]);
  }
  INF.p = TXT;
  INF.left = (size_t)(d - TXT);
  mysql_set_local_infile_handler(my, inf_init, inf_read, inf_end, inf_error,
                                 &INF);
  q(my, "START TRANSACTION");
  /* IGNORE: a row whose (log_source, log_seq, created_at) is there is
   * skipped, which keeps exactly-once like ON DUPLICATE KEY UPDATE */
  char sql[512];
  snprintf(sql, sizeof(sql),
           "LOAD DATA LOCAL INFILE 'plog' IGNORE INTO TABLE " TABLE
           " CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY "
           "'\\\\' LINES TERMINATED BY '\\n' (%s)",
           COLS_SQL);
  q(my, sql);
  q(my, "COMMIT");
}

/* ---- driver ------------------------------------------------------------ */

typedef void (*store_fn)(void *ctx, MYSQL *my, const struct rows *r,
                         size_t first, size_t n);

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
  qsort(v, (size_t)n, sizeof(*v), cmp_dbl);
  return v[n / 2];
}

struct way {
  const char *name;
  store_fn fn;
  void *ctx;
  const struct rows *r; /* the rows it stores */
  size_t chunk;         /* rows per call (statement and transaction) */
  double cl[MAXREPS], sv[MAXREPS], rs[MAXREPS];
};

/* one run of a way: r->n rows into the emptied table */
static void run_once(struct way *w, int k, MYSQL *my, const struct rows *r)
{
  q(my, "TRUNCATE TABLE " TABLE);
  double c0 = bench_cpu_s(), s0 = bench_proc_cpu_s(SERVER_PID),
         t0 = bench_now_s();
  for (size_t i = 0; i < r->n; i += w->chunk)
    w->fn(w->ctx, my, r, i, r->n - i < w->chunk ? r->n - i : w->chunk);
  double t1 = bench_now_s(), c1 = bench_cpu_s(),
         s1 = bench_proc_cpu_s(SERVER_PID);
  w->cl[k] = (c1 - c0) * 1e6 / (double)r->n;
  w->sv[k] = s0 >= 0 && s1 >= 0 ? (s1 - s0) * 1e6 / (double)r->n : -1;
  w->rs[k] = (double)r->n / (t1 - t0);
}

/* exactly once: the first 1,000 rows stored again change nothing */
static int repeat_ok(struct way *w, MYSQL *my, const struct rows *r)
{
  q(my, "TRUNCATE TABLE " TABLE);
  for (size_t i = 0; i < r->n; i += w->chunk)
    w->fn(w->ctx, my, r, i, r->n - i < w->chunk ? r->n - i : w->chunk);
  for (size_t i = 0; i < 1000 && i < r->n; i += w->chunk)
    w->fn(w->ctx, my, r, i, w->chunk);
  long long rows = q1(my, "SELECT COUNT(*) FROM " TABLE);
  long long distinct = q1(my, "SELECT COUNT(DISTINCT log_seq) FROM " TABLE);
  return rows == (long long)r->n && distinct == (long long)r->n;
}

int main(void)
{
  const char *src = getenv("MLOPSD_SRC");
  struct db_opts o;
  if (bench_db_opts(&o, 1, 5) != 0) {
    printf("bench_plog_insert: no MLOPSD_DATABASE_HOST/PORT/USER: skipped "
           "(bench/plog_insert.sh starts a server)\n");
    return 0;
  }
  size_t nrows = getenv("BENCH_PLOG_ROWS")
                     ? (size_t)atoll(getenv("BENCH_PLOG_ROWS"))
                     : 50000;
  if (nrows < 1000)
    nrows = 1000;
  nrows = (nrows + CHUNK - 1) / CHUNK * CHUNK;
  int reps = getenv("BENCH_PLOG_REPS") ? atoi(getenv("BENCH_PLOG_REPS")) : 3;
  if (reps < 1 || reps > MAXREPS)
    reps = 3;
  log_set_level(LOG_WARN);
  size_t nfeat;
  char **feat = load_features(&nfeat);
  struct rows r;
  make_rows(&r, nrows, feat, nfeat);
  VALS = xcalloc((size_t)CHUNK * NCOLS, sizeof(*VALS));

  /* the table, as the migrations make it, in a database of its own */
  struct err e;
  o.multirow_insert = 1; /* p: multi-row; pa (below): array binding */
  struct db_pool *p, *pa;
  struct db_conn *c, *ca;
  char dir[1024];
  snprintf(dir, sizeof(dir), "%s/sql/migrations", src ? src : ".");
  if (db_pool_create(&p, &o, &e) != ERR_OK ||
      db_acquire(p, 10000, &c, &e) != ERR_OK ||
      db_exec(c, "DROP DATABASE IF EXISTS " DBNAME, NULL, &e) != ERR_OK ||
      db_exec(c, "CREATE DATABASE " DBNAME " CHARACTER SET utf8mb4", NULL,
              &e) != ERR_OK ||
      db_exec(c, "USE " DBNAME, NULL, &e) != ERR_OK ||
      schema_migrate(c, dir, NULL, NULL, NULL, &e) != ERR_OK ||
      db_exec(c, "SET time_zone = '+00:00', check_constraint_checks = 0",
              NULL, &e) != ERR_OK)
    die("setting up " DBNAME, e.msg);
  o.database = DBNAME;
  /* (until 2026-12-05 this pool kept multirow_insert = 1 as well: the
   * "array binding" figures of the second and third rounds in
   * docs/performance.md were multi-row INSERTs too) */
  o.multirow_insert = 0;
  if (db_pool_create(&pa, &o, &e) != ERR_OK ||
      db_acquire(pa, 10000, &ca, &e) != ERR_OK ||
      db_exec(ca, "SET time_zone = '+00:00', check_constraint_checks = 0",
              NULL, &e) != ERR_OK)
    die("connecting", e.msg);

  /* a plain libmariadb session for the other two ways (LOAD DATA LOCAL
   * needs the client's consent at connect time) */
  MYSQL *my = mysql_init(NULL);
  my_bool on = 1;
  mysql_optionsv(my, MYSQL_OPT_LOCAL_INFILE, &on);
  if (!mysql_real_connect(my, o.socket ? NULL : o.host, o.user, o.password,
                          DBNAME, (unsigned)o.port, o.socket, 0))
    die("connect", mysql_error(my));
  q(my, "SET time_zone = '+00:00', check_constraint_checks = 0");
  {
    char pidfile[512] = "";
    if (mysql_query(my, "SELECT @@pid_file") == 0) {
      MYSQL_RES *res = mysql_store_result(my);
      MYSQL_ROW row = res ? mysql_fetch_row(res) : NULL;
      if (row && row[0])
        snprintf(pidfile, sizeof(pidfile), "%s", row[0]);
      if (res)
        mysql_free_result(res);
    }
    SERVER_PID = bench_pidfile_pid(pidfile);
  }
  struct rows rc; /* the same rows with compact features */
  make_rows(&rc, nrows, compact_features(feat, nfeat), nfeat);
  size_t fb = 0, fbc = 0;
  for (size_t i = 0; i < nrows; i++) {
    fb += r.feat_len[i];
    fbc += rc.feat_len[i];
  }
  printf("bench_plog_insert: libmariadb %s, server %s, %zu rows x %d runs "
         "(medians), features ~%zu B/row (compact %zu), %d rows per "
         "statement and transaction, local_infile=%lld, %s\n",
         mysql_get_client_info(), mysql_get_server_info(my), nrows, reps,
         fb / nrows, fbc / nrows, CHUNK, q1(my, "SELECT @@local_infile"),
         o.socket ? "unix socket" : "TCP");
  fflush(stdout);

  /* the ways take turns (run k of each, then run k + 1), so a change of
   * the machine's load hits them alike */
  /* BENCH_PLOG_WAYS: a comma-separated list of multirow, array,
   * compact, load, rawtext, rawblob, rawtime, rawsmall, rawsmalllean,
   * rawlean, old, new, oldsmall, newsmall (default the first four) */
  struct raw rawtxt = {NULL, 0, 0, 0, NULL, NULL},
             rawblob = {NULL, 1, 0, 0, NULL, NULL},
             rawtime = {NULL, 0, 1, 0, NULL, NULL},
             rawlean = {NULL, 0, 0, 1, NULL, NULL};
  /* small: the rows per flush plog's flusher made in bench_serve.sh
   * single/16 (about 143: Innodb_rows_inserted / Com_commit) */
  size_t small = getenv("BENCH_PLOG_SMALL")
                     ? (size_t)atoll(getenv("BENCH_PLOG_SMALL"))
                     : 143;
  if (small < 1 || small > CHUNK)
    small = 143;
  struct dbway dmulti = {c, 0, 1}, darr = {ca, 0, 1}, dold = {ca, 1, 1},
               dauto = {ca, 1, 0};
#define WAYS 14
  struct way all[WAYS] = {
      {"multi-row INSERT", store_multirow, &dmulti, &r, CHUNK, {0}, {0}, {0}},
      {"array binding", store_multirow, &darr, &r, CHUNK, {0}, {0}, {0}},
      {"array, compact JSON", store_multirow, &darr, &rc, CHUNK, {0}, {0},
       {0}},
      {"LOAD DATA LOCAL", store_load, NULL, &r, CHUNK, {0}, {0}, {0}},
      {"raw array, text", store_raw, &rawtxt, &r, CHUNK, {0}, {0}, {0}},
      {"raw array, BLOB", store_raw, &rawblob, &r, CHUNK, {0}, {0}, {0}},
      {"raw array, DATETIME", store_raw, &rawtime, &r, CHUNK, {0}, {0}, {0}},
      {"raw, small txns", store_raw, &rawtxt, &r, small, {0}, {0}, {0}},
      {"raw, small, lean", store_raw, &rawlean, &r, small, {0}, {0}, {0}},
      {"raw, 500, lean", store_raw, &rawlean, &r, CHUNK, {0}, {0}, {0}},
      {"plog old: SET+txn", store_multirow, &dold, &r, CHUNK, {0}, {0}, {0}},
      {"plog new: SET, auto", store_multirow, &dauto, &r, CHUNK, {0}, {0},
       {0}},
      {"old, small", store_multirow, &dold, &r, small, {0}, {0}, {0}},
      {"new, small", store_multirow, &dauto, &r, small, {0}, {0}, {0}}};
  static const char *const keys[WAYS] = {
      "multirow", "array",    "compact",  "load",     "rawtext",
      "rawblob",  "rawtime",  "rawsmall", "rawsmalllean", "rawlean",
      "old",      "new",      "oldsmall", "newsmall"};
  const char *pick = getenv("BENCH_PLOG_WAYS");
  struct way ways[16];
  int nw = 0;
  if (!pick || !*pick) {
    for (int w = 0; w < 4; w++) /* the raw ways only when asked for */
      ways[nw++] = all[w];
  } else { /* in the order given; a name given twice runs twice (does
              the order matter?) */
    for (const char *t = pick; *t && nw < 16;) {
      size_t len = strcspn(t, ",");
      for (int w = 0; w < WAYS; w++)
        if (strlen(keys[w]) == len && strncmp(t, keys[w], len) == 0)
          ways[nw++] = all[w];
      t += len + (t[len] == ',');
    }
  }
  if (nw == 0)
    die("BENCH_PLOG_WAYS names no way", pick);
  int ok = 1;
  for (int k = 0; k < reps; k++)
    for (int w = 0; w < nw; w++)
      run_once(&ways[w], k, my, ways[w].r);
  for (int w = 0; w < nw; w++) {
    int once = repeat_ok(&ways[w], my, ways[w].r);
    ok &= once;
    printf("  %-20s client %5.1f us/row  server %5.1f us/row  %6.0f rows/s"
           "  (runs: server", ways[w].name, median(ways[w].cl, reps),
           median(ways[w].sv, reps), median(ways[w].rs, reps));
    for (int k = 0; k < reps; k++)
      printf(" %.1f", ways[w].sv[k]);
    printf(")  stored again: %s\n", once ? "each row once" : "ROWS DOUBLED");
  }

  q(my, "DROP DATABASE " DBNAME);
  mysql_close(my);
  db_release(pa, ca);
  db_pool_destroy(pa);
  db_release(p, c);
  db_pool_destroy(p);
  return ok ? 0 : 1;
}
