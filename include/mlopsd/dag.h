/* dag.h - DAG files (the *.yaml of config/dags): load, validate, look up.
 *
 * A DAG file is one YAML mapping (reference: docs/dags.md):
 *
 *   dag_id: credit_score_ct            # [A-Za-z0-9_.-]{1,250}, required
 *   description: ...
 *   schedule: "0 3 * * *"              # cron.h syntax; null = manual only
 *   start_date: 2025-01-01             # local date[time], scheduler tz
 *   catchup: false                     # default false
 *   max_active_runs: 16                # default 16 (as Airflow)
 *   tags: [ml, credit]
 *   params: { lookback_days: 7 }       # scalars, for {{ params.NAME }}
 *   default_args: { retries: 2, retry_delay: 5m, timeout: 1h,
 *                   retry_exponential_backoff: true, max_retry_delay: 1h,
 *                   trigger_rule: all_success }
 *   on_failure: { url: https://hooks.example/x, headers: {..}, body: .. }
 *   on_success: https://hooks.example/y     # a bare URL works too
 *   tasks:
 *     - id: extract
 *       type: sql                      # a type of task.h's registry
 *       sql_file: sql/features.sql
 *     - id: train
 *       type: train
 *       depends_on: [extract]
 *       retries: 1                     # per-task overrides of default_args
 *       model: credit_score_classification
 *
 * Validation covers YAML syntax, types, unknown keys, dag_id and task id
 * syntax, duplicate task ids, unknown depends_on, cycles (named: "cycle:
 * a -> b -> a", in data-flow direction), unknown task types and fields
 * (task.h: each type lists its fields and may check() them), template
 * names and placement (tmpl.h, by field: sql -> TMPL_SQL, command ->
 * TMPL_SHELL, url -> TMPL_URL, headers -> TMPL_HEADER, else plain),
 * SQL syntax of sql/sql_file that sqlsplit can judge, cron syntax, trigger
 * rules and durations.  Every error reads "FILE:LINE:COL: message"
 * (1-based; a problem inside a value points into it where possible, one
 * inside an sql_file is "SQLFILE:LINE:COL: ... (sql_file of task 'x' at
 * FILE:LINE:COL)").  Durations: an integer (seconds) or units s m h d,
 * combinable ("90", "30s", "5m", "1h30m", "2d").
 *
 * sql_file is resolved as the sql task does: absolute, else relative to
 * the working directory if it exists there, else relative to the DAG
 * file's directory.  Its content is read at load time, checked, and part
 * of the DAG's hash.
 *
 * A loaded struct dag is immutable: read its fields directly, from any
 * thread.  It is reference counted so a run can keep using the version it
 * started with while a reload swaps in a new one (dag_ref / dag_destroy).
 */
#ifndef MLOPSD_DAG_H
#define MLOPSD_DAG_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/cron.h"
#include "mlopsd/err.h"

struct cJSON;
struct task_type;

#define DAG_ID_MAX 250
#define DAG_FILE_MAX ((size_t)1 << 20)  /* YAML file size cap */
#define DAG_TASKS_MAX 10000

enum dag_trigger_rule {
  DAG_TR_ALL_SUCCESS = 0, /* default: every upstream succeeded */
  DAG_TR_ALL_DONE,        /* every upstream finished, whatever the state */
  DAG_TR_ONE_SUCCESS,     /* at least one upstream succeeded */
  DAG_TR_ALL_FAILED,      /* every upstream failed or upstream_failed */
  DAG_TR_NONE_FAILED,     /* no upstream failed (success or skipped) */
  DAG_TR_ONE_FAILED,      /* at least one upstream failed */
  DAG_TR_NONE_SKIPPED,    /* every upstream finished, none skipped */
};
/* "all_success", ...; "?" for a bad value. */
const char *dag_trigger_rule_name(enum dag_trigger_rule r);

/* Retry and timeout settings: default_args, then per-task overrides. */
struct dag_retry {
  int retries;             /* extra attempts after the first; default 0 */
  int retry_delay_s;       /* default 300 */
  int exponential_backoff; /* double the delay each retry; default 0 */
  int max_retry_delay_s;   /* cap on a backed-off delay; default 86400 */
  int timeout_s;           /* per attempt; 0 = none (default) */
};

/* The wait before attempt try_number + 1 after attempt try_number
 * (1-based) failed: retry_delay_s, doubled per earlier retry when
 * exponential_backoff, never above max_retry_delay_s. */
int dag_retry_delay(const struct dag_retry *r, int try_number);

/* An HTTP callback (on_failure / on_success). */
struct dag_callback {
  char *url;               /* NULL: none; templated (TMPL_URL) */
  char *method;            /* "POST" unless given */
  struct cJSON *headers;   /* object of strings or NULL; TMPL_HEADER */
  char *body;              /* NULL: the scheduler's default JSON body */
  int line, col;
};

/* A local date-time (scheduler time zone), from start_date. */
struct dag_datetime {
  int set;                 /* 0: absent */
  int year, month, day, hour, minute, second;
};

struct dag_task {
  char *id;
  const struct task_type *type; /* from task_type_find(type_name) */
  char *type_name;
  char *description;            /* NULL if absent */
  char **depends_on;            /* upstream ids as written */
  size_t *upstream;             /* the same as indices into dag->tasks */
  size_t nupstream;
  size_t *downstream;           /* tasks that depend on this one */
  size_t ndownstream;
  enum dag_trigger_rule trigger_rule;
  struct dag_retry retry;       /* effective values */
  /* The type's own fields as a JSON object: scalars as strings (text as
   * written: "200", "true"), maps as objects, lists as arrays.  Never
   * NULL.  A field the type shares with the common keys (http `timeout`)
   * is also here, as seconds. */
  struct cJSON *fields;
  char *file_path;              /* the type's file field (task_field.file,
                                   e.g. sql_file) as resolved; NULL if
                                   none */
  char *file_text;              /* its content read at load time */
  int line, col;                /* the task's position in the file */
};

/* A file a DAG was built from, for change detection. */
struct dag_source {
  char *path;
  int64_t mtime_ns;
  int64_t size;
};

struct dag {
  char *dag_id;
  char *description;            /* NULL if absent */
  char *schedule;               /* as written; NULL = manual only */
  struct cron_expr cron;        /* parsed schedule (if schedule) */
  struct dag_datetime start_date;
  int catchup;                  /* default 0 */
  int max_active_runs;          /* default 16 */
  char **tags;
  size_t ntags;
  struct cJSON *params;         /* object name -> string; never NULL */
  struct dag_retry default_args;
  enum dag_trigger_rule default_trigger_rule;
  struct dag_callback on_failure, on_success;
  struct dag_task *tasks;
  size_t ntasks;
  size_t *topo;                 /* task indices, upstream before
                                   downstream, ties in file order */
  char *path;                   /* the YAML file, as given */
  struct dag_source *sources;   /* [0] is the YAML file, then sql_files */
  size_t nsources;
  uint64_t hash;                /* FNV-1a 64 of all sources' content */
  int id_line, id_col;          /* position of the dag_id value */
  int refs_;                    /* private: reference count */
};

/* Load and validate one file.  On success *out is a new DAG (reference
 * count 1).  On failure *out is untouched and e holds the first problem,
 * "FILE:LINE:COL: ..." (ERR_PARSE for syntax and validation errors,
 * ERR_IO/ERR_NOTFOUND for an unreadable file, ERR_NOMEM). */
enum err_code dag_load_file(const char *path, struct dag **out,
                            struct err *e) MLOPSD_WUR;

/* Take another reference (returns d).  Any thread. */
struct dag *dag_ref(struct dag *d);
/* Drop a reference; the last one frees.  NULL-safe.  Any thread. */
void dag_destroy(struct dag *d);

/* Index of task id in d->tasks, or -1. */
ptrdiff_t dag_task_index(const struct dag *d, const char *id);
/* A scalar field of a task as text (borrowed from t), NULL if absent or
 * not a scalar. */
const char *dag_task_str(const struct dag_task *t, const char *name);
/* Any field of a task as JSON (borrowed from t), NULL if absent. */
const struct cJSON *dag_task_json(const struct dag_task *t, const char *name);
/* The scalar field of t whose type gives it role r (task.h enum
 * task_field_role) as text (borrowed from t), NULL if none. */
const char *dag_task_role_str(const struct dag_task *t, int role);

/* 1 if a source file changed (mtime or size differs, or it is gone)
 * since d was loaded; 0 otherwise.  Cheap: one stat per source. */
int dag_sources_changed(const struct dag *d);

/* ---- sets of DAGs (a directory) ----------------------------------- */

struct dag_set; /* opaque: DAGs by id; owns its references */

/* One file that failed to load. */
struct dag_error {
  char *file;
  enum err_code code;
  char *msg;               /* "FILE:LINE:COL: ..." */
};
struct dag_errors {
  struct dag_error *v;
  size_t n;
};
void dag_errors_free(struct dag_errors *errs); /* NULL-safe, resets */

enum err_code dag_set_create(struct dag_set **out, struct err *e) MLOPSD_WUR;
void dag_set_destroy(struct dag_set *s); /* drops its references */

/* Load every *.yaml and *.yml file of dir (not hidden, sorted by name)
 * into a new set.  A file that fails (including a dag_id already defined
 * by an earlier file: "dag_id 'x' is already defined in OTHER") is added
 * to *errs (reset first) and the others still load.  Returns ERR_OK when
 * the directory could be read, whatever the files held; ERR_NOTFOUND /
 * ERR_IO (dir unreadable) or ERR_NOMEM with e set and *out untouched. */
enum err_code dag_load_dir(const char *dir, struct dag_set **out,
                           struct dag_errors *errs, struct err *e) MLOPSD_WUR;

size_t dag_set_count(const struct dag_set *s);
/* i-th DAG in dag_id order (borrowed from the set), NULL past the end. */
struct dag *dag_set_at(const struct dag_set *s, size_t i);
/* The DAG with this id (borrowed from the set), or NULL. */
struct dag *dag_set_find(const struct dag_set *s, const char *dag_id);
/* Add d, taking over the caller's reference.  ERR_EXISTS (d stays with
 * the caller) if the id is taken; ERR_NOMEM. */
enum err_code dag_set_add(struct dag_set *s, struct dag *d,
                          struct err *e) MLOPSD_WUR;
/* Remove the DAG with this id and hand its reference to the caller
 * (NULL if absent). */
struct dag *dag_set_take(struct dag_set *s, const char *dag_id);

/* Thread rule: a dag_set is not locked: build it on one thread, then
 * share it read-only (count/at/find) or hand it over whole. */

/* ---- the DAG directory loader ------------------------------------- */

/* A DAG directory as last scanned: one entry per *.yaml / *.yml file (not
 * hidden, regular, by name).  The one loader of DAG directories: the
 * scheduler keeps one and rescans it; dag_load_dir scans a fresh one. */
struct dag_dir;

struct dag_dir_file {
  char *path;                  /* DIR/NAME */
  struct dag *good;            /* last version that loaded (the entry's
                                  reference), or NULL */
  char *err;                   /* why the file does not load now, or NULL
                                  (good, if any, is the version kept) */
  enum err_code err_code;
  char *dup;                   /* good's dag_id is already defined by an
                                  earlier file: why this one is ignored */
  int mark;                    /* the caller's flag, cleared whenever good
                                  changes (the scheduler: `dag` row written) */
  int64_t mtime_ns, size;      /* of the YAML at the last load attempt */
};

enum dag_dir_event {
  DAG_DIR_LOADED,              /* a new file loaded: f->good */
  DAG_DIR_RELOADED,            /* a file changed and loaded: f->good */
  DAG_DIR_BROKEN,              /* a file fails with a new error: f->err
                                  (f->good is the version kept, or NULL) */
  DAG_DIR_REMOVED,             /* a file with a good version is gone (f is
                                  dropped after the call) */
  DAG_DIR_DUPLICATE            /* a new reason to ignore a file: f->dup */
};
typedef void (*dag_dir_event_fn)(void *user, enum dag_dir_event ev,
                                 const struct dag_dir_file *f);

enum err_code dag_dir_create(const char *dir, struct dag_dir **out,
                             struct err *e) MLOPSD_WUR;
void dag_dir_destroy(struct dag_dir *w); /* NULL-safe */

/* Look at the directory again.  A file is loaded again only when the stat
 * of its YAML or of a source (sql_file) changed or it failed last time; a
 * file that no longer loads keeps its last good version; a file whose
 * dag_id an earlier file defines is marked dup.  fn (may be NULL) hears
 * of every change, in file order, on the calling thread.  *changed (may
 * be NULL): the good versions changed.  ERR_NOTFOUND / ERR_IO "cannot
 * open DAG directory DIR: why" (the files as last seen are kept),
 * ERR_NOMEM (the files that could be handled are). */
enum err_code dag_dir_scan(struct dag_dir *w, dag_dir_event_fn fn,
                           void *user, int *changed,
                           struct err *e) MLOPSD_WUR;
/* The files of w as last scanned, in the shape dag_load_dir gives: a new
 * set of the good versions of the files that load now (no error, no
 * duplicate id; each DAG referenced, not copied) and *errs (reset first)
 * for the others.  ERR_NOMEM (*out untouched, *errs emptied). */
enum err_code dag_dir_set(const struct dag_dir *w, struct dag_set **out,
                          struct dag_errors *errs, struct err *e) MLOPSD_WUR;
size_t dag_dir_count(const struct dag_dir *w);
/* i-th file (by name), NULL past the end.  Only mark may be written. */
struct dag_dir_file *dag_dir_at(struct dag_dir *w, size_t i);

/* Thread rule: a dag_dir belongs to one thread at a time; the DAGs it
 * holds are reference counted (dag_ref) and may be shared. */

#endif
