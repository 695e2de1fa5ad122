/* task_feedback.c - the `label_feedback` task type: once the true labels
 * of served predictions arrive, measure how right the model was, per
 * model version and day, into live_metrics; start the CT DAG when the
 * production version is shown to be worse live than on its own gate
 * rows.
 *
 * The join (docs/monitoring.md, "Label feedback"): a logged prediction
 * (credit_predictions_api_log) made at created_at (UTC) for customer_id
 * gets the label of credit_score with the same customer_id whose date
 * (varchar 'YYYY-MM-DD', one row per customer and month in the course's
 * data) falls in the same calendar month as created_at; if a month has
 * several, the latest date wins.  The correlated subquery reads the
 * credit_score_customer_date index (customer_id, date) as a range.
 * Since a customer has one label a month, a customer asked about ten
 * times in a month would count ten times for one outcome: only the
 * latest prediction per (version, customer_id, month) in the window
 * counts (ROW_NUMBER() over that partition).  Predictions without a label
 * yet are counted and left out; each run recomputes every day of its
 * window, so days whose labels arrive later are filled in by later runs
 * (live_metrics is upserted).
 *
 * The version is the log's model_version (written by src/plog.c); rows
 * without one (older rows, other writers) count for the production
 * version at the time of the run.
 *
 * The check: the production version's live accuracy over the window
 * (k right of n) against the accuracy it had on its own gate rows at
 * training time (meta.json splits.gate, else splits.valid, else metrics;
 * or floor_accuracy when set).  Worse means the Wilson upper bound of
 * the live accuracy is below the Wilson lower bound of the gate accuracy
 * minus max_drop, each one-sided at `confidence`: both are samples, and a
 * retraining is only started when the difference is beyond both.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/db.h"
#include "mlopsd/registry.h"
#include "mlopsd/stats.h"
#include "mlopsd/task.h"
#include "mlopsd/vec.h"
#include "task_monitor_int.h"
#include "task_model_int.h"

#define FB_DAYS_DEFAULT 7
#define FB_DAYS_MAX 3660
#define FB_MIN_ROWS_DEFAULT 100
#define FB_CONFIDENCE_DEFAULT 0.95
#define FB_MAX_DROP_DEFAULT 0.02
#define FB_MAX_CLASSES 64
#define FB_LABEL_MAX 32

static const struct task_field fb_fields[] = {
    MONITOR_COMMON_FIELDS,
    {.name = "days", .kind = TASK_F_INT},
    {.name = "floor_accuracy"},
    {.name = "min_rows", .kind = TASK_F_INT},
    {.name = "confidence"},
    {.name = "max_drop"},
    {.name = NULL},
};

struct fb_opts {
  long days, min_rows;
  double floor; /* NaN: the version's gate accuracy */
  double confidence, max_drop;
};

static enum err_code read_opts(const struct task_ctx *t, struct fb_opts *o,
                               struct err *e)
{
  enum err_code rc;
  if ((rc = task_field_int(t, "days", FB_DAYS_DEFAULT, 1, FB_DAYS_MAX, &o->days,
                           e)) ||
      (rc = task_field_int(t, "min_rows", FB_MIN_ROWS_DEFAULT, 1, 1000000000,
                           &o->min_rows, e)) ||
      (rc = task_field_double(t, "floor_accuracy", NAN, 0, 1, &o->floor,
                              e)) ||
      (rc = task_field_double(t, "confidence", FB_CONFIDENCE_DEFAULT, 0.5,
                              0.999999, &o->confidence, e)) ||
      (rc = task_field_double(t, "max_drop", FB_MAX_DROP_DEFAULT, 0, 1,
                              &o->max_drop, e)))
    return rc;
  return ERR_OK;
}

static enum err_code fb_check(const struct task_ctx *t, struct err *e)
{
  struct fb_opts o;
  enum err_code rc = read_opts(t, &o, e);
  return rc ? rc : task_monitor_check_common(t, e);
}

/* ---- accumulating (version, day) groups --------------------------------- */

struct group {
  int version;
  char day[11];
  int64_t n, correct;
  int ncls;
  char cls[FB_MAX_CLASSES][FB_LABEL_MAX];
  int64_t tp[FB_MAX_CLASSES], fp[FB_MAX_CLASSES], fn[FB_MAX_CLASSES];
};

struct acc {
  const struct task_ctx *t;
  int prod;              /* production version, 0 = none */
  struct group *g;
  size_t n, cap;
  size_t last;           /* index of the last group hit */
  int64_t rows, unlabelled, unversioned, repeats;
  int oom, too_many, stopped;
};

static struct group *group_of(struct acc *a, int version, const char *day)
{
  if (a->n && a->g[a->last].version == version &&
      strcmp(a->g[a->last].day, day) == 0)
    return &a->g[a->last];
  for (size_t i = 0; i < a->n; i++)
    if (a->g[i].version == version && strcmp(a->g[i].day, day) == 0) {
      a->last = i;
      return &a->g[i];
    }
  if (VEC_RESERVE(a->g, a->cap, a->n + 1)) {
    a->oom = 1;
    return NULL;
  }
  struct group *g = &a->g[a->n];
  memset(g, 0, sizeof(*g));
  g->version = version;
  snprintf(g->day, sizeof(g->day), "%s", day);
  a->last = a->n++;
  return g;
}

static int class_of(struct acc *a, struct group *g, const char *label)
{
  for (int i = 0; i < g->ncls; i++)
    if (strcmp(g->cls[i], label) == 0)
      return i;
  if (g->ncls == FB_MAX_CLASSES) {
    a->too_many = 1;
    return -1;
  }
  snprintf(g->cls[g->ncls], FB_LABEL_MAX, "%s", label);
  return g->ncls++;
}

/* Columns: version (0: none known), day, prediction, label, how many
 * predictions of the window this one stands for. */
static int acc_row(void *ud, const struct db_row *row)
{
  struct acc *a = ud;
  int64_t times = db_row_i64(row, 4);
  a->rows += times > 1 ? times : 1;
  a->repeats += times > 1 ? times - 1 : 0;
  if (((a->rows - a->repeats) & 1023) == 0 && task_should_stop(a->t)) {
    a->stopped = 1;
    return 1;
  }
  const char *day = db_row_str(row, 1, NULL);
  const char *pred = db_row_str(row, 2, NULL);
  const char *label = db_row_str(row, 3, NULL);
  if (!label) {
    a->unlabelled++;
    return 0;
  }
  int version = (int)db_row_i64(row, 0);
  if (version <= 0 || !day || !pred) {
    a->unversioned++;
    return 0;
  }
  struct group *g = group_of(a, version, day);
  if (!g)
    return 1;
  int ct = class_of(a, g, label), cp = class_of(a, g, pred);
  if (ct < 0 || cp < 0)
    return 1;
  g->n++;
  if (ct == cp) {
    g->correct++;
    g->tp[ct]++;
  } else {
    g->fn[ct]++;
    g->fp[cp]++;
  }
  return 0;
}

/* Macro F1 over the classes seen (as label or prediction) in the group,
 * as sklearn's f1_score(average="macro") with its default labels. */
static double group_f1(const struct group *g)
{
  double s = 0;
  for (int i = 0; i < g->ncls; i++) {
    double d = (double)(2 * g->tp[i] + g->fp[i] + g->fn[i]);
    s += d > 0 ? 2.0 * (double)g->tp[i] / d : 0;
  }
  return g->ncls ? s / g->ncls : NAN;
}

/* ---- dates ------------------------------------------------------------- */

/* ds + days as "YYYY-MM-DD 00:00:00" (UTC calendar arithmetic). */
static int date_add(const char *ds, long days, char *out, size_t cap)
{
  struct tm tm;
  memset(&tm, 0, sizeof(tm));
  if (!ds || sscanf(ds, "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon,
                    &tm.tm_mday) != 3)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  time_t x = timegm(&tm) + (time_t)days * 86400;
  struct tm r;
  if (!gmtime_r(&x, &r))
    return -1;
  if (r.tm_year < -1900 || r.tm_year > 9999 - 1900)
    return -1;
  snprintf(out, cap, "%04d-%02d-%02d 00:00:00", (r.tm_year + 1900) % 10000,
           (r.tm_mon + 1) % 100, r.tm_mday % 100);
  return 0;
}

/* ---- database ---------------------------------------------------------- */

static enum err_code read_groups(const struct task_ctx *t, const char *model,
                                 const char *from, const char *to,
                                 struct acc *a, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(t->db, MONITOR_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[] = {DB_V_INT(a->prod), DB_V_INT(a->prod),
                       DB_V_INT(a->prod), DB_V_STR(model), DB_V_STR(from),
                       DB_V_STR(to)};
  /* the latest prediction per (version, customer, month) stands for the
   * others (cnt); the label subquery runs for those only */
  rc = db_query(
      c,
      "SELECT x.ver, DATE_FORMAT(x.created_at, '%Y-%m-%d'), x.prediction,"
      " (SELECT cs.credit_score FROM credit_score cs"
      "   WHERE cs.customer_id = x.customer_id"
      "     AND cs.date >= DATE_FORMAT(x.created_at, '%Y-%m-01')"
      "     AND cs.date < DATE_FORMAT(x.created_at + INTERVAL 1 MONTH,"
      "                               '%Y-%m-01')"
      "   ORDER BY cs.date DESC, cs.id DESC LIMIT 1),"
      " x.cnt"
      " FROM (SELECT COALESCE(p.model_version, ?) AS ver, p.customer_id,"
      "        p.created_at, p.prediction,"
      "        ROW_NUMBER() OVER (PARTITION BY COALESCE(p.model_version,"
      "          ?), p.customer_id, DATE_FORMAT(p.created_at, '%Y-%m')"
      "          ORDER BY p.created_at DESC, p.id DESC) AS rn,"
      "        COUNT(*) OVER (PARTITION BY COALESCE(p.model_version, ?),"
      "          p.customer_id, DATE_FORMAT(p.created_at, '%Y-%m')) AS cnt"
      "       FROM " MONITOR_LOG_TABLE " p"
      "       WHERE (p.model_name = ? OR p.model_name IS NULL)"
      "         AND p.created_at >= ? AND p.created_at < ?) x"
      " WHERE x.rn = 1",
      p, 6, acc_row, a, NULL, e);
  db_release(t->db, c);
  return rc;
}

struct upsert {
  const char *model;
  const struct acc *a;
};

/* {"Good": {"n": 6, "recall": 0.83}, ...}: the classes that were a label
 * in g (live_metrics.recall); NULL when out of memory. */
static char *group_recall(const struct group *g)
{
  cJSON *o = cJSON_CreateObject();
  int ok = o != NULL;
  for (int k = 0; ok && k < g->ncls; k++) {
    int64_t sup = g->tp[k] + g->fn[k];
    if (sup == 0)
      continue;
    cJSON *c = cJSON_AddObjectToObject(o, g->cls[k]);
    ok = c && cJSON_AddNumberToObject(c, "n", (double)sup) &&
         cJSON_AddNumberToObject(c, "recall",
                                 (double)g->tp[k] / (double)sup);
  }
  char *txt = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  return txt;
}

static enum err_code upsert_txn(struct db_conn *c, void *user,
                                struct err *e)
{
  const struct upsert *u = user;
  for (size_t i = 0; i < u->a->n; i++) {
    const struct group *g = &u->a->g[i];
    double f1 = group_f1(g);
    char *rec = group_recall(g);
    if (!rec)
      return err_set(e, ERR_NOMEM, "label_feedback: out of memory");
    struct db_val p[] = {
        DB_V_STR(u->model),
        DB_V_INT(g->version),
        DB_V_STR(g->day),
        DB_V_INT(g->n),
        DB_V_DBL((double)g->correct / (double)g->n),
        isnan(f1) ? DB_V_NULL : DB_V_DBL(f1),
        DB_V_STR(rec),
    };
    enum err_code rc = db_exec_params(
        c,
        "INSERT INTO live_metrics (model, version, day, n, accuracy, "
        "f1_macro, recall) VALUES (?, ?, ?, ?, ?, ?, ?) ON DUPLICATE KEY "
        "UPDATE n = VALUES(n), accuracy = VALUES(accuracy), "
        "f1_macro = VALUES(f1_macro), recall = VALUES(recall)",
        p, 7, NULL, e);
    cJSON_free(rec);
    if (rc != ERR_OK)
      return rc;
  }
  return ERR_OK;
}

static enum err_code store(const struct task_ctx *t, const char *model,
                           const struct acc *a, struct err *e)
{
  if (a->n == 0)
    return ERR_OK;
  struct db_conn *c;
  enum err_code rc = db_acquire(t->db, MONITOR_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct upsert u = {model, a};
  rc = db_txn_retry(c, 3, upsert_txn, &u, e);
  db_release(t->db, c);
  if (rc != ERR_OK)
    err_prefix(e, "label_feedback: storing live_metrics");
  return rc;
}

static int cmp_group(const void *x, const void *y)
{
  const struct group *a = x, *b = y;
  if (a->version != b->version)
    return a->version < b->version ? -1 : 1;
  return strcmp(a->day, b->day);
}

/* ---- what the version is held to -------------------------------------- */

struct fb_ref {
  double floor;      /* NaN: nothing to compare with */
  char source[16];   /* "gate", "valid", "metrics", "floor_accuracy" */
  char what[160];    /* for the log: how the floor was made */
};

/* The accuracy of meta.json's split name (splits.NAME.metrics.accuracy,
 * splits.NAME.rows), or of its top-level metrics with rows val_rows. */
static int meta_accuracy(const cJSON *meta, const char *name, double *acc,
                         double *rows)
{
  const cJSON *sp = cJSON_GetObjectItemCaseSensitive(
      cJSON_GetObjectItemCaseSensitive(meta, "splits"), name);
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(sp, "metrics");
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(sp, "rows");
  if (!name[0]) {
    m = cJSON_GetObjectItemCaseSensitive(meta, "metrics");
    r = cJSON_GetObjectItemCaseSensitive(meta, "val_rows");
  }
  const cJSON *a = cJSON_GetObjectItemCaseSensitive(m, "accuracy");
  if (!cJSON_IsNumber(a) || !cJSON_IsNumber(r) || !(r->valuedouble >= 1) ||
      !(a->valuedouble >= 0 && a->valuedouble <= 1))
    return 0;
  *acc = a->valuedouble;
  *rows = r->valuedouble;
  return 1;
}

/* floor_accuracy when set; else the Wilson lower bound (at confidence) of
 * the version's gate accuracy (meta.json splits.gate, else splits.valid,
 * else the top-level metrics over val_rows) minus max_drop. */
static enum err_code reference_accuracy(struct registry *reg,
                                        const char *model, int version,
                                        const struct fb_opts *o,
                                        struct fb_ref *r, struct err *e)
{
  memset(r, 0, sizeof(*r));
  r->floor = NAN;
  if (!isnan(o->floor)) {
    r->floor = o->floor;
    snprintf(r->source, sizeof(r->source), "floor_accuracy");
    snprintf(r->what, sizeof(r->what), "floor_accuracy %g", o->floor);
    return ERR_OK;
  }
  cJSON *meta = NULL;
  enum err_code rc = registry_read_meta(reg, model, version, &meta, e);
  if (rc) {
    err_prefix(e, "label_feedback: %s version %d", model, version);
    return rc;
  }
  static const char *const order[] = {"gate", "valid", ""};
  for (size_t i = 0; i < 3; i++) {
    double acc, rows, lo, hi;
    if (!meta_accuracy(meta, order[i], &acc, &rows))
      continue;
    long k = lround(acc * rows);
    stats_wilson(k, (long)rows, o->confidence, &lo, &hi);
    r->floor = lo - o->max_drop;
    snprintf(r->source, sizeof(r->source), "%s",
             order[i][0] ? order[i] : "metrics");
    snprintf(r->what, sizeof(r->what),
             "%s accuracy %.4f over %.0f rows (Wilson lower bound %.4f) - "
             "max_drop %g = %.4f",
             r->source, acc, rows, lo, o->max_drop, r->floor);
    break;
  }
  cJSON_Delete(meta);
  return ERR_OK;
}

static enum err_code fb_run(struct task_ctx *t, struct err *e)
{
  struct fb_opts o;
  char *model = NULL;
  struct registry *reg = NULL;
  struct acc a;
  cJSON *why = NULL;
  enum err_code rc;
  int timeout_s = task_timeout_s(t);
  memset(&a, 0, sizeof(a));
  a.t = t;

  if ((rc = read_opts(t, &o, e)) ||
      (rc = task_monitor_begin(t, "label_feedback", &model, &reg, &a.prod,
                               e)))
    goto out;
  char from[48], to[48];
  if (date_add(t->ds, -(o.days - 1), from, sizeof(from)) ||
      date_add(t->ds, 1, to, sizeof(to))) {
    rc = err_set(e, ERR_INVAL, "label_feedback: logical date '%.20s' is "
                 "not YYYY-MM-DD", t->ds ? t->ds : "(none)");
    goto out;
  }
  rc = read_groups(t, model, from, to, &a, e);
  if (rc == ERR_OK && a.stopped)
    rc = task_stopped(t, "label feedback stopped", timeout_s, e);
  if (rc == ERR_OK && a.oom)
    rc = err_set(e, ERR_NOMEM, "label_feedback: out of memory");
  if (rc == ERR_OK && a.too_many)
    rc = err_set(e, ERR_INVAL, "label_feedback: more than %d distinct "
                 "labels and predictions in one day", FB_MAX_CLASSES);
  if (rc)
    goto out;
  if (a.n > 1) /* qsort(NULL, 0, ...) is undefined */
    qsort(a.g, a.n, sizeof(*a.g), cmp_group);
  task_logf(t, "label_feedback: model %s, predictions %.10s .. %.10s "
            "(UTC days): %lld logged, %lld without a label yet", model, from,
            t->ds, (long long)a.rows, (long long)a.unlabelled);
  if (a.repeats)
    task_logf(t, "label_feedback: %lld repeated predictions (same version, "
              "customer and month) left out: the latest one counts",
              (long long)a.repeats);
  if (a.unversioned)
    task_logf(t, "label_feedback: %lld labelled predictions left out: no "
              "model_version logged and no production version to count "
              "them for", (long long)a.unversioned);
  if ((rc = store(t, model, &a, e)))
    goto out;
  /* the production version pooled over the window, recall per class */
  struct group pool;
  memset(&pool, 0, sizeof(pool));
  for (size_t i = 0; i < a.n; i++) {
    const struct group *g = &a.g[i];
    task_logf(t, "  version %d day %s: n=%lld accuracy=%.4f f1_macro=%.4f",
              g->version, g->day, (long long)g->n,
              (double)g->correct / (double)g->n, group_f1(g));
    if (g->version != a.prod)
      continue;
    pool.n += g->n;
    pool.correct += g->correct;
    for (int k = 0; k < g->ncls; k++) {
      int j = class_of(&a, &pool, g->cls[k]);
      if (j < 0)
        break;
      pool.tp[j] += g->tp[k];
      pool.fn[j] += g->fn[k];
      pool.fp[j] += g->fp[k];
    }
  }
  if (a.prod == 0) {
    task_logf(t, "accuracy check: model %s has no production version",
              model);
    goto out;
  }
  char rtxt[512] = "";
  size_t ro = 0;
  for (int k = 0; k < pool.ncls && ro < sizeof(rtxt) - 64; k++) {
    int64_t sup = pool.tp[k] + pool.fn[k];
    if (sup > 0)
      ro += (size_t)snprintf(rtxt + ro, sizeof(rtxt) - ro, "%s%s %.3f (%lld)",
                             ro ? ", " : "", pool.cls[k],
                             (double)pool.tp[k] / (double)sup,
                             (long long)sup);
  }
  if (pool.n < o.min_rows) {
    task_logf(t, "accuracy check: %lld labelled predictions of version %d "
              "(min_rows %ld): not enough to judge", (long long)pool.n,
              a.prod, o.min_rows);
    goto out;
  }
  /* what the version is held to */
  struct fb_ref ref;
  if ((rc = reference_accuracy(reg, model, a.prod, &o, &ref, e)))
    goto out;
  if (isnan(ref.floor)) {
    task_logf(t, "accuracy check: version %d has no gate or validation "
              "accuracy in meta.json and no floor_accuracy is set: "
              "nothing to compare with", a.prod);
    goto out;
  }
  double accuracy = (double)pool.correct / (double)pool.n, lo, hi;
  stats_wilson((long)pool.correct, (long)pool.n, o.confidence, &lo, &hi);
  int below = hi < ref.floor;
  task_logf(t, "accuracy check: version %d live accuracy %.4f over %lld "
            "labelled predictions (Wilson upper bound %.4f at %g) vs %s "
            "-> %s; recall per class (labelled): %s", a.prod, accuracy,
            (long long)pool.n, hi, o.confidence, ref.what,
            below ? "below" : "ok", rtxt[0] ? rtxt : "-");
  if (!below)
    goto out;
  why = cJSON_CreateObject();
  cJSON *rec = why ? cJSON_AddObjectToObject(why, "recall") : NULL;
  for (int k = 0; rec && k < pool.ncls; k++) {
    int64_t sup = pool.tp[k] + pool.fn[k];
    if (sup > 0 && !cJSON_AddNumberToObject(rec, pool.cls[k],
                                            (double)pool.tp[k] /
                                                (double)sup))
      rec = NULL;
  }
  if (why && !(rec && cJSON_AddStringToObject(why, "reason", "accuracy") &&
               cJSON_AddStringToObject(why, "model", model) &&
               cJSON_AddNumberToObject(why, "version", a.prod) &&
               cJSON_AddNumberToObject(why, "accuracy", accuracy) &&
               cJSON_AddNumberToObject(why, "accuracy_high", hi) &&
               cJSON_AddNumberToObject(why, "floor", ref.floor) &&
               cJSON_AddStringToObject(why, "reference", ref.source) &&
               cJSON_AddNumberToObject(why, "n", (double)pool.n))) {
    cJSON_Delete(why);
    why = NULL;
  }
  rc = task_monitor_fire(t, why, e,
                         "model %s version %d: live accuracy %.4f (upper "
                         "bound %.4f) below the floor %.4f, %s (%lld "
                         "labelled predictions",
                         model, a.prod, accuracy, hi, ref.floor, ref.what,
                         (long long)pool.n);
out:
  cJSON_Delete(why);
  free(a.g);
  registry_close(reg);
  free(model);
  return rc;
}

const struct task_type task_type_label_feedback = {
    .name = "label_feedback",
    .fields = fb_fields,
    .check = fb_check,
    .run = fb_run,
};
