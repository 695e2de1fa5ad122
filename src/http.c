/* http.c - the HTTP server on libmicrohttpd (see http.h, docs/http.md).
 *
 * Design notes (the why):
 *
 * - libmicrohttpd with MHD_USE_EPOLL_INTERNAL_THREAD and a thread pool:
 *   every worker owns an epoll set and accepts on the shared listen socket,
 *   so there is no hand-off between an acceptor and the workers.
 *
 * - The answer is queued on a later call of the access handler than the
 *   first one for a request.  Queueing on the first call makes the library
 *   answer "Connection: close" (measured: 4-5x fewer requests/s, NOTES.md).
 *   The exception is a 413 decided from Content-Length: there closing the
 *   connection is the point (the body is never read).
 *
 * - Per-connection state (struct conn) is allocated when a connection
 *   opens (MHD_OPTION_NOTIFY_CONNECTION) and freed when it closes; the
 *   request state, the body buffer and the output buffer live in it and are
 *   reused by the requests that follow on the same connection.  Buffers are
 *   grown on demand and released after a request only when they grew past
 *   keep_buf_bytes, which bounds what idle connections hold.
 *
 * - libmicrohttpd's connection timeout counts from the last byte received,
 *   so a client sending one byte a second is never idle and could hold a
 *   connection forever.  A reaper thread closes (shutdown(2)) connections
 *   whose current request has not been fully received idle_timeout_s after
 *   the connection opened or answered its previous request.  The fd is shut
 *   down with conn_mu held, and the connection leaves the list under the
 *   same lock in the close notification, which the library sends before it
 *   closes the fd: so the fd shut down is never one reused by another
 *   connection.
 *
 * - Routes are read-only once the server runs, so routing takes no lock.
 *   Each route resolves its metric series at registration; recording a
 *   request is two relaxed atomic adds.
 */
#include "mlopsd/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/log.h"
#include "mlopsd/metrics.h"
#include "mlopsd/thsched.h"
#include "mlopsd/vec.h"

#define HTTP_MAX_HEADERS 16
#define HTTP_HDR_ARENA 2048
#define HTTP_DEFAULT_CTYPE "application/json"
/* Append a string literal to a response body. */
#define W_LIT(r, lit) http_resp_write((r), (lit), sizeof(lit) - 1)

/* Status codes with their own counter series; anything else counts as
 * "other".  499 = the client went away before an answer was queued. */
static const int status_codes[] = {
    200, 201, 202, 204, 206, 301, 302, 304, 400, 401, 403, 404, 405, 408,
    409, 410, 411, 413, 414, 415, 422, 429, 431, 499, 500, 501, 502, 503,
    504};
#define N_STATUS ((int)(sizeof(status_codes) / sizeof(status_codes[0])))
#define N_CLASS 5 /* 1xx..5xx */

struct route_metrics {
  struct metrics_counter *by_status[N_STATUS + 1]; /* last = other */
  struct metrics_hist *by_class[N_CLASS];
};

struct seg {
  char *lit;     /* NULL for a {param} */
  size_t len;
  int param;     /* index into params, or -1 */
};

struct route {
  char method[16];
  char *pattern;
  int nseg;
  struct seg segs[HTTP_MAX_SEGMENTS];
  char *param_names[HTTP_MAX_PARAMS];
  int nparams;
  http_handler_fn fn;
  void *arg;
  struct route_metrics rm;
};

struct http_req {
  struct MHD_Connection *mc;
  const char *method;
  const char *path;
  const struct route *route;
  const char *params[HTTP_MAX_PARAMS];
  const char *body;
  size_t body_len;
};

struct http_resp {
  struct conn *c;
  int status;
  bool oom;                  /* a write failed: answer 500 */
  const char *static_body;   /* set by http_resp_static */
  size_t static_len;
  char ctype[128];
  int nh;
  uint16_t hname[HTTP_MAX_HEADERS], hval[HTTP_MAX_HEADERS];
  size_t harena_used;
  char harena[HTTP_HDR_ARENA];
};

enum phase {
  PH_WAIT = 0, /* waiting for / receiving the request (reaper watches) */
  PH_BODY,     /* headers in, receiving the body (reaper watches) */
  PH_BUSY      /* request received: handler, sending the answer */
};

struct conn {
  struct http *srv;
  struct conn *prev, *next; /* srv->conns, under srv->conn_mu */
  int fd;
  bool reaped;              /* conn_mu */
  _Atomic int phase;
  _Atomic int64_t since_ms; /* when the current request's clock started */

  /* current request (owned by the connection's worker thread) */
  int64_t t0_ns;
  bool queued, too_large, in_flight;
  bool shutting; /* began after http_stop started: answer 503 only */
  size_t dropped;           /* body bytes dropped after a 413 */
  int match;                /* 0 ok, 404, 405 */
  char allow[64];           /* for 405 */
  const struct route_metrics *rm;
  struct http_req req;
  struct http_resp resp;

  char *body;               /* request body, NUL-terminated */
  size_t body_len, body_cap;
  char *out;                /* response body being built */
  size_t out_len, out_cap;
  char *scratch;            /* copy of the path, split into params */
  size_t scratch_cap;
};

struct http {
  struct http_opts o;
  char listen[256];
  struct route **routes;
  int nroutes;
  struct route_metrics unmatched;
  struct metrics *metrics;
  bool own_metrics;
  struct metrics_gauge *g_conns, *g_inflight;
  struct metrics_counter *c_reaped;

  struct MHD_Daemon *d;
  MHD_socket listen_fd;     /* after quiesce, closed after stop */
  int port;
  bool started, stopped;
  _Atomic bool stopping;
  _Atomic int nconns;
  _Atomic int inflight;
  _Atomic bool sched_warned; /* a refused thread_nice is logged once */

  pthread_mutex_t conn_mu;
  struct conn *conns;
  pthread_t reaper;
  bool reaper_running;
  pthread_mutex_t reaper_mu;
  pthread_cond_t reaper_cv;
  bool reaper_quit;
};

/* ---- small helpers --------------------------------------------------- */

static int64_t now_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ms(void) { return now_ns() / 1000000; }

static int status_index(int status)
{
  for (int i = 0; i < N_STATUS; i++)
    if (status_codes[i] == status)
      return i;
  return N_STATUS;
}

/* Room for need bytes in a connection buffer, never more than limit. */
static bool grow(char **p, size_t *cap, size_t need, size_t limit)
{
  return need <= limit && VEC_RESERVE(*p, *cap, need) == 0;
}

/* ---- response builder ------------------------------------------------ */

void http_resp_status(struct http_resp *r, int status) { r->status = status; }

void http_resp_content_type(struct http_resp *r, const char *ctype)
{
  snprintf(r->ctype, sizeof(r->ctype), "%s", ctype ? ctype : "");
}

char *http_resp_reserve(struct http_resp *r, size_t n)
{
  struct conn *c = r->c;
  if (r->static_body) { /* switching back to a built body */
    r->static_body = NULL;
    c->out_len = 0;
  }
  /* +1 keeps room for a NUL that printf-style writers need */
  if (n > HTTP_MAX_RESP_BYTES
      || !grow(&c->out, &c->out_cap, c->out_len + n + 1,
               HTTP_MAX_RESP_BYTES + 1)) {
    r->oom = true;
    return NULL;
  }
  return c->out + c->out_len;
}

void http_resp_commit(struct http_resp *r, size_t used)
{
  struct conn *c = r->c;
  if (c->out_len + used < c->out_cap)
    c->out_len += used;
}

enum err_code http_resp_write(struct http_resp *r, const void *p, size_t n)
{
  char *dst = http_resp_reserve(r, n);
  if (!dst)
    return ERR_FULL;
  memcpy(dst, p, n);
  http_resp_commit(r, n);
  return ERR_OK;
}

static enum err_code resp_vprintf(struct http_resp *r, const char *fmt,
                                  va_list ap)
{
  va_list ap2;
  va_copy(ap2, ap);
  char *dst = http_resp_reserve(r, 256);
  if (!dst) {
    va_end(ap2);
    return ERR_FULL;
  }
  int n = vsnprintf(dst, 257, fmt, ap);
  if (n < 0) {
    va_end(ap2);
    return ERR_INVAL;
  }
  if (n > 256) {
    dst = http_resp_reserve(r, (size_t)n);
    if (!dst) {
      va_end(ap2);
      return ERR_FULL;
    }
    vsnprintf(dst, (size_t)n + 1, fmt, ap2);
  }
  va_end(ap2);
  http_resp_commit(r, (size_t)n);
  return ERR_OK;
}

enum err_code http_resp_printf(struct http_resp *r, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  enum err_code rc = resp_vprintf(r, fmt, ap);
  va_end(ap);
  return rc;
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
  unsigned char c = s[0];
  if (c < 0x80)
    return 1;
  size_t n;
  uint32_t cp;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  for (size_t i = 1; i < n; i++) {
    if ((s[i] & 0xC0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3F);
  }
  /* overlong forms, surrogates, beyond U+10FFFF */
  if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800)
      || (n == 4 && cp < 0x10000) || cp > 0x10FFFF
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

enum err_code http_resp_json_str(struct http_resp *r, const char *s)
{
  if (!s)
    return http_resp_write(r, "null", 4);
  size_t sl = strlen(s);
  /* worst case: every byte becomes \u00XX or U+FFFD (3 bytes) */
  char *dst = http_resp_reserve(r, sl * 6 + 2);
  if (!dst)
    return ERR_FULL;
  char *d = dst;
  *d++ = '"';
  const unsigned char *p = (const unsigned char *)s;
  while (*p) {
    unsigned char ch = *p;
    if (ch == '"' || ch == '\\') {
      *d++ = '\\';
      *d++ = (char)ch;
      p++;
    } else if (ch < 0x20) {
      static const char hex[] = "0123456789abcdef";
      if (ch == '\n') {
        *d++ = '\\';
        *d++ = 'n';
      } else if (ch == '\t') {
        *d++ = '\\';
        *d++ = 't';
      } else if (ch == '\r') {
        *d++ = '\\';
        *d++ = 'r';
      } else {
        memcpy(d, "\\u00", 4);
        d += 4;
        *d++ = hex[ch >> 4];
        *d++ = hex[ch & 15];
      }
      p++;
    } else if (ch < 0x80) {
      *d++ = (char)ch;
      p++;
    } else {
      size_t n = utf8_len(p);
      if (n == 0) {
        memcpy(d, "\xEF\xBF\xBD", 3); /* U+FFFD */
        d += 3;
        p++;
      } else {
        memcpy(d, p, n);
        d += n;
        p += n;
      }
    }
  }
  *d++ = '"';
  http_resp_commit(r, (size_t)(d - dst));
  return ERR_OK;
}

void http_resp_clear(struct http_resp *r)
{
  r->static_body = NULL;
  r->static_len = 0;
  r->c->out_len = 0;
  r->oom = false;
}

void http_resp_static(struct http_resp *r, const void *p, size_t n)
{
  r->c->out_len = 0;
  r->static_body = p;
  r->static_len = n;
}

enum err_code http_resp_header(struct http_resp *r, const char *name,
                               const char *value)
{
  size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
  if (r->nh >= HTTP_MAX_HEADERS || r->harena_used + nl + vl > HTTP_HDR_ARENA)
    return ERR_FULL;
  r->hname[r->nh] = (uint16_t)r->harena_used;
  memcpy(r->harena + r->harena_used, name, nl);
  r->harena_used += nl;
  r->hval[r->nh] = (uint16_t)r->harena_used;
  memcpy(r->harena + r->harena_used, value, vl);
  r->harena_used += vl;
  r->nh++;
  return ERR_OK;
}

void http_resp_error(struct http_resp *r, int status, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  http_resp_clear(r);
  r->status = status;
  http_resp_content_type(r, HTTP_DEFAULT_CTYPE);
  if (W_LIT(r, "{\"error\":") || http_resp_json_str(r, msg)
      || W_LIT(r, "}"))
    r->oom = true;
}

/* ---- request view ---------------------------------------------------- */

const char *http_req_method(const struct http_req *q) { return q->method; }
const char *http_req_path(const struct http_req *q) { return q->path; }

const char *http_req_route(const struct http_req *q)
{
  return q->route ? q->route->pattern : NULL;
}

const char *http_req_param(const struct http_req *q, const char *name)
{
  if (!q->route)
    return NULL;
  for (int i = 0; i < q->route->nparams; i++)
    if (strcmp(q->route->param_names[i], name) == 0)
      return q->params[i];
  return NULL;
}

const char *http_req_header(const struct http_req *q, const char *name)
{
  return MHD_lookup_connection_value(q->mc, MHD_HEADER_KIND, name);
}

const char *http_req_query(const struct http_req *q, const char *name)
{
  const char *v =
      MHD_lookup_connection_value(q->mc, MHD_GET_ARGUMENT_KIND, name);
  if (!v) { /* "?flag" has a key and no value: say "" rather than absent */
    const char *dummy;
    if (MHD_lookup_connection_value_n(q->mc, MHD_GET_ARGUMENT_KIND, name,
                                      strlen(name), &dummy, NULL)
        == MHD_YES)
      return "";
  }
  return v;
}

struct query_each {
  const char *name;
  int (*fn)(void *user, const char *value);
  void *user;
  int n, stop;
};

static enum MHD_Result query_each_cb(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
  struct query_each *qe = cls;
  (void)kind;
  if (qe->stop || !key || strcmp(key, qe->name) != 0)
    return MHD_YES;
  qe->n++;
  if (qe->fn(qe->user, value ? value : ""))
    qe->stop = 1;
  return qe->stop ? MHD_NO : MHD_YES;
}

int http_req_query_each(const struct http_req *q, const char *name,
                        int (*fn)(void *user, const char *value), void *user)
{
  struct query_each qe = {name, fn, user, 0, 0};
  MHD_get_connection_values(q->mc, MHD_GET_ARGUMENT_KIND, query_each_cb, &qe);
  return qe.n;
}

void http_routes_each(const struct http *srv,
                      void (*fn)(void *user, const char *method,
                                 const char *pattern),
                      void *user)
{
  for (int i = 0; i < srv->nroutes; i++)
    fn(user, srv->routes[i]->method, srv->routes[i]->pattern);
}

const char *http_req_content_type(const struct http_req *q)
{
  return MHD_lookup_connection_value(q->mc, MHD_HEADER_KIND,
                                     MHD_HTTP_HEADER_CONTENT_TYPE);
}

const char *http_req_body(const struct http_req *q, size_t *len)
{
  if (len)
    *len = q->body_len;
  return q->body ? q->body : "";
}

/* ---- routing --------------------------------------------------------- */

static bool param_name_ok(const char *s, size_t n)
{
  if (n == 0)
    return false;
  for (size_t i = 0; i < n; i++) {
    char ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
          || (ch >= '0' && ch <= '9') || ch == '_'))
      return false;
  }
  return true;
}

static void route_free(struct route *rt)
{
  if (!rt)
    return;
  for (int i = 0; i < rt->nseg; i++)
    free(rt->segs[i].lit);
  for (int i = 0; i < rt->nparams; i++)
    free(rt->param_names[i]);
  free(rt->pattern);
  free(rt);
}

static enum err_code route_parse(struct route *rt, const char *pattern,
                                 struct err *e)
{
  if (!pattern || pattern[0] != '/')
    return err_set(e, ERR_INVAL, "http: route '%s': must start with '/'",
                   pattern ? pattern : "(null)");
  const char *p = pattern + 1;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0)
      return err_set(e, ERR_INVAL, "http: route '%s': empty segment",
                     pattern);
    if (rt->nseg >= HTTP_MAX_SEGMENTS)
      return err_set(e, ERR_INVAL, "http: route '%s': over %d segments",
                     pattern, HTTP_MAX_SEGMENTS);
    struct seg *s = &rt->segs[rt->nseg];
    s->param = -1;
    if (p[0] == '{') {
      if (n < 3 || p[n - 1] != '}' || !param_name_ok(p + 1, n - 2))
        return err_set(e, ERR_INVAL,
                       "http: route '%s': bad parameter segment '%.*s'",
                       pattern, (int)n, p);
      if (rt->nparams >= HTTP_MAX_PARAMS)
        return err_set(e, ERR_INVAL, "http: route '%s': over %d parameters",
                       pattern, HTTP_MAX_PARAMS);
      for (int i = 0; i < rt->nparams; i++)
        if (strlen(rt->param_names[i]) == n - 2
            && memcmp(rt->param_names[i], p + 1, n - 2) == 0)
          return err_set(e, ERR_INVAL,
                         "http: route '%s': parameter '%.*s' twice", pattern,
                         (int)(n - 2), p + 1);
      if (!(rt->param_names[rt->nparams] = strndup(p + 1, n - 2)))
        return err_set(e, ERR_NOMEM, "http: out of memory");
      s->param = rt->nparams++;
    } else {
      if (memchr(p, '{', n) || memchr(p, '}', n))
        return err_set(e, ERR_INVAL, "http: route '%s': '{' or '}' inside "
                       "segment '%.*s'", pattern, (int)n, p);
      if (!(s->lit = strndup(p, n)))
        return err_set(e, ERR_NOMEM, "http: out of memory");
      s->len = n;
    }
    rt->nseg++;
    p += n;
    if (*p == '/')
      p++;
  }
  return ERR_OK;
}

/* Split the request path into segments (pointers into c->scratch). */
static int split_path(struct conn *c, const char *path, const char **segs)
{
  size_t n = strlen(path);
  if (!grow(&c->scratch, &c->scratch_cap, n + 1, (size_t)1 << 30))
    return -1;
  memcpy(c->scratch, path, n + 1);
  int nseg = 0;
  char *p = c->scratch;
  if (*p == '/')
    p++;
  while (*p) {
    if (nseg >= HTTP_MAX_SEGMENTS)
      return -1;
    segs[nseg++] = p;
    char *slash = strchr(p, '/');
    if (!slash)
      break;
    *slash = '\0';
    p = slash + 1;
  }
  return nseg;
}

/* Does rt's pattern match the segments?  Returns a score (higher = more
 * specific: a literal at an earlier position counts more) or -1. */
static int64_t route_match(const struct route *rt, const char **segs,
                           int nseg)
{
  if (rt->nseg != nseg)
    return -1;
  int64_t score = 0;
  for (int i = 0; i < nseg; i++) {
    const struct seg *s = &rt->segs[i];
    if (s->lit) {
      if (strcmp(s->lit, segs[i]) != 0)
        return -1;
      score |= (int64_t)1 << (HTTP_MAX_SEGMENTS - 1 - i);
    } else if (!segs[i][0]) {
      return -1; /* {param} needs a non-empty segment */
    }
  }
  return score;
}

static bool method_is(const struct route *rt, const char *method, bool head)
{
  return strcmp(rt->method, method) == 0
         || (head && strcmp(rt->method, "GET") == 0);
}

/* Route the request: sets c->req.route (and params) or c->match. */
static void route_request(struct conn *c, const char *method,
                          const char *path)
{
  struct http *srv = c->srv;
  const char *segs[HTTP_MAX_SEGMENTS];
  int nseg = split_path(c, path, segs);
  bool head = strcmp(method, "HEAD") == 0;
  const struct route *best = NULL, *best_any = NULL;
  int64_t best_score = -1;
  c->allow[0] = '\0';
  if (nseg >= 0) {
    for (int i = 0; i < srv->nroutes; i++) {
      const struct route *rt = srv->routes[i];
      int64_t sc = route_match(rt, segs, nseg);
      if (sc < 0)
        continue;
      best_any = rt;
      if (method_is(rt, method, head)) {
        /* exact method beats HEAD->GET at equal score */
        if (sc > best_score
            || (sc == best_score && strcmp(rt->method, method) == 0)) {
          best = rt;
          best_score = sc;
        }
      } else if (!strstr(c->allow, rt->method)) {
        size_t used = strlen(c->allow);
        snprintf(c->allow + used, sizeof(c->allow) - used, "%s%s%s",
                 used ? ", " : "", rt->method,
                 strcmp(rt->method, "GET") == 0 ? ", HEAD" : "");
      }
    }
  }
  if (best) {
    c->match = 0;
    c->req.route = best;
    c->rm = &best->rm;
    for (int i = 0; i < best->nseg; i++)
      if (best->segs[i].param >= 0)
        c->req.params[best->segs[i].param] = segs[i];
    return;
  }
  c->req.route = NULL;
  c->rm = &srv->unmatched;
  c->match = best_any ? 405 : 404;
}

/* ---- metrics --------------------------------------------------------- */

static enum err_code rm_register(struct http *srv, struct route_metrics *rm,
                                 const char *route, const char *method,
                                 struct err *e)
{
  enum err_code rc;
  for (int i = 0; i <= N_STATUS; i++) {
    char st[16];
    if (i < N_STATUS)
      snprintf(st, sizeof(st), "%d", status_codes[i]);
    else
      snprintf(st, sizeof(st), "other");
    const char *lab[] = {"route", route, "method", method, "status", st, NULL};
    rc = metrics_counter_new(srv->metrics, "mlopsd_http_requests_total",
                             "HTTP requests answered, by route pattern, "
                             "method and status.",
                             lab, METRICS_HIDE_ZERO, &rm->by_status[i], e);
    if (rc)
      return rc;
  }
  for (int i = 0; i < N_CLASS; i++) {
    char cl[16];
    snprintf(cl, sizeof(cl), "%dxx", i + 1);
    const char *lab[] = {"route", route, "method", method, "status_class", cl,
                         NULL};
    rc = metrics_hist_new(srv->metrics, "mlopsd_http_request_duration_seconds",
                          "Time from request headers received to answer "
                          "sent, in seconds.",
                          lab, metrics_s_buckets, METRICS_S_NBUCKETS, METRICS_HIDE_ZERO, &rm->by_class[i],
                          e);
    if (rc)
      return rc;
  }
  return ERR_OK;
}

static void rm_record(const struct route_metrics *rm, int status,
                      int64_t elapsed_ns)
{
  metrics_counter_add(rm->by_status[status_index(status)], 1);
  int cl = status / 100 - 1;
  if (cl < 0 || cl >= N_CLASS)
    cl = N_CLASS - 1;
  metrics_hist_observe(rm->by_class[cl], (double)elapsed_ns / 1e9);
}

static double gauge_conns(void *arg)
{
  struct http *srv = arg;
  return atomic_load_explicit(&srv->nconns, memory_order_relaxed);
}

static double gauge_inflight(void *arg)
{
  struct http *srv = arg;
  return atomic_load_explicit(&srv->inflight, memory_order_relaxed);
}

/* ---- built-in routes ------------------------------------------------- */

static void h_healthz(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  (void)req;
  (void)arg;
  static const char ok[] = "{\"status\":\"ok\"}";
  http_resp_static(resp, ok, sizeof(ok) - 1);
}

static void h_metrics(struct http_req *req, struct http_resp *resp,
                      void *arg)
{
  (void)req;
  struct http *srv = arg;
  struct conn *c = resp->c;
  struct err e;
  http_resp_clear(resp);
  if (metrics_render(srv->metrics, &c->out, &c->out_len, &c->out_cap, &e)) {
    LOG_E("http", "GET /metrics: %s", e.msg);
    http_resp_error(resp, 500, "%s", e.msg);
    return;
  }
  http_resp_content_type(resp, "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- libmicrohttpd callbacks ----------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  (void)cls;
  char line[512];
  vsnprintf(line, sizeof(line), fmt, ap);
  size_t n = strlen(line);
  while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    line[--n] = '\0';
  LOG_W("http", "libmicrohttpd: %s", line);
}

static void conn_trim(struct conn *c)
{
  size_t keep = c->srv->o.keep_buf_bytes;
  if (c->body_cap > keep) {
    FREE_NULL(c->body);
    c->body_cap = 0;
  }
  if (c->out_cap > keep) {
    FREE_NULL(c->out);
    c->out_cap = 0;
  }
  c->body_len = 0;
  c->out_len = 0;
}

static void conn_free(struct conn *c)
{
  free(c->body);
  free(c->out);
  free(c->scratch);
  free(c);
}

/* The worker threads are libmicrohttpd's, so their nice and slice are set
 * by each of them on its first connection (a worker accepts its own). */
static _Thread_local bool tl_sched_done;

static void worker_sched(struct http *srv)
{
  tl_sched_done = true;
  if (srv->o.thread_nice == 0 && srv->o.thread_slice_us == 0)
    return;
  struct err e;
  err_clear(&e);
  if (thsched_set(srv->o.thread_nice, srv->o.thread_slice_us, &e) != ERR_OK &&
      !atomic_exchange(&srv->sched_warned, true))
    LOG_W("http", "server.thread_nice=%d server.thread_slice_us=%d: %s",
          srv->o.thread_nice, srv->o.thread_slice_us, e.msg);
}

static void on_connection(void *cls, struct MHD_Connection *mc,
                          void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
  struct http *srv = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    if (!tl_sched_done)
      worker_sched(srv);
    struct conn *c = calloc(1, sizeof(*c));
    *socket_context = c;
    if (!c) {
      LOG_E("http", "out of memory for a connection");
      return; /* the access handler refuses a NULL context */
    }
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->srv = srv;
    c->fd = ci ? ci->connect_fd : -1;
    c->resp.c = c;
    atomic_store_explicit(&c->phase, PH_WAIT, memory_order_relaxed);
    atomic_store_explicit(&c->since_ms, now_ms(), memory_order_relaxed);
    pthread_mutex_lock(&srv->conn_mu);
    c->next = srv->conns;
    if (srv->conns)
      srv->conns->prev = c;
    srv->conns = c;
    pthread_mutex_unlock(&srv->conn_mu);
    atomic_fetch_add_explicit(&srv->nconns, 1, memory_order_relaxed);
    return;
  }
  struct conn *c = *socket_context;
  if (!c)
    return;
  pthread_mutex_lock(&srv->conn_mu);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  pthread_mutex_unlock(&srv->conn_mu);
  atomic_fetch_sub_explicit(&srv->nconns, 1, memory_order_relaxed);
  conn_free(c);
  *socket_context = NULL;
}

/* Send what the handler (or the server) put in c->resp. */
static enum MHD_Result send_answer(struct conn *c, bool close_conn)
{
  struct http_resp *r = &c->resp;
  struct http *srv = c->srv;
  struct MHD_Response *mr;
  if (r->oom) {
    static const char msg[] = "{\"error\":\"response too large or out of "
                              "memory\"}";
    r->status = 500;
    r->nh = 0;
    mr = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
                                         MHD_RESPMEM_PERSISTENT);
    http_resp_content_type(r, HTTP_DEFAULT_CTYPE);
  } else if (r->static_body) {
    mr = MHD_create_response_from_buffer(r->static_len,
                                         (void *)r->static_body,
                                         MHD_RESPMEM_PERSISTENT);
  } else {
    /* The output buffer belongs to the connection and is not touched
     * again until this answer has been sent (the next request on the
     * connection starts only then), so the library may read it in place. */
    mr = MHD_create_response_from_buffer(c->out_len, c->out_len ? c->out : "",
                                         MHD_RESPMEM_PERSISTENT);
  }
  if (!mr)
    return MHD_NO;
  if (r->ctype[0])
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype);
  for (int i = 0; i < r->nh; i++)
    MHD_add_response_header(mr, r->harena + r->hname[i],
                            r->harena + r->hval[i]);
  if (close_conn || atomic_load_explicit(&srv->stopping, memory_order_relaxed))
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONNECTION, "close");
  if (r->status < 100 || r->status > 599)
    r->status = 500;
  enum MHD_Result ret = MHD_queue_response(c->req.mc, (unsigned)r->status, mr);
  MHD_destroy_response(mr);
  if (ret == MHD_YES)
    c->queued = true;
  return ret;
}

static void answer_too_large(struct conn *c)
{
  http_resp_error(&c->resp, 413, "request body over %zu bytes",
                  c->srv->o.max_body_bytes);
}

static void request_begin(struct conn *c, struct MHD_Connection *mc,
                          const char *url, const char *method)
{
  struct http *srv = c->srv;
  c->t0_ns = now_ns();
  c->queued = false;
  c->too_large = false;
  c->dropped = 0;
  c->in_flight = true;
  /* Sequentially consistent with http_stop's store of `stopping` and its
   * read of `inflight`: either http_stop sees this request in flight and
   * waits for it, or the request sees `stopping` and is refused without
   * running its handler (never processed and then cut off unanswered). */
  atomic_fetch_add_explicit(&srv->inflight, 1, memory_order_seq_cst);
  c->shutting = atomic_load_explicit(&srv->stopping, memory_order_seq_cst);
  memset(&c->req, 0, sizeof(c->req));
  c->req.mc = mc;
  c->req.method = method;
  c->req.path = url;
  c->body_len = 0;
  c->out_len = 0;
  struct http_resp *r = &c->resp;
  r->status = 200;
  r->oom = false;
  r->static_body = NULL;
  r->static_len = 0;
  memcpy(r->ctype, HTTP_DEFAULT_CTYPE, sizeof(HTTP_DEFAULT_CTYPE));
  r->nh = 0;
  r->harena_used = 0;
  route_request(c, method, url);
}

static void dispatch(struct conn *c)
{
  struct http_resp *r = &c->resp;
  if (c->shutting) {
    http_resp_error(r, 503, "server shutting down");
    return;
  }
  if (c->too_large) {
    answer_too_large(c);
    return;
  }
  if (c->match == 404) {
    http_resp_clear(r);
    r->status = 404;
    if (W_LIT(r, "{\"error\":\"not found\",\"path\":")
        || http_resp_json_str(r, c->req.path) || W_LIT(r, "}"))
      r->oom = true;
    return;
  }
  if (c->match == 405) {
    http_resp_clear(r);
    r->status = 405;
    if (W_LIT(r, "{\"error\":\"method not allowed\",\"method\":")
        || http_resp_json_str(r, c->req.method)
        || W_LIT(r, ",\"allow\":")
        || http_resp_json_str(r, c->allow) || W_LIT(r, "}")
        || http_resp_header(r, MHD_HTTP_HEADER_ALLOW, c->allow))
      r->oom = true;
    return;
  }
  c->req.body = c->body;
  c->req.body_len = c->body_len;
  c->req.route->fn(&c->req, r, c->req.route->arg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
  (void)cls;
  (void)version;
  struct conn *c = *req_cls;
  if (!c) {
    /* First call: headers are in.  Route and check the declared length,
     * but answer later (see the file comment), except for a 413. */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    c = ci ? ci->socket_context : NULL;
    if (!c)
      return MHD_NO;
    *req_cls = c;
    request_begin(c, mc, url, method);
    const char *cl = MHD_lookup_connection_value(
        mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
      char *end;
      errno = 0;
      unsigned long long n = strtoull(cl, &end, 10);
      if (errno || end == cl || n > c->srv->o.max_body_bytes) {
        c->too_large = true;
        answer_too_large(c);
        return send_answer(c, true);
      }
    }
    atomic_store_explicit(&c->phase, PH_BODY, memory_order_relaxed);
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (c->queued || c->match)
      return MHD_YES; /* body not needed: drop it */
    size_t max = c->srv->o.max_body_bytes;
    if (c->too_large) {
      /* libmicrohttpd 0.9.75 cannot queue an answer in the middle of a
       * body, so the rest is dropped and the 413 goes out at its end; a
       * client that sends yet another max_body_bytes is cut off. */
      c->dropped += n;
      return c->dropped > max ? MHD_NO : MHD_YES;
    }
    if (c->body_len + n > max) {
      c->too_large = true;
      c->dropped = c->body_len + n - max;
      c->body_len = 0;
      return MHD_YES;
    }
    if (!grow(&c->body, &c->body_cap, c->body_len + n + 1, max + 1)) {
      LOG_E("http", "out of memory for a %zu-byte body", c->body_len + n);
      return MHD_NO;
    }
    memcpy(c->body + c->body_len, upload, n);
    c->body_len += n;
    c->body[c->body_len] = '\0';
    return MHD_YES;
  }
  /* Last call: the whole request is in. */
  atomic_store_explicit(&c->phase, PH_BUSY, memory_order_relaxed);
  if (c->queued)
    return MHD_YES;
  dispatch(c);
  return send_answer(c, c->too_large);
}

static void on_completed(void *cls, struct MHD_Connection *mc,
                         void **req_cls, enum MHD_RequestTerminationCode toe)
{
  (void)mc;
  (void)toe;
  struct http *srv = cls;
  struct conn *c = *req_cls;
  if (!c || !c->in_flight)
    return;
  *req_cls = NULL;
  c->in_flight = false;
  int64_t t1 = now_ns();
  rm_record(c->rm, c->queued ? c->resp.status : 499, t1 - c->t0_ns);
  conn_trim(c);
  atomic_store_explicit(&c->since_ms, t1 / 1000000, memory_order_relaxed);
  atomic_store_explicit(&c->phase, PH_WAIT, memory_order_relaxed);
  atomic_fetch_sub_explicit(&srv->inflight, 1, memory_order_release);
}

/* ---- reaper ---------------------------------------------------------- */

static void *reaper_main(void *arg)
{
  struct http *srv = arg;
  int64_t idle_ms = (int64_t)srv->o.idle_timeout_s * 1000;
  int64_t tick_ms = idle_ms / 4;
  if (tick_ms < 50)
    tick_ms = 50;
  if (tick_ms > 500)
    tick_ms = 500;
  pthread_mutex_lock(&srv->reaper_mu);
  while (!srv->reaper_quit) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)(tick_ms % 1000) * 1000000;
    ts.tv_sec += tick_ms / 1000 + ts.tv_nsec / 1000000000;
    ts.tv_nsec %= 1000000000;
    pthread_cond_timedwait(&srv->reaper_cv, &srv->reaper_mu, &ts);
    if (srv->reaper_quit)
      break;
    pthread_mutex_unlock(&srv->reaper_mu);
    int64_t now = now_ms();
    int n = 0;
    pthread_mutex_lock(&srv->conn_mu);
    for (struct conn *c = srv->conns; c; c = c->next) {
      int ph = atomic_load_explicit(&c->phase, memory_order_relaxed);
      int64_t since = atomic_load_explicit(&c->since_ms, memory_order_relaxed);
      if (ph != PH_BUSY && !c->reaped && c->fd >= 0
          && now - since > idle_ms) {
        /* shutdown, not close: the library still owns the fd and will
         * see end-of-file and close it through its normal path */
        shutdown(c->fd, SHUT_RDWR);
        c->reaped = true;
        n++;
      }
    }
    pthread_mutex_unlock(&srv->conn_mu);
    if (n) {
      metrics_counter_add(srv->c_reaped, (uint64_t)n);
      LOG_D("http", "closed %d idle or slow connection(s)", n);
    }
    pthread_mutex_lock(&srv->reaper_mu);
  }
  pthread_mutex_unlock(&srv->reaper_mu);
  return NULL;
}

/* ---- life cycle ------------------------------------------------------ */

void http_opts_defaults(struct http_opts *o)
{
  memset(o, 0, sizeof(*o));
  o->listen = "127.0.0.1:0";
  o->threads = 2;
  o->max_connections = 1024;
  o->idle_timeout_s = 30;
  o->max_body_bytes = (size_t)1 << 20;
  o->conn_memory_bytes = (size_t)32 << 10;
  o->keep_buf_bytes = (size_t)64 << 10;
}

static enum err_code add_route(struct http *srv, const char *method,
                               const char *pattern, http_handler_fn fn,
                               void *arg, struct err *e)
{
  if (!method || !*method || strlen(method) >= sizeof(srv->routes[0]->method))
    return err_set(e, ERR_INVAL, "http: route %s: bad method",
                   pattern ? pattern : "(null)");
  for (const char *p = method; *p; p++)
    if (!(*p >= 'A' && *p <= 'Z'))
      return err_set(e, ERR_INVAL,
                     "http: route %s: method '%s' must be upper-case letters",
                     pattern ? pattern : "(null)", method);
  if (!fn)
    return err_set(e, ERR_INVAL, "http: route %s: no handler",
                   pattern ? pattern : "(null)");
  struct route *rt = calloc(1, sizeof(*rt));
  if (!rt)
    return err_set(e, ERR_NOMEM, "http: out of memory");
  enum err_code rc = route_parse(rt, pattern, e);
  if (rc) {
    route_free(rt);
    return rc;
  }
  for (int i = 0; i < srv->nroutes; i++)
    if (strcmp(srv->routes[i]->method, method) == 0
        && strcmp(srv->routes[i]->pattern, pattern) == 0) {
      route_free(rt);
      return err_set(e, ERR_EXISTS, "http: route %s %s already registered",
                     method, pattern);
    }
  snprintf(rt->method, sizeof(rt->method), "%s", method);
  rt->fn = fn;
  rt->arg = arg;
  if (!(rt->pattern = strdup(pattern))) {
    route_free(rt);
    return err_set(e, ERR_NOMEM, "http: out of memory");
  }
  struct route **nr = realloc(srv->routes,
                              (size_t)(srv->nroutes + 1) * sizeof(*nr));
  if (!nr) {
    route_free(rt);
    return err_set(e, ERR_NOMEM, "http: out of memory");
  }
  srv->routes = nr;
  rc = rm_register(srv, &rt->rm, pattern, method, e);
  if (rc) {
    route_free(rt);
    return rc;
  }
  srv->routes[srv->nroutes++] = rt;
  return ERR_OK;
}

enum err_code http_route(struct http *srv, const char *method,
                         const char *pattern, http_handler_fn fn, void *arg,
                         struct err *e)
{
  if (srv->started)
    return err_set(e, ERR_STATE, "http: route %s %s: server already started",
                   method ? method : "", pattern ? pattern : "");
  return add_route(srv, method, pattern, fn, arg, e);
}

enum err_code http_create(struct http **out, const struct http_opts *o,
                          struct err *e)
{
  *out = NULL;
  if (!o->listen || strlen(o->listen) >= sizeof(((struct http *)0)->listen))
    return err_set(e, ERR_INVAL, "http: listen address missing or too long");
  if (o->threads < 1 || o->threads > 256)
    return err_set(e, ERR_INVAL, "http: threads = %d (1..256)", o->threads);
  if (o->max_connections < 1)
    return err_set(e, ERR_INVAL, "http: max_connections must be >= 1");
  if (o->thread_nice < THSCHED_NICE_MIN || o->thread_nice > THSCHED_NICE_MAX)
    return err_set(e, ERR_INVAL, "http: thread_nice = %d (%d..%d)",
                   o->thread_nice, THSCHED_NICE_MIN, THSCHED_NICE_MAX);
  if (o->thread_slice_us < 0 || o->thread_slice_us > THSCHED_SLICE_MAX_US)
    return err_set(e, ERR_INVAL, "http: thread_slice_us = %d (0..%d)",
                   o->thread_slice_us, THSCHED_SLICE_MAX_US);
  if (o->idle_timeout_s < 1)
    return err_set(e, ERR_INVAL, "http: idle_timeout_s must be >= 1");
  if (o->max_body_bytes < 1 || o->max_body_bytes > ((size_t)1 << 30))
    return err_set(e, ERR_INVAL, "http: max_body_bytes = %zu (1..1 GiB)",
                   o->max_body_bytes);
  if (o->conn_memory_bytes < 4096)
    return err_set(e, ERR_INVAL, "http: conn_memory_bytes = %zu (>= 4096)",
                   o->conn_memory_bytes);
  struct http *srv = calloc(1, sizeof(*srv));
  if (!srv)
    return err_set(e, ERR_NOMEM, "http: out of memory");
  srv->o = *o;
  snprintf(srv->listen, sizeof(srv->listen), "%s", o->listen);
  srv->o.listen = srv->listen;
  srv->listen_fd = MHD_INVALID_SOCKET;
  pthread_mutex_init(&srv->conn_mu, NULL);
  pthread_mutex_init(&srv->reaper_mu, NULL);
  pthread_cond_init(&srv->reaper_cv, NULL);
  enum err_code rc = ERR_OK;
  if (o->metrics) {
    srv->metrics = o->metrics;
  } else {
    rc = metrics_create(&srv->metrics, e);
    srv->own_metrics = true;
  }
  if (!rc)
    rc = rm_register(srv, &srv->unmatched, "unmatched", "any", e);
  if (!rc)
    rc = metrics_gauge_fn_new(srv->metrics, "mlopsd_http_connections",
                              "Open HTTP connections.", NULL, gauge_conns,
                              srv, &srv->g_conns, e);
  if (!rc)
    rc = metrics_gauge_fn_new(srv->metrics, "mlopsd_http_requests_in_flight",
                              "Requests received and not yet answered.",
                              NULL, gauge_inflight, srv, &srv->g_inflight, e);
  if (!rc)
    rc = metrics_counter_new(srv->metrics, "mlopsd_http_connections_reaped_total",
                             "Connections closed because a request was not "
                             "received within the idle timeout.",
                             NULL, 0, &srv->c_reaped, e);
  if (!rc)
    rc = add_route(srv, "GET", "/healthz", h_healthz, srv, e);
  if (!rc) /* BentoML's name for the same liveness probe */
    rc = add_route(srv, "GET", "/livez", h_healthz, srv, e);
  if (!rc)
    rc = add_route(srv, "GET", "/metrics", h_metrics, srv, e);
  if (rc) {
    http_destroy(srv);
    return rc;
  }
  *out = srv;
  return ERR_OK;
}

/* Parse "HOST:PORT" into a socket address. */
static enum err_code parse_listen(const char *s, struct sockaddr_storage *ss,
                                  socklen_t *sl, bool *v6, struct err *e)
{
  char host[200];
  const char *port;
  if (s[0] == '[') {
    const char *rb = strchr(s, ']');
    if (!rb || rb[1] != ':' || (size_t)(rb - s - 1) >= sizeof(host))
      return err_set(e, ERR_INVAL, "http: listen '%s': expected [IPv6]:PORT",
                     s);
    memcpy(host, s + 1, (size_t)(rb - s - 1));
    host[rb - s - 1] = '\0';
    port = rb + 2;
  } else {
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof(host))
      return err_set(e, ERR_INVAL, "http: listen '%s': expected HOST:PORT", s);
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    port = colon + 1;
  }
  char *end;
  long pn = strtol(port, &end, 10);
  if (!*port || *end || pn < 0 || pn > 65535)
    return err_set(e, ERR_INVAL, "http: listen '%s': bad port '%s'", s, port);
  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  const char *h = (host[0] && strcmp(host, "*") != 0) ? host : NULL;
  if (!h)
    hints.ai_family = AF_INET;
  int gr = getaddrinfo(h, port, &hints, &res);
  if (gr != 0 || !res)
    return err_set(e, ERR_INVAL, "http: listen '%s': %s", s,
                   gr ? gai_strerror(gr) : "no address");
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *sl = res->ai_addrlen;
  *v6 = res->ai_family == AF_INET6;
  freeaddrinfo(res);
  return ERR_OK;
}

enum err_code http_start(struct http *srv, struct err *e)
{
  if (srv->started)
    return err_set(e, ERR_STATE, "http: already started");
  struct sockaddr_storage ss;
  socklen_t sl = 0;
  bool v6 = false;
  enum err_code rc = parse_listen(srv->listen, &ss, &sl, &v6, e);
  if (rc)
    return rc;
  (void)sl;
  unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC
                   | MHD_USE_ERROR_LOG;
  if (v6)
    flags |= MHD_USE_IPv6;
  struct MHD_OptionItem opts[] = {
      /* the logger first, or the library prints to stderr until it is set */
      {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, srv},
      {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)srv->o.max_connections, NULL},
      {MHD_OPTION_CONNECTION_TIMEOUT, (intptr_t)srv->o.idle_timeout_s, NULL},
      {MHD_OPTION_CONNECTION_MEMORY_LIMIT, (intptr_t)srv->o.conn_memory_bytes,
       NULL},
      {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, srv},
      {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv},
      {MHD_OPTION_SOCK_ADDR, 0, &ss},
      {MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL},
      {srv->o.threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
       srv->o.threads, NULL},
      {MHD_OPTION_END, 0, NULL}};
  srv->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
  if (!srv->d)
    return err_set(e, ERR_IO, "http: cannot listen on %s (address in use, "
                   "no permission, or bad option)", srv->listen);
  const union MHD_DaemonInfo *di =
      MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
  srv->port = di ? di->port : 0;
  srv->started = true;
  srv->reaper_quit = false;
  if (pthread_create(&srv->reaper, NULL, reaper_main, srv) != 0) {
    MHD_stop_daemon(srv->d);
    srv->d = NULL;
    srv->started = false;
    return err_set(e, ERR_INTERNAL, "http: cannot start the reaper thread");
  }
  srv->reaper_running = true;
  LOG_I("http", "listening addr=%s port=%d threads=%d", srv->listen,
        srv->port, srv->o.threads);
  return ERR_OK;
}

int http_port(const struct http *srv) { return srv->port; }

struct metrics *http_metrics(struct http *srv) { return srv->metrics; }

enum err_code http_stop(struct http *srv, int timeout_ms, struct err *e)
{
  if (!srv->started || srv->stopped)
    return ERR_OK;
  atomic_store_explicit(&srv->stopping, true, memory_order_seq_cst);
  srv->listen_fd = MHD_quiesce_daemon(srv->d);
  if (srv->listen_fd != MHD_INVALID_SOCKET)
    shutdown(srv->listen_fd, SHUT_RDWR); /* refuse, not queue, newcomers */
  int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
  int left;
  while ((left = atomic_load_explicit(&srv->inflight, memory_order_seq_cst))
             > 0
         && now_ms() < deadline) {
    struct timespec ts = {0, 5 * 1000000};
    nanosleep(&ts, NULL);
  }
  MHD_stop_daemon(srv->d);
  srv->d = NULL;
  if (srv->listen_fd != MHD_INVALID_SOCKET) {
    close(srv->listen_fd);
    srv->listen_fd = MHD_INVALID_SOCKET;
  }
  if (srv->reaper_running) {
    pthread_mutex_lock(&srv->reaper_mu);
    srv->reaper_quit = true;
    pthread_cond_signal(&srv->reaper_cv);
    pthread_mutex_unlock(&srv->reaper_mu);
    pthread_join(srv->reaper, NULL);
    srv->reaper_running = false;
  }
  srv->stopped = true;
  LOG_I("http", "stopped port=%d cut=%d", srv->port, left > 0 ? left : 0);
  if (left > 0)
    return err_set(e, ERR_TIMEOUT,
                   "http: %d request(s) still in flight after %d ms", left,
                   timeout_ms);
  return ERR_OK;
}

void http_destroy(struct http *srv)
{
  if (!srv)
    return;
  struct err e;
  if (http_stop(srv, 0, &e))
    LOG_W("http", "%s", e.msg);
  if (srv->own_metrics) {
    metrics_destroy(srv->metrics);
  } else {
    metrics_gauge_fn_detach(srv->g_conns);
    metrics_gauge_fn_detach(srv->g_inflight);
  }
  for (int i = 0; i < srv->nroutes; i++)
    route_free(srv->routes[i]);
  free(srv->routes);
  pthread_mutex_destroy(&srv->conn_mu);
  pthread_mutex_destroy(&srv->reaper_mu);
  pthread_cond_destroy(&srv->reaper_cv);
  free(srv);
}

const char *http_lib_version(void) { return MHD_get_version(); }
