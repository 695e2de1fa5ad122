/* plog_rec.c - the prediction log's formats (see plog_int.h): a batch
 * of rows as one spool record and back; a row as the buffer takes it
 * (cut to its columns) and as the table takes it (compact features, the
 * DATETIME text).
 *
 * Apart from plog.c because it is a format, not a writer: it has no
 * state, and the tests check a round trip and every way a record can be
 * cut short without a database or a spool.  Fields are copied with
 * memcpy: a record's offsets are not aligned for the wider types.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "mlopsd/plog.h"
#include "mlopsd/vec.h"
#include "plog_int.h"

static void put32(char **d, uint32_t x)
{
  memcpy(*d, &x, 4);
  *d += 4;
}
static void put64(char **d, uint64_t x)
{
  memcpy(*d, &x, 8);
  *d += 8;
}

size_t plog_rec_encode(char **buf, size_t *cap, const struct pbuf_row *v,
                       size_t n)
{
  size_t len = 8;
  for (size_t i = 0; i < n; i++)
    len += PLOG_REC_ROW_HDR + v[i].cid_len + v[i].pred_len + v[i].model_len +
           v[i].feat_len;
  if (VEC_RESERVE(*buf, *cap, len))
    return 0;
  char *d = *buf;
  put32(&d, PLOG_REC_MAGIC);
  put32(&d, (uint32_t)n);
  for (size_t i = 0; i < n; i++) {
    uint64_t conf;
    memcpy(&conf, &v[i].conf, 8);
    put64(&d, v[i].seq);
    put64(&d, (uint64_t)v[i].created_us);
    put64(&d, conf);
    put32(&d, (uint32_t)v[i].elapsed_ms);
    put32(&d, (uint32_t)v[i].model_version);
    uint16_t l16[3] = {(uint16_t)v[i].cid_len, (uint16_t)v[i].pred_len,
                       (uint16_t)v[i].model_len};
    memcpy(d, l16, 6);
    d += 6;
    /* 2 bytes of padding, then the features length */
    memset(d, 0, 2);
    d += 2;
    put32(&d, (uint32_t)v[i].feat_len);
    memcpy(d, v[i].cid, v[i].cid_len);
    d += v[i].cid_len;
    memcpy(d, v[i].pred, v[i].pred_len);
    d += v[i].pred_len;
    memcpy(d, v[i].model, v[i].model_len);
    d += v[i].model_len;
    memcpy(d, v[i].feat, v[i].feat_len);
    d += v[i].feat_len;
  }
  return len;
}

long plog_rec_decode(struct pbuf_row **views, size_t *cap, const void *data,
                     size_t len)
{
  const char *s = data, *end = s + len;
  uint32_t magic, n;
  if (len < 8)
    return -1;
  memcpy(&magic, s, 4);
  memcpy(&n, s + 4, 4);
  s += 8;
  if (magic != PLOG_REC_MAGIC || n > len / PLOG_REC_ROW_HDR)
    return -1;
  if (VEC_RESERVE(*views, *cap, n))
    return -1;
  for (uint32_t i = 0; i < n; i++) {
    struct pbuf_row *v = &(*views)[i];
    uint64_t seq, cu, conf;
    uint32_t el, mv, fl;
    uint16_t l16[3];
    if ((size_t)(end - s) < PLOG_REC_ROW_HDR)
      return -1;
    memcpy(&seq, s, 8);
    memcpy(&cu, s + 8, 8);
    memcpy(&conf, s + 16, 8);
    memcpy(&el, s + 24, 4);
    memcpy(&mv, s + 28, 4);
    memcpy(l16, s + 32, 6);
    memcpy(&fl, s + 40, 4);
    s += PLOG_REC_ROW_HDR;
    size_t need = (size_t)l16[0] + l16[1] + l16[2] + fl;
    if ((size_t)(end - s) < need)
      return -1;
    v->seq = seq;
    v->created_us = (int64_t)cu;
    memcpy(&v->conf, &conf, 8);
    v->elapsed_ms = (int32_t)el;
    v->model_version = (int32_t)mv;
    v->cid = s;
    v->cid_len = l16[0];
    v->pred = s + l16[0];
    v->pred_len = l16[1];
    v->model = v->pred + l16[1];
    v->model_len = l16[2];
    v->feat = v->model + l16[2];
    v->feat_len = fl;
    s += need;
  }
  return s == end ? (long)n : -1;
}

int plog_model_split(const char *m, size_t len, size_t *name_len,
                     int *version, double *conf, const char **pred,
                     size_t *pred_len)
{
  const char *end = m + len, *s1 = memchr(m, PLOG_SHADOW_SEP, len);
  char num[48];
  *name_len = s1 ? (size_t)(s1 - m) : len;
  if (!s1)
    return 0;
  const char *s2 = memchr(s1 + 1, PLOG_SHADOW_SEP, (size_t)(end - s1 - 1));
  const char *s3 = s2 ? memchr(s2 + 1, PLOG_SHADOW_SEP,
                               (size_t)(end - s2 - 1))
                      : NULL;
  if (!s3 || s2 - s1 - 1 >= (long)sizeof(num) ||
      s3 - s2 - 1 >= (long)sizeof(num))
    return 0;
  char *ep;
  memcpy(num, s1 + 1, (size_t)(s2 - s1 - 1));
  num[s2 - s1 - 1] = 0;
  long v = strtol(num, &ep, 10);
  if (*ep || ep == num || v <= 0 || v > 1000000000)
    return 0;
  memcpy(num, s2 + 1, (size_t)(s3 - s2 - 1));
  num[s3 - s2 - 1] = 0;
  *conf = strtod(num, &ep);
  if (*ep || ep == num)
    return 0;
  *version = (int)v;
  *pred = s3 + 1;
  *pred_len = (size_t)(end - s3 - 1);
  return 1;
}

/* ---- a row as the buffer and the table take it -------------------------- */

/* Length of s cut to at most max characters at a UTF-8 boundary. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
  size_t chars = 0;
  for (size_t i = 0; i < len; i++) {
    if (((unsigned char)s[i] & 0xC0) != 0x80) {
      if (chars == max)
        return i;
      chars++;
    }
  }
  return len;
}

/* The row as it goes into the buffer: strings cut to their columns; a
 * shadow prediction is appended to the model text (plog_int.h), built
 * in mt (PLOG_MODEL_TEXT_MAX bytes, the caller's). */
void plog_row_view(const struct plog_row *r, struct pbuf_row *w, char *mt)
{
  const char *cid = r->customer_id ? r->customer_id : "";
  size_t cl = r->customer_id ? r->customer_id_len : 0;
  const char *pred = r->prediction ? r->prediction : "";
  const char *model = r->model ? r->model : "";
  size_t ml = strlen(model);
  w->seq = 0;
  w->created_us = r->created_us;
  w->conf = isfinite(r->confidence) ? r->confidence : 0;
  w->elapsed_ms = r->elapsed_ms < 0 ? 0 : r->elapsed_ms;
  w->model_version = r->model_version;
  w->cid = cid;
  w->cid_len = utf8_cut(cid, cl, PLOG_CUSTOMER_ID_MAX);
  w->pred = pred;
  w->pred_len = utf8_cut(pred, strlen(pred), PLOG_PREDICTION_MAX);
  w->model = model;
  w->model_len = ml > PLOG_MODEL_NAME_MAX ? PLOG_MODEL_NAME_MAX : ml;
  if (r->shadow_version > 0) {
    const char *sp = r->shadow_prediction ? r->shadow_prediction : "";
    size_t pl = utf8_cut(sp, strlen(sp), PLOG_PREDICTION_MAX);
    int n = snprintf(mt, PLOG_MODEL_TEXT_MAX, "%.*s%c%d%c%.17g%c%.*s",
                     (int)w->model_len, model, PLOG_SHADOW_SEP,
                     r->shadow_version, PLOG_SHADOW_SEP,
                     r->shadow_confidence, PLOG_SHADOW_SEP, (int)pl, sp);
    if (n > 0 && n < PLOG_MODEL_TEXT_MAX) {
      w->model = mt;
      w->model_len = (size_t)n;
    }
  }
  w->feat = r->features;
  w->feat_len = r->features_len;
}

size_t plog_view_size(const struct pbuf_row *w)
{
  return pbuf_row_size(w->cid_len, w->pred_len, w->model_len, w->feat_len);
}

void plog_fmt_ts(char *out, int64_t us)
{
  /* rows of one flush mostly share their second: format it once */
  static _Thread_local time_t last = (time_t)-1;
  static _Thread_local char last_txt[24];
  struct tm tm;
  time_t s = (time_t)(us / 1000000);
  if (s == last) {
    memcpy(out, last_txt, sizeof(last_txt));
    return;
  }
  gmtime_r(&s, &tm);
  if (strftime(out, 24, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    snprintf(out, 24, "1970-01-01 00:00:01");
  memcpy(last_txt, out, sizeof(last_txt));
  last = s;
}

#ifdef __SSE2__
/* The compaction's block steps (below).  block_copy keeps the 16 bytes of
 * x in blk with 16 zero bytes after them: a run loads 16 bytes from
 * blk + k, and defined bytes past the block (they land only in dst's
 * slack) keep MSan and valgrind quiet. */
static inline void block_copy(char *blk, __m128i x)
{
  _mm_store_si128((__m128i *)(void *)blk, x);
  _mm_store_si128((__m128i *)(void *)(blk + 16), _mm_setzero_si128());
}

/* the 16 bytes from run to out (a run's bytes, then slack) */
static inline void run_store(char *out, const char *run)
{
  _mm_storeu_si128((__m128i *)(void *)out,
                   _mm_loadu_si128((const __m128i *)(const void *)run));
}

/* the block's bytes from k on stored at dst + o; the new o */
static inline size_t block_rest(char *dst, size_t o, const char *blk,
                                unsigned k)
{
  if (k >= 16)
    return o;
  run_store(dst + o, blk + k);
  return o + 16 - k;
}
#endif

size_t plog_json_compact(char *dst, const char *src, size_t len)
{
  size_t o = 0, i = 0;
  int in_str = 0, esc = 0; /* esc: the next byte is taken whole */
#ifdef __SSE2__
  /* 16 bytes at a time: a mask of the bytes that matter (blanks, quotes,
   * backslashes), walked bit by bit, plain runs stored 16 bytes at once
   * (dst has PLOG_COMPACT_SLACK bytes beyond len for that).  The byte
   * loop alone took about 8k instructions per row in the flusher (issue
   * 16, callgrind); the rule is the byte loop's below. */
  const __m128i c_sp = _mm_set1_epi8(' '), c_nl = _mm_set1_epi8('\n');
  const __m128i c_tb = _mm_set1_epi8('\t'), c_cr = _mm_set1_epi8('\r');
  const __m128i c_qt = _mm_set1_epi8('"'), c_bs = _mm_set1_epi8('\\');
  _Alignas(16) char blk[32];
  for (; len - i >= 16; i += 16) {
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
    unsigned blank = (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, c_sp),
                                  _mm_cmpeq_epi8(x, c_nl)),
                     _mm_or_si128(_mm_cmpeq_epi8(x, c_tb),
                                  _mm_cmpeq_epi8(x, c_cr))));
    unsigned quote = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, c_qt));
    unsigned bsl = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, c_bs));
    if (!bsl && !esc) {
      /* No escape in the block (the usual case): a byte is inside a
       * string when an odd number of quotes precede it in the block,
       * xor the state carried in; only the blanks outside go, walked
       * bit by bit (about one per 16 bytes in the course's items),
       * quotes need no stop of their own. */
      unsigned q = quote;
      q ^= q << 1;
      q ^= q << 2;
      q ^= q << 4;
      q ^= q << 8;
      unsigned drop = blank & ~(q ^ (in_str ? 0xffffu : 0u)) & 0xffffu;
      in_str ^= (int)((q >> 15) & 1u);
      _mm_storeu_si128((__m128i *)(void *)(dst + o), x);
      if (!drop) {
        o += 16;
        continue;
      }
      block_copy(blk, x);
      unsigned k = 0;
      while (drop) {
        unsigned p = (unsigned)__builtin_ctz(drop);
        drop &= drop - 1;
        if (k)
          run_store(dst + o, blk + k);
        o += p - k;
        k = p + 1;
      }
      o = block_rest(dst, o, blk, k);
      continue;
    }
    unsigned sp = blank | quote | bsl;
    if (esc) { /* byte 0 follows a backslash: plain */
      sp &= ~1u;
      esc = 0;
    }
    _mm_storeu_si128((__m128i *)(void *)(dst + o), x);
    if (!sp) {
      o += 16;
      continue;
    }
    block_copy(blk, x);
    unsigned k = 0; /* block bytes before k are done */
    while (sp) {
      unsigned p = (unsigned)__builtin_ctz(sp);
      sp &= sp - 1;
      /* the plain run [k, p): already at dst + o when k == 0 */
      if (k)
        run_store(dst + o, blk + k);
      o += p - k;
      char ch = blk[p];
      k = p + 1;
      if (!in_str) {
        if ((blank >> p) & 1)
          continue;
        dst[o++] = ch;
        in_str = ch == '"';
        continue;
      }
      dst[o++] = ch;
      if (ch == '\\') {
        if (p + 1 < 16) {
          dst[o++] = blk[p + 1];
          sp &= ~(1u << (p + 1));
          k = p + 2;
        } else {
          esc = 1;
        }
      } else if (ch == '"') {
        in_str = 0;
      }
    }
    o = block_rest(dst, o, blk, k);
  }
#endif
  for (; i < len; i++) {
    char ch = src[i];
    if (esc) {
      dst[o++] = ch;
      esc = 0;
    } else if (!in_str) {
      if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r')
        continue;
      dst[o++] = ch;
      in_str = ch == '"';
    } else {
      /* a string: up to its closing quote, escapes taken whole */
      dst[o++] = ch;
      if (ch == '\\')
        esc = 1;
      else if (ch == '"')
        in_str = 0;
    }
  }
  return o;
}
