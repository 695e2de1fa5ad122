/* registry_obj.c - the model registry's backend on object storage
 * (regbe_s3_ops in registry_int.h, docs/registry.md "On object storage").
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

static enum err_code conn(struct robj *o, struct db_conn **c, struct err *e)
{
  enum err_code rc = db_acquire(o->db, DB_WAIT_MS, c, e);
  if (rc)
    err_prefix(e, "registry (%s): database", o->url);
  return rc;
}

/* Whether the model has its counter row (it is known). */
static enum err_code model_known(struct db_conn *c, const char *name,
                                 int64_t *known, struct err *e)
{
  struct db_val p[] = {DB_V_STR(name)};
  *known = 0;
  return db_query(c, "SELECT 1 FROM registry_model WHERE model = ?", p, 1,
                  NULL, NULL, known, e);
}

/* A connection (*c, released by the caller with db_release) and whether
 * name is known (*known).  On failure nothing is held. */
static enum err_code conn_known(struct robj *o, const char *name,
                                struct db_conn **c, int64_t *known,
                                struct err *e)
{
  enum err_code rc = conn(o, c, e);
  if (rc)
    return rc;
  rc = model_known(*c, name, known, e);
  if (rc)
    db_release(o->db, *c);
  return rc;
}

/* ---- open / close ----------------------------------------------------- */

static void robj_close(void *be);

enum err_code robj_open(const struct registry_obj_opts *oo,
                        const char *cache_root, void **out, struct err *e)
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

static void robj_close(void *be)
{
  struct robj *o = be;
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

static const char *robj_url(const void *be)
{
  return ((const struct robj *)be)->url;
}

/* ---- rows ------------------------------------------------------------- */

static enum err_code robj_model_touch(void *be, const char *name,
                                      struct err *e)
{
  struct robj *o = be;
  struct db_conn *c;
  int64_t known = 0;
  /* a plain (non-locking) read first: the row usually exists, and an
   * INSERT IGNORE on it would wait for a committer holding its lock */
  enum err_code rc = conn_known(o, name, &c, &known, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name)};
  if (!known)
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
  qsort(v, cnt, sizeof(*v), registry_cmp_str);
  *out = v;
  *n = cnt;
  return ERR_OK;
}

/* CACHE/.objects/SHA for a file whose sha256 is known: hard link (same
 * file system) so the cache and the version directory share the bytes */
static void cache_adopt(struct robj *o, const char *path, const char *sha)
{
  char objdir[PATH_MAX_], obj[PATH_MAX_];
  if (registry_fmt(objdir, sizeof(objdir), NULL, "%s/.objects", o->cache) ||
      registry_fmt(obj, sizeof(obj), NULL, "%s/%s", objdir, sha))
    return;
  if (mkdir(objdir, 0755) < 0 && errno != EEXIST)
    return;
  if (link(path, obj) < 0 && errno != EEXIST)
    return; /* the cache is an optimisation: a failure costs a download */
}

static enum err_code robj_commit(struct robj *o, const char *name,
                                 const char *draft_dir, int want,
                                 int *version, struct err *e)
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
    if ((rc = registry_fmt(path, sizeof(path), e, "%s/%s", draft_dir, files[i])) ||
        (rc = registry_fmt(key, sizeof(key), e, "%s%s/drafts/%s/%s", o->prefix, name,
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
      if (!registry_fmt(key, sizeof(key), NULL, "%s%s/drafts/%s/%s", o->prefix, name,
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
  if (!registry_fmt(vparent, sizeof(vparent), NULL, "%s/%s/versions", o->cache,
           name) &&
      !registry_fmt(vdir, sizeof(vdir), NULL, "%s/%d", vparent, *version) &&
      registry_mkdir_p(vparent, NULL) == ERR_OK) {
    registry_rm_tree(vdir); /* a stale copy from an older database */
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
  enum err_code rc = registry_fmt(key, sizeof(key), e, "%s%s/drafts/%s/%s", o->prefix,
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
    if (registry_fmt(a, sizeof(a), NULL, "%s/%s", vdir, fn ? fn : "") ||
        registry_fmt(b, sizeof(b), NULL, "%s/%s", objdir, sha ? sha : "") ||
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

static enum err_code robj_fetch(void *be, const char *name, int version,
                                struct err *e)
{
  struct robj *o = be;
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
    rc = registry_fmt(objdir, sizeof(objdir), e, "%s/.objects", o->cache);
  if (!rc)
    rc = registry_fmt(vparent, sizeof(vparent), e, "%s/%s/versions", o->cache, name);
  if (!rc)
    rc = registry_fmt(vdir, sizeof(vdir), e, "%s/%d", vparent, version);
  if (!rc)
    rc = registry_fmt(tdir, sizeof(tdir), e, "%s/.fetch-XXXXXX", vparent);
  if (!rc)
    rc = registry_mkdir_p(objdir, e);
  if (!rc)
    rc = registry_mkdir_p(vparent, e);
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
    if (!(rc = registry_fmt(obj, sizeof(obj), e, "%s/%s", objdir, sha)))
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
      if ((rc = registry_fmt(a, sizeof(a), e, "%s/%s", tdir, fn)) ||
          (rc = registry_fmt(b, sizeof(b), e, "%s/%s", objdir, sha)))
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
    registry_rm_tree(tdir); /* the loser or the old copy (or nothing) */
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

static int row_str(void *ud, const struct db_row *row)
{
  struct strv *s = ud;
  s->rc = registry_strv_add_uniq(&s->v, &s->n, &s->cap,
                                 db_row_str(row, 0, NULL));
  return s->rc != ERR_OK;
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

/* The first column of sql's rows as a NULL-terminated string array
 * (*out, freed with registry_strv_free), duplicates dropped; *n strings. */
static enum err_code list_strs(struct robj *o, const char *sql,
                               const struct db_val *p, int np, char ***out,
                               size_t *n, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = conn(o, &c, e);
  if (rc)
    return rc;
  struct strv s = {0};
  rc = db_query(c, sql, p, np, row_str, &s, NULL, e);
  db_release(o->db, c);
  if (rc) {
    registry_strv_free(s.v);
    return rc;
  }
  return strv_done(&s, out, n, e);
}

static enum err_code robj_list_models(void *be, char ***names, size_t *n,
                                      struct err *e)
{
  return list_strs(be, "SELECT model FROM registry_model ORDER BY model",
                   NULL, 0, names, n, e);
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

static enum err_code robj_list_versions(void *be, const char *name,
                                        int **versions, size_t *n,
                                        struct err *e)
{
  struct robj *o = be;
  struct db_conn *c;
  int64_t known = 0;
  enum err_code rc = conn_known(o, name, &c, &known, e);
  if (rc)
    return rc;
  struct db_val p[] = {DB_V_STR(name)};
  struct intv s = {0};
  if (known)
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

static int robj_version_exists(void *be, const char *name, int version)
{
  struct robj *o = be;
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

static enum err_code alias_row_get(struct robj *o, const char *name,
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

static enum err_code robj_alias_set(void *be, const char *name,
                                    const char *alias, int version,
                                    int *previous, struct err *e)
{
  struct robj *o = be;
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

static enum err_code robj_alias_delete(void *be, const char *name,
                                       const char *alias, struct err *e)
{
  struct robj *o = be;
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

static enum err_code robj_list_aliases(void *be, const char *name,
                                       char ***aliases, size_t *n,
                                       struct err *e)
{
  struct db_val p[] = {DB_V_STR(name)};
  return list_strs(be,
                   "SELECT alias FROM registry_alias WHERE model = ? "
                   "ORDER BY alias",
                   p, 1, aliases, n, e);
}

static enum err_code robj_alias_get(void *be, const char *name,
                                    const char *alias, int *version,
                                    struct err *e)
{
  return alias_row_get(be, name, alias, version, NULL, e);
}

/* the row: (version, serial); serial grows with every change, so two
 * stamps differ whenever the alias moved, also back and forth */
static enum err_code robj_alias_stamp(void *be, const char *name,
                                      const char *alias,
                                      struct registry_stamp *st,
                                      struct err *e)
{
  int v = 0;
  int64_t serial = 0;
  struct err le;
  enum err_code rc = alias_row_get(be, name, alias, &v, &serial, &le);
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

/* ---- the draft -------------------------------------------------------- */

static enum err_code robj_commit_draft(void *be, struct registry_draft *d,
                                       int want, int *version,
                                       struct err *e)
{
  enum err_code rc = robj_commit(be, registry_draft_name(d),
                                 registry_draft_dir(d), want, version, e);
  /* the directory became the cached version, or goes with its lock */
  registry_version_abort(d);
  return rc;
}

/* ---- objects: keys below the URL's prefix ----------------------------- */

static enum err_code obj_key(const struct robj *o, const char *key,
                             char *buf, struct err *e)
{
  return registry_fmt(buf, S3_KEY_MAX, e, "%s%s", o->prefix, key);
}

static enum err_code robj_put(void *be, const char *key, const void *data,
                              size_t n, struct err *e)
{
  struct robj *o = be;
  char k[S3_KEY_MAX];
  enum err_code rc = obj_key(o, key, k, e);
  return rc ? rc : s3_put_buf(o->s3, k, data, n, e);
}

static enum err_code robj_get(void *be, const char *key, size_t max,
                              char **out, size_t *n, struct err *e)
{
  struct robj *o = be;
  char k[S3_KEY_MAX];
  enum err_code rc = obj_key(o, key, k, e);
  return rc ? rc : s3_get_buf(o->s3, k, max, out, n, e);
}

static enum err_code robj_head(void *be, const char *key, int64_t *size,
                               struct err *e)
{
  struct robj *o = be;
  char k[S3_KEY_MAX];
  enum err_code rc = obj_key(o, key, k, e);
  return rc ? rc : s3_head(o->s3, k, size, e);
}

static enum err_code robj_del(void *be, const char *key, struct err *e)
{
  struct robj *o = be;
  char k[S3_KEY_MAX];
  enum err_code rc = obj_key(o, key, k, e);
  return rc ? rc : s3_delete(o->s3, k, e);
}

struct unprefix {
  size_t skip; /* strlen(o->prefix) */
  regbe_list_fn fn;
  void *ud;
};

static int on_key(const char *key, int64_t size, void *ud)
{
  struct unprefix *u = ud;
  return u->fn(key + u->skip, size, u->ud);
}

static enum err_code robj_list(void *be, const char *prefix, regbe_list_fn fn,
                               void *ud, struct err *e)
{
  struct robj *o = be;
  char k[S3_KEY_MAX];
  enum err_code rc = obj_key(o, prefix, k, e);
  struct unprefix u = {.skip = strlen(o->prefix), .fn = fn, .ud = ud};
  return rc ? rc : s3_list(o->s3, k, on_key, &u, e);
}

const struct regbe_ops regbe_s3_ops = {
    .kind = "s3",
    .put = robj_put,
    .get = robj_get,
    .head = robj_head,
    .list = robj_list,
    .del = robj_del,
    .model_touch = robj_model_touch,
    .commit = robj_commit_draft,
    .fetch = robj_fetch,
    .list_models = robj_list_models,
    .list_versions = robj_list_versions,
    .version_exists = robj_version_exists,
    .alias_get = robj_alias_get,
    .alias_stamp = robj_alias_stamp,
    .alias_set = robj_alias_set,
    .alias_delete = robj_alias_delete,
    .list_aliases = robj_list_aliases,
    .where = robj_url,
    .close = robj_close,
};
