/* spec_query.c - reading a loaded spec (spec.h): lookups by name (the
 * feature index is a small open-addressing hash built at load time),
 * names of the enums, and request validation.
 *
 * Request validation (spec_validate_request) runs on the HTTP threads for
 * every prediction: it only reads the spec and writes into the caller's
 * fixed-size report, never allocating.
 */
#include "mlopsd/spec.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec_int.h"

/* ---- the feature-name index -------------------------------------------- */

/* FNV-1a, for the feature-name hash. */
static uint32_t name_hash(const char *k)
{
  uint32_t h = 2166136261u;
  for (; *k; k++)
    h = (h ^ (unsigned char)*k) * 16777619u;
  return h;
}

/* Build s->fmap (at least twice as many slots as features). */
int spec_fmap_build(struct spec *s)
{
  size_t slots = 8;
  while (slots < 2 * s->n_features)
    slots *= 2;
  uint32_t *m = calloc(slots, sizeof(*m));
  if (!m)
    return -1;
  for (size_t i = 0; i < s->n_features; i++) {
    size_t k = name_hash(s->features[i].name) & (slots - 1);
    while (m[k])
      k = (k + 1) & (slots - 1);
    m[k] = (uint32_t)i + 1;
  }
  s->fmap = m;
  s->fmap_mask = slots - 1;
  return 0;
}

/* ---- lookups ---------------------------------------------------------- */

const struct spec *spec_find(struct spec *const *specs, size_t n,
                             const char *name)
{
  for (size_t i = 0; i < n && name; i++)
    if (!strcmp(specs[i]->name, name))
      return specs[i];
  return NULL;
}

int spec_feature_index(const struct spec *s, const char *name)
{
  if (s->fmap && name) {
    for (size_t k = name_hash(name) & s->fmap_mask;;
         k = (k + 1) & s->fmap_mask) {
      uint32_t v = s->fmap[k];
      if (!v)
        return -1;
      if (!strcmp(s->features[v - 1].name, name))
        return (int)v - 1;
    }
  }
  for (size_t i = 0; i < s->n_features && name; i++)
    if (!strcmp(s->features[i].name, name))
      return (int)i;
  return -1;
}

int spec_class_index(const struct spec *s, const char *label)
{
  for (size_t i = 0; i < s->target.n_classes && label; i++)
    if (!strcmp(s->target.classes[i], label))
      return (int)i;
  return -1;
}

const char *spec_param(const struct spec *s, const char *key)
{
  for (size_t i = 0; i < s->n_params; i++)
    if (!strcmp(s->params[i].key, key))
      return s->params[i].value;
  return NULL;
}

const char *spec_grid_value(const struct spec *s, size_t trial, size_t axis)
{
  if (trial >= s->grid_size || axis >= s->n_grid)
    return NULL;
  /* mixed radix, last axis least significant */
  size_t t = trial;
  for (size_t a = s->n_grid; a-- > axis + 1;)
    t /= s->grid[a].n_values;
  return s->grid[axis].values[t % s->grid[axis].n_values];
}

const char *spec_scaling_name(enum spec_scaling sc)
{
  switch (sc) {
  case SPEC_SCALE_ROBUST:
    return "robust";
  case SPEC_SCALE_STANDARD:
    return "standard";
  default:
    return "none";
  }
}

const char *spec_metric_name(enum spec_metric m)
{
  switch (m) {
  case SPEC_METRIC_ACCURACY:
    return "accuracy";
  case SPEC_METRIC_F1_MACRO:
    return "f1_macro";
  case SPEC_METRIC_LOGLOSS:
    return "logloss";
  default:
    return "rmse";
  }
}

const char *spec_task_name(enum spec_task t)
{
  switch (t) {
  case SPEC_TASK_BINARY:
    return "binary";
  case SPEC_TASK_MULTICLASS:
    return "multiclass";
  default:
    return "regression";
  }
}

const char *spec_kind_name(enum spec_kind k)
{
  switch (k) {
  case SPEC_CATEGORICAL:
    return "categorical";
  case SPEC_TEXT:
    return "text";
  default:
    return "numeric";
  }
}

int spec_metric_higher_is_better(enum spec_metric m)
{
  return m == SPEC_METRIC_ACCURACY || m == SPEC_METRIC_F1_MACRO;
}

/* ---- request validation ----------------------------------------------- */

/* cJSON_IsNumber and friends, inline: they are calls into the shared
 * library, a few per member of every request (issue 16). */
#define J_IS(item, t) (((item)->type & 0xFF) == (t))

/* Per HTTP thread: the feature index of the member at each position of
 * the previous request validated against spec (-1: none, -2: the
 * source key), so that a
 * client sending its members in the same order each time (the usual
 * case) costs one strcmp per member instead of the source-key check and
 * the hashed lookup (issue 16: the name lookups were about a tenth of the
 * handler's instructions).  Only a hint: every use is checked by that
 * strcmp, so a stale or foreign entry costs one compare, never a wrong
 * answer. */
#define ORDER_HINTS 64
struct order_hint {
  const struct spec *spec;
  int16_t feat[ORDER_HINTS];
};
static _Thread_local struct order_hint tl_order;

/* Shortest %g form that reads back as the same double. */
static void fmt_num(char *buf, size_t cap, double v)
{
  snprintf(buf, cap, "%.15g", v);
  if (strtod(buf, NULL) != v)
    snprintf(buf, cap, "%.17g", v);
}

MLOPSD_PRINTF(3, 4)
static void report_add(struct spec_report *r, const char *field,
                       const char *fmt, ...)
{
  if (r->n >= SPEC_REPORT_MAX) {
    r->n_more++;
    return;
  }
  struct spec_report_entry *en = &r->e[r->n++];
  snprintf(en->field, sizeof(en->field), "%s", field ? field : "");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(en->msg, sizeof(en->msg), fmt, ap);
  va_end(ap);
}

static void check_numeric(const struct spec_feature *f, const cJSON *v,
                          struct spec_report *r)
{
  char b[40];
  if (!J_IS(v, cJSON_Number) || !isfinite(v->valuedouble)) {
    report_add(r, f->name, "must be a number");
    return;
  }
  double x = v->valuedouble;
  if (f->integer && x != floor(x)) {
    report_add(r, f->name, "must be an integer");
    return;
  }
  if ((f->bounds & SPEC_BOUND_GT) && !(x > f->gt)) {
    fmt_num(b, sizeof(b), f->gt);
    report_add(r, f->name, "must be > %s", b);
  } else if ((f->bounds & SPEC_BOUND_GE) && !(x >= f->ge)) {
    fmt_num(b, sizeof(b), f->ge);
    report_add(r, f->name, "must be >= %s", b);
  } else if ((f->bounds & SPEC_BOUND_LT) && !(x < f->lt)) {
    fmt_num(b, sizeof(b), f->lt);
    report_add(r, f->name, "must be < %s", b);
  } else if ((f->bounds & SPEC_BOUND_LE) && !(x <= f->le)) {
    fmt_num(b, sizeof(b), f->le);
    report_add(r, f->name, "must be <= %s", b);
  }
}

static void check_allowed(const struct spec_feature *f, const char *val,
                          struct spec_report *r)
{
  for (size_t i = 0; i < f->n_allowed; i++)
    if (!strcmp(f->allowed[i], val))
      return;
  char msg[SPEC_REPORT_MSG];
  size_t off = (size_t)snprintf(msg, sizeof(msg), "must be one of ");
  for (size_t i = 0; i < f->n_allowed; i++) {
    const char *sep = i ? ", " : "";
    size_t need = strlen(sep) + strlen(f->allowed[i]);
    if (off + need + 5 >= sizeof(msg)) {
      snprintf(msg + off, sizeof(msg) - off, ", ...");
      break;
    }
    off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s", sep,
                            f->allowed[i]);
  }
  report_add(r, f->name, "%s", msg);
}

enum err_code spec_validate_request(const struct spec *s, const cJSON *obj,
                                    struct spec_report *r)
{
  return spec_validate_request_members(s, obj, r, NULL);
}

enum err_code spec_validate_request_members(const struct spec *s,
                                            const cJSON *obj,
                                            struct spec_report *r,
                                            const cJSON **members)
{
  if (members)
    memset(members, 0, s->n_features * sizeof(*members));
  r->n = 0;
  r->n_more = 0;
  if (!cJSON_IsObject(obj)) {
    report_add(r, "", "must be a JSON object");
    return ERR_INVAL;
  }
  /* one bit per feature: seen in this request (features <= 4096) */
  unsigned char seen[SPEC_FEATURES_MAX / 8];
  memset(seen, 0, (s->n_features + 7) / 8);
  int key_seen = 0;
  struct order_hint *oh = &tl_order;
  if (oh->spec != s) {
    oh->spec = s;
    memset(oh->feat, 0xff, sizeof(oh->feat));
  }
  size_t pos = 0;
  for (const cJSON *m = obj->child; m; m = m->next, pos++) {
    const char *k = m->string ? m->string : "";
    /* the feature at this position in the thread's previous request of
     * this spec; a feature name is never the source key (spec.c) */
    int i = pos < ORDER_HINTS ? oh->feat[pos] : -1;
    if (i < 0 || (size_t)i >= s->n_features ||
        strcmp(s->features[i].name, k) != 0) {
      if (s->source.key && !strcmp(k, s->source.key)) {
        if (pos < ORDER_HINTS)
          oh->feat[pos] = -2; /* not a feature: skip the first strcmp */
        if (key_seen++)
          report_add(r, k, "duplicate field");
        else if (!J_IS(m, cJSON_NULL) && !J_IS(m, cJSON_String) &&
                 !(J_IS(m, cJSON_Number) && isfinite(m->valuedouble)))
          report_add(r, k, "must be a number or a string");
        continue;
      }
      i = spec_feature_index(s, k);
      if (pos < ORDER_HINTS && i >= 0)
        oh->feat[pos] = (int16_t)i;
    }
    if (i < 0) {
      report_add(r, k, "unknown field");
      continue;
    }
    if (seen[i / 8] & (1u << (i % 8))) {
      report_add(r, k, "duplicate field");
      continue;
    }
    seen[i / 8] |= (unsigned char)(1u << (i % 8));
    if (members)
      members[i] = m;
    const struct spec_feature *f = &s->features[i];
    if (J_IS(m, cJSON_NULL)) {
      if (f->required)
        report_add(r, k, "is required");
      continue;
    }
    if (f->kind == SPEC_NUMERIC) {
      check_numeric(f, m, r);
    } else if (!J_IS(m, cJSON_String)) {
      report_add(r, k, "must be a string");
    } else if (f->kind == SPEC_CATEGORICAL && f->n_allowed) {
      check_allowed(f, m->valuestring, r);
    }
  }
  for (size_t i = 0; i < s->n_features; i++)
    if (s->features[i].required && !(seen[i / 8] & (1u << (i % 8))))
      report_add(r, s->features[i].name, "is required");
  return r->n || r->n_more ? ERR_INVAL : ERR_OK;
}

cJSON *spec_report_json(const struct spec_report *r)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  for (size_t i = 0; i < r->n; i++) {
    if (cJSON_GetObjectItemCaseSensitive(o, r->e[i].field))
      continue; /* first message per field wins */
    if (!cJSON_AddStringToObject(o, r->e[i].field, r->e[i].msg)) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  if (r->n_more) {
    char b[64];
    snprintf(b, sizeof(b), "%zu more invalid fields not listed", r->n_more);
    if (!cJSON_AddStringToObject(o, "...", b)) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}
