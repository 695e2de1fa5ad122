/* logpart.h - time partitions and retention of the prediction log
 * (credit_predictions_api_log), and the disk figures around it
 * (docs/operations.md "Disk", migration 040_plog_partitions.sql).
 *
 * The table is partitioned by RANGE on UNIX_TIMESTAMP(created_at) with a
 * catch-all partition `pmax` (VALUES LESS THAN MAXVALUE).  One maintenance
 * pass (logpart_run):
 *
 *   1. splits `pmax` so that partitions of interval_s seconds exist up to
 *      `ahead` intervals after the current one (bounds are multiples of
 *      interval_s in epoch seconds, so daily partitions are UTC days;
 *      names pYYYYMMDD, or pYYYYMMDD_HHMMSS for shorter intervals, after
 *      the partition's first second);
 *   2. with retention_s > 0, drops every partition whose upper bound is at
 *      or before now - retention_s (all its rows are older than the
 *      window; a row inside the window is never dropped), after writing it
 *      to archive_dir when that is set (logpart_archive below);
 *   3. refreshes the figures of logpart_get_stats and the metrics.
 *
 * The DDL runs with lock_wait_timeout = LOGPART_LOCK_WAIT_S: an ALTER that
 * cannot get the table's metadata lock in that time (a long SELECT on the
 * log) gives up and is retried on the next pass, so inserts never queue
 * behind it for longer.  Rows whose created_at has no partition yet land
 * in `pmax`, never in an error; the next split moves them.
 *
 * Thread rule: create/start/stop/destroy from one thread; logpart_run from
 * one thread at a time (the maintenance thread, or a test without start);
 * logpart_get_stats from any thread.
 */
#ifndef MLOPSD_LOGPART_H
#define MLOPSD_LOGPART_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "mlopsd/err.h"

struct logpart;
struct db_pool;
struct metrics;

#define LOGPART_LOCK_WAIT_S 2
#define LOGPART_MAX_SPLIT 400 /* partitions made by one pass at most */

struct logpart_opts {
  struct db_pool *pool;     /* borrowed; one connection per pass */
  struct metrics *metrics;  /* borrowed, may be NULL */
  const char *table;        /* NULL = the prediction log; validated */
  long interval_s;          /* partition width; 0 = 86400 */
  int ahead;                /* intervals made ahead; 0 = 3 */
  long retention_s;         /* 0 = keep every row */
  const char *archive_dir;  /* NULL or "" = drop without archive (copied) */
  const char *spool_dir;    /* for the free-space figure; may be NULL
                               (copied) */
  int check_s;              /* seconds between passes; 0 = 60 */
  int db_local;             /* non-zero: MariaDB runs on this machine, so
                               statvfs(@@datadir) gives its free space */
};

struct logpart_stats {
  int partitioned;          /* 1 when the table has our partitioning */
  int partitions;           /* finite partitions (without pmax) */
  int ahead;                /* of those, starting after now */
  int64_t oldest_bound;     /* epoch s: lowest partition's upper bound */
  int64_t rows;             /* estimate (InnoDB statistics) */
  int64_t data_bytes, index_bytes; /* pages in use (statistics) */
  int64_t disk_bytes;       /* allocated on disk (-1 unknown) */
  double growth_bytes_h;    /* disk (or data+index) growth per hour,
                               not counting drops; NAN until known */
  int64_t db_free_bytes;    /* free space at @@datadir (-1 unknown) */
  int64_t spool_free_bytes; /* free space at spool_dir (-1 unknown) */
  uint64_t created, dropped, archived, errors; /* partitions, totals */
  uint64_t passes;
  char last_error[ERR_MSG_MAX];
};

struct logpart_result {
  int created, dropped;
  int64_t dropped_rows;     /* estimate, or exact when archived */
};

enum err_code logpart_create(struct logpart **out,
                             const struct logpart_opts *o,
                             struct err *e) MLOPSD_WUR;
/* Start the maintenance thread (first pass at once).  ERR_INTERNAL if the
 * thread cannot start. */
enum err_code logpart_start(struct logpart *lp, struct err *e) MLOPSD_WUR;
/* Stop the thread, waiting for a pass in progress.  Idempotent. */
void logpart_stop(struct logpart *lp);
/* Stop, detach the metrics, free.  NULL-safe. */
void logpart_destroy(struct logpart *lp);

/* One pass as of `now` (epoch seconds; tests may pass another time).
 * ERR_DB_CONN (no connection), ERR_STATE (the table is not partitioned:
 * migration 040 not applied), ERR_DB, ERR_IO (archive).  r may be NULL. */
enum err_code logpart_run(struct logpart *lp, time_t now,
                          struct logpart_result *r, struct err *e) MLOPSD_WUR;

void logpart_get_stats(struct logpart *lp, struct logpart_stats *st);

struct cfg;
/* logpart_create with the options of c (logging.retention_days /
 * retention_s / partition_s / partitions_ahead / maintenance_s /
 * archive_dir, server.spool_dir; MariaDB counts as local when it is
 * reached by socket or at 127.0.0.1, ::1 or localhost). */
enum err_code logpart_from_cfg(const struct cfg *c, struct db_pool *pool,
                               struct metrics *m, struct logpart **out,
                               struct err *e) MLOPSD_WUR;

/* Load an archive file (logpart's TABLE.PART.jsonl.gz) back into table
 * (NULL = the prediction log; it must have the log's columns, e.g. made
 * with CREATE TABLE x LIKE credit_predictions_api_log).  Rows keep their
 * id, created_at and (log_source, log_seq), and go in with ON DUPLICATE
 * KEY UPDATE, so loading a file twice adds nothing.  *rows gets the lines
 * read, *added the rows that were not there yet (either may be NULL).
 * Note: rows older than the retention window land in the oldest
 * partition and leave with it.  ERR_IO, ERR_PARSE ("FILE:LINE: ..."),
 * ERR_DB. */
enum err_code logpart_load_archive(struct db_pool *pool, const char *path,
                                   const char *table, int64_t *rows,
                                   int64_t *added, struct err *e) MLOPSD_WUR;

#endif
