/* task_deploy.c - the `deploy` task type: point alias `production` of a
 * model at a version and record the change in `deployment`.
 *
 * YAML:  - {id: deploy, type: deploy, model: NAME, version: staging}
 *          (version optional: a number; "latest", the default, the latest
 *          version; or an alias name: the version it points at.  The CT
 *          and CD DAGs deploy `staging`, which only the validate task
 *          moves, to a version that passed the gate.)
 *
 * The alias file is replaced atomically (registry_alias_set); the server
 * polls it and swaps the version in on its own (serving.h), so this task
 * never talks to the server.  Then a row (model, alias, from_version,
 * to_version, action 'deploy', reason, actor "dag:DAG_ID/RUN_ID", the
 * run's dag_run id, created_at UTC) goes into `deployment`.  If that
 * insert fails the alias is put back and the task fails, so the alias
 * never moves without a record (a retry starts from the same state).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "mlopsd/cfg.h"
#include "mlopsd/fsx.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"
#include "task_model_int.h"

static const struct task_field deploy_fields[] = {
    {.name = "model", .required = 1, .templated = 1, .role = TASK_ROLE_MODEL},
    {.name = "version", .templated = 1},
    /* The course's CD branch: deploy only when the candidate was created
     * after the version in production, else end as skipped. */
    {.name = "only_if_newer", .kind = TASK_F_BOOL},
    {.name = NULL},
};

/* "latest"/absent -> 0, a version number -> it, an alias name -> -2
 * (looked up at run time), else -1. */
static int version_parse(const char *s)
{
  if (!s || !*s || strcmp(s, "latest") == 0)
    return 0;
  if (s[0] >= '0' && s[0] <= '9') {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 1 || v > INT_MAX)
      return -1;
    return (int)v;
  }
  return fsx_name_valid(s) ? -2 : -1;
}

static enum err_code deploy_check(const struct task_ctx *t, struct err *e)
{
  char vb[64];
  const char *v;
  enum err_code rc;
  if ((rc = task_model_check(t, e)) ||
      (rc = task_field_text(t, "version", vb, sizeof(vb), &v, e)))
    return rc;
  if (v && !strstr(v, "{{") && version_parse(v) == -1)
    return err_set(e, ERR_INVAL, "field 'version': expected a version "
                                 "number, 'latest' or an alias name, got "
                                 "'%.40s'",
                   v);
  return ERR_OK;
}

/* creation_time (ISO-8601 UTC text, so it orders as a string) of a
 * version, copied into buf; "" when meta.json has none. */
static enum err_code deploy_ctime(struct registry *reg, const char *name,
                                  int version, char *buf, size_t cap,
                                  struct err *e)
{
  cJSON *meta = NULL;
  enum err_code rc = registry_read_meta(reg, name, version, &meta, e);
  if (rc)
    return rc;
  const cJSON *ct = cJSON_GetObjectItemCaseSensitive(meta, "creation_time");
  snprintf(buf, cap, "%s", cJSON_IsString(ct) ? ct->valuestring : "");
  cJSON_Delete(meta);
  return ERR_OK;
}

/* only_if_newer: *skip = 1 (and a 'skip' deployment row) when the
 * production version is as new as the candidate. */
static enum err_code deploy_newer_check(struct task_ctx *t,
                                        struct registry *reg,
                                        const char *name, int version,
                                        int *skip, struct err *e)
{
  int prod = 0;
  struct err ae = {0};
  enum err_code rc =
      registry_alias_get(reg, name, REGISTRY_PRODUCTION, &prod, &ae);
  if (rc == ERR_NOTFOUND) {
    task_logf(t, "%s: nothing in production: deploying version %d", name,
              version);
    return ERR_OK;
  }
  if (rc)
    return err_set(e, rc, "%s", ae.msg);
  char cand[64], cur[64];
  if ((rc = deploy_ctime(reg, name, version, cand, sizeof(cand), e)) ||
      (rc = deploy_ctime(reg, name, prod, cur, sizeof(cur), e)))
    return rc;
  task_logf(t, "%s: production version %d created %s, candidate %d created "
               "%s",
            name, prod, cur[0] ? cur : "?", version, cand[0] ? cand : "?");
  if (prod != version && strcmp(cand, cur) > 0)
    return ERR_OK;
  char reason[256], actor[600];
  snprintf(reason, sizeof(reason),
           "skip: production version %d is not older than candidate %d",
           prod, version);
  snprintf(actor, sizeof(actor), "dag:%s/%s", t->dag_id ? t->dag_id : "",
           t->run_id ? t->run_id : "");
  if ((rc = pipeline_record_deployment(t->db, name, REGISTRY_PRODUCTION,
                                       prod, prod, "skip", reason, actor,
                                       t->run_id, e)))
    return rc;
  task_logf(t, "%s", reason);
  t->skip = 1;
  *skip = 1;
  return ERR_OK;
}

static enum err_code deploy_run(struct task_ctx *t, struct err *e)
{
  struct cfg defaults;
  const struct cfg *c = task_model_cfg(t, &defaults);
  char vb[64];
  const char *vraw;
  char *name = NULL, *vtext = NULL;
  struct registry *reg = NULL;
  enum err_code rc;
  if ((rc = task_model_name(t, &name, e)) ||
      (rc = task_field_text(t, "version", vb, sizeof(vb), &vraw, e)) ||
      (vraw &&
       (rc = task_render(t, "version", vraw, TMPL_PLAIN, &vtext, NULL, e))))
    goto out;
  int version = version_parse(vtext);
  if (version == -1) {
    rc = err_set(e, ERR_INVAL, "field 'version': expected a version number, "
                               "'latest' or an alias name, got '%.40s'",
                 vtext);
    goto out;
  }
  if (!t->db) {
    rc = err_set(e, ERR_STATE, "deploy: no database connection pool");
    goto out;
  }
  int only_newer = 0;
  if ((rc = task_field_bool(t, "only_if_newer", 0, &only_newer, e)))
    goto out;
  if ((rc = registry_open_cfg(c, &reg, e)))
    goto out;
  if (version == 0 && (rc = registry_latest(reg, name, &version, e)))
    goto out;
  int from_alias = version == -2;
  if (from_alias) {
    struct err ae = {0};
    const char *why = strcmp(vtext, PIPELINE_STAGING) == 0
                          ? " (no version has passed validate)"
                          : "";
    rc = registry_alias_get(reg, name, vtext, &version, &ae);
    if (rc == ERR_NOTFOUND && only_newer) {
      /* the CD branch before anything passed validate: nothing to do */
      task_logf(t, "%s: alias %s is not set%s: nothing to deploy", name,
                vtext, why);
      t->skip = 1;
      rc = ERR_OK;
      goto out;
    }
    if (rc == ERR_NOTFOUND) {
      rc = err_set(e, ERR_NOTFOUND, "alias %s of %s is not set%s: nothing "
                                    "to deploy",
                   vtext, name, why);
      goto out;
    }
    if (rc) {
      *e = ae;
      goto out;
    }
    task_logf(t, "%s: alias %s -> version %d", name, vtext, version);
  }
  if (only_newer) {
    int skip = 0;
    if ((rc = deploy_newer_check(t, reg, name, version, &skip, e)))
      goto out;
    if (skip)
      goto out;
  }
  int prev = 0;
  if ((rc = registry_alias_set(reg, name, REGISTRY_PRODUCTION, version,
                               &prev, e)))
    goto out;
  char actor[600], reason[256];
  snprintf(actor, sizeof(actor), "dag:%s/%s", t->dag_id ? t->dag_id : "",
           t->run_id ? t->run_id : "");
  char via[96] = "";
  if (from_alias)
    snprintf(via, sizeof(via), " (alias %.64s)", vtext);
  if (prev == version)
    snprintf(reason, sizeof(reason), "version %d%s was already production",
             version, via);
  else if (prev == 0)
    snprintf(reason, sizeof(reason), "first deployment (version %d%s%.64s)",
             version, from_alias ? ", alias " : "", from_alias ? vtext : "");
  else
    snprintf(reason, sizeof(reason), "deploy task: version %d%s replaces %d",
             version, via, prev);
  rc = pipeline_record_deployment(t->db, name, REGISTRY_PRODUCTION, prev,
                                  version, "deploy", reason, actor,
                                  t->run_id, e);
  if (rc) {
    /* put the alias back so the change is never unrecorded */
    struct err ue = {0};
    enum err_code u =
        prev > 0 ? registry_alias_set(reg, name, REGISTRY_PRODUCTION, prev,
                                      NULL, &ue)
                 : registry_alias_delete(reg, name, REGISTRY_PRODUCTION, &ue);
    if (u)
      task_logf(t, "could not restore alias production of %s: %s", name,
                ue.msg);
    else
      task_logf(t, "alias production of %s restored to %d", name, prev);
    goto out;
  }
  if (prev > 0)
    task_logf(t, "%s: production %d -> %d", name, prev, version);
  else
    task_logf(t, "%s: production -> %d (first deployment)", name, version);
out:
  registry_close(reg);
  free(name);
  free(vtext);
  return rc;
}

const struct task_type task_type_deploy = {
    .name = "deploy",
    .fields = deploy_fields,
    .check = deploy_check,
    .run = deploy_run,
};
