/* reqjson.h - request JSON: the pre-check and the parse of a /predict
 * body (also used for the admin API's bodies and `mlopsd predict`).
 *
 * Why a scanner before any parser: cJSON reports a parse error through a
 * process-wide variable (a data race between HTTP threads) and says
 * nothing about why; it also accepts invalid UTF-8 and recurses up to
 * 1000 levels.  reqjson_scan checks the body in one pass without
 * allocating and gives the position and reason of the first error, so
 * only valid JSON is ever parsed.  The scan also records the byte range
 * of every item of "data", which is what the prediction log stores: the
 * item exactly as the client sent it, without printing it again.
 *
 * The tree: cJSON checked it all again, sized every string twice and
 * converted every number through glibc's strtod, which made cJSON's parse
 * the largest user-space cost of a prediction (about half of the
 * handler's instructions).  reqjson_scan_parse checks the body as
 * reqjson_scan does and, in the same pass, builds the tree
 * cJSON_ParseWithLengthOpts would build -
 * the same node types, member names and order (repeated names kept),
 * strings with their escapes decoded, valuedouble bit for bit what strtod
 * gives, valueint saturated as cJSON does - so everything downstream
 * (validation, the preprocessing, cJSON_Print, cJSON_Delete) sees no
 * difference.  Numbers of at most 15 significant digits and a decimal
 * exponent within +-22 are converted with one multiplication or division
 * by an exact power of ten, which is correctly rounded, hence equal to
 * strtod's result (Clinger's fast path); those of up to 19 digits with an
 * exponent within -22..19 are rounded exactly in 128-bit integers; the
 * others go through strtod.
 *
 * Thread rule: none (no state); any thread.
 */
#ifndef MLOPSD_REQJSON_H
#define MLOPSD_REQJSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"

#define REQJSON_MAX_DEPTH 16    /* JSON nesting accepted (3 is needed) */
#define REQJSON_MAX_NUMBER 63   /* characters in one JSON number */

/* ---- the pre-check --------------------------------------------------- */

struct reqjson_span {
  size_t start, end; /* byte range [start, end) of a value in the body */
};

struct reqjson_scan {
  /* in */
  int max_depth;              /* 0 = REQJSON_MAX_DEPTH */
  struct reqjson_span *items; /* room for the spans of data's elements */
  size_t items_cap;
  /* reqjson_scan_parse only, optional (NULL: every allocation from its
   * alloc): a region the tree is taken from first, in 16-byte aligned
   * steps from bump + *bump_used (which it advances) while bump_cap
   * lasts; then alloc.  Such memory is the caller's to drop. */
  char *bump;
  size_t bump_cap, *bump_used;
  /* out */
  int has_data;               /* top-level object has a member "data" */
  struct reqjson_span data;   /* its value (the first one if repeated) */
  int data_kind;              /* '{', '[' or another first byte */
  size_t n_items;             /* elements of data when it is an array
                                 (counted also beyond items_cap) */
  size_t err_pos;             /* byte offset of the error */
  int err_line, err_col;      /* 1-based */
  const char *err;            /* static message, NULL when valid */
};

/* Check that buf[0..len) is one JSON value in valid UTF-8 (RFC 8259: no
 * lone surrogates in \u escapes, no control characters in strings), at
 * most max_depth deep, with numbers of at most REQJSON_MAX_NUMBER
 * characters, surrounded only by whitespace; record the spans above.
 * Returns 0 when valid, -1 with err, err_pos, err_line and err_col set.
 * Allocates nothing; any thread. */
int reqjson_scan(const char *buf, size_t len, struct reqjson_scan *sc);

/* ---- the check and the tree in one pass ------------------------------ */

/* The check of reqjson_scan and the tree in one pass over buf: the same
 * result, spans and error fields as reqjson_scan, and while checking, the
 * tree described above (nodes zeroed like cJSON_New_Item's, strings from
 * alloc).  A /predict body was walked twice before (a scan, then a
 * separate parse: together about half of the handler's instructions,
 * issue 16).
 * Returns 0 (valid; *root the whole tree), -1 (invalid; sc's error fields
 * set as by reqjson_scan) or -2 (alloc returned NULL; sc's error fields
 * and spans are not complete).  In every case *root is the consistent
 * tree built so far or NULL, to be released like a complete one: with
 * cJSON_Delete when alloc is the allocator of cJSON's hooks and no bump
 * region was given, else with the arena the memory came from.  Any
 * thread. */
int reqjson_scan_parse(const char *buf, size_t len, struct reqjson_scan *sc,
                       void *(*alloc)(size_t), cJSON **root);

#endif
