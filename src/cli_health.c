/* cli_health.c - `mlopsd health`: ask a running daemon whether it is up.
 *
 * The container image's HEALTHCHECK runs it, so the check needs nothing
 * outside the image (the runtime image has no curl binary; libcurl is
 * already linked for the http task and the run callbacks).  It GETs
 * /healthz (or /readyz with --ready) of the address the daemon listens on,
 * taken from server.listen of the config (MLOPSD_SERVER_LISTEN), with a
 * wildcard host (0.0.0.0, [::]) replaced by the matching loopback address,
 * or of --url.  Exit 0 on HTTP 200, 1 on anything else with one line on
 * stderr saying what was asked and what came back, 2 on a bad command line.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/cli.h"

#define HEALTH_TIMEOUT_S_DEFAULT 3L
#define HEALTH_TIMEOUT_S_MAX 3600L
/* The answer is a short JSON object; keep a little of it for messages. */
#define HEALTH_BODY_KEEP 160

static void usage(FILE *f)
{
  fprintf(f,
          "usage: mlopsd [-c FILE] health [--ready] [--url URL] "
          "[--timeout SECONDS]\n"
          "\n"
          "GET /healthz of the running daemon and exit 0 if it answers 200,\n"
          "1 otherwise (the reason on stderr).  The address is server.listen\n"
          "of the config (MLOPSD_SERVER_LISTEN); a wildcard host (0.0.0.0,\n"
          "[::]) becomes the loopback address.  Used by the container\n"
          "image's HEALTHCHECK, which needs no curl binary this way.\n"
          "\n"
          "  --ready            GET /readyz instead: 200 only once every\n"
          "                     deployed model is loaded\n"
          "  --url URL          ask URL instead (http://HOST:PORT/PATH)\n"
          "  --timeout SECONDS  give up after SECONDS (default %ld)\n"
          "\n"
          "Exit codes: 0 healthy, 1 not healthy or not reachable, 2 usage "
          "error.\n",
          HEALTH_TIMEOUT_S_DEFAULT);
}

/* Build "http://HOST:PORT/PATH" from a server.listen value (HOST:PORT or
 * [V6]:PORT, checked by cfg.c) into url; 0 on success, -1 if it does not
 * fit or has no port. */
static int listen_url(const char *listen, const char *path, char *url,
                      size_t cap)
{
  const char *colon = strrchr(listen, ':');
  if (!colon || colon == listen || colon[1] == '\0')
    return -1;
  int hl = (int)(colon - listen);
  const char *host = listen;
  if ((hl == 7 && strncmp(listen, "0.0.0.0", 7) == 0) ||
      (hl == 1 && listen[0] == '*')) {
    host = "127.0.0.1";
    hl = 9;
  } else if (hl == 4 && strncmp(listen, "[::]", 4) == 0) {
    host = "[::1]";
    hl = 5;
  }
  int n = snprintf(url, cap, "http://%.*s:%s%s", hl, host, colon + 1, path);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

struct body {
  char buf[HEALTH_BODY_KEEP + 1];
  size_t len;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
  struct body *b = arg;
  size_t len = size * n;
  size_t room = HEALTH_BODY_KEEP - b->len;
  size_t take = len < room ? len : room;
  memcpy(b->buf + b->len, p, take);
  b->len += take;
  b->buf[b->len] = '\0';
  return len;
}

int cli_health(int argc, char **argv)
{
  if (cli_wants_help(argc, argv)) {
    usage(stdout);
    return CLI_OK;
  }
  const char *url_opt = NULL;
  const char *path = "/healthz";
  long timeout_s = HEALTH_TIMEOUT_S_DEFAULT;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--ready") == 0) {
      path = "/readyz";
    } else if (strcmp(a, "--url") == 0 || strcmp(a, "--timeout") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "mlopsd: health: option %s needs a value\n", a);
        return CLI_USAGE;
      }
      const char *v = argv[++i];
      if (a[2] == 'u') {
        url_opt = v;
      } else {
        char *end;
        timeout_s = strtol(v, &end, 10);
        if (*v == '\0' || *end != '\0' || timeout_s < 1 ||
            timeout_s > HEALTH_TIMEOUT_S_MAX) {
          fprintf(stderr,
                  "mlopsd: health: --timeout: expected whole seconds "
                  "1..%ld, got '%s'\n",
                  HEALTH_TIMEOUT_S_MAX, v);
          return CLI_USAGE;
        }
      }
    } else {
      fprintf(stderr,
              "mlopsd: health: unknown argument '%s' (try mlopsd health "
              "--help)\n",
              a);
      return CLI_USAGE;
    }
  }

  char url[512];
  if (url_opt) {
    if (strncmp(url_opt, "http://", 7) != 0 &&
        strncmp(url_opt, "https://", 8) != 0) {
      fprintf(stderr,
              "mlopsd: health: --url: expected http://HOST:PORT/PATH, got "
              "'%s'\n",
              url_opt);
      return CLI_USAGE;
    }
    if (strlen(url_opt) >= sizeof(url)) {
      fprintf(stderr, "mlopsd: health: --url: longer than %zu bytes\n",
              sizeof(url) - 1);
      return CLI_USAGE;
    }
    snprintf(url, sizeof(url), "%s", url_opt);
  } else {
    struct cfg c;
    int rc = cli_load_config(&c);
    if (rc != CLI_OK)
      return rc;
    if (listen_url(c.server_listen, path, url, sizeof(url)) != 0) {
      fprintf(stderr,
              "mlopsd: health: server.listen '%s': expected HOST:PORT\n",
              c.server_listen);
      return CLI_USAGE;
    }
  }

  /* One request from a short-lived process: the global init is ours. */
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
    return cli_fail("health", "cannot initialise libcurl");
  CURL *h = curl_easy_init();
  if (!h) {
    curl_global_cleanup();
    return cli_fail("health", "cannot initialise libcurl");
  }
  struct body b = {.len = 0};
  b.buf[0] = '\0';
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, timeout_s);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  /* A proxy from the environment must not answer for the daemon. */
  curl_easy_setopt(h, CURLOPT_PROXY, "");
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(h);
  curl_global_cleanup();

  if (cc != CURLE_OK)
    return cli_fail("health", "GET %s: %s", url,
                    cerr[0] ? cerr : curl_easy_strerror(cc));
  if (status != 200)
    return cli_fail("health", "GET %s: HTTP %ld %s", url, status, b.buf);
  printf("%s: %s\n", url, b.buf[0] ? b.buf : "200");
  return CLI_OK;
}
