/* registry_int.h - the registry's backend table, between registry.c (the
 * public entry points, drafts, and the directory backend) and
 * registry_obj.c (the backend on object storage).  Not a public header.
 *
 * registry.c checks names and builds local paths, then calls the backend
 * of the registry through struct regbe_ops; it never asks which backend
 * it has.  Two implementations:
 *
 *   regbe_dir_ops (registry.c): objects are files below the root, a
 *     version is a directory renamed into place under flock, an alias a
 *     file written atomically.
 *   regbe_s3_ops (registry_obj.c): objects are S3 objects below the URL's
 *     prefix; version numbers and aliases are rows in MariaDB, versions
 *     are materialised into the local cache (the registry's root).
 *
 * On both, drafts are local directories under ROOT/NAME/tmp/ and paths
 * handed to readers are under ROOT/NAME/versions/N/.
 * Thread rule: a backend is shared by every thread of its registry; its
 * functions may run concurrently (the S3 one takes a pooled connection
 * per call and locks only its small set of verified versions). */
#ifndef MLOPSD_REGISTRY_INT_H
#define MLOPSD_REGISTRY_INT_H

#include "mlopsd/registry.h"

#include <stdint.h>

/* Test hook: with this variable set to 1 when the registry is opened, a
 * writer on object storage raises SIGSTOP inside its commit transaction,
 * after the version row and the counter are written and before COMMIT,
 * so a test can SIGKILL it at exactly that point.  Only tests set it. */
#define REGISTRY_TEST_STOP_ENV "MLOPSD_TEST_STOP_AT_COMMIT_ROW"

/* Called once per object under a prefix, in key order (keys relative to
 * the registry, e.g. "m/runs/r1/params.json"); non-zero stops the listing
 * (the list call then returns ERR_CANCELED). */
typedef int (*regbe_list_fn)(const char *key, int64_t size, void *ud);

struct regbe_ops {
  const char *kind; /* "directory", "s3" */
  /* -- objects: bytes by key below the registry (names already checked).
   * put replaces whole (a reader sees the old or the new bytes); get of
   * an object larger than max is ERR_INVAL; a missing key is
   * ERR_NOTFOUND for get and head, not an error for del. */
  enum err_code (*put)(void *be, const char *key, const void *data, size_t n,
                       struct err *e);
  enum err_code (*get)(void *be, const char *key, size_t max, char **out,
                       size_t *n, struct err *e);
  enum err_code (*head)(void *be, const char *key, int64_t *size,
                        struct err *e);
  enum err_code (*list)(void *be, const char *prefix, regbe_list_fn fn,
                        void *ud, struct err *e);
  enum err_code (*del)(void *be, const char *key, struct err *e);
  /* -- versions and aliases */
  /* make the model known, so it lists before its first version */
  enum err_code (*model_touch)(void *be, const char *name, struct err *e);
  /* publish the (fsync'd) draft as the next version, or exactly want
   * (import; ERR_EXISTS if taken); the draft is consumed either way */
  enum err_code (*commit)(void *be, struct registry_draft *d, int want,
                          int *version, struct err *e);
  /* make ROOT/NAME/versions/N hold the version's files, verified */
  enum err_code (*fetch)(void *be, const char *name, int version,
                         struct err *e);
  enum err_code (*list_models)(void *be, char ***names, size_t *n,
                               struct err *e);
  enum err_code (*list_versions)(void *be, const char *name, int **versions,
                                 size_t *n, struct err *e);
  int (*version_exists)(void *be, const char *name, int version);
  enum err_code (*alias_get)(void *be, const char *name, const char *alias,
                             int *version, struct err *e);
  enum err_code (*alias_stamp)(void *be, const char *name, const char *alias,
                               struct registry_stamp *st, struct err *e);
  enum err_code (*alias_set)(void *be, const char *name, const char *alias,
                             int version, int *previous, struct err *e);
  enum err_code (*alias_delete)(void *be, const char *name,
                                const char *alias, struct err *e);
  enum err_code (*list_aliases)(void *be, const char *name, char ***aliases,
                                size_t *n, struct err *e);
  const char *(*where)(const void *be); /* for messages: root or URL */
  void (*close)(void *be);
};

extern const struct regbe_ops regbe_s3_ops;

/* Open the object-storage backend (its state, for regbe_s3_ops) with the
 * local cache at cache_root. */
MLOPSD_WUR enum err_code robj_open(const struct registry_obj_opts *o,
                                   const char *cache_root, void **out,
                                   struct err *e);

/* For backends: the draft's model name and directory, and the helpers
 * registry.c and registry_obj.c share. */
const char *registry_draft_name(const struct registry_draft *d);
MLOPSD_PRINTF(4, 5)
MLOPSD_WUR enum err_code registry_fmt(char *buf, size_t cap, struct err *e,
                                      const char *fmt, ...);
MLOPSD_WUR enum err_code registry_mkdir_p(const char *path, struct err *e);
void registry_rm_tree(const char *path); /* best effort */
int registry_cmp_str(const void *a, const void *b); /* qsort of char * */
/* Append x to a NULL-terminated sorted vector unless it equals the last
 * entry; ERR_NOMEM. */
MLOPSD_WUR enum err_code registry_strv_add_uniq(char ***v, size_t *n,
                                                size_t *cap, const char *x);

#endif
