/* admin_stats.c - the live serving figures of /api/v2/serving and the web
 * console's Serving page: requests per second, latency percentiles,
 * predictions per class, prediction log backlog and spool.
 *
 * Why from the rendered metrics text: every figure the console shows is
 * already counted by the modules that own it (http, serving, plog, the
 * daemon's queue gauges), lock-free on the hot path.  Reading them back
 * through metrics_render needs no new hooks in those modules, picks up
 * series that appear later (a new model's class counters) and costs one
 * render per sample: a few tens of microseconds every interval.
 *
 * A thread takes a snapshot every sample_ms into a ring of ring + 1
 * snapshots; an interval's figures are the differences of two neighbours
 * (counters) or the later one's value (gauges).  Latency percentiles come
 * from the difference of the cumulative histogram buckets of the
 * prediction routes, interpolated as Prometheus' histogram_quantile.
 */
#include "admin_int.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mlopsd/log.h"
#include "mlopsd/metrics.h"

#define MOD "admin"
#define ST_NB 40       /* histogram bounds kept (the default has 14) */
#define ST_CLASSES 48  /* (model, class) pairs kept */
#define ST_MODELS 16   /* served model versions kept */

struct st_class {
  char model[64];
  char cls[48];
  double n;
};

struct st_model {
  char model[64];
  double version;
};

/* One snapshot of the figures (counters as read, not rates). */
struct snap {
  int valid;
  int64_t wall_ms;       /* when taken, wall clock */
  int64_t mono_ms;       /* monotonic, for rates */
  double req;            /* prediction route requests, any status */
  double req_err;        /* ... answered 4xx or 5xx */
  double req_all;        /* every route */
  double items;          /* predicted items answered 200 */
  int nb;
  double le[ST_NB];      /* ascending; +Inf last when present */
  double cum[ST_NB];     /* cumulative counts, summed over routes */
  int ncls;
  struct st_class cls[ST_CLASSES];
  int nmod;
  struct st_model mod[ST_MODELS];
  double backlog, spool_bytes, spool_records, db_up, queue_depth;
  double written, spooled, rejected, unlogged, in_flight, connections;
  /* the log table and the disks (src/logpart.c); NAN when unknown */
  double table_bytes, table_disk, table_growth_h, spool_free, db_free;
};

struct admin_stats {
  struct metrics *m;
  int sample_ms;
  int ring;
  pthread_mutex_t mu;    /* guards snaps, head, count */
  struct snap *snaps;    /* ring + 1 entries */
  int head;              /* index of the newest */
  int count;
  pthread_mutex_t stop_mu;
  pthread_cond_t stop_cv;
  int stop;
  int started;
  pthread_t thr;
};

static int64_t now_ms(clockid_t clk)
{
  struct timespec ts;
  clock_gettime(clk, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Prometheus text -------------------------------------------------- */

int admin_prom_line(const char *line, size_t len, char *name, size_t name_cap,
                    struct admin_prom_label *labels, int max_labels,
                    int *nlabels, double *value)
{
  size_t i = 0, n = 0;
  *nlabels = 0;
  if (len == 0 || line[0] == '#' || name_cap == 0)
    return -1;
  while (i < len && line[i] != '{' && line[i] != ' ') {
    if (n + 1 < name_cap)
      name[n++] = line[i];
    i++;
  }
  name[n] = '\0';
  if (n == 0 || i == len)
    return -1;
  if (line[i] == '{') {
    i++;
    while (i < len && line[i] != '}') {
      struct admin_prom_label tmp, *l = *nlabels < max_labels
                                            ? &labels[*nlabels]
                                            : &tmp;
      size_t k = 0;
      while (i < len && line[i] != '=') {
        if (k + 1 < sizeof(l->key))
          l->key[k++] = line[i];
        i++;
      }
      l->key[k] = '\0';
      if (i + 1 >= len || line[i + 1] != '"')
        return -1;
      i += 2;
      k = 0;
      while (i < len && line[i] != '"') {
        char ch = line[i];
        if (ch == '\\' && i + 1 < len) {
          i++;
          ch = line[i] == 'n' ? '\n' : line[i];
        }
        if (k + 1 < sizeof(l->val))
          l->val[k++] = ch;
        i++;
      }
      l->val[k] = '\0';
      if (i >= len)
        return -1;
      i++; /* closing quote */
      if (*nlabels < max_labels)
        (*nlabels)++;
      if (i < len && line[i] == ',')
        i++;
    }
    if (i >= len)
      return -1;
    i++; /* '}' */
  }
  while (i < len && line[i] == ' ')
    i++;
  if (i >= len)
    return -1;
  char num[64];
  size_t k = 0;
  while (i < len && line[i] != ' ' && k + 1 < sizeof(num))
    num[k++] = line[i++];
  num[k] = '\0';
  char *end;
  errno = 0;
  *value = strtod(num, &end);
  if (end == num)
    return -1;
  return 0;
}

static const char *label(const struct admin_prom_label *l, int n,
                         const char *key)
{
  for (int i = 0; i < n; i++)
    if (strcmp(l[i].key, key) == 0)
      return l[i].val;
  return NULL;
}

/* The prediction routes: /predict and /models/{name}/predict. */
static int predict_route(const char *route)
{
  size_t n = route ? strlen(route) : 0;
  return n >= 8 && strcmp(route + n - 8, "/predict") == 0;
}

static void add_bucket(struct snap *s, double le, double v)
{
  int i = 0;
  while (i < s->nb && s->le[i] < le)
    i++;
  if (i < s->nb && s->le[i] == le) {
    s->cum[i] += v;
    return;
  }
  if (s->nb == ST_NB)
    return;
  memmove(&s->le[i + 1], &s->le[i], (size_t)(s->nb - i) * sizeof(double));
  memmove(&s->cum[i + 1], &s->cum[i], (size_t)(s->nb - i) * sizeof(double));
  s->le[i] = le;
  s->cum[i] = v;
  s->nb++;
}

static void parse_line(struct snap *s, const char *line, size_t len)
{
  char name[128];
  struct admin_prom_label lab[8];
  int nl;
  double v;
  if (admin_prom_line(line, len, name, sizeof(name), lab, 8, &nl, &v))
    return;
  if (strcmp(name, "mlopsd_http_requests_total") == 0) {
    const char *st = label(lab, nl, "status");
    s->req_all += v;
    if (predict_route(label(lab, nl, "route"))) {
      s->req += v;
      if (st && (st[0] == '4' || st[0] == '5'))
        s->req_err += v;
    }
  } else if (strcmp(name, "mlopsd_http_request_duration_seconds_bucket")
             == 0) {
    const char *le = label(lab, nl, "le");
    if (le && predict_route(label(lab, nl, "route")))
      add_bucket(s,
                 strcmp(le, "+Inf") == 0 ? INFINITY : strtod(le, NULL) * 1e3,
                 v); /* bounds in s, the snapshot works in ms */
  } else if (strcmp(name, "mlopsd_predictions_total") == 0) {
    const char *mo = label(lab, nl, "model"), *cl = label(lab, nl, "class");
    if (mo && cl && s->ncls < ST_CLASSES) {
      struct st_class *c = &s->cls[s->ncls++];
      snprintf(c->model, sizeof(c->model), "%.63s", mo);
      snprintf(c->cls, sizeof(c->cls), "%.47s", cl);
      c->n = v;
    }
  } else if (strcmp(name, "mlopsd_model_version") == 0) {
    const char *mo = label(lab, nl, "model");
    if (mo && s->nmod < ST_MODELS) {
      struct st_model *m = &s->mod[s->nmod++];
      snprintf(m->model, sizeof(m->model), "%.63s", mo);
      m->version = v;
    }
  } else if (strcmp(name, "mlopsd_predict_items_total") == 0) {
    s->items = v;
  } else if (strcmp(name, "mlopsd_plog_backlog_rows") == 0) {
    s->backlog = v;
  } else if (strcmp(name, "mlopsd_plog_spool_bytes") == 0) {
    s->spool_bytes = v;
  } else if (strcmp(name, "mlopsd_plog_spool_records") == 0) {
    s->spool_records = v;
  } else if (strcmp(name, "mlopsd_plog_table_bytes") == 0) {
    s->table_bytes = v;
  } else if (strcmp(name, "mlopsd_plog_table_disk_bytes") == 0) {
    s->table_disk = v;
  } else if (strcmp(name, "mlopsd_plog_table_growth_bytes_per_hour") == 0) {
    s->table_growth_h = v;
  } else if (strcmp(name, "mlopsd_spool_disk_free_bytes") == 0) {
    s->spool_free = v;
  } else if (strcmp(name, "mlopsd_db_disk_free_bytes") == 0) {
    s->db_free = v;
  } else if (strcmp(name, "mlopsd_plog_db_up") == 0) {
    s->db_up = v;
  } else if (strcmp(name, "mlopsd_plog_rows_written_total") == 0) {
    s->written = v;
  } else if (strcmp(name, "mlopsd_plog_rows_spooled_total") == 0) {
    s->spooled = v;
  } else if (strcmp(name, "mlopsd_plog_rows_rejected_total") == 0) {
    s->rejected = v;
  } else if (strcmp(name, "mlopsd_plog_rows_unlogged_total") == 0) {
    s->unlogged = v;
  } else if (strcmp(name, "mlopsd_queue_depth") == 0) {
    s->queue_depth = v;
  } else if (strcmp(name, "mlopsd_http_requests_in_flight") == 0) {
    s->in_flight = v;
  } else if (strcmp(name, "mlopsd_http_connections") == 0) {
    s->connections = v;
  }
}

/* Render the registry and read a snapshot out of it. */
static int take(struct admin_stats *st, struct snap *s)
{
  char *buf = NULL;
  size_t len = 0, cap = 0;
  struct err e = {0};
  memset(s, 0, sizeof(*s));
  s->db_up = NAN;
  s->table_bytes = s->table_disk = s->table_growth_h = NAN;
  s->spool_free = s->db_free = NAN;
  s->wall_ms = now_ms(CLOCK_REALTIME);
  s->mono_ms = now_ms(CLOCK_MONOTONIC);
  if (metrics_render(st->m, &buf, &len, &cap, &e) != ERR_OK) {
    free(buf);
    LOG_W(MOD, "serving sample: %s", e.msg);
    return -1;
  }
  for (size_t i = 0; i < len;) {
    const char *nl = memchr(buf + i, '\n', len - i);
    size_t n = nl ? (size_t)(nl - (buf + i)) : len - i;
    parse_line(s, buf + i, n);
    i += n + 1;
  }
  free(buf);
  s->valid = 1;
  return 0;
}

void admin_stats_sample(struct admin_stats *st)
{
  struct snap *s = malloc(sizeof(*s));
  if (!s || take(st, s) != 0) {
    free(s);
    return;
  }
  pthread_mutex_lock(&st->mu);
  st->head = (st->head + 1) % (st->ring + 1);
  st->snaps[st->head] = *s;
  if (st->count < st->ring + 1)
    st->count++;
  pthread_mutex_unlock(&st->mu);
  free(s);
}

static void *sampler(void *arg)
{
  struct admin_stats *st = arg;
  pthread_mutex_lock(&st->stop_mu);
  while (!st->stop) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += st->sample_ms / 1000;
    ts.tv_nsec += (long)(st->sample_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (!st->stop &&
           pthread_cond_timedwait(&st->stop_cv, &st->stop_mu, &ts) !=
               ETIMEDOUT)
      ;
    if (st->stop)
      break;
    pthread_mutex_unlock(&st->stop_mu);
    admin_stats_sample(st);
    pthread_mutex_lock(&st->stop_mu);
  }
  pthread_mutex_unlock(&st->stop_mu);
  return NULL;
}

enum err_code admin_stats_create(struct admin_stats **out, struct metrics *m,
                                 int sample_ms, int ring, struct err *e)
{
  struct admin_stats *st;
  pthread_condattr_t ca;
  *out = NULL;
  if (!m || sample_ms < 1 || ring < 1)
    return err_set(e, ERR_INVAL, "admin: bad sampler options");
  st = calloc(1, sizeof(*st));
  if (!st || !(st->snaps = calloc((size_t)ring + 1, sizeof(*st->snaps)))) {
    free(st);
    return err_set(e, ERR_NOMEM, "admin: out of memory");
  }
  st->m = m;
  st->sample_ms = sample_ms;
  st->ring = ring;
  st->head = 0;
  pthread_mutex_init(&st->mu, NULL);
  pthread_mutex_init(&st->stop_mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&st->stop_cv, &ca);
  pthread_condattr_destroy(&ca);
  admin_stats_sample(st);
  if (pthread_create(&st->thr, NULL, sampler, st) != 0) {
    admin_stats_destroy(st);
    return err_set(e, ERR_INTERNAL, "admin: cannot start the sampler");
  }
  st->started = 1;
  *out = st;
  return ERR_OK;
}

void admin_stats_destroy(struct admin_stats *st)
{
  if (!st)
    return;
  if (st->started) {
    pthread_mutex_lock(&st->stop_mu);
    st->stop = 1;
    pthread_cond_signal(&st->stop_cv);
    pthread_mutex_unlock(&st->stop_mu);
    pthread_join(st->thr, NULL);
  }
  pthread_cond_destroy(&st->stop_cv);
  pthread_mutex_destroy(&st->stop_mu);
  pthread_mutex_destroy(&st->mu);
  free(st->snaps);
  free(st);
}

/* ---- figures ---------------------------------------------------------- */

double admin_stats_quantile(const double *le, const double *cum, int n,
                            double q)
{
  if (n <= 0 || !(cum[n - 1] > 0))
    return NAN;
  double total = cum[n - 1], rank = q * total;
  for (int i = 0; i < n; i++) {
    if (cum[i] >= rank) {
      double lo = i > 0 ? le[i - 1] : 0, hi = le[i];
      double below = i > 0 ? cum[i - 1] : 0;
      if (isinf(hi)) /* the +Inf bucket: the largest finite bound */
        return i > 0 ? le[i - 1] : NAN;
      if (cum[i] - below <= 0)
        return hi;
      return lo + (hi - lo) * (rank - below) / (cum[i] - below);
    }
  }
  return le[n - 1];
}

static void iso_ms(int64_t ms, char out[32])
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

/* JSON number, or null when not finite (cJSON would print null anyway,
 * but explicitly keeps the intent visible). */
static void add_num(cJSON *o, const char *k, double v)
{
  if (isfinite(v))
    cJSON_AddNumberToObject(o, k, round(v * 1000) / 1000);
  else
    cJSON_AddNullToObject(o, k);
}

static double counter_delta(double a, double b)
{
  return b >= a ? b - a : b; /* a reset (new registry) starts again */
}

static double class_count(const struct snap *s, const char *model,
                          const char *cls)
{
  for (int i = 0; i < s->ncls; i++)
    if (!strcmp(s->cls[i].model, model) && !strcmp(s->cls[i].cls, cls))
      return s->cls[i].n;
  return 0;
}

/* The figures of the interval (a, b] into o. */
static void interval(cJSON *o, const struct snap *a, const struct snap *b)
{
  double dt = (double)(b->mono_ms - a->mono_ms) / 1000.0;
  char ts[32];
  iso_ms(b->wall_ms, ts);
  cJSON_AddStringToObject(o, "t", ts);
  add_num(o, "seconds", dt);
  add_num(o, "requests_per_s", dt > 0 ? counter_delta(a->req, b->req) / dt
                                      : NAN);
  add_num(o, "errors_per_s", dt > 0 ? counter_delta(a->req_err, b->req_err) /
                                          dt
                                    : NAN);
  add_num(o, "items_per_s", dt > 0 ? counter_delta(a->items, b->items) / dt
                                   : NAN);
  add_num(o, "requests", counter_delta(a->req, b->req));
  /* latency: bucket differences; bounds of b, a's cumulative by bound */
  double cum[ST_NB];
  for (int i = 0; i < b->nb; i++) {
    double prev = 0;
    for (int j = 0; j < a->nb; j++)
      if (a->le[j] == b->le[i])
        prev = a->cum[j];
    cum[i] = counter_delta(prev, b->cum[i]);
  }
  cJSON *lat = cJSON_AddObjectToObject(o, "latency_ms");
  if (lat) {
    add_num(lat, "p50", admin_stats_quantile(b->le, cum, b->nb, 0.50));
    add_num(lat, "p90", admin_stats_quantile(b->le, cum, b->nb, 0.90));
    add_num(lat, "p99", admin_stats_quantile(b->le, cum, b->nb, 0.99));
  }
  cJSON *pr = cJSON_AddObjectToObject(o, "predictions");
  for (int i = 0; pr && i < b->ncls; i++) {
    cJSON *mo = cJSON_GetObjectItemCaseSensitive(pr, b->cls[i].model);
    if (!mo)
      mo = cJSON_AddObjectToObject(pr, b->cls[i].model);
    if (mo)
      cJSON_AddNumberToObject(
          mo, b->cls[i].cls,
          counter_delta(class_count(a, b->cls[i].model, b->cls[i].cls),
                        b->cls[i].n));
  }
  add_num(o, "log_backlog_rows", b->backlog);
  add_num(o, "spool_bytes", b->spool_bytes);
  add_num(o, "spool_records", b->spool_records);
}

cJSON *admin_stats_json(struct admin_stats *st)
{
  struct snap *cur = malloc(sizeof(*cur)), *ring = NULL;
  int count, head, n1 = st->ring + 1;
  cJSON *o = NULL;
  if (!cur)
    return NULL;
  if (take(st, cur) != 0)
    cur->valid = 0;
  ring = malloc((size_t)n1 * sizeof(*ring));
  if (!ring)
    goto out;
  pthread_mutex_lock(&st->mu);
  memcpy(ring, st->snaps, (size_t)n1 * sizeof(*ring));
  count = st->count;
  head = st->head;
  pthread_mutex_unlock(&st->mu);

  o = cJSON_CreateObject();
  if (!o)
    goto out;
  add_num(o, "interval_s", st->sample_ms / 1000.0);
  cJSON_AddNumberToObject(o, "ring", st->ring);
  const struct snap *last = count > 0 ? &ring[head] : NULL;
  const struct snap *prev =
      count > 1 ? &ring[(head + n1 - 1) % n1] : NULL;
  /* "now": since the last sample if that is at least a second ago, else
   * the last whole interval */
  cJSON *now = cJSON_AddObjectToObject(o, "now");
  if (now && cur->valid && last) {
    if (cur->mono_ms - last->mono_ms >= 1000 || !prev)
      interval(now, last, cur);
    else
      interval(now, prev, last);
  }
  if (cur->valid) {
    cJSON *tot = cJSON_AddObjectToObject(o, "totals");
    if (tot) {
      add_num(tot, "requests", cur->req);
      add_num(tot, "errors", cur->req_err);
      add_num(tot, "requests_all_routes", cur->req_all);
      add_num(tot, "items", cur->items);
      cJSON *pr = cJSON_AddObjectToObject(tot, "predictions");
      for (int i = 0; pr && i < cur->ncls; i++) {
        cJSON *mo = cJSON_GetObjectItemCaseSensitive(pr, cur->cls[i].model);
        if (!mo)
          mo = cJSON_AddObjectToObject(pr, cur->cls[i].model);
        if (mo)
          cJSON_AddNumberToObject(mo, cur->cls[i].cls, cur->cls[i].n);
      }
    }
    cJSON *lg = cJSON_AddObjectToObject(o, "log");
    if (lg) {
      add_num(lg, "backlog_rows", cur->backlog);
      add_num(lg, "spool_bytes", cur->spool_bytes);
      add_num(lg, "spool_records", cur->spool_records);
      if (isfinite(cur->db_up))
        cJSON_AddBoolToObject(lg, "db_up", cur->db_up > 0);
      else
        cJSON_AddNullToObject(lg, "db_up");
      add_num(lg, "rows_written", cur->written);
      add_num(lg, "rows_spooled", cur->spooled);
      add_num(lg, "rows_rejected", cur->rejected);
      add_num(lg, "rows_unlogged", cur->unlogged);
      add_num(lg, "table_bytes", cur->table_bytes);
      add_num(lg, "table_disk_bytes", cur->table_disk);
      add_num(lg, "table_growth_bytes_per_hour", cur->table_growth_h);
      add_num(lg, "spool_disk_free_bytes", cur->spool_free);
      add_num(lg, "db_disk_free_bytes", cur->db_free);
    }
    add_num(o, "queue_depth", cur->queue_depth);
    add_num(o, "http_in_flight", cur->in_flight);
    add_num(o, "http_connections", cur->connections);
    cJSON *mods = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; mods && i < cur->nmod; i++) {
      cJSON *m = cJSON_CreateObject();
      if (!m)
        break;
      cJSON_AddStringToObject(m, "model", cur->mod[i].model);
      if (cur->mod[i].version > 0)
        cJSON_AddNumberToObject(m, "version", cur->mod[i].version);
      else
        cJSON_AddNullToObject(m, "version");
      cJSON_AddItemToArray(mods, m);
    }
  }
  cJSON *series = cJSON_AddArrayToObject(o, "series");
  for (int k = count - 1; series && k >= 1; k--) {
    const struct snap *b = &ring[(head + n1 - k + 1) % n1];
    const struct snap *a = &ring[(head + n1 - k) % n1];
    cJSON *pt = cJSON_CreateObject();
    if (!pt)
      break;
    interval(pt, a, b);
    cJSON_AddItemToArray(series, pt);
  }
out:
  free(ring);
  free(cur);
  return o;
}
