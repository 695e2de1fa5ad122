/* queue.c - bounded MPMC job queue with a fixed pool of workers (queue.h).
 *
 * One mutex (q->mu) guards everything shared; it is a leaf lock: nothing
 * else is locked, logged or called back while it is held.  Jobs live in
 * slots preallocated at create time (capacity + workers of them): a queued
 * job needs one of `capacity`, a running one one of `workers`, and a slot
 * goes back to the free list, under the lock, before the done callback
 * runs, so submit never finds the free list empty below capacity and never
 * allocates.
 *
 * Queued jobs sit in one doubly linked FIFO per priority (O(1) removal on
 * cancel) and in a small chained hash by id (O(1) lookup for cancel; ids
 * are sequential, so `id & mask` spreads them evenly).
 *
 * Each worker has its own condition variable.  A submit wakes exactly one
 * idle worker that may take the job (a reserved one first for a HIGH job),
 * and a worker that takes a job while more are queued wakes the next idle
 * one ("chain wake-up"), so no job waits while a worker that could run it
 * sleeps, and there is no thundering herd.  The same condition variable
 * serves queue_job_sleep while the worker runs a job, which is how cancel
 * and shutdown wake a sleeping job early.
 *
 * Cancellation and timeouts are cooperative: the stop flag is an atomic
 * read by the job body without the lock; the deadline is checked against
 * CLOCK_MONOTONIC by queue_job_should_stop / queue_job_sleep and once more
 * when fn returns, so no watchdog thread is needed.
 */
#include "mlopsd/queue.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/log.h"

#define QUEUE_NPRIO 3
#define QUEUE_NAME_MAX 32

enum { JOB_FREE = 0, JOB_QUEUED, JOB_RUNNING, JOB_DROPPING };
enum { STOP_CANCEL = 1, STOP_SHUTDOWN = 2 };
enum { SHUT_NONE = 0, SHUT_BUSY, SHUT_DONE };

struct queue_worker {
  struct queue *q;
  pthread_t tid;
  int idx;
  int high_only;              /* reserved: runs QUEUE_PRIO_HIGH only */
  int idle;                   /* waiting for work */
  int woken;                  /* told to look for work, has not looked yet */
  struct queue_job_ctx *job;  /* the job being run, or NULL */
  pthread_cond_t cv;          /* idle wait and queue_job_sleep */
  struct err e;               /* detail of the current job */
};

/* A job slot.  The job body sees it as its opaque ctx. */
struct queue_job_ctx {
  struct queue *q;
  struct queue_job_ctx *next, *prev; /* priority FIFO; next: free list */
  struct queue_job_ctx *hnext;       /* id hash chain */
  struct queue_worker *w;            /* while running */
  uint64_t id;
  queue_fn fn;
  queue_done_fn done;
  void *arg;
  int timeout_ms;
  int prio;
  int state;
  int stop;            /* STOP_* bits; atomic, written under q->mu */
  int64_t deadline_ns; /* CLOCK_MONOTONIC; 0 = none; set at start */
};

struct queue {
  pthread_mutex_t mu;
  pthread_cond_t drain_cv; /* shutdown waits here for jobs/callbacks */
  char name[QUEUE_NAME_MAX];
  int nworkers, nreserved, capacity;
  int nstarted; /* threads actually started */
  struct queue_worker *workers;

  struct queue_job_ctx *slots;
  int nslots;
  struct queue_job_ctx *free_list;
  struct queue_job_ctx *head[QUEUE_NPRIO], *tail[QUEUE_NPRIO];
  struct queue_job_ctx **hash;
  uint64_t hmask;
  uint64_t next_id;

  int nqueued;  /* in the FIFOs */
  int nrunning; /* in fn */
  int nactive;  /* workers between taking a job and done returning */
  int ncb;      /* done callbacks run by queue_cancel right now */
  int stopping; /* intake closed, workers exit */
  int shut;     /* SHUT_* */
  int left_running, left_queued;

  uint64_t submitted, completed, rejected, canceled, timed_out, dropped,
      failed;
};

/* ---- clock ------------------------------------------------------------ */

static int64_t queue_now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t queue_now_ms(void) { return queue_now_ns() / 1000000; }

static struct timespec queue_ts(int64_t ns)
{
  struct timespec ts;
  ts.tv_sec = (time_t)(ns / 1000000000);
  ts.tv_nsec = (long)(ns % 1000000000);
  return ts;
}

/* ---- helpers, all with q->mu held ------------------------------------- */

static void do_hash_add(struct queue *q, struct queue_job_ctx *j)
{
  struct queue_job_ctx **b = &q->hash[j->id & q->hmask];
  j->hnext = *b;
  *b = j;
}

static void do_hash_del(struct queue *q, struct queue_job_ctx *j)
{
  struct queue_job_ctx **p = &q->hash[j->id & q->hmask];
  while (*p && *p != j)
    p = &(*p)->hnext;
  if (*p)
    *p = j->hnext;
  j->hnext = NULL;
}

static struct queue_job_ctx *do_find(struct queue *q, uint64_t id)
{
  struct queue_job_ctx *j = q->hash[id & q->hmask];
  while (j && j->id != id)
    j = j->hnext;
  return j;
}

static void do_fifo_unlink(struct queue *q, struct queue_job_ctx *j)
{
  if (j->prev)
    j->prev->next = j->next;
  else
    q->head[j->prio] = j->next;
  if (j->next)
    j->next->prev = j->prev;
  else
    q->tail[j->prio] = j->prev;
  j->next = j->prev = NULL;
}

static void do_slot_free(struct queue *q, struct queue_job_ctx *j)
{
  if (j->state != JOB_DROPPING)
    do_hash_del(q, j);
  j->state = JOB_FREE;
  j->fn = NULL;
  j->done = NULL;
  j->arg = NULL;
  j->w = NULL;
  j->prev = NULL;
  j->next = q->free_list;
  q->free_list = j;
}

/* The next job a worker may run: highest priority first, FIFO within. */
static struct queue_job_ctx *do_take(struct queue *q, int high_only)
{
  int lowest = high_only ? QUEUE_PRIO_HIGH : QUEUE_PRIO_LOW;
  for (int p = QUEUE_PRIO_HIGH; p >= lowest; p--) {
    struct queue_job_ctx *j = q->head[p];
    if (j) {
      do_fifo_unlink(q, j);
      q->nqueued--;
      return j;
    }
  }
  return NULL;
}

static int do_wake_one(struct queue *q, int want_reserved)
{
  for (int i = 0; i < q->nstarted; i++) {
    struct queue_worker *w = &q->workers[i];
    if (w->high_only == want_reserved && w->idle && !w->woken) {
      w->woken = 1;
      pthread_cond_signal(&w->cv);
      return 1;
    }
  }
  return 0;
}

/* Wake one idle worker that can run a queued job, if there is one.  A HIGH
 * job prefers a reserved worker, which keeps general workers free. */
static void do_kick(struct queue *q)
{
  if (q->nqueued == 0)
    return;
  if (q->head[QUEUE_PRIO_HIGH] && do_wake_one(q, 1))
    return;
  do_wake_one(q, 0);
}

/* ---- the worker ------------------------------------------------------- */

/* Run j on w.  Called and returns with q->mu held. */
static void do_run(struct queue *q, struct queue_worker *w,
                   struct queue_job_ctx *j)
{
  int64_t start = queue_now_ns();
  j->state = JOB_RUNNING;
  j->w = w;
  j->deadline_ns =
      j->timeout_ms > 0 ? start + (int64_t)j->timeout_ms * 1000000 : 0;
  w->job = j;
  q->nrunning++;
  q->nactive++;
  do_kick(q); /* more work queued: let the next idle worker have it */
  pthread_mutex_unlock(&q->mu);

  struct err *e = &w->e;
  err_clear(e);
  enum err_code rc = j->fn(j, j->arg, e);
  int64_t end = queue_now_ns();

  pthread_mutex_lock(&q->mu);
  int stop = __atomic_load_n(&j->stop, __ATOMIC_ACQUIRE);
  uint64_t id = j->id;
  enum err_code code = rc;
  if (j->deadline_ns && end >= j->deadline_ns) {
    code = ERR_TIMEOUT;
    q->timed_out++;
  } else if (rc != ERR_OK && (stop & STOP_CANCEL)) {
    code = ERR_CANCELED;
    q->canceled++;
  } else {
    if (rc != ERR_OK && (stop & STOP_SHUTDOWN))
      code = ERR_SHUTDOWN;
    q->completed++;
    if (code != ERR_OK)
      q->failed++;
  }
  if (code != rc || (code != ERR_OK && !e->msg[0])) {
    const char *why = code == ERR_TIMEOUT    ? "timed out"
                      : code == ERR_CANCELED ? "canceled while running"
                      : code == ERR_SHUTDOWN ? "stopped at shutdown"
                                             : "failed";
    if (e->msg[0] && code == ERR_TIMEOUT)
      err_prefix(e, "job %" PRIu64 " timed out after %d ms", id,
                 j->timeout_ms);
    else if (e->msg[0])
      err_prefix(e, "job %" PRIu64 " %s", id, why);
    else if (code == ERR_TIMEOUT)
      err_set(e, code, "job %" PRIu64 " timed out after %d ms", id,
              j->timeout_ms);
    else
      err_set(e, code, "job %" PRIu64 " %s: %s", id, why, err_str(rc));
  }
  e->code = code;
  queue_done_fn done = j->done;
  void *arg = j->arg;
  w->job = NULL;
  q->nrunning--;
  do_slot_free(q, j);
  if (q->stopping && q->nrunning == 0)
    pthread_cond_broadcast(&q->drain_cv);

  if (done) {
    pthread_mutex_unlock(&q->mu);
    done(id, code, e, arg);
    pthread_mutex_lock(&q->mu);
  }
  q->nactive--;
  if (q->stopping && q->nactive == 0)
    pthread_cond_broadcast(&q->drain_cv);
}

static void queue_thread_name(const struct queue *q, int idx)
{
  /* Linux limits thread names to 15 chars: cut the name, keep "-wN". */
  char suffix[16], buf[16];
  int n = snprintf(suffix, sizeof(suffix), "-w%d", idx);
  size_t room = 15 - (size_t)n, len = strlen(q->name);
  if (len > room)
    len = room;
  memcpy(buf, q->name, len);
  memcpy(buf + len, suffix, (size_t)n + 1);
  pthread_setname_np(pthread_self(), buf); /* cosmetic: ignore failure */
}

static void *queue_worker_main(void *p)
{
  struct queue_worker *w = p;
  struct queue *q = w->q;
  queue_thread_name(q, w->idx);
  pthread_mutex_lock(&q->mu);
  for (;;) {
    struct queue_job_ctx *j = q->stopping ? NULL : do_take(q, w->high_only);
    if (j) {
      do_run(q, w, j);
      continue;
    }
    if (q->stopping)
      break;
    w->idle = 1;
    w->woken = 0;
    while (!w->woken && !q->stopping)
      pthread_cond_wait(&w->cv, &q->mu);
    w->idle = 0;
    w->woken = 0;
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* ---- create / destroy ------------------------------------------------- */

static void queue_free(struct queue *q)
{
  if (q->workers)
    for (int i = 0; i < q->nworkers; i++)
      pthread_cond_destroy(&q->workers[i].cv);
  pthread_cond_destroy(&q->drain_cv);
  pthread_mutex_destroy(&q->mu);
  free(q->workers);
  free(q->slots);
  free(q->hash);
  free(q);
}

static int queue_cond_init(pthread_cond_t *cv)
{
  pthread_condattr_t a;
  if (pthread_condattr_init(&a) != 0)
    return -1;
  int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  if (rc == 0)
    rc = pthread_cond_init(cv, &a);
  pthread_condattr_destroy(&a);
  return rc == 0 ? 0 : -1;
}

enum err_code queue_create(struct queue **out, const struct queue_opts *o,
                           struct err *e)
{
  if (!out || !o)
    return err_set(e, ERR_INVAL, "queue_create: out and opts are required");
  const char *name = o->name && o->name[0] ? o->name : "queue";
  if (o->workers < 1 || o->workers > QUEUE_MAX_WORKERS)
    return err_set(e, ERR_INVAL, "queue %s: workers %d out of range 1..%d",
                   name, o->workers, QUEUE_MAX_WORKERS);
  if (o->reserved_high < 0 || o->reserved_high >= o->workers)
    return err_set(e, ERR_INVAL,
                   "queue %s: reserved_high %d out of range 0..%d "
                   "(must leave a worker for normal jobs)",
                   name, o->reserved_high, o->workers - 1);
  if (o->capacity < 1 || o->capacity > QUEUE_MAX_CAPACITY)
    return err_set(e, ERR_INVAL, "queue %s: capacity %d out of range 1..%d",
                   name, o->capacity, QUEUE_MAX_CAPACITY);

  struct queue *q = calloc(1, sizeof(*q));
  if (!q)
    return err_set(e, ERR_NOMEM, "queue %s: out of memory", name);
  snprintf(q->name, sizeof(q->name), "%s", name);
  q->nworkers = o->workers;
  q->nreserved = o->reserved_high;
  q->capacity = o->capacity;
  q->nslots = o->capacity + o->workers;
  uint64_t nb = 16;
  while (nb < (uint64_t)q->nslots)
    nb <<= 1;
  q->hmask = nb - 1;
  pthread_mutex_init(&q->mu, NULL);
  if (queue_cond_init(&q->drain_cv) != 0) {
    pthread_mutex_destroy(&q->mu);
    free(q);
    return err_set(e, ERR_INTERNAL, "queue %s: pthread_cond_init failed",
                   name);
  }
  q->slots = calloc((size_t)q->nslots, sizeof(*q->slots));
  q->hash = calloc((size_t)nb, sizeof(*q->hash));
  q->workers = calloc((size_t)q->nworkers, sizeof(*q->workers));
  if (!q->slots || !q->hash || !q->workers) {
    free(q->workers);
    q->workers = NULL;
    queue_free(q);
    return err_set(e, ERR_NOMEM, "queue %s: out of memory for %d job slots",
                   name, o->capacity + o->workers);
  }
  for (int i = q->nslots - 1; i >= 0; i--) {
    q->slots[i].q = q;
    q->slots[i].next = q->free_list;
    q->free_list = &q->slots[i];
  }
  for (int i = 0; i < q->nworkers; i++) {
    if (queue_cond_init(&q->workers[i].cv) != 0) {
      for (int k = 0; k < i; k++)
        pthread_cond_destroy(&q->workers[k].cv);
      free(q->workers);
      q->workers = NULL;
      queue_free(q);
      return err_set(e, ERR_INTERNAL, "queue %s: pthread_cond_init failed",
                     name);
    }
    q->workers[i].q = q;
    q->workers[i].idx = i;
    /* the last reserved_high workers are the reserved ones */
    q->workers[i].high_only = i >= q->nworkers - q->nreserved;
  }
  pthread_mutex_lock(&q->mu);
  for (int i = 0; i < q->nworkers; i++) {
    int rc = pthread_create(&q->workers[i].tid, NULL, queue_worker_main,
                            &q->workers[i]);
    if (rc != 0) {
      q->stopping = 1;
      q->shut = SHUT_DONE;
      for (int k = 0; k < i; k++)
        pthread_cond_signal(&q->workers[k].cv);
      pthread_mutex_unlock(&q->mu);
      for (int k = 0; k < i; k++)
        pthread_join(q->workers[k].tid, NULL);
      queue_free(q);
      return err_set(e, ERR_INTERNAL,
                     "queue %s: cannot start worker %d: %s", name, i,
                     strerror(rc));
    }
    q->nstarted = i + 1;
  }
  pthread_mutex_unlock(&q->mu);
  *out = q;
  return ERR_OK;
}

void queue_destroy(struct queue *q)
{
  if (!q)
    return;
  queue_shutdown(q, 0, NULL, NULL);
  for (int i = 0; i < q->nstarted; i++)
    pthread_join(q->workers[i].tid, NULL);
  queue_free(q);
}

/* ---- submit / cancel -------------------------------------------------- */

enum err_code queue_submit(struct queue *q, enum queue_prio prio,
                           queue_fn fn, queue_done_fn done, void *arg,
                           int timeout_ms, uint64_t *id_out)
{
  if (!q || !fn || (int)prio < QUEUE_PRIO_LOW || (int)prio > QUEUE_PRIO_HIGH)
    return ERR_INVAL;
  pthread_mutex_lock(&q->mu);
  if (q->stopping) {
    q->rejected++;
    pthread_mutex_unlock(&q->mu);
    return ERR_SHUTDOWN;
  }
  if (q->nqueued >= q->capacity || !q->free_list) {
    q->rejected++;
    pthread_mutex_unlock(&q->mu);
    return ERR_FULL;
  }
  struct queue_job_ctx *j = q->free_list;
  q->free_list = j->next;
  j->id = ++q->next_id;
  j->fn = fn;
  j->done = done;
  j->arg = arg;
  j->timeout_ms = timeout_ms > 0 ? timeout_ms : 0;
  j->prio = (int)prio;
  j->state = JOB_QUEUED;
  j->deadline_ns = 0;
  j->w = NULL;
  __atomic_store_n(&j->stop, 0, __ATOMIC_RELAXED);
  j->next = NULL;
  j->prev = q->tail[prio];
  if (j->prev)
    j->prev->next = j;
  else
    q->head[prio] = j;
  q->tail[prio] = j;
  do_hash_add(q, j);
  q->nqueued++;
  q->submitted++;
  if (id_out)
    *id_out = j->id;
  do_kick(q);
  pthread_mutex_unlock(&q->mu);
  return ERR_OK;
}

enum err_code queue_cancel(struct queue *q, uint64_t job_id)
{
  if (!q)
    return ERR_INVAL;
  pthread_mutex_lock(&q->mu);
  struct queue_job_ctx *j = job_id ? do_find(q, job_id) : NULL;
  if (!j) {
    pthread_mutex_unlock(&q->mu);
    return ERR_NOTFOUND;
  }
  if (j->state == JOB_RUNNING) {
    __atomic_fetch_or(&j->stop, STOP_CANCEL, __ATOMIC_RELEASE);
    pthread_cond_signal(&j->w->cv); /* wake a queue_job_sleep */
    pthread_mutex_unlock(&q->mu);
    return ERR_OK;
  }
  /* queued: the only other state a hashed slot can be in */
  do_fifo_unlink(q, j);
  q->nqueued--;
  q->canceled++;
  queue_done_fn done = j->done;
  void *arg = j->arg;
  do_slot_free(q, j);
  if (!done) {
    pthread_mutex_unlock(&q->mu);
    return ERR_OK;
  }
  q->ncb++;
  pthread_mutex_unlock(&q->mu);

  struct err e;
  err_set(&e, ERR_CANCELED, "job %" PRIu64 " canceled before it started",
          job_id);
  done(job_id, ERR_CANCELED, &e, arg);

  pthread_mutex_lock(&q->mu);
  q->ncb--;
  if (q->stopping && q->ncb == 0)
    pthread_cond_broadcast(&q->drain_cv);
  pthread_mutex_unlock(&q->mu);
  return ERR_OK;
}

/* ---- for job bodies --------------------------------------------------- */

int queue_job_should_stop(struct queue_job_ctx *ctx)
{
  if (!ctx)
    return 0;
  if (__atomic_load_n(&ctx->stop, __ATOMIC_ACQUIRE))
    return 1;
  return ctx->deadline_ns && queue_now_ns() >= ctx->deadline_ns;
}

int queue_job_sleep(struct queue_job_ctx *ctx, int ms)
{
  if (!ctx)
    return 0;
  if (ms <= 0)
    return queue_job_should_stop(ctx);
  struct queue *q = ctx->q;
  int64_t wake = queue_now_ns() + (int64_t)ms * 1000000;
  if (ctx->deadline_ns && ctx->deadline_ns < wake)
    wake = ctx->deadline_ns;
  struct timespec ts = queue_ts(wake);
  pthread_mutex_lock(&q->mu);
  while (!__atomic_load_n(&ctx->stop, __ATOMIC_ACQUIRE) &&
         queue_now_ns() < wake) {
    int rc = pthread_cond_timedwait(&ctx->w->cv, &q->mu, &ts);
    if (rc != 0 && rc != ETIMEDOUT && rc != EINTR)
      break; /* cannot happen with valid arguments; do not spin */
  }
  pthread_mutex_unlock(&q->mu);
  return queue_job_should_stop(ctx);
}

uint64_t queue_job_id(const struct queue_job_ctx *ctx)
{
  return ctx ? ctx->id : 0;
}

int64_t queue_job_deadline_ms(const struct queue_job_ctx *ctx)
{
  if (!ctx || !ctx->deadline_ns)
    return 0;
  return (ctx->deadline_ns + 999999) / 1000000; /* not before the real one */
}

/* ---- stats / shutdown ------------------------------------------------- */

void queue_get_stats(struct queue *q, struct queue_stats *s)
{
  if (!s)
    return;
  memset(s, 0, sizeof(*s));
  if (!q)
    return;
  pthread_mutex_lock(&q->mu);
  s->queued = q->nqueued;
  s->running = q->nrunning;
  s->submitted = q->submitted;
  s->completed = q->completed;
  s->rejected = q->rejected;
  s->canceled = q->canceled;
  s->timed_out = q->timed_out;
  s->dropped = q->dropped;
  s->failed = q->failed;
  s->workers = q->nworkers;
  s->capacity = q->capacity;
  pthread_mutex_unlock(&q->mu);
}

void queue_shutdown(struct queue *q, int deadline_ms, int *left_running,
                    int *left_queued)
{
  if (left_running)
    *left_running = 0;
  if (left_queued)
    *left_queued = 0;
  if (!q)
    return;
  pthread_mutex_lock(&q->mu);
  if (q->shut != SHUT_NONE) {
    while (q->shut != SHUT_DONE)
      pthread_cond_wait(&q->drain_cv, &q->mu);
    if (left_running)
      *left_running = q->left_running;
    if (left_queued)
      *left_queued = q->left_queued;
    pthread_mutex_unlock(&q->mu);
    return;
  }
  int64_t t0 = queue_now_ns();
  q->shut = SHUT_BUSY;
  q->stopping = 1;
  for (int i = 0; i < q->nstarted; i++)
    pthread_cond_signal(&q->workers[i].cv); /* idle ones exit */

  /* Detach every queued job, highest priority first, into a private list:
   * unhashed, so queue_cancel no longer finds them. */
  struct queue_job_ctx *drop = NULL, **dtail = &drop;
  int ndrop = 0;
  for (int p = QUEUE_PRIO_HIGH; p >= QUEUE_PRIO_LOW; p--) {
    struct queue_job_ctx *j = q->head[p];
    while (j) {
      struct queue_job_ctx *next = j->next;
      do_hash_del(q, j);
      j->state = JOB_DROPPING;
      j->next = NULL;
      *dtail = j;
      dtail = &j->next;
      ndrop++;
      j = next;
    }
    q->head[p] = q->tail[p] = NULL;
  }
  q->nqueued = 0;
  q->dropped += (uint64_t)ndrop;
  pthread_mutex_unlock(&q->mu);

  struct err e;
  for (struct queue_job_ctx *j = drop; j; j = j->next) {
    if (!j->done)
      continue;
    err_set(&e, ERR_SHUTDOWN,
            "queue %s: job %" PRIu64 " dropped at shutdown before it started",
            q->name, j->id);
    j->done(j->id, ERR_SHUTDOWN, &e, j->arg);
  }

  pthread_mutex_lock(&q->mu);
  while (drop) {
    struct queue_job_ctx *next = drop->next;
    do_slot_free(q, drop);
    drop = next;
  }
  /* grace period for running jobs */
  int64_t deadline = t0 + (deadline_ms > 0 ? (int64_t)deadline_ms : 0) *
                              1000000;
  struct timespec ts = queue_ts(deadline);
  while (q->nrunning > 0 && queue_now_ns() < deadline)
    pthread_cond_timedwait(&q->drain_cv, &q->mu, &ts);
  int left = q->nrunning;
  if (left > 0)
    for (int i = 0; i < q->nstarted; i++) {
      struct queue_worker *w = &q->workers[i];
      if (w->job) {
        __atomic_fetch_or(&w->job->stop, STOP_SHUTDOWN, __ATOMIC_RELEASE);
        pthread_cond_signal(&w->cv);
      }
    }
  while (q->nactive > 0 || q->ncb > 0)
    pthread_cond_wait(&q->drain_cv, &q->mu);
  q->left_running = left;
  q->left_queued = ndrop;
  q->shut = SHUT_DONE;
  pthread_cond_broadcast(&q->drain_cv);
  uint64_t done_ok = q->completed - q->failed;
  pthread_mutex_unlock(&q->mu);

  int64_t ms = (queue_now_ns() - t0) / 1000000;
  if (left || ndrop)
    LOG_W("queue",
          "%s: shut down with work left: running_stopped=%d "
          "queued_dropped=%d grace_ms=%d ms=%" PRId64,
          q->name, left, ndrop, deadline_ms, ms);
  else
    LOG_I("queue",
          "%s: shut down cleanly: running_stopped=0 queued_dropped=0 "
          "jobs_ok=%" PRIu64 " ms=%" PRId64,
          q->name, done_ok, ms);
  if (left_running)
    *left_running = left;
  if (left_queued)
    *left_queued = ndrop;
}
