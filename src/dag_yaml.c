/* dag_yaml.c - the YAML readers of the DAG file loader (dag_int.h):
 * scalars, durations, ids, mappings and YAML -> JSON, every error with
 * the FILE:LINE:COL of the node.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlopsd/tmpl.h"
#include "dag_int.h"

/* ------------------------------------------------------------------ */
/* errors                                                              */


enum err_code dagy_fail_at(struct loader *L, int line, int col,
                           enum err_code code, const char *fmt, ...)
{
  char msg[ERR_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  return err_set(L->e, code, "%s:%d:%d: %s", L->path, line, col, msg);
}







const char *dagy_what_is(const yaml_node_t *n)
{
  if (n->type == YAML_MAPPING_NODE)
    return "a mapping";
  if (n->type == YAML_SEQUENCE_NODE)
    return "a list";
  if (is_null(n))
    return "null";
  return "a single value";
}

/* Where in the file is position p of the text of scalar n?  Exact for
 * one-line plain scalars and literal (|) blocks, and for quoted scalars
 * without escapes before p; else the start of the value. */
void dagy_scalar_pos(struct loader *L, const yaml_node_t *n,
                     const struct tmpl_pos *p, int *line, int *col)
{
  *line = (int)n->start_mark.line + 1;
  *col = (int)n->start_mark.column + 1;
  yaml_scalar_style_t st = n->data.scalar.style;
  if (p->line == 1 && (st == YAML_PLAIN_SCALAR_STYLE ||
                       st == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                       st == YAML_DOUBLE_QUOTED_SCALAR_STYLE)) {
    *col += p->col - 1 + (st != YAML_PLAIN_SCALAR_STYLE);
    return;
  }
  if (st != YAML_LITERAL_SCALAR_STYLE)
    return;
  /* content line k sits k lines below the "|"; the block's indentation
   * is that of its first non-blank line */
  size_t off = n->start_mark.index;
  while (off < L->len && L->text[off] != '\n')
    off++;
  int indent = 0;
  for (size_t i = off + 1; i < L->len; i++) {
    if (L->text[i] == ' ') {
      indent++;
    } else if (L->text[i] == '\n' || L->text[i] == '\r') {
      indent = 0;
    } else {
      break;
    }
  }
  *line = (int)n->start_mark.line + 1 + p->line;
  *col = indent + p->col;
}

/* ------------------------------------------------------------------ */
/* scalar readers                                                      */

enum err_code dagy_str(struct loader *L, yaml_node_t *n,
                       const char *what, char **out)
{
  if (!is_scalar(n) || is_null(n))
    return FAIL(L, n, "%s must be a single value, not %s", what, dagy_what_is(n));
  free(*out);
  *out = strdup(sval(n));
  return *out ? ERR_OK : err_set(L->e, ERR_NOMEM, "out of memory");
}

int dagy_bool_word(const char *s, int *v)
{
  static const char *const yes[] = {"true", "True", "TRUE", "yes", "Yes",
                                    "YES", "on", "On", "ON"};
  static const char *const no[] = {"false", "False", "FALSE", "no", "No",
                                   "NO", "off", "Off", "OFF"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (!strcmp(s, yes[i])) {
      *v = 1;
      return 1;
    }
    if (!strcmp(s, no[i])) {
      *v = 0;
      return 1;
    }
  }
  return 0;
}

enum err_code dagy_bool(struct loader *L, yaml_node_t *n,
                        const char *what, int *out)
{
  if (!is_plain(n) || !dagy_bool_word(sval(n), out))
    return FAIL(L, n, "%s must be true or false, not %s%s%s", what,
                is_scalar(n) ? "'" : "", is_scalar(n) ? sval(n) : dagy_what_is(n),
                is_scalar(n) ? "'" : "");
  return ERR_OK;
}

int dagy_parse_long(const char *s, long *v)
{
  char *end;
  errno = 0;
  if (!*s || isspace((unsigned char)*s))
    return 0;
  long x = strtol(s, &end, 10);
  if (errno || *end)
    return 0;
  *v = x;
  return 1;
}

enum err_code dagy_int(struct loader *L, yaml_node_t *n,
                       const char *what, long min, long max, int *out)
{
  long v;
  if (!is_plain(n) || !dagy_parse_long(sval(n), &v) || v < min || v > max)
    return FAIL(L, n, "%s must be an integer %ld..%ld, not %s%s%s", what,
                min, max, is_scalar(n) ? "'" : "",
                is_scalar(n) ? sval(n) : dagy_what_is(n), is_scalar(n) ? "'" : "");
  *out = (int)v;
  return ERR_OK;
}

/* "90", "30s", "5m", "1h30m", "2d" -> seconds; -1 if malformed. */
static long parse_duration(const char *s)
{
  long v;
  if (dagy_parse_long(s, &v))
    return v >= 0 ? v : -1;
  long total = 0;
  const char *p = s;
  int units = 0;
  char last = 0;
  while (*p) {
    if (!isdigit((unsigned char)*p))
      return -1;
    long n = 0;
    while (isdigit((unsigned char)*p)) {
      n = n * 10 + (*p++ - '0');
      if (n > DAG_DURATION_MAX)
        return -1;
    }
    long mul;
    switch (*p) {
    case 'd': mul = 86400; break;
    case 'h': mul = 3600; break;
    case 'm': mul = 60; break;
    case 's': mul = 1; break;
    default: return -1;
    }
    /* units in decreasing order, each once */
    if (last && mul >= (last == 'd' ? 86400 : last == 'h' ? 3600
                                    : last == 'm' ? 60 : 1))
      return -1;
    last = *p++;
    total += n * mul;
    if (total > DAG_DURATION_MAX)
      return -1;
    units++;
  }
  return units ? total : -1;
}

enum err_code dagy_duration(struct loader *L, yaml_node_t *n,
                            const char *what, int *out)
{
  long v = is_scalar(n) && !is_null(n) ? parse_duration(sval(n)) : -1;
  if (v < 0 || v > DAG_DURATION_MAX)
    return FAIL(L, n,
                "%s must be a duration like 30s, 5m, 1h30m, 2d or seconds "
                "(up to 365d), not %s%s%s",
                what, is_scalar(n) ? "'" : "",
                is_scalar(n) ? sval(n) : dagy_what_is(n), is_scalar(n) ? "'" : "");
  *out = (int)v;
  return ERR_OK;
}

int dagy_id_ok(const char *s)
{
  size_t n = strlen(s);
  if (n < 1 || n > DAG_ID_MAX)
    return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
      return 0;
  return 1;
}

/* Keys of a mapping must be single values and unique. */
enum err_code dagy_map_check(struct loader *L, yaml_node_t *m,
                             const char *what)
{
  yaml_node_pair_t *b = m->data.mapping.pairs.start;
  yaml_node_pair_t *e = m->data.mapping.pairs.top;
  for (yaml_node_pair_t *p = b; p < e; p++) {
    yaml_node_t *k = node(L, p->key);
    if (!is_scalar(k) || is_null(k))
      return FAIL(L, k, "keys of %s must be names, not %s", what,
                  dagy_what_is(k));
    for (yaml_node_pair_t *q = b; q < p; q++) {
      yaml_node_t *k2 = node(L, q->key);
      if (!strcmp(sval(k), sval(k2)))
        return FAIL(L, k, "duplicate key '%s' in %s (first at line %d)",
                    sval(k), what, (int)k2->start_mark.line + 1);
    }
  }
  return ERR_OK;
}


/* YAML -> JSON: scalars as strings, null as null.  Capped in size and
 * depth (aliases can make a small file expand). */
static cJSON *to_json(struct loader *L, yaml_node_t *n, int depth)
{
  if (depth > DAG_JSON_DEPTH_MAX || ++L->json_nodes > DAG_JSON_NODES_MAX)
    return NULL;
  if (is_scalar(n))
    return is_null(n) ? cJSON_CreateNull() : cJSON_CreateString(sval(n));
  cJSON *j = n->type == YAML_MAPPING_NODE ? cJSON_CreateObject()
                                          : cJSON_CreateArray();
  if (!j)
    return NULL;
  if (n->type == YAML_MAPPING_NODE) {
    FOR_PAIRS(L, n, p) {
      cJSON *v = to_json(L, node(L, p->value), depth + 1);
      if (!v || !cJSON_AddItemToObject(j, sval(node(L, p->key)), v)) {
        cJSON_Delete(v);
        cJSON_Delete(j);
        return NULL;
      }
    }
  } else {
    FOR_ITEMS(L, n, it) {
      cJSON *v = to_json(L, node(L, *it), depth + 1);
      if (!v || !cJSON_AddItemToArray(j, v)) {
        cJSON_Delete(v);
        cJSON_Delete(j);
        return NULL;
      }
    }
  }
  return j;
}

/* Check every mapping inside n (to_json relies on unique names). */
static enum err_code deep_map_check(struct loader *L, yaml_node_t *n,
                                    const char *what, int depth)
{
  enum err_code rc;
  if (depth > DAG_JSON_DEPTH_MAX)
    return FAIL(L, n, "%s is nested too deeply", what);
  if (++L->walked > DAG_JSON_NODES_MAX)
    return FAIL(L, L->walk_top, "%s is too large (more than %d values "
                "after aliases)", what, DAG_JSON_NODES_MAX);
  if (n->type == YAML_MAPPING_NODE) {
    if ((rc = dagy_map_check(L, n, what)) != ERR_OK)
      return rc;
    FOR_PAIRS(L, n, p)
    if ((rc = deep_map_check(L, node(L, p->value), what, depth + 1)))
      return rc;
  } else if (n->type == YAML_SEQUENCE_NODE) {
    FOR_ITEMS(L, n, it)
    if ((rc = deep_map_check(L, node(L, *it), what, depth + 1)))
      return rc;
  }
  return ERR_OK;
}

enum err_code dagy_json_of(struct loader *L, yaml_node_t *n,
                           const char *what, cJSON **out)
{
  L->walked = 0;
  L->json_nodes = 0;
  L->walk_top = n;
  enum err_code rc = deep_map_check(L, n, what, 0);
  if (rc)
    return rc;
  *out = to_json(L, n, 0);
  if (!*out)
    return L->json_nodes > DAG_JSON_NODES_MAX
               ? FAIL(L, n, "%s is too large (more than %d values after "
                      "aliases)", what, DAG_JSON_NODES_MAX)
               : err_set(L->e, ERR_NOMEM, "out of memory");
  return ERR_OK;
}
