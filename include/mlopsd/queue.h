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
 * Callbacks are never called with the queue lock held.
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
 * thread or on the thread calling queue_shutdown.  Owns arg from here on. */
typedef void (*queue_done_fn)(uint64_t job_id, enum err_code code,
                              const struct err *e, void *arg);

struct queue_opts {
  int workers;        /* worker threads, >= 1 */
  int reserved_high;  /* of those, how many only run PRIO_HIGH (< workers) */
  int capacity;       /* max queued (not running) jobs, >= 1 */
  const char *name;   /* for logs and thread names */
};

enum err_code queue_create(struct queue **out, const struct queue_opts *o,
                           struct err *e) MLOPSD_WUR;

/* Submit a job.  timeout_ms <= 0 means none; the deadline counts from the
 * start of the job.  On ERR_FULL / ERR_SHUTDOWN the job was not accepted:
 * done is NOT called and arg stays with the caller.  *id_out may be NULL. */
enum err_code queue_submit(struct queue *q, enum queue_prio prio,
                           queue_fn fn, queue_done_fn done, void *arg,
                           int timeout_ms, uint64_t *id_out) MLOPSD_WUR;

/* Cancel a job: if queued it is removed (done gets ERR_CANCELED); if running
 * its stop flag is raised.  ERR_NOTFOUND if no such job is queued/running. */
enum err_code queue_cancel(struct queue *q, uint64_t job_id);

/* For job bodies: non-zero once the job was cancelled, passed its deadline
 * or the queue is shutting down.  */
int queue_job_should_stop(struct queue_job_ctx *ctx);
/* Sleep up to ms, waking early when the job should stop.  Returns
 * queue_job_should_stop(ctx) after waking. */
int queue_job_sleep(struct queue_job_ctx *ctx, int ms);
/* The job's id and its absolute deadline (CLOCK_MONOTONIC ms, 0 = none). */
uint64_t queue_job_id(const struct queue_job_ctx *ctx);
int64_t queue_job_deadline_ms(const struct queue_job_ctx *ctx);

struct queue_stats {
  int queued;          /* waiting jobs */
  int running;         /* jobs being run */
  uint64_t submitted, completed, rejected, canceled, timed_out;
};
void queue_get_stats(struct queue *q, struct queue_stats *s);

/* Stop intake, let running jobs finish until deadline_ms from now, then
 * raise their stop flags and wait for them; queued jobs not started are
 * dropped (done with ERR_SHUTDOWN).  Fills left_running / left_queued with
 * what was not finished normally (either may be NULL).  Idempotent. */
void queue_shutdown(struct queue *q, int deadline_ms, int *left_running,
                    int *left_queued);

/* Shut down (deadline 0) if not done, join the workers, free q.  NULL ok. */
void queue_destroy(struct queue *q);

/* CLOCK_MONOTONIC in ms: one clock for every deadline in mlopsd. */
int64_t queue_now_ms(void);

#endif
