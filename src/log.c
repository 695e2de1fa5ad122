/* log.c - levelled logging with secret redaction (see log.h).
 *
 * Each line is built in a stack buffer and written with a single write(2),
 * which keeps lines whole when several threads log at once.  Secrets are
 * kept in a small table sorted longest first (so a secret that contains
 * another is still masked whole); redaction is a plain substring scan
 * because lines are short and secrets are few.  A message cut at the line
 * limit is also checked for a secret cut in half at its end.
 */
#include "mlopsd/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 4096
#define LOG_SECRETS_MAX 32

int log_level_cur = LOG_INFO;
static int log_fmt = LOG_FMT_TEXT;
static int log_fd = 2;
static pthread_mutex_t log_secret_mu = PTHREAD_MUTEX_INITIALIZER;
static char *log_secrets[LOG_SECRETS_MAX]; /* strdup'd, longest first */
static int log_nsecrets;

static const char *const log_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void log_set_level(enum log_level lvl)
{
  __atomic_store_n(&log_level_cur, (int)lvl, __ATOMIC_RELAXED);
}

void log_set_format(enum log_format fmt)
{
  __atomic_store_n(&log_fmt, (int)fmt, __ATOMIC_RELAXED);
}

void log_set_fd(int fd) { __atomic_store_n(&log_fd, fd, __ATOMIC_RELAXED); }

enum err_code log_level_parse(const char *s, enum log_level *out)
{
  static const char *const names[] = {"error", "warn", "info", "debug"};
  for (int i = 0; i < 4; i++)
    if (s && strcmp(s, names[i]) == 0) {
      *out = (enum log_level)i;
      return ERR_OK;
    }
  return ERR_INVAL;
}

enum err_code log_format_parse(const char *s, enum log_format *out)
{
  if (s && strcmp(s, "text") == 0) {
    *out = LOG_FMT_TEXT;
    return ERR_OK;
  }
  if (s && strcmp(s, "json") == 0) {
    *out = LOG_FMT_JSON;
    return ERR_OK;
  }
  return ERR_INVAL;
}

void log_add_secret(const char *secret)
{
  const char *why = NULL;
  if (!secret || !*secret)
    return;
  pthread_mutex_lock(&log_secret_mu);
  for (int i = 0; i < log_nsecrets; i++)
    if (strcmp(log_secrets[i], secret) == 0)
      goto out;
  if (log_nsecrets >= LOG_SECRETS_MAX) {
    why = "too many secrets";
    goto out;
  }
  char *copy = strdup(secret);
  if (!copy) {
    why = "out of memory";
    goto out;
  }
  /* Longest first: masking "abc" before "xabcx" would leave "x***x", and
   * the longer secret would then never match: its ends would leak. */
  size_t len = strlen(copy);
  int at = 0;
  while (at < log_nsecrets && strlen(log_secrets[at]) >= len)
    at++;
  memmove(log_secrets + at + 1, log_secrets + at,
          (size_t)(log_nsecrets - at) * sizeof(*log_secrets));
  log_secrets[at] = copy;
  log_nsecrets++;
out:
  pthread_mutex_unlock(&log_secret_mu);
  if (why) {
    /* Not silent: the caller believes this secret is masked. */
    static const char pre[] = "log: cannot register a secret for redaction: ";
    ssize_t w = write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), pre,
                      sizeof(pre) - 1);
    w = write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), why, strlen(why));
    w = write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), "\n", 1);
    (void)w;
  }
}

/* Replace every registered secret in buf (in place, NUL-terminated).  If
 * truncated, buf was cut at the line limit: a secret's beginning at the very
 * end is masked too. */
static void log_redact(char *buf, int truncated)
{
  pthread_mutex_lock(&log_secret_mu);
  for (int i = 0; i < log_nsecrets; i++) {
    const char *s = log_secrets[i];
    size_t sl = strlen(s);
    char *p = buf;
    while ((p = strstr(p, s)) != NULL) {
      /* "***" is never longer than a secret of 3+ chars; shorter secrets
       * are padded so the line length never grows. */
      size_t rl = sl < 3 ? sl : 3;
      memset(p, '*', rl);
      memmove(p + rl, p + sl, strlen(p + sl) + 1);
      p += rl;
    }
    if (truncated) {
      size_t bl = strlen(buf);
      for (size_t k = sl - 1 < bl ? sl - 1 : bl; k > 0; k--)
        if (memcmp(buf + bl - k, s, k) == 0) {
          memset(buf + bl - k, '*', k);
          break;
        }
    }
  }
  pthread_mutex_unlock(&log_secret_mu);
}

/* JSON-escape src into dst (cap bytes), returns bytes written. */
static size_t log_json_esc(char *dst, size_t cap, const char *src)
{
  size_t n = 0;
  for (; *src && n + 7 < cap; src++) {
    unsigned char c = (unsigned char)*src;
    if (c == '"' || c == '\\') {
      dst[n++] = '\\';
      dst[n++] = (char)c;
    } else if (c < 0x20) {
      n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
    } else {
      dst[n++] = (char)c;
    }
  }
  dst[n] = '\0';
  return n;
}

void log_msg(enum log_level lvl, const char *mod, const char *fmt, ...)
{
  char msg[LOG_LINE_MAX];
  char line[LOG_LINE_MAX + 512];
  char ts[96]; /* room for any int fields, keeps -Wformat quiet */
  struct timespec now;
  struct tm tm;
  va_list ap;
  int n;

  if ((int)lvl < 0 || lvl > LOG_DEBUG)
    lvl = LOG_ERROR;
  if (!mod)
    mod = "-";
  va_start(ap, fmt);
  n = vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (n < 0)
    snprintf(msg, sizeof(msg), "(bad log format)");
  log_redact(msg, n >= (int)sizeof(msg));

  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm);
  snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
           tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
           tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
  long tid = (long)syscall(SYS_gettid);

  if (__atomic_load_n(&log_fmt, __ATOMIC_RELAXED) == LOG_FMT_JSON) {
    /* Escape straight into the line, leaving room for the closing "}\n",
     * so a long message is cut but the line stays valid JSON. */
    char emod[64];
    log_json_esc(emod, sizeof(emod), mod);
    n = snprintf(line, sizeof(line),
                 "{\"ts\":\"%s\",\"level\":\"%s\",\"mod\":\"%s\","
                 "\"tid\":%ld,\"msg\":\"",
                 ts, log_names[lvl], emod, tid);
    if (n < 0 || (size_t)n + 4 > sizeof(line))
      return;
    n += (int)log_json_esc(line + n, sizeof(line) - (size_t)n - 3, msg);
    memcpy(line + n, "\"}\n", 3);
    n += 3;
  } else {
    /* One event, one line: control characters (a newline inside a server
     * error, say) become spaces. */
    for (char *p = msg; *p; p++)
      if ((unsigned char)*p < 0x20)
        *p = ' ';
    n = snprintf(line, sizeof(line), "%s %-5s %s tid=%ld %s\n", ts,
                 log_names[lvl], mod, tid, msg);
    if (n < 0)
      return;
    if ((size_t)n >= sizeof(line)) {
      n = (int)sizeof(line) - 1;
      line[n - 1] = '\n';
    }
  }
  ssize_t w =
      write(__atomic_load_n(&log_fd, __ATOMIC_RELAXED), line, (size_t)n);
  (void)w; /* nowhere to report a failed log write */
}
