/* main.c - the mlopsd binary: global options, command dispatch, --version.
 *
 * Each command lives in a cli_*.c file (see cli.h); this file only knows
 * their names and one-line descriptions, so `mlopsd --help` is one table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cli.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/train.h"

struct cli_globals cli_g;

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *usage;
} cmds[] = {
    {"serve", cli_serve, "serve [-c FILE]            run the daemon (scheduler, workers, HTTP)"},
    {"db", cli_db, "db init|seed|clean|load-archive  tables, sample data, clean-up"},
    {"dags", cli_dags, "dags list|validate|trigger|test|backfill|pause|unpause ...   manage DAGs"},
    {"runs", cli_runs, "runs list [DAG_ID] | show RUN_ID   DAG runs recorded in MariaDB"},
    {"logs", cli_logs, "logs RUN_ID [TASK_ID]       task logs of a run"},
    {"models", cli_models, "models list|show|promote|rollback ...   the model registry"},
    {"predict", cli_predict, "predict NAME (--json JSON | --file FILE)   offline prediction"},
    {"drift", cli_drift, "drift NAME [--limit N] [--json]   latest drift reports, worst features"},
    {"health", cli_health, "health [--ready] [--url URL]   exit 0 if the running daemon answers /healthz"},
};
#define NCMDS (int)(sizeof(cmds) / sizeof(cmds[0]))

static void usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] COMMAND [ARGS...]\n"
          "\n"
          "mlopsd schedules YAML DAGs, trains XGBoost models into a file\n"
          "registry and serves predictions over HTTP, logged to MariaDB.\n"
          "\n"
          "commands:\n");
  for (int i = 0; i < NCMDS; i++)
    fprintf(f, "  %s\n", cmds[i].usage);
  fprintf(f,
          "\n"
          "options:\n"
          "  -c, --config FILE  config file (default: $MLOPSD_CONFIG or\n"
          "                     config/mlopsd.yaml)\n"
          "  -h, --help         this help; COMMAND --help for a command's\n"
          "  -V, --version      version of mlopsd and of its libraries\n"
          "\n"
          "Every setting can be overridden by MLOPSD_SECTION_KEY environment\n"
          "variables (MLOPSD_DATABASE_HOST, MLOPSD_SERVER_LISTEN, ...).\n"
          "Exit codes: 0 ok, 1 failure, 2 usage error.\n");
}

static void version(void)
{
  printf("mlopsd %s\n", MLOPSD_VERSION);
  printf("  xgboost       %s\n", train_xgb_version());
  printf("  libmariadb    %s\n", db_client_version());
  printf("  libmicrohttpd %s\n", http_lib_version());
}

int cli_wants_help(int argc, char **argv)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      break;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return 1;
  }
  return 0;
}

int cli_load_config(struct cfg *c)
{
  struct err e = {0};
  if (cfg_load(c, cli_g.config_path, &e) != ERR_OK) {
    fprintf(stderr, "mlopsd: %s\n", e.msg);
    return e.code == ERR_IO ? CLI_FAIL : CLI_USAGE;
  }
  log_set_level((enum log_level)c->log_level);
  log_set_format((enum log_format)c->log_format);
  log_add_secret(c->db_password);
  log_add_secret(c->admin_token);
  return CLI_OK;
}

int main(int argc, char **argv)
{
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "mlopsd: option %s needs a FILE argument\n", a);
        return CLI_USAGE;
      }
      cli_g.config_path = argv[++i];
    } else if (strncmp(a, "--config=", 9) == 0) {
      cli_g.config_path = a + 9;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return CLI_OK;
    } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      version();
      return CLI_OK;
    } else if (a[0] == '-') {
      fprintf(stderr, "mlopsd: unknown option '%s' (try mlopsd --help)\n", a);
      return CLI_USAGE;
    } else {
      break;
    }
  }
  if (i >= argc) {
    usage(stderr);
    return CLI_USAGE;
  }
  /* Also accept -c after the command name (mlopsd serve -c FILE). */
  int n = argc - i;
  char **av = argv + i;
  for (int k = 1; k < n; k++) {
    if (strcmp(av[k], "--") == 0)
      break;
    if ((strcmp(av[k], "-c") == 0 || strcmp(av[k], "--config") == 0) &&
        k + 1 < n) {
      cli_g.config_path = av[k + 1];
      memmove(av + k, av + k + 2, (size_t)(n - k - 2) * sizeof(*av));
      n -= 2;
      av[n] = NULL;
      k--;
    } else if (strncmp(av[k], "--config=", 9) == 0) {
      cli_g.config_path = av[k] + 9;
      memmove(av + k, av + k + 1, (size_t)(n - k - 1) * sizeof(*av));
      n -= 1;
      av[n] = NULL;
      k--;
    }
  }
  for (int k = 0; k < NCMDS; k++)
    if (strcmp(av[0], cmds[k].name) == 0)
      return cmds[k].fn(n, av);
  fprintf(stderr, "mlopsd: unknown command '%s' (try mlopsd --help)\n",
          av[0]);
  return CLI_USAGE;
}
