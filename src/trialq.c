/* trialq.c - grid-search trials as rows in MariaDB (see trialq.h).
 *
 * Why the claim is two steps for "any search": a locking SELECT over a
 * join would also lock the search row, so two helpers (and the
 * coordinator's heartbeat) would queue on it.  The live searches are
 * listed without locks first, then trials are claimed one search at a
 * time with FOR UPDATE SKIP LOCKED on train_trial alone.
 */
#include "mlopsd/trialq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mlopsd/db.h"

#define ACQUIRE_MS 10000
#define TXN_TRIES 5
#define MAX_LIVE 64

void trialq_owner_name(char *buf, size_t cap, const char *tag)
{
  char host[128];
  if (gethostname(host, sizeof(host)) != 0 || !host[0])
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  unsigned r = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 16) ^
               (unsigned)(uintptr_t)buf;
  snprintf(buf, cap, "%s:%ld:%s:%08x", host, (long)getpid(),
           tag ? tag : "trial", r);
}

void trialq_owner_prefix(char *buf, size_t cap)
{
  char host[128];
  if (gethostname(host, sizeof(host)) != 0 || !host[0])
    snprintf(host, sizeof(host), "localhost");
  host[sizeof(host) - 1] = '\0';
  snprintf(buf, cap, "%s:%ld:", host, (long)getpid());
}

static void copy(char *dst, size_t cap, const char *s)
{
  snprintf(dst, cap, "%s", s ? s : "");
}

/* ---- search ------------------------------------------------------------ */

static enum err_code create_txn(struct db_conn *c, void *ud, struct err *e)
{
  struct trialq_search *s = ud;
  int workers = !strcmp(s->kind, "workers");
  struct db_val v[13] = {
      DB_V_STR(s->model),           DB_V_STR(s->ds),
      DB_V_STR(s->run_prefix),      DB_V_STR(s->spec_sha256),
      DB_V_STR(s->data_sha256),     DB_V_INT(s->trials),
      DB_V_INT(s->num_boost_round), DB_V_INT(s->early_stopping_rounds),
      DB_V_STR(s->owner),           DB_V_STR(workers ? "workers" : "grid"),
      DB_V_INT(s->workers),
      s->tracker[0] ? DB_V_STR(s->tracker) : DB_V_NULL,
      s->prep_json ? DB_V_STR(s->prep_json) : DB_V_NULL};
  enum err_code rc = db_exec_params(
      c,
      "INSERT INTO train_search (model, ds, run_prefix, spec_sha256, "
      "data_sha256, trials, num_boost_round, early_stopping_rounds, owner, "
      "kind, workers, tracker, prep_json, state, heartbeat_at, created_at) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', "
      "UTC_TIMESTAMP(6), UTC_TIMESTAMP(6))",
      v, 13, NULL, e);
  if (rc)
    return rc;
  int64_t id = 0;
  if ((rc = db_query_i64(c, "SELECT LAST_INSERT_ID()", NULL, 0, &id, e)))
    return rc;
  s->id = id;
  int rows = workers ? s->workers : s->trials;
  for (int i = 0; !rc && i < rows; i++) {
    struct db_val t[3] = {DB_V_INT(id), DB_V_INT(i),
                          DB_V_STR(workers && i == 0 ? "coord" : "queued")};
    rc = db_exec_params(c,
                        "INSERT INTO train_trial (search_id, trial, state) "
                        "VALUES (?, ?, ?)",
                        t, 3, NULL, e);
  }
  return rc;
}

enum err_code trialq_search_create(struct db_pool *db,
                                   struct trialq_search *s, struct err *e)
{
  if (!db || !s || s->trials < 1 ||
      (!strcmp(s->kind, "workers") && s->workers < 2))
    return err_set(e, ERR_INVAL, "trialq: a search needs trials (and 2 or "
                                 "more workers)");
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  rc = db_txn_retry(c, TXN_TRIES, create_txn, s, e);
  db_release(db, c);
  if (rc)
    err_prefix(e, "creating the shared trials of %s", s->model);
  return rc;
}

static enum err_code exec1(struct db_pool *db, const char *sql,
                           const struct db_val *v, int n, int64_t *affected,
                           struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  rc = db_exec_params_retry(c, sql, v, n, TXN_TRIES, affected, e);
  db_release(db, c);
  return rc;
}

enum err_code trialq_search_heartbeat(struct db_pool *db, int64_t id,
                                      struct err *e)
{
  struct db_val v[1] = {DB_V_INT(id)};
  return exec1(db,
               "UPDATE train_search SET heartbeat_at = UTC_TIMESTAMP(6) "
               "WHERE id = ?",
               v, 1, NULL, e);
}

enum err_code trialq_search_end(struct db_pool *db, int64_t id,
                                const char *state, struct err *e)
{
  struct db_val v[2] = {DB_V_STR(state), DB_V_INT(id)};
  enum err_code rc = exec1(db,
                           "UPDATE train_search SET state = ?, end_date = "
                           "UTC_TIMESTAMP(6) WHERE id = ?",
                           v, 2, NULL, e);
  if (rc)
    return rc;
  struct db_val w[1] = {DB_V_INT(id)};
  return exec1(db,
               "UPDATE train_trial SET state = 'skipped', end_date = "
               "UTC_TIMESTAMP(6) WHERE search_id = ? AND state = 'queued'",
               w, 1, NULL, e);
}

static int search_row(void *ud, const struct db_row *r)
{
  struct trialq_search *s = ud;
  s->id = db_row_i64(r, 0);
  copy(s->model, sizeof(s->model), db_row_str(r, 1, NULL));
  copy(s->ds, sizeof(s->ds), db_row_str(r, 2, NULL));
  copy(s->run_prefix, sizeof(s->run_prefix), db_row_str(r, 3, NULL));
  copy(s->spec_sha256, sizeof(s->spec_sha256), db_row_str(r, 4, NULL));
  copy(s->data_sha256, sizeof(s->data_sha256), db_row_str(r, 5, NULL));
  s->trials = (int)db_row_i64(r, 6);
  s->num_boost_round = (int)db_row_i64(r, 7);
  s->early_stopping_rounds = (int)db_row_i64(r, 8);
  copy(s->owner, sizeof(s->owner), db_row_str(r, 9, NULL));
  copy(s->kind, sizeof(s->kind), db_row_str(r, 10, NULL));
  s->workers = (int)db_row_i64(r, 11);
  copy(s->tracker, sizeof(s->tracker), db_row_str(r, 12, NULL));
  return 1;
}

enum err_code trialq_search_get(struct db_pool *db, int64_t id,
                                struct trialq_search *s, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  memset(s, 0, sizeof(*s));
  int64_t n = 0;
  struct db_val v[1] = {DB_V_INT(id)};
  rc = db_query(c,
                "SELECT id, model, ds, run_prefix, spec_sha256, data_sha256, "
                "trials, num_boost_round, early_stopping_rounds, owner, "
                "kind, workers, tracker FROM train_search WHERE id = ?",
                v, 1, search_row, s, &n, e);
  db_release(db, c);
  if (!rc && n == 0)
    rc = err_set(e, ERR_NOTFOUND, "trialq: no search %lld", (long long)id);
  return rc;
}

/* ---- claims -------------------------------------------------------------- */

struct claim {
  int64_t sid;
  const char *owner;
  int lease_s;
  int takeover; /* grid trials: an expired claim may be taken over */
  int found, trial, try_number;
};

static int claim_row(void *ud, const struct db_row *r)
{
  struct claim *cl = ud;
  cl->found = 1;
  cl->trial = (int)db_row_i64(r, 0);
  cl->try_number = (int)db_row_i64(r, 1) + 1;
  return 1;
}

static enum err_code claim_txn(struct db_conn *c, void *ud, struct err *e)
{
  struct claim *cl = ud;
  cl->found = 0;
  struct db_val v[3] = {DB_V_INT(cl->sid), DB_V_INT(cl->takeover),
                        DB_V_INT(cl->lease_s)};
  enum err_code rc = db_query(
      c,
      "SELECT trial, try_number FROM train_trial WHERE search_id = ? AND "
      "(state = 'queued' OR (? AND state = 'running' AND heartbeat_at < "
      "UTC_TIMESTAMP(6) - INTERVAL ? SECOND)) ORDER BY state = 'running', "
      "trial LIMIT 1 FOR UPDATE SKIP LOCKED",
      v, 3, claim_row, cl, NULL, e);
  if (rc || !cl->found)
    return rc;
  char host[128];
  if (gethostname(host, sizeof(host)) != 0)
    host[0] = '\0';
  host[sizeof(host) - 1] = '\0';
  struct db_val u[4] = {DB_V_STR(cl->owner), DB_V_STR(host),
                        DB_V_INT(cl->sid), DB_V_INT(cl->trial)};
  return db_exec_params(
      c,
      "UPDATE train_trial SET state = 'running', try_number = try_number + "
      "1, claimed_by = ?, hostname = ?, heartbeat_at = UTC_TIMESTAMP(6), "
      "start_date = UTC_TIMESTAMP(6), end_date = NULL WHERE search_id = ? "
      "AND trial = ?",
      u, 4, NULL, e);
}

struct live {
  int64_t id[MAX_LIVE];
  int grid[MAX_LIVE];
  int n;
};

static int live_row(void *ud, const struct db_row *r)
{
  struct live *l = ud;
  if (l->n >= MAX_LIVE)
    return 1;
  const char *k = db_row_str(r, 1, NULL);
  l->grid[l->n] = !k || strcmp(k, "workers") != 0;
  l->id[l->n++] = db_row_i64(r, 0);
  return 0;
}

enum err_code trialq_claim(struct db_pool *db, int64_t search_id,
                           const char *exclude_owner, const int64_t *skip,
                           int nskip, const char *owner, int lease_s,
                           int64_t *sid, int *trial, int *try_number,
                           struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  struct live l = {.n = 0};
  if (search_id > 0) {
    l.grid[l.n] = 1;
    l.id[l.n++] = search_id;
  } else {
    const char *x = exclude_owner && *exclude_owner ? exclude_owner : "\n";
    struct db_val v[3] = {DB_V_INT(lease_s), DB_V_STR(x), DB_V_STR(x)};
    rc = db_query(c,
                  "SELECT id, kind FROM train_search WHERE state = 'running' "
                  "AND "
                  "heartbeat_at >= UTC_TIMESTAMP(6) - INTERVAL ? SECOND AND "
                  "LEFT(owner, CHAR_LENGTH(?)) <> ? ORDER BY id",
                  v, 3, live_row, &l, NULL, e);
  }
  struct claim cl = {.owner = owner, .lease_s = lease_s};
  for (int i = 0; !rc && i < l.n; i++) {
    int skipped = 0;
    for (int k = 0; k < nskip; k++)
      skipped |= skip[k] == l.id[i];
    if (skipped)
      continue;
    cl.sid = l.id[i];
    /* a worker of distributed training cannot be replaced mid-way: the
     * tracker knows its ranks; only grid trials are taken over */
    cl.takeover = l.grid[i];
    rc = db_txn_retry(c, TXN_TRIES, claim_txn, &cl, e);
    if (!rc && cl.found)
      break;
  }
  db_release(db, c);
  if (rc)
    return rc;
  if (!cl.found)
    return err_set(e, ERR_NOTFOUND, "trialq: nothing to claim");
  *sid = cl.sid;
  *trial = cl.trial;
  *try_number = cl.try_number;
  return ERR_OK;
}

enum err_code trialq_heartbeat(struct db_pool *db, int64_t sid, int trial,
                               const char *owner, struct err *e)
{
  struct db_val v[3] = {DB_V_INT(sid), DB_V_INT(trial), DB_V_STR(owner)};
  int64_t n = 0;
  enum err_code rc = exec1(db,
                           "UPDATE train_trial SET heartbeat_at = "
                           "UTC_TIMESTAMP(6) WHERE search_id = ? AND trial = "
                           "? AND claimed_by = ? AND state = 'running'",
                           v, 3, &n, e);
  if (!rc && n == 0)
    rc = err_set(e, ERR_STATE, "trial %d of search %lld: claim lost",
                 trial + 1, (long long)sid);
  return rc;
}

enum err_code trialq_release(struct db_pool *db, int64_t sid, int trial,
                             const char *owner, struct err *e)
{
  struct db_val v[3] = {DB_V_INT(sid), DB_V_INT(trial), DB_V_STR(owner)};
  return exec1(db,
               "UPDATE train_trial SET state = 'queued', try_number = "
               "GREATEST(try_number - 1, 0), claimed_by = NULL, "
               "heartbeat_at = NULL, start_date = NULL WHERE search_id = ? "
               "AND trial = ? AND claimed_by = ? AND state = 'running'",
               v, 3, NULL, e);
}

static char *to_hex(const void *p, size_t n)
{
  static const char d[] = "0123456789abcdef";
  const unsigned char *b = p;
  char *h = malloc(n * 2 + 1);
  if (!h)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    h[2 * i] = d[b[i] >> 4];
    h[2 * i + 1] = d[b[i] & 15];
  }
  h[2 * n] = '\0';
  return h;
}

enum err_code trialq_finish(struct db_pool *db, int64_t sid, int trial,
                            const char *owner, int ok, double seconds,
                            const char *metrics, const char *params,
                            const void *model, size_t model_len,
                            const char *error, struct err *e)
{
  char *hex = NULL;
  if (ok && model && !(hex = to_hex(model, model_len)))
    return err_set(e, ERR_NOMEM, "trialq: out of memory");
  struct db_val v[9] = {
      DB_V_STR(ok ? "success" : "failed"),
      DB_V_DBL(seconds),
      metrics ? DB_V_STR(metrics) : DB_V_NULL,
      params ? DB_V_STR(params) : DB_V_NULL,
      hex ? DB_V_STR(hex) : DB_V_NULL,
      error ? DB_V_STR(error) : DB_V_NULL,
      DB_V_INT(sid),
      DB_V_INT(trial),
      DB_V_STR(owner)};
  int64_t n = 0;
  enum err_code rc = exec1(
      db,
      "UPDATE train_trial SET state = ?, seconds = ?, metrics = ?, params = "
      "?, model_hex = ?, error = ?, end_date = UTC_TIMESTAMP(6) WHERE "
      "search_id = ? AND trial = ? AND claimed_by = ? AND state = 'running'",
      v, 9, &n, e);
  free(hex);
  if (!rc && n == 0)
    rc = err_set(e, ERR_STATE, "trial %d of search %lld: claim lost",
                 trial + 1, (long long)sid);
  return rc;
}

static int count_row(void *ud, const struct db_row *r)
{
  struct trialq_counts *c = ud;
  const char *s = db_row_str(r, 0, NULL);
  int n = (int)db_row_i64(r, 1);
  if (!s)
    c->other += n;
  else if (!strcmp(s, "queued"))
    c->queued += n;
  else if (!strcmp(s, "running"))
    c->running += n;
  else if (!strcmp(s, "success"))
    c->success += n;
  else if (!strcmp(s, "failed"))
    c->failed += n;
  else
    c->other += n;
  return 0;
}

enum err_code trialq_count(struct db_pool *db, int64_t sid,
                           struct trialq_counts *cnt, struct err *e)
{
  memset(cnt, 0, sizeof(*cnt));
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  struct db_val v[1] = {DB_V_INT(sid)};
  rc = db_query(c,
                "SELECT state, COUNT(*) FROM train_trial WHERE search_id = ? "
                "GROUP BY state",
                v, 1, count_row, cnt, NULL, e);
  db_release(db, c);
  return rc;
}

struct results {
  trialq_row_fn fn;
  void *ud;
};

static int result_row(void *ud, const struct db_row *r)
{
  struct results *rs = ud;
  struct trialq_row t = {
      .trial = (int)db_row_i64(r, 0),
      .state = db_row_str(r, 1, NULL),
      .claimed_by = db_row_str(r, 2, NULL),
      .try_number = (int)db_row_i64(r, 3),
      .seconds = db_row_f64(r, 4),
      .metrics = db_row_str(r, 5, NULL),
      .params = db_row_str(r, 6, NULL),
      .error = db_row_str(r, 7, NULL),
  };
  return rs->fn(rs->ud, &t);
}

enum err_code trialq_results(struct db_pool *db, int64_t sid,
                             trialq_row_fn fn, void *ud, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  struct results rs = {fn, ud};
  struct db_val v[1] = {DB_V_INT(sid)};
  rc = db_query(c,
                "SELECT trial, state, claimed_by, try_number, seconds, "
                "metrics, params, error FROM train_trial WHERE search_id = ? "
                "ORDER BY trial",
                v, 1, result_row, &rs, NULL, e);
  db_release(db, c);
  return rc;
}

struct model_out {
  char *buf;
  size_t len;
  int bad;
};

static int hexval(char c)
{
  return c >= '0' && c <= '9'   ? c - '0'
         : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : -1;
}

static int model_row(void *ud, const struct db_row *r)
{
  struct model_out *m = ud;
  size_t n = 0;
  const char *h = db_row_str(r, 0, &n);
  if (!h || n % 2)
    return 1;
  m->buf = malloc(n / 2 + 1);
  if (!m->buf) {
    m->bad = 1;
    return 1;
  }
  for (size_t i = 0; i < n / 2; i++) {
    int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
    if (a < 0 || b < 0) {
      m->bad = 1;
      break;
    }
    m->buf[i] = (char)(a << 4 | b);
  }
  m->len = n / 2;
  return 1;
}

enum err_code trialq_model(struct db_pool *db, int64_t sid, int trial,
                           char **buf, size_t *len, struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  struct model_out m = {0};
  struct db_val v[2] = {DB_V_INT(sid), DB_V_INT(trial)};
  rc = db_query(c,
                "SELECT model_hex FROM train_trial WHERE search_id = ? AND "
                "trial = ? AND state = 'success'",
                v, 2, model_row, &m, NULL, e);
  db_release(db, c);
  if (!rc && m.bad)
    rc = err_set(e, ERR_INTERNAL, "trial %d of search %lld: the stored "
                                  "model is not hex", trial + 1,
                 (long long)sid);
  else if (!rc && !m.buf)
    rc = err_set(e, ERR_NOTFOUND, "trial %d of search %lld has no model",
                 trial + 1, (long long)sid);
  if (rc) {
    free(m.buf);
    return rc;
  }
  *buf = m.buf;
  *len = m.len;
  return ERR_OK;
}

struct text_out {
  char *s;
};

static int text_row(void *ud, const struct db_row *r)
{
  struct text_out *t = ud;
  size_t n = 0;
  const char *v = db_row_str(r, 0, &n);
  if (v && (t->s = malloc(n + 1))) {
    memcpy(t->s, v, n);
    t->s[n] = '\0';
  }
  return 1;
}

enum err_code trialq_search_prep(struct db_pool *db, int64_t id, char **json,
                                 struct err *e)
{
  struct db_conn *c;
  enum err_code rc = db_acquire(db, ACQUIRE_MS, &c, e);
  if (rc)
    return rc;
  struct text_out t = {0};
  struct db_val v[1] = {DB_V_INT(id)};
  rc = db_query(c, "SELECT prep_json FROM train_search WHERE id = ?", v, 1,
                text_row, &t, NULL, e);
  db_release(db, c);
  if (!rc && !t.s)
    rc = err_set(e, ERR_NOTFOUND, "search %lld has no preprocessing",
                 (long long)id);
  if (rc) {
    free(t.s);
    return rc;
  }
  *json = t.s;
  return ERR_OK;
}

enum err_code trialq_coord_state(struct db_pool *db, int64_t sid,
                                 const char *state, const char *metrics,
                                 struct err *e)
{
  struct db_val v[3] = {DB_V_STR(state),
                        metrics ? DB_V_STR(metrics) : DB_V_NULL,
                        DB_V_INT(sid)};
  return exec1(db,
               "UPDATE train_trial SET state = ?, metrics = ?, end_date = "
               "UTC_TIMESTAMP(6) WHERE search_id = ? AND trial = 0",
               v, 3, NULL, e);
}
