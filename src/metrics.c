/* metrics.c - lock-free counters, gauges and histograms (see metrics.h).
 *
 * Why this shape: the request path updates a handful of series per request
 * (a status counter and a latency histogram), on every worker thread.  A
 * lock there would serialise the workers; a per-update hash lookup of the
 * label set would cost more than the request itself.  So series are
 * resolved once, at start-up, to pointers, and an update is one or two
 * relaxed atomic adds on memory of that series alone.
 *
 * Relaxed ordering is enough: each value is independent, and a scrape that
 * sees a histogram's buckets and sum a few updates apart is harmless (the
 * count is rendered as the sum of the buckets it read, so _count always
 * equals the +Inf bucket).
 *
 * The registry lock protects the family and series lists (appended at
 * registration, read at render) and the callbacks of callback gauges.
 */
#include "mlopsd/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mlopsd/buf.h"

const double metrics_ms_buckets[METRICS_MS_NBUCKETS] = {
    0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000};
const double metrics_s_buckets[METRICS_S_NBUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1};

/* The histogram sum is an integer in units of 1e-6 of the observed unit,
 * so observing is an atomic add rather than a compare-and-swap loop. */
#define HIST_SUM_SCALE 1e6

enum mtype { MT_COUNTER, MT_GAUGE, MT_HIST };

struct family;

struct series {
  struct series *next;
  struct family *fam;
  char *labels; /* rendered body: k="v",k2="v2" ("" for none) */
  unsigned flags;
};

struct metrics_counter {
  struct series s;
  _Atomic uint64_t v;
};

struct metrics_gauge {
  struct series s;
  _Atomic uint64_t bits;  /* the double's bit pattern */
  metrics_gauge_fn fn;    /* registry lock; NULL for a plain gauge */
  void *arg;
  bool is_fn, detached;   /* registry lock */
};

struct metrics_hist {
  struct series s;
  size_t nb;              /* number of finite bounds */
  const double *bounds;   /* the family's */
  _Atomic uint64_t sum;   /* fixed point, HIST_SUM_SCALE */
  _Atomic uint64_t counts[]; /* nb + 1, non-cumulative, last is +Inf */
};

struct family {
  struct family *next;
  char *name;
  char *help;
  enum mtype type;
  double bounds[METRICS_MAX_BUCKETS];
  size_t nb;
  pthread_mutex_t *reg_mu; /* the registry's lock */
  struct series *head, *tail;
};

struct metrics {
  pthread_mutex_t mu;
  struct family *head, *tail;
};

/* ---- names and labels ------------------------------------------------ */

static bool name_ok(const char *s, bool colon)
{
  if (!s || !*s)
    return false;
  for (size_t i = 0; s[i]; i++) {
    char c = s[i];
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
                 || (colon && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

/* Label bodies and the rendering are built in a struct buf (buf.h); out
 * of memory is sticky and checked once at the end. */

/* Label values escape backslash, quote and newline; help text only
 * backslash and newline (the exposition format's rules). */
static void add_escaped(struct buf *b, const char *s, bool quote)
{
  for (; *s; s++) {
    if (*s == '\\')
      buf_add(b, "\\\\", 2);
    else if (*s == '\n')
      buf_add(b, "\\n", 2);
    else if (quote && *s == '"')
      buf_add(b, "\\\"", 2);
    else
      buf_add(b, s, 1);
  }
}

/* Prometheus floats: shortest text that round-trips for the usual values,
 * and the spellings +Inf, -Inf, NaN. */
static void add_double(struct buf *b, double v)
{
  if (isnan(v))
    buf_adds(b, "NaN");
  else if (isinf(v))
    buf_adds(b, v > 0 ? "+Inf" : "-Inf");
  else
    buf_addf(b, "%.15g", v);
}

static enum err_code labels_build(const char *const *labels, char **out,
                                  struct err *e)
{
  struct buf b = BUF_INIT(BUF_NO_MAX);
  buf_add(&b, "", 0); /* no labels: "" */
  for (size_t i = 0; labels && labels[i]; i += 2) {
    const char *k = labels[i], *v = labels[i + 1];
    if (!v) {
      buf_free(&b);
      return err_set(e, ERR_INVAL, "metrics: label %s has no value", k);
    }
    if (!name_ok(k, false) || strcmp(k, "le") == 0 || strncmp(k, "__", 2) == 0) {
      buf_free(&b);
      return err_set(e, ERR_INVAL, "metrics: bad label name '%s'", k);
    }
    if (i > 0)
      buf_add(&b, ",", 1);
    buf_adds(&b, k);
    buf_add(&b, "=\"", 2);
    add_escaped(&b, v, true);
    buf_add(&b, "\"", 1);
  }
  if (buf_error(&b) || !(*out = buf_take(&b, NULL))) {
    buf_free(&b);
    return err_set(e, ERR_NOMEM, "metrics: out of memory for labels");
  }
  return ERR_OK;
}

/* ---- registry -------------------------------------------------------- */

enum err_code metrics_create(struct metrics **out, struct err *e)
{
  *out = NULL;
  struct metrics *m = calloc(1, sizeof(*m));
  if (!m)
    return err_set(e, ERR_NOMEM, "metrics: out of memory");
  pthread_mutex_init(&m->mu, NULL);
  *out = m;
  return ERR_OK;
}

void metrics_destroy(struct metrics *m)
{
  if (!m)
    return;
  struct family *f = m->head;
  while (f) {
    struct family *fn = f->next;
    struct series *s = f->head;
    while (s) {
      struct series *sn = s->next;
      free(s->labels);
      free(s);
      s = sn;
    }
    free(f->name);
    free(f->help);
    free(f);
    f = fn;
  }
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static const char *type_name(enum mtype t)
{
  return t == MT_COUNTER ? "counter" : t == MT_GAUGE ? "gauge" : "histogram";
}

/* Find or make the family and the series; caller holds m->mu.  *found says
 * the series already existed.  size is the allocation size of a new one. */
static enum err_code do_register(struct metrics *m, const char *name,
                                 const char *help, const char *const *labels,
                                 enum mtype type, const double *bounds,
                                 size_t nb, unsigned flags, size_t size,
                                 struct series **out, bool *found,
                                 struct err *e)
{
  *out = NULL;
  *found = false;
  if (!name_ok(name, true))
    return err_set(e, ERR_INVAL, "metrics: bad metric name '%s'",
                   name ? name : "(null)");
  char *lab = NULL;
  enum err_code rc = labels_build(labels, &lab, e);
  if (rc)
    return rc;
  struct family *f;
  for (f = m->head; f; f = f->next)
    if (strcmp(f->name, name) == 0)
      break;
  if (f) {
    if (f->type != type) {
      free(lab);
      return err_set(e, ERR_INVAL, "metrics: %s is a %s, not a %s", name,
                     type_name(f->type), type_name(type));
    }
    if (type == MT_HIST
        && (f->nb != nb || memcmp(f->bounds, bounds, nb * sizeof(double)))) {
      free(lab);
      return err_set(e, ERR_INVAL, "metrics: %s registered with other buckets",
                     name);
    }
    for (struct series *s = f->head; s; s = s->next)
      if (strcmp(s->labels, lab) == 0) {
        free(lab);
        *out = s;
        *found = true;
        return ERR_OK;
      }
  } else {
    f = calloc(1, sizeof(*f));
    if (!f || !(f->name = strdup(name)) || !(f->help = strdup(help ? help : ""))) {
      if (f) {
        free(f->name);
        free(f);
      }
      free(lab);
      return err_set(e, ERR_NOMEM, "metrics: out of memory for %s", name);
    }
    f->type = type;
    f->nb = nb;
    f->reg_mu = &m->mu;
    if (nb)
      memcpy(f->bounds, bounds, nb * sizeof(double));
    if (m->tail)
      m->tail->next = f;
    else
      m->head = f;
    m->tail = f;
  }
  struct series *s = calloc(1, size);
  if (!s) {
    free(lab);
    return err_set(e, ERR_NOMEM, "metrics: out of memory for %s", name);
  }
  s->fam = f;
  s->labels = lab;
  s->flags = flags;
  if (f->tail)
    f->tail->next = s;
  else
    f->head = s;
  f->tail = s;
  *out = s;
  return ERR_OK;
}

enum err_code metrics_counter_new(struct metrics *m, const char *name,
                                  const char *help, const char *const *labels,
                                  unsigned flags, struct metrics_counter **out,
                                  struct err *e)
{
  struct series *s;
  bool found;
  pthread_mutex_lock(&m->mu);
  enum err_code rc = do_register(m, name, help, labels, MT_COUNTER, NULL, 0,
                                 flags, sizeof(struct metrics_counter), &s,
                                 &found, e);
  pthread_mutex_unlock(&m->mu);
  *out = rc ? NULL : (struct metrics_counter *)s;
  return rc;
}

void metrics_counter_add(struct metrics_counter *c, uint64_t n)
{
  atomic_fetch_add_explicit(&c->v, n, memory_order_relaxed);
}

uint64_t metrics_counter_get(const struct metrics_counter *c)
{
  return atomic_load_explicit(&((struct metrics_counter *)c)->v,
                              memory_order_relaxed);
}

static uint64_t dbl_bits(double v)
{
  uint64_t u;
  memcpy(&u, &v, sizeof(u));
  return u;
}

static double bits_dbl(uint64_t u)
{
  double v;
  memcpy(&v, &u, sizeof(v));
  return v;
}

enum err_code metrics_gauge_new(struct metrics *m, const char *name,
                                const char *help, const char *const *labels,
                                unsigned flags, struct metrics_gauge **out,
                                struct err *e)
{
  struct series *s;
  bool found;
  pthread_mutex_lock(&m->mu);
  enum err_code rc = do_register(m, name, help, labels, MT_GAUGE, NULL, 0,
                                 flags, sizeof(struct metrics_gauge), &s,
                                 &found, e);
  if (!rc && found && ((struct metrics_gauge *)s)->is_fn)
    rc = err_set(e, ERR_EXISTS, "metrics: %s{%s} is a callback gauge", name,
                 s->labels);
  pthread_mutex_unlock(&m->mu);
  *out = rc ? NULL : (struct metrics_gauge *)s;
  return rc;
}

enum err_code metrics_gauge_fn_new(struct metrics *m, const char *name,
                                   const char *help, const char *const *labels,
                                   metrics_gauge_fn fn, void *arg,
                                   struct metrics_gauge **out, struct err *e)
{
  struct series *s;
  bool found;
  *out = NULL;
  if (!fn)
    return err_set(e, ERR_INVAL, "metrics: %s: no callback", name);
  pthread_mutex_lock(&m->mu);
  enum err_code rc = do_register(m, name, help, labels, MT_GAUGE, NULL, 0, 0,
                                 sizeof(struct metrics_gauge), &s, &found, e);
  if (!rc && found)
    rc = err_set(e, ERR_EXISTS, "metrics: %s{%s} already registered", name,
                 s->labels);
  if (!rc) {
    struct metrics_gauge *g = (struct metrics_gauge *)s;
    g->fn = fn;
    g->arg = arg;
    g->is_fn = true;
    *out = g;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

/* A callback gauge reaches its registry's lock through its family. */
static pthread_mutex_t *gauge_lock(struct metrics_gauge *g)
{
  return g->s.fam->reg_mu;
}

void metrics_gauge_fn_detach(struct metrics_gauge *g)
{
  if (!g)
    return;
  pthread_mutex_t *mu = gauge_lock(g);
  pthread_mutex_lock(mu);
  g->fn = NULL;
  g->arg = NULL;
  g->detached = true;
  pthread_mutex_unlock(mu);
}

void metrics_gauge_set(struct metrics_gauge *g, double v)
{
  atomic_store_explicit(&g->bits, dbl_bits(v), memory_order_relaxed);
}

void metrics_gauge_add(struct metrics_gauge *g, double d)
{
  uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
  while (!atomic_compare_exchange_weak_explicit(
      &g->bits, &old, dbl_bits(bits_dbl(old) + d), memory_order_relaxed,
      memory_order_relaxed))
    ;
}

double metrics_gauge_get(struct metrics_gauge *g)
{
  if (g->is_fn) { /* is_fn never changes after creation */
    pthread_mutex_t *mu = gauge_lock(g);
    pthread_mutex_lock(mu);
    double v = g->fn ? g->fn(g->arg) : NAN;
    pthread_mutex_unlock(mu);
    return v;
  }
  return bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
}

enum err_code metrics_hist_new(struct metrics *m, const char *name,
                               const char *help, const char *const *labels,
                               const double *bounds, size_t nbounds,
                               unsigned flags, struct metrics_hist **out,
                               struct err *e)
{
  *out = NULL;
  if (!bounds) {
    bounds = metrics_ms_buckets;
    nbounds = METRICS_MS_NBUCKETS;
  }
  if (nbounds == 0 || nbounds > METRICS_MAX_BUCKETS)
    return err_set(e, ERR_INVAL, "metrics: %s: %zu buckets (1..%d allowed)",
                   name, nbounds, METRICS_MAX_BUCKETS);
  for (size_t i = 0; i < nbounds; i++)
    if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
      return err_set(e, ERR_INVAL,
                     "metrics: %s: bucket bounds must be finite and increasing",
                     name);
  struct series *s;
  bool found;
  size_t size = sizeof(struct metrics_hist)
                + (nbounds + 1) * sizeof(_Atomic uint64_t);
  pthread_mutex_lock(&m->mu);
  enum err_code rc = do_register(m, name, help, labels, MT_HIST, bounds,
                                 nbounds, flags, size, &s, &found, e);
  if (!rc && !found) {
    struct metrics_hist *h = (struct metrics_hist *)s;
    h->nb = nbounds;
    h->bounds = s->fam->bounds;
  }
  pthread_mutex_unlock(&m->mu);
  *out = rc ? NULL : (struct metrics_hist *)s;
  return rc;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
  size_t i = 0;
  if (!(v >= 0)) /* negative or NaN */
    v = 0;
  while (i < h->nb && v > h->bounds[i])
    i++;
  atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
  double fx = v * HIST_SUM_SCALE + 0.5;
  uint64_t add = fx >= 1.8e19 ? UINT64_MAX / 2 : (uint64_t)fx;
  atomic_fetch_add_explicit(&h->sum, add, memory_order_relaxed);
}

uint64_t metrics_hist_bucket(const struct metrics_hist *h, size_t i)
{
  if (i > h->nb)
    return 0;
  return atomic_load_explicit(&((struct metrics_hist *)h)->counts[i],
                              memory_order_relaxed);
}

uint64_t metrics_hist_count(const struct metrics_hist *h)
{
  uint64_t n = 0;
  for (size_t i = 0; i <= h->nb; i++)
    n += metrics_hist_bucket(h, i);
  return n;
}

double metrics_hist_sum(const struct metrics_hist *h)
{
  return (double)atomic_load_explicit(&((struct metrics_hist *)h)->sum,
                                      memory_order_relaxed)
         / HIST_SUM_SCALE;
}

/* ---- rendering ------------------------------------------------------- */

static void series_name(struct buf *b, const char *name, const char *suffix,
                        const char *labels, const char *extra)
{
  buf_adds(b, name);
  buf_adds(b, suffix);
  if (*labels || extra) {
    buf_add(b, "{", 1);
    buf_adds(b, labels);
    if (extra) {
      if (*labels)
        buf_add(b, ",", 1);
      buf_adds(b, extra);
    }
    buf_add(b, "}", 1);
  }
  buf_add(b, " ", 1);
}

/* Returns false if the series is to be left out. */
static bool render_series(struct buf *b, struct family *f, struct series *s,
                          bool dry)
{
  switch (f->type) {
  case MT_COUNTER: {
    uint64_t v = metrics_counter_get((struct metrics_counter *)s);
    if (v == 0 && (s->flags & METRICS_HIDE_ZERO))
      return false;
    if (!dry) {
      series_name(b, f->name, "", s->labels, NULL);
      if (s->flags & METRICS_MICRO) {
        add_double(b, (double)v / 1e6);
        buf_add(b, "\n", 1);
      } else {
        buf_addf(b, "%llu\n", (unsigned long long)v);
      }
    }
    return true;
  }
  case MT_GAUGE: {
    struct metrics_gauge *g = (struct metrics_gauge *)s;
    double v;
    if (g->is_fn) {
      if (!g->fn)
        return false;
      if (dry)
        return true; /* call the callback once per render */
      v = g->fn(g->arg);
    } else {
      v = bits_dbl(atomic_load_explicit(&g->bits, memory_order_relaxed));
    }
    if (v == 0 && (s->flags & METRICS_HIDE_ZERO))
      return false;
    if (!dry) {
      series_name(b, f->name, "", s->labels, NULL);
      add_double(b, v);
      buf_add(b, "\n", 1);
    }
    return true;
  }
  case MT_HIST: {
    struct metrics_hist *h = (struct metrics_hist *)s;
    uint64_t c[METRICS_MAX_BUCKETS + 1], total = 0;
    for (size_t i = 0; i <= h->nb; i++) {
      c[i] = metrics_hist_bucket(h, i);
      total += c[i];
    }
    if (total == 0 && (s->flags & METRICS_HIDE_ZERO))
      return false;
    if (dry)
      return true;
    uint64_t cum = 0;
    for (size_t i = 0; i <= h->nb; i++) {
      char le[48];
      cum += c[i];
      if (i < h->nb)
        snprintf(le, sizeof(le), "le=\"%.15g\"", h->bounds[i]);
      else
        snprintf(le, sizeof(le), "le=\"+Inf\"");
      series_name(b, f->name, "_bucket", s->labels, le);
      buf_addf(b, "%llu\n", (unsigned long long)cum);
    }
    series_name(b, f->name, "_sum", s->labels, NULL);
    add_double(b, metrics_hist_sum(h));
    buf_add(b, "\n", 1);
    series_name(b, f->name, "_count", s->labels, NULL);
    buf_addf(b, "%llu\n", (unsigned long long)total);
    return true;
  }
  }
  return false;
}

enum err_code metrics_render(struct metrics *m, char **buf, size_t *len,
                             size_t *cap, struct err *e)
{
  struct buf b;
  buf_attach(&b, *buf, *len, *cap, BUF_NO_MAX);
  buf_add(&b, "", 0); /* NUL-terminated even when nothing is rendered */
  pthread_mutex_lock(&m->mu);
  for (struct family *f = m->head; f && !buf_error(&b); f = f->next) {
    bool any = false;
    for (struct series *s = f->head; s && !any; s = s->next)
      any = render_series(&b, f, s, true);
    if (!any)
      continue;
    buf_adds(&b, "# HELP ");
    buf_adds(&b, f->name);
    buf_add(&b, " ", 1);
    add_escaped(&b, f->help, false);
    buf_adds(&b, "\n# TYPE ");
    buf_adds(&b, f->name);
    buf_add(&b, " ", 1);
    buf_adds(&b, type_name(f->type));
    buf_add(&b, "\n", 1);
    for (struct series *s = f->head; s; s = s->next)
      render_series(&b, f, s, false);
  }
  pthread_mutex_unlock(&m->mu);
  *buf = b.p;
  *len = b.len;
  *cap = b.cap;
  if (buf_error(&b))
    return err_set(e, ERR_NOMEM, "metrics: out of memory while rendering");
  return ERR_OK;
}
