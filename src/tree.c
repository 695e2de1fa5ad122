/* tree.c - native evaluator for saved XGBoost tree models (see tree.h).
 *
 * Why: XGBoost's own predict costs 15-40 us per row for the course model;
 * walking flat arrays costs about 1-2 us (shared/NOTES.md).  XGBoost stays
 * the reference: model.c checks this evaluator against it before use.
 *
 * The file is parsed by a small reader for the subset of UBJSON and JSON
 * that XGBoost 1.7 writes into a read-only value tree (typed UBJSON arrays
 * stay in the file buffer, decoded on access), then compiled:
 *   - every tree is walked from its root with an explicit stack; reachable
 *     nodes are renumbered so that a node's two children are adjacent and
 *     a node is seen once (a corrupt file with a cycle or a shared child is
 *     refused, so evaluation always terminates);
 *   - node = {float split_cond or leaf value, uint32 feature | default-left
 *     bit 31, uint32 absolute index of the left child, 0 for a leaf};
 *   - root index and output group per tree;
 *   - when every split condition is finite (or +inf) and no leaf is -inf,
 *     a second copy of the nodes for the fast walk (see fast_step).
 */
#include "mlopsd/tree.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mlopsd/fsx.h"
#include "mlopsd/vec.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ------------------------------------------------------------------ */
/* Value tree for the parsed file                                      */

enum jk {
  JK_NULL,
  JK_BOOL,
  JK_INT,
  JK_REAL,
  JK_STR,  /* u.s, n bytes, not NUL-terminated */
  JK_NUM,  /* JSON number: u.s text, n bytes */
  JK_ARR,  /* u.items, n values */
  JK_TARR, /* UBJSON typed array: u.raw big-endian, n elements of tm */
  JK_OBJ   /* u.items, n members (key set) */
};

struct jv {
  unsigned char kind;
  char tm;
  unsigned klen;
  const char *key;
  size_t n;
  union {
    int64_t i;
    double d;
    const char *s;
    const unsigned char *raw;
    struct jv *items;
  } u;
};

#define JV_MAX_DEPTH 64

static void jv_free(struct jv *v)
{
  if (v->kind != JK_ARR && v->kind != JK_OBJ)
    return;
  for (size_t i = 0; i < v->n; i++)
    jv_free(&v->u.items[i]);
  FREE_NULL(v->u.items);
  v->n = 0;
}

/* Growable list of values while a container is read. */
struct jvec {
  struct jv *items;
  size_t n, cap;
};

static int jvec_push(struct jvec *vec, struct jv **slot)
{
  if (VEC_RESERVE(vec->items, vec->cap, vec->n + 1))
    return -1;
  *slot = &vec->items[vec->n++];
  memset(*slot, 0, sizeof(**slot));
  return 0;
}

static void jvec_free(struct jvec *vec)
{
  for (size_t i = 0; i < vec->n; i++)
    jv_free(&vec->items[i]);
  FREE_NULL(vec->items);
  vec->n = vec->cap = 0;
}

/* The end of reading a container into vec: with rc ERR_OK, v becomes the
 * object (obj) or array holding vec's items (v takes them over); else vec
 * is freed and v left as it was.  Returns rc. */
static enum err_code jvec_done(struct jvec *vec, struct jv *v, int obj,
                               enum err_code rc)
{
  if (rc) {
    jvec_free(vec);
    return rc;
  }
  v->kind = obj ? JK_OBJ : JK_ARR;
  v->n = vec->n;
  v->u.items = vec->items;
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* UBJSON reader                                                       */

struct rd {
  const unsigned char *p, *beg, *end;
  struct err *e;
};

static enum err_code rd_fail(struct rd *r, const char *what)
{
  return err_set(r->e, ERR_PARSE, "UBJSON model: %s at byte %zu", what,
                 (size_t)(r->p - r->beg));
}

static uint64_t be_load(const unsigned char *p, size_t sz)
{
  uint64_t v = 0;
  for (size_t i = 0; i < sz; i++)
    v = (v << 8) | p[i];
  return v;
}

static size_t ubj_size(char m)
{
  switch (m) {
  case 'i': case 'U': case 'C': return 1;
  case 'I': return 2;
  case 'l': case 'd': return 4;
  case 'L': case 'D': return 8;
  default: return 0;
  }
}

/* Decode one fixed-size scalar of marker m at p. */
static void ubj_scalar(char m, const unsigned char *p, int64_t *iv,
                       double *dv, int *is_real)
{
  uint64_t u = be_load(p, ubj_size(m));
  *is_real = 0;
  switch (m) {
  case 'i': *iv = (int8_t)u; break;
  case 'U': case 'C': *iv = (uint8_t)u; break;
  case 'I': *iv = (int16_t)u; break;
  case 'l': *iv = (int32_t)u; break;
  case 'L': *iv = (int64_t)u; break;
  case 'd': {
    uint32_t w = (uint32_t)u;
    float f;
    memcpy(&f, &w, sizeof(f));
    *dv = f;
    *is_real = 1;
    break;
  }
  default: { /* 'D' */
    double d;
    memcpy(&d, &u, sizeof(d));
    *dv = d;
    *is_real = 1;
    break;
  }
  }
}

static enum err_code rd_marker(struct rd *r, char *m)
{
  /* 'N' is a no-op filler in UBJSON. */
  do {
    if (r->p >= r->end)
      return rd_fail(r, "unexpected end of data");
    *m = (char)*r->p++;
  } while (*m == 'N');
  return ERR_OK;
}

/* An integer whose marker is read first (lengths and counts). */
static enum err_code rd_len(struct rd *r, size_t *out)
{
  char m;
  enum err_code rc = rd_marker(r, &m);
  if (rc)
    return rc;
  size_t sz = ubj_size(m);
  if (!sz || m == 'd' || m == 'D' || m == 'C')
    return rd_fail(r, "bad length marker");
  if ((size_t)(r->end - r->p) < sz)
    return rd_fail(r, "unexpected end of data");
  int64_t iv = 0;
  double dv = 0;
  int real;
  ubj_scalar(m, r->p, &iv, &dv, &real);
  r->p += sz;
  if (iv < 0)
    return rd_fail(r, "negative length");
  if ((uint64_t)iv > (uint64_t)(r->end - r->beg))
    return rd_fail(r, "length beyond end of data");
  *out = (size_t)iv;
  return ERR_OK;
}

static enum err_code ubj_value(struct rd *r, char m, struct jv *v, int depth);

/* Container header: optional $type and #count. */
static enum err_code ubj_header(struct rd *r, char *tm, size_t *count,
                                int *counted)
{
  *tm = 0;
  *counted = 0;
  if (r->p < r->end && *r->p == '$') {
    r->p++;
    enum err_code rc = rd_marker(r, tm);
    if (rc)
      return rc;
    if (r->p >= r->end || *r->p != '#')
      return rd_fail(r, "typed container without count");
  }
  if (r->p < r->end && *r->p == '#') {
    r->p++;
    enum err_code rc = rd_len(r, count);
    if (rc)
      return rc;
    *counted = 1;
  }
  return ERR_OK;
}

/* An array ('[') or object ('{') after its opening marker.  One loop for
 * both: an object's member is a key and then a value like an array's. */
static enum err_code ubj_container(struct rd *r, struct jv *v, int depth,
                                   int obj)
{
  char tm;
  size_t count = 0;
  int counted;
  enum err_code rc = ubj_header(r, &tm, &count, &counted);
  if (rc)
    return rc;
  size_t esz = obj ? 0 : ubj_size(tm);
  if (tm && esz) {
    /* Typed numeric array: keep it in the buffer. */
    if (count > (size_t)(r->end - r->p) / esz)
      return rd_fail(r, "typed array beyond end of data");
    v->kind = JK_TARR;
    v->tm = tm;
    v->n = count;
    v->u.raw = r->p;
    r->p += count * esz;
    return ERR_OK;
  }
  struct jvec vec = {0};
  for (size_t i = 0;; i++) {
    if (counted && i == count)
      break;
    if (!counted && obj && r->p < r->end && *r->p == '}') {
      r->p++;
      break;
    }
    const char *key = NULL;
    size_t klen = 0;
    if (obj) {
      if ((rc = rd_len(r, &klen)))
        goto done;
      if (klen > (size_t)(r->end - r->p)) {
        rc = rd_fail(r, "key beyond end of data");
        goto done;
      }
      key = (const char *)r->p;
      r->p += klen;
    }
    char m = tm; /* uncounted containers are never typed */
    if (!m && (rc = rd_marker(r, &m)))
      goto done;
    if (!obj && !counted && m == ']')
      break;
    struct jv *slot;
    if (jvec_push(&vec, &slot)) {
      rc = err_set(r->e, ERR_NOMEM, "UBJSON model: out of memory");
      goto done;
    }
    if ((rc = ubj_value(r, m, slot, depth + 1)))
      goto done;
    slot->key = key;
    slot->klen = (unsigned)klen;
  }
  rc = ERR_OK;
done:
  return jvec_done(&vec, v, obj, rc);
}

static enum err_code ubj_value(struct rd *r, char m, struct jv *v, int depth)
{
  if (depth > JV_MAX_DEPTH)
    return rd_fail(r, "nesting too deep");
  switch (m) {
  case 'Z': v->kind = JK_NULL; return ERR_OK;
  case 'T': case 'F':
    v->kind = JK_BOOL;
    v->u.i = m == 'T';
    return ERR_OK;
  case 'i': case 'U': case 'I': case 'l': case 'L': case 'd': case 'D':
  case 'C': {
    size_t sz = ubj_size(m);
    if ((size_t)(r->end - r->p) < sz)
      return rd_fail(r, "unexpected end of data");
    int real;
    ubj_scalar(m, r->p, &v->u.i, &v->u.d, &real);
    r->p += sz;
    v->kind = real ? JK_REAL : JK_INT;
    return ERR_OK;
  }
  case 'S': case 'H': {
    size_t len;
    enum err_code rc = rd_len(r, &len);
    if (rc)
      return rc;
    if (len > (size_t)(r->end - r->p))
      return rd_fail(r, "string beyond end of data");
    v->kind = m == 'S' ? JK_STR : JK_NUM;
    v->u.s = (const char *)r->p;
    v->n = len;
    r->p += len;
    return ERR_OK;
  }
  case '[': return ubj_container(r, v, depth, 0);
  case '{': return ubj_container(r, v, depth, 1);
  default: return rd_fail(r, "unknown type marker");
  }
}

/* ------------------------------------------------------------------ */
/* JSON reader (the buffer is NUL-terminated by the caller)            */

struct jrd {
  const char *p, *beg;
  struct err *e;
};

static enum err_code jr_fail(struct jrd *r, const char *what)
{
  return err_set(r->e, ERR_PARSE, "JSON model: %s at byte %zu", what,
                 (size_t)(r->p - r->beg));
}

static void jr_ws(struct jrd *r)
{
  while (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t')
    r->p++;
}

static enum err_code jr_string(struct jrd *r, const char **s, size_t *n)
{
  if (*r->p != '"')
    return jr_fail(r, "expected string");
  const char *b = ++r->p;
  /* Escapes are kept as written: only keys and names that XGBoost writes
   * without escapes are compared. */
  while (*r->p && *r->p != '"') {
    if (*r->p == '\\' && r->p[1])
      r->p++;
    r->p++;
  }
  if (*r->p != '"')
    return jr_fail(r, "unterminated string");
  *s = b;
  *n = (size_t)(r->p - b);
  r->p++;
  return ERR_OK;
}

static enum err_code json_value(struct jrd *r, struct jv *v, int depth)
{
  if (depth > JV_MAX_DEPTH)
    return jr_fail(r, "nesting too deep");
  jr_ws(r);
  char c = *r->p;
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    struct jvec vec = {0};
    enum err_code rc = ERR_OK;
    r->p++;
    jr_ws(r);
    if (*r->p == close) {
      r->p++;
    } else {
      for (;;) {
        struct jv *slot;
        if (jvec_push(&vec, &slot)) {
          rc = err_set(r->e, ERR_NOMEM, "JSON model: out of memory");
          goto done;
        }
        const char *key = NULL;
        size_t kl = 0;
        if (c == '{') {
          jr_ws(r);
          if ((rc = jr_string(r, &key, &kl)))
            goto done;
          jr_ws(r);
          if (*r->p != ':') {
            rc = jr_fail(r, "expected ':'");
            goto done;
          }
          r->p++;
        }
        if ((rc = json_value(r, slot, depth + 1)))
          goto done;
        slot->key = key;
        slot->klen = (unsigned)kl;
        jr_ws(r);
        if (*r->p == ',') {
          r->p++;
          continue;
        }
        if (*r->p == close) {
          r->p++;
          break;
        }
        rc = jr_fail(r, "expected ',' or end of container");
        goto done;
      }
    }
  done:
    return jvec_done(&vec, v, c == '{', rc);
  }
  if (c == '"') {
    v->kind = JK_STR;
    return jr_string(r, &v->u.s, &v->n);
  }
  if (!strncmp(r->p, "true", 4) || !strncmp(r->p, "false", 5)) {
    v->kind = JK_BOOL;
    v->u.i = c == 't';
    r->p += c == 't' ? 4 : 5;
    return ERR_OK;
  }
  if (!strncmp(r->p, "null", 4)) {
    v->kind = JK_NULL;
    r->p += 4;
    return ERR_OK;
  }
  if (c == '-' || (c >= '0' && c <= '9') || c == 'N' || c == 'I') {
    const char *b = r->p;
    while (*r->p && strchr("+-0123456789.eEaNIinfty", *r->p))
      r->p++;
    v->kind = JK_NUM;
    v->u.s = b;
    v->n = (size_t)(r->p - b);
    return ERR_OK;
  }
  return jr_fail(r, "unexpected character");
}

/* ------------------------------------------------------------------ */
/* Access helpers                                                      */

static const struct jv *jv_get(const struct jv *o, const char *key)
{
  if (!o || o->kind != JK_OBJ)
    return NULL;
  size_t kl = strlen(key);
  for (size_t i = 0; i < o->n; i++) {
    const struct jv *m = &o->u.items[i];
    if (m->klen == kl && !memcmp(m->key, key, kl))
      return m;
  }
  return NULL;
}

/* Copy a string value (or a number's text) into buf, NUL-terminated. */
static int jv_text(const struct jv *v, char *buf, size_t cap)
{
  if (!v || (v->kind != JK_STR && v->kind != JK_NUM) || v->n >= cap)
    return -1;
  memcpy(buf, v->u.s, v->n);
  buf[v->n] = '\0';
  return 0;
}

static int jv_str_eq(const struct jv *v, const char *s)
{
  return v && v->kind == JK_STR && v->n == strlen(s) &&
         !memcmp(v->u.s, s, v->n);
}

/* Number from an int, real, numeric string (XGBoost writes parameters as
 * strings such as "5E-1") or JSON number text. */
static int jv_f64(const struct jv *v, double *out)
{
  if (!v)
    return -1;
  switch (v->kind) {
  case JK_INT: case JK_BOOL: *out = (double)v->u.i; return 0;
  case JK_REAL: *out = v->u.d; return 0;
  case JK_STR: case JK_NUM: {
    char buf[64], *end;
    if (jv_text(v, buf, sizeof(buf)))
      return -1;
    errno = 0;
    *out = strtod(buf, &end);
    return (end == buf || *end) ? -1 : 0;
  }
  default: return -1;
  }
}

static int jv_f32(const struct jv *v, float *out)
{
  if (v && (v->kind == JK_STR || v->kind == JK_NUM)) {
    /* Parse straight to float: decimal -> double -> float could round
     * twice. */
    char buf[64], *end;
    if (jv_text(v, buf, sizeof(buf)))
      return -1;
    *out = strtof(buf, &end);
    return (end == buf || *end) ? -1 : 0;
  }
  double d;
  if (jv_f64(v, &d))
    return -1;
  *out = (float)d;
  return 0;
}

static int jv_i64(const struct jv *v, int64_t *out)
{
  double d;
  if (v && (v->kind == JK_INT || v->kind == JK_BOOL)) {
    *out = v->u.i;
    return 0;
  }
  if (jv_f64(v, &d) || d != floor(d) || d < -9e15 || d > 9e15)
    return -1;
  *out = (int64_t)d;
  return 0;
}

static size_t jv_len(const struct jv *v)
{
  return v && (v->kind == JK_ARR || v->kind == JK_TARR) ? v->n : 0;
}

static int jv_is_arr(const struct jv *v)
{
  return v && (v->kind == JK_ARR || v->kind == JK_TARR);
}

/* Element i of the typed array a (JK_TARR), as ubj_scalar reads it:
 * returns 1 for a float type (the value in *dv), 0 for an integer type
 * (in *iv). */
static int tarr_at(const struct jv *a, size_t i, int64_t *iv, double *dv)
{
  int real;
  *iv = 0;
  *dv = 0;
  ubj_scalar(a->tm, a->u.raw + i * ubj_size(a->tm), iv, dv, &real);
  return real;
}

/* Element i of an array as float / integer. */
static int jv_at_f32(const struct jv *a, size_t i, float *out)
{
  if (a->kind != JK_TARR)
    return jv_f32(&a->u.items[i], out);
  int64_t iv;
  double dv;
  *out = tarr_at(a, i, &iv, &dv) ? (float)dv : (float)iv;
  return 0;
}

static int jv_at_i64(const struct jv *a, size_t i, int64_t *out)
{
  if (a->kind != JK_TARR)
    return jv_i64(&a->u.items[i], out);
  int64_t iv;
  double dv;
  if (tarr_at(a, i, &iv, &dv)) {
    if (dv != floor(dv))
      return -1;
    iv = (int64_t)dv;
  }
  *out = iv;
  return 0;
}

/* ------------------------------------------------------------------ */
/* Compiled model                                                      */

struct tnode {
  float v;    /* split condition, or leaf value */
  uint32_t f; /* feature index | TN_DEFAULT_LEFT | TN_LEAF */
  uint32_t l; /* absolute index of the left child (right = l + 1); a leaf
                 holds its own index */
};

/* Trees walked together for one row (independent load chains). */
#define TREE_GROUP 16

#define TN_DEFAULT_LEFT 0x80000000u
#define TN_LEAF 0x40000000u
#define TN_FEAT_MASK 0x3fffffffu
#define TN_IS_LEAF(n) (((n)->f & TN_LEAF) != 0)

struct tree_model {
  struct tnode *nodes;
  size_t n_nodes;
  uint32_t *roots;   /* per tree */
  uint32_t *group;   /* per tree: output group (class) */
  uint32_t *depth;   /* per tree: deepest leaf */
  uint32_t *gdepth;  /* per group of TREE_GROUP trees: max depth */
  size_t n_trees;
  size_t nfeat;
  size_t num_group;  /* margins per row */
  size_t num_class;  /* see tree_num_class */
  size_t out_dim;
  size_t max_depth;
  enum tree_objective obj;
  float base_score;  /* as stored */
  float base_margin; /* added to every margin */
  /* The same nodes for fast_step (f = slot of the row copy), or NULL
   * when the model needs the generic step (see build_fast). */
  struct tnode *fast;
  /* The fast walk's lane groups: TREE_GROUP roots each (unused lanes at
   * the extra leaf fast[n_nodes]), the trees of one output group (class)
   * in tree order, so a group's leaves add up in one register. */
  uint32_t *froots;
  struct fgroup {
    uint32_t cls, nt, depth;
  } *fgroups;
  size_t n_fgroups;
  /* Split thresholds per feature (CSR), for tree_gen_rows. */
  size_t *thr_off;   /* nfeat + 1 */
  float *thr;
};

static const char *const obj_names[] = {
    [TREE_OBJ_SOFTPROB] = "multi:softprob",
    [TREE_OBJ_SOFTMAX] = "multi:softmax",
    [TREE_OBJ_LOGISTIC] = "binary:logistic",
    [TREE_OBJ_SQUAREDERROR] = "reg:squarederror",
};

void tree_destroy(struct tree_model *m)
{
  if (!m)
    return;
  free(m->nodes);
  free(m->fast);
  free(m->froots);
  free(m->fgroups);
  free(m->roots);
  free(m->group);
  free(m->depth);
  free(m->gdepth);
  free(m->thr_off);
  free(m->thr);
  free(m);
}

static enum err_code bad(struct err *e, const char *what)
{
  return err_set(e, ERR_PARSE, "XGBoost model: %s", what);
}

/* Stack entry while a tree is renumbered. */
struct walk_ent {
  uint32_t old, neu, depth;
};

/* Compile one tree into m->nodes starting at *next; fills roots[t]. */
static enum err_code compile_tree(struct tree_model *m, const struct jv *t,
                                  size_t ti, size_t *next,
                                  unsigned char *seen, struct walk_ent *stk,
                                  struct err *e)
{
  const struct jv *lc = jv_get(t, "left_children");
  const struct jv *rc = jv_get(t, "right_children");
  const struct jv *si = jv_get(t, "split_indices");
  const struct jv *sc = jv_get(t, "split_conditions");
  const struct jv *dl = jv_get(t, "default_left");
  const struct jv *st = jv_get(t, "split_type");
  const struct jv *cn = jv_get(t, "categories_nodes");
  const struct jv *tp = jv_get(t, "tree_param");
  if (!jv_is_arr(lc) || !jv_is_arr(rc) || !jv_is_arr(si) ||
      !jv_is_arr(sc) || !jv_is_arr(dl))
    return err_set(e, ERR_PARSE,
                   "XGBoost model: tree %zu lacks node arrays", ti);
  size_t nn = jv_len(lc);
  if (!nn || jv_len(rc) != nn || jv_len(si) != nn || jv_len(sc) != nn ||
      jv_len(dl) != nn || (st && jv_len(st) != nn))
    return err_set(e, ERR_PARSE,
                   "XGBoost model: tree %zu node arrays differ in length",
                   ti);
  int64_t slv = 0;
  if (tp && jv_get(tp, "size_leaf_vector") &&
      (jv_i64(jv_get(tp, "size_leaf_vector"), &slv) || slv > 1))
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: tree %zu has vector leaves", ti);
  if (jv_len(cn) > 0)
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: tree %zu has categorical splits", ti);
  memset(seen, 0, nn);
  size_t sp = 0;
  m->roots[ti] = (uint32_t)*next;
  stk[sp++] = (struct walk_ent){0, (uint32_t)(*next)++, 0};
  seen[0] = 1;
  while (sp) {
    struct walk_ent w = stk[--sp];
    int64_t l, r, f, d = 0, typ = 0;
    float v;
    if (jv_at_i64(lc, w.old, &l) || jv_at_i64(rc, w.old, &r) ||
        jv_at_i64(si, w.old, &f) || jv_at_f32(sc, w.old, &v) ||
        jv_at_i64(dl, w.old, &d) || (st && jv_at_i64(st, w.old, &typ)))
      return err_set(e, ERR_PARSE,
                     "XGBoost model: tree %zu node %u: bad number", ti,
                     w.old);
    struct tnode *nd = &m->nodes[w.neu];
    nd->v = v;
    if (l == -1 && r == -1) {
      nd->f = TN_LEAF;
      nd->l = w.neu;
      if (w.depth > m->depth[ti])
        m->depth[ti] = w.depth;
      if (w.depth > m->max_depth)
        m->max_depth = w.depth;
      continue;
    }
    if (typ != 0)
      return err_set(e, ERR_UNSUPPORTED,
                     "native evaluator: tree %zu node %u is a categorical "
                     "split", ti, w.old);
    if (l <= 0 || r <= 0 || (size_t)l >= nn || (size_t)r >= nn || l == r ||
        seen[l] || seen[r])
      return err_set(e, ERR_PARSE,
                     "XGBoost model: tree %zu node %u: bad child index", ti,
                     w.old);
    if (f < 0 || (size_t)f >= m->nfeat)
      return err_set(e, ERR_PARSE,
                     "XGBoost model: tree %zu node %u: feature %lld out of "
                     "range (num_feature %zu)", ti, w.old, (long long)f,
                     m->nfeat);
    seen[l] = seen[r] = 1;
    nd->f = (uint32_t)f | (d ? TN_DEFAULT_LEFT : 0);
    nd->l = (uint32_t)*next;
    *next += 2;
    /* Right first so the left subtree follows its parent in memory. */
    stk[sp++] = (struct walk_ent){(uint32_t)r, nd->l + 1, w.depth + 1};
    stk[sp++] = (struct walk_ent){(uint32_t)l, nd->l, w.depth + 1};
  }
  return ERR_OK;
}

/* Floats of the row copies the fast walk reads per block (on the stack):
 * rows per block = this / (2 * nfeat + 1). */
#define XBUF_FLOATS 4096

/* The nodes for fast_step.  It reads a row copy of 2 * nfeat + 1 floats:
 * slots [0, nfeat) hold the row with NaN as +inf, [nfeat, 2 * nfeat) the
 * row with NaN as -inf, and the last slot -inf.  A split that sends a
 * missing value right reads the first half, one that sends it left the
 * second; a leaf reads the last slot.  The direction is then one test,
 * right = (slot >= split condition), which is what step computes as long
 * as the condition is above -inf (a NaN condition or -inf would send
 * values differently) and, for a leaf, -inf >= its value is false (every
 * leaf value but -inf).  Models outside that, or with too many features
 * for the stack copy, keep the generic step (m->fast stays NULL); an
 * allocation failure too, as the generic step gives the same result. */
static void build_fast(struct tree_model *m)
{
  const size_t F = m->nfeat;
  if (2 * F + 1 > XBUF_FLOATS)
    return;
  for (size_t i = 0; i < m->n_nodes; i++) {
    const struct tnode *n = &m->nodes[i];
    if (TN_IS_LEAF(n) ? n->v == -INFINITY : !(n->v > -INFINITY))
      return;
  }
  /* groups: per class, its trees in order, TREE_GROUP at a time */
  size_t ng = 0;
  for (size_t c = 0; c < m->num_group; c++) {
    size_t nt = 0;
    for (size_t t = 0; t < m->n_trees; t++)
      nt += m->group[t] == c;
    ng += (nt + TREE_GROUP - 1) / TREE_GROUP;
  }
  m->fast = malloc((m->n_nodes + 1) * sizeof(*m->fast));
  m->froots = malloc((ng ? ng : 1) * TREE_GROUP * sizeof(*m->froots));
  m->fgroups = calloc(ng ? ng : 1, sizeof(*m->fgroups));
  if (!m->fast || !m->froots || !m->fgroups) {
    free(m->fast);
    free(m->froots);
    free(m->fgroups);
    m->fast = NULL;
    m->froots = NULL;
    m->fgroups = NULL;
    return;
  }
  for (size_t i = 0; i < m->n_nodes; i++) {
    const struct tnode *n = &m->nodes[i];
    uint32_t slot = (uint32_t)(2 * F);
    if (!TN_IS_LEAF(n))
      slot = (n->f & TN_FEAT_MASK) +
             ((n->f & TN_DEFAULT_LEFT) ? (uint32_t)F : 0u);
    m->fast[i] = (struct tnode){n->v, slot, n->l};
  }
  const uint32_t pad = (uint32_t)m->n_nodes; /* a leaf that stays put */
  m->fast[pad] = (struct tnode){0.0f, (uint32_t)(2 * F), pad};
  size_t g = 0;
  for (size_t c = 0; c < m->num_group; c++) {
    struct fgroup *fg = NULL;
    for (size_t t = 0; t < m->n_trees; t++) {
      if (m->group[t] != c)
        continue;
      if (!fg || fg->nt == TREE_GROUP) {
        fg = &m->fgroups[g];
        fg->cls = (uint32_t)c;
        for (size_t k = 0; k < TREE_GROUP; k++)
          m->froots[g * TREE_GROUP + k] = pad;
        g++;
      }
      m->froots[(size_t)(fg - m->fgroups) * TREE_GROUP + fg->nt++] =
          m->roots[t];
      if (m->depth[t] > fg->depth)
        fg->depth = m->depth[t];
    }
  }
  m->n_fgroups = ng;
}

static int cmp_float(const void *a, const void *b)
{
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* Per-feature sorted split thresholds (CSR). */
static enum err_code build_thresholds(struct tree_model *m, struct err *e)
{
  m->thr_off = calloc(m->nfeat + 1, sizeof(*m->thr_off));
  size_t ninner = 0;
  for (size_t i = 0; i < m->n_nodes; i++)
    ninner += !TN_IS_LEAF(&m->nodes[i]);
  m->thr = malloc((ninner ? ninner : 1) * sizeof(*m->thr));
  size_t *fill = calloc(m->nfeat + 1, sizeof(*fill));
  if (!m->thr_off || !m->thr || !fill) {
    free(fill);
    return err_set(e, ERR_NOMEM, "native evaluator: out of memory");
  }
  for (size_t i = 0; i < m->n_nodes; i++)
    if (!TN_IS_LEAF(&m->nodes[i]))
      m->thr_off[(m->nodes[i].f & TN_FEAT_MASK) + 1]++;
  for (size_t f = 0; f < m->nfeat; f++)
    m->thr_off[f + 1] += m->thr_off[f];
  for (size_t i = 0; i < m->n_nodes; i++) {
    if (TN_IS_LEAF(&m->nodes[i]))
      continue;
    size_t f = m->nodes[i].f & TN_FEAT_MASK;
    m->thr[m->thr_off[f] + fill[f]++] = m->nodes[i].v;
  }
  free(fill);
  for (size_t f = 0; f < m->nfeat; f++)
    qsort(m->thr + m->thr_off[f], m->thr_off[f + 1] - m->thr_off[f],
          sizeof(float), cmp_float);
  return ERR_OK;
}

static enum err_code compile(const struct jv *root, struct tree_model *m,
                             struct err *e)
{
  const struct jv *learner = jv_get(root, "learner");
  if (!learner)
    return bad(e, "no \"learner\" object (not an XGBoost model)");
  const struct jv *gb = jv_get(learner, "gradient_booster");
  const struct jv *gbname = jv_get(gb, "name");
  if (!gbname)
    return bad(e, "no learner.gradient_booster.name");
  if (!jv_str_eq(gbname, "gbtree")) {
    char nm[32] = "?";
    (void)jv_text(gbname, nm, sizeof(nm));
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: booster \"%s\" is not supported "
                   "(only gbtree)", nm);
  }
  const struct jv *objname = jv_get(jv_get(learner, "objective"), "name");
  char on[64] = "";
  if (jv_text(objname, on, sizeof(on)))
    return bad(e, "no learner.objective.name");
  int found = 0;
  for (size_t i = 0; i < sizeof(obj_names) / sizeof(obj_names[0]); i++)
    if (!strcmp(on, obj_names[i])) {
      m->obj = (enum tree_objective)i;
      found = 1;
    }
  if (!found)
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: objective \"%s\" is not supported", on);

  const struct jv *lmp = jv_get(learner, "learner_model_param");
  int64_t nclass = 0, nfeat = 0, ntarget = 1;
  if (!lmp || jv_f32(jv_get(lmp, "base_score"), &m->base_score) ||
      jv_i64(jv_get(lmp, "num_class"), &nclass) ||
      jv_i64(jv_get(lmp, "num_feature"), &nfeat))
    return bad(e, "learner_model_param lacks base_score, num_class or "
                  "num_feature");
  if (jv_get(lmp, "num_target") &&
      jv_i64(jv_get(lmp, "num_target"), &ntarget))
    return bad(e, "bad learner_model_param.num_target");
  if (ntarget != 1)
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: %lld targets (only 1 is supported)",
                   (long long)ntarget);
  if (nfeat <= 0 || nfeat > (int64_t)TN_FEAT_MASK)
    return bad(e, "num_feature out of range");
  m->nfeat = (size_t)nfeat;
  if (m->obj == TREE_OBJ_SOFTPROB || m->obj == TREE_OBJ_SOFTMAX) {
    if (nclass < 1 || nclass > TREE_MAX_CLASSES)
      return err_set(e, ERR_UNSUPPORTED,
                     "native evaluator: num_class %lld out of range 1..%d",
                     (long long)nclass, TREE_MAX_CLASSES);
    m->num_group = (size_t)nclass;
    m->num_class = (size_t)nclass;
    m->out_dim = m->obj == TREE_OBJ_SOFTPROB ? (size_t)nclass : 1;
    m->base_margin = m->base_score;
  } else {
    if (nclass > 1)
      return bad(e, "num_class > 1 with a single-output objective");
    m->num_group = 1;
    m->out_dim = 1;
    m->num_class = m->obj == TREE_OBJ_LOGISTIC ? 2 : 0;
    if (m->obj == TREE_OBJ_LOGISTIC) {
      /* XGBoost 1.7 stores base_score as a probability for logistic
       * objectives and starts from its logit, computed in float. */
      if (!(m->base_score > 0.0f && m->base_score < 1.0f))
        return bad(e, "base_score must be in (0,1) for binary:logistic");
      m->base_margin = -logf(1.0f / m->base_score - 1.0f);
    } else {
      m->base_margin = m->base_score;
    }
  }

  const struct jv *mdl = jv_get(gb, "model");
  const struct jv *trees = jv_get(mdl, "trees");
  const struct jv *tinfo = jv_get(mdl, "tree_info");
  if (!mdl || !jv_is_arr(trees) || trees->kind != JK_ARR ||
      !jv_is_arr(tinfo))
    return bad(e, "no gradient_booster.model.trees / tree_info");
  const struct jv *gmp = jv_get(mdl, "gbtree_model_param");
  int64_t slv = 0;
  if (gmp && jv_get(gmp, "size_leaf_vector") &&
      (jv_i64(jv_get(gmp, "size_leaf_vector"), &slv) || slv > 1))
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: vector leaves are not supported");
  m->n_trees = trees->n;
  if (jv_len(tinfo) != m->n_trees)
    return bad(e, "tree_info length differs from the number of trees");
  if (!m->n_trees)
    return err_set(e, ERR_UNSUPPORTED,
                   "native evaluator: model has no trees");

  size_t total = 0, maxnn = 0;
  for (size_t t = 0; t < m->n_trees; t++) {
    size_t nn = jv_len(jv_get(&trees->u.items[t], "left_children"));
    total += nn;
    if (nn > maxnn)
      maxnn = nn;
  }
  if (!total || total > UINT32_MAX / 2)
    return bad(e, "node count out of range");
  m->roots = calloc(m->n_trees, sizeof(*m->roots));
  m->group = calloc(m->n_trees, sizeof(*m->group));
  m->depth = calloc(m->n_trees, sizeof(*m->depth));
  m->gdepth = calloc(m->n_trees / TREE_GROUP + 1, sizeof(*m->gdepth));
  m->nodes = calloc(total, sizeof(*m->nodes));
  unsigned char *seen = malloc(maxnn);
  struct walk_ent *stk = malloc(maxnn * sizeof(*stk) + sizeof(*stk));
  enum err_code rc = ERR_OK;
  if (!m->roots || !m->group || !m->depth || !m->gdepth || !m->nodes ||
      !seen || !stk) {
    rc = err_set(e, ERR_NOMEM, "native evaluator: out of memory");
    goto out;
  }
  size_t next = 0;
  for (size_t t = 0; t < m->n_trees; t++) {
    int64_t g;
    if (jv_at_i64(tinfo, t, &g) || g < 0 || (size_t)g >= m->num_group) {
      rc = err_set(e, ERR_PARSE,
                   "XGBoost model: tree_info[%zu] out of range", t);
      goto out;
    }
    m->group[t] = (uint32_t)g;
    if ((rc = compile_tree(m, &trees->u.items[t], t, &next, seen, stk, e)))
      goto out;
  }
  m->n_nodes = next;
  for (size_t t = 0; t < m->n_trees; t++)
    if (m->depth[t] > m->gdepth[t / TREE_GROUP])
      m->gdepth[t / TREE_GROUP] = m->depth[t];
  rc = build_thresholds(m, e);
  if (!rc)
    build_fast(m);
out:
  free(seen);
  free(stk);
  return rc;
}

enum err_code tree_compile_buffer(const void *buf, size_t len,
                                  struct tree_model **out, struct err *e)
{
  *out = NULL;
  const unsigned char *b = buf;
  if (!b || len < 2)
    return err_set(e, ERR_PARSE, "model file is empty or truncated");
  struct jv root = {0};
  enum err_code rc;
  char *text = NULL;
  if (b[0] == '{' && strchr("iUIlL$#}", b[1])) {
    struct rd r = {b + 1, b, b + len, e};
    rc = ubj_container(&r, &root, 0, 1);
  } else if (b[0] == '{') {
    text = malloc(len + 1);
    if (!text)
      return err_set(e, ERR_NOMEM, "native evaluator: out of memory");
    memcpy(text, b, len);
    text[len] = '\0';
    struct jrd r = {text, text, e};
    rc = json_value(&r, &root, 0);
  } else {
    return err_set(e, ERR_PARSE,
                   "not an XGBoost model (neither UBJSON nor JSON)");
  }
  if (rc)
    goto out;
  struct tree_model *m = calloc(1, sizeof(*m));
  if (!m) {
    rc = err_set(e, ERR_NOMEM, "native evaluator: out of memory");
    goto out;
  }
  rc = compile(&root, m, e);
  if (rc)
    tree_destroy(m);
  else
    *out = m;
out:
  jv_free(&root);
  free(text);
  return rc;
}

enum err_code tree_compile_file(const char *path, struct tree_model **out,
                                struct err *e)
{
  *out = NULL;
  char *buf;
  size_t len;
  enum err_code rc = fsx_read(path, TREE_MAX_FILE_BYTES, 0, &buf, &len, e);
  if (rc) {
    err_prefix(e, "model");
    if (rc == ERR_NOTFOUND) /* the contract: ERR_IO for any unreadable file */
      rc = ERR_IO;
    if (e)
      e->code = rc;
    return rc;
  }
  rc = tree_compile_buffer(buf, len, out, e);
  free(buf);
  if (rc)
    err_prefix(e, "%s", path);
  return rc;
}

/* ------------------------------------------------------------------ */
/* Evaluation                                                          */

/* Margin accumulator on the stack: rows per block = this / num_group. */
#define ACC_FLOATS 4096
#define BLOCK_ROWS 64

/* One level down from node i for row x.  Branch-free: the direction is
 * data dependent and mispredicts half the time.  A NaN compares false, so
 * it goes right unless the node's default is left.  A leaf points to
 * itself and never goes right, so it stays put: trees of different depth
 * can be walked in lockstep. */
static inline uint32_t step(const struct tnode *nodes, uint32_t i,
                            const float *x)
{
  const struct tnode *n = &nodes[i];
  uint32_t f = n->f;
  float v = x[f & TN_FEAT_MASK];
  uint32_t right = (uint32_t)!(v < n->v) &
                   ~((uint32_t)(v != v) & (f >> 31)) & ~(f >> 30);
  return n->l + (right & 1u);
}

/* Margins of rows [0, nb) into acc (nb * num_group floats).
 *
 * Trees go in groups of TREE_GROUP; for each row the group's trees are
 * walked in lockstep, level by level, so the CPU has TREE_GROUP
 * independent node loads in flight instead of one dependent chain.  The
 * group's nodes stay in L1 while all rows of the block pass.  Leaf values
 * are then added in tree order, as XGBoost does, so the float sums are
 * the same bits. */
/* One group's part of block_margins: the nt trees (nt <= TREE_GROUP) at
 * roots, with output columns grp and at most depth levels, for rows
 * [0, nb) (F floats each) into acc (G floats per row).  Always inlined:
 * called with the constant TREE_GROUP for the full groups, its loops have
 * a fixed count the compiler unrolls; the last, partial group takes nt. */
static inline __attribute__((always_inline)) void
group_margins(const struct tnode *nodes, const uint32_t *roots,
              const uint32_t *grp, uint32_t depth, size_t nt,
              const float *rows, size_t nb, size_t F, size_t G, float *acc)
{
  for (size_t r = 0; r < nb; r++) {
    const float *x = rows + r * F;
    uint32_t id[TREE_GROUP];
    for (size_t k = 0; k < nt; k++)
      id[k] = roots[k];
    for (uint32_t d = 0; d < depth; d++)
      for (size_t k = 0; k < nt; k++)
        id[k] = step(nodes, id[k], x);
    float *a = acc + r * G;
    for (size_t k = 0; k < nt; k++)
      a[grp[k]] += nodes[id[k]].v;
  }
}

/* One level down from node i of m->fast for the row copy x (see
 * build_fast): a load of the slot, one compare, an add. */
static inline uint32_t fast_step(const struct tnode *nodes, uint32_t i,
                                 const float *x)
{
  const struct tnode *n = &nodes[i];
  return n->l + (uint32_t)(x[n->f] >= n->v);
}

/* One lane group of the fast walk (TREE_GROUP lanes, the first nt trees
 * of class cls, the rest the padding leaf) for the row copies xb (W
 * floats each) into acc (G floats per row): the leaves added in tree
 * order, as group_margins does. */
static inline __attribute__((always_inline)) void
group_fast(const struct tnode *nodes, const uint32_t *roots,
           const struct fgroup *fg, const float *xb, size_t nb, size_t W,
           size_t G, float *acc)
{
  for (size_t r = 0; r < nb; r++) {
    const float *x = xb + r * W;
    uint32_t id[TREE_GROUP];
    for (size_t k = 0; k < TREE_GROUP; k++)
      id[k] = roots[k];
    for (uint32_t d = 0; d < fg->depth; d++)
#pragma GCC unroll 16
      for (size_t k = 0; k < TREE_GROUP; k++)
        id[k] = fast_step(nodes, id[k], x);
    float sum = acc[r * G + fg->cls];
    for (size_t k = 0; k < fg->nt; k++)
      sum += nodes[id[k]].v;
    acc[r * G + fg->cls] = sum;
  }
}

/* The row copies of rows [0, nb) for fast_step (see build_fast). */
static void fast_rows(const float *restrict rows, size_t nb, size_t F,
                      float *restrict xb)
{
  const size_t W = 2 * F + 1;
  for (size_t r = 0; r < nb; r++) {
    const float *restrict x = rows + r * F;
    float *restrict hi = xb + r * W, *restrict lo = hi + F;
    size_t k = 0;
#ifdef __SSE2__
    /* Four at a time (-O2 leaves the loop scalar): the NaN lanes of v
     * replaced by +-inf with a mask. */
    const __m128 pinf = _mm_set1_ps(INFINITY), ninf = _mm_set1_ps(-INFINITY);
    for (; k + 4 <= F; k += 4) {
      __m128 v = _mm_loadu_ps(x + k);
      __m128 nan = _mm_cmpunord_ps(v, v);
      __m128 keep = _mm_andnot_ps(nan, v);
      _mm_storeu_ps(hi + k, _mm_or_ps(keep, _mm_and_ps(nan, pinf)));
      _mm_storeu_ps(lo + k, _mm_or_ps(keep, _mm_and_ps(nan, ninf)));
    }
#endif
    for (; k < F; k++) {
      hi[k] = x[k] != x[k] ? INFINITY : x[k];
      lo[k] = x[k] != x[k] ? -INFINITY : x[k];
    }
    lo[F] = -INFINITY;
  }
}

/* block_margins through m->fast: same sums in the same order. */
static void block_fast(const struct tree_model *m, const float *rows,
                       size_t nb, float *acc)
{
  const size_t G = m->num_group, F = m->nfeat, W = 2 * F + 1;
  const struct tnode *nodes = m->fast;
  float xb[XBUF_FLOATS];
  fast_rows(rows, nb, F, xb);
  for (size_t i = 0; i < nb * G; i++)
    acc[i] = m->base_margin;
  for (size_t g = 0; g < m->n_fgroups; g++)
    group_fast(nodes, m->froots + g * TREE_GROUP, &m->fgroups[g], xb, nb,
               W, G, acc);
}

static void block_margins(const struct tree_model *m, const float *rows,
                          size_t nb, int generic, float *acc)
{
  if (m->fast && !generic) {
    block_fast(m, rows, nb, acc);
    return;
  }
  const size_t G = m->num_group, F = m->nfeat;
  const struct tnode *nodes = m->nodes;
  for (size_t i = 0; i < nb * G; i++)
    acc[i] = m->base_margin;
  for (size_t t0 = 0; t0 < m->n_trees; t0 += TREE_GROUP) {
    const uint32_t *roots = m->roots + t0, *grp = m->group + t0;
    const uint32_t depth = m->gdepth[t0 / TREE_GROUP];
    size_t nt = m->n_trees - t0;
    if (nt >= TREE_GROUP)
      group_margins(nodes, roots, grp, depth, TREE_GROUP, rows, nb, F, G,
                    acc);
    else
      group_margins(nodes, roots, grp, depth, nt, rows, nb, F, G, acc);
  }
}

static void transform(const struct tree_model *m, const float *acc,
                      size_t nb, float *out)
{
  const size_t G = m->num_group;
  switch (m->obj) {
  case TREE_OBJ_SOFTPROB:
    for (size_t r = 0; r < nb; r++) {
      const float *a = acc + r * G;
      float *o = out + r * G;
      float wmax = a[0];
      for (size_t k = 1; k < G; k++)
        wmax = fmaxf(a[k], wmax);
      double wsum = 0.0;
      for (size_t k = 0; k < G; k++) {
        o[k] = expf(a[k] - wmax);
        wsum += o[k];
      }
      for (size_t k = 0; k < G; k++)
        o[k] /= (float)wsum;
    }
    break;
  case TREE_OBJ_SOFTMAX:
    for (size_t r = 0; r < nb; r++) {
      const float *a = acc + r * G;
      size_t best = 0;
      for (size_t k = 1; k < G; k++)
        if (a[k] > a[best])
          best = k;
      out[r] = (float)best;
    }
    break;
  case TREE_OBJ_LOGISTIC:
    for (size_t r = 0; r < nb; r++)
      out[r] = 1.0f / (1.0f + expf(-acc[r]));
    break;
  case TREE_OBJ_SQUAREDERROR:
    memcpy(out, acc, nb * sizeof(float));
    break;
  }
}

static enum err_code predict(const struct tree_model *m, const float *rows,
                             size_t n, size_t nfeat, float *out, int margin,
                             int generic, struct err *e)
{
  if (!m || (!rows && n) || (!out && n))
    return err_set(e, ERR_INVAL, "tree_predict: NULL argument");
  if (nfeat != m->nfeat)
    return err_set(e, ERR_INVAL,
                   "tree_predict: rows have %zu features, model expects %zu",
                   nfeat, m->nfeat);
  float acc[ACC_FLOATS];
  const size_t G = m->num_group;
  size_t bs = ACC_FLOATS / G;
  if (bs > BLOCK_ROWS)
    bs = BLOCK_ROWS;
  if (m->fast && !generic && bs > XBUF_FLOATS / (2 * nfeat + 1))
    bs = XBUF_FLOATS / (2 * nfeat + 1);
  const size_t od = margin ? G : m->out_dim;
  for (size_t r0 = 0; r0 < n; r0 += bs) {
    size_t nb = n - r0 < bs ? n - r0 : bs;
    const float *x = rows + r0 * nfeat;
    if (margin) {
      block_margins(m, x, nb, generic, out + r0 * od);
    } else {
      block_margins(m, x, nb, generic, acc);
      transform(m, acc, nb, out + r0 * od);
    }
  }
  return ERR_OK;
}

enum err_code tree_predict(const struct tree_model *m, const float *rows,
                           size_t n, size_t nfeat, float *out,
                           struct err *e)
{
  return predict(m, rows, n, nfeat, out, 0, 0, e);
}

enum err_code tree_predict_margin(const struct tree_model *m,
                                  const float *rows, size_t n, size_t nfeat,
                                  float *out, struct err *e)
{
  return predict(m, rows, n, nfeat, out, 1, 0, e);
}

enum err_code tree_predict_generic(const struct tree_model *m,
                                   const float *rows, size_t n, size_t nfeat,
                                   float *out, struct err *e)
{
  return predict(m, rows, n, nfeat, out, 0, 1, e);
}

int tree_fast(const struct tree_model *m)
{
  return m->fast != NULL;
}

size_t tree_nfeat(const struct tree_model *m) { return m->nfeat; }
size_t tree_num_trees(const struct tree_model *m) { return m->n_trees; }
size_t tree_num_nodes(const struct tree_model *m) { return m->n_nodes; }
size_t tree_num_group(const struct tree_model *m) { return m->num_group; }
size_t tree_output_dim(const struct tree_model *m) { return m->out_dim; }
size_t tree_num_class(const struct tree_model *m) { return m->num_class; }
size_t tree_max_depth(const struct tree_model *m) { return m->max_depth; }
float tree_base_score(const struct tree_model *m) { return m->base_score; }

enum tree_objective tree_objective(const struct tree_model *m)
{
  return m->obj;
}

const char *tree_objective_name(const struct tree_model *m)
{
  return obj_names[m->obj];
}

/* ------------------------------------------------------------------ */
/* Rows that exercise the splits                                       */

static uint64_t rng_next(uint64_t *s)
{
  /* splitmix64 */
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

void tree_gen_rows(const struct tree_model *m, size_t n, uint64_t seed,
                   float *out)
{
  uint64_t s = seed;
  for (size_t r = 0; r < n; r++) {
    for (size_t f = 0; f < m->nfeat; f++) {
      float *o = &out[r * m->nfeat + f];
      size_t lo = m->thr_off[f], cnt = m->thr_off[f + 1] - lo;
      uint64_t x = rng_next(&s);
      unsigned pick = (unsigned)(x % 100);
      if (pick < 10 || !cnt) {
        *o = pick < 10 ? NAN : (float)(x >> 40 & 0xff) - 128.0f;
        continue;
      }
      float t = m->thr[lo + (size_t)((x >> 8) % cnt)];
      if (pick < 50)
        *o = t; /* exactly on the split: goes right */
      else if (pick < 80)
        *o = nextafterf(t, -INFINITY);
      else if (pick < 90)
        *o = m->thr[lo] - 1.0f - fabsf(m->thr[lo]);
      else
        *o = m->thr[lo + cnt - 1] + 1.0f + fabsf(m->thr[lo + cnt - 1]);
    }
  }
}
