/* cli_db.c - command line for the db commands (placeholder until built). */
#include "mlopsd/cli.h"

int cli_db(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("db");
}

