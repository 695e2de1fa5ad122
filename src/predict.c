/* predict.c - POST /predict and friends (see predict.h).
 *
 * A body is checked and parsed in one pass by reqjson_scan_parse
 * (reqjson.h: why our own check and parser), which costs a fraction of
 * cJSON's own parse.
 *
 * Per-thread scratch (rows, outputs, spans, log rows) grows to the
 * largest request a thread has seen and is then reused, so a request
 * allocates only the parse tree, from a per-thread arena.
 */
#include "mlopsd/predict.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mlopsd/explain.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/model.h"
#include "mlopsd/numfmt.h"
#include "mlopsd/plog.h"
#include "mlopsd/prep.h"
#include "mlopsd/reqjson.h"
#include "mlopsd/serving.h"
#include "mlopsd/shadow.h"
#include "mlopsd/spec.h"
#include "mlopsd/vec.h"

#define MOD "predict"
#define CID_TEXT 32

enum reject {
  R_CTYPE = 0,
  R_EMPTY,
  R_UTF8,
  R_JSON,
  R_SHAPE,
  R_INPUT,
  R_UNKNOWN,
  R_NOT_DEPLOYED,
  R_LOG_FULL,
  R_INTERNAL,
  R_COUNT
};
static const char *const reject_names[R_COUNT] = {
    "content_type", "empty_body", "not_utf8", "malformed_json",
    "bad_shape",    "invalid_input", "unknown_model", "not_deployed",
    "log_full",     "internal"};

struct predict {
  struct serving *sv;
  struct plog *pl;
  struct metrics *m;
  size_t max_batch;
  struct metrics_counter *c_reject[R_COUNT];
  struct metrics_counter *c_items;
};

/* ---- cJSON arena -------------------------------------------------------
 * A request's parse tree is allocated from a per-thread bump arena and
 * dropped as a whole afterwards.  The tree is built by reqjson_scan_parse
 * with arena_alloc; cJSON's hooks are installed too (process-wide), so
 * that cJSON_Delete of a tree that spilled over to malloc, and
 * cJSON_PrintUnformatted of an item, work on it.  They fall back to
 * malloc/free whenever the calling thread has no active arena (every
 * other cJSON user) or the arena is used up; free recognises arena
 * pointers by address and ignores them. */

#define ARENA_BYTES ((size_t)256 << 10)

struct arena {
  char *base;
  size_t used;
  int active;
  size_t spilled; /* allocations that went to malloc while active */
};
static _Thread_local struct arena tl_arena;
static pthread_once_t hooks_once = PTHREAD_ONCE_INIT;

static void *arena_alloc(size_t sz)
{
  struct arena *a = &tl_arena;
  if (a->active) {
    size_t need = (sz + 15) & ~(size_t)15;
    if (need <= ARENA_BYTES - a->used) {
      void *p = a->base + a->used;
      a->used += need;
      return p;
    }
    a->spilled++;
  }
  return malloc(sz);
}

static void arena_free(void *p)
{
  const struct arena *a = &tl_arena;
  if (a->base && (char *)p >= a->base && (char *)p < a->base + ARENA_BYTES)
    return;
  free(p);
}

static void hooks_init(void)
{
  cJSON_Hooks h = {arena_alloc, arena_free};
  cJSON_InitHooks(&h);
}

/* ---- per-thread scratch ----------------------------------------------- */

struct scratch {
  float *rows, *out;
  size_t rows_cap, out_cap;
  struct reqjson_span *spans;
  size_t spans_cap;
  struct plog_row *lrows;
  size_t lrows_cap;
  char (*cid)[CID_TEXT];
  size_t cid_cap;
  const cJSON **items;
  size_t items_cap;
  int *cls;
  size_t cls_cap;
  const cJSON **byf; /* members of each item by feature index (n x nf) */
  size_t byf_cap;
  char **printed; /* fallback feature texts to free */
  size_t n_printed, printed_cap;
  char *arena;    /* ARENA_BYTES for tl_arena */
  struct spec_report rep;
  /* explanations only (sized when a request asks for one) */
  float *contrib, *margin;
  size_t contrib_cap, margin_cap;
  double *fold;
  size_t *rank;
  size_t fold_cap, rank_cap;
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local struct scratch *tl_scratch;

static void scratch_free(void *arg)
{
  struct scratch *s = arg;
  if (!s)
    return;
  free(s->rows);
  free(s->out);
  free(s->spans);
  free(s->lrows);
  free(s->cid);
  free(s->items);
  free(s->cls);
  free(s->byf);
  free(s->printed);
  free(s->contrib);
  free(s->margin);
  free(s->fold);
  free(s->rank);
  if (tl_arena.base == s->arena)
    memset(&tl_arena, 0, sizeof(tl_arena));
  free(s->arena);
  free(s);
}

static void scratch_key_init(void)
{
  (void)pthread_key_create(&scratch_key, scratch_free);
}

static struct scratch *scratch_get(void)
{
  if (tl_scratch)
    return tl_scratch;
  pthread_once(&scratch_once, scratch_key_init);
  struct scratch *s = calloc(1, sizeof(*s));
  if (!s)
    return NULL;
  s->arena = malloc(ARENA_BYTES);
  if (!s->arena) {
    free(s);
    return NULL;
  }
  tl_arena.base = s->arena;
  pthread_setspecific(scratch_key, s);
  tl_scratch = s;
  return s;
}

/* Size the buffers for n items of model m. */
static int scratch_fit(struct scratch *s, size_t n, size_t nfeat,
                       size_t out_dim, size_t n_inputs)
{
  return VEC_RESERVE(s->byf, s->byf_cap, n * n_inputs + 1) ||
         VEC_RESERVE(s->rows, s->rows_cap, n * nfeat) ||
         VEC_RESERVE(s->out, s->out_cap, n * out_dim) ||
         VEC_RESERVE(s->lrows, s->lrows_cap, n) ||
         VEC_RESERVE(s->cid, s->cid_cap, n) ||
         VEC_RESERVE(s->items, s->items_cap, n) ||
         VEC_RESERVE(s->cls, s->cls_cap, n) ||
         VEC_RESERVE(s->printed, s->printed_cap, n);
}

/* ---- helpers ---------------------------------------------------------- */

static int64_t mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void reject(struct predict *p, enum reject r)
{
  if (p->c_reject[r])
    metrics_counter_add(p->c_reject[r], 1);
}

/* No Content-Type at all is taken as JSON, as BentoML does, so that
 * `requests.post(url, data=json_text)` works; a declared other type is
 * still refused. */
static int ctype_json(const char *ct)
{
  if (!ct || !*ct)
    return 1;

  while (*ct == ' ' || *ct == '\t')
    ct++;
  if (strncasecmp(ct, "application/json", 16) != 0)
    return 0;
  ct += 16;
  return *ct == 0 || *ct == ';' || *ct == ' ' || *ct == '\t';
}

#define W(resp, lit) http_resp_write((resp), (lit), sizeof(lit) - 1)

/* Customer id text (for the log and the answer) of one item. */
static void customer_id(const struct spec *sp, const cJSON *item,
                        char *buf, const char **txt, size_t *len,
                        const cJSON **val)
{
  const char *key = sp->source.key ? sp->source.key : "customer_id";
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
  *val = NULL;
  *txt = NULL;
  *len = 0;
  if (cJSON_IsString(v)) {
    *val = v;
    *txt = v->valuestring;
    *len = strlen(v->valuestring);
  } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
    double d = v->valuedouble;
    int n;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      n = (int)numfmt_i64(buf, (int64_t)d);
    else
      n = snprintf(buf, CID_TEXT, "%.17g", d);
    *val = v;
    *txt = buf;
    *len = n > 0 && n < CID_TEXT ? (size_t)n : 0;
  }
}

static void predict_field_name(char *buf, size_t cap, const char *prefix,
                        size_t index, int batch, const char *field)
{
  if (batch)
    snprintf(buf, cap, "%s[%zu]%s%s", prefix, index, field[0] ? "." : "",
             field);
  else
    snprintf(buf, cap, "%s", field[0] ? field : prefix);
}

/* The 400 body's "detail" list (BentoML / pydantic style: one
 * {type, loc, msg, input} per bad field, beside "fields").  Error path
 * only, so plain cJSON allocations (the parse arena is off by then). */
static const char *detail_type(const char *msg)
{
  if (strstr(msg, "is required"))
    return "missing";
  if (strcmp(msg, "unknown field") == 0)
    return "extra_forbidden";
  if (strstr(msg, "must be one of"))
    return "enum";
  /* the bounds, by pydantic's names */
  if (strncmp(msg, "must be >= ", 11) == 0)
    return "greater_than_equal";
  if (strncmp(msg, "must be > ", 10) == 0)
    return "greater_than";
  if (strncmp(msg, "must be <= ", 11) == 0)
    return "less_than_equal";
  if (strncmp(msg, "must be < ", 10) == 0)
    return "less_than";
  if (strncmp(msg, "must be a number", 16) == 0
      || strncmp(msg, "must be a string", 16) == 0
      || strncmp(msg, "must be an object", 17) == 0)
    return "type_error";
  return "value_error";
}

static cJSON *predict_detail_item(const char *prefix, size_t index, int batch,
                           const char *field, const char *msg,
                           const cJSON *input)
{
  cJSON *d = cJSON_CreateObject(), *loc = cJSON_CreateArray();
  if (!d || !loc) {
    cJSON_Delete(d);
    cJSON_Delete(loc);
    return NULL;
  }
  cJSON_AddItemToArray(loc, cJSON_CreateString("body"));
  if (prefix[0])
    cJSON_AddItemToArray(loc, cJSON_CreateString(prefix));
  if (batch)
    cJSON_AddItemToArray(loc, cJSON_CreateNumber((double)index));
  if (field[0])
    cJSON_AddItemToArray(loc, cJSON_CreateString(field));
  cJSON_AddStringToObject(d, "type", detail_type(msg));
  cJSON_AddItemToObject(d, "loc", loc);
  cJSON_AddStringToObject(d, "msg", msg);
  cJSON_AddItemToObject(d, "input", input ? cJSON_Duplicate(input, 1)
                                          : cJSON_CreateNull());
  return d;
}

/* 1 MiB: PREDICT_MAX_FIELDS fields, each with its offending input */
#define BAD_BODY_MAX (1u << 20)

void predict_bad_add(struct predict_bad *v, const char *prefix,
                     size_t index, int batch, const char *field,
                     const char *msg, const cJSON *input)
{
  char name[SPEC_REPORT_FIELD + 48];
  if (v->nf >= PREDICT_MAX_FIELDS) {
    v->more++;
    return;
  }
  if (v->nf == 0) {
    predict_bad_free(v);
    buf_init(&v->body, BAD_BODY_MAX);
    v->detail = cJSON_CreateArray();
    buf_adds(&v->body, "{\"error\":\"invalid input\",\"fields\":{");
  } else {
    buf_adds(&v->body, ",");
  }
  if (v->detail) {
    cJSON *d = predict_detail_item(prefix, index, batch, field, msg, input);
    if (d)
      cJSON_AddItemToArray(v->detail, d);
  }
  predict_field_name(name, sizeof(name), prefix, index, batch, field);
  buf_add_jstr(&v->body, name);
  buf_adds(&v->body, ":");
  buf_add_jstr(&v->body, msg);
  v->nf++;
}

void predict_bad_end(struct predict_bad *v)
{
  if (v->nf == 0) /* only "more": cannot happen, but answer valid JSON */
    buf_adds(&v->body, "{\"error\":\"invalid input\",\"fields\":{");
  if (v->more)
    buf_addf(&v->body, ",\"...\":\"%zu more invalid fields not listed\"",
             v->more);
  buf_adds(&v->body, "}");
  char *d = v->detail ? cJSON_PrintUnformatted(v->detail) : NULL;
  if (d) {
    buf_adds(&v->body, ",\"detail\":");
    buf_adds(&v->body, d);
    cJSON_free(d);
  }
  buf_adds(&v->body, "}");
  cJSON_Delete(v->detail);
  v->detail = NULL;
}

void predict_bad_free(struct predict_bad *v)
{
  buf_free(&v->body);
  cJSON_Delete(v->detail);
  v->detail = NULL;
  v->nf = v->more = 0;
}

int predict_shape(const cJSON *root, size_t max_batch, struct predict_bad *v,
                  const cJSON **data_out, int *batch, size_t *n,
                  const cJSON **explain)
{
  int n_data = 0;
  if (explain)
    *explain = NULL;
  for (const cJSON *k = root->child; k; k = k->next) {
    if (k->string && strcmp(k->string, "data") == 0) {
      if (n_data++)
        predict_bad_add(v, "data", 0, 0, "", "duplicate field", k);
    } else if (explain && k->string && strcmp(k->string, "explain") == 0) {
      if (*explain)
        predict_bad_add(v, "", 0, 0, "explain", "duplicate field", k);
      *explain = k;
    } else {
      predict_bad_add(v, "", 0, 0, k->string ? k->string : "",
                      "unknown field", k);
    }
  }
  const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
  *data_out = data;
  *batch = cJSON_IsArray(data);
  *n = 0;
  if (!data) {
    predict_bad_add(v, "data", 0, 0, "", "is required", NULL);
  } else if (*batch) {
    *n = (size_t)cJSON_GetArraySize(data);
    if (*n == 0) {
      predict_bad_add(v, "data", 0, 0, "", "must not be an empty list", data);
    } else if (*n > max_batch) {
      char msg[64];
      snprintf(msg, sizeof(msg), "at most %zu items per request", max_batch);
      predict_bad_add(v, "data", 0, 0, "", msg, NULL);
    }
  } else if (cJSON_IsObject(data)) {
    *n = 1;
  } else {
    predict_bad_add(v, "data", 0, 0, "",
                    "must be an object or a list of objects", data);
  }
  return v->nf == 0 && v->more == 0;
}

/* Lax numbers, as pydantic's lax mode: a string member whose feature is
 * numeric and whose text is a clean decimal number ("30", "-1.5e3"; no
 * blanks, no hex, no inf/nan) is turned into that number in place before
 * validation, so "age": "30" is served like "age": 30.  Anything else
 * stays a string and gets the usual "must be a number" error.  The node's
 * valuestring is left alone: freeing follows the node as parsed. */
void predict_lax_numbers(const struct spec *sp, cJSON *item)
{
  if (!cJSON_IsObject(item))
    return;
  for (cJSON *c = item->child; c; c = c->next) {
    /* inline type test: cJSON_IsString is a call into the library, and
     * this runs for every member of every item */
    if ((c->type & 0xFF) != cJSON_String || !c->string || !c->valuestring)
      continue;
    const char *t = c->valuestring;
    size_t k = 0;
    for (; t[k]; k++)
      if (!((t[k] >= '0' && t[k] <= '9') || t[k] == '+' || t[k] == '-' ||
            t[k] == '.' || t[k] == 'e' || t[k] == 'E'))
        break;
    if (k == 0 || t[k] || k > 64)
      continue;
    const struct spec_feature *f = NULL;
    for (size_t j = 0; j < sp->n_features && !f; j++)
      if (strcmp(sp->features[j].name, c->string) == 0)
        f = &sp->features[j];
    if (!f || f->kind != SPEC_NUMERIC)
      continue;
    char *end;
    errno = 0;
    double d = strtod(t, &end);
    if (*end || end == t || !isfinite(d) || errno == ERANGE)
      continue;
    c->type = (c->type & ~0xFF) | cJSON_Number; /* keep the flag bits */
    c->valuedouble = d;
    c->valueint = d >= INT_MAX ? INT_MAX : d <= INT_MIN ? INT_MIN : (int)d;
  }
}

/* prep lookup over the members sorted by feature index (ctx: byf). */
static int member_value(void *ctx, size_t i, const char *name,
                        struct prep_value *v)
{
  const cJSON *c = ((const cJSON *const *)ctx)[i];
  (void)name;
  /* the type tests inline: cJSON_Is* are calls into the shared library */
  int t = c ? c->type & 0xFF : cJSON_NULL;
  if (t == cJSON_NULL) {
    v->kind = PREP_V_MISSING;
  } else if (t == cJSON_Number) {
    v->kind = PREP_V_NUM;
    v->num = c->valuedouble;
  } else if (t == cJSON_String) {
    v->kind = PREP_V_STR;
    v->str = c->valuestring;
  } else {
    v->kind = PREP_V_OTHER;
  }
  return 0;
}

/* ---- POST /predict ---------------------------------------------------- */

/* One request on its way through do_predict's stages.  Each stage
 * returns 0 to go on, or -1 when it has answered (and counted the
 * reject). */
struct preq {
  struct predict *p;
  struct http_resp *resp;
  struct scratch *s;
  struct serving_model *m;     /* acquired, released by do_predict */
  const struct spec *sp;
  const char *body;
  size_t len;
  struct reqjson_scan sc;      /* spans of data's items */
  cJSON *root;                 /* in the thread's arena */
  const cJSON *data;
  int batch;
  size_t n, nfeat, od;         /* items, model inputs, outputs per item */
  struct predict_bad bad;      /* a 400 being built */
  int64_t t0, created;
  const char *explain_q;       /* ?explain= (NULL: absent) */
  const cJSON *explain;        /* the body's "explain" member */
  size_t top_k;                /* reason codes per item; 0 = none */
};

static int answer_500_oom(struct preq *q, const char *msg)
{
  reject(q->p, R_INTERNAL);
  http_resp_error(q->resp, 500, "%s", msg);
  return -1;
}

/* The 400 built in q->bad (predict_bad_end), counted under why. */
static int answer_bad(struct preq *q, enum reject why)
{
  reject(q->p, why);
  predict_bad_end(&q->bad);
  http_resp_clear(q->resp);
  if (buf_error(&q->bad.body) ||
      http_resp_write(q->resp, buf_str(&q->bad.body), q->bad.body.len))
    http_resp_error(q->resp, 400, "invalid input");
  else
    http_resp_status(q->resp, 400);
  predict_bad_free(&q->bad);
  return -1;
}

static int answer_log_full(struct preq *q)
{
  reject(q->p, R_LOG_FULL);
  http_resp_error(q->resp, 503, "prediction log is full; try again later");
  if (http_resp_header(q->resp, "Retry-After", "1") != ERR_OK)
    LOG_D(MOD, "Retry-After header not set");
  return -1;
}

/* Stage 1: a JSON body, for a model that is served (q->m acquired). */
static int preq_admit(struct preq *q, struct http_req *req,
                      const char *name)
{
  struct predict *p = q->p;
  if (!ctype_json(http_req_content_type(req))) {
    reject(p, R_CTYPE);
    const char *ct = http_req_content_type(req);
    http_resp_error(q->resp, 415,
                    "unsupported content type '%.100s': send "
                    "application/json",
                    ct ? ct : "(none)");
    return -1;
  }
  switch (serving_acquire(p->sv, name, &q->m)) {
  case SERVING_OK:
    break;
  case SERVING_UNKNOWN:
    reject(p, R_UNKNOWN);
    http_resp_error(q->resp, 404, "unknown model '%.128s'", name);
    return -1;
  default:
    reject(p, R_NOT_DEPLOYED);
    http_resp_error(q->resp, 503, "no model deployed for '%.128s'",
                    name ? name : serving_default_name(p->sv));
    return -1;
  }
  q->sp = serving_model_spec(q->m);
  q->body = http_req_body(req, &q->len);
  q->explain_q = http_req_query(req, "explain");
  return 0;
}

/* Stage 2: check the body (spans of the items) and parse it into the
 * thread's arena, one pass (reqjson_scan_parse). */
static int preq_parse(struct preq *q)
{
  struct predict *p = q->p;
  struct scratch *s = q->s;
  size_t ws = 0;
  while (ws < q->len && (q->body[ws] == ' ' || q->body[ws] == '\n' ||
                         q->body[ws] == '\r' || q->body[ws] == '\t'))
    ws++;
  if (ws == q->len) {
    reject(p, R_EMPTY);
    http_resp_error(q->resp, 400, "empty request body: send {\"data\": "
                                  "{...}} or {\"data\": [{...}, ...]}");
    return -1;
  }
  if (!s->spans &&
      VEC_RESERVE(s->spans, s->spans_cap, p->max_batch + 1))
    return answer_500_oom(q, "out of memory");
  q->sc.items = s->spans;
  q->sc.items_cap = s->spans_cap;
  tl_arena.used = 0;
  tl_arena.spilled = 0;
  tl_arena.active = 1;
  /* the tree straight from the arena; arena_alloc (spilling to malloc)
   * once it is used up */
  q->sc.bump = tl_arena.base;
  q->sc.bump_cap = ARENA_BYTES;
  q->sc.bump_used = &tl_arena.used;
  /* the check and cJSON's tree in one pass, without cJSON's own parse
   * (reqjson.h) */
  int src = reqjson_scan_parse(q->body, q->len, &q->sc, arena_alloc,
                               &q->root);
  tl_arena.active = 0;
  if (src == -2)
    return answer_500_oom(q, "out of memory parsing the request");
  if (src != 0) {
    if (strcmp(q->sc.err, "invalid UTF-8") == 0) {
      reject(p, R_UTF8);
      http_resp_error(q->resp, 400,
                      "request body is not valid UTF-8 (byte %zu)",
                      q->sc.err_pos);
    } else {
      reject(p, R_JSON);
      http_resp_error(q->resp, 400,
                      "malformed JSON: %s at line %d, column %d (byte %zu)",
                      q->sc.err, q->sc.err_line, q->sc.err_col,
                      q->sc.err_pos);
    }
    return -1;
  }
  return 0;
}

/* Reason codes asked for: the body's "explain" (true, false, null or
 * {"top_k": K}) over ?explain= (1, true, 0, false; empty = 1).  Sets
 * q->top_k, capped to the model's input fields.  Returns 0, or -1 after
 * adding the bad value to q->bad (named "explain" or "explain.top_k"). */
static int preq_explain_opt(struct preq *q)
{
  size_t ni = q->sp->n_features, k = EXPLAIN_TOP_K_DEFAULT;
  int bad_member = 0;
  char msg[96];
  const char *bad = NULL, *where = "explain";
  const cJSON *input = q->explain;
  if (k > ni)
    k = ni;
  if (q->explain) {
    const cJSON *x = q->explain;
    if (cJSON_IsFalse(x) || cJSON_IsNull(x)) {
      k = 0;
    } else if (cJSON_IsObject(x)) {
      for (const cJSON *c = x->child; c && !bad; c = c->next) {
        if (!c->string || strcmp(c->string, "top_k") != 0) {
          char f[SPEC_REPORT_FIELD];
          snprintf(f, sizeof(f), "explain.%s", c->string ? c->string : "");
          predict_bad_add(&q->bad, "", 0, 0, f, "unknown field", c);
          bad_member = 1;
          continue;
        }
        double d = c->valuedouble;
        if (!cJSON_IsNumber(c) || d != floor(d) || d < 1 || d > (double)ni) {
          snprintf(msg, sizeof(msg), "must be an integer from 1 to %zu "
                   "(the model's input fields)", ni);
          bad = msg;
          where = "explain.top_k";
          input = c;
        } else {
          k = (size_t)d;
        }
      }
    } else if (!cJSON_IsTrue(x)) {
      bad = "must be true, false or an object {\"top_k\": K}";
    }
  } else {
    const char *v = q->explain_q;
    if (!strcmp(v, "0") || !strcasecmp(v, "false"))
      k = 0;
    else if (v[0] && strcmp(v, "1") && strcasecmp(v, "true"))
      bad = "query parameter explain must be 1, true, 0 or false";
  }
  if (bad) {
    predict_bad_add(&q->bad, "", 0, 0, where, bad, input);
    return -1;
  }
  q->top_k = k;
  return bad_member ? -1 : 0;
}

/* Stage 3, the shape: {"data": {...}} or {"data": [{...}, ...]} with
 * 1..max_batch items; scratch sized for them. */
static int preq_shape(struct preq *q)
{
  struct predict *p = q->p;
  struct http_resp *resp = q->resp;
  if (!cJSON_IsObject(q->root)) {
    reject(p, R_SHAPE);
    http_resp_error(resp, 400, "request body must be a JSON object "
                               "{\"data\": ...}");
    return -1;
  }
  int good = predict_shape(q->root, p->max_batch, &q->bad, &q->data,
                           &q->batch, &q->n, &q->explain);
  /* checked also after a bad shape: the 400 names every breach */
  if ((q->explain || q->explain_q) && preq_explain_opt(q) != 0)
    good = 0;
  if (!good)
    return answer_bad(q, R_SHAPE);
  q->nfeat = serving_model_nfeat(q->m);
  q->od = serving_model_out_dim(q->m);
  if (scratch_fit(q->s, q->n, q->nfeat, q->od, q->sp->n_features))
    return answer_500_oom(q, "out of memory");
  return 0;
}

/* Stage 4: validate every item against the spec, reporting every bad
 * field; then ask the prediction log for room. */
static int preq_validate(struct preq *q)
{
  struct scratch *s = q->s;
  const struct spec *sp = q->sp;
  size_t i = 0;
  const cJSON *it = q->batch ? q->data->child : q->data;
  for (; it && i < q->n; it = q->batch ? it->next : NULL, i++) {
    s->items[i] = it;
    predict_lax_numbers(sp, (cJSON *)it); /* our own parse tree: may change it */
    /* also records each feature's member for the preprocessing */
    if (spec_validate_request_members(sp, it, &s->rep,
                                      s->byf + i * sp->n_features) ==
        ERR_OK)
      continue;
    for (size_t k = 0; k < s->rep.n; k++)
      predict_bad_add(&q->bad, "data", i, q->batch, s->rep.e[k].field,
                      s->rep.e[k].msg,
                      cJSON_GetObjectItemCaseSensitive(it, s->rep.e[k].field));
    q->bad.more += s->rep.n_more;
  }
  if (q->bad.nf || q->bad.more)
    return answer_bad(q, R_INPUT);
  if (q->p->pl && plog_admit(q->p->pl, q->n) != ERR_OK)
    return answer_log_full(q);
  return 0;
}

/* Stage 5: the version's preprocessing into scratch rows, then the
 * model. */
static int preq_predict(struct preq *q)
{
  struct scratch *s = q->s;
  const struct prep *pr = serving_model_prep(q->m);
  for (size_t i = 0; i < q->n; i++) {
    struct err e = {0};
    /* the members by feature index, found by the validation */
    if (prep_transform_one(pr, member_value, s->byf + i * q->sp->n_features,
                           s->rows + i * q->nfeat, &e) != ERR_OK) {
      predict_bad_add(&q->bad, "data", i, q->batch, "", e.msg, NULL);
      return answer_bad(q, R_INPUT);
    }
  }
  struct err e = {0};
  if (model_predict(serving_model_model(q->m), s->rows, q->n, s->out, &e) !=
      ERR_OK) {
    reject(q->p, R_INTERNAL);
    LOG_E(MOD, "model=%s version=%d predict failed: %s",
          serving_model_name(q->m), serving_model_version(q->m), e.msg);
    http_resp_error(q->resp, 500, "prediction failed");
    return -1;
  }
  return 0;
}

/* Stage 5b, only when asked: the items' TreeSHAP contributions and raw
 * margins (model_contribs, model_predict_margin) into scratch. */
static int preq_explain(struct preq *q)
{
  struct scratch *s = q->s;
  const struct model *md = serving_model_model(q->m);
  size_t G = model_num_group(md), ni = q->sp->n_features;
  if (VEC_RESERVE(s->contrib, s->contrib_cap, q->n * G * (q->nfeat + 1)) ||
      VEC_RESERVE(s->margin, s->margin_cap, q->n * G) ||
      VEC_RESERVE(s->fold, s->fold_cap, ni + 1) ||
      VEC_RESERVE(s->rank, s->rank_cap, ni + 1))
    return answer_500_oom(q, "out of memory");
  struct err e = {0};
  if (model_contribs(md, s->rows, q->n, s->contrib, &e) != ERR_OK ||
      model_predict_margin(md, s->rows, q->n, s->margin, &e) != ERR_OK) {
    reject(q->p, R_INTERNAL);
    LOG_E(MOD, "model=%s version=%d explanation failed: %s",
          serving_model_name(q->m), serving_model_version(q->m), e.msg);
    http_resp_error(q->resp, 500, "explanation failed");
    return -1;
  }
  return 0;
}

/* Item i's "explanation": the margin of the predicted class (binary: of
 * the second class; regression: the value), the bias, the top_k fields
 * by |contribution| and the rest, so that the listed values + rest +
 * bias = margin. */
static int preq_write_explanation(struct preq *q, size_t i, int idx)
{
  struct scratch *s = q->s;
  const struct prep *pr = serving_model_prep(q->m);
  const struct model *md = serving_model_model(q->m);
  size_t G = model_num_group(md), ni = q->sp->n_features;
  size_t g = G > 1 && idx >= 0 ? (size_t)idx : 0;
  const char *cls = NULL;
  if (q->sp->target.n_classes)
    cls = q->sp->target.classes[G > 1 ? g : q->sp->target.n_classes - 1];
  double bias, rest = 0;
  explain_fold(pr, s->contrib + (i * G + g) * (q->nfeat + 1), s->fold,
               &bias);
  explain_rank(s->fold, ni, s->rank);
  for (size_t j = q->top_k; j < ni; j++)
    rest += s->fold[s->rank[j]];
  int wrc = W(q->resp, ",\"explanation\":{\"class\":");
  wrc |= cls ? http_resp_json_str(q->resp, cls) : W(q->resp, "null");
  wrc |= http_resp_printf(q->resp, ",\"margin\":%.9g,\"bias\":%.9g,"
                                   "\"top_k\":%zu,\"contributions\":[",
                          (double)s->margin[i * G + g], bias, q->top_k);
  for (size_t j = 0; j < q->top_k; j++) {
    if (j)
      wrc |= W(q->resp, ",");
    wrc |= W(q->resp, "{\"field\":");
    wrc |= http_resp_json_str(q->resp, prep_input_name(pr, s->rank[j]));
    wrc |= http_resp_printf(q->resp, ",\"value\":%.9g}",
                            s->fold[s->rank[j]]);
  }
  wrc |= http_resp_printf(q->resp, "],\"rest\":%.9g}", rest);
  return wrc;
}

/* The log row of item i: its bytes as received (the scan's span) or, past
 * the spans, printed again. */
static void preq_log_row(struct preq *q, size_t i, const char *ctxt,
                         size_t clen, const char *label, double conf,
                         double value, int elapsed)
{
  struct scratch *s = q->s;
  struct plog_row *lr = &s->lrows[i];
  /* only spans the scan wrote for this body: it records them for the
   * raw member name "data" only, while the tree also takes an escaped
   * spelling ("d\u0061ta"); then the item is printed again */
  const struct reqjson_span *span =
      q->batch ? (i < q->sc.n_items && i < q->sc.items_cap ? &s->spans[i]
                                                          : NULL)
               : (q->sc.has_data ? &q->sc.data : NULL);
  if (span) {
    lr->features = q->body + span->start;
    lr->features_len = span->end - span->start;
  } else {
    char *txt = cJSON_PrintUnformatted(s->items[i]);
    s->printed[s->n_printed++] = txt;
    lr->features = txt ? txt : "{}";
    lr->features_len = txt ? strlen(txt) : 2;
  }
  lr->customer_id = ctxt;
  lr->customer_id_len = clen;
  if (label) {
    lr->prediction = label;
  } else {
    snprintf(s->cid[i], CID_TEXT, "%.6g", value);
    lr->prediction = s->cid[i];
  }
  lr->confidence = label ? conf : 0;
  lr->elapsed_ms = elapsed;
  lr->created_us = q->created;
  lr->model = serving_model_name(q->m);
  lr->model_version = serving_model_version(q->m);
}

/* Stage 6: the answer, one object per item, and the items' log rows. */
static int preq_answer(struct preq *q)
{
  struct scratch *s = q->s;
  struct http_resp *resp = q->resp;
  int wrc = 0;
  int elapsed = (int)((mono_ns() - q->t0 + 500000) / 1000000);
  size_t vlen;
  const char *vjson = serving_model_version_json(q->m, &vlen);
  if (q->batch)
    wrc |= W(resp, "[");
  for (size_t i = 0; i < q->n; i++) {
    const char *label, *ctxt;
    double conf, value;
    size_t clen;
    const cJSON *cval;
    int idx = serving_model_decide(q->m, s->out + i * q->od, &label, &conf,
                                   &value);
    customer_id(q->sp, s->items[i], s->cid[i], &ctxt, &clen, &cval);
    if (i)
      wrc |= W(resp, ",");
    wrc |= W(resp, "{\"customer_id\":");
    if (!cval)
      wrc |= W(resp, "null");
    else if (cJSON_IsString(cval))
      wrc |= http_resp_json_str(resp, cval->valuestring);
    else
      wrc |= http_resp_write(resp, ctxt, clen);
    char num[NUMFMT_CAP];
    if (label) {
      wrc |= W(resp, ",\"predict\":");
      wrc |= http_resp_json_str(resp, label);
      wrc |= W(resp, ",\"confidence\":");
      wrc |= http_resp_write(resp, num, numfmt_g9(num, conf));
    } else {
      wrc |= W(resp, ",\"predict\":");
      wrc |= http_resp_write(resp, num, numfmt_g9(num, value));
      wrc |= W(resp, ",\"confidence\":null");
    }
    wrc |= W(resp, ",\"model_version\":");
    wrc |= http_resp_write(resp, vjson, vlen);
    if (q->top_k)
      wrc |= preq_write_explanation(q, i, idx);
    wrc |= W(resp, "}");
    preq_log_row(q, i, ctxt, clen, label, conf, value, elapsed);
    s->cls[i] = idx;
  }
  if (q->batch)
    wrc |= W(resp, "]");
  if (wrc)
    return answer_500_oom(q, "out of memory building the answer");
  return 0;
}

/* Stage 7: log the items (plog), count them, 200. */
static void preq_commit(struct preq *q)
{
  /* the shadow's answers ride in the log rows; its labels until append */
  struct serving_model *sh = q->p->pl ? shadow_predict(q->p->sv, q->m,
                                                       q->s->items, q->n,
                                                       q->s->lrows)
                                      : NULL;
  enum err_code rc = q->p->pl ? plog_append(q->p->pl, q->s->lrows, q->n,
                                            NULL)
                              : ERR_OK;
  serving_release(sh);
  if (rc != ERR_OK) {
    answer_log_full(q);
    return;
  }
  for (size_t i = 0; i < q->n; i++)
    serving_model_count(q->m, q->s->cls[i]);
  if (q->p->c_items)
    metrics_counter_add(q->p->c_items, q->n);
  http_resp_status(q->resp, 200);
}

static void do_predict(struct predict *p, struct http_req *req,
                       struct http_resp *resp, const char *name)
{
  struct preq q = {.p = p, .resp = resp, .t0 = mono_ns(),
                   .created = wall_us()};
  q.s = scratch_get();
  if (!q.s) {
    reject(p, R_INTERNAL);
    http_resp_error(resp, 500, "out of memory");
    return;
  }
  q.s->n_printed = 0;
  if (preq_admit(&q, req, name) != 0)
    return;
  if (preq_parse(&q) == 0 && preq_shape(&q) == 0 && preq_validate(&q) == 0 &&
      preq_predict(&q) == 0 && (!q.top_k || preq_explain(&q) == 0) &&
      preq_answer(&q) == 0)
    preq_commit(&q);
  struct scratch *s = q.s;
  for (size_t i = 0; i < s->n_printed; i++)
    cJSON_free(s->printed[i]);
  s->n_printed = 0;
  /* nodes in the arena need no free; walk the tree only for spills */
  if (q.root && tl_arena.spilled)
    cJSON_Delete(q.root);
  tl_arena.used = 0;
  serving_release(q.m);
}

static void h_predict(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  do_predict(arg, req, resp, NULL);
}

static void h_model_predict(struct http_req *req, struct http_resp *resp,
                            void *arg)
{
  do_predict(arg, req, resp, http_req_param(req, "name"));
}

/* ---- /metadata -------------------------------------------------------- */

static void write_json(struct http_resp *resp, cJSON *o, int status)
{
  char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
  if (!txt) {
    http_resp_error(resp, 500, "out of memory");
    return;
  }
  http_resp_status(resp, status);
  if (http_resp_write(resp, txt, strlen(txt)) != ERR_OK)
    http_resp_error(resp, 500, "out of memory");
  cJSON_free(txt);
}

static void h_metadata(struct http_req *req, struct http_resp *resp,
                       void *arg)
{
  struct predict *p = arg;
  int status = 500;
  const char *name = http_req_param(req, "name");
  if (!name)
    name = http_req_query(req, "model");
  cJSON *o = serving_describe(p->sv, name, &status);
  write_json(resp, o, status);
  cJSON_Delete(o);
}

/* ---- life cycle ------------------------------------------------------- */

enum err_code predict_create(struct predict **out,
                             const struct predict_opts *o, struct err *e)
{
  *out = NULL;
  if (!o || !o->serving)
    return err_set(e, ERR_INVAL, "predict: serving is required");
  struct predict *p = calloc(1, sizeof(*p));
  if (!p)
    return err_set(e, ERR_NOMEM, "predict: out of memory");
  p->sv = o->serving;
  p->pl = o->plog;
  p->m = o->metrics;
  p->max_batch = o->max_batch ? o->max_batch : PREDICT_MAX_BATCH;
  pthread_once(&hooks_once, hooks_init);
  if (p->m) {
    for (int r = 0; r < R_COUNT; r++) {
      const char *lab[] = {"reason", reject_names[r], NULL};
      if (metrics_counter_new(p->m, "mlopsd_predict_rejected_total",
                              "Prediction requests refused, by reason.",
                              lab, METRICS_HIDE_ZERO, &p->c_reject[r],
                              e) != ERR_OK) {
        predict_destroy(p);
        return e->code;
      }
    }
    if (metrics_counter_new(p->m, "mlopsd_predict_items_total",
                            "Items predicted and answered 200.", NULL, 0,
                            &p->c_items, e) != ERR_OK) {
      predict_destroy(p);
      return e->code;
    }
  }
  *out = p;
  return ERR_OK;
}

enum err_code predict_routes(struct predict *p, struct http *srv,
                             struct err *e)
{
  enum err_code rc;
  if ((rc = http_route(srv, "POST", "/predict", h_predict, p, e)) ||
      (rc = http_route(srv, "POST", "/models/{name}/predict",
                       h_model_predict, p, e)) ||
      (rc = http_route(srv, "GET", "/metadata", h_metadata, p, e)) ||
      (rc = http_route(srv, "POST", "/metadata", h_metadata, p, e)) ||
      (rc = http_route(srv, "GET", "/models/{name}/metadata", h_metadata, p,
                       e)))
    return rc;
  return ERR_OK;
}

void predict_destroy(struct predict *p)
{
  free(p);
}
