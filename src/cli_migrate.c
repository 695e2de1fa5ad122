/* cli_migrate.c - `mlopsd models migrate`: copy a registry into another
 * (a directory into S3 and back; registry_copy in registry.h).
 *
 * Either side is a directory path or an s3://BUCKET/PREFIX URL; an S3
 * side uses the configured models.s3_* keys and database, and a private
 * temporary cache (removed at the end) unless it is the configured
 * registry itself.  --from defaults to the configured registry.
 */
#define _XOPEN_SOURCE 700
#include "mlopsd/cfg.h"
#include "mlopsd/cli.h"
#include "mlopsd/db.h"
#include "mlopsd/registry.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage_migrate[] =
    "usage: mlopsd [-c FILE] models migrate --to DIR|s3://BUCKET[/PREFIX]\n"
    "                                       [--from DIR|s3://BUCKET[/PREFIX]]\n"
    "\n"
    "Copy every model of one registry into another: a directory registry\n"
    "into S3-compatible object storage or back (docs/registry.md).  Versions\n"
    "keep their numbers (those the destination has are skipped, so running\n"
    "it again copies only what is new), then aliases and run records.\n"
    "--from defaults to the configured registry (models.registry_url, else\n"
    "models.registry_dir).  An s3:// side uses models.s3_endpoint,\n"
    "models.s3_region, the credentials (AWS_ACCESS_KEY_ID/\n"
    "AWS_SECRET_ACCESS_KEY or models.s3_credentials_file) and the database\n"
    "(migration 060).  Each version is whole or absent in the destination,\n"
    "also when the copy is interrupted.\n"
    "Exit codes: 0 ok, 1 failure, 2 usage error.\n";

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
  (void)sb;
  (void)flag;
  (void)ftw;
  remove(p);
  return 0;
}

struct side {
  struct registry *reg;
  char tmp[64]; /* a private cache to remove, or "" */
};

static int open_side(const struct cfg *c, const char *where, struct side *s)
{
  struct err e = {0};
  s->tmp[0] = 0;
  if (!where || (c->models_registry_url[0] &&
                 !strcmp(where, c->models_registry_url)) ||
      (!c->models_registry_url[0] && !strcmp(where, c->models_registry_dir))) {
    if (registry_open_cfg(c, &s->reg, &e))
      return cli_fail("models migrate", "%s", e.msg);
    return CLI_OK;
  }
  if (strncmp(where, "s3://", 5)) {
    if (registry_open(where, &s->reg, &e))
      return cli_fail("models migrate", "%s", e.msg);
    return CLI_OK;
  }
  snprintf(s->tmp, sizeof(s->tmp), "/tmp/mlopsd-migrate-XXXXXX");
  if (!mkdtemp(s->tmp)) {
    s->tmp[0] = 0;
    return cli_fail("models migrate", "cannot create a temp cache directory");
  }
  struct db_opts db;
  db_opts_from_cfg(&db, c, 2, 60);
  struct registry_obj_opts o = {.url = where,
                                .endpoint = c->models_s3_endpoint,
                                .region = c->models_s3_region,
                                .credentials_file =
                                    c->models_s3_credentials_file,
                                .cache_dir = s->tmp,
                                .db = &db};
  if (registry_open_obj(&o, &s->reg, &e)) {
    nftw(s->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s->tmp[0] = 0;
    return cli_fail("models migrate", "%s", e.msg);
  }
  return CLI_OK;
}

static void close_side(struct side *s)
{
  registry_close(s->reg);
  s->reg = NULL;
  if (s->tmp[0])
    nftw(s->tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void print_line(const char *line) { printf("%s\n", line); }

int cli_models_migrate(int argc, char **argv)
{
  if (cli_wants_help(argc, argv)) {
    fputs(usage_migrate, stdout);
    return CLI_OK;
  }
  const char *from = NULL, *to = NULL;
  for (int i = 2; i < argc; i++) {
    if (!strcmp(argv[i], "--to") && i + 1 < argc)
      to = argv[++i];
    else if (!strcmp(argv[i], "--from") && i + 1 < argc)
      from = argv[++i];
    else {
      fprintf(stderr, "mlopsd: models migrate: unexpected argument '%s'\n%s",
              argv[i], usage_migrate);
      return CLI_USAGE;
    }
  }
  if (!to || !*to) {
    fprintf(stderr, "mlopsd: models migrate: --to is required\n%s",
            usage_migrate);
    return CLI_USAGE;
  }
  struct cfg c;
  int rc = cli_load_config(&c);
  if (rc != CLI_OK)
    return rc;
  struct side src = {0}, dst = {0};
  if ((rc = open_side(&c, from, &src)) != CLI_OK)
    return rc;
  if ((rc = open_side(&c, to, &dst)) != CLI_OK) {
    close_side(&src);
    return rc;
  }
  if (!strcmp(registry_where(src.reg), registry_where(dst.reg))) {
    close_side(&src);
    close_side(&dst);
    return cli_fail("models migrate", "--from and --to are the same registry");
  }
  struct registry_copy_stats st;
  struct err e = {0};
  enum err_code erc = registry_copy(src.reg, dst.reg, print_line, &st, &e);
  printf("%s -> %s: %d models, %d versions copied, %d already there, "
         "%d aliases, %d runs\n",
         registry_where(src.reg), registry_where(dst.reg), st.models,
         st.versions, st.skipped, st.aliases, st.runs);
  close_side(&src);
  close_side(&dst);
  if (erc)
    return cli_fail("models migrate", "%s", e.msg);
  return CLI_OK;
}
