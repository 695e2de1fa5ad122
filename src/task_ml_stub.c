/* task_ml_stub.c - placeholders for the ML task types not built yet
 * (drift; train, validate and deploy live in src/task_<type>.c).
 *
 * Each placeholder already has the type's field list, so DAG files that
 * use it load and validate today; running one fails the attempt with
 * ERR_UNSUPPORTED.  To build a type: write src/task_<name>.c defining
 * `const struct task_type task_type_<name>` and delete its block here.
 * The field lists follow ../shared/DESIGN.md, "DAG files".
 */
#include "mlopsd/task.h"

static enum err_code not_built(const struct task_ctx *t, const char *type,
                               struct err *e)
{
  (void)t;
  return err_set(e, ERR_UNSUPPORTED, "task type '%s' is not built yet",
                 type);
}

/* ---- drift ---------------------------------------------------------- */

static const struct task_field drift_fields[] = {
    {.name = "model", .required = 1, .templated = 1},
    {.name = "window"},
    {.name = "threshold"},
    {.name = "trigger_dag"},
    {.name = NULL},
};

static enum err_code drift_run(struct task_ctx *t, struct err *e)
{
  return not_built(t, "drift", e);
}

const struct task_type task_type_drift = {
    .name = "drift",
    .fields = drift_fields,
    .run = drift_run,
};
