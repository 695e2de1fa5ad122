/* db_result.c - reading results (db.h): db_query streams the rows of a
 * prepared statement into per-statement column buffers (see db.c for why
 * every column is bound as a string and FLOAT/DOUBLE as a double), the
 * db_row accessors read them, db_query_i64 reads one number.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errmsg.h>
#include <mysql.h>

#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "db_int.h"

static unsigned long col_initial_cap(const MYSQL_FIELD *f)
{
  if (f && (f->type == MYSQL_TYPE_FLOAT || f->type == MYSQL_TYPE_DOUBLE))
    return DB_COL_NUM;
  unsigned long want = f ? f->length + 1 : DB_COL_MIN;
  if (want < DB_COL_MIN)
    want = DB_COL_MIN;
  if (want > DB_COL_INIT_MAX)
    want = DB_COL_INIT_MAX;
  return want;
}

/* A FLOAT/DOUBLE column's text: the shortest "%.Ng" that reads back as
 * the same value (float precision for FLOAT), as the client library's own
 * string conversion gives; done here because some libmariadb versions
 * (3.x of 10.11.18) return '' for a DOUBLE bound as a string.  cap >= 32:
 * "%.17g" needs at most 24 characters plus the NUL. */
static void num_format(struct db_col *col)
{
  int n = 0;
  if (col->num == MYSQL_TYPE_FLOAT) {
    float f = (float)col->d;
    for (int p = 6; p <= 9; p++) {
      n = snprintf(col->buf, col->cap, "%.*g", p, (double)f);
      if (strtof(col->buf, NULL) == f)
        break;
    }
  } else {
    for (int p = 15; p <= 17; p++) {
      n = snprintf(col->buf, col->cap, "%.*g", p, col->d);
      if (strtod(col->buf, NULL) == col->d)
        break;
    }
  }
  col->len = n > 0 && (unsigned long)n < col->cap ? (unsigned long)n : 0;
}

/* Make s ready to receive ncols string columns. */
static enum err_code cols_setup(struct db_conn *c, struct db_stmt *s,
                                unsigned ncols, MYSQL_RES *meta,
                                struct err *e)
{
  if (ncols > s->ccap) {
    struct db_col *nc = realloc(s->cols, ncols * sizeof(*nc));
    if (nc)
      s->cols = nc;
    MYSQL_BIND *nb = nc ? realloc(s->rbind, ncols * sizeof(*nb)) : NULL;
    if (!nc || !nb) {
      c->last_errno = 0;
      return err_set(e, ERR_NOMEM, "db: out of memory for %u columns",
                     ncols);
    }
    s->rbind = nb;
    memset(s->cols + s->ccap, 0, (ncols - s->ccap) * sizeof(*nc));
    s->ccap = ncols;
  }
  for (unsigned i = 0; i < ncols; i++) {
    struct db_col *col = &s->cols[i];
    MYSQL_FIELD *f = meta ? mysql_fetch_field_direct(meta, i) : NULL;
    unsigned long want = col_initial_cap(f);
    if (!col->buf || col->cap < want) {
      char *nb = realloc(col->buf, want);
      if (!nb) {
        c->last_errno = 0;
        return err_set(e, ERR_NOMEM, "db: out of memory for a column");
      }
      col->buf = nb;
      col->cap = want;
    }
    MYSQL_BIND *b = &s->rbind[i];
    memset(b, 0, sizeof(*b));
    col->num = f && (f->type == MYSQL_TYPE_FLOAT ||
                     f->type == MYSQL_TYPE_DOUBLE)
                   ? (int)f->type
                   : 0;
    if (col->num) { /* formatted in C: see num_format() */
      b->buffer_type = MYSQL_TYPE_DOUBLE;
      b->buffer = &col->d;
      b->buffer_length = sizeof(col->d);
    } else {
      b->buffer_type = MYSQL_TYPE_STRING;
      b->buffer = col->buf;
      b->buffer_length = col->cap;
    }
    b->length = &col->len;
    b->is_null = &col->is_null;
    b->error = &col->error;
  }
  return ERR_OK;
}

/* Values longer than their buffer: fetch them again into a bigger one,
 * then rebind so the next rows use it. */
static enum err_code cols_refetch(struct db_conn *c, struct db_stmt *s,
                                  unsigned ncols, const char *sql,
                                  struct err *e)
{
  int rebind = 0;
  for (unsigned i = 0; i < ncols; i++) {
    struct db_col *col = &s->cols[i];
    if (col->is_null || col->num || col->len < col->cap)
      continue;
    unsigned long cap = col->cap;
    while (cap <= col->len)
      cap = cap * 2 > col->len + 1 ? cap * 2 : col->len + 1;
    char *nb = realloc(col->buf, cap);
    if (!nb) {
      c->last_errno = 0;
      return err_set(e, ERR_NOMEM, "db: out of memory for a %lu-byte value",
                     col->len);
    }
    col->buf = nb;
    col->cap = cap;
    MYSQL_BIND b;
    unsigned long len = 0;
    my_bool isnull = 0, error = 0;
    memset(&b, 0, sizeof(b));
    b.buffer_type = MYSQL_TYPE_STRING;
    b.buffer = nb;
    b.buffer_length = cap;
    b.length = &len;
    b.is_null = &isnull;
    b.error = &error;
    if (mysql_stmt_fetch_column(s->st, &b, i, 0) != 0)
      return db_stmt_fail(c, s->st, sql, e);
    col->len = len < cap ? len : cap - 1;
    s->rbind[i].buffer = nb;
    s->rbind[i].buffer_length = cap;
    rebind = 1;
  }
  if (rebind && mysql_stmt_bind_result(s->st, s->rbind) != 0)
    return db_stmt_fail(c, s->st, sql, e);
  return ERR_OK;
}

static void cols_trim(struct db_stmt *s)
{
  for (unsigned i = 0; i < s->ccap; i++) {
    if (s->cols[i].cap > DB_COL_KEEP) {
      FREE_NULL(s->cols[i].buf);
      s->cols[i].cap = 0;
    }
  }
}

enum err_code db_query(struct db_conn *c, const char *sql,
                       const struct db_val *params, int nparams,
                       db_row_fn cb, void *user, int64_t *nrows,
                       struct err *e)
{
  if (nrows)
    *nrows = 0;
  struct db_stmt *s;
  enum err_code rc = db_stmt_start(c, sql, params, nparams, &s, e);
  if (rc != ERR_OK)
    return rc;
  unsigned ncols = mysql_stmt_field_count(s->st);
  if (ncols == 0) {
    c->last_insert_id = (int64_t)mysql_stmt_insert_id(s->st);
    return db_stmt_drain(c, s, sql, e);
  }
  MYSQL_RES *meta = mysql_stmt_result_metadata(s->st);
  rc = cols_setup(c, s, ncols, meta, e);
  if (rc == ERR_OK && mysql_stmt_bind_result(s->st, s->rbind) != 0)
    rc = db_stmt_fail(c, s->st, sql, e);
  struct db_row row = {.s = s, .meta = meta, .ncols = ncols};
  int64_t n = 0;
  c->busy = 1;
  while (rc == ERR_OK) {
    int r = mysql_stmt_fetch(s->st);
    if (r == MYSQL_NO_DATA)
      break;
    if (r == 1) {
      rc = db_stmt_fail(c, s->st, sql, e);
      break;
    }
    /* 0 or MYSQL_DATA_TRUNCATED: check the lengths either way */
    rc = cols_refetch(c, s, ncols, sql, e);
    if (rc != ERR_OK)
      break;
    for (unsigned i = 0; i < ncols; i++) {
      if (s->cols[i].is_null)
        continue;
      if (s->cols[i].num)
        num_format(&s->cols[i]);
      s->cols[i].buf[s->cols[i].len] = '\0';
    }
    n++;
    if (cb && cb(user, &row) != 0)
      break;
  }
  c->busy = 0;
  if (meta)
    mysql_free_result(meta);
  if (!c->broken) {
    struct err e2;
    enum err_code rc2 = db_stmt_drain(c, s, sql, rc == ERR_OK ? e : &e2);
    if (rc == ERR_OK)
      rc = rc2;
  }
  if (!c->broken)
    cols_trim(s);
  if (nrows)
    *nrows = n;
  return rc;
}

int db_row_ncols(const struct db_row *r)
{
  return r ? (int)r->ncols : 0;
}

const char *db_row_name(const struct db_row *r, int col)
{
  if (!r || !r->meta || col < 0 || (unsigned)col >= r->ncols)
    return "";
  MYSQL_FIELD *f = mysql_fetch_field_direct(r->meta, (unsigned)col);
  return f && f->name ? f->name : "";
}

int db_row_is_null(const struct db_row *r, int col)
{
  if (!r || col < 0 || (unsigned)col >= r->ncols)
    return 1;
  return r->s->cols[col].is_null != 0;
}

const char *db_row_str(const struct db_row *r, int col, size_t *len)
{
  if (len)
    *len = 0;
  if (db_row_is_null(r, col))
    return NULL;
  if (len)
    *len = r->s->cols[col].len;
  return r->s->cols[col].buf;
}

void db_row_copy(const struct db_row *r, int col, char *buf, size_t cap)
{
  const char *s = db_row_str(r, col, NULL);
  snprintf(buf, cap, "%s", s ? s : "");
}

int64_t db_row_i64(const struct db_row *r, int col)
{
  const char *s = db_row_str(r, col, NULL);
  return s ? (int64_t)strtoll(s, NULL, 10) : 0;
}

double db_row_f64(const struct db_row *r, int col)
{
  const char *s = db_row_str(r, col, NULL);
  return s ? strtod(s, NULL) : NAN;
}

struct first_i64 {
  int got, null;
  int64_t v;
};

static int first_i64_cb(void *user, const struct db_row *row)
{
  struct first_i64 *f = user;
  f->got = 1;
  f->null = db_row_is_null(row, 0);
  f->v = db_row_i64(row, 0);
  return 1;
}

enum err_code db_query_i64(struct db_conn *c, const char *sql,
                           const struct db_val *params, int nparams,
                           int64_t *out, struct err *e)
{
  struct first_i64 f = {0, 0, 0};
  char brief[DB_SQL_BRIEF + 8];
  enum err_code rc =
      db_query(c, sql, params, nparams, first_i64_cb, &f, NULL, e);
  if (rc != ERR_OK)
    return rc;
  if (!f.got)
    return err_set(e, ERR_NOTFOUND, "%s: no row",
                   db_sql_brief(sql, brief, sizeof(brief)));
  if (f.null)
    return err_set(e, ERR_NOTFOUND, "%s: value is NULL",
                   db_sql_brief(sql, brief, sizeof(brief)));
  if (out)
    *out = f.v;
  return ERR_OK;
}
