/* task_sql.c - the `sql` task type: run a SQL script on the feature store.
 *
 * The script (`sql` inline or `sql_file`) is rendered in SQL mode (conf
 * values become bound `?` parameters, see tmpl.h), split into statements
 * (sqlsplit.h) and run in order on one connection, each statement its own
 * round trip, so the task log shows each statement's first line and its
 * rows affected, and a failure names the statement and its line.  A
 * statement with bound values runs as a prepared statement, one without
 * through the text protocol (any statement MariaDB accepts).
 *
 * `transaction: true` wraps the statements in one transaction (DDL still
 * commits implicitly, as in MariaDB).
 *
 * Stopping: the stop flag and the deadline are checked between statements;
 * a statement that is still running when they fire is ended by a watchdog
 * thread with KILL QUERY <connection id> from a second pooled connection,
 * so a stuck query is bounded by the deadline (if the pool has no free
 * connection within a few seconds the statement runs to its end).
 *
 * sql_file paths: absolute, or relative to the daemon's working directory
 * (the repository root in the demo), or else to the DAG file's directory.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/queue.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/task.h"

#define SQL_FILE_MAX ((size_t)16 << 20)
#define SQL_ACQUIRE_MS 30000     /* wait for a pooled connection */
#define SQL_KILL_ACQUIRE_MS 3000 /* the watchdog's second connection */
#define SQL_WATCH_TICK_MS 100
#define SQL_SHOWN_MAX 200        /* statement text in the log */

static const struct task_field sql_fields[] = {
    {.name = "sql", .templated = 1, .one_of = 1, .mode = TMPL_SQL},
    {.name = "sql_file", .one_of = 1, .mode = TMPL_SQL, .file = 1},
    {.name = "transaction", .kind = TASK_F_BOOL},
    {.name = NULL},
};

/* ------------------------------------------------------------------ */
/* script text */

/* Every failure to read the script is ERR_IO for the task (ERR_NOMEM
 * aside), as a missing file is in the DAG's own check. */
static enum err_code read_file(const char *path, char **out, struct err *e)
{
  enum err_code rc = fsx_read(path, SQL_FILE_MAX, FSX_NO_NUL, out, NULL, e);
  if (rc) {
    err_prefix(e, "field 'sql_file'");
    if (rc != ERR_NOMEM && e)
      e->code = rc = ERR_IO;
  }
  return rc;
}

/* The path sql_file names: as given if absolute or present relative to
 * the working directory, else relative to the DAG file's directory. */
static void resolve(const struct task_ctx *t, const char *rel, char *buf,
                    size_t cap)
{
  snprintf(buf, cap, "%s", rel);
  if (rel[0] == '/' || access(rel, F_OK) == 0 || !t->dag_file)
    return;
  const char *slash = strrchr(t->dag_file, '/');
  if (!slash)
    return;
  char alt[4096];
  int n = snprintf(alt, sizeof(alt), "%.*s/%s", (int)(slash - t->dag_file),
                   t->dag_file, rel);
  if (n > 0 && (size_t)n < sizeof(alt) && access(alt, F_OK) == 0)
    snprintf(buf, cap, "%s", alt);
}

static enum err_code script_text(const struct task_ctx *t, char **out,
                                 const char **what, struct err *e)
{
  char tmp[64];
  const char *inl, *file;
  enum err_code rc;
  *out = NULL;
  if ((rc = task_field_text(t, "sql", tmp, sizeof(tmp), &inl, e)) != ERR_OK)
    return rc;
  if ((rc = task_field_text(t, "sql_file", tmp, sizeof(tmp), &file, e)) !=
      ERR_OK)
    return rc;
  if ((inl != NULL) == (file != NULL))
    return err_set(e, ERR_INVAL, "give exactly one of the fields 'sql' and "
                   "'sql_file'");
  if (inl) {
    *what = "sql";
    *out = strdup(inl);
    return *out ? ERR_OK : err_set(e, ERR_NOMEM, "sql: out of memory");
  }
  *what = "sql_file";
  char path[4096];
  resolve(t, file, path, sizeof(path));
  return read_file(path, out, e);
}

/* ------------------------------------------------------------------ */
/* watchdog: KILL QUERY when the attempt must stop mid-statement */

struct watch {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int started;
  int done;
  int in_stmt;          /* a statement is running on the task's conn */
  int killed;           /* KILL QUERY was sent */
  int64_t conn_id;
  const struct task_ctx *t;
  pthread_t th;
};

static void kill_query(struct watch *w)
{
  struct db_conn *k = NULL;
  struct err e = {0};
  if (db_acquire(w->t->db, SQL_KILL_ACQUIRE_MS, &k, &e) != ERR_OK) {
    task_logf(w->t, "cannot stop the running statement: no second "
              "connection (%s)", e.msg);
    return;
  }
  char q[64];
  snprintf(q, sizeof(q), "KILL QUERY %lld", (long long)w->conn_id);
  if (db_exec(k, q, NULL, &e) != ERR_OK)
    task_logf(w->t, "cannot stop the running statement: %s", e.msg);
  else
    task_logf(w->t, "stopping: sent KILL QUERY to connection %lld",
              (long long)w->conn_id);
  db_release(w->t->db, k);
}

static void *watch_main(void *arg)
{
  struct watch *w = arg;
  pthread_mutex_lock(&w->mu);
  while (!w->done) {
    if (w->in_stmt && !w->killed && task_should_stop(w->t)) {
      w->killed = 1;
      pthread_mutex_unlock(&w->mu);
      kill_query(w);
      pthread_mutex_lock(&w->mu);
      continue;
    }
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_nsec += SQL_WATCH_TICK_MS * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

static int watch_start(struct watch *w, const struct task_ctx *t,
                       int64_t conn_id)
{
  memset(w, 0, sizeof(*w));
  w->t = t;
  w->conn_id = conn_id;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&w->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&w->mu, NULL);
  if (pthread_create(&w->th, NULL, watch_main, w) != 0) {
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    return -1;
  }
  w->started = 1;
  return 0;
}

static void watch_set(struct watch *w, int in_stmt)
{
  if (!w->started)
    return;
  pthread_mutex_lock(&w->mu);
  w->in_stmt = in_stmt;
  pthread_mutex_unlock(&w->mu);
}

static int watch_killed(struct watch *w)
{
  if (!w->started)
    return 0;
  pthread_mutex_lock(&w->mu);
  int k = w->killed;
  pthread_mutex_unlock(&w->mu);
  return k;
}

static void watch_stop(struct watch *w)
{
  if (!w->started)
    return;
  pthread_mutex_lock(&w->mu);
  w->done = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  w->started = 0;
}

/* ------------------------------------------------------------------ */

/* The statement's first non-blank line, cut for the log. */
static void shown_line(const char *s, char *buf, size_t cap)
{
  size_t n = strcspn(s, "\n");
  size_t m = n;
  if (m > 0 && s[m - 1] == '\r')
    m--;
  int more = s[n] != '\0';
  if (m > SQL_SHOWN_MAX) {
    m = SQL_SHOWN_MAX;
    more = 1;
  }
  snprintf(buf, cap, "%.*s%s", (int)m, s, more ? " ..." : "");
}

static enum err_code sql_run(struct task_ctx *t, struct err *e)
{
  const int tmo = task_timeout_s(t);
  char *src = NULL, *sql = NULL;
  const char *what = "sql";
  struct tmpl_binds binds = {0};
  struct sqlsplit_list list = {0};
  struct db_val *vals = NULL;
  struct db_conn *c = NULL;
  struct watch w = {.started = 0};
  int txn = 0, in_txn = 0;
  enum err_code rc;

  if ((rc = task_field_bool(t, "transaction", 0, &txn, e)) != ERR_OK)
    return rc;
  if ((rc = script_text(t, &src, &what, e)) != ERR_OK)
    goto out;
  if ((rc = task_render(t, what, src, TMPL_SQL, &sql, &binds, e)) != ERR_OK)
    goto out;
  if ((rc = sqlsplit_split(sql, &list, e)) != ERR_OK) {
    err_prefix(e, "field '%s'", what);
    goto out;
  }
  size_t need = 0;
  for (size_t i = 0; i < list.n; i++)
    need += (size_t)list.v[i].nparams;
  if (need != binds.n) {
    rc = err_set(e, ERR_INTERNAL, "sql: %zu placeholders but %zu bound "
                 "values", need, binds.n);
    goto out;
  }
  if (list.n == 0) {
    task_logf(t, "no statements to run");
    goto out;
  }
  if (binds.n > 0) {
    vals = calloc(binds.n, sizeof(*vals));
    if (!vals) {
      rc = err_set(e, ERR_NOMEM, "sql: out of memory");
      goto out;
    }
    for (size_t i = 0; i < binds.n; i++)
      vals[i] = DB_V_STR(binds.v[i]);
  }
  if (!t->db) {
    rc = err_set(e, ERR_INVAL, "sql: no database");
    goto out;
  }

  int64_t wait = SQL_ACQUIRE_MS, dl = task_deadline_ms(t);
  if (dl > 0 && dl - queue_now_ms() < wait)
    wait = dl - queue_now_ms();
  if (wait <= 0 || task_should_stop(t)) {
    rc = task_stopped(t, "sql not started", tmo, e);
    goto out;
  }
  if ((rc = db_acquire(t->db, (int)wait, &c, e)) != ERR_OK) {
    if (task_should_stop(t))
      rc = task_stopped(t, "sql not started: waiting for a connection", tmo,
                        e);
    goto out;
  }
  if (t->job || dl > 0) {
    int64_t id = 0;
    struct err e2 = {0};
    if (db_query_i64(c, "SELECT CONNECTION_ID()", NULL, 0, &id, &e2) ==
            ERR_OK &&
        watch_start(&w, t, id) != 0)
      task_logf(t, "no watchdog thread: a running statement cannot be "
                "stopped");
  }
  if (txn) {
    if ((rc = db_begin(c, e)) != ERR_OK)
      goto out;
    in_txn = 1;
    task_logf(t, "transaction started");
  }

  size_t k = 0; /* next bound value */
  for (size_t i = 0; i < list.n; i++) {
    const struct sqlsplit_stmt *st = &list.v[i];
    char shown[SQL_SHOWN_MAX + 8];
    if (task_should_stop(t)) {
      char m[96];
      snprintf(m, sizeof(m), "sql stopped before statement %zu of %zu",
               i + 1, list.n);
      rc = task_stopped(t, m, tmo, e);
      goto out;
    }
    shown_line(st->sql, shown, sizeof(shown));
    task_logf(t, "statement %zu of %zu (line %d): %s", i + 1, list.n,
              st->line, shown);
    int64_t aff = 0;
    watch_set(&w, 1);
    if (st->nparams > 0)
      rc = db_exec_params(c, st->sql, vals + k, st->nparams, &aff, e);
    else
      rc = db_exec(c, st->sql, &aff, e);
    watch_set(&w, 0);
    k += (size_t)st->nparams;
    if (rc != ERR_OK && watch_killed(&w)) {
      char m[96];
      snprintf(m, sizeof(m), "statement %zu of %zu (line %d) killed", i + 1,
               list.n, st->line);
      rc = task_stopped(t, m, tmo, e);
      goto out;
    }
    if (rc != ERR_OK) {
      err_prefix(e, "statement %zu of %zu (line %d)", i + 1, list.n,
                 st->line);
      goto out;
    }
    task_logf(t, "rows affected: %lld", (long long)aff);
  }
  if (in_txn) {
    in_txn = 0;
    if ((rc = db_commit(c, e)) != ERR_OK) {
      err_prefix(e, "sql: commit");
      goto out;
    }
    task_logf(t, "transaction committed");
  }
  if (watch_killed(&w) && task_should_stop(t)) {
    /* The kill raced with the end of the last statement: the work is
     * done, the attempt still counts as stopped. */
    rc = task_stopped(t, "sql stopped after its last statement", tmo, e);
  }

out:
  watch_stop(&w);
  if (c) {
    if (in_txn) {
      struct err e2 = {0};
      (void)db_rollback(c, &e2);
      task_logf(t, "transaction rolled back");
    }
    db_release(t->db, c);
  }
  free(vals);
  sqlsplit_list_free(&list);
  tmpl_binds_free(&binds);
  free(sql);
  free(src);
  return rc;
}

static enum err_code sql_check(const struct task_ctx *t, struct err *e)
{
  char tmp[64];
  const char *inl, *file;
  int txn;
  enum err_code rc;
  if ((rc = task_field_bool(t, "transaction", 0, &txn, e)) != ERR_OK ||
      (rc = task_field_text(t, "sql", tmp, sizeof(tmp), &inl, e)) != ERR_OK ||
      (rc = task_field_text(t, "sql_file", tmp, sizeof(tmp), &file, e)) !=
          ERR_OK)
    return rc;
  if ((inl != NULL) == (file != NULL))
    return err_set(e, ERR_INVAL, "give exactly one of the fields 'sql' and "
                   "'sql_file'");
  if (file && !*file)
    return err_set(e, ERR_INVAL, "field 'sql_file': empty path");
  return ERR_OK;
}

const struct task_type task_type_sql = {
    .name = "sql",
    .fields = sql_fields,
    .check = sql_check,
    .run = sql_run,
};
