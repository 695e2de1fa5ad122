/* fuzz_predict.c - libFuzzer target for the /predict request path up to
 * the model: the body pre-check (reqjson_scan), cJSON, the request shape,
 * validation against the course's model spec (spec_validate_request with
 * config/models/credit_score_classification.yaml) and preprocessing
 * (prep_transform_json with a prep fitted for that spec) - the same steps,
 * in the same order, as predict.c's handler.
 *
 * Input: an HTTP request body.  Checked beyond "no crash":
 *   - a body reqjson_scan accepts is one cJSON accepts;
 *   - the spans reqjson_scan records (logged as the item's exact bytes)
 *     hold exactly data's value and data's array elements, as cJSON sees
 *     them, and n_items is the array size;
 *   - an item that validates is transformed without error, and the
 *     validation report is well-formed.
 */
#include "fuzz.h"

#include <cjson/cJSON.h>

#include "mlopsd/predict.h"
#include "mlopsd/reqjson.h"

static struct spec *spec;
static struct prep *prep;
static float *row;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  spec = fuzz_load_spec("config/models/credit_score_classification.yaml");
  prep = fuzz_fit_prep(spec);
  row = calloc(prep_n_outputs(prep), sizeof(float));
  return row ? 0 : -1;
}

#define SPANS 64

/* The value at span sp parses to the same JSON as item. */
static void same_json(const uint8_t *body, const struct reqjson_span *sp,
                      const cJSON *item)
{
  FUZZ_CHECK(sp->start < sp->end);
  const char *b = (const char *)body + sp->start, *end = NULL;
  cJSON *v = cJSON_ParseWithLengthOpts(b, sp->end - sp->start, &end, 0);
  FUZZ_CHECK(v != NULL && end == b + (sp->end - sp->start));
  /* printed forms, not cJSON_Compare: that one matches repeated member
   * names by first occurrence */
  char *a = cJSON_PrintUnformatted(v), *c = cJSON_PrintUnformatted(item);
  FUZZ_CHECK(a && c && strcmp(a, c) == 0);
  free(a);
  free(c);
  cJSON_Delete(v);
}

static void check_item(const cJSON *it)
{
  static struct spec_report rep;
  struct err e = {0};
  enum err_code rc = spec_validate_request(spec, it, &rep);
  FUZZ_CHECK(rep.n <= SPEC_REPORT_MAX);
  for (size_t k = 0; k < rep.n; k++)
    FUZZ_CHECK(memchr(rep.e[k].field, 0, SPEC_REPORT_FIELD) &&
               memchr(rep.e[k].msg, 0, SPEC_REPORT_MSG) && rep.e[k].msg[0]);
  if (rc != ERR_OK) {
    FUZZ_CHECK(rc == ERR_INVAL && (rep.n > 0 || rep.n_more > 0));
    cJSON *j = spec_report_json(&rep);
    FUZZ_CHECK(j != NULL);
    char *txt = cJSON_PrintUnformatted(j);
    FUZZ_CHECK(txt != NULL);
    free(txt);
    cJSON_Delete(j);
    return;
  }
  if (prep_transform_json(prep, it, row, &e) != ERR_OK) {
    fprintf(stderr, "validated item refused by prep: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct reqjson_span spans[SPANS];
  struct reqjson_scan sc = {.items = spans, .items_cap = SPANS};
  if (reqjson_scan((const char *)data, size, &sc) != 0) {
    FUZZ_CHECK(sc.err != NULL && sc.err_pos <= size && sc.err_line >= 1 &&
               sc.err_col >= 1);
    return 0;
  }
  FUZZ_CHECK(sc.err == NULL);
  cJSON *root = cJSON_ParseWithLengthOpts((const char *)data, size, NULL, 0);
  FUZZ_CHECK(root != NULL);
  const cJSON *d = cJSON_IsObject(root)
                       ? cJSON_GetObjectItemCaseSensitive(root, "data")
                       : NULL;
  FUZZ_CHECK(sc.has_data == (d != NULL));
  if (!d) {
    cJSON_Delete(root);
    return 0;
  }
  /* the handler refuses repeated "data"; spans describe the first one */
  int n_data = 0;
  for (const cJSON *k = root->child; k; k = k->next)
    n_data += k->string && strcmp(k->string, "data") == 0;
  same_json(data, &sc.data, d);
  FUZZ_CHECK(sc.data_kind == (int)data[sc.data.start]);
  if (cJSON_IsArray(d)) {
    size_t n = (size_t)cJSON_GetArraySize(d), i = 0;
    FUZZ_CHECK(sc.data_kind == '[' && sc.n_items == n);
    for (const cJSON *it = d->child; it; it = it->next, i++) {
      if (i < SPANS)
        same_json(data, &spans[i], it);
      if (n_data == 1 && i < PREDICT_MAX_BATCH)
        check_item(it);
    }
  } else if (cJSON_IsObject(d)) {
    FUZZ_CHECK(sc.data_kind == '{');
    if (n_data == 1)
      check_item(d);
  } else {
    check_item(d); /* not an object: one report entry */
  }
  cJSON_Delete(root);
  return 0;
}
