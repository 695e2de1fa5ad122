/* spool.h - bounded on-disk append-only spool (prediction-log rows while
 * MariaDB is down).
 *
 * Records are opaque byte strings, numbered by a sequence (seq) that only
 * grows, also across restarts.  On disk, in dir:
 *
 *   seg-<first seq, 20 digits>.log   segment files, appended in order
 *   cursor                           "id=<16 hex>\ncommitted=<seq>\n",
 *                                    replaced atomically (temp, fsync,
 *                                    rename, fsync dir)
 *
 * A record is [u32 magic][u32 length][u64 seq][payload][u32 crc32c], all
 * little-endian; the CRC-32C covers header and payload.
 *
 * Writing: spool_append() encodes into a buffer and hands out the seq;
 * spool_sync() writes the buffer and fsyncs: only records whose append and
 * a following sync both returned ERR_OK are durable.  Append a batch, sync
 * once.
 *
 * Reading: spool_next_batch() calls back with the records after the
 * committed cursor, in seq order (durable records only); it starts from
 * the cursor every time, so a batch that could not be stored elsewhere is
 * simply delivered again.  spool_commit(seq) records that everything up to
 * seq is safely stored elsewhere and deletes segments wholly consumed.
 * Exactly-once across crashes is the caller's part: see docs/http.md.
 *
 * Recovery on open: a torn last record of the last segment (bad length or
 * CRC with nothing valid after it, e.g. after kill -9 or power loss) is cut
 * off with a WARN.  A bad record with valid records after it is corruption:
 * it is never skipped silently.  The reader stops there, spool_next_batch
 * returns ERR_PARSE naming file and offset (logged once), new appends go to
 * a fresh segment, and the file is kept untouched for inspection until an
 * operator calls spool_quarantine().
 *
 * Thread rule: append/sync/stats from any thread (one internal lock).
 * next_batch/commit/quarantine from one consumer thread at a time (a
 * second lock serialises them); the callback runs on that thread with the
 * consumer lock held (it may append/sync/stats, not next_batch/commit).
 */
#ifndef MLOPSD_SPOOL_H
#define MLOPSD_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct spool;

#define SPOOL_MAGIC 0x4c50534du /* bytes "MSPL" on disk */
#define SPOOL_REC_OVERHEAD 20          /* header 16 + crc 4 */
#define SPOOL_MAX_RECORD ((size_t)16 << 20) /* payload bytes */

struct spool_opts {
  const char *dir;         /* created (mode 0750) if missing; copied */
  uint64_t max_bytes;      /* all segment files together; default 256 MiB */
  uint64_t segment_bytes;  /* roll to a new segment past this; 8 MiB */
};

void spool_opts_defaults(struct spool_opts *o);

struct spool_stats {
  uint64_t bytes;          /* on disk (segments) plus buffered */
  uint64_t max_bytes;
  uint64_t segments;
  uint64_t next_seq;       /* seq the next append gets */
  uint64_t committed;      /* cursor: everything <= is consumed */
  uint64_t durable;        /* highest synced seq (0 if none) */
  uint64_t pending;        /* durable records after the cursor */
  int corrupt;             /* 1 if the reader is stopped at corruption */
};

/* Open (or create) the spool in o->dir and recover it (see above).
 * ERR_IO if the directory or a file cannot be used, ERR_PARSE for an
 * unreadable cursor file, ERR_NOMEM. */
enum err_code spool_create(struct spool **out, const struct spool_opts *o,
                           struct err *e) MLOPSD_WUR;

/* Write out and fsync what is buffered (best effort), close.  NULL-safe. */
void spool_destroy(struct spool *sp);

/* Append one record (data copied).  *seq_out gets its seq (may be NULL).
 * ERR_FULL if it would take the spool past max_bytes (nothing appended),
 * ERR_INVAL if len > SPOOL_MAX_RECORD, ERR_IO if a write failed. */
enum err_code spool_append(struct spool *sp, const void *data, size_t len,
                           uint64_t *seq_out, struct err *e) MLOPSD_WUR;

/* Make every record appended so far durable (write + fdatasync, and the
 * directory when a segment was created).  ERR_IO on failure: the records
 * since the last good sync are dropped (their seqs are not reused). */
enum err_code spool_sync(struct spool *sp, struct err *e) MLOPSD_WUR;

/* Called for each record; data is borrowed for the call.  Return 0 to go
 * on, non-zero to stop (that record counts as not delivered). */
typedef int (*spool_record_fn)(void *arg, uint64_t seq, const void *data,
                               size_t len);

/* Deliver up to max durable records after the cursor, in order; *n_out
 * (may be NULL) gets how many.  0 records is ERR_OK.  ERR_PARSE when the
 * reader stands at a corrupt record (records before it are delivered
 * first), ERR_IO on a read error. */
enum err_code spool_next_batch(struct spool *sp, size_t max,
                               spool_record_fn fn, void *arg, size_t *n_out,
                               struct err *e) MLOPSD_WUR;

/* Move the cursor to seq (everything <= seq is consumed), persist it
 * atomically, delete wholly consumed segments.  A seq at or below the
 * cursor is a no-op; ERR_INVAL above the highest durable seq. */
enum err_code spool_commit(struct spool *sp, uint64_t seq, struct err *e)
    MLOPSD_WUR;

/* Operator action after corruption: rename the segment the reader is
 * stopped in to <name>.corrupt (kept, no longer counted), move the cursor
 * past it and go on with the next segment.  The records after the damage
 * in that segment are given up (they stay in the .corrupt file).
 * ERR_STATE if the reader is not stopped at corruption. */
enum err_code spool_quarantine(struct spool *sp, struct err *e) MLOPSD_WUR;

/* Random 64-bit id of this spool directory, fixed at its creation (for
 * keying the cursor in the database, see docs/http.md). */
uint64_t spool_id(const struct spool *sp);

void spool_stats(struct spool *sp, struct spool_stats *st);

/* CRC-32C (Castagnoli) of n bytes, continuing from crc (start with 0). */
uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n);

#endif
