/* admin.c - the admin API (/api/v2/...), see admin.h and
 * docs/admin-api.md: create/destroy, the routes, the one prologue every
 * handler runs behind (authorization, then a connection on demand) and
 * the helpers the handler files share (admin_int.h).  The handlers live
 * by concern in admin_dags.c, admin_runs.c and admin_models.c.
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
 * Why one dispatcher: every route names the access it needs; the
 * dispatcher checks it before the handler runs and gives the pool
 * connection back after the handler returned, so no handler repeats the
 * check or the release on each of its error paths.
 *
 * Lists are paginated with limit + keyset cursors (before/after an id or
 * a name), answered from the tables' indexes: dag_run (dag_id, id),
 * task_instance (dag_id, run_id), task_log (run_id, task_id, try_number,
 * id), deployment (model, id), drift_report (model, id).
 */
#include "mlopsd/admin.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin_int.h"
#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/reqjson.h"
#include "mlopsd/sha256.h"

#define MOD "admin"
#define TOKEN_MAX 1024   /* longer presented tokens are wrong anyway */
#define BODY_DEPTH 32    /* JSON nesting accepted in a request body */
#define DB_RETRY_MS 2000 /* after a failed contact, 503 at once this long */

/* ---- small helpers ----------------------------------------------------- */

int64_t admin_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Answer o (consumed) as JSON with status. */
void admin_reply(struct http_resp *resp, int status, cJSON *o)
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
void admin_fail(struct http_resp *resp, int status, const char *error,
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
  admin_reply(resp, status, o);
}

/* Answer a database failure: 503 when MariaDB is unreachable, else 500. */
void admin_fail_db(struct http_resp *resp, const struct err *e)
{
  if (e->code == ERR_DB_CONN || e->code == ERR_TIMEOUT)
    admin_fail(resp, 503, "database unavailable", "%s", e->msg);
  else
    admin_fail(resp, 500, "database error", "%s", e->msg);
}

/* A connection of the admin pool.  After a failed contact, calls fail at
 * once for DB_RETRY_MS instead of each waiting for the acquire timeout:
 * these handlers run on the HTTP workers, which also serve /predict, so a
 * MariaDB outage must not make every console poll hold a worker. */
static enum err_code conn_try(struct admin *a, struct db_conn **c,
                              struct err *e)
{
  int64_t now = admin_mono_ms(), until = atomic_load(&a->db_down_until);
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
    atomic_store(&a->db_down_until, admin_mono_ms() + DB_RETRY_MS);
  return rc;
}

struct db_conn *admin_conn_opt(struct admin_call *x, struct err *e)
{
  if (!x->c && conn_try(x->a, &x->c, e) != ERR_OK)
    x->c = NULL;
  return x->c;
}

struct db_conn *admin_conn(struct admin_call *x)
{
  struct err e = {0};
  if (!admin_conn_opt(x, &e))
    admin_fail_db(x->resp, &e);
  return x->c;
}

void admin_conn_release(struct admin_call *x)
{
  if (x->c)
    db_release(x->a->db, x->c);
  x->c = NULL;
}

/* Parse a decimal int64 in [lo, hi]; -1 when absent or bad. */
int admin_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
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

int admin_page_args(struct http_req *req, struct http_resp *resp, int64_t def,
                    int64_t max, struct admin_page *pg)
{
  const char *l = http_req_query(req, "limit"),
             *b = pg->named ? NULL : http_req_query(req, "before"),
             *f = pg->named ? NULL : http_req_query(req, "after");
  pg->limit = def;
  pg->before = pg->after = 0;
  if (l && admin_parse_i64(l, 1, max, &pg->limit)) {
    admin_invalid(resp, "query", "limit", "int_parsing",
                  "limit must be 1..%lld", (long long)max);
    return -1;
  }
  if (b && admin_parse_i64(b, 1, INT64_MAX, &pg->before)) {
    admin_invalid(resp, "query", "before", "int_parsing",
                  "before must be a positive id from a previous page");
    return -1;
  }
  if (f && admin_parse_i64(f, 0, INT64_MAX, &pg->after)) {
    admin_invalid(resp, "query", "after", "int_parsing",
                  "after must be a non-negative id from a previous page");
    return -1;
  }
  if (b && f) {
    admin_invalid(resp, "query", "after", "value_error",
                  "give before or after, not both");
    return -1;
  }
  return 0;
}

/* Parse the request body as a JSON object.  Answers 422 and returns NULL
 * on a bad body; an empty body gives an empty object. */
cJSON *admin_body_object(struct http_req *req, struct http_resp *resp)
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
    admin_invalid(resp, "body", NULL, "json_invalid",
                  "malformed JSON: %s at line %d, column %d", sc.err,
                  sc.err_line, sc.err_col);
    return NULL;
  }
  cJSON *o = cJSON_ParseWithLength(b, len);
  if (!o) {
    admin_invalid(resp, "body", NULL, "json_invalid",
                  "malformed JSON: the body could not be parsed");
    return NULL;
  }
  if (!cJSON_IsObject(o)) {
    cJSON_Delete(o);
    admin_invalid(resp, "body", NULL, "model_attributes_type",
                  "expected a JSON object");
    return NULL;
  }
  return o;
}

/* ---- rows to JSON ------------------------------------------------------ */

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

cJSON *admin_row_object(const struct admin_col *cols, int n,
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

int admin_rows_cb(void *user, const struct db_row *r)
{
  struct admin_rows *rs = user;
  cJSON *o = admin_row_object(rs->cols, rs->ncols, r);
  if (!o) {
    rs->oom = 1;
    return 1;
  }
  cJSON_AddItemToArray(rs->arr, o);
  return 0;
}

/* Run a query whose columns are cols into a new array (*out).  Answers
 * the failure and returns -1. */
int admin_query_rows(struct db_conn *c, struct http_resp *resp, const char *sql,
                     const struct db_val *p, int np,
                     const struct admin_col *cols, int ncols, cJSON **out)
{
  struct err e = {0};
  struct admin_rows rs = {cols, ncols, cJSON_CreateArray(), 0, 0};
  *out = NULL;
  if (!rs.arr) {
    admin_fail(resp, 500, "out of memory", NULL);
    return -1;
  }
  if (db_query(c, sql, p, np, admin_rows_cb, &rs, NULL, &e) != ERR_OK) {
    cJSON_Delete(rs.arr);
    admin_fail_db(resp, &e);
    return -1;
  }
  if (rs.oom) {
    cJSON_Delete(rs.arr);
    admin_fail(resp, 500, "out of memory", NULL);
    return -1;
  }
  *out = rs.arr;
  return 0;
}

/* One row as an object (*out NULL when there is none). */
int admin_query_one(struct db_conn *c, struct http_resp *resp, const char *sql,
                    const struct db_val *p, int np,
                    const struct admin_col *cols, int ncols, cJSON **out)
{
  cJSON *arr;
  *out = NULL;
  if (admin_query_rows(c, resp, sql, p, np, cols, ncols, &arr))
    return -1;
  if (cJSON_GetArraySize(arr) > 0)
    *out = cJSON_DetachItemFromArray(arr, 0);
  cJSON_Delete(arr);
  return 0;
}

void admin_put_default(cJSON *o, const char *key, cJSON *v)
{
  if (!v)
    return;
  if (!o || cJSON_HasObjectItem(o, key) || !cJSON_AddItemToObject(o, key, v))
    cJSON_Delete(v);
}

void admin_uuid(char out[37], const char *ns, const char *name, int64_t n)
{
  uint8_t d[SHA256_DIGEST_LEN];
  char buf[640];
  int len = snprintf(buf, sizeof(buf), "%s\n%s\n%lld", ns, name ? name : "",
                     (long long)n);
  if (len < 0)
    len = 0;
  if ((size_t)len >= sizeof(buf))
    len = (int)sizeof(buf) - 1;
  sha256_buf(buf, (size_t)len, d);
  d[6] = (uint8_t)((d[6] & 0x0f) | 0x50); /* version 5 (name-based) */
  d[8] = (uint8_t)((d[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  static const char hex[] = "0123456789abcdef";
  int k = 0;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      out[k++] = '-';
    out[k++] = hex[d[i] >> 4];
    out[k++] = hex[d[i] & 15];
  }
  out[k] = '\0';
}

cJSON *admin_dag_version(const char *dag_id)
{
  char id[37];
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  admin_uuid(id, "dag_version", dag_id, 1);
  cJSON_AddStringToObject(o, "id", id);
  cJSON_AddNumberToObject(o, "version_number", 1);
  cJSON_AddStringToObject(o, "dag_id", dag_id);
  cJSON_AddNullToObject(o, "bundle_name");
  cJSON_AddNullToObject(o, "bundle_version");
  cJSON_AddStringToObject(o, "created_at", "1970-01-01T00:00:00Z");
  cJSON_AddStringToObject(o, "dag_display_name", dag_id);
  cJSON_AddNullToObject(o, "bundle_url");
  return o;
}

void admin_sort_by_key(cJSON *arr, const char *key, int desc)
{
  int n = cJSON_GetArraySize(arr);
  if (n < 2)
    return;
  cJSON **v = calloc((size_t)n, sizeof(*v));
  if (!v)
    return;
  int k = 0;
  for (cJSON *it = arr->child; it && k < n; it = it->next)
    v[k++] = it;
  for (int i = 1; i < n; i++) /* insertion sort: stable, lists are short */
    for (int j = i; j > 0; j--) {
      const char *p = admin_obj_str(v[j - 1], key), *q = admin_obj_str(v[j], key);
      int cmp = strcmp(p ? p : "", q ? q : "");
      if (desc ? cmp >= 0 : cmp <= 0)
        break;
      cJSON *t = v[j];
      v[j] = v[j - 1];
      v[j - 1] = t;
    }
  for (int i = 0; i < n; i++)
    cJSON_DetachItemViaPointer(arr, v[i]);
  for (int i = 0; i < n; i++)
    cJSON_AddItemToArray(arr, v[i]);
  free(v);
}

int64_t admin_obj_i64(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

const char *admin_obj_str(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A page of rows (newest first, by "id") with cursors: fetched limit + 1
 * to know whether more exist.  arr holds up to limit + 1 rows in the
 * order asked; this trims it and adds next_before / next_after. */
void admin_page_finish(cJSON *o, const char *key, cJSON *arr,
                       const struct admin_page *pg, int ascending_fetch)
{
  int n = cJSON_GetArraySize(arr);
  int more = n > pg->limit;
  if (more)
    cJSON_DeleteItemFromArray(arr, n - 1), n--;
  if (ascending_fetch) { /* fetched oldest first (after=): flip */
    cJSON *rev = cJSON_CreateArray();
    while (rev && cJSON_GetArraySize(arr) > 0)
      cJSON_AddItemToArray(
          rev, cJSON_DetachItemFromArray(arr, cJSON_GetArraySize(arr) - 1));
    if (rev) {
      cJSON_Delete(arr);
      arr = rev;
    }
  }
  n = cJSON_GetArraySize(arr);
  int64_t newest = n ? admin_obj_i64(cJSON_GetArrayItem(arr, 0), "id") : 0;
  int64_t oldest = n ? admin_obj_i64(cJSON_GetArrayItem(arr, n - 1), "id") : 0;
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

/* o.next_after: the key of arr's last item when more follow, else null
 * (lists paged by name). */
void admin_add_next_after_key(cJSON *o, int more, const cJSON *arr,
                              const char *key)
{
  int n = cJSON_GetArraySize(arr);
  if (more && n)
    cJSON_AddStringToObject(o, "next_after",
                            admin_obj_str(cJSON_GetArrayItem(arr, n - 1), key));
  else
    cJSON_AddNullToObject(o, "next_after");
}

/* ---- authentication ---------------------------------------------------- */

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
                     struct http_resp *resp, enum admin_need need)
{
  size_t n = 0;
  const char *tok;
  if (need == ADMIN_READ && a->read_open)
    return 1;
  if (!a->token_set) {
    admin_fail(resp, 403, "admin API disabled",
               "no admin token is configured: set the environment variable %s "
               "(auth.admin_token_env) to a secret and restart mlopsd serve%s",
               a->cfg->auth_admin_token_env[0] ? a->cfg->auth_admin_token_env
                                               : "MLOPSD_ADMIN_TOKEN",
               need == ADMIN_READ
                   ? "; read-only access can also be opened with "
                     "auth.console_read_open: true"
                   : "");
    return 0;
  }
  tok = bearer(req, &n);
  if (!tok) {
    if (http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"mlopsd\"") !=
        ERR_OK)
      LOG_W(MOD, "cannot add WWW-Authenticate");
    admin_fail(resp, 401, "authentication required",
               "send the admin token as 'Authorization: Bearer TOKEN'");
    return 0;
  }
  if (!token_ok(a, tok, n)) {
    if (http_resp_header(resp, "WWW-Authenticate",
                         "Bearer realm=\"mlopsd\", error=\"invalid_token\"") !=
        ERR_OK)
      LOG_W(MOD, "cannot add WWW-Authenticate");
    admin_fail(resp, 401, "invalid token",
               "the Bearer token is not the admin "
               "token");
    return 0;
  }
  return 1;
}
/* ---- /api/v2/auth -------------------------------------------------------- */

static void h_auth(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
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
  admin_reply(resp, 200, o);
}

/* ---- the prologue and the routes ----------------------------------------- */

/* What http_route hands the dispatcher: the admin and the route. */
struct admin_bound {
  struct admin *a;
  const struct admin_route *r;
};

static void dispatch(struct http_req *req, struct http_resp *resp, void *arg)
{
  const struct admin_bound *b = arg;
  struct admin_call x = {.a = b->a, .req = req, .resp = resp, .c = NULL};
  if (b->r->need != ADMIN_OPEN && !authorize(b->a, req, resp, b->r->need))
    return;
  b->r->fn(&x);
  admin_conn_release(&x);
}

static const struct admin_route auth_routes[] = {
    {"GET", "/api/v2/auth", ADMIN_OPEN, h_auth},
};

enum err_code admin_routes(struct admin *a, struct http *srv, struct err *e)
{
  const struct {
    const struct admin_route *v;
    size_t n;
  } tables[] = {
      {auth_routes, sizeof(auth_routes) / sizeof(auth_routes[0])},
      {admin_dag_routes, admin_dag_nroutes},
      {admin_run_routes, admin_run_nroutes},
      {admin_model_routes, admin_model_nroutes},
      {admin_airflow_routes, admin_airflow_nroutes},
  };
  size_t total = 0, k = 0;
  enum err_code rc;
  if (a->bound)
    return err_set(e, ERR_STATE, "admin: routes already registered");
  for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
    total += tables[t].n;
  a->bound = calloc(total, sizeof(*a->bound));
  if (!a->bound)
    return err_set(e, ERR_NOMEM, "admin: out of memory");
  a->nbound = total;
  for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
    for (size_t i = 0; i < tables[t].n; i++, k++) {
      a->bound[k].a = a;
      a->bound[k].r = &tables[t].v[i];
      if ((rc = http_route(srv, tables[t].v[i].method, tables[t].v[i].pattern,
                           dispatch, &a->bound[k], e)) != ERR_OK)
        return rc;
    }
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
  if ((rc = dag_dir_create(o->cfg->sched_dags_dir, &a->dagdir, e)) !=
      ERR_OK) {
    admin_destroy(a);
    return rc;
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
                          .size = ADMIN_DB_POOL,
                          .connect_timeout_s = 1,
                          .read_timeout_s = ADMIN_DB_IO_TIMEOUT_S};
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
    if (ms <= 0 && env && admin_parse_i64(env, 100, 3600000, &v) == 0)
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
  dag_dir_destroy(a->dagdir);
  dag_errors_free(&a->errs);
  cron_tz_destroy(a->tz);
  free(a->bound);
  pthread_mutex_destroy(&a->dag_mu);
  memset(a->token_digest, 0, sizeof(a->token_digest));
  free(a);
}

void admin_sample_now(struct admin *a)
{
  if (a && a->stats)
    admin_stats_sample(a->stats);
}
