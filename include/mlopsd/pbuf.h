/* pbuf.h - the prediction log's crash-safe row buffer: a file of
 * fixed-size chunks, mapped MAP_SHARED, so every row appended is in the
 * kernel's page cache the moment the append returns and survives the
 * process being killed (kill -9, a crash, the OOM killer).  Only a
 * power loss or a kernel crash can lose it, unless pbuf_sync (or
 * pbuf_sync_wait, group commit) made it durable on disk.
 *
 * On disk (one file, preallocated so a full disk can never turn a write
 * into SIGBUS):
 *
 *   [file header, 4 KiB: magic, version, chunk_bytes, nchunks]
 *   [chunk 0][chunk 1]...        each chunk_bytes long
 *
 *   chunk = [header 64 B: magic (0 = free), rows, gen, used, done]
 *           [row][row]...        rows 8-byte aligned
 *   row   = [seq u64][created_us i64][confidence f64][elapsed_ms i32]
 *           [model_version i32][customer_id, prediction, model lengths
 *           u16 x3][pad u16][features length u32][crc32c u32]
 *           [customer_id][prediction][model][features][pad to 8]
 *
 * The CRC-32C covers the row after seq (seq is written later, when the
 * flusher numbers the row), seeded with the chunk's gen, so a row left
 * from an earlier fill of the chunk never passes for a current one.
 *
 * A writer takes free chunks (pbuf_take), fills them (pbuf_put publishes
 * each row by bumping the header's row count and byte count after the
 * row's bytes are written) and hands them to the flusher, which numbers
 * the rows (pbuf_set_seq), stores them, marks progress (pbuf_set_done)
 * and returns the chunk (pbuf_release).  After a crash, pbuf_open finds
 * the chunks still in use, keeps their rows up to the last one that
 * checks out, and lists them in fill order (pbuf_recovered).
 *
 * Thread rule: pbuf_take, pbuf_release, pbuf_trim, pbuf_free_count,
 * pbuf_sync and pbuf_sync_wait from any thread.  A chunk is used by one
 * thread at a time (its writer, then the flusher), the caller's locking
 * hands it over.  open/close from one thread.
 */
#ifndef MLOPSD_PBUF_H
#define MLOPSD_PBUF_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct pbuf;
struct pbuf_chunk;

#define PBUF_ROW_HDR 48     /* fixed bytes per row */
#define PBUF_CHUNK_HDR 64
#define PBUF_FILE_HDR 4096

/* One row (strings borrowed: by pbuf_put for the call; from pbuf_next
 * they point into the mapping, valid until the chunk is released). */
struct pbuf_row {
  uint64_t seq; /* 0 = not numbered yet */
  int64_t created_us;
  double conf;
  int32_t elapsed_ms, model_version;
  const char *cid, *pred, *model, *feat;
  size_t cid_len, pred_len, model_len, feat_len;
};

/* Open or create the buffer file at path with chunks of chunk_bytes (a
 * multiple of 4096, at least 64 KiB) and nchunks chunks, and recover the
 * chunks a previous process left in use.  An existing file whose chunks
 * are in use keeps its chunk size (and is grown to nchunks if smaller);
 * an unused one is recreated with the new geometry.  The file is locked
 * (flock): a second process on the same file gets ERR_STATE.  ERR_IO
 * (open, preallocate, map: e.g. no room on the disk), ERR_NOMEM. */
enum err_code pbuf_open(struct pbuf **out, const char *path,
                        size_t chunk_bytes, size_t nchunks, struct err *e)
    MLOPSD_WUR;

/* Unmap and close (the rows stay in the file).  NULL-safe. */
void pbuf_close(struct pbuf *b);

/* Bytes a row takes in a chunk. */
size_t pbuf_row_size(size_t cid_len, size_t pred_len, size_t model_len,
                     size_t feat_len);

/* Chunks in the file. */
size_t pbuf_nchunks(const struct pbuf *b);

/* Largest row (pbuf_row_size) a chunk can hold. */
size_t pbuf_max_row(const struct pbuf *b);

/* Take k free chunks (all or none), reset for writing, newest fill
 * order.  Returns 0, or -1 when fewer than k are free. */
int pbuf_take(struct pbuf *b, struct pbuf_chunk **out, size_t k);

/* Free chunks now (a snapshot). */
size_t pbuf_free_count(struct pbuf *b);

/* Bytes still free in c. */
size_t pbuf_room(const struct pbuf_chunk *c);

/* Append r to c (the caller checked pbuf_room >= pbuf_row_size); the row
 * is published (visible to recovery) when this returns. */
void pbuf_put(struct pbuf_chunk *c, const struct pbuf_row *r);

/* Rows published in c. */
uint32_t pbuf_rows(const struct pbuf_chunk *c);

/* Rows marked stored with pbuf_set_done (recovered chunks: the rows a
 * previous process had stored; they are skipped). */
uint32_t pbuf_done(const struct pbuf_chunk *c);

/* Read the row at byte offset *off (start with 0) into r and move *off
 * to the next row; 0 when there is none. */
int pbuf_next(const struct pbuf_chunk *c, size_t *off, struct pbuf_row *r);

/* Number the row at byte offset off. */
void pbuf_set_seq(struct pbuf_chunk *c, size_t off, uint64_t seq);

/* Record that the first n rows are stored (recovery skips them). */
void pbuf_set_done(struct pbuf_chunk *c, uint32_t n);

/* Give c back (its rows are stored); it may be taken again at once.
 * Its pages stay mapped (a reuse does not fault them in again). */
void pbuf_release(struct pbuf *b, struct pbuf_chunk *c);

/* Drop from this process's page tables (MADV_DONTNEED; the file and the
 * page cache keep the bytes) the pages of free chunks not taken since
 * the previous call, so RSS holds only the chunks a load keeps reusing.
 * Call it now and then (the log's ticker: every 10 s).  Returns the
 * chunks dropped. */
size_t pbuf_trim(struct pbuf *b);

/* Chunks found in use by pbuf_open, oldest fill first; *list belongs to
 * b (valid until the first pbuf_take or pbuf_close).  *rows gets the rows
 * not yet done in them. */
void pbuf_recovered(struct pbuf *b, struct pbuf_chunk ***list, size_t *n,
                    uint64_t *rows);

/* fdatasync the file.  ERR_IO on failure. */
enum err_code pbuf_sync(struct pbuf *b, struct err *e) MLOPSD_WUR;

/* Group commit: return once an fdatasync that began after this call
 * finished (the calling thread may be the one running it; threads that
 * arrive meanwhile share the next one).  ERR_IO when that sync failed. */
enum err_code pbuf_sync_wait(struct pbuf *b) MLOPSD_WUR;

/* Counters: fdatasync calls and callers that waited (group commit). */
void pbuf_sync_stats(struct pbuf *b, uint64_t *syncs, uint64_t *waits);

#endif
