/* task_model_int.h - the `model` field every model task type has (train,
 * validate, deploy, drift, label_feedback), read one way, implemented in
 * src/task_model.c.  Friend header of the task_*.c files: not part of the
 * public interface.
 *
 * Why here: each type checked the field at load time and rendered it at
 * run time with its own copy of the same lines, and the copies had begun
 * to differ in their messages.
 *
 * Thread rule: any worker thread, with the ctx of the attempt being run.
 */
#ifndef MLOPSD_TASK_MODEL_INT_H
#define MLOPSD_TASK_MODEL_INT_H

#include "mlopsd/cfg.h"
#include "mlopsd/err.h"
#include "mlopsd/task.h"

/* Load-time check: a `model` field written without a template must be a
 * model name (fsx_name_valid); a templated one is checked when rendered.
 * An absent field passes (the field table says whether it is required).
 * ERR_INVAL "field 'model': 'X' is not a valid model name". */
MLOPSD_WUR enum err_code task_model_check(const struct task_ctx *t,
                                          struct err *e);

/* Run time: the rendered `model` field into *out (malloc'd, free()), a
 * valid model name.  ERR_INVAL (absent, empty or not a name), the
 * renderer's errors. */
MLOPSD_WUR enum err_code task_model_name(const struct task_ctx *t,
                                         char **out, struct err *e);

/* The attempt's config, or the built-in defaults (filled into *defaults)
 * when the task runs without one (unit tests, `dags test`).  Borrowed for
 * the attempt. */
const struct cfg *task_model_cfg(const struct task_ctx *t,
                                 struct cfg *defaults);

#endif
