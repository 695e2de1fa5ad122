/* shadow.c - the shadow challenger's prediction beside production's
 * (shadow.h).
 *
 * Why on the request thread, before the log append: the shadow row is
 * stored in the same transaction as the main row and must survive a
 * kill the same way, so it travels inside the row through the buffer
 * file and the spool (plog.h).  The cost is one more preprocessing and
 * predict per item (the native evaluator: a few microseconds); the
 * shadow's own preprocessing is applied (its vocabularies and scalers
 * may differ from production's).  Nothing here can fail the request:
 * the answer is production's and was already built.
 */
#include "mlopsd/shadow.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/model.h"
#include "mlopsd/plog.h"
#include "mlopsd/prep.h"
#include "mlopsd/serving.h"
#include "mlopsd/vec.h"

#define MOD "shadow"
#define WARN_EVERY_S 10
#define VALUE_TEXT 24

struct shadow_scratch {
  float *rows, *out;
  size_t rows_cap, out_cap;
  unsigned char *ok;
  size_t ok_cap;
  char (*txt)[VALUE_TEXT]; /* regression values as text */
  size_t txt_cap;
};

static _Thread_local struct shadow_scratch *tl_s;
static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static _Atomic long last_warn_s;

/* A thread's scratch is freed when the thread exits (HTTP threads of a
 * server stopped and started again, tests). */
static void scratch_free(void *arg)
{
  struct shadow_scratch *x = arg;
  free(x->rows);
  free(x->out);
  free(x->ok);
  free(x->txt);
  free(x);
}

static void key_init(void)
{
  if (pthread_key_create(&key, scratch_free) != 0)
    LOG_E(MOD, "no thread key: shadow scratch is not freed at thread exit");
}

static struct shadow_scratch *scratch(void)
{
  if (!tl_s) {
    pthread_once(&key_once, key_init);
    tl_s = calloc(1, sizeof(*tl_s));
    if (tl_s)
      (void)pthread_setspecific(key, tl_s);
  }
  return tl_s;
}

/* One warning per WARN_EVERY_S for the whole process. */
static void warn(const struct serving_model *sh, const char *msg)
{
  long now = (long)time(NULL), last = atomic_load(&last_warn_s);
  if (now - last < WARN_EVERY_S ||
      !atomic_compare_exchange_strong(&last_warn_s, &last, now))
    return;
  LOG_W(MOD, "model=%s shadow version=%d did not answer an item (no "
             "shadow row for it): %s",
        serving_model_name(sh), serving_model_version(sh), msg);
}

struct serving_model *shadow_predict(struct serving *s,
                                     const struct serving_model *prod,
                                     const cJSON *const *items, size_t n,
                                     struct plog_row *rows)
{
  for (size_t i = 0; i < n; i++)
    rows[i].shadow_version = 0;
  struct serving_model *sh = serving_acquire_shadow(s, prod);
  if (!sh)
    return NULL;
  size_t nf = serving_model_nfeat(sh), od = serving_model_out_dim(sh);
  const struct prep *pr = serving_model_prep(sh);
  struct err e = {0};
  struct shadow_scratch *x = scratch();
  if (!x || VEC_RESERVE(x->rows, x->rows_cap, n * nf) ||
      VEC_RESERVE(x->out, x->out_cap, n * od) ||
      VEC_RESERVE(x->ok, x->ok_cap, n) ||
      VEC_RESERVE(x->txt, x->txt_cap, n)) {
    warn(sh, "out of memory");
    serving_release(sh);
    return NULL;
  }
  size_t good = 0;
  for (size_t i = 0; i < n; i++) {
    x->ok[i] = prep_transform_json(pr, items[i], x->rows + i * nf, &e) ==
               ERR_OK;
    if (!x->ok[i]) {
      warn(sh, e.msg);
      for (size_t k = 0; k < nf; k++)
        x->rows[i * nf + k] = NAN; /* predicted, not used */
    }
    good += x->ok[i];
  }
  /* refused items' rows are predicted too (all missing): one batch call
   * is cheaper than compacting, and their answers are not used */
  if (!good ||
      model_predict(serving_model_model(sh), x->rows, n, x->out, &e) !=
          ERR_OK) {
    if (good)
      warn(sh, e.msg);
    serving_release(sh);
    return NULL;
  }
  int version = serving_model_version(sh);
  for (size_t i = 0; i < n; i++) {
    const char *label;
    double conf, value;
    if (!x->ok[i])
      continue;
    serving_model_decide(sh, x->out + i * od, &label, &conf, &value);
    if (!label) {
      snprintf(x->txt[i], VALUE_TEXT, "%.6g", value);
      label = x->txt[i];
      conf = NAN;
    }
    rows[i].shadow_version = version;
    rows[i].shadow_prediction = label;
    rows[i].shadow_confidence = conf;
  }
  return sh;
}
