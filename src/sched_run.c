/* sched_run.c - the state transitions of runs and task instances, task
 * attempts, task logs and run callbacks: the part of the scheduler that
 * both the daemon (sched.c) and `mlopsd dags test` (cli_sched.c) use.
 *
 * Why the shapes below:
 *  - every transition of a run's task instances happens in a transaction
 *    that first locks the dag_run row, so two daemons finishing two
 *    upstream tasks of one join at the same moment cannot both miss the
 *    join (each would otherwise see the other's task still running);
 *  - an attempt's result is written only if the row is still its claim
 *    (claimed_by and try_number): a daemon that lost its lease while a
 *    task ran must not overwrite what the daemon that took over wrote;
 *  - task output is buffered per attempt and written in multi-row
 *    INSERTs, by the writer when SCHED_LOG_BATCH lines are waiting and by
 *    the flusher thread when the oldest line is SCHED_LOG_FLUSH_MS old,
 *    with a per-attempt flush lock so batches land in order.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <unistd.h>

#include "mlopsd/cfg.h"
#include "mlopsd/cron.h"
#include "mlopsd/hash.h"
#include "mlopsd/log.h"
#include "mlopsd/queue.h"
#include "mlopsd/task.h"
#include "mlopsd/tmpl.h"
#include "mlopsd/vec.h"
#include "sched_int.h"

#define MOD "sched"
#define TXN_TRIES 6
#define CB_TIMEOUT_S 10

/* ------------------------------------------------------------------ */
/* time and ids                                                        */

void sched_fmt_utc(time_t t, char out[20])
{
  struct tm tm;
  gmtime_r(&t, &tm);
  snprintf(out, 20, "%04u-%02u-%02u %02u:%02u:%02u",
           (unsigned)(tm.tm_year + 1900) % 10000u,
           (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
           (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
           (unsigned)tm.tm_sec % 100u);
}

int sched_parse_utc(const char *s, time_t *out)
{
  int y, mo, d, h, mi, se;
  if (!s || sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d", &y, &mo, &d, &h, &mi, &se) !=
                6)
    return -1;
  *out = (time_t)(cron_days_from_civil(y, mo, d) * 86400 + h * 3600 +
                  mi * 60 + se);
  return 0;
}

static void now_utc_micro(char out[27])
{
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  snprintf(out, 27, "%04u-%02u-%02u %02u:%02u:%02u.%06u",
           (unsigned)(tm.tm_year + 1900) % 10000u,
           (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
           (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
           (unsigned)tm.tm_sec % 100u,
           (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

void sched_run_id(const char *dag_id, const char *type,
                  const struct cron_tz *tz, time_t t, char *out, size_t cap)
{
  char iso[CRON_ISO_LEN];
  cron_fmt_iso(tz, t, iso);
  size_t tail = 2 + strlen(type) + 2 + strlen(iso);
  size_t max = cap - 1 < SCHED_RUN_ID_MAX ? cap - 1 : SCHED_RUN_ID_MAX;
  if (strlen(dag_id) + tail <= max) {
    snprintf(out, cap, "%s__%s__%s", dag_id, type, iso);
    return;
  }
  /* Keep a prefix of the id and make it unique again with its hash. */
  int keep = (int)(max - tail - 18);
  if (keep < 1)
    keep = 1;
  snprintf(out, cap, "%.*s-h%016llx__%s__%s", keep, dag_id,
           (unsigned long long)hash_fnv1a(dag_id, strlen(dag_id)), type,
           iso);
}

static int digits(const char *s, int n)
{
  for (int i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9')
      return 0;
  return 1;
}

enum err_code sched_parse_date(const struct cron_tz *tz, const char *date,
                               time_t *t, struct err *e)
{
  if (!date) {
    *t = time(NULL);
    return ERR_OK;
  }
  char day[11];
  int y, mo, d, h = 0, mi = 0, s = 0;
  size_t n = strlen(date);
  if (n < 10)
    goto bad;
  memcpy(day, date, 10);
  day[10] = '\0';
  if (cron_parse_date(day, &y, &mo, &d) != ERR_OK)
    goto bad;
  if (n > 10) {
    const char *p = date + 10;
    if ((*p != 'T' && *p != ' ') || (n != 16 && n != 19) ||
        !digits(p + 1, 2) || p[3] != ':' || !digits(p + 4, 2))
      goto bad;
    h = atoi(p + 1);
    mi = atoi(p + 4);
    if (n == 19) {
      if (p[6] != ':' || !digits(p + 7, 2))
        goto bad;
      s = atoi(p + 7);
    }
    if (h > 23 || mi > 59 || s > 59)
      goto bad;
  }
  *t = cron_tz_resolve(tz, y, mo, d, h, mi, s);
  return ERR_OK;
bad:
  return err_set(e, ERR_INVAL,
                 "date '%.40s': expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or "
                 "YYYY-MM-DDTHH:MM:SS (local time in %s)",
                 date, cron_tz_name(tz));
}

void sched_core_ids(struct sched_core *c, const char *prefix)
{
  unsigned char rnd[6] = {0};
  char host[SCHED_HOST_MAX];
  if (gethostname(host, sizeof(host)) != 0 || !host[0])
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  for (char *p = host; *p; p++)
    if (*p == ':')
      *p = '_';
  snprintf(c->host, sizeof(c->host), "%s", host);
  c->pid = (long)getpid();
  FILE *f = fopen("/dev/urandom", "rb");
  if (!f || fread(rnd, 1, sizeof(rnd), f) != sizeof(rnd)) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
                 (uint64_t)c->pid;
    memcpy(rnd, &x, sizeof(rnd));
  }
  if (f)
    fclose(f);
  snprintf(c->claim_id, sizeof(c->claim_id),
           "%s%.200s:%ld:%02x%02x%02x%02x%02x%02x", prefix ? prefix : "",
           c->host, c->pid, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

int sched_claim_parse(const char *claim, char *host, size_t cap, long *pid)
{
  if (!claim)
    return -1;
  if (!strncmp(claim, "test:", 5))
    claim += 5;
  const char *last = strrchr(claim, ':');
  if (!last || last == claim)
    return -1;
  const char *p = last - 1;
  while (p > claim && *p != ':')
    p--;
  if (*p != ':')
    return -1;
  char *end;
  long v = strtol(p + 1, &end, 10);
  if (end != last || v <= 0)
    return -1;
  size_t hl = (size_t)(p - claim);
  if (hl == 0 || hl + 1 > cap)
    return -1;
  memcpy(host, claim, hl);
  host[hl] = '\0';
  *pid = v;
  return 0;
}

int sched_claim_dead(const struct sched_core *c, const char *claim)
{
  char host[SCHED_HOST_MAX];
  long pid;
  if (!claim || !strcmp(claim, c->claim_id) ||
      sched_claim_parse(claim, host, sizeof(host), &pid) != 0 ||
      strcmp(host, c->host) != 0)
    return 0;
  if (pid == c->pid)
    return 1; /* this pid, another nonce: an earlier life of the pid */
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void sched_warn(struct sched_core *c, const char *fmt, ...)
{
  int64_t now = queue_now_ms();
  int64_t last = atomic_load(&c->last_warn_ms);
  if (last && now - last < 10000)
    return;
  atomic_store(&c->last_warn_ms, now);
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof(buf), fmt, ap);
  va_end(ap);
  LOG_W(MOD, "%s", buf);
}

/* ------------------------------------------------------------------ */
/* transactions                                                        */

enum err_code sched_txn(struct db_conn *c, db_txn_fn fn, void *user,
                        struct err *e)
{
  enum err_code rc = ERR_OK;
  for (int i = 1; i <= TXN_TRIES; i++) {
    rc = db_exec(c, "SET TRANSACTION ISOLATION LEVEL READ COMMITTED", NULL,
                 e);
    if (rc == ERR_OK)
      rc = db_begin(c, e);
    if (rc == ERR_OK)
      rc = fn(c, user, e);
    if (rc == ERR_OK)
      rc = db_commit(c, e);
    if (rc == ERR_OK)
      return ERR_OK;
    unsigned no = db_last_errno(c);
    (void)db_rollback(c, NULL);
    if (rc != ERR_DB || !db_errno_retryable(no) || i == TXN_TRIES)
      return rc;
    struct timespec ts = {0, (long)(5 + rand() % 20) * 1000000L * i};
    nanosleep(&ts, NULL);
  }
  return rc;
}

/* ------------------------------------------------------------------ */
/* trigger rules and evaluation                                        */

enum sched_decision sched_trigger_rule(enum dag_trigger_rule r, int n,
                                       int succ, int skip, int fail,
                                       int ufail)
{
  int done = succ + skip + fail + ufail;
  int failed = fail + ufail;
  if (n == 0)
    return SCHED_RUN;
  switch (r) {
  case DAG_TR_ALL_SUCCESS:
    if (failed)
      return SCHED_UFAIL;
    if (skip)
      return SCHED_SKIP;
    return succ == n ? SCHED_RUN : SCHED_WAIT;
  case DAG_TR_ALL_FAILED:
    if (succ || skip)
      return SCHED_SKIP;
    return failed == n ? SCHED_RUN : SCHED_WAIT;
  case DAG_TR_ALL_DONE:
    return done == n ? SCHED_RUN : SCHED_WAIT;
  case DAG_TR_ONE_SUCCESS:
    if (succ)
      return SCHED_RUN;
    if (done < n)
      return SCHED_WAIT;
    return skip == n ? SCHED_SKIP : SCHED_UFAIL;
  case DAG_TR_ONE_FAILED:
    if (failed)
      return SCHED_RUN;
    return done == n ? SCHED_SKIP : SCHED_WAIT;
  case DAG_TR_NONE_FAILED:
    if (failed)
      return SCHED_UFAIL;
    return done == n ? SCHED_RUN : SCHED_WAIT;
  case DAG_TR_NONE_SKIPPED:
    if (skip)
      return SCHED_SKIP;
    return done == n ? SCHED_RUN : SCHED_WAIT;
  }
  return SCHED_WAIT;
}

enum tis {
  S_NONE = -1,
  S_SCHEDULED = 0,
  S_QUEUED,
  S_RUNNING,
  S_SUCCESS,
  S_FAILED,
  S_RETRY,
  S_SKIPPED,
  S_UFAIL
};

static const char *const state_names[] = {
    TI_SCHEDULED, TI_QUEUED, TI_RUNNING, TI_SUCCESS,
    TI_FAILED, TI_UP_FOR_RETRY, TI_SKIPPED, TI_UPSTREAM_FAILED};

static int state_code(const char *s)
{
  for (int i = 0; i < (int)(sizeof(state_names) / sizeof(state_names[0]));
       i++)
    if (s && !strcmp(s, state_names[i]))
      return i;
  return S_NONE;
}

static int terminal(int st)
{
  return st == S_SUCCESS || st == S_FAILED || st == S_SKIPPED ||
         st == S_UFAIL;
}

struct ti_row {
  int64_t id;
  char *task_id;
  int st, orig;
  ptrdiff_t idx;
};

struct ti_rows {
  struct ti_row *v;
  size_t n, cap;
  int oom;
};

static void ti_rows_free(struct ti_rows *r)
{
  for (size_t i = 0; i < r->n; i++)
    free(r->v[i].task_id);
  free(r->v);
  memset(r, 0, sizeof(*r));
}

static int ti_row_cb(void *user, const struct db_row *row)
{
  struct ti_rows *r = user;
  if (VEC_RESERVE(r->v, r->cap, r->n + 1)) {
    r->oom = 1;
    return 1;
  }
  struct ti_row *t = &r->v[r->n];
  t->id = db_row_i64(row, 0);
  t->task_id = strdup(db_row_str(row, 1, NULL) ? db_row_str(row, 1, NULL)
                                                 : "");
  t->st = t->orig = state_code(db_row_str(row, 2, NULL));
  t->idx = -1;
  if (!t->task_id) {
    r->oom = 1;
    return 1;
  }
  r->n++;
  return 0;
}

static void add_failed(struct sched_eval *ev, const char *id)
{
  size_t l = strlen(ev->failed);
  if (l + strlen(id) + 2 >= sizeof(ev->failed))
    return;
  snprintf(ev->failed + l, sizeof(ev->failed) - l, "%s%s", l ? "," : "", id);
}

enum err_code sched_evaluate(struct db_conn *c, const struct dag *d,
                             const char *run_id, struct sched_eval *ev,
                             struct err *e)
{
  struct ti_rows r = {0};
  ptrdiff_t *row_of = NULL;
  enum err_code rc;
  memset(ev, 0, sizeof(*ev));
  if (!d)
    return ERR_OK;
  struct db_val p[1] = {DB_V_STR(run_id)};
  rc = db_query(c,
                "SELECT id, task_id, state FROM task_instance WHERE run_id = "
                "? ORDER BY id",
                p, 1, ti_row_cb, &r, NULL, e);
  if (rc == ERR_OK && r.oom)
    rc = err_set(e, ERR_NOMEM, "evaluate run %s: out of memory", run_id);
  if (rc != ERR_OK)
    goto out;
  row_of = malloc((d->ntasks ? d->ntasks : 1) * sizeof(*row_of));
  if (!row_of) {
    rc = err_set(e, ERR_NOMEM, "evaluate run %s: out of memory", run_id);
    goto out;
  }
  for (size_t i = 0; i < d->ntasks; i++)
    row_of[i] = -1;
  for (size_t k = 0; k < r.n; k++) {
    r.v[k].idx = dag_task_index(d, r.v[k].task_id);
    if (r.v[k].idx >= 0)
      row_of[r.v[k].idx] = (ptrdiff_t)k;
    else if (r.v[k].st == S_SCHEDULED)
      r.v[k].st = S_SKIPPED; /* the task left the DAG: nothing to run */
  }
  /* Topological order: upstream tasks are decided before their
   * downstream ones, so one pass reaches the fixpoint. */
  for (size_t k = 0; k < d->ntasks; k++) {
    size_t i = d->topo[k];
    ptrdiff_t ri = row_of[i];
    if (ri < 0 || r.v[ri].st != S_SCHEDULED)
      continue;
    const struct dag_task *t = &d->tasks[i];
    int n = 0, cnt[8] = {0};
    for (size_t u = 0; u < t->nupstream; u++) {
      ptrdiff_t ru = row_of[t->upstream[u]];
      if (ru < 0)
        continue; /* upstream task not part of this run */
      n++;
      cnt[r.v[ru].st]++;
    }
    switch (sched_trigger_rule(t->trigger_rule, n, cnt[S_SUCCESS],
                               cnt[S_SKIPPED], cnt[S_FAILED], cnt[S_UFAIL])) {
    case SCHED_RUN:
      r.v[ri].st = S_QUEUED;
      break;
    case SCHED_SKIP:
      r.v[ri].st = S_SKIPPED;
      break;
    case SCHED_UFAIL:
      r.v[ri].st = S_UFAIL;
      break;
    case SCHED_WAIT:
      break;
    }
  }
  for (size_t k = 0; k < r.n; k++) {
    if (r.v[k].st == r.v[k].orig)
      continue;
    int ends = r.v[k].st != S_QUEUED;
    struct db_val u[3] = {DB_V_STR(state_names[r.v[k].st]), DB_V_INT(ends),
                          DB_V_INT(r.v[k].id)};
    rc = db_exec_params(c,
                        "UPDATE task_instance SET state = ?, end_date = "
                        "IF(? = 1, UTC_TIMESTAMP(6), end_date) WHERE id = ? "
                        "AND state = 'scheduled'",
                        u, 3, NULL, e);
    if (rc != ERR_OK)
      goto out;
    if (r.v[k].st == S_QUEUED)
      ev->queued++;
  }
  int all_done = 1, failed = 0;
  for (size_t k = 0; k < r.n && all_done; k++)
    all_done = terminal(r.v[k].st);
  if (!all_done)
    goto out;
  for (size_t k = 0; k < r.n; k++) {
    if (r.v[k].st == S_FAILED)
      add_failed(ev, r.v[k].task_id);
    if (r.v[k].idx < 0)
      continue;
    const struct dag_task *t = &d->tasks[r.v[k].idx];
    int leaf = 1;
    for (size_t j = 0; j < t->ndownstream && leaf; j++)
      leaf = row_of[t->downstream[j]] < 0;
    if (leaf && (r.v[k].st == S_FAILED || r.v[k].st == S_UFAIL))
      failed = 1;
  }
  const char *st = failed ? "failed" : "success";
  struct db_val u[2] = {DB_V_STR(st), DB_V_STR(run_id)};
  int64_t aff = 0;
  rc = db_exec_params(c,
                      "UPDATE dag_run SET state = ?, end_date = "
                      "UTC_TIMESTAMP(6) WHERE run_id = ? AND state = "
                      "'running'",
                      u, 2, &aff, e);
  if (rc == ERR_OK && aff > 0) {
    ev->finished = 1;
    snprintf(ev->state, sizeof(ev->state), "%s", st);
  }
out:
  free(row_of);
  ti_rows_free(&r);
  return rc;
}

enum err_code sched_queue_run(struct db_conn *c, const char *run_id,
                              const char *dag_id, const char *when,
                              const char *type, const char *conf,
                              int *created, struct err *e)
{
  int64_t aff = 0;
  struct db_val p[5] = {DB_V_STR(run_id), DB_V_STR(dag_id), DB_V_STR(when),
                        DB_V_STR(type), conf ? DB_V_STR(conf) : DB_V_NULL};
  /* the unique key (dag_id, logical_date, logical_date_us = 0) and the
   * run_id's make a second scheduler's insert of the same run a no-op
   * instead of an error */
  enum err_code rc = db_exec_params(
      c,
      "INSERT INTO dag_run (run_id, dag_id, logical_date, run_type, state, "
      "conf, queued_at, external_trigger) VALUES (?, ?, ?, ?, 'queued', ?, "
      "UTC_TIMESTAMP(6), 0) ON DUPLICATE KEY UPDATE id = id",
      p, 5, &aff, e);
  *created = rc == ERR_OK && aff == 1;
  return rc;
}

enum err_code sched_insert_tis(struct db_conn *c, const struct dag *d,
                               const char *run_id, int all_scheduled,
                               struct err *e)
{
  static const char *const cols[] = {"run_id",    "dag_id",    "task_id",
                                     "try_number", "max_tries", "state"};
  if (d->ntasks == 0)
    return ERR_OK;
  struct db_val *v = calloc(d->ntasks * 6, sizeof(*v));
  if (!v)
    return err_set(e, ERR_NOMEM, "run %s: out of memory", run_id);
  for (size_t k = 0; k < d->ntasks; k++) {
    const struct dag_task *t = &d->tasks[d->topo[k]];
    struct db_val *row = v + k * 6;
    row[0] = DB_V_STR(run_id);
    row[1] = DB_V_STR(d->dag_id);
    row[2] = DB_V_STR(t->id);
    row[3] = DB_V_INT(0);
    row[4] = DB_V_INT(t->retry.retries + 1);
    row[5] = DB_V_STR(!all_scheduled && t->nupstream == 0 ? TI_QUEUED
                                                          : TI_SCHEDULED);
  }
  enum err_code rc = db_bulk_insert(c, "task_instance", cols, 6, v,
                                    (int64_t)d->ntasks, 0, NULL, NULL, e);
  free(v);
  return rc;
}

enum err_code sched_log_direct(struct db_conn *c, const char *run_id,
                               const char *task_id, int try_number,
                               const char *line, struct err *e)
{
  char ts[27];
  now_utc_micro(ts);
  struct db_val p[5] = {DB_V_STR(run_id), DB_V_STR(task_id),
                        DB_V_INT(try_number), DB_V_STR(ts), DB_V_STR(line)};
  return db_exec_params(c,
                        "INSERT INTO task_log (run_id, task_id, try_number, "
                        "ts, stream, line) VALUES (?, ?, ?, ?, 'log', ?)",
                        p, 5, NULL, e);
}

/* ------------------------------------------------------------------ */
/* requests: trigger, pause                                            */

enum err_code sched_trigger(struct db_conn *c, const struct cron_tz *tz,
                            const char *dag_id, const char *date,
                            const struct cJSON *conf, char *run_id,
                            size_t cap, struct err *e)
{
  return sched_trigger_opts(c, tz, dag_id, date, NULL, conf, run_id, cap, e);
}

/* The run id's ISO time with the fraction after its seconds:
 * "...T10:11:12+00:00" -> "...T10:11:12.000123+00:00".  The id's time is
 * its last 25 characters (cron_fmt_iso), so the fraction goes 6 from the
 * end; an id that has no room left keeps its whole-second form. */
static void run_id_add_us(char *rid, size_t cap, int us)
{
  size_t n = strlen(rid);
  if (us <= 0 || n < 6 || n + 7 > SCHED_RUN_ID_MAX || n + 8 > cap)
    return;
  char tail[8];
  memcpy(tail, rid + n - 6, 7); /* "+HH:MM" and its NUL */
  snprintf(rid + n - 6, cap - (n - 6), ".%06d%s", us, tail);
}

enum err_code sched_trigger_opts(struct db_conn *c, const struct cron_tz *tz,
                                 const char *dag_id, const char *date,
                                 const struct sched_trigger_opts *opts,
                                 const struct cJSON *conf, char *run_id,
                                 size_t cap, struct err *e)
{
  char rid[SCHED_RUN_ID_MAX + 1], when[20];
  int us = opts ? opts->us : 0, lnull = opts ? !!opts->logical_null : 0;
  char *conf_text = NULL;
  time_t t;
  enum err_code rc;
  if (!dag_id || !*dag_id || strlen(dag_id) > DAG_ID_MAX)
    return err_set(e, ERR_INVAL, "trigger: bad DAG id");
  if ((rc = sched_parse_date(tz, date, &t, e)) != ERR_OK)
    return rc;
  if (conf && !cJSON_IsNull(conf)) {
    if (!cJSON_IsObject(conf))
      return err_set(e, ERR_INVAL, "conf: expected a JSON object");
    conf_text = cJSON_PrintUnformatted(conf);
    if (!conf_text)
      return err_set(e, ERR_NOMEM, "conf: out of memory");
    if (strlen(conf_text) > SCHED_CONF_MAX) {
      free(conf_text);
      return err_set(e, ERR_INVAL, "conf: larger than %d bytes",
                     SCHED_CONF_MAX);
    }
  }
  if (us < 0 || us > 999999) {
    free(conf_text);
    return err_set(e, ERR_INVAL, "trigger: fraction of a second %d is not "
                   "in 0..999999", us);
  }
  sched_run_id(dag_id, "manual", tz, t, rid, sizeof(rid));
  run_id_add_us(rid, sizeof(rid), us);
  sched_fmt_utc(t, when);
  struct db_val p[6] = {DB_V_STR(rid),
                        DB_V_STR(dag_id),
                        DB_V_STR(when),
                        DB_V_INT(us),
                        DB_V_INT(lnull),
                        conf_text ? DB_V_STR(conf_text) : DB_V_NULL};
  rc = db_exec_params(c,
                      "INSERT INTO dag_run (run_id, dag_id, logical_date, "
                      "logical_date_us, logical_date_null, run_type, state, "
                      "conf, queued_at, external_trigger) "
                      "VALUES (?, ?, ?, ?, ?, 'manual', 'queued', ?, "
                      "UTC_TIMESTAMP(6), 1)",
                      p, 6, NULL, e);
  free(conf_text);
  if (rc == ERR_DB && db_last_errno(c) == 1062) {
    char iso[CRON_ISO_LEN];
    cron_fmt_iso(tz, t, iso);
    char other[SCHED_RUN_ID_MAX + 1] = "?";
    struct db_val q[3] = {DB_V_STR(dag_id), DB_V_STR(when), DB_V_INT(us)};
    int64_t id = 0;
    struct err qe = {0};
    if (db_query_i64(c,
                     "SELECT id FROM dag_run WHERE dag_id = ? AND "
                     "logical_date = ? AND logical_date_us = ?",
                     q, 3, &id, &qe) == ERR_OK)
      snprintf(other, sizeof(other), "dag_run id %lld", (long long)id);
    return err_set(e, ERR_EXISTS, "DAG '%s' already has a run for %s (%s)",
                   dag_id, iso, other);
  }
  if (rc != ERR_OK)
    return rc;
  if (run_id && cap)
    snprintf(run_id, cap, "%s", rid);
  return ERR_OK;
}

enum err_code sched_set_paused(struct db_conn *c, const char *dag_id,
                               int paused, struct err *e)
{
  struct db_val p[2] = {DB_V_STR(dag_id), DB_V_INT(paused ? 1 : 0)};
  return db_exec_params(c,
                        "INSERT INTO dag (dag_id, is_paused) VALUES (?, ?) "
                        "ON DUPLICATE KEY UPDATE is_paused = "
                        "VALUES(is_paused)",
                        p, 2, NULL, e);
}

/* ------------------------------------------------------------------ */
/* attempts                                                            */

struct sched_attempt *sched_attempt_new(struct sched_core *core,
                                        struct dag *d, size_t ti,
                                        int64_t ti_id, const char *run_id,
                                        int try_number, int max_tries,
                                        time_t logical_ts,
                                        const char *conf_text)
{
  struct sched_attempt *a = calloc(1, sizeof(*a));
  if (!a)
    return NULL;
  a->core = core;
  a->dag = dag_ref(d);
  a->task = ti;
  a->ti_id = ti_id;
  snprintf(a->run_id, sizeof(a->run_id), "%s", run_id);
  a->try_number = try_number;
  a->max_tries = max_tries;
  a->logical_ts = logical_ts;
  cron_fmt_date(core->tz, logical_ts, a->ds);
  if (conf_text && *conf_text) {
    a->conf = cJSON_Parse(conf_text);
    if (a->conf && !cJSON_IsObject(a->conf)) {
      cJSON_Delete(a->conf);
      a->conf = NULL;
    }
  }
  pthread_mutex_init(&a->log_mu, NULL);
  pthread_mutex_init(&a->flush_mu, NULL);
  atomic_init(&a->refs, 1);
  atomic_init(&a->interrupted, 0);
  return a;
}

void sched_attempt_ref(struct sched_attempt *a)
{
  atomic_fetch_add(&a->refs, 1);
}

void sched_attempt_unref(struct sched_attempt *a)
{
  if (!a || atomic_fetch_sub(&a->refs, 1) != 1)
    return;
  for (size_t i = 0; i < a->nlines; i++)
    free(a->lines[i].text);
  free(a->lines);
  if (a->dropped)
    LOG_W(MOD, "run=%s task=%s try=%d: %zu log lines could not be stored",
          a->run_id, a->dag->tasks[a->task].id, a->try_number, a->dropped);
  cJSON_Delete(a->conf);
  dag_destroy(a->dag);
  pthread_mutex_destroy(&a->log_mu);
  pthread_mutex_destroy(&a->flush_mu);
  free(a);
}

void sched_live_add(struct sched_attempt *a)
{
  struct sched_core *c = a->core;
  pthread_mutex_lock(&c->mu);
  a->prev = NULL;
  a->next = c->live;
  if (c->live)
    c->live->prev = a;
  c->live = a;
  a->in_live = 1;
  c->nlive++;
  pthread_mutex_unlock(&c->mu);
}

void sched_live_remove(struct sched_attempt *a)
{
  struct sched_core *c = a->core;
  pthread_mutex_lock(&c->mu);
  if (a->in_live) {
    if (a->prev)
      a->prev->next = a->next;
    else
      c->live = a->next;
    if (a->next)
      a->next->prev = a->prev;
    a->in_live = 0;
    c->nlive--;
  }
  pthread_mutex_unlock(&c->mu);
}

/* Replace bytes that are not valid UTF-8 (the column is utf8mb4: one bad
 * byte would make MariaDB refuse the whole batch) and control characters
 * other than tab by '?'. */
static char *clean_line(const char *s)
{
  size_t n = strlen(s);
  if (n > SCHED_LOG_LINE_MAX)
    n = SCHED_LOG_LINE_MAX;
  char *o = malloc(n + 1);
  if (!o)
    return NULL;
  size_t i = 0, j = 0;
  while (i < n) {
    unsigned char ch = (unsigned char)s[i];
    int len = ch < 0x80 ? 1 : (ch >> 5) == 6 ? 2 : (ch >> 4) == 14 ? 3
                        : (ch >> 3) == 30 ? 4 : 0;
    int ok = len > 0 && i + (size_t)len <= n;
    for (int k = 1; ok && k < len; k++)
      ok = ((unsigned char)s[i + k] >> 6) == 2;
    if (ok && len == 2 && ch < 0xc2)
      ok = 0; /* overlong */
    if (ok && len == 3) {
      unsigned c1 = (unsigned char)s[i + 1];
      if ((ch == 0xe0 && c1 < 0xa0) || (ch == 0xed && c1 >= 0xa0))
        ok = 0; /* overlong, surrogate */
    }
    if (ok && len == 4) {
      unsigned c1 = (unsigned char)s[i + 1];
      if (ch > 0xf4 || (ch == 0xf0 && c1 < 0x90) || (ch == 0xf4 && c1 >= 0x90))
        ok = 0;
    }
    if (!ok) {
      o[j++] = '?';
      i++;
      continue;
    }
    if (len == 1 && (ch < 0x20 && ch != '\t'))
      o[j++] = '?';
    else
      memcpy(o + j, s + i, (size_t)len), j += (size_t)len;
    i += (size_t)len;
  }
  o[j] = '\0';
  return o;
}

void sched_attempt_log(struct sched_attempt *a, const char *stream,
                       const char *line)
{
  struct sched_logline l;
  if (!line)
    return;
  if (!stream || (strcmp(stream, "stdout") && strcmp(stream, "stderr")))
    stream = "log";
  now_utc_micro(l.ts);
  snprintf(l.stream, sizeof(l.stream), "%s", stream);
  l.text = clean_line(line);
  if (!l.text)
    return;
  if (a->core->echo) {
    flockfile(stdout);
    printf("[%s] %s%s\n", a->dag->tasks[a->task].id,
           strcmp(stream, "stderr") ? "" : "stderr: ", l.text);
    fflush(stdout);
    funlockfile(stdout);
  }
  int flush = 0;
  pthread_mutex_lock(&a->log_mu);
  if (VEC_RESERVE(a->lines, a->caplines, a->nlines + 1)) {
    a->dropped++;
    pthread_mutex_unlock(&a->log_mu);
    free(l.text);
    return;
  }
  if (a->nlines == 0)
    a->first_ms = queue_now_ms();
  a->lines[a->nlines++] = l;
  flush = a->nlines >= SCHED_LOG_BATCH;
  pthread_mutex_unlock(&a->log_mu);
  if (flush)
    sched_attempt_flush(a);
}

void sched_attempt_flush(struct sched_attempt *a)
{
  static const char *const cols[] = {"run_id", "task_id", "try_number",
                                     "ts",     "stream",  "line"};
  pthread_mutex_lock(&a->flush_mu);
  pthread_mutex_lock(&a->log_mu);
  struct sched_logline *v = a->lines;
  size_t n = a->nlines;
  a->lines = NULL;
  a->nlines = a->caplines = 0;
  a->first_ms = 0;
  pthread_mutex_unlock(&a->log_mu);
  if (n == 0) {
    pthread_mutex_unlock(&a->flush_mu);
    free(v);
    return;
  }
  struct err e = {0};
  enum err_code rc = ERR_NOMEM;
  struct db_val *vals = calloc(n * 6, sizeof(*vals));
  const char *task_id = a->dag->tasks[a->task].id;
  if (vals) {
    for (size_t i = 0; i < n; i++) {
      struct db_val *r = vals + i * 6;
      r[0] = DB_V_STR(a->run_id);
      r[1] = DB_V_STR(task_id);
      r[2] = DB_V_INT(a->try_number);
      r[3] = DB_V_STR(v[i].ts);
      r[4] = DB_V_STR(v[i].stream);
      r[5] = DB_V_STR(v[i].text);
    }
    struct db_conn *c = NULL;
    rc = db_acquire(a->core->meta, SCHED_ACQUIRE_MS, &c, &e);
    if (rc == ERR_OK) {
      rc = db_bulk_insert(c, "task_log", cols, 6, vals, (int64_t)n, 0, NULL,
                          NULL, &e);
      db_release(a->core->meta, c);
    }
    free(vals);
  } else {
    err_set(&e, ERR_NOMEM, "out of memory");
  }
  if (rc == ERR_OK) {
    for (size_t i = 0; i < n; i++)
      free(v[i].text);
    free(v);
    pthread_mutex_unlock(&a->flush_mu);
    return;
  }
  sched_warn(a->core, "task log of run=%s task=%s not written yet: %s",
             a->run_id, task_id, e.msg);
  /* Put the batch back in front of what arrived meanwhile. */
  pthread_mutex_lock(&a->log_mu);
  size_t total = n + a->nlines;
  struct sched_logline *m = malloc((total ? total : 1) * sizeof(*m));
  if (m) {
    memcpy(m, v, n * sizeof(*m));
    if (a->nlines)
      memcpy(m + n, a->lines, a->nlines * sizeof(*m));
    free(a->lines);
    a->lines = m;
    a->nlines = a->caplines = total;
    size_t drop = total > SCHED_LOG_MAX_PENDING
                      ? total - SCHED_LOG_MAX_PENDING
                      : 0;
    for (size_t i = 0; i < drop; i++)
      free(a->lines[i].text);
    if (drop) {
      memmove(a->lines, a->lines + drop, (total - drop) * sizeof(*m));
      a->nlines = total - drop;
      a->dropped += drop;
    }
    a->first_ms = queue_now_ms();
    free(v);
  } else {
    for (size_t i = 0; i < n; i++)
      free(v[i].text);
    free(v);
    a->dropped += n;
  }
  pthread_mutex_unlock(&a->log_mu);
  pthread_mutex_unlock(&a->flush_mu);
}

/* ---- the task ctx ---- */

static const char *ctx_field(const struct task_ctx *t, const char *name)
{
  const cJSON *j = cJSON_GetObjectItemCaseSensitive(t->field_user, name);
  return cJSON_IsString(j) ? j->valuestring : NULL;
}

static const cJSON *ctx_field_json(const struct task_ctx *t, const char *name)
{
  return cJSON_GetObjectItemCaseSensitive(t->field_user, name);
}

static void ctx_log_line(const struct task_ctx *t, const char *stream,
                         const char *line)
{
  sched_attempt_log(t->log_user, stream, line);
}

static enum err_code ctx_trigger(const struct task_ctx *t,
                                 const char *dag_id,
                                 const char *logical_date,
                                 const struct cJSON *conf, char *run_id_out,
                                 int run_id_cap, struct err *e)
{
  struct sched_attempt *a = t->trigger_user;
  struct sched_core *core = a->core;
  if (core->dag_get) {
    struct dag *d = core->dag_get(core->dag_get_user, dag_id);
    if (!d)
      return err_set(e, ERR_NOTFOUND, "DAG '%s' is not loaded", dag_id);
    dag_destroy(d);
  }
  struct db_conn *c = NULL;
  enum err_code rc = db_acquire(core->meta, SCHED_ACQUIRE_MS, &c, e);
  if (rc != ERR_OK)
    return rc;
  rc = sched_trigger(c, core->tz, dag_id, logical_date, conf, run_id_out,
                     run_id_out && run_id_cap > 0 ? (size_t)run_id_cap : 0,
                     e);
  db_release(core->meta, c);
  return rc;
}

enum err_code sched_attempt_exec(struct sched_attempt *a,
                                 struct queue_job_ctx *job,
                                 int64_t deadline_ms, struct err *e)
{
  const struct dag *d = a->dag;
  const struct dag_task *task = &d->tasks[a->task];
  struct task_ctx ctx;
  memset(&ctx, 0, sizeof(ctx));
  ctx.dag_id = d->dag_id;
  ctx.run_id = a->run_id;
  ctx.task_id = task->id;
  ctx.try_number = a->try_number;
  ctx.ds = a->ds;
  ctx.logical_ts = (int64_t)a->logical_ts;
  ctx.field = ctx_field;
  ctx.field_json = ctx_field_json;
  ctx.field_user = task->fields;
  ctx.params = d->params;
  ctx.conf = a->conf;
  ctx.cfg = a->core->cfg;
  ctx.db = a->core->task_db;
  ctx.job = job;
  ctx.deadline_ms = deadline_ms;
  ctx.log_line = ctx_log_line;
  ctx.log_user = a;
  ctx.trigger = ctx_trigger;
  ctx.trigger_user = a;
  ctx.dag_file = d->path;
  ctx.timeout_s = task->retry.timeout_s;
  task_logf(&ctx, "attempt %d of %d of task %s (%s) on %s pid %ld",
            a->try_number, a->max_tries, task->id, task->type_name,
            a->core->host, a->core->pid);
  if (!task->type || !task->type->run)
    return err_set(e, ERR_UNSUPPORTED, "task type '%s' cannot run",
                   task->type_name);
  enum err_code rc = task->type->run(&ctx, e);
  a->skip = ctx.skip;
  return rc;
}

/* ---- finishing an attempt ---- */

struct finish {
  struct sched_attempt *a;
  const char *state;
  int retry_in;                /* seconds, when up_for_retry */
  int extra_try;               /* 1: the attempt does not count */
  int lost;
  struct sched_eval ev;
};

struct str_out {
  char *buf;
  size_t cap;
  int found;
};

static int row_claim(void *user, const struct db_row *row)
{
  struct str_out *o = user;
  const char *st = db_row_str(row, 0, NULL);
  const char *cl = db_row_str(row, 2, NULL);
  snprintf(o->buf, o->cap, "%s|%lld|%s", st ? st : "",
           (long long)db_row_i64(row, 1), cl ? cl : "");
  o->found = 1;
  return 1;
}

static enum err_code finish_txn(struct db_conn *c, void *user, struct err *e)
{
  struct finish *f = user;
  struct sched_attempt *a = f->a;
  enum err_code rc;
  int64_t id = 0;
  f->lost = 0;
  memset(&f->ev, 0, sizeof(f->ev));
  struct db_val p[1] = {DB_V_STR(a->run_id)};
  rc = db_query_i64(c, "SELECT id FROM dag_run WHERE run_id = ? FOR UPDATE",
                    p, 1, &id, e);
  if (rc == ERR_NOTFOUND) {
    f->lost = 1;
    return ERR_OK;
  }
  if (rc != ERR_OK)
    return rc;
  char buf[SCHED_CLAIM_MAX + 64], want[SCHED_CLAIM_MAX + 64];
  struct str_out o = {buf, sizeof(buf), 0};
  struct db_val q[1] = {DB_V_INT(a->ti_id)};
  rc = db_query(c,
                "SELECT state, try_number, claimed_by FROM task_instance "
                "WHERE id = ? FOR UPDATE",
                q, 1, row_claim, &o, NULL, e);
  if (rc != ERR_OK)
    return rc;
  snprintf(want, sizeof(want), "running|%d|%s", a->try_number,
           a->core->claim_id);
  if (!o.found || strcmp(buf, want) != 0) {
    f->lost = 1;
    return ERR_OK;
  }
  int retry = !strcmp(f->state, TI_UP_FOR_RETRY);
  struct db_val u[5] = {DB_V_STR(f->state), DB_V_INT(retry),
                        DB_V_INT(f->retry_in), DB_V_INT(f->extra_try),
                        DB_V_INT(a->ti_id)};
  rc = db_exec_params(
      c,
      "UPDATE task_instance SET state = ?, end_date = UTC_TIMESTAMP(6), "
      "duration = TIMESTAMPDIFF(MICROSECOND, start_date, "
      "UTC_TIMESTAMP(6)) / 1000000, next_try_at = IF(? = 1, "
      "UTC_TIMESTAMP(6) + INTERVAL ? SECOND, NULL), max_tries = max_tries "
      "+ ? WHERE id = ?",
      u, 5, NULL, e);
  if (rc != ERR_OK)
    return rc;
  /* `dags test` decides its tasks itself, in this process: evaluating
   * would queue them for the daemons. */
  return a->run_hb ? ERR_OK : sched_evaluate(c, a->dag, a->run_id, &f->ev, e);
}

enum err_code sched_attempt_finish(struct sched_attempt *a,
                                   enum err_code code, const struct err *ae,
                                   char *state_out, int *lost,
                                   struct sched_eval *ev, struct err *e)
{
  const struct dag_task *task = &a->dag->tasks[a->task];
  struct finish f = {.a = a};
  struct task_ctx lc;
  memset(&lc, 0, sizeof(lc));
  lc.log_line = ctx_log_line;
  lc.log_user = a;
  if (code != ERR_OK && atomic_load(&a->interrupted)) {
    f.state = TI_UP_FOR_RETRY;
    f.extra_try = 1;
    task_logf(&lc, "attempt %d interrupted by the daemon's shutdown (%s); "
                   "it will run again",
              a->try_number, ae && ae->msg[0] ? ae->msg : err_str(code));
  } else if (code == ERR_OK) {
    f.state = a->skip ? TI_SKIPPED : TI_SUCCESS;
    task_logf(&lc, "attempt %d: %s", a->try_number, f.state);
  } else {
    task_logf(&lc, "attempt %d failed: %s", a->try_number,
              ae && ae->msg[0] ? ae->msg : err_str(code));
    if (a->try_number < a->max_tries) {
      f.state = TI_UP_FOR_RETRY;
      f.retry_in = dag_retry_delay(&task->retry, a->try_number);
      task_logf(&lc, "up for retry in %ds (attempt %d of %d next)",
                f.retry_in, a->try_number + 1, a->max_tries);
    } else {
      f.state = TI_FAILED;
    }
  }
  sched_attempt_flush(a);
  /* While MariaDB is away keep trying for a while: the claim's heartbeat
   * goes on meanwhile, so nobody takes the task over. */
  int64_t until = queue_now_ms() +
                  (a->core->stopping ? 3000 : 2000LL * a->core->lease_s);
  enum err_code rc;
  for (;;) {
    struct db_conn *c = NULL;
    rc = db_acquire(a->core->meta,
                    a->core->stopping ? SCHED_STOP_ACQUIRE_MS
                                      : SCHED_ACQUIRE_MS,
                    &c, e);
    if (rc == ERR_OK) {
      rc = sched_txn(c, finish_txn, &f, e);
      db_release(a->core->meta, c);
    }
    if (rc == ERR_OK || (rc != ERR_DB_CONN && rc != ERR_TIMEOUT &&
                         rc != ERR_DB) ||
        queue_now_ms() >= until)
      break;
    sched_warn(a->core, "recording run=%s task=%s try=%d: %s (retrying)",
               a->run_id, task->id, a->try_number, e->msg);
    struct timespec ts = {0, 500 * 1000000L};
    nanosleep(&ts, NULL);
  }
  if (rc == ERR_OK && f.lost)
    LOG_W(MOD, "run=%s task=%s try=%d: claim lost (taken over after its "
               "lease expired); result %s not recorded",
          a->run_id, task->id, a->try_number, f.state);
  if (state_out)
    snprintf(state_out, 16, "%s", f.state);
  if (lost)
    *lost = f.lost;
  if (ev)
    *ev = f.ev;
  return rc;
}

/* ------------------------------------------------------------------ */
/* heartbeat / flusher                                                 */

int sched_core_init(struct sched_core *c)
{
  if (pthread_mutex_init(&c->mu, NULL) != 0)
    return -1;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(&c->hb_cv, &ca);
  pthread_condattr_destroy(&ca);
  if (rc != 0) {
    pthread_mutex_destroy(&c->mu);
    return -1;
  }
  atomic_init(&c->run_hb_id, 0);
  atomic_init(&c->last_warn_ms, 0);
  return 0;
}

void sched_core_fini(struct sched_core *c)
{
  pthread_cond_destroy(&c->hb_cv);
  pthread_mutex_destroy(&c->mu);
}

static void heartbeat(struct sched_core *c, const int64_t *ids, size_t n)
{
  struct db_conn *conn = NULL;
  struct err e = {0};
  int64_t run = atomic_load(&c->run_hb_id);
  if (n == 0 && run == 0)
    return;
  if (db_acquire(c->meta, SCHED_ACQUIRE_MS, &conn, &e) != ERR_OK) {
    sched_warn(c, "heartbeat: %s", e.msg);
    return;
  }
  enum err_code rc = ERR_OK;
  for (size_t off = 0; off < n && rc == ERR_OK; off += 64) {
    size_t k = n - off < 64 ? n - off : 64;
    char sql[1024];
    int len = snprintf(sql, sizeof(sql),
                       "UPDATE task_instance SET heartbeat_at = "
                       "UTC_TIMESTAMP(6) WHERE state = 'running' AND "
                       "claimed_by = ? AND id IN (");
    struct db_val p[65];
    p[0] = DB_V_STR(c->claim_id);
    for (size_t i = 0; i < k; i++) {
      len += snprintf(sql + len, sizeof(sql) - (size_t)len, "%s?",
                      i ? "," : "");
      p[i + 1] = DB_V_INT(ids[off + i]);
    }
    snprintf(sql + len, sizeof(sql) - (size_t)len, ")");
    rc = db_exec_params(conn, sql, p, (int)k + 1, NULL, &e);
  }
  if (rc == ERR_OK && run) {
    struct db_val p[2] = {DB_V_INT(run), DB_V_STR(c->claim_id)};
    rc = db_exec_params(conn,
                        "UPDATE dag_run SET heartbeat_at = UTC_TIMESTAMP(6) "
                        "WHERE id = ? AND claimed_by = ?",
                        p, 2, NULL, &e);
  }
  db_release(c->meta, conn);
  if (rc != ERR_OK)
    sched_warn(c, "heartbeat: %s", e.msg);
}

static void *hb_main(void *arg)
{
  struct sched_core *c = arg;
  int64_t next_hb = 0;
  for (;;) {
    pthread_mutex_lock(&c->mu);
    if (!c->hb_stop) {
      struct timespec ts;
      clock_gettime(CLOCK_MONOTONIC, &ts);
      ts.tv_nsec += SCHED_LOG_FLUSH_MS / 2 * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      pthread_cond_timedwait(&c->hb_cv, &c->mu, &ts);
    }
    int stop = c->hb_stop;
    size_t n = 0;
    struct sched_attempt **v = NULL;
    int64_t *ids = NULL;
    if (c->nlive > 0) {
      v = malloc((size_t)c->nlive * sizeof(*v));
      ids = malloc((size_t)c->nlive * sizeof(*ids));
      if (v && ids)
        for (struct sched_attempt *a = c->live; a; a = a->next) {
          sched_attempt_ref(a);
          v[n] = a;
          ids[n++] = a->ti_id;
        }
    }
    pthread_mutex_unlock(&c->mu);
    int64_t now = queue_now_ms();
    for (size_t i = 0; i < n; i++) {
      pthread_mutex_lock(&v[i]->log_mu);
      int due = v[i]->nlines > 0 &&
                (stop || now - v[i]->first_ms >= SCHED_LOG_FLUSH_MS);
      pthread_mutex_unlock(&v[i]->log_mu);
      if (due)
        sched_attempt_flush(v[i]);
    }
    if (!stop && now >= next_hb) {
      heartbeat(c, ids, n);
      next_hb = now + c->hb_ms;
    }
    for (size_t i = 0; i < n; i++)
      sched_attempt_unref(v[i]);
    free(v);
    free(ids);
    if (stop)
      return NULL;
  }
}

enum err_code sched_core_hb_start(struct sched_core *c, struct err *e)
{
  if (c->hb_ms <= 0) {
    int ms = c->lease_s * 1000 / 3;
    c->hb_ms = ms < 200 ? 200 : ms > 5000 ? 5000 : ms;
  }
  c->hb_stop = 0;
  if (pthread_create(&c->hb_thr, NULL, hb_main, c) != 0)
    return err_set(e, ERR_INTERNAL, "sched: cannot start the heartbeat "
                                    "thread");
  c->hb_started = 1;
  return ERR_OK;
}

void sched_core_hb_stop(struct sched_core *c)
{
  if (!c->hb_started)
    return;
  pthread_mutex_lock(&c->mu);
  c->hb_stop = 1;
  pthread_cond_broadcast(&c->hb_cv);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->hb_thr, NULL);
  c->hb_started = 0;
}

/* ------------------------------------------------------------------ */
/* callbacks                                                           */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

struct cb_body {
  char buf[256];
  size_t n;
};

static size_t cb_write(char *p, size_t sz, size_t nm, void *user)
{
  struct cb_body *b = user;
  size_t n = sz * nm;
  size_t room = sizeof(b->buf) - 1 - b->n;
  size_t k = n < room ? n : room;
  memcpy(b->buf + b->n, p, k);
  b->n += k;
  b->buf[b->n] = '\0';
  return n;
}

void sched_callback_send(const struct dag *d, const char *run_id,
                         const char *state, const char *ds, const char *iso,
                         const struct cJSON *conf, const char *failed_tasks)
{
  const struct dag_callback *cb =
      strcmp(state, "success") == 0 ? &d->on_success : &d->on_failure;
  const char *which = cb == &d->on_success ? "on_success" : "on_failure";
  if (!cb->url)
    return;
  struct task_ctx t;
  memset(&t, 0, sizeof(t));
  t.dag_id = d->dag_id;
  t.run_id = run_id;
  t.ds = ds;
  t.params = d->params;
  t.conf = conf;
  char *url = NULL, *body = NULL;
  struct curl_slist *hdr = NULL;
  struct err e = {0};
  CURL *h = NULL;
  if (task_render(&t, which, cb->url, TMPL_URL, &url, NULL, &e) != ERR_OK)
    goto fail;
  if (cb->body) {
    if (task_render(&t, which, cb->body, TMPL_PLAIN, &body, NULL, &e) !=
        ERR_OK)
      goto fail;
  } else {
    cJSON *o = cJSON_CreateObject();
    cJSON *ft = cJSON_AddArrayToObject(o, "failed_tasks");
    cJSON_AddStringToObject(o, "dag_id", d->dag_id);
    cJSON_AddStringToObject(o, "run_id", run_id);
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddStringToObject(o, "logical_date", iso);
    cJSON_AddStringToObject(o, "ds", ds);
    if (ft && failed_tasks && *failed_tasks) {
      char tmp[512];
      snprintf(tmp, sizeof(tmp), "%s", failed_tasks);
      for (char *s = strtok(tmp, ","); s; s = strtok(NULL, ","))
        cJSON_AddItemToArray(ft, cJSON_CreateString(s));
    }
    body = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!body) {
      err_set(&e, ERR_NOMEM, "out of memory");
      goto fail;
    }
  }
  int has_ct = 0;
  if (cb->headers) {
    const cJSON *it;
    cJSON_ArrayForEach(it, cb->headers)
    {
      if (!cJSON_IsString(it))
        continue;
      char *v = NULL;
      if (task_render(&t, which, it->valuestring, TMPL_HEADER, &v, NULL,
                      &e) != ERR_OK)
        goto fail;
      char line[2048];
      snprintf(line, sizeof(line), "%s: %s", it->string, v);
      free(v);
      if (!strcasecmp(it->string, "content-type"))
        has_ct = 1;
      struct curl_slist *nl = curl_slist_append(hdr, line);
      if (!nl) {
        err_set(&e, ERR_NOMEM, "out of memory");
        goto fail;
      }
      hdr = nl;
    }
  }
  if (!has_ct) {
    struct curl_slist *nl = curl_slist_append(
        hdr, "Content-Type: application/json");
    if (nl)
      hdr = nl;
  }
  pthread_once(&curl_once, curl_init);
  h = curl_easy_init();
  if (!h) {
    err_set(&e, ERR_NOMEM, "curl_easy_init failed");
    goto fail;
  }
  struct cb_body rb = {.n = 0};
  rb.buf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, cb->method ? cb->method : "POST");
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)CB_TIMEOUT_S);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, cb_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &rb);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  if (cc != CURLE_OK)
    LOG_W(MOD, "dag=%s run=%s %s callback to %s failed: %s", d->dag_id,
          run_id, which, url, curl_easy_strerror(cc));
  else if (status < 200 || status > 299)
    LOG_W(MOD, "dag=%s run=%s %s callback to %s: HTTP %ld %.120s", d->dag_id,
          run_id, which, url, status, rb.buf);
  else
    LOG_I(MOD, "dag=%s run=%s %s callback sent: HTTP %ld", d->dag_id, run_id,
          which, status);
  goto out;
fail:
  LOG_W(MOD, "dag=%s run=%s %s callback not sent: %s", d->dag_id, run_id,
        which, e.msg);
out:
  if (h)
    curl_easy_cleanup(h);
  curl_slist_free_all(hdr);
  free(url);
  free(body);
}
