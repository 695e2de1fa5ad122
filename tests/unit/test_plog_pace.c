/* test_plog_pace.c - the prediction log's smooth back-pressure (policy
 * reject): below a quarter of the buffer's caps an append never sleeps;
 * above it, appends are slowed down (counted in plog_stats.paced_us), by
 * rows and by bytes; policy serve and pace_us < 0 never slow down.  No
 * flush runs (the log is not started), so rows stay in memory and the
 * fill is exactly what the test appended; no timing is asserted.
 */
/* check: tsan */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/plog.h"
#include "plog_fx.h"

static char big[4000];

static struct plog_row row(const char *feat)
{
  return fx_plog_row("c1", feat);
}

static struct plog *open_log(const char *sub, size_t max_rows,
                             size_t max_bytes, enum plog_policy pol,
                             int pace_us)
{
  struct plog_opts o;
  char path[128];
  fx_plog_opts(&o, sub, path);
  o.full_wait_ms = -1;
  o.max_rows = max_rows;
  if (max_bytes)
    o.max_bytes = max_bytes;
  o.policy = pol;
  o.pace_us = pace_us;
  return fx_plog_create(&o, 0);
}

static uint64_t paced(struct plog *p)
{
  struct plog_stats st;
  plog_get_stats(p, &st);
  return st.paced_us;
}

TEST(paces_above_a_quarter_by_rows)
{
  struct plog *p = open_log("rows", 400, 0, PLOG_FULL_REJECT, 0);
  REQUIRE(p != NULL);
  struct plog_row r = row("{\"a\": 1}");
  for (int i = 0; i < 100; i++) /* up to exactly a quarter */
    CHECK(plog_append(p, &r, 1, NULL) == ERR_OK);
  CHECK(paced(p) == 0);
  for (int i = 0; i < 200; i++) /* up to three quarters */
    CHECK(plog_append(p, &r, 1, NULL) == ERR_OK);
  CHECK(paced(p) > 0);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.pending, 300);
  CHECK_EQ_INT(st.full_waits, 0);
  plog_destroy(p); /* stores them in the spool (the database is down) */
}

TEST(paces_by_bytes)
{
  /* rows cap far away; the byte cap (about 4.2 KiB counted per row) is
   * what fills */
  struct plog *p =
      open_log("bytes", 100000, 400 * 4400, PLOG_FULL_REJECT, 0);
  REQUIRE(p != NULL);
  struct plog_row r = row(big);
  for (int i = 0; i < 80; i++)
    CHECK(plog_append(p, &r, 1, NULL) == ERR_OK);
  CHECK(paced(p) == 0);
  for (int i = 0; i < 200; i++)
    CHECK(plog_append(p, &r, 1, NULL) == ERR_OK);
  CHECK(paced(p) > 0);
  plog_destroy(p);
}

TEST(batches_pace_too)
{
  struct plog *p = open_log("batch", 4000, 0, PLOG_FULL_REJECT, 0);
  REQUIRE(p != NULL);
  struct plog_row r[64];
  for (int i = 0; i < 64; i++)
    r[i] = row("{\"a\": 2}");
  for (int i = 0; i < 15; i++) /* 960 rows: under a quarter */
    CHECK(plog_append(p, r, 64, NULL) == ERR_OK);
  CHECK(paced(p) == 0);
  for (int i = 0; i < 20; i++) /* 2240 rows: over half */
    CHECK(plog_append(p, r, 64, NULL) == ERR_OK);
  CHECK(paced(p) > 0);
  plog_destroy(p);
}

TEST(serve_policy_and_off_never_pace)
{
  struct plog *p = open_log("serve", 400, 0, PLOG_FULL_SERVE, 0);
  REQUIRE(p != NULL);
  struct plog_row r = row("{\"a\": 3}");
  int unlogged = 0;
  for (int i = 0; i < 500; i++) {
    int logged = 0;
    CHECK(plog_append(p, &r, 1, &logged) == ERR_OK);
    unlogged += !logged;
  }
  CHECK(paced(p) == 0);
  CHECK_EQ_INT(unlogged, 100); /* beyond the cap, served unlogged */
  plog_destroy(p);

  p = open_log("off", 400, 0, PLOG_FULL_REJECT, -1);
  REQUIRE(p != NULL);
  for (int i = 0; i < 390; i++)
    CHECK(plog_append(p, &r, 1, NULL) == ERR_OK);
  CHECK(paced(p) == 0);
  /* at the cap: refused at once (full_wait_ms < 0), counted */
  for (int i = 0; i < 20; i++)
    (void)plog_append(p, &r, 1, NULL);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.pending, 400);
  CHECK_EQ_INT(st.rejected, 10);
  plog_destroy(p);
}

struct worker {
  struct plog *p;
  int fails;
};

static void *append_main(void *arg)
{
  struct worker *w = arg;
  struct plog_row r = row("{\"a\": 4}");
  for (int i = 0; i < 150; i++)
    if (plog_append(w->p, &r, 1, NULL) != ERR_OK)
      w->fails++;
  return NULL;
}

TEST(threads_pace_on_their_own)
{
  struct plog *p = open_log("threads", 1000, 0, PLOG_FULL_REJECT, 0);
  REQUIRE(p != NULL);
  struct worker w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker){p, 0};
    pthread_create(&th[i], NULL, append_main, &w[i]);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(w[i].fails, 0);
  struct plog_stats st;
  plog_get_stats(p, &st);
  CHECK_EQ_INT(st.pending, 600);
  CHECK(st.paced_us > 0);
  plog_destroy(p);
}

int main(void)
{
  memset(big, 'x', sizeof(big) - 1);
  big[0] = '"';
  big[sizeof(big) - 2] = '"';
  if (fx_plog_setup("plog-pace") != 0)
    return 1;
  RUN(paces_above_a_quarter_by_rows);
  RUN(paces_by_bytes);
  RUN(batches_pace_too);
  RUN(serve_policy_and_off_never_pace);
  RUN(threads_pace_on_their_own);
  fx_plog_teardown();
  return check_done();
}
