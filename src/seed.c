/* seed.c - loads the course's sample CSVs into MariaDB (`mlopsd db seed`).
 *
 * The course loads these files with LOAD DATA INFILE, which needs the FILE
 * privilege or local-infile and turns bad values into warnings (empty ->
 * 0).  Here the files are parsed in C instead: every value is checked
 * against its column first, so a bad one is reported as FILE:LINE: column,
 * empty fields become NULL, and the rows go in with batched prepared
 * INSERTs (db_bulk_insert), one transaction per table.
 *
 * The column lists below mirror sql/migrations/001_course_tables.sql; a
 * file's header must name the same columns in the same order.
 */
#include "mlopsd/seed.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/vec.h"

#define CSV_MAX_RECORD (1024 * 1024) /* bytes of one record */
#define CSV_MAX_FIELDS 1024
#define SEED_CHUNK 2000               /* rows parsed per db_bulk_insert */
#define SEED_BATCH 500                /* rows per INSERT statement */
#define TEXT_MAX_BYTES 65535          /* a TEXT column */

/* ----------------------------------------------------------- CSV reader */

struct seed_csv {
  FILE *f;
  int own;             /* close f in seed_csv_close */
  char name[512];
  int push[4];         /* bytes pushed back (stack) */
  int npush;
  int bom_checked;
  char *buf;           /* fields of the record, each NUL-terminated */
  size_t len, cap;
  struct field {
    size_t off, len;     /* in buf */
    int quoted;
  } *fields;
  int nf;
  size_t fcap;
  long line;           /* line of the next byte */
  long rec_line;       /* line where the last record started */
};

static int rd(struct seed_csv *r)
{
  if (r->npush > 0)
    return r->push[--r->npush];
  return getc_unlocked(r->f);
}

static void unrd(struct seed_csv *r, int c)
{
  if (c != EOF)
    r->push[r->npush++] = c;
}

static enum err_code csv_new(struct seed_csv **out, FILE *f, int own,
                             const char *name, struct err *e)
{
  struct seed_csv *r = calloc(1, sizeof(*r));
  if (!r)
    return err_set(e, ERR_NOMEM, "out of memory");
  r->f = f;
  r->own = own;
  snprintf(r->name, sizeof(r->name), "%s", name ? name : "(csv)");
  r->line = 1;
  *out = r;
  return ERR_OK;
}

enum err_code seed_csv_open(struct seed_csv **out, const char *path,
                            struct err *e)
{
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f)
    return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
  enum err_code rc = csv_new(out, f, 1, path, e);
  if (rc != ERR_OK)
    fclose(f);
  return rc;
}

enum err_code seed_csv_from(struct seed_csv **out, FILE *f, const char *name,
                            struct err *e)
{
  *out = NULL;
  return csv_new(out, f, 0, name, e);
}

void seed_csv_close(struct seed_csv *r)
{
  if (!r)
    return;
  if (r->own && r->f)
    fclose(r->f);
  free(r->buf);
  free(r->fields);
  free(r);
}

static enum err_code put(struct seed_csv *r, char c, struct err *e)
{
  if (r->len + 1 >= r->cap) {
    if (r->cap >= CSV_MAX_RECORD)
      return err_set(e, ERR_PARSE, "%s:%ld: record longer than %d bytes",
                     r->name, r->rec_line, CSV_MAX_RECORD);
    if (VEC_RESERVE(r->buf, r->cap, r->len + 2))
      return err_set(e, ERR_NOMEM, "out of memory");
  }
  r->buf[r->len++] = c;
  return ERR_OK;
}

static enum err_code field_begin(struct seed_csv *r, struct err *e)
{
  if (r->nf == CSV_MAX_FIELDS)
    return err_set(e, ERR_PARSE, "%s:%ld: more than %d fields", r->name,
                   r->rec_line, CSV_MAX_FIELDS);
  if (VEC_RESERVE(r->fields, r->fcap, (size_t)r->nf + 1))
    return err_set(e, ERR_NOMEM, "out of memory");
  r->fields[r->nf].off = r->len;
  r->fields[r->nf].quoted = 0;
  return ERR_OK;
}

static enum err_code field_end(struct seed_csv *r, struct err *e)
{
  size_t l = r->len - r->fields[r->nf].off;
  enum err_code rc = put(r, '\0', e);
  if (rc != ERR_OK)
    return rc;
  r->fields[r->nf++].len = l;
  return ERR_OK;
}

/* Is c (just read) a line end?  Swallows the \n of \r\n. */
static int line_end(struct seed_csv *r, int c)
{
  if (c == '\n')
    return 1;
  if (c == '\r') {
    int d = rd(r);
    if (d == '\n')
      return 1;
    unrd(r, d);
  }
  return 0;
}

enum err_code seed_csv_next(struct seed_csv *r, int *nfields, struct err *e)
{
  enum err_code rc;
  int c;
  *nfields = 0;
  r->nf = 0;
  r->len = 0;
  if (!r->bom_checked) {
    r->bom_checked = 1;
    int a = rd(r);
    if (a == 0xEF) {
      int b = rd(r);
      int d = b == 0xBB ? rd(r) : EOF;
      if (!(b == 0xBB && d == 0xBF)) { /* not a BOM: give the bytes back */
        unrd(r, d);
        unrd(r, b);
        unrd(r, a);
      }
    } else {
      unrd(r, a);
    }
  }
  /* Skip wholly empty lines. */
  for (;;) {
    c = rd(r);
    if (c == EOF) {
      if (ferror(r->f))
        return err_set(e, ERR_IO, "%s:%ld: read error", r->name, r->line);
      return ERR_OK;
    }
    if (!line_end(r, c))
      break;
    r->line++;
  }
  r->rec_line = r->line;
  for (;;) {
    if ((rc = field_begin(r, e)) != ERR_OK)
      return rc;
    if (c == '"') {
      long open_line = r->line;
      r->fields[r->nf].quoted = 1;
      for (;;) {
        c = rd(r);
        if (c == EOF)
          return err_set(e, ERR_PARSE,
                         "%s:%ld: unterminated quoted field (opened on line "
                         "%ld)",
                         r->name, r->line, open_line);
        if (c == '"') {
          c = rd(r);
          if (c != '"')
            break; /* closing quote; c is the byte after it */
        } else if (c == '\n') {
          r->line++;
        }
        if ((rc = put(r, (char)c, e)) != ERR_OK)
          return rc;
      }
      if (c != ',' && c != EOF && !line_end(r, c))
        return err_set(e, ERR_PARSE,
                       "%s:%ld: field %d: text after the closing quote "
                       "(a quote inside a field must be doubled)",
                       r->name, r->line, r->nf + 1);
      if (c == '\r') /* line_end consumed "\r\n" */
        c = '\n';
    } else {
      while (c != ',' && c != EOF) {
        if (line_end(r, c)) {
          c = '\n';
          break;
        }
        if (c == '"')
          return err_set(e, ERR_PARSE,
                         "%s:%ld: field %d: quote inside an unquoted field "
                         "(quote the whole field and double the quote)",
                         r->name, r->line, r->nf + 1);
        if ((rc = put(r, (char)c, e)) != ERR_OK)
          return rc;
        c = rd(r);
      }
    }
    if ((rc = field_end(r, e)) != ERR_OK)
      return rc;
    if (c == ',') {
      c = rd(r);
      continue;
    }
    if (c == '\n')
      r->line++;
    else if (ferror(r->f))
      return err_set(e, ERR_IO, "%s:%ld: read error", r->name, r->line);
    break;
  }
  *nfields = r->nf;
  return ERR_OK;
}

const char *seed_csv_field(const struct seed_csv *r, int i, size_t *len,
                           int *quoted)
{
  if (i < 0 || i >= r->nf)
    return NULL;
  if (len)
    *len = r->fields[i].len;
  if (quoted)
    *quoted = r->fields[i].quoted;
  return r->buf + r->fields[i].off;
}

long seed_csv_line(const struct seed_csv *r) { return r->rec_line; }

/* ------------------------------------------------------- value parsing */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

int seed_parse_f64(const char *s, double *out)
{
  const char *p = s;
  int digits = 0;
  if (*p == '+' || *p == '-')
    p++;
  while (is_digit(*p)) {
    p++;
    digits++;
  }
  if (*p == '.') {
    p++;
    while (is_digit(*p)) {
      p++;
      digits++;
    }
  }
  if (!digits)
    return -1;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!is_digit(*p))
      return -1;
    while (is_digit(*p))
      p++;
  }
  if (*p)
    return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (*end || !isfinite(v))
    return -1;
  *out = v;
  return 0;
}

int seed_parse_i64(const char *s, int64_t *out)
{
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-')
    neg = *p++ == '-';
  if (!is_digit(*p))
    return -1;
  uint64_t v = 0;
  const uint64_t lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  while (is_digit(*p)) {
    unsigned d = (unsigned)(*p++ - '0');
    if (v > (lim - d) / 10)
      return -1;
    v = v * 10 + d;
  }
  if (*p == '.') {
    p++;
    while (*p == '0')
      p++;
  }
  if (*p)
    return -1;
  if (neg)
    *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
  else
    *out = (int64_t)v;
  return 0;
}

/* Characters in a UTF-8 string, or -1 if it is not valid UTF-8. */
static long utf8_chars(const char *s, size_t len)
{
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  long n = 0;
  while (p < end) {
    unsigned c = *p;
    int k;
    uint32_t cp;
    if (c < 0x80) {
      p++;
      n++;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      k = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      k = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      k = 3;
      cp = c & 0x07;
    } else {
      return -1;
    }
    if (end - p <= k)
      return -1;
    for (int i = 1; i <= k; i++) {
      if ((p[i] & 0xC0) != 0x80)
        return -1;
      cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
        (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
      return -1;
    p += k + 1;
    n++;
  }
  return n;
}

/* ---------------------------------------------------------- the tables */

enum col_type { COL_TEXT, COL_FLOAT, COL_BIGINT };

struct col_spec {
  const char *name;
  enum col_type type;
  int maxlen;   /* COL_TEXT: characters (varchar(n)); 0 = TEXT column */
  int notnull;
};

struct table_spec {
  const char *table;
  const char *file;
  const struct col_spec *cols;
  int ncols;
};

#define KEYS                                                                 \
  {"id", COL_TEXT, 10, 1}, {"customer_id", COL_TEXT, 10, 1},                 \
      {"date", COL_TEXT, 10, 1}

static const struct col_spec customer_info_cols[] = {
    KEYS, {"name", COL_TEXT, 50, 0}, {"ssn", COL_BIGINT, 0, 0}};

static const struct col_spec credit_score_cols[] = {
    KEYS, {"credit_score", COL_TEXT, 10, 1}};

static const struct col_spec features_cols[] = {
    KEYS,
    {"name", COL_TEXT, 50, 0},
    {"age", COL_FLOAT, 0, 0},
    {"ssn", COL_BIGINT, 0, 0},
    {"occupation", COL_TEXT, 50, 0},
    {"annual_income", COL_FLOAT, 0, 0},
    {"monthly_inhand_salary", COL_FLOAT, 0, 0},
    {"num_bank_accounts", COL_FLOAT, 0, 0},
    {"num_credit_card", COL_FLOAT, 0, 0},
    {"interest_rate", COL_FLOAT, 0, 0},
    {"num_of_loan", COL_FLOAT, 0, 0},
    {"type_of_loan", COL_TEXT, 0, 0},
    {"delay_from_due_date", COL_FLOAT, 0, 0},
    {"num_of_delayed_payment", COL_FLOAT, 0, 0},
    {"changed_credit_limit", COL_FLOAT, 0, 0},
    {"num_credit_inquiries", COL_FLOAT, 0, 0},
    {"credit_mix", COL_TEXT, 20, 0},
    {"outstanding_debt", COL_FLOAT, 0, 0},
    {"credit_utilization_ratio", COL_FLOAT, 0, 0},
    {"credit_history_age", COL_FLOAT, 0, 0},
    {"payment_of_min_amount", COL_TEXT, 10, 0},
    {"total_emi_per_month", COL_FLOAT, 0, 0},
    {"amount_invested_monthly", COL_FLOAT, 0, 0},
    {"payment_behaviour", COL_TEXT, 50, 0},
    {"monthly_balance", COL_FLOAT, 0, 0},
};

#define NCOLS(a) (int)(sizeof(a) / sizeof((a)[0]))

static const struct table_spec tables[SEED_NTABLES] = {
    {"customer_info", "customer_info.csv", customer_info_cols,
     NCOLS(customer_info_cols)},
    {"credit_score", "credit_score.csv", credit_score_cols,
     NCOLS(credit_score_cols)},
    {"credit_score_features", "credit_score_features.csv", features_cols,
     NCOLS(features_cols)},
};

/* ---------------------------------------------------------- the loader */

/* One chunk of parsed rows.  Text values point into arena, which may move
 * while the chunk fills, so their offsets are kept and fixed up last. */
struct chunk {
  struct db_val *vals;  /* SEED_CHUNK * ncols */
  size_t *toff;         /* arena offset of each text value */
  char *arena;
  size_t alen, acap;
  int64_t nrows;
  long first_line, last_line;
};

static enum err_code arena_add(struct chunk *ch, const char *s, size_t n,
                               size_t *off, struct err *e)
{
  if (VEC_RESERVE(ch->arena, ch->acap, ch->alen + n + 1))
    return err_set(e, ERR_NOMEM, "out of memory");
  memcpy(ch->arena + ch->alen, s, n);
  ch->arena[ch->alen + n] = '\0';
  *off = ch->alen;
  ch->alen += n + 1;
  return ERR_OK;
}

/* Shorten a bad value for an error message. */
static const char *clip(const char *s, char *buf, size_t cap)
{
  size_t n = strlen(s);
  if (n < cap)
    return s;
  snprintf(buf, cap, "%.*s...", (int)(cap - 4), s);
  return buf;
}

/* Parse the current record of r into row `row` of ch. */
static enum err_code parse_row(const struct table_spec *t,
                               struct seed_csv *r, int nf, struct chunk *ch,
                               struct err *e)
{
  long line = seed_csv_line(r);
  if (nf != t->ncols)
    return err_set(e, ERR_PARSE, "%s:%ld: %d fields, expected %d", r->name,
                   line, nf, t->ncols);
  struct db_val *v = ch->vals + ch->nrows * t->ncols;
  size_t *toff = ch->toff + ch->nrows * t->ncols;
  char cb[48];
  for (int i = 0; i < t->ncols; i++) {
    const struct col_spec *c = &t->cols[i];
    size_t len = 0;
    int quoted = 0;
    const char *s = seed_csv_field(r, i, &len, &quoted);
    if (len == 0 && !(quoted && c->type == COL_TEXT)) {
      if (c->notnull)
        return err_set(e, ERR_INVAL,
                       "%s:%ld: column %s: empty, but the column is NOT "
                       "NULL",
                       r->name, line, c->name);
      v[i] = DB_V_NULL;
      continue;
    }
    switch (c->type) {
    case COL_TEXT: {
      long nch = utf8_chars(s, len);
      if (nch < 0)
        return err_set(e, ERR_INVAL, "%s:%ld: column %s: not valid UTF-8",
                       r->name, line, c->name);
      if ((c->maxlen && nch > c->maxlen) ||
          (!c->maxlen && len > TEXT_MAX_BYTES))
        return err_set(e, ERR_INVAL,
                       "%s:%ld: column %s: '%s' is longer than %d "
                       "characters",
                       r->name, line, c->name, clip(s, cb, sizeof(cb)),
                       c->maxlen ? c->maxlen : TEXT_MAX_BYTES);
      enum err_code rc = arena_add(ch, s, len, &toff[i], e);
      if (rc != ERR_OK)
        return rc;
      v[i] = DB_V_STRN(NULL, len);
      break;
    }
    case COL_FLOAT: {
      double d;
      if (seed_parse_f64(s, &d) != 0)
        return err_set(e, ERR_INVAL, "%s:%ld: column %s: '%s' is not a number",
                       r->name, line, c->name, clip(s, cb, sizeof(cb)));
      if (fabs(d) > FLT_MAX)
        return err_set(e, ERR_INVAL,
                       "%s:%ld: column %s: '%s' is out of range for FLOAT",
                       r->name, line, c->name, clip(s, cb, sizeof(cb)));
      v[i] = DB_V_DBL(d);
      break;
    }
    case COL_BIGINT: {
      int64_t x;
      if (seed_parse_i64(s, &x) != 0)
        return err_set(e, ERR_INVAL,
                       "%s:%ld: column %s: '%s' is not an integer",
                       r->name, line, c->name, clip(s, cb, sizeof(cb)));
      v[i] = DB_V_INT(x);
      break;
    }
    }
  }
  if (ch->nrows == 0)
    ch->first_line = line;
  ch->last_line = line;
  ch->nrows++;
  return ERR_OK;
}

static enum err_code flush_chunk(struct db_conn *c, const struct table_spec *t,
                                 const char *const *names, struct chunk *ch,
                                 const char *path, struct err *e)
{
  if (ch->nrows == 0)
    return ERR_OK;
  int64_t n = ch->nrows * t->ncols;
  for (int64_t i = 0; i < n; i++)
    if (ch->vals[i].type == DB_TEXT)
      ch->vals[i].s = ch->arena + ch->toff[i];
  enum err_code rc = db_bulk_insert(c, t->table, names, t->ncols, ch->vals,
                                    ch->nrows, SEED_BATCH,
                                    " ON DUPLICATE KEY UPDATE `id` = `id`",
                                    NULL, e);
  if (rc != ERR_OK)
    err_prefix(e, "%s: lines %ld-%ld into %s", path, ch->first_line,
               ch->last_line, t->table);
  ch->nrows = 0;
  ch->alen = 0;
  return rc;
}

static enum err_code check_header(const struct table_spec *t,
                                  struct seed_csv *r, struct err *e)
{
  int nf;
  enum err_code rc = seed_csv_next(r, &nf, e);
  if (rc != ERR_OK)
    return rc;
  char want[1024];
  size_t w = 0;
  for (int i = 0; i < t->ncols; i++)
    w += (size_t)snprintf(want + w, sizeof(want) - w, "%s%s", i ? "," : "",
                          t->cols[i].name);
  if (nf == 0)
    return err_set(e, ERR_PARSE, "%s: empty file, expected the header %s",
                   r->name, want);
  for (int i = 0; i < t->ncols; i++) {
    const char *h = i < nf ? seed_csv_field(r, i, NULL, NULL) : "";
    if (strcasecmp(h, t->cols[i].name) != 0) {
      char cb[48];
      return err_set(e, ERR_PARSE,
                     "%s:%ld: header column %d is '%s', expected '%s' (the "
                     "header must be %s)",
                     r->name, seed_csv_line(r), i + 1,
                     clip(h, cb, sizeof(cb)), t->cols[i].name, want);
    }
  }
  if (nf != t->ncols)
    return err_set(e, ERR_PARSE,
                   "%s:%ld: header has %d columns, expected %d (%s)",
                   r->name, seed_csv_line(r), nf, t->ncols, want);
  return ERR_OK;
}

static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static enum err_code count_rows(struct db_conn *c, const char *table,
                                int64_t *n, struct err *e)
{
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM `%s`", table);
  enum err_code rc = db_query_i64(c, sql, NULL, 0, n, e);
  if (rc != ERR_OK && db_last_errno(c) == 1146) /* ER_NO_SUCH_TABLE */
    return err_set(e, ERR_DB,
                   "table %s does not exist: run `mlopsd db init` first",
                   table);
  return rc;
}

/* Load one table from the open reader r, in one transaction. */
static enum err_code load_table(struct db_conn *c, const struct table_spec *t,
                                struct seed_csv *r, struct seed_result *res,
                                struct err *e)
{
  double t0 = now_ms();
  const char *names[CSV_MAX_FIELDS];
  for (int i = 0; i < t->ncols; i++)
    names[i] = t->cols[i].name;
  struct chunk ch = {0};
  ch.vals = calloc((size_t)SEED_CHUNK * (size_t)t->ncols, sizeof(*ch.vals));
  ch.toff = calloc((size_t)SEED_CHUNK * (size_t)t->ncols, sizeof(*ch.toff));
  if (!ch.vals || !ch.toff) {
    free(ch.vals);
    free(ch.toff);
    return err_set(e, ERR_NOMEM, "out of memory");
  }
  int64_t before = 0, after = 0, rows = 0;
  int in_txn = 0;
  enum err_code rc = check_header(t, r, e);
  if (rc == ERR_OK)
    rc = db_begin(c, e);
  if (rc == ERR_OK) {
    in_txn = 1;
    rc = count_rows(c, t->table, &before, e);
  }
  while (rc == ERR_OK) {
    int nf;
    rc = seed_csv_next(r, &nf, e);
    if (rc != ERR_OK || nf == 0)
      break;
    rc = parse_row(t, r, nf, &ch, e);
    if (rc != ERR_OK)
      break;
    rows++;
    if (ch.nrows == SEED_CHUNK)
      rc = flush_chunk(c, t, names, &ch, r->name, e);
  }
  if (rc == ERR_OK)
    rc = flush_chunk(c, t, names, &ch, r->name, e);
  if (rc == ERR_OK)
    rc = count_rows(c, t->table, &after, e);
  if (rc == ERR_OK)
    rc = db_commit(c, e);
  if (rc != ERR_OK && in_txn)
    (void)db_rollback(c, NULL);
  free(ch.vals);
  free(ch.toff);
  free(ch.arena);
  if (rc != ERR_OK)
    return rc;
  res->table = t->table;
  res->rows = rows;
  res->inserted = after - before;
  res->ms = now_ms() - t0;
  LOG_D("seed", "loaded table=%s rows=%lld new=%lld ms=%.0f", t->table,
        (long long)rows, (long long)res->inserted, res->ms);
  return ERR_OK;
}

enum err_code seed_load(struct db_conn *c, const char *dir, seed_table_fn cb,
                        void *user, struct seed_result *res, struct err *e)
{
  if (!dir || !dir[0])
    dir = SEED_DIR_DEFAULT;
  struct seed_csv *rd_[SEED_NTABLES] = {0};
  struct seed_result local[SEED_NTABLES];
  if (!res)
    res = local;
  memset(res, 0, SEED_NTABLES * sizeof(*res));
  enum err_code rc = ERR_OK;
  /* Open all three first: a missing file loads nothing. */
  for (int i = 0; i < SEED_NTABLES && rc == ERR_OK; i++) {
    char path[1024];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, tables[i].file) >=
        sizeof(path))
      rc = err_set(e, ERR_INVAL, "%s: path too long", dir);
    else
      rc = seed_csv_open(&rd_[i], path, e);
  }
  for (int i = 0; i < SEED_NTABLES && rc == ERR_OK; i++) {
    res[i].table = tables[i].table;
    rc = load_table(c, &tables[i], rd_[i], &res[i], e);
    if (rc == ERR_OK && cb)
      cb(user, &res[i]);
  }
  for (int i = 0; i < SEED_NTABLES; i++)
    seed_csv_close(rd_[i]);
  return rc;
}
