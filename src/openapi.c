/* openapi.c - GET /openapi.json (openapi.h): the daemon's routes as an
 * OpenAPI 3.1 document, built per request from the router's table.
 *
 * Why from the router: a route added anywhere (predict.c, admin*.c,
 * console.c, http.c's probes) appears in the document without touching
 * this file; the table below only adds words (summary, tag, response
 * type) to the routes it knows, and a route it does not know is still
 * listed with its parameters and a generic answer.
 *
 * Why the model spec: /predict validates a request against the served
 * model's spec (spec.h), so the same spec gives the request schema:
 * numeric features as number (integer when whole numbers are required;
 * a clean number in a string is also accepted, docs/serving.md "lax
 * mode"), bounds as minimum / exclusiveMinimum / ..., categorical
 * features as enum, not-required features as nullable, unknown fields
 * refused (additionalProperties: false).
 */
#include "mlopsd/openapi.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/http.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"

#define MAX_BATCH 4096 /* docs/serving.md: items of one batch */

struct openapi {
  struct http *srv;
  struct serving *sv;
  const struct cfg *cfg;
};

/* What the document says about a route it knows. */
struct known {
  const char *method; /* NULL: any */
  const char *pattern;
  const char *tag;
  const char *summary;
  const char *ctype; /* answer's content type; NULL: application/json */
};

static const struct known known[] = {
    {"POST", "/predict", "predict",
     "Predict with the default model (server.default_model): {\"data\": "
     "item} or {\"data\": [items]}",
     NULL},
    {"POST", "/models/{name}/predict", "predict",
     "Predict with the named model (its fields: GET "
     "/models/{name}/metadata)",
     NULL},
    {NULL, "/metadata", "predict", "The default model's version and schema",
     NULL},
    {"GET", "/models/{name}/metadata", "predict",
     "The named model's version and schema", NULL},
    {"GET", "/healthz", "health", "Liveness: the process answers", NULL},
    {"GET", "/livez", "health", "Liveness (BentoML's name for /healthz)",
     NULL},
    {"GET", "/readyz", "health",
     "Readiness: models loaded, prediction log writable (503 otherwise)",
     NULL},
    {"GET", "/metrics", "health", "Prometheus metrics (text format 0.0.4)",
     "text/plain"},
    {"GET", "/openapi.json", "meta", "This document", NULL},
    {"GET", "/", "console", "The web console", "text/html"},
    {"GET", "/console", "console", "The web console", "text/html"},
    {"GET", "/console/{file}", "console", "The console's assets",
     "application/octet-stream"},
    {"GET", "/api/v2/auth", "admin", "What the caller may do (open)", NULL},
};

static const struct known *find_known(const char *method, const char *pat)
{
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
    if ((!known[i].method || !strcmp(known[i].method, method)) &&
        !strcmp(known[i].pattern, pat))
      return &known[i];
  return NULL;
}

/* ---- the request schema of /predict ------------------------------------- */

static cJSON *feature_schema(const struct spec_feature *f)
{
  cJSON *s = cJSON_CreateObject(), *types = cJSON_CreateArray();
  if (!s || !types) {
    cJSON_Delete(s);
    cJSON_Delete(types);
    return NULL;
  }
  if (f->kind == SPEC_NUMERIC) {
    cJSON_AddItemToArray(types,
                         cJSON_CreateString(f->integer ? "integer" : "number"));
    if (f->bounds & SPEC_BOUND_GE)
      cJSON_AddNumberToObject(s, "minimum", f->ge);
    if (f->bounds & SPEC_BOUND_GT)
      cJSON_AddNumberToObject(s, "exclusiveMinimum", f->gt);
    if (f->bounds & SPEC_BOUND_LE)
      cJSON_AddNumberToObject(s, "maximum", f->le);
    if (f->bounds & SPEC_BOUND_LT)
      cJSON_AddNumberToObject(s, "exclusiveMaximum", f->lt);
    cJSON_AddStringToObject(s, "x-mlopsd-lax",
                            "a clean decimal number in a string is accepted");
  } else {
    cJSON_AddItemToArray(types, cJSON_CreateString("string"));
    if (f->kind == SPEC_CATEGORICAL && f->n_allowed) {
      cJSON *en = cJSON_AddArrayToObject(s, "enum");
      for (size_t i = 0; en && i < f->n_allowed; i++)
        cJSON_AddItemToArray(en, cJSON_CreateString(f->allowed[i]));
      if (!f->required)
        cJSON_AddItemToArray(en, cJSON_CreateNull());
    }
  }
  if (!f->required)
    cJSON_AddItemToArray(types, cJSON_CreateString("null"));
  cJSON_AddItemToObject(s, "type", types);
  if (f->description)
    cJSON_AddStringToObject(s, "description", f->description);
  return s;
}

/* One request item of sp (NULL: any object). */
static cJSON *item_schema(const struct spec *sp)
{
  cJSON *s = cJSON_CreateObject();
  if (!s)
    return NULL;
  cJSON_AddStringToObject(s, "type", "object");
  if (!sp)
    return s;
  cJSON_AddStringToObject(s, "title", sp->name);
  if (sp->description)
    cJSON_AddStringToObject(s, "description", sp->description);
  cJSON *props = cJSON_AddObjectToObject(s, "properties");
  cJSON *req = cJSON_AddArrayToObject(s, "required");
  /* the entity key is echoed back, any scalar */
  const char *key = sp->source.key ? sp->source.key : "customer_id";
  cJSON *k = cJSON_CreateObject();
  cJSON *kt = cJSON_AddArrayToObject(k, "type");
  cJSON_AddItemToArray(kt, cJSON_CreateString("string"));
  cJSON_AddItemToArray(kt, cJSON_CreateString("integer"));
  cJSON_AddItemToArray(kt, cJSON_CreateString("null"));
  cJSON_AddStringToObject(k, "description",
                          "the entity key, echoed in the answer");
  cJSON_AddItemToObject(props, key, k);
  for (size_t i = 0; i < sp->n_features; i++) {
    const struct spec_feature *f = &sp->features[i];
    cJSON_AddItemToObject(props, f->name, feature_schema(f));
    if (f->required)
      cJSON_AddItemToArray(req, cJSON_CreateString(f->name));
  }
  cJSON_AddFalseToObject(s, "additionalProperties");
  return s;
}

static cJSON *predict_body(const cJSON *item)
{
  cJSON *b = cJSON_CreateObject();
  cJSON_AddBoolToObject(b, "required", 1);
  cJSON *sch = cJSON_AddObjectToObject(
      cJSON_AddObjectToObject(cJSON_AddObjectToObject(b, "content"),
                              "application/json"),
      "schema");
  cJSON_AddStringToObject(sch, "type", "object");
  cJSON *rq = cJSON_AddArrayToObject(sch, "required");
  cJSON_AddItemToArray(rq, cJSON_CreateString("data"));
  cJSON *data = cJSON_AddObjectToObject(cJSON_AddObjectToObject(sch,
                                                                "properties"),
                                        "data");
  cJSON *one = cJSON_AddArrayToObject(data, "oneOf");
  cJSON_AddItemToArray(one, cJSON_Duplicate(item, 1));
  cJSON *arr = cJSON_CreateObject();
  cJSON_AddStringToObject(arr, "type", "array");
  cJSON_AddItemToObject(arr, "items", cJSON_Duplicate(item, 1));
  cJSON_AddNumberToObject(arr, "minItems", 1);
  cJSON_AddNumberToObject(arr, "maxItems", MAX_BATCH);
  cJSON_AddItemToArray(one, arr);
  /* reason codes (docs/serving.md): true/false/null or {"top_k": K} */
  cJSON *ex = cJSON_AddArrayToObject(
      cJSON_AddObjectToObject(
          cJSON_GetObjectItemCaseSensitive(sch, "properties"), "explain"),
      "oneOf");
  cJSON *t = cJSON_CreateObject();
  cJSON_AddItemToArray(ex, t);
  cJSON_AddItemToArray(cJSON_AddArrayToObject(t, "type"),
                       cJSON_CreateString("boolean"));
  cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(t, "type"),
                       cJSON_CreateString("null"));
  cJSON *ko = cJSON_CreateObject();
  cJSON_AddItemToArray(ex, ko);
  cJSON_AddStringToObject(ko, "type", "object");
  cJSON *kp = cJSON_AddObjectToObject(
      cJSON_AddObjectToObject(ko, "properties"), "top_k");
  cJSON_AddStringToObject(kp, "type", "integer");
  cJSON_AddNumberToObject(kp, "minimum", 1);
  cJSON_AddStringToObject(kp, "description",
                          "fields listed (default 5), at most the model's "
                          "input fields");
  cJSON_AddFalseToObject(ko, "additionalProperties");
  return b;
}

/* The default model's spec: the served version's, else its spec file. */
static cJSON *default_item(struct openapi *o, char *why, size_t cap)
{
  struct serving_model *m = NULL;
  cJSON *item = NULL;
  if (o->sv && serving_acquire(o->sv, NULL, &m) == SERVING_OK) {
    item = item_schema(serving_model_spec(m));
    snprintf(why, cap, "the served version %d of %s",
             serving_model_version(m), serving_model_name(m));
    serving_release(m);
    return item;
  }
  char path[1200];
  struct spec *sp = NULL;
  struct err e = {0};
  snprintf(path, sizeof(path), "%s/%s.yaml", o->cfg->models_specs_dir,
           o->cfg->server_default_model);
  if (spec_load(path, &sp, &e) == ERR_OK) {
    item = item_schema(sp);
    snprintf(why, cap, "the spec file %s (no version served yet)", path);
    spec_destroy(sp);
    return item;
  }
  snprintf(why, cap, "no spec for %s: %s", o->cfg->server_default_model,
           e.msg);
  return item_schema(NULL);
}

/* ---- the document ---------------------------------------------------------- */

struct build {
  struct openapi *o;
  cJSON *paths;
  const cJSON *item;
};

static void lower(char *dst, const char *src, size_t cap)
{
  size_t i = 0;
  for (; src[i] && i + 1 < cap; i++)
    dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] + 32 : src[i]);
  dst[i] = '\0';
}

static void add_route(void *user, const char *method, const char *pattern)
{
  struct build *b = user;
  char m[16], opid[300];
  lower(m, method, sizeof(m));
  cJSON *path = cJSON_GetObjectItemCaseSensitive(b->paths, pattern);
  if (!path)
    path = cJSON_AddObjectToObject(b->paths, pattern);
  if (!path || cJSON_HasObjectItem(path, m))
    return;
  cJSON *op = cJSON_AddObjectToObject(path, m);
  const struct known *k = find_known(method, pattern);
  int admin = !strncmp(pattern, "/api/v2/", 8);
  cJSON *tags = cJSON_AddArrayToObject(op, "tags");
  cJSON_AddItemToArray(tags,
                       cJSON_CreateString(k ? k->tag : admin ? "admin" : "other"));
  cJSON_AddStringToObject(
      op, "summary",
      k ? k->summary
        : admin ? "Admin API, shaped like Airflow's REST API v2 "
                  "(docs/admin-api.md)"
                : "mlopsd route");
  /* operationId: METHOD plus the pattern's words, unique per route */
  size_t n = (size_t)snprintf(opid, sizeof(opid), "%s", m);
  for (const char *p = pattern; *p && n + 2 < sizeof(opid); p++)
    opid[n++] = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                        (*p >= '0' && *p <= '9')
                    ? *p
                    : '_';
  opid[n] = '\0';
  cJSON_AddStringToObject(op, "operationId", opid);
  /* {name} segments are path parameters */
  cJSON *params = NULL;
  for (const char *p = strchr(pattern, '{'); p; p = strchr(p + 1, '{')) {
    const char *end = strchr(p, '}');
    if (!end)
      break;
    if (!params)
      params = cJSON_AddArrayToObject(op, "parameters");
    cJSON *pa = cJSON_CreateObject();
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(end - p - 1), p + 1);
    cJSON_AddStringToObject(pa, "name", name);
    cJSON_AddStringToObject(pa, "in", "path");
    cJSON_AddTrueToObject(pa, "required");
    cJSON_AddStringToObject(cJSON_AddObjectToObject(pa, "schema"), "type",
                            "string");
    if (!strcmp(name, "dag_id") || !strcmp(name, "run_id"))
      cJSON_AddStringToObject(pa, "description",
                              "'~' for every DAG / run where Airflow allows it");
    cJSON_AddItemToArray(params, pa);
  }
  if (k && (!strcmp(pattern, "/predict") ||
            !strcmp(pattern, "/models/{name}/predict"))) {
    cJSON_AddItemToObject(op, "requestBody", predict_body(b->item));
    if (!params)
      params = cJSON_AddArrayToObject(op, "parameters");
    cJSON *pa = cJSON_CreateObject();
    cJSON_AddStringToObject(pa, "name", "explain");
    cJSON_AddStringToObject(pa, "in", "query");
    cJSON_AddFalseToObject(pa, "required");
    cJSON_AddStringToObject(pa, "description",
                            "1/true: reason codes (the body's \"explain\" "
                            "wins)");
    cJSON *ps = cJSON_AddObjectToObject(pa, "schema");
    cJSON_AddStringToObject(ps, "type", "string");
    cJSON *en = cJSON_AddArrayToObject(ps, "enum");
    static const char *const vals[] = {"1", "true", "0", "false"};
    for (size_t i = 0; i < 4; i++)
      cJSON_AddItemToArray(en, cJSON_CreateString(vals[i]));
    cJSON_AddItemToArray(params, pa);
  }
  else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
    cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
    cJSON_AddFalseToObject(rb, "required");
    cJSON_AddStringToObject(
        cJSON_AddObjectToObject(
            cJSON_AddObjectToObject(cJSON_AddObjectToObject(rb, "content"),
                                    "application/json"),
            "schema"),
        "type", "object");
  }
  cJSON *resp = cJSON_AddObjectToObject(op, "responses");
  cJSON *ok = cJSON_AddObjectToObject(resp, "200");
  cJSON_AddStringToObject(ok, "description", "success");
  const char *ct = k && k->ctype ? k->ctype : "application/json";
  cJSON *sch = cJSON_AddObjectToObject(
      cJSON_AddObjectToObject(cJSON_AddObjectToObject(ok, "content"), ct),
      "schema");
  if (!strcmp(ct, "application/json"))
    cJSON_AddStringToObject(sch, "type", "object");
  else
    cJSON_AddStringToObject(sch, "type", "string");
  cJSON *def = cJSON_AddObjectToObject(resp, "default");
  cJSON_AddStringToObject(def, "description",
                          "an error: {\"error\": \"...\", \"detail\": ...}");
  cJSON_AddStringToObject(
      cJSON_AddObjectToObject(
          cJSON_AddObjectToObject(cJSON_AddObjectToObject(def, "content"),
                                  "application/json"),
          "schema"),
      "$ref", "#/components/schemas/Error");
  if (admin && strcmp(pattern, "/api/v2/auth") &&
      strcmp(pattern, "/api/v2/monitor/health")) {
    cJSON *sec = cJSON_AddArrayToObject(op, "security");
    cJSON *s = cJSON_CreateObject();
    cJSON_AddArrayToObject(s, "bearer");
    cJSON_AddItemToArray(sec, s);
  }
}

static cJSON *document(struct openapi *o)
{
  char why[1400];
  cJSON *d = cJSON_CreateObject();
  if (!d)
    return NULL;
  cJSON_AddStringToObject(d, "openapi", "3.1.0");
  cJSON *info = cJSON_AddObjectToObject(d, "info");
  cJSON_AddStringToObject(info, "title", "mlopsd");
  cJSON_AddStringToObject(info, "version", MLOPSD_VERSION);
  cJSON *item = default_item(o, why, sizeof(why));
  char desc[1700];
  snprintf(desc, sizeof(desc),
           "The routes this daemon serves (prediction, health, metrics, "
           "console, admin API). /predict's request schema comes from %s.",
           why);
  cJSON_AddStringToObject(info, "description", desc);
  cJSON *comp = cJSON_AddObjectToObject(d, "components");
  cJSON *schemas = cJSON_AddObjectToObject(comp, "schemas");
  cJSON *err = cJSON_AddObjectToObject(schemas, "Error");
  cJSON_AddStringToObject(err, "type", "object");
  cJSON_AddStringToObject(
      cJSON_AddObjectToObject(cJSON_AddObjectToObject(err, "properties"),
                              "error"),
      "type", "string");
  cJSON_AddItemToObject(schemas, "PredictItem", cJSON_Duplicate(item, 1));
  cJSON *bearer = cJSON_AddObjectToObject(
      cJSON_AddObjectToObject(comp, "securitySchemes"), "bearer");
  cJSON_AddStringToObject(bearer, "type", "http");
  cJSON_AddStringToObject(bearer, "scheme", "bearer");
  cJSON_AddStringToObject(bearer, "description",
                          "the admin token (MLOPSD_ADMIN_TOKEN)");
  struct build b = {o, cJSON_AddObjectToObject(d, "paths"), item};
  http_routes_each(o->srv, add_route, &b);
  cJSON_Delete(item);
  return d;
}

static void h_openapi(struct http_req *req, struct http_resp *resp, void *arg)
{
  (void)req;
  cJSON *d = document(arg);
  char *txt = d ? cJSON_PrintUnformatted(d) : NULL;
  cJSON_Delete(d);
  if (!txt) {
    http_resp_error(resp, 500, "out of memory building /openapi.json");
    return;
  }
  http_resp_status(resp, 200);
  http_resp_content_type(resp, "application/json");
  if (http_resp_write(resp, txt, strlen(txt)) != ERR_OK)
    http_resp_error(resp, 500, "/openapi.json too large");
  free(txt);
}

enum err_code openapi_create(struct openapi **out, struct http *srv,
                             struct serving *sv, const struct cfg *cfg,
                             struct err *e)
{
  struct openapi *o = calloc(1, sizeof(*o));
  *out = NULL;
  if (!o)
    return err_set(e, ERR_NOMEM, "openapi: out of memory");
  o->srv = srv;
  o->sv = sv;
  o->cfg = cfg;
  *out = o;
  return ERR_OK;
}

enum err_code openapi_routes(struct openapi *o, struct http *srv,
                             struct err *e)
{
  return http_route(srv, "GET", "/openapi.json", h_openapi, o, e);
}

void openapi_destroy(struct openapi *o) { free(o); }
