/* registry.h - the file-based model registry (docs/registry.md).
 *
 * Plain files under a root directory, readable without mlopsd:
 *
 *   NAME/versions/N/{model.ubj, preprocess.json, meta.json, reference.json}
 *   NAME/runs/RUN_ID/{params.json, metrics.json}
 *   NAME/aliases/ALIAS            text file holding a version number
 *   NAME/tmp/                     drafts being written (private)
 *   NAME/.lock                    flock taken while numbering versions
 *
 * A version is written as a draft in NAME/tmp/, then committed: its files
 * are fsync'd, and under an exclusive flock on NAME/.lock the next number
 * N = max + 1 is chosen and the draft directory renamed to versions/N, so a
 * version appears complete or not at all, numbers have no gaps or
 * duplicates across threads and processes, and a writer killed at any
 * point leaves no partial version (its draft is removed later).  Alias
 * files are replaced by temp file + fsync + rename.
 *
 * Names (models, aliases, run ids, file names) must pass fsx_name_valid
 * ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, no ".."); versions are
 * integers 1..INT_MAX; every path is built from validated parts, so no
 * path escapes the root.
 *
 * Thread rule: a struct registry is immutable after registry_open and may
 * be used from any number of threads and processes at once.  A draft
 * belongs to one thread until commit/abort.
 */
#ifndef MLOPSD_REGISTRY_H
#define MLOPSD_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/fsx.h"

#define REGISTRY_NAME_MAX FSX_NAME_MAX
#define REGISTRY_PATH_MAX 4096
#define REGISTRY_JSON_MAX (16u << 20) /* JSON files read are capped */
#define REGISTRY_PRODUCTION "production"

struct registry;       /* opaque */
struct registry_draft; /* opaque */

/* Open (creating the directory, with parents, if missing) the registry at
 * root.  Errors: ERR_INVAL (path too long), ERR_IO. */
MLOPSD_WUR enum err_code registry_open(const char *root,
                                       struct registry **out, struct err *e);
void registry_close(struct registry *r); /* NULL-safe */
/* The directory (the local cache on object storage).  Borrowed. */
const char *registry_root(const struct registry *r);

/* ---- the registry on object storage (docs/registry.md) ----------------
 *
 * Files go to an object store (S3, or a directory standing in for one),
 * version numbers and aliases are rows in MariaDB (sql/migrations/060):
 * a version is uploaded under PREFIX/NAME/drafts/DRAFT/ and exists once
 * its row (with every file's size and sha256) is committed; the number is
 * claimed in the same transaction (the model's counter row locked), so
 * numbers have no gaps or duplicates across hosts and a writer that dies
 * leaves no version.  Readers get local files: registry_path() first
 * materialises the version in the cache directory (files kept once per
 * sha256 under CACHE/.objects/, verified against the row, hard-linked
 * into CACHE/NAME/versions/N/).  Every function of this header works the
 * same on both kinds; registry_alias_stamp reads the alias row (one
 * query), so every replica sees an alias change through MariaDB. */
struct cfg;
struct db_opts;
struct registry_obj_opts {
  const char *url;       /* "s3://BUCKET[/PREFIX]" or "file:///DIR" (a
                          * directory standing in for a bucket: tests) */
  const char *endpoint;  /* S3 endpoint URL; "": AWS for the region */
  const char *region;    /* "": us-east-1 */
  const char *credentials_file; /* "": environment only */
  const char *cache_dir; /* local cache and drafts (created) */
  const struct db_opts *db; /* the database holding the rows (copied) */
};
MLOPSD_WUR enum err_code registry_open_obj(const struct registry_obj_opts *o,
                                           struct registry **out,
                                           struct err *e);
/* The registry the configuration names: models.registry_url set -> object
 * storage (models.s3_*, the database.* keys, registry_dir as the cache);
 * else the directory models.registry_dir.  Errors: those of the two
 * opens, ERR_CONFIG (bad URL). */
MLOPSD_WUR enum err_code registry_open_cfg(const struct cfg *c,
                                           struct registry **out,
                                           struct err *e);
/* "directory" or "s3" / "file" (object storage); static string. */
const char *registry_kind(const struct registry *r);
/* The store for messages: the directory, or the URL. Borrowed. */
const char *registry_where(const struct registry *r);

/* Publish the draft as version `version` exactly (copying a registry:
 * numbers are kept).  ERR_EXISTS when that version exists (the draft is
 * consumed either way).  Later commits number from the highest. */
MLOPSD_WUR enum err_code registry_version_import(struct registry_draft *d,
                                                 int version, struct err *e);

/* Aliases set for name, sorted (registry_strv_free); none: n == 0. */
MLOPSD_WUR enum err_code registry_list_aliases(struct registry *r,
                                               const char *name,
                                               char ***aliases, size_t *n,
                                               struct err *e);

/* Copy every model of src into dst (a directory into object storage or
 * back): versions keep their numbers (those dst has already are skipped,
 * so a second run only copies what is new), then the aliases and the run
 * records.  log (may be NULL) gets one line per version copied.  The
 * first failure stops the copy; what was copied stays (each version is
 * whole or absent in dst). */
struct registry_copy_stats {
  int models, versions, skipped, aliases, runs;
};
MLOPSD_WUR enum err_code registry_copy(struct registry *src,
                                       struct registry *dst,
                                       void (*log)(const char *line),
                                       struct registry_copy_stats *st,
                                       struct err *e);

/* Parse NAME/runs/RUN_ID/FILE (params.json, metrics.json) into *out.
 * Errors: ERR_NOTFOUND, ERR_PARSE, ERR_IO. */
MLOPSD_WUR enum err_code registry_run_read(struct registry *r,
                                           const char *name,
                                           const char *run_id,
                                           const char *file, cJSON **out,
                                           struct err *e);

/* Start a new version of model name: creates NAME/tmp/draft-XXXXXX and
 * removes stale drafts of killed writers.  Write the version's files with
 * registry_draft_path().  Errors: ERR_INVAL (bad name), ERR_IO, ERR_NOMEM. */
MLOPSD_WUR enum err_code registry_version_begin(struct registry *r,
                                                const char *name,
                                                struct registry_draft **out,
                                                struct err *e);

/* The draft directory (borrowed until commit/abort). */
const char *registry_draft_dir(const struct registry_draft *d);

/* Path of file inside the draft into buf (cap bytes).  Errors: ERR_INVAL
 * (bad file name, too long). */
MLOPSD_WUR enum err_code registry_draft_path(const struct registry_draft *d,
                                             const char *file, char *buf,
                                             size_t cap, struct err *e);

/* Publish the draft as the next version; *version gets its number.  The
 * draft is consumed whatever the result (on failure its files are
 * removed).  Errors: ERR_IO, ERR_INVAL (draft holds something other than
 * regular files). */
MLOPSD_WUR enum err_code registry_version_commit(struct registry_draft *d,
                                                 int *version, struct err *e);

/* Throw the draft away (removes its files).  NULL-safe. */
void registry_version_abort(struct registry_draft *d);

/* Model names (directories with a valid name), sorted.  *names is a new
 * NULL-terminated array; free with registry_strv_free.  An empty registry
 * gives n == 0. */
MLOPSD_WUR enum err_code registry_list_models(struct registry *r,
                                              char ***names, size_t *n,
                                              struct err *e);
void registry_strv_free(char **v); /* NULL-safe */

/* Version numbers of name, ascending; *versions is a new array (free()),
 * NULL when n == 0.  A model without versions is not an error.  Errors:
 * ERR_INVAL (bad name), ERR_NOTFOUND (no such model), ERR_IO. */
MLOPSD_WUR enum err_code registry_list_versions(struct registry *r,
                                                const char *name,
                                                int **versions, size_t *n,
                                                struct err *e);

/* Highest version of name.  Errors: ERR_NOTFOUND (no model / no version). */
MLOPSD_WUR enum err_code registry_latest(struct registry *r, const char *name,
                                         int *version, struct err *e);

/* 1 if NAME/versions/VERSION exists. */
int registry_version_exists(struct registry *r, const char *name,
                            int version);

/* Read alias (e.g. "production").  Errors: ERR_NOTFOUND (not set),
 * ERR_PARSE (file does not hold a version number; names the path). */
MLOPSD_WUR enum err_code registry_alias_get(struct registry *r,
                                            const char *name,
                                            const char *alias, int *version,
                                            struct err *e);

/* Point alias at version (which must exist: else ERR_NOTFOUND); written
 * atomically (temp + fsync + rename).  *previous (if non-NULL) gets the
 * version it pointed at before, 0 if none. */
MLOPSD_WUR enum err_code registry_alias_set(struct registry *r,
                                            const char *name,
                                            const char *alias, int version,
                                            int *previous, struct err *e);

/* Remove an alias; ERR_NOTFOUND if it was not set. */
MLOPSD_WUR enum err_code registry_alias_delete(struct registry *r,
                                               const char *name,
                                               const char *alias,
                                               struct err *e);

/* Change detector for an alias file, for cheap polling: a stat() only.
 * Every registry_alias_set replaces the file (new inode), so comparing two
 * stamps tells whether the alias may have changed.  exists is 0 when the
 * alias is not set (then the other fields are 0). */
struct registry_stamp {
  int exists;
  uint64_t dev;
  uint64_t ino;
  int64_t mtime_ns;
  int64_t size;
};
MLOPSD_WUR enum err_code registry_alias_stamp(struct registry *r,
                                              const char *name,
                                              const char *alias,
                                              struct registry_stamp *st,
                                              struct err *e);
int registry_stamp_equal(const struct registry_stamp *a,
                         const struct registry_stamp *b);

/* Parse NAME/versions/VERSION/FILE as JSON into *out (cJSON_Delete).
 * Errors: ERR_NOTFOUND (no such version/file), ERR_PARSE (corrupt; the
 * message names the path and the byte offset), ERR_IO. */
MLOPSD_WUR enum err_code registry_read_json(struct registry *r,
                                            const char *name, int version,
                                            const char *file, cJSON **out,
                                            struct err *e);
/* registry_read_json(r, name, version, "meta.json", out, e). */
MLOPSD_WUR enum err_code registry_read_meta(struct registry *r,
                                            const char *name, int version,
                                            cJSON **out, struct err *e);

/* Record a grid-search trial: NAME/runs/RUN_ID/params.json and
 * metrics.json, each written atomically (an existing run is overwritten).
 * params/metrics are borrowed; either may be NULL to skip that file. */
MLOPSD_WUR enum err_code registry_run_write(struct registry *r,
                                            const char *name,
                                            const char *run_id,
                                            const cJSON *params,
                                            const cJSON *metrics,
                                            struct err *e);

/* Run ids of name, sorted (registry_strv_free). */
MLOPSD_WUR enum err_code registry_list_runs(struct registry *r,
                                            const char *name, char ***ids,
                                            size_t *n, struct err *e);

/* Safe path builder: ROOT/NAME/versions/VERSION/FILE (file NULL: the
 * version directory) into buf.  Does not check existence on the
 * directory registry; on object storage it first materialises the
 * version in the cache (ERR_NOTFOUND if it does not exist, ERR_IO when
 * the store fails, ERR_PARSE when an object's sha256 does not match its
 * row).  Errors: ERR_INVAL (bad name, version < 1, bad file name, too
 * long). */
MLOPSD_WUR enum err_code registry_path(const struct registry *r,
                                       const char *name, int version,
                                       const char *file, char *buf,
                                       size_t cap, struct err *e);

#endif
