/* test_db.c - the MariaDB layer (src/db.c) against a real server.
 *
 * Needs MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD and MLOPSD_TEST_DB_DIR
 * (tests/run.sh provides them; by hand:
 *   DIR=$(mktemp -d); eval "$(tests/mariadb.sh start $DIR)"; ...;
 *   tests/mariadb.sh stop $DIR).
 * Works in its own database it_db.  The restart/stop tests stop and start
 * that server with tests/mariadb.sh (found through MLOPSD_SRC, else the
 * current directory) and leave it running.
 *
 * check: tsan
 */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/db.h"
#include "mlopsd/log.h"

static struct err E;
static struct db_pool *P; /* size 4, database it_db */
static const char *HOST, *USER, *PASS, *DIR_;
static int PORT;
static char SCRIPT[1024];

/* The test server's options (fx_db_opts) with PASSWORD, 5 s to connect,
 * 60 s to read. */
static struct db_opts opts_for(const char *database, const char *password,
                               int size)
{
  struct db_opts o = fx_db_opts(database, size);
  o.password = password;
  o.connect_timeout_s = 5;
  o.read_timeout_s = 60;
  return o;
}

static int64_t q1(struct db_conn *c, const char *sql)
{
  int64_t v = INT64_MIN;
  enum err_code rc = db_query_i64(c, sql, NULL, 0, &v, &E);
  if (rc != ERR_OK) {
    fprintf(stderr, "  q1(%s): %s\n", sql, E.msg);
    return INT64_MIN;
  }
  return v;
}

static int sh(const char *fmt, ...) MLOPSD_PRINTF(1, 2);
static int sh(const char *fmt, ...)
{
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc != 0)
    fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
  return rc;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static long rss_kb(void)
{
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (!f)
    return 0;
  if (fscanf(f, "%ld %ld", &pages, &res) != 2)
    res = 0;
  fclose(f);
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ------------------------------------------------------------------ */

/* The table CREATE names (CREATE TABLE name ...), dropped and made again
 * on C. */
static void fresh_table(struct db_conn *c, const char *create)
{
  char name[64] = "", drop[128];
  enum err_code rc;
  if (sscanf(create, "CREATE TABLE %63s", name) != 1) {
    check_fail_at(__FILE__, __LINE__, "not a CREATE TABLE: %s", create);
    return;
  }
  snprintf(drop, sizeof(drop), "DROP TABLE IF EXISTS %s", name);
  if ((rc = db_exec(c, drop, NULL, &E)) != ERR_OK)
    check_fail_at(__FILE__, __LINE__, "%s: %s: %s", drop, err_str(rc), E.msg);
  if ((rc = db_exec(c, create, NULL, &E)) != ERR_OK)
    check_fail_at(__FILE__, __LINE__, "%s: %s: %s", create, err_str(rc),
                  E.msg);
}

TEST(t_ident)
{
  CHECK(db_ident_ok("credit_score"));
  CHECK(db_ident_ok("_x9"));
  CHECK(!db_ident_ok(""));
  CHECK(!db_ident_ok(NULL));
  CHECK(!db_ident_ok("9abc"));
  CHECK(!db_ident_ok("a-b"));
  CHECK(!db_ident_ok("a b"));
  CHECK(!db_ident_ok("t`; DROP TABLE x"));
  CHECK(!db_ident_ok("db.t")); /* bulk insert accepts schema.t itself */
  char l64[66], l65[67];
  memset(l64, 'a', 64);
  l64[64] = '\0';
  memset(l65, 'a', 65);
  l65[65] = '\0';
  CHECK(db_ident_ok(l64));
  CHECK(!db_ident_ok(l65));
  CHECK(db_errno_retryable(1213));
  CHECK(db_errno_retryable(1205));
  CHECK(!db_errno_retryable(1062));
}

struct waiter {
  struct db_pool *p;
  enum err_code rc;
  struct db_conn *c;
};

static void *waiter_main(void *arg)
{
  struct waiter *w = arg;
  struct err e;
  w->rc = db_acquire(w->p, 30000, &w->c, &e);
  return NULL;
}

TEST(t_pool_exhaustion)
{
  struct db_opts o = opts_for("it_db", PASS, 2);
  struct db_pool *p = NULL;
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  struct db_pool_stats st;
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.open, 0); /* lazy */
  struct db_conn *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(db_acquire(p, 5000, &a, &E));
  CHECK_OK(db_acquire(p, 5000, &b, &E));
  CHECK(a && b && a != b);
  CHECK_EQ_INT(db_acquire(p, 150, &c, &E), ERR_TIMEOUT);
  CHECK(c == NULL);
  CHECK_HAS(E.msg, "no free database connection");
  CHECK_EQ_INT(db_acquire(p, 0, &c, &E), ERR_TIMEOUT);
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.size, 2);
  CHECK_EQ_INT(st.in_use, 2);
  CHECK_EQ_INT(st.timeouts, 2);
  CHECK_EQ_INT(st.connects, 2);

  /* a waiter is woken by a release */
  struct waiter w = {p, ERR_INTERNAL, NULL};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, waiter_main, &w) == 0);
  for (int i = 0; i < 500; i++) {
    db_pool_stats(p, &st);
    if (st.waiting == 1)
      break;
    fx_msleep(10);
  }
  CHECK_EQ_INT(st.waiting, 1);
  db_release(p, a);
  pthread_join(th, NULL);
  CHECK_EQ_INT(w.rc, ERR_OK);
  CHECK(w.c == a); /* the released one, already connected */
  CHECK_EQ_INT(q1(w.c, "SELECT 7"), 7);
  db_release(p, w.c);
  db_release(p, b);
  db_release(p, NULL);
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.in_use, 0);
  CHECK_EQ_INT(st.open, 2);
  CHECK_EQ_INT(st.connects, 2);
  db_pool_destroy(p);
  db_pool_destroy(NULL);
}

struct typed_row {
  int id;
  int i_null;
  int64_t i;
  double d;
  const char *s;
  size_t slen;
  const char *b;
  size_t blen;
};

static char BIN[256];
static const char HANGUL[] = "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4 \xe2\x9c\x93 "
                             "\xf0\x9f\x98\x80 emoji";
static const char INJ[] = "Robert'); DROP TABLE types;--";
static const char QUOTES[] = "back\\slash \"dq\" 'sq' `bt` \\' \\\\";
static const char NUL_STR[] = "a\0b'\0\"\\";

static struct typed_row TROWS[] = {
    {1, 0, INT64_MIN, -1.7976931348623157e308, "", 0, "", 0},
    {2, 0, INT64_MAX, 2.2250738585072014e-308, HANGUL, sizeof(HANGUL) - 1,
     NUL_STR, sizeof(NUL_STR) - 1},
    {3, 0, 0, 0.1, INJ, sizeof(INJ) - 1, QUOTES, sizeof(QUOTES) - 1},
    {4, 1, 0, NAN, NULL, 0, NULL, 0},
    {5, 0, -1, 3.141592653589793, QUOTES, sizeof(QUOTES) - 1, BIN, 256},
    {6, 0, 1, 4.9406564584124654e-324, "x", 1, "y", 1},
};
#define NTROWS ((int)(sizeof(TROWS) / sizeof(TROWS[0])))

struct typed_ctx {
  int n, bad;
};

static int typed_cb(void *user, const struct db_row *r)
{
  struct typed_ctx *t = user;
  const struct typed_row *x = &TROWS[t->n++];
  size_t len;
  if (db_row_ncols(r) != 6 || strcmp(db_row_name(r, 2), "d") != 0)
    t->bad |= 1;
  if (db_row_i64(r, 0) != x->id)
    t->bad |= 2;
  if (x->i_null) {
    if (!db_row_is_null(r, 1) || db_row_str(r, 1, &len) != NULL ||
        db_row_i64(r, 1) != 0 || !isnan(db_row_f64(r, 2)) ||
        !db_row_is_null(r, 3) || !db_row_is_null(r, 4))
      t->bad |= 4;
    return 0;
  }
  if (db_row_i64(r, 1) != x->i)
    t->bad |= 8;
  if (db_row_f64(r, 2) != x->d) {
    fprintf(stderr, "  row %d: d %s != %.17g\n", x->id,
            db_row_str(r, 2, NULL), x->d);
    t->bad |= 16;
  }
  const char *s = db_row_str(r, 3, &len);
  if (!s || len != x->slen || memcmp(s, x->s, len) != 0 || s[len] != '\0')
    t->bad |= 32;
  s = db_row_str(r, 4, &len);
  if (!s || len != x->blen || memcmp(s, x->b, len) != 0)
    t->bad |= 64;
  if (db_row_str(r, 9, &len) != NULL || !db_row_is_null(r, -1) ||
      strcmp(db_row_name(r, 9), "") != 0)
    t->bad |= 128;
  return 0;
}

struct str_ctx {
  char buf[512];
  size_t len;
  int null;
};

static int str_cb(void *user, const struct db_row *r)
{
  struct str_ctx *s = user;
  size_t len;
  const char *v = db_row_str(r, 0, &len);
  s->null = v == NULL;
  if (v && len < sizeof(s->buf)) {
    memcpy(s->buf, v, len);
    s->len = len;
  }
  return 0;
}

TEST(t_typed_roundtrip)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  for (int i = 0; i < 256; i++)
    BIN[i] = (char)i;
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS types", NULL, &E));
  CHECK_OK(db_exec(c,
                   "CREATE TABLE types (id INT PRIMARY KEY, i BIGINT NULL, "
                   "d DOUBLE NULL, s TEXT NULL, b BLOB NULL, f FLOAT NULL)",
                   NULL, &E));
  for (int k = 0; k < NTROWS; k++) {
    const struct typed_row *x = &TROWS[k];
    struct db_val v[6] = {DB_V_INT(x->id), DB_V_NULL, DB_V_NULL, DB_V_NULL,
                          DB_V_NULL, DB_V_DBL(0.87)};
    if (!x->i_null) {
      v[1] = DB_V_INT(x->i);
      v[2] = DB_V_DBL(x->d);
      v[3] = DB_V_STRN(x->s, x->slen);
      v[4] = DB_V_STRN(x->b, x->blen);
    } else {
      v[3] = DB_V_STR(NULL); /* DB_TEXT with NULL pointer is NULL too */
      v[5] = DB_V_NULL;
    }
    int64_t aff = 0;
    CHECK_OK(db_exec_params(c, "INSERT INTO types VALUES (?,?,?,?,?,?)", v, 6,
                            &aff, &E));
    CHECK_EQ_INT(aff, 1);
  }
  struct typed_ctx t = {0, 0};
  int64_t n = 0;
  CHECK_OK(db_query(c, "SELECT id, i, d, s, b, f FROM types ORDER BY id",
                    NULL, 0, typed_cb, &t, &n, &E));
  CHECK_EQ_INT(n, NTROWS);
  CHECK_EQ_INT(t.n, NTROWS);
  CHECK_EQ_INT(t.bad, 0);
  /* the injection attempt is data, the table is still there */
  CHECK_EQ_INT(q1(c, "SELECT COUNT(*) FROM types"), NTROWS);
  struct db_val pv = DB_V_STRN(INJ, sizeof(INJ) - 1);
  int64_t cnt = -1;
  CHECK_OK(db_query_i64(c, "SELECT COUNT(*) FROM types WHERE s = ?", &pv, 1,
                        &cnt, &E));
  CHECK_EQ_INT(cnt, 1);
  /* a string parameter comes back byte for byte */
  struct str_ctx sc;
  memset(&sc, 0, sizeof(sc));
  struct db_val q = DB_V_STRN(QUOTES, sizeof(QUOTES) - 1);
  CHECK_OK(db_query(c, "SELECT ?", &q, 1, str_cb, &sc, NULL, &E));
  CHECK(sc.len == sizeof(QUOTES) - 1 && memcmp(sc.buf, QUOTES, sc.len) == 0);
  /* FLOAT prints as the short form */
  memset(&sc, 0, sizeof(sc));
  CHECK_OK(db_query(c, "SELECT f FROM types WHERE id = 1", NULL, 0, str_cb,
                    &sc, NULL, &E));
  CHECK_EQ_STR(sc.buf, "0.87");
  /* DOUBLE columns come back as their shortest round-trip text (bound as
   * doubles and formatted by db.c: some libmariadb versions give '' for
   * a DOUBLE bound as a string) */
  static const char *const dtext[] = {"0.1", "-1.2345678901234567e+300",
                                      "1e-300", "0.30000000000000004"};
  for (int k = 0; k < 4; k++) {
    struct db_val dp = DB_V_DBL(strtod(dtext[k], NULL));
    memset(&sc, 0, sizeof(sc));
    CHECK_OK(db_query(c, "SELECT CAST(? AS DOUBLE)", &dp, 1, str_cb, &sc,
                      NULL, &E));
    CHECK_EQ_STR(sc.buf, dtext[k]);
  }
  /* doubles through expressions */
  struct db_val dv[2] = {DB_V_DBL(1.0 / 3.0), DB_V_INT(-42)};
  memset(&sc, 0, sizeof(sc));
  CHECK_OK(db_query(c, "SELECT ? * 3 - 1", dv, 1, str_cb, &sc, NULL, &E));
  CHECK_NEAR(strtod(sc.buf, NULL), 0.0, 1e-15);
  int64_t iv = 0;
  CHECK_OK(db_query_i64(c, "SELECT ? + 0", dv + 1, 1, &iv, &E));
  CHECK_EQ_INT(iv, -42);
  /* wrong parameter count */
  CHECK_EQ_INT(db_exec_params(c, "SELECT ?, ?", dv, 1, NULL, &E), ERR_INVAL);
  CHECK_HAS(E.msg, "expects 2 parameters, got 1");
  CHECK_EQ_INT(q1(c, "SELECT 5"), 5); /* still usable */
  db_release(P, c);
}

struct stream_ctx {
  int64_t n, sum;
  uint64_t h;
  int bad;
  long rss_first;
  int stop_at;
};

static int stream_cb(void *user, const struct db_row *r)
{
  struct stream_ctx *s = user;
  size_t len;
  if (s->n == 0)
    s->rss_first = rss_kb();
  s->n++;
  int64_t seq = db_row_i64(r, 0);
  s->sum += seq;
  const char *name = db_row_str(r, 1, &len);
  if (name)
    s->h = fnv(s->h, name, len);
  const char *pad = db_row_str(r, 2, &len);
  if (!pad || len != 200 || pad[0] != (char)('A' + seq % 26) ||
      pad[199] != pad[0])
    s->bad++;
  return s->stop_at && s->n >= s->stop_at;
}

#define STREAM_SQL                                                            \
  "SELECT seq, CONCAT('row-', seq), REPEAT(CHAR(65 + seq % 26), 200) "        \
  "FROM seq_1_to_200000 ORDER BY seq"

TEST(t_stream_200k)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  uint64_t want = 1469598103934665603ULL;
  char buf[32];
  for (int i = 1; i <= 200000; i++) {
    int n = snprintf(buf, sizeof(buf), "row-%d", i);
    want = fnv(want, buf, (size_t)n);
  }
  struct stream_ctx s = {0, 0, 1469598103934665603ULL, 0, 0, 0};
  long before = rss_kb();
  int64_t n = 0;
  CHECK_OK(db_query(c, STREAM_SQL, NULL, 0, stream_cb, &s, &n, &E));
  CHECK_EQ_INT(n, 200000);
  CHECK_EQ_INT(s.n, 200000);
  CHECK_EQ_INT(s.sum, 20000100000LL);
  CHECK(s.h == want);
  CHECK_EQ_INT(s.bad, 0);
  /* ~45 MB of rows: a buffered read would hold them all before the first
   * callback; streaming does not grow by more than a few buffers */
  CHECK(s.rss_first - before < 16 * 1024);
  if (s.rss_first - before >= 16 * 1024)
    fprintf(stderr, "  rss grew %ld kB before the first row\n",
            s.rss_first - before);
  db_release(P, c);
}

struct big_ctx {
  int n, bad;
};

static int big_cb(void *user, const struct db_row *r)
{
  struct big_ctx *b = user;
  size_t len;
  int64_t k = db_row_i64(r, 0);
  const char *v = db_row_str(r, 1, &len);
  size_t want = k < 0 ? 3000000 : (size_t)2 << (2 * k);
  if (!v || len != want || strlen(v) != want)
    b->bad |= 1;
  else if (v[0] != (k < 0 ? 'z' : 'a') || v[len - 1] != (k < 0 ? 'z' : 'b'))
    b->bad |= 2;
  const char *t = db_row_str(r, 2, &len);
  if (!t || strcmp(t, "tail") != 0)
    b->bad |= 4;
  b->n++;
  return 0;
}

TEST(t_big_values)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  const char *sql =
      "SELECT seq, REPEAT('ab', POW(4, seq)), 'tail' FROM seq_0_to_9 "
      "UNION ALL SELECT -1, REPEAT('z', 3000000), 'tail' "
      "UNION ALL SELECT 0, 'ab', 'tail'";
  for (int round = 0; round < 2; round++) { /* 2nd: cached statement */
    struct big_ctx b = {0, 0};
    CHECK_OK(db_query(c, sql, NULL, 0, big_cb, &b, NULL, &E));
    CHECK_EQ_INT(b.n, 12);
    CHECK_EQ_INT(b.bad, 0);
  }
  db_release(P, c);
}

static int count_cb(void *user, const struct db_row *r)
{
  (void)r;
  int *n = user;
  return ++*n >= 10;
}

TEST(t_early_stop_reuse)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  int seen = 0;
  int64_t n = -1;
  CHECK_OK(db_query(c, STREAM_SQL, NULL, 0, count_cb, &seen, &n, &E));
  CHECK_EQ_INT(seen, 10);
  CHECK_EQ_INT(n, 10);
  CHECK_EQ_INT(q1(c, "SELECT 42"), 42);
  /* same statement again, to the end, rows only counted */
  CHECK_OK(db_query(c, STREAM_SQL, NULL, 0, NULL, NULL, &n, &E));
  CHECK_EQ_INT(n, 200000);
  /* db_query_i64 stops after one row of many */
  CHECK_EQ_INT(q1(c, "SELECT seq FROM seq_1_to_100000"), 1);
  int64_t v = 0;
  CHECK_EQ_INT(db_query_i64(c, "SELECT seq FROM seq_1_to_3 WHERE seq > 5",
                            NULL, 0, &v, &E),
               ERR_NOTFOUND);
  CHECK_HAS(E.msg, "no row");
  CHECK_EQ_INT(db_query_i64(c, "SELECT NULL", NULL, 0, &v, &E),
               ERR_NOTFOUND);
  fresh_table(c, "CREATE TABLE es (a INT)");
  struct db_val one = DB_V_INT(1);
  CHECK_OK(db_exec_params(c, "INSERT INTO es VALUES (?)", &one, 1, NULL, &E));
  CHECK_EQ_INT(q1(c, "SELECT SUM(a) FROM es"), 1);
  db_release(P, c);
}

static int nested_cb(void *user, const struct db_row *r)
{
  (void)r;
  struct db_conn *c = user;
  int64_t v;
  /* the connection is streaming: must refuse, not corrupt the protocol */
  if (db_query_i64(c, "SELECT 1", NULL, 0, &v, &E) != ERR_STATE)
    E.code = ERR_INTERNAL;
  return 0;
}

TEST(t_misuse)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  err_clear(&E);
  struct err e2;
  CHECK_OK(db_query(c, "SELECT seq FROM seq_1_to_3", NULL, 0, nested_cb, c,
                    NULL, &e2));
  CHECK(E.code == ERR_STATE);
  CHECK_HAS(E.msg, "busy streaming");
  CHECK_EQ_INT(q1(c, "SELECT 3"), 3);
  CHECK_EQ_INT(db_exec(c, "SELEC 1", NULL, &E), ERR_DB);
  CHECK_HAS(E.msg, "SELEC 1: ");
  CHECK_HAS(E.msg, "SQL syntax");
  CHECK_EQ_INT(db_last_errno(c), 1064);
  CHECK_EQ_INT(db_exec_params(c, "SELEC ?", NULL, 0, NULL, &E), ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1064);
  CHECK_EQ_INT(db_query(c, "SELECT * FROM no_such_table", NULL, 0, NULL,
                        NULL, NULL, &E),
               ERR_DB);
  CHECK_HAS(E.msg, "doesn't exist");
  CHECK_EQ_INT(db_last_errno(c), 1146);
  /* long SQL is cut to ~80 characters in messages */
  char sql[400];
  snprintf(sql, sizeof(sql),
           "SELECT   a,\n\n b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, "
           "r, s, t, u, v, w, x, y, z, aa, bb, cc, dd FROM nowhere_%d", 1);
  CHECK_EQ_INT(db_exec(c, sql, NULL, &E), ERR_DB);
  CHECK_HAS(E.msg, "SELECT a, b, c, d,");
  CHECK_HAS(E.msg, "...: ");
  CHECK_EQ_INT(q1(c, "SELECT 4"), 4);
  db_release(P, c);
}

TEST(t_exec)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  int64_t aff = -1;
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS ex", NULL, &E));
  CHECK_OK(db_exec(c,
                   "CREATE TABLE ex (id INT AUTO_INCREMENT PRIMARY KEY, "
                   "v INT)",
                   &aff, &E));
  CHECK_OK(db_exec(c, "INSERT INTO ex (v) VALUES (1),(2),(3)", &aff, &E));
  CHECK_EQ_INT(aff, 3);
  CHECK_EQ_INT(db_last_insert_id(c), 1); /* first id of the statement */
  CHECK_OK(db_exec(c, "UPDATE ex SET v = v + 1 WHERE v >= 2", &aff, &E));
  CHECK_EQ_INT(aff, 2);
  CHECK_OK(db_exec(c, "SELECT * FROM ex", &aff, &E)); /* rows dropped */
  struct db_val v = DB_V_INT(9);
  CHECK_OK(db_exec_params(c, "INSERT INTO ex (v) VALUES (?)", &v, 1, &aff,
                          &E));
  CHECK_EQ_INT(db_last_insert_id(c), 4);
  CHECK_OK(db_exec_params(c, "SELECT * FROM ex WHERE v > ?", &v, 1, &aff,
                          &E));
  CHECK_EQ_INT(q1(c, "SELECT SUM(v) FROM ex"), 1 + 3 + 4 + 9);

  /* procedures return several results: all are read */
  CHECK_OK(db_exec(c, "DROP PROCEDURE IF EXISTS two_sets", NULL, &E));
  CHECK_OK(db_exec(c,
                   "CREATE PROCEDURE two_sets(IN x INT) BEGIN "
                   "SELECT seq FROM seq_1_to_5 WHERE seq <= x; "
                   "SELECT 'second'; END",
                   NULL, &E));
  int64_t n = 0;
  struct db_val three = DB_V_INT(3);
  CHECK_OK(db_query(c, "CALL two_sets(?)", &three, 1, NULL, NULL, &n, &E));
  CHECK_EQ_INT(n, 3); /* the first result set */
  CHECK_EQ_INT(q1(c, "SELECT 11"), 11);
  CHECK_OK(db_exec_params(c, "CALL two_sets(?)", &three, 1, NULL, &E));
  CHECK_EQ_INT(q1(c, "SELECT 12"), 12);
  CHECK_OK(db_exec(c, "CALL two_sets(2)", NULL, &E));
  CHECK_EQ_INT(q1(c, "SELECT 13"), 13);

  /* several statements in one db_exec only when asked for */
  const char *script = "CREATE TABLE ms (a INT); INSERT INTO ms VALUES (1);"
                       " INSERT INTO ms VALUES (2), (3)";
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS ms", NULL, &E));
  CHECK_EQ_INT(db_exec(c, script, NULL, &E), ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1064);
  db_release(P, c);

  struct db_opts o = opts_for("it_db", PASS, 1);
  o.multi_statements = 1;
  struct db_pool *p = NULL;
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  REQUIRE_OK(db_acquire(p, 10000, &c, &E));
  aff = 0;
  CHECK_OK(db_exec(c, script, &aff, &E));
  CHECK_EQ_INT(aff, 3);
  CHECK_EQ_INT(q1(c, "SELECT SUM(a) FROM ms"), 6);
  /* an error in a later statement is reported, the connection survives */
  CHECK_EQ_INT(db_exec(c, "INSERT INTO ms VALUES (4); INSERT INTO nope "
                          "VALUES (5)", NULL, &E),
               ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1146);
  CHECK_EQ_INT(q1(c, "SELECT SUM(a) FROM ms"), 10);
  db_release(p, c);
  db_pool_destroy(p);
}

struct cols_ctx {
  int ncols;
  char last[16];
};

static int cols_cb(void *user, const struct db_row *r)
{
  struct cols_ctx *cc = user;
  cc->ncols = db_row_ncols(r);
  const char *v = db_row_str(r, cc->ncols - 1, NULL);
  snprintf(cc->last, sizeof(cc->last), "%s", v ? v : "(null)");
  return 0;
}

TEST(t_stmt_cache)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  char sql[64];
  int bad = 0;
  /* more distinct statements than the cache holds, twice */
  for (int round = 0; round < 2; round++) {
    for (int k = 0; k < 100; k++) {
      int kk = round ? 99 - k : k;
      snprintf(sql, sizeof(sql), "SELECT ? + %d", kk);
      struct db_val v = DB_V_INT(1000);
      int64_t out = 0;
      if (db_query_i64(c, sql, &v, 1, &out, &E) != ERR_OK || out != 1000 + kk)
        bad++;
    }
  }
  CHECK_EQ_INT(bad, 0);
  /* the server's count of open prepared statements stays bounded */
  int64_t open = q1(c, "SELECT VARIABLE_VALUE FROM information_schema."
                       "GLOBAL_STATUS WHERE VARIABLE_NAME = "
                       "'PREPARED_STMT_COUNT'");
  CHECK(open >= 1 && open <= 64 * 4 + 8);
  /* a cached SELECT * notices ALTER TABLE */
  fresh_table(c, "CREATE TABLE al (a INT)");
  CHECK_OK(db_exec(c, "INSERT INTO al VALUES (1)", NULL, &E));
  struct str_ctx sc;
  memset(&sc, 0, sizeof(sc));
  CHECK_OK(db_query(c, "SELECT * FROM al", NULL, 0, str_cb, &sc, NULL, &E));
  CHECK_EQ_STR(sc.buf, "1");
  CHECK_OK(db_exec(c, "ALTER TABLE al ADD COLUMN b VARCHAR(8) DEFAULT 'bee'",
                   NULL, &E));
  struct cols_ctx cc = {0, ""};
  CHECK_OK(db_query(c, "SELECT * FROM al", NULL, 0, cols_cb, &cc, NULL, &E));
  CHECK_EQ_INT(cc.ncols, 2);
  CHECK_EQ_STR(cc.last, "bee");
  db_release(P, c);
}

static int64_t count_in(struct db_conn *c, const char *table)
{
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s", table);
  return q1(c, sql);
}

static enum err_code txn_two(struct db_conn *c, void *user, struct err *e)
{
  int *calls = user;
  ++*calls;
  struct db_val v[2] = {DB_V_INT(100), DB_V_INT(101)};
  enum err_code rc =
      db_exec_params(c, "INSERT INTO tx VALUES (?, 0)", v, 1, NULL, e);
  if (rc == ERR_OK)
    rc = db_exec_params(c, "INSERT INTO tx VALUES (?, 0)", v + 1, 1, NULL, e);
  return rc;
}

static enum err_code txn_fail(struct db_conn *c, void *user, struct err *e)
{
  int *calls = user;
  ++*calls;
  struct db_val v = DB_V_INT(200);
  enum err_code rc =
      db_exec_params(c, "INSERT INTO tx VALUES (?, 0)", &v, 1, NULL, e);
  if (rc != ERR_OK)
    return rc;
  return err_set(e, ERR_INVAL, "caller gave up");
}

/* INSERT (ID, 0) INTO tx on C. */
static void insert_tx(struct db_conn *c, int id)
{
  struct db_val v = DB_V_INT(id);
  enum err_code rc =
      db_exec_params(c, "INSERT INTO tx VALUES (?, 0)", &v, 1, NULL, &E);
  if (rc != ERR_OK)
    check_fail_at(__FILE__, __LINE__, "INSERT INTO tx VALUES (%d, 0): %s: %s",
                  id, err_str(rc), E.msg);
}

TEST(t_transactions)
{
  struct db_conn *c1, *c2;
  REQUIRE_OK(db_acquire(P, 10000, &c1, &E));
  REQUIRE_OK(db_acquire(P, 10000, &c2, &E));
  fresh_table(c1, "CREATE TABLE tx (id INT PRIMARY KEY, v INT)");
  CHECK_OK(db_begin(c1, &E));
  CHECK_EQ_INT(db_begin(c1, &E), ERR_STATE);
  insert_tx(c1, 1);
  CHECK_EQ_INT(count_in(c1, "tx"), 1);
  CHECK_EQ_INT(count_in(c2, "tx"), 0);
  CHECK_OK(db_rollback(c1, &E));
  CHECK_EQ_INT(count_in(c1, "tx"), 0);
  CHECK_OK(db_begin(c1, &E));
  insert_tx(c1, 1);
  CHECK_OK(db_commit(c1, &E));
  CHECK_EQ_INT(count_in(c2, "tx"), 1);

  /* released inside a transaction: rolled back */
  CHECK_OK(db_begin(c1, &E));
  insert_tx(c1, 2);
  db_release(P, c1);
  CHECK_EQ_INT(count_in(c2, "tx"), 1);
  REQUIRE_OK(db_acquire(P, 10000, &c1, &E));
  CHECK_EQ_INT(count_in(c1, "tx"), 1);
  /* a transaction begun with plain SQL is seen too */
  CHECK_OK(db_exec(c1, "BEGIN", NULL, &E));
  insert_tx(c1, 3);
  db_release(P, c1);
  CHECK_EQ_INT(count_in(c2, "tx"), 1);
  REQUIRE_OK(db_acquire(P, 10000, &c1, &E));

  int calls = 0;
  CHECK_OK(db_txn_retry(c1, 3, txn_two, &calls, &E));
  CHECK_EQ_INT(calls, 1);
  CHECK_EQ_INT(count_in(c2, "tx"), 3);
  calls = 0;
  CHECK_EQ_INT(db_txn_retry(c1, 3, txn_fail, &calls, &E), ERR_INVAL);
  CHECK_EQ_INT(calls, 1); /* not a retryable error */
  CHECK_EQ_INT(count_in(c2, "tx"), 3);
  /* a duplicate is not retried either */
  calls = 0;
  CHECK_EQ_INT(db_txn_retry(c1, 3, txn_two, &calls, &E), ERR_DB);
  CHECK_EQ_INT(calls, 1);
  CHECK_EQ_INT(db_last_errno(c1), 1062);
  CHECK_EQ_INT(q1(c1, "SELECT 1"), 1);
  db_release(P, c1);
  db_release(P, c2);
}

struct lock_ctx {
  struct db_conn *holder;
  int calls;
};

static enum err_code txn_lock(struct db_conn *c, void *user, struct err *e)
{
  struct lock_ctx *l = user;
  if (++l->calls == 2) {
    struct err e2;
    (void)db_rollback(l->holder, &e2); /* the other side lets go */
  }
  struct db_val v = DB_V_INT(1);
  return db_exec_params(c, "UPDATE lk SET v = v + 10 WHERE id = ?", &v, 1,
                        NULL, e);
}

TEST(t_lock_wait_retry)
{
  struct db_conn *c1, *c2;
  REQUIRE_OK(db_acquire(P, 10000, &c1, &E));
  REQUIRE_OK(db_acquire(P, 10000, &c2, &E));
  fresh_table(c1, "CREATE TABLE lk (id INT PRIMARY KEY, v INT)");
  CHECK_OK(db_exec(c1, "INSERT INTO lk VALUES (1, 0)", NULL, &E));
  CHECK_OK(db_exec(c2, "SET SESSION innodb_lock_wait_timeout = 1", NULL, &E));
  CHECK_OK(db_begin(c1, &E));
  CHECK_OK(db_exec(c1, "UPDATE lk SET v = v + 1 WHERE id = 1", NULL, &E));

  struct db_val v = DB_V_INT(1);
  CHECK_EQ_INT(db_exec_params_retry(c2, "UPDATE lk SET v = v + 10 WHERE "
                                        "id = ?",
                                    &v, 1, 2, NULL, &E),
               ERR_DB);
  CHECK_EQ_INT(db_last_errno(c2), 1205);
  CHECK_HAS(E.msg, "UPDATE lk SET v = v + 10 WHERE id = ?: Lock wait timeout");

  struct lock_ctx l = {c1, 0};
  CHECK_OK(db_txn_retry(c2, 3, txn_lock, &l, &E));
  CHECK_EQ_INT(l.calls, 2);
  CHECK_EQ_INT(q1(c2, "SELECT v FROM lk WHERE id = 1"), 10);
  CHECK_OK(db_exec(c2, "SET SESSION innodb_lock_wait_timeout = DEFAULT",
                   NULL, &E));
  db_release(P, c1);
  db_release(P, c2);
}

struct dl_ctx {
  struct db_conn *c;
  enum err_code rc;
  unsigned errnum;
};

static void *dl_main(void *arg)
{
  struct dl_ctx *d = arg;
  struct err e;
  d->rc = db_exec(d->c, "UPDATE dl SET v = v + 1 WHERE id = 2", NULL, &e);
  d->errnum = db_last_errno(d->c);
  return NULL;
}

TEST(t_deadlock)
{
  struct db_conn *a, *b, *w;
  REQUIRE_OK(db_acquire(P, 10000, &a, &E));
  REQUIRE_OK(db_acquire(P, 10000, &b, &E));
  REQUIRE_OK(db_acquire(P, 10000, &w, &E));
  fresh_table(a, "CREATE TABLE dl (id INT PRIMARY KEY, v INT)");
  CHECK_OK(db_exec(a, "INSERT INTO dl VALUES (1, 0), (2, 0)", NULL, &E));
  CHECK_OK(db_begin(a, &E));
  CHECK_OK(db_exec(a, "UPDATE dl SET v = v + 1 WHERE id = 1", NULL, &E));
  CHECK_OK(db_begin(b, &E));
  CHECK_OK(db_exec(b, "UPDATE dl SET v = v + 1 WHERE id = 2", NULL, &E));
  struct dl_ctx d = {a, ERR_INTERNAL, 0};
  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, dl_main, &d) == 0);
  /* wait until a is blocked on b's row.  InnoDB refreshes the innodb_trx
   * snapshot only when it was not read for 100 ms: poll slower than that */
  int64_t waiting = 0;
  for (int i = 0; i < 200 && waiting < 1; i++) {
    fx_msleep(150);
    waiting = q1(w, "SELECT COUNT(*) FROM information_schema.innodb_trx "
                    "WHERE trx_state = 'LOCK WAIT'");
  }
  CHECK_EQ_INT(waiting, 1);
  enum err_code rcb =
      db_exec(b, "UPDATE dl SET v = v + 1 WHERE id = 1", NULL, &E);
  unsigned nb = db_last_errno(b);
  if (rcb == ERR_OK)
    CHECK_OK(db_commit(b, &E)); /* lets a's thread finish */
  pthread_join(th, NULL);
  /* exactly one of the two was chosen as the victim */
  int victims = (rcb == ERR_DB && nb == 1213) + (d.rc == ERR_DB &&
                                                 d.errnum == 1213);
  int winners = (rcb == ERR_OK) + (d.rc == ERR_OK);
  CHECK_EQ_INT(victims, 1);
  CHECK_EQ_INT(winners, 1);
  if (rcb != ERR_OK)
    CHECK_HAS(E.msg, "Deadlock");
  (void)db_rollback(a, &E);
  (void)db_rollback(b, &E);
  db_release(P, a);
  db_release(P, b);
  db_release(P, w);
}

/* db_bulk_insert's checks, with array binding (multirow 0: the default
 * against MariaDB) or multi-row statements (db_opts.multirow_insert) */
static void bulk_insert_checks(struct db_pool *pool, int multirow)
{
  struct db_conn *c, *c2;
  REQUIRE_OK(db_acquire(pool, 10000, &c, &E));
  REQUIRE_OK(db_acquire(pool, 10000, &c2, &E));
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS bi", NULL, &E));
  CHECK_OK(db_exec(c,
                   "CREATE TABLE bi (id BIGINT PRIMARY KEY, name VARCHAR(32), "
                   "score DOUBLE NULL, note TEXT NULL)",
                   NULL, &E));
  enum { N = 10000, NC = 4 };
  static const char *const cols[NC] = {"id", "name", "score", "note"};
  struct db_val *vals = calloc((size_t)N * NC, sizeof(*vals));
  char(*names)[16] = calloc(N, 16);
  char(*notes)[16] = calloc(N, 16);
  REQUIRE(vals && names && notes);
  int64_t nulls = 0;
  double ssum = 0;
  for (int i = 0; i < N; i++) {
    struct db_val *r = vals + (size_t)i * NC;
    snprintf(names[i], 16, "n%d", i);
    snprintf(notes[i], 16, "note-%d", i);
    r[0] = DB_V_INT(i + 1);
    r[1] = DB_V_STR(names[i]);
    if (i % 7 == 0) {
      r[2] = DB_V_NULL;
      nulls++;
    } else {
      r[2] = DB_V_DBL(i * 0.25);
      ssum += i * 0.25;
    }
    r[3] = i % 5 == 0 ? DB_V_NULL : DB_V_STR(notes[i]);
  }
  int64_t aff = 0;
  /* 33 batches of 300 and a remainder of 100 */
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, vals, N, 300, NULL, &aff, &E));
  CHECK_EQ_INT(aff, N);
  CHECK_EQ_INT(count_in(c2, "bi"), N);
  CHECK_EQ_INT(q1(c2, "SELECT SUM(id) FROM bi"), (int64_t)N * (N + 1) / 2);
  CHECK_EQ_INT(q1(c2, "SELECT COUNT(*) FROM bi WHERE score IS NULL"), nulls);
  CHECK_EQ_INT(q1(c2, "SELECT COUNT(*) FROM bi WHERE note IS NULL"), N / 5);
  CHECK_EQ_INT(q1(c2, "SELECT SUM(score) * 4 FROM bi"), (int64_t)(ssum * 4));
  CHECK_EQ_INT(q1(c2, "SELECT COUNT(*) FROM bi WHERE name = CONCAT('n', "
                      "id - 1)"),
               N);

  /* idempotent re-run */
  CHECK_OK(db_bulk_insert(c, "it_db.bi", cols, NC, vals, N, 0,
                          " ON DUPLICATE KEY UPDATE id = id", &aff, &E));
  CHECK_EQ_INT(aff, 0);
  CHECK_EQ_INT(count_in(c2, "bi"), N);

  /* multi-row: fewer rows than the batch use a one-off statement, closed
   * after use (a log flush of any size would otherwise keep a statement
   * per size); the full-batch statement stays cached.  Array binding: one
   * single-row statement, cached, whatever the row count. */
  static const char SUF[] = " ON DUPLICATE KEY UPDATE name = name";
  static const char PREP[] = "SELECT VARIABLE_VALUE FROM information_schema."
                             "GLOBAL_STATUS WHERE VARIABLE_NAME = "
                             "'PREPARED_STMT_COUNT'";
  /* (a fresh connection: c's cache may be full, and then any new
   * statement evicts another) */
  struct db_opts o1 = opts_for("it_db", PASS, 1);
  o1.multirow_insert = multirow;
  struct db_pool *p1 = NULL;
  struct db_conn *c1 = NULL;
  REQUIRE_OK(db_pool_create(&p1, &o1, &E));
  REQUIRE_OK(db_acquire(p1, 10000, &c1, &E));
  (void)q1(c2, PREP);
  int64_t open0 = q1(c2, PREP);
  /* A statement's close (COM_STMT_CLOSE) gets no answer: the server
   * handles it when it reads c1's next command.  A call of one statement
   * ends with no COMMIT after it (db.h), so a text-protocol round trip on
   * c1 (no prepared statement of its own) makes sure the one-off
   * statement is gone before the server's count is read. */
  for (int k = 1; k <= 5; k++)
    CHECK_OK(db_bulk_insert(c1, "bi", cols, NC, vals, 7 * k, 200, SUF, &aff,
                            &E));
  CHECK_OK(db_exec(c1, "DO 0", NULL, &E));
  CHECK_EQ_INT(q1(c2, PREP), open0 + (multirow ? 0 : 1));
  CHECK_OK(db_bulk_insert(c1, "bi", cols, NC, vals, 650, 200, SUF, &aff, &E));
  CHECK_OK(db_exec(c1, "DO 0", NULL, &E));
  CHECK_EQ_INT(q1(c2, PREP), open0 + 1);
  CHECK_OK(db_bulk_insert(c1, "bi", cols, NC, vals, 400, 200, SUF, &aff, &E));
  CHECK_OK(db_exec(c1, "DO 0", NULL, &E));
  CHECK_EQ_INT(q1(c2, PREP), open0 + 1);
  CHECK_EQ_INT(count_in(c2, "bi"), N);
  /* a column whose rows differ in type: multi-row statements */
  struct db_val mixed[2 * NC] = {
      DB_V_INT(N + 501), DB_V_STR("text"), DB_V_NULL, DB_V_NULL,
      DB_V_INT(N + 502), DB_V_INT(42),     DB_V_DBL(1.5), DB_V_NULL};
  CHECK_OK(db_bulk_insert(c1, "bi", cols, NC, mixed, 2, 200, NULL, &aff, &E));
  CHECK_EQ_INT(aff, 2);
  CHECK_EQ_INT(q1(c2, "SELECT COUNT(*) FROM bi WHERE id > 10500 AND "
                      "name IN ('text', '42')"),
               2);
  CHECK_OK(db_exec(c2, "DELETE FROM bi WHERE id > 10500", NULL, &E));
  db_release(p1, c1);
  db_pool_destroy(p1);

  /* all or nothing: the duplicate in the last batch undoes the others */
  for (int i = 0; i < 1000; i++)
    vals[(size_t)i * NC] = DB_V_INT(N + 1 + i);
  vals[(size_t)999 * NC] = DB_V_INT(5);
  CHECK_EQ_INT(db_bulk_insert(c, "bi", cols, NC, vals, 1000, 300, NULL, &aff,
                              &E),
               ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1062);
  CHECK_HAS(E.msg, "bulk insert into bi rows 901..1000: INSERT INTO `bi`");
  CHECK_HAS(E.msg, "Duplicate entry '5'");
  CHECK_EQ_INT(count_in(c2, "bi"), N);

  /* inside the caller's transaction */
  vals[(size_t)999 * NC] = DB_V_INT(N + 1000);
  CHECK_OK(db_begin(c, &E));
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, vals, 1000, 300, NULL, &aff,
                          &E));
  CHECK_EQ_INT(aff, 1000);
  CHECK_OK(db_rollback(c, &E));
  CHECK_EQ_INT(count_in(c2, "bi"), N);

  /* outside one: a call that takes one statement runs it alone under
   * autocommit (no BEGIN/COMMIT, two round trips less for each of the
   * prediction log's flushes), several statements get a transaction */
  static const char BEGINS[] = "SELECT VARIABLE_VALUE FROM information_schema"
                               ".SESSION_STATUS WHERE VARIABLE_NAME = "
                               "'COM_BEGIN'";
  int64_t b0 = q1(c, BEGINS);
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, vals, 200, 300, NULL, &aff,
                          &E));
  CHECK_EQ_INT(aff, 200);
  CHECK_EQ_INT(q1(c, BEGINS), b0);
  CHECK_EQ_INT(count_in(c2, "bi"), N + 200);
  /* a failing single statement stores none of its rows either */
  vals[(size_t)299 * NC] = DB_V_INT(5);
  CHECK_EQ_INT(db_bulk_insert(c, "bi", cols, NC, vals + (size_t)200 * NC, 100,
                              300, NULL, &aff, &E),
               ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1062);
  CHECK_EQ_INT(count_in(c2, "bi"), N + 200);
  vals[(size_t)299 * NC] = DB_V_INT(N + 300);
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, vals + (size_t)200 * NC, 800,
                          300, NULL, &aff, &E));
  CHECK_EQ_INT(aff, 800);
  CHECK_EQ_INT(q1(c, BEGINS), b0 + 1);
  CHECK_EQ_INT(count_in(c2, "bi"), N + 1000);

  /* a batch above the placeholder cap is split (65535 / 4 = 16383) */
  CHECK_OK(db_exec(c, "TRUNCATE TABLE bi", NULL, &E));
  for (int i = 0; i < N; i++)
    vals[(size_t)i * NC] = DB_V_INT(i + 1);
  struct db_val *big = calloc((size_t)2 * N * NC, sizeof(*big));
  REQUIRE(big);
  memcpy(big, vals, sizeof(*vals) * N * NC);
  memcpy(big + (size_t)N * NC, vals, sizeof(*vals) * N * NC);
  for (int i = 0; i < N; i++)
    big[(size_t)(N + i) * NC] = DB_V_INT(N + i + 1);
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, big, 2 * N, 100000, NULL, &aff,
                          &E));
  CHECK_EQ_INT(aff, 2 * N);
  CHECK_EQ_INT(count_in(c2, "bi"), 2 * N);
  free(big);

  /* identifiers are checked */
  static const char *const badcols[2] = {"id", "name`"};
  CHECK_EQ_INT(db_bulk_insert(c, "bi; DROP TABLE bi", cols, NC, vals, 1, 0,
                              NULL, &aff, &E),
               ERR_INVAL);
  CHECK_EQ_INT(db_bulk_insert(c, "bi", badcols, 2, vals, 1, 0, NULL, &aff,
                              &E),
               ERR_INVAL);
  CHECK_HAS(E.msg, "bad column name");
  CHECK_OK(db_bulk_insert(c, "bi", cols, NC, vals, 0, 0, NULL, &aff, &E));
  CHECK_EQ_INT(aff, 0);
  CHECK_EQ_INT(count_in(c2, "bi"), 2 * N);
  free(vals);
  free(names);
  free(notes);
  db_release(pool, c);
  db_release(pool, c2);
}

TEST(t_bulk_insert) { bulk_insert_checks(P, 0); }

TEST(t_bulk_insert_multirow)
{
  struct db_opts o = opts_for("it_db", PASS, 2);
  o.multirow_insert = 1;
  struct db_pool *pm = NULL;
  REQUIRE_OK(db_pool_create(&pm, &o, &E));
  bulk_insert_checks(pm, 1);
  db_pool_destroy(pm);
}

TEST(t_duplicate_key)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  fresh_table(c, "CREATE TABLE dup (id INT PRIMARY KEY, s TEXT)");
  struct db_val v[2] = {DB_V_INT(1), DB_V_STR("secret-value")};
  CHECK_OK(db_exec_params(c, "INSERT INTO dup (id, s) VALUES (?, ?)", v, 2,
                          NULL, &E));
  CHECK_EQ_INT(db_last_errno(c), 0);
  CHECK_EQ_INT(db_exec_params(c, "INSERT INTO dup (id, s) VALUES (?, ?)", v,
                              2, NULL, &E),
               ERR_DB);
  CHECK_EQ_INT(db_last_errno(c), 1062);
  CHECK_HAS(E.msg, "INSERT INTO dup (id, s) VALUES (?, ?): Duplicate entry "
                   "'1' for key 'PRIMARY'");
  CHECK_HAS(E.msg, "(error 1062)");
  CHECK(strstr(E.msg, "secret-value") == NULL); /* values stay out */
  CHECK(!db_conn_broken(c));
  CHECK_EQ_INT(q1(c, "SELECT COUNT(*) FROM dup"), 1);
  CHECK_EQ_INT(db_last_errno(c), 1062); /* last *failed* call */
  db_release(P, c);
}

TEST(t_wrong_password)
{
  const char *pw = "Wr0ng-Pa55word-XYZ";
  struct db_opts o = opts_for("it_db", pw, 1);
  struct db_pool *p = NULL;
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  CHECK_EQ_INT(db_ping(p, &E), ERR_DB_CONN);
  CHECK_HAS(E.msg, "Access denied for user");
  CHECK_HAS(E.msg, "cannot connect to database");
  CHECK(strstr(E.msg, pw) == NULL);
  struct db_pool_stats st;
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.connect_fails, 1); /* a refusal is not retried */
  struct db_conn *c = NULL;
  CHECK_EQ_INT(db_acquire(p, 2000, &c, &E), ERR_DB_CONN);
  CHECK(c == NULL);
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.in_use, 0);
  db_pool_destroy(p);

  /* unknown database: also a clear refusal */
  o = opts_for("it_no_such_db", PASS, 1);
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  CHECK_EQ_INT(db_ping(p, &E), ERR_DB_CONN);
  CHECK_HAS(E.msg, "it_no_such_db");
  db_pool_destroy(p);

  o = opts_for("it_db", PASS, 0);
  CHECK_EQ_INT(db_pool_create(&p, &o, &E), ERR_INVAL);
  CHECK(p == NULL);
}

struct inflight {
  struct db_conn *c;
  enum err_code rc;
  struct err e;
  int64_t v;
};

static void *inflight_main(void *arg)
{
  struct inflight *f = arg;
  f->rc = db_query_i64(f->c, "SELECT SLEEP(30)", NULL, 0, &f->v, &f->e);
  return NULL;
}

/* Start SELECT SLEEP(30) on C in thread *TH (F keeps its outcome) and
 * wait, watching from W, until the server runs it.  C's connection id,
 * or -1 when the thread could not start (then there is nothing to join). */
static int64_t inflight_start(struct inflight *f, pthread_t *th,
                              struct db_conn *c, struct db_conn *w)
{
  int64_t id = q1(c, "SELECT CONNECTION_ID()");
  *f = (struct inflight){c, ERR_INTERNAL, {0, ""}, -1};
  if (pthread_create(th, NULL, inflight_main, f) != 0)
    return -1;
  struct db_val idv = DB_V_INT(id);
  int64_t running = 0;
  for (int i = 0; i < 500 && running < 1; i++) {
    fx_msleep(20);
    if (db_query_i64(w, "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                        "WHERE ID = ? AND INFO LIKE 'SELECT SLEEP%'",
                     &idv, 1, &running, &E) != ERR_OK)
      break;
  }
  if (running != 1)
    check_fail_at(__FILE__, __LINE__, "SELECT SLEEP(30) of connection %lld "
                  "not seen running (%lld): %s", (long long)id,
                  (long long)running, E.msg);
  return id;
}

/* Join the in-flight query: it failed as a lost connection, and its
 * connection is marked broken. */
static void inflight_lost(struct inflight *f, pthread_t th)
{
  pthread_join(th, NULL);
  CHECK_EQ_INT(f->rc, ERR_DB_CONN);
  CHECK_HAS(f->e.msg, "SELECT SLEEP(30): database connection lost");
  CHECK(db_conn_broken(f->c));
}

TEST(t_killed_in_flight)
{
  struct db_conn *c, *w;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  REQUIRE_OK(db_acquire(P, 10000, &w, &E));
  struct inflight f;
  pthread_t th;
  int64_t id = inflight_start(&f, &th, c, w);
  REQUIRE(id >= 0);
  char kill[64];
  snprintf(kill, sizeof(kill), "KILL CONNECTION %" PRId64, id);
  CHECK_OK(db_exec(w, kill, NULL, &E));
  inflight_lost(&f, th);
  db_release(P, c);
  db_release(P, w);
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  CHECK_EQ_INT(q1(c, "SELECT 8"), 8);
  db_release(P, c);
}

static int restart_server(void)
{
  return sh("'%s' restart '%s' >/dev/null", SCRIPT, DIR_);
}

TEST(t_server_restart)
{
  struct db_opts o = opts_for("it_db", PASS, 3);
  struct db_pool *p = NULL;
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  struct db_conn *c0, *c1, *c2, *c3 = NULL, *c4 = NULL;
  REQUIRE_OK(db_acquire(p, 10000, &c0, &E));
  REQUIRE_OK(db_acquire(p, 10000, &c1, &E));
  REQUIRE_OK(db_acquire(p, 10000, &c2, &E));
  struct db_val v = DB_V_INT(41);
  int64_t out = 0;
  CHECK_OK(db_query_i64(c1, "SELECT ? + 1", &v, 1, &out, &E));
  CHECK_OK(db_query_i64(c2, "SELECT ? + 1", &v, 1, &out, &E));
  CHECK_EQ_INT(out, 42);
  /* c0 has a query in flight during the restart */
  struct inflight f;
  pthread_t th;
  REQUIRE(inflight_start(&f, &th, c0, c2) >= 0);
  db_release(p, c2); /* c2 idles across the restart */

  int restarted = restart_server();
  inflight_lost(&f, th);
  REQUIRE(restarted == 0);

  /* c1 was between queries: its next call fails */
  out = 0;
  CHECK_EQ_INT(db_query_i64(c1, "SELECT ? + 1", &v, 1, &out, &E),
               ERR_DB_CONN);
  char where[64];
  snprintf(where, sizeof(where), "database connection lost (%s:%d): ", HOST,
           PORT);
  CHECK_HAS(E.msg, where);
  CHECK_HAS(E.msg, "SELECT ? + 1: ");
  CHECK(db_conn_broken(c1));
  /* broken stays broken, fast, without touching the network */
  CHECK_EQ_INT(db_exec(c1, "SELECT 1", NULL, &E), ERR_DB_CONN);
  CHECK_HAS(E.msg, "database connection lost");

  /* the idle connection is found dead at acquire and replaced */
  REQUIRE_OK(db_acquire(p, 20000, &c3, &E));
  out = 0;
  CHECK_OK(db_query_i64(c3, "SELECT ? + 1", &v, 1, &out, &E));
  CHECK_EQ_INT(out, 42);
  db_release(p, c1);
  db_release(p, c0);
  REQUIRE_OK(db_acquire(p, 20000, &c4, &E));
  CHECK(!db_conn_broken(c4));
  out = 0;
  CHECK_OK(db_query_i64(c4, "SELECT ? + 1", &v, 1, &out, &E)); /* prepared
                                                                  again */
  CHECK_EQ_INT(out, 42);
  struct db_pool_stats st;
  db_pool_stats(p, &st);
  CHECK_EQ_INT(st.lost, 3);
  CHECK_EQ_INT(st.connects, 5);
  CHECK_EQ_INT(st.open, 2);
  db_release(p, c3);
  db_release(p, c4);
  db_pool_destroy(p);
}

struct starter {
  int delay_ms;
  int rc;
};

static void *starter_main(void *arg)
{
  struct starter *s = arg;
  fx_msleep(s->delay_ms);
  s->rc = sh("'%s' start '%s' >/dev/null", SCRIPT, DIR_);
  return NULL;
}

TEST(t_server_stopped)
{
  struct db_opts o = opts_for("it_db", PASS, 2);
  struct db_pool *p = NULL;
  REQUIRE_OK(db_pool_create(&p, &o, &E));
  struct db_conn *c = NULL;
  REQUIRE_OK(db_acquire(p, 10000, &c, &E));
  CHECK_EQ_INT(q1(c, "SELECT 1"), 1);
  db_release(p, c);

  REQUIRE(sh("'%s' stop '%s'", SCRIPT, DIR_) == 0);
  c = NULL;
  enum err_code rc = db_acquire(p, 700, &c, &E);
  CHECK_EQ_INT(rc, ERR_DB_CONN);
  CHECK(c == NULL);
  char where[64];
  snprintf(where, sizeof(where), "cannot connect to database %s@%s:%d", USER,
           HOST, PORT);
  CHECK_HAS(E.msg, where);
  CHECK_HAS(E.msg, "attempts in");
  struct db_pool_stats st;
  db_pool_stats(p, &st);
  CHECK(st.connect_fails >= 2); /* backoff retried within the timeout */
  CHECK_EQ_INT(st.in_use, 0);

  /* the server comes back while we wait: backoff finds it */
  struct starter s = {300, -1};
  pthread_t th;
  if (pthread_create(&th, NULL, starter_main, &s) != 0) {
    sh("'%s' start '%s' >/dev/null", SCRIPT, DIR_);
    REQUIRE(0);
  }
  rc = db_acquire(p, 60000, &c, &E);
  pthread_join(th, NULL);
  CHECK_EQ_INT(s.rc, 0);
  CHECK_EQ_INT(rc, ERR_OK);
  if (rc == ERR_OK) {
    CHECK_EQ_INT(q1(c, "SELECT 2"), 2);
    db_release(p, c);
  }
  db_pool_destroy(p);
}

struct th_ctx {
  int id;
  int fails;
  char msg[ERR_MSG_MAX];
};

static enum err_code th_txn(struct db_conn *c, void *user, struct err *e)
{
  struct th_ctx *t = user;
  struct db_val v[2] = {DB_V_INT(t->id), DB_V_INT(-1)};
  return db_exec_params(c, "UPDATE th_sum SET n = n + 1 WHERE tid = ?", v, 1,
                        NULL, e);
}

static void *th_main(void *arg)
{
  struct th_ctx *t = arg;
  struct err e;
  for (int k = 0; k < 150; k++) {
    struct db_conn *c;
    if (db_acquire(P, 30000, &c, &e) != ERR_OK) {
      t->fails++;
      snprintf(t->msg, sizeof(t->msg), "%s", e.msg);
      continue;
    }
    struct db_val v[2] = {DB_V_INT(t->id), DB_V_INT(k)};
    int64_t n = -1;
    if (db_exec_params(c, "INSERT INTO th (tid, k) VALUES (?, ?)", v, 2, NULL,
                       &e) != ERR_OK ||
        db_query_i64(c, "SELECT COUNT(*) FROM th WHERE tid = ?", v, 1, &n,
                     &e) != ERR_OK ||
        n != k + 1 || db_txn_retry(c, 5, th_txn, t, &e) != ERR_OK) {
      t->fails++;
      snprintf(t->msg, sizeof(t->msg), "%s", e.msg);
    }
    db_release(P, c);
  }
  return NULL;
}

TEST(t_threads)
{
  struct db_conn *c;
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS th", NULL, &E));
  CHECK_OK(db_exec(c, "DROP TABLE IF EXISTS th_sum", NULL, &E));
  CHECK_OK(db_exec(c,
                   "CREATE TABLE th (id INT AUTO_INCREMENT PRIMARY KEY, "
                   "tid INT, k INT, KEY (tid))",
                   NULL, &E));
  CHECK_OK(db_exec(c, "CREATE TABLE th_sum (tid INT PRIMARY KEY, n INT)",
                   NULL, &E));
  CHECK_OK(db_exec(c, "INSERT INTO th_sum VALUES (0,0),(1,0),(2,0),(3,0)",
                   NULL, &E));
  db_release(P, c);
  struct db_pool_stats before, after;
  db_pool_stats(P, &before);
  pthread_t th[4];
  struct th_ctx ctx[4];
  for (int i = 0; i < 4; i++) {
    memset(&ctx[i], 0, sizeof(ctx[i]));
    ctx[i].id = i;
    REQUIRE(pthread_create(&th[i], NULL, th_main, &ctx[i]) == 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CHECK_EQ_INT(ctx[i].fails, 0);
    if (ctx[i].fails)
      fprintf(stderr, "  thread %d: %s\n", i, ctx[i].msg);
  }
  db_pool_stats(P, &after);
  CHECK_EQ_INT(after.acquires - before.acquires, 600);
  CHECK(after.open <= 4);
  CHECK_EQ_INT(after.in_use, 0);
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  CHECK_EQ_INT(count_in(c, "th"), 600);
  CHECK_EQ_INT(q1(c, "SELECT SUM(n) FROM th_sum"), 600);
  CHECK_EQ_INT(q1(c, "SELECT MIN(n) FROM th_sum"), 150);
  db_release(P, c);
}

int main(void)
{
  HOST = getenv("MLOPSD_DATABASE_HOST");
  USER = getenv("MLOPSD_DATABASE_USER");
  PASS = getenv("MLOPSD_DATABASE_PASSWORD");
  DIR_ = getenv("MLOPSD_TEST_DB_DIR");
  const char *port = getenv("MLOPSD_DATABASE_PORT");
  const char *src = getenv("MLOPSD_SRC");
  if (!HOST || !USER || !PASS || !DIR_ || !port) {
    fprintf(stderr, "test_db: MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD and "
                    "MLOPSD_TEST_DB_DIR must be set (tests/run.sh does)\n");
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  PORT = atoi(port);
  snprintf(SCRIPT, sizeof(SCRIPT), "%s/tests/mariadb.sh",
           src && *src ? src : ".");
  log_set_level(LOG_ERROR);

  /* our own database */
  struct db_opts o = opts_for(NULL, PASS, 1);
  struct db_pool *admin = NULL;
  struct db_conn *c = NULL;
  if (db_pool_create(&admin, &o, &E) != ERR_OK ||
      db_acquire(admin, 20000, &c, &E) != ERR_OK ||
      db_exec(c, "DROP DATABASE IF EXISTS it_db", NULL, &E) != ERR_OK ||
      db_exec(c, "CREATE DATABASE it_db CHARACTER SET utf8mb4", NULL, &E) !=
          ERR_OK) {
    fprintf(stderr, "test_db: setting up it_db: %s\n", E.msg);
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  db_release(admin, c);
  db_pool_destroy(admin);
  o = opts_for("it_db", PASS, 4);
  if (db_pool_create(&P, &o, &E) != ERR_OK) {
    fprintf(stderr, "test_db: %s\n", E.msg);
    return 1;
  }

  RUN(t_ident);
  RUN(t_pool_exhaustion);
  RUN(t_typed_roundtrip);
  RUN(t_stream_200k);
  RUN(t_big_values);
  RUN(t_early_stop_reuse);
  RUN(t_misuse);
  RUN(t_exec);
  RUN(t_stmt_cache);
  RUN(t_transactions);
  RUN(t_lock_wait_retry);
  RUN(t_deadlock);
  RUN(t_bulk_insert);
  RUN(t_bulk_insert_multirow);
  RUN(t_duplicate_key);
  RUN(t_wrong_password);
  RUN(t_threads);
  RUN(t_killed_in_flight);
  RUN(t_server_restart);
  RUN(t_server_stopped);
  RUN(t_threads); /* the shared pool after the server went away twice */

  db_pool_destroy(P);
  return check_done();
}
