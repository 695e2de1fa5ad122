/* admin_models.c - the admin API's models (admin.h): the registry's
 * models and versions with their deployments, trials, promote and
 * rollback, drift reports and the live serving figures.
 *
 * Models come from the registry files (no database needed to list them:
 * the deployment rows are added when MariaDB answers); serving figures
 * from the sampler (admin_stats.c).
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
#include "mlopsd/compare.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/serving.h"
#include "mlopsd/task.h"

#define MOD "admin"

/* ---- models ----------------------------------------------------------------
 */

/* 1 and answer 404 when name is not a model of the registry. */
static int model_missing(struct admin *a, struct http_resp *resp,
                         const char *name, int **versions, size_t *nv)
{
  struct err e = {0};
  *versions = NULL;
  *nv = 0;
  if (!fsx_name_valid(name)) {
    admin_fail(resp, 404, "model not found", "'%.128s' is not a model name",
               name);
    return 1;
  }
  enum err_code rc = registry_list_versions(a->reg, name, versions, nv, &e);
  if (rc == ERR_NOTFOUND || rc == ERR_INVAL) {
    admin_fail(resp, 404, "model not found", "no model '%s' in the registry",
               name);
    return 1;
  }
  if (rc != ERR_OK) {
    admin_fail(resp, 500, "registry error", "%s", e.msg);
    return 1;
  }
  return 0;
}

/* model_missing for the handlers that need only the check, not the
 * versions. */
static int model_unknown(struct admin *a, struct http_resp *resp,
                         const char *name)
{
  int *vs = NULL;
  size_t nv = 0;
  int r = model_missing(a, resp, name, &vs, &nv);
  free(vs);
  return r;
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
  cJSON_AddItemToObject(dst, key,
                        v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
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
  add_copy(o, meta, "importance"); /* explain.h: global importance */
  cJSON *lin = cJSON_AddObjectToObject(o, "lineage");
  static const char *const lkeys[] = {
      "logical_date",   "dag_id",      "dag_run_id",  "best_run",
      "training_rows",  "train_rows",  "val_rows",    "trial_count",
      "grid_size",      "data_sha256", "spec_sha256", "xgboost_version",
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
/* gate: the validate gate's numbers (sql/migrations/070), null on rows
 * the paired gate did not write */
#define DEPLOY_COLS_SQL                                                        \
  "SELECT id, model, alias, from_version, to_version, action, reason, "        \
  "actor, dag_run_id, " ADMIN_TS("created_at") ", IF(gate_n IS NULL, NULL, "   \
  "JSON_OBJECT('n', gate_n, 'difference', gate_difference, 'interval', "       \
  "JSON_ARRAY(gate_ci_low, gate_ci_high), 'level', gate_level, 'p_value', "    \
  "gate_p_value, 'max_regression', gate_max_regression, 'min_rows', "          \
  "gate_min_rows, 'candidate_score', gate_candidate_score, "                   \
  "'production_score', gate_production_score, 'metric', gate_metric, "         \
  "'method', gate_method)) FROM deployment "
static const struct admin_col deploy_cols[] = {
    {"id", 'i'},           {"model", 's'},      {"alias", 's'},
    {"from_version", 'i'}, {"to_version", 'i'}, {"action", 's'},
    {"reason", 's'},       {"actor", 's'},      {"dag_run_id", 'i'},
    {"created_at", 's'},   {"gate", 'j'},
};
#define NDEPLOYCOLS (int)(sizeof(deploy_cols) / sizeof(deploy_cols[0]))

static void h_models_list(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *after = http_req_query(req, "after");
  struct admin_page pg = {0};
  struct err e = {0};
  char **names = NULL;
  size_t n = 0;
  pg.named = 1;
  if (admin_page_args(req, resp, 100, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  if (registry_list_models(a->reg, &names, &n, &e) != ERR_OK) {
    admin_fail(resp, 500, "registry error", "%s", e.msg);
    return;
  }
  qsort(names, n, sizeof(*names), cmp_str);
  cJSON *arr = cJSON_CreateArray();
  int more = 0;
  /* the deployment table is optional here: files answer without it */
  struct db_conn *c = NULL;
  struct err de = {0};
  int db_ok = (c = admin_conn_opt(x, &de)) != NULL;
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
    if (registry_alias_get(a->reg, names[i], REGISTRY_PRODUCTION, &prod, &e) ==
        ERR_OK)
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
      struct admin_rows rs = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0,
                              0};
      if (db_query(c,
                   DEPLOY_COLS_SQL "WHERE model = ? AND alias = 'production' "
                                   "AND action <> 'skip' ORDER BY id DESC "
                                   "LIMIT 1",
                   p, 1, admin_rows_cb, &rs, NULL, &de) != ERR_OK)
        db_ok = 0;
      if (cJSON_GetArraySize(rs.arr) > 0)
        latest = cJSON_DetachItemFromArray(rs.arr, 0);
      cJSON_Delete(rs.arr);
    }
    cJSON_AddItemToObject(m, "last_deployment",
                          latest ? latest : cJSON_CreateNull());
    cJSON_AddItemToArray(arr, m);
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddItemToObject(o, "models", arr);
  cJSON_AddNumberToObject(o, "total_entries", (double)n);
  admin_add_next_after_key(o, more, arr, "name");
  if (!db_ok)
    cJSON_AddStringToObject(o, "deployments_unavailable", de.msg);
  registry_strv_free(names);
  admin_reply(resp, 200, o);
}

/* Answer 200 with o, its deployment fields null and why they are missing
 * (MariaDB unavailable): the registry part is still worth showing. */
static void reply_no_deployments(struct http_resp *resp, cJSON *o,
                                 const char *why)
{
  cJSON_AddNullToObject(o, "deployments");
  cJSON_AddNullToObject(o, "production_since");
  cJSON_AddStringToObject(o, "deployments_unavailable", why);
  admin_reply(resp, 200, o);
}

static void h_model_get(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *name = http_req_param(req, "name");
  struct err e = {0};
  int *vs = NULL, prod = 0;
  size_t nv = 0;
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
  /* the shadow challenger's version, if any (the console asks compare
   * only then) */
  int stg = 0;
  struct err se = {0};
  if (registry_alias_get(a->reg, name, PIPELINE_STAGING, &stg, &se) ==
      ERR_OK)
    cJSON_AddNumberToObject(o, "staging_version", stg);
  else
    cJSON_AddNullToObject(o, "staging_version");
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
      metric = admin_obj_str(sel, "metric");
    }
    cJSON_AddItemToArray(vers, v);
  }
  free(vs);
  if (metric)
    cJSON_AddStringToObject(o, "selection_metric", metric);
  else
    cJSON_AddNullToObject(o, "selection_metric");
  /* deployments (newest first, keyset by id), from MariaDB */
  struct admin_page pg = {0};
  if (admin_page_args(req, resp, 50, ADMIN_LIMIT_MAX, &pg) < 0) {
    cJSON_Delete(o);
    return;
  }
  struct db_conn *c = NULL;
  if (!(c = admin_conn_opt(x, &e))) {
    reply_no_deployments(resp, o, e.msg);
    return;
  }
  struct admin_rows rs = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0, 0};
  struct db_val p[] = {DB_V_STR(name),
                       DB_V_INT(pg.before ? pg.before : INT64_MAX),
                       DB_V_INT(pg.limit + 1)};
  enum err_code rc = db_query(c,
                              DEPLOY_COLS_SQL "WHERE model = ? AND id < ? "
                                              "ORDER BY id DESC LIMIT ?",
                              p, 3, admin_rows_cb, &rs, NULL, &e);
  cJSON *since = NULL;
  if (rc == ERR_OK) {
    struct admin_rows r2 = {deploy_cols, NDEPLOYCOLS, cJSON_CreateArray(), 0,
                            0};
    rc = db_query(c,
                  DEPLOY_COLS_SQL "WHERE model = ? AND alias = 'production' "
                                  "AND action <> 'skip' ORDER BY id DESC "
                                  "LIMIT 1",
                  p, 1, admin_rows_cb, &r2, NULL, &e);
    if (cJSON_GetArraySize(r2.arr) > 0)
      since = cJSON_DetachItemFromArray(r2.arr, 0);
    cJSON_Delete(r2.arr);
  }
  if (rc != ERR_OK) {
    cJSON_Delete(rs.arr);
    cJSON_Delete(since);
    reply_no_deployments(resp, o, e.msg);
    return;
  }
  struct admin_page pg2 = pg;
  pg2.after = 0;
  admin_page_finish(o, "deployments", rs.arr, &pg2, 0);
  /* when production last changed: the latest change that led to it */
  if (since && has_prod && admin_obj_i64(since, "to_version") == prod) {
    cJSON_AddStringToObject(o, "production_since",
                            admin_obj_str(since, "created_at"));
    cJSON_AddItemToObject(o, "production_change", since);
  } else {
    cJSON_AddNullToObject(o, "production_since");
    cJSON_Delete(since);
  }
  admin_reply(resp, 200, o);
}

/* The trial runs of a version: the runs named like its best_run with the
 * trial suffix "-tNN" replaced, i.e. sharing the run prefix. */
static void h_trials(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *name = http_req_param(req, "name");
  int64_t v;
  struct err e = {0};
  if (model_unknown(a, resp, name))
    return;
  if (admin_parse_i64(http_req_param(req, "version"), 1, INT_MAX, &v) ||
      !registry_version_exists(a->reg, name, (int)v)) {
    admin_fail(resp, 404, "version not found", "model '%s' has no version '%s'",
               name, http_req_param(req, "version"));
    return;
  }
  cJSON *meta = NULL;
  char prefix[REGISTRY_NAME_MAX + 8] = "";
  const char *best = NULL;
  if (registry_read_meta(a->reg, name, (int)v, &meta, &e) == ERR_OK &&
      (best = admin_obj_str(meta, "best_run")) != NULL) {
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
  if (admin_obj_str(sel, "metric"))
    cJSON_AddStringToObject(o, "selection_metric",
                            admin_obj_str(sel, "metric"));
  else
    cJSON_AddNullToObject(o, "selection_metric");
  cJSON *arr = cJSON_AddArrayToObject(o, "trials");
  char **ids = NULL;
  size_t n = 0;
  if (prefix[0] && registry_list_runs(a->reg, name, &ids, &n, &e) == ERR_OK) {
    for (size_t i = 0; i < n && cJSON_GetArraySize(arr) < ADMIN_LIMIT_MAX;
         i++) {
      if (strncmp(ids[i], prefix, strlen(prefix)) != 0)
        continue;
      cJSON *t = cJSON_CreateObject();
      cJSON_AddStringToObject(t, "run_id", ids[i]);
      cJSON_AddBoolToObject(t, "is_best", best && !strcmp(ids[i], best));
      static const char *const files[] = {"params", "metrics"};
      for (int f = 0; f < 2; f++) {
        char file[32];
        snprintf(file, sizeof(file), "%s.json", files[f]);
        /* a missing, unreadable or oversized file shows as null (both
         * registry kinds: registry_run_read) */
        cJSON *j = NULL;
        if (registry_run_read(a->reg, name, ids[i], file, &j, NULL))
          j = NULL;
        cJSON_AddItemToObject(t, files[f], j ? j : cJSON_CreateNull());
      }
      cJSON_AddItemToArray(arr, t);
    }
    registry_strv_free(ids);
  }
  cJSON_Delete(meta);
  admin_reply(resp, 200, o);
}

/* ---- promote / rollback -----------------------------------------------------
 */

/* The deployment bookkeeping is the ML CLI's (pipeline.h): the same rows,
 * the same rollback history (deploy and promote push a version, rollback
 * pops one), whoever moves the alias.  Those functions acquire their own
 * connection from our pool, so no connection is held around them. */

/* 0 when MariaDB answers within the admin timeout; else the answer (503)
 * is set: an alias change that cannot be recorded is not made. */
static int db_reachable(struct admin_call *x)
{
  if (!admin_conn(x))
    return -1;
  admin_conn_release(x);
  return 0;
}

/* Point production of name at `to`, record it, reload the served model.
 * If the record cannot be written the alias is put back.  Answers. */
static void do_deploy(struct admin *a, struct http_resp *resp, const char *name,
                      int to, const char *action, const char *reason,
                      const struct pipeline_verdict *v,
                      const struct pipeline_gate_opts *g)
{
  struct err e = {0};
  int prev = 0;
  if (registry_alias_set(a->reg, name, REGISTRY_PRODUCTION, to, &prev, &e) !=
      ERR_OK) {
    admin_fail(resp, e.code == ERR_NOTFOUND ? 404 : 500,
               e.code == ERR_NOTFOUND ? "version not found" : "registry error",
               "%s", e.msg);
    return;
  }
  /* v: the paired test's numbers beside the decision (from shadow) */
  if (pipeline_record_gate(a->db, name, REGISTRY_PRODUCTION, prev, to, action,
                           reason, "admin-api", NULL, v, g, &e) != ERR_OK) {
    struct err ue = {0};
    enum err_code u =
        prev > 0
            ? registry_alias_set(a->reg, name, REGISTRY_PRODUCTION, prev, NULL,
                                 &ue)
            : registry_alias_delete(a->reg, name, REGISTRY_PRODUCTION, &ue);
    LOG_E(MOD, "model=%s %s to %d not recorded (%s); alias %s", name, action,
          to, e.msg, u ? "could not be restored" : "restored");
    if (u)
      admin_fail(resp, 500, "deployment not recorded",
                 "%s; and the alias could not be restored to %d: %s", e.msg,
                 prev, ue.msg);
    else if (e.code == ERR_DB_CONN || e.code == ERR_TIMEOUT)
      admin_fail(resp, 503, "database unavailable", "%s; production left at %d",
                 e.msg, prev);
    else
      admin_fail(resp, 500, "deployment not recorded",
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
  admin_reply(resp, 200, o);
}

static int body_version(const cJSON *b, int64_t *v)
{
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(b, "version");
  if (cJSON_IsNumber(x) && x->valuedouble >= 1 && x->valuedouble <= INT_MAX &&
      x->valuedouble == floor(x->valuedouble)) {
    *v = (int64_t)x->valuedouble;
    return 0;
  }
  if (cJSON_IsString(x))
    return admin_parse_i64(x->valuestring, 1, INT_MAX, v);
  return -1;
}

/* The optional "reason" of a body, else def, into buf. */
static void body_reason(const cJSON *b, const char *def, char *buf, size_t cap)
{
  const char *r = admin_obj_str(b, "reason");
  snprintf(buf, cap, "%.1000s", r && *r ? r : def);
}

/* The shadow challenger of name against production (compare.h), or
 * answers the failure and returns -1. */
static int shadow_compare(struct admin_call *x, const char *name,
                          struct compare_result *r)
{
  struct admin *a = x->a;
  int prod, sh;
  struct err e = {0};
  if (model_unknown(a, x->resp, name))
    return -1;
  if (compare_versions(a->reg, name, &prod, &sh, &e) != ERR_OK) {
    admin_fail(x->resp, 409, "no shadow challenger", "%s", e.msg);
    return -1;
  }
  if (db_reachable(x))
    return -1;
  if (compare_run(a->db, a->cfg->models_specs_dir, name, prod, sh, r, &e) !=
      ERR_OK) {
    admin_fail_db(x->resp, &e);
    return -1;
  }
  return 0;
}

/* POST promote {"from_shadow": true}: the staging version replaces
 * production only when the validate gate's rule passes on the labelled
 * shadow pairs; the decision is recorded either way. */
static void promote_shadow(struct admin_call *x, const char *name,
                           const char *reason)
{
  struct compare_result r;
  struct pipeline_verdict v;
  struct pipeline_gate_opts g;
  struct err e = {0};
  char why[1200];
  if (shadow_compare(x, name, &r))
    return;
  compare_verdict(&r, &v, &g);
  snprintf(why, sizeof(why), "%.700s: %s", reason, r.reason);
  if (!r.pass) {
    if (pipeline_record_gate(x->a->db, name, REGISTRY_PRODUCTION,
                             r.production, r.shadow, "skip", why,
                             "admin-api", NULL, &v, &g, &e) != ERR_OK)
      LOG_W(MOD, "model=%s refused promotion from shadow not recorded: %s",
            name, e.msg);
    admin_fail(x->resp, 409, "promotion refused",
               "shadow version %d not promoted over production %d: %s",
               r.shadow, r.production, r.reason);
    return;
  }
  do_deploy(x->a, x->resp, name, r.shadow, "promote", why, &v, &g);
}

static void h_compare(struct admin_call *x)
{
  struct compare_result r;
  if (shadow_compare(x, http_req_param(x->req, "name"), &r))
    return;
  cJSON *o = compare_json(&r);
  if (!o) {
    admin_fail(x->resp, 500, "out of memory", NULL);
    return;
  }
  admin_reply(x->resp, 200, o);
}

static void h_promote(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *name = http_req_param(req, "name");
  int prod = 0;
  int64_t v;
  struct err e = {0};
  char why[1024];
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(b, "from_shadow"))) {
    body_reason(b, "promoted from shadow through the admin API", why,
                sizeof(why));
    cJSON_Delete(b);
    promote_shadow(x, name, why);
    return;
  }
  int bad = body_version(b, &v);
  body_reason(b, "promoted through the admin API", why, sizeof(why));
  cJSON_Delete(b);
  if (bad) {
    admin_invalid(resp, "body", "version", "int_type",
                  "expected {\"version\": N} with N a version number");
    return;
  }
  if (model_unknown(a, resp, name))
    return;
  if (!registry_version_exists(a->reg, name, (int)v)) {
    admin_fail(resp, 404, "version not found", "model '%s' has no version %lld",
               name, (long long)v);
    return;
  }
  if (registry_alias_get(a->reg, name, REGISTRY_PRODUCTION, &prod, &e) ==
          ERR_OK &&
      prod == v) {
    admin_fail(resp, 409, "already production",
               "version %lld of '%s' is already production", (long long)v,
               name);
    return;
  }
  if (db_reachable(x))
    return;
  do_deploy(a, resp, name, (int)v, "promote", why, NULL, NULL);
}

/* Rollback: back to the version production pointed at before its current
 * one, as the deployment history says (pipeline_previous_version). */
static void h_rollback(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *name = http_req_param(req, "name");
  int cur = 0, prev = 0, now = 0;
  struct err e = {0};
  char why[1024];
  cJSON *b = admin_body_object(req, resp);
  if (!b)
    return;
  body_reason(b, "rolled back through the admin API", why, sizeof(why));
  cJSON_Delete(b);
  if (model_unknown(a, resp, name))
    return;
  if (db_reachable(x))
    return;
  enum err_code rc = pipeline_previous_version(a->db, name, REGISTRY_PRODUCTION,
                                               &cur, &prev, &e);
  if (rc == ERR_NOTFOUND) {
    admin_fail(resp, 409, "nothing to roll back", "%s", e.msg);
    return;
  }
  if (rc != ERR_OK) {
    admin_fail_db(resp, &e);
    return;
  }
  struct err ae = {0};
  if (registry_alias_get(a->reg, name, REGISTRY_PRODUCTION, &now, &ae) ==
          ERR_OK &&
      now != cur)
    LOG_W(MOD,
          "model=%s production is %d but the deployment table last "
          "recorded %d; rolling back to %d",
          name, now, cur, prev);
  if (!registry_version_exists(a->reg, name, prev)) {
    admin_fail(resp, 409, "cannot roll back",
               "the previous production version %d of '%s' no longer exists",
               prev, name);
    return;
  }
  do_deploy(a, resp, name, prev, "rollback", why, NULL, NULL);
}

/* ---- drift -----------------------------------------------------------------
 */

static const struct admin_col drift_cols[] = {
    {"id", 'i'},        {"version", 'i'}, {"window_rows", 'i'}, {"scores", 'j'},
    {"max_score", 'f'}, {"verdict", 's'}, {"created_at", 's'},
};

static void h_drift(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_req *req = x->req;
  struct http_resp *resp = x->resp;
  const char *name = http_req_param(req, "name");
  struct admin_page pg = {0};
  if (admin_page_args(req, resp, 100, ADMIN_LIMIT_MAX, &pg) < 0)
    return;
  if (model_unknown(a, resp, name))
    return;
  struct db_conn *c = admin_conn(x);
  if (!c)
    return;
  cJSON *arr;
  struct db_val p[] = {DB_V_STR(name), DB_V_INT(0), DB_V_INT(pg.limit + 1)};
  int r;
  if (pg.after) {
    p[1] = DB_V_INT(pg.after);
    r = admin_query_rows(
        c, resp,
        "SELECT id, version, window_rows, scores, max_score, "
        "verdict, " ADMIN_TS(
            "created_at") " FROM drift_report WHERE "
                          "model = ? AND id > ? ORDER BY id ASC LIMIT ?",
        p, 3, drift_cols, 7, &arr);
  } else {
    p[1] = DB_V_INT(pg.before ? pg.before : INT64_MAX);
    r = admin_query_rows(
        c, resp,
        "SELECT id, version, window_rows, scores, max_score, "
        "verdict, " ADMIN_TS(
            "created_at") " FROM drift_report WHERE "
                          "model = ? AND id < ? ORDER BY id DESC LIMIT ?",
        p, 3, drift_cols, 7, &arr);
  }
  if (r)
    return;
  /* a threshold stored with the scores wins; else the drift task's of a
   * DAG checking this model */
  double thr = NAN;
  cJSON *it;
  cJSON_ArrayForEach(it, arr)
  {
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "scores");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "threshold");
    if (cJSON_IsNumber(t)) {
      thr = t->valuedouble;
      break;
    }
  }
  if (isnan(thr)) {
    admin_dags_lock(a);
    for (size_t i = 0; a->dags && i < dag_set_count(a->dags) && isnan(thr);
         i++) {
      const struct dag *d = dag_set_at(a->dags, i);
      for (size_t k = 0; k < d->ntasks; k++) {
        const struct dag_task *t = &d->tasks[k];
        const char *m = dag_task_role_str(t, TASK_ROLE_MODEL),
                   *th = dag_task_role_str(t, TASK_ROLE_DRIFT_THRESHOLD);
        if (m && th && !strcmp(m, name)) {
          thr = strtod(th, NULL);
          break;
        }
      }
    }
    admin_dags_unlock(a);
  }
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "model", name);
  if (isfinite(thr))
    cJSON_AddNumberToObject(o, "threshold", thr);
  else
    cJSON_AddNullToObject(o, "threshold");
  admin_page_finish(o, "reports", arr, &pg, pg.after != 0);
  admin_reply(resp, 200, o);
}

/* ---- serving
 * ----------------------------------------------------------------- */

static void h_serving(struct admin_call *x)
{
  struct admin *a = x->a;
  struct http_resp *resp = x->resp;
  if (!a->stats) {
    admin_fail(resp, 503, "serving figures unavailable",
               "no metrics registry is attached to the admin API");
    return;
  }
  cJSON *o = admin_stats_json(a->stats);
  if (!o) {
    admin_fail(resp, 500, "out of memory", NULL);
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
  admin_reply(resp, 200, o);
}

const struct admin_route admin_model_routes[] = {
    {"GET", "/api/v2/models", ADMIN_READ, h_models_list},
    {"GET", "/api/v2/models/{name}", ADMIN_READ, h_model_get},
    {"GET", "/api/v2/models/{name}/versions/{version}/trials", ADMIN_READ,
     h_trials},
    {"GET", "/api/v2/models/{name}/drift", ADMIN_READ, h_drift},
    {"GET", "/api/v2/models/{name}/compare", ADMIN_READ, h_compare},
    {"POST", "/api/v2/models/{name}/promote", ADMIN_WRITE, h_promote},
    {"POST", "/api/v2/models/{name}/rollback", ADMIN_WRITE, h_rollback},
    {"GET", "/api/v2/serving", ADMIN_READ, h_serving},
};
const size_t admin_model_nroutes =
    sizeof(admin_model_routes) / sizeof(admin_model_routes[0]);
