/* test_task.c - the task executors (src/task*.c) against real parts: a
 * real MariaDB (database it_task), real processes through /bin/sh, a real
 * HTTP server on 127.0.0.1 (our http module) and a real job queue.
 *
 * Each test builds a task_ctx by hand: fields from a cJSON object, a log
 * sink collecting lines in memory, a conf object, a trigger callback.
 *
 * Needs MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD (tests/run.sh provides
 * them; by hand: DIR=$(mktemp -d); eval "$(tests/mariadb.sh start $DIR)";
 * build/tests/integration/test_task; tests/mariadb.sh stop $DIR).
 *
 * The process is made a child subreaper so that the orphans of a killed
 * command are reparented to it and reaped by the shell executor: then
 * "no process of the group is left" can be checked exactly.
 *
 * check: tsan
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "task_ctx.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/queue.h"
#include "mlopsd/task.h"

static struct err E;
static struct db_pool *P; /* size 3, database it_task */
static char TMP[256];     /* scratch directory */

/* ------------------------------------------------------------------ */
/* a hand-built task context */

/* the executor runs tasks at their second attempt here (try_number 2) */
static struct fx_tc *tc_new(const char *fields, const char *conf)
{
  struct fx_tc *c = fx_tc_new(fields, conf, P);
  if (c)
    c->t.try_number = 2;
  return c;
}

static int64_t q1(const char *sql) { return fx_q1(P, sql); }

/* ------------------------------------------------------------------ */
/* type table */

TEST(t_table)
{
  const char *names[] = {"sql",      "shell",  "http",  "trigger_dag",
                         "train",    "validate", "deploy", "drift",
                         "label_feedback", "db_clean", "batch_predict"};
  int n = 0;
  while (task_type_at(n))
    n++;
  /* every registered type is named above, and nothing more */
  CHECK_EQ_INT(n, (int)(sizeof(names) / sizeof(names[0])));
  CHECK(task_type_at(-1) == NULL);
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    const struct task_type *ty = task_type_find(names[i]);
    REQUIRE(ty != NULL);
    CHECK_EQ_STR(ty->name, names[i]);
    CHECK(ty->fields != NULL && ty->run != NULL);
  }
  CHECK(task_type_find("bash") == NULL);
  CHECK(task_type_find(NULL) == NULL);
  CHECK(task_type_field(&task_type_sql, "sql_file") != NULL);
  CHECK_EQ_INT(task_type_field(&task_type_sql, "sql_file")->one_of, 1);
  CHECK_EQ_INT(task_type_field(&task_type_shell, "command")->required, 1);
  CHECK_EQ_INT(task_type_field(&task_type_http, "headers")->kind,
               TASK_F_MAP);
  CHECK(task_type_field(&task_type_http, "nope") == NULL);
  CHECK(task_type_field(&task_type_train, "model") != NULL);
  CHECK(task_type_field(&task_type_drift, "threshold") != NULL);
}

/* The ML types are real executors now: run without a spec or a registry
 * they fail with a message naming what is missing (not a crash, not
 * "not built"). */
TEST(t_ml_missing_model)
{
  const char *ml[] = {"train", "validate", "deploy"};
  for (size_t i = 0; i < 3; i++) {
    struct fx_tc *c = tc_new("{\"model\": \"credit\"}", NULL);
    CHECK(fx_tc_run(c, ml[i], &E) != ERR_OK);
    CHECK(strstr(E.msg, "credit") != NULL);
    CHECK(strstr(E.msg, "not built yet") == NULL);
    fx_tc_free(c);
  }
}

TEST(t_check)
{
  struct {
    const char *type, *fields, *msg; /* msg NULL: accepted */
  } cases[] = {
      {"sql", "{\"sql\": \"SELECT 1\"}", NULL},
      {"sql", "{\"sql_file\": \"sql/features.sql\", \"transaction\": true}",
       NULL},
      {"sql", "{\"sql\": \"x\", \"sql_file\": \"y\"}", "exactly one"},
      {"sql", "{}", "exactly one"},
      {"sql", "{\"sql\": \"x\", \"transaction\": \"maybe\"}", "true or false"},
      {"shell", "{\"command\": \"ls\", \"env\": {\"A_1\": \"x\"}}", NULL},
      {"shell", "{\"command\": \"ls\", \"env\": {\"A-1\": \"x\"}}",
       "bad variable name"},
      {"shell", "{\"command\": \"ls\", \"env\": [1]}", "map"},
      {"http", "{\"url\": \"https://x/y\", \"method\": \"patch\", "
               "\"expect_status\": [200, 204], \"timeout\": 5}", NULL},
      {"http", "{\"url\": \"{{ params.base }}/y\"}", NULL},
      {"http", "{\"url\": \"ftp://x/y\"}", "http://"},
      {"http", "{\"url\": \"http://x\", \"method\": \"TRACE\"}", "TRACE"},
      {"http", "{\"url\": \"http://x\", \"expect_status\": 99}",
       "expect_status"},
      {"http", "{\"url\": \"http://x\", \"expect_status\": [\"abc\"]}",
       "expect_status"},
      {"http", "{\"url\": \"http://x\", \"timeout\": 0}", "timeout"},
      {"http", "{\"url\": \"http://x\", \"headers\": {\"A\": \"b\\r\\nC: "
               "d\"}}", "CR/LF"},
      {"http", "{\"url\": \"http://x\", \"headers\": {\"A B\": \"c\"}}",
       "bad header name"},
      {"trigger_dag", "{\"dag_id\": \"credit_ct\", \"conf\": {\"a\": 1}}",
       NULL},
      {"trigger_dag", "{\"dag_id\": \"bad id!\"}", "not a DAG id"},
      {"trigger_dag", "{\"dag_id\": \"x\", \"logical_date\": \"2025-13-01\"}",
       "not a date"},
      {"trigger_dag", "{\"dag_id\": \"x\", \"conf\": [1]}", "map"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fx_tc *c = tc_new(cases[i].fields, NULL);
    const struct task_type *ty = task_type_find(cases[i].type);
    err_clear(&E);
    enum err_code rc = ty->check(&c->t, &E);
    if (!cases[i].msg) {
      if (rc != ERR_OK)
        fprintf(stderr, "  case %zu: %s\n", i, E.msg);
      CHECK_EQ_INT(rc, ERR_OK);
    } else {
      CHECK_EQ_INT(rc, ERR_INVAL);
      CHECK_HAS(E.msg, cases[i].msg);
    }
    fx_tc_free(c);
  }
}

TEST(t_logf)
{
  struct fx_tc *c = tc_new("{}", NULL);
  task_logf(&c->t, "a %d\nb\r\n\nc", 1);
  CHECK_EQ_INT(fx_tc_count(c, "log"), 4);
  CHECK_EQ_STR(fx_tc_nth(c, "log", 0), "a 1");
  CHECK_EQ_STR(fx_tc_nth(c, "log", 1), "b");
  CHECK_EQ_STR(fx_tc_nth(c, "log", 2), "");
  CHECK_EQ_STR(fx_tc_nth(c, "log", 3), "c");
  char big[TASK_LOG_LINE_MAX + 10];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  task_logf(&c->t, "%s", big);
  CHECK_EQ_INT(strlen(fx_tc_nth(c, "log", 4)), TASK_LOG_LINE_MAX);
  CHECK_EQ_INT(strlen(fx_tc_nth(c, "log", 5)), 9);
  fx_tc_free(c);
}

/* ------------------------------------------------------------------ */
/* sql */

static struct fx_tc *sql_ctx(const char *sql, const char *extra,
                             const char *conf)
{
  struct fx_tc *c = fx_tc_with("sql", sql, extra, conf, P);
  if (c)
    c->t.try_number = 2;
  return c;
}

TEST(t_sql_script)
{
  const char *sql =
      "DROP TABLE IF EXISTS t1;\n"
      "CREATE TABLE t1 (id INT PRIMARY KEY, s VARCHAR(100));\n"
      "-- a comment; with a semicolon\n"
      "INSERT INTO t1 VALUES (1, 'a;b'), (2, 'it''s; fine'); /* c; */\n"
      "INSERT INTO t1 VALUES (3, \"dq;\"),\n"
      "  (4, 'x\\';y'), (5, `nope`) ;\n"
      "# hash comment ; here\n"
      "UPDATE t1 SET s = CONCAT(s, '!') WHERE id >= 3\n";
  /* statement 4 references column `nope`: make it valid first */
  char fixed[1024];
  snprintf(fixed, sizeof(fixed), "%s", sql);
  char *p = strstr(fixed, "`nope`");
  memcpy(p, "'ok;!'", 6);
  struct fx_tc *c = sql_ctx(fixed, NULL, NULL);
  CHECK_OK(fx_tc_run(c, "sql", &E));
  CHECK(fx_tc_has(c, "log", "statement 1 of 5 (line 1): DROP TABLE IF EXISTS "
                         "t1"));
  CHECK(fx_tc_has(c, "log", "statement 3 of 5 (line 4): INSERT INTO t1 VALUES "
                         "(1, 'a;b')"));
  CHECK(fx_tc_has(c, "log", "statement 4 of 5 (line 5): INSERT INTO t1 VALUES "
                         "(3, \"dq;\"), ..."));
  CHECK(fx_tc_has(c, "log", "statement 5 of 5 (line 8): UPDATE t1"));
  /* rows affected of each statement, in order */
  int k = 0;
  const char *want[] = {"rows affected: 0", "rows affected: 0",
                        "rows affected: 2", "rows affected: 3",
                        "rows affected: 3"};
  for (int i = 0; i < fx_tc_count(c, "log"); i++) {
    const char *l = fx_tc_nth(c, "log", i);
    if (strncmp(l, "rows affected", 13) == 0 && k < 5)
      CHECK_EQ_STR(l, want[k++]);
  }
  CHECK_EQ_INT(k, 5);
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t1"), 5);
  struct fx_str s;
  fx_qs(P, "SELECT s FROM t1 WHERE id = 1", &s);
  CHECK_EQ_STR(s.s, "a;b");
  fx_qs(P, "SELECT s FROM t1 WHERE id = 2", &s);
  CHECK_EQ_STR(s.s, "it's; fine");
  fx_qs(P, "SELECT s FROM t1 WHERE id = 4", &s);
  CHECK_EQ_STR(s.s, "x';y!");
  fx_qs(P, "SELECT s FROM t1 WHERE id = 5", &s);
  CHECK_EQ_STR(s.s, "ok;!!");
  fx_tc_free(c);
}

TEST(t_sql_error_stops)
{
  struct fx_tc *c = sql_ctx("CREATE TABLE IF NOT EXISTS t2 (id INT PRIMARY KEY);"
                         "\nDELETE FROM t2;\n"
                         "INSERT INTO t2 VALUES (10);\n"
                         "INSERT INTO t2 VALUES (10);\n"
                         "INSERT INTO t2 VALUES (11)",
                         NULL, NULL);
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_DB);
  CHECK_HAS(E.msg, "statement 4 of 5 (line 4)");
  CHECK_HAS(E.msg, "Duplicate entry '10'");
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t2 WHERE id = 10"), 1);
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t2 WHERE id = 11"), 0);
  CHECK(!fx_tc_has(c, "log", "statement 5"));
  fx_tc_free(c);

  /* the error on the 2nd statement of a 3-statement script */
  c = sql_ctx("INSERT INTO t2 VALUES (12);\n\n"
              "INSERT INTO t2 VALUES (12);\nINSERT INTO t2 VALUES (13);",
              NULL, NULL);
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_DB);
  CHECK_HAS(E.msg, "statement 2 of 3 (line 3)");
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t2 WHERE id = 13"), 0);
  fx_tc_free(c);

  /* with transaction: true nothing stays */
  c = sql_ctx("INSERT INTO t2 VALUES (20);\nINSERT INTO t2 VALUES (20);\n"
              "INSERT INTO t2 VALUES (21);",
              "\"transaction\": true", NULL);
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_DB);
  CHECK_HAS(E.msg, "statement 2 of 3 (line 2)");
  CHECK(fx_tc_has(c, "log", "transaction rolled back"));
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t2 WHERE id IN (20, 21)"), 0);
  fx_tc_free(c);

  c = sql_ctx("INSERT INTO t2 VALUES (22);\nINSERT INTO t2 VALUES (23);",
              "\"transaction\": \"yes\"", NULL);
  CHECK_OK(fx_tc_run(c, "sql", &E));
  CHECK(fx_tc_has(c, "log", "transaction committed"));
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t2 WHERE id IN (22, 23)"), 2);
  fx_tc_free(c);

  /* a syntax error in the script itself */
  c = sql_ctx("SELECT 1;\nSELECT 'unterminated", NULL, NULL);
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_PARSE);
  CHECK_HAS(E.msg, "line 2");
  fx_tc_free(c);
}

TEST(t_sql_conf_bound)
{
  const char *evil = "x'; DROP TABLE t3; --";
  char conf[256];
  snprintf(conf, sizeof(conf), "{\"name\": \"%s\", \"n\": 7}", evil);
  struct fx_tc *c = sql_ctx(
      "CREATE TABLE IF NOT EXISTS t3 (id INT, s VARCHAR(100), d DATE);\n"
      "DELETE FROM t3;\n"
      "INSERT INTO t3 VALUES ({{ conf.n }}, {{ conf.name }}, '{{ ds }}');\n"
      "INSERT INTO t3 VALUES (8, 'plain', '{{ ds_add(-1) }}');\n"
      "UPDATE t3 SET id = id + 100 WHERE s = {{ conf.name }}",
      NULL, conf);
  CHECK_OK(fx_tc_run(c, "sql", &E));
  /* the log shows the placeholders, never the values */
  CHECK(fx_tc_has(c, "log", "VALUES (?, ?, '2025-09-01')"));
  CHECK(!fx_tc_has(c, "log", "DROP TABLE t3"));
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t3"), 2);
  struct fx_str s;
  fx_qs(P, "SELECT s FROM t3 WHERE id = 107", &s);
  CHECK_EQ_STR(s.s, evil);
  fx_qs(P, "SELECT d FROM t3 WHERE id = 8", &s);
  CHECK_EQ_STR(s.s, "2025-08-31");
  fx_tc_free(c);

  /* a missing conf value fails before anything runs */
  c = sql_ctx("DELETE FROM t3;\nINSERT INTO t3 VALUES (1, {{ conf.nope }}, "
              "NULL)", NULL, "{}");
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_INVAL);
  CHECK_HAS(E.msg, "field 'sql'");
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t3"), 2);
  fx_tc_free(c);
}

TEST(t_sql_file)
{
  char dag[512], file[512];
  snprintf(dag, sizeof(dag), "%s/dags/it.yaml", TMP);
  snprintf(file, sizeof(file), "%s/dags/it_task_file.sql", TMP);
  FILE *f = fopen(file, "w");
  REQUIRE(f != NULL);
  fputs("CREATE TABLE IF NOT EXISTS t4 (d DATE);\nDELETE FROM t4;\n"
        "INSERT INTO t4 VALUES ('{{ ds }}'), ('{{ ds_add(7) }}');\n", f);
  fclose(f);
  /* relative to the DAG file's directory (not in the working dir) */
  struct fx_tc *c = tc_new("{\"sql_file\": \"it_task_file.sql\"}", NULL);
  c->t.dag_file = dag;
  CHECK_OK(fx_tc_run(c, "sql", &E));
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM t4 WHERE d IN ('2025-09-01', "
                  "'2025-09-08')"), 2);
  fx_tc_free(c);
  /* absolute */
  char fields[1024];
  snprintf(fields, sizeof(fields), "{\"sql_file\": \"%s\"}", file);
  c = tc_new(fields, NULL);
  CHECK_OK(fx_tc_run(c, "sql", &E));
  fx_tc_free(c);
  /* missing */
  c = tc_new("{\"sql_file\": \"no/such/file.sql\"}", NULL);
  c->t.dag_file = dag;
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_IO);
  CHECK_HAS(E.msg, "no/such/file.sql");
  fx_tc_free(c);
}

TEST(t_sql_timeout_kill)
{
  struct fx_tc *c = sql_ctx("SELECT 1;\nDO SLEEP(60);\nCREATE TABLE t5 (x INT)",
                         NULL, NULL);
  c->t.deadline_ms = queue_now_ms() + 500;
  c->t.timeout_s = 1;
  CHECK_EQ_INT(fx_tc_run(c, "sql", &E), ERR_TIMEOUT);
  CHECK_HAS(E.msg, "after timeout of 1s");
  CHECK(fx_tc_has(c, "log", "KILL QUERY"));
  CHECK_EQ_INT(q1("SELECT COUNT(*) FROM information_schema.tables WHERE "
                  "table_schema = 'it_task' AND table_name = 't5'"), 0);
  /* every pooled connection (the killed one too) still works */
  struct db_conn *k[3] = {NULL, NULL, NULL};
  for (int i = 0; i < 3; i++) {
    CHECK_OK(db_acquire(P, 10000, &k[i], &E));
    int64_t v = 0;
    if (k[i])
      CHECK_OK(db_query_i64(k[i], "SELECT 41 + 1", NULL, 0, &v, &E));
    CHECK_EQ_INT(v, 42);
  }
  for (int i = 0; i < 3; i++)
    db_release(P, k[i]);
  fx_tc_free(c);
}

static struct http *SRV;
static int SPORT;
static pthread_mutex_t SMU = PTHREAD_MUTEX_INITIALIZER;
static int S_NREQ;
static char S_METHOD[16], S_BODY[1024], S_HDR[256], S_CTYPE[128],
    S_INJ[64];

static void h_ok(struct http_req *req, struct http_resp *resp, void *arg)
{
  (void)arg;
  pthread_mutex_lock(&SMU);
  S_NREQ++;
  pthread_mutex_unlock(&SMU);
  (void)req;
  http_resp_content_type(resp, "text/plain");
  if (http_resp_printf(resp, "hello\nworld\n") != ERR_OK)
    http_resp_status(resp, 500);
}

static void h_fail(struct http_req *req, struct http_resp *resp, void *arg)
{
  (void)arg;
  (void)req;
  pthread_mutex_lock(&SMU);
  S_NREQ++;
  pthread_mutex_unlock(&SMU);
  http_resp_error(resp, 500, "it broke");
}

static void h_echo(struct http_req *req, struct http_resp *resp, void *arg)
{
  (void)arg;
  size_t n;
  const char *b = http_req_body(req, &n);
  const char *h = http_req_header(req, "X-Test");
  const char *ct = http_req_content_type(req);
  const char *inj = http_req_header(req, "X-Injected");
  pthread_mutex_lock(&SMU);
  S_NREQ++;
  snprintf(S_METHOD, sizeof(S_METHOD), "%s", http_req_method(req));
  snprintf(S_BODY, sizeof(S_BODY), "%.*s", (int)n, b);
  snprintf(S_HDR, sizeof(S_HDR), "%s", h ? h : "");
  snprintf(S_CTYPE, sizeof(S_CTYPE), "%s", ct ? ct : "");
  snprintf(S_INJ, sizeof(S_INJ), "%s", inj ? inj : "");
  pthread_mutex_unlock(&SMU);
  http_resp_status(resp, 201);
  if (http_resp_printf(resp, "{\"ok\": true}") != ERR_OK)
    http_resp_status(resp, 500);
}

static void h_big(struct http_req *req, struct http_resp *resp, void *arg)
{
  (void)arg;
  (void)req;
  char *p = http_resp_reserve(resp, 10000);
  if (!p)
    return;
  memset(p, 'b', 10000);
  http_resp_commit(resp, 10000);
}

static int nreq(void)
{
  pthread_mutex_lock(&SMU);
  int n = S_NREQ;
  pthread_mutex_unlock(&SMU);
  return n;
}

static struct fx_tc *http_ctx(const char *path, const char *extra)
{
  char buf[4096];
  snprintf(buf, sizeof(buf), "{\"url\": \"http://127.0.0.1:%d%s\"%s%s}",
           SPORT, path, extra ? ", " : "", extra ? extra : "");
  return tc_new(buf, NULL);
}

/* The http type on C (freed here), with CONF (JSON text, may be NULL) as
 * the run's conf, refuses the task: ERR_INVAL, and E.msg has MSG (NULL:
 * not looked at). */
static void http_refused(struct fx_tc *c, const char *conf, const char *msg)
{
  if (!c) {
    check_fail_at(__FILE__, __LINE__, "no task context");
    return;
  }
  if (conf) {
    c->conf = cJSON_Parse(conf);
    c->t.conf = c->conf;
  }
  enum err_code rc = fx_tc_run(c, "http", &E);
  if (rc != ERR_INVAL) {
    char *f = cJSON_PrintUnformatted(c->fields);
    check_fail_at(__FILE__, __LINE__, "%s: %s (%s), want refused",
                  f ? f : "?", err_str(rc), E.msg);
    cJSON_free(f);
  }
  if (msg && !strstr(E.msg, msg))
    check_fail_at(__FILE__, __LINE__, "\"%s\" lacks \"%s\"", E.msg, msg);
  fx_tc_free(c);
}

TEST(t_http_status)
{
  /* PATH with EXTRA fields: the run returns RC, E.msg has MSG (NULL: not
   * looked at), the log has each of LOGS */
  static const struct {
    const char *path, *extra;
    enum err_code rc;
    const char *msg, *logs[5];
  } cases[] = {
      {"/ok", NULL, ERR_OK, NULL,
       {"GET http://127.0.0.1:", "response: HTTP 200, 12 bytes", "hello",
        "world", NULL}},
      {"/fail", NULL, ERR_STATE, "HTTP status 500, expected 2xx",
       {"it broke", NULL}},
      {"/fail", "\"expect_status\": [200, 500]", ERR_OK, NULL, {NULL}},
      {"/ok", "\"expect_status\": 201", ERR_STATE,
       "HTTP status 200, expected 201", {NULL}},
      {"/ok", "\"expect_status\": [\"204\", 201]", ERR_STATE,
       "expected 204, 201", {NULL}},
      {"/nope", NULL, ERR_STATE, "HTTP status 404", {NULL}},
      /* only the first 4 KiB of the body are logged */
      {"/big", NULL, ERR_OK, NULL, {"10000 bytes", "cut: 5904 more bytes",
                                    NULL}},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *extra = cases[i].extra ? cases[i].extra : "";
    struct fx_tc *c = http_ctx(cases[i].path, cases[i].extra);
    REQUIRE(c);
    enum err_code rc = fx_tc_run(c, "http", &E);
    if (rc != cases[i].rc)
      check_fail_at(__FILE__, __LINE__, "GET %s {%s}: %s (%s), want %s",
                    cases[i].path, extra, err_str(rc), E.msg,
                    err_str(cases[i].rc));
    if (cases[i].msg && !strstr(E.msg, cases[i].msg))
      check_fail_at(__FILE__, __LINE__, "GET %s {%s}: \"%s\" lacks \"%s\"",
                    cases[i].path, extra, E.msg, cases[i].msg);
    for (size_t k = 0; cases[i].logs[k]; k++)
      if (!fx_tc_has(c, "log", cases[i].logs[k]))
        check_fail_at(__FILE__, __LINE__, "GET %s {%s}: no log line with "
                      "\"%s\"", cases[i].path, extra, cases[i].logs[k]);
    fx_tc_free(c);
  }
}

TEST(t_http_post)
{
  int before = nreq();
  struct fx_tc *c = http_ctx("/echo", "\"method\": \"POST\", \"body\": "
                                   "\"{\\\"ds\\\": \\\"{{ ds }}\\\"}\", "
                                   "\"headers\": {\"X-Test\": "
                                   "\"v-{{ ds_nodash }}\"}");
  CHECK_OK(fx_tc_run(c, "http", &E));
  CHECK_EQ_INT(nreq(), before + 1);
  pthread_mutex_lock(&SMU);
  CHECK_EQ_STR(S_METHOD, "POST");
  CHECK_EQ_STR(S_BODY, "{\"ds\": \"2025-09-01\"}");
  CHECK_EQ_STR(S_HDR, "v-20250901");
  CHECK_EQ_STR(S_CTYPE, "application/json");
  pthread_mutex_unlock(&SMU);
  CHECK(fx_tc_has(c, "log", "response: HTTP 201"));
  fx_tc_free(c);

  c = http_ctx("/echo", "\"method\": \"put\", \"body\": \"plain text\"");
  CHECK_OK(fx_tc_run(c, "http", &E));
  pthread_mutex_lock(&SMU);
  CHECK_EQ_STR(S_METHOD, "PUT");
  CHECK_EQ_STR(S_BODY, "plain text");
  CHECK_HAS(S_CTYPE, "text/plain");
  pthread_mutex_unlock(&SMU);
  fx_tc_free(c);

  c = http_ctx("/echo", "\"method\": \"DELETE\"");
  CHECK_OK(fx_tc_run(c, "http", &E));
  pthread_mutex_lock(&SMU);
  CHECK_EQ_STR(S_METHOD, "DELETE");
  pthread_mutex_unlock(&SMU);
  fx_tc_free(c);

  http_refused(http_ctx("/echo", "\"method\": \"TRACE\""), NULL, NULL);
}

TEST(t_http_injection)
{
  int before = nreq();
  http_refused(http_ctx("/echo", "\"method\": \"POST\", \"headers\": "
                                 "{\"X-Test\": \"a\\r\\nX-Injected: 1\"}"),
               NULL, "headers.X-Test");
  /* the same through a conf value */
  http_refused(http_ctx("/echo", "\"method\": \"POST\", \"headers\": "
                                 "{\"X-Test\": \"{{ conf.v }}\"}"),
               "{\"v\": \"a\\nX-Injected: 1\"}", "headers.X-Test");
  http_refused(
      http_ctx("/echo", "\"headers\": {\"X-Test\\r\\nX-Injected\": \"1\"}"),
      NULL, NULL);
  CHECK_EQ_INT(nreq(), before); /* nothing was sent */

  /* conf in a URL is percent-encoded: it cannot change the path */
  struct fx_tc *c = http_ctx("/echo?q={{ conf.v }}", "\"method\": \"POST\"");
  c->conf = cJSON_Parse("{\"v\": \"a b/../x\\r\\nX-Injected: 1\"}");
  c->t.conf = c->conf;
  CHECK_OK(fx_tc_run(c, "http", &E));
  pthread_mutex_lock(&SMU);
  CHECK_EQ_STR(S_INJ, "");
  pthread_mutex_unlock(&SMU);
  fx_tc_free(c);

  http_refused(tc_new("{\"url\": \"file:///etc/passwd\"}", NULL), NULL,
               "http://");

  /* the password of a URL is not logged */
  char url[256];
  snprintf(url, sizeof(url), "{\"url\": \"http://u:pw123@127.0.0.1:%d/ok\"}",
           SPORT);
  c = tc_new(url, NULL);
  CHECK_OK(fx_tc_run(c, "http", &E));
  CHECK(fx_tc_has(c, "log", "http://***@127.0.0.1"));
  CHECK(!fx_tc_has(c, "log", "pw123"));
  fx_tc_free(c);
}

/* A server that accepts connections (the kernel does) and never answers. */
static int mute_listener(int *port)
{
  int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof(a);
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      listen(s, 16) != 0 || getsockname(s, (struct sockaddr *)&a, &al) != 0)
    return -1;
  *port = ntohs(a.sin_port);
  return s;
}

TEST(t_http_timeout)
{
  int port = 0;
  int s = mute_listener(&port);
  REQUIRE(s >= 0);
  char f[256];
  snprintf(f, sizeof(f), "{\"url\": \"http://127.0.0.1:%d/x\", "
                         "\"timeout\": 1}", port);
  struct fx_tc *c = tc_new(f, NULL);
  CHECK_EQ_INT(fx_tc_run(c, "http", &E), ERR_TIMEOUT);
  CHECK_HAS(E.msg, "no complete answer within 1000 ms");
  fx_tc_free(c);

  /* the attempt's deadline bounds the request */
  snprintf(f, sizeof(f), "{\"url\": \"http://127.0.0.1:%d/x\"}", port);
  c = tc_new(f, NULL);
  c->t.deadline_ms = queue_now_ms() + 300;
  c->t.timeout_s = 3;
  CHECK_EQ_INT(fx_tc_run(c, "http", &E), ERR_TIMEOUT);
  fx_tc_free(c);

  /* cancelled through the queue */
  struct queue *q = NULL;
  struct queue_opts o = {.workers = 1, .capacity = 4, .name = "it_http"};
  CHECK_OK(queue_create(&q, &o, &E));
  REQUIRE(q != NULL);
  struct fx_tc_job j = {.type = "http"};
  j.c = tc_new(f, NULL);
  fx_tc_cancel_run(q, &j, "log", "GET http");
  CHECK_EQ_INT(j.run_rc, ERR_CANCELED);
  CHECK_HAS(j.run_msg, "http request stopped: attempt cancelled");
  fx_tc_free(j.c);
  queue_destroy(q);

  /* nothing listens: connection refused */
  close(s);
  c = tc_new(f, NULL);
  CHECK_EQ_INT(fx_tc_run(c, "http", &E), ERR_IO);
  fx_tc_free(c);
}

/* ------------------------------------------------------------------ */

int main(void)
{
  const char *host = getenv("MLOPSD_DATABASE_HOST");
  const char *user = getenv("MLOPSD_DATABASE_USER");
  const char *pass = getenv("MLOPSD_DATABASE_PASSWORD");
  const char *port = getenv("MLOPSD_DATABASE_PORT");
  if (!host || !user || !pass || !port) {
    fprintf(stderr, "test_task: MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD "
                    "must be set (tests/run.sh does)\n");
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  log_set_level(LOG_ERROR);
  signal(SIGPIPE, SIG_IGN);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    perror("prctl(PR_SET_CHILD_SUBREAPER)");

  if (fx_tmpdir(TMP, sizeof(TMP), "it_task"))
    return 1;
  char d[300];
  snprintf(d, sizeof(d), "%s/dags", TMP);
  mkdir(d, 0700);

  struct db_opts o = {.host = host, .port = atoi(port), .user = user,
                      .password = pass, .size = 1, .connect_timeout_s = 5,
                      .read_timeout_s = 60};
  struct db_pool *admin = NULL;
  struct db_conn *c = NULL;
  if (db_pool_create(&admin, &o, &E) != ERR_OK ||
      db_acquire(admin, 20000, &c, &E) != ERR_OK ||
      db_exec(c, "DROP DATABASE IF EXISTS it_task", NULL, &E) != ERR_OK ||
      db_exec(c, "CREATE DATABASE it_task CHARACTER SET utf8mb4", NULL,
              &E) != ERR_OK) {
    fprintf(stderr, "test_task: setting up it_task: %s\n", E.msg);
    printf("check: 0 passed, 1 failed\n");
    return 1;
  }
  db_release(admin, c);
  db_pool_destroy(admin);
  o.database = "it_task";
  o.size = 3;
  if (db_pool_create(&P, &o, &E) != ERR_OK) {
    fprintf(stderr, "test_task: %s\n", E.msg);
    return 1;
  }

  struct http_opts ho;
  http_opts_defaults(&ho);
  ho.listen = "127.0.0.1:0";
  if (http_create(&SRV, &ho, &E) != ERR_OK ||
      http_route(SRV, "GET", "/ok", h_ok, NULL, &E) != ERR_OK ||
      http_route(SRV, "GET", "/fail", h_fail, NULL, &E) != ERR_OK ||
      http_route(SRV, "GET", "/big", h_big, NULL, &E) != ERR_OK ||
      http_route(SRV, "POST", "/echo", h_echo, NULL, &E) != ERR_OK ||
      http_route(SRV, "PUT", "/echo", h_echo, NULL, &E) != ERR_OK ||
      http_route(SRV, "DELETE", "/echo", h_echo, NULL, &E) != ERR_OK ||
      http_start(SRV, &E) != ERR_OK) {
    fprintf(stderr, "test_task: http server: %s\n", E.msg);
    return 1;
  }
  SPORT = http_port(SRV);

  RUN(t_table);
  RUN(t_ml_missing_model);
  RUN(t_check);
  RUN(t_logf);
  RUN(t_sql_script);
  RUN(t_sql_error_stops);
  RUN(t_sql_conf_bound);
  RUN(t_sql_file);
  RUN(t_sql_timeout_kill);
  RUN(t_http_status);
  RUN(t_http_post);
  RUN(t_http_injection);
  RUN(t_http_timeout);

  struct err se = {0};
  if (http_stop(SRV, 1000, &se) != ERR_OK)
    fprintf(stderr, "test_task: http_stop: %s\n", se.msg);
  http_destroy(SRV);
  db_pool_destroy(P);
  fx_rmtree(TMP);
  return check_done();
}
