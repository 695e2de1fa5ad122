/* predict_tree.c - the cJSON tree of a /predict body that predict_scan
 * already accepted (see predict_tree.h).
 *
 * Why it looks like this:
 *
 * - No checks: predict_scan proved the body is one valid JSON value in
 *   UTF-8 with bounded nesting and short numbers, so this walks it once,
 *   straight.  Every read is still bounded by the end of the buffer, so a
 *   caller that breaks the precondition gets a wrong tree, not a crash.
 *
 * - A node is linked into its parent before anything is allocated for
 *   it, so when the allocator fails the tree built so far is consistent
 *   and the caller releases it as usual.
 *
 * - Strings without a backslash (nearly all) are one memcpy; the decoded
 *   length of any string is at most its raw length, so one allocation of
 *   the raw length is always enough.
 *
 * - Numbers: significant digits are gathered into an integer; with at
 *   most 15 of them (so the integer is exact in a double) and a decimal
 *   exponent within +-22 (so the power of ten is exact too), the value is
 *   that integer multiplied or divided by the power of ten once: a single
 *   correctly rounded operation on exact operands gives the correctly
 *   rounded result, which is what strtod returns.  Anything else is
 *   copied (at most PREDICT_MAX_NUMBER characters) and given to strtod,
 *   as cJSON does.
 */
#include "mlopsd/predict_tree.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/predict.h"

struct tp {
  const unsigned char *s, *end;
  void *(*alloc)(size_t);
  int oom;
};

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static void skip_ws(struct tp *t)
{
  while (t->s < t->end &&
         (*t->s == ' ' || *t->s == '\n' || *t->s == '\r' || *t->s == '\t'))
    t->s++;
}

static cJSON *new_node(struct tp *t)
{
  cJSON *n = t->alloc(sizeof(*n));
  if (!n) {
    t->oom = 1;
    return NULL;
  }
  memset(n, 0, sizeof(*n));
  return n;
}

static unsigned hex4(const unsigned char *p)
{
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = p[k];
    v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
  }
  return v;
}

static char *put_utf8(char *o, unsigned cp)
{
  if (cp < 0x80) {
    *o++ = (char)cp;
  } else if (cp < 0x800) {
    *o++ = (char)(0xC0 | (cp >> 6));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *o++ = (char)(0xE0 | (cp >> 12));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *o++ = (char)(0xF0 | (cp >> 18));
    *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *o++ = (char)(0x80 | (cp & 0x3F));
  }
  return o;
}

/* The string whose opening quote is at t->s, decoded into a new
 * allocation (NULL when out of memory); t->s moves past it. */
static char *parse_str(struct tp *t)
{
  const unsigned char *p = t->s + 1, *end = t->end;
  /* the closing quote is the first one unless a backslash comes first */
  const unsigned char *q = memchr(p, '"', (size_t)(end - p));
  if (!q)
    q = end;
  const unsigned char *bs = memchr(p, '\\', (size_t)(q - p));
  int esc = bs != NULL;
  if (esc) {
    for (q = bs; q < end && *q != '"'; q++)
      if (*q == '\\')
        q++;
    if (q > end)
      q = end;
  }
  size_t raw = (size_t)(q - p);
  t->s = q < end ? q + 1 : end;
  char *out = t->alloc(raw + 1);
  if (!out) {
    t->oom = 1;
    return NULL;
  }
  if (!esc) {
    memcpy(out, p, raw);
    out[raw] = '\0';
    return out;
  }
  char *o = out;
  while (p < q) {
    if (*p != '\\') {
      *o++ = (char)*p++;
      continue;
    }
    if (q - p < 2)
      break;
    unsigned char c = p[1];
    if (c == 'u') {
      if (q - p < 6)
        break;
      unsigned cp = hex4(p + 2);
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && q - p >= 6 && p[0] == '\\' &&
          p[1] == 'u') {
        unsigned lo = hex4(p + 2);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        p += 6;
      }
      o = put_utf8(o, cp);
      continue;
    }
    switch (c) {
    case 'b':
      *o++ = '\b';
      break;
    case 'f':
      *o++ = '\f';
      break;
    case 'n':
      *o++ = '\n';
      break;
    case 'r':
      *o++ = '\r';
      break;
    case 't':
      *o++ = '\t';
      break;
    default: /* " \ / */
      *o++ = (char)c;
    }
    p += 2;
  }
  *o = '\0';
  return out;
}

static double parse_num(struct tp *t)
{
  const unsigned char *p = t->s, *start = p, *end = t->end;
  int neg = 0, nd = 0, q = 0, dropped = 0;
  uint64_t w = 0;
  if (p < end && *p == '-') {
    neg = 1;
    p++;
  }
  for (; p < end && *p >= '0' && *p <= '9'; p++) {
    if (nd < 19 && (w || *p != '0')) {
      w = w * 10 + (uint64_t)(*p - '0');
      nd += 1;
    } else if (nd >= 19) {
      q++;
      dropped = 1;
    }
  }
  if (p < end && *p == '.') {
    for (p++; p < end && *p >= '0' && *p <= '9'; p++) {
      if (nd < 19 && (w || *p != '0')) {
        w = w * 10 + (uint64_t)(*p - '0');
        nd += 1;
        q--;
      } else if (nd < 19) {
        q--; /* a leading zero of the fraction */
      } else {
        dropped = 1;
      }
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    int eneg = 0, ex = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      eneg = *p++ == '-';
    for (; p < end && *p >= '0' && *p <= '9'; p++)
      if (ex < 100000)
        ex = ex * 10 + (*p - '0');
    q += eneg ? -ex : ex;
  }
  t->s = p;
  if (w == 0 && !dropped)
    return neg ? -0.0 : 0.0;
  if (!dropped && nd <= 15 && q >= -22 && q <= 22) {
    double d = (double)w;
    d = q < 0 ? d / pow10_exact[-q] : d * pow10_exact[q];
    return neg ? -d : d;
  }
  char buf[PREDICT_MAX_NUMBER + 1];
  size_t n = (size_t)(p - start);
  if (n > PREDICT_MAX_NUMBER)
    n = PREDICT_MAX_NUMBER;
  memcpy(buf, start, n);
  buf[n] = '\0';
  return strtod(buf, NULL);
}

static void set_number(cJSON *item, double d)
{
  item->type = cJSON_Number;
  item->valuedouble = d;
  /* cJSON's saturation */
  if (d >= INT_MAX)
    item->valueint = INT_MAX;
  else if (d <= (double)INT_MIN)
    item->valueint = INT_MIN;
  else
    item->valueint = (int)d;
}

static void parse_value(struct tp *t, cJSON *item);

/* Object (obj = 1) or array at t->s. */
static void parse_container(struct tp *t, cJSON *item, int obj)
{
  cJSON *head = NULL, *last = NULL;
  item->type = obj ? cJSON_Object : cJSON_Array;
  t->s++;
  skip_ws(t);
  if (t->s < t->end && *t->s == (obj ? '}' : ']')) {
    t->s++;
    return;
  }
  while (t->s < t->end) {
    cJSON *c = new_node(t);
    if (!c)
      break;
    if (!head) {
      head = c;
      item->child = c;
    } else {
      last->next = c;
      c->prev = last;
    }
    last = c;
    head->prev = last;
    skip_ws(t);
    if (obj) {
      if (t->s >= t->end || *t->s != '"')
        break;
      c->string = parse_str(t);
      if (t->oom)
        break;
      skip_ws(t);
      if (t->s < t->end)
        t->s++; /* ':' */
      skip_ws(t);
    }
    parse_value(t, c);
    if (t->oom)
      break;
    skip_ws(t);
    if (t->s < t->end && *t->s == ',') {
      t->s++;
      continue;
    }
    if (t->s < t->end)
      t->s++; /* '}' or ']' */
    break;
  }
}

static void parse_value(struct tp *t, cJSON *item)
{
  if (t->s >= t->end)
    return;
  switch (*t->s) {
  case '{':
    parse_container(t, item, 1);
    break;
  case '[':
    parse_container(t, item, 0);
    break;
  case '"':
    item->type = cJSON_String;
    item->valuestring = parse_str(t);
    break;
  case 't':
    item->type = cJSON_True;
    item->valueint = 1;
    t->s += (size_t)(t->end - t->s) < 4 ? (size_t)(t->end - t->s) : 4;
    break;
  case 'f':
    item->type = cJSON_False;
    t->s += (size_t)(t->end - t->s) < 5 ? (size_t)(t->end - t->s) : 5;
    break;
  case 'n':
    item->type = cJSON_NULL;
    t->s += (size_t)(t->end - t->s) < 4 ? (size_t)(t->end - t->s) : 4;
    break;
  default:
    set_number(item, parse_num(t));
  }
}

enum err_code predict_tree_parse(const char *buf, size_t len,
                                 void *(*alloc)(size_t), cJSON **root)
{
  struct tp t = {.s = (const unsigned char *)buf,
                 .end = (const unsigned char *)buf + len,
                 .alloc = alloc};
  *root = NULL;
  skip_ws(&t);
  cJSON *r = new_node(&t);
  if (!r)
    return ERR_NOMEM;
  *root = r;
  parse_value(&t, r);
  return t.oom ? ERR_NOMEM : ERR_OK;
}
