/* spec.c - load and validate model specs (config/models/NAME.yaml).
 *
 * The YAML file is loaded with libyaml's document API (a node tree with
 * line/column marks), then walked by hand against the schema documented in
 * docs/model-spec.md.  The walk is schema-directed: a scalar is read as a
 * string, number or boolean depending on the key it sits under, so YAML
 * 1.1's surprises (`allowed: [Yes, No]` turning into booleans) cannot
 * happen.  Every problem is reported as FILE:LINE:COL with the dotted path
 * of the offending key; unknown keys are errors so typos do not silently
 * fall back to defaults.
 *
 * Lookups and request validation are in spec_query.c.
 */
#include "mlopsd/spec.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "spec_int.h"
#include "mlopsd/fsx.h"

#define SPEC_LIST_MAX 100000 /* allowed values, classes, grid values */
#define SPEC_GRID_MAX 10000  /* trials in one grid */
#define SPEC_IDENT_MAX 64    /* SQL identifiers */
#define SPEC_CLASS_MAX 64    /* bytes of one class label */

/* ---- small helpers ---------------------------------------------------- */

static void strv_free(char **v, size_t n)
{
  if (!v)
    return;
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* SQL identifier: [A-Za-z_][A-Za-z0-9_]{0,63}. */
static int ident_valid(const char *s)
{
  if (!s || !(isalpha((unsigned char)*s) || *s == '_'))
    return 0;
  size_t n = 0;
  for (; s[n]; n++)
    if (!(isalnum((unsigned char)s[n]) || s[n] == '_'))
      return 0;
  return n <= SPEC_IDENT_MAX;
}

/* table or db.table */
static int table_valid(const char *s)
{
  const char *dot = s ? strchr(s, '.') : NULL;
  if (!dot)
    return ident_valid(s);
  if (strchr(dot + 1, '.') || (size_t)(dot - s) > SPEC_IDENT_MAX)
    return 0;
  char db[SPEC_IDENT_MAX + 1];
  memcpy(db, s, (size_t)(dot - s));
  db[dot - s] = '\0';
  return ident_valid(db) && ident_valid(dot + 1);
}

/* xgboost parameter keys: [A-Za-z_][A-Za-z0-9_]{0,63} as well. */
#define param_key_valid ident_valid

/* ---- parse context ---------------------------------------------------- */

struct sp {
  const char *path;
  yaml_document_t *doc;
  struct err *e;
};

MLOPSD_PRINTF(3, 4)
static enum err_code sp_fail(struct sp *p, const yaml_node_t *n,
                             const char *fmt, ...)
{
  char where[ERR_MSG_MAX];
  snprintf(where, sizeof(where), "%s:%zu:%zu", p->path,
           n ? n->start_mark.line + 1 : 1, n ? n->start_mark.column + 1 : 1);
  va_list ap;
  va_start(ap, fmt);
  enum err_code rc = err_vset_where(p->e, ERR_CONFIG, where, fmt, ap);
  va_end(ap);
  return rc;
}

static yaml_node_t *sp_node(struct sp *p, int id)
{
  return yaml_document_get_node(p->doc, id);
}

static int is_scalar(const yaml_node_t *n)
{
  return n && n->type == YAML_SCALAR_NODE;
}

static const char *scalar(const yaml_node_t *n)
{
  return (const char *)n->data.scalar.value;
}

static int is_null(const yaml_node_t *n)
{
  if (!n)
    return 1;
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  const char *v = scalar(n);
  return !*v || !strcmp(v, "~") || !strcmp(v, "null") ||
         !strcmp(v, "Null") || !strcmp(v, "NULL");
}

/* Look up the keys of mapping node `map` against `keys` (NULL-terminated);
 * vals[i] receives the value node of keys[i] or NULL.  Unknown and
 * duplicate keys are errors. */
static enum err_code sp_map(struct sp *p, yaml_node_t *map, const char *ctx,
                            const char *const *keys, yaml_node_t **vals)
{
  size_t nk = 0;
  while (keys[nk])
    nk++;
  for (size_t i = 0; i < nk; i++)
    vals[i] = NULL;
  if (!map || map->type != YAML_MAPPING_NODE)
    return sp_fail(p, map, "%s: must be a mapping", ctx);
  for (yaml_node_pair_t *pr = map->data.mapping.pairs.start;
       pr < map->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = sp_node(p, pr->key);
    yaml_node_t *v = sp_node(p, pr->value);
    if (!is_scalar(k))
      return sp_fail(p, k, "%s: keys must be plain strings", ctx);
    size_t i;
    for (i = 0; i < nk; i++)
      if (!strcmp(keys[i], scalar(k)))
        break;
    if (i == nk) {
      char allowed[256];
      size_t off = 0;
      allowed[0] = '\0';
      for (size_t j = 0; j < nk && off < sizeof(allowed); j++) {
        int w = snprintf(allowed + off, sizeof(allowed) - off, "%s%s",
                         j ? ", " : "", keys[j]);
        if (w < 0)
          break;
        off += (size_t)w;
      }
      return sp_fail(p, k, "%s: unknown key '%s' (allowed: %s)", ctx,
                     scalar(k), allowed);
    }
    if (vals[i])
      return sp_fail(p, k, "%s: duplicate key '%s'", ctx, scalar(k));
    vals[i] = v;
  }
  return ERR_OK;
}

/* A string scalar (any style); null is an error unless allow_null, in
 * which case *out stays NULL. */
static enum err_code sp_str(struct sp *p, yaml_node_t *n, const char *ctx,
                            int allow_null, char **out)
{
  *out = NULL;
  if (is_null(n) && n && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    if (allow_null)
      return ERR_OK;
    return sp_fail(p, n, "%s: must not be empty", ctx);
  }
  if (!is_scalar(n))
    return sp_fail(p, n, "%s: must be a string", ctx);
  if (strlen(scalar(n)) != n->data.scalar.length)
    return sp_fail(p, n, "%s: must not contain NUL bytes", ctx);
  *out = strdup(scalar(n));
  if (!*out)
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
  return ERR_OK;
}

static enum err_code sp_double(struct sp *p, yaml_node_t *n, const char *ctx,
                               double *out)
{
  if (!is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
      is_null(n))
    return sp_fail(p, n, "%s: must be a number", ctx);
  const char *s = scalar(n);
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end || errno == ERANGE || !isfinite(v) ||
      isspace((unsigned char)*s))
    return sp_fail(p, n, "%s: must be a number, not '%s'", ctx, s);
  *out = v;
  return ERR_OK;
}

static enum err_code sp_int(struct sp *p, yaml_node_t *n, const char *ctx,
                            long long lo, long long hi, long long *out)
{
  if (!is_scalar(n) || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
      is_null(n))
    return sp_fail(p, n, "%s: must be an integer", ctx);
  const char *s = scalar(n);
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (end == s || *end || errno == ERANGE || isspace((unsigned char)*s))
    return sp_fail(p, n, "%s: must be an integer, not '%s'", ctx, s);
  if (v < lo || v > hi)
    return sp_fail(p, n, "%s: must be between %lld and %lld", ctx, lo, hi);
  *out = v;
  return ERR_OK;
}

static enum err_code sp_bool(struct sp *p, yaml_node_t *n, const char *ctx,
                             int *out)
{
  if (is_scalar(n) && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
    const char *s = scalar(n);
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
      *out = 1;
      return ERR_OK;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
      *out = 0;
      return ERR_OK;
    }
  }
  return sp_fail(p, n, "%s: must be true or false", ctx);
}

/* A sequence of string scalars; each must be non-empty and unique. */
static enum err_code sp_strlist(struct sp *p, yaml_node_t *n, const char *ctx,
                                int (*valid)(const char *), const char *what,
                                char ***out, size_t *nout)
{
  *out = NULL;
  *nout = 0;
  if (!n || n->type != YAML_SEQUENCE_NODE)
    return sp_fail(p, n, "%s: must be a list", ctx);
  size_t cnt = (size_t)(n->data.sequence.items.top -
                        n->data.sequence.items.start);
  if (cnt > SPEC_LIST_MAX)
    return sp_fail(p, n, "%s: more than %d entries", ctx, SPEC_LIST_MAX);
  char **v = calloc(cnt ? cnt : 1, sizeof(*v));
  if (!v)
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
  enum err_code rc = ERR_OK;
  size_t i = 0;
  for (yaml_node_item_t *it = n->data.sequence.items.start;
       it < n->data.sequence.items.top; it++, i++) {
    yaml_node_t *c = sp_node(p, *it);
    char sub[160];
    snprintf(sub, sizeof(sub), "%s[%zu]", ctx, i);
    if ((rc = sp_str(p, c, sub, 0, &v[i])) != ERR_OK)
      break;
    if (!*v[i]) {
      rc = sp_fail(p, c, "%s: must not be empty", sub);
      break;
    }
    if (valid && !valid(v[i])) {
      rc = sp_fail(p, c, "%s: '%s' is not a valid %s", sub, v[i], what);
      break;
    }
    for (size_t j = 0; j < i; j++)
      if (!strcmp(v[j], v[i])) {
        rc = sp_fail(p, c, "%s: duplicate value '%s'", sub, v[i]);
        break;
      }
    if (rc)
      break;
  }
  if (rc) {
    strv_free(v, cnt);
    return rc;
  }
  *out = v;
  *nout = cnt;
  return ERR_OK;
}

/* ---- sections --------------------------------------------------------- */

static int class_valid(const char *s)
{
  return strlen(s) <= SPEC_CLASS_MAX;
}

static enum err_code parse_source(struct sp *p, struct spec *s,
                                  yaml_node_t *n)
{
  static const char *const keys[] = {"table", "filter", "key", NULL};
  yaml_node_t *v[3];
  enum err_code rc = sp_map(p, n, "source", keys, v);
  if (rc)
    return rc;
  if (!v[0])
    return sp_fail(p, n, "source: 'table' is required");
  if ((rc = sp_str(p, v[0], "source.table", 0, &s->source.table)))
    return rc;
  if (!table_valid(s->source.table))
    return sp_fail(p, v[0],
                   "source.table: '%s' is not a valid table name "
                   "([A-Za-z_][A-Za-z0-9_]*, optionally db.table)",
                   s->source.table);
  if (v[1]) {
    if ((rc = sp_str(p, v[1], "source.filter", 1, &s->source.filter)))
      return rc;
    /* templates are expanded by the feature store; here only check that
     * every {{ has its }} so a typo is caught at load time */
    const char *f = s->source.filter ? s->source.filter : "";
    for (const char *o = strstr(f, "{{"); o; o = strstr(o, "{{")) {
      const char *c = strstr(o + 2, "}}");
      const char *o2 = strstr(o + 2, "{{");
      if (!c || (o2 && o2 < c))
        return sp_fail(p, v[1], "source.filter: '{{' without '}}'");
      o = c + 2;
    }
  }
  if (v[2]) {
    if ((rc = sp_str(p, v[2], "source.key", 1, &s->source.key)))
      return rc;
    if (s->source.key && !ident_valid(s->source.key))
      return sp_fail(p, v[2], "source.key: '%s' is not a valid column name",
                     s->source.key);
  }
  return ERR_OK;
}

static enum err_code parse_target(struct sp *p, struct spec *s,
                                  yaml_node_t *n)
{
  static const char *const keys[] = {"column", "classes", NULL};
  yaml_node_t *v[2];
  enum err_code rc = sp_map(p, n, "target", keys, v);
  if (rc)
    return rc;
  if (!v[0])
    return sp_fail(p, n, "target: 'column' is required");
  if ((rc = sp_str(p, v[0], "target.column", 0, &s->target.column)))
    return rc;
  if (!ident_valid(s->target.column))
    return sp_fail(p, v[0], "target.column: '%s' is not a valid column name",
                   s->target.column);
  s->task = SPEC_TASK_REGRESSION;
  if (v[1] && !is_null(v[1])) {
    if ((rc = sp_strlist(p, v[1], "target.classes", class_valid,
                         "class label (at most 64 bytes)",
                         &s->target.classes, &s->target.n_classes)))
      return rc;
    if (s->target.n_classes < 2)
      return sp_fail(p, v[1],
                     "target.classes: needs at least 2 classes (omit it "
                     "for a numeric target)");
    s->task = s->target.n_classes == 2 ? SPEC_TASK_BINARY
                                       : SPEC_TASK_MULTICLASS;
  }
  return ERR_OK;
}

static enum err_code feature_bound(struct sp *p, yaml_node_t *n,
                                   const char *ctx, const char *key,
                                   struct spec_feature *f, unsigned bit,
                                   double *slot)
{
  if (!n)
    return ERR_OK;
  char sub[160];
  snprintf(sub, sizeof(sub), "%s.%s", ctx, key);
  if (f->bounds & bit)
    return sp_fail(p, n, "%s: %s", sub,
                   bit == SPEC_BOUND_GE ? "give one of min and ge"
                                        : "give one of max and le");
  enum err_code rc = sp_double(p, n, sub, slot);
  if (rc)
    return rc;
  f->bounds |= bit;
  return ERR_OK;
}

static enum err_code parse_vocab_opts(struct sp *p, const char *ctx,
                                      yaml_node_t *mc, yaml_node_t *mv,
                                      struct spec_feature *f)
{
  long long x;
  char sub[160];
  enum err_code rc;
  f->min_count = 1;
  f->max_vocab = 1000;
  if (mc) {
    snprintf(sub, sizeof(sub), "%s.min_count", ctx);
    if ((rc = sp_int(p, mc, sub, 1, 1000000000, &x)))
      return rc;
    f->min_count = (size_t)x;
  }
  if (mv) {
    snprintf(sub, sizeof(sub), "%s.max_vocab", ctx);
    if ((rc = sp_int(p, mv, sub, 1, 100000, &x)))
      return rc;
    f->max_vocab = (size_t)x;
  }
  return ERR_OK;
}

static enum err_code parse_feature(struct sp *p, yaml_node_t *n,
                                   enum spec_kind kind, const char *ctx,
                                   struct spec_feature *f)
{
  static const char *const knum[] = {"name",  "description", "scaling",
                                     "min",   "max",         "gt",
                                     "ge",    "lt",          "le",
                                     "integer", "required",  NULL};
  static const char *const kcat[] = {"name",      "description", "allowed",
                                     "required",  "min_count",   "max_vocab",
                                     NULL};
  static const char *const ktxt[] = {"name",      "description", "delimiters",
                                     "required",  "min_count",   "max_vocab",
                                     NULL};
  yaml_node_t *v[12];
  enum err_code rc;
  char sub[160];
  f->kind = kind;
  f->required = 1;
  f->min_count = 1;
  f->max_vocab = 1000;
  if (is_scalar(n) && !is_null(n)) {
    /* shorthand: a bare name takes every default */
    if (kind == SPEC_TEXT)
      return sp_fail(p, n, "%s: a text feature needs 'delimiters'", ctx);
    if ((rc = sp_str(p, n, ctx, 0, &f->name)))
      return rc;
    if (!ident_valid(f->name))
      return sp_fail(p, n, "%s: '%s' is not a valid column name", ctx,
                     f->name);
    return ERR_OK;
  }
  const char *const *keys = kind == SPEC_NUMERIC       ? knum
                            : kind == SPEC_CATEGORICAL ? kcat
                                                       : ktxt;
  if ((rc = sp_map(p, n, ctx, keys, v)))
    return rc;
  if (!v[0])
    return sp_fail(p, n, "%s: 'name' is required", ctx);
  snprintf(sub, sizeof(sub), "%s.name", ctx);
  if ((rc = sp_str(p, v[0], sub, 0, &f->name)))
    return rc;
  if (!ident_valid(f->name))
    return sp_fail(p, v[0], "%s: '%s' is not a valid column name", sub,
                   f->name);
  if (v[1]) {
    snprintf(sub, sizeof(sub), "%s.description", ctx);
    if ((rc = sp_str(p, v[1], sub, 1, &f->description)))
      return rc;
  }
  if (kind == SPEC_NUMERIC) {
    if (v[2]) {
      snprintf(sub, sizeof(sub), "%s.scaling", ctx);
      char *sc = NULL;
      if ((rc = sp_str(p, v[2], sub, 0, &sc)))
        return rc;
      if (!strcmp(sc, "robust"))
        f->scaling = SPEC_SCALE_ROBUST;
      else if (!strcmp(sc, "standard"))
        f->scaling = SPEC_SCALE_STANDARD;
      else if (!strcmp(sc, "none"))
        f->scaling = SPEC_SCALE_NONE;
      else {
        rc = sp_fail(p, v[2], "%s: must be one of robust, standard, none",
                     sub);
        free(sc);
        return rc;
      }
      free(sc);
    }
    /* min == ge and max == le: inclusive; gt and lt exclusive */
    if ((rc = feature_bound(p, v[3], ctx, "min", f, SPEC_BOUND_GE, &f->ge)) ||
        (rc = feature_bound(p, v[6], ctx, "ge", f, SPEC_BOUND_GE, &f->ge)) ||
        (rc = feature_bound(p, v[4], ctx, "max", f, SPEC_BOUND_LE, &f->le)) ||
        (rc = feature_bound(p, v[8], ctx, "le", f, SPEC_BOUND_LE, &f->le)) ||
        (rc = feature_bound(p, v[5], ctx, "gt", f, SPEC_BOUND_GT, &f->gt)) ||
        (rc = feature_bound(p, v[7], ctx, "lt", f, SPEC_BOUND_LT, &f->lt)))
      return rc;
    if ((f->bounds & SPEC_BOUND_GT) && (f->bounds & SPEC_BOUND_GE))
      return sp_fail(p, n, "%s: give one of gt and ge/min", ctx);
    if ((f->bounds & SPEC_BOUND_LT) && (f->bounds & SPEC_BOUND_LE))
      return sp_fail(p, n, "%s: give one of lt and le/max", ctx);
    double lo = f->bounds & SPEC_BOUND_GT   ? f->gt
                : f->bounds & SPEC_BOUND_GE ? f->ge
                                            : -INFINITY;
    double hi = f->bounds & SPEC_BOUND_LT   ? f->lt
                : f->bounds & SPEC_BOUND_LE ? f->le
                                            : INFINITY;
    int open = (f->bounds & (SPEC_BOUND_GT | SPEC_BOUND_LT)) != 0;
    if (lo > hi || (open && lo == hi))
      return sp_fail(p, n, "%s: the bounds admit no value", ctx);
    if (v[9]) {
      snprintf(sub, sizeof(sub), "%s.integer", ctx);
      if ((rc = sp_bool(p, v[9], sub, &f->integer)))
        return rc;
    }
    if (v[10]) {
      snprintf(sub, sizeof(sub), "%s.required", ctx);
      if ((rc = sp_bool(p, v[10], sub, &f->required)))
        return rc;
    }
    return ERR_OK;
  }
  /* categorical and text share required / min_count / max_vocab slots */
  if (v[3]) {
    snprintf(sub, sizeof(sub), "%s.required", ctx);
    if ((rc = sp_bool(p, v[3], sub, &f->required)))
      return rc;
  }
  if ((rc = parse_vocab_opts(p, ctx, v[4], v[5], f)))
    return rc;
  if (kind == SPEC_CATEGORICAL) {
    if (v[2] && !is_null(v[2])) {
      snprintf(sub, sizeof(sub), "%s.allowed", ctx);
      if ((rc = sp_strlist(p, v[2], sub, NULL, NULL, &f->allowed,
                           &f->n_allowed)))
        return rc;
      if (!f->n_allowed)
        return sp_fail(p, v[2], "%s: must not be empty (omit it to allow "
                                "any value)", sub);
    }
    return ERR_OK;
  }
  snprintf(sub, sizeof(sub), "%s.delimiters", ctx);
  if (!v[2])
    return sp_fail(p, n, "%s: 'delimiters' is required", ctx);
  if ((rc = sp_str(p, v[2], sub, 0, &f->delimiters)))
    return rc;
  if (!*f->delimiters)
    return sp_fail(p, v[2], "%s: must not be empty", sub);
  for (const char *c = f->delimiters; *c; c++)
    if ((unsigned char)*c >= 0x80)
      return sp_fail(p, v[2], "%s: must be ASCII characters", sub);
  return ERR_OK;
}

static enum err_code parse_features(struct sp *p, struct spec *s,
                                    yaml_node_t *n)
{
  static const char *const keys[] = {"numeric", "categorical", "text", NULL};
  static const enum spec_kind kinds[3] = {SPEC_NUMERIC, SPEC_CATEGORICAL,
                                          SPEC_TEXT};
  yaml_node_t *v[3];
  enum err_code rc = sp_map(p, n, "features", keys, v);
  if (rc)
    return rc;
  size_t total = 0;
  for (int k = 0; k < 3; k++) {
    if (!v[k] || is_null(v[k]))
      continue;
    if (v[k]->type != YAML_SEQUENCE_NODE)
      return sp_fail(p, v[k], "features.%s: must be a list", keys[k]);
    total += (size_t)(v[k]->data.sequence.items.top -
                      v[k]->data.sequence.items.start);
  }
  if (!total)
    return sp_fail(p, n, "features: declares no feature");
  if (total > SPEC_FEATURES_MAX)
    return sp_fail(p, n, "features: more than %d features",
                   SPEC_FEATURES_MAX);
  s->features = calloc(total, sizeof(*s->features));
  if (!s->features)
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
  for (int k = 0; k < 3; k++) {
    if (!v[k] || is_null(v[k]))
      continue;
    size_t i = 0;
    for (yaml_node_item_t *it = v[k]->data.sequence.items.start;
         it < v[k]->data.sequence.items.top; it++, i++) {
      yaml_node_t *fn = sp_node(p, *it);
      char ctx[96];
      snprintf(ctx, sizeof(ctx), "features.%s[%zu]", keys[k], i);
      struct spec_feature *f = &s->features[s->n_features++];
      if ((rc = parse_feature(p, fn, kinds[k], ctx, f)))
        return rc;
      for (size_t j = 0; j + 1 < s->n_features; j++)
        if (!strcmp(s->features[j].name, f->name))
          return sp_fail(p, fn, "%s: feature '%s' is declared twice", ctx,
                         f->name);
      if (!strcmp(f->name, s->target.column))
        return sp_fail(p, fn, "%s: '%s' is the target column", ctx,
                       f->name);
      if (s->source.key && !strcmp(f->name, s->source.key))
        return sp_fail(p, fn, "%s: '%s' is the source key, not a feature",
                       ctx, f->name);
      if (kinds[k] == SPEC_NUMERIC)
        s->n_numeric++;
      else if (kinds[k] == SPEC_CATEGORICAL)
        s->n_categorical++;
      else
        s->n_text++;
    }
  }
  return ERR_OK;
}

static enum err_code add_param(struct sp *p, struct spec *s, size_t *cap,
                               const char *key, const char *value)
{
  if (s->n_params == *cap) {
    size_t nc = *cap ? *cap * 2 : 16;
    struct spec_param *np = realloc(s->params, nc * sizeof(*np));
    if (!np)
      return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
    s->params = np;
    *cap = nc;
  }
  struct spec_param *pp = &s->params[s->n_params];
  pp->key = strdup(key);
  pp->value = strdup(value);
  if (!pp->key || !pp->value) {
    free(pp->key);
    free(pp->value);
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
  }
  s->n_params++;
  return ERR_OK;
}

/* Parameters the daemon owns: setting them in a spec would be ignored or
 * contradict the target, so they are refused with the reason. */
static const char *param_reserved(const char *key)
{
  if (!strcmp(key, "nthread") || !strcmp(key, "n_jobs"))
    return "is set by the daemon (training threads setting)";
  if (!strcmp(key, "num_class"))
    return "is derived from target.classes";
  return NULL;
}

static enum err_code parse_params(struct sp *p, struct spec *s,
                                  yaml_node_t *n, size_t *cap)
{
  if (!n || n->type != YAML_MAPPING_NODE)
    return sp_fail(p, n, "xgboost.params: must be a mapping");
  enum err_code rc;
  for (yaml_node_pair_t *pr = n->data.mapping.pairs.start;
       pr < n->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = sp_node(p, pr->key);
    yaml_node_t *v = sp_node(p, pr->value);
    if (!is_scalar(k) || !param_key_valid(scalar(k)))
      return sp_fail(p, k, "xgboost.params: keys must be parameter names");
    const char *key = scalar(k);
    const char *why = param_reserved(key);
    if (why)
      return sp_fail(p, k, "xgboost.params.%s: %s", key, why);
    for (size_t j = 0; j < s->n_params; j++)
      if (!strcmp(s->params[j].key, key))
        return sp_fail(p, k, "xgboost.params: duplicate key '%s'", key);
    char ctx[128];
    snprintf(ctx, sizeof(ctx), "xgboost.params.%s", key);
    if (v && v->type == YAML_SEQUENCE_NODE) {
      char **vals;
      size_t nv;
      if ((rc = sp_strlist(p, v, ctx, NULL, NULL, &vals, &nv)))
        return rc;
      if (!nv) {
        strv_free(vals, nv);
        return sp_fail(p, v, "%s: must not be empty", ctx);
      }
      for (size_t j = 0; j < nv && !rc; j++)
        rc = add_param(p, s, cap, key, vals[j]);
      strv_free(vals, nv);
      if (rc)
        return rc;
      continue;
    }
    char *val;
    if ((rc = sp_str(p, v, ctx, 0, &val)))
      return rc;
    rc = add_param(p, s, cap, key, val);
    free(val);
    if (rc)
      return rc;
  }
  return ERR_OK;
}

static enum err_code check_objective(struct sp *p, struct spec *s,
                                     yaml_node_t *at, size_t *cap)
{
  const char *obj = spec_param(s, "objective");
  const char *want = s->task == SPEC_TASK_MULTICLASS ? "multi:softprob"
                     : s->task == SPEC_TASK_BINARY   ? "binary:logistic"
                                                     : "reg:squarederror";
  if (!obj) {
    /* keep objective first: it decides how XGBoost reads the rest */
    enum err_code rc = add_param(p, s, cap, "objective", want);
    if (rc)
      return rc;
    struct spec_param last = s->params[s->n_params - 1];
    memmove(s->params + 1, s->params,
            (s->n_params - 1) * sizeof(*s->params));
    s->params[0] = last;
    return ERR_OK;
  }
  if (s->task == SPEC_TASK_MULTICLASS && strcmp(obj, "multi:softprob"))
    return sp_fail(p, at,
                   "xgboost.params.objective: a multi-class target needs "
                   "multi:softprob (probabilities), not %s", obj);
  if (s->task == SPEC_TASK_BINARY && strcmp(obj, "binary:logistic"))
    return sp_fail(p, at,
                   "xgboost.params.objective: a 2-class target needs "
                   "binary:logistic (probabilities), not %s", obj);
  if (s->task == SPEC_TASK_REGRESSION && strncmp(obj, "reg:", 4))
    return sp_fail(p, at,
                   "xgboost.params.objective: a target without classes "
                   "needs a reg:* objective, not %s", obj);
  return ERR_OK;
}

static enum err_code parse_xgboost(struct sp *p, struct spec *s,
                                   yaml_node_t *n)
{
  static const char *const keys[] = {"params", "num_boost_round",
                                     "early_stopping_rounds", NULL};
  yaml_node_t *v[3];
  size_t cap = 0;
  enum err_code rc;
  long long x;
  s->num_boost_round = 100;
  s->early_stopping_rounds = 0;
  if (n) {
    if ((rc = sp_map(p, n, "xgboost", keys, v)))
      return rc;
    if (v[0] && !is_null(v[0]) && (rc = parse_params(p, s, v[0], &cap)))
      return rc;
    if (v[1]) {
      if ((rc = sp_int(p, v[1], "xgboost.num_boost_round", 1, 100000, &x)))
        return rc;
      s->num_boost_round = (int)x;
    }
    if (v[2]) {
      if ((rc = sp_int(p, v[2], "xgboost.early_stopping_rounds", 0, 100000,
                       &x)))
        return rc;
      s->early_stopping_rounds = (int)x;
    }
  } else {
    v[0] = NULL;
  }
  return check_objective(p, s, v[0] ? v[0] : n, &cap);
}

static enum err_code parse_search(struct sp *p, struct spec *s,
                                  yaml_node_t *n)
{
  static const char *const keys[] = {"grid", NULL};
  yaml_node_t *v[1];
  enum err_code rc = sp_map(p, n, "search", keys, v);
  if (rc)
    return rc;
  if (!v[0] || is_null(v[0]))
    return ERR_OK;
  yaml_node_t *g = v[0];
  if (g->type != YAML_MAPPING_NODE)
    return sp_fail(p, g, "search.grid: must be a mapping of lists");
  size_t na = (size_t)(g->data.mapping.pairs.top -
                       g->data.mapping.pairs.start);
  s->grid = calloc(na ? na : 1, sizeof(*s->grid));
  if (!s->grid)
    return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
  for (yaml_node_pair_t *pr = g->data.mapping.pairs.start;
       pr < g->data.mapping.pairs.top; pr++) {
    yaml_node_t *k = sp_node(p, pr->key);
    yaml_node_t *val = sp_node(p, pr->value);
    if (!is_scalar(k) || !param_key_valid(scalar(k)))
      return sp_fail(p, k, "search.grid: keys must be parameter names");
    const char *key = scalar(k);
    const char *why = param_reserved(key);
    if (why)
      return sp_fail(p, k, "search.grid.%s: %s", key, why);
    if (!strcmp(key, "objective"))
      return sp_fail(p, k, "search.grid.objective: the objective follows "
                           "the target and cannot be searched");
    for (size_t j = 0; j < s->n_grid; j++)
      if (!strcmp(s->grid[j].key, key))
        return sp_fail(p, k, "search.grid: duplicate key '%s'", key);
    struct spec_grid_axis *a = &s->grid[s->n_grid];
    if (!(a->key = strdup(key)))
      return err_set(p->e, ERR_NOMEM, "%s: out of memory", p->path);
    s->n_grid++;
    char ctx[128];
    snprintf(ctx, sizeof(ctx), "search.grid.%s", key);
    if ((rc = sp_strlist(p, val, ctx, NULL, NULL, &a->values,
                         &a->n_values)))
      return rc;
    if (!a->n_values)
      return sp_fail(p, val, "%s: must not be empty", ctx);
    if (s->grid_size > SPEC_GRID_MAX / a->n_values)
      return sp_fail(p, val, "search.grid: more than %d trials",
                     SPEC_GRID_MAX);
    s->grid_size *= a->n_values;
  }
  return ERR_OK;
}

static enum err_code parse_selection(struct sp *p, struct spec *s,
                                     yaml_node_t *n)
{
  static const char *const keys[] = {"metric", NULL};
  yaml_node_t *v[1];
  s->metric = s->task == SPEC_TASK_REGRESSION ? SPEC_METRIC_RMSE
                                              : SPEC_METRIC_ACCURACY;
  if (!n)
    return ERR_OK;
  enum err_code rc = sp_map(p, n, "selection", keys, v);
  if (rc || !v[0])
    return rc;
  char *m;
  if ((rc = sp_str(p, v[0], "selection.metric", 0, &m)))
    return rc;
  int ok = 1;
  if (!strcmp(m, "accuracy"))
    s->metric = SPEC_METRIC_ACCURACY;
  else if (!strcmp(m, "f1_macro"))
    s->metric = SPEC_METRIC_F1_MACRO;
  else if (!strcmp(m, "logloss"))
    s->metric = SPEC_METRIC_LOGLOSS;
  else if (!strcmp(m, "rmse"))
    s->metric = SPEC_METRIC_RMSE;
  else
    ok = 0;
  free(m);
  if (!ok)
    return sp_fail(p, v[0], "selection.metric: must be one of accuracy, "
                            "f1_macro, logloss, rmse");
  int reg = s->task == SPEC_TASK_REGRESSION;
  if (reg != (s->metric == SPEC_METRIC_RMSE))
    return sp_fail(p, v[0], "selection.metric: %s does not fit a %s target",
                   spec_metric_name(s->metric), spec_task_name(s->task));
  return ERR_OK;
}

static enum err_code parse_split(struct sp *p, struct spec *s, yaml_node_t *n)
{
  static const char *const keys[] = {"val_fraction", "seed", "stratify",
                                     "gate_fraction", "group_by", NULL};
  yaml_node_t *v[5];
  s->val_fraction = 0.3;
  s->gate_fraction = 0;
  s->seed = 42;
  s->stratify = 0;
  if (!n)
    return ERR_OK;
  enum err_code rc = sp_map(p, n, "split", keys, v);
  if (rc)
    return rc;
  if (v[0]) {
    if ((rc = sp_double(p, v[0], "split.val_fraction", &s->val_fraction)))
      return rc;
    if (!(s->val_fraction > 0 && s->val_fraction < 1))
      return sp_fail(p, v[0], "split.val_fraction: must be > 0 and < 1");
  }
  if (v[1]) {
    /* strtoull would accept "-1"; require plain digits */
    const char *t = is_scalar(v[1]) ? scalar(v[1]) : "";
    char *end;
    errno = 0;
    unsigned long long x = strtoull(t, &end, 10);
    if (!is_scalar(v[1]) ||
        v[1]->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        !isdigit((unsigned char)*t) || *end || errno == ERANGE)
      return sp_fail(p, v[1], "split.seed: must be an integer >= 0");
    s->seed = x;
  }
  if (v[2] && (rc = sp_bool(p, v[2], "split.stratify", &s->stratify)))
    return rc;
  if (s->stratify && s->task == SPEC_TASK_REGRESSION)
    return sp_fail(p, v[2], "split.stratify: needs target.classes");
  if (v[3]) {
    if ((rc = sp_double(p, v[3], "split.gate_fraction", &s->gate_fraction)))
      return rc;
    if (!(s->gate_fraction >= 0 && s->gate_fraction < 1))
      return sp_fail(p, v[3], "split.gate_fraction: must be >= 0 and < 1");
  }
  if (v[4]) {
    if ((rc = sp_str(p, v[4], "split.group_by", 0, &s->group_by)))
      return rc;
    if (!(s->source.key && !strcmp(s->group_by, s->source.key)) &&
        spec_feature_index(s, s->group_by) < 0)
      return sp_fail(p, v[4],
                     "split.group_by: '%s' is neither source.key nor a "
                     "feature",
                     s->group_by);
  }
  return ERR_OK;
}

static enum err_code parse_validate(struct sp *p, struct spec *s,
                                    yaml_node_t *n)
{
  static const char *const keys[] = {"tolerance", "max_regression",
                                     "confidence", NULL};
  yaml_node_t *v[3];
  s->tolerance = 0;
  s->max_regression = 0.02;
  s->confidence = 0.95;
  if (!n)
    return ERR_OK;
  enum err_code rc = sp_map(p, n, "validate", keys, v);
  if (rc)
    return rc;
  if (v[0]) {
    if ((rc = sp_double(p, v[0], "validate.tolerance", &s->tolerance)))
      return rc;
    if (s->tolerance < 0)
      return sp_fail(p, v[0], "validate.tolerance: must be >= 0");
  }
  if (v[1]) {
    if ((rc = sp_double(p, v[1], "validate.max_regression",
                        &s->max_regression)))
      return rc;
    if (!(s->max_regression >= 0 && s->max_regression < 1))
      return sp_fail(p, v[1], "validate.max_regression: must be >= 0 and "
                              "< 1");
  }
  if (v[2]) {
    if ((rc = sp_double(p, v[2], "validate.confidence", &s->confidence)))
      return rc;
    if (!(s->confidence >= 0.5 && s->confidence < 1))
      return sp_fail(p, v[2], "validate.confidence: must be >= 0.5 and < 1");
  }
  return ERR_OK;
}

static enum err_code parse_window(struct sp *p, struct spec *s,
                                  yaml_node_t *n)
{
  static const char *const keys[] = {"days", "rows", "column", NULL};
  yaml_node_t *v[3];
  long long x;
  enum err_code rc = sp_map(p, n, "train_window", keys, v);
  if (rc)
    return rc;
  if (!v[0] == !v[1])
    return sp_fail(p, n, "train_window: give exactly one of days and rows");
  if (!v[2])
    return sp_fail(p, n, "train_window: 'column' is required (the date "
                         "column the window counts back on)");
  if (v[0]) {
    if ((rc = sp_int(p, v[0], "train_window.days", 1, 36600, &x)))
      return rc;
    s->window.days = (long)x;
  } else {
    if ((rc = sp_int(p, v[1], "train_window.rows", 2, 100000000, &x)))
      return rc;
    s->window.rows = (long)x;
  }
  if ((rc = sp_str(p, v[2], "train_window.column", 0, &s->window.column)))
    return rc;
  if (!ident_valid(s->window.column))
    return sp_fail(p, v[2], "train_window.column: '%s' is not a valid "
                            "column name",
                   s->window.column);
  return ERR_OK;
}

static enum err_code parse_weights(struct sp *p, struct spec *s,
                                   yaml_node_t *n)
{
  char *w;
  enum err_code rc = sp_str(p, n, "weights", 0, &w);
  if (rc)
    return rc;
  int ok = 1;
  if (!strcmp(w, "balanced"))
    s->weights_balanced = 1;
  else if (strcmp(w, "none"))
    ok = 0;
  free(w);
  if (!ok)
    return sp_fail(p, n, "weights: must be balanced or none");
  if (s->weights_balanced && s->task == SPEC_TASK_REGRESSION)
    return sp_fail(p, n, "weights: balanced needs target.classes");
  return ERR_OK;
}

static enum err_code parse_drop(struct sp *p, struct spec *s, yaml_node_t *n)
{
  if (!n || is_null(n))
    return ERR_OK;
  enum err_code rc = sp_strlist(p, n, "drop", ident_valid, "column name",
                                &s->drop, &s->n_drop);
  if (rc)
    return rc;
  for (size_t i = 0; i < s->n_drop; i++) {
    if (spec_feature_index(s, s->drop[i]) >= 0)
      return sp_fail(p, n, "drop: '%s' is also a feature", s->drop[i]);
    if (!strcmp(s->drop[i], s->target.column))
      return sp_fail(p, n, "drop: '%s' is the target column", s->drop[i]);
  }
  return ERR_OK;
}

/* basename without .yaml / .yml */
static void path_stem(const char *path, char *out, size_t cap)
{
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  if (n > 5 && !strcmp(b + n - 5, ".yaml"))
    n -= 5;
  else if (n > 4 && !strcmp(b + n - 4, ".yml"))
    n -= 4;
  if (n >= cap)
    n = cap - 1;
  memcpy(out, b, n);
  out[n] = '\0';
}

static enum err_code parse_root(struct sp *p, struct spec *s,
                                yaml_node_t *root)
{
  static const char *const keys[] = {
      "name",     "description", "source", "target",    "drop",     "features",
      "xgboost",  "search",      "selection", "split",  "validate",
      "train_window", "weights", NULL};
  yaml_node_t *v[13];
  enum err_code rc = sp_map(p, root, "spec", keys, v);
  if (rc)
    return rc;
  static const char *const need[] = {"name", "source", "target", "features"};
  static const int need_i[] = {0, 2, 3, 5};
  for (int i = 0; i < 4; i++)
    if (!v[need_i[i]])
      return sp_fail(p, root, "'%s' is required", need[i]);
  if ((rc = sp_str(p, v[0], "name", 0, &s->name)))
    return rc;
  char stem[SPEC_NAME_MAX + 2];
  path_stem(p->path, stem, sizeof(stem));
  if (!fsx_name_valid(s->name))
    return sp_fail(p, v[0],
                   "name: '%s' is not a valid model name "
                   "([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, no '..')", s->name);
  if (strcmp(s->name, stem))
    return sp_fail(p, v[0], "name: '%s' must equal the file name '%s'",
                   s->name, stem);
  if (v[1] && (rc = sp_str(p, v[1], "description", 1, &s->description)))
    return rc;
  s->grid_size = 1;
  if ((rc = parse_source(p, s, v[2])) || (rc = parse_target(p, s, v[3])))
    return rc;
  if (s->source.key && !strcmp(s->source.key, s->target.column))
    return sp_fail(p, v[2], "source.key: '%s' is the target column",
                   s->source.key);
  if ((rc = parse_features(p, s, v[5])) || (rc = parse_drop(p, s, v[4])) ||
      (rc = parse_xgboost(p, s, v[6])))
    return rc;
  if (v[7] && !is_null(v[7]) && (rc = parse_search(p, s, v[7])))
    return rc;
  if ((rc = parse_selection(p, s, v[8])) || (rc = parse_split(p, s, v[9])) ||
      (rc = parse_validate(p, s, v[10])))
    return rc;
  if (v[11] && (rc = parse_window(p, s, v[11])))
    return rc;
  if (v[12] && (rc = parse_weights(p, s, v[12])))
    return rc;
  return ERR_OK;
}

/* ---- load / destroy --------------------------------------------------- */

void spec_destroy(struct spec *s)
{
  if (!s)
    return;
  free(s->path);
  free(s->name);
  free(s->description);
  free(s->source.table);
  free(s->source.filter);
  free(s->source.key);
  free(s->group_by);
  free(s->window.column);
  free(s->target.column);
  strv_free(s->target.classes, s->target.n_classes);
  strv_free(s->drop, s->n_drop);
  for (size_t i = 0; i < s->n_features; i++) {
    struct spec_feature *f = &s->features[i];
    free(f->name);
    free(f->description);
    strv_free(f->allowed, f->n_allowed);
    free(f->delimiters);
  }
  free(s->features);
  for (size_t i = 0; i < s->n_params; i++) {
    free(s->params[i].key);
    free(s->params[i].value);
  }
  free(s->params);
  for (size_t i = 0; i < s->n_grid; i++) {
    free(s->grid[i].key);
    strv_free(s->grid[i].values, s->grid[i].n_values);
  }
  free(s->grid);
  free(s->fmap);
  free(s);
}

void spec_free_all(struct spec **specs, size_t n)
{
  if (!specs)
    return;
  for (size_t i = 0; i < n; i++)
    spec_destroy(specs[i]);
  free(specs);
}

enum err_code spec_load_buf(const char *path, const char *buf, size_t len,
                            struct spec **out, struct err *e)
{
  *out = NULL;
  if (len > SPEC_FILE_MAX)
    return err_set(e, ERR_IO, "%s: larger than %u bytes", path,
                   SPEC_FILE_MAX);
  struct spec *s = calloc(1, sizeof(*s));
  if (!s || !(s->path = strdup(path))) {
    free(s);
    return err_set(e, ERR_NOMEM, "%s: out of memory", path);
  }
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_buf(buf, len, d);
  sha256_hex(d, s->sha256);

  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    spec_destroy(s);
    return err_set(e, ERR_NOMEM, "%s: out of memory", path);
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
  if (!yaml_parser_load(&parser, &doc)) {
    enum err_code rc = err_set(
        e, ERR_PARSE, "%s:%zu:%zu: YAML: %s%s%s", path,
        parser.problem_mark.line + 1, parser.problem_mark.column + 1,
        parser.problem ? parser.problem : "syntax error",
        parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    spec_destroy(s);
    return rc;
  }
  struct sp p = {.path = path, .doc = &doc, .e = e};
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  enum err_code rc;
  if (!root || is_null(root))
    rc = err_set(e, ERR_CONFIG, "%s:1:1: empty spec", path);
  else
    rc = parse_root(&p, s, root);
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (rc == ERR_OK && spec_fmap_build(s) != 0)
    rc = err_set(e, ERR_NOMEM, "%s: out of memory", path);
  if (rc) {
    spec_destroy(s);
    return rc;
  }
  *out = s;
  return ERR_OK;
}

enum err_code spec_load(const char *path, struct spec **out, struct err *e)
{
  *out = NULL;
  char *buf;
  size_t len;
  enum err_code rc = fsx_read(path, SPEC_FILE_MAX, 0, &buf, &len, e);
  if (rc)
    return rc;
  rc = spec_load_buf(path, buf, len, out, e);
  free(buf);
  return rc;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

enum err_code spec_load_dir(const char *dir, struct spec ***out, size_t *n,
                            struct err *e)
{
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO, "%s: %s", dir,
                   strerror(errno));
  char **names = NULL;
  size_t nn = 0, cap = 0;
  enum err_code rc = ERR_OK;
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *nm = de->d_name;
    size_t l = strlen(nm);
    if (nm[0] == '.')
      continue;
    if (!((l > 5 && !strcmp(nm + l - 5, ".yaml")) ||
          (l > 4 && !strcmp(nm + l - 4, ".yml"))))
      continue;
    if (nn == cap) {
      size_t nc = cap ? cap * 2 : 16;
      char **nv = realloc(names, nc * sizeof(*nv));
      if (!nv) {
        rc = err_set(e, ERR_NOMEM, "%s: out of memory", dir);
        break;
      }
      names = nv;
      cap = nc;
    }
    if (!(names[nn] = strdup(nm))) {
      rc = err_set(e, ERR_NOMEM, "%s: out of memory", dir);
      break;
    }
    nn++;
  }
  closedir(d);
  if (rc) {
    strv_free(names, nn);
    return rc;
  }
  if (nn)
    qsort(names, nn, sizeof(*names), cmp_str);
  struct spec **specs = calloc(nn ? nn : 1, sizeof(*specs));
  if (!specs) {
    strv_free(names, nn);
    return err_set(e, ERR_NOMEM, "%s: out of memory", dir);
  }
  size_t ns = 0;
  for (size_t i = 0; i < nn && !rc; i++) {
    char path[4096];
    int w = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    if (w < 0 || (size_t)w >= sizeof(path)) {
      rc = err_set(e, ERR_INVAL, "%s/%s: path too long", dir, names[i]);
      break;
    }
    if ((rc = spec_load(path, &specs[ns], e)))
      break;
    for (size_t j = 0; j < ns; j++)
      if (!strcmp(specs[j]->name, specs[ns]->name)) {
        rc = err_set(e, ERR_CONFIG, "%s:1:1: model '%s' is also defined in "
                     "%s", path, specs[ns]->name, specs[j]->path);
        break;
      }
    ns++;
  }
  strv_free(names, nn);
  if (rc) {
    spec_free_all(specs, ns);
    return rc;
  }
  *out = specs;
  *n = ns;
  return ERR_OK;
}
