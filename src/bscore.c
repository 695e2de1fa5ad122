/* bscore.c - batch scoring of any size (see bscore.h).
 *
 * Why blocks: model_predict on many rows at once is cheaper per row than
 * one call per row, and a block of BSCORE_BLOCK records bounds memory
 * (the records' cJSON items, one float matrix) whatever the input size.
 * The per-record steps are the server's own: spec_validate_request,
 * prep_transform_json, model_predict, serving_model_decide.
 */
#include "mlopsd/bscore.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlopsd/model.h"
#include "mlopsd/prep.h"
#include "mlopsd/serving.h"
#include "mlopsd/spec.h"

#define ERR_TEXT_MAX 1024

struct bscore {
  const struct serving_model *m;
  const struct spec *sp;
  const struct prep *prep;
  size_t nfeat, out_dim;
  const char *key;
  bscore_emit_fn emit;
  void *arg;
  cJSON *items[BSCORE_BLOCK];
  char *cid[BSCORE_BLOCK];
  char *err[BSCORE_BLOCK];
  uint64_t rec[BSCORE_BLOCK];
  unsigned char cid_num[BSCORE_BLOCK];
  size_t n;
  float *rows, *out;
  size_t *slot; /* row index of record i among the valid ones */
  struct spec_report rep;
  uint64_t next_rec;
  struct bscore_stats st;
};

enum err_code bscore_create(struct bscore **out,
                            const struct serving_model *m,
                            bscore_emit_fn emit, void *arg, struct err *e)
{
  struct bscore *b = calloc(1, sizeof(*b));
  *out = NULL;
  if (!b)
    return err_set(e, ERR_NOMEM, "batch scoring: out of memory");
  b->m = m;
  b->sp = serving_model_spec(m);
  b->prep = serving_model_prep(m);
  b->nfeat = serving_model_nfeat(m);
  b->out_dim = serving_model_out_dim(m);
  b->key = b->sp->source.key ? b->sp->source.key : "customer_id";
  b->emit = emit;
  b->arg = arg;
  b->rows = malloc(BSCORE_BLOCK * b->nfeat * sizeof(float));
  b->out = malloc(BSCORE_BLOCK * (b->out_dim ? b->out_dim : 1) *
                  sizeof(float));
  b->slot = malloc(BSCORE_BLOCK * sizeof(*b->slot));
  if (!b->rows || !b->out || !b->slot) {
    bscore_destroy(b);
    return err_set(e, ERR_NOMEM, "batch scoring: out of memory");
  }
  *out = b;
  return ERR_OK;
}

static void clear(struct bscore *b)
{
  for (size_t i = 0; i < b->n; i++) {
    cJSON_Delete(b->items[i]);
    free(b->cid[i]);
    free(b->err[i]);
    b->items[i] = NULL;
    b->cid[i] = b->err[i] = NULL;
  }
  b->n = 0;
}

void bscore_destroy(struct bscore *b)
{
  if (!b)
    return;
  clear(b);
  free(b->rows);
  free(b->out);
  free(b->slot);
  free(b);
}

void bscore_get_stats(const struct bscore *b, struct bscore_stats *st)
{
  *st = b->st;
}

/* Take a record (item owned from here; cid/err malloc'd or NULL). */
static enum err_code push(struct bscore *b, cJSON *item, char *cid,
                          int cid_num, char *errtext, struct err *e)
{
  b->items[b->n] = item;
  b->cid[b->n] = cid;
  b->err[b->n] = errtext;
  b->rec[b->n] = ++b->next_rec;
  b->cid_num[b->n] = (unsigned char)cid_num;
  b->n++;
  b->st.records++;
  if (b->n == BSCORE_BLOCK)
    return bscore_flush(b, e);
  return ERR_OK;
}

/* Is text all of one finite number? */
static int as_number(const char *s, double *d)
{
  char *end;
  if (!*s)
    return 0;
  *d = strtod(s, &end);
  while (*end == ' ' || *end == '\t' || *end == '\r')
    end++;
  return *end == 0 && isfinite(*d);
}

enum err_code bscore_add_text(struct bscore *b, const char *const *names,
                              const char *const *vals, int n, struct err *e)
{
  cJSON *o = cJSON_CreateObject();
  char *cid = NULL;
  if (!o)
    return err_set(e, ERR_NOMEM, "batch scoring: out of memory");
  for (int i = 0; i < n; i++) {
    const char *v = vals[i];
    if (!v || !names[i])
      continue;
    if (!*v && strcmp(names[i], b->key) != 0)
      continue; /* empty: missing, as SQL NULL (CSV cannot tell them
                   apart) */
    if (strcmp(names[i], b->key) == 0) {
      free(cid);
      cid = strdup(v);
      continue;
    }
    int idx = serving_model_feature_index(b->m, names[i]);
    if (idx < 0)
      continue; /* not a feature (target, date, ...): ignored */
    cJSON *x;
    double d;
    if (b->sp->features[idx].kind == SPEC_NUMERIC) {
      x = as_number(v, &d) ? cJSON_CreateNumber(d) : cJSON_CreateString(v);
    } else {
      x = cJSON_CreateString(v);
    }
    if (!x || !cJSON_AddItemToObject(o, names[i], x)) {
      cJSON_Delete(x);
      cJSON_Delete(o);
      free(cid);
      return err_set(e, ERR_NOMEM, "batch scoring: out of memory");
    }
  }
  return push(b, o, cid, 0, NULL, e);
}

static char *key_text(const cJSON *v)
{
  char buf[64];
  if (cJSON_IsString(v))
    return strdup(v->valuestring);
  if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
    double d = v->valuedouble;
    if (d == floor(d) && fabs(d) < 9007199254740992.0)
      snprintf(buf, sizeof(buf), "%lld", (long long)d);
    else
      snprintf(buf, sizeof(buf), "%.17g", d);
    return strdup(buf);
  }
  return NULL;
}

enum err_code bscore_add_json(struct bscore *b, const char *text, size_t len,
                              struct err *e)
{
  cJSON *root = cJSON_ParseWithLength(text, len);
  cJSON *item = root;
  const char *why = NULL;
  if (!root) {
    why = "not valid JSON";
  } else if (!cJSON_IsObject(root)) {
    why = "not a JSON object";
  } else {
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (data && cJSON_GetArraySize(root) == 1) {
      if (!cJSON_IsObject(data)) {
        why = "\"data\" must be one object per line";
      } else {
        item = cJSON_DetachItemViaPointer(root, data);
        cJSON_Delete(root);
      }
    }
  }
  if (why) {
    cJSON_Delete(root);
    char *msg = strdup(why);
    if (!msg)
      return err_set(e, ERR_NOMEM, "batch scoring: out of memory");
    return push(b, cJSON_CreateObject(), NULL, 0, msg, e);
  }
  const cJSON *k = cJSON_GetObjectItemCaseSensitive(item, b->key);
  char *cid = key_text(k);
  return push(b, item, cid, cJSON_IsNumber(k), NULL, e);
}

/* "age: must be > 0; occupation: must be one of ..." */
static char *report_text(const struct spec_report *r)
{
  char buf[ERR_TEXT_MAX];
  size_t o = 0;
  for (size_t k = 0; k < r->n && o < sizeof(buf) - 1; k++) {
    int w = snprintf(buf + o, sizeof(buf) - o, "%s%s: %s", k ? "; " : "",
                     r->e[k].field, r->e[k].msg);
    if (w < 0)
      break;
    o += (size_t)w;
  }
  if (r->n_more && o < sizeof(buf) - 1)
    snprintf(buf + o, sizeof(buf) - o, "; %zu more", r->n_more);
  return strdup(buf);
}

enum err_code bscore_flush(struct bscore *b, struct err *e)
{
  size_t nv = 0;
  enum err_code rc = ERR_OK;
  if (!b->n)
    return ERR_OK;
  for (size_t i = 0; i < b->n; i++) {
    b->slot[i] = (size_t)-1;
    if (b->err[i])
      continue;
    if (spec_validate_request(b->sp, b->items[i], &b->rep) != ERR_OK) {
      b->err[i] = report_text(&b->rep);
      if (!b->err[i]) {
        rc = err_set(e, ERR_NOMEM, "batch scoring: out of memory");
        goto out;
      }
      continue;
    }
    struct err te = {0};
    if (prep_transform_json(b->prep, b->items[i], b->rows + nv * b->nfeat,
                            &te) != ERR_OK) {
      b->err[i] = strdup(te.msg);
      continue;
    }
    b->slot[i] = nv++;
  }
  if (nv && (rc = model_predict(serving_model_model(b->m), b->rows, nv,
                                b->out, e)) != ERR_OK) {
    err_prefix(e, "prediction failed");
    goto out;
  }
  for (size_t i = 0; i < b->n; i++) {
    struct bscore_answer a = {.customer_id = b->cid[i],
                              .customer_id_is_number = b->cid_num[i],
                              .record = b->rec[i]};
    if (b->slot[i] == (size_t)-1) {
      a.error = b->err[i] ? b->err[i] : "out of memory";
      b->st.invalid++;
    } else {
      serving_model_decide(b->m, b->out + b->slot[i] * b->out_dim, &a.label,
                           &a.confidence, &a.value);
      b->st.scored++;
    }
    if (b->emit && b->emit(b->arg, &a) != 0) {
      rc = err_set(e, ERR_CANCELED, "batch scoring stopped");
      goto out;
    }
  }
out:
  clear(b);
  return rc;
}

/* ---- the stream --------------------------------------------------------- */

struct sctx {
  FILE *out;
  enum bscore_format fmt;
  const char *vjson; /* "\"3\"" */
  const char *vnum;  /* 3 */
  int write_err;
};

static void json_str(FILE *f, const char *s)
{
  putc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      putc('\\', f);
      putc(*p, f);
    } else if (*p < 0x20) {
      fprintf(f, "\\u%04x", *p);
    } else {
      putc(*p, f);
    }
  }
  putc('"', f);
}

static void csv_str(FILE *f, const char *s)
{
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  putc('"', f);
  for (; *s; s++) {
    if (*s == '"')
      putc('"', f);
    putc(*s, f);
  }
  putc('"', f);
}

static int emit_stream(void *arg, const struct bscore_answer *a)
{
  struct sctx *c = arg;
  FILE *f = c->out;
  if (c->fmt == BSCORE_JSONL) {
    fputs("{\"customer_id\":", f);
    if (a->customer_id && a->customer_id_is_number)
      fputs(a->customer_id, f); /* echoed as sent, as /predict does */
    else if (a->customer_id)
      json_str(f, a->customer_id);
    else
      fputs("null", f);
    if (a->error) {
      fprintf(f, ",\"record\":%llu,\"error\":",
              (unsigned long long)a->record);
      json_str(f, a->error);
    } else if (a->label) {
      fputs(",\"predict\":", f);
      json_str(f, a->label);
      fprintf(f, ",\"confidence\":%.9g", a->confidence);
    } else {
      fprintf(f, ",\"predict\":%.9g,\"confidence\":null", a->value);
    }
    fprintf(f, ",\"model_version\":%s}\n", c->vjson);
  } else {
    if (a->customer_id)
      csv_str(f, a->customer_id);
    putc(',', f);
    if (!a->error) {
      if (a->label) {
        csv_str(f, a->label);
        fprintf(f, ",%.9g", a->confidence);
      } else {
        fprintf(f, "%.9g,", a->value);
      }
    } else {
      putc(',', f);
    }
    fprintf(f, ",%s,", c->vnum);
    if (a->error)
      csv_str(f, a->error);
    putc('\n', f);
  }
  if (ferror(f)) {
    c->write_err = 1;
    return 1;
  }
  return 0;
}

/* Read one line (without the newline) into *buf; 0 at EOF, -1 when
 * longer than BSCORE_LINE_MAX. */
static long read_line(FILE *in, char **buf, size_t *cap)
{
  size_t n = 0;
  int ch;
  while ((ch = getc(in)) != EOF) {
    if (n + 2 > *cap) {
      if (*cap >= BSCORE_LINE_MAX)
        return -1;
      size_t nc = *cap ? *cap * 2 : 4096;
      char *q = realloc(*buf, nc);
      if (!q)
        return -2;
      *buf = q;
      *cap = nc;
    }
    if (ch == '\n')
      break;
    (*buf)[n++] = (char)ch;
  }
  if (ch == EOF && n == 0)
    return 0;
  if (n && (*buf)[n - 1] == '\r')
    n--;
  (*buf)[n] = 0;
  return (long)n + 1; /* +1: an empty line is not EOF */
}

/* Split a CSV record in place (RFC 4180: "" inside quotes; the caller
 * joined the lines of a quoted field that spans lines).  Returns the
 * number of fields or -1 when there are more than max. */
static int csv_split(char *s, char **f, int max)
{
  int n = 0;
  char *w = s, *r = s;
  for (;;) {
    if (n == max)
      return -1;
    f[n++] = w;
    if (*r == '"') {
      r++;
      for (;;) {
        if (*r == 0)
          break;
        if (*r == '"' && r[1] == '"') {
          *w++ = '"';
          r += 2;
        } else if (*r == '"') {
          r++;
          break;
        } else {
          *w++ = *r++;
        }
      }
    }
    while (*r && *r != ',')
      *w++ = *r++;
    if (*r == 0) {
      *w = 0;
      return n;
    }
    *w++ = 0;
    r++;
  }
}

/* Does the text end inside a quoted CSV field? */
static int csv_open_quote(const char *s)
{
  int in = 0, start = 1;
  for (; *s; s++) {
    if (in) {
      if (*s == '"') {
        if (s[1] == '"')
          s++;
        else
          in = 0;
      }
    } else if (*s == '"' && start) {
      in = 1;
    }
    start = *s == ',';
    if (in)
      start = 0;
  }
  return in;
}

#define CSV_MAX_COLS 1024

enum err_code bscore_stream(const struct serving_model *m, FILE *in,
                            const char *where, enum bscore_format in_fmt,
                            FILE *out, enum bscore_format out_fmt,
                            struct bscore_stats *st, struct err *e)
{
  struct bscore *b = NULL;
  char vnum[32];
  size_t vlen;
  struct sctx c = {.out = out, .fmt = out_fmt};
  c.vjson = serving_model_version_json(m, &vlen);
  snprintf(vnum, sizeof(vnum), "%d", serving_model_version(m));
  c.vnum = vnum;
  char *line = NULL, *rec = NULL;
  size_t cap = 0, rcap = 0;
  char **names = NULL, **fields = NULL;
  char *hdr = NULL;
  int ncols = 0;
  uint64_t lineno = 0;
  enum err_code rc = bscore_create(&b, m, emit_stream, &c, e);
  if (rc)
    return rc;
  names = calloc(CSV_MAX_COLS, sizeof(*names));
  fields = calloc(CSV_MAX_COLS, sizeof(*fields));
  if (!names || !fields) {
    rc = err_set(e, ERR_NOMEM, "batch scoring: out of memory");
    goto out;
  }
  if (out_fmt == BSCORE_CSV)
    fputs("customer_id,predict,confidence,model_version,error\n", out);
  for (;;) {
    long got = read_line(in, &line, &cap);
    if (got == 0)
      break;
    lineno++;
    if (got < 0) {
      rc = got == -1 ? err_set(e, ERR_PARSE,
                               "%s:%llu: line longer than %u bytes", where,
                               (unsigned long long)lineno, BSCORE_LINE_MAX)
                     : err_set(e, ERR_NOMEM, "batch scoring: out of memory");
      goto out;
    }
    size_t len = (size_t)got - 1;
    if (in_fmt == BSCORE_JSONL) {
      size_t k = 0;
      while (k < len && (line[k] == ' ' || line[k] == '\t'))
        k++;
      if (k == len)
        continue; /* blank line */
      if ((rc = bscore_add_json(b, line, len, e)))
        goto out;
      continue;
    }
    /* CSV: join physical lines while a quoted field is open */
    size_t rl = 0;
    for (;;) {
      if (rl + len + 2 > rcap) {
        size_t nc = rcap ? rcap : 4096;
        while (nc < rl + len + 2)
          nc *= 2;
        if (nc > 2 * (size_t)BSCORE_LINE_MAX) {
          rc = err_set(e, ERR_PARSE, "%s:%llu: record longer than %u bytes",
                       where, (unsigned long long)lineno, BSCORE_LINE_MAX);
          goto out;
        }
        char *q = realloc(rec, nc);
        if (!q) {
          rc = err_set(e, ERR_NOMEM, "batch scoring: out of memory");
          goto out;
        }
        rec = q;
        rcap = nc;
      }
      memcpy(rec + rl, line, len);
      rl += len;
      rec[rl] = 0;
      if (!csv_open_quote(rec))
        break;
      got = read_line(in, &line, &cap);
      if (got <= 0)
        break; /* an unterminated quote ends at EOF */
      lineno++;
      len = (size_t)got - 1;
      rec[rl++] = '\n';
    }
    if (!hdr) {
      hdr = strdup(rec);
      if (!hdr) {
        rc = err_set(e, ERR_NOMEM, "batch scoring: out of memory");
        goto out;
      }
      ncols = csv_split(hdr, names, CSV_MAX_COLS);
      if (ncols < 0) {
        rc = err_set(e, ERR_PARSE, "%s:1: more than %d columns", where,
                     CSV_MAX_COLS);
        goto out;
      }
      continue;
    }
    if (rl == 0)
      continue;
    int nf = csv_split(rec, fields, CSV_MAX_COLS);
    if (nf < 0 || nf > ncols) {
      rc = err_set(e, ERR_PARSE, "%s:%llu: %d fields, the header has %d",
                   where, (unsigned long long)lineno, nf < 0 ? CSV_MAX_COLS : nf,
                   ncols);
      goto out;
    }
    for (int i = nf; i < ncols; i++)
      fields[i] = NULL;
    if ((rc = bscore_add_text(b, (const char *const *)names,
                              (const char *const *)fields, ncols, e)))
      goto out;
  }
  rc = bscore_flush(b, e);
out:
  if (c.write_err)
    rc = err_set(e, ERR_IO, "writing the answers failed");
  if (st)
    bscore_get_stats(b, st);
  bscore_destroy(b);
  free(line);
  free(rec);
  free(hdr);
  free(names);
  free(fields);
  return rc;
}
