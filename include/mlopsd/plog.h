/* plog.h - the prediction log: every served prediction becomes a row of
 * credit_predictions_api_log, written in batches off the request path and
 * never lost while MariaDB is away (docs/serving.md).
 *
 * Request threads append rows into an in-memory buffer split in shards
 * (one mutex per shard, held for a memcpy; a thread keeps to one shard).
 * A ticker thread submits a flush job to the queue at QUEUE_PRIO_HIGH
 * every flush_ms, or at once when flush_rows rows are pending.  The job
 * takes every pending row, numbers it (log_seq, from a high-water mark
 * persisted in SPOOL_DIR/plog-seq, reserved a million at a time so a
 * number is never handed out twice, also across crashes) and inserts the
 * batch with multi-row INSERTs in one transaction.
 *
 * When MariaDB cannot be reached (or the insert fails), the batch is
 * appended to the on-disk spool (spool.h) and fsync'd; while the spool
 * holds rows, new batches go behind them, so rows reach the table in
 * order.  Each flush first replays the spool (oldest first) when the
 * database is back, committing the spool cursor after each stored
 * record.  Rows carry (log_source = spool id, log_seq) under a UNIQUE key
 * (migration 010_plog_seq.sql) and are inserted with ON DUPLICATE KEY
 * UPDATE log_seq = log_seq, so a batch stored twice (a commit whose
 * answer was lost, a crash between insert and cursor commit) gives one
 * row.
 *
 * Rows wait for the flusher in a buffer file mapped MAP_SHARED
 * (pbuf.h, SPOOL_DIR/plog-buffer): plog_append returns once the row is in
 * the kernel's page cache, so a process killed at any moment (SIGKILL)
 * loses no row it answered; the next plog_create finds the rows not yet
 * stored and stores them first, under the numbers they had (exactly once
 * through the key).  With durability fsync the append also waits for an
 * fdatasync shared by all threads waiting at the time.
 *
 * When the database takes rows slower than they come, plog_append (policy
 * reject) slows the calling threads down smoothly once the buffer is a
 * quarter full: a small delay per row that grows with the backlog, paid
 * in short sleeps (pace_us), so the server settles at the rate MariaDB
 * stores instead of running into a full buffer.
 *
 * When the in-memory buffer is full (the database takes rows slower than
 * they come, and the spool cannot take them either), plog_admit and
 * plog_append wait up to full_wait_ms for room under policy "reject" (so
 * the server slows down to what the log can store), then answer ERR_FULL
 * (the server answers 503); under policy "serve" they do not wait and
 * count the rows as unlogged.
 *
 * Thread rule: create/start/stop/destroy from one thread (stop before the
 * queue shuts down).  plog_admit, plog_append, plog_status and the stats
 * from any thread.
 */
#ifndef MLOPSD_PLOG_H
#define MLOPSD_PLOG_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct plog;
struct db_pool;
struct queue;
struct metrics;

#define PLOG_TABLE_DEFAULT "credit_predictions_api_log"
#define PLOG_CUSTOMER_ID_MAX 10 /* varchar(10) of the course's table */
#define PLOG_PREDICTION_MAX 10  /* varchar(10) */
#define PLOG_SEQ_RESERVE 1000000
#define PLOG_SHADOW_TABLE "prediction_shadow" /* sql/migrations/080 */

enum plog_policy { PLOG_FULL_REJECT = 0, PLOG_FULL_SERVE = 1 };

/* What an answered row survives (docs/serving.md "Durability"):
 * PROCESS - the row is in the mapped buffer file before plog_append
 * returns: a killed process loses nothing, a power loss may;
 * FSYNC - plog_append also waits for an fdatasync of the buffer file
 * (group commit: one sync for every thread waiting at the time). */
enum plog_durability { PLOG_DUR_PROCESS = 0, PLOG_DUR_FSYNC = 1 };

#define PLOG_BUFFER_FILE "plog-buffer"

struct plog_opts {
  struct db_pool *pool;   /* borrowed; best a pool of its own (size 1-2) */
  struct queue *queue;    /* borrowed: flush jobs; NULL = the ticker thread
                             flushes itself (tests) */
  struct metrics *metrics; /* borrowed, may be NULL */
  const char *table;      /* NULL = PLOG_TABLE_DEFAULT; validated */
  const char *spool_dir;  /* required; created if missing */
  uint64_t spool_max_bytes; /* 0 = 256 MiB */
  uint64_t spool_min_free; /* plog_ready fails while the spool's file
                              system has less free space; 0 = 64 MiB or
                              a quarter of the file system (smaller) */
  int flush_ms;           /* 0 = 50 */
  size_t flush_rows;      /* pending rows that trigger a flush; 0 = 2048 */
  size_t max_rows;        /* in-memory cap on rows; 0 = 32768 */
  size_t max_bytes;       /* in-memory cap on bytes (about 1 KiB per row
                             of the course model); 0 = 16 MiB */
  enum plog_policy policy;
  int acquire_ms;         /* wait for a DB connection; 0 = 1000 */
  int full_wait_ms;       /* policy reject: how long a request waits for
                             room in a full buffer before ERR_FULL;
                             0 = 1000, < 0 = no wait */
  enum plog_durability durability;
  const char *buffer_dir; /* directory of PLOG_BUFFER_FILE; NULL or "" =
                             spool_dir.  The file is preallocated: about
                             max_bytes + 6 chunks of 2 x max_item_bytes */
  size_t max_item_bytes;  /* largest features value to log; 0 = 1 MiB */
  int pace_us;            /* policy reject: delay per row appended when
                             the buffer is full, growing from 0 at a
                             quarter of max_rows/max_bytes (see
                             plog_append); 0 = 2000, < 0 = off */
};

void plog_opts_defaults(struct plog_opts *o);

/* One prediction.  Strings are copied by plog_append.  customer_id and
 * prediction are cut to PLOG_*_MAX characters (at a UTF-8 boundary);
 * features must be one valid JSON value (the item as received): the
 * log's session turns MariaDB's check_constraint_checks off, so the
 * server does not check it again, and the table gets it without the
 * blanks between its tokens (plog_int.h plog_json_compact: the same
 * value; docs/serving.md). */
struct plog_row {
  const char *customer_id; /* NULL = "" (the column is NOT NULL) */
  size_t customer_id_len;
  const char *features;
  size_t features_len;
  const char *prediction;  /* NUL-terminated */
  double confidence;       /* non-finite is stored as 0 */
  int elapsed_ms;
  int64_t created_us;      /* wall clock, microseconds since the epoch */
  const char *model;       /* model name (NUL-terminated) */
  int model_version;
  /* The shadow's answer to the same item (docs/serving.md "Shadow
   * challenger"): stored as the linked row (log_source, log_seq) of
   * PLOG_SHADOW_TABLE, in the transaction that stores this row, and
   * kept with it in the buffer file and the spool.  0 = none. */
  int shadow_version;
  const char *shadow_prediction; /* NUL-terminated, cut like prediction */
  double shadow_confidence;      /* non-finite is stored as NULL */
};

/* Open the spool, read the sequence high-water mark and reserve the next
 * range.  Connects to nothing yet.  Errors: ERR_INVAL (opts, table name),
 * ERR_IO / ERR_PARSE (spool or state file), ERR_NOMEM. */
enum err_code plog_create(struct plog **out, const struct plog_opts *o,
                          struct err *e) MLOPSD_WUR;

/* Start the ticker: the first flush replays what a previous run left in
 * the spool.  ERR_INTERNAL if the thread cannot start. */
enum err_code plog_start(struct plog *p, struct err *e) MLOPSD_WUR;

/* Stop the ticker, wait for a flush in progress, then flush every pending
 * row (to MariaDB, else to the spool) on this thread, trying until
 * deadline_ms from now.  *lost (may be NULL) gets rows that could be
 * stored nowhere now (database and spool failing); they stay in the
 * buffer file and are stored by the next plog_create.  Idempotent. */
void plog_stop(struct plog *p, int deadline_ms, size_t *lost);

/* Stop (deadline 5 s) if needed, close the spool, free.  NULL-safe. */
void plog_destroy(struct plog *p);

/* Check before predicting: ERR_FULL when n more rows do not fit (after
 * waiting up to full_wait_ms) and the policy is reject; ERR_OK otherwise.
 * Lock-free unless the buffer is full. */
enum err_code plog_admit(struct plog *p, size_t n);

/* Append n rows, all or none.  ERR_OK (also when the buffer is full and
 * the policy is serve: the rows are then counted as unlogged and
 * *logged, if non-NULL, is 0), ERR_FULL (buffer still full after
 * full_wait_ms, policy reject), ERR_IO (durability fsync: the sync
 * failed; the rows are kept and stored).  May block up to full_wait_ms; under
 * policy reject it may also sleep for pacing (at most 0.5 ms per call,
 * more for a batch of rows). */
enum err_code plog_append(struct plog *p, const struct plog_row *rows,
                          size_t n, int *logged);

/* Readiness: 1 when the last contact with MariaDB worked (only asked
 * when with_db: whether a database blip makes a daemon unready is the
 * caller's choice, by role), the log table has the expected columns, the
 * spool is not full and its file system has spool_min_free bytes free;
 * else 0 and a reason in buf.  Reads state only: no database call. */
int plog_ready(struct plog *p, int with_db, char *buf, size_t cap);

struct plog_stats {
  uint64_t pending;   /* rows in memory not yet stored */
  uint64_t written;   /* rows inserted (directly or from the spool) */
  uint64_t spooled;   /* rows appended to the spool */
  uint64_t replayed;  /* rows inserted from the spool */
  uint64_t duplicates; /* rows the table already had (replays) */
  uint64_t unlogged;  /* rows dropped under policy serve */
  uint64_t rejected;  /* rows refused under policy reject */
  uint64_t spool_bytes;
  uint64_t spool_records; /* records not yet replayed */
  uint64_t next_seq;
  uint64_t source;    /* log_source of this instance (spool id) */
  int db_ok;
  int spool_full;
  uint64_t paced_us;  /* time request threads slept for pacing */
  uint64_t full_waits; /* appends/admits that waited for room (full) */
};
void plog_get_stats(struct plog *p, struct plog_stats *st);

/* Ask for a flush now (any thread; the ticker submits it). */
void plog_kick(struct plog *p);

#endif
