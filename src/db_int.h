/* db_int.h - friend interface of the MariaDB layer: db.c (pool,
 * statement cache, binding, transactions, bulk inserts) and db_result.c
 * (result columns, rows, db_query).  Not for other modules: they use
 * db.h.  The lock rule of db.c applies (only pool->mu, never held across
 * a network call); a connection belongs to the thread that acquired it.
 */
#ifndef MLOPSD_DB_INT_H
#define MLOPSD_DB_INT_H

#include <pthread.h>
#include <stdint.h>

#include <mysql.h>

#include "mlopsd/db.h"

#define DB_STMT_CACHE 64         /* prepared statements per connection */
#define DB_IDLE_PING_MS 30000    /* ping connections idle longer than this */
#define DB_BACKOFF_MIN_MS 100
#define DB_BACKOFF_MAX_MS 5000
#define DB_MAX_PLACEHOLDERS 65535 /* protocol limit per statement */
#define DB_SQL_BRIEF 80           /* SQL characters quoted in messages */
#define DB_COL_MIN 32             /* initial result buffer (any integer) */
#define DB_COL_INIT_MAX 256       /* initial buffer cap for long columns */
#define DB_COL_NUM 340            /* > MAX_DOUBLE_STRING_REP_LENGTH (331) */
#define DB_COL_KEEP (1UL << 20)   /* buffers above this are freed after */
#define DB_POOL_MAX 1024

#ifndef ER_NEED_REPREPARE
#define ER_NEED_REPREPARE 1615
#endif
#ifndef ER_UNKNOWN_STMT_HANDLER
#define ER_UNKNOWN_STMT_HANDLER 1243
#endif

struct db_col {
  char *buf;
  unsigned long cap;
  unsigned long len;
  my_bool is_null;
  my_bool error;
  int num;     /* 0, or the FLOAT/DOUBLE field type: bound as a double */
  double d;    /* the value of a num column */
};

struct db_stmt {
  char *sql;
  size_t sql_len;
  uint64_t hash;
  uint64_t used; /* LRU tick */
  MYSQL_STMT *st;
  unsigned nparams;
  MYSQL_BIND *pbind;  /* nparams */
  unsigned long *plen;/* nparams */
  unsigned ccap;      /* allocated result columns */
  MYSQL_BIND *rbind;  /* ccap */
  struct db_col *cols;/* ccap */
};

struct db_conn {
  struct db_pool *pool;
  MYSQL *my;            /* NULL while not connected */
  int in_use;           /* guarded by pool->mu */
  int broken;           /* lost its server; owner only */
  int in_txn;           /* db_begin() without commit/rollback yet */
  int busy;             /* streaming a result (db_query running) */
  unsigned last_errno;
  int64_t last_insert_id;
  int64_t last_used_ms; /* guarded by pool->mu */
  uint64_t tick;
  int nstmts;
  struct db_stmt *stmts[DB_STMT_CACHE];
  char lost_msg[ERR_MSG_MAX]; /* "database connection lost (...): ..." */
};

struct db_row {
  struct db_stmt *s;
  MYSQL_RES *meta;
  unsigned ncols;
};

struct db_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int size;
  struct db_conn *conns;
  char *host, *user, *password, *database, *socket;
  int port;
  int connect_timeout_s;
  int read_timeout_s;
  int multi_statements;
  int multirow_insert;
  int wsrep_sync_wait;
  char where[256]; /* "host:port" or the socket path, for messages */
  int waiting;     /* guarded by mu */
  /* counters: updated with __atomic builtins */
  int64_t n_acquires, n_timeouts, n_connects, n_connect_fails, n_lost;
};

/* The first DB_SQL_BRIEF characters of sql, whitespace runs folded into
 * one space, "..." when cut.  Never contains parameter values: those are
 * not part of the SQL text. */
const char *db_sql_brief(const char *sql, char *out, size_t outsz);
/* Fail with the statement's error (marks c broken on a connection-class
 * error).  Returns the code set in e. */
enum err_code db_stmt_fail(struct db_conn *c, MYSQL_STMT *st,
                           const char *sql, struct err *e);
/* Entry check of every call on a connection. */
enum err_code db_conn_check(struct db_conn *c, const char *sql,
                            struct err *e);
/* Prepare (or find), bind and execute.  A statement that the server wants
 * prepared again (table altered, statement gone) is prepared once more. */
enum err_code db_stmt_run(struct db_conn *c, const char *sql,
                          const struct db_val *params, int nparams,
                          struct db_stmt **out, struct err *e);
/* db_conn_check, then db_stmt_run: the start of a parameterised call
 * (db_exec_params, db_query).  *out is valid only on ERR_OK. */
enum err_code db_stmt_start(struct db_conn *c, const char *sql,
                            const struct db_val *params, int nparams,
                            struct db_stmt **out, struct err *e);
/* Read and drop what is left of the result(s) of s, so that the
 * connection accepts the next command. */
enum err_code db_stmt_drain(struct db_conn *c, struct db_stmt *s,
                            const char *sql, struct err *e);

#endif
