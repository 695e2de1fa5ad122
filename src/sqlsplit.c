/* sqlsplit.c - cut a SQL script into statements (see sqlsplit.h).
 *
 * A small state machine over bytes; it only has to know where strings and
 * comments begin and end, not SQL grammar.  Two-byte tokens (escapes,
 * comment openers and closers) are consumed whole so that a `;` or quote
 * right after them is judged in the right state.
 */
#include "mlopsd/sqlsplit.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "mlopsd/vec.h"

void sqlsplit_scan_init(struct sqlsplit_scan *sc, const char *s, size_t len)
{
  memset(sc, 0, sizeof(*sc));
  sc->s = s;
  sc->len = len;
  sc->ctx = SQLSPLIT_CODE;
  sc->line = 1;
}

const char *sqlsplit_ctx_name(enum sqlsplit_ctx ctx)
{
  switch (ctx) {
  case SQLSPLIT_CODE: return "code";
  case SQLSPLIT_SQUOTE: return "a '...' string";
  case SQLSPLIT_DQUOTE: return "a \"...\" string";
  case SQLSPLIT_BACKTICK: return "a `...` identifier";
  case SQLSPLIT_LINE_COMMENT: return "a line comment";
  case SQLSPLIT_BLOCK_COMMENT: return "a /* */ comment";
  }
  return "?";
}

static void eat(struct sqlsplit_scan *sc, size_t n)
{
  for (size_t i = 0; i < n && sc->pos < sc->len; i++)
    if (sc->s[sc->pos++] == '\n')
      sc->line++;
}

static void enter(struct sqlsplit_scan *sc, enum sqlsplit_ctx ctx, size_t n)
{
  sc->ctx = ctx;
  sc->ctx_line = sc->line;
  eat(sc, n);
}

/* Consume one token. */
static void step(struct sqlsplit_scan *sc)
{
  const char *s = sc->s;
  size_t p = sc->pos;
  char c = s[p];
  char n = p + 1 < sc->len ? s[p + 1] : '\0';
  switch (sc->ctx) {
  case SQLSPLIT_CODE:
    if (c == '\'')
      enter(sc, SQLSPLIT_SQUOTE, 1);
    else if (c == '"')
      enter(sc, SQLSPLIT_DQUOTE, 1);
    else if (c == '`')
      enter(sc, SQLSPLIT_BACKTICK, 1);
    else if (c == '#')
      enter(sc, SQLSPLIT_LINE_COMMENT, 1);
    else if (c == '-' && n == '-' &&
             (p + 2 >= sc->len || (unsigned char)s[p + 2] <= ' '))
      enter(sc, SQLSPLIT_LINE_COMMENT, 2);
    else if (c == '/' && n == '*') {
      char x = p + 2 < sc->len ? s[p + 2] : '\0';
      char y = p + 3 < sc->len ? s[p + 3] : '\0';
      enter(sc, SQLSPLIT_BLOCK_COMMENT, 2);
      sc->exec_comment = x == '!' || (x == 'M' && y == '!');
    } else
      eat(sc, 1);
    break;
  case SQLSPLIT_SQUOTE:
  case SQLSPLIT_DQUOTE: {
    char q = sc->ctx == SQLSPLIT_SQUOTE ? '\'' : '"';
    if (c == '\\')
      eat(sc, 2);
    else if (c == q && n == q)
      eat(sc, 2);
    else if (c == q) {
      eat(sc, 1);
      sc->ctx = SQLSPLIT_CODE;
    } else
      eat(sc, 1);
    break;
  }
  case SQLSPLIT_BACKTICK:
    if (c == '`' && n == '`')
      eat(sc, 2);
    else {
      eat(sc, 1);
      if (c == '`')
        sc->ctx = SQLSPLIT_CODE;
    }
    break;
  case SQLSPLIT_LINE_COMMENT:
    eat(sc, 1);
    if (c == '\n')
      sc->ctx = SQLSPLIT_CODE;
    break;
  case SQLSPLIT_BLOCK_COMMENT:
    if (c == '*' && n == '/') {
      eat(sc, 2);
      sc->ctx = SQLSPLIT_CODE;
      sc->exec_comment = 0;
    } else
      eat(sc, 1);
    break;
  }
}

enum sqlsplit_ctx sqlsplit_scan_to(struct sqlsplit_scan *sc, size_t off)
{
  if (off > sc->len)
    off = sc->len;
  while (sc->pos < off)
    step(sc);
  return sc->ctx;
}

void sqlsplit_list_free(struct sqlsplit_list *l)
{
  if (!l)
    return;
  for (size_t i = 0; i < l->n; i++)
    free(l->v[i].sql);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

/* Statement state while scanning: first significant byte, last one. */
struct pending {
  int have;
  size_t first, last_end;
  int line;
  int nparams;
};

static enum err_code emit(const char *sql, struct pending *pd,
                          struct sqlsplit_list *out, size_t *cap,
                          struct err *e)
{
  if (!pd->have)
    return ERR_OK;
  size_t len = pd->last_end - pd->first;
  const char *t = sql + pd->first;
  if (len >= 9 && strncasecmp(t, "DELIMITER", 9) == 0 &&
      (len == 9 || isspace((unsigned char)t[9])))
    return err_set(e, ERR_PARSE,
                   "line %d: DELIMITER is a mysql client command, not SQL "
                   "(statements are split on ';' only)",
                   pd->line);
  if (VEC_RESERVE(out->v, *cap, out->n + 1))
    return err_set(e, ERR_NOMEM, "out of memory splitting SQL");
  char *s = malloc(len + 1);
  if (!s)
    return err_set(e, ERR_NOMEM, "out of memory splitting SQL");
  memcpy(s, t, len);
  s[len] = '\0';
  struct sqlsplit_stmt *st = &out->v[out->n++];
  st->sql = s;
  st->line = pd->line;
  st->off = pd->first;
  st->nparams = pd->nparams;
  memset(pd, 0, sizeof(*pd));
  return ERR_OK;
}

enum err_code sqlsplit_split(const char *sql, struct sqlsplit_list *out,
                             struct err *e)
{
  out->v = NULL;
  out->n = 0;
  if (!sql)
    return ERR_OK;
  size_t cap = 0, len = strlen(sql);
  struct sqlsplit_scan sc;
  struct pending pd = {0};
  sqlsplit_scan_init(&sc, sql, len);
  enum err_code rc = ERR_OK;
  while (sc.pos < len) {
    size_t p = sc.pos;
    int line = sc.line;
    enum sqlsplit_ctx before = sc.ctx;
    char c = sql[p];
    if (before == SQLSPLIT_CODE && c == ';') {
      step(&sc);
      if ((rc = emit(sql, &pd, out, &cap, e)) != ERR_OK)
        break;
      continue;
    }
    int exec_before = sc.exec_comment;
    step(&sc);
    /* is this token part of the statement?  Blanks and comments that
     * MariaDB ignores are not (executable comments are) */
    int sig;
    switch (before) {
    case SQLSPLIT_CODE:
      sig = sc.ctx == SQLSPLIT_LINE_COMMENT    ? 0
            : sc.ctx == SQLSPLIT_BLOCK_COMMENT ? sc.exec_comment
                                               : !isspace((unsigned char)c);
      break;
    case SQLSPLIT_LINE_COMMENT:
      sig = 0;
      break;
    case SQLSPLIT_BLOCK_COMMENT:
      sig = exec_before;
      break;
    default: /* strings and identifiers */
      sig = 1;
      break;
    }
    if (!sig)
      continue;
    if (!pd.have) {
      pd.have = 1;
      pd.first = p;
      pd.line = line;
    }
    pd.last_end = sc.pos;
    if (before == SQLSPLIT_CODE && c == '?')
      pd.nparams++;
  }
  if (rc == ERR_OK && sc.ctx != SQLSPLIT_CODE &&
      sc.ctx != SQLSPLIT_LINE_COMMENT)
    rc = err_set(e, ERR_PARSE, "line %d: %s is never closed", sc.ctx_line,
                 sqlsplit_ctx_name(sc.ctx));
  if (rc == ERR_OK)
    rc = emit(sql, &pd, out, &cap, e);
  if (rc != ERR_OK)
    sqlsplit_list_free(out);
  return rc;
}
