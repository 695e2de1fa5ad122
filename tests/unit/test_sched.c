/* test_sched.c - the scheduler's pure parts: Airflow's trigger rules,
 * run ids, trigger dates, DATETIME text, claim ids and the same-host
 * liveness check.  (Runs, claims and leases are tested against MariaDB
 * and real daemons in tests/integration/test_sched.c.)
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/cron.h"
#include "sched_int.h"

/* n upstream, counts succ skip fail ufail -> decision, per rule. */
struct tr_case {
  enum dag_trigger_rule r;
  int n, s, k, f, u;
  enum sched_decision want;
};

TEST(trigger_rules)
{
  static const struct tr_case c[] = {
      /* no upstream: always runs */
      {DAG_TR_ALL_SUCCESS, 0, 0, 0, 0, 0, SCHED_RUN},
      {DAG_TR_ALL_FAILED, 0, 0, 0, 0, 0, SCHED_RUN},
      /* all_success */
      {DAG_TR_ALL_SUCCESS, 2, 2, 0, 0, 0, SCHED_RUN},
      {DAG_TR_ALL_SUCCESS, 2, 1, 0, 0, 0, SCHED_WAIT},
      {DAG_TR_ALL_SUCCESS, 3, 1, 0, 1, 0, SCHED_UFAIL}, /* at once */
      {DAG_TR_ALL_SUCCESS, 2, 0, 0, 0, 1, SCHED_UFAIL},
      {DAG_TR_ALL_SUCCESS, 2, 1, 1, 0, 0, SCHED_SKIP},
      {DAG_TR_ALL_SUCCESS, 2, 0, 1, 1, 0, SCHED_UFAIL}, /* failure wins */
      /* all_failed */
      {DAG_TR_ALL_FAILED, 2, 0, 0, 1, 1, SCHED_RUN},
      {DAG_TR_ALL_FAILED, 2, 0, 0, 1, 0, SCHED_WAIT},
      {DAG_TR_ALL_FAILED, 2, 1, 0, 1, 0, SCHED_SKIP},
      {DAG_TR_ALL_FAILED, 2, 0, 1, 0, 0, SCHED_SKIP},
      /* all_done */
      {DAG_TR_ALL_DONE, 4, 1, 1, 1, 1, SCHED_RUN},
      {DAG_TR_ALL_DONE, 4, 1, 1, 1, 0, SCHED_WAIT},
      /* one_success */
      {DAG_TR_ONE_SUCCESS, 3, 1, 0, 0, 0, SCHED_RUN}, /* without waiting */
      {DAG_TR_ONE_SUCCESS, 2, 0, 0, 1, 0, SCHED_WAIT},
      {DAG_TR_ONE_SUCCESS, 2, 0, 1, 1, 0, SCHED_UFAIL},
      {DAG_TR_ONE_SUCCESS, 2, 0, 2, 0, 0, SCHED_SKIP},
      /* one_failed */
      {DAG_TR_ONE_FAILED, 3, 0, 0, 1, 0, SCHED_RUN},
      {DAG_TR_ONE_FAILED, 3, 0, 0, 0, 1, SCHED_RUN},
      {DAG_TR_ONE_FAILED, 2, 1, 0, 0, 0, SCHED_WAIT},
      {DAG_TR_ONE_FAILED, 2, 1, 1, 0, 0, SCHED_SKIP},
      /* none_failed */
      {DAG_TR_NONE_FAILED, 2, 1, 1, 0, 0, SCHED_RUN},
      {DAG_TR_NONE_FAILED, 2, 1, 0, 0, 0, SCHED_WAIT},
      {DAG_TR_NONE_FAILED, 2, 0, 0, 1, 0, SCHED_UFAIL},
      {DAG_TR_NONE_FAILED, 2, 0, 0, 0, 1, SCHED_UFAIL},
      /* none_skipped */
      {DAG_TR_NONE_SKIPPED, 2, 1, 0, 1, 0, SCHED_RUN},
      {DAG_TR_NONE_SKIPPED, 2, 1, 0, 0, 0, SCHED_WAIT},
      {DAG_TR_NONE_SKIPPED, 2, 0, 1, 0, 0, SCHED_SKIP},
  };
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    enum sched_decision d =
        sched_trigger_rule(c[i].r, c[i].n, c[i].s, c[i].k, c[i].f, c[i].u);
    if (d != c[i].want)
      fprintf(stderr, "  case %zu (%s): got %d want %d\n", i,
              dag_trigger_rule_name(c[i].r), (int)d, (int)c[i].want);
    CHECK_EQ_INT(d, c[i].want);
  }
}

TEST(run_ids)
{
  struct cron_tz *tz = NULL;
  struct err e = {0};
  char id[SCHED_RUN_ID_MAX + 1], id2[SCHED_RUN_ID_MAX + 1];
  REQUIRE(cron_tz_load(&tz, "Asia/Seoul", &e) == ERR_OK);
  time_t t;
  REQUIRE(sched_parse_date(tz, "2025-09-01", &t, &e) == ERR_OK);
  CHECK_EQ_INT(t, 1756652400); /* 2025-08-31T15:00:00Z */
  sched_run_id("credit_ct", "scheduled", tz, t, id, sizeof(id));
  CHECK_EQ_STR(id, "credit_ct__scheduled__2025-09-01T00:00:00+09:00");
  /* A 250-character DAG id still gives a unique id of <= 250. */
  char long1[251], long2[251];
  memset(long1, 'a', 250);
  long1[250] = '\0';
  memcpy(long2, long1, sizeof(long1));
  long2[249] = 'b';
  sched_run_id(long1, "manual", tz, t, id, sizeof(id));
  sched_run_id(long2, "manual", tz, t, id2, sizeof(id2));
  CHECK(strlen(id) <= SCHED_RUN_ID_MAX && strlen(id2) <= SCHED_RUN_ID_MAX);
  CHECK(strcmp(id, id2) != 0);
  CHECK(strstr(id, "__manual__2025-09-01T00:00:00+09:00") != NULL);
  for (const char *p = id; *p; p++) /* what {{ run_id }} in SQL accepts */
    CHECK(strchr("abcdefghijklmnopqrstuvwxyzT0123456789_.:+-", *p) != NULL);
  cron_tz_destroy(tz);
}

TEST(trigger_dates)
{
  struct cron_tz *tz = NULL;
  struct err e = {0};
  time_t t;
  REQUIRE(cron_tz_load(&tz, "Asia/Seoul", &e) == ERR_OK);
  CHECK(sched_parse_date(tz, "2025-09-01T06:30", &t, &e) == ERR_OK &&
        t == 1756652400 + 6 * 3600 + 1800);
  CHECK(sched_parse_date(tz, "2025-09-01 06:30:15", &t, &e) == ERR_OK &&
        t == 1756652400 + 6 * 3600 + 1815);
  static const char *const bad[] = {"2025-9-1", "2025-02-30", "2025-09-01T",
                                    "2025-09-01T24:00", "2025-09-01T06:30Z",
                                    "yesterday", ""};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_EQ_INT(sched_parse_date(tz, bad[i], &t, &e), ERR_INVAL);
    CHECK(strstr(e.msg, "Asia/Seoul") != NULL);
  }
  time_t before = time(NULL);
  CHECK(sched_parse_date(tz, NULL, &t, &e) == ERR_OK && t >= before);
  char s[20];
  sched_fmt_utc(1756652400, s);
  CHECK_EQ_STR(s, "2025-08-31 15:00:00");
  CHECK(sched_parse_utc("2025-08-31 15:00:00.123456", &t) == 0 &&
        t == 1756652400);
  CHECK(sched_parse_utc("garbage", &t) == -1);
  CHECK(sched_parse_utc(NULL, &t) == -1);
  cron_tz_destroy(tz);
}

TEST(claims)
{
  char host[64];
  long pid = 0;
  CHECK(sched_claim_parse("web-1:123:abcdef", host, sizeof(host), &pid) == 0);
  CHECK_EQ_STR(host, "web-1");
  CHECK_EQ_INT(pid, 123);
  CHECK(sched_claim_parse("test:h:9:ff", host, sizeof(host), &pid) == 0 &&
        !strcmp(host, "h") && pid == 9);
  CHECK(sched_claim_parse("nohost", host, sizeof(host), &pid) == -1);
  CHECK(sched_claim_parse("h:x:ff", host, sizeof(host), &pid) == -1);
  CHECK(sched_claim_parse(":1:ff", host, sizeof(host), &pid) == -1);
  CHECK(sched_claim_parse(NULL, host, sizeof(host), &pid) == -1);

  struct sched_core c;
  memset(&c, 0, sizeof(c));
  sched_core_ids(&c, NULL);
  CHECK(sched_claim_parse(c.claim_id, host, sizeof(host), &pid) == 0 &&
        pid == (long)getpid() && !strcmp(host, c.host));
  char other[SCHED_CLAIM_MAX];
  /* this pid under another nonce: an earlier life of the pid */
  snprintf(other, sizeof(other), "%s:%ld:000000000000", c.host, c.pid);
  CHECK_EQ_INT(sched_claim_dead(&c, other), 1);
  CHECK_EQ_INT(sched_claim_dead(&c, c.claim_id), 0); /* our own */
  /* a process that exited */
  pid_t ch = fork();
  if (ch == 0)
    _exit(0);
  waitpid(ch, NULL, 0);
  snprintf(other, sizeof(other), "test:%s:%ld:aa", c.host, (long)ch);
  CHECK_EQ_INT(sched_claim_dead(&c, other), 1);
  /* a live one, and another host: not dead as far as we can tell */
  snprintf(other, sizeof(other), "%s:%ld:aa", c.host, (long)getppid());
  CHECK_EQ_INT(sched_claim_dead(&c, other), 0);
  snprintf(other, sizeof(other), "elsewhere:%ld:aa", (long)ch);
  CHECK_EQ_INT(sched_claim_dead(&c, other), 0);
  /* prefixes */
  struct sched_core t;
  memset(&t, 0, sizeof(t));
  sched_core_ids(&t, "test:");
  CHECK(!strncmp(t.claim_id, "test:", 5));
  CHECK(strcmp(t.claim_id + 5, c.claim_id) != 0); /* new nonce */
}

int main(void)
{
  RUN(trigger_rules);
  RUN(run_ids);
  RUN(trigger_dates);
  RUN(claims);
  return check_done();
}
