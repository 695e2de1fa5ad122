/* metrics.h - counters, gauges and histograms rendered as Prometheus text.
 *
 * A registry (struct metrics) holds metric families, each a name, a help
 * text, a type and a set of series that differ by their labels.  Series
 * are registered at start-up with a fixed label set and handed back as
 * pointers; the hot path then updates them with relaxed atomics, never a
 * lock.  Rendering (GET /metrics) takes the registry lock and reads the
 * atomics, so it never stops an update.
 *
 *   struct metrics_counter *c;
 *   const char *lab[] = {"route", "/healthz", "method", "GET", NULL};
 *   metrics_counter_new(m, "mlopsd_http_requests_total", "HTTP requests.", lab, 0,
 *                       &c, &e);
 *   metrics_counter_add(c, 1);          // any thread, lock-free
 *
 * Labels are given as a NULL-terminated array of name, value pairs (NULL
 * for none); names and values are copied.  Label values are escaped when
 * rendered.  Registering the same name and labels again returns the
 * existing series (so start-up code need not remember what it made), except
 * for callback gauges (ERR_EXISTS).  Reusing a name with another type, or a
 * histogram name with other buckets, is ERR_INVAL.
 *
 * Series live as long as the registry: pointers stay valid until
 * metrics_destroy.  Families and series are rendered in registration order.
 *
 * Thread rule: *_new, metrics_render and metrics_gauge_fn_detach may be
 * called from any thread (they take the registry lock); updates and reads
 * of a series from any thread without a lock.  metrics_destroy once, when
 * no other thread uses the registry or its series.
 */
#ifndef MLOPSD_METRICS_H
#define MLOPSD_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "mlopsd/err.h"

struct metrics;
struct metrics_counter;
struct metrics_gauge;
struct metrics_hist;

/* Flag for *_new: leave the series out of the text while it is zero (a
 * counter at 0, a histogram without observations, a gauge at 0).  For
 * label sets registered up front that are mostly never used, e.g. one
 * counter per HTTP status code. */
#define METRICS_HIDE_ZERO 1u
/* Flag for metrics_counter_new: the counter counts millionths of its unit
 * (e.g. microseconds of a _seconds_total counter) and is rendered divided
 * by 1e6, so base units are kept while adding stays an integer add. */
#define METRICS_MICRO 2u

/* The default histogram buckets, in milliseconds (upper bounds; +Inf is
 * implicit): 0.1 0.25 0.5 1 2.5 5 10 25 50 100 250 500 1000. */
#define METRICS_MS_NBUCKETS 13
extern const double metrics_ms_buckets[METRICS_MS_NBUCKETS];
/* The same bounds in seconds, for *_seconds histograms (Prometheus base
 * units): 0.0001 ... 1. */
#define METRICS_S_NBUCKETS 13
extern const double metrics_s_buckets[METRICS_S_NBUCKETS];

/* Largest number of buckets a histogram may have (without +Inf). */
#define METRICS_MAX_BUCKETS 32

enum err_code metrics_create(struct metrics **out, struct err *e) MLOPSD_WUR;
/* NULL-safe.  Detached or not, callbacks are never called afterwards. */
void metrics_destroy(struct metrics *m);

/* Counter: a monotonically increasing uint64.  name must match
 * [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* (not "le",
 * not starting "__").  ERR_INVAL on a bad name or a type clash, ERR_NOMEM. */
enum err_code metrics_counter_new(struct metrics *m, const char *name,
                                  const char *help, const char *const *labels,
                                  unsigned flags, struct metrics_counter **out,
                                  struct err *e) MLOPSD_WUR;
void metrics_counter_add(struct metrics_counter *c, uint64_t n);
uint64_t metrics_counter_get(const struct metrics_counter *c);

/* Gauge: a double that is set or moved.  set/add/get lock-free (add is a
 * compare-and-swap loop). */
enum err_code metrics_gauge_new(struct metrics *m, const char *name,
                                const char *help, const char *const *labels,
                                unsigned flags, struct metrics_gauge **out,
                                struct err *e) MLOPSD_WUR;
void metrics_gauge_set(struct metrics_gauge *g, double v);
void metrics_gauge_add(struct metrics_gauge *g, double d);
/* For a callback gauge: calls the callback (under the registry lock). */
double metrics_gauge_get(struct metrics_gauge *g);

/* Callback gauge: fn(arg) is called at render time, with the registry lock
 * held, from the rendering thread: it must be quick, must not call back
 * into this registry, and arg must stay valid until
 * metrics_gauge_fn_detach(g) returns (after which fn is never called
 * again; the series is then left out of the text).  ERR_EXISTS if the
 * same name and labels are already registered. */
typedef double (*metrics_gauge_fn)(void *arg);
enum err_code metrics_gauge_fn_new(struct metrics *m, const char *name,
                                   const char *help, const char *const *labels,
                                   metrics_gauge_fn fn, void *arg,
                                   struct metrics_gauge **out,
                                   struct err *e) MLOPSD_WUR;
void metrics_gauge_fn_detach(struct metrics_gauge *g);

/* Histogram: bounds are the bucket upper bounds, strictly increasing
 * (copied; NULL = metrics_ms_buckets), at most METRICS_MAX_BUCKETS.
 * observe() finds the bucket by a linear scan and does two relaxed atomic
 * adds; the sum is kept in fixed point at 1e-6 of the unit (a negative or
 * NaN value counts as 0). */
enum err_code metrics_hist_new(struct metrics *m, const char *name,
                               const char *help, const char *const *labels,
                               const double *bounds, size_t nbounds,
                               unsigned flags, struct metrics_hist **out,
                               struct err *e) MLOPSD_WUR;
void metrics_hist_observe(struct metrics_hist *h, double v);
/* Reads for tests and callers: total count, sum, and the NON-cumulative
 * count of bucket i (i == nbounds is the +Inf bucket). */
uint64_t metrics_hist_count(const struct metrics_hist *h);
double metrics_hist_sum(const struct metrics_hist *h);
uint64_t metrics_hist_bucket(const struct metrics_hist *h, size_t i);

/* Append the whole registry in the Prometheus text exposition format
 * (version 0.0.4) to the growable buffer *buf (*len bytes used of *cap;
 * *buf may be NULL with *cap 0; grown with realloc, caller frees).  The
 * text is NUL-terminated (the NUL is not counted in *len).  ERR_NOMEM
 * leaves the buffer valid with the text cut short. */
enum err_code metrics_render(struct metrics *m, char **buf, size_t *len,
                             size_t *cap, struct err *e) MLOPSD_WUR;

#endif
