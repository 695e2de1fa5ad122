/* registry.c - file-based model registry (see registry.h and
 * docs/registry.md for the layout).
 *
 * Why plain files: a version must be readable by other tools (python
 * xgboost loads model.ubj directly) and survive any crash without a
 * database.  The two guarantees come from POSIX primitives:
 *
 *   - atomic publication: a version is assembled in NAME/tmp/draft-XXXXXX,
 *     its files fsync'd, then the directory is rename()d to versions/N.  A
 *     rename of a directory is atomic, so readers see all of it or nothing.
 *   - gap-free numbering across threads and processes: N = max + 1 is
 *     chosen and the rename done under flock(NAME/.lock, LOCK_EX).  flock
 *     locks belong to the open file description, so two threads of one
 *     process that each open() the file exclude each other too, and the
 *     kernel drops the lock when a holder dies (kill -9 never wedges it).
 *
 * Stale drafts: every draft X has a sibling X.lock that its writer keeps
 * flock'd for the draft's life.  Whoever next holds NAME/.lock (begin or
 * commit) removes drafts whose lock file can be flock'd (writer gone) and
 * drafts without a lock file.  Drafts are created under NAME/.lock too, so
 * the cleaner never sees one half made.
 *
 * Every path is built from names checked by fsx_name_valid() and
 * positive version numbers, so nothing outside the root can be named.
 */
#include "mlopsd/registry.h"
#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "registry_int.h"
#include "mlopsd/fsx.h"
#include "mlopsd/vec.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define RM_DEPTH_MAX 16
#define ALIAS_FILE_MAX 64

struct registry {
  char *root;       /* the directory, or object storage's local cache */
  struct robj *obj; /* NULL: the directory registry */
};

struct registry_draft {
  struct registry *r;
  char name[REGISTRY_NAME_MAX + 1];
  char dir[REGISTRY_PATH_MAX];
  char lock[REGISTRY_PATH_MAX];
  int lockfd;
};

/* ---- names and paths -------------------------------------------------- */

MLOPSD_PRINTF(4, 5)
static enum err_code fmt_path(char *buf, size_t cap, struct err *e,
                              const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= cap)
    return err_set(e, ERR_INVAL, "registry: path too long");
  return ERR_OK;
}

static enum err_code check_name(const char *what, const char *s,
                                struct err *e)
{
  if (fsx_name_valid(s))
    return ERR_OK;
  return err_set(e, ERR_INVAL,
                 "registry: invalid %s '%.*s' (want "
                 "[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, no '..')",
                 what, 200, s ? s : "(null)");
}

/* model/dir helper: ROOT/NAME[/sub] */
static enum err_code model_path(const struct registry *r, const char *name,
                                const char *sub, char *buf, size_t cap,
                                struct err *e)
{
  enum err_code rc = check_name("model name", name, e);
  if (rc)
    return rc;
  if (sub)
    return fmt_path(buf, cap, e, "%s/%s/%s", r->root, name, sub);
  return fmt_path(buf, cap, e, "%s/%s", r->root, name);
}

enum err_code registry_path(const struct registry *r, const char *name,
                            int version, const char *file, char *buf,
                            size_t cap, struct err *e)
{
  enum err_code rc = check_name("model name", name, e);
  if (rc)
    return rc;
  if (version < 1)
    return err_set(e, ERR_INVAL, "registry: invalid version %d (want >= 1)",
                   version);
  if (!file)
    rc = fmt_path(buf, cap, e, "%s/%s/versions/%d", r->root, name, version);
  else if (!(rc = check_name("file name", file, e)))
    rc = fmt_path(buf, cap, e, "%s/%s/versions/%d/%s", r->root, name,
                  version, file);
  /* object storage: the path must hold the version's files */
  if (!rc && r->obj)
    rc = robj_fetch(r->obj, name, version, e);
  return rc;
}

/* "[1-9][0-9]*" within 1..INT_MAX, else 0 */
static int parse_version(const char *s)
{
  if (!s || *s < '1' || *s > '9')
    return 0;
  long v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9')
      return 0;
    v = v * 10 + (*s - '0');
    if (v > INT_MAX)
      return 0;
  }
  return (int)v;
}

/* ---- file system helpers ---------------------------------------------- */

static int mkdir_ok(const char *p)
{
  return mkdir(p, 0755) == 0 || errno == EEXIST;
}

static enum err_code mkdir_p(const char *path, struct err *e)
{
  char b[REGISTRY_PATH_MAX];
  if (fmt_path(b, sizeof(b), e, "%s", path))
    return ERR_INVAL;
  for (char *p = b + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (!mkdir_ok(b))
      return err_set(e, ERR_IO, "registry: mkdir %s: %s", b, strerror(errno));
    *p = '/';
  }
  if (!mkdir_ok(b))
    return err_set(e, ERR_IO, "registry: mkdir %s: %s", b, strerror(errno));
  struct stat st;
  if (stat(b, &st) < 0 || !S_ISDIR(st.st_mode))
    return err_set(e, ERR_IO, "registry: %s is not a directory", b);
  return ERR_OK;
}

/* Remove name (file or tree) inside directory dfd; ENOENT is success. */
static int rm_rf_at(int dfd, const char *name, int depth)
{
  if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR && errno != EPERM)
    return -1;
  if (depth > RM_DEPTH_MAX)
    return -1;
  int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return errno == ENOENT ? 0 : -1;
  DIR *d = fdopendir(fd);
  if (!d) {
    close(fd);
    return -1;
  }
  struct dirent *de;
  int rc = 0;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      rc |= rm_rf_at(dirfd(d), de->d_name, depth + 1);
  closedir(d);
  if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return -1;
  return rc;
}

static int rm_rf(const char *path)
{
  return rm_rf_at(AT_FDCWD, path, 0);
}

/* A whole (capped) registry file.  ENOENT -> ERR_NOTFOUND. */
static enum err_code read_small(const char *path, size_t cap, char **out,
                                size_t *len, struct err *e)
{
  enum err_code rc = fsx_read(path, cap, 0, out, len, e);
  if (rc)
    err_prefix(e, "registry");
  return rc;
}

/* Exclusive flock on ROOT/NAME/.lock; returns the fd or -1 (e filled). */
static int lock_model(const struct registry *r, const char *name,
                      struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  if (model_path(r, name, ".lock", p, sizeof(p), e))
    return -1;
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    err_set(e, ERR_IO, "registry: open %s: %s", p, strerror(errno));
    return -1;
  }
  while (flock(fd, LOCK_EX) < 0) {
    if (errno == EINTR)
      continue;
    err_set(e, ERR_IO, "registry: flock %s: %s", p, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

static void unlock_model(int fd)
{
  if (fd >= 0)
    close(fd); /* closing the only descriptor releases the flock */
}

/* ---- open / close ----------------------------------------------------- */

enum err_code registry_open(const char *root, struct registry **out,
                            struct err *e)
{
  *out = NULL;
  if (!root || !*root)
    return err_set(e, ERR_INVAL, "registry: empty root path");
  size_t n = strlen(root);
  /* leave room for NAME/versions/N/FILE under the root */
  if (n > REGISTRY_PATH_MAX - 2 * REGISTRY_NAME_MAX - 64)
    return err_set(e, ERR_INVAL, "registry: root path too long");
  enum err_code rc = mkdir_p(root, e);
  if (rc)
    return rc;
  struct registry *r = calloc(1, sizeof(*r));
  if (!r || !(r->root = strdup(root))) {
    free(r);
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  }
  while (n > 1 && r->root[n - 1] == '/')
    r->root[--n] = '\0';
  *out = r;
  return ERR_OK;
}

enum err_code registry_open_obj(const struct registry_obj_opts *o,
                                struct registry **out, struct err *e)
{
  *out = NULL;
  if (!o->cache_dir || !*o->cache_dir)
    return err_set(e, ERR_CONFIG, "registry %s: no cache directory", o->url);
  struct registry *r;
  enum err_code rc = registry_open(o->cache_dir, &r, e);
  if (rc)
    return rc;
  if ((rc = robj_open(o, r->root, &r->obj, e))) {
    registry_close(r);
    return rc;
  }
  *out = r;
  return ERR_OK;
}

enum err_code registry_open_cfg(const struct cfg *c, struct registry **out,
                                struct err *e)
{
  if (!c->models_registry_url[0])
    return registry_open(c->models_registry_dir, out, e);
  struct db_opts db;
  db_opts_from_cfg(&db, c, 2, 30);
  struct registry_obj_opts o = {
      .url = c->models_registry_url,
      .endpoint = c->models_s3_endpoint,
      .region = c->models_s3_region,
      .credentials_file = c->models_s3_credentials_file,
      .cache_dir = c->models_registry_dir,
      .db = &db};
  return registry_open_obj(&o, out, e);
}

const char *registry_kind(const struct registry *r)
{
  return r->obj ? robj_kind(r->obj) : "directory";
}

const char *registry_where(const struct registry *r)
{
  return r->obj ? robj_url(r->obj) : r->root;
}

void registry_close(struct registry *r)
{
  if (!r)
    return;
  robj_close(r->obj);
  free(r->root);
  free(r);
}

const char *registry_root(const struct registry *r)
{
  return r->root;
}

/* ---- drafts ----------------------------------------------------------- */

static int has_suffix(const char *s, const char *suf)
{
  size_t a = strlen(s), b = strlen(suf);
  return a >= b && !strcmp(s + a - b, suf);
}

/* Remove drafts whose writer is gone.  Caller holds NAME/.lock. */
static void clean_stale_drafts(const char *tmpdir)
{
  DIR *d = opendir(tmpdir);
  if (!d)
    return;
  int dfd = dirfd(d);
  struct dirent *de;
  while ((de = readdir(d))) {
    const char *n = de->d_name;
    if (!strcmp(n, ".") || !strcmp(n, ".."))
      continue;
    char other[NAME_MAX + 8];
    if (has_suffix(n, ".lock")) {
      int fd = openat(dfd, n, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
      if (fd < 0)
        continue;
      if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        /* nobody holds it: the writer died (or finished and died before
         * unlinking); drop the draft and then its lock file */
        snprintf(other, sizeof(other), "%.*s", (int)(strlen(n) - 5), n);
        rm_rf_at(dfd, other, 1);
        unlinkat(dfd, n, 0);
      }
      close(fd);
      continue;
    }
    snprintf(other, sizeof(other), "%s.lock", n);
    struct stat st;
    if (fstatat(dfd, other, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
      rm_rf_at(dfd, n, 1); /* orphan: no writer can own it */
  }
  closedir(d);
}

enum err_code registry_version_begin(struct registry *r, const char *name,
                                     struct registry_draft **out,
                                     struct err *e)
{
  struct err local;
  if (!e)
    e = &local; /* the code of a failed helper is read back below */
  *out = NULL;
  char mdir[REGISTRY_PATH_MAX], vdir[REGISTRY_PATH_MAX],
      tdir[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = model_path(r, name, NULL, mdir, sizeof(mdir), e)) ||
      (rc = model_path(r, name, "versions", vdir, sizeof(vdir), e)) ||
      (rc = model_path(r, name, "tmp", tdir, sizeof(tdir), e)))
    return rc;
  if (r->obj && (rc = robj_model_touch(r->obj, name, e)))
    return rc;
  if (!mkdir_ok(mdir) || !mkdir_ok(vdir) || !mkdir_ok(tdir))
    return err_set(e, ERR_IO, "registry: mkdir under %s: %s", mdir,
                   strerror(errno));
  struct registry_draft *d = calloc(1, sizeof(*d));
  if (!d)
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  d->r = r;
  d->lockfd = -1;
  snprintf(d->name, sizeof(d->name), "%s", name);
  int lk = lock_model(r, name, e);
  if (lk < 0) {
    free(d);
    return e->code;
  }
  clean_stale_drafts(tdir);
  rc = ERR_IO;
  for (int attempt = 0; attempt < 10 && rc; attempt++) {
    if (fmt_path(d->dir, sizeof(d->dir), e, "%s/draft-XXXXXX", tdir) ||
        fmt_path(d->lock, sizeof(d->lock), e, "%s.lock", d->dir)) {
      rc = ERR_INVAL;
      break;
    }
    if (!mkdtemp(d->dir)) {
      err_set(e, ERR_IO, "registry: mkdtemp in %s: %s", tdir,
              strerror(errno));
      break;
    }
    /* same length as the template: copy the 6 random characters over */
    size_t l = strlen(d->dir);
    memcpy(d->lock + l - 6, d->dir + l - 6, 6);
    d->lockfd = open(d->lock, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (d->lockfd < 0) {
      int saved = errno;
      rmdir(d->dir);
      err_set(e, ERR_IO, "registry: create %s: %s", d->lock,
              strerror(saved));
      if (saved == EEXIST)
        continue; /* a leftover lock file with our random name: retry */
      break;
    }
    if (flock(d->lockfd, LOCK_EX | LOCK_NB) < 0) {
      err_set(e, ERR_IO, "registry: flock %s: %s", d->lock, strerror(errno));
      close(d->lockfd);
      unlink(d->lock);
      rmdir(d->dir);
      d->lockfd = -1;
      break;
    }
    rc = ERR_OK;
  }
  unlock_model(lk);
  if (rc) {
    free(d);
    return e->code;
  }
  *out = d;
  return ERR_OK;
}

const char *registry_draft_dir(const struct registry_draft *d)
{
  return d->dir;
}

enum err_code registry_draft_path(const struct registry_draft *d,
                                  const char *file, char *buf, size_t cap,
                                  struct err *e)
{
  enum err_code rc = check_name("file name", file, e);
  if (rc)
    return rc;
  return fmt_path(buf, cap, e, "%s/%s", d->dir, file);
}

static void draft_free(struct registry_draft *d)
{
  if (d->lockfd >= 0) {
    unlink(d->lock);
    close(d->lockfd);
  }
  free(d);
}

void registry_version_abort(struct registry_draft *d)
{
  if (!d)
    return;
  rm_rf(d->dir);
  draft_free(d);
}

/* fsync every file of the draft; only regular files are allowed */
static enum err_code sync_draft(const char *dir, struct err *e)
{
  DIR *dd = opendir(dir);
  if (!dd)
    return err_set(e, ERR_IO, "registry: %s: %s", dir, strerror(errno));
  enum err_code rc = ERR_OK;
  struct dirent *de;
  while (!rc && (de = readdir(dd))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(dirfd(dd), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
      rc = err_set(e, ERR_IO, "registry: %s/%s: %s", dir, de->d_name,
                   strerror(errno));
      break;
    }
    if (!S_ISREG(st.st_mode)) {
      rc = err_set(e, ERR_INVAL, "registry: %s/%s: only regular files may "
                   "be part of a version", dir, de->d_name);
      break;
    }
    int fd = openat(dirfd(dd), de->d_name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) < 0)
      rc = err_set(e, ERR_IO, "registry: fsync %s/%s: %s", dir, de->d_name,
                   strerror(errno));
    if (fd >= 0)
      close(fd);
  }
  closedir(dd);
  if (!rc)
    (void)fsx_fsync_dir(dir);
  return rc;
}

/* Highest version number in vdir (0 if none). */
static enum err_code max_version(const char *vdir, int *max, struct err *e)
{
  *max = 0;
  DIR *d = opendir(vdir);
  if (!d)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "registry: %s: %s", vdir, strerror(errno));
  struct dirent *de;
  while ((de = readdir(d))) {
    int v = parse_version(de->d_name);
    if (v > *max)
      *max = v;
  }
  closedir(d);
  return ERR_OK;
}

/* Object storage: upload and commit the row; the draft directory became
 * the cached version (or is removed with its lock file here). */
static enum err_code commit_obj(struct registry_draft *d, int want,
                                int *version, struct err *e)
{
  enum err_code rc = sync_draft(d->dir, e);
  if (!rc)
    rc = robj_commit(d->r->obj, d->name, d->dir, want, version, e);
  registry_version_abort(d);
  return rc;
}

static enum err_code commit_local(struct registry_draft *d, int want,
                                  int *version, struct err *e);

enum err_code registry_version_commit(struct registry_draft *d, int *version,
                                      struct err *e)
{
  return commit_local(d, 0, version, e);
}

enum err_code registry_version_import(struct registry_draft *d, int version,
                                      struct err *e)
{
  int got = 0;
  if (d && version < 1) {
    registry_version_abort(d);
    return err_set(e, ERR_INVAL, "registry: invalid version %d", version);
  }
  return commit_local(d, version, &got, e);
}

/* want 0: the next number; else exactly want (ERR_EXISTS if taken) */
static enum err_code commit_local(struct registry_draft *d, int want,
                                  int *version, struct err *e)
{
  struct err local;
  if (!e)
    e = &local; /* the code of a failed helper is read back below */
  *version = 0;
  if (!d)
    return err_set(e, ERR_INVAL, "registry: no draft");
  if (d->r->obj)
    return commit_obj(d, want, version, e);
  char vdir[REGISTRY_PATH_MAX], tdir[REGISTRY_PATH_MAX],
      dst[REGISTRY_PATH_MAX];
  enum err_code rc = sync_draft(d->dir, e);
  if (!rc)
    rc = model_path(d->r, d->name, "versions", vdir, sizeof(vdir), e);
  if (!rc)
    rc = model_path(d->r, d->name, "tmp", tdir, sizeof(tdir), e);
  if (rc) {
    registry_version_abort(d);
    return rc;
  }
  int lk = lock_model(d->r, d->name, e);
  if (lk < 0) {
    registry_version_abort(d);
    return e->code;
  }
  int n = 0;
  rc = max_version(vdir, &n, e);
  if (!rc && want > 0)
    n = want - 1; /* import: the number is given */
  if (!rc && n == INT_MAX)
    rc = err_set(e, ERR_FULL, "registry: %s: version numbers exhausted",
                 vdir);
  if (!rc)
    rc = fmt_path(dst, sizeof(dst), e, "%s/%d", vdir, n + 1);
  struct stat exists;
  if (!rc && want > 0 && lstat(dst, &exists) == 0)
    rc = err_set(e, ERR_EXISTS, "registry: %s exists already", dst);
  if (!rc && rename(d->dir, dst) < 0)
    rc = err_set(e, ERR_IO, "registry: rename %s -> %s: %s", d->dir, dst,
                 strerror(errno));
  if (!rc) {
    (void)fsx_fsync_dir(vdir);
    (void)fsx_fsync_dir(tdir);
    *version = n + 1;
    /* the draft dir is gone; drop its lock file while still numbering so
     * a cleaner never races with us */
    draft_free(d);
    unlock_model(lk);
    return ERR_OK;
  }
  unlock_model(lk);
  registry_version_abort(d);
  return rc;
}

/* ---- listing ---------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_int(const void *a, const void *b)
{
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

void registry_strv_free(char **v)
{
  if (!v)
    return;
  for (char **p = v; *p; p++)
    free(*p);
  free(v);
}

/* Valid-named subdirectories of dir, sorted, NULL-terminated. */
static enum err_code list_dirs(const char *dir, char ***out, size_t *n,
                               struct err *e)
{
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "registry: %s: %s", dir, strerror(errno));
  size_t cnt = 0, cap = 0;
  char **v = NULL;
  enum err_code rc = VEC_RESERVE(v, cap, 1) ? ERR_NOMEM : ERR_OK;
  if (!rc)
    v[0] = NULL;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (!fsx_name_valid(de->d_name))
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISDIR(st.st_mode))
      continue;
    if (VEC_RESERVE(v, cap, cnt + 2)) {
      rc = ERR_NOMEM;
      break;
    }
    if (!(v[cnt] = strdup(de->d_name))) {
      rc = ERR_NOMEM;
      break;
    }
    v[++cnt] = NULL;
  }
  closedir(d);
  if (rc) {
    registry_strv_free(v);
    return err_set(e, rc, "registry: %s: out of memory", dir);
  }
  qsort(v, cnt, sizeof(*v), cmp_str);
  *out = v;
  *n = cnt;
  return ERR_OK;
}

enum err_code registry_list_models(struct registry *r, char ***names,
                                   size_t *n, struct err *e)
{
  if (r->obj)
    return robj_list_models(r->obj, names, n, e);
  return list_dirs(r->root, names, n, e);
}

enum err_code registry_list_versions(struct registry *r, const char *name,
                                     int **versions, size_t *n,
                                     struct err *e)
{
  *versions = NULL;
  *n = 0;
  char mdir[REGISTRY_PATH_MAX], vdir[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = model_path(r, name, NULL, mdir, sizeof(mdir), e)) ||
      (rc = model_path(r, name, "versions", vdir, sizeof(vdir), e)))
    return rc;
  if (r->obj)
    return robj_list_versions(r->obj, name, versions, n, e);
  struct stat st;
  if (stat(mdir, &st) < 0 || !S_ISDIR(st.st_mode))
    return err_set(e, ERR_NOTFOUND, "registry: no model '%s' in %s", name,
                   r->root);
  DIR *d = opendir(vdir);
  if (!d) {
    if (errno == ENOENT)
      return ERR_OK; /* a model dir with runs only */
    return err_set(e, ERR_IO, "registry: %s: %s", vdir, strerror(errno));
  }
  size_t cnt = 0, cap = 0;
  int *v = NULL;
  struct dirent *de;
  while ((de = readdir(d))) {
    int x = parse_version(de->d_name);
    if (!x)
      continue;
    if (VEC_PUSH(v, cnt, cap, x)) {
      free(v);
      closedir(d);
      return err_set(e, ERR_NOMEM, "registry: out of memory");
    }
  }
  closedir(d);
  if (cnt)
    qsort(v, cnt, sizeof(*v), cmp_int);
  *versions = v;
  *n = cnt;
  return ERR_OK;
}

enum err_code registry_latest(struct registry *r, const char *name,
                              int *version, struct err *e)
{
  *version = 0;
  int *v;
  size_t n;
  enum err_code rc = registry_list_versions(r, name, &v, &n, e);
  if (rc)
    return rc;
  if (!n)
    return err_set(e, ERR_NOTFOUND, "registry: model '%s' has no version",
                   name);
  *version = v[n - 1];
  free(v);
  return ERR_OK;
}

int registry_version_exists(struct registry *r, const char *name, int version)
{
  char p[REGISTRY_PATH_MAX];
  struct stat st;
  if (r->obj)
    return fsx_name_valid(name) && version > 0 &&
           robj_version_exists(r->obj, name, version);
  if (registry_path(r, name, version, NULL, p, sizeof(p), NULL))
    return 0;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

enum err_code registry_list_runs(struct registry *r, const char *name,
                                 char ***ids, size_t *n, struct err *e)
{
  *ids = NULL;
  *n = 0;
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = model_path(r, name, "runs", p, sizeof(p), e);
  if (rc)
    return rc;
  if (r->obj)
    return robj_list_runs(r->obj, name, ids, n, e);
  rc = list_dirs(p, ids, n, e);
  if (rc == ERR_NOTFOUND) {
    /* no runs yet is an empty list, not an error */
    char **v = calloc(1, sizeof(*v));
    if (!v)
      return err_set(e, ERR_NOMEM, "registry: out of memory");
    *ids = v;
    if (e)
      err_clear(e);
    return ERR_OK;
  }
  return rc;
}

/* ---- aliases ---------------------------------------------------------- */

static enum err_code alias_path(struct registry *r, const char *name,
                                const char *alias, char *buf, size_t cap,
                                struct err *e)
{
  enum err_code rc = check_name("model name", name, e);
  if (!rc)
    rc = check_name("alias", alias, e);
  if (!rc)
    rc = fmt_path(buf, cap, e, "%s/%s/aliases/%s", r->root, name, alias);
  return rc;
}

enum err_code registry_list_aliases(struct registry *r, const char *name,
                                   char ***aliases, size_t *n, struct err *e)
{
  *aliases = NULL;
  *n = 0;
  char adir[REGISTRY_PATH_MAX];
  enum err_code rc = model_path(r, name, "aliases", adir, sizeof(adir), e);
  if (rc)
    return rc;
  if (r->obj)
    return robj_list_aliases(r->obj, name, aliases, n, e);
  DIR *d = opendir(adir);
  char **v = calloc(1, sizeof(*v));
  size_t cnt = 0, cap = 1;
  if (!v) {
    if (d)
      closedir(d);
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  }
  struct dirent *de;
  while (d && (de = readdir(d))) {
    struct stat st;
    /* alias files only: temp files of a writer start with '.' */
    if (!fsx_name_valid(de->d_name) ||
        fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode))
      continue;
    if (VEC_RESERVE(v, cap, cnt + 2) || !(v[cnt] = strdup(de->d_name))) {
      closedir(d);
      registry_strv_free(v);
      return err_set(e, ERR_NOMEM, "registry: out of memory");
    }
    v[++cnt] = NULL;
  }
  if (d)
    closedir(d);
  qsort(v, cnt, sizeof(*v), cmp_str);
  *aliases = v;
  *n = cnt;
  return ERR_OK;
}

/* The alias file and its directory (REGISTRY_PATH_MAX bytes each), for
 * the writers that fsync the directory. */
static enum err_code alias_paths(struct registry *r, const char *name,
                                 const char *alias, char *file, char *dir,
                                 struct err *e)
{
  enum err_code rc = alias_path(r, name, alias, file, REGISTRY_PATH_MAX, e);
  if (!rc)
    rc = model_path(r, name, "aliases", dir, REGISTRY_PATH_MAX, e);
  return rc;
}

static enum err_code alias_read(const char *path, int *version,
                                struct err *e)
{
  *version = 0;
  char *b;
  size_t len;
  enum err_code rc = read_small(path, ALIAS_FILE_MAX, &b, &len, e);
  if (rc)
    return rc;
  /* one version number, optional surrounding whitespace */
  char *s = b, *t = b + len;
  while (s < t && isspace((unsigned char)*s))
    s++;
  while (t > s && isspace((unsigned char)t[-1]))
    *--t = '\0';
  int v = parse_version(s);
  free(b);
  if (!v)
    return err_set(e, ERR_PARSE, "registry: %s: does not hold a version "
                   "number", path);
  *version = v;
  return ERR_OK;
}

enum err_code registry_alias_get(struct registry *r, const char *name,
                                 const char *alias, int *version,
                                 struct err *e)
{
  *version = 0;
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = alias_path(r, name, alias, p, sizeof(p), e);
  if (rc)
    return rc;
  if (r->obj)
    return robj_alias_get(r->obj, name, alias, version, NULL, e);
  rc = alias_read(p, version, e);
  if (rc == ERR_NOTFOUND)
    return err_set(e, ERR_NOTFOUND, "registry: alias %s@%s is not set", name,
                   alias);
  return rc;
}

enum err_code registry_alias_set(struct registry *r, const char *name,
                                 const char *alias, int version,
                                 int *previous, struct err *e)
{
  struct err local;
  if (!e)
    e = &local; /* the code of a failed helper is read back below */
  if (previous)
    *previous = 0;
  char p[REGISTRY_PATH_MAX], adir[REGISTRY_PATH_MAX];
  enum err_code rc = alias_paths(r, name, alias, p, adir, e);
  if (rc)
    return rc;
  if (r->obj && version > 0)
    return robj_alias_set(r->obj, name, alias, version, previous, e);
  if (version < 1 || !registry_version_exists(r, name, version))
    return err_set(e, ERR_NOTFOUND, "registry: model '%s' has no version %d",
                   name, version);
  if (!mkdir_ok(adir))
    return err_set(e, ERR_IO, "registry: mkdir %s: %s", adir,
                   strerror(errno));
  /* under the model lock so (previous, new) pairs are exact */
  int lk = lock_model(r, name, e);
  if (lk < 0)
    return e->code;
  int prev = 0;
  if (alias_read(p, &prev, NULL))
    prev = 0;
  char text[32];
  int w = snprintf(text, sizeof(text), "%d\n", version);
  rc = fsx_write_atomic(p, text, (size_t)w, e);
  unlock_model(lk);
  if (!rc && previous)
    *previous = prev;
  return rc;
}

enum err_code registry_alias_delete(struct registry *r, const char *name,
                                    const char *alias, struct err *e)
{
  char p[REGISTRY_PATH_MAX], adir[REGISTRY_PATH_MAX];
  enum err_code rc = alias_paths(r, name, alias, p, adir, e);
  if (rc)
    return rc;
  if (r->obj)
    return robj_alias_delete(r->obj, name, alias, e);
  if (unlink(p) < 0) {
    if (errno == ENOENT)
      return err_set(e, ERR_NOTFOUND, "registry: alias %s@%s is not set",
                     name, alias);
    return err_set(e, ERR_IO, "registry: unlink %s: %s", p, strerror(errno));
  }
  (void)fsx_fsync_dir(adir);
  return ERR_OK;
}

enum err_code registry_alias_stamp(struct registry *r, const char *name,
                                   const char *alias,
                                   struct registry_stamp *st, struct err *e)
{
  memset(st, 0, sizeof(*st));
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = alias_path(r, name, alias, p, sizeof(p), e);
  if (rc)
    return rc;
  if (r->obj) {
    /* the row: (version, serial); serial grows with every change, so two
     * stamps differ whenever the alias moved, also back and forth */
    int v = 0;
    int64_t serial = 0;
    struct err le;
    rc = robj_alias_get(r->obj, name, alias, &v, &serial, &le);
    if (rc == ERR_NOTFOUND)
      return ERR_OK;
    if (rc) {
      if (e)
        *e = le;
      return rc;
    }
    st->exists = 1;
    st->ino = (uint64_t)v;
    st->mtime_ns = serial;
    return ERR_OK;
  }
  struct stat sb;
  if (stat(p, &sb) < 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return ERR_OK;
    return err_set(e, ERR_IO, "registry: stat %s: %s", p, strerror(errno));
  }
  st->exists = 1;
  st->dev = (uint64_t)sb.st_dev;
  st->ino = (uint64_t)sb.st_ino;
  st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 +
                 sb.st_mtim.tv_nsec;
  st->size = (int64_t)sb.st_size;
  return ERR_OK;
}

int registry_stamp_equal(const struct registry_stamp *a,
                         const struct registry_stamp *b)
{
  return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
         a->mtime_ns == b->mtime_ns && a->size == b->size;
}

/* ---- JSON files ------------------------------------------------------- */

enum err_code registry_read_json(struct registry *r, const char *name,
                                 int version, const char *file, cJSON **out,
                                 struct err *e)
{
  *out = NULL;
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = registry_path(r, name, version, file, p, sizeof(p), e);
  if (rc)
    return rc;
  char *b;
  size_t len;
  if ((rc = read_small(p, REGISTRY_JSON_MAX, &b, &len, e)))
    return rc;
  const char *end = NULL;
  cJSON *j = cJSON_ParseWithLengthOpts(b, len, &end, 0);
  if (!j) {
    size_t off = end && end >= b ? (size_t)(end - b) : 0;
    free(b);
    return err_set(e, ERR_PARSE, "registry: %s: invalid JSON at byte %zu of "
                   "%zu (corrupt or truncated)", p, off, len);
  }
  free(b);
  *out = j;
  return ERR_OK;
}

enum err_code registry_read_meta(struct registry *r, const char *name,
                                 int version, cJSON **out, struct err *e)
{
  return registry_read_json(r, name, version, "meta.json", out, e);
}

static enum err_code write_json(const char *dir, const char *file,
                                const cJSON *j, struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = fmt_path(p, sizeof(p), e, "%s/%s", dir, file);
  if (rc)
    return rc;
  char *text = cJSON_Print(j);
  if (!text)
    return err_set(e, ERR_NOMEM, "registry: %s: out of memory", p);
  size_t n = strlen(text);
  char *t2 = realloc(text, n + 2);
  if (!t2) {
    free(text);
    return err_set(e, ERR_NOMEM, "registry: %s: out of memory", p);
  }
  t2[n] = '\n';
  t2[n + 1] = '\0';
  rc = fsx_write_atomic(p, t2, n + 1, e);
  free(t2);
  return rc;
}

enum err_code registry_run_write(struct registry *r, const char *name,
                                 const char *run_id, const cJSON *params,
                                 const cJSON *metrics, struct err *e)
{
  char mdir[REGISTRY_PATH_MAX], rdir[REGISTRY_PATH_MAX],
      dir[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = model_path(r, name, NULL, mdir, sizeof(mdir), e)) ||
      (rc = model_path(r, name, "runs", rdir, sizeof(rdir), e)) ||
      (rc = check_name("run id", run_id, e)) ||
      (rc = fmt_path(dir, sizeof(dir), e, "%s/%s", rdir, run_id)))
    return rc;
  if (r->obj) {
    const cJSON *js[2] = {params, metrics};
    static const char *const files[2] = {"params.json", "metrics.json"};
    for (int i = 0; i < 2 && !rc; i++) {
      if (!js[i])
        continue;
      char *text = cJSON_Print(js[i]);
      if (!text)
        return err_set(e, ERR_NOMEM, "registry: out of memory");
      rc = robj_run_put(r->obj, name, run_id, files[i], text, e);
      free(text);
    }
    return rc;
  }
  if (!mkdir_ok(mdir) || !mkdir_ok(rdir) || !mkdir_ok(dir))
    return err_set(e, ERR_IO, "registry: mkdir %s: %s", dir, strerror(errno));
  if (params && (rc = write_json(dir, "params.json", params, e)))
    return rc;
  if (metrics && (rc = write_json(dir, "metrics.json", metrics, e)))
    return rc;
  return ERR_OK;
}

enum err_code registry_run_read(struct registry *r, const char *name,
                                const char *run_id, const char *file,
                                cJSON **out, struct err *e)
{
  *out = NULL;
  char rdir[REGISTRY_PATH_MAX], p[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = model_path(r, name, "runs", rdir, sizeof(rdir), e)) ||
      (rc = check_name("run id", run_id, e)) ||
      (rc = check_name("file name", file, e)) ||
      (rc = fmt_path(p, sizeof(p), e, "%s/%s/%s", rdir, run_id, file)))
    return rc;
  char *b = NULL;
  size_t len = 0;
  if (r->obj)
    rc = robj_run_get(r->obj, name, run_id, file, &b, &len, e);
  else
    rc = read_small(p, REGISTRY_JSON_MAX, &b, &len, e);
  if (rc)
    return rc;
  cJSON *j = cJSON_ParseWithLength(b, len);
  free(b);
  if (!j)
    return err_set(e, ERR_PARSE, "registry: run %s/%s/%s: invalid JSON",
                   name, run_id, file);
  *out = j;
  return ERR_OK;
}
