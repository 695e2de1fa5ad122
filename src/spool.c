/* spool.c - bounded on-disk append-only spool (see spool.h, docs/http.md).
 *
 * Why it looks like this:
 *
 * - Append-only segment files with self-checking records.  A crash can
 *   only damage the end of the last segment (a torn write), and a torn end
 *   is recognised because nothing valid follows it; anything else that
 *   fails its CRC is real corruption and is kept, not "repaired".
 *
 * - Durability is batched: append only encodes into a buffer, sync writes
 *   and fdatasyncs once.  One fsync costs milliseconds on real disks; one
 *   per row would cap the log at a few hundred rows a second.
 *
 * - The reader only sees durable records (seq <= durable and offsets below
 *   the synced size of the active segment).  Handing out a record that a
 *   crash could still take back would let its seq be reused by another row
 *   after the restart, and a unique (spool id, seq) key in the database
 *   would then silently drop that other row.
 *
 * - The cursor (committed seq) lives in its own small file replaced with
 *   write-temp, fsync, rename, fsync-dir, so it is always either the old or
 *   the new value.  Seqs only grow: the next seq after a restart is above
 *   both the last record on disk and the cursor, even when every segment
 *   has been consumed and deleted.
 *
 * - Two locks: mu for the writer side and the segment list (appends may
 *   come from several threads), rmu for the single consumer.  The reader
 *   does its file I/O and callbacks without mu, on a snapshot of the
 *   segment it reads, so a slow database insert never blocks appends.
 *   Lock order: rmu before mu.
 */
#include "mlopsd/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlopsd/fsx.h"
#include "mlopsd/log.h"
#include "mlopsd/vec.h"

#define HDR 16
#define TRAILER 4
#define FLUSH_AT ((size_t)256 << 10) /* write the buffer out past this */
#define READ_CHUNK ((size_t)256 << 10)
#define SEG_NAME_LEN 32

/* ---- CRC-32C --------------------------------------------------------- */

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static bool crc_hw;

static void crc_init(void)
{
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    crc_tab[0][i] = c;
  }
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++)
      crc_tab[t][i] = (crc_tab[t - 1][i] >> 8)
                      ^ crc_tab[0][crc_tab[t - 1][i] & 0xFF];
#if defined(__x86_64__)
  __builtin_cpu_init();
  crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_sw(uint32_t c, const unsigned char *p, size_t n)
{
  while (n && ((uintptr_t)p & 7)) {
    c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
    n--;
  }
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    w ^= c; /* little-endian hosts only (x86-64, arm64 Debian) */
    c = crc_tab[7][w & 0xFF] ^ crc_tab[6][(w >> 8) & 0xFF]
        ^ crc_tab[5][(w >> 16) & 0xFF] ^ crc_tab[4][(w >> 24) & 0xFF]
        ^ crc_tab[3][(w >> 32) & 0xFF] ^ crc_tab[2][(w >> 40) & 0xFF]
        ^ crc_tab[1][(w >> 48) & 0xFF] ^ crc_tab[0][w >> 56];
    p += 8;
    n -= 8;
  }
  while (n--)
    c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xFF];
  return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t c, const unsigned char *p, size_t n)
{
  uint64_t c64 = c;
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    c64 = __builtin_ia32_crc32di(c64, w);
    p += 8;
    n -= 8;
  }
  c = (uint32_t)c64;
  while (n--)
    c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}
#endif

uint32_t spool_crc32c(uint32_t crc, const void *p, size_t n)
{
  pthread_once(&crc_once, crc_init);
  uint32_t c = ~crc;
#if defined(__x86_64__)
  if (crc_hw)
    return ~crc_sse42(c, p, n);
#endif
  return ~crc_sw(c, p, n);
}

/* ---- little-endian helpers ------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t get32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16
         | (uint32_t)p[3] << 24;
}

static uint64_t get64(const unsigned char *p)
{
  return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* ---- state ----------------------------------------------------------- */

struct seg {
  uint64_t first;   /* from the file name */
  uint64_t last;    /* last seq in the file; 0 = none / unknown */
  uint64_t size;    /* bytes in the file */
  uint64_t synced;  /* bytes known durable */
};

struct bpos {
  uint64_t seq, seg_first, end;
};

struct spool {
  char *dir;
  int dirfd;
  uint64_t max_bytes, seg_bytes;
  uint64_t id;

  pthread_mutex_t mu; /* everything below up to rmu */
  struct seg *segs;
  size_t nsegs, segcap;
  int wfd;            /* the active (last) segment, or -1 */
  unsigned char *wbuf;
  size_t wlen, wcap;
  uint64_t wbuf_last; /* seq of the last buffered record */
  uint64_t next_seq;
  uint64_t durable;
  uint64_t total;     /* bytes in segment files */
  uint64_t committed; /* written with rmu and mu held */
  bool dir_dirty, broken;
  uint64_t corrupt_hint_seg; /* segment found corrupt at open (0 = none) */
  uint64_t corrupt_hint_off;

  pthread_mutex_t rmu; /* consumer */
  uint64_t cur_seg, cur_off; /* position of the first record > committed */
  int rfd;
  uint64_t rfd_seg;
  unsigned char *rbuf;
  size_t rcap, rlen;
  uint64_t roff;       /* file offset of rbuf[0] */
  struct bpos *bp;     /* positions of the last batch */
  size_t nbp, bpcap;
  bool corrupt;
  uint64_t corrupt_seg, corrupt_off;
  char corrupt_msg[256];
};

static void seg_name(char *buf, uint64_t first)
{
  snprintf(buf, SEG_NAME_LEN, "seg-%020" PRIu64 ".log", first);
}

static enum err_code fsync_dir(struct spool *sp, struct err *e)
{
  if (fsync(sp->dirfd) != 0)
    return err_set(e, ERR_IO, "spool %s: fsync of the directory: %s",
                   sp->dir, strerror(errno));
  return ERR_OK;
}

/* ---- cursor file ----------------------------------------------------- */

static enum err_code cursor_write(struct spool *sp, uint64_t committed,
                                  struct err *e)
{
  char buf[96];
  int n = snprintf(buf, sizeof(buf), "id=%016" PRIx64 "\ncommitted=%" PRIu64
                   "\n", sp->id, committed);
  int fd = openat(sp->dirfd, "cursor.tmp",
                  O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0)
    return err_set(e, ERR_IO, "spool %s/cursor.tmp: %s", sp->dir,
                   strerror(errno));
  bool ok = write(fd, buf, (size_t)n) == n && fsync(fd) == 0;
  int saved = errno;
  close(fd);
  if (!ok)
    return err_set(e, ERR_IO, "spool %s/cursor.tmp: write: %s", sp->dir,
                   strerror(saved));
  if (renameat(sp->dirfd, "cursor.tmp", sp->dirfd, "cursor") != 0)
    return err_set(e, ERR_IO, "spool %s/cursor: rename: %s", sp->dir,
                   strerror(errno));
  return fsync_dir(sp, e);
}

static enum err_code cursor_read(struct spool *sp, bool *found, struct err *e)
{
  *found = false;
  int fd = openat(sp->dirfd, "cursor", O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return ERR_OK;
    return err_set(e, ERR_IO, "spool %s/cursor: %s", sp->dir, strerror(errno));
  }
  char buf[128];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n < 0)
    return err_set(e, ERR_IO, "spool %s/cursor: %s", sp->dir, strerror(errno));
  buf[n] = '\0';
  uint64_t id, committed;
  if (sscanf(buf, "id=%" SCNx64 "\ncommitted=%" SCNu64, &id, &committed) != 2)
    return err_set(e, ERR_PARSE, "spool %s/cursor: expected \"id=HEX\\n"
                   "committed=N\\n\"", sp->dir);
  sp->id = id;
  sp->committed = committed;
  *found = true;
  return ERR_OK;
}

/* ---- record validation ----------------------------------------------- */

/* Is there a valid record at p (avail bytes) with seq > after?  Returns
 * its total size, or 0. */
static size_t rec_valid(const unsigned char *p, size_t avail, uint64_t after,
                        uint64_t *seq_out)
{
  if (avail < HDR + TRAILER || get32(p) != SPOOL_MAGIC)
    return 0;
  uint32_t len = get32(p + 4);
  if (len > SPOOL_MAX_RECORD || (size_t)len + HDR + TRAILER > avail)
    return 0;
  uint64_t seq = get64(p + 8);
  if (seq <= after)
    return 0;
  if (spool_crc32c(0, p, HDR + len) != get32(p + HDR + len))
    return 0;
  *seq_out = seq;
  return HDR + (size_t)len + TRAILER;
}

/* A whole segment.  It holds at most seg_bytes, or one record when that
 * record alone is larger; the cap stops garbage appended by something
 * else from being read whole. */
static enum err_code read_file(struct spool *sp, const char *name,
                               unsigned char **out, size_t *len,
                               struct err *e)
{
  char path[PATH_MAX];
  int n = snprintf(path, sizeof(path), "%s/%s", sp->dir, name);
  if (n < 0 || (size_t)n >= sizeof(path))
    return err_set(e, ERR_INVAL, "spool %s/%s: path too long", sp->dir, name);
  size_t cap = (size_t)sp->seg_bytes + HDR + SPOOL_MAX_RECORD + TRAILER;
  char *buf;
  enum err_code rc = fsx_read(path, cap, 0, &buf, len, e);
  if (rc) {
    err_prefix(e, "spool");
    return rc;
  }
  *out = (unsigned char *)buf;
  return ERR_OK;
}

/* Scan the last segment at open: find its last seq, cut a torn tail, or
 * note corruption with valid records after it. */
static enum err_code recover_last(struct spool *sp, struct seg *s,
                                  struct err *e)
{
  char name[SEG_NAME_LEN];
  seg_name(name, s->first);
  unsigned char *buf;
  size_t len;
  enum err_code rc = read_file(sp, name, &buf, &len, e);
  if (rc)
    return rc;
  size_t off = 0;
  uint64_t last = s->first - 1, seq;
  size_t k;
  while (off < len && (k = rec_valid(buf + off, len - off, last, &seq))) {
    last = seq;
    off += k;
  }
  if (off < len) {
    /* Anything valid further on?  Then this is not a torn tail. */
    size_t bad = off, next = 0;
    uint64_t after = last;
    for (size_t p = bad + 1; p + HDR + TRAILER <= len; p++)
      if (buf[p] == (SPOOL_MAGIC & 0xFF)
          && (k = rec_valid(buf + p, len - p, after, &seq))) {
        next = p;
        break;
      }
    if (next) {
      /* Find the highest seq after the damage so new seqs stay above. */
      size_t p = next;
      while (p < len && (k = rec_valid(buf + p, len - p, last, &seq))) {
        last = seq;
        p += k;
      }
      LOG_E("spool", "corrupt record in %s/%s at offset %zu with valid "
            "records after it: kept for inspection; the reader stops there "
            "(spool_quarantine to go on)", sp->dir, name, bad);
      sp->corrupt_hint_seg = s->first;
      sp->corrupt_hint_off = bad;
      s->last = last;
      free(buf);
      return ERR_OK;
    }
    int fd = openat(sp->dirfd, name, O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ftruncate(fd, (off_t)bad) != 0 || fsync(fd) != 0) {
      int saved = errno;
      if (fd >= 0)
        close(fd);
      free(buf);
      return err_set(e, ERR_IO, "spool %s/%s: cannot cut torn tail: %s",
                     sp->dir, name, strerror(saved));
    }
    close(fd);
    LOG_W("spool", "cut torn tail of %s/%s: %zu byte(s) at offset %zu "
          "(an append that was never synced)", sp->dir, name, len - bad, bad);
    len = bad;
  }
  free(buf);
  s->size = len;
  s->synced = len;
  s->last = last >= s->first ? last : 0;
  return ERR_OK;
}

static int seg_cmp(const void *a, const void *b)
{
  const struct seg *x = a, *y = b;
  return x->first < y->first ? -1 : x->first > y->first;
}

static enum err_code seg_push(struct spool *sp, uint64_t first, struct err *e)
{
  if (VEC_RESERVE(sp->segs, sp->segcap, sp->nsegs + 1))
    return err_set(e, ERR_NOMEM, "spool: out of memory");
  struct seg *s = &sp->segs[sp->nsegs++];
  memset(s, 0, sizeof(*s));
  s->first = first;
  return ERR_OK;
}

static void seg_remove(struct spool *sp, size_t i)
{
  sp->total -= sp->segs[i].size;
  memmove(&sp->segs[i], &sp->segs[i + 1],
          (sp->nsegs - i - 1) * sizeof(sp->segs[0]));
  sp->nsegs--;
}

static enum err_code load_segments(struct spool *sp, struct err *e)
{
  DIR *d = fdopendir(dup(sp->dirfd));
  if (!d)
    return err_set(e, ERR_IO, "spool %s: %s", sp->dir, strerror(errno));
  struct dirent *de;
  enum err_code rc = ERR_OK;
  while (!rc && (de = readdir(d))) {
    uint64_t first;
    char tail[8];
    if (sscanf(de->d_name, "seg-%20" SCNu64 ".%7s", &first, tail) != 2
        || strcmp(tail, "log") != 0 || first == 0)
      continue;
    char want[SEG_NAME_LEN];
    seg_name(want, first);
    if (strcmp(want, de->d_name) != 0)
      continue;
    struct stat st;
    if (fstatat(sp->dirfd, de->d_name, &st, 0) != 0) {
      rc = err_set(e, ERR_IO, "spool %s/%s: %s", sp->dir, de->d_name,
                   strerror(errno));
      break;
    }
    rc = seg_push(sp, first, e);
    if (!rc) {
      sp->segs[sp->nsegs - 1].size = (uint64_t)st.st_size;
      sp->segs[sp->nsegs - 1].synced = (uint64_t)st.st_size;
      sp->total += (uint64_t)st.st_size;
    }
  }
  closedir(d);
  if (rc)
    return rc;
  if (sp->nsegs > 1)
    qsort(sp->segs, sp->nsegs, sizeof(sp->segs[0]), seg_cmp);
  return ERR_OK;
}

/* Delete segments whose every record is <= committed.  Caller holds mu
 * and rmu (or is spool_create). */
static void do_delete_consumed(struct spool *sp)
{
  while (sp->nsegs > 0) {
    struct seg *s = &sp->segs[0];
    bool last = sp->nsegs == 1;
    uint64_t top = last ? s->last : sp->segs[1].first - 1;
    if (last && (s->last == 0 || sp->wlen > 0))
      break; /* empty or still being filled */
    if (top > sp->committed)
      break;
    if (sp->corrupt_hint_seg == s->first)
      break; /* keep damaged files for inspection */
    if (sp->corrupt && sp->corrupt_seg == s->first)
      break; /* the reader stopped at damage in it: kept for quarantine */
    if (last && sp->wfd >= 0) {
      close(sp->wfd);
      sp->wfd = -1;
    }
    char name[SEG_NAME_LEN];
    seg_name(name, s->first);
    if (unlinkat(sp->dirfd, name, 0) != 0 && errno != ENOENT) {
      LOG_W("spool", "cannot delete %s/%s: %s", sp->dir, name,
            strerror(errno));
      break;
    }
    seg_remove(sp, 0);
  }
}

/* ---- open / close ---------------------------------------------------- */

void spool_opts_defaults(struct spool_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->dir = "var/spool";
  o->max_bytes = (uint64_t)256 << 20;
  o->segment_bytes = (uint64_t)8 << 20;
}

static enum err_code mkdir_p(const char *dir, struct err *e)
{
  char tmp[4096];
  if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
    return err_set(e, ERR_INVAL, "spool: directory name too long");
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
      return err_set(e, ERR_IO, "spool: mkdir %s: %s", tmp, strerror(errno));
    *p = '/';
  }
  if (mkdir(tmp, 0750) != 0 && errno != EEXIST)
    return err_set(e, ERR_IO, "spool: mkdir %s: %s", tmp, strerror(errno));
  return ERR_OK;
}

static enum err_code open_active(struct spool *sp, struct err *e)
{
  struct seg *s = &sp->segs[sp->nsegs - 1];
  char name[SEG_NAME_LEN];
  seg_name(name, s->first);
  sp->wfd = openat(sp->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (sp->wfd < 0)
    return err_set(e, ERR_IO, "spool %s/%s: %s", sp->dir, name,
                   strerror(errno));
  /* What a crashed process left in the page cache is made durable before
   * the reader may hand it out. */
  if (fdatasync(sp->wfd) != 0)
    return err_set(e, ERR_IO, "spool %s/%s: fdatasync: %s", sp->dir, name,
                   strerror(errno));
  return ERR_OK;
}

enum err_code spool_create(struct spool **out, const struct spool_opts *o,
                           struct err *e)
{
  *out = NULL;
  if (!o->dir || !*o->dir)
    return err_set(e, ERR_INVAL, "spool: no directory");
  if (o->max_bytes < 4096 || o->segment_bytes < 4096)
    return err_set(e, ERR_INVAL, "spool %s: max_bytes and segment_bytes must "
                   "be >= 4096", o->dir);
  enum err_code rc = mkdir_p(o->dir, e);
  if (rc)
    return rc;
  struct spool *sp = calloc(1, sizeof(*sp));
  if (!sp || !(sp->dir = strdup(o->dir))) {
    free(sp);
    return err_set(e, ERR_NOMEM, "spool: out of memory");
  }
  pthread_mutex_init(&sp->mu, NULL);
  pthread_mutex_init(&sp->rmu, NULL);
  sp->max_bytes = o->max_bytes;
  sp->seg_bytes = o->segment_bytes;
  sp->wfd = -1;
  sp->rfd = -1;
  sp->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sp->dirfd < 0) {
    rc = err_set(e, ERR_IO, "spool %s: %s", o->dir, strerror(errno));
    goto fail;
  }
  bool found;
  if ((rc = cursor_read(sp, &found, e)) || (rc = load_segments(sp, e)))
    goto fail;
  unlinkat(sp->dirfd, "cursor.tmp", 0);
  if (!found) {
    if (getrandom(&sp->id, sizeof(sp->id), 0) != sizeof(sp->id)) {
      rc = err_set(e, ERR_IO, "spool %s: getrandom: %s", o->dir,
                   strerror(errno));
      goto fail;
    }
    if (sp->nsegs)
      LOG_W("spool", "%s has segments but no cursor file: replaying all of "
            "them under a new spool id", o->dir);
    if ((rc = cursor_write(sp, 0, e)))
      goto fail;
  }
  /* The last segment may carry a torn tail; the others were synced
   * whole before the next one was created. */
  if (sp->nsegs) {
    struct seg *s = &sp->segs[sp->nsegs - 1];
    uint64_t before = s->size;
    if ((rc = recover_last(sp, s, e)))
      goto fail;
    sp->total -= before - s->size;
  }
  do_delete_consumed(sp);
  uint64_t top = sp->committed;
  if (sp->nsegs) {
    struct seg *s = &sp->segs[sp->nsegs - 1];
    if (s->last > top)
      top = s->last;
    if (s->first - 1 > top)
      top = s->first - 1;
    if (s->size == 0) { /* created, never written */
      char name[SEG_NAME_LEN];
      seg_name(name, s->first);
      unlinkat(sp->dirfd, name, 0);
      seg_remove(sp, sp->nsegs - 1);
    } else if (sp->corrupt_hint_seg != s->first) {
      if ((rc = open_active(sp, e)))
        goto fail;
    }
  }
  sp->next_seq = top + 1;
  sp->durable = top;
  sp->cur_seg = sp->nsegs ? sp->segs[0].first : 0;
  sp->cur_off = 0;
  LOG_I("spool", "opened dir=%s segments=%zu bytes=%" PRIu64 " committed=%"
        PRIu64 " next_seq=%" PRIu64, sp->dir, sp->nsegs, sp->total,
        sp->committed, sp->next_seq);
  *out = sp;
  return ERR_OK;
fail:
  spool_destroy(sp);
  return rc;
}

/* ---- writing --------------------------------------------------------- */

/* Write the buffer to the active segment.  On failure the partial write
 * is cut off again and the buffered records are dropped.  Caller holds
 * mu. */
static enum err_code do_flush(struct spool *sp, struct err *e)
{
  if (sp->wlen == 0)
    return ERR_OK;
  struct seg *s = &sp->segs[sp->nsegs - 1];
  size_t done = 0;
  while (done < sp->wlen) {
    ssize_t k = write(sp->wfd, sp->wbuf + done, sp->wlen - done);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      int saved = k < 0 ? errno : EIO;
      char name[SEG_NAME_LEN];
      seg_name(name, s->first);
      if (ftruncate(sp->wfd, (off_t)s->size) != 0) {
        sp->broken = true;
        LOG_E("spool", "%s/%s: cannot undo a failed write: %s; spool "
              "disabled until reopened", sp->dir, name, strerror(errno));
      }
      sp->wlen = 0;
      return err_set(e, ERR_IO, "spool %s/%s: write: %s", sp->dir, name,
                     strerror(saved));
    }
    done += (size_t)k;
  }
  s->size += sp->wlen;
  sp->total += sp->wlen;
  s->last = sp->wbuf_last;
  sp->wlen = 0;
  return ERR_OK;
}

/* Flush and fsync the active segment.  Caller holds mu. */
static enum err_code do_sync(struct spool *sp, struct err *e)
{
  if (sp->broken)
    return err_set(e, ERR_IO, "spool %s: disabled after a write error",
                   sp->dir);
  if (sp->wfd < 0)
    return ERR_OK;
  enum err_code rc = do_flush(sp, e);
  if (rc)
    return rc;
  struct seg *s = &sp->segs[sp->nsegs - 1];
  if (s->synced != s->size || sp->dir_dirty) {
    if (fdatasync(sp->wfd) != 0) {
      /* After a failed fsync the kernel may have dropped the dirty pages:
       * what is on disk is unknown until the file is read again. */
      sp->broken = true;
      return err_set(e, ERR_IO, "spool %s: fdatasync: %s (spool disabled "
                     "until reopened)", sp->dir, strerror(errno));
    }
    if (sp->dir_dirty) {
      if ((rc = fsync_dir(sp, e))) {
        sp->broken = true;
        return rc;
      }
      sp->dir_dirty = false;
    }
    s->synced = s->size;
  }
  if (s->last > sp->durable)
    sp->durable = s->last;
  return ERR_OK;
}

static enum err_code new_segment(struct spool *sp, struct err *e)
{
  enum err_code rc;
  if (sp->wfd >= 0) {
    if ((rc = do_sync(sp, e)))
      return rc;
    close(sp->wfd);
    sp->wfd = -1;
  }
  char name[SEG_NAME_LEN];
  seg_name(name, sp->next_seq);
  int fd = openat(sp->dirfd, name,
                  O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0)
    return err_set(e, ERR_IO, "spool %s/%s: create: %s", sp->dir, name,
                   strerror(errno));
  if ((rc = seg_push(sp, sp->next_seq, e))) {
    close(fd);
    unlinkat(sp->dirfd, name, 0);
    return rc;
  }
  sp->wfd = fd;
  sp->dir_dirty = true;
  return ERR_OK;
}

enum err_code spool_append(struct spool *sp, const void *data, size_t len,
                           uint64_t *seq_out, struct err *e)
{
  if (len > SPOOL_MAX_RECORD)
    return err_set(e, ERR_INVAL, "spool: record of %zu bytes (max %zu)", len,
                   SPOOL_MAX_RECORD);
  size_t rec = HDR + len + TRAILER;
  enum err_code rc = ERR_OK;
  pthread_mutex_lock(&sp->mu);
  if (sp->broken) {
    rc = err_set(e, ERR_IO, "spool %s: disabled after a write error",
                 sp->dir);
    goto out;
  }
  if (sp->total + sp->wlen + rec > sp->max_bytes) {
    rc = err_set(e, ERR_FULL, "spool %s: full (%" PRIu64 " of %" PRIu64
                 " bytes)", sp->dir, sp->total + sp->wlen, sp->max_bytes);
    goto out;
  }
  if (sp->wfd < 0
      || (sp->segs[sp->nsegs - 1].size + sp->wlen > 0
          && sp->segs[sp->nsegs - 1].size + sp->wlen + rec > sp->seg_bytes)) {
    if ((rc = new_segment(sp, e)))
      goto out;
  }
  if (VEC_RESERVE(sp->wbuf, sp->wcap, sp->wlen + rec)) {
    rc = err_set(e, ERR_NOMEM, "spool: out of memory");
    goto out;
  }
  uint64_t seq = sp->next_seq++;
  unsigned char *p = sp->wbuf + sp->wlen;
  put32(p, SPOOL_MAGIC);
  put32(p + 4, (uint32_t)len);
  put64(p + 8, seq);
  if (len)
    memcpy(p + HDR, data, len);
  put32(p + HDR + len, spool_crc32c(0, p, HDR + len));
  sp->wlen += rec;
  sp->wbuf_last = seq;
  if (seq_out)
    *seq_out = seq;
  if (sp->wlen >= FLUSH_AT)
    rc = do_flush(sp, e);
out:
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

enum err_code spool_sync(struct spool *sp, struct err *e)
{
  pthread_mutex_lock(&sp->mu);
  enum err_code rc = do_sync(sp, e);
  pthread_mutex_unlock(&sp->mu);
  return rc;
}

/* ---- reading --------------------------------------------------------- */

struct snap {
  bool ok;           /* a segment at or after the cursor exists */
  uint64_t first;    /* the segment read */
  uint64_t limit;    /* readable bytes */
  bool more;         /* a later segment exists */
  uint64_t next_first;
  uint64_t durable;
};

/* Where does the reader stand?  Takes mu. */
static struct snap snapshot(struct spool *sp, uint64_t seg_first)
{
  struct snap sn = {0};
  pthread_mutex_lock(&sp->mu);
  sn.durable = sp->durable;
  for (size_t i = 0; i < sp->nsegs; i++) {
    struct seg *s = &sp->segs[i];
    if (s->first < seg_first)
      continue;
    bool active = i == sp->nsegs - 1 && sp->wfd >= 0;
    sn.ok = true;
    sn.first = s->first;
    sn.limit = active ? s->synced : s->size;
    sn.more = i + 1 < sp->nsegs;
    sn.next_first = sn.more ? sp->segs[i + 1].first : 0;
    break;
  }
  pthread_mutex_unlock(&sp->mu);
  return sn;
}

/* Make bytes [off, off+n) of segment seg readable; NULL on a read error
 * (e set) or if the file is shorter (e untouched, *short_read set). */
static const unsigned char *rd_get(struct spool *sp, uint64_t seg,
                                   uint64_t off, size_t n, uint64_t limit,
                                   bool *short_read, struct err *e)
{
  *short_read = false;
  if (sp->rfd < 0 || sp->rfd_seg != seg) {
    if (sp->rfd >= 0)
      close(sp->rfd);
    char name[SEG_NAME_LEN];
    seg_name(name, seg);
    sp->rfd = openat(sp->dirfd, name, O_RDONLY | O_CLOEXEC);
    sp->rlen = 0;
    if (sp->rfd < 0) {
      err_set(e, ERR_IO, "spool %s/%s: %s", sp->dir, name, strerror(errno));
      return NULL;
    }
    sp->rfd_seg = seg;
  }
  if (off >= sp->roff && off + n <= sp->roff + sp->rlen)
    return sp->rbuf + (off - sp->roff);
  if (off + n > limit) {
    *short_read = true;
    return NULL;
  }
  size_t want = n > READ_CHUNK ? n : READ_CHUNK;
  if (off + want > limit)
    want = (size_t)(limit - off);
  if (want > sp->rcap) {
    unsigned char *nb = realloc(sp->rbuf, want);
    if (!nb) {
      err_set(e, ERR_NOMEM, "spool: out of memory");
      return NULL;
    }
    sp->rbuf = nb;
    sp->rcap = want;
  }
  size_t got = 0;
  while (got < want) {
    ssize_t k = pread(sp->rfd, sp->rbuf + got, want - got, (off_t)(off + got));
    if (k < 0 && errno == EINTR)
      continue;
    if (k < 0) {
      sp->rlen = 0;
      err_set(e, ERR_IO, "spool %s: read: %s", sp->dir, strerror(errno));
      return NULL;
    }
    if (k == 0)
      break;
    got += (size_t)k;
  }
  sp->roff = off;
  sp->rlen = got;
  if (got < n) {
    *short_read = true;
    return NULL;
  }
  return sp->rbuf;
}

static enum err_code mark_corrupt(struct spool *sp, uint64_t seg,
                                  uint64_t off, const char *why,
                                  struct err *e)
{
  char name[SEG_NAME_LEN];
  seg_name(name, seg);
  if (!sp->corrupt) {
    sp->corrupt = true;
    sp->corrupt_seg = seg;
    sp->corrupt_off = off;
    snprintf(sp->corrupt_msg, sizeof(sp->corrupt_msg),
             "spool %s/%s: corrupt record at offset %" PRIu64 " (%s); file "
             "kept, reader stopped (spool_quarantine to skip the segment)",
             sp->dir, name, off, why);
    LOG_E("spool", "%s", sp->corrupt_msg);
  }
  return err_set(e, ERR_PARSE, "%s", sp->corrupt_msg);
}

/* Walk the records after the cursor: deliver up to max with seq <= upto
 * to fn (NULL = just walk), recording their positions in sp->bp.  Caller
 * holds rmu.  Records at or below committed are skipped, and the cursor
 * moves past them. */
static enum err_code walk(struct spool *sp, size_t max, uint64_t upto,
                          spool_record_fn fn, void *arg, size_t *n_out,
                          struct err *e)
{
  size_t n = 0;
  uint64_t seg = sp->cur_seg, off = sp->cur_off;
  uint64_t last = sp->committed;
  bool delivered = false;
  enum err_code rc = ERR_OK;
  sp->nbp = 0;
  if (sp->corrupt) {
    *n_out = 0;
    return err_set(e, ERR_PARSE, "%s", sp->corrupt_msg);
  }
  while (n < max) {
    struct snap sn = snapshot(sp, seg);
    if (!sn.ok)
      break;
    if (sn.first != seg) { /* the cursor's segment is gone: next one */
      seg = sn.first;
      off = 0;
    }
    if (off >= sn.limit) {
      if (!sn.more)
        break;
      if (off > sn.limit) {
        rc = mark_corrupt(sp, seg, sn.limit, "file shorter than expected", e);
        break;
      }
      seg = sn.next_first;
      off = 0;
      continue;
    }
    bool short_read;
    const unsigned char *h = rd_get(sp, seg, off, HDR, sn.limit, &short_read,
                                    e);
    if (!h) {
      rc = short_read ? mark_corrupt(sp, seg, off, "truncated header", e)
                      : e->code;
      break;
    }
    uint32_t len = get32(h + 4);
    uint64_t seq = get64(h + 8);
    if (get32(h) != SPOOL_MAGIC) {
      rc = mark_corrupt(sp, seg, off, "bad magic", e);
      break;
    }
    if (len > SPOOL_MAX_RECORD) {
      rc = mark_corrupt(sp, seg, off, "bad length", e);
      break;
    }
    size_t total = HDR + (size_t)len + TRAILER;
    const unsigned char *p = rd_get(sp, seg, off, total, sn.limit,
                                    &short_read, e);
    if (!p) {
      rc = short_read ? mark_corrupt(sp, seg, off, "truncated record", e)
                      : e->code;
      break;
    }
    if (spool_crc32c(0, p, HDR + len) != get32(p + HDR + len)) {
      rc = mark_corrupt(sp, seg, off, "bad checksum", e);
      break;
    }
    if (seq <= last && !(seq <= sp->committed)) {
      rc = mark_corrupt(sp, seg, off, "sequence went backwards", e);
      break;
    }
    /* A segment is named after its first seq: a record of an earlier
     * segment at or past the next one's first is damage, not a record
     * waiting to become durable (that would stall the reader). */
    if (sn.more && seq >= sn.next_first) {
      rc = mark_corrupt(sp, seg, off, "sequence beyond the next segment", e);
      break;
    }
    if (seq > sn.durable || seq > upto)
      break;
    if (seq <= sp->committed) { /* consumed before: move the cursor on */
      off += total;
      if (!delivered) {
        sp->cur_seg = seg;
        sp->cur_off = off;
      }
      continue;
    }
    if (fn && fn(arg, seq, p + HDR, len) != 0)
      break;
    last = seq;
    off += total;
    delivered = true;
    if (VEC_PUSH(sp->bp, sp->nbp, sp->bpcap, ((struct bpos){seq, seg, off}))) {
      rc = err_set(e, ERR_NOMEM, "spool: out of memory");
      break;
    }
    n++;
  }
  *n_out = n;
  /* Records delivered before a problem are a success; the problem is
   * reported by the next call, which starts at it. */
  if (rc && n > 0)
    rc = ERR_OK;
  return rc;
}

enum err_code spool_next_batch(struct spool *sp, size_t max,
                               spool_record_fn fn, void *arg, size_t *n_out,
                               struct err *e)
{
  struct err tmp;
  if (!e)
    e = &tmp;
  size_t n = 0;
  pthread_mutex_lock(&sp->rmu);
  enum err_code rc = walk(sp, max, UINT64_MAX, fn, arg, &n, e);
  pthread_mutex_unlock(&sp->rmu);
  if (n_out)
    *n_out = n;
  return rc;
}

/* Persist committed = seq and delete what is consumed.  Caller holds rmu. */
static enum err_code do_commit(struct spool *sp, uint64_t seq, uint64_t seg,
                               uint64_t off, struct err *e)
{
  enum err_code rc = cursor_write(sp, seq, e);
  if (rc)
    return rc;
  sp->cur_seg = seg;
  sp->cur_off = off;
  sp->nbp = 0;
  pthread_mutex_lock(&sp->mu);
  sp->committed = seq;
  do_delete_consumed(sp);
  pthread_mutex_unlock(&sp->mu);
  return ERR_OK;
}

enum err_code spool_commit(struct spool *sp, uint64_t seq, struct err *e)
{
  struct err tmp;
  if (!e)
    e = &tmp;
  enum err_code rc = ERR_OK;
  pthread_mutex_lock(&sp->rmu);
  if (seq <= sp->committed)
    goto out;
  pthread_mutex_lock(&sp->mu);
  uint64_t durable = sp->durable;
  pthread_mutex_unlock(&sp->mu);
  if (seq > durable) {
    rc = err_set(e, ERR_INVAL, "spool %s: commit of %" PRIu64 " beyond the "
                 "last durable record %" PRIu64, sp->dir, seq, durable);
    goto out;
  }
  /* The cursor position only has to be at or before the first record
   * above seq: the reader skips records <= committed as it meets them.  So
   * take the furthest delivered record <= seq, else keep the position. */
  uint64_t seg = sp->cur_seg, off = sp->cur_off;
  for (size_t i = sp->nbp; i-- > 0;)
    if (sp->bp[i].seq <= seq) {
      seg = sp->bp[i].seg_first;
      off = sp->bp[i].end;
      break;
    }
  rc = do_commit(sp, seq, seg, off, e);
out:
  pthread_mutex_unlock(&sp->rmu);
  return rc;
}

enum err_code spool_quarantine(struct spool *sp, struct err *e)
{
  enum err_code rc = ERR_OK;
  pthread_mutex_lock(&sp->rmu);
  if (!sp->corrupt) {
    rc = err_set(e, ERR_STATE, "spool %s: the reader is not stopped at a "
                 "corrupt record", sp->dir);
    goto out;
  }
  char name[SEG_NAME_LEN], to[SEG_NAME_LEN + 8];
  seg_name(name, sp->corrupt_seg);
  snprintf(to, sizeof(to), "%s.corrupt", name);
  if (sp->rfd >= 0) {
    close(sp->rfd);
    sp->rfd = -1;
  }
  pthread_mutex_lock(&sp->mu);
  size_t i;
  for (i = 0; i < sp->nsegs && sp->segs[i].first != sp->corrupt_seg; i++)
    ;
  if (i == sp->nsegs) {
    pthread_mutex_unlock(&sp->mu);
    rc = err_set(e, ERR_INTERNAL, "spool %s: corrupt segment %s vanished",
                 sp->dir, name);
    goto out;
  }
  if (i == sp->nsegs - 1 && sp->wfd >= 0) {
    /* the damaged segment is the one being written: close it for good */
    if ((rc = do_sync(sp, e))) {
      pthread_mutex_unlock(&sp->mu);
      goto out;
    }
    close(sp->wfd);
    sp->wfd = -1;
  }
  if (renameat(sp->dirfd, name, sp->dirfd, to) != 0) {
    pthread_mutex_unlock(&sp->mu);
    rc = err_set(e, ERR_IO, "spool %s: rename %s: %s", sp->dir, name,
                 strerror(errno));
    goto out;
  }
  uint64_t skip_to = i + 1 < sp->nsegs ? sp->segs[i + 1].first - 1
                                       : sp->next_seq - 1;
  if (sp->segs[i].last > skip_to)
    skip_to = sp->segs[i].last;
  seg_remove(sp, i);
  if (sp->corrupt_hint_seg == sp->corrupt_seg)
    sp->corrupt_hint_seg = 0;
  uint64_t next_seg = i < sp->nsegs ? sp->segs[i].first : 0;
  pthread_mutex_unlock(&sp->mu);
  LOG_W("spool", "quarantined %s/%s as %s: records after offset %" PRIu64
        " up to seq %" PRIu64 " given up", sp->dir, name, to,
        sp->corrupt_off, skip_to);
  sp->corrupt = false;
  if (skip_to < sp->committed)
    skip_to = sp->committed;
  rc = do_commit(sp, skip_to, next_seg ? next_seg : sp->corrupt_seg + 1, 0, e);
out:
  pthread_mutex_unlock(&sp->rmu);
  return rc;
}

/* ---- misc ------------------------------------------------------------ */

uint64_t spool_id(const struct spool *sp) { return sp->id; }

void spool_stats(struct spool *sp, struct spool_stats *st)
{
  memset(st, 0, sizeof(*st));
  pthread_mutex_lock(&sp->mu);
  st->bytes = sp->total + sp->wlen;
  st->max_bytes = sp->max_bytes;
  st->segments = sp->nsegs;
  st->next_seq = sp->next_seq;
  st->committed = sp->committed;
  st->durable = sp->durable;
  /* Only durable records wait for the reader: an append whose write or
   * sync failed (disk full) is dropped and must not look like backlog,
   * or the caller keeps routing new rows to a spool that cannot take
   * them (found by test_fault_disk). */
  st->pending = sp->durable > sp->committed ? sp->durable - sp->committed : 0;
  st->corrupt = sp->corrupt_hint_seg != 0;
  pthread_mutex_unlock(&sp->mu);
  /* the reader's own flag, without waiting for a running batch */
  if (pthread_mutex_trylock(&sp->rmu) == 0) {
    st->corrupt |= sp->corrupt;
    pthread_mutex_unlock(&sp->rmu);
  }
}

void spool_destroy(struct spool *sp)
{
  if (!sp)
    return;
  if (sp->wfd >= 0) {
    struct err e;
    pthread_mutex_lock(&sp->mu);
    if (do_sync(sp, &e))
      LOG_W("spool", "closing: %s", e.msg);
    pthread_mutex_unlock(&sp->mu);
    close(sp->wfd);
  }
  if (sp->rfd >= 0)
    close(sp->rfd);
  if (sp->dirfd >= 0)
    close(sp->dirfd);
  pthread_mutex_destroy(&sp->mu);
  pthread_mutex_destroy(&sp->rmu);
  free(sp->segs);
  free(sp->wbuf);
  free(sp->rbuf);
  free(sp->bp);
  free(sp->dir);
  free(sp);
}
