/* test_registry.c - the file-based model registry on a real temp directory:
 * layout, numbering, concurrent numbering from processes and threads, a
 * writer killed mid-draft, stale draft cleanup, path-escaping names,
 * corrupt meta.json, aliases and their change stamps. */
/* check: tsan */
#include "check.h"
#include "fixture.h"
#include "mlopsd/fsx.h"
#include "mlopsd/registry.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* a fresh registry in its own subdirectory of the test root */
static struct registry *fresh(const char *sub)
{
  char p[4096];
  snprintf(p, sizeof(p), "%s/%s", fx_tmp(), sub);
  fx_rmtree(p);
  struct registry *r = NULL;
  struct err e = {0};
  if (registry_open(p, &r, &e)) {
    fprintf(stderr, "registry_open: %s\n", e.msg);
    return NULL;
  }
  return r;
}

static int write_text(const char *path, const char *text)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return -1;
  size_t n = strlen(text);
  int ok = write(fd, text, n) == (ssize_t)n;
  close(fd);
  return ok ? 0 : -1;
}

static int file_exists(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

static int count_entries(const char *dir)
{
  DIR *d = opendir(dir);
  if (!d)
    return -1;
  int n = 0;
  struct dirent *de;
  while ((de = readdir(d)))
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
      n++;
  closedir(d);
  return n;
}

/* begin, write meta.json with text, commit; returns version or -1 */
static int add_version(struct registry *r, const char *name,
                       const char *meta)
{
  struct registry_draft *d;
  struct err e = {0};
  if (registry_version_begin(r, name, &d, &e)) {
    fprintf(stderr, "begin: %s\n", e.msg);
    return -1;
  }
  char p[4096];
  if (registry_draft_path(d, "meta.json", p, sizeof(p), &e) ||
      write_text(p, meta)) {
    registry_version_abort(d);
    return -1;
  }
  int v;
  if (registry_version_commit(d, &v, &e)) {
    fprintf(stderr, "commit: %s\n", e.msg);
    return -1;
  }
  return v;
}

/* registry_version_begin for MODEL: the draft, or NULL after a failed
 * check that names the model and the error. */
static struct registry_draft *begin(struct registry *r, const char *model)
{
  struct registry_draft *d = NULL;
  struct err e = {0};
  if (registry_version_begin(r, model, &d, &e) != ERR_OK) {
    check_fail_at(__FILE__, __LINE__, "version_begin %s: %s", model, e.msg);
    return NULL;
  }
  return d;
}

/* fresh(SUB) where model m has versions 1..N, version i holding the
 * meta.json text METAS[i - 1]; a failed check per version not added;
 * NULL (a failed check) when the registry does not open. */
static struct registry *fresh_with(const char *sub, const char *const *metas,
                                   int n)
{
  struct registry *r = fresh(sub);
  if (!r) {
    check_fail_at(__FILE__, __LINE__, "no registry %s", sub);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    if (add_version(r, "m", metas[i]) != i + 1)
      check_fail_at(__FILE__, __LINE__, "%s: m version %d not added", sub,
                    i + 1);
  return r;
}

/* fresh(SUB) and a draft of MODEL begun in it: the draft (*r set), or
 * NULL after a failed check (*r NULL when the registry did not open). */
static struct registry_draft *fresh_draft(const char *sub, const char *model,
                                          struct registry **r)
{
  *r = fresh(sub);
  if (!*r) {
    check_fail_at(__FILE__, __LINE__, "no registry %s", sub);
    return NULL;
  }
  return begin(*r, model);
}

TEST(layout)
{
  struct registry *r;
  struct registry_draft *d = fresh_draft("layout", "credit", &r);
  REQUIRE(d);
  struct err e = {0};
  const char *files[] = {"model.ubj", "preprocess.json", "meta.json",
                         "reference.json"};
  for (int i = 0; i < 4; i++) {
    char p[4096];
    CHECK_EQ_INT(registry_draft_path(d, files[i], p, sizeof(p), &e), ERR_OK);
    CHECK(strncmp(p, registry_draft_dir(d), strlen(registry_draft_dir(d))) ==
          0);
    CHECK_EQ_INT(write_text(p, "{}"), 0);
  }
  int v = 0;
  CHECK_EQ_INT(registry_version_commit(d, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 1);
  for (int i = 0; i < 4; i++) {
    char p[4096], want[4096];
    CHECK_EQ_INT(registry_path(r, "credit", 1, files[i], p, sizeof(p), &e),
                 ERR_OK);
    snprintf(want, sizeof(want), "%s/layout/credit/versions/1/%s", fx_tmp(),
             files[i]);
    CHECK_EQ_STR(p, want);
    CHECK(file_exists(p));
  }
  /* the draft area holds nothing once committed */
  char tdir[4096];
  snprintf(tdir, sizeof(tdir), "%s/layout/credit/tmp", fx_tmp());
  CHECK_EQ_INT(count_entries(tdir), 0);

  cJSON *params = cJSON_Parse("{\"max_depth\": 7}");
  cJSON *metrics = cJSON_Parse("{\"accuracy\": 0.75}");
  CHECK_EQ_INT(registry_run_write(r, "credit", "run-001", params, metrics,
                                  &e), ERR_OK);
  cJSON_Delete(params);
  cJSON_Delete(metrics);
  char p[4096];
  snprintf(p, sizeof(p), "%s/layout/credit/runs/run-001/params.json", fx_tmp());
  CHECK(file_exists(p));
  snprintf(p, sizeof(p), "%s/layout/credit/runs/run-001/metrics.json", fx_tmp());
  CHECK(file_exists(p));
  char **ids;
  size_t n;
  CHECK_EQ_INT(registry_list_runs(r, "credit", &ids, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 1);
  if (n == 1)
    CHECK_EQ_STR(ids[0], "run-001");
  registry_strv_free(ids);

  int prev = -1;
  CHECK_EQ_INT(registry_alias_set(r, "credit", REGISTRY_PRODUCTION, 1, &prev,
                                  &e), ERR_OK);
  CHECK_EQ_INT(prev, 0);
  snprintf(p, sizeof(p), "%s/layout/credit/aliases/production", fx_tmp());
  FILE *f = fopen(p, "r");
  char buf[32] = {0};
  CHECK(f && fgets(buf, sizeof(buf), f));
  if (f)
    fclose(f);
  CHECK_EQ_STR(buf, "1\n");

  char **models;
  CHECK_EQ_INT(registry_list_models(r, &models, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 1);
  if (n == 1)
    CHECK_EQ_STR(models[0], "credit");
  registry_strv_free(models);
  registry_close(r);
}

TEST(numbering)
{
  struct registry *r = fresh("numbering");
  REQUIRE(r);
  struct err e = {0};
  int v;
  CHECK_EQ_INT(registry_latest(r, "m", &v, &e), ERR_NOTFOUND);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 1);
  /* an aborted draft does not use up a number */
  struct registry_draft *d = begin(r, "m");
  REQUIRE(d);
  registry_version_abort(d);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 2);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 3);
  CHECK_EQ_INT(registry_latest(r, "m", &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 3);
  int *vs;
  size_t n;
  CHECK_EQ_INT(registry_list_versions(r, "m", &vs, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 3);
  for (size_t i = 0; i < n; i++)
    CHECK_EQ_INT(vs[i], (int)i + 1);
  free(vs);
  CHECK(registry_version_exists(r, "m", 3));
  CHECK(!registry_version_exists(r, "m", 4));
  /* junk in versions/ is not a version */
  char p[4096];
  snprintf(p, sizeof(p), "%s/numbering/m/versions/007", fx_tmp());
  CHECK_EQ_INT(mkdir(p, 0755), 0);
  snprintf(p, sizeof(p), "%s/numbering/m/versions/x1", fx_tmp());
  CHECK_EQ_INT(mkdir(p, 0755), 0);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 4);
  CHECK_EQ_INT(registry_list_versions(r, "m", &vs, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 4);
  free(vs);
  CHECK_EQ_INT(registry_list_versions(r, "nosuch", &vs, &n, &e),
               ERR_NOTFOUND);
  registry_close(r);
}

/* every version's meta.json names its writer, so overwrites would show */
static int check_exactly(struct registry *r, const char *name, int total,
                         int writers, int per)
{
  struct err e = {0};
  int *vs;
  size_t n;
  if (registry_list_versions(r, name, &vs, &n, &e))
    return 0;
  int ok = n == (size_t)total;
  for (size_t i = 0; ok && i < n; i++)
    ok = vs[i] == (int)i + 1;
  free(vs);
  char *seen = calloc((size_t)total, 1);
  for (int v = 1; ok && v <= total; v++) {
    cJSON *m = NULL;
    if (registry_read_meta(r, name, v, &m, &e)) {
      ok = 0;
      break;
    }
    int w = cJSON_GetObjectItem(m, "w")->valueint;
    int k = cJSON_GetObjectItem(m, "k")->valueint;
    cJSON_Delete(m);
    if (w < 0 || w >= writers || k < 0 || k >= per || seen[w * per + k]++)
      ok = 0;
  }
  free(seen);
  return ok;
}

#define WRITERS 4
#define PER_WRITER 10

TEST(concurrent_processes)
{
  struct registry *r = fresh("procs");
  REQUIRE(r);
  pid_t pids[WRITERS];
  for (int w = 0; w < WRITERS; w++) {
    pids[w] = fork();
    REQUIRE(pids[w] >= 0);
    if (pids[w] == 0) {
      int bad = 0;
      for (int k = 0; k < PER_WRITER; k++) {
        char meta[64];
        snprintf(meta, sizeof(meta), "{\"w\": %d, \"k\": %d}", w, k);
        if (add_version(r, "m", meta) < 1)
          bad = 1;
      }
      _exit(bad);
    }
  }
  for (int w = 0; w < WRITERS; w++) {
    int st;
    CHECK(waitpid(pids[w], &st, 0) == pids[w]);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  CHECK(check_exactly(r, "m", WRITERS * PER_WRITER, WRITERS, PER_WRITER));
  registry_close(r);
}

struct thr_arg {
  struct registry *r;
  int w;
  int bad;
  int got[PER_WRITER];
};

static void *writer_thread(void *p)
{
  struct thr_arg *a = p;
  for (int k = 0; k < PER_WRITER; k++) {
    char meta[64];
    snprintf(meta, sizeof(meta), "{\"w\": %d, \"k\": %d}", a->w, k);
    a->got[k] = add_version(a->r, "m", meta);
    if (a->got[k] < 1)
      a->bad = 1;
  }
  return NULL;
}

TEST(concurrent_threads)
{
  struct registry *r = fresh("threads");
  REQUIRE(r);
  pthread_t t[WRITERS];
  struct thr_arg a[WRITERS];
  for (int w = 0; w < WRITERS; w++) {
    a[w] = (struct thr_arg){.r = r, .w = w};
    REQUIRE(pthread_create(&t[w], NULL, writer_thread, &a[w]) == 0);
  }
  for (int w = 0; w < WRITERS; w++) {
    pthread_join(t[w], NULL);
    CHECK_EQ_INT(a[w].bad, 0);
    /* each writer saw its own numbers strictly increase */
    for (int k = 1; k < PER_WRITER; k++)
      CHECK(a[w].got[k] > a[w].got[k - 1]);
  }
  CHECK(check_exactly(r, "m", WRITERS * PER_WRITER, WRITERS, PER_WRITER));
  registry_close(r);
}

TEST(kill_during_write)
{
  static const char *const metas[] = {"{\"w\": 0, \"k\": 0}",
                                      "{\"w\": 0, \"k\": 1}"};
  struct registry *r = fresh_with("kill", metas, 2);
  REQUIRE(r);
  int pfd[2];
  REQUIRE(pipe(pfd) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    /* the writer: a big model file written slowly, never finished */
    close(pfd[0]);
    struct registry_draft *d;
    struct err e = {0};
    if (registry_version_begin(r, "m", &d, &e))
      _exit(2);
    char p[4096];
    if (registry_draft_path(d, "model.ubj", p, sizeof(p), &e))
      _exit(3);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static char chunk[1 << 16];
    memset(chunk, 'x', sizeof(chunk));
    for (int i = 0; fd >= 0; i++) {
      if (write(fd, chunk, sizeof(chunk)) < 0)
        _exit(4);
      if (i == 0 && write(pfd[1], "!", 1) != 1) /* "I am mid-write" */
        _exit(5);
      usleep(2000);
      if (i > 20000) /* the parent never let us get here */
        _exit(6);
    }
    _exit(7);
  }
  close(pfd[1]);
  char c;
  CHECK(read(pfd[0], &c, 1) == 1);
  close(pfd[0]);
  CHECK_EQ_INT(kill(pid, SIGKILL), 0);
  int st;
  CHECK(waitpid(pid, &st, 0) == pid);
  CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);

  /* no partial version, the dead draft is still there ... */
  struct err e = {0};
  int *vs;
  size_t n;
  CHECK_EQ_INT(registry_list_versions(r, "m", &vs, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 2);
  free(vs);
  int latest;
  CHECK_EQ_INT(registry_latest(r, "m", &latest, &e), ERR_OK);
  CHECK_EQ_INT(latest, 2);
  char tdir[4096];
  snprintf(tdir, sizeof(tdir), "%s/kill/m/tmp", fx_tmp());
  CHECK_EQ_INT(count_entries(tdir), 2); /* draft-XXXXXX + its .lock */

  /* ... until the next writer cleans it; the next number is 3 */
  struct registry_draft *d = begin(r, "m");
  REQUIRE(d);
  CHECK_EQ_INT(count_entries(tdir), 2); /* only the new draft now */
  char p[4096];
  CHECK_EQ_INT(registry_draft_path(d, "meta.json", p, sizeof(p), &e), 0);
  CHECK_EQ_INT(write_text(p, "{\"w\": 0, \"k\": 2}"), 0);
  int v;
  CHECK_EQ_INT(registry_version_commit(d, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 3);
  CHECK_EQ_INT(count_entries(tdir), 0);
  CHECK(check_exactly(r, "m", 3, 1, 3));
  registry_close(r);
}

TEST(stale_drafts_cleaned_live_kept)
{
  static const char *const metas[] = {"{}"};
  struct registry *r = fresh_with("stale", metas, 1);
  REQUIRE(r);
  struct err e = {0};
  char tdir[4096], p[4200];
  snprintf(tdir, sizeof(tdir), "%s/stale/m/tmp", fx_tmp());
  /* an orphan draft dir (no lock file) and a lock file nobody holds */
  snprintf(p, sizeof(p), "%s/draft-orphan", tdir);
  CHECK_EQ_INT(mkdir(p, 0755), 0);
  snprintf(p, sizeof(p), "%s/draft-orphan/model.ubj", tdir);
  CHECK_EQ_INT(write_text(p, "partial"), 0);
  snprintf(p, sizeof(p), "%s/draft-gone.lock", tdir);
  CHECK_EQ_INT(write_text(p, ""), 0);
  /* a live draft of this process must survive another writer's cleanup */
  struct registry_draft *live, *other;
  live = begin(r, "m");
  REQUIRE(live);
  CHECK_EQ_INT(count_entries(tdir), 2); /* stale ones gone, live kept */
  other = begin(r, "m");
  REQUIRE(other);
  CHECK_EQ_INT(count_entries(tdir), 4);
  CHECK(file_exists(registry_draft_dir(live)));
  int v;
  CHECK_EQ_INT(registry_version_commit(other, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 2);
  CHECK_EQ_INT(registry_version_commit(live, &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 3);
  CHECK_EQ_INT(count_entries(tdir), 0);
  registry_close(r);
}

TEST(draft_with_subdir_refused)
{
  struct registry *r;
  struct registry_draft *d = fresh_draft("subdir", "m", &r);
  REQUIRE(d);
  struct err e = {0};
  char p[4200];
  snprintf(p, sizeof(p), "%s/nested", registry_draft_dir(d));
  CHECK_EQ_INT(mkdir(p, 0755), 0);
  int v = -1;
  CHECK_EQ_INT(registry_version_commit(d, &v, &e), ERR_INVAL);
  CHECK(strstr(e.msg, "nested") != NULL);
  CHECK_EQ_INT(v, 0);
  CHECK(!registry_version_exists(r, "m", 1));
  CHECK_EQ_INT(add_version(r, "m", "{}"), 1);
  registry_close(r);
}

TEST(escaping_names_rejected)
{
  struct registry *r = fresh("names");
  REQUIRE(r);
  struct err e = {0};
  char longname[200];
  memset(longname, 'a', 129);
  longname[129] = '\0';
  const char *bad[] = {"../x", "a/b", "", ".", "..", "a..b", ".hidden",
                       "-x", "x/", "/abs", "a b", "a\\b", longname};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct registry_draft *d = NULL;
    CHECK(!fsx_name_valid(bad[i]));
    CHECK_EQ_INT(registry_version_begin(r, bad[i], &d, &e), ERR_INVAL);
    CHECK(d == NULL);
    int *vs;
    size_t n;
    CHECK_EQ_INT(registry_list_versions(r, bad[i], &vs, &n, &e), ERR_INVAL);
    int v;
    CHECK_EQ_INT(registry_alias_get(r, "m", bad[i], &v, &e), ERR_INVAL);
    CHECK_EQ_INT(registry_alias_get(r, bad[i], "production", &v, &e),
                 ERR_INVAL);
    CHECK_EQ_INT(registry_run_write(r, "m", bad[i], NULL, NULL, &e),
                 ERR_INVAL);
    char p[4096];
    CHECK_EQ_INT(registry_path(r, "m", 1, bad[i], p, sizeof(p), &e),
                 ERR_INVAL);
    CHECK_EQ_INT(registry_path(r, bad[i], 1, NULL, p, sizeof(p), &e),
                 ERR_INVAL);
  }
  memset(longname, 'a', 128);
  longname[128] = '\0';
  CHECK(fsx_name_valid(longname));
  CHECK(fsx_name_valid("credit_score_classification"));
  CHECK(fsx_name_valid("v1.2-rc_3"));
  char p[4096];
  CHECK_EQ_INT(registry_path(r, "m", 0, NULL, p, sizeof(p), &e), ERR_INVAL);
  CHECK_EQ_INT(registry_path(r, "m", -3, "meta.json", p, sizeof(p), &e),
               ERR_INVAL);
  /* nothing was created for any of them */
  char **models;
  size_t n;
  CHECK_EQ_INT(registry_list_models(r, &models, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 0);
  registry_strv_free(models);
  char parent[4096];
  snprintf(parent, sizeof(parent), "%s/x", fx_tmp());
  CHECK(!file_exists(parent));
  registry_close(r);
}

TEST(corrupt_meta_other_versions_ok)
{
  /* version 2's meta.json is cut short */
  static const char *const metas[] = {"{\"w\": 0, \"k\": 0}",
                                      "{\"w\": 0, \"k\": 1, \"metr",
                                      "{\"w\": 0, \"k\": 2}"};
  struct registry *r = fresh_with("corrupt", metas, 3);
  REQUIRE(r);
  struct err e = {0};
  cJSON *m = NULL;
  CHECK_EQ_INT(registry_read_meta(r, "m", 2, &m, &e), ERR_PARSE);
  CHECK(m == NULL);
  char want[4096];
  snprintf(want, sizeof(want), "%s/corrupt/m/versions/2/meta.json", fx_tmp());
  CHECK(strstr(e.msg, want) != NULL);
  CHECK(strstr(e.msg, "invalid JSON") != NULL);
  CHECK_EQ_INT(registry_read_meta(r, "m", 1, &m, &e), ERR_OK);
  cJSON_Delete(m);
  CHECK_EQ_INT(registry_read_meta(r, "m", 3, &m, &e), ERR_OK);
  cJSON_Delete(m);
  CHECK_EQ_INT(registry_read_meta(r, "m", 4, &m, &e), ERR_NOTFOUND);
  int *vs;
  size_t n;
  CHECK_EQ_INT(registry_list_versions(r, "m", &vs, &n, &e), ERR_OK);
  CHECK_EQ_INT(n, 3);
  free(vs);
  /* a missing meta.json is "not found", not a parse error */
  char p[4096];
  CHECK_EQ_INT(registry_path(r, "m", 3, "meta.json", p, sizeof(p), &e), 0);
  CHECK_EQ_INT(unlink(p), 0);
  CHECK_EQ_INT(registry_read_meta(r, "m", 3, &m, &e), ERR_NOTFOUND);
  registry_close(r);
}

TEST(alias_round_trip_and_stamp)
{
  struct registry *r = fresh("alias");
  REQUIRE(r);
  struct err e = {0};
  int v = -1, prev = -1;
  struct registry_stamp s0, s1, s2, s3;
  CHECK_EQ_INT(registry_alias_stamp(r, "m", "production", &s0, &e), ERR_OK);
  CHECK_EQ_INT(s0.exists, 0);
  CHECK_EQ_INT(registry_alias_get(r, "m", "production", &v, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 1);
  CHECK_EQ_INT(add_version(r, "m", "{}"), 2);
  CHECK_EQ_INT(registry_alias_set(r, "m", "production", 3, &prev, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_set(r, "m", "production", 0, &prev, &e),
               ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_set(r, "m", "production", 1, &prev, &e),
               ERR_OK);
  CHECK_EQ_INT(prev, 0);
  CHECK_EQ_INT(registry_alias_get(r, "m", "production", &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 1);
  CHECK_EQ_INT(registry_alias_stamp(r, "m", "production", &s1, &e), ERR_OK);
  CHECK_EQ_INT(s1.exists, 1);
  CHECK(!registry_stamp_equal(&s0, &s1));
  CHECK_EQ_INT(registry_alias_stamp(r, "m", "production", &s2, &e), ERR_OK);
  CHECK(registry_stamp_equal(&s1, &s2));
  CHECK_EQ_INT(registry_alias_set(r, "m", "production", 2, &prev, &e),
               ERR_OK);
  CHECK_EQ_INT(prev, 1);
  CHECK_EQ_INT(registry_alias_stamp(r, "m", "production", &s3, &e), ERR_OK);
  CHECK(!registry_stamp_equal(&s2, &s3)); /* new inode on every set */
  CHECK_EQ_INT(registry_alias_get(r, "m", "production", &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 2);
  CHECK_EQ_INT(registry_alias_set(r, "m", "staging", 1, NULL, &e), ERR_OK);
  CHECK_EQ_INT(registry_alias_get(r, "m", "staging", &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 1);
  CHECK_EQ_INT(registry_alias_delete(r, "m", "staging", &e), ERR_OK);
  CHECK_EQ_INT(registry_alias_delete(r, "m", "staging", &e), ERR_NOTFOUND);
  CHECK_EQ_INT(registry_alias_get(r, "m", "staging", &v, &e), ERR_NOTFOUND);
  /* no temp files left in aliases/ */
  char adir[4096];
  snprintf(adir, sizeof(adir), "%s/alias/m/aliases", fx_tmp());
  CHECK_EQ_INT(count_entries(adir), 1);
  /* a hand-edited alias is read leniently, garbage is a clear error */
  char p[4200];
  snprintf(p, sizeof(p), "%s/production", adir);
  CHECK_EQ_INT(write_text(p, "  2 \n"), 0);
  CHECK_EQ_INT(registry_alias_get(r, "m", "production", &v, &e), ERR_OK);
  CHECK_EQ_INT(v, 2);
  CHECK_EQ_INT(write_text(p, "two\n"), 0);
  CHECK_EQ_INT(registry_alias_get(r, "m", "production", &v, &e), ERR_PARSE);
  CHECK(strstr(e.msg, p) != NULL);
  registry_close(r);
}

int main(void)
{
  RUN(layout);
  RUN(numbering);
  RUN(concurrent_processes);
  RUN(concurrent_threads);
  RUN(kill_during_write);
  RUN(stale_drafts_cleaned_live_kept);
  RUN(draft_with_subdir_refused);
  RUN(escaping_names_rejected);
  RUN(corrupt_meta_other_versions_ok);
  RUN(alias_round_trip_and_stamp);
  return check_done();
}
