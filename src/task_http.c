/* task_http.c - the `http` task type: one HTTP request with libcurl, failed
 * unless the answer's status is one of those expected.
 *
 * A fresh easy handle per attempt keeps attempts independent (no shared
 * cookies or connections between tasks; a task runs rarely enough that
 * connection reuse buys nothing).  Only http and https are allowed, also
 * for redirects, which are not followed: a DAG should name the final URL.
 * The request is bounded by the smaller of the task's `timeout` field and
 * the attempt's deadline; a progress callback stops it when the job is
 * cancelled.  libcurl runs with CURLOPT_NOSIGNAL as the daemon is
 * multithreaded.
 *
 * Header names and values are checked for CR/LF (and other control
 * characters) after rendering: a value from conf must not be able to add
 * a header or a second request.  Header values are never logged (they
 * often carry tokens), nor is the password part of a URL.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlopsd/queue.h"
#include "mlopsd/task.h"

#define HTTP_TASK_LOG_BODY 4096                 /* body bytes logged */
#define HTTP_TASK_MAX_BODY ((size_t)64 << 20)   /* bytes read at most */
#define HTTP_TASK_DEF_TIMEOUT_S 60
#define HTTP_TASK_MAX_TIMEOUT_S 86400
#define HTTP_TASK_CONNECT_MS 30000
#define HTTP_TASK_MAX_EXPECT 32

static const struct task_field http_fields[] = {
    {.name = "url", .required = 1, .templated = 1, .mode = TMPL_URL},
    {.name = "method"},
    {.name = "headers",
     .templated = 1,
     .kind = TASK_F_MAP,
     .mode = TMPL_HEADER},
    {.name = "body", .templated = 1},
    {.name = "expect_status", .kind = TASK_F_INT_OR_LIST},
    {.name = "timeout", .kind = TASK_F_INT},
    {.name = NULL},
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
  curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE",
                                      "PATCH"};

static const char *method_find(const char *s)
{
  for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
    if (strcasecmp(s, methods[i]) == 0)
      return methods[i];
  return NULL;
}

/* RFC 9110 token characters. */
static int header_name_ok(const char *s)
{
  if (!*s)
    return 0;
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || strchr("!#$%&'*+-.^_`|~", c)))
      return 0;
  }
  return 1;
}

/* No CR, LF, NUL or other control characters except TAB. */
static int header_value_ok(const char *s)
{
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c < 0x20 && c != '\t') || c == 0x7f)
      return 0;
  }
  return 1;
}

static int scheme_ok(const char *url)
{
  return strncasecmp(url, "http://", 7) == 0 ||
         strncasecmp(url, "https://", 8) == 0;
}

/* The URL for logs and messages: user:password@ replaced by ***@. */
static void url_shown(const char *url, char *buf, size_t cap)
{
  const char *p = strstr(url, "://");
  const char *host = p ? p + 3 : url;
  size_t hl = strcspn(host, "/?#");
  const char *at = memchr(host, '@', hl);
  if (!at) {
    snprintf(buf, cap, "%s", url);
    return;
  }
  snprintf(buf, cap, "%.*s***%s", (int)(host - url), url, at);
}

/* expect_status: an integer or a list of integers (100..599); default
 * any 2xx.  n = 0 means 2xx. */
struct expect {
  long v[HTTP_TASK_MAX_EXPECT];
  int n;
};

static enum err_code status_of(const cJSON *it, const char *s, long *out,
                               struct err *e)
{
  long v = -1;
  if (it && cJSON_IsNumber(it) && it->valuedouble == (double)it->valueint)
    v = it->valueint;
  else if (it && cJSON_IsString(it))
    s = it->valuestring;
  if (v < 0 && s) {
    char *end;
    v = strtol(s, &end, 10);
    if (end == s || *end)
      v = -1;
  }
  if (v < 100 || v > 599)
    return err_set(e, ERR_INVAL, "field 'expect_status': expected HTTP "
                   "status codes (100..599)");
  *out = v;
  return ERR_OK;
}

static enum err_code expect_parse(const struct task_ctx *t, struct expect *x,
                                  struct err *e)
{
  x->n = 0;
  const char *s = t->field ? t->field(t, "expect_status") : NULL;
  if (s)
    return status_of(NULL, s, &x->v[x->n++], e);
  const cJSON *j = t->field_json ? t->field_json(t, "expect_status") : NULL;
  if (!j || cJSON_IsNull(j))
    return ERR_OK;
  if (!cJSON_IsArray(j))
    return status_of(j, NULL, &x->v[x->n++], e);
  for (const cJSON *it = j->child; it; it = it->next) {
    if (x->n == HTTP_TASK_MAX_EXPECT)
      return err_set(e, ERR_INVAL, "field 'expect_status': more than %d "
                     "codes", HTTP_TASK_MAX_EXPECT);
    enum err_code rc = status_of(it, NULL, &x->v[x->n++], e);
    if (rc != ERR_OK)
      return rc;
  }
  if (x->n == 0)
    return err_set(e, ERR_INVAL, "field 'expect_status': empty list");
  return ERR_OK;
}

static int expect_ok(const struct expect *x, long status)
{
  if (x->n == 0)
    return status >= 200 && status <= 299;
  for (int i = 0; i < x->n; i++)
    if (x->v[i] == status)
      return 1;
  return 0;
}

static void expect_str(const struct expect *x, char *buf, size_t cap)
{
  if (x->n == 0) {
    snprintf(buf, cap, "2xx");
    return;
  }
  size_t o = 0;
  buf[0] = '\0';
  for (int i = 0; i < x->n && o + 8 < cap; i++)
    o += (size_t)snprintf(buf + o, cap - o, "%s%ld", i ? ", " : "",
                          x->v[i]);
}

/* ------------------------------------------------------------------ */

struct resp {
  char head[HTTP_TASK_LOG_BODY];
  size_t nhead;
  size_t total;
  int over;
};

static size_t on_write(char *p, size_t size, size_t n, void *user)
{
  struct resp *r = user;
  size_t len = size * n;
  if (r->nhead < sizeof(r->head)) {
    size_t k = sizeof(r->head) - r->nhead;
    if (k > len)
      k = len;
    memcpy(r->head + r->nhead, p, k);
    r->nhead += k;
  }
  r->total += len;
  if (r->total > HTTP_TASK_MAX_BODY) {
    r->over = 1;
    return 0; /* CURLE_WRITE_ERROR */
  }
  return len;
}

static int on_progress(void *user, curl_off_t dt, curl_off_t dn,
                       curl_off_t ut, curl_off_t un)
{
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  const struct task_ctx *t = user;
  return t->job && queue_job_should_stop(t->job);
}

/* The headers field as check and run see it: *out NULL when absent, else
 * a map whose keys are all header names. */
static enum err_code headers_map(const struct task_ctx *t, const cJSON **out,
                                 struct err *e)
{
  const cJSON *h = t->field_json ? t->field_json(t, "headers") : NULL;
  *out = NULL;
  if (!h || cJSON_IsNull(h))
    return ERR_OK;
  if (!cJSON_IsObject(h))
    return err_set(e, ERR_INVAL, "field 'headers': expected a map of "
                   "Name: value");
  for (const cJSON *it = h->child; it; it = it->next)
    if (!header_name_ok(it->string))
      return err_set(e, ERR_INVAL, "field 'headers': bad header name "
                     "'%.64s'", it->string);
  *out = h;
  return ERR_OK;
}

/* Headers from the map, rendered and checked, into *list. */
static enum err_code build_headers(const struct task_ctx *t,
                                   struct curl_slist **list, int *has_ctype,
                                   struct err *e)
{
  const cJSON *h;
  *has_ctype = 0;
  enum err_code hrc = headers_map(t, &h, e);
  if (hrc != ERR_OK || !h)
    return hrc;
  for (const cJSON *it = h->child; it; it = it->next) {
    char what[160], num[64];
    snprintf(what, sizeof(what), "headers.%s", it->string);
    const char *src = NULL;
    if (cJSON_IsString(it)) {
      src = it->valuestring;
    } else if (cJSON_IsNumber(it)) {
      snprintf(num, sizeof(num), "%.17g", it->valuedouble);
      src = num;
    } else if (cJSON_IsBool(it)) {
      src = cJSON_IsTrue(it) ? "true" : "false";
    } else {
      return err_set(e, ERR_INVAL, "field '%s': expected a single value",
                     what);
    }
    char *v;
    enum err_code rc = task_render(t, what, src, TMPL_HEADER, &v, NULL, e);
    if (rc != ERR_OK)
      return rc;
    if (!header_value_ok(v)) {
      free(v);
      return err_set(e, ERR_INVAL, "field '%s': control characters (CR/LF) "
                     "are not allowed in a header value", what);
    }
    size_t ln = strlen(it->string) + strlen(v) + 3;
    char *line = malloc(ln);
    if (!line) {
      free(v);
      return err_set(e, ERR_NOMEM, "http: out of memory");
    }
    /* "Name;" is curl's way to send a header with an empty value. */
    if (*v)
      snprintf(line, ln, "%s: %s", it->string, v);
    else
      snprintf(line, ln, "%s;", it->string);
    free(v);
    if (strcasecmp(it->string, "Content-Type") == 0)
      *has_ctype = 1;
    struct curl_slist *nl = curl_slist_append(*list, line);
    free(line);
    if (!nl)
      return err_set(e, ERR_NOMEM, "http: out of memory");
    *list = nl;
  }
  return ERR_OK;
}

/* The fields check and run read alike: method (default GET), expect,
 * timeout and the url as written (required; tmp holds the values). */
static enum err_code read_fields(const struct task_ctx *t, char *tmp,
                                 size_t cap, const char **method,
                                 struct expect *x, long *tsec,
                                 const char **url, struct err *e)
{
  const char *raw;
  enum err_code rc = task_field_text(t, "method", tmp, cap, &raw, e);
  if (rc != ERR_OK)
    return rc;
  *method = raw ? method_find(raw) : "GET";
  if (!*method)
    return err_set(e, ERR_INVAL, "field 'method': '%.20s' is not one of "
                   "GET, POST, PUT, DELETE, PATCH", raw);
  if ((rc = expect_parse(t, x, e)) != ERR_OK ||
      (rc = task_field_int(t, "timeout", HTTP_TASK_DEF_TIMEOUT_S, 1,
                           HTTP_TASK_MAX_TIMEOUT_S, tsec, e)) != ERR_OK ||
      (rc = task_field_text(t, "url", tmp, cap, url, e)) != ERR_OK)
    return rc;
  if (!*url || !**url)
    return err_set(e, ERR_INVAL, "field 'url' is required");
  return ERR_OK;
}

static enum err_code http_run(struct task_ctx *t, struct err *e)
{
  const int tmo = task_timeout_s(t);
  char tmp[64], shown[1024], exp[256];
  const char *raw;
  char *url = NULL, *body = NULL;
  struct curl_slist *hdrs = NULL;
  CURL *c = NULL;
  struct expect x;
  long tsec;
  int has_ctype;

  const char *method;
  enum err_code rc = read_fields(t, tmp, sizeof(tmp), &method, &x, &tsec,
                                 &raw, e);
  if (rc != ERR_OK)
    return rc;
  if ((rc = task_render(t, "url", raw, TMPL_URL, &url, NULL, e)) != ERR_OK)
    goto out;
  url_shown(url, shown, sizeof(shown));
  if (!scheme_ok(url) || !header_value_ok(url)) {
    rc = err_set(e, ERR_INVAL, "field 'url': '%.200s' is not an http:// "
                 "or https:// URL", shown);
    goto out;
  }
  if ((rc = task_field_text(t, "body", tmp, sizeof(tmp), &raw, e)) != ERR_OK)
    goto out;
  if (raw && (rc = task_render(t, "body", raw, TMPL_PLAIN, &body, NULL, e))
      != ERR_OK)
    goto out;
  if ((rc = build_headers(t, &hdrs, &has_ctype, e)) != ERR_OK)
    goto out;
  if (body && !has_ctype) {
    const char *b = body + strspn(body, " \t\r\n");
    const char *ct = (*b == '{' || *b == '[')
                         ? "Content-Type: application/json"
                         : "Content-Type: text/plain; charset=utf-8";
    struct curl_slist *nl = curl_slist_append(hdrs, ct);
    if (!nl) {
      rc = err_set(e, ERR_NOMEM, "http: out of memory");
      goto out;
    }
    hdrs = nl;
  }
  /* No "Expect: 100-continue" round trip for bodies. */
  struct curl_slist *nl = curl_slist_append(hdrs, "Expect:");
  if (!nl) {
    rc = err_set(e, ERR_NOMEM, "http: out of memory");
    goto out;
  }
  hdrs = nl;

  /* Time left: the field's timeout, cut to the attempt's deadline. */
  int64_t now = queue_now_ms();
  int64_t limit = tsec * 1000;
  int64_t dl = task_deadline_ms(t);
  if (dl > 0 && dl - now < limit)
    limit = dl - now;
  if (limit <= 0 || task_should_stop(t)) {
    rc = task_stopped(t, "http request not sent", tmo, e);
    goto out;
  }

  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK) {
    rc = err_set(e, ERR_INTERNAL, "http: curl_global_init failed: %s",
                 curl_easy_strerror(curl_init_rc));
    goto out;
  }
  c = curl_easy_init();
  if (!c) {
    rc = err_set(e, ERR_NOMEM, "http: curl_easy_init failed");
    goto out;
  }
  char ebuf[CURL_ERROR_SIZE] = "";
  struct resp r = {.nhead = 0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)limit);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   (long)(limit < HTTP_TASK_CONNECT_MS ? limit
                                                       : HTTP_TASK_CONNECT_MS));
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "mlopsd/" MLOPSD_VERSION);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
  if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  if (body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)strlen(body));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (strcmp(method, "GET") == 0)
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "GET");
  } else if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }

  task_logf(t, "%s %s%s", method, shown, body ? " (with body)" : "");
  int64_t t0 = queue_now_ms();
  CURLcode cr = curl_easy_perform(c);
  int64_t ms = queue_now_ms() - t0;
  if (cr != CURLE_OK) {
    if (cr == CURLE_ABORTED_BY_CALLBACK || task_should_stop(t)) {
      rc = task_stopped(t, "http request stopped", tmo, e);
    } else if (cr == CURLE_OPERATION_TIMEDOUT) {
      rc = err_set(e, ERR_TIMEOUT, "%s %s: no complete answer within "
                   "%lld ms (timeout)", method, shown, (long long)limit);
    } else if (r.over) {
      rc = err_set(e, ERR_IO, "%s %s: response body over %zu bytes",
                   method, shown, HTTP_TASK_MAX_BODY);
    } else {
      rc = err_set(e, ERR_IO, "%s %s: %s", method, shown,
                   ebuf[0] ? ebuf : curl_easy_strerror(cr));
    }
    goto out;
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  task_logf(t, "response: HTTP %ld, %zu bytes in %lld ms", status, r.total,
            (long long)ms);
  if (r.nhead > 0) {
    task_log_text(t, "log", r.head, r.nhead);
    if (r.total > r.nhead)
      task_logf(t, "(response body cut: %zu more bytes)", r.total - r.nhead);
  }
  if (!expect_ok(&x, status)) {
    expect_str(&x, exp, sizeof(exp));
    rc = err_set(e, ERR_STATE, "%s %s: HTTP status %ld, expected %s",
                 method, shown, status, exp);
    goto out;
  }
  rc = ERR_OK;
out:
  if (c)
    curl_easy_cleanup(c);
  curl_slist_free_all(hdrs);
  free(url);
  free(body);
  return rc;
}

static enum err_code http_check(const struct task_ctx *t, struct err *e)
{
  char tmp[64];
  const char *s;
  struct expect x;
  long tsec;
  const char *method;
  enum err_code rc = read_fields(t, tmp, sizeof(tmp), &method, &x, &tsec,
                                 &s, e);
  if (rc != ERR_OK)
    return rc;
  /* A URL that starts with a template (a params base URL) is checked
   * when rendered. */
  if (strncmp(s, "{{", 2) != 0 && !scheme_ok(s))
    return err_set(e, ERR_INVAL, "field 'url': must start with http:// or "
                   "https://");
  const cJSON *h;
  if ((rc = headers_map(t, &h, e)) != ERR_OK)
    return rc;
  if (h) {
    for (const cJSON *it = h->child; it; it = it->next) {
      if (cJSON_IsString(it) && !header_value_ok(it->valuestring))
        return err_set(e, ERR_INVAL, "field 'headers.%s': control "
                       "characters (CR/LF) are not allowed in a header "
                       "value", it->string);
      if (cJSON_IsObject(it) || cJSON_IsArray(it))
        return err_set(e, ERR_INVAL, "field 'headers.%s': expected a "
                       "single value", it->string);
    }
  }
  return ERR_OK;
}

const struct task_type task_type_http = {
    .name = "http",
    .fields = http_fields,
    .check = http_check,
    .run = http_run,
};
