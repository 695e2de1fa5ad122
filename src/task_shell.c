/* task_shell.c - the `shell` task type: run a command through /bin/sh -c.
 *
 * The command runs in its own process group so that a timeout or a
 * cancel can stop everything it started (pipelines, background jobs):
 * SIGTERM to the group, SIGKILL 5 s later.  stdout and stderr come back
 * through two pipes read with poll() and are written to the task log line
 * by line as they arrive (long lines cut at TASK_LOG_LINE_MAX), so a long
 * command shows progress and its output is in MariaDB even if it hangs.
 *
 * When the command's shell exits, what is still running in its group
 * (e.g. `sleep 100 &`) is killed: a task owns its processes and leaves
 * none behind.  If the daemon is a child subreaper (PR_SET_CHILD_SUBREAPER)
 * those orphans are reaped here too, so the group is gone when run()
 * returns; otherwise init reaps them.
 *
 * The child gets the daemon's environment minus the secrets (the database
 * password and admin token variables, MYSQL_PWD) unless `env` sets them
 * again, plus MLOPSD_DAG_ID, MLOPSD_RUN_ID, MLOPSD_TASK_ID, MLOPSD_DS and
 * MLOPSD_TRY_NUMBER.  Everything the child needs is built before fork():
 * between fork and exec it calls only async-signal-safe functions, as the
 * daemon is multithreaded.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlopsd/cfg.h"
#include "mlopsd/queue.h"
#include "mlopsd/task.h"
#include "mlopsd/vec.h"

extern char **environ;

#define SHELL_GRACE_MS 5000    /* SIGTERM -> SIGKILL */
#define SHELL_TICK_MS 100      /* stop-flag polling while waiting */
#define SHELL_EOF_WAIT_MS 1000 /* output after the group was killed */
#define SHELL_READ_MAX ((size_t)256 << 10) /* per stream and wake-up */

static const struct task_field shell_fields[] = {
    {.name = "command", .required = 1, .templated = 1,
     .mode = TMPL_SHELL},
    {.name = "env", .templated = 1, .kind = TASK_F_MAP},
    {.name = "cwd", .templated = 1},
    {.name = NULL},
};

/* ------------------------------------------------------------------ */
/* environment */

struct envb {
  char **v;
  size_t n, cap;
};

static int envb_add(struct envb *b, char *s)
{
  if (!s)
    return -1;
  if (VEC_RESERVE(b->v, b->cap, b->n + 2)) {
    free(s);
    return -1;
  }
  b->v[b->n++] = s;
  b->v[b->n] = NULL;
  return 0;
}

static void envb_free(struct envb *b)
{
  for (size_t i = 0; i < b->n; i++)
    free(b->v[i]);
  FREE_NULL(b->v);
  b->n = b->cap = 0;
}

static char *kv(const char *k, const char *v)
{
  size_t a = strlen(k), c = strlen(v);
  char *s = malloc(a + c + 2);
  if (!s)
    return NULL;
  memcpy(s, k, a);
  s[a] = '=';
  memcpy(s + a + 1, v, c + 1);
  return s;
}

/* Does the entry "NAME=value" have name n? */
static int env_is(const char *entry, const char *n)
{
  if (!n || !*n)
    return 0;
  size_t l = strlen(n);
  return strncmp(entry, n, l) == 0 && entry[l] == '=';
}

static int env_name_ok(const char *s)
{
  if (!s || !(*s == '_' || (*s >= 'A' && *s <= 'Z') ||
              (*s >= 'a' && *s <= 'z')))
    return 0;
  for (s++; *s; s++)
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z')
          || (*s >= '0' && *s <= '9')))
      return 0;
  return 1;
}

/* Variables never passed on unless `env` sets them. */
static int env_secret(const struct task_ctx *t, const char *entry)
{
  if (env_is(entry, "MLOPSD_DATABASE_PASSWORD") ||
      env_is(entry, "MLOPSD_ADMIN_TOKEN") || env_is(entry, "MYSQL_PWD"))
    return 1;
  if (t->cfg && (env_is(entry, t->cfg->db_password_env) ||
                 env_is(entry, t->cfg->auth_admin_token_env)))
    return 1;
  return 0;
}

static const char *const run_vars[] = {
    "MLOPSD_DAG_ID", "MLOPSD_RUN_ID", "MLOPSD_TASK_ID", "MLOPSD_DS",
    "MLOPSD_TRY_NUMBER",
};

/* The env map's value for one key as text (rendered). */
static enum err_code env_value(const struct task_ctx *t, const cJSON *it,
                               char **out, struct err *e)
{
  char num[64], what[160];
  const char *src;
  snprintf(what, sizeof(what), "env.%s", it->string);
  if (cJSON_IsString(it)) {
    src = it->valuestring;
  } else if (cJSON_IsBool(it)) {
    src = cJSON_IsTrue(it) ? "true" : "false";
  } else if (cJSON_IsNumber(it)) {
    double d = it->valuedouble;
    if (d == (double)(long long)d)
      snprintf(num, sizeof(num), "%lld", (long long)d);
    else
      snprintf(num, sizeof(num), "%.17g", d);
    src = num;
  } else if (cJSON_IsNull(it)) {
    src = "";
  } else {
    return err_set(e, ERR_INVAL, "field '%s': expected a single value",
                   what);
  }
  return task_render(t, what, src, TMPL_PLAIN, out, NULL, e);
}

static enum err_code build_env(const struct task_ctx *t, struct envb *b,
                               struct err *e)
{
  const cJSON *env = t->field_json ? t->field_json(t, "env") : NULL;
  if (env && !cJSON_IsNull(env) && !cJSON_IsObject(env))
    return err_set(e, ERR_INVAL, "field 'env': expected a map of "
                   "NAME: value");
  for (char **p = environ; p && *p; p++) {
    if (env_secret(t, *p))
      continue;
    int skip = 0;
    for (size_t i = 0; i < sizeof(run_vars) / sizeof(run_vars[0]); i++)
      skip |= env_is(*p, run_vars[i]);
    for (const cJSON *it = env ? env->child : NULL; it && !skip;
         it = it->next)
      skip |= env_is(*p, it->string);
    if (!skip && envb_add(b, strdup(*p)) != 0)
      return err_set(e, ERR_NOMEM, "shell: out of memory");
  }
  char tryn[16];
  snprintf(tryn, sizeof(tryn), "%d", t->try_number);
  const char *vals[] = {t->dag_id, t->run_id, t->task_id, t->ds, tryn};
  for (size_t i = 0; i < sizeof(run_vars) / sizeof(run_vars[0]); i++)
    if (envb_add(b, kv(run_vars[i], vals[i] ? vals[i] : "")) != 0)
      return err_set(e, ERR_NOMEM, "shell: out of memory");
  for (const cJSON *it = env ? env->child : NULL; it; it = it->next) {
    if (!env_name_ok(it->string))
      return err_set(e, ERR_INVAL, "field 'env': bad variable name "
                     "'%.64s' (letters, digits, _)", it->string);
    char *v;
    enum err_code rc = env_value(t, it, &v, e);
    if (rc != ERR_OK)
      return rc;
    char *s = kv(it->string, v);
    free(v);
    if (envb_add(b, s) != 0)
      return err_set(e, ERR_NOMEM, "shell: out of memory");
  }
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* output streams */

struct stream {
  int fd;              /* read end, -1 once at EOF */
  const char *name;    /* "stdout" / "stderr" */
  size_t len;
  char buf[TASK_LOG_LINE_MAX + 1];
};

static void stream_emit(const struct task_ctx *t, struct stream *s)
{
  size_t n = s->len;
  if (n > 0 && s->buf[n - 1] == '\r')
    n--;
  s->buf[n] = '\0';
  if (t->log_line)
    t->log_line(t, s->name, s->buf);
  s->len = 0;
}

static void stream_feed(const struct task_ctx *t, struct stream *s,
                        const char *p, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    if (p[i] == '\n') {
      stream_emit(t, s);
      continue;
    }
    s->buf[s->len++] = p[i];
    if (s->len == TASK_LOG_LINE_MAX)
      stream_emit(t, s);
  }
}

/* Read what is available (the fd is non-blocking), up to max bytes so
 * that a command writing without pause cannot keep us from checking the
 * stop flag.  Closes at EOF. */
static void stream_read(const struct task_ctx *t, struct stream *s,
                        size_t max)
{
  char tmp[16384];
  size_t got = 0;
  while (s->fd >= 0 && got < max) {
    ssize_t r = read(s->fd, tmp, sizeof(tmp));
    if (r > 0) {
      stream_feed(t, s, tmp, (size_t)r);
      got += (size_t)r;
      continue;
    }
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    close(s->fd); /* EOF or a read error: nothing more will come */
    s->fd = -1;
  }
}

static void stream_close(const struct task_ctx *t, struct stream *s)
{
  if (s->fd >= 0) {
    close(s->fd);
    s->fd = -1;
  }
  if (s->len > 0)
    stream_emit(t, s);
}

/* ------------------------------------------------------------------ */
/* process */

/* Move fd above 2 so that the child's dup2 onto 0..2 cannot clobber it. */
static int fd_high(int fd)
{
  if (fd < 0 || fd > 2)
    return fd;
  int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return n;
}

static int pipe_high(int p[2])
{
  if (pipe2(p, O_CLOEXEC) != 0)
    return -1;
  p[0] = fd_high(p[0]);
  p[1] = fd_high(p[1]);
  if (p[0] < 0 || p[1] < 0) {
    if (p[0] >= 0)
      close(p[0]);
    if (p[1] >= 0)
      close(p[1]);
    return -1;
  }
  return 0;
}

struct child_fail {
  int stage; /* 1 chdir, 2 exec, 3 setup */
  int err;
};

/* In the child: async-signal-safe calls only. */
static void child_run(int in, int out, int errw, int report, long maxfd,
                      const char *cwd, char *const argv[],
                      char *const envp[])
{
  struct child_fail f = {3, 0};
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  setpgid(0, 0);
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &sa, NULL); /* fails harmlessly for RT internals */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(errw, 2) < 0)
    goto fail;
  /* Every other descriptor closes at exec (the report pipe too, which
   * tells the parent that exec worked). */
  if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
    for (long fd = 3; fd < maxfd; fd++)
      fcntl((int)fd, F_SETFD, FD_CLOEXEC);
  }
  if (cwd && *cwd && chdir(cwd) != 0) {
    f.stage = 1;
    goto fail;
  }
  execve("/bin/sh", argv, envp);
  f.stage = 2;
fail:
  f.err = errno;
  while (write(report, &f, sizeof(f)) < 0 && errno == EINTR) {
  }
  _exit(127);
}

static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
  long fd = syscall(SYS_pidfd_open, pid, 0);
  return fd >= 0 ? (int)fd : -1;
#else
  (void)pid;
  return -1;
#endif
}

/* Has the leader exited?  Leaves it unreaped (a zombie keeps the process
 * group id from being reused until we are done with the group). */
static int leader_exited(pid_t pid)
{
  siginfo_t si;
  memset(&si, 0, sizeof(si));
  if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
    return errno == ECHILD;
  return si.si_pid == pid;
}

static int64_t min_pos(int64_t a, int64_t b)
{
  if (a <= 0)
    return b;
  if (b <= 0)
    return a;
  return a < b ? a : b;
}

/* Kill what is left of the group, read the output to its end, reap the
 * leader (and, under a subreaper, the orphans of the group). */
static int finish(const struct task_ctx *t, pid_t pid,
                  struct stream *so, struct stream *se)
{
  stream_read(t, so, SHELL_READ_MAX);
  stream_read(t, se, SHELL_READ_MAX);
  int held = so->fd >= 0 || se->fd >= 0;
  kill(-pid, SIGKILL);
  if (held)
    task_logf(t, "the command exited but left processes holding its "
              "output open: killed its process group");
  int64_t until = queue_now_ms() + SHELL_EOF_WAIT_MS;
  while (so->fd >= 0 || se->fd >= 0) {
    struct pollfd pf[2];
    int n = 0;
    if (so->fd >= 0)
      pf[n++] = (struct pollfd){.fd = so->fd, .events = POLLIN};
    if (se->fd >= 0)
      pf[n++] = (struct pollfd){.fd = se->fd, .events = POLLIN};
    int64_t left = until - queue_now_ms();
    if (left <= 0)
      break; /* something outside the group holds the pipes */
    if (poll(pf, (nfds_t)n, (int)left) < 0 && errno != EINTR)
      break;
    stream_read(t, so, SHELL_READ_MAX);
    stream_read(t, se, SHELL_READ_MAX);
  }
  stream_close(t, so);
  stream_close(t, se);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  for (;;) {
    pid_t r = waitpid(-pid, NULL, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0)
      break; /* ECHILD: none of the group is our child any more */
  }
  return status;
}

static void first_line(const char *s, char *buf, size_t cap)
{
  size_t n = strcspn(s, "\n");
  if (n >= cap)
    n = cap - 4;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (s[n] && n + 4 <= cap)
    strcat(buf, "...");
}

/* The command (rendered for the shell) and its working directory
 * (plain; *cwd NULL when not given).  The caller frees both. */
static enum err_code shell_render(struct task_ctx *t, char **cmd, char **cwd,
                                  struct err *e)
{
  char tmp[128];
  const char *raw;
  enum err_code rc = task_field_text(t, "command", tmp, sizeof(tmp), &raw,
                                     e);
  if (rc != ERR_OK)
    return rc;
  if (!raw || !*raw)
    return err_set(e, ERR_INVAL, "field 'command' is required");
  rc = task_render(t, "command", raw, TMPL_SHELL, cmd, NULL, e);
  if (rc != ERR_OK)
    return rc;
  rc = task_field_text(t, "cwd", tmp, sizeof(tmp), &raw, e);
  if (rc == ERR_OK && raw && *raw)
    rc = task_render(t, "cwd", raw, TMPL_PLAIN, cwd, NULL, e);
  return rc;
}

/* Wait for the child's exec (the report pipe closes unread) or the reason
 * it failed (child_run wrote it; the child is reaped then).  Closes
 * *report. */
static enum err_code exec_report(pid_t pid, int *report, const char *cwd,
                                 struct err *e)
{
  struct child_fail f;
  ssize_t r;
  do
    r = read(*report, &f, sizeof(f));
  while (r < 0 && errno == EINTR);
  close(*report);
  *report = -1;
  if (r != (ssize_t)sizeof(f))
    return ERR_OK;
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (f.stage == 1)
    return err_set(e, ERR_IO, "shell: cannot change to directory '%s': %s",
                   cwd, strerror(f.err));
  if (f.stage == 2)
    return err_set(e, ERR_IO, "shell: cannot run /bin/sh: %s",
                   strerror(f.err));
  return err_set(e, ERR_IO, "shell: cannot set up the child: %s",
                 strerror(f.err));
}

/* Follow the running command until its leader exits: its output into the
 * task log, a stop request as SIGTERM to the group and SIGKILL after
 * SHELL_GRACE_MS.  Then finish() and *status the leader's wait status.
 * *stopping says whether it was stopped. */
static enum err_code supervise(struct task_ctx *t, pid_t pid, int pidfd,
                               struct stream *so, struct stream *se,
                               int *stopping, int *status, struct err *e)
{
  int64_t kill_at = 0;
  *stopping = 0;
  for (;;) {
    if (leader_exited(pid))
      break;
    int64_t now = queue_now_ms();
    if (!*stopping && task_should_stop(t)) {
      *stopping = 1;
      kill(-pid, SIGTERM);
      kill_at = now + SHELL_GRACE_MS;
      task_logf(t, "stopping: SIGTERM sent to process group %d",
                (int)pid);
    }
    if (*stopping && kill_at > 0 && now >= kill_at) {
      kill(-pid, SIGKILL);
      kill_at = 0;
      task_logf(t, "still running %d ms after SIGTERM: SIGKILL sent",
                SHELL_GRACE_MS);
    }
    int64_t wake = *stopping ? kill_at : task_deadline_ms(t);
    if (t->job || pidfd < 0)
      wake = min_pos(wake, now + SHELL_TICK_MS);
    int timeout = -1;
    if (wake > 0)
      timeout = wake > now ? (int)(wake - now) : 0;

    struct pollfd pf[3];
    int n = 0;
    if (so->fd >= 0)
      pf[n++] = (struct pollfd){.fd = so->fd, .events = POLLIN};
    if (se->fd >= 0)
      pf[n++] = (struct pollfd){.fd = se->fd, .events = POLLIN};
    if (pidfd >= 0)
      pf[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
    if (n == 0 && timeout < 0)
      timeout = SHELL_TICK_MS; /* cannot happen with a pidfd */
    if (poll(pf, (nfds_t)n, timeout) < 0 && errno != EINTR) {
      kill(-pid, SIGKILL);
      enum err_code rc = err_set(e, ERR_IO, "shell: poll failed: %s",
                                 strerror(errno));
      finish(t, pid, so, se);
      return rc;
    }
    stream_read(t, so, SHELL_READ_MAX);
    stream_read(t, se, SHELL_READ_MAX);
  }
  *status = finish(t, pid, so, se);
  return ERR_OK;
}

/* The task's result from how the command ended. */
static enum err_code exit_result(struct task_ctx *t, int status,
                                 int stopping, int tmo, struct err *e)
{
  if (stopping)
    return task_stopped(t, "command killed", tmo, e);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    task_logf(t, "command exited with status 0");
    return ERR_OK;
  }
  if (WIFEXITED(status))
    return err_set(e, ERR_STATE, "command exited with status %d",
                   WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const char *abbr = sigabbrev_np(WTERMSIG(status));
    return err_set(e, ERR_STATE, "command killed by signal %d (SIG%s)",
                   WTERMSIG(status), abbr ? abbr : "?");
  }
  return err_set(e, ERR_STATE, "command ended with wait status %d", status);
}

static enum err_code shell_run(struct task_ctx *t, struct err *e)
{
  enum err_code rc = ERR_OK;
  const int tmo = task_timeout_s(t);
  char *cmd = NULL, *cwd = NULL;
  struct envb env = {0};
  int pin = -1, pout[2] = {-1, -1}, perr[2] = {-1, -1};
  int prep[2] = {-1, -1}, pidfd = -1;

  if ((rc = shell_render(t, &cmd, &cwd, e)) != ERR_OK ||
      (rc = build_env(t, &env, e)) != ERR_OK)
    goto out;

  pin = fd_high(open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (pin < 0 || pipe_high(pout) != 0 || pipe_high(perr) != 0 ||
      pipe_high(prep) != 0) {
    rc = err_set(e, ERR_IO, "shell: cannot create pipes: %s",
                 strerror(errno));
    goto out;
  }
  long maxfd = sysconf(_SC_OPEN_MAX);
  if (maxfd < 0 || maxfd > 65536)
    maxfd = 65536;
  char *argv[] = {"sh", "-c", cmd, NULL};

  char shown[256];
  first_line(cmd, shown, sizeof(shown));
  task_logf(t, "running: %s", shown);
  if (cwd)
    task_logf(t, "in directory: %s", cwd);

  pid_t pid = fork();
  if (pid < 0) {
    rc = err_set(e, ERR_IO, "shell: fork failed: %s", strerror(errno));
    goto out;
  }
  if (pid == 0)
    child_run(pin, pout[1], perr[1], prep[1], maxfd, cwd, argv, env.v);
  setpgid(pid, pid); /* also here: no race with an early kill(-pid) */
  close(pin);
  close(pout[1]);
  close(perr[1]);
  close(prep[1]);
  pin = pout[1] = perr[1] = prep[1] = -1;
  if ((rc = exec_report(pid, &prep[0], cwd, e)) != ERR_OK)
    goto out;

  struct stream so = {.fd = pout[0], .name = "stdout"};
  struct stream se = {.fd = perr[0], .name = "stderr"};
  pout[0] = perr[0] = -1;
  fcntl(so.fd, F_SETFL, O_NONBLOCK);
  fcntl(se.fd, F_SETFL, O_NONBLOCK);
  pidfd = pidfd_of(pid);
  int stopping, status = 0;
  if ((rc = supervise(t, pid, pidfd, &so, &se, &stopping, &status, e)) ==
      ERR_OK)
    rc = exit_result(t, status, stopping, tmo, e);

out:
  if (pidfd >= 0)
    close(pidfd);
  int fds[] = {pin, pout[0], pout[1], perr[0], perr[1], prep[0], prep[1]};
  for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
    if (fds[i] >= 0)
      close(fds[i]);
  envb_free(&env);
  free(cmd);
  free(cwd);
  return rc;
}

static enum err_code shell_check(const struct task_ctx *t, struct err *e)
{
  char tmp[64];
  const char *cmd;
  enum err_code rc = task_field_text(t, "command", tmp, sizeof(tmp), &cmd,
                                     e);
  if (rc != ERR_OK)
    return rc;
  if (!cmd || !*cmd)
    return err_set(e, ERR_INVAL, "field 'command' is required");
  const cJSON *env = t->field_json ? t->field_json(t, "env") : NULL;
  if (env && !cJSON_IsNull(env)) {
    if (!cJSON_IsObject(env))
      return err_set(e, ERR_INVAL, "field 'env': expected a map of "
                     "NAME: value");
    for (const cJSON *it = env->child; it; it = it->next) {
      if (!env_name_ok(it->string))
        return err_set(e, ERR_INVAL, "field 'env': bad variable name "
                       "'%.64s' (letters, digits, _)", it->string);
      if (cJSON_IsObject(it) || cJSON_IsArray(it))
        return err_set(e, ERR_INVAL, "field 'env.%s': expected a single "
                       "value", it->string);
    }
  }
  return ERR_OK;
}

const struct task_type task_type_shell = {
    .name = "shell",
    .fields = shell_fields,
    .check = shell_check,
    .run = shell_run,
};
