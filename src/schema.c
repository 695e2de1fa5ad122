/* schema.c - the migration runner behind `mlopsd db init`.
 *
 * Reads NNN_name.sql files from a directory, splits them into statements
 * and applies the ones not yet recorded in schema_version, in order.  The
 * files stay the source of truth (nothing is compiled in), and their
 * sha256 is recorded so that editing an applied migration is caught
 * instead of leaving databases that differ while claiming one version.
 */
#include "mlopsd/schema.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/fsx.h"
#include "mlopsd/log.h"
#include "mlopsd/sha256.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/vec.h"

/* Largest migration file read into memory (a migration is DDL, not data). */
#define SCHEMA_FILE_MAX (16u << 20)
/* Seconds to wait for another runner's lock. */
#define SCHEMA_LOCK_WAIT_S 60

/* ------------------------------------------------------------ directory */

const char *schema_dir(const char *explicit_dir)
{
  if (explicit_dir && explicit_dir[0])
    return explicit_dir;
  const char *env = getenv(SCHEMA_DIR_ENV);
  if (env && env[0])
    return env;
  return SCHEMA_DIR_DEFAULT;
}

static void hex_sum(const void *buf, size_t len, char out[SHA256_HEX_LEN])
{
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_buf(buf, len, d);
  sha256_hex(d, out);
}

/* "NNN_name.sql" -> version; -1 if the name does not have that form. */
static int parse_name(const char *name)
{
  const char *p = name;
  long v = 0;
  if (*p < '0' || *p > '9')
    return -1;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + (*p - '0');
    if (v > 999999999)
      return -1;
    p++;
  }
  if (*p++ != '_')
    return -1;
  const char *stem = p;
  while (*p && ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
    p++;
  if (p == stem || strcmp(p, ".sql") != 0 || v <= 0)
    return -1;
  return (int)v;
}

static int cmp_file(const void *a, const void *b)
{
  const struct schema_file *x = a, *y = b;
  return (x->version > y->version) - (x->version < y->version);
}

enum err_code schema_scan(const char *dir, struct schema_file **out, int *n,
                          struct err *e)
{
  *out = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d)
    return err_set(e, ERR_IO, "migrations directory %s: %s", dir,
                   strerror(errno));
  struct schema_file *v = NULL;
  int nv = 0;
  size_t cap = 0;
  enum err_code rc = ERR_OK;
  struct dirent *de;
  while ((de = readdir(d)) != NULL) {
    const char *nm = de->d_name;
    size_t l = strlen(nm);
    if (nm[0] == '.' || l < 4 || strcmp(nm + l - 4, ".sql") != 0)
      continue;
    int ver = parse_name(nm);
    if (ver < 0) {
      rc = err_set(e, ERR_INVAL,
                   "%s/%s: migration file names must be NNN_name.sql "
                   "(NNN > 0, name of letters, digits, _ and -)",
                   dir, nm);
      break;
    }
    if (VEC_RESERVE(v, cap, nv + 1)) {
      rc = err_set(e, ERR_NOMEM, "out of memory");
      break;
    }
    struct schema_file *f = &v[nv];
    memset(f, 0, sizeof(*f));
    f->version = ver;
    if (l >= sizeof(f->name) ||
        (size_t)snprintf(f->path, sizeof(f->path), "%s/%s", dir, nm) >=
            sizeof(f->path)) {
      rc = err_set(e, ERR_INVAL, "%s/%s: path too long", dir, nm);
      break;
    }
    memcpy(f->name, nm, l + 1);
    nv++;
  }
  closedir(d);
  if (rc != ERR_OK) {
    free(v);
    return rc;
  }
  if (nv > 1)
    qsort(v, (size_t)nv, sizeof(*v), cmp_file);
  for (int i = 0; i < nv; i++) {
    if (i > 0 && v[i].version == v[i - 1].version) {
      rc = err_set(e, ERR_INVAL, "%s: %s and %s have the same version %d",
                   dir, v[i - 1].name, v[i].name, v[i].version);
      break;
    }
    char *buf;
    size_t len;
    rc = fsx_read(v[i].path, SCHEMA_FILE_MAX, 0, &buf, &len, e);
    if (rc != ERR_OK)
      break;
    hex_sum(buf, len, v[i].checksum);
    free(buf);
  }
  if (rc != ERR_OK) {
    free(v);
    return rc;
  }
  *out = v;
  *n = nv;
  return ERR_OK;
}

/* ------------------------------------------------------------ migrating */

/* A row of schema_version. */
struct applied {
  int version;
  char name[256];
  char checksum[65];
};

struct applied_list {
  struct applied *v;
  int n;
  size_t cap;
  int oom;
};

static int applied_row(void *user, const struct db_row *row)
{
  struct applied_list *l = user;
  if (VEC_RESERVE(l->v, l->cap, l->n + 1)) {
    l->oom = 1;
    return 1;
  }
  struct applied *a = &l->v[l->n++];
  memset(a, 0, sizeof(*a));
  a->version = (int)db_row_i64(row, 0);
  const char *s = db_row_str(row, 1, NULL);
  snprintf(a->name, sizeof(a->name), "%s", s ? s : "");
  s = db_row_str(row, 2, NULL);
  snprintf(a->checksum, sizeof(a->checksum), "%s", s ? s : "");
  return 0;
}

static const char *const create_version_sql =
    "CREATE TABLE IF NOT EXISTS `schema_version` ("
    " `version` int NOT NULL,"
    " `name` varchar(255) NOT NULL,"
    " `checksum` char(64) NOT NULL,"
    " `applied_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),"
    " PRIMARY KEY (`version`)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/* Load schema_version into l; a missing table leaves l empty when
 * may_be_missing (read-only status), else it is created first. */
static enum err_code load_applied(struct db_conn *c, int may_be_missing,
                                  struct applied_list *l, struct err *e)
{
  enum err_code rc;
  if (may_be_missing) {
    int64_t n = 0;
    rc = db_query_i64(c,
                      "SELECT COUNT(*) FROM information_schema.TABLES "
                      "WHERE TABLE_SCHEMA = DATABASE() "
                      "AND TABLE_NAME = 'schema_version'",
                      NULL, 0, &n, e);
    if (rc != ERR_OK)
      return rc;
    if (n == 0)
      return ERR_OK;
  } else {
    rc = db_exec(c, create_version_sql, NULL, e);
    if (rc != ERR_OK) {
      err_prefix(e, "creating schema_version");
      return rc;
    }
  }
  rc = db_query(c,
                "SELECT `version`, `name`, `checksum` FROM `schema_version` "
                "ORDER BY `version`",
                NULL, 0, applied_row, l, NULL, e);
  if (rc == ERR_OK && l->oom)
    rc = err_set(e, ERR_NOMEM, "out of memory");
  if (rc != ERR_OK)
    err_prefix(e, "reading schema_version");
  return rc;
}

/* Every recorded migration must still be there, unchanged. */
static enum err_code verify(const char *dir, const struct schema_file *f,
                            int nf, const struct applied_list *l,
                            struct err *e)
{
  for (int i = 0; i < l->n; i++) {
    const struct applied *a = &l->v[i];
    const struct schema_file *m = NULL;
    for (int j = 0; j < nf && !m; j++)
      if (f[j].version == a->version)
        m = &f[j];
    if (!m)
      return err_set(e, ERR_NOTFOUND,
                     "migration %d (%s) is recorded in schema_version but "
                     "%s has no such file: the database is newer than these "
                     "migrations, or a file was removed",
                     a->version, a->name, dir);
    if (strcmp(m->checksum, a->checksum) != 0)
      return err_set(e, ERR_INVAL,
                     "%s: checksum mismatch: the file changed after it was "
                     "applied as version %d (recorded sha256 %.12s..., file "
                     "%.12s...); add a new migration instead of editing it",
                     m->path, a->version, a->checksum, m->checksum);
  }
  return ERR_OK;
}

static int is_applied(const struct applied_list *l, int version)
{
  for (int i = 0; i < l->n; i++)
    if (l->v[i].version == version)
      return 1;
  return 0;
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum err_code apply_one(struct db_conn *c, const struct schema_file *f,
                               int *nstmts, struct err *e)
{
  char *buf;
  size_t len;
  enum err_code rc = fsx_read(f->path, SCHEMA_FILE_MAX, 0, &buf, &len, e);
  if (rc != ERR_OK)
    return rc;
  char sum[65];
  hex_sum(buf, len, sum);
  if (strcmp(sum, f->checksum) != 0) {
    free(buf);
    return err_set(e, ERR_STATE, "%s: changed while being applied", f->path);
  }
  struct sqlsplit_list l;
  rc = sqlsplit_split(buf, &l, e);
  free(buf);
  if (rc != ERR_OK) {
    err_prefix(e, "%s", f->path);
    return rc;
  }
  for (size_t i = 0; i < l.n && rc == ERR_OK; i++) {
    rc = db_exec(c, l.v[i].sql, NULL, e);
    if (rc != ERR_OK)
      err_prefix(e, "%s:%d", f->path, l.v[i].line);
  }
  int n = (int)l.n;
  sqlsplit_list_free(&l);
  if (rc != ERR_OK)
    return rc;
  struct db_val p[3] = {DB_V_INT(f->version), DB_V_STR(f->name),
                        DB_V_STR(f->checksum)};
  rc = db_exec_params(c,
                      "INSERT INTO `schema_version` "
                      "(`version`, `name`, `checksum`, `applied_at`) "
                      "VALUES (?, ?, ?, UTC_TIMESTAMP(6))",
                      p, 3, NULL, e);
  if (rc != ERR_OK) {
    err_prefix(e, "%s: recording version %d", f->path, f->version);
    return rc;
  }
  *nstmts = n;
  return ERR_OK;
}

/* The schema lock: one row of table schema_lock, taken by an UPDATE that
 * only succeeds while the row is free (or its lease ran out) and
 * committed at once.  Why not GET_LOCK: on a Galera cluster GET_LOCK is
 * node-local (a lock held through node 1 is granted on node 2 too), and a
 * row lock held in an open transaction cannot span the migrations (every
 * DDL statement commits).  A committed write is what Galera orders: two
 * runners that both saw the row free through different nodes both
 * update it, and the second one's COMMIT fails certification (error
 * 1213), which counts here as "taken by the other".  On a single server
 * the second UPDATE waits for the first and then matches no row.  The
 * lease (SCHEMA_LOCK_LEASE_S) frees the row of a runner that died; a
 * runner renews nothing, so a migration must finish within it. */
#define SCHEMA_LOCK_LEASE_S 600

static const char *const create_lock_sql =
    "CREATE TABLE IF NOT EXISTS `schema_lock` ("
    " `name` varchar(64) NOT NULL,"
    " `holder` varchar(255) DEFAULT NULL,"
    " `expires_at` datetime(6) DEFAULT NULL,"
    " PRIMARY KEY (`name`)"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/* One statement in its own transaction; 1213/1205 (lost to another
 * runner, or certification) -> *lost = 1, ERR_OK. */
static enum err_code lock_stmt(struct db_conn *c, const char *sql,
                               const struct db_val *p, int np,
                               int64_t *affected, int *lost, struct err *e)
{
  enum err_code rc = db_exec_params(c, sql, p, np, affected, e);
  *lost = 0;
  if (rc == ERR_DB && db_errno_retryable(db_last_errno(c))) {
    *lost = 1;
    return ERR_OK;
  }
  return rc;
}

static void lock_holder(char *buf, size_t cap)
{
  char host[128] = "?";
  if (gethostname(host, sizeof(host)) != 0)
    snprintf(host, sizeof(host), "?");
  host[sizeof(host) - 1] = 0;
  snprintf(buf, cap, "%s:%ld:%ld", host, (long)getpid(),
           (long)(now_ms() * 1000.0) % 1000000000L);
}

static enum err_code take_lock(struct db_conn *c, char *holder, size_t cap,
                               struct err *e)
{
  enum err_code rc;
  int lost = 0;
  /* a read sees what other nodes committed (ignored where unknown) */
  struct err ig = {0};
  if (db_exec(c, "SET SESSION wsrep_sync_wait = 1", NULL, &ig) != ERR_OK)
    LOG_D("schema", "wsrep_sync_wait not set: %s", ig.msg);
  if ((rc = db_exec(c, create_lock_sql, NULL, e)) != ERR_OK) {
    err_prefix(e, "creating schema_lock");
    return rc;
  }
  lock_holder(holder, cap);
  struct db_val ph[2] = {DB_V_STR(holder), DB_V_INT(SCHEMA_LOCK_LEASE_S)};
  double deadline = now_ms() + SCHEMA_LOCK_WAIT_S * 1000.0;
  for (int i = 0;; i++) {
    rc = lock_stmt(c, "INSERT IGNORE INTO `schema_lock` (`name`) VALUES "
                      "('schema')",
                   NULL, 0, NULL, &lost, e);
    int64_t got = 0;
    if (rc == ERR_OK && !lost)
      rc = lock_stmt(c,
                     "UPDATE `schema_lock` SET `holder` = ?, `expires_at` = "
                     "UTC_TIMESTAMP(6) + INTERVAL ? SECOND WHERE `name` = "
                     "'schema' AND (`holder` IS NULL OR `expires_at` < "
                     "UTC_TIMESTAMP(6))",
                     ph, 2, &got, &lost, e);
    if (rc != ERR_OK) {
      err_prefix(e, "taking the schema lock");
      return rc;
    }
    if (!lost && got == 1)
      return ERR_OK;
    if (now_ms() > deadline)
      return err_set(e, ERR_TIMEOUT,
                     "another mlopsd db init has held the schema lock (table "
                     "schema_lock) for %d s",
                     SCHEMA_LOCK_WAIT_S);
    struct timespec ts = {0, (long)(50 + (i % 5) * 50) * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void drop_lock(struct db_conn *c, const char *holder)
{
  struct err e2 = {0};
  struct db_val p[1] = {DB_V_STR(holder)};
  for (int i = 0; i < 5; i++) {
    int lost = 0;
    if (lock_stmt(c,
                  "UPDATE `schema_lock` SET `holder` = NULL, `expires_at` = "
                  "NULL WHERE `name` = 'schema' AND `holder` = ?",
                  p, 1, NULL, &lost, &e2) != ERR_OK) {
      LOG_W("schema", "releasing the schema lock: %s (it expires in %d s)",
            e2.msg, SCHEMA_LOCK_LEASE_S);
      return;
    }
    if (!lost)
      return;
  }
}

enum err_code schema_migrate(struct db_conn *c, const char *dir,
                             schema_applied_fn cb, void *user,
                             struct schema_result *res, struct err *e)
{
  if (res)
    memset(res, 0, sizeof(*res));
  struct schema_file *files = NULL;
  int nf = 0;
  enum err_code rc = schema_scan(dir, &files, &nf, e);
  if (rc != ERR_OK)
    return rc;
  if (nf == 0) {
    free(files);
    return err_set(e, ERR_NOTFOUND, "no NNN_name.sql migrations in %s", dir);
  }
  char holder[256];
  rc = take_lock(c, holder, sizeof(holder), e);
  if (rc != ERR_OK) {
    free(files);
    return rc;
  }
  struct applied_list l = {0};
  int applied = 0, top_new = 0;
  rc = load_applied(c, 0, &l, e);
  if (rc == ERR_OK)
    rc = verify(dir, files, nf, &l, e);
  for (int i = 0; rc == ERR_OK && i < nf; i++) {
    if (is_applied(&l, files[i].version))
      continue;
    double t0 = now_ms();
    int nst = 0;
    rc = apply_one(c, &files[i], &nst, e);
    if (rc != ERR_OK)
      break;
    applied++;
    if (files[i].version > top_new)
      top_new = files[i].version;
    LOG_D("schema", "applied %s statements=%d", files[i].name, nst);
    if (cb)
      cb(user, &files[i], nst, now_ms() - t0);
  }
  if (res) {
    res->applied = applied;
    res->total = l.n + applied;
    for (int i = 0; i < l.n; i++)
      if (l.v[i].version > res->version)
        res->version = l.v[i].version;
    if (top_new > res->version)
      res->version = top_new;
  }
  drop_lock(c, holder);
  free(l.v);
  free(files);
  return rc;
}

enum err_code schema_status(struct db_conn *c, const char *dir,
                            int *current, int *pending, struct err *e)
{
  *current = 0;
  *pending = 0;
  struct schema_file *files = NULL;
  int nf = 0;
  enum err_code rc = schema_scan(dir, &files, &nf, e);
  if (rc != ERR_OK)
    return rc;
  struct applied_list l = {0};
  rc = load_applied(c, 1, &l, e);
  if (rc == ERR_OK)
    rc = verify(dir, files, nf, &l, e);
  if (rc == ERR_OK) {
    for (int i = 0; i < l.n; i++)
      if (l.v[i].version > *current)
        *current = l.v[i].version;
    for (int i = 0; i < nf; i++)
      if (!is_applied(&l, files[i].version))
        (*pending)++;
  }
  free(l.v);
  free(files);
  return rc;
}
