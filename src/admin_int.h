/* admin_int.h - friend interface of the admin API's files.  Not for
 * other modules.
 *
 *   admin.c         create/destroy, routes, the one prologue of every
 *                   handler (authorization, then a connection on demand),
 *                   answers, paging, rows to JSON
 *   admin_dags.c    the DAG file cache, /dags, pause
 *   admin_runs.c    runs, task instances, logs, the grid
 *   admin_models.c  models, trials, promote/rollback, drift, /serving
 *   admin_stats.c   the serving figures sampler
 *   admin_airflow.c /version, /monitor/health, DAG details and tasks,
 *                   /importErrors, /dagStats (Airflow's shapes)
 *   admin_query.c   Airflow's query parameters, 422 answers
 *
 * Thread rule: every admin_* helper below runs on the HTTP thread of the
 * request it serves; struct admin is read-only after admin_create except
 * the DAG cache (dag_mu) and db_down_until (atomic).
 */
#ifndef MLOPSD_ADMIN_INT_H
#define MLOPSD_ADMIN_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/err.h"
#include "mlopsd/sha256.h"

struct metrics;
struct admin_stats;
struct cfg;
struct cron_tz;
struct db_conn;
struct db_pool;
struct db_row;
struct db_val;
struct http_req;
struct http_resp;
struct registry;
struct serving;

/* SQL: a DATETIME(6) column (UTC) as ISO 8601 with Z. */
#define ADMIN_TS(c) "DATE_FORMAT(" c ", '%Y-%m-%dT%H:%i:%s.%fZ')"
#define ADMIN_TS0(c) "DATE_FORMAT(" c ", '%Y-%m-%dT%H:%i:%sZ')"
/* A dag_run's instants (migration 080), r = "" or a table alias with its
 * dot: run_after is logical_date plus its fraction (logical_date_us,
 * shown only when not 0); the logical date is null for a run triggered
 * with Airflow 3's "logical_date": null. */
#define ADMIN_RUN_AFTER(r)                                                    \
  "CONCAT(DATE_FORMAT(" r "logical_date, '%Y-%m-%dT%H:%i:%s'), IF("         \
  r "logical_date_us, CONCAT('.', LPAD(" r "logical_date_us, 6, '0')), ''),"\
  " 'Z')"
#define ADMIN_RUN_LOGICAL(r)                                                  \
  "IF(" r "logical_date_null, NULL, " ADMIN_RUN_AFTER(r) ")"

struct admin_bound;

struct admin {
  const struct cfg *cfg;
  struct registry *reg;
  struct serving *sv;
  struct db_pool *db;
  int own_db;
  int acquire_ms;
  atomic_llong db_down_until; /* monotonic ms: answer 503 until then */
  int token_set;
  int read_open;
  uint8_t token_digest[SHA256_DIGEST_LEN];
  struct cron_tz *tz;
  struct admin_stats *stats;
  struct admin_bound *bound; /* one per registered route (admin_routes) */
  size_t nbound;

  pthread_mutex_t dag_mu;   /* guards dagdir, dags, errs, dags_loaded_ms */
  struct dag_dir *dagdir;   /* scheduler.dags_dir through dag.h's loader */
  struct dag_set *dags;     /* the files that load now (dag_dir_set) */
  struct dag_errors errs;   /* and the others */
  int64_t dags_loaded_ms;
};

/* ---- the handler prologue ---------------------------------------------- */

/* One request as a handler sees it.  The dispatcher (admin.c) checks the
 * route's need before the handler runs, and releases c after it
 * returned: handlers never release on their error paths. */
struct admin_call {
  struct admin *a;
  struct http_req *req;
  struct http_resp *resp;
  struct db_conn *c; /* held connection of the admin pool, or NULL */
};

enum admin_need {
  ADMIN_OPEN,  /* no check (GET /api/v2/auth) */
  ADMIN_READ,  /* token, or auth.console_read_open */
  ADMIN_WRITE, /* token, always */
};

typedef void (*admin_handler_fn)(struct admin_call *x);

struct admin_route {
  const char *method;
  const char *pattern;
  enum admin_need need;
  admin_handler_fn fn;
};

/* The routes of each file, registered in this order. */
extern const struct admin_route admin_dag_routes[];
extern const size_t admin_dag_nroutes;
extern const struct admin_route admin_run_routes[];
extern const size_t admin_run_nroutes;
extern const struct admin_route admin_model_routes[];
extern const size_t admin_model_nroutes;
extern const struct admin_route admin_airflow_routes[];
extern const size_t admin_airflow_nroutes;

/* The call's connection (acquired on first use, ADMIN_DB_ACQUIRE_MS at
 * most; after a failed contact 503 at once for two seconds), or NULL with
 * the failure answered (503/500). */
struct db_conn *admin_conn(struct admin_call *x);
/* The same without answering: NULL and *e set (optional database). */
struct db_conn *admin_conn_opt(struct admin_call *x, struct err *e);
/* Give the connection back early (before a call that takes its own
 * connection from the same pool).  No-op without one. */
void admin_conn_release(struct admin_call *x);

/* ---- answers ------------------------------------------------------------ */

int64_t admin_mono_ms(void);
/* Answer o (consumed) as JSON with status. */
void admin_reply(struct http_resp *resp, int status, cJSON *o);
/* {"error": error, "detail": detail-or-null}. */
void admin_fail(struct http_resp *resp, int status, const char *error,
                const char *fmt, ...) MLOPSD_PRINTF(4, 5);
/* A database failure: 503 when MariaDB is unreachable, else 500. */
void admin_fail_db(struct http_resp *resp, const struct err *e);

/* ---- request arguments --------------------------------------------------- */

/* Parse a decimal int64 in [lo, hi]; -1 when absent or bad. */
int admin_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* ?limit= (default def, 1..max) and ?before= / ?after= id cursors. */
struct admin_page {
  int64_t limit;
  int64_t before, after; /* 0 = not given */
  int named;             /* in: the cursor is a name (?after=NAME), read
                            by the caller */
};
/* Answers 400 and returns -1 on a bad value. */
int admin_page_args(struct http_req *req, struct http_resp *resp, int64_t def,
                    int64_t max, struct admin_page *pg);

/* The request body as a JSON object (cJSON_Delete); an empty body gives
 * an empty object.  Answers 400 and returns NULL on a bad body. */
cJSON *admin_body_object(struct http_req *req, struct http_resp *resp);

/* ---- Airflow's query parameters (admin_query.c) ------------------------- */

#define ADMIN_Q_VALS 48
#define ADMIN_Q_TIMES 16

/* A list request's filters as one parameterised WHERE fragment (each
 * condition " AND ..."; start the statement's WHERE with a condition of
 * its own), an ORDER BY text and limit/offset.  Values point into the
 * request (valid for the handler) or into tbuf.  Bad values are
 * collected in errs; admin_q_fail answers them all at once (422). */
struct admin_q {
  struct http_req *req;
  const struct cron_tz *tz;
  cJSON *errs;               /* Airflow ValidationError items */
  char where[3072];
  size_t wlen;
  struct db_val v[ADMIN_Q_VALS];
  int nv;
  char tbuf[ADMIN_Q_TIMES][32]; /* UTC "YYYY-MM-DD HH:MM:SS.ffffff" */
  int nt;
  int64_t limit, offset;
  char order[512];           /* "" = the caller's default order */
};

/* One allowed order_by name and its column (SQL, from static tables). */
struct admin_order {
  const char *name;
  const char *col;
};

void admin_q_init(struct admin_q *q, struct http_req *req,
                  const struct cron_tz *tz);
void admin_q_free(struct admin_q *q);
/* Record a ValidationError {loc: [loc0, name], msg, type}. */
void admin_q_invalid(struct admin_q *q, const char *loc0, const char *name,
                     const char *type, const char *fmt, ...)
    MLOPSD_PRINTF(5, 6);
/* 422 with the errors collected (returns -1), or 0 when there are none. */
int admin_q_fail(struct admin_q *q, struct http_resp *resp);
void admin_q_cond(struct admin_q *q, const char *frag);
int admin_q_val(struct admin_q *q, struct db_val v);
/* ?limit= (>= 0, default def, cut to ADMIN_LIMIT_MAX) and ?offset= (>= 0). */
void admin_q_paging(struct admin_q *q, int64_t def);
/* col IN (...) from a repeated (or comma-separated) ?param=; values must
 * be in allowed (NULL-terminated; NULL = any).  Returns the count. */
int admin_q_in(struct admin_q *q, const char *param, const char *col,
               const char *const *allowed);
/* col >= ?param_gte and col <= ?param_lte (ISO 8601 date-times). */
void admin_q_range(struct admin_q *q, const char *param, const char *col);
/* col LIKE ?param (Airflow's *_pattern: % and _ wildcards). */
void admin_q_like(struct admin_q *q, const char *param, const char *col);
/* The same two from a JSON body (Airflow's *BatchBody): a date-time
 * field as "col OP ?", a list of strings as "col IN (...)". */
void admin_q_body_range(struct admin_q *q, const cJSON *b, const char *key,
                        const char *col, const char *op);
void admin_q_body_in(struct admin_q *q, const cJSON *b, const char *key,
                     const char *col, const char *const *allowed);
/* ?order_by=name / -name (repeated or comma-separated) into q->order,
 * tie ("id DESC") appended; returns how many were given (0: default). */
int admin_q_order(struct admin_q *q, const struct admin_order *allowed,
                  const char *tie);
/* The same three from a JSON body: page_limit (default def, cut to
 * ADMIN_LIMIT_MAX) / page_offset, and order_by "name" / "-name". */
void admin_q_body_paging(struct admin_q *q, const cJSON *b, int64_t def);
int admin_q_body_order(struct admin_q *q, const cJSON *b,
                       const struct admin_order *allowed, const char *tie);

/* One list query over a table: its rows matching q within the scope
 * (col = value pairs, value NULL: any), after the keyset cursor (cursor
 * " AND id > ?" with cursor_id, or ""), in order, limit rows from
 * q->offset; and how many match in all (without the cursor). */
struct admin_list {
  const char *select;        /* "SELECT ... FROM table " */
  const char *table;         /* for the count */
  const char *scope_col[2];  /* e.g. "dag_id", "run_id"; NULL ends */
  const char *scope_val[2];  /* NULL: every value */
  const char *cursor;        /* "" or " AND id > ?" / " AND id < ?" */
  int64_t cursor_id;
  const char *order;
  int64_t limit;
  const struct admin_col *cols;
  int ncols;
};
/* The rows into *arr and the count into *total; -1 when answered (a
 * database error, *arr NULL). */
int admin_q_select(struct db_conn *c, struct http_resp *resp,
                   const struct admin_q *q, const struct admin_list *l,
                   cJSON **arr, int64_t *total);
/* ISO 8601: YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM] (no offset: in tz)
 * -> UTC "YYYY-MM-DD HH:MM:SS.ffffff" in out, the instant and its
 * microseconds.  -1 when bad. */
int admin_parse_time(const struct cron_tz *tz, const char *s, char out[32],
                     time_t *inst, int *usec);

/* Airflow's validation answer: 422 {"error": first msg, "detail":
 * [{"loc": [loc0, name], "msg", "type"}]}. */
void admin_invalid(struct http_resp *resp, const char *loc0, const char *name,
                   const char *type, const char *fmt, ...)
    MLOPSD_PRINTF(5, 6);
/* 422 with detail (an array of ValidationError items, consumed). */
void admin_reply_invalid(struct http_resp *resp, cJSON *detail);
cJSON *admin_validation_item(const char *loc0, const char *name,
                             const char *type, const char *msg);

/* ---- rows to JSON -------------------------------------------------------- */

/* Column kinds: 's' string, 'i' integer, 'f' number, 'b' boolean, 'j' JSON
 * text (parsed; kept as a string if it does not parse). */
struct admin_col {
  const char *key;
  char kind;
};

/* db_query callback state of admin_rows_cb: each row appended to arr. */
struct admin_rows {
  const struct admin_col *cols;
  int ncols;
  cJSON *arr;
  int64_t last_id; /* column 0 when it is "id" */
  int oom;
};

cJSON *admin_row_object(const struct admin_col *cols, int n,
                        const struct db_row *r);
int admin_rows_cb(void *user, const struct db_row *r);
/* Run a query whose columns are cols into a new array (*out).  Answers
 * the failure and returns -1. */
int admin_query_rows(struct db_conn *c, struct http_resp *resp,
                     const char *sql, const struct db_val *p, int np,
                     const struct admin_col *cols, int ncols, cJSON **out);
/* One row as an object (*out NULL when there is none). */
int admin_query_one(struct db_conn *c, struct http_resp *resp,
                    const char *sql, const struct db_val *p, int np,
                    const struct admin_col *cols, int ncols, cJSON **out);

/* ---- Airflow's shapes ------------------------------------------------------ */

/* Add key = v to o unless o has key already (v is consumed either way).
 * How the Airflow fields with no meaning in mlopsd get their neutral
 * values without overwriting what mlopsd knows. */
void admin_put_default(cJSON *o, const char *key, cJSON *v);
/* A UUID-shaped id (8-4-4-4-12 lowercase hex, version 5 and RFC 4122
 * variant bits set) derived from the SHA-256 of ns, name and n:
 * the same inputs always give the same id. */
void admin_uuid(char out[37], const char *ns, const char *name, int64_t n);
/* Airflow's DagVersionResponse for a DAG.  mlopsd does not version DAGs:
 * one version per DAG id (version_number 1, created_at the epoch), its
 * id derived from the dag_id.  NULL on allocation failure. */
cJSON *admin_dag_version(const char *dag_id);

/* Sort the objects of arr by their string field key (strcmp; desc for
 * descending), stable.  Rebuilds the list from an array of pointers:
 * few items, and no splicing of cJSON's links in place. */
void admin_sort_by_key(cJSON *arr, const char *key, int desc);

int64_t admin_obj_i64(const cJSON *o, const char *k);
const char *admin_obj_str(const cJSON *o, const char *k);

/* A page of rows (newest first, by "id") with cursors: fetched limit + 1
 * to know whether more exist.  arr holds up to limit + 1 rows in the
 * order asked; this trims it and adds next_before / next_after. */
void admin_page_finish(cJSON *o, const char *key, cJSON *arr,
                       const struct admin_page *pg, int ascending_fetch);
/* o.next_after: the key of arr's last item when more follow, else null
 * (lists paged by name). */
void admin_add_next_after_key(cJSON *o, int more, const cJSON *arr,
                              const char *key);

/* ---- the DAG file cache (admin_dags.c) ------------------------------------ */

/* Lock dag_mu with an up-to-date a->dags / a->errs (reloaded through
 * the DAG directory loader, at most every two seconds).  Always
 * returns locked; a->dags may still be NULL. */
void admin_dags_lock(struct admin *a);
void admin_dags_unlock(struct admin *a);
/* *known = 1 when dag_id is in the files or the dag table; -1 and e set
 * on a database error. */
int admin_dag_known(struct admin *a, struct db_conn *c, const char *dag_id,
                    struct err *e, int *known);
/* The DAG object for dag_id (files + table), or NULL with the answer set
 * (404, 503). */
cJSON *admin_dag_lookup(struct admin *a, struct db_conn *c,
                        struct http_resp *resp, const char *dag_id);

/* Make a sampler over m that keeps `ring` samples taken every sample_ms
 * by a thread of its own (started here; one sample is taken at once).
 * Errors: ERR_NOMEM, ERR_INTERNAL (thread). */
enum err_code admin_stats_create(struct admin_stats **out, struct metrics *m,
                                 int sample_ms, int ring, struct err *e)
    MLOPSD_WUR;

/* Stop and join the thread, free.  NULL-safe. */
void admin_stats_destroy(struct admin_stats *s);

/* Take a sample now (any thread). */
void admin_stats_sample(struct admin_stats *s);

/* The /api/v2/serving answer as a new object (cJSON_Delete): the figures
 * since the last sample ("now"), totals, the prediction log and queue
 * gauges, and the ring as per-interval points ("series").  NULL on
 * allocation failure.  Any thread. */
cJSON *admin_stats_json(struct admin_stats *s);

/* ---- exposed for unit tests ------------------------------------------ */

/* Quantile q (0..1) of a histogram given as cumulative counts cum[i] for
 * upper bounds le[i] (ascending, the last may be +Inf), linear within the
 * bucket as Prometheus' histogram_quantile.  NAN when the count is 0. */
double admin_stats_quantile(const double *le, const double *cum, int n,
                            double q);

/* One sample line of Prometheus text: "name{k=\"v\",...} value".  On
 * success returns 0 and fills name (NUL-terminated, cut to name_cap), the
 * label pairs (up to max_labels, values unescaped, each cut to 127 bytes)
 * and value.  -1 for comments, blank lines and malformed lines. */
struct admin_prom_label {
  char key[32];
  char val[128];
};
int admin_prom_line(const char *line, size_t len, char *name, size_t name_cap,
                    struct admin_prom_label *labels, int max_labels,
                    int *nlabels, double *value);

#endif
