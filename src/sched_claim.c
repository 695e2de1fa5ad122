/* sched_claim.c - who holds a task instance (sched_loop_int.h): claiming
 * queued task instances and running them as queue jobs, recording what a
 * finished attempt did (then claiming the next one right there), failing
 * tasks that are not in this daemon's version of their DAG, taking over
 * the claims of daemons that are gone, and sweeping running runs.
 *
 * Every step holds only the row locks of sched_int.h's lock order and runs
 * in sched_txn (READ COMMITTED, retried on deadlock).
 */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/queue.h"
#include "mlopsd/vec.h"
#include "sched_int.h"
#include "sched_loop_int.h"

/* ------------------------------------------------------------------ */
/* claiming and running task instances                                 */

struct claimed {
  int64_t id;
  char run_id[SCHED_RUN_ID_MAX + 1];
  char dag_id[DAG_ID_MAX + 1];
  char task_id[256];
  int try_number, max_tries;
  int was_retry;
};

struct claim {
  struct sched *s;
  struct snap *p;
  int want;
  const int64_t *excl;
  int nexcl;
  struct claimed *v;
  int n;
};

static int claim_row_cb(void *user, const struct db_row *row)
{
  struct claim *cl = user;
  if (cl->n >= cl->want)
    return 1;
  struct claimed *c = &cl->v[cl->n++];
  const char *s;
  c->id = db_row_i64(row, 0);
  db_row_copy(row, 1, c->run_id, sizeof(c->run_id));
  db_row_copy(row, 2, c->dag_id, sizeof(c->dag_id));
  db_row_copy(row, 3, c->task_id, sizeof(c->task_id));
  c->try_number = (int)db_row_i64(row, 4) + 1;
  c->max_tries = (int)db_row_i64(row, 5);
  c->was_retry = (s = db_row_str(row, 6, NULL)) && !strcmp(s, TI_UP_FOR_RETRY);
  return 0;
}

static enum err_code claim_txn(struct db_conn *c, void *user, struct err *e)
{
  struct claim *cl = user;
  struct sched *s = cl->s;
  size_t np = cl->p->n + (size_t)cl->nexcl + 1;
  size_t cap = 512 + np * 2;
  char *sql = malloc(cap);
  struct db_val *pv = calloc(np, sizeof(*pv));
  enum err_code rc;
  cl->n = 0;
  if (!sql || !pv) {
    free(sql);
    free(pv);
    return err_set(e, ERR_NOMEM, "claim: out of memory");
  }
  int len = snprintf(sql, cap,
                     "SELECT id, run_id, dag_id, task_id, try_number, "
                     "max_tries, state FROM task_instance WHERE (state = "
                     "'queued' OR (state = 'up_for_retry' AND next_try_at <= "
                     "UTC_TIMESTAMP(6))) AND dag_id IN (%s)",
                     cl->p->in_list);
  size_t k = 0;
  for (size_t i = 0; i < cl->p->n; i++)
    pv[k++] = DB_V_STR(cl->p->v[i].d->dag_id);
  if (cl->nexcl) {
    len += snprintf(sql + len, cap - (size_t)len, " AND id NOT IN (");
    for (int i = 0; i < cl->nexcl; i++) {
      len += snprintf(sql + len, cap - (size_t)len, "%s?", i ? "," : "");
      pv[k++] = DB_V_INT(cl->excl[i]);
    }
    len += snprintf(sql + len, cap - (size_t)len, ")");
  }
  snprintf(sql + len, cap - (size_t)len,
           " ORDER BY state, next_try_at, id LIMIT ? FOR UPDATE SKIP LOCKED");
  pv[k++] = DB_V_INT(cl->want);
  rc = db_query(c, sql, pv, (int)k, claim_row_cb, cl, NULL, e);
  free(sql);
  free(pv);
  for (int i = 0; rc == ERR_OK && i < cl->n; i++) {
    struct db_val u[4] = {DB_V_STR(s->core.host), DB_V_INT(s->core.pid),
                          DB_V_STR(s->core.claim_id), DB_V_INT(cl->v[i].id)};
    rc = db_exec_params(
        c,
        "UPDATE task_instance SET state = 'running', try_number = "
        "try_number + 1, start_date = UTC_TIMESTAMP(6), end_date = NULL, "
        "duration = NULL, hostname = ?, pid = ?, claimed_by = ?, "
        "heartbeat_at = UTC_TIMESTAMP(6), next_try_at = NULL WHERE id = ?",
        u, 4, NULL, e);
  }
  return rc;
}

/* Give a claim back (the job could not be submitted, or the task is not
 * in this daemon's version of the DAG yet). */
static void unclaim(struct sched *s, struct db_conn *c,
                    const struct claimed *t)
{
  struct err e = {0};
  struct db_val p[4] = {DB_V_STR(t->was_retry ? TI_UP_FOR_RETRY : TI_QUEUED),
                        DB_V_INT(t->was_retry), DB_V_INT(t->id),
                        DB_V_STR(s->core.claim_id)};
  if (db_exec_params(c,
                     "UPDATE task_instance SET state = ?, try_number = "
                     "try_number - 1, claimed_by = NULL, heartbeat_at = "
                     "NULL, start_date = NULL, next_try_at = IF(? = 1, "
                     "UTC_TIMESTAMP(6), NULL) WHERE id = ? AND claimed_by = "
                     "? AND state = 'running'",
                     p, 4, NULL, &e) != ERR_OK)
    LOG_W(MOD, "run=%s task=%s: giving the claim back failed: %s (the "
               "lease will expire)",
          t->run_id, t->task_id, e.msg);
}

static enum err_code job_fn(struct queue_job_ctx *jc, void *arg,
                            struct err *e)
{
  return sched_attempt_exec(arg, jc, 0, e);
}

static void job_done(uint64_t id, enum err_code code, const struct err *e,
                     void *arg)
{
  struct sched_attempt *a = arg;
  struct sched *s = a->owner;
  const char *task_id = a->dag->tasks[a->task].id;
  char state[16] = "";
  int lost = 0;
  struct sched_eval ev;
  struct err fe = {0};
  (void)id;
  memset(&ev, 0, sizeof(ev));
  if (sched_attempt_finish(a, code, e, state, &lost, &ev, &fe) != ERR_OK) {
    LOG_E(MOD, "dag=%s run=%s task=%s try=%d: result %s not recorded: %s "
               "(the claim's lease will expire and the task be retried or "
               "failed)",
          a->dag->dag_id, a->run_id, task_id, a->try_number, state, fe.msg);
  } else if (!lost) {
    if (!strcmp(state, TI_SUCCESS) || !strcmp(state, TI_SKIPPED))
      LOG_I(MOD, "dag=%s run=%s task=%s try=%d state=%s", a->dag->dag_id,
            a->run_id, task_id, a->try_number, state);
    else
      LOG_W(MOD, "dag=%s run=%s task=%s try=%d state=%s: %s",
            a->dag->dag_id, a->run_id, task_id, a->try_number, state,
            e && e->msg[0] ? e->msg : err_str(code));
    sched_count_ti(s, state);
  }
  sched_live_remove(a);
  if (ev.finished)
    sched_run_finished(s, a->dag, a->run_id, &ev, a->logical_ts, a->conf);
  pthread_mutex_lock(&s->mu);
  s->inflight--;
  int stopping = s->stopping;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  sched_attempt_unref(a);
  if (!stopping)
    sched_claim(s);
}

struct fail_ti {
  const struct dag *d;
  const struct claimed *t;
  const char *claim_id;
  struct sched_eval ev;
};

static enum err_code fail_txn(struct db_conn *c, void *user, struct err *e)
{
  struct fail_ti *f = user;
  int64_t id;
  char msg[600];
  enum err_code rc;
  memset(&f->ev, 0, sizeof(f->ev));
  struct db_val p[1] = {DB_V_STR(f->t->run_id)};
  if ((rc = db_query_i64(c,
                         "SELECT id FROM dag_run WHERE run_id = ? FOR UPDATE",
                         p, 1, &id, e)) != ERR_OK)
    return rc == ERR_NOTFOUND ? ERR_OK : rc;
  struct db_val u[2] = {DB_V_INT(f->t->id), DB_V_STR(f->claim_id)};
  if ((rc = db_exec_params(c,
                           "UPDATE task_instance SET state = 'failed', "
                           "end_date = UTC_TIMESTAMP(6), duration = 0 WHERE "
                           "id = ? AND claimed_by = ? AND state = 'running'",
                           u, 2, NULL, e)) != ERR_OK)
    return rc;
  snprintf(msg, sizeof(msg), "task '%s' is not in DAG '%s' as loaded from "
                             "%s: failed",
           f->t->task_id, f->d->dag_id, f->d->path);
  if ((rc = sched_log_direct(c, f->t->run_id, f->t->task_id,
                             f->t->try_number, msg, e)) != ERR_OK)
    return rc;
  return sched_evaluate(c, f->d, f->t->run_id, &f->ev, e);
}

/* The task is not in this daemon's version of its DAG.  The first time,
 * give it back and look at the DAG files again (another daemon may have
 * a newer version); if it is still unknown after that, fail it. */
static int unknown_task(struct sched *s, struct db_conn *c,
                        const struct claimed *t, const struct dag *d)
{
  int fail = 0;
  pthread_mutex_lock(&s->mu);
  int k = 0;
  while (k < s->nexcl && s->excl[k].id != t->id)
    k++;
  if (k < s->nexcl && s->excl[k].gen < s->gen) {
    fail = 1;
    s->excl[k] = s->excl[--s->nexcl];
  } else if (k == s->nexcl && s->nexcl < SCHED_EXCL_MAX) {
    s->excl[s->nexcl].id = t->id;
    s->excl[s->nexcl++].gen = s->gen;
  }
  s->wake_rescan = 1;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  if (!fail) {
    unclaim(s, c, t);
    return 0;
  }
  struct fail_ti f = {.d = d, .t = t, .claim_id = s->core.claim_id};
  struct err e = {0};
  LOG_E(MOD, "dag=%s run=%s task=%s: not in the DAG (%s): failed",
        d->dag_id, t->run_id, t->task_id, d->path);
  if (sched_txn(c, fail_txn, &f, &e) != ERR_OK)
    LOG_W(MOD, "run=%s task=%s: %s", t->run_id, t->task_id, e.msg);
  else if (f.ev.finished)
    sched_run_finished(s, (struct dag *)d, t->run_id, &f.ev, 0, NULL);
  return 0;
}

/* Claim up to the free worker slots and submit the attempts.  Any thread
 * (the scheduler thread, or a worker right after a task finished).
 * Returns the number submitted. */
int sched_claim(struct sched *s)
{
  int64_t excl[SCHED_EXCL_MAX];
  int nexcl = 0, want, submitted = 0;
  pthread_mutex_lock(&s->mu);
  want = s->workers - s->inflight;
  if (s->stopping || want <= 0 || s->snap->n == 0) {
    pthread_mutex_unlock(&s->mu);
    return 0;
  }
  s->inflight += want;
  struct snap *p = s->snap;
  atomic_fetch_add(&p->refs, 1);
  for (int i = 0; i < s->nexcl; i++) {
    if (s->excl[i].gen + 2 < s->gen) {
      s->excl[i--] = s->excl[--s->nexcl]; /* resolved long ago */
      continue;
    }
    if (s->excl[i].gen == s->gen)
      excl[nexcl++] = s->excl[i].id;
  }
  pthread_mutex_unlock(&s->mu);

  struct claimed v[QUEUE_MAX_WORKERS];
  struct claim cl = {.s = s, .p = p, .want = want, .excl = excl,
                     .nexcl = nexcl, .v = v};
  struct err e = {0};
  struct db_conn *c = sched_conn_get(s, "claiming tasks");
  if (!c)
    goto out;
  if (sched_txn(c, claim_txn, &cl, &e) != ERR_OK) {
    sched_warn(&s->core, "claiming tasks: %s", e.msg);
    cl.n = 0;
  }
  for (int i = 0; i < cl.n; i++) {
    struct claimed *t = &v[i];
    struct sdag *sd = sched_snap_find(p, t->dag_id);
    ptrdiff_t ti = sd ? dag_task_index(sd->d, t->task_id) : -1;
    if (!sd) {
      unclaim(s, c, t);
      continue;
    }
    if (ti < 0) {
      unknown_task(s, c, t, sd->d);
      continue;
    }
    struct runinfo ri = {0};
    struct db_val q[1] = {DB_V_STR(t->run_id)};
    if (db_query(c, "SELECT logical_date, conf FROM dag_run WHERE run_id = ?",
                 q, 1, sched_runinfo_cb, &ri, NULL, &e) != ERR_OK ||
        !ri.found) {
      LOG_W(MOD, "run=%s task=%s: run not readable: %s", t->run_id,
            t->task_id, ri.found ? e.msg : "no such run");
      free(ri.conf);
      unclaim(s, c, t);
      continue;
    }
    struct sched_attempt *a = sched_attempt_new(
        &s->core, sd->d, (size_t)ti, t->id, t->run_id, t->try_number,
        t->max_tries, ri.logical_ts, ri.conf);
    free(ri.conf);
    if (!a) {
      unclaim(s, c, t);
      continue;
    }
    a->owner = s;
    sched_live_add(a);
    int tmo = sd->d->tasks[ti].retry.timeout_s;
    uint64_t jid = 0;
    enum err_code rc =
        queue_submit(s->q, QUEUE_PRIO_NORMAL, job_fn, job_done, a,
                     tmo > 0 ? (tmo > 2000000 ? 2000000000 : tmo * 1000) : 0,
                     &jid);
    if (rc != ERR_OK) {
      LOG_W(MOD, "run=%s task=%s: not started: %s", t->run_id, t->task_id,
            err_str(rc));
      sched_live_remove(a);
      sched_attempt_unref(a);
      unclaim(s, c, t);
      continue;
    }
    pthread_mutex_lock(&s->core.mu);
    a->job_id = jid;
    pthread_mutex_unlock(&s->core.mu);
    LOG_D(MOD, "dag=%s run=%s task=%s try=%d started job=%llu",
          sd->d->dag_id, t->run_id, t->task_id, t->try_number,
          (unsigned long long)jid);
    submitted++;
  }
  sched_conn_put(s, c);
out:
  pthread_mutex_lock(&s->mu);
  s->inflight -= want - submitted;
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  sched_snap_unref(p);
  return submitted;
}

/* ------------------------------------------------------------------ */
/* takeover of expired claims, sweeping running runs                   */

struct orphan {
  int64_t id;
  char run_id[SCHED_RUN_ID_MAX + 1];
  char dag_id[DAG_ID_MAX + 1];
  char task_id[256];
  char claimed_by[SCHED_CLAIM_MAX];
  int try_number, max_tries, expired;
};

struct orphans {
  struct orphan *v;
  size_t n, cap;
};

static int orphan_cb(void *user, const struct db_row *row)
{
  struct orphans *o = user;
  if (VEC_RESERVE(o->v, o->cap, o->n + 1))
    return 1;
  struct orphan *r = &o->v[o->n++];
  r->id = db_row_i64(row, 0);
  db_row_copy(row, 1, r->run_id, sizeof(r->run_id));
  db_row_copy(row, 2, r->dag_id, sizeof(r->dag_id));
  db_row_copy(row, 3, r->task_id, sizeof(r->task_id));
  db_row_copy(row, 4, r->claimed_by, sizeof(r->claimed_by));
  r->try_number = (int)db_row_i64(row, 5);
  r->max_tries = (int)db_row_i64(row, 6);
  r->expired = (int)db_row_i64(row, 7);
  return 0;
}

struct takeover {
  struct sched *s;
  const struct dag *d;
  const struct orphan *o;
  const char *why;
  const char *state;
  int retry_in;
  int done;
  struct sched_eval ev;
};

static enum err_code takeover_txn(struct db_conn *c, void *user,
                                  struct err *e)
{
  struct takeover *t = user;
  const struct orphan *o = t->o;
  char buf[SCHED_CLAIM_MAX + 64], want[SCHED_CLAIM_MAX + 64], msg[700];
  int64_t id;
  enum err_code rc;
  t->done = 0;
  memset(&t->ev, 0, sizeof(t->ev));
  struct db_val p[1] = {DB_V_STR(o->run_id)};
  rc = db_query_i64(c, "SELECT id FROM dag_run WHERE run_id = ? FOR UPDATE",
                    p, 1, &id, e);
  if (rc != ERR_OK)
    return rc == ERR_NOTFOUND ? ERR_OK : rc;
  struct db_val q[1] = {DB_V_INT(o->id)};
  buf[0] = '\0';
  struct idlist l = {0};
  rc = db_query(c,
                "SELECT try_number, CONCAT(state, '|', claimed_by) FROM "
                "task_instance WHERE id = ? FOR UPDATE",
                q, 1, sched_idlist_cb, &l, NULL, e);
  if (rc == ERR_OK && l.n == 1)
    snprintf(buf, sizeof(buf), "%lld|%s", (long long)l.id[0], l.str[0]);
  sched_idlist_free(&l);
  if (rc != ERR_OK)
    return rc;
  snprintf(want, sizeof(want), "%d|running|%s", o->try_number, o->claimed_by);
  if (strcmp(buf, want) != 0)
    return ERR_OK; /* finished or taken over meanwhile */
  int retry = o->try_number < o->max_tries;
  const struct dag_task *task = NULL;
  ptrdiff_t ti = dag_task_index(t->d, o->task_id);
  if (ti >= 0)
    task = &t->d->tasks[ti];
  t->state = retry ? TI_UP_FOR_RETRY : TI_FAILED;
  t->retry_in = retry && task ? dag_retry_delay(&task->retry, o->try_number)
                              : 0;
  struct db_val u[4] = {DB_V_STR(t->state), DB_V_INT(retry),
                        DB_V_INT(t->retry_in), DB_V_INT(o->id)};
  rc = db_exec_params(
      c,
      "UPDATE task_instance SET state = ?, end_date = UTC_TIMESTAMP(6), "
      "duration = TIMESTAMPDIFF(MICROSECOND, start_date, "
      "UTC_TIMESTAMP(6)) / 1000000, next_try_at = IF(? = 1, "
      "UTC_TIMESTAMP(6) + INTERVAL ? SECOND, NULL) WHERE id = ?",
      u, 4, NULL, e);
  if (rc != ERR_OK)
    return rc;
  snprintf(msg, sizeof(msg),
           "attempt %d lost: its daemon %s %s; marked %s by %s",
           o->try_number, o->claimed_by, t->why, t->state,
           t->s->core.claim_id);
  if ((rc = sched_log_direct(c, o->run_id, o->task_id, o->try_number, msg,
                             e)) != ERR_OK)
    return rc;
  t->done = 1;
  return sched_evaluate(c, t->d, o->run_id, &t->ev, e);
}

static int is_live(struct sched *s, int64_t id)
{
  int live = 0;
  pthread_mutex_lock(&s->core.mu);
  for (struct sched_attempt *a = s->core.live; a && !live; a = a->next)
    live = a->ti_id == id;
  pthread_mutex_unlock(&s->core.mu);
  return live;
}

void sched_takeover(struct sched *s, struct snap *p)
{
  struct orphans o = {0};
  struct err e = {0};
  struct db_conn *c = sched_conn_get(s, "lease check");
  if (!c)
    return;
  struct db_val q[1] = {DB_V_INT(s->lease_s)};
  if (db_query(c,
               "SELECT id, run_id, dag_id, task_id, claimed_by, try_number, "
               "max_tries, (heartbeat_at IS NULL OR heartbeat_at < "
               "UTC_TIMESTAMP(6) - INTERVAL ? SECOND) FROM task_instance "
               "WHERE state = 'running' LIMIT 5000",
               q, 1, orphan_cb, &o, NULL, &e) != ERR_OK) {
    sched_warn(&s->core, "lease check: %s", e.msg);
    goto out;
  }
  for (size_t i = 0; i < o.n; i++) {
    const struct orphan *r = &o.v[i];
    const char *why = NULL;
    struct sdag *sd = sched_snap_find(p, r->dag_id);
    if (!sd || !strncmp(r->claimed_by, "test:", 5))
      continue; /* `dags test` runs: see sweep() */
    if (!strcmp(r->claimed_by, s->core.claim_id)) {
      if (r->expired && !is_live(s, r->id))
        why = "(this daemon) lost track of it";
    } else if (sched_claim_dead(&s->core, r->claimed_by)) {
      why = "is no longer running on this host";
    } else if (r->expired) {
      why = "stopped sending heartbeats (lease expired)";
    }
    if (!why)
      continue;
    struct takeover t = {.s = s, .d = sd->d, .o = r, .why = why};
    if (sched_txn(c, takeover_txn, &t, &e) != ERR_OK) {
      sched_warn(&s->core, "run=%s task=%s takeover: %s", r->run_id,
                 r->task_id, e.msg);
      continue;
    }
    if (!t.done)
      continue;
    LOG_W(MOD, "dag=%s run=%s task=%s try=%d: claim of %s taken over (%s): "
               "%s",
          r->dag_id, r->run_id, r->task_id, r->try_number, r->claimed_by,
          why, t.state);
    sched_count_ti(s, t.state);
    if (t.ev.finished)
      sched_run_finished(s, sd->d, r->run_id, &t.ev, 0, NULL);
  }
out:
  free(o.v);
  sched_conn_put(s, c);
}

struct sweep {
  struct sched *s;
  const struct dag *d;
  const char *run_id;
  int took_test;
  struct sched_eval ev;
};

static int sweep_lock_cb(void *user, const struct db_row *row)
{
  struct sweep *w = user;
  const char *cl = db_row_str(row, 1, NULL);
  w->took_test = cl && !strncmp(cl, "test:", 5) ? 1 : 0;
  w->ev.queued = -1; /* locked marker */
  return 1;
}

static enum err_code sweep_txn(struct db_conn *c, void *user, struct err *e)
{
  struct sweep *w = user;
  enum err_code rc;
  memset(&w->ev, 0, sizeof(w->ev));
  w->took_test = 0;
  struct db_val p[1] = {DB_V_STR(w->run_id)};
  rc = db_query(c,
                "SELECT id, claimed_by FROM dag_run WHERE run_id = ? AND "
                "state = 'running' FOR UPDATE SKIP LOCKED",
                p, 1, sweep_lock_cb, w, NULL, e);
  if (rc != ERR_OK || w->ev.queued != -1) {
    w->ev.queued = 0;
    return rc;
  }
  w->ev.queued = 0;
  if (!w->took_test)
    return sched_evaluate(c, w->d, w->run_id, &w->ev, e);
  /* The `dags test` process that drove this run is gone: what it was
   * running failed, what it had not started will not run. */
  struct db_val q[2] = {DB_V_STR(w->run_id), DB_V_STR(w->run_id)};
  if ((rc = db_exec_params(c,
                           "INSERT INTO task_log (run_id, task_id, "
                           "try_number, ts, stream, line) SELECT run_id, "
                           "task_id, try_number, UTC_TIMESTAMP(6), 'log', "
                           "'the dags test process running this attempt "
                           "is gone: failed' FROM task_instance WHERE "
                           "run_id = ? AND state = 'running'",
                           p, 1, NULL, e)) != ERR_OK ||
      (rc = db_exec_params(c,
                           "UPDATE task_instance SET state = IF(state = "
                           "'running', 'failed', 'upstream_failed'), "
                           "end_date = UTC_TIMESTAMP(6) WHERE run_id = ? AND "
                           "state IN ('running', 'scheduled', 'queued', "
                           "'up_for_retry')",
                           p, 1, NULL, e)) != ERR_OK ||
      (rc = db_exec_params(c,
                           "UPDATE dag_run SET state = 'failed', end_date = "
                           "UTC_TIMESTAMP(6) WHERE run_id = ? AND state = "
                           "'running' AND run_id = ?",
                           q, 2, NULL, e)) != ERR_OK)
    return rc;
  w->ev.finished = 1;
  snprintf(w->ev.state, sizeof(w->ev.state), "failed");
  return ERR_OK;
}

struct runrow {
  char run_id[SCHED_RUN_ID_MAX + 1];
  char dag_id[DAG_ID_MAX + 1];
  char claimed_by[SCHED_CLAIM_MAX];
  int stale;
  time_t logical_ts;
};

struct runrows {
  struct runrow *v;
  size_t n, cap;
};

static int runrow_cb(void *user, const struct db_row *row)
{
  struct runrows *o = user;
  if (VEC_RESERVE(o->v, o->cap, o->n + 1))
    return 1;
  struct runrow *r = &o->v[o->n++];
  db_row_copy(row, 0, r->run_id, sizeof(r->run_id));
  db_row_copy(row, 1, r->dag_id, sizeof(r->dag_id));
  db_row_copy(row, 2, r->claimed_by, sizeof(r->claimed_by));
  r->stale = (int)db_row_i64(row, 3);
  if (sched_parse_utc(db_row_str(row, 4, NULL), &r->logical_ts) != 0)
    r->logical_ts = 0;
  return 0;
}

/* Evaluate every running run: finishes runs whose last task ended while
 * their DAG was not loaded and applies DAG edits.  A run driven by a
 * `dags test` process that died (its lease expired, or its pid is gone on
 * this host) is failed, not carried on: the user stopped it. */
void sched_sweep(struct sched *s, struct snap *p)
{
  struct runrows rr = {0};
  struct err e = {0};
  int queued = 0;
  struct db_conn *c = sched_conn_get(s, "sweep");
  if (!c)
    return;
  struct db_val q[1] = {DB_V_INT(s->lease_s)};
  if (db_query(c,
               "SELECT run_id, dag_id, claimed_by, (heartbeat_at IS NULL OR "
               "heartbeat_at < UTC_TIMESTAMP(6) - INTERVAL ? SECOND), "
               "logical_date FROM dag_run WHERE state = 'running' LIMIT 2000",
               q, 1, runrow_cb, &rr, NULL, &e) != ERR_OK) {
    sched_warn(&s->core, "sweep: %s", e.msg);
    goto out;
  }
  for (size_t i = 0; i < rr.n; i++) {
    struct runrow *r = &rr.v[i];
    struct sdag *sd = sched_snap_find(p, r->dag_id);
    if (!sd)
      continue;
    if (!strncmp(r->claimed_by, "test:", 5) && !r->stale &&
        !sched_claim_dead(&s->core, r->claimed_by))
      continue; /* a live `dags test` drives it */
    struct sweep w = {.s = s, .d = sd->d, .run_id = r->run_id};
    if (sched_txn(c, sweep_txn, &w, &e) != ERR_OK) {
      sched_warn(&s->core, "run=%s sweep: %s", r->run_id, e.msg);
      continue;
    }
    if (w.took_test)
      LOG_W(MOD, "dag=%s run=%s: the `dags test` process %s is gone: run "
                 "marked failed",
            r->dag_id, r->run_id, r->claimed_by);
    queued += w.ev.queued;
    if (w.ev.finished)
      sched_run_finished(s, sd->d, r->run_id, &w.ev, r->logical_ts, NULL);
  }
out:
  free(rr.v);
  sched_conn_put(s, c);
  (void)queued;
}
