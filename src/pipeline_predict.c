/* pipeline_predict.c - offline prediction for `mlopsd predict` (see
 * pipeline.h).
 *
 * The server's handler (predict.c) writes its answer straight into an
 * HTTP response and takes its model from the serving set (production
 * versions only), so the CLI cannot call it.  This file loads any
 * version with the server's own loader (serving_model_load: the same
 * bundle, checks and class decision) and answers a body with the same
 * building blocks in the same order (reqjson_scan, the spec's request
 * validation, prep_transform_json, model_predict, serving_model_decide)
 * and the same messages and JSON shape.  The integration test compares
 * the two on the same requests.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/buf.h"
#include "mlopsd/model.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/predict.h"
#include "mlopsd/prep.h"
#include "mlopsd/reqjson.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"

/* The version's bundle as the server loads it (serving_model_load), so
 * the offline answer cannot differ from the online one. */
struct pipeline_served {
  struct serving_model *sm;
};

/* ---- loading ------------------------------------------------------------ */

void pipeline_served_free(struct pipeline_served *m)
{
  if (!m)
    return;
  serving_release(m->sm);
  free(m);
}

const struct spec *pipeline_served_spec(const struct pipeline_served *m)
{
  return serving_model_spec(m->sm);
}
const struct prep *pipeline_served_prep(const struct pipeline_served *m)
{
  return serving_model_prep(m->sm);
}
const struct model *pipeline_served_model(const struct pipeline_served *m)
{
  return serving_model_model(m->sm);
}

enum err_code pipeline_served_load(struct registry *reg,
                                   const char *specs_dir, const char *name,
                                   int version, struct pipeline_served **out,
                                   struct err *e)
{
  *out = NULL;
  struct pipeline_served *m = calloc(1, sizeof(*m));
  if (!m)
    return err_set(e, ERR_NOMEM, "out of memory loading %s", name);
  enum err_code rc = serving_model_load(reg, specs_dir, name, version,
                                        &m->sm, e);
  if (rc) {
    free(m);
    return rc;
  }
  *out = m;
  return ERR_OK;
}

/* ---- a small JSON text builder ------------------------------------------ */

/* Text goes into a struct buf (buf.h): out of memory is sticky and
 * checked once at the end. */
#define SB_LIT(b, lit) buf_add((b), (lit), sizeof(lit) - 1)

/* {"error": msg}, as http_resp_error. */
static void set_error(struct buf *b, const char *fmt, ...) MLOPSD_PRINTF(2, 3);
static void set_error(struct buf *b, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  buf_reset(b);
  SB_LIT(b, "{\"error\":");
  buf_add_jstr(b, msg);
  SB_LIT(b, "}");
}

/* ---- answering ---------------------------------------------------------- */

static void customer_id(struct buf *b, const struct spec *sp,
                        const cJSON *item)
{
  const char *key = sp->source.key ? sp->source.key : "customer_id";
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(item, key);
  if (cJSON_IsString(v)) {
    buf_add_jstr(b, v->valuestring);
  } else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      buf_addf(b, "%lld", (long long)d);
    else
      buf_addf(b, "%.17g", d);
  } else {
    SB_LIT(b, "null");
  }
}

/* One body on its way through pipeline_predict_body's stages (the
 * server's struct preq, without the HTTP response).  Each stage returns 0
 * to go on, 1 when the answer in b is complete (a 400), -1 when out of
 * memory. */
struct pp_req {
  const struct serving_model *sm;
  const struct spec *sp;
  const struct prep *prep;
  size_t nfeat, out_dim;
  struct buf b;                /* the answer */
  struct reqjson_span *spans;
  cJSON *root;
  struct predict_bad bad;      /* a 400 being built */
  const cJSON *data;
  const cJSON **items;
  float *rows, *out;
  struct spec_report *rep;
  size_t n;                    /* items */
  int batch;
};

/* The 400 built in q->bad as the answer (predict_bad_end).  1, as a
 * stage's "answer complete"; -1 when out of memory. */
static int answer_bad(struct pp_req *q)
{
  predict_bad_end(&q->bad);
  buf_reset(&q->b);
  buf_add(&q->b, buf_str(&q->bad.body), q->bad.body.len);
  int bad = buf_error(&q->bad.body) != ERR_OK;
  predict_bad_free(&q->bad);
  return bad ? -1 : 1;
}

/* Stage 1: a non-empty body that scans (reqjson_scan) and parses into
 * a JSON object. */
static int pp_parse(struct pp_req *q, const char *body, size_t len)
{
  size_t ws = 0;
  while (ws < len && (body[ws] == ' ' || body[ws] == '\n' ||
                      body[ws] == '\r' || body[ws] == '\t'))
    ws++;
  if (ws == len) {
    set_error(&q->b, "empty request body: send {\"data\": {...}} or "
                     "{\"data\": [{...}, ...]}");
    return 1;
  }
  q->spans = malloc((PREDICT_MAX_BATCH + 1) * sizeof(*q->spans));
  q->rep = malloc(sizeof(*q->rep));
  if (!q->spans || !q->rep)
    return -1;
  struct reqjson_scan sc = {.items = q->spans,
                            .items_cap = PREDICT_MAX_BATCH + 1};
  if (reqjson_scan(body, len, &sc) != 0) {
    if (strcmp(sc.err, "invalid UTF-8") == 0)
      set_error(&q->b, "request body is not valid UTF-8 (byte %zu)",
                sc.err_pos);
    else
      set_error(&q->b, "malformed JSON: %s at line %d, column %d (byte %zu)",
                sc.err, sc.err_line, sc.err_col, sc.err_pos);
    return 1;
  }
  q->root = cJSON_ParseWithLengthOpts(body, len, NULL, 0);
  if (!q->root)
    return -1;
  if (!cJSON_IsObject(q->root)) {
    set_error(&q->b, "request body must be a JSON object {\"data\": ...}");
    return 1;
  }
  return 0;
}

/* Stage 2, the shape: {"data": {...}} or {"data": [{...}, ...]} with
 * 1..PREDICT_MAX_BATCH items; room for them. */
static int pp_shape(struct pp_req *q)
{
  if (!predict_shape(q->root, PREDICT_MAX_BATCH, &q->bad, &q->data,
                     &q->batch, &q->n, NULL))
    return answer_bad(q);
  q->items = malloc(q->n * sizeof(*q->items));
  q->rows = malloc(q->n * q->nfeat * sizeof(float));
  q->out = malloc(q->n * q->out_dim * sizeof(float));
  if (!q->items || !q->rows || !q->out)
    return -1;
  return 0;
}

/* Stage 3: every item against the spec, every bad field reported; then
 * the version's preprocessing into rows. */
static int pp_validate(struct pp_req *q)
{
  struct spec_report *rep = q->rep;
  size_t i = 0;
  const cJSON *it = q->batch ? q->data->child : q->data;
  for (; it && i < q->n; it = q->batch ? it->next : NULL, i++) {
    q->items[i] = it;
    /* root is our own parse tree, as in the server (predict.c) */
    predict_lax_numbers(q->sp, (cJSON *)it);
    if (spec_validate_request(q->sp, it, rep) == ERR_OK)
      continue;
    for (size_t k = 0; k < rep->n; k++)
      predict_bad_add(&q->bad, "data", i, q->batch, rep->e[k].field,
                      rep->e[k].msg,
                      cJSON_GetObjectItemCaseSensitive(it, rep->e[k].field));
    q->bad.more += rep->n_more;
  }
  if (q->bad.nf || q->bad.more)
    return answer_bad(q);
  for (i = 0; i < q->n; i++) {
    struct err te = {0};
    if (prep_transform_json(q->prep, q->items[i], q->rows + i * q->nfeat,
                            &te) != ERR_OK) {
      predict_bad_add(&q->bad, "data", i, q->batch, "", te.msg, NULL);
      return answer_bad(q);
    }
  }
  return 0;
}

/* The model's input rows and raw outputs as JSON (pipeline.h: rows_out),
 * for `mlopsd predict --rows`; NULL when out of memory. */
static char *pp_rows_json(const struct pp_req *q)
{
  struct buf r = BUF_INIT(BUF_NO_MAX);
  SB_LIT(&r, "{\"columns\":[");
  for (size_t j = 0; j < q->nfeat; j++) {
    if (j)
      SB_LIT(&r, ",");
    buf_add_jstr(&r, prep_output_name(q->prep, j));
  }
  SB_LIT(&r, "],\"rows\":[");
  for (size_t i = 0; i < q->n; i++) {
    buf_add(&r, i ? ",[" : "[", i ? 2u : 1u);
    for (size_t j = 0; j < q->nfeat; j++) {
      float v = q->rows[i * q->nfeat + j];
      if (j)
        SB_LIT(&r, ",");
      if (isnan(v))
        SB_LIT(&r, "null");
      else
        buf_addf(&r, "%.9g", (double)v);
    }
    SB_LIT(&r, "]");
  }
  SB_LIT(&r, "],\"outputs\":[");
  for (size_t i = 0; i < q->n; i++) {
    buf_add(&r, i ? ",[" : "[", i ? 2u : 1u);
    for (size_t k = 0; k < q->out_dim; k++)
      buf_addf(&r, "%s%.9g", k ? "," : "",
               (double)q->out[i * q->out_dim + k]);
    SB_LIT(&r, "]");
  }
  SB_LIT(&r, "]}");
  char *s = buf_error(&r) ? NULL : buf_take(&r, NULL);
  buf_free(&r);
  return s;
}

/* Stage 4, the 200 answer: one object per item (a list for a batch). */
static void pp_answer(struct pp_req *q)
{
  struct buf *b = &q->b;
  size_t vlen;
  const char *vjson = serving_model_version_json(q->sm, &vlen);
  if (q->batch)
    SB_LIT(b, "[");
  for (size_t i = 0; i < q->n; i++) {
    const char *label;
    double conf, value;
    serving_model_decide(q->sm, q->out + i * q->out_dim, &label, &conf,
                         &value);
    if (i)
      SB_LIT(b, ",");
    SB_LIT(b, "{\"customer_id\":");
    customer_id(b, q->sp, q->items[i]);
    if (label) {
      SB_LIT(b, ",\"predict\":");
      buf_add_jstr(b, label);
      buf_addf(b, ",\"confidence\":%.9g", conf);
    } else {
      buf_addf(b, ",\"predict\":%.9g,\"confidence\":null", value);
    }
    SB_LIT(b, ",\"model_version\":");
    buf_add(b, vjson, vlen);
    SB_LIT(b, "}");
  }
  if (q->batch)
    SB_LIT(b, "]");
}

enum err_code pipeline_predict_body(const struct pipeline_served *m,
                                    const char *body, size_t len,
                                    int *status, char **answer,
                                    char **rows_out, struct err *e)
{
  struct pp_req q = {.sm = m->sm, .b = BUF_INIT(BUF_NO_MAX)};
  enum err_code rc = ERR_OK;
  int st;
  q.sp = serving_model_spec(q.sm);
  q.prep = serving_model_prep(q.sm);
  q.nfeat = serving_model_nfeat(q.sm);
  q.out_dim = serving_model_out_dim(q.sm);
  *status = 400;
  *answer = NULL;
  if (rows_out)
    *rows_out = NULL;

  if ((st = pp_parse(&q, body, len)) || (st = pp_shape(&q)) ||
      (st = pp_validate(&q))) {
    if (st < 0)
      goto oom;
    goto done;
  }
  if ((rc = model_predict(serving_model_model(q.sm), q.rows, q.n, q.out,
                          e))) {
    err_prefix(e, "prediction failed");
    goto out;
  }
  if (rows_out && !(*rows_out = pp_rows_json(&q)))
    goto oom;
  pp_answer(&q);
  *status = 200;
done:
  if (buf_error(&q.b) || !(*answer = buf_take(&q.b, NULL)))
    goto oom;
  goto out;
oom:
  rc = err_set(e, ERR_NOMEM, "out of memory answering a prediction");
out:
  if (rc && rows_out) {
    free(*rows_out);
    *rows_out = NULL;
  }
  buf_free(&q.b);
  predict_bad_free(&q.bad); /* holds memory only when cut short */
  free(q.spans);
  free(q.rep);
  free(q.items);
  free(q.rows);
  free(q.out);
  cJSON_Delete(q.root);
  return rc;
}
