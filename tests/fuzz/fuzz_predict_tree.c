/* fuzz_predict_tree.c - libFuzzer target for reqjson_parse: for every
 * body reqjson_scan accepts, the tree it builds is exactly the tree
 * cJSON_ParseWithLengthOpts builds (node types, member names and order,
 * strings byte for byte, valuedouble bit for bit, valueint, sibling
 * links), and a parse with an allocator that fails part way leaves a tree
 * that cJSON_Delete frees cleanly.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct reqjson_span spans[64];
  struct reqjson_scan sc = {.items = spans, .items_cap = 64};
  const char *s = (const char *)data;
  if (reqjson_scan(s, size, &sc) != 0)
    return 0;
  cJSON *ref = cJSON_ParseWithLengthOpts(s, size, NULL, 0), *t = NULL;
  FUZZ_CHECK(ref != NULL);
  FUZZ_CHECK(reqjson_parse(s, size, malloc, &t) == ERR_OK && t);
  same(t, ref);
  cJSON_Delete(t);
  cJSON_Delete(ref);
  /* out of memory after a size-dependent number of allocations */
  budget = (long)(size % 97);
  t = NULL;
  enum err_code rc = reqjson_parse(s, size, failing_alloc, &t);
  FUZZ_CHECK(rc == ERR_OK || rc == ERR_NOMEM);
  cJSON_Delete(t);
  return 0;
}
