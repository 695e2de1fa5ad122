/* registry_int.h - between registry.c (the directory registry, drafts,
 * the public entry points) and registry_obj.c (the registry on object
 * storage).  Not a public header.
 *
 * On object storage registry.c still owns the local side: drafts are
 * directories under CACHE/NAME/tmp/ exactly as on the directory registry,
 * and paths handed to readers are under CACHE/NAME/versions/N/.  What
 * would be rename(2) and flock(2) there is robj_* here: uploads, rows in
 * MariaDB, and materialising versions into the cache.
 * Thread rule: a struct robj is shared by every thread of the registry;
 * its functions take a pooled connection per call and lock only the
 * small set of verified versions. */
#ifndef MLOPSD_REGISTRY_INT_H
#define MLOPSD_REGISTRY_INT_H

#include "mlopsd/registry.h"

struct robj;

/* Test hook: with this variable set to 1 when the registry is opened, a
 * writer on object storage raises SIGSTOP inside its commit transaction,
 * after the version row and the counter are written and before COMMIT,
 * so a test can SIGKILL it at exactly that point.  Only tests set it. */
#define REGISTRY_TEST_STOP_ENV "MLOPSD_TEST_STOP_AT_COMMIT_ROW"

MLOPSD_WUR enum err_code robj_open(const struct registry_obj_opts *o,
                                   const char *cache_root, struct robj **out,
                                   struct err *e);
void robj_close(struct robj *o); /* NULL-safe */
const char *robj_kind(const struct robj *o);
const char *robj_url(const struct robj *o);

/* Make the model known (its counter row), so it lists before a version
 * is committed, as a directory does. */
MLOPSD_WUR enum err_code robj_model_touch(struct robj *o, const char *name,
                                          struct err *e);
/* Upload the files of draft_dir and commit the version row: number
 * want (import) or the next one.  On success the draft directory has
 * become the cached copy of the version (it is gone from draft_dir). */
MLOPSD_WUR enum err_code robj_commit(struct robj *o, const char *name,
                                     const char *draft_dir, int want,
                                     int *version, struct err *e);
/* Materialise NAME version VERSION in the cache, verified. */
MLOPSD_WUR enum err_code robj_fetch(struct robj *o, const char *name,
                                    int version, struct err *e);
MLOPSD_WUR enum err_code robj_list_models(struct robj *o, char ***names,
                                          size_t *n, struct err *e);
MLOPSD_WUR enum err_code robj_list_versions(struct robj *o, const char *name,
                                            int **versions, size_t *n,
                                            struct err *e);
int robj_version_exists(struct robj *o, const char *name, int version);
MLOPSD_WUR enum err_code robj_alias_get(struct robj *o, const char *name,
                                        const char *alias, int *version,
                                        int64_t *serial, struct err *e);
MLOPSD_WUR enum err_code robj_alias_set(struct robj *o, const char *name,
                                        const char *alias, int version,
                                        int *previous, struct err *e);
MLOPSD_WUR enum err_code robj_alias_delete(struct robj *o, const char *name,
                                           const char *alias, struct err *e);
MLOPSD_WUR enum err_code robj_list_aliases(struct robj *o, const char *name,
                                           char ***aliases, size_t *n,
                                           struct err *e);
MLOPSD_WUR enum err_code robj_run_put(struct robj *o, const char *name,
                                      const char *run_id, const char *file,
                                      const char *text, struct err *e);
MLOPSD_WUR enum err_code robj_list_runs(struct robj *o, const char *name,
                                        char ***ids, size_t *n,
                                        struct err *e);
MLOPSD_WUR enum err_code robj_run_get(struct robj *o, const char *name,
                                      const char *run_id, const char *file,
                                      char **text, size_t *len,
                                      struct err *e);

#endif
