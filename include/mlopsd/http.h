/* http.h - the HTTP server (libmicrohttpd).  Only http.c includes
 * <microhttpd.h>.
 *
 * One server = one libmicrohttpd daemon with an epoll event loop on a fixed
 * pool of worker threads; handlers run on those threads.  Life cycle:
 *
 *   struct http_opts o; http_opts_defaults(&o); o.listen = "0.0.0.0:3000";
 *   http_create(&srv, &o, &e);              // GET /healthz, /livez, GET /metrics
 *   http_route(srv, "POST", "/models/{name}/predict", predict, ctx, &e);
 *   http_start(srv, &e);                    // binds, starts the threads
 *   ...
 *   http_stop(srv, 10000, &e);              // graceful, see below
 *   http_destroy(srv);
 *
 * Routing: a pattern is an absolute path whose segments are literals or
 * `{name}` (matches one non-empty segment), e.g.
 * /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances.  Among the routes
 * of the request's method (HEAD also tries GET) that match, the one with a
 * literal at the leftmost differing segment wins (/models/list beats
 * /models/{name}).  No route for the path: 404 {"error": "not found", ...}.
 * Routes for the path but not the method: 405 with an Allow header.
 *
 * Limits (struct http_opts): a body over max_body_bytes is answered 413 at
 * once when Content-Length says so, else as soon as the bytes received pass
 * it (chunked); the connection is then closed.  The request line and
 * headers must fit in conn_memory_bytes, else libmicrohttpd itself answers
 * (431 Request Header Fields Too Large, or 414 for a long URI; see
 * docs/http.md) and closes.  A connection must deliver a complete request
 * (headers and body) within idle_timeout_s of opening or of its previous
 * response, otherwise it is closed: an idle keep-alive connection and a
 * client sending one byte a second are treated alike.  At most
 * max_connections connections: at the limit the library stops accepting
 * and newcomers wait in the listen backlog until a slot frees.
 *
 * Metrics (recorded for every request that reached routing, into the
 * registry given in the options or one of the server's own):
 *   mlopsd_http_requests_total{route,method,status}      counter
 *   mlopsd_http_request_duration_seconds{route,method,status_class} histogram (s)
 *   mlopsd_http_connections, mlopsd_http_requests_in_flight  gauges
 *   mlopsd_http_connections_reaped_total                  counter (idle/slow)
 * route is the pattern ("/models/{name}/predict"), or "unmatched" (404 /
 * 405) with method "any".  status 499 = client went away before an answer.
 *
 * Thread rule: create/route/start/stop/destroy from one thread (route only
 * before start).  Handlers are called on worker threads, concurrently, one
 * request at a time per connection; the req/resp objects are valid only
 * during the handler call and only on its thread.  A handler must return:
 * a handler that never returns blocks http_stop forever.
 */
#ifndef MLOPSD_HTTP_H
#define MLOPSD_HTTP_H

#include <stddef.h>

#include "mlopsd/err.h"

struct http;
struct http_req;
struct http_resp;
struct metrics;

#define HTTP_MAX_PARAMS 8     /* {name} segments in one pattern */
#define HTTP_MAX_SEGMENTS 32  /* segments in a pattern or routed path */
#define HTTP_MAX_RESP_BYTES ((size_t)64 << 20) /* cap on a built body */

struct http_opts {
  const char *listen;       /* "HOST:PORT"; "[::1]:80"; ":3000" = any IPv4;
                               port 0 = ephemeral (see http_port).  Copied. */
  int threads;              /* worker threads, >= 1 (default 2) */
  unsigned max_connections; /* default 1024 */
  unsigned idle_timeout_s;  /* default 30, >= 1 */
  size_t max_body_bytes;    /* default 1 MiB */
  size_t conn_memory_bytes; /* per connection, holds request line and
                               headers (libmicrohttpd); default 32 KiB */
  size_t keep_buf_bytes;    /* a connection keeps its body and output
                               buffers for the next request up to this
                               size, larger ones are freed (64 KiB) */
  struct metrics *metrics;  /* borrowed, must outlive the server; NULL =
                               the server makes its own (http_metrics) */
  int thread_nice;          /* nice of the worker threads (-20..19; default
                               0); a refused one is logged once and the
                               threads keep theirs (thsched.h) */
  int thread_slice_us;      /* their scheduler slice, 0 = the kernel's
                               default (0..100000; thsched.h) */
};

/* Fill o with the defaults above (listen "127.0.0.1:0"). */
void http_opts_defaults(struct http_opts *o);

/* A request handler.  Set the answer through resp; a handler that sets
 * nothing answers 200 with an empty body. */
typedef void (*http_handler_fn)(struct http_req *req, struct http_resp *resp,
                                void *arg);

/* Make a server (not yet listening) with the built-in routes GET /healthz
 * -> 200 {"status":"ok"} and GET /metrics -> the registry as Prometheus
 * text.  ERR_INVAL on bad options (message names the option), ERR_NOMEM. */
enum err_code http_create(struct http **out, const struct http_opts *o,
                          struct err *e) MLOPSD_WUR;

/* Add a route.  method is an upper-case token ("GET", "POST", ...); pattern
 * as described above (copied).  fn(req, resp, arg) on worker threads; arg
 * is borrowed and must outlive the server.  ERR_INVAL for a bad pattern,
 * ERR_EXISTS for a duplicate method+pattern, ERR_STATE after http_start. */
enum err_code http_route(struct http *srv, const char *method,
                         const char *pattern, http_handler_fn fn, void *arg,
                         struct err *e) MLOPSD_WUR;

/* Bind and start the worker threads.  ERR_IO if the address cannot be
 * bound (message has the address), ERR_INVAL for a bad listen string,
 * ERR_STATE if already started. */
enum err_code http_start(struct http *srv, struct err *e) MLOPSD_WUR;

/* The bound TCP port (useful with port 0); 0 before http_start. */
int http_port(const struct http *srv);

/* The registry the server records into (its own or the one given). */
struct metrics *http_metrics(struct http *srv);

/* Graceful stop: stop accepting (new connections are refused), answer
 * every further response with Connection: close, wait up to timeout_ms for
 * the requests in flight (headers received, answer not yet sent) to finish,
 * then close every connection and join the threads.  ERR_TIMEOUT if
 * requests were still in flight at the deadline (they are cut off);
 * ERR_OK otherwise, also when not started.  Idempotent. */
enum err_code http_stop(struct http *srv, int timeout_ms, struct err *e)
    MLOPSD_WUR;

/* Stop (timeout 0) if still running, and free.  NULL-safe. */
void http_destroy(struct http *srv);

/* Version of libmicrohttpd in use (static string). */
const char *http_lib_version(void);

/* ---- request view (valid during the handler call) --------------------
 * Returned strings are borrowed until the handler returns. */

const char *http_req_method(const struct http_req *req);
/* The path without the query string, %-decoded. */
const char *http_req_path(const struct http_req *req);
/* The route's pattern that matched, e.g. "/models/{name}/predict". */
const char *http_req_route(const struct http_req *req);
/* Value of a {name} segment of the pattern; NULL if no such name. */
const char *http_req_param(const struct http_req *req, const char *name);
/* Header value (name case-insensitive); NULL if absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/* Query-string argument; NULL if absent ("" for ?flag). */
const char *http_req_query(const struct http_req *req, const char *name);
/* Every value of a repeated query argument (?state=a&state=b), in the
 * order sent: fn(user, value) for each until it returns non-zero.
 * Returns the number of values visited. */
int http_req_query_each(const struct http_req *req, const char *name,
                        int (*fn)(void *user, const char *value), void *user);
/* Content-Type header or NULL. */
const char *http_req_content_type(const struct http_req *req);
/* Every registered route in registration order: fn(user, method,
 * pattern).  Routes are fixed once the server started, so any thread may
 * call this then (the /openapi.json handler does). */
void http_routes_each(const struct http *srv,
                      void (*fn)(void *user, const char *method,
                                 const char *pattern),
                      void *user);
/* The request body (at most max_body_bytes), NUL-terminated for
 * convenience (the NUL is not counted in *len); "" with *len 0 if none. */
const char *http_req_body(const struct http_req *req, size_t *len);

/* ---- response builder (valid during the handler call) ----------------
 * The body is built in a buffer that belongs to the connection and is
 * reused by its next request, so building a typical answer allocates
 * nothing.  Functions returning enum err_code fail with ERR_NOMEM or
 * ERR_FULL (body over HTTP_MAX_RESP_BYTES, or header space exhausted); the
 * server then answers 500 unless the handler sets another answer. */

void http_resp_status(struct http_resp *resp, int status);
/* Content-Type of the answer (copied; default "application/json"). */
void http_resp_content_type(struct http_resp *resp, const char *ctype);
/* Append n bytes (copied) to the body. */
enum err_code http_resp_write(struct http_resp *resp, const void *p, size_t n)
    MLOPSD_WUR;
enum err_code http_resp_printf(struct http_resp *resp, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3) MLOPSD_WUR;
/* Append s as a JSON string literal: quoted, escaped, invalid UTF-8 bytes
 * replaced by U+FFFD (so user input can be echoed safely).  NULL -> null. */
enum err_code http_resp_json_str(struct http_resp *resp, const char *s)
    MLOPSD_WUR;
/* Room for n more body bytes: returns a pointer to write into (NULL on
 * failure), then http_resp_commit(resp, used) with used <= n. */
char *http_resp_reserve(struct http_resp *resp, size_t n);
void http_resp_commit(struct http_resp *resp, size_t used);
/* Discard the body built so far. */
void http_resp_clear(struct http_resp *resp);
/* Answer with n bytes at p that stay valid for the life of the server
 * (a static string): nothing is copied.  Replaces any body built. */
void http_resp_static(struct http_resp *resp, const void *p, size_t n);
/* Extra header (copied; up to 16 headers, 2 KiB in all). */
enum err_code http_resp_header(struct http_resp *resp, const char *name,
                               const char *value) MLOPSD_WUR;
/* status + {"error": "<message>"} as JSON, replacing any body built. */
void http_resp_error(struct http_resp *resp, int status, const char *fmt, ...)
    MLOPSD_PRINTF(3, 4);

#endif
