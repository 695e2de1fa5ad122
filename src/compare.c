/* compare.c - production against its shadow over the logged predictions
 * (compare.h).
 *
 * Two queries on one connection.  The agreement is one aggregate over the
 * join of prediction_shadow with the log on (log_source, log_seq) (the
 * log's unique key starts with them).  The labelled pairs are streamed
 * sorted by customer and month, newest first, so keeping the first pair
 * of each (customer, month) needs no memory; the label is the
 * label-feedback task's join (task_feedback.c), so `models compare` and
 * live_metrics agree on what a label is.  The decision reuses the
 * validate gate's test (stats_paired_gate) and parameters (the spec's
 * validate block) unchanged.
 */
#include "mlopsd/compare.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"

#define DB_WAIT_MS 10000
#define LOG_TABLE "credit_predictions_api_log"
#define KEY_MAX 48 /* customer id (10 chars, UTF-8) + month */

enum err_code compare_versions(struct registry *reg, const char *name,
                               int *production, int *shadow, struct err *e)
{
  int latest;
  *production = *shadow = 0;
  if (!fsx_name_valid(name))
    return err_set(e, ERR_INVAL, "'%.128s' is not a valid model name", name);
  if (registry_latest(reg, name, &latest, e) != ERR_OK)
    return err_set(e, ERR_NOTFOUND, "unknown model '%s': no version in the "
                                    "registry %s",
                   name, registry_where(reg));
  if (registry_alias_get(reg, name, REGISTRY_PRODUCTION, production, e) !=
      ERR_OK)
    return err_set(e, ERR_NOTFOUND, "model '%s' has no production version "
                                    "(alias %s not set): nothing to compare "
                                    "with",
                   name, REGISTRY_PRODUCTION);
  if (registry_alias_get(reg, name, PIPELINE_STAGING, shadow, e) != ERR_OK)
    return err_set(e, ERR_NOTFOUND,
                   "model '%s' has no staging version (alias %s not set): "
                   "no shadow challenger runs; set one with `mlopsd models "
                   "promote %s VERSION --alias %s`",
                   name, PIPELINE_STAGING, name, PIPELINE_STAGING);
  if (*shadow == *production)
    return err_set(e, ERR_NOTFOUND,
                   "model '%s': staging is production (version %d): no "
                   "challenger to compare",
                   name, *production);
  return ERR_OK;
}

/* The spec's validate.max_regression and confidence. */
static void decision_params(const char *specs_dir, const char *name,
                            double *maxreg, double *level)
{
  char path[1024];
  struct spec *sp = NULL;
  struct err e = {0};
  *maxreg = 0.02;
  *level = 0.95;
  static const char *const ext[] = {".yaml", ".yml"};
  for (size_t i = 0; i < 2 && !sp; i++) {
    snprintf(path, sizeof(path), "%s/%s%s", specs_dir, name, ext[i]);
    if (spec_load(path, &sp, &e) != ERR_OK)
      sp = NULL;
  }
  if (sp) {
    *maxreg = sp->max_regression;
    *level = sp->confidence;
    spec_destroy(sp);
  }
}

static int agree_cb(void *user, const struct db_row *row)
{
  struct compare_result *r = user;
  r->pairs = db_row_i64(row, 0);
  r->agree = db_row_i64(row, 1);
  return 0;
}

struct walk {
  struct compare_result *r;
  char last[KEY_MAX];
  int have_last;
};

/* Columns: customer_id, month, production's, the shadow's, label. */
static int pair_cb(void *user, const struct db_row *row)
{
  struct walk *w = user;
  struct compare_result *r = w->r;
  char key[KEY_MAX];
  size_t cl = 0;
  const char *cid = db_row_str(row, 0, &cl);
  const char *mon = db_row_str(row, 1, NULL);
  snprintf(key, sizeof(key), "%.*s|%s", (int)(cl < 40 ? cl : 40),
           cid ? cid : "", mon ? mon : "");
  if (w->have_last && strcmp(key, w->last) == 0)
    return 0; /* an older pair of the same customer and month */
  memcpy(w->last, key, sizeof(key));
  w->have_last = 1;
  r->customers++;
  const char *pp = db_row_str(row, 2, NULL), *sp = db_row_str(row, 3, NULL);
  const char *label = db_row_str(row, 4, NULL);
  if (!label || !pp || !sp) {
    r->unlabelled++;
    return 0;
  }
  int pc = strcmp(pp, label) == 0, sc = strcmp(sp, label) == 0;
  r->labelled++;
  r->prod_correct += pc;
  r->shadow_correct += sc;
  r->b += sc && !pc;
  r->c += pc && !sc;
  return 0;
}

static void decide(struct compare_result *r)
{
  struct stats_paired *st = &r->paired;
  stats_paired_gate(r->labelled, r->b, r->c, r->level, r->max_regression,
                    st);
  r->min_rows = st->min_rows > PIPELINE_MIN_ROWS ? st->min_rows
                                                 : PIPELINE_MIN_ROWS;
  r->pass = st->pass && r->labelled >= r->min_rows;
  if (r->labelled < r->min_rows)
    snprintf(r->reason, sizeof(r->reason),
             "%ld labelled pairs, fewer than the %ld needed to tell a "
             "regression of %g at this disagreement (%.1f%% of pairs) with "
             "80%% power: production stays",
             r->labelled, r->min_rows, r->max_regression,
             100.0 * (double)(r->b + r->c) /
                 (double)(r->labelled ? r->labelled : 1));
  else if (!r->pass)
    snprintf(r->reason, sizeof(r->reason),
             "lower bound %+.4f of shadow minus production accuracy is not "
             "above -%g (%g%% one-sided): production stays",
             st->lo, r->max_regression, 100 * r->level);
  else
    snprintf(r->reason, sizeof(r->reason),
             "lower bound %+.4f of shadow minus production accuracy > -%g "
             "(%g%% one-sided) on %ld labelled pairs",
             st->lo, r->max_regression, 100 * r->level, r->labelled);
}

enum err_code compare_run(struct db_pool *db, const char *specs_dir,
                          const char *name, int production, int shadow,
                          struct compare_result *r, struct err *e)
{
  struct db_conn *c = NULL;
  memset(r, 0, sizeof(*r));
  snprintf(r->model, sizeof(r->model), "%s", name);
  r->production = production;
  r->shadow = shadow;
  decision_params(specs_dir, name, &r->max_regression, &r->level);
  enum err_code rc = db_acquire(db, DB_WAIT_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[3] = {DB_V_STR(name), DB_V_INT(shadow),
                        DB_V_INT(production)};
  /* months are UTC months, as the log's created_at (plog.c writes UTC);
   * the session's zone is put back for the pool's next user */
  rc = db_exec(c, "SET @mlopsd_tz = @@session.time_zone, time_zone = "
                  "'+00:00'",
               NULL, e);
  if (rc == ERR_OK)
    rc = db_query(c,
                "SELECT COUNT(*), COALESCE(SUM(p.prediction = s.prediction), "
                "0) FROM prediction_shadow s JOIN " LOG_TABLE " p ON "
                "p.log_source = s.log_source AND p.log_seq = s.log_seq WHERE "
                "s.model_name = ? AND s.model_version = ? AND "
                "p.model_version = ?",
                p, 3, agree_cb, r, NULL, e);
  if (rc != ERR_OK) {
    err_prefix(e, "compare %s: counting the pairs", name);
  } else {
    struct walk w = {.r = r};
    rc = db_query(
        c,
        "SELECT p.customer_id, DATE_FORMAT(p.created_at, '%Y-%m'), "
        "p.prediction, s.prediction,"
        " (SELECT cs.credit_score FROM credit_score cs"
        "   WHERE cs.customer_id = p.customer_id"
        "     AND cs.date >= DATE_FORMAT(p.created_at, '%Y-%m-01')"
        "     AND cs.date < DATE_FORMAT(p.created_at + INTERVAL 1 MONTH,"
        "                               '%Y-%m-01')"
        "   ORDER BY cs.date DESC, cs.id DESC LIMIT 1)"
        " FROM prediction_shadow s JOIN " LOG_TABLE " p ON"
        " p.log_source = s.log_source AND p.log_seq = s.log_seq"
        " WHERE s.model_name = ? AND s.model_version = ? AND"
        " p.model_version = ?"
        " ORDER BY p.customer_id, 2, p.created_at DESC, s.log_source DESC,"
        " s.log_seq DESC",
        p, 3, pair_cb, &w, NULL, e);
    if (rc != ERR_OK)
      err_prefix(e, "compare %s: reading the labelled pairs", name);
  }
  struct err te = {0};
  if (db_exec(c, "SET time_zone = @mlopsd_tz", NULL, &te) != ERR_OK &&
      rc == ERR_OK)
    rc = err_set(e, te.code, "compare %s: %s", name, te.msg);
  db_release(db, c);
  if (rc == ERR_OK)
    decide(r);
  return rc;
}

static void add_rate(cJSON *o, const char *k, long num, long den)
{
  if (den > 0)
    cJSON_AddNumberToObject(o, k, (double)num / (double)den);
  else
    cJSON_AddNullToObject(o, k);
}

static void add_num(cJSON *o, const char *k, double x)
{
  if (isfinite(x))
    cJSON_AddNumberToObject(o, k, x);
  else
    cJSON_AddNullToObject(o, k);
}

cJSON *compare_json(const struct compare_result *r)
{
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  cJSON_AddStringToObject(o, "model", r->model);
  cJSON_AddNumberToObject(o, "production_version", r->production);
  cJSON_AddNumberToObject(o, "shadow_version", r->shadow);
  cJSON_AddNumberToObject(o, "pairs", (double)r->pairs);
  cJSON *ag = cJSON_AddObjectToObject(o, "agreement");
  if (ag) {
    cJSON_AddNumberToObject(ag, "agree", (double)r->agree);
    add_rate(ag, "rate", r->agree, r->pairs);
  }
  cJSON *lb = cJSON_AddObjectToObject(o, "labels");
  if (lb) {
    cJSON_AddNumberToObject(lb, "customers", (double)r->customers);
    cJSON_AddNumberToObject(lb, "labelled", (double)r->labelled);
    cJSON_AddNumberToObject(lb, "unlabelled", (double)r->unlabelled);
    add_rate(lb, "production_accuracy", r->prod_correct, r->labelled);
    add_rate(lb, "shadow_accuracy", r->shadow_correct, r->labelled);
    cJSON_AddNumberToObject(lb, "only_shadow_right", (double)r->b);
    cJSON_AddNumberToObject(lb, "only_production_right", (double)r->c);
  }
  cJSON *t = cJSON_AddObjectToObject(o, "test");
  if (t) {
    add_num(t, "difference", r->labelled ? r->paired.difference : NAN);
    cJSON *iv = cJSON_AddArrayToObject(t, "interval");
    if (iv && r->labelled) {
      cJSON_AddItemToArray(iv, cJSON_CreateNumber(r->paired.lo));
      cJSON_AddItemToArray(iv, cJSON_CreateNumber(r->paired.hi));
    }
    cJSON_AddNumberToObject(t, "level", r->level);
    add_num(t, "p_value", r->labelled ? r->paired.p_value : NAN);
    cJSON_AddNumberToObject(t, "max_regression", r->max_regression);
    cJSON_AddNumberToObject(t, "min_rows", (double)r->min_rows);
    cJSON_AddStringToObject(t, "method", "exact McNemar, conditional "
                                         "Clopper-Pearson interval");
  }
  cJSON_AddBoolToObject(o, "pass", r->pass);
  cJSON_AddStringToObject(o, "reason", r->reason);
  return o;
}

void compare_verdict(const struct compare_result *r,
                     struct pipeline_verdict *v, struct pipeline_gate_opts *g)
{
  memset(v, 0, sizeof(*v));
  memset(g, 0, sizeof(*g));
  v->pass = r->pass;
  v->candidate = r->shadow;
  v->production = r->production;
  v->cand_score = r->labelled ? (double)r->shadow_correct /
                                    (double)r->labelled
                              : NAN;
  v->prod_score = r->labelled ? (double)r->prod_correct /
                                    (double)r->labelled
                              : NAN;
  v->n_rows = (size_t)r->labelled;
  v->is_paired = 1;
  v->paired = r->paired;
  v->min_rows = (size_t)r->min_rows;
  snprintf(v->method, sizeof(v->method),
           "exact McNemar on shadow pairs");
  snprintf(v->message, sizeof(v->message), "shadow %d vs production %d: %s",
           r->shadow, r->production, r->reason);
  g->metric = SPEC_METRIC_ACCURACY;
  g->paired = 1;
  g->max_regression = r->max_regression;
  g->confidence = r->level;
  g->min_rows = PIPELINE_MIN_ROWS;
}
