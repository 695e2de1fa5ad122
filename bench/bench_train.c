/* bench_train.c - the training pipeline's costs: rows/s read from MariaDB
 * into column arrays, preprocessing time, time per trial and for the whole
 * grid, peak RSS; on the course sample (2,500 rows, the full 27-trial
 * grid) and on a synthetic 1,000,000-row training set drawn from it.
 *
 * Each case runs in a child process so its peak RSS (getrusage
 * ru_maxrss) is its own.  Prints figures; never fails on speed.
 *
 * MariaDB: uses MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD when set, else
 * starts its own throwaway server with tests/mariadb.sh (run from the
 * repository root, as bench/run.sh does) and stops it at the end.  Works
 * in database bench_train (migrations + `db seed` data + sql/features.sql
 * for 2025-09-01).  The synthetic set: 400 copies of the 2,500 rows of
 * 2025-09-01 under base_dt 2099-01-01 (ids prefixed with the copy number,
 * every numeric value times a uniform factor in [0.95, 1.05), labels and
 * categories kept, dates moved as far as base_dt so the spec's 28-day
 * train_window finds them), built with INSERT ... SELECT.
 *
 * Knobs: BENCH_TRAIN_ROWS (synthetic rows, default 1000000, 0 = skip),
 * BENCH_TRAIN_BIG_TRIALS (default 2), BENCH_TRAIN_BIG_ROUNDS (default 20),
 * BENCH_TRAIN_THREADS (XGBoost threads, default 1 as
 * models.train_threads), BENCH_TRAIN_GRID_TRIALS (sample grid, default all
 * 27).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"
#include "mlopsd/fstore.h"
#include "mlopsd/log.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/schema.h"
#include "mlopsd/seed.h"
#include "mlopsd/spec.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/tmpl.h"
#include "bench_util.h"

#define DBNAME "bench_train"
#define MODEL "credit_score_classification"
#define DS "2025-09-01"
#define BIG_DS "2099-01-01"

static char dbdir[256];
static char tmpdir[256];

static long env_long(const char *k, long def)
{
  const char *v = getenv(k);
  return v && *v ? atol(v) : def;
}

static double peak_rss_mb(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_maxrss / 1024.0;
}

/* Start tests/mariadb.sh and export what it prints. */
static int start_db(void)
{
  snprintf(dbdir, sizeof(dbdir), "/tmp/bench-train-db.XXXXXX");
  if (!mkdtemp(dbdir))
    return -1;
  char cmd[512];
  snprintf(cmd, sizeof(cmd), "tests/mariadb.sh start %s", dbdir);
  FILE *p = popen(cmd, "r");
  if (!p)
    return -1;
  char line[512];
  while (fgets(line, sizeof(line), p)) {
    char *s = strncmp(line, "export ", 7) == 0 ? line + 7 : line;
    char *eq = strchr(s, '=');
    if (!eq)
      continue;
    *eq = '\0';
    s[strcspn(s, " ")] = '\0';
    char *v = eq + 1;
    v[strcspn(v, "\n")] = '\0';
    setenv(s, v, 1);
  }
  return pclose(p) == 0 ? 0 : -1;
}

static void stop_db(void)
{
  if (!dbdir[0])
    return;
  char cmd[600];
  snprintf(cmd, sizeof(cmd),
           "tests/mariadb.sh stop %s >/dev/null 2>&1; rm -rf %s", dbdir,
           dbdir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_train: could not stop MariaDB in %s\n", dbdir);
}

static struct db_pool *pool_for(const char *database, int size)
{
  struct db_opts o;
  if (bench_db_opts(&o, size, 10) != 0) {
    fprintf(stderr, "bench_train: MLOPSD_DATABASE_HOST/PORT/USER not all "
                    "set\n");
    return NULL;
  }
  o.database = database;
  o.read_timeout_s = 3600;
  struct db_pool *p = NULL;
  struct err e = {0};
  if (db_pool_create(&p, &o, &e) != ERR_OK) {
    fprintf(stderr, "bench_train: %s\n", e.msg);
    return NULL;
  }
  return p;
}

static int exec1(struct db_pool *p, const char *sql, int64_t *aff)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int ok = db_acquire(p, 10000, &c, &e) == ERR_OK &&
           db_exec(c, sql, aff, &e) == ERR_OK;
  if (!ok)
    fprintf(stderr, "bench_train: %.120s: %s\n", sql, e.msg);
  db_release(p, c);
  return ok ? 0 : -1;
}

static char *read_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  if (b)
    b[n] = '\0';
  fclose(f);
  return b;
}

static int setup_data(void)
{
  struct db_pool *root = pool_for(NULL, 1);
  if (!root || exec1(root, "DROP DATABASE IF EXISTS " DBNAME, NULL) ||
      exec1(root, "CREATE DATABASE " DBNAME " CHARACTER SET utf8mb4", NULL)) {
    db_pool_destroy(root);
    return -1;
  }
  db_pool_destroy(root);
  struct db_pool *p = pool_for(DBNAME, 1);
  struct db_conn *c = NULL;
  struct err e = {0};
  struct sqlsplit_list l = {0};
  struct tmpl_binds b = {0};
  char *text = NULL, *sql = NULL;
  int rc = -1;
  double t0 = bench_now_s();
  if (!p || db_acquire(p, 10000, &c, &e) ||
      schema_migrate(c, SCHEMA_DIR_DEFAULT, NULL, NULL, NULL, &e) ||
      seed_load(c, NULL, NULL, NULL, NULL, &e))
    goto out;
  db_release(p, c);
  c = NULL;
  struct tmpl_ctx tc = {.ds = DS};
  if (!(text = read_file("sql/features.sql")) ||
      tmpl_render(text, &tc, TMPL_SQL, &sql, &b, &e) ||
      sqlsplit_split(sql, &l, &e))
    goto out;
  for (size_t i = 0; i < l.n; i++)
    if (exec1(p, l.v[i].sql, NULL))
      goto out;
  printf("setup: schema, seed and features for %s in %.1f s\n", DS,
         bench_now_s() - t0);
  rc = 0;
out:
  if (rc && e.msg[0])
    fprintf(stderr, "bench_train: setup: %s\n", e.msg);
  db_release(p, c);
  db_pool_destroy(p);
  sqlsplit_list_free(&l);
  tmpl_binds_free(&b);
  free(text);
  free(sql);
  return rc;
}

/* n synthetic rows under BIG_DS: copies of the DS rows with jitter. */
static int make_synthetic(long n)
{
  static const char *const num[] = {
      "age", "annual_income", "monthly_inhand_salary", "num_bank_accounts",
      "num_credit_card", "interest_rate", "num_of_loan",
      "delay_from_due_date", "num_of_delayed_payment",
      "changed_credit_limit", "num_credit_inquiries", "outstanding_debt",
      "credit_utilization_ratio", "credit_history_age",
      "total_emi_per_month", "amount_invested_monthly", "monthly_balance"};
  struct db_pool *p = pool_for(DBNAME, 1);
  if (!p)
    return -1;
  long copies = (n + 2499) / 2500, per = 20;
  double t0 = bench_now_s();
  int64_t total = 0;
  /* Source rows and copy numbers in tables of their own: an INSERT ...
   * SELECT from the same table (or a recursive CTE) would go through a
   * temporary table. */
  char seq[256];
  if (exec1(p, "DELETE FROM credit_score_features_target WHERE base_dt = '"
               BIG_DS "'", NULL) ||
      exec1(p, "DROP TABLE IF EXISTS bench_src, bench_seq", NULL) ||
      exec1(p, "CREATE TABLE bench_src AS SELECT * FROM "
               "credit_score_features_target WHERE base_dt = '" DS "'",
            NULL) ||
      exec1(p, "CREATE TABLE bench_seq (k INT PRIMARY KEY)", NULL))
    goto fail;
  snprintf(seq, sizeof(seq),
           "INSERT INTO bench_seq SELECT seq FROM seq_0_to_%ld", copies - 1);
  if (exec1(p, seq, NULL))
    goto fail;
  for (long k0 = 0; k0 < copies; k0 += per) {
    long k1 = k0 + per < copies ? k0 + per : copies;
    char sql[8192];
    size_t len = (size_t)snprintf(
        sql, sizeof(sql),
        "INSERT INTO credit_score_features_target (base_dt, id, "
        "customer_id, date, occupation, type_of_loan, credit_mix, "
        "payment_of_min_amount, payment_behaviour, credit_score");
    for (size_t j = 0; j < sizeof(num) / sizeof(num[0]); j++)
      len += (size_t)snprintf(sql + len, sizeof(sql) - len, ", %s", num[j]);
    len += (size_t)snprintf(
        sql + len, sizeof(sql) - len,
        ") SELECT '" BIG_DS "', CONCAT(LPAD(k, 3, '0'), id), customer_id, "
        "DATE_ADD(date, INTERVAL DATEDIFF('" BIG_DS "', '" DS "') DAY), "
        "occupation, type_of_loan, credit_mix, payment_of_min_amount, "
        "payment_behaviour, credit_score");
    for (size_t j = 0; j < sizeof(num) / sizeof(num[0]); j++)
      len += (size_t)snprintf(sql + len, sizeof(sql) - len,
                              ", %s * (0.95 + 0.1 * RAND())", num[j]);
    snprintf(sql + len, sizeof(sql) - len,
             " FROM bench_src JOIN bench_seq WHERE k >= %ld AND k < %ld", k0,
             k1);
    int64_t aff = 0;
    if (exec1(p, sql, &aff))
      goto fail;
    total += aff;
  }
  printf("synthetic: %lld rows under base_dt %s in %.1f s (INSERT ... "
         "SELECT, %ld copies of the %s rows with +-5%% jitter)\n",
         (long long)total, BIG_DS, bench_now_s() - t0, copies, DS);
  db_pool_destroy(p);
  return 0;
fail:
  db_pool_destroy(p);
  return -1;
}

static void log_quiet(void *ud, const char *line)
{
  (void)ud;
  (void)line;
}

/* One case in this process: reads, then the pipeline. */
static int run_case(const char *label, const char *ds, size_t trials,
                    int rounds, int threads, int reads)
{
  struct db_pool *p = pool_for(DBNAME, 2);
  struct spec *spec = NULL;
  struct registry *reg = NULL;
  struct err e = {0};
  char regdir[400];
  snprintf(regdir, sizeof(regdir), "%s/registry-%s", tmpdir, label);
  if (!p || spec_load("config/models/" MODEL ".yaml", &spec, &e) ||
      registry_open(regdir, &reg, &e)) {
    fprintf(stderr, "bench_train: %s\n", e.msg);
    return 1;
  }
  /* read alone, a few times: the median */
  double rs[5] = {0};
  size_t nrows = 0, arena = 0;
  for (int r = 0; r < reads; r++) {
    struct fstore_set *s = NULL;
    if (fstore_read_training(p, spec, ds, NULL, NULL, &s, &e)) {
      fprintf(stderr, "bench_train: %s\n", e.msg);
      return 1;
    }
    rs[r] = s->read_s;
    nrows = s->n_rows;
    arena = s->arena_bytes;
    fstore_set_free(s);
  }
  for (int i = 0; i < reads; i++)
    for (int j = i + 1; j < reads; j++)
      if (rs[j] < rs[i]) {
        double t = rs[i];
        rs[i] = rs[j];
        rs[j] = t;
      }
  double rmed = rs[reads / 2];
  double rss_read = peak_rss_mb();
  struct pipeline_opts o = {.ds = ds,
                            .dag_run_id = label,
                            .nthread = threads,
                            .max_trials = trials,
                            .num_boost_round = rounds,
                            .log = log_quiet};
  struct pipeline_result res;
  double t0 = bench_now_s();
  if (pipeline_train(reg, p, spec, &o, &res, &e)) {
    fprintf(stderr, "bench_train: %s: %s\n", label, e.msg);
    return 1;
  }
  double wall = bench_now_s() - t0;
  double tmin = INFINITY, tmax = 0, tsum = 0;
  int rmin = 1 << 30, rmax = 0;
  for (size_t i = 0; i < res.n_trials; i++) {
    const struct pipeline_trial *t = &res.trials[i];
    tmin = fmin(tmin, t->seconds);
    tmax = fmax(tmax, t->seconds);
    tsum += t->seconds;
    rmin = t->rounds_run < rmin ? t->rounds_run : rmin;
    rmax = t->rounds_run > rmax ? t->rounds_run : rmax;
  }
  printf("[%s] %zu rows x %zu inputs -> %zu columns (train %zu, "
         "validation %zu)\n",
         label, res.n_rows, res.n_inputs, res.n_outputs, res.n_train,
         res.n_val);
  printf("[%s] read: %.3f s median of %d = %.0f rows/s (string arena "
         "%.1f MB); peak RSS after reads %.0f MB\n",
         label, rmed, reads, rmed > 0 ? (double)nrows / rmed : 0,
         (double)arena / 1048576.0, rss_read);
  printf("[%s] preprocessing (split + fit + transform): %.3f s = %.2f "
         "us/row\n",
         label, res.prep_s, res.prep_s * 1e6 / (double)res.n_rows);
  printf("[%s] grid: %zu trials in %.2f s; per trial mean %.3f s, min "
         "%.3f, max %.3f; rounds run %d..%d; %d XGBoost thread%s\n",
         label, res.n_trials, res.search_s, tsum / (double)res.n_trials,
         tmin, tmax, rmin, rmax, threads, threads == 1 ? "" : "s");
  printf("[%s] best trial %zu: accuracy %.4f, macro-F1 %.4f, logloss "
         "%.4f\n",
         label, res.best_trial + 1, res.best.accuracy, res.best.f1_macro,
         res.best.logloss);
  printf("[%s] version files (reference, validation rows, model, meta) + "
         "commit: %.2f s; pipeline total %.2f s (wall %.2f s)\n",
         label, res.write_s, res.total_s, wall);
  double rss = peak_rss_mb();
  printf("[%s] peak RSS %.0f MB = %.0f bytes/row\n", label, rss,
         rss * 1048576.0 / (double)res.n_rows);
  pipeline_result_free(&res);
  registry_close(reg);
  spec_destroy(spec);
  db_pool_destroy(p);
  fflush(stdout);
  return 0;
}

static int in_child(const char *label, const char *ds, size_t trials,
                    int rounds, int threads, int reads)
{
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0)
    _exit(run_case(label, ds, trials, rounds, threads, reads));
  int st = 0;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

int main(void)
{
  log_set_level(LOG_WARN);
  int own_db = 0, rc = 0;
  if (!getenv("MLOPSD_DATABASE_HOST")) {
    if (start_db()) {
      fprintf(stderr, "bench_train: could not start MariaDB with "
                      "tests/mariadb.sh (run from the repository root)\n");
      stop_db();
      return 1;
    }
    own_db = 1;
  }
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench-train.XXXXXX");
  if (!mkdtemp(tmpdir) || setup_data()) {
    rc = 1;
    goto out;
  }
  int threads = (int)env_long("BENCH_TRAIN_THREADS", 1);
  long big = env_long("BENCH_TRAIN_ROWS", 1000000);
  printf("case sample: the course grid on %s (full rounds, early "
         "stopping)\n",
         DS);
  rc |= in_child("sample", DS, (size_t)env_long("BENCH_TRAIN_GRID_TRIALS", 0),
                 0, threads, 5);
  if (big > 0 && make_synthetic(big) != 0)
    rc = 1;
  else if (big > 0) {
    int rounds = (int)env_long("BENCH_TRAIN_BIG_ROUNDS", 20);
    long trials = env_long("BENCH_TRAIN_BIG_TRIALS", 2);
    printf("case big: %ld synthetic rows, %ld trials of at most %d "
           "rounds\n",
           big, trials, rounds);
    rc |= in_child("big", BIG_DS, (size_t)trials, rounds, threads, 3);
  }
out:
  if (tmpdir[0]) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
      fprintf(stderr, "bench_train: could not remove %s\n", tmpdir);
  }
  if (own_db)
    stop_db();
  return rc;
}
