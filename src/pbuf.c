/* pbuf.c - the prediction log's crash-safe row buffer (see pbuf.h).
 *
 * Why it looks like this:
 *
 * - MAP_SHARED over a regular file: a store into the mapping is in the
 *   page cache at once, and the page cache belongs to the kernel, not to
 *   the process, so kill -9 right after an answer cannot lose its row.
 *   No system call on the append path; msync/fdatasync only when asked
 *   (durability fsync).
 *
 * - The file is preallocated (posix_fallocate): a store into a hole of a
 *   sparse file on a full disk (or a full tmpfs) raises SIGBUS.
 *
 * - Chunks instead of one ring: a writer thread fills a chunk of its own
 *   under its shard's lock and the flusher takes whole chunks, so there
 *   is no shared head pointer, and a chunk is freed by one store once all
 *   its rows are stored.  Free chunks are reused last-in first-out, so the
 *   same few chunks stay hot in the cache and in the page tables; only
 *   chunks left unused for a while leave the page tables (pbuf_trim).
 *
 * - A row is published by bumping the chunk's row and byte counts after
 *   its bytes are written; a process killed in between leaves a row that
 *   was never acknowledged, and recovery does not see it.  The CRC is for
 *   power loss and damage (seeded with the fill's gen, so a stale row of
 *   an older fill fails it), not for process crashes.
 */
#include "mlopsd/pbuf.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlopsd/log.h"
#include "mlopsd/spool.h"

#define MOD "pbuf"
#define FILE_MAGIC 0x3142504du  /* "MPB1" */
#define CHUNK_MAGIC 0x4b484350u /* "PCHK" */
#define FILE_VERSION 1

struct fhdr {
  uint32_t magic, version;
  uint64_t chunk_bytes, nchunks;
};

struct chdr {
  uint32_t magic; /* CHUNK_MAGIC in use, 0 free */
  uint32_t nrows;
  uint64_t gen;
  uint64_t used; /* bytes of rows after the header */
  uint32_t done;
  uint32_t pad;
};

struct pbuf_chunk {
  struct chdr *h;
  char *rows; /* first row */
  size_t cap; /* bytes for rows */
  size_t wpos;
  uint32_t n;
  uint32_t idx;
  uint64_t used_epoch; /* b->epoch when last taken (under b->mu) */
  int mapped;          /* pages may be in our page tables (under b->mu) */
};

struct pbuf {
  int fd;
  char *map;
  size_t map_len;
  size_t chunk_bytes, nchunks;
  struct pbuf_chunk *ch;
  pthread_mutex_t mu; /* free list, gen */
  uint32_t *free_idx;
  size_t nfree;
  uint64_t gen;
  uint64_t epoch; /* pbuf_trim calls so far */
  struct pbuf_chunk **rec;
  size_t nrec;
  uint64_t rec_rows;
  /* group commit */
  pthread_mutex_t smu;
  pthread_cond_t scv;
  uint64_t s_req, s_done;
  int s_running;
  enum err_code s_rc;
  uint64_t n_syncs, n_waits;
};

static size_t align8(size_t n) { return (n + 7) & ~(size_t)7; }

size_t pbuf_row_size(size_t cid_len, size_t pred_len, size_t model_len,
                     size_t feat_len)
{
  return align8(PBUF_ROW_HDR + cid_len + pred_len + model_len + feat_len);
}

size_t pbuf_nchunks(const struct pbuf *b) { return b->nchunks; }

size_t pbuf_max_row(const struct pbuf *b)
{
  return b->chunk_bytes - PBUF_CHUNK_HDR;
}

static uint32_t row_crc(uint64_t gen, const char *row, size_t strings)
{
  uint32_t c = spool_crc32c((uint32_t)(gen ^ (gen >> 32)), row + 8, 36);
  return spool_crc32c(c, row + PBUF_ROW_HDR, strings);
}

/* Check the rows of an in-use chunk after a restart; keep the valid
 * prefix.  Returns the rows kept. */
static uint32_t recover_chunk(struct pbuf_chunk *c)
{
  size_t off = 0, used = c->h->used;
  uint32_t n = 0;
  if (used > c->cap)
    used = c->cap;
  while (n < c->h->nrows && off + PBUF_ROW_HDR <= used) {
    const char *r = c->rows + off;
    uint16_t l16[3];
    uint32_t fl, crc;
    memcpy(l16, r + 32, 6);
    memcpy(&fl, r + 40, 4);
    memcpy(&crc, r + 44, 4);
    size_t strings = (size_t)l16[0] + l16[1] + l16[2] + fl;
    size_t sz = align8(PBUF_ROW_HDR + strings);
    if (off + sz > used || row_crc(c->h->gen, r, strings) != crc)
      break;
    off += sz;
    n++;
  }
  if (n < c->h->nrows)
    LOG_W(MOD, "chunk %u: %u of %u rows check out, the rest are dropped "
               "(torn by a power loss or damaged)",
          c->idx, n, c->h->nrows);
  c->n = n;
  c->wpos = off;
  if (c->h->done > n)
    c->h->done = n;
  return n;
}

static int gen_cmp(const void *a, const void *b)
{
  const struct pbuf_chunk *x = *(struct pbuf_chunk *const *)a;
  const struct pbuf_chunk *y = *(struct pbuf_chunk *const *)b;
  return x->h->gen < y->h->gen ? -1 : x->h->gen > y->h->gen;
}

static enum err_code map_file(struct pbuf *b, const char *path, size_t len,
                              struct err *e)
{
  b->map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, b->fd, 0);
  if (b->map == MAP_FAILED) {
    b->map = NULL;
    return err_set(e, ERR_IO, "log buffer %s: mmap %zu bytes: %s", path,
                   len, strerror(errno));
  }
  b->map_len = len;
  return ERR_OK;
}

/* Does the mapped file (with its own geometry) have chunks in use? */
static int any_in_use(const struct pbuf *b, size_t cb, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const struct chdr *h =
        (const struct chdr *)(b->map + PBUF_FILE_HDR + i * cb);
    if (h->magic == CHUNK_MAGIC && h->nrows > h->done)
      return 1;
  }
  return 0;
}

enum err_code pbuf_open(struct pbuf **out, const char *path,
                        size_t chunk_bytes, size_t nchunks, struct err *e)
{
  struct pbuf *b;
  struct stat st;
  struct fhdr fh = {0};
  enum err_code rc;
  *out = NULL;
  if (chunk_bytes < 65536 || chunk_bytes % 4096 || nchunks < 1)
    return err_set(e, ERR_INVAL, "log buffer: bad geometry %zu x %zu",
                   nchunks, chunk_bytes);
  b = calloc(1, sizeof(*b));
  if (!b)
    return err_set(e, ERR_NOMEM, "log buffer: out of memory");
  pthread_mutex_init(&b->mu, NULL);
  pthread_mutex_init(&b->smu, NULL);
  pthread_cond_init(&b->scv, NULL);
  b->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (b->fd < 0) {
    rc = err_set(e, ERR_IO, "log buffer %s: %s", path, strerror(errno));
    goto fail;
  }
  if (flock(b->fd, LOCK_EX | LOCK_NB) != 0) {
    rc = err_set(e, ERR_STATE, "log buffer %s is in use by another process "
                               "(two daemons on one spool directory?)",
                 path);
    goto fail;
  }
  if (fstat(b->fd, &st) != 0) {
    rc = err_set(e, ERR_IO, "log buffer %s: %s", path, strerror(errno));
    goto fail;
  }
  /* An existing file: keep its chunk size while it holds rows. */
  if ((size_t)st.st_size >= PBUF_FILE_HDR &&
      pread(b->fd, &fh, sizeof(fh), 0) == (ssize_t)sizeof(fh) &&
      fh.magic == FILE_MAGIC && fh.version == FILE_VERSION &&
      fh.chunk_bytes >= 65536 && fh.chunk_bytes % 4096 == 0 &&
      fh.nchunks >= 1 &&
      PBUF_FILE_HDR + fh.chunk_bytes * fh.nchunks <= (uint64_t)st.st_size) {
    size_t len = PBUF_FILE_HDR + fh.chunk_bytes * fh.nchunks;
    if ((rc = map_file(b, path, len, e)) != ERR_OK)
      goto fail;
    int busy = any_in_use(b, fh.chunk_bytes, fh.nchunks);
    munmap(b->map, b->map_len);
    b->map = NULL;
    if (busy) {
      if (fh.chunk_bytes != chunk_bytes)
        LOG_W(MOD, "%s holds rows from a previous run: keeping its chunk "
                   "size %llu (asked for %zu) until it is empty at a start",
              path, (unsigned long long)fh.chunk_bytes, chunk_bytes);
      chunk_bytes = fh.chunk_bytes;
      if (fh.nchunks > nchunks)
        nchunks = fh.nchunks;
    }
  }
  b->chunk_bytes = chunk_bytes;
  b->nchunks = nchunks;
  size_t len = PBUF_FILE_HDR + chunk_bytes * nchunks;
  if (fh.chunk_bytes != chunk_bytes && (size_t)st.st_size > 0) {
    /* unused file of another geometry: start over */
    if (ftruncate(b->fd, 0) != 0) {
      rc = err_set(e, ERR_IO, "log buffer %s: truncate: %s", path,
                   strerror(errno));
      goto fail;
    }
  }
  int err = posix_fallocate(b->fd, 0, (off_t)len);
  if (err != 0) {
    rc = err_set(e, ERR_IO, "log buffer %s: cannot reserve %zu bytes: %s",
                 path, len, strerror(err));
    goto fail;
  }
  fh.magic = FILE_MAGIC;
  fh.version = FILE_VERSION;
  fh.chunk_bytes = chunk_bytes;
  fh.nchunks = nchunks;
  if (pwrite(b->fd, &fh, sizeof(fh), 0) != (ssize_t)sizeof(fh) ||
      fdatasync(b->fd) != 0) {
    rc = err_set(e, ERR_IO, "log buffer %s: write header: %s", path,
                 strerror(errno));
    goto fail;
  }
  if ((rc = map_file(b, path, len, e)) != ERR_OK)
    goto fail;
  b->ch = calloc(nchunks, sizeof(*b->ch));
  b->free_idx = calloc(nchunks, sizeof(*b->free_idx));
  b->rec = calloc(nchunks, sizeof(*b->rec));
  if (!b->ch || !b->free_idx || !b->rec) {
    rc = err_set(e, ERR_NOMEM, "log buffer: out of memory");
    goto fail;
  }
  /* Free chunks are pushed highest index first so the lowest are taken
   * first (and stay the hot ones). */
  for (size_t i = nchunks; i-- > 0;) {
    struct pbuf_chunk *c = &b->ch[i];
    c->idx = (uint32_t)i;
    c->h = (struct chdr *)(b->map + PBUF_FILE_HDR + i * chunk_bytes);
    c->rows = (char *)c->h + PBUF_CHUNK_HDR;
    c->cap = chunk_bytes - PBUF_CHUNK_HDR;
    c->mapped = 1; /* the checks above may have touched its pages */
    if (c->h->gen >= b->gen)
      b->gen = c->h->gen + 1;
    if (c->h->magic == CHUNK_MAGIC && recover_chunk(c) > c->h->done) {
      b->rec[b->nrec++] = c;
      b->rec_rows += c->n - c->h->done;
    } else {
      c->h->magic = 0;
      b->free_idx[b->nfree++] = (uint32_t)i;
    }
  }
  qsort(b->rec, b->nrec, sizeof(*b->rec), gen_cmp);
  *out = b;
  return ERR_OK;
fail:
  pbuf_close(b);
  return rc;
}

void pbuf_close(struct pbuf *b)
{
  if (!b)
    return;
  if (b->map)
    munmap(b->map, b->map_len);
  if (b->fd >= 0)
    close(b->fd);
  free(b->ch);
  free(b->free_idx);
  free(b->rec);
  pthread_mutex_destroy(&b->mu);
  pthread_mutex_destroy(&b->smu);
  pthread_cond_destroy(&b->scv);
  free(b);
}

int pbuf_take(struct pbuf *b, struct pbuf_chunk **out, size_t k)
{
  pthread_mutex_lock(&b->mu);
  if (b->nfree < k) {
    pthread_mutex_unlock(&b->mu);
    return -1;
  }
  b->nrec = 0; /* recovered chunks are the flusher's now */
  for (size_t i = 0; i < k; i++) {
    struct pbuf_chunk *c = &b->ch[b->free_idx[--b->nfree]];
    /* magic last: a process killed half-way leaves a free chunk */
    c->h->nrows = 0;
    c->h->used = 0;
    c->h->done = 0;
    c->h->gen = b->gen++;
    c->h->magic = CHUNK_MAGIC;
    c->wpos = 0;
    c->n = 0;
    c->used_epoch = b->epoch;
    c->mapped = 1;
    out[i] = c;
  }
  pthread_mutex_unlock(&b->mu);
  return 0;
}

size_t pbuf_free_count(struct pbuf *b)
{
  pthread_mutex_lock(&b->mu);
  size_t n = b->nfree;
  pthread_mutex_unlock(&b->mu);
  return n;
}

size_t pbuf_room(const struct pbuf_chunk *c) { return c->cap - c->wpos; }

void pbuf_put(struct pbuf_chunk *c, const struct pbuf_row *r)
{
  char *d = c->rows + c->wpos;
  uint16_t l16[4] = {(uint16_t)r->cid_len, (uint16_t)r->pred_len,
                     (uint16_t)r->model_len, 0};
  uint32_t fl = (uint32_t)r->feat_len;
  size_t strings = r->cid_len + r->pred_len + r->model_len + r->feat_len;
  memset(d, 0, 8); /* seq: numbered by the flusher */
  memcpy(d + 8, &r->created_us, 8);
  memcpy(d + 16, &r->conf, 8);
  memcpy(d + 24, &r->elapsed_ms, 4);
  memcpy(d + 28, &r->model_version, 4);
  memcpy(d + 32, l16, 8);
  memcpy(d + 40, &fl, 4);
  char *s = d + PBUF_ROW_HDR;
  memcpy(s, r->cid, r->cid_len);
  s += r->cid_len;
  memcpy(s, r->pred, r->pred_len);
  s += r->pred_len;
  memcpy(s, r->model, r->model_len);
  s += r->model_len;
  memcpy(s, r->feat, r->feat_len);
  uint32_t crc = row_crc(c->h->gen, d, strings);
  memcpy(d + 44, &crc, 4);
  c->wpos += align8(PBUF_ROW_HDR + strings);
  /* publish: a process killed before these stores never answered */
  c->h->used = c->wpos;
  c->h->nrows = ++c->n;
}

uint32_t pbuf_rows(const struct pbuf_chunk *c) { return c->n; }

uint32_t pbuf_done(const struct pbuf_chunk *c) { return c->h->done; }

int pbuf_next(const struct pbuf_chunk *c, size_t *off, struct pbuf_row *r)
{
  if (*off + PBUF_ROW_HDR > c->wpos)
    return 0;
  const char *d = c->rows + *off;
  uint16_t l16[3];
  uint32_t fl;
  memcpy(&r->seq, d, 8);
  memcpy(&r->created_us, d + 8, 8);
  memcpy(&r->conf, d + 16, 8);
  memcpy(&r->elapsed_ms, d + 24, 4);
  memcpy(&r->model_version, d + 28, 4);
  memcpy(l16, d + 32, 6);
  memcpy(&fl, d + 40, 4);
  r->cid_len = l16[0];
  r->pred_len = l16[1];
  r->model_len = l16[2];
  r->feat_len = fl;
  r->cid = d + PBUF_ROW_HDR;
  r->pred = r->cid + r->cid_len;
  r->model = r->pred + r->pred_len;
  r->feat = r->model + r->model_len;
  *off += align8(PBUF_ROW_HDR + r->cid_len + r->pred_len + r->model_len +
                 r->feat_len);
  return 1;
}

void pbuf_set_seq(struct pbuf_chunk *c, size_t off, uint64_t seq)
{
  memcpy(c->rows + off, &seq, 8);
}

void pbuf_set_done(struct pbuf_chunk *c, uint32_t n) { c->h->done = n; }

void pbuf_release(struct pbuf *b, struct pbuf_chunk *c)
{
  /* The chunk's pages stay mapped: free chunks are reused newest first,
   * so under a load the same few come back at once, and dropping their
   * pages here (MADV_DONTNEED, as first built) made every reuse fault
   * each page back in through ext4's page_mkwrite and cost a TLB
   * shootdown per release: 11% of the daemon's CPU in page faults and 2%
   * in madvise (perf, bench_serve.sh single/16).  pbuf_trim drops the
   * pages of chunks that sat unused instead. */
  c->h->magic = 0;
  pthread_mutex_lock(&b->mu);
  b->free_idx[b->nfree++] = c->idx;
  pthread_mutex_unlock(&b->mu);
}

size_t pbuf_trim(struct pbuf *b)
{
  size_t n = 0;
  uint32_t *idle = malloc(b->nchunks * sizeof(*idle));
  pthread_mutex_lock(&b->mu);
  for (size_t i = 0; idle && i < b->nfree; i++) {
    struct pbuf_chunk *c = &b->ch[b->free_idx[i]];
    if (c->mapped && c->used_epoch < b->epoch) {
      c->mapped = 0;
      idle[n++] = c->idx;
    }
  }
  b->epoch++;
  pthread_mutex_unlock(&b->mu);
  /* Outside the lock: a chunk taken again meanwhile loses nothing (the
   * rows are in the page cache of a shared file mapping; its pages just
   * fault back in), so appenders never wait for this. */
  for (size_t i = 0; i < n; i++)
    if (madvise(b->ch[idle[i]].h, b->chunk_bytes, MADV_DONTNEED) != 0)
      LOG_D(MOD, "madvise chunk %u: %s", idle[i], strerror(errno));
  free(idle);
  return n;
}

void pbuf_recovered(struct pbuf *b, struct pbuf_chunk ***list, size_t *n,
                    uint64_t *rows)
{
  *list = b->rec;
  *n = b->nrec;
  if (rows)
    *rows = b->rec_rows;
}

enum err_code pbuf_sync(struct pbuf *b, struct err *e)
{
  if (fdatasync(b->fd) != 0)
    return err_set(e, ERR_IO, "log buffer: fdatasync: %s", strerror(errno));
  __atomic_fetch_add(&b->n_syncs, 1, __ATOMIC_RELAXED);
  return ERR_OK;
}

enum err_code pbuf_sync_wait(struct pbuf *b)
{
  enum err_code rc = ERR_OK;
  pthread_mutex_lock(&b->smu);
  uint64_t my = ++b->s_req; /* our rows were written before this ticket */
  b->n_waits++;
  while (b->s_done < my) {
    if (b->s_running) {
      pthread_cond_wait(&b->scv, &b->smu);
      continue;
    }
    /* lead: one fdatasync covers every ticket handed out so far */
    uint64_t target = b->s_req;
    b->s_running = 1;
    pthread_mutex_unlock(&b->smu);
    struct err e = {0};
    enum err_code src = pbuf_sync(b, &e);
    if (src != ERR_OK)
      LOG_E(MOD, "%s", e.msg);
    pthread_mutex_lock(&b->smu);
    b->s_running = 0;
    b->s_done = target;
    b->s_rc = src;
    pthread_cond_broadcast(&b->scv);
  }
  rc = b->s_rc;
  pthread_mutex_unlock(&b->smu);
  return rc;
}

void pbuf_sync_stats(struct pbuf *b, uint64_t *syncs, uint64_t *waits)
{
  pthread_mutex_lock(&b->smu);
  *waits = b->n_waits;
  pthread_mutex_unlock(&b->smu);
  *syncs = __atomic_load_n(&b->n_syncs, __ATOMIC_RELAXED);
}
