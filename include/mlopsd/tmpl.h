/* tmpl.h - the {{ ... }} templates of DAG fields (SQL, commands, URLs).
 *
 * Names (blanks inside the braces optional):
 *   {{ ds }}            logical date YYYY-MM-DD (scheduler time zone)
 *   {{ ds_nodash }}     YYYYMMDD
 *   {{ ds_add(N) }}     ds plus N days (N may be negative), YYYY-MM-DD
 *   {{ run_id }}        the run id
 *   {{ dag_id }}        the DAG id
 *   {{ params.NAME }}   a DAG param (must be declared in `params`)
 *   {{ conf.NAME }}     a value from the run's conf (trigger --conf)
 * Anything else is an error at load time (tmpl_check), never an empty
 * string.  `{{` always starts a template; there is no escape for it.
 *
 * How a value is inserted depends on where the text goes (enum tmpl_mode):
 *  - TMPL_SQL: ds/ds_nodash/ds_add/run_id/dag_id are checked
 *    (dates YYYY-MM-DD or YYYYMMDD, ids [A-Za-z0-9_.:+-]+) and spliced;
 *    params are spliced only if they look safe (a number, or letters,
 *    digits, blanks and _ . : -, no "--"); conf values are never spliced:
 *    each becomes a `?` placeholder and its value is appended to the bound
 *    parameter list, so the sql task binds it.  A {{ conf.X }} inside a
 *    quoted string or a comment is an error (a placeholder cannot work
 *    there), and so is a literal `?` outside quotes (placeholders are
 *    reserved for conf).
 *  - TMPL_SHELL (a command run by /bin/sh -c): conf values are inserted as
 *    one single-quoted word; a {{ conf.X }} inside quotes is an error.
 *  - TMPL_URL: scheduler and conf values are percent-encoded (RFC 3986
 *    unreserved kept); params are inserted as written (they may be URL
 *    parts such as a host).
 *  - TMPL_HEADER: as written, but no control characters (CR/LF).
 *  - TMPL_PLAIN: as written (bodies, env values, argv items).
 *
 * Thread rule: pure functions, any thread.  All strings are borrowed for
 * the duration of the call unless said otherwise.
 */
#ifndef MLOPSD_TMPL_H
#define MLOPSD_TMPL_H

#include <stddef.h>

#include "mlopsd/err.h"

/* Rendered text is capped (ERR_FULL beyond). */
#define TMPL_OUT_MAX ((size_t)16 << 20)
/* Longest NAME in params.NAME / conf.NAME: longer ones are a parse error,
 * so a template tmpl_check accepts can always be looked up. */
#define TMPL_NAME_MAX 127

enum tmpl_mode {
  TMPL_PLAIN = 0,
  TMPL_SQL,
  TMPL_SHELL,
  TMPL_URL,
  TMPL_HEADER,
};

enum tmpl_kind {
  TMPL_DS = 0,
  TMPL_DS_NODASH,
  TMPL_DS_ADD,
  TMPL_RUN_ID,
  TMPL_DAG_ID,
  TMPL_PARAM,
  TMPL_CONF,
};

/* One {{ ... }} found in a text. */
struct tmpl_tag {
  enum tmpl_kind kind;
  size_t off, len;      /* the whole "{{ ... }}" in the text */
  const char *name;     /* PARAM/CONF: NAME, points into the text */
  size_t name_len;
  int days;             /* DS_ADD: N */
};

/* Find the next tag at or after *pos.  ERR_OK: *tag filled and *pos moved
 * past it; ERR_NOTFOUND: no more tags; ERR_PARSE: a malformed or unknown
 * tag, e->msg without position, tag->off set to where it starts. */
enum err_code tmpl_next(const char *text, size_t *pos, struct tmpl_tag *tag,
                        struct err *e) MLOPSD_WUR;

/* A place in a text: byte offset and 1-based line and column (bytes). */
struct tmpl_pos {
  size_t off;
  int line, col;
};
/* The line and column of byte offset off in text. */
void tmpl_pos_at(const char *text, size_t off, struct tmpl_pos *out);

/* Load-time check of text for mode: every tag known, every params.NAME in
 * params[0..nparams) (NULL-safe when nparams is 0), and the mode's rules
 * on placement (SQL: conf outside strings/comments, no literal `?`;
 * SHELL: conf outside quotes).  ERR_PARSE with e->msg WITHOUT the position
 * (the caller maps *where, may be NULL, to a file position). */
enum err_code tmpl_check(const char *text, enum tmpl_mode mode,
                         const char *const *params, size_t nparams,
                         struct tmpl_pos *where, struct err *e) MLOPSD_WUR;

/* Would value be accepted for a tag of this kind in this mode?  (The
 * per-value rule of render, for checking DAG params at load time.)
 * ERR_INVAL with a message naming the value. */
enum err_code tmpl_check_value(enum tmpl_mode mode, enum tmpl_kind kind,
                               const char *value, struct err *e) MLOPSD_WUR;

/* A name/value pair (params, conf). */
struct tmpl_var {
  const char *name;
  const char *value;
};

/* What a render substitutes.  Everything borrowed. */
struct tmpl_ctx {
  const char *ds;       /* "YYYY-MM-DD", required if the text uses ds* */
  const char *run_id;
  const char *dag_id;
  const struct tmpl_var *params;
  size_t nparams;
  const struct tmpl_var *conf;
  size_t nconf;
  /* Optional: called for params/conf names not found in the arrays
   * (e.g. to read a cJSON conf object).  Returns the value (borrowed
   * until the render returns) or NULL if unset.  kind is TMPL_PARAM or
   * TMPL_CONF; name is NUL-terminated. */
  const char *(*lookup)(void *user, enum tmpl_kind kind, const char *name);
  void *user;
};

/* Values bound to the `?` placeholders of a TMPL_SQL render, in order. */
struct tmpl_binds {
  char **v; /* malloc'd strings */
  size_t n;
};
void tmpl_binds_free(struct tmpl_binds *b); /* NULL-safe, resets */

/* Render text.  *out gets a malloc'd string (caller frees) on success,
 * NULL on error.  binds: required for TMPL_SQL (reset first; filled with
 * the conf values in placeholder order), ignored (may be NULL) otherwise.
 * Errors (e->msg starts with "{{ NAME }} at line L:"): ERR_INVAL unset
 * conf/param or a value the mode refuses, ERR_PARSE bad template,
 * ERR_FULL output over TMPL_OUT_MAX, ERR_NOMEM. */
enum err_code tmpl_render(const char *text, const struct tmpl_ctx *ctx,
                          enum tmpl_mode mode, char **out,
                          struct tmpl_binds *binds, struct err *e) MLOPSD_WUR;

/* Name of a mode, for messages ("sql"). */
const char *tmpl_mode_name(enum tmpl_mode mode);

#endif
