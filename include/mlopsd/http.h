/* http.h - the HTTP server (libmicrohttpd).  Only http.c includes
 * <microhttpd.h>. */
#ifndef MLOPSD_HTTP_H
#define MLOPSD_HTTP_H

/* Version of libmicrohttpd in use (static string). */
const char *http_lib_version(void);

#endif
