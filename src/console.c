/* console.c - serve the web console's embedded assets (console.h).
 *
 * Why embedded: the daemon is one binary; a console that needs files next
 * to it breaks when the binary is copied or installed elsewhere, and
 * version skew between the API and the page it was written for cannot
 * happen when both ship in the same file.  The assets are a few tens of
 * kilobytes.
 */
#include "mlopsd/console.h"

#include <string.h>

#include "mlopsd/http.h"
#include "mlopsd/log.h"

#define MOD "console"

/* Same-origin only; inline styles through the CSSOM (element.style) are
 * not affected by style-src. */
static const char csp[] =
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'";

const struct console_asset *console_find(const char *name)
{
  if (!name)
    return NULL;
  for (size_t i = 0; i < console_n_assets; i++)
    if (strcmp(console_assets[i].name, name) == 0)
      return &console_assets[i];
  return NULL;
}

static void serve(const struct console_asset *a, struct http_req *req,
                  struct http_resp *resp)
{
  const char *inm = http_req_header(req, "If-None-Match");
  if (http_resp_header(resp, "ETag", a->etag) != ERR_OK ||
      http_resp_header(resp, "Cache-Control", "no-cache") != ERR_OK ||
      http_resp_header(resp, "X-Content-Type-Options", "nosniff") !=
          ERR_OK ||
      http_resp_header(resp, "Content-Security-Policy", csp) != ERR_OK ||
      http_resp_header(resp, "Referrer-Policy", "no-referrer") != ERR_OK)
    LOG_W(MOD, "headers not added for %s", a->name);
  http_resp_content_type(resp, a->content_type);
  if (inm && strstr(inm, a->etag)) {
    http_resp_status(resp, 304);
    return;
  }
  http_resp_status(resp, 200);
  http_resp_static(resp, a->data, a->len);
}

static void h_index(struct http_req *req, struct http_resp *resp, void *arg)
{
  const struct console_asset *a = console_find("index.html");
  (void)arg;
  if (!a) {
    http_resp_error(resp, 404, "the web console was not built in");
    return;
  }
  serve(a, req, resp);
}

static void h_asset(struct http_req *req, struct http_resp *resp, void *arg)
{
  const struct console_asset *a = console_find(http_req_param(req, "file"));
  (void)arg;
  if (!a) {
    http_resp_error(resp, 404, "no console file '%.64s'",
                    http_req_param(req, "file"));
    return;
  }
  serve(a, req, resp);
}

enum err_code console_register(struct http *srv, struct err *e)
{
  enum err_code rc;
  if ((rc = http_route(srv, "GET", "/", h_index, NULL, e)) ||
      (rc = http_route(srv, "GET", "/console", h_index, NULL, e)) ||
      (rc = http_route(srv, "GET", "/console/{file}", h_asset, NULL, e)))
    return rc;
  return ERR_OK;
}
