/* tmpl.c - {{ ... }} templates with per-destination quoting (see tmpl.h).
 *
 * Why not a general template engine: DAG fields need seven names, and the
 * dangerous part is not the syntax but where a value lands.  Knowing the
 * destination (SQL, shell, URL, header) lets us refuse or quote values
 * instead of trusting every DAG author and every --conf caller.  In SQL
 * the rule is simple and strict: values the scheduler produces are checked
 * against a narrow pattern, user conf is only ever a bound parameter.
 * Placement is judged on the template text with the SQL (sqlsplit) or a
 * tiny shell quote scanner, and after rendering SQL is scanned again to
 * prove no spliced value opened a string or a comment.
 */
#include "mlopsd/tmpl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/buf.h"
#include "mlopsd/cron.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/vec.h"

#define TMPL_KNOWN                                                          \
  "known: ds, ds_nodash, ds_add(N), run_id, dag_id, params.NAME, "         \
  "conf.NAME"
#define TMPL_DAYS_MAX 100000

const char *tmpl_mode_name(enum tmpl_mode mode)
{
  switch (mode) {
  case TMPL_PLAIN: return "plain";
  case TMPL_SQL: return "sql";
  case TMPL_SHELL: return "shell";
  case TMPL_URL: return "url";
  case TMPL_HEADER: return "header";
  }
  return "?";
}

void tmpl_pos_at(const char *text, size_t off, struct tmpl_pos *out)
{
  int line = 1;
  size_t bol = 0;
  for (size_t i = 0; i < off && text[i]; i++)
    if (text[i] == '\n') {
      line++;
      bol = i + 1;
    }
  out->off = off;
  out->line = line;
  out->col = (int)(off - bol) + 1;
}

/* ------------------------------------------------------------------ */
/* tag syntax                                                          */

static int ident_start(char c) { return isalpha((unsigned char)c) || c == '_'; }
static int ident_char(char c) { return isalnum((unsigned char)c) || c == '_'; }

static const char *skip_blank(const char *p, const char *end)
{
  while (p < end && (*p == ' ' || *p == '\t'))
    p++;
  return p;
}

static int word_is(const char *w, size_t n, const char *lit)
{
  return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

enum err_code tmpl_next(const char *text, size_t *pos, struct tmpl_tag *tag,
                        struct err *e)
{
  memset(tag, 0, sizeof(*tag));
  const char *open = strstr(text + *pos, "{{");
  if (!open)
    return ERR_NOTFOUND;
  tag->off = (size_t)(open - text);
  const char *q = open + 2;
  const char *close = q;
  while (*close && *close != '\n' && !(close[0] == '}' && close[1] == '}'))
    close++;
  if (close[0] != '}')
    return err_set(e, ERR_PARSE,
                   "unterminated '{{' (no '}}' on the same line)");
  tag->len = (size_t)(close + 2 - open);
  const char *b = skip_blank(q, close), *end = close;
  while (end > b && (end[-1] == ' ' || end[-1] == '\t'))
    end--;
  int inner = (int)(end - b);
  if (b == end)
    return err_set(e, ERR_PARSE, "empty template '{{ }}' (" TMPL_KNOWN ")");
  const char *w = b;
  while (w < end && ident_char(*w))
    w++;
  size_t wn = (size_t)(w - b);
  if (wn == 0 || !ident_start(*b))
    return err_set(e, ERR_PARSE, "bad template '{{ %.*s }}' (" TMPL_KNOWN ")",
                   inner, b);
  const char *p = skip_blank(w, end);
  if (word_is(b, wn, "params") || word_is(b, wn, "conf")) {
    tag->kind = *b == 'p' ? TMPL_PARAM : TMPL_CONF;
    if (w >= end || *w != '.')
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': write %s.NAME", inner, b,
                     tag->kind == TMPL_PARAM ? "params" : "conf");
    const char *n = w + 1, *ne = n;
    while (ne < end && ident_char(*ne))
      ne++;
    if (ne == n || ne != end)
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': NAME in %s.NAME must be "
                     "letters, digits or _ (no filters or expressions)",
                     inner, b, tag->kind == TMPL_PARAM ? "params" : "conf");
    if ((size_t)(ne - n) > TMPL_NAME_MAX)
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': NAME in %s.NAME is %zu "
                     "characters, at most %d", inner, b,
                     tag->kind == TMPL_PARAM ? "params" : "conf",
                     (size_t)(ne - n), TMPL_NAME_MAX);
    tag->name = n;
    tag->name_len = (size_t)(ne - n);
  } else if (word_is(b, wn, "ds_add")) {
    tag->kind = TMPL_DS_ADD;
    long v = 0;
    int nd = 0, neg = 0;
    if (p < end && *p == '(') {
      p = skip_blank(p + 1, end);
      if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
      while (p < end && isdigit((unsigned char)*p)) {
        if (v <= TMPL_DAYS_MAX)
          v = v * 10 + (*p - '0');
        p++, nd++;
      }
      p = skip_blank(p, end);
    }
    if (nd == 0 || p >= end || *p != ')' || p + 1 != end)
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': ds_add takes a whole "
                     "number of days, e.g. ds_add(-1)",
                     inner, b);
    if (v > TMPL_DAYS_MAX)
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': more than %d days", inner,
                     b, TMPL_DAYS_MAX);
    tag->days = (int)(neg ? -v : v);
  } else {
    if (word_is(b, wn, "ds"))
      tag->kind = TMPL_DS;
    else if (word_is(b, wn, "ds_nodash"))
      tag->kind = TMPL_DS_NODASH;
    else if (word_is(b, wn, "run_id"))
      tag->kind = TMPL_RUN_ID;
    else if (word_is(b, wn, "dag_id"))
      tag->kind = TMPL_DAG_ID;
    else
      return err_set(e, ERR_PARSE,
                     "unknown template name '%.*s' (" TMPL_KNOWN ")", inner,
                     b);
    if (w != end)
      return err_set(e, ERR_PARSE,
                     "bad template '{{ %.*s }}': filters and expressions "
                     "are not supported (" TMPL_KNOWN ")",
                     inner, b);
  }
  *pos = tag->off + tag->len;
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* placement: where in SQL / shell text a tag stands                    */

enum { SH_NONE, SH_SQUOTE, SH_DQUOTE };

/* Minimal sh quote tracking: '...' (no escapes), "..." (\ escapes),
 * \x outside quotes.  Comments do not matter for placement. */
struct sh_scan {
  const char *s;
  size_t pos;
  int st;
};

static int sh_scan_to(struct sh_scan *sc, size_t off)
{
  while (sc->pos < off && sc->s[sc->pos]) {
    char c = sc->s[sc->pos];
    if (sc->st == SH_SQUOTE) {
      if (c == '\'')
        sc->st = SH_NONE;
    } else if (c == '\\') {
      if (sc->s[sc->pos + 1])
        sc->pos++;
    } else if (sc->st == SH_DQUOTE) {
      if (c == '"')
        sc->st = SH_NONE;
    } else if (c == '\'') {
      sc->st = SH_SQUOTE;
    } else if (c == '"') {
      sc->st = SH_DQUOTE;
    }
    sc->pos++;
  }
  return sc->st;
}

struct placer {
  enum tmpl_mode mode;
  const char *text;
  struct sqlsplit_scan sql;
  struct sh_scan sh;
  size_t qpos; /* SQL: text before this offset was checked for '?' */
};

static void placer_init(struct placer *pl, const char *text,
                        enum tmpl_mode mode)
{
  memset(pl, 0, sizeof(*pl));
  pl->mode = mode;
  pl->text = text;
  sqlsplit_scan_init(&pl->sql, text, strlen(text));
  pl->sh.s = text;
}

/* SQL: a literal '?' in code between the last check and upto is refused.
 * Returns the offending offset or (size_t)-1. */
static size_t placer_qmark(struct placer *pl, size_t upto)
{
  if (pl->mode != TMPL_SQL)
    return (size_t)-1;
  for (size_t i = pl->qpos; i < upto; i++) {
    if (pl->text[i] != '?')
      continue;
    if (sqlsplit_scan_to(&pl->sql, i) == SQLSPLIT_CODE) {
      pl->qpos = upto;
      return i;
    }
  }
  pl->qpos = upto;
  return (size_t)-1;
}

/* Is a tag of this kind allowed at offset off?  0 or -1 with e set. */
static int placer_tag(struct placer *pl, const struct tmpl_tag *t,
                      int *sqlctx, struct err *e)
{
  *sqlctx = SQLSPLIT_CODE;
  if (pl->mode == TMPL_SQL) {
    enum sqlsplit_ctx c = sqlsplit_scan_to(&pl->sql, t->off);
    *sqlctx = (int)c;
    if (t->kind != TMPL_CONF || c == SQLSPLIT_CODE)
      return 0;
    if (c == SQLSPLIT_LINE_COMMENT || c == SQLSPLIT_BLOCK_COMMENT) {
      err_set(e, ERR_PARSE,
              "{{ conf.%.*s }} is inside %s: a bound parameter there would "
              "never be used; remove it",
              (int)t->name_len, t->name, sqlsplit_ctx_name(c));
      return -1;
    }
    err_set(e, ERR_PARSE,
            "{{ conf.%.*s }} is inside %s: conf values are bound as "
            "parameters (?), which cannot stand inside quotes; put the tag "
            "outside quotes, e.g. WHERE name = {{ conf.%.*s }} or "
            "CONCAT('%%', {{ conf.%.*s }}, '%%')",
            (int)t->name_len, t->name, sqlsplit_ctx_name(c),
            (int)t->name_len, t->name, (int)t->name_len, t->name);
    return -1;
  }
  if (pl->mode == TMPL_SHELL && t->kind == TMPL_CONF &&
      sh_scan_to(&pl->sh, t->off) != SH_NONE) {
    err_set(e, ERR_PARSE,
            "{{ conf.%.*s }} is inside quotes in a shell command: conf "
            "values are inserted as one single-quoted word; put the tag "
            "outside quotes",
            (int)t->name_len, t->name);
    return -1;
  }
  return 0;
}

static int qmark_error(const char *text, size_t at, struct tmpl_pos *where,
                       struct err *e)
{
  if (where)
    tmpl_pos_at(text, at, where);
  err_set(e, ERR_PARSE,
          "literal '?' outside quotes: in sql, placeholders are reserved "
          "for {{ conf.NAME }}");
  return -1;
}

enum err_code tmpl_check(const char *text, enum tmpl_mode mode,
                         const char *const *params, size_t nparams,
                         struct tmpl_pos *where, struct err *e)
{
  struct placer pl;
  size_t pos = 0;
  if (!text)
    return ERR_OK;
  placer_init(&pl, text, mode);
  for (;;) {
    struct tmpl_tag t;
    enum err_code rc = tmpl_next(text, &pos, &t, e);
    if (rc == ERR_NOTFOUND)
      break;
    if (rc != ERR_OK) {
      if (where)
        tmpl_pos_at(text, t.off, where);
      return rc;
    }
    size_t q = placer_qmark(&pl, t.off);
    if (q != (size_t)-1) {
      qmark_error(text, q, where, e);
      return ERR_PARSE;
    }
    if (t.kind == TMPL_PARAM) {
      size_t i;
      for (i = 0; i < nparams; i++)
        if (params[i] && strlen(params[i]) == t.name_len &&
            memcmp(params[i], t.name, t.name_len) == 0)
          break;
      if (i == nparams) {
        if (where)
          tmpl_pos_at(text, t.off, where);
        char list[256] = "";
        size_t used = 0;
        for (size_t k = 0; k < nparams && used + 4 < sizeof(list); k++) {
          int n = snprintf(list + used, sizeof(list) - used, "%s%s",
                           k ? ", " : "", params[k] ? params[k] : "");
          if (n < 0)
            break;
          used += (size_t)n;
          if (used >= sizeof(list))
            used = sizeof(list) - 1;
        }
        return err_set(e, ERR_PARSE,
                       "unknown template name 'params.%.*s': the DAG "
                       "declares no param '%.*s' (params: %s)",
                       (int)t.name_len, t.name, (int)t.name_len, t.name,
                       nparams ? list : "none");
      }
    }
    int ctx;
    if (placer_tag(&pl, &t, &ctx, e) < 0) {
      if (where)
        tmpl_pos_at(text, t.off, where);
      return ERR_PARSE;
    }
  }
  size_t q = placer_qmark(&pl, strlen(text));
  if (q != (size_t)-1) {
    qmark_error(text, q, where, e);
    return ERR_PARSE;
  }
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* values                                                              */

static int is_id(const char *v)
{
  if (!*v)
    return 0;
  for (; *v; v++)
    if (!isalnum((unsigned char)*v) && !strchr("_.:+-", *v))
      return 0;
  return 1;
}

static int is_number(const char *v)
{
  const char *p = v;
  int nd = 0;
  if (*p == '-' || *p == '+')
    p++;
  while (isdigit((unsigned char)*p))
    p++, nd++;
  if (*p == '.') {
    p++;
    while (isdigit((unsigned char)*p))
      p++, nd++;
  }
  if (nd == 0)
    return 0;
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '-' || *p == '+')
      p++;
    if (!isdigit((unsigned char)*p))
      return 0;
    while (isdigit((unsigned char)*p))
      p++;
  }
  return *p == '\0';
}

static int is_safe_word(const char *v)
{
  for (const char *p = v; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_ .:-", *p))
      return 0;
  return strstr(v, "--") == NULL;
}

static int has_ctl(const char *v)
{
  for (; *v; v++)
    if ((unsigned char)*v < 0x20 || *v == 0x7f)
      return 1;
  return 0;
}

static const char *kind_word(enum tmpl_kind k)
{
  switch (k) {
  case TMPL_DS: return "ds";
  case TMPL_DS_NODASH: return "ds_nodash";
  case TMPL_DS_ADD: return "ds_add";
  case TMPL_RUN_ID: return "run_id";
  case TMPL_DAG_ID: return "dag_id";
  case TMPL_PARAM: return "params";
  case TMPL_CONF: return "conf";
  }
  return "?";
}

enum err_code tmpl_check_value(enum tmpl_mode mode, enum tmpl_kind kind,
                               const char *value, struct err *e)
{
  const char *v = value ? value : "";
  int y, m, d;
  switch (kind) {
  case TMPL_DS:
  case TMPL_DS_ADD:
    if (cron_parse_date(v, &y, &m, &d) != ERR_OK)
      return err_set(e, ERR_INVAL, "%s value '%.60s' is not a YYYY-MM-DD "
                     "date", kind_word(kind), v);
    return ERR_OK;
  case TMPL_DS_NODASH:
    if (strlen(v) != 8 || strspn(v, "0123456789") != 8)
      return err_set(e, ERR_INVAL, "ds_nodash value '%.60s' is not YYYYMMDD",
                     v);
    return ERR_OK;
  case TMPL_RUN_ID:
  case TMPL_DAG_ID:
    if ((mode == TMPL_SQL || mode == TMPL_SHELL) && !is_id(v))
      return err_set(e, ERR_INVAL,
                     "%s value '%.60s' is not safe in %s (allowed: "
                     "letters, digits and _ . : + -)",
                     kind_word(kind), v, tmpl_mode_name(mode));
    break;
  case TMPL_PARAM:
    if (mode == TMPL_SQL && !is_number(v) && !is_safe_word(v))
      return err_set(e, ERR_INVAL,
                     "param value '%.60s' is not safe in sql (allowed: a "
                     "number, or letters, digits, blanks and _ . : - "
                     "without \"--\"); pass it as {{ conf.NAME }} to bind "
                     "it instead",
                     v);
    break;
  case TMPL_CONF:
    break;
  }
  if (mode == TMPL_HEADER && has_ctl(v))
    return err_set(e, ERR_INVAL,
                   "%s value '%.60s' holds a control character (CR/LF), not "
                   "allowed in a header",
                   kind_word(kind), v);
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* render                                                              */

/* Values are appended to a struct buf capped at TMPL_OUT_MAX (buf.h);
 * its sticky error is checked once per tag. */

static void add_url(struct buf *b, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      buf_add(b, (const char *)&c, 1);
    } else {
      char x[3] = {'%', hex[c >> 4], hex[c & 15]};
      buf_add(b, x, 3);
    }
  }
}

static void add_shell(struct buf *b, const char *s)
{
  buf_add(b, "'", 1);
  for (; *s; s++) {
    if (*s == '\'')
      buf_add(b, "'\\''", 4);
    else
      buf_add(b, s, 1);
  }
  buf_add(b, "'", 1);
}

void tmpl_binds_free(struct tmpl_binds *b)
{
  if (!b)
    return;
  for (size_t i = 0; i < b->n; i++)
    free(b->v[i]);
  free(b->v);
  b->v = NULL;
  b->n = 0;
}

static enum err_code binds_add(struct tmpl_binds *b, const char *v)
{
  char **nv = realloc(b->v, (b->n + 1) * sizeof(*nv));
  if (!nv)
    return ERR_NOMEM;
  b->v = nv;
  if (!(b->v[b->n] = strdup(v)))
    return ERR_NOMEM;
  b->n++;
  return ERR_OK;
}

static const char *lookup_var(const struct tmpl_ctx *ctx,
                              const struct tmpl_tag *t, char *name,
                              size_t cap)
{
  const struct tmpl_var *vars = t->kind == TMPL_PARAM ? ctx->params
                                                      : ctx->conf;
  size_t n = t->kind == TMPL_PARAM ? ctx->nparams : ctx->nconf;
  for (size_t i = 0; vars && i < n; i++)
    if (vars[i].name && strlen(vars[i].name) == t->name_len &&
        memcmp(vars[i].name, t->name, t->name_len) == 0)
      return vars[i].value;
  if (!ctx->lookup || t->name_len >= cap)
    return NULL;
  memcpy(name, t->name, t->name_len);
  name[t->name_len] = '\0';
  return ctx->lookup(ctx->user, t->kind, name);
}

/* A spliced SQL value: must leave the SQL context as it found it. */
struct span {
  size_t off, len;
  int ctx;
  size_t tag_off;
};

/* Prefix e->msg with "{{ TAG }} at line L: ". */
static enum err_code tag_fail(const char *text, const struct tmpl_tag *t,
                              enum err_code rc, struct err *e)
{
  struct tmpl_pos p;
  tmpl_pos_at(text, t->off, &p);
  err_prefix(e, "%.*s at line %d", (int)t->len, text + t->off, p.line);
  return rc;
}

/* A date tag's value (ds, ds_nodash, macros.ds_add) from ctx->ds into
 * date. */
static enum err_code date_value(const char *text, const struct tmpl_ctx *ctx,
                                const struct tmpl_tag *t,
                                char date[CRON_DATE_LEN], struct err *e)
{
  int y, m, d;
  if (!ctx->ds || cron_parse_date(ctx->ds, &y, &m, &d) != ERR_OK) {
    err_set(e, ERR_INVAL, "logical date '%.40s' is not YYYY-MM-DD",
            ctx->ds ? ctx->ds : "(none)");
    return tag_fail(text, t, ERR_INVAL, e);
  }
  if (t->kind == TMPL_DS_ADD)
    cron_civil_from_days(cron_days_from_civil(y, m, d) + t->days, &y, &m,
                         &d);
  if (y < 1 || y > 9999) {
    err_set(e, ERR_INVAL, "date out of range");
    return tag_fail(text, t, ERR_INVAL, e);
  }
  snprintf(date, CRON_DATE_LEN,
           t->kind == TMPL_DS_NODASH ? "%04d%02d%02d" : "%04d-%02d-%02d",
           y % 10000, m % 100, d % 100);
  return ERR_OK;
}

/* A tag's value, checked for the mode (tmpl_check_value); *v points into
 * ctx, date or name.  The error names the tag and its line. */
static enum err_code tag_value(const char *text, const struct tmpl_ctx *ctx,
                               enum tmpl_mode mode, const struct tmpl_tag *t,
                               char date[CRON_DATE_LEN], char *name,
                               size_t name_cap, const char **v,
                               struct err *e)
{
  enum err_code rc;
  *v = NULL;
  switch (t->kind) {
  case TMPL_DS:
  case TMPL_DS_NODASH:
  case TMPL_DS_ADD:
    if ((rc = date_value(text, ctx, t, date, e)) != ERR_OK)
      return rc;
    *v = date;
    break;
  case TMPL_RUN_ID:
    *v = ctx->run_id;
    break;
  case TMPL_DAG_ID:
    *v = ctx->dag_id;
    break;
  case TMPL_PARAM:
  case TMPL_CONF:
    *v = lookup_var(ctx, t, name, name_cap);
    if (!*v) {
      if (t->kind == TMPL_PARAM)
        err_set(e, ERR_INVAL, "param '%.*s' is not set", (int)t->name_len,
                t->name);
      else
        err_set(e, ERR_INVAL,
                "the run's conf has no '%.*s' (trigger with --conf "
                "'{\"%.*s\": ...}')",
                (int)t->name_len, t->name, (int)t->name_len, t->name);
      return tag_fail(text, t, ERR_INVAL, e);
    }
    break;
  }
  if (!*v) {
    err_set(e, ERR_INVAL, "%s is not set", kind_word(t->kind));
    return tag_fail(text, t, ERR_INVAL, e);
  }
  if ((rc = tmpl_check_value(mode, t->kind, *v, e)) != ERR_OK)
    return tag_fail(text, t, rc, e);
  return ERR_OK;
}

/* The rendered text so far and, for SQL, where values were spliced. */
struct render {
  struct buf b;
  struct span *spans;
  size_t nspans, capspans;
};

/* A tag's value into the output as the mode wants it: a conf value in
 * SQL becomes a ? with a bind; other SQL values are spliced and recorded
 * for check_spans; shell conf values are quoted; URL values (but params)
 * are percent-encoded. */
static enum err_code emit_value(struct render *r, enum tmpl_mode mode,
                                const struct tmpl_tag *t, const char *v,
                                int sqlctx, struct tmpl_binds *binds,
                                struct err *e)
{
  enum err_code rc;
  if (mode == TMPL_SQL && t->kind == TMPL_CONF) {
    buf_add(&r->b, "?", 1);
    if ((rc = binds_add(binds, v)) != ERR_OK)
      return err_set(e, rc, "out of memory rendering a template");
  } else if (mode == TMPL_SQL) {
    if (VEC_PUSH(r->spans, r->nspans, r->capspans,
                 ((struct span){r->b.len, strlen(v), sqlctx, t->off})))
      return err_set(e, ERR_NOMEM, "out of memory rendering a template");
    buf_adds(&r->b, v);
  } else if (mode == TMPL_SHELL && t->kind == TMPL_CONF) {
    add_shell(&r->b, v);
  } else if (mode == TMPL_URL && t->kind != TMPL_PARAM) {
    add_url(&r->b, v);
  } else {
    buf_adds(&r->b, v);
  }
  return ERR_OK;
}

/* Prove the spliced SQL values did not open or close a string or
 * comment: each span starts and ends in the context its tag was in. */
static enum err_code check_spans(const char *text, const struct render *r,
                                 struct err *e)
{
  struct sqlsplit_scan sc;
  sqlsplit_scan_init(&sc, r->b.p, r->b.len);
  for (size_t i = 0; i < r->nspans; i++) {
    const struct span *s = &r->spans[i];
    if ((int)sqlsplit_scan_to(&sc, s->off) != s->ctx ||
        (int)sqlsplit_scan_to(&sc, s->off + s->len) != s->ctx) {
      struct tmpl_tag t;
      size_t p2 = s->tag_off;
      struct err tmp;
      if (tmpl_next(text, &p2, &t, &tmp) != ERR_OK)
        t.off = s->tag_off, t.len = 2;
      err_set(e, ERR_INVAL,
              "its value would change the SQL around it (opens a "
              "comment or string)");
      return tag_fail(text, &t, ERR_INVAL, e);
    }
  }
  return ERR_OK;
}

/* A '?' placeholder written in the template text itself is an error
 * (placer_qmark); the message names its line. */
static enum err_code qmark_fail(const char *text, size_t q, struct err *e)
{
  struct tmpl_pos p;
  qmark_error(text, q, &p, e);
  err_prefix(e, "line %d", p.line);
  return ERR_PARSE;
}

enum err_code tmpl_render(const char *text, const struct tmpl_ctx *ctx,
                          enum tmpl_mode mode, char **out,
                          struct tmpl_binds *binds, struct err *e)
{
  struct render r = {0};
  struct placer pl;
  size_t pos = 0, last = 0, q;
  enum err_code rc = ERR_OK;
  *out = NULL;
  buf_init(&r.b, TMPL_OUT_MAX);
  if (mode == TMPL_SQL) {
    if (!binds)
      return err_set(e, ERR_INVAL, "sql template rendered without binds");
    tmpl_binds_free(binds);
  }
  if (!text)
    text = "";
  placer_init(&pl, text, mode);
  for (;;) {
    struct tmpl_tag t;
    rc = tmpl_next(text, &pos, &t, e);
    if (rc == ERR_NOTFOUND) {
      rc = ERR_OK;
      break;
    }
    if (rc != ERR_OK) {
      struct tmpl_pos p;
      tmpl_pos_at(text, t.off, &p);
      err_prefix(e, "line %d", p.line);
      break;
    }
    if ((q = placer_qmark(&pl, t.off)) != (size_t)-1) {
      rc = qmark_fail(text, q, e);
      break;
    }
    int sqlctx;
    if (placer_tag(&pl, &t, &sqlctx, e) < 0) {
      rc = tag_fail(text, &t, ERR_PARSE, e);
      break;
    }
    buf_add(&r.b, text + last, t.off - last);
    last = t.off + t.len;

    char date[CRON_DATE_LEN], name[TMPL_NAME_MAX + 1];
    const char *v;
    if ((rc = tag_value(text, ctx, mode, &t, date, name, sizeof(name), &v,
                        e)) != ERR_OK ||
        (rc = emit_value(&r, mode, &t, v, sqlctx, binds, e)) != ERR_OK)
      break;
    if (r.b.rc)
      break;
  }
  if (rc == ERR_OK && !r.b.rc &&
      (q = placer_qmark(&pl, strlen(text))) != (size_t)-1)
    rc = qmark_fail(text, q, e);
  if (rc == ERR_OK && !r.b.rc)
    buf_adds(&r.b, text + last);
  if (rc == ERR_OK && r.b.rc)
    rc = r.b.rc == ERR_FULL
             ? err_set(e, ERR_FULL, "rendered text exceeds %zu bytes",
                       TMPL_OUT_MAX)
             : err_set(e, ERR_NOMEM, "out of memory rendering a template");
  if (rc == ERR_OK && mode == TMPL_SQL && r.nspans > 0)
    rc = check_spans(text, &r, e);
  free(r.spans);
  if (rc != ERR_OK) {
    buf_free(&r.b);
    if (mode == TMPL_SQL)
      tmpl_binds_free(binds);
    return rc;
  }
  if (!(*out = buf_take(&r.b, NULL)))
    return err_set(e, ERR_NOMEM, "out of memory rendering a template");
  return ERR_OK;
}
