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
#include "mlopsd/err.h"

struct db_opts;
struct db_pool;
struct db_conn;

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
/* src/cli_compare.c: `mlopsd models compare NAME` and `mlopsd models
 * promote NAME --from-shadow` (called by cli_models). */
int cli_models_compare(int argc, char **argv);
int cli_models_promote_shadow(int argc, char **argv);
/* `mlopsd models migrate` (src/cli_migrate.c). */
int cli_models_migrate(int argc, char **argv);
/* src/cli_health.c: `mlopsd health`, the container's HEALTHCHECK. */
int cli_health(int argc, char **argv);

/* ---- shared helpers (src/cli_util.c) ---------------------------------- */

/* Print "mlopsd: CMD: MESSAGE" (line breaks in the message folded to
 * spaces) on stderr and return CLI_FAIL. */
int cli_fail(const char *cmd, const char *fmt, ...) MLOPSD_PRINTF(2, 3);

/* "127.0.0.1:3306" or the socket path of the configured database, for
 * messages. */
void cli_db_endpoint(const struct cfg *c, char *buf, size_t cap);

/* Open a pool of size connections (read timeout 60 s) and check that
 * MariaDB answers, waiting for a connection up to the connect timeout but
 * at least min_wait_ms.  With conn non-NULL the checked connection is
 * handed out (release it with cli_db_close), else it is released.  On
 * failure prints "mlopsd: CMD: cannot reach MariaDB at WHERE (database
 * NAME)[ WHY]: ..." (why may be NULL) and returns CLI_FAIL with *pool
 * NULL. */
int cli_db_open(const struct cfg *c, const char *cmd, const char *why,
                int size, int min_wait_ms, struct db_pool **pool,
                struct db_conn **conn);

/* Who runs the command, for the actor of registry and deployment rows:
 * $USER, else the passwd name of the uid, else "unknown". */
const char *cli_user_name(void);

/* Release conn (may be NULL) and destroy pool (NULL-safe). */
void cli_db_close(struct db_pool *pool, struct db_conn *conn);

/* A whole decimal number (strtol: leading blanks and a sign allowed, no
 * trailing text) in min..max into *out.  Returns 0, or -1 (*out
 * untouched). */
int cli_parse_long(const char *s, long min, long max, long *out);

#endif
