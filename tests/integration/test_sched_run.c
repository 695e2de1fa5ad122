/* test_sched_run.c - the run and task-instance state transitions of
 * sched_run.c on their own, against a real MariaDB (database it_sched_run,
 * the project's migrations), without a daemon: sched_trigger,
 * sched_insert_tis, sched_evaluate (trigger rules, the end of a run) and
 * sched_attempt_finish (success, retry, failure, interrupted, lost claim).
 * Task instances are claimed by hand (the UPDATE a claim makes) so each
 * transition is driven and read back one at a time.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/cron.h"
#include "mlopsd/dag.h"
#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/schema.h"
#include "sched_int.h"

#define DBNAME "it_sched_run"

static struct db_pool *P;
static struct cron_tz *TZ;
static struct dag *D;
static struct sched_core CORE;

/* a -> {b, c} -> d; b may retry once, d all_success. */
static const char DAG_YAML[] =
    "dag_id: sr\n"
    "tasks:\n"
    "  - {id: a, type: shell, command: 'true'}\n"
    "  - {id: b, type: shell, command: 'true', depends_on: [a],\n"
    "     retries: 1, retry_delay: 30s}\n"
    "  - {id: c, type: shell, command: 'true', depends_on: [a]}\n"
    "  - {id: d, type: shell, command: 'true', depends_on: [b, c]}\n";

/* The state of task of run ("" if none) and its id, try, max_tries. */
struct tirow {
  char state[32];
  int64_t id;
  int try_number, max_tries, next_try_set;
};

static int tirow_cb(void *user, const struct db_row *row)
{
  struct tirow *t = user;
  const char *s = db_row_str(row, 0, NULL);
  snprintf(t->state, sizeof(t->state), "%s", s ? s : "");
  t->id = db_row_i64(row, 1);
  t->try_number = (int)db_row_i64(row, 2);
  t->max_tries = (int)db_row_i64(row, 3);
  t->next_try_set = (int)db_row_i64(row, 4);
  return 0;
}

static struct tirow ti(const char *run_id, const char *task)
{
  struct tirow t = {.id = -1};
  struct db_conn *c = NULL;
  struct err e = {0};
  struct db_val p[2] = {DB_V_STR(run_id), DB_V_STR(task)};
  if (db_acquire(P, 10000, &c, &e) ||
      db_query(c,
               "SELECT state, id, try_number, max_tries, next_try_at IS NOT "
               "NULL FROM task_instance WHERE run_id = ? AND task_id = ?",
               p, 2, tirow_cb, &t, NULL, &e))
    fprintf(stderr, "  ti %s %s: %s\n", run_id, task, e.msg);
  if (c)
    db_release(P, c);
  return t;
}

static int str_cb(void *user, const struct db_row *row)
{
  const char *s = db_row_str(row, 0, NULL);
  snprintf(user, 32, "%s", s ? s : "(null)");
  return 0;
}

static void run_state(const char *run_id, char out[32])
{
  struct db_conn *c = NULL;
  struct err e = {0};
  struct db_val p[1] = {DB_V_STR(run_id)};
  out[0] = 0;
  if (db_acquire(P, 10000, &c, &e) ||
      db_query(c, "SELECT state FROM dag_run WHERE run_id = ?", p, 1, str_cb,
               out, NULL, &e))
    fprintf(stderr, "  run_state %s: %s\n", run_id, e.msg);
  if (c)
    db_release(P, c);
}

/* Run an UPDATE/INSERT with one string parameter substituted (%s). */
static int exec_f(const char *fmt, const char *arg)
{
  char sql[1024];
  snprintf(sql, sizeof(sql), fmt, arg);
  return fx_exec(P, sql, 0);
}

/* Trigger a run of sr on date and insert its task instances; the run is
 * made `running` the way the scheduler starts it. */
static int new_run(const char *date, char *run_id)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int rc = -1;
  if (db_acquire(P, 10000, &c, &e) == ERR_OK &&
      sched_trigger(c, TZ, "sr", date, NULL, run_id, SCHED_RUN_ID_MAX + 1,
                    &e) == ERR_OK &&
      sched_insert_tis(c, D, run_id, 0, &e) == ERR_OK)
    rc = 0;
  else
    fprintf(stderr, "  new_run %s: %s\n", date, e.msg);
  if (c)
    db_release(P, c);
  if (rc == 0)
    rc = exec_f("UPDATE dag_run SET state = 'running', start_date = "
                "UTC_TIMESTAMP(6) WHERE run_id = '%s'",
                run_id);
  return rc;
}

struct evarg {
  const char *run_id;
  struct sched_eval ev;
};

static enum err_code eval_txn(struct db_conn *c, void *user, struct err *e)
{
  struct evarg *a = user;
  int64_t id;
  struct db_val p[1] = {DB_V_STR(a->run_id)};
  enum err_code rc = db_query_i64(
      c, "SELECT id FROM dag_run WHERE run_id = ? FOR UPDATE", p, 1, &id, e);
  return rc ? rc : sched_evaluate(c, D, a->run_id, &a->ev, e);
}

/* sched_evaluate in its transaction (the run row locked first). */
static enum err_code evaluate(const char *run_id, struct sched_eval *ev,
                              struct err *e)
{
  struct db_conn *c = NULL;
  struct evarg a = {.run_id = run_id};
  enum err_code rc = db_acquire(P, 10000, &c, e);
  if (rc == ERR_OK) {
    rc = sched_txn(c, eval_txn, &a, e);
    db_release(P, c);
  }
  *ev = a.ev;
  return rc;
}

/* Claim task of run as CORE would: running, try + 1, claimed_by. */
static int claim(const char *run_id, const char *task, const char *by)
{
  char sql[1024];
  snprintf(sql, sizeof(sql),
           "UPDATE task_instance SET state = 'running', try_number = "
           "try_number + 1, claimed_by = '%s', start_date = "
           "UTC_TIMESTAMP(6), heartbeat_at = UTC_TIMESTAMP(6) WHERE run_id "
           "= '%s' AND task_id = '%s'",
           by, run_id, task);
  return fx_exec(P, sql, 0);
}

/* Finish the attempt of task (claimed by CORE) with code. */
static enum err_code finish(const char *run_id, const char *task,
                            enum err_code code, int interrupted,
                            char state[16], int *lost, struct sched_eval *ev,
                            struct err *e)
{
  struct tirow t = ti(run_id, task);
  int idx = dag_task_index(D, task);
  if (t.id < 0 || idx < 0)
    return err_set(e, ERR_NOTFOUND, "no task instance %s", task);
  struct sched_attempt *a =
      sched_attempt_new(&CORE, D, (size_t)idx, t.id, run_id, t.try_number,
                        t.max_tries, 0, NULL);
  if (!a)
    return err_set(e, ERR_NOMEM, "attempt");
  atomic_store(&a->interrupted, interrupted);
  struct err ae = {0};
  if (code != ERR_OK)
    err_set(&ae, code, "task %s broke on purpose", task);
  enum err_code rc = sched_attempt_finish(a, code, &ae, state, lost, ev, e);
  sched_attempt_unref(a);
  return rc;
}

/* ---- tests ------------------------------------------------------------ */

TEST(t_trigger)
{
  struct err E = {0};
  struct db_conn *c = NULL;
  char rid[SCHED_RUN_ID_MAX + 1] = "", rid2[SCHED_RUN_ID_MAX + 1] = "";
  REQUIRE_OK(db_acquire(P, 10000, &c, &E));
  cJSON *conf = cJSON_Parse("{\"k\": \"v\"}");
  CHECK_OK(sched_trigger(c, TZ, "sr", "2025-01-02", conf, rid, sizeof(rid),
                         &E));
  CHECK_HAS(rid, "sr__manual__2025-01-02");
  /* one run per DAG and logical date */
  CHECK_EQ_INT(sched_trigger(c, TZ, "sr", "2025-01-02", NULL, rid2,
                             sizeof(rid2), &E),
               ERR_EXISTS);
  CHECK_HAS(E.msg, "already has a run");
  CHECK_EQ_INT(rid2[0], 0);
  cJSON *arr = cJSON_Parse("[1]");
  CHECK_EQ_INT(sched_trigger(c, TZ, "sr", "2025-01-03", arr, rid2,
                             sizeof(rid2), &E),
               ERR_INVAL);
  CHECK_HAS(E.msg, "conf");
  CHECK_EQ_INT(sched_trigger(c, TZ, "", "2025-01-03", NULL, rid2,
                             sizeof(rid2), &E),
               ERR_INVAL);
  CHECK(sched_trigger(c, TZ, "sr", "not-a-date", NULL, rid2, sizeof(rid2),
                      &E) != ERR_OK);
  db_release(P, c);
  cJSON_Delete(conf);
  cJSON_Delete(arr);
  char st[32];
  run_state(rid, st);
  CHECK_EQ_STR(st, "queued");
  char sql[600];
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM dag_run WHERE run_id = '%s' AND conf = "
           "'{\"k\":\"v\"}' AND external_trigger = 1",
           rid);
  CHECK_EQ_INT(fx_q1(P, sql), 1);
  CHECK_EQ_INT(fx_q1(P, "SELECT COUNT(*) FROM dag_run WHERE logical_date = "
                        "'2025-01-03 00:00:00'"),
               0);
}

/* The evaluation EV ended run RID as failed because of task FAILED: d is
 * upstream_failed and the run's row says failed. */
static void check_run_failed(const char *rid, const struct sched_eval *ev,
                             const char *failed)
{
  char st[32];
  struct tirow d = ti(rid, "d");
  if (strcmp(d.state, "upstream_failed") != 0)
    check_fail_at(__FILE__, __LINE__, "run %s: d is %s, want "
                  "upstream_failed", rid, d.state);
  if (ev->finished != 1)
    check_fail_at(__FILE__, __LINE__, "run %s: finished %d, want 1", rid,
                  ev->finished);
  if (strcmp(ev->state, "failed") != 0)
    check_fail_at(__FILE__, __LINE__, "run %s: evaluated %s, want failed",
                  rid, ev->state);
  if (strcmp(ev->failed, failed) != 0)
    check_fail_at(__FILE__, __LINE__, "run %s: failed task %s, want %s", rid,
                  ev->failed, failed);
  run_state(rid, st);
  if (strcmp(st, "failed") != 0)
    check_fail_at(__FILE__, __LINE__, "run %s: dag_run.state %s, want "
                  "failed", rid, st);
}

/* Roots queued, the rest scheduled; evaluation follows the trigger rules
 * and ends the run failed when a leaf is upstream_failed. */
TEST(t_insert_and_evaluate)
{
  struct err E = {0};
  char rid[SCHED_RUN_ID_MAX + 1];
  REQUIRE(!new_run("2025-02-01", rid));
  CHECK_EQ_STR(ti(rid, "a").state, "queued");
  CHECK_EQ_STR(ti(rid, "b").state, "scheduled");
  CHECK_EQ_STR(ti(rid, "d").state, "scheduled");
  CHECK_EQ_INT(ti(rid, "b").max_tries, 2); /* retries: 1 */
  CHECK_EQ_INT(ti(rid, "c").max_tries, 1);

  struct sched_eval ev;
  /* nothing finished: nothing decided */
  CHECK_OK(evaluate(rid, &ev, &E));
  CHECK_EQ_INT(ev.queued, 0);
  CHECK_EQ_INT(ev.finished, 0);
  REQUIRE(!exec_f("UPDATE task_instance SET state = 'success' WHERE run_id "
                  "= '%s' AND task_id = 'a'",
                  rid));
  CHECK_OK(evaluate(rid, &ev, &E));
  CHECK_EQ_INT(ev.queued, 2);
  CHECK_EQ_STR(ti(rid, "b").state, "queued");
  CHECK_EQ_STR(ti(rid, "c").state, "queued");
  CHECK_EQ_STR(ti(rid, "d").state, "scheduled");
  /* evaluating again changes nothing */
  CHECK_OK(evaluate(rid, &ev, &E));
  CHECK_EQ_INT(ev.queued, 0);

  REQUIRE(!exec_f("UPDATE task_instance SET state = IF(task_id = 'b', "
                  "'success', 'failed') WHERE run_id = '%s' AND task_id IN "
                  "('b', 'c')",
                  rid));
  CHECK_OK(evaluate(rid, &ev, &E));
  check_run_failed(rid, &ev, "c");
  /* a finished run is not finished twice */
  CHECK_OK(evaluate(rid, &ev, &E));
  CHECK_EQ_INT(ev.finished, 0);
}

/* Claim TASK of RUN_ID as BY and finish the attempt with CODE
 * (INTERRUPTED): finish succeeds and leaves the attempt in WANT (NULL:
 * not looked at); *lost and *ev as finish gives them.  -1 when the claim
 * failed (nothing to check then). */
static int attempt(const char *run_id, const char *task, const char *by,
                   enum err_code code, int interrupted, const char *want,
                   int *lost, struct sched_eval *ev)
{
  struct err e = {0};
  char state[16] = "";
  if (claim(run_id, task, by))
    return -1;
  enum err_code rc = finish(run_id, task, code, interrupted, state, lost, ev,
                            &e);
  if (rc != ERR_OK)
    check_fail_at(__FILE__, __LINE__, "finish %s with %s: %s: %s", task,
                  err_str(code), err_str(rc), e.msg);
  if (want && strcmp(state, want) != 0)
    check_fail_at(__FILE__, __LINE__, "finish %s with %s: state %s, want %s",
                  task, err_str(code), state, want);
  return 0;
}

/* Attempts end through sched_attempt_finish: success queues downstream,
 * a failure with a try left is up_for_retry with a next_try_at, then
 * failed; the run ends when the last task does. */
TEST(t_attempts_to_success_and_retry)
{
  char rid[SCHED_RUN_ID_MAX + 1];
  int lost = -1;
  struct sched_eval ev;
  REQUIRE(!new_run("2025-03-01", rid));

  REQUIRE(!attempt(rid, "a", CORE.claim_id, ERR_OK, 0, "success", &lost, &ev));
  CHECK_EQ_INT(lost, 0);
  CHECK_EQ_INT(ev.queued, 2);
  CHECK_EQ_STR(ti(rid, "a").state, "success");
  CHECK_EQ_STR(ti(rid, "b").state, "queued");

  /* b fails on try 1 of 2: up_for_retry, retry time set */
  REQUIRE(!attempt(rid, "b", CORE.claim_id, ERR_IO, 0, "up_for_retry", &lost,
                   &ev));
  struct tirow b = ti(rid, "b");
  CHECK_EQ_STR(b.state, "up_for_retry");
  CHECK_EQ_INT(b.next_try_set, 1);
  CHECK_EQ_INT(b.max_tries, 2);
  /* its log says why */
  char sql[700];
  snprintf(sql, sizeof(sql),
           "SELECT COUNT(*) FROM task_log WHERE run_id = '%s' AND task_id = "
           "'b' AND line LIKE '%%broke on purpose%%'",
           rid);
  CHECK(fx_q1(P, sql) >= 1);

  /* try 2 of 2 fails too: failed, and d is upstream_failed */
  REQUIRE(!attempt(rid, "b", CORE.claim_id, ERR_IO, 0, "failed", &lost, &ev));
  CHECK_EQ_INT(ti(rid, "b").try_number, 2);
  CHECK_EQ_INT(ev.finished, 0); /* c still queued */

  REQUIRE(!attempt(rid, "c", CORE.claim_id, ERR_OK, 0, NULL, &lost, &ev));
  check_run_failed(rid, &ev, "b");
}

/* The whole DAG succeeds: the run ends `success` with the last task. */
TEST(t_run_success)
{
  char rid[SCHED_RUN_ID_MAX + 1], st[32];
  int lost = -1;
  struct sched_eval ev;
  REQUIRE(!new_run("2025-04-01", rid));
  static const char *const order[] = {"a", "b", "c", "d"};
  for (int i = 0; i < 4; i++) {
    REQUIRE(!attempt(rid, order[i], CORE.claim_id, ERR_OK, 0, "success", &lost,
                     &ev));
    CHECK_EQ_INT(ev.finished, i == 3);
    run_state(rid, st);
    CHECK_EQ_STR(st, i == 3 ? "success" : "running");
  }
  CHECK_EQ_STR(ev.state, "success");
  CHECK_EQ_STR(ev.failed, "");
}

/* An interrupted attempt goes back without using a try; an attempt whose
 * claim was taken over writes nothing. */
TEST(t_interrupted_and_lost)
{
  char rid[SCHED_RUN_ID_MAX + 1];
  int lost = -1;
  struct sched_eval ev;
  REQUIRE(!new_run("2025-05-01", rid));
  REQUIRE(!attempt(rid, "a", CORE.claim_id, ERR_CANCELED, 1, "up_for_retry",
                   &lost, &ev));
  CHECK_EQ_INT(lost, 0);
  struct tirow a = ti(rid, "a");
  CHECK_EQ_STR(a.state, "up_for_retry");
  CHECK_EQ_INT(a.max_tries, 2); /* one try given back */

  /* taken over by another daemon: our result is dropped */
  REQUIRE(!attempt(rid, "a", "otherhost:1:abc", ERR_OK, 0, NULL, &lost, &ev));
  CHECK_EQ_INT(lost, 1);
  CHECK_EQ_STR(ti(rid, "a").state, "running");
  CHECK_EQ_STR(ti(rid, "b").state, "scheduled");
}

/* ---- set-up ------------------------------------------------------------ */

static int setup(void)
{
  struct err e = {0};
  struct db_conn *c = NULL;
  char dir[1100], path[700];
  if (fx_db_recreate(DBNAME) || !(P = fx_pool(DBNAME, 2)))
    return -1;
  snprintf(dir, sizeof(dir), "%s/sql/migrations", fx_src());
  if (db_acquire(P, 10000, &c, &e) ||
      schema_migrate(c, dir, NULL, NULL, NULL, &e)) {
    fprintf(stderr, "migrate: %s\n", e.msg);
    if (c)
      db_release(P, c);
    return -1;
  }
  db_release(P, c);
  if (cron_tz_load(&TZ, "UTC", &e)) {
    fprintf(stderr, "tz: %s\n", e.msg);
    return -1;
  }
  snprintf(path, sizeof(path), "%s/sr.yaml", fx_tmp());
  if (fx_write_text(path, DAG_YAML) || dag_load_file(path, &D, &e)) {
    fprintf(stderr, "dag: %s\n", e.msg);
    return -1;
  }
  if (sched_core_init(&CORE))
    return -1;
  CORE.meta = P;
  CORE.task_db = P;
  CORE.tz = TZ;
  CORE.lease_s = 5;
  sched_core_ids(&CORE, "test:");
  return 0;
}

int main(void)
{
  log_set_level(LOG_ERROR);
  if (!fx_tmp() || setup()) {
    fprintf(stderr, "test_sched_run: set-up failed\n");
    return 1;
  }
  RUN(t_trigger);
  RUN(t_insert_and_evaluate);
  RUN(t_attempts_to_success_and_retry);
  RUN(t_run_success);
  RUN(t_interrupted_and_lost);
  sched_core_fini(&CORE);
  dag_destroy(D);
  cron_tz_destroy(TZ);
  db_pool_destroy(P);
  return check_done();
}
