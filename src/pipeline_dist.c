/* pipeline_dist.c - shared trials (trialq.h) and distributed training
 * (workers: N) of pipeline_train, and the helpers and worker ranks that
 * serve another run (see pipeline.c and pipeline.h).
 */
#include "mlopsd/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/calib.h"
#include "mlopsd/db.h"
#include "mlopsd/fstore.h"
#include "mlopsd/fsx.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"


#include "pipeline_int.h"

/* ---- shared trials (trialq.h) ----------------------------------------- */

/* Keep the search alive for helpers: heartbeat it every lease/3 from
 * whichever trial thread gets here first. */
void ptrain_search_alive(struct ptrain *T)
{
  if ((!T->shared && T->shards < 2) || T->sid <= 0)
    return;
  double now = pipeline_mono_s();
  pthread_mutex_lock(&T->mu);
  int due = now - T->search_hb >= T->lease_s / 3.0;
  if (due)
    T->search_hb = now;
  pthread_mutex_unlock(&T->mu);
  struct err he = {0};
  if (due && trialq_search_heartbeat(T->db, T->sid, &he))
    pipeline_plog(T->o, "shared trials: search heartbeat failed: %s", he.msg);
}

/* Train claimed trial `trial` of search sid and store its outcome in its
 * row.  A lost claim is not an error: the daemon that took the trial over
 * stores the result. */
static enum err_code ptrain_shared_trial(struct ptrain *T, int64_t sid,
                                         int trial, const char *owner,
                                         struct err *e)
{
  struct ptrial P = {.T = T, .t = (size_t)trial, .sid = sid, .row = trial,
                     .owner = owner, .hb_at = pipeline_mono_s()};
  struct err fe = {0};
  enum err_code rc = ptrain_fit(&P, e);
  if (rc == ERR_STATE)
    return ERR_OK;
  if (rc == ERR_CANCELED) {
    if (trialq_release(T->db, sid, trial, owner, &fe))
      pipeline_plog(T->o, "shared trials: giving trial %d back: %s", trial + 1,
                    fe.msg);
    return rc;
  }
  if (rc) {
    if (trialq_finish(T->db, sid, trial, owner, 0, 0, NULL, NULL, NULL, 0,
                      e->msg, &fe))
      pipeline_plog(T->o, "shared trials: recording trial %d's failure: %s",
                    trial + 1, fe.msg);
    return rc;
  }
  char *buf = NULL, *pjs = NULL, *mjs = NULL;
  size_t len = 0;
  if (!(rc = train_result_to_buffer(&P.r, &buf, &len, e))) {
    pjs = cJSON_PrintUnformatted(P.pj);
    mjs = cJSON_PrintUnformatted(P.mj);
    rc = !pjs || !mjs ? err_set(e, ERR_NOMEM, "pipeline: out of memory")
                      : trialq_finish(T->db, sid, trial, owner, 1, P.secs,
                                      mjs, pjs, buf, len, NULL, e);
  }
  if (!rc)
    pipeline_plog(T->o, "trial %d/%d%s: %s=%.4f [%d rounds, best %d, %.1f s]",
                  trial + 1, (int)T->total, P.desc,
                  spec_metric_name(T->sp->metric),
                  pipeline_metric_value(T->sp->metric, &P.r.metrics),
                  P.r.rounds_run, P.r.best_iteration, P.secs);
  if (rc == ERR_STATE)
    rc = ERR_OK;
  free(buf);
  free(pjs);
  free(mjs);
  cJSON_Delete(P.pj);
  cJSON_Delete(P.mj);
  train_result_free(&P.r);
  return rc;
}

static void ptrain_fail(struct ptrain_worker *w, enum err_code rc)
{
  pthread_mutex_lock(&w->T->mu);
  if (!w->T->failed) {
    w->T->failed = 1;
    w->rc = rc;
  }
  pthread_mutex_unlock(&w->T->mu);
}

/* A trial thread of a shared search: claim the search's trials from
 * MariaDB until none is queued or running anywhere. */
void *ptrain_shared_worker(struct ptrain_worker *w)
{
  struct ptrain *T = w->T;
  while (!ptrain_stopping(T)) {
    ptrain_search_alive(T);
    int64_t sid;
    int trial, tries;
    enum err_code rc = trialq_claim(T->db, T->sid, NULL, NULL, 0, T->owner,
                                    T->lease_s, &sid, &trial, &tries, &w->e);
    if (rc == ERR_NOTFOUND) {
      struct trialq_counts c;
      if ((rc = trialq_count(T->db, T->sid, &c, &w->e))) {
        ptrain_fail(w, rc);
        break;
      }
      if (c.failed) {
        ptrain_fail(w, err_set(&w->e, ERR_XGB,
                               "%d trial%s failed on another daemon "
                               "(table train_trial, search %lld)",
                               c.failed, c.failed == 1 ? "" : "s",
                               (long long)T->sid));
        break;
      }
      if (!c.queued && !c.running)
        break;
      struct timespec ts = {0, 200 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    if (!rc)
      rc = ptrain_shared_trial(T, sid, trial, T->owner, &w->e);
    if (rc) {
      ptrain_fail(w, rc);
      break;
    }
  }
  const struct pipeline_opts *o = T->o;
  if (o->cancel && o->cancel(o->cancel_ud))
    ptrain_fail(w, err_set(&w->e, ERR_CANCELED, "training cancelled while "
                                                "waiting for shared trials"));
  return NULL;
}

/* A finished trial row, copied out of trialq_results. */
struct srow {
  int state_ok;
  char by[TRIALQ_OWNER_MAX + 1];
  cJSON *metrics, *params;
};

static int srow_cb(void *ud, const struct trialq_row *r)
{
  struct srow *v = ud;
  if (r->trial < 0)
    return 0;
  struct srow *x = &v[r->trial];
  x->state_ok = r->state && !strcmp(r->state, "success");
  snprintf(x->by, sizeof(x->by), "%s", r->claimed_by ? r->claimed_by : "");
  x->metrics = r->metrics ? cJSON_Parse(r->metrics) : NULL;
  x->params = r->params ? cJSON_Parse(r->params) : NULL;
  return 0;
}

static double jnum_or_nan(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* After every trial of the search is done: record them all in the
 * registry's runs in grid order, pick the best (the sequential rule) and
 * load its model from its row. */
enum err_code ptrain_shared_collect(struct ptrain *T)
{
  struct err *e = T->e;
  struct srow *v = calloc(T->total, sizeof(*v));
  if (!v)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  enum err_code rc = trialq_results(T->db, T->sid, srow_cb, v, e);
  size_t here = 0;
  for (size_t t = 0; !rc && t < T->total; t++) {
    struct srow *x = &v[t];
    if (!x->state_ok || !x->metrics || !x->params) {
      rc = err_set(e, ERR_INTERNAL, "shared trials: trial %zu of search "
                                    "%lld has no result", t + 1,
                   (long long)T->sid);
      break;
    }
    struct pipeline_trial *pt = &T->res->trials[t];
    pt->m = (struct train_metrics){
        .accuracy = jnum_or_nan(x->metrics, "accuracy"),
        .f1_macro = jnum_or_nan(x->metrics, "f1_macro"),
        .logloss = jnum_or_nan(x->metrics, "logloss"),
        .rmse = jnum_or_nan(x->metrics, "rmse"),
        .mae = jnum_or_nan(x->metrics, "mae")};
    pt->best_iteration = (int)jnum_or_nan(x->metrics, "best_iteration");
    pt->rounds_run = (int)jnum_or_nan(x->metrics, "rounds_run");
    pt->n_trees = (int)jnum_or_nan(x->metrics, "n_trees");
    pt->seconds = jnum_or_nan(x->metrics, "seconds");
    int mine = !strcmp(x->by, T->owner);
    here += mine;
    /* a stand-in result: metrics for the comparison, booster loaded
     * for the winner only */
    struct train_result r = {.metrics = pt->m,
                             .best_iteration = pt->best_iteration,
                             .num_rounds = pt->best_iteration + 1,
                             .rounds_run = pt->rounds_run,
                             .num_trees = pt->n_trees,
                             .best_score =
                                 jnum_or_nan(x->metrics, "best_score")};
    const cJSON *em = cJSON_GetObjectItemCaseSensitive(x->metrics,
                                                       "eval_metric");
    snprintf(r.eval_metric, sizeof(r.eval_metric), "%s",
             cJSON_IsString(em) ? em->valuestring : "");
    r.num_class = T->sp->task == SPEC_TASK_MULTICLASS
                      ? (int)T->sp->target.n_classes
                  : T->sp->task == SPEC_TASK_REGRESSION ? 0
                                                        : 2;
    char run_id[PIPELINE_RUN_ID_MAX + 16];
    snprintf(run_id, sizeof(run_id), "%s-t%0*zu", T->prefix, T->width, t + 1);
    /* r has no booster yet: the winner's model is loaded after */
    rc = ptrain_record(T, t, run_id, &r, x->params, x->metrics, e);
    x->params = x->metrics = NULL; /* taken */
    if (!rc && !mine)
      ptrain_trial_log(T, t, "", pt, pt->seconds, x->by);
  }
  for (size_t t = 0; t < T->total; t++) {
    cJSON_Delete(v[t].metrics);
    cJSON_Delete(v[t].params);
  }
  free(v);
  if (rc)
    return rc;
  char *buf = NULL;
  size_t len = 0;
  if ((rc = trialq_model(T->db, T->sid, (int)T->best_i, &buf, &len, e)))
    return rc;
  rc = train_result_load_buffer(buf, len, T->nout, &T->best, e);
  free(buf);
  if (rc)
    return rc;
  T->res->n_trials = T->total;
  pipeline_plog(T->o,
                "shared trials: %zu of %zu trained by this run, %zu by other "
                "daemons (search %lld)",
                here, T->total, T->total - here, (long long)T->sid);
  return ERR_OK;
}

/* The fields of a search row that shared trials and distributed training
 * both fill from T: the model, date, run prefix, spec and data hashes,
 * trials and rounds, and the owner, T->owner named for role ("train",
 * "rank0").  q's other fields are left as the caller set them. */
static void ptrain_search_row(struct ptrain *T, struct trialq_search *q,
                              const char *role)
{
  q->trials = (int)T->total;
  q->num_boost_round = T->nbr;
  q->early_stopping_rounds = T->esr;
  snprintf(q->model, sizeof(q->model), "%s", T->sp->name);
  snprintf(q->ds, sizeof(q->ds), "%s", T->o->ds);
  snprintf(q->run_prefix, sizeof(q->run_prefix), "%s", T->prefix);
  snprintf(q->spec_sha256, sizeof(q->spec_sha256), "%s", T->sp->sha256);
  snprintf(q->data_sha256, sizeof(q->data_sha256), "%s",
           T->res->data_sha256);
  trialq_owner_name(T->owner, sizeof(T->owner), role);
  snprintf(q->owner, sizeof(q->owner), "%s", T->owner);
}

/* Stage 5 with shared trials: the search and its trials as rows, trained
 * by this run's threads and any daemon that helps. */
enum err_code ptrain_shared_search(struct ptrain *T)
{
  struct trialq_search q = {0};
  ptrain_search_row(T, &q, "train");
  enum err_code rc = trialq_search_create(T->db, &q, T->e);
  if (rc)
    return rc;
  T->sid = q.id;
  T->search_hb = pipeline_mono_s();
  pipeline_plog(T->o, "shared trials: search %lld, %zu trials claimable by any "
                      "daemon (table train_trial)",
                (long long)T->sid, T->total);
  return ERR_OK;
}

/* ---- distributed training (workers: N) --------------------------------- */

#define TRACKER_PYTHON "/usr/bin/python3"

/* Start XGBoost's rabit tracker (python3-xgboost; 1.7 has no C one) for
 * n workers and read the address it listens on from its stdout. */
static enum err_code tracker_start(int n, const char *host, pid_t *pid,
                                   char *addr, size_t cap, struct err *e)
{
  const char *py = getenv("MLOPSD_TRACKER_PYTHON");
  if (!py || !*py)
    py = TRACKER_PYTHON;
  int fd[2];
  if (pipe(fd))
    return err_set(e, ERR_IO, "tracker: pipe: %s", strerror(errno));
  char nw[16];
  snprintf(nw, sizeof(nw), "%d", n);
  pid_t p = fork();
  if (p < 0) {
    close(fd[0]);
    close(fd[1]);
    return err_set(e, ERR_IO, "tracker: fork: %s", strerror(errno));
  }
  if (p == 0) {
    dup2(fd[1], 1);
    close(fd[0]);
    close(fd[1]);
    int dn = open("/dev/null", O_WRONLY);
    if (dn >= 0)
      dup2(dn, 2);
    setpgid(0, 0);
    if (host && *host)
      execl(py, py, "-m", "xgboost.tracker", "--num-workers", nw,
            "--host-ip", host, (char *)NULL);
    else
      execl(py, py, "-m", "xgboost.tracker", "--num-workers", nw,
            (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  FILE *f = fdopen(fd[0], "r");
  char line[512], uri[256] = "";
  int port = 0;
  while (f && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    if (!strncmp(line, "DMLC_TRACKER_URI=", 17))
      snprintf(uri, sizeof(uri), "%.*s", (int)sizeof(uri) - 1, line + 17);
    else if (!strncmp(line, "DMLC_TRACKER_PORT=", 18))
      port = atoi(line + 18);
    else if (!strcmp(line, "DMLC_TRACKER_ENV_END"))
      break;
  }
  if (f)
    fclose(f);
  else
    close(fd[0]);
  if (!uri[0] || port <= 0) {
    kill(p, SIGKILL);
    waitpid(p, NULL, 0);
    return err_set(e, ERR_STATE, "tracker: %s -m xgboost.tracker gave no "
                                 "address (is python3-xgboost installed?)",
                   py);
  }
  *pid = p;
  snprintf(addr, cap, "%s:%d", uri, port);
  return ERR_OK;
}

static void tracker_stop(pid_t *pid)
{
  if (*pid <= 0)
    return;
  /* it exits by itself once every worker said shutdown; give it a moment,
   * then make sure (a failed run leaves it waiting for workers) */
  for (int i = 0; i < 50 && waitpid(*pid, NULL, WNOHANG) == 0; i++) {
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  if (kill(*pid, 0) == 0) {
    kill(-*pid, SIGKILL);
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
  }
  *pid = 0;
}

static enum err_code join_collective(struct ptrain *T, const char *addr,
                                     struct err *e)
{
  char host[256];
  snprintf(host, sizeof(host), "%s", addr);
  char *colon = strrchr(host, ':');
  if (!colon)
    return err_set(e, ERR_INVAL, "tracker address '%s' has no port", addr);
  *colon = '\0';
  int rank = -1, world = 0;
  enum err_code rc =
      train_comm_init(host, atoi(colon + 1), T->rank, &rank, &world, e);
  if (rc)
    return rc;
  T->comm = 1;
  pipeline_plog(T->o,
                "joined XGBoost's collective at %s: XGBoost rank %d of %d",
                addr, rank, world);
  return ERR_OK;
}

/* Rank 0: wait until every other rank's row is claimed (they must all
 * reach the tracker), or finished; fail when one failed or nobody came. */
static enum err_code wait_ranks(struct ptrain *T, int done, double limit_s,
                                struct err *e)
{
  double t0 = pipeline_mono_s();
  for (;;) {
    struct trialq_counts c;
    enum err_code rc = trialq_count(T->db, T->sid, &c, e);
    if (rc)
      return rc;
    if (c.failed)
      return err_set(e, ERR_XGB, "distributed training: %d worker%s failed "
                                 "(table train_trial, search %lld)",
                     c.failed, c.failed == 1 ? "" : "s", (long long)T->sid);
    int others = T->shards - 1;
    if (done ? c.success == others
             : c.running + c.success == others)
      return ERR_OK;
    if (ptrain_stopping(T))
      return err_set(e, ERR_CANCELED, "training cancelled while waiting for "
                                      "workers");
    if (pipeline_mono_s() - t0 > limit_s)
      return err_set(e, ERR_TIMEOUT, "distributed training: %d of %d "
                                     "workers %s after %.0f s (are %d "
                                     "scheduler daemons running on this "
                                     "database?)",
                     done ? c.success : c.running + c.success, others,
                     done ? "finished" : "started", limit_s, T->shards);
    ptrain_search_alive(T);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

/* Rank 0 before the trials: tracker, the search row with one row per rank
 * and the preprocessing, then join the collective once all ranks came. */
enum err_code ptrain_dist_start(struct ptrain *T)
{
  struct err *e = T->e;
  char addr[300];
  enum err_code rc = tracker_start(T->shards, T->o->tracker_host,
                                   &T->tracker, addr, sizeof(addr), e);
  if (rc)
    return rc;
  cJSON *pj = prep_to_json(T->prep);
  char *prep = pj ? cJSON_PrintUnformatted(pj) : NULL;
  cJSON_Delete(pj);
  if (!prep)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  struct trialq_search q = {.workers = T->shards, .prep_json = prep};
  snprintf(q.kind, sizeof(q.kind), "workers");
  ptrain_search_row(T, &q, "rank0");
  snprintf(q.tracker, sizeof(q.tracker), "%.*s", (int)sizeof(q.tracker) - 1,
           addr);
  rc = trialq_search_create(T->db, &q, e);
  free(prep);
  if (rc)
    return rc;
  T->sid = q.id;
  T->search_hb = pipeline_mono_s(); /* heartbeats: ptrain_search_alive */
  pipeline_plog(T->o,
                "distributed training: %d workers, tracker %s, search %lld: "
                "waiting for %d worker%s (trial helpers of other daemons)",
                T->shards, addr, (long long)T->sid, T->shards - 1,
                T->shards == 2 ? "" : "s");
  if ((rc = wait_ranks(T, 0, 4.0 * T->lease_s, e)))
    return rc;
  return join_collective(T, addr, e);
}

struct rank_rows {
  struct ptrain *T;
  cJSON *rows, *train_rows;
  int mismatch, missing;
  char who[TRIALQ_OWNER_MAX + 1];
};

static int rank_row_cb(void *ud, const struct trialq_row *r)
{
  struct rank_rows *rr = ud;
  struct ptrain *T = rr->T;
  if (r->trial == 0)
    return 0;
  cJSON *m = r->metrics ? cJSON_Parse(r->metrics) : NULL;
  const cJSON *sha = cJSON_GetObjectItemCaseSensitive(m, "model_sha256");
  if (!m || cJSON_GetArraySize(sha) != (int)T->total) {
    rr->missing++;
  } else {
    for (size_t t = 0; t < T->total; t++) {
      const cJSON *h = cJSON_GetArrayItem(sha, (int)t);
      if (!cJSON_IsString(h) || strcmp(h->valuestring, T->trial_sha[t])) {
        rr->mismatch++;
        snprintf(rr->who, sizeof(rr->who), "rank %d (%s) trial %zu",
                 r->trial, r->claimed_by ? r->claimed_by : "?", t + 1);
        break;
      }
    }
  }
  cJSON_AddItemToArray(rr->rows, cJSON_CreateNumber(jnum_or_nan(m, "rows")));
  cJSON_AddItemToArray(rr->train_rows,
                       cJSON_CreateNumber(jnum_or_nan(m, "train_rows")));
  cJSON_Delete(m);
  return 0;
}

/* Rank 0 after the trials: leave the collective, wait for the other
 * ranks, check they ended with the same model bytes for every trial, and
 * describe it all for meta.json. */
enum err_code ptrain_dist_finish(struct ptrain *T)
{
  struct err *e = T->e;
  train_comm_finalize();
  T->comm = 0;
  enum err_code rc = wait_ranks(T, 1, 4.0 * T->lease_s, e);
  if (rc)
    return rc;
  struct rank_rows rr = {.T = T, .rows = cJSON_CreateArray(),
                         .train_rows = cJSON_CreateArray()};
  cJSON_AddItemToArray(rr.rows, cJSON_CreateNumber((double)T->res->n_rows));
  cJSON_AddItemToArray(rr.train_rows,
                       cJSON_CreateNumber((double)T->res->n_train));
  rc = trialq_results(T->db, T->sid, rank_row_cb, &rr, e);
  if (!rc && (rr.missing || rr.mismatch))
    rc = err_set(e, ERR_XGB, "distributed training: %s", rr.missing
                     ? "a worker recorded no model hashes"
                     : "a worker ended with other model bytes");
  if (!rc) {
    T->dist = cJSON_CreateObject();
    char shard[200];
    snprintf(shard, sizeof(shard), "MOD(`%s`, %d) = rank", T->sp->source.key,
             T->shards);
    cJSON_AddNumberToObject(T->dist, "workers", T->shards);
    cJSON_AddStringToObject(T->dist, "sharding", shard);
    cJSON_AddItemToObject(T->dist, "rows_per_rank", rr.rows);
    cJSON_AddItemToObject(T->dist, "train_rows_per_rank", rr.train_rows);
    cJSON_AddBoolToObject(T->dist, "same_model_on_every_rank", 1);
    cJSON_AddStringToObject(T->dist, "metrics_from",
                            "rank 0's validation rows");
    cJSON_AddStringToObject(T->dist, "preprocessing_from",
                            "rank 0's training rows");
    rr.rows = rr.train_rows = NULL;
    pipeline_plog(T->o,
                  "distributed training: %d workers ended with the same model "
                  "bytes for all %zu trials",
                  T->shards, T->total);
  }
  cJSON_Delete(rr.rows);
  cJSON_Delete(rr.train_rows);
  return rc;
}

/* Any rank: give up the collective and the tracker after a failure. */
void ptrain_dist_abort(struct ptrain *T)
{
  if (T->comm) {
    train_comm_finalize();
    T->comm = 0;
  }
  tracker_stop(&T->tracker);
}

/* ---- helping with another run's shared trials ------------------------- */

/* ERR_STATE unless this daemon's spec sp is the one search q was started
 * with (by its coordinator, named in the message as who). */
static enum err_code search_spec_same(const struct spec *sp,
                                      const struct trialq_search *q,
                                      const char *who, struct err *e)
{
  if (strcmp(sp->sha256, q->spec_sha256))
    return err_set(e, ERR_STATE, "search %lld: spec %s has sha256 %.12s "
                                 "here, %.12s at %s",
                   (long long)q->id, sp->path, sp->sha256, q->spec_sha256,
                   who);
  return ERR_OK;
}

/* The pipeline options for training trials of search q here: q's date,
 * trials and rounds (q->ds is borrowed: q must outlive the options), this
 * daemon's threads, log, cancel test and lease. */
static struct pipeline_opts search_opts(const struct trialq_search *q,
                                        int nthread, int lease_s,
                                        pipeline_log_fn log, void *log_ud,
                                        pipeline_cancel_fn cancel,
                                        void *cancel_ud)
{
  return (struct pipeline_opts){
      .ds = q->ds, .nthread = nthread, .max_trials = (size_t)q->trials,
      .num_boost_round = q->num_boost_round,
      .early_stopping_rounds = q->early_stopping_rounds > 0
                                   ? q->early_stopping_rounds
                                   : -1,
      .log = log, .log_ud = log_ud, .cancel = cancel, .cancel_ud = cancel_ud,
      .lease_s = lease_s};
}

struct pipeline_helper {
  struct ptrain T;
  struct pipeline_opts o;
  struct pipeline_result res;
  struct trialq_search q;
  struct err e;
};

enum err_code pipeline_helper_open(struct db_pool *db, const struct spec *sp,
                                   const struct trialq_search *q,
                                   int nthread, int lease_s,
                                   pipeline_log_fn log, void *log_ud,
                                   pipeline_cancel_fn cancel,
                                   void *cancel_ud,
                                   struct pipeline_helper **out,
                                   struct err *e)
{
  *out = NULL;
  enum err_code rc = search_spec_same(sp, q, "the coordinating run", e);
  if (rc)
    return rc;
  struct pipeline_helper *h = calloc(1, sizeof(*h));
  if (!h)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  h->q = *q;
  h->o = search_opts(&h->q, nthread, lease_s, log, log_ud, cancel,
                     cancel_ud);
  struct ptrain *T = &h->T;
  *T = (struct ptrain){.db = db, .sp = sp, .o = &h->o, .res = &h->res,
                       .e = e, .lease_s = lease_s > 0 ? lease_s : 30};
  pthread_mutex_init(&T->mu, NULL);
  snprintf(T->prefix, sizeof(T->prefix), "%.*s",
           (int)sizeof(T->prefix) - 1, q->run_prefix);
  rc = ptrain_read(T);
  if (!rc)
    rc = ptrain_prepare(T);
  if (!rc) {
    fstore_set_sha256(T->s, sp, h->res.data_sha256);
    fstore_set_free(T->s);
    T->s = NULL;
    if (strcmp(h->res.data_sha256, q->data_sha256))
      rc = err_set(e, ERR_STATE, "search %lld: the training rows of %s for "
                                 "%s have sha256 %.12s here, %.12s at the "
                                 "coordinating run",
                   (long long)q->id, sp->source.table, q->ds,
                   h->res.data_sha256, q->data_sha256);
  }
  if (!rc)
    rc = ptrain_grid(T);
  if (!rc && T->total != (size_t)q->trials)
    rc = err_set(e, ERR_STATE, "search %lld has %d trials, the spec here "
                               "gives %zu",
                 (long long)q->id, q->trials, T->total);
  T->e = &h->e;
  if (rc) {
    pipeline_helper_close(h);
    return rc;
  }
  *out = h;
  return ERR_OK;
}

enum err_code pipeline_helper_trial(struct pipeline_helper *h, int trial,
                                    const char *owner, struct err *e)
{
  if (!h || trial < 0 || (size_t)trial >= h->T.total)
    return err_set(e, ERR_INVAL, "pipeline: no trial %d in this search",
                   trial + 1);
  return ptrain_shared_trial(&h->T, h->q.id, trial, owner, e);
}

void pipeline_helper_close(struct pipeline_helper *h)
{
  if (!h)
    return;
  ptrain_free(&h->T);
  pthread_mutex_destroy(&h->T.mu);
  pipeline_result_free(&h->res);
  free(h);
}

/* ---- a worker of another run's distributed training ------------------- */

enum err_code pipeline_rank_run(struct db_pool *db, const struct spec *sp,
                                const struct trialq_search *q, int rank,
                                const char *owner, int nthread, int lease_s,
                                pipeline_log_fn log, void *log_ud,
                                pipeline_cancel_fn cancel, void *cancel_ud,
                                struct err *e)
{
  enum err_code rc = search_spec_same(sp, q, "rank 0", e);
  if (rc)
    return rc;
  struct pipeline_opts o = search_opts(q, nthread, lease_s, log, log_ud,
                                       cancel, cancel_ud);
  struct pipeline_result res = {0};
  struct ptrain *T = calloc(1, sizeof(*T));
  if (!T)
    return err_set(e, ERR_NOMEM, "pipeline: out of memory");
  *T = (struct ptrain){.db = db, .sp = sp, .o = &o, .res = &res, .e = e,
                       .lease_s = lease_s > 0 ? lease_s : 30,
                       .shards = q->workers, .rank = rank};
  pthread_mutex_init(&T->mu, NULL);
  snprintf(T->prefix, sizeof(T->prefix), "%.*s", (int)sizeof(T->prefix) - 1,
           q->run_prefix);
  char *pj = NULL;
  cJSON *root = NULL;
  rc = trialq_search_prep(db, q->id, &pj, e);
  if (!rc && !(root = cJSON_Parse(pj)))
    rc = err_set(e, ERR_INVAL, "search %lld: prep_json is not JSON",
                 (long long)q->id);
  if (!rc)
    rc = prep_from_json(root, "rank 0's preprocessing", &T->prep, e);
  cJSON_Delete(root);
  free(pj);
  if (!rc)
    rc = ptrain_read(T);
  if (!rc)
    rc = ptrain_prepare(T);
  if (!rc) {
    fstore_set_free(T->s);
    T->s = NULL;
    rc = ptrain_grid(T);
  }
  if (!rc && T->total != (size_t)q->trials)
    rc = err_set(e, ERR_STATE, "search %lld has %d trials, the spec here "
                               "gives %zu",
                 (long long)q->id, q->trials, T->total);
  if (!rc)
    rc = join_collective(T, q->tracker, e);
  for (size_t t = 0; !rc && t < T->total; t++) {
    struct ptrial P = {.T = T, .t = t, .sid = q->id, .row = rank,
                       .owner = owner, .hb_at = pipeline_mono_s()};
    if ((rc = ptrain_fit(&P, e)))
      break;
    rc = ptrain_model_sha(T, t, &P.r, e);
    if (!rc)
      pipeline_plog(
          &o,
          "rank %d: trial %zu/%zu%s: %s=%.4f on this rank's validation "
          "rows [%d rounds, best %d, %.1f s]",
          rank, t + 1, T->total, P.desc, spec_metric_name(sp->metric),
          pipeline_metric_value(sp->metric, &P.r.metrics), P.r.rounds_run,
          P.r.best_iteration, P.secs);
    cJSON_Delete(P.pj);
    cJSON_Delete(P.mj);
    train_result_free(&P.r);
  }
  if (T->comm) {
    train_comm_finalize();
    T->comm = 0;
  }
  struct err fe = {0};
  if (!rc) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "rank", rank);
    cJSON_AddNumberToObject(m, "rows", (double)res.n_rows);
    cJSON_AddNumberToObject(m, "train_rows", (double)res.n_train);
    cJSON *a = cJSON_AddArrayToObject(m, "model_sha256");
    for (size_t t = 0; a && t < T->total; t++)
      cJSON_AddItemToArray(a, cJSON_CreateString(T->trial_sha[t]));
    char *ms = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    rc = ms ? trialq_finish(db, q->id, rank, owner, 1, 0, ms, NULL, NULL, 0,
                            NULL, e)
            : err_set(e, ERR_NOMEM, "pipeline: out of memory");
    free(ms);
  } else if (trialq_finish(db, q->id, rank, owner, 0, 0, NULL, NULL, NULL, 0,
                           e->msg, &fe)) {
    pipeline_plog(&o, "rank %d: recording the failure: %s", rank, fe.msg);
  }
  ptrain_free(T);
  pthread_mutex_destroy(&T->mu);
  free(T);
  pipeline_result_free(&res);
  return rc;
}
