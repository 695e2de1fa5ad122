/* task.h - the task-type interface: what a DAG task of a given `type`
 * does when the scheduler runs one attempt of it.
 *
 * Each type is one file src/task_<type>.c defining one
 * `const struct task_type task_type_<type>` (declared below) and one line
 * in the table in src/task.c.
 *
 * The DAG loader validates a task's fields against the type's field list
 * (and its check()); the scheduler calls run() on a worker thread of the
 * shared job queue (never on the scheduler thread), with a context that
 * gives the task its fields, templates, log sink, database pool and
 * deadline.  Behaviour of each built-in type: docs/tasks.md.
 *
 * Thread rule: run() is called on any worker thread, concurrently for
 * different task instances; it must not keep state between calls except
 * through its own locked structures.  The helpers below may be called from
 * any thread with the ctx of the attempt being run.
 */
#ifndef MLOPSD_TASK_H
#define MLOPSD_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"
#include "mlopsd/tmpl.h"

struct cJSON;
struct cfg;
struct db_pool;
struct queue_job_ctx;

/* The YAML shape a field takes (for the loader's "wrong type" errors). */
enum task_field_kind {
  TASK_F_SCALAR = 0, /* string, number or bool (text) */
  TASK_F_INT,        /* integer */
  TASK_F_BOOL,       /* true/false (also yes/no, on/off, 1/0) */
  TASK_F_MAP,        /* mapping of scalars (env, headers, conf) */
  TASK_F_LIST,       /* sequence */
  TASK_F_INT_OR_LIST /* an integer or a sequence (http expect_status) */
};

/* What a field means to other modules, so they can find it without
 * naming a type or a field (the admin API's drift threshold of a model). */
enum task_field_role {
  TASK_ROLE_NONE = 0,
  TASK_ROLE_MODEL,           /* the served model the task works on */
  TASK_ROLE_DRIFT_THRESHOLD  /* the drift score that counts as drift */
};

/* One field a type accepts in YAML.  Lists end with {.name = NULL}. */
struct task_field {
  const char *name;
  int required;   /* 1: must be present (see also one_of) */
  int templated;  /* 1: value may hold {{ ... }}: checked at load time
                     (for maps: the values) */
  /* Fields added after the first version: */
  int one_of;     /* > 0: exactly one field of this group number must be
                     present (sql: `sql` or `sql_file`) */
  enum task_field_kind kind;
  /* How {{ }} output is escaped where the value lands (tmpl.h): TMPL_SQL,
   * TMPL_SHELL (a list value is an argv: plain), TMPL_URL, TMPL_HEADER;
   * TMPL_PLAIN (0) otherwise.  A TMPL_SQL scalar is also checked to split
   * into statements.  For a file field: the mode of the file's text. */
  enum tmpl_mode mode;
  /* 1: the value names a file (absolute, or relative to the working
   * directory or the DAG file) that run() reads; the loader reads it too,
   * checks its text in `mode` and reloads the DAG when it changes
   * (dag_task.file_path).  At most one per type. */
  int file;
  enum task_field_role role;
};

/* What run() gets: everything borrowed for the duration of the call. */
struct task_ctx {
  const char *dag_id;
  const char *run_id;
  const char *task_id;
  int try_number;           /* 1-based */
  const char *ds;           /* logical date YYYY-MM-DD (scheduler tz) */
  int64_t logical_ts;       /* logical date as UTC epoch seconds */

  /* The task's own YAML fields, raw (templates not yet rendered).
   * field() gives a scalar's text (numbers and booleans as written),
   * NULL when absent or not a scalar; field_json() gives any field as
   * cJSON (lists/maps such as env, headers, conf), NULL when absent.
   * The helpers task_field_* below accept either representation. */
  const char *(*field)(const struct task_ctx *t, const char *name);
  const struct cJSON *(*field_json)(const struct task_ctx *t,
                                    const char *name);
  void *field_user;

  const struct tmpl_ctx *tmpl;   /* for tmpl_render of fields */
  const struct cJSON *params;    /* DAG params (object), may be NULL */
  const struct cJSON *conf;      /* run conf (object), may be NULL */

  const struct cfg *cfg;         /* daemon config (dirs, tz, ...), may be
                                    NULL (then built-in defaults) */
  struct db_pool *db;            /* feature store + metadata database */
  struct queue_job_ctx *job;     /* should_stop / deadline of this attempt;
                                    may be NULL (no cancellation) */
  int64_t deadline_ms;           /* CLOCK_MONOTONIC ms, 0 = no timeout
                                    (the earlier of this and the job's
                                    deadline applies) */

  /* Append one line to this attempt's task_log (stream "stdout",
   * "stderr" or "log").  Thread-safe; never fails the task (lines that
   * cannot be stored are logged to stderr).  May be NULL (lines are
   * dropped). */
  void (*log_line)(const struct task_ctx *t, const char *stream,
                   const char *line);
  void *log_user;

  /* Start another DAG run (trigger_dag, drift): records a queued run.
   * conf may be NULL.  run_id_out (may be NULL) gets the new run id. */
  enum err_code (*trigger)(const struct task_ctx *t, const char *dag_id,
                           const char *logical_date, const struct cJSON *conf,
                           char *run_id_out, int run_id_cap, struct err *e);
  void *trigger_user;

  /* Outcome detail a task may set: "skipped" makes the attempt end in
   * state skipped instead of success (e.g. the CD DAG's branch). */
  int skip;

  /* Fields added after the first version (zero = unknown): */
  const char *dag_file;  /* path of the DAG's YAML file, for paths
                            relative to it (sql_file); may be NULL */
  int timeout_s;         /* the task's timeout as configured, for
                            messages ("killed after timeout of 30s");
                            0: derived from the deadline */
};

struct task_type {
  const char *name;                  /* YAML `type:` value */
  const struct task_field *fields;   /* terminated by {.name = NULL} */
  /* Extra load-time check of the fields (may be NULL).  Gets a ctx with
   * only field/field_json/field_user (and possibly dag_id, task_id,
   * dag_file) set: no db, job, log or trigger.  Templated values are
   * checked only where they hold no {{ }}. */
  enum err_code (*check)(const struct task_ctx *t, struct err *e);
  /* Run one attempt.  Return ERR_OK on success; ERR_TIMEOUT/ERR_CANCELED
   * when stopped through ctx->job or the deadline; any other code fails
   * the attempt with e->msg as the reason (also written to the task log
   * by the caller). */
  enum err_code (*run)(struct task_ctx *t, struct err *e);
};

/* The built-in types (src/task_<name>.c). */
extern const struct task_type task_type_sql;
extern const struct task_type task_type_shell;
extern const struct task_type task_type_http;
extern const struct task_type task_type_trigger_dag;
extern const struct task_type task_type_train;
extern const struct task_type task_type_validate;
extern const struct task_type task_type_deploy;
extern const struct task_type task_type_drift;
extern const struct task_type task_type_label_feedback;
extern const struct task_type task_type_db_clean; /* task_clean.c */
extern const struct task_type task_type_batch_predict;

/* The type named name, or NULL.  Any thread. */
const struct task_type *task_type_find(const char *name);
/* For listing: i-th type (NULL past the end).  Any thread. */
const struct task_type *task_type_at(int i);
/* The field named name in type's list, or NULL. */
const struct task_field *task_type_field(const struct task_type *type,
                                         const char *name);

/* printf into the task log (stream "log").  Lines longer than
 * TASK_LOG_LINE_MAX bytes are cut there (several log lines for text with
 * newlines: one per line). */
#define TASK_LOG_LINE_MAX 4096
void task_logf(const struct task_ctx *t, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3);
/* Write text (len bytes, may hold newlines) to stream, one log line per
 * line, lines cut at TASK_LOG_LINE_MAX bytes. */
void task_log_text(const struct task_ctx *t, const char *stream,
                   const char *text, size_t len);

/* ---- field helpers (accept field() text or field_json() values) ------ */

/* Scalar field as text: borrowed from the ctx (or copied into buf for a
 * cJSON number/bool), NULL when absent.  ERR_INVAL (naming the field)
 * when present but not a scalar. */
enum err_code task_field_text(const struct task_ctx *t, const char *name,
                              char *buf, size_t cap, const char **out,
                              struct err *e) MLOPSD_WUR;
/* Integer field in [min, max]; *out = def when absent.  ERR_INVAL. */
enum err_code task_field_int(const struct task_ctx *t, const char *name,
                             long def, long min, long max, long *out,
                             struct err *e) MLOPSD_WUR;
/* Floating-point field, finite, in [min, max]; *out = def when absent.
 * ERR_INVAL naming the field. */
enum err_code task_field_double(const struct task_ctx *t, const char *name,
                                double def, double min, double max,
                                double *out, struct err *e) MLOPSD_WUR;
/* Boolean field (true/false, yes/no, on/off, 1/0); *out = def when
 * absent.  ERR_INVAL. */
enum err_code task_field_bool(const struct task_ctx *t, const char *name,
                              int def, int *out, struct err *e) MLOPSD_WUR;

/* ---- run-time helpers ----------------------------------------------- */

/* The effective deadline: the earlier non-zero of t->deadline_ms and the
 * job's deadline; 0 = none.  CLOCK_MONOTONIC ms (queue_now_ms). */
int64_t task_deadline_ms(const struct task_ctx *t);
/* Non-zero when the attempt should stop: job cancelled or stopped, or
 * the deadline passed. */
int task_should_stop(const struct task_ctx *t);
/* The task timeout in whole seconds for messages: t->timeout_s, else the
 * time from now to the deadline rounded up (so call it at the start of
 * run()); 0 if there is no deadline. */
int task_timeout_s(const struct task_ctx *t);
/* Fill e for an attempt that was stopped while doing `what` (e.g.
 * "command killed"): ERR_TIMEOUT "<what> after timeout of Ns" (N =
 * timeout_s from task_timeout_s) when the deadline passed, else
 * ERR_CANCELED "<what>: attempt cancelled".  Returns the code. */
enum err_code task_stopped(const struct task_ctx *t, const char *what,
                           int timeout_s, struct err *e);

/* Render the template src of field `what` (for messages) in mode (see
 * tmpl.h) with t->tmpl, or, when that is NULL, a context built from t
 * (ds, run_id, dag_id, params and conf objects).  *out is malloc'd, freed
 * by the caller.  binds: required for TMPL_SQL (conf values bound to the
 * `?` placeholders, free with tmpl_binds_free), may be NULL otherwise.
 * Errors as tmpl_render, the message prefixed with "field 'what': ". */
enum err_code task_render(const struct task_ctx *t, const char *what,
                          const char *src, enum tmpl_mode mode, char **out,
                          struct tmpl_binds *binds, struct err *e)
    MLOPSD_WUR;

/* A copy of v (cJSON_Delete) with every string rendered as plain text by
 * task_render (keys kept as written, other values copied).  path names v
 * in messages; nested items are "path.key" and "path[]".  ERR_INVAL when
 * nested more than 16 deep, ERR_NOMEM, and the errors of task_render. */
enum err_code task_render_json(const struct task_ctx *t,
                               const struct cJSON *v, const char *path,
                               struct cJSON **out, struct err *e) MLOPSD_WUR;

#endif
