/* registry_obj.c - the model registry on object storage (registry_int.h,
 * docs/registry.md "On object storage").
 *
 * An object store has no rename and no lock, so the two guarantees of the
 * directory registry are rebuilt from MariaDB rows (sql/migrations/060):
 *
 *   - a version appears whole or not at all: its files are uploaded first,
 *     under PREFIX/NAME/drafts/DRAFT/ (DRAFT is unique per commit), and
 *     the version exists once the row naming that draft and listing every
 *     file's size and sha256 is committed.  A writer killed during the
 *     upload or before COMMIT leaves objects no row points at: invisible.
 *   - numbers without gaps or duplicates across hosts: the commit locks
 *     the model's counter row (SELECT ... FOR UPDATE), takes
 *     last_version + 1 and inserts the version row in one transaction; a
 *     rollback (or a killed client) gives the number back.
 *
 * Readers want local files (XGBoost loads a path), so robj_fetch copies a
 * version into the cache: each object once per sha256 in CACHE/.objects/,
 * checked against the row (a mismatch is an error, never served), then
 * hard-linked into a temp directory renamed to CACHE/NAME/versions/N.
 * The first fetch of a version in a process hashes the cached files again,
 * so a corrupted cache is noticed and downloaded anew.
 */
#include "registry_int.h"

#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/fsx.h"
#include "mlopsd/s3.h"
#include "mlopsd/sha256.h"
#include "mlopsd/vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DB_WAIT_MS 10000
#define MANIFEST_MAX (1u << 20)
#define RUN_FILE_MAX (4u << 20)
#define TXN_TRIES 5
#define PATH_MAX_ REGISTRY_PATH_MAX

struct verified {
  char name[REGISTRY_NAME_MAX + 1];
  int version;
};

struct robj {
  struct s3 *s3;
  struct db_pool *db;
  char *url;
  char *prefix; /* "" or "a/b/" (with the trailing '/') */
  char *cache;
  pthread_mutex_t mu; /* guards ver */
  struct verified *ver;
  size_t nver, capver;
  int stop_at_commit_row; /* the test hook below */
};

/* ---- small helpers ---------------------------------------------------- */

MLOPSD_PRINTF(4, 5)
static enum err_code fmt(char *buf, size_t cap, struct err *e,
                         const char *f, ...)
{
  va_list ap;
  va_start(ap, f);
  int w = vsnprintf(buf, cap, f, ap);
  va_end(ap);
  if (w < 0 || (size_t)w >= cap)
    return err_set(e, ERR_INVAL, "registry: name too long");
  return ERR_OK;
}

static enum err_code conn(struct robj *o, struct db_conn **c, struct err *e)
{
  enum err_code rc = db_acquire(o->db, DB_WAIT_MS, c, e);
  if (rc)
    err_prefix(e, "registry (%s): database", o->url);
  return rc;
}

static enum err_code mkdirs(const char *path, struct err *e)
{
  char p[PATH_MAX_];
  if (fmt(p, sizeof(p), e, "%s", path))
    return ERR_INVAL;
  for (char *s = p + 1; *s; s++) {
    if (*s != '/')
      continue;
    *s = 0;
    if (mkdir(p, 0755) < 0 && errno != EEXIST)
      return err_set(e, ERR_IO, "registry: mkdir %s: %s", p, strerror(errno));
    *s = '/';
  }
  if (mkdir(p, 0755) < 0 && errno != EEXIST)
    return err_set(e, ERR_IO, "registry: mkdir %s: %s", p, strerror(errno));
  return ERR_OK;
}

static void rm_tree(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d) {
    unlink(dir);
    return;
  }
  struct dirent *de;
  char p[PATH_MAX_];
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
    unlink(p); /* versions hold regular files only */
  }
  closedir(d);
  rmdir(dir);
}

/* ---- open / close ----------------------------------------------------- */

enum err_code robj_open(const struct registry_obj_opts *oo,
                        const char *cache_root, struct robj **out,
                        struct err *e)
{
  *out = NULL;
  char bucket[256], prefix[512];
  enum err_code rc = s3_url_parse(oo->url, bucket, sizeof(bucket), prefix,
                                  sizeof(prefix), e);
  if (rc)
    return rc;
  /* the prefix is part of every key: the same name rules as models, so
   * keys need no escaping and cannot climb out of it */
  char tmp[512];
  snprintf(tmp, sizeof(tmp), "%s", prefix);
  char *save = NULL;
  for (char *seg = strtok_r(tmp, "/", &save); seg;
       seg = strtok_r(NULL, "/", &save))
    if (!fsx_name_valid(seg))
      return err_set(e, ERR_CONFIG,
                     "registry url '%s': prefix part '%s' is not a valid "
                     "name ([A-Za-z0-9_][A-Za-z0-9_.-]*)",
                     oo->url, seg);
  char endpoint[600];
  const char *region = oo->region && *oo->region ? oo->region : "us-east-1";
  if (oo->endpoint && *oo->endpoint)
    snprintf(endpoint, sizeof(endpoint), "%s", oo->endpoint);
  else
    snprintf(endpoint, sizeof(endpoint), "https://s3.%s.amazonaws.com",
             region);
  struct robj *o = calloc(1, sizeof(*o));
  if (!o)
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  pthread_mutex_init(&o->mu, NULL);
  struct s3_opts so = {.endpoint = endpoint,
                       .region = region,
                       .bucket = bucket,
                       .credentials_file = oo->credentials_file};
  size_t pl = strlen(prefix);
  if (!(o->url = strdup(oo->url)) || !(o->cache = strdup(cache_root)) ||
      !(o->prefix = malloc(pl + 2))) {
    robj_close(o);
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  }
  snprintf(o->prefix, pl + 2, "%s%s", prefix, pl ? "/" : "");
  /* test hook (tests/integration/test_registry_s3.c): a writer that stops
   * itself with the version row inserted but not committed, so the test
   * kills it exactly there; read once here, never on a request path */
  const char *stop = getenv(REGISTRY_TEST_STOP_ENV);
  o->stop_at_commit_row = stop && !strcmp(stop, "1");
  if ((rc = s3_create(&so, &o->s3, e)) ||
      (rc = db_pool_create(&o->db, oo->db, e))) {
    err_prefix(e, "registry (%s)", oo->url);
    robj_close(o);
    return rc;
  }
  *out = o;
  return ERR_OK;
}

void robj_close(struct robj *o)
{
  if (!o)
    return;
  s3_destroy(o->s3);
  db_pool_destroy(o->db);
  free(o->url);
  free(o->prefix);
  free(o->cache);
  free(o->ver);
  pthread_mutex_destroy(&o->mu);
  free(o);
}

const char *robj_kind(const struct robj *o)
{
  (void)o;
  return "s3";
}

const char *robj_url(const struct robj *o) { return o->url; }

/* ---- rows ------------------------------------------------------------- */

enum err_code robj_model_touch(struct robj *o, const char *name,
                               struct err *e)
{
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  /* a plain (non-locking) read first: the row usually exists, and an
   * INSERT IGNORE on it would wait for a committer holding its lock */
  struct db_val p[] = {DB_V_STR(name)};
  int64_t known = 0;
  rc = db_query(c, "SELECT 1 FROM registry_model WHERE model = ?", p, 1,
                NULL, NULL, &known, e);
  if (!rc && !known)
    rc = db_exec_params_retry(c,
                              "INSERT IGNORE INTO registry_model (model) "
                              "VALUES (?)",
                              p, 1, TXN_TRIES, NULL, e);
  db_release(o->db, c);
  return rc;
}

struct commit_txn {
  const char *name;
  const char *draft;
  const char *manifest;
  int want;
  int version;
  int stop; /* raise SIGSTOP before the COMMIT (the test hook) */
};

static int row_i64(void *ud, const struct db_row *row)
{
  *(int64_t *)ud = db_row_i64(row, 0);
  return 1;
}

/* One try of the numbering transaction (db_txn_retry runs it again after
 * a deadlock).  The counter row is locked first, so two committers of one
 * model queue here and never both read the same last_version. */
static enum err_code commit_body(struct db_conn *c, void *ud, struct err *e)
{
  struct commit_txn *t = ud;
  struct db_val pm[] = {DB_V_STR(t->name)};
  static const char lock_sql[] =
      "SELECT last_version FROM registry_model WHERE model = ? FOR UPDATE";
  int64_t last = -1, nrows = 0;
  enum err_code rc =
      db_query(c, lock_sql, pm, 1, row_i64, &last, &nrows, e);
  if (!rc && nrows == 0) { /* a model's first version (or an import) */
    rc = db_exec_params(
        c, "INSERT IGNORE INTO registry_model (model) VALUES (?)", pm, 1,
        NULL, e);
    if (!rc)
      rc = db_query(c, lock_sql, pm, 1, row_i64, &last, &nrows, e);
  }
  if (rc)
    return rc;
  if (nrows != 1 || last < 0)
    return err_set(e, ERR_INTERNAL, "registry: no counter row for %s",
                   t->name);
  int v;
  if (t->want > 0) {
    v = t->want;
  } else {
    if (last >= INT_MAX)
      return err_set(e, ERR_FULL, "registry: %s: version numbers exhausted",
                     t->name);
    v = (int)last + 1;
  }
  struct db_val pv[] = {DB_V_STR(t->name), DB_V_INT(v), DB_V_STR(t->draft),
                        DB_V_STR(t->manifest)};
  int64_t aff = 0;
  rc = db_exec_params(c,
                      "INSERT IGNORE INTO registry_version "
                      "(model, version, draft, manifest) VALUES (?, ?, ?, ?)",
                      pv, 4, &aff, e);
  if (!rc && aff != 1)
    return err_set(e, ERR_EXISTS, "registry: %s version %d exists already",
                   t->name, v);
  if (!rc && v > last) {
    struct db_val pu[] = {DB_V_INT(v), DB_V_STR(t->name)};
    rc = db_exec_params(c,
                        "UPDATE registry_model SET last_version = ? "
                        "WHERE model = ?",
                        pu, 2, NULL, e);
  }
  if (!rc)
    t->version = v;
  if (!rc && t->stop)
    raise(SIGSTOP); /* the rows are written, the COMMIT not yet sent */
  return rc;
}

/* ---- commit ----------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir, sorted (a NULL-terminated array). */
static enum err_code list_files(const char *dir, char ***out, size_t *n,
                                struct err *e)
{
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, ERR_IO, "registry: %s: %s", dir, strerror(errno));
  char **v = NULL;
  size_t cnt = 0, cap = 0;
  enum err_code rc = VEC_RESERVE(v, cap, 1) ? ERR_NOMEM : ERR_OK;
  if (!rc)
    v[0] = NULL;
  struct dirent *de;
  while (!rc && (de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    struct stat st;
    if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
        !S_ISREG(st.st_mode) || !fsx_name_valid(de->d_name)) {
      rc = err_set(e, ERR_INVAL,
                   "registry: %s/%s: only regular files with valid names "
                   "may be part of a version",
                   dir, de->d_name);
      break;
    }
    if (VEC_RESERVE(v, cap, cnt + 2) || !(v[cnt] = strdup(de->d_name))) {
      rc = err_set(e, ERR_NOMEM, "registry: out of memory");
      break;
    }
    v[++cnt] = NULL;
  }
  closedir(d);
  if (rc) {
    registry_strv_free(v);
    return rc;
  }
  qsort(v, cnt, sizeof(*v), cmp_str);
  *out = v;
  *n = cnt;
  return ERR_OK;
}

/* CACHE/.objects/SHA for a file whose sha256 is known: hard link (same
 * file system) so the cache and the version directory share the bytes */
static void cache_adopt(struct robj *o, const char *path, const char *sha)
{
  char objdir[PATH_MAX_], obj[PATH_MAX_];
  if (fmt(objdir, sizeof(objdir), NULL, "%s/.objects", o->cache) ||
      fmt(obj, sizeof(obj), NULL, "%s/%s", objdir, sha))
    return;
  if (mkdir(objdir, 0755) < 0 && errno != EEXIST)
    return;
  if (link(path, obj) < 0 && errno != EEXIST)
    return; /* the cache is an optimisation: a failure costs a download */
}

enum err_code robj_commit(struct robj *o, const char *name,
                          const char *draft_dir, int want, int *version,
                          struct err *e)
{
  *version = 0;
  char **files = NULL;
  size_t nf = 0;
  enum err_code rc = list_files(draft_dir, &files, &nf, e);
  if (rc)
    return rc;
  /* DRAFT: unique without coordination: time, pid and the local draft
   * directory's random suffix */
  const char *base = strrchr(draft_dir, '/');
  base = base ? base + 1 : draft_dir;
  char draft[64];
  snprintf(draft, sizeof(draft), "%lx-%d-%.16s", (unsigned long)time(NULL),
           (int)getpid(), strncmp(base, "draft-", 6) ? base : base + 6);
  cJSON *man = cJSON_CreateObject();
  cJSON *arr = man ? cJSON_AddArrayToObject(man, "files") : NULL;
  if (!arr)
    rc = err_set(e, ERR_NOMEM, "registry: out of memory");
  for (size_t i = 0; !rc && i < nf; i++) {
    char path[PATH_MAX_], key[S3_KEY_MAX], sha[SHA256_HEX_LEN];
    struct stat st;
    if ((rc = fmt(path, sizeof(path), e, "%s/%s", draft_dir, files[i])) ||
        (rc = fmt(key, sizeof(key), e, "%s%s/drafts/%s/%s", o->prefix, name,
                  draft, files[i])))
      break;
    if ((rc = s3_put_file(o->s3, key, path, sha, e)))
      break;
    if (stat(path, &st) < 0) {
      rc = err_set(e, ERR_IO, "registry: %s: %s", path, strerror(errno));
      break;
    }
    cJSON *f = cJSON_CreateObject();
    if (!f || !cJSON_AddItemToArray(arr, f) ||
        !cJSON_AddStringToObject(f, "name", files[i]) ||
        !cJSON_AddNumberToObject(f, "size", (double)st.st_size) ||
        !cJSON_AddStringToObject(f, "sha256", sha))
      rc = err_set(e, ERR_NOMEM, "registry: out of memory");
    else
      cache_adopt(o, path, sha);
  }
  char *mtext = rc ? NULL : cJSON_PrintUnformatted(man);
  cJSON_Delete(man);
  if (!rc && !mtext)
    rc = err_set(e, ERR_NOMEM, "registry: out of memory");
  if (!rc) {
    struct db_conn *c;
    if (!(rc = conn(o, &c, e))) {
      struct commit_txn t = {.name = name, .draft = draft, .manifest = mtext,
                             .want = want, .stop = o->stop_at_commit_row};
      rc = db_txn_retry(c, TXN_TRIES, commit_body, &t, e);
      db_release(o->db, c);
      if (!rc)
        *version = t.version;
    }
  }
  free(mtext);
  if (rc) {
    /* nothing points at the uploaded objects: remove them (best effort;
     * objects left by a killed writer are equally invisible) */
    for (size_t i = 0; i < nf; i++) {
      char key[S3_KEY_MAX];
      struct err ig;
      if (!fmt(key, sizeof(key), NULL, "%s%s/drafts/%s/%s", o->prefix, name,
               draft, files[i]))
        if (s3_delete(o->s3, key, &ig)) {
          /* invisible anyway: no row names it */
        }
    }
    registry_strv_free(files);
    return rc;
  }
  registry_strv_free(files);
  /* the draft is the version's content: it becomes the cached copy */
  char vdir[PATH_MAX_], vparent[PATH_MAX_];
  if (!fmt(vparent, sizeof(vparent), NULL, "%s/%s/versions", o->cache,
           name) &&
      !fmt(vdir, sizeof(vdir), NULL, "%s/%d", vparent, *version) &&
      mkdirs(vparent, NULL) == ERR_OK) {
    rm_tree(vdir); /* a stale copy from an older database */
    if (rename(draft_dir, vdir) == 0) {
      pthread_mutex_lock(&o->mu);
      if (!VEC_RESERVE(o->ver, o->capver, o->nver + 1)) {
        snprintf(o->ver[o->nver].name, sizeof(o->ver[0].name), "%s", name);
        o->ver[o->nver++].version = *version;
      }
      pthread_mutex_unlock(&o->mu);
    }
  }
  return ERR_OK;
}

/* ---- fetch into the cache --------------------------------------------- */

struct manifest_row {
  char *draft;
  char *manifest;
};

static int row_manifest(void *ud, const struct db_row *row)
{
  struct manifest_row *m = ud;
  m->draft = strdup(db_row_str(row, 0, NULL));
  m->manifest = strdup(db_row_str(row, 1, NULL));
  return 1;
}

static int is_verified(struct robj *o, const char *name, int version)
{
  int yes = 0;
  pthread_mutex_lock(&o->mu);
  for (size_t i = 0; i < o->nver && !yes; i++)
    yes = o->ver[i].version == version && !strcmp(o->ver[i].name, name);
  pthread_mutex_unlock(&o->mu);
  return yes;
}

/* CACHE/.objects/SHA holds the right bytes, downloading it if missing or
 * wrong */
static enum err_code cache_object(struct robj *o, const char *name,
                                  const char *draft, const char *file,
                                  const char *sha, const char *obj,
                                  struct err *e)
{
  char have[SHA256_HEX_LEN];
  struct err ig;
  if (access(obj, F_OK) == 0) {
    if (sha256_file(obj, have, &ig) == ERR_OK && !strcmp(have, sha))
      return ERR_OK;
    unlink(obj); /* corrupt or truncated: fetch again */
  }
  char key[S3_KEY_MAX];
  enum err_code rc = fmt(key, sizeof(key), e, "%s%s/drafts/%s/%s", o->prefix,
                         name, draft, file);
  if (!rc)
    rc = s3_get_file(o->s3, key, obj, have, e);
  if (rc)
    return rc;
  if (strcmp(have, sha)) {
    unlink(obj);
    return err_set(e, ERR_PARSE,
                   "registry: %s: object %s has sha256 %s, its version row "
                   "says %s (corrupt store)",
                   o->url, key, have, sha);
  }
  return ERR_OK;
}

/* every file of vdir is the hard link of its object */
static int vdir_current(const char *vdir, cJSON *files, const char *objdir)
{
  const cJSON *f;
  int n = 0;
  cJSON_ArrayForEach(f, files)
  {
    const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
    const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(f, "sha256"));
    char a[PATH_MAX_], b[PATH_MAX_];
    struct stat sa, sb;
    if (fmt(a, sizeof(a), NULL, "%s/%s", vdir, fn ? fn : "") ||
        fmt(b, sizeof(b), NULL, "%s/%s", objdir, sha ? sha : "") ||
        stat(a, &sa) < 0 || stat(b, &sb) < 0 || sa.st_ino != sb.st_ino ||
        sa.st_dev != sb.st_dev)
      return 0;
    n++;
  }
  /* and nothing else */
  DIR *d = opendir(vdir);
  if (!d)
    return 0;
  struct dirent *de;
  int m = 0;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      m++;
  closedir(d);
  return m == n;
}

enum err_code robj_fetch(struct robj *o, const char *name, int version,
                         struct err *e)
{
  if (is_verified(o, name, version))
    return ERR_OK;
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct manifest_row m = {0};
  int64_t nrows = 0;
  struct db_val p[] = {DB_V_STR(name), DB_V_INT(version)};
  rc = db_query(c,
                "SELECT draft, manifest FROM registry_version "
                "WHERE model = ? AND version = ?",
                p, 2, row_manifest, &m, &nrows, e);
  db_release(o->db, c);
  if (!rc && nrows == 0)
    rc = err_set(e, ERR_NOTFOUND, "registry: %s: model %s has no version %d",
                 o->url, name, version);
  if (!rc && (!m.draft || !m.manifest))
    rc = err_set(e, ERR_NOMEM, "registry: out of memory");
  cJSON *man = rc ? NULL : cJSON_Parse(m.manifest);
  cJSON *files = man ? cJSON_GetObjectItem(man, "files") : NULL;
  if (!rc && !cJSON_IsArray(files))
    rc = err_set(e, ERR_PARSE, "registry: %s: version row %s/%d has a bad "
                 "manifest", o->url, name, version);
  char objdir[PATH_MAX_], vparent[PATH_MAX_], vdir[PATH_MAX_],
      tdir[PATH_MAX_];
  if (!rc)
    rc = fmt(objdir, sizeof(objdir), e, "%s/.objects", o->cache);
  if (!rc)
    rc = fmt(vparent, sizeof(vparent), e, "%s/%s/versions", o->cache, name);
  if (!rc)
    rc = fmt(vdir, sizeof(vdir), e, "%s/%d", vparent, version);
  if (!rc)
    rc = fmt(tdir, sizeof(tdir), e, "%s/.fetch-XXXXXX", vparent);
  if (!rc)
    rc = mkdirs(objdir, e);
  if (!rc)
    rc = mkdirs(vparent, e);
  const cJSON *f;
  cJSON_ArrayForEach(f, files)
  {
    if (rc)
      break;
    const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
    const char *sha = cJSON_GetStringValue(cJSON_GetObjectItem(f, "sha256"));
    if (!fn || !sha || !fsx_name_valid(fn) || strlen(sha) != 64 ||
        strspn(sha, "0123456789abcdef") != 64) {
      rc = err_set(e, ERR_PARSE, "registry: %s: version row %s/%d has a bad "
                   "manifest entry", o->url, name, version);
      break;
    }
    char obj[PATH_MAX_];
    if (!(rc = fmt(obj, sizeof(obj), e, "%s/%s", objdir, sha)))
      rc = cache_object(o, name, m.draft, fn, sha, obj, e);
  }
  if (!rc && !vdir_current(vdir, files, objdir)) {
    /* assemble beside (versions/.fetch-*: not a version name, and not in
     * tmp/ where the draft cleaner works), then swap in whole: a reader of
     * vdir sees the old or the new directory */
    if (!mkdtemp(tdir))
      rc = err_set(e, ERR_IO, "registry: mkdtemp %s: %s", tdir,
                   strerror(errno));
    cJSON_ArrayForEach(f, files)
    {
      if (rc)
        break;
      const char *fn = cJSON_GetStringValue(cJSON_GetObjectItem(f, "name"));
      const char *sha =
          cJSON_GetStringValue(cJSON_GetObjectItem(f, "sha256"));
      char a[PATH_MAX_], b[PATH_MAX_];
      if ((rc = fmt(a, sizeof(a), e, "%s/%s", tdir, fn)) ||
          (rc = fmt(b, sizeof(b), e, "%s/%s", objdir, sha)))
        break;
      if (link(b, a) < 0)
        rc = err_set(e, ERR_IO, "registry: link %s -> %s: %s", b, a,
                     strerror(errno));
    }
    if (!rc && rename(tdir, vdir) < 0) {
      if (errno == ENOTEMPTY || errno == EEXIST) {
        /* another fetcher won, or a stale copy: swap it out */
        if (renameat2(AT_FDCWD, tdir, AT_FDCWD, vdir, RENAME_EXCHANGE) < 0)
          rc = err_set(e, ERR_IO, "registry: swap %s: %s", vdir,
                       strerror(errno));
      } else {
        rc = err_set(e, ERR_IO, "registry: rename %s -> %s: %s", tdir, vdir,
                     strerror(errno));
      }
    }
    rm_tree(tdir); /* the loser or the old copy (or nothing) */
  }
  cJSON_Delete(man);
  free(m.draft);
  free(m.manifest);
  if (rc)
    return rc;
  pthread_mutex_lock(&o->mu);
  if (!VEC_RESERVE(o->ver, o->capver, o->nver + 1)) {
    snprintf(o->ver[o->nver].name, sizeof(o->ver[0].name), "%s", name);
    o->ver[o->nver++].version = version;
  }
  pthread_mutex_unlock(&o->mu);
  return ERR_OK;
}

/* ---- listing ---------------------------------------------------------- */

struct strv {
  char **v;
  size_t n, cap;
  enum err_code rc;
};

static int strv_add(struct strv *s, const char *x)
{
  if (s->n && !strcmp(s->v[s->n - 1], x))
    return 0; /* sorted input: skip repeats */
  if (VEC_RESERVE(s->v, s->cap, s->n + 2) || !(s->v[s->n] = strdup(x))) {
    s->rc = ERR_NOMEM;
    return 1;
  }
  s->v[++s->n] = NULL;
  return 0;
}

static int row_str(void *ud, const struct db_row *row)
{
  return strv_add(ud, db_row_str(row, 0, NULL));
}

static enum err_code strv_done(struct strv *s, char ***out, size_t *n,
                               struct err *e)
{
  if (s->rc || (!s->v && VEC_RESERVE(s->v, s->cap, 1))) {
    registry_strv_free(s->v);
    return err_set(e, ERR_NOMEM, "registry: out of memory");
  }
  if (!s->n)
    s->v[0] = NULL;
  *out = s->v;
  *n = s->n;
  return ERR_OK;
}

enum err_code robj_list_models(struct robj *o, char ***names, size_t *n,
                               struct err *e)
{
  *names = NULL;
  *n = 0;
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct strv s = {0};
  rc = db_query(c, "SELECT model FROM registry_model ORDER BY model", NULL,
                0, row_str, &s, NULL, e);
  db_release(o->db, c);
  if (rc) {
    registry_strv_free(s.v);
    return rc;
  }
  return strv_done(&s, names, n, e);
}

struct intv {
  int *v;
  size_t n, cap;
  int oom;
};

static int row_int(void *ud, const struct db_row *row)
{
  struct intv *s = ud;
  if (VEC_RESERVE(s->v, s->cap, s->n + 1)) {
    s->oom = 1;
    return 1;
  }
  s->v[s->n++] = (int)db_row_i64(row, 0);
  return 0;
}

enum err_code robj_list_versions(struct robj *o, const char *name,
                                 int **versions, size_t *n, struct err *e)
{
  *versions = NULL;
  *n = 0;
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name)};
  int64_t known = 0;
  rc = db_query(c, "SELECT 1 FROM registry_model WHERE model = ?", p, 1,
                NULL, NULL, &known, e);
  struct intv s = {0};
  if (!rc && known)
    rc = db_query(c,
                  "SELECT version FROM registry_version WHERE model = ? "
                  "ORDER BY version",
                  p, 1, row_int, &s, NULL, e);
  db_release(o->db, c);
  if (!rc && !known)
    rc = err_set(e, ERR_NOTFOUND, "registry: %s: no model %s", o->url, name);
  if (!rc && s.oom)
    rc = err_set(e, ERR_NOMEM, "registry: out of memory");
  if (rc) {
    free(s.v);
    return rc;
  }
  *versions = s.v;
  *n = s.n;
  return ERR_OK;
}

int robj_version_exists(struct robj *o, const char *name, int version)
{
  struct db_conn *c;
  struct err e;
  if (conn(o, &c, &e))
    return 0;
  struct db_val p[] = {DB_V_STR(name), DB_V_INT(version)};
  int64_t n = 0;
  enum err_code rc = db_query(c,
                              "SELECT 1 FROM registry_version "
                              "WHERE model = ? AND version = ?",
                              p, 2, NULL, NULL, &n, &e);
  db_release(o->db, c);
  return !rc && n > 0;
}

/* ---- aliases ---------------------------------------------------------- */

struct alias_row {
  int64_t version, serial;
};

static int row_alias(void *ud, const struct db_row *row)
{
  struct alias_row *a = ud;
  a->version = db_row_i64(row, 0);
  a->serial = db_row_i64(row, 1);
  return 1;
}

enum err_code robj_alias_get(struct robj *o, const char *name,
                             const char *alias, int *version,
                             int64_t *serial, struct err *e)
{
  *version = 0;
  if (serial)
    *serial = 0;
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name), DB_V_STR(alias)};
  struct alias_row a = {0};
  int64_t n = 0;
  rc = db_query(c,
                "SELECT version, serial FROM registry_alias "
                "WHERE model = ? AND alias = ?",
                p, 2, row_alias, &a, &n, e);
  db_release(o->db, c);
  if (rc)
    return rc;
  if (!n)
    return err_set(e, ERR_NOTFOUND, "registry: %s: alias %s of %s is not set",
                   o->url, alias, name);
  *version = (int)a.version;
  if (serial)
    *serial = a.serial;
  return ERR_OK;
}

struct alias_txn {
  const char *name, *alias;
  int version;
  int previous;
  int missing;
};

static enum err_code alias_body(struct db_conn *c, void *ud, struct err *e)
{
  struct alias_txn *t = ud;
  struct db_val pv[] = {DB_V_STR(t->name), DB_V_INT(t->version)};
  int64_t n = 0;
  /* the version row is locked (shared) so it cannot vanish meanwhile */
  enum err_code rc = db_query(c,
                              "SELECT 1 FROM registry_version WHERE model = ? "
                              "AND version = ? LOCK IN SHARE MODE",
                              pv, 2, NULL, NULL, &n, e);
  if (rc)
    return rc;
  if (!n) {
    t->missing = 1;
    return ERR_OK; /* nothing written: the commit is empty */
  }
  struct db_val pa[] = {DB_V_STR(t->name), DB_V_STR(t->alias)};
  struct alias_row a = {0};
  rc = db_query(c,
                "SELECT version, serial FROM registry_alias WHERE model = ? "
                "AND alias = ? FOR UPDATE",
                pa, 2, row_alias, &a, &n, e);
  if (rc)
    return rc;
  t->previous = n ? (int)a.version : 0;
  struct db_val pi[] = {DB_V_STR(t->name), DB_V_STR(t->alias),
                        DB_V_INT(t->version)};
  return db_exec_params(
      c,
      "INSERT INTO registry_alias (model, alias, version) VALUES (?, ?, ?) "
      "ON DUPLICATE KEY UPDATE version = VALUES(version), "
      "serial = serial + 1, updated_at = CURRENT_TIMESTAMP(6)",
      pi, 3, NULL, e);
}

enum err_code robj_alias_set(struct robj *o, const char *name,
                             const char *alias, int version, int *previous,
                             struct err *e)
{
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct alias_txn t = {.name = name, .alias = alias, .version = version};
  rc = db_txn_retry(c, TXN_TRIES, alias_body, &t, e);
  db_release(o->db, c);
  if (!rc && t.missing)
    return err_set(e, ERR_NOTFOUND,
                   "registry: %s: model %s has no version %d", o->url, name,
                   version);
  if (!rc && previous)
    *previous = t.previous;
  return rc;
}

enum err_code robj_alias_delete(struct robj *o, const char *name,
                                const char *alias, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name), DB_V_STR(alias)};
  int64_t aff = 0;
  rc = db_exec_params_retry(c,
                            "DELETE FROM registry_alias WHERE model = ? "
                            "AND alias = ?",
                            p, 2, TXN_TRIES, &aff, e);
  db_release(o->db, c);
  if (!rc && aff == 0)
    return err_set(e, ERR_NOTFOUND, "registry: %s: alias %s of %s is not set",
                   o->url, alias, name);
  return rc;
}

enum err_code robj_list_aliases(struct robj *o, const char *name,
                                char ***aliases, size_t *n, struct err *e)
{
  *aliases = NULL;
  *n = 0;
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name)};
  struct strv s = {0};
  rc = db_query(c,
                "SELECT alias FROM registry_alias WHERE model = ? "
                "ORDER BY alias",
                p, 1, row_str, &s, NULL, e);
  db_release(o->db, c);
  if (rc) {
    registry_strv_free(s.v);
    return rc;
  }
  return strv_done(&s, aliases, n, e);
}

/* ---- runs ------------------------------------------------------------- */

enum err_code robj_run_put(struct robj *o, const char *name,
                           const char *run_id, const char *file,
                           const char *text, struct err *e)
{
  char key[S3_KEY_MAX];
  enum err_code rc = fmt(key, sizeof(key), e, "%s%s/runs/%s/%s", o->prefix,
                         name, run_id, file);
  if (rc || (rc = robj_model_touch(o, name, e)))
    return rc;
  return s3_put_buf(o->s3, key, text, strlen(text), e);
}

struct run_list {
  size_t skip; /* length of "PREFIX/NAME/runs/" */
  struct strv s;
};

static int on_run_key(const char *key, int64_t size, void *ud)
{
  (void)size;
  struct run_list *l = ud;
  const char *id = key + l->skip, *slash = strchr(id, '/');
  if (!slash || (size_t)(slash - id) > REGISTRY_NAME_MAX)
    return 0;
  char buf[REGISTRY_NAME_MAX + 1];
  memcpy(buf, id, (size_t)(slash - id));
  buf[slash - id] = 0;
  if (!fsx_name_valid(buf))
    return 0;
  return strv_add(&l->s, buf);
}

enum err_code robj_list_runs(struct robj *o, const char *name, char ***ids,
                             size_t *n, struct err *e)
{
  *ids = NULL;
  *n = 0;
  char pfx[S3_KEY_MAX];
  enum err_code rc = fmt(pfx, sizeof(pfx), e, "%s%s/runs/", o->prefix, name);
  if (rc)
    return rc;
  struct run_list l = {.skip = strlen(pfx)};
  rc = s3_list(o->s3, pfx, on_run_key, &l, e);
  if (rc) {
    registry_strv_free(l.s.v);
    return rc == ERR_CANCELED ? err_set(e, ERR_NOMEM, "registry: out of "
                                        "memory") : rc;
  }
  /* keys arrive sorted, so run ids do too (params.json, metrics.json of
   * one run are adjacent: repeats skipped) */
  return strv_done(&l.s, ids, n, e);
}

enum err_code robj_run_get(struct robj *o, const char *name,
                           const char *run_id, const char *file, char **text,
                           size_t *len, struct err *e)
{
  char key[S3_KEY_MAX];
  enum err_code rc = fmt(key, sizeof(key), e, "%s%s/runs/%s/%s", o->prefix,
                         name, run_id, file);
  if (rc)
    return rc;
  return s3_get_buf(o->s3, key, RUN_FILE_MAX, text, len, e);
}
