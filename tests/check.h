/* check.h - a tiny test framework (after redis testhelp.h / curl unitcheck).
 *
 *   TEST(name) { CHECK(x == 1); CHECK_EQ_INT(a, b); CHECK_EQ_STR(s, "x"); }
 *   int main(void) { RUN(name); ...; return check_done(); }
 *
 * A table of scenarios runs each row as a scenario of its own (one unit
 * each, named by the row): RUN_CASE(row->name, fn, row) calls fn(row).
 *
 * A failed CHECK prints file:line and the expression, marks the current
 * test failed and carries on with the next statement (tests should not
 * crash on a failed check; use REQUIRE to leave the test).  SKIP("why")
 * leaves a test that cannot run here (a missing tool, not root) and prints
 * "check: skip NAME: why", which tests/run.sh lists and, under CI=true,
 * counts as a failure.  check_done() prints "check: N passed, N failed,
 * N skipped" (one unit per TEST function: a scenario) and returns the exit
 * status; tests/run.sh adds the lines of all binaries up.
 *
 * Table-driven tests name the row they check with CHECK_CASE("what"): each
 * failure then reads "  FAIL file:line: test: [what] expr" until the next
 * CHECK_CASE (CHECK_CASE(NULL) ends it; RUN clears it for the next test).
 */
#ifndef MLOPSD_CHECK_H
#define MLOPSD_CHECK_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int check_passed, check_failed, check_skipped, check_cur_failed,
    check_cur_skipped;
static const char *check_cur_name;
static const char *check_cur_case; /* CHECK_CASE: the table row, or NULL */

#define TEST(name) static void name(void)

/* One failed check: "  FAIL file:line: test: what" on stderr, and the
 * running test marked failed. */
static inline void check_fail_at(const char *file, int line, const char *fmt,
                                 ...) __attribute__((format(printf, 3, 4)));
static inline void check_fail_at(const char *file, int line, const char *fmt,
                                 ...)
{
  va_list ap;
  fprintf(stderr, "  FAIL %s:%d: %s: ", file, line, check_cur_name);
  if (check_cur_case)
    fprintf(stderr, "[%s] ", check_cur_case);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  check_cur_failed = 1;
}

#define CHECK(cond)                                                           \
  do {                                                                        \
    if (!(cond))                                                              \
      check_fail_at(__FILE__, __LINE__, "%s", #cond);                         \
  } while (0)

/* Name the table row (a string that outlives the checks) in failures. */
#define CHECK_CASE(what) (check_cur_case = (what))

#define REQUIRE(cond)                                                         \
  do {                                                                        \
    if (!(cond)) {                                                            \
      check_fail_at(__FILE__, __LINE__, "required %s", #cond);                \
      return;                                                                 \
    }                                                                         \
  } while (0)

#define SKIP(reason)                                                          \
  do {                                                                        \
    printf("check: skip %s: %s\n", check_cur_name, (reason));                 \
    fflush(stdout);                                                           \
    check_cur_skipped = 1;                                                    \
    return;                                                                   \
  } while (0)

#define CHECK_EQ_INT(a, b)                                                    \
  do {                                                                        \
    long long check_a_ = (long long)(a), check_b_ = (long long)(b);           \
    if (check_a_ != check_b_)                                                 \
      check_fail_at(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b,    \
                    check_a_, check_b_);                                      \
  } while (0)

#define CHECK_EQ_STR(a, b)                                                    \
  do {                                                                        \
    const char *check_a_ = (a), *check_b_ = (b);                              \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0)            \
      check_fail_at(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a,    \
                    #b, check_a_ ? check_a_ : "(null)",                       \
                    check_b_ ? check_b_ : "(null)");                          \
  } while (0)

#define CHECK_NEAR(a, b, eps)                                                 \
  do {                                                                        \
    double check_a_ = (double)(a), check_b_ = (double)(b);                    \
    if (!(check_a_ - check_b_ <= (eps) && check_b_ - check_a_ <= (eps)))      \
      check_fail_at(__FILE__, __LINE__, "%s ~= %s (%.9g vs %.9g)", #a, #b,    \
                    check_a_, check_b_);                                      \
  } while (0)

/* Runs FN(ARG) in a child process that then kills itself with SIGKILL: a
 * writer that dies before any clean-up.  FN returns 0 when its work is
 * done; another value becomes the child's exit status.  Returns the
 * child's wait status, or -1 when fork or waitpid failed. */
static inline int check_crash_child(int (*fn)(void *), void *arg)
{
  pid_t pid = fork();
  int st = 0;
  if (pid < 0)
    return -1;
  if (pid == 0) {
    int rc = fn(arg);
    if (rc)
      _exit(rc);
    raise(SIGKILL);
    _exit(127);
  }
  return waitpid(pid, &st, 0) == pid ? st : -1;
}

/* Checks that FN(ARG) ran to its end in a child killed by SIGKILL (see
 * check_crash_child): two checks, the child ran, and it died that way. */
#define CHECK_CRASH_CHILD(fn, arg)                                            \
  do {                                                                        \
    int check_st_ = check_crash_child((fn), (arg));                           \
    if (check_st_ < 0)                                                        \
      check_fail_at(__FILE__, __LINE__, "%s in a child: fork failed", #fn);   \
    else if (!WIFSIGNALED(check_st_) || WTERMSIG(check_st_) != SIGKILL)       \
      check_fail_at(__FILE__, __LINE__,                                       \
                    "%s in a child: wait status %#x, not killed by SIGKILL",  \
                    #fn, (unsigned)check_st_);                                \
  } while (0)

/* A watcher thread: calls probe(arg) until stopped, counting the calls
 * and the ones that returned 0 (an invariant seen broken while other
 * threads run).  check_watch_start() gives pthread_create's result;
 * check_watch_stop() joins, after which n and bad may be read. */
struct check_watch {
  int (*probe)(void *arg);
  void *arg;
  int stop;
  unsigned long n, bad;
  pthread_t th;
};

static inline void *check_watch_run(void *p)
{
  struct check_watch *w = p;
  while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
    if (!w->probe(w->arg))
      w->bad++;
    w->n++;
  }
  return NULL;
}

static inline int check_watch_start(struct check_watch *w,
                                    int (*probe)(void *), void *arg)
{
  *w = (struct check_watch){.probe = probe, .arg = arg};
  return pthread_create(&w->th, NULL, check_watch_run, w);
}

static inline void check_watch_stop(struct check_watch *w)
{
  __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
  pthread_join(w->th, NULL);
}

/* A whole-number field of a struct (int, int64_t, uint64_t ...), for
 * CHECK_FIELDS: CHECK_FIELD(struct queue_stats, queued). */
struct check_field {
  const char *name;
  size_t off, size;
};
#define CHECK_FIELD(type, f) {#f, offsetof(type, f), sizeof(((type *)0)->f)}

static inline long long check_field_value(const void *obj,
                                          const struct check_field *f)
{
  const char *p = (const char *)obj + f->off;
  int32_t i4;
  uint64_t u8;
  if (f->size == sizeof(i4)) {
    memcpy(&i4, p, sizeof(i4));
    return i4;
  }
  memcpy(&u8, p, sizeof(u8));
  return (long long)u8;
}

/* Compares the fields F[0..n) of OBJ with WANT, "name=value ..." (whole
 * numbers): one check per name, each mismatch or unknown name a failure
 * reported at FILE:LINE with the name. */
static inline void check_fields_at(const char *file, int line,
                                   const void *obj,
                                   const struct check_field *f, size_t n,
                                   const char *want)
{
  const char *s = want;
  for (;;) {
    while (*s == ' ')
      s++;
    if (!*s)
      return;
    size_t len = strcspn(s, "= ");
    char *end = NULL;
    long long v = s[len] == '=' ? strtoll(s + len + 1, &end, 10) : 0;
    if (!end || end == s + len + 1 || (*end && *end != ' ')) {
      check_fail_at(file, line, "bad field list \"%s\" at \"%s\"", want, s);
      return;
    }
    size_t i = 0;
    while (i < n && (strlen(f[i].name) != len || strncmp(f[i].name, s, len)))
      i++;
    if (i == n)
      check_fail_at(file, line, "no field '%.*s'", (int)len, s);
    else if (check_field_value(obj, &f[i]) != v)
      check_fail_at(file, line, "%s == %lld (%lld != %lld)", f[i].name, v,
                    check_field_value(obj, &f[i]), v);
    s = end;
  }
}

/* Checks the fields of VALUE, of struct TYPE described by the array DEFS
 * of CHECK_FIELD, against WANT ("name=value ..."). */
#define CHECK_FIELDS(type, value, defs, want)                                 \
  do {                                                                        \
    type check_v_ = (value);                                                  \
    check_fields_at(__FILE__, __LINE__, &check_v_, (defs),                    \
                    sizeof(defs) / sizeof((defs)[0]), (want));                \
  } while (0)

/* Scenario bookkeeping around one run (RUN, RUN_CASE). */
static inline void check_begin(const char *name)
{
  check_cur_name = name;
  check_cur_case = NULL;
  check_cur_failed = 0;
  check_cur_skipped = 0;
}

static inline void check_end(void)
{
  if (check_cur_skipped && !check_cur_failed) {
    check_skipped++;
    fprintf(stderr, "skip %s\n", check_cur_name);
  } else if (check_cur_failed) {
    check_failed++;
    fprintf(stderr, "not ok %s\n", check_cur_name);
  } else {
    check_passed++;
    fprintf(stderr, "ok %s\n", check_cur_name);
  }
}

#define RUN(fn)                                                               \
  do {                                                                        \
    check_begin(#fn);                                                         \
    fn();                                                                     \
    check_end();                                                              \
  } while (0)

/* One row of a scenario table as a scenario of its own, named NAME (a
 * string that outlives the run): FN(ARG) with the bookkeeping of RUN. */
#define RUN_CASE(name, fn, arg)                                               \
  do {                                                                        \
    check_begin(name);                                                        \
    fn(arg);                                                                  \
    check_end();                                                              \
  } while (0)

static inline int check_done(void)
{
  printf("check: %d passed, %d failed, %d skipped\n", check_passed,
         check_failed, check_skipped);
  fflush(stdout);
  return check_failed ? 1 : 0;
}

#endif
