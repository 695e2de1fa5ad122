/* fuzz_meta.c - libFuzzer target for the registry's small-file readers as
 * serving uses them: meta.json (registry_read_meta, then the copy of
 * creation_time/params/metrics into /metadata), sample.json
 * (registry_read_json, then each row of "rows" through the course prep,
 * as serving's verification rows) and the alias file
 * (registry_alias_get).
 *
 * Input: one file's bytes, written as all three of
 * REG/credit_score_classification/versions/1/{meta.json,sample.json} and
 * REG/credit_score_classification/aliases/production.  Checked beyond
 * "no crash": a JSON error names the byte offset within the file; an
 * alias that reads gives a version >= 1; version listing still works.
 */
#include "fuzz.h"

#include "mlopsd/registry.h"

#define MODEL "credit_score_classification"
#define SAMPLE_MAX 2000 /* serving.h SERVING_SAMPLE_MAX */

static struct registry *reg;
static struct prep *prep;
static float *row;
static char meta_path[600], sample_path[600], alias_path[600];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  char root[400], p[600];
  struct err e = {0};
  (void)argc;
  (void)argv;
  fuzz_quiet();
  snprintf(root, sizeof(root), "%s/reg", fuzz_dir("meta"));
  FUZZ_CHECK(registry_open(root, &reg, &e) == ERR_OK);
  snprintf(p, sizeof(p), "%s/" MODEL, root);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof(p), "%s/" MODEL "/versions", root);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof(p), "%s/" MODEL "/versions/1", root);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(p, sizeof(p), "%s/" MODEL "/aliases", root);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(meta_path, sizeof(meta_path),
           "%s/" MODEL "/versions/1/meta.json", root);
  snprintf(sample_path, sizeof(sample_path),
           "%s/" MODEL "/versions/1/sample.json", root);
  snprintf(alias_path, sizeof(alias_path),
           "%s/" MODEL "/aliases/production", root);
  struct spec *s =
      fuzz_load_spec("config/models/credit_score_classification.yaml");
  prep = fuzz_fit_prep(s);
  spec_destroy(s);
  row = calloc(prep_n_outputs(prep), sizeof(float));
  return row ? 0 : -1;
}

static cJSON *meta_copy(const cJSON *meta, const char *key)
{
  const cJSON *v = meta ? cJSON_GetObjectItemCaseSensitive(meta, key) : NULL;
  return v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct err e = {0};
  cJSON *doc = NULL;
  fuzz_write(meta_path, data, size);
  fuzz_write(sample_path, data, size);
  fuzz_write(alias_path, data, size);

  enum err_code rc = registry_read_meta(reg, MODEL, 1, &doc, &e);
  if (rc == ERR_OK) {
    cJSON *o = cJSON_CreateObject();
    FUZZ_CHECK(o != NULL);
    cJSON_AddItemToObject(o, "creation_time", meta_copy(doc, "creation_time"));
    cJSON_AddItemToObject(o, "params", meta_copy(doc, "params"));
    cJSON_AddItemToObject(o, "metrics", meta_copy(doc, "metrics"));
    char *txt = cJSON_PrintUnformatted(o);
    FUZZ_CHECK(txt != NULL);
    free(txt);
    cJSON_Delete(o);
    cJSON_Delete(doc);
  } else {
    FUZZ_CHECK(rc == ERR_PARSE && doc == NULL && strstr(e.msg, "byte"));
  }

  rc = registry_read_json(reg, MODEL, 1, "sample.json", &doc, &e);
  if (rc == ERR_OK) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "rows");
    const cJSON *it, *none = NULL;
    size_t k = 0;
    if (!cJSON_IsArray(arr))
      arr = none;
    cJSON_ArrayForEach(it, arr)
    {
      if (k++ >= SAMPLE_MAX)
        break;
      (void)prep_transform_json(prep, it, row, &e);
    }
    cJSON_Delete(doc);
  }

  int v = 0;
  rc = registry_alias_get(reg, MODEL, REGISTRY_PRODUCTION, &v, &e);
  if (rc == ERR_OK)
    FUZZ_CHECK(v >= 1);
  else
    FUZZ_CHECK(rc == ERR_PARSE || rc == ERR_IO);

  int *vs = NULL;
  size_t n = 0;
  FUZZ_CHECK(registry_list_versions(reg, MODEL, &vs, &n, &e) == ERR_OK);
  FUZZ_CHECK(n == 1 && vs[0] == 1);
  free(vs);
  return 0;
}
