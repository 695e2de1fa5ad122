/* bench_queue.c - throughput and submit-to-start latency of the job queue.
 *
 *   build/bench/bench_queue [JOBS_PER_PRODUCER]     (default 250000)
 *
 * 1. throughput: 4 producer threads submit trivial jobs (retrying on
 *    ERR_FULL) to 2 workers; jobs/s from the first submit to the last done.
 *    The same run gives the "loaded" submit-to-start latency (p50/p99),
 *    which includes the time a job waits in the queue.
 * 2. idle latency: one job in flight at a time, so each submit has to wake
 *    a sleeping worker: the cost of the hand-off itself.
 * Times are CLOCK_MONOTONIC nanoseconds.  Figures only: always exits 0
 * unless the queue itself fails.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/queue.h"

#define PRODUCERS 4
#define WORKERS 2
#define CAPACITY 1024
#define IDLE_SAMPLES 20000

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t *submit_ns; /* per job: when queue_submit was called */
static int64_t *lat_ns;    /* per job: start - submit */
static uint64_t ndone;

static enum err_code bjob(struct queue_job_ctx *ctx, void *arg,
                          struct err *e)
{
  (void)ctx;
  (void)e;
  size_t i = (size_t)(uintptr_t)arg;
  lat_ns[i] = now_ns() - submit_ns[i];
  return ERR_OK;
}

static void bdone(uint64_t id, enum err_code code, const struct err *e,
                  void *arg)
{
  (void)id;
  (void)e;
  (void)arg;
  if (code != ERR_OK)
    fprintf(stderr, "bench_queue: job failed: %s\n", err_str(code));
  __atomic_fetch_add(&ndone, 1, __ATOMIC_RELEASE);
}

struct prod {
  struct queue *q;
  size_t first, n;
  uint64_t fulls;
  int failed;
};

static int go;

static void *producer(void *p)
{
  struct prod *pr = p;
  while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
    sched_yield();
  for (size_t k = 0; k < pr->n; k++) {
    size_t i = pr->first + k;
    for (;;) {
      submit_ns[i] = now_ns();
      enum err_code rc = queue_submit(pr->q, QUEUE_PRIO_NORMAL, bjob, bdone,
                                      (void *)(uintptr_t)i, 0, NULL);
      if (rc == ERR_OK)
        break;
      if (rc != ERR_FULL) {
        pr->failed = 1;
        return NULL;
      }
      pr->fulls++;
      sched_yield();
    }
  }
  return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void pct(int64_t *v, size_t n, int64_t *p50, int64_t *p99)
{
  qsort(v, n, sizeof(*v), cmp_i64);
  *p50 = v[n / 2];
  *p99 = v[(n * 99) / 100];
}

static struct queue *mk(const char *name)
{
  struct queue_opts o = {WORKERS, 0, CAPACITY, name};
  struct queue *q = NULL;
  struct err e = {0};
  if (queue_create(&q, &o, &e) != ERR_OK) {
    fprintf(stderr, "bench_queue: %s\n", e.msg);
    return NULL;
  }
  return q;
}

int main(int argc, char **argv)
{
  size_t per = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : 250000;
  if (per < 100)
    per = 100;
  size_t total = per * PRODUCERS;
  size_t slots = total > IDLE_SAMPLES ? total : IDLE_SAMPLES;
  log_set_level(LOG_WARN);
  submit_ns = calloc(slots, sizeof(*submit_ns));
  lat_ns = calloc(slots, sizeof(*lat_ns));
  if (!submit_ns || !lat_ns) {
    fprintf(stderr, "bench_queue: out of memory\n");
    return 1;
  }

  /* 1. throughput, loaded latency */
  struct queue *q = mk("bench");
  if (!q)
    return 1;
  struct prod pr[PRODUCERS];
  pthread_t th[PRODUCERS];
  for (int i = 0; i < PRODUCERS; i++) {
    pr[i] = (struct prod){q, (size_t)i * per, per, 0, 0};
    pthread_create(&th[i], NULL, producer, &pr[i]);
  }
  int64_t t0 = now_ns();
  __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
  while (__atomic_load_n(&ndone, __ATOMIC_ACQUIRE) < total) {
    struct timespec ts = {0, 100000};
    nanosleep(&ts, NULL);
    int failed = 0;
    for (int i = 0; i < PRODUCERS; i++)
      failed |= __atomic_load_n(&pr[i].failed, __ATOMIC_RELAXED);
    if (failed)
      break;
  }
  int64_t t1 = now_ns();
  uint64_t fulls = 0;
  int failed = 0;
  for (int i = 0; i < PRODUCERS; i++) {
    pthread_join(th[i], NULL);
    fulls += pr[i].fulls;
    failed |= pr[i].failed;
  }
  queue_destroy(q);
  if (failed) {
    fprintf(stderr, "bench_queue: submit failed\n");
    return 1;
  }
  double secs = (double)(t1 - t0) / 1e9;
  int64_t p50, p99;
  pct(lat_ns, total, &p50, &p99);
  printf("queue throughput: %zu trivial jobs, %d producers, %d workers, "
         "capacity %d: %.0f jobs/s (%.2f s, %llu ERR_FULL retries)\n",
         total, PRODUCERS, WORKERS, CAPACITY, (double)total / secs, secs,
         (unsigned long long)fulls);
  printf("queue latency loaded (same run, includes queueing): "
         "p50 %lld ns, p99 %lld ns\n",
         (long long)p50, (long long)p99);

  /* 2. idle hand-off latency: one job in flight */
  q = mk("bench");
  if (!q)
    return 1;
  __atomic_store_n(&ndone, 0, __ATOMIC_RELAXED);
  for (size_t i = 0; i < IDLE_SAMPLES; i++) {
    submit_ns[i] = now_ns();
    if (queue_submit(q, QUEUE_PRIO_NORMAL, bjob, bdone, (void *)(uintptr_t)i,
                     0, NULL) != ERR_OK) {
      fprintf(stderr, "bench_queue: submit failed\n");
      return 1;
    }
    while (__atomic_load_n(&ndone, __ATOMIC_ACQUIRE) < i + 1)
      sched_yield();
  }
  queue_destroy(q);
  pct(lat_ns, IDLE_SAMPLES, &p50, &p99);
  printf("queue latency idle (one job in flight, worker wake-up): "
         "p50 %lld ns, p99 %lld ns (%d samples)\n",
         (long long)p50, (long long)p99, IDLE_SAMPLES);
  free(submit_ns);
  free(lat_ns);
  return 0;
}
