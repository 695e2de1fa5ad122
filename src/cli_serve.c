/* cli_serve.c - `mlopsd serve`: run the daemon (daemon.h) in the
 * foreground until SIGTERM or SIGINT.
 */
#include <stdio.h>
#include <string.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cli.h"
#include "mlopsd/daemon.h"

static void serve_usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] serve [--role ROLE] [--pid-file FILE] "
          "[--no-native]\n"
          "\n"
          "Run the daemon in the foreground: the HTTP server (POST /predict,\n"
          "POST /models/NAME/predict, /metadata, /healthz, /readyz,\n"
          "/metrics), the served models (alias 'production' of each model\n"
          "in models.registry_dir, swapped in when the alias changes), the\n"
          "prediction log to MariaDB (spooled to server.spool_dir while the\n"
          "database is away) and the job queue.\n"
          "\n"
          "options:\n"
          "  --role ROLE         all (default: everything, one machine), api\n"
          "                      (predictions, metadata, console, admin API;\n"
          "                      no DAGs) or scheduler (DAGs and tasks; only\n"
          "                      /healthz, /livez, /readyz, /metrics); wins\n"
          "                      over server.role / MLOPSD_SERVER_ROLE.  See\n"
          "                      docs/scale-out.md\n"
          "  -c, --config FILE   config file (default: $MLOPSD_CONFIG or\n"
          "                      config/mlopsd.yaml)\n"
          "  --pid-file FILE     write the process id to FILE, removed at\n"
          "                      exit; refuses to start if FILE names a\n"
          "                      running process\n"
          "  --no-native         predict through XGBoost only, not mlopsd's\n"
          "                      own evaluator (for benchmarks and\n"
          "                      diagnosis; answers are the same)\n"
          "  -h, --help          this help\n"
          "\n"
          "Signals: SIGTERM/SIGINT stop gracefully (requests in flight\n"
          "finish, the prediction log is flushed); SIGHUP reloads the\n"
          "config's logging settings.  See docs/serving.md.\n");
}

int cli_serve(int argc, char **argv)
{
  const char *pid_file = NULL, *role = NULL;
  int no_native = 0;
  struct cfg c;
  if (cli_wants_help(argc, argv)) {
    serve_usage(stdout);
    return CLI_OK;
  }
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--pid-file") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "mlopsd: serve: --pid-file needs a FILE argument\n");
        return CLI_USAGE;
      }
      pid_file = argv[++i];
    } else if (strncmp(argv[i], "--pid-file=", 11) == 0) {
      pid_file = argv[i] + 11;
    } else if (strcmp(argv[i], "--role") == 0 ||
               strncmp(argv[i], "--role=", 7) == 0) {
      if (argv[i][6] == '=') {
        role = argv[i] + 7;
      } else if (i + 1 >= argc) {
        fprintf(stderr, "mlopsd: serve: --role needs all, api or "
                        "scheduler\n");
        return CLI_USAGE;
      } else {
        role = argv[++i];
      }
      enum daemon_role r;
      struct err re = {0};
      if (daemon_role_parse(role, &r, &re) != ERR_OK) {
        fprintf(stderr, "mlopsd: serve: --role: %s\n", re.msg);
        return CLI_USAGE;
      }
    } else if (strcmp(argv[i], "--no-native") == 0) {
      no_native = 1;
    } else {
      fprintf(stderr, "mlopsd: serve: unknown argument '%s' (try mlopsd "
                      "serve --help)\n",
              argv[i]);
      return CLI_USAGE;
    }
  }
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  if (role)
    snprintf(c.server_role, sizeof(c.server_role), "%s", role);
  struct daemon_opts o = {.cfg = &c,
                          .config_path = cli_g.config_path,
                          .pid_file = pid_file,
                          .no_native = no_native};
  rc = daemon_main(&o) == 0 ? CLI_OK : CLI_FAIL;
  memset(&c, 0, sizeof(c)); /* wipe secrets */
  return rc;
}
