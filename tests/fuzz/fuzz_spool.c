/* fuzz_spool.c - libFuzzer target for the spool record reader (spool.h):
 * the on-disk prediction-log spool read back after a crash, a torn write,
 * disk corruption or a hand-edited directory.
 *
 * Input: [flags][rest].  flags bit 1: rest is [u32 L][u16 F][L bytes of
 * seg-1][seg-F bytes] (two segment files), else rest is seg-1 whole.
 * flags bit 0: a cursor file "id=...\ncommitted=(flags >> 4)" is written
 * too; bit 2: the cursor file holds the first 40 bytes of rest instead.
 * The spool is opened (recovery), drained with spool_next_batch and
 * spool_commit (spool_quarantine at a corrupt record), one record is
 * appended and synced, and the spool is closed and opened again.
 * Checked beyond "no crash": delivered seqs only grow and lie above the
 * cursor, record lengths are in range, commits of delivered seqs
 * succeed, spool_quarantine succeeds wherever the reader reported damage, and after the drain the record appended is delivered after
 * the reopen, with its bytes (and nothing else unless a damaged segment
 * was quarantined on the way).
 *
 * Seeds: MLOPSD_FUZZ_MKSEED=DIR build/fuzz/fuzz_spool writes DIR/seed-*
 * (valid segments, a torn tail, a flipped byte, two segments, a cursor)
 * and exits.
 */
#include "fuzz.h"

#include "mlopsd/spool.h"

static char dir[512];

static size_t put_rec(unsigned char *p, uint64_t seq, const char *payload)
{
  uint32_t len = (uint32_t)strlen(payload);
  uint32_t magic = SPOOL_MAGIC;
  for (int i = 0; i < 4; i++) {
    p[i] = (unsigned char)(magic >> (8 * i));
    p[4 + i] = (unsigned char)(len >> (8 * i));
  }
  for (int i = 0; i < 8; i++)
    p[8 + i] = (unsigned char)(seq >> (8 * i));
  memcpy(p + 16, payload, len);
  uint32_t crc = spool_crc32c(0, p, 16 + len);
  for (int i = 0; i < 4; i++)
    p[16 + len + i] = (unsigned char)(crc >> (8 * i));
  return 16 + len + 4;
}

static void seed(const char *d, const char *name, const void *b, size_t n)
{
  char p[1024];
  snprintf(p, sizeof(p), "%s/%s", d, name);
  fuzz_write(p, b, n);
}

static void mkseed(const char *d)
{
  static const char *const rows[] = {
      "{\"k\":\"3f9c-0001\",\"model\":\"credit_score_classification\","
      "\"v\":3,\"customer_id\":\"4096\",\"predict\":\"Poor\",\"conf\":0.71}",
      "{\"k\":\"3f9c-0002\",\"model\":\"credit_score_classification\","
      "\"v\":3,\"customer_id\":\"4115\",\"predict\":\"Good\",\"conf\":0.64}",
      "", "x",
      "{\"k\":\"3f9c-0005\",\"features\":{\"age\":18,\"occupation\":"
      "\"Lawyer\"}}"};
  unsigned char buf[4096];
  size_t n = 1;
  buf[0] = 0;
  for (int i = 0; i < 5; i++)
    n += put_rec(buf + n, (uint64_t)i + 1, rows[i]);
  seed(d, "seed-one-segment", buf, n);
  seed(d, "seed-torn-tail", buf, n - 3);
  buf[0] = 1 | (2 << 4); /* cursor at 2 */
  seed(d, "seed-cursor", buf, n);
  buf[0] = 0;
  buf[60] ^= 0x20; /* inside record 1: corrupt, valid records after */
  seed(d, "seed-flipped-byte", buf, n);
  buf[60] ^= 0x20;
  /* two segments: seq 1-2 in seg-1, 3-5 in seg-3 */
  unsigned char two[4096];
  size_t l1 = 0, m = 7;
  two[0] = 2;
  for (int i = 0; i < 2; i++)
    l1 += put_rec(two + m + l1, (uint64_t)i + 1, rows[i]);
  size_t l2 = 0;
  for (int i = 2; i < 5; i++)
    l2 += put_rec(two + m + l1 + l2, (uint64_t)i + 1, rows[i]);
  for (int i = 0; i < 4; i++)
    two[1 + i] = (unsigned char)(l1 >> (8 * i));
  two[5] = 3;
  two[6] = 0;
  seed(d, "seed-two-segments", two, m + l1 + l2);
  static const char cur[] = "\004id=00000000deadbeef\ncommitted=4\n";
  seed(d, "seed-cursor-text", cur, sizeof(cur) - 1);
  exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_init_seeds(mkseed);
  snprintf(dir, sizeof(dir), "%s/spool", fuzz_dir("spool"));
  return 0;
}

struct drain {
  struct spool *sp;
  uint64_t last;   /* last seq delivered */
  uint64_t floor;  /* cursor when the batch started */
  size_t n;
  int saw_probe;
  uint64_t probe_seq;
};

static const char probe[] = "probe record after recovery";

static int on_rec(void *arg, uint64_t seq, const void *data, size_t len)
{
  struct drain *d = arg;
  FUZZ_CHECK(seq > d->last && seq > d->floor);
  FUZZ_CHECK(len <= SPOOL_MAX_RECORD);
  FUZZ_CHECK(len == 0 || data != NULL);
  if (d->probe_seq && seq == d->probe_seq) {
    FUZZ_CHECK(len == sizeof(probe) - 1 && memcmp(data, probe, len) == 0);
    d->saw_probe = 1;
  }
  d->last = seq;
  d->n++;
  return 0;
}

/* Drain everything, quarantining corrupt segments; returns the number of
 * ERR_PARSE stops met. */
static int drain(struct drain *d)
{
  int corrupt = 0;
  for (int round = 0; round < 256; round++) {
    struct spool_stats st;
    struct err e = {0};
    size_t n = 0;
    spool_stats(d->sp, &st);
    d->floor = st.committed;
    enum err_code rc = spool_next_batch(d->sp, 16, on_rec, d, &n, &e);
    if (rc == ERR_PARSE) {
      corrupt++;
      FUZZ_CHECK(n == 0);
      if (spool_quarantine(d->sp, &e) != ERR_OK) {
        fprintf(stderr, "quarantine after ERR_PARSE failed: %s\n", e.msg);
        FUZZ_CHECK(0);
      }
      continue;
    }
    if (rc != ERR_OK || n == 0)
      return corrupt;
    if (spool_commit(d->sp, d->last, &e) != ERR_OK) {
      fprintf(stderr, "commit of delivered seq %llu: %s\n",
              (unsigned long long)d->last, e.msg);
      FUZZ_CHECK(0);
    }
  }
  return corrupt;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  char p[700];
  uint8_t flags = data[0];
  const uint8_t *rest = data + 1;
  size_t rn = size - 1;
  fuzz_rmtree(dir);
  FUZZ_CHECK(mkdir(dir, 0700) == 0);
  if (flags & 2) {
    if (rn < 6)
      return 0;
    uint32_t l1 = (uint32_t)rest[0] | (uint32_t)rest[1] << 8 |
                  (uint32_t)rest[2] << 16 | (uint32_t)rest[3] << 24;
    uint64_t f2 = (uint64_t)rest[4] | (uint64_t)rest[5] << 8;
    rest += 6;
    rn -= 6;
    if (l1 > rn)
      l1 = (uint32_t)rn;
    snprintf(p, sizeof(p), "%s/seg-%020llu.log", dir, 1ull);
    fuzz_write(p, rest, l1);
    snprintf(p, sizeof(p), "%s/seg-%020llu.log", dir,
             (unsigned long long)(f2 ? f2 : 2));
    fuzz_write(p, rest + l1, rn - l1);
  } else {
    snprintf(p, sizeof(p), "%s/seg-%020llu.log", dir, 1ull);
    fuzz_write(p, rest, rn);
  }
  if (flags & 4) {
    snprintf(p, sizeof(p), "%s/cursor", dir);
    fuzz_write(p, rest, rn < 40 ? rn : 40);
  } else if (flags & 1) {
    char c[64];
    int n = snprintf(c, sizeof(c), "id=0123456789abcdef\ncommitted=%d\n",
                     flags >> 4);
    snprintf(p, sizeof(p), "%s/cursor", dir);
    fuzz_write(p, c, (size_t)n);
  }

  struct spool_opts o;
  spool_opts_defaults(&o);
  o.dir = dir;
  o.max_bytes = 1 << 20;
  o.segment_bytes = 4096;
  struct err e = {0};
  struct drain d = {0};
  if (spool_create(&d.sp, &o, &e) != ERR_OK) {
    FUZZ_CHECK(d.sp == NULL && e.msg[0]);
    return 0;
  }
  drain(&d);
  uint64_t seq = 0;
  enum err_code rc = spool_append(d.sp, probe, sizeof(probe) - 1, &seq, &e);
  if (rc == ERR_OK)
    rc = spool_sync(d.sp, &e);
  FUZZ_CHECK(rc == ERR_OK || rc == ERR_FULL);
  spool_destroy(d.sp);
  if (rc != ERR_OK)
    return 0;
  FUZZ_CHECK(seq > d.last);

  /* Reopen: the probe, and only the probe, comes back. */
  struct drain d2 = {0};
  if (spool_create(&d2.sp, &o, &e) != ERR_OK) {
    fprintf(stderr, "reopen after a clean close failed: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
  d2.probe_seq = seq;
  int corrupt = drain(&d2);
  /* A record the first drain could not judge yet (a seq above the durable
   * mark in the only segment) may show up as damage now: quarantined. */
  if (!d2.saw_probe || (!corrupt && d2.n != 1)) {
    fprintf(stderr, "after reopen: probe %s, %zu record(s), %d corrupt "
            "stop(s)\n", d2.saw_probe ? "seen" : "missing", d2.n, corrupt);
    FUZZ_CHECK(0);
  }
  spool_destroy(d2.sp);
  return 0;
}
