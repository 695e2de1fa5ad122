/* task_drift.c - the `drift` task type: compare the inputs of the latest
 * logged predictions with the production version's training reference
 * (Population Stability Index per feature, psi.h), store one drift_report
 * row, and start the CT DAG when the population moved too far.
 *
 * The window is the newest `window` rows of credit_predictions_api_log
 * for the model (or with no model recorded), read newest first along the
 * primary key and streamed: each row's features JSON is parsed, counted
 * into the live histograms and dropped, so memory does not grow with the
 * window.  Verdicts: insufficient_data (fewer than min_rows rows: no
 * trigger, the task succeeds), drift (a feature whose chi-square test
 * against the reference rejects at family-wise level alpha after Holm's
 * correction AND whose PSI is above threshold: psi.h, "The test"), ok.
 * docs/monitoring.md has the fields and the report format.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/db.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/psi.h"
#include "mlopsd/registry.h"
#include "mlopsd/stats.h"
#include "mlopsd/task.h"
#include "task_monitor_int.h"
#include "task_model_int.h"

#define DRIFT_WINDOW_DEFAULT 1000
#define DRIFT_WINDOW_MAX 10000000
#define DRIFT_THRESHOLD_DEFAULT 0.2
#define DRIFT_ALPHA_DEFAULT 0.01
/* measured: under 1% false triggers on no-drift windows of this size
 * (tests/integration/test_drift.c, false_trigger_rate) */
#define DRIFT_MIN_ROWS_DEFAULT 200
#define DRIFT_LOG_TOP 5

static const struct task_field drift_fields[] = {
    MONITOR_COMMON_FIELDS,
    {.name = "window", .kind = TASK_F_INT},
    {.name = "threshold", .role = TASK_ROLE_DRIFT_THRESHOLD},
    {.name = "min_rows", .kind = TASK_F_INT},
    {.name = "alpha"},
    {.name = NULL},
};

struct drift_opts {
  long window, min_rows;
  double threshold; /* the PSI a drifting feature must exceed */
  double alpha;     /* family-wise level of the tests */
};

static enum err_code read_opts(const struct task_ctx *t,
                               struct drift_opts *o, struct err *e)
{
  enum err_code rc;
  if ((rc = task_field_int(t, "window", DRIFT_WINDOW_DEFAULT, 1,
                           DRIFT_WINDOW_MAX, &o->window, e)) ||
      (rc = task_field_int(t, "min_rows", DRIFT_MIN_ROWS_DEFAULT, 0,
                           DRIFT_WINDOW_MAX, &o->min_rows, e)) ||
      (rc = task_field_double(t, "threshold", DRIFT_THRESHOLD_DEFAULT, 0,
                              1e9, &o->threshold, e)) ||
      (rc = task_field_double(t, "alpha", DRIFT_ALPHA_DEFAULT, 1e-12, 1,
                              &o->alpha, e)))
    return rc;
  return ERR_OK;
}

static enum err_code drift_check(const struct task_ctx *t, struct err *e)
{
  struct drift_opts o;
  enum err_code rc = read_opts(t, &o, e);
  return rc ? rc : task_monitor_check_common(t, e);
}

/* ---- reading the window --------------------------------------------- */

/* The answers of the window: the rows per predicted class (in the
 * reference's class order; the last bin holds classes it does not know)
 * and the served confidence. */
struct pred_live {
  const struct pipeline_answers *ref; /* NULL: no reference answers */
  double counts[PIPELINE_ANSWER_CLASSES + 1];
  double n, conf_n, conf_sum, conf_sq;
};

struct scan {
  const struct task_ctx *t;
  struct psi_live *live;
  struct pred_live *pred;
  int64_t seen, bad;
  int stopped;
};

static void pred_add(struct pred_live *p, const char *label, double conf)
{
  if (!p->ref || !label)
    return;
  size_t k = 0;
  while (k < p->ref->n_classes && strcmp(p->ref->classes[k], label) != 0)
    k++;
  p->counts[k] += 1;
  p->n += 1;
  if (!isnan(conf)) {
    p->conf_n += 1;
    p->conf_sum += conf;
    p->conf_sq += conf * conf;
  }
}

static int scan_row(void *ud, const struct db_row *row)
{
  struct scan *s = ud;
  size_t len = 0;
  const char *txt = db_row_str(row, 0, &len);
  s->seen++;
  if ((s->seen & 255) == 0 && task_should_stop(s->t)) {
    s->stopped = 1;
    return 1;
  }
  cJSON *j = txt ? cJSON_ParseWithLength(txt, len) : NULL;
  if (!j || psi_live_add(s->live, j) != 0)
    s->bad++;
  cJSON_Delete(j);
  pred_add(s->pred, db_row_str(row, 1, NULL), db_row_f64(row, 2));
  return 0;
}

static enum err_code read_window(const struct task_ctx *t, const char *model,
                                 long window, struct scan *s, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(t->db, MONITOR_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[] = {DB_V_STR(model), DB_V_INT(window)};
  rc = db_query(c,
                "SELECT features, prediction, confidence FROM "
                MONITOR_LOG_TABLE
                " WHERE model_name = ? OR model_name IS NULL"
                " ORDER BY id DESC LIMIT ?",
                p, 2, scan_row, s, NULL, e);
  db_release(t->db, c);
  return rc;
}

/* ---- the report ------------------------------------------------------ */

static enum err_code write_report(const struct task_ctx *t,
                                  const char *model, int version,
                                  int64_t rows, const char *scores,
                                  double max_psi, const char *verdict,
                                  int64_t *id, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(t->db, MONITOR_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[] = {
      DB_V_STR(model),
      DB_V_INT(version),
      DB_V_INT(rows),
      scores ? DB_V_STR(scores) : DB_V_NULL,
      isnan(max_psi) ? DB_V_NULL : DB_V_DBL(max_psi),
      DB_V_STR(verdict),
  };
  rc = db_exec_params_retry(c,
                            "INSERT INTO drift_report (model, version, "
                            "window_rows, scores, max_score, verdict) "
                            "VALUES (?, ?, ?, ?, ?, ?)",
                            p, 6, 3, NULL, e);
  if (rc == ERR_OK)
    *id = db_last_insert_id(c);
  db_release(t->db, c);
  if (rc != ERR_OK)
    err_prefix(e, "drift: storing the report");
  return rc;
}

static int cmp_score_desc(const void *a, const void *b)
{
  const struct psi_score *x = a, *y = b;
  return (x->psi < y->psi) - (x->psi > y->psi);
}

/* Log the DRIFT_LOG_TOP features with the highest PSI, worst first. */
static void log_top(const struct task_ctx *t, const struct psi_ref *ref,
                    const struct psi_live *l)
{
  size_t n = psi_ref_n_features(ref), m = 0;
  struct psi_score *s = calloc(n ? n : 1, sizeof(*s));
  if (!s)
    return;
  for (size_t i = 0; i < n; i++) {
    struct err e;
    if (psi_live_score(l, i, &s[m], &e) == ERR_OK && !isnan(s[m].psi))
      m++;
  }
  qsort(s, m, sizeof(*s), cmp_score_desc);
  for (size_t k = 0; k < m && k < DRIFT_LOG_TOP; k++)
    task_logf(t, "  %-26s psi=%.4f p=%.3g  worst bin %s: ref %.3f live "
              "%.3f; missing ref %.3f live %.3f",
              s[k].name, s[k].psi, s[k].p_value, s[k].top_bin, s[k].top_ref,
              s[k].top_live, s[k].missing_ref, s[k].missing_live);
  free(s);
}

/* Prediction drift (reported, never a trigger): the window's class
 * shares against the production version's answers on its own gate rows
 * (chi-square 2 x k, as for a feature, and their PSI), and its mean
 * confidence against theirs (Welch's z: the two means over their
 * standard errors, two-sided normal p).  NULL: out of memory. */
static cJSON *pred_json(const struct pred_live *p, char *line, size_t cap)
{
  const struct pipeline_answers *a = p->ref;
  size_t k = a->n_classes;
  double ref[PIPELINE_ANSWER_CLASSES + 1], liv[PIPELINE_ANSWER_CLASSES + 1];
  for (size_t i = 0; i < k; i++) {
    ref[i] = a->counts[i];
    liv[i] = p->counts[i];
  }
  ref[k] = 0;
  liv[k] = p->counts[k];
  int df = 0;
  double chi2 = stats_chi2_2xk(ref, liv, k + 1, &df);
  double pv = df > 0 ? stats_chi2_sf(chi2, df) : 1;
  double psi = p->n > 0 ? psi_counts(ref, liv, k + 1, PSI_EPS, NULL) : NAN;
  double lm = p->conf_n > 0 ? p->conf_sum / p->conf_n : NAN;
  double lv = p->conf_n > 1 ? (p->conf_sq - p->conf_sum * p->conf_sum /
                                                p->conf_n) /
                                  (p->conf_n - 1)
                            : 0;
  double shift = lm - a->conf_mean;
  double se = sqrt(a->conf_sd * a->conf_sd / (double)(a->n_rows ? a->n_rows
                                                                 : 1) +
                   (lv > 0 ? lv : 0) / (p->conf_n > 0 ? p->conf_n : 1));
  double z = se > 0 ? shift / se : shift == 0 ? 0 : copysign(INFINITY, shift);
  double zp = isnan(z) ? NAN : erfc(fabs(z) / sqrt(2.0));
  cJSON *o = cJSON_CreateObject(), *cl = NULL, *cf = NULL;
  int ok = o && (cl = cJSON_AddObjectToObject(o, "classes")) &&
           (cf = cJSON_AddObjectToObject(o, "confidence")) &&
           cJSON_AddStringToObject(o, "reference", a->file) &&
           cJSON_AddNumberToObject(o, "reference_rows", (double)a->n_rows) &&
           cJSON_AddNumberToObject(o, "rows", p->n) &&
           cJSON_AddNumberToObject(o, "chi2", chi2) &&
           cJSON_AddNumberToObject(o, "df", df) &&
           cJSON_AddNumberToObject(o, "p", pv) &&
           (isnan(psi) ? cJSON_AddNullToObject(o, "psi")
                       : cJSON_AddNumberToObject(o, "psi", psi)) &&
           cJSON_AddNumberToObject(o, "other_live",
                                   p->n > 0 ? liv[k] / p->n : 0);
  for (size_t i = 0; ok && i < k; i++) {
    cJSON *c = cJSON_AddObjectToObject(cl, a->classes[i]);
    ok = c &&
         cJSON_AddNumberToObject(c, "ref", a->n_rows ? ref[i] /
                                                       (double)a->n_rows
                                                     : 0) &&
         cJSON_AddNumberToObject(c, "live", p->n > 0 ? liv[i] / p->n : 0);
  }
  ok = ok && cJSON_AddNumberToObject(cf, "ref_mean", a->conf_mean) &&
       (isnan(lm) ? cJSON_AddNullToObject(cf, "live_mean")
                  : cJSON_AddNumberToObject(cf, "live_mean", lm)) &&
       (isnan(shift) ? cJSON_AddNullToObject(cf, "shift")
                     : cJSON_AddNumberToObject(cf, "shift", shift)) &&
       (isnan(zp) ? cJSON_AddNullToObject(cf, "p")
                  : cJSON_AddNumberToObject(cf, "p", zp));
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  snprintf(line, cap, "predictions: class shares chi2 %.2f df %d p %.3g "
           "(PSI %.4f) against %zu answers on %s; mean confidence %.4f -> "
           "%.4f (shift %+.4f, p %.3g)", chi2, df, pv,
           isnan(psi) ? 0.0 : psi, a->n_rows, a->file, a->conf_mean, lm,
           shift, zp);
  return o;
}

/* The drift report's JSON: {"threshold", "alpha", "min_rows", "window",
 * "reference_rows", "bad_rows", "worst", "drifted", "n_drifted",
 * "features": scores, "predictions"?}.  Takes scores over (also on
 * failure); the prediction-drift line goes to pline.  NULL when out of
 * memory. */
static cJSON *report_json(const struct drift_opts *o,
                          const struct psi_ref *ref, int64_t bad,
                          const struct psi_summary *sum, const char *wname,
                          const char *dname, cJSON *scores,
                          const struct pred_live *pl, char *pline,
                          size_t cap)
{
  cJSON *wrap = cJSON_CreateObject();
  if (!wrap) {
    cJSON_Delete(scores);
    return NULL;
  }
  cJSON_AddNumberToObject(wrap, "threshold", o->threshold);
  cJSON_AddNumberToObject(wrap, "alpha", o->alpha);
  cJSON_AddNumberToObject(wrap, "min_rows", (double)o->min_rows);
  cJSON_AddNumberToObject(wrap, "window", (double)o->window);
  cJSON_AddNumberToObject(wrap, "reference_rows", psi_ref_rows(ref));
  cJSON_AddNumberToObject(wrap, "bad_rows", (double)bad);
  cJSON_AddStringToObject(wrap, "worst", sum->worst >= 0 ? wname : "");
  if (dname)
    cJSON_AddStringToObject(wrap, "drifted", dname);
  else
    cJSON_AddNullToObject(wrap, "drifted");
  cJSON_AddNumberToObject(wrap, "n_drifted", (double)sum->n_drifted);
  if (!cJSON_AddItemToObject(wrap, "features", scores)) {
    cJSON_Delete(scores);
    cJSON_Delete(wrap);
    return NULL;
  }
  if (pl->ref && pl->n > 0) {
    cJSON *pj = pred_json(pl, pline, cap);
    if (!pj || !cJSON_AddItemToObject(wrap, "predictions", pj)) {
      cJSON_Delete(pj);
      cJSON_Delete(wrap);
      return NULL;
    }
  }
  return wrap;
}

static enum err_code drift_run(struct task_ctx *t, struct err *e)
{
  struct drift_opts o;
  char *model = NULL, *scores_txt = NULL;
  struct registry *reg = NULL;
  cJSON *refj = NULL, *prepj = NULL, *scores = NULL, *why = NULL;
  struct psi_ref *ref = NULL;
  struct psi_live *live = NULL;
  struct pipeline_answers answers;
  int version = 0;
  enum err_code rc;
  int timeout_s = task_timeout_s(t);

  if ((rc = read_opts(t, &o, e)) ||
      (rc = task_monitor_begin(t, "drift", &model, &reg, &version, e)))
    goto out;
  if (version == 0) {
    task_logf(t, "drift: model %s has no production version: nothing to "
              "compare (skipped)", model);
    t->skip = 1;
    goto out;
  }
  char what[REGISTRY_NAME_MAX + 64];
  snprintf(what, sizeof(what), "%s/versions/%d/reference.json", model,
           version);
  if ((rc = registry_read_json(reg, model, version, "reference.json", &refj,
                               e)))
    goto out;
  /* preprocess.json gives the text delimiters; optional */
  struct err pe;
  if (registry_read_json(reg, model, version, "preprocess.json", &prepj,
                         &pe) != ERR_OK)
    prepj = NULL;
  if ((rc = psi_ref_from_json(refj, prepj, what, &ref, e)) ||
      (rc = psi_live_create(ref, &live, e)))
    goto out;

  /* the version's own answers on its gate rows: prediction drift's
   * reference (reported only; a version without stored rows has none) */
  struct pred_live pl;
  memset(&pl, 0, sizeof(pl));
  struct err ae = {0};
  if (pipeline_answers(reg, model, version, &answers, &ae) == ERR_OK &&
      answers.n_classes > 0 && answers.n_rows > 0)
    pl.ref = &answers;
  else if (answers.n_classes > 0 || ae.code != ERR_OK)
    task_logf(t, "drift: no prediction drift: %s",
              ae.code != ERR_OK ? ae.msg : "no answers to compare with");
  struct scan s = {.t = t, .live = live, .pred = &pl};
  rc = read_window(t, model, o.window, &s, e);
  if (rc == ERR_OK && s.stopped)
    rc = task_stopped(t, "drift check stopped", timeout_s, e);
  if (rc)
    goto out;
  int64_t rows = (int64_t)psi_live_rows(live);
  if (s.bad)
    task_logf(t, "drift: %lld of %lld logged rows have no readable "
              "features object (ignored)", (long long)s.bad,
              (long long)s.seen);

  struct psi_summary sum;
  if ((rc = psi_live_scores_json(live, o.alpha, o.threshold, &scores, &sum,
                                 e)))
    goto out;
  const char *verdict = rows < o.min_rows ? "insufficient_data"
                        : sum.drifted >= 0 ? "drift"
                                           : "ok";
  const char *wname =
      sum.worst >= 0 ? psi_ref_feature_name(ref, (size_t)sum.worst) : "-";
  const char *dname =
      sum.drifted >= 0 ? psi_ref_feature_name(ref, (size_t)sum.drifted)
                       : NULL;
  char pline[512] = "";
  cJSON *wrap = report_json(&o, ref, (int64_t)s.bad, &sum, wname, dname,
                            scores, &pl, pline, sizeof(pline));
  scores = wrap; /* taken over, also when NULL */
  if (!wrap || !(scores_txt = cJSON_PrintUnformatted(scores))) {
    rc = err_set(e, ERR_NOMEM, "drift: out of memory");
    goto out;
  }
  int64_t id = 0;
  if ((rc = write_report(t, model, version, rows, scores_txt, sum.max_psi,
                         verdict, &id, e)))
    goto out;
  task_logf(t, "drift: model %s version %d: %lld rows (window %ld, "
            "min_rows %ld; reference %.0f rows), max PSI %.4f (%s), "
            "threshold %g, alpha %g: %zu feature(s) drift -> %s "
            "(report %lld)", model, version, (long long)rows, o.window,
            o.min_rows, psi_ref_rows(ref),
            isnan(sum.max_psi) ? 0.0 : sum.max_psi, wname, o.threshold,
            o.alpha, sum.n_drifted, verdict, (long long)id);
  if (rows > 0)
    log_top(t, ref, live);
  if (pline[0])
    task_logf(t, "drift: %s", pline);
  if (strcmp(verdict, "drift") != 0)
    goto out;
  why = cJSON_CreateObject();
  if (why && !(cJSON_AddStringToObject(why, "reason", "drift") &&
               cJSON_AddStringToObject(why, "model", model) &&
               cJSON_AddNumberToObject(why, "version", version) &&
               cJSON_AddStringToObject(why, "feature", dname) &&
               cJSON_AddNumberToObject(why, "psi", sum.drifted_psi) &&
               cJSON_AddNumberToObject(why, "p_holm", sum.drifted_p) &&
               cJSON_AddNumberToObject(why, "threshold", o.threshold) &&
               cJSON_AddNumberToObject(why, "alpha", o.alpha) &&
               cJSON_AddNumberToObject(why, "report_id", (double)id))) {
    cJSON_Delete(why);
    why = NULL;
  }
  rc = task_monitor_fire(t, why, e,
                         "drift on model %s version %d: %s PSI %.4f "
                         "> threshold %g, Holm p %.3g (alpha %g) (report "
                         "%lld",
                         model, version, dname, sum.drifted_psi,
                         o.threshold, sum.drifted_p, o.alpha, (long long)id);
out:
  cJSON_Delete(why);
  cJSON_free(scores_txt);
  cJSON_Delete(scores);
  psi_live_destroy(live);
  psi_ref_destroy(ref);
  cJSON_Delete(prepj);
  cJSON_Delete(refj);
  registry_close(reg);
  free(model);
  return rc;
}

const struct task_type task_type_drift = {
    .name = "drift",
    .fields = drift_fields,
    .check = drift_check,
    .run = drift_run,
};
