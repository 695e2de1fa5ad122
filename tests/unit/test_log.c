/* test_log.c - unit tests of log.c: levels, text and JSON lines, secret
 * redaction (also of overlapping and cut-off secrets), whole lines under
 * concurrent writers.  Output goes to a pipe or temp file via log_set_fd.
 *
 * check: tsan
 */
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/log.h"

static int pipe_rd = -1, pipe_wr = -1;
static char got[65536];

/* Everything logged since the last call (the pipe is non-blocking). */
static const char *drain(void)
{
  size_t n = 0;
  for (;;) {
    ssize_t r = read(pipe_rd, got + n, sizeof(got) - 1 - n);
    if (r <= 0)
      break;
    n += (size_t)r;
  }
  got[n] = '\0';
  return got;
}

static int count_lines(const char *s)
{
  int n = 0;
  for (; *s; s++)
    n += *s == '\n';
  return n;
}

static int matches(const char *re, const char *s)
{
  regex_t rx;
  if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB) != 0)
    return 0;
  int ok = regexec(&rx, s, 0, NULL, 0) == 0;
  regfree(&rx);
  return ok;
}

static void reset(void)
{
  log_set_fd(pipe_wr);
  log_set_level(LOG_INFO);
  log_set_format(LOG_FMT_TEXT);
  drain();
}

static int side_effects;
static int bump(void) { return ++side_effects; }

TEST(test_parse)
{
  enum log_level l = LOG_ERROR;
  enum log_format f = LOG_FMT_TEXT;
  CHECK_EQ_INT(log_level_parse("error", &l), ERR_OK);
  CHECK_EQ_INT(l, LOG_ERROR);
  CHECK_EQ_INT(log_level_parse("warn", &l), ERR_OK);
  CHECK_EQ_INT(l, LOG_WARN);
  CHECK_EQ_INT(log_level_parse("info", &l), ERR_OK);
  CHECK_EQ_INT(l, LOG_INFO);
  CHECK_EQ_INT(log_level_parse("debug", &l), ERR_OK);
  CHECK_EQ_INT(l, LOG_DEBUG);
  CHECK_EQ_INT(log_level_parse("verbose", &l), ERR_INVAL);
  CHECK_EQ_INT(log_level_parse("", &l), ERR_INVAL);
  CHECK_EQ_INT(log_level_parse(NULL, &l), ERR_INVAL);
  CHECK_EQ_INT(l, LOG_DEBUG); /* untouched on error */
  CHECK_EQ_INT(log_format_parse("json", &f), ERR_OK);
  CHECK_EQ_INT(f, LOG_FMT_JSON);
  CHECK_EQ_INT(log_format_parse("text", &f), ERR_OK);
  CHECK_EQ_INT(f, LOG_FMT_TEXT);
  CHECK_EQ_INT(log_format_parse("xml", &f), ERR_INVAL);
  CHECK_EQ_INT(log_format_parse(NULL, &f), ERR_INVAL);
}

TEST(test_levels)
{
  reset();
  log_set_level(LOG_WARN);
  LOG_D("t", "debug %d", 1);
  LOG_I("t", "info %d", 2);
  CHECK_EQ_STR(drain(), "");
  LOG_W("t", "warn %d", 3);
  LOG_E("t", "error %d", 4);
  const char *s = drain();
  CHECK_EQ_INT(count_lines(s), 2);
  CHECK(strstr(s, " WARN  t tid=") != NULL);
  CHECK(strstr(s, "warn 3\n") != NULL);
  CHECK(strstr(s, " ERROR t tid=") != NULL);
  CHECK(strstr(s, "error 4\n") != NULL);

  /* A disabled level does not even evaluate its arguments. */
  side_effects = 0;
  LOG_D("t", "%d", bump());
  CHECK_EQ_INT(side_effects, 0);
  log_set_level(LOG_DEBUG);
  LOG_D("t", "%d", bump());
  CHECK_EQ_INT(side_effects, 1);
  CHECK(strstr(drain(), " DEBUG t tid=") != NULL);

  log_set_level(LOG_ERROR);
  LOG_W("t", "hidden");
  CHECK_EQ_STR(drain(), "");
  /* log_msg itself always writes; an out-of-range level prints as ERROR. */
  log_msg((enum log_level)42, "t", "odd");
  CHECK(strstr(drain(), " ERROR t tid=") != NULL);
}

TEST(test_text_format)
{
  reset();
  LOG_I("sched", "dag=%s job=%d", "credit", 7);
  const char *s = drain();
  CHECK(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                "\\.[0-9]{3}Z INFO  sched tid=[0-9]+ dag=credit job=7\n$",
                s));
  /* A newline inside a message must not split the event into two lines. */
  LOG_W("db", "server said: line one\nline two\r\n");
  s = drain();
  CHECK_EQ_INT(count_lines(s), 1);
  CHECK(strstr(s, "server said: line one line two  \n") != NULL);
  log_msg(LOG_INFO, NULL, "no module");
  CHECK(strstr(drain(), " INFO  - tid=") != NULL);
}

TEST(test_json_format)
{
  reset();
  log_set_format(LOG_FMT_JSON);
  LOG_I("http", "quote \" backslash \\ newline \n tab \t end");
  const char *s = drain();
  CHECK_EQ_INT(count_lines(s), 1);
  cJSON *j = cJSON_Parse(s);
  REQUIRE(j != NULL);
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "level")), "INFO");
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "mod")), "http");
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg")),
               "quote \" backslash \\ newline \n tab \t end");
  CHECK(cJSON_IsNumber(cJSON_GetObjectItem(j, "tid")));
  CHECK(matches("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
                "\\.[0-9]{3}Z$",
                cJSON_GetStringValue(cJSON_GetObjectItem(j, "ts"))));
  cJSON_Delete(j);

  /* A message far over the line limit is cut but stays valid JSON. */
  static char big[10000];
  memset(big, '"', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  LOG_E("http", "%s", big);
  s = drain();
  CHECK_EQ_INT(count_lines(s), 1);
  j = cJSON_Parse(s);
  REQUIRE(j != NULL);
  const char *m = cJSON_GetStringValue(cJSON_GetObjectItem(j, "msg"));
  CHECK(m != NULL && strlen(m) > 1000 && strspn(m, "\"") == strlen(m));
  cJSON_Delete(j);
}

TEST(test_text_truncated)
{
  static char big[10000];
  reset();
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  LOG_I("t", "%s", big);
  const char *s = drain();
  CHECK_EQ_INT(count_lines(s), 1);
  CHECK(strlen(s) > 4000 && s[strlen(s) - 1] == '\n');
}

TEST(test_redact)
{
  reset();
  log_add_secret("s3cr3t-Pa55");
  log_add_secret("");   /* ignored */
  log_add_secret(NULL); /* ignored */
  LOG_E("db", "connect failed: user=root password=s3cr3t-Pa55 (again "
              "s3cr3t-Pa55)");
  const char *s = drain();
  CHECK(strstr(s, "s3cr3t") == NULL);
  CHECK(strstr(s, "password=*** (again ***)\n") != NULL);

  log_set_format(LOG_FMT_JSON);
  LOG_E("db", "pw \"s3cr3t-Pa55\"");
  s = drain();
  CHECK(strstr(s, "s3cr3t") == NULL);
  CHECK(strstr(s, "\"msg\":\"pw \\\"***\\\"\"") != NULL);
}

TEST(test_redact_overlap)
{
  /* One secret inside another: whichever is registered first, neither
   * may leave a part of the longer one in the line. */
  reset();
  log_add_secret("tok9");
  log_add_secret("AAtok9BB");
  LOG_I("t", "a=AAtok9BB b=tok9");
  const char *s = drain();
  CHECK(strstr(s, "a=*** b=***\n") != NULL);
  CHECK(strstr(s, "AA") == NULL && strstr(s, "BB") == NULL);
}

TEST(test_redact_cut_secret)
{
  /* The message is cut at 4095 bytes in the middle of the secret: its
   * beginning must not reach the log either. */
  static char pad[4096];
  reset();
  log_add_secret("ZQXWVUTSRQ-long-secret");
  memset(pad, '.', 4090);
  pad[4090] = '\0';
  LOG_I("t", "%sZQXWVUTSRQ-long-secret", pad);
  const char *s = drain();
  CHECK_EQ_INT(count_lines(s), 1);
  CHECK(strstr(s, "ZQXWV") == NULL);
  CHECK(strstr(s, ".....*****\n") != NULL);
  /* Not cut: the same pattern well inside the limit is fully masked. */
  LOG_I("t", "tail ZQXWVUTSRQ-long-secret");
  CHECK(strstr(drain(), "tail ***\n") != NULL);
}

struct writer {
  int id;
};

static void *writer_main(void *arg)
{
  struct writer *w = arg;
  for (int i = 0; i < 300; i++)
    LOG_I("mt", "writer=%d i=%d %s", w->id, i,
          "padding-padding-padding-padding-padding-padding-padding");
  return NULL;
}

TEST(test_threads_whole_lines)
{
  char path[] = "/tmp/test_log.XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  unlink(path);
  log_set_format(LOG_FMT_TEXT);
  log_set_level(LOG_INFO);
  log_set_fd(fd);
  pthread_t th[4];
  struct writer w[4];
  for (int i = 0; i < 4; i++) {
    w[i].id = i;
    REQUIRE(pthread_create(&th[i], NULL, writer_main, &w[i]) == 0);
  }
  for (int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  log_set_fd(pipe_wr);

  off_t len = lseek(fd, 0, SEEK_END);
  REQUIRE(len > 0);
  char *buf = malloc((size_t)len + 1);
  REQUIRE(buf != NULL);
  CHECK_EQ_INT(pread(fd, buf, (size_t)len, 0), len);
  buf[len] = '\0';
  close(fd);
  int lines = 0, bad = 0;
  for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l;
       l = strtok_r(NULL, "\n", &save)) {
    lines++;
    if (!matches("^[-0-9T:.Z]+ INFO  mt tid=[0-9]+ writer=[0-3] i=[0-9]+ "
                 "(padding-){6}padding$",
                 l))
      bad++;
  }
  free(buf);
  CHECK_EQ_INT(lines, 4 * 300);
  CHECK_EQ_INT(bad, 0);
}

int main(void)
{
  int p[2];
  if (pipe(p) != 0)
    return 1;
  pipe_rd = p[0];
  pipe_wr = p[1];
  fcntl(pipe_rd, F_SETFL, fcntl(pipe_rd, F_GETFL) | O_NONBLOCK);

  RUN(test_parse);
  RUN(test_levels);
  RUN(test_text_format);
  RUN(test_json_format);
  RUN(test_text_truncated);
  RUN(test_redact);
  RUN(test_redact_overlap);
  RUN(test_redact_cut_secret);
  RUN(test_threads_whole_lines);
  log_set_fd(2);
  close(pipe_rd);
  close(pipe_wr);
  return check_done();
}
