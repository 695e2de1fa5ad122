/* fuzz_cfg.c - libFuzzer target for the config loader (cfg_load, cfg.h):
 * config/mlopsd.yaml.
 *
 * Input: the bytes of a config file, written to a scratch file and loaded
 * (cfg.h has no buffer entry point; a file per input on /dev/shm is
 * cheap).  The environment is cleared of MLOPSD_* variables first, and
 * one secret is offered: MLOPSD_FUZZ_TOKEN (a seed names it as
 * auth.admin_token_env).  Checked beyond "no crash":
 *   - a loaded config dumps (cfg_dump) to YAML that loads again, and the
 *     second dump is the same text (the dump is a fixed point);
 *   - cfg_check_reload accepts the reloaded copy (nothing changed);
 *   - resolved secrets (admin token, database password from a
 *     password_file) never appear in the dump.
 */
#include "fuzz.h"

#include "mlopsd/cfg.h"

#define TOKEN "fuzz-admin-token-3f9c1a"

static char in_path[512], dump1[512], dump2[512];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  extern char **environ;
  (void)argc;
  (void)argv;
  fuzz_quiet();
  for (int again = 1; again;) {
    again = 0;
    for (char **ep = environ; ep && *ep; ep++) {
      if (strncmp(*ep, "MLOPSD_", 7) != 0)
        continue;
      char name[256];
      size_t n = strcspn(*ep, "=");
      snprintf(name, sizeof(name), "%.*s", (int)n, *ep);
      unsetenv(name);
      again = 1;
      break;
    }
  }
  setenv("MLOPSD_FUZZ_TOKEN", TOKEN, 1);
  const char *d = fuzz_dir("cfg");
  snprintf(in_path, sizeof(in_path), "%s/mlopsd.yaml", d);
  snprintf(dump1, sizeof(dump1), "%s/dump1.yaml", d);
  snprintf(dump2, sizeof(dump2), "%s/dump2.yaml", d);
  return 0;
}

/* Dump c to path; return the text after the first line (which names the
 * file it came from), malloc'd. */
static char *dump(const struct cfg *c, const char *path)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  FUZZ_CHECK(fd >= 0);
  cfg_dump(c, fd);
  close(fd);
  FILE *f = fopen(path, "rb");
  FUZZ_CHECK(f != NULL);
  char *buf = malloc(1 << 20);
  FUZZ_CHECK(buf != NULL);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *nl = strchr(buf, '\n');
  char *rest = strdup(nl ? nl + 1 : "");
  free(buf);
  FUZZ_CHECK(rest != NULL);
  return rest;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  static struct cfg c1, c2;
  struct err e = {0};
  fuzz_write(in_path, data, size);
  if (cfg_load(&c1, in_path, &e) != ERR_OK) {
    FUZZ_CHECK(e.msg[0]);
    FUZZ_CHECK(c1.db_password[0] == '\0' && c1.admin_token[0] == '\0');
    return 0;
  }
  char *a = dump(&c1, dump1);
  if (c1.admin_token[0])
    FUZZ_CHECK(!strstr(a, c1.admin_token));
  if (strlen(c1.db_password) >= 4)
    FUZZ_CHECK(!strstr(a, c1.db_password));
  if (cfg_load(&c2, dump1, &e) != ERR_OK) {
    fprintf(stderr, "dump does not load again: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
  char *b = dump(&c2, dump2);
  if (strcmp(a, b) != 0) {
    fprintf(stderr, "--- first dump\n%s--- second dump\n%s", a, b);
    FUZZ_CHECK(0);
  }
  if (cfg_check_reload(&c1, &c2, &e) != ERR_OK) {
    fprintf(stderr, "reload of the same config refused: %s\n", e.msg);
    FUZZ_CHECK(0);
  }
  free(a);
  free(b);
  return 0;
}
