/* shadow.h - the shadow challenger on the request path (docs/serving.md
 * "Shadow challenger"): the version aliased staging answers every item
 * production answered, and its answer goes into the item's log row
 * (plog_row.shadow_*), never into the HTTP answer.
 *
 * Thread rule: any thread (per-thread scratch, grown on demand and kept
 * for the thread's life).
 */
#ifndef MLOPSD_SHADOW_H
#define MLOPSD_SHADOW_H

#include <stddef.h>

struct serving;
struct serving_model;
struct plog_row;
struct cJSON;

/* Predict items[0..n) (request objects production validated and
 * answered) with the shadow of prod's model (serving_acquire_shadow) and
 * fill rows[i].shadow_version / shadow_prediction / shadow_confidence;
 * rows without a shadow answer get shadow_version 0 (no shadow, or an
 * item the shadow's preprocessing refused: logged, at most one warning
 * every 10 s).  Returns the shadow bundle, which the caller releases
 * (serving_release) after the rows were appended: the predictions'
 * label texts belong to it.  NULL when nothing was filled.  Never fails
 * the request. */
struct serving_model *shadow_predict(struct serving *s,
                                     const struct serving_model *prod,
                                     const struct cJSON *const *items,
                                     size_t n, struct plog_row *rows);

#endif
