/* registry.c - the model registry's entry points (registry.h) over a
 * backend table (registry_int.h), and the directory backend
 * (regbe_dir_ops; docs/registry.md for the layout).
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
  char *root; /* the directory, or object storage's local cache */
  const struct regbe_ops *ops;
  void *be; /* the backend's state: this struct for the directory */
};

static const struct regbe_ops regbe_dir_ops;

struct registry_draft {
  struct registry *r;
  char name[REGISTRY_NAME_MAX + 1];
  char dir[REGISTRY_PATH_MAX];
  char lock[REGISTRY_PATH_MAX];
  int lockfd;
};

/* ---- names and paths -------------------------------------------------- */

enum err_code registry_fmt(char *buf, size_t cap, struct err *e,
                           const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int w = vsnprintf(buf, cap, fmt, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= cap)
    return err_set(e, ERR_INVAL, "registry: path or key too long: %.80s...",
                   buf);
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
    return registry_fmt(buf, cap, e, "%s/%s/%s", r->root, name, sub);
  return registry_fmt(buf, cap, e, "%s/%s", r->root, name);
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
    rc = registry_fmt(buf, cap, e, "%s/%s/versions/%d", r->root, name, version);
  else if (!(rc = check_name("file name", file, e)))
    rc = registry_fmt(buf, cap, e, "%s/%s/versions/%d/%s", r->root, name,
                  version, file);
  /* object storage: the path must hold the version's files */
  if (!rc)
    rc = r->ops->fetch(r->be, name, version, e);
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

enum err_code registry_mkdir_p(const char *path, struct err *e)
{
  char b[REGISTRY_PATH_MAX];
  if (registry_fmt(b, sizeof(b), e, "%s", path))
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

void registry_rm_tree(const char *path)
{
  (void)rm_rf_at(AT_FDCWD, path, 0);
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
  enum err_code rc = registry_mkdir_p(root, e);
  if (rc)
    return rc;
  struct registry *r = calloc(1, sizeof(*r));
  if (!r || !(r->root = strdup(root))) {
    free(r);
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  }
  while (n > 1 && r->root[n - 1] == '/')
    r->root[--n] = '\0';
  r->ops = &regbe_dir_ops;
  r->be = r;
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
  void *be = NULL;
  if ((rc = robj_open(o, r->root, &be, e))) {
    registry_close(r);
    return rc;
  }
  r->ops = &regbe_s3_ops;
  r->be = be;
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
  return r->ops->kind;
}

const char *registry_where(const struct registry *r)
{
  return r->ops->where(r->be);
}

void registry_close(struct registry *r)
{
  if (!r)
    return;
  r->ops->close(r->be);
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
  if ((rc = r->ops->model_touch(r->be, name, e)))
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
    if (registry_fmt(d->dir, sizeof(d->dir), e, "%s/draft-XXXXXX", tdir) ||
        registry_fmt(d->lock, sizeof(d->lock), e, "%s.lock", d->dir)) {
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
  return registry_fmt(buf, cap, e, "%s/%s", d->dir, file);
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
  registry_rm_tree(d->dir);
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

static enum err_code commit_draft(struct registry_draft *d, int want,
                                  int *version, struct err *e)
{
  *version = 0;
  if (!d)
    return err_set(e, ERR_INVAL, "registry: no draft");
  enum err_code rc = sync_draft(d->dir, e);
  if (rc) {
    registry_version_abort(d);
    return rc;
  }
  struct registry *r = d->r;
  return r->ops->commit(r->be, d, want, version, e);
}

enum err_code registry_version_commit(struct registry_draft *d, int *version,
                                      struct err *e)
{
  return commit_draft(d, 0, version, e);
}

enum err_code registry_version_import(struct registry_draft *d, int version,
                                      struct err *e)
{
  int got = 0;
  if (d && version < 1) {
    registry_version_abort(d);
    return err_set(e, ERR_INVAL, "registry: invalid version %d", version);
  }
  return commit_draft(d, version, &got, e);
}

const char *registry_draft_name(const struct registry_draft *d)
{
  return d->name;
}

/* The directory backend's commit (the draft is fsync'd): want 0: the next
 * number; else exactly want (ERR_EXISTS if taken) */
static enum err_code dir_commit(void *be, struct registry_draft *d, int want,
                                int *version, struct err *e)
{
  (void)be;
  struct err local;
  if (!e)
    e = &local; /* the code of a failed helper is read back below */
  char vdir[REGISTRY_PATH_MAX], tdir[REGISTRY_PATH_MAX],
      dst[REGISTRY_PATH_MAX];
  enum err_code rc =
      model_path(d->r, d->name, "versions", vdir, sizeof(vdir), e);
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
    rc = registry_fmt(dst, sizeof(dst), e, "%s/%d", vdir, n + 1);
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

int registry_cmp_str(const void *a, const void *b)
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
  qsort(v, cnt, sizeof(*v), registry_cmp_str);
  *out = v;
  *n = cnt;
  return ERR_OK;
}

/* ---- the directory backend ------------------------------------------- */

static enum err_code dir_key_path(const struct registry *r, const char *key,
                                  char *buf, struct err *e)
{
  return registry_fmt(buf, REGISTRY_PATH_MAX, e, "%s/%s", r->root, key);
}

static enum err_code dir_put(void *be, const char *key, const void *data,
                             size_t n, struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = dir_key_path(be, key, p, e);
  if (rc)
    return rc;
  char *slash = strrchr(p, '/');
  *slash = '\0';
  rc = registry_mkdir_p(p, e);
  *slash = '/';
  return rc ? rc : fsx_write_atomic(p, data, n, e);
}

static enum err_code dir_get(void *be, const char *key, size_t max,
                             char **out, size_t *n, struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = dir_key_path(be, key, p, e);
  return rc ? rc : read_small(p, max, out, n, e);
}

static enum err_code dir_head(void *be, const char *key, int64_t *size,
                              struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = dir_key_path(be, key, p, e);
  if (rc)
    return rc;
  struct stat st;
  if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
    return err_set(e, ERR_NOTFOUND, "registry: %s: no such file", p);
  if (size)
    *size = (int64_t)st.st_size;
  return ERR_OK;
}

static enum err_code dir_del(void *be, const char *key, struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = dir_key_path(be, key, p, e);
  if (rc)
    return rc;
  if (unlink(p) < 0 && errno != ENOENT)
    return err_set(e, ERR_IO, "registry: unlink %s: %s", p, strerror(errno));
  return ERR_OK;
}

struct dir_walk {
  char **keys;
  int64_t *sizes;
  size_t n, cap;
  int oom;
};

/* the regular files below dir (key prefix rel), valid names only */
static void dir_walk(struct dir_walk *w, const char *dir, const char *rel,
                     int depth)
{
  DIR *d = opendir(dir);
  if (!d || depth > RM_DEPTH_MAX) {
    if (d)
      closedir(d);
    return;
  }
  struct dirent *de;
  while (!w->oom && (de = readdir(d))) {
    struct stat st;
    char p[REGISTRY_PATH_MAX], k[REGISTRY_PATH_MAX];
    if (!fsx_name_valid(de->d_name) ||
        fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        registry_fmt(p, sizeof(p), NULL, "%s/%s", dir, de->d_name) ||
        registry_fmt(k, sizeof(k), NULL, "%s%s", rel, de->d_name))
      continue;
    if (S_ISDIR(st.st_mode)) {
      size_t l = strlen(k);
      if (l + 1 < sizeof(k)) {
        k[l] = '/';
        k[l + 1] = '\0';
        dir_walk(w, p, k, depth + 1);
      }
    } else if (S_ISREG(st.st_mode)) {
      int64_t *sz = NULL;
      if (VEC_RESERVE(w->keys, w->cap, w->n + 1) ||
          !(sz = realloc(w->sizes, w->cap * sizeof(*sz)))) {
        w->oom = 1;
        break;
      }
      w->sizes = sz;
      if (!(w->keys[w->n] = strdup(k))) {
        w->oom = 1;
        break;
      }
      w->sizes[w->n++] = (int64_t)st.st_size;
    }
  }
  closedir(d);
}

/* Keys under prefix ("NAME/runs/"): the files below the directory of
 * its part up to the last '/', in key order. */
static enum err_code dir_list(void *be, const char *prefix, regbe_list_fn fn,
                              void *ud, struct err *e)
{
  struct registry *r = be;
  char rel[REGISTRY_PATH_MAX], dir[REGISTRY_PATH_MAX];
  enum err_code rc = registry_fmt(rel, sizeof(rel), e, "%s", prefix);
  if (rc)
    return rc;
  char *slash = strrchr(rel, '/');
  if (slash)
    slash[1] = '\0';
  else
    rel[0] = '\0';
  if ((rc = registry_fmt(dir, sizeof(dir), e, "%s/%s", r->root, rel)))
    return rc;
  struct dir_walk w = {0};
  dir_walk(&w, dir, rel, 0);
  /* sort keys and sizes together: an index sorted by key */
  size_t *ix = w.oom ? NULL : malloc((w.n + 1) * sizeof(*ix));
  if (!ix)
    rc = err_set(e, ERR_NOMEM, "registry: out of memory listing %s", dir);
  for (size_t i = 0; !rc && i < w.n; i++)
    ix[i] = i;
  for (size_t i = 1; !rc && i < w.n; i++) /* few keys: insertion sort */
    for (size_t j = i; j > 0 && strcmp(w.keys[ix[j - 1]], w.keys[ix[j]]) > 0;
         j--) {
      size_t t = ix[j];
      ix[j] = ix[j - 1];
      ix[j - 1] = t;
    }
  size_t pl = strlen(prefix);
  for (size_t i = 0; !rc && i < w.n; i++)
    if (!strncmp(w.keys[ix[i]], prefix, pl) &&
        fn(w.keys[ix[i]], w.sizes[ix[i]], ud))
      rc = ERR_CANCELED;
  for (size_t i = 0; i < w.n; i++)
    free(w.keys[i]);
  free(w.keys);
  free(w.sizes);
  free(ix);
  return rc;
}

static enum err_code dir_model_touch(void *be, const char *name,
                                     struct err *e)
{
  char mdir[REGISTRY_PATH_MAX];
  enum err_code rc = model_path(be, name, NULL, mdir, sizeof(mdir), e);
  if (!rc && !mkdir_ok(mdir))
    rc = err_set(e, ERR_IO, "registry: mkdir %s: %s", mdir, strerror(errno));
  return rc;
}

static enum err_code dir_fetch(void *be, const char *name, int version,
                               struct err *e)
{
  (void)be, (void)name, (void)version, (void)e;
  return ERR_OK; /* the files are where registry_path points */
}

static enum err_code dir_list_models(void *be, char ***names, size_t *n,
                                     struct err *e)
{
  return list_dirs(((struct registry *)be)->root, names, n, e);
}

static enum err_code dir_list_versions(void *be, const char *name,
                                       int **versions, size_t *n,
                                       struct err *e)
{
  struct registry *r = be;
  char mdir[REGISTRY_PATH_MAX], vdir[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = model_path(r, name, NULL, mdir, sizeof(mdir), e)) ||
      (rc = model_path(r, name, "versions", vdir, sizeof(vdir), e)))
    return rc;
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

static int dir_version_exists(void *be, const char *name, int version)
{
  char p[REGISTRY_PATH_MAX];
  struct stat st;
  if (registry_path(be, name, version, NULL, p, sizeof(p), NULL))
    return 0;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- the entry points ------------------------------------------------- */

enum err_code registry_list_models(struct registry *r, char ***names,
                                   size_t *n, struct err *e)
{
  *names = NULL;
  *n = 0;
  return r->ops->list_models(r->be, names, n, e);
}

enum err_code registry_list_versions(struct registry *r, const char *name,
                                     int **versions, size_t *n,
                                     struct err *e)
{
  *versions = NULL;
  *n = 0;
  enum err_code rc = check_name("model name", name, e);
  return rc ? rc : r->ops->list_versions(r->be, name, versions, n, e);
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
  return fsx_name_valid(name) && version > 0 &&
         r->ops->version_exists(r->be, name, version);
}

enum err_code registry_strv_add_uniq(char ***v, size_t *n, size_t *cap,
                                     const char *x)
{
  if (*n && !strcmp((*v)[*n - 1], x))
    return ERR_OK;
  if (VEC_RESERVE(*v, *cap, *n + 2) || !((*v)[*n] = strdup(x)))
    return ERR_NOMEM;
  (*v)[++*n] = NULL;
  return ERR_OK;
}

struct run_ids {
  size_t skip; /* strlen("NAME/runs/") */
  char **v;
  size_t n, cap;
};

/* NAME/runs/ID/FILE -> ID (keys arrive sorted: repeats are adjacent) */
static int on_run_key(const char *key, int64_t size, void *ud)
{
  (void)size;
  struct run_ids *l = ud;
  const char *id = key + l->skip, *slash = strchr(id, '/');
  if (!slash || (size_t)(slash - id) > REGISTRY_NAME_MAX)
    return 0;
  char buf[REGISTRY_NAME_MAX + 1];
  memcpy(buf, id, (size_t)(slash - id));
  buf[slash - id] = 0;
  if (!fsx_name_valid(buf))
    return 0;
  return registry_strv_add_uniq(&l->v, &l->n, &l->cap, buf) != ERR_OK;
}

enum err_code registry_list_runs(struct registry *r, const char *name,
                                 char ***ids, size_t *n, struct err *e)
{
  *ids = NULL;
  *n = 0;
  char pfx[REGISTRY_PATH_MAX];
  enum err_code rc = check_name("model name", name, e);
  if (rc ||
      (rc = registry_fmt(pfx, sizeof(pfx), e, "%s/runs/", name)))
    return rc;
  struct run_ids l = {.skip = strlen(pfx)};
  rc = r->ops->list(r->be, pfx, on_run_key, &l, e);
  if (!rc && !l.v && !(l.v = calloc(1, sizeof(*l.v))))
    rc = ERR_CANCELED;
  if (rc == ERR_CANCELED)
    rc = err_set(e, ERR_NOMEM, "registry: out of memory");
  if (rc) {
    registry_strv_free(l.v);
    return rc;
  }
  *ids = l.v;
  *n = l.n;
  return ERR_OK;
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
    rc = registry_fmt(buf, cap, e, "%s/%s/aliases/%s", r->root, name, alias);
  return rc;
}

/* The alias file (p) and the aliases directory (adir) of name@alias,
 * both REGISTRY_PATH_MAX bytes: a writer of the file fsyncs the
 * directory.  ERR_INVAL for a bad name or alias or a path too long. */
static enum err_code alias_paths(struct registry *r, const char *name,
                                 const char *alias,
                                 char p[REGISTRY_PATH_MAX],
                                 char adir[REGISTRY_PATH_MAX], struct err *e)
{
  enum err_code rc = alias_path(r, name, alias, p, REGISTRY_PATH_MAX, e);
  if (!rc)
    rc = model_path(r, name, "aliases", adir, REGISTRY_PATH_MAX, e);
  return rc;
}

static enum err_code dir_list_aliases(void *be, const char *name,
                                      char ***aliases, size_t *n,
                                      struct err *e)
{
  char adir[REGISTRY_PATH_MAX];
  enum err_code rc = model_path(be, name, "aliases", adir, sizeof(adir), e);
  if (rc)
    return rc;
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
  qsort(v, cnt, sizeof(*v), registry_cmp_str);
  *aliases = v;
  *n = cnt;
  return ERR_OK;
}

enum err_code registry_list_aliases(struct registry *r, const char *name,
                                   char ***aliases, size_t *n, struct err *e)
{
  *aliases = NULL;
  *n = 0;
  enum err_code rc = check_name("model name", name, e);
  return rc ? rc : r->ops->list_aliases(r->be, name, aliases, n, e);
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

static enum err_code dir_alias_get(void *be, const char *name,
                                   const char *alias, int *version,
                                   struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = alias_path(be, name, alias, p, sizeof(p), e);
  if (!rc)
    rc = alias_read(p, version, e);
  if (rc == ERR_NOTFOUND)
    return err_set(e, ERR_NOTFOUND, "registry: alias %s@%s is not set", name,
                   alias);
  return rc;
}

enum err_code registry_alias_get(struct registry *r, const char *name,
                                 const char *alias, int *version,
                                 struct err *e)
{
  *version = 0;
  enum err_code rc = check_name("model name", name, e);
  if (!rc)
    rc = check_name("alias", alias, e);
  return rc ? rc : r->ops->alias_get(r->be, name, alias, version, e);
}

static enum err_code dir_alias_set(void *be, const char *name,
                                   const char *alias, int version,
                                   int *previous, struct err *e)
{
  struct registry *r = be;
  struct err local;
  if (!e)
    e = &local; /* the code of a failed helper is read back below */
  char p[REGISTRY_PATH_MAX], adir[REGISTRY_PATH_MAX];
  enum err_code rc = alias_paths(r, name, alias, p, adir, e);
  if (rc)
    return rc;
  if (!dir_version_exists(r, name, version))
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

enum err_code registry_alias_set(struct registry *r, const char *name,
                                 const char *alias, int version,
                                 int *previous, struct err *e)
{
  if (previous)
    *previous = 0;
  enum err_code rc = check_name("model name", name, e);
  if (!rc)
    rc = check_name("alias", alias, e);
  if (rc)
    return rc;
  if (version < 1)
    return err_set(e, ERR_NOTFOUND, "registry: model '%s' has no version %d",
                   name, version);
  return r->ops->alias_set(r->be, name, alias, version, previous, e);
}

static enum err_code dir_alias_delete(void *be, const char *name,
                                      const char *alias, struct err *e)
{
  char p[REGISTRY_PATH_MAX], adir[REGISTRY_PATH_MAX];
  enum err_code rc = alias_paths(be, name, alias, p, adir, e);
  if (rc)
    return rc;
  if (unlink(p) < 0) {
    if (errno == ENOENT)
      return err_set(e, ERR_NOTFOUND, "registry: alias %s@%s is not set",
                     name, alias);
    return err_set(e, ERR_IO, "registry: unlink %s: %s", p, strerror(errno));
  }
  (void)fsx_fsync_dir(adir);
  return ERR_OK;
}

enum err_code registry_alias_delete(struct registry *r, const char *name,
                                    const char *alias, struct err *e)
{
  enum err_code rc = check_name("model name", name, e);
  if (!rc)
    rc = check_name("alias", alias, e);
  return rc ? rc : r->ops->alias_delete(r->be, name, alias, e);
}

/* the alias file's identity: any write replaces it (new inode, mtime) */
static enum err_code dir_alias_stamp(void *be, const char *name,
                                     const char *alias,
                                     struct registry_stamp *st,
                                     struct err *e)
{
  char p[REGISTRY_PATH_MAX];
  enum err_code rc = alias_path(be, name, alias, p, sizeof(p), e);
  if (rc)
    return rc;
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

enum err_code registry_alias_stamp(struct registry *r, const char *name,
                                   const char *alias,
                                   struct registry_stamp *st, struct err *e)
{
  memset(st, 0, sizeof(*st));
  enum err_code rc = check_name("model name", name, e);
  if (!rc)
    rc = check_name("alias", alias, e);
  return rc ? rc : r->ops->alias_stamp(r->be, name, alias, st, e);
}

int registry_stamp_equal(const struct registry_stamp *a,
                         const struct registry_stamp *b)
{
  return a->exists == b->exists && a->dev == b->dev && a->ino == b->ino &&
         a->mtime_ns == b->mtime_ns && a->size == b->size;
}

static const char *dir_where(const void *be)
{
  return ((const struct registry *)be)->root;
}

static void dir_close(void *be)
{
  (void)be; /* the root is the registry's own */
}

static const struct regbe_ops regbe_dir_ops = {
    .kind = "directory",
    .put = dir_put,
    .get = dir_get,
    .head = dir_head,
    .list = dir_list,
    .del = dir_del,
    .model_touch = dir_model_touch,
    .commit = dir_commit,
    .fetch = dir_fetch,
    .list_models = dir_list_models,
    .list_versions = dir_list_versions,
    .version_exists = dir_version_exists,
    .alias_get = dir_alias_get,
    .alias_stamp = dir_alias_stamp,
    .alias_set = dir_alias_set,
    .alias_delete = dir_alias_delete,
    .list_aliases = dir_list_aliases,
    .where = dir_where,
    .close = dir_close,
};

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
  if ((rc = fsx_read_json(p, REGISTRY_JSON_MAX, out, e)))
    err_prefix(e, "registry"); /* as read_small's errors */
  return rc;
}

enum err_code registry_read_meta(struct registry *r, const char *name,
                                 int version, cJSON **out, struct err *e)
{
  return registry_read_json(r, name, version, "meta.json", out, e);
}

/* Run records are objects NAME/runs/RUN_ID/{params,metrics}.json on
 * either backend (put/get/list of the table). */
enum err_code registry_run_write(struct registry *r, const char *name,
                                 const char *run_id, const cJSON *params,
                                 const cJSON *metrics, struct err *e)
{
  enum err_code rc;
  if ((rc = check_name("model name", name, e)) ||
      (rc = check_name("run id", run_id, e)) ||
      (rc = r->ops->model_touch(r->be, name, e)))
    return rc;
  const cJSON *js[2] = {params, metrics};
  static const char *const files[2] = {"params.json", "metrics.json"};
  for (int i = 0; i < 2 && !rc; i++) {
    if (!js[i])
      continue;
    char key[REGISTRY_PATH_MAX];
    if ((rc = registry_fmt(key, sizeof(key), e, "%s/runs/%s/%s", name, run_id,
                           files[i])))
      break;
    char *text = cJSON_Print(js[i]);
    size_t n = text ? strlen(text) : 0;
    char *t2 = text ? realloc(text, n + 2) : NULL;
    if (!t2) {
      free(text);
      return err_set(e, ERR_NOMEM, "registry: %s: out of memory", key);
    }
    t2[n] = '\n';
    t2[n + 1] = '\0';
    rc = r->ops->put(r->be, key, t2, n + 1, e);
    free(t2);
  }
  return rc;
}

enum err_code registry_run_read(struct registry *r, const char *name,
                                const char *run_id, const char *file,
                                cJSON **out, struct err *e)
{
  *out = NULL;
  char key[REGISTRY_PATH_MAX];
  enum err_code rc;
  if ((rc = check_name("model name", name, e)) ||
      (rc = check_name("run id", run_id, e)) ||
      (rc = check_name("file name", file, e)) ||
      (rc = registry_fmt(key, sizeof(key), e, "%s/runs/%s/%s", name, run_id,
                         file)))
    return rc;
  char *b = NULL;
  size_t len = 0;
  if ((rc = r->ops->get(r->be, key, REGISTRY_JSON_MAX, &b, &len, e)))
    return rc;
  cJSON *j = cJSON_ParseWithLength(b, len);
  free(b);
  if (!j)
    return err_set(e, ERR_PARSE, "registry: run %s/%s/%s: invalid JSON",
                   name, run_id, file);
  *out = j;
  return ERR_OK;
}
