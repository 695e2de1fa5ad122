/* cli_serve.c - command line for the serve commands (placeholder until built). */
#include "mlopsd/cli.h"

int cli_serve(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("serve");
}

