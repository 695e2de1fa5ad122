/* dag.c - load and validate DAG files (see dag.h for the format).
 *
 * The file is read whole (capped), parsed with libyaml's document API
 * (which keeps a line:column mark on every node, so every error can say
 * FILE:LINE:COL), and walked once into a struct dag.  Task fields are
 * validated against the task-type registry of task.h: the executors own
 * the list of fields they accept and a check() of their values, so the
 * loader and the runner cannot disagree about what a task may contain.
 * Templates in fields are checked here with tmpl_check (names, placement)
 * so a typo fails `dags validate`, not a run at 3 a.m.
 *
 * Errors stop at the first problem of a file; dag_load_dir (dag_dir.c)
 * collects one error per broken file and keeps loading the others.  The
 * YAML readers (scalars, durations, YAML -> JSON) are in dag_yaml.c.
 */
#include "mlopsd/dag.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "mlopsd/fsx.h"
#include "mlopsd/hash.h"
#include "mlopsd/sqlsplit.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"
#include "dag_int.h"

#define DAG_FIELD_FILE_MAX ((size_t)16 << 20)

const char *dag_trigger_rule_name(enum dag_trigger_rule r)
{
  switch (r) {
  case DAG_TR_ALL_SUCCESS: return "all_success";
  case DAG_TR_ALL_DONE: return "all_done";
  case DAG_TR_ONE_SUCCESS: return "one_success";
  case DAG_TR_ALL_FAILED: return "all_failed";
  case DAG_TR_NONE_FAILED: return "none_failed";
  case DAG_TR_ONE_FAILED: return "one_failed";
  case DAG_TR_NONE_SKIPPED: return "none_skipped";
  }
  return "?";
}

int dag_retry_delay(const struct dag_retry *r, int try_number)
{
  int64_t d = r->retry_delay_s;
  if (r->exponential_backoff)
    for (int i = 1; i < try_number && d < DAG_DURATION_MAX; i++)
      d *= 2;
  if (r->max_retry_delay_s > 0 && d > r->max_retry_delay_s)
    d = r->max_retry_delay_s;
  return (int)d;
}

/* ------------------------------------------------------------------ */
/* freeing                                                             */

static void strv_free(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++)
    free(v[i]);
  free(v);
}

static void callback_free(struct dag_callback *c)
{
  free(c->url);
  free(c->method);
  cJSON_Delete(c->headers);
  free(c->body);
}

static void dag_free(struct dag *d)
{
  if (!d)
    return;
  for (size_t i = 0; i < d->ntasks; i++) {
    struct dag_task *t = &d->tasks[i];
    free(t->id);
    free(t->type_name);
    free(t->description);
    strv_free(t->depends_on, t->nupstream);
    free(t->upstream);
    free(t->downstream);
    cJSON_Delete(t->fields);
    free(t->file_path);
    free(t->file_text);
  }
  free(d->tasks);
  free(d->topo);
  free(d->dag_id);
  free(d->description);
  free(d->schedule);
  strv_free(d->tags, d->ntags);
  cJSON_Delete(d->params);
  callback_free(&d->on_failure);
  callback_free(&d->on_success);
  for (size_t i = 0; i < d->nsources; i++)
    free(d->sources[i].path);
  free(d->sources);
  free(d->path);
  free(d);
}

struct dag *dag_ref(struct dag *d)
{
  if (d)
    __atomic_add_fetch(&d->refs_, 1, __ATOMIC_RELAXED);
  return d;
}

void dag_destroy(struct dag *d)
{
  if (d && __atomic_sub_fetch(&d->refs_, 1, __ATOMIC_ACQ_REL) == 0)
    dag_free(d);
}

/* ------------------------------------------------------------------ */
/* files                                                               */

/* Read a regular file whole, at most cap bytes, with the stat taken
 * before the read (a change after it shows as a newer file next scan,
 * never as a missed one).  The message names path only (the caller
 * prefixes where it was referenced). */
static enum err_code read_file(const char *path, size_t cap, char **out,
                               size_t *len, struct stat *st, struct err *e)
{
  if (stat(path, st) != 0)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "cannot open %s: %s", path, strerror(errno));
  return fsx_read(path, cap, FSX_NO_NUL, out, len, e);
}

static int64_t mtime_ns(const struct stat *st)
{
  return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

int dag_sources_changed(const struct dag *d)
{
  for (size_t i = 0; i < d->nsources; i++) {
    struct stat st;
    if (stat(d->sources[i].path, &st) != 0 ||
        mtime_ns(&st) != d->sources[i].mtime_ns ||
        (int64_t)st.st_size != d->sources[i].size)
      return 1;
  }
  return 0;
}

/* ------------------------------------------------------------------ */
/* templates                                                           */

/* Names of the DAG's params, for tmpl_check (borrowed from d->params). */
struct names {
  const char **v;
  size_t n;
};

static enum err_code param_names(struct loader *L, struct names *nm)
{
  size_t n = (size_t)cJSON_GetArraySize(L->d->params);
  nm->v = calloc(n ? n : 1, sizeof(*nm->v));
  if (!nm->v)
    return err_set(L->e, ERR_NOMEM, "out of memory");
  nm->n = 0;
  for (const cJSON *it = L->d->params->child; it; it = it->next)
    nm->v[nm->n++] = it->string;
  return ERR_OK;
}

/* Check the template text of scalar n (or of a file's text, when file is
 * set: positions then refer to that file).  ctx names the field for
 * messages ("task 'x': field 'sql'"). */
static enum err_code check_text(struct loader *L, const struct names *nm,
                                const char *text, enum tmpl_mode mode,
                                yaml_node_t *n, const char *file,
                                const char *ctx)
{
  struct tmpl_pos p = {0, 1, 1};
  struct err te = {0};
  int line, col;
  enum err_code rc = tmpl_check(text, mode, nm->v, nm->n, &p, &te);
  if (rc == ERR_OK) {
    /* params spliced into this text must be acceptable in this mode */
    size_t pos = 0;
    struct tmpl_tag t;
    while (tmpl_next(text, &pos, &t, &te) == ERR_OK) {
      if (t.kind != TMPL_PARAM)
        continue;
      char name[256];
      snprintf(name, sizeof(name), "%.*s", (int)t.name_len, t.name);
      const cJSON *v = cJSON_GetObjectItemCaseSensitive(L->d->params, name);
      if (v && cJSON_IsString(v) &&
          tmpl_check_value(mode, TMPL_PARAM, v->valuestring, &te) != ERR_OK) {
        tmpl_pos_at(text, t.off, &p);
        rc = ERR_PARSE;
        break;
      }
    }
    if (rc == ERR_OK)
      return ERR_OK;
  }
  if (file)
    return err_set(L->e, ERR_PARSE, "%s:%d:%d: %s (%s at %s:%d:%d)", file,
                   p.line, p.col, te.msg, ctx, L->path, MARK(n));
  dagy_scalar_pos(L, n, &p, &line, &col);
  return dagy_fail_at(L, line, col, ERR_PARSE, "%s: %s", ctx, te.msg);
}

/* SQL that sqlsplit cannot split (unterminated string...) fails now. */
static enum err_code check_sql_split(struct loader *L, const char *text,
                                     yaml_node_t *n, const char *file,
                                     const char *ctx)
{
  struct sqlsplit_list l;
  struct err se = {0};
  if (sqlsplit_split(text, &l, &se) == ERR_OK) {
    sqlsplit_list_free(&l);
    return ERR_OK;
  }
  if (se.code == ERR_NOMEM)
    return err_set(L->e, ERR_NOMEM, "out of memory");
  int sl = 1;
  const char *msg = se.msg;
  if (sscanf(se.msg, "line %d: ", &sl) == 1 && strstr(se.msg, ": "))
    msg = strstr(se.msg, ": ") + 2;
  if (file)
    return err_set(L->e, ERR_PARSE, "%s:%d:1: %s (%s at %s:%d:%d)", file, sl,
                   msg, ctx, L->path, MARK(n));
  struct tmpl_pos p = {0, sl, 1};
  int line, col;
  dagy_scalar_pos(L, n, &p, &line, &col);
  return dagy_fail_at(L, line, col, ERR_PARSE, "%s: %s", ctx, msg);
}

/* Check every string of a value: a scalar, or the values and items of
 * maps and lists at any depth (not the keys). */
static enum err_code check_tree(struct loader *L, const struct names *nm,
                                enum tmpl_mode mode, yaml_node_t *n,
                                const char *ctx, int depth)
{
  enum err_code rc;
  if (depth > DAG_JSON_DEPTH_MAX)
    return FAIL(L, n, "%s is nested too deeply", ctx);
  if (++L->walked > DAG_JSON_NODES_MAX)
    return FAIL(L, L->walk_top, "%s is too large (more than %d values "
                "after aliases)", ctx, DAG_JSON_NODES_MAX);
  if (is_scalar(n))
    return is_null(n) ? ERR_OK
                      : check_text(L, nm, sval(n), mode, n, NULL, ctx);
  if (n->type == YAML_MAPPING_NODE) {
    FOR_PAIRS(L, n, p)
    if ((rc = check_tree(L, nm, mode, node(L, p->value), ctx, depth + 1)))
      return rc;
  } else {
    FOR_ITEMS(L, n, it)
    if ((rc = check_tree(L, nm, mode, node(L, *it), ctx, depth + 1)))
      return rc;
  }
  return ERR_OK;
}

/* The templates in a value, in the mode of where it lands (a task
 * field's: task_field.mode). */
static enum err_code check_field_templates(struct loader *L,
                                           const struct names *nm,
                                           enum tmpl_mode mode,
                                           yaml_node_t *n, const char *ctx)
{
  /* a list is an argv: no shell quoting applies */
  if (mode == TMPL_SHELL && n->type == YAML_SEQUENCE_NODE)
    mode = TMPL_PLAIN;
  L->walked = 0;
  L->walk_top = n;
  return check_tree(L, nm, mode, n, ctx, 0);
}

/* ------------------------------------------------------------------ */
/* DAG-level keys                                                      */

static enum err_code parse_params(struct loader *L, yaml_node_t *n)
{
  enum err_code rc;
  if (is_null(n))
    return ERR_OK;
  if (n->type != YAML_MAPPING_NODE)
    return FAIL(L, n, "params must be a mapping (NAME: value), not %s",
                dagy_what_is(n));
  if ((rc = dagy_map_check(L, n, "params")) != ERR_OK)
    return rc;
  FOR_PAIRS(L, n, p) {
    yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
    if (!is_scalar(v))
      return FAIL(L, v, "params: '%s' must be a single value, not %s",
                  sval(k), dagy_what_is(v));
    if (!cJSON_AddStringToObject(L->d->params, sval(k),
                                 is_null(v) ? "" : sval(v)))
      return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  return ERR_OK;
}

static enum err_code parse_strlist(struct loader *L, yaml_node_t *n,
                                   const char *what, char ***out,
                                   size_t *count)
{
  if (is_null(n))
    return ERR_OK;
  if (is_scalar(n)) {
    *out = calloc(1, sizeof(char *));
    if (!*out || !((*out)[0] = strdup(sval(n))))
      return err_set(L->e, ERR_NOMEM, "out of memory");
    *count = 1;
    return ERR_OK;
  }
  if (n->type != YAML_SEQUENCE_NODE)
    return FAIL(L, n, "%s must be a list, not %s", what, dagy_what_is(n));
  size_t cnt = (size_t)(n->data.sequence.items.top -
                        n->data.sequence.items.start);
  *out = calloc(cnt ? cnt : 1, sizeof(char *));
  if (!*out)
    return err_set(L->e, ERR_NOMEM, "out of memory");
  *count = 0;
  FOR_ITEMS(L, n, it) {
    yaml_node_t *v = node(L, *it);
    if (!is_scalar(v) || is_null(v))
      return FAIL(L, v, "items of %s must be names, not %s", what,
                  dagy_what_is(v));
    if (!((*out)[(*count)++] = strdup(sval(v))))
      return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  return ERR_OK;
}

static const char *const rule_names[] = {
    "all_success", "all_done",    "one_success",  "all_failed",
    "none_failed", "one_failed", "none_skipped", NULL};

static enum err_code get_rule(struct loader *L, const char *ctx,
                              yaml_node_t *n, enum dag_trigger_rule *out)
{
  if (is_scalar(n))
    for (int i = 0; rule_names[i]; i++)
      if (!strcmp(sval(n), rule_names[i])) {
        *out = (enum dag_trigger_rule)i;
        return ERR_OK;
      }
  return FAIL(L, n,
              "%s: trigger_rule %s%s%s is not one of all_success, all_done, "
              "one_success, all_failed, none_failed, one_failed, "
              "none_skipped",
              ctx, is_scalar(n) ? "'" : "", is_scalar(n) ? sval(n) : dagy_what_is(n),
              is_scalar(n) ? "'" : "");
}

/* The retry/timeout keys shared by default_args and tasks.  Returns 1 if
 * key was one of them (rc set), 0 otherwise. */
static int retry_key(struct loader *L, const char *prefix, const char *key,
                     yaml_node_t *v, struct dag_retry *r, enum err_code *rc)
{
  char w[400];
  snprintf(w, sizeof(w), "%s%s%s", prefix ? prefix : "", prefix ? ": " : "",
           key);
  if (!strcmp(key, "retries"))
    *rc = dagy_int(L, v, w, 0, 100, &r->retries);
  else if (!strcmp(key, "retry_delay"))
    *rc = dagy_duration(L, v, w, &r->retry_delay_s);
  else if (!strcmp(key, "retry_exponential_backoff"))
    *rc = dagy_bool(L, v, w, &r->exponential_backoff);
  else if (!strcmp(key, "max_retry_delay"))
    *rc = dagy_duration(L, v, w, &r->max_retry_delay_s);
  else if (!strcmp(key, "timeout"))
    *rc = is_null(v) ? (r->timeout_s = 0, ERR_OK)
                     : dagy_duration(L, v, w, &r->timeout_s);
  else
    return 0;
  return 1;
}

static enum err_code parse_default_args(struct loader *L, yaml_node_t *n)
{
  enum err_code rc;
  if (is_null(n))
    return ERR_OK;
  if (n->type != YAML_MAPPING_NODE)
    return FAIL(L, n, "default_args must be a mapping, not %s", dagy_what_is(n));
  if ((rc = dagy_map_check(L, n, "default_args")) != ERR_OK)
    return rc;
  FOR_PAIRS(L, n, p) {
    yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
    if (retry_key(L, "default_args", sval(k), v, &L->d->default_args, &rc)) {
      if (rc)
        return rc;
    } else if (!strcmp(sval(k), "trigger_rule")) {
      rc = get_rule(L, "default_args", v, &L->d->default_trigger_rule);
      if (rc != ERR_OK)
        return rc;
    } else {
      return FAIL(L, k,
                  "unknown key '%s' in default_args (known: retries, "
                  "retry_delay, retry_exponential_backoff, max_retry_delay, "
                  "timeout, trigger_rule)",
                  sval(k));
    }
  }
  return ERR_OK;
}

static enum err_code parse_callback(struct loader *L, const struct names *nm,
                                    yaml_node_t *n, const char *what,
                                    struct dag_callback *cb)
{
  enum err_code rc;
  char ctx[64];
  yaml_node_t *url = NULL, *method = NULL, *headers = NULL, *body = NULL;
  if (is_null(n))
    return ERR_OK;
  cb->line = (int)n->start_mark.line + 1;
  cb->col = (int)n->start_mark.column + 1;
  if (is_scalar(n)) {
    url = n;
  } else if (n->type == YAML_MAPPING_NODE) {
    if ((rc = dagy_map_check(L, n, what)) != ERR_OK)
      return rc;
    FOR_PAIRS(L, n, p) {
      yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
      if (!strcmp(sval(k), "url"))
        url = v;
      else if (!strcmp(sval(k), "method"))
        method = v;
      else if (!strcmp(sval(k), "headers"))
        headers = v;
      else if (!strcmp(sval(k), "body"))
        body = v;
      else
        return FAIL(L, k, "unknown key '%s' in %s (known: url, method, "
                    "headers, body)", sval(k), what);
    }
    if (!url)
      return FAIL(L, n, "%s needs a url", what);
  } else {
    return FAIL(L, n, "%s must be a URL or a mapping with url, method, "
                "headers, body, not %s", what, dagy_what_is(n));
  }
  snprintf(ctx, sizeof(ctx), "%s url", what);
  if ((rc = dagy_str(L, url, ctx, &cb->url)) != ERR_OK)
    return rc;
  if (strncmp(cb->url, "{{", 2) != 0 && strncmp(cb->url, "http://", 7) &&
      strncmp(cb->url, "https://", 8))
    return FAIL(L, url, "%s url must start with http:// or https://", what);
  if ((rc = check_text(L, nm, cb->url, TMPL_URL, url, NULL, ctx)) != ERR_OK)
    return rc;
  if (method) {
    static const char *const methods[] = {"GET", "POST", "PUT", "PATCH",
                                          "DELETE", NULL};
    if ((rc = dagy_str(L, method, "method", &cb->method)) != ERR_OK)
      return rc;
    int ok = 0;
    for (int i = 0; methods[i]; i++)
      if (!strcasecmp(cb->method, methods[i])) {
        strcpy(cb->method, methods[i]);
        ok = 1;
      }
    if (!ok)
      return FAIL(L, method, "%s method '%s' is not one of GET, POST, PUT, "
                  "PATCH, DELETE", what, cb->method);
  } else if (!(cb->method = strdup("POST"))) {
    return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  if (headers && !is_null(headers)) {
    snprintf(ctx, sizeof(ctx), "%s headers", what);
    if (headers->type != YAML_MAPPING_NODE)
      return FAIL(L, headers, "%s must be a mapping (Name: value), not %s",
                  ctx, dagy_what_is(headers));
    if ((rc = dagy_map_check(L, headers, ctx)) != ERR_OK)
      return rc;
    FOR_PAIRS(L, headers, p) {
      yaml_node_t *v = node(L, p->value);
      if (!is_scalar(v) || is_null(v))
        return FAIL(L, v, "%s: '%s' must be a single value, not %s", ctx,
                    sval(node(L, p->key)), dagy_what_is(v));
    }
    if ((rc = dagy_json_of(L, headers, ctx, &cb->headers)) ||
        (rc = check_field_templates(L, nm, TMPL_HEADER, headers, ctx)))
      return rc;
  }
  if (body && !is_null(body)) {
    snprintf(ctx, sizeof(ctx), "%s body", what);
    if ((rc = dagy_str(L, body, ctx, &cb->body)) != ERR_OK ||
        (rc = check_text(L, nm, cb->body, TMPL_PLAIN, body, NULL, ctx)))
      return rc;
  }
  return ERR_OK;
}

static enum err_code parse_start_date(struct loader *L, yaml_node_t *n)
{
  struct dag_datetime *dt = &L->d->start_date;
  if (is_null(n))
    return ERR_OK;
  const char *s = is_scalar(n) ? sval(n) : "";
  char date[11];
  int h = 0, mi = 0, se = 0, used = 0;
  size_t len = strlen(s);
  int ok = len >= 10;
  if (ok) {
    memcpy(date, s, 10);
    date[10] = '\0';
    ok = cron_parse_date(date, &dt->year, &dt->month, &dt->day) == ERR_OK;
  }
  if (ok && len > 10) {
    ok = (s[10] == 'T' || s[10] == ' ') &&
         (sscanf(s + 11, "%2d:%2d%n", &h, &mi, &used) == 2) &&
         isdigit((unsigned char)s[11]) && isdigit((unsigned char)s[12]) &&
         isdigit((unsigned char)s[14]) && isdigit((unsigned char)s[15]);
    if (ok && s[11 + used] == ':') {
      int u2 = 0;
      ok = sscanf(s + 12 + used, "%2d%n", &se, &u2) == 1 && u2 == 2;
      used += 1 + u2;
    }
    ok = ok && s[11 + used] == '\0' && h < 24 && mi < 60 && se < 60;
  }
  if (!ok)
    return FAIL(L, n,
                "start_date %s%s%s is not a date YYYY-MM-DD or date-time "
                "YYYY-MM-DDTHH:MM[:SS] (scheduler time zone)",
                is_scalar(n) ? "'" : "", is_scalar(n) ? s : dagy_what_is(n),
                is_scalar(n) ? "'" : "");
  dt->hour = h;
  dt->minute = mi;
  dt->second = se;
  dt->set = 1;
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* tasks                                                               */

#define COMMON_LIST                                                         \
  "id, type, depends_on, trigger_rule, retries, retry_delay, "             \
  "retry_exponential_backoff, max_retry_delay, timeout, description"

static void type_list(char *buf, size_t cap)
{
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; task_type_at(i); i++) {
    int n = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "",
                     task_type_at(i)->name);
    if (n < 0 || (size_t)n >= cap - used)
      break;
    used += (size_t)n;
  }
}

static void field_list(const struct task_type *ty, char *buf, size_t cap)
{
  size_t used = 0;
  buf[0] = '\0';
  for (const struct task_field *f = ty->fields; f && f->name; f++) {
    int n = snprintf(buf + used, cap - used, "%s%s",
                     f == ty->fields ? "" : ", ", f->name);
    if (n < 0 || (size_t)n >= cap - used)
      break;
    used += (size_t)n;
  }
}

/* Does value n have the YAML shape field f declares? */
static enum err_code field_kind_ok(struct loader *L, const char *ctx,
                                   const struct task_field *f, yaml_node_t *n)
{
  long v;
  int b;
  switch (f->kind) {
  case TASK_F_SCALAR:
    if (!is_scalar(n))
      return FAIL(L, n, "%s: field '%s' must be a single value, not %s",
                  ctx, f->name, dagy_what_is(n));
    return ERR_OK;
  case TASK_F_INT:
    if (!is_plain(n) || !dagy_parse_long(sval(n), &v))
      return FAIL(L, n, "%s: field '%s' must be an integer, not %s%s%s", ctx,
                  f->name, is_scalar(n) ? "'" : "",
                  is_scalar(n) ? sval(n) : dagy_what_is(n),
                  is_scalar(n) ? "'" : "");
    return ERR_OK;
  case TASK_F_BOOL:
    if (!is_plain(n) || !dagy_bool_word(sval(n), &b))
      return FAIL(L, n, "%s: field '%s' must be true or false, not %s%s%s",
                  ctx, f->name, is_scalar(n) ? "'" : "",
                  is_scalar(n) ? sval(n) : dagy_what_is(n),
                  is_scalar(n) ? "'" : "");
    return ERR_OK;
  case TASK_F_MAP:
    /* values may nest (trigger_dag conf); types that want single values
     * (env, headers) say so in their check() */
    if (n->type != YAML_MAPPING_NODE)
      return FAIL(L, n, "%s: field '%s' must be a mapping (NAME: value), "
                  "not %s", ctx, f->name, dagy_what_is(n));
    return ERR_OK;
  case TASK_F_LIST:
    if (n->type != YAML_SEQUENCE_NODE)
      return FAIL(L, n, "%s: field '%s' must be a list, not %s", ctx,
                  f->name, dagy_what_is(n));
    return ERR_OK;
  case TASK_F_INT_OR_LIST:
    if (n->type == YAML_SEQUENCE_NODE) {
      FOR_ITEMS(L, n, it) {
        yaml_node_t *x = node(L, *it);
        if (!is_plain(x) || !dagy_parse_long(sval(x), &v))
          return FAIL(L, x, "%s: field '%s' must hold integers, not %s%s%s",
                      ctx, f->name, is_scalar(x) ? "'" : "",
                      is_scalar(x) ? sval(x) : dagy_what_is(x),
                      is_scalar(x) ? "'" : "");
      }
      return ERR_OK;
    }
    if (!is_plain(n) || !dagy_parse_long(sval(n), &v))
      return FAIL(L, n, "%s: field '%s' must be an integer or a list of "
                  "integers, not %s%s%s", ctx, f->name,
                  is_scalar(n) ? "'" : "", is_scalar(n) ? sval(n) : dagy_what_is(n),
                  is_scalar(n) ? "'" : "");
    return ERR_OK;
  }
  return ERR_OK;
}

static const char *ctx_field(const struct task_ctx *t, const char *name)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(t->field_user, name);
  return cJSON_IsString(j) ? j->valuestring : NULL;
}

static const cJSON *ctx_field_json(const struct task_ctx *t, const char *name)
{
  return cJSON_GetObjectItemCaseSensitive(t->field_user, name);
}

/* The file a file field names, as the task resolves it (task_sql.c):
 * absolute, or found from the working directory, or next to the DAG
 * file. */
static char *resolve_file(const char *dag_path, const char *rel)
{
  if (rel[0] == '/' || access(rel, F_OK) == 0)
    return strdup(rel);
  const char *slash = strrchr(dag_path, '/');
  if (!slash)
    return strdup(rel);
  size_t n = (size_t)(slash - dag_path) + 1 + strlen(rel) + 1;
  char *p = malloc(n);
  if (p)
    snprintf(p, n, "%.*s/%s", (int)(slash - dag_path), dag_path, rel);
  if (p && access(p, F_OK) != 0) {
    free(p);
    return strdup(rel);
  }
  return p;
}

static enum err_code add_source(struct loader *L, const char *path,
                                const struct stat *st)
{
  struct dag *d = L->d;
  struct dag_source *v = realloc(d->sources, (d->nsources + 1) * sizeof(*v));
  if (!v)
    return err_set(L->e, ERR_NOMEM, "out of memory");
  d->sources = v;
  if (!(v[d->nsources].path = strdup(path)))
    return err_set(L->e, ERR_NOMEM, "out of memory");
  v[d->nsources].mtime_ns = mtime_ns(st);
  v[d->nsources].size = (int64_t)st->st_size;
  d->nsources++;
  return ERR_OK;
}

/* A file field (task_field.file): read the file it names (resolved as
 * the task reads it), hash it into the DAG, watch it as a source and
 * check its text in the field's template mode. */
static enum err_code load_file_field(struct loader *L, const struct names *nm,
                                     struct dag_task *t,
                                     const struct task_field *f,
                                     yaml_node_t *n, const char *ctx)
{
  struct stat st;
  size_t len;
  struct err fe = {0};
  if (!(t->file_path = resolve_file(L->path, sval(n))))
    return err_set(L->e, ERR_NOMEM, "out of memory");
  enum err_code rc = read_file(t->file_path, DAG_FIELD_FILE_MAX,
                               &t->file_text, &len, &st, &fe);
  if (rc != ERR_OK)
    return dagy_fail_at(L, MARK(n), rc == ERR_NOMEM ? rc : ERR_PARSE,
                        "%s: %s: %s", ctx, f->name, fe.msg);
  L->d->hash = hash_fnv1a_more(L->d->hash, "\0", 1);
  L->d->hash = hash_fnv1a_more(L->d->hash, t->file_text, len);
  if ((rc = add_source(L, t->file_path, &st)) != ERR_OK)
    return rc;
  char fctx[400];
  snprintf(fctx, sizeof(fctx), "%s of %s", f->name, ctx);
  if ((rc = check_text(L, nm, t->file_text, f->mode, n, t->file_path,
                       fctx)) != ERR_OK)
    return rc;
  if (f->mode != TMPL_SQL)
    return ERR_OK;
  return check_sql_split(L, t->file_text, n, t->file_path, fctx);
}

/* Remembered per task for the second pass (depends_on positions). */
struct task_nodes {
  yaml_node_t *map;
  yaml_node_t *deps; /* depends_on value or NULL */
};

static yaml_node_t *dep_item(struct loader *L, yaml_node_t *deps, size_t i)
{
  if (is_scalar(deps))
    return deps;
  return node(L, deps->data.sequence.items.start[i]);
}

/* A task's id and type (the keys the rest depends on); ctx gets
 * "task 'ID'" for the messages that follow. */
static enum err_code task_head(struct loader *L, yaml_node_t *n,
                               struct dag_task *t, char *ctx, size_t cap)
{
  enum err_code rc;
  yaml_node_t *idn = NULL, *typen = NULL;
  FOR_PAIRS(L, n, p) {
    const char *k = sval(node(L, p->key));
    if (!strcmp(k, "id"))
      idn = node(L, p->value);
    else if (!strcmp(k, "type"))
      typen = node(L, p->value);
  }
  if (!idn)
    return FAIL(L, n, "task has no id");
  if ((rc = dagy_str(L, idn, "task id", &t->id)) != ERR_OK)
    return rc;
  if (!dagy_id_ok(t->id))
    return FAIL(L, idn, "task id '%s' must be 1-%d letters, digits, _ . -",
                t->id, DAG_ID_MAX);
  snprintf(ctx, cap, "task '%s'", t->id);
  if (!typen)
    return FAIL(L, n, "%s has no type", ctx);
  if ((rc = dagy_str(L, typen, "task type", &t->type_name)) != ERR_OK)
    return rc;
  if (!(t->type = task_type_find(t->type_name))) {
    char types[256];
    type_list(types, sizeof(types));
    return FAIL(L, typen, "%s: unknown type '%s' (types: %s)", ctx,
                t->type_name, types);
  }
  return ERR_OK;
}

/* One of the keys every task has (retries and timeouts, depends_on,
 * trigger_rule, description).  Returns 1 when k was one (*rc its
 * result), 0 when it is for the type. */
static int task_common_key(struct loader *L, const char *ctx,
                           struct dag_task *t, struct task_nodes *tn,
                           const char *k, yaml_node_t *v,
                           enum err_code *rc)
{
  *rc = ERR_OK;
  if (retry_key(L, ctx, k, v, &t->retry, rc)) {
    if (*rc)
      return 1;
    /* a type may declare a common key too (http timeout): pass it on */
    if (task_type_field(t->type, k)) {
      char num[32];
      const struct dag_retry *r = &t->retry;
      snprintf(num, sizeof(num), "%d",
               !strcmp(k, "timeout")           ? r->timeout_s
               : !strcmp(k, "retries")         ? r->retries
               : !strcmp(k, "retry_delay")     ? r->retry_delay_s
               : !strcmp(k, "max_retry_delay") ? r->max_retry_delay_s
                                               : r->exponential_backoff);
      if (!cJSON_AddStringToObject(t->fields, k, num))
        *rc = err_set(L->e, ERR_NOMEM, "out of memory");
    }
    return 1;
  }
  if (!strcmp(k, "depends_on")) {
    tn->deps = v;
    *rc = parse_strlist(L, v, "depends_on", &t->depends_on, &t->nupstream);
    return 1;
  }
  if (!strcmp(k, "trigger_rule")) {
    *rc = get_rule(L, ctx, v, &t->trigger_rule);
    return 1;
  }
  if (!strcmp(k, "description")) {
    *rc = dagy_str(L, v, "description", &t->description);
    return 1;
  }
  return 0;
}

/* One field of the task's type into t->fields, its templates checked
 * in the field's mode; a file field's node is remembered in *file_node
 * for load_file_field. */
static enum err_code task_type_key(struct loader *L, const struct names *nm,
                                   const char *ctx, struct dag_task *t,
                                   yaml_node_t *kn, yaml_node_t *v,
                                   yaml_node_t **file_node,
                                   const struct task_field **file_field)
{
  enum err_code rc;
  const char *k = sval(kn);
  const struct task_field *f = task_type_field(t->type, k);
  if (!f) {
    char fields[512];
    field_list(t->type, fields, sizeof(fields));
    return FAIL(L, kn,
                "%s: unknown field '%s' for type '%s' (fields: %s; common: "
                COMMON_LIST ")",
                ctx, k, t->type->name, *fields ? fields : "none");
  }
  if (is_null(v))
    return ERR_OK; /* "body: ~" = absent */
  if ((rc = field_kind_ok(L, ctx, f, v)) != ERR_OK)
    return rc;
  char fctx[400];
  snprintf(fctx, sizeof(fctx), "%s: field '%s'", ctx, k);
  cJSON *j;
  if ((rc = dagy_json_of(L, v, fctx, &j)) != ERR_OK)
    return rc;
  if (!cJSON_AddItemToObject(t->fields, k, j)) {
    cJSON_Delete(j);
    return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  if (f->templated &&
      (rc = check_field_templates(L, nm, f->mode, v, fctx)) != ERR_OK)
    return rc;
  if (f->mode == TMPL_SQL && !f->file && is_scalar(v) &&
      (rc = check_sql_split(L, sval(v), v, NULL, fctx)) != ERR_OK)
    return rc;
  if (f->file && is_scalar(v) && *sval(v)) {
    *file_node = v;
    *file_field = f;
  }
  return ERR_OK;
}

/* The type's required fields are there, and exactly one of each one-of
 * group. */
static enum err_code task_required(struct loader *L, yaml_node_t *n,
                                   const struct dag_task *t, const char *ctx)
{
  for (const struct task_field *f = t->type->fields; f && f->name; f++) {
    int have = cJSON_GetObjectItemCaseSensitive(t->fields, f->name) != NULL;
    if (f->required && !have)
      return FAIL(L, n, "%s: type '%s' needs field '%s'", ctx,
                  t->type->name, f->name);
    if (f->one_of > 0 && (f == t->type->fields || f[-1].one_of != f->one_of)) {
      /* first field of its group: count the group */
      int cnt = 0;
      char names[256] = "";
      size_t used = 0;
      for (const struct task_field *g = f; g->name; g++) {
        if (g->one_of != f->one_of)
          continue;
        cnt += cJSON_GetObjectItemCaseSensitive(t->fields, g->name) != NULL;
        int w = snprintf(names + used, sizeof(names) - used, "%s'%s'",
                         used ? " or " : "", g->name);
        if (w > 0 && (size_t)w < sizeof(names) - used)
          used += (size_t)w;
      }
      if (cnt != 1)
        return FAIL(L, n, "%s: give exactly one of %s", ctx, names);
    }
  }
  return ERR_OK;
}

/* The type's own check of its values (task_type.check); the error points
 * at the field its message names ("field 'x'..."), else at the task. */
static enum err_code task_type_check(struct loader *L, yaml_node_t *n,
                                     struct dag_task *t, const char *ctx)
{
  if (!t->type->check)
    return ERR_OK;
  struct task_ctx tc;
  struct err ce = {0};
  enum err_code rc;
  memset(&tc, 0, sizeof(tc));
  tc.dag_id = L->d->dag_id;
  tc.task_id = t->id;
  tc.dag_file = L->path;
  tc.field = ctx_field;
  tc.field_json = ctx_field_json;
  tc.field_user = t->fields;
  if ((rc = t->type->check(&tc, &ce)) == ERR_OK)
    return ERR_OK;
  yaml_node_t *at = n;
  char fname[128];
  if (sscanf(ce.msg, "field '%127[^'.]", fname) == 1) {
    FOR_PAIRS(L, n, p) {
      if (!strcmp(sval(node(L, p->key)), fname))
        at = node(L, p->value);
    }
  }
  return dagy_fail_at(L, MARK(at), rc == ERR_NOMEM ? rc : ERR_PARSE, "%s: %s",
                      ctx, ce.msg);
}

static enum err_code parse_task(struct loader *L, const struct names *nm,
                                yaml_node_t *n, struct dag_task *t,
                                struct task_nodes *tn)
{
  enum err_code rc;
  char ctx[300];
  yaml_node_t *file_node = NULL;
  const struct task_field *file_field = NULL;
  tn->map = n;
  t->line = (int)n->start_mark.line + 1;
  t->col = (int)n->start_mark.column + 1;
  t->retry = L->d->default_args;
  t->trigger_rule = L->d->default_trigger_rule;
  if (!(t->fields = cJSON_CreateObject()))
    return err_set(L->e, ERR_NOMEM, "out of memory");
  if (n->type != YAML_MAPPING_NODE)
    return FAIL(L, n, "a task must be a mapping with id and type, not %s",
                dagy_what_is(n));
  if ((rc = dagy_map_check(L, n, "a task")) != ERR_OK ||
      (rc = task_head(L, n, t, ctx, sizeof(ctx))) != ERR_OK)
    return rc;

  /* common keys, then the type's fields */
  FOR_PAIRS(L, n, p) {
    yaml_node_t *kn = node(L, p->key), *v = node(L, p->value);
    const char *k = sval(kn);
    if (!strcmp(k, "id") || !strcmp(k, "type"))
      continue;
    if (!task_common_key(L, ctx, t, tn, k, v, &rc))
      rc = task_type_key(L, nm, ctx, t, kn, v, &file_node, &file_field);
    if (rc != ERR_OK)
      return rc;
  }
  if ((rc = task_required(L, n, t, ctx)) != ERR_OK)
    return rc;
  if (file_node &&
      (rc = load_file_field(L, nm, t, file_field, file_node, ctx)) != ERR_OK)
    return rc;
  return task_type_check(L, n, t, ctx);
}

/* ids sorted for lookup */
struct idref {
  const char *id;
  size_t idx;
};

static int idref_cmp(const void *a, const void *b)
{
  const struct idref *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  if (c)
    return c;
  return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static ptrdiff_t idref_find(const struct idref *v, size_t n, const char *id)
{
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(v[mid].id, id);
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n && !strcmp(v[lo].id, id) ? (ptrdiff_t)v[lo].idx : -1;
}

static enum err_code link_tasks(struct loader *L, struct task_nodes *tn)
{
  struct dag *d = L->d;
  size_t n = d->ntasks;
  enum err_code rc = ERR_OK;
  struct idref *ids = malloc((n ? n : 1) * sizeof(*ids));
  size_t *ndown = calloc(n ? n : 1, sizeof(*ndown));
  if (!ids || !ndown) {
    rc = err_set(L->e, ERR_NOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < n; i++)
    ids[i] = (struct idref){d->tasks[i].id, i};
  qsort(ids, n, sizeof(*ids), idref_cmp);
  /* duplicate ids: report the earliest repeat, naming the first use
   * (sorting by (id, index) puts the first use right before its repeats) */
  size_t dup = (size_t)-1, first = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i + 1;
    while (j < n && !strcmp(ids[j].id, ids[i].id))
      j++;
    if (j - i > 1 && ids[i + 1].idx < dup) {
      dup = ids[i + 1].idx;
      first = ids[i].idx;
    }
    i = j;
  }
  if (dup != (size_t)-1) {
    yaml_node_t *m = tn[dup].map;
    yaml_node_t *at = m;
    FOR_PAIRS(L, m, p) {
      if (!strcmp(sval(node(L, p->key)), "id"))
        at = node(L, p->value);
    }
    rc = FAIL(L, at, "duplicate task id '%s' (first at line %d)",
              d->tasks[dup].id, d->tasks[first].line);
    goto out;
  }
  /* depends_on -> indices */
  for (size_t i = 0; i < n; i++) {
    struct dag_task *t = &d->tasks[i];
    if (!t->nupstream)
      continue;
    if (!(t->upstream = malloc(t->nupstream * sizeof(size_t)))) {
      rc = err_set(L->e, ERR_NOMEM, "out of memory");
      goto out;
    }
    for (size_t k = 0; k < t->nupstream; k++) {
      ptrdiff_t j = idref_find(ids, n, t->depends_on[k]);
      if (j < 0) {
        rc = FAIL(L, dep_item(L, tn[i].deps, k),
                  "task '%s' depends on unknown task '%s'", t->id,
                  t->depends_on[k]);
        goto out;
      }
      for (size_t q = 0; q < k; q++)
        if (t->upstream[q] == (size_t)j) {
          rc = FAIL(L, dep_item(L, tn[i].deps, k),
                    "task '%s' lists '%s' twice in depends_on", t->id,
                    t->depends_on[k]);
          goto out;
        }
      t->upstream[k] = (size_t)j;
      ndown[j]++;
    }
  }
  for (size_t i = 0; i < n; i++) {
    if (ndown[i] &&
        !(d->tasks[i].downstream = malloc(ndown[i] * sizeof(size_t)))) {
      rc = err_set(L->e, ERR_NOMEM, "out of memory");
      goto out;
    }
  }
  for (size_t i = 0; i < n; i++) /* downstream lists in file order */
    for (size_t k = 0; k < d->tasks[i].nupstream; k++) {
      struct dag_task *u = &d->tasks[d->tasks[i].upstream[k]];
      u->downstream[u->ndownstream++] = i;
    }
out:
  free(ids);
  free(ndown);
  return rc;
}

/* Iterative DFS along downstream edges; a grey task met again closes a
 * cycle, reported from that task around to itself. */
static enum err_code find_cycle(struct loader *L, struct task_nodes *tn)
{
  struct dag *d = L->d;
  size_t n = d->ntasks;
  enum err_code rc = ERR_OK;
  unsigned char *color = calloc(n ? n : 1, 1);
  size_t *stk = malloc((n ? n : 1) * sizeof(size_t));
  size_t *pos = calloc(n ? n : 1, sizeof(size_t));
  if (!color || !stk || !pos) {
    rc = err_set(L->e, ERR_NOMEM, "out of memory");
    goto out;
  }
  for (size_t s = 0; s < n && rc == ERR_OK; s++) {
    if (color[s])
      continue;
    size_t top = 0;
    stk[top++] = s;
    color[s] = 1;
    while (top > 0) {
      size_t u = stk[top - 1];
      struct dag_task *tu = &d->tasks[u];
      if (pos[u] >= tu->ndownstream) {
        color[u] = 2;
        top--;
        continue;
      }
      size_t v = tu->downstream[pos[u]++];
      if (color[v] == 0) {
        color[v] = 1;
        stk[top++] = v;
        continue;
      }
      if (color[v] != 1)
        continue;
      /* cycle: v ... u -> v */
      char msg[ERR_MSG_MAX];
      size_t used = 0, b = top;
      while (b > 0 && stk[b - 1] != v)
        b--;
      msg[0] = '\0';
      for (size_t i = b - 1; i < top && used < sizeof(msg); i++) {
        int w = snprintf(msg + used, sizeof(msg) - used, "%s -> ",
                         d->tasks[stk[i]].id);
        if (w < 0)
          break;
        used += (size_t)w;
      }
      if (used < sizeof(msg))
        snprintf(msg + used, sizeof(msg) - used, "%s", d->tasks[v].id);
      /* point at v's depends_on entry naming u */
      struct dag_task *tv = &d->tasks[v];
      yaml_node_t *at = tn[v].map;
      for (size_t k = 0; k < tv->nupstream; k++)
        if (tv->upstream[k] == u)
          at = dep_item(L, tn[v].deps, k);
      rc = FAIL(L, at, "cycle: %s", msg);
      break;
    }
  }
out:
  free(color);
  free(stk);
  free(pos);
  return rc;
}

static enum err_code topo_sort(struct loader *L)
{
  struct dag *d = L->d;
  size_t n = d->ntasks, head = 0, tail = 0;
  size_t *indeg = calloc(n ? n : 1, sizeof(size_t));
  d->topo = malloc((n ? n : 1) * sizeof(size_t));
  if (!indeg || !d->topo) {
    free(indeg);
    return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++)
    indeg[i] = d->tasks[i].nupstream;
  for (size_t i = 0; i < n; i++)
    if (!indeg[i])
      d->topo[tail++] = i;
  while (head < tail) {
    struct dag_task *t = &d->tasks[d->topo[head++]];
    for (size_t k = 0; k < t->ndownstream; k++)
      if (--indeg[t->downstream[k]] == 0)
        d->topo[tail++] = t->downstream[k];
  }
  free(indeg);
  if (tail != n) /* find_cycle ran first: cannot happen */
    return err_set(L->e, ERR_INTERNAL, "%s: topological sort failed",
                   L->path);
  return ERR_OK;
}

static enum err_code parse_tasks(struct loader *L, const struct names *nm,
                                 yaml_node_t *n)
{
  struct dag *d = L->d;
  enum err_code rc = ERR_OK;
  if (is_null(n) || n->type != YAML_SEQUENCE_NODE)
    return FAIL(L, n, "tasks must be a list of tasks, not %s", dagy_what_is(n));
  size_t cnt = (size_t)(n->data.sequence.items.top -
                        n->data.sequence.items.start);
  if (cnt == 0)
    return FAIL(L, n, "tasks is empty: a DAG needs at least one task");
  if (cnt > DAG_TASKS_MAX)
    return FAIL(L, n, "more than %d tasks", DAG_TASKS_MAX);
  struct task_nodes *tn = calloc(cnt, sizeof(*tn));
  d->tasks = calloc(cnt, sizeof(*d->tasks));
  if (!tn || !d->tasks) {
    free(tn);
    return err_set(L->e, ERR_NOMEM, "out of memory");
  }
  FOR_ITEMS(L, n, it) {
    rc = parse_task(L, nm, node(L, *it), &d->tasks[d->ntasks],
                    &tn[d->ntasks]);
    d->ntasks++; /* counted even on error so dag_free sees its fields */
    if (rc != ERR_OK)
      break;
  }
  if (rc == ERR_OK)
    rc = link_tasks(L, tn);
  if (rc == ERR_OK)
    rc = find_cycle(L, tn);
  if (rc == ERR_OK)
    rc = topo_sort(L);
  free(tn);
  return rc;
}

/* ------------------------------------------------------------------ */
/* the file                                                            */

static const struct {
  const char *key;
  const char *hint;
} top_hints[] = {
    {"schedule_interval", " (use 'schedule')"},
    {"start", " (use 'start_date')"},
    {"retries", " (put it in default_args or a task)"},
    {"retry_delay", " (put it in default_args or a task)"},
    {"timeout", " (put it in default_args or a task)"},
    {"default_view", ""},
};

static enum err_code parse_root(struct loader *L, yaml_node_t *root)
{
  struct dag *d = L->d;
  enum err_code rc;
  enum {
    K_DAG_ID, K_DESC, K_SCHEDULE, K_START, K_CATCHUP, K_MAR, K_TAGS,
    K_PARAMS, K_DEFAULT_ARGS, K_ON_FAILURE, K_ON_SUCCESS, K_TASKS, K_N
  };
  static const char *const keys[K_N] = {
      "dag_id", "description", "schedule", "start_date", "catchup",
      "max_active_runs", "tags", "params", "default_args", "on_failure",
      "on_success", "tasks"};
  yaml_node_t *v[K_N] = {0};
  if (root->type != YAML_MAPPING_NODE)
    return FAIL(L, root, "a DAG file must be a mapping with dag_id and "
                "tasks, not %s", dagy_what_is(root));
  if ((rc = dagy_map_check(L, root, "the DAG")) != ERR_OK)
    return rc;
  FOR_PAIRS(L, root, p) {
    yaml_node_t *k = node(L, p->key);
    int i;
    for (i = 0; i < K_N; i++)
      if (!strcmp(sval(k), keys[i]))
        break;
    if (i < K_N) {
      v[i] = node(L, p->value);
      continue;
    }
    const char *hint = "";
    for (size_t h = 0; h < sizeof(top_hints) / sizeof(top_hints[0]); h++)
      if (!strcmp(sval(k), top_hints[h].key))
        hint = top_hints[h].hint;
    return FAIL(L, k,
                "unknown key '%s'%s (known: dag_id, description, schedule, "
                "start_date, catchup, max_active_runs, tags, params, "
                "default_args, on_failure, on_success, tasks)",
                sval(k), hint);
  }
  if (!v[K_DAG_ID])
    return FAIL(L, root, "missing dag_id");
  if ((rc = dagy_str(L, v[K_DAG_ID], "dag_id", &d->dag_id)) != ERR_OK)
    return rc;
  d->id_line = (int)v[K_DAG_ID]->start_mark.line + 1;
  d->id_col = (int)v[K_DAG_ID]->start_mark.column + 1;
  if (!dagy_id_ok(d->dag_id))
    return FAIL(L, v[K_DAG_ID],
                "dag_id '%s' must be 1-%d letters, digits, _ . -", d->dag_id,
                DAG_ID_MAX);
  if (v[K_DESC] && !is_null(v[K_DESC]) &&
      (rc = dagy_str(L, v[K_DESC], "description", &d->description)))
    return rc;
  if (v[K_SCHEDULE] && !is_null(v[K_SCHEDULE])) {
    struct err ce = {0};
    if ((rc = dagy_str(L, v[K_SCHEDULE], "schedule", &d->schedule)))
      return rc;
    if (cron_parse(&d->cron, d->schedule, &ce) != ERR_OK)
      return FAIL(L, v[K_SCHEDULE], "%s", ce.msg);
    /* a day that no month has ("0 0 30 2 *") is a mistake, not a DAG
     * that waits forever; 28 years from 2000 include every calendar */
    time_t next;
    if (cron_next(&d->cron, NULL, (time_t)946684800, &next, &ce) != ERR_OK)
      return FAIL(L, v[K_SCHEDULE],
                  "schedule '%s' never fires (no month in it has that day)",
                  d->schedule);
  }
  if (v[K_START] && (rc = parse_start_date(L, v[K_START])))
    return rc;
  if (v[K_CATCHUP] && (rc = dagy_bool(L, v[K_CATCHUP], "catchup",
                                     &d->catchup)))
    return rc;
  if (v[K_MAR] && (rc = dagy_int(L, v[K_MAR], "max_active_runs", 1, 10000,
                                &d->max_active_runs)))
    return rc;
  if (v[K_TAGS] && (rc = parse_strlist(L, v[K_TAGS], "tags", &d->tags,
                                       &d->ntags)))
    return rc;
  if (v[K_PARAMS] && (rc = parse_params(L, v[K_PARAMS])))
    return rc;
  if (v[K_DEFAULT_ARGS] && (rc = parse_default_args(L, v[K_DEFAULT_ARGS])))
    return rc;
  struct names nm = {0};
  if ((rc = param_names(L, &nm)) != ERR_OK)
    return rc;
  if (v[K_ON_FAILURE])
    rc = parse_callback(L, &nm, v[K_ON_FAILURE], "on_failure",
                        &d->on_failure);
  if (rc == ERR_OK && v[K_ON_SUCCESS])
    rc = parse_callback(L, &nm, v[K_ON_SUCCESS], "on_success",
                        &d->on_success);
  if (rc == ERR_OK && !v[K_TASKS])
    rc = FAIL(L, root, "missing tasks");
  if (rc == ERR_OK)
    rc = parse_tasks(L, &nm, v[K_TASKS]);
  free(nm.v);
  return rc;
}

static enum err_code yaml_fail(struct loader *L, yaml_parser_t *p)
{
  if (p->error == YAML_MEMORY_ERROR)
    return err_set(L->e, ERR_NOMEM, "%s: out of memory parsing YAML",
                   L->path);
  const yaml_mark_t *m = &p->problem_mark;
  if (p->context)
    return dagy_fail_at(L, (int)m->line + 1, (int)m->column + 1, ERR_PARSE,
                   "YAML syntax error: %s (%s at line %d)",
                   p->problem ? p->problem : "error", p->context,
                   (int)p->context_mark.line + 1);
  return dagy_fail_at(L, (int)m->line + 1, (int)m->column + 1, ERR_PARSE,
                 "YAML syntax error: %s", p->problem ? p->problem : "error");
}

enum err_code dag_load_file(const char *path, struct dag **out,
                            struct err *e)
{
  struct loader L = {0};
  struct stat st;
  yaml_parser_t parser;
  enum err_code rc;
  L.path = path;
  L.e = e;
  if ((rc = read_file(path, DAG_FILE_MAX, &L.text, &L.len, &st, e)))
    return rc;
  if (!(L.d = calloc(1, sizeof(*L.d))) ||
      !(L.d->params = cJSON_CreateObject()) || !(L.d->path = strdup(path))) {
    free(L.text);
    dag_free(L.d);
    return err_set(e, ERR_NOMEM, "out of memory");
  }
  struct dag *d = L.d;
  d->refs_ = 1;
  d->max_active_runs = 16;
  d->default_args.retry_delay_s = 300;
  d->default_args.max_retry_delay_s = 86400;
  d->hash = hash_fnv1a(L.text, L.len);
  if ((rc = add_source(&L, path, &st)) != ERR_OK)
    goto out;

  if (!yaml_parser_initialize(&parser)) {
    rc = err_set(e, ERR_NOMEM, "out of memory");
    goto out;
  }
  yaml_parser_set_input_string(&parser, (const unsigned char *)L.text, L.len);
  if (!yaml_parser_load(&parser, &L.doc)) {
    rc = yaml_fail(&L, &parser);
    yaml_parser_delete(&parser);
    goto out;
  }
  L.have_doc = 1;
  yaml_node_t *root = yaml_document_get_root_node(&L.doc);
  if (root) {
    yaml_document_t more;
    if (!yaml_parser_load(&parser, &more)) {
      rc = yaml_fail(&L, &parser);
    } else {
      yaml_node_t *r2 = yaml_document_get_root_node(&more);
      if (r2)
        rc = FAIL(&L, r2, "a DAG file holds one YAML document; this is a "
                  "second one");
      yaml_document_delete(&more);
    }
  }
  yaml_parser_delete(&parser);
  if (rc != ERR_OK)
    goto out;
  if (!root) {
    rc = dagy_fail_at(&L, 1, 1, ERR_PARSE,
                 "empty file: a DAG needs dag_id and tasks");
    goto out;
  }
  rc = parse_root(&L, root);
out:
  if (L.have_doc)
    yaml_document_delete(&L.doc);
  free(L.text);
  if (rc != ERR_OK) {
    dag_free(d);
    return rc;
  }
  *out = d;
  return ERR_OK;
}

ptrdiff_t dag_task_index(const struct dag *d, const char *id)
{
  for (size_t i = 0; id && i < d->ntasks; i++)
    if (!strcmp(d->tasks[i].id, id))
      return (ptrdiff_t)i;
  return -1;
}

const char *dag_task_str(const struct dag_task *t, const char *name)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(t->fields, name);
  return cJSON_IsString(j) ? j->valuestring : NULL;
}

const char *dag_task_role_str(const struct dag_task *t, int role)
{
  for (const struct task_field *f = t->type ? t->type->fields : NULL;
       f && f->name; f++)
    if ((int)f->role == role && role != TASK_ROLE_NONE)
      return dag_task_str(t, f->name);
  return NULL;
}

const struct cJSON *dag_task_json(const struct dag_task *t, const char *name)
{
  return cJSON_GetObjectItemCaseSensitive(t->fields, name);
}
