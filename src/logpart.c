/* logpart.c - time partitions, retention and disk figures of the
 * prediction log (see logpart.h, docs/operations.md "Disk").
 *
 * Why it looks like this:
 *
 * - Partition bounds are read back from information_schema.PARTITIONS on
 *   every pass instead of being remembered: a second daemon on the same
 *   database, a restart, or an operator's own ALTER all leave the table as
 *   the only truth.  Two daemons racing on the same split lose one ALTER
 *   with "duplicate partition name" / "VALUES LESS THAN must be strictly
 *   increasing", which the next pass sees as done.
 *
 * - New partitions come from splitting `pmax`, which is empty in steady
 *   state (rows only land there when no partition covers them), so the
 *   split touches no rows.  Dropping a partition unlinks its file: no undo
 *   log, no purge, no fragmentation, whatever the number of rows.
 *
 * - lock_wait_timeout is short on the DDL session: an ALTER waiting for a
 *   metadata lock blocks every insert queued behind it, so it had better
 *   give up early (and try again next pass) than stall the log.
 *
 * - Growth per hour adds back what drops removed, so it is the insert
 *   rate in bytes, the figure the sizing rule needs.
 */
#include "mlopsd/logpart.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <zlib.h>

#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/plog.h"

#define MOD "logpart"
#define MAX_PARTS 4096
#define NSAMPLES 128
#define HOUR_S 3600
#define STR_(x) #x
#define STR(x) STR_(x)
#define DDL_PREFIX                                                            \
  "SET STATEMENT lock_wait_timeout = " STR(LOGPART_LOCK_WAIT_S) " FOR "

struct part {
  char name[72];
  int64_t bound; /* upper bound, epoch s; INT64_MAX for MAXVALUE */
  int64_t rows, data, index;
};

struct sample {
  double t;     /* monotonic seconds */
  double bytes; /* size + bytes dropped so far */
};

struct logpart {
  struct logpart_opts o;
  char table[72];
  char *archive_dir, *spool_dir;

  pthread_t th;
  int started;
  pthread_mutex_t mu; /* stop flag, stats */
  pthread_cond_t cv;
  int stop;

  struct logpart_stats st;   /* under mu */
  double dropped_bytes;      /* cumulative, for growth */
  struct sample samples[NSAMPLES];
  int nsamples;
  char datadir[512];
  int warned_not_part, warned_disk;

  struct part *parts; /* scratch for one pass */
  int nparts;

  struct metrics_gauge *g[9];
  struct metrics_counter *c_created, *c_dropped, *c_errors;
};

/* ---- helpers ------------------------------------------------------------ */

static double mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t free_bytes(const char *path)
{
  struct statvfs v;
  if (!path || !path[0] || statvfs(path, &v) != 0)
    return -1;
  return (int64_t)v.f_bavail * (int64_t)v.f_frsize;
}

/* Partition name after its first second, UTC. */
static void part_name(char *out, size_t cap, int64_t lower, long interval)
{
  struct tm tm;
  time_t t = (time_t)lower;
  gmtime_r(&t, &tm);
  if (interval % 86400 == 0 && lower % 86400 == 0)
    strftime(out, cap, "p%Y%m%d", &tm);
  else
    strftime(out, cap, "p%Y%m%d_%H%M%S", &tm);
}

static int parts_cb(void *user, const struct db_row *r)
{
  struct logpart *lp = user;
  size_t len;
  if (lp->nparts >= MAX_PARTS)
    return 0;
  const char *name = db_row_str(r, 0, &len);
  if (!name) /* not partitioned: one row with NULL names */
    return 0;
  struct part *p = &lp->parts[lp->nparts++];
  snprintf(p->name, sizeof(p->name), "%.*s", (int)len, name);
  const char *d = db_row_str(r, 1, &len);
  if (!d || (len == 8 && strncmp(d, "MAXVALUE", 8) == 0))
    p->bound = INT64_MAX;
  else
    p->bound = strtoll(d, NULL, 10);
  p->rows = db_row_i64(r, 2);
  p->data = db_row_i64(r, 3);
  p->index = db_row_i64(r, 4);
  return 0;
}

static enum err_code read_parts(struct logpart *lp, struct db_conn *c,
                                struct err *e)
{
  static const char sql[] =
      "SELECT PARTITION_NAME, PARTITION_DESCRIPTION, TABLE_ROWS, "
      "DATA_LENGTH, INDEX_LENGTH FROM information_schema.PARTITIONS "
      "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? "
      "ORDER BY PARTITION_ORDINAL_POSITION";
  struct db_val p = DB_V_STR(lp->table);
  lp->nparts = 0;
  return db_query(c, sql, &p, 1, parts_cb, lp, NULL, e);
}

static int has_name(const struct logpart *lp, const char *name)
{
  for (int i = 0; i < lp->nparts; i++)
    if (strcmp(lp->parts[i].name, name) == 0)
      return 1;
  return 0;
}

/* ---- archive ------------------------------------------------------------ */

struct arch {
  gzFile gz;
  int64_t rows;
  int failed;
  char *buf;
  size_t cap;
};

static int arch_put(struct arch *a, const char *s, size_t n)
{
  if (a->failed)
    return -1;
  if (n && gzwrite(a->gz, s, (unsigned)n) != (int)n) {
    a->failed = 1;
    return -1;
  }
  return 0;
}

/* A JSON string; the log's strings are UTF-8 already (plog cuts at UTF-8
 * boundaries), so only quotes, backslashes and control bytes change. */
static int arch_str(struct arch *a, const char *s, size_t n)
{
  char esc[8];
  size_t from = 0;
  if (arch_put(a, "\"", 1))
    return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch >= 0x20 && ch != '"' && ch != '\\')
      continue;
    arch_put(a, s + from, i - from);
    int k = ch == '"'    ? snprintf(esc, sizeof(esc), "\\\"")
            : ch == '\\' ? snprintf(esc, sizeof(esc), "\\\\")
                         : snprintf(esc, sizeof(esc), "\\u%04x", ch);
    arch_put(a, esc, (size_t)k);
    from = i + 1;
  }
  arch_put(a, s + from, n - from);
  return arch_put(a, "\"", 1);
}

static const char *const ARCH_COLS[] = {
    "id",         "customer_id", "features",  "prediction",
    "confidence", "elapsed_ms",  "created_at", "model_name",
    "model_version", "log_source", "log_seq"};
#define ARCH_NCOLS 11

static int arch_row(void *user, const struct db_row *r)
{
  struct arch *a = user;
  char num[64];
  arch_put(a, "{", 1);
  for (int i = 0; i < ARCH_NCOLS; i++) {
    size_t len;
    int k = snprintf(num, sizeof(num), "%s\"%s\":", i ? "," : "",
                     ARCH_COLS[i]);
    arch_put(a, num, (size_t)k);
    if (db_row_is_null(r, i)) {
      arch_put(a, "null", 4);
      continue;
    }
    const char *s = db_row_str(r, i, &len);
    switch (i) {
    case 2: /* features: a JSON value already */
      arch_put(a, s, len);
      break;
    case 1:
    case 3:
    case 6:
    case 7:
      arch_str(a, s, len);
      break;
    default: /* numbers, as the server prints them */
      arch_put(a, s, len);
    }
  }
  arch_put(a, "}\n", 2);
  a->rows++;
  return a->failed ? 1 : 0;
}

static enum err_code fsync_dir(const char *dir, struct err *e)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return err_set(e, ERR_IO, "archive: %s: %s", dir, strerror(errno));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0)
    return err_set(e, ERR_IO, "archive: fsync %s: %s", dir, strerror(errno));
  return ERR_OK;
}

/* Write partition p (covering [lower, p->bound)) to
 * archive_dir/TABLE.NAME.jsonl.gz and append a manifest line.  The file
 * appears complete or not at all (temp file, fsync, rename). */
static enum err_code archive_part(struct logpart *lp, struct db_conn *c,
                                  const struct part *p, int64_t lower,
                                  int64_t *rows, struct err *e)
{
  char path[1024], tmp[1100], sql[512], line[1536];
  struct arch a = {0};
  enum err_code rc;
  if (mkdir(lp->archive_dir, 0755) != 0 && errno != EEXIST)
    return err_set(e, ERR_IO, "archive: mkdir %s: %s", lp->archive_dir,
                   strerror(errno));
  snprintf(path, sizeof(path), "%s/%s.%s.jsonl.gz", lp->archive_dir,
           lp->table, p->name);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  a.gz = gzopen(tmp, "wb6");
  if (!a.gz)
    return err_set(e, ERR_IO, "archive: %s: %s", tmp, strerror(errno));
  snprintf(sql, sizeof(sql),
           "SET STATEMENT time_zone = '+00:00' FOR "
           "SELECT id, customer_id, features, prediction, confidence, "
           "elapsed_ms, DATE_FORMAT(created_at, '%%Y-%%m-%%d %%H:%%i:%%s'), "
           "model_name, model_version, log_source, log_seq FROM %s "
           "PARTITION (%s) ORDER BY id",
           lp->table, p->name);
  rc = db_query(c, sql, NULL, 0, arch_row, &a, NULL, e);
  int zr = gzclose(a.gz);
  if (rc == ERR_OK && (a.failed || zr != Z_OK))
    rc = err_set(e, ERR_IO, "archive: writing %s failed", tmp);
  if (rc == ERR_OK) {
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
      rc = err_set(e, ERR_IO, "archive: fsync %s: %s", tmp, strerror(errno));
    if (fd >= 0)
      close(fd);
  }
  if (rc == ERR_OK && rename(tmp, path) != 0)
    rc = err_set(e, ERR_IO, "archive: rename %s: %s", tmp, strerror(errno));
  if (rc != ERR_OK) {
    unlink(tmp);
    return rc;
  }
  /* manifest: one JSON line per archived partition */
  char from[32] = "null", to[32];
  struct tm tm;
  time_t t = (time_t)lower;
  gmtime_r(&t, &tm);
  if (lower > 0)
    strftime(from, sizeof(from), "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
  t = (time_t)p->bound;
  gmtime_r(&t, &tm);
  strftime(to, sizeof(to), "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  int n = snprintf(line, sizeof(line),
                   "{\"table\":\"%s\",\"partition\":\"%s\",\"from\":%s,"
                   "\"to\":\"%s\",\"rows\":%" PRId64 ",\"file\":\"%s\","
                   "\"archived_at\":%lld}\n",
                   lp->table, p->name, from, to, a.rows, base,
                   (long long)time(NULL));
  snprintf(path, sizeof(path), "%s/manifest.jsonl", lp->archive_dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    return err_set(e, ERR_IO, "archive: %s: %s", path, strerror(errno));
  if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
    int er = errno;
    close(fd);
    return err_set(e, ERR_IO, "archive: %s: %s", path, strerror(er));
  }
  close(fd);
  rc = fsync_dir(lp->archive_dir, e);
  *rows = a.rows;
  return rc;
}

/* ---- one pass ------------------------------------------------------------ */

static enum err_code split(struct logpart *lp, struct db_conn *c, time_t now,
                           int *created, struct err *e)
{
  int64_t iv = lp->o.interval_s;
  int64_t cur = (int64_t)now / iv * iv;
  int64_t top = cur + (int64_t)(lp->o.ahead + 1) * iv;
  int64_t maxb = INT64_MIN;
  int has_pmax = 0;
  for (int i = 0; i < lp->nparts; i++) {
    if (lp->parts[i].bound == INT64_MAX)
      has_pmax = strcmp(lp->parts[i].name, "pmax") == 0 ? 1 : has_pmax;
    else if (lp->parts[i].bound > maxb)
      maxb = lp->parts[i].bound;
  }
  if (lp->nparts > 0 && lp->parts[lp->nparts - 1].bound == INT64_MAX &&
      !has_pmax)
    return err_set(e, ERR_STATE,
                   "%s: the MAXVALUE partition is not named pmax; "
                   "partitions are left alone",
                   lp->table);
  int64_t b = maxb == INT64_MIN ? cur + iv : (maxb / iv + 1) * iv;
  if (b > top)
    return ERR_OK;
  size_t cap = 256 + (size_t)LOGPART_MAX_SPLIT * 96;
  char *sql = malloc(cap);
  if (!sql)
    return err_set(e, ERR_NOMEM, "logpart: out of memory");
  size_t n = (size_t)snprintf(sql, cap, "%sALTER TABLE %s %s", DDL_PREFIX,
                              lp->table,
                              has_pmax ? "REORGANIZE PARTITION pmax INTO ("
                                       : "ADD PARTITION (");
  int k = 0;
  for (; b <= top && k < LOGPART_MAX_SPLIT; b += iv, k++) {
    char name[64];
    part_name(name, sizeof(name), b - iv, (long)iv);
    if (has_name(lp, name))
      snprintf(name, sizeof(name), "p%" PRId64, b);
    n += (size_t)snprintf(sql + n, cap - n,
                          "%sPARTITION %s VALUES LESS THAN (%" PRId64 ")",
                          k ? ", " : "", name, b);
  }
  if (has_pmax)
    n += (size_t)snprintf(sql + n, cap - n,
                          ", PARTITION pmax VALUES LESS THAN MAXVALUE");
  snprintf(sql + n, cap - n, ")");
  double t0 = mono_s();
  enum err_code rc = db_exec(c, sql, NULL, e);
  free(sql);
  if (rc == ERR_OK) {
    *created = k;
    LOG_I(MOD, "table=%s created=%d partitions up to %" PRId64 " ms=%.0f",
          lp->table, k, b - iv, (mono_s() - t0) * 1e3);
  }
  return rc;
}

/* The shadow challenger's rows (PLOG_SHADOW_TABLE, not partitioned)
 * follow their log rows out: those older than the newest bound dropped,
 * in slices so no statement holds many row locks.  A failure is logged
 * and retried at the next drop (the rows are only kept longer). */
static void drop_shadows(struct db_conn *c, int64_t bound)
{
  struct db_val p[1] = {DB_V_INT(bound)};
  int64_t n = 0, total = 0;
  struct err e = {0};
  do {
    if (db_exec_params(c, "DELETE FROM " PLOG_SHADOW_TABLE " WHERE "
                          "created_at < FROM_UNIXTIME(?) LIMIT 10000",
                       p, 1, &n, &e) != ERR_OK) {
      LOG_W(MOD, "table=%s rows older than the dropped partitions not "
                 "deleted (retried at the next drop): %s",
            PLOG_SHADOW_TABLE, e.msg);
      return;
    }
    total += n;
  } while (n == 10000);
  if (total)
    LOG_I(MOD, "table=%s deleted=%" PRId64 " rows older than the dropped "
               "partitions",
          PLOG_SHADOW_TABLE, total);
}

static enum err_code drop_old(struct logpart *lp, struct db_conn *c,
                              time_t now, struct logpart_result *r,
                              struct err *e)
{
  int64_t cutoff = (int64_t)now - lp->o.retention_s;
  char *sql = NULL;
  size_t cap = 0, n = 0;
  enum err_code rc = ERR_OK;
  int k = 0;
  double bytes = 0;
  int64_t rows = 0;
  /* keep at least one finite partition below pmax: with every one gone,
   * rows would have nowhere to go but pmax until the next split */
  int finite = 0;
  for (int i = 0; i < lp->nparts; i++)
    finite += lp->parts[i].bound != INT64_MAX;
  for (int i = 0; i < lp->nparts && finite - k > 1; i++) {
    const struct part *p = &lp->parts[i];
    if (p->bound == INT64_MAX || p->bound > cutoff)
      break;
    int64_t nrows = p->rows;
    if (lp->archive_dir) {
      /* the lowest partition also holds every older row */
      int64_t lower = i > 0 ? lp->parts[i - 1].bound : 0;
      rc = archive_part(lp, c, p, lower, &nrows, e);
      if (rc != ERR_OK)
        break; /* never drop what could not be archived */
      pthread_mutex_lock(&lp->mu);
      lp->st.archived++;
      pthread_mutex_unlock(&lp->mu);
    }
    if (n + 100 > cap) {
      cap = cap ? cap * 2 : 1024;
      char *ns = realloc(sql, cap);
      if (!ns) {
        free(sql);
        return err_set(e, ERR_NOMEM, "logpart: out of memory");
      }
      sql = ns;
    }
    if (!k)
      n = (size_t)snprintf(sql, cap, "%sALTER TABLE %s DROP PARTITION ",
                           DDL_PREFIX, lp->table);
    n += (size_t)snprintf(sql + n, cap - n, "%s%s", k ? ", " : "", p->name);
    bytes += (double)(p->data + p->index);
    rows += nrows;
    k++;
  }
  if (k) {
    struct err e2 = {0};
    double t0 = mono_s();
    enum err_code rc2 = db_exec(c, sql, NULL, &e2);
    if (rc2 == ERR_OK) {
      r->dropped = k;
      r->dropped_rows = rows;
      pthread_mutex_lock(&lp->mu);
      lp->dropped_bytes += bytes;
      pthread_mutex_unlock(&lp->mu);
      LOG_I(MOD, "table=%s dropped=%d partitions rows=%" PRId64
                 " older_than=%" PRId64 " ms=%.0f",
            lp->table, k, rows, cutoff, (mono_s() - t0) * 1e3);
      drop_shadows(c, lp->parts[k - 1].bound);
    } else if (rc == ERR_OK) {
      rc = rc2;
      *e = e2;
    }
  }
  free(sql);
  return rc;
}

static int datadir_cb(void *user, const struct db_row *r)
{
  size_t len;
  const char *s = db_row_str(r, 0, &len);
  if (s)
    snprintf(user, 512, "%.*s", (int)len, s);
  return 0;
}

static void refresh(struct logpart *lp, struct db_conn *c, time_t now)
{
  struct err e = {0};
  int64_t disk = -1;
  struct logpart_stats s;
  pthread_mutex_lock(&lp->mu);
  s = lp->st;
  pthread_mutex_unlock(&lp->mu);
  s.partitions = s.ahead = 0;
  s.rows = s.data_bytes = s.index_bytes = 0;
  s.oldest_bound = 0;
  if (read_parts(lp, c, &e) == ERR_OK) {
    for (int i = 0; i < lp->nparts; i++) {
      const struct part *p = &lp->parts[i];
      s.rows += p->rows;
      s.data_bytes += p->data;
      s.index_bytes += p->index;
      if (p->bound == INT64_MAX)
        continue;
      if (!s.partitions)
        s.oldest_bound = p->bound;
      s.partitions++;
      if (p->bound - lp->o.interval_s >= (int64_t)now)
        s.ahead++;
    }
  }
  /* what the files really take (page compression punches holes); needs
   * the PROCESS privilege, else data + index */
  {
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT COALESCE(SUM(ALLOCATED_SIZE), -1) FROM "
             "information_schema.INNODB_SYS_TABLESPACES WHERE "
             "NAME = CONCAT(DATABASE(), '/%s') OR "
             "NAME LIKE CONCAT(DATABASE(), '/%s#P#%%')",
             lp->table, lp->table);
    if (db_query_i64(c, sql, NULL, 0, &disk, &e) != ERR_OK) {
      disk = -1;
      if (!lp->warned_disk) {
        lp->warned_disk = 1;
        LOG_I(MOD, "allocated size of %s not readable (%s): figures use "
                   "data + index length",
              lp->table, e.msg);
      }
    }
  }
  s.disk_bytes = disk;
  if (lp->o.db_local && !lp->datadir[0] &&
      db_query(c, "SELECT @@datadir", NULL, 0, datadir_cb, lp->datadir, NULL,
               &e) != ERR_OK)
    lp->datadir[0] = 0;
  s.db_free_bytes = lp->o.db_local ? free_bytes(lp->datadir) : -1;
  s.spool_free_bytes = free_bytes(lp->spool_dir);

  /* growth: bytes now plus bytes dropped, over up to the last hour */
  double size = disk >= 0 ? (double)disk
                          : (double)(s.data_bytes + s.index_bytes);
  double t = mono_s();
  pthread_mutex_lock(&lp->mu);
  double x = size + lp->dropped_bytes;
  if (lp->nsamples == NSAMPLES) {
    memmove(lp->samples, lp->samples + 1,
            (NSAMPLES - 1) * sizeof(lp->samples[0]));
    lp->nsamples--;
  }
  lp->samples[lp->nsamples++] = (struct sample){t, x};
  while (lp->nsamples > 2 && t - lp->samples[1].t >= HOUR_S) {
    memmove(lp->samples, lp->samples + 1,
            (size_t)(lp->nsamples - 1) * sizeof(lp->samples[0]));
    lp->nsamples--;
  }
  double dt = t - lp->samples[0].t;
  s.growth_bytes_h =
      lp->nsamples >= 2 && dt > 0
          ? (x - lp->samples[0].bytes) / dt * HOUR_S
          : NAN;
  s.created = lp->st.created;
  s.dropped = lp->st.dropped;
  s.archived = lp->st.archived;
  s.errors = lp->st.errors;
  s.passes = lp->st.passes;
  memcpy(s.last_error, lp->st.last_error, sizeof(s.last_error));
  lp->st = s;
  pthread_mutex_unlock(&lp->mu);
}

enum err_code logpart_run(struct logpart *lp, time_t now,
                          struct logpart_result *r, struct err *e)
{
  struct logpart_result rr = {0};
  struct db_conn *c = NULL;
  enum err_code rc;
  if (!r)
    r = &rr;
  memset(r, 0, sizeof(*r));
  rc = db_acquire(lp->o.pool, 2000, &c, e);
  if (rc != ERR_OK)
    goto out;
  /* settings go with each statement (SET STATEMENT ... FOR), never on
   * the session: the connection goes back to a pool others use */
  rc = read_parts(lp, c, e);
  if (rc == ERR_OK && lp->nparts == 0) {
    rc = err_set(e, ERR_STATE,
                 "table %s is not partitioned: run `mlopsd db init` "
                 "(migration 040_plog_partitions.sql)",
                 lp->table);
  }
  if (rc == ERR_OK)
    rc = split(lp, c, now, &r->created, e);
  if (rc == ERR_OK && r->created)
    rc = read_parts(lp, c, e);
  if (rc == ERR_OK && lp->o.retention_s > 0)
    rc = drop_old(lp, c, now, r, e);
  refresh(lp, c, now);
out:
  pthread_mutex_lock(&lp->mu);
  lp->st.partitioned = !(rc == ERR_STATE);
  lp->st.created += (uint64_t)r->created;
  lp->st.dropped += (uint64_t)r->dropped;
  lp->st.passes++;
  if (rc != ERR_OK) {
    lp->st.errors++;
    snprintf(lp->st.last_error, sizeof(lp->st.last_error), "%s", e->msg);
  }
  pthread_mutex_unlock(&lp->mu);
  if (lp->c_created && r->created)
    metrics_counter_add(lp->c_created, (uint64_t)r->created);
  if (lp->c_dropped && r->dropped)
    metrics_counter_add(lp->c_dropped, (uint64_t)r->dropped);
  if (lp->c_errors && rc != ERR_OK)
    metrics_counter_add(lp->c_errors, 1);
  if (c)
    db_release(lp->o.pool, c);
  return rc;
}

/* ---- thread ---------------------------------------------------------- */

static void *run_thread(void *arg)
{
  struct logpart *lp = arg;
  enum err_code last_rc = ERR_OK;
  pthread_mutex_lock(&lp->mu);
  while (!lp->stop) {
    pthread_mutex_unlock(&lp->mu);
    struct err e = {0};
    enum err_code rc = logpart_run(lp, time(NULL), NULL, &e);
    if (rc != ERR_OK && (rc != last_rc || rc != ERR_DB_CONN)) {
      if (rc == ERR_STATE) {
        if (!lp->warned_not_part)
          LOG_W(MOD, "%s", e.msg);
        lp->warned_not_part = 1;
      } else {
        LOG_W(MOD, "maintenance of %s: %s (next try in %d s)", lp->table,
              e.msg, lp->o.check_s);
      }
    }
    last_rc = rc;
    pthread_mutex_lock(&lp->mu);
    if (lp->stop)
      break;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += lp->o.check_s;
    while (!lp->stop &&
           pthread_cond_timedwait(&lp->cv, &lp->mu, &ts) != ETIMEDOUT)
      ;
  }
  pthread_mutex_unlock(&lp->mu);
  return NULL;
}

/* ---- metrics ---------------------------------------------------------- */

static double gv(struct logpart *lp, int which)
{
  struct logpart_stats s;
  logpart_get_stats(lp, &s);
  switch (which) {
  case 0:
    return (double)(s.data_bytes + s.index_bytes);
  case 1:
    return s.disk_bytes >= 0 ? (double)s.disk_bytes : NAN;
  case 2:
    return (double)s.rows;
  case 3:
    return s.growth_bytes_h;
  case 4:
    return (double)s.partitions;
  case 5:
    return (double)s.ahead;
  case 6:
    return s.oldest_bound ? (double)s.oldest_bound : NAN;
  case 7:
    return s.db_free_bytes >= 0 ? (double)s.db_free_bytes : NAN;
  default:
    return s.spool_free_bytes >= 0 ? (double)s.spool_free_bytes : NAN;
  }
}
static double g0(void *a) { return gv(a, 0); }
static double g1(void *a) { return gv(a, 1); }
static double g2(void *a) { return gv(a, 2); }
static double g3(void *a) { return gv(a, 3); }
static double g4(void *a) { return gv(a, 4); }
static double g5(void *a) { return gv(a, 5); }
static double g6(void *a) { return gv(a, 6); }
static double g7(void *a) { return gv(a, 7); }
static double g8(void *a) { return gv(a, 8); }

static void metrics_up(struct logpart *lp)
{
  static const struct {
    const char *name, *help;
    metrics_gauge_fn fn;
  } G[9] = {
      {"mlopsd_plog_table_bytes",
       "Prediction log table: data + index pages in use (InnoDB "
       "statistics).",
       g0},
      {"mlopsd_plog_table_disk_bytes",
       "Prediction log table: bytes allocated on disk (after page "
       "compression).",
       g1},
      {"mlopsd_plog_table_rows", "Prediction log table: rows (estimate).",
       g2},
      {"mlopsd_plog_table_growth_bytes_per_hour",
       "Prediction log table: growth over the last hour, not counting "
       "dropped partitions.",
       g3},
      {"mlopsd_plog_partitions",
       "Prediction log table: time partitions (without pmax).", g4},
      {"mlopsd_plog_partitions_ahead",
       "Prediction log table: partitions made ahead of now.", g5},
      {"mlopsd_plog_oldest_partition_end_seconds",
       "Prediction log table: upper bound (epoch s) of the oldest "
       "partition.",
       g6},
      {"mlopsd_db_disk_free_bytes",
       "Free bytes on the file system of MariaDB's datadir (when local).",
       g7},
      {"mlopsd_spool_disk_free_bytes",
       "Free bytes on the file system of the prediction log spool.", g8},
  };
  struct err e = {0};
  struct metrics *m = lp->o.metrics;
  if (!m)
    return;
  for (int i = 0; i < 9; i++)
    if (metrics_gauge_fn_new(m, G[i].name, G[i].help, NULL, G[i].fn, lp,
                             &lp->g[i], &e) != ERR_OK) {
      LOG_W(MOD, "metrics not registered: %s", e.msg);
      lp->g[i] = NULL;
    }
  if (metrics_counter_new(m, "mlopsd_plog_partitions_created_total",
                          "Prediction log partitions created.", NULL, 0,
                          &lp->c_created, &e) ||
      metrics_counter_new(m, "mlopsd_plog_partitions_dropped_total",
                          "Prediction log partitions dropped by retention.",
                          NULL, 0, &lp->c_dropped, &e) ||
      metrics_counter_new(m, "mlopsd_plog_maintenance_errors_total",
                          "Failed prediction log maintenance passes.", NULL,
                          0, &lp->c_errors, &e))
    LOG_W(MOD, "metrics not registered: %s", e.msg);
}

/* ---- lifecycle -------------------------------------------------------- */

enum err_code logpart_create(struct logpart **out,
                             const struct logpart_opts *o, struct err *e)
{
  *out = NULL;
  if (!o || !o->pool)
    return err_set(e, ERR_INVAL, "logpart: pool is required");
  const char *t = o->table ? o->table : PLOG_TABLE_DEFAULT;
  if (!db_ident_ok(t))
    return err_set(e, ERR_INVAL, "logpart: bad table name '%s'", t);
  if (o->interval_s < 0 || o->ahead < 0 || o->retention_s < 0 ||
      o->check_s < 0)
    return err_set(e, ERR_INVAL, "logpart: negative interval, ahead, "
                                 "retention or check period");
  struct logpart *lp = calloc(1, sizeof(*lp));
  if (!lp)
    return err_set(e, ERR_NOMEM, "logpart: out of memory");
  lp->o = *o;
  snprintf(lp->table, sizeof(lp->table), "%s", t);
  if (!lp->o.interval_s)
    lp->o.interval_s = 86400;
  if (!lp->o.ahead)
    lp->o.ahead = 3;
  if (!lp->o.check_s)
    lp->o.check_s = 60;
  lp->o.table = lp->table;
  if (o->archive_dir && o->archive_dir[0])
    lp->archive_dir = strdup(o->archive_dir);
  if (o->spool_dir && o->spool_dir[0])
    lp->spool_dir = strdup(o->spool_dir);
  lp->o.archive_dir = lp->archive_dir;
  lp->o.spool_dir = lp->spool_dir;
  lp->parts = calloc(MAX_PARTS, sizeof(*lp->parts));
  if (!lp->parts || (o->archive_dir && o->archive_dir[0] && !lp->archive_dir) ||
      (o->spool_dir && o->spool_dir[0] && !lp->spool_dir)) {
    free(lp->parts);
    free(lp->archive_dir);
    free(lp->spool_dir);
    free(lp);
    return err_set(e, ERR_NOMEM, "logpart: out of memory");
  }
  pthread_mutex_init(&lp->mu, NULL);
  pthread_cond_init(&lp->cv, NULL);
  lp->st.growth_bytes_h = NAN;
  lp->st.disk_bytes = lp->st.db_free_bytes = lp->st.spool_free_bytes = -1;
  lp->st.partitioned = 1;
  metrics_up(lp);
  *out = lp;
  return ERR_OK;
}

enum err_code logpart_start(struct logpart *lp, struct err *e)
{
  if (lp->started)
    return ERR_OK;
  lp->stop = 0;
  if (pthread_create(&lp->th, NULL, run_thread, lp) != 0)
    return err_set(e, ERR_INTERNAL, "logpart: cannot start thread");
  lp->started = 1;
  return ERR_OK;
}

void logpart_stop(struct logpart *lp)
{
  if (!lp || !lp->started)
    return;
  pthread_mutex_lock(&lp->mu);
  lp->stop = 1;
  pthread_cond_broadcast(&lp->cv);
  pthread_mutex_unlock(&lp->mu);
  pthread_join(lp->th, NULL);
  lp->started = 0;
}

void logpart_destroy(struct logpart *lp)
{
  if (!lp)
    return;
  logpart_stop(lp);
  for (int i = 0; i < 9; i++)
    if (lp->g[i])
      metrics_gauge_fn_detach(lp->g[i]);
  pthread_cond_destroy(&lp->cv);
  pthread_mutex_destroy(&lp->mu);
  free(lp->parts);
  free(lp->archive_dir);
  free(lp->spool_dir);
  free(lp);
}

void logpart_get_stats(struct logpart *lp, struct logpart_stats *st)
{
  pthread_mutex_lock(&lp->mu);
  *st = lp->st;
  pthread_mutex_unlock(&lp->mu);
}

/* ---- configuration ------------------------------------------------------ */

enum err_code logpart_from_cfg(const struct cfg *c, struct db_pool *pool,
                               struct metrics *m, struct logpart **out,
                               struct err *e)
{
  struct logpart_opts o = {0};
  o.pool = pool;
  o.metrics = m;
  o.interval_s = c->log_partition_s;
  o.ahead = c->log_partitions_ahead;
  o.retention_s = c->log_retention_s > 0
                      ? c->log_retention_s
                      : (long)c->log_retention_days * 86400L;
  o.archive_dir = c->log_archive_dir;
  o.spool_dir = c->server_spool_dir;
  o.check_s = c->log_maintenance_s;
  o.db_local = c->db_socket[0] || strcmp(c->db_host, "127.0.0.1") == 0 ||
               strcmp(c->db_host, "localhost") == 0 ||
               strcmp(c->db_host, "::1") == 0;
  return logpart_create(out, &o, e);
}

/* ---- loading an archive back ------------------------------------------ */

/* End of the JSON value starting at s (no validation beyond nesting and
 * strings: the line was written by archive_part), or NULL. */
static const char *value_end(const char *s, const char *end)
{
  int depth = 0, in_str = 0;
  for (const char *p = s; p < end; p++) {
    if (in_str) {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        in_str = 0;
      continue;
    }
    if (*p == '"')
      in_str = 1;
    else if (*p == '{' || *p == '[')
      depth++;
    else if (*p == '}' || *p == ']') {
      if (--depth == 0)
        return p + 1;
      if (depth < 0)
        return p;
    } else if (depth == 0 && (*p == ',' || *p == '\n'))
      return p;
  }
  return depth == 0 ? end : NULL;
}

#define LOAD_BATCH 500
static const char *const LOAD_COLS[ARCH_NCOLS] = {
    "id",         "customer_id", "features",  "prediction",
    "confidence", "elapsed_ms",  "created_at", "model_name",
    "model_version", "log_source", "log_seq"};

struct load_row {
  cJSON *j;
  char *feat;
};

static enum err_code load_flush(struct db_pool *pool, const char *table,
                                struct load_row *rows, int n, int64_t *added,
                                struct err *e)
{
  struct db_val *v = calloc((size_t)n * ARCH_NCOLS, sizeof(*v));
  struct db_conn *c = NULL;
  enum err_code rc;
  if (!v)
    return err_set(e, ERR_NOMEM, "load archive: out of memory");
  for (int i = 0; i < n; i++) {
    struct db_val *r = v + (size_t)i * ARCH_NCOLS;
    for (int k = 0; k < ARCH_NCOLS; k++) {
      const cJSON *x = cJSON_GetObjectItemCaseSensitive(rows[i].j,
                                                        LOAD_COLS[k]);
      if (k == 2)
        r[k] = DB_V_STR(rows[i].feat);
      else if (!x || cJSON_IsNull(x))
        r[k] = DB_V_NULL;
      else if (cJSON_IsString(x))
        r[k] = DB_V_STR(x->valuestring);
      else if (k == 4)
        r[k] = DB_V_DBL(x->valuedouble);
      else
        r[k] = DB_V_INT((int64_t)x->valuedouble);
    }
  }
  rc = db_acquire(pool, 5000, &c, e);
  /* created_at is UTC text in the archive */
  if (rc == ERR_OK)
    rc = db_exec(c, "SET time_zone = '+00:00'", NULL, e);
  int64_t aff = 0;
  if (rc == ERR_OK)
    rc = db_bulk_insert(c, table, LOAD_COLS, ARCH_NCOLS, v, n, LOAD_BATCH,
                        " ON DUPLICATE KEY UPDATE id = id", &aff, e);
  if (c) {
    struct err e2;
    if (db_exec(c, "SET time_zone = DEFAULT", NULL, &e2) != ERR_OK)
      LOG_W(MOD, "load archive: time_zone not restored: %s", e2.msg);
    db_release(pool, c);
  }
  free(v);
  /* affected counts 1 per new row and 0 per duplicate left as it was */
  if (rc == ERR_OK && added)
    *added += aff;
  return rc;
}

enum err_code logpart_load_archive(struct db_pool *pool, const char *path,
                                   const char *table, int64_t *rows,
                                   int64_t *added, struct err *e)
{
  const char *t = table ? table : PLOG_TABLE_DEFAULT;
  int64_t nrows = 0, nadded = 0;
  enum err_code rc = ERR_OK;
  if (!db_ident_ok(t))
    return err_set(e, ERR_INVAL, "load archive: bad table name '%s'", t);
  gzFile gz = gzopen(path, "rb");
  if (!gz)
    return err_set(e, ERR_IO, "load archive: %s: %s", path, strerror(errno));
  size_t cap = 1 << 16;
  char *line = malloc(cap);
  struct load_row *batch = calloc(LOAD_BATCH, sizeof(*batch));
  int nb = 0;
  long lineno = 0;
  if (!line || !batch) {
    rc = err_set(e, ERR_NOMEM, "load archive: out of memory");
    goto out;
  }
  for (;;) {
    size_t len = 0;
    int eof = 0;
    /* one line of any length (features JSON may be long) */
    for (;;) {
      if (!gzgets(gz, line + len, (int)(cap - len))) {
        eof = 1;
        break;
      }
      len += strlen(line + len);
      if (len && line[len - 1] == '\n')
        break;
      if (len + 1 >= cap) {
        char *nl = realloc(line, cap * 2);
        if (!nl) {
          rc = err_set(e, ERR_NOMEM, "load archive: out of memory");
          goto out;
        }
        line = nl;
        cap *= 2;
      }
    }
    if (eof && len == 0) {
      int zerr;
      const char *msg = gzerror(gz, &zerr);
      if (zerr != Z_OK && zerr != Z_STREAM_END)
        rc = err_set(e, ERR_IO, "load archive: %s: %s", path, msg);
      break;
    }
    lineno++;
    cJSON *j = cJSON_ParseWithLength(line, len);
    const char *f = strstr(line, "\"features\":");
    const char *fe = f ? value_end(f + 11, line + len) : NULL;
    if (!j || !cJSON_IsObject(j) || !fe) {
      cJSON_Delete(j);
      rc = err_set(e, ERR_PARSE, "%s:%ld: not a prediction log row", path,
                   lineno);
      break;
    }
    f += 11;
    batch[nb].j = j;
    batch[nb].feat = strndup(f, (size_t)(fe - f));
    if (!batch[nb].feat) {
      cJSON_Delete(j);
      rc = err_set(e, ERR_NOMEM, "load archive: out of memory");
      break;
    }
    nb++;
    nrows++;
    if (nb == LOAD_BATCH) {
      rc = load_flush(pool, t, batch, nb, &nadded, e);
      for (int i = 0; i < nb; i++) {
        cJSON_Delete(batch[i].j);
        free(batch[i].feat);
      }
      nb = 0;
      if (rc != ERR_OK)
        break;
    }
  }
  if (rc == ERR_OK && nb)
    rc = load_flush(pool, t, batch, nb, &nadded, e);
out:
  for (int i = 0; i < nb; i++) {
    cJSON_Delete(batch[i].j);
    free(batch[i].feat);
  }
  free(batch);
  free(line);
  gzclose(gz);
  if (rows)
    *rows = nrows;
  if (added)
    *added = nadded;
  return rc;
}
