/* cli_util.c - helpers shared by the cli_*.c subcommands (cli.h): the
 * one-line error, and the MariaDB connection a command opens from the
 * config, so every command reports an unreachable database the same way.
 */
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlopsd/cli.h"
#include "mlopsd/db.h"

int cli_fail(const char *cmd, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  for (char *p = msg; *p; p++)
    if (*p == '\n' || *p == '\r')
      *p = ' ';
  fprintf(stderr, "mlopsd: %s: %s\n", cmd, msg);
  return CLI_FAIL;
}

int cli_parse_long(const char *s, long min, long max, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

void cli_db_endpoint(const struct cfg *c, char *buf, size_t cap)
{
  if (c->db_socket[0])
    snprintf(buf, cap, "%s", c->db_socket);
  else
    snprintf(buf, cap, "%s:%d", c->db_host, c->db_port);
}

int cli_db_open(const struct cfg *c, const char *cmd, const char *why,
                int size, int min_wait_ms, struct db_pool **pool,
                struct db_conn **conn)
{
  struct db_opts o;
  struct err e = {0};
  struct db_conn *cn = NULL;
  db_opts_from_cfg(&o, c, size, 60);
  *pool = NULL;
  if (conn)
    *conn = NULL;
  if (db_pool_create(pool, &o, &e) != ERR_OK)
    return cli_fail(cmd, "%s", e.msg);
  int ms = c->db_connect_timeout_s * 1000;
  if (ms < min_wait_ms)
    ms = min_wait_ms;
  if (db_acquire(*pool, ms, &cn, &e) != ERR_OK) {
    db_pool_destroy(*pool);
    *pool = NULL;
    char where[600];
    cli_db_endpoint(c, where, sizeof(where));
    return cli_fail(cmd, "cannot reach MariaDB at %s (database %s)%s%s: %s",
                    where, c->db_name, why ? " " : "", why ? why : "",
                    e.msg);
  }
  if (conn)
    *conn = cn;
  else
    db_release(*pool, cn);
  return CLI_OK;
}

void cli_db_close(struct db_pool *pool, struct db_conn *conn)
{
  if (conn)
    db_release(pool, conn);
  db_pool_destroy(pool);
}

const char *cli_user_name(void)
{
  const char *u = getenv("USER");
  if (u && *u)
    return u;
  struct passwd *pw = getpwuid(getuid());
  return pw && pw->pw_name ? pw->pw_name : "unknown";
}
