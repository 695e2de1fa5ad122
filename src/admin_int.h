/* admin_int.h - friend interface between admin.c (routes) and
 * admin_stats.c (the serving figures sampler).  Not for other modules.
 */
#ifndef MLOPSD_ADMIN_INT_H
#define MLOPSD_ADMIN_INT_H

#include <cjson/cJSON.h>

#include "mlopsd/err.h"

struct metrics;
struct admin_stats;

/* Make a sampler over m that keeps `ring` samples taken every sample_ms
 * by a thread of its own (started here; one sample is taken at once).
 * Errors: ERR_NOMEM, ERR_INTERNAL (thread). */
enum err_code admin_stats_create(struct admin_stats **out, struct metrics *m,
                                 int sample_ms, int ring, struct err *e)
    MLOPSD_WUR;

/* Stop and join the thread, free.  NULL-safe. */
void admin_stats_destroy(struct admin_stats *s);

/* Take a sample now (any thread). */
void admin_stats_sample(struct admin_stats *s);

/* The /api/v2/serving answer as a new object (cJSON_Delete): the figures
 * since the last sample ("now"), totals, the prediction log and queue
 * gauges, and the ring as per-interval points ("series").  NULL on
 * allocation failure.  Any thread. */
cJSON *admin_stats_json(struct admin_stats *s);

/* ---- exposed for unit tests ------------------------------------------ */

/* Quantile q (0..1) of a histogram given as cumulative counts cum[i] for
 * upper bounds le[i] (ascending, the last may be +Inf), linear within the
 * bucket as Prometheus' histogram_quantile.  NAN when the count is 0. */
double admin_stats_quantile(const double *le, const double *cum, int n,
                            double q);

/* One sample line of Prometheus text: "name{k=\"v\",...} value".  On
 * success returns 0 and fills name (NUL-terminated, cut to name_cap), the
 * label pairs (up to max_labels, values unescaped, each cut to 127 bytes)
 * and value.  -1 for comments, blank lines and malformed lines. */
struct admin_prom_label {
  char key[32];
  char val[128];
};
int admin_prom_line(const char *line, size_t len, char *name, size_t name_cap,
                    struct admin_prom_label *labels, int max_labels,
                    int *nlabels, double *value);

#endif
