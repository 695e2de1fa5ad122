/* prep.c - preprocessing fitted on the training split and replayed at
 * serving time (see prep.h for the transform and the output layout).
 *
 * Why this exists: the course fitted sklearn's RobustScaler per column and
 * pickled it with joblib; serving had to load Python.  Here the fitted
 * state is a small JSON file saved next to the model, and one piece of C
 * code applies it both to the training matrix and to each request, so the
 * two can never drift apart.
 *
 * Exactness: the robust scaler reproduces numpy 1.24's nanmedian and
 * nanpercentile(method="linear") bit for bit, including numpy's two-sided
 * lerp, so a model trained here and one trained on sklearn's output see the
 * same numbers.  Doubles are saved with 17 significant digits so a reload
 * gives the same bits.
 *
 * The transforms never allocate: vocabularies are sorted arrays searched
 * with bsearch, text is tokenised in place with a delimiter byte table.
 */
#include "mlopsd/prep.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mlopsd/fsx.h"
#include "mlopsd/hash.h"


#define PREP_FORMAT "mlopsd.preprocess"
#define PREP_FORMAT_VERSION 1
#define PREP_UNKNOWN "#unknown"

struct prep_in {
  char *name;
  enum spec_kind kind;
  enum spec_scaling scaling;
  double center, scale; /* numeric: out = (x - center) / scale */
  char **vocab;         /* categorical/text: sorted by bytes, unique */
  size_t n_vocab;
  char *delims; /* text */
  unsigned char delim[256];
  size_t offset; /* first output column */
  size_t width;  /* 1 or n_vocab + 1 */
};

struct prep {
  size_t n_in;
  struct prep_in *in;
  size_t n_out;
  char **out_names;
  size_t fit_rows;
};

/* ---- lifetime and accessors ------------------------------------------ */

void prep_destroy(struct prep *p)
{
  if (!p)
    return;
  for (size_t i = 0; i < p->n_in; i++) {
    struct prep_in *x = &p->in[i];
    free(x->name);
    for (size_t j = 0; j < x->n_vocab; j++)
      free(x->vocab[j]);
    free(x->vocab);
    free(x->delims);
  }
  free(p->in);
  if (p->out_names)
    for (size_t j = 0; j < p->n_out; j++)
      free(p->out_names[j]);
  free(p->out_names);
  free(p);
}

size_t prep_n_inputs(const struct prep *p)
{
  return p->n_in;
}

const char *prep_input_name(const struct prep *p, size_t i)
{
  return i < p->n_in ? p->in[i].name : NULL;
}

enum spec_kind prep_input_kind(const struct prep *p, size_t i)
{
  return i < p->n_in ? p->in[i].kind : SPEC_NUMERIC;
}

size_t prep_input_offset(const struct prep *p, size_t i)
{
  return i < p->n_in ? p->in[i].offset : p->n_out;
}

size_t prep_n_outputs(const struct prep *p)
{
  return p->n_out;
}

const char *prep_output_name(const struct prep *p, size_t j)
{
  return j < p->n_out ? p->out_names[j] : NULL;
}

int prep_numeric_params(const struct prep *p, size_t i, double *center,
                        double *scale)
{
  if (i >= p->n_in || p->in[i].kind != SPEC_NUMERIC)
    return -1;
  *center = p->in[i].center;
  *scale = p->in[i].scale;
  return 0;
}

static void set_delims(struct prep_in *x)
{
  memset(x->delim, 0, sizeof(x->delim));
  for (const char *c = x->delims; c && *c; c++)
    x->delim[(unsigned char)*c] = 1;
}

/* Lay out the output columns and name them; called after fit and load. */
static enum err_code build_outputs(struct prep *p, struct err *e)
{
  size_t n = 0;
  for (size_t i = 0; i < p->n_in; i++) {
    struct prep_in *x = &p->in[i];
    x->offset = n;
    x->width = x->kind == SPEC_NUMERIC ? 1 : x->n_vocab + 1;
    n += x->width;
  }
  p->n_out = n;
  p->out_names = calloc(n ? n : 1, sizeof(*p->out_names));
  if (!p->out_names)
    return err_set(e, ERR_NOMEM, "preprocess: out of memory");
  for (size_t i = 0; i < p->n_in; i++) {
    struct prep_in *x = &p->in[i];
    char **o = p->out_names + x->offset;
    if (x->kind == SPEC_NUMERIC) {
      o[0] = strdup(x->name);
      if (!o[0])
        return err_set(e, ERR_NOMEM, "preprocess: out of memory");
      continue;
    }
    char sep = x->kind == SPEC_CATEGORICAL ? '=' : ':';
    for (size_t j = 0; j <= x->n_vocab; j++) {
      const char *v = j < x->n_vocab ? x->vocab[j] : NULL;
      size_t len = strlen(x->name) + (v ? strlen(v) + 2
                                        : sizeof(PREP_UNKNOWN));
      if (!(o[j] = malloc(len)))
        return err_set(e, ERR_NOMEM, "preprocess: out of memory");
      if (v)
        snprintf(o[j], len, "%s%c%s", x->name, sep, v);
      else
        snprintf(o[j], len, "%s%s", x->name, PREP_UNKNOWN);
    }
  }
  return ERR_OK;
}

/* ---- numpy-exact statistics ------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* numpy _lerp: a + (b-a)*t, or b - (b-a)*(1-t) when t >= 0.5 */
static double np_lerp(double a, double b, double t)
{
  double d = b - a;
  return t >= 0.5 ? b - d * (1 - t) : a + d * t;
}

/* numpy.percentile(sorted a, q, method="linear") for q in [0, 100]. */
static double np_percentile(const double *a, size_t n, double q)
{
  double vi = (double)(n - 1) * (q / 100.0);
  if (vi >= (double)(n - 1))
    return a[n - 1];
  if (vi <= 0)
    return a[0];
  double lo = floor(vi);
  size_t i = (size_t)lo;
  return np_lerp(a[i], a[i + 1], vi - lo);
}

/* numpy.median of sorted a: the middle value, or the mean of the two. */
static double np_median(const double *a, size_t n)
{
  if (n % 2)
    return a[n / 2];
  return (a[n / 2 - 1] + a[n / 2]) / 2.0;
}

static enum err_code fit_numeric(struct prep_in *x, const double *col,
                                 const size_t *idx, size_t n, double *tmp)
{
  size_t m = 0;
  for (size_t r = 0; r < n; r++) {
    double v = col[idx ? idx[r] : r];
    if (!isnan(v))
      tmp[m++] = v;
  }
  x->center = 0;
  x->scale = 1;
  if (!m || x->scaling == SPEC_SCALE_NONE)
    return ERR_OK; /* all missing: pass through unchanged */
  if (x->scaling == SPEC_SCALE_ROBUST) {
    qsort(tmp, m, sizeof(*tmp), cmp_double);
    x->center = np_median(tmp, m);
    double iqr = np_percentile(tmp, m, 75) - np_percentile(tmp, m, 25);
    /* sklearn _handle_zeros_in_scale */
    x->scale = iqr < 10 * DBL_EPSILON ? 1.0 : iqr;
  } else {
    double sum = 0;
    for (size_t i = 0; i < m; i++)
      sum += tmp[i];
    double mean = sum / (double)m, ss = 0;
    for (size_t i = 0; i < m; i++)
      ss += (tmp[i] - mean) * (tmp[i] - mean);
    double var = ss / (double)m;
    /* sklearn _is_constant_feature */
    double ub = (double)m * DBL_EPSILON * var +
                ((double)m * mean * DBL_EPSILON) * ((double)m * mean *
                                                    DBL_EPSILON);
    x->center = mean;
    x->scale = var <= ub ? 1.0 : sqrt(var);
  }
  if (!isfinite(x->center) || !isfinite(x->scale)) {
    /* sums overflowed: keep the feature usable rather than NaN it out */
    x->center = 0;
    x->scale = 1;
  }
  return ERR_OK;
}

/* ---- vocabulary counting --------------------------------------------- */

struct vent {
  const char *p; /* borrowed from the input */
  size_t len;
  size_t count;  /* training rows containing it */
  size_t last;   /* last row counted + 1 (0 = none) */
};

struct vtab {
  struct vent *t;
  size_t cap, n;
};

static int vtab_grow(struct vtab *v)
{
  size_t nc = v->cap ? v->cap * 2 : 64;
  struct vent *nt = calloc(nc, sizeof(*nt));
  if (!nt)
    return -1;
  for (size_t i = 0; i < v->cap; i++) {
    if (!v->t[i].p)
      continue;
    size_t h = (size_t)hash_fnv1a(v->t[i].p, v->t[i].len) & (nc - 1);
    while (nt[h].p)
      h = (h + 1) & (nc - 1);
    nt[h] = v->t[i];
  }
  free(v->t);
  v->t = nt;
  v->cap = nc;
  return 0;
}

/* Count (p, len) once for row (1-based). */
static int vtab_add(struct vtab *v, const char *p, size_t len, size_t row)
{
  if ((v->n + 1) * 2 > v->cap && vtab_grow(v))
    return -1;
  size_t h = (size_t)hash_fnv1a(p, len) & (v->cap - 1);
  while (v->t[h].p) {
    struct vent *x = &v->t[h];
    if (x->len == len && !memcmp(x->p, p, len)) {
      if (x->last != row) {
        x->count++;
        x->last = row;
      }
      return 0;
    }
    h = (h + 1) & (v->cap - 1);
  }
  v->t[h] = (struct vent){.p = p, .len = len, .count = 1, .last = row};
  v->n++;
  return 0;
}

/* byte order of (p, len) strings; a prefix sorts first (as strcmp) */
static int bytes_cmp(const char *a, size_t la, const char *b, size_t lb)
{
  int c = memcmp(a, b, la < lb ? la : lb);
  if (c)
    return c;
  return (la > lb) - (la < lb);
}

static int vent_by_count(const void *a, const void *b)
{
  const struct vent *x = a, *y = b;
  if (x->count != y->count)
    return x->count > y->count ? -1 : 1;
  return bytes_cmp(x->p, x->len, y->p, y->len);
}

static int vent_by_bytes(const void *a, const void *b)
{
  const struct vent *x = a, *y = b;
  return bytes_cmp(x->p, x->len, y->p, y->len);
}

/* Turn the counts into x->vocab (sorted copies). */
static enum err_code vtab_finish(struct vtab *v, struct prep_in *x,
                                 size_t min_count, size_t max_vocab,
                                 struct err *e)
{
  size_t m = 0;
  for (size_t i = 0; i < v->cap; i++)
    if (v->t[i].p && v->t[i].count >= min_count)
      v->t[m++] = v->t[i]; /* compacts in place: m <= i */
  if (m > max_vocab) {
    qsort(v->t, m, sizeof(*v->t), vent_by_count);
    m = max_vocab;
  }
  if (m)
    qsort(v->t, m, sizeof(*v->t), vent_by_bytes);
  x->vocab = calloc(m ? m : 1, sizeof(*x->vocab));
  if (!x->vocab)
    return err_set(e, ERR_NOMEM, "preprocess: out of memory");
  for (size_t i = 0; i < m; i++) {
    if (!(x->vocab[i] = strndup(v->t[i].p, v->t[i].len)))
      return err_set(e, ERR_NOMEM, "preprocess: out of memory");
    x->n_vocab = i + 1;
  }
  return ERR_OK;
}

/* Runs body with (tok, len) bound to every non-empty token of s; a break
 * in body leaves the token loop. */
#define FOR_EACH_TOKEN(x, s, tok, len, body)                                 \
  do {                                                                        \
    const char *p_ = (s);                                                     \
    while (*p_) {                                                             \
      while (*p_ && (x)->delim[(unsigned char)*p_])                           \
        p_++;                                                                 \
      const char *tok = p_;                                                   \
      while (*p_ && !(x)->delim[(unsigned char)*p_])                          \
        p_++;                                                                 \
      size_t len = (size_t)(p_ - tok);                                        \
      if (len) {                                                              \
        body                                                                  \
      }                                                                       \
    }                                                                         \
  } while (0)

static enum err_code fit_vocab(struct prep_in *x, const struct spec_feature *f,
                               const char *const *col, const size_t *idx,
                               size_t n, struct err *e)
{
  struct vtab v = {0};
  enum err_code rc = ERR_OK;
  for (size_t r = 0; r < n && !rc; r++) {
    const char *s = col[idx ? idx[r] : r];
    if (!s)
      continue;
    if (x->kind == SPEC_CATEGORICAL) {
      if (vtab_add(&v, s, strlen(s), r + 1))
        rc = err_set(e, ERR_NOMEM, "preprocess: out of memory");
      continue;
    }
    FOR_EACH_TOKEN(x, s, tok, len, {
      if (vtab_add(&v, tok, len, r + 1)) {
        rc = err_set(e, ERR_NOMEM, "preprocess: out of memory");
        break;
      }
    });
  }
  if (!rc)
    rc = vtab_finish(&v, x, f->min_count ? f->min_count : 1,
                     f->max_vocab ? f->max_vocab : 1000, e);
  free(v.t);
  return rc;
}

enum err_code prep_fit(const struct spec *spec, const struct prep_input *in,
                       const size_t *idx, size_t n, struct prep **out,
                       struct err *e)
{
  *out = NULL;
  if (!spec || !in || !n)
    return err_set(e, ERR_INVAL, "preprocess: nothing to fit (0 rows)");
  if (in->n_cols != spec->n_features || !in->cols)
    return err_set(e, ERR_INVAL,
                   "preprocess: input has %zu columns, spec %s has %zu "
                   "features", in->n_cols, spec->name, spec->n_features);
  for (size_t r = 0; r < n; r++)
    if ((idx ? idx[r] : r) >= in->n_rows)
      return err_set(e, ERR_INVAL, "preprocess: row index %zu out of range "
                     "(%zu rows)", idx ? idx[r] : r, in->n_rows);
  for (size_t i = 0; i < spec->n_features; i++) {
    int num = spec->features[i].kind == SPEC_NUMERIC;
    if (num ? !in->cols[i].num : !in->cols[i].str)
      return err_set(e, ERR_INVAL, "preprocess: column %zu (%s) has no %s "
                     "array", i, spec->features[i].name,
                     num ? "numeric" : "string");
  }
  struct prep *p = calloc(1, sizeof(*p));
  double *tmp = NULL;
  enum err_code rc = ERR_OK;
  if (!p || !(p->in = calloc(spec->n_features, sizeof(*p->in)))) {
    free(p);
    return err_set(e, ERR_NOMEM, "preprocess: out of memory");
  }
  p->fit_rows = n;
  for (size_t i = 0; i < spec->n_features && !rc; i++) {
    const struct spec_feature *f = &spec->features[i];
    struct prep_in *x = &p->in[i];
    p->n_in = i + 1;
    x->kind = f->kind;
    x->scaling = f->scaling;
    if (!(x->name = strdup(f->name)) ||
        (f->kind == SPEC_TEXT && !(x->delims = strdup(f->delimiters)))) {
      rc = err_set(e, ERR_NOMEM, "preprocess: out of memory");
      break;
    }
    set_delims(x);
    if (f->kind == SPEC_NUMERIC) {
      if (!tmp && !(tmp = malloc(n * sizeof(*tmp)))) {
        rc = err_set(e, ERR_NOMEM, "preprocess: out of memory");
        break;
      }
      rc = fit_numeric(x, in->cols[i].num, idx, n, tmp);
    } else {
      if (f->kind == SPEC_TEXT && !f->delimiters)
        rc = err_set(e, ERR_INVAL, "preprocess: %s has no delimiters",
                     f->name);
      else
        rc = fit_vocab(x, f, in->cols[i].str, idx, n, e);
    }
  }
  free(tmp);
  if (!rc)
    rc = build_outputs(p, e);
  if (rc) {
    prep_destroy(p);
    return rc;
  }
  *out = p;
  return ERR_OK;
}

/* ---- transform ------------------------------------------------------- */

/* strcmp order between token (p, n) and the NUL-terminated v */
static int tok_cmp(const char *p, size_t n, const char *v)
{
  for (size_t i = 0; i < n; i++) {
    unsigned char a = (unsigned char)p[i], b = (unsigned char)v[i];
    if (!b || a != b)
      return (int)a - (int)b;
  }
  return v[n] ? -1 : 0;
}

static long vocab_find(const struct prep_in *x, const char *p, size_t n)
{
  size_t lo = 0, hi = x->n_vocab;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = tok_cmp(p, n, x->vocab[mid]);
    if (!c)
      return (long)mid;
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

static inline float scale_num(const struct prep_in *x, double v)
{
  if (isnan(v))
    return NAN;
  return (float)((v - x->center) / x->scale);
}

/* Write input x's columns for string value s (NULL = missing) into o. */
static void put_str(const struct prep_in *x, const char *s, float *o)
{
  memset(o, 0, x->width * sizeof(*o));
  if (!s)
    return;
  if (x->kind == SPEC_CATEGORICAL) {
    long j = vocab_find(x, s, strlen(s));
    o[j >= 0 ? (size_t)j : x->n_vocab] = 1.0f;
    return;
  }
  FOR_EACH_TOKEN(x, s, tok, len, {
    long j = vocab_find(x, tok, len);
    o[j >= 0 ? (size_t)j : x->n_vocab] = 1.0f;
  });
}

enum err_code prep_transform_rows(const struct prep *p,
                                  const struct prep_input *in,
                                  const size_t *idx, size_t n, float *out,
                                  struct err *e)
{
  if (!in || in->n_cols != p->n_in || !in->cols)
    return err_set(e, ERR_INVAL, "preprocess: input has %zu columns, "
                   "expected %zu", in ? in->n_cols : 0, p->n_in);
  for (size_t i = 0; i < p->n_in; i++) {
    int num = p->in[i].kind == SPEC_NUMERIC;
    if (num ? !in->cols[i].num : !in->cols[i].str)
      return err_set(e, ERR_INVAL, "preprocess: column %zu (%s) has no %s "
                     "array", i, p->in[i].name, num ? "numeric" : "string");
  }
  for (size_t r = 0; r < n; r++)
    if ((idx ? idx[r] : r) >= in->n_rows)
      return err_set(e, ERR_INVAL, "preprocess: row index %zu out of range "
                     "(%zu rows)", idx ? idx[r] : r, in->n_rows);
  for (size_t r = 0; r < n; r++) {
    size_t row = idx ? idx[r] : r;
    float *o = out + r * p->n_out;
    for (size_t i = 0; i < p->n_in; i++) {
      const struct prep_in *x = &p->in[i];
      if (x->kind == SPEC_NUMERIC)
        o[x->offset] = scale_num(x, in->cols[i].num[row]);
      else
        put_str(x, in->cols[i].str[row], o + x->offset);
    }
  }
  return ERR_OK;
}

enum err_code prep_transform_one(const struct prep *p, prep_lookup_fn lookup,
                                 void *ctx, float *row, struct err *e)
{
  for (size_t i = 0; i < p->n_in; i++) {
    const struct prep_in *x = &p->in[i];
    struct prep_value v = {.kind = PREP_V_MISSING};
    if (lookup(ctx, i, x->name, &v))
      return err_set(e, ERR_INVAL, "%s: rejected", x->name);
    float *o = row + x->offset;
    if (x->kind == SPEC_NUMERIC) {
      if (v.kind == PREP_V_MISSING) {
        o[0] = NAN;
      } else if (v.kind != PREP_V_NUM) {
        return err_set(e, ERR_INVAL, "%s: must be a number", x->name);
      } else if (isinf(v.num)) {
        return err_set(e, ERR_INVAL, "%s: must be a finite number",
                       x->name);
      } else {
        o[0] = scale_num(x, v.num);
      }
      continue;
    }
    if (v.kind == PREP_V_MISSING)
      put_str(x, NULL, o);
    else if (v.kind != PREP_V_STR || !v.str)
      return err_set(e, ERR_INVAL, "%s: must be a string", x->name);
    else
      put_str(x, v.str, o);
  }
  return ERR_OK;
}

static int json_lookup(void *ctx, size_t i, const char *name,
                       struct prep_value *v)
{
  (void)i;
  const cJSON *m = cJSON_GetObjectItemCaseSensitive((const cJSON *)ctx,
                                                    name);
  if (!m || cJSON_IsNull(m))
    v->kind = PREP_V_MISSING;
  else if (cJSON_IsNumber(m)) {
    v->kind = PREP_V_NUM;
    v->num = m->valuedouble;
  } else if (cJSON_IsString(m)) {
    v->kind = PREP_V_STR;
    v->str = m->valuestring;
  } else
    v->kind = PREP_V_OTHER;
  return 0;
}

enum err_code prep_transform_json(const struct prep *p, const cJSON *obj,
                                  float *row, struct err *e)
{
  if (!cJSON_IsObject(obj))
    return err_set(e, ERR_INVAL, "request: must be a JSON object");
  return prep_transform_one(p, json_lookup, (void *)obj, row, e);
}

/* ---- serialisation --------------------------------------------------- */

/* A number as raw JSON text with 17 significant digits: cJSON's own
 * printer may drop the last bits, which would change the transform. */
static cJSON *exact_number(double v)
{
  char b[40];
  snprintf(b, sizeof(b), "%.17g", v);
  return cJSON_CreateRaw(b);
}

static cJSON *strv_json(char *const *v, size_t n)
{
  cJSON *a = cJSON_CreateArray();
  for (size_t i = 0; a && i < n; i++) {
    cJSON *s = cJSON_CreateString(v[i]);
    if (!s) {
      cJSON_Delete(a);
      return NULL;
    }
    cJSON_AddItemToArray(a, s);
  }
  return a;
}

cJSON *prep_to_json(const struct prep *p)
{
  cJSON *root = cJSON_CreateObject();
  cJSON *ins = cJSON_CreateArray();
  int ok = root && ins;
  if (ok) {
    ok = cJSON_AddStringToObject(root, "format", PREP_FORMAT) &&
         cJSON_AddNumberToObject(root, "format_version",
                                 PREP_FORMAT_VERSION) &&
         cJSON_AddNumberToObject(root, "fit_rows", (double)p->fit_rows) &&
         cJSON_AddNumberToObject(root, "n_outputs", (double)p->n_out);
    cJSON_AddItemToObject(root, "inputs", ins);
  } else {
    cJSON_Delete(ins);
  }
  for (size_t i = 0; ok && i < p->n_in; i++) {
    const struct prep_in *x = &p->in[i];
    cJSON *o = cJSON_CreateObject();
    if (!o) {
      ok = 0;
      break;
    }
    cJSON_AddItemToArray(ins, o);
    ok = cJSON_AddStringToObject(o, "name", x->name) &&
         cJSON_AddStringToObject(o, "kind", spec_kind_name(x->kind));
    if (!ok)
      break;
    if (x->kind == SPEC_NUMERIC) {
      cJSON *c = exact_number(x->center), *s = exact_number(x->scale);
      ok = cJSON_AddStringToObject(o, "scaling",
                                   spec_scaling_name(x->scaling)) && c && s;
      if (c)
        cJSON_AddItemToObject(o, "center", c);
      if (s)
        cJSON_AddItemToObject(o, "scale", s);
      continue;
    }
    if (x->kind == SPEC_TEXT)
      ok = cJSON_AddStringToObject(o, "delimiters", x->delims) != NULL;
    cJSON *v = strv_json(x->vocab, x->n_vocab);
    if (!v)
      ok = 0;
    else
      cJSON_AddItemToObject(o, "vocabulary", v);
  }
  cJSON *names = ok ? strv_json(p->out_names, p->n_out) : NULL;
  if (!names) {
    cJSON_Delete(root);
    return NULL;
  }
  cJSON_AddItemToObject(root, "outputs", names);
  return root;
}

cJSON *prep_schema_json(const struct prep *p)
{
  cJSON *root = cJSON_CreateObject();
  cJSON *ins = cJSON_AddArrayToObject(root, "inputs");
  if (!ins) {
    cJSON_Delete(root);
    return NULL;
  }
  for (size_t i = 0; i < p->n_in; i++) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
      cJSON_Delete(root);
      return NULL;
    }
    cJSON_AddItemToArray(ins, o);
    if (!cJSON_AddStringToObject(o, "name", p->in[i].name) ||
        !cJSON_AddStringToObject(o, "kind", spec_kind_name(p->in[i].kind)) ||
        !cJSON_AddNumberToObject(o, "offset", (double)p->in[i].offset) ||
        !cJSON_AddNumberToObject(o, "width", (double)p->in[i].width)) {
      cJSON_Delete(root);
      return NULL;
    }
  }
  cJSON *names = strv_json(p->out_names, p->n_out);
  if (!names) {
    cJSON_Delete(root);
    return NULL;
  }
  cJSON_AddItemToObject(root, "outputs", names);
  return root;
}

/* Written with fsx_write_atomic: temp file, fsync, rename, fsync of
 * the directory, so a reader sees the old file or the whole new one. */
enum err_code prep_save_json(const struct prep *p, const char *path,
                             struct err *e)
{
  cJSON *root = prep_to_json(p);
  char *text = root ? cJSON_Print(root) : NULL;
  cJSON_Delete(root);
  size_t len = text ? strlen(text) : 0;
  char *nl = text ? realloc(text, len + 2) : NULL;
  if (!nl) {
    free(text);
    return err_set(e, ERR_NOMEM, "%s: out of memory", path);
  }
  nl[len++] = '\n';
  nl[len] = '\0';
  enum err_code rc = fsx_write_atomic(path, nl, len, e);
  free(nl);
  return rc;
}

/* -- loading: every field checked, errors name the file and field -- */

struct ld {
  const char *what;
  struct err *e;
};

MLOPSD_PRINTF(3, 4)
static enum err_code ld_fail(struct ld *l, enum err_code code,
                             const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum err_code rc = err_vset_where(l->e, code, l->what, fmt, ap);
  va_end(ap);
  return rc;
}

static int keys_known(const cJSON *o, const char *const *keys,
                      const char **bad)
{
  for (const cJSON *m = o->child; m; m = m->next) {
    size_t i;
    for (i = 0; keys[i]; i++)
      if (m->string && !strcmp(m->string, keys[i]))
        break;
    if (!keys[i]) {
      *bad = m->string ? m->string : "";
      return 0;
    }
  }
  return 1;
}

static enum err_code ld_string(struct ld *l, const cJSON *o, const char *key,
                               const char *ctx, const char **out)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!m)
    return ld_fail(l, ERR_CONFIG, "%s.%s: is missing", ctx, key);
  if (!cJSON_IsString(m) || !m->valuestring)
    return ld_fail(l, ERR_CONFIG, "%s.%s: must be a string", ctx, key);
  *out = m->valuestring;
  return ERR_OK;
}

static enum err_code ld_number(struct ld *l, const cJSON *o, const char *key,
                               const char *ctx, double *out)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!m)
    return ld_fail(l, ERR_CONFIG, "%s.%s: is missing", ctx, key);
  double v = 0;
  int ok = 0;
  if (cJSON_IsNumber(m)) {
    v = m->valuedouble;
    ok = 1;
  } else if (cJSON_IsRaw(m) && m->valuestring) {
    /* a tree from prep_to_json (not yet printed) holds raw number text */
    char *end;
    v = strtod(m->valuestring, &end);
    ok = end != m->valuestring && !*end;
  }
  if (!ok || !isfinite(v))
    return ld_fail(l, ERR_CONFIG, "%s.%s: must be a finite number", ctx,
                   key);
  *out = v;
  return ERR_OK;
}

static int name_ok(const char *s)
{
  /* the spec's feature names: SQL identifiers */
  if (!s || !*s || strlen(s) > 64)
    return 0;
  if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
    return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9') || *s == '_'))
      return 0;
  return 1;
}

static enum err_code ld_input(struct ld *l, const cJSON *o, size_t i,
                              struct prep_in *x)
{
  static const char *const knum[] = {"name", "kind", "scaling", "center",
                                     "scale", NULL};
  static const char *const kcat[] = {"name", "kind", "vocabulary", NULL};
  static const char *const ktxt[] = {"name", "kind", "delimiters",
                                     "vocabulary", NULL};
  char ctx[48];
  snprintf(ctx, sizeof(ctx), "inputs[%zu]", i);
  if (!cJSON_IsObject(o))
    return ld_fail(l, ERR_CONFIG, "%s: must be an object", ctx);
  const char *name, *kind, *bad;
  enum err_code rc;
  if ((rc = ld_string(l, o, "name", ctx, &name)) ||
      (rc = ld_string(l, o, "kind", ctx, &kind)))
    return rc;
  if (!name_ok(name))
    return ld_fail(l, ERR_CONFIG, "%s.name: '%s' is not a valid feature name",
                   ctx, name);
  if (!(x->name = strdup(name)))
    return ld_fail(l, ERR_NOMEM, "out of memory");
  if (!strcmp(kind, "numeric"))
    x->kind = SPEC_NUMERIC;
  else if (!strcmp(kind, "categorical"))
    x->kind = SPEC_CATEGORICAL;
  else if (!strcmp(kind, "text"))
    x->kind = SPEC_TEXT;
  else
    return ld_fail(l, ERR_CONFIG,
                   "%s.kind: must be numeric, categorical or text", ctx);
  const char *const *keys = x->kind == SPEC_NUMERIC       ? knum
                            : x->kind == SPEC_CATEGORICAL ? kcat
                                                          : ktxt;
  if (!keys_known(o, keys, &bad))
    return ld_fail(l, ERR_CONFIG, "%s: unknown key '%s'", ctx, bad);
  if (x->kind == SPEC_NUMERIC) {
    const char *sc;
    if ((rc = ld_string(l, o, "scaling", ctx, &sc)))
      return rc;
    if (!strcmp(sc, "robust"))
      x->scaling = SPEC_SCALE_ROBUST;
    else if (!strcmp(sc, "standard"))
      x->scaling = SPEC_SCALE_STANDARD;
    else if (!strcmp(sc, "none"))
      x->scaling = SPEC_SCALE_NONE;
    else
      return ld_fail(l, ERR_CONFIG,
                     "%s.scaling: must be robust, standard or none", ctx);
    if ((rc = ld_number(l, o, "center", ctx, &x->center)) ||
        (rc = ld_number(l, o, "scale", ctx, &x->scale)))
      return rc;
    if (x->scale == 0)
      return ld_fail(l, ERR_CONFIG, "%s.scale: must not be 0", ctx);
    return ERR_OK;
  }
  if (x->kind == SPEC_TEXT) {
    const char *d;
    if ((rc = ld_string(l, o, "delimiters", ctx, &d)))
      return rc;
    if (!*d)
      return ld_fail(l, ERR_CONFIG, "%s.delimiters: must not be empty", ctx);
    if (!(x->delims = strdup(d)))
      return ld_fail(l, ERR_NOMEM, "out of memory");
    set_delims(x);
  }
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "vocabulary");
  if (!v)
    return ld_fail(l, ERR_CONFIG, "%s.vocabulary: is missing", ctx);
  if (!cJSON_IsArray(v))
    return ld_fail(l, ERR_CONFIG, "%s.vocabulary: must be an array", ctx);
  size_t n = (size_t)cJSON_GetArraySize(v);
  if (!(x->vocab = calloc(n ? n : 1, sizeof(*x->vocab))))
    return ld_fail(l, ERR_NOMEM, "out of memory");
  size_t j = 0;
  for (const cJSON *s = v->child; s; s = s->next, j++) {
    if (!cJSON_IsString(s) || !s->valuestring)
      return ld_fail(l, ERR_CONFIG, "%s.vocabulary[%zu]: must be a string",
                     ctx, j);
    const char *t = s->valuestring;
    if (x->kind == SPEC_TEXT) {
      int has_delim = !*t;
      for (const char *c = t; *c; c++)
        has_delim |= x->delim[(unsigned char)*c];
      if (has_delim)
        return ld_fail(l, ERR_CONFIG, "%s.vocabulary[%zu]: a token must be "
                       "non-empty and free of delimiters", ctx, j);
    }
    if (j && strcmp(x->vocab[j - 1], t) >= 0)
      return ld_fail(l, ERR_CONFIG, "%s.vocabulary[%zu]: not sorted or "
                     "duplicate ('%s' after '%s')", ctx, j, t,
                     x->vocab[j - 1]);
    if (!(x->vocab[j] = strdup(t)))
      return ld_fail(l, ERR_NOMEM, "out of memory");
    x->n_vocab = j + 1;
  }
  return ERR_OK;
}

enum err_code prep_from_json(const cJSON *root, const char *what,
                             struct prep **out, struct err *e)
{
  static const char *const keys[] = {"format", "format_version", "fit_rows",
                                     "n_outputs", "inputs", "outputs", NULL};
  struct ld l = {.what = what ? what : "preprocess.json", .e = e};
  *out = NULL;
  const char *bad, *fmt;
  double ver, nout, rows;
  enum err_code rc;
  if (!cJSON_IsObject(root))
    return ld_fail(&l, ERR_CONFIG, "must be a JSON object");
  if (!keys_known(root, keys, &bad))
    return ld_fail(&l, ERR_CONFIG, "unknown key '%s'", bad);
  if ((rc = ld_string(&l, root, "format", "$", &fmt)))
    return rc;
  if (strcmp(fmt, PREP_FORMAT))
    return ld_fail(&l, ERR_CONFIG, "$.format: '%s' is not '%s'", fmt,
                   PREP_FORMAT);
  if ((rc = ld_number(&l, root, "format_version", "$", &ver)) ||
      (rc = ld_number(&l, root, "fit_rows", "$", &rows)) ||
      (rc = ld_number(&l, root, "n_outputs", "$", &nout)))
    return rc;
  if (ver != PREP_FORMAT_VERSION)
    return ld_fail(&l, ERR_CONFIG, "$.format_version: %g is not supported "
                   "(this build reads %d)", ver, PREP_FORMAT_VERSION);
  if (rows < 0 || rows != floor(rows) || rows > 9007199254740992.0 ||
      nout < 0 || nout != floor(nout) || nout > 1e9)
    return ld_fail(&l, ERR_CONFIG, "$.fit_rows / n_outputs: must be "
                   "non-negative integers");
  const cJSON *ins = cJSON_GetObjectItemCaseSensitive(root, "inputs");
  if (!cJSON_IsArray(ins) || !cJSON_GetArraySize(ins))
    return ld_fail(&l, ERR_CONFIG, "$.inputs: must be a non-empty array");
  size_t n_in = (size_t)cJSON_GetArraySize(ins);
  struct prep *p = calloc(1, sizeof(*p));
  if (!p || !(p->in = calloc(n_in, sizeof(*p->in)))) {
    free(p);
    return ld_fail(&l, ERR_NOMEM, "out of memory");
  }
  p->fit_rows = (size_t)rows;
  size_t i = 0;
  for (const cJSON *o = ins->child; o && !rc; o = o->next, i++) {
    p->n_in = i + 1;
    rc = ld_input(&l, o, i, &p->in[i]);
    for (size_t j = 0; !rc && j < i; j++)
      if (!strcmp(p->in[j].name, p->in[i].name))
        rc = ld_fail(&l, ERR_CONFIG, "inputs[%zu].name: '%s' appears twice",
                     i, p->in[i].name);
  }
  if (!rc)
    rc = build_outputs(p, e);
  if (!rc && (size_t)nout != p->n_out)
    rc = ld_fail(&l, ERR_CONFIG, "$.n_outputs: %zu, but the inputs give %zu",
                 (size_t)nout, p->n_out);
  if (!rc) {
    const cJSON *names = cJSON_GetObjectItemCaseSensitive(root, "outputs");
    if (!cJSON_IsArray(names) ||
        (size_t)cJSON_GetArraySize(names) != p->n_out)
      rc = ld_fail(&l, ERR_CONFIG, "$.outputs: must be an array of %zu "
                   "names", p->n_out);
    size_t j = 0;
    for (const cJSON *s = names ? names->child : NULL; !rc && s;
         s = s->next, j++)
      if (!cJSON_IsString(s) || strcmp(s->valuestring, p->out_names[j]))
        rc = ld_fail(&l, ERR_CONFIG, "$.outputs[%zu]: must be \"%s\"", j,
                     p->out_names[j]);
  }
  if (rc) {
    prep_destroy(p);
    return rc;
  }
  *out = p;
  return ERR_OK;
}

enum err_code prep_load_json(const char *path, struct prep **out,
                             struct err *e)
{
  *out = NULL;
  cJSON *root;
  enum err_code rc = fsx_read_json(path, PREP_FILE_MAX, &root, e);
  if (rc)
    return rc;
  rc = prep_from_json(root, path, out, e);
  cJSON_Delete(root);
  return rc;
}

/* ---- split ----------------------------------------------------------- */

uint64_t prep_splitmix64(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* uniform in [0, bound) without modulo bias (bound >= 1) */
static uint64_t rng_below(uint64_t *st, uint64_t bound)
{
  uint64_t threshold = (0 - bound) % bound; /* 2^64 mod bound */
  for (;;) {
    uint64_t r = prep_splitmix64(st);
    if (r >= threshold)
      return r % bound;
  }
}

static void shuffle(size_t *a, size_t n, uint64_t *st)
{
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)rng_below(st, (uint64_t)i);
    size_t t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

static int cmp_size(const void *a, const void *b)
{
  size_t x = *(const size_t *)a, y = *(const size_t *)b;
  return (x > y) - (x < y);
}

static enum err_code split_check(size_t n, double f, size_t *n_val,
                                 struct err *e)
{
  if (!n)
    return err_set(e, ERR_INVAL, "split: no rows");
  if (!(f > 0 && f < 1))
    return err_set(e, ERR_INVAL, "split: val_fraction %g not in (0, 1)", f);
  /* as sklearn's train_test_split: ceil(test_size * n) */
  double v = ceil(f * (double)n);
  size_t k = v >= (double)n ? n : (size_t)v;
  if (n == 1)
    k = 0;
  else if (k < 1)
    k = 1;
  else if (k > n - 1)
    k = n - 1;
  *n_val = k;
  return ERR_OK;
}

/* perm[0..k) -> val, rest -> train; both sorted */
static enum err_code split_out(size_t *perm, size_t n, size_t k,
                               size_t **train, size_t *n_train, size_t **val,
                               size_t *n_val, struct err *e)
{
  size_t *v = malloc((k ? k : 1) * sizeof(*v));
  size_t *t = malloc((n - k ? n - k : 1) * sizeof(*t));
  if (!v || !t) {
    free(v);
    free(t);
    return err_set(e, ERR_NOMEM, "split: out of memory");
  }
  memcpy(v, perm, k * sizeof(*v));
  memcpy(t, perm + k, (n - k) * sizeof(*t));
  qsort(v, k, sizeof(*v), cmp_size);
  qsort(t, n - k, sizeof(*t), cmp_size);
  *val = v;
  *n_val = k;
  *train = t;
  *n_train = n - k;
  return ERR_OK;
}

enum err_code prep_split(size_t n, double val_fraction, uint64_t seed,
                         size_t **train, size_t *n_train, size_t **val,
                         size_t *n_val, struct err *e)
{
  *train = *val = NULL;
  *n_train = *n_val = 0;
  size_t k;
  enum err_code rc = split_check(n, val_fraction, &k, e);
  if (rc)
    return rc;
  size_t *perm = malloc(n * sizeof(*perm));
  if (!perm)
    return err_set(e, ERR_NOMEM, "split: out of memory");
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  uint64_t st = seed;
  shuffle(perm, n, &st);
  rc = split_out(perm, n, k, train, n_train, val, n_val, e);
  free(perm);
  return rc;
}

enum err_code prep_split_stratified(size_t n, const int *labels,
                                    size_t n_classes, double val_fraction,
                                    uint64_t seed, size_t **train,
                                    size_t *n_train, size_t **val,
                                    size_t *n_val, struct err *e)
{
  *train = *val = NULL;
  *n_train = *n_val = 0;
  size_t k;
  enum err_code rc = split_check(n, val_fraction, &k, e);
  if (rc)
    return rc;
  if (!n_classes || n_classes > (size_t)INT_MAX)
    return err_set(e, ERR_INVAL, "split: bad class count %zu", n_classes);
  for (size_t i = 0; i < n; i++)
    if (labels[i] < 0 || (size_t)labels[i] >= n_classes)
      return err_set(e, ERR_INVAL, "split: row %zu has label %d, not in "
                     "[0, %zu)", i, labels[i], n_classes);
  size_t *cnt = calloc(n_classes, sizeof(*cnt));
  size_t *start = calloc(n_classes + 1, sizeof(*start));
  size_t *take = calloc(n_classes, sizeof(*take));
  double *rem = calloc(n_classes, sizeof(*rem));
  size_t *byc = malloc(n * sizeof(*byc));
  size_t *perm = malloc(n * sizeof(*perm));
  if (!cnt || !start || !take || !rem || !byc || !perm) {
    rc = err_set(e, ERR_NOMEM, "split: out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    cnt[labels[i]]++;
  for (size_t c = 0; c < n_classes; c++)
    start[c + 1] = start[c] + cnt[c];
  {
    size_t *fill = take; /* reuse as a cursor, reset below */
    for (size_t i = 0; i < n; i++) {
      size_t c = (size_t)labels[i];
      byc[start[c] + fill[c]++] = i;
    }
    memset(take, 0, n_classes * sizeof(*take));
  }
  size_t assigned = 0;
  for (size_t c = 0; c < n_classes; c++) {
    double q = (double)cnt[c] * val_fraction;
    take[c] = (size_t)floor(q);
    rem[c] = q - floor(q);
    assigned += take[c];
  }
  /* largest remainder; ties go to the lower class */
  while (assigned < k) {
    size_t best = n_classes;
    for (size_t c = 0; c < n_classes; c++)
      if (take[c] < cnt[c] && (best == n_classes || rem[c] > rem[best]))
        best = c;
    if (best == n_classes)
      break;
    take[best]++;
    rem[best] = -1;
    assigned++;
  }
  while (assigned > k) { /* only when k was clamped down */
    size_t best = n_classes;
    for (size_t c = 0; c < n_classes; c++)
      if (take[c] && (best == n_classes || take[c] > take[best]))
        best = c;
    take[best]--;
    assigned--;
  }
  uint64_t st = seed;
  size_t nv = 0, nt = assigned;
  for (size_t c = 0; c < n_classes; c++) {
    size_t *cl = byc + start[c];
    shuffle(cl, cnt[c], &st);
    for (size_t j = 0; j < cnt[c]; j++) {
      if (j < take[c])
        perm[nv++] = cl[j];
      else
        perm[nt++] = cl[j];
    }
  }
  rc = split_out(perm, n, assigned, train, n_train, val, n_val, e);
out:
  free(cnt);
  free(start);
  free(take);
  free(rem);
  free(byc);
  free(perm);
  return rc;
}
