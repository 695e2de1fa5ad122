/* err.c - error codes and detail messages (see err.h). */
#include "mlopsd/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[ERR__COUNT] = {
    [ERR_OK] = "ok",
    [ERR_NOMEM] = "out of memory",
    [ERR_INVAL] = "invalid argument",
    [ERR_IO] = "I/O error",
    [ERR_PARSE] = "parse error",
    [ERR_CONFIG] = "configuration error",
    [ERR_DB] = "database error",
    [ERR_DB_CONN] = "database connection error",
    [ERR_FULL] = "full",
    [ERR_SHUTDOWN] = "shutting down",
    [ERR_TIMEOUT] = "timed out",
    [ERR_CANCELED] = "canceled",
    [ERR_NOTFOUND] = "not found",
    [ERR_EXISTS] = "already exists",
    [ERR_XGB] = "XGBoost error",
    [ERR_UNSUPPORTED] = "unsupported",
    [ERR_STATE] = "invalid state",
    [ERR_AUTH] = "authentication failed",
    [ERR_INTERNAL] = "internal error",
};

const char *err_str(enum err_code code)
{
  if ((int)code < 0 || code >= ERR__COUNT || !err_names[code])
    return "unknown error";
  return err_names[code];
}

enum err_code err_set(struct err *e, enum err_code code, const char *fmt, ...)
{
  if (!e)
    return code;
  e->code = code;
  if (!fmt) {
    snprintf(e->msg, sizeof(e->msg), "%s", err_str(code));
    return code;
  }
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
  va_end(ap);
  return code;
}

enum err_code err_vset_where(struct err *e, enum err_code code,
                             const char *where, const char *fmt, va_list ap)
{
  char msg[ERR_MSG_MAX];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  return err_set(e, code, "%s: %s", where, msg);
}

void err_prefix(struct err *e, const char *fmt, ...)
{
  if (!e)
    return;
  char pre[ERR_MSG_MAX];
  char old[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(pre, sizeof(pre), fmt, ap);
  va_end(ap);
  memcpy(old, e->msg, sizeof(old));
  /* Build by hand: truncation of a long message is fine, and snprintf
   * with two 512-byte inputs draws -Wformat-truncation. */
  size_t pl = strnlen(pre, sizeof(e->msg) - 1);
  memcpy(e->msg, pre, pl);
  size_t n = pl;
  for (const char *s = ": "; *s && n + 1 < sizeof(e->msg); s++)
    e->msg[n++] = *s;
  size_t ol = strnlen(old, sizeof(old));
  if (ol > sizeof(e->msg) - 1 - n)
    ol = sizeof(e->msg) - 1 - n;
  memcpy(e->msg + n, old, ol);
  e->msg[n + ol] = '\0';
}

void err_clear(struct err *e)
{
  if (!e)
    return;
  e->code = ERR_OK;
  e->msg[0] = '\0';
}
