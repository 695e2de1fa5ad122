/* bench_http.c - requests/s of the bare HTTP layer (http_), measured with
 * wrk on loopback: the ceiling that /predict is compared against.
 *
 *   build/bench/bench_http [SECONDS [CONNECTIONS]]   run wrk, print figures
 *   build/bench/bench_http --serve [HOST:PORT]       just serve (Ctrl-C)
 *
 * Routes served: GET /healthz (built in), POST /echo (answers the body),
 * GET /metrics.  The server uses 2 worker threads; wrk runs with -t2 on
 * the same machine, as in ../shared/NOTES.md.  Figures only, no pass/fail.
 */
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mlopsd/http.h"
#include "mlopsd/log.h"

extern char **environ;

static void h_echo(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)arg;
  size_t n;
  const char *b = http_req_body(q, &n);
  if (http_resp_write(r, b, n))
    http_resp_error(r, 500, "echo failed");
}

static volatile sig_atomic_t quit;
static void on_sig(int s) { (void)s; quit = 1; }

/* Run wrk with args, print its output indented, return the Requests/sec
 * figure (or -1). */
static double run_wrk(char *const argv[])
{
  int pfd[2];
  if (pipe(pfd) != 0)
    return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
  posix_spawn_file_actions_addclose(&fa, pfd[0]);
  pid_t pid;
  int rc = posix_spawnp(&pid, "wrk", &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  close(pfd[1]);
  if (rc != 0) {
    close(pfd[0]);
    fprintf(stderr, "bench_http: cannot run wrk (apt-get install wrk)\n");
    return -1;
  }
  FILE *f = fdopen(pfd[0], "r");
  char line[512];
  double rps = -1;
  while (f && fgets(line, sizeof(line), f)) {
    printf("    %s", line);
    if (strncmp(line, "Requests/sec:", 13) == 0)
      rps = atof(line + 13);
  }
  if (f)
    fclose(f);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? rps : -1;
}

static long rss_kb(void)
{
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kb = atol(line + 6);
  if (f)
    fclose(f);
  return kb;
}

int main(int argc, char **argv)
{
  bool serve = argc > 1 && strcmp(argv[1], "--serve") == 0;
  log_set_level(LOG_WARN);
  struct http_opts o;
  http_opts_defaults(&o);
  o.threads = 2;
  o.listen = serve && argc > 2 ? argv[2] : "127.0.0.1:0";
  struct http *srv;
  struct err e;
  if (http_create(&srv, &o, &e) || http_route(srv, "POST", "/echo", h_echo,
                                               NULL, &e)
      || http_start(srv, &e)) {
    fprintf(stderr, "bench_http: %s\n", e.msg);
    return 1;
  }
  int port = http_port(srv);
  if (serve) {
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    printf("serving on port %d (libmicrohttpd %s); Ctrl-C stops\n", port,
           http_lib_version());
    fflush(stdout);
    while (!quit)
      pause();
    if (http_stop(srv, 5000, &e))
      fprintf(stderr, "bench_http: %s\n", e.msg);
    http_destroy(srv);
    return 0;
  }

  const char *secs = !serve && argc > 1 ? argv[1] : "5";
  const char *conns = !serve && argc > 2 ? argv[2] : "64";
  char dur[32], con[32], url[128], lua[] = "/tmp/bench_http_XXXXXX.lua";
  snprintf(dur, sizeof(dur), "%ss", secs);
  snprintf(con, sizeof(con), "%s", conns);
  int lfd = mkstemps(lua, 4);
  if (lfd < 0) {
    perror("bench_http: mkstemps");
    return 1;
  }
  char body[901];
  memset(body, 'x', 900);
  body[900] = '\0';
  dprintf(lfd, "wrk.method = \"POST\"\nwrk.body = \"%s\"\n"
          "wrk.headers[\"Content-Type\"] = \"application/json\"\n", body);
  close(lfd);

  printf("bench_http: libmicrohttpd %s, server threads 2, wrk -t2 -c%s "
         "-d%s on 127.0.0.1\n", http_lib_version(), con, dur);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", port);
  printf("  GET /healthz\n");
  char *a1[] = {"wrk", "-t2", "-c", con, "-d", dur, "--latency", url, NULL};
  double r1 = run_wrk(a1);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d/echo", port);
  printf("  POST /echo (900-byte body)\n");
  char *a2[] = {"wrk", "-t2", "-c", con, "-d", dur, "--latency", "-s", lua,
                url, NULL};
  double r2 = run_wrk(a2);
  unlink(lua);
  printf("healthz_rps=%.0f echo900_rps=%.0f server_rss_kb=%ld\n", r1, r2,
         rss_kb());
  if (http_stop(srv, 5000, &e))
    fprintf(stderr, "bench_http: %s\n", e.msg);
  http_destroy(srv);
  return r1 < 0 || r2 < 0;
}
