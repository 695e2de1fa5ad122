/* admin_airflow.c - the Airflow routes that describe rather than act
 * (admin.h, docs/admin-api.md): /version, /monitor/health, a DAG's
 * details and tasks, /importErrors and /dagStats, in the shapes of
 * Airflow 3.1's spec (test_airflow_spec.sh validates each answer).
 *
 * Everything comes from the DAG files as the admin's DAG cache holds them
 * (admin_dags_lock) and from the dag / dag_run tables; fields mlopsd has
 * no notion of carry Airflow's neutral values (docs/admin-api.md
 * "Airflow's fields").
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "mlopsd/admin.h"
#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"

/* GET /api/v2/version: Airflow's VersionInfo (mlopsd's version). */
static void h_version(struct admin_call *x)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "version", MLOPSD_VERSION);
  cJSON_AddNullToObject(o, "git_version");
  cJSON_AddStringToObject(o, "server", "mlopsd");
  admin_reply(x->resp, 200, o);
}

static cJSON *status_obj(const char *status, const char *hb_key,
                         const char *hb)
{
  cJSON *o = cJSON_CreateObject();
  if (status)
    cJSON_AddStringToObject(o, "status", status);
  else
    cJSON_AddNullToObject(o, "status");
  if (hb_key) {
    if (hb)
      cJSON_AddStringToObject(o, hb_key, hb);
    else
      cJSON_AddNullToObject(o, hb_key);
  }
  return o;
}

/* GET /api/v2/monitor/health: the metadata database as the admin pool
 * sees it (a connection and SELECT 1).  mlopsd's scheduler runs inside
 * the daemons (its readiness is each daemon's /readyz) and it has no
 * triggerer or separate DAG processor: their status is null. */
static void h_health(struct admin_call *x)
{
  struct err e = {0};
  int64_t one = 0;
  struct db_conn *c = admin_conn_opt(x, &e);
  int up = c && db_query_i64(c, "SELECT 1", NULL, 0, &one, &e) == ERR_OK;
  cJSON *o = cJSON_CreateObject();
  cJSON *m = status_obj(up ? "healthy" : "unhealthy", NULL, NULL);
  if (!up)
    cJSON_AddStringToObject(m, "error", e.msg);
  cJSON_AddItemToObject(o, "metadatabase", m);
  cJSON_AddItemToObject(
      o, "scheduler", status_obj(NULL, "latest_scheduler_heartbeat", NULL));
  cJSON_AddItemToObject(
      o, "triggerer", status_obj(NULL, "latest_triggerer_heartbeat", NULL));
  cJSON_AddNullToObject(o, "dag_processor");
  admin_reply(x->resp, 200, o);
}

/* Airflow's TimeDelta object for s seconds. */
static cJSON *timedelta(int s)
{
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "__type", "TimeDelta");
  cJSON_AddNumberToObject(o, "days", s / 86400);
  cJSON_AddNumberToObject(o, "seconds", s % 86400);
  cJSON_AddNumberToObject(o, "microseconds", 0);
  return o;
}

/* A task as Airflow's TaskResponse plus mlopsd's type and depends_on. */
static cJSON *task_json(const struct dag *d, const struct dag_task *t)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "task_id", t->id);
  cJSON_AddStringToObject(o, "task_display_name", t->id);
  cJSON_AddNullToObject(o, "owner");
  cJSON_AddNullToObject(o, "start_date");
  cJSON_AddNullToObject(o, "end_date");
  cJSON_AddStringToObject(o, "trigger_rule",
                          dag_trigger_rule_name(t->trigger_rule));
  cJSON_AddFalseToObject(o, "depends_on_past");
  cJSON_AddFalseToObject(o, "wait_for_downstream");
  cJSON_AddNumberToObject(o, "retries", t->retry.retries);
  cJSON_AddStringToObject(o, "queue", "default");
  cJSON_AddStringToObject(o, "pool", "default_pool");
  cJSON_AddNumberToObject(o, "pool_slots", 1);
  cJSON_AddItemToObject(o, "execution_timeout",
                        t->retry.timeout_s > 0 ? timedelta(t->retry.timeout_s)
                                               : cJSON_CreateNull());
  cJSON_AddItemToObject(o, "retry_delay", timedelta(t->retry.retry_delay_s));
  cJSON_AddBoolToObject(o, "retry_exponential_backoff",
                        t->retry.exponential_backoff);
  cJSON_AddNumberToObject(o, "priority_weight", 1);
  cJSON_AddStringToObject(o, "weight_rule", "downstream");
  cJSON_AddNullToObject(o, "ui_color");
  cJSON_AddNullToObject(o, "ui_fgcolor");
  cJSON_AddArrayToObject(o, "template_fields");
  cJSON *down = cJSON_AddArrayToObject(o, "downstream_task_ids");
  for (size_t i = 0; down && i < t->ndownstream; i++)
    cJSON_AddItemToArray(down,
                         cJSON_CreateString(d->tasks[t->downstream[i]].id));
  if (t->description)
    cJSON_AddStringToObject(o, "doc_md", t->description);
  else
    cJSON_AddNullToObject(o, "doc_md");
  cJSON_AddStringToObject(o, "operator_name", t->type_name);
  cJSON_AddObjectToObject(o, "params");
  cJSON_AddNullToObject(o, "class_ref");
  cJSON_AddFalseToObject(o, "is_mapped");
  cJSON_AddArrayToObject(o, "extra_links");
  /* mlopsd's own */
  cJSON_AddStringToObject(o, "type", t->type_name);
  cJSON *up = cJSON_AddArrayToObject(o, "depends_on");
  for (size_t u = 0; up && u < t->nupstream; u++)
    cJSON_AddItemToArray(up, cJSON_CreateString(d->tasks[t->upstream[u]].id));
  return o;
}

/* The DAG of the request's {dag_id} from the files, locked (unlock with
 * admin_dags_unlock), or NULL with 404 answered and the lock released. */
static const struct dag *dag_of(struct admin_call *x)
{
  const char *dag_id = http_req_param(x->req, "dag_id");
  admin_dags_lock(x->a);
  const struct dag *d = x->a->dags ? dag_set_find(x->a->dags, dag_id) : NULL;
  if (!d) {
    admin_dags_unlock(x->a);
    admin_fail(x->resp, 404, "DAG not found",
               "no DAG file with dag_id '%s' in scheduler.dags_dir", dag_id);
  }
  return d;
}

/* GET /dags/{dag_id}/tasks: the tasks in topological order (order_by
 * task_id or -task_id sorts by id). */
static void h_tasks(struct admin_call *x)
{
  const char *ob = http_req_query(x->req, "order_by");
  int sort = 0;
  if (ob && *ob) {
    if (!strcmp(ob, "task_id"))
      sort = 1;
    else if (!strcmp(ob, "-task_id"))
      sort = -1;
    else {
      admin_invalid(x->resp, "query", "order_by", "value_error",
                    "order_by must be task_id or -task_id, got '%.64s'", ob);
      return;
    }
  }
  const struct dag *d = dag_of(x);
  if (!d)
    return;
  cJSON *arr = cJSON_CreateArray();
  for (size_t k = 0; arr && k < d->ntasks; k++)
    cJSON_AddItemToArray(arr, task_json(d, &d->tasks[d->topo[k]]));
  admin_dags_unlock(x->a);
  int n = cJSON_GetArraySize(arr);
  if (sort)
    admin_sort_by_key(arr, "task_id", sort < 0);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "tasks", arr);
  cJSON_AddNumberToObject(o, "total_entries", n);
  admin_reply(x->resp, 200, o);
}

static void h_task(struct admin_call *x)
{
  const char *task_id = http_req_param(x->req, "task_id");
  const struct dag *d = dag_of(x);
  if (!d)
    return;
  ptrdiff_t k = dag_task_index(d, task_id);
  cJSON *o = k >= 0 ? task_json(d, &d->tasks[k]) : NULL;
  char dag_id[256];
  snprintf(dag_id, sizeof(dag_id), "%s", d->dag_id);
  admin_dags_unlock(x->a);
  if (k < 0) {
    admin_fail(x->resp, 404, "task not found", "DAG '%s' has no task '%s'",
               dag_id, task_id);
    return;
  }
  admin_reply(x->resp, 200, o);
}

/* GET /dags/{dag_id}/details: the DAG object plus Airflow's
 * DAGDetailsResponse fields. */
static void h_details(struct admin_call *x)
{
  struct admin *a = x->a;
  const char *dag_id = http_req_param(x->req, "dag_id");
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *o = admin_dag_lookup(a, c, x->resp, dag_id);
  if (!o)
    return;
  admin_dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  if (d && d->start_date.set) {
    char iso[CRON_ISO_LEN];
    time_t t = cron_tz_resolve(a->tz, d->start_date.year, d->start_date.month,
                               d->start_date.day, d->start_date.hour,
                               d->start_date.minute, d->start_date.second);
    cron_fmt_iso(a->tz, t, iso);
    cJSON_AddStringToObject(o, "start_date", iso);
  }
  if (d && d->params)
    cJSON_AddItemToObject(o, "params", cJSON_Duplicate(d->params, 1));
  if (d) {
    cJSON *da = cJSON_AddObjectToObject(o, "default_args");
    cJSON_AddNumberToObject(da, "retries", d->default_args.retries);
    cJSON_AddNumberToObject(da, "retry_delay_s", d->default_args.retry_delay_s);
    cJSON_AddBoolToObject(da, "retry_exponential_backoff",
                          d->default_args.exponential_backoff);
    if (d->description)
      cJSON_AddStringToObject(o, "doc_md", d->description);
  }
  admin_dags_unlock(a);
  admin_put_default(o, "catchup", cJSON_CreateFalse());
  admin_put_default(o, "dag_run_timeout", cJSON_CreateNull());
  admin_put_default(o, "asset_expression", cJSON_CreateNull());
  admin_put_default(o, "doc_md", cJSON_CreateNull());
  admin_put_default(o, "start_date", cJSON_CreateNull());
  admin_put_default(o, "end_date", cJSON_CreateNull());
  admin_put_default(o, "is_paused_upon_creation", cJSON_CreateNull());
  admin_put_default(o, "params", cJSON_CreateNull());
  admin_put_default(o, "render_template_as_native_obj", cJSON_CreateFalse());
  admin_put_default(o, "template_search_path", cJSON_CreateNull());
  admin_put_default(o, "timezone", cJSON_CreateString(cron_tz_name(a->tz)));
  admin_put_default(o, "default_args", cJSON_CreateNull());
  admin_put_default(o, "owner_links", cJSON_CreateNull());
  const cJSON *lp = cJSON_GetObjectItemCaseSensitive(o, "last_parsed_time");
  admin_put_default(o, "last_parsed",
                    lp ? cJSON_Duplicate(lp, 1) : cJSON_CreateNull());
  admin_put_default(o, "concurrency",
                    cJSON_CreateNumber((double)admin_obj_i64(
                        o, "max_active_tasks")));
  admin_put_default(o, "latest_dag_version", admin_dag_version(dag_id));
  admin_reply(x->resp, 200, o);
}

/* GET /api/v2/importErrors: the DAG files that do not load now, as the
 * admin's DAG cache saw them at its last scan (import_error_id: the
 * position in that list, 1-based; timestamp: the scan). */
static void h_import_errors(struct admin_call *x)
{
  struct admin *a = x->a;
  struct admin_q q;
  admin_q_init(&q, x->req, a->tz);
  admin_q_paging(&q, 50);
  if (admin_q_fail(&q, x->resp)) {
    admin_q_free(&q);
    return;
  }
  admin_q_free(&q);
  char now[32];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
  cJSON *arr = cJSON_CreateArray();
  admin_dags_lock(a);
  size_t n = a->errs.n;
  for (size_t i = (size_t)q.offset; arr && i < n; i++) {
    if ((int64_t)cJSON_GetArraySize(arr) >= q.limit)
      break;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "import_error_id", (double)(i + 1));
    cJSON_AddStringToObject(o, "timestamp", now);
    cJSON_AddStringToObject(o, "filename", a->errs.v[i].file);
    cJSON_AddNullToObject(o, "bundle_name");
    cJSON_AddStringToObject(o, "stack_trace", a->errs.v[i].msg);
    cJSON_AddItemToArray(arr, o);
  }
  admin_dags_unlock(a);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "import_errors", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)n);
  admin_reply(x->resp, 200, o);
}

struct stats_acc {
  cJSON *dags; /* dag_id -> {queued: n, ...} */
};

static int stats_cb(void *user, const struct db_row *r)
{
  struct stats_acc *s = user;
  const char *id = db_row_str(r, 0, NULL), *st = db_row_str(r, 1, NULL);
  if (!id || !st)
    return 0;
  cJSON *d = cJSON_GetObjectItemCaseSensitive(s->dags, id);
  if (!d)
    d = cJSON_AddObjectToObject(s->dags, id);
  if (d)
    cJSON_AddNumberToObject(d, st, (double)db_row_i64(r, 2));
  return 0;
}

static int ids_cb(void *user, const char *value)
{
  cJSON *set = user;
  const char *p = value;
  for (;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n) {
      char id[256];
      snprintf(id, sizeof(id), "%.*s", (int)(n < 255 ? n : 255), p);
      if (!cJSON_HasObjectItem(set, id))
        cJSON_AddTrueToObject(set, id);
    }
    if (!c)
      return 0;
    p = c + 1;
  }
}

/* GET /api/v2/dagStats?dag_ids=...: per DAG the count of runs in each of
 * Airflow's run states (all four listed, zeros included), for the DAGs
 * asked or every DAG with a file or a run. */
static void h_dag_stats(struct admin_call *x)
{
  struct admin *a = x->a;
  struct err e = {0};
  cJSON *want = cJSON_CreateObject();
  http_req_query_each(x->req, "dag_ids", ids_cb, want);
  struct db_conn *c = admin_conn(x);
  if (!c) {
    cJSON_Delete(want);
    return;
  }
  struct stats_acc s = {cJSON_CreateObject()};
  if (db_query(c,
               "SELECT dag_id, state, COUNT(*) FROM dag_run GROUP BY dag_id, "
               "state ORDER BY dag_id",
               NULL, 0, stats_cb, &s, NULL, &e) != ERR_OK) {
    cJSON_Delete(want);
    cJSON_Delete(s.dags);
    admin_fail_db(x->resp, &e);
    return;
  }
  /* the DAG files without runs count too */
  admin_dags_lock(a);
  size_t nd = a->dags ? dag_set_count(a->dags) : 0;
  for (size_t i = 0; i < nd; i++) {
    const char *id = dag_set_at(a->dags, i)->dag_id;
    if (!cJSON_HasObjectItem(s.dags, id))
      cJSON_AddObjectToObject(s.dags, id);
  }
  admin_dags_unlock(a);
  static const char *const states[] = {"queued", "running", "success",
                                       "failed"};
  cJSON *arr = cJSON_CreateArray(), *d;
  int filter = cJSON_GetArraySize(want) > 0;
  cJSON_ArrayForEach(d, s.dags)
  {
    if (filter && !cJSON_HasObjectItem(want, d->string))
      continue;
    cJSON *o = cJSON_CreateObject(), *st = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "dag_id", d->string);
    for (size_t i = 0; i < 4; i++) {
      cJSON *so = cJSON_CreateObject();
      cJSON_AddStringToObject(so, "state", states[i]);
      cJSON_AddNumberToObject(so, "count", (double)admin_obj_i64(d, states[i]));
      cJSON_AddItemToArray(st, so);
    }
    cJSON_AddItemToObject(o, "stats", st);
    cJSON_AddItemToArray(arr, o);
  }
  cJSON_Delete(want);
  cJSON_Delete(s.dags);
  /* dag_id order (the files come after the table's rows) */
  int n = cJSON_GetArraySize(arr);
  admin_sort_by_key(arr, "dag_id", 0);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "dags", arr);
  cJSON_AddNumberToObject(o, "total_entries", n);
  admin_reply(x->resp, 200, o);
}

const struct admin_route admin_airflow_routes[] = {
    {"GET", "/api/v2/version", ADMIN_READ, h_version},
    {"GET", "/api/v2/monitor/health", ADMIN_OPEN, h_health},
    {"GET", "/api/v2/dags/{dag_id}/details", ADMIN_READ, h_details},
    {"GET", "/api/v2/dags/{dag_id}/tasks", ADMIN_READ, h_tasks},
    {"GET", "/api/v2/dags/{dag_id}/tasks/{task_id}", ADMIN_READ, h_task},
    {"GET", "/api/v2/importErrors", ADMIN_READ, h_import_errors},
    {"GET", "/api/v2/dagStats", ADMIN_READ, h_dag_stats},
};
const size_t admin_airflow_nroutes =
    sizeof(admin_airflow_routes) / sizeof(admin_airflow_routes[0]);
