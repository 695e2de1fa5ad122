/* fuzz_prep.c - libFuzzer target for the preprocess.json reader
 * (prep_load_json / prep_from_json, prep.h): a version's fitted
 * preprocessing, read from the registry when a model is served.
 *
 * Input: the bytes of a preprocess.json, written to a scratch file and
 * read with prep_load_json.  A prep that loads then transforms a few
 * request objects and is written back (prep_to_json) and read again.
 * Checked beyond "no crash": output names exist for every column and the
 * columns of the inputs are contiguous; the round trip is a fixed point
 * (same JSON text, same output names, same output bits).
 *
 * Seeds: MLOPSD_FUZZ_MKSEED=DIR build/fuzz/fuzz_prep writes DIR/seed-*.json
 * (preps fitted on synthetic rows for the course spec and the unit-test
 * specs) and exits.
 */
#include "fuzz.h"

static const char *path;
static float *row, *row2;
static size_t row_cap;

static const char *const requests[] = {
    "{}",
    "{\"age\": 18, \"occupation\": \"Lawyer\", \"credit_mix\": \"Good\", "
    "\"type_of_loan\": \"credit-builder loan,home equity loan\", \"x\": 2.5, "
    "\"payment_behaviour\": \"High_spent_Medium_value_payments\"}",
    "{\"age\": \"18\", \"occupation\": 3}",
    "{\"age\": null, \"occupation\": null, \"type_of_loan\": \"\"}",
};

static void mkseed(const char *dir)
{
  static const char *const specs[] = {
      "config/models/credit_score_classification.yaml",
      "tests/unit/data/models/ok/binary_ok.yaml",
      "tests/unit/data/models/ok/regress_ok.yaml"};
  for (size_t i = 0; i < 3; i++) {
    char out[1024];
    struct err e = {0};
    struct spec *s = fuzz_load_spec(specs[i]);
    struct prep *p = fuzz_fit_prep(s);
    snprintf(out, sizeof(out), "%s/seed-%s.json", dir, s->name);
    if (prep_save_json(p, out, &e) != ERR_OK) {
      fprintf(stderr, "%s\n", e.msg);
      exit(1);
    }
    prep_destroy(p);
    spec_destroy(s);
  }
  exit(0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  static char buf[512];
  (void)argc;
  (void)argv;
  fuzz_init_seeds(mkseed);
  snprintf(buf, sizeof(buf), "%s/preprocess.json", fuzz_dir("prep"));
  path = buf;
  return 0;
}

/* Room for n floats in row and row2. */
static void grow(size_t n)
{
  if (n > row_cap) {
    free(row);
    free(row2);
    row = calloc(n, sizeof(float));
    row2 = calloc(n, sizeof(float));
    FUZZ_CHECK(row && row2);
    row_cap = n;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct prep *p = NULL, *p2 = NULL;
  struct err e = {0};
  fuzz_write(path, data, size);
  if (prep_load_json(path, &p, &e) != ERR_OK) {
    FUZZ_CHECK(p == NULL && e.msg[0]);
    return 0;
  }
  size_t nin = prep_n_inputs(p), nout = prep_n_outputs(p);
  for (size_t i = 0; i < nin; i++) {
    FUZZ_CHECK(prep_input_name(p, i) != NULL);
    size_t off = prep_input_offset(p, i);
    FUZZ_CHECK(off <= nout);
    if (i + 1 < nin)
      FUZZ_CHECK(prep_input_offset(p, i + 1) >= off);
    double c, sc;
    if (prep_input_kind(p, i) == SPEC_NUMERIC)
      FUZZ_CHECK(prep_numeric_params(p, i, &c, &sc) == 0);
    else
      FUZZ_CHECK(prep_numeric_params(p, i, &c, &sc) == -1);
  }
  for (size_t j = 0; j < nout; j++)
    FUZZ_CHECK(prep_output_name(p, j) != NULL);
  FUZZ_CHECK(prep_output_name(p, nout) == NULL);
  cJSON *schema = prep_schema_json(p);
  FUZZ_CHECK(schema != NULL);
  cJSON_Delete(schema);

  cJSON *j1 = prep_to_json(p);
  FUZZ_CHECK(j1 != NULL);
  if (prep_from_json(j1, "round trip", &p2, &e) != ERR_OK) {
    fprintf(stderr, "prep_to_json output refused: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
  cJSON *j2 = prep_to_json(p2);
  char *t1 = cJSON_PrintUnformatted(j1), *t2 = cJSON_PrintUnformatted(j2);
  FUZZ_CHECK(t1 && t2 && strcmp(t1, t2) == 0);
  free(t1);
  free(t2);
  cJSON_Delete(j1);
  cJSON_Delete(j2);
  FUZZ_CHECK(prep_n_outputs(p2) == nout);

  grow(nout ? nout : 1);
  for (size_t i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
    fuzz_same_transform(p, p2, requests[i], row, row2, nout);
  prep_destroy(p2);
  prep_destroy(p);
  return 0;
}
