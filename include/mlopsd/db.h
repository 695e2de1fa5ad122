/* db.h - MariaDB access: a connection pool, typed prepared statements,
 * transactions, bulk inserts and streaming reads.  Only db.c includes
 * <mysql.h>; the rest of mlopsd sees these types.
 *
 * Connections: db_acquire() hands out a connection owned by the caller until
 * db_release().  Connections are opened lazily, up to the pool size.  A
 * connection whose server went away (errors 2002/2003/2006/2013/2055/4031,
 * server shutdown, killed connection...) makes the failing call return
 * ERR_DB_CONN with "database connection lost (host:port): <server message>";
 * the connection is marked broken, every further call on it fails the same
 * way at once, and the caller should db_release() it.  db_acquire()
 * reconnects broken connections (and idle ones that the server closed)
 * with exponential backoff (100 ms doubling to 5 s, bounded by the acquire
 * timeout).  A query in flight when the server goes away fails; the next
 * one (on a newly acquired connection) succeeds once the server is back.
 * MYSQL_OPT_RECONNECT stays off: a silent reconnect would lose the session,
 * the open transaction and the prepared statements without telling anyone.
 * Nothing is retried silently, except by the db_*_retry helpers, which
 * retry deadlocks (1213) and lock wait timeouts (1205) a bounded number of
 * times.
 *
 * Prepared statements are cached per connection by SQL text (up to 64,
 * least recently used evicted), so callers just pass the same SQL each
 * time; after a reconnect they are prepared again.  Parameters are `?`
 * placeholders bound from struct db_val arrays; never build SQL from user
 * input with printf.
 *
 * Error messages name the statement (its first ~80 characters, never the
 * parameter values) and the server's message, e.g.
 *   "INSERT INTO t (id) VALUES (?): Duplicate entry '1' for key 'PRIMARY'
 *    (error 1062)".
 * The password is never part of a message or a log line.
 *
 * Thread rule: the pool may be used from any thread; a struct db_conn by
 * one thread at a time (the one that acquired it).  Session state left on a
 * connection (SET @x, temporary tables, GET_LOCK) stays with it after
 * db_release(): don't leave any.  An open transaction is rolled back by
 * db_release().
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
  int read_timeout_s;     /* 0 = none; bounds a hung server (also used
                             as the write timeout) */
  int multi_statements;   /* non-zero: db_exec() accepts several
                             ;-separated statements (for migrations) */
  int multirow_insert;    /* non-zero: db_bulk_insert always sends
                             multi-row INSERTs, also where it could bind
                             arrays (benchmarks, tests) */
  int wsrep_sync_wait;    /* > 0: SET SESSION wsrep_sync_wait = N on every
                             new connection (Galera: a read first waits
                             until this node applied what the cluster
                             committed before it; 1 = reads).  Ignored by
                             a server without the variable, and by one
                             where wsrep is off */
};

struct cfg;

/* Fill *o for the configured database (the database.* keys of c): size
 * connections, read timeout read_timeout_s, the rest zero.  The strings
 * are borrowed from c (db_pool_create copies them).  Every pool the
 * daemon and the CLI open is described this way.  Any thread. */
void db_opts_from_cfg(struct db_opts *o, const struct cfg *c, int size,
                      int read_timeout_s);

/* Create a pool.  All strings of o are copied.  Opens no connection yet;
 * to check address and credentials at start-up call db_ping().
 * ERR_INVAL for a bad size (< 1 or > 1024) or a missing user. */
enum err_code db_pool_create(struct db_pool **out, const struct db_opts *o,
                             struct err *e) MLOPSD_WUR;
/* Close every connection.  All connections must have been released.  NULL
 * ok.  Main thread (or the owner), after all users of the pool stopped. */
void db_pool_destroy(struct db_pool *p);

/* Borrow a connection, waiting up to timeout_ms (< 0: no limit) for a free
 * slot and for (re)connecting.  Errors: ERR_TIMEOUT when no slot became
 * free in time; ERR_DB_CONN when the server cannot be reached in time (the
 * message has the last client/server error) or refuses us (e.g. "Access
 * denied for user 'x'@'y'": not retried).  Any thread. */
enum err_code db_acquire(struct db_pool *p, int timeout_ms,
                         struct db_conn **out, struct err *e) MLOPSD_WUR;
/* Give c back (NULL ok).  Rolls back a transaction left open. */
void db_release(struct db_pool *p, struct db_conn *c);

/* Acquire a connection (waiting up to connect_timeout_s, at least 1 s),
 * run SELECT 1 and release it: checks address and credentials. */
enum err_code db_ping(struct db_pool *p, struct err *e) MLOPSD_WUR;

/* Run one statement without parameters (DDL, SET, START TRANSACTION...)
 * with the text protocol; result sets are read and dropped.  *affected (may
 * be NULL) gets the affected row count (summed over the statements when
 * multi_statements is on).  ERR_DB (SQL error), ERR_DB_CONN. */
enum err_code db_exec(struct db_conn *c, const char *sql, int64_t *affected,
                      struct err *e) MLOPSD_WUR;

/* Run one prepared statement with parameters (cached per connection).
 * nparams must match the number of `?`.  A result set, if any, is read
 * and dropped.  ERR_INVAL (parameter count), ERR_DB, ERR_DB_CONN. */
enum err_code db_exec_params(struct db_conn *c, const char *sql,
                             const struct db_val *params, int nparams,
                             int64_t *affected, struct err *e) MLOPSD_WUR;

/* Called for each row; return non-zero to stop early (not an error). */
typedef int (*db_row_fn)(void *user, const struct db_row *row);

/* Run a prepared query and stream its rows to cb without buffering the
 * whole result (unbuffered fetch).  Rows arrive in order; the row and its
 * strings are valid only during the callback. *nrows (may be NULL) gets the
 * number of rows delivered.  cb may be NULL (rows are counted only).  When
 * cb stops early the rest of the result is drained, so c stays usable.
 * cb must not use c (the connection is busy streaming); it may use another
 * connection.  Every column arrives as text (numbers as the server prints
 * them); values of any size are fetched whole. */
enum err_code db_query(struct db_conn *c, const char *sql,
                       const struct db_val *params, int nparams,
                       db_row_fn cb, void *user, int64_t *nrows,
                       struct err *e) MLOPSD_WUR;

/* Row accessors (valid during the callback).  col is 0-based; out of
 * range behaves like SQL NULL (db_row_name gives ""). */
int db_row_ncols(const struct db_row *r);
const char *db_row_name(const struct db_row *r, int col);
int db_row_is_null(const struct db_row *r, int col);
/* Text value (NUL-terminated, borrowed; may contain NULs: use *len);
 * NULL for SQL NULL.  len may be NULL. */
const char *db_row_str(const struct db_row *r, int col, size_t *len);
/* The text value into buf as a C string, cut to fit cap (cap > 0); ""
 * for SQL NULL.  For fixed-size fields of a row struct. */
void db_row_copy(const struct db_row *r, int col, char *buf, size_t cap);
int64_t db_row_i64(const struct db_row *r, int col);   /* 0 for NULL */
double db_row_f64(const struct db_row *r, int col);    /* NAN for NULL */

/* Convenience: first column of the first row as int64 (ERR_NOTFOUND if no
 * row, *out untouched when NULL value -> ERR_NOTFOUND too). */
enum err_code db_query_i64(struct db_conn *c, const char *sql,
                           const struct db_val *params, int nparams,
                           int64_t *out, struct err *e) MLOPSD_WUR;

/* START TRANSACTION / COMMIT / ROLLBACK.  db_rollback is best effort: its
 * result may be ignored (a broken connection has no transaction left). */
enum err_code db_begin(struct db_conn *c, struct err *e) MLOPSD_WUR;
enum err_code db_commit(struct db_conn *c, struct err *e) MLOPSD_WUR;
enum err_code db_rollback(struct db_conn *c, struct err *e);

/* Insert nrows rows of ncols values (row-major in vals) into table(cols...)
 * batch rows at a time (0 = 500; capped so that a multi-row statement has
 * at most 65535 placeholders).  Against a MariaDB server, with one type per
 * column across the rows (NULLs aside), each batch is one execution of a
 * single-row prepared INSERT with arrays bound (STMT_ATTR_ARRAY_SIZE; the
 * statement is cached); otherwise, or with db_opts.multirow_insert, a
 * multi-row prepared INSERT: the full-batch statement is prepared once
 * (cached); the remainder, and a call with fewer rows than batch, use a
 * one-off statement (closed after use).  `table` ("name" or "schema.name") and `cols` must be plain
 * identifiers (db_ident_ok), validated here: ERR_INVAL otherwise.  suffix
 * (trusted SQL, not user input) may add e.g. " ON DUPLICATE KEY UPDATE
 * id=id" or be NULL.  Runs in the caller's transaction if one is open;
 * otherwise in its own, so it is all or nothing (a call that takes one
 * statement - array binding, or rows <= batch - runs it on its own under
 * autocommit: atomic as well, without the BEGIN and COMMIT round trips).
 * *affected (may be NULL)
 * gets the server's affected-row count (2 per updated row with ON
 * DUPLICATE KEY UPDATE).  A batch must fit max_allowed_packet. */
enum err_code db_bulk_insert(struct db_conn *c, const char *table,
                             const char *const *cols, int ncols,
                             const struct db_val *vals, int64_t nrows,
                             int batch, const char *suffix, int64_t *affected,
                             struct err *e) MLOPSD_WUR;

/* Server error number of the last failed call on c (0 if none, or if it
 * failed before reaching the server), e.g. 1213 deadlock, 1205 lock wait
 * timeout, 1062 duplicate key. */
unsigned db_last_errno(const struct db_conn *c);
/* AUTO_INCREMENT id generated by the last successful statement on c. */
int64_t db_last_insert_id(const struct db_conn *c);
/* Non-zero once c lost its connection: release it and acquire again. */
int db_conn_broken(const struct db_conn *c);

/* Retrying deadlocks and lock wait timeouts.
 *
 * Non-zero for the errors that a plain retry may cure: 1213 (deadlock:
 * the server rolled the whole transaction back) and 1205 (lock wait
 * timeout: the statement was rolled back). */
int db_errno_retryable(unsigned server_errno);

/* db_exec_params, retried up to max_tries times in all (>= 1) with a
 * short growing sleep while it fails with a retryable error.  Only outside
 * a transaction (autocommit): inside one, a deadlock has already undone
 * the earlier statements, so retry the whole transaction (db_txn_retry). */
enum err_code db_exec_params_retry(struct db_conn *c, const char *sql,
                                   const struct db_val *params, int nparams,
                                   int max_tries, int64_t *affected,
                                   struct err *e) MLOPSD_WUR;

/* The body of a transaction: run statements on c; return ERR_OK to commit.
 * May run several times, so it must not have effects outside the
 * database that a retry would repeat (or must undo them itself). */
typedef enum err_code (*db_txn_fn)(struct db_conn *c, void *user,
                                   struct err *e);

/* BEGIN; fn; COMMIT.  On failure ROLLBACK; if the failure was a retryable
 * server error (db_errno_retryable) run it all again, up to max_tries times
 * in all (>= 1).  Returns fn's or COMMIT's error otherwise. */
enum err_code db_txn_retry(struct db_conn *c, int max_tries, db_txn_fn fn,
                           void *user, struct err *e) MLOPSD_WUR;

/* Counters for /metrics and /readyz.  Any thread. */
struct db_pool_stats {
  int size;              /* max connections */
  int open;              /* connections currently open */
  int in_use;            /* acquired and not yet released */
  int waiting;           /* threads waiting in db_acquire */
  int64_t acquires;      /* successful db_acquire calls */
  int64_t timeouts;      /* db_acquire calls that found no free slot */
  int64_t connects;      /* successful (re)connects */
  int64_t connect_fails; /* failed connection attempts */
  int64_t lost;          /* connections found broken */
};
void db_pool_stats(struct db_pool *p, struct db_pool_stats *out);

/* Non-zero if s is a safe SQL identifier ([A-Za-z_][A-Za-z0-9_]{0,63}).
 * Any thread. */
int db_ident_ok(const char *s);

/* Version string of the client library built against (static). */
const char *db_client_version(void);

#endif
