/* predict_tree.h - the parse tree of a /predict body, built in one cheap
 * pass over a body that predict_scan has already accepted.
 *
 * /predict checks a body with predict_scan (predict.h) before anything
 * parses it; cJSON then checked it all again, sized every string twice and
 * converted every number through glibc's strtod, which made cJSON's parse
 * the largest user-space cost of a prediction (about half of the handler's
 * instructions).  predict_tree_parse relies on the pre-check and builds
 * the tree cJSON_ParseWithLengthOpts would build - the same node types,
 * member names and order (repeated names kept), strings with their
 * escapes decoded, valuedouble bit for bit what strtod gives, valueint
 * saturated as cJSON does - so everything downstream (validation, the
 * preprocessing, cJSON_Print, cJSON_Delete) sees no difference.
 *
 * Numbers of at most 15 significant digits and a decimal exponent within
 * +-22 are converted with one multiplication or division by an exact
 * power of ten, which is correctly rounded, hence equal to strtod's
 * result (Clinger's fast path); the others go through strtod.
 *
 * Thread rule: none (no state); alloc is called from the calling thread.
 */
#ifndef MLOPSD_PREDICT_TREE_H
#define MLOPSD_PREDICT_TREE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"

/* Build the tree of buf[0..len), which MUST have passed predict_scan with
 * the same length (valid UTF-8 JSON, nesting within the scan's limit,
 * numbers of at most PREDICT_MAX_NUMBER characters): nothing is checked
 * again.  Nodes (zeroed, like cJSON_New_Item) and strings are allocated
 * with alloc.  *root gets the tree, also on ERR_NOMEM (alloc returned
 * NULL): then it is the consistent part built so far (or NULL), to be
 * released like a complete one - with cJSON_Delete when alloc is the
 * allocator of cJSON's hooks, or with the arena alloc took it from.
 * Returns ERR_OK or ERR_NOMEM. */
enum err_code predict_tree_parse(const char *buf, size_t len,
                                 void *(*alloc)(size_t),
                                 cJSON **root) MLOPSD_WUR;

#endif
