/* test_http.c - http_: real HTTP over 127.0.0.1 with libcurl and raw
 * sockets: keep-alive, routing, 404/405, bodies and 413, header limit,
 * idle/slow clients, /metrics, graceful stop with a request in flight.
 * Needs no database, so it is a unit test.
 * check: tsan */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "mlopsd/http.h"
#include "mlopsd/log.h"
#include "mlopsd/metrics.h"

/* ---- client helpers -------------------------------------------------- */

struct reply {
  long status;
  long nconnects;
  char *body;
  size_t len, cap;
  char hdrs[8192];
  size_t hlen;
  CURLcode cc;
};

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
  struct reply *r = arg;
  size_t add = sz * n;
  if (r->len + add + 1 > r->cap) {
    size_t nc = (r->len + add + 1) * 2;
    char *nb = realloc(r->body, nc);
    if (!nb)
      return 0;
    r->body = nb;
    r->cap = nc;
  }
  memcpy(r->body + r->len, p, add);
  r->len += add;
  r->body[r->len] = '\0';
  return add;
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
  struct reply *r = arg;
  size_t add = sz * n;
  if (r->hlen + add < sizeof(r->hdrs)) {
    memcpy(r->hdrs + r->hlen, p, add);
    r->hlen += add;
    r->hdrs[r->hlen] = '\0';
  }
  return add;
}

struct chunked_src {
  const char *p;
  size_t left;
};

static size_t on_read(char *buf, size_t sz, size_t n, void *arg)
{
  struct chunked_src *s = arg;
  size_t k = sz * n;
  if (k > 4096)
    k = 4096; /* many small chunks */
  if (k > s->left)
    k = s->left;
  memcpy(buf, s->p, k);
  s->p += k;
  s->left -= k;
  return k;
}

static void reply_free(struct reply *r)
{
  free(r->body);
  memset(r, 0, sizeof(*r));
}

/* The options every request here sets on handle h (reset first; the
 * connection cache stays): the URL of PATH on PORT, the reply R as sink,
 * a 20 s timeout. */
static void req_begin(CURL *h, int port, const char *path, struct reply *r)
{
  char url[512];
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  memset(r, 0, sizeof(*r));
  curl_easy_reset(h); /* keeps the connection cache */
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
}

/* Run the request set up on h into R, then free the header list SL. */
static void req_finish(CURL *h, struct curl_slist *sl, struct reply *r)
{
  if (sl)
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, sl);
  r->cc = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
  curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &r->nconnects);
  curl_slist_free_all(sl);
  if (!r->body)
    r->body = calloc(1, 1);
}

/* One request on handle h (connection reused across calls). */
static void req(CURL *h, int port, const char *method, const char *path,
                const void *body, size_t blen, const char *const *hdrs,
                struct reply *r)
{
  req_begin(h, port, path, r);
  struct curl_slist *sl = NULL;
  for (size_t i = 0; hdrs && hdrs[i]; i++)
    sl = curl_slist_append(sl, hdrs[i]);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
  } else if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  req_finish(h, sl, r);
}

/* POST with Transfer-Encoding: chunked. */
static void req_chunked(CURL *h, int port, const char *path, const char *body,
                        size_t blen, struct reply *r)
{
  struct chunked_src src = {body, blen};
  req_begin(h, port, path, r);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
  curl_easy_setopt(h, CURLOPT_READDATA, &src);
  struct curl_slist *sl = curl_slist_append(NULL, "Transfer-Encoding: chunked");
  sl = curl_slist_append(sl, "Expect:");
  req_finish(h, sl, r);
}

static int raw_connect(int port)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

static bool send_all(int fd, const char *p, size_t n)
{
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0)
      return false;
    p += k;
    n -= (size_t)k;
  }
  return true;
}

/* Read until the peer closes or len bytes; returns bytes read. */
static size_t recv_all(int fd, char *buf, size_t cap)
{
  size_t n = 0;
  while (n + 1 < cap) {
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 10000) <= 0)
      break;
    ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
    if (k <= 0)
      break;
    n += (size_t)k;
  }
  buf[n] = '\0';
  return n;
}

static void msleep(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
  nanosleep(&ts, NULL);
}

/* ---- handlers used by the tests -------------------------------------- */

static void h_echo(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)arg;
  size_t n;
  const char *b = http_req_body(q, &n);
  const char *ct = http_req_content_type(q);
  http_resp_content_type(r, ct ? ct : "application/octet-stream");
  if (http_resp_write(r, b, n))
    http_resp_error(r, 500, "echo failed");
  if (http_resp_header(r, "X-Body-Len", "set"))
    http_resp_error(r, 500, "header failed");
}

static void h_params(struct http_req *q, struct http_resp *r, void *arg)
{
  const char *tag = arg;
  const char *names[] = {"name", "dag_id", "run_id", NULL};
  enum err_code rc = http_resp_printf(r, "{\"tag\":\"%s\",\"route\":", tag);
  rc = rc ? rc : http_resp_json_str(r, http_req_route(q));
  for (int i = 0; names[i]; i++) {
    const char *v = http_req_param(q, names[i]);
    if (!v)
      continue;
    rc = rc ? rc : http_resp_printf(r, ",\"%s\":", names[i]);
    rc = rc ? rc : http_resp_json_str(r, v);
  }
  rc = rc ? rc : http_resp_printf(r, ",\"q\":");
  rc = rc ? rc : http_resp_json_str(r, http_req_query(q, "s"));
  rc = rc ? rc : http_resp_printf(r, ",\"hdr\":");
  rc = rc ? rc : http_resp_json_str(r, http_req_header(q, "x-test"));
  rc = rc ? rc : http_resp_printf(r, "}");
  if (rc)
    http_resp_error(r, 500, "params failed");
}

static void h_big(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)q;
  (void)arg;
  size_t n = 1 << 20;
  char *p = http_resp_reserve(r, n);
  if (!p) {
    http_resp_error(r, 500, "reserve failed");
    return;
  }
  for (size_t i = 0; i < n; i++)
    p[i] = (char)('a' + i % 26);
  http_resp_commit(r, n);
  http_resp_content_type(r, "text/plain");
}

static void h_teapot(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)q;
  (void)arg;
  http_resp_error(r, 418, "short and \"stout\"");
}

struct slow {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool entered, release;
};

static void h_slow(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)q;
  struct slow *s = arg;
  pthread_mutex_lock(&s->mu);
  s->entered = true;
  pthread_cond_broadcast(&s->cv);
  while (!s->release)
    pthread_cond_wait(&s->cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
  http_resp_content_type(r, "text/plain");
  if (http_resp_printf(r, "slow done"))
    http_resp_error(r, 500, "x");
}

/* ---- a server per test ----------------------------------------------- */

static struct slow g_slow = {PTHREAD_MUTEX_INITIALIZER,
                             PTHREAD_COND_INITIALIZER, false, false};

static struct http *server(unsigned idle_s, size_t max_body)
{
  struct http_opts o;
  struct err e;
  struct http *srv;
  http_opts_defaults(&o);
  o.listen = "127.0.0.1:0";
  o.threads = 2;
  o.idle_timeout_s = idle_s;
  o.max_body_bytes = max_body;
  if (http_create(&srv, &o, &e)) {
    fprintf(stderr, "http_create: %s\n", e.msg);
    return NULL;
  }
  if (http_route(srv, "POST", "/echo", h_echo, NULL, &e)
      || http_route(srv, "POST", "/models/{name}/predict", h_params, "pred",
                    &e)
      || http_route(srv, "GET", "/models/list/predict", h_params, "list", &e)
      || http_route(srv, "GET",
                    "/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances",
                    h_params, "ti", &e)
      || http_route(srv, "GET", "/params", h_params, "plain", &e)
      || http_route(srv, "GET", "/big", h_big, NULL, &e)
      || http_route(srv, "GET", "/teapot", h_teapot, NULL, &e)
      || http_route(srv, "GET", "/slow", h_slow, &g_slow, &e)
      || http_start(srv, &e)) {
    fprintf(stderr, "server: %s\n", e.msg);
    http_destroy(srv);
    return NULL;
  }
  return srv;
}

/* The set-up most tests share: a server (bodies up to 256 KiB) and one
 * client handle whose connection is reused. */
struct site {
  struct http *srv;
  int port;
  CURL *h;
};

/* A server with idle timeout IDLE_S; 1 when it runs and the handle is
 * made, else 0 with nothing held. */
static int site_open(struct site *s, unsigned idle_s)
{
  s->srv = server(idle_s, 256 << 10);
  if (!s->srv)
    return 0;
  s->port = http_port(s->srv);
  s->h = curl_easy_init();
  if (!s->h)
    http_destroy(s->srv);
  return s->h != NULL;
}

static void site_close(struct site *s)
{
  curl_easy_cleanup(s->h);
  http_destroy(s->srv);
}

/* req() on the site's handle. */
static void sreq(struct site *s, const char *method, const char *path,
                 const void *body, size_t blen, const char *const *hdrs,
                 struct reply *r)
{
  req(s->h, s->port, method, path, body, blen, hdrs, r);
}

/* One request on the site (BODY, if any, a string): checks the status
 * and that the body holds BODY_HAS and the headers HDRS_HAS (each NULL:
 * not checked), naming the request in a failure; frees the reply. */
#define EXPECT(s, method, path, body, status, body_has, hdrs_has)             \
  expect_at(__FILE__, __LINE__, (s), (method), (path), (body), (status),      \
            (body_has), (hdrs_has))
static void expect_at(const char *file, int line, struct site *s,
                      const char *method, const char *path, const char *body,
                      long status, const char *body_has, const char *hdrs_has)
{
  struct reply r;
  sreq(s, method, path, body, body ? strlen(body) : 0, NULL, &r);
  if (r.status != status)
    check_fail_at(file, line, "%s %s: status %ld, want %ld", method, path,
                  r.status, status);
  if (body_has && !strstr(r.body, body_has))
    check_fail_at(file, line, "%s %s: body lacks %s", method, path,
                  body_has);
  if (hdrs_has && !strstr(r.hdrs, hdrs_has))
    check_fail_at(file, line, "%s %s: headers lack %s", method, path,
                  hdrs_has);
  reply_free(&r);
}

/* ---- tests ----------------------------------------------------------- */

TEST(healthz_keepalive)
{
  struct site s;
  REQUIRE(site_open(&s, 10));
  CHECK(s.port > 0);
  struct reply r;
  sreq(&s, "GET", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.cc, CURLE_OK);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(r.body, "{\"status\":\"ok\"}");
  CHECK(strstr(r.hdrs, "Content-Type: application/json"));
  CHECK(!strstr(r.hdrs, "Connection: close"));
  CHECK_EQ_INT(r.nconnects, 1);
  reply_free(&r);
  for (int i = 0; i < 3; i++) {
    sreq(&s, "GET", "/healthz", NULL, 0, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.nconnects, 0); /* the same connection was reused */
    reply_free(&r);
  }
  sreq(&s, "HEAD", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(r.len, 0);
  CHECK_EQ_INT(r.nconnects, 0);
  reply_free(&r);
  site_close(&s);
}

TEST(not_found_and_method_not_allowed)
{
  struct site s;
  REQUIRE(site_open(&s, 10));
  struct reply r;
  sreq(&s, "GET", "/nope/x", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 404);
  CHECK_EQ_STR(r.body, "{\"error\":\"not found\",\"path\":\"/nope/x\"}");
  CHECK(strstr(r.hdrs, "Content-Type: application/json"));
  reply_free(&r);
  sreq(&s, "DELETE", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 405);
  CHECK_EQ_STR(r.body, "{\"error\":\"method not allowed\",\"method\":"
                       "\"DELETE\",\"allow\":\"GET, HEAD\"}");
  CHECK(strstr(r.hdrs, "Allow: GET, HEAD\r\n"));
  CHECK_EQ_INT(r.nconnects, 0); /* errors keep the connection */
  reply_free(&r);
  EXPECT(&s, "GET", "/echo", NULL, 405, NULL, "Allow: POST\r\n");
  /* a param segment does not match an empty segment */
  EXPECT(&s, "POST", "/models//predict", "x", 404, NULL, NULL);
  sreq(&s, "GET", "/teapot", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 418);
  CHECK_EQ_STR(r.body, "{\"error\":\"short and \\\"stout\\\"\"}");
  reply_free(&r);
  site_close(&s);
}

TEST(routing_params_query_headers)
{
  struct site s;
  REQUIRE(site_open(&s, 10));
  struct reply r;
  sreq(&s, "POST", "/models/credit_score/predict", "{}", 2, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(r.body, "{\"tag\":\"pred\",\"route\":\"/models/{name}/predict\","
                       "\"name\":\"credit_score\",\"q\":null,\"hdr\":null}");
  reply_free(&r);
  /* literal beats {name}; the literal route is GET only */
  EXPECT(&s, "GET", "/models/list/predict", NULL, 200,
         "\"tag\":\"list\"", NULL);
  EXPECT(&s, "POST", "/models/list/predict", "{}", 200,
         "\"tag\":\"pred\"", NULL);
  EXPECT(&s, "GET", "/models/other/predict", NULL, 405,
         NULL, "Allow: POST\r\n");
  const char *hd[] = {"X-Test: v1", NULL};
  sreq(&s, "GET",
      "/api/v2/dags/credit_ct/dagRuns/manual__2025-09-01/taskInstances"
      "?s=a%22b%5C%01%FFz",
      NULL, 0, hd, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_STR(r.body,
               "{\"tag\":\"ti\",\"route\":\"/api/v2/dags/{dag_id}/dagRuns/"
               "{run_id}/taskInstances\",\"dag_id\":\"credit_ct\","
               "\"run_id\":\"manual__2025-09-01\","
               "\"q\":\"a\\\"b\\\\\\u0001\xEF\xBF\xBDz\",\"hdr\":\"v1\"}");
  reply_free(&r);
  EXPECT(&s, "GET", "/params?s", NULL, 200, "\"q\":\"\"", NULL);
  site_close(&s);
}

TEST(post_echo_100k_reused_buffers)
{
  struct http *srv = server(10, 256 << 10);
  REQUIRE(srv);
  int port = http_port(srv);
  size_t n = 100 * 1024;
  char *body = malloc(n);
  REQUIRE(body);
  for (size_t i = 0; i < n; i++)
    body[i] = (char)('A' + (i * 7) % 26);
  CURL *h = curl_easy_init();
  const char *hd[] = {"Content-Type: application/x-test", NULL};
  for (int round = 0; round < 3; round++) {
    struct reply r;
    req(h, port, "POST", "/echo", body, n, hd, &r);
    CHECK_EQ_INT(r.cc, CURLE_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.len, n);
    CHECK(r.len == n && memcmp(r.body, body, n) == 0);
    CHECK(strstr(r.hdrs, "Content-Type: application/x-test"));
    CHECK(strstr(r.hdrs, "X-Body-Len: set"));
    if (round > 0)
      CHECK_EQ_INT(r.nconnects, 0);
    reply_free(&r);
    /* a small request between big ones, then a chunked one */
    req(h, port, "POST", "/echo", "hi", 2, NULL, &r);
    CHECK_EQ_STR(r.body, "hi");
    CHECK_EQ_INT(r.nconnects, 0);
    reply_free(&r);
    req_chunked(h, port, "/echo", body, n, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.len == n && memcmp(r.body, body, n) == 0);
    reply_free(&r);
  }
  /* an empty POST */
  struct reply r;
  req(h, port, "POST", "/echo", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(r.len, 0);
  reply_free(&r);
  /* a 1 MiB answer built with reserve/commit, twice */
  for (int i = 0; i < 2; i++) {
    req(h, port, "GET", "/big", NULL, 0, NULL, &r);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.len, 1 << 20);
    CHECK(r.len > 1000 && r.body[27] == 'b' && r.body[(1 << 20) - 1] == 'v');
    reply_free(&r);
  }
  curl_easy_cleanup(h);
  free(body);
  http_destroy(srv);
}

TEST(body_over_limit_413)
{
  size_t max = 64 << 10;
  struct http *srv = server(10, max);
  REQUIRE(srv);
  int port = http_port(srv);
  size_t n = max + 1;
  char *body = malloc(n);
  REQUIRE(body);
  memset(body, 'x', n);

  /* Content-Length over the limit: answered before the body is sent */
  int fd = raw_connect(port);
  REQUIRE(fd >= 0);
  const char *rq = "POST /echo HTTP/1.1\r\nHost: t\r\n"
                   "Content-Length: 100000000\r\n\r\n";
  CHECK(send_all(fd, rq, strlen(rq)));
  char buf[4096];
  recv_all(fd, buf, sizeof(buf));
  CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
  CHECK(strstr(buf, "{\"error\":\"request body over 65536 bytes\"}"));
  close(fd);

  /* curl with Expect: 100-continue gets the 413 without sending */
  CURL *h = curl_easy_init();
  struct reply r;
  const char *hd[] = {"Expect: 100-continue", NULL};
  req(h, port, "POST", "/echo", body, n, hd, &r);
  CHECK_EQ_INT(r.status, 413);
  CHECK(strstr(r.body, "request body over"));
  reply_free(&r);

  /* exactly the limit is fine */
  req(h, port, "POST", "/echo", body, max, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK_EQ_INT(r.len, max);
  reply_free(&r);

  /* chunked: the size is known only as the bytes arrive */
  req_chunked(h, port, "/echo", body, n, &r);
  CHECK_EQ_INT(r.status, 413);
  CHECK(strstr(r.body, "request body over"));
  reply_free(&r);

  /* chunked on a raw socket: the 413 comes at the end of the body */
  fd = raw_connect(port);
  REQUIRE(fd >= 0);
  rq = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
  CHECK(send_all(fd, rq, strlen(rq)));
  char chunk[8192 + 16];
  int hl = snprintf(chunk, sizeof(chunk), "%x\r\n", 8192);
  memset(chunk + hl, 'y', 8192);
  memcpy(chunk + hl + 8192, "\r\n", 2);
  for (int i = 0; i < 10; i++) /* 80 KiB */
    CHECK(send_all(fd, chunk, (size_t)hl + 8194));
  CHECK(send_all(fd, "0\r\n\r\n", 5));
  recv_all(fd, buf, sizeof(buf));
  CHECK(strncmp(buf, "HTTP/1.1 413", 12) == 0);
  close(fd);

  /* chunked without end: cut off once another max_body_bytes came in */
  fd = raw_connect(port);
  REQUIRE(fd >= 0);
  CHECK(send_all(fd, rq, strlen(rq)));
  size_t sent = 0;
  while (sent < (64u << 20) && send_all(fd, chunk, (size_t)hl + 8194))
    sent += 8192;
  CHECK(sent < (8u << 20)); /* socket buffers hold some; far below 64 MiB */
  close(fd);

  /* the server still serves */
  req(h, port, "GET", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  reply_free(&r);
  curl_easy_cleanup(h);
  free(body);
  http_destroy(srv);
}

TEST(header_over_memory_limit)
{
  struct http *srv = server(10, 256 << 10);
  REQUIRE(srv);
  int port = http_port(srv);
  int fd = raw_connect(port);
  REQUIRE(fd >= 0);
  size_t hn = 64 << 10; /* over the 32 KiB per-connection memory */
  char *rq = malloc(hn + 128);
  REQUIRE(rq);
  int k = snprintf(rq, 128, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ");
  memset(rq + k, 'h', hn);
  memcpy(rq + k + hn, "\r\n\r\n", 4);
  send_all(fd, rq, (size_t)k + hn + 4);
  char buf[4096];
  recv_all(fd, buf, sizeof(buf));
  CHECK(strncmp(buf, "HTTP/1.1 431", 12) == 0);
  close(fd);
  free(rq);
  CURL *h = curl_easy_init();
  struct reply r;
  req(h, port, "GET", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  reply_free(&r);
  curl_easy_cleanup(h);
  http_destroy(srv);
}

struct slow_client {
  int port;
  size_t sent, total;
  bool closed_by_server;
};

static void *slow_client_main(void *arg)
{
  struct slow_client *s = arg;
  char rq[256];
  int n = snprintf(rq, sizeof(rq),
                   "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Pad: %060d\r\n\r\n",
                   0);
  s->total = (size_t)n;
  int fd = raw_connect(s->port);
  if (fd < 0)
    return NULL;
  for (s->sent = 0; s->sent < s->total;) {
    if (send(fd, rq + s->sent, 1, MSG_NOSIGNAL) != 1) {
      s->closed_by_server = true;
      break;
    }
    s->sent++;
    /* one byte every 100 ms: never idle for libmicrohttpd's own timer */
    struct pollfd pf = {fd, POLLIN, 0};
    if (poll(&pf, 1, 100) > 0) {
      char c;
      if (recv(fd, &c, 1, 0) <= 0) {
        s->closed_by_server = true;
        break;
      }
    }
  }
  close(fd);
  return NULL;
}

TEST(slow_client_dropped_others_served)
{
  struct site s;
  REQUIRE(site_open(&s, 1));
  struct slow_client sc = {s.port, 0, 0, false};
  pthread_t t;
  pthread_create(&t, NULL, slow_client_main, &sc);
  int ok = 0;
  for (int i = 0; i < 20; i++) { /* served meanwhile */
    struct reply r;
    sreq(&s, "GET", "/healthz", NULL, 0, NULL, &r);
    ok += r.status == 200;
    reply_free(&r);
    msleep(20);
  }
  pthread_join(t, NULL);
  CHECK_EQ_INT(ok, 20);
  CHECK(sc.closed_by_server);
  CHECK(sc.sent < sc.total);
  /* an idle connection (no byte at all) is closed too */
  int fd = raw_connect(s.port);
  REQUIRE(fd >= 0);
  char buf[64];
  CHECK_EQ_INT(recv_all(fd, buf, sizeof(buf)), 0);
  close(fd);
  /* recorded */
  struct reply r;
  sreq(&s, "GET", "/metrics", NULL, 0, NULL, &r);
  CHECK(strstr(r.body, "mlopsd_http_connections_reaped_total "));
  CHECK(!strstr(r.body, "mlopsd_http_connections_reaped_total 0\n"));
  reply_free(&r);
  site_close(&s);
}

TEST(metrics_counts_requests)
{
  struct site s;
  REQUIRE(site_open(&s, 10));
  struct reply r;
  for (int i = 0; i < 3; i++) {
    sreq(&s, "GET", "/healthz", NULL, 0, NULL, &r);
    reply_free(&r);
  }
  sreq(&s, "GET", "/missing", NULL, 0, NULL, &r);
  reply_free(&r);
  sreq(&s, "POST", "/models/a/predict", "{}", 2, NULL, &r);
  reply_free(&r);
  sreq(&s, "GET", "/teapot", NULL, 0, NULL, &r);
  reply_free(&r);
  sreq(&s, "GET", "/metrics", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  CHECK(strstr(r.hdrs, "Content-Type: text/plain; version=0.0.4"));
  const char *b = r.body;
  CHECK(strstr(b, "# TYPE mlopsd_http_requests_total counter\n"));
  CHECK(strstr(b, "mlopsd_http_requests_total{route=\"/healthz\",method=\"GET\","
                  "status=\"200\"} 3\n"));
  CHECK(strstr(b, "mlopsd_http_requests_total{route=\"unmatched\",method=\"any\","
                  "status=\"404\"} 1\n"));
  CHECK(strstr(b, "mlopsd_http_requests_total{route=\"/models/{name}/predict\","
                  "method=\"POST\",status=\"200\"} 1\n"));
  CHECK(strstr(b, "mlopsd_http_requests_total{route=\"/teapot\",method=\"GET\","
                  "status=\"other\"} 1\n"));
  CHECK(strstr(b, "# TYPE mlopsd_http_request_duration_seconds histogram\n"));
  CHECK(strstr(b, "mlopsd_http_request_duration_seconds_count{route=\"/healthz\","
                  "method=\"GET\",status_class=\"2xx\"} 3\n"));
  CHECK(strstr(b, "mlopsd_http_request_duration_seconds_bucket{route=\"/healthz\","
                  "method=\"GET\",status_class=\"2xx\",le=\"+Inf\"} 3\n"));
  CHECK(strstr(b, "mlopsd_http_request_duration_seconds_count{route=\"unmatched\","
                  "method=\"any\",status_class=\"4xx\"} 1\n"));
  CHECK(strstr(b, "mlopsd_http_connections 1\n"));
  CHECK(strstr(b, "mlopsd_http_requests_in_flight 1\n")); /* this one */
  CHECK(!strstr(b, "status=\"500\"")); /* zero series are hidden */
  reply_free(&r);
  site_close(&s);
}

/* http_stop on a thread of its own: the server, and what the stop gave. */
struct stopper {
  struct http *srv;
  enum err_code rc;
};

static void *stop_main(void *arg)
{
  struct stopper *s = arg;
  struct err e;
  s->rc = http_stop(s->srv, 20000, &e);
  return NULL;
}

struct getter {
  int port;
  struct reply r;
};

static void *get_slow_main(void *arg)
{
  struct getter *g = arg;
  CURL *h = curl_easy_init();
  req(h, g->port, "GET", "/slow", NULL, 0, NULL, &g->r);
  curl_easy_cleanup(h);
  return NULL;
}

TEST(graceful_stop_finishes_in_flight)
{
  struct site s;
  REQUIRE(site_open(&s, 10));
  g_slow.entered = g_slow.release = false;
  /* an idle keep-alive connection too: must not hold the stop up */
  EXPECT(&s, "GET", "/healthz", NULL, 200, NULL, NULL);

  struct getter g = {s.port, {0}};
  pthread_t tg, ts;
  pthread_create(&tg, NULL, get_slow_main, &g);
  pthread_mutex_lock(&g_slow.mu);
  while (!g_slow.entered)
    pthread_cond_wait(&g_slow.cv, &g_slow.mu);
  pthread_mutex_unlock(&g_slow.mu);

  struct stopper st = {s.srv, ERR_INTERNAL};
  pthread_create(&ts, NULL, stop_main, &st);
  /* wait until new connections are refused: the stop has begun */
  bool refused = false;
  for (int i = 0; i < 2000 && !refused; i++) {
    int fd = raw_connect(s.port);
    if (fd < 0)
      refused = true;
    else
      close(fd);
    if (!refused)
      msleep(5);
  }
  CHECK(refused);
  pthread_mutex_lock(&g_slow.mu);
  g_slow.release = true;
  pthread_cond_broadcast(&g_slow.cv);
  pthread_mutex_unlock(&g_slow.mu);
  pthread_join(tg, NULL);
  pthread_join(ts, NULL);
  CHECK_EQ_INT(g.r.cc, CURLE_OK);
  CHECK_EQ_INT(g.r.status, 200);
  CHECK_EQ_STR(g.r.body, "slow done");
  CHECK(strstr(g.r.hdrs, "Connection: close"));
  CHECK_EQ_INT(st.rc, ERR_OK);
  reply_free(&g.r);
  struct err e;
  CHECK_EQ_INT(http_stop(s.srv, 0, &e), ERR_OK); /* idempotent */
  site_close(&s);
}

struct hammer {
  int port;
  int ok;
};

static void *hammer_main(void *arg)
{
  struct hammer *hm = arg;
  CURL *h = curl_easy_init();
  char body[900];
  memset(body, 'j', sizeof(body));
  for (int i = 0; i < 150; i++) {
    struct reply r;
    if (i % 2)
      req(h, hm->port, "GET", "/healthz", NULL, 0, NULL, &r);
    else
      req(h, hm->port, "POST", "/echo", body, sizeof(body), NULL, &r);
    hm->ok += r.status == 200
              && (i % 2 || (r.len == sizeof(body)
                            && memcmp(r.body, body, r.len) == 0));
    reply_free(&r);
  }
  curl_easy_cleanup(h);
  return NULL;
}

TEST(concurrent_clients)
{
  struct http *srv = server(10, 256 << 10);
  REQUIRE(srv);
  struct hammer hm[4];
  pthread_t t[4];
  for (int i = 0; i < 4; i++) {
    hm[i].port = http_port(srv);
    hm[i].ok = 0;
    pthread_create(&t[i], NULL, hammer_main, &hm[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    CHECK_EQ_INT(hm[i].ok, 150);
  }
  http_destroy(srv);
}

static void h_nop(struct http_req *q, struct http_resp *r, void *arg)
{
  (void)q;
  (void)r;
  (void)arg;
}

TEST(route_and_option_errors)
{
  struct http_opts o;
  struct err e;
  struct http *srv;
  http_opts_defaults(&o);
  o.threads = 0;
  CHECK_EQ_INT(http_create(&srv, &o, &e), ERR_INVAL);
  http_opts_defaults(&o);
  REQUIRE(http_create(&srv, &o, &e) == ERR_OK);
  CHECK_EQ_INT(http_route(srv, "GET", "nope", h_nop, NULL, &e), ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "GET", "/a//b", h_nop, NULL, &e), ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "GET", "/a/{b", h_nop, NULL, &e), ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "GET", "/a/x{b}", h_nop, NULL, &e), ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "GET", "/{a}/{a}", h_nop, NULL, &e),
               ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "get", "/a", h_nop, NULL, &e), ERR_INVAL);
  CHECK_EQ_INT(http_route(srv, "GET", "/healthz", h_nop, NULL, &e),
               ERR_EXISTS);
  CHECK_EQ_INT(http_route(srv, "POST", "/healthz", h_nop, NULL, &e), ERR_OK);
  REQUIRE(http_start(srv, &e) == ERR_OK);
  CHECK_EQ_INT(http_route(srv, "GET", "/late", h_nop, NULL, &e), ERR_STATE);
  CHECK_EQ_INT(http_start(srv, &e), ERR_STATE);

  /* the same port twice */
  char addr[64];
  snprintf(addr, sizeof(addr), "127.0.0.1:%d", http_port(srv));
  struct http *two;
  http_opts_defaults(&o);
  o.listen = addr;
  REQUIRE(http_create(&two, &o, &e) == ERR_OK);
  CHECK_EQ_INT(http_start(two, &e), ERR_IO);
  CHECK(strstr(e.msg, addr));
  http_destroy(two);
  http_destroy(srv);

  const char *bad[] = {"nohost", "127.0.0.1:99999", "127.0.0.1:", "[::1",
                       "no.such.host.invalid:80", NULL};
  for (int i = 0; bad[i]; i++) {
    http_opts_defaults(&o);
    o.listen = bad[i];
    REQUIRE(http_create(&srv, &o, &e) == ERR_OK);
    CHECK_EQ_INT(http_start(srv, &e), ERR_INVAL);
    http_destroy(srv);
  }
  http_opts_defaults(&o);
  o.listen = "[::1]:0";
  REQUIRE(http_create(&srv, &o, &e) == ERR_OK);
  if (http_start(srv, &e) == ERR_OK)
    CHECK(http_port(srv) > 0);
  else
    fprintf(stderr, "  (no IPv6 loopback: %s)\n", e.msg);
  http_destroy(srv);
}

/* Threads of this process at nice want; the name of the last in name. */
static int threads_at_nice(int want, char *name, size_t cap)
{
  DIR *d = opendir("/proc/self/task");
  if (!d)
    return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.')
      continue;
    errno = 0;
    int v = getpriority(PRIO_PROCESS, (id_t)atoi(de->d_name));
    if (errno || v != want)
      continue;
    n++;
    char path[300];
    snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
    FILE *f = fopen(path, "r");
    if (f) {
      if (!fgets(name, (int)cap, f))
        name[0] = 0;
      fclose(f);
    }
  }
  closedir(d);
  return n;
}

/* server.thread_nice / thread_slice_us: the worker thread takes them on
 * its first connection; the rest of the process keeps its nice. */
TEST(worker_thread_nice)
{
  int base = getpriority(PRIO_PROCESS, 0);
  REQUIRE(base < 19);
  int want = base + 2 > 19 ? 19 : base + 2;
  char name[32] = "";
  REQUIRE(threads_at_nice(want, name, sizeof(name)) == 0);
  struct http_opts o;
  struct err e;
  struct http *srv;
  http_opts_defaults(&o);
  o.threads = 1;
  o.thread_nice = want;
  o.thread_slice_us = 200;
  REQUIRE(http_create(&srv, &o, &e) == ERR_OK);
  REQUIRE(http_start(srv, &e) == ERR_OK);
  CURL *h = curl_easy_init();
  REQUIRE(h != NULL);
  struct reply r;
  req(h, http_port(srv), "GET", "/healthz", NULL, 0, NULL, &r);
  CHECK_EQ_INT(r.status, 200);
  reply_free(&r);
  curl_easy_cleanup(h);
  CHECK_EQ_INT(threads_at_nice(want, name, sizeof(name)), 1);
  CHECK(strncmp(name, "MHD", 3) == 0); /* libmicrohttpd's thread */
  CHECK_EQ_INT(getpriority(PRIO_PROCESS, 0), base);
  http_destroy(srv);

  static const struct {
    int nice, slice_us;
    const char *msg;
  } bad[] = {{20, 0, "http: thread_nice = 20 (-20..19)"},
             {0, 100001, "http: thread_slice_us = 100001 (0..100000)"}};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CHECK_CASE(bad[i].msg);
    http_opts_defaults(&o);
    o.thread_nice = bad[i].nice;
    o.thread_slice_us = bad[i].slice_us;
    CHECK_EQ_INT(http_create(&srv, &o, &e), ERR_INVAL);
    CHECK_EQ_STR(e.msg, bad[i].msg);
  }
  CHECK_CASE(NULL);
}

TEST(shared_registry)
{
  struct metrics *m;
  struct err e;
  REQUIRE(metrics_create(&m, &e) == ERR_OK);
  struct http_opts o;
  http_opts_defaults(&o);
  o.metrics = m;
  struct http *srv;
  REQUIRE(http_create(&srv, &o, &e) == ERR_OK);
  CHECK(http_metrics(srv) == m);
  REQUIRE(http_start(srv, &e) == ERR_OK);
  CURL *h = curl_easy_init();
  struct reply r;
  req(h, http_port(srv), "GET", "/healthz", NULL, 0, NULL, &r);
  reply_free(&r);
  curl_easy_cleanup(h);
  http_destroy(srv);
  /* the registry outlives the server; its callback gauges are detached */
  char *buf = NULL;
  size_t len = 0, cap = 0;
  REQUIRE(metrics_render(m, &buf, &len, &cap, &e) == ERR_OK);
  CHECK(strstr(buf, "status=\"200\"} 1\n"));
  CHECK(!strstr(buf, "mlopsd_http_connections "));
  free(buf);
  metrics_destroy(m);
}

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!getenv("MLOPSD_TEST_VERBOSE"))
    log_set_level(LOG_ERROR);
  RUN(healthz_keepalive);
  RUN(not_found_and_method_not_allowed);
  RUN(routing_params_query_headers);
  RUN(post_echo_100k_reused_buffers);
  RUN(body_over_limit_413);
  RUN(header_over_memory_limit);
  RUN(slow_client_dropped_others_served);
  RUN(metrics_counts_requests);
  RUN(graceful_stop_finishes_in_flight);
  RUN(concurrent_clients);
  RUN(route_and_option_errors);
  RUN(shared_registry);
  RUN(worker_thread_nice);
  curl_global_cleanup();
  return check_done();
}
