/* cli.h - the subcommands of the mlopsd binary.
 *
 * main.c parses the global options and dispatches to one cli_* function per
 * top-level command.  Each gets argc/argv starting at the command name
 * (argv[0] == "db", ...), with the config path already chosen, and returns
 * the process exit code: CLI_OK 0, CLI_FAIL 1 (the action failed), CLI_USAGE
 * 2 (bad command line).  Error messages go to stderr as one line:
 * "mlopsd: <what>: <detail>".
 */
#ifndef MLOPSD_CLI_H
#define MLOPSD_CLI_H

#include "mlopsd/cfg.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

/* The global options as parsed by main (borrowed for the process life). */
struct cli_globals {
  const char *config_path; /* -c FILE, or NULL for $MLOPSD_CONFIG / default */
};
extern struct cli_globals cli_g;

/* Load the config named by the global options; on error print it and
 * return CLI_USAGE (bad file) or CLI_FAIL.  Sets log level/format. */
int cli_load_config(struct cfg *c);

/* Non-zero if argv has -h/--help at any position (before "--"). */
int cli_wants_help(int argc, char **argv);

int cli_serve(int argc, char **argv);
int cli_db(int argc, char **argv);
int cli_dags(int argc, char **argv);
int cli_runs(int argc, char **argv);
int cli_logs(int argc, char **argv);
int cli_models(int argc, char **argv);
int cli_predict(int argc, char **argv);
/* src/cli_monitor.c: `mlopsd drift NAME`, and `mlopsd models history
 * NAME` (called by cli_models with argv[0] == "models"). */
int cli_drift(int argc, char **argv);
int cli_models_history(int argc, char **argv);

/* Print "mlopsd: 'WHAT' is not built yet" and return CLI_FAIL. */
int cli_not_built(const char *what);

#endif
