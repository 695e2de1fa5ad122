/* registry_copy.c - copy one registry into another (registry.h
 * registry_copy): a directory registry into object storage and back, for
 * `mlopsd models migrate`.
 *
 * Only the public registry interface is used, so both directions (and
 * directory to directory) are the same code: each version is read from
 * src's local path (object storage materialises it, verified) into a
 * draft of dst and published with its own number (registry_version_import),
 * so it is whole or absent in dst whatever happens; versions dst has
 * already are skipped, which makes a second run resume the first.
 */
#include "mlopsd/registry.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static enum err_code copy_file(const char *from, const char *to,
                               struct err *e)
{
  FILE *in = fopen(from, "rb");
  if (!in)
    return err_set(e, ERR_IO, "registry copy: open %s: %s", from,
                   strerror(errno));
  FILE *out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return err_set(e, ERR_IO, "registry copy: create %s: %s", to,
                   strerror(errno));
  }
  char buf[64 << 10];
  size_t n;
  enum err_code rc = ERR_OK;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    if (fwrite(buf, 1, n, out) != n) {
      rc = err_set(e, ERR_IO, "registry copy: write %s: %s", to,
                   strerror(errno));
      break;
    }
  if (!rc && ferror(in))
    rc = err_set(e, ERR_IO, "registry copy: read %s", from);
  fclose(in);
  if (fclose(out) && !rc)
    rc = err_set(e, ERR_IO, "registry copy: write %s: %s", to,
                 strerror(errno));
  return rc;
}

static enum err_code copy_version(struct registry *src, struct registry *dst,
                                  const char *name, int v, struct err *e)
{
  char dir[REGISTRY_PATH_MAX];
  enum err_code rc = registry_path(src, name, v, NULL, dir, sizeof(dir), e);
  if (rc)
    return rc;
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, ERR_IO, "registry copy: %s: %s", dir, strerror(errno));
  struct registry_draft *dr;
  if ((rc = registry_version_begin(dst, name, &dr, e))) {
    closedir(d);
    return rc;
  }
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    char from[REGISTRY_PATH_MAX + 256], to[REGISTRY_PATH_MAX];
    snprintf(from, sizeof(from), "%s/%s", dir, de->d_name);
    struct stat st;
    if (stat(from, &st) < 0 || !S_ISREG(st.st_mode))
      continue;
    if (!(rc = registry_draft_path(dr, de->d_name, to, sizeof(to), e)))
      rc = copy_file(from, to, e);
  }
  closedir(d);
  if (rc) {
    registry_version_abort(dr);
    return rc;
  }
  return registry_version_import(dr, v, e);
}

static enum err_code copy_model(struct registry *src, struct registry *dst,
                                const char *name,
                                void (*log)(const char *line),
                                struct registry_copy_stats *st,
                                struct err *e)
{
  int *vs = NULL;
  size_t nv = 0;
  enum err_code rc = registry_list_versions(src, name, &vs, &nv, e);
  if (rc)
    return rc;
  for (size_t i = 0; !rc && i < nv; i++) {
    if (registry_version_exists(dst, name, vs[i])) {
      st->skipped++;
      continue;
    }
    if ((rc = copy_version(src, dst, name, vs[i], e)))
      break;
    st->versions++;
    if (log) {
      char line[REGISTRY_NAME_MAX + 64];
      snprintf(line, sizeof(line), "copied %s version %d", name, vs[i]);
      log(line);
    }
  }
  free(vs);
  char **al = NULL;
  size_t na = 0;
  if (!rc)
    rc = registry_list_aliases(src, name, &al, &na, e);
  for (size_t i = 0; !rc && i < na; i++) {
    int v = 0;
    if ((rc = registry_alias_get(src, name, al[i], &v, e)) ||
        (rc = registry_alias_set(dst, name, al[i], v, NULL, e)))
      break;
    st->aliases++;
  }
  registry_strv_free(al);
  char **runs = NULL;
  size_t nr = 0;
  if (!rc)
    rc = registry_list_runs(src, name, &runs, &nr, e);
  for (size_t i = 0; !rc && i < nr; i++) {
    cJSON *p = NULL, *m = NULL;
    struct err ig;
    /* a run record may hold one of the two files */
    if (registry_run_read(src, name, runs[i], "params.json", &p, &ig))
      p = NULL;
    if (registry_run_read(src, name, runs[i], "metrics.json", &m, &ig))
      m = NULL;
    if (p || m)
      rc = registry_run_write(dst, name, runs[i], p, m, e);
    cJSON_Delete(p);
    cJSON_Delete(m);
    if (!rc)
      st->runs++;
  }
  registry_strv_free(runs);
  return rc;
}

enum err_code registry_copy(struct registry *src, struct registry *dst,
                            void (*log)(const char *line),
                            struct registry_copy_stats *st, struct err *e)
{
  memset(st, 0, sizeof(*st));
  char **names = NULL;
  size_t n = 0;
  enum err_code rc = registry_list_models(src, &names, &n, e);
  for (size_t i = 0; !rc && i < n; i++) {
    rc = copy_model(src, dst, names[i], log, st, e);
    if (rc)
      err_prefix(e, "model %s", names[i]);
    else
      st->models++;
  }
  registry_strv_free(names);
  return rc;
}
