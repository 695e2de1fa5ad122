/* fixture.h - the set-up the C tests share: files and temp dirs, the
 * course data, the test MariaDB, child processes (the daemon, the CLI) and
 * an HTTP client for the daemon on loopback.
 *
 *   #include "check.h"
 *   #include "fixture.h"
 *
 * Header-only: all static inline, so a test pays (and warns) for none it
 * does not call.
 * Everything here is for tests: failures print to stderr and return -1 /
 * NULL rather than abort, so the calling TEST can CHECK and carry on.
 *
 * Environment (set by tests/run.sh): MLOPSD_SRC (source tree), MLOPSD_BIN
 * (the daemon), MLOPSD_SHARED (shared/ with data/credit),
 * MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD (the throwaway MariaDB).
 *
 * Thread rules: fx_http keeps one curl handle per thread (fx_http_done
 * frees it); fx_shared_dir and fx_data_path return static buffers (call
 * them from one thread); the rest keep no state.
 */
#ifndef MLOPSD_TEST_FIXTURE_H
#define MLOPSD_TEST_FIXTURE_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include <cjson/cJSON.h>
#include "mlopsd/db.h"
#include "mlopsd/err.h"
#include "mlopsd/sqlsplit.h"

/* ---- checks on calls that fill a struct err named E ------------------- */

/* 1 when RC is ERR_OK; else prints where, the call, the code and MSG (the
 * struct err the call filled), marks the current test failed, 0. */
static inline int fx_ok_(enum err_code rc, const char *file, int line,
                         const char *call, const char *req, const char *msg)
{
  if (rc == ERR_OK)
    return 1;
  fprintf(stderr, "  FAIL %s:%d: %s: %s%s -> %s: %s\n", file, line,
          check_cur_name, req, call, err_str(rc), msg);
  check_cur_failed = 1;
  return 0;
}

/* CHECK_OK(call): call returns ERR_OK, else the code and E.msg are shown;
 * REQUIRE_OK also leaves the test */
#define CHECK_OK(call)                                                        \
  ((void)fx_ok_((call), __FILE__, __LINE__, #call, "", E.msg))
#define REQUIRE_OK(call)                                                      \
  do {                                                                        \
    if (!fx_ok_((call), __FILE__, __LINE__, #call, "required ", E.msg))       \
      return;                                                                 \
  } while (0)

/* CHECK_HAS(s, sub): s (may be NULL) contains sub */
#define CHECK_HAS(s, sub)                                                     \
  do {                                                                        \
    const char *s_ = (s);                                                     \
    if (!s_ || !strstr(s_, (sub))) {                                          \
      fprintf(stderr, "  FAIL %s:%d: %s: \"%.300s\" lacks \"%s\"\n",          \
              __FILE__, __LINE__, check_cur_name, s_ ? s_ : "(null)",         \
              (sub));                                                         \
      check_cur_failed = 1;                                                   \
    }                                                                         \
  } while (0)

/* ---- time ------------------------------------------------------------- */

static inline void fx_msleep(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static inline double fx_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- files ------------------------------------------------------------ */

/* The whole file, NUL-terminated, malloc'd (caller frees); its length in
 * *len when len is not NULL.  NULL when it cannot be read. */
static inline char *fx_read_file(const char *path, size_t *len)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *b = NULL;
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0)
    n = ftell(f);
  if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
    b = malloc((size_t)n + 1);
  if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
    free(b);
    b = NULL;
  }
  fclose(f);
  if (b) {
    b[n] = 0;
    if (len)
      *len = (size_t)n;
  }
  return b;
}

/* Write (mode "w") or append ("a") text; 0 or -1. */
static inline int fx_write_mode(const char *path, const char *mode,
                                const char *text)
{
  FILE *f = fopen(path, mode);
  if (!f)
    return -1;
  int bad = fputs(text, f) < 0;
  return (fclose(f) != 0 || bad) ? -1 : 0;
}

static inline int fx_write_text(const char *path, const char *text)
{
  return fx_write_mode(path, "w", text);
}

/* Newlines in s (NULL: 0). */
static inline int fx_count_lines(const char *s)
{
  int n = 0;
  for (; s && *s; s++)
    n += *s == '\n';
  return n;
}

/* A fresh directory /tmp/mlopsd-TAG.XXXXXX into buf; 0 or -1. */
static inline int fx_tmpdir(char *buf, size_t cap, const char *tag)
{
  snprintf(buf, cap, "/tmp/mlopsd-%s.XXXXXX", tag);
  if (!mkdtemp(buf)) {
    perror("mkdtemp");
    return -1;
  }
  return 0;
}

/* rm -rf DIR (MLOPSD_KEEP_TMP=1 keeps it and says where). */
static inline void fx_rmtree(const char *dir)
{
  char cmd[1200];
  if (!dir || !*dir)
    return;
  if (getenv("MLOPSD_KEEP_TMP")) {
    fprintf(stderr, "kept %s\n", dir);
    return;
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
}

/* This test's own temp dir, /tmp/mlopsd-PROGRAM.XXXXXX, made on the first
 * call and removed at exit (fx_rmtree: MLOPSD_KEEP_TMP=1 keeps it).  NULL
 * when it cannot be made (printed).  Call it from the main thread first. */
static char fx_tmp_dir[256];
static pid_t fx_tmp_owner; /* a forked child's exit leaves it alone */
static inline void fx_tmp_remove(void)
{
  if (getpid() == fx_tmp_owner)
    fx_rmtree(fx_tmp_dir);
}
static inline const char *fx_tmp(void)
{
  if (!fx_tmp_dir[0]) {
    if (fx_tmpdir(fx_tmp_dir, sizeof(fx_tmp_dir),
                  program_invocation_short_name)) {
      fx_tmp_dir[0] = 0;
      return NULL;
    }
    fx_tmp_owner = getpid();
    atexit(fx_tmp_remove);
  }
  return fx_tmp_dir;
}

/* ---- the environment tests/run.sh gives ------------------------------- */

/* The source tree (MLOPSD_SRC, else "."). */
static inline const char *fx_src(void)
{
  const char *s = getenv("MLOPSD_SRC");
  return s && *s ? s : ".";
}

/* The daemon binary (MLOPSD_BIN, else build/mlopsd under fx_src()) into
 * buf. */
static inline const char *fx_bin(char *buf, size_t cap)
{
  const char *b = getenv("MLOPSD_BIN");
  if (b && *b)
    snprintf(buf, cap, "%s", b);
  else
    snprintf(buf, cap, "%s/build/mlopsd", fx_src());
  return buf;
}

/* MLOPSD_SRC and MLOPSD_BIN copied into src and bin; -1, saying on stderr
 * what TEST needs, when either or MLOPSD_DATABASE_HOST is not set (run
 * the test through tests/run.sh). */
static inline int fx_env(const char *test, char *src, size_t src_cap,
                         char *bin, size_t bin_cap)
{
  const char *s = getenv("MLOPSD_SRC"), *b = getenv("MLOPSD_BIN");
  if (!s || !b || !getenv("MLOPSD_DATABASE_HOST")) {
    fprintf(stderr, "%s: MLOPSD_SRC, MLOPSD_BIN and MLOPSD_DATABASE_* must "
                    "be set (tests/run.sh)\n", test);
    return -1;
  }
  snprintf(src, src_cap, "%s", s);
  snprintf(bin, bin_cap, "%s", b);
  return 0;
}

/* The shared/ folder with data/credit: MLOPSD_SHARED, else what
 * tests/shared_dir.sh prints (shared/ beside the clone or beside the main
 * checkout of a git worktree); "" when neither has it. */
static inline const char *fx_shared_dir(void)
{
  static char dir[1024];
  static int done;
  const char *sh = getenv("MLOPSD_SHARED");
  if (sh && *sh)
    return sh;
  if (!done) {
    char cmd[1200];
    done = 1;
    snprintf(cmd, sizeof(cmd), "'%s/tests/shared_dir.sh' 2>/dev/null",
             fx_src());
    FILE *p = popen(cmd, "r");
    if (p) {
      if (!fgets(dir, sizeof(dir), p))
        dir[0] = 0;
      dir[strcspn(dir, "\n")] = 0;
      pclose(p);
    }
  }
  return dir;
}

/* The course data file NAME (e.g. "predict_requests.jsonl"):
 * fx_shared_dir()/data/credit/NAME, or the copy in sql/data.  A static
 * buffer: copy it before the next call. */
static inline const char *fx_data_path(const char *name)
{
  static char buf[2048];
  const char *sh = fx_shared_dir();
  if (*sh) {
    snprintf(buf, sizeof(buf), "%s/data/credit/%s", sh, name);
    if (access(buf, R_OK) == 0)
      return buf;
  }
  snprintf(buf, sizeof(buf), "%s/sql/data/%s", fx_src(), name);
  return buf;
}

/* A free TCP port on 127.0.0.1 (bound, read, released), or -1. */
static inline int fx_free_port(void)
{
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof(a);
  if (s < 0)
    return -1;
  if (bind(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(s, (struct sockaddr *)&a, &l) != 0) {
    close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

/* ---- the test MariaDB ------------------------------------------------- */

/* Options for SIZE connections to DATABASE (NULL: none selected) on the
 * test server (MLOPSD_DATABASE_HOST/PORT/USER/PASSWORD; the strings are
 * the environment's), connect timeout 10 s, read timeout 300 s. */
static inline struct db_opts fx_db_opts(const char *database, int size)
{
  struct db_opts o = {0};
  const char *port = getenv("MLOPSD_DATABASE_PORT");
  o.host = getenv("MLOPSD_DATABASE_HOST");
  o.port = port ? atoi(port) : 3306;
  o.user = getenv("MLOPSD_DATABASE_USER");
  o.password = getenv("MLOPSD_DATABASE_PASSWORD");
  o.database = database;
  o.size = size;
  o.connect_timeout_s = 10;
  o.read_timeout_s = 300;
  return o;
}

/* A pool of SIZE connections to DATABASE (NULL: none selected) on the
 * test server, or NULL (printed). */
static inline struct db_pool *fx_pool(const char *database, int size)
{
  struct db_opts o = fx_db_opts(database, size);
  struct db_pool *p = NULL;
  struct err e = {0};
  if (!o.host) {
    fprintf(stderr, "fx_pool: MLOPSD_DATABASE_HOST not set (run through "
                    "tests/run.sh)\n");
    return NULL;
  }
  if (db_pool_create(&p, &o, &e) != ERR_OK) {
    fprintf(stderr, "fx_pool: %s\n", e.msg);
    return NULL;
  }
  return p;
}

/* Run one statement on a connection of P; 0 or -1 (printed unless
 * quiet). */
static inline int fx_exec(struct db_pool *p, const char *sql, int quiet)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int ok = p && db_acquire(p, 10000, &c, &e) == ERR_OK &&
           db_exec(c, sql, NULL, &e) == ERR_OK;
  if (!ok && !quiet)
    fprintf(stderr, "  exec failed: %.200s: %s\n", sql, e.msg);
  if (c)
    db_release(p, c);
  return ok ? 0 : -1;
}

/* The first column of the first row of SQL as an integer; -1 on error
 * (printed). */
static inline int64_t fx_q1(struct db_pool *p, const char *sql)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t v = -1;
  if (!p || db_acquire(p, 10000, &c, &e) != ERR_OK ||
      db_query_i64(c, sql, NULL, 0, &v, &e) != ERR_OK) {
    fprintf(stderr, "  query failed: %.200s: %s\n", sql, e.msg);
    v = -1;
  }
  if (c)
    db_release(p, c);
  return v;
}

/* One text cell: what fx_qs reads. */
struct fx_str {
  char s[8192];
};

static inline int fx_str_row(void *user, const struct db_row *row)
{
  struct fx_str *b = user;
  const char *v = db_row_str(row, 0, NULL);
  snprintf(b->s, sizeof(b->s), "%s", v ? v : "(null)");
  return 1;
}

/* The first column of the first row of SQL as text into OUT: "(null)" for
 * NULL, "" when there is no row or no connection, "error: WHY" when the
 * query fails (so a CHECK_EQ_STR on it shows the reason). */
static inline void fx_qs(struct db_pool *p, const char *sql,
                         struct fx_str *out)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  out->s[0] = '\0';
  if (!p || db_acquire(p, 10000, &c, &e) != ERR_OK)
    return;
  if (db_query(c, sql, NULL, 0, fx_str_row, out, NULL, &e) != ERR_OK)
    snprintf(out->s, sizeof(out->s), "error: %.200s", e.msg);
  db_release(p, c);
}

/* DROP and CREATE DATABASE NAME on the test server; 0 or -1. */
static inline int fx_db_recreate(const char *name)
{
  char sql[200];
  struct db_pool *p = fx_pool(NULL, 1);
  int rc = -1;
  snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", name);
  if (p && fx_exec(p, sql, 0) == 0) {
    snprintf(sql, sizeof(sql), "CREATE DATABASE `%s`", name);
    rc = fx_exec(p, sql, 0);
  }
  db_pool_destroy(p);
  return rc;
}

/* ---- child processes -------------------------------------------------- */

static inline int fx_run_cmd(const char *cmd);

/* A fresh database DB with the project's migrations: dropped, then
 * `BIN -c CFG db init` with MLOPSD_DATABASE_NAME=DB and the tree's
 * sql/migrations, its output appended to LOG; 0 or -1 (printed). */
static inline int fx_db_init(const char *db, const char *bin, const char *src,
                             const char *cfg, const char *log)
{
  char sql[200], cmd[4096];
  struct db_pool *p = fx_pool(NULL, 1);
  snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", db);
  int rc = p ? fx_exec(p, sql, 0) : -1;
  db_pool_destroy(p);
  if (rc)
    return -1;
  snprintf(cmd, sizeof(cmd),
           "MLOPSD_DATABASE_NAME=%s MLOPSD_SQL_DIR=%s/sql/migrations %s -c %s "
           "db init >>%s 2>&1",
           db, src, bin, cfg, log);
  if (fx_run_cmd(cmd) != 0) {
    fprintf(stderr, "db init of %s failed, see %s\n", db, log);
    return -1;
  }
  return 0;
}

/* DIR/mlopsd.yaml for a daemon on 127.0.0.1:PORT (0: any port) with two
 * threads; its spool, registry and DAGs under DIR; database DB (connect
 * timeout 2 s); the specs of the tree SRC; a scheduler tick of TICK_MS
 * (0: the default).  SERVER_EXTRA (may be NULL) adds lines to server:,
 * EXTRA (may be NULL) whole sections at the end.  0 or -1 (printed). */
static inline int fx_daemon_cfg(const char *dir, const char *src, int port,
                                const char *db, int tick_ms,
                                const char *server_extra, const char *extra)
{
  char path[1100], tick[40] = "";
  snprintf(path, sizeof(path), "%s/mlopsd.yaml", dir);
  if (tick_ms > 0)
    snprintf(tick, sizeof(tick), "  tick_ms: %d\n", tick_ms);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return -1;
  }
  fprintf(f,
          "server:\n"
          "  listen: \"127.0.0.1:%d\"\n"
          "  threads: 2\n"
          "  spool_dir: %s/spool\n"
          "%s"
          "database:\n"
          "  name: %s\n"
          "  connect_timeout: 2\n"
          "models:\n"
          "  specs_dir: %s/config/models\n"
          "  registry_dir: %s/registry\n"
          "scheduler:\n"
          "  dags_dir: %s/dags\n"
          "%s%s",
          port, dir, server_extra ? server_extra : "", db, src, dir, dir,
          tick, extra ? extra : "");
  if (fclose(f) != 0) {
    perror(path);
    return -1;
  }
  return 0;
}

/* system(cmd): the exit status, or -1 when it did not exit. */
static inline int fx_run_cmd(const char *cmd)
{
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* What fx_run captured, NUL-terminated, cut at FX_RUN_CAP - 1 bytes
 * (512 KiB in all: fine on a test's stack, nothing to free). */
#define FX_RUN_CAP (256 * 1024)
struct fx_run {
  int rc; /* exit status, 128 + signal, or -1 when it could not start */
  char out[FX_RUN_CAP], err[FX_RUN_CAP];
};

static inline void fx_slurp(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  ssize_t k;
  lseek(fd, 0, SEEK_SET);
  while (n + 1 < cap && (k = read(fd, buf + n, cap - 1 - n)) > 0)
    n += (size_t)k;
  buf[n] = 0;
  close(fd);
}

/* Run ARGV (NULL-terminated; argv[0] a path) in directory CWD (NULL: this
 * one) with ENV changes ("K=V" sets, "K" unsets; NULL-terminated, may be
 * NULL), stdin from /dev/null, stdout and stderr into r.  TMP: a directory
 * for the capture files.  Returns r->rc. */
static inline int fx_run(struct fx_run *r, const char *tmp, const char *cwd,
                         const char *const *env, const char *const *argv)
{
  char o[1100], e[1100];
  snprintf(o, sizeof(o), "%s/out.XXXXXX", tmp);
  snprintf(e, sizeof(e), "%s/err.XXXXXX", tmp);
  int fo = mkstemp(o), fe = mkstemp(e);
  r->rc = -1;
  r->out[0] = r->err[0] = 0;
  if (fo < 0 || fe < 0) {
    perror("fx_run: mkstemp");
    if (fo >= 0)
      close(fo);
    if (fe >= 0)
      close(fe);
    return -1;
  }
  unlink(o);
  unlink(e);
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    if (cwd && chdir(cwd) != 0)
      _exit(126);
    for (int i = 0; env && env[i]; i++) {
      const char *eq = strchr(env[i], '=');
      if (eq) {
        char k[256];
        snprintf(k, sizeof(k), "%.*s", (int)(eq - env[i]), env[i]);
        setenv(k, eq + 1, 1);
      } else {
        unsetenv(env[i]);
      }
    }
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0)
      dup2(nul, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  int st = 0;
  if (pid > 0 && waitpid(pid, &st, 0) == pid)
    r->rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  fx_slurp(fo, r->out, sizeof(r->out));
  fx_slurp(fe, r->err, sizeof(r->err));
  return r->rc;
}

/* fx_run of BIN with ARGS (NULL-terminated, at most 30). */
static inline int fx_run_bin(struct fx_run *r, const char *tmp,
                             const char *cwd, const char *const *env,
                             const char *bin, const char *const *args)
{
  const char *argv[32];
  int n = 0;
  argv[n++] = bin;
  for (int i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return fx_run(r, tmp, cwd, env, argv);
}

/* Print what a run said (for a failed check). */
static inline void fx_show(const char *what, const struct fx_run *r)
{
  fprintf(stderr, "  [%s] rc=%d\n  stdout: %.2000s\n  stderr: %.2000s\n",
          what, r->rc, r->out, r->err);
}

/* Start `BIN -c CFG serve [--pid-file PIDFILE]` in the background, stdout
 * and stderr appended to LOG, in directory CWD (NULL: this one); the pid
 * or -1. */
static inline pid_t fx_daemon_start(const char *bin, const char *cfg,
                                    const char *log, const char *pidfile,
                                    const char *cwd)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (cwd && chdir(cwd) != 0)
      _exit(126);
    if (pidfile)
      execl(bin, bin, "-c", cfg, "serve", "--pid-file", pidfile,
            (char *)NULL);
    else
      execl(bin, bin, "-c", cfg, "serve", (char *)NULL);
    _exit(127);
  }
  return pid > 0 ? pid : -1;
}

/* SIGTERM *pid and wait up to 30 s (then SIGKILL); *pid becomes 0.
 * Returns the exit status (0 = a clean stop, also under ASan), 128 +
 * signal, or -1 when it had to be killed or there was no child. */
static inline int fx_daemon_term(pid_t *pid)
{
  int st;
  if (*pid <= 0)
    return -1;
  kill(*pid, SIGTERM);
  for (int i = 0; i < 600; i++) {
    if (waitpid(*pid, &st, WNOHANG) == *pid) {
      *pid = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    fx_msleep(50);
  }
  kill(*pid, SIGKILL);
  waitpid(*pid, &st, 0);
  *pid = 0;
  return -1;
}

/* SIGKILL *pid and reap it; *pid becomes 0. */
static inline void fx_daemon_kill9(pid_t *pid)
{
  int st;
  if (*pid <= 0)
    return;
  kill(*pid, SIGKILL);
  waitpid(*pid, &st, 0);
  *pid = 0;
}

/* ---- HTTP on loopback ------------------------------------------------- */

struct fx_answer {
  long status;   /* HTTP status, -1 when no answer */
  char *body;    /* NUL-terminated, "" when empty */
  char *headers; /* the header block as received */
  cJSON *json;   /* body parsed, NULL when it is not JSON */
};

struct fx_buf {
  char *p;
  size_t n;
};

static inline size_t fx_on_data(char *d, size_t sz, size_t nm, void *arg)
{
  struct fx_buf *b = arg;
  size_t k = sz * nm;
  char *np = realloc(b->p, b->n + k + 1);
  if (!np)
    return 0;
  memcpy(np + b->n, d, k);
  b->n += k;
  np[b->n] = 0;
  b->p = np;
  return k;
}

/* this thread's curl handle (fx_http_done frees it) */
static _Thread_local CURL *fx_curl_tl;

/* Free this thread's curl handle (call before a thread that used fx_http
 * exits, so LeakSanitizer has nothing to report). */
static inline void fx_http_done(void)
{
  if (fx_curl_tl)
    curl_easy_cleanup(fx_curl_tl);
  fx_curl_tl = NULL;
}

static inline void fx_answer_free(struct fx_answer *a)
{
  free(a->body);
  free(a->headers);
  cJSON_Delete(a->json);
  memset(a, 0, sizeof(*a));
}

/* METHOD PATH on http://127.0.0.1:PORT with the extra header lines HDRS
 * (NULL-terminated, may be NULL) and BODY of LEN bytes (NULL: none; a
 * POST/PUT/PATCH without a Content-Type header gets application/json).
 * 0 with *a filled (free with fx_answer_free), or -1 with a->status -1
 * when nothing came back within 30 s. */
static inline int fx_http(int port, const char *method, const char *path,
                          const char *const *hdrs, const char *body,
                          size_t len, struct fx_answer *a)
{
  char url[1200];
  struct fx_buf b = {0}, hb = {0};
  struct curl_slist *h = NULL;
  int has_ct = 0;
  memset(a, 0, sizeof(*a));
  a->status = -1;
  if (!fx_curl_tl)
    fx_curl_tl = curl_easy_init();
  CURL *curl = fx_curl_tl;
  if (!curl)
    return -1;
  curl_easy_reset(curl);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, fx_on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, fx_on_data);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &hb);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  for (int i = 0; hdrs && hdrs[i]; i++) {
    h = curl_slist_append(h, hdrs[i]);
    if (strncasecmp(hdrs[i], "Content-Type:", 13) == 0)
      has_ct = 1;
  }
  if (body) {
    if (!has_ct)
      h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
  }
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    free(b.p);
    free(hb.p);
    return -1;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a->status);
  a->body = b.p ? b.p : strdup("");
  a->headers = hb.p ? hb.p : strdup("");
  a->json = cJSON_Parse(a->body);
  return 0;
}

/* GET PATH until it answers 200 or TIMEOUT_S pass; 0 or -1. */
static inline int fx_wait_http(int port, const char *path, double timeout_s)
{
  double t0 = fx_now_s();
  while (fx_now_s() - t0 < timeout_s) {
    struct fx_answer a;
    int ok = fx_http(port, "GET", path, NULL, NULL, 0, &a) == 0 &&
             a.status == 200;
    fx_answer_free(&a);
    if (ok)
      return 0;
    fx_msleep(100);
  }
  return -1;
}

/* The "data" objects of the shared predict_requests.jsonl as compact
 * JSON texts (at most 8192; free each and the array), *n their count;
 * NULL (printed) when the file cannot be read or has fewer than min. */
static inline char **fx_request_lines(size_t min, size_t *n)
{
  *n = 0;
  char *all = fx_read_file(fx_data_path("predict_requests.jsonl"), NULL);
  if (!all) {
    fprintf(stderr, "cannot read predict_requests.jsonl\n");
    return NULL;
  }
  size_t cap = 8192;
  char **v = calloc(cap, sizeof(char *));
  for (char *p = all, *nl; v && p && *p; p = nl ? nl + 1 : NULL) {
    nl = strchr(p, '\n');
    if (nl)
      *nl = '\0';
    cJSON *j = cJSON_Parse(p);
    const cJSON *d = cJSON_GetObjectItem(j, "data");
    if (cJSON_IsObject(d) && *n < cap)
      v[(*n)++] = cJSON_PrintUnformatted(d);
    cJSON_Delete(j);
  }
  free(all);
  if (v && *n >= min)
    return v;
  fprintf(stderr, "predict_requests.jsonl: %zu items, want %zu\n", *n, min);
  for (size_t i = 0; v && i < *n; i++)
    free(v[i]);
  free(v);
  *n = 0;
  return NULL;
}

/* The SQL file PATH run statement by statement on p, with every "{{ ds }}"
 * replaced by DS (NULL: the text as it is); 0, or -1 with the file and
 * what failed on stderr. */
static inline int fx_exec_file(struct db_pool *p, const char *path,
                               const char *ds)
{
  struct err e = {0};
  size_t len;
  char *text = fx_read_file(path, &len);
  if (!text) {
    fprintf(stderr, "  %s: cannot read\n", path);
    return -1;
  }
  size_t dl = ds ? strlen(ds) : 0;
  char *out = malloc(len * (dl > 8 ? dl : 8) / 8 + len + 1);
  size_t o = 0;
  for (const char *q = text; out && *q;) {
    if (ds && strncmp(q, "{{ ds }}", 8) == 0) {
      memcpy(out + o, ds, dl);
      o += dl;
      q += 8;
    } else {
      out[o++] = *q++;
    }
  }
  free(text);
  if (!out)
    return -1;
  out[o] = '\0';
  struct sqlsplit_list l = {0};
  int r = sqlsplit_split(out, &l, &e) == ERR_OK ? 0 : -1;
  if (r)
    fprintf(stderr, "  %s: %s\n", path, e.msg);
  for (size_t i = 0; r == 0 && i < l.n; i++)
    r = fx_exec(p, l.v[i].sql, 0);
  sqlsplit_list_free(&l);
  free(out);
  return r;
}

/* The project's sql/features.sql (under src, the source tree) for the
 * logical date ds, run statement by statement on p; 0 or -1 (printed). */
static inline int fx_extract_features(struct db_pool *p, const char *src,
                                      const char *ds)
{
  char path[700];
  snprintf(path, sizeof(path), "%s/sql/features.sql", src);
  return fx_exec_file(p, path, ds);
}

#endif
