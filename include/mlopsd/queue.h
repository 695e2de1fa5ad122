/* queue.h - the one in-process job queue with a fixed pool of workers.
 *
 * Every long action (a DAG task, a batch of prediction-log inserts, a model
 * reload, a drift check) is a job.  The queue is bounded: when it is full,
 * queue_submit returns ERR_FULL and the caller decides (nothing is dropped
 * silently).  Jobs carry a priority; a worker always takes the highest
 * priority job first (FIFO within a priority), so a prediction-log flush
 * (QUEUE_PRIO_HIGH) never waits behind queued training jobs.  To keep a
 * long job from occupying every worker, `reserved_high` workers only ever
 * run QUEUE_PRIO_HIGH jobs.
 *
 * Cancellation and timeouts are cooperative for running jobs: the job
 * function polls queue_job_should_stop(ctx) (or waits on it with
 * queue_job_sleep) and returns early; a job still queued when cancelled
 * never runs and its done callback gets ERR_CANCELED.  Shell tasks use the
 * deadline to kill their process group.
 *
 * Thread rule: every function may be called from any thread, except
 * queue_destroy (once, by the creator, after no other thread uses q).
 * Callbacks are never called with the queue lock held.  A job body or a
 * done callback may call queue_submit, queue_cancel and queue_get_stats,
 * but never queue_shutdown or queue_destroy (they wait for it: deadlock).
 * The queue_job_* functions are for the job body that got the ctx, and
 * only while it runs.  Design notes: docs/queue.md.
 */
#ifndef MLOPSD_QUEUE_H
#define MLOPSD_QUEUE_H

#include <stdint.h>

#include "mlopsd/err.h"

struct queue;
struct queue_job_ctx;

enum queue_prio { QUEUE_PRIO_LOW = 0, QUEUE_PRIO_NORMAL = 1, QUEUE_PRIO_HIGH = 2 };

/* The job body.  Returns its outcome; e for detail.  arg is borrowed. */
typedef enum err_code (*queue_fn)(struct queue_job_ctx *ctx, void *arg,
                                  struct err *e);
/* Called exactly once per accepted job, after it ran, was cancelled while
 * queued, or was dropped at shutdown (code ERR_SHUTDOWN); runs on a worker
 * thread, on the thread calling queue_cancel (job cancelled while queued)
 * or on the thread calling queue_shutdown.  Owns arg from here on.  e is
 * borrowed for the call; e->code == code and e->msg says what happened.
 *
 * The code given to done:
 *   what fn returned, except:
 *   ERR_TIMEOUT   fn returned at or after its deadline (whatever it returned)
 *   ERR_CANCELED  cancelled while queued (fn never ran), or cancelled while
 *                 running and fn returned an error
 *   ERR_SHUTDOWN  dropped at shutdown before it started (fn never ran), or
 *                 stopped by the shutdown deadline and fn returned an error
 * A job that was cancelled or stopped but still returned ERR_OK reports
 * ERR_OK: its work was done. */
typedef void (*queue_done_fn)(uint64_t job_id, enum err_code code,
                              const struct err *e, void *arg);

struct queue_opts {
  int workers;        /* worker threads, >= 1 */
  int reserved_high;  /* of those, how many only run PRIO_HIGH (< workers) */
  int capacity;       /* max queued (not running) jobs, >= 1 */
  const char *name;   /* for logs and thread names; copied; NULL = "queue" */
};

#define QUEUE_MAX_WORKERS 256
#define QUEUE_MAX_CAPACITY (1 << 22)

/* Create the queue and start its workers (threads named "<name>-wN",
 * the name cut to fit 15 chars).  Every job slot is allocated here
 * (capacity + workers), so queue_submit never allocates.
 * ERR_INVAL for bad opts (workers 1..QUEUE_MAX_WORKERS, reserved_high
 * 0..workers-1, capacity 1..QUEUE_MAX_CAPACITY), ERR_NOMEM, ERR_INTERNAL
 * if a thread cannot be started.  *out is set only on ERR_OK. */
enum err_code queue_create(struct queue **out, const struct queue_opts *o,
                           struct err *e) MLOPSD_WUR;

/* Submit a job.  timeout_ms <= 0 means none; the deadline counts from the
 * start of the job.  On ERR_FULL / ERR_SHUTDOWN the job was not accepted:
 * done is NOT called and arg stays with the caller.  *id_out may be NULL.
 * Ids start at 1 and grow; they are never reused.  done may be NULL (then
 * arg stays with the caller).  ERR_INVAL if q or fn is NULL or prio is not
 * a QUEUE_PRIO_*.  Never blocks except on the queue lock; never allocates. */
enum err_code queue_submit(struct queue *q, enum queue_prio prio,
                           queue_fn fn, queue_done_fn done, void *arg,
                           int timeout_ms, uint64_t *id_out) MLOPSD_WUR;

/* Cancel a job: if queued it is removed (done gets ERR_CANCELED, called
 * on this thread before queue_cancel returns); if running its stop flag is
 * raised and a queue_job_sleep in it wakes up.  ERR_NOTFOUND if no such
 * job is queued/running (already finished, dropped, or never existed). */
enum err_code queue_cancel(struct queue *q, uint64_t job_id);

/* For job bodies: non-zero once the job was cancelled, passed its deadline
 * or the queue's shutdown deadline passed (see queue_shutdown).  Cheap: an
 * atomic load and, for jobs with a timeout, a clock read. */
int queue_job_should_stop(struct queue_job_ctx *ctx);
/* Sleep up to ms, waking early when the job should stop.  Returns
 * queue_job_should_stop(ctx) after waking. */
int queue_job_sleep(struct queue_job_ctx *ctx, int ms);
/* The job's id and its absolute deadline (CLOCK_MONOTONIC ms, 0 = none). */
uint64_t queue_job_id(const struct queue_job_ctx *ctx);
int64_t queue_job_deadline_ms(const struct queue_job_ctx *ctx);

/* Counters since creation, taken as one consistent snapshot.  Every
 * accepted job is in exactly one of the last five columns:
 *   submitted == queued + running + completed + canceled + timed_out
 *                + dropped
 * (a job counts as finished before its done callback runs). */
struct queue_stats {
  int queued;          /* waiting jobs */
  int running;         /* jobs being run */
  uint64_t submitted;  /* accepted by queue_submit */
  uint64_t completed;  /* fn returned (any code) not counted below */
  uint64_t rejected;   /* queue_submit gave ERR_FULL or ERR_SHUTDOWN */
  uint64_t canceled;   /* done got ERR_CANCELED */
  uint64_t timed_out;  /* done got ERR_TIMEOUT */
  /* fields added after the first version: */
  uint64_t dropped;    /* still queued at shutdown: done got ERR_SHUTDOWN */
  uint64_t failed;     /* of completed, how many gave done a code != OK */
  int workers;         /* worker threads (opts.workers) */
  int capacity;        /* opts.capacity */
};
void queue_get_stats(struct queue *q, struct queue_stats *s);

/* Stop intake, let running jobs finish until deadline_ms from now, then
 * raise their stop flags and wait for them; queued jobs not started are
 * dropped (done with ERR_SHUTDOWN).  Fills left_running / left_queued with
 * what was not finished normally (either may be NULL).  Idempotent.
 *
 * In order: queue_submit answers ERR_SHUTDOWN from now on; the queued jobs
 * are dropped at once (their done runs on this thread, in priority order);
 * the running jobs get until deadline_ms (<= 0: no grace) to return; those
 * still running then (left_running) have their stop flag raised and are
 * waited for without limit, so jobs must poll queue_job_should_stop.  When
 * it returns, every done callback has returned and no callback will run
 * again (the workers are exiting; queue_destroy joins them).  Logs one
 * line (module "queue") with what was left.  A second call (also a
 * concurrent one) waits for the first to finish and reports the same
 * counts.  Not from a job or done callback. */
void queue_shutdown(struct queue *q, int deadline_ms, int *left_running,
                    int *left_queued);

/* Shut down (deadline 0) if not done, join the workers, free q.  NULL ok. */
void queue_destroy(struct queue *q);

/* CLOCK_MONOTONIC in ms: one clock for every deadline in mlopsd. */
int64_t queue_now_ms(void);

#endif
