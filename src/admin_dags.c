/* admin_dags.c - the admin API's DAGs (admin.h): the cache of the DAG
 * files, GET /api/v2/dags[/{dag_id}], pause and unpause.
 *
 * Why DAGs are read from the files here: the dag table only holds the
 * pause flag; schedule, tasks and description live in the YAML files.
 * The files are held in a dag_dir (dag.h: the one loader of DAG
 * directories, also the scheduler's and dag_load_dir's), scanned again
 * at most every two seconds when a request needs the DAGs; only files
 * whose YAML or sources changed are parsed again.  The
 * next run is the next cron fire time after now (or after start_date), in
 * scheduler.timezone.
 *
 * Pausing goes through the scheduler's own sched_set_paused (the same
 * rows as the CLI).
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
#define DAG_RELOAD_MS 2000

/* ---- DAG files ---------------------------------------------------------- */

/* Lock dag_mu with an up-to-date set.  Always returns locked.  At most
 * every DAG_RELOAD_MS the directory is scanned again (dag_dir_scan loads
 * only the files whose YAML or sources changed, and those that failed);
 * the set is then rebuilt from the files (references, no parsing). */
void admin_dags_lock(struct admin *a)
{
  pthread_mutex_lock(&a->dag_mu);
  int64_t now = admin_mono_ms();
  if (a->dags && now - a->dags_loaded_ms < DAG_RELOAD_MS)
    return;
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err e = {0};
  if (dag_dir_scan(a->dagdir, NULL, NULL, NULL, &e) != ERR_OK &&
      a->dags_loaded_ms == 0)
    LOG_W(MOD, "DAG files: %s", e.msg);
  err_clear(&e);
  if (dag_dir_set(a->dagdir, &s, &errs, &e) == ERR_OK) {
    dag_set_destroy(a->dags);
    dag_errors_free(&a->errs);
    a->dags = s;
    a->errs = errs;
  } else {
    LOG_W(MOD, "DAG files: %s", e.msg);
  }
  a->dags_loaded_ms = now;
}

void admin_dags_unlock(struct admin *a) { pthread_mutex_unlock(&a->dag_mu); }

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
    time_t st = cron_tz_resolve(a->tz, d->start_date.year, d->start_date.month,
                                d->start_date.day, d->start_date.hour,
                                d->start_date.minute, d->start_date.second);
    if (st - 1 > after)
      after = st - 1;
  }
  if (cron_next(&d->cron, a->tz, after, &t, &e) == ERR_OK) {
    char iso[CRON_ISO_LEN];
    cron_fmt_iso(a->tz, t, iso);
    snprintf(out, 40, "%s", iso);
  }
}

/* The fields of Airflow's DAGResponse that mlopsd has no notion of, with
 * Airflow's neutral values (docs/admin-api.md "Airflow's fields"), added
 * where the object does not carry them yet: a DAG only the dag table
 * knows gets them all. */
static void dag_neutral(cJSON *o, const char *dag_id, const char *fileloc)
{
  char tok[37];
  admin_put_default(o, "dag_display_name", cJSON_CreateString(dag_id));
  admin_put_default(o, "is_stale", cJSON_CreateTrue()); /* no file */
  admin_put_default(o, "last_parsed_time", cJSON_CreateNull());
  admin_put_default(o, "last_expired", cJSON_CreateNull());
  admin_put_default(o, "bundle_name", cJSON_CreateNull());
  admin_put_default(o, "bundle_version", cJSON_CreateNull());
  admin_put_default(o, "relative_fileloc", cJSON_CreateNull());
  admin_put_default(o, "fileloc", cJSON_CreateString(fileloc ? fileloc : ""));
  admin_put_default(o, "description", cJSON_CreateNull());
  admin_put_default(o, "timetable_summary", cJSON_CreateNull());
  admin_put_default(o, "timetable_description", cJSON_CreateNull());
  admin_put_default(o, "tags", cJSON_CreateArray());
  admin_put_default(o, "max_active_tasks", cJSON_CreateNumber(16));
  admin_put_default(o, "max_active_runs", cJSON_CreateNull());
  admin_put_default(o, "max_consecutive_failed_dag_runs",
                    cJSON_CreateNumber(0));
  admin_put_default(o, "has_task_concurrency_limits", cJSON_CreateFalse());
  admin_put_default(o, "has_import_errors", cJSON_CreateFalse());
  admin_put_default(o, "next_dagrun_logical_date", cJSON_CreateNull());
  admin_put_default(o, "next_dagrun_data_interval_start", cJSON_CreateNull());
  admin_put_default(o, "next_dagrun_data_interval_end", cJSON_CreateNull());
  admin_put_default(o, "next_dagrun_run_after", cJSON_CreateNull());
  admin_put_default(o, "owners", cJSON_CreateArray());
  /* Airflow signs the file location; here an opaque id of the DAG */
  admin_uuid(tok, "file_token", dag_id, 0);
  admin_put_default(o, "file_token", cJSON_CreateString(tok));
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
  /* Airflow's DagTagResponse objects, not bare strings */
  cJSON *tags = cJSON_AddArrayToObject(o, "tags");
  for (size_t i = 0; tags && i < d->ntags; i++) {
    cJSON *t = cJSON_CreateObject();
    cJSON_AddStringToObject(t, "name", d->tags[i]);
    cJSON_AddStringToObject(t, "dag_id", d->dag_id);
    cJSON_AddItemToArray(tags, t);
  }
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
      cJSON_AddItemToArray(up, cJSON_CreateString(d->tasks[t->upstream[u]].id));
    cJSON_AddStringToObject(to, "trigger_rule",
                            dag_trigger_rule_name(t->trigger_rule));
    cJSON_AddItemToArray(tasks, to);
  }
  cJSON_AddStringToObject(o, "fileloc", d->path);
  cJSON_AddBoolToObject(o, "is_active", 1);
  cJSON_AddBoolToObject(o, "is_stale", 0);
  /* relative_fileloc: the path below scheduler.dags_dir */
  const char *dir = a->cfg->sched_dags_dir;
  size_t dl = strlen(dir);
  const char *rel = d->path;
  if (dl && !strncmp(rel, dir, dl) && rel[dl] == '/')
    rel += dl + 1;
  cJSON_AddStringToObject(o, "relative_fileloc", rel);
  /* a cron schedule fires at its logical date: run_after is the same */
  cJSON_AddItemToObject(
      o, "next_dagrun_run_after",
      next[0] ? cJSON_CreateString(next) : cJSON_CreateNull());
  if (d->schedule)
    cJSON_AddStringToObject(o, "timetable_summary", d->schedule);
  cJSON_AddNumberToObject(o, "max_active_tasks", (double)d->ntasks);
  dag_neutral(o, d->dag_id, d->path);
  return o;
}

/* Add is_paused and the last run from the dag / dag_run tables. */
static const struct admin_col last_run_cols[] = {
    {"id", 'i'},       {"dag_run_id", 's'}, {"logical_date", 's'},
    {"state", 's'},    {"run_type", 's'},   {"start_date", 's'},
    {"end_date", 's'},
};
/* clang-format off */
#define LAST_RUN_SQL                                                          \
  "SELECT id, run_id, " ADMIN_RUN_LOGICAL("") ", state, run_type, "         \
  ADMIN_TS("start_date") ", " ADMIN_TS("end_date") " FROM dag_run "        \
  "WHERE dag_id = ? ORDER BY id DESC LIMIT 1"
/* clang-format on */

static int dag_add_db(struct db_conn *c, struct http_resp *resp, cJSON *o,
                      const char *dag_id)
{
  static const struct admin_col dag_cols[] = {
      {"is_paused", 'b'},
      {"last_parsed_time", 's'},
      {"has_import_errors", 'b'},
      {"fileloc", 's'},
  };
  struct db_val p[] = {DB_V_STR(dag_id)};
  cJSON *row;
  if (admin_query_one(c, resp,
                      "SELECT is_paused, " ADMIN_TS("last_parsed_at")
                      ", import_error IS NOT NULL, fileloc FROM dag "
                      "WHERE dag_id = ?",
                      p, 1, dag_cols, 4, &row))
    return -1;
  /* the scheduler's view of the file (parse time, import error) where it
   * has one; a DAG it has not seen yet is not paused */
  cJSON_DeleteItemFromObjectCaseSensitive(o, "is_paused");
  cJSON_AddBoolToObject(o, "is_paused",
                        row && cJSON_IsTrue(cJSON_GetObjectItem(row, "is_paused")));
  if (row) {
    cJSON *v = cJSON_DetachItemFromObject(row, "last_parsed_time");
    if (v) {
      cJSON_DeleteItemFromObjectCaseSensitive(o, "last_parsed_time");
      cJSON_AddItemToObject(o, "last_parsed_time", v);
    }
    if (cJSON_IsTrue(cJSON_GetObjectItem(row, "has_import_errors"))) {
      cJSON_DeleteItemFromObjectCaseSensitive(o, "has_import_errors");
      cJSON_AddTrueToObject(o, "has_import_errors");
    }
    const char *fl = admin_obj_str(row, "fileloc");
    dag_neutral(o, dag_id, fl);
  }
  dag_neutral(o, dag_id, NULL);
  cJSON_Delete(row);
  cJSON *last;
  if (admin_query_one(c, resp, LAST_RUN_SQL, p, 1, last_run_cols,
                      (int)(sizeof(last_run_cols) / sizeof(last_run_cols[0])),
                      &last))
    return -1;
  cJSON_AddItemToObject(o, "last_run", last ? last : cJSON_CreateNull());
  return 0;
}

/* 1 when dag_id is known: in the files or in the dag table. */
int admin_dag_known(struct admin *a, struct db_conn *c, const char *dag_id,
                    struct err *e, int *known)
{
  int64_t one;
  struct db_val p[] = {DB_V_STR(dag_id)};
  admin_dags_lock(a);
  *known = a->dags && dag_set_find(a->dags, dag_id) != NULL;
  admin_dags_unlock(a);
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

/* ---- DAGs -----------------------------------------------------------------
 */

/* SQL LIKE as Airflow's *_pattern parameters use it: % any run, _ one
 * character, \ escapes; case-insensitive (ASCII), as MariaDB's default
 * collation compares. */
static int like_match(const char *p, const char *s)
{
  for (; *p; p++, s++) {
    if (*p == '%') {
      while (p[1] == '%')
        p++;
      if (!p[1])
        return 1;
      for (; *s; s++)
        if (like_match(p + 1, s))
          return 1;
      return like_match(p + 1, s);
    }
    if (!*s)
      return 0;
    if (*p == '\\' && p[1])
      p++;
    else if (*p == '_')
      continue;
    if (tolower((unsigned char)*p) != tolower((unsigned char)*s))
      return 0;
  }
  return *s == '\0';
}

struct tag_acc {
  const char *v[32];
  size_t len[32];
  int n;
};

static int tag_cb(void *user, const char *value)
{
  struct tag_acc *t = user;
  const char *p = value;
  for (;;) {
    const char *c = strchr(p, ',');
    size_t n = c ? (size_t)(c - p) : strlen(p);
    if (n && t->n < 32) {
      t->v[t->n] = p;
      t->len[t->n++] = n;
    }
    if (!c)
      return 0;
    p = c + 1;
  }
}

static int dag_has_tag(const cJSON *d, const char *v, size_t n)
{
  const cJSON *t;
  cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(d, "tags"))
  {
    const char *name = cJSON_IsString(t) ? t->valuestring
                                         : admin_obj_str(t, "name");
    if (name && strlen(name) == n && !strncmp(name, v, n))
      return 1;
  }
  return 0;
}

/* The filters of GET /dags (Airflow's names) over the listed objects. */
struct dag_filter {
  int paused;        /* -1 any, 0, 1 */
  int exclude_stale; /* Airflow's default: true */
  const char *id_pattern, *name_pattern;
  struct tag_acc tags;
  int tags_all;
  int owners; /* owners= given: mlopsd DAGs have none */
  int desc;   /* order_by=-dag_id */
};

static int dag_filter_args(struct admin_q *q, struct dag_filter *f)
{
  const char *v;
  memset(f, 0, sizeof(*f));
  f->paused = -1;
  f->exclude_stale = 1;
  if ((v = http_req_query(q->req, "paused")) && *v) {
    if (!strcmp(v, "true") || !strcmp(v, "1"))
      f->paused = 1;
    else if (!strcmp(v, "false") || !strcmp(v, "0"))
      f->paused = 0;
    else
      admin_q_invalid(q, "query", "paused", "bool_parsing",
                      "paused must be true or false, got '%.40s'", v);
  }
  if ((v = http_req_query(q->req, "exclude_stale")) && *v) {
    if (!strcmp(v, "false") || !strcmp(v, "0"))
      f->exclude_stale = 0;
    else if (strcmp(v, "true") && strcmp(v, "1"))
      admin_q_invalid(q, "query", "exclude_stale", "bool_parsing",
                      "exclude_stale must be true or false, got '%.40s'", v);
  }
  f->id_pattern = http_req_query(q->req, "dag_id_pattern");
  f->name_pattern = http_req_query(q->req, "dag_display_name_pattern");
  http_req_query_each(q->req, "tags", tag_cb, &f->tags);
  if ((v = http_req_query(q->req, "tags_match_mode")) && *v) {
    if (!strcmp(v, "all"))
      f->tags_all = 1;
    else if (strcmp(v, "any"))
      admin_q_invalid(q, "query", "tags_match_mode", "enum",
                      "tags_match_mode must be any or all, got '%.40s'", v);
  }
  f->owners = http_req_query(q->req, "owners") != NULL;
  static const struct admin_order dag_order[] = {
      {"dag_id", "dag_id"}, {"dag_display_name", "dag_id"}, {NULL, NULL}};
  if (admin_q_order(q, dag_order, NULL))
    f->desc = strstr(q->order, "DESC") != NULL;
  return 0;
}

static int dag_passes(const struct dag_filter *f, const cJSON *d,
                      const char *id, int paused)
{
  if (f->exclude_stale && cJSON_IsTrue(cJSON_GetObjectItem(d, "is_stale")))
    return 0;
  if (f->paused >= 0 && f->paused != paused)
    return 0;
  if (f->owners)
    return 0;
  if (f->id_pattern && *f->id_pattern && !like_match(f->id_pattern, id))
    return 0;
  if (f->name_pattern && *f->name_pattern && !like_match(f->name_pattern, id))
    return 0;
  int hits = 0;
  for (int i = 0; i < f->tags.n; i++)
    hits += dag_has_tag(d, f->tags.v[i], f->tags.len[i]);
  if (f->tags.n && (f->tags_all ? hits < f->tags.n : hits == 0))
    return 0;
  return 1;
}

/* GET /dags: the DAG files and the DAGs only the dag table knows (stale),
 * Airflow's filters (paused, tags, patterns, exclude_stale), order_by
 * dag_id, limit/offset and the ?after=NAME cursor. */
static void h_dags_list(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *after = http_req_query(req, "after");
  struct admin_q q;
  struct dag_filter f;
  admin_q_init(&q, req, a->tz);
  admin_q_paging(&q, 50);
  dag_filter_args(&q, &f);
  if (admin_q_fail(&q, resp)) {
    admin_q_free(&q);
    return;
  }
  admin_q_free(&q);
  /* the files, then ids only in the table (DAG files removed) */
  cJSON *arr = cJSON_CreateArray(), *errs = cJSON_CreateArray();
  admin_dags_lock(a);
  size_t nfiles = a->dags ? dag_set_count(a->dags) : 0;
  for (size_t i = 0; a->dags && i < nfiles; i++) {
    const struct dag *d = dag_set_at(a->dags, i);
    if (after && strcmp(d->dag_id, after) <= 0)
      continue;
    cJSON_AddItemToArray(arr, dag_json(a, d));
  }
  for (size_t i = 0; i < a->errs.n; i++) {
    cJSON *eo = cJSON_CreateObject();
    cJSON_AddStringToObject(eo, "file", a->errs.v[i].file);
    cJSON_AddStringToObject(eo, "error", a->errs.v[i].msg);
    cJSON_AddItemToArray(errs, eo);
  }
  admin_dags_unlock(a);

  struct db_conn *c = admin_conn(x);
  if (!c) {
    cJSON_Delete(arr);
    cJSON_Delete(errs);
    return;
  }
  /* DAGs in the table without a file (removed, or only known so far),
   * and which DAGs are paused, in one pass over the dag table */
  struct admin_col gone_cols[] = {
      {"dag_id", 's'}, {"fileloc", 's'}, {"is_paused", 'b'}};
  cJSON *gone = NULL;
  struct db_val gp[] = {DB_V_STR(after ? after : "")};
  if (admin_query_rows(
          c, resp,
          "SELECT dag_id, fileloc, is_paused FROM dag WHERE dag_id > ? "
          "ORDER BY dag_id LIMIT 10000",
          gp, 1, gone_cols, 3, &gone)) {
    cJSON_Delete(arr);
    cJSON_Delete(errs);
    return;
  }
  cJSON *g;
  cJSON_ArrayForEach(g, gone)
  {
    const char *id = admin_obj_str(g, "dag_id");
    int have = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, arr) if (id && admin_obj_str(it, "dag_id") &&
                                    !strcmp(admin_obj_str(it, "dag_id"), id))
        have = 1;
    if (!have && id) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "dag_id", id);
      cJSON_AddNullToObject(o, "description");
      cJSON_AddNullToObject(o, "schedule");
      cJSON_AddNullToObject(o, "next_dagrun_logical_date");
      cJSON_AddArrayToObject(o, "tasks");
      cJSON_AddBoolToObject(o, "is_active", 0);
      cJSON_AddBoolToObject(o, "is_stale", 1);
      cJSON_AddItemToArray(arr, o);
    }
  }
  /* filter (paused from the table: a DAG not in it is not paused) */
  int n = cJSON_GetArraySize(arr);
  for (int i = n - 1; i >= 0; i--) {
    cJSON *d = cJSON_GetArrayItem(arr, i);
    const char *id = admin_obj_str(d, "dag_id");
    int paused = 0;
    cJSON_ArrayForEach(g, gone) if (!strcmp(admin_obj_str(g, "dag_id"), id))
        paused = cJSON_IsTrue(cJSON_GetObjectItem(g, "is_paused"));
    if (!dag_passes(&f, d, id, paused))
      cJSON_DeleteItemFromArray(arr, i);
  }
  cJSON_Delete(gone);
  /* dag_id order across both sources (descending for -dag_id) */
  n = cJSON_GetArraySize(arr);
  admin_sort_by_key(arr, "dag_id", f.desc);
  size_t total = (size_t)n;
  for (int64_t k = 0; k < q.offset && cJSON_GetArraySize(arr) > 0; k++)
    cJSON_DeleteItemFromArray(arr, 0);
  int more = cJSON_GetArraySize(arr) > q.limit;
  while (cJSON_GetArraySize(arr) > q.limit)
    cJSON_DeleteItemFromArray(arr, cJSON_GetArraySize(arr) - 1);
  cJSON_ArrayForEach(g, arr)
  {
    if (dag_add_db(c, resp, g, admin_obj_str(g, "dag_id"))) {
      cJSON_Delete(arr);
      cJSON_Delete(errs);
      return;
    }
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "dags", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)total);
  admin_add_next_after_key(o, more && !f.desc, arr, "dag_id");
  cJSON_AddItemToObject(o, "import_errors", errs);
  admin_reply(resp, 200, o);
}

/* The DAG object for dag_id (files + table), or NULL with the answer set
 * (404, 503). */
cJSON *admin_dag_lookup(struct admin *a, struct db_conn *c,
                        struct http_resp *resp, const char *dag_id)
{
  cJSON *o = NULL;
  admin_dags_lock(a);
  const struct dag *d = a->dags ? dag_set_find(a->dags, dag_id) : NULL;
  if (d)
    o = dag_json(a, d);
  admin_dags_unlock(a);
  if (!o) {
    struct err e = {0};
    int known = 0;
    if (admin_dag_known(a, c, dag_id, &e, &known)) {
      admin_fail_db(resp, &e);
      return NULL;
    }
    if (!known) {
      admin_fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
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

static void h_dag_get(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *o = admin_dag_lookup(a, c, resp, http_req_param(req, "dag_id"));
  if (o)
    admin_reply(resp, 200, o);
}

static void h_dag_patch(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *dag_id = http_req_param(req, "dag_id");
  struct err e = {0};
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "is_paused");
  if (!cJSON_IsBool(p)) {
    cJSON_Delete(b);
    admin_invalid(resp, "body", "is_paused", "bool_type",
                  "expected {\"is_paused\": true} or {\"is_paused\": false}");
    return;
  }
  int paused = cJSON_IsTrue(p);
  cJSON_Delete(b);
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  int known = 0;
  if (admin_dag_known(a, c, dag_id, &e, &known)) {
    admin_fail_db(resp, &e);
    return;
  }
  if (!known) {
    admin_fail(resp, 404, "DAG not found", "no DAG with dag_id '%s'", dag_id);
    return;
  }
  if (sched_set_paused(c, dag_id, paused, &e) != ERR_OK) {
    admin_fail_db(resp, &e);
    return;
  }
  LOG_I(MOD, "dag=%s %s through the admin API", dag_id,
        paused ? "paused" : "unpaused");
  cJSON *o = admin_dag_lookup(a, c, resp, dag_id);
  if (o)
    admin_reply(resp, 200, o);
}

const struct admin_route admin_dag_routes[] = {
    {"GET", "/api/v2/dags", ADMIN_READ, h_dags_list},
    {"GET", "/api/v2/dags/{dag_id}", ADMIN_READ, h_dag_get},
    {"PATCH", "/api/v2/dags/{dag_id}", ADMIN_WRITE, h_dag_patch},
    {"POST", "/api/v2/dags/{dag_id}", ADMIN_WRITE, h_dag_patch},
};
const size_t admin_dag_nroutes =
    sizeof(admin_dag_routes) / sizeof(admin_dag_routes[0]);
