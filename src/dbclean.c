/* dbclean.c - old runs, task instances, task logs and drift reports out
 * of the database in short batches (see dbclean.h).
 *
 * Why batches of DELETE ... LIMIT and not one DELETE per table: InnoDB
 * locks every row a DELETE touches until its transaction ends, and the
 * scheduler updates task_instance and dag_run rows all the time (claims,
 * heartbeats, state changes).  A month of task_log lines in one statement
 * would hold its locks for as long as it runs; a thousand rows at a time
 * holds them for milliseconds, and the scheduler's transactions slip in
 * between.  The runs to remove are picked first (a page of ids), so each
 * DELETE finds its rows through an index (task_log and task_instance by
 * run_id, dag_run by id) and never scans a table under lock.
 */
#include "mlopsd/dbclean.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"

#define MOD "dbclean"
#define MAX_TRIES 5
#define STR_(x) #x
#define STR(x) STR_(x)
#define LOCKED                                                                \
  "SET STATEMENT innodb_lock_wait_timeout = " STR(DBCLEAN_LOCK_WAIT_S)        \
  " FOR "

/* finished runs older than the cutoff, but never a DAG's newest run */
#define RUN_PRED                                                              \
  "r.state IN ('success', 'failed')"                                          \
  " AND COALESCE(r.end_date, r.start_date, r.queued_at) < ?"                  \
  " AND r.id < (SELECT MAX(r2.id) FROM dag_run r2"                            \
  "             WHERE r2.dag_id = r.dag_id)"
#define DRIFT_PRED                                                            \
  "d.created_at < ? AND d.id < (SELECT MAX(d2.id) FROM drift_report d2"       \
  "                             WHERE d2.model = d.model)"

int64_t dbclean_parse_age(const char *s)
{
  char *end;
  if (!s || !*s || *s == '-' || *s == '+')
    return -1;
  long long n = strtoll(s, &end, 10);
  if (end == s || n <= 0 || n > 100LL * 366 * 86400)
    return -1;
  int64_t mul = 86400;
  if (*end) {
    if (end[1])
      return -1;
    switch (*end) {
    case 'd':
      break;
    case 'h':
      mul = 3600;
      break;
    case 'm':
      mul = 60;
      break;
    case 's':
      mul = 1;
      break;
    default:
      return -1;
    }
  }
  return (int64_t)n * mul;
}

static double mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* One DELETE in autocommit, retried on lock wait timeout / deadlock. */
static enum err_code del(struct db_conn *c, const char *sql,
                         const struct db_val *p, int np, int64_t *affected,
                         struct dbclean_result *r, struct err *e)
{
  enum err_code rc = ERR_OK;
  for (int k = 0; k < MAX_TRIES; k++) {
    double t0 = mono_ms();
    rc = db_exec_params(c, sql, p, np, affected, e);
    double ms = mono_ms() - t0;
    r->statements++;
    if (ms > r->max_stmt_ms)
      r->max_stmt_ms = ms;
    if (rc != ERR_DB || !db_errno_retryable(db_last_errno(c)))
      return rc;
    r->retries++;
    LOG_D(MOD, "retrying after: %s", e->msg);
    usleep((useconds_t)(100000 * (k + 1)));
  }
  return rc;
}

static enum err_code count(struct db_conn *c, const char *sql,
                           const char *cutoff, int64_t *out, struct err *e)
{
  struct db_val p = DB_V_STR(cutoff);
  return db_query_i64(c, sql, &p, 1, out, e);
}

static enum err_code dry_run(struct db_conn *c, struct dbclean_result *r,
                             struct err *e)
{
  enum err_code rc;
  if ((rc = count(c, "SELECT COUNT(*) FROM dag_run r WHERE " RUN_PRED,
                  r->cutoff, &r->dag_run, e)) ||
      (rc = count(c,
                  "SELECT COUNT(*) FROM task_instance WHERE run_id IN "
                  "(SELECT r.run_id FROM dag_run r WHERE " RUN_PRED ")",
                  r->cutoff, &r->task_instance, e)) ||
      (rc = count(c,
                  "SELECT COUNT(*) FROM task_log WHERE run_id IN "
                  "(SELECT r.run_id FROM dag_run r WHERE " RUN_PRED ")",
                  r->cutoff, &r->task_log, e)) ||
      (rc = count(c, "SELECT COUNT(*) FROM drift_report d WHERE " DRIFT_PRED,
                  r->cutoff, &r->drift_report, e)))
    return rc;
  return ERR_OK;
}

struct page {
  int n;
  int64_t id[DBCLEAN_RUNS_PER_BATCH];
  char run_id[DBCLEAN_RUNS_PER_BATCH][256];
};

static int page_row(void *user, const struct db_row *row)
{
  struct page *pg = user;
  size_t len;
  if (pg->n >= DBCLEAN_RUNS_PER_BATCH)
    return 1;
  pg->id[pg->n] = db_row_i64(row, 0);
  const char *s = db_row_str(row, 1, &len);
  snprintf(pg->run_id[pg->n], sizeof(pg->run_id[0]), "%.*s", (int)len,
           s ? s : "");
  pg->n++;
  return 0;
}

static int id_row(void *user, const struct db_row *row)
{
  struct page *pg = user;
  if (pg->n >= DBCLEAN_RUNS_PER_BATCH)
    return 1;
  pg->id[pg->n++] = db_row_i64(row, 0);
  return 0;
}

/* Delete rows of table whose run_id is one of the page's, batch at a
 * time; *n counts them. */
static enum err_code del_children(struct db_conn *c, const char *table,
                                  const struct page *pg, int batch,
                                  int64_t *n, struct dbclean_result *r,
                                  struct err *e)
{
  char sql[4096];
  struct db_val p[DBCLEAN_RUNS_PER_BATCH];
  size_t k = (size_t)snprintf(sql, sizeof(sql),
                              LOCKED "DELETE FROM %s WHERE run_id IN (",
                              table);
  for (int i = 0; i < pg->n; i++) {
    k += (size_t)snprintf(sql + k, sizeof(sql) - k, "%s?", i ? ", " : "");
    p[i] = DB_V_STR(pg->run_id[i]);
  }
  snprintf(sql + k, sizeof(sql) - k, ") LIMIT %d", batch);
  for (;;) {
    int64_t aff = 0;
    enum err_code rc = del(c, sql, p, pg->n, &aff, r, e);
    if (rc != ERR_OK)
      return rc;
    *n += aff;
    if (aff < batch)
      return ERR_OK;
  }
}

/* Delete the rows of the page's ids, head being the statement up to
 * "id IN (" (LOCKED and any other condition included); *aff counts them. */
static enum err_code del_ids(struct db_conn *c, const char *head,
                             const struct page *pg, int64_t *aff,
                             struct dbclean_result *r, struct err *e)
{
  char sql[2048];
  size_t k = (size_t)snprintf(sql, sizeof(sql), "%s", head);
  for (int i = 0; i < pg->n; i++)
    k += (size_t)snprintf(sql + k, sizeof(sql) - k, "%s%" PRId64,
                          i ? ", " : "", pg->id[i]);
  snprintf(sql + k, sizeof(sql) - k, ")");
  *aff = 0;
  return del(c, sql, NULL, 0, aff, r, e);
}

static enum err_code clean_runs(struct db_conn *c, int batch,
                                struct dbclean_result *r, struct err *e)
{
  int64_t cursor = 0;
  for (;;) {
    struct page pg = {0};
    struct db_val q[2] = {DB_V_STR(r->cutoff), DB_V_INT(cursor)};
    enum err_code rc = db_query(
        c,
        "SELECT r.id, r.run_id FROM dag_run r WHERE " RUN_PRED
        " AND r.id > ? ORDER BY r.id LIMIT " STR(DBCLEAN_RUNS_PER_BATCH),
        q, 2, page_row, &pg, NULL, e);
    if (rc != ERR_OK)
      return rc;
    if (pg.n == 0)
      return ERR_OK;
    cursor = pg.id[pg.n - 1];
    if ((rc = del_children(c, "task_log", &pg, batch, &r->task_log, r, e)) ||
        (rc = del_children(c, "task_instance", &pg, batch, &r->task_instance,
                           r, e)))
      return rc;
    int64_t aff;
    if ((rc = del_ids(c,
                      LOCKED "DELETE FROM dag_run WHERE state IN "
                             "('success', 'failed') AND id IN (",
                      &pg, &aff, r, e)) != ERR_OK)
      return rc;
    r->dag_run += aff;
  }
}

static enum err_code clean_drift(struct db_conn *c, struct dbclean_result *r,
                                 struct err *e)
{
  for (;;) {
    struct page pg = {0};
    struct db_val q = DB_V_STR(r->cutoff);
    enum err_code rc = db_query(
        c,
        "SELECT d.id FROM drift_report d WHERE " DRIFT_PRED
        " ORDER BY d.id LIMIT " STR(DBCLEAN_RUNS_PER_BATCH),
        &q, 1, id_row, &pg, NULL, e);
    if (rc != ERR_OK)
      return rc;
    if (pg.n == 0)
      return ERR_OK;
    int64_t aff;
    if ((rc = del_ids(c, LOCKED "DELETE FROM drift_report WHERE id IN (",
                      &pg, &aff, r, e)) != ERR_OK)
      return rc;
    r->drift_report += aff;
    if (aff == 0) /* someone else removed them: do not spin */
      return ERR_OK;
  }
}

enum err_code dbclean_run(struct db_pool *pool, const struct dbclean_opts *o,
                          struct dbclean_result *r, struct err *e)
{
  memset(r, 0, sizeof(*r));
  if (!o || o->older_than_s <= 0)
    return err_set(e, ERR_INVAL, "db clean: the age must be positive");
  int batch = o->batch > 0 ? o->batch : DBCLEAN_BATCH_DEFAULT;
  time_t now = o->now ? o->now : time(NULL);
  time_t cut = now - (time_t)o->older_than_s;
  struct tm tm;
  gmtime_r(&cut, &tm);
  strftime(r->cutoff, sizeof(r->cutoff), "%Y-%m-%d %H:%M:%S", &tm);
  double t0 = mono_ms();
  struct db_conn *c = NULL;
  enum err_code rc = db_acquire(pool, 5000, &c, e);
  if (rc != ERR_OK)
    return rc;
  if (o->dry_run)
    rc = dry_run(c, r, e);
  else if ((rc = clean_runs(c, batch, r, e)) == ERR_OK)
    rc = clean_drift(c, r, e);
  db_release(pool, c);
  r->ms = mono_ms() - t0;
  if (!o->dry_run)
    LOG_I(MOD, "older_than=%s dag_run=%" PRId64 " task_instance=%" PRId64
               " task_log=%" PRId64 " drift_report=%" PRId64
               " statements=%" PRId64 " longest_ms=%.0f ms=%.0f",
          r->cutoff, r->dag_run, r->task_instance, r->task_log,
          r->drift_report, r->statements, r->max_stmt_ms, r->ms);
  return rc;
}
