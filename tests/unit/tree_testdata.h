/* tree_testdata.h - shared/data/sklearn CSV loading for test_train.c and
 * test_tree.c: deterministic splits and missing values.
 *
 * File format: first line "n_samples,n_features,class names..."; then one
 * row per line: numeric features, integer class last.
 */
#ifndef MLOPSD_TREE_TESTDATA_H
#define MLOPSD_TREE_TESTDATA_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TD_DATA_DIR
#define TD_DATA_DIR "/work/shared/data/sklearn"
#endif

struct td {
  float *x, *y; /* n x nfeat, n */
  size_t n, nfeat;
  int ncls;
  /* split: rows with i % 10 < 3 are validation (deterministic) */
  float *xt, *yt, *xv, *yv;
  size_t nt, nv;
};

static void td_free(struct td *d)
{
  free(d->x);
  free(d->y);
  free(d->xt);
  free(d->yt);
  free(d->xv);
  free(d->yv);
  memset(d, 0, sizeof(*d));
}

static void td_split(struct td *d)
{
  free(d->xt);
  free(d->yt);
  free(d->xv);
  free(d->yv);
  d->xt = malloc(d->n * d->nfeat * sizeof(float));
  d->xv = malloc(d->n * d->nfeat * sizeof(float));
  d->yt = malloc(d->n * sizeof(float));
  d->yv = malloc(d->n * sizeof(float));
  d->nt = d->nv = 0;
  for (size_t i = 0; i < d->n; i++) {
    int val = i % 10 < 3;
    float *xo = val ? d->xv + d->nv * d->nfeat : d->xt + d->nt * d->nfeat;
    memcpy(xo, d->x + i * d->nfeat, d->nfeat * sizeof(float));
    if (val)
      d->yv[d->nv++] = d->y[i];
    else
      d->yt[d->nt++] = d->y[i];
  }
}

/* Load NAME.csv from TD_DATA_DIR and split it; 0 on success. */
static int td_load(const char *name, struct td *d)
{
  memset(d, 0, sizeof(*d));
  char path[512];
  const char *shared = getenv("MLOPSD_SHARED");
  if (shared && *shared)
    snprintf(path, sizeof(path), "%s/data/sklearn/%s", shared, name);
  else
    snprintf(path, sizeof(path), "%s/%s", TD_DATA_DIR, name);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  char line[8192];
  unsigned long n = 0, nf = 0;
  if (!fgets(line, sizeof(line), f) ||
      sscanf(line, "%lu,%lu", &n, &nf) != 2 || !n || !nf) {
    fclose(f);
    return -1;
  }
  d->ncls = 0;
  for (char *p = line; *p; p++)
    d->ncls += *p == ',';
  d->ncls -= 1; /* names after n_samples,n_features */
  d->n = n;
  d->nfeat = nf;
  d->x = malloc(n * nf * sizeof(float));
  d->y = malloc(n * sizeof(float));
  size_t r = 0;
  while (r < n && fgets(line, sizeof(line), f)) {
    char *p = line;
    for (size_t j = 0; j <= nf; j++) {
      float v = strtof(p, &p);
      if (*p == ',')
        p++;
      if (j < nf)
        d->x[r * nf + j] = v;
      else
        d->y[r] = v;
    }
    r++;
  }
  fclose(f);
  if (r != n) {
    td_free(d);
    return -1;
  }
  td_split(d);
  return 0;
}

/* Set about frac of all feature values to NaN (deterministic), re-split. */
static void td_add_nan(struct td *d, double frac, uint64_t seed)
{
  uint64_t s = seed;
  for (size_t i = 0; i < d->n * d->nfeat; i++) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    if ((double)(s >> 11) / 9007199254740992.0 < frac)
      d->x[i] = NAN;
  }
  td_split(d);
}

#endif
