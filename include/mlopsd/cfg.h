/* cfg.h - the daemon configuration (config/mlopsd.yaml).
 *
 * One table in cfg.c lists every key with its type, default, min/max and
 * whether it may change on reload.  cfg_load() reads the YAML file with
 * libyaml, then applies MLOPSD_SECTION_KEY environment overrides (e.g.
 * MLOPSD_DATABASE_HOST, MLOPSD_SERVER_LISTEN), then resolves secrets:
 * the database password comes from the environment variable named by
 * database.password_env (default MLOPSD_DATABASE_PASSWORD) or from the file
 * named by database.password_file; never from the YAML itself.
 *
 * Unknown keys, wrong types and out-of-range values are errors whose message
 * gives file:line:column and the expected form.  A missing file is an error
 * unless the path is the default and the caller allows defaults.
 *
 * The struct is plain data and read-only once loaded: a reload builds a new
 * one (cfg_load) and swaps it in.  Thread rule: cfg_load/cfg_destroy from
 * one thread; a loaded cfg may be read from any thread.
 */
#ifndef MLOPSD_CFG_H
#define MLOPSD_CFG_H

#include "mlopsd/err.h"

struct cfg {
  /* server */
  char server_role[16];         /* "all", "api" or "scheduler" */
  char server_listen[128];      /* "0.0.0.0:3000" */
  int server_threads;           /* 2 */
  int server_thread_nice;       /* 0: nice of the HTTP threads */
  int server_thread_slice_us;   /* 0: their scheduler slice (0 = kernel's) */
  long server_max_body_bytes;   /* 1048576 */
  int server_max_connections;   /* 1024 */
  int server_idle_timeout_s;    /* 30: idle / slow clients are dropped */
  char server_default_model[128]; /* "credit_score_classification" */
  char server_log_full_policy[16]; /* "reject" (503) or "serve" unlogged */
  char server_spool_dir[512];   /* "var/spool" */
  long server_spool_max_bytes;  /* 256 MiB */
  char server_log_durability[16]; /* "process" or "fsync" */
  char server_log_buffer_dir[512]; /* "" = server_spool_dir */
  long server_spool_min_free_bytes; /* 0: min(64 MiB, fs / 4) */
  /* auth */
  char auth_admin_token_env[128]; /* "MLOPSD_ADMIN_TOKEN" */
  char admin_token[256];        /* resolved secret; "" = admin API off */
  int auth_console_read_open;   /* 0: read-only /api/v2 GETs need the
                                   token too; 1: open (console demo) */
  /* database */
  char db_host[256];            /* "127.0.0.1" */
  int db_port;                  /* 3306 */
  char db_user[128];            /* "root" */
  char db_password_env[128];    /* "MLOPSD_DATABASE_PASSWORD" */
  char db_password_file[512];   /* "" */
  char db_password[256];        /* resolved secret, never logged */
  char db_name[128];            /* "mlops" */
  char db_socket[512];          /* "" = TCP */
  int db_pool;                  /* 8 */
  int db_connect_timeout_s;     /* 5 */
  int db_wsrep_sync_wait;       /* 1: Galera causal reads */
  /* scheduler */
  char sched_dags_dir[512];     /* "config/dags" */
  char sched_timezone[64];      /* "Asia/Seoul" */
  int sched_workers;            /* 2 */
  int sched_tick_ms;            /* 1000 */
  int sched_lease_s;            /* 30: a claim without heartbeat expires */
  /* models */
  char models_specs_dir[512];   /* "config/models" */
  char models_registry_dir[512];/* "var/registry" */
  int models_follow_ms;         /* 1000: role api polls deployment */
  int models_shadow;            /* serve alias staging in shadow */
  char models_registry_url[512];/* "": the directory; s3://BUCKET/PREFIX */
  char models_s3_endpoint[512]; /* "": https://s3.REGION.amazonaws.com */
  char models_s3_region[64];    /* "us-east-1" */
  char models_s3_credentials_file[512]; /* "": environment only */
  int models_train_threads;     /* 1: XGBoost nthread for training */
  int models_train_parallel;    /* 0: grid trials at once, 0 = the CPUs
                                   divided by train_threads (cfg.h
                                   cfg_train_parallel) */
  /* logging */
  int log_level;                /* enum log_level, LOG_INFO */
  int log_format;               /* enum log_format, LOG_FMT_TEXT */
  int log_retention_days;       /* 0: prediction log rows kept forever */
  long log_retention_s;         /* 0: use retention_days (test setting) */
  long log_partition_s;         /* 86400: width of a log partition */
  int log_partitions_ahead;     /* 3 */
  int log_maintenance_s;        /* 60: seconds between passes */
  char log_archive_dir[512];    /* "": partitions dropped unarchived */

  char path[512];               /* file it was loaded from ("" = defaults) */
};

/* Fill c with the built-in defaults (the one place defaults live: the key
 * table in cfg.c).  Secrets and path are left empty.  Any thread. */
void cfg_defaults(struct cfg *c);

/* Load path (NULL: $MLOPSD_CONFIG if set and non-empty, else
 * "config/mlopsd.yaml"; only that implicit default may be missing, which
 * means defaults + environment).  Applies MLOPSD_SECTION_KEY overrides and
 * resolves secrets (password_file wins over password_env when both are
 * set).  Errors fill e with one line:
 *   ERR_PARSE   "FILE:LINE:COL: YAML syntax error: ..."
 *   ERR_CONFIG  "FILE:LINE:COL: key 'server.threads': expected integer
 *               1..256, got 'abc'" (unknown section/key, wrong type, out
 *               of range, bad enum, duplicate key, a secret in the file),
 *               or "environment variable MLOPSD_X_Y: key 'x.y': ..."
 *   ERR_IO      "cannot open FILE: No such file or directory", unreadable
 *               password_file, ...
 * (LINE and COL are 1-based.)  On error the secrets in c are wiped and the
 * rest of c is undefined.  MLOPSD_* variables that look like keys of a
 * section but are not keys are logged as a warning, not an error. */
enum err_code cfg_load(struct cfg *c, const char *path, struct err *e)
    MLOPSD_WUR;

/* Write the effective config as YAML (block style, loadable again by
 * cfg_load) to fd.  Secrets appear only as comments showing "***" when
 * set, never their value.  Any thread. */
void cfg_dump(const struct cfg *c, int fd);

/* For a reload: ERR_OK if nw differs from old only in reloadable keys,
 * else ERR_CONFIG naming the first key that needs a restart.  Secrets and
 * path are not compared. */
enum err_code cfg_check_reload(const struct cfg *old, const struct cfg *nw,
                               struct err *e) MLOPSD_WUR;

/* The key table, for docs and tests: cfg_key_count() keys, the i-th as
 * "section.key" (static storage; NULL if i is out of range). */
int cfg_key_count(void);
const char *cfg_key_name(int i);

/* Grid trials a training run trains at once: models.train_parallel, or
 * for 0 the online CPUs divided by models.train_threads (at least 1), so
 * parallel trials x XGBoost threads fill the machine and no more.  c may
 * be NULL (the defaults).  Any thread. */
int cfg_train_parallel(const struct cfg *c);

#endif
