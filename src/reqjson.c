/* reqjson.c - request JSON: the check and the tree of a /predict body
 * (see reqjson.h).
 *
 * The scanner (reqjson_scan) checks a body in one pass without allocating:
 * UTF-8, JSON syntax with the position and reason of the first error,
 * nesting and number length, and records the byte range of "data" and of
 * each of its items.  reqjson_scan_parse is the same walk with an
 * allocator: it also builds the cJSON tree, and why the builder looks
 * like this:
 *
 * - A node is linked into its parent before anything is allocated for
 *   it, so when the allocator fails the tree built so far is consistent
 *   and the caller releases it as usual.
 *
 * - Strings without a backslash (nearly all) are one memcpy; the decoded
 *   length of any string is at most its raw length, so one allocation of
 *   the raw length is always enough.
 *
 * - Numbers: significant digits are gathered into an integer; when it is
 *   at most 2^53 (so it is exact in a double: every integer of up to 15
 *   digits, and most of 16) and the decimal exponent is within +-22 (so
 *   the power of ten is exact too), the value is
 *   that integer multiplied or divided by the power of ten once: a single
 *   correctly rounded operation on exact operands gives the correctly
 *   rounded result, which is what strtod returns.  Other integers of up
 *   to 19 digits with an exponent within -22..19 (17-digit numbers are a
 *   fifth of the course's) are rounded exactly with 128-bit integers
 *   (exact_big).  Anything else is copied (at most REQJSON_MAX_NUMBER
 *   characters) and given to strtod, as cJSON does.
 */
#include "mlopsd/reqjson.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 and JSON scanning ------------------------------------------ */

/* Offset of the first byte that is not part of valid UTF-8, or len. */
static size_t utf8_bad(const unsigned char *s, size_t len)
{
  size_t i = 0;
  while (i < len) {
    /* ASCII runs 8 bytes at a time */
    while (i + 8 <= len) {
      uint64_t w;
      memcpy(&w, s + i, 8);
      if (w & 0x8080808080808080ull)
        break;
      i += 8;
    }
    if (i >= len)
      break;
    unsigned c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      need = 2;
      if (c == 0xE0)
        lo = 0xA0;
      else if (c == 0xED)
        hi = 0x9F; /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      need = 3;
      if (c == 0xF0)
        lo = 0x90;
      else if (c == 0xF4)
        hi = 0x8F;
    } else {
      return i;
    }
    if (i + need >= len)
      return i;
    if (s[i + 1] < lo || s[i + 1] > hi)
      return i;
    for (size_t k = 2; k <= need; k++)
      if ((s[i + k] & 0xC0) != 0x80)
        return i;
    i += need + 1;
  }
  return len;
}

struct scan_st {
  const unsigned char *s;
  size_t n, i;
  int depth, max;
  struct reqjson_scan *o;
  void *(*alloc)(size_t); /* reqjson_scan_parse: builds the tree */
  int oom;
};

/* The tree builder's pieces (below). */
static void set_number(cJSON *item, double d);
static double num_value(int neg, uint64_t w, int q, int dropped,
                        const unsigned char *start, const unsigned char *end);
static char *decode_str(const unsigned char *p, const unsigned char *q,
                        char *o);

/* sz bytes for the tree: from the caller's bump region while it lasts
 * (inline: a call per node and string through st->alloc was a tenth of
 * the parse, issue 16), then from st->alloc. */
static inline void *scan_alloc(struct scan_st *st, size_t sz)
{
  struct reqjson_scan *o = st->o;
  if (o->bump) {
    size_t need = (sz + 15) & ~(size_t)15;
    if (need <= o->bump_cap - *o->bump_used) {
      void *p = o->bump + *o->bump_used;
      *o->bump_used += need;
      return p;
    }
  }
  return st->alloc(sz);
}

/* A zeroed node from scan_alloc, or NULL with st->oom set. */
static cJSON *scan_node(struct scan_st *st)
{
  cJSON *n = scan_alloc(st, sizeof(*n));
  if (!n) {
    st->oom = 1;
    return NULL;
  }
  memset(n, 0, sizeof(*n));
  return n;
}

static int scan_fail(struct scan_st *st, const char *msg)
{
  if (!st->o->err) {
    st->o->err = msg;
    st->o->err_pos = st->i;
  }
  return -1;
}

/* Inline: called four times per member, mostly to skip nothing or one
 * blank, so the call was most of its cost (issue 16, callgrind). */
static inline __attribute__((always_inline)) void skip_ws(struct scan_st *st)
{
  while (st->i < st->n) {
    unsigned char c = st->s[st->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
      break;
    st->i++;
  }
}

static int hex4(const unsigned char *p, unsigned *out)
{
  unsigned v = 0;
  for (int k = 0; k < 4; k++) {
    unsigned c = p[k], d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'f')
      d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      d = c - 'A' + 10;
    else
      return -1;
    v = v * 16 + d;
  }
  *out = v;
  return 0;
}

/* The end of the plain run of string bytes from s[i] on: the first quote,
 * backslash or control byte (or n).  Eight bytes at a time (a byte equal
 * to c shows as a zero byte of x ^ c*ones; a control byte as one below
 * 0x20): strings are most of a request's bytes, and the byte loop took
 * about 12 instructions per byte, a tenth of the handler (issue 16,
 * callgrind).  Bytes >= 0x80 (UTF-8) are plain here, as before. */
static size_t plain_run(const unsigned char *s, size_t i, size_t n)
{
  const uint64_t ones = 0x0101010101010101ULL;
  const uint64_t high = 0x8080808080808080ULL;
  while (n - i >= 8) {
    uint64_t x, q, b, hit;
    memcpy(&x, s + i, 8);
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x)) &
          high;
    /* the lowest flagged byte is the first special one (a borrow only
     * flags bytes above a true hit): no byte loop for the tail */
    if (hit) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
      return i + (size_t)(__builtin_ctzll(hit) >> 3);
#else
      break;
#endif
    }
    i += 8;
  }
  while (i < n && s[i] != '"' && s[i] != '\\' && s[i] >= 0x20)
    i++;
  return i;
}

/* The string at st->i; with out (building), its decoded copy into *out
 * (a new allocation of the raw length: decoding never lengthens). */
static int scan_string(struct scan_st *st, char **out)
{
  size_t start = ++st->i; /* past the opening quote */
  int esc = 0;
  for (;;) {
    st->i = plain_run(st->s, st->i, st->n);
    if (st->i >= st->n)
      return scan_fail(st, "unterminated string");
    unsigned c = st->s[st->i];
    if (c == '"') {
      if (out) {
        size_t raw = st->i - start;
        char *o = scan_alloc(st, raw + 1);
        if (!o) {
          st->oom = 1;
          return -1;
        }
        if (!esc) {
          memcpy(o, st->s + start, raw);
          o[raw] = '\0';
        } else {
          decode_str(st->s + start, st->s + st->i, o);
        }
        *out = o;
      }
      st->i++;
      return 0;
    }
    if (c < 0x20)
      return scan_fail(st, "control character in a string (must be "
                           "escaped)");
    if (c != '\\') {
      st->i++;
      continue;
    }
    esc = 1;
    if (st->i + 1 >= st->n)
      return scan_fail(st, "unterminated string");
    c = st->s[st->i + 1];
    if (strchr("\"\\/bfnrt", (int)c) && c) {
      st->i += 2;
      continue;
    }
    if (c != 'u')
      return scan_fail(st, "invalid escape in a string");
    unsigned cp, lo;
    if (st->i + 6 > st->n || hex4(st->s + st->i + 2, &cp))
      return scan_fail(st, "invalid \\u escape (4 hex digits expected)");
    if (cp == 0)
      return scan_fail(st, "\\u0000 is not allowed in a string");
    if (cp >= 0xDC00 && cp <= 0xDFFF)
      return scan_fail(st, "lone low surrogate in a \\u escape");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      if (st->i + 12 > st->n || st->s[st->i + 6] != '\\' ||
          st->s[st->i + 7] != 'u' || hex4(st->s + st->i + 8, &lo) ||
          lo < 0xDC00 || lo > 0xDFFF)
        return scan_fail(st, "lone high surrogate in a \\u escape");
      st->i += 12;
    } else {
      st->i += 6;
    }
  }
}

/* The number at st->i; building (item), its value from the digits
 * gathered on the way (num_value), the text walked once. */
static int scan_number(struct scan_st *st, cJSON *item)
{
  const unsigned char *s = st->s;
  size_t start = st->i, i = st->i, n = st->n;
  int neg = 0, nd = 0, q = 0, dropped = 0;
  uint64_t w = 0;
  if (s[i] == '-') {
    neg = 1;
    i++;
  }
  if (i >= n) {
    st->i = i;
    return scan_fail(st, "unexpected end of input in a number");
  }
  if (s[i] == '0') {
    i++;
  } else if (s[i] >= '1' && s[i] <= '9') {
    /* at most 19 digits fit in w; the rest only scale it */
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (nd < 19) {
        w = w * 10 + (uint64_t)(s[i] - '0');
        nd++;
      } else {
        q++;
        dropped = 1;
      }
    }
  } else {
    st->i = i;
    return scan_fail(st, "invalid number");
  }
  if (i < n && s[i] == '.') {
    i++;
    if (i >= n || s[i] < '0' || s[i] > '9') {
      st->i = i;
      return scan_fail(st, "invalid number (digit expected after '.')");
    }
    if (!w) /* zeros after the point of a number below one */
      for (; i < n && s[i] == '0'; i++)
        q--;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
      if (nd < 19) {
        w = w * 10 + (uint64_t)(s[i] - '0');
        nd++;
        q--;
      } else {
        dropped = 1;
      }
    }
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    int eneg = 0, ex = 0;
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-'))
      eneg = s[i++] == '-';
    if (i >= n || s[i] < '0' || s[i] > '9') {
      st->i = i;
      return scan_fail(st, "invalid number (digit expected in exponent)");
    }
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
      if (ex < 100000)
        ex = ex * 10 + (s[i] - '0');
    q += eneg ? -ex : ex;
  }
  if (i - start > REQJSON_MAX_NUMBER) {
    st->i = start;
    return scan_fail(st, "number too long (more than 63 characters)");
  }
  st->i = i;
  if (item)
    set_number(item, num_value(neg, w, q, dropped, s + start, s + i));
  return 0;
}

/* role: 1 = top-level value, 2 = the value of top-level "data".  item:
 * the node to fill (building), or NULL. */
static int scan_value(struct scan_st *st, int role, cJSON *item);

/* A new child of item after *last (linked before anything is allocated
 * for it, so a tree cut short by the allocator stays consistent). */
static cJSON *scan_child(struct scan_st *st, cJSON *item, cJSON **last)
{
  cJSON *c = scan_node(st);
  if (!c)
    return NULL;
  if (!*last) {
    item->child = c;
  } else {
    (*last)->next = c;
    c->prev = *last;
  }
  item->child->prev = c;
  *last = c;
  return c;
}

static int scan_object(struct scan_st *st, int role, cJSON *item)
{
  cJSON *last = NULL, *c = NULL;
  if (++st->depth > st->max)
    return scan_fail(st, "JSON nested too deeply");
  if (item)
    item->type = cJSON_Object;
  st->i++;
  skip_ws(st);
  if (st->i < st->n && st->s[st->i] == '}') {
    st->i++;
    st->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(st);
    if (st->i >= st->n)
      return scan_fail(st, "unexpected end of input (object not closed)");
    if (st->s[st->i] != '"')
      return scan_fail(st, "expected a string (member name)");
    if (item && !(c = scan_child(st, item, &last)))
      return -1;
    size_t k0 = st->i + 1;
    if (scan_string(st, c ? &c->string : NULL))
      return -1;
    size_t k1 = st->i - 1;
    skip_ws(st);
    if (st->i >= st->n)
      return scan_fail(st, "unexpected end of input (object not closed)");
    if (st->s[st->i] != ':')
      return scan_fail(st, "expected ':' after a member name");
    st->i++;
    skip_ws(st);
    int is_data = role == 1 && !st->o->has_data && k1 - k0 == 4 &&
                  memcmp(st->s + k0, "data", 4) == 0;
    size_t v0 = st->i;
    if (scan_value(st, is_data ? 2 : 0, c))
      return -1;
    if (is_data) {
      st->o->has_data = 1;
      st->o->data.start = v0;
      st->o->data.end = st->i;
      st->o->data_kind = st->s[v0];
    }
    skip_ws(st);
    if (st->i >= st->n)
      return scan_fail(st, "unexpected end of input (object not closed)");
    if (st->s[st->i] == ',') {
      st->i++;
      continue;
    }
    if (st->s[st->i] == '}') {
      st->i++;
      break;
    }
    return scan_fail(st, "expected ',' or '}'");
  }
  st->depth--;
  return 0;
}

static int scan_array(struct scan_st *st, int role, cJSON *item)
{
  cJSON *last = NULL, *c = NULL;
  if (++st->depth > st->max)
    return scan_fail(st, "JSON nested too deeply");
  if (item)
    item->type = cJSON_Array;
  st->i++;
  skip_ws(st);
  if (st->i < st->n && st->s[st->i] == ']') {
    st->i++;
    st->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(st);
    size_t v0 = st->i;
    if (item && !(c = scan_child(st, item, &last)))
      return -1;
    if (scan_value(st, 0, c))
      return -1;
    if (role == 2) {
      struct reqjson_scan *o = st->o;
      if (o->n_items < o->items_cap) {
        o->items[o->n_items].start = v0;
        o->items[o->n_items].end = st->i;
      }
      o->n_items++;
    }
    skip_ws(st);
    if (st->i >= st->n)
      return scan_fail(st, "unexpected end of input (array not closed)");
    if (st->s[st->i] == ',') {
      st->i++;
      continue;
    }
    if (st->s[st->i] == ']') {
      st->i++;
      break;
    }
    return scan_fail(st, "expected ',' or ']'");
  }
  st->depth--;
  return 0;
}

static int scan_lit(struct scan_st *st, const char *lit, size_t n)
{
  if (st->n - st->i < n || memcmp(st->s + st->i, lit, n) != 0)
    return scan_fail(st, "invalid literal (true, false or null expected)");
  st->i += n;
  return 0;
}

static int scan_value(struct scan_st *st, int role, cJSON *item)
{
  if (st->i >= st->n)
    return scan_fail(st, "unexpected end of input (value expected)");
  switch (st->s[st->i]) {
  case '{':
    return scan_object(st, role, item);
  case '[':
    return scan_array(st, role, item);
  case '"':
    if (!item)
      return scan_string(st, NULL);
    item->type = cJSON_String;
    return scan_string(st, &item->valuestring);
  case 't':
    if (item) {
      item->type = cJSON_True;
      item->valueint = 1;
    }
    return scan_lit(st, "true", 4);
  case 'f':
    if (item)
      item->type = cJSON_False;
    return scan_lit(st, "false", 5);
  case 'n':
    if (item)
      item->type = cJSON_NULL;
    return scan_lit(st, "null", 4);
  default:
    if (st->s[st->i] == '-' || (st->s[st->i] >= '0' && st->s[st->i] <= '9'))
      return scan_number(st, item);
    return scan_fail(st, "unexpected character (value expected)");
  }
}

/* reqjson_scan, and with alloc also the tree into *root. */
static int scan_run(const char *buf, size_t len, struct reqjson_scan *o,
                    void *(*alloc)(size_t), cJSON **root)
{
  struct scan_st st = {.s = (const unsigned char *)buf,
                       .n = len,
                       .max = o->max_depth > 0 ? o->max_depth
                                               : REQJSON_MAX_DEPTH,
                       .o = o,
                       .alloc = alloc};
  cJSON *r = NULL;
  o->has_data = 0;
  o->data.start = o->data.end = 0;
  o->data_kind = 0;
  o->n_items = 0;
  o->err = NULL;
  o->err_pos = 0;
  o->err_line = o->err_col = 0;
  size_t bad = utf8_bad(st.s, len);
  if (bad < len) {
    st.i = bad;
    scan_fail(&st, "invalid UTF-8");
  } else {
    skip_ws(&st);
    if (alloc) {
      *root = r = scan_node(&st);
      if (!r)
        return -2;
    }
    if (scan_value(&st, 1, r) == 0) {
      skip_ws(&st);
      if (st.i < st.n)
        scan_fail(&st, "unexpected data after the JSON value");
    }
  }
  if (st.oom)
    return -2;
  if (!o->err)
    return 0;
  int line = 1, col = 1;
  for (size_t k = 0; k < o->err_pos && k < len; k++) {
    if (buf[k] == '\n') {
      line++;
      col = 1;
    } else if (((unsigned char)buf[k] & 0xC0) != 0x80) {
      col++;
    }
  }
  o->err_line = line;
  o->err_col = col;
  return -1;
}

int reqjson_scan(const char *buf, size_t len, struct reqjson_scan *o)
{
  return scan_run(buf, len, o, NULL, NULL);
}

int reqjson_scan_parse(const char *buf, size_t len, struct reqjson_scan *o,
                       void *(*alloc)(size_t), cJSON **root)
{
  *root = NULL;
  return scan_run(buf, len, o, alloc, root);
}

/* ---- the tree's strings and numbers ---------------------------------- */

/* 10^q for 0 <= q <= 19 (all fit in 64 bits) */
static uint64_t pow10_u64(int q)
{
  uint64_t v = 1;
  while (q-- > 0)
    v *= 10;
  return v;
}

static const double pow10_exact[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static const uint64_t pow5_u64[23] = {
    1ULL,
    5ULL,
    25ULL,
    125ULL,
    625ULL,
    3125ULL,
    15625ULL,
    78125ULL,
    390625ULL,
    1953125ULL,
    9765625ULL,
    48828125ULL,
    244140625ULL,
    1220703125ULL,
    6103515625ULL,
    30517578125ULL,
    152587890625ULL,
    762939453125ULL,
    3814697265625ULL,
    19073486328125ULL,
    95367431640625ULL,
    476837158203125ULL,
    2384185791015625ULL};

static int bitlen128(unsigned __int128 v)
{
  uint64_t hi = (uint64_t)(v >> 64), lo = (uint64_t)v;
  if (hi)
    return 128 - __builtin_clzll(hi);
  return lo ? 64 - __builtin_clzll(lo) : 0;
}

/* w * 10^q correctly rounded (to nearest, ties to even, as strtod), for
 * 0 < w < 2^64 and -22 <= q <= 19, with exact 128-bit integers: for
 * q >= 0 the product itself (< 2^64 * 10^19 < 2^128); for q < 0,
 * 10^q = 2^q / 5^-q and the quotient of w shifted up to 128 bits by 5^-q
 * (< 2^52) keeps at least 75 significant bits, its remainder the sticky
 * bit (which can only decide within 2^-22 of a unit in the last place of
 * a midpoint; kept so that the rounding is exact by construction).  The
 * result is a normal double in this range. */
static double exact_big(uint64_t w, int q)
{
  unsigned __int128 n;
  int e2 = 0, sticky = 0;
  if (q >= 0) {
    n = (unsigned __int128)w * (unsigned __int128)pow10_u64(q);
  } else {
    int sh = 128 - bitlen128(w);
    unsigned __int128 num = (unsigned __int128)w << sh;
    uint64_t den = pow5_u64[-q];
    n = num / den;
    sticky = num % den != 0;
    e2 = q - sh; /* the 2^q of 10^q and the shift */
  }
  int bl = bitlen128(n);
  uint64_t m;
  if (bl <= 53) {
    m = (uint64_t)n; /* exact (q >= 0 only: the quotient is longer) */
  } else {
    int cut = bl - 53;
    unsigned __int128 rest = n & ((((unsigned __int128)1) << cut) - 1);
    unsigned __int128 half = ((unsigned __int128)1) << (cut - 1);
    m = (uint64_t)(n >> cut);
    if (rest > half || (rest == half && (sticky || (m & 1))))
      m++;
    e2 += cut;
    if (m == (UINT64_C(1) << 53)) {
      m >>= 1;
      e2++;
    }
  }
  return ldexp((double)m, e2);
}

/* the value of 4 hex digits the scan has checked */
static unsigned hex4_valid(const unsigned char *p)
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

/* The string bytes [p, q) (without the quotes) with their escapes
 * decoded into o, NUL-terminated; returns o. */
static char *decode_str(const unsigned char *p, const unsigned char *q,
                        char *out)
{
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
      unsigned cp = hex4_valid(p + 2);
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && q - p >= 6 && p[0] == '\\' &&
          p[1] == 'u') {
        unsigned lo = hex4_valid(p + 2);
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

/* The number with sign neg, significant digits w (the first 19; dropped:
 * more followed) and decimal exponent q; its text is [start, end). */
static double num_value(int neg, uint64_t w, int q, int dropped,
                        const unsigned char *start, const unsigned char *end)
{
  if (w == 0 && !dropped)
    return neg ? -0.0 : 0.0;
  /* 2^53, not 15 digits: a sixth of the course's numbers have 16
   * significant digits, and strtod took about 300 instructions each */
  if (!dropped && w <= (UINT64_C(1) << 53) && q >= -22 && q <= 22) {
    double d = (double)w;
    d = q < 0 ? d / pow10_exact[-q] : d * pow10_exact[q];
    return neg ? -d : d;
  }
  /* 17 to 19 digits (a fifth of the course's numbers have 17): exact
   * integer arithmetic instead of strtod's 1,200 instructions */
  if (!dropped && q >= -22 && q <= 19) {
    double d = exact_big(w, q);
    return neg ? -d : d;
  }
  char buf[REQJSON_MAX_NUMBER + 1];
  size_t n = (size_t)(end - start);
  if (n > REQJSON_MAX_NUMBER)
    n = REQJSON_MAX_NUMBER;
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

