/* fuzz_tree.c - libFuzzer target for the native model reader
 * (tree_compile_buffer, tree.h): mlopsd's own UBJSON/JSON parser for
 * XGBoost model files and the compiler behind the native evaluator.  A
 * model file comes from disk (the registry) and may be corrupt or
 * truncated; the reader must refuse it cleanly.
 *
 * Input: the bytes of a model file (model.ubj or model.json).  When it
 * compiles, rows are generated from its thresholds (tree_gen_rows) and
 * evaluated (tree_predict, tree_predict_margin).  Checked beyond "no
 * crash": accessors agree (output_dim vs objective and groups), every
 * probability output is in [0, 1] and softprob rows sum to ~1, a wrong
 * feature count is refused.
 */
#include <math.h>

#include "fuzz.h"

#include "mlopsd/tree.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_quiet();
  return 0;
}

#define NROWS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct tree_model *m = NULL;
  struct err e = {0};
  if (tree_compile_buffer(data, size, &m, &e) != ERR_OK) {
    FUZZ_CHECK(m == NULL && e.msg[0]);
    return 0;
  }
  size_t nfeat = tree_nfeat(m), dim = tree_output_dim(m);
  size_t ng = tree_num_group(m);
  enum tree_objective obj = tree_objective(m);
  FUZZ_CHECK(tree_objective_name(m) != NULL);
  FUZZ_CHECK(ng >= 1 && dim >= 1);
  FUZZ_CHECK(obj == TREE_OBJ_SOFTPROB ? dim == ng : dim == 1);
  FUZZ_CHECK(tree_num_nodes(m) >= tree_num_trees(m));
  if (nfeat > 100000 || ng > TREE_MAX_CLASSES) { /* keep the run small */
    tree_destroy(m);
    return 0;
  }
  float *rows = malloc(NROWS * (nfeat ? nfeat : 1) * sizeof(float));
  float *out = malloc(NROWS * dim * sizeof(float));
  float *mar = malloc(NROWS * ng * sizeof(float));
  FUZZ_CHECK(rows && out && mar);
  tree_gen_rows(m, NROWS, (uint64_t)size, rows);
  FUZZ_CHECK(tree_predict(m, rows, NROWS, nfeat, out, &e) == ERR_OK);
  FUZZ_CHECK(tree_predict_margin(m, rows, NROWS, nfeat, mar, &e) == ERR_OK);
  FUZZ_CHECK(tree_predict(m, rows, NROWS, nfeat + 1, out, &e) == ERR_INVAL);
  for (size_t i = 0; i < NROWS; i++) {
    const float *o = out + i * dim;
    if (obj == TREE_OBJ_LOGISTIC && !isnan(o[0]))
      FUZZ_CHECK(o[0] >= 0.0f && o[0] <= 1.0f);
    if (obj == TREE_OBJ_SOFTMAX)
      FUZZ_CHECK(o[0] >= 0.0f && o[0] < (float)ng);
    if (obj == TREE_OBJ_SOFTPROB) {
      double sum = 0;
      int finite = 1;
      for (size_t k = 0; k < dim; k++) {
        finite &= isfinite(mar[i * ng + k]) != 0;
        sum += o[k];
      }
      if (finite)
        FUZZ_CHECK(fabs(sum - 1.0) < 1e-3);
    }
  }
  free(rows);
  free(out);
  free(mar);
  tree_destroy(m);
  return 0;
}
