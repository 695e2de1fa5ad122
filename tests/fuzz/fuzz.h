/* fuzz.h - helpers shared by the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Each target defines LLVMFuzzerTestOneInput (and most also
 * LLVMFuzzerInitialize); these helpers give it a private scratch directory
 * under /dev/shm (removed at exit), whole-file writes, the source tree
 * ($MLOPSD_SRC, else the working directory) and quiet logging.
 *
 * FUZZ_CHECK(cond) aborts with the condition and place when an invariant a
 * target asserts does not hold: libFuzzer then saves the input as a crash.
 *
 * Header-only (static functions): each target is a single translation unit
 * linked with build/fuzz/libmlopsd.a.
 */
#ifndef MLOPSD_FUZZ_H
#define MLOPSD_FUZZ_H

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlopsd/log.h"
#include "mlopsd/prep.h"
#include "mlopsd/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_CHECK(cond)                                                    \
  do {                                                                      \
    if (!(cond)) {                                                          \
      fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, \
              #cond);                                                       \
      abort();                                                              \
    }                                                                       \
  } while (0)

static char fuzz_dir_[256];

static inline int fuzz_rm_cb(const char *p, const struct stat *st, int flag,
                      struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  remove(p);
  return 0;
}

/* rm -rf path (best effort). */
static inline void fuzz_rmtree(const char *path)
{
  nftw(path, fuzz_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void fuzz_dir_cleanup(void)
{
  if (fuzz_dir_[0])
    fuzz_rmtree(fuzz_dir_);
}

/* The target's scratch directory: /dev/shm/mlopsd-fuzz-NAME-PID (or under
 * $TMPDIR / /tmp when /dev/shm is missing), created on the first call and
 * removed at exit.  Aborts when it cannot be created. */
static inline const char *fuzz_dir(const char *name)
{
  if (fuzz_dir_[0])
    return fuzz_dir_;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
  if (!base)
    base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  snprintf(fuzz_dir_, sizeof(fuzz_dir_), "%s/mlopsd-fuzz-%s-%ld", base, name,
           (long)getpid());
  fuzz_rmtree(fuzz_dir_);
  if (mkdir(fuzz_dir_, 0700) != 0) {
    fprintf(stderr, "fuzz: mkdir %s: %s\n", fuzz_dir_, strerror(errno));
    abort();
  }
  atexit(fuzz_dir_cleanup);
  return fuzz_dir_;
}

/* Write len bytes to path (created or truncated).  Aborts on failure: a
 * harness that cannot write its input tests nothing. */
static inline void fuzz_write(const char *path, const void *data, size_t len)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  const char *p = data;
  if (fd < 0) {
    fprintf(stderr, "fuzz: open %s: %s\n", path, strerror(errno));
    abort();
  }
  while (len > 0) {
    ssize_t k = write(fd, p, len);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0) {
      fprintf(stderr, "fuzz: write %s: %s\n", path, strerror(errno));
      abort();
    }
    p += k;
    len -= (size_t)k;
  }
  close(fd);
}

/* A NUL-terminated malloc'd copy of data (aborts on no memory). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
  char *s = malloc(size + 1);
  if (!s)
    abort();
  if (size)
    memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* Path of a file in the source tree: $MLOPSD_SRC/rel, else rel. */
static inline void fuzz_src_path(const char *rel, char *buf, size_t cap)
{
  const char *src = getenv("MLOPSD_SRC");
  if (src && *src)
    snprintf(buf, cap, "%s/%s", src, rel);
  else
    snprintf(buf, cap, "%s", rel);
}

/* Logging off unless FUZZ_VERBOSE is set: the modules log warnings about
 * the bad inputs they reject, millions of times per run. */
static inline void fuzz_quiet(void)
{
  if (getenv("FUZZ_VERBOSE"))
    return;
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (fd >= 0)
    log_set_fd(fd);
  log_set_level(LOG_ERROR);
}

/* The start of a target's LLVMFuzzerInitialize: quiet logging, and with
 * MLOPSD_FUZZ_MKSEED=DIR set, MKSEED(DIR) writes the target's generated
 * seeds (tests/fuzz/mkcorpus.sh) and exits. */
static inline void fuzz_init_seeds(void (*mkseed)(const char *dir))
{
  const char *dir = getenv("MLOPSD_FUZZ_MKSEED");
  fuzz_quiet();
  if (dir)
    mkseed(dir);
}

/* Load a model spec of the source tree (rel to $MLOPSD_SRC); aborts on
 * failure (the harness needs it). */
static inline struct spec *fuzz_load_spec(const char *rel)
{
  char path[1024];
  struct spec *s = NULL;
  struct err e = {0};
  fuzz_src_path(rel, path, sizeof(path));
  if (spec_load(path, &s, &e) != ERR_OK) {
    fprintf(stderr, "fuzz: %s (run from the source tree or set "
            "MLOPSD_SRC)\n", e.msg);
    abort();
  }
  return s;
}

/* A prep fitted for spec s on 12 synthetic rows: numbers spread over a
 * small positive range (one missing), categorical values from the allowed
 * list or course-like words, text in the course's shape.  Aborts on
 * failure. */
static inline struct prep *fuzz_fit_prep(const struct spec *s)
{
  enum { N = 12 };
  static const char *const words[] = {"Lawyer", "Mechanic", "Teacher",
                                      "_______", "Scientist"};
  static const char *const texts[] = {
      "credit-builder loan,home equity loan",
      "High_spent_Medium_value_payments", "student loan, payday loan",
      "Not Specified", "Low_spent_Small_value_payments"};
  size_t nf = s->n_features;
  struct prep_column *cols = calloc(nf ? nf : 1, sizeof(*cols));
  double *num = calloc(nf * N + 1, sizeof(double));
  const char **str = calloc(nf * N + 1, sizeof(char *));
  struct prep *p = NULL;
  struct err e = {0};
  if (!cols || !num || !str)
    abort();
  for (size_t i = 0; i < nf; i++) {
    const struct spec_feature *f = &s->features[i];
    for (size_t r = 0; r < N; r++) {
      size_t k = i * N + r;
      if (f->kind == SPEC_NUMERIC) {
        num[k] = r == 5 ? NAN : (double)((r * 7 + i * 3) % 11) * 1.5 + 1;
      } else if (f->kind == SPEC_CATEGORICAL) {
        str[k] = r == 4 ? NULL
                 : f->n_allowed ? f->allowed[r % f->n_allowed]
                                : words[r % 5];
      } else {
        str[k] = r == 4 ? NULL : texts[r % 5];
      }
    }
    if (f->kind == SPEC_NUMERIC)
      cols[i].num = num + i * N;
    else
      cols[i].str = str + i * N;
  }
  struct prep_input in = {.n_rows = N, .n_cols = nf, .cols = cols};
  if (prep_fit(s, &in, NULL, N, &p, &e) != ERR_OK) {
    fprintf(stderr, "fuzz: prep_fit: %s\n", e.msg);
    abort();
  }
  free(cols);
  free(num);
  free(str);
  return p;
}

/* Request JSON text through two preps that must agree (a prep and its
 * saved-and-loaded copy, nout outputs each, rows of nout floats): both
 * accept it or both refuse it, and an accepted one gives the same row. */
static inline void fuzz_same_transform(const struct prep *p,
                                       const struct prep *p2,
                                       const char *json, float *row,
                                       float *row2, size_t nout)
{
  struct err e = {0};
  cJSON *o = cJSON_Parse(json);
  FUZZ_CHECK(o != NULL);
  int a = prep_transform_json(p, o, row, &e) == ERR_OK;
  int b = prep_transform_json(p2, o, row2, &e) == ERR_OK;
  FUZZ_CHECK(a == b);
  if (a)
    FUZZ_CHECK(memcmp(row, row2, nout * sizeof(float)) == 0);
  cJSON_Delete(o);
}

#endif
