/* test_queue.c - the job queue (src/queue.c) with real threads.
 *
 * Jobs block on a gate or on queue_job_sleep so that each test sets up
 * exactly the state it needs (worker busy, jobs queued) before acting;
 * nothing depends on how fast anything runs.  The waits below give up
 * after 20 s only so that a broken queue fails instead of hanging.
 *
 * check: tsan   (run by `make tsan`: the stress tests are the point)
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "check.h"
#include "mlopsd/log.h"
#include "mlopsd/queue.h"

/* ---- shared test state, all under tmu -------------------------------- */

static pthread_mutex_t tmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tcv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static int order[64];
static int norder;

struct rec {
  int tag;
  int ran;
  int done_calls;
  enum err_code code;
  int stop_seen;
  int64_t start_ms, deadline_ms;
  uint64_t id_seen, id_done;
  char msg[ERR_MSG_MAX];
  char thread[16];
};

static void reset_state(void)
{
  pthread_mutex_lock(&tmu);
  gate_open = 0;
  norder = 0;
  pthread_mutex_unlock(&tmu);
}

static void open_gate(void)
{
  pthread_mutex_lock(&tmu);
  gate_open = 1;
  pthread_cond_broadcast(&tcv);
  pthread_mutex_unlock(&tmu);
}

/* Wait (tmu held) until *v >= want; 0 if 20 s passed. */
static int wait_ge_locked(const int *v, int want)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 20;
  while (*v < want)
    if (pthread_cond_timedwait(&tcv, &tmu, &ts) != 0 && *v < want)
      return 0;
  return 1;
}

static int wait_ge(const int *v, int want)
{
  pthread_mutex_lock(&tmu);
  int ok = wait_ge_locked(v, want);
  pthread_mutex_unlock(&tmu);
  return ok;
}

static int get_locked(const int *v)
{
  pthread_mutex_lock(&tmu);
  int x = *v;
  pthread_mutex_unlock(&tmu);
  return x;
}

/* The start of every job here: ARG is its record; notes the run. */
static struct rec *mark_ran(struct queue_job_ctx *ctx, void *arg)
{
  struct rec *r = arg;
  pthread_mutex_lock(&tmu);
  r->ran++;
  r->id_seen = queue_job_id(ctx);
  r->start_ms = queue_now_ms();
  r->deadline_ms = queue_job_deadline_ms(ctx);
  pthread_getname_np(pthread_self(), r->thread, sizeof(r->thread));
  pthread_cond_broadcast(&tcv);
  pthread_mutex_unlock(&tmu);
  return r;
}

/* r->stop_seen = v, under the test lock (the main thread reads it). */
static void set_stop_seen(struct rec *r, int v)
{
  pthread_mutex_lock(&tmu);
  r->stop_seen = v;
  pthread_mutex_unlock(&tmu);
}

/* Runs until the gate opens. */
static enum err_code job_block(struct queue_job_ctx *ctx, void *arg,
                               struct err *e)
{
  (void)e;
  mark_ran(ctx, arg);
  wait_ge(&gate_open, 1);
  return ERR_OK;
}

/* Appends its tag to order[]. */
static enum err_code job_record(struct queue_job_ctx *ctx, void *arg,
                                struct err *e)
{
  (void)e;
  struct rec *r = mark_ran(ctx, arg);
  pthread_mutex_lock(&tmu);
  if (norder < 64)
    order[norder++] = r->tag;
  pthread_mutex_unlock(&tmu);
  return ERR_OK;
}

/* Sleeps until told to stop (cancel, timeout, shutdown), like a shell task
 * waiting for its child; then fails with ERR_CANCELED. */
static enum err_code job_until_stop(struct queue_job_ctx *ctx, void *arg,
                                    struct err *e)
{
  struct rec *r = mark_ran(ctx, arg);
  while (!queue_job_sleep(ctx, 60000))
    ;
  set_stop_seen(r, queue_job_should_stop(ctx));
  return err_set(e, ERR_CANCELED, "told to stop");
}

/* Polls queue_job_should_stop, then returns ERR_OK (it finished anyway). */
static enum err_code job_poll_ok(struct queue_job_ctx *ctx, void *arg,
                                 struct err *e)
{
  (void)e;
  struct rec *r = mark_ran(ctx, arg);
  while (!queue_job_should_stop(ctx))
    sched_yield();
  set_stop_seen(r, 1);
  return ERR_OK;
}

/* Sleeps r->tag ms with queue_job_sleep; returns OK; notes should_stop. */
static enum err_code job_nap(struct queue_job_ctx *ctx, void *arg,
                             struct err *e)
{
  (void)e;
  struct rec *r = mark_ran(ctx, arg);
  set_stop_seen(r, queue_job_sleep(ctx, r->tag));
  return ERR_OK;
}

/* Ignores the queue and sleeps r->tag ms; returns OK. */
static enum err_code job_deaf(struct queue_job_ctx *ctx, void *arg,
                              struct err *e)
{
  (void)e;
  struct rec *r = mark_ran(ctx, arg);
  struct timespec ts = {r->tag / 1000, (long)(r->tag % 1000) * 1000000};
  nanosleep(&ts, NULL);
  return ERR_OK;
}

static void done_rec(uint64_t id, enum err_code code, const struct err *e,
                     void *arg)
{
  struct rec *r = arg;
  pthread_mutex_lock(&tmu);
  r->done_calls++;
  r->code = code;
  r->id_done = id;
  if (e) {
    snprintf(r->msg, sizeof(r->msg), "%s", e->msg);
    if (e->code != code)
      r->code = ERR_INTERNAL; /* contract: e->code == code */
  }
  pthread_cond_broadcast(&tcv);
  pthread_mutex_unlock(&tmu);
}

static struct queue *mkq(int workers, int reserved, int cap, const char *nm)
{
  struct queue_opts o = {workers, reserved, cap, nm};
  struct queue *q = NULL;
  struct err e = {0};
  if (queue_create(&q, &o, &e) != ERR_OK) {
    fprintf(stderr, "queue_create: %s\n", e.msg);
    return NULL;
  }
  return q;
}

static enum err_code sub(struct queue *q, enum queue_prio p, queue_fn fn,
                         struct rec *r, int timeout_ms, uint64_t *id)
{
  return queue_submit(q, p, fn, done_rec, r, timeout_ms, id);
}

/* The whole-number fields of a job's record for CHECK_REC(r, "ran=1
 * done_calls=1"), one check per field. */
#define F(f) CHECK_FIELD(struct rec, f)
static const struct check_field RECF[] = {
    F(tag), F(ran), F(done_calls), F(code), F(stop_seen), F(start_ms),
    F(deadline_ms), F(id_seen), F(id_done)};
#undef F
#define CHECK_REC(r, want) CHECK_FIELDS(struct rec, (r), RECF, want)

/* A fresh test state and a queue "tq" (WORKERS, RESERVED for HIGH, CAP),
 * or NULL after a failed check. */
static struct queue *tq_open(int workers, int reserved, int cap)
{
  reset_state();
  struct queue *q = mkq(workers, reserved, cap, "tq");
  if (!q)
    check_fail_at(__FILE__, __LINE__, "no queue tq");
  return q;
}

/* Submit a job_block of priority P recording into R and wait until it
 * runs (it holds a worker until open_gate); 1 when it did, else 0 after a
 * failed check. */
static int start_blocker(struct queue *q, enum queue_prio p, struct rec *r)
{
  if (sub(q, p, job_block, r, 0, NULL) != ERR_OK) {
    check_fail_at(__FILE__, __LINE__, "job_block not submitted");
    return 0;
  }
  if (!wait_ge(&r->ran, 1)) {
    check_fail_at(__FILE__, __LINE__, "job_block never ran");
    return 0;
  }
  return 1;
}

/* ---- tests ------------------------------------------------------------ */

/* The queue's stats as a value, and their fields for CHECK_QSTATS:
 * CHECK_QSTATS(q, "queued=1 running=2"), one check per field. */
static struct queue_stats qstats(struct queue *q)
{
  struct queue_stats st;
  queue_get_stats(q, &st);
  return st;
}
#define F(f) CHECK_FIELD(struct queue_stats, f)
static const struct check_field QSTATS[] = {
    F(queued), F(running), F(submitted), F(completed), F(rejected),
    F(canceled), F(timed_out), F(dropped), F(failed), F(workers),
    F(capacity)};
#undef F
#define CHECK_QSTATS(q, want)                                                 \
  CHECK_FIELDS(struct queue_stats, qstats(q), QSTATS, want)

TEST(create_bad_opts)
{
  struct queue *q = NULL;
  struct err e = {0};
  struct queue_opts o = {0, 0, 4, "bad"};
  CHECK_EQ_INT(queue_create(&q, &o, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "workers") != NULL);
  CHECK(q == NULL);
  o = (struct queue_opts){2, 2, 4, "bad"};
  CHECK_EQ_INT(queue_create(&q, &o, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "reserved_high") != NULL);
  o = (struct queue_opts){2, 1, 0, "bad"};
  CHECK_EQ_INT(queue_create(&q, &o, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "capacity") != NULL);
  CHECK_EQ_INT(queue_create(&q, NULL, &e), ERR_INVAL);
  CHECK(q == NULL);
}

TEST(null_handles)
{
  queue_destroy(NULL);
  int lr = 7, lq = 7;
  queue_shutdown(NULL, 0, &lr, &lq);
  CHECK_EQ_INT(lr, 0);
  CHECK_EQ_INT(lq, 0);
  struct queue_stats s;
  queue_get_stats(NULL, &s);
  CHECK_EQ_INT(s.submitted, 0);
  CHECK_EQ_INT(queue_cancel(NULL, 1), ERR_INVAL);
  CHECK_EQ_INT(queue_job_should_stop(NULL), 0);
}

TEST(bad_submit)
{
  struct queue *q = mkq(1, 0, 2, "tq");
  REQUIRE(q);
  struct rec r = {0};
  CHECK_EQ_INT(queue_submit(q, QUEUE_PRIO_LOW, NULL, done_rec, &r, 0, NULL),
               ERR_INVAL);
  CHECK_EQ_INT(queue_submit(q, (enum queue_prio)3, job_record, done_rec, &r,
                            0, NULL),
               ERR_INVAL);
  queue_destroy(q);
  CHECK_REC(r, "done_calls=0");
}

/* One worker, blocked; jobs of mixed priority queue up behind it and must
 * come out highest priority first, FIFO within a priority. */
TEST(priority_and_fifo)
{
  struct queue *q = tq_open(1, 0, 16);
  REQUIRE(q);
  struct rec blk = {0};
  REQUIRE(start_blocker(q, QUEUE_PRIO_NORMAL, &blk));
  /* tag = prio * 10 + sequence within the priority */
  static const enum queue_prio ps[] = {
      QUEUE_PRIO_LOW,  QUEUE_PRIO_NORMAL, QUEUE_PRIO_HIGH, QUEUE_PRIO_LOW,
      QUEUE_PRIO_HIGH, QUEUE_PRIO_NORMAL, QUEUE_PRIO_LOW,  QUEUE_PRIO_HIGH};
  struct rec r[8];
  uint64_t ids[8];
  int seq[3] = {0, 0, 0};
  memset(r, 0, sizeof(r));
  for (int i = 0; i < 8; i++) {
    r[i].tag = (int)ps[i] * 10 + ++seq[ps[i]];
    CHECK_EQ_INT(sub(q, ps[i], job_record, &r[i], 0, &ids[i]), ERR_OK);
    if (i > 0)
      CHECK(ids[i] > ids[i - 1]);
  }
  CHECK_QSTATS(q, "queued=8 running=1");
  open_gate();
  for (int i = 0; i < 8; i++)
    CHECK(wait_ge(&r[i].done_calls, 1));
  static const int want[] = {21, 22, 23, 11, 12, 1, 2, 3};
  CHECK_EQ_INT(get_locked(&norder), 8);
  for (int i = 0; i < 8; i++)
    CHECK_EQ_INT(order[i], want[i]);
  for (int i = 0; i < 8; i++) {
    CHECK_EQ_INT(r[i].code, ERR_OK);
    CHECK_EQ_INT(r[i].id_seen, ids[i]);
    CHECK_EQ_INT(r[i].id_done, ids[i]);
    CHECK_EQ_INT(r[i].deadline_ms, 0);
  }
  CHECK_EQ_STR(blk.thread, "tq-w0");
  queue_destroy(q);
  CHECK_REC(blk, "done_calls=1");
}

/* Two general workers held by LOW jobs: the reserved worker still runs a
 * HIGH job, and never a LOW one. */
TEST(reserved_high_worker)
{
  struct queue *q = tq_open(3, 1, 8);
  REQUIRE(q);
  struct rec b1 = {0}, b2 = {0}, low = {0}, high = {0};
  REQUIRE(sub(q, QUEUE_PRIO_LOW, job_block, &b1, 0, NULL) == ERR_OK);
  REQUIRE(sub(q, QUEUE_PRIO_LOW, job_block, &b2, 0, NULL) == ERR_OK);
  REQUIRE(wait_ge(&b1.ran, 1));
  REQUIRE(wait_ge(&b2.ran, 1));
  REQUIRE(sub(q, QUEUE_PRIO_LOW, job_record, &low, 0, NULL) == ERR_OK);
  REQUIRE(sub(q, QUEUE_PRIO_HIGH, job_record, &high, 0, NULL) == ERR_OK);
  CHECK(wait_ge(&high.done_calls, 1)); /* while b1, b2 still block */
  CHECK_EQ_INT(high.code, ERR_OK);
  CHECK_EQ_STR(high.thread, "tq-w2"); /* the last worker is the reserved */
  CHECK_EQ_INT(get_locked(&low.ran), 0);
  CHECK_QSTATS(q, "queued=1 running=2");
  open_gate();
  CHECK(wait_ge(&low.done_calls, 1));
  queue_destroy(q);
  CHECK_REC(b1, "done_calls=1");
  CHECK_REC(b2, "done_calls=1");
  CHECK_REC(low, "ran=1");
}

TEST(full_rejects)
{
  struct queue *q = tq_open(1, 0, 2);
  REQUIRE(q);
  struct rec blk = {0}, a = {0}, b = {0}, c = {0};
  REQUIRE(start_blocker(q, QUEUE_PRIO_NORMAL, &blk));
  CHECK_EQ_INT(sub(q, QUEUE_PRIO_LOW, job_record, &a, 0, NULL), ERR_OK);
  CHECK_EQ_INT(sub(q, QUEUE_PRIO_LOW, job_record, &b, 0, NULL), ERR_OK);
  uint64_t cid = 12345;
  CHECK_EQ_INT(sub(q, QUEUE_PRIO_HIGH, job_record, &c, 0, &cid), ERR_FULL);
  CHECK_EQ_INT(cid, 12345); /* untouched */
  CHECK_QSTATS(q, "queued=2 submitted=3 rejected=1 capacity=2 workers=1");
  open_gate();
  CHECK(wait_ge(&a.done_calls, 1));
  CHECK(wait_ge(&b.done_calls, 1));
  /* room again */
  struct rec d = {0};
  CHECK_EQ_INT(sub(q, QUEUE_PRIO_LOW, job_record, &d, 0, NULL), ERR_OK);
  CHECK(wait_ge(&d.done_calls, 1));
  queue_destroy(q);
  CHECK_EQ_INT(c.ran, 0);
  CHECK_EQ_INT(c.done_calls, 0);
}

TEST(cancel_queued)
{
  struct queue *q = tq_open(1, 0, 4);
  REQUIRE(q);
  struct rec blk = {0}, x = {0}, y = {0};
  uint64_t xid = 0, yid = 0;
  REQUIRE(start_blocker(q, QUEUE_PRIO_NORMAL, &blk));
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_record, &x, 0, &xid) == ERR_OK);
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_record, &y, 0, &yid) == ERR_OK);
  CHECK_EQ_INT(queue_cancel(q, xid), ERR_OK);
  /* done ran on this thread, before queue_cancel returned */
  CHECK_EQ_INT(get_locked(&x.done_calls), 1);
  CHECK_EQ_INT(x.code, ERR_CANCELED);
  CHECK_EQ_INT(x.id_done, xid);
  CHECK(strstr(x.msg, "canceled") != NULL);
  CHECK_EQ_INT(queue_cancel(q, xid), ERR_NOTFOUND);
  CHECK_EQ_INT(queue_cancel(q, 999999), ERR_NOTFOUND);
  CHECK_EQ_INT(queue_cancel(q, 0), ERR_NOTFOUND);
  CHECK_QSTATS(q, "queued=1 canceled=1");
  open_gate();
  CHECK(wait_ge(&y.done_calls, 1));
  CHECK_EQ_INT(queue_cancel(q, yid), ERR_NOTFOUND); /* finished */
  queue_destroy(q);
  CHECK_REC(x, "ran=0 done_calls=1");
  CHECK_EQ_INT(y.code, ERR_OK);
}

/* Submit FN recording into R, wait until it runs, cancel it and wait for
 * its done callback: a failed check per step that did not happen; 1 when
 * all did. */
static int cancel_while_running(struct queue *q, queue_fn fn, struct rec *r)
{
  uint64_t id = 0;
  if (sub(q, QUEUE_PRIO_NORMAL, fn, r, 0, &id) != ERR_OK) {
    check_fail_at(__FILE__, __LINE__, "job not submitted");
    return 0;
  }
  if (!wait_ge(&r->ran, 1)) {
    check_fail_at(__FILE__, __LINE__, "job never ran");
    return 0;
  }
  int ok = 1;
  if (queue_cancel(q, id) != ERR_OK) {
    check_fail_at(__FILE__, __LINE__, "queue_cancel of a running job");
    ok = 0;
  }
  if (!wait_ge(&r->done_calls, 1)) {
    check_fail_at(__FILE__, __LINE__, "no done callback after the cancel");
    ok = 0;
  }
  return ok;
}

TEST(cancel_running)
{
  struct queue *q = tq_open(1, 0, 4);
  REQUIRE(q);
  /* a job asleep in queue_job_sleep is woken and reports ERR_CANCELED */
  struct rec w = {0};
  REQUIRE(cancel_while_running(q, job_until_stop, &w));
  CHECK_EQ_INT(w.code, ERR_CANCELED);
  CHECK_REC(w, "stop_seen=1");
  CHECK(strstr(w.msg, "told to stop") != NULL);
  /* a polling job that still returns ERR_OK keeps ERR_OK */
  struct rec p = {0};
  REQUIRE(cancel_while_running(q, job_poll_ok, &p));
  CHECK_EQ_INT(p.code, ERR_OK);
  CHECK_REC(p, "stop_seen=1");
  CHECK_QSTATS(q, "canceled=1 completed=1 running=0");
  queue_destroy(q);
  CHECK_REC(w, "done_calls=1");
  CHECK_REC(p, "done_calls=1");
}

TEST(timeout)
{
  struct queue *q = tq_open(1, 0, 4);
  REQUIRE(q);
  /* sleeps "forever": queue_job_sleep wakes at the deadline */
  struct rec t = {0};
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_until_stop, &t, 50, NULL) == ERR_OK);
  CHECK(wait_ge(&t.done_calls, 1));
  CHECK_EQ_INT(t.code, ERR_TIMEOUT);
  CHECK_REC(t, "stop_seen=1");
  CHECK(t.deadline_ms > 0);
  CHECK(t.deadline_ms <= t.start_ms + 51);
  CHECK(strstr(t.msg, "timed out after 50 ms") != NULL);
  /* ignores the queue, returns OK after its deadline: still ERR_TIMEOUT */
  struct rec d = {.tag = 30};
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_deaf, &d, 5, NULL) == ERR_OK);
  CHECK(wait_ge(&d.done_calls, 1));
  CHECK_EQ_INT(d.code, ERR_TIMEOUT);
  /* well within its timeout: OK, deadline set, should_stop never true */
  struct rec f = {.tag = 1};
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_nap, &f, 600000, NULL) == ERR_OK);
  CHECK(wait_ge(&f.done_calls, 1));
  CHECK_EQ_INT(f.code, ERR_OK);
  CHECK_REC(f, "stop_seen=0");
  CHECK(f.deadline_ms >= f.start_ms + 599000);
  CHECK_QSTATS(q, "timed_out=2 completed=1");
  queue_destroy(q);
}

/* Two jobs that only stop when told, three queued behind them. */
TEST(shutdown_counts)
{
  struct queue *q = tq_open(2, 0, 8);
  REQUIRE(q);
  struct rec run[2], wait[3];
  memset(run, 0, sizeof(run));
  memset(wait, 0, sizeof(wait));
  for (int i = 0; i < 2; i++)
    REQUIRE(sub(q, QUEUE_PRIO_LOW, job_until_stop, &run[i], 0, NULL) ==
            ERR_OK);
  for (int i = 0; i < 2; i++)
    REQUIRE(wait_ge(&run[i].ran, 1));
  for (int i = 0; i < 3; i++)
    REQUIRE(sub(q, QUEUE_PRIO_HIGH, job_record, &wait[i], 0, NULL) ==
            ERR_OK);
  int lr = -1, lq = -1;
  queue_shutdown(q, 30, &lr, &lq);
  CHECK_EQ_INT(lr, 2);
  CHECK_EQ_INT(lq, 3);
  /* every done has run, exactly once, before queue_shutdown returned */
  for (int i = 0; i < 2; i++) {
    CHECK_EQ_INT(get_locked(&run[i].done_calls), 1);
    CHECK_EQ_INT(run[i].code, ERR_SHUTDOWN);
    CHECK_EQ_INT(run[i].stop_seen, 1);
  }
  for (int i = 0; i < 3; i++) {
    CHECK_EQ_INT(get_locked(&wait[i].done_calls), 1);
    CHECK_EQ_INT(wait[i].code, ERR_SHUTDOWN);
    CHECK_EQ_INT(wait[i].ran, 0);
    CHECK(strstr(wait[i].msg, "dropped at shutdown") != NULL);
  }
  struct rec late = {0};
  CHECK_EQ_INT(sub(q, QUEUE_PRIO_HIGH, job_record, &late, 0, NULL),
               ERR_SHUTDOWN);
  CHECK_QSTATS(q, "queued=0 running=0 submitted=5 dropped=3 completed=2 "
                  "failed=2 rejected=1");
  lr = lq = -1;
  queue_shutdown(q, 0, &lr, &lq); /* idempotent: same answer */
  CHECK_EQ_INT(lr, 2);
  CHECK_EQ_INT(lq, 3);
  queue_destroy(q);
  for (int i = 0; i < 2; i++)
    CHECK_EQ_INT(run[i].done_calls, 1);
  for (int i = 0; i < 3; i++)
    CHECK_EQ_INT(wait[i].done_calls, 1);
  CHECK_REC(late, "done_calls=0");
}

/* A short running job finishes within the grace period, undisturbed. */
TEST(shutdown_graceful)
{
  struct queue *q = tq_open(1, 0, 4);
  REQUIRE(q);
  struct rec n = {.tag = 20};
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_nap, &n, 0, NULL) == ERR_OK);
  REQUIRE(wait_ge(&n.ran, 1));
  int lr = -1, lq = -1;
  queue_shutdown(q, 20000, &lr, &lq);
  CHECK_EQ_INT(lr, 0);
  CHECK_EQ_INT(lq, 0);
  CHECK_EQ_INT(get_locked(&n.done_calls), 1);
  CHECK_EQ_INT(n.code, ERR_OK);
  CHECK_REC(n, "stop_seen=0");
  queue_destroy(q);
}

/* queue_destroy without a shutdown first: deadline 0, still one done each */
TEST(destroy_busy)
{
  reset_state();
  struct queue *q = mkq(1, 0, 4, "a-very-long-queue-name");
  REQUIRE(q);
  struct rec r = {0}, w = {0};
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_until_stop, &r, 0, NULL) == ERR_OK);
  REQUIRE(wait_ge(&r.ran, 1));
  REQUIRE(sub(q, QUEUE_PRIO_NORMAL, job_record, &w, 0, NULL) == ERR_OK);
  queue_destroy(q);
  CHECK_REC(r, "done_calls=1");
  CHECK_EQ_INT(r.code, ERR_SHUTDOWN);
  CHECK_REC(w, "done_calls=1");
  CHECK_EQ_INT(w.code, ERR_SHUTDOWN);
  CHECK_EQ_STR(r.thread, "a-very-long--w0"); /* 15-char thread name limit */
}

/* ---- stress ----------------------------------------------------------- */

#define S_PROD 4
#define S_PER 20000
#define S_JOBS (S_PROD * S_PER)

struct srec {
  int kind; /* 0 trivial, 1 naps 1 ms, 2 times out after 1 ms */
  int ran;
  int done_calls;
  int code;
  int accepted;
};

static struct srec srecs[S_JOBS];
static uint64_t code_count[ERR__COUNT];

struct sprod {
  struct queue *q;
  int idx;
  int per;
  unsigned seed;
  int stop_on_shutdown;
  uint64_t fulls, shutdowns, cancels_ok, accepted, bad_rc;
};

static enum err_code sjob(struct queue_job_ctx *ctx, void *arg,
                          struct err *e)
{
  (void)e;
  struct srec *r = arg;
  __atomic_fetch_add(&r->ran, 1, __ATOMIC_RELAXED);
  if (r->kind == 1)
    queue_job_sleep(ctx, 1);
  else if (r->kind == 2)
    queue_job_sleep(ctx, 1000); /* wakes at the 1 ms deadline */
  return queue_job_should_stop(ctx) ? ERR_CANCELED : ERR_OK;
}

static void sdone(uint64_t id, enum err_code code, const struct err *e,
                  void *arg)
{
  (void)id;
  (void)e;
  struct srec *r = arg;
  __atomic_fetch_add(&r->done_calls, 1, __ATOMIC_RELAXED);
  __atomic_store_n(&r->code, (int)code, __ATOMIC_RELAXED);
  if ((int)code >= 0 && code < ERR__COUNT)
    __atomic_fetch_add(&code_count[code], 1, __ATOMIC_RELAXED);
}

static void *sproducer(void *p)
{
  struct sprod *sp = p;
  uint64_t recent[32] = {0};
  for (int i = 0; i < sp->per; i++) {
    struct srec *r = &srecs[sp->idx * S_PER + i];
    unsigned x = (unsigned)rand_r(&sp->seed);
    r->kind = x % 1000 == 0 ? 1 : x % 1000 == 1 ? 2 : 0;
    enum queue_prio prio = (enum queue_prio)((x >> 10) % 3);
    int timeout = r->kind == 2 ? 1 : (x >> 12) % 4 == 0 ? 60000 : 0;
    uint64_t id = 0;
    enum err_code rc;
    for (;;) {
      rc = queue_submit(sp->q, prio, sjob, sdone, r, timeout, &id);
      if (rc != ERR_FULL)
        break;
      sp->fulls++;
      sched_yield();
    }
    if (rc == ERR_SHUTDOWN && sp->stop_on_shutdown) {
      sp->shutdowns++;
      break;
    }
    if (rc != ERR_OK) {
      sp->bad_rc++;
      continue;
    }
    r->accepted = 1;
    sp->accepted++;
    recent[i % 32] = id;
    if ((x >> 14) % 8 == 0) {
      uint64_t victim = recent[(x >> 17) % 32];
      if (victim && queue_cancel(sp->q, victim) == ERR_OK)
        sp->cancels_ok++;
    }
  }
  return NULL;
}

/* Reads stats while producers and workers run: the snapshot must add up
 * (a check_watch probe on the queue). */
static int stats_add_up(void *p)
{
  struct queue_stats s;
  queue_get_stats(p, &s);
  uint64_t fin = s.completed + s.canceled + s.timed_out + s.dropped;
  sched_yield();
  return s.submitted == fin + (uint64_t)s.queued + (uint64_t)s.running &&
         s.queued <= s.capacity && s.running <= s.workers;
}

static void stress_run(int shutdown_early)
{
  memset(srecs, 0, sizeof(srecs));
  memset(code_count, 0, sizeof(code_count));
  struct queue *q = mkq(3, 1, 64, "stress");
  REQUIRE(q);
  struct sprod sp[S_PROD];
  pthread_t th[S_PROD];
  struct check_watch sw;
  REQUIRE(check_watch_start(&sw, stats_add_up, q) == 0);
  for (int i = 0; i < S_PROD; i++) {
    sp[i] = (struct sprod){q, i, S_PER, 1234u + (unsigned)i, shutdown_early,
                           0, 0, 0, 0, 0};
    REQUIRE(pthread_create(&th[i], NULL, sproducer, &sp[i]) == 0);
  }
  int lr = -1, lq = -1;
  if (shutdown_early) {
    /* shut down while the producers are still going */
    struct queue_stats s;
    do {
      sched_yield();
      queue_get_stats(q, &s);
    } while (s.submitted < S_JOBS / 8);
    queue_shutdown(q, 10000, &lr, &lq);
  }
  for (int i = 0; i < S_PROD; i++)
    pthread_join(th[i], NULL);
  if (!shutdown_early) {
    /* let the queue drain, so nothing is dropped */
    struct queue_stats s;
    for (;;) {
      queue_get_stats(q, &s);
      if (s.queued == 0 && s.running == 0)
        break;
      struct timespec ts = {0, 1000000};
      nanosleep(&ts, NULL);
    }
    queue_shutdown(q, 10000, &lr, &lq);
  }
  check_watch_stop(&sw);

  uint64_t fulls = 0, shutdowns = 0, cancels_ok = 0, accepted = 0,
           bad_rc = 0;
  for (int i = 0; i < S_PROD; i++) {
    fulls += sp[i].fulls;
    shutdowns += sp[i].shutdowns;
    cancels_ok += sp[i].cancels_ok;
    accepted += sp[i].accepted;
    bad_rc += sp[i].bad_rc;
  }
  struct queue_stats st;
  queue_get_stats(q, &st);
  queue_destroy(q);

  CHECK_EQ_INT(bad_rc, 0);
  CHECK_EQ_INT(sw.bad, 0);
  CHECK(sw.n > 0);
  if (!shutdown_early)
    CHECK_EQ_INT(accepted, S_JOBS);
  CHECK_EQ_INT(lr, 0); /* jobs are short: none left at a 10 s deadline */
  int once = 0, wrong = 0;
  for (int i = 0; i < S_JOBS; i++) {
    struct srec *r = &srecs[i];
    if (!r->accepted) {
      wrong += r->done_calls != 0 || r->ran != 0;
      continue;
    }
    once += r->done_calls == 1;
    switch (r->code) {
    case ERR_OK: wrong += r->ran != 1; break;
    case ERR_CANCELED: wrong += r->ran > 1; break;
    case ERR_TIMEOUT: wrong += r->ran != 1 || r->kind != 2; break;
    case ERR_SHUTDOWN: wrong += r->ran != 0; break;
    default: wrong++;
    }
  }
  CHECK_EQ_INT(once, accepted);
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_INT(st.submitted, accepted);
  CHECK_EQ_INT(st.rejected, fulls + shutdowns);
  CHECK_EQ_INT(st.queued, 0);
  CHECK_EQ_INT(st.running, 0);
  CHECK_EQ_INT(st.completed + st.canceled + st.timed_out + st.dropped,
               st.submitted);
  CHECK_EQ_INT(st.failed, 0);
  CHECK_EQ_INT(code_count[ERR_OK], st.completed);
  CHECK_EQ_INT(code_count[ERR_CANCELED], st.canceled);
  CHECK_EQ_INT(code_count[ERR_TIMEOUT], st.timed_out);
  CHECK_EQ_INT(code_count[ERR_SHUTDOWN], st.dropped);
  CHECK_EQ_INT((uint64_t)lq, st.dropped);
  CHECK(st.canceled <= cancels_ok);
  if (!shutdown_early) {
    CHECK_EQ_INT(st.dropped, 0);
    CHECK(st.timed_out > 0);
    CHECK(st.canceled > 0);
  }
  fprintf(stderr,
          "  stress%s: accepted=%llu full_retries=%llu canceled=%llu "
          "timed_out=%llu dropped=%llu stat_samples=%llu\n",
          shutdown_early ? " (early shutdown)" : "",
          (unsigned long long)accepted, (unsigned long long)fulls,
          (unsigned long long)st.canceled, (unsigned long long)st.timed_out,
          (unsigned long long)st.dropped, (unsigned long long)sw.n);
}

TEST(stress_mpmc) { stress_run(0); }

TEST(stress_shutdown_race) { stress_run(1); }

int main(void)
{
  log_set_level(LOG_ERROR); /* shutdown lines would clutter the output */
  RUN(create_bad_opts);
  RUN(null_handles);
  RUN(bad_submit);
  RUN(priority_and_fifo);
  RUN(reserved_high_worker);
  RUN(full_rejects);
  RUN(cancel_queued);
  RUN(cancel_running);
  RUN(timeout);
  RUN(shutdown_counts);
  RUN(shutdown_graceful);
  RUN(destroy_busy);
  RUN(stress_mpmc);
  RUN(stress_shutdown_race);
  return check_done();
}
