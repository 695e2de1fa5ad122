/* log.h - levelled, one-line-per-event logging to stderr.
 *
 * Text format:  2026-11-26T05:40:00.123Z INFO  sched tid=1234 msg k=v ...
 * JSON format:  {"ts":"...","level":"INFO","mod":"sched","tid":1234,"msg":"..."}
 *
 * Disabled levels cost one integer compare: the LOG_* macros test the level
 * before any formatting.  Strings registered with log_add_secret() are
 * replaced by "***" in every line, so a password that slips into a message
 * (for example inside a server error) never reaches the log.
 *
 * Thread rule: log_msg and the macros may be called from any thread; each
 * line is written with one write(2) so lines never interleave.  log_init,
 * log_set_* and log_add_secret are for the main thread before threads start
 * (they are still safe later, but a concurrent line may use the old value).
 */
#ifndef MLOPSD_LOG_H
#define MLOPSD_LOG_H

#include "mlopsd/err.h"

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };
enum log_format { LOG_FMT_TEXT = 0, LOG_FMT_JSON = 1 };

extern int log_level_cur; /* read by the macros; set with log_set_level */

void log_set_level(enum log_level lvl);
void log_set_format(enum log_format fmt);
/* Parse "error|warn|info|debug" / "text|json"; ERR_INVAL on anything else. */
enum err_code log_level_parse(const char *s, enum log_level *out) MLOPSD_WUR;
enum err_code log_format_parse(const char *s, enum log_format *out) MLOPSD_WUR;
/* Register a secret to redact (copied). Empty strings are ignored. */
void log_add_secret(const char *secret);
/* Redirect output to fd (default 2).  For tests. */
void log_set_fd(int fd);

void log_msg(enum log_level lvl, const char *mod, const char *fmt, ...)
    MLOPSD_PRINTF(3, 4);

#define LOG_AT(lvl, mod, ...)                                                 \
  do {                                                                        \
    if ((int)(lvl) <= log_level_cur)                                          \
      log_msg((lvl), (mod), __VA_ARGS__);                                     \
  } while (0)
#define LOG_E(mod, ...) LOG_AT(LOG_ERROR, mod, __VA_ARGS__)
#define LOG_W(mod, ...) LOG_AT(LOG_WARN, mod, __VA_ARGS__)
#define LOG_I(mod, ...) LOG_AT(LOG_INFO, mod, __VA_ARGS__)
#define LOG_D(mod, ...) LOG_AT(LOG_DEBUG, mod, __VA_ARGS__)

#endif
