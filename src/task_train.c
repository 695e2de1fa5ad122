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
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/task.h"
#include "task_model_int.h"

static const struct task_field train_fields[] = {
    {.name = "model", .required = 1, .templated = 1, .role = TASK_ROLE_MODEL},
    /* the grid's trials as rows any scheduler daemon claims (trialq.h) */
    {.name = "shared_trials", .kind = TASK_F_BOOL},
    /* distributed training through XGBoost's collective: N ranks */
    {.name = "workers", .kind = TASK_F_INT},
    {.name = "tracker_host", .templated = 1},
    {.name = NULL},
};

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
  const struct cfg *c = task_model_cfg(t, &defaults);
  int timeout_s = task_timeout_s(t);
  char *name = NULL;
  struct spec *spec = NULL;
  struct registry *reg = NULL;
  struct pipeline_result res = {0};
  enum err_code rc;
  int shared = 0;
  long workers = 1;
  const char *thost = NULL;
  char thbuf[256];
  if ((rc = task_model_name(t, &name, e)) ||
      (rc = task_field_bool(t, "shared_trials", 0, &shared, e)) ||
      (rc = task_field_int(t, "workers", 1, 1, 64, &workers, e)) ||
      (rc = task_field_text(t, "tracker_host", thbuf, sizeof(thbuf), &thost,
                            e)))
    goto out;
  if (!t->db) {
    rc = err_set(e, ERR_STATE, "train: no database connection pool");
    goto out;
  }
  if ((rc = pipeline_spec_load(c->models_specs_dir, name, &spec, e)) ||
      (rc = registry_open_cfg(c, &reg, e)))
    goto out;
  task_logf(t, "training %s for %s (spec %s, sha256 %.12s, registry %s)",
            spec->name, t->ds, spec->path, spec->sha256,
            registry_where(reg));
  struct pipeline_opts o = {
      .ds = t->ds,
      .dag_id = t->dag_id,
      .dag_run_id = t->run_id,
      .nthread = c->models_train_threads,
      .parallel = cfg_train_parallel(c),
      .shared_trials = shared,
      .workers = (int)workers,
      .tracker_host = thost,
      .lease_s = c->sched_lease_s,
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
    .check = task_model_check,
    .run = train_run,
};
