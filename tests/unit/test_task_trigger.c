/* test_task_trigger.c - the trigger_dag task type (src/task_trigger.c) on
 * its own: a hand-built task context (task_ctx.h) whose trigger callback
 * records what it was asked, no scheduler and no database.
 *
 * What is checked: the DAG id, logical date and conf are rendered as
 * templates and handed to ctx->trigger as given; the run id it answers
 * is logged; an id or date that is not one after rendering is refused
 * before anything is triggered; a callback error reaches the caller with
 * the DAG and date in the message; without a callback the type says it
 * cannot trigger; the load-time check refuses literal bad values and lets
 * templates through.
 */
#include "check.h"
#include "fixture.h"
#include "task_ctx.h"

#include "mlopsd/log.h"
#include "mlopsd/task.h"

static struct err E;

static enum err_code run(struct fx_tc *c)
{
  err_clear(&E);
  return task_type_find("trigger_dag")->run(&c->t, &E);
}

static enum err_code check_fields(const char *fields)
{
  struct fx_tc *c = fx_tc_new(fields, NULL, NULL);
  err_clear(&E);
  enum err_code rc = task_type_find("trigger_dag")->check(&c->t, &E);
  fx_tc_free(c);
  return rc;
}

TEST(conf_rendered_and_passed)
{
  struct fx_tc *c = fx_tc_new("{\"dag_id\": \"credit_score_ct\", \"conf\": "
                              "{\"from\": \"{{ dag_id }}/{{ ds }}\", \"n\": "
                              "5, \"nested\": {\"d\": \"{{ ds_add(1) }}\"}}}",
                              NULL, NULL);
  REQUIRE(c);
  CHECK_OK(run(c));
  CHECK_EQ_INT(c->ntrig, 1);
  CHECK_EQ_STR(c->trig_dag, "credit_score_ct");
  CHECK_EQ_STR(c->trig_date, "2025-09-01");
  char *conf = cJSON_PrintUnformatted(c->trig_conf);
  CHECK_EQ_STR(conf, "{\"from\":\"it_dag/2025-09-01\",\"n\":5,"
                     "\"nested\":{\"d\":\"2025-09-02\"}}");
  free(conf);
  CHECK(fx_tc_has(c, "log", "triggered DAG credit_score_ct for 2025-09-01: "
                            "run manual__2025-09-01_1"));
  fx_tc_free(c);
}

TEST(logical_date_template_and_no_conf)
{
  struct fx_tc *c = fx_tc_new("{\"dag_id\": \"other\", \"logical_date\": "
                              "\"{{ ds_add(-31) }}\"}",
                              NULL, NULL);
  REQUIRE(c);
  CHECK_OK(run(c));
  CHECK_EQ_STR(c->trig_date, "2025-08-01");
  CHECK(c->trig_conf == NULL);
  fx_tc_free(c);
}

TEST(dag_id_from_conf_refused_when_not_an_id)
{
  struct fx_tc *c =
      fx_tc_new("{\"dag_id\": \"{{ conf.d }}\"}", "{\"d\": \"x; y\"}", NULL);
  REQUIRE(c);
  CHECK_EQ_INT(run(c), ERR_INVAL);
  CHECK_HAS(E.msg, "not a DAG id");
  CHECK_EQ_INT(c->ntrig, 0);
  fx_tc_free(c);
  /* the same template with a good value goes through */
  c = fx_tc_new("{\"dag_id\": \"{{ conf.d }}\"}", "{\"d\": \"ct.v2-x\"}",
                NULL);
  REQUIRE(c);
  CHECK_OK(run(c));
  CHECK_EQ_STR(c->trig_dag, "ct.v2-x");
  fx_tc_free(c);
}

TEST(logical_date_refused_when_not_a_date)
{
  struct fx_tc *c = fx_tc_new("{\"dag_id\": \"d\", \"logical_date\": "
                              "\"{{ conf.when }}\"}",
                              "{\"when\": \"2025-13-01\"}", NULL);
  REQUIRE(c);
  CHECK_EQ_INT(run(c), ERR_INVAL);
  CHECK_HAS(E.msg, "field 'logical_date': '2025-13-01' is not a date");
  CHECK_EQ_INT(c->ntrig, 0);
  fx_tc_free(c);
  /* a date with a time is one */
  c = fx_tc_new("{\"dag_id\": \"d\", \"logical_date\": "
                "\"2025-09-01T03:00:00+09:00\"}",
                NULL, NULL);
  REQUIRE(c);
  CHECK_OK(run(c));
  CHECK_EQ_STR(c->trig_date, "2025-09-01T03:00:00+09:00");
  fx_tc_free(c);
}

TEST(callback_error_reaches_the_caller)
{
  struct fx_tc *c = fx_tc_new("{\"dag_id\": \"busy\"}", NULL, NULL);
  REQUIRE(c);
  c->trig_rc = ERR_EXISTS;
  CHECK_EQ_INT(run(c), ERR_EXISTS);
  CHECK_HAS(E.msg, "trigger_dag 'busy' for 2025-09-01");
  CHECK_HAS(E.msg, "already has a run");
  CHECK(!fx_tc_has(c, "log", "triggered DAG"));
  fx_tc_free(c);
}

TEST(no_trigger_callback)
{
  struct fx_tc *c = fx_tc_new("{\"dag_id\": \"other\"}", NULL, NULL);
  REQUIRE(c);
  c->t.trigger = NULL;
  CHECK_EQ_INT(run(c), ERR_UNSUPPORTED);
  CHECK_HAS(E.msg, "not available here");
  fx_tc_free(c);
}

TEST(conf_must_be_a_map)
{
  struct fx_tc *c =
      fx_tc_new("{\"dag_id\": \"d\", \"conf\": [1, 2]}", NULL, NULL);
  REQUIRE(c);
  CHECK_EQ_INT(run(c), ERR_INVAL);
  CHECK_HAS(E.msg, "field 'conf': expected a map");
  CHECK_EQ_INT(c->ntrig, 0);
  fx_tc_free(c);
}

TEST(load_time_check)
{
  CHECK_OK(check_fields("{\"dag_id\": \"ct\"}"));
  CHECK_OK(check_fields("{\"dag_id\": \"{{ conf.d }}\", \"logical_date\": "
                        "\"{{ ds_add(1) }}\"}"));
  CHECK_EQ_INT(check_fields("{}"), ERR_INVAL);
  CHECK_HAS(E.msg, "field 'dag_id' is required");
  CHECK_EQ_INT(check_fields("{\"dag_id\": \"a b\"}"), ERR_INVAL);
  CHECK_HAS(E.msg, "not a DAG id");
  CHECK_EQ_INT(check_fields("{\"dag_id\": \"d\", \"logical_date\": "
                            "\"yesterday\"}"),
               ERR_INVAL);
  CHECK_HAS(E.msg, "not a date");
  CHECK_EQ_INT(check_fields("{\"dag_id\": \"d\", \"conf\": \"x\"}"),
               ERR_INVAL);
}

int main(void)
{
  log_set_level(LOG_ERROR);
  RUN(conf_rendered_and_passed);
  RUN(logical_date_template_and_no_conf);
  RUN(dag_id_from_conf_refused_when_not_an_id);
  RUN(logical_date_refused_when_not_a_date);
  RUN(callback_error_reaches_the_caller);
  RUN(no_trigger_callback);
  RUN(conf_must_be_a_map);
  RUN(load_time_check);
  return check_done();
}
