/* s3.c - path-style S3 requests signed by libcurl's AWS SigV4 (s3.h).
 *
 * libcurl 7.88 signs requests (CURLOPT_AWS_SIGV4) but leaves two things to
 * the caller, both measured against Swift's s3api (NOTES.md):
 *   - it sends no x-amz-content-sha256 header, which s3api (and AWS for
 *     unsigned-payload checks) requires: we hash the body (or the empty
 *     string) and set the header; curl then includes it in the signature.
 *   - it signs the query string as given, without sorting it (curl issue
 *     9717): we build every query already sorted by name and
 *     percent-encoded the way SigV4 canonicalises it, so the string curl
 *     signs is the canonical one.
 * Keys go through CURLOPT_USERNAME/PASSWORD, never "user:pass" strings,
 * because tempauth access keys contain ':'.
 *
 * Every call makes its own easy handle: no state is shared between
 * threads except the immutable options, at the cost of a new connection
 * per request (the registry moves a handful of files per version).
 */
#include "mlopsd/s3.h"
#include "mlopsd/buf.h"
#include "mlopsd/fsx.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ERR_BODY_MAX (64u << 10) /* error/list bodies kept at most */
#define LIST_BODY_MAX (16u << 20)
#define URL_MAX (S3_KEY_MAX * 3 + 2048)
#define EMPTY_SHA256                                                        \
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
  char *endpoint; /* without trailing '/' */
  char *region;
  char *bucket;
  char *access;
  char *secret;
  char sigv4[160]; /* "aws:amz:REGION:s3" */
  int list_page;
  long timeout_s;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;
static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- credentials ------------------------------------------------------ */

static void wipe_free(char *p)
{
  if (!p)
    return;
  volatile char *v = p;
  while (*v)
    *v++ = 0;
  free(p);
}

static char *trim(char *s)
{
  while (*s == ' ' || *s == '\t')
    s++;
  size_t n = strlen(s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

/* AWS's shared credentials format: key = value lines in [default] or
 * before any section header; other sections are skipped. */
static enum err_code creds_from_file(struct s3 *s, const char *path,
                                     struct err *e)
{
  char *text = NULL;
  enum err_code rc = fsx_read(path, 64u << 10, FSX_NO_NUL | FSX_SECRET,
                              &text, NULL, e);
  if (rc) {
    err_prefix(e, "s3: credentials file");
    return ERR_CONFIG;
  }
  int in_default = 1;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    char *l = trim(line);
    if (*l == '#' || *l == ';' || !*l)
      continue;
    if (*l == '[') {
      in_default = strncmp(l, "[default]", 9) == 0;
      continue;
    }
    char *eq = strchr(l, '=');
    if (!in_default || !eq)
      continue;
    *eq = 0;
    char *k = trim(l), *v = trim(eq + 1);
    char **dst = NULL;
    if (!strcmp(k, "aws_access_key_id"))
      dst = &s->access;
    else if (!strcmp(k, "aws_secret_access_key"))
      dst = &s->secret;
    if (dst && !*dst && *v && !(*dst = strdup(v))) {
      wipe_free(text);
      return err_set(e, ERR_NOMEM, "s3: out of memory");
    }
  }
  wipe_free(text);
  if (!s->access || !s->secret)
    return err_set(e, ERR_CONFIG,
                   "s3: credentials file %s has no aws_access_key_id and "
                   "aws_secret_access_key in [default]",
                   path);
  return ERR_OK;
}

static enum err_code creds_resolve(struct s3 *s, const struct s3_opts *o,
                                   struct err *e)
{
  const char *a = o->access_key, *k = o->secret_key;
  if (!(a && *a && k && *k)) {
    a = getenv("AWS_ACCESS_KEY_ID");
    k = getenv("AWS_SECRET_ACCESS_KEY");
  }
  if (a && *a && k && *k) {
    if (!(s->access = strdup(a)) || !(s->secret = strdup(k)))
      return err_set(e, ERR_NOMEM, "s3: out of memory");
    return ERR_OK;
  }
  if (o->credentials_file && *o->credentials_file)
    return creds_from_file(s, o->credentials_file, e);
  return err_set(e, ERR_CONFIG,
                 "s3: no credentials: set AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY or a credentials file");
}

enum err_code s3_create(const struct s3_opts *o, struct s3 **out,
                        struct err *e)
{
  *out = NULL;
  if (!o->endpoint || !*o->endpoint)
    return err_set(e, ERR_CONFIG, "s3: no endpoint given "
                                  "(e.g. https://s3.us-east-1.amazonaws.com)");
  if (strncmp(o->endpoint, "http://", 7) && strncmp(o->endpoint, "https://", 8))
    return err_set(e, ERR_CONFIG,
                   "s3: endpoint '%s' must start with http:// or https://",
                   o->endpoint);
  if (!o->bucket || !*o->bucket || strchr(o->bucket, '/'))
    return err_set(e, ERR_CONFIG, "s3: bad bucket name '%s'",
                   o->bucket ? o->bucket : "");
  pthread_once(&curl_once, curl_init);
  if (curl_init_rc != CURLE_OK)
    return err_set(e, ERR_INTERNAL, "s3: curl_global_init failed: %s",
                   curl_easy_strerror(curl_init_rc));
  struct s3 *s = calloc(1, sizeof(*s));
  if (!s)
    return err_set(e, ERR_NOMEM, "s3: out of memory");
  const char *region = o->region && *o->region ? o->region : "us-east-1";
  s->endpoint = strdup(o->endpoint);
  s->region = strdup(region);
  s->bucket = strdup(o->bucket);
  s->timeout_s = o->timeout_s > 0 ? o->timeout_s : 300;
  s->list_page = o->list_page > 0 ? o->list_page : 0;
  if (!s->endpoint || !s->region || !s->bucket) {
    s3_destroy(s);
    return err_set(e, ERR_NOMEM, "s3: out of memory");
  }
  size_t n = strlen(s->endpoint);
  while (n && s->endpoint[n - 1] == '/')
    s->endpoint[--n] = 0;
  int w = snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region);
  if (w < 0 || (size_t)w >= sizeof(s->sigv4)) {
    s3_destroy(s);
    return err_set(e, ERR_CONFIG, "s3: region name too long");
  }
  enum err_code rc = creds_resolve(s, o, e);
  if (rc) {
    s3_destroy(s);
    return rc;
  }
  *out = s;
  return ERR_OK;
}

void s3_destroy(struct s3 *s)
{
  if (!s)
    return;
  free(s->endpoint);
  free(s->region);
  free(s->bucket);
  wipe_free(s->access);
  wipe_free(s->secret);
  free(s);
}

const char *s3_bucket(const struct s3 *s) { return s->bucket; }

/* ---- encoding --------------------------------------------------------- */

/* SigV4's URI encoding: unreserved characters kept, everything else as
 * %XX (upper-case hex); '/' kept only when keep_slash (object keys). */
static enum err_code uri_encode(struct buf *b, const char *s, int keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned c = *p;
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~' || (keep_slash && c == '/')) {
      char ch = (char)c;
      buf_add(b, &ch, 1);
    } else {
      char t[3] = {'%', hex[c >> 4], hex[c & 15]};
      buf_add(b, t, 3);
    }
  }
  return buf_error(b);
}

static enum err_code check_key(const char *op, const char *key,
                               struct err *e)
{
  size_t n = strlen(key);
  if (n == 0 || n > S3_KEY_MAX || key[0] == '/')
    return err_set(e, ERR_INVAL, "s3: %s: bad object key '%.*s'", op,
                   (int)(n > 200 ? 200 : n), key);
  return ERR_OK;
}

/* ---- one request ------------------------------------------------------ */

struct req {
  const char *method; /* GET PUT HEAD DELETE */
  const char *key;    /* NULL: the bucket itself (list) */
  const char *query;  /* canonical (sorted, encoded) or NULL */
  /* request body */
  FILE *in;
  const char *inbuf;
  size_t inlen, inpos;
  const char *payload_sha;
  /* response */
  FILE *out;               /* 2xx body goes here when set */
  struct sha256_ctx *osha; /* ... and is hashed here when set */
  struct buf body;         /* otherwise here (capped by the caller) */
  struct buf errbody;      /* a non-2xx body (an S3 error document) */
  int out_failed;
  long status;
  curl_off_t length;
  CURL *h;
};

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
  struct req *r = ud;
  size_t want = size * nmemb;
  if (r->in)
    return fread(dst, 1, want, r->in);
  size_t left = r->inlen - r->inpos;
  if (want > left)
    want = left;
  memcpy(dst, r->inbuf + r->inpos, want);
  r->inpos += want;
  return want;
}

static size_t on_write(char *src, size_t size, size_t nmemb, void *ud)
{
  struct req *r = ud;
  size_t n = size * nmemb;
  /* headers are parsed before the first body byte arrives, so the
   * status is known here: only a 2xx body goes to the caller's file */
  if (r->status == 0)
    curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
  if (r->status < 200 || r->status > 299) {
    buf_add(&r->errbody, src, n); /* a long error page is cut, not fatal */
    return n;
  }
  if (r->out) {
    if (fwrite(src, 1, n, r->out) != n) {
      r->out_failed = errno ? errno : EIO;
      return 0;
    }
    if (r->osha)
      sha256_update(r->osha, src, n);
    return n;
  }
  if (buf_add(&r->body, src, n))
    return 0; /* too large: curl stops with CURLE_WRITE_ERROR */
  return n;
}

/* Text between <tag> and </tag> starting the search at *from; the result
 * (entity-decoded, NUL-terminated) goes into dst.  Returns a pointer past
 * the closing tag, or NULL when the tag is absent. */
static const char *xml_text(const char *from, const char *end,
                            const char *tag, char *dst, size_t cap)
{
  char open[64], close[64];
  snprintf(open, sizeof(open), "<%s>", tag);
  snprintf(close, sizeof(close), "</%s>", tag);
  const char *a = strstr(from, open);
  if (!a || (end && a >= end))
    return NULL;
  a += strlen(open);
  const char *b = strstr(a, close);
  if (!b || (end && b > end))
    return NULL;
  size_t o = 0;
  for (const char *p = a; p < b && o + 1 < cap; p++) {
    if (*p == '&') {
      static const struct { const char *ent; char c; } ents[] = {
          {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
          {"&quot;", '"'}, {"&apos;", '\''}};
      size_t k;
      for (k = 0; k < sizeof(ents) / sizeof(ents[0]); k++) {
        size_t l = strlen(ents[k].ent);
        if ((size_t)(b - p) >= l && !strncmp(p, ents[k].ent, l)) {
          dst[o++] = ents[k].c;
          p += l - 1;
          break;
        }
      }
      if (k < sizeof(ents) / sizeof(ents[0]))
        continue;
      if (p[1] == '#') {
        char *q;
        long v = p[2] == 'x' ? strtol(p + 3, &q, 16) : strtol(p + 2, &q, 10);
        if (*q == ';' && v > 0 && v < 128) {
          dst[o++] = (char)v;
          p = q;
          continue;
        }
      }
    }
    dst[o++] = *p;
  }
  dst[o] = 0;
  return b + strlen(close);
}

/* The error for a non-2xx answer: status, S3 code and message. */
static enum err_code http_error(struct s3 *s, struct req *r, struct err *e)
{
  char code[128] = "", msg[256] = "";
  const char *body = buf_str(&r->errbody);
  xml_text(body, NULL, "Code", code, sizeof(code));
  xml_text(body, NULL, "Message", msg, sizeof(msg));
  enum err_code ec = ERR_IO;
  if (r->status == 404)
    ec = ERR_NOTFOUND;
  else if (r->status == 401 || r->status == 403)
    ec = ERR_AUTH;
  return err_set(e, ec, "s3: %s %s/%s: HTTP %ld%s%s%s%s", r->method,
                 s->bucket, r->key ? r->key : "", r->status, *code ? " " : "",
                 code, *msg ? ": " : "", msg);
}

static enum err_code perform(struct s3 *s, struct req *r, struct err *e)
{
  struct buf url = BUF_INIT(URL_MAX);
  buf_adds(&url, s->endpoint);
  buf_adds(&url, "/");
  uri_encode(&url, s->bucket, 0);
  if (r->key) {
    buf_adds(&url, "/");
    uri_encode(&url, r->key, 1);
  }
  if (r->query && *r->query) {
    buf_adds(&url, "?");
    buf_adds(&url, r->query);
  }
  if (buf_error(&url)) {
    buf_free(&url);
    return err_set(e, ERR_INVAL, "s3: %s: URL too long", r->method);
  }
  CURL *h = curl_easy_init();
  if (!h) {
    buf_free(&url);
    return err_set(e, ERR_NOMEM, "s3: curl_easy_init failed");
  }
  char shahdr[128];
  snprintf(shahdr, sizeof(shahdr), "x-amz-content-sha256: %s",
           r->payload_sha ? r->payload_sha : EMPTY_SHA256);
  struct curl_slist *hdrs = NULL, *t;
  if (!(t = curl_slist_append(hdrs, shahdr)))
    goto nomem;
  hdrs = t;
  /* no "Expect:" header to suppress 100-continue: curl 7.88 would list
   * the removed header in SignedHeaders and every signature would fail */
  if (r->in || r->inbuf) {
    if (!(t = curl_slist_append(hdrs,
                                "Content-Type: application/octet-stream")))
      goto nomem;
    hdrs = t;
  }
  curl_easy_setopt(h, CURLOPT_URL, buf_str(&url));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
  curl_easy_setopt(h, CURLOPT_USERNAME, s->access);
  curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, s->timeout_s);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "mlopsd-s3");
  if (!strcmp(r->method, "PUT")) {
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, r);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->inlen);
  } else if (!strcmp(r->method, "HEAD")) {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (!strcmp(r->method, "DELETE")) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  }
  r->status = 0;
  r->h = h;
  CURLcode cc = curl_easy_perform(h);
  long st = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  r->status = st;
  curl_off_t len = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  r->length = len;
  curl_easy_cleanup(h);
  curl_slist_free_all(hdrs);
  enum err_code rc = ERR_OK;
  if (cc != CURLE_OK && !(cc == CURLE_WRITE_ERROR && !r->out_failed &&
                          (st < 200 || st > 299))) {
    if (r->out_failed)
      rc = err_set(e, ERR_IO, "s3: %s %s/%s: writing the download: %s",
                   r->method, s->bucket, r->key ? r->key : "",
                   strerror(r->out_failed));
    else
      rc = err_set(e, cc == CURLE_OPERATION_TIMEDOUT ? ERR_TIMEOUT : ERR_IO,
                   "s3: %s %s (bucket %s, key %s): %s", r->method,
                   s->endpoint, s->bucket, r->key ? r->key : "",
                   curl_easy_strerror(cc));
  } else if (st < 200 || st > 299) {
    rc = http_error(s, r, e);
  }
  buf_free(&r->errbody);
  buf_free(&url);
  return rc;
nomem:
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  buf_free(&url);
  return err_set(e, ERR_NOMEM, "s3: out of memory");
}

static void req_init(struct req *r, const char *method, const char *key,
                     size_t body_max)
{
  memset(r, 0, sizeof(*r));
  r->method = method;
  r->key = key;
  buf_init(&r->body, body_max);
  buf_init(&r->errbody, ERR_BODY_MAX);
}

/* ---- operations ------------------------------------------------------- */

enum err_code s3_put_file(struct s3 *s, const char *key, const char *path,
                          char sha256_out[SHA256_HEX_LEN], struct err *e)
{
  enum err_code rc;
  if ((rc = check_key("PUT", key, e)))
    return rc;
  /* one open file for the hash and the upload, so the bytes hashed (and
   * signed) are the bytes sent even if path is replaced meanwhile */
  FILE *f = fopen(path, "rb");
  if (!f)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "s3: PUT %s/%s: cannot open %s: %s", s->bucket, key, path,
                   strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
    fclose(f);
    return err_set(e, ERR_IO, "s3: PUT %s/%s: %s is not a regular file",
                   s->bucket, key, path);
  }
  struct sha256_ctx c;
  sha256_init(&c);
  char chunk[64 << 10];
  size_t n, total = 0;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    sha256_update(&c, chunk, n);
    total += n;
  }
  if (ferror(f) || total != (size_t)st.st_size) {
    fclose(f);
    return err_set(e, ERR_IO, "s3: PUT %s/%s: reading %s failed (%s)",
                   s->bucket, key, path,
                   total != (size_t)st.st_size ? "size changed while read"
                                               : strerror(errno));
  }
  uint8_t d[SHA256_DIGEST_LEN];
  char hex[SHA256_HEX_LEN];
  sha256_final(&c, d);
  sha256_hex(d, hex);
  rewind(f);
  struct req r;
  req_init(&r, "PUT", key, ERR_BODY_MAX);
  r.in = f;
  r.inlen = total;
  r.payload_sha = hex;
  rc = perform(s, &r, e);
  fclose(f);
  buf_free(&r.body);
  if (!rc && sha256_out)
    memcpy(sha256_out, hex, SHA256_HEX_LEN);
  return rc;
}

enum err_code s3_put_buf(struct s3 *s, const char *key, const void *data,
                         size_t n, struct err *e)
{
  enum err_code rc;
  if ((rc = check_key("PUT", key, e)))
    return rc;
  uint8_t d[SHA256_DIGEST_LEN];
  char hex[SHA256_HEX_LEN];
  sha256_buf(data, n, d);
  sha256_hex(d, hex);
  struct req r;
  req_init(&r, "PUT", key, ERR_BODY_MAX);
  r.inbuf = data ? data : "";
  r.inlen = n;
  r.payload_sha = hex;
  rc = perform(s, &r, e);
  buf_free(&r.body);
  return rc;
}

enum err_code s3_get_file(struct s3 *s, const char *key, const char *path,
                          char sha256_out[SHA256_HEX_LEN], struct err *e)
{
  enum err_code rc;
  if ((rc = check_key("GET", key, e)))
    return rc;
  char tmp[4096];
  int w = snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
  if (w < 0 || (size_t)w >= sizeof(tmp))
    return err_set(e, ERR_INVAL, "s3: GET %s/%s: path too long", s->bucket,
                   key);
  int fd = mkstemp(tmp);
  if (fd < 0)
    return err_set(e, ERR_IO, "s3: GET %s/%s: cannot create %s: %s",
                   s->bucket, key, tmp, strerror(errno));
  FILE *f = fdopen(fd, "wb");
  if (!f) {
    close(fd);
    unlink(tmp);
    return err_set(e, ERR_NOMEM, "s3: out of memory");
  }
  struct sha256_ctx c;
  sha256_init(&c);
  struct req r;
  req_init(&r, "GET", key, ERR_BODY_MAX);
  r.out = f;
  r.osha = &c;
  rc = perform(s, &r, e);
  buf_free(&r.body);
  if (!rc && (fflush(f) || fsync(fileno(f))))
    rc = err_set(e, ERR_IO, "s3: GET %s/%s: writing %s: %s", s->bucket, key,
                 tmp, strerror(errno));
  if (fclose(f) && !rc)
    rc = err_set(e, ERR_IO, "s3: GET %s/%s: writing %s: %s", s->bucket, key,
                 tmp, strerror(errno));
  if (!rc && (chmod(tmp, 0644) || rename(tmp, path)))
    rc = err_set(e, ERR_IO, "s3: GET %s/%s: cannot rename to %s: %s",
                 s->bucket, key, path, strerror(errno));
  if (rc) {
    unlink(tmp);
    return rc;
  }
  if (sha256_out) {
    uint8_t d[SHA256_DIGEST_LEN];
    sha256_final(&c, d);
    sha256_hex(d, sha256_out);
  }
  return ERR_OK;
}

enum err_code s3_get_buf(struct s3 *s, const char *key, size_t max,
                         char **out, size_t *n, struct err *e)
{
  *out = NULL;
  if (n)
    *n = 0;
  enum err_code rc;
  if ((rc = check_key("GET", key, e)))
    return rc;
  struct req r;
  req_init(&r, "GET", key, max);
  rc = perform(s, &r, e);
  if (rc == ERR_IO && buf_error(&r.body) == ERR_FULL)
    rc = err_set(e, ERR_INVAL, "s3: GET %s/%s: object larger than %zu bytes",
                 s->bucket, key, max);
  if (rc) {
    buf_free(&r.body);
    return rc;
  }
  *out = buf_take(&r.body, n);
  return *out ? ERR_OK : err_set(e, ERR_NOMEM, "s3: out of memory");
}

/* A request without a body either way (HEAD, DELETE); *length (may be
 * NULL) the Content-Length answered. */
static enum err_code no_body(struct s3 *s, const char *method,
                             const char *key, int64_t *length, struct err *e)
{
  enum err_code rc;
  if ((rc = check_key(method, key, e)))
    return rc;
  struct req r;
  req_init(&r, method, key, ERR_BODY_MAX);
  rc = perform(s, &r, e);
  buf_free(&r.body);
  if (!rc && length)
    *length = r.length;
  return rc;
}

enum err_code s3_head(struct s3 *s, const char *key, int64_t *size,
                      struct err *e)
{
  return no_body(s, "HEAD", key, size, e);
}

enum err_code s3_delete(struct s3 *s, const char *key, struct err *e)
{
  enum err_code rc = no_body(s, "DELETE", key, NULL, e);
  if (rc == ERR_NOTFOUND) /* some stores answer 404 for a missing key */
    rc = ERR_OK;
  return rc;
}

enum err_code s3_list(struct s3 *s, const char *prefix, s3_list_fn fn,
                      void *ud, struct err *e)
{
  char *token = NULL;
  enum err_code rc = ERR_OK;
  char *key = malloc(S3_KEY_MAX + 1);
  if (!key)
    return err_set(e, ERR_NOMEM, "s3: out of memory");
  for (;;) {
    /* parameters in SigV4 canonical order: sorted by name */
    struct buf q = BUF_INIT(URL_MAX);
    if (token) {
      buf_adds(&q, "continuation-token=");
      uri_encode(&q, token, 0);
      buf_adds(&q, "&");
    }
    buf_adds(&q, "list-type=2");
    if (s->list_page)
      buf_addf(&q, "&max-keys=%d", s->list_page);
    if (prefix && *prefix) {
      buf_adds(&q, "&prefix=");
      uri_encode(&q, prefix, 0);
    }
    if (buf_error(&q)) {
      buf_free(&q);
      rc = err_set(e, ERR_INVAL, "s3: LIST %s: prefix too long", s->bucket);
      break;
    }
    struct req r;
    req_init(&r, "GET", NULL, LIST_BODY_MAX);
    r.query = buf_str(&q);
    rc = perform(s, &r, e);
    buf_free(&q);
    if (rc) {
      err_prefix(e, "listing prefix '%s'", prefix ? prefix : "");
      buf_free(&r.body);
      break;
    }
    const char *body = buf_str(&r.body);
    const char *p = body;
    while (!rc && (p = strstr(p, "<Contents>")) != NULL) {
      const char *end = strstr(p, "</Contents>");
      if (!end)
        break;
      char size[32] = "";
      if (!xml_text(p, end, "Key", key, S3_KEY_MAX + 1) ||
          !xml_text(p, end, "Size", size, sizeof(size))) {
        rc = err_set(e, ERR_PARSE,
                     "s3: LIST %s: a <Contents> without Key or Size",
                     s->bucket);
        break;
      }
      if (fn(key, strtoll(size, NULL, 10), ud))
        rc = ERR_CANCELED;
      p = end;
    }
    char trunc[16] = "";
    xml_text(body, NULL, "IsTruncated", trunc, sizeof(trunc));
    free(token);
    token = NULL;
    if (!rc && !strcmp(trunc, "true")) {
      char *tok = malloc(4096);
      if (!tok || !xml_text(body, NULL, "NextContinuationToken", tok, 4096) ||
          !*tok) {
        free(tok);
        rc = err_set(e, ERR_PARSE,
                     "s3: LIST %s: truncated listing without "
                     "NextContinuationToken",
                     s->bucket);
      } else {
        token = tok;
      }
    }
    buf_free(&r.body);
    if (rc || !token)
      break;
  }
  free(token);
  free(key);
  return rc;
}

enum err_code s3_url_parse(const char *url, char *bucket, size_t bcap,
                           char *prefix, size_t pcap, struct err *e)
{
  if (strncmp(url, "s3://", 5))
    return err_set(e, ERR_CONFIG,
                   "registry url '%s': want s3://BUCKET[/PREFIX]", url);
  const char *b = url + 5, *slash = strchr(b, '/');
  size_t bl = slash ? (size_t)(slash - b) : strlen(b);
  if (bl == 0 || bl >= bcap)
    return err_set(e, ERR_CONFIG, "registry url '%s': bad bucket name", url);
  memcpy(bucket, b, bl);
  bucket[bl] = 0;
  const char *p = slash ? slash : "";
  while (*p == '/')
    p++;
  size_t pl = strlen(p);
  while (pl && p[pl - 1] == '/')
    pl--;
  if (pl >= pcap)
    return err_set(e, ERR_CONFIG, "registry url '%s': prefix too long", url);
  memcpy(prefix, p, pl);
  prefix[pl] = 0;
  return ERR_OK;
}
