/* test_err.c - the error detail helpers: err_vset_where puts the place
 * first and cuts the whole message at the buffer, err_prefix keeps the
 * old message after the context; and hash_fnv1a, the one string hash,
 * keeps the values of the copies it replaced. */
#include "check.h"
#include "mlopsd/err.h"
#include "mlopsd/hash.h"

#include <stdarg.h>
#include <string.h>

MLOPSD_PRINTF(4, 5)
static enum err_code set_where(struct err *e, enum err_code code,
                               const char *where, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum err_code rc = err_vset_where(e, code, where, fmt, ap);
  va_end(ap);
  return rc;
}

TEST(vset_where_names_the_place_first)
{
  struct err e = {0};
  CHECK_EQ_INT(set_where(&e, ERR_CONFIG, "spec.yaml:3:7", "%s: must be %d",
                         "rounds", 5),
               ERR_CONFIG);
  CHECK_EQ_INT(e.code, ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "spec.yaml:3:7: rounds: must be 5");
  /* no struct err: only the code comes back */
  CHECK_EQ_INT(set_where(NULL, ERR_PARSE, "x", "y"), ERR_PARSE);
}

TEST(vset_where_cuts_at_the_buffer)
{
  char where[ERR_MSG_MAX + 100], tail[ERR_MSG_MAX + 100];
  memset(where, 'w', sizeof(where) - 1);
  where[sizeof(where) - 1] = '\0';
  memset(tail, 't', sizeof(tail) - 1);
  tail[sizeof(tail) - 1] = '\0';
  struct err e = {0};
  set_where(&e, ERR_INVAL, where, "%s", tail);
  CHECK_EQ_INT(strlen(e.msg), ERR_MSG_MAX - 1);
  CHECK(e.msg[0] == 'w' && e.msg[ERR_MSG_MAX - 2] == 'w');
  /* a short place and a long message: the place and ": " stay whole */
  set_where(&e, ERR_INVAL, "f.json", "%s", tail);
  CHECK_EQ_INT(strlen(e.msg), ERR_MSG_MAX - 1);
  CHECK(strncmp(e.msg, "f.json: ttt", 11) == 0);
}

TEST(prefix_keeps_the_old_message)
{
  struct err e = {0};
  err_set(&e, ERR_IO, "read %s: %s", "a.bin", "short");
  err_prefix(&e, "model %d", 3);
  CHECK_EQ_STR(e.msg, "model 3: read a.bin: short");
  CHECK_EQ_INT(e.code, ERR_IO);
}

TEST(fnv1a_values)
{
  /* the start value for no bytes, then fixed values: a change of the
   * start value, the prime or the order (xor, then multiply) shows */
  CHECK(hash_fnv1a(NULL, 0) == 1469598103934665603ULL);
  CHECK(hash_fnv1a("a", 1) == ((1469598103934665603ULL ^ 'a') *
                               1099511628211ULL));
  CHECK(hash_fnv1a("foobar", 6) == 0x88fad7c0a8ff07f2ULL);
  CHECK(hash_fnv1a("ab", 2) != hash_fnv1a("ba", 2));
  /* bytes above 0x7f are taken unsigned (no sign extension) */
  CHECK(hash_fnv1a("\xff", 1) == ((1469598103934665603ULL ^ 0xffULL) *
                                  1099511628211ULL));
  /* a running hash over pieces is the hash of the whole (dag.c hashes a
   * DAG file and then its SQL files this way) */
  CHECK(hash_fnv1a_more(hash_fnv1a("foo", 3), "bar", 3) ==
        0x88fad7c0a8ff07f2ULL);
  CHECK(hash_fnv1a_more(HASH_FNV1A_START, "foobar", 6) ==
        hash_fnv1a("foobar", 6));
}

int main(void)
{
  RUN(vset_where_names_the_place_first);
  RUN(vset_where_cuts_at_the_buffer);
  RUN(prefix_keeps_the_old_message);
  RUN(fnv1a_values);
  return check_done();
}
