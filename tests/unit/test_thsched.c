/* test_thsched.c - thsched_set: a thread's nice and scheduler slice are
 * what the kernel then reports for that thread (getpriority, and the
 * slice in /proc/self/task/TID/sched on Linux 6.12+); out-of-range values
 * change nothing; a refused nice (no privilege) leaves the nice and still
 * sets the slice.  Each case runs in a thread of its own (or a child
 * process that gave up root) so the test's main thread keeps its nice. */
#include <errno.h>
#include <pwd.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

#include "check.h"
#include "mlopsd/thsched.h"

static int my_nice(void)
{
  errno = 0;
  int n = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  return errno ? -100 : n;
}

/* The calling thread's slice in ns from /proc (se.slice), -1 when the
 * kernel does not show it. */
static long long my_slice_ns(void)
{
  char path[64], line[256];
  snprintf(path, sizeof(path), "/proc/self/task/%ld/sched",
           (long)syscall(SYS_gettid));
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long long v = -1;
  while (fgets(line, sizeof(line), f))
    if (strncmp(line, "se.slice", 8) == 0) {
      char *colon = strchr(line, ':');
      if (colon)
        v = strtoll(colon + 1, NULL, 10);
    }
  fclose(f);
  return v;
}

/* Linux 6.12 and later take sched_runtime as a SCHED_OTHER slice. */
static bool kernel_has_slices(void)
{
  struct utsname u;
  int ma = 0, mi = 0;
  if (uname(&u) != 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
    return false;
  return ma > 6 || (ma == 6 && mi >= 12);
}

struct res {
  int rc, nice_after;
  long long slice_ns;
  char msg[ERR_MSG_MAX];
};

struct args {
  int nice, slice_us;
  struct res r;
};

static void *set_main(void *arg)
{
  struct args *a = arg;
  struct err e;
  err_clear(&e);
  a->r.rc = thsched_set(a->nice, a->slice_us, &e);
  a->r.nice_after = my_nice();
  a->r.slice_ns = my_slice_ns();
  snprintf(a->r.msg, sizeof(a->r.msg), "%s", e.msg);
  return NULL;
}

static struct res in_thread(int nice, int slice_us)
{
  struct args a = {.nice = nice, .slice_us = slice_us};
  pthread_t th;
  if (pthread_create(&th, NULL, set_main, &a) != 0) {
    a.r.rc = -1;
    return a.r;
  }
  pthread_join(th, NULL);
  return a.r;
}

TEST(nice_and_slice_applied)
{
  int base = my_nice();
  struct res r = in_thread(base + 3 > 19 ? 19 : base + 3, 250);
  CHECK_EQ_INT(r.rc, ERR_OK);
  CHECK_EQ_INT(r.nice_after, base + 3 > 19 ? 19 : base + 3);
  if (kernel_has_slices() && r.slice_ns >= 0)
    CHECK(r.slice_ns == 250000);
  /* the main thread is not touched */
  CHECK_EQ_INT(my_nice(), base);
  /* 0 us restores the kernel's default slice (larger than 250 us) */
  r = in_thread(base, 0);
  CHECK_EQ_INT(r.rc, ERR_OK);
  if (kernel_has_slices() && r.slice_ns >= 0)
    CHECK(r.slice_ns > 250000);
}

TEST(out_of_range_changes_nothing)
{
  static const struct {
    const char *name;
    int nice, slice_us;
    const char *msg;
  } rows[] = {
      {"nice -21", -21, 0, "thread nice -21 out of range (-20..19)"},
      {"nice 20", 20, 0, "thread nice 20 out of range (-20..19)"},
      {"slice -1", 0, -1, "thread slice -1 us out of range (0..100000)"},
      {"slice 100001", 0, 100001,
       "thread slice 100001 us out of range (0..100000)"},
  };
  int base = my_nice();
  for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
    CHECK_CASE(rows[i].name);
    struct res r = in_thread(rows[i].nice, rows[i].slice_us);
    CHECK_EQ_INT(r.rc, ERR_INVAL);
    CHECK_EQ_STR(r.msg, rows[i].msg);
    CHECK_EQ_INT(r.nice_after, base);
  }
  CHECK_CASE(NULL);
}

/* Without the privilege to lower it, the nice stays and the slice is
 * still set.  As root, a child process gives root up first. */
TEST(refused_nice_keeps_nice_sets_slice)
{
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    struct rlimit rl = {0, 0}; /* RLIMIT_NICE 0: no lowering allowed */
    int ok = setrlimit(RLIMIT_NICE, &rl) == 0;
    if (ok && geteuid() == 0) {
      struct passwd *pw = getpwnam("nobody");
      uid_t uid = pw ? pw->pw_uid : 65534;
      ok = setgid(uid) == 0 && setuid(uid) == 0;
    }
    struct res r = ok ? in_thread(-5, 300) : (struct res){.rc = -2};
    ssize_t w = write(fds[1], &r, sizeof(r));
    _exit(w == (ssize_t)sizeof(r) ? 0 : 1);
  }
  close(fds[1]);
  struct res r;
  ssize_t n = read(fds[0], &r, sizeof(r));
  close(fds[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  REQUIRE(n == (ssize_t)sizeof(r));
  REQUIRE(r.rc != -2); /* could not give up the privilege */
  CHECK_EQ_INT(r.rc, ERR_STATE);
  CHECK_EQ_INT(r.nice_after, my_nice()); /* inherited, unchanged */
  CHECK(strstr(r.msg, "nice -5 refused") != NULL);
  CHECK(strstr(r.msg, "the slice was set alone") != NULL);
  if (kernel_has_slices() && r.slice_ns >= 0)
    CHECK(r.slice_ns == 300000);
}

int main(void)
{
  RUN(nice_and_slice_applied);
  RUN(out_of_range_changes_nothing);
  RUN(refused_nice_keeps_nice_sets_slice);
  return check_done();
}
