/* task_monitor_int.h - helpers shared by the monitoring task types (drift in
 * src/task_drift.c, label_feedback in src/task_feedback.c), implemented in
 * src/task_monitor.c.  Friend header: not part of the public interface.
 *
 * Both tasks look up the production version of a model in the registry,
 * and both may start the CT DAG when a check fails, with a conf that says
 * why; that second part (field rendering, the cool-down, ERR_EXISTS) is
 * here so the two behave alike.  docs/monitoring.md describes the fields.
 *
 * Thread rule: every function may be called from any worker thread with
 * the ctx of the attempt being run.
 */
#ifndef MLOPSD_TASK_MONITOR_INT_H
#define MLOPSD_TASK_MONITOR_INT_H

#include <cjson/cJSON.h>

#include "mlopsd/registry.h"
#include "mlopsd/task.h"

#define MONITOR_LOG_TABLE "credit_predictions_api_log"
#define MONITOR_ACQUIRE_MS 10000
#define MONITOR_DEFAULT_REGISTRY "var/registry"

/* The fields every monitoring type has besides its own (model, trigger
 * and its knobs); appended to each type's list by hand. */
#define MONITOR_COMMON_FIELDS                                                \
  {.name = "model", .required = 1, .templated = 1, .role = TASK_ROLE_MODEL}, \
      {.name = "trigger_dag", .templated = 1},                               \
      {.name = "conf", .templated = 1, .kind = TASK_F_MAP},                  \
      {.name = "logical_date", .templated = 1},                              \
      {.name = "cooldown_minutes", .kind = TASK_F_INT}

/* Open the registry at the configured models.registry_dir (t->cfg) or
 * MONITOR_DEFAULT_REGISTRY. */
MLOPSD_WUR enum err_code task_monitor_registry(const struct task_ctx *t,
                                               struct registry **out,
                                               struct err *e);

/* Load-time check of the common fields that hold no template. */
MLOPSD_WUR enum err_code task_monitor_check_common(const struct task_ctx *t,
                                                   struct err *e);

/* Start trigger_dag (rendered; the caller checked it is set) with conf =
 * the task's own `conf` map (strings rendered) overlaid by why (borrowed;
 * its keys win), for logical date `logical_date` (rendered) or by default
 * "{{ ds }}THH:MM:SS" with the current UTC time of day, so repeated
 * checks on one day start separate runs.  With cooldown_minutes > 0, no
 * run starts when trigger_dag has a run queued in the last that many
 * minutes whose conf has the same reason and model (*started = 0, logged).
 * A run that already exists for that logical date (ERR_EXISTS) is logged,
 * not an error.  *started = 1 when a run was recorded; run_id gets it. */
MLOPSD_WUR enum err_code task_monitor_trigger(struct task_ctx *t,
                                              const cJSON *why, int *started,
                                              char *run_id, int run_id_cap,
                                              struct err *e);

/* Non-zero when the field trigger_dag is set (non-empty). */
int task_monitor_has_trigger(const struct task_ctx *t);

/* The prologue both types share: the model field (*model: free), a
 * database, the registry (*reg: registry_close) and the model's
 * production version (*prod, 0 when none is set: the caller decides).
 * what names the type in messages.  On error nothing is left open. */
MLOPSD_WUR enum err_code task_monitor_begin(const struct task_ctx *t,
                                            const char *what, char **model,
                                            struct registry **reg, int *prod,
                                            struct err *e);

/* A failed check: start trigger_dag with why (NULL: ERR_NOMEM, building it
 * failed) as task_monitor_trigger does, or without trigger_dag fail with
 * ERR_STATE and the message fmt..., which must end with an open
 * parenthesis clause ("... (report 7") that this closes with "; no
 * trigger_dag set)". */
MLOPSD_WUR enum err_code task_monitor_fire(struct task_ctx *t,
                                           const cJSON *why, struct err *e,
                                           const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
