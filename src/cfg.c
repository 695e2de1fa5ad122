/* cfg.c - the daemon configuration: one key table, a libyaml reader,
 * MLOPSD_SECTION_KEY environment overrides and secret resolution.
 *
 * Every key lives in cfg_keys[] below with its type, default, range,
 * reload flag, place in struct cfg and a one-line description (redis
 * static_configs).  Defaults are written there as YAML-like text and go
 * through the same setter as file and environment values, so a default can
 * never bypass validation and the table is the only place they live.
 *
 * The YAML is read with libyaml's event API: the file must be a mapping of
 * sections, each a mapping of scalar keys (block or flow style).  Every
 * problem stops the load with "FILE:LINE:COL: ..." taken from the event
 * marks (libyaml counts from 0; messages count from 1).  Secrets are never
 * read from the YAML: only from the environment or a password file.
 */
#include "mlopsd/cfg.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yaml.h>

#include "mlopsd/fsx.h"
#include "mlopsd/log.h"

#define CFG_DEFAULT_PATH "config/mlopsd.yaml"
#define CFG_FILE_MAX (1024 * 1024) /* a config file is small; cap reads */
#define PASSWORD_FILE_MAX 4096     /* read cap; the password's own limit
                                      is checked after the read */
#define CFG_GOT_MAX 48             /* bytes of a bad value quoted back */

enum cfg_type { CFG_STR, CFG_INT, CFG_BOOL, CFG_ENUM };

/* Extra checks on string values beyond the length. */
enum cfg_check {
  CFG_CK_ANY = 0,
  CFG_CK_NONEMPTY, /* a non-empty string */
  CFG_CK_LISTEN,   /* HOST:PORT, port 0..65535 */
  CFG_CK_ENVNAME,  /* an environment variable name, or "" */
  CFG_CK_DBNAME,   /* 1..64 of [A-Za-z0-9_]: safe to splice into SQL */
};

struct cfg_key {
  const char *section;
  const char *name;
  const char *full;         /* "section.key" */
  enum cfg_type type;
  const char *def;          /* default, as text; parsed like a file value */
  long long min, max;       /* CFG_INT */
  const char *const *names; /* CFG_ENUM: allowed values, NULL-terminated */
  int enum_str;             /* CFG_ENUM: store the name (char[]), not index */
  enum cfg_check check;     /* CFG_STR */
  int reloadable;           /* may change on reload without a restart */
  size_t off, size;         /* the member of struct cfg */
  const char *desc;
};

/* _Generic makes a key whose member has the wrong C type a compile error. */
#define CFG_MEM(m) offsetof(struct cfg, m)
#define CFG_STRSZ(m)                                                        \
  _Generic(&((struct cfg *)0)->m[0], char *: sizeof(((struct cfg *)0)->m))
#define CFG_INTSZ(m)                                                        \
  _Generic(((struct cfg *)0)->m, int: sizeof(int), long: sizeof(long))
#define CFG_ISZ(m) _Generic(((struct cfg *)0)->m, int: sizeof(int))

#define K_(sec, key, ty, def, lo, hi, nm, es, ck, rl, m, sz, desc)          \
  {sec, key, sec "." key, ty, def, lo, hi, nm, es, ck, rl, CFG_MEM(m), sz,  \
   desc}
#define K_STR(sec, key, m, def, ck, rl, desc)                               \
  K_(sec, key, CFG_STR, def, 0, 0, NULL, 0, ck, rl, m, CFG_STRSZ(m), desc)
#define K_INT(sec, key, m, def, lo, hi, rl, desc)                           \
  K_(sec, key, CFG_INT, def, lo, hi, NULL, 0, CFG_CK_ANY, rl, m,            \
     CFG_INTSZ(m), desc)
#define K_BOOL(sec, key, m, def, rl, desc)                                  \
  K_(sec, key, CFG_BOOL, def, 0, 1, NULL, 0, CFG_CK_ANY, rl, m, CFG_ISZ(m), \
     desc)
#define K_ENUM(sec, key, m, def, nm, rl, desc)                              \
  K_(sec, key, CFG_ENUM, def, 0, 0, nm, 0, CFG_CK_ANY, rl, m, CFG_ISZ(m),   \
     desc)
#define K_ENUMS(sec, key, m, def, nm, rl, desc)                             \
  K_(sec, key, CFG_ENUM, def, 0, 0, nm, 1, CFG_CK_ANY, rl, m, CFG_STRSZ(m), \
     desc)

/* Index order is the enum's value (log.h enum log_level / log_format). */
static const char *const cfg_level_names[] = {"error", "warn", "info",
                                              "debug", NULL};
static const char *const cfg_format_names[] = {"text", "json", NULL};
static const char *const cfg_policy_names[] = {"reject", "serve", NULL};
static const char *const cfg_durability_names[] = {"process", "fsync", NULL};
static const char *const cfg_role_names[] = {"all", "api", "scheduler", NULL};

#define KIB 1024LL
#define MIB (1024LL * 1024)
#define GIB (1024LL * 1024 * 1024)

static const char *const cfg_sections[] = {
    "server", "auth", "database", "scheduler", "models", "logging", NULL};
#define CFG_NSECTIONS 6

static const struct cfg_key cfg_keys[] = {
    /* server */
    K_STR("server", "listen", server_listen, "0.0.0.0:3000", CFG_CK_LISTEN, 0,
          "address and port of the HTTP server (HOST:PORT)"),
    K_ENUMS("server", "role", server_role, "all", cfg_role_names, 0,
            "what this daemon does: api (predictions, metadata, console, "
            "admin API; no DAGs), scheduler (DAGs and tasks; only /healthz, "
            "/livez, /readyz, /metrics) or all (both: one machine)"),
    K_INT("server", "threads", server_threads, "2", 1, 256, 0,
          "HTTP worker threads"),
    K_INT("server", "thread_nice", server_thread_nice, "0", -20, 19, 0,
          "nice of the HTTP worker threads; below the daemon's own needs "
          "CAP_SYS_NICE or RLIMIT_NICE (else logged, not applied)"),
    K_INT("server", "thread_slice_us", server_thread_slice_us, "0", 0,
          100000, 0,
          "scheduler time slice of the HTTP worker threads in us; 0 = the "
          "kernel's default (Linux 6.12+; the kernel raises 1..99 to 100)"),
    K_INT("server", "max_body_bytes", server_max_body_bytes, "1048576", KIB,
          GIB, 0, "largest request body accepted; larger gets 413"),
    K_INT("server", "max_connections", server_max_connections, "1024", 1,
          65535, 0, "concurrent HTTP connections; more are refused"),
    K_INT("server", "idle_timeout", server_idle_timeout_s, "30", 1, 3600, 0,
          "seconds before an idle or slow client is dropped"),
    K_STR("server", "default_model", server_default_model,
          "credit_score_classification", CFG_CK_NONEMPTY, 1,
          "model served by POST /predict"),
    K_ENUMS("server", "log_full_policy", server_log_full_policy, "reject",
            cfg_policy_names, 1,
            "when the prediction log and its spool are full: reject (503) "
            "or serve unlogged"),
    K_STR("server", "spool_dir", server_spool_dir, "var/spool",
          CFG_CK_NONEMPTY, 0,
          "on-disk spool for prediction log rows while MariaDB is away"),
    K_INT("server", "spool_max_bytes", server_spool_max_bytes, "268435456",
          MIB, 1024 * GIB, 0, "size cap of the spool directory"),
    K_ENUMS("server", "log_durability", server_log_durability, "process",
            cfg_durability_names, 0,
            "an answered prediction's log row survives: process (a crash or "
            "kill -9 of the daemon) or fsync (also a power loss: answers "
            "wait for a shared fdatasync)"),
    K_STR("server", "log_buffer_dir", server_log_buffer_dir, "", CFG_CK_ANY,
          0, "directory of the prediction log's buffer file plog-buffer "
             "(preallocated, about 30 MB); empty: server.spool_dir"),
    K_INT("server", "spool_min_free_bytes", server_spool_min_free_bytes, "0",
          0, 1024 * GIB, 0,
          "/readyz is not ready while the spool's file system has less "
          "free space; 0: 64 MiB or a quarter of the file system"),
    /* auth */
    K_STR("auth", "admin_token_env", auth_admin_token_env,
          "MLOPSD_ADMIN_TOKEN", CFG_CK_ENVNAME, 0,
          "environment variable holding the /api/v2 Bearer token (unset or "
          "empty: admin API off)"),
    K_BOOL("auth", "console_read_open", auth_console_read_open, "false", 0,
           "true: the read-only /api/v2 GET endpoints (what the web console "
           "shows) answer without the token; changes always need it"),
    /* database */
    K_STR("database", "host", db_host, "127.0.0.1", CFG_CK_NONEMPTY, 0,
          "MariaDB host name or address"),
    K_INT("database", "port", db_port, "3306", 1, 65535, 0,
          "MariaDB TCP port"),
    K_STR("database", "user", db_user, "root", CFG_CK_NONEMPTY, 0,
          "MariaDB user"),
    K_STR("database", "password_env", db_password_env,
          "MLOPSD_DATABASE_PASSWORD", CFG_CK_ENVNAME, 0,
          "environment variable holding the MariaDB password"),
    K_STR("database", "password_file", db_password_file, "", CFG_CK_ANY, 0,
          "file holding the MariaDB password (trailing newline stripped); "
          "wins over password_env"),
    K_STR("database", "name", db_name, "mlops", CFG_CK_DBNAME, 0,
          "database (schema) name"),
    K_STR("database", "socket", db_socket, "", CFG_CK_ANY, 0,
          "Unix socket path; empty means TCP to host:port"),
    K_INT("database", "pool", db_pool, "8", 1, 256, 0,
          "connections in the pool"),
    K_INT("database", "wsrep_sync_wait", db_wsrep_sync_wait, "1", 0, 15, 0,
          "Galera: wsrep_sync_wait of every connection (1: a read waits "
          "until this node has applied what the cluster committed before "
          "it, so a task sees what another node just wrote; 0: off); no "
          "effect on a server without Galera"),
    K_INT("database", "connect_timeout", db_connect_timeout_s, "5", 1, 300, 0,
          "seconds to wait for a connection"),
    /* scheduler */
    K_STR("scheduler", "dags_dir", sched_dags_dir, "config/dags",
          CFG_CK_NONEMPTY, 1, "directory of DAG files (*.yaml)"),
    K_STR("scheduler", "timezone", sched_timezone, "Asia/Seoul",
          CFG_CK_NONEMPTY, 0,
          "time zone of cron schedules and {{ ds }} (tz database name)"),
    K_INT("scheduler", "workers", sched_workers, "2", 1, 64, 0,
          "worker threads running tasks"),
    K_INT("scheduler", "tick_ms", sched_tick_ms, "1000", 10, 60000, 1,
          "milliseconds between scheduler ticks"),
    K_INT("scheduler", "lease_s", sched_lease_s, "30", 1, 3600, 0,
          "seconds a claimed task stays claimed without a heartbeat"),
    /* models */
    K_STR("models", "specs_dir", models_specs_dir, "config/models",
          CFG_CK_NONEMPTY, 1, "directory of model specs (*.yaml)"),
    K_STR("models", "registry_dir", models_registry_dir, "var/registry",
          CFG_CK_NONEMPTY, 0, "directory of the model registry"),
    K_INT("models", "follow_ms", models_follow_ms, "1000", 0, 600000, 0,
          "role api: milliseconds between reads of table deployment for "
          "each model's production version (a promotion on any host "
          "reaches this replica within it); 0: alias files only"),
    K_BOOL("models", "shadow", models_shadow, "false", 0,
           "true: serve each model's version aliased staging in shadow "
           "beside production (production answers; the shadow's "
           "prediction is logged in table prediction_shadow, see `mlopsd "
           "models compare`)"),
    K_STR("models", "registry_url", models_registry_url, "", CFG_CK_ANY, 0,
          "s3://BUCKET/PREFIX keeps the registry in object storage "
          "(numbers and aliases in MariaDB, registry_dir its local cache); "
          "empty: the directory registry_dir"),
    K_STR("models", "s3_endpoint", models_s3_endpoint, "", CFG_CK_ANY, 0,
          "S3 endpoint URL (Swift, Ceph RGW, MinIO); empty: "
          "https://s3.REGION.amazonaws.com"),
    K_STR("models", "s3_region", models_s3_region, "us-east-1", CFG_CK_ANY,
          0, "region the S3 requests are signed for"),
    K_STR("models", "s3_credentials_file", models_s3_credentials_file, "",
          CFG_CK_ANY, 0,
          "AWS-style credentials file, read when AWS_ACCESS_KEY_ID and "
          "AWS_SECRET_ACCESS_KEY are not set"),
    K_INT("models", "train_threads", models_train_threads, "1", 1, 256, 1,
          "XGBoost nthread for training"),
    K_INT("models", "train_parallel", models_train_parallel, "0", 0, 256, 1,
          "grid trials trained at once (each with train_threads threads); "
          "0 = the CPUs / train_threads"),
    /* logging */
    K_ENUM("logging", "level", log_level, "info", cfg_level_names, 1,
           "error, warn, info or debug"),
    K_ENUM("logging", "format", log_format, "text", cfg_format_names, 1,
           "text lines or json lines, to stderr"),
    K_INT("logging", "retention_days", log_retention_days, "0", 0, 36500, 0,
          "days of prediction log rows kept (whole partitions are dropped "
          "behind the window); 0 keeps every row"),
    K_INT("logging", "retention_s", log_retention_s, "0", 0, 3650L * 86400,
          0, "test setting: retention in seconds, wins over retention_days "
             "when > 0"),
    K_INT("logging", "partition_s", log_partition_s, "86400", 10,
          31L * 86400, 0,
          "width of one prediction log partition in seconds (daily; "
          "shorter for tests)"),
    K_INT("logging", "partitions_ahead", log_partitions_ahead, "3", 1, 1000,
          0, "prediction log partitions created ahead of the current one"),
    K_INT("logging", "maintenance_s", log_maintenance_s, "60", 1, 86400, 0,
          "seconds between prediction log maintenance passes (partitions, "
          "retention, size figures)"),
    K_STR("logging", "archive_dir", log_archive_dir, "", CFG_CK_ANY, 0,
          "directory where a partition is written (gzip JSON lines + "
          "manifest.jsonl) before it is dropped; empty: not archived"),
};
#define CFG_NKEYS (int)(sizeof(cfg_keys) / sizeof(cfg_keys[0]))

/* Keys that hold secrets elsewhere: named here so the error can say how to
 * give them instead. */
static const struct {
  const char *section, *name, *hint;
} cfg_secret_keys[] = {
    {"database", "password",
     "use database.password_env (the name of an environment variable) or "
     "database.password_file"},
    {"auth", "admin_token",
     "use auth.admin_token_env (the name of an environment variable)"},
};

int cfg_key_count(void) { return CFG_NKEYS; }

int cfg_train_parallel(const struct cfg *c)
{
  if (c && c->models_train_parallel > 0)
    return c->models_train_parallel;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int threads = c && c->models_train_threads > 0 ? c->models_train_threads
                                                 : 1;
  long n = (cpus > 0 ? cpus : 1) / threads;
  return n < 1 ? 1 : n > 256 ? 256 : (int)n;
}

const char *cfg_key_name(int i)
{
  return i >= 0 && i < CFG_NKEYS ? cfg_keys[i].full : NULL;
}

static const struct cfg_key *cfg_find(const char *section, const char *name)
{
  for (int i = 0; i < CFG_NKEYS; i++)
    if (strcmp(cfg_keys[i].section, section) == 0 &&
        strcmp(cfg_keys[i].name, name) == 0)
      return &cfg_keys[i];
  return NULL;
}

static int cfg_section_index(const char *s)
{
  for (int i = 0; cfg_sections[i]; i++)
    if (strcmp(cfg_sections[i], s) == 0)
      return i;
  return -1;
}

/* MLOPSD_<SECTION>_<KEY>, upper-case. */
static void cfg_env_name(const struct cfg_key *k, char *buf, size_t cap)
{
  snprintf(buf, cap, "MLOPSD_%s_%s", k->section, k->name);
  for (char *p = buf; *p; p++)
    *p = (char)toupper((unsigned char)*p);
}

/* ---- values ---------------------------------------------------------- */

/* Quote v for an error message: printable, capped, never NUL-broken. */
static void cfg_got(char *out, size_t cap, const char *v, size_t len)
{
  size_t n = 0;
  if (len == 0) {
    snprintf(out, cap, "an empty value");
    return;
  }
  out[n++] = '\'';
  for (size_t i = 0; i < len && n + 6 < cap; i++) {
    unsigned char ch = (unsigned char)v[i];
    if (i == CFG_GOT_MAX) {
      memcpy(out + n, "...", 3);
      n += 3;
      break;
    }
    if (ch < 0x20 || ch == 0x7f) {
      n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
    } else {
      out[n++] = (char)ch;
    }
  }
  out[n++] = '\'';
  out[n] = '\0';
}

/* "expected ..." text of a key (no "got"). */
static void cfg_expected(const struct cfg_key *k, char *out, size_t cap)
{
  switch (k->type) {
  case CFG_INT:
    snprintf(out, cap, "expected integer %lld..%lld", k->min, k->max);
    return;
  case CFG_BOOL:
    snprintf(out, cap, "expected true or false");
    return;
  case CFG_ENUM: {
    size_t n = (size_t)snprintf(out, cap, "expected one of ");
    for (int i = 0; k->names[i] && n < cap; i++)
      n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? "|" : "",
                            k->names[i]);
    return;
  }
  case CFG_STR:
    break;
  }
  switch (k->check) {
  case CFG_CK_NONEMPTY:
    snprintf(out, cap, "expected a non-empty string of at most %zu bytes",
             k->size - 1);
    break;
  case CFG_CK_LISTEN:
    snprintf(out, cap, "expected HOST:PORT with port 0..65535");
    break;
  case CFG_CK_ENVNAME:
    snprintf(out, cap,
             "expected an environment variable name ([A-Za-z_][A-Za-z0-9_]*,"
             " at most %zu bytes) or empty",
             k->size - 1);
    break;
  case CFG_CK_DBNAME:
    snprintf(out, cap,
             "expected a database name of 1..64 letters, digits or _");
    break;
  case CFG_CK_ANY:
    snprintf(out, cap, "expected a string of at most %zu bytes",
             k->size - 1);
    break;
  }
}

static int cfg_parse_ll(const char *s, long long *out)
{
  const char *p = s;
  char *end;
  if (*p == '+' || *p == '-')
    p++;
  if (!isdigit((unsigned char)*p))
    return -1;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (*end || errno)
    return -1;
  *out = v;
  return 0;
}

static int cfg_str_ok(const struct cfg_key *k, const char *v, size_t len)
{
  if (len >= k->size || memchr(v, '\0', len))
    return 0;
  switch (k->check) {
  case CFG_CK_ANY:
    return 1;
  case CFG_CK_NONEMPTY:
    return len > 0;
  case CFG_CK_ENVNAME:
    for (size_t i = 0; i < len; i++) {
      unsigned char ch = (unsigned char)v[i];
      if (!(isalpha(ch) || ch == '_' || (i > 0 && isdigit(ch))))
        return 0;
    }
    return 1;
  case CFG_CK_DBNAME:
    if (len < 1 || len > 64)
      return 0;
    for (size_t i = 0; i < len; i++)
      if (!(isalnum((unsigned char)v[i]) || v[i] == '_'))
        return 0;
    return 1;
  case CFG_CK_LISTEN: {
    const char *colon = memrchr(v, ':', len);
    long long port;
    char buf[8];
    size_t pl;
    if (!colon || colon == v)
      return 0;
    pl = len - (size_t)(colon + 1 - v);
    if (pl == 0 || pl >= sizeof(buf))
      return 0;
    memcpy(buf, colon + 1, pl);
    buf[pl] = '\0';
    for (size_t i = 0; i < pl; i++)
      if (!isdigit((unsigned char)buf[i]))
        return 0;
    if (cfg_parse_ll(buf, &port) != 0 || port > 65535)
      return 0;
    return 1;
  }
  }
  return 0;
}

/* Set key k of c from text v (len bytes, not necessarily NUL-terminated).
 * On a bad value write "expected ..., got '...'" into why and return -1. */
static int cfg_set(const struct cfg_key *k, struct cfg *c, const char *v,
                   size_t len, char *why, size_t whycap)
{
  char *dst = (char *)c + k->off;
  char buf[64];
  char exp[160], got[CFG_GOT_MAX * 4 + 8];

  switch (k->type) {
  case CFG_STR:
    if (!cfg_str_ok(k, v, len))
      goto bad;
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 0;
  case CFG_INT: {
    long long x;
    if (len == 0 || len >= sizeof(buf) || memchr(v, '\0', len))
      goto bad;
    memcpy(buf, v, len);
    buf[len] = '\0';
    if (cfg_parse_ll(buf, &x) != 0 || x < k->min || x > k->max)
      goto bad;
    if (k->size == sizeof(int)) {
      int i = (int)x;
      memcpy(dst, &i, sizeof(i));
    } else {
      long l = (long)x;
      memcpy(dst, &l, sizeof(l));
    }
    return 0;
  }
  case CFG_BOOL: {
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (int i = 0; i < 4; i++) {
      int b = -1;
      if (len == strlen(yes[i]) && strncasecmp(v, yes[i], len) == 0)
        b = 1;
      else if (len == strlen(no[i]) && strncasecmp(v, no[i], len) == 0)
        b = 0;
      if (b >= 0) {
        memcpy(dst, &b, sizeof(b));
        return 0;
      }
    }
    goto bad;
  }
  case CFG_ENUM:
    /* Case-insensitive so that MLOPSD_LOGGING_LEVEL=DEBUG works; the
     * canonical lower-case name is stored. */
    for (int i = 0; k->names[i]; i++) {
      if (len != strlen(k->names[i]) || strncasecmp(v, k->names[i], len))
        continue;
      if (k->enum_str)
        snprintf(dst, k->size, "%s", k->names[i]);
      else
        memcpy(dst, &i, sizeof(i));
      return 0;
    }
    goto bad;
  }
bad:
  cfg_expected(k, exp, sizeof(exp));
  if (k->check == CFG_CK_ENVNAME && len > 0)
    /* A password typed where its variable's name belongs must not be
     * echoed to the terminal or a log collector. */
    snprintf(got, sizeof(got), "a value that is not one (not shown)");
  else
    cfg_got(got, sizeof(got), v, len);
  snprintf(why, whycap, "%s, got %s", exp, got);
  return -1;
}

/* The value of k in c as text (YAML scalar, strings quoted). */
static void cfg_format(const struct cfg_key *k, const struct cfg *c,
                       char *out, size_t cap)
{
  const char *src = (const char *)c + k->off;
  switch (k->type) {
  case CFG_STR: {
    size_t n = 0;
    out[n++] = '"';
    for (; *src && n + 7 < cap; src++) {
      unsigned char ch = (unsigned char)*src;
      if (ch == '"' || ch == '\\') {
        out[n++] = '\\';
        out[n++] = (char)ch;
      } else if (ch < 0x20 || ch == 0x7f) {
        n += (size_t)snprintf(out + n, cap - n, "\\x%02x", ch);
      } else {
        out[n++] = (char)ch;
      }
    }
    out[n++] = '"';
    out[n] = '\0';
    return;
  }
  case CFG_INT:
    if (k->size == sizeof(int)) {
      int i;
      memcpy(&i, src, sizeof(i));
      snprintf(out, cap, "%d", i);
    } else {
      long l;
      memcpy(&l, src, sizeof(l));
      snprintf(out, cap, "%ld", l);
    }
    return;
  case CFG_BOOL: {
    int b;
    memcpy(&b, src, sizeof(b));
    snprintf(out, cap, "%s", b ? "true" : "false");
    return;
  }
  case CFG_ENUM:
    if (k->enum_str) {
      snprintf(out, cap, "%s", src);
    } else {
      int i, n = 0;
      memcpy(&i, src, sizeof(i));
      while (k->names[n])
        n++;
      snprintf(out, cap, "%s", i >= 0 && i < n ? k->names[i] : "?");
    }
    return;
  }
}

void cfg_defaults(struct cfg *c)
{
  char why[256];
  memset(c, 0, sizeof(*c));
  for (int i = 0; i < CFG_NKEYS; i++) {
    const struct cfg_key *k = &cfg_keys[i];
    if (cfg_set(k, c, k->def, strlen(k->def), why, sizeof(why)) != 0) {
      /* A bad default is a bug in the table, caught by the unit tests. */
      fprintf(stderr, "cfg: default of %s.%s: %s\n", k->section, k->name,
              why);
      abort();
    }
  }
}

/* ---- YAML ------------------------------------------------------------ */

struct cfg_yaml {
  yaml_parser_t p;
  yaml_event_t ev;
  const char *file;
  const unsigned char *buf;
  size_t len;
  struct cfg *c;
  struct err *e;
  yaml_mark_t key_mark[CFG_NKEYS]; /* where a key was first seen */
  int key_seen[CFG_NKEYS];
  yaml_mark_t sec_mark[CFG_NSECTIONS];
  int sec_seen[CFG_NSECTIONS];
};

static enum err_code cfg_yerr(struct cfg_yaml *y, enum err_code code,
                              yaml_mark_t m, const char *fmt, ...)
    MLOPSD_PRINTF(4, 5);

static enum err_code cfg_yerr(struct cfg_yaml *y, enum err_code code,
                              yaml_mark_t m, const char *fmt, ...)
{
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return err_set(y->e, code, "%s:%zu:%zu: %s", y->file, m.line + 1,
                 m.column + 1, msg);
}

/* Report a libyaml failure as a syntax error at the best known place. */
static enum err_code cfg_ysyntax(struct cfg_yaml *y)
{
  yaml_parser_t *p = &y->p;
  yaml_mark_t m = p->problem_mark;
  if (p->error == YAML_READER_ERROR) {
    /* Reader errors (bad encoding) carry a byte offset, not a mark. */
    memset(&m, 0, sizeof(m));
    for (size_t i = 0; i < p->problem_offset && i < y->len; i++) {
      if (y->buf[i] == '\n') {
        m.line++;
        m.column = 0;
      } else if ((y->buf[i] & 0xc0) != 0x80) {
        m.column++;
      }
    }
  }
  if (p->error == YAML_MEMORY_ERROR)
    return err_set(y->e, ERR_NOMEM, "%s: out of memory parsing YAML",
                   y->file);
  if (p->context)
    return cfg_yerr(y, ERR_PARSE, m, "YAML syntax error: %s %s",
                    p->problem ? p->problem : "error", p->context);
  return cfg_yerr(y, ERR_PARSE, m, "YAML syntax error: %s",
                  p->problem ? p->problem : "error");
}

/* Next event into y->ev (the previous one is freed). */
static enum err_code cfg_ynext(struct cfg_yaml *y)
{
  yaml_event_delete(&y->ev);
  if (!yaml_parser_parse(&y->p, &y->ev))
    return cfg_ysyntax(y);
  return ERR_OK;
}

static int cfg_ynull(const yaml_event_t *ev)
{
  const char *v = (const char *)ev->data.scalar.value;
  if (ev->type != YAML_SCALAR_EVENT ||
      ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return 0;
  return strcmp(v, "") == 0 || strcmp(v, "~") == 0 ||
         strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
         strcmp(v, "NULL") == 0;
}

static const char *cfg_ykind(const yaml_event_t *ev)
{
  switch (ev->type) {
  case YAML_SEQUENCE_START_EVENT:
    return "a list";
  case YAML_MAPPING_START_EVENT:
    return "a mapping";
  case YAML_ALIAS_EVENT:
    return "an alias (aliases are not supported)";
  case YAML_SCALAR_EVENT:
    return "a scalar";
  default:
    return "something else";
  }
}

/* Inside section sec's mapping, after its MAPPING_START. */
static enum err_code cfg_ykeys(struct cfg_yaml *y, const char *sec)
{
  enum err_code rc;
  char name[128];
  for (;;) {
    if ((rc = cfg_ynext(y)) != ERR_OK)
      return rc;
    if (y->ev.type == YAML_MAPPING_END_EVENT)
      return ERR_OK;
    yaml_mark_t km = y->ev.start_mark;
    if (y->ev.type != YAML_SCALAR_EVENT)
      return cfg_yerr(y, ERR_CONFIG, km,
                      "section '%s': expected a key name, got %s", sec,
                      cfg_ykind(&y->ev));
    snprintf(name, sizeof(name), "%s", (const char *)y->ev.data.scalar.value);
    for (size_t i = 0;
         i < sizeof(cfg_secret_keys) / sizeof(cfg_secret_keys[0]); i++)
      if (strcmp(cfg_secret_keys[i].section, sec) == 0 &&
          strcmp(cfg_secret_keys[i].name, name) == 0)
        return cfg_yerr(y, ERR_CONFIG, km,
                        "key '%s.%s': secrets are never read from the "
                        "config file; %s",
                        sec, name, cfg_secret_keys[i].hint);
    const struct cfg_key *k = cfg_find(sec, name);
    if (!k) {
      char list[512];
      size_t n = 0;
      list[0] = '\0';
      for (int i = 0; i < CFG_NKEYS && n < sizeof(list); i++)
        if (strcmp(cfg_keys[i].section, sec) == 0)
          n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
                                n ? ", " : "", cfg_keys[i].name);
      return cfg_yerr(y, ERR_CONFIG, km,
                      "unknown key '%s.%s' (expected one of: %s)", sec, name,
                      list);
    }
    int ki = (int)(k - cfg_keys);
    if (y->key_seen[ki])
      return cfg_yerr(y, ERR_CONFIG, km,
                      "duplicate key '%s.%s' (first at line %zu, column %zu)",
                      sec, name, y->key_mark[ki].line + 1,
                      y->key_mark[ki].column + 1);
    y->key_seen[ki] = 1;
    y->key_mark[ki] = km;

    if ((rc = cfg_ynext(y)) != ERR_OK)
      return rc;
    char why[400], exp[160];
    if (y->ev.type != YAML_SCALAR_EVENT) {
      cfg_expected(k, exp, sizeof(exp));
      return cfg_yerr(y, ERR_CONFIG, y->ev.start_mark,
                      "key '%s.%s': %s, got %s", sec, name, exp,
                      cfg_ykind(&y->ev));
    }
    const char *v = (const char *)y->ev.data.scalar.value;
    size_t vl = y->ev.data.scalar.length;
    if (cfg_ynull(&y->ev))
      vl = 0; /* "key:", "key: ~", "key: null" all mean empty */
    if (cfg_set(k, y->c, v, vl, why, sizeof(why)) != 0)
      return cfg_yerr(y, ERR_CONFIG, y->ev.start_mark, "key '%s.%s': %s",
                      sec, name, why);
  }
}

/* Inside the top-level mapping, after its MAPPING_START. */
static enum err_code cfg_ysections(struct cfg_yaml *y)
{
  enum err_code rc;
  char sec[64];
  for (;;) {
    if ((rc = cfg_ynext(y)) != ERR_OK)
      return rc;
    if (y->ev.type == YAML_MAPPING_END_EVENT)
      return ERR_OK;
    yaml_mark_t sm = y->ev.start_mark;
    if (y->ev.type != YAML_SCALAR_EVENT)
      return cfg_yerr(y, ERR_CONFIG, sm,
                      "expected a section name (server, auth, database, "
                      "scheduler, models, logging), got %s",
                      cfg_ykind(&y->ev));
    const char *name = (const char *)y->ev.data.scalar.value;
    int si = cfg_section_index(name);
    if (si < 0) {
      char got[CFG_GOT_MAX * 4 + 8];
      cfg_got(got, sizeof(got), name, y->ev.data.scalar.length);
      return cfg_yerr(y, ERR_CONFIG, sm,
                      "unknown section %s (expected one of: server, auth, "
                      "database, scheduler, models, logging)",
                      got);
    }
    snprintf(sec, sizeof(sec), "%s", name);
    if (y->sec_seen[si])
      return cfg_yerr(y, ERR_CONFIG, sm,
                      "duplicate section '%s' (first at line %zu, column %zu)",
                      sec, y->sec_mark[si].line + 1,
                      y->sec_mark[si].column + 1);
    y->sec_seen[si] = 1;
    y->sec_mark[si] = sm;

    if ((rc = cfg_ynext(y)) != ERR_OK)
      return rc;
    if (y->ev.type == YAML_MAPPING_START_EVENT) {
      if ((rc = cfg_ykeys(y, sec)) != ERR_OK)
        return rc;
    } else if (!cfg_ynull(&y->ev)) {
      /* A section with every key commented out is fine; anything else
       * is not a section. */
      return cfg_yerr(y, ERR_CONFIG, y->ev.start_mark,
                      "section '%s': expected a mapping of keys, got %s", sec,
                      cfg_ykind(&y->ev));
    }
  }
}

static enum err_code cfg_yaml_doc(struct cfg_yaml *y)
{
  enum err_code rc;
  if ((rc = cfg_ynext(y)) != ERR_OK) /* STREAM_START */
    return rc;
  if ((rc = cfg_ynext(y)) != ERR_OK)
    return rc;
  if (y->ev.type == YAML_STREAM_END_EVENT) /* empty or comments only */
    return ERR_OK;
  /* DOCUMENT_START; then the root node */
  if ((rc = cfg_ynext(y)) != ERR_OK)
    return rc;
  if (y->ev.type == YAML_MAPPING_START_EVENT) {
    if ((rc = cfg_ysections(y)) != ERR_OK)
      return rc;
  } else if (!cfg_ynull(&y->ev)) {
    return cfg_yerr(y, ERR_CONFIG, y->ev.start_mark,
                    "expected a mapping of sections (server:, database:, "
                    "...), got %s",
                    cfg_ykind(&y->ev));
  }
  if ((rc = cfg_ynext(y)) != ERR_OK) /* DOCUMENT_END */
    return rc;
  if ((rc = cfg_ynext(y)) != ERR_OK)
    return rc;
  if (y->ev.type != YAML_STREAM_END_EVENT)
    return cfg_yerr(y, ERR_CONFIG, y->ev.start_mark,
                    "only one YAML document is allowed");
  return ERR_OK;
}

static enum err_code cfg_parse_yaml(struct cfg *c, const char *file,
                                    const unsigned char *buf, size_t len,
                                    struct err *e)
{
  struct cfg_yaml *y = calloc(1, sizeof(*y));
  enum err_code rc;
  if (!y)
    return err_set(e, ERR_NOMEM, "%s: out of memory", file);
  if (!yaml_parser_initialize(&y->p)) {
    free(y);
    return err_set(e, ERR_NOMEM, "%s: out of memory", file);
  }
  yaml_parser_set_input_string(&y->p, buf, len);
  y->file = file;
  y->buf = buf;
  y->len = len;
  y->c = c;
  y->e = e;
  /* Pass 1: syntax only, so that a broken file is reported as such even
   * when a key before the break is also wrong. */
  do
    rc = cfg_ynext(y);
  while (rc == ERR_OK && y->ev.type != YAML_STREAM_END_EVENT);
  yaml_event_delete(&y->ev);
  yaml_parser_delete(&y->p);
  /* Pass 2: the sections and keys. */
  if (rc == ERR_OK) {
    if (!yaml_parser_initialize(&y->p)) {
      free(y);
      return err_set(e, ERR_NOMEM, "%s: out of memory", file);
    }
    yaml_parser_set_input_string(&y->p, buf, len);
    rc = cfg_yaml_doc(y);
    yaml_event_delete(&y->ev);
    yaml_parser_delete(&y->p);
  }
  free(y);
  return rc;
}

/* ---- files, environment, secrets --------------------------------------- */

static enum err_code cfg_env_overrides(struct cfg *c, struct err *e)
{
  char name[128], why[400];
  for (int i = 0; i < CFG_NKEYS; i++) {
    const struct cfg_key *k = &cfg_keys[i];
    cfg_env_name(k, name, sizeof(name));
    const char *v = getenv(name);
    if (!v)
      continue;
    if (cfg_set(k, c, v, strlen(v), why, sizeof(why)) != 0)
      return err_set(e, ERR_CONFIG, "environment variable %s: key '%s.%s': %s",
                     name, k->section, k->name, why);
  }
  return ERR_OK;
}

/* Warn about MLOPSD_<SECTION>_* variables that match no key: most likely
 * a typo that would otherwise be silently ignored. */
static void cfg_env_unknown(const struct cfg *c)
{
  extern char **environ;
  char sec[32], name[128];
  for (char **ep = environ; ep && *ep; ep++) {
    const char *v = *ep;
    const char *eq = strchr(v, '=');
    size_t nl = eq ? (size_t)(eq - v) : strlen(v);
    int known = 0, insec = 0;
    if (nl >= sizeof(name) || strncmp(v, "MLOPSD_", 7) != 0)
      continue;
    memcpy(name, v, nl);
    name[nl] = '\0';
    for (int s = 0; cfg_sections[s]; s++) {
      size_t sl = (size_t)snprintf(sec, sizeof(sec), "MLOPSD_%s_",
                                   cfg_sections[s]);
      for (char *p = sec; *p; p++)
        *p = (char)toupper((unsigned char)*p);
      if (strncmp(name, sec, sl) == 0)
        insec = 1;
    }
    if (!insec || strcmp(name, c->db_password_env) == 0 ||
        strcmp(name, c->auth_admin_token_env) == 0 ||
        strcmp(name, "MLOPSD_DATABASE_PASSWORD") == 0)
      continue;
    for (int i = 0; i < CFG_NKEYS && !known; i++) {
      char kn[128];
      cfg_env_name(&cfg_keys[i], kn, sizeof(kn));
      known = strcmp(kn, name) == 0;
    }
    if (!known)
      LOG_W("cfg", "environment variable %s is not a config key (ignored)",
            name);
  }
}

/* A file that cannot be read is ERR_IO for cfg's callers, missing or not. */
static enum err_code as_io(struct err *e)
{
  if (e)
    e->code = ERR_IO;
  return ERR_IO;
}

static enum err_code cfg_secrets(struct cfg *c, struct err *e)
{
  const char *v;
  if (c->db_password_file[0]) {
    char *buf = NULL;
    size_t len = 0;
    /* The cap only bounds the read; the length check below names the
     * real limit. */
    if (fsx_read(c->db_password_file, PASSWORD_FILE_MAX,
                 FSX_ANY_FILE | FSX_SECRET, &buf, &len, e) != ERR_OK) {
      err_prefix(e, "database.password_file");
      return as_io(e);
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
      len--;
    int bad = len >= sizeof(c->db_password) || memchr(buf, '\0', len);
    if (!bad) {
      memcpy(c->db_password, buf, len);
      c->db_password[len] = '\0';
    }
    explicit_bzero(buf, len);
    free(buf);
    if (bad)
      return err_set(e, ERR_CONFIG,
                     "database.password_file %s: expected a password of at "
                     "most %zu bytes without NUL bytes",
                     c->db_password_file, sizeof(c->db_password) - 1);
  } else if (c->db_password_env[0] && (v = getenv(c->db_password_env))) {
    if (strlen(v) >= sizeof(c->db_password))
      return err_set(e, ERR_CONFIG,
                     "environment variable %s (database.password_env): "
                     "expected a password of at most %zu bytes",
                     c->db_password_env, sizeof(c->db_password) - 1);
    snprintf(c->db_password, sizeof(c->db_password), "%s", v);
  }
  if (c->auth_admin_token_env[0] && (v = getenv(c->auth_admin_token_env))) {
    if (strlen(v) >= sizeof(c->admin_token))
      return err_set(e, ERR_CONFIG,
                     "environment variable %s (auth.admin_token_env): "
                     "expected a token of at most %zu bytes",
                     c->auth_admin_token_env, sizeof(c->admin_token) - 1);
    snprintf(c->admin_token, sizeof(c->admin_token), "%s", v);
  }
  return ERR_OK;
}

static enum err_code cfg_load_file(struct cfg *c, const char *path,
                                   int may_be_missing, struct err *e)
{
  char *buf = NULL;
  size_t len = 0;
  enum err_code rc;
  if (strlen(path) >= sizeof(c->path))
    return err_set(e, ERR_CONFIG, "config path too long: %.64s...", path);
  if ((rc = fsx_read(path, CFG_FILE_MAX, FSX_ANY_FILE, &buf, &len, e))) {
    if (rc == ERR_NOTFOUND && may_be_missing) {
      err_clear(e);
      return ERR_OK;
    }
    return as_io(e);
  }
  snprintf(c->path, sizeof(c->path), "%s", path);
  rc = cfg_parse_yaml(c, path, (const unsigned char *)buf, len, e);
  free(buf);
  return rc;
}

enum err_code cfg_load(struct cfg *c, const char *path, struct err *e)
{
  enum err_code rc;
  int implicit = 0;
  if (!path || !*path) {
    path = getenv("MLOPSD_CONFIG");
    if (!path || !*path) {
      path = CFG_DEFAULT_PATH;
      implicit = 1;
    }
  }
  cfg_defaults(c);
  if ((rc = cfg_load_file(c, path, implicit, e)) != ERR_OK ||
      (rc = cfg_env_overrides(c, e)) != ERR_OK ||
      (rc = cfg_secrets(c, e)) != ERR_OK) {
    explicit_bzero(c->db_password, sizeof(c->db_password));
    explicit_bzero(c->admin_token, sizeof(c->admin_token));
    return rc;
  }
  cfg_env_unknown(c);
  err_clear(e);
  return ERR_OK;
}

void cfg_dump(const struct cfg *c, int fd)
{
  char v[1200];
  const char *sec = "";
  dprintf(fd, "# mlopsd configuration in effect (%s%s)\n",
          c->path[0] ? "from " : "built-in defaults",
          c->path[0] ? c->path : "");
  for (int i = 0; i < CFG_NKEYS; i++) {
    const struct cfg_key *k = &cfg_keys[i];
    if (strcmp(sec, k->section) != 0) {
      sec = k->section;
      dprintf(fd, "%s:\n", sec);
    }
    cfg_format(k, c, v, sizeof(v));
    dprintf(fd, "  %s: %s\n", k->name, v);
    /* Secrets: only whether they are set, as comments so the dump stays
     * loadable (the loader refuses password keys). */
    if (strcmp(k->section, "auth") == 0 &&
        strcmp(k->name, "admin_token_env") == 0)
      dprintf(fd, "  # admin_token: %s\n",
              c->admin_token[0] ? "***" : "(not set)");
    if (strcmp(k->section, "database") == 0 &&
        strcmp(k->name, "password_file") == 0)
      dprintf(fd, "  # password: %s\n",
              c->db_password[0] ? "***" : "(not set)");
  }
}

enum err_code cfg_check_reload(const struct cfg *old, const struct cfg *nw,
                               struct err *e)
{
  for (int i = 0; i < CFG_NKEYS; i++) {
    const struct cfg_key *k = &cfg_keys[i];
    const char *a = (const char *)old + k->off;
    const char *b = (const char *)nw + k->off;
    int same = k->type == CFG_STR || (k->type == CFG_ENUM && k->enum_str)
                   ? strcmp(a, b) == 0
                   : memcmp(a, b, k->size) == 0;
    if (!same && !k->reloadable) {
      char va[600], vb[600];
      cfg_format(k, old, va, sizeof(va));
      cfg_format(k, nw, vb, sizeof(vb));
      return err_set(e, ERR_CONFIG,
                     "key '%s.%s' changed (%.200s -> %.200s) but cannot "
                     "change on reload: restart mlopsd",
                     k->section, k->name, va, vb);
    }
  }
  err_clear(e);
  return ERR_OK;
}
