/* test_daemon.c - the daemon's wiring (daemon.h) in process: create,
 * start, run, stop, destroy against the test MariaDB, and the clear
 * errors of a bad configuration.
 *
 * Set-up: a temp dir with an empty registry and DAG directory, its own
 * database it_daemon (`mlopsd db init`), the HTTP server on an ephemeral
 * port (server.listen 127.0.0.1:0, read back with daemon_http_port).
 *
 * Checked: /healthz answers once started; the admin API is wired with the
 * daemon's config (GET /api/v2/auth reports the token configured here);
 * the scheduler is wired (its metrics are on /metrics) and left out with
 * no_sched; daemon_request_stop from another thread ends daemon_run;
 * daemon_stop is clean, the pid file is removed and the port is closed;
 * no cfg, a registry path that is a file and a pid file of a running
 * process each fail daemon_create, an unparseable listen address fails
 * daemon_start, each with an error naming what and where.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mlopsd/cfg.h"
#include "mlopsd/daemon.h"
#include "mlopsd/db.h"
#include "mlopsd/err.h"

#define DBNAME "it_daemon"
#define TOKEN "it-daemon-t0ken"

static char g_tmp[256], g_src[1024], g_bin[1024];

/* ---- helpers ------------------------------------------------------------ */

struct buf {
  char *p;
  size_t n;
};

static size_t on_data(char *d, size_t sz, size_t nm, void *arg)
{
  struct buf *b = arg;
  size_t k = sz * nm;
  char *np = realloc(b->p, b->n + k + 1);
  if (!np)
    return 0;
  b->p = np;
  memcpy(b->p + b->n, d, k);
  b->n += k;
  b->p[b->n] = '\0';
  return k;
}

/* GET path on port; the status (-1 when no answer), body in *out (free). */
static long http_get(int port, const char *path, char **out)
{
  char url[256];
  struct buf b = {0};
  long status = -1;
  CURL *h = curl_easy_init();
  if (!h)
    return -1;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if (curl_easy_perform(h) == CURLE_OK)
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  if (out)
    *out = b.p;
  else
    free(b.p);
  return status;
}

/* The config every test starts from: the temp dir's registry, DAGs and
 * spool, the test database, an ephemeral port, an admin token. */
static int base_cfg(struct cfg *c)
{
  struct err e = {0};
  char path[512];
  snprintf(path, sizeof(path), "%s/mlopsd.yaml", g_tmp);
  if (cfg_load(c, path, &e) != ERR_OK) {
    fprintf(stderr, "cfg_load: %s\n", e.msg);
    return -1;
  }
  snprintf(c->admin_token, sizeof(c->admin_token), "%s", TOKEN);
  return 0;
}

static int write_cfg(void)
{
  return fx_daemon_cfg(g_tmp, g_src, 0, DBNAME, 200, NULL, NULL);
}

/* Drop it_daemon and create it with `mlopsd db init`. */
static int setup_db(void)
{
  char cfg[512], log[512];
  snprintf(cfg, sizeof(cfg), "%s/mlopsd.yaml", g_tmp);
  snprintf(log, sizeof(log), "%s/dbinit.log", g_tmp);
  return fx_db_init(DBNAME, g_bin, g_src, cfg, log);
}

static void *stopper(void *arg)
{
  struct timespec ts = {0, 200 * 1000000L};
  nanosleep(&ts, NULL);
  daemon_request_stop(arg);
  return NULL;
}

/* ---- tests --------------------------------------------------------------- */

TEST(lifecycle)
{
  struct cfg c;
  struct err e = {0};
  struct daemon *d = NULL;
  char pid_file[512], *body = NULL;
  REQUIRE(base_cfg(&c) == 0);
  snprintf(pid_file, sizeof(pid_file), "%s/mlopsd.pid", g_tmp);
  struct daemon_opts o = {.cfg = &c, .pid_file = pid_file,
                          .stop_timeout_ms = 3000};
  REQUIRE(daemon_create(&d, &o, &e) == ERR_OK);
  CHECK(access(pid_file, F_OK) == 0);
  if (daemon_start(d, &e) != ERR_OK) {
    fprintf(stderr, "  daemon_start: %s\n", e.msg);
    daemon_destroy(d);
    REQUIRE(0);
  }
  int port = daemon_http_port(d);
  CHECK(port > 0);
  CHECK_EQ_INT(http_get(port, "/healthz", NULL), 200);
  /* admin: wired with the daemon's config (the token set above) */
  CHECK_EQ_INT(http_get(port, "/api/v2/auth", &body), 200);
  CHECK(body && strstr(body, "\"admin_enabled\":true"));
  free(body);
  body = NULL;
  CHECK_EQ_INT(http_get(port, "/api/v2/dags", NULL), 401);
  /* scheduler: wired (its metrics are registered) */
  CHECK_EQ_INT(http_get(port, "/metrics", &body), 200);
  CHECK(body && strstr(body, "mlopsd_dag_runs_total"));
  free(body);

  pthread_t t;
  REQUIRE(pthread_create(&t, NULL, stopper, d) == 0);
  daemon_run(d); /* returns on the stopper's request */
  pthread_join(t, NULL);
  CHECK_EQ_INT(daemon_stop(d, &e), ERR_OK);
  CHECK_EQ_INT(daemon_stop(d, &e), ERR_OK); /* idempotent */
  CHECK_EQ_INT(http_get(port, "/healthz", NULL), -1);
  daemon_destroy(d);
  CHECK(access(pid_file, F_OK) != 0);
}

TEST(no_sched)
{
  struct cfg c;
  struct err e = {0};
  struct daemon *d = NULL;
  char *body = NULL;
  REQUIRE(base_cfg(&c) == 0);
  struct daemon_opts o = {.cfg = &c, .no_sched = 1};
  REQUIRE(daemon_create(&d, &o, &e) == ERR_OK);
  REQUIRE(daemon_start(d, &e) == ERR_OK);
  int port = daemon_http_port(d);
  CHECK_EQ_INT(http_get(port, "/metrics", &body), 200);
  CHECK(body && strstr(body, "mlopsd_up 1"));
  CHECK(body && !strstr(body, "mlopsd_dag_runs_total"));
  free(body);
  CHECK_EQ_INT(daemon_stop(d, &e), ERR_OK);
  daemon_destroy(d);
}

TEST(bad_config)
{
  struct cfg c;
  struct err e = {0};
  struct daemon *d = (struct daemon *)&e; /* must become NULL */
  char path[512];

  CHECK_EQ_INT(daemon_create(&d, NULL, &e), ERR_INVAL);
  CHECK(d == NULL);
  CHECK(strstr(e.msg, "cfg is required") != NULL);

  REQUIRE(base_cfg(&c) == 0);
  snprintf(c.server_listen, sizeof(c.server_listen), "%s", "localhost-3000");
  struct daemon_opts o = {.cfg = &c, .no_sched = 1};
  err_clear(&e);
  /* the address is parsed when the server binds, at start */
  REQUIRE(daemon_create(&d, &o, &e) == ERR_OK);
  CHECK_EQ_INT(daemon_start(d, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "listen 'localhost-3000'") != NULL);
  daemon_destroy(d);
  d = NULL;

  /* a registry path that is a regular file */
  REQUIRE(base_cfg(&c) == 0);
  snprintf(path, sizeof(path), "%s/not-a-dir", g_tmp);
  FILE *f = fopen(path, "w");
  REQUIRE(f != NULL);
  fclose(f);
  snprintf(c.models_registry_dir, sizeof(c.models_registry_dir), "%.400s/sub",
           path);
  err_clear(&e);
  CHECK(daemon_create(&d, &o, &e) != ERR_OK);
  CHECK(d == NULL);
  CHECK(strstr(e.msg, path) != NULL);

  /* a pid file naming a running process (our parent) */
  REQUIRE(base_cfg(&c) == 0);
  snprintf(path, sizeof(path), "%s/held.pid", g_tmp);
  f = fopen(path, "w");
  REQUIRE(f != NULL);
  fprintf(f, "%ld\n", (long)getppid());
  fclose(f);
  o.pid_file = path;
  err_clear(&e);
  CHECK_EQ_INT(daemon_create(&d, &o, &e), ERR_EXISTS);
  CHECK(d == NULL);
  CHECK(strstr(e.msg, "already running") != NULL);
  CHECK(strstr(e.msg, path) != NULL);
  CHECK(access(path, F_OK) == 0); /* not someone else's to remove */
}

int main(void)
{
  const char *src = getenv("MLOPSD_SRC"), *bin = getenv("MLOPSD_BIN");
  if (!getenv("MLOPSD_DATABASE_HOST") || !src || !bin) {
    fprintf(stderr, "test_daemon: needs the test MariaDB (run through "
                    "tests/run.sh)\n");
    return 1;
  }
  snprintf(g_src, sizeof(g_src), "%s", src);
  snprintf(g_bin, sizeof(g_bin), "%s", bin);
  snprintf(g_tmp, sizeof(g_tmp), "/tmp/mlopsd-it-daemon.XXXXXX");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 1;
  }
  char p[512];
  snprintf(p, sizeof(p), "%s/dags", g_tmp);
  mkdir(p, 0755);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = 1;
  if (write_cfg() == 0 && setup_db() == 0) {
    RUN(bad_config);
    RUN(lifecycle);
    RUN(no_sched);
    rc = check_done();
  }
  curl_global_cleanup();
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf %s", g_tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", g_tmp);
  return rc;
}
