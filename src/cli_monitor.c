/* cli_monitor.c - `mlopsd drift NAME` (the latest drift reports and their
 * worst features) and `mlopsd models history NAME` (every version: when
 * it was trained, on what, its offline metrics, when and why it was
 * deployed or skipped, and how it did on live labels).
 *
 * Both read what the daemon's tasks recorded: drift_report (task_drift.c),
 * deployment (pipeline_record_deployment), live_metrics
 * (task_feedback.c) and the registry's meta.json files.  They need no
 * running daemon.  --json prints the same data as one JSON document for
 * scripts.  docs/monitoring.md shows sample output.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cli.h"
#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/registry.h"

#define MON_ACQUIRE_MS 5000
#define MON_LIMIT_DEFAULT 10
#define MON_LIMIT_MAX 10000
#define MON_TOP 5        /* worst features per report line */
#define MON_DETAIL 10    /* features in the latest report's table */

static const char usage_drift[] =
    "usage: mlopsd [-c FILE] drift NAME [--limit N] [--json]\n"
    "\n"
    "The latest drift reports of model NAME (newest first): window rows,\n"
    "the largest PSI, the verdict and the worst features; then the worst\n"
    "features of the latest report with the bin that moved most.\n"
    "\n"
    "  --limit N   reports to show (default 10)\n"
    "  --json      print {\"model\", \"reports\": [...]} instead\n";

static const char usage_history[] =
    "usage: mlopsd [-c FILE] models history NAME [--json]\n"
    "\n"
    "Every version of model NAME: when it was trained and on which logical\n"
    "date, its offline metrics (meta.json), its live metrics (labelled\n"
    "predictions, from live_metrics), and every deployment, rollback and\n"
    "skipped deployment with its reason (the deployment table).\n"
    "\n"
    "  --json      print one JSON document instead\n";

static int usage(const char *cmd, const char *help, const char *why)
{
  fprintf(stderr, "mlopsd: %s: %s\n%s", cmd, why, help);
  return CLI_USAGE;
}

/* ---- rows to JSON -------------------------------------------------------- */

/* Column kinds of a query read into a JSON array of objects. */
struct col {
  const char *name;
  char kind; /* 'i' integer, 'f' double, 's' string, 'j' JSON text */
};

struct rows {
  const struct col *cols;
  int ncols;
  cJSON *arr;
  int oom;
};

static int rows_cb(void *ud, const struct db_row *row)
{
  struct rows *r = ud;
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddItemToArray(r->arr, o)) {
    cJSON_Delete(o);
    r->oom = 1;
    return 1;
  }
  for (int i = 0; i < r->ncols; i++) {
    const struct col *c = &r->cols[i];
    size_t len = 0;
    const char *s = db_row_str(row, i, &len);
    cJSON *v;
    if (!s)
      v = cJSON_CreateNull();
    else if (c->kind == 'i' || c->kind == 'f')
      v = cJSON_CreateNumber(db_row_f64(row, i));
    else if (c->kind == 'j')
      v = cJSON_ParseWithLength(s, len);
    else
      v = cJSON_CreateString(s);
    if (!v)
      v = cJSON_CreateNull();
    cJSON_AddItemToObject(o, c->name, v);
  }
  return 0;
}

static enum err_code query_json(struct db_conn *c, const char *sql,
                                const struct db_val *p, int np,
                                const struct col *cols, int ncols,
                                cJSON **out, struct err *e)
{
  struct rows r = {cols, ncols, cJSON_CreateArray(), 0};
  *out = NULL;
  if (!r.arr)
    return err_set(e, ERR_NOMEM, "out of memory");
  enum err_code rc = db_query(c, sql, p, np, rows_cb, &r, NULL, e);
  if (rc == ERR_OK && r.oom)
    rc = err_set(e, ERR_NOMEM, "out of memory");
  if (rc != ERR_OK) {
    cJSON_Delete(r.arr);
    return rc;
  }
  *out = r.arr;
  return ERR_OK;
}

static double num(const cJSON *o, const char *k)
{
  const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(x) ? x->valuedouble : NAN;
}

static const char *str(const cJSON *o, const char *k)
{
  const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
  return s ? s : "";
}

static void print_json(cJSON *o)
{
  char *t = cJSON_Print(o);
  if (t)
    printf("%s\n", t);
  cJSON_free(t);
}

/* "0.1234" or "-" */
static const char *fmt_num(char *buf, size_t cap, double v, int prec)
{
  if (isnan(v))
    snprintf(buf, cap, "-");
  else
    snprintf(buf, cap, "%.*f", prec, v);
  return buf;
}

/* ---- mlopsd drift ----------------------------------------------------- */

struct feat {
  const char *name;
  const cJSON *o;
  double psi;
};

static int cmp_feat(const void *a, const void *b)
{
  double x = ((const struct feat *)a)->psi, y = ((const struct feat *)b)->psi;
  return (x < y) - (x > y);
}

/* The features of a report's scores, worst first (*n of them; free()). */
static struct feat *sorted_features(const cJSON *scores, size_t *n)
{
  const cJSON *f = cJSON_GetObjectItemCaseSensitive(scores, "features");
  size_t m = (size_t)cJSON_GetArraySize(f), k = 0;
  struct feat *v = calloc(m ? m : 1, sizeof(*v));
  const cJSON *x;
  *n = 0;
  if (!v)
    return NULL;
  cJSON_ArrayForEach(x, f)
  {
    double p = num(x, "psi");
    if (isnan(p))
      continue;
    v[k++] = (struct feat){x->string, x, p};
  }
  qsort(v, k, sizeof(*v), cmp_feat);
  *n = k;
  return v;
}

static void print_reports(const char *name, const cJSON *arr)
{
  char b1[32];
  const cJSON *r;
  double thr = NAN;
  cJSON_ArrayForEach(r, arr)
  {
    thr = num(cJSON_GetObjectItemCaseSensitive(r, "scores"), "threshold");
    break;
  }
  printf("drift reports of %s, newest first", name);
  if (!isnan(thr))
    printf(" (latest threshold %g)", thr);
  printf("\n\n%-6s %-20s %-7s %-6s %-8s %-18s %s\n", "ID", "CREATED (UTC)",
         "VERSION", "ROWS", "MAX_PSI", "VERDICT", "WORST FEATURES (PSI)");
  cJSON_ArrayForEach(r, arr)
  {
    size_t n = 0;
    struct feat *f =
        sorted_features(cJSON_GetObjectItemCaseSensitive(r, "scores"), &n);
    char worst[512] = "";
    size_t w = 0;
    for (size_t i = 0; f && i < n && i < MON_TOP && w < sizeof(worst); i++)
      w += (size_t)snprintf(worst + w, sizeof(worst) - w, "%s%s %.3f",
                            i ? ", " : "", f[i].name, f[i].psi);
    free(f);
    printf("%-6.0f %-20.19s %-7s %-6.0f %-8s %-18s %s\n", num(r, "id"),
           str(r, "created_at"),
           isnan(num(r, "version")) ? "-"
                                    : fmt_num(b1, sizeof(b1),
                                              num(r, "version"), 0),
           num(r, "window_rows"),
           fmt_num((char[32]){0}, 32, num(r, "max_score"), 4),
           str(r, "verdict"), worst[0] ? worst : "-");
  }
  const cJSON *latest = cJSON_GetArrayItem(arr, 0);
  size_t n = 0;
  struct feat *f =
      sorted_features(cJSON_GetObjectItemCaseSensitive(latest, "scores"), &n);
  if (f && n) {
    printf("\nlatest report %.0f: worst features\n", num(latest, "id"));
    printf("%-26s %-8s %-24s %-6s %-6s %s\n", "FEATURE", "PSI",
           "MOST CHANGED BIN", "REF", "LIVE", "MISSING REF/LIVE");
    for (size_t i = 0; i < n && i < MON_DETAIL; i++) {
      char a[32], b[32], c[32], d[32];
      printf("%-26s %-8.4f %-24.24s %-6s %-6s %s/%s\n", f[i].name, f[i].psi,
             str(f[i].o, "top_bin"),
             fmt_num(a, sizeof(a), num(f[i].o, "top_ref"), 3),
             fmt_num(b, sizeof(b), num(f[i].o, "top_live"), 3),
             fmt_num(c, sizeof(c), num(f[i].o, "missing_ref"), 3),
             fmt_num(d, sizeof(d), num(f[i].o, "missing_live"), 3));
    }
  }
  free(f);
}

int cli_drift(int argc, char **argv)
{
  const char *name = NULL;
  long limit = MON_LIMIT_DEFAULT;
  int json = 0;
  if (cli_wants_help(argc, argv)) {
    fputs(usage_drift, stdout);
    return CLI_OK;
  }
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--json") == 0) {
      json = 1;
    } else if (strcmp(a, "--limit") == 0 || strncmp(a, "--limit=", 8) == 0) {
      const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
      if (!v || cli_parse_long(v, 1, MON_LIMIT_MAX, &limit))
        return usage("drift", usage_drift,
                     "--limit needs a number 1..10000");
    } else if (a[0] == '-') {
      char why[160];
      snprintf(why, sizeof(why), "unknown option '%.60s'", a);
      return usage("drift", usage_drift, why);
    } else if (!name) {
      name = a;
    } else {
      return usage("drift", usage_drift, "more than one model name");
    }
  }
  if (!name)
    return usage("drift", usage_drift, "model NAME is required");
  if (!fsx_name_valid(name))
    return usage("drift", usage_drift, "NAME is not a model name");

  struct cfg c;
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  struct db_pool *pool;
  struct db_conn *conn;
  if ((rc = cli_db_open(&c, "drift", NULL, 1, MON_ACQUIRE_MS, &pool, &conn)) !=
      CLI_OK)
    return rc;
  static const struct col cols[] = {
      {"id", 'i'},         {"created_at", 's'}, {"version", 'i'},
      {"window_rows", 'i'}, {"max_score", 'f'}, {"verdict", 's'},
      {"scores", 'j'},
  };
  struct db_val p[] = {DB_V_STR(name), DB_V_INT(limit)};
  struct err e = {0};
  cJSON *arr = NULL;
  if (query_json(conn,
                 "SELECT id, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s'), "
                 "version, window_rows, max_score, verdict, scores FROM "
                 "drift_report WHERE model = ? ORDER BY id DESC LIMIT ?",
                 p, 2, cols, 7, &arr, &e) != ERR_OK) {
    cli_db_close(pool, conn);
    return cli_fail("drift", "%s", e.msg);
  }
  cli_db_close(pool, conn);
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", name);
    cJSON_AddItemToObject(o, "reports", arr);
    print_json(o);
    cJSON_Delete(o);
  } else {
    if (cJSON_GetArraySize(arr) == 0)
      printf("no drift reports for %s (database %s)\n", name, c.db_name);
    else
      print_reports(name, arr);
    cJSON_Delete(arr);
  }
  return CLI_OK;
}

/* ---- mlopsd models history ---------------------------------------------- */

/* The live_metrics summary of one version in arr, or NULL. */
static const cJSON *by_version(const cJSON *arr, int v)
{
  const cJSON *x;
  cJSON_ArrayForEach(x, arr)
  if ((int)num(x, "version") == v)
    return x;
  return NULL;
}

/* One version's entry: meta.json essentials + live metrics. */
static cJSON *version_json(struct registry *reg, const char *name, int v,
                           int prod, const cJSON *live)
{
  cJSON *o = cJSON_CreateObject(), *meta = NULL;
  struct err e = {0};
  if (!o)
    return NULL;
  cJSON_AddNumberToObject(o, "version", v);
  cJSON_AddBoolToObject(o, "production", v == prod);
  if (registry_read_meta(reg, name, v, &meta, &e) == ERR_OK) {
    static const char *const keep[] = {"creation_time", "logical_date",
                                       "dag_run_id", "training_rows",
                                       "train_rows", "val_rows",
                                       "best_run"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(meta, keep[i]);
      if (x)
        cJSON_AddItemToObject(o, keep[i], cJSON_Duplicate(x, 1));
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "metrics");
    cJSON *om = cJSON_AddObjectToObject(o, "offline");
    static const char *const mk[] = {"accuracy", "f1_macro", "logloss",
                                     "rmse", "mae"};
    for (size_t i = 0; om && i < sizeof(mk) / sizeof(mk[0]); i++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(m, mk[i]);
      if (cJSON_IsNumber(x))
        cJSON_AddNumberToObject(om, mk[i], x->valuedouble);
    }
    const cJSON *sel = cJSON_GetObjectItemCaseSensitive(meta, "selection");
    if (sel)
      cJSON_AddItemToObject(o, "selection", cJSON_Duplicate(sel, 1));
    cJSON_Delete(meta);
  } else {
    cJSON_AddStringToObject(o, "meta_error", e.msg);
  }
  const cJSON *l = by_version(live, v);
  if (l) {
    cJSON *x = cJSON_Duplicate(l, 1);
    cJSON_DeleteItemFromObjectCaseSensitive(x, "version");
    cJSON_AddItemToObject(o, "live", x);
  } else {
    cJSON_AddNullToObject(o, "live");
  }
  return o;
}

static void print_history(const cJSON *doc)
{
  char a[32], b[32], c[32], d[32], f[32];
  const cJSON *vs = cJSON_GetObjectItemCaseSensitive(doc, "versions");
  const cJSON *deps = cJSON_GetObjectItemCaseSensitive(doc, "deployments");
  double prod = num(doc, "production");
  printf("model %s: %d version(s), production = %s\n",
         str(doc, "model"), cJSON_GetArraySize(vs),
         isnan(prod) ? "(none)" : fmt_num(a, sizeof(a), prod, 0));
  const char *warn = str(doc, "warning");
  if (*warn)
    printf("warning: %s\n", warn);
  printf("\n%-9s %-21s %-11s %-6s %-8s %-8s %-7s %-8s %-8s %s\n", "VERSION",
         "CREATED (UTC)", "DATA DATE", "ROWS", "OFF_ACC", "OFF_F1", "LIVE_N",
         "LIVE_ACC", "LIVE_F1", "LIVE DAYS");
  const cJSON *v;
  cJSON_ArrayForEach(v, vs)
  {
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(v, "offline");
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(v, "live");
    char ver[32], days[40] = "-";
    snprintf(ver, sizeof(ver), "%.0f%s", num(v, "version"),
             cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "production"))
                 ? " *"
                 : "");
    if (cJSON_IsObject(live))
      snprintf(days, sizeof(days), "%.10s..%.10s", str(live, "first_day"),
               str(live, "last_day"));
    char created[24];
    snprintf(created, sizeof(created), "%.19s", str(v, "creation_time"));
    if (created[10] == 'T')
      created[10] = ' ';
    printf("%-9s %-21s %-11.10s %-6s %-8s %-8s %-7s %-8s %-8s %s\n", ver,
           created, str(v, "logical_date"),
           fmt_num(f, sizeof(f), num(v, "training_rows"), 0),
           fmt_num(a, sizeof(a), num(off, "accuracy"), 4),
           fmt_num(b, sizeof(b), num(off, "f1_macro"), 4),
           cJSON_IsObject(live) ? fmt_num(c, sizeof(c), num(live, "n"), 0)
                                : "-",
           fmt_num(d, sizeof(d), num(live, "accuracy"), 4),
           fmt_num((char[32]){0}, 32, num(live, "f1_macro"), 4), days);
  }
  printf("\n(* = production; OFF = offline, on the version's validation "
         "split; LIVE = labelled served predictions)\n");
  if (!cJSON_IsArray(deps))
    return;
  printf("\ndeployments, oldest first\n");
  if (cJSON_GetArraySize(deps) == 0) {
    printf("(none recorded)\n");
    return;
  }
  printf("%-20s %-9s %-11s %-5s %-5s %-14s %s\n", "WHEN (UTC)", "ACTION",
         "ALIAS", "FROM", "TO", "BY", "REASON");
  const cJSON *x;
  cJSON_ArrayForEach(x, deps)
  {
    printf("%-20.19s %-9s %-11s %-5s %-5s %-14.14s %s\n",
           str(x, "created_at"), str(x, "action"), str(x, "alias"),
           fmt_num(a, sizeof(a), num(x, "from_version"), 0),
           fmt_num(b, sizeof(b), num(x, "to_version"), 0),
           *str(x, "actor") ? str(x, "actor") : "-",
           *str(x, "reason") ? str(x, "reason") : "-");
  }
}

int cli_models_history(int argc, char **argv)
{
  const char *name = NULL;
  int json = 0;
  /* argv: "models" "history" NAME [--json] */
  if (cli_wants_help(argc, argv)) {
    fputs(usage_history, stdout);
    return CLI_OK;
  }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-')
      return usage("models history", usage_history, "unknown option");
    else if (!name)
      name = argv[i];
    else
      return usage("models history", usage_history,
                   "more than one model name");
  }
  if (!name)
    return usage("models history", usage_history, "model NAME is required");
  if (!fsx_name_valid(name))
    return usage("models history", usage_history,
                 "NAME is not a model name");
  struct cfg c;
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  struct registry *reg = NULL;
  struct err e = {0};
  int *vers = NULL;
  size_t nv = 0;
  if (registry_open_cfg(&c, &reg, &e) != ERR_OK)
    return cli_fail("models history", "%s", e.msg);
  if (registry_list_versions(reg, name, &vers, &nv, &e) != ERR_OK) {
    registry_close(reg);
    return cli_fail("models history", "%s", e.msg);
  }
  int prod = 0;
  struct err pe = {0};
  if (registry_alias_get(reg, name, REGISTRY_PRODUCTION, &prod, &pe) !=
      ERR_OK)
    prod = 0;

  /* database part: deployments and live metrics; without a database the
   * registry part is still worth printing */
  cJSON *deps = NULL, *live = NULL;
  char warn[700] = "";
  struct db_pool *pool = NULL;
  struct db_conn *conn = NULL;
  struct db_opts o;
  db_opts_from_cfg(&o, &c, 1, 60);
  static const struct col dcols[] = {
      {"id", 'i'},          {"created_at", 's'}, {"alias", 's'},
      {"action", 's'},      {"from_version", 'i'}, {"to_version", 'i'},
      {"reason", 's'},      {"actor", 's'},
  };
  static const struct col lcols[] = {
      {"version", 'i'},  {"n", 'i'},         {"accuracy", 'f'},
      {"f1_macro", 'f'}, {"first_day", 's'}, {"last_day", 's'},
      {"days", 'i'},
  };
  struct db_val p[] = {DB_V_STR(name)};
  if (db_pool_create(&pool, &o, &e) != ERR_OK ||
      db_acquire(pool, MON_ACQUIRE_MS, &conn, &e) != ERR_OK ||
      query_json(conn,
                 "SELECT id, DATE_FORMAT(created_at, '%Y-%m-%d %H:%i:%s'), "
                 "alias, action, from_version, to_version, reason, actor "
                 "FROM deployment WHERE model = ? ORDER BY id",
                 p, 1, dcols, 8, &deps, &e) != ERR_OK ||
      query_json(conn,
                 "SELECT version, SUM(n), SUM(n * accuracy) / SUM(n), "
                 "SUM(n * f1_macro) / SUM(n), DATE_FORMAT(MIN(day), "
                 "'%Y-%m-%d'), DATE_FORMAT(MAX(day), '%Y-%m-%d'), COUNT(*) "
                 "FROM live_metrics WHERE model = ? GROUP BY version",
                 p, 1, lcols, 7, &live, &e) != ERR_OK) {
    snprintf(warn, sizeof(warn), "deployments and live metrics unavailable: "
             "%.600s", e.msg);
  }
  if (conn)
    db_release(pool, conn);
  db_pool_destroy(pool);

  cJSON *doc = cJSON_CreateObject();
  cJSON *va = cJSON_AddArrayToObject(doc, "versions");
  cJSON_AddStringToObject(doc, "model", name);
  if (prod)
    cJSON_AddNumberToObject(doc, "production", prod);
  else
    cJSON_AddNullToObject(doc, "production");
  for (size_t i = 0; va && i < nv; i++) {
    cJSON *x = version_json(reg, name, vers[i], prod, live);
    if (x)
      cJSON_AddItemToArray(va, x);
  }
  if (deps)
    cJSON_AddItemToObject(doc, "deployments", deps);
  else
    cJSON_AddNullToObject(doc, "deployments");
  if (warn[0])
    cJSON_AddStringToObject(doc, "warning", warn);
  if (json)
    print_json(doc);
  else
    print_history(doc);
  cJSON_Delete(doc);
  cJSON_Delete(live);
  free(vers);
  registry_close(reg);
  return CLI_OK;
}
