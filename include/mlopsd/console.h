/* console.h - the web console: static assets (web/index.html, app.js,
 * style.css) embedded in the binary at build time (scripts/embed.sh ->
 * build/gen/console_assets.c) and served by the daemon's HTTP server.
 *
 * Routes (console_register):
 *   GET /                  index.html
 *   GET /console           index.html
 *   GET /console/{file}    an embedded asset by file name
 *
 * Every answer carries an ETag (sha256 prefix of the file, computed at
 * build time; If-None-Match answers 304), Cache-Control: no-cache, and a
 * Content-Security-Policy that allows only same-origin scripts, styles
 * and fetches: the console loads nothing from elsewhere.  The pages get
 * all their data from the JSON admin API (admin.h); nothing here renders
 * HTML from data.
 *
 * Thread rule: console_register before the server starts; the handlers
 * are stateless and run on any HTTP thread.
 */
#ifndef MLOPSD_CONSOLE_H
#define MLOPSD_CONSOLE_H

#include <stddef.h>

#include "mlopsd/err.h"

struct http;

/* One embedded file (static storage, generated). */
struct console_asset {
  const char *name;          /* file name, e.g. "app.js" */
  const char *content_type;  /* "text/javascript; charset=utf-8", ... */
  const unsigned char *data;
  size_t len;
  const char *etag;          /* quoted, e.g. "\"3f2a...\"" */
};

/* The generated table (build/gen/console_assets.c). */
extern const struct console_asset console_assets[];
extern const size_t console_n_assets;

/* The asset called name, or NULL. */
const struct console_asset *console_find(const char *name);

/* Register the routes above on srv (before http_start). */
enum err_code console_register(struct http *srv, struct err *e) MLOPSD_WUR;

#endif
