/* admin_runs.c - the admin API's runs (admin.h): DAG runs (list, get,
 * trigger), task instances with their attempts, task logs (JSON, JSON
 * lines or text) and the grid the console draws.
 *
 * Triggering goes through the scheduler's own sched_trigger (the same
 * rows and run ids as `mlopsd dags trigger`).
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "admin_int.h"
#include "mlopsd/admin.h"
#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/sched.h"

#define MOD "admin"
#define LOG_LIMIT_DEFAULT 1000
#define LOG_LIMIT_MAX 10000
#define GRID_RUNS_MAX 100

/* ---- runs -----------------------------------------------------------------
 */

/* A run as Airflow's DAGRunResponse plus mlopsd's id (the keyset cursor)
 * and external_trigger.  Fields without a meaning here get Airflow's
 * neutral values in SQL (docs/admin-api.md "Airflow's fields"): the data
 * interval and run_after are the logical date (a cron trigger's run has
 * an empty interval at its fire time), dag_versions is empty (DAGs are
 * not versioned), triggered_by follows the run type. */
static const struct admin_col run_cols[] = {
    {"id", 'i'},
    {"dag_run_id", 's'},
    {"dag_id", 's'},
    {"logical_date", 's'},
    {"run_type", 's'},
    {"state", 's'},
    {"conf", 'j'},
    {"queued_at", 's'},
    {"start_date", 's'},
    {"end_date", 's'},
    {"external_trigger", 'b'},
    {"duration", 'f'},
    {"data_interval_start", 's'},
    {"data_interval_end", 's'},
    {"run_after", 's'},
    {"last_scheduling_decision", 's'},
    {"triggered_by", 's'},
    {"triggering_user_name", 's'},
    {"note", 's'},
    {"dag_versions", 'j'},
    {"bundle_version", 's'},
    {"dag_display_name", 's'},
};
#define NRUNCOLS (int)(sizeof(run_cols) / sizeof(run_cols[0]))
#define RUN_INSTANT "TIMESTAMPADD(MICROSECOND, logical_date_us, logical_date)"
/* clang-format off */
#define RUN_SELECT                                                            \
  "SELECT id, run_id, dag_id, " ADMIN_RUN_LOGICAL("") ", run_type, "        \
  "state, conf, " ADMIN_TS("queued_at") ", " ADMIN_TS("start_date") ", "    \
  ADMIN_TS("end_date") ", external_trigger, "                               \
  "TIMESTAMPDIFF(MICROSECOND, start_date, end_date) / 1e6, "                \
  ADMIN_RUN_LOGICAL("") ", " ADMIN_RUN_LOGICAL("") ", "                     \
  ADMIN_RUN_AFTER("") ", NULL, "                                            \
  "CASE run_type WHEN 'scheduled' THEN 'timetable' "                        \
  "WHEN 'backfill' THEN 'backfill' END, NULL, note, '[]', NULL, dag_id "    \
  "FROM dag_run "
/* clang-format on */

/* The run, its client-given id and note in one transaction: no
 * scheduler sees the run under mlopsd's id before it is renamed.
 * *renamed_taken: the client's dag_run_id is another run's. */
static enum err_code trigger_txn(struct admin *a, struct db_conn *c,
                                 const char *dag_id, const char *local,
                                 const struct sched_trigger_opts *to,
                                 const cJSON *conf, const char *want,
                                 const cJSON *note, char *run_id, size_t cap,
                                 int *renamed_taken, struct err *e)
{
  enum err_code rc = db_begin(c, e);
  if (rc == ERR_OK)
    rc = sched_trigger_opts(c, a->tz, dag_id, local, to, conf, run_id, cap,
                            e);
  if (rc == ERR_OK && want && strcmp(want, run_id)) {
    struct db_val rq[] = {DB_V_STR(want), DB_V_STR(run_id)};
    rc = db_exec_params(c, "UPDATE dag_run SET run_id = ? WHERE run_id = ?", rq,
                        2, NULL, e);
    if (rc == ERR_DB && db_last_errno(c) == 1062)
      *renamed_taken = 1;
    else if (rc == ERR_OK)
      snprintf(run_id, cap, "%s", want);
  }
  if (rc == ERR_OK && cJSON_IsString(note)) {
    struct db_val nq[] = {DB_V_STR(note->valuestring), DB_V_STR(run_id)};
    rc = db_exec_params(c, "UPDATE dag_run SET note = ? WHERE run_id = ?", nq,
                        2, NULL, e);
  }
  if (rc == ERR_OK)
    rc = db_commit(c, e);
  else
    db_rollback(c, NULL);
  return rc;
}

/* The body's "note" (*note, NULL when absent) of a run trigger or change:
 * null or a string of at most 1000 characters.  A bad one is answered
 * (422) and b freed: -1; else 0. */
static int body_note(cJSON *b, struct http_resp *resp, const cJSON **note)
{
  *note = cJSON_GetObjectItemCaseSensitive(b, "note");
  if (*note && !cJSON_IsNull(*note) &&
      (!cJSON_IsString(*note) || strlen((*note)->valuestring) > 1000)) {
    cJSON_Delete(b);
    admin_invalid(resp, "body", "note", "string_type",
                  "note must be a string of at most 1000 characters or null");
    return -1;
  }
  return 0;
}

/* The run itself is recorded by the scheduler's sched_trigger (same run
 * ids, same checks as `mlopsd dags trigger`); a date given with Z or an
 * offset is turned into the scheduler zone's wall time for it. */
static void h_run_trigger(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  struct err e = {0};
  char ld[32] = "", local[32], run_id[SCHED_RUN_ID_MAX + 1] = "";
  time_t inst = 0;
  struct sched_trigger_opts to = {0, 0};
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  /* Airflow 3: logical_date null (or absent) is a run without a logical
   * date, scheduled at run_after (given, or now to the microsecond) */
  const char *field = "logical_date";
  const char *lds = admin_obj_str(b, field);
  const cJSON *ldv = cJSON_GetObjectItemCaseSensitive(b, field);
  if (!ldv || cJSON_IsNull(ldv)) {
    to.logical_null = 1;
    field = "run_after";
    lds = admin_obj_str(b, field);
    ldv = cJSON_GetObjectItemCaseSensitive(b, field);
  }
  const cJSON *conf = cJSON_GetObjectItemCaseSensitive(b, "conf");
  if ((ldv && !cJSON_IsNull(ldv) && !lds) ||
      (lds && admin_parse_time(a->tz, lds, ld, &inst, &to.us))) {
    admin_invalid(resp, "body", field, "datetime_from_date_parsing",
                  "%s must be YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.ffffff]] "
                  "(in %s) or with Z or an offset, got '%.64s'",
                  field, cron_tz_name(a->tz), lds ? lds : "(not a string)");
    cJSON_Delete(b); /* lds points into it */
    return;
  }
  ld[19] = '\0'; /* the second: its fraction is to.us */
  if (conf && !cJSON_IsObject(conf) && !cJSON_IsNull(conf)) {
    cJSON_Delete(b);
    admin_invalid(resp, "body", "conf", "dict_type",
                  "conf must be a JSON object");
    return;
  }
  /* Airflow 3: the client may name the run (generated clients send null:
   * mlopsd names it, manual__DATE) */
  const cJSON *rid = cJSON_GetObjectItemCaseSensitive(b, "dag_run_id");
  const char *want = cJSON_IsString(rid) ? rid->valuestring : NULL;
  int bad_rid = rid && !cJSON_IsNull(rid) && !want;
  for (const char *p = want; p && *p && !bad_rid; p++)
    bad_rid = (unsigned char)*p < 0x20;
  if (bad_rid || (want && (!*want || strlen(want) > SCHED_RUN_ID_MAX))) {
    cJSON_Delete(b);
    admin_invalid(resp, "body", "dag_run_id", "string_type",
                  "dag_run_id must be a string of 1..%d characters without "
                  "control characters, or null",
                  SCHED_RUN_ID_MAX);
    return;
  }
  const cJSON *note;
  if (body_note(b, resp, &note))
    return;
  /* no date at all: now, to the microsecond, so that two triggers within
   * one second are two runs (as in Airflow 3) */
  if (!lds) {
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    inst = ts.tv_sec;
    to.us = (int)(ts.tv_nsec / 1000);
    gmtime_r(&inst, &tm);
    strftime(ld, sizeof(ld), "%Y-%m-%d %H:%M:%S", &tm);
  }
  {
    struct cron_civil cv;
    cron_tz_civil(a->tz, inst, &cv);
    snprintf(local, sizeof(local), "%04d-%02d-%02dT%02d:%02d:%02d", cv.year,
             cv.month, cv.day, cv.hour, cv.minute, cv.second);
  }
  struct db_conn *c = admin_conn(x);
  if (!c) {
    cJSON_Delete(b);
    return;
  }
  int known = 0;
  if (admin_dag_known(a, c, dag_id, &e, &known) || !known) {
    cJSON_Delete(b);
    if (e.code)
      admin_fail_db(resp, &e);
    else
      admin_fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
    return;
  }
  int renamed_taken = 0;
  enum err_code rc = trigger_txn(a, c, dag_id, local, &to, conf, want, note,
                                 run_id, sizeof(run_id), &renamed_taken, &e);
  if (renamed_taken) {
    struct db_val q[] = {DB_V_STR(want)};
    cJSON *ex = NULL;
    int qr = admin_query_one(c, resp, RUN_SELECT "WHERE run_id = ?", q, 1,
                             run_cols, NRUNCOLS, &ex);
    cJSON_Delete(b);
    if (qr)
      return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "DAG run exists");
    cJSON_AddStringToObject(o, "detail", "a run with this dag_run_id exists");
    cJSON_AddItemToObject(o, "dag_run", ex ? ex : cJSON_CreateNull());
    admin_reply(resp, 409, o);
    return;
  }
  cJSON_Delete(b);
  if (rc == ERR_EXISTS) {
    struct db_val q[] = {DB_V_STR(dag_id), DB_V_STR(ld), DB_V_INT(to.us)};
    cJSON *ex = NULL;
    int qr = admin_query_one(c, resp,
                             RUN_SELECT "WHERE dag_id = ? AND logical_date = ? "
                                        "AND logical_date_us = ?",
                             q, 3, run_cols, NRUNCOLS, &ex);
    if (qr)
      return;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", "DAG run exists");
    cJSON_AddStringToObject(o, "detail", e.msg);
    cJSON_AddItemToObject(o, "dag_run", ex ? ex : cJSON_CreateNull());
    admin_reply(resp, 409, o);
    return;
  }
  if (rc == ERR_INVAL) {
    admin_invalid(resp, "body", NULL, "value_error", "%s", e.msg);
    return;
  }
  if (rc != ERR_OK) {
    admin_fail_db(resp, &e);
    return;
  }
  struct db_val q[] = {DB_V_STR(run_id)};
  cJSON *run = NULL;
  int qr = admin_query_one(c, resp, RUN_SELECT "WHERE run_id = ?", q, 1,
                           run_cols, NRUNCOLS, &run);
  if (qr)
    return;
  LOG_I(MOD, "dag=%s run=%s triggered through the admin API", dag_id, run_id);
  admin_reply(resp, 200, run ? run : cJSON_CreateObject());
}

/* The keyset cursors ?before=ID / ?after=ID beside Airflow's offset. */
static void q_cursors(struct admin_q *q, struct admin_page *pg)
{
  const char *b = http_req_query(q->req, "before"),
             *f = http_req_query(q->req, "after");
  pg->before = pg->after = 0;
  if (b && admin_parse_i64(b, 1, INT64_MAX, &pg->before))
    admin_q_invalid(q, "query", "before", "int_parsing",
                    "before must be a positive id from a previous page");
  if (f && admin_parse_i64(f, 0, INT64_MAX, &pg->after))
    admin_q_invalid(q, "query", "after", "int_parsing",
                    "after must be a non-negative id from a previous page");
  if (b && f)
    admin_q_invalid(q, "query", "after", "value_error",
                    "give before or after, not both");
}

static const char *const run_states[] = {"queued", "running", "success",
                                         "failed", NULL};
static const char *const run_types[] = {"scheduled", "manual", "backfill",
                                        "asset_triggered", NULL};
static const struct admin_order run_order[] = {
    {"id", "id"},
    {"dag_run_id", "run_id"},
    {"run_id", "run_id"},
    {"dag_id", "dag_id"},
    /* with the fraction a trigger kept (migration 080) */
    {"logical_date", RUN_INSTANT},
    {"run_after", RUN_INSTANT},
    {"queued_at", "queued_at"},
    {"start_date", "start_date"},
    {"end_date", "end_date"},
    {"state", "state"},
    {"run_type", "run_type"},
    {"duration", "TIMESTAMPDIFF(MICROSECOND, start_date, end_date)"},
    {NULL, NULL},
};

/* Airflow's filters of a DAG run list (query string) into q. */
static void run_filters(struct admin_q *q)
{
  admin_q_in(q, "state", "state", run_states);
  admin_q_in(q, "run_type", "run_type", run_types);
  admin_q_range(q, "logical_date", "logical_date");
  admin_q_range(q, "run_after", "logical_date");
  admin_q_range(q, "start_date", "start_date");
  admin_q_range(q, "end_date", "end_date");
  admin_q_like(q, "run_id_pattern", "run_id");
}

/* GET /dags/{dag_id}/dagRuns: Airflow's filters, limit/offset and
 * order_by (default newest first), the keyset cursors, dag_id "~" for
 * the runs of every DAG. */
static void h_runs_list(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  int all = !strcmp(dag_id, "~");
  struct admin_page pg = {0};
  struct admin_q q;
  admin_q_init(&q, req, a->tz);
  admin_q_paging(&q, 50);
  q_cursors(&q, &pg);
  run_filters(&q);
  int ordered = admin_q_order(&q, run_order, "id DESC");
  if (admin_q_fail(&q, resp)) {
    admin_q_free(&q);
    return;
  }
  pg.limit = q.limit;
  struct db_conn *c = admin_conn(x);
  cJSON *dag = NULL;
  if (!c || (!all && !(dag = admin_dag_lookup(a, c, resp, dag_id)))) {
    admin_q_free(&q);
    return;
  }
  cJSON_Delete(dag);
  int asc = !ordered && pg.after;
  struct admin_list l = {
      .select = RUN_SELECT, .table = "dag_run",
      .scope_col = {"dag_id"}, .scope_val = {all ? NULL : dag_id},
      .cursor = pg.after ? " AND id > ?" : pg.before ? " AND id < ?" : "",
      .cursor_id = pg.after ? pg.after : pg.before,
      .order = ordered ? q.order : asc ? "id ASC" : "id DESC",
      .limit = q.limit + 1, .cols = run_cols, .ncols = NRUNCOLS};
  cJSON *arr;
  int64_t total = 0;
  int r = admin_q_select(c, resp, &q, &l, &arr, &total);
  admin_q_free(&q);
  if (r)
    return;
  cJSON *o = cJSON_CreateObject();
  if (ordered) { /* the id cursors follow id order only */
    int n = cJSON_GetArraySize(arr);
    if (n > q.limit)
      cJSON_DeleteItemFromArray(arr, n - 1);
    cJSON_AddItemToObject(o, "dag_runs", arr);
    cJSON_AddNullToObject(o, "next_before");
    cJSON_AddNullToObject(o, "next_after");
  } else {
    admin_page_finish(o, "dag_runs", arr, &pg, asc);
  }
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  admin_reply(resp, 200, o);
}

/* The run (*out) or an answer (404 when it is not a run of dag_id). */
static int run_lookup(struct admin *a, struct db_conn *c,
                      struct http_resp *resp, const char *dag_id,
                      const char *run_id, cJSON **out)
{
  struct db_val p[] = {DB_V_STR(run_id), DB_V_STR(dag_id)};
  (void)a;
  if (admin_query_one(c, resp, RUN_SELECT "WHERE run_id = ? AND dag_id = ?", p,
                      2, run_cols, NRUNCOLS, out))
    return -1;
  if (!*out) {
    admin_fail(resp, 404, "DAG run not found", "no run '%s' of DAG '%s'",
               run_id, dag_id);
    return -1;
  }
  return 0;
}

static void h_run_get(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *run = NULL;
  int r = run_lookup(a, c, resp, http_req_param(req, "dag_id"),
                     http_req_param(req, "run_id"), &run);
  if (!r)
    admin_reply(resp, 200, run);
}

/* ---- task instances ------------------------------------------------------ */

/* A task instance as Airflow's TaskInstanceResponse: id is a UUID-shaped
 * string (mlopsd's integer id as its last 12 hex digits; the integer is
 * ti_id, the keyset cursor), logical_date and run_after are the run's,
 * and the fields without a meaning here get Airflow's neutral values
 * (map_index -1: not mapped; pool default_pool with one slot; queue
 * default; executor_config "{}"); dag_version is added by ti_airflow. */
static const struct admin_col ti_cols[] = {
    {"ti_id", 'i'},
    {"task_id", 's'},
    {"dag_id", 's'},
    {"dag_run_id", 's'},
    {"state", 's'},
    {"try_number", 'i'},
    {"max_tries", 'i'},
    {"start_date", 's'},
    {"end_date", 's'},
    {"duration", 'f'},
    {"hostname", 's'},
    {"pid", 'i'},
    {"next_try_at", 's'},
    {"id", 's'},
    {"map_index", 'i'},
    {"logical_date", 's'},
    {"run_after", 's'},
    {"task_display_name", 's'},
    {"dag_display_name", 's'},
    {"unixname", 's'},
    {"pool", 's'},
    {"pool_slots", 'i'},
    {"queue", 's'},
    {"priority_weight", 'i'},
    {"operator", 's'},
    {"queued_when", 's'},
    {"scheduled_when", 's'},
    {"executor", 's'},
    {"executor_config", 's'},
    {"note", 's'},
    {"rendered_map_index", 's'},
    {"rendered_fields", 'j'},
    {"trigger", 's'},
    {"triggerer_job", 's'},
};
#define NTICOLS (int)(sizeof(ti_cols) / sizeof(ti_cols[0]))
/* clang-format off */
#define TI_RUN_LD                                                             \
  "(SELECT " ADMIN_RUN_LOGICAL("r.") " FROM dag_run r "                     \
  "WHERE r.run_id = task_instance.run_id)"
#define TI_RUN_AFTER                                                          \
  "(SELECT " ADMIN_RUN_AFTER("r.") " FROM dag_run r "                       \
  "WHERE r.run_id = task_instance.run_id)"
#define TI_SELECT                                                             \
  "SELECT id, task_id, dag_id, run_id, state, try_number, max_tries, "      \
  ADMIN_TS("start_date") ", " ADMIN_TS("end_date") ", duration, hostname, " \
  "pid, " ADMIN_TS("next_try_at") ", "                                      \
  "CONCAT('00000000-0000-0000-0000-', LPAD(LOWER(HEX(id)), 12, '0')), "     \
  "-1, " TI_RUN_LD ", " TI_RUN_AFTER ", task_id, dag_id, NULL, "               \
  "'default_pool', 1, 'default', 1, NULL, NULL, NULL, NULL, '{}', NULL, "   \
  "NULL, '{}', NULL, NULL FROM task_instance "
/* clang-format on */

/* What SQL cannot give a task instance: its DAG's version object and the
 * operator (the mlopsd task type, from the DAG file when it has the
 * task). */
static void ti_airflow(struct admin *a, cJSON *ti)
{
  const char *dag_id = admin_obj_str(ti, "dag_id"),
             *task_id = admin_obj_str(ti, "task_id");
  if (!dag_id || !task_id)
    return;
  cJSON_DeleteItemFromObjectCaseSensitive(ti, "dag_version");
  cJSON *v = admin_dag_version(dag_id);
  if (v)
    cJSON_AddItemToObject(ti, "dag_version", v);
  admin_dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  ptrdiff_t k = d ? dag_task_index(d, task_id) : -1;
  if (k >= 0) {
    cJSON_DeleteItemFromObjectCaseSensitive(ti, "operator");
    cJSON_AddStringToObject(ti, "operator", d->tasks[k].type_name);
  }
  admin_dags_unlock(a);
}

/* The task instance (dag_id, run_id, task_id) into *out, or -1 with the
 * answer set (404, 503). */
static int ti_lookup(struct db_conn *c, struct http_resp *resp,
                     const char *dag_id, const char *run_id,
                     const char *task_id, cJSON **out)
{
  struct db_val p[] = {DB_V_STR(dag_id), DB_V_STR(run_id), DB_V_STR(task_id)};
  if (admin_query_one(
          c, resp, TI_SELECT "WHERE dag_id = ? AND run_id = ? AND task_id = ?",
          p, 3, ti_cols, NTICOLS, out))
    return -1;
  if (!*out) {
    admin_fail(resp, 404, "task instance not found",
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
  admin_dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  size_t *rank = calloc((size_t)n, sizeof(*rank));
  cJSON **items = calloc((size_t)n, sizeof(*items));
  if (!rank || !items) {
    admin_dags_unlock(a);
    free(rank);
    free(items);
    return;
  }
  for (int i = 0; i < n; i++) {
    items[i] = cJSON_GetArrayItem(arr, i);
    rank[i] = SIZE_MAX;
    const char *t = admin_obj_str(items[i], "task_id");
    if (d && t)
      for (size_t k = 0; k < d->ntasks; k++)
        if (!strcmp(d->tasks[d->topo[k]].id, t)) {
          rank[i] = k;
          break;
        }
  }
  admin_dags_unlock(a);
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0; j--) {
      int swap = rank[j] < rank[j - 1] ||
                 (rank[j] == rank[j - 1] &&
                  strcmp(admin_obj_str(items[j], "task_id"),
                         admin_obj_str(items[j - 1], "task_id")) < 0);
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

static const char *const ti_states[] = {
    "removed", "scheduled", "queued", "running", "success", "restarting",
    "failed", "up_for_retry", "up_for_reschedule", "upstream_failed",
    "skipped", "deferred", NULL};
#define TI_RUN_DATE                                                           \
  "(SELECT r.logical_date FROM dag_run r WHERE r.run_id = task_instance.run_id)"
static const struct admin_order ti_order[] = {
    {"id", "id"},
    {"task_id", "task_id"},
    {"dag_id", "dag_id"},
    {"dag_run_id", "run_id"},
    {"run_id", "run_id"},
    {"map_index", "id"},
    {"state", "state"},
    {"try_number", "try_number"},
    {"start_date", "start_date"},
    {"end_date", "end_date"},
    {"duration", "duration"},
    {"logical_date", TI_RUN_DATE},
    {"run_after", TI_RUN_DATE},
    {NULL, NULL},
};

/* GET .../dagRuns/{run_id}/taskInstances: Airflow's filters,
 * limit/offset, order_by (default: the DAG's task order), "~" for every
 * DAG and/or every run; ?after=TI_ID is the keyset cursor. */
static void h_tis_list(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id");
  int all_dags = !strcmp(dag_id, "~"), all_runs = !strcmp(run_id, "~");
  struct admin_page pg = {0};
  struct admin_q q;
  admin_q_init(&q, req, a->tz);
  admin_q_paging(&q, 50);
  q_cursors(&q, &pg);
  if (pg.before)
    admin_q_invalid(&q, "query", "before", "value_error",
                    "task instances page forward only: use after");
  admin_q_in(&q, "state", "state", ti_states);
  admin_q_in(&q, "task_id", "task_id", NULL);
  admin_q_like(&q, "task_display_name_pattern", "task_id");
  admin_q_range(&q, "start_date", "start_date");
  admin_q_range(&q, "end_date", "end_date");
  admin_q_range(&q, "logical_date", TI_RUN_DATE);
  admin_q_range(&q, "run_after", TI_RUN_DATE);
  int ordered = admin_q_order(&q, ti_order, "id ASC");
  if (admin_q_fail(&q, resp)) {
    admin_q_free(&q);
    return;
  }
  struct db_conn *c = admin_conn(x);
  if (!c) {
    admin_q_free(&q);
    return;
  }
  cJSON *run = NULL, *arr = NULL;
  if (!all_dags && !all_runs) {
    if (run_lookup(a, c, resp, dag_id, run_id, &run)) {
      admin_q_free(&q);
      return;
    }
  } else if (!all_dags && !(run = admin_dag_lookup(a, c, resp, dag_id))) {
    admin_q_free(&q);
    return;
  }
  cJSON_Delete(run);
  struct admin_list l = {
      .select = TI_SELECT, .table = "task_instance",
      .scope_col = {"dag_id", "run_id"},
      .scope_val = {all_dags ? NULL : dag_id, all_runs ? NULL : run_id},
      .cursor = " AND id > ?", .cursor_id = pg.after,
      .order = ordered ? q.order : "id", .limit = q.limit + 1,
      .cols = ti_cols, .ncols = NTICOLS};
  int64_t total = 0;
  int r = admin_q_select(c, resp, &q, &l, &arr, &total);
  admin_q_free(&q);
  if (r)
    return;
  int n = cJSON_GetArraySize(arr), more = 0;
  if (n > q.limit)
    cJSON_DeleteItemFromArray(arr, --n), more = 1;
  int64_t last =
      n ? admin_obj_i64(cJSON_GetArrayItem(arr, n - 1), "ti_id") : 0;
  if (!ordered && !all_runs && !all_dags)
    sort_by_dag(a, dag_id, arr);
  cJSON *it;
  cJSON_ArrayForEach(it, arr) ti_airflow(a, it);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "task_instances", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  if (more && !ordered)
    cJSON_AddNumberToObject(o, "next_after", (double)last);
  else
    cJSON_AddNullToObject(o, "next_after");
  admin_reply(resp, 200, o);
}

static const struct admin_col attempt_cols[] = {
    {"try_number", 'i'},
    {"first_log_at", 's'},
    {"last_log_at", 's'},
    {"lines", 'i'},
};

static void h_ti_get(struct admin_call *x)
{
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id"),
             *task_id = http_req_param(req, "task_id");
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *ti = NULL, *att = NULL;
  if (ti_lookup(c, resp, dag_id, run_id, task_id, &ti))
    return;
  ti_airflow(x->a, ti);
  /* attempts: one per try, with the span and size of its log */
  struct db_val q[] = {DB_V_STR(run_id), DB_V_STR(task_id)};
  int r = admin_query_rows(
      c, resp,
      "SELECT try_number, " ADMIN_TS("MIN(ts)") ", " ADMIN_TS(
          "MAX(ts)") ", COUNT(*) FROM task_log WHERE run_id = ? AND "
                     "task_id = ? GROUP BY try_number ORDER BY try_number",
      q, 2, attempt_cols, 4, &att);
  if (r) {
    cJSON_Delete(ti);
    return;
  }
  /* tries without log lines still count as attempts */
  int64_t tries = admin_obj_i64(ti, "try_number");
  cJSON *all = cJSON_CreateArray();
  for (int64_t t = 1; all && t <= tries; t++) {
    cJSON *found = NULL, *it;
    cJSON_ArrayForEach(it, att) if (admin_obj_i64(it, "try_number") == t)
        found = it;
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
  admin_reply(resp, 200, ti);
}

/* ---- logs -----------------------------------------------------------------
 */

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
    static const struct admin_col cols[] = {{"id", 'i'},
                                            {"try_number", 'i'},
                                            {"timestamp", 's'},
                                            {"stream", 's'},
                                            {"line", 's'}};
    cJSON *o = admin_row_object(cols, 5, r);
    /* Airflow's StructuredLogMessage: the text is its "event" */
    const char *line = db_row_str(r, 4, NULL);
    if (!o || !cJSON_AddStringToObject(o, "event", line ? line : "")) {
      cJSON_Delete(o);
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
      rc = http_resp_printf(lo->resp, ",\"event\":");
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
      http_resp_write(lo->resp, line ? line : "", line ? len : 0) != ERR_OK ||
      http_resp_write(lo->resp, "\n", 1) != ERR_OK) {
    lo->failed = 1;
    return 1;
  }
  return 0;
}

static void h_log(struct admin_call *x)
{
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id"),
             *task_id = http_req_param(req, "task_id");
  const char *accept = http_req_header(req, "Accept");
  const char *fmt = http_req_query(req, "format");
  int64_t try_n;
  struct admin_page pg = {0};
  struct err e = {0};
  if (admin_parse_i64(http_req_param(req, "try_number"), 1, INT_MAX, &try_n)) {
    admin_invalid(resp, "path", "try_number", "int_parsing",
                  "try_number must be a positive integer");
    return;
  }
  if (admin_page_args(req, resp, LOG_LIMIT_DEFAULT, LOG_LIMIT_MAX, &pg) < 0)
    return;
  /* Airflow's continuation token (?token=): the continuation_token of
   * the answer before, the same cursor as ?after= */
  const char *tok = http_req_query(req, "token");
  if (tok && *tok && !http_req_query(req, "after") &&
      admin_parse_i64(tok, 0, INT64_MAX, &pg.after)) {
    admin_invalid(resp, "query", "token", "value_error",
                  "token must be the continuation_token of an earlier answer");
    return;
  }
  int mode = 0;
  if ((fmt && !strcmp(fmt, "text")) ||
      (!fmt && accept && strstr(accept, "text/plain")))
    mode = 2;
  else if ((fmt && !strcmp(fmt, "jsonl")) ||
           (!fmt && accept &&
            (strstr(accept, "application/x-ndjson") ||
             strstr(accept, "application/jsonl"))))
    mode = 1;
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *ti = NULL;
  if (ti_lookup(c, resp, dag_id, run_id, task_id, &ti))
    return;
  int64_t tries = admin_obj_i64(ti, "try_number");
  if (try_n > tries) {
    cJSON_Delete(ti);
    admin_fail(resp, 404, "attempt not found",
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
  enum err_code rc = db_query(c,
                              "SELECT id, try_number, " ADMIN_TS(
                                  "ts") ", stream, line FROM task_log "
                                        "WHERE run_id = ? AND task_id = ? AND "
                                        "try_number = ? AND id > ? "
                                        "ORDER BY id LIMIT ?",
                              q, 5, log_cb, &lo, NULL, &e);
  if (rc != ERR_OK || lo.failed) {
    cJSON_Delete(lo.arr);
    cJSON_Delete(ti);
    http_resp_clear(resp);
    if (rc != ERR_OK)
      admin_fail_db(resp, &e);
    else
      admin_fail(resp, 500, "log too large",
                 "ask for fewer lines with ?limit=");
    return;
  }
  char cursor[32];
  snprintf(cursor, sizeof(cursor), "%lld", (long long)lo.last_id);
  if (mode != 0) {
    if (http_resp_header(resp, "X-Continuation-Token", cursor) != ERR_OK ||
        http_resp_header(resp, "X-Task-State",
                         admin_obj_str(ti, "state") ? admin_obj_str(ti, "state")
                                                    : "") != ERR_OK)
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
  admin_reply(resp, 200, o);
}

/* ---- grid (console) --------------------------------------------------------
 */

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
    const char *x = admin_obj_str(run, "dag_run_id");
    if (x && rid && !strcmp(x, rid)) {
      cJSON *tis = cJSON_GetObjectItemCaseSensitive(run, "task_instances");
      static const struct admin_col cols[] = {
          {"run_id", 's'},     {"task_id", 's'},    {"state", 's'},
          {"try_number", 'i'}, {"start_date", 's'}, {"end_date", 's'},
          {"duration", 'f'}};
      cJSON *o = admin_row_object(cols, 7, r);
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

static void h_grid(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  struct admin_page pg = {0};
  struct err e = {0};
  if (admin_page_args(req, resp, 25, GRID_RUNS_MAX, &pg) < 0)
    return;
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *dag = admin_dag_lookup(a, c, resp, dag_id), *runs = NULL;
  if (!dag)
    return;
  struct db_val p[] = {DB_V_STR(dag_id),
                       DB_V_INT(pg.before ? pg.before : INT64_MAX),
                       DB_V_INT(pg.limit)};
  if (admin_query_rows(c, resp,
                       RUN_SELECT
                       "WHERE dag_id = ? AND id < ? ORDER BY id DESC "
                       "LIMIT ?",
                       p, 3, run_cols, NRUNCOLS, &runs)) {
    cJSON_Delete(dag);
    return;
  }
  int nr = cJSON_GetArraySize(runs);
  cJSON *run;
  cJSON_ArrayForEach(run, runs) cJSON_AddObjectToObject(run, "task_instances");
  if (nr > 0) {
    int64_t lo = admin_obj_i64(cJSON_GetArrayItem(runs, nr - 1), "id");
    int64_t hi = admin_obj_i64(cJSON_GetArrayItem(runs, 0), "id");
    struct db_val q[] = {DB_V_STR(dag_id), DB_V_INT(lo), DB_V_INT(hi)};
    struct grid_ti g = {runs};
    /* the task instances of the runs in the id window, one query */
    if (db_query(
            c,
            "SELECT t.run_id, t.task_id, t.state, t.try_number, " ADMIN_TS(
                "t.start_date") ", " ADMIN_TS("t.end_date") ", t.duration "
                                                            "FROM "
                                                            "task_instance t "
                                                            "JOIN dag_run r ON "
                                                            "r.run_id = "
                                                            "t.run_id "
                                                            "WHERE r.dag_id = "
                                                            "? AND r.id "
                                                            "BETWEEN ? AND ?",
            q, 3, grid_cb, &g, NULL, &e) != ERR_OK) {
      cJSON_Delete(dag);
      cJSON_Delete(runs);
      admin_fail_db(resp, &e);
      return;
    }
  }
  /* tasks: the DAG's, then any only seen in task instances */
  cJSON *tasks = cJSON_DetachItemFromObject(dag, "tasks");
  if (!tasks)
    tasks = cJSON_CreateArray();
  cJSON_ArrayForEach(run, runs)
  {
    cJSON *ti;
    cJSON_ArrayForEach(ti,
                       cJSON_GetObjectItemCaseSensitive(run, "task_instances"))
    {
      int have = 0;
      cJSON *t;
      cJSON_ArrayForEach(t, tasks) if (!strcmp(admin_obj_str(t, "task_id"),
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
        o, "next_before",
        (double)admin_obj_i64(cJSON_GetArrayItem(runs, nr - 1), "id"));
  else
    cJSON_AddNullToObject(o, "next_before");
  admin_reply(resp, 200, o);
}

/* ---- run changes (Airflow's PATCH dagRun, clearTaskInstances) ----------- */

/* PATCH /dags/{dag_id}/dagRuns/{run_id} {"state"?, "note"?}: mark a run
 * success (its unfinished task instances success) or failed (running
 * ones failed, waiting ones skipped), or queued again; store the note.
 * A running attempt whose row is changed under it finds its claim gone
 * and writes nothing (sched_attempt_finish). */
static void h_run_patch(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id"),
             *run_id = http_req_param(req, "run_id");
  struct err e = {0};
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  const cJSON *st = cJSON_GetObjectItemCaseSensitive(b, "state"), *note;
  const char *state = cJSON_IsString(st) ? st->valuestring : NULL;
  if ((st && !cJSON_IsNull(st) && !state) ||
      (state && strcmp(state, "queued") && strcmp(state, "success") &&
       strcmp(state, "failed"))) {
    cJSON_Delete(b);
    admin_invalid(resp, "body", "state", "enum",
                  "state must be queued, success or failed");
    return;
  }
  if (body_note(b, resp, &note))
    return;
  struct db_conn *c = admin_conn(x);
  cJSON *run = NULL;
  if (!c || run_lookup(a, c, resp, dag_id, run_id, &run)) {
    cJSON_Delete(b);
    return;
  }
  cJSON_Delete(run);
  struct db_val p[] = {DB_V_STR(run_id)};
  enum err_code rc = ERR_OK;
  if (state && !strcmp(state, "success")) {
    rc = db_exec_params(
        c,
        "UPDATE task_instance SET state = 'success', end_date = "
        "COALESCE(end_date, UTC_TIMESTAMP(6)), claimed_by = NULL, "
        "heartbeat_at = NULL, next_try_at = NULL WHERE run_id = ? AND state "
        "NOT IN ('success', 'failed', 'skipped', 'upstream_failed')",
        p, 1, NULL, &e);
  } else if (state && !strcmp(state, "failed")) {
    rc = db_exec_params(
        c,
        "UPDATE task_instance SET state = IF(state = 'running', 'failed', "
        "'skipped'), end_date = COALESCE(end_date, UTC_TIMESTAMP(6)), "
        "claimed_by = NULL, heartbeat_at = NULL, next_try_at = NULL WHERE "
        "run_id = ? AND state NOT IN ('success', 'failed', 'skipped', "
        "'upstream_failed')",
        p, 1, NULL, &e);
  }
  if (rc == ERR_OK && state) {
    struct db_val q[] = {DB_V_STR(state), DB_V_STR(run_id)};
    rc = db_exec_params(
        c,
        "UPDATE dag_run SET state = ?, end_date = IF(state = 'queued', NULL, "
        "COALESCE(end_date, UTC_TIMESTAMP(6))), claimed_by = NULL, "
        "heartbeat_at = NULL WHERE run_id = ?",
        q, 2, NULL, &e);
  }
  if (rc == ERR_OK && note) {
    struct db_val q[] = {cJSON_IsString(note) ? DB_V_STR(note->valuestring)
                                              : DB_V_NULL,
                         DB_V_STR(run_id)};
    rc = db_exec_params(c, "UPDATE dag_run SET note = ? WHERE run_id = ?", q,
                        2, NULL, &e);
  }
  /* state points into the body: log before the body goes */
  if (rc == ERR_OK && state)
    LOG_I(MOD, "dag=%s run=%s marked %s through the admin API", dag_id, run_id,
          state);
  cJSON_Delete(b);
  if (rc != ERR_OK) {
    admin_fail_db(resp, &e);
    return;
  }
  if (!run_lookup(a, c, resp, dag_id, run_id, &run))
    admin_reply(resp, 200, run);
}

/* The middle of the body-driven list and change handlers: answer q's
 * validation errors, take a connection and check that the DAG exists
 * (any DAG: all).  The connection, or NULL when answered (q and b are
 * then freed). */
static struct db_conn *q_conn_dag(struct admin_call *x, struct admin_q *q,
                                  cJSON *b, const char *dag_id, int all)
{
  struct db_conn *c = NULL;
  cJSON *dag = NULL;
  if (admin_q_fail(q, x->resp) || !(c = admin_conn(x)) ||
      (!all && !(dag = admin_dag_lookup(x->a, c, x->resp, dag_id)))) {
    admin_q_free(q);
    cJSON_Delete(b);
    return NULL;
  }
  cJSON_Delete(dag);
  return c;
}

/* POST /dags/{dag_id}/dagRuns/list (Airflow's DAGRunsBatchBody; dag_id
 * "~" or one DAG): the runs matching dag_ids, states and the date ranges,
 * page_offset / page_limit, order_by. */
static void h_runs_batch(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  int all = !strcmp(dag_id, "~");
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  struct admin_q q;
  admin_q_init(&q, req, a->tz);
  admin_q_body_paging(&q, b, 100);
  admin_q_body_in(&q, b, "dag_ids", "dag_id", NULL);
  admin_q_body_in(&q, b, "states", "state", run_states);
  static const char *const ranges[][2] = {
      {"logical_date", RUN_INSTANT}, {"run_after", RUN_INSTANT},
      {"start_date", "start_date"},     {"end_date", "end_date"}};
  for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
    char k[64];
    snprintf(k, sizeof(k), "%s_gte", ranges[i][0]);
    admin_q_body_range(&q, b, k, ranges[i][1], ">=");
    snprintf(k, sizeof(k), "%s_lte", ranges[i][0]);
    admin_q_body_range(&q, b, k, ranges[i][1], "<=");
  }
  admin_q_body_order(&q, b, run_order, "id DESC");
  struct db_conn *c = q_conn_dag(x, &q, b, dag_id, all);
  if (!c)
    return;
  struct admin_list l = {
      .select = RUN_SELECT, .table = "dag_run",
      .scope_col = {"dag_id"}, .scope_val = {all ? NULL : dag_id},
      .cursor = "", .order = q.order[0] ? q.order : "id DESC",
      .limit = q.limit, .cols = run_cols, .ncols = NRUNCOLS};
  cJSON *arr = NULL;
  int64_t total = 0;
  int r = admin_q_select(c, resp, &q, &l, &arr, &total);
  admin_q_free(&q);
  cJSON_Delete(b); /* the values pointed into it */
  if (r)
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "dag_runs", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  admin_reply(resp, 200, o);
}

static int body_bool(const cJSON *b, const char *key, int def, int *bad)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, key);
  if (!v || cJSON_IsNull(v))
    return def;
  if (!cJSON_IsBool(v))
    *bad = 1;
  return cJSON_IsTrue(v);
}

/* POST /dags/{dag_id}/clearTaskInstances (Airflow's
 * ClearTaskInstancesBody): the task instances of the DAG matching
 * dag_run_id, task_ids, only_failed (default true) / only_running and the
 * logical date range are answered; unless dry_run (default true) they are
 * set back to scheduled with their attempts given again (max_tries +=
 * try_number) and, with reset_dag_runs (default true), their runs queued
 * again, so a running daemon runs them within a tick. */
static void h_clear(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  struct err e = {0};
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  int bad = 0;
  int dry = body_bool(b, "dry_run", 1, &bad),
      only_failed = body_bool(b, "only_failed", 1, &bad),
      only_running = body_bool(b, "only_running", 0, &bad),
      reset_runs = body_bool(b, "reset_dag_runs", 1, &bad);
  struct admin_q q;
  admin_q_init(&q, req, a->tz);
  if (bad)
    admin_q_invalid(&q, "body", NULL, "bool_type",
                    "dry_run, only_failed, only_running and reset_dag_runs "
                    "are booleans");
  const cJSON *rid = cJSON_GetObjectItemCaseSensitive(b, "dag_run_id");
  if (cJSON_IsString(rid)) {
    admin_q_val(&q, DB_V_STR(rid->valuestring));
    admin_q_cond(&q, "t.run_id = ?");
  } else if (rid && !cJSON_IsNull(rid)) {
    admin_q_invalid(&q, "body", "dag_run_id", "string_type",
                    "dag_run_id must be a string");
  }
  admin_q_body_in(&q, b, "task_ids", "t.task_id", NULL);
  admin_q_body_range(&q, b, "start_date", "r.logical_date", ">=");
  admin_q_body_range(&q, b, "end_date", "r.logical_date", "<=");
  if (only_failed)
    admin_q_cond(&q, "t.state IN ('failed', 'upstream_failed')");
  if (only_running)
    admin_q_cond(&q, "t.state = 'running'");
  struct db_conn *c = q_conn_dag(x, &q, b, dag_id, 0);
  if (!c)
    return;
  struct db_val p[ADMIN_Q_VALS + 1];
  p[0] = DB_V_STR(dag_id);
  memcpy(p + 1, q.v, (size_t)q.nv * sizeof(p[0]));
  int np = 1 + q.nv;
  char sql[8192];
  cJSON *arr = NULL;
  /* the task instances, by id, in one statement */
  snprintf(sql, sizeof(sql),
           "%sWHERE id IN (SELECT t.id FROM task_instance t JOIN dag_run r ON "
           "r.run_id = t.run_id WHERE t.dag_id = ?%s) ORDER BY id",
           TI_SELECT, q.where);
  int r = admin_query_rows(c, resp, sql, p, np, ti_cols, NTICOLS, &arr);
  if (!r && !dry && cJSON_GetArraySize(arr) > 0) {
    enum err_code rc = db_begin(c, &e);
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
      if (rc != ERR_OK)
        break;
      struct db_val u[] = {DB_V_INT(admin_obj_i64(it, "ti_id"))};
      rc = db_exec_params(
          c,
          "UPDATE task_instance SET state = 'scheduled', max_tries = "
          "max_tries + try_number, start_date = NULL, end_date = NULL, "
          "duration = NULL, hostname = NULL, pid = NULL, claimed_by = NULL, "
          "heartbeat_at = NULL, next_try_at = NULL WHERE id = ?",
          u, 1, NULL, &e);
      if (rc == ERR_OK && reset_runs) {
        struct db_val w[] = {DB_V_STR(admin_obj_str(it, "dag_run_id"))};
        rc = db_exec_params(c,
                            "UPDATE dag_run SET state = 'queued', end_date = "
                            "NULL, claimed_by = NULL, heartbeat_at = NULL "
                            "WHERE run_id = ? AND state IN ('success', "
                            "'failed')",
                            w, 1, NULL, &e);
      }
    }
    if (rc == ERR_OK)
      rc = db_commit(c, &e);
    else
      db_rollback(c, NULL);
    if (rc != ERR_OK) {
      admin_fail_db(resp, &e);
      r = -1;
    } else {
      LOG_I(MOD, "dag=%s: %d task instance(s) cleared through the admin API",
            dag_id, cJSON_GetArraySize(arr));
    }
  }
  admin_q_free(&q);
  cJSON_Delete(b);
  if (r) {
    cJSON_Delete(arr);
    return;
  }
  cJSON *it;
  cJSON_ArrayForEach(it, arr) ti_airflow(a, it);
  cJSON *o = cJSON_CreateObject();
  cJSON_AddNumberToObject(o, "total_entries", cJSON_GetArraySize(arr));
  cJSON_AddItemToObject(o, "task_instances", arr);
  cJSON_AddBoolToObject(o, "dry_run", dry);
  admin_reply(resp, 200, o);
}

#define RUNS "/api/v2/dags/{dag_id}/dagRuns"
#define TIS RUNS "/{run_id}/taskInstances"
const struct admin_route admin_run_routes[] = {
    {"GET", "/api/v2/dags/{dag_id}/grid", ADMIN_READ, h_grid},
    {"POST", RUNS, ADMIN_WRITE, h_run_trigger},
    {"GET", RUNS, ADMIN_READ, h_runs_list},
    {"POST", RUNS "/list", ADMIN_READ, h_runs_batch},
    {"GET", RUNS "/{run_id}", ADMIN_READ, h_run_get},
    {"PATCH", RUNS "/{run_id}", ADMIN_WRITE, h_run_patch},
    {"POST", "/api/v2/dags/{dag_id}/clearTaskInstances", ADMIN_WRITE, h_clear},
    {"GET", TIS, ADMIN_READ, h_tis_list},
    {"GET", TIS "/{task_id}", ADMIN_READ, h_ti_get},
    {"GET", TIS "/{task_id}/logs/{try_number}", ADMIN_READ, h_log},
};
const size_t admin_run_nroutes =
    sizeof(admin_run_routes) / sizeof(admin_run_routes[0]);
