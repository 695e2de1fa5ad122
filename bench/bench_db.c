/* bench_db.c - insert throughput of the MariaDB layer into a table shaped
 * like credit_predictions_api_log: single-row INSERTs in autocommit,
 * single-row INSERTs in one transaction, and db_bulk_insert() multi-row
 * batches (100, 500, 1000 rows), plus a streaming read of what was
 * written.  Each mode runs BENCH_DB_REPS times (default 3); the median and
 * the best run are printed (a shared machine is noisy).  Prints figures;
 * never fails on speed.
 *
 * Needs a running server: MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD (as
 * tests/mariadb.sh prints them).  Works in its own database bench_db,
 * dropped at the end.  Without the variables it prints a note and exits 0.
 * BENCH_DB_SCALE (default 1) multiplies the row counts.
 *
 *   DIR=$(mktemp -d); eval "$(tests/mariadb.sh start $DIR)"
 *   build/bench/bench_db; tests/mariadb.sh stop $DIR
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "bench_util.h"

#define NCOLS 5
static const char *const COLS[NCOLS] = {"customer_id", "features",
                                        "prediction", "confidence",
                                        "elapsed_ms"};
static const char *const CLASSES[3] = {"Good", "Standard", "Poor"};
static const char INSERT1[] =
    "INSERT INTO bench_log (customer_id, features, prediction, confidence, "
    "elapsed_ms) VALUES (?, ?, ?, ?, ?)";

struct rows {
  int64_t n;
  char (*cust)[11];
  char **feat;
  struct db_val *vals; /* n * NCOLS */
};

static void die(const char *what, const struct err *e)
{
  fprintf(stderr, "bench_db: %s: %s\n", what, e->msg);
  exit(1);
}

/* Rows like the prediction log: a ~700-byte feature JSON per request. */
static void make_rows(struct rows *r, int64_t n)
{
  r->n = n;
  r->cust = calloc((size_t)n, sizeof(*r->cust));
  r->feat = calloc((size_t)n, sizeof(*r->feat));
  r->vals = calloc((size_t)n * NCOLS, sizeof(*r->vals));
  if (!r->cust || !r->feat || !r->vals) {
    fprintf(stderr, "bench_db: out of memory\n");
    exit(1);
  }
  unsigned s = 12345;
  for (int64_t i = 0; i < n; i++) {
    s = s * 1103515245u + 12345u;
    double x = (double)(s >> 8) / (double)(1u << 24);
    char f[1024];
    int len = snprintf(
        f, sizeof(f),
        "{\"customer_id\": %" PRId64 ", \"age\": %d, \"occupation\": "
        "\"Lawyer\", \"annual_income\": %.2f, \"monthly_inhand_salary\": "
        "%.13f, \"num_bank_accounts\": %d.0, \"num_credit_card\": %d.0, "
        "\"interest_rate\": %d.0, \"num_of_loan\": %d, \"type_of_loan\": "
        "\"credit-builder loan,home equity loan\", \"delay_from_due_date\": "
        "%d.0, \"num_of_delayed_payment\": %d.0, \"changed_credit_limit\": "
        "%.2f, \"num_credit_inquiries\": %d.0, \"credit_mix\": \"Bad\", "
        "\"outstanding_debt\": %.2f, \"credit_utilization_ratio\": %.14f, "
        "\"credit_history_age\": %d.0, \"payment_of_min_amount\": \"Yes\", "
        "\"total_emi_per_month\": %.15f, \"amount_invested_monthly\": %.14f, "
        "\"payment_behaviour\": \"High_spent_Medium_value_payments\", "
        "\"monthly_balance\": %.14f}",
        i % 50000, 18 + (int)(x * 40), 20000 + x * 80000, 1000 + x * 6000,
        (int)(x * 10), (int)(x * 8), (int)(x * 30), (int)(x * 5),
        (int)(x * 60), (int)(x * 25), x * 20, (int)(x * 15), x * 4000,
        20 + x * 20, (int)(x * 400), x * 300, x * 500, x * 1000);
    r->feat[i] = malloc((size_t)len + 1);
    if (!r->feat[i]) {
      fprintf(stderr, "bench_db: out of memory\n");
      exit(1);
    }
    memcpy(r->feat[i], f, (size_t)len + 1);
    snprintf(r->cust[i], sizeof(r->cust[i]), "%" PRId64, i % 50000);
    struct db_val *v = r->vals + i * NCOLS;
    v[0] = DB_V_STR(r->cust[i]);
    v[1] = DB_V_STRN(r->feat[i], (size_t)len);
    v[2] = DB_V_STR(CLASSES[s % 3]);
    v[3] = DB_V_DBL(0.5 + x / 2);
    v[4] = DB_V_INT((int64_t)(x * 20));
  }
}

static void reset_table(struct db_conn *c)
{
  struct err e;
  if (db_exec(c, "TRUNCATE TABLE bench_log", NULL, &e) != ERR_OK)
    die("truncate", &e);
}

static int cmp_dbl(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

#define MAXREPS 15
static int REPS = 3;

static void report(const char *mode, int64_t n, double *secs, double *cpu,
                   int reps)
{
  qsort(secs, (size_t)reps, sizeof(*secs), cmp_dbl);
  qsort(cpu, (size_t)reps, sizeof(*cpu), cmp_dbl);
  double med = secs[reps / 2], best = secs[0];
  printf("  %-29s %6" PRId64 " rows  median %7.0f rows/s  best %7.0f "
         "rows/s  client cpu %5.1f us/row\n",
         mode, n, (double)n / med, (double)n / best,
         cpu[reps / 2] * 1e6 / (double)n);
  fflush(stdout);
}

static void bench_single(struct db_conn *c, const struct rows *r, int64_t n,
                         int in_txn)
{
  struct err e;
  double secs[MAXREPS], cpu[MAXREPS];
  for (int k = 0; k < REPS; k++) {
    reset_table(c);
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    if (in_txn && db_begin(c, &e) != ERR_OK)
      die("begin", &e);
    for (int64_t i = 0; i < n; i++)
      if (db_exec_params(c, INSERT1, r->vals + i * NCOLS, NCOLS, NULL, &e) !=
          ERR_OK)
        die("insert", &e);
    if (in_txn && db_commit(c, &e) != ERR_OK)
      die("commit", &e);
    secs[k] = bench_now_s() - t0;
    cpu[k] = bench_cpu_s() - c0;
  }
  report(in_txn ? "single-row, one transaction" : "single-row, autocommit", n,
         secs, cpu, REPS);
}

static void bench_bulk(struct db_conn *c, const struct rows *r, int64_t n,
                       int batch)
{
  struct err e;
  int64_t aff = 0;
  char mode[64];
  double secs[MAXREPS], cpu[MAXREPS];
  for (int k = 0; k < REPS; k++) {
    reset_table(c);
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    if (db_bulk_insert(c, "bench_log", COLS, NCOLS, r->vals, n, batch, NULL,
                       &aff, &e) != ERR_OK)
      die("bulk insert", &e);
    secs[k] = bench_now_s() - t0;
    cpu[k] = bench_cpu_s() - c0;
    if (aff != n) {
      fprintf(stderr, "bench_db: bulk insert affected %" PRId64 " rows, "
                      "expected %" PRId64 "\n", aff, n);
      exit(1);
    }
  }
  snprintf(mode, sizeof(mode), "db_bulk_insert, batch %d", batch);
  report(mode, n, secs, cpu, REPS);
}

static int read_cb(void *user, const struct db_row *row)
{
  size_t len;
  int64_t *bytes = user;
  (void)db_row_str(row, 2, &len);
  *bytes += (int64_t)len;
  return 0;
}

int main(void)
{
  struct db_opts o;
  if (bench_db_opts(&o, 1, 5) != 0) {
    printf("bench_db: MLOPSD_DATABASE_HOST/PORT/USER not set; start a "
           "server first:\n  DIR=$(mktemp -d); eval \"$(tests/mariadb.sh "
           "start $DIR)\"\nskipped.\n");
    return 0;
  }
  int scale = getenv("BENCH_DB_SCALE") ? atoi(getenv("BENCH_DB_SCALE")) : 1;
  if (scale < 1)
    scale = 1;
  if (getenv("BENCH_DB_REPS"))
    REPS = atoi(getenv("BENCH_DB_REPS"));
  if (REPS < 1 || REPS > MAXREPS)
    REPS = 3;
  log_set_level(LOG_WARN);
  struct err e;
  struct db_pool *p;
  struct db_conn *c;
  if (db_pool_create(&p, &o, &e) != ERR_OK)
    die("pool", &e);
  if (db_acquire(p, 10000, &c, &e) != ERR_OK)
    die("connect", &e);
  if (db_exec(c, "DROP DATABASE IF EXISTS bench_db", NULL, &e) != ERR_OK ||
      db_exec(c, "CREATE DATABASE bench_db CHARACTER SET utf8mb4", NULL,
              &e) != ERR_OK ||
      db_exec(c, "USE bench_db", NULL, &e) != ERR_OK ||
      db_exec(c,
              "CREATE TABLE bench_log ("
              "id bigint NOT NULL AUTO_INCREMENT PRIMARY KEY, "
              "customer_id varchar(10) NOT NULL, features json NOT NULL, "
              "prediction varchar(10) NOT NULL, confidence float NOT NULL, "
              "elapsed_ms int NOT NULL, created_at timestamp NOT NULL "
              "DEFAULT CURRENT_TIMESTAMP) ENGINE=InnoDB",
              NULL, &e) != ERR_OK)
    die("setting up bench_db", &e);
  int64_t flush = -1;
  char ver[128] = "?";
  if (db_query_i64(c, "SELECT @@innodb_flush_log_at_trx_commit", NULL, 0,
                   &flush, &e) != ERR_OK)
    die("server variables", &e);

  struct rows r;
  int64_t n_auto = 2000 * (int64_t)scale, n_txn = 20000 * (int64_t)scale,
          n_bulk = 50000 * (int64_t)scale;
  make_rows(&r, n_bulk);
  size_t fbytes = 0;
  for (int64_t i = 0; i < n_bulk; i++)
    fbytes += strlen(r.feat[i]);
  snprintf(ver, sizeof(ver), "%s", db_client_version());
  printf("bench_db: libmariadb %s, server %s:%d, "
         "innodb_flush_log_at_trx_commit=%" PRId64 ", features JSON ~%zu "
         "bytes/row\n",
         ver, o.host, o.port, flush, fbytes / (size_t)n_bulk);

  bench_single(c, &r, n_auto, 0);
  bench_single(c, &r, n_txn, 1);
  bench_bulk(c, &r, n_bulk, 100);
  bench_bulk(c, &r, n_bulk, 500);
  bench_bulk(c, &r, n_bulk, 1000);

  int64_t bytes = 0, n = 0;
  double secs[MAXREPS], cpu[MAXREPS];
  for (int k = 0; k < REPS; k++) {
    double t0 = bench_now_s(), c0 = bench_cpu_s();
    if (db_query(c, "SELECT customer_id, prediction, features FROM "
                    "bench_log",
                 NULL, 0, read_cb, &bytes, &n, &e) != ERR_OK)
      die("read back", &e);
    secs[k] = bench_now_s() - t0;
    cpu[k] = bench_cpu_s() - c0;
  }
  report("streaming read (db_query)", n, secs, cpu, REPS);

  if (db_exec(c, "DROP DATABASE bench_db", NULL, &e) != ERR_OK)
    die("drop", &e);
  db_release(p, c);
  db_pool_destroy(p);
  for (int64_t i = 0; i < r.n; i++)
    free(r.feat[i]);
  free(r.feat);
  free(r.cust);
  free(r.vals);
  return 0;
}
