/* dag_int.h - friend interface of the DAG file loader: dag.c (the walk
 * of a DAG file into a struct dag) and dag_yaml.c (the YAML readers it
 * uses: scalars, durations, ids, mappings, YAML -> JSON, errors with
 * FILE:LINE:COL).  Not for other modules: they use dag.h.
 *
 * Thread rule: a struct loader belongs to the thread loading one file.
 */
#ifndef MLOPSD_DAG_INT_H
#define MLOPSD_DAG_INT_H

#include <string.h>
#include <yaml.h>

#include "mlopsd/dag.h"
#include "mlopsd/err.h"

struct cJSON;
struct tmpl_pos;

#define DAG_JSON_NODES_MAX 100000
#define DAG_JSON_DEPTH_MAX 32
#define DAG_DURATION_MAX (365 * 86400)

/* One file being loaded. */
struct loader {
  const char *path;
  char *text;
  size_t len;
  yaml_document_t doc;
  int have_doc;
  struct dag *d;
  struct err *e;
  int json_nodes; /* values converted by to_json (one field) */
  int walked;     /* values visited by a walk (one field) */
  yaml_node_t *walk_top; /* the field being walked, for "too large" */
};

#define MARK(n) (int)(n)->start_mark.line + 1, (int)(n)->start_mark.column + 1
#define FAIL(L, n, ...) dagy_fail_at((L), MARK(n), ERR_PARSE, __VA_ARGS__)
#define FOR_PAIRS(L, m, p)                                                  \
  for (yaml_node_pair_t *p = (m)->data.mapping.pairs.start;                 \
       p < (m)->data.mapping.pairs.top; p++)
#define FOR_ITEMS(L, s, it)                                                 \
  for (yaml_node_item_t *it = (s)->data.sequence.items.start;               \
       it < (s)->data.sequence.items.top; it++)

static inline yaml_node_t *node(struct loader *L, int i)
{
  return yaml_document_get_node(&L->doc, i);
}

static inline int is_scalar(const yaml_node_t *n)
{
  return n->type == YAML_SCALAR_NODE;
}

static inline const char *sval(const yaml_node_t *n)
{
  return (const char *)n->data.scalar.value;
}

static inline int is_plain(const yaml_node_t *n)
{
  return is_scalar(n) && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static inline int is_null(const yaml_node_t *n)
{
  if (!is_plain(n))
    return 0;
  const char *s = sval(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") ||
         !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* "PATH:LINE:COL: message" into L->e with code; returns code. */
enum err_code dagy_fail_at(struct loader *L, int line, int col,
                           enum err_code code, const char *fmt, ...)
    MLOPSD_PRINTF(5, 6);

/* "a mapping", "a list", "null" or "a single value" (for messages). */
const char *dagy_what_is(const yaml_node_t *n);
/* Where in the file is position p of the text of scalar n?  Exact for
 * one-line plain scalars and literal (|) blocks, and for quoted scalars
 * without escapes before p; else the start of the value. */
void dagy_scalar_pos(struct loader *L, const yaml_node_t *n,
                     const struct tmpl_pos *p, int *line, int *col);

/* Scalar readers: each fails with FILE:LINE:COL "WHAT must be ..." */
enum err_code dagy_str(struct loader *L, yaml_node_t *n, const char *what,
                       char **out);
enum err_code dagy_bool(struct loader *L, yaml_node_t *n, const char *what,
                        int *out);
enum err_code dagy_int(struct loader *L, yaml_node_t *n, const char *what,
                       long min, long max, int *out);
/* "90", "30s", "5m", "1h30m", "2d": seconds, at most DAG_DURATION_MAX. */
enum err_code dagy_duration(struct loader *L, yaml_node_t *n,
                            const char *what, int *out);
/* true/false/yes/no/on/off (YAML 1.1 words): 1 and *v, else 0. */
int dagy_bool_word(const char *s, int *v);
/* A decimal long: 1 and *v, else 0. */
int dagy_parse_long(const char *s, long *v);
/* 1..DAG_ID_MAX characters of [A-Za-z0-9_.-]. */
int dagy_id_ok(const char *s);
/* Keys of a mapping must be single values and unique. */
enum err_code dagy_map_check(struct loader *L, yaml_node_t *m,
                             const char *what);
/* n as JSON (scalars as strings, null as null; every mapping checked),
 * capped at DAG_JSON_NODES_MAX values and DAG_JSON_DEPTH_MAX levels
 * (aliases can make a small file expand). */
enum err_code dagy_json_of(struct loader *L, yaml_node_t *n,
                           const char *what, struct cJSON **out);

#endif
