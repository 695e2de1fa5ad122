/* predict.h - the prediction surface of the HTTP server.
 *
 * Routes (predict_routes):
 *   POST /predict                 the default model (server.default_model)
 *   POST /models/{name}/predict   any served model
 *   GET|POST /metadata            the default model's /metadata
 *   GET /models/{name}/metadata   another model's
 * (/readyz is the daemon's: it decides by role what readiness rests on.)
 *
 * A prediction request is {"data": {...}} (one) or {"data": [{...}, ...]}
 * (a batch), Content-Type application/json.  The body is checked in one
 * pass before it is parsed (reqjson.h: UTF-8, nesting depth, JSON
 * syntax with the byte position of the first error, number length) and
 * parsed in the same pass (reqjson_scan_parse), validated against the model spec (every bad field named), run
 * through the version's preprocessing into per-thread scratch rows,
 * predicted (model_predict: the verified native evaluator) and answered
 * {"customer_id", "predict", "confidence", "model_version"} (or a list).
 * Each item is logged through plog with the item's bytes exactly as
 * received.  No lock is taken and no database is touched on the way.
 *
 * Answers: 400 bad JSON / bad input ({"error": "invalid input", "fields":
 * {"age": "must be > 0"}} with batch fields as "data[3].age"), 404 unknown
 * model, 413 body too big (the HTTP layer), 415 not JSON, 503 no model
 * deployed or prediction log full (policy reject), 500 on an internal
 * failure.
 *
 * The parse tree of a request lives in a per-thread arena: the first
 * predict_create installs process-wide cJSON hooks (cJSON_InitHooks) that
 * allocate from the calling thread's arena while a request parses and
 * use malloc/free otherwise, so other cJSON users see no difference.
 *
 * Thread rule: create/routes/destroy from one thread, before the server
 * starts and after it stopped (predict_create before other threads use
 * cJSON); handlers run on any number of HTTP threads.
 */
#ifndef MLOPSD_PREDICT_H
#define MLOPSD_PREDICT_H

#include <stddef.h>

#include "mlopsd/buf.h"
#include "mlopsd/err.h"

struct predict;
struct serving;
struct plog;
struct metrics;
struct http;

#define PREDICT_MAX_BATCH 4096  /* items in one request */
#define PREDICT_MAX_FIELDS 64   /* bad fields listed in one 400 */

struct cJSON;
struct spec;

/* The 400 "invalid input" body, {"error":"invalid input","fields":{name:
 * msg, ...},"detail":[...]}, built one bad field at a time: the one writer
 * for the server and pipeline_predict, so both answers are the same bytes.
 * Start from {0}; one thread at a time; predict_bad_free when done. */
struct predict_bad {
  struct buf body;      /* the body; whole after predict_bad_end */
  struct cJSON *detail; /* the "detail" list until predict_bad_end */
  size_t nf, more;      /* fields listed; left out (over PREDICT_MAX_FIELDS) */
};

/* Add one bad field (named "data[3].age" in a batch, "age"
 * for one item, the prefix alone for field ""; input, borrowed, may be
 * NULL, is copied into "detail").  Out of memory shows in buf_error(&v->body). */
void predict_bad_add(struct predict_bad *v, const char *prefix,
                     size_t index, int batch, const char *field,
                     const char *msg, const struct cJSON *input);
/* Close the body (v->body holds it; check buf_error) and free the list. */
void predict_bad_end(struct predict_bad *v);
/* Free what v holds and empty it, ready for reuse. */
void predict_bad_free(struct predict_bad *v);

/* The request's shape: root (an object) must hold exactly "data", an
 * object or a list of 1..max_batch objects, and, when explain is not
 * NULL, may hold "explain" (*explain gets it, borrowed, NULL when
 * absent; its value is the caller's to check).  Adds every breach to v;
 * sets *data (borrowed from root, NULL when missing), *batch (a list) and
 * *n (items, 0 when unusable).  Returns 1 when the shape is good. */
int predict_shape(const struct cJSON *root, size_t max_batch,
                  struct predict_bad *v, const struct cJSON **data,
                  int *batch, size_t *n, const struct cJSON **explain);

/* Lax numbers (pydantic's lax mode): a string member of item whose feature
 * is numeric in sp and whose text is a clean decimal number becomes that
 * number in place.  item must be the caller's own parse tree.  Any thread. */
void predict_lax_numbers(const struct spec *sp, struct cJSON *item);

struct predict_opts {
  struct serving *serving; /* borrowed, required */
  struct plog *plog;       /* borrowed; NULL = predictions are not logged */
  struct metrics *metrics; /* borrowed, may be NULL */
  size_t max_batch;        /* 0 = PREDICT_MAX_BATCH */
};

enum err_code predict_create(struct predict **out,
                             const struct predict_opts *o,
                             struct err *e) MLOPSD_WUR;

/* Register the routes above on srv (before http_start).  p must outlive
 * the server's threads. */
enum err_code predict_routes(struct predict *p, struct http *srv,
                             struct err *e) MLOPSD_WUR;

void predict_destroy(struct predict *p); /* NULL-safe */

#endif
