/* plog_rec.c - the prediction log's spool record format (see
 * plog_int.h): a batch of rows as one spool record and back.
 *
 * Apart from plog.c because it is a format, not a writer: it has no
 * state, and the tests check a round trip and every way a record can be
 * cut short without a database or a spool.  Fields are copied with
 * memcpy: a record's offsets are not aligned for the wider types.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
