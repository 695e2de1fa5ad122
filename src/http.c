/* http.c - the HTTP server on libmicrohttpd. */
#include "mlopsd/http.h"

#include <microhttpd.h>

const char *http_lib_version(void) { return MHD_get_version(); }
