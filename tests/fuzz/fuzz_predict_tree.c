/* fuzz_predict_tree.c - libFuzzer target for reqjson_scan_parse, the
 * one-pass check and parse the HTTP handler uses.  For every body, valid
 * or not, it gives reqjson_scan's result, spans, error text and position,
 * also when part of its tree comes from a caller's bump region as the
 * handler's thread arena gives it.  For every body reqjson_scan accepts,
 * the tree is exactly the tree cJSON_ParseWithLengthOpts builds (node
 * types, member names and order, strings byte for byte, valuedouble bit
 * for bit, valueint, sibling links), and an allocator that fails part
 * way leaves a tree that can be walked and released.
 */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "mlopsd/reqjson.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  return 0;
}

static void same(const cJSON *a, const cJSON *b)
{
  FUZZ_CHECK(a->type == b->type);
  FUZZ_CHECK(!a->string == !b->string);
  FUZZ_CHECK(!a->string || strcmp(a->string, b->string) == 0);
  FUZZ_CHECK(!a->valuestring == !b->valuestring);
  FUZZ_CHECK(!a->valuestring || strcmp(a->valuestring, b->valuestring) == 0);
  FUZZ_CHECK(memcmp(&a->valuedouble, &b->valuedouble, sizeof(double)) == 0);
  FUZZ_CHECK(a->valueint == b->valueint);
  const cJSON *x = a->child, *y = b->child, *lx = NULL, *ly = NULL;
  for (; x && y; lx = x, ly = y, x = x->next, y = y->next) {
    FUZZ_CHECK(x->prev == (lx ? lx : x->prev));
    same(x, y);
  }
  FUZZ_CHECK(!x && !y);
  if (a->child)
    FUZZ_CHECK((a->child->prev == lx) == (b->child->prev == ly));
}

static long budget;
static void *failing_alloc(size_t n)
{
  return budget-- > 0 ? malloc(n) : NULL;
}

/* An arena for reqjson_scan_parse's trees: every block is remembered and
 * all are freed together (a tree partly in the bump region cannot go to
 * cJSON_Delete, so the handler drops its arena the same way). */
#define ARENA_MAX 4096
static void *arena[ARENA_MAX];
static size_t arena_n;
static long arena_budget; /* < 0: unlimited */

static void *arena_alloc(size_t n)
{
  if (arena_n == ARENA_MAX || arena_budget == 0)
    return NULL;
  if (arena_budget > 0)
    arena_budget--;
  void *p = malloc(n);
  if (p)
    arena[arena_n++] = p;
  return p;
}

static void arena_drop(void)
{
  while (arena_n)
    free(arena[--arena_n]);
}

/* a tree a failed parse left: every node reachable and readable (ASan
 * reports a dangling link), member names and strings terminated */
static size_t walk(const cJSON *t)
{
  size_t n = 0;
  for (; t; t = t->next) {
    n++;
    if (t->string)
      n += strlen(t->string) > 0;
    if (t->valuestring)
      n += strlen(t->valuestring) > 0;
    n += walk(t->child);
  }
  return n;
}

/* reqjson_scan_parse agrees with reqjson_scan (rc_scan, sc) on the
 * result and every output field */
static void same_scan(int rc_scan, const struct reqjson_scan *sc, int rc,
                      const struct reqjson_scan *o)
{
  FUZZ_CHECK(rc == rc_scan);
  FUZZ_CHECK(!o->err == !sc->err);
  FUZZ_CHECK(!o->err || strcmp(o->err, sc->err) == 0);
  if (rc != 0) {
    FUZZ_CHECK(o->err_pos == sc->err_pos);
    FUZZ_CHECK(o->err_line == sc->err_line);
    FUZZ_CHECK(o->err_col == sc->err_col);
    return;
  }
  FUZZ_CHECK(o->has_data == sc->has_data);
  FUZZ_CHECK(o->data_kind == sc->data_kind);
  FUZZ_CHECK(o->n_items == sc->n_items);
  if (sc->has_data)
    FUZZ_CHECK(o->data.start == sc->data.start && o->data.end == sc->data.end);
  size_t k = sc->n_items < sc->items_cap ? sc->n_items : sc->items_cap;
  for (size_t i = 0; i < k; i++)
    FUZZ_CHECK(o->items[i].start == sc->items[i].start &&
               o->items[i].end == sc->items[i].end);
}

static void check_scan_parse(const char *s, size_t size, int rc_scan,
                             const struct reqjson_scan *sc, const cJSON *ref)
{
  static struct reqjson_span spans[64];
  /* 16-byte aligned as the handler's arena; small, so that larger trees
   * go on from the bump region to the allocator part way */
  static _Alignas(16) char bump[512];
  size_t caps[2] = {0, sizeof(bump)};
  for (int b = 0; b < 2; b++) {
    size_t used = 0;
    struct reqjson_scan o = {.items = spans, .items_cap = 64};
    if (caps[b]) {
      o.bump = bump;
      o.bump_cap = caps[b];
      o.bump_used = &used;
    }
    cJSON *t = NULL;
    arena_budget = -1;
    int rc = reqjson_scan_parse(s, size, &o, arena_alloc, &t);
    same_scan(rc_scan, sc, rc, &o);
    FUZZ_CHECK(used <= caps[b]);
    if (rc == 0) {
      FUZZ_CHECK(t != NULL);
      same(t, ref);
    } else {
      walk(t);
    }
    arena_drop();
    /* the allocator fails after a size-dependent number of blocks: -2
     * (or the scan's result when the body needs no more), a tree that
     * can be walked and dropped */
    used = 0;
    struct reqjson_scan f = {.items = spans, .items_cap = 64};
    if (caps[b]) {
      f.bump = bump;
      f.bump_cap = caps[b];
      f.bump_used = &used;
    }
    t = NULL;
    arena_budget = (long)(size % 13);
    rc = reqjson_scan_parse(s, size, &f, arena_alloc, &t);
    FUZZ_CHECK(rc == -2 || rc == rc_scan);
    if (rc == rc_scan && rc == 0)
      same(t, ref);
    walk(t);
    arena_drop();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct reqjson_span spans[64];
  struct reqjson_scan sc = {.items = spans, .items_cap = 64};
  const char *s = (const char *)data;
  int rc_scan = reqjson_scan(s, size, &sc);
  if (rc_scan != 0) {
    check_scan_parse(s, size, rc_scan, &sc, NULL);
    return 0;
  }
  cJSON *ref = cJSON_ParseWithLengthOpts(s, size, NULL, 0), *t = NULL;
  FUZZ_CHECK(ref != NULL);
  check_scan_parse(s, size, rc_scan, &sc, ref);
  /* with malloc and no bump region the tree is cJSON_Delete's to free,
   * also the part a failed allocation leaves */
  struct reqjson_scan m = {.items = spans, .items_cap = 64};
  FUZZ_CHECK(reqjson_scan_parse(s, size, &m, malloc, &t) == 0 && t);
  same(t, ref);
  cJSON_Delete(t);
  cJSON_Delete(ref);
  budget = (long)(size % 97);
  t = NULL;
  struct reqjson_scan f = {.items = spans, .items_cap = 64};
  int rc = reqjson_scan_parse(s, size, &f, failing_alloc, &t);
  FUZZ_CHECK(rc == 0 || rc == -2);
  cJSON_Delete(t);
  return 0;
}
