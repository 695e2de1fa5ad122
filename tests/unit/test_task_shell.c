/* test_task_shell.c - the shell task type (src/task_shell.c) on its own:
 * real processes through /bin/sh, a hand-built task context (task_ctx.h)
 * and, for cancelling, a real job queue; no scheduler, no database.
 *
 * What is checked: stdout and stderr arrive line by line in their own
 * streams (long lines cut, many lines all kept), templates and conf values
 * in the command (a conf value stays one word), the exit status and a
 * non-zero one failing the attempt, env and cwd, secrets kept out of the
 * command's environment, a timeout and a cancel killing the whole process
 * group (nothing of it left).
 *
 * The process is made a child subreaper so that the orphans of a killed
 * command are reparented to it and reaped by the shell executor: then
 * "no process of the group is left" can be checked exactly.
 *
 * check: tsan
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "task_ctx.h"

#include "mlopsd/log.h"
#include "mlopsd/queue.h"
#include "mlopsd/task.h"

static struct err E;

static struct fx_tc *sh_ctx(const char *cmd, const char *extra)
{
  struct fx_tc *c = fx_tc_with("command", cmd, extra, NULL, NULL);
  if (c)
    c->t.try_number = 2;
  return c;
}

TEST(t_shell_streams)
{
  struct fx_tc *c = sh_ctx("echo out1; echo err1 >&2; echo out2; "
                        "echo err2 >&2; printf 'no newline'",
                        NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_INT(fx_tc_count(c, "stdout"), 3);
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "out1");
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 1), "out2");
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 2), "no newline");
  CHECK_EQ_INT(fx_tc_count(c, "stderr"), 2);
  CHECK_EQ_STR(fx_tc_nth(c, "stderr", 0), "err1");
  CHECK_EQ_STR(fx_tc_nth(c, "stderr", 1), "err2");
  CHECK(fx_tc_has(c, "log", "exited with status 0"));
  fx_tc_free(c);

  /* a long line is cut at TASK_LOG_LINE_MAX; many lines all arrive */
  c = sh_ctx("head -c 10000 /dev/zero | tr '\\0' x; echo; seq 1 3000", NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_INT(fx_tc_count(c, "stdout"), 3 + 3000);
  CHECK_EQ_INT(strlen(fx_tc_nth(c, "stdout", 0)), TASK_LOG_LINE_MAX);
  CHECK_EQ_INT(strlen(fx_tc_nth(c, "stdout", 1)), TASK_LOG_LINE_MAX);
  CHECK_EQ_INT(strlen(fx_tc_nth(c, "stdout", 2)), 10000 - 2 * TASK_LOG_LINE_MAX);
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 3002), "3000");
  fx_tc_free(c);

  /* templates in the command; conf values as one quoted word */
  c = sh_ctx("echo {{ ds_nodash }} {{ conf.v }}", NULL);
  c->conf = cJSON_Parse("{\"v\": \"a b; echo injected\"}");
  c->t.conf = c->conf;
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "20250901 a b; echo injected");
  CHECK_EQ_INT(fx_tc_count(c, "stdout"), 1);
  fx_tc_free(c);
}

TEST(t_shell_exit)
{
  struct fx_tc *c = sh_ctx("echo bye; exit 3", NULL);
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_STATE);
  CHECK_EQ_STR(E.msg, "command exited with status 3");
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "bye");
  fx_tc_free(c);

  c = sh_ctx("kill -USR1 $$", NULL);
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_STATE);
  CHECK_HAS(E.msg, "killed by signal 10 (SIGUSR1)");
  fx_tc_free(c);

  c = sh_ctx("no_such_command_xyz", NULL);
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_STATE);
  CHECK_EQ_STR(E.msg, "command exited with status 127");
  CHECK(fx_tc_count(c, "stderr") >= 1);
  fx_tc_free(c);
}

TEST(t_shell_env_cwd)
{
  char dir[512], extra[1024], real[PATH_MAX];
  snprintf(dir, sizeof(dir), "%s/cwd dir", fx_tmp());
  mkdir(dir, 0700);
  REQUIRE(realpath(dir, real) != NULL);
  snprintf(extra, sizeof(extra),
           "\"cwd\": \"%s\", \"env\": {\"FOO\": \"bar {{ ds }}\", "
           "\"NUM\": 42, \"FLAG\": true, \"MLOPSD_DS\": \"overridden\"}",
           dir);
  struct fx_tc *c = sh_ctx("echo \"$FOO|$NUM|$FLAG|$(pwd)\"; "
                        "echo \"$MLOPSD_DAG_ID|$MLOPSD_RUN_ID|$MLOPSD_TASK_ID"
                        "|$MLOPSD_DS|$MLOPSD_TRY_NUMBER\"; "
                        "test -t 0 || read x || echo stdin-empty",
                        extra);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  char want[PATH_MAX + 64];
  snprintf(want, sizeof(want), "bar 2025-09-01|42|true|%s", real);
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), want);
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 1),
               "it_dag|scheduled__2025-09-01|it_task|overridden|2");
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 2), "stdin-empty");
  fx_tc_free(c);

  c = sh_ctx("pwd", "\"cwd\": \"/no/such/dir\"");
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_IO);
  CHECK_HAS(E.msg, "cannot change to directory '/no/such/dir'");
  fx_tc_free(c);

  c = sh_ctx("true", "\"env\": {\"BAD-NAME\": \"x\"}");
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_INVAL);
  fx_tc_free(c);

  /* only the command's own descriptors are open in the child */
  c = sh_ctx("ls /proc/self/fd | wc -l", NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  /* 0, 1, 2 and the one ls opens to read the directory */
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "4");
  fx_tc_free(c);
}

TEST(t_shell_secrets)
{
  char *saved = getenv("MLOPSD_DATABASE_PASSWORD");
  saved = saved ? strdup(saved) : NULL;
  setenv("MLOPSD_DATABASE_PASSWORD", "db-secret", 1);
  setenv("MLOPSD_ADMIN_TOKEN", "admin-secret", 1);
  setenv("MYSQL_PWD", "my-secret", 1);
  setenv("UT_SHELL_KEEP", "kept", 1);
  const char *cmd = "echo \"${MLOPSD_DATABASE_PASSWORD-unset}|"
                    "${MLOPSD_ADMIN_TOKEN-unset}|${MYSQL_PWD-unset}|"
                    "${UT_SHELL_KEEP-unset}\"";
  struct fx_tc *c = sh_ctx(cmd, NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "unset|unset|unset|kept");
  fx_tc_free(c);
  c = sh_ctx(cmd, "\"env\": {\"MLOPSD_ADMIN_TOKEN\": \"explicit\"}");
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 0), "unset|explicit|unset|kept");
  fx_tc_free(c);
  if (saved)
    setenv("MLOPSD_DATABASE_PASSWORD", saved, 1);
  else
    unsetenv("MLOPSD_DATABASE_PASSWORD");
  free(saved);
  unsetenv("MLOPSD_ADMIN_TOKEN");
  unsetenv("MYSQL_PWD");
  unsetenv("UT_SHELL_KEEP");
}

/* The group's id as printed by the command ($$ of the shell). */
static pid_t pgid_of(struct fx_tc *c)
{
  const char *l = fx_tc_nth(c, "stdout", 0);
  return l ? (pid_t)atoi(l) : 0;
}

static int group_gone(pid_t pgid)
{
  return pgid > 1 && kill(-pgid, 0) == -1 && errno == ESRCH;
}

TEST(t_shell_timeout_group)
{
  /* the shell and a background grandchild, both killed by SIGTERM */
  struct fx_tc *c = sh_ctx("echo $$; sleep 100 & sh -c 'sleep 100' & wait",
                        NULL);
  c->t.deadline_ms = queue_now_ms() + 300;
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_TIMEOUT);
  CHECK_HAS(E.msg, "killed after timeout of 1s");
  pid_t g = pgid_of(c);
  CHECK(g > 1);
  CHECK(group_gone(g));
  CHECK(fx_tc_has(c, "log", "SIGTERM"));
  fx_tc_free(c);

  /* a command that ignores SIGTERM gets SIGKILL after the grace period */
  c = sh_ctx("trap '' TERM; echo $$; sleep 100 & wait; wait", NULL);
  c->t.deadline_ms = queue_now_ms() + 300;
  c->t.timeout_s = 7;
  CHECK_EQ_INT(fx_tc_run(c, "shell", &E), ERR_TIMEOUT);
  CHECK_EQ_STR(E.msg, "command killed after timeout of 7s");
  CHECK(fx_tc_has(c, "log", "SIGKILL sent"));
  g = pgid_of(c);
  CHECK(group_gone(g));
  fx_tc_free(c);

  /* a command that exits while a background job still runs: the job is
   * killed, the task succeeds */
  c = sh_ctx("echo $$; sleep 100 & echo started", NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK_EQ_STR(fx_tc_nth(c, "stdout", 1), "started");
  CHECK(fx_tc_has(c, "log", "killed its process group"));
  CHECK(group_gone(pgid_of(c)));
  fx_tc_free(c);

  /* ... also one that floods the output pipe without pause */
  c = sh_ctx("echo $$ >&2; yes &", NULL);
  CHECK_OK(fx_tc_run(c, "shell", &E));
  CHECK(fx_tc_has(c, "log", "killed its process group"));
  const char *l = fx_tc_nth(c, "stderr", 0);
  CHECK(l && group_gone((pid_t)atoi(l)));
  fx_tc_free(c);
}

TEST(t_shell_cancel)
{
  struct queue *q = NULL;
  struct queue_opts o = {.workers = 1, .capacity = 4, .name = "it_task"};
  CHECK_OK(queue_create(&q, &o, &E));
  REQUIRE(q != NULL);
  struct fx_tc_job j = {.type = "shell"};
  j.c = sh_ctx("echo $$; sleep 100 & echo started; wait", NULL);
  fx_tc_cancel_run(q, &j, "stdout", "started");
  CHECK_EQ_INT(j.run_rc, ERR_CANCELED);
  CHECK_HAS(j.run_msg, "command killed: attempt cancelled");
  CHECK_EQ_INT(j.done_rc, ERR_CANCELED);
  CHECK(group_gone(pgid_of(j.c)));
  fx_tc_free(j.c);
  queue_destroy(q);
}

/* ------------------------------------------------------------------ */
/* http */

int main(void)
{
  log_set_level(LOG_ERROR);
  signal(SIGPIPE, SIG_IGN);
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    perror("prctl(PR_SET_CHILD_SUBREAPER)");
  if (!fx_tmp())
    return 1;
  RUN(t_shell_streams);
  RUN(t_shell_exit);
  RUN(t_shell_env_cwd);
  RUN(t_shell_secrets);
  RUN(t_shell_timeout_group);
  RUN(t_shell_cancel);
  return check_done();
}
