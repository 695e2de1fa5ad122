/* task_ctx.h - a hand-built task context for running one task type
 * (task_type_find(NAME)->run) outside the scheduler, as the scheduler's
 * executor would: fields from JSON text, the log lines the task writes
 * kept per stream, a trigger callback that records what it was asked.
 *
 *   struct fx_tc *c = fx_tc_new("{\"sql\": \"SELECT 1\"}", NULL, pool);
 *   enum err_code rc = task_type_find("sql")->run(&c->t, &e);
 *   CHECK(fx_tc_has(c, "log", "1 statement"));
 *   fx_tc_free(c);
 *
 * c->t is a plain struct task_ctx: a test sets what else its type needs
 * (cfg, dag_file, deadline_ms, ...) before the run.  Defaults: dag_id
 * "it_dag", run_id "scheduled__2025-09-01", task_id "it_task",
 * try_number 1, ds "2025-09-01".
 *
 * Ownership: the context owns fields, conf, the kept lines and
 * trig_conf; fx_tc_free frees them.  Thread rules: log_line may be
 * called from the task's threads (a mutex guards the lines); the rest
 * from the test's thread.
 */
#ifndef MLOPSD_TEST_TASK_CTX_H
#define MLOPSD_TEST_TASK_CTX_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/err.h"
#include "mlopsd/queue.h"
#include "mlopsd/task.h"

/* output lines kept per run (a flooding command is cut there; the
 * executor's own "log" lines are always kept, up to as many again) */
#define FX_TC_MAXLINES 4096

struct fx_tc {
  struct task_ctx t;
  cJSON *fields, *conf;
  pthread_mutex_t mu;
  int n, nout;
  char *stream[2 * FX_TC_MAXLINES];
  char *line[2 * FX_TC_MAXLINES];
  /* what the trigger callback was asked last, and how often */
  int ntrig;
  char trig_dag[128], trig_date[64];
  cJSON *trig_conf;
  enum err_code trig_rc; /* what it answers (ERR_OK: a run id) */
};

static inline const char *fx_tc_field(const struct task_ctx *t,
                                      const char *name)
{
  const struct fx_tc *c = (const struct fx_tc *)t;
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(c->fields, name);
  return cJSON_IsString(j) ? j->valuestring : NULL;
}

static inline const struct cJSON *fx_tc_field_json(const struct task_ctx *t,
                                                   const char *name)
{
  const struct fx_tc *c = (const struct fx_tc *)t;
  return cJSON_GetObjectItemCaseSensitive(c->fields, name);
}

static inline void fx_tc_log(const struct task_ctx *t, const char *stream,
                             const char *line)
{
  struct fx_tc *c = (struct fx_tc *)t;
  pthread_mutex_lock(&c->mu);
  int is_log = strcmp(stream, "log") == 0;
  if (c->n < 2 * FX_TC_MAXLINES && (is_log || c->nout < FX_TC_MAXLINES)) {
    c->nout += !is_log;
    c->stream[c->n] = strdup(stream);
    c->line[c->n] = strdup(line);
    c->n++;
  }
  pthread_mutex_unlock(&c->mu);
  if (getenv("VERBOSE"))
    fprintf(stderr, "    [%s] %s\n", stream, line);
}

/* Records the request; answers trig_rc, or run id "manual__DATE_N". */
static inline enum err_code
fx_tc_trigger(const struct task_ctx *t, const char *dag_id,
              const char *logical_date, const struct cJSON *conf,
              char *run_id_out, int run_id_cap, struct err *e)
{
  struct fx_tc *c = (struct fx_tc *)t;
  if (c->trig_rc != ERR_OK)
    return err_set(e, c->trig_rc, "DAG '%s' already has a run", dag_id);
  c->ntrig++;
  snprintf(c->trig_dag, sizeof(c->trig_dag), "%s", dag_id);
  snprintf(c->trig_date, sizeof(c->trig_date), "%s", logical_date);
  cJSON_Delete(c->trig_conf);
  c->trig_conf = conf ? cJSON_Duplicate(conf, 1) : NULL;
  snprintf(run_id_out, (size_t)run_id_cap, "manual__%s_%d", logical_date,
           c->ntrig);
  return ERR_OK;
}

/* FIELDS and CONF as JSON text (NULL conf: none); DB may be NULL. */
static inline struct fx_tc *fx_tc_new(const char *fields, const char *conf,
                                      struct db_pool *db)
{
  struct fx_tc *c = calloc(1, sizeof(*c));
  if (!c)
    return NULL;
  pthread_mutex_init(&c->mu, NULL);
  c->fields = cJSON_Parse(fields);
  if (!c->fields)
    fprintf(stderr, "  bad test JSON: %s\n", fields);
  c->conf = conf ? cJSON_Parse(conf) : NULL;
  c->t.dag_id = "it_dag";
  c->t.run_id = "scheduled__2025-09-01";
  c->t.task_id = "it_task";
  c->t.try_number = 1;
  c->t.ds = "2025-09-01";
  c->t.field = fx_tc_field;
  c->t.field_json = fx_tc_field_json;
  c->t.conf = c->conf;
  c->t.db = db;
  c->t.log_line = fx_tc_log;
  c->t.trigger = fx_tc_trigger;
  return c;
}

static inline void fx_tc_free(struct fx_tc *c)
{
  if (!c)
    return;
  for (int i = 0; i < c->n; i++) {
    free(c->stream[i]);
    free(c->line[i]);
  }
  cJSON_Delete(c->fields);
  cJSON_Delete(c->conf);
  cJSON_Delete(c->trig_conf);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

/* The i-th line (0-based) of STREAM, NULL if none. */
static inline const char *fx_tc_nth(struct fx_tc *c, const char *stream,
                                    int i)
{
  const char *r = NULL;
  pthread_mutex_lock(&c->mu);
  for (int k = 0; k < c->n; k++)
    if (strcmp(c->stream[k], stream) == 0 && i-- == 0) {
      r = c->line[k];
      break;
    }
  pthread_mutex_unlock(&c->mu);
  return r;
}

static inline int fx_tc_count(struct fx_tc *c, const char *stream)
{
  int n = 0;
  pthread_mutex_lock(&c->mu);
  for (int k = 0; k < c->n; k++)
    n += strcmp(c->stream[k], stream) == 0;
  pthread_mutex_unlock(&c->mu);
  return n;
}

/* Does a line of STREAM (NULL: any stream) contain SUB? */
static inline int fx_tc_has(struct fx_tc *c, const char *stream,
                            const char *sub)
{
  int r = 0;
  pthread_mutex_lock(&c->mu);
  for (int k = 0; k < c->n && !r; k++)
    r = (!stream || strcmp(c->stream[k], stream) == 0) &&
        strstr(c->line[k], sub);
  pthread_mutex_unlock(&c->mu);
  return r;
}

/* Print every kept line (for a failed check). */
static inline void fx_tc_dump(struct fx_tc *c)
{
  pthread_mutex_lock(&c->mu);
  for (int k = 0; k < c->n; k++)
    fprintf(stderr, "    [%s] %s\n", c->stream[k], c->line[k]);
  pthread_mutex_unlock(&c->mu);
}

/* A context whose fields are {KEY: VALUE} (VALUE a JSON string) plus the
 * JSON members EXTRA ("\"timeout\": \"1s\"", NULL: none). */
static inline struct fx_tc *fx_tc_with(const char *key, const char *value,
                                       const char *extra, const char *conf,
                                       struct db_pool *db)
{
  cJSON *f = cJSON_CreateObject();
  cJSON_AddStringToObject(f, key, value);
  char *txt = cJSON_PrintUnformatted(f);
  cJSON_Delete(f);
  size_t l = txt ? strlen(txt) : 0;
  size_t cap = l + (extra ? strlen(extra) : 0) + 8;
  char *buf = malloc(cap);
  struct fx_tc *c = NULL;
  if (txt && buf) {
    snprintf(buf, cap, "%.*s%s%s}", (int)(l - 1), txt, extra ? ", " : "",
             extra ? extra : "");
    c = fx_tc_new(buf, conf, db);
  }
  free(buf);
  free(txt);
  return c;
}

/* Run task type TYPE on c (err e cleared first); with VERBOSE set, the
 * kept lines are printed when it fails. */
static inline enum err_code fx_tc_run(struct fx_tc *c, const char *type,
                                      struct err *e)
{
  const struct task_type *ty = task_type_find(type);
  if (!ty)
    return err_set(e, ERR_NOTFOUND, "no type %s", type);
  err_clear(e);
  enum err_code rc = ty->run(&c->t, e);
  if (rc != ERR_OK && getenv("VERBOSE"))
    fx_tc_dump(c);
  return rc;
}

/* ---- a task run as a queue job, to be cancelled ---------------------- */

struct fx_tc_job {
  struct fx_tc *c;
  const char *type;
  enum err_code run_rc;
  char run_msg[ERR_MSG_MAX];
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int done;
  enum err_code done_rc;
};

static inline enum err_code fx_tc_job_fn(struct queue_job_ctx *ctx,
                                         void *arg,
                            struct err *e)
{
  struct fx_tc_job *j = arg;
  struct err e2 = {0};
  j->c->t.job = ctx;
  j->run_rc = task_type_find(j->type)->run(&j->c->t, &e2);
  memcpy(j->run_msg, e2.msg, sizeof(j->run_msg));
  return err_set(e, j->run_rc, "%s", e2.msg);
}

static inline void fx_tc_job_done(uint64_t id, enum err_code code,
                                  const struct err *e,
                     void *arg)
{
  (void)id;
  (void)e;
  struct fx_tc_job *j = arg;
  pthread_mutex_lock(&j->mu);
  j->done = 1;
  j->done_rc = code;
  pthread_cond_signal(&j->cv);
  pthread_mutex_unlock(&j->mu);
}

/* Run j->c as a job of queue Q (task type j->type), cancel it once a line
 * of STREAM contains STARTED, wait for it to end: j->run_rc and j->run_msg
 * then say how the attempt ended.  Checks (check.h) that the line came
 * and that the cancel was taken. */
static inline void fx_tc_cancel_run(struct queue *q, struct fx_tc_job *j,
                                    const char *stream,
                                    const char *started)
{
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  uint64_t id = 0;
  if (queue_submit(q, QUEUE_PRIO_NORMAL, fx_tc_job_fn, fx_tc_job_done, j, 0,
                   &id) !=
      ERR_OK) {
    fprintf(stderr, "  queue_submit failed\n");
    check_cur_failed = 1;
    return;
  }
  for (int i = 0; i < 2000 && !fx_tc_has(j->c, stream, started); i++)
    fx_msleep(5);
  CHECK(fx_tc_has(j->c, stream, started));
  CHECK_EQ_INT(queue_cancel(q, id), ERR_OK);
  pthread_mutex_lock(&j->mu);
  while (!j->done)
    pthread_cond_wait(&j->cv, &j->mu);
  pthread_mutex_unlock(&j->mu);
  pthread_cond_destroy(&j->cv);
  pthread_mutex_destroy(&j->mu);
}

#endif
