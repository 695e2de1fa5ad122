/* admin.c - the admin API (/api/v2/...), see admin.h and
 * docs/admin-api.md.
 *
 * Shape: Airflow's REST API for DAGs, runs, task instances and logs
 * (dag_id, dag_run_id, logical_date, state, try_number, ...), plus model
 * endpoints in the spirit of MLflow's registry, plus the figures the web
 * console draws.  Every answer is JSON built with cJSON (logs may also be
 * text or JSON lines); errors are {"error": "...", "detail": ...}.
 *
 * Why a pool of its own: an admin request must not wait behind the
 * scheduler's long task queries, nor hold one of its connections; two
 * connections with a short acquire timeout keep the console responsive
 * and turn a MariaDB outage into a quick 503.
 *
 * Triggering and pausing go through the scheduler's own functions
 * (sched_trigger, sched_set_paused: the same rows and run ids as the CLI).
 *
 * Why DAGs are read from the files here: the dag table only holds the
 * pause flag; schedule, tasks and description live in the YAML files.
 * The files are loaded with dag_load_dir (the scheduler's loader) into a
 * cache that is reloaded when a source changed or a file appeared, at
 * most every two seconds.  The next run is the next cron fire time after
 * now (or after start_date), in scheduler.timezone.
 *
 * Lists are paginated with limit + keyset cursors (before/after an id or
 * a name), answered from the tables' indexes: dag_run (dag_id, id),
 * task_instance (dag_id, run_id), task_log (run_id, task_id, try_number,
 * id), deployment (model, id), drift_report (model, id).
 */
#include "mlopsd/admin.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "admin_int.h"
#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/daemon.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/reqjson.h"
#include "mlopsd/registry.h"
#include "mlopsd/sched.h"
#include "mlopsd/serving.h"
#include "mlopsd/sha256.h"

#define MOD "admin"
#define DAG_RELOAD_MS 2000
#define TOKEN_MAX 1024      /* longer presented tokens are wrong anyway */
#define BODY_DEPTH 32       /* JSON nesting accepted in a request body */
#define LOG_LIMIT_DEFAULT 1000
#define LOG_LIMIT_MAX 10000
#define GRID_RUNS_MAX 100
#define DB_RETRY_MS 2000    /* after a failed contact, 503 at once this long */

/* SQL: a DATETIME(6) column (UTC) as ISO 8601 with Z. */
#define TS(c) "DATE_FORMAT(" c ", '%Y-%m-%dT%H:%i:%s.%fZ')"
#define TS0(c) "DATE_FORMAT(" c ", '%Y-%m-%dT%H:%i:%sZ')"

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

  pthread_mutex_t dag_mu;   /* guards dags, errs, dags_loaded_ms */
  struct dag_set *dags;
  struct dag_errors errs;
  int64_t dags_loaded_ms;
  int64_t dags_dir_mtime_ns;
};

/* ---- small helpers ----------------------------------------------------- */

static int64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answer o (consumed) as JSON with status. */
static void reply(struct http_resp *resp, int status, cJSON *o)
{
  char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!txt) {
    http_resp_error(resp, 500, "out of memory building the answer");
    return;
  }
  http_resp_clear(resp);
  http_resp_status(resp, status);
  http_resp_content_type(resp, "application/json");
  if (http_resp_write(resp, txt, strlen(txt)) != ERR_OK)
    http_resp_error(resp, 500, "answer too large");
  free(txt);
}

/* {"error": error, "detail": detail-or-null}. */
static void fail(struct http_resp *resp, int status, const char *error,
                 const char *fmt, ...) MLOPSD_PRINTF(4, 5);
static void fail(struct http_resp *resp, int status, const char *error,
                 const char *fmt, ...)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "error", error);
  if (fmt) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cJSON_AddStringToObject(o, "detail", buf);
  } else {
    cJSON_AddNullToObject(o, "detail");
  }
  reply(resp, status, o);
}

/* Answer a database failure: 503 when MariaDB is unreachable, else 500. */
static void fail_db(struct http_resp *resp, const struct err *e)
{
  if (e->code == ERR_DB_CONN || e->code == ERR_TIMEOUT)
    fail(resp, 503, "database unavailable", "%s", e->msg);
  else
    fail(resp, 500, "database error", "%s", e->msg);
}

/* A connection of the admin pool.  After a failed contact, calls fail at
 * once for DB_RETRY_MS instead of each waiting for the acquire timeout:
 * these handlers run on the HTTP workers, which also serve /predict, so a
 * MariaDB outage must not make every console poll hold a worker. */
static enum err_code conn_try(struct admin *a, struct db_conn **c,
                              struct err *e)
{
  int64_t now = mono_ms(), until = atomic_load(&a->db_down_until);
  *c = NULL;
  if (now < until)
    return err_set(e, ERR_DB_CONN,
                   "MariaDB could not be reached a moment ago; trying "
                   "again in %lld ms",
                   (long long)(until - now));
  enum err_code rc = db_acquire(a->db, a->acquire_ms, c, e);
  if (rc == ERR_TIMEOUT)
    rc = e->code = ERR_DB_CONN;
  if (rc == ERR_DB_CONN)
    atomic_store(&a->db_down_until, mono_ms() + DB_RETRY_MS);
  return rc;
}

/* conn_try, or NULL with the failure answered (503). */
static struct db_conn *conn_get(struct admin *a, struct http_resp *resp)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  if (conn_try(a, &c, &e) != ERR_OK) {
    fail_db(resp, &e);
    return NULL;
  }
  return c;
}

/* Parse a decimal int64 in [lo, hi]; -1 when absent or bad. */
static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
  char *end;
  if (!s || !*s)
    return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || *end || v < lo || v > hi)
    return -1;
  *out = v;
  return 0;
}

/* ?limit= (default def, 1..max) and ?before= / ?after= id cursors.
 * Answers 400 and returns -1 on a bad value. */
struct page {
  int64_t limit;
  int64_t before, after; /* 0 = not given */
  int named;             /* in: the cursor is a name (?after=NAME), read
                            by the caller */
};

static int page_args(struct http_req *req, struct http_resp *resp,
                     int64_t def, int64_t max, struct page *pg)
{
  const char *l = http_req_query(req, "limit"),
             *b = pg->named ? NULL : http_req_query(req, "before"),
             *f = pg->named ? NULL : http_req_query(req, "after");
  pg->limit = def;
  pg->before = pg->after = 0;
  if (l && parse_i64(l, 1, max, &pg->limit)) {
    fail(resp, 400, "bad query parameter", "limit must be 1..%lld",
         (long long)max);
    return -1;
  }
  if (b && parse_i64(b, 1, INT64_MAX, &pg->before)) {
    fail(resp, 400, "bad query parameter",
         "before must be a positive id from a previous page");
    return -1;
  }
  if (f && parse_i64(f, 0, INT64_MAX, &pg->after)) {
    fail(resp, 400, "bad query parameter",
         "after must be a non-negative id from a previous page");
    return -1;
  }
  if (b && f) {
    fail(resp, 400, "bad query parameter", "give before or after, not both");
    return -1;
  }
  return 0;
}

/* Parse the request body as a JSON object.  Answers 400 and returns NULL
 * on a bad body; an empty body gives an empty object. */
static cJSON *body_object(struct http_req *req, struct http_resp *resp)
{
  size_t len;
  const char *b = http_req_body(req, &len);
  size_t i = 0;
  while (i < len && isspace((unsigned char)b[i]))
    i++;
  if (i == len)
    return cJSON_CreateObject();
  struct reqjson_scan sc = {.max_depth = BODY_DEPTH};
  if (reqjson_scan(b, len, &sc) != 0) {
    fail(resp, 400, "malformed JSON", "%s at line %d, column %d", sc.err,
         sc.err_line, sc.err_col);
    return NULL;
  }
  cJSON *o = cJSON_ParseWithLength(b, len);
  if (!o) {
    fail(resp, 400, "malformed JSON", "the body could not be parsed");
    return NULL;
  }
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    fail(resp, 400, "bad request body", "expected a JSON object");
    return NULL;
  }
  return o;
}

/* ---- authentication ---------------------------------------------------- */

enum need { NEED_READ = 0, NEED_WRITE = 1 };

/* Constant time in the token's content: both sides are hashed first, so
 * the comparison always covers 32 bytes whatever the lengths. */
static int token_ok(const struct admin *a, const char *tok, size_t n)
{
  uint8_t d[SHA256_DIGEST_LEN];
  volatile uint8_t diff = 0;
  sha256_buf(tok, n, d);
  for (size_t i = 0; i < SHA256_DIGEST_LEN; i++)
    diff |= (uint8_t)(d[i] ^ a->token_digest[i]);
  return diff == 0;
}

/* The Bearer token of the request, or NULL. */
static const char *bearer(struct http_req *req, size_t *n)
{
  const char *h = http_req_header(req, "Authorization");
  if (!h)
    return NULL;
  while (*h == ' ')
    h++;
  if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t'))
    return NULL;
  h += 7;
  while (*h == ' ' || *h == '\t')
    h++;
  size_t k = strlen(h);
  while (k > 0 && (h[k - 1] == ' ' || h[k - 1] == '\t'))
    k--;
  if (k == 0 || k > TOKEN_MAX)
    return NULL;
  *n = k;
  return h;
}

/* 1 if the request may go on; else the answer is set and 0 returned. */
static int authorize(struct admin *a, struct http_req *req,
                     struct http_resp *resp, enum need need)
{
  size_t n = 0;
  const char *tok;
  if (need == NEED_READ && a->read_open)
    return 1;
  if (!a->token_set) {
    fail(resp, 403, "admin API disabled",
         "no admin token is configured: set the environment variable %s "
         "(auth.admin_token_env) to a secret and restart mlopsd serve%s",
         a->cfg->auth_admin_token_env[0] ? a->cfg->auth_admin_token_env
                                         : "MLOPSD_ADMIN_TOKEN",
         need == NEED_READ
             ? "; read-only access can also be opened with "
               "auth.console_read_open: true"
             : "");
    return 0;
  }
  tok = bearer(req, &n);
  if (!tok) {
    if (http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"mlopsd\"") != ERR_OK)
      LOG_W(MOD, "cannot add WWW-Authenticate");
    fail(resp, 401, "authentication required",
         "send the admin token as 'Authorization: Bearer TOKEN'");
    return 0;
  }
  if (!token_ok(a, tok, n)) {
    if (http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"mlopsd\", error=\"invalid_token\"") !=
        ERR_OK)
      LOG_W(MOD, "cannot add WWW-Authenticate");
    fail(resp, 401, "invalid token", "the Bearer token is not the admin "
                                     "token");
    return 0;
  }
  return 1;
}

/* ---- rows to JSON ------------------------------------------------------ */

/* Column kinds: 's' string, 'i' integer, 'f' number, 'b' boolean, 'j' JSON
 * text (parsed; kept as a string if it does not parse). */
struct col {
  const char *key;
  char kind;
};

struct rows {
  const struct col *cols;
  int ncols;
  cJSON *arr;
  int64_t last_id; /* column 0 when it is "id" */
  int oom;
};

static cJSON *cell(const struct db_row *r, int i, char kind)
{
  size_t len;
  const char *s = db_row_str(r, i, &len);
  if (!s)
    return cJSON_CreateNull();
  switch (kind) {
  case 'i':
    return cJSON_CreateNumber((double)db_row_i64(r, i));
  case 'f': {
    double v = db_row_f64(r, i);
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
  }
  case 'b':
    return cJSON_CreateBool(db_row_i64(r, i) != 0);
  case 'j': {
    cJSON *v = cJSON_ParseWithLength(s, len);
    return v ? v : cJSON_CreateString(s);
  }
  default:
    return cJSON_CreateString(s);
  }
}

static cJSON *row_object(const struct col *cols, int n,
                         const struct db_row *r)
{
  cJSON *o = cJSON_CreateObject();
  for (int i = 0; o && i < n; i++) {
    cJSON *v = cell(r, i, cols[i].kind);
    if (!v || !cJSON_AddItemToObject(o, cols[i].key, v)) {
      cJSON_Delete(v);
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

static int rows_cb(void *user, const struct db_row *r)
{
  struct rows *rs = user;
  cJSON *o = row_object(rs->cols, rs->ncols, r);
  if (!o) {
    rs->oom = 1;
    return 1;
  }
  cJSON_AddItemToArray(rs->arr, o);
  return 0;
}

/* Run a query whose columns are cols into a new array (*out).  Answers
 * the failure and returns -1. */
static int query_rows(struct db_conn *c, struct http_resp *resp,
                      const char *sql, const struct db_val *p, int np,
                      const struct col *cols, int ncols, cJSON **out)
{
  struct err e = {0};
  struct rows rs = {cols, ncols, cJSON_CreateArray(), 0, 0};
  *out = NULL;
  if (!rs.arr) {
    fail(resp, 500, "out of memory", NULL);
    return -1;
  }
  if (db_query(c, sql, p, np, rows_cb, &rs, NULL, &e) != ERR_OK) {
    cJSON_Delete(rs.arr);
    fail_db(resp, &e);
    return -1;
  }
  if (rs.oom) {
    cJSON_Delete(rs.arr);
    fail(resp, 500, "out of memory", NULL);
    return -1;
  }
  *out = rs.arr;
  return 0;
}

/* One row as an object (*out NULL when there is none). */
static int query_one(struct db_conn *c, struct http_resp *resp,
                     const char *sql, const struct db_val *p, int np,
                     const struct col *cols, int ncols, cJSON **out)
{
  cJSON *arr;
  *out = NULL;
  if (query_rows(c, resp, sql, p, np, cols, ncols, &arr))
    return -1;
  if (cJSON_GetArraySize(arr) > 0)
    *out = cJSON_DetachItemFromArray(arr, 0);
  cJSON_Delete(arr);
  return 0;
}

static int64_t obj_i64(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static const char *obj_str(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A page of rows (newest first, by "id") with cursors: fetched limit + 1
 * to know whether more exist.  arr holds up to limit + 1 rows in the
 * order asked; this trims it and adds next_before / next_after. */
static void page_finish(cJSON *o, const char *key, cJSON *arr,
                        const struct page *pg, int ascending_fetch)
{
  int n = cJSON_GetArraySize(arr);
  int more = n > pg->limit;
  if (more)
    cJSON_DeleteItemFromArray(arr, n - 1), n--;
  if (ascending_fetch) { /* fetched oldest first (after=): flip */
    cJSON *rev = cJSON_CreateArray();
    while (rev && cJSON_GetArraySize(arr) > 0)
      cJSON_AddItemToArray(rev, cJSON_DetachItemFromArray(
                                    arr, cJSON_GetArraySize(arr) - 1));
    if (rev) {
      cJSON_Delete(arr);
      arr = rev;
    }
  }
  n = cJSON_GetArraySize(arr);
  int64_t newest = n ? obj_i64(cJSON_GetArrayItem(arr, 0), "id") : 0;
  int64_t oldest = n ? obj_i64(cJSON_GetArrayItem(arr, n - 1), "id") : 0;
  cJSON_AddItemToObject(o, key, arr);
  /* older rows exist after this page when going back and more were
   * found, or whenever we came forward from a cursor */
  if (n && ((!ascending_fetch && more) || ascending_fetch))
    cJSON_AddNumberToObject(o, "next_before", (double)oldest);
  else
    cJSON_AddNullToObject(o, "next_before");
  if (n && ((ascending_fetch && more) || pg->before))
    cJSON_AddNumberToObject(o, "next_after", (double)newest);
  else
    cJSON_AddNullToObject(o, "next_after");
}

/* ---- DAG files ---------------------------------------------------------- */

static int64_t dir_mtime_ns(const char *dir)
{
  struct stat st;
  if (stat(dir, &st) != 0)
    return -1;
  return (int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
}

static int dags_stale(struct admin *a)
{
  if (!a->dags)
    return 1;
  if (dir_mtime_ns(a->cfg->sched_dags_dir) != a->dags_dir_mtime_ns)
    return 1;
  for (size_t i = 0; i < dag_set_count(a->dags); i++)
    if (dag_sources_changed(dag_set_at(a->dags, i)))
      return 1;
  /* a broken file that was fixed in place: its mtime is not tracked */
  return a->errs.n > 0;
}

/* Lock dag_mu with an up-to-date set.  Always returns locked. */
static void dags_lock(struct admin *a)
{
  pthread_mutex_lock(&a->dag_mu);
  int64_t now = mono_ms();
  if (a->dags && now - a->dags_loaded_ms < DAG_RELOAD_MS)
    return;
  if (!dags_stale(a)) {
    a->dags_loaded_ms = now;
    return;
  }
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err e = {0};
  int64_t mt = dir_mtime_ns(a->cfg->sched_dags_dir);
  if (dag_load_dir(a->cfg->sched_dags_dir, &s, &errs, &e) != ERR_OK) {
    if (!a->dags && dag_set_create(&s, &e) != ERR_OK)
      s = NULL;
    if (e.code != ERR_OK && a->dags_loaded_ms == 0)
      LOG_W(MOD, "DAG files: %s", e.msg);
  }
  if (s) {
    dag_set_destroy(a->dags);
    dag_errors_free(&a->errs);
    a->dags = s;
    a->errs = errs;
    a->dags_dir_mtime_ns = mt;
  } else {
    dag_errors_free(&errs);
  }
  a->dags_loaded_ms = now;
}

static void dags_unlock(struct admin *a) { pthread_mutex_unlock(&a->dag_mu); }

/* Next fire time of d after now as ISO 8601 in the scheduler zone; "" for
 * a manual-only DAG. */
static void dag_next(struct admin *a, const struct dag *d, char out[40])
{
  time_t now = time(NULL), after = now, t;
  struct err e = {0};
  out[0] = '\0';
  if (!d->schedule)
    return;
  if (d->start_date.set) {
    time_t st = cron_tz_resolve(a->tz, d->start_date.year,
                                d->start_date.month, d->start_date.day,
                                d->start_date.hour, d->start_date.minute,
                                d->start_date.second);
    if (st - 1 > after)
      after = st - 1;
  }
  if (cron_next(&d->cron, a->tz, after, &t, &e) == ERR_OK) {
    char iso[CRON_ISO_LEN];
    cron_fmt_iso(a->tz, t, iso);
    snprintf(out, 40, "%s", iso);
  }
}

/* The DAG's description as an Airflow-like object (no run data). */
static cJSON *dag_json(struct admin *a, const struct dag *d)
{
  char next[40];
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "dag_id", d->dag_id);
  if (d->description)
    cJSON_AddStringToObject(o, "description", d->description);
  else
    cJSON_AddNullToObject(o, "description");
  if (d->schedule)
    cJSON_AddStringToObject(o, "schedule", d->schedule);
  else
    cJSON_AddNullToObject(o, "schedule");
  cJSON_AddStringToObject(o, "timezone", cron_tz_name(a->tz));
  dag_next(a, d, next);
  if (next[0])
    cJSON_AddStringToObject(o, "next_dagrun_logical_date", next);
  else
    cJSON_AddNullToObject(o, "next_dagrun_logical_date");
  cJSON_AddBoolToObject(o, "catchup", d->catchup);
  cJSON_AddNumberToObject(o, "max_active_runs", d->max_active_runs);
  cJSON *tags = cJSON_AddArrayToObject(o, "tags");
  for (size_t i = 0; tags && i < d->ntags; i++)
    cJSON_AddItemToArray(tags, cJSON_CreateString(d->tags[i]));
  cJSON *tasks = cJSON_AddArrayToObject(o, "tasks");
  for (size_t k = 0; tasks && k < d->ntasks; k++) {
    const struct dag_task *t = &d->tasks[d->topo[k]];
    cJSON *to = cJSON_CreateObject();
    if (!to)
      break;
    cJSON_AddStringToObject(to, "task_id", t->id);
    cJSON_AddStringToObject(to, "type", t->type_name);
    cJSON *up = cJSON_AddArrayToObject(to, "depends_on");
    for (size_t u = 0; up && u < t->nupstream; u++)
      cJSON_AddItemToArray(up,
                           cJSON_CreateString(d->tasks[t->upstream[u]].id));
    cJSON_AddStringToObject(to, "trigger_rule",
                            dag_trigger_rule_name(t->trigger_rule));
    cJSON_AddItemToArray(tasks, to);
  }
  cJSON_AddStringToObject(o, "fileloc", d->path);
  cJSON_AddBoolToObject(o, "is_active", 1);
  return o;
}

/* Add is_paused and the last run from the dag / dag_run tables. */
static const struct col last_run_cols[] = {
    {"id", 'i'},           {"dag_run_id", 's'}, {"logical_date", 's'},
    {"state", 's'},        {"run_type", 's'},   {"start_date", 's'},
    {"end_date", 's'},
};
#define LAST_RUN_SQL                                                        \
  "SELECT id, run_id, " TS0("logical_date") ", state, run_type, "           \
  TS("start_date") ", " TS("end_date")                                      \
  " FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1"

static int dag_add_db(struct db_conn *c, struct http_resp *resp,
                      cJSON *o, const char *dag_id)
{
  struct err e = {0};
  int64_t paused = 0;
  struct db_val p[] = {DB_V_STR(dag_id)};
  enum err_code rc = db_query_i64(
      c, "SELECT is_paused FROM dag WHERE dag_id = ?", p, 1, &paused, &e);
  if (rc != ERR_OK && rc != ERR_NOTFOUND) {
    fail_db(resp, &e);
    return -1;
  }
  cJSON_AddBoolToObject(o, "is_paused", paused != 0);
  cJSON *last;
  if (query_one(c, resp, LAST_RUN_SQL, p, 1, last_run_cols,
                (int)(sizeof(last_run_cols) / sizeof(last_run_cols[0])),
                &last))
    return -1;
  cJSON_AddItemToObject(o, "last_run", last ? last : cJSON_CreateNull());
  return 0;
}

/* 1 when dag_id is known: in the files or in the dag table. */
static int dag_known(struct admin *a, struct db_conn *c, const char *dag_id,
                     struct err *e, int *known)
{
  int64_t one;
  struct db_val p[] = {DB_V_STR(dag_id)};
  dags_lock(a);
  *known = a->dags && dag_set_find(a->dags, dag_id) != NULL;
  dags_unlock(a);
  if (*known)
    return 0;
  enum err_code rc =
      db_query_i64(c, "SELECT 1 FROM dag WHERE dag_id = ?", p, 1, &one, e);
  if (rc == ERR_OK)
    *known = 1;
  else if (rc != ERR_NOTFOUND)
    return -1;
  err_clear(e);
  return 0;
}

/* ---- /api/v2/auth -------------------------------------------------------- */

static void h_auth(struct http_req *req, struct http_resp *resp, void *arg)
{
  struct admin *a = arg;
  size_t n = 0;
  const char *tok = bearer(req, &n);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddBoolToObject(o, "admin_enabled", a->token_set);
  cJSON_AddBoolToObject(o, "read_open", a->read_open);
  cJSON_AddBoolToObject(o, "token_given", tok != NULL);
  cJSON_AddBoolToObject(o, "authenticated",
                        a->token_set && tok && token_ok(a, tok, n));
  cJSON_AddStringToObject(o, "token_env", a->cfg->auth_admin_token_env);
  cJSON_AddStringToObject(o, "version", MLOPSD_VERSION);
  reply(resp, 200, o);
}

/* ---- DAGs ----------------------------------------------------------------- */

/* o.next_after: the key of arr's last item when more follow, else null
 * (lists paged by name). */
static void add_next_after_key(cJSON *o, int more, const cJSON *arr,
                               const char *key)
{
  int n = cJSON_GetArraySize(arr);
  if (more && n)
    cJSON_AddStringToObject(
        o, "next_after", obj_str(cJSON_GetArrayItem(arr, n - 1), key));
  else
    cJSON_AddNullToObject(o, "next_after");
}

static void h_dags_list(struct http_req *req, struct http_resp *resp,
                        void *arg)
{
  struct admin *a = arg;
  const char *after = http_req_query(req, "after");
  struct page pg = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  pg.named = 1;
  if (page_args(req, resp, 100, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  /* the files, then ids only in the table (DAG files removed) */
  cJSON *arr = cJSON_CreateArray(), *errs = cJSON_CreateArray();
  dags_lock(a);
  size_t total = a->dags ? dag_set_count(a->dags) : 0;
  for (size_t i = 0; a->dags && i < total; i++) {
    const struct dag *d = dag_set_at(a->dags, i);
    if (after && strcmp(d->dag_id, after) <= 0)
      continue;
    if (cJSON_GetArraySize(arr) >= pg.limit + 1)
      break;
    cJSON_AddItemToArray(arr, dag_json(a, d));
  }
  for (size_t i = 0; i < a->errs.n; i++) {
    cJSON *eo = cJSON_CreateObject();
    cJSON_AddStringToObject(eo, "file", a->errs.v[i].file);
    cJSON_AddStringToObject(eo, "error", a->errs.v[i].msg);
    cJSON_AddItemToArray(errs, eo);
  }
  dags_unlock(a);

  struct db_conn *c = conn_get(a, resp);
  if (!c) {
    cJSON_Delete(arr);
    cJSON_Delete(errs);
    return;
  }
  /* DAGs in the table without a file (removed, or only known so far) */
  struct col gone_cols[] = {{"dag_id", 's'}, {"fileloc", 's'}};
  cJSON *gone = NULL;
  struct db_val gp[] = {DB_V_STR(after ? after : "")};
  if (query_rows(c, resp,
                 "SELECT dag_id, fileloc FROM dag WHERE dag_id > ? ORDER BY "
                 "dag_id LIMIT 1000",
                 gp, 1, gone_cols, 2, &gone)) {
    db_release(a->db, c);
    cJSON_Delete(arr);
    cJSON_Delete(errs);
    return;
  }
  cJSON *g;
  cJSON_ArrayForEach(g, gone)
  {
    const char *id = obj_str(g, "dag_id");
    int have = 0;
    cJSON *x;
    cJSON_ArrayForEach(x, arr) if (id && obj_str(x, "dag_id") &&
                                   !strcmp(obj_str(x, "dag_id"), id)) have = 1;
    dags_lock(a);
    if (a->dags && id && dag_set_find(a->dags, id))
      have = 1;
    dags_unlock(a);
    if (!have && id) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "dag_id", id);
      cJSON_AddNullToObject(o, "description");
      cJSON_AddNullToObject(o, "schedule");
      cJSON_AddNullToObject(o, "next_dagrun_logical_date");
      cJSON_AddArrayToObject(o, "tasks");
      cJSON_AddBoolToObject(o, "is_active", 0);
      cJSON_AddItemToArray(arr, o);
      total++;
    }
  }
  cJSON_Delete(gone);
  /* keep dag_id order across both sources, then cut to the page */
  int n = cJSON_GetArraySize(arr);
  for (int i = 1; i < n; i++) /* insertion sort: lists are short */
    for (int j = i; j > 0; j--) {
      cJSON *x = cJSON_GetArrayItem(arr, j - 1), *y = cJSON_GetArrayItem(arr, j);
      if (strcmp(obj_str(x, "dag_id"), obj_str(y, "dag_id")) <= 0)
        break;
      cJSON_DetachItemViaPointer(arr, y);
      cJSON_InsertItemInArray(arr, j - 1, y);
    }
  int more = n > pg.limit;
  while (cJSON_GetArraySize(arr) > pg.limit)
    cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
  cJSON_ArrayForEach(g, arr)
  {
    if (dag_add_db(c, resp, g, obj_str(g, "dag_id"))) {
      db_release(a->db, c);
      cJSON_Delete(arr);
      cJSON_Delete(errs);
      return;
    }
  }
  db_release(a->db, c);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "dags", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  add_next_after_key(o, more, arr, "dag_id");
  cJSON_AddItemToObject(o, "import_errors", errs);
  reply(resp, 200, o);
}

/* The DAG object for dag_id (files + table), or NULL with the answer set
 * (404, 503). */
static cJSON *dag_lookup(struct admin *a, struct db_conn *c,
                         struct http_resp *resp, const char *dag_id)
{
  cJSON *o = NULL;
  dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  if (d)
    o = dag_json(a, d);
  dags_unlock(a);
  if (!o) {
    struct err e = {0};
    int known = 0;
    if (dag_known(a, c, dag_id, &e, &known)) {
      fail_db(resp, &e);
      return NULL;
    }
    if (!known) {
      fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
      return NULL;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dag_id", dag_id);
    cJSON_AddNullToObject(o, "schedule");
    cJSON_AddNullToObject(o, "next_dagrun_logical_date");
    cJSON_AddArrayToObject(o, "tasks");
    cJSON_AddBoolToObject(o, "is_active", 0);
  }
  if (dag_add_db(c, resp, o, dag_id)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

static void h_dag_get(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  struct admin *a = arg;
  if (!authorize(a, req, resp, NEED_READ))
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *o = dag_lookup(a, c, resp, http_req_param(req, "dag_id"));
  db_release(a->db, c);
  if (o)
    reply(resp, 200, o);
}

static void h_dag_patch(struct http_req *req, struct http_resp *resp,
                        void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id");
  struct err e = {0};
  if (!authorize(a, req, resp, NEED_WRITE))
    return;
  cJSON *b = body_object(req, resp);
  if (!b)
    return;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "is_paused");
  if (!cJSON_IsBool(p)) {
    cJSON_Delete(b);
    fail(resp, 400, "bad request body",
         "expected {\"is_paused\": true} or {\"is_paused\": false}");
    return;
  }
  int paused = cJSON_IsTrue(p);
  cJSON_Delete(b);
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  int known = 0;
  if (dag_known(a, c, dag_id, &e, &known)) {
    db_release(a->db, c);
    fail_db(resp, &e);
    return;
  }
  if (!known) {
    db_release(a->db, c);
    fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
    return;
  }
  if (sched_set_paused(c, dag_id, paused, &e) != ERR_OK) {
    db_release(a->db, c);
    fail_db(resp, &e);
    return;
  }
  LOG_I(MOD, "dag=%s %s through the admin API", dag_id,
        paused ? "paused" : "unpaused");
  cJSON *o = dag_lookup(a, c, resp, dag_id);
  db_release(a->db, c);
  if (o)
    reply(resp, 200, o);
}

/* ---- runs ----------------------------------------------------------------- */

static const struct col run_cols[] = {
    {"id", 'i'},         {"dag_run_id", 's'},   {"dag_id", 's'},
    {"logical_date", 's'}, {"run_type", 's'},   {"state", 's'},
    {"conf", 'j'},       {"queued_at", 's'},    {"start_date", 's'},
    {"end_date", 's'},   {"external_trigger", 'b'},
};
#define NRUNCOLS (int)(sizeof(run_cols) / sizeof(run_cols[0]))
#define RUN_SELECT                                                          \
  "SELECT id, run_id, dag_id, " TS0("logical_date") ", run_type, state, "   \
  "conf, " TS("queued_at") ", " TS("start_date") ", " TS("end_date")        \
  ", external_trigger FROM dag_run "

/* logical_date: "YYYY-MM-DD" (midnight in the scheduler zone) or
 * "YYYY-MM-DDTHH:MM[:SS](Z|+HH:MM|-HH:MM)".  UTC "YYYY-MM-DD HH:MM:SS"
 * into out; -1 on a bad value. */
static int parse_logical(struct admin *a, const char *s, char out[24],
                         time_t *inst)
{
  int y, mo, d, h = 0, mi = 0, se = 0;
  char date[11];
  time_t t;
  if (strlen(s) < 10)
    return -1;
  memcpy(date, s, 10);
  date[10] = '\0';
  if (cron_parse_date(date, &y, &mo, &d) != ERR_OK)
    return -1;
  if (s[10] == '\0') {
    t = cron_tz_resolve(a->tz, y, mo, d, 0, 0, 0);
  } else {
    const char *p = s + 10;
    int n = 0, off = 0;
    if ((*p != 'T' && *p != ' ') ||
        sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2)
      return -1;
    p += 1 + n;
    if (*p == ':') {
      if (sscanf(p + 1, "%2d%n", &se, &n) != 1)
        return -1;
      p += 1 + n;
      if (*p == '.') /* fractions are dropped */
        while (isdigit((unsigned char)*++p))
          ;
    }
    if (h > 23 || mi > 59 || se > 59)
      return -1;
    if (*p == 'Z' && p[1] == '\0') {
      off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
               isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
               isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
      off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
            ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
      if (*p == '-')
        off = -off;
    } else if (*p == '\0') { /* no offset: the scheduler zone */
      t = cron_tz_resolve(a->tz, y, mo, d, h, mi, se);
      goto done;
    } else {
      return -1;
    }
    t = (time_t)(cron_days_from_civil(y, mo, d) * 86400 + h * 3600 +
                 mi * 60 + se - off);
  }
done:;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 24, "%Y-%m-%d %H:%M:%S", &tm);
  *inst = t;
  return 0;
}

/* The run itself is recorded by the scheduler's sched_trigger (same run
 * ids, same checks as `mlopsd dags trigger`); a date given with Z or an
 * offset is turned into the scheduler zone's wall time for it. */
static void h_run_trigger(struct http_req *req, struct http_resp *resp,
                          void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id");
  struct err e = {0};
  char ld[24] = "", local[32], run_id[SCHED_RUN_ID_MAX + 1] = "";
  time_t inst = 0;
  if (!authorize(a, req, resp, NEED_WRITE))
    return;
  cJSON *b = body_object(req, resp);
  if (!b)
    return;
  const char *lds = obj_str(b, "logical_date");
  const cJSON *conf = cJSON_GetObjectItemCaseSensitive(b, "conf");
  const cJSON *ldv = cJSON_GetObjectItemCaseSensitive(b, "logical_date");
  if ((ldv && !cJSON_IsNull(ldv) && !lds) ||
      (lds && parse_logical(a, lds, ld, &inst))) {
    fail(resp, 400, "bad request body",
         "logical_date must be YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS] (in %s) or "
         "with Z or an offset, got '%.64s'",
         cron_tz_name(a->tz), lds ? lds : "(not a string)");
    cJSON_Delete(b); /* lds points into it */
    return;
  }
  if (conf && !cJSON_IsObject(conf) && !cJSON_IsNull(conf)) {
    cJSON_Delete(b);
    fail(resp, 400, "bad request body", "conf must be a JSON object");
    return;
  }
  if (cJSON_GetObjectItemCaseSensitive(b, "dag_run_id")) {
    cJSON_Delete(b);
    fail(resp, 400, "bad request body",
         "dag_run_id is chosen by mlopsd (DAG, run type and logical date); "
         "leave it out");
    return;
  }
  if (lds) {
    struct cron_civil cv;
    cron_tz_civil(a->tz, inst, &cv);
    snprintf(local, sizeof(local), "%04d-%02d-%02dT%02d:%02d:%02d", cv.year,
             cv.month, cv.day, cv.hour, cv.minute, cv.second);
  }
  struct db_conn *c = conn_get(a, resp);
  if (!c) {
    cJSON_Delete(b);
    return;
  }
  int known = 0;
  if (dag_known(a, c, dag_id, &e, &known) || !known) {
    db_release(a->db, c);
    cJSON_Delete(b);
    if (e.code)
      fail_db(resp, &e);
    else
      fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
    return;
  }
  enum err_code rc = sched_trigger(c, a->tz, dag_id, lds ? local : NULL,
                                   conf, run_id, sizeof(run_id), &e);
  cJSON_Delete(b);
  if (rc == ERR_EXISTS) {
    struct db_val q[] = {DB_V_STR(dag_id), DB_V_STR(ld)};
    cJSON *ex = NULL;
    int qr = ld[0] ? query_one(c, resp,
                               RUN_SELECT "WHERE dag_id = ? AND "
                                          "logical_date = ?",
                               q, 2, run_cols, NRUNCOLS, &ex)
                   : 0;
    db_release(a->db, c);
    if (qr)
      return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "DAG run exists");
    cJSON_AddStringToObject(o, "detail", e.msg);
    cJSON_AddItemToObject(o, "dag_run", ex ? ex : cJSON_CreateNull());
    reply(resp, 409, o);
    return;
  }
  if (rc == ERR_INVAL) {
    db_release(a->db, c);
    fail(resp, 400, "bad request body", "%s", e.msg);
    return;
  }
  if (rc != ERR_OK) {
    db_release(a->db, c);
    fail_db(resp, &e);
    return;
  }
  struct db_val q[] = {DB_V_STR(run_id)};
  cJSON *run = NULL;
  int qr = query_one(c, resp, RUN_SELECT "WHERE run_id = ?", q, 1, run_cols,
                     NRUNCOLS, &run);
  db_release(a->db, c);
  if (qr)
    return;
  LOG_I(MOD, "dag=%s run=%s triggered through the admin API", dag_id,
        run_id);
  reply(resp, 200, run ? run : cJSON_CreateObject());
}

static void h_runs_list(struct http_req *req, struct http_resp *resp,
                        void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id");
  struct page pg = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (page_args(req, resp, 25, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *dag = dag_lookup(a, c, resp, dag_id);
  if (!dag) {
    db_release(a->db, c);
    return;
  }
  cJSON_Delete(dag);
  cJSON *arr;
  struct db_val p[] = {DB_V_STR(dag_id), DB_V_INT(0), DB_V_INT(pg.limit + 1)};
  int r;
  if (pg.after) {
    p[1] = DB_V_INT(pg.after);
    r = query_rows(c, resp,
                   RUN_SELECT "WHERE dag_id = ? AND id > ? ORDER BY id ASC "
                              "LIMIT ?",
                   p, 3, run_cols, NRUNCOLS, &arr);
  } else {
    p[1] = DB_V_INT(pg.before ? pg.before : INT64_MAX);
    r = query_rows(c, resp,
                   RUN_SELECT "WHERE dag_id = ? AND id < ? ORDER BY id DESC "
                              "LIMIT ?",
                   p, 3, run_cols, NRUNCOLS, &arr);
  }
  if (r) {
    db_release(a->db, c);
    return;
  }
  int64_t total = 0;
  struct err e = {0};
  if (db_query_i64(c, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?", p, 1,
                   &total, &e) != ERR_OK) {
    db_release(a->db, c);
    cJSON_Delete(arr);
    fail_db(resp, &e);
    return;
  }
  db_release(a->db, c);
  cJSON *o = cJSON_CreateObject();
  page_finish(o, "dag_runs", arr, &pg, pg.after != 0);
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  reply(resp, 200, o);
}

/* The run (*out) or an answer (404 when it is not a run of dag_id). */
static int run_lookup(struct admin *a, struct db_conn *c,
                      struct http_resp *resp, const char *dag_id,
                      const char *run_id, cJSON **out)
{
  struct db_val p[] = {DB_V_STR(run_id), DB_V_STR(dag_id)};
  (void)a;
  if (query_one(c, resp, RUN_SELECT "WHERE run_id = ? AND dag_id = ?", p, 2,
                run_cols, NRUNCOLS, out))
    return -1;
  if (!*out) {
    fail(resp, 404, "DAG run not found",
         "no run '%s' of DAG '%s'", run_id, dag_id);
    return -1;
  }
  return 0;
}

static void h_run_get(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  struct admin *a = arg;
  if (!authorize(a, req, resp, NEED_READ))
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *run = NULL;
  int r = run_lookup(a, c, resp, http_req_param(req, "dag_id"),
                     http_req_param(req, "run_id"), &run);
  db_release(a->db, c);
  if (!r)
    reply(resp, 200, run);
}

/* ---- task instances ------------------------------------------------------ */

static const struct col ti_cols[] = {
    {"id", 'i'},          {"task_id", 's'},     {"dag_id", 's'},
    {"dag_run_id", 's'},  {"state", 's'},       {"try_number", 'i'},
    {"max_tries", 'i'},   {"start_date", 's'},  {"end_date", 's'},
    {"duration", 'f'},    {"hostname", 's'},    {"pid", 'i'},
    {"next_try_at", 's'},
};
#define NTICOLS (int)(sizeof(ti_cols) / sizeof(ti_cols[0]))
#define TI_SELECT                                                           \
  "SELECT id, task_id, dag_id, run_id, state, try_number, max_tries, "      \
  TS("start_date") ", " TS("end_date") ", duration, hostname, pid, "        \
  TS("next_try_at") " FROM task_instance "

/* The task instance (dag_id, run_id, task_id) into *out, or -1 with the
 * answer set (404, 503). */
static int ti_lookup(struct db_conn *c, struct http_resp *resp,
                     const char *dag_id, const char *run_id,
                     const char *task_id, cJSON **out)
{
  struct db_val p[] = {DB_V_STR(dag_id), DB_V_STR(run_id),
                       DB_V_STR(task_id)};
  if (query_one(c, resp,
                TI_SELECT "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
                p, 3, ti_cols, NTICOLS, out))
    return -1;
  if (!*out) {
    fail(resp, 404, "task instance not found",
         "no task '%s' in run '%s' of DAG '%s'", task_id, run_id, dag_id);
    return -1;
  }
  return 0;
}

/* Order task instances as the DAG's topological order (tasks unknown to
 * the file last, by task_id). */
static void sort_by_dag(struct admin *a, const char *dag_id, cJSON *arr)
{
  int n = cJSON_GetArraySize(arr);
  if (n < 2)
    return;
  dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  size_t *rank = calloc((size_t)n, sizeof(*rank));
  cJSON **items = calloc((size_t)n, sizeof(*items));
  if (!rank || !items) {
    dags_unlock(a);
    free(rank);
    free(items);
    return;
  }
  for (int i = 0; i < n; i++) {
    items[i] = cJSON_GetArrayItem(arr, i);
    rank[i] = SIZE_MAX;
    const char *t = obj_str(items[i], "task_id");
    if (d && t)
      for (size_t k = 0; k < d->ntasks; k++)
        if (!strcmp(d->tasks[d->topo[k]].id, t)) {
          rank[i] = k;
          break;
        }
  }
  dags_unlock(a);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0; j--) {
      int swap = rank[j] < rank[j - 1] ||
                 (rank[j] == rank[j - 1] &&
                  strcmp(obj_str(items[j], "task_id"),
                         obj_str(items[j - 1], "task_id")) < 0);
      if (!swap)
        break;
      size_t tr = rank[j];
      rank[j] = rank[j - 1];
      rank[j - 1] = tr;
      cJSON *ti = items[j];
      items[j] = items[j - 1];
      items[j - 1] = ti;
    }
  for (int i = 0; i < n; i++)
    cJSON_DetachItemViaPointer(arr, items[i]);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, items[i]);
  free(rank);
  free(items);
}

static void h_tis_list(struct http_req *req, struct http_resp *resp,
                       void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id");
  struct page pg = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (page_args(req, resp, ADMIN_LIMIT_MAX, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *run = NULL, *arr = NULL;
  if (run_lookup(a, c, resp, dag_id, run_id, &run)) {
    db_release(a->db, c);
    return;
  }
  cJSON_Delete(run);
  struct db_val p[] = {DB_V_STR(dag_id), DB_V_STR(run_id),
                       DB_V_INT(pg.after), DB_V_INT(pg.limit + 1)};
  int r = query_rows(c, resp,
                     TI_SELECT "WHERE dag_id = ? AND run_id = ? AND id > ? "
                               "ORDER BY id LIMIT ?",
                     p, 4, ti_cols, NTICOLS, &arr);
  db_release(a->db, c);
  if (r)
    return;
  int n = cJSON_GetArraySize(arr), more = n > pg.limit;
  if (more)
    cJSON_DeleteItemFromArray(arr, --n);
  int64_t last = n ? obj_i64(cJSON_GetArrayItem(arr, n - 1), "id") : 0;
  sort_by_dag(a, dag_id, arr);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "task_instances", arr);
  cJSON_AddNumberToObject(o, "total_entries", n);
  if (more)
    cJSON_AddNumberToObject(o, "next_after", (double)last);
  else
    cJSON_AddNullToObject(o, "next_after");
  reply(resp, 200, o);
}

static const struct col attempt_cols[] = {
    {"try_number", 'i'}, {"first_log_at", 's'}, {"last_log_at", 's'},
    {"lines", 'i'},
};

static void h_ti_get(struct http_req *req, struct http_resp *resp, void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id"),
             *task_id = http_req_param(req, "task_id");
  if (!authorize(a, req, resp, NEED_READ))
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *ti = NULL, *att = NULL;
  if (ti_lookup(c, resp, dag_id, run_id, task_id, &ti)) {
    db_release(a->db, c);
    return;
  }
  /* attempts: one per try, with the span and size of its log */
  struct db_val q[] = {DB_V_STR(run_id), DB_V_STR(task_id)};
  int r = query_rows(c, resp,
                     "SELECT try_number, " TS("MIN(ts)") ", " TS("MAX(ts)")
                     ", COUNT(*) FROM task_log WHERE run_id = ? AND "
                     "task_id = ? GROUP BY try_number ORDER BY try_number",
                     q, 2, attempt_cols, 4, &att);
  db_release(a->db, c);
  if (r) {
    cJSON_Delete(ti);
    return;
  }
  /* tries without log lines still count as attempts */
  int64_t tries = obj_i64(ti, "try_number");
  cJSON *all = cJSON_CreateArray();
  for (int64_t t = 1; all && t <= tries; t++) {
    cJSON *found = NULL, *x;
    cJSON_ArrayForEach(x, att) if (obj_i64(x, "try_number") == t) found = x;
    if (found) {
      cJSON_AddItemToArray(all, cJSON_Duplicate(found, 1));
    } else {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddNumberToObject(o, "try_number", (double)t);
      cJSON_AddNullToObject(o, "first_log_at");
      cJSON_AddNullToObject(o, "last_log_at");
      cJSON_AddNumberToObject(o, "lines", 0);
      cJSON_AddItemToArray(all, o);
    }
  }
  cJSON_Delete(att);
  cJSON_AddItemToObject(ti, "attempts", all);
  reply(resp, 200, ti);
}

/* ---- logs ----------------------------------------------------------------- */

struct logout {
  struct http_resp *resp;
  int mode; /* 0 JSON (collected), 1 JSON lines, 2 text */
  cJSON *arr;
  int64_t last_id;
  int64_t n;
  int failed;
};

static int log_cb(void *user, const struct db_row *r)
{
  struct logout *lo = user;
  lo->last_id = db_row_i64(r, 0);
  lo->n++;
  if (lo->mode == 0) {
    static const struct col cols[] = {
        {"id", 'i'}, {"try_number", 'i'}, {"timestamp", 's'},
        {"stream", 's'}, {"line", 's'}};
    cJSON *o = row_object(cols, 5, r);
    if (!o) {
      lo->failed = 1;
      return 1;
    }
    cJSON_AddItemToArray(lo->arr, o);
    return 0;
  }
  if (lo->mode == 1) {
    enum err_code rc = http_resp_printf(
        lo->resp, "{\"id\":%lld,\"try_number\":%lld,\"timestamp\":",
        (long long)db_row_i64(r, 0), (long long)db_row_i64(r, 1));
    if (!rc)
      rc = http_resp_json_str(lo->resp, db_row_str(r, 2, NULL));
    if (!rc)
      rc = http_resp_printf(lo->resp, ",\"stream\":");
    if (!rc)
      rc = http_resp_json_str(lo->resp, db_row_str(r, 3, NULL));
    if (!rc)
      rc = http_resp_printf(lo->resp, ",\"line\":");
    if (!rc)
      rc = http_resp_json_str(lo->resp, db_row_str(r, 4, NULL));
    if (!rc)
      rc = http_resp_printf(lo->resp, "}\n");
    if (rc)
      lo->failed = 1;
    return rc != ERR_OK;
  }
  size_t len = 0;
  const char *line = db_row_str(r, 4, &len);
  const char *ts = db_row_str(r, 2, NULL);
  if (http_resp_printf(lo->resp, "[%s] %s ", ts ? ts : "",
                       db_row_str(r, 3, NULL)) != ERR_OK ||
      http_resp_write(lo->resp, line ? line : "", line ? len : 0) !=
          ERR_OK ||
      http_resp_write(lo->resp, "\n", 1) != ERR_OK) {
    lo->failed = 1;
    return 1;
  }
  return 0;
}

static void h_log(struct http_req *req, struct http_resp *resp, void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id"),
             *task_id = http_req_param(req, "task_id");
  const char *accept = http_req_header(req, "Accept");
  const char *fmt = http_req_query(req, "format");
  int64_t try_n;
  struct page pg = {0};
  struct err e = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (parse_i64(http_req_param(req, "try_number"), 1, INT_MAX, &try_n)) {
    fail(resp, 400, "bad try_number", "try_number must be a positive "
                                      "integer");
    return;
  }
  if (page_args(req, resp, LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX, &pg) < 0)
    return;
  int mode = 0;
  if ((fmt && !strcmp(fmt, "text")) ||
      (!fmt && accept && strstr(accept, "text/plain")))
    mode = 2;
  else if ((fmt && !strcmp(fmt, "jsonl")) ||
           (!fmt && accept && (strstr(accept, "application/x-ndjson") ||
                               strstr(accept, "application/jsonl"))))
    mode = 1;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *ti = NULL;
  if (ti_lookup(c, resp, dag_id, run_id, task_id, &ti)) {
    db_release(a->db, c);
    return;
  }
  int64_t tries = obj_i64(ti, "try_number");
  if (try_n > tries) {
    db_release(a->db, c);
    cJSON_Delete(ti);
    fail(resp, 404, "attempt not found",
         "task '%s' has %lld attempt(s); attempt %lld did not start",
         task_id, (long long)tries, (long long)try_n);
    return;
  }
  struct logout lo = {resp, mode, NULL, pg.after, 0, 0};
  if (mode == 0)
    lo.arr = cJSON_CreateArray();
  else
    http_resp_content_type(resp, mode == 1 ? "application/x-ndjson"
                                           : "text/plain; charset=utf-8");
  struct db_val q[] = {DB_V_STR(run_id), DB_V_STR(task_id), DB_V_INT(try_n),
                       DB_V_INT(pg.after), DB_V_INT(pg.limit)};
  enum err_code rc = db_query(
      c,
      "SELECT id, try_number, " TS("ts") ", stream, line FROM task_log "
      "WHERE run_id = ? AND task_id = ? AND try_number = ? AND id > ? "
      "ORDER BY id LIMIT ?",
      q, 5, log_cb, &lo, NULL, &e);
  db_release(a->db, c);
  if (rc != ERR_OK || lo.failed) {
    cJSON_Delete(lo.arr);
    cJSON_Delete(ti);
    http_resp_clear(resp);
    if (rc != ERR_OK)
      fail_db(resp, &e);
    else
      fail(resp, 500, "log too large", "ask for fewer lines with ?limit=");
    return;
  }
  char cursor[32];
  snprintf(cursor, sizeof(cursor), "%lld", (long long)lo.last_id);
  if (mode != 0) {
    if (http_resp_header(resp, "X-Continuation-Token", cursor) != ERR_OK ||
        http_resp_header(resp, "X-Task-State",
                         obj_str(ti, "state") ? obj_str(ti, "state") : "") !=
            ERR_OK)
      LOG_W(MOD, "log headers not added");
    cJSON_Delete(ti);
    http_resp_status(resp, 200);
    return;
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "dag_id", dag_id);
  cJSON_AddStringToObject(o, "dag_run_id", run_id);
  cJSON_AddStringToObject(o, "task_id", task_id);
  cJSON_AddNumberToObject(o, "try_number", (double)try_n);
  cJSON *st = cJSON_DetachItemFromObject(ti, "state");
  cJSON_AddItemToObject(o, "task_state", st ? st : cJSON_CreateNull());
  cJSON_AddBoolToObject(o, "current_try", try_n == tries);
  cJSON_AddItemToObject(o, "content", lo.arr);
  cJSON_AddStringToObject(o, "continuation_token", cursor);
  cJSON_AddBoolToObject(o, "more", lo.n == pg.limit);
  cJSON_Delete(ti);
  reply(resp, 200, o);
}

/* ---- grid (console) -------------------------------------------------------- */

struct grid_ti {
  cJSON *runs; /* array of run objects, each with "task_instances" {} */
};

static int grid_cb(void *user, const struct db_row *r)
{
  struct grid_ti *g = user;
  const char *rid = db_row_str(r, 0, NULL);
  const char *tid = db_row_str(r, 1, NULL);
  cJSON *run;
  cJSON_ArrayForEach(run, g->runs)
  {
    const char *x = obj_str(run, "dag_run_id");
    if (x && rid && !strcmp(x, rid)) {
      cJSON *tis = cJSON_GetObjectItemCaseSensitive(run, "task_instances");
      static const struct col cols[] = {{"run_id", 's'}, {"task_id", 's'},
                                        {"state", 's'}, {"try_number", 'i'},
                                        {"start_date", 's'},
                                        {"end_date", 's'}, {"duration", 'f'}};
      cJSON *o = row_object(cols, 7, r);
      if (o) {
        cJSON_DeleteItemFromObject(o, "run_id");
        cJSON_DeleteItemFromObject(o, "task_id");
        cJSON_AddItemToObject(tis, tid ? tid : "?", o);
      }
      break;
    }
  }
  return 0;
}

static void h_grid(struct http_req *req, struct http_resp *resp, void *arg)
{
  struct admin *a = arg;
  const char *dag_id = http_req_param(req, "dag_id");
  struct page pg = {0};
  struct err e = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (page_args(req, resp, 25, GRID_RUNS_MAX, &pg) < 0)
    return;
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *dag = dag_lookup(a, c, resp, dag_id), *runs = NULL;
  if (!dag) {
    db_release(a->db, c);
    return;
  }
  struct db_val p[] = {DB_V_STR(dag_id),
                       DB_V_INT(pg.before ? pg.before : INT64_MAX),
                       DB_V_INT(pg.limit)};
  if (query_rows(c, resp,
                 RUN_SELECT "WHERE dag_id = ? AND id < ? ORDER BY id DESC "
                            "LIMIT ?",
                 p, 3, run_cols, NRUNCOLS, &runs)) {
    db_release(a->db, c);
    cJSON_Delete(dag);
    return;
  }
  int nr = cJSON_GetArraySize(runs);
  cJSON *run;
  cJSON_ArrayForEach(run, runs) cJSON_AddObjectToObject(run, "task_instances");
  if (nr > 0) {
    int64_t lo = obj_i64(cJSON_GetArrayItem(runs, nr - 1), "id");
    int64_t hi = obj_i64(cJSON_GetArrayItem(runs, 0), "id");
    struct db_val q[] = {DB_V_STR(dag_id), DB_V_INT(lo), DB_V_INT(hi)};
    struct grid_ti g = {runs};
    /* the task instances of the runs in the id window, one query */
    if (db_query(c,
                 "SELECT t.run_id, t.task_id, t.state, t.try_number, "
                 TS("t.start_date") ", " TS("t.end_date") ", t.duration "
                 "FROM task_instance t JOIN dag_run r ON r.run_id = t.run_id "
                 "WHERE r.dag_id = ? AND r.id BETWEEN ? AND ?",
                 q, 3, grid_cb, &g, NULL, &e) != ERR_OK) {
      db_release(a->db, c);
      cJSON_Delete(dag);
      cJSON_Delete(runs);
      fail_db(resp, &e);
      return;
    }
  }
  db_release(a->db, c);
  /* tasks: the DAG's, then any only seen in task instances */
  cJSON *tasks = cJSON_DetachItemFromObject(dag, "tasks");
  if (!tasks)
    tasks = cJSON_CreateArray();
  cJSON_ArrayForEach(run, runs)
  {
    cJSON *ti;
    cJSON_ArrayForEach(ti, cJSON_GetObjectItemCaseSensitive(run,
                                                            "task_instances"))
    {
      int have = 0;
      cJSON *t;
      cJSON_ArrayForEach(t, tasks) if (!strcmp(obj_str(t, "task_id"),
                                               ti->string)) have = 1;
      if (!have) {
        cJSON *t2 = cJSON_CreateObject();
        cJSON_AddStringToObject(t2, "task_id", ti->string);
        cJSON_AddNullToObject(t2, "type");
        cJSON_AddArrayToObject(t2, "depends_on");
        cJSON_AddItemToArray(tasks, t2);
      }
    }
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "dag", dag);
  cJSON_AddItemToObject(o, "tasks", tasks);
  cJSON_AddItemToObject(o, "dag_runs", runs);
  if (nr == pg.limit)
    cJSON_AddNumberToObject(
        o, "next_before", (double)obj_i64(cJSON_GetArrayItem(runs, nr - 1),
                                          "id"));
  else
    cJSON_AddNullToObject(o, "next_before");
  reply(resp, 200, o);
}

/* ---- models ---------------------------------------------------------------- */

/* 1 and answer 404 when name is not a model of the registry. */
static int model_missing(struct admin *a, struct http_resp *resp,
                         const char *name, int **versions, size_t *nv)
{
  struct err e = {0};
  *versions = NULL;
  *nv = 0;
  if (!registry_name_valid(name)) {
    fail(resp, 404, "model not found", "'%.128s' is not a model name",
         name);
    return 1;
  }
  enum err_code rc = registry_list_versions(a->reg, name, versions, nv, &e);
  if (rc == ERR_NOTFOUND || rc == ERR_INVAL) {
    fail(resp, 404, "model not found", "no model '%s' in the registry",
         name);
    return 1;
  }
  if (rc != ERR_OK) {
    fail(resp, 500, "registry error", "%s", e.msg);
    return 1;
  }
  return 0;
}

/* The version served now for name (0 if none or no serving set). */
static int served_version(struct admin *a, const char *name)
{
  struct serving_model *m = NULL;
  int v = 0;
  if (!a->sv)
    return 0;
  if (serving_acquire(a->sv, name, &m) == SERVING_OK) {
    v = serving_model_version(m);
    serving_release(m);
  }
  return v;
}

static void add_copy(cJSON *dst, const cJSON *src, const char *key)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, key);
  cJSON_AddItemToObject(dst, key, v ? cJSON_Duplicate(v, 1)
                                    : cJSON_CreateNull());
}

/* One version's summary from its meta.json. */
static cJSON *version_json(struct admin *a, const char *name, int v)
{
  struct err e = {0};
  cJSON *meta = NULL, *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddNumberToObject(o, "version", v);
  if (registry_read_meta(a->reg, name, v, &meta, &e) != ERR_OK) {
    cJSON_AddStringToObject(o, "meta_error", e.msg);
    return o;
  }
  add_copy(o, meta, "creation_time");
  add_copy(o, meta, "metrics");
  add_copy(o, meta, "params");
  add_copy(o, meta, "selection");
  add_copy(o, meta, "objective");
  add_copy(o, meta, "classes");
  cJSON *lin = cJSON_AddObjectToObject(o, "lineage");
  static const char *const lkeys[] = {
      "logical_date", "dag_id",       "dag_run_id",    "best_run",
      "training_rows", "train_rows",  "val_rows",      "trial_count",
      "grid_size",     "data_sha256", "spec_sha256",   "xgboost_version",
      "mlopsd_version", NULL};
  for (int i = 0; lin && lkeys[i]; i++)
    if (cJSON_GetObjectItemCaseSensitive(meta, lkeys[i]))
      add_copy(lin, meta, lkeys[i]);
  const cJSON *src = cJSON_GetObjectItemCaseSensitive(meta, "source");
  if (lin && cJSON_IsObject(src))
    add_copy(lin, src, "table");
  cJSON_Delete(meta);
  return o;
}

static int cmp_str(const void *x, const void *y)
{
  return strcmp(*(char *const *)x, *(char *const *)y);
}

/* production_since and by, per model, from the deployment table: the
 * latest alias change (skip rows are decisions, not changes). */
#define DEPLOY_COLS_SQL                                                     \
  "SELECT id, model, alias, from_version, to_version, action, reason, "     \
  "actor, dag_run_id, " TS("created_at") " FROM deployment "
static const struct col deploy_cols[] = {
    {"id", 'i'},         {"model", 's'},     {"alias", 's'},
    {"from_version", 'i'}, {"to_version", 'i'}, {"action", 's'},
    {"reason", 's'},     {"actor", 's'},     {"dag_run_id", 'i'},
    {"created_at", 's'},
};
#define NDEPLOYCOLS (int)(sizeof(deploy_cols) / sizeof(deploy_cols[0]))

static void h_models_list(struct http_req *req, struct http_resp *resp,
                          void *arg)
{
  struct admin *a = arg;
  const char *after = http_req_query(req, "after");
  struct page pg = {0};
  struct err e = {0};
  char **names = NULL;
  size_t n = 0;
  if (!authorize(a, req, resp, NEED_READ))
    return;
  pg.named = 1;
  if (page_args(req, resp, 100, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  if (registry_list_models(a->reg, &names, &n, &e) != ERR_OK) {
    fail(resp, 500, "registry error", "%s", e.msg);
    return;
  }
  qsort(names, n, sizeof(*names), cmp_str);
  cJSON *arr = cJSON_CreateArray();
  int more = 0;
  /* the deployment table is optional here: files answer without it */
  struct db_conn *c = NULL;
  struct err de = {0};
  int db_ok = conn_try(a, &c, &de) == ERR_OK;
  for (size_t i = 0; i < n; i++) {
    if (after && strcmp(names[i], after) <= 0)
      continue;
    if (cJSON_GetArraySize(arr) >= pg.limit) {
      more = 1;
      break;
    }
    int *vs = NULL, prod = 0;
    size_t nv = 0;
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", names[i]);
    if (registry_list_versions(a->reg, names[i], &vs, &nv, &e) == ERR_OK) {
      cJSON_AddNumberToObject(m, "versions", (double)nv);
      if (nv)
        cJSON_AddNumberToObject(m, "latest_version", vs[nv - 1]);
      else
        cJSON_AddNullToObject(m, "latest_version");
    }
    free(vs);
    if (registry_alias_get(a->reg, names[i], REGISTRY_PRODUCTION, &prod,
                           &e) == ERR_OK)
      cJSON_AddNumberToObject(m, "production_version", prod);
    else
      cJSON_AddNullToObject(m, "production_version");
    int sv = served_version(a, names[i]);
    if (sv)
      cJSON_AddNumberToObject(m, "served_version", sv);
    else
      cJSON_AddNullToObject(m, "served_version");
    cJSON *latest = NULL;
    if (db_ok) {
      struct db_val p[] = {DB_V_STR(names[i])};
      struct rows rs = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0, 0};
      if (db_query(c,
                   DEPLOY_COLS_SQL "WHERE model = ? AND alias = 'production' "
                                   "AND action <> 'skip' ORDER BY id DESC "
                                   "LIMIT 1",
                   p, 1, rows_cb, &rs, NULL, &de) != ERR_OK)
        db_ok = 0;
      if (cJSON_GetArraySize(rs.arr) > 0)
        latest = cJSON_DetachItemFromArray(rs.arr, 0);
      cJSON_Delete(rs.arr);
    }
    cJSON_AddItemToObject(m, "last_deployment",
                          latest ? latest : cJSON_CreateNull());
    cJSON_AddItemToArray(arr, m);
  }
  if (c)
    db_release(a->db, c);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "models", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)n);
  add_next_after_key(o, more, arr, "name");
  if (!db_ok)
    cJSON_AddStringToObject(o, "deployments_unavailable", de.msg);
  registry_strv_free(names);
  reply(resp, 200, o);
}

/* Answer 200 with o, its deployment fields null and why they are missing
 * (MariaDB unavailable): the registry part is still worth showing. */
static void reply_no_deployments(struct http_resp *resp, cJSON *o,
                                 const char *why)
{
  cJSON_AddNullToObject(o, "deployments");
  cJSON_AddNullToObject(o, "production_since");
  cJSON_AddStringToObject(o, "deployments_unavailable", why);
  reply(resp, 200, o);
}

static void h_model_get(struct http_req *req, struct http_resp *resp,
                        void *arg)
{
  struct admin *a = arg;
  const char *name = http_req_param(req, "name");
  struct err e = {0};
  int *vs = NULL, prod = 0;
  size_t nv = 0;
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (model_missing(a, resp, name, &vs, &nv))
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", name);
  int has_prod = registry_alias_get(a->reg, name, REGISTRY_PRODUCTION, &prod,
                                    &e) == ERR_OK;
  if (has_prod)
    cJSON_AddNumberToObject(o, "production_version", prod);
  else
    cJSON_AddNullToObject(o, "production_version");
  int sv = served_version(a, name);
  if (sv)
    cJSON_AddNumberToObject(o, "served_version", sv);
  else
    cJSON_AddNullToObject(o, "served_version");
  cJSON *vers = cJSON_AddArrayToObject(o, "versions");
  const char *metric = NULL;
  for (size_t i = nv; vers && i > 0; i--) { /* newest first */
    cJSON *v = version_json(a, name, vs[i - 1]);
    if (!v)
      continue;
    cJSON_AddBoolToObject(v, "is_production", has_prod && vs[i - 1] == prod);
    if (!metric) {
      const cJSON *sel = cJSON_GetObjectItemCaseSensitive(v, "selection");
      metric = obj_str(sel, "metric");
    }
    cJSON_AddItemToArray(vers, v);
  }
  free(vs);
  if (metric)
    cJSON_AddStringToObject(o, "selection_metric", metric);
  else
    cJSON_AddNullToObject(o, "selection_metric");
  /* deployments (newest first, keyset by id), from MariaDB */
  struct page pg = {0};
  if (page_args(req, resp, 50, ADMIN_LIMIT_MAX, &pg) < 0) {
    cJSON_Delete(o);
    return;
  }
  struct db_conn *c = NULL;
  if (conn_try(a, &c, &e) != ERR_OK) {
    reply_no_deployments(resp, o, e.msg);
    return;
  }
  struct rows rs = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0, 0};
  struct db_val p[] = {DB_V_STR(name),
                       DB_V_INT(pg.before ? pg.before : INT64_MAX),
                       DB_V_INT(pg.limit + 1)};
  enum err_code rc = db_query(c,
                              DEPLOY_COLS_SQL "WHERE model = ? AND id < ? "
                                              "ORDER BY id DESC LIMIT ?",
                              p, 3, rows_cb, &rs, NULL, &e);
  cJSON *since = NULL;
  if (rc == ERR_OK) {
    struct rows r2 = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0, 0};
    rc = db_query(c,
                  DEPLOY_COLS_SQL "WHERE model = ? AND alias = 'production' "
                                  "AND action <> 'skip' ORDER BY id DESC "
                                  "LIMIT 1",
                  p, 1, rows_cb, &r2, NULL, &e);
    if (cJSON_GetArraySize(r2.arr) > 0)
      since = cJSON_DetachItemFromArray(r2.arr, 0);
    cJSON_Delete(r2.arr);
  }
  db_release(a->db, c);
  if (rc != ERR_OK) {
    cJSON_Delete(rs.arr);
    cJSON_Delete(since);
    reply_no_deployments(resp, o, e.msg);
    return;
  }
  struct page pg2 = pg;
  pg2.after = 0;
  page_finish(o, "deployments", rs.arr, &pg2, 0);
  /* when production last changed: the latest change that led to it */
  if (since && has_prod && obj_i64(since, "to_version") == prod) {
    cJSON_AddStringToObject(o, "production_since",
                            obj_str(since, "created_at"));
    cJSON_AddItemToObject(o, "production_change", since);
  } else {
    cJSON_AddNullToObject(o, "production_since");
    cJSON_Delete(since);
  }
  reply(resp, 200, o);
}

/* The trial runs of a version: the runs named like its best_run with the
 * trial suffix "-tNN" replaced, i.e. sharing the run prefix. */
static void h_trials(struct http_req *req, struct http_resp *resp,
                     void *arg)
{
  struct admin *a = arg;
  const char *name = http_req_param(req, "name");
  int64_t v;
  int *vs = NULL;
  size_t nv = 0;
  struct err e = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (model_missing(a, resp, name, &vs, &nv))
    return;
  free(vs);
  if (parse_i64(http_req_param(req, "version"), 1, INT_MAX, &v) ||
      !registry_version_exists(a->reg, name, (int)v)) {
    fail(resp, 404, "version not found", "model '%s' has no version '%s'",
         name, http_req_param(req, "version"));
    return;
  }
  cJSON *meta = NULL;
  char prefix[REGISTRY_NAME_MAX + 8] = "";
  const char *best = NULL;
  if (registry_read_meta(a->reg, name, (int)v, &meta, &e) == ERR_OK &&
      (best = obj_str(meta, "best_run")) != NULL) {
    snprintf(prefix, sizeof(prefix), "%s", best);
    char *t = strrchr(prefix, '-');
    if (t && t[1] == 't')
      t[1] = '\0'; /* keep "...-t" */
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "name", name);
  cJSON_AddNumberToObject(o, "version", (double)v);
  if (best)
    cJSON_AddStringToObject(o, "best_run", best);
  else
    cJSON_AddNullToObject(o, "best_run");
  const cJSON *sel = cJSON_GetObjectItemCaseSensitive(meta, "selection");
  if (obj_str(sel, "metric"))
    cJSON_AddStringToObject(o, "selection_metric", obj_str(sel, "metric"));
  else
    cJSON_AddNullToObject(o, "selection_metric");
  cJSON *arr = cJSON_AddArrayToObject(o, "trials");
  char **ids = NULL;
  size_t n = 0;
  if (prefix[0] &&
      registry_list_runs(a->reg, name, &ids, &n, &e) == ERR_OK) {
    char root[REGISTRY_PATH_MAX];
    snprintf(root, sizeof(root), "%s/%s/runs", registry_root(a->reg), name);
    for (size_t i = 0; i < n && cJSON_GetArraySize(arr) < ADMIN_LIMIT_MAX;
         i++) {
      if (strncmp(ids[i], prefix, strlen(prefix)) != 0)
        continue;
      cJSON *t = cJSON_CreateObject();
      cJSON_AddStringToObject(t, "run_id", ids[i]);
      cJSON_AddBoolToObject(t, "is_best", best && !strcmp(ids[i], best));
      static const char *const files[] = {"params", "metrics"};
      for (int f = 0; f < 2; f++) {
        char path[REGISTRY_PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s/%s.json", root, ids[i],
                 files[f]);
        FILE *fp = fopen(path, "rb");
        cJSON *j = NULL;
        if (fp) {
          char buf[65536];
          size_t k = fread(buf, 1, sizeof(buf) - 1, fp);
          fclose(fp);
          buf[k] = '\0';
          j = cJSON_ParseWithLength(buf, k);
        }
        cJSON_AddItemToObject(t, files[f], j ? j : cJSON_CreateNull());
      }
      cJSON_AddItemToArray(arr, t);
    }
    registry_strv_free(ids);
  }
  cJSON_Delete(meta);
  reply(resp, 200, o);
}

/* ---- promote / rollback ----------------------------------------------------- */

/* The deployment bookkeeping is the ML CLI's (pipeline.h): the same rows,
 * the same rollback history (deploy and promote push a version, rollback
 * pops one), whoever moves the alias.  Those functions acquire their own
 * connection from our pool, so no connection is held around them. */

/* 0 when MariaDB answers within the admin timeout; else the answer (503)
 * is set: an alias change that cannot be recorded is not made. */
static int db_reachable(struct admin *a, struct http_resp *resp)
{
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return -1;
  db_release(a->db, c);
  return 0;
}

/* Point production of name at `to`, record it, reload the served model.
 * If the record cannot be written the alias is put back.  Answers. */
static void do_deploy(struct admin *a, struct http_resp *resp,
                      const char *name, int to, const char *action,
                      const char *reason)
{
  struct err e = {0};
  int prev = 0;
  if (registry_alias_set(a->reg, name, REGISTRY_PRODUCTION, to, &prev,
                         &e) != ERR_OK) {
    fail(resp, e.code == ERR_NOTFOUND ? 404 : 500,
         e.code == ERR_NOTFOUND ? "version not found" : "registry error",
         "%s", e.msg);
    return;
  }
  if (pipeline_record_deployment(a->db, name, REGISTRY_PRODUCTION, prev, to,
                                 action, reason, "admin-api", NULL,
                                 &e) != ERR_OK) {
    struct err ue = {0};
    enum err_code u =
        prev > 0 ? registry_alias_set(a->reg, name, REGISTRY_PRODUCTION,
                                      prev, NULL, &ue)
                 : registry_alias_delete(a->reg, name, REGISTRY_PRODUCTION,
                                         &ue);
    LOG_E(MOD, "model=%s %s to %d not recorded (%s); alias %s", name,
          action, to, e.msg, u ? "could not be restored" : "restored");
    if (u)
      fail(resp, 500, "deployment not recorded",
           "%s; and the alias could not be restored to %d: %s", e.msg, prev,
           ue.msg);
    else if (e.code == ERR_DB_CONN || e.code == ERR_TIMEOUT)
      fail(resp, 503, "database unavailable",
           "%s; production left at %d", e.msg, prev);
    else
      fail(resp, 500, "deployment not recorded",
           "%s; production left at %d", e.msg, prev);
    return;
  }
  LOG_I(MOD, "model=%s %s production %d -> %d through the admin API", name,
        action, prev, to);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model", name);
  cJSON_AddStringToObject(o, "alias", REGISTRY_PRODUCTION);
  cJSON_AddStringToObject(o, "action", action);
  if (prev)
    cJSON_AddNumberToObject(o, "from_version", prev);
  else
    cJSON_AddNullToObject(o, "from_version");
  cJSON_AddNumberToObject(o, "to_version", to);
  cJSON_AddStringToObject(o, "reason", reason);
  /* swap now, so the answer says what is served (the watcher would do it
   * within its poll period anyway) */
  if (a->sv) {
    struct err se = {0};
    cJSON *sj = cJSON_AddObjectToObject(o, "serving");
    if (serving_reload(a->sv, name, &se) == ERR_OK) {
      cJSON_AddBoolToObject(sj, "loaded", 1);
    } else {
      cJSON_AddBoolToObject(sj, "loaded", 0);
      cJSON_AddStringToObject(sj, "error", se.msg);
    }
    int sv = served_version(a, name);
    if (sv)
      cJSON_AddNumberToObject(sj, "version", sv);
    else
      cJSON_AddNullToObject(sj, "version");
  }
  reply(resp, 200, o);
}

static int body_version(const cJSON *b, int64_t *v)
{
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(b, "version");
  if (cJSON_IsNumber(x) && x->valuedouble >= 1 &&
      x->valuedouble <= INT_MAX && x->valuedouble == floor(x->valuedouble)) {
    *v = (int64_t)x->valuedouble;
    return 0;
  }
  if (cJSON_IsString(x))
    return parse_i64(x->valuestring, 1, INT_MAX, v);
  return -1;
}

/* The optional "reason" of a body, else def, into buf. */
static void body_reason(const cJSON *b, const char *def, char *buf,
                        size_t cap)
{
  const char *r = obj_str(b, "reason");
  snprintf(buf, cap, "%.1000s", r && *r ? r : def);
}

static void h_promote(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  struct admin *a = arg;
  const char *name = http_req_param(req, "name");
  int *vs = NULL, prod = 0;
  size_t nv = 0;
  int64_t v;
  struct err e = {0};
  char why[1024];
  if (!authorize(a, req, resp, NEED_WRITE))
    return;
  cJSON *b = body_object(req, resp);
  if (!b)
    return;
  int bad = body_version(b, &v);
  body_reason(b, "promoted through the admin API", why, sizeof(why));
  cJSON_Delete(b);
  if (bad) {
    fail(resp, 400, "bad request body",
         "expected {\"version\": N} with N a version number");
    return;
  }
  if (model_missing(a, resp, name, &vs, &nv))
    return;
  free(vs);
  if (!registry_version_exists(a->reg, name, (int)v)) {
    fail(resp, 404, "version not found", "model '%s' has no version %lld",
         name, (long long)v);
    return;
  }
  if (registry_alias_get(a->reg, name, REGISTRY_PRODUCTION, &prod, &e) ==
          ERR_OK &&
      prod == v) {
    fail(resp, 409, "already production",
         "version %lld of '%s' is already production", (long long)v, name);
    return;
  }
  if (db_reachable(a, resp))
    return;
  do_deploy(a, resp, name, (int)v, "promote", why);
}

/* Rollback: back to the version production pointed at before its current
 * one, as the deployment history says (pipeline_previous_version). */
static void h_rollback(struct http_req *req, struct http_resp *resp,
                       void *arg)
{
  struct admin *a = arg;
  const char *name = http_req_param(req, "name");
  int *vs = NULL, cur = 0, prev = 0, now = 0;
  size_t nv = 0;
  struct err e = {0};
  char why[1024];
  if (!authorize(a, req, resp, NEED_WRITE))
    return;
  cJSON *b = body_object(req, resp);
  if (!b)
    return;
  body_reason(b, "rolled back through the admin API", why, sizeof(why));
  cJSON_Delete(b);
  if (model_missing(a, resp, name, &vs, &nv))
    return;
  free(vs);
  if (db_reachable(a, resp))
    return;
  enum err_code rc = pipeline_previous_version(a->db, name,
                                               REGISTRY_PRODUCTION, &cur,
                                               &prev, &e);
  if (rc == ERR_NOTFOUND) {
    fail(resp, 409, "nothing to roll back", "%s", e.msg);
    return;
  }
  if (rc != ERR_OK) {
    fail_db(resp, &e);
    return;
  }
  struct err ae = {0};
  if (registry_alias_get(a->reg, name, REGISTRY_PRODUCTION, &now, &ae) ==
          ERR_OK &&
      now != cur)
    LOG_W(MOD, "model=%s production is %d but the deployment table last "
               "recorded %d; rolling back to %d",
          name, now, cur, prev);
  if (!registry_version_exists(a->reg, name, prev)) {
    fail(resp, 409, "cannot roll back",
         "the previous production version %d of '%s' no longer exists",
         prev, name);
    return;
  }
  do_deploy(a, resp, name, prev, "rollback", why);
}

/* ---- drift ----------------------------------------------------------------- */

static const struct col drift_cols[] = {
    {"id", 'i'},      {"version", 'i'},   {"window_rows", 'i'},
    {"scores", 'j'},  {"max_score", 'f'}, {"verdict", 's'},
    {"created_at", 's'},
};

static void h_drift(struct http_req *req, struct http_resp *resp, void *arg)
{
  struct admin *a = arg;
  const char *name = http_req_param(req, "name");
  int *vs = NULL;
  size_t nv = 0;
  struct page pg = {0};
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (page_args(req, resp, 100, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  if (model_missing(a, resp, name, &vs, &nv))
    return;
  free(vs);
  struct db_conn *c = conn_get(a, resp);
  if (!c)
    return;
  cJSON *arr;
  struct db_val p[] = {DB_V_STR(name), DB_V_INT(0), DB_V_INT(pg.limit + 1)};
  int r;
  if (pg.after) {
    p[1] = DB_V_INT(pg.after);
    r = query_rows(c, resp,
                   "SELECT id, version, window_rows, scores, max_score, "
                   "verdict, " TS("created_at") " FROM drift_report WHERE "
                   "model = ? AND id > ? ORDER BY id ASC LIMIT ?",
                   p, 3, drift_cols, 7, &arr);
  } else {
    p[1] = DB_V_INT(pg.before ? pg.before : INT64_MAX);
    r = query_rows(c, resp,
                   "SELECT id, version, window_rows, scores, max_score, "
                   "verdict, " TS("created_at") " FROM drift_report WHERE "
                   "model = ? AND id < ? ORDER BY id DESC LIMIT ?",
                   p, 3, drift_cols, 7, &arr);
  }
  db_release(a->db, c);
  if (r)
    return;
  /* a threshold stored with the scores wins; else the drift task's of a
   * DAG checking this model */
  double thr = NAN;
  cJSON *x;
  cJSON_ArrayForEach(x, arr)
  {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(x, "scores");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "threshold");
    if (cJSON_IsNumber(t)) {
      thr = t->valuedouble;
      break;
    }
  }
  if (isnan(thr)) {
    dags_lock(a);
    for (size_t i = 0; a->dags && i < dag_set_count(a->dags) && isnan(thr);
         i++) {
      const struct dag *d = dag_set_at(a->dags, i);
      for (size_t k = 0; k < d->ntasks; k++) {
        const struct dag_task *t = &d->tasks[k];
        const char *m = dag_task_str(t, "model"),
                   *th = dag_task_str(t, "threshold");
        if (t->type_name && !strcmp(t->type_name, "drift") && m && th &&
            !strcmp(m, name)) {
          thr = strtod(th, NULL);
          break;
        }
      }
    }
    dags_unlock(a);
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model", name);
  if (isfinite(thr))
    cJSON_AddNumberToObject(o, "threshold", thr);
  else
    cJSON_AddNullToObject(o, "threshold");
  page_finish(o, "reports", arr, &pg, pg.after != 0);
  reply(resp, 200, o);
}

/* ---- serving ----------------------------------------------------------------- */

static void h_serving(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  struct admin *a = arg;
  if (!authorize(a, req, resp, NEED_READ))
    return;
  if (!a->stats) {
    fail(resp, 503, "serving figures unavailable",
         "no metrics registry is attached to the admin API");
    return;
  }
  cJSON *o = admin_stats_json(a->stats);
  if (!o) {
    fail(resp, 500, "out of memory", NULL);
    return;
  }
  if (a->sv) {
    const char *dm = serving_default_name(a->sv);
    cJSON_AddStringToObject(o, "default_model", dm ? dm : "");
    char why[512];
    int ready = serving_ready(a->sv, why, sizeof(why));
    cJSON_AddBoolToObject(o, "model_ready", ready);
    if (!ready)
      cJSON_AddStringToObject(o, "model_not_ready", why);
  }
  reply(resp, 200, o);
}

/* ---- set-up -------------------------------------------------------------- */

struct route_def {
  const char *method;
  const char *pattern;
  http_handler_fn fn;
};

#define RUNS "/api/v2/dags/{dag_id}/dagRuns"
#define TIS RUNS "/{run_id}/taskInstances"
static const struct route_def routes[] = {
    {"GET", "/api/v2/auth", h_auth},
    {"GET", "/api/v2/dags", h_dags_list},
    {"GET", "/api/v2/dags/{dag_id}", h_dag_get},
    {"PATCH", "/api/v2/dags/{dag_id}", h_dag_patch},
    {"POST", "/api/v2/dags/{dag_id}", h_dag_patch},
    {"GET", "/api/v2/dags/{dag_id}/grid", h_grid},
    {"POST", RUNS, h_run_trigger},
    {"GET", RUNS, h_runs_list},
    {"GET", RUNS "/{run_id}", h_run_get},
    {"GET", TIS, h_tis_list},
    {"GET", TIS "/{task_id}", h_ti_get},
    {"GET", TIS "/{task_id}/logs/{try_number}", h_log},
    {"GET", "/api/v2/models", h_models_list},
    {"GET", "/api/v2/models/{name}", h_model_get},
    {"GET", "/api/v2/models/{name}/versions/{version}/trials", h_trials},
    {"GET", "/api/v2/models/{name}/drift", h_drift},
    {"POST", "/api/v2/models/{name}/promote", h_promote},
    {"POST", "/api/v2/models/{name}/rollback", h_rollback},
    {"GET", "/api/v2/serving", h_serving},
};

enum err_code admin_routes(struct admin *a, struct http *srv, struct err *e)
{
  enum err_code rc;
  for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
    if ((rc = http_route(srv, routes[i].method, routes[i].pattern,
                         routes[i].fn, a, e)) != ERR_OK)
      return rc;
  return ERR_OK;
}

enum err_code admin_create(struct admin **out, const struct admin_opts *o,
                           struct err *e)
{
  struct admin *a;
  enum err_code rc;
  *out = NULL;
  if (!o || !o->cfg || !o->registry)
    return err_set(e, ERR_INVAL, "admin: cfg and registry are required");
  a = calloc(1, sizeof(*a));
  if (!a)
    return err_set(e, ERR_NOMEM, "admin: out of memory");
  pthread_mutex_init(&a->dag_mu, NULL);
  a->cfg = o->cfg;
  a->reg = o->registry;
  a->sv = o->serving;
  a->acquire_ms = o->acquire_ms > 0 ? o->acquire_ms : ADMIN_DB_ACQUIRE_MS;
  a->read_open = o->cfg->auth_console_read_open != 0;
  a->token_set = o->cfg->admin_token[0] != '\0';
  if (a->token_set)
    sha256_buf(o->cfg->admin_token, strlen(o->cfg->admin_token),
               a->token_digest);
  struct err te = {0};
  if (cron_tz_load(&a->tz, o->cfg->sched_timezone, &te) != ERR_OK) {
    LOG_W(MOD, "time zone %s: %s (showing times in UTC)",
          o->cfg->sched_timezone, te.msg);
    a->tz = NULL;
  }
  if (o->db) {
    a->db = o->db;
  } else {
    const struct cfg *c = o->cfg;
    struct db_opts dbo = {.host = c->db_host,
                          .port = c->db_port,
                          .user = c->db_user,
                          .password = c->db_password,
                          .database = c->db_name,
                          .socket = c->db_socket[0] ? c->db_socket : NULL,
                          .size = 2,
                          .connect_timeout_s = 1,
                          .read_timeout_s = 5};
    if ((rc = db_pool_create(&a->db, &dbo, e)) != ERR_OK) {
      admin_destroy(a);
      return rc;
    }
    a->own_db = 1;
  }
  if (o->metrics) {
    int ms = o->sample_ms;
    const char *env = getenv("MLOPSD_ADMIN_SAMPLE_MS");
    int64_t v;
    if (ms <= 0 && env && parse_i64(env, 100, 3600000, &v) == 0)
      ms = (int)v;
    if (ms <= 0)
      ms = ADMIN_SAMPLE_MS;
    if ((rc = admin_stats_create(&a->stats, o->metrics, ms, ADMIN_RING, e)) !=
        ERR_OK) {
      admin_destroy(a);
      return rc;
    }
  }
  LOG_I(MOD, "admin API %s%s",
        a->token_set ? "on" : "off (no admin token configured)",
        a->read_open ? "; read-only endpoints open without a token" : "");
  *out = a;
  return ERR_OK;
}

void admin_destroy(struct admin *a)
{
  if (!a)
    return;
  admin_stats_destroy(a->stats);
  if (a->own_db)
    db_pool_destroy(a->db);
  dag_set_destroy(a->dags);
  dag_errors_free(&a->errs);
  cron_tz_destroy(a->tz);
  pthread_mutex_destroy(&a->dag_mu);
  memset(a->token_digest, 0, sizeof(a->token_digest));
  free(a);
}

void admin_sample_now(struct admin *a)
{
  if (a && a->stats)
    admin_stats_sample(a->stats);
}

enum err_code admin_register(struct daemon *d, struct admin **out,
                             struct err *e)
{
  struct admin_opts o = {.cfg = daemon_cfg(d),
                         .registry = daemon_registry(d),
                         .serving = daemon_serving(d),
                         .metrics = daemon_metrics(d)};
  enum err_code rc = admin_create(out, &o, e);
  if (rc != ERR_OK)
    return rc;
  if ((rc = admin_routes(*out, daemon_http(d), e)) != ERR_OK) {
    admin_destroy(*out);
    *out = NULL;
  }
  return rc;
}
