/* test_registry_s3.c - the model registry on object storage against a real
 * OpenStack Swift (tests/s3.sh) and MariaDB: versions, the sha256-keyed
 * cache (a second "replica" with an empty cache, a corrupted cache, a
 * corrupted store), aliases and their stamps seen by another replica,
 * runs, numbering from two processes x two threads without gaps or
 * duplicates, and kills: during an upload, inside the commit transaction
 * (the version row written, not committed), and during alias changes - afterwards every version is complete or
 * absent, aliases are old or new, numbers have no gaps. */
/* check: tsan */
#include "check.h"
#include "fixture.h"
#include "mlopsd/db.h"
#include "mlopsd/registry.h"
#include "mlopsd/s3.h"
#include "mlopsd/schema.h"
#include "mlopsd/sha256.h"
#include "registry_int.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DBNAME "mlops_test_reg_s3"

static struct db_pool *P;
static struct db_opts g_db;
static char g_url[256];
static int g_have_s3;

static struct registry *open_reg(const char *cache_sub)
{
  char cache[4096];
  snprintf(cache, sizeof(cache), "%s/%s", fx_tmp(), cache_sub);
  struct registry_obj_opts o = {.url = g_url,
                                .endpoint =
                                    getenv("MLOPSD_TEST_S3_ENDPOINT"),
                                .region = getenv("MLOPSD_TEST_S3_REGION"),
                                .cache_dir = cache,
                                .db = &g_db};
  struct registry *r = NULL;
  struct err e = {0};
  if (registry_open_obj(&o, &r, &e)) {
    fprintf(stderr, "registry_open_obj: %s\n", e.msg);
    return NULL;
  }
  return r;
}

/* a version of name with files model.ubj (size bytes) and meta.json
 * naming tag; its number, or -1 */
static int add_version(struct registry *r, const char *name, const char *tag,
                       size_t size)
{
  struct registry_draft *d;
  struct err e = {0};
  char p[4096];
  if (registry_version_begin(r, name, &d, &e)) {
    fprintf(stderr, "begin: %s\n", e.msg);
    return -1;
  }
  if (registry_draft_path(d, "model.ubj", p, sizeof(p), &e))
    goto fail;
  FILE *f = fopen(p, "wb");
  if (!f)
    goto fail;
  for (size_t i = 0; i < size; i++)
    fputc((int)((i * 31 + strlen(tag)) & 0xff), f);
  fclose(f);
  char meta[256];
  snprintf(meta, sizeof(meta), "{\"tag\": \"%s\", \"size\": %zu}\n", tag,
           size);
  if (registry_draft_path(d, "meta.json", p, sizeof(p), &e) ||
      fx_write_text(p, meta))
    goto fail;
  int v = 0;
  if (registry_version_commit(d, &v, &e)) {
    fprintf(stderr, "commit: %s\n", e.msg);
    return -1;
  }
  return v;
fail:
  fprintf(stderr, "draft: %s\n", e.msg);
  registry_version_abort(d);
  return -1;
}

/* every version of name is listed 1..n, complete (fetches, meta.json
 * parses, model.ubj has the size meta.json says); returns n or -1 */
static int check_versions(struct registry *r, const char *name)
{
  int *v = NULL;
  size_t n = 0;
  struct err e = {0};
  if (registry_list_versions(r, name, &v, &n, &e)) {
    if (e.code == ERR_NOTFOUND)
      return 0;
    fprintf(stderr, "list: %s\n", e.msg);
    return -1;
  }
  int bad = 0;
  for (size_t i = 0; i < n && !bad; i++) {
    if (v[i] != (int)i + 1) {
      fprintf(stderr, "  version %zu is %d: a gap or duplicate\n", i + 1,
              v[i]);
      bad = 1;
      break;
    }
    cJSON *m = NULL;
    char p[4096];
    struct stat st;
    if (registry_read_meta(r, name, v[i], &m, &e) ||
        registry_path(r, name, v[i], "model.ubj", p, sizeof(p), &e) ||
        stat(p, &st) ||
        (double)st.st_size !=
            cJSON_GetNumberValue(cJSON_GetObjectItem(m, "size"))) {
      fprintf(stderr, "  version %d incomplete: %s\n", v[i], e.msg);
      bad = 1;
    }
    cJSON_Delete(m);
  }
  free(v);
  return bad ? -1 : (int)n;
}

static int fx_row_strdup(void *ud, const struct db_row *row)
{
  *(char **)ud = strdup(db_row_str(row, 0, NULL));
  return 1;
}

#define NEED()                                                               \
  do {                                                                        \
    if (!g_have_s3)                                                           \
      SKIP("no S3 store (MLOPSD_TEST_S3_ENDPOINT unset: tests/run.sh "        \
           "starts tests/s3.sh)");                                            \
    if (!P)                                                                   \
      SKIP("no MariaDB (MLOPSD_DATABASE_HOST unset)");                        \
  } while (0)

TEST(versions_and_cache)
{
  NEED();
  struct registry *r = open_reg("a");
  REQUIRE(r);
  struct err e = {0};
  CHECK_EQ_STR(registry_kind(r), "s3");
  CHECK_EQ_INT(add_version(r, "m", "one", 5000), 1);
  CHECK_EQ_INT(add_version(r, "m", "two", 7000), 2);
  int latest = 0;
  CHECK_EQ_INT(registry_latest(r, "m", &latest, &e), ERR_OK);
  CHECK_EQ_INT(latest, 2);
  CHECK(registry_version_exists(r, "m", 2));
  CHECK(!registry_version_exists(r, "m", 3));
  char **names = NULL;
  size_t nn = 0;
  CHECK_EQ_INT(registry_list_models(r, &names, &nn, &e), ERR_OK);
  CHECK(nn == 1 && names && !strcmp(names[0], "m"));
  registry_strv_free(names);
  int *vs;
  size_t nv;
  CHECK_EQ_INT(registry_list_versions(r, "nope", &vs, &nv, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(check_versions(r, "m"), 2);

  /* a replica with an empty cache reads the same bytes */
  struct registry *r2 = open_reg("b");
  REQUIRE(r2);
  cJSON *m = NULL;
  CHECK_EQ_INT(registry_read_meta(r2, "m", 1, &m, &e), ERR_OK);
  CHECK_EQ_STR(cJSON_GetStringValue(cJSON_GetObjectItem(m, "tag")), "one");
  cJSON_Delete(m);
  CHECK_EQ_INT(check_versions(r2, "m"), 2);
  char p1[4096], p2[4096];
  CHECK_EQ_INT(registry_path(r, "m", 2, "model.ubj", p1, sizeof(p1), &e), 0);
  CHECK_EQ_INT(registry_path(r2, "m", 2, "model.ubj", p2, sizeof(p2), &e), 0);
  size_t n1 = 0, n2 = 0;
  char *b1 = fx_read_file(p1, &n1), *b2 = fx_read_file(p2, &n2);
  CHECK(b1 && b2 && n1 == 7000 && n2 == 7000 && !memcmp(b1, b2, n1));
  free(b1);
  free(b2);
  /* the cache keeps each file once by sha256, hard-linked */
  char sha[SHA256_HEX_LEN], obj[4200];
  struct stat sa, sb;
  REQUIRE(sha256_file(p2, sha, &e) == ERR_OK);
  snprintf(obj, sizeof(obj), "%s/b/.objects/%s", fx_tmp(), sha);
  CHECK(stat(obj, &sa) == 0 && stat(p2, &sb) == 0 && sa.st_ino == sb.st_ino);
  registry_close(r2);

  /* a corrupted cache is noticed by the next process (a new registry)
   * and downloaded again; the running one keeps what it verified */
  REQUIRE(fx_write_text(obj, "garbage") == 0);
  r2 = open_reg("b");
  REQUIRE(r2);
  CHECK_EQ_INT(registry_path(r2, "m", 2, "model.ubj", p2, sizeof(p2), &e), 0);
  b2 = fx_read_file(p2, &n2);
  CHECK(b2 && n2 == 7000);
  free(b2);
  registry_close(r2);

  /* a store that lost or changed bytes is an error naming the object,
   * never served */
  struct s3_opts so = {.endpoint = getenv("MLOPSD_TEST_S3_ENDPOINT"),
                       .bucket = getenv("MLOPSD_TEST_S3_BUCKET"),
                       .region = getenv("MLOPSD_TEST_S3_REGION")};
  struct s3 *s3 = NULL;
  REQUIRE(s3_create(&so, &s3, &e) == ERR_OK);
  int64_t nk = 0;
  char draft[128] = "";
  struct db_conn *c = NULL;
  REQUIRE(db_acquire(P, 5000, &c, &e) == ERR_OK);
  struct db_val pv[] = {DB_V_STR("m")};
  struct dr {
    char *d;
  } got = {0};
  CHECK_EQ_INT(db_query(c,
                        "SELECT draft FROM registry_version WHERE model = ? "
                        "AND version = 1",
                        pv, 1, fx_row_strdup, &got.d, &nk, &e),
               ERR_OK);
  db_release(P, c);
  REQUIRE(got.d);
  snprintf(draft, sizeof(draft), "%s", got.d);
  free(got.d);
  char key[512];
  snprintf(key, sizeof(key), "%s/m/drafts/%s/model.ubj",
           strchr(g_url + 5, '/') + 1, draft);
  CHECK_EQ_INT(s3_put_buf(s3, key, "tampered", 8, &e), ERR_OK);
  struct registry *r3 = open_reg("c");
  REQUIRE(r3);
  CHECK_EQ_INT(registry_path(r3, "m", 1, "model.ubj", p2, sizeof(p2), &e),
               ERR_PARSE);
  CHECK(strstr(e.msg, "sha256") && strstr(e.msg, key));
  CHECK_EQ_INT(registry_path(r3, "m", 9, "model.ubj", p2, sizeof(p2), &e),
               ERR_NOTFOUND);
  registry_close(r3);
  s3_destroy(s3);
  registry_close(r);
}

TEST(aliases_and_runs)
{
  NEED();
  struct registry *r = open_reg("a"), *r2 = open_reg("d");
  REQUIRE(r && r2);
  struct err e = {0};
  REQUIRE(add_version(r, "al", "x", 10) == 1);
  REQUIRE(add_version(r, "al", "y", 10) == 2);
  int prev = -1, v = 0;
  struct registry_stamp s0, s1, s2, s3;
  CHECK_EQ_INT(registry_alias_stamp(r2, "al", "production", &s0, &e), 0);
  CHECK_EQ_INT(s0.exists, 0);
  CHECK_EQ_INT(registry_alias_get(r2, "al", "production", &v, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_set(r, "al", "production", 1, &prev, &e), 0);
  CHECK_EQ_INT(prev, 0);
  CHECK_EQ_INT(registry_alias_stamp(r2, "al", "production", &s1, &e), 0);
  CHECK(s1.exists && !registry_stamp_equal(&s0, &s1));
  CHECK_EQ_INT(registry_alias_set(r, "al", "production", 2, &prev, &e), 0);
  CHECK_EQ_INT(prev, 1);
  /* the other replica sees the change through MariaDB */
  CHECK_EQ_INT(registry_alias_get(r2, "al", "production", &v, &e), 0);
  CHECK_EQ_INT(v, 2);
  CHECK_EQ_INT(registry_alias_stamp(r2, "al", "production", &s2, &e), 0);
  CHECK(!registry_stamp_equal(&s1, &s2));
  /* back to 1: same version as s1, still a different stamp */
  CHECK_EQ_INT(registry_alias_set(r, "al", "production", 1, &prev, &e), 0);
  CHECK_EQ_INT(registry_alias_stamp(r2, "al", "production", &s3, &e), 0);
  CHECK(!registry_stamp_equal(&s1, &s3) && !registry_stamp_equal(&s2, &s3));
  CHECK_EQ_INT(registry_alias_set(r, "al", "production", 7, &prev, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_get(r2, "al", "production", &v, &e), 0);
  CHECK_EQ_INT(v, 1);
  CHECK_EQ_INT(registry_alias_delete(r, "al", "production", &e), 0);
  CHECK_EQ_INT(registry_alias_delete(r, "al", "production", &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_set(r, "../x", "production", 1, &prev, &e),
               ERR_INVAL);

  cJSON *pa = cJSON_Parse("{\"max_depth\": 4}");
  cJSON *me = cJSON_Parse("{\"auc\": 0.75}");
  CHECK_EQ_INT(registry_run_write(r, "al", "run-t1", pa, me, &e), 0);
  CHECK_EQ_INT(registry_run_write(r, "al", "run-t0", pa, NULL, &e), 0);
  char **ids = NULL;
  size_t n = 0;
  CHECK_EQ_INT(registry_list_runs(r2, "al", &ids, &n, &e), 0);
  CHECK(n == 2 && !strcmp(ids[0], "run-t0") && !strcmp(ids[1], "run-t1"));
  registry_strv_free(ids);
  cJSON *j = NULL;
  CHECK_EQ_INT(registry_run_read(r2, "al", "run-t1", "metrics.json", &j, &e),
               0);
  CHECK_NEAR(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "auc")), 0.75,
             1e-12);
  cJSON_Delete(j);
  CHECK_EQ_INT(registry_run_read(r2, "al", "run-t0", "metrics.json", &j, &e),
               ERR_NOTFOUND);
  cJSON_Delete(pa);
  cJSON_Delete(me);
  registry_close(r);
  registry_close(r2);
}

/* ---- concurrency ------------------------------------------------------ */

static void *commit_thread(void *arg)
{
  struct registry *r = arg;
  for (int i = 0; i < 4; i++)
    if (add_version(r, "conc", "c", 100) < 0)
      return (void *)1;
  return NULL;
}

TEST(two_processes_number_without_gaps)
{
  NEED();
  fflush(NULL);
  pid_t kids[2];
  for (int k = 0; k < 2; k++) {
    kids[k] = fork();
    REQUIRE(kids[k] >= 0);
    if (kids[k] == 0) {
      char sub[16];
      snprintf(sub, sizeof(sub), "p%d", k);
      struct registry *r = open_reg(sub);
      if (!r)
        _exit(1);
      pthread_t t[2];
      void *res[2] = {0};
      for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, commit_thread, r);
      for (int i = 0; i < 2; i++)
        pthread_join(t[i], &res[i]);
      registry_close(r);
      _exit(res[0] || res[1] ? 1 : 0);
    }
  }
  for (int k = 0; k < 2; k++) {
    int st = 0;
    waitpid(kids[k], &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  struct registry *r = open_reg("a");
  REQUIRE(r);
  CHECK_EQ_INT(check_versions(r, "conc"), 16);
  registry_close(r);
}

/* ---- kills ------------------------------------------------------------ */

static int count_draft_objects(const char *key, int64_t size, void *ud)
{
  (void)key;
  (void)size;
  (*(int *)ud)++;
  return 0;
}

static int drafts_now(struct s3 *s3, const char *model)
{
  char pfx[512];
  snprintf(pfx, sizeof(pfx), "%s/%s/drafts/", strchr(g_url + 5, '/') + 1,
           model);
  int n = 0;
  struct err e;
  if (s3_list(s3, pfx, count_draft_objects, &n, &e))
    return -1;
  return n;
}

/* a child that commits versions of model (files of size bytes) forever */
static pid_t committer(const char *model, size_t size)
{
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    struct registry *r = open_reg("kill");
    if (!r)
      _exit(1);
    for (;;)
      if (add_version(r, model, "k", size) < 0)
        _exit(1);
  }
  return pid;
}

TEST(kill_during_upload)
{
  NEED();
  struct err e = {0};
  struct s3_opts so = {.endpoint = getenv("MLOPSD_TEST_S3_ENDPOINT"),
                       .bucket = getenv("MLOPSD_TEST_S3_BUCKET"),
                       .region = getenv("MLOPSD_TEST_S3_REGION")};
  struct s3 *s3 = NULL;
  REQUIRE(s3_create(&so, &s3, &e) == ERR_OK);
  struct registry *r = open_reg("a");
  REQUIRE(r);
  /* 4 MB model files: the upload takes long enough to be cut; each round
   * kills the writer as soon as a new draft object shows up (the first
   * file uploaded, the second not yet, or mid-way), at various delays */
  int killed = 0;
  for (int round = 0; round < 4; round++) {
    int before = drafts_now(s3, "ku");
    pid_t pid = committer("ku", 4u << 20);
    REQUIRE(pid > 0);
    double t0 = fx_now_s();
    while (drafts_now(s3, "ku") <= before && fx_now_s() - t0 < 30)
      fx_msleep(5);
    fx_msleep(round * 40);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    killed += WIFSIGNALED(st);
    int n = check_versions(r, "ku");
    CHECK(n >= 0);
  }
  CHECK_EQ_INT(killed, 4);
  /* and the next writer numbers right after the last complete version */
  int n = check_versions(r, "ku");
  REQUIRE(n >= 0);
  CHECK_EQ_INT(add_version(r, "ku", "after", 10), n + 1);
  CHECK_EQ_INT(check_versions(r, "ku"), n + 1);
  s3_destroy(s3);
  registry_close(r);
}

static int row_i64(void *ud, const struct db_row *row)
{
  *(int64_t *)ud = db_row_i64(row, 0);
  return 1;
}

static int64_t count_of(const char *sql)
{
  struct db_conn *c = NULL;
  struct err e = {0};
  int64_t v = -1;
  if (db_acquire(P, 5000, &c, &e))
    return -1;
  if (db_query(c, sql, NULL, 0, row_i64, &v, NULL, &e))
    fprintf(stderr, "  %s: %s\n", sql, e.msg);
  db_release(P, c);
  return v;
}

/* The writer stops itself (SIGSTOP, the registry's test hook
 * REGISTRY_TEST_STOP_ENV) inside its commit transaction with the version
 * row and the counter written but not committed; killed there, it must
 * leave nothing visible and give its number back. */
TEST(kill_at_the_commit_row)
{
  NEED();
  struct err e = {0};
  struct s3 *s3 = NULL;
  struct s3_opts so = {.endpoint = getenv("MLOPSD_TEST_S3_ENDPOINT"),
                       .bucket = getenv("MLOPSD_TEST_S3_BUCKET"),
                       .region = getenv("MLOPSD_TEST_S3_REGION")};
  REQUIRE(s3_create(&so, &s3, &e) == ERR_OK);
  struct registry *r = open_reg("a");
  REQUIRE(r);
  REQUIRE(add_version(r, "kc", "first", 10) == 1);
  for (int round = 0; round < 3; round++) {
    int drafts = drafts_now(s3, "kc");
    setenv(REGISTRY_TEST_STOP_ENV, "1", 1);
    pid_t pid = committer("kc", 1000);
    unsetenv(REGISTRY_TEST_STOP_ENV);
    REQUIRE(pid > 0);
    int st = 0;
    pid_t got = 0;
    for (double t0 = fx_now_s(); !got && fx_now_s() - t0 < 120;) {
      got = waitpid(pid, &st, WNOHANG | WUNTRACED);
      if (!got)
        fx_msleep(10);
    }
    if (got != pid || !WIFSTOPPED(st)) {
      fprintf(stderr, "  round %d: the writer did not stop at the commit "
              "row (waitpid %d, status 0x%x)\n", round, (int)got, st);
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      CHECK(0);
      break;
    }
    /* stopped: its rows are written (an open transaction modified the
     * version row and the counter), its files uploaded, and nothing of
     * it is visible to a reader */
    CHECK(count_of("SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                   "WHERE trx_rows_modified >= 2") >= 1);
    CHECK(drafts_now(s3, "kc") >= drafts + 2);
    CHECK_EQ_INT(count_of("SELECT COUNT(*) FROM registry_version "
                          "WHERE model = 'kc'"),
                 1);
    CHECK_EQ_INT(check_versions(r, "kc"), 1);
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK_EQ_INT(check_versions(r, "kc"), 1);
    CHECK_EQ_INT(count_of("SELECT last_version FROM registry_model "
                          "WHERE model = 'kc'"),
                 1);
  }
  /* the numbers the killed writers held are given back: no gap */
  CHECK_EQ_INT(add_version(r, "kc", "next", 10), 2);
  CHECK_EQ_INT(check_versions(r, "kc"), 2);
  s3_destroy(s3);
  registry_close(r);
}

TEST(kill_during_alias_changes)
{
  NEED();
  struct err e = {0};
  struct registry *r = open_reg("a");
  REQUIRE(r);
  REQUIRE(add_version(r, "ka", "1", 10) == 1);
  REQUIRE(add_version(r, "ka", "2", 10) == 2);
  /* set before the first writer: one killed before its first change (a
   * slow start on a busy machine) must leave the old value, not none */
  REQUIRE(registry_alias_set(r, "ka", "production", 2, NULL, &e) == ERR_OK);
  for (int round = 0; round < 3; round++) {
    fflush(NULL);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      struct registry *rc = open_reg("kill");
      if (!rc)
        _exit(1);
      for (int i = 0;; i++)
        if (registry_alias_set(rc, "ka", "production", 1 + i % 2, NULL,
                               NULL))
          _exit(1);
    }
    /* kill while it changes the alias: once its first change is seen
     * (the row's serial moved), after a varying delay */
    struct registry_stamp s0, s1;
    REQUIRE(registry_alias_stamp(r, "ka", "production", &s0, &e) == ERR_OK);
    int moved = 0;
    for (double t0 = fx_now_s(); !moved && fx_now_s() - t0 < 60;) {
      fx_msleep(10);
      moved = registry_alias_stamp(r, "ka", "production", &s1, &e) ==
                  ERR_OK &&
              !registry_stamp_equal(&s0, &s1);
    }
    CHECK(moved);
    fx_msleep(20 + 70 * round);
    kill(pid, SIGKILL);
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFSIGNALED(st));
    int v = 0;
    CHECK_EQ_INT(registry_alias_get(r, "ka", "production", &v, &e), 0);
    CHECK(v == 1 || v == 2);
  }
  registry_close(r);
}

int main(void)
{
  const char *ep = getenv("MLOPSD_TEST_S3_ENDPOINT");
  const char *bucket = getenv("MLOPSD_TEST_S3_BUCKET");
  g_have_s3 = ep && bucket && getenv("AWS_ACCESS_KEY_ID");
  if (g_have_s3 && getenv("MLOPSD_DATABASE_HOST")) {
    struct err e = {0};
    struct db_conn *c = NULL;
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/sql/migrations", fx_src());
    if (fx_db_recreate(DBNAME) || !(P = fx_pool(DBNAME, 4)) ||
        db_acquire(P, 10000, &c, &e) ||
        schema_migrate(c, dir, NULL, NULL, NULL, &e)) {
      fprintf(stderr, "setup: %s\n", e.msg);
      if (c)
        db_release(P, c);
      db_pool_destroy(P);
      P = NULL;
    } else {
      db_release(P, c);
    }
    g_db = fx_db_opts(DBNAME, 4);
    g_db.read_timeout_s = 60;
    snprintf(g_url, sizeof(g_url), "s3://%s/reg-%d-%ld", bucket,
             (int)getpid(), (long)fx_now_s());
  }
  RUN(versions_and_cache);
  RUN(aliases_and_runs);
  RUN(two_processes_number_without_gaps);
  RUN(kill_during_upload);
  RUN(kill_at_the_commit_row);
  RUN(kill_during_alias_changes);
  db_pool_destroy(P);
  fx_tmp_remove();
  return check_done();
}
