/* err.h - one error code enum for all of mlopsd, plus a detail buffer.
 *
 * Functions that can fail return enum err_code and, when given a non-NULL
 * struct err *, fill it with the code and a one-line message that names
 * what went wrong and where (file:line:col, table, URL...).  The message is
 * meant for users: no stack traces, no secrets.
 *
 * New codes go at the end; existing codes are never renumbered.
 * Thread rule: all functions may be called from any thread.
 */
#ifndef MLOPSD_ERR_H
#define MLOPSD_ERR_H

#include <stdarg.h>
#include <stddef.h>

#define ERR_MSG_MAX 512

#if defined(__GNUC__)
#define MLOPSD_WUR __attribute__((warn_unused_result))
#define MLOPSD_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define MLOPSD_WUR
#define MLOPSD_PRINTF(f, a)
#endif

enum err_code {
  ERR_OK = 0,
  ERR_NOMEM,       /* allocation failed */
  ERR_INVAL,       /* bad argument or bad input */
  ERR_IO,          /* file or socket I/O */
  ERR_PARSE,       /* YAML/JSON/CSV syntax */
  ERR_CONFIG,      /* config value out of range, unknown key */
  ERR_DB,          /* database error (SQL, constraint) */
  ERR_DB_CONN,     /* database unreachable / connection lost */
  ERR_FULL,        /* queue or spool full: back-pressure */
  ERR_SHUTDOWN,    /* component is shutting down */
  ERR_TIMEOUT,     /* deadline passed */
  ERR_CANCELED,    /* job was cancelled */
  ERR_NOTFOUND,    /* no such DAG/model/version/run */
  ERR_EXISTS,      /* already exists */
  ERR_XGB,         /* XGBoost API error */
  ERR_UNSUPPORTED, /* feature not implemented by this component */
  ERR_STATE,       /* operation not allowed in this state */
  ERR_AUTH,        /* authentication failed */
  ERR_INTERNAL,    /* a bug: should not happen */
  ERR__COUNT
};

struct err {
  enum err_code code;
  char msg[ERR_MSG_MAX];
};

/* Fixed text for a code; never NULL, static storage. */
const char *err_str(enum err_code code);

/* Set e (if non-NULL) to code and a formatted message; returns code so
 * callers can write `return err_set(e, ERR_INVAL, "...")`. */
enum err_code err_set(struct err *e, enum err_code code, const char *fmt, ...)
    MLOPSD_PRINTF(3, 4);

/* Set e (if non-NULL) to code and "where: " followed by the message
 * fmt formats with ap (ap is consumed; the caller still va_ends it);
 * the whole is cut at ERR_MSG_MAX - 1 bytes.  Returns code.  For the
 * printf-like error helpers of parsers, whose messages name the file,
 * line or field first. */
enum err_code err_vset_where(struct err *e, enum err_code code,
                             const char *where, const char *fmt, va_list ap)
    MLOPSD_PRINTF(4, 0);

/* Prefix the existing message of e with a formatted context ("ctx: msg"). */
void err_prefix(struct err *e, const char *fmt, ...) MLOPSD_PRINTF(2, 3);

/* Reset e to ERR_OK with an empty message. */
void err_clear(struct err *e);

/* Free p and set it to NULL (curl's safefree). */
#define FREE_NULL(p)                                                        \
  do {                                                                      \
    free(p);                                                                \
    (p) = NULL;                                                             \
  } while (0)

#endif
