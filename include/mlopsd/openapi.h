/* openapi.h - GET /openapi.json: an OpenAPI 3.1 description of every
 * route the daemon serves, built from the HTTP router's own route table
 * when asked (so a route cannot be served undocumented), with the
 * /predict request body generated from the served model's spec (field
 * types, bounds, allowed values) and the admin API's routes named by
 * Airflow's operation ids where they follow Airflow's spec.
 * docs/http.md "OpenAPI"; tests/integration/openapi_check.py checks it.
 *
 * Thread rule: create and register before the server starts; the handler
 * runs on any HTTP thread; destroy after the server stopped.
 */
#ifndef MLOPSD_OPENAPI_H
#define MLOPSD_OPENAPI_H

#include "mlopsd/err.h"

struct cfg;
struct http;
struct serving;
struct openapi;

/* A describer over srv's routes, the served models of sv (may be NULL:
 * then the spec files of models.specs_dir are read) and cfg (borrowed,
 * must outlive it).  Errors: ERR_NOMEM. */
enum err_code openapi_create(struct openapi **out, struct http *srv,
                             struct serving *sv, const struct cfg *cfg,
                             struct err *e) MLOPSD_WUR;
/* Register GET /openapi.json on srv. */
enum err_code openapi_routes(struct openapi *o, struct http *srv,
                             struct err *e) MLOPSD_WUR;
/* NULL-safe. */
void openapi_destroy(struct openapi *o);

#endif
