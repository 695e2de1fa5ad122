/* sched_local.c - DAG runs started from the command line outside the
 * daemon's loop (sched_local.h): `dags test` and `dags backfill --local`
 * run the tasks here, `dags backfill` queues runs for the daemons.
 *
 * A local run drives its tasks in topological order in memory (every
 * upstream task is decided before its downstream ones, so trigger rules
 * never wait) and records every step in the same rows a daemon writes,
 * under a "test:" claim that the daemons recognise (sched_claim.c leaves
 * such runs to this process while it lives and fails them when it is
 * gone).
 */
#include "mlopsd/sched_local.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/db.h"
#include "mlopsd/queue.h"
#include "sched_int.h"

struct prep {
  const struct dag *d;
  const struct sched_core *core;
  const char *run_id;
  const char *when;
  const char *conf;          /* JSON text or NULL */
  int backfill;              /* existing run: report, don't replace;
                                count max_active_runs */
  /* out (reset by every try of the transaction) */
  int64_t run_row;
  int exists;                /* backfill: the date already has a run */
  int busy;                  /* backfill: max_active_runs are running */
  int64_t running;
  char other[SCHED_RUN_ID_MAX + 64]; /* the existing or replaced run */
};

struct oldrun {
  int64_t id;
  char state[16];
  char run_id[SCHED_RUN_ID_MAX + 1];
  char claimed_by[SCHED_CLAIM_MAX];
};

static int oldrun_cb(void *user, const struct db_row *row)
{
  struct oldrun *o = user;
  o->id = db_row_i64(row, 0);
  db_row_copy(row, 1, o->state, sizeof(o->state));
  db_row_copy(row, 2, o->run_id, sizeof(o->run_id));
  db_row_copy(row, 3, o->claimed_by, sizeof(o->claimed_by));
  return 1;
}

static int noop_cb(void *user, const struct db_row *row)
{
  (void)user;
  (void)row;
  return 0;
}

static enum err_code drop_run(struct db_conn *c, const struct oldrun *o,
                              struct err *e)
{
  enum err_code rc;
  struct db_val q[1] = {DB_V_STR(o->run_id)};
  struct db_val qi[1] = {DB_V_INT(o->id)};
  if ((rc = db_exec_params(c, "DELETE FROM task_log WHERE run_id = ?", q, 1,
                           NULL, e)) != ERR_OK ||
      (rc = db_exec_params(c, "DELETE FROM task_instance WHERE run_id = ?",
                           q, 1, NULL, e)) != ERR_OK)
    return rc;
  return db_exec_params(c, "DELETE FROM dag_run WHERE id = ?", qi, 1, NULL,
                        e);
}

/* Record the run as running under this process's claim, with its task
 * instances.  dags test replaces a finished run of the date and refuses an
 * active one; backfill keeps any run it finds (pr->exists) except one left
 * running by a dead `test:` process on this host, and counts running runs
 * under the `dag` row lock the daemons take when they promote runs. */
static enum err_code prep_txn(struct db_conn *c, void *user, struct err *e)
{
  struct prep *pr = user;
  struct oldrun o;
  enum err_code rc;
  memset(&o, 0, sizeof(o));
  pr->run_row = 0;
  pr->exists = pr->busy = 0;
  pr->running = 0;
  pr->other[0] = '\0';
  struct db_val p[2] = {DB_V_STR(pr->d->dag_id), DB_V_STR(pr->when)};
  if (pr->backfill &&
      ((rc = db_exec_params(c, "INSERT IGNORE INTO dag (dag_id) VALUES (?)",
                            p, 1, NULL, e)) != ERR_OK ||
       (rc = db_query(c, "SELECT dag_id FROM dag WHERE dag_id = ? FOR UPDATE",
                      p, 1, noop_cb, NULL, NULL, e)) != ERR_OK))
    return rc;
  rc = db_query(c,
                "SELECT id, state, run_id, claimed_by FROM dag_run WHERE "
                "dag_id = ? AND logical_date = ? AND logical_date_us = 0 "
                "FOR UPDATE",
                p, 2, oldrun_cb, &o, NULL, e);
  if (rc != ERR_OK)
    return rc;
  int orphan = 0;
  if (o.id) {
    int active = !strcmp(o.state, "queued") || !strcmp(o.state, "running");
    orphan = pr->backfill && !strcmp(o.state, "running") &&
             !strncmp(o.claimed_by, "test:", 5) &&
             sched_claim_dead(pr->core, o.claimed_by);
    if (pr->backfill && !orphan) {
      pr->exists = 1;
      snprintf(pr->other, sizeof(pr->other), "%s (%s)", o.run_id, o.state);
      return ERR_OK;
    }
    if (active && !orphan)
      return err_set(e, ERR_STATE,
                     "run %s of that date is %s; wait for it to finish or "
                     "test another date",
                     o.run_id, o.state);
  }
  if (pr->backfill) {
    if ((rc = db_query_i64(c,
                           "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? "
                           "AND state = 'running'",
                           p, 1, &pr->running, e)) != ERR_OK)
      return rc;
    if (orphan)
      pr->running--;
    if (pr->running >= pr->d->max_active_runs) {
      pr->busy = 1;
      return ERR_OK;
    }
  }
  if (o.id) {
    if ((rc = drop_run(c, &o, e)) != ERR_OK)
      return rc;
    snprintf(pr->other, sizeof(pr->other), "%s (%s%s)", o.run_id, o.state,
             orphan ? ", left by a process that is gone" : "");
  }
  /* a backfill's runs are not externally triggered, a manual run is */
  struct db_val ins[7] = {DB_V_STR(pr->run_id),
                          DB_V_STR(pr->d->dag_id),
                          DB_V_STR(pr->when),
                          DB_V_STR(pr->backfill ? "backfill" : "manual"),
                          pr->conf ? DB_V_STR(pr->conf) : DB_V_NULL,
                          DB_V_INT(pr->backfill ? 0 : 1),
                          DB_V_STR(pr->core->claim_id)};
  if ((rc = db_exec_params(c,
                           "INSERT INTO dag_run (run_id, dag_id, "
                           "logical_date, run_type, state, conf, "
                           "queued_at, start_date, external_trigger, "
                           "claimed_by, heartbeat_at) VALUES (?, ?, ?, "
                           "?, 'running', ?, UTC_TIMESTAMP(6), "
                           "UTC_TIMESTAMP(6), ?, ?, UTC_TIMESTAMP(6))",
                           ins, 7, NULL, e)) != ERR_OK)
    return rc;
  pr->run_row = db_last_insert_id(c);
  return sched_insert_tis(c, pr->d, pr->run_id, 1, e);
}

static enum err_code ti_mark(struct db_conn *c, const char *run_id,
                             const char *task_id, const char *state,
                             const struct sched_core *core, int64_t *ti_id,
                             struct err *e)
{
  struct db_val p[2] = {DB_V_STR(run_id), DB_V_STR(task_id)};
  enum err_code rc = db_query_i64(c,
                                  "SELECT id FROM task_instance WHERE "
                                  "run_id = ? AND task_id = ?",
                                  p, 2, ti_id, e);
  if (rc != ERR_OK)
    return rc;
  if (!strcmp(state, TI_RUNNING)) {
    struct db_val u[4] = {DB_V_STR(core->host), DB_V_INT(core->pid),
                          DB_V_STR(core->claim_id), DB_V_INT(*ti_id)};
    return db_exec_params(c,
                          "UPDATE task_instance SET state = 'running', "
                          "try_number = 1, start_date = UTC_TIMESTAMP(6), "
                          "hostname = ?, pid = ?, claimed_by = ?, "
                          "heartbeat_at = UTC_TIMESTAMP(6) WHERE id = ?",
                          u, 4, NULL, e);
  }
  struct db_val u[2] = {DB_V_STR(state), DB_V_INT(*ti_id)};
  return db_exec_params(c,
                        "UPDATE task_instance SET state = ?, end_date = "
                        "UTC_TIMESTAMP(6) WHERE id = ?",
                        u, 2, NULL, e);
}

struct test_lookup {
  struct dag_set *set;
};

static struct dag *test_dag_get(void *user, const char *dag_id)
{
  struct test_lookup *l = user;
  struct dag *d = dag_set_find(l->set, dag_id);
  return d ? dag_ref(d) : NULL;
}

/* What running DAGs in this process needs: the tasks' own pool (as in the
 * daemon) and a scheduler core with its heartbeat / log flusher thread. */
struct sched_local {
  const struct cron_tz *tz;
  struct db_conn *c;           /* borrowed: records runs */
  struct db_pool *task_db;
  struct sched_core core;
  struct test_lookup tl;
  int core_ok, hb_ok;
};

enum err_code sched_local_create(struct sched_local **out,
                                 const struct cfg *cfg,
                                 const struct cron_tz *tz,
                                 struct db_pool *meta, struct db_conn *c,
                                 struct dag_set *set, int echo,
                                 struct err *e)
{
  *out = NULL;
  struct sched_local *l = calloc(1, sizeof(*l));
  if (!l)
    return err_set(e, ERR_NOMEM, "out of memory");
  l->tz = tz;
  l->c = c;
  l->tl.set = set;
  /* the task pool's connections are set up as every other pool's
   * (database.wsrep_sync_wait included); read_timeout 0 (none) as this
   * pool always had */
  struct db_opts o;
  db_opts_from_cfg(&o, cfg, 3, 0);
  enum err_code rc = db_pool_create(&l->task_db, &o, e);
  if (rc != ERR_OK) {
    sched_local_destroy(l);
    return rc;
  }
  if (sched_core_init(&l->core) != 0) {
    sched_local_destroy(l);
    return err_set(e, ERR_NOMEM, "out of memory");
  }
  l->core_ok = 1;
  l->core.cfg = cfg;
  l->core.meta = meta;
  l->core.task_db = l->task_db;
  l->core.tz = tz;
  l->core.lease_s = cfg->sched_lease_s > 0 ? cfg->sched_lease_s : 30;
  l->core.echo = echo;
  l->core.dag_get = test_dag_get;
  l->core.dag_get_user = &l->tl;
  sched_core_ids(&l->core, "test:");
  *out = l;
  return ERR_OK;
}

void sched_local_destroy(struct sched_local *l)
{
  if (!l)
    return;
  if (l->hb_ok)
    sched_core_hb_stop(&l->core);
  if (l->core_ok)
    sched_core_fini(&l->core);
  db_pool_destroy(l->task_db);
  free(l);
}

/* In-memory task states of a local run, in dag task order. */
enum { T_SUCCESS = 1, T_FAILED, T_SKIPPED, T_UFAIL };

/* Stage 1: record the run (prep_txn) and start the heartbeat thread.
 * *go 0: nothing to run (r->exists or r->busy). */
static enum err_code run_prepare(struct sched_local *l, struct dag *d,
                                 time_t lt, enum sched_local_mode mode,
                                 const char *conf,
                                 struct sched_local_result *r,
                                 int64_t *run_row, int *go, struct err *e)
{
  struct sched_core *core = &l->core;
  enum err_code rc;
  char when[20], iso[CRON_ISO_LEN], ds[CRON_DATE_LEN];
  *go = 0;
  sched_run_id(d->dag_id, mode == SCHED_LOCAL_TEST ? "test" : "backfill",
               l->tz, lt, r->run_id, sizeof(r->run_id));
  sched_fmt_utc(lt, when);
  cron_fmt_iso(l->tz, lt, iso);
  cron_fmt_date(l->tz, lt, ds);
  struct prep pr = {.d = d,
                    .core = core,
                    .run_id = r->run_id,
                    .when = when,
                    .conf = conf,
                    .backfill = mode != SCHED_LOCAL_TEST};
  if ((rc = sched_txn(l->c, prep_txn, &pr, e)) != ERR_OK)
    return rc;
  snprintf(r->other, sizeof(r->other), "%s", pr.other);
  if (pr.exists || pr.busy) {
    r->exists = pr.exists;
    r->busy = pr.busy;
    r->running = pr.running;
    return ERR_OK;
  }
  atomic_store(&core->run_hb_id, pr.run_row);
  if (!l->hb_ok) {
    if ((rc = sched_core_hb_start(core, e)) != ERR_OK)
      return rc;
    l->hb_ok = 1;
  }
  if (mode == SCHED_LOCAL_TEST) {
    if (pr.other[0])
      printf("replacing run %s\n", pr.other);
    printf("dags test: DAG %s, run %s, logical date %s (ds %s), %zu tasks\n",
           d->dag_id, r->run_id, iso, ds, d->ntasks);
  } else if (pr.other[0]) {
    printf("replacing run %s\n", pr.other);
  }
  fflush(stdout);
  *run_row = pr.run_row;
  *go = 1;
  return ERR_OK;
}

/* Stage 2, one task (index i): decide it by its trigger rule over st[],
 * run it if it runs, record and print the outcome in st[i] and r. */
static enum err_code run_task(struct sched_local *l, struct dag *d, size_t i,
                              time_t lt, const char *conf, int tasks_out,
                              int *st, struct sched_local_result *r,
                              struct err *e)
{
  struct sched_core *core = &l->core;
  const struct dag_task *t = &d->tasks[i];
  enum err_code rc;
  int cnt[5] = {0};
  for (size_t u = 0; u < t->nupstream; u++)
    cnt[st[t->upstream[u]]]++;
  enum sched_decision dec =
      sched_trigger_rule(t->trigger_rule, (int)t->nupstream, cnt[T_SUCCESS],
                         cnt[T_SKIPPED], cnt[T_FAILED], cnt[T_UFAIL]);
  int64_t ti_id = 0;
  if (dec != SCHED_RUN) {
    const char *s = dec == SCHED_SKIP ? TI_SKIPPED : TI_UPSTREAM_FAILED;
    st[i] = dec == SCHED_SKIP ? T_SKIPPED : T_UFAIL;
    if ((rc = ti_mark(l->c, r->run_id, t->id, s, core, &ti_id, e)) != ERR_OK)
      return rc;
    if (tasks_out)
      printf("=== %s: %s (trigger rule %s) ===\n", t->id, s,
             dag_trigger_rule_name(t->trigger_rule));
    fflush(stdout);
    return ERR_OK;
  }
  if ((rc = ti_mark(l->c, r->run_id, t->id, TI_RUNNING, core, &ti_id, e)) !=
      ERR_OK)
    return rc;
  if (tasks_out) {
    printf("=== %s (%s) ===\n", t->id, t->type_name);
    fflush(stdout);
  }
  struct sched_attempt *a =
      sched_attempt_new(core, d, i, ti_id, r->run_id, 1, 1, lt, conf);
  if (!a)
    return err_set(e, ERR_NOMEM, "out of memory");
  a->run_hb = 1;
  sched_live_add(a);
  int64_t t0 = queue_now_ms();
  int64_t deadline =
      t->retry.timeout_s > 0 ? t0 + (int64_t)t->retry.timeout_s * 1000 : 0;
  struct err te = {0};
  enum err_code trc = sched_attempt_exec(a, NULL, deadline, &te);
  char state[16] = "";
  int lost = 0;
  rc = sched_attempt_finish(a, trc, &te, state, &lost, NULL, e);
  sched_live_remove(a);
  sched_attempt_unref(a);
  if (rc != ERR_OK)
    return rc;
  st[i] = !strcmp(state, TI_SUCCESS)   ? T_SUCCESS
          : !strcmp(state, TI_SKIPPED) ? T_SKIPPED
                                       : T_FAILED;
  if (st[i] == T_FAILED && !r->failed_task[0]) {
    snprintf(r->failed_task, sizeof(r->failed_task), "%s", t->id);
    snprintf(r->error, sizeof(r->error), "%s",
             te.msg[0] ? te.msg : err_str(trc));
  }
  if (tasks_out) {
    printf("=== %s: %s (%.1fs)%s%s ===\n", t->id, state,
           (double)(queue_now_ms() - t0) / 1000.0, trc ? ": " : "",
           trc ? te.msg : "");
    fflush(stdout);
  }
  return ERR_OK;
}

/* Stage 3: the run failed if a leaf task failed or is upstream_failed;
 * write its end (only while it is still this process's claim). */
static enum err_code run_end(struct sched_local *l, const struct dag *d,
                             const int *st, int64_t run_row, int *failed,
                             struct err *e)
{
  *failed = 0;
  for (size_t i = 0; i < d->ntasks; i++) {
    int leaf = d->tasks[i].ndownstream == 0;
    if (leaf && (st[i] == T_FAILED || st[i] == T_UFAIL))
      *failed = 1;
  }
  struct db_val u[3] = {DB_V_STR(*failed ? "failed" : "success"),
                        DB_V_INT(run_row), DB_V_STR(l->core.claim_id)};
  return db_exec_params(l->c,
                        "UPDATE dag_run SET state = ?, end_date = "
                        "UTC_TIMESTAMP(6) WHERE id = ? AND claimed_by = ?",
                        u, 3, NULL, e);
}

enum err_code sched_local_run(struct sched_local *l, struct dag *d,
                              time_t lt, enum sched_local_mode mode,
                              const char *conf,
                              struct sched_local_result *r, struct err *e)
{
  int tasks_out = mode != SCHED_LOCAL_BACKFILL;
  int64_t run_row = 0;
  int go = 0, failed = 0;
  memset(r, 0, sizeof(*r));
  enum err_code rc =
      run_prepare(l, d, lt, mode, conf, r, &run_row, &go, e);
  if (rc != ERR_OK || !go)
    return rc;
  int64_t run_t0 = queue_now_ms();
  int *st = calloc(d->ntasks ? d->ntasks : 1, sizeof(*st));
  if (!st)
    rc = err_set(e, ERR_NOMEM, "out of memory");
  for (size_t k = 0; rc == ERR_OK && k < d->ntasks; k++)
    rc = run_task(l, d, d->topo[k], lt, conf, tasks_out, st, r, e);
  if (rc == ERR_OK)
    rc = run_end(l, d, st, run_row, &failed, e);
  if (rc == ERR_OK) {
    r->failed = failed;
    r->secs = (double)(queue_now_ms() - run_t0) / 1000.0;
    if (mode == SCHED_LOCAL_TEST)
      printf("run %s: %s\n", r->run_id, failed ? "failed" : "success");
  }
  atomic_store(&l->core.run_hb_id, 0);
  free(st);
  return rc;
}

/* Queue a backfill run of d at t (daemon mode).  *created 0: the date has
 * a run already, described in other. */
enum err_code sched_backfill_queue(struct db_conn *c,
                                   const struct cron_tz *tz,
                                   const struct dag *d, time_t t,
                                   const char *conf, char *run_id,
                                   size_t cap, int *created, char *other,
                                   size_t ocap, struct err *e)
{
  char when[20];
  sched_run_id(d->dag_id, "backfill", tz, t, run_id, cap);
  sched_fmt_utc(t, when);
  enum err_code rc = sched_queue_run(c, run_id, d->dag_id, when, "backfill",
                                     conf, created, e);
  if (rc != ERR_OK)
    return rc;
  if (*created)
    return ERR_OK;
  struct oldrun o;
  memset(&o, 0, sizeof(o));
  struct db_val q[2] = {DB_V_STR(d->dag_id), DB_V_STR(when)};
  if ((rc = db_query(c,
                     "SELECT id, state, run_id, claimed_by FROM dag_run "
                     "WHERE dag_id = ? AND logical_date = ? "
                     "AND logical_date_us = 0",
                     q, 2, oldrun_cb, &o, NULL, e)) != ERR_OK)
    return rc;
  snprintf(other, ocap, "%s (%s)", o.id ? o.run_id : "?",
           o.id ? o.state : "?");
  return ERR_OK;
}

