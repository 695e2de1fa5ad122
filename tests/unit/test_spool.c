/* test_spool.c - spool_: order and replay, restart, torn tail, corruption,
 * full, segment deletion, kill -9 of a writer, a concurrent writer and
 * consumer.  Real files in a temp directory.
 * check: tsan */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/log.h"
#include "mlopsd/spool.h"

/* ---- helpers --------------------------------------------------------- */

static char *mktmp(void)
{
  char *d = strdup("/tmp/mlopsd-spool-test.XXXXXX");
  if (!d || !mkdtemp(d)) {
    free(d);
    return NULL;
  }
  return d;
}

static void rmtree(const char *dir)
{
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *de;
    while ((de = readdir(d))) {
      if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
        continue;
      char p[1024];
      snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
      unlink(p);
    }
    closedir(d);
  }
  rmdir(dir);
}

/* Payload of record seq: its length and bytes follow from seq alone. */
static size_t pay_len(uint64_t seq) { return (size_t)((seq * 37) % 300); }

static void pay_fill(uint64_t seq, unsigned char *p)
{
  for (size_t i = 0; i < pay_len(seq); i++)
    p[i] = (unsigned char)(seq * 13 + i);
}

static bool pay_ok(uint64_t seq, const unsigned char *p, size_t n)
{
  if (n != pay_len(seq))
    return false;
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seq * 13 + i))
      return false;
  return true;
}

static struct spool *open_sp(const char *dir, uint64_t max, uint64_t segb)
{
  struct spool_opts o;
  spool_opts_defaults(&o);
  o.dir = dir;
  if (max)
    o.max_bytes = max;
  if (segb)
    o.segment_bytes = segb;
  struct spool *sp;
  struct err e;
  if (spool_create(&sp, &o, &e)) {
    fprintf(stderr, "spool_create: %s\n", e.msg);
    return NULL;
  }
  return sp;
}

/* Append records with seqs expected to be first..last; sync. */
static bool append_range(struct spool *sp, uint64_t first, uint64_t last)
{
  unsigned char buf[400];
  struct err e;
  for (uint64_t s = first; s <= last; s++) {
    uint64_t got;
    pay_fill(s, buf);
    if (spool_append(sp, buf, pay_len(s), &got, &e) || got != s) {
      fprintf(stderr, "append %" PRIu64 ": %s\n", s, e.msg);
      return false;
    }
  }
  if (spool_sync(sp, &e)) {
    fprintf(stderr, "sync: %s\n", e.msg);
    return false;
  }
  return true;
}

struct collect {
  uint64_t seqs[20000];
  size_t n;
  bool bad_payload;
  size_t stop_after; /* 0 = never */
};

static int on_rec(void *arg, uint64_t seq, const void *data, size_t len)
{
  struct collect *c = arg;
  if (c->stop_after && c->n == c->stop_after)
    return 1;
  if (!pay_ok(seq, data, len))
    c->bad_payload = true;
  if (c->n < sizeof(c->seqs) / sizeof(c->seqs[0]))
    c->seqs[c->n] = seq;
  c->n++;
  return 0;
}

/* Drain everything (batches of max, committing each); returns ERR_*. */
static enum err_code drain(struct spool *sp, size_t max, struct collect *c,
                           bool commit)
{
  struct err e;
  for (;;) {
    size_t n;
    size_t before = c->n;
    enum err_code rc = spool_next_batch(sp, max, on_rec, c, &n, &e);
    if (rc)
      return rc;
    if (n == 0)
      return ERR_OK;
    if (c->n - before != n)
      return ERR_INTERNAL;
    if (!commit)
      return ERR_OK;
    if ((rc = spool_commit(sp, c->seqs[c->n - 1], &e)))
      return rc;
  }
}

static bool seqs_are(const struct collect *c, uint64_t first, uint64_t last)
{
  if (c->n != last - first + 1)
    return false;
  for (size_t i = 0; i < c->n; i++)
    if (c->seqs[i] != first + i)
      return false;
  return !c->bad_payload;
}

/* A fresh directory with a spool opened in it (max_bytes MAX, segments
 * SEGB, 0: the defaults) that took seqs 1..N (none when 0): the directory,
 * or NULL after a failed check.  The spool goes to *SP, or is closed when
 * SP is NULL.  spool_done() frees what a test made. */
static char *spool_in_tmp(uint64_t max, uint64_t segb, uint64_t n,
                          struct spool **sp)
{
  char *dir = mktmp();
  if (sp)
    *sp = NULL;
  if (!dir) {
    check_fail_at(__FILE__, __LINE__, "no temporary directory");
    return NULL;
  }
  struct spool *s = open_sp(dir, max, segb);
  if (!s || (n && !append_range(s, 1, n))) {
    check_fail_at(__FILE__, __LINE__, "no spool with seqs 1..%llu in %s",
                  (unsigned long long)n, dir);
    spool_destroy(s);
    rmtree(dir);
    free(dir);
    return NULL;
  }
  if (sp)
    *sp = s;
  else
    spool_destroy(s);
  return dir;
}

static void spool_done(char *dir, struct spool *sp, struct collect *c)
{
  free(c);
  spool_destroy(sp);
  rmtree(dir);
  free(dir);
}

/* Drain SP from the cursor into C (emptied first) in batches of MAX,
 * committing each when COMMIT: checks that the drain worked and that the
 * seqs FIRST..LAST came in order, at the caller's LINE. */
#define CHECK_DRAIN(sp, c, max, commit, first, last)                          \
  drained_at(__LINE__, (sp), (c), (max), (commit), (first), (last))
static void drained_at(int line, struct spool *sp, struct collect *c,
                       size_t max, bool commit, uint64_t first, uint64_t last)
{
  c->n = 0;
  enum err_code rc = drain(sp, max, c, commit);
  if (rc != ERR_OK)
    check_fail_at(__FILE__, line, "drain: %s", err_str(rc));
  if (!seqs_are(c, first, last))
    check_fail_at(__FILE__, line, "drained %zu records, not seqs %llu..%llu",
                  c->n, (unsigned long long)first, (unsigned long long)last);
}

static int count_files(const char *dir, const char *suffix)
{
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  while (d && (de = readdir(d))) {
    size_t l = strlen(de->d_name), sl = strlen(suffix);
    if (strncmp(de->d_name, "seg-", 4) == 0 && l > sl
        && strcmp(de->d_name + l - sl, suffix) == 0)
      n++;
  }
  if (d)
    closedir(d);
  return n;
}

static off_t fsize(const char *p);

/* Path of the last (or first) segment file; returns its size (-1: none). */
static off_t seg_path(const char *dir, bool last, char *out, size_t cap)
{
  DIR *d = opendir(dir);
  struct dirent *de;
  char best[300] = "";
  while (d && (de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (strncmp(de->d_name, "seg-", 4) != 0 || l < 5
        || strcmp(de->d_name + l - 4, ".log") != 0)
      continue;
    if (!best[0] || (last ? strcmp(de->d_name, best) > 0
                          : strcmp(de->d_name, best) < 0))
      snprintf(best, sizeof(best), "%s", de->d_name);
  }
  if (d)
    closedir(d);
  snprintf(out, cap, "%s/%s", dir, best);
  return fsize(out);
}

static off_t fsize(const char *p)
{
  struct stat st;
  return stat(p, &st) == 0 ? st.st_size : -1;
}

/* ---- tests ----------------------------------------------------------- */

/* The spool's stats for CHECK_SSTATS(sp, "next_seq=10 corrupt=0"): one
 * check per field named. */
#define F(f) CHECK_FIELD(struct spool_stats, f)
static const struct check_field SSTATS[] = {
    F(bytes), F(max_bytes), F(segments), F(next_seq), F(committed),
    F(durable), F(pending), F(corrupt)};
#undef F
static struct spool_stats sstats(struct spool *sp)
{
  struct spool_stats st;
  spool_stats(sp, &st);
  return st;
}
#define CHECK_SSTATS(sp, want)                                                \
  CHECK_FIELDS(struct spool_stats, sstats(sp), SSTATS, want)

TEST(crc32c_vectors)
{
  CHECK_EQ_INT(spool_crc32c(0, "123456789", 9), 0xE3069283u);
  CHECK_EQ_INT(spool_crc32c(0, "", 0), 0);
  unsigned char buf[1000];
  for (int i = 0; i < 1000; i++)
    buf[i] = (unsigned char)(i * 7 + 3);
  uint32_t whole = spool_crc32c(0, buf, sizeof(buf));
  uint32_t part = spool_crc32c(spool_crc32c(0, buf, 333), buf + 333, 667);
  CHECK_EQ_INT(whole, part);
  /* 32 zero bytes: a published CRC-32C test vector (RFC 3720 B.4) */
  unsigned char z[32] = {0};
  CHECK_EQ_INT(spool_crc32c(0, z, 32), 0x8A9136AAu);
}

TEST(append_replay_order_and_redelivery)
{
  struct spool *sp;
  char *dir = spool_in_tmp(0, 0, 0, &sp);
  REQUIRE(dir);
  struct err e;
  /* not synced: not delivered */
  unsigned char b[400];
  uint64_t seq;
  pay_fill(1, b);
  REQUIRE(spool_append(sp, b, pay_len(1), &seq, &e) == ERR_OK);
  CHECK_EQ_INT(seq, 1);
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  size_t n;
  CHECK_EQ_INT(spool_next_batch(sp, 10, on_rec, c, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(spool_sync(sp, &e), ERR_OK);
  REQUIRE(append_range(sp, 2, 1000));
  /* the same batch twice without commit */
  CHECK_EQ_INT(spool_next_batch(sp, 100, on_rec, c, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 100);
  CHECK(seqs_are(c, 1, 100));
  c->n = 0;
  CHECK_EQ_INT(spool_next_batch(sp, 100, on_rec, c, &n, &e), ERR_OK);
  CHECK(seqs_are(c, 1, 100));
  /* commit in the middle of the batch */
  CHECK_EQ_INT(spool_commit(sp, 50, &e), ERR_OK);
  c->n = 0;
  CHECK_EQ_INT(spool_next_batch(sp, 10, on_rec, c, &n, &e), ERR_OK);
  CHECK(seqs_are(c, 51, 60));
  /* a callback that stops early */
  c->n = 0;
  c->stop_after = 3;
  CHECK_EQ_INT(spool_next_batch(sp, 10, on_rec, c, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 3);
  c->stop_after = 0;
  /* the rest, in order */
  CHECK_DRAIN(sp, c, 77, true, 51, 1000);
  /* commit rules */
  CHECK_EQ_INT(spool_commit(sp, 10, &e), ERR_OK); /* below: no-op */
  CHECK_EQ_INT(spool_commit(sp, 1001, &e), ERR_INVAL);
  /* bytes=0: all consumed, the segment deleted */
  CHECK_SSTATS(sp, "committed=1000 next_seq=1001 pending=0 corrupt=0 bytes=0");
  spool_done(dir, sp, c);
}

TEST(restart_keeps_cursor_and_seq)
{
  struct spool *sp;
  char *dir = spool_in_tmp(0, 0, 500, &sp);
  REQUIRE(dir);
  uint64_t id = spool_id(sp);
  struct err e;
  CHECK_EQ_INT(spool_commit(sp, 200, &e), ERR_OK);
  spool_destroy(sp);

  sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK(spool_id(sp) == id);
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  CHECK_DRAIN(sp, c, 1000, false, 201, 500);
  REQUIRE(append_range(sp, 501, 600));
  CHECK_EQ_INT(spool_commit(sp, 600, &e), ERR_OK);
  spool_destroy(sp);

  /* everything consumed and deleted: seqs still go on */
  sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK_SSTATS(sp, "next_seq=601 segments=0");
  REQUIRE(append_range(sp, 601, 610));
  CHECK_DRAIN(sp, c, 1000, true, 601, 610);
  spool_done(dir, sp, c);
}

static void append_bytes(const char *path, const void *p, size_t n)
{
  int fd = open(path, O_WRONLY | O_APPEND);
  if (fd >= 0) {
    if (write(fd, p, n) != (ssize_t)n)
      fprintf(stderr, "append_bytes: short write\n");
    close(fd);
  }
}

TEST(torn_tail_is_cut)
{
  char *dir = spool_in_tmp(0, 0, 10, NULL);
  REQUIRE(dir);
  char path[1200];
  off_t good = seg_path(dir, true, path, sizeof(path));

  /* 1: random garbage after the last record */
  append_bytes(path, "garbage!garbage!garbage!", 24);
  struct spool *sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK_EQ_INT(fsize(path), good);
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  CHECK_DRAIN(sp, c, 100, false, 1, 10);
  spool_destroy(sp);

  /* 2: a plausible header (right magic, huge length) and a half record */
  unsigned char hdr[16] = {'M', 'S', 'P', 'L', 0xff, 0xff, 0, 0, 11};
  append_bytes(path, hdr, sizeof(hdr));
  sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK_EQ_INT(fsize(path), good);
  spool_destroy(sp);

  /* 3: the last record cut in the middle (a write that never finished) */
  CHECK_EQ_INT(truncate(path, good - 7), 0);
  sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK(fsize(path) < good - 7);
  CHECK_DRAIN(sp, c, 100, false, 1, 9);
  /* the lost seq 10 is not reused: it was never acknowledged by a sync,
   * but a reader elsewhere can never have seen it either */
  CHECK_SSTATS(sp, "next_seq=10");
  REQUIRE(append_range(sp, 10, 12));
  CHECK_DRAIN(sp, c, 100, true, 1, 12);
  spool_done(dir, sp, c);
}

static void flip_byte(const char *path, off_t at)
{
  int fd = open(path, O_RDWR);
  unsigned char b;
  if (fd >= 0 && pread(fd, &b, 1, at) == 1) {
    b ^= 0x5a;
    if (pwrite(fd, &b, 1, at) != 1)
      fprintf(stderr, "flip_byte: write failed\n");
  }
  if (fd >= 0)
    close(fd);
}

/* Offset of record seq in a file holding records first.. (payload sizes
 * are known from pay_len). */
static off_t rec_off(uint64_t first, uint64_t seq)
{
  off_t off = 0;
  for (uint64_t s = first; s < seq; s++)
    off += (off_t)(SPOOL_REC_OVERHEAD + pay_len(s));
  return off;
}

TEST(corruption_in_last_segment_kept_and_reported)
{
  char *dir = spool_in_tmp(0, 0, 20, NULL);
  REQUIRE(dir);
  char path[1200];
  off_t size = seg_path(dir, true, path, sizeof(path));
  flip_byte(path, rec_off(1, 5) + 16 + 2); /* payload of record 5 */

  struct spool *sp = open_sp(dir, 0, 0);
  REQUIRE(sp);
  CHECK_EQ_INT(fsize(path), size); /* not cut: valid records follow */
  CHECK_SSTATS(sp, "corrupt=1 next_seq=21");
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  struct err e;
  size_t n;
  CHECK_EQ_INT(spool_next_batch(sp, 100, on_rec, c, &n, &e), ERR_OK);
  CHECK(seqs_are(c, 1, 4));
  CHECK_EQ_INT(spool_commit(sp, 4, &e), ERR_OK);
  CHECK_EQ_INT(spool_next_batch(sp, 100, on_rec, c, &n, &e), ERR_PARSE);
  CHECK(strstr(e.msg, "bad checksum"));
  CHECK(strstr(e.msg, "seg-00000000000000000001.log"));
  /* it stays stopped, and appends still work (into a new segment) */
  CHECK_EQ_INT(spool_next_batch(sp, 100, on_rec, c, &n, &e), ERR_PARSE);
  REQUIRE(append_range(sp, 21, 25));
  CHECK_EQ_INT(count_files(dir, ".log"), 2);
  /* the operator quarantines the damaged file and the reader goes on */
  CHECK_EQ_INT(spool_quarantine(sp, &e), ERR_OK);
  CHECK_EQ_INT(count_files(dir, ".log.corrupt"), 1);
  CHECK_DRAIN(sp, c, 100, true, 21, 25);
  CHECK_EQ_INT(spool_quarantine(sp, &e), ERR_STATE);
  CHECK_SSTATS(sp, "corrupt=0");
  spool_done(dir, sp, c);
}

TEST(corruption_in_older_segment_found_by_reader)
{
  char *dir = spool_in_tmp(0, 4096, 100, NULL);
  REQUIRE(dir);
  CHECK(count_files(dir, ".log") > 3);
  char path[1200];
  seg_path(dir, false, path, sizeof(path)); /* seg-1 */
  flip_byte(path, rec_off(1, 3) + 9);       /* seq field of record 3 */
  struct spool *sp = open_sp(dir, 0, 4096);
  REQUIRE(sp); /* open only checks the last segment: fine */
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  CHECK_EQ_INT(drain(sp, 1000, c, true), ERR_PARSE);
  CHECK(seqs_are(c, 1, 2));
  struct err e;
  CHECK_EQ_INT(spool_quarantine(sp, &e), ERR_OK);
  c->n = 0;
  CHECK_EQ_INT(drain(sp, 1000, c, true), ERR_OK);
  /* the rest of seg-1 is given up; everything from seg-2 on arrives */
  CHECK(c->n > 0 && c->seqs[c->n - 1] == 100 && !c->bad_payload);
  for (size_t i = 1; i < c->n; i++)
    CHECK(c->seqs[i] == c->seqs[i - 1] + 1);
  spool_done(dir, sp, c);
}

TEST(full_then_room_after_commit)
{
  struct spool *sp;
  char *dir = spool_in_tmp(16384, 4096, 0, &sp);
  REQUIRE(dir);
  unsigned char buf[1000];
  memset(buf, 'f', sizeof(buf));
  struct err e;
  uint64_t seq = 0;
  int ok = 0;
  enum err_code rc;
  while ((rc = spool_append(sp, buf, sizeof(buf), &seq, &e)) == ERR_OK)
    ok++;
  CHECK_EQ_INT(rc, ERR_FULL);
  CHECK(strstr(e.msg, "full"));
  CHECK_EQ_INT(ok, 16384 / (1000 + SPOOL_REC_OVERHEAD));
  CHECK_EQ_INT(spool_sync(sp, &e), ERR_OK);
  struct spool_stats st;
  spool_stats(sp, &st);
  CHECK(st.bytes <= 16384);
  /* still full after a reopen */
  spool_destroy(sp);
  sp = open_sp(dir, 16384, 4096);
  REQUIRE(sp);
  CHECK_EQ_INT(spool_append(sp, buf, sizeof(buf), &seq, &e), ERR_FULL);
  /* consuming frees whole segments */
  CHECK_EQ_INT(spool_commit(sp, 8, &e), ERR_OK);
  CHECK_EQ_INT(spool_append(sp, buf, sizeof(buf), &seq, &e), ERR_OK);
  CHECK_EQ_INT(spool_sync(sp, &e), ERR_OK);
  CHECK_EQ_INT(spool_append(sp, buf, SPOOL_MAX_RECORD + 1, &seq, &e),
               ERR_INVAL);
  spool_done(dir, sp, NULL);
}

TEST(segments_deleted_after_commit)
{
  struct spool *sp;
  char *dir = spool_in_tmp(0, 4096, 200, &sp);
  REQUIRE(dir);
  int before = count_files(dir, ".log");
  CHECK(before >= 8);
  struct err e;
  /* a commit inside the third segment deletes the first two */
  struct collect *c = calloc(1, sizeof(*c));
  REQUIRE(c);
  CHECK_EQ_INT(drain(sp, 1000, c, false), ERR_OK);
  char first[1200];
  seg_path(dir, false, first, sizeof(first));
  uint64_t third = 0;
  {
    /* find the first seq of the third segment from the names */
    DIR *d = opendir(dir);
    struct dirent *de;
    uint64_t firsts[64];
    int nf = 0;
    while (d && (de = readdir(d)))
      if (strncmp(de->d_name, "seg-", 4) == 0 && nf < 64)
        firsts[nf++] = strtoull(de->d_name + 4, NULL, 10);
    if (d)
      closedir(d);
    for (int i = 0; i < nf; i++)
      for (int j = i + 1; j < nf; j++)
        if (firsts[j] < firsts[i]) {
          uint64_t t = firsts[i];
          firsts[i] = firsts[j];
          firsts[j] = t;
        }
    REQUIRE(nf >= 3);
    third = firsts[2];
  }
  CHECK_EQ_INT(spool_commit(sp, third, &e), ERR_OK);
  CHECK_EQ_INT(count_files(dir, ".log"), before - 2);
  CHECK_EQ_INT(fsize(first), -1);
  CHECK_EQ_INT(spool_commit(sp, 200, &e), ERR_OK);
  CHECK_EQ_INT(count_files(dir, ".log"), 0);
  REQUIRE(append_range(sp, 201, 210));
  CHECK_EQ_INT(count_files(dir, ".log"), 1);
  CHECK_DRAIN(sp, c, 1000, true, 201, 210);
  spool_done(dir, sp, c);
}

/* A writer process that appends batches and reports each synced seq on a
 * pipe, until killed.  Big payloads make the kill land inside writes. */
static void child_writer(const char *dir, int ackfd)
{
  log_set_level(LOG_ERROR);
  struct spool *sp = open_sp(dir, (uint64_t)1 << 30, 1 << 20);
  if (!sp)
    _exit(2);
  struct spool_stats st;
  spool_stats(sp, &st);
  uint64_t seq = st.next_seq;
  unsigned char *buf = malloc(70000);
  struct err e;
  for (int batch = 0;; batch++) {
    int k = 1 + batch % 17;
    for (int i = 0; i < k; i++) {
      uint64_t got;
      size_t len = (size_t)((seq * 7919) % 65536);
      for (size_t j = 0; j < len; j++)
        buf[j] = (unsigned char)(seq + j);
      if (spool_append(sp, buf, len, &got, &e) || got != seq)
        _exit(3);
      seq++;
    }
    if (spool_sync(sp, &e))
      _exit(4);
    uint64_t acked = seq - 1;
    if (write(ackfd, &acked, sizeof(acked)) != sizeof(acked))
      _exit(5);
  }
}

struct kcheck {
  uint64_t expect; /* next seq expected */
  bool bad;
};

static int on_krec(void *arg, uint64_t seq, const void *data, size_t len)
{
  struct kcheck *k = arg;
  const unsigned char *p = data;
  if (seq != k->expect || len != (size_t)((seq * 7919) % 65536))
    k->bad = true;
  for (size_t j = 0; j < len && !k->bad; j++)
    if (p[j] != (unsigned char)(seq + j))
      k->bad = true;
  k->expect = seq + 1;
  return 0;
}

TEST(kill9_writer_loses_nothing_acknowledged)
{
  char *dir = mktmp();
  REQUIRE(dir);
  uint64_t committed = 0, max_acked = 0;
  for (int round = 0; round < 4; round++) {
    int pfd[2];
    REQUIRE(pipe(pfd) == 0);
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      close(pfd[0]);
      child_writer(dir, pfd[1]);
      _exit(0);
    }
    close(pfd[1]);
    int acks = 0;
    uint64_t a;
    while (acks < 40 + round * 10 && read(pfd[0], &a, sizeof(a)) == sizeof(a)) {
      max_acked = a;
      acks++;
    }
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    /* acks written before the kill but not read yet count too */
    while (read(pfd[0], &a, sizeof(a)) == sizeof(a))
      max_acked = a;
    close(pfd[0]);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    CHECK(acks > 0);

    struct spool *sp = open_sp(dir, (uint64_t)1 << 30, 1 << 20);
    REQUIRE(sp);
    struct kcheck k = {committed + 1, false};
    struct err e;
    /* one call delivers all (without a commit the next would start over) */
    size_t total = 0;
    CHECK_EQ_INT(spool_next_batch(sp, SIZE_MAX, on_krec, &k, &total, &e),
                 ERR_OK);
    CHECK(!k.bad);
    /* every acknowledged record is there, once, in order */
    CHECK(k.expect - 1 >= max_acked);
    CHECK_EQ_INT(total, k.expect - 1 - committed);
    /* consume up to the middle, as a database writer would */
    uint64_t upto = committed + (k.expect - 1 - committed) / 2;
    if (upto > committed) {
      CHECK_EQ_INT(spool_commit(sp, upto, &e), ERR_OK);
      committed = upto;
    }
    spool_destroy(sp);
  }
  rmtree(dir);
  free(dir);
}

struct conc {
  struct spool *sp;
  uint64_t n;
  uint64_t got;
  bool bad;
};

static void *conc_writer(void *arg)
{
  struct conc *c = arg;
  unsigned char buf[400];
  struct err e;
  for (uint64_t s = 1; s <= c->n; s++) {
    uint64_t got;
    pay_fill(s, buf);
    if (spool_append(c->sp, buf, pay_len(s), &got, &e) || got != s)
      c->bad = true;
    if (s % 50 == 0 && spool_sync(c->sp, &e))
      c->bad = true;
  }
  if (spool_sync(c->sp, &e))
    c->bad = true;
  return NULL;
}

static int conc_rec(void *arg, uint64_t seq, const void *data, size_t len)
{
  struct conc *c = arg;
  if (seq != c->got + 1 || !pay_ok(seq, data, len))
    c->bad = true;
  c->got = seq;
  return 0;
}

static void *conc_reader(void *arg)
{
  struct conc *c = arg;
  struct err e;
  while (c->got < c->n && !c->bad) {
    size_t n;
    if (spool_next_batch(c->sp, 37, conc_rec, c, &n, &e)) {
      c->bad = true;
      break;
    }
    if (n && spool_commit(c->sp, c->got, &e))
      c->bad = true;
    struct spool_stats st;
    spool_stats(c->sp, &st);
  }
  return NULL;
}

TEST(concurrent_writer_and_reader)
{
  char *dir = mktmp();
  REQUIRE(dir);
  struct conc c = {open_sp(dir, 0, 8192), 3000, 0, false};
  REQUIRE(c.sp);
  pthread_t w, r;
  pthread_create(&w, NULL, conc_writer, &c);
  pthread_create(&r, NULL, conc_reader, &c);
  pthread_join(w, NULL);
  pthread_join(r, NULL);
  CHECK(!c.bad);
  CHECK_EQ_INT(c.got, 3000);
  CHECK_EQ_INT(count_files(dir, ".log"), 0);
  spool_destroy(c.sp);
  rmtree(dir);
  free(dir);
}

int main(void)
{
  if (!getenv("MLOPSD_TEST_VERBOSE"))
    log_set_level(LOG_ERROR);
  RUN(crc32c_vectors);
  RUN(append_replay_order_and_redelivery);
  RUN(restart_keeps_cursor_and_seq);
  RUN(torn_tail_is_cut);
  RUN(corruption_in_last_segment_kept_and_reported);
  RUN(corruption_in_older_segment_found_by_reader);
  RUN(full_then_room_after_commit);
  RUN(segments_deleted_after_commit);
  RUN(kill9_writer_loses_nothing_acknowledged);
  RUN(concurrent_writer_and_reader);
  return check_done();
}
