/* task_train.c - the `train` task type: build the training set of a model
 * spec for the run's logical date, grid-search XGBoost and register the
 * best trial as a new version (pipeline.h, docs/training.md).
 *
 * YAML:  - {id: train, type: train, model: credit_score_classification}
 *
 * Progress (rows read, split, every trial with the best so far, the new
 * version) goes to the task log.  XGBoost uses models.train_threads
 * threads so a training run leaves the other cores to the server.  A stop
 * request (cancel, timeout) is honoured between boosting rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/fsx.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"

static const struct task_field train_fields[] = {
    {.name = "model", .required = 1, .templated = 1},
    {.name = NULL},
};

static enum err_code train_check(const struct task_ctx *t, struct err *e)
{
  char buf[64];
  const char *m;
  enum err_code rc = task_field_text(t, "model", buf, sizeof(buf), &m, e);
  if (rc)
    return rc;
  if (m && !strstr(m, "{{") && !fsx_name_valid(m))
    return err_set(e, ERR_INVAL, "field 'model': '%.130s' is not a valid "
                                 "model name",
                   m);
  return ERR_OK;
}

static void log_cb(void *ud, const char *line)
{
  task_logf(ud, "%s", line);
}

static int cancel_cb(void *ud)
{
  return task_should_stop(ud);
}

static enum err_code train_run(struct task_ctx *t, struct err *e)
{
  struct cfg defaults;
  const struct cfg *c = t->cfg;
  if (!c) {
    cfg_defaults(&defaults);
    c = &defaults;
  }
  int timeout_s = task_timeout_s(t);
  char buf[64];
  const char *raw;
  char *name = NULL;
  struct spec *spec = NULL;
  struct registry *reg = NULL;
  struct pipeline_result res = {0};
  enum err_code rc;
  if ((rc = task_field_text(t, "model", buf, sizeof(buf), &raw, e)) ||
      (rc = task_render(t, "model", raw, TMPL_PLAIN, &name, NULL, e)))
    return rc;
  if (!t->db) {
    rc = err_set(e, ERR_STATE, "train: no database connection pool");
    goto out;
  }
  if ((rc = pipeline_spec_load(c->models_specs_dir, name, &spec, e)) ||
      (rc = registry_open(c->models_registry_dir, &reg, e)))
    goto out;
  task_logf(t, "training %s for %s (spec %s, sha256 %.12s, registry %s)",
            spec->name, t->ds, spec->path, spec->sha256,
            c->models_registry_dir);
  struct pipeline_opts o = {
      .ds = t->ds,
      .dag_id = t->dag_id,
      .dag_run_id = t->run_id,
      .nthread = c->models_train_threads,
      .log = log_cb,
      .log_ud = t,
      .cancel = cancel_cb,
      .cancel_ud = t,
  };
  rc = pipeline_train(reg, t->db, spec, &o, &res, e);
  if (rc == ERR_CANCELED && task_should_stop(t)) {
    rc = task_stopped(t, "training stopped", timeout_s, e);
    goto out;
  }
  if (rc)
    goto out;
  task_logf(t, "version %d", res.version);
out:
  pipeline_result_free(&res);
  registry_close(reg);
  spec_destroy(spec);
  free(name);
  return rc;
}

const struct task_type task_type_train = {
    .name = "train",
    .fields = train_fields,
    .check = train_check,
    .run = train_run,
};
