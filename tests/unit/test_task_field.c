/* test_task_field.c - a task's typed fields (task_field_int,
 * task_field_double in src/task.c) read from a hand-built task context
 * (task_ctx.h): the default when absent, strings and JSON numbers alike,
 * the bounds, and a bad value refused with the field, the range and the
 * text in the message.
 */
#include "check.h"
#include "fixture.h"
#include "task_ctx.h"

#include "mlopsd/task.h"

TEST(int_fields)
{
  struct fx_tc *c = fx_tc_new("{\"a\": \"12 \", \"b\": 7, \"c\": \"1.5\", "
                              "\"d\": \"99\", \"e\": \"x\", \"f\": null}",
                              NULL, NULL);
  REQUIRE(c != NULL);
  struct err e = {0};
  long v = 0;
  CHECK_EQ_INT(task_field_int(&c->t, "a", 0, 1, 50, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 12);
  CHECK_EQ_INT(task_field_int(&c->t, "b", 0, 1, 50, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 7);
  CHECK_EQ_INT(task_field_int(&c->t, "missing", 3, 1, 50, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 3);
  CHECK_EQ_INT(task_field_int(&c->t, "f", 4, 1, 50, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 4);
  CHECK_EQ_INT(task_field_int(&c->t, "c", 5, 1, 50, &v, &e), ERR_INVAL);
  CHECK_EQ_STR(e.msg, "field 'c': expected an integer 1..50, got '1.5'");
  CHECK_EQ_INT(v, 5); /* the default stays on a bad value */
  CHECK_EQ_INT(task_field_int(&c->t, "d", 0, 1, 50, &v, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "got '99'") != NULL);
  CHECK_EQ_INT(task_field_int(&c->t, "e", 0, 1, 50, &v, &e), ERR_INVAL);
  CHECK_EQ_INT(task_field_int(&c->t, "d", 0, 1, 1000000000L, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 99);
  fx_tc_free(c);
}

TEST(double_fields)
{
  struct fx_tc *c = fx_tc_new("{\"a\": \"0.25\", \"b\": 0.5, \"c\": \"nan\", "
                              "\"d\": \"2\", \"e\": \"1e3x\"}",
                              NULL, NULL);
  REQUIRE(c != NULL);
  struct err e = {0};
  double v = 0;
  CHECK_EQ_INT(task_field_double(&c->t, "a", 0, 0, 1, &v, &e), ERR_OK);
  CHECK(v == 0.25);
  CHECK_EQ_INT(task_field_double(&c->t, "b", 0, 0, 1, &v, &e), ERR_OK);
  CHECK(v == 0.5);
  CHECK_EQ_INT(task_field_double(&c->t, "missing", 0.1, 0, 1, &v, &e),
               ERR_OK);
  CHECK(v == 0.1);
  CHECK_EQ_INT(task_field_double(&c->t, "c", 0, 0, 1, &v, &e), ERR_INVAL);
  CHECK_EQ_INT(task_field_double(&c->t, "d", 0, 0, 1, &v, &e), ERR_INVAL);
  CHECK_EQ_STR(e.msg, "field 'd': expected a number 0..1, got '2'");
  CHECK_EQ_INT(task_field_double(&c->t, "e", 0, 0, 1e6, &v, &e), ERR_INVAL);
  fx_tc_free(c);
}

int main(void)
{
  RUN(int_fields);
  RUN(double_fields);
  return check_done();
}
