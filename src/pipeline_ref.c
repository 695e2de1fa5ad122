/* pipeline_ref.c - reference.json, the drift reference of a version (see pipeline.h).
 */
#include "mlopsd/pipeline.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/calib.h"
#include "mlopsd/db.h"
#include "mlopsd/fstore.h"
#include "mlopsd/fsx.h"
#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/registry.h"
#include "mlopsd/trialq.h"
#include "mlopsd/vec.h"


#include "pipeline_int.h"

/* ---- reference.json --------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static int cmp_ptr(const void *a, const void *b)
{
  uintptr_t x = (uintptr_t) * (const char *const *)a;
  uintptr_t y = (uintptr_t) * (const char *const *)b;
  return x < y ? -1 : x > y;
}

/* A counted string (a category or a token). */
struct cnt {
  const char *s;
  size_t len;
  size_t n;
};

static int cmp_cnt_bytes(const void *a, const void *b)
{
  const struct cnt *x = a, *y = b;
  size_t m = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, m);
  if (c)
    return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int cmp_cnt_freq(const void *a, const void *b)
{
  const struct cnt *x = a, *y = b;
  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return cmp_cnt_bytes(a, b);
}

/* Sort by bytes and merge equal strings, summing counts. */
static size_t merge_cnt(struct cnt *c, size_t n)
{
  if (n == 0)
    return 0;
  qsort(c, n, sizeof(*c), cmp_cnt_bytes);
  size_t k = 0;
  for (size_t i = 1; i < n; i++) {
    if (cmp_cnt_bytes(&c[k], &c[i]) == 0)
      c[k].n += c[i].n;
    else
      c[++k] = c[i];
  }
  return k + 1;
}

/* numpy-style linear quantile of sorted a[0..n-1]. */
static double quantile(const double *a, size_t n, double q)
{
  double pos = q * (double)(n - 1);
  size_t lo = (size_t)floor(pos);
  if (lo >= n - 1)
    return a[n - 1];
  double f = pos - (double)lo;
  return a[lo] + (a[lo + 1] - a[lo]) * f;
}

static int ref_numeric(cJSON *o, const double *col, const size_t *idx,
                       size_t n, double *buf)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (!isnan(col[idx[i]]))
      buf[k++] = col[idx[i]];
  pipeline_add_num(o, "missing_share", n ? (double)(n - k) / (double)n : 0);
  cJSON *edges = cJSON_AddArrayToObject(o, "edges");
  cJSON *counts = cJSON_AddArrayToObject(o, "counts");
  cJSON *shares = cJSON_AddArrayToObject(o, "shares");
  if (!edges || !counts || !shares)
    return -1;
  if (k == 0)
    return 0;
  qsort(buf, k, sizeof(double), cmp_double);
  double e[PIPELINE_REF_BINS + 1];
  size_t c[PIPELINE_REF_BINS] = {0};
  for (int b = 0; b <= PIPELINE_REF_BINS; b++)
    e[b] = quantile(buf, k, (double)b / PIPELINE_REF_BINS);
  /* bin = number of inner edges <= v (values sorted: one sweep) */
  size_t b = 0;
  for (size_t i = 0; i < k; i++) {
    while (b + 1 < PIPELINE_REF_BINS && e[b + 1] <= buf[i])
      b++;
    c[b]++;
  }
  for (int j = 0; j <= PIPELINE_REF_BINS; j++)
    cJSON_AddItemToArray(edges, cJSON_CreateNumber(e[j]));
  for (int j = 0; j < PIPELINE_REF_BINS; j++) {
    cJSON_AddItemToArray(counts, cJSON_CreateNumber((double)c[j]));
    cJSON_AddItemToArray(shares,
                         cJSON_CreateNumber((double)c[j] / (double)k));
  }
  return 0;
}

/* Categories (text: tokens) of a string column over rows idx. */
static int ref_strings(cJSON *o, const char *const *col, const size_t *idx,
                       size_t n, const char *delims, const char **pbuf)
{
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (col[idx[i]])
      pbuf[k++] = col[idx[i]];
  pipeline_add_num(o, "missing_share", n ? (double)(n - k) / (double)n : 0);
  /* interned strings: equal values are equal pointers */
  qsort(pbuf, k, sizeof(*pbuf), cmp_ptr);
  size_t nd = 0, cap = 64;
  struct cnt *c = malloc(cap * sizeof(*c));
  if (!c)
    return -1;
  for (size_t i = 0; i < k;) {
    size_t j = i;
    while (j < k && pbuf[j] == pbuf[i])
      j++;
    size_t run = j - i;
    const char *s = pbuf[i];
    if (!delims) {
      if (VEC_PUSH(c, nd, cap, ((struct cnt){s, strlen(s), run})))
        goto oom;
    } else {
      const char *p = s;
      while (*p) {
        p += strspn(p, delims);
        size_t len = strcspn(p, delims);
        if (!len)
          break;
        if (VEC_PUSH(c, nd, cap, ((struct cnt){p, len, run})))
          goto oom;
        p += len;
      }
    }
    i = j;
  }
  nd = merge_cnt(c, nd);
  qsort(c, nd, sizeof(*c), cmp_cnt_freq);
  size_t total = 0, other = 0;
  for (size_t i = 0; i < nd; i++) {
    total += c[i].n;
    if (i >= PIPELINE_REF_MAX_CATS)
      other += c[i].n;
  }
  cJSON *cats = cJSON_AddObjectToObject(o, delims ? "tokens" : "categories");
  if (!cats)
    goto oom;
  for (size_t i = 0; i < nd && i < PIPELINE_REF_MAX_CATS; i++) {
    char kb[512];
    snprintf(kb, sizeof(kb), "%.*s", (int)(c[i].len < 511 ? c[i].len : 511),
             c[i].s);
    cJSON_AddItemToObject(
        cats, kb, cJSON_CreateNumber((double)c[i].n / (double)total));
  }
  pipeline_add_num(o, "other_share", total ? (double)other / (double)total : 0);
  pipeline_add_num(o, "distinct", (double)nd);
  free(c);
  return 0;
oom:
  free(c);
  return -1;
}

cJSON *pipeline_build_reference(const struct spec *sp,
                                const struct fstore_set *s, const size_t *idx,
                                size_t n)
{
  cJSON *root = cJSON_CreateObject();
  double *dbuf = malloc((n ? n : 1) * sizeof(double));
  const char **pbuf = malloc((n ? n : 1) * sizeof(char *));
  if (!root || !dbuf || !pbuf)
    goto fail;
  cJSON_AddStringToObject(root, "format", "mlopsd.reference");
  cJSON_AddNumberToObject(root, "format_version", 1);
  cJSON_AddStringToObject(root, "split", "train");
  cJSON_AddNumberToObject(root, "rows", (double)n);
  cJSON_AddNumberToObject(root, "bins", PIPELINE_REF_BINS);
  cJSON *feats = cJSON_AddArrayToObject(root, "features");
  if (!feats)
    goto fail;
  for (size_t j = 0; j < sp->n_features; j++) {
    const struct spec_feature *f = &sp->features[j];
    cJSON *h = cJSON_CreateObject();
    if (!h || !cJSON_AddItemToArray(feats, h))
      goto fail;
    cJSON_AddStringToObject(h, "name", f->name);
    cJSON_AddStringToObject(h, "kind", spec_kind_name(f->kind));
    if (f->kind == SPEC_TEXT)
      cJSON_AddStringToObject(h, "delimiters", f->delimiters);
    int bad = f->kind == SPEC_NUMERIC
                  ? ref_numeric(h, s->cols[j].num, idx, n, dbuf)
                  : ref_strings(h, s->cols[j].str, idx, n,
                                f->kind == SPEC_TEXT ? f->delimiters : NULL,
                                pbuf);
    if (bad)
      goto fail;
  }
  free(dbuf);
  free(pbuf);
  return root;
fail:
  free(dbuf);
  free(pbuf);
  cJSON_Delete(root);
  return NULL;
}
