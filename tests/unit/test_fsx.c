/* test_fsx.c - the file helpers on a real temp directory: the capped read
 * at, below and above its cap (files, a file that reports size 0, pipes,
 * stdin), its errors naming path and cap, NUL bytes, the read as JSON
 * (errors naming where the parser stopped), the atomic replace
 * seen by a concurrent reader and after a writer killed at random points
 * (always the old or the new content, whole), and the name check. */
#include "check.h"
#include "fixture.h"
#include "mlopsd/fsx.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static const char *path_of(const char *name)
{
  static char p[4][4096];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof(p[k]), "%s/%s", fx_tmp(), name);
  return p[k];
}

static int put(const char *name, const void *data, size_t n)
{
  FILE *f = fopen(path_of(name), "wb");
  if (!f)
    return -1;
  size_t w = fwrite(data, 1, n, f);
  return fclose(f) == 0 && w == n ? 0 : -1;
}

/* Write NAME holding DATA[0..N) and read it back: the bytes, the length
 * and the NUL after them. */
static void put_read_back(const char *name, const char *data, size_t n)
{
  char *s = NULL;
  size_t len = 99;
  struct err e = {0};
  CHECK_CASE(name);
  if (put(name, data, n) != 0) {
    check_fail_at(__FILE__, __LINE__, "cannot write %s", path_of(name));
  } else {
    CHECK_EQ_INT(fsx_read(path_of(name), 100, 0, &s, &len, &e), ERR_OK);
    CHECK_EQ_INT(len, n);
    CHECK(s && memcmp(s, data, n) == 0 && s[n] == '\0');
    free(s);
  }
  CHECK_CASE(NULL);
}

TEST(read_small_file)
{
  put_read_back("a.txt", "hello\n", 6);
  /* len may be NULL; an empty file is "" */
  char *s = NULL;
  struct err e = {0};
  REQUIRE(put("empty", "", 0) == 0);
  CHECK_EQ_INT(fsx_read(path_of("empty"), 100, 0, &s, NULL, &e), ERR_OK);
  CHECK_EQ_STR(s, "");
  free(s);
}

TEST(read_cap_exact_and_over)
{
  char data[1000];
  memset(data, 'x', sizeof(data));
  REQUIRE(put("k.txt", data, sizeof(data)) == 0);
  char *s = NULL;
  size_t n = 0;
  struct err e = {0};
  CHECK_EQ_INT(fsx_read(path_of("k.txt"), 1000, 0, &s, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 1000);
  CHECK(s && s[1000] == '\0');
  free(s);
  s = (char *)1;
  CHECK_EQ_INT(fsx_read(path_of("k.txt"), 999, 0, &s, &n, &e), ERR_IO);
  CHECK(s == NULL);
  CHECK_EQ_INT(n, 0);
  char want[4200];
  snprintf(want, sizeof(want), "%s is larger than 999 bytes",
           path_of("k.txt"));
  CHECK_EQ_STR(e.msg, want);
  CHECK_EQ_INT(e.code, ERR_IO);
  /* cap 0: only an empty file */
  CHECK_EQ_INT(fsx_read(path_of("empty"), 0, 0, &s, &n, &e), ERR_OK);
  free(s);
  CHECK_EQ_INT(fsx_read(path_of("k.txt"), 0, 0, &s, &n, &e), ERR_IO);
  /* a huge cap must not overflow the buffer arithmetic */
  CHECK_EQ_INT(fsx_read(path_of("k.txt"), SIZE_MAX, 0, &s, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 1000);
  free(s);
}

TEST(read_errors_name_the_path)
{
  char *s = NULL;
  struct err e = {0};
  char want[4200];
  CHECK_EQ_INT(fsx_read(path_of("nope"), 10, 0, &s, NULL, &e),
               ERR_NOTFOUND);
  snprintf(want, sizeof(want), "cannot open %s: No such file or directory",
           path_of("nope"));
  CHECK_EQ_STR(e.msg, want);
  CHECK_EQ_INT(fsx_read(path_of("a.txt/under-a-file"), 10, 0, &s, NULL, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(fsx_read(fx_tmp(), 10, 0, &s, NULL, &e), ERR_IO);
  snprintf(want, sizeof(want), "%s is a directory", fx_tmp());
  CHECK_EQ_STR(e.msg, want);
  CHECK_EQ_INT(fsx_read(fx_tmp(), 10, FSX_ANY_FILE, &s, NULL, &e), ERR_IO);
  CHECK(s == NULL);
}

TEST(read_nul_bytes)
{
  put_read_back("nul.bin", "ab\0cd", 5);
  char *s = NULL;
  size_t n = 0;
  struct err e = {0};
  CHECK_EQ_INT(fsx_read(path_of("nul.bin"), 10, FSX_NO_NUL, &s, &n, &e),
               ERR_PARSE);
  CHECK(s == NULL);
  CHECK(strstr(e.msg, "nul.bin holds a NUL byte") != NULL);
}

/* /proc files report size 0 but have content: read to their end. */
TEST(read_size_zero_regular)
{
  char *s = NULL;
  size_t n = 0;
  struct err e = {0};
  CHECK_EQ_INT(fsx_read("/proc/self/status", 1 << 20, 0, &s, &n, &e),
               ERR_OK);
  CHECK(n > 100 && s && strstr(s, "Pid:") != NULL);
  free(s);
  CHECK_EQ_INT(fsx_read("/proc/self/status", 50, 0, &s, &n, &e), ERR_IO);
  CHECK(strstr(e.msg, "is larger than 50 bytes") != NULL);
}

/* A pipe holding n bytes of 'p', readable as /dev/fd/N; returns the read
 * end (the write end is closed, so the reader sees its end). */
static int pipe_with(size_t n, char name[64])
{
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  char chunk[1024];
  memset(chunk, 'p', sizeof(chunk));
  while (n) {
    size_t k = n < sizeof(chunk) ? n : sizeof(chunk);
    if (write(fds[1], chunk, k) != (ssize_t)k)
      break;
    n -= k;
  }
  close(fds[1]);
  snprintf(name, 64, "/dev/fd/%d", fds[0]);
  return fds[0];
}

TEST(read_pipes)
{
  static const struct {
    const char *what;
    size_t len, cap;
    unsigned flags;
    enum err_code rc;
    const char *msg; /* in the error; NULL: read whole */
  } c[] = {
      /* refused without FSX_ANY_FILE, at once (no blocking) */
      {"no FSX_ANY_FILE", 10, 100, 0, ERR_IO, "is not a regular file"},
      /* more than the first stream buffer: grows, whole content */
      {"grows", 20000, 20000, FSX_ANY_FILE, ERR_OK, NULL},
      /* over the cap: refused, also with the wiping used for secrets */
      {"over cap, secret", 20000, 19999, FSX_ANY_FILE | FSX_SECRET, ERR_IO,
       "is larger than 19999 bytes"},
      {"at cap, secret", 9000, 9000, FSX_ANY_FILE | FSX_SECRET, ERR_OK, NULL},
  };
  for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
    char name[64], *s = NULL;
    size_t n = 0;
    struct err e = {0};
    int fd = pipe_with(c[i].len, name);
    CHECK_CASE(c[i].what);
    REQUIRE(fd >= 0);
    CHECK_EQ_INT(fsx_read(name, c[i].cap, c[i].flags, &s, &n, &e), c[i].rc);
    if (c[i].msg) {
      CHECK(s == NULL);
      CHECK(strstr(e.msg, c[i].msg) != NULL);
    } else {
      CHECK_EQ_INT(n, c[i].len);
      CHECK(s && s[0] == 'p' && s[c[i].len - 1] == 'p' &&
            s[c[i].len] == '\0');
    }
    free(s);
    close(fd);
  }
}

TEST(read_stdin)
{
  char name[64], *s = NULL;
  size_t n = 0;
  struct err e = {0};
  int fd = pipe_with(5000, name);
  REQUIRE(fd >= 0);
  int saved = dup(STDIN_FILENO);
  REQUIRE(saved >= 0);
  REQUIRE(dup2(fd, STDIN_FILENO) == STDIN_FILENO);
  close(fd);
  CHECK_EQ_INT(fsx_read("-", 1 << 20, FSX_STDIN, &s, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 5000);
  free(s);
  /* stdin stays open for its owner */
  CHECK(fcntl(STDIN_FILENO, F_GETFD) >= 0);
  dup2(saved, STDIN_FILENO);
  close(saved);
  /* without FSX_STDIN, "-" is a file name like any other */
  CHECK_EQ_INT(fsx_read("-", 10, 0, &s, &n, &e), ERR_NOTFOUND);
}

static int count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  int n = 0;
  struct dirent *de;
  if (!d)
    return -1;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

TEST(write_atomic_replaces)
{
  char sub[4096];
  snprintf(sub, sizeof(sub), "%s/w", fx_tmp());
  REQUIRE(mkdir(sub, 0755) == 0);
  char p[4200];
  snprintf(p, sizeof(p), "%s/atomic.txt", sub);
  struct err e = {0};
  CHECK_EQ_INT(fsx_write_atomic(p, "one", 3, &e), ERR_OK);
  CHECK_EQ_INT(fsx_write_atomic(p, "second", 6, &e), ERR_OK);
  char *s = NULL;
  CHECK_EQ_INT(fsx_read(p, 100, 0, &s, NULL, &e), ERR_OK);
  CHECK_EQ_STR(s, "second");
  free(s);
  struct stat st;
  CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0644);
  CHECK_EQ_INT(count_entries(sub), 1); /* no temp file left */
  /* a missing directory: ERR_IO naming the path */
  snprintf(p, sizeof(p), "%s/no/such/dir/x", fx_tmp());
  CHECK_EQ_INT(fsx_write_atomic(p, "x", 1, &e), ERR_IO);
  CHECK(strstr(e.msg, "no/such/dir/x") != NULL);
  /* the target is a directory: the rename fails, nothing changes, the
   * temp file is removed */
  snprintf(p, sizeof(p), "%s/w/d", fx_tmp());
  REQUIRE(mkdir(p, 0755) == 0);
  CHECK_EQ_INT(fsx_write_atomic(p, "x", 1, &e), ERR_IO);
  CHECK(strstr(e.msg, "write ") == e.msg);
  CHECK_EQ_INT(count_entries(sub), 2);
  /* a relative path writes in the working directory */
  char cwd[4096];
  REQUIRE(getcwd(cwd, sizeof(cwd)) != NULL);
  REQUIRE(chdir(sub) == 0);
  CHECK_EQ_INT(fsx_write_atomic("rel.txt", "r", 1, &e), ERR_OK);
  CHECK_EQ_INT(access("rel.txt", F_OK), 0);
  REQUIRE(chdir(cwd) == 0);
  CHECK_EQ_INT(fsx_write_atomic("", "r", 1, &e), ERR_INVAL);
}

#define BIG 65536

/* The file at p holds exactly BIG bytes of one letter, 'A' or 'B'. */
static int whole(const char *p)
{
  char *s = NULL;
  size_t n = 0;
  struct err e = {0};
  if (fsx_read(p, BIG * 2, 0, &s, &n, &e) != ERR_OK)
    return 0;
  int ok = n == BIG && (s[0] == 'A' || s[0] == 'B');
  for (size_t i = 1; ok && i < n; i++)
    ok = s[i] == s[0];
  free(s);
  return ok;
}

/* Child: replace p with all-A / all-B forever. */
static void writer_loop(const char *p)
{
  static char a[BIG], b[BIG];
  memset(a, 'A', BIG);
  memset(b, 'B', BIG);
  struct err e = {0};
  for (unsigned i = 0;; i++)
    if (fsx_write_atomic(p, i % 2 ? b : a, BIG, &e) != ERR_OK)
      _exit(1);
}

/* Readers never see a mix, and a writer killed at any point leaves the
 * old or the new content, whole. */
TEST(write_atomic_old_or_new)
{
  char p[4200];
  snprintf(p, sizeof(p), "%s/w/big", fx_tmp());
  static char a[BIG];
  memset(a, 'A', BIG);
  struct err e = {0};
  REQUIRE(fsx_write_atomic(p, a, BIG, &e) == ERR_OK);
  srand((unsigned)time(NULL));
  int torn = 0, reads = 0;
  for (int round = 0; round < 10; round++) {
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0)
      writer_loop(p);
    /* read while it writes, then kill it at a random moment */
    struct timespec until, now;
    clock_gettime(CLOCK_MONOTONIC, &until);
    long ns = until.tv_nsec + 5000000L + (rand() % 20000000L);
    until.tv_sec += ns / 1000000000L;
    until.tv_nsec = ns % 1000000000L;
    do {
      torn += !whole(p);
      reads++;
      clock_gettime(CLOCK_MONOTONIC, &now);
    } while (now.tv_sec < until.tv_sec ||
             (now.tv_sec == until.tv_sec && now.tv_nsec < until.tv_nsec));
    kill(pid, SIGKILL);
    int st = 0;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st)); /* it was still writing, not failed */
    torn += !whole(p);
  }
  CHECK_EQ_INT(torn, 0);
  CHECK(reads > 10);
}

TEST(name_valid)
{
  CHECK(fsx_name_valid("credit_score_classification"));
  CHECK(fsx_name_valid("a.b-c_1"));
  CHECK(fsx_name_valid("_x"));
  CHECK(fsx_name_valid("v1.2-rc_3"));
  const char *bad[] = {"",    ".",   "..",   "a..b", "a/b", "-a",
                       ".a",  "a b", "a\\b", "a\n",  "é",   "a:b"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CHECK(!fsx_name_valid(bad[i]));
  CHECK(!fsx_name_valid(NULL));
  char longname[FSX_NAME_MAX + 2];
  memset(longname, 'a', sizeof(longname));
  longname[FSX_NAME_MAX] = '\0';
  CHECK(fsx_name_valid(longname));
  longname[FSX_NAME_MAX] = 'a';
  longname[FSX_NAME_MAX + 1] = '\0';
  CHECK(!fsx_name_valid(longname));
}

TEST(read_json)
{
  struct err e = {0};
  cJSON *j = (cJSON *)1;
  REQUIRE(put("ok.json", "{\"a\": [1, 2]}\n", 14) == 0);
  CHECK_EQ_INT(fsx_read_json(path_of("ok.json"), 100, &j, &e), ERR_OK);
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "a");
  CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) == 2);
  cJSON_Delete(j);
  /* cut short: where the parser stopped (cJSON: at the last byte it
   * read), of how many bytes */
  REQUIRE(put("cut.json", "{\"a\": [1, 2", 11) == 0);
  j = (cJSON *)1;
  CHECK_EQ_INT(fsx_read_json(path_of("cut.json"), 100, &j, &e), ERR_PARSE);
  CHECK(j == NULL);
  CHECK(strstr(e.msg, path_of("cut.json")) != NULL);
  CHECK(strstr(e.msg, ": invalid JSON at byte 10 of 11 (corrupt or "
                      "truncated)") != NULL);
  /* the read's own errors and cap come through */
  CHECK_EQ_INT(fsx_read_json(path_of("none.json"), 100, &j, &e),
               ERR_NOTFOUND);
  CHECK(j == NULL);
  CHECK_EQ_INT(fsx_read_json(path_of("ok.json"), 10, &j, &e), ERR_IO);
  CHECK(j == NULL);
}

int main(void)
{
  RUN(read_small_file);
  RUN(read_cap_exact_and_over);
  RUN(read_errors_name_the_path);
  RUN(read_nul_bytes);
  RUN(read_size_zero_regular);
  RUN(read_pipes);
  RUN(read_stdin);
  RUN(write_atomic_replaces);
  RUN(write_atomic_old_or_new);
  RUN(name_valid);
  RUN(read_json);
  return check_done();
}
