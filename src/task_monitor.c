/* task_monitor.c - what the monitoring task types (drift, label_feedback)
 * share: the model field, the registry, and starting the CT DAG when a
 * check fails (see task_monitor_int.h).
 *
 * Why a cool-down: a drifted population stays drifted after retraining
 * (the CT DAG trains on the feature store's month, not on the live
 * requests), so an hourly monitor would start a retraining every hour.
 * The cool-down looks at dag_run (the scheduler's own record of what was
 * started, with its conf) instead of keeping state of its own, so it
 * holds across restarts and across daemons sharing the database.
 */
#include "task_monitor_int.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/db.h"
#include "task_model_int.h"

enum err_code task_monitor_registry(const struct task_ctx *t,
                                    struct registry **out, struct err *e)
{
  if (t->cfg && t->cfg->models_registry_dir[0])
    return registry_open_cfg(t->cfg, out, e);
  return registry_open(MONITOR_DEFAULT_REGISTRY, out, e);
}

enum err_code task_monitor_check_common(const struct task_ctx *t, struct err *e)
{
  long v;
  const cJSON *c = t->field_json ? t->field_json(t, "conf") : NULL;
  if (c && !cJSON_IsNull(c) && !cJSON_IsObject(c))
    return err_set(e, ERR_INVAL, "field 'conf': expected a map");
  return task_field_int(t, "cooldown_minutes", 0, 0, 525600, &v, e);
}

int task_monitor_has_trigger(const struct task_ctx *t)
{
  char tmp[64];
  const char *s = NULL;
  struct err e;
  if (task_field_text(t, "trigger_dag", tmp, sizeof(tmp), &s, &e) != ERR_OK)
    return 0;
  return s && *s;
}

/* Runs of dag_id queued in the last `minutes` minutes with the same
 * reason and model in their conf. */
static enum err_code recent_runs(const struct task_ctx *t, const char *dag,
                                 const char *reason, const char *model,
                                 long minutes, int64_t *n, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(t->db, MONITOR_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[] = {DB_V_STR(dag), DB_V_INT(minutes), DB_V_STR(reason),
                       DB_V_STR(model)};
  rc = db_query_i64(c,
                    "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND "
                    "queued_at >= UTC_TIMESTAMP(6) - INTERVAL ? MINUTE AND "
                    "JSON_VALUE(conf, '$.reason') = ? AND "
                    "JSON_VALUE(conf, '$.model') = ?",
                    p, 4, n, e);
  db_release(t->db, c);
  return rc;
}

static int date_ok(const char *s)
{
  if (strlen(s) < 10)
    return 0;
  for (int i = 0; i < 10; i++)
    if (i == 4 || i == 7 ? s[i] != '-' : (s[i] < '0' || s[i] > '9'))
      return 0;
  return s[10] == '\0' || s[10] == 'T' || s[10] == ' ';
}

enum err_code task_monitor_trigger(struct task_ctx *t, const cJSON *why,
                                   int *started, char *run_id, int run_id_cap,
                                   struct err *e)
{
  char tmp[64], date[64];
  const char *raw;
  char *dag = NULL, *ld = NULL;
  cJSON *conf = NULL;
  long cooldown = 0;
  *started = 0;
  if (run_id_cap > 0)
    run_id[0] = '\0';
  enum err_code rc = task_field_text(t, "trigger_dag", tmp, sizeof(tmp),
                                     &raw, e);
  if (rc != ERR_OK)
    return rc;
  if (!raw || !*raw)
    return err_set(e, ERR_INVAL, "field 'trigger_dag' is not set");
  if ((rc = task_render(t, "trigger_dag", raw, TMPL_PLAIN, &dag, NULL, e)))
    goto out;
  if ((rc = task_field_int(t, "cooldown_minutes", 0, 0, 525600, &cooldown,
                           e)))
    goto out;
  if ((rc = task_field_text(t, "logical_date", tmp, sizeof(tmp), &raw, e)))
    goto out;
  if (raw) {
    if ((rc = task_render(t, "logical_date", raw, TMPL_PLAIN, &ld, NULL, e)))
      goto out;
    snprintf(date, sizeof(date), "%s", ld);
  } else {
    /* The run's date plus the current wall time in the scheduler's zone
     * (logical dates are local), so it does not collide with the day's
     * own CT run.  UTC if the zone cannot be loaded. */
    struct cron_tz *tz = NULL;
    struct err te = {0};
    if (t->cfg && cron_tz_load(&tz, t->cfg->sched_timezone, &te) != ERR_OK)
      tz = NULL;
    struct cron_civil cv;
    cron_tz_civil(tz, time(NULL), &cv);
    cron_tz_destroy(tz);
    snprintf(date, sizeof(date), "%.10sT%02d:%02d:%02d", t->ds ? t->ds : "",
             cv.hour, cv.minute, cv.second);
  }
  if (!date_ok(date)) {
    rc = err_set(e, ERR_INVAL, "field 'logical_date': '%.40s' is not a date "
                 "(YYYY-MM-DD)", date);
    goto out;
  }
  const cJSON *c = t->field_json ? t->field_json(t, "conf") : NULL;
  if (c && cJSON_IsObject(c)) {
    if ((rc = task_render_json(t, c, "conf", &conf, e)))
      goto out;
  } else if (!(conf = cJSON_CreateObject())) {
    rc = err_set(e, ERR_NOMEM, "out of memory");
    goto out;
  }
  for (const cJSON *it = why ? why->child : NULL; it; it = it->next) {
    cJSON *d = cJSON_Duplicate(it, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(conf, it->string);
    if (!d || !cJSON_AddItemToObject(conf, it->string, d)) {
      cJSON_Delete(d);
      rc = err_set(e, ERR_NOMEM, "out of memory building the conf");
      goto out;
    }
  }
  if (cooldown > 0) {
    const char *reason = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(conf, "reason"));
    const char *model = cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(conf, "model"));
    int64_t n = 0;
    if ((rc = recent_runs(t, dag, reason ? reason : "", model ? model : "",
                          cooldown, &n, e)))
      goto out;
    if (n > 0) {
      task_logf(t, "not starting %s: %lld run(s) started for the same "
                "reason in the last %ld minutes (cooldown_minutes)", dag,
                (long long)n, cooldown);
      goto out;
    }
  }
  if (!t->trigger) {
    rc = err_set(e, ERR_UNSUPPORTED, "cannot start DAG '%s': triggering "
                 "runs is not available here", dag);
    goto out;
  }
  char rid[256] = "";
  struct err te;
  err_clear(&te);
  rc = t->trigger(t, dag, date, conf, rid, (int)sizeof(rid), &te);
  char *ct = cJSON_PrintUnformatted(conf);
  if (rc == ERR_EXISTS) {
    task_logf(t, "DAG %s already has a run for %s: %s", dag, date, te.msg);
    rc = ERR_OK;
  } else if (rc != ERR_OK) {
    err_set(e, rc, "cannot start DAG '%s' for %s: %s", dag, date, te.msg);
  } else {
    *started = 1;
    if (run_id_cap > 0)
      snprintf(run_id, (size_t)run_id_cap, "%s", rid);
    task_logf(t, "started DAG %s run %s for %s with conf %s", dag, rid,
              date, ct ? ct : "?");
  }
  cJSON_free(ct);
out:
  free(dag);
  free(ld);
  cJSON_Delete(conf);
  return rc;
}

enum err_code task_monitor_begin(const struct task_ctx *t, const char *what,
                                 char **model, struct registry **reg,
                                 int *prod, struct err *e)
{
  enum err_code rc;
  *model = NULL;
  *reg = NULL;
  *prod = 0;
  if ((rc = task_model_name(t, model, e)))
    return rc;
  if (!t->db) {
    rc = err_set(e, ERR_UNSUPPORTED, "%s: no database here", what);
  } else if ((rc = task_monitor_registry(t, reg, e)) == ERR_OK) {
    rc = registry_alias_get(*reg, *model, REGISTRY_PRODUCTION, prod, e);
    if (rc == ERR_NOTFOUND) {
      *prod = 0;
      rc = ERR_OK;
    }
  }
  if (rc) {
    registry_close(*reg);
    free(*model);
    *reg = NULL;
    *model = NULL;
  }
  return rc;
}

enum err_code task_monitor_fire(struct task_ctx *t, const cJSON *why,
                                struct err *e, const char *fmt, ...)
{
  if (!why)
    return err_set(e, ERR_NOMEM, "out of memory building the trigger conf");
  if (!task_monitor_has_trigger(t)) {
    char msg[ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return err_set(e, ERR_STATE, "%s; no trigger_dag set)", msg);
  }
  int started;
  char run_id[256];
  return task_monitor_trigger(t, why, &started, run_id, (int)sizeof(run_id),
                              e);
}
