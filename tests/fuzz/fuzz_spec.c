/* fuzz_spec.c - libFuzzer target for the model-spec loader
 * (spec_load_buf, spec.h): config/models/NAME.yaml.
 *
 * Input: the bytes of a spec file.  Its path is taken as
 * "models/NAME.yaml" with NAME the value of a top-level "name:" line when
 * it has one (the loader insists that name equals the file name, so this
 * lets the fuzzer past that check).  A spec that loads is then used the
 * way training and serving use it: accessors, every grid trial, request
 * validation of a few objects, and a prep fitted on synthetic rows that
 * goes through preprocess.json and back.  Checked beyond "no crash": the
 * spec's documented invariants (feature order and counts, grid size,
 * task vs classes, val_fraction range) and that the prep round trip gives
 * the same output row bits.
 */
#include <ctype.h>

#include "fuzz.h"
#include "mlopsd/fsx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  return 0;
}

static void spec_path(const uint8_t *data, size_t size, char *buf,
                      size_t cap)
{
  snprintf(buf, cap, "models/m.yaml");
  for (size_t i = 0; i + 5 < size; i++) {
    if ((i && data[i - 1] != '\n') || memcmp(data + i, "name:", 5) != 0)
      continue;
    size_t j = i + 5, n = 0;
    while (j < size && (data[j] == ' ' || data[j] == '"' || data[j] == '\''))
      j++;
    while (j + n < size && n < 200 &&
           (isalnum(data[j + n]) || strchr("_.-", data[j + n])) &&
           data[j + n])
      n++;
    if (n)
      snprintf(buf, cap, "models/%.*s.yaml", (int)n, (const char *)data + j);
    return;
  }
}

static const char *const requests[] = {
    "{}",
    "[]",
    "{\"age\": 18, \"occupation\": \"Lawyer\", \"x\": 1, \"y\": \"a b\"}",
    "{\"age\": -1.5, \"customer_id\": \"C1\", \"credit_mix\": \"Good\"}",
    "{\"age\": null, \"a\": 1e308, \"b\": true, \"c\": [1], \"d\": {}}",
};

static void check_spec(const struct spec *s)
{
  FUZZ_CHECK(s->name && fsx_name_valid(s->name));
  FUZZ_CHECK(s->n_features ==
             s->n_numeric + s->n_categorical + s->n_text);
  for (size_t i = 0; i < s->n_features; i++) {
    const struct spec_feature *f = &s->features[i];
    enum spec_kind want = i < s->n_numeric ? SPEC_NUMERIC
                          : i < s->n_numeric + s->n_categorical
                              ? SPEC_CATEGORICAL
                              : SPEC_TEXT;
    FUZZ_CHECK(f->kind == want);
    FUZZ_CHECK(spec_feature_index(s, f->name) == (int)i);
    FUZZ_CHECK(spec_kind_name(f->kind) != NULL);
    if (f->kind == SPEC_TEXT)
      FUZZ_CHECK(f->delimiters && f->delimiters[0]);
  }
  FUZZ_CHECK(s->task == SPEC_TASK_REGRESSION ? s->target.n_classes == 0
             : s->task == SPEC_TASK_BINARY   ? s->target.n_classes == 2
                                             : s->target.n_classes >= 3);
  for (size_t c = 0; c < s->target.n_classes; c++)
    FUZZ_CHECK(spec_class_index(s, s->target.classes[c]) == (int)c);
  FUZZ_CHECK(s->val_fraction > 0 && s->val_fraction < 1);
  FUZZ_CHECK(s->tolerance >= 0);
  FUZZ_CHECK(spec_param(s, "objective") != NULL);
  FUZZ_CHECK(s->grid_size >= 1);
  size_t product = 1;
  for (size_t a = 0; a < s->n_grid; a++)
    product *= s->grid[a].n_values;
  FUZZ_CHECK(product == s->grid_size);
  size_t trials = s->grid_size < 64 ? s->grid_size : 64;
  for (size_t t = 0; t < trials; t++)
    for (size_t a = 0; a < s->n_grid; a++)
      FUZZ_CHECK(spec_grid_value(s, t, a) != NULL);
  FUZZ_CHECK(spec_grid_value(s, s->grid_size, 0) == NULL);
  (void)spec_metric_name(s->metric);
  (void)spec_task_name(s->task);
  (void)spec_metric_higher_is_better(s->metric);
}

static void check_requests(const struct spec *s, const struct prep *p,
                           float *row)
{
  static struct spec_report rep;
  for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++) {
    cJSON *o = cJSON_Parse(requests[i]);
    FUZZ_CHECK(o != NULL);
    struct err e = {0};
    if (spec_validate_request(s, o, &rep) == ERR_OK)
      FUZZ_CHECK(prep_transform_json(p, o, row, &e) == ERR_OK);
    else
      cJSON_Delete(spec_report_json(&rep));
    cJSON_Delete(o);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char path[256];
  struct spec *s = NULL;
  struct err e = {0};
  spec_path(data, size, path, sizeof(path));
  if (spec_load_buf(path, (const char *)data, size, &s, &e) != ERR_OK) {
    FUZZ_CHECK(s == NULL && e.msg[0]);
    return 0;
  }
  check_spec(s);
  if (s->n_features == 0 || s->n_features > 512) {
    spec_destroy(s);
    return 0;
  }
  struct prep *p = fuzz_fit_prep(s);
  size_t nout = prep_n_outputs(p);
  FUZZ_CHECK(prep_n_inputs(p) == s->n_features);
  float *row = calloc(nout, sizeof(float));
  float *row2 = calloc(nout, sizeof(float));
  FUZZ_CHECK(row && row2);
  check_requests(s, p, row);

  /* preprocess.json round trip: same outputs, same bits */
  cJSON *j = prep_to_json(p);
  FUZZ_CHECK(j != NULL);
  struct prep *p2 = NULL;
  if (prep_from_json(j, "preprocess.json", &p2, &e) != ERR_OK) {
    fprintf(stderr, "prep round trip refused: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
  FUZZ_CHECK(prep_n_outputs(p2) == nout);
  fuzz_same_transform(p, p2, requests[2], row, row2, nout);
  for (size_t k = 0; k < nout; k++)
    FUZZ_CHECK(strcmp(prep_output_name(p, k), prep_output_name(p2, k)) == 0);
  cJSON_Delete(j);
  prep_destroy(p2);
  prep_destroy(p);
  free(row);
  free(row2);
  spec_destroy(s);
  return 0;
}
