/* cli_compare.c - `mlopsd models compare NAME` and `mlopsd models promote
 * NAME --from-shadow` (compare.h, docs/serving.md "Shadow challenger").
 *
 * compare prints production against its shadow (the version aliased
 * staging) over the logged pairs; promote --from-shadow moves production
 * to the shadow's version only when the validate gate's rule passes on
 * the labelled pairs, and records the decision either way (action
 * promote, or skip with the reason) with the test's numbers in table
 * deployment, as the validate task does.
 *
 * Exit codes: 0 ok (compare ran; promoted), 1 failure or refusal, 2
 * usage error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cli.h"
#include "mlopsd/compare.h"
#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"

#define ACQUIRE_MS 5000

static const char usage_compare[] =
    "usage: mlopsd [-c FILE] models compare NAME [--json]\n"
    "\n"
    "Compare the production version of NAME with its shadow challenger\n"
    "(the version aliased staging, served in shadow with models.shadow:\n"
    "true) over the logged predictions: pairs, agreement rate and, once\n"
    "labels arrived (credit_score, one per customer and month), both\n"
    "accuracies with the validate gate's paired test (exact McNemar,\n"
    "one-sided Clopper-Pearson bound, the spec's validate.max_regression\n"
    "and validate.confidence) and whether `models promote NAME\n"
    "--from-shadow` would promote.  --json prints one JSON object.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static const char usage_promote_shadow[] =
    "usage: mlopsd [-c FILE] models promote NAME --from-shadow "
    "[--reason TEXT]\n"
    "\n"
    "Promote the shadow challenger (the version aliased staging) to\n"
    "production when the validate gate's rule passes on the labelled\n"
    "shadow pairs (see `mlopsd models compare`); otherwise change nothing\n"
    "and say why.  Either way the decision is a row of table deployment\n"
    "(action promote or skip) with the test's numbers.\n"
    "Exit codes: 0 promoted, 1 refused or failure, 2 usage error.\n";

static int usage(const char *cmd, const char *help, const char *msg,
                 const char *arg)
{
  fprintf(stderr, "mlopsd: %s: ", cmd);
  fprintf(stderr, msg, arg);
  fprintf(stderr, "\n%s", help);
  return CLI_USAGE;
}

static void print_text(const struct compare_result *r)
{
  printf("model          %s\n", r->model);
  printf("production     version %d\n", r->production);
  printf("shadow         version %d (alias %s)\n", r->shadow,
         PIPELINE_STAGING);
  if (r->pairs)
    printf("pairs          %ld, agreement %.4f (%ld agree)\n", r->pairs,
           (double)r->agree / (double)r->pairs, r->agree);
  else
    printf("pairs          0 (no prediction logged with this shadow yet)\n");
  printf("labelled       %ld of %ld customer-months (%ld without a label "
         "yet)\n",
         r->labelled, r->customers, r->unlabelled);
  if (r->labelled) {
    printf("accuracy       production %.4f, shadow %.4f\n",
           (double)r->prod_correct / (double)r->labelled,
           (double)r->shadow_correct / (double)r->labelled);
    printf("difference     %+.4f, interval [%+.4f, %+.4f] (%g%% one-sided "
           "bounds), p=%.3g (exact McNemar; only-shadow-right %ld, "
           "only-production-right %ld)\n",
           r->paired.difference, r->paired.lo, r->paired.hi, 100 * r->level,
           r->paired.p_value, r->b, r->c);
  }
  printf("promotion      %s: %s\n", r->pass ? "allowed" : "refused",
         r->reason);
}

/* Check NAME (usage error with help), load the configuration, resolve
 * the versions and run the comparison.  *reg and *pool are set (NULL
 * until opened) whatever the outcome: the caller closes both.  Returns
 * CLI_OK, CLI_USAGE (printed with help) or the failure code (printed). */
static int run(const char *cmd, const char *help, const char *name,
               struct registry **reg, struct db_pool **pool,
               struct compare_result *r)
{
  struct err e = {0};
  int prod, sh, rc;
  *reg = NULL;
  *pool = NULL;
  if (!name)
    return usage(cmd, help, "expected NAME%s", "");
  if (!fsx_name_valid(name))
    return usage(cmd, help, "'%s' is not a valid model name", name);
  struct cfg c;
  if ((rc = cli_load_config(&c)) != CLI_OK)
    return rc;
  if (registry_open_cfg(&c, reg, &e) != ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  if (compare_versions(*reg, name, &prod, &sh, &e) != ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  if ((rc = cli_db_open(&c, cmd, "to read the prediction log", 2, ACQUIRE_MS,
                        pool, NULL)) != CLI_OK)
    return rc;
  if (compare_run(*pool, c.models_specs_dir, name, prod, sh, r, &e) !=
      ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  return CLI_OK;
}

int cli_models_compare(int argc, char **argv)
{
  const char *cmd = "models compare", *name = NULL;
  int json = 0;
  if (cli_wants_help(argc, argv)) {
    fputs(usage_compare, stdout);
    return CLI_OK;
  }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (argv[i][0] == '-' && argv[i][1])
      return usage(cmd, usage_compare, "unknown option '%s'", argv[i]);
    else if (!name)
      name = argv[i];
    else
      return usage(cmd, usage_compare, "unexpected argument '%s'", argv[i]);
  }
  struct registry *reg;
  struct db_pool *pool;
  struct compare_result r;
  int rc = run(cmd, usage_compare, name, &reg, &pool, &r);
  if (rc == CLI_OK) {
    if (json) {
      cJSON *o = compare_json(&r);
      char *t = o ? cJSON_PrintUnformatted(o) : NULL;
      if (t)
        printf("%s\n", t);
      else
        rc = cli_fail(cmd, "out of memory");
      free(t);
      cJSON_Delete(o);
    } else {
      print_text(&r);
    }
  }
  db_pool_destroy(pool);
  registry_close(reg);
  return rc;
}

int cli_models_promote_shadow(int argc, char **argv)
{
  const char *cmd = "models promote", *name = NULL, *reason = NULL;
  if (cli_wants_help(argc, argv)) {
    fputs(usage_promote_shadow, stdout);
    return CLI_OK;
  }
  for (int i = 2; i < argc; i++) {
    if (strcmp(argv[i], "--from-shadow") == 0)
      continue;
    if (strcmp(argv[i], "--reason") == 0 && i + 1 < argc)
      reason = argv[++i];
    else if (strncmp(argv[i], "--reason=", 9) == 0)
      reason = argv[i] + 9;
    else if (argv[i][0] == '-' && argv[i][1])
      return usage(cmd, usage_promote_shadow,
                   "unknown option '%s' (with --from-shadow)", argv[i]);
    else if (!name)
      name = argv[i];
    else
      return usage(cmd, usage_promote_shadow,
                   "unexpected argument '%s' (--from-shadow promotes the "
                   "staging version: give no VERSION)",
                   argv[i]);
  }
  struct registry *reg;
  struct db_pool *pool;
  struct compare_result r;
  struct err e = {0};
  int rc = run(cmd, usage_promote_shadow, name, &reg, &pool, &r);
  if (rc != CLI_OK)
    goto out;
  struct pipeline_verdict v;
  struct pipeline_gate_opts g;
  compare_verdict(&r, &v, &g);
  char actor[300], why[1200];
  snprintf(actor, sizeof(actor), "cli:%s", cli_user_name());
  snprintf(why, sizeof(why), "%s%sfrom shadow: %s", reason ? reason : "",
           reason ? "; " : "", r.reason);
  if (!r.pass) {
    if (pipeline_record_gate(pool, name, REGISTRY_PRODUCTION, r.production,
                             r.shadow, "skip", why, actor, NULL, &v, &g,
                             &e) != ERR_OK)
      fprintf(stderr, "mlopsd: %s: warning: the refusal was not recorded "
                      "in table deployment: %s\n",
              cmd, e.msg);
    rc = cli_fail(cmd, "%s: shadow version %d not promoted over production "
                       "%d: %s",
                  name, r.shadow, r.production, r.reason);
    goto out;
  }
  int prev = 0;
  if (registry_alias_set(reg, name, REGISTRY_PRODUCTION, r.shadow, &prev,
                         &e) != ERR_OK) {
    rc = cli_fail(cmd, "%s", e.msg);
    goto out;
  }
  if (pipeline_record_gate(pool, name, REGISTRY_PRODUCTION, prev, r.shadow,
                           "promote", why, actor, NULL, &v, &g,
                           &e) != ERR_OK) {
    struct err ue = {0};
    if (registry_alias_set(reg, name, REGISTRY_PRODUCTION, prev, NULL, &ue))
      rc = cli_fail(cmd, "%s; and the alias could not be restored to %d: "
                         "%s",
                    e.msg, prev, ue.msg);
    else
      rc = cli_fail(cmd, "%s; alias %s left at %d", e.msg,
                    REGISTRY_PRODUCTION, prev);
    goto out;
  }
  printf("%s: %s %d -> %d (promote from shadow: %s)\n", name,
         REGISTRY_PRODUCTION, prev, r.shadow, r.reason);
out:
  db_pool_destroy(pool);
  registry_close(reg);
  return rc;
}
