/* task_trigger.c - the `trigger_dag` task type: start a run of another
 * DAG (Airflow's TriggerDagRunOperator).
 *
 * The task only records the request through ctx->trigger, which the
 * scheduler implements (a queued dag_run row, picked up like a manual
 * trigger); it does not wait for the new run.  String values in `conf`
 * are templates rendered as plain text, so a CT DAG can pass its own
 * {{ ds }} or {{ conf.X }} on.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/task.h"

static const struct task_field trigger_fields[] = {
    {.name = "dag_id", .required = 1, .templated = 1},
    {.name = "conf", .templated = 1, .kind = TASK_F_MAP},
    {.name = "logical_date", .templated = 1},
    {.name = NULL},
};

#define TRIGGER_DAG_ID_MAX 250
#define TRIGGER_RUN_ID_MAX 256

static int dag_id_ok(const char *s)
{
  size_t n = 0;
  for (; s[n]; n++) {
    char c = s[n];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return n > 0 && n <= TRIGGER_DAG_ID_MAX;
}

static int digits(const char *s, int n)
{
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

/* YYYY-MM-DD, optionally followed by a time ("T..." or " ..."), which the
 * scheduler's trigger parses. */
static int date_ok(const char *s)
{
  if (strlen(s) < 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2)
      || s[7] != '-' || !digits(s + 8, 2))
    return 0;
  int m = (s[5] - '0') * 10 + (s[6] - '0');
  int d = (s[8] - '0') * 10 + (s[9] - '0');
  if (m < 1 || m > 12 || d < 1 || d > 31)
    return 0;
  return s[10] == '\0' || s[10] == 'T' || s[10] == ' ';
}

static enum err_code trigger_run(struct task_ctx *t, struct err *e)
{
  char tmp[64];
  const char *raw;
  char *dag = NULL, *date = NULL;
  cJSON *conf = NULL;
  enum err_code rc = task_field_text(t, "dag_id", tmp, sizeof(tmp), &raw, e);
  if (rc != ERR_OK)
    return rc;
  if (!raw || !*raw)
    return err_set(e, ERR_INVAL, "field 'dag_id' is required");
  rc = task_render(t, "dag_id", raw, TMPL_PLAIN, &dag, NULL, e);
  if (rc != ERR_OK)
    goto out;
  if (!dag_id_ok(dag)) {
    rc = err_set(e, ERR_INVAL, "field 'dag_id': '%.80s' is not a DAG id "
                 "(letters, digits, _ . -)", dag);
    goto out;
  }
  rc = task_field_text(t, "logical_date", tmp, sizeof(tmp), &raw, e);
  if (rc != ERR_OK)
    goto out;
  rc = task_render(t, "logical_date", raw ? raw : "{{ ds }}", TMPL_PLAIN,
                   &date, NULL, e);
  if (rc != ERR_OK)
    goto out;
  if (!date_ok(date)) {
    rc = err_set(e, ERR_INVAL, "field 'logical_date': '%.40s' is not a "
                 "date (YYYY-MM-DD)", date);
    goto out;
  }
  const cJSON *c = t->field_json ? t->field_json(t, "conf") : NULL;
  if (c && !cJSON_IsNull(c)) {
    if (!cJSON_IsObject(c)) {
      rc = err_set(e, ERR_INVAL, "field 'conf': expected a map");
      goto out;
    }
    rc = task_render_json(t, c, "conf", &conf, e);
    if (rc != ERR_OK)
      goto out;
  }
  if (!t->trigger) {
    rc = err_set(e, ERR_UNSUPPORTED, "trigger_dag: triggering runs is not "
                 "available here");
    goto out;
  }
  char run_id[TRIGGER_RUN_ID_MAX] = "";
  rc = t->trigger(t, dag, date, conf, run_id, (int)sizeof(run_id), e);
  if (rc != ERR_OK) {
    err_prefix(e, "trigger_dag '%s' for %s", dag, date);
    goto out;
  }
  task_logf(t, "triggered DAG %s for %s: run %s", dag, date,
            run_id[0] ? run_id : "(id not reported)");
out:
  cJSON_Delete(conf);
  free(dag);
  free(date);
  return rc;
}

static enum err_code trigger_check(const struct task_ctx *t, struct err *e)
{
  char tmp[64];
  const char *s;
  enum err_code rc = task_field_text(t, "dag_id", tmp, sizeof(tmp), &s, e);
  if (rc != ERR_OK)
    return rc;
  if (!s || !*s)
    return err_set(e, ERR_INVAL, "field 'dag_id' is required");
  if (!strstr(s, "{{") && !dag_id_ok(s))
    return err_set(e, ERR_INVAL, "field 'dag_id': '%.80s' is not a DAG id "
                   "(letters, digits, _ . -)", s);
  rc = task_field_text(t, "logical_date", tmp, sizeof(tmp), &s, e);
  if (rc != ERR_OK)
    return rc;
  if (s && !strstr(s, "{{") && !date_ok(s))
    return err_set(e, ERR_INVAL, "field 'logical_date': '%.40s' is not a "
                   "date (YYYY-MM-DD)", s);
  const cJSON *c = t->field_json ? t->field_json(t, "conf") : NULL;
  if (c && !cJSON_IsNull(c) && !cJSON_IsObject(c))
    return err_set(e, ERR_INVAL, "field 'conf': expected a map");
  return ERR_OK;
}

const struct task_type task_type_trigger_dag = {
    .name = "trigger_dag",
    .fields = trigger_fields,
    .check = trigger_check,
    .run = trigger_run,
};
