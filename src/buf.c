/* buf.c - growing capped byte buffer (buf.h). */
#include "mlopsd/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_CAP 256

void buf_init(struct buf *b, size_t max)
{
  b->p = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
  b->rc = ERR_OK;
}

void buf_attach(struct buf *b, char *p, size_t len, size_t cap, size_t max)
{
  b->p = p;
  b->len = len;
  b->cap = cap;
  b->max = max;
  b->rc = ERR_OK;
}

/* Room for more bytes plus the NUL. */
static enum err_code reserve(struct buf *b, size_t more)
{
  if (b->rc)
    return b->rc;
  if (more > b->max - b->len)
    return b->rc = ERR_FULL;
  size_t need = b->len + more;
  if (need == SIZE_MAX)
    return b->rc = ERR_FULL;
  need++;
  if (need <= b->cap)
    return ERR_OK;
  size_t nc = b->cap ? b->cap : FIRST_CAP;
  while (nc < need)
    nc = nc > SIZE_MAX / 2 ? need : nc * 2;
  char *np = realloc(b->p, nc);
  if (!np)
    return b->rc = ERR_NOMEM;
  b->p = np;
  b->cap = nc;
  return ERR_OK;
}

enum err_code buf_add(struct buf *b, const void *data, size_t n)
{
  enum err_code rc = reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->p + b->len, data, n);
  b->len += n;
  b->p[b->len] = '\0';
  return ERR_OK;
}

enum err_code buf_adds(struct buf *b, const char *s)
{
  return buf_add(b, s, strlen(s));
}

enum err_code buf_addf(struct buf *b, const char *fmt, ...)
{
  if (b->rc)
    return b->rc;
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (w < 0)
    return b->rc = ERR_INVAL;
  if ((size_t)w < sizeof(small))
    return buf_add(b, small, (size_t)w);
  /* Longer than the stack buffer: print straight into the buffer. */
  enum err_code rc = reserve(b, (size_t)w);
  if (rc)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)w + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)w;
  return ERR_OK;
}

enum err_code buf_error(const struct buf *b) { return b->rc; }

const char *buf_str(const struct buf *b) { return b->p ? b->p : ""; }

void buf_reset(struct buf *b)
{
  b->len = 0;
  b->rc = ERR_OK;
  if (b->p)
    b->p[0] = '\0';
}

char *buf_take(struct buf *b, size_t *len)
{
  char *p = b->p ? b->p : strdup("");
  if (len)
    *len = p ? b->len : 0;
  buf_init(b, b->max);
  return p;
}

void buf_free(struct buf *b)
{
  if (!b)
    return;
  free(b->p);
  buf_init(b, b->max);
}

/* Bytes go out as they are (callers hand in valid UTF-8); only what JSON
 * must escape is escaped, as http_resp_json_str does for valid text. */
enum err_code buf_add_jstr(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  if (!s)
    return buf_add(b, "null", 4);
  buf_add(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    if (c == '"' || c == '\\') {
      char t[2] = {'\\', (char)c};
      buf_add(b, t, 2);
    } else if (c == '\n') {
      buf_add(b, "\\n", 2);
    } else if (c == '\t') {
      buf_add(b, "\\t", 2);
    } else if (c == '\r') {
      buf_add(b, "\\r", 2);
    } else if (c < 0x20) {
      char t[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      buf_add(b, t, 6);
    } else {
      buf_add(b, (const char *)p, 1);
    }
  }
  return buf_add(b, "\"", 1);
}
