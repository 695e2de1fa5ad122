/* admin_query.c - Airflow's query parameters for the admin API's lists
 * (admin_int.h "query parameters"): limit/offset, repeated filters
 * (?state=a&state=b, also comma-separated), date ranges (NAME_gte, NAME_lte),
 * SQL LIKE patterns, order_by, turned into one parameterised WHERE and
 * ORDER BY; every bad value is collected as a ValidationError and the
 * request answered 422 with Airflow's HTTPValidationError body.
 *
 * Why a builder: the DAG run, task instance and DAG lists take the same
 * kinds of parameters; column names come only from the caller's static
 * tables, values only as statement parameters.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "mlopsd/admin.h"
#include "mlopsd/cron.h"
#include "mlopsd/http.h"

void admin_q_init(struct admin_q *q, struct http_req *req,
                  const struct cron_tz *tz)
{
  memset(q, 0, sizeof(*q));
  q->req = req;
  q->tz = tz;
  q->errs = cJSON_CreateArray();
  snprintf(q->order, sizeof(q->order), "%s", "");
}

void admin_q_free(struct admin_q *q)
{
  cJSON_Delete(q->errs);
  q->errs = NULL;
}

cJSON *admin_validation_item(const char *loc0, const char *name,
                             const char *type, const char *msg)
{
  cJSON *it = cJSON_CreateObject(), *loc = cJSON_CreateArray();
  if (!it || !loc) {
    cJSON_Delete(it);
    cJSON_Delete(loc);
    return NULL;
  }
  cJSON_AddItemToArray(loc, cJSON_CreateString(loc0));
  if (name)
    cJSON_AddItemToArray(loc, cJSON_CreateString(name));
  cJSON_AddItemToObject(it, "loc", loc);
  cJSON_AddStringToObject(it, "msg", msg);
  cJSON_AddStringToObject(it, "type", type);
  return it;
}

/* A ValidationError item with its message formatted from fmt/ap. */
static cJSON *vitem(const char *loc0, const char *name, const char *type,
                    const char *fmt, va_list ap)
{
  char msg[512];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  return admin_validation_item(loc0, name, type, msg);
}

/* it into arr (both may be NULL: out of memory; it is then freed). */
static void add_item(cJSON *arr, cJSON *it)
{
  if (arr && it)
    cJSON_AddItemToArray(arr, it);
  else
    cJSON_Delete(it);
}

void admin_q_invalid(struct admin_q *q, const char *loc0, const char *name,
                     const char *type, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  add_item(q->errs, vitem(loc0, name, type, fmt, ap));
  va_end(ap);
}

void admin_invalid(struct http_resp *resp, const char *loc0, const char *name,
                   const char *type, const char *fmt, ...)
{
  cJSON *arr = cJSON_CreateArray();
  va_list ap;
  va_start(ap, fmt);
  add_item(arr, vitem(loc0, name, type, fmt, ap));
  va_end(ap);
  admin_reply_invalid(resp, arr);
}

void admin_reply_invalid(struct http_resp *resp, cJSON *detail)
{
  cJSON *o = cJSON_CreateObject();
  const cJSON *first = cJSON_GetArrayItem(detail, 0);
  const cJSON *msg = cJSON_GetObjectItemCaseSensitive(first, "msg");
  /* mlopsd's short "error" beside Airflow's detail list */
  cJSON_AddStringToObject(o, "error",
                          cJSON_IsString(msg) ? msg->valuestring
                                              : "validation error");
  if (detail)
    cJSON_AddItemToObject(o, "detail", detail);
  else
    cJSON_AddArrayToObject(o, "detail");
  admin_reply(resp, 422, o);
}

int admin_q_fail(struct admin_q *q, struct http_resp *resp)
{
  if (!q->errs) {
    admin_fail(resp, 500, "out of memory", NULL);
    return -1;
  }
  if (cJSON_GetArraySize(q->errs) == 0)
    return 0;
  cJSON *d = q->errs;
  q->errs = NULL;
  admin_reply_invalid(resp, d);
  return -1;
}

/* Append " AND frag" to the WHERE clause. */
void admin_q_cond(struct admin_q *q, const char *frag)
{
  size_t n = strlen(frag);
  if (q->wlen + n + 6 >= sizeof(q->where)) {
    admin_q_invalid(q, "query", NULL, "too_long",
                    "too many filters in one request");
    return;
  }
  memcpy(q->where + q->wlen, " AND ", 5);
  memcpy(q->where + q->wlen + 5, frag, n + 1);
  q->wlen += n + 5;
}

int admin_q_val(struct admin_q *q, struct db_val v)
{
  if (q->nv >= ADMIN_Q_VALS) {
    admin_q_invalid(q, "query", NULL, "too_long",
                    "too many filter values in one request");
    return -1;
  }
  q->v[q->nv++] = v;
  return 0;
}

void admin_q_paging(struct admin_q *q, int64_t def)
{
  const char *l = http_req_query(q->req, "limit"),
             *o = http_req_query(q->req, "offset");
  q->limit = def;
  q->offset = 0;
  int64_t v;
  if (l) {
    /* Airflow: limit >= 0, more than the server's maximum page is cut
     * to it (maximum_page_limit; here ADMIN_LIMIT_MAX) */
    if (admin_parse_i64(l, 0, INT64_MAX, &v))
      admin_q_invalid(q, "query", "limit", "int_parsing",
                      "limit must be an integer >= 0, got '%.40s'", l);
    else
      q->limit = v > ADMIN_LIMIT_MAX ? ADMIN_LIMIT_MAX : v;
  }
  if (o) {
    if (admin_parse_i64(o, 0, INT64_MAX / 2, &v))
      admin_q_invalid(q, "query", "offset", "int_parsing",
                      "offset must be an integer >= 0, got '%.40s'", o);
    else
      q->offset = v;
  }
}

/* ---- repeated values ------------------------------------------------------ */

/* Each comma-separated value of each repeated query argument param
 * (?state=a,b as well as ?state=a&state=b) to one(acc, value, length),
 * until it returns non-zero. */
struct each_acc {
  int (*one)(void *acc, const char *v, size_t n);
  void *acc;
};

static int each_cb(void *user, const char *value)
{
  struct each_acc *e = user;
  for (const char *p = value;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (e->one(e->acc, p, n))
      return 1;
    if (!c)
      return 0;
    p = c + 1;
  }
}

static void query_each_value(struct admin_q *q, const char *param,
                             int (*one)(void *, const char *, size_t),
                             void *acc)
{
  struct each_acc e = {one, acc};
  http_req_query_each(q->req, param, each_cb, &e);
}

struct in_acc {
  struct admin_q *q;
  const char *param;
  const char *const *allowed;
  char list[1024]; /* "?, ?, ?" */
  size_t len;
  int n;
};

static int in_one(void *acc, const char *v, size_t n)
{
  struct in_acc *a = acc;
  if (n == 0)
    return 0;
  if (a->allowed) {
    int okv = 0;
    for (size_t i = 0; a->allowed[i]; i++)
      if (strlen(a->allowed[i]) == n && !strncmp(a->allowed[i], v, n))
        okv = 1;
    if (!okv) {
      char all[256] = "";
      size_t k = 0;
      for (size_t i = 0; a->allowed[i] && k + 1 < sizeof(all); i++)
        k += (size_t)snprintf(all + k, sizeof(all) - k, "%s%s", i ? ", " : "",
                              a->allowed[i]);
      admin_q_invalid(a->q, "query", a->param, "enum",
                      "%s: '%.*s' is not one of %s", a->param, (int)n, v, all);
      return 0;
    }
  }
  if (a->len + 4 >= sizeof(a->list) ||
      admin_q_val(a->q, DB_V_STRN(v, n)) != 0)
    return 1;
  a->len += (size_t)snprintf(a->list + a->len, sizeof(a->list) - a->len,
                             "%s?", a->n ? ", " : "");
  a->n++;
  return 0;
}

int admin_q_in(struct admin_q *q, const char *param, const char *col,
               const char *const *allowed)
{
  struct in_acc a = {.q = q, .param = param, .allowed = allowed};
  query_each_value(q, param, in_one, &a);
  if (a.n == 0)
    return 0;
  char frag[1200];
  snprintf(frag, sizeof(frag), "%s IN (%s)", col, a.list);
  admin_q_cond(q, frag);
  return a.n;
}

/* ---- times ----------------------------------------------------------------- */

int admin_parse_time(const struct cron_tz *tz, const char *s, char out[32],
                     time_t *inst, int *usec)
{
  int y, mo, d, h = 0, mi = 0, se = 0, us = 0, n = 0;
  char date[11];
  time_t t;
  if (strlen(s) < 10)
    return -1;
  memcpy(date, s, 10);
  date[10] = '\0';
  if (cron_parse_date(date, &y, &mo, &d) != ERR_OK)
    return -1;
  const char *p = s + 10;
  if (*p == '\0') {
    t = cron_tz_resolve(tz, y, mo, d, 0, 0, 0);
    goto done;
  }
  if ((*p != 'T' && *p != 't' && *p != ' ') ||
      sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5)
    return -1;
  p += 1 + n;
  if (*p == ':') {
    if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
      return -1;
    se = (p[1] - '0') * 10 + (p[2] - '0');
    p += 3;
    if (*p == '.') { /* fractions: microseconds kept, beyond cut */
      int k = 0;
      p++;
      if (!isdigit((unsigned char)*p))
        return -1;
      for (; isdigit((unsigned char)*p); p++, k++)
        if (k < 6)
          us = us * 10 + (*p - '0');
      for (; k < 6; k++)
        us *= 10;
    }
  }
  if (h > 23 || mi > 59 || se > 59)
    return -1;
  if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
    t = (time_t)(cron_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                 se);
  } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
             isdigit((unsigned char)p[1]) && isdigit((unsigned char)p[2]) &&
             isdigit((unsigned char)p[4]) && isdigit((unsigned char)p[5])) {
    int off = ((p[1] - '0') * 10 + (p[2] - '0')) * 3600 +
              ((p[4] - '0') * 10 + (p[5] - '0')) * 60;
    if (*p == '-')
      off = -off;
    t = (time_t)(cron_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 +
                 se - off);
  } else if (*p == '\0') { /* no offset: the scheduler's zone */
    t = cron_tz_resolve(tz, y, mo, d, h, mi, se);
  } else {
    return -1;
  }
done:;
  struct tm tm;
  char base[24];
  gmtime_r(&t, &tm);
  strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(out, 32, "%s.%06d", base, us);
  if (inst)
    *inst = t;
  if (usec)
    *usec = us;
  return 0;
}

void admin_q_range(struct admin_q *q, const char *param, const char *col)
{
  static const char *const sfx[2] = {"_gte", "_lte"};
  for (int i = 0; i < 2; i++) {
    char name[96], frag[256];
    snprintf(name, sizeof(name), "%s%s", param, sfx[i]);
    const char *v = http_req_query(q->req, name);
    if (!v || !*v)
      continue;
    if (q->nt >= ADMIN_Q_TIMES) {
      admin_q_invalid(q, "query", name, "too_long", "too many date filters");
      continue;
    }
    if (admin_parse_time(q->tz, v, q->tbuf[q->nt], NULL, NULL)) {
      admin_q_invalid(q, "query", name, "datetime_from_date_parsing",
                      "%s must be an ISO 8601 date-time "
                      "(2025-09-01T03:00:00Z), got '%.64s'",
                      name, v);
      continue;
    }
    snprintf(frag, sizeof(frag), "%s %s ?", col, i ? "<=" : ">=");
    if (admin_q_val(q, DB_V_STR(q->tbuf[q->nt])) == 0)
      admin_q_cond(q, frag);
    q->nt++;
  }
}

void admin_q_like(struct admin_q *q, const char *param, const char *col)
{
  const char *v = http_req_query(q->req, param);
  char frag[160];
  if (!v || !*v)
    return;
  snprintf(frag, sizeof(frag), "%s LIKE ?", col);
  if (admin_q_val(q, DB_V_STR(v)) == 0)
    admin_q_cond(q, frag);
}

/* ---- order ----------------------------------------------------------------- */

struct order_acc {
  struct admin_q *q;
  const char *loc0; /* "query" or "body" */
  const struct admin_order *allowed;
  const char *tie; /* unique column last, so pages are stable */
  size_t len;
  int n;
};

static int order_one(void *acc, const char *v, size_t n)
{
  struct order_acc *a = acc;
  int desc = 0;
  if (n && *v == '-')
    desc = 1, v++, n--;
  if (n == 0)
    return 0;
  const struct admin_order *o = NULL;
  for (size_t i = 0; a->allowed[i].name; i++)
    if (strlen(a->allowed[i].name) == n && !strncmp(a->allowed[i].name, v, n))
      o = &a->allowed[i];
  if (!o) {
    char all[400] = "";
    size_t k = 0;
    for (size_t i = 0; a->allowed[i].name && k + 1 < sizeof(all); i++)
      k += (size_t)snprintf(all + k, sizeof(all) - k, "%s%s", i ? ", " : "",
                            a->allowed[i].name);
    admin_q_invalid(a->q, a->loc0, "order_by", "value_error",
                    "Ordering with '%.*s' is disallowed or the attribute does "
                    "not exist on the model; allowed: %s (- for descending)",
                    (int)n, v, all);
    return 0;
  }
  a->len += (size_t)snprintf(a->q->order + a->len, sizeof(a->q->order) - a->len,
                             "%s%s %s", a->n ? ", " : "", o->col,
                             desc ? "DESC" : "ASC");
  a->n++;
  return a->len + 64 >= sizeof(a->q->order);
}

int admin_q_order(struct admin_q *q, const struct admin_order *allowed,
                  const char *tie)
{
  struct order_acc a = {.q = q, .loc0 = "query", .allowed = allowed,
                       .tie = tie};
  q->order[0] = '\0';
  query_each_value(q, "order_by", order_one, &a);
  if (a.n && tie)
    snprintf(q->order + a.len, sizeof(q->order) - a.len, ", %s", tie);
  return a.n;
}

int admin_q_body_order(struct admin_q *q, const cJSON *b,
                       const struct admin_order *allowed, const char *tie)
{
  struct order_acc a = {.q = q, .loc0 = "body", .allowed = allowed,
                        .tie = tie};
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "order_by");
  q->order[0] = '\0';
  if (!v || cJSON_IsNull(v))
    return 0;
  if (!cJSON_IsString(v)) {
    admin_q_invalid(q, "body", "order_by", "string_type",
                    "order_by must be a string");
    return 0;
  }
  order_one(&a, v->valuestring, strlen(v->valuestring));
  if (a.n && tie)
    snprintf(q->order + a.len, sizeof(q->order) - a.len, ", %s", tie);
  return a.n;
}

void admin_q_body_paging(struct admin_q *q, const cJSON *b, int64_t def)
{
  static const char *const key[2] = {"page_limit", "page_offset"};
  q->limit = def;
  for (int i = 0; i < 2; i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key[i]);
    if (!v)
      continue;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
      admin_q_invalid(q, "body", key[i], "greater_than_equal",
                      "%s must be an integer >= 0", key[i]);
      continue;
    }
    if (i == 0)
      q->limit = v->valuedouble > ADMIN_LIMIT_MAX ? ADMIN_LIMIT_MAX
                                                  : (int64_t)v->valuedouble;
    else
      q->offset = (int64_t)v->valuedouble;
  }
}

/* ---- the list query ------------------------------------------------------- */

int admin_q_select(struct db_conn *c, struct http_resp *resp,
                   const struct admin_q *q, const struct admin_list *l,
                   cJSON **arr, int64_t *total)
{
  struct db_val p[ADMIN_Q_VALS + 5];
  char scope[160] = "", sql[8192];
  size_t sl = 0;
  int np = 0;
  *arr = NULL;
  for (int i = 0; i < 2 && l->scope_col[i]; i++) {
    if (!l->scope_val[i])
      continue;
    p[np++] = DB_V_STR(l->scope_val[i]);
    sl += (size_t)snprintf(scope + sl, sizeof(scope) - sl, " AND %s = ?",
                           l->scope_col[i]);
  }
  memcpy(p + np, q->v, (size_t)q->nv * sizeof(p[0]));
  np += q->nv;
  int nfilter = np;
  if (l->cursor[0])
    p[np++] = DB_V_INT(l->cursor_id);
  p[np++] = DB_V_INT(l->limit);
  p[np++] = DB_V_INT(q->offset);
  snprintf(sql, sizeof(sql), "%sWHERE 1 = 1%s%s%s ORDER BY %s "
           "LIMIT ? OFFSET ?", l->select, scope, q->where, l->cursor,
           l->order);
  if (admin_query_rows(c, resp, sql, p, np, l->cols, l->ncols, arr))
    return -1;
  struct err e = {0};
  snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM %s WHERE 1 = 1%s%s",
           l->table, scope, q->where);
  if (db_query_i64(c, sql, p, nfilter, total, &e) != ERR_OK) {
    cJSON_Delete(*arr);
    *arr = NULL;
    admin_fail_db(resp, &e);
    return -1;
  }
  return 0;
}

/* A date-time field of a JSON body into q as "col OP ?". */
void admin_q_body_range(struct admin_q *q, const cJSON *b, const char *key,
                        const char *col, const char *op)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key);
  char frag[200];
  if (!v || cJSON_IsNull(v))
    return;
  if (!cJSON_IsString(v) || q->nt >= ADMIN_Q_TIMES ||
      admin_parse_time(q->tz, v->valuestring, q->tbuf[q->nt], NULL, NULL)) {
    admin_q_invalid(q, "body", key, "datetime_from_date_parsing",
                    "%s must be an ISO 8601 date-time", key);
    return;
  }
  snprintf(frag, sizeof(frag), "%s %s ?", col, op);
  if (admin_q_val(q, DB_V_STR(q->tbuf[q->nt++])) == 0)
    admin_q_cond(q, frag);
}

/* A list of strings of a JSON body into q as "col IN (...)". */
void admin_q_body_in(struct admin_q *q, const cJSON *b, const char *key,
                     const char *col, const char *const *allowed)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key), *it;
  char frag[1200];
  size_t len = 0;
  int n = 0;
  if (!v || cJSON_IsNull(v))
    return;
  if (!cJSON_IsArray(v)) {
    admin_q_invalid(q, "body", key, "list_type", "%s must be a list", key);
    return;
  }
  len = (size_t)snprintf(frag, sizeof(frag), "%s IN (", col);
  cJSON_ArrayForEach(it, v)
  {
    if (cJSON_IsNull(it))
      continue;
    int okv = cJSON_IsString(it);
    if (okv && allowed) {
      okv = 0;
      for (size_t i = 0; allowed[i]; i++)
        if (!strcmp(allowed[i], it->valuestring))
          okv = 1;
    }
    if (!okv) {
      admin_q_invalid(q, "body", key, "enum", "%s: a value is not allowed",
                      key);
      return;
    }
    if (len + 8 >= sizeof(frag) || admin_q_val(q, DB_V_STR(it->valuestring)))
      return;
    len += (size_t)snprintf(frag + len, sizeof(frag) - len, "%s?",
                            n++ ? ", " : "");
  }
  if (n == 0)
    return;
  snprintf(frag + len, sizeof(frag) - len, ")");
  admin_q_cond(q, frag);
}
