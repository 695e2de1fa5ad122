/* task_validate.c - the `validate` task type: the gate between training
 * and deployment (pipeline_validate in pipeline.h).
 *
 * YAML:  - {id: validate, type: validate, model: NAME,
 *           metric: accuracy, tolerance: 0.01, min_rows: 50}  (optional)
 *
 * The candidate is the latest version, the reference the version alias
 * `production` points at.  Both score the candidate's stored validation
 * rows that production was not trained on (its train_keys.jsonl), each
 * through its own preprocessing and model.  The candidate passes when
 * there is no production version, or when its score is at least
 * production's minus the tolerance (logloss, rmse: at most plus the
 * tolerance); fewer than min_rows such rows fail it (production stays).
 * metric defaults to the spec's selection metric, tolerance to the spec's
 * validate.tolerance, min_rows to PIPELINE_MIN_ROWS.
 *
 * A candidate that passes gets alias `staging` (PIPELINE_STAGING): the
 * deploy tasks of the CT and CD DAGs deploy `staging`, so only versions
 * that passed the gate reach production through a DAG.  The alias move is
 * not a row in `deployment` (that table records what production served
 * and the decisions not to deploy); the pass line in the task log is its
 * record.  A failed gate fails the task with both scores in the message,
 * leaves `staging` where it was and is recorded in `deployment` as action
 * 'skip' with that reason, so every decision not to deploy is on record
 * next to the deployments.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/task.h"
#include "task_model_int.h"

static const struct task_field validate_fields[] = {
    {.name = "model", .required = 1, .templated = 1, .role = TASK_ROLE_MODEL},
    {.name = "metric"},
    {.name = "tolerance"},
    {.name = "min_rows", .kind = TASK_F_INT},
    {.name = "max_regression"},
    {.name = "confidence"},
    {.name = NULL},
};

static int metric_parse(const char *s, enum spec_metric *out)
{
  static const enum spec_metric all[] = {
      SPEC_METRIC_ACCURACY, SPEC_METRIC_F1_MACRO, SPEC_METRIC_LOGLOSS,
      SPEC_METRIC_RMSE};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    if (strcmp(s, spec_metric_name(all[i])) == 0) {
      *out = all[i];
      return 0;
    }
  return -1;
}

static int tolerance_parse(const char *s, double *out)
{
  char *end;
  errno = 0;
  double d = strtod(s, &end);
  while (*end == ' ')
    end++;
  if (end == s || *end || errno || !isfinite(d) || d < 0)
    return -1;
  *out = d;
  return 0;
}

/* Fields as given (metric/tolerance NULL when absent). */
static enum err_code read_fields(const struct task_ctx *t, char *mb,
                                 size_t mcap, char *tb, size_t tcap,
                                 const char **metric, const char **tol,
                                 struct err *e)
{
  enum err_code rc;
  if ((rc = task_field_text(t, "metric", mb, mcap, metric, e)) ||
      (rc = task_field_text(t, "tolerance", tb, tcap, tol, e)))
    return rc;
  enum spec_metric m;
  double d;
  if (*metric && metric_parse(*metric, &m))
    return err_set(e, ERR_INVAL,
                   "field 'metric': '%.40s' is not one of accuracy, "
                   "f1_macro, logloss, rmse",
                   *metric);
  if (*tol && tolerance_parse(*tol, &d))
    return err_set(e, ERR_INVAL,
                   "field 'tolerance': expected a number >= 0, got '%.40s'",
                   *tol);
  long mr;
  return task_field_int(t, "min_rows", PIPELINE_MIN_ROWS, 1, 1000000000L,
                        &mr, e);
}

/* max_regression in [0, 1), confidence in [0.5, 1): the spec's values
 * unless the task gives its own. */
static enum err_code read_paired(const struct task_ctx *t, double *maxreg,
                                 double *conf, struct err *e)
{
  char b1[64], b2[64];
  const char *m, *c;
  enum err_code rc;
  double d;
  if ((rc = task_field_text(t, "max_regression", b1, sizeof(b1), &m, e)) ||
      (rc = task_field_text(t, "confidence", b2, sizeof(b2), &c, e)))
    return rc;
  if (m) {
    if (tolerance_parse(m, &d) || d >= 1)
      return err_set(e, ERR_INVAL, "field 'max_regression': expected a "
                                   "number >= 0 and < 1, got '%.40s'",
                     m);
    *maxreg = d;
  }
  if (c) {
    if (tolerance_parse(c, &d) || d < 0.5 || d >= 1)
      return err_set(e, ERR_INVAL, "field 'confidence': expected a number "
                                   ">= 0.5 and < 1, got '%.40s'",
                     c);
    *conf = d;
  }
  return ERR_OK;
}

static enum err_code validate_check(const struct task_ctx *t, struct err *e)
{
  char mb[64], tb[64];
  const char *metric, *tol;
  enum err_code rc = read_fields(t, mb, sizeof(mb), tb, sizeof(tb), &metric,
                                 &tol, e);
  double mr = 0.02, cf = 0.95;
  if (rc || (rc = read_paired(t, &mr, &cf, e)))
    return rc;
  return task_model_check(t, e);
}

static enum err_code validate_run(struct task_ctx *t, struct err *e)
{
  struct cfg defaults;
  const struct cfg *c = task_model_cfg(t, &defaults);
  char mb[64], tb[64];
  const char *metric_s, *tol_s;
  char *name = NULL;
  struct spec *spec = NULL;
  struct registry *reg = NULL;
  enum err_code rc;
  if ((rc = read_fields(t, mb, sizeof(mb), tb, sizeof(tb), &metric_s, &tol_s,
                        e)) ||
      (rc = task_model_name(t, &name, e)))
    goto out;
  if ((rc = pipeline_spec_load(c->models_specs_dir, name, &spec, e)) ||
      (rc = registry_open_cfg(c, &reg, e)))
    goto out;
  enum spec_metric metric = spec->metric;
  double tol = spec->tolerance;
  if (metric_s)
    (void)metric_parse(metric_s, &metric);
  if (tol_s)
    (void)tolerance_parse(tol_s, &tol);
  long min_rows = PIPELINE_MIN_ROWS;
  if ((rc = task_field_int(t, "min_rows", PIPELINE_MIN_ROWS, 1, 1000000000L,
                           &min_rows, e)))
    goto out;
  /* the paired test decides accuracy for a classifier unless the task
   * asks for the point rule by giving a tolerance */
  struct pipeline_gate_opts g = {
      .metric = metric, .tolerance = tol, .min_rows = (size_t)min_rows,
      .paired = metric == SPEC_METRIC_ACCURACY && !tol_s &&
                spec->task != SPEC_TASK_REGRESSION,
      .max_regression = spec->max_regression,
      .confidence = spec->confidence};
  if ((rc = read_paired(t, &g.max_regression, &g.confidence, e)))
    goto out;
  struct pipeline_verdict v;
  if ((rc = pipeline_gate(reg, name, &g, &v, e)))
    goto out;
  char actor[600];
  snprintf(actor, sizeof(actor), "dag:%s/%s", t->dag_id ? t->dag_id : "",
           t->run_id ? t->run_id : "");
  char reason[ERR_MSG_MAX + 16];
  snprintf(reason, sizeof(reason), "validate: %s", v.message);
  if (v.note[0])
    task_logf(t, "%s", v.note);
  task_logf(t, "%s", v.message);
  if (v.pass) {
    int prev = 0;
    if ((rc = registry_alias_set(reg, name, PIPELINE_STAGING, v.candidate,
                                 &prev, e))) {
      err_prefix(e, "validate passed but alias %s could not be set",
                 PIPELINE_STAGING);
      goto out;
    }
    struct err pe = {0};
    if (v.is_paired && t->db &&
        pipeline_record_gate(t->db, name, PIPELINE_STAGING, prev,
                             v.candidate, "pass", reason, actor, t->run_id,
                             &v, &g, &pe) != ERR_OK)
      task_logf(t, "could not record the pass in table deployment: %s",
                pe.msg);
    if (prev == v.candidate)
      task_logf(t, "alias %s of %s already at version %d", PIPELINE_STAGING,
                name, v.candidate);
    else if (prev > 0)
      task_logf(t, "alias %s of %s: %d -> %d", PIPELINE_STAGING, name, prev,
                v.candidate);
    else
      task_logf(t, "alias %s of %s -> %d", PIPELINE_STAGING, name,
                v.candidate);
    goto out;
  }
  struct err de = {0};
  if (!t->db ||
      pipeline_record_gate(t->db, name, REGISTRY_PRODUCTION, v.production,
                           v.candidate, "skip", reason, actor, t->run_id, &v,
                           &g, &de) != ERR_OK)
    task_logf(t, "could not record the skip in table deployment: %s",
              t->db ? de.msg : "no database");
  else
    task_logf(t, "recorded skip of version %d in table deployment",
              v.candidate);
  rc = err_set(e, ERR_STATE, "validation failed: %s", v.message);
out:
  registry_close(reg);
  spec_destroy(spec);
  free(name);
  return rc;
}

const struct task_type task_type_validate = {
    .name = "validate",
    .fields = validate_fields,
    .check = validate_check,
    .run = validate_run,
};
