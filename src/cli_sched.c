/* cli_sched.c - command line for the sched commands (placeholder until built). */
#include "mlopsd/cli.h"

int cli_dags(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("dags");
}

int cli_runs(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("runs");
}

int cli_logs(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("logs");
}

