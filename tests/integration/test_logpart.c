/* test_logpart.c - the prediction log's time partitions and retention
 * (src/logpart.c, migration 040_plog_partitions.sql) against real parts:
 * a real MariaDB (database it_logpart, made with `mlopsd db init` and
 * `db seed`), the daemon's own log writer (plog) under a sustained load,
 * a real model version trained by the pipeline for the drift check.
 *
 *   partitions_fake_time   logpart_run at chosen times: partitions made
 *                          ahead (aligned, named after their first
 *                          second), idempotent, rows beyond the last
 *                          partition kept in pmax, partitions behind the
 *                          window dropped and archived, the archive loaded
 *                          back exactly once, a table without partitions
 *                          refused
 *   dedupe_partitioned     the writer's exactly-once key under
 *                          partitioning: the same (log_source, log_seq,
 *                          created_at) stored twice gives one row
 *   sustained_load         plog at ~1,500 rows/s for 75 s, partitions of
 *                          10 s, retention 30 s, a pass every 2 s: the
 *                          table stays bounded, partitions exist ahead and
 *                          go behind, every row inside the window is there
 *                          exactly once, a drift check and label feedback
 *                          run across the drops
 *
 * Needs MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD, MLOPSD_BIN and
 * MLOPSD_SRC (tests/run.sh provides them).
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "monitor_fx.h"
#include "plog_fx.h"
#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/logpart.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/plog.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/task.h"
#include "task_ctx.h"

#define DBNAME "it_logpart"
#define MODEL FX_MON_MODEL
#define LOGT "credit_predictions_api_log"

static struct err E;
static struct fx_mon M; /* the database, the model, the temp directory */
static struct db_pool *P; /* M.pool */

static void qs(const char *sql, struct fx_str *out) { fx_qs(P, sql, out); }

/* ---- set-up ----------------------------------------------------------- */

static int setup(void)
{
  char path[700];
  if (fx_mon_setup(&M, DBNAME, 6))
    return -1;
  P = M.pool;
  /* 040 is one ALTER restating keys and partitions: a second run of it
   * (an interrupted `db init` runs a file again) must leave the table as
   * it was */
  snprintf(path, sizeof(path), "%s/sql/migrations/040_plog_partitions.sql",
           M.src);
  if (fx_exec_file(P, path, NULL))
    return -1;
  return fx_mon_model(&M, DBNAME, NULL);
}

/* ---- partitions at chosen times ---------------------------------------- */

static time_t utc(int y, int mo, int d, int h, int mi)
{
  struct tm tm = {0};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return timegm(&tm);
}

/* A row of table t at a time (epoch s, so the session's time zone does
 * not matter), keyed (source 7, seq). */
static int fake_row(const char *t, time_t at, int seq)
{
  char sql[512];
  snprintf(sql, sizeof(sql),
           "INSERT INTO %s (customer_id, features, prediction, confidence, "
           "elapsed_ms, created_at, model_name, model_version, log_source, "
           "log_seq) VALUES ('c%d', '{\"n\": %d, \"x\": 1.50}', 'Good', 0.5, "
           "1, FROM_UNIXTIME(%lld), '" MODEL "', 1, 7, %d)",
           t, seq, seq, (long long)at, seq);
  return fx_exec(P, sql, 0);
}

static struct logpart *lp_new(const char *table, long interval, int ahead,
                              long retention, const char *archive)
{
  struct logpart_opts o = {0};
  struct logpart *lp = NULL;
  o.pool = P;
  o.table = table;
  o.interval_s = interval;
  o.ahead = ahead;
  o.retention_s = retention;
  o.archive_dir = archive;
  o.spool_dir = M.tmp;
  o.check_s = 2;
  o.db_local = 1;
  if (logpart_create(&lp, &o, &E) != ERR_OK)
    fprintf(stderr, "  logpart_create: %s\n", E.msg);
  return lp;
}

static void part_list(const char *t, struct fx_str *b)
{
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT GROUP_CONCAT(CONCAT(PARTITION_NAME, '<', "
           "PARTITION_DESCRIPTION) ORDER BY PARTITION_ORDINAL_POSITION "
           "SEPARATOR ' ') FROM information_schema.PARTITIONS WHERE "
           "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = '%s'",
           t);
  qs(sql, b);
}

TEST(partitions_fake_time)
{
  struct fx_str b;
  char exp[1024], arch[400];
  REQUIRE(fx_exec(P, "DROP TABLE IF EXISTS lp_fake", 0) == 0);
  REQUIRE(fx_exec(P, "CREATE TABLE lp_fake LIKE " LOGT, 0) == 0);
  snprintf(arch, sizeof(arch), "%s/archive", M.tmp);
  struct logpart *lp = lp_new("lp_fake", 3600, 3, 0, arch);
  REQUIRE(lp);
  time_t t0 = utc(2030, 1, 10, 12, 20);
  struct logpart_result r;
  CHECK_OK(logpart_run(lp, t0, &r, &E));
  CHECK_EQ_INT(r.created, 4);
  CHECK_EQ_INT(r.dropped, 0);
  part_list("lp_fake", &b);
  time_t h12 = utc(2030, 1, 10, 12, 0);
  snprintf(exp, sizeof(exp),
           "p20300110_120000<%lld p20300110_130000<%lld "
           "p20300110_140000<%lld p20300110_150000<%lld pmax<MAXVALUE",
           (long long)h12 + 3600, (long long)h12 + 7200,
           (long long)h12 + 10800, (long long)h12 + 14400);
  CHECK_EQ_STR(b.s, exp);
  /* a second pass at the same time changes nothing */
  CHECK_OK(logpart_run(lp, t0 + 60, &r, &E));
  CHECK_EQ_INT(r.created, 0);
  struct logpart_stats st;
  logpart_get_stats(lp, &st);
  CHECK_EQ_INT(st.partitions, 4);
  CHECK_EQ_INT(st.ahead, 3);
  CHECK_EQ_INT(st.created, 4);

  /* rows: older than every partition, in three of them, beyond all */
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 9, 23, 0), 1) == 0);
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 10, 12, 30), 2) == 0);
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 10, 14, 0) - 1, 3) == 0);
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 10, 14, 0), 4) == 0);
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 10, 15, 30), 5) == 0);
  REQUIRE(fake_row("lp_fake", utc(2030, 1, 11, 0, 0), 6) == 0);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM lp_fake PARTITION "
                  "(p20300110_120000)"),
               2);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM lp_fake PARTITION (pmax)"), 1);

  /* 16:30 with a 2-hour window: the cutoff is 14:30, so the partitions
   * ending 13:00 and 14:00 go (rows 1-3); 14:00-15:00 stays (row 4 is
   * older than the cutoff but shares its partition with newer times) */
  /* shadow rows (not partitioned) follow the dropped partitions out:
   * older than the newest dropped bound (14:00) go, the rest stay */
  char sq[300];
  REQUIRE(fx_exec(P, "DELETE FROM prediction_shadow", 0) == 0);
  for (int i = 0; i < 3; i++) {
    time_t at[3] = {utc(2030, 1, 9, 23, 0), utc(2030, 1, 10, 14, 0) - 1,
                    utc(2030, 1, 10, 14, 0)};
    snprintf(sq, sizeof(sq),
             "INSERT INTO prediction_shadow VALUES (7, %d, FROM_UNIXTIME(%lld), "
             "'m', 2, 'Good', 0.5)",
             i + 1, (long long)at[i]);
    REQUIRE(fx_exec(P, sq, 0) == 0);
  }
  logpart_destroy(lp);
  lp = lp_new("lp_fake", 3600, 3, 7200, arch);
  REQUIRE(lp);
  time_t t1 = utc(2030, 1, 10, 16, 30);
  CHECK_OK(logpart_run(lp, t1, &r, &E));
  CHECK_EQ_INT(r.dropped, 2);
  CHECK_EQ_INT(r.dropped_rows, 3);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM prediction_shadow"), 1);
  CHECK_EQ_INT(fx_q1(P, "SELECT log_seq FROM prediction_shadow"), 3);
  CHECK_EQ_INT(r.created, 4); /* 16-17 .. 19-20 */
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM lp_fake"), 3);
  CHECK_EQ_INT(
      fx_q1(P, "SELECT COUNT(*) FROM lp_fake WHERE log_seq IN (4, 5, 6)"), 3);
  /* the row of 01-11 is still beyond the last partition (20:00) */
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM lp_fake PARTITION (pmax)"), 1);
  part_list("lp_fake", &b);
  CHECK(strncmp(b.s, "p20300110_140000<", 17) == 0);
  CHECK(strstr(b.s, "p20300110_190000<") != NULL);

  /* archived before the drop: two files and two manifest lines */
  char path[600];
  snprintf(path, sizeof(path), "%s/manifest.jsonl", arch);
  size_t mlen = 0;
  char *man = fx_read_file(path, &mlen);
  REQUIRE(man);
  CHECK(strstr(man, "\"partition\":\"p20300110_120000\",\"from\":null,"
                    "\"to\":\"2030-01-10T13:00:00Z\",\"rows\":2") != NULL);
  CHECK(strstr(man, "\"partition\":\"p20300110_130000\",\"from\":"
                    "\"2030-01-10T13:00:00Z\",\"to\":\"2030-01-10T14:00:00Z\","
                    "\"rows\":1") != NULL);
  free(man);
  logpart_get_stats(lp, &st);
  CHECK_EQ_INT(st.archived, 2);

  /* loaded back into a copy of the table: the same rows, the features
   * text as it was, and a second load adds nothing */
  REQUIRE(fx_exec(P, "DROP TABLE IF EXISTS lp_back", 0) == 0);
  REQUIRE(fx_exec(P, "CREATE TABLE lp_back LIKE " LOGT, 0) == 0);
  int64_t rows = 0, added = 0;
  snprintf(path, sizeof(path), "%s/lp_fake.p20300110_120000.jsonl.gz", arch);
  CHECK_OK(logpart_load_archive(P, path, "lp_back", &rows, &added, &E));
  CHECK_EQ_INT(rows, 2);
  CHECK_EQ_INT(added, 2);
  CHECK_OK(logpart_load_archive(P, path, "lp_back", &rows, &added, &E));
  CHECK_EQ_INT(rows, 2);
  CHECK_EQ_INT(added, 0);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM lp_back"), 2);
  qs("SELECT CONCAT(features, ' ', UNIX_TIMESTAMP(created_at), ' ', "
     "log_source, ' ', log_seq) FROM lp_back WHERE log_seq = 1",
     &b);
  snprintf(exp, sizeof(exp), "{\"n\": 1, \"x\": 1.50} %lld 7 1",
           (long long)utc(2030, 1, 9, 23, 0));
  CHECK_EQ_STR(b.s, exp);
  CHECK_EQ_INT(fx_q1(P,
                     "SELECT JSON_EXTRACT(features, '$.n') FROM lp_back WHERE "
                     "log_seq = 2"),
               2);
  /* a damaged archive is refused with file and line */
  snprintf(path, sizeof(path), "%s/bad.jsonl.gz", arch);
  FILE *f = fopen(path, "w");
  REQUIRE(f);
  fputs("not json\n", f); /* gzread passes plain files through */
  fclose(f);
  CHECK(logpart_load_archive(P, path, "lp_back", &rows, &added, &E) ==
        ERR_PARSE);
  CHECK_HAS(E.msg, "bad.jsonl.gz:1:");
  logpart_destroy(lp);

  /* a table without partitions is refused, not changed */
  REQUIRE(fx_exec(P, "DROP TABLE IF EXISTS lp_plain", 0) == 0);
  REQUIRE(fx_exec(P, "CREATE TABLE lp_plain (id int PRIMARY KEY)", 0) == 0);
  lp = lp_new("lp_plain", 3600, 3, 3600, NULL);
  REQUIRE(lp);
  CHECK(logpart_run(lp, t0, &r, &E) == ERR_STATE);
  CHECK_HAS(E.msg, "not partitioned");
  logpart_destroy(lp);
  fx_exec(P, "DROP TABLE lp_plain", 0);
  fx_exec(P, "DROP TABLE lp_back", 0);
  fx_exec(P, "DROP TABLE lp_fake", 0);
}

/* ---- exactly-once under partitioning --------------------------------- */

TEST(dedupe_partitioned)
{
  /* the writer's statement (src/plog.c): the same row twice is one row,
   * because created_at travels with it and the key holds it */
  const char *ins =
      "INSERT INTO " LOGT " (customer_id, features, prediction, confidence, "
      "elapsed_ms, created_at, model_name, model_version, log_source, "
      "log_seq) VALUES ('d1', '{}', 'Good', 0.5, 1, "
      "FROM_UNIXTIME(1896170400), '" MODEL "', 1, 99, 1) "
      "ON DUPLICATE KEY UPDATE log_seq = log_seq";
  REQUIRE(fx_exec(P, ins, 0) == 0);
  REQUIRE(fx_exec(P, ins, 0) == 0);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM " LOGT " WHERE log_source = 99"),
               1);
  fx_exec(P, "DELETE FROM " LOGT " WHERE log_source = 99", 0);
}

/* ---- sustained load ---------------------------------------------------- */

#define LOAD_S 75
#define LOAD_RATE 1500 /* rows per second */
#define IV_S 10
#define RET_S 30
#define AHEAD 2
#define MAX_ROWS (LOAD_S * LOAD_RATE * 2)

struct load {
  struct plog *pl;
  atomic_int stop, pause, paused;
  int64_t *created_s; /* per row i: created_at second */
  atomic_long n;      /* rows appended */
  int failed;
};

static void *load_main(void *arg)
{
  struct load *L = arg;
  struct timeval tv;
  gettimeofday(&tv, NULL);
  double t0 = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
  while (!atomic_load(&L->stop)) {
    if (atomic_load(&L->pause)) {
      atomic_store(&L->paused, 1);
      usleep(10000);
      /* pacing restarts from the resume */
      gettimeofday(&tv, NULL);
      t0 = (double)tv.tv_sec + (double)tv.tv_usec / 1e6 -
           (double)atomic_load(&L->n) / LOAD_RATE;
      continue;
    }
    atomic_store(&L->paused, 0);
    long i = atomic_load(&L->n);
    if (i >= MAX_ROWS)
      break;
    gettimeofday(&tv, NULL);
    double now = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    if (now < t0 + (double)i / LOAD_RATE) {
      usleep(1000);
      continue;
    }
    char cid[24];
    snprintf(cid, sizeof(cid), "s%ld", i);
    const char *f = M.lines[(size_t)i % M.nlines];
    struct plog_row r = fx_plog_row(cid, f);
    r.confidence = 0.6;
    r.created_us = (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
    r.model = MODEL;
    r.model_version = 1;
    L->created_s[i] = (int64_t)tv.tv_sec;
    if (plog_append(L->pl, &r, 1, NULL) != ERR_OK) {
      L->failed = 1;
      break;
    }
    atomic_store(&L->n, i + 1);
  }
  atomic_store(&L->paused, 1);
  return NULL;
}

static int wait_stored(struct plog *pl, int ms)
{
  for (int i = 0; i < ms / 20; i++) {
    struct plog_stats st;
    plog_kick(pl);
    plog_get_stats(pl, &st);
    if (st.pending == 0 && st.spool_records == 0)
      return 0;
    usleep(20000);
  }
  return -1;
}

TEST(sustained_load)
{
  char spool[400], sql[512];
  struct load L = {0};
  L.created_s = calloc(MAX_ROWS, sizeof(*L.created_s));
  REQUIRE(L.created_s);
  snprintf(spool, sizeof(spool), "%s/spool", M.tmp);
  REQUIRE(fx_exec(P, "TRUNCATE TABLE " LOGT, 0) == 0);
  REQUIRE(fx_exec(P, "DELETE FROM live_metrics", 0) == 0);

  /* labels for every 10th customer, dated today (UTC), half of them the
   * class the load predicts */
  char today[16];
  {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    static const char *const cols[] = {"id", "customer_id", "date",
                                       "credit_score"};
    int nl = LOAD_S * LOAD_RATE * 2 / 10;
    struct db_val *v = calloc((size_t)nl * 4, sizeof(*v));
    char(*ids)[2][16] = calloc((size_t)nl, sizeof(*ids));
    REQUIRE(v && ids);
    for (int k = 0; k < nl; k++) {
      snprintf(ids[k][0], 16, "lp%d", k);
      snprintf(ids[k][1], 16, "s%d", k * 10);
      v[k * 4] = DB_V_STR(ids[k][0]);
      v[k * 4 + 1] = DB_V_STR(ids[k][1]);
      v[k * 4 + 2] = DB_V_STR(today);
      v[k * 4 + 3] = DB_V_STR(k % 2 ? "Good" : "Standard");
    }
    struct db_conn *c;
    REQUIRE(db_acquire(P, 10000, &c, &E) == ERR_OK);
    CHECK_OK(db_bulk_insert(c, "credit_score", cols, 4, v, nl, 500, NULL,
                            NULL, &E));
    db_release(P, c);
    free(v);
    free(ids);
  }

  struct plog_opts po;
  plog_opts_defaults(&po);
  po.pool = P;
  po.spool_dir = spool;
  po.full_wait_ms = 5000;
  REQUIRE(plog_create(&L.pl, &po, &E) == ERR_OK);
  REQUIRE(plog_start(L.pl, &E) == ERR_OK);
  struct logpart *lp = lp_new(NULL, IV_S, AHEAD, RET_S, NULL);
  REQUIRE(lp);
  REQUIRE(logpart_start(lp, &E) == ERR_OK);

  pthread_t th;
  REQUIRE(pthread_create(&th, NULL, load_main, &L) == 0);
  int64_t max_rows = 0;
  int max_parts = 0, min_ahead = 1000, checks_done = 0, drift_rows = -1;
  int64_t fb_n = -1, fb_expect = -2, drift_before = 0, drift_after = 0;
  uint64_t dropped_at_checks = 0;
  time_t start = time(NULL);
  while (time(NULL) - start < LOAD_S) {
    sleep(2);
    struct logpart_stats st;
    logpart_get_stats(lp, &st);
    if (st.passes > 0) {
      if (st.partitions > max_parts)
        max_parts = st.partitions;
      if (st.ahead < min_ahead)
        min_ahead = st.ahead;
    }
    int64_t n = fx_q1(P, "SELECT COUNT(*) FROM " LOGT);
    if (n > max_rows)
      max_rows = n;
    if (getenv("VERBOSE"))
      fprintf(stderr, "    t=%lds rows=%" PRId64 " parts=%d ahead=%d "
                      "dropped=%" PRIu64 "\n",
              (long)(time(NULL) - start), n, st.partitions, st.ahead,
              st.dropped);
    /* once a drop has happened: drift check and label feedback, with the
     * load paused so the expected figures hold still */
    if (!checks_done && st.dropped >= 2) {
      atomic_store(&L.pause, 1);
      while (!atomic_load(&L.paused))
        usleep(1000);
      CHECK(wait_stored(L.pl, 10000) == 0);
      dropped_at_checks = st.dropped;
      drift_before = fx_q1(P, "SELECT COUNT(*) FROM drift_report");
      struct fx_tc *c =
          fx_mon_tc(&M, "{\"model\": \"" MODEL "\", \"window\": 1000, "
                        "\"threshold\": 5, \"min_rows\": 100}",
                    today);
      /* the window is the newest rows by id, whatever was dropped */
      CHECK_OK(fx_tc_run(c, "drift", &E));
      fx_tc_free(c);
      drift_after = fx_q1(P, "SELECT COUNT(*) FROM drift_report");
      drift_rows =
          (int)fx_q1(P, "SELECT window_rows FROM drift_report ORDER BY id "
                        "DESC LIMIT 1");
      /* labelled predictions still in the table, as the task will see
       * them (same UTC day) */
      fb_expect =
          fx_q1(P, "SELECT COUNT(*) FROM " LOGT " p JOIN credit_score cs "
                   "ON cs.customer_id = p.customer_id AND cs.id LIKE 'lp%'");
      /* the feedback window is in UTC days up to ds: today as of now,
       * and yesterday, so a run across midnight still sees every row */
      char ds_now[16];
      time_t tnow = time(NULL);
      struct tm tmn;
      gmtime_r(&tnow, &tmn);
      strftime(ds_now, sizeof(ds_now), "%Y-%m-%d", &tmn);
      /* floor 0: the metrics are the point here, not the accuracy check
       * (the load answers "Standard" to half "Good" labels) */
      c = fx_mon_tc(&M, "{\"model\": \"" MODEL "\", \"days\": 2,"
                        " \"min_rows\": 1, \"floor_accuracy\": 0}",
                    ds_now);
      CHECK_OK(fx_tc_run(c, "label_feedback", &E));
      fx_tc_free(c);
      fb_n = fx_q1(
          P, "SELECT COALESCE(SUM(n), -1) FROM live_metrics WHERE model = "
             "'" MODEL "' AND version = 1");
      checks_done = 1;
      atomic_store(&L.pause, 0);
    }
  }
  atomic_store(&L.stop, 1);
  pthread_join(th, NULL);
  CHECK(!L.failed);
  size_t lost = 1;
  plog_stop(L.pl, 20000, &lost);
  CHECK_EQ_INT(lost, 0);
  logpart_stop(lp);
  /* a last pass as of now, then the window is [cutoff, now] */
  time_t tend = time(NULL);
  struct logpart_result r;
  CHECK_OK(logpart_run(lp, tend, &r, &E));
  struct logpart_stats st;
  logpart_get_stats(lp, &st);
  int64_t cutoff = (int64_t)tend - RET_S;
  long n = atomic_load(&L.n);
  int64_t want = 0, newest_window = 0;
  for (long i = 0; i < n; i++) {
    if (L.created_s[i] >= cutoff)
      want++;
    if (L.created_s[i] >= (int64_t)tend - (RET_S + IV_S + 4))
      newest_window++;
  }
  fprintf(stderr, "    %ld rows appended in %d s; table at most %" PRId64
                  " rows, %d partitions; %" PRIu64 " created, %" PRIu64
                  " dropped; %" PRId64 " rows in the last %d s\n",
          n, LOAD_S, max_rows, max_parts, st.created, st.dropped, want,
          RET_S);

  CHECK(n > LOAD_S * LOAD_RATE / 2); /* the load really ran */
  /* partitions ahead at every look (a pass that lost its lock wait may
   * leave one fewer until the next), made and dropped as time went */
  CHECK(min_ahead >= AHEAD - 1 && min_ahead >= 1);
  CHECK(st.ahead >= AHEAD);
  CHECK(st.created >= (uint64_t)(LOAD_S / IV_S));
  CHECK(st.dropped >= (uint64_t)((LOAD_S - RET_S) / IV_S - 2));
  /* bounded: never more partitions than the window, the current one,
   * the ones ahead, one waiting for the next pass (and one more if a
   * pass lost its lock wait) */
  CHECK(max_parts <= RET_S / IV_S + AHEAD + 3);
  /* and far fewer rows than were written */
  CHECK(max_rows < n);
  CHECK(fx_q1(P, "SELECT COUNT(*) FROM " LOGT) <= newest_window);
  /* every row inside the window, exactly once */
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM " LOGT " WHERE created_at >= "
           "FROM_UNIXTIME(%" PRId64 ")",
           cutoff);
  CHECK_EQ_INT(fx_q1(P, sql), want);
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(DISTINCT customer_id) FROM " LOGT " WHERE "
           "created_at >= FROM_UNIXTIME(%" PRId64 ")",
           cutoff);
  CHECK_EQ_INT(fx_q1(P, sql), want);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) - COUNT(DISTINCT log_seq) FROM " LOGT),
               0);
  /* the oldest row left is no older than one partition before the cutoff */
  CHECK(fx_q1(P, "SELECT UNIX_TIMESTAMP(MIN(created_at)) FROM " LOGT) >=
        cutoff - IV_S);

  /* drift and label feedback ran across the drops */
  CHECK(checks_done);
  CHECK(dropped_at_checks >= 2);
  CHECK_EQ_INT(drift_after, drift_before + 1);
  CHECK_EQ_INT(drift_rows, 1000);
  CHECK(fb_expect > 0);
  CHECK_EQ_INT(fb_n, fb_expect);

  logpart_destroy(lp);
  plog_destroy(L.pl);
  free(L.created_s);
}

int main(void)
{
  if (setup() != 0) {
    fprintf(stderr, "test_logpart: setup failed\n");
    return 1;
  }
  RUN(partitions_fake_time);
  RUN(dedupe_partitioned);
  RUN(sustained_load);
  fx_mon_done(&M);
  return check_done();
}
