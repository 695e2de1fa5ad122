/* buf.h - a growing, capped byte buffer (curl lib/curlx/dynbuf.c).
 *
 * For text built piece by piece (templates, metrics, JSON, CSV records)
 * where every piece would otherwise check its own realloc.  The content
 * is always NUL-terminated, so buf_str() is a C string whenever nothing
 * added held a NUL.  Errors are sticky: after the first failed add the
 * buffer refuses further adds with the same code, so a builder can add
 * many pieces and check once at the end.
 *
 *   struct buf b;
 *   buf_init(&b, 1 << 20);
 *   buf_add(&b, "a", 1);
 *   buf_addf(&b, "%d", 42);
 *   if (buf_error(&b)) ...;
 *   char *s = buf_take(&b, &len);   (or buf_free(&b))
 *
 * Thread rule: a buffer belongs to one thread at a time.
 */
#ifndef MLOPSD_BUF_H
#define MLOPSD_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

/* No cap other than memory: only for content we produce ourselves. */
#define BUF_NO_MAX SIZE_MAX

struct buf {
  char *p;          /* the bytes, NUL-terminated; NULL until first add */
  size_t len;       /* bytes held, without the NUL */
  size_t cap;       /* bytes allocated */
  size_t max;       /* most content allowed, without the NUL */
  enum err_code rc; /* first failure, sticky; ERR_OK */
};

/* An empty buffer that holds at most max bytes.  Allocates nothing. */
void buf_init(struct buf *b, size_t max);
/* The same as an initialiser: struct buf b = BUF_INIT(1 << 20); */
#define BUF_INIT(max) {NULL, 0, 0, (max), ERR_OK}

/* Build on an existing allocation: p (malloc'd, cap bytes, may be NULL
 * with cap 0) holding len bytes of content is taken over, adds append
 * after it.  For callers that keep their buffer as a (p, len, cap) triple
 * between uses; read the fields back when done. */
void buf_attach(struct buf *b, char *p, size_t len, size_t cap, size_t max);

/* Append n bytes of data.  Errors (sticky, nothing appended): ERR_FULL
 * (len would pass max), ERR_NOMEM. */
enum err_code buf_add(struct buf *b, const void *data, size_t n);

/* Append a C string (buf_add of its strlen). */
enum err_code buf_adds(struct buf *b, const char *s);

/* Append printf output.  Errors as buf_add, ERR_INVAL (bad format). */
enum err_code buf_addf(struct buf *b, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3);

/* Append s as a JSON string (quoted, with \" \\ and control bytes
 * escaped); NULL appends null.  Errors as buf_add. */
enum err_code buf_add_jstr(struct buf *b, const char *s);

/* The first failure of an add, ERR_OK if none. */
enum err_code buf_error(const struct buf *b);

/* The content as a C string; "" for an empty buffer.  Borrowed until the
 * next add, reset, take or free. */
const char *buf_str(const struct buf *b);

/* Empty the buffer and clear its error, keeping the memory for reuse. */
void buf_reset(struct buf *b);

/* Hand the content over: returns it (NUL-terminated, free() it; a new ""
 * for an empty buffer, NULL only when out of memory) with its length in
 * *len (may be NULL), and leaves b empty with the same max. */
char *buf_take(struct buf *b, size_t *len);

/* Free the content and empty the buffer.  NULL-safe. */
void buf_free(struct buf *b);

#endif
