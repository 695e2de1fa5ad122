/* trialw.c - trial helper threads of a scheduler daemon (see trialw.h).
 *
 * Why a thread pool of its own and not jobs on the daemon's queue: a
 * helper runs only when another daemon's search has work, and must not
 * take the workers the scheduler gives to DAG tasks (which include the
 * coordinating train task itself).  Each thread keeps its own prepared
 * search, so helpers never wait on each other; the cost is one copy of
 * the matrices per helper thread.
 */
#include "mlopsd/trialw.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/spec.h"
#include "mlopsd/trialq.h"

#define MOD "trials"
#define MAX_SKIP 32
#define IDLE_CLOSE_S 30

struct helper {
  struct trialw *w;
  pthread_t th;
  int started;
  char owner[TRIALQ_OWNER_MAX + 1];
  int64_t skip[MAX_SKIP]; /* searches this daemon cannot reproduce */
  int nskip;
  int64_t sid;            /* the prepared search, 0 = none */
  struct spec *spec;
  struct pipeline_helper *ph;
  double idle_since;
  int failing;            /* the last claim failed (logged once) */
};

struct trialw {
  struct trialw_opts o;
  char specs_dir[512];
  char prefix[TRIALQ_OWNER_MAX + 1];
  atomic_int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct helper *h;
};

static double mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hlog(void *ud, const char *line)
{
  (void)ud;
  LOG_I(MOD, "%s", line);
}

static int hstop(void *ud)
{
  struct trialw *w = ud;
  return atomic_load(&w->stop);
}

static void drop_search(struct helper *h)
{
  pipeline_helper_close(h->ph);
  spec_destroy(h->spec);
  h->ph = NULL;
  h->spec = NULL;
  h->sid = 0;
}

static void skip_search(struct helper *h, int64_t sid)
{
  if (h->nskip < MAX_SKIP)
    h->skip[h->nskip++] = sid;
}

/* Make search sid the prepared one.  On failure the search is skipped
 * from now on (this daemon would not train the same trials). */
static enum err_code prepare(struct helper *h, int64_t sid, struct err *e)
{
  struct trialw *w = h->w;
  if (h->sid == sid && h->ph)
    return ERR_OK;
  drop_search(h);
  struct trialq_search q;
  enum err_code rc = trialq_search_get(w->o.db, sid, &q, e);
  if (!rc)
    rc = pipeline_spec_load(w->specs_dir, q.model, &h->spec, e);
  if (!rc) {
    LOG_I(MOD, "helping with search %lld: %s for %s, %d trials (run %s)",
          (long long)sid, q.model, q.ds, q.trials, q.run_prefix);
    rc = pipeline_helper_open(w->o.db, h->spec, &q, w->o.nthread,
                              w->o.lease_s, hlog, NULL, hstop, w, &h->ph,
                              e);
  }
  if (rc) {
    drop_search(h);
    return rc;
  }
  h->sid = sid;
  return ERR_OK;
}

/* Rank `rank` of a distributed-training search: blocks for the whole
 * training (pipeline_rank_run records the outcome in the rank's row). */
static void run_rank(struct helper *h, const struct trialq_search *q,
                     int rank)
{
  struct trialw *w = h->w;
  struct err e = {0};
  struct spec *sp = NULL;
  enum err_code rc = pipeline_spec_load(w->specs_dir, q->model, &sp, &e);
  if (!rc && strcmp(sp->sha256, q->spec_sha256))
    rc = err_set(&e, ERR_STATE, "spec %s differs from rank 0's (sha256 "
                                "%.12s, %.12s there)",
                 sp->path, sp->sha256, q->spec_sha256);
  if (rc) {
    LOG_W(MOD, "search %lld: cannot be rank %d: %s", (long long)q->id, rank,
          e.msg);
    skip_search(h, q->id);
    struct err re = {0};
    if (trialq_release(w->o.db, q->id, rank, h->owner, &re))
      LOG_W(MOD, "giving rank %d of search %lld back: %s", rank,
            (long long)q->id, re.msg);
    spec_destroy(sp);
    return;
  }
  LOG_I(MOD, "search %lld: rank %d of %d for %s %s (tracker %s)",
        (long long)q->id, rank, q->workers, q->model, q->ds, q->tracker);
  drop_search(h); /* no grid search matrices held while this trains */
  rc = pipeline_rank_run(w->o.db, sp, q, rank, h->owner, w->o.nthread,
                         w->o.lease_s, hlog, NULL, hstop, w, &e);
  if (rc)
    LOG_W(MOD, "search %lld: rank %d: %s", (long long)q->id, rank, e.msg);
  else
    LOG_I(MOD, "search %lld: rank %d done", (long long)q->id, rank);
  spec_destroy(sp);
}

static void nap(struct trialw *w, int ms)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += ms / 1000;
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&w->mu);
  if (!atomic_load(&w->stop))
    pthread_cond_timedwait(&w->cv, &w->mu, &ts);
  pthread_mutex_unlock(&w->mu);
}

static void *helper_main(void *arg)
{
  struct helper *h = arg;
  struct trialw *w = h->w;
  int poll_ms = w->o.poll_ms > 0 ? w->o.poll_ms : 1000;
  h->idle_since = mono_s();
  while (!atomic_load(&w->stop)) {
    struct err e = {0};
    int64_t sid;
    int trial, tries;
    enum err_code rc =
        trialq_claim(w->o.db, 0, w->prefix, h->skip, h->nskip, h->owner,
                     w->o.lease_s, &sid, &trial, &tries, &e);
    int bad = rc != ERR_OK && rc != ERR_NOTFOUND;
    if (bad != h->failing) {
      /* say it when it starts failing and when it works again, not at
       * every poll of a database that is down */
      h->failing = bad;
      if (h->failing)
        LOG_W(MOD, "claiming trials: %s (trying again every %d ms)", e.msg,
              poll_ms);
      else
        LOG_I(MOD, "claiming trials works again");
    }
    if (rc) {
      if (h->ph && mono_s() - h->idle_since > IDLE_CLOSE_S)
        drop_search(h); /* free the matrices of a search long done */
      nap(w, poll_ms);
      continue;
    }
    struct trialq_search q;
    if (!trialq_search_get(w->o.db, sid, &q, &e) &&
        !strcmp(q.kind, "workers")) {
      run_rank(h, &q, trial);
      h->idle_since = mono_s();
      continue;
    }
    if ((rc = prepare(h, sid, &e))) {
      LOG_W(MOD, "search %lld: cannot help: %s", (long long)sid, e.msg);
      skip_search(h, sid);
      struct err re = {0};
      if (trialq_release(w->o.db, sid, trial, h->owner, &re))
        LOG_W(MOD, "giving trial %d of search %lld back: %s", trial + 1,
              (long long)sid, re.msg);
      continue;
    }
    rc = pipeline_helper_trial(h->ph, trial, h->owner, &e);
    if (rc && rc != ERR_CANCELED)
      LOG_W(MOD, "trial %d of search %lld: %s", trial + 1, (long long)sid,
            e.msg);
    h->idle_since = mono_s();
  }
  drop_search(h);
  return NULL;
}

enum err_code trialw_create(struct trialw **out, const struct trialw_opts *o,
                            struct err *e)
{
  *out = NULL;
  if (!o || !o->db || !o->specs_dir || o->threads < 1 || o->threads > 256)
    return err_set(e, ERR_INVAL, "trial helpers: bad options");
  struct trialw *w = calloc(1, sizeof(*w));
  if (!w || !(w->h = calloc((size_t)o->threads, sizeof(*w->h)))) {
    free(w);
    return err_set(e, ERR_NOMEM, "trial helpers: out of memory");
  }
  w->o = *o;
  snprintf(w->specs_dir, sizeof(w->specs_dir), "%s", o->specs_dir);
  w->o.specs_dir = w->specs_dir;
  trialq_owner_prefix(w->prefix, sizeof(w->prefix));
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  for (int i = 0; i < o->threads; i++) {
    struct helper *h = &w->h[i];
    h->w = w;
    char tag[24];
    snprintf(tag, sizeof(tag), "helper%d", i);
    trialq_owner_name(h->owner, sizeof(h->owner), tag);
    if (pthread_create(&h->th, NULL, helper_main, h)) {
      trialw_destroy(w);
      return err_set(e, ERR_INTERNAL, "trial helpers: cannot start a "
                                      "thread");
    }
    h->started = 1;
  }
  *out = w;
  return ERR_OK;
}

void trialw_destroy(struct trialw *w)
{
  if (!w)
    return;
  pthread_mutex_lock(&w->mu);
  atomic_store(&w->stop, 1);
  pthread_cond_broadcast(&w->cv);
  pthread_mutex_unlock(&w->mu);
  for (int i = 0; i < w->o.threads; i++)
    if (w->h[i].started)
      pthread_join(w->h[i].th, NULL);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w->h);
  free(w);
}
