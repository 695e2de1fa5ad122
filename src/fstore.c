/* fstore.c - the feature store client (see fstore.h).
 *
 * Why column arrays and an interning arena: a training set of a million
 * rows and 22 features read row by row with one malloc per string would
 * cost tens of millions of allocations and fragment the heap; categorical
 * columns hold a handful of distinct values.  Here every column is one
 * array grown by doubling, and every distinct string is stored once in
 * 1 MiB arena blocks, found again through an open-addressing hash set, so
 * memory is proportional to the rows plus the distinct strings.  Interned
 * strings also make "same value" a pointer comparison, which pipeline.c
 * uses to count categories for the drift reference.
 *
 * The row order comes from the table's primary key so the seeded split is
 * reproducible: the same data read twice gives the same rows in the same
 * order, whatever plan the server picks.
 *
 * The primary-key columns are selected too, as row keys: a training
 * version records the keys of the rows it learned from, and the validate
 * gate leaves those rows out when it scores that version later.  The key
 * columns that hold one value over the set (the snapshot date the filter
 * pins) are dropped after the read, so the same source record extracted
 * for two logical dates has the same key in both sets.
 */
#include "mlopsd/fstore.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/db.h"
#include "mlopsd/hash.h"
#include "mlopsd/tmpl.h"

#define ARENA_BLOCK ((size_t)1 << 20)
#define CANCEL_EVERY 4096
#define MAX_PK_COLS FSTORE_MAX_KEY_COLS

/* ---- string arena with interning --------------------------------------- */

struct arena_block {
  struct arena_block *next;
  size_t used, cap;
  char data[];
};

struct fstore_arena {
  struct arena_block *head;
  size_t bytes;
  /* open addressing: slots hold string pointers, NULL = empty */
  const char **slot;
  uint64_t *hash;
  size_t n_slot, n_used;
};

static void arena_free(struct fstore_arena *a)
{
  if (!a)
    return;
  struct arena_block *b = a->head;
  while (b) {
    struct arena_block *n = b->next;
    free(b);
    b = n;
  }
  free(a->slot);
  free(a->hash);
  free(a);
}

/* FNV-1a 64: short strings, good enough spread for a power-of-two table. */
static uint64_t str_hash(const char *s, size_t n)
{
  uint64_t h = hash_fnv1a(s, n);
  return h ? h : 1;
}

static char *arena_put(struct fstore_arena *a, const char *s, size_t n)
{
  struct arena_block *b = a->head;
  if (!b || b->cap - b->used < n + 1) {
    size_t cap = n + 1 > ARENA_BLOCK ? n + 1 : ARENA_BLOCK;
    b = malloc(sizeof(*b) + cap);
    if (!b)
      return NULL;
    b->used = 0;
    b->cap = cap;
    b->next = a->head;
    a->head = b;
    a->bytes += sizeof(*b) + cap;
  }
  char *p = b->data + b->used;
  memcpy(p, s, n);
  p[n] = '\0';
  b->used += n + 1;
  return p;
}

static int arena_grow(struct fstore_arena *a)
{
  size_t ns = a->n_slot ? a->n_slot * 2 : 1024;
  const char **slot = calloc(ns, sizeof(*slot));
  uint64_t *hash = calloc(ns, sizeof(*hash));
  if (!slot || !hash) {
    free(slot);
    free(hash);
    return -1;
  }
  for (size_t i = 0; i < a->n_slot; i++) {
    if (!a->slot[i])
      continue;
    size_t j = (size_t)a->hash[i] & (ns - 1);
    while (slot[j])
      j = (j + 1) & (ns - 1);
    slot[j] = a->slot[i];
    hash[j] = a->hash[i];
  }
  free(a->slot);
  free(a->hash);
  a->slot = slot;
  a->hash = hash;
  a->n_slot = ns;
  return 0;
}

/* The one copy of s[0..n) (strings with NUL bytes are cut at the first
 * NUL: the transform works on C strings). */
static const char *arena_intern(struct fstore_arena *a, const char *s,
                                size_t n)
{
  size_t z = strnlen(s, n);
  n = z;
  if ((a->n_used + 1) * 2 > a->n_slot && arena_grow(a))
    return NULL;
  uint64_t h = str_hash(s, n);
  size_t j = (size_t)h & (a->n_slot - 1);
  while (a->slot[j]) {
    if (a->hash[j] == h && strncmp(a->slot[j], s, n) == 0 &&
        a->slot[j][n] == '\0')
      return a->slot[j];
    j = (j + 1) & (a->n_slot - 1);
  }
  char *p = arena_put(a, s, n);
  if (!p)
    return NULL;
  a->slot[j] = p;
  a->hash[j] = h;
  a->n_used++;
  return p;
}

/* ---- helpers ------------------------------------------------------------ */

static double mono_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int ds_valid(const char *ds)
{
  static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (!ds || strlen(ds) != 10 || ds[4] != '-' || ds[7] != '-')
    return 0;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && (ds[i] < '0' || ds[i] > '9'))
      return 0;
  int y = atoi(ds), m = atoi(ds + 5), d = atoi(ds + 8);
  if (y < 1000 || m < 1 || m > 12 || d < 1)
    return 0;
  int md = mdays[m - 1];
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
    md = 29;
  return d <= md;
}

/* Append printf output to buf (cap bytes); -1 when it does not fit. */
static int sql_addf(char *buf, size_t cap, size_t *len, const char *fmt,
                    ...) MLOPSD_PRINTF(4, 5);
static int sql_addf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= cap - *len)
    return -1;
  *len += (size_t)n;
  return 0;
}

/* `db`.`table` or `table` (parts validated by spec_load already; checked
 * again here since this text is spliced into SQL). */
static int quote_table(const char *table, char *buf, size_t cap,
                       char *schema, size_t scap, char *name, size_t ncap)
{
  const char *dot = strchr(table, '.');
  schema[0] = '\0';
  if (dot) {
    snprintf(schema, scap, "%.*s", (int)(dot - table), table);
    snprintf(name, ncap, "%s", dot + 1);
  } else {
    snprintf(name, ncap, "%s", table);
  }
  if ((schema[0] && !db_ident_ok(schema)) || !db_ident_ok(name))
    return -1;
  if (schema[0])
    snprintf(buf, cap, "`%s`.`%s`", schema, name);
  else
    snprintf(buf, cap, "`%s`", name);
  return 0;
}

struct pk_ctx {
  int n;
  char cols[MAX_PK_COLS][72];
  int bad;
};

static int pk_row(void *user, const struct db_row *row)
{
  struct pk_ctx *c = user;
  const char *s = db_row_str(row, 0, NULL);
  if (!s || !db_ident_ok(s)) {
    c->bad = 1;
    return 1;
  }
  if (c->n < MAX_PK_COLS)
    snprintf(c->cols[c->n++], sizeof(c->cols[0]), "%s", s);
  return 0;
}

/* Primary key columns of the table, in key order (n = 0 if none). */
static enum err_code primary_key(struct db_conn *c, const char *schema,
                                 const char *name, struct pk_ctx *pk,
                                 struct err *e)
{
  memset(pk, 0, sizeof(*pk));
  struct db_val p[2] = {schema[0] ? DB_V_STR(schema) : DB_V_NULL,
                        DB_V_STR(name)};
  enum err_code rc = db_query(
      c,
      "SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
      "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? "
      "AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION",
      p, 2, pk_row, pk, NULL, e);
  if (rc == ERR_OK && pk->bad)
    pk->n = 0; /* an odd column name: fall back to ordering by values */
  return rc;
}

/* "base_dt = '2025-05-01'" -> "base_dt=2025-05-01" for the zero-row
 * message; other filters are quoted whole. */
static void filter_words(const char *f, char *buf, size_t cap)
{
  const char *p = f;
  while (*p == ' ' || *p == '(')
    p++;
  const char *c0 = p;
  while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '_' || *p == '`')
    p++;
  const char *c1 = p;
  while (*p == ' ')
    p++;
  if (c1 > c0 && *p == '=') {
    p++;
    while (*p == ' ')
      p++;
    if (*p == '\'') {
      const char *v0 = ++p;
      while (*p && *p != '\'')
        p++;
      const char *v1 = p;
      if (*p == '\'') {
        p++;
        while (*p == ' ' || *p == ')')
          p++;
        if (!*p) {
          snprintf(buf, cap, "for %.*s=%.*s", (int)(c1 - c0), c0,
                   (int)(v1 - v0), v0);
          for (char *q = buf; *q; q++)
            if (*q == '`')
              memmove(q, q + 1, strlen(q)), q--;
          return;
        }
      }
    }
  }
  snprintf(buf, cap, "where %.200s", f);
}

/* ---- reading ------------------------------------------------------------ */

struct rd {
  const struct spec *spec;
  struct fstore_set *s;
  size_t cap;       /* rows allocated */
  int key_col;      /* db column of the key, -1 if none */
  int target_col;
  int rk_col;       /* db column of the first row-key column */
  size_t n_rk;      /* row-key columns selected (before pruning) */
  const char *table;
  fstore_cancel_fn cancel;
  void *cancel_ud;
  struct err err;
  int failed;
};

static int rd_fail(struct rd *r, enum err_code code, const char *fmt, ...)
    MLOPSD_PRINTF(3, 4);
static int rd_fail(struct rd *r, enum err_code code, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  r->err.code = code;
  vsnprintf(r->err.msg, sizeof(r->err.msg), fmt, ap);
  va_end(ap);
  r->failed = 1;
  return 1;
}

static int rd_grow(struct rd *r)
{
  struct fstore_set *s = r->s;
  size_t nc = r->cap ? r->cap * 2 : 4096;
  if (nc > FSTORE_MAX_ROWS)
    nc = FSTORE_MAX_ROWS;
  for (size_t j = 0; j < s->n_features; j++) {
    if (r->spec->features[j].kind == SPEC_NUMERIC) {
      double *p = realloc((void *)s->cols[j].num, nc * sizeof(double));
      if (!p)
        return -1;
      s->cols[j].num = p;
    } else {
      const char **p = realloc((void *)s->cols[j].str, nc * sizeof(char *));
      if (!p)
        return -1;
      s->cols[j].str = p;
    }
  }
  if (r->spec->task == SPEC_TASK_REGRESSION) {
    double *p = realloc(s->target, nc * sizeof(double));
    if (!p)
      return -1;
    s->target = p;
  } else {
    int *p = realloc(s->labels, nc * sizeof(int));
    if (!p)
      return -1;
    s->labels = p;
  }
  if (r->key_col >= 0) {
    const char **p = realloc(s->keys, nc * sizeof(char *));
    if (!p)
      return -1;
    s->keys = p;
  }
  if (r->n_rk > 0) {
    const char **p = realloc(s->row_keys, nc * r->n_rk * sizeof(char *));
    if (!p)
      return -1;
    s->row_keys = p;
  }
  r->cap = nc;
  return 0;
}

/* Parse a number as MariaDB prints it; 0 on success. */
static int parse_num(const char *s, size_t len, double *out)
{
  char buf[128];
  if (len == 0 || len >= sizeof(buf))
    return -1;
  memcpy(buf, s, len);
  buf[len] = '\0';
  char *end;
  errno = 0;
  double v = strtod(buf, &end);
  while (*end == ' ')
    end++;
  if (end == buf || *end || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

/* "row 17, customer_id=4096" for messages. */
static void row_where(const struct rd *r, const struct db_row *row,
                      char *buf, size_t cap)
{
  size_t n = r->s->n_rows + 1;
  const char *k = r->key_col >= 0 ? db_row_str(row, r->key_col, NULL) : NULL;
  if (k)
    snprintf(buf, cap, "row %zu, %s=%.40s", n, r->spec->source.key, k);
  else
    snprintf(buf, cap, "row %zu", n);
}

static int rd_row(void *user, const struct db_row *row)
{
  struct rd *r = user;
  struct fstore_set *s = r->s;
  const struct spec *sp = r->spec;
  char where[128];
  size_t i = s->n_rows;
  if (i >= FSTORE_MAX_ROWS)
    return rd_fail(r, ERR_INVAL,
                   "%s: more than %zu rows for one training set", r->table,
                   (size_t)FSTORE_MAX_ROWS);
  if (i == r->cap && rd_grow(r))
    return rd_fail(r, ERR_NOMEM, "%s: out of memory at row %zu", r->table,
                   i + 1);
  if (r->cancel && i % CANCEL_EVERY == 0 && r->cancel(r->cancel_ud))
    return rd_fail(r, ERR_CANCELED, "%s: reading cancelled at row %zu",
                   r->table, i + 1);
  for (size_t j = 0; j < s->n_features; j++) {
    size_t len = 0;
    const char *v = db_row_str(row, (int)j, &len);
    if (sp->features[j].kind == SPEC_NUMERIC) {
      double d = NAN;
      if (v && parse_num(v, len, &d)) {
        row_where(r, row, where, sizeof(where));
        return rd_fail(r, ERR_INVAL,
                       "%s: column %s (%s): '%.40s' is not a finite number",
                       r->table, sp->features[j].name, where, v);
      }
      ((double *)s->cols[j].num)[i] = d;
    } else {
      const char *p = NULL;
      if (v && !(p = arena_intern(s->arena, v, len)))
        return rd_fail(r, ERR_NOMEM, "%s: out of memory at row %zu",
                       r->table, i + 1);
      ((const char **)s->cols[j].str)[i] = p;
    }
  }
  size_t tlen = 0;
  const char *t = db_row_str(row, r->target_col, &tlen);
  if (!t) {
    row_where(r, row, where, sizeof(where));
    return rd_fail(r, ERR_INVAL, "%s: label column %s is NULL (%s)",
                   r->table, sp->target.column, where);
  }
  if (sp->task == SPEC_TASK_REGRESSION) {
    if (parse_num(t, tlen, &s->target[i])) {
      row_where(r, row, where, sizeof(where));
      return rd_fail(r, ERR_INVAL,
                     "%s: target %s (%s): '%.40s' is not a finite number",
                     r->table, sp->target.column, where, t);
    }
  } else {
    int k = spec_class_index(sp, t);
    if (k < 0) {
      char cls[256];
      size_t n = 0;
      cls[0] = '\0';
      for (size_t c = 0; c < sp->target.n_classes && n < sizeof(cls); c++)
        n += (size_t)snprintf(cls + n, sizeof(cls) - n, "%s%s",
                              c ? ", " : "", sp->target.classes[c]);
      row_where(r, row, where, sizeof(where));
      return rd_fail(r, ERR_INVAL,
                     "%s: label '%.60s' in column %s (%s) is not one of "
                     "the classes %s",
                     r->table, t, sp->target.column, where, cls);
    }
    s->labels[i] = k;
  }
  if (r->key_col >= 0) {
    size_t klen = 0;
    const char *k = db_row_str(row, r->key_col, &klen);
    const char *p = NULL;
    if (k && !(p = arena_intern(s->arena, k, klen)))
      return rd_fail(r, ERR_NOMEM, "%s: out of memory at row %zu", r->table,
                     i + 1);
    s->keys[i] = p;
  }
  /* row keys: rows come in primary-key order, so a value equal to the
   * previous row's (the snapshot date, a leading key column) shares its
   * copy; others (mostly unique ids) are stored without interning */
  for (size_t k = 0; k < r->n_rk; k++) {
    size_t klen = 0;
    const char *v = db_row_str(row, r->rk_col + (int)k, &klen);
    const char *prev = i > 0 ? s->row_keys[(i - 1) * r->n_rk + k] : NULL;
    const char *p = NULL;
    if (v && prev && strlen(prev) == strnlen(v, klen) &&
        memcmp(prev, v, strlen(prev)) == 0)
      p = prev;
    else if (v && !(p = arena_put(s->arena, v, strnlen(v, klen))))
      return rd_fail(r, ERR_NOMEM, "%s: out of memory at row %zu", r->table,
                     i + 1);
    s->row_keys[i * r->n_rk + k] = p;
  }
  s->n_rows = i + 1;
  return 0;
}

static int same_str(const char *a, const char *b)
{
  return a == b || (a && b && strcmp(a, b) == 0);
}

/* Keep the row-key columns whose value varies over the set (all of them
 * when none varies: fewer than 2 rows). */
static void prune_row_keys(struct fstore_set *s, size_t n_rk)
{
  int keep[MAX_PK_COLS];
  size_t n_keep = 0;
  for (size_t k = 0; k < n_rk; k++) {
    keep[k] = 0;
    for (size_t i = 1; i < s->n_rows && !keep[k]; i++)
      keep[k] = !same_str(s->row_keys[i * n_rk + k], s->row_keys[k]);
    n_keep += (size_t)keep[k];
  }
  if (n_keep == 0 || n_keep == n_rk) {
    s->n_row_key_cols = n_rk;
    return;
  }
  size_t o = 0;
  for (size_t i = 0; i < s->n_rows; i++)
    for (size_t k = 0; k < n_rk; k++)
      if (keep[k])
        s->row_keys[o++] = s->row_keys[i * n_rk + k];
  size_t c = 0;
  for (size_t k = 0; k < n_rk; k++)
    if (keep[k]) {
      if (c != k)
        memcpy(s->row_key_cols[c], s->row_key_cols[k],
               sizeof(s->row_key_cols[0]));
      c++;
    }
  s->n_row_key_cols = n_keep;
}

void fstore_set_free(struct fstore_set *s)
{
  if (!s)
    return;
  if (s->cols)
    for (size_t j = 0; j < s->n_features; j++) {
      free((void *)s->cols[j].num);
      free((void *)s->cols[j].str);
    }
  free(s->cols);
  free(s->labels);
  free(s->target);
  free(s->keys);
  free(s->row_keys);
  arena_free(s->arena);
  free(s);
}

/* SELECT list: features, target, key (if any). */
static int select_list(const struct spec *sp, char *sql, size_t cap,
                       size_t *len, int *target_col, int *key_col)
{
  if (sql_addf(sql, cap, len, "SELECT "))
    return -1;
  for (size_t j = 0; j < sp->n_features; j++)
    if (sql_addf(sql, cap, len, "%s`%s`", j ? ", " : "",
                 sp->features[j].name))
      return -1;
  *target_col = (int)sp->n_features;
  if (sql_addf(sql, cap, len, ", `%s`", sp->target.column))
    return -1;
  *key_col = -1;
  if (sp->source.key) {
    *key_col = (int)sp->n_features + 1;
    if (sql_addf(sql, cap, len, ", `%s`", sp->source.key))
      return -1;
  }
  return 0;
}

/* " FROM ... WHERE ..." of the training query: the table (with
 * train_window.rows: its newest rows by the window column, as a derived
 * table), the spec's filter, train_window.days and the shard.  0, or -1
 * when the query does not fit. */
static int from_where(const struct spec *spec, struct fstore_set *s,
                      const char *tq, const char *filter, const char *ds,
                      int shards, int rank, size_t *len)
{
  const char *wcol = spec->window.column;
  char *q = s->sql;
  size_t cap = sizeof(s->sql);
  int bad, where = 0;
  if (wcol && spec->window.rows > 0) {
    bad = sql_addf(q, cap, len, " FROM (SELECT * FROM %s", tq) ||
          (filter && sql_addf(q, cap, len, " WHERE (%s)", filter)) ||
          sql_addf(q, cap, len, " ORDER BY `%s` DESC", wcol);
    for (size_t k = 0; k < s->n_row_key_cols && !bad; k++)
      bad = sql_addf(q, cap, len, ", `%s` DESC", s->row_key_cols[k]);
    if (!bad)
      bad = sql_addf(q, cap, len, " LIMIT %ld) AS w", spec->window.rows);
  } else {
    bad = sql_addf(q, cap, len, " FROM %s", tq) ||
          (filter && sql_addf(q, cap, len, " WHERE (%s)", filter));
    where = filter != NULL;
    /* ds is a checked YYYY-MM-DD: compared as text, so a varchar date
     * column such as the course's works as a DATE one does */
    if (!bad && wcol && spec->window.days > 0) {
      bad = sql_addf(q, cap, len,
                     " %s `%s` > DATE_FORMAT(DATE_SUB(DATE('%s'), INTERVAL "
                     "%ld DAY), '%%Y-%%m-%%d') AND `%s` <= '%s'",
                     where ? "AND" : "WHERE", wcol, ds, spec->window.days,
                     wcol, ds);
      where = 1;
    }
  }
  if (!bad && shards > 1)
    bad = sql_addf(q, cap, len, " %s MOD(`%s`, %d) = %d",
                   where ? "AND" : "WHERE", spec->source.key, shards, rank);
  return bad ? -1 : 0;
}

/* train_window.rows with fewer rows: refuse (ERR_NOTFOUND, saying so). */
static enum err_code window_short(const struct spec *spec,
                                  const struct fstore_set *s,
                                  const char *filter, int shards,
                                  struct err *e)
{
  if (!spec->window.column || spec->window.rows <= 0 || shards > 1 ||
      s->n_rows >= (size_t)spec->window.rows)
    return ERR_OK;
  char fw[300];
  filter_words(filter ? filter : "TRUE", fw, sizeof(fw));
  return err_set(e, ERR_NOTFOUND,
                 "%s: train_window.rows is %ld but %s has only %zu rows %s: "
                 "not trained (a smaller set would not be comparable)",
                 spec->path, spec->window.rows, spec->source.table,
                 s->n_rows, fw);
}

enum err_code fstore_read_training(struct db_pool *db,
                                   const struct spec *spec, const char *ds,
                                   fstore_cancel_fn cancel, void *cancel_ud,
                                   struct fstore_set **out, struct err *e)
{
  return fstore_read_training_shard(db, spec, ds, 1, 0, cancel, cancel_ud,
                                    out, e);
}

enum err_code fstore_read_training_shard(struct db_pool *db,
                                         const struct spec *spec,
                                         const char *ds, int shards,
                                         int rank, fstore_cancel_fn cancel,
                                         void *cancel_ud,
                                         struct fstore_set **out,
                                         struct err *e)
{
  *out = NULL;
  if (shards > 1 && (!spec || !spec->source.key || rank < 0 ||
                     rank >= shards))
    return err_set(e, ERR_INVAL, "fstore: %d shards need source.key in the "
                                 "spec (rows go to MOD(key, %d) = rank)",
                   shards, shards);
  if (!db || !spec)
    return err_set(e, ERR_INVAL, "fstore: no database or spec");
  if (!ds_valid(ds))
    return err_set(e, ERR_INVAL,
                   "fstore: logical date '%.40s' is not a valid YYYY-MM-DD "
                   "date",
                   ds ? ds : "(null)");
  char tq[200], schema[72], name[72];
  if (quote_table(spec->source.table, tq, sizeof(tq), schema, sizeof(schema),
                  name, sizeof(name)))
    return err_set(e, ERR_INVAL, "fstore: table name '%.100s' is not a "
                                 "plain identifier",
                   spec->source.table);
  char *filter = NULL;
  if (spec->source.filter) {
    struct tmpl_ctx tc = {.ds = ds};
    struct tmpl_binds binds = {0};
    enum err_code rc =
        tmpl_render(spec->source.filter, &tc, TMPL_SQL, &filter, &binds, e);
    size_t nb = binds.n;
    tmpl_binds_free(&binds);
    if (rc != ERR_OK) {
      err_prefix(e, "%s: source.filter", spec->path);
      return rc;
    }
    if (nb) {
      free(filter);
      return err_set(e, ERR_INVAL, "%s: source.filter: placeholders are "
                                   "not allowed",
                     spec->path);
    }
  }

  struct fstore_set *s = calloc(1, sizeof(*s));
  struct rd r = {.spec = spec, .s = s, .table = spec->source.table,
                 .cancel = cancel, .cancel_ud = cancel_ud};
  enum err_code rc = ERR_OK;
  struct db_conn *c = NULL;
  if (!s || !(s->arena = calloc(1, sizeof(*s->arena))) ||
      !(s->cols = calloc(spec->n_features ? spec->n_features : 1,
                         sizeof(*s->cols)))) {
    rc = err_set(e, ERR_NOMEM, "fstore: out of memory");
    goto fail;
  }
  s->n_features = spec->n_features;
  if ((rc = db_acquire(db, FSTORE_ACQUIRE_MS, &c, e)) != ERR_OK)
    goto fail;
  struct pk_ctx pk;
  if ((rc = primary_key(c, schema, name, &pk, e)) != ERR_OK)
    goto fail;
  /* row-key columns: the primary key, else source.key */
  if (pk.n > 0) {
    s->n_row_key_cols = (size_t)pk.n;
    for (int k = 0; k < pk.n; k++)
      snprintf(s->row_key_cols[k], sizeof(s->row_key_cols[0]), "%s",
               pk.cols[k]);
  } else if (spec->source.key) {
    s->n_row_key_cols = 1;
    snprintf(s->row_key_cols[0], sizeof(s->row_key_cols[0]), "%s",
             spec->source.key);
  }
  r.n_rk = s->n_row_key_cols;
  size_t len = 0;
  int bad = select_list(spec, s->sql, sizeof(s->sql), &len, &r.target_col,
                        &r.key_col);
  r.rk_col = (int)spec->n_features + 1 + (spec->source.key ? 1 : 0);
  for (size_t k = 0; k < r.n_rk && !bad; k++)
    bad = sql_addf(s->sql, sizeof(s->sql), &len, ", `%s`",
                   s->row_key_cols[k]);
  if (spec->window.rows > 0 && r.n_rk == 0 &&
      (rc = err_set(e, ERR_INVAL, "%s: train_window.rows needs a primary "
                                  "key on %s or source.key (ties at the "
                                  "edge)",
                    spec->path, spec->source.table)))
    goto fail;
  bad = bad || from_where(spec, s, tq, filter, ds, shards, rank, &len);
  if (!bad)
    bad = sql_addf(s->sql, sizeof(s->sql), &len, " ORDER BY ");
  if (pk.n > 0) {
    for (int k = 0; k < pk.n && !bad; k++)
      bad = sql_addf(s->sql, sizeof(s->sql), &len, "%s`%s`", k ? ", " : "",
                     pk.cols[k]);
  } else {
    /* No primary key: order by every selected column so equal rows are
     * the only ones whose order is left open (and they are equal). */
    int ncol = (int)spec->n_features + 1 + (spec->source.key ? 1 : 0);
    if (spec->source.key && !bad)
      bad = sql_addf(s->sql, sizeof(s->sql), &len, "`%s`, ",
                     spec->source.key);
    for (int k = 1; k <= ncol && !bad; k++)
      bad = sql_addf(s->sql, sizeof(s->sql), &len, "%s%d", k > 1 ? ", " : "",
                     k);
  }
  if (bad) {
    rc = err_set(e, ERR_INVAL, "fstore: query for %s longer than %d bytes",
                 spec->source.table, FSTORE_SQL_MAX);
    goto fail;
  }
  double t0 = mono_s();
  rc = db_query(c, s->sql, NULL, 0, rd_row, &r, NULL, e);
  s->read_s = mono_s() - t0;
  if (rc != ERR_OK) {
    err_prefix(e, "reading training rows from %s", spec->source.table);
    goto fail;
  }
  if (r.failed) {
    rc = r.err.code;
    err_set(e, rc, "%s", r.err.msg);
    goto fail;
  }
  if ((rc = window_short(spec, s, filter, shards, e)) != ERR_OK)
    goto fail;
  if (s->n_rows == 0) {
    char fw[300];
    filter_words(filter ? filter : "TRUE", fw, sizeof(fw));
    rc = err_set(e, ERR_NOTFOUND, "no training rows in %s %s",
                 spec->source.table, fw);
    goto fail;
  }
  db_release(db, c);
  if (r.n_rk > 0)
    prune_row_keys(s, r.n_rk);
  s->input.n_rows = s->n_rows;
  s->input.n_cols = s->n_features;
  s->input.cols = s->cols;
  s->n_distinct_strings = s->arena->n_used;
  s->arena_bytes = s->arena->bytes;
  free(filter);
  *out = s;
  return ERR_OK;
fail:
  db_release(db, c);
  free(filter);
  fstore_set_free(s);
  return rc;
}

/* ---- canonical hash ----------------------------------------------------- */

static void put_u32(struct sha256_ctx *c, uint32_t v)
{
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                  (uint8_t)(v >> 24)};
  sha256_update(c, b, 4);
}

static void put_f64(struct sha256_ctx *c, double d)
{
  uint64_t u;
  if (isnan(d))
    u = 0x7ff8000000000000ull;
  else
    memcpy(&u, &d, 8);
  uint8_t b[8];
  for (int k = 0; k < 8; k++)
    b[k] = (uint8_t)(u >> (8 * k));
  sha256_update(c, b, 8);
}

static void put_str(struct sha256_ctx *c, const char *s)
{
  if (!s) {
    put_u32(c, 0xffffffffu);
    return;
  }
  size_t n = strlen(s);
  put_u32(c, (uint32_t)n);
  sha256_update(c, s, n);
}

void fstore_set_sha256(const struct fstore_set *s, const struct spec *spec,
                       char out[SHA256_HEX_LEN])
{
  struct sha256_ctx c;
  uint8_t d[SHA256_DIGEST_LEN];
  sha256_init(&c);
  sha256_update(&c, "mlopsd.data.v1\n", 15);
  for (size_t j = 0; j < s->n_features; j++) {
    sha256_update(&c, spec->features[j].name,
                  strlen(spec->features[j].name));
    sha256_update(&c, "\n", 1);
    for (size_t i = 0; i < s->n_rows; i++) {
      if (s->cols[j].num)
        put_f64(&c, s->cols[j].num[i]);
      else
        put_str(&c, s->cols[j].str[i]);
    }
  }
  sha256_update(&c, spec->target.column, strlen(spec->target.column));
  sha256_update(&c, "\n", 1);
  for (size_t i = 0; i < s->n_rows; i++) {
    if (s->target)
      put_f64(&c, s->target[i]);
    else
      put_str(&c, spec->target.classes[s->labels[i]]);
  }
  sha256_final(&c, d);
  sha256_hex(d, out);
}

/* ---- point lookup ------------------------------------------------------- */

struct lk {
  const struct spec *spec;
  cJSON *obj;
  int oom;
};

cJSON *fstore_key_json(const char *k)
{
  const char *p = k;
  if (*p == '-')
    p++;
  size_t n = strlen(p);
  int digits = n > 0 && n < 16 && (p[0] != '0' || n == 1);
  for (size_t i = 0; digits && i < n; i++)
    digits = p[i] >= '0' && p[i] <= '9';
  return digits ? cJSON_CreateNumber(strtod(k, NULL)) : cJSON_CreateString(k);
}

static int lk_row(void *user, const struct db_row *row)
{
  struct lk *l = user;
  const struct spec *sp = l->spec;
  cJSON *o = cJSON_CreateObject();
  if (!o) {
    l->oom = 1;
    return 1;
  }
  const char *k = db_row_str(row, (int)sp->n_features, NULL);
  cJSON *kv = k ? fstore_key_json(k) : cJSON_CreateNull();
  if (!kv || !cJSON_AddItemToObject(o, sp->source.key, kv))
    l->oom = 1;
  for (size_t j = 0; j < sp->n_features && !l->oom; j++) {
    size_t len = 0;
    const char *v = db_row_str(row, (int)j, &len);
    cJSON *x;
    double d;
    if (!v)
      x = cJSON_CreateNull();
    else if (sp->features[j].kind == SPEC_NUMERIC)
      x = parse_num(v, len, &d) ? cJSON_CreateString(v)
                                : cJSON_CreateNumber(d);
    else
      x = cJSON_CreateString(v);
    if (!x || !cJSON_AddItemToObject(o, sp->features[j].name, x))
      l->oom = 1;
  }
  l->obj = o;
  return 1;
}

enum err_code fstore_lookup(struct db_pool *db, const struct spec *spec,
                            const char *key, cJSON **out, struct err *e)
{
  *out = NULL;
  if (!spec->source.key)
    return err_set(e, ERR_INVAL, "model %s: the spec has no source.key",
                   spec->name);
  char tq[200], schema[72], name[72], sql[FSTORE_SQL_MAX];
  if (quote_table(spec->source.table, tq, sizeof(tq), schema, sizeof(schema),
                  name, sizeof(name)))
    return err_set(e, ERR_INVAL, "fstore: bad table name");
  size_t len = 0;
  if (sql_addf(sql, sizeof(sql), &len, "SELECT "))
    return err_set(e, ERR_INVAL, "fstore: query too long");
  for (size_t j = 0; j < spec->n_features; j++)
    if (sql_addf(sql, sizeof(sql), &len, "`%s`, ", spec->features[j].name))
      return err_set(e, ERR_INVAL, "fstore: query too long");
  if (sql_addf(sql, sizeof(sql), &len, "`%s` FROM %s WHERE `%s` = ?",
               spec->source.key, tq, spec->source.key))
    return err_set(e, ERR_INVAL, "fstore: query too long");
  struct db_conn *c = NULL;
  enum err_code rc = db_acquire(db, FSTORE_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  struct pk_ctx pk;
  if ((rc = primary_key(c, schema, name, &pk, e)) != ERR_OK)
    goto out;
  for (int k = 0; k < pk.n; k++)
    if (sql_addf(sql, sizeof(sql), &len, "%s`%s` DESC",
                 k ? ", " : " ORDER BY ", pk.cols[k])) {
      rc = err_set(e, ERR_INVAL, "fstore: query too long");
      goto out;
    }
  if (sql_addf(sql, sizeof(sql), &len, " LIMIT 1")) {
    rc = err_set(e, ERR_INVAL, "fstore: query too long");
    goto out;
  }
  struct lk l = {.spec = spec};
  struct db_val p[1] = {DB_V_STR(key)};
  rc = db_query(c, sql, p, 1, lk_row, &l, NULL, e);
  if (rc == ERR_OK && l.oom)
    rc = err_set(e, ERR_NOMEM, "fstore: out of memory");
  else if (rc == ERR_OK && !l.obj)
    rc = err_set(e, ERR_NOTFOUND, "no row in %s with %s=%.60s",
                 spec->source.table, spec->source.key, key);
  if (rc == ERR_OK)
    *out = l.obj;
  else
    cJSON_Delete(l.obj);
out:
  db_release(db, c);
  return rc;
}
