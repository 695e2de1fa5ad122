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

static const char *FIELDS =
    "{\"a\": \"12 \", \"b\": 7, \"c\": \"1.5\", \"d\": \"99\", \"e\": \"x\", "
    "\"f\": null, \"g\": \"0.25\", \"h\": 0.5, \"i\": \"nan\", "
    "\"j\": \"1e3x\"}";

/* One read: field, integer or not, default, bounds; the answer wanted,
 * the value wanted (the default stays on a bad value) and, for a bad one,
 * the message wanted ("" = not checked). */
struct fcase {
  const char *name;
  int integer;
  double def, min, max;
  enum err_code rc;
  double want;
  const char *msg;
};

static const struct fcase CASES[] = {
    {"a", 1, 0, 1, 50, ERR_OK, 12, ""},
    {"b", 1, 0, 1, 50, ERR_OK, 7, ""},
    {"missing", 1, 3, 1, 50, ERR_OK, 3, ""},
    {"f", 1, 4, 1, 50, ERR_OK, 4, ""},
    {"c", 1, 5, 1, 50, ERR_INVAL, 5,
     "field 'c': expected an integer 1..50, got '1.5'"},
    {"d", 1, 0, 1, 50, ERR_INVAL, 0,
     "field 'd': expected an integer 1..50, got '99'"},
    {"e", 1, 0, 1, 50, ERR_INVAL, 0, ""},
    {"d", 1, 0, 1, 1000000000, ERR_OK, 99, ""},
    {"g", 0, 0, 0, 1, ERR_OK, 0.25, ""},
    {"h", 0, 0, 0, 1, ERR_OK, 0.5, ""},
    {"missing", 0, 0.1, 0, 1, ERR_OK, 0.1, ""},
    {"i", 0, 0, 0, 1, ERR_INVAL, 0, ""},
    {"d", 0, 0, 0, 1, ERR_INVAL, 0,
     "field 'd': expected a number 0..1, got '99'"},
    {"j", 0, 0, 0, 1e6, ERR_INVAL, 0, ""},
};

TEST(typed_fields)
{
  struct fx_tc *c = fx_tc_new(FIELDS, NULL, NULL);
  REQUIRE(c != NULL);
  for (size_t i = 0; i < sizeof(CASES) / sizeof(CASES[0]); i++) {
    const struct fcase *k = &CASES[i];
    struct err e = {0};
    enum err_code rc;
    double got;
    if (k->integer) {
      long v = -1;
      rc = task_field_int(&c->t, k->name, (long)k->def, (long)k->min,
                          (long)k->max, &v, &e);
      got = (double)v;
    } else {
      rc = task_field_double(&c->t, k->name, k->def, k->min, k->max, &got,
                             &e);
    }
    int msg_bad = k->msg[0] && strcmp(e.msg, k->msg) != 0;
    if (rc != k->rc || got != k->want || msg_bad) {
      fprintf(stderr, "  FAIL case %zu (%s): rc %d want %d, value %g want "
                      "%g, msg '%s'\n", i, k->name, (int)rc, (int)k->rc, got,
              k->want, e.msg);
      check_cur_failed = 1;
    }
  }
  fx_tc_free(c);
}

int main(void)
{
  RUN(typed_fields);
  return check_done();
}
