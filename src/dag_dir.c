/* dag_dir.c - DAG directories (see dag.h): sets of DAGs by id, and the one
 * loader of a DAG directory.
 *
 * The loader (struct dag_dir) remembers every file as last seen: the stat
 * of the YAML, the last version that loaded and the current error.  A
 * scan loads only files whose stat or sql_file sources changed (or that
 * failed last time), keeps the last good version of a file that no longer
 * loads, and reports what changed through a callback.  The daemon's
 * scheduler rescans one every few seconds; dag_load_dir is one scan of a
 * fresh one (the CLI, the admin API).
 */
#include "mlopsd/dag.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mlopsd/vec.h"

/* ------------------------------------------------------------------ */
/* sets                                                                */

struct dag_set {
  struct dag **v; /* sorted by dag_id */
  size_t n, cap;
};

enum err_code dag_set_create(struct dag_set **out, struct err *e)
{
  struct dag_set *s = calloc(1, sizeof(*s));
  if (!s)
    return err_set(e, ERR_NOMEM, "out of memory");
  *out = s;
  return ERR_OK;
}

void dag_set_destroy(struct dag_set *s)
{
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    dag_destroy(s->v[i]);
  free(s->v);
  free(s);
}

size_t dag_set_count(const struct dag_set *s) { return s ? s->n : 0; }

struct dag *dag_set_at(const struct dag_set *s, size_t i)
{
  return s && i < s->n ? s->v[i] : NULL;
}

/* First index whose id is >= id. */
static size_t set_lower(const struct dag_set *s, const char *id)
{
  size_t lo = 0, hi = s->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(s->v[mid]->dag_id, id) < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

struct dag *dag_set_find(const struct dag_set *s, const char *dag_id)
{
  if (!s || !dag_id)
    return NULL;
  size_t i = set_lower(s, dag_id);
  return i < s->n && !strcmp(s->v[i]->dag_id, dag_id) ? s->v[i] : NULL;
}

enum err_code dag_set_add(struct dag_set *s, struct dag *d, struct err *e)
{
  size_t i = set_lower(s, d->dag_id);
  if (i < s->n && !strcmp(s->v[i]->dag_id, d->dag_id))
    return err_set(e, ERR_EXISTS, "dag_id '%s' is already defined in %s",
                   d->dag_id, s->v[i]->path);
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 16;
    struct dag **nv = realloc(s->v, nc * sizeof(*nv));
    if (!nv)
      return err_set(e, ERR_NOMEM, "out of memory");
    s->v = nv;
    s->cap = nc;
  }
  memmove(s->v + i + 1, s->v + i, (s->n - i) * sizeof(*s->v));
  s->v[i] = d;
  s->n++;
  return ERR_OK;
}

struct dag *dag_set_take(struct dag_set *s, const char *dag_id)
{
  if (!s || !dag_id)
    return NULL;
  size_t i = set_lower(s, dag_id);
  if (i >= s->n || strcmp(s->v[i]->dag_id, dag_id))
    return NULL;
  struct dag *d = s->v[i];
  memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
  s->n--;
  return d;
}

void dag_errors_free(struct dag_errors *errs)
{
  if (!errs)
    return;
  for (size_t i = 0; i < errs->n; i++) {
    free(errs->v[i].file);
    free(errs->v[i].msg);
  }
  free(errs->v);
  errs->v = NULL;
  errs->n = 0;
}

static enum err_code errs_add(struct dag_errors *errs, const char *file,
                              enum err_code code, const char *msg)
{
  struct dag_error *v = realloc(errs->v, (errs->n + 1) * sizeof(*v));
  if (!v)
    return ERR_NOMEM;
  errs->v = v;
  v[errs->n].file = strdup(file);
  v[errs->n].msg = strdup(msg);
  v[errs->n].code = code;
  if (!v[errs->n].file || !v[errs->n].msg) {
    free(v[errs->n].file);
    free(v[errs->n].msg);
    return ERR_NOMEM;
  }
  errs->n++;
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* the directory loader                                                */

struct dag_dir {
  char *dir;
  struct dag_dir_file *v;      /* by file name */
  size_t n;
};

static int name_cmp(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int dag_file_name(const char *n)
{
  size_t len = strlen(n);
  if (n[0] == '.' || n[0] == '#')
    return 0;
  return (len > 5 && !strcmp(n + len - 5, ".yaml")) ||
         (len > 4 && !strcmp(n + len - 4, ".yml"));
}

static void file_free(struct dag_dir_file *f)
{
  free(f->path);
  dag_destroy(f->good);
  free(f->err);
  free(f->dup);
  memset(f, 0, sizeof(*f));
}

static void names_free(char **v, size_t n)
{
  for (size_t i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

/* The DAG file names of dir (not hidden), sorted. */
static enum err_code list_names(const char *dir, char ***out, size_t *nout,
                                struct err *e)
{
  char **names = NULL;
  size_t n = 0, cap = 0;
  DIR *dh = opendir(dir);
  if (!dh)
    return err_set(e, errno == ENOENT ? ERR_NOTFOUND : ERR_IO,
                   "cannot open DAG directory %s: %s", dir, strerror(errno));
  struct dirent *de;
  while ((de = readdir(dh)) != NULL) {
    if (!dag_file_name(de->d_name))
      continue;
    char *nm = strdup(de->d_name);
    if (!nm || VEC_PUSH(names, n, cap, nm) != 0) {
      free(nm);
      closedir(dh);
      names_free(names, n);
      return err_set(e, ERR_NOMEM, "out of memory listing %s", dir);
    }
  }
  closedir(dh);
  if (n)
    qsort(names, n, sizeof(*names), name_cmp);
  *out = names;
  *nout = n;
  return ERR_OK;
}

enum err_code dag_dir_create(const char *dir, struct dag_dir **out,
                             struct err *e)
{
  struct dag_dir *w = calloc(1, sizeof(*w));
  if (!w || !(w->dir = strdup(dir))) {
    free(w);
    return err_set(e, ERR_NOMEM, "out of memory");
  }
  *out = w;
  return ERR_OK;
}

void dag_dir_destroy(struct dag_dir *w)
{
  if (!w)
    return;
  for (size_t i = 0; i < w->n; i++)
    file_free(&w->v[i]);
  free(w->v);
  free(w->dir);
  free(w);
}

size_t dag_dir_count(const struct dag_dir *w) { return w ? w->n : 0; }

struct dag_dir_file *dag_dir_at(struct dag_dir *w, size_t i)
{
  return w && i < w->n ? &w->v[i] : NULL;
}

static void event(dag_dir_event_fn fn, void *user, enum dag_dir_event ev,
                  const struct dag_dir_file *f)
{
  if (fn)
    fn(user, ev, f);
}

/* Load f (stat st) again unless nothing changed since the last load.
 * Returns 1 if f->good changed. */
static int file_load(struct dag_dir_file *f, int known, const struct stat *st,
                     dag_dir_event_fn fn, void *user)
{
  int64_t mt =
      (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
  int same_stat = known && f->mtime_ns == mt && f->size == (int64_t)st->st_size;
  if (same_stat && f->good && !f->err && !dag_sources_changed(f->good))
    return 0;
  f->mtime_ns = mt;
  f->size = (int64_t)st->st_size;
  struct dag *d = NULL;
  struct err e = {0};
  enum err_code rc = dag_load_file(f->path, &d, &e);
  if (rc == ERR_OK) {
    if (f->good && f->good->hash == d->hash &&
        !strcmp(f->good->dag_id, d->dag_id) && !f->err) {
      dag_destroy(d); /* touched, not changed */
      return 0;
    }
    int had = f->good != NULL;
    dag_destroy(f->good);
    f->good = d;
    FREE_NULL(f->err);
    f->err_code = ERR_OK;
    f->mark = 0;
    event(fn, user, had ? DAG_DIR_RELOADED : DAG_DIR_LOADED, f);
    return 1;
  }
  if (!f->err || strcmp(f->err, e.msg) != 0) {
    free(f->err);
    f->err = strdup(e.msg);
    f->err_code = rc;
    if (f->err)
      event(fn, user, DAG_DIR_BROKEN, f);
  }
  return 0;
}

/* A file whose dag_id an earlier file (by name) already defines is
 * ignored: set or clear f->dup, reporting a new reason once. */
static void mark_duplicates(struct dag_dir *w, dag_dir_event_fn fn,
                            void *user)
{
  for (size_t i = 0; i < w->n; i++) {
    struct dag_dir_file *f = &w->v[i];
    const struct dag_dir_file *first = NULL;
    for (size_t k = 0; f->good && k < i && !first; k++)
      if (w->v[k].good && !w->v[k].dup &&
          !strcmp(w->v[k].good->dag_id, f->good->dag_id))
        first = &w->v[k];
    if (!first) {
      FREE_NULL(f->dup);
      continue;
    }
    char msg[ERR_MSG_MAX];
    snprintf(msg, sizeof(msg),
             "%s:%d:%d: dag_id '%s' is already defined in %s", f->path,
             f->good->id_line, f->good->id_col, f->good->dag_id,
             first->path);
    if (f->dup && !strcmp(f->dup, msg))
      continue;
    free(f->dup);
    if ((f->dup = strdup(msg)) != NULL)
      event(fn, user, DAG_DIR_DUPLICATE, f);
  }
}

enum err_code dag_dir_scan(struct dag_dir *w, dag_dir_event_fn fn,
                           void *user, int *changed, struct err *e)
{
  char **names = NULL;
  size_t n = 0, nn = 0;
  int ch = 0, oom = 0;
  if (changed)
    *changed = 0;
  enum err_code rc = list_names(w->dir, &names, &n, e);
  if (rc != ERR_OK)
    return rc;
  struct dag_dir_file *nf = calloc(n ? n : 1, sizeof(*nf));
  if (!nf) {
    names_free(names, n);
    return err_set(e, ERR_NOMEM, "out of memory scanning %s", w->dir);
  }
  for (size_t i = 0; i < n; i++) {
    size_t plen = strlen(w->dir) + 1 + strlen(names[i]) + 1;
    char *path = malloc(plen);
    if (!path) {
      oom = 1;
      continue;
    }
    snprintf(path, plen, "%s/%s", w->dir, names[i]);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(path);
      continue;
    }
    struct dag_dir_file *old = NULL;
    for (size_t k = 0; k < w->n && !old; k++)
      if (w->v[k].path && !strcmp(w->v[k].path, path))
        old = &w->v[k];
    struct dag_dir_file *f = &nf[nn++];
    if (old) {
      *f = *old;
      memset(old, 0, sizeof(*old));
      free(path);
    } else {
      f->path = path;
    }
    ch |= file_load(f, old != NULL, &st, fn, user);
  }
  names_free(names, n);
  for (size_t k = 0; k < w->n; k++) {
    if (w->v[k].good) {
      event(fn, user, DAG_DIR_REMOVED, &w->v[k]);
      ch = 1;
    }
    file_free(&w->v[k]);
  }
  free(w->v);
  w->v = nf;
  w->n = nn;
  mark_duplicates(w, fn, user);
  if (changed)
    *changed = ch;
  if (oom)
    return err_set(e, ERR_NOMEM, "out of memory scanning %s", w->dir);
  return ERR_OK;
}

enum err_code dag_dir_set(const struct dag_dir *w, struct dag_set **out,
                          struct dag_errors *errs, struct err *e)
{
  struct dag_set *s = NULL;
  dag_errors_free(errs);
  enum err_code rc = dag_set_create(&s, e);
  for (size_t i = 0; rc == ERR_OK && i < w->n; i++) {
    const struct dag_dir_file *f = &w->v[i];
    if (f->err)
      rc = errs_add(errs, f->path, f->err_code, f->err);
    else if (f->dup)
      rc = errs_add(errs, f->path, ERR_EXISTS, f->dup);
    else if (f->good && (rc = dag_set_add(s, dag_ref(f->good), e)) != ERR_OK)
      dag_destroy(f->good); /* the reference just taken */
    if (rc != ERR_OK)
      rc = err_set(e, ERR_NOMEM, "out of memory loading %s", w->dir);
  }
  if (rc != ERR_OK) {
    dag_set_destroy(s);
    dag_errors_free(errs);
    return rc;
  }
  *out = s;
  return ERR_OK;
}

enum err_code dag_load_dir(const char *dir, struct dag_set **out,
                           struct dag_errors *errs, struct err *e)
{
  struct dag_dir *w = NULL;
  dag_errors_free(errs);
  enum err_code rc = dag_dir_create(dir, &w, e);
  if (rc == ERR_OK)
    rc = dag_dir_scan(w, NULL, NULL, NULL, e);
  if (rc == ERR_OK)
    rc = dag_dir_set(w, out, errs, e);
  dag_dir_destroy(w);
  return rc;
}
