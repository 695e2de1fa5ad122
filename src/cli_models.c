/* cli_models.c - `mlopsd models list|show|promote|rollback` and
 * `mlopsd predict` (docs/training.md, "Command line").
 *
 * list and show read the registry only.  promote and rollback move an
 * alias (atomically, registry_alias_set) and record the change in the
 * `deployment` table with actor "cli:USER"; they need MariaDB (rollback
 * finds the previous version there) and fail before touching the alias
 * when it cannot be reached.  If the record cannot be written after the
 * alias moved, the alias is put back.  predict answers a /predict body
 * offline from the registry (pipeline_predict_body: same checks, messages
 * and JSON as the server).
 *
 * Exit codes: 0 ok, 1 failure, 2 usage error.  Errors are one line on
 * stderr: "mlopsd: models promote: <what>".
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "mlopsd/bscore.h"
#include "mlopsd/cli.h"
#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"

#define DB_CLI_ACQUIRE_MS 1000
#define BODY_MAX_DEFAULT (1L << 20)
#define CHANGE_WHY "to record the change; nothing was changed"

/* ---- help --------------------------------------------------------------- */

static const char usage_models[] =
    "usage: mlopsd [-c FILE] models list [--json]\n"
    "       mlopsd [-c FILE] models show NAME[:VERSION|@ALIAS] [--json]\n"
    "       mlopsd [-c FILE] models promote NAME VERSION [--alias ALIAS] "
    "[--reason TEXT]\n"
    "       mlopsd [-c FILE] models promote NAME --from-shadow "
    "[--reason TEXT]\n"
    "       mlopsd [-c FILE] models rollback NAME [--alias ALIAS] "
    "[--reason TEXT]\n"
    "       mlopsd [-c FILE] models compare NAME [--json]\n"
    "       mlopsd [-c FILE] models train NAME --date YYYY-MM-DD [...]\n"
    "       mlopsd [-c FILE] models migrate --to DIR|s3://B/P [--from ...]\n"
    "\n"
    "The model registry (models.registry_dir).\n"
    "  list      every model: versions, latest, production version and the\n"
    "            latest version's metrics\n"
    "  show      one version: params, metrics and lineage (logical date,\n"
    "            DAG run, rows, data and spec sha256, creation time).  NAME\n"
    "            alone shows the production version, or the latest if none\n"
    "  promote   point ALIAS (default production) at VERSION\n"
    "  rollback  point ALIAS (default production) back at the version it\n"
    "            pointed at before, from the deployment table\n"
    "  compare   production against its shadow challenger (alias staging)\n"
    "            over the logged predictions; promote --from-shadow\n"
    "            promotes it when the validate gate's rule passes\n"
    "  train     train NAME for a logical date outside any DAG (what the\n"
    "            train task does) and register the best trial\n"
    "  migrate   copy the registry into S3 or a directory (and back)\n"
    "promote and rollback record the change in the deployment table (actor\n"
    "cli:$USER); they need MariaDB and change nothing when it is down.\n"
    "Run `mlopsd models COMMAND --help` for one command.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static const char usage_list[] =
    "usage: mlopsd [-c FILE] models list [--json]\n"
    "\n"
    "One line per model of the registry: NAME, number of versions, latest\n"
    "version, production version (alias production, '-' if none) and the\n"
    "latest version's validation metrics and logical date.  A version whose\n"
    "meta.json cannot be read is reported on its line; the others still\n"
    "list.  --json prints a JSON array instead.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static const char usage_show[] =
    "usage: mlopsd [-c FILE] models show NAME[:VERSION|@ALIAS] [--json]\n"
    "\n"
    "Params, metrics and lineage of one version: NAME:3 is version 3,\n"
    "NAME@production the version an alias points at, NAME alone the\n"
    "production version (the latest when none is deployed).  --json prints\n"
    "{\"name\", \"version\", \"aliases\", \"meta\"} with meta.json as stored.\n"
    "Exit codes: 0 ok, 1 failure (no such version, corrupt meta.json),\n"
    "2 usage error.\n";

static const char usage_promote[] =
    "usage: mlopsd [-c FILE] models promote NAME VERSION [--alias ALIAS]\n"
    "                                       [--reason TEXT]\n"
    "\n"
    "Point ALIAS (default production) of NAME at VERSION (atomic file\n"
    "replace; a running server swaps the version in within a second) and\n"
    "record it in the deployment table as action 'promote', actor\n"
    "cli:$USER.  Needs MariaDB: when it cannot be reached nothing changes.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static const char usage_rollback[] =
    "usage: mlopsd [-c FILE] models rollback NAME [--alias ALIAS] "
    "[--reason TEXT]\n"
    "\n"
    "Point ALIAS (default production) of NAME back at the version it\n"
    "pointed at before its current one, as recorded in the deployment\n"
    "table (deploy and promote push a version, rollback pops one, so\n"
    "repeated rollbacks walk back through the history), and record the\n"
    "change as action 'rollback', actor cli:$USER.  Needs MariaDB.\n"
    "Exit codes: 0 ok, 1 failure (no earlier version, database down),\n"
    "2 usage error.\n";

static const char usage_train[] =
    "usage: mlopsd [-c FILE] models train NAME --date YYYY-MM-DD\n"
    "                [--max-trials N] [--rounds N] [--early-stopping N]\n"
    "                [--threads N] [--parallel N] [--shared-trials]\n"
    "                [--workers N [--tracker-host HOST]] [--run-id ID]\n"
    "\n"
    "Run the training pipeline of model NAME (spec in models.specs_dir) for\n"
    "a logical date, as the DAG task `type: train` does: read the training\n"
    "set from MariaDB, split, fit the preprocessing, grid-search XGBoost,\n"
    "record every trial under NAME/runs/ and register the best trial as a\n"
    "new version (printed last as \"version N\").  Progress goes to stdout.\n"
    "  --max-trials N      run only the first N grid points\n"
    "  --rounds N          at most N boosting rounds (default: the spec's)\n"
    "  --early-stopping N  early stopping rounds (0: off; default: spec's)\n"
    "  --threads N         XGBoost threads (default models.train_threads)\n"
    "  --parallel N        trials trained at once (default\n"
    "                      models.train_parallel: CPUs / threads)\n"
    "  --shared-trials     trials as rows in MariaDB that the trial\n"
    "                      helpers of running daemons claim too\n"
    "  --workers N         distributed training: this process is rank 0\n"
    "                      of N (rows MOD(source.key, N) = rank); ranks\n"
    "                      1.. are running daemons' trial helpers\n"
    "  --tracker-host H    address the XGBoost tracker listens on\n"
    "  --run-id ID         names the trial runs ID-t01... (default\n"
    "                      cli-<UTC time>)\n"
    "Exit codes: 0 ok, 1 failure (e.g. no training rows for the date),\n"
    "2 usage error.\n";

static const char usage_predict[] =
    "usage: mlopsd [-c FILE] predict NAME[:VERSION|@ALIAS] (--json JSON | "
    "--file FILE)\n"
    "                               [--print-rows]\n"
    "       mlopsd [-c FILE] predict NAME[:VERSION|@ALIAS] --input FILE\n"
    "                               [--format jsonl|csv] [--output FILE]\n"
    "                               [--output-format jsonl|csv]\n"
    "\n"
    "Answer a prediction request offline, from the registry, as POST\n"
    "/models/NAME/predict would: the body is {\"data\": {...}} or\n"
    "{\"data\": [{...}, ...]}; the answer (or the 400 error body, with\n"
    "every bad field) is printed on stdout.  NAME alone uses the production\n"
    "version.  --file - reads standard input.\n"
    "--print-rows  (debugging aid) print instead {\"columns\": [...],\n"
    "              \"rows\": [[...]], \"outputs\": [[...]]}: the preprocessed\n"
    "              float rows fed to the model and its raw outputs (class\n"
    "              probabilities)\n"
    "--input FILE  batch scoring of any size in constant memory: one record\n"
    "              per JSON line (an item or {\"data\": {...}}) or CSV row\n"
    "              (--format csv: the first line names the columns; columns\n"
    "              that are not features are ignored), scored in blocks\n"
    "              with the server's preprocessing and evaluator; one answer\n"
    "              per record, in order, as JSON lines (default) or CSV\n"
    "              (--output-format csv) on stdout or --output FILE.  A\n"
    "              record that fails the checks gets an \"error\" and the\n"
    "              rest are scored.  --input - reads standard input.  The\n"
    "              format defaults from the name (.csv), else jsonl.\n"
    "Exit codes: 0 answered (--input: every record read), 1 failure or\n"
    "invalid input (400), 2 usage error.\n";

/* ---- helpers ------------------------------------------------------------ */

static int usage_err(const char *cmd, const char *help, const char *fmt,
                     ...) MLOPSD_PRINTF(3, 4);
static int usage_err(const char *cmd, const char *help, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  fprintf(stderr, "mlopsd: %s: %s (try mlopsd %s --help)\n", cmd, msg, help);
  return CLI_USAGE;
}

/* A version number 1..INT_MAX, or -1. */
static int parse_version(const char *s)
{
  long v;
  return cli_parse_long(s, 1, INT_MAX, &v) ? -1 : (int)v;
}

/* NAME, NAME:V or NAME@ALIAS.  *version 0 and *alias NULL for NAME. */
struct ref {
  char name[REGISTRY_NAME_MAX + 1];
  int version;
  char alias[REGISTRY_NAME_MAX + 1];
  int has_alias;
};

static int parse_ref(const char *s, struct ref *r, char *why, size_t cap)
{
  memset(r, 0, sizeof(*r));
  const char *sep = strpbrk(s, ":@");
  size_t n = sep ? (size_t)(sep - s) : strlen(s);
  if (n == 0 || n > REGISTRY_NAME_MAX) {
    snprintf(why, cap, "'%.200s' is not NAME, NAME:VERSION or NAME@ALIAS",
             s);
    return -1;
  }
  memcpy(r->name, s, n);
  r->name[n] = '\0';
  if (!fsx_name_valid(r->name)) {
    snprintf(why, cap, "'%.130s' is not a valid model name", r->name);
    return -1;
  }
  if (sep && *sep == ':') {
    if ((r->version = parse_version(sep + 1)) < 0) {
      snprintf(why, cap, "'%.40s' is not a version number", sep + 1);
      return -1;
    }
  } else if (sep) {
    if (!fsx_name_valid(sep + 1)) {
      snprintf(why, cap, "'%.130s' is not a valid alias name", sep + 1);
      return -1;
    }
    snprintf(r->alias, sizeof(r->alias), "%s", sep + 1);
    r->has_alias = 1;
  }
  return 0;
}

/* The version a ref names; prod_default: NAME alone = production (else
 * latest when prod_default is 2). */
static enum err_code resolve(struct registry *reg, const struct ref *r,
                             int prod_default, int *version, struct err *e)
{
  if (r->version) {
    if (!registry_version_exists(reg, r->name, r->version))
      return err_set(e, ERR_NOTFOUND, "%s has no version %d", r->name,
                     r->version);
    *version = r->version;
    return ERR_OK;
  }
  const char *alias = r->has_alias ? r->alias : REGISTRY_PRODUCTION;
  enum err_code rc = registry_alias_get(reg, r->name, alias, version, e);
  if (rc == ERR_NOTFOUND && !r->has_alias && prod_default == 2)
    return registry_latest(reg, r->name, version, e);
  if (rc == ERR_NOTFOUND) {
    int dummy;
    struct err le = {0};
    if (registry_latest(reg, r->name, &dummy, &le) == ERR_NOTFOUND)
      return err_set(e, ERR_NOTFOUND, "no model %s in the registry (%s)",
                     r->name, registry_where(reg));
    return err_set(e, ERR_NOTFOUND,
                   "alias %s of %s is not set (no version deployed); name "
                   "a version as %s:VERSION",
                   alias, r->name, r->name);
  }
  return rc;
}

static int open_registry(const struct cfg *c, const char *cmd,
                         struct registry **reg)
{
  struct err e = {0};
  if (registry_open_cfg(c, reg, &e) != ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  return CLI_OK;
}

/* Load the configuration into *c (c NULL: the caller needs only the
 * registry) and open its registry (*reg, closed by the caller with
 * registry_close).  CLI_OK or the printed failure's code; nothing is open
 * on failure. */
static int open_cfg_registry(struct cfg *c, const char *cmd,
                             struct registry **reg)
{
  struct cfg own;
  if (!c)
    c = &own;
  int rc = cli_load_config(c);
  if (rc != CLI_OK)
    return rc;
  return open_registry(c, cmd, reg);
}

/* Options shared by promote and rollback. */
struct move_opts {
  const char *alias;
  const char *reason;
  const char *pos[3];
  int npos;
};

/* promote's and rollback's command line: the options, then exactly
 * npos positional arguments (`expect` names them in the usage error), the
 * first a valid model name.  CLI_OK or the usage code. */
static int parse_move(int argc, char **argv, const char *cmd, int npos,
                      const char *expect, struct move_opts *o)
{
  const char *help = cmd;
  memset(o, 0, sizeof(*o));
  o->alias = REGISTRY_PRODUCTION;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--alias") == 0 || strcmp(a, "--reason") == 0) {
      if (i + 1 >= argc)
        return usage_err(cmd, help, "option %s needs a value", a);
      if (a[2] == 'a')
        o->alias = argv[++i];
      else
        o->reason = argv[++i];
    } else if (strncmp(a, "--alias=", 8) == 0) {
      o->alias = a + 8;
    } else if (strncmp(a, "--reason=", 9) == 0) {
      o->reason = a + 9;
    } else if (a[0] == '-' && a[1]) {
      return usage_err(cmd, help, "unknown option '%s'", a);
    } else if (o->npos < 3) {
      o->pos[o->npos++] = a;
    } else {
      return usage_err(cmd, help, "unexpected argument '%s'", a);
    }
  }
  if (!fsx_name_valid(o->alias))
    return usage_err(cmd, help, "'%s' is not a valid alias name", o->alias);
  if (o->npos != npos)
    return usage_err(cmd, help, "%s", expect);
  if (!fsx_name_valid(o->pos[0]))
    return usage_err(cmd, help, "'%s' is not a valid model name", o->pos[0]);
  return CLI_OK;
}

/* Move the alias and record it; restore the alias if the record fails. */
static int move_alias(struct registry *reg, struct db_pool *pool,
                      const char *cmd, const char *name, const char *alias,
                      int to, const char *action, const char *reason)
{
  struct err e = {0};
  int prev = 0;
  if (registry_alias_set(reg, name, alias, to, &prev, &e) != ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  char actor[300];
  snprintf(actor, sizeof(actor), "cli:%s", cli_user_name());
  if (pipeline_record_deployment(pool, name, alias, prev, to, action, reason,
                                 actor, NULL, &e) != ERR_OK) {
    struct err ue = {0};
    enum err_code u =
        prev > 0 ? registry_alias_set(reg, name, alias, prev, NULL, &ue)
                 : registry_alias_delete(reg, name, alias, &ue);
    if (u)
      return cli_fail(cmd, "%s; and the alias could not be restored to %d: %s",
                      e.msg, prev, ue.msg);
    return cli_fail(cmd, "%s; alias %s left at %d", e.msg, alias, prev);
  }
  if (prev)
    printf("%s: %s %d -> %d (%s)\n", name, alias, prev, to, action);
  else
    printf("%s: %s -> %d (%s)\n", name, alias, to, action);
  return CLI_OK;
}

/* ---- list --------------------------------------------------------------- */

static void metrics_text(const cJSON *meta, char *buf, size_t cap)
{
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "metrics");
  const cJSON *ds = cJSON_GetObjectItemCaseSensitive(meta, "logical_date");
  size_t n = 0;
  buf[0] = '\0';
  static const char *const keys[] = {"accuracy", "f1_macro", "logloss",
                                     "rmse", "mae"};
  for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, keys[i]);
    if (cJSON_IsNumber(v) && n < cap)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s=%.4f", n ? " " : "",
                            keys[i], v->valuedouble);
  }
  if (cJSON_IsString(ds) && n < cap)
    snprintf(buf + n, cap - n, "%s(ds %s)", n ? " " : "", ds->valuestring);
}

static int models_list(int argc, char **argv)
{
  int json = 0;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else
      return usage_err("models list", "models list",
                       "unexpected argument '%s'", argv[i]);
  }
  struct registry *reg;
  int rc = open_cfg_registry(NULL, "models list", &reg);
  if (rc != CLI_OK)
    return rc;
  struct err e = {0};
  char **names = NULL;
  size_t n = 0;
  if (registry_list_models(reg, &names, &n, &e) != ERR_OK) {
    registry_close(reg);
    return cli_fail("models list", "%s", e.msg);
  }
  cJSON *arr = json ? cJSON_CreateArray() : NULL;
  if (!json) {
    if (n == 0)
      printf("no models in %s\n", registry_where(reg));
    else
      printf("%-32s %8s %6s %10s  %s\n", "NAME", "VERSIONS", "LATEST",
             "PRODUCTION", "LATEST METRICS");
  }
  for (size_t i = 0; i < n; i++) {
    int *vers = NULL;
    size_t nv = 0;
    int prod = 0;
    cJSON *meta = NULL;
    char mt[512] = "", err_txt[ERR_MSG_MAX + 32] = "";
    if (registry_list_versions(reg, names[i], &vers, &nv, &e) != ERR_OK) {
      snprintf(err_txt, sizeof(err_txt), "%s", e.msg);
      nv = 0;
    }
    struct err ae = {0};
    enum err_code arc =
        registry_alias_get(reg, names[i], REGISTRY_PRODUCTION, &prod, &ae);
    if (arc != ERR_OK && arc != ERR_NOTFOUND)
      snprintf(err_txt, sizeof(err_txt), "%s", ae.msg);
    int latest = nv ? vers[nv - 1] : 0;
    if (latest) {
      struct err me = {0};
      if (registry_read_meta(reg, names[i], latest, &meta, &me) != ERR_OK)
        snprintf(err_txt, sizeof(err_txt), "version %d: %s", latest, me.msg);
      else
        metrics_text(meta, mt, sizeof(mt));
    }
    if (json) {
      cJSON *o = cJSON_CreateObject();
      cJSON_AddStringToObject(o, "name", names[i]);
      cJSON *va = cJSON_AddArrayToObject(o, "versions");
      for (size_t k = 0; k < nv; k++)
        cJSON_AddItemToArray(va, cJSON_CreateNumber(vers[k]));
      cJSON_AddItemToObject(o, "latest", latest ? cJSON_CreateNumber(latest)
                                                : cJSON_CreateNull());
      cJSON_AddItemToObject(o, "production", prod ? cJSON_CreateNumber(prod)
                                                  : cJSON_CreateNull());
      const cJSON *m = cJSON_GetObjectItemCaseSensitive(meta, "metrics");
      cJSON_AddItemToObject(o, "metrics", m ? cJSON_Duplicate(m, 1)
                                            : cJSON_CreateNull());
      cJSON_AddItemToObject(o, "error", err_txt[0]
                                            ? cJSON_CreateString(err_txt)
                                            : cJSON_CreateNull());
      cJSON_AddItemToArray(arr, o);
    } else {
      char ps[16] = "-", ls[16] = "-";
      if (prod)
        snprintf(ps, sizeof(ps), "%d", prod);
      if (latest)
        snprintf(ls, sizeof(ls), "%d", latest);
      printf("%-32s %8zu %6s %10s  %s\n", names[i], nv, ls, ps,
             err_txt[0] ? err_txt : mt);
    }
    cJSON_Delete(meta);
    free(vers);
  }
  if (json) {
    char *t = cJSON_Print(arr);
    printf("%s\n", t ? t : "[]");
    cJSON_free(t);
    cJSON_Delete(arr);
  }
  registry_strv_free(names);
  registry_close(reg);
  return CLI_OK;
}

/* ---- show --------------------------------------------------------------- */

static const char *jstr(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* jstr, or def when the string is not there. */
static const char *jstr_or(const cJSON *o, const char *k, const char *def)
{
  const char *v = jstr(o, k);
  return v ? v : def;
}

static double jnum(const cJSON *o, const char *k)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* "k=v k=v" of a flat object. */
static void kv_line(const cJSON *o, char *buf, size_t cap)
{
  size_t n = 0;
  buf[0] = '\0';
  const cJSON *it;
  cJSON_ArrayForEach(it, o)
  {
    char num[64];
    char *v = NULL;
    if (cJSON_IsNumber(it)) {
      double d = it->valuedouble;
      if (d == floor(d) && fabs(d) < 1e15)
        snprintf(num, sizeof(num), "%.0f", d);
      else
        snprintf(num, sizeof(num), "%.6g", d);
    } else if (!cJSON_IsString(it)) {
      v = cJSON_PrintUnformatted(it);
    }
    if (n < cap)
      n += (size_t)snprintf(buf + n, cap - n, "%s%s=%s", n ? " " : "",
                            it->string ? it->string : "?",
                            cJSON_IsString(it)   ? it->valuestring
                            : cJSON_IsNumber(it) ? num
                            : v                  ? v
                                                 : "?");
    cJSON_free(v);
  }
}

/* meta.json's "importance" (explain.h): the first fields by mean |SHAP|
 * with their share of XGBoost's gain; versions trained before it have
 * none. */
static void show_importance(const cJSON *meta)
{
  const cJSON *imp = cJSON_GetObjectItemCaseSensitive(meta, "importance");
  const cJSON *fields = cJSON_GetObjectItemCaseSensitive(imp, "fields");
  if (!cJSON_IsArray(fields)) {
    printf("importance     - (not recorded for this version)\n");
    return;
  }
  printf("importance     mean |SHAP| on %.0f %s rows (share of gain)\n",
         jnum(imp, "rows"), jstr_or(imp, "split", "?"));
  int n = cJSON_GetArraySize(fields), shown = 0;
  const cJSON *f;
  cJSON_ArrayForEach(f, fields)
  {
    if (shown++ == 10)
      break;
    printf("  %-28s %10.4f  (%4.1f%%)\n",
           jstr_or(f, "field", "?"),
           jnum(f, "mean_abs_shap"), 100 * jnum(f, "gain_share"));
  }
  if (n > 10)
    printf("  ... %d more (--json)\n", n - 10);
}

static int models_show(int argc, char **argv)
{
  int json = 0;
  const char *refs = NULL;
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-' && argv[i][1])
      return usage_err("models show", "models show", "unknown option '%s'",
                       argv[i]);
    else if (!refs)
      refs = argv[i];
    else
      return usage_err("models show", "models show",
                       "unexpected argument '%s'", argv[i]);
  }
  if (!refs)
    return usage_err("models show", "models show",
                     "missing NAME[:VERSION|@ALIAS]");
  struct ref r;
  char why[300];
  if (parse_ref(refs, &r, why, sizeof(why)))
    return usage_err("models show", "models show", "%s", why);
  struct registry *reg;
  int rc = open_cfg_registry(NULL, "models show", &reg);
  if (rc != CLI_OK)
    return rc;
  struct err e = {0};
  int v = 0;
  cJSON *meta = NULL;
  if (resolve(reg, &r, 2, &v, &e) != ERR_OK ||
      registry_read_meta(reg, r.name, v, &meta, &e) != ERR_OK) {
    registry_close(reg);
    return cli_fail("models show", "%s", e.msg);
  }
  int prod = 0;
  struct err ae = {0};
  if (registry_alias_get(reg, r.name, REGISTRY_PRODUCTION, &prod, &ae))
    prod = 0;
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", r.name);
    cJSON_AddNumberToObject(o, "version", v);
    cJSON *al = cJSON_AddArrayToObject(o, "aliases");
    if (prod == v)
      cJSON_AddItemToArray(al, cJSON_CreateString(REGISTRY_PRODUCTION));
    if (r.has_alias && strcmp(r.alias, REGISTRY_PRODUCTION) != 0)
      cJSON_AddItemToArray(al, cJSON_CreateString(r.alias));
    cJSON_AddItemToObject(o, "meta", meta);
    meta = NULL;
    char *t = cJSON_Print(o);
    printf("%s\n", t ? t : "{}");
    cJSON_free(t);
    cJSON_Delete(o);
  } else {
    char line[2048];
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(meta,
                                                       "feature_schema");
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(fs, "outputs");
    const cJSON *ins = cJSON_GetObjectItemCaseSensitive(fs, "inputs");
    printf("model          %s\n", r.name);
    printf("version        %d%s\n", v,
           prod == v ? "  (production)" : prod ? "" : "  (nothing deployed)");
    printf("created        %s\n", jstr_or(meta, "creation_time", "?"));
    printf("logical date   %s\n", jstr_or(meta, "logical_date", "?"));
    printf("dag run        %s / %s\n",
           jstr_or(meta, "dag_id", "-"),
           jstr_or(meta, "dag_run_id", "-"));
    printf("rows           %.0f (train %.0f, validation %.0f",
           jnum(meta, "training_rows"), jnum(meta, "train_rows"),
           jnum(meta, "val_rows"));
    if (jnum(meta, "gate_rows") > 0)
      printf(", gate %.0f", jnum(meta, "gate_rows"));
    printf(")\n");
    printf("data sha256    %s\n", jstr_or(meta, "data_sha256", "?"));
    printf("spec           %s (sha256 %s)\n",
           jstr_or(meta, "spec_path", "?"),
           jstr_or(meta, "spec_sha256", "?"));
    printf("xgboost        %s\n", jstr_or(meta, "xgboost_version", "?"));
    printf("best run       %s (trial %.0f of %.0f)\n",
           jstr_or(meta, "best_run", "?"),
           jnum(cJSON_GetObjectItemCaseSensitive(meta, "selection"),
                "trial"),
           jnum(meta, "trial_count"));
    kv_line(cJSON_GetObjectItemCaseSensitive(meta, "params"), line,
            sizeof(line));
    printf("params         %s\n", line);
    kv_line(cJSON_GetObjectItemCaseSensitive(meta, "metrics"), line,
            sizeof(line));
    printf("metrics        %s\n", line);
    printf("features       %d inputs -> %d columns\n",
           cJSON_IsArray(ins) ? cJSON_GetArraySize(ins) : 0,
           cJSON_IsArray(outs) ? cJSON_GetArraySize(outs) : 0);
    show_importance(meta);
  }
  cJSON_Delete(meta);
  registry_close(reg);
  return CLI_OK;
}

/* ---- promote / rollback ------------------------------------------------- */

static int models_promote(int argc, char **argv)
{
  struct move_opts o;
  int rc = parse_move(argc, argv, "models promote", 2,
                      "expected NAME VERSION", &o);
  if (rc != CLI_OK)
    return rc;
  int v = parse_version(o.pos[1]);
  if (v < 0)
    return usage_err("models promote", "models promote",
                     "'%s' is not a version number", o.pos[1]);
  struct cfg c;
  struct registry *reg;
  if ((rc = open_cfg_registry(&c, "models promote", &reg)) != CLI_OK)
    return rc;
  if (!registry_version_exists(reg, o.pos[0], v)) {
    /* the message names the registry: close it after */
    rc = cli_fail("models promote", "%s has no version %d in %s", o.pos[0], v,
                  registry_where(reg));
    registry_close(reg);
    return rc;
  }
  struct db_pool *pool = NULL;
  if ((rc = cli_db_open(&c, "models promote", CHANGE_WHY, 2, DB_CLI_ACQUIRE_MS,
                        &pool, NULL)) == CLI_OK) {
    char reason[1024];
    snprintf(reason, sizeof(reason), "%s",
             o.reason ? o.reason : "promoted from the command line");
    rc = move_alias(reg, pool, "models promote", o.pos[0], o.alias, v,
                    "promote", reason);
  }
  db_pool_destroy(pool);
  registry_close(reg);
  return rc;
}

static int models_rollback(int argc, char **argv)
{
  struct move_opts o;
  int rc = parse_move(argc, argv, "models rollback", 1, "expected NAME", &o);
  if (rc != CLI_OK)
    return rc;
  const char *name = o.pos[0];
  struct cfg c;
  struct registry *reg;
  if ((rc = open_cfg_registry(&c, "models rollback", &reg)) != CLI_OK)
    return rc;
  struct db_pool *pool = NULL;
  if ((rc = cli_db_open(&c, "models rollback", CHANGE_WHY, 2, DB_CLI_ACQUIRE_MS,
                        &pool, NULL)) != CLI_OK) {
    registry_close(reg);
    return rc;
  }
  struct err e = {0};
  int cur = 0, prev = 0, alias_now = 0;
  if (pipeline_previous_version(pool, name, o.alias, &cur, &prev, &e)) {
    rc = cli_fail("models rollback", "%s", e.msg);
    goto out;
  }
  struct err ae = {0};
  if (registry_alias_get(reg, name, o.alias, &alias_now, &ae) == ERR_OK &&
      alias_now != cur)
    fprintf(stderr,
            "mlopsd: models rollback: warning: alias %s of %s is %d but "
            "the deployment table last recorded %d; rolling back to %d\n",
            o.alias, name, alias_now, cur, prev);
  if (!registry_version_exists(reg, name, prev)) {
    rc = cli_fail("models rollback",
                  "%s version %d (the previous %s) no longer "
                  "exists in %s",
                  name, prev, o.alias, registry_where(reg));
    goto out;
  }
  char reason[1024];
  snprintf(reason, sizeof(reason), "%s",
           o.reason ? o.reason : "rolled back from the command line");
  rc = move_alias(reg, pool, "models rollback", name, o.alias, prev,
                  "rollback", reason);
out:
  db_pool_destroy(pool);
  registry_close(reg);
  return rc;
}

/* ---- train -------------------------------------------------------------- */

static void print_line(void *ud, const char *line)
{
  (void)ud;
  printf("%s\n", line);
  fflush(stdout);
}

static int models_train(int argc, char **argv)
{
  const char *name = NULL, *ds = NULL, *run_id = NULL;
  long trials = 0, rounds = 0, esr = -2, threads = 0, parallel = 0;
  long workers = 0;
  int shared = 0;
  const char *thost = NULL;
  /* the integer options: where each goes and its range */
  const struct {
    const char *opt;
    long *num, lo, hi;
  } nums[] = {
      {"--max-trials", &trials, 1, 100000},
      {"--rounds", &rounds, 1, 100000},
      {"--early-stopping", &esr, 0, 100000},
      {"--threads", &threads, 1, 256},
      {"--workers", &workers, 1, 64},
      {"--parallel", &parallel, 1, 256},
  };
  const size_t nnums = sizeof(nums) / sizeof(nums[0]);
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--date") == 0 || strcmp(a, "--run-id") == 0) {
      if (!v)
        return usage_err("models train", "models train",
                         "option %s needs a value", a);
      if (a[2] == 'd')
        ds = v;
      else
        run_id = v;
      i++;
      continue;
    }
    if (strcmp(a, "--tracker-host") == 0) {
      if (!v)
        return usage_err("models train", "models train",
                         "option %s needs a value", a);
      thost = v;
      i++;
      continue;
    }
    if (strcmp(a, "--shared-trials") == 0) {
      shared = 1;
      continue;
    }
    size_t k = 0;
    while (k < nnums && strcmp(a, nums[k].opt) != 0)
      k++;
    if (k < nnums) {
      if (!v || cli_parse_long(v, nums[k].lo, nums[k].hi, nums[k].num))
        return usage_err("models train", "models train",
                         "option %s needs an integer %ld..%ld", a,
                         nums[k].lo, nums[k].hi);
      i++;
    } else if (a[0] == '-' && a[1]) {
      return usage_err("models train", "models train", "unknown option "
                                                       "'%s'",
                       a);
    } else if (!name) {
      name = a;
    } else {
      return usage_err("models train", "models train",
                       "unexpected argument '%s'", a);
    }
  }
  if (!name || !ds)
    return usage_err("models train", "models train",
                     "expected NAME --date YYYY-MM-DD");
  if (!fsx_name_valid(name))
    return usage_err("models train", "models train",
                     "'%s' is not a valid model name", name);
  struct cfg c;
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  struct err e = {0};
  struct spec *spec = NULL;
  if (pipeline_spec_load(c.models_specs_dir, name, &spec, &e) != ERR_OK)
    return cli_fail("models train", "%s", e.msg);
  struct registry *reg = NULL;
  struct db_pool *pool = NULL;
  if ((rc = open_registry(&c, "models train", &reg)) != CLI_OK) {
    spec_destroy(spec);
    return rc;
  }
  char rid[PIPELINE_RUN_ID_MAX + 1];
  if (!run_id) {
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(rid, sizeof(rid), "cli-%Y%m%dT%H%M%SZ", &tm);
    run_id = rid;
  }
  if (threads)
    c.models_train_threads = (int)threads; /* CPUs / threads by default */
  struct pipeline_opts o = {
      .ds = ds,
      .dag_run_id = run_id,
      .nthread = threads ? (int)threads : c.models_train_threads,
      .parallel = parallel ? (int)parallel : cfg_train_parallel(&c),
      .shared_trials = shared,
      .workers = (int)workers,
      .tracker_host = thost,
      .lease_s = c.sched_lease_s,
      .max_trials = (size_t)trials,
      .num_boost_round = (int)rounds,
      .early_stopping_rounds = esr == -2 ? 0 : esr == 0 ? -1 : (int)esr,
      .log = print_line,
  };
  struct pipeline_result res = {0};
  rc = cli_db_open(&c, "models train", "to read the training set", 2,
                   DB_CLI_ACQUIRE_MS, &pool, NULL);
  if (rc == CLI_OK) {
    if (pipeline_train(reg, pool, spec, &o, &res, &e) != ERR_OK)
      rc = cli_fail("models train", "%s", e.msg);
    else
      printf("version %d\n", res.version);
  }
  pipeline_result_free(&res);
  db_pool_destroy(pool);
  registry_close(reg);
  spec_destroy(spec);
  return rc;
}

int cli_models(int argc, char **argv)
{
  if (argc < 2) {
    fputs(usage_models, stderr);
    return CLI_USAGE;
  }
  const char *sub = argv[1];
  const char *help = NULL;
  int (*fn)(int, char **) = NULL;
  if (strcmp(sub, "history") == 0) return cli_models_history(argc, argv);
  if (strcmp(sub, "migrate") == 0) return cli_models_migrate(argc, argv);
  if (strcmp(sub, "compare") == 0) return cli_models_compare(argc, argv);
  for (int i = 2; strcmp(sub, "promote") == 0 && i < argc; i++)
    if (strcmp(argv[i], "--from-shadow") == 0)
      return cli_models_promote_shadow(argc, argv);
  static const struct {
    const char *name, *help;
    int (*fn)(int, char **);
  } subs[] = {
      {"list", usage_list, models_list},
      {"show", usage_show, models_show},
      {"promote", usage_promote, models_promote},
      {"rollback", usage_rollback, models_rollback},
      {"train", usage_train, models_train},
  };
  for (size_t k = 0; !fn && k < sizeof(subs) / sizeof(subs[0]); k++)
    if (strcmp(sub, subs[k].name) == 0) {
      help = subs[k].help;
      fn = subs[k].fn;
    }
  if (cli_wants_help(argc, argv)) {
    fputs(help ? help : usage_models, stdout);
    return CLI_OK;
  }
  if (!fn) {
    fprintf(stderr, "mlopsd: models: unknown subcommand '%s' (try mlopsd "
                    "models --help)\n",
            sub);
    return CLI_USAGE;
  }
  return fn(argc, argv);
}

/* ---- predict ------------------------------------------------------------ */

static int fmt_of(const char *name, const char *path, enum bscore_format *f)
{
  if (!name) {
    size_t n = path ? strlen(path) : 0;
    *f = n > 4 && strcmp(path + n - 4, ".csv") == 0 ? BSCORE_CSV
                                                     : BSCORE_JSONL;
    return 0;
  }
  if (strcmp(name, "jsonl") == 0)
    *f = BSCORE_JSONL;
  else if (strcmp(name, "csv") == 0)
    *f = BSCORE_CSV;
  else
    return -1;
  return 0;
}

/* predict's NAME[:VERSION|@ALIAS] into *r (a usage error if bad), then
 * the configuration into *c.  CLI_OK or the printed answer's code. */
static int predict_ref_cfg(const char *refs, struct ref *r, struct cfg *c)
{
  char why[600] = "";
  if (parse_ref(refs, r, why, sizeof(why)))
    return usage_err("predict", "predict", "%s", why);
  return cli_load_config(c);
}

/* predict --input: stream any number of records (bscore.h). */
static int predict_stream(const char *refs, const char *input,
                          const char *format, const char *output,
                          const char *oformat)
{
  enum bscore_format fin, fout;
  struct ref r;
  if (fmt_of(format, input, &fin) || fmt_of(oformat, output, &fout))
    return usage_err("predict", "predict",
                     "--format and --output-format take jsonl or csv");
  struct cfg c;
  int rc = predict_ref_cfg(refs, &r, &c);
  if (rc != CLI_OK)
    return rc;
  struct registry *reg = NULL;
  struct serving_model *sm = NULL;
  FILE *in = NULL, *out = NULL;
  struct err e = {0};
  int v = 0;
  if ((rc = open_registry(&c, "predict", &reg)) != CLI_OK)
    return rc;
  if (resolve(reg, &r, 1, &v, &e) ||
      serving_model_load(reg, c.models_specs_dir, r.name, v, &sm, &e)) {
    rc = cli_fail("predict", "%s", e.msg);
    goto out;
  }
  in = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
  if (!in) {
    rc = cli_fail("predict", "cannot open %s: %s", input, strerror(errno));
    goto out;
  }
  out = !output || strcmp(output, "-") == 0 ? stdout : fopen(output, "w");
  if (!out) {
    rc = cli_fail("predict", "cannot create %s: %s", output,
                  strerror(errno));
    goto out;
  }
  struct bscore_stats st = {0};
  if (bscore_stream(sm, in, input, fin, out, fout, &st, &e) != ERR_OK) {
    rc = cli_fail("predict", "%s", e.msg);
    goto out;
  }
  if (fflush(out) != 0 || (out != stdout && fclose(out) != 0)) {
    out = NULL;
    rc = cli_fail("predict", "writing %s: %s", output ? output : "stdout",
                  strerror(errno));
    goto out;
  }
  if (out != stdout)
    out = NULL;
  fprintf(stderr,
          "mlopsd: predict: %llu records, %llu scored, %llu invalid "
          "(model %s version %d)\n",
          (unsigned long long)st.records, (unsigned long long)st.scored,
          (unsigned long long)st.invalid, r.name, v);
  rc = CLI_OK;
out:
  if (in && in != stdin)
    fclose(in);
  if (out && out != stdout)
    fclose(out);
  serving_release(sm);
  registry_close(reg);
  return rc;
}

int cli_predict(int argc, char **argv)
{
  if (cli_wants_help(argc, argv)) {
    fputs(usage_predict, stdout);
    return CLI_OK;
  }
  const char *refs = NULL, *json = NULL, *file = NULL;
  const char *input = NULL, *format = NULL, *output = NULL, *oformat = NULL;
  int print_rows = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **slot = strcmp(a, "--input") == 0    ? &input
                        : strcmp(a, "--format") == 0 ? &format
                        : strcmp(a, "--output") == 0 ? &output
                        : strcmp(a, "--output-format") == 0 ? &oformat
                                                            : NULL;
    if (slot) {
      if (i + 1 >= argc)
        return usage_err("predict", "predict", "option %s needs a value", a);
      *slot = argv[++i];
    } else if ((strcmp(a, "--json") == 0 || strcmp(a, "--file") == 0)) {
      if (i + 1 >= argc)
        return usage_err("predict", "predict", "option %s needs a value", a);
      if (a[2] == 'j')
        json = argv[++i];
      else
        file = argv[++i];
    } else if (strncmp(a, "--json=", 7) == 0) {
      json = a + 7;
    } else if (strncmp(a, "--file=", 7) == 0) {
      file = a + 7;
    } else if (strcmp(a, "--print-rows") == 0) {
      print_rows = 1;
    } else if (a[0] == '-' && a[1]) {
      return usage_err("predict", "predict", "unknown option '%s'", a);
    } else if (!refs) {
      refs = a;
    } else {
      return usage_err("predict", "predict", "unexpected argument '%s'", a);
    }
  }
  if (!refs)
    return usage_err("predict", "predict", "missing NAME[:VERSION|@ALIAS]");
  if (input) {
    if (json || file || print_rows)
      return usage_err("predict", "predict",
                       "--input does not go with --json, --file or "
                       "--print-rows");
    return predict_stream(refs, input, format, output, oformat);
  }
  if (format || output || oformat)
    return usage_err("predict", "predict",
                     "--format, --output and --output-format need --input");
  if (!json == !file)
    return usage_err("predict", "predict",
                     "give exactly one of --json JSON and --file FILE");
  struct ref r;
  struct cfg c;
  int rc = predict_ref_cfg(refs, &r, &c);
  if (rc != CLI_OK)
    return rc;
  long cap = c.server_max_body_bytes > 0 ? c.server_max_body_bytes
                                         : BODY_MAX_DEFAULT;
  char *body = NULL;
  size_t len = 0;
  if (file) {
    struct err re = {0};
    if (fsx_read(file, (size_t)cap, FSX_ANY_FILE | FSX_STDIN, &body, &len,
                 &re) != ERR_OK)
      return cli_fail("predict", "%s%s", re.msg,
                      strstr(re.msg, " is larger than ")
                          ? " (server.max_body_bytes)" : "");
  } else {
    len = strlen(json);
    if ((long)len > cap)
      return cli_fail("predict",
                      "--json is larger than %ld bytes "
                      "(server.max_body_bytes)",
                      cap);
    body = strdup(json);
    if (!body)
      return cli_fail("predict", "out of memory");
  }
  struct registry *reg = NULL;
  struct pipeline_served *m = NULL;
  char *answer = NULL, *rows = NULL;
  int status = 0, v = 0;
  struct err e = {0};
  if ((rc = open_registry(&c, "predict", &reg)) != CLI_OK)
    goto out;
  if (resolve(reg, &r, 1, &v, &e) ||
      pipeline_served_load(reg, c.models_specs_dir, r.name, v, &m, &e) ||
      pipeline_predict_body(m, body, len, &status, &answer,
                            print_rows ? &rows : NULL, &e)) {
    rc = cli_fail("predict", "%s", e.msg);
    goto out;
  }
  if (print_rows && rows)
    printf("%s\n", rows);
  else
    printf("%s\n", answer);
  if (status != 200) {
    rc = CLI_FAIL;
    fprintf(stderr, "mlopsd: predict: request rejected (HTTP %d)\n", status);
  } else {
    rc = CLI_OK;
  }
out:
  free(answer);
  free(rows);
  free(body);
  pipeline_served_free(m);
  registry_close(reg);
  return rc;
}
