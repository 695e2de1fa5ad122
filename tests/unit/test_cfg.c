/* test_cfg.c - unit tests of cfg.c: defaults, block and flow YAML, every
 * kind of error with its exact FILE:LINE:COL message, environment
 * overrides, secrets (env and password_file), cfg_dump, reload checks, and
 * that config/mlopsd.yaml and docs/configuration.md cover every key.
 *
 * Files are written under a mkdtemp directory removed at the end.  Every
 * MLOPSD_* variable of the caller's environment is removed first so the
 * results do not depend on the shell the tests run from.
 */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/cfg.h"
#include "mlopsd/log.h"

static char srcdir[PATH_MAX];
static char paths[64][PATH_MAX];
static int npaths;

/* Write text to tmpdir/name; returns the path (static storage). */
static const char *write_file(const char *name, const char *text)
{
  char full[PATH_MAX];
  char *p = NULL;
  snprintf(full, sizeof(full), "%s/%s", fx_tmp(), name);
  for (int i = 0; i < npaths && !p; i++)
    if (strcmp(paths[i], full) == 0)
      p = paths[i];
  if (!p && npaths < 64)
    p = paths[npaths++];
  if (!p)
    abort(); /* more distinct files than this test is written for */
  memcpy(p, full, sizeof(full));
  FILE *f = fopen(p, "w");
  if (f) {
    fputs(text, f);
    fclose(f);
  }
  return p;
}

/* Load text written as tmpdir/c.yaml. */
static enum err_code load_text(struct cfg *c, const char *text, struct err *e)
{
  const char *p = write_file("c.yaml", text);
  return cfg_load(c, p, e);
}

/* The message with "TMPDIR/" removed, so tests can compare exactly. */
static const char *rel(const struct err *e)
{
  static char buf[ERR_MSG_MAX];
  size_t tl = strlen(fx_tmp());
  const char *m = e->msg;
  size_t n = 0;
  while (*m && n + 1 < sizeof(buf)) {
    if (strncmp(m, fx_tmp(), tl) == 0 && m[tl] == '/') {
      m += tl + 1;
      continue;
    }
    buf[n++] = *m++;
  }
  buf[n] = '\0';
  return buf;
}

/* cfg_dump output as a string (static storage), without the first
 * (comment) line that names the source. */
static const char *dump(const struct cfg *c)
{
  static char buf[16384];
  int fd = memfd_create("dump", 0);
  if (fd < 0)
    return "";
  cfg_dump(c, fd);
  ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  return buf;
}

/* Non-zero if a and b dump the same values (first line aside). */
static int same_values(const struct cfg *a, const struct cfg *b)
{
  static char da[16384];
  snprintf(da, sizeof(da), "%s", dump(a));
  const char *db = dump(b);
  const char *ba = strchr(da, '\n'), *bb = strchr(db, '\n');
  if (ba && bb && strcmp(ba, bb) == 0)
    return 1;
  fprintf(stderr, "  dumps differ:\n%s\n--- vs ---\n%s\n", da, db);
  return 0;
}

/* Remove MLOPSD_CONFIG and every MLOPSD_<SECTION>_* variable. */
static void clear_env(void)
{
  extern char **environ;
  char names[64][128];
  int n = 0;
  for (char **ep = environ; ep && *ep && n < 64; ep++) {
    const char *eq = strchr(*ep, '=');
    size_t l = eq ? (size_t)(eq - *ep) : strlen(*ep);
    if (strncmp(*ep, "MLOPSD_", 7) != 0 || l >= sizeof(names[0]))
      continue;
    if (strncmp(*ep, "MLOPSD_SRC=", 11) == 0 ||
        strncmp(*ep, "MLOPSD_BIN=", 11) == 0 ||
        strncmp(*ep, "MLOPSD_TEST_", 12) == 0)
      continue;
    memcpy(names[n], *ep, l);
    names[n++][l] = '\0';
  }
  for (int i = 0; i < n; i++)
    unsetenv(names[i]);
  unsetenv("OTHER_DB_PW");
  unsetenv("OTHER_TOKEN");
}

/* Expect load of text to fail with code and exactly msg (paths relative). */
#define CHECK_LOAD_ERR(text, want_code, want_msg)                             \
  do {                                                                        \
    struct cfg c_;                                                            \
    struct err e_ = {0};                                                      \
    CHECK_EQ_INT(load_text(&c_, (text), &e_), (want_code));                   \
    CHECK_EQ_INT(e_.code, (want_code));                                       \
    CHECK_EQ_STR(rel(&e_), (want_msg));                                       \
  } while (0)

/* The keys test_defaults and test_block_file read back: each field, its
 * default, and its value in tests/unit/data/cfg/every_key.yaml (NULL /
 * UNSET: that file leaves it out). */
struct cfg_field {
  const char *name;
  size_t off, size; /* size 0: a string */
  const char *def_s, *blk_s;
  long long def_i, blk_i;
};
#define UNSET LLONG_MIN
#define FS(f, d, b) {#f, offsetof(struct cfg, f), 0, d, b, 0, 0}
#define FI(f, d, b)                                                           \
  {#f, offsetof(struct cfg, f), sizeof(((struct cfg *)0)->f), NULL, NULL, d, b}
static const struct cfg_field FIELDS[] = {
    FS(server_listen, "0.0.0.0:3000", "127.0.0.1:8080"),
    FS(server_role, "all", NULL),
    FI(server_threads, 2, 4),
    FI(server_max_body_bytes, 1048576, 65536),
    FI(server_max_connections, 1024, 100),
    FI(server_idle_timeout_s, 30, 10),
    FS(server_default_model, "credit_score_classification", "other_model"),
    FS(server_log_full_policy, "reject", "serve"),
    FS(server_spool_dir, "var/spool", "/var/lib/mlopsd/spool"),
    FI(server_spool_max_bytes, 256L * 1024 * 1024, 1073741824L),
    FS(auth_admin_token_env, "MLOPSD_ADMIN_TOKEN", "OTHER_TOKEN"),
    FS(admin_token, "", NULL),
    FS(db_host, "127.0.0.1", "db.example"),
    FI(db_port, 3306, 3307),
    FS(db_user, "root", "mlops"),
    FS(db_password_env, "MLOPSD_DATABASE_PASSWORD", "OTHER_DB_PW"),
    FS(db_password_file, "", ""),
    FS(db_password, "", NULL),
    FS(db_name, "mlops", "mlops_test"),
    FS(db_socket, "", "/run/mysqld/mysqld.sock"),
    FI(db_pool, 8, 16),
    FI(db_connect_timeout_s, 5, 3),
    FS(sched_dags_dir, "config/dags", "dags"),
    FS(sched_timezone, "Asia/Seoul", "UTC"),
    FI(sched_workers, 2, 3),
    FI(sched_tick_ms, 1000, 250),
    FI(sched_lease_s, 30, 60),
    FS(models_specs_dir, "config/models", "specs"),
    FS(models_registry_dir, "var/registry", "reg"),
    FI(models_train_threads, 1, 2),
    FI(models_follow_ms, 1000, UNSET),
    FI(models_shadow, 0, UNSET),
    FI(log_level, LOG_INFO, LOG_DEBUG),
    FI(log_format, LOG_FMT_TEXT, LOG_FMT_JSON),
    FS(path, "", NULL),
};
#undef FS
#undef FI

/* Checks every field of c against its default (BLOCK 0) or its value in
 * every_key.yaml (BLOCK 1), naming the field in a failure. */
static void check_fields(const struct cfg *c, int block)
{
  for (size_t i = 0; i < sizeof(FIELDS) / sizeof(FIELDS[0]); i++) {
    const struct cfg_field *f = &FIELDS[i];
    const char *at = (const char *)c + f->off;
    CHECK_CASE(f->name);
    if (f->size == 0 && (!block || f->blk_s)) {
      CHECK_EQ_STR(at, block ? f->blk_s : f->def_s);
    } else if (f->size && (!block || f->blk_i != UNSET)) {
      struct check_field cf = {f->name, f->off, f->size};
      CHECK_EQ_INT(check_field_value(c, &cf), block ? f->blk_i : f->def_i);
    }
  }
  CHECK_CASE(NULL);
}

TEST(test_defaults)
{
  struct cfg c;
  memset(&c, 0x5a, sizeof(c));
  cfg_defaults(&c);
  check_fields(&c, 0);
}

TEST(test_key_table)
{
  int n = cfg_key_count();
  CHECK_EQ_INT(n, 50);
  CHECK(cfg_key_name(-1) == NULL);
  CHECK(cfg_key_name(n) == NULL);
  CHECK_EQ_STR(cfg_key_name(0), "server.listen");
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++)
      CHECK(strcmp(cfg_key_name(i), cfg_key_name(j)) != 0);
}

/* The default path only: no file there means defaults + environment. */
TEST(test_default_path_missing)
{
  char cwd[PATH_MAX];
  struct cfg c;
  struct err e = {0};
  REQUIRE(getcwd(cwd, sizeof(cwd)) != NULL);
  REQUIRE(chdir(fx_tmp()) == 0);
  setenv("MLOPSD_DATABASE_PORT", "3307", 1);
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_OK);
  CHECK_EQ_STR(c.path, "");
  CHECK_EQ_INT(c.db_port, 3307);
  CHECK_EQ_INT(c.server_threads, 2);
  /* An empty MLOPSD_CONFIG counts as unset. */
  setenv("MLOPSD_CONFIG", "", 1);
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_OK);
  /* The default file is used when present. */
  REQUIRE(mkdir("config", 0700) == 0);
  write_file("config/mlopsd.yaml", "server: { threads: 5 }\n");
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_OK);
  CHECK_EQ_INT(c.server_threads, 5);
  CHECK_EQ_STR(c.path, "config/mlopsd.yaml");
  unlink("config/mlopsd.yaml");
  rmdir("config");
  CHECK(chdir(cwd) == 0);
  clear_env();
}

TEST(test_missing_files)
{
  struct cfg c;
  struct err e = {0};
  char p[PATH_MAX + 16];
  snprintf(p, sizeof(p), "%s/nope.yaml", fx_tmp());
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_IO);
  CHECK_EQ_STR(rel(&e), "cannot open nope.yaml: No such file or directory");
  /* MLOPSD_CONFIG names a file explicitly: missing is an error too. */
  setenv("MLOPSD_CONFIG", p, 1);
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_IO);
  CHECK_EQ_STR(rel(&e), "cannot open nope.yaml: No such file or directory");
  /* ... and is used when it exists; an explicit path wins over it. */
  setenv("MLOPSD_CONFIG", write_file("env.yaml", "database: {port: 1}\n"), 1);
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_OK);
  CHECK_EQ_INT(c.db_port, 1);
  CHECK_EQ_INT(cfg_load(&c, write_file("arg.yaml", "database: {port: 2}\n"),
                        &e),
               ERR_OK);
  CHECK_EQ_INT(c.db_port, 2);
  unsetenv("MLOPSD_CONFIG");
  CHECK_EQ_INT(cfg_load(&c, fx_tmp(), &e), ERR_IO);
  CHECK(strstr(e.msg, " is a directory") != NULL);
}

TEST(test_block_file)
{
  /* every key in block style, none at its default */
  struct cfg c;
  struct err e = {0};
  CHECK_EQ_INT(cfg_load(&c, "tests/unit/data/cfg/every_key.yaml", &e), ERR_OK);
  CHECK_EQ_STR(e.msg, "");
  check_fields(&c, 1);
  CHECK_EQ_STR(c.path, "tests/unit/data/cfg/every_key.yaml");
}

TEST(test_flow_file)
{
  /* DESIGN.md's example, verbatim. */
  struct cfg c;
  struct err e = {0};
  const char *y =
      "server:    { listen: \"0.0.0.0:3000\", threads: 2, max_body_bytes: "
      "1048576 }\n"
      "auth:      { admin_token_env: MLOPSD_ADMIN_TOKEN }   # Bearer token "
      "for /api/v2\n"
      "database:  { host: 127.0.0.1, port: 3306, user: root, password_env: "
      "MLOPSD_DATABASE_PASSWORD,\n"
      "             name: mlops, pool: 8 }\n"
      "scheduler: { dags_dir: config/dags, timezone: Asia/Seoul, workers: 2 "
      "}\n"
      "models:    { specs_dir: config/models, registry_dir: var/registry }\n"
      "logging:   { level: info, format: text }             # or json\n";
  struct cfg d;
  cfg_defaults(&d);
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK(same_values(&c, &d));

  /* Flow and block mixed, a document marker, a flow mapping on several
   * lines, a quoted number for an int, an upper-case enum. */
  y = "---\n"
      "server: {threads: \"7\",\n"
      "         listen: \"[::1]:3001\"}\n"
      "logging:\n"
      "  level: WARN\n"
      "database: {socket: \"/tmp/s.sock\", name: x}\n"
      "...\n";
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_STR(e.msg, "");
  CHECK_EQ_INT(c.server_threads, 7);
  CHECK_EQ_STR(c.server_listen, "[::1]:3001");
  CHECK_EQ_INT(c.log_level, LOG_WARN);
  CHECK_EQ_STR(c.db_socket, "/tmp/s.sock");
  CHECK_EQ_STR(c.db_name, "x");
}

TEST(test_empty_files)
{
  struct cfg c, d;
  struct err e = {0};
  cfg_defaults(&d);
  const char *texts[] = {"", "# only a comment\n", "---\n", "~\n",
                         "server:\nlogging:\n", "server: {}\nauth: ~\n"};
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
    CHECK_EQ_INT(load_text(&c, texts[i], &e), ERR_OK);
    CHECK(same_values(&c, &d));
  }
  /* An empty string value clears a string key; null too. */
  CHECK_EQ_INT(load_text(&c, "database: {password_env: '', socket: ~}\n", &e),
               ERR_OK);
  CHECK_EQ_STR(c.db_password_env, "");
  CHECK_EQ_STR(c.db_socket, "");
}

TEST(test_errors_keys)
{
  CHECK_LOAD_ERR("server:\n  threads: 2\nfoo:\n  a: 1\n", ERR_CONFIG,
                 "c.yaml:3:1: unknown section 'foo' (expected one of: "
                 "server, auth, database, scheduler, models, logging)");
  /* the HTTP threads' scheduling: ranges, file:line:col */
  CHECK_LOAD_ERR("server:\n  thread_nice: -21\n", ERR_CONFIG,
                 "c.yaml:2:16: key 'server.thread_nice': expected integer "
                 "-20..19, got '-21'");
  CHECK_LOAD_ERR("server:\n  thread_slice_us: 100001\n", ERR_CONFIG,
                 "c.yaml:2:20: key 'server.thread_slice_us': expected integer "
                 "0..100000, got '100001'");
  CHECK_LOAD_ERR("server:\n  threads: 2\n  thread: 3\n", ERR_CONFIG,
                 "c.yaml:3:3: unknown key 'server.thread' (expected one of: "
                 "listen, role, threads, thread_nice, thread_slice_us, "
                 "max_body_bytes, max_connections, "
                 "idle_timeout, default_model, log_full_policy, spool_dir, "
                 "spool_max_bytes, log_durability, log_buffer_dir, "
                 "spool_min_free_bytes)");
  CHECK_LOAD_ERR("logging: { level: info, colour: yes }\n", ERR_CONFIG,
                 "c.yaml:1:25: unknown key 'logging.colour' (expected one "
                 "of: level, format, retention_days, retention_s, "
                 "partition_s, partitions_ahead, maintenance_s, "
                 "archive_dir)");
  CHECK_LOAD_ERR("server: {threads: 2, threads: 3}\n", ERR_CONFIG,
                 "c.yaml:1:22: duplicate key 'server.threads' (first at "
                 "line 1, column 10)");
  CHECK_LOAD_ERR("server:\n  threads: 2\nlogging: {}\nserver:\n"
                 "  listen: ':1'\n",
                 ERR_CONFIG,
                 "c.yaml:4:1: duplicate section 'server' (first at line 1, "
                 "column 1)");
  CHECK_LOAD_ERR("- server\n- database\n", ERR_CONFIG,
                 "c.yaml:1:1: expected a mapping of sections (server:, "
                 "database:, ...), got a list");
  CHECK_LOAD_ERR("just text\n", ERR_CONFIG,
                 "c.yaml:1:1: expected a mapping of sections (server:, "
                 "database:, ...), got a scalar");
  CHECK_LOAD_ERR("server: 5\n", ERR_CONFIG,
                 "c.yaml:1:9: section 'server': expected a mapping of keys, "
                 "got a scalar");
  CHECK_LOAD_ERR("database:\n  - host\n", ERR_CONFIG,
                 "c.yaml:2:3: section 'database': expected a mapping of "
                 "keys, got a list");
  CHECK_LOAD_ERR("server: {threads: 2}\n---\nlogging: {level: info}\n",
                 ERR_CONFIG, "c.yaml:2:1: only one YAML document is allowed");
  CHECK_LOAD_ERR("{server: {threads: 2}, [a]: 1}\n", ERR_CONFIG,
                 "c.yaml:1:24: expected a section name (server, auth, "
                 "database, scheduler, models, logging), got a list");
}

TEST(test_errors_values)
{
  /* The message of the brief, in flow style. */
  CHECK_LOAD_ERR("server: { listen: \"0.0.0.0:3000\", threads: abc }\n",
                 ERR_CONFIG,
                 "c.yaml:1:44: key 'server.threads': expected integer "
                 "1..256, got 'abc'");
  CHECK_LOAD_ERR("server:\n  threads: [1, 2]\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got a list");
  CHECK_LOAD_ERR("database:\n  host: {a: 1}\n", ERR_CONFIG,
                 "c.yaml:2:9: key 'database.host': expected a non-empty "
                 "string of at most 255 bytes, got a mapping");
  CHECK_LOAD_ERR("server:\n  threads: 0\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got '0'");
  CHECK_LOAD_ERR("server:\n  threads: 257\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got '257'");
  CHECK_LOAD_ERR("server:\n  threads: 99999999999999999999999\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got '99999999999999999999999'");
  CHECK_LOAD_ERR("server:\n  threads: 2.5\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got '2.5'");
  /* An empty value is reported right after its key's colon. */
  CHECK_LOAD_ERR("server:\n  threads:\n", ERR_CONFIG,
                 "c.yaml:2:11: key 'server.threads': expected integer "
                 "1..256, got an empty value");
  CHECK_LOAD_ERR("server:\n  max_body_bytes: 512\n", ERR_CONFIG,
                 "c.yaml:2:19: key 'server.max_body_bytes': expected integer "
                 "1024..1073741824, got '512'");
  CHECK_LOAD_ERR("logging:\n  level: verbose\n", ERR_CONFIG,
                 "c.yaml:2:10: key 'logging.level': expected one of "
                 "error|warn|info|debug, got 'verbose'");
  CHECK_LOAD_ERR("server: {log_full_policy: drop}\n", ERR_CONFIG,
                 "c.yaml:1:27: key 'server.log_full_policy': expected one "
                 "of reject|serve, got 'drop'");
  CHECK_LOAD_ERR("server:\n  listen: 3000\n", ERR_CONFIG,
                 "c.yaml:2:11: key 'server.listen': expected HOST:PORT with "
                 "port 0..65535, got '3000'");
  CHECK_LOAD_ERR("server:\n  listen: \"0.0.0.0:70000\"\n", ERR_CONFIG,
                 "c.yaml:2:11: key 'server.listen': expected HOST:PORT with "
                 "port 0..65535, got '0.0.0.0:70000'");
  CHECK_LOAD_ERR("database:\n  name: \"mlops; drop\"\n", ERR_CONFIG,
                 "c.yaml:2:9: key 'database.name': expected a database name "
                 "of 1..64 letters, digits or _, got 'mlops; drop'");
  /* A password put where the variable name belongs is not echoed. */
  CHECK_LOAD_ERR("database:\n  password_env: \"hunter2!\"\n", ERR_CONFIG,
                 "c.yaml:2:17: key 'database.password_env': expected an "
                 "environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most "
                 "127 bytes) or empty, got a value that is not one (not "
                 "shown)");
  setenv("MLOPSD_AUTH_ADMIN_TOKEN_ENV", "s3cr3t-t0ken", 1);
  CHECK_LOAD_ERR("", ERR_CONFIG,
                 "environment variable MLOPSD_AUTH_ADMIN_TOKEN_ENV: key "
                 "'auth.admin_token_env': expected an environment variable "
                 "name ([A-Za-z_][A-Za-z0-9_]*, at most 127 bytes) or empty, "
                 "got a value that is not one (not shown)");
  unsetenv("MLOPSD_AUTH_ADMIN_TOKEN_ENV");
  CHECK_LOAD_ERR("database:\n  user: \"\"\n", ERR_CONFIG,
                 "c.yaml:2:9: key 'database.user': expected a non-empty "
                 "string of at most 127 bytes, got an empty value");
  CHECK_LOAD_ERR("server:\n  threads: &t 2\n  max_connections: *t\n",
                 ERR_CONFIG,
                 "c.yaml:3:20: key 'server.max_connections': expected "
                 "integer 1..65535, got an alias (aliases are not "
                 "supported)");
  /* A control character and an overlong value are quoted back safely. */
  CHECK_LOAD_ERR("server:\n  threads: \"1\\t2\"\n", ERR_CONFIG,
                 "c.yaml:2:12: key 'server.threads': expected integer "
                 "1..256, got '1\\x092'");
  char y[600];
  snprintf(y, sizeof(y), "database:\n  host: %0300d\n", 7);
  CHECK_LOAD_ERR(y, ERR_CONFIG,
                 "c.yaml:2:9: key 'database.host': expected a non-empty "
                 "string of at most 255 bytes, got "
                 "'000000000000000000000000000000000000000000000000...'");
}

TEST(test_errors_syntax)
{
  CHECK_LOAD_ERR("server:\n  threads: [1, 2\n", ERR_PARSE,
                 "c.yaml:3:1: YAML syntax error: did not find expected ',' "
                 "or ']' while parsing a flow sequence");
  CHECK_LOAD_ERR("server:\n  listen: \"0.0.0.0:3000\n  threads: 2\n",
                 ERR_PARSE,
                 "c.yaml:4:1: YAML syntax error: found unexpected end of "
                 "stream while scanning a quoted scalar");
  CHECK_LOAD_ERR("server:\n  threads: 2\n   listen: x: y\n", ERR_PARSE,
                 "c.yaml:3:10: YAML syntax error: mapping values are not "
                 "allowed in this context");
  CHECK_LOAD_ERR("server:\n\tthreads: 2\n", ERR_PARSE,
                 "c.yaml:2:1: YAML syntax error: found character that "
                 "cannot start any token while scanning for the next token");
  /* Bad UTF-8: libyaml gives an offset; the message still has line:col. */
  CHECK_LOAD_ERR("server:\n  listen: \"\xff\"\n", ERR_PARSE,
                 "c.yaml:2:12: YAML syntax error: invalid leading UTF-8 "
                 "octet");
}

TEST(test_password_in_yaml)
{
  struct cfg c;
  struct err e = {0};
  CHECK_EQ_INT(load_text(&c,
                         "database:\n  host: h\n  password: hunter2\n", &e),
               ERR_CONFIG);
  CHECK_EQ_STR(rel(&e),
               "c.yaml:3:3: key 'database.password': secrets are never read "
               "from the config file; use database.password_env (the name "
               "of an environment variable) or database.password_file");
  CHECK(strstr(e.msg, "hunter2") == NULL);
  CHECK_EQ_STR(c.db_password, "");
  CHECK_LOAD_ERR("auth: {admin_token: abc}\n", ERR_CONFIG,
                 "c.yaml:1:8: key 'auth.admin_token': secrets are never read "
                 "from the config file; use auth.admin_token_env (the name "
                 "of an environment variable)");
}

TEST(test_env_overrides)
{
  struct cfg c;
  struct err e = {0};
  const char *p =
      write_file("env.yaml", "database: {host: filehost, port: 3310}\n"
                             "server: {threads: 3}\n");
  setenv("MLOPSD_DATABASE_HOST", "envhost", 1);
  setenv("MLOPSD_SERVER_LISTEN", "127.0.0.1:9000", 1);
  setenv("MLOPSD_LOGGING_LEVEL", "DEBUG", 1);
  setenv("MLOPSD_LOGGING_FORMAT", "json", 1);
  setenv("MLOPSD_SCHEDULER_LEASE_S", "45", 1);
  setenv("MLOPSD_SERVER_SPOOL_MAX_BYTES", "2147483648", 1);
  setenv("MLOPSD_SERVER_LOG_FULL_POLICY", "serve", 1);
  setenv("MLOPSD_DATABASE_SOCKET", "", 1);
  setenv("MLOPSD_SERVER_ROLE", "API", 1);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_OK);
  CHECK_EQ_STR(e.msg, "");
  CHECK_EQ_STR(c.db_host, "envhost");     /* env wins over the file */
  CHECK_EQ_INT(c.db_port, 3310);          /* file wins over default */
  CHECK_EQ_INT(c.server_threads, 3);
  CHECK_EQ_STR(c.server_listen, "127.0.0.1:9000");
  CHECK_EQ_INT(c.log_level, LOG_DEBUG);
  CHECK_EQ_INT(c.log_format, LOG_FMT_JSON);
  CHECK_EQ_INT(c.sched_lease_s, 45);
  CHECK_EQ_INT(c.server_spool_max_bytes, 2147483648L);
  CHECK_EQ_STR(c.server_log_full_policy, "serve");
  CHECK_EQ_STR(c.db_socket, "");
  CHECK_EQ_STR(c.server_role, "api");

  setenv("MLOPSD_SERVER_ROLE", "worker", 1);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "environment variable MLOPSD_SERVER_ROLE: key "
                      "'server.role': expected one of "
                      "all|api|scheduler, got 'worker'");
  unsetenv("MLOPSD_SERVER_ROLE");
  setenv("MLOPSD_SERVER_THREADS", "abc", 1);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "environment variable MLOPSD_SERVER_THREADS: key "
                      "'server.threads': expected integer 1..256, got 'abc'");
  setenv("MLOPSD_SERVER_THREADS", "4", 1);
  setenv("MLOPSD_DATABASE_PORT", "0", 1);
  CHECK_EQ_INT(cfg_load(&c, NULL, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "environment variable MLOPSD_DATABASE_PORT: key "
                      "'database.port': expected integer 1..65535, got '0'");
  unsetenv("MLOPSD_DATABASE_PORT");
  setenv("MLOPSD_LOGGING_LEVEL", "loud", 1);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "environment variable MLOPSD_LOGGING_LEVEL: key "
                      "'logging.level': expected one of "
                      "error|warn|info|debug, got 'loud'");
  clear_env();
}

TEST(test_env_enum_matches_log)
{
  /* The table's enum order must be log.h's: check with log.c's parsers. */
  static const struct {
    int format; /* 0: logging.level, 1: logging.format */
    const char *value;
  } v[] = {{0, "error"}, {0, "warn"}, {0, "info"},
           {0, "debug"}, {1, "text"}, {1, "json"}};
  struct cfg c;
  struct err e = {0};
  const char *p = write_file("empty.yaml", "");
  for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
    enum log_level l = LOG_ERROR;
    enum log_format f = LOG_FMT_TEXT;
    CHECK_CASE(v[i].value);
    setenv(v[i].format ? "MLOPSD_LOGGING_FORMAT" : "MLOPSD_LOGGING_LEVEL",
           v[i].value, 1);
    CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_OK);
    CHECK_EQ_INT(v[i].format ? log_format_parse(v[i].value, &f)
                             : log_level_parse(v[i].value, &l),
                 ERR_OK);
    CHECK_EQ_INT(v[i].format ? c.log_format : c.log_level,
                 v[i].format ? (int)f : (int)l);
  }
  CHECK_CASE(NULL);
  clear_env();
}

TEST(test_env_unknown_warns)
{
  int pfd[2];
  char buf[2048] = {0};
  struct cfg c;
  struct err e = {0};
  REQUIRE(pipe(pfd) == 0);
  fcntl(pfd[0], F_SETFL, O_NONBLOCK);
  log_set_fd(pfd[1]);
  setenv("MLOPSD_SERVER_THREDS", "4", 1);
  setenv("MLOPSD_DATABASE_PASSWORD", "not-a-key-but-the-secret", 1);
  setenv("MLOPSD_UNRELATED", "x", 1);
  CHECK_EQ_INT(cfg_load(&c, write_file("empty.yaml", ""), &e), ERR_OK);
  log_set_fd(2);
  ssize_t n = read(pfd[0], buf, sizeof(buf) - 1);
  CHECK(n > 0);
  CHECK(strstr(buf, "WARN  cfg tid=") != NULL);
  CHECK(strstr(buf, "environment variable MLOPSD_SERVER_THREDS is not a "
                    "config key (ignored)") != NULL);
  CHECK(strstr(buf, "PASSWORD") == NULL);
  CHECK(strstr(buf, "UNRELATED") == NULL);
  close(pfd[0]);
  close(pfd[1]);
  unsetenv("MLOPSD_UNRELATED");
  clear_env();
}

/* cfg_load of PATH, then its two resolved secrets; failures are reported
 * at the caller's LINE. */
#define CHECK_SECRETS(path, pw, tok) check_secrets_at(__LINE__, path, pw, tok)
static void check_secrets_at(int line, const char *path, const char *pw,
                             const char *tok)
{
  struct cfg c;
  struct err e = {0};
  if (cfg_load(&c, path, &e) != ERR_OK) {
    check_fail_at(__FILE__, line, "cfg_load %s: %s", path, e.msg);
    return;
  }
  if (strcmp(c.db_password, pw) != 0)
    check_fail_at(__FILE__, line, "db_password \"%s\", want \"%s\"",
                  c.db_password, pw);
  if (strcmp(c.admin_token, tok) != 0)
    check_fail_at(__FILE__, line, "admin_token \"%s\", want \"%s\"",
                  c.admin_token, tok);
}

TEST(test_secrets_env)
{
  struct cfg c;
  struct err e = {0};
  const char *p = write_file("empty.yaml", "");
  CHECK_SECRETS(p, "", "");
  setenv("MLOPSD_DATABASE_PASSWORD", "pw-from-env", 1);
  setenv("MLOPSD_ADMIN_TOKEN", "tok-from-env", 1);
  CHECK_SECRETS(p, "pw-from-env", "tok-from-env");
  /* Other variable names, from the file and from the environment. */
  setenv("OTHER_DB_PW", "other-pw", 1);
  setenv("OTHER_TOKEN", "other-tok", 1);
  CHECK_SECRETS(write_file("s.yaml", "database: {password_env: OTHER_DB_PW}\n"),
                "other-pw", "tok-from-env");
  setenv("MLOPSD_AUTH_ADMIN_TOKEN_ENV", "OTHER_TOKEN", 1);
  CHECK_SECRETS(p, "pw-from-env", "other-tok");
  /* Empty names: nothing is read. */
  setenv("MLOPSD_AUTH_ADMIN_TOKEN_ENV", "", 1);
  setenv("MLOPSD_DATABASE_PASSWORD_ENV", "", 1);
  CHECK_SECRETS(p, "", "");
  clear_env();
  /* Too long for the buffer: an error naming the variable, not the value. */
  char big[300];
  memset(big, 'p', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  setenv("MLOPSD_DATABASE_PASSWORD", big, 1);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "environment variable MLOPSD_DATABASE_PASSWORD "
                      "(database.password_env): expected a password of at "
                      "most 255 bytes");
  CHECK_EQ_STR(c.db_password, "");
  clear_env();
}

TEST(test_password_file)
{
  struct cfg c;
  struct err e = {0};
  char y[PATH_MAX + 64];
  const char *pf = write_file("pw.txt", "file-pw\n");
  setenv("MLOPSD_DATABASE_PASSWORD", "env-pw", 1);
  snprintf(y, sizeof(y), "database:\n  password_file: %s\n", pf);
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_STR(c.db_password, "file-pw"); /* the file wins over the env */
  write_file("pw.txt", "crlf-pw\r\n");
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_STR(c.db_password, "crlf-pw");
  write_file("pw.txt", "no-newline");
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_STR(c.db_password, "no-newline");
  write_file("pw.txt", "with space inside \n");
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_STR(c.db_password, "with space inside ");
  /* Through the environment as well. */
  setenv("MLOPSD_DATABASE_PASSWORD_FILE", pf, 1);
  CHECK_EQ_INT(cfg_load(&c, write_file("empty.yaml", ""), &e), ERR_OK);
  CHECK_EQ_STR(c.db_password, "with space inside ");
  unsetenv("MLOPSD_DATABASE_PASSWORD_FILE");

  /* Unreadable: missing, a directory, too long. */
  snprintf(y, sizeof(y), "database: {password_file: %s/missing.txt}\n",
           fx_tmp());
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_IO);
  CHECK_EQ_STR(rel(&e), "database.password_file: cannot open missing.txt: "
                        "No such file or directory");
  CHECK_EQ_STR(c.db_password, "");
  snprintf(y, sizeof(y), "database: {password_file: %s}\n", fx_tmp());
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_IO);
  CHECK(strstr(e.msg, " is a directory") != NULL);
  char big[400];
  memset(big, 'q', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  write_file("pw.txt", big);
  snprintf(y, sizeof(y), "database: {password_file: %s}\n", pf);
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_CONFIG);
  CHECK_EQ_STR(rel(&e), "database.password_file pw.txt: expected a password "
                        "of at most 255 bytes without NUL bytes");
  CHECK_EQ_STR(c.db_password, "");
  /* a file far over any password: refused by the read cap */
  static char huge[8192];
  memset(huge, 'q', sizeof(huge) - 1);
  write_file("pw.txt", huge);
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_IO);
  CHECK_EQ_STR(rel(&e), "database.password_file: pw.txt is larger than "
                        "4096 bytes");
  memset(big + 255, '\0', 1);
  write_file("pw.txt", big); /* exactly 255 bytes: fits */
  CHECK_EQ_INT(load_text(&c, y, &e), ERR_OK);
  CHECK_EQ_INT(strlen(c.db_password), 255);
  clear_env();
}

TEST(test_dump_hides_secrets)
{
  struct cfg c, c2;
  struct err e = {0};
  setenv("MLOPSD_DATABASE_PASSWORD", "Sup3r-S3cret", 1);
  setenv("MLOPSD_ADMIN_TOKEN", "adm1n-T0ken", 1);
  const char *p = write_file("d.yaml", "server: {default_model: \"a\\\"b\"}\n"
                                       "database: {socket: /tmp/x.sock}\n");
  REQUIRE(cfg_load(&c, p, &e) == ERR_OK);
  char out[16384];
  snprintf(out, sizeof(out), "%s", dump(&c));
  CHECK(strstr(out, "Sup3r") == NULL);
  CHECK(strstr(out, "adm1n") == NULL);
  CHECK(strstr(out, "  # password: ***\n") != NULL);
  CHECK(strstr(out, "  # admin_token: ***\n") != NULL);
  CHECK(strstr(out, "  threads: 2\n") != NULL);
  CHECK(strstr(out, "  listen: \"0.0.0.0:3000\"\n") != NULL);
  CHECK(strstr(out, "  default_model: \"a\\\"b\"\n") != NULL);
  CHECK(strstr(out, "  level: info\n") != NULL);
  CHECK(strstr(out, "# mlopsd configuration in effect (from ") == out);

  /* The dump is a valid config giving the same values back. */
  REQUIRE(cfg_load(&c2, write_file("dump.yaml", out), &e) == ERR_OK);
  CHECK_EQ_STR(c2.server_default_model, "a\"b");
  CHECK(same_values(&c, &c2));

  clear_env();
  REQUIRE(cfg_load(&c, p, &e) == ERR_OK);
  snprintf(out, sizeof(out), "%s", dump(&c));
  CHECK(strstr(out, "  # password: (not set)\n") != NULL);
  CHECK(strstr(out, "  # admin_token: (not set)\n") != NULL);
}

TEST(test_check_reload)
{
  struct cfg a, b;
  struct err e = {0};
  cfg_defaults(&a);
  cfg_defaults(&b);
  CHECK_EQ_INT(cfg_check_reload(&a, &b, &e), ERR_OK);
  b.log_level = LOG_DEBUG;
  snprintf(b.server_default_model, sizeof(b.server_default_model), "m2");
  b.sched_tick_ms = 500;
  snprintf(b.db_password, sizeof(b.db_password), "changed");
  CHECK_EQ_INT(cfg_check_reload(&a, &b, &e), ERR_OK);
  snprintf(b.server_listen, sizeof(b.server_listen), "0.0.0.0:4000");
  CHECK_EQ_INT(cfg_check_reload(&a, &b, &e), ERR_CONFIG);
  CHECK_EQ_STR(e.msg, "key 'server.listen' changed (\"0.0.0.0:3000\" -> "
                      "\"0.0.0.0:4000\") but cannot change on reload: "
                      "restart mlopsd");
  cfg_defaults(&b);
  b.db_pool = 9;
  CHECK_EQ_INT(cfg_check_reload(&a, &b, &e), ERR_CONFIG);
  CHECK(strstr(e.msg, "'database.pool' changed (8 -> 9)") != NULL);
}

/* Read a file of the source tree into a malloc'd string (NULL if absent). */
static char *read_src(const char *rel_path)
{
  char p[PATH_MAX * 2];
  snprintf(p, sizeof(p), "%s/%s", srcdir, rel_path);
  FILE *f = fopen(p, "r");
  if (!f)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  if (buf && fread(buf, 1, (1 << 20) - 1, f) == 0)
    FREE_NULL(buf);
  fclose(f);
  return buf;
}

TEST(test_shipped_config)
{
  struct cfg c, d;
  struct err e = {0};
  char p[PATH_MAX * 2];
  snprintf(p, sizeof(p), "%s/config/mlopsd.yaml", srcdir);
  CHECK_EQ_INT(cfg_load(&c, p, &e), ERR_OK);
  CHECK_EQ_STR(e.msg, "");
  cfg_defaults(&d);
  CHECK(same_values(&c, &d)); /* values match defaults */

  /* Every key is written (and so documented) in the shipped file, and
   * has a row in docs/configuration.md with its variable. */
  char *yaml = read_src("config/mlopsd.yaml");
  char *doc = read_src("docs/configuration.md");
  REQUIRE(yaml != NULL);
  REQUIRE(doc != NULL);
  for (int i = 0; i < cfg_key_count(); i++) {
    const char *full = cfg_key_name(i);
    const char *dot = strchr(full, '.');
    char line[160], env[160], row[160];
    snprintf(line, sizeof(line), "\n  %s: ", dot + 1);
    snprintf(env, sizeof(env), "MLOPSD_%.*s_%s", (int)(dot - full), full,
             dot + 1);
    for (char *q = env; *q; q++)
      *q = (char)toupper((unsigned char)*q);
    snprintf(row, sizeof(row), "| `%s` |", full);
    if (!strstr(yaml, line)) {
      fprintf(stderr, "  config/mlopsd.yaml lacks %s\n", full);
      CHECK(!"key in config/mlopsd.yaml");
    }
    if (!strstr(doc, row) || !strstr(doc, env)) {
      fprintf(stderr, "  docs/configuration.md lacks %s / %s\n", full, env);
      CHECK(!"key in docs/configuration.md");
    }
  }
  free(yaml);
  free(doc);
}

int main(void)
{
  const char *s = getenv("MLOPSD_SRC");
  snprintf(srcdir, sizeof(srcdir), "%s", s && *s ? s : ".");
  clear_env();

  RUN(test_defaults);
  RUN(test_key_table);
  RUN(test_default_path_missing);
  RUN(test_missing_files);
  RUN(test_block_file);
  RUN(test_flow_file);
  RUN(test_empty_files);
  RUN(test_errors_keys);
  RUN(test_errors_values);
  RUN(test_errors_syntax);
  RUN(test_password_in_yaml);
  RUN(test_env_overrides);
  RUN(test_env_enum_matches_log);
  RUN(test_env_unknown_warns);
  RUN(test_secrets_env);
  RUN(test_password_file);
  RUN(test_dump_hides_secrets);
  RUN(test_check_reload);
  RUN(test_shipped_config);

  for (int i = 0; i < npaths; i++)
    unlink(paths[i]);
  rmdir(fx_tmp());
  return check_done();
}
