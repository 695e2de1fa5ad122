/* test_plog.c - the prediction log writer without a database: MariaDB is
 * "down" (a pool pointing at a closed port), so every row must reach the
 * spool; sequence numbers survive a restart; a full log rejects or
 * serves unlogged by policy; concurrent appends lose nothing.  Writing
 * to a real MariaDB, replay and exactly-once are covered by
 * tests/integration/test_serve.c.
 */
/* check: tsan */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/plog.h"
#include "plog_fx.h"

static const char *FEAT =
    "{\"customer_id\": 4096, \"age\": 18, \"occupation\": \"Lawyer\"}";

static void msleep(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static struct plog_row row(const char *cid)
{
  return fx_plog_row(cid, FEAT);
}

static struct plog *open_log(const char *sub, size_t max_rows,
                             uint64_t spool_max, enum plog_policy pol)
{
  struct plog_opts o;
  char path[128];
  fx_plog_opts(&o, sub, path);
  o.flush_ms = 5;
  o.full_wait_ms = 50;
  if (max_rows)
    o.max_rows = max_rows;
  if (spool_max)
    o.spool_max_bytes = spool_max;
  o.policy = pol;
  return fx_plog_create(&o, 1);
}

static int wait_pending(struct plog *p, uint64_t want, int ms)
{
  struct plog_stats st;
  for (int i = 0; i < ms / 5; i++) {
    plog_get_stats(p, &st);
    if (st.pending == want)
      return 0;
    msleep(5);
  }
  return -1;
}

TEST(down_database_goes_to_spool)
{
  struct plog *p = open_log("a", 0, 0, PLOG_FULL_REJECT);
  REQUIRE(p != NULL);
  struct plog_row r[10];
  for (int i = 0; i < 10; i++)
    r[i] = row("c1");
  for (int k = 0; k < 100; k++) {
    int logged = 0;
    CHECK(plog_append(p, r, 10, &logged) == ERR_OK);
    CHECK(logged);
  }
  CHECK(wait_pending(p, 0, 5000) == 0);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.spooled, 1000);
  CHECK_EQ_INT(st.written, 0);
  CHECK(st.spool_records > 0);
  CHECK(st.spool_bytes > 1000 * strlen(FEAT));
  CHECK_EQ_INT(st.db_ok, 0);
  CHECK(st.next_seq == 1001);
  char why[1024];
  CHECK(plog_ready(p, 1, why, sizeof(why)) == 0);
  CHECK(strstr(why, "MariaDB") != NULL);
  /* without the database (role api) the spooling log is ready */
  CHECK(plog_ready(p, 0, why, sizeof(why)) == 1);
  uint64_t source = st.source, recs = st.spool_records;
  size_t lost = 99;
  plog_stop(p, 1000, &lost);
  CHECK_EQ_INT(lost, 0);
  plog_destroy(p);

  /* a restart: same source, the spool kept, numbers never reused */
  p = open_log("a", 0, 0, PLOG_FULL_REJECT);
  REQUIRE(p != NULL);
  plog_get_stats(p, &st);
  CHECK(st.source == source);
  CHECK(st.spool_records == recs);
  CHECK(st.next_seq >= 1 + PLOG_SEQ_RESERVE);
  CHECK(plog_append(p, r, 1, NULL) == ERR_OK);
  plog_stop(p, 1000, &lost); /* stop flushes what is in memory */
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.spooled, 1);
  CHECK_EQ_INT(st.pending, 0);
  plog_destroy(p);
}

/* Append up to 400 rows of customer CID 1 ms apart to a small log P of
 * policy POL, until the first ERR_FULL: each append must return ERR_OK, or
 * ERR_FULL where the policy rejects.  *unlogged counts the rows served
 * unlogged; returns 1 when the log said full. */
static int fill_small_log(struct plog *p, enum plog_policy pol,
                          const char *cid, int *unlogged)
{
  struct plog_row r = row(cid);
  int full = 0;
  *unlogged = 0;
  for (int i = 0; i < 400 && !full; i++) {
    int logged = 1;
    enum err_code rc = plog_append(p, &r, 1, &logged);
    if (pol == PLOG_FULL_REJECT)
      CHECK(rc == ERR_OK || rc == ERR_FULL);
    else
      CHECK(rc == ERR_OK);
    full = rc == ERR_FULL;
    *unlogged += rc == ERR_OK && !logged;
    msleep(1);
  }
  return full;
}

TEST(full_log_rejects)
{
  /* a spool of 8 KiB holds a few rows; then the buffer fills */
  struct plog *p = open_log("b", 50, 8192, PLOG_FULL_REJECT);
  REQUIRE(p != NULL);
  int unlogged;
  CHECK(fill_small_log(p, PLOG_FULL_REJECT, "c2", &unlogged));
  CHECK(plog_admit(p, 1) == ERR_FULL);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK(st.rejected >= 2);
  CHECK(st.spool_full);
  char why[1024];
  CHECK(plog_ready(p, 0, why, sizeof(why)) == 0); /* full spool: also api */
  CHECK(strstr(why, "spool is full") != NULL);
  size_t lost = 0;
  plog_stop(p, 200, &lost);
  CHECK(lost > 0); /* neither the database nor the spool takes them */
  plog_destroy(p);
}

TEST(full_log_serves_unlogged)
{
  struct plog *p = open_log("c", 50, 8192, PLOG_FULL_SERVE);
  REQUIRE(p != NULL);
  int unlogged;
  CHECK(!fill_small_log(p, PLOG_FULL_SERVE, "c3", &unlogged));
  CHECK(unlogged > 0);
  CHECK(plog_admit(p, 1) == ERR_OK);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.unlogged, unlogged);
  CHECK_EQ_INT(st.rejected, 0);
  size_t lost = 0;
  plog_stop(p, 200, &lost);
  plog_destroy(p);
}

/* The child of killed_process_loses_no_row: a log with options ARG takes
 * 500 rows (0, else the step that failed). */
static int append_500(void *arg)
{
  struct plog *p = NULL;
  struct err e = {0};
  if (plog_create(&p, arg, &e) != ERR_OK || plog_start(p, &e) != ERR_OK)
    return 3;
  char cid[16];
  for (int i = 0; i < 500; i++) {
    snprintf(cid, sizeof(cid), "k%d", i);
    struct plog_row r = row(cid);
    if (plog_append(p, &r, 1, NULL) != ERR_OK)
      return 4;
  }
  return 0;
}

/* Issue 16: rows appended by a process killed with SIGKILL before any
 * flush are all taken over by the next one (from the buffer file). */
TEST(killed_process_loses_no_row)
{
  struct plog_opts o;
  struct err e = {0};
  char path[128];
  fx_plog_opts(&o, "k", path);
  o.flush_ms = 60000; /* no flush before the kill */
  o.flush_rows = 100000;
  CHECK_CRASH_CHILD(append_500, &o);
  struct plog *p = NULL;
  o.flush_ms = 5;
  REQUIRE(plog_create(&p, &o, &e) == ERR_OK);
  struct plog_stats s;
  plog_get_stats(p, &s);
  CHECK_EQ_INT(s.pending, 500);
  REQUIRE(plog_start(p, &e) == ERR_OK);
  CHECK(wait_pending(p, 0, 5000) == 0);
  size_t lost = 9;
  plog_stop(p, 1000, &lost);
  CHECK_EQ_INT(lost, 0);
  plog_get_stats(p, &s);
  CHECK_EQ_INT(s.spooled, 500);
  plog_destroy(p);
  /* and nothing is taken over twice */
  REQUIRE(plog_create(&p, &o, &e) == ERR_OK);
  plog_get_stats(p, &s);
  CHECK_EQ_INT(s.pending, 0);
  plog_destroy(p);
}

struct worker {
  struct plog *p;
  int n, fails;
};

static void *append_main(void *arg)
{
  struct worker *w = arg;
  struct plog_row r[3] = {row("c4"), row("c5"), row("c6")};
  for (int i = 0; i < w->n; i++)
    if (plog_append(w->p, r, 1 + (size_t)(i % 3), NULL) != ERR_OK)
      w->fails++;
  return NULL;
}

TEST(concurrent_appends)
{
  struct plog *p = open_log("d", 0, 0, PLOG_FULL_REJECT);
  REQUIRE(p != NULL);
  struct worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){p, 3000, 0};
    pthread_create(&th[i], NULL, append_main, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  long rows = 0;
  for (int i = 0; i < 4; i++) {
    CHECK_EQ_INT(w[i].fails, 0);
    for (int k = 0; k < w[i].n; k++)
      rows += 1 + k % 3;
  }
  size_t lost = 0;
  plog_stop(p, 5000, &lost);
  CHECK_EQ_INT(lost, 0);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.spooled, rows);
  CHECK_EQ_INT(st.next_seq, 1 + rows);
  plog_destroy(p);
}

TEST(bad_options)
{
  struct plog_opts o;
  struct plog *p = NULL;
  struct err e = {0};
  plog_opts_defaults(&o);
  CHECK(plog_create(&p, &o, &e) == ERR_INVAL);
  o.pool = fx_plog_pool;
  o.spool_dir = fx_plog_dir;
  o.table = "x; DROP TABLE y";
  CHECK(plog_create(&p, &o, &e) == ERR_INVAL);
  CHECK(strstr(e.msg, "table") != NULL);
}

int main(void)
{
  if (fx_plog_setup("plog") != 0)
    return 1;
  RUN(down_database_goes_to_spool);
  RUN(full_log_rejects);
  RUN(full_log_serves_unlogged);
  RUN(concurrent_appends);
  RUN(killed_process_loses_no_row);
  RUN(bad_options);
  fx_plog_teardown();
  return check_done();
}
