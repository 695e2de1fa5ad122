/* db.h - MariaDB access: a connection pool, typed prepared statements,
 * transactions, bulk inserts and streaming reads.  Only db.c includes
 * <mysql.h>; the rest of mlopsd sees these types.
 *
 * Connections: db_acquire() hands out a connection owned by the caller until
 * db_release().  A connection whose server went away (errors 2006/2013/
 * 2002/2003...) makes the failing call return ERR_DB_CONN with a clear
 * message; the connection is marked broken and db_acquire() reconnects it
 * with exponential backoff (100 ms doubling to 5 s, bounded by the acquire
 * timeout).  A query in flight when the server goes away fails; the next
 * one succeeds once the server is back.  Nothing is retried silently,
 * except db_*_retry helpers that retry deadlocks (1213) and lock wait
 * timeouts (1205) a bounded number of times.
 *
 * Prepared statements are cached per connection by SQL text, so callers
 * just pass the SQL each time.  Parameters are `?` placeholders bound from
 * struct db_val arrays; never build SQL from user input with printf.
 *
 * Thread rule: the pool may be used from any thread; a struct db_conn by
 * one thread at a time (the one that acquired it).
 */
#ifndef MLOPSD_DB_H
#define MLOPSD_DB_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct db_pool;
struct db_conn;
struct db_row;

enum db_type { DB_NULL = 0, DB_INT, DB_DOUBLE, DB_TEXT };

/* A bound parameter or a bulk-insert cell.  Strings are borrowed for the
 * duration of the call; len may be (size_t)-1 for NUL-terminated. */
struct db_val {
  enum db_type type;
  int64_t i;
  double d;
  const char *s;
  size_t len;
};
#define DB_V_NULL ((struct db_val){.type = DB_NULL})
#define DB_V_INT(x) ((struct db_val){.type = DB_INT, .i = (x)})
#define DB_V_DBL(x) ((struct db_val){.type = DB_DOUBLE, .d = (x)})
#define DB_V_STR(x) ((struct db_val){.type = DB_TEXT, .s = (x), .len = (size_t)-1})
#define DB_V_STRN(x, n) ((struct db_val){.type = DB_TEXT, .s = (x), .len = (n)})

struct db_opts {
  const char *host;       /* "127.0.0.1"; ignored when socket is set */
  int port;               /* 3306 */
  const char *user;
  const char *password;   /* copied; never logged */
  const char *database;   /* may be NULL/"" for no default database */
  const char *socket;     /* unix socket path or NULL */
  int size;               /* max connections in the pool, >= 1 */
  int connect_timeout_s;  /* per connection attempt */
  int read_timeout_s;     /* 0 = none; bounds a hung server */
};

/* Create a pool.  Opens no connection yet unless eager; to check the
 * credentials at start-up call db_ping().  */
enum err_code db_pool_create(struct db_pool **out, const struct db_opts *o,
                             struct err *e) MLOPSD_WUR;
void db_pool_destroy(struct db_pool *p); /* NULL ok; all conns released */

/* Borrow a connection, waiting up to timeout_ms for a free slot and for
 * (re)connecting.  ERR_TIMEOUT, ERR_DB_CONN (with the server's message,
 * e.g. "Access denied for user 'x'@'y'") on failure. */
enum err_code db_acquire(struct db_pool *p, int timeout_ms,
                         struct db_conn **out, struct err *e) MLOPSD_WUR;
void db_release(struct db_pool *p, struct db_conn *c); /* NULL ok */

/* Connect once and run SELECT 1: checks address and credentials. */
enum err_code db_ping(struct db_pool *p, struct err *e) MLOPSD_WUR;

/* Run one statement without parameters (DDL, multi-purpose).  *affected
 * (may be NULL) gets the affected row count. */
enum err_code db_exec(struct db_conn *c, const char *sql, int64_t *affected,
                      struct err *e) MLOPSD_WUR;

/* Run one prepared statement with parameters (cached per connection). */
enum err_code db_exec_params(struct db_conn *c, const char *sql,
                             const struct db_val *params, int nparams,
                             int64_t *affected, struct err *e) MLOPSD_WUR;

/* Called for each row; return non-zero to stop early (not an error). */
typedef int (*db_row_fn)(void *user, const struct db_row *row);

/* Run a prepared query and stream its rows to cb without buffering the
 * whole result (unbuffered fetch).  Rows arrive in order; the row and its
 * strings are valid only during the callback. *nrows (may be NULL) gets the
 * number of rows delivered. */
enum err_code db_query(struct db_conn *c, const char *sql,
                       const struct db_val *params, int nparams,
                       db_row_fn cb, void *user, int64_t *nrows,
                       struct err *e) MLOPSD_WUR;

/* Row accessors (valid during the callback). */
int db_row_ncols(const struct db_row *r);
const char *db_row_name(const struct db_row *r, int col);
int db_row_is_null(const struct db_row *r, int col);
/* Text value (NUL-terminated, borrowed); NULL for SQL NULL. */
const char *db_row_str(const struct db_row *r, int col, size_t *len);
int64_t db_row_i64(const struct db_row *r, int col);   /* 0 for NULL */
double db_row_f64(const struct db_row *r, int col);    /* NAN for NULL */

/* Convenience: first column of the first row as int64 (ERR_NOTFOUND if no
 * row, *out untouched when NULL value -> ERR_NOTFOUND too). */
enum err_code db_query_i64(struct db_conn *c, const char *sql,
                           const struct db_val *params, int nparams,
                           int64_t *out, struct err *e) MLOPSD_WUR;

enum err_code db_begin(struct db_conn *c, struct err *e) MLOPSD_WUR;
enum err_code db_commit(struct db_conn *c, struct err *e) MLOPSD_WUR;
enum err_code db_rollback(struct db_conn *c, struct err *e); /* best effort */

/* Insert nrows rows of ncols values (row-major in vals) into table(cols...)
 * with multi-row prepared INSERTs of up to batch rows each (0 = 500).
 * `table` and `cols` must be plain identifiers ([A-Za-z0-9_]), validated
 * here.  suffix may add e.g. " ON DUPLICATE KEY UPDATE id=id" or NULL. Runs
 * in the caller's transaction if one is open. */
enum err_code db_bulk_insert(struct db_conn *c, const char *table,
                             const char *const *cols, int ncols,
                             const struct db_val *vals, int64_t nrows,
                             int batch, const char *suffix, int64_t *affected,
                             struct err *e) MLOPSD_WUR;

/* Server error number of the last failed call on c (0 if none), e.g. 1213
 * deadlock, 1205 lock wait timeout, 1062 duplicate key. */
unsigned db_last_errno(const struct db_conn *c);
int64_t db_last_insert_id(const struct db_conn *c);

/* Non-zero if s is a safe SQL identifier ([A-Za-z_][A-Za-z0-9_]{0,63}). */
int db_ident_ok(const char *s);

/* Version string of the client library built against (static). */
const char *db_client_version(void);

#endif
