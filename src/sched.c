/* sched.c - the scheduler loop of `mlopsd serve` (sched.h).
 *
 * One scheduler thread does, every tick (scheduler.tick_ms):
 *   1. every rescan_ms, look at the DAG directory: files whose stat (or
 *      sql_file) changed are loaded again; a file that no longer loads
 *      keeps its last good version (error logged once, and stored in
 *      dag.import_error), a removed file drops its DAG;
 *   2. create the runs due by cron (catch-up rules below), under the DAG's
 *      `dag` row lock so daemons sharing the database agree;
 *   3. promote queued runs to running while max_active_runs allows (same
 *      lock), inserting their task instances;
 *   4. every second, take over expired claims; every few seconds,
 *      re-evaluate running runs (recovery after crashes and DAG edits);
 *   5. claim queued task instances up to the free worker slots and submit
 *      one queue job per attempt.
 * A finished attempt records its result and evaluates its run on the
 * worker thread that ran it, then claims the next task right there: the
 * downstream task of a chain starts without waiting for a tick.  A second
 * thread (sched_run.c) flushes task logs and sends heartbeats.  Steps 4
 * and 5 (claims, attempts, takeover, sweep) are in sched_claim.c.
 *
 * Catch-up (logical date = cron fire time, Airflow 3's
 * CronTriggerTimetable): `dag.last_scheduled_date` holds the latest fire
 * time a run was created for.  catchup: false creates a run for the
 * latest fire time <= now only (after downtime: one run, never a burst);
 * catchup: true creates every fire time after last_scheduled_date (or
 * from start_date), oldest first, while queued + running runs stay below
 * max_active_runs, the rest on later ticks.  Runs for fire times older
 * than the latest are recorded as run_type 'backfill'.
 */
#include "mlopsd/sched.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/queue.h"
#include "mlopsd/vec.h"
#include "sched_int.h"
#include "sched_loop_int.h"

#define CATCHUP_BATCH 500
#define CB_SUBMIT_TIMEOUT_MS 30000


/* ------------------------------------------------------------------ */
/* snapshots                                                           */

void sched_snap_unref(struct snap *s)
{
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
    return;
  for (size_t i = 0; i < s->n; i++)
    dag_destroy(s->v[i].d);
  free(s->v);
  free(s->in_list);
  free(s);
}

static struct snap *snap_get(struct sched *s)
{
  pthread_mutex_lock(&s->mu);
  struct snap *p = s->snap;
  atomic_fetch_add(&p->refs, 1);
  pthread_mutex_unlock(&s->mu);
  return p;
}

static int sdag_cmp(const void *a, const void *b)
{
  return strcmp(((const struct sdag *)a)->d->dag_id,
                ((const struct sdag *)b)->d->dag_id);
}

struct sdag *sched_snap_find(const struct snap *p, const char *dag_id)
{
  size_t lo = 0, hi = p->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(p->v[mid].d->dag_id, dag_id);
    if (c == 0)
      return &p->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static struct dag *dag_get_cb(void *user, const char *dag_id)
{
  struct sched *s = user;
  struct dag *d = NULL;
  pthread_mutex_lock(&s->mu);
  struct sdag *sd = sched_snap_find(s->snap, dag_id);
  if (sd)
    d = dag_ref(sd->d);
  pthread_mutex_unlock(&s->mu);
  return d;
}

/* ------------------------------------------------------------------ */
/* small helpers                                                       */

int sched_is_stopping(struct sched *s)
{
  pthread_mutex_lock(&s->mu);
  int stop = s->stopping;
  pthread_mutex_unlock(&s->mu);
  return stop;
}

/* A bookkeeping connection, or NULL (warned, rate limited).  Once a stop
 * is requested the wait is short: with MariaDB down every acquire sits
 * through its whole timeout in connect retries, and the steps of one
 * scheduler pass would add those up past Docker's 30 s stop grace. */
struct db_conn *sched_conn_get(struct sched *s, const char *what)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int ms = sched_is_stopping(s) ? SCHED_STOP_ACQUIRE_MS : SCHED_ACQUIRE_MS;
  if (db_acquire(s->core.meta, ms, &c, &e) != ERR_OK) {
    sched_warn(&s->core, "%s: %s", what, e.msg);
    pthread_mutex_lock(&s->mu);
    snprintf(s->db_err, sizeof(s->db_err), "%s", e.msg);
    pthread_mutex_unlock(&s->mu);
    atomic_store(&s->db_fail_ms, queue_now_ms());
    return NULL;
  }
  atomic_store(&s->db_ok_ms, queue_now_ms());
  return c;
}

int sched_ready(struct sched *s, char *buf, size_t cap)
{
  if (!s) {
    snprintf(buf, cap, "scheduler not started");
    return 0;
  }
  int64_t ok = atomic_load(&s->db_ok_ms), fail = atomic_load(&s->db_fail_ms);
  if (ok == 0 && fail == 0) {
    snprintf(buf, cap, "scheduler: no database contact yet");
    return 0;
  }
  if (fail > ok) {
    pthread_mutex_lock(&s->mu);
    snprintf(buf, cap, "scheduler: database not reachable: %s", s->db_err);
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  return 1;
}

void sched_conn_put(struct sched *s, struct db_conn *c)
{
  db_release(s->core.meta, c);
}

void sched_count_ti(struct sched *s, const char *state)
{
  static const char *const names[4] = {TI_SUCCESS, TI_FAILED,
                                       TI_UP_FOR_RETRY, TI_SKIPPED};
  for (int i = 0; i < 4; i++)
    if (s->m_ti[i] && !strcmp(state, names[i]))
      metrics_counter_add(s->m_ti[i], 1);
}

int sched_runinfo_cb(void *user, const struct db_row *row)
{
  struct runinfo *r = user;
  r->found = sched_parse_utc(db_row_str(row, 0, NULL), &r->logical_ts) == 0;
  const char *c = db_row_str(row, 1, NULL);
  r->conf = c ? strdup(c) : NULL;
  return 1;
}

/* A finished run: log, count, callback (a LOW job: an HTTP call never
 * holds up the worker that finished the run).  The job carries copies of
 * all it needs, so it does not depend on the scheduler staying alive. */
struct cb_job {
  struct dag *d;
  char run_id[SCHED_RUN_ID_MAX + 1];
  char state[16];
  char failed[512];
  char ds[CRON_DATE_LEN], iso[CRON_ISO_LEN];
  cJSON *conf;
};

static enum err_code cb_fn(struct queue_job_ctx *jc, void *arg, struct err *e)
{
  struct cb_job *j = arg;
  (void)jc;
  (void)e;
  sched_callback_send(j->d, j->run_id, j->state, j->ds, j->iso, j->conf,
                      j->failed);
  return ERR_OK;
}

static void cb_done(uint64_t id, enum err_code code, const struct err *e,
                    void *arg)
{
  struct cb_job *j = arg;
  (void)id;
  if (code != ERR_OK)
    LOG_W(MOD, "dag=%s run=%s callback not sent: %s", j->d->dag_id,
          j->run_id, e ? e->msg : err_str(code));
  dag_destroy(j->d);
  cJSON_Delete(j->conf);
  free(j);
}

void sched_run_finished(struct sched *s, struct dag *d, const char *run_id,
                        const struct sched_eval *ev, time_t logical_ts,
                        const cJSON *conf)
{
  int ok = !strcmp(ev->state, "success");
  if (ok)
    LOG_I(MOD, "dag=%s run=%s finished state=success", d->dag_id, run_id);
  else
    LOG_W(MOD, "dag=%s run=%s finished state=failed failed_tasks=%s",
          d->dag_id, run_id, ev->failed[0] ? ev->failed : "-");
  if (s->m_run[ok ? 0 : 1])
    metrics_counter_add(s->m_run[ok ? 0 : 1], 1);
  const struct dag_callback *cb = ok ? &d->on_success : &d->on_failure;
  pthread_mutex_lock(&s->mu);
  s->wake_promote = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (!cb->url)
    return;
  struct cb_job *j = calloc(1, sizeof(*j));
  if (!j)
    return;
  char *conf_text = NULL;
  if (logical_ts == 0 || !conf) { /* the caller did not have the run */
    struct db_conn *c = sched_conn_get(s, "callback");
    struct runinfo ri = {0};
    struct err qe = {0};
    struct db_val q[1] = {DB_V_STR(run_id)};
    if (c && db_query(c,
                      "SELECT logical_date, conf FROM dag_run WHERE run_id "
                      "= ?",
                      q, 1, sched_runinfo_cb, &ri, NULL, &qe) == ERR_OK &&
        ri.found && logical_ts == 0)
      logical_ts = ri.logical_ts;
    conf_text = ri.conf;
    if (c)
      sched_conn_put(s, c);
  }
  j->d = dag_ref(d);
  snprintf(j->run_id, sizeof(j->run_id), "%s", run_id);
  snprintf(j->state, sizeof(j->state), "%s", ev->state);
  snprintf(j->failed, sizeof(j->failed), "%s", ev->failed);
  cron_fmt_date(s->tz, logical_ts, j->ds);
  cron_fmt_iso(s->tz, logical_ts, j->iso);
  j->conf = conf ? cJSON_Duplicate(conf, 1)
                 : conf_text ? cJSON_Parse(conf_text) : NULL;
  free(conf_text);
  if (queue_submit(s->q, QUEUE_PRIO_LOW, cb_fn, cb_done, j,
                   CB_SUBMIT_TIMEOUT_MS, NULL) != ERR_OK) {
    LOG_W(MOD, "dag=%s run=%s callback not sent: queue full or stopping",
          d->dag_id, run_id);
    cb_done(0, ERR_OK, NULL, j);
  }
}

/* ------------------------------------------------------------------ */
/* DAG directory                                                       */

/* Write the `dag` row of a (re)loaded DAG; clears its import error. */
static enum err_code dag_row_sync(struct db_conn *c, const struct dag *d,
                                  struct err *e)
{
  struct db_val p[2] = {DB_V_STR(d->dag_id), DB_V_STR(d->path)};
  return db_exec_params(c,
                        "INSERT INTO dag (dag_id, is_paused, last_parsed_at, "
                        "fileloc) VALUES (?, 0, UTC_TIMESTAMP(6), ?) ON "
                        "DUPLICATE KEY UPDATE last_parsed_at = "
                        "VALUES(last_parsed_at), fileloc = VALUES(fileloc), "
                        "import_error = NULL",
                        p, 2, NULL, e);
}

static void dag_row_error(struct sched *s, const char *dag_id,
                          const char *msg)
{
  struct db_conn *c = sched_conn_get(s, "import error");
  struct err e = {0};
  if (!c)
    return;
  struct db_val p[2] = {DB_V_STR(msg), DB_V_STR(dag_id)};
  if (db_exec_params(c, "UPDATE dag SET import_error = ? WHERE dag_id = ?",
                     p, 2, NULL, &e) != ERR_OK)
    sched_warn(&s->core, "import error of %s not stored: %s", dag_id, e.msg);
  sched_conn_put(s, c);
}

struct paused_set {
  char **v;
  size_t n, cap;
  int oom;
};

static int paused_cb(void *user, const struct db_row *row)
{
  struct paused_set *p = user;
  if (VEC_RESERVE(p->v, p->cap, p->n + 1)) {
    p->oom = 1;
    return 1;
  }
  const char *id = db_row_str(row, 0, NULL);
  if (!(p->v[p->n] = strdup(id ? id : ""))) {
    p->oom = 1;
    return 1;
  }
  p->n++;
  return 0;
}

static int str_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What a rescan found changed in the directory (dag_dir_scan): logged,
 * and a file that broke has its error stored in its `dag` row. */
static void dir_event(void *user, enum dag_dir_event ev,
                      const struct dag_dir_file *f)
{
  struct sched *s = user;
  switch (ev) {
  case DAG_DIR_LOADED:
  case DAG_DIR_RELOADED:
    LOG_I(MOD, "dag=%s %s from %s (%zu tasks, schedule %s)", f->good->dag_id,
          ev == DAG_DIR_LOADED ? "loaded" : "reloaded", f->path,
          f->good->ntasks, f->good->schedule ? f->good->schedule : "none");
    break;
  case DAG_DIR_BROKEN:
    if (f->good) {
      LOG_E(MOD, "dag=%s %s (keeping the last good version)",
            f->good->dag_id, f->err);
      dag_row_error(s, f->good->dag_id, f->err);
    } else {
      LOG_E(MOD, "%s (DAG not loaded)", f->err);
    }
    break;
  case DAG_DIR_REMOVED:
    LOG_I(MOD, "dag=%s removed (%s is gone)", f->good->dag_id, f->path);
    break;
  case DAG_DIR_DUPLICATE:
    LOG_E(MOD, "%s (file ignored)", f->dup);
    break;
  }
}

/* Write the `dag` rows of new versions (mark: written), then read the
 * pause flags into *ps (sorted).  Returns 1 if the flags were read. */
static int sync_dag_rows(struct sched *s, struct paused_set *ps)
{
  struct db_conn *c = NULL;
  for (size_t i = 0; i < dag_dir_count(s->dir); i++) {
    struct dag_dir_file *f = dag_dir_at(s->dir, i);
    if (!f->good || f->dup || f->mark)
      continue;
    if (!c && !(c = sched_conn_get(s, "DAG rows")))
      break;
    struct err e = {0};
    if (dag_row_sync(c, f->good, &e) == ERR_OK)
      f->mark = 1;
    else
      sched_warn(&s->core, "dag=%s row not written: %s", f->good->dag_id,
                 e.msg);
  }
  int have_paused = 0;
  if (c || (c = sched_conn_get(s, "pause flags"))) {
    struct err e = {0};
    if (db_query(c, "SELECT dag_id FROM dag WHERE is_paused = 1", NULL, 0,
                 paused_cb, ps, NULL, &e) == ERR_OK &&
        !ps->oom)
      have_paused = 1;
    else
      sched_warn(&s->core, "pause flags: %s", e.msg);
    sched_conn_put(s, c);
  }
  if (have_paused && ps->n)
    qsort(ps->v, ps->n, sizeof(*ps->v), str_cmp);
  return have_paused;
}

/* A snapshot of the good versions (duplicates left out), carrying over
 * next_check of unchanged DAGs and, when the flags could not be read,
 * their pause flags.  NULL on out of memory. */
static struct snap *snap_build(struct sched *s, const struct snap *old,
                               const struct paused_set *ps, int have_paused)
{
  size_t nn = dag_dir_count(s->dir);
  struct snap *p = calloc(1, sizeof(*p));
  if (p)
    p->v = calloc(nn ? nn : 1, sizeof(*p->v));
  if (!p || !p->v) {
    free(p);
    return NULL;
  }
  atomic_init(&p->refs, 1);
  for (size_t i = 0; i < nn; i++) {
    const struct dag_dir_file *f = dag_dir_at(s->dir, i);
    struct dag *d = f->good;
    if (!d || f->dup)
      continue;
    struct sdag *sd = &p->v[p->n++];
    sd->d = dag_ref(d);
    struct sdag *prev = old ? sched_snap_find(old, d->dag_id) : NULL;
    sd->next_check = prev && prev->d == d ? prev->next_check : 0;
    if (have_paused)
      sd->paused = ps->n && bsearch(&d->dag_id, ps->v, ps->n, sizeof(*ps->v),
                                    str_cmp) != NULL;
    else
      sd->paused = prev ? prev->paused : 0;
  }
  qsort(p->v, p->n, sizeof(*p->v), sdag_cmp);
  size_t ll = p->n * 2 + 1;
  p->in_list = malloc(ll);
  if (p->in_list) {
    for (size_t i = 0; i < p->n; i++) {
      p->in_list[2 * i] = '?';
      p->in_list[2 * i + 1] = ',';
    }
    p->in_list[p->n ? p->n * 2 - 1 : 0] = '\0';
  }
  return p;
}

/* Look at the directory and publish a new snapshot: load what changed
 * (dag_dir_scan), write the `dag` rows and read the pause flags
 * (sync_dag_rows), build and publish the snapshot (snap_build). */
static void rescan(struct sched *s)
{
  struct err e = {0};
  int changed = 0;
  enum err_code rc = dag_dir_scan(s->dir, dir_event, s, &changed, &e);
  if (rc == ERR_NOTFOUND || rc == ERR_IO) {
    if (!s->dir_warned)
      LOG_W(MOD, "%s (keeping the DAGs loaded; looking again every %d ms)",
            e.msg, s->rescan_ms);
    s->dir_warned = 1;
    pthread_mutex_lock(&s->mu);
    s->gen++;
    pthread_mutex_unlock(&s->mu);
    return;
  }
  s->dir_warned = 0;
  if (rc != ERR_OK)
    sched_warn(&s->core, "%s", e.msg);
  struct paused_set ps = {0};
  int have_paused = sync_dag_rows(s, &ps);
  struct snap *old = s->snap;
  struct snap *p = snap_build(s, old, &ps, have_paused);
  if (p) {
    pthread_mutex_lock(&s->mu);
    s->snap = p;
    s->gen++;
    pthread_mutex_unlock(&s->mu);
    sched_snap_unref(old);
    if (changed)
      LOG_D(MOD, "%zu DAGs loaded from %s", p->n, s->dags_dir);
  }
  for (size_t i = 0; i < ps.n; i++)
    free(ps.v[i]);
  free(ps.v);
}

/* ------------------------------------------------------------------ */
/* creating scheduled runs                                             */

struct create {
  struct sched *s;
  const struct dag *d;
  time_t now;
  int paused, created;
  time_t next_check;
  char last_run[SCHED_RUN_ID_MAX + 1];
};

struct dagrow {
  int found;
  int paused;
  char last[32];
};

static int dagrow_cb(void *user, const struct db_row *row)
{
  struct dagrow *r = user;
  const char *l = db_row_str(row, 1, NULL);
  r->found = 1;
  r->paused = (int)db_row_i64(row, 0);
  snprintf(r->last, sizeof(r->last), "%s", l ? l : "");
  return 1;
}

/* Lock the DAG's `dag` row (inserting it if missing). */
static enum err_code lock_dag_row(struct db_conn *c, const char *dag_id,
                                  struct dagrow *r, struct err *e)
{
  struct db_val p[1] = {DB_V_STR(dag_id)};
  for (int i = 0; i < 2; i++) {
    memset(r, 0, sizeof(*r));
    enum err_code rc = db_query(c,
                                "SELECT is_paused, last_scheduled_date FROM "
                                "dag WHERE dag_id = ? FOR UPDATE",
                                p, 1, dagrow_cb, r, NULL, e);
    if (rc != ERR_OK || r->found)
      return rc;
    rc = db_exec_params(c, "INSERT IGNORE INTO dag (dag_id) VALUES (?)", p,
                        1, NULL, e);
    if (rc != ERR_OK)
      return rc;
  }
  return err_set(e, ERR_DB, "dag row of %s missing", dag_id);
}

/* Room for more runs of d: max_active_runs less its runs in one of
 * states (an SQL list of quoted literals written in this file, such as
 * "'running'"; never input) into *room, which may be <= 0.  Caller holds
 * the dag row's lock (lock_dag_row) so the count stays true. */
static enum err_code dag_room(struct db_conn *c, const struct dag *d,
                              const char *states, int64_t *room,
                              struct err *e)
{
  char sql[128];
  int64_t n = 0;
  struct db_val p[1] = {DB_V_STR(d->dag_id)};
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND state IN (%s)",
           states);
  enum err_code rc = db_query_i64(c, sql, p, 1, &n, e);
  if (rc == ERR_OK)
    *room = d->max_active_runs - n;
  return rc;
}

static enum err_code insert_sched_run(struct db_conn *c, struct create *cr,
                                      time_t t, const char *type,
                                      struct err *e)
{
  char rid[SCHED_RUN_ID_MAX + 1], when[20];
  sched_run_id(cr->d->dag_id, type, cr->s->tz, t, rid, sizeof(rid));
  sched_fmt_utc(t, when);
  int created = 0;
  enum err_code rc = sched_queue_run(c, rid, cr->d->dag_id, when, type, NULL,
                                     &created, e);
  if (created) {
    cr->created++;
    snprintf(cr->last_run, sizeof(cr->last_run), "%s", rid);
  }
  return rc;
}

static enum err_code create_txn(struct db_conn *c, void *user, struct err *e)
{
  struct create *cr = user;
  const struct dag *d = cr->d;
  const struct cron_tz *tz = cr->s->tz;
  struct dagrow r;
  enum err_code rc;
  cr->paused = cr->created = 0;
  cr->next_check = 0;
  if ((rc = lock_dag_row(c, d->dag_id, &r, e)) != ERR_OK)
    return rc;
  if (r.paused) {
    cr->paused = 1;
    return ERR_OK;
  }
  time_t now = cr->now, last = 0, start = 0, latest = 0, t;
  int have_last = r.last[0] && sched_parse_utc(r.last, &last) == 0;
  if (d->start_date.set)
    start = cron_tz_resolve(tz, d->start_date.year, d->start_date.month,
                            d->start_date.day, d->start_date.hour,
                            d->start_date.minute, d->start_date.second);
  struct err ce = {0};
  int have_latest = cron_prev(&d->cron, tz, now, &latest, &ce) == ERR_OK;
  if (!have_latest || (d->start_date.set && latest < start) ||
      (have_last && latest <= last)) {
    time_t from = now;
    if (d->start_date.set && start - 1 > from)
      from = start - 1;
    if (cron_next(&d->cron, tz, from, &t, &ce) == ERR_OK)
      cr->next_check = t;
    else
      cr->next_check = now + 86400;
    return ERR_OK;
  }
  int64_t room = 0;
  if ((rc = dag_room(c, d, "'queued', 'running'", &room, e)) != ERR_OK)
    return rc;
  time_t added = 0;
  if (d->catchup && (have_last || d->start_date.set)) {
    time_t from = have_last ? last : start - 1;
    int k = 0;
    while (k < room && k < CATCHUP_BATCH &&
           cron_next(&d->cron, tz, from, &t, &ce) == ERR_OK && t <= now) {
      rc = insert_sched_run(c, cr, t, t == latest ? "scheduled" : "backfill",
                            e);
      if (rc != ERR_OK)
        return rc;
      added = from = t;
      k++;
    }
  } else if (room > 0) {
    if ((rc = insert_sched_run(c, cr, latest, "scheduled", e)) != ERR_OK)
      return rc;
    added = latest;
  }
  if (added) {
    char when[20];
    sched_fmt_utc(added, when);
    struct db_val u[2] = {DB_V_STR(when), DB_V_STR(d->dag_id)};
    if ((rc = db_exec_params(c,
                             "UPDATE dag SET last_scheduled_date = ? WHERE "
                             "dag_id = ?",
                             u, 2, NULL, e)) != ERR_OK)
      return rc;
  }
  if (added == latest && cron_next(&d->cron, tz, latest, &t, &ce) == ERR_OK)
    cr->next_check = t;
  else
    cr->next_check = now; /* more to create when runs finish */
  return ERR_OK;
}

static void create_runs(struct sched *s, struct snap *p)
{
  struct db_conn *c = NULL;
  time_t now = time(NULL);
  for (size_t i = 0; i < p->n; i++) {
    struct sdag *sd = &p->v[i];
    if (!sd->d->schedule || sd->paused ||
        (sd->next_check && now < sd->next_check))
      continue;
    if (!c && !(c = sched_conn_get(s, "creating runs")))
      return;
    struct create cr = {.s = s, .d = sd->d, .now = now};
    struct err e = {0};
    if (sched_txn(c, create_txn, &cr, &e) != ERR_OK) {
      sched_warn(&s->core, "dag=%s creating runs: %s", sd->d->dag_id,
                 e.msg);
      if (db_conn_broken(c)) {
        sched_conn_put(s, c);
        c = NULL;
      }
      continue;
    }
    if (cr.paused) {
      sd->paused = 1;
      continue;
    }
    sd->next_check = cr.next_check;
    if (cr.created) {
      LOG_I(MOD, "dag=%s created %d run(s), latest %s", sd->d->dag_id,
            cr.created, cr.last_run);
      pthread_mutex_lock(&s->mu);
      s->wake_promote = 1;
      pthread_mutex_unlock(&s->mu);
    }
  }
  if (c)
    sched_conn_put(s, c);
}

/* ------------------------------------------------------------------ */
/* promoting queued runs                                               */

void sched_idlist_free(struct idlist *l)
{
  for (size_t i = 0; i < l->n; i++)
    free(l->str[i]);
  free(l->str);
  free(l->id);
  memset(l, 0, sizeof(*l));
}

/* Rows of (id, text). */
int sched_idlist_cb(void *user, const struct db_row *row)
{
  struct idlist *l = user;
  if (VEC_RESERVE(l->id, l->cap, l->n + 1) ||
      VEC_RESERVE(l->str, l->scap, l->n + 1)) {
    l->oom = 1;
    return 1;
  }
  const char *t = db_row_str(row, 1, NULL);
  l->id[l->n] = db_row_i64(row, 0);
  if (!(l->str[l->n] = strdup(t ? t : ""))) {
    l->oom = 1;
    return 1;
  }
  l->n++;
  return 0;
}

struct promote {
  const struct dag *d;
  int promoted;
  char first[SCHED_RUN_ID_MAX + 1];
};

static enum err_code promote_txn(struct db_conn *c, void *user, struct err *e)
{
  struct promote *pr = user;
  const struct dag *d = pr->d;
  struct dagrow r;
  struct idlist l = {0};
  enum err_code rc;
  pr->promoted = 0;
  if ((rc = lock_dag_row(c, d->dag_id, &r, e)) != ERR_OK || r.paused)
    return rc;
  int64_t room = 0;
  if ((rc = dag_room(c, d, "'running'", &room, e)) != ERR_OK)
    return rc;
  if (room <= 0)
    return ERR_OK;
  struct db_val p[2] = {DB_V_STR(d->dag_id), DB_V_INT(room)};
  rc = db_query(c,
                "SELECT id, run_id FROM dag_run FORCE INDEX "
                "(dag_run_dag_state) WHERE dag_id = ? AND state = 'queued' "
                "ORDER BY logical_date, id LIMIT ?",
                p, 2, sched_idlist_cb, &l, NULL, e);
  if (rc == ERR_OK && l.oom)
    rc = err_set(e, ERR_NOMEM, "promote: out of memory");
  for (size_t i = 0; rc == ERR_OK && i < l.n; i++) {
    int64_t aff = 0;
    struct db_val u[1] = {DB_V_INT(l.id[i])};
    rc = db_exec_params(c,
                        "UPDATE dag_run SET state = 'running', start_date = "
                        "UTC_TIMESTAMP(6) WHERE id = ? AND state = 'queued'",
                        u, 1, &aff, e);
    if (rc == ERR_OK && aff == 1) {
      rc = sched_insert_tis(c, d, l.str[i], 0, e);
      if (pr->promoted++ == 0)
        snprintf(pr->first, sizeof(pr->first), "%s", l.str[i]);
    }
  }
  sched_idlist_free(&l);
  return rc;
}

static int promote(struct sched *s, struct snap *p)
{
  struct db_conn *c = sched_conn_get(s, "promoting runs");
  struct idlist dags = {0};
  struct err e = {0};
  int total = 0;
  if (!c)
    return 0;
  if (db_query(c,
               "SELECT 0, dag_id FROM dag_run WHERE state = 'queued' GROUP "
               "BY dag_id LIMIT 2000",
               NULL, 0, sched_idlist_cb, &dags, NULL, &e) != ERR_OK) {
    sched_warn(&s->core, "promoting runs: %s", e.msg);
    goto out;
  }
  for (size_t i = 0; i < dags.n; i++) {
    struct sdag *sd = sched_snap_find(p, dags.str[i]);
    if (!sd || sd->paused)
      continue;
    struct promote pr = {.d = sd->d};
    if (sched_txn(c, promote_txn, &pr, &e) != ERR_OK) {
      sched_warn(&s->core, "dag=%s promoting runs: %s", sd->d->dag_id,
                 e.msg);
      if (db_conn_broken(c))
        break;
      continue;
    }
    if (pr.promoted)
      LOG_I(MOD, "dag=%s started %d run(s): %s%s", sd->d->dag_id,
            pr.promoted, pr.first, pr.promoted > 1 ? ", ..." : "");
    total += pr.promoted;
  }
out:
  sched_idlist_free(&dags);
  sched_conn_put(s, c);
  return total;
}

/* ------------------------------------------------------------------ */
/* the scheduler thread                                                */

static void *sched_main(void *arg)
{
  struct sched *s = arg;
  int64_t next_rescan = 0, next_tick = 0, next_takeover = 0, next_sweep = 0;
  int takeover_ms = s->lease_s * 1000 / 3;
  if (takeover_ms > 1000)
    takeover_ms = 1000;
  if (takeover_ms < 200)
    takeover_ms = 200;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    int stop = s->stopping;
    int do_rescan = s->wake_rescan, do_promote = s->wake_promote;
    s->wake_rescan = s->wake_promote = s->wake_claim = 0;
    pthread_mutex_unlock(&s->mu);
    if (stop)
      break;
    int64_t now = queue_now_ms();
    /* Each step may wait SCHED_ACQUIRE_MS for MariaDB: look at the stop
     * flag between them (sched_conn_get also gives nothing once stopping). */
    if (do_rescan || now >= next_rescan) {
      rescan(s);
      next_rescan = now + s->rescan_ms;
    }
    struct snap *p = snap_get(s);
    if (now >= next_tick && !sched_is_stopping(s)) {
      create_runs(s, p);
      do_promote = 1;
      next_tick = now + s->tick_ms;
    }
    if (do_promote && !sched_is_stopping(s))
      promote(s, p);
    if (now >= next_takeover && !sched_is_stopping(s)) {
      sched_takeover(s, p);
      next_takeover = now + takeover_ms;
    }
    if (now >= next_sweep && !sched_is_stopping(s)) {
      sched_sweep(s, p);
      next_sweep = now + SCHED_SWEEP_MS;
    }
    sched_snap_unref(p);
    sched_claim(s);

    int64_t wake = next_tick;
    if (next_rescan < wake)
      wake = next_rescan;
    if (next_takeover < wake)
      wake = next_takeover;
    if (next_sweep < wake)
      wake = next_sweep;
    pthread_mutex_lock(&s->mu);
    while (!s->stopping && !s->wake_rescan && !s->wake_promote &&
           !s->wake_claim && queue_now_ms() < wake) {
      int64_t w = wake;
      struct timespec ts = {.tv_sec = (time_t)(w / 1000),
                            .tv_nsec = (long)(w % 1000) * 1000000L};
      pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* ------------------------------------------------------------------ */
/* lifecycle                                                           */

enum err_code sched_create(struct sched **out, const struct sched_opts *o,
                           struct err *e)
{
  *out = NULL;
  if (!o || !o->cfg || !o->queue || !o->task_db)
    return err_set(e, ERR_INVAL, "sched: cfg, queue and task_db are "
                                 "required");
  struct sched *s = calloc(1, sizeof(*s));
  if (!s)
    return err_set(e, ERR_NOMEM, "sched: out of memory");
  enum err_code rc;
  s->cfg = *o->cfg;
  s->q = o->queue;
  snprintf(s->dags_dir, sizeof(s->dags_dir), "%s", s->cfg.sched_dags_dir);
  s->tick_ms = s->cfg.sched_tick_ms > 0 ? s->cfg.sched_tick_ms : 1000;
  s->lease_s = s->cfg.sched_lease_s > 0 ? s->cfg.sched_lease_s : 30;
  s->workers = s->cfg.sched_workers > 0 ? s->cfg.sched_workers : 2;
  if (s->workers > QUEUE_MAX_WORKERS)
    s->workers = QUEUE_MAX_WORKERS;
  s->grace_ms = o->stop_grace_ms > 0 ? o->stop_grace_ms : 5000;
  s->rescan_ms = o->rescan_ms > 0 ? o->rescan_ms : 2000;
  if (pthread_mutex_init(&s->mu, NULL) != 0) {
    free(s);
    return err_set(e, ERR_INTERNAL, "sched: mutex");
  }
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if (sched_core_init(&s->core) != 0) {
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
    return err_set(e, ERR_INTERNAL, "sched: mutex");
  }
  s->snap = calloc(1, sizeof(*s->snap));
  if (!s->snap) {
    rc = err_set(e, ERR_NOMEM, "sched: out of memory");
    goto fail;
  }
  atomic_init(&s->snap->refs, 1);
  if ((rc = dag_dir_create(s->dags_dir, &s->dir, e)) != ERR_OK)
    goto fail;
  if ((rc = cron_tz_load(&s->tz, s->cfg.sched_timezone, e)) != ERR_OK) {
    err_prefix(e, "scheduler.timezone");
    goto fail;
  }
  struct db_opts dbo;
  db_opts_from_cfg(&dbo, &s->cfg, s->workers + 3, 30);
  if (dbo.connect_timeout_s <= 0)
    dbo.connect_timeout_s = 5;
  if ((rc = db_pool_create(&s->core.meta, &dbo, e)) != ERR_OK)
    goto fail;
  s->core.cfg = &s->cfg;
  s->core.task_db = o->task_db;
  s->core.tz = s->tz;
  s->core.lease_s = s->lease_s;
  s->core.dag_get = dag_get_cb;
  s->core.dag_get_user = s;
  sched_core_ids(&s->core, NULL);
  if (o->metrics) {
    static const char *const ti[4] = {TI_SUCCESS, TI_FAILED, TI_UP_FOR_RETRY,
                                      TI_SKIPPED};
    struct err me = {0};
    for (int i = 0; i < 4; i++) {
      const char *lab[] = {"state", ti[i], NULL};
      if (metrics_counter_new(o->metrics, "mlopsd_task_outcomes_total",
                              "Task attempts recorded, by outcome.", lab, 0,
                              &s->m_ti[i], &me) != ERR_OK)
        LOG_W(MOD, "metrics: %s", me.msg);
    }
    for (int i = 0; i < 2; i++) {
      const char *lab[] = {"state", i ? "failed" : "success", NULL};
      if (metrics_counter_new(o->metrics, "mlopsd_dag_runs_total",
                              "DAG runs finished, by state.", lab, 0,
                              &s->m_run[i], &me) != ERR_OK)
        LOG_W(MOD, "metrics: %s", me.msg);
    }
  }
  *out = s;
  return ERR_OK;
fail:
  sched_destroy(s);
  return rc;
}

enum err_code sched_start(struct sched *s, struct err *e)
{
  enum err_code rc;
  if (s->started)
    return err_set(e, ERR_STATE, "sched: already started");
  if ((rc = sched_core_hb_start(&s->core, e)) != ERR_OK)
    return rc;
  if (pthread_create(&s->thr, NULL, sched_main, s) != 0) {
    sched_core_hb_stop(&s->core);
    return err_set(e, ERR_INTERNAL, "sched: cannot start the scheduler "
                                    "thread");
  }
  s->started = 1;
  LOG_I(MOD, "scheduler started dags_dir=%s timezone=%s workers=%d "
             "tick_ms=%d lease_s=%d claim=%s",
        s->dags_dir, s->cfg.sched_timezone, s->workers, s->tick_ms,
        s->lease_s, s->core.claim_id);
  return ERR_OK;
}

static void wait_inflight(struct sched *s, int64_t until)
{
  pthread_mutex_lock(&s->mu);
  while (s->inflight > 0 && queue_now_ms() < until) {
    struct timespec ts = {.tv_sec = (time_t)(until / 1000),
                          .tv_nsec = (long)(until % 1000) * 1000000L};
    pthread_cond_timedwait(&s->cv, &s->mu, &ts);
  }
  pthread_mutex_unlock(&s->mu);
}

void sched_stop(struct sched *s)
{
  if (!s || !s->started || s->stopped)
    return;
  s->stopped = 1;
  pthread_mutex_lock(&s->mu);
  s->stopping = 1;
  s->core.stopping = 1;
  int n = s->inflight;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  pthread_join(s->thr, NULL);
  if (n > 0)
    LOG_I(MOD, "stopping: %d task attempt(s) running, waiting up to %d ms",
          n, s->grace_ms);
  wait_inflight(s, queue_now_ms() + s->grace_ms);
  for (;;) {
    pthread_mutex_lock(&s->mu);
    int left = s->inflight;
    pthread_mutex_unlock(&s->mu);
    if (left == 0)
      break;
    uint64_t ids[64];
    int k = 0;
    pthread_mutex_lock(&s->core.mu);
    for (struct sched_attempt *a = s->core.live; a && k < 64; a = a->next) {
      if (a->job_id && !atomic_load(&a->interrupted)) {
        atomic_store(&a->interrupted, 1);
        ids[k++] = a->job_id;
      }
    }
    pthread_mutex_unlock(&s->core.mu);
    for (int i = 0; i < k; i++)
      (void)queue_cancel(s->q, ids[i]);
    wait_inflight(s, queue_now_ms() + 200);
  }
  sched_core_hb_stop(&s->core);
  LOG_I(MOD, "scheduler stopped");
}

void sched_destroy(struct sched *s)
{
  if (!s)
    return;
  sched_stop(s);
  dag_dir_destroy(s->dir);
  sched_snap_unref(s->snap);
  db_pool_destroy(s->core.meta);
  cron_tz_destroy(s->tz);
  sched_core_fini(&s->core);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  memset(&s->cfg, 0, sizeof(s->cfg)); /* wipe secrets */
  free(s);
}
