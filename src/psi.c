/* psi.c - Population Stability Index between a version's training
 * reference (reference.json, written by src/pipeline.c) and the inputs
 * logged in production.
 *
 * The reference gives, per feature, the share of missing rows and the
 * shares of the value bins among present rows; the live side counts the
 * same bins with the same rules (pipeline.c counts a numeric value into
 * "the number of inner edges <= v", a category by its bytes, a text value
 * by every token occurrence), so a stable population scores near 0.
 *
 * Categories and tokens are sorted arrays searched with bsearch;
 * text is tokenised on a delimiter byte table like prep.c, without
 * allocating.
 */
#include "mlopsd/psi.h"

#include "mlopsd/stats.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TOKEN_MAX = 4096 }; /* bytes of one token kept for lookup */

struct psi_feat {
  char *name;
  enum spec_kind kind;
  double *edges; /* numeric: inner edges, nondecreasing */
  size_t n_edges;
  char **values; /* categorical/text: sorted by bytes, unique */
  size_t n_values;
  unsigned char delim[256]; /* text */
  size_t n_vbins;    /* value bins: numeric n_edges + 1; else n_values + 1
                        (the last one "unseen") */
  size_t n_bins;     /* n_vbins + 1: the last one "missing" */
  double *ref;       /* reference shares, n_bins, summing to 1 */
  double missing;    /* reference missing share */
};

struct psi_ref {
  double rows;
  size_t n;
  struct psi_feat *f;
};

struct psi_live {
  const struct psi_ref *ref;
  size_t rows;
  double **counts;   /* per feature, n_vbins value counts */
  double *missing;   /* missing rows per feature */
};

/* ---- arithmetic ---------------------------------------------------------- */

double psi_counts(const double *expected, const double *actual, size_t n,
                  double eps, double *contrib)
{
  double te = 0, ta = 0;
  for (size_t i = 0; i < n; i++) {
    te += expected[i];
    ta += actual[i];
  }
  if (n == 0 || !(te > 0) || !(ta > 0))
    return NAN;
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double e = expected[i] / te, a = actual[i] / ta;
    if (e < eps)
      e = eps;
    if (a < eps)
      a = eps;
    double t = (a - e) * log(a / e);
    if (contrib)
      contrib[i] = t;
    s += t;
  }
  return s;
}

size_t psi_bin(const double *edges, size_t n, double x)
{
  /* upper bound: the first edge > x */
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (edges[mid] <= x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/* ---- lookup and counting ------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Value bin of s: its index in f->values, or the unseen bin. */
static size_t value_bin(const struct psi_feat *f, const char *s)
{
  if (!f->n_values)
    return f->n_values;
  char **hit = bsearch(&s, f->values, f->n_values, sizeof(char *), cmp_str);
  return hit ? (size_t)(hit - f->values) : f->n_values;
}

static void set_delims(struct psi_feat *f, const char *d)
{
  memset(f->delim, 0, sizeof(f->delim));
  for (; d && *d; d++)
    f->delim[(unsigned char)*d] = 1;
}

/* Count every token occurrence of s into counts. */
static void count_tokens(const struct psi_feat *f, const char *s,
                         double *counts)
{
  char tok[TOKEN_MAX + 1];
  const char *p = s;
  for (;;) {
    while (*p && f->delim[(unsigned char)*p])
      p++;
    if (!*p)
      break;
    const char *b = p;
    while (*p && !f->delim[(unsigned char)*p])
      p++;
    size_t len = (size_t)(p - b);
    if (len > TOKEN_MAX)
      len = TOKEN_MAX; /* a cut token matches nothing: unseen */
    memcpy(tok, b, len);
    tok[len] = '\0';
    counts[value_bin(f, tok)] += 1;
  }
}

/* Count one value v (NULL: absent) of feature f; returns 1 if missing. */
static int count_value(const struct psi_feat *f, const cJSON *v,
                       double *counts)
{
  if (!v || cJSON_IsNull(v))
    return 1;
  if (f->kind == SPEC_NUMERIC) {
    if (!cJSON_IsNumber(v) || isnan(v->valuedouble))
      return 1;
    counts[psi_bin(f->edges, f->n_edges, v->valuedouble)] += 1;
  } else if (!cJSON_IsString(v)) {
    counts[f->n_values] += 1; /* unseen */
  } else if (f->kind == SPEC_CATEGORICAL) {
    counts[value_bin(f, v->valuestring)] += 1;
  } else {
    count_tokens(f, v->valuestring, counts);
  }
  return 0;
}

/* ---- reference lifetime -------------------------------------------------- */

static void feat_free(struct psi_feat *f)
{
  free(f->name);
  free(f->edges);
  for (size_t i = 0; i < f->n_values; i++)
    free(f->values[i]);
  free(f->values);
  free(f->ref);
}

void psi_ref_destroy(struct psi_ref *r)
{
  if (!r)
    return;
  for (size_t i = 0; i < r->n; i++)
    feat_free(&r->f[i]);
  free(r->f);
  free(r);
}

size_t psi_ref_n_features(const struct psi_ref *r) { return r->n; }

const char *psi_ref_feature_name(const struct psi_ref *r, size_t i)
{
  return i < r->n ? r->f[i].name : NULL;
}

enum spec_kind psi_ref_feature_kind(const struct psi_ref *r, size_t i)
{
  return i < r->n ? r->f[i].kind : SPEC_NUMERIC;
}

double psi_ref_rows(const struct psi_ref *r) { return r->rows; }

/* ---- reading reference.json ---------------------------------------------- */

#define BAD(...) err_set(e, ERR_PARSE, __VA_ARGS__)

/* A share or count: finite, >= 0. */
static int amount_ok(const cJSON *x)
{
  return cJSON_IsNumber(x) && isfinite(x->valuedouble) && x->valuedouble >= 0;
}

/* Delimiters of text input name in a preprocess.json document. */
static const char *prep_delims(const cJSON *prep, const char *name)
{
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(prep, "inputs");
  const cJSON *x;
  cJSON_ArrayForEach(x, ins)
  {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(x, "name");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(x, "delimiters");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0 &&
        cJSON_IsString(d) && *d->valuestring)
      return d->valuestring;
  }
  return NULL;
}

/* Numeric value bins from edges (min, inner..., max) and shares or
 * counts (one per bin) into f->ref[0..n_vbins-1] (unnormalised). */
static enum err_code parse_numeric(const cJSON *o, const char *what,
                                   struct psi_feat *f, struct err *e)
{
  const cJSON *ed = cJSON_GetObjectItemCaseSensitive(o, "edges");
  const cJSON *sh = cJSON_GetObjectItemCaseSensitive(o, "shares");
  if (!cJSON_IsArray(sh))
    sh = cJSON_GetObjectItemCaseSensitive(o, "counts");
  if (!cJSON_IsArray(ed) || !cJSON_IsArray(sh))
    return BAD("%s: features.%s: edges and shares (or counts) must be "
               "arrays", what, f->name);
  size_t ne = (size_t)cJSON_GetArraySize(ed);
  size_t ns = (size_t)cJSON_GetArraySize(sh);
  if (ne == 1 || (ne == 0 ? ns != 0 : ns != ne - 1))
    return BAD("%s: features.%s: %zu edges need %zu shares, got %zu", what,
               f->name, ne, ne ? ne - 1 : 0, ns);
  /* inner edges: all but the first and the last */
  f->n_edges = ne >= 2 ? ne - 2 : 0;
  f->n_vbins = f->n_edges + 1;
  f->n_bins = f->n_vbins + 1;
  if (!(f->edges = malloc((ne ? ne : 1) * sizeof(double))) ||
      !(f->ref = calloc(f->n_bins, sizeof(double))))
    return err_set(e, ERR_NOMEM, "%s: out of memory", what);
  double prev = -INFINITY;
  size_t i = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, ed)
  {
    if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble) ||
        x->valuedouble < prev)
      return BAD("%s: features.%s.edges[%zu]: must be a finite number, "
                 "not below the one before", what, f->name, i);
    prev = x->valuedouble;
    if (i >= 1 && i + 1 < ne)
      f->edges[i - 1] = x->valuedouble;
    i++;
  }
  i = 0;
  cJSON_ArrayForEach(x, sh)
  {
    if (!amount_ok(x))
      return BAD("%s: features.%s.shares[%zu]: must be a number >= 0", what,
                 f->name, i);
    f->ref[i++] = x->valuedouble;
  }
  return ERR_OK;
}

/* Categories or tokens: an object {value: share}, plus other_share. */
static enum err_code parse_values(const cJSON *o, const cJSON *prep,
                                  const char *what, struct psi_feat *f,
                                  struct err *e)
{
  const char *key = f->kind == SPEC_TEXT ? "tokens" : "categories";
  const cJSON *vo = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsObject(vo))
    return BAD("%s: features.%s.%s: must be an object {value: share}",
               what, f->name, key);
  if (f->kind == SPEC_TEXT) {
    const cJSON *dl = cJSON_GetObjectItemCaseSensitive(o, "delimiters");
    const char *d = cJSON_IsString(dl) && *dl->valuestring
                        ? dl->valuestring
                        : prep_delims(prep, f->name);
    set_delims(f, d ? d : PSI_TEXT_DELIMS);
  }
  size_t nv = (size_t)cJSON_GetArraySize(vo);
  struct vs {
    const char *v;
    double s;
  } *tmp = calloc(nv ? nv : 1, sizeof(*tmp));
  if (!tmp)
    return err_set(e, ERR_NOMEM, "%s: out of memory", what);
  size_t j = 0;
  const cJSON *x;
  cJSON_ArrayForEach(x, vo)
  {
    if (!amount_ok(x)) {
      free(tmp);
      return BAD("%s: features.%s.%s[\"%.60s\"]: must be a number >= 0",
                 what, f->name, key, x->string);
    }
    tmp[j].v = x->string;
    tmp[j].s = x->valuedouble;
    j++;
  }
  /* sort by bytes (the struct starts with the string pointer) */
  qsort(tmp, nv, sizeof(*tmp), cmp_str);
  for (j = 1; j < nv; j++)
    if (strcmp(tmp[j - 1].v, tmp[j].v) == 0) {
      enum err_code rc = BAD("%s: features.%s.%s: duplicate \"%.60s\"",
                             what, f->name, key, tmp[j].v);
      free(tmp);
      return rc;
    }
  f->n_vbins = nv + 1;
  f->n_bins = nv + 2;
  int oom = !(f->values = calloc(nv ? nv : 1, sizeof(char *))) ||
            !(f->ref = calloc(f->n_bins, sizeof(double)));
  for (j = 0; !oom && j < nv; j++) {
    if (!(f->values[j] = strdup(tmp[j].v)))
      oom = 1;
    else {
      f->n_values++;
      f->ref[j] = tmp[j].s;
    }
  }
  free(tmp);
  if (oom)
    return err_set(e, ERR_NOMEM, "%s: out of memory", what);
  const cJSON *ot = cJSON_GetObjectItemCaseSensitive(o, "other_share");
  if (ot && !amount_ok(ot))
    return BAD("%s: features.%s.other_share: must be a number >= 0", what,
               f->name);
  f->ref[nv] = ot ? ot->valuedouble : 0;
  return ERR_OK;
}

static enum err_code parse_feat(const cJSON *o, size_t i, const cJSON *prep,
                                const char *what, struct psi_feat *f,
                                struct err *e)
{
  const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
  const cJSON *kd = cJSON_GetObjectItemCaseSensitive(o, "kind");
  if (!cJSON_IsObject(o) || !cJSON_IsString(nm) || !*nm->valuestring)
    return BAD("%s: features[%zu]: must be an object with a name", what, i);
  if (!(f->name = strdup(nm->valuestring)))
    return err_set(e, ERR_NOMEM, "%s: out of memory", what);
  const char *k = cJSON_IsString(kd) ? kd->valuestring : "";
  if (strcmp(k, "numeric") == 0)
    f->kind = SPEC_NUMERIC;
  else if (strcmp(k, "categorical") == 0)
    f->kind = SPEC_CATEGORICAL;
  else if (strcmp(k, "text") == 0)
    f->kind = SPEC_TEXT;
  else
    return BAD("%s: features.%s.kind: must be numeric, categorical or "
               "text", what, f->name);
  const cJSON *ms = cJSON_GetObjectItemCaseSensitive(o, "missing_share");
  if (ms && (!amount_ok(ms) || ms->valuedouble > 1))
    return BAD("%s: features.%s.missing_share: must be a number in [0, 1]",
               what, f->name);
  f->missing = ms ? ms->valuedouble : 0;
  enum err_code rc = f->kind == SPEC_NUMERIC
                         ? parse_numeric(o, what, f, e)
                         : parse_values(o, prep, what, f, e);
  if (rc != ERR_OK)
    return rc;
  /* shares of present values, scaled by the present share; missing last.
   * No present value at all (all missing in training): nothing to scale. */
  double t = 0;
  for (size_t b = 0; b < f->n_vbins; b++)
    t += f->ref[b];
  for (size_t b = 0; b < f->n_vbins; b++)
    f->ref[b] = t > 0 ? f->ref[b] / t * (1 - f->missing) : 0;
  f->ref[f->n_vbins] = t > 0 ? f->missing : 1;
  return ERR_OK;
}

enum err_code psi_ref_from_json(const cJSON *root, const cJSON *preprocess,
                                const char *what, struct psi_ref **out,
                                struct err *e)
{
  *out = NULL;
  if (!what)
    what = "reference.json";
  if (!cJSON_IsObject(root))
    return BAD("%s: must be a JSON object", what);
  const cJSON *fm = cJSON_GetObjectItemCaseSensitive(root, "format");
  const cJSON *fv = cJSON_GetObjectItemCaseSensitive(root, "format_version");
  if (!cJSON_IsString(fm) || strcmp(fm->valuestring, PSI_FORMAT) != 0)
    return BAD("%s: format: must be \"%s\"", what, PSI_FORMAT);
  if (!cJSON_IsNumber(fv) || fv->valuedouble != PSI_FORMAT_VERSION)
    return BAD("%s: format_version: must be %d", what, PSI_FORMAT_VERSION);
  const cJSON *rows = cJSON_GetObjectItemCaseSensitive(root, "rows");
  const cJSON *fa = cJSON_GetObjectItemCaseSensitive(root, "features");
  if (!amount_ok(rows))
    return BAD("%s: rows: must be a number >= 0", what);
  if (!cJSON_IsArray(fa))
    return BAD("%s: features: must be an array", what);
  struct psi_ref *r = calloc(1, sizeof(*r));
  size_t n = (size_t)cJSON_GetArraySize(fa);
  if (!r || !(r->f = calloc(n ? n : 1, sizeof(*r->f)))) {
    free(r);
    return err_set(e, ERR_NOMEM, "%s: out of memory", what);
  }
  r->rows = rows->valuedouble;
  size_t i = 0;
  const cJSON *o;
  cJSON_ArrayForEach(o, fa)
  {
    r->n = i + 1;
    enum err_code rc = parse_feat(o, i, preprocess, what, &r->f[i], e);
    for (size_t j = 0; rc == ERR_OK && j < i; j++)
      if (strcmp(r->f[j].name, r->f[i].name) == 0)
        rc = BAD("%s: features.%s: listed twice", what, r->f[i].name);
    if (rc != ERR_OK) {
      psi_ref_destroy(r);
      return rc;
    }
    i++;
  }
  *out = r;
  return ERR_OK;
}

/* ---- live side ----------------------------------------------------------- */

void psi_live_destroy(struct psi_live *l)
{
  if (!l)
    return;
  for (size_t i = 0; l->counts && i < l->ref->n; i++)
    free(l->counts[i]);
  free(l->counts);
  free(l->missing);
  free(l);
}

enum err_code psi_live_create(const struct psi_ref *ref,
                              struct psi_live **out, struct err *e)
{
  *out = NULL;
  struct psi_live *l = calloc(1, sizeof(*l));
  if (!l)
    return err_set(e, ERR_NOMEM, "psi: out of memory");
  l->ref = ref;
  size_t n = ref->n ? ref->n : 1;
  int ok = (l->counts = calloc(n, sizeof(double *))) &&
           (l->missing = calloc(n, sizeof(double)));
  for (size_t i = 0; ok && i < ref->n; i++)
    ok = (l->counts[i] = calloc(ref->f[i].n_vbins, sizeof(double))) != NULL;
  if (!ok) {
    psi_live_destroy(l);
    return err_set(e, ERR_NOMEM, "psi: out of memory");
  }
  *out = l;
  return ERR_OK;
}

int psi_live_add(struct psi_live *l, const cJSON *obj)
{
  if (!cJSON_IsObject(obj))
    return -1;
  l->rows++;
  for (size_t i = 0; i < l->ref->n; i++) {
    const struct psi_feat *f = &l->ref->f[i];
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
    l->missing[i] += count_value(f, v, l->counts[i]);
  }
  return 0;
}

size_t psi_live_rows(const struct psi_live *l) { return l->rows; }

static void bin_label(const struct psi_feat *f, size_t b, char *buf,
                      size_t cap)
{
  if (b == f->n_vbins)
    snprintf(buf, cap, "(missing)");
  else if (f->kind != SPEC_NUMERIC)
    snprintf(buf, cap, "%s", b == f->n_values ? "(unseen)" : f->values[b]);
  else if (f->n_edges == 0)
    snprintf(buf, cap, "(all)");
  else if (b == 0)
    snprintf(buf, cap, "<%.6g", f->edges[0]);
  else if (b == f->n_edges)
    snprintf(buf, cap, ">=%.6g", f->edges[b - 1]);
  else
    snprintf(buf, cap, "[%.6g, %.6g)", f->edges[b - 1], f->edges[b]);
}

/* ---- the test ------------------------------------------------------------ */

/* The p-value of feature i (see psi.h, "The test"); ref and live are
 * scratch of n_vbins doubles each; sets out->chi2 and out->df. */
static double feature_test(const struct psi_live *l, size_t i, double *ref,
                           double *live, struct psi_score *out)
{
  const struct psi_feat *f = &l->ref->f[i];
  size_t nv = f->n_vbins;
  double m = l->ref->rows, n = (double)l->rows;
  double np = n - l->missing[i], mp = m * (1 - f->missing);
  double pv = NAN, pm = NAN, tl = 0;
  for (size_t b = 0; b < nv; b++)
    tl += l->counts[i][b];
  out->df = 0;
  out->chi2 = 0;
  if (np > 0 && mp > 0 && tl > 0) {
    /* rows, not tokens: a text value's tokens count as one row between
     * them; bins expected to hold fewer than PSI_MIN_EXPECTED live rows
     * are pooled (the chi-square law needs a few per cell) */
    size_t k = 0;
    double pr = 0, pl = 0;
    for (size_t b = 0; b < nv; b++) {
      double rb = f->ref[b] * m, lb = l->counts[i][b] * np / tl;
      if (rb / mp * np < PSI_MIN_EXPECTED) {
        pr += rb;
        pl += lb;
      } else {
        ref[k] = rb;
        live[k++] = lb;
      }
    }
    ref[k] = pr;
    live[k++] = pl;
    out->chi2 = stats_chi2_2xk(ref, live, k, &out->df);
    pv = out->df > 0 ? stats_chi2_sf(out->chi2, out->df) : 1;
  }
  double ml = l->missing[i];
  if (n > 0 && m > 0 && ml / n > f->missing) {
    /* more missing values than in training: one-sided 2 x 2 test */
    double a[2] = {m * f->missing, mp}, b[2] = {ml, np};
    int df;
    double x = stats_chi2_2xk(a, b, 2, &df);
    pm = df > 0 ? stats_chi2_sf(x, df) / 2 : 1;
  }
  if (!isnan(pv) && !isnan(pm)) /* Bonferroni within the feature */
    return fmin(1, 2 * fmin(pv, pm));
  return !isnan(pv) ? pv : !isnan(pm) ? pm : 1;
}

enum err_code psi_live_score(const struct psi_live *l, size_t i,
                             struct psi_score *out, struct err *e)
{
  memset(out, 0, sizeof(*out));
  if (i >= l->ref->n)
    return err_set(e, ERR_INVAL, "psi: feature index %zu out of range", i);
  const struct psi_feat *f = &l->ref->f[i];
  size_t nv = f->n_vbins;
  double *buf = malloc(3 * (nv + 1) * sizeof(double));
  if (!buf)
    return err_set(e, ERR_NOMEM, "psi: out of memory");
  double *ref = buf, *live = buf + nv + 1, *contrib = buf + 2 * (nv + 1);
  out->name = f->name;
  out->kind = f->kind;
  out->n_bins = f->n_bins;
  out->missing_ref = f->missing;
  out->psi = out->value_psi = out->missing_psi = NAN;
  out->p_value = 1;
  if (l->rows == 0)
    goto done;
  double m = l->missing[i] / (double)l->rows, t = 0;
  out->missing_live = m;
  /* value bins among present values on both sides */
  for (size_t b = 0; b < nv; b++) {
    ref[b] = f->ref[b];
    live[b] = l->counts[i][b];
    t += live[b];
  }
  if (t == 0 && m < 1)
    live[nv - 1] = 1; /* present, yet no token at all: "unseen" */
  out->value_psi = psi_counts(ref, live, nv, PSI_EPS, contrib);
  double me[2] = {f->missing, 1 - f->missing}, ma[2] = {m, 1 - m};
  out->missing_psi = psi_counts(me, ma, 2, PSI_EPS, NULL);
  if (isnan(out->value_psi))
    /* one side has no present value at all: only the shares say it */
    out->psi = out->missing_psi;
  else
    out->psi = out->value_psi + (m > f->missing ? out->missing_psi : 0);
  /* the bin that moved most */
  double best = -INFINITY;
  if (!isnan(out->value_psi)) {
    double tr = 0, tl = 0;
    for (size_t b = 0; b < nv; b++) {
      tr += ref[b];
      tl += live[b];
    }
    for (size_t b = 0; b < nv; b++)
      if (contrib[b] > best) {
        best = contrib[b];
        out->top_ref = ref[b] / tr;
        out->top_live = live[b] / tl;
        bin_label(f, b, out->top_bin, sizeof(out->top_bin));
      }
  }
  if ((m > f->missing || isnan(out->value_psi)) &&
      out->missing_psi > best) {
    best = out->missing_psi;
    out->top_ref = f->missing;
    out->top_live = m;
    bin_label(f, nv, out->top_bin, sizeof(out->top_bin));
  }
  out->top_contrib = best;
  out->p_value = feature_test(l, i, ref, live, out);
done:
  free(buf);
  return ERR_OK;
}

static int add_num_or_null(cJSON *o, const char *k, double v)
{
  return (isnan(v) ? cJSON_AddNullToObject(o, k)
                   : cJSON_AddNumberToObject(o, k, v)) != NULL;
}

enum err_code psi_live_scores_json(const struct psi_live *l, double alpha,
                                   double min_psi, cJSON **out,
                                   struct psi_summary *sum, struct err *e)
{
  *out = NULL;
  memset(sum, 0, sizeof(*sum));
  sum->max_psi = NAN;
  sum->worst = sum->drifted = -1;
  size_t n = l->ref->n;
  struct psi_score *sc = calloc(n ? n : 1, sizeof(*sc));
  double *p = calloc(2 * (n ? n : 1), sizeof(double));
  cJSON *root = cJSON_CreateObject();
  enum err_code rc = ERR_OK;
  if (!sc || !p || !root) {
    rc = err_set(e, ERR_NOMEM, "psi: out of memory");
    goto out;
  }
  double *adj = p + n;
  for (size_t i = 0; i < n; i++) {
    if ((rc = psi_live_score(l, i, &sc[i], e)))
      goto out;
    p[i] = isnan(sc[i].p_value) ? 1 : sc[i].p_value;
  }
  stats_holm(p, n, adj);
  for (size_t i = 0; i < n; i++) {
    const struct psi_score *s = &sc[i];
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddItemToObject(root, s->name, o);
    if (!ok)
      cJSON_Delete(o);
    ok = ok && add_num_or_null(o, "psi", s->psi) &&
         add_num_or_null(o, "value_psi", s->value_psi) &&
         add_num_or_null(o, "missing_psi", s->missing_psi) &&
         cJSON_AddStringToObject(o, "kind", spec_kind_name(s->kind)) &&
         cJSON_AddNumberToObject(o, "missing_ref", s->missing_ref) &&
         cJSON_AddNumberToObject(o, "missing_live", s->missing_live) &&
         cJSON_AddNumberToObject(o, "chi2", s->chi2) &&
         cJSON_AddNumberToObject(o, "df", s->df) &&
         cJSON_AddNumberToObject(o, "p", p[i]) &&
         cJSON_AddNumberToObject(o, "p_holm", adj[i]);
    if (ok && !isnan(s->psi))
      ok = cJSON_AddStringToObject(o, "top_bin", s->top_bin) &&
           cJSON_AddNumberToObject(o, "top_ref", s->top_ref) &&
           cJSON_AddNumberToObject(o, "top_live", s->top_live);
    if (!ok) {
      rc = err_set(e, ERR_NOMEM, "psi: out of memory");
      goto out;
    }
    if (isnan(s->psi))
      continue;
    if (sum->worst < 0 || s->psi > sum->max_psi) {
      sum->max_psi = s->psi;
      sum->worst = (int)i;
    }
    if ((alpha >= 1 || adj[i] < alpha) && s->psi > min_psi) {
      sum->n_drifted++;
      if (sum->drifted < 0 || s->psi > sc[sum->drifted].psi) {
        sum->drifted = (int)i;
        sum->drifted_psi = s->psi;
        sum->drifted_p = adj[i];
      }
    }
  }
  *out = root;
  root = NULL;
out:
  cJSON_Delete(root);
  free(sc);
  free(p);
  return rc;
}
