/* cli_models.c - command line for the models commands (placeholder until built). */
#include "mlopsd/cli.h"

int cli_models(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("models");
}

int cli_predict(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  return cli_not_built("predict");
}

