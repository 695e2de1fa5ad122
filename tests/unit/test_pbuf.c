/* test_pbuf.c - the prediction log's crash-safe buffer file: rows put by
 * a process that is then killed with SIGKILL are all found by the next
 * open, with their numbers and bytes; a damaged row ends its chunk's
 * rows; a second open of a file in use is refused; group commit; a
 * released chunk stays mapped until pbuf_trim finds it unused.
 */
/* check: tsan */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/log.h"
#include "mlopsd/pbuf.h"

#define CHUNK (64 * 1024)
#define NCH 16

static char dir[64], path[128];

/* Row i: a features value whose length varies with i. */
static struct pbuf_row mkrow(int i, char *feat, char *cid)
{
  static char pad[701];
  if (!pad[0])
    memset(pad, 'x', 700);
  int fl = snprintf(feat, 900, "{\"customer_id\": %d, \"pad\": \"%.*s\"}", i,
                    (i * 37) % 700, pad);
  int cl = snprintf(cid, 16, "%d", i);
  struct pbuf_row r = {.created_us = 1764136800000000LL + i,
                       .conf = i / 1000.0,
                       .elapsed_ms = i % 7,
                       .model_version = 3,
                       .cid = cid,
                       .cid_len = (size_t)cl,
                       .pred = "Standard",
                       .pred_len = 8,
                       .model = "m",
                       .model_len = 1,
                       .feat = feat,
                       .feat_len = (size_t)fl};
  return r;
}

/* Put n rows (numbering the first `numbered`) across chunks. */
static int fill(struct pbuf *b, int n, int numbered)
{
  struct pbuf_chunk *c = NULL;
  char feat[1024], cid[16];
  for (int i = 0; i < n; i++) {
    struct pbuf_row r = mkrow(i, feat, cid);
    size_t sz = pbuf_row_size(r.cid_len, r.pred_len, r.model_len, r.feat_len);
    if (!c || pbuf_room(c) < sz) {
      if (pbuf_take(b, &c, 1) != 0)
        return -1;
    }
    size_t off = CHUNK - 64 - pbuf_room(c);
    pbuf_put(c, &r);
    if (i < numbered)
      pbuf_set_seq(c, off, (uint64_t)i + 100);
  }
  return 0;
}

/* The child of killed_writer_loses_nothing: 700 rows, 300 numbered
 * (0, else 3). */
static int write_700(void *arg)
{
  struct pbuf *b = NULL;
  struct err e = {0};
  (void)arg;
  if (pbuf_open(&b, path, CHUNK, NCH, &e) != ERR_OK || fill(b, 700, 300))
    return 3;
  return 0;
}

TEST(killed_writer_loses_nothing)
{
  CHECK_CRASH_CHILD(write_700, NULL);

  struct pbuf *b = NULL;
  struct err e = {0};
  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  struct pbuf_chunk **rec;
  size_t n = 0;
  uint64_t rows = 0;
  pbuf_recovered(b, &rec, &n, &rows);
  CHECK_EQ_INT(rows, 700);
  CHECK(n > 2); /* the rows spanned chunks */
  int i = 0, bad = 0;
  for (size_t k = 0; k < n; k++) {
    size_t off = 0;
    struct pbuf_row r;
    while (pbuf_next(rec[k], &off, &r)) {
      char feat[1024], cid[16];
      struct pbuf_row w = mkrow(i, feat, cid);
      if (r.feat_len != w.feat_len || memcmp(r.feat, w.feat, w.feat_len) ||
          r.cid_len != w.cid_len || memcmp(r.cid, w.cid, w.cid_len) ||
          r.created_us != w.created_us || r.conf != w.conf ||
          r.seq != (i < 300 ? (uint64_t)i + 100 : 0))
        bad++;
      i++;
    }
  }
  CHECK_EQ_INT(i, 700);
  CHECK_EQ_INT(bad, 0);
  /* stored: release everything; the next open finds nothing */
  for (size_t k = 0; k < n; k++)
    pbuf_release(b, rec[k]);
  CHECK_EQ_INT(pbuf_free_count(b), NCH);
  pbuf_close(b);
  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  pbuf_recovered(b, &rec, &n, &rows);
  CHECK_EQ_INT(n, 0);
  CHECK_EQ_INT(rows, 0);
  pbuf_close(b);
}

TEST(done_rows_skipped_damage_cuts)
{
  struct pbuf *b = NULL;
  struct err e = {0};
  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  struct pbuf_chunk *c;
  char feat[1024], cid[16];
  REQUIRE(pbuf_take(b, &c, 1) == 0);
  for (int i = 0; i < 20; i++) {
    struct pbuf_row r = mkrow(i, feat, cid);
    pbuf_put(c, &r);
  }
  pbuf_set_done(c, 5);
  pbuf_close(b); /* as if killed: the chunk stays in use */

  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  struct pbuf_chunk **rec;
  size_t n;
  uint64_t rows;
  pbuf_recovered(b, &rec, &n, &rows);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(rows, 15);
  CHECK_EQ_INT(pbuf_done(rec[0]), 5);
  pbuf_close(b);

  /* damage the features of row 10: rows 0-9 remain */
  FILE *f = fopen(path, "r+b");
  REQUIRE(f != NULL);
  size_t off = 0;
  for (int i = 0; i < 10; i++) {
    struct pbuf_row r = mkrow(i, feat, cid);
    off += pbuf_row_size(r.cid_len, r.pred_len, r.model_len, r.feat_len);
  }
  /* the chunk in use is the first one taken: chunk 0 */
  fseek(f, (long)(PBUF_FILE_HDR + PBUF_CHUNK_HDR + off + PBUF_ROW_HDR + 3),
        SEEK_SET);
  fputc('#', f);
  fclose(f);
  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  pbuf_recovered(b, &rec, &n, &rows);
  CHECK_EQ_INT(n, 1);
  CHECK_EQ_INT(pbuf_rows(rec[0]), 10);
  CHECK_EQ_INT(rows, 5);
  pbuf_release(b, rec[0]);
  pbuf_close(b);
}

TEST(second_open_refused)
{
  struct pbuf *a = NULL, *b = NULL;
  struct err e = {0};
  REQUIRE(pbuf_open(&a, path, CHUNK, NCH, &e) == ERR_OK);
  CHECK(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_STATE);
  CHECK(strstr(e.msg, "in use") != NULL);
  pbuf_close(a);
  /* another geometry on an empty file: recreated */
  REQUIRE(pbuf_open(&a, path, 2 * CHUNK, 4, &e) == ERR_OK);
  CHECK_EQ_INT(pbuf_nchunks(a), 4);
  CHECK_EQ_INT(pbuf_max_row(a), 2 * CHUNK - PBUF_CHUNK_HDR);
  pbuf_close(a);
  CHECK(pbuf_open(&a, path, 1000, 4, &e) == ERR_INVAL);
}

/* KiB of the buffer file mapped in this process (smaps Rss), -1 if the
 * mapping is not found. */
static long mapped_kb(void)
{
  FILE *f = fopen("/proc/self/smaps", "r");
  char line[512];
  long kb = -1;
  int in = 0;
  if (!f)
    return -1;
  while (fgets(line, sizeof(line), f)) {
    size_t l = strlen(line), pl = strlen(path);
    if (l > pl && strncmp(line + l - pl - 1, path, pl) == 0)
      in = 1;
    else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
      break;
  }
  fclose(f);
  return in ? kb : -1;
}

/* Fill c with rows until the next one does not fit: every page written. */
static void fill_chunk(struct pbuf_chunk *c)
{
  char feat[900], cid[16];
  for (int i = 0;; i++) {
    struct pbuf_row r = mkrow(i, feat, cid);
    if (pbuf_room(c) < pbuf_row_size(r.cid_len, r.pred_len, r.model_len,
                                     r.feat_len))
      break;
    pbuf_put(c, &r);
  }
}

TEST(trim_drops_only_unused_chunks)
{
  struct pbuf *b = NULL;
  struct err e = {0};
  struct pbuf_chunk *c[4];
  REQUIRE(pbuf_open(&b, path, CHUNK, NCH, &e) == ERR_OK);
  REQUIRE(pbuf_take(b, c, 4) == 0);
  for (int i = 0; i < 4; i++) {
    fill_chunk(c[i]);
    pbuf_release(b, c[i]);
  }
  /* released, the pages stay mapped: a reuse does not fault them in */
  long kb = mapped_kb();
  CHECK(kb >= 4 * CHUNK / 1024 - 4);
  /* all four were used since open: the first trim keeps them */
  CHECK_EQ_INT(pbuf_trim(b), 0);
  CHECK_EQ_INT(mapped_kb(), kb);
  /* one is taken again; the next trim drops every other free chunk */
  REQUIRE(pbuf_take(b, c, 1) == 0);
  pbuf_release(b, c[0]);
  CHECK_EQ_INT(pbuf_trim(b), NCH - 1);
  kb = mapped_kb();
  CHECK(kb >= CHUNK / 1024 && kb <= CHUNK / 1024 + 8);
  /* unused since: dropped as well; only the file header may stay */
  CHECK_EQ_INT(pbuf_trim(b), 1);
  CHECK(mapped_kb() >= 0 && mapped_kb() <= 8);
  CHECK_EQ_INT(pbuf_trim(b), 0);
  /* the rows are still in the file (the page cache kept them) */
  REQUIRE(pbuf_take(b, c, 1) == 0);
  CHECK_EQ_INT(pbuf_free_count(b), NCH - 1);
  pbuf_close(b);
}

static struct pbuf *gb;

static void *syncer(void *arg)
{
  (void)arg;
  for (int i = 0; i < 50; i++)
    if (pbuf_sync_wait(gb) != ERR_OK)
      return (void *)1;
  return NULL;
}

TEST(group_commit)
{
  struct err e = {0};
  REQUIRE(pbuf_open(&gb, path, CHUNK, NCH, &e) == ERR_OK);
  pthread_t th[4];
  for (int i = 0; i < 4; i++)
    pthread_create(&th[i], NULL, syncer, NULL);
  int fails = 0;
  for (int i = 0; i < 4; i++) {
    void *r;
    pthread_join(th[i], &r);
    fails += r != NULL;
  }
  CHECK_EQ_INT(fails, 0);
  uint64_t syncs, waits;
  pbuf_sync_stats(gb, &syncs, &waits);
  CHECK_EQ_INT(waits, 200);
  CHECK(syncs >= 1 && syncs <= 200);
  pbuf_close(gb);
}

int main(void)
{
  log_set_level(LOG_ERROR);
  snprintf(dir, sizeof(dir), "/tmp/mlopsd-test-pbuf.XXXXXX");
  if (!mkdtemp(dir))
    return 1;
  snprintf(path, sizeof(path), "%s/plog-buffer", dir);
  RUN(killed_writer_loses_nothing);
  RUN(done_rows_skipped_damage_cuts);
  RUN(second_open_refused);
  RUN(group_commit);
  RUN(trim_drops_only_unused_chunks);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  return check_done();
}
