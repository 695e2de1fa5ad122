/* task.c - the table of task types and the helpers every type uses.
 *
 * A DAG task names its type in YAML (`type: sql`); the loader and the
 * scheduler find the type here by name.  Adding a type is one file
 * (src/task_<name>.c) plus one line in `types` below.  The helpers give
 * every type the same reading of fields (field() text or field_json()
 * values, whichever the loader provides), the same log line splitting,
 * and the same rule for deadlines and stop flags, so that messages read
 * alike across types.
 */
#include "mlopsd/task.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mlopsd/db.h"
#include "mlopsd/queue.h"
#include "mlopsd/tmpl.h"

static const struct task_type *const types[] = {
    &task_type_sql,   &task_type_shell,    &task_type_http,
    &task_type_trigger_dag, &task_type_train, &task_type_validate,
    &task_type_deploy, &task_type_drift,
    &task_type_label_feedback,
    &task_type_db_clean,
    &task_type_batch_predict,
};
#define NTYPES ((int)(sizeof(types) / sizeof(types[0])))

const struct task_type *task_type_find(const char *name)
{
  if (!name)
    return NULL;
  for (int i = 0; i < NTYPES; i++)
    if (strcmp(types[i]->name, name) == 0)
      return types[i];
  return NULL;
}

const struct task_type *task_type_at(int i)
{
  return i >= 0 && i < NTYPES ? types[i] : NULL;
}

const struct task_field *task_type_field(const struct task_type *type,
                                         const char *name)
{
  if (!type || !type->fields || !name)
    return NULL;
  for (const struct task_field *f = type->fields; f->name; f++)
    if (strcmp(f->name, name) == 0)
      return f;
  return NULL;
}

/* ------------------------------------------------------------------ */
/* log */

static void log_one(const struct task_ctx *t, const char *stream,
                    const char *line)
{
  if (t && t->log_line)
    t->log_line(t, stream, line);
}

void task_log_text(const struct task_ctx *t, const char *stream,
                   const char *text, size_t len)
{
  char buf[TASK_LOG_LINE_MAX + 1];
  size_t i = 0;
  if (!text)
    return;
  while (i < len) {
    size_t n = 0;
    while (i + n < len && text[i + n] != '\n' && n < TASK_LOG_LINE_MAX)
      n++;
    memcpy(buf, text + i, n);
    /* A CR before the newline belongs to the line ending, not the text. */
    size_t m = n;
    if (m > 0 && buf[m - 1] == '\r' && i + n < len && text[i + n] == '\n')
      m--;
    buf[m] = '\0';
    log_one(t, stream, buf);
    i += n;
    if (i < len && text[i] == '\n')
      i++;
  }
}

void task_logf(const struct task_ctx *t, const char *fmt, ...)
{
  char buf[TASK_LOG_LINE_MAX * 2];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
  task_log_text(t, "log", buf, len);
}

/* ------------------------------------------------------------------ */
/* fields */

enum err_code task_field_text(const struct task_ctx *t, const char *name,
                              char *buf, size_t cap, const char **out,
                              struct err *e)
{
  *out = NULL;
  const char *s = t->field ? t->field(t, name) : NULL;
  if (s) {
    *out = s;
    return ERR_OK;
  }
  const cJSON *j = t->field_json ? t->field_json(t, name) : NULL;
  if (!j || cJSON_IsNull(j))
    return ERR_OK;
  if (cJSON_IsString(j)) {
    *out = j->valuestring;
  } else if (cJSON_IsBool(j)) {
    snprintf(buf, cap, "%s", cJSON_IsTrue(j) ? "true" : "false");
    *out = buf;
  } else if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (d == (double)(long long)d)
      snprintf(buf, cap, "%lld", (long long)d);
    else
      snprintf(buf, cap, "%.17g", d);
    *out = buf;
  } else {
    return err_set(e, ERR_INVAL, "field '%s': expected a single value",
                   name);
  }
  return ERR_OK;
}

/* Nothing but blanks after a number's text. */
static int only_blanks(const char *end)
{
  while (*end == ' ' || *end == '\t')
    end++;
  return *end == '\0';
}

/* A numeric field: its text through strtol (integer) or strtod, nothing
 * but blanks after it, finite and within min..max.  *out is def when the
 * field is absent.  All task fields' bounds are well inside 2^53, so a
 * long goes through a double exactly. */
static enum err_code field_number(const struct task_ctx *t, const char *name,
                                  int integer, double def, double min,
                                  double max, double *out, struct err *e)
{
  char buf[64], *end;
  const char *s;
  *out = def;
  enum err_code rc = task_field_text(t, name, buf, sizeof(buf), &s, e);
  if (rc != ERR_OK || !s)
    return rc;
  errno = 0;
  double v = integer ? (double)strtol(s, &end, 10) : strtod(s, &end);
  if (errno || end == s || !only_blanks(end) || !isfinite(v) || v < min ||
      v > max)
    return integer ? err_set(e, ERR_INVAL, "field '%s': expected an integer "
                             "%.0f..%.0f, got '%.40s'", name, min, max, s)
                   : err_set(e, ERR_INVAL, "field '%s': expected a number "
                             "%g..%g, got '%.40s'", name, min, max, s);
  *out = v;
  return ERR_OK;
}

enum err_code task_field_int(const struct task_ctx *t, const char *name,
                             long def, long min, long max, long *out,
                             struct err *e)
{
  double v;
  enum err_code rc = field_number(t, name, 1, (double)def, (double)min,
                                  (double)max, &v, e);
  *out = (long)v;
  return rc;
}

enum err_code task_field_double(const struct task_ctx *t, const char *name,
                                double def, double min, double max,
                                double *out, struct err *e)
{
  return field_number(t, name, 0, def, min, max, out, e);
}

enum err_code task_field_bool(const struct task_ctx *t, const char *name,
                              int def, int *out, struct err *e)
{
  char buf[64];
  const char *s;
  *out = def;
  enum err_code rc = task_field_text(t, name, buf, sizeof(buf), &s, e);
  if (rc != ERR_OK || !s)
    return rc;
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(s, yes[i]) == 0) {
      *out = 1;
      return ERR_OK;
    }
    if (strcasecmp(s, no[i]) == 0) {
      *out = 0;
      return ERR_OK;
    }
  }
  return err_set(e, ERR_INVAL, "field '%s': expected true or false, got "
                 "'%.40s'", name, s);
}

/* ------------------------------------------------------------------ */
/* deadlines */

int64_t task_deadline_ms(const struct task_ctx *t)
{
  int64_t d = t->deadline_ms;
  if (t->job) {
    int64_t j = queue_job_deadline_ms(t->job);
    if (j > 0 && (d <= 0 || j < d))
      d = j;
  }
  return d > 0 ? d : 0;
}

int task_should_stop(const struct task_ctx *t)
{
  if (t->job && queue_job_should_stop(t->job))
    return 1;
  int64_t d = task_deadline_ms(t);
  return d > 0 && queue_now_ms() >= d;
}

int task_timeout_s(const struct task_ctx *t)
{
  if (t->timeout_s > 0)
    return t->timeout_s;
  int64_t d = task_deadline_ms(t);
  if (d <= 0)
    return 0;
  int64_t left = d - queue_now_ms();
  if (left <= 0)
    return 0;
  return (int)((left + 999) / 1000);
}

enum err_code task_stopped(const struct task_ctx *t, const char *what,
                           int timeout_s, struct err *e)
{
  int64_t d = task_deadline_ms(t);
  if (d > 0 && queue_now_ms() >= d)
    return err_set(e, ERR_TIMEOUT, "%s after timeout of %ds", what,
                   timeout_s);
  return err_set(e, ERR_CANCELED, "%s: attempt cancelled", what);
}

/* ------------------------------------------------------------------ */
/* templates */

/* A tmpl lookup over the ctx's params/conf objects.  Values that are not
 * strings are printed as JSON; those copies live until the render ends. */
struct look {
  const struct task_ctx *t;
  char *own[32];
  int nown;
};

static const char *look_fn(void *user, enum tmpl_kind kind, const char *name)
{
  struct look *l = user;
  const cJSON *obj = kind == TMPL_CONF ? l->t->conf : l->t->params;
  const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
  if (!v || cJSON_IsNull(v))
    return NULL;
  if (cJSON_IsString(v))
    return v->valuestring;
  if (l->nown == (int)(sizeof(l->own) / sizeof(l->own[0])))
    return NULL;
  char *s;
  if (cJSON_IsNumber(v)) {
    char buf[64];
    double d = v->valuedouble;
    if (d == (double)(long long)d)
      snprintf(buf, sizeof(buf), "%lld", (long long)d);
    else
      snprintf(buf, sizeof(buf), "%.17g", d);
    s = strdup(buf);
  } else {
    s = cJSON_PrintUnformatted(v);
  }
  if (!s)
    return NULL;
  l->own[l->nown++] = s;
  return s;
}

enum err_code task_render(const struct task_ctx *t, const char *what,
                          const char *src, enum tmpl_mode mode, char **out,
                          struct tmpl_binds *binds, struct err *e)
{
  *out = NULL;
  struct look l = {.t = t};
  struct tmpl_ctx own = {
      .ds = t->ds,
      .run_id = t->run_id,
      .dag_id = t->dag_id,
      .lookup = look_fn,
      .user = &l,
  };
  const struct tmpl_ctx *c = t->tmpl ? t->tmpl : &own;
  enum err_code rc = tmpl_render(src ? src : "", c, mode, out, binds, e);
  for (int i = 0; i < l.nown; i++)
    free(l.own[i]);
  if (rc != ERR_OK)
    err_prefix(e, "field '%s'", what);
  return rc;
}

/* Nesting past this in a rendered map or list is refused. */
#define TASK_JSON_DEPTH 16

static enum err_code render_json(const struct task_ctx *t, const cJSON *v,
                                 const char *path, int depth, cJSON **out,
                                 struct err *e)
{
  *out = NULL;
  if (depth > TASK_JSON_DEPTH)
    return err_set(e, ERR_INVAL, "field '%s': nested too deeply", path);
  if (cJSON_IsString(v)) {
    char *s;
    enum err_code rc = task_render(t, path, v->valuestring, TMPL_PLAIN, &s,
                                   NULL, e);
    if (rc != ERR_OK)
      return rc;
    *out = cJSON_CreateString(s);
    free(s);
  } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
    *out = cJSON_IsArray(v) ? cJSON_CreateArray() : cJSON_CreateObject();
    for (const cJSON *it = v->child; *out && it; it = it->next) {
      char sub[160];
      snprintf(sub, sizeof(sub), "%s%s%s", path,
               cJSON_IsArray(v) ? "[]" : ".",
               cJSON_IsArray(v) ? "" : it->string);
      cJSON *c;
      enum err_code rc = render_json(t, it, sub, depth + 1, &c, e);
      if (rc != ERR_OK) {
        cJSON_Delete(*out);
        *out = NULL;
        return rc;
      }
      if (cJSON_IsArray(v))
        cJSON_AddItemToArray(*out, c);
      else
        cJSON_AddItemToObject(*out, it->string, c);
    }
  } else {
    *out = cJSON_Duplicate(v, 1);
  }
  if (!*out)
    return err_set(e, ERR_NOMEM, "out of memory rendering '%s'", path);
  return ERR_OK;
}

enum err_code task_render_json(const struct task_ctx *t, const cJSON *v,
                               const char *path, cJSON **out, struct err *e)
{
  return render_json(t, v, path, 0, out, e);
}
