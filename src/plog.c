/* plog.c - the prediction log writer (see plog.h, docs/serving.md).
 *
 * Why it looks like this:
 *
 * - Request threads only memcpy into a shard buffer under that shard's
 *   mutex; a thread sticks to one shard (thread-local index), so with N
 *   HTTP threads there is no contention but the flusher's brief swap.
 *   Buffers keep their capacity, so steady state allocates nothing.
 *
 * - One flush at a time (flush_mu, and the ticker submits a job only when
 *   none is in flight), so sequence numbers are handed out by one thread
 *   and the spool sees batches in order.
 *
 * - Sequence numbers are assigned when rows leave memory, not when they
 *   enter it: a row in memory is lost by a SIGKILL anyway, and numbering
 *   in the flusher needs no atomics on the request path.  The state file
 *   always holds a number above every number handed out (reserved ahead,
 *   fsync'd), so a restart never reuses one.
 *
 * - While the spool holds records, new batches are appended behind them
 *   instead of going to MariaDB, so the table receives rows in order; the
 *   replay drains the spool first on every flush.
 *
 * - (log_source, log_seq) is UNIQUE in the table and the insert ends with
 *   ON DUPLICATE KEY UPDATE log_seq = log_seq: storing a batch twice is
 *   harmless, which is what makes "insert, then commit the spool cursor"
 *   exactly-once across crashes and lost COMMIT answers.
 */
#include "mlopsd/plog.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/pbuf.h"
#include "mlopsd/queue.h"
#include "mlopsd/fsx.h"
#include "mlopsd/vec.h"
#include "mlopsd/spool.h"
#include "plog_int.h"

#define MOD "plog"
#define NSHARDS 8
#define NCOLS 10
#define SPOOL_CHUNK_ROWS 1000
#define SPOOL_CHUNK_BYTES ((size_t)4 << 20)
#define INSERT_BYTES ((size_t)4 << 20) /* per multi-row statement */
#define STORE_CHUNK 500 /* rows per transaction */
/* Rows per INSERT (array-bound execute).  MariaDB runs a statement
 * without a break on one core; at about 13 us per row a 500-row one held
 * a core for 2-8 ms while an HTTP thread that had been woken on it
 * waited (perf sched: 62% of the HTTP threads' and wrk's waits for a core
 * over 1 ms were behind mariadbd).  Between statements of 100 rows the
 * server thread blocks for the next one and the waiting thread runs;
 * the cost per row did not change measurably (docs/performance.md, "the
 * tail"). */
#define STORE_STMT_ROWS 100
#define PACE_SOFT 0.25 /* pacing starts at this fill of the caps */
#define PACE_QUANTUM_NS 250000 /* a thread sleeps once it owes this */
#define PACE_SLEEP_NS 500000 /* one sleep at most, per request of 1-3 rows */
#define PACE_BATCH_ROWS 4 /* ... and a sleep max more per this many rows */
#define PACE_MAX_DEBT_NS 20000000 /* debt carried over at most */
#define REPLAY_BUDGET_MS 500
#define PING_EVERY_MS 2000
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000
#define SEQ_FILE "plog-seq"
#define TRIM_EVERY_MS 10000
#define BUF_SLACK_CHUNKS 6 /* chunks beyond max_bytes: partly filled ones */

struct shard {
  pthread_mutex_t mu;
  struct pbuf_chunk *cur;   /* being filled */
  struct pbuf_chunk **full; /* filled, not yet taken by the flusher */
  size_t nfull;
  struct pbuf_chunk **tmp;  /* chunks taken for one append */
  char pad[64];
};

/* Where the flusher stands in its work list: chunk wk[ci], row ri at
 * byte offset off; bytes = row_bytes() of the rows passed since the
 * cursor was copied (for the pending counters). */
struct wcur {
  size_t ci;
  uint32_t ri;
  size_t off;
  size_t bytes;
};

#define NSCOLS 7
static const char *const scols[NSCOLS] = {
    "log_source", "log_seq", "created_at", "model_name", "model_version",
    "prediction", "confidence"};

static const char *const cols[NCOLS] = {
    "customer_id", "features",      "prediction", "confidence",
    "elapsed_ms",  "created_at",    "model_name", "model_version",
    "log_source",  "log_seq"};

struct plog {
  struct plog_opts o;
  char table[72];
  char *spool_dir;
  struct spool *sp;
  int64_t source; /* spool id, 63 bits */

  struct shard shards[NSHARDS];
  struct pbuf *pb;         /* the crash-safe buffer file (pbuf.h) */
  atomic_size_t pending; /* rows in shards + work not yet stored */
  atomic_size_t pending_bytes; /* their row_bytes() */
  atomic_size_t fresh;   /* rows appended since the last drain */
  pthread_mutex_t room_mu; /* waiting for room (full buffer) */
  pthread_cond_t room_cv;
  atomic_int waiters;
  atomic_int closing;

  /* flusher state (flush_mu) */
  pthread_mutex_t flush_mu;
  struct pbuf_chunk **wk; /* drained chunks, fill order; rows from
                             wdone on still to store */
  size_t wk_n, wk_cap;
  struct wcur wdone;
  uint64_t next_seq, seq_limit;
  atomic_uint_fast64_t next_seq_pub; /* next_seq for readers */
  struct pbuf_row *views;
  size_t views_cap;
  struct db_val *vals;
  size_t vals_cap;
  struct db_val *svals; /* the shadow rows of one store_db */
  size_t svals_cap;
  char (*ts)[24];
  size_t ts_cap;
  char *feat; /* the features of one store_db, compacted */
  size_t feat_cap;
  char *enc;
  size_t enc_cap;
  int64_t next_try_ms; /* database back-off */
  int backoff_ms;
  _Atomic int64_t last_contact_ms; /* read by the ticker */
  int64_t last_warn_ms;
  int schema_checked;
  int64_t pace_ns; /* o.pace_us in ns; <= 0: off */
  atomic_uint_fast64_t paced_us, full_waits;
  struct metrics_counter *c_paced, *c_full_waits;
  int no_ccc; /* server has no check_constraint_checks (not MariaDB) */
  uint64_t replay_last_ok;
  enum err_code replay_rc;
  struct err replay_err;
  size_t replay_rows;

  /* shared status */
  atomic_int db_ok;
  atomic_int spool_full;
  atomic_int spool_backlog;
  atomic_int inflight;
  pthread_mutex_t st_mu; /* reason strings */
  char db_reason[ERR_MSG_MAX];
  char schema_reason[ERR_MSG_MAX + 160];

  atomic_uint_fast64_t written, spooled, replayed, dups, unlogged, rejected;
  struct metrics_counter *c_written, *c_spooled, *c_replayed, *c_dups,
      *c_unlogged, *c_rejected, *c_lost;
  struct metrics_gauge *g_backlog, *g_spool_bytes, *g_spool_recs, *g_db_up;
  struct metrics_hist *h_flush;

  /* ticker */
  pthread_t th;
  int started, stopped;
  pthread_mutex_t tk_mu;
  pthread_cond_t tk_cv; /* kicks, stop, inflight reaching 0 */
  int stop, kicked;
  int64_t last_trim_ms;
};

static _Thread_local int tl_shard = -1;
static atomic_uint shard_rr;

static int64_t now_ms(void)
{
  return queue_now_ms();
}

void plog_opts_defaults(struct plog_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->spool_max_bytes = (uint64_t)256 << 20;
  o->flush_ms = 50;
  o->flush_rows = 2048;
  o->max_rows = 32768;
  o->max_bytes = (size_t)16 << 20;
  o->policy = PLOG_FULL_REJECT;
  o->acquire_ms = 1000;
  o->full_wait_ms = 1000;
}

/* ---- buffers ---------------------------------------------------------- */

/* ---- request side ----------------------------------------------------- */

static void count(atomic_uint_fast64_t *a, struct metrics_counter *c,
                  uint64_t n)
{
  atomic_fetch_add_explicit(a, n, memory_order_relaxed);
  if (c)
    metrics_counter_add(c, n);
}

/* Bytes a row takes in a buffer (upper bound, before cutting); the
 * flusher's view_bytes must give the same for the same row. */
static size_t row_bytes(const struct plog_row *r)
{
  return PLOG_CUSTOMER_ID_MAX * 4 + PLOG_PREDICTION_MAX * 4 + 128 +
         (r->shadow_version > 0 ? 128 : 0) + r->features_len;
}

static int over(struct plog *p, size_t n, size_t bytes)
{
  return atomic_load_explicit(&p->pending, memory_order_relaxed) + n >
             p->o.max_rows ||
         atomic_load_explicit(&p->pending_bytes, memory_order_relaxed) +
                 bytes >
             p->o.max_bytes;
}

/* Under policy reject, a full buffer makes the request wait (up to
 * full_wait_ms) for the flusher to make room: the server slows down to
 * what the database takes instead of failing at once.  Returns 0 when
 * there may be room now. */
static int wait_room(struct plog *p, size_t n, size_t bytes, size_t chunks)
{
  struct timespec ts;
  int rc = 0;
  if (p->o.full_wait_ms <= 0 || p->o.policy != PLOG_FULL_REJECT)
    return -1;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_nsec += (long)(p->o.full_wait_ms % 1000) * 1000000L;
  ts.tv_sec += p->o.full_wait_ms / 1000 + ts.tv_nsec / 1000000000L;
  ts.tv_nsec %= 1000000000L;
  count(&p->full_waits, p->c_full_waits, 1);
  pthread_mutex_lock(&p->room_mu);
  atomic_fetch_add(&p->waiters, 1);
  while ((over(p, n, bytes) || pbuf_free_count(p->pb) < chunks) &&
         !atomic_load(&p->closing) && rc == 0)
    rc = pthread_cond_timedwait(&p->room_cv, &p->room_mu, &ts);
  atomic_fetch_sub(&p->waiters, 1);
  pthread_mutex_unlock(&p->room_mu);
  return over(p, n, bytes) || pbuf_free_count(p->pb) < chunks ? -1 : 0;
}

/* Wake requests waiting for room (flusher, after rows were stored). */
static void room_made(struct plog *p)
{
  if (!atomic_load(&p->waiters))
    return;
  pthread_mutex_lock(&p->room_mu);
  pthread_cond_broadcast(&p->room_cv);
  pthread_mutex_unlock(&p->room_mu);
}

/* Smooth back-pressure (policy reject).  When MariaDB stores rows slower
 * than they come, something must slow the requests down.  Without this,
 * requests ran at full speed until the buffer was full and then every
 * one of them waited for the next transaction to commit: a p50 of 0.4 ms
 * and a p99 of tens of ms.  Instead, once the buffer is more than
 * PACE_SOFT full (by rows or by bytes), every row appended costs its
 * thread a delay growing linearly from 0 to pace_ns at the cap.  A thread
 * keeps the delay as a debt and sleeps when it owes PACE_QUANTUM_NS, at
 * most PACE_SLEEP_NS per request (more for batches, which are slow
 * anyway), so the delay is spread thinly over many requests; the server
 * settles at the rate the database stores, with a backlog a little above
 * the soft mark.  Below the soft mark nothing is counted.  Not under
 * policy serve, which prefers answers to log rows. */
static _Thread_local int64_t tl_debt_ns;

static void pace(struct plog *p, size_t n)
{
  if (p->pace_ns <= 0 || p->o.policy != PLOG_FULL_REJECT)
    return;
  double fr = (double)atomic_load_explicit(&p->pending,
                                           memory_order_relaxed) /
              (double)p->o.max_rows;
  double fb = (double)atomic_load_explicit(&p->pending_bytes,
                                           memory_order_relaxed) /
              (double)p->o.max_bytes;
  double x = ((fr > fb ? fr : fb) - PACE_SOFT) / (1 - PACE_SOFT);
  if (x <= 0) {
    tl_debt_ns = 0;
    return;
  }
  if (x > 1)
    x = 1;
  tl_debt_ns += (int64_t)(x * (double)p->pace_ns * (double)n);
  if (tl_debt_ns > PACE_MAX_DEBT_NS)
    tl_debt_ns = PACE_MAX_DEBT_NS;
  if (tl_debt_ns < PACE_QUANTUM_NS || atomic_load(&p->closing))
    return;
  /* a batch may sleep longer in one go: it is slow anyway, and a thread
   * appending 64 rows a request must be able to owe 64 times as much */
  int64_t cap = PACE_SLEEP_NS * (1 + (int64_t)n / PACE_BATCH_ROWS);
  int64_t d = tl_debt_ns < cap ? tl_debt_ns : cap;
  tl_debt_ns -= d;
  struct timespec ts = {(time_t)(d / 1000000000), (long)(d % 1000000000)};
  nanosleep(&ts, NULL);
  count(&p->paced_us, p->c_paced, (uint64_t)(d / 1000));
}

enum err_code plog_admit(struct plog *p, size_t n)
{
  if (p->o.policy != PLOG_FULL_REJECT || !over(p, n, 0))
    return ERR_OK;
  if (wait_room(p, n, 0, 0) == 0)
    return ERR_OK;
  count(&p->rejected, p->c_rejected, n);
  return ERR_FULL;
}

/* Chunks an append of rows[0..n) needs beyond the shard's current one;
 * -1 when a row is larger than a chunk.  The first row's view is left in
 * *w0 (its model text in mt0) for the caller's copy loop, so a single
 * prediction builds it once (issue 16, callgrind). */
static long chunks_needed(struct plog *p, struct shard *sh,
                          const struct plog_row *rows, size_t n,
                          struct pbuf_row *w0, char *mt0)
{
  size_t room = sh->cur ? pbuf_room(sh->cur) : 0, max = pbuf_max_row(p->pb);
  long k = 0;
  for (size_t i = 0; i < n; i++) {
    struct pbuf_row w;
    char mt[PLOG_MODEL_TEXT_MAX];
    if (i == 0)
      plog_row_view(&rows[0], w0, mt0);
    else
      plog_row_view(&rows[i], &w, mt);
    size_t sz = plog_view_size(i == 0 ? w0 : &w);
    if (sz > max)
      return -1;
    if (sz > room) {
      k++;
      room = max;
    }
    room -= sz;
  }
  return k;
}

enum err_code plog_append(struct plog *p, const struct plog_row *rows,
                          size_t n, int *logged)
{
  size_t bytes = 0;
  long need = 0;
  int too_big = 0, waited = 0;
  if (logged)
    *logged = 0;
  if (n == 0)
    return ERR_OK;
  for (size_t i = 0; i < n; i++) {
    bytes += row_bytes(&rows[i]);
    if (rows[i].features_len > UINT32_MAX)
      too_big = 1;
  }
  if (too_big || bytes > p->o.max_bytes)
    goto full;
  if (tl_shard < 0)
    tl_shard = (int)(atomic_fetch_add(&shard_rr, 1) % NSHARDS);
  struct shard *sh = &p->shards[tl_shard];
again:;
  size_t prev = atomic_fetch_add(&p->pending, n);
  size_t prevb = atomic_fetch_add(&p->pending_bytes, bytes);
  if (prev + n > p->o.max_rows || prevb + bytes > p->o.max_bytes)
    goto undo;
  /* Every row goes into the mapped buffer file before this returns, so
   * it survives the process (pbuf.h); the caller answers after that. */
  struct pbuf_row w0;
  char mt0[PLOG_MODEL_TEXT_MAX];
  pthread_mutex_lock(&sh->mu);
  need = chunks_needed(p, sh, rows, n, &w0, mt0);
  if (need < 0 || (need > 0 && pbuf_take(p->pb, sh->tmp, (size_t)need))) {
    pthread_mutex_unlock(&sh->mu);
    if (need < 0) {
      atomic_fetch_sub(&p->pending, n);
      atomic_fetch_sub(&p->pending_bytes, bytes);
      goto full;
    }
    goto undo;
  }
  for (size_t i = 0, t = 0; i < n; i++) {
    struct pbuf_row w;
    char mt[PLOG_MODEL_TEXT_MAX];
    if (i)
      plog_row_view(&rows[i], &w, mt);
    const struct pbuf_row *v = i ? &w : &w0;
    if (!sh->cur || pbuf_room(sh->cur) < plog_view_size(v)) {
      if (sh->cur)
        sh->full[sh->nfull++] = sh->cur;
      sh->cur = sh->tmp[t++];
    }
    pbuf_put(sh->cur, v);
  }
  pthread_mutex_unlock(&sh->mu);
  if (p->o.durability == PLOG_DUR_FSYNC && pbuf_sync_wait(p->pb) != ERR_OK)
    return ERR_IO; /* logged by pbuf; the rows stay and are stored */
  size_t fresh = atomic_fetch_add(&p->fresh, n);
  if (fresh < p->o.flush_rows && fresh + n >= p->o.flush_rows)
    plog_kick(p);
  if (logged)
    *logged = 1;
  pace(p, n);
  return ERR_OK;
undo:
  atomic_fetch_sub(&p->pending, n);
  atomic_fetch_sub(&p->pending_bytes, bytes);
  if (!waited && wait_room(p, n, bytes, need > 0 ? (size_t)need : 0) == 0) {
    waited = 1;
    goto again;
  }
full:
  if (p->o.policy == PLOG_FULL_SERVE) {
    count(&p->unlogged, p->c_unlogged, n);
    return ERR_OK;
  }
  count(&p->rejected, p->c_rejected, n);
  return ERR_FULL;
}

void plog_kick(struct plog *p)
{
  pthread_mutex_lock(&p->tk_mu);
  p->kicked = 1;
  pthread_cond_signal(&p->tk_cv);
  pthread_mutex_unlock(&p->tk_mu);
}

/* ---- sequence numbers ------------------------------------------------- */

static enum err_code seq_write(struct plog *p, uint64_t limit, struct err *e)
{
  char path[1024], text[64];
  int n = snprintf(path, sizeof(path), "%s/" SEQ_FILE, p->spool_dir);
  if (n < 0 || (size_t)n >= sizeof(path))
    return err_set(e, ERR_INVAL, "plog: spool dir path too long");
  n = snprintf(text, sizeof(text), "next=%" PRIu64 "\n", limit);
  if (fsx_write_atomic(path, text, (size_t)n, e) != ERR_OK) {
    err_prefix(e, "plog: sequence state");
    return e->code;
  }
  p->seq_limit = limit;
  return ERR_OK;
}

static enum err_code seq_open(struct plog *p, struct err *e)
{
  char path[1024];
  uint64_t next = 1;
  snprintf(path, sizeof(path), "%s/" SEQ_FILE, p->spool_dir);
  FILE *f = fopen(path, "r");
  if (f) {
    char line[64] = "";
    if (!fgets(line, sizeof(line), f) ||
        sscanf(line, "next=%" SCNu64, &next) != 1 || next == 0) {
      fclose(f);
      return err_set(e, ERR_PARSE, "plog: %s: expected 'next=N'", path);
    }
    fclose(f);
  } else if (errno != ENOENT) {
    return err_set(e, ERR_IO, "plog: open %s: %s", path, strerror(errno));
  }
  p->next_seq = next;
  atomic_store(&p->next_seq_pub, next);
  return seq_write(p, next + PLOG_SEQ_RESERVE, e);
}

static enum err_code seq_take(struct plog *p, size_t n, uint64_t *first,
                              struct err *e)
{
  if (p->next_seq + n > p->seq_limit) {
    enum err_code rc = seq_write(p, p->next_seq + n + PLOG_SEQ_RESERVE, e);
    if (rc != ERR_OK)
      return rc;
  }
  *first = p->next_seq;
  p->next_seq += n;
  atomic_store(&p->next_seq_pub, p->next_seq);
  return ERR_OK;
}

/* ---- storing ---------------------------------------------------------- */

static void set_db_state(struct plog *p, int ok, const struct err *e)
{
  int was = atomic_exchange(&p->db_ok, ok);
  atomic_store(&p->last_contact_ms, now_ms());
  if (ok) {
    p->backoff_ms = 0;
    p->next_try_ms = 0;
    if (!was)
      LOG_I(MOD, "database reachable: writing the prediction log");
    return;
  }
  p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
  if (p->backoff_ms > BACKOFF_MAX_MS)
    p->backoff_ms = BACKOFF_MAX_MS;
  p->next_try_ms = now_ms() + p->backoff_ms;
  pthread_mutex_lock(&p->st_mu);
  snprintf(p->db_reason, sizeof(p->db_reason), "%s", e ? e->msg : "");
  pthread_mutex_unlock(&p->st_mu);
  if (was || now_ms() - p->last_warn_ms > 10000) {
    p->last_warn_ms = now_ms();
    LOG_W(MOD, "database unavailable, prediction log goes to the spool: %s",
          e ? e->msg : "");
  }
}

static int db_allowed(struct plog *p)
{
  return atomic_load(&p->db_ok) || now_ms() >= p->next_try_ms;
}

/* Check once per connection-up period that the table has our columns. */
static void schema_check(struct plog *p, struct db_conn *c)
{
  char sql[256];
  struct err e = {0};
  if (p->schema_checked)
    return;
  snprintf(sql, sizeof(sql),
           "SELECT customer_id, features, prediction, confidence, "
           "elapsed_ms, created_at, model_name, model_version, log_source, "
           "log_seq FROM %s LIMIT 0",
           p->table);
  enum err_code rc = db_query(c, sql, NULL, 0, NULL, NULL, NULL, &e);
  if (rc == ERR_DB_CONN)
    return;
  p->schema_checked = 1;
  pthread_mutex_lock(&p->st_mu);
  if (rc != ERR_OK) {
    snprintf(p->schema_reason, sizeof(p->schema_reason),
             "table %s is not usable for the prediction log (run `mlopsd db "
             "init`): %s",
             p->table, e.msg);
    LOG_E(MOD, "%s", p->schema_reason);
  } else {
    p->schema_reason[0] = 0;
  }
  pthread_mutex_unlock(&p->st_mu);
}

/* Insert views[0..n) in one transaction.  *inserted gets new rows. */
static enum err_code store_db(struct plog *p, const struct pbuf_row *v, size_t n,
                              int64_t *inserted, struct err *e)
{
  struct db_conn *c = NULL;
  size_t maxlen = 1, ns = 0;
  enum err_code rc;
  *inserted = 0;
  size_t feat_total = 0, feat_at = 0;
  for (size_t i = 0; i < n; i++)
    feat_total += v[i].feat_len;
  if (VEC_RESERVE(p->vals, p->vals_cap, n * NCOLS) ||
      VEC_RESERVE(p->svals, p->svals_cap, n * NSCOLS) ||
      VEC_RESERVE(p->ts, p->ts_cap, n) ||
      VEC_RESERVE(p->feat, p->feat_cap, feat_total + PLOG_COMPACT_SLACK + 1))
    return err_set(e, ERR_NOMEM, "plog: out of memory");
  for (size_t i = 0; i < n; i++) {
    struct db_val *r = p->vals + i * NCOLS;
    size_t name_len, spl;
    int sver;
    double sconf;
    const char *spred;
    plog_fmt_ts(p->ts[i], v[i].created_us);
    if (plog_model_split(v[i].model, v[i].model_len, &name_len, &sver,
                         &sconf, &spred, &spl)) {
      struct db_val *q = p->svals + ns++ * NSCOLS;
      q[0] = DB_V_INT(p->source);
      q[1] = DB_V_INT((int64_t)v[i].seq);
      q[2] = DB_V_STR(p->ts[i]);
      q[3] = DB_V_STRN(v[i].model, name_len);
      q[4] = DB_V_INT(sver);
      q[5] = DB_V_STRN(spred, spl);
      q[6] = isfinite(sconf) ? DB_V_DBL(sconf) : DB_V_NULL;
    }
    r[0] = DB_V_STRN(v[i].cid, v[i].cid_len);
    /* the item without its blanks: MariaDB's CPU per row 0.8-1.0 us
     * less for 6% fewer bytes (plog_int.h) */
    size_t fl = plog_json_compact(p->feat + feat_at, v[i].feat,
                                  v[i].feat_len);
    r[1] = DB_V_STRN(p->feat + feat_at, fl);
    feat_at += fl;
    r[2] = DB_V_STRN(v[i].pred, v[i].pred_len);
    r[3] = DB_V_DBL(v[i].conf);
    r[4] = DB_V_INT(v[i].elapsed_ms);
    r[5] = DB_V_STR(p->ts[i]);
    r[6] = DB_V_STRN(v[i].model, name_len);
    r[7] = DB_V_INT(v[i].model_version);
    r[8] = DB_V_INT(p->source);
    r[9] = DB_V_INT((int64_t)v[i].seq);
    size_t len = v[i].feat_len + v[i].cid_len + 256;
    if (len > maxlen)
      maxlen = len;
  }
  size_t batch = INSERT_BYTES / maxlen;
  if (batch < 1)
    batch = 1;
  if (batch > STORE_STMT_ROWS)
    batch = STORE_STMT_ROWS;
  rc = db_acquire(p->o.pool, p->o.acquire_ms, &c, e);
  if (rc != ERR_OK)
    return rc;
  schema_check(p, c);
  /* The JSON type's CHECK (json_valid(features)) costs the server about
   * a fifth of its time per row; every features value was checked to be
   * one JSON value before it got here (plog.h), so the log's own session
   * skips it.  A server without the variable gets time_zone only. */
  if (!p->no_ccc) {
    rc = db_exec(c, "SET time_zone = '+00:00', check_constraint_checks = 0",
                 NULL, e);
    if (rc == ERR_DB && db_last_errno(c) == 1193 /* unknown variable */) {
      LOG_I(MOD, "server has no check_constraint_checks: JSON checked by "
                 "the server");
      p->no_ccc = 1;
    }
  }
  if (p->no_ccc)
    rc = db_exec(c, "SET time_zone = '+00:00'", NULL, e);
  /* One statement (rows <= batch and no shadow rows) is atomic on its
   * own under autocommit; a transaction around it would cost two more
   * round trips and statements (docs/performance.md "Issue 16, fourth
   * round: MariaDB's row").  More statements keep one transaction. */
  int txn = ns > 0 || n > batch;
  if (rc == ERR_OK && txn)
    rc = db_begin(c, e);
  if (rc == ERR_OK)
    rc = db_bulk_insert(c, p->table, cols, NCOLS, p->vals, (int64_t)n,
                        (int)batch, " ON DUPLICATE KEY UPDATE log_seq = log_seq",
                        inserted, e);
  /* the shadow's rows in the same transaction: stored with their main
   * rows or not at all, exactly once through the same key */
  if (rc == ERR_OK && ns > 0)
    rc = db_bulk_insert(c, PLOG_SHADOW_TABLE, scols, NSCOLS, p->svals,
                        (int64_t)ns, (int)batch,
                        " ON DUPLICATE KEY UPDATE log_seq = log_seq", NULL,
                        e);
  if (rc == ERR_OK && txn)
    rc = db_commit(c, e);
  if (rc != ERR_OK) {
    struct err e2;
    if (txn)
      (void)db_rollback(c, &e2);
    *inserted = 0;
  }
  db_release(p->o.pool, c);
  return rc;
}

/* ---- the flush -------------------------------------------------------- */

static int replay_cb(void *arg, uint64_t seq, const void *data, size_t len)
{
  struct plog *p = arg;
  int64_t ins = 0;
  long n = plog_rec_decode(&p->views, &p->views_cap, data, len);
  if (n < 0) {
    /* The spool's CRC passed, so this is not disk damage but a record
     * this version cannot read: skipping is the only way forward. */
    LOG_E(MOD, "spool record %" PRIu64 " (%zu bytes) is not a prediction "
               "log batch; skipped",
          seq, len);
    if (p->c_lost)
      metrics_counter_add(p->c_lost, 1);
    p->replay_last_ok = seq;
    return 0;
  }
  p->replay_rc = store_db(p, p->views, (size_t)n, &ins, &p->replay_err);
  if (p->replay_rc != ERR_OK)
    return 1;
  p->replay_last_ok = seq;
  p->replay_rows += (size_t)n;
  count(&p->written, p->c_written, (uint64_t)ins);
  count(&p->replayed, p->c_replayed, (uint64_t)n);
  if ((uint64_t)ins < (uint64_t)n)
    count(&p->dups, p->c_dups, (uint64_t)n - (uint64_t)ins);
  return 0;
}

/* Replay the spool while the database takes it. */
static void replay(struct plog *p, int64_t budget_ms)
{
  int64_t t0 = now_ms();
  size_t total = 0;
  for (;;) {
    size_t got = 0;
    struct err e = {0};
    p->replay_rc = ERR_OK;
    p->replay_last_ok = 0;
    p->replay_rows = 0;
    enum err_code rc = spool_next_batch(p->sp, 8, replay_cb, p, &got, &e);
    if (p->replay_last_ok) {
      struct err ce = {0};
      if (spool_commit(p->sp, p->replay_last_ok, &ce) != ERR_OK)
        LOG_E(MOD, "spool cursor not saved (rows may be stored twice, the "
                   "table keeps one): %s",
              ce.msg);
    }
    total += p->replay_rows;
    if (p->replay_rc != ERR_OK) {
      set_db_state(p, 0, &p->replay_err);
      break;
    }
    if (p->replay_rows || got)
      set_db_state(p, 1, NULL);
    if (rc != ERR_OK) {
      LOG_E(MOD, "spool unreadable, replay stopped: %s", e.msg);
      break;
    }
    if (got == 0 || now_ms() - t0 > budget_ms)
      break;
  }
  if (total) {
    struct spool_stats st;
    spool_stats(p->sp, &st);
    LOG_I(MOD, "replayed rows=%zu from the spool ms=%lld; records left=%llu",
          total, (long long)(now_ms() - t0), (unsigned long long)st.pending);
  }
}

static int work_empty(const struct plog *p) { return p->wdone.ci >= p->wk_n; }

static size_t view_bytes(const struct pbuf_row *v)
{
  int shadow = memchr(v->model, PLOG_SHADOW_SEP, v->model_len) != NULL;
  return PLOG_CUSTOMER_ID_MAX * 4 + PLOG_PREDICTION_MAX * 4 + 128 +
         (shadow ? 128 : 0) + v->feat_len;
}

/* Number the rows of wk[from..wk_n) that have no seq yet (in the
 * mapping, before any write attempt: a row stored and then replayed
 * after a crash keeps its number, and the table's key drops it). */
static enum err_code number(struct plog *p, size_t from, struct err *e)
{
  size_t fresh = 0;
  for (size_t k = from; k < p->wk_n; k++) {
    size_t off = 0;
    struct pbuf_row r;
    while (pbuf_next(p->wk[k], &off, &r))
      fresh += r.seq == 0;
  }
  if (!fresh)
    return ERR_OK;
  uint64_t first;
  enum err_code rc = seq_take(p, fresh, &first, e);
  if (rc != ERR_OK)
    return rc;
  for (size_t k = from; k < p->wk_n; k++) {
    size_t off = 0, at = 0;
    struct pbuf_row r;
    while (pbuf_next(p->wk[k], &off, &r)) {
      if (r.seq == 0)
        pbuf_set_seq(p->wk[k], at, first++);
      at = off;
    }
  }
  /* durability fsync: the numbers must be on disk before an insert
   * that a power loss could otherwise make us repeat under new ones */
  if (p->o.durability == PLOG_DUR_FSYNC)
    return pbuf_sync(p->pb, e);
  return ERR_OK;
}

/* Take every shard's filled chunks (and the one being filled) into the
 * work list, oldest first, and number their rows.  Work is empty. */
static enum err_code drain(struct plog *p, struct err *e)
{
  atomic_store(&p->fresh, 0);
  p->wk_n = 0;
  memset(&p->wdone, 0, sizeof(p->wdone));
  for (int i = 0; i < NSHARDS; i++) {
    struct shard *sh = &p->shards[i];
    pthread_mutex_lock(&sh->mu);
    for (size_t k = 0; k < sh->nfull; k++)
      p->wk[p->wk_n++] = sh->full[k];
    sh->nfull = 0;
    if (sh->cur && pbuf_rows(sh->cur) > 0) {
      p->wk[p->wk_n++] = sh->cur;
      sh->cur = NULL;
    }
    pthread_mutex_unlock(&sh->mu);
  }
  return number(p, 0, e);
}

/* Up to max rows (and, past the first, max_enc bytes as a spool record)
 * from cursor c on into p->views (c moves past them). */
static size_t work_views(struct plog *p, struct wcur *c, size_t max,
                         size_t max_enc)
{
  size_t n = 0, enc = 0;
  if (VEC_RESERVE(p->views, p->views_cap, max))
    return 0;
  while (n < max && c->ci < p->wk_n) {
    struct pbuf_chunk *ch = p->wk[c->ci];
    if (c->ri == 0 && c->off == 0) {
      /* a recovered chunk: skip the rows the previous run stored */
      struct pbuf_row skip;
      for (uint32_t d = pbuf_done(ch); c->ri < d; c->ri++)
        if (!pbuf_next(ch, &c->off, &skip))
          break;
    }
    size_t off0 = c->off;
    if (c->ri >= pbuf_rows(ch) || !pbuf_next(ch, &c->off, &p->views[n])) {
      c->ci++;
      c->ri = 0;
      c->off = 0;
      continue;
    }
    const struct pbuf_row *v = &p->views[n];
    size_t b = PLOG_REC_ROW_HDR + v->cid_len + v->pred_len + v->model_len +
               v->feat_len;
    if (n > 0 && enc + b > max_enc) {
      c->off = off0;
      break;
    }
    enc += b;
    c->ri++;
    c->bytes += view_bytes(&p->views[n]);
    n++;
  }
  return n;
}

/* n rows up to cursor c are stored (or spooled): release the chunks
 * behind it, record progress in the current one, free room. */
static void work_done(struct plog *p, size_t n, const struct wcur *c)
{
  for (size_t k = p->wdone.ci; k < c->ci && k < p->wk_n; k++)
    pbuf_release(p->pb, p->wk[k]);
  p->wdone = *c;
  p->wdone.bytes = 0;
  while (p->wdone.ci < p->wk_n &&
         p->wdone.ri >= pbuf_rows(p->wk[p->wdone.ci])) {
    pbuf_release(p->pb, p->wk[p->wdone.ci]);
    p->wdone.ci++;
    p->wdone.ri = 0;
    p->wdone.off = 0;
  }
  if (p->wdone.ci < p->wk_n && p->wdone.ri > 0)
    pbuf_set_done(p->wk[p->wdone.ci], p->wdone.ri);
  if (p->wdone.ci >= p->wk_n) {
    p->wk_n = 0;
    memset(&p->wdone, 0, sizeof(p->wdone));
  }
  atomic_fetch_sub(&p->pending_bytes, c->bytes);
  atomic_fetch_sub(&p->pending, n);
  room_made(p);
}

/* Append the rest of work to the spool and sync. */
static void to_spool(struct plog *p)
{
  struct err e = {0};
  size_t done = 0;
  enum err_code rc = ERR_OK;
  struct wcur c = p->wdone, ok = p->wdone;
  c.bytes = ok.bytes = 0;
  while (c.ci < p->wk_n) {
    /* a record of at most SPOOL_CHUNK_ROWS rows and about
     * SPOOL_CHUNK_BYTES (a chunk of the buffer is smaller than that) */
    size_t n = work_views(p, &c, SPOOL_CHUNK_ROWS, SPOOL_CHUNK_BYTES);
    if (n == 0)
      break;
    size_t len = plog_rec_encode(&p->enc, &p->enc_cap, p->views, n);
    if (!len) {
      rc = err_set(&e, ERR_NOMEM, "plog: out of memory encoding a batch");
      break;
    }
    rc = spool_append(p->sp, p->enc, len, NULL, &e);
    if (rc != ERR_OK)
      break;
    done += n;
    ok = c;
  }
  if (done) {
    struct err se = {0};
    if (spool_sync(p->sp, &se) != ERR_OK) {
      LOG_E(MOD, "spool sync failed, rows kept in the buffer: %s", se.msg);
      return; /* the appended records were dropped by the spool */
    }
    work_done(p, done, &ok);
    count(&p->spooled, p->c_spooled, done);
    atomic_store(&p->spool_backlog, 1);
  }
  if (rc == ERR_FULL) {
    if (!atomic_exchange(&p->spool_full, 1))
      LOG_E(MOD, "spool full (%" PRIu64 " bytes): prediction log rows wait "
                 "in the buffer; policy %s",
            p->o.spool_max_bytes,
            p->o.policy == PLOG_FULL_REJECT ? "reject (503)" : "serve");
  } else if (rc != ERR_OK) {
    LOG_E(MOD, "spool append failed, rows kept in the buffer: %s", e.msg);
  } else {
    atomic_store(&p->spool_full, 0);
  }
}

static void flush_once(struct plog *p, int final)
{
  struct err e = {0};
  struct spool_stats st;
  int64_t t0 = now_ms();
  if (work_empty(p)) {
    if (drain(p, &e) != ERR_OK)
      LOG_E(MOD, "%s", e.msg);
  }
  spool_stats(p->sp, &st);
  int backlog = st.pending > 0 && !st.corrupt;
  if (backlog && !final && db_allowed(p)) {
    replay(p, REPLAY_BUDGET_MS);
    spool_stats(p->sp, &st);
    backlog = st.pending > 0 && !st.corrupt;
  }
  atomic_store(&p->spool_backlog, st.pending > 0);
  if (!work_empty(p)) {
    /* In pieces: each one frees room for waiting requests as soon as it
     * is stored, instead of after the whole backlog. */
    while (!backlog && !work_empty(p) && db_allowed(p)) {
      int64_t ins = 0;
      struct wcur c = p->wdone;
      c.bytes = 0;
      size_t n = work_views(p, &c, STORE_CHUNK, INSERT_BYTES);
      if (n == 0) {
        if (c.ci == p->wdone.ci)
          break; /* out of memory for the views */
        work_done(p, 0, &c); /* skipped chunks without rows */
        continue;
      }
      enum err_code rc = store_db(p, p->views, n, &ins, &e);
      if (rc != ERR_OK) {
        set_db_state(p, 0, &e);
        break;
      }
      set_db_state(p, 1, NULL);
      work_done(p, n, &c);
      count(&p->written, p->c_written, (uint64_t)ins);
      if ((uint64_t)ins < n)
        count(&p->dups, p->c_dups, n - (uint64_t)ins);
    }
    if (!work_empty(p))
      to_spool(p);
  } else if (!final && !backlog &&
             now_ms() - atomic_load(&p->last_contact_ms) >= PING_EVERY_MS &&
             db_allowed(p)) {
    struct db_conn *c = NULL;
    int64_t one = 0;
    enum err_code rc = db_acquire(p->o.pool, p->o.acquire_ms, &c, &e);
    if (rc == ERR_OK) {
      schema_check(p, c);
      rc = db_query_i64(c, "SELECT 1", NULL, 0, &one, &e);
      db_release(p->o.pool, c);
    }
    set_db_state(p, rc == ERR_OK, &e);
  }
  if (!atomic_load(&p->db_ok))
    p->schema_checked = 0;
  if (p->h_flush)
    metrics_hist_observe(p->h_flush, (double)(now_ms() - t0) / 1e3);
}

static enum err_code flush_job(struct queue_job_ctx *ctx, void *arg,
                               struct err *e)
{
  struct plog *p = arg;
  (void)ctx;
  (void)e;
  pthread_mutex_lock(&p->flush_mu);
  flush_once(p, 0);
  pthread_mutex_unlock(&p->flush_mu);
  return ERR_OK;
}

static void flush_done(uint64_t id, enum err_code code, const struct err *e,
                       void *arg)
{
  struct plog *p = arg;
  (void)id;
  (void)code;
  (void)e;
  pthread_mutex_lock(&p->tk_mu);
  atomic_store(&p->inflight, 0);
  pthread_cond_broadcast(&p->tk_cv);
  pthread_mutex_unlock(&p->tk_mu);
}

static void *tick_main(void *arg)
{
  struct plog *p = arg;
  pthread_mutex_lock(&p->tk_mu);
  while (!p->stop) {
    if (!p->kicked) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += (long)p->o.flush_ms * 1000000L;
      ts.tv_sec += ts.tv_nsec / 1000000000L;
      ts.tv_nsec %= 1000000000L;
      pthread_cond_timedwait(&p->tk_cv, &p->tk_mu, &ts);
    }
    if (p->stop)
      break;
    p->kicked = 0;
    /* Give freed heap pages back to the kernel now and then (any arena,
     * also free pages inside the heap): under a steady load the flusher
     * and the HTTP threads free buffers that malloc otherwise keeps. */
    if (now_ms() - p->last_trim_ms >= TRIM_EVERY_MS) {
      p->last_trim_ms = now_ms();
      pthread_mutex_unlock(&p->tk_mu);
      malloc_trim(0);
      pbuf_trim(p->pb);
      pthread_mutex_lock(&p->tk_mu);
      if (p->stop)
        break;
    }
    if (atomic_load(&p->inflight))
      continue;
    int need = atomic_load(&p->pending) > 0 ||
               atomic_load(&p->spool_backlog) ||
               now_ms() - atomic_load(&p->last_contact_ms) >= PING_EVERY_MS;
    if (!need)
      continue;
    atomic_store(&p->inflight, 1);
    pthread_mutex_unlock(&p->tk_mu);
    if (p->o.queue) {
      if (queue_submit(p->o.queue, QUEUE_PRIO_HIGH, flush_job, flush_done, p,
                       0, NULL) != ERR_OK)
        atomic_store(&p->inflight, 0);
    } else {
      struct err e = {0};
      (void)flush_job(NULL, p, &e);
      atomic_store(&p->inflight, 0);
    }
    pthread_mutex_lock(&p->tk_mu);
  }
  pthread_mutex_unlock(&p->tk_mu);
  return NULL;
}

/* ---- metrics ---------------------------------------------------------- */

static double g_backlog(void *arg)
{
  struct plog *p = arg;
  return (double)atomic_load(&p->pending);
}

static double g_spool_bytes(void *arg)
{
  struct plog *p = arg;
  struct spool_stats st;
  spool_stats(p->sp, &st);
  return (double)st.bytes;
}

static double g_spool_recs(void *arg)
{
  struct plog *p = arg;
  struct spool_stats st;
  spool_stats(p->sp, &st);
  return (double)st.pending;
}

static double g_db_up(void *arg)
{
  struct plog *p = arg;
  return atomic_load(&p->db_ok);
}

static void make_metrics(struct plog *p)
{
  struct metrics *m = p->o.metrics;
  struct err e = {0};
  if (!m)
    return;
  if (metrics_counter_new(m, "mlopsd_plog_rows_written_total",
                          "Prediction log rows inserted into MariaDB.", NULL,
                          0, &p->c_written, &e) ||
      metrics_counter_new(m, "mlopsd_plog_rows_spooled_total",
                          "Prediction log rows written to the spool.", NULL,
                          0, &p->c_spooled, &e) ||
      metrics_counter_new(m, "mlopsd_plog_rows_replayed_total",
                          "Prediction log rows replayed from the spool.",
                          NULL, 0, &p->c_replayed, &e) ||
      metrics_counter_new(m, "mlopsd_plog_rows_duplicate_total",
                          "Replayed rows the table already had.", NULL, 0,
                          &p->c_dups, &e) ||
      metrics_counter_new(m, "mlopsd_plog_rows_unlogged_total",
                          "Predictions served without a log row (log full, "
                          "policy serve).",
                          NULL, 0, &p->c_unlogged, &e) ||
      metrics_counter_new(m, "mlopsd_plog_rows_rejected_total",
                          "Predictions refused because the log was full "
                          "(policy reject).",
                          NULL, 0, &p->c_rejected, &e) ||
      metrics_counter_new(m, "mlopsd_plog_full_waits_total",
                          "Requests that waited for room in a full "
                          "prediction log buffer (policy reject).",
                          NULL, 0, &p->c_full_waits, &e) ||
      metrics_counter_new(m, "mlopsd_plog_pace_seconds_total",
                          "Time request threads were slowed down to let "
                          "the prediction log catch up.",
                          NULL, METRICS_MICRO, &p->c_paced, &e) ||
      metrics_counter_new(m, "mlopsd_plog_records_skipped_total",
                          "Spool records that could not be decoded.", NULL,
                          0, &p->c_lost, &e) ||
      metrics_gauge_fn_new(m, "mlopsd_plog_backlog_rows",
                           "Prediction log rows in memory, not yet stored.",
                           NULL, g_backlog, p, &p->g_backlog, &e) ||
      metrics_gauge_fn_new(m, "mlopsd_plog_spool_bytes",
                           "Bytes in the prediction log spool.", NULL,
                           g_spool_bytes, p, &p->g_spool_bytes, &e) ||
      metrics_gauge_fn_new(m, "mlopsd_plog_spool_records",
                           "Spool records waiting for MariaDB.", NULL,
                           g_spool_recs, p, &p->g_spool_recs, &e) ||
      metrics_gauge_fn_new(m, "mlopsd_plog_db_up",
                           "1 when the last contact with MariaDB worked.",
                           NULL, g_db_up, p, &p->g_db_up, &e) ||
      metrics_hist_new(m, "mlopsd_plog_flush_duration_seconds",
                       "Duration of one prediction log flush.", NULL,
                       metrics_s_buckets, METRICS_S_NBUCKETS,
                       0, &p->h_flush, &e))
    LOG_W(MOD, "metrics not registered: %s", e.msg);
}

/* ---- life cycle ------------------------------------------------------- */

/* Open the buffer file and take over what a previous process left in it
 * (rows it answered but had not stored): they become the first work,
 * numbered if they were not yet. */
static enum err_code open_buffer(struct plog *p, struct err *e)
{
  char path[1024];
  const char *dir = p->o.buffer_dir && *p->o.buffer_dir ? p->o.buffer_dir
                                                         : p->spool_dir;
  size_t item = p->o.max_item_bytes ? p->o.max_item_bytes : (size_t)1 << 20;
  size_t cb = (size_t)1 << 20;
  /* a chunk holds at least one item with its other columns */
  while (cb < item + PBUF_CHUNK_HDR + PBUF_ROW_HDR + 512)
    cb *= 2;
  size_t nch = (p->o.max_bytes + cb - 1) / cb + BUF_SLACK_CHUNKS;
  int n = snprintf(path, sizeof(path), "%s/" PLOG_BUFFER_FILE, dir);
  if (n < 0 || (size_t)n >= sizeof(path))
    return err_set(e, ERR_INVAL, "plog: buffer dir path too long");
  if (dir != p->spool_dir && mkdir(dir, 0750) != 0 && errno != EEXIST)
    return err_set(e, ERR_IO, "plog: mkdir %s: %s", dir, strerror(errno));
  enum err_code rc = pbuf_open(&p->pb, path, cb, nch, e);
  if (rc != ERR_OK)
    return rc;
  struct pbuf_chunk **rec;
  size_t nrec;
  uint64_t rows;
  pbuf_recovered(p->pb, &rec, &nrec, &rows);
  /* any append or drain holds at most all the chunks (the file may have
   * more than asked for, pbuf_open keeps them) */
  size_t cap = pbuf_nchunks(p->pb);
  p->wk_cap = cap;
  p->wk = calloc(cap, sizeof(*p->wk));
  for (int i = 0; i < NSHARDS; i++) {
    p->shards[i].full = calloc(cap, sizeof(*p->shards[i].full));
    p->shards[i].tmp = calloc(cap, sizeof(*p->shards[i].tmp));
    if (!p->shards[i].full || !p->shards[i].tmp)
      return err_set(e, ERR_NOMEM, "plog: out of memory");
  }
  if (!p->wk)
    return err_set(e, ERR_NOMEM, "plog: out of memory");
  if (!nrec)
    return ERR_OK;
  memcpy(p->wk, rec, nrec * sizeof(*rec));
  p->wk_n = nrec;
  memset(&p->wdone, 0, sizeof(p->wdone));
  rc = number(p, 0, e);
  if (rc != ERR_OK)
    return rc;
  /* count what is left as pending, as if just appended */
  struct wcur c = p->wdone;
  size_t got = 0, k;
  while ((k = work_views(p, &c, 4096, SIZE_MAX)) > 0)
    got += k;
  atomic_store(&p->pending, got);
  atomic_store(&p->pending_bytes, c.bytes);
  LOG_I(MOD, "log buffer %s holds %zu rows answered by a previous run and "
             "not yet stored (in %zu chunks): stored first",
        path, got, nrec);
  return ERR_OK;
}

enum err_code plog_create(struct plog **out, const struct plog_opts *o,
                          struct err *e)
{
  struct plog *p;
  enum err_code rc;
  *out = NULL;
  if (!o || !o->pool || !o->spool_dir || !*o->spool_dir)
    return err_set(e, ERR_INVAL, "plog: pool and spool_dir are required");
  const char *table = o->table ? o->table : PLOG_TABLE_DEFAULT;
  if (!db_ident_ok(table))
    return err_set(e, ERR_INVAL, "plog: bad table name '%s'", table);
  p = calloc(1, sizeof(*p));
  if (!p)
    return err_set(e, ERR_NOMEM, "plog: out of memory");
  p->o = *o;
  if (!p->o.flush_ms)
    p->o.flush_ms = 50;
  if (!p->o.flush_rows)
    p->o.flush_rows = 2048;
  if (!p->o.max_rows)
    p->o.max_rows = 32768;
  if (!p->o.max_bytes)
    p->o.max_bytes = (size_t)16 << 20;
  if (!p->o.spool_max_bytes)
    p->o.spool_max_bytes = (uint64_t)256 << 20;
  if (!p->o.acquire_ms)
    p->o.acquire_ms = 1000;
  if (!p->o.pace_us)
    p->o.pace_us = 2000;
  p->pace_ns = (int64_t)p->o.pace_us * 1000;
  if (p->o.full_wait_ms == 0)
    p->o.full_wait_ms = 1000;
  else if (p->o.full_wait_ms < 0)
    p->o.full_wait_ms = 0;
  pthread_mutex_init(&p->room_mu, NULL);
  pthread_condattr_t ra;
  pthread_condattr_init(&ra);
  pthread_condattr_setclock(&ra, CLOCK_MONOTONIC);
  pthread_cond_init(&p->room_cv, &ra);
  pthread_condattr_destroy(&ra);
  snprintf(p->table, sizeof(p->table), "%s", table);
  p->spool_dir = strdup(o->spool_dir);
  if (!p->spool_dir) {
    free(p);
    return err_set(e, ERR_NOMEM, "plog: out of memory");
  }
  p->o.spool_dir = p->spool_dir;
  p->o.table = p->table;
  for (int i = 0; i < NSHARDS; i++)
    pthread_mutex_init(&p->shards[i].mu, NULL);
  pthread_mutex_init(&p->flush_mu, NULL);
  pthread_mutex_init(&p->st_mu, NULL);
  pthread_mutex_init(&p->tk_mu, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->tk_cv, &ca);
  pthread_condattr_destroy(&ca);
  snprintf(p->db_reason, sizeof(p->db_reason),
           "database not contacted yet");

  struct spool_opts so;
  spool_opts_defaults(&so);
  so.dir = p->spool_dir;
  so.max_bytes = p->o.spool_max_bytes;
  rc = spool_create(&p->sp, &so, e);
  if (rc == ERR_OK)
    rc = seq_open(p, e);
  if (rc == ERR_OK)
    rc = open_buffer(p, e);
  if (rc != ERR_OK) {
    plog_destroy(p);
    return rc;
  }
  p->source = (int64_t)(spool_id(p->sp) & INT64_MAX);
  struct spool_stats st;
  spool_stats(p->sp, &st);
  atomic_store(&p->spool_backlog, st.pending > 0);
  if (st.pending)
    LOG_I(MOD, "spool holds %" PRIu64 " records (%" PRIu64 " bytes) from a "
               "previous run: replayed first",
          st.pending, st.bytes);
  make_metrics(p);
  p->stopped = 0;
  *out = p;
  return ERR_OK;
}

enum err_code plog_start(struct plog *p, struct err *e)
{
  if (p->started)
    return err_set(e, ERR_STATE, "plog already started");
  p->stop = 0;
  p->kicked = 1; /* first tick at once: replay, ping */
  atomic_store(&p->last_contact_ms, now_ms() - PING_EVERY_MS);
  if (pthread_create(&p->th, NULL, tick_main, p) != 0)
    return err_set(e, ERR_INTERNAL, "plog: cannot start the ticker thread");
  pthread_setname_np(p->th, "plog-tick");
  p->started = 1;
  return ERR_OK;
}

void plog_stop(struct plog *p, int deadline_ms, size_t *lost)
{
  if (lost)
    *lost = 0;
  if (!p || p->stopped)
    return;
  p->stopped = 1;
  atomic_store(&p->closing, 1);
  pthread_mutex_lock(&p->room_mu);
  pthread_cond_broadcast(&p->room_cv);
  pthread_mutex_unlock(&p->room_mu);
  if (p->started) {
    pthread_mutex_lock(&p->tk_mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->tk_cv);
    pthread_mutex_unlock(&p->tk_mu);
    pthread_join(p->th, NULL);
    p->started = 0;
  }
  pthread_mutex_lock(&p->tk_mu);
  while (atomic_load(&p->inflight))
    pthread_cond_wait(&p->tk_cv, &p->tk_mu);
  pthread_mutex_unlock(&p->tk_mu);
  int64_t end = now_ms() + (deadline_ms > 0 ? deadline_ms : 0);
  pthread_mutex_lock(&p->flush_mu);
  for (;;) {
    flush_once(p, 1);
    if (atomic_load(&p->pending) == 0 || now_ms() >= end)
      break;
    /* the database refused and the spool too: wait a little */
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
    p->next_try_ms = 0;
  }
  size_t left = atomic_load(&p->pending);
  pthread_mutex_unlock(&p->flush_mu);
  if (left) {
    LOG_E(MOD, "%zu prediction log rows could not be stored (database and "
               "spool unavailable): they stay in the buffer file and are "
               "stored at the next start",
          left);
  } else {
    LOG_I(MOD, "prediction log flushed: written=%" PRIu64 " spooled=%" PRIu64,
          (uint64_t)atomic_load(&p->written),
          (uint64_t)atomic_load(&p->spooled));
  }
  if (lost)
    *lost = left;
}

void plog_destroy(struct plog *p)
{
  if (!p)
    return;
  if (p->sp && p->pb)
    plog_stop(p, 5000, NULL);
  if (p->g_backlog)
    metrics_gauge_fn_detach(p->g_backlog);
  if (p->g_spool_bytes)
    metrics_gauge_fn_detach(p->g_spool_bytes);
  if (p->g_spool_recs)
    metrics_gauge_fn_detach(p->g_spool_recs);
  if (p->g_db_up)
    metrics_gauge_fn_detach(p->g_db_up);
  spool_destroy(p->sp);
  for (int i = 0; i < NSHARDS; i++) {
    free(p->shards[i].full);
    free(p->shards[i].tmp);
    pthread_mutex_destroy(&p->shards[i].mu);
  }
  free(p->wk);
  pbuf_close(p->pb);
  free(p->views);
  free(p->vals);
  free(p->svals);
  free(p->ts);
  free(p->feat);
  free(p->enc);
  pthread_mutex_destroy(&p->flush_mu);
  pthread_mutex_destroy(&p->room_mu);
  pthread_cond_destroy(&p->room_cv);
  pthread_mutex_destroy(&p->st_mu);
  pthread_mutex_destroy(&p->tk_mu);
  pthread_cond_destroy(&p->tk_cv);
  free(p->spool_dir);
  free(p);
}

int plog_ready(struct plog *p, int with_db, char *buf, size_t cap)
{
  int ok = 1;
  pthread_mutex_lock(&p->st_mu);
  if (with_db && !atomic_load(&p->db_ok)) {
    snprintf(buf, cap, "prediction log cannot write to MariaDB: %s",
             p->db_reason);
    ok = 0;
  } else if (p->schema_reason[0]) {
    snprintf(buf, cap, "%s", p->schema_reason);
    ok = 0;
  } else if (atomic_load(&p->spool_full)) {
    snprintf(buf, cap, "prediction log spool is full (%" PRIu64 " bytes)",
             p->o.spool_max_bytes);
    ok = 0;
  }
  pthread_mutex_unlock(&p->st_mu);
  /* not ready before the spool's disk is full, not once it is (issue 20) */
  struct statvfs v;
  if (ok && statvfs(p->spool_dir, &v) == 0) {
    uint64_t fs = (uint64_t)v.f_blocks * v.f_frsize;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    uint64_t want = p->o.spool_min_free;
    if (!want)
      want = fs / 4 < ((uint64_t)64 << 20) ? fs / 4 : (uint64_t)64 << 20;
    if (avail < want) {
      snprintf(buf, cap,
               "disk of the prediction log spool %s nearly full: %" PRIu64
               " bytes free, below %" PRIu64,
               p->spool_dir, avail, want);
      ok = 0;
    }
  }
  return ok;
}

void plog_get_stats(struct plog *p, struct plog_stats *s)
{
  struct spool_stats st;
  spool_stats(p->sp, &st);
  memset(s, 0, sizeof(*s));
  s->pending = atomic_load(&p->pending);
  s->written = atomic_load(&p->written);
  s->spooled = atomic_load(&p->spooled);
  s->replayed = atomic_load(&p->replayed);
  s->duplicates = atomic_load(&p->dups);
  s->unlogged = atomic_load(&p->unlogged);
  s->rejected = atomic_load(&p->rejected);
  s->spool_bytes = st.bytes;
  s->spool_records = st.pending;
  s->source = (uint64_t)p->source;
  s->db_ok = atomic_load(&p->db_ok);
  s->spool_full = atomic_load(&p->spool_full);
  s->next_seq = atomic_load(&p->next_seq_pub);
  s->paced_us = atomic_load(&p->paced_us);
  s->full_waits = atomic_load(&p->full_waits);
}
