/* test_dag.c - DAG YAML loading and validation.
 *
 * Fixtures live in tests/unit/data/dags: valid/ (block and flow style,
 * fan-out/fan-in, every task type), bad/ (one file per kind of error,
 * with the exact message and line:col asserted) and dir/ (a directory
 * with good, broken, duplicate and ignored files).  Run from the source
 * root (tests/run.sh does; MLOPSD_SRC is honoured).
 */
#include "check.h"
#include "fixture.h"
#include "mlopsd/dag.h"
#include "mlopsd/task.h"

#include <cjson/cJSON.h>
#include <sys/stat.h>
#include <unistd.h>

#define FX "tests/unit/data/dags/"

static struct dag *load_ok(const char *path)
{
  struct dag *d = NULL;
  struct err e = {0};
  if (dag_load_file(path, &d, &e) != ERR_OK) {
    fprintf(stderr, "  load %s: %s\n", path, e.msg);
    return NULL;
  }
  return d;
}

static const struct dag_task *task(const struct dag *d, const char *id)
{
  ptrdiff_t i = dag_task_index(d, id);
  return i < 0 ? NULL : &d->tasks[i];
}

TEST(fanout)
{
  struct dag *d = load_ok(FX "valid/fanout.yaml");
  REQUIRE(d);
  CHECK_EQ_STR(d->dag_id, "fan_out_in");
  CHECK_EQ_STR(d->description, "One start task, three parallel branches, "
                               "one join.\n");
  CHECK_EQ_STR(d->schedule, "30 2 * * MON-FRI");
  CHECK(d->cron.minute == (1ull << 30) && d->cron.hour == (1u << 2) &&
        d->cron.dow == 0x3e);
  CHECK(d->start_date.set && d->start_date.year == 2025 &&
        d->start_date.month == 1 && d->start_date.day == 1 &&
        d->start_date.hour == 0);
  CHECK_EQ_INT(d->catchup, 1);
  CHECK_EQ_INT(d->max_active_runs, 2);
  REQUIRE(d->ntags == 2);
  CHECK_EQ_STR(d->tags[1], "fanout");
  CHECK_EQ_STR(cJSON_GetObjectItem(d->params, "lookback_days")->valuestring,
               "7");
  CHECK_EQ_STR(cJSON_GetObjectItem(d->params, "label")->valuestring,
               "Standard");
  CHECK_EQ_INT(d->default_args.retries, 2);
  CHECK_EQ_INT(d->default_args.retry_delay_s, 90);
  CHECK_EQ_INT(d->default_args.exponential_backoff, 1);
  CHECK_EQ_INT(d->default_args.max_retry_delay_s, 3600);
  CHECK_EQ_INT(d->default_args.timeout_s, 7200);
  CHECK_EQ_STR(d->on_failure.url, "https://hooks.example.com/fail?dag="
                                  "{{ dag_id }}&run={{ run_id }}");
  CHECK_EQ_STR(d->on_failure.method, "POST");
  CHECK_EQ_STR(cJSON_GetObjectItem(d->on_failure.headers, "Authorization")
                   ->valuestring,
               "Bearer {{ params.table }}");
  CHECK_EQ_STR(d->on_failure.body,
               "{\"dag\": \"{{ dag_id }}\", \"ds\": \"{{ ds }}\"}");
  CHECK_EQ_INT(d->on_failure.line, 21);
  CHECK_EQ_STR(d->on_success.url, "https://hooks.example.com/ok");
  CHECK(d->on_success.headers == NULL && d->on_success.body == NULL);

  REQUIRE(d->ntasks == 5);
  const struct dag_task *start = task(d, "start"), *join = task(d, "join");
  const struct dag_task *b = task(d, "branch_b"), *c = task(d, "branch_c");
  REQUIRE(start && join && b && c);
  CHECK_EQ_INT(start->ndownstream, 3);
  CHECK_EQ_INT(start->nupstream, 0);
  CHECK_EQ_INT(join->nupstream, 3);
  CHECK_EQ_STR(join->depends_on[2], "branch_c");
  CHECK_EQ_INT(join->upstream[2], 3);
  CHECK_EQ_INT(join->trigger_rule, DAG_TR_NONE_FAILED);
  CHECK_EQ_INT(b->trigger_rule, DAG_TR_ALL_SUCCESS);
  CHECK_EQ_INT(c->nupstream, 1); /* depends_on: start (a bare name) */
  /* effective retry settings: defaults with per-task overrides */
  CHECK_EQ_INT(b->retry.retries, 0);
  CHECK_EQ_INT(b->retry.retry_delay_s, 90);
  CHECK_EQ_INT(join->retry.retries, 2);
  CHECK_EQ_INT(join->retry.retry_delay_s, 45);
  CHECK_EQ_INT(join->retry.timeout_s, 600);
  CHECK_EQ_INT(c->retry.timeout_s, 30);
  /* http declares timeout itself: passed on as seconds */
  CHECK_EQ_STR(dag_task_str(c, "timeout"), "30");
  CHECK_EQ_STR(dag_task_str(c, "method"), "POST");
  const cJSON *st = dag_task_json(c, "expect_status");
  REQUIRE(cJSON_IsArray(st) && cJSON_GetArraySize(st) == 2);
  CHECK_EQ_STR(cJSON_GetArrayItem(st, 1)->valuestring, "201");
  CHECK(dag_task_str(c, "expect_status") == NULL); /* not a scalar */
  CHECK(dag_task_str(c, "nope") == NULL);
  CHECK_EQ_STR(dag_task_str(b, "sql"),
               "DELETE FROM {{ params.table }}_target\n"
               " WHERE base_dt < DATE_SUB('{{ ds }}', INTERVAL "
               "{{ params.lookback_days }} DAY);\n"
               "SELECT COUNT(*) FROM {{ params.table }} WHERE label = "
               "{{ conf.label }};\n");
  CHECK_EQ_STR(cJSON_GetObjectItem(dag_task_json(task(d, "branch_a"), "env"),
                                   "DAY")->valuestring,
               "{{ ds_nodash }}");
  CHECK_EQ_STR(start->type->name, "shell");
  CHECK_EQ_INT(start->line, 27);
  CHECK_EQ_INT(start->col, 5);
  /* topological order: start first, join last */
  CHECK_EQ_INT(d->topo[0], 0);
  CHECK_EQ_INT(d->topo[4], 4);
  CHECK_EQ_INT(d->nsources, 1);
  CHECK_EQ_STR(d->sources[0].path, FX "valid/fanout.yaml");
  CHECK_EQ_INT(dag_sources_changed(d), 0);
  dag_destroy(d);
}

TEST(all_types)
{
  struct dag *d = load_ok(FX "valid/all_types.yaml");
  REQUIRE(d);
  CHECK_EQ_INT(d->ntasks, 12);
  for (int i = 0; task_type_at(i); i++) {
    int found = 0;
    for (size_t k = 0; k < d->ntasks; k++)
      found |= d->tasks[k].type == task_type_at(i);
    if (!found)
      fprintf(stderr, "  type %s not covered\n", task_type_at(i)->name);
    CHECK(found);
  }
  const struct dag_task *x = task(d, "extract");
  REQUIRE(x);
  CHECK_EQ_STR(x->file_path, FX "valid/queries/extract_features.sql");
  REQUIRE(x->file_text);
  CHECK(strstr(x->file_text, "INSERT INTO credit_score_features_target") !=
        NULL);
  CHECK_EQ_INT(d->nsources, 2);
  CHECK_EQ_STR(d->sources[1].path, FX "valid/queries/extract_features.sql");
  CHECK_EQ_STR(dag_task_str(task(d, "inline_sql"), "transaction"), "true");
  CHECK_EQ_STR(dag_task_str(task(d, "http"), "expect_status"), "204");
  CHECK_EQ_STR(cJSON_GetObjectItem(dag_task_json(task(d, "trigger"), "conf"),
                                   "day")->valuestring,
               "{{ ds }}");
  CHECK_EQ_INT(task(d, "drift")->trigger_rule, DAG_TR_ALL_DONE);
  CHECK(d->schedule && d->cron.minute == 1 && d->cron.hour == 1);
  CHECK_EQ_INT(d->catchup, 0);
  CHECK_EQ_INT(d->max_active_runs, 16);
  CHECK_EQ_INT(d->default_args.retry_delay_s, 300);
  CHECK_EQ_INT(d->default_args.retries, 0);
  CHECK_EQ_INT(d->default_args.timeout_s, 0);
  /* topo: every task after its upstreams */
  size_t rank[16];
  for (size_t k = 0; k < d->ntasks; k++)
    rank[d->topo[k]] = k;
  for (size_t k = 0; k < d->ntasks; k++)
    for (size_t u = 0; u < d->tasks[k].nupstream; u++)
      CHECK(rank[d->tasks[k].upstream[u]] < rank[k]);
  dag_destroy(d);
}

TEST(flow_style)
{
  struct dag *d = load_ok(FX "valid/flow.yaml");
  REQUIRE(d);
  CHECK_EQ_STR(d->dag_id, "flow.style-1");
  CHECK(d->schedule == NULL);
  CHECK_EQ_INT(d->catchup, 0);
  CHECK_EQ_INT(d->ntasks, 3);
  CHECK_EQ_INT(task(d, "c")->trigger_rule, DAG_TR_ONE_SUCCESS);
  CHECK_EQ_INT(task(d, "c")->nupstream, 2);
  CHECK_EQ_INT(task(d, "a")->ndownstream, 2);
  CHECK_EQ_INT(task(d, "b")->line, 3);
  CHECK_EQ_INT(task(d, "b")->col, 10);
  dag_destroy(d);
}

static const struct {
  const char *file, *msg;
} bad[] = {
    {"syntax", "5:4: YAML syntax error: did not find expected '-' indicator "
               "(while parsing a block collection at line 3)"},
    {"wrong_type", "2:10: catchup must be true or false, not 'maybe'"},
    {"no_dag_id", "1:1: missing dag_id"},
    {"bad_dag_id", "1:9: dag_id 'bad id!' must be 1-250 letters, digits, _ "
                   ". -"},
    {"dup_task", "5:9: duplicate task id 'a' (first at line 3)"},
    {"unknown_dep", "9:21: task 'b' depends on unknown task 'nope'"},
    {"cycle", "9:25: cycle: a -> b -> c -> a"},
    {"self_cycle", "3:54: cycle: a -> a"},
    {"unknown_type", "4:11: task 'a': unknown type 'bash' (types: sql, "
                     "shell, http, trigger_dag, train, validate, deploy, "
                     "drift, label_feedback, db_clean, batch_predict)"},
    {"unknown_field", "6:5: task 'a': unknown field 'shell' for type 'shell' "
                      "(fields: command, env, cwd; common: id, type, "
                      "depends_on, trigger_rule, retries, retry_delay, "
                      "retry_exponential_backoff, max_retry_delay, timeout, "
                      "description)"},
    {"unknown_template", "9:48: task 'extract': field 'sql': unknown "
                         "template name 'params.dayz': the DAG declares no "
                         "param 'dayz' (params: days)"},
    {"unknown_template_inline", "5:19: task 'a': field 'command': unknown "
                                "template name 'yesterday_ds' (known: ds, "
                                "ds_nodash, ds_add(N), run_id, dag_id, "
                                "params.NAME, conf.NAME)"},
    {"bad_cron", "2:11: schedule '61 * * * *': minute 61 out of range 0-59"},
    {"bad_cron_name", "2:11: schedule '0 0 * * FUNDAY': day-of-week 'FUNDAY' "
                      "is not a number or name"},
    {"never_fires", "2:11: schedule '0 0 31 4,6 *' never fires (no month in "
                    "it has that day)"},
    {"bad_trigger_rule", "8:19: task 'b': trigger_rule 'all_succes' is not "
                         "one of all_success, all_done, one_success, "
                         "all_failed, none_failed, one_failed, "
                         "none_skipped"},
    {"bad_duration", "4:16: default_args: retry_delay must be a duration "
                     "like 30s, 5m, 1h30m, 2d or seconds (up to 365d), not "
                     "'5 minutes'"},
    {"bad_task_duration", "6:14: task 'a': timeout must be a duration like "
                          "30s, 5m, 1h30m, 2d or seconds (up to 365d), not "
                          "'1m1h'"},
    {"missing_field", "3:5: task 'call': type 'http' needs field 'url'"},
    {"unknown_key", "2:1: unknown key 'schedule_interval' (use 'schedule') "
                    "(known: dag_id, description, schedule, start_date, "
                    "catchup, max_active_runs, tags, params, default_args, "
                    "on_failure, on_success, tasks)"},
    {"conf_in_quotes", "5:49: task 'q': field 'sql': {{ conf.name }} is "
                       "inside a '...' string: conf values are bound as "
                       "parameters (?), which cannot stand inside quotes; "
                       "put the tag outside quotes, e.g. WHERE name = "
                       "{{ conf.name }} or CONCAT('%', {{ conf.name }}, "
                       "'%')"},
    {"missing_sql_file", "5:15: task 'extract': sql_file: cannot open "
                         "queries/nope.sql: No such file or directory"},
    {"unsafe_param", "7:18: task 'q': field 'sql': param value 'x'; DROP "
                     "TABLE t; --' is not safe in sql (allowed: a number, "
                     "or letters, digits, blanks and _ . : - without "
                     "\"--\"); pass it as {{ conf.NAME }} to bind it "
                     "instead"},
    {"one_of", "3:5: task 'q': give exactly one of 'sql' or 'sql_file'"},
    {"type_check", "6:13: task 'call': field 'method': 'FETCH' is not one "
                   "of GET, POST, PUT, DELETE, PATCH"},
    {"duplicate_key", "6:5: duplicate key 'command' in a task (first at "
                      "line 5)"},
    {"empty", "1:1: empty file: a DAG needs dag_id and tasks"},
    {"two_docs", "5:1: a DAG file holds one YAML document; this is a second "
                 "one"},
    {"bad_start_date", "2:13: start_date '2025-02-30' is not a date "
                       "YYYY-MM-DD or date-time YYYY-MM-DDTHH:MM[:SS] "
                       "(scheduler time zone)"},
    {"unterminated_sql", "7:7: task 'q': field 'sql': a '...' string is "
                         "never closed"},
    {"wrong_field_type", "6:10: task 'a': field 'env' must be a mapping "
                         "(NAME: value), not a list"},
    {"no_tasks", "2:8: tasks is empty: a DAG needs at least one task"},
    {"bad_callback", "3:8: on_failure url must start with http:// or "
                     "https://"},
};

TEST(errors)
{
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char path[256], want[ERR_MSG_MAX];
    struct dag *d = NULL;
    struct err e = {0};
    snprintf(path, sizeof(path), FX "bad/%s.yaml", bad[i].file);
    snprintf(want, sizeof(want), "%s:%s", path, bad[i].msg);
    CHECK_EQ_INT(dag_load_file(path, &d, &e), ERR_PARSE);
    CHECK(d == NULL);
    CHECK_EQ_STR(e.msg, want);
  }
  /* an error inside an sql_file points into that file */
  struct dag *d = NULL;
  struct err e = {0};
  CHECK_EQ_INT(dag_load_file(FX "bad/sql_file_template.yaml", &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(e.msg, FX "bad/queries/bad_template.sql:3:27: bad template "
                         "'{{ ds_add(x) }}': ds_add takes a whole number of "
                         "days, e.g. ds_add(-1) (sql_file of task 'extract' "
                         "at " FX "bad/sql_file_template.yaml:5:15)");
  CHECK_EQ_INT(dag_load_file(FX "bad/does_not_exist.yaml", &d, &e),
               ERR_NOTFOUND);
  CHECK_EQ_STR(e.msg, "cannot open " FX "bad/does_not_exist.yaml: No such "
                      "file or directory");
  CHECK_EQ_INT(dag_load_file(FX "bad", &d, &e), ERR_IO);
}

TEST(directory)
{
  struct dag_set *s = NULL;
  struct dag_errors errs = {0};
  struct err e = {0};
  REQUIRE(dag_load_dir(FX "dir", &s, &errs, &e) == ERR_OK);
  CHECK_EQ_INT(dag_set_count(s), 2);
  CHECK_EQ_STR(dag_set_at(s, 0)->dag_id, "alpha");
  CHECK_EQ_STR(dag_set_at(s, 0)->path, FX "dir/a_good.yaml");
  CHECK_EQ_STR(dag_set_at(s, 1)->dag_id, "delta");
  CHECK(dag_set_at(s, 2) == NULL);
  CHECK(dag_set_find(s, "delta") == dag_set_at(s, 1));
  CHECK(dag_set_find(s, "broken") == NULL);
  CHECK(dag_set_find(s, "hidden") == NULL);
  REQUIRE(errs.n == 2);
  CHECK_EQ_STR(errs.v[0].file, FX "dir/b_broken.yaml");
  CHECK_EQ_STR(errs.v[0].msg, FX "dir/b_broken.yaml:3:19: task 'a': unknown "
                              "type 'shel' (types: sql, shell, http, "
                              "trigger_dag, train, validate, deploy, drift, "
                              "label_feedback, db_clean, batch_predict)");
  CHECK_EQ_INT(errs.v[1].code, ERR_EXISTS);
  CHECK_EQ_STR(errs.v[1].msg, FX "dir/c_dup.yaml:2:9: dag_id 'alpha' is "
                              "already defined in " FX "dir/a_good.yaml");

  /* take / add / refcounts */
  struct dag *a = dag_set_take(s, "alpha");
  REQUIRE(a);
  CHECK_EQ_INT(dag_set_count(s), 1);
  CHECK(dag_set_take(s, "alpha") == NULL);
  struct dag *a2 = dag_ref(a);
  CHECK(a2 == a);
  REQUIRE(dag_set_add(s, a, &e) == ERR_OK); /* the set owns one ref */
  CHECK_EQ_INT(dag_set_add(s, a2, &e), ERR_EXISTS);
  CHECK_EQ_STR(e.msg, "dag_id 'alpha' is already defined in " FX
                      "dir/a_good.yaml");
  CHECK_EQ_STR(dag_set_at(s, 0)->dag_id, "alpha");
  dag_set_destroy(s); /* drops the set's reference; a2 still valid */
  CHECK_EQ_STR(a2->dag_id, "alpha");
  dag_destroy(a2);
  dag_errors_free(&errs);
  CHECK(errs.n == 0 && errs.v == NULL);
  dag_errors_free(NULL);
  dag_set_destroy(NULL);
  dag_destroy(NULL);

  CHECK_EQ_INT(dag_load_dir(FX "nope", &s, &errs, &e), ERR_NOTFOUND);
  struct dag_set *empty = NULL;
  REQUIRE(dag_set_create(&empty, &e) == ERR_OK);
  CHECK(dag_set_count(empty) == 0 && dag_set_find(empty, "x") == NULL);
  dag_set_destroy(empty);
}

/* ---- files written on the fly ---------------------------------------- */


static const char *write_tmp(const char *name, const char *text)
{
  static char path[256];
  snprintf(path, sizeof(path), "%s/%s", fx_tmp(), name);
  FILE *f = fopen(path, "w");
  if (!f)
    return NULL;
  fputs(text, f);
  fclose(f);
  return path;
}

static enum err_code load_text(const char *text, struct dag **d,
                               struct err *e)
{
  const char *p = write_tmp("t.yaml", text);
  return p ? dag_load_file(p, d, e) : ERR_IO;
}

/* message after "PATH:" */
static const char *tail(const struct err *e)
{
  const char *p = strstr(e->msg, "t.yaml:");
  return p ? p + 7 : e->msg;
}

TEST(durations)
{
  static const struct {
    const char *v;
    int secs;
  } ok[] = {{"90", 90}, {"0", 0}, {"30s", 30}, {"5m", 300}, {"1h30m", 5400},
            {"2d", 172800}, {"1d2h3m4s", 93784}, {"365d", 31536000}};
  static const char *const badv[] = {"1h1h", "5x", "-5", "\"\"", "m",
                                     "30m1h", "366d", "1.5h", "[1]"};
  char text[256];
  struct dag *d;
  struct err e = {0};
  for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
    snprintf(text, sizeof(text),
             "dag_id: x\ndefault_args: {retry_delay: %s}\n"
             "tasks: [{id: a, type: shell, command: echo}]\n",
             ok[i].v);
    d = NULL;
    CHECK_EQ_INT(load_text(text, &d, &e), ERR_OK);
    if (d) {
      CHECK_EQ_INT(d->default_args.retry_delay_s, ok[i].secs);
      dag_destroy(d);
    }
  }
  for (size_t i = 0; i < sizeof(badv) / sizeof(badv[0]); i++) {
    snprintf(text, sizeof(text),
             "dag_id: x\ndefault_args: {retry_delay: %s}\n"
             "tasks: [{id: a, type: shell, command: echo}]\n",
             badv[i]);
    d = NULL;
    if (load_text(text, &d, &e) != ERR_PARSE) {
      fprintf(stderr, "  duration '%s' accepted\n", badv[i]);
      CHECK(0);
      dag_destroy(d);
    } else {
      CHECK(strstr(e.msg, "2:29: default_args: retry_delay must be a "
                          "duration") != NULL);
    }
  }
}

TEST(retry_delay)
{
  struct dag_retry r = {3, 60, 0, 86400, 0};
  CHECK_EQ_INT(dag_retry_delay(&r, 1), 60);
  CHECK_EQ_INT(dag_retry_delay(&r, 3), 60);
  r.exponential_backoff = 1;
  CHECK_EQ_INT(dag_retry_delay(&r, 1), 60);
  CHECK_EQ_INT(dag_retry_delay(&r, 2), 120);
  CHECK_EQ_INT(dag_retry_delay(&r, 4), 480);
  r.max_retry_delay_s = 300;
  CHECK_EQ_INT(dag_retry_delay(&r, 4), 300);
  CHECK_EQ_INT(dag_retry_delay(&r, 1000), 300);
  CHECK_EQ_STR(dag_trigger_rule_name(DAG_TR_NONE_SKIPPED), "none_skipped");
  CHECK_EQ_STR(dag_trigger_rule_name((enum dag_trigger_rule)99), "?");
}

TEST(positions_and_yaml)
{
  struct dag *d = NULL;
  struct err e = {0};
  /* literal block: line and column inside the block; leading blank line */
  CHECK_EQ_INT(load_text("dag_id: x\n"
                         "tasks:\n"
                         "  - id: a\n"
                         "    type: sql\n"
                         "    sql: |\n"
                         "\n"
                         "        SELECT 1;\n"
                         "          SELECT {{ nope }};\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "8:18: task 'a': field 'sql': unknown template "
                         "name 'nope' (known: ds, ds_nodash, ds_add(N), "
                         "run_id, dag_id, params.NAME, conf.NAME)");
  /* single-quoted scalar */
  CHECK_EQ_INT(load_text("dag_id: x\ntasks:\n- {id: a, type: shell, "
                         "command: 'echo {{ ds_add(1x) }}'}\n",
                         &d, &e),
               ERR_PARSE);
  CHECK(strncmp(tail(&e), "3:39: task 'a': field 'command': bad template",
                39) == 0);
  /* anchors and aliases are resolved */
  REQUIRE(load_text("dag_id: x\n"
                    "default_args: &d {retries: 3}\n"
                    "tasks:\n"
                    "  - &t {id: a, type: shell, command: echo, retries: 1}\n"
                    "  - {id: b, type: shell, command: echo, depends_on: "
                    "[a]}\n",
                    &d, &e) == ERR_OK);
  CHECK_EQ_INT(d->tasks[0].retry.retries, 1);
  CHECK_EQ_INT(d->tasks[1].retry.retries, 3);
  dag_destroy(d);
  /* a "billion laughs" field is refused, not expanded */
  CHECK_EQ_INT(load_text("dag_id: x\n"
                         "tasks:\n"
                         "  - id: a\n"
                         "    type: trigger_dag\n"
                         "    dag_id: y\n"
                         "    conf:\n"
                         "      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                         "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                         "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                         "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                         "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                         "      f: [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n",
                         &d, &e),
               ERR_PARSE);
  CHECK(strstr(e.msg, "7:7: task 'a': field 'conf' is too large (more than "
                      "100000 values after aliases)") != NULL);
  /* nested conf is allowed and its strings are checked at any depth;
   * env must stay flat (the shell type's check, pointed at the field) */
  REQUIRE(load_text("dag_id: x\ntasks:\n- {id: a, type: trigger_dag, "
                    "dag_id: y, conf: {k: {n: [1, '{{ ds }}']}}}\n",
                    &d, &e) == ERR_OK);
  dag_destroy(d);
  CHECK_EQ_INT(load_text("dag_id: x\ntasks:\n- {id: a, type: trigger_dag, "
                         "dag_id: y, conf: {k: {n: [1, '{{ dz }}']}}}\n",
                         &d, &e),
               ERR_PARSE);
  CHECK(strncmp(tail(&e), "3:60: task 'a': field 'conf': unknown template "
                          "name 'dz'", 55) == 0);
  CHECK_EQ_INT(load_text("dag_id: x\ntasks:\n- {id: a, type: shell, "
                         "command: x, env: {A: {B: c}}}\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "3:41: task 'a': field 'env.A': expected a single "
                         "value");
  /* tasks declared downstream first: topo still puts upstream first */
  REQUIRE(load_text("dag_id: x\ntasks:\n"
                    "- {id: d, type: shell, command: x, depends_on: [b, c]}\n"
                    "- {id: c, type: shell, command: x, depends_on: [a]}\n"
                    "- {id: b, type: shell, command: x, depends_on: [a]}\n"
                    "- {id: a, type: shell, command: x}\n",
                    &d, &e) == ERR_OK);
  CHECK(d->topo[0] == 3 && d->topo[1] == 1 && d->topo[2] == 2 &&
        d->topo[3] == 0);
  dag_destroy(d);
  /* null values: schedule null = manual, body ~ = absent */
  REQUIRE(load_text("dag_id: x\nschedule: ~\ndescription: null\n"
                    "tasks: [{id: a, type: http, url: 'http://h/', body: ~}]\n",
                    &d, &e) == ERR_OK);
  CHECK(d->schedule == NULL && d->description == NULL);
  CHECK(dag_task_json(&d->tasks[0], "body") == NULL);
  dag_destroy(d);
  /* start_date with a time, bool spellings, params of every scalar kind */
  REQUIRE(load_text("dag_id: x\nstart_date: '2025-03-30T02:30'\n"
                    "catchup: yes\nparams: {n: 1.5, b: true, s: 'a b', e: }\n"
                    "tasks: [{id: a, type: shell, command: 'echo "
                    "{{ params.e }}{{ params.n }}'}]\n",
                    &d, &e) == ERR_OK);
  CHECK(d->start_date.hour == 2 && d->start_date.minute == 30 &&
        d->start_date.second == 0);
  CHECK_EQ_INT(d->catchup, 1);
  CHECK_EQ_STR(cJSON_GetObjectItem(d->params, "b")->valuestring, "true");
  CHECK_EQ_STR(cJSON_GetObjectItem(d->params, "e")->valuestring, "");
  dag_destroy(d);
  CHECK_EQ_INT(load_text("dag_id: x\nstart_date: 2025-03-30 02:30:61\n"
                         "tasks: [{id: a, type: shell, command: x}]\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_INT(load_text("- just\n- a list\n", &d, &e), ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "1:1: a DAG file must be a mapping with dag_id and "
                         "tasks, not a list");
  CHECK_EQ_INT(load_text("dag_id: [x]\ntasks: []\n", &d, &e), ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "1:9: dag_id must be a single value, not a list");
  CHECK_EQ_INT(load_text("dag_id: x\ntasks: [{id: a, type: shell, command: "
                         "x, retries: 101}]\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "2:51: task 'a': retries must be an integer 0..100, "
                         "not '101'");
  CHECK_EQ_INT(load_text("dag_id: x\ntasks: [{id: a, type: shell, command: "
                         "x, depends_on: [a, a]}]\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "2:58: task 'a' lists 'a' twice in depends_on");
  CHECK_EQ_INT(load_text("dag_id: x\ntasks: [{type: shell, command: x}]\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "2:9: task has no id");
  CHECK_EQ_INT(load_text("dag_id: x\ntasks:\n- {id: a, type: shell, command: "
                         "x, trigger_rule: one_failed}\n"
                         "- {id: b, type: http, url: x}\n",
                         &d, &e),
               ERR_PARSE);
  CHECK_EQ_STR(tail(&e), "4:28: task 'b': field 'url': must start with "
                         "http:// or https://");
}

/* Editing a file is noticed (mtime/size) and changes the hash. */
TEST(change_detection)
{
  char sqlp[128];
  snprintf(sqlp, sizeof(sqlp), "%s/q.sql", fx_tmp());
  REQUIRE(write_tmp("q.sql", "SELECT '{{ ds }}';\n"));
  const char *yp = write_tmp("c.yaml", "dag_id: c\ntasks:\n"
                                       "- {id: a, type: sql, sql_file: "
                                       "q.sql}\n");
  REQUIRE(yp);
  char ypath[256];
  snprintf(ypath, sizeof(ypath), "%s", yp);
  struct dag *d1 = NULL, *d2 = NULL;
  struct err e = {0};
  REQUIRE(dag_load_file(ypath, &d1, &e) == ERR_OK);
  CHECK_EQ_INT(d1->nsources, 2);
  CHECK_EQ_STR(d1->tasks[0].file_path, sqlp);
  CHECK_EQ_INT(dag_sources_changed(d1), 0);
  REQUIRE(write_tmp("q.sql", "SELECT '{{ ds }}', 2;\n"));
  CHECK_EQ_INT(dag_sources_changed(d1), 1);
  REQUIRE(dag_load_file(ypath, &d2, &e) == ERR_OK);
  CHECK(d2->hash != d1->hash);
  CHECK_EQ_INT(dag_sources_changed(d2), 0);
  unlink(sqlp);
  CHECK_EQ_INT(dag_sources_changed(d2), 1);
  dag_destroy(d1);
  dag_destroy(d2);
}

int main(void)
{
  const char *src = getenv("MLOPSD_SRC");
  if (src && chdir(src) != 0)
    perror("chdir MLOPSD_SRC");
  RUN(fanout);
  RUN(all_types);
  RUN(flow_style);
  RUN(errors);
  RUN(directory);
  RUN(durations);
  RUN(retry_delay);
  RUN(positions_and_yaml);
  RUN(change_detection);
  return check_done();
}
