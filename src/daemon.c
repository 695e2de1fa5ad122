/* daemon.c - wiring of `mlopsd serve`: build, start, run, stop (daemon.h).
 *
 * Why the order: everything a request can touch (served models, the log)
 * exists before the HTTP server accepts, and the HTTP server stops
 * accepting before anything it uses goes away.  The prediction log is
 * flushed after the last request finished and before the queue stops,
 * because its flushes run on the queue.  Signals are taken synchronously
 * with sigwait on the main thread: no async-signal-safety puzzles, and a
 * stop runs the same code whatever triggered it.
 */
#include "mlopsd/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlopsd/admin.h"
#include "mlopsd/openapi.h"
#include "mlopsd/cfg.h"
#include "mlopsd/console.h"
#include "mlopsd/db.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/model.h"
#include "mlopsd/logpart.h"
#include "mlopsd/plog.h"
#include "mlopsd/predict.h"
#include "mlopsd/queue.h"
#include "mlopsd/registry.h"
#include "mlopsd/sched.h"
#include "mlopsd/serving.h"
#include "mlopsd/trialw.h"

#define MOD "daemon"
#define PLOG_POOL 2
#define QUEUE_CAPACITY 4096

struct daemon {
  struct cfg cfg;
  char config_path[512];
  int has_config_path;
  char pid_file[512];
  int pid_written;
  int stop_timeout_ms;
  int no_native;
  int no_sched;
  enum daemon_role role;

  struct metrics *metrics;
  struct db_pool *db, *log_db;
  struct queue *q;
  struct registry *reg;
  struct serving *sv;
  struct plog *pl;
  struct logpart *lpart;
  struct predict *pr;
  struct http *http;
  struct admin *admin;
  struct openapi *openapi; /* GET /openapi.json */
  struct sched *sched;
  struct trialw *trialw; /* helpers for other daemons' shared trials */
  _Atomic(struct sched *) sched_pub; /* d->sched for /readyz (HTTP threads) */
  struct metrics_gauge *g_queue_depth, *g_queue_running, *g_up;

  sigset_t sigs;
  atomic_int stop_requested;
  int started, stopped;
};

/* ---- queries ------------------------------------------------------------ */

int daemon_http_port(const struct daemon *d) { return http_port(d->http); }

static const char *const role_names[] = {"all", "api", "scheduler"};

enum err_code daemon_role_parse(const char *s, enum daemon_role *out,
                                struct err *e)
{
  for (int i = 0; i < 3; i++)
    if (s && strcmp(s, role_names[i]) == 0) {
      *out = (enum daemon_role)i;
      return ERR_OK;
    }
  return err_set(e, ERR_INVAL, "role '%s': expected all, api or scheduler",
                 s ? s : "");
}

const char *daemon_role_name(enum daemon_role r)
{
  return (unsigned)r < 3 ? role_names[r] : "?";
}

static int role_api(const struct daemon *d) { return d->role != DAEMON_SCHED; }
static int role_sched(const struct daemon *d) { return d->role != DAEMON_API; }

/* /readyz, decided by role here and nowhere else:
 *   all        the default model is loaded and the prediction log is
 *              ready, its database contact included;
 *   api        the same without the database: a replica serves while the
 *              shared database is away (rows spool), and if /readyz
 *              failed on it one database blip would empty the load
 *              balancer of every replica at once;
 *   scheduler  the scheduler runs and its last request for a database
 *              connection was granted.
 * The answer names the role and, when an api/all daemon is ready, its
 * default model and version; else 503 with the reasons.  Every check
 * reads state: no database call on the HTTP thread. */
static void h_readyz(struct http_req *req, struct http_resp *resp,
                     void *arg)
{
  struct daemon *d = arg;
  char why[2][ERR_MSG_MAX + 160];
  int n = 0;
  (void)req;
  if (role_api(d)) {
    n += !serving_ready(d->sv, why[n], sizeof(why[n]));
    n += d->pl && !plog_ready(d->pl, d->role == DAEMON_ALL, why[n],
                              sizeof(why[n]));
  } else {
    n += !sched_ready(atomic_load(&d->sched_pub), why[n], sizeof(why[n]));
  }
#define WS(s) http_resp_write(resp, s, strlen(s))
  int rc = WS(n ? "{\"status\":\"not ready\"" : "{\"status\":\"ready\"");
  rc |= WS(",\"role\":");
  rc |= http_resp_json_str(resp, daemon_role_name(d->role));
  struct serving_model *m = NULL;
  if (n) {
    rc |= WS(",\"reasons\":[");
    for (int i = 0; i < n; i++) {
      rc |= i ? WS(",") : 0;
      rc |= http_resp_json_str(resp, why[i]);
    }
    rc |= WS("]");
  } else if (role_api(d) && serving_acquire(d->sv, NULL, &m) == SERVING_OK) {
    size_t vl;
    const char *v = serving_model_version_json(m, &vl);
    rc |= WS(",\"model\":");
    rc |= http_resp_json_str(resp, serving_model_name(m));
    rc |= WS(",\"model_version\":");
    rc |= http_resp_write(resp, v, vl);
    serving_release(m);
  }
  rc |= WS("}");
#undef WS
  http_resp_status(resp, n ? 503 : 200);
  if (rc)
    http_resp_error(resp, n ? 503 : 500, n ? "not ready" : "out of memory");
}

/* ---- pid file --------------------------------------------------------- */

static enum err_code pid_write(struct daemon *d, struct err *e)
{
  char buf[32];
  FILE *f = fopen(d->pid_file, "r");
  if (f) {
    long pid = 0;
    if (fscanf(f, "%ld", &pid) == 1 && pid > 0 && pid != (long)getpid() &&
        (kill((pid_t)pid, 0) == 0 || errno == EPERM)) {
      fclose(f);
      return err_set(e, ERR_EXISTS,
                     "pid file %s: mlopsd already running as pid %ld",
                     d->pid_file, pid);
    }
    fclose(f);
  }
  int fd = open(d->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return err_set(e, ERR_IO, "pid file %s: %s", d->pid_file,
                   strerror(errno));
  int n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
  if (write(fd, buf, (size_t)n) != n) {
    int er = errno;
    close(fd);
    return err_set(e, ERR_IO, "pid file %s: %s", d->pid_file, strerror(er));
  }
  close(fd);
  d->pid_written = 1;
  return ERR_OK;
}

/* ---- metrics ---------------------------------------------------------- */

static double g_qdepth(void *arg)
{
  struct queue_stats st;
  queue_get_stats(arg, &st);
  return st.queued;
}

static double g_qrunning(void *arg)
{
  struct queue_stats st;
  queue_get_stats(arg, &st);
  return st.running;
}

/* ---- build ------------------------------------------------------------ */

/* Stage 1 of daemon_create: the pid file, metrics, the two MariaDB pools
 * (the main one and the prediction log's) and the job queue. */
static enum err_code build_core(struct daemon *d, struct err *e)
{
  const struct cfg *c = &d->cfg;
  enum err_code rc;
  if (d->pid_file[0] && (rc = pid_write(d, e)))
    return rc;
  if ((rc = metrics_create(&d->metrics, e)))
    return rc;

  struct db_opts dbo;
  db_opts_from_cfg(&dbo, c, c->db_pool, 30);
  if ((rc = db_pool_create(&d->db, &dbo, e)))
    return rc;
  dbo.size = PLOG_POOL;
  dbo.read_timeout_s = 10;
  if ((rc = db_pool_create(&d->log_db, &dbo, e)))
    return rc;
  struct err pe = {0};
  if (db_ping(d->db, &pe) != ERR_OK)
    LOG_W(MOD, "database not reachable at start (serving anyway; the "
               "prediction log spools): %s",
          pe.msg);

  struct queue_opts qo = {.workers = c->sched_workers + 1,
                          .reserved_high = 1,
                          .capacity = QUEUE_CAPACITY,
                          .name = "mlopsd"};
  if ((rc = queue_create(&d->q, &qo, e)))
    return rc;
  {
    struct err me = {0};
    if (metrics_gauge_fn_new(d->metrics, "mlopsd_queue_depth",
                             "Jobs waiting in the queue.", NULL, g_qdepth,
                             d->q, &d->g_queue_depth, &me) ||
        metrics_gauge_fn_new(d->metrics, "mlopsd_queue_running",
                             "Jobs running on queue workers.", NULL,
                             g_qrunning, d->q, &d->g_queue_running, &me) ||
        metrics_gauge_new(d->metrics, "mlopsd_up",
                          "1 while the daemon runs.", NULL, 0, &d->g_up,
                          &me))
      LOG_W(MOD, "metrics not registered: %s", me.msg);
  }

  return ERR_OK;
}

/* Stage 2 (api and all roles): the registry, the served models, the
 * prediction log and the /predict handler. */
static enum err_code build_serving(struct daemon *d, struct err *e)
{
  const struct cfg *c = &d->cfg;
  enum err_code rc;
  if ((rc = registry_open_cfg(c, &d->reg, e)))
    return rc;
  struct serving_opts so = {.registry = d->reg,
                            .specs_dir = c->models_specs_dir,
                            .default_model = c->server_default_model,
                            .metrics = d->metrics,
                            .no_native = d->no_native,
                            .shadow = c->models_shadow};
  /* A replica on another host may not share this host's alias files:
   * it follows production through MariaDB (serving.h). */
  if (d->role == DAEMON_API && c->models_follow_ms > 0) {
    so.follow_db = d->db;
    so.follow_ms = c->models_follow_ms;
  }
  if ((rc = serving_create(&d->sv, &so, e)))
    return rc;

  struct plog_opts po;
  plog_opts_defaults(&po);
  po.pool = d->log_db;
  po.queue = d->q;
  po.metrics = d->metrics;
  po.spool_dir = c->server_spool_dir;
  po.spool_max_bytes = (uint64_t)c->server_spool_max_bytes;
  po.durability = strcmp(c->server_log_durability, "fsync") == 0
                      ? PLOG_DUR_FSYNC
                      : PLOG_DUR_PROCESS;
  po.buffer_dir = c->server_log_buffer_dir;
  po.max_item_bytes = (size_t)c->server_max_body_bytes;
  po.spool_min_free = (uint64_t)c->server_spool_min_free_bytes;
  po.policy = strcmp(c->server_log_full_policy, "serve") == 0
                  ? PLOG_FULL_SERVE
                  : PLOG_FULL_REJECT;
  if ((rc = plog_create(&d->pl, &po, e)))
    return rc;

  struct predict_opts pro = {.serving = d->sv,
                             .plog = d->pl,
                             .metrics = d->metrics};
  if ((rc = predict_create(&d->pr, &pro, e)))
    return rc;

  return ERR_OK;
}

/* Stage 3: log partitions (scheduler roles), the HTTP server and its
 * routes: /readyz (h_readyz) for every role, the rest by role. */
static enum err_code build_http(struct daemon *d, struct err *e)
{
  const struct cfg *c = &d->cfg;
  enum err_code rc;
  if (role_sched(d) &&
      (rc = logpart_from_cfg(c, d->db, d->metrics, &d->lpart, e)))
    return rc;

  struct http_opts ho;
  http_opts_defaults(&ho);
  ho.listen = c->server_listen;
  ho.threads = c->server_threads;
  ho.thread_nice = c->server_thread_nice;
  ho.thread_slice_us = c->server_thread_slice_us;
  ho.max_connections = (unsigned)c->server_max_connections;
  ho.idle_timeout_s = (unsigned)c->server_idle_timeout_s;
  ho.max_body_bytes = (size_t)c->server_max_body_bytes;
  ho.metrics = d->metrics;
  if ((rc = http_create(&d->http, &ho, e)))
    return rc;
  if ((rc = http_route(d->http, "GET", "/readyz", h_readyz, d, e)))
    return rc;
  if (!role_api(d))
    return ERR_OK;
  if ((rc = predict_routes(d->pr, d->http, e)))
    return rc;
  struct admin_opts ao = {.cfg = &d->cfg,
                          .registry = d->reg,
                          .serving = d->sv,
                          .metrics = d->metrics};
  if ((rc = admin_create(&d->admin, &ao, e)) ||
      (rc = admin_routes(d->admin, d->http, e)) ||
      (rc = console_register(d->http, e)) ||
      (rc = openapi_create(&d->openapi, d->http, d->sv, &d->cfg, e)) ||
      (rc = openapi_routes(d->openapi, d->http, e)))
    return rc;
  return ERR_OK;
}

enum err_code daemon_create(struct daemon **out, const struct daemon_opts *o,
                            struct err *e)
{
  struct daemon *d;
  enum err_code rc;
  *out = NULL;
  if (!o || !o->cfg)
    return err_set(e, ERR_INVAL, "daemon: cfg is required");
  /* Memory under load (issue 16): glibc gave each allocating thread an
   * arena of its own and, after a large buffer was freed, raised its mmap
   * threshold so later large buffers stayed in the heap: 47 MB of
   * anonymous RSS after a 60 s bench run, most of it free.  Two arenas,
   * a fixed mmap threshold (no raising) and the heap trimmed once 4 MiB
   * is free at its top; plog's ticker also trims every 10 s.  The
   * threshold is 4 MiB, not lower: the log's insert builds a buffer of
   * about 0.5 MiB per 500 rows in libmariadb, and as a fresh mapping
   * every time its pages faulted in again per insert (5% of the daemon's
   * CPU under load, perf). */
  mallopt(M_ARENA_MAX, 2);
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
  d = calloc(1, sizeof(*d));
  if (!d)
    return err_set(e, ERR_NOMEM, "daemon: out of memory");
  d->cfg = *o->cfg;
  if (o->config_path) {
    snprintf(d->config_path, sizeof(d->config_path), "%s", o->config_path);
    d->has_config_path = 1;
  }
  if (o->pid_file)
    snprintf(d->pid_file, sizeof(d->pid_file), "%s", o->pid_file);
  d->stop_timeout_ms = o->stop_timeout_ms > 0 ? o->stop_timeout_ms : 10000;
  d->no_native = o->no_native;
  d->no_sched = o->no_sched;
  if ((rc = daemon_role_parse(o->cfg->server_role, &d->role, e)) != ERR_OK) {
    err_prefix(e, "server.role");
    free(d);
    return ERR_INVAL;
  }
  atomic_init(&d->stop_requested, 0);

  /* Before any thread exists: every thread inherits the blocked set. */
  sigemptyset(&d->sigs);
  sigaddset(&d->sigs, SIGTERM);
  sigaddset(&d->sigs, SIGINT);
  sigaddset(&d->sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &d->sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* A scheduler serves no predictions: no served models, no prediction
   * log, no admin API (its tasks open what they need).  An api replica
   * runs no DAGs and leaves the log partitions to the scheduler. */
  if ((rc = build_core(d, e)) ||
      (role_api(d) && (rc = build_serving(d, e))) ||
      (rc = build_http(d, e)))
    goto fail;
  *out = d;
  return ERR_OK;
fail:
  daemon_destroy(d);
  return rc;
}

/* ---- run -------------------------------------------------------------- */

enum err_code daemon_start(struct daemon *d, struct err *e)
{
  enum err_code rc;
  if (d->started)
    return err_set(e, ERR_STATE, "daemon already started");
  if ((d->pl && (rc = plog_start(d->pl, e))) ||
      (d->lpart && (rc = logpart_start(d->lpart, e))) ||
      (d->sv && (rc = serving_start(d->sv, e))) ||
      (rc = http_start(d->http, e)))
    return rc;
  d->started = 1;
  if (d->g_up)
    metrics_gauge_set(d->g_up, 1);

  struct serving_model *m = NULL;
  char ver[16] = "none";
  const char *evaluator = "-";
  if (d->sv && serving_acquire(d->sv, NULL, &m) == SERVING_OK) {
    snprintf(ver, sizeof(ver), "%d", serving_model_version(m));
    evaluator =
        model_native(serving_model_model(m)) ? "native" : "xgboost";
  }
  LOG_I(MOD, "serving listen=%s port=%d model=%s version=%s "
             "evaluator=%s pid=%ld role=%s",
        d->cfg.server_listen, http_port(d->http),
        d->cfg.server_default_model, ver, evaluator, (long)getpid(),
        daemon_role_name(d->role));
  serving_release(m);

  if (!d->no_sched && role_sched(d)) {
    struct sched_opts so = {.cfg = &d->cfg,
                            .queue = d->q,
                            .task_db = d->db,
                            .metrics = d->metrics};
    if ((rc = sched_create(&d->sched, &so, e)) != ERR_OK)
      return rc;
    if ((rc = sched_start(d->sched, e)) != ERR_OK) {
      sched_destroy(d->sched);
      d->sched = NULL;
      return rc;
    }
    atomic_store(&d->sched_pub, d->sched);
    struct trialw_opts to = {.db = d->db,
                             .specs_dir = d->cfg.models_specs_dir,
                             .threads = cfg_train_parallel(&d->cfg),
                             .nthread = d->cfg.models_train_threads,
                             .lease_s = d->cfg.sched_lease_s};
    if ((rc = trialw_create(&d->trialw, &to, e)) != ERR_OK)
      return rc;
  }
  return ERR_OK;
}

void daemon_request_stop(struct daemon *d)
{
  atomic_store(&d->stop_requested, 1);
  kill(getpid(), SIGTERM);
}

/* Keys cfg.c lists as reloadable that the running parts copied at start
 * (serving, plog, scheduler, task runner): a change is not silently
 * dropped but named, once per SIGHUP. */
static void reload_warn_unapplied(const struct cfg *o, const struct cfg *n)
{
  const struct {
    const char *key;
    int changed;
  } k[] = {
      {"server.default_model",
       strcmp(o->server_default_model, n->server_default_model) != 0},
      {"server.log_full_policy",
       strcmp(o->server_log_full_policy, n->server_log_full_policy) != 0},
      {"scheduler.dags_dir", strcmp(o->sched_dags_dir, n->sched_dags_dir) != 0},
      {"scheduler.tick_ms", o->sched_tick_ms != n->sched_tick_ms},
      {"models.specs_dir",
       strcmp(o->models_specs_dir, n->models_specs_dir) != 0},
      {"models.train_threads",
       o->models_train_threads != n->models_train_threads},
      {"models.train_parallel",
       o->models_train_parallel != n->models_train_parallel},
  };
  for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++)
    if (k[i].changed)
      LOG_W(MOD, "reload: key %s changed: takes effect after restart",
            k[i].key);
}

static void reload(struct daemon *d)
{
  struct cfg nc;
  struct err e = {0};
  LOG_I(MOD, "SIGHUP: reloading the configuration");
  if (cfg_load(&nc, d->has_config_path ? d->config_path : NULL, &e) !=
      ERR_OK) {
    LOG_E(MOD, "reload failed, keeping the running configuration: %s",
          e.msg);
    return;
  }
  /* serve --role may differ from the file: not a change */
  memcpy(nc.server_role, d->cfg.server_role, sizeof(nc.server_role));
  if (cfg_check_reload(&d->cfg, &nc, &e) != ERR_OK)
    LOG_W(MOD, "reload: %s (needs a restart; applying logging settings "
               "only)",
          e.msg);
  log_set_level((enum log_level)nc.log_level);
  log_set_format((enum log_format)nc.log_format);
  LOG_I(MOD, "reloaded: logging level and format applied");
  reload_warn_unapplied(&d->cfg, &nc);
  memset(&nc, 0, sizeof(nc)); /* wipe secrets */
}

void daemon_run(struct daemon *d)
{
  for (;;) {
    int sig = 0;
    if (sigwait(&d->sigs, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      reload(d);
      continue;
    }
    LOG_I(MOD, "%s: stopping",
          atomic_load(&d->stop_requested)
              ? "stop requested"
              : (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    return;
  }
}

enum err_code daemon_stop(struct daemon *d, struct err *e)
{
  enum err_code rc = ERR_OK;
  struct err he = {0};
  size_t lost = 0;
  int left_running = 0, left_queued = 0;
  if (!d || d->stopped)
    return ERR_OK;
  d->stopped = 1;
  if (d->http && http_stop(d->http, d->stop_timeout_ms, &he) != ERR_OK) {
    LOG_W(MOD, "HTTP stop: %s", he.msg);
    rc = err_set(e, ERR_TIMEOUT, "%s", he.msg);
  }
  trialw_destroy(d->trialw); /* a trial it trains goes back to queued */
  d->trialw = NULL;
  /* before the queue: running attempts are recorded through it */
  sched_destroy(d->sched);
  d->sched = NULL;
  serving_stop(d->sv);
  if (d->pl) {
    plog_stop(d->pl, d->stop_timeout_ms, &lost);
    if (lost && rc == ERR_OK)
      rc = err_set(e, ERR_TIMEOUT, "%zu prediction log rows not stored "
                                   "(kept in the log buffer file for the "
                                   "next start)",
                   lost);
  }
  logpart_stop(d->lpart);
  if (d->q)
    queue_shutdown(d->q, d->stop_timeout_ms, &left_running, &left_queued);
  if (d->g_up)
    metrics_gauge_set(d->g_up, 0);
  LOG_I(MOD, "stopped");
  return rc;
}

void daemon_destroy(struct daemon *d)
{
  if (!d)
    return;
  struct err e = {0};
  if (d->started && daemon_stop(d, &e) != ERR_OK)
    LOG_W(MOD, "stop: %s", e.msg);
  http_destroy(d->http);
  admin_destroy(d->admin);
  openapi_destroy(d->openapi);
  predict_destroy(d->pr);
  if (d->g_queue_depth)
    metrics_gauge_fn_detach(d->g_queue_depth);
  if (d->g_queue_running)
    metrics_gauge_fn_detach(d->g_queue_running);
  logpart_destroy(d->lpart);
  plog_destroy(d->pl);
  queue_destroy(d->q);
  serving_destroy(d->sv);
  registry_close(d->reg);
  db_pool_destroy(d->log_db);
  db_pool_destroy(d->db);
  metrics_destroy(d->metrics);
  if (d->pid_written)
    unlink(d->pid_file);
  memset(&d->cfg, 0, sizeof(d->cfg)); /* wipe secrets */
  free(d);
}

int daemon_main(const struct daemon_opts *o)
{
  struct daemon *d = NULL;
  struct err e = {0};
  if (daemon_create(&d, o, &e) != ERR_OK) {
    LOG_E(MOD, "cannot start: %s", e.msg);
    return 1;
  }
  if (daemon_start(d, &e) != ERR_OK) {
    LOG_E(MOD, "cannot start: %s", e.msg);
    daemon_destroy(d);
    return 1;
  }
  daemon_run(d);
  int code = 0;
  if (daemon_stop(d, &e) != ERR_OK) {
    LOG_W(MOD, "unclean stop: %s", e.msg);
    code = 1;
  }
  daemon_destroy(d);
  return code;
}
