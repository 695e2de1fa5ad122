/* db.c - the MariaDB layer: connection pool, prepared-statement cache,
 * typed binding, streaming reads, transactions and bulk inserts over
 * libmariadb (Connector/C 3.x).  See include/mlopsd/db.h for the contract.
 *
 * Why it looks like this:
 * - The pool is a fixed array of slots guarded by one mutex and a condvar.
 *   A slot connects lazily, on the first db_acquire() that gets it; the
 *   (slow) connect runs outside the lock, the slot being marked in_use.
 * - MYSQL_OPT_RECONNECT stays off.  A connection that hits a
 *   connection-class error is marked broken and the call fails with
 *   ERR_DB_CONN; db_acquire() throws the broken connection away and opens a
 *   new one with exponential backoff, which also drops the statement cache
 *   (server-side statements died with the old session).
 * - An idle connection whose socket became readable was closed by the
 *   server (restart, wait_timeout, KILL): one poll() at acquire time finds
 *   that without a round trip; one idle for long gets a mysql_ping().
 * - Prepared statements are cached per connection by SQL text (FNV-1a hash
 *   plus a compare), at most DB_STMT_CACHE, least recently used evicted.
 * - Reads are unbuffered (no mysql_stmt_store_result): every column is
 *   bound as a string into a per-statement buffer that grows when a value
 *   does not fit (MYSQL_DATA_TRUNCATED -> mysql_stmt_fetch_column into a
 *   bigger buffer).  FLOAT/DOUBLE columns are bound as doubles and printed
 *   here (shortest round-trip "%.15g".."%.17g"): libmariadb 10.11.18 gives
 *   '' for them through a string binding.
 *
 * Lock order: only p->mu; it is never held across a network call.
 *
 * Result columns, rows and db_query are in db_result.c (db_int.h).
 */
#include "mlopsd/db.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <errmsg.h>
#include <mysql.h>

#include "mlopsd/cfg.h"
#include "mlopsd/hash.h"
#include "mlopsd/log.h"
#include "db_int.h"


/* ------------------------------------------------------------------ */
/* small helpers */

static pthread_once_t db_once = PTHREAD_ONCE_INIT;
static int db_lib_rc;

static void db_lib_init(void)
{
  /* mysql_library_init is not thread-safe; mysql_init would call it
   * implicitly from whichever thread comes first. */
  db_lib_rc = mysql_library_init(0, NULL, NULL);
}

static int64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
  if (ms <= 0)
    return;
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void stat_add(int64_t *v)
{
  __atomic_fetch_add(v, 1, __ATOMIC_RELAXED);
}

static char *dup_or_null(const char *s)
{
  return (s && *s) ? strdup(s) : NULL;
}

/* The first DB_SQL_BRIEF characters of sql, whitespace runs folded into
 * one space, "..." when cut.  Never contains parameter values: those are
 * not part of the SQL text. */
const char *db_sql_brief(const char *sql, char *out, size_t outsz)
{
  size_t o = 0, max = outsz - 4;
  int sp = 0;
  if (max > DB_SQL_BRIEF)
    max = DB_SQL_BRIEF;
  if (!sql)
    sql = "(null)";
  while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r')
    sql++;
  for (; *sql; sql++) {
    char ch = *sql;
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r') {
      sp = 1;
      continue;
    }
    if (o + (size_t)sp + 1 > max) {
      memcpy(out + o, "...", 4);
      return out;
    }
    if (sp && o)
      out[o++] = ' ';
    sp = 0;
    out[o++] = ch;
  }
  out[o] = '\0';
  return out;
}

/* Errors after which the session is gone (or unusable). */
static int errno_is_conn(unsigned n)
{
  switch (n) {
  case 1053: /* ER_SERVER_SHUTDOWN */
  case 1152: /* ER_ABORTING_CONNECTION */
  case 1158: /* ER_NET_READ_ERROR */
  case 1159: /* ER_NET_READ_INTERRUPTED */
  case 1160: /* ER_NET_ERROR_ON_WRITE */
  case 1161: /* ER_NET_WRITE_INTERRUPTED */
  case 1184: /* ER_NEW_ABORTING_CONNECTION */
  case 1927: /* ER_CONNECTION_KILLED */
  case 2001: /* CR_SOCKET_CREATE_ERROR */
  case 2002: /* CR_CONNECTION_ERROR */
  case 2003: /* CR_CONN_HOST_ERROR */
  case 2004: /* CR_IPSOCK_ERROR */
  case 2005: /* CR_UNKNOWN_HOST */
  case 2006: /* CR_SERVER_GONE_ERROR */
  case 2011: /* CR_TCP_CONNECTION */
  case 2012: /* CR_SERVER_HANDSHAKE_ERR */
  case 2013: /* CR_SERVER_LOST */
  case 2014: /* CR_COMMANDS_OUT_OF_SYNC: protocol state unknown */
  case 2026: /* CR_SSL_CONNECTION_ERROR */
  case 2027: /* CR_MALFORMED_PACKET */
  case 2055: /* CR_SERVER_LOST_EXTENDED */
  case 4031: /* MySQL 8: client interaction timeout */
  case 5013: /* CR_ERR_NET_READ */
  case 5014: /* CR_ERR_NET_WRITE */
    return 1;
  default:
    return 0;
  }
}

/* Connect failures worth another attempt: the server may come (back) up.
 * Refusals (bad password 1045, unknown database 1049...) are final. */
static int errno_connect_retryable(unsigned n)
{
  return errno_is_conn(n) || n == 1040 /* too many connections */ ||
         n == 2000 || n == 2008;
}

int db_errno_retryable(unsigned n)
{
  return n == 1213 || n == 1205;
}

static int sock_invalid(MYSQL *my)
{
  return !my || (int)mysql_get_socket(my) < 0;
}

/* ------------------------------------------------------------------ */
/* error reporting */

/* Record a failure (n, msg) of `sql` on c; mark c broken for connection
 * errors.  Returns ERR_DB or ERR_DB_CONN. */
static enum err_code conn_fail(struct db_conn *c, unsigned n, const char *msg,
                               const char *sql, struct err *e)
{
  char brief[DB_SQL_BRIEF + 8];
  char m[MYSQL_ERRMSG_SIZE + 1];
  /* msg may live in the handle that a later call clears: copy first */
  snprintf(m, sizeof(m), "%s", (msg && *msg) ? msg : "unknown error");
  db_sql_brief(sql, brief, sizeof(brief));
  c->last_errno = n;
  if (errno_is_conn(n) || sock_invalid(c->my)) {
    if (!c->broken) {
      c->broken = 1;
      stat_add(&c->pool->n_lost);
      snprintf(c->lost_msg, sizeof(c->lost_msg),
               "database connection lost (%.200s): %.256s", c->pool->where, m);
      LOG_W("db", "connection lost (%s) errno=%u: %s", c->pool->where, n, m);
    }
    return err_set(e, ERR_DB_CONN, "%s: %s", brief, c->lost_msg);
  }
  return err_set(e, ERR_DB, "%s: %s (error %u)", brief, m, n);
}

static enum err_code conn_fail_my(struct db_conn *c, const char *sql,
                                  struct err *e)
{
  unsigned n = c->my ? mysql_errno(c->my) : CR_SERVER_GONE_ERROR;
  const char *m = c->my ? mysql_error(c->my) : "not connected";
  if (!n)
    n = CR_UNKNOWN_ERROR;
  return conn_fail(c, n, m, sql, e);
}

enum err_code db_stmt_fail(struct db_conn *c, MYSQL_STMT *st,
                           const char *sql, struct err *e)
{
  unsigned n = mysql_stmt_errno(st);
  const char *m = mysql_stmt_error(st);
  if (!n && c->my) { /* some paths only set the connection's error */
    n = mysql_errno(c->my);
    m = mysql_error(c->my);
  }
  if (!n)
    n = CR_UNKNOWN_ERROR;
  return conn_fail(c, n, m, sql, e);
}

/* Entry check of every call on a connection. */
enum err_code db_conn_check(struct db_conn *c, const char *sql,
                            struct err *e)
{
  char brief[DB_SQL_BRIEF + 8];
  if (!c)
    return err_set(e, ERR_INVAL, "db: NULL connection");
  if (!sql)
    return err_set(e, ERR_INVAL, "db: NULL SQL");
  if (c->busy) {
    c->last_errno = 0;
    return err_set(e, ERR_STATE,
                   "%s: connection is busy streaming another result "
                   "(use a second connection inside a db_query callback)",
                   db_sql_brief(sql, brief, sizeof(brief)));
  }
  if (c->broken || !c->my)
    return err_set(e, ERR_DB_CONN, "%s: %s",
                   db_sql_brief(sql, brief, sizeof(brief)),
                   c->lost_msg[0] ? c->lost_msg : "database not connected");
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* statement cache */

static void stmt_free(struct db_stmt *s)
{
  if (!s)
    return;
  if (s->st)
    mysql_stmt_close(s->st);
  for (unsigned i = 0; i < s->ccap; i++)
    free(s->cols[i].buf);
  free(s->cols);
  free(s->rbind);
  free(s->pbind);
  free(s->plen);
  free(s->sql);
  free(s);
}

/* Whether the statement error n means the server wants the statement
 * prepared again (table altered, statement gone) on a connection that is
 * still up: then one fresh prepare is worth it. */
static int stmt_stale(struct db_conn *c, unsigned n)
{
  return !sock_invalid(c->my) &&
         (n == CR_NEW_STMT_METADATA || n == ER_NEED_REPREPARE ||
          n == ER_UNKNOWN_STMT_HANDLER);
}

static void stmt_evict(struct db_conn *c, struct db_stmt *s)
{
  for (int i = 0; i < c->nstmts; i++) {
    if (c->stmts[i] == s) {
      c->stmts[i] = c->stmts[--c->nstmts];
      c->stmts[c->nstmts] = NULL;
      stmt_free(s);
      return;
    }
  }
}

/* Close the session and drop every cached statement.  mysql_close first:
 * it detaches the statements, which then free without network traffic. */
static void conn_close(struct db_conn *c)
{
  if (c->my) {
    mysql_close(c->my);
    c->my = NULL;
  }
  for (int i = 0; i < c->nstmts; i++) {
    stmt_free(c->stmts[i]);
    c->stmts[i] = NULL;
  }
  c->nstmts = 0;
  c->broken = 0;
  c->in_txn = 0;
  c->busy = 0;
}

static enum err_code stmt_get(struct db_conn *c, const char *sql,
                              struct db_stmt **out, struct err *e)
{
  size_t len = strlen(sql);
  uint64_t h = hash_fnv1a(sql, len);
  for (int i = 0; i < c->nstmts; i++) {
    struct db_stmt *s = c->stmts[i];
    if (s->hash == h && s->sql_len == len && memcmp(s->sql, sql, len) == 0) {
      s->used = ++c->tick;
      *out = s;
      return ERR_OK;
    }
  }
  MYSQL_STMT *st = mysql_stmt_init(c->my);
  if (!st)
    return conn_fail_my(c, sql, e);
  if (mysql_stmt_prepare(st, sql, (unsigned long)len) != 0) {
    char m[MYSQL_ERRMSG_SIZE + 1];
    unsigned n = mysql_stmt_errno(st);
    snprintf(m, sizeof(m), "%s", mysql_stmt_error(st));
    mysql_stmt_close(st);
    return conn_fail(c, n ? n : CR_UNKNOWN_ERROR, m, sql, e);
  }
  struct db_stmt *s = calloc(1, sizeof(*s));
  unsigned np = (unsigned)mysql_stmt_param_count(st);
  if (s) {
    s->st = st;
    s->sql = malloc(len + 1);
    s->nparams = np;
    if (np) {
      s->pbind = calloc(np, sizeof(*s->pbind));
      s->plen = calloc(np, sizeof(*s->plen));
    }
  }
  if (!s || !s->sql || (np && (!s->pbind || !s->plen))) {
    if (s)
      stmt_free(s);
    else
      mysql_stmt_close(st);
    c->last_errno = 0;
    return err_set(e, ERR_NOMEM, "db: out of memory preparing a statement");
  }
  memcpy(s->sql, sql, len + 1);
  s->sql_len = len;
  s->hash = h;
  s->used = ++c->tick;
  if (c->nstmts == DB_STMT_CACHE) {
    int victim = 0;
    for (int i = 1; i < c->nstmts; i++)
      if (c->stmts[i]->used < c->stmts[victim]->used)
        victim = i;
    stmt_evict(c, c->stmts[victim]);
  }
  c->stmts[c->nstmts++] = s;
  *out = s;
  return ERR_OK;
}

static enum err_code bind_params(struct db_conn *c, struct db_stmt *s,
                                 const char *sql, const struct db_val *params,
                                 int nparams, struct err *e)
{
  char brief[DB_SQL_BRIEF + 8];
  if (nparams < 0 || (unsigned)nparams != s->nparams) {
    c->last_errno = 0;
    return err_set(e, ERR_INVAL, "%s: expects %u parameters, got %d",
                   db_sql_brief(sql, brief, sizeof(brief)), s->nparams, nparams);
  }
  if (!nparams)
    return ERR_OK;
  if (!params) {
    c->last_errno = 0;
    return err_set(e, ERR_INVAL, "%s: NULL parameter array",
                   db_sql_brief(sql, brief, sizeof(brief)));
  }
  memset(s->pbind, 0, sizeof(*s->pbind) * s->nparams);
  for (int i = 0; i < nparams; i++) {
    MYSQL_BIND *b = &s->pbind[i];
    const struct db_val *v = &params[i];
    /* libmariadb only reads parameter buffers: the casts drop const */
    switch (v->type) {
    case DB_INT:
      b->buffer_type = MYSQL_TYPE_LONGLONG;
      b->buffer = (void *)&v->i;
      break;
    case DB_DOUBLE:
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = (void *)&v->d;
      break;
    case DB_TEXT:
      if (!v->s) {
        b->buffer_type = MYSQL_TYPE_NULL;
        break;
      }
      s->plen[i] = (unsigned long)(v->len == (size_t)-1 ? strlen(v->s)
                                                         : v->len);
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = (void *)v->s;
      b->buffer_length = s->plen[i];
      b->length = &s->plen[i];
      break;
    case DB_NULL:
      b->buffer_type = MYSQL_TYPE_NULL;
      break;
    default:
      c->last_errno = 0;
      return err_set(e, ERR_INVAL, "%s: parameter %d has unknown type %d",
                     db_sql_brief(sql, brief, sizeof(brief)), i + 1,
                     (int)v->type);
    }
  }
  if (mysql_stmt_bind_param(s->st, s->pbind) != 0)
    return db_stmt_fail(c, s->st, sql, e);
  return ERR_OK;
}

/* One attempt of stmt_retry at s: bind and execute.  ERR_OK with *failed
 * 0 (executed) or 1 and *en the statement's error number (the execution
 * failed: stmt_retry decides); any other code (e set) ends the call. */
typedef enum err_code (*stmt_exec_fn)(struct db_conn *c, struct db_stmt *s,
                                      void *ud, int *failed, unsigned *en,
                                      struct err *e);

/* Prepare (or find) sql and run exec on it (*out on ERR_OK).  A statement
 * that the server wants prepared again (stmt_stale) is prepared once
 * more; any other execution failure is db_stmt_fail's. */
static enum err_code stmt_retry(struct db_conn *c, const char *sql,
                                stmt_exec_fn exec, void *ud,
                                struct db_stmt **out, struct err *e)
{
  for (int attempt = 0;; attempt++) {
    struct db_stmt *s;
    int failed = 0;
    unsigned en = 0;
    enum err_code rc = stmt_get(c, sql, &s, e);
    if (rc == ERR_OK)
      rc = exec(c, s, ud, &failed, &en, e);
    if (rc != ERR_OK)
      return rc;
    if (!failed) {
      *out = s;
      return ERR_OK;
    }
    if (attempt == 0 && stmt_stale(c, en)) {
      stmt_evict(c, s);
      continue;
    }
    return db_stmt_fail(c, s->st, sql, e);
  }
}

struct run_args {
  const char *sql;
  const struct db_val *params;
  int nparams;
};

static enum err_code run_exec(struct db_conn *c, struct db_stmt *s, void *ud,
                              int *failed, unsigned *en, struct err *e)
{
  const struct run_args *a = ud;
  enum err_code rc = bind_params(c, s, a->sql, a->params, a->nparams, e);
  if (rc == ERR_OK && mysql_stmt_execute(s->st) != 0) {
    *failed = 1;
    *en = mysql_stmt_errno(s->st);
  }
  return rc;
}

/* Prepare (or find), bind and execute.  A statement that the server wants
 * prepared again (table altered, statement gone) is prepared once more. */
enum err_code db_stmt_run(struct db_conn *c, const char *sql,
                          const struct db_val *params, int nparams,
                          struct db_stmt **out, struct err *e)
{
  struct run_args a = {sql, params, nparams};
  return stmt_retry(c, sql, run_exec, &a, out, e);
}

/* Read and drop what is left of the result(s) of s, so that the
 * connection accepts the next command. */
enum err_code db_stmt_drain(struct db_conn *c, struct db_stmt *s,
                            const char *sql, struct err *e)
{
  mysql_stmt_free_result(s->st);
  while (mysql_stmt_more_results(s->st)) {
    int r = mysql_stmt_next_result(s->st);
    if (r > 0)
      return db_stmt_fail(c, s->st, sql, e);
    if (r < 0)
      break;
    mysql_stmt_free_result(s->st);
  }
  /* the flush does not report read errors; a dead socket does */
  if (sock_invalid(c->my))
    return conn_fail(c, mysql_errno(c->my) ? mysql_errno(c->my)
                                            : CR_SERVER_LOST,
                     mysql_errno(c->my) ? mysql_error(c->my)
                                        : "Lost connection to server",
                     sql, e);
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* pool */

enum err_code db_pool_create(struct db_pool **out, const struct db_opts *o,
                             struct err *e)
{
  if (!out || !o)
    return err_set(e, ERR_INVAL, "db_pool_create: NULL argument");
  *out = NULL;
  if (o->size < 1 || o->size > DB_POOL_MAX)
    return err_set(e, ERR_INVAL, "database pool size %d out of range 1..%d",
                   o->size, DB_POOL_MAX);
  if (!o->user || !*o->user)
    return err_set(e, ERR_INVAL, "database user is empty");
  if (!o->socket && (o->port < 0 || o->port > 65535))
    return err_set(e, ERR_INVAL, "database port %d out of range 0..65535",
                   o->port);
  pthread_once(&db_once, db_lib_init);
  if (db_lib_rc != 0)
    return err_set(e, ERR_INTERNAL, "mysql_library_init failed");

  struct db_pool *p = calloc(1, sizeof(*p));
  if (!p)
    return err_set(e, ERR_NOMEM, "db: out of memory");
  p->size = o->size;
  p->conns = calloc((size_t)o->size, sizeof(*p->conns));
  p->host = strdup(o->host && *o->host ? o->host : "127.0.0.1");
  p->user = strdup(o->user);
  p->password = o->password ? strdup(o->password) : NULL;
  p->database = dup_or_null(o->database);
  p->socket = dup_or_null(o->socket);
  p->port = o->port ? o->port : 3306;
  p->connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 10;
  p->read_timeout_s = o->read_timeout_s > 0 ? o->read_timeout_s : 0;
  p->multi_statements = o->multi_statements != 0;
  p->multirow_insert = o->multirow_insert != 0;
  p->wsrep_sync_wait = o->wsrep_sync_wait;
  if (!p->conns || !p->host || !p->user || (o->password && !p->password) ||
      (o->database && *o->database && !p->database) ||
      (o->socket && *o->socket && !p->socket)) {
    db_pool_destroy(p);
    return err_set(e, ERR_NOMEM, "db: out of memory");
  }
  if (p->socket)
    snprintf(p->where, sizeof(p->where), "%s", p->socket);
  else
    snprintf(p->where, sizeof(p->where), "%s:%d", p->host, p->port);
  for (int i = 0; i < p->size; i++)
    p->conns[i].pool = p;

  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->cv, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&p->mu, NULL);
  *out = p;
  return ERR_OK;
}

void db_pool_destroy(struct db_pool *p)
{
  if (!p)
    return;
  if (p->conns) {
    for (int i = 0; i < p->size; i++) {
      if (p->conns[i].in_use)
        LOG_W("db", "pool destroyed with connection %d still in use", i);
      conn_close(&p->conns[i]);
    }
    free(p->conns);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
  }
  if (p->password) {
    explicit_bzero(p->password, strlen(p->password));
    free(p->password);
  }
  free(p->host);
  free(p->user);
  free(p->database);
  free(p->socket);
  free(p);
}

/* One connection attempt.  On failure *errnum and msg get the reason. */
static int conn_open_once(struct db_pool *p, struct db_conn *c,
                          int64_t deadline, unsigned *errnum, char *msg,
                          size_t msgsz)
{
  MYSQL *my = mysql_init(NULL);
  if (!my) {
    *errnum = CR_OUT_OF_MEMORY;
    snprintf(msg, msgsz, "out of memory");
    return -1;
  }
  unsigned ct = (unsigned)p->connect_timeout_s;
  if (deadline != INT64_MAX) {
    int64_t rem = (deadline - now_ms() + 999) / 1000;
    if (rem < 1)
      rem = 1;
    if ((int64_t)ct > rem)
      ct = (unsigned)rem;
  }
  my_bool off = 0, on = 1;
  unsigned no_infile = 0;
  mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  if (p->read_timeout_s > 0) {
    unsigned rt = (unsigned)p->read_timeout_s;
    mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &rt);
    mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &rt);
  }
  mysql_options(my, MYSQL_OPT_RECONNECT, &off);
  mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  mysql_options(my, MYSQL_REPORT_DATA_TRUNCATION, &on);
  mysql_options(my, MYSQL_OPT_LOCAL_INFILE, &no_infile);
  unsigned long flags = CLIENT_MULTI_RESULTS;
  if (p->multi_statements)
    flags |= CLIENT_MULTI_STATEMENTS;
  if (!mysql_real_connect(my, p->socket ? NULL : p->host, p->user,
                          p->password ? p->password : "", p->database,
                          p->socket ? 0 : (unsigned)p->port, p->socket,
                          flags)) {
    *errnum = mysql_errno(my);
    snprintf(msg, msgsz, "%s", mysql_error(my));
    mysql_close(my);
    return -1;
  }
  if (p->wsrep_sync_wait > 0) {
    /* Best effort: a server built without Galera has no such variable,
     * and the reads this protects then need no waiting. */
    char q[64];
    snprintf(q, sizeof(q), "SET SESSION wsrep_sync_wait = %d",
             p->wsrep_sync_wait);
    if (mysql_query(my, q) != 0)
      LOG_D("db", "%s: %s (ignored)", q, mysql_error(my));
  }
  c->my = my;
  c->broken = 0;
  c->in_txn = 0;
  c->busy = 0;
  c->lost_msg[0] = '\0';
  return 0;
}

/* Connect c, retrying with exponential backoff until deadline. */
static enum err_code conn_open(struct db_pool *p, struct db_conn *c,
                               int64_t deadline, struct err *e)
{
  int64_t t0 = now_ms();
  int64_t backoff = DB_BACKOFF_MIN_MS;
  unsigned n = 0;
  char msg[MYSQL_ERRMSG_SIZE + 1];
  for (int attempt = 1;; attempt++) {
    if (conn_open_once(p, c, deadline, &n, msg, sizeof(msg)) == 0) {
      stat_add(&p->n_connects);
      if (attempt > 1)
        LOG_I("db", "connected to %s after %d attempts ms=%" PRId64,
              p->where, attempt, now_ms() - t0);
      return ERR_OK;
    }
    stat_add(&p->n_connect_fails);
    if (!errno_connect_retryable(n))
      return err_set(e, ERR_DB_CONN, "cannot connect to database %s@%s: %s",
                     p->user, p->where, msg);
    int64_t now = now_ms();
    if (now >= deadline)
      return err_set(e, ERR_DB_CONN,
                     "cannot connect to database %s@%s (%d attempt%s in "
                     "%" PRId64 " ms): %s",
                     p->user, p->where, attempt, attempt > 1 ? "s" : "",
                     now - t0, msg);
    if (attempt == 1)
      LOG_W("db", "cannot connect to %s (errno=%u: %s); retrying with backoff",
            p->where, n, msg);
    int64_t wait = backoff;
    if (deadline != INT64_MAX && wait > deadline - now)
      wait = deadline - now;
    sleep_ms(wait);
    backoff *= 2;
    if (backoff > DB_BACKOFF_MAX_MS)
      backoff = DB_BACKOFF_MAX_MS;
  }
}

/* An idle connection is stale if the server closed it (its socket is
 * readable: EOF or an error packet nobody asked for) or, after a long
 * idle time, if it does not answer a ping. */
static int conn_stale(struct db_conn *c, int64_t idle_ms)
{
  if (sock_invalid(c->my))
    return 1;
  struct pollfd pfd = {.fd = (int)mysql_get_socket(c->my), .events = POLLIN};
  if (poll(&pfd, 1, 0) != 0)
    return 1;
  if (idle_ms > DB_IDLE_PING_MS && mysql_ping(c->my) != 0)
    return 1;
  return 0;
}

/* Pick a free slot: an open healthy one used last (warm), else any. */
static struct db_conn *do_pick(struct db_pool *p)
{
  struct db_conn *best = NULL;
  for (int i = 0; i < p->size; i++) {
    struct db_conn *c = &p->conns[i];
    if (c->in_use)
      continue;
    if (!best) {
      best = c;
      continue;
    }
    int c_open = c->my && !c->broken, b_open = best->my && !best->broken;
    if (c_open > b_open || (c_open == b_open && c_open &&
                            c->last_used_ms > best->last_used_ms))
      best = c;
  }
  return best;
}

enum err_code db_acquire(struct db_pool *p, int timeout_ms,
                         struct db_conn **out, struct err *e)
{
  if (!p || !out)
    return err_set(e, ERR_INVAL, "db_acquire: NULL argument");
  *out = NULL;
  int64_t start = now_ms();
  int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + timeout_ms;
  struct db_conn *c;

  pthread_mutex_lock(&p->mu);
  while (!(c = do_pick(p))) {
    int rc = 0;
    p->waiting++;
    if (deadline == INT64_MAX) {
      pthread_cond_wait(&p->cv, &p->mu);
    } else {
      struct timespec ts = {.tv_sec = deadline / 1000,
                            .tv_nsec = (long)(deadline % 1000) * 1000000L};
      rc = pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    p->waiting--;
    if (rc == ETIMEDOUT && !(c = do_pick(p))) {
      pthread_mutex_unlock(&p->mu);
      stat_add(&p->n_timeouts);
      return err_set(e, ERR_TIMEOUT,
                     "no free database connection (%s): all %d in use for "
                     "%d ms",
                     p->where, p->size, timeout_ms);
    }
    if (c)
      break;
  }
  c->in_use = 1;
  int64_t idle = start - c->last_used_ms;
  pthread_mutex_unlock(&p->mu);

  enum err_code rc = ERR_OK;
  if (c->my && !c->broken && conn_stale(c, idle)) {
    LOG_I("db", "idle connection to %s was closed by the server; "
                "reconnecting",
          p->where);
    stat_add(&p->n_lost);
    c->broken = 1;
  }
  if (!c->my || c->broken) {
    conn_close(c);
    rc = conn_open(p, c, deadline, e);
  }
  pthread_mutex_lock(&p->mu);
  if (rc != ERR_OK) {
    c->in_use = 0;
    pthread_cond_signal(&p->cv);
  }
  pthread_mutex_unlock(&p->mu);
  if (rc != ERR_OK)
    return rc;
  stat_add(&p->n_acquires);
  c->last_errno = 0;
  *out = c;
  return ERR_OK;
}

static int conn_in_txn(struct db_conn *c)
{
  unsigned int st = 0;
  if (c->in_txn)
    return 1;
  if (c->my && !c->broken &&
      mariadb_get_infov(c->my, MARIADB_CONNECTION_SERVER_STATUS, &st) == 0)
    return (st & SERVER_STATUS_IN_TRANS) != 0;
  return 0;
}

void db_release(struct db_pool *p, struct db_conn *c)
{
  if (!c)
    return;
  if (!p || c->pool != p) {
    LOG_E("db", "db_release: connection does not belong to this pool");
    return;
  }
  c->busy = 0;
  if (c->my && !c->broken && conn_in_txn(c)) {
    struct err e2;
    LOG_W("db", "connection released inside a transaction; rolling back");
    if (db_rollback(c, &e2) != ERR_OK)
      c->broken = 1; /* unknown state: start a fresh session next time */
  }
  if (c->broken)
    conn_close(c); /* free the dead session now, not at the next acquire */
  pthread_mutex_lock(&p->mu);
  c->in_use = 0;
  c->last_used_ms = now_ms();
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

void db_pool_stats(struct db_pool *p, struct db_pool_stats *out)
{
  if (!out)
    return;
  memset(out, 0, sizeof(*out));
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  out->size = p->size;
  for (int i = 0; i < p->size; i++) {
    /* my/broken are owned by the holder; an in-use slot counts as open */
    if (p->conns[i].in_use)
      out->in_use++, out->open++;
    else if (p->conns[i].my)
      out->open++;
  }
  out->waiting = p->waiting;
  pthread_mutex_unlock(&p->mu);
  out->acquires = __atomic_load_n(&p->n_acquires, __ATOMIC_RELAXED);
  out->timeouts = __atomic_load_n(&p->n_timeouts, __ATOMIC_RELAXED);
  out->connects = __atomic_load_n(&p->n_connects, __ATOMIC_RELAXED);
  out->connect_fails = __atomic_load_n(&p->n_connect_fails, __ATOMIC_RELAXED);
  out->lost = __atomic_load_n(&p->n_lost, __ATOMIC_RELAXED);
}

enum err_code db_ping(struct db_pool *p, struct err *e)
{
  if (!p)
    return err_set(e, ERR_INVAL, "db_ping: NULL pool");
  struct db_conn *c;
  int t = p->connect_timeout_s > 0 ? p->connect_timeout_s * 1000 : 1000;
  enum err_code rc = db_acquire(p, t, &c, e);
  if (rc != ERR_OK)
    return rc;
  rc = db_exec(c, "SELECT 1", NULL, e);
  db_release(p, c);
  return rc;
}

/* ------------------------------------------------------------------ */
/* statements */

enum err_code db_exec(struct db_conn *c, const char *sql, int64_t *affected,
                      struct err *e)
{
  enum err_code rc = db_conn_check(c, sql, e);
  if (affected)
    *affected = 0;
  if (rc != ERR_OK)
    return rc;
  if (mysql_real_query(c->my, sql, (unsigned long)strlen(sql)) != 0)
    return conn_fail_my(c, sql, e);
  int64_t total = 0;
  int status;
  do {
    MYSQL_RES *res = mysql_use_result(c->my);
    if (res) {
      mysql_free_result(res); /* reads the remaining rows */
    } else if (mysql_field_count(c->my) == 0) {
      my_ulonglong a = mysql_affected_rows(c->my);
      if (a != (my_ulonglong)-1)
        total += (int64_t)a;
    } else {
      return conn_fail_my(c, sql, e);
    }
    c->last_insert_id = (int64_t)mysql_insert_id(c->my);
    status = mysql_next_result(c->my);
  } while (status == 0);
  if (status > 0 || sock_invalid(c->my))
    return conn_fail_my(c, sql, e);
  if (affected)
    *affected = total;
  return ERR_OK;
}

enum err_code db_stmt_start(struct db_conn *c, const char *sql,
                            const struct db_val *params, int nparams,
                            struct db_stmt **out, struct err *e)
{
  enum err_code rc = db_conn_check(c, sql, e);
  if (rc == ERR_OK)
    rc = db_stmt_run(c, sql, params, nparams, out, e);
  return rc;
}

enum err_code db_exec_params(struct db_conn *c, const char *sql,
                             const struct db_val *params, int nparams,
                             int64_t *affected, struct err *e)
{
  if (affected)
    *affected = 0;
  struct db_stmt *s;
  enum err_code rc = db_stmt_start(c, sql, params, nparams, &s, e);
  if (rc != ERR_OK)
    return rc;
  int64_t a = 0;
  if (mysql_stmt_field_count(s->st) == 0) {
    my_ulonglong n = mysql_stmt_affected_rows(s->st);
    if (n != (my_ulonglong)-1)
      a = (int64_t)n;
    c->last_insert_id = (int64_t)mysql_stmt_insert_id(s->st);
  }
  rc = db_stmt_drain(c, s, sql, e);
  if (rc == ERR_OK && affected)
    *affected = a;
  return rc;
}


/* ------------------------------------------------------------------ */
/* transactions */

enum err_code db_begin(struct db_conn *c, struct err *e)
{
  if (c && c->in_txn) {
    c->last_errno = 0;
    return err_set(e, ERR_STATE, "START TRANSACTION: a transaction is "
                                 "already open on this connection");
  }
  enum err_code rc = db_exec(c, "START TRANSACTION", NULL, e);
  if (rc == ERR_OK)
    c->in_txn = 1;
  return rc;
}

enum err_code db_commit(struct db_conn *c, struct err *e)
{
  enum err_code rc = db_exec(c, "COMMIT", NULL, e);
  if (c)
    c->in_txn = 0;
  return rc;
}

enum err_code db_rollback(struct db_conn *c, struct err *e)
{
  enum err_code rc = db_exec(c, "ROLLBACK", NULL, e);
  if (c)
    c->in_txn = 0;
  return rc;
}

static int64_t retry_sleep_ms(int attempt, struct db_conn *c)
{
  /* 10, 20, 40 ... ms capped at 500, plus jitter so that the two sides
   * of a deadlock do not collide again in lockstep */
  int64_t base = (int64_t)10 << (attempt < 6 ? attempt : 6);
  if (base > 500)
    base = 500;
  uint64_t x = (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)c ^
               ((uint64_t)attempt << 32);
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return base + (int64_t)(x % (uint64_t)(base / 2 + 1));
}

enum err_code db_exec_params_retry(struct db_conn *c, const char *sql,
                                   const struct db_val *params, int nparams,
                                   int max_tries, int64_t *affected,
                                   struct err *e)
{
  if (max_tries < 1)
    max_tries = 1;
  for (int attempt = 1;; attempt++) {
    enum err_code rc =
        db_exec_params(c, sql, params, nparams, affected, e);
    if (rc != ERR_DB || !db_errno_retryable(c->last_errno) ||
        attempt >= max_tries || conn_in_txn(c))
      return rc;
    LOG_I("db", "retrying after error %u attempt=%d", c->last_errno,
          attempt);
    sleep_ms(retry_sleep_ms(attempt, c));
  }
}

enum err_code db_txn_retry(struct db_conn *c, int max_tries, db_txn_fn fn,
                           void *user, struct err *e)
{
  if (!c || !fn)
    return err_set(e, ERR_INVAL, "db_txn_retry: NULL argument");
  if (max_tries < 1)
    max_tries = 1;
  for (int attempt = 1;; attempt++) {
    c->last_errno = 0;
    enum err_code rc = db_begin(c, e);
    if (rc != ERR_OK)
      return rc;
    rc = fn(c, user, e);
    if (rc == ERR_OK) {
      rc = db_commit(c, e);
      if (rc == ERR_OK)
        return ERR_OK;
    }
    unsigned n = c->last_errno;
    if (!c->broken) {
      struct err e2;
      (void)db_rollback(c, &e2);
    }
    c->in_txn = 0;
    c->last_errno = n;
    if (rc != ERR_DB || !db_errno_retryable(n) || attempt >= max_tries)
      return rc;
    LOG_I("db", "transaction failed with error %u; retrying attempt=%d", n,
          attempt);
    sleep_ms(retry_sleep_ms(attempt, c));
  }
}

/* ------------------------------------------------------------------ */
/* bulk insert */

int db_ident_ok(const char *s)
{
  if (!s)
    return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  size_t n = 1;
  for (const char *q = s + 1; *q; q++, n++) {
    char ch = *q;
    if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
          (ch >= '0' && ch <= '9') || ch == '_'))
      return 0;
  }
  return n <= 64;
}

/* "name" or "schema.name", each part an identifier; writes the quoted
 * form into out. */
static int table_quote(const char *table, char *out, size_t outsz)
{
  char buf[140];
  if (!table || strlen(table) >= sizeof(buf))
    return 0;
  memcpy(buf, table, strlen(table) + 1);
  char *dot = strchr(buf, '.');
  if (dot) {
    *dot = '\0';
    if (!db_ident_ok(buf) || !db_ident_ok(dot + 1))
      return 0;
    snprintf(out, outsz, "`%s`.`%s`", buf, dot + 1);
  } else {
    if (!db_ident_ok(buf))
      return 0;
    snprintf(out, outsz, "`%s`", buf);
  }
  return 1;
}

/* INSERT INTO t (`a`,`b`) VALUES (?,?),(?,?)...suffix; malloc'd. */
static char *bulk_sql(const char *qtable, const char *const *cols, int ncols,
                      int64_t rows, const char *suffix)
{
  size_t head = 32 + strlen(qtable) + (size_t)ncols * (64 + 4);
  size_t tuple = (size_t)ncols * 2 + 2;
  size_t n = head + (size_t)rows * tuple + (suffix ? strlen(suffix) : 0) + 1;
  char *sql = malloc(n);
  if (!sql)
    return NULL;
  char *p = sql;
  p += sprintf(p, "INSERT INTO %s (", qtable);
  for (int j = 0; j < ncols; j++)
    p += sprintf(p, "%s`%s`", j ? "," : "", cols[j]);
  p += sprintf(p, ") VALUES ");
  for (int64_t r = 0; r < rows; r++) {
    if (r)
      *p++ = ',';
    *p++ = '(';
    for (int j = 0; j < ncols; j++) {
      if (j)
        *p++ = ',';
      *p++ = '?';
    }
    *p++ = ')';
  }
  *p = '\0';
  if (suffix)
    strcat(p, suffix);
  return sql;
}

/* Array binding (MariaDB's COM_STMT_BULK_EXECUTE): one single-row INSERT
 * executed once for many rows, its parameters bound column-wise.  The
 * server parses and prepares 10 placeholders instead of 5,000 and takes
 * the rows as one packet: bench/bench_plog_insert.c measured MariaDB's
 * CPU per prediction-log row 16.2 vs 19.4 us for 500-row multi-row
 * INSERTs, and the client's 1.1 vs 1.5 us; the cached statement is tiny
 * (a 500-row one kept 1.1 MB of binds).  Needs a MariaDB server (not
 * MySQL) and one type per column across the rows (NULLs aside). */
union db_cell {
  int64_t i;
  double d;
  const char *s;
};

static int val_null(const struct db_val *v)
{
  return v->type == DB_NULL || (v->type == DB_TEXT && !v->s);
}

static int array_usable(struct db_conn *c, const struct db_val *vals,
                        int ncols, int64_t nrows)
{
  unsigned long caps = 0, ext = 0;
  if (c->pool->multirow_insert ||
      mariadb_get_infov(c->my, MARIADB_CONNECTION_SERVER_CAPABILITIES,
                        &caps) != 0 ||
      mariadb_get_infov(c->my, MARIADB_CONNECTION_EXTENDED_SERVER_CAPABILITIES,
                        &ext) != 0 ||
      (caps & CLIENT_MYSQL) ||
      !(ext & (MARIADB_CLIENT_STMT_BULK_OPERATIONS >> 32)))
    return 0;
  for (int j = 0; j < ncols; j++) {
    int t = DB_NULL;
    for (int64_t r = 0; r < nrows; r++) {
      const struct db_val *v = &vals[r * ncols + j];
      if (val_null(v))
        continue;
      if (v->type != DB_INT && v->type != DB_DOUBLE && v->type != DB_TEXT)
        return 0;
      if (t == DB_NULL)
        t = v->type;
      else if (t != (int)v->type)
        return 0;
    }
  }
  return 1;
}

/* array_run's arguments: rows rows of vals (ncols each); cell, len and
 * ind: scratch of rows * ncols. */
struct array_args {
  const struct db_val *vals;
  int ncols;
  int64_t rows;
  union db_cell *cell;
  unsigned long *len;
  char *ind;
};

static enum err_code array_exec(struct db_conn *c, struct db_stmt *s,
                                void *ud, int *failed, unsigned *en,
                                struct err *e)
{
  const struct array_args *a = ud;
  if (s->nparams != (unsigned)a->ncols) {
    c->last_errno = 0;
    return err_set(e, ERR_INVAL, "array insert: %u placeholders for %d "
                                 "columns", s->nparams, a->ncols);
  }
  memset(s->pbind, 0, sizeof(*s->pbind) * s->nparams);
  for (int j = 0; j < a->ncols; j++) {
    MYSQL_BIND *b = &s->pbind[j];
    size_t base = (size_t)j * (size_t)a->rows;
    b->buffer_type = MYSQL_TYPE_STRING; /* a column of NULLs only */
    for (int64_t r = 0; r < a->rows; r++) {
      const struct db_val *v = &a->vals[r * a->ncols + j];
      size_t k = base + (size_t)r;
      a->len[k] = 0;
      a->cell[k].s = NULL;
      a->ind[k] = val_null(v) ? STMT_INDICATOR_NULL : STMT_INDICATOR_NONE;
      if (a->ind[k] == STMT_INDICATOR_NULL)
        continue;
      switch (v->type) {
      case DB_INT:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        a->cell[k].i = v->i;
        break;
      case DB_DOUBLE:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        a->cell[k].d = v->d;
        break;
      default:
        a->cell[k].s = v->s;
        a->len[k] = (unsigned long)(v->len == (size_t)-1 ? strlen(v->s)
                                                         : v->len);
      }
    }
    b->buffer = &a->cell[base];
    b->length = &a->len[base];
    b->u.indicator = &a->ind[base];
  }
  unsigned int n = (unsigned int)a->rows, zero = 0;
  *failed = mysql_stmt_attr_set(s->st, STMT_ATTR_ARRAY_SIZE, &n) ||
            mysql_stmt_bind_param(s->st, s->pbind) ||
            mysql_stmt_execute(s->st);
  *en = *failed ? mysql_stmt_errno(s->st) : 0;
  /* the statement stays cached: a single-row use must not send arrays */
  (void)mysql_stmt_attr_set(s->st, STMT_ATTR_ARRAY_SIZE, &zero);
  return ERR_OK;
}

/* Run the single-row INSERT sql for rows rows of vals at once.  cell, len
 * and ind: scratch of rows * ncols. */
static enum err_code array_run(struct db_conn *c, const char *sql,
                               const struct db_val *vals, int ncols,
                               int64_t rows, union db_cell *cell,
                               unsigned long *len, char *ind,
                               struct db_stmt **out, struct err *e)
{
  struct array_args a = {vals, ncols, rows, cell, len, ind};
  return stmt_retry(c, sql, array_exec, &a, out, e);
}

enum err_code db_bulk_insert(struct db_conn *c, const char *table,
                             const char *const *cols, int ncols,
                             const struct db_val *vals, int64_t nrows,
                             int batch, const char *suffix, int64_t *affected,
                             struct err *e)
{
  char qtable[160];
  if (affected)
    *affected = 0;
  if (!c)
    return err_set(e, ERR_INVAL, "bulk insert: NULL connection");
  c->last_errno = 0;
  if (!table_quote(table, qtable, sizeof(qtable)))
    return err_set(e, ERR_INVAL, "bulk insert: bad table name '%.64s' "
                                 "(expected [A-Za-z_][A-Za-z0-9_]*)",
                   table ? table : "(null)");
  if (ncols < 1 || ncols > DB_MAX_PLACEHOLDERS || !cols)
    return err_set(e, ERR_INVAL, "bulk insert into %s: %d columns", table,
                   ncols);
  for (int j = 0; j < ncols; j++)
    if (!db_ident_ok(cols[j]))
      return err_set(e, ERR_INVAL,
                     "bulk insert into %s: bad column name '%.64s'", table,
                     cols[j] ? cols[j] : "(null)");
  if (nrows < 0 || (nrows > 0 && !vals))
    return err_set(e, ERR_INVAL, "bulk insert into %s: bad row count %" PRId64,
                   table, nrows);
  enum err_code rc = db_conn_check(c, "INSERT", e);
  if (rc != ERR_OK)
    return rc;
  if (nrows == 0)
    return ERR_OK;
  if (batch <= 0)
    batch = 500;
  if (batch > DB_MAX_PLACEHOLDERS / ncols)
    batch = DB_MAX_PLACEHOLDERS / ncols;
  /* Only the statement of the caller's batch size stays cached.  A call
   * with fewer rows than that (a flush of 137 rows) would otherwise cache a
   * statement of that odd size too, and each costs its placeholders' binds
   * twice (here and in libmariadb: about 1.1 MB for 500 rows of 10
   * columns): the prediction log's flushes filled the cache with such
   * sizes, 22 MB of RSS under load (issue 16, docs/performance.md). */
  int one_off = 0;
  if (batch > nrows) {
    batch = (int)nrows;
    one_off = 1;
  }

  int64_t full = nrows / batch, rem = nrows % batch, total = 0;
  int arr = array_usable(c, vals, ncols, nrows);
  char *sql = NULL, *tail = NULL;
  union db_cell *cell = NULL;
  unsigned long *len = NULL;
  char *ind = NULL;
  if (arr) {
    size_t cells = (size_t)batch * (size_t)ncols;
    sql = bulk_sql(qtable, cols, ncols, 1, suffix);
    cell = malloc(cells * sizeof(*cell));
    len = malloc(cells * sizeof(*len));
    ind = malloc(cells);
    if (!sql || !cell || !len || !ind) {
      free(sql);
      free(cell);
      free(len);
      free(ind);
      return err_set(e, ERR_NOMEM, "bulk insert into %s: out of memory",
                     table);
    }
  } else {
    sql = full ? bulk_sql(qtable, cols, ncols, batch, suffix) : NULL;
    tail = rem ? bulk_sql(qtable, cols, ncols, rem, suffix) : NULL;
    if ((full && !sql) || (rem && !tail)) {
      free(sql);
      free(tail);
      return err_set(e, ERR_NOMEM, "bulk insert into %s: out of memory",
                     table);
    }
  }
  /* Several statements get a transaction of their own, so that the call
   * is all or nothing; one statement is that already under autocommit
   * (db.c never switches it off), and BEGIN and COMMIT would be two more
   * round trips and statements for the server: the prediction log's
   * flushes of up to 500 rows cost MariaDB about 1.2 us less per row
   * without them (bench/bench_plog_insert.c, issue 16). */
  int own_txn = !conn_in_txn(c) && full + (rem ? 1 : 0) > 1;
  if (own_txn && (rc = db_begin(c, e)) != ERR_OK)
    goto out;
  for (int64_t k = 0; k < full + (rem ? 1 : 0); k++) {
    int64_t first = k * batch;
    int64_t rows = k < full ? batch : rem;
    const char *q = arr || k < full ? sql : tail;
    struct db_stmt *s;
    if (arr)
      rc = array_run(c, q, vals + first * ncols, ncols, rows, cell, len, ind,
                     &s, e);
    else
      rc = db_stmt_run(c, q, vals + first * ncols, (int)(rows * ncols), &s,
                       e);
    if (rc == ERR_OK) {
      my_ulonglong a = mysql_stmt_affected_rows(s->st);
      if (a != (my_ulonglong)-1)
        total += (int64_t)a;
      c->last_insert_id = (int64_t)mysql_stmt_insert_id(s->st);
      rc = db_stmt_drain(c, s, q, e);
      if (!arr && (k >= full || one_off))
        stmt_evict(c, s); /* one-off size: keep the cache for real use */
    }
    if (rc != ERR_OK) {
      err_prefix(e, "bulk insert into %s rows %" PRId64 "..%" PRId64, table,
                 first + 1, first + rows);
      goto out;
    }
  }
  if (own_txn) {
    rc = db_commit(c, e);
    own_txn = 0;
    if (rc != ERR_OK)
      goto out;
  }
  if (affected)
    *affected = total;
out:
  if (rc != ERR_OK && own_txn && !c->broken) {
    struct err e2;
    unsigned n = c->last_errno;
    (void)db_rollback(c, &e2);
    c->last_errno = n;
  }
  free(sql);
  free(tail);
  free(cell);
  free(len);
  free(ind);
  return rc;
}

/* ------------------------------------------------------------------ */
/* misc */

unsigned db_last_errno(const struct db_conn *c)
{
  return c ? c->last_errno : 0;
}

int64_t db_last_insert_id(const struct db_conn *c)
{
  return c ? c->last_insert_id : 0;
}

int db_conn_broken(const struct db_conn *c)
{
  return !c || c->broken || !c->my;
}

const char *db_client_version(void) { return mysql_get_client_info(); }

void db_opts_from_cfg(struct db_opts *o, const struct cfg *c, int size,
                      int read_timeout_s)
{
  memset(o, 0, sizeof(*o));
  o->host = c->db_host;
  o->port = c->db_port;
  o->user = c->db_user;
  o->password = c->db_password;
  o->database = c->db_name;
  o->socket = c->db_socket[0] ? c->db_socket : NULL;
  o->size = size;
  o->connect_timeout_s = c->db_connect_timeout_s;
  o->read_timeout_s = read_timeout_s;
  o->wsrep_sync_wait = c->db_wsrep_sync_wait;
}
