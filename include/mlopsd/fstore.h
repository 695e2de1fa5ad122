/* fstore.h - the feature store client: training sets and entity lookups
 * read from MariaDB for a model spec (docs/training.md).
 *
 * fstore_read_training() runs ONE prepared, streaming query
 *
 *   SELECT `f1`, ..., `fN`, `target` [, `key`] [, `pk1`, ...]
 *     FROM `table` WHERE (<spec filter rendered for ds>)
 *    ORDER BY <primary key of the table>
 *
 * and stores the rows straight into column arrays: numeric features as
 * double arrays (SQL NULL -> NaN, XGBoost's missing value), categorical
 * and text features as arrays of string pointers (SQL NULL -> NULL).
 * Strings are interned in one arena of large blocks: equal values share
 * one copy, and no row costs an allocation of its own (arrays grow by
 * doubling).  Labels are mapped through the spec's classes.  The ORDER BY
 * makes the row order, and with it the seeded split, the same on every
 * read of the same data; a table without a primary key is ordered by the
 * key column and every selected column.
 *
 * The filter is rendered with tmpl (TMPL_SQL) where {{ ds }} (and
 * ds_nodash, ds_add(N)) become validated date literals; a filter that
 * uses {{ conf.X }} or {{ params.X }} is refused (a spec has neither).
 *
 * Thread rule: any thread; each call acquires its own connection from the
 * pool.  A struct fstore_set is immutable once returned and may be read
 * from any number of threads.
 */
#ifndef MLOPSD_FSTORE_H
#define MLOPSD_FSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "mlopsd/err.h"
#include "mlopsd/prep.h"
#include "mlopsd/sha256.h"
#include "mlopsd/spec.h"

struct db_pool;
struct fstore_arena;

/* Rows read at most (a cap on memory filled from outside). */
#define FSTORE_MAX_ROWS ((size_t)50 * 1000 * 1000)
/* Longest SQL text built (filter included). */
#define FSTORE_SQL_MAX 65536
/* Most primary-key columns used for row keys. */
#define FSTORE_MAX_KEY_COLS 16

/* Polled every few thousand rows; non-zero stops the read with
 * ERR_CANCELED. */
typedef int (*fstore_cancel_fn)(void *ud);

/* A training set.  READ-ONLY for callers; free with fstore_set_free. */
struct fstore_set {
  size_t n_rows;
  size_t n_features;          /* == spec->n_features, spec order */
  struct prep_column *cols;   /* n_features columns of n_rows values */
  struct prep_input input;    /* {n_rows, n_features, cols}: for prep_* */
  int *labels;                /* classification: class index per row */
  double *target;             /* regression: target per row (else NULL) */
  const char **keys;          /* source.key per row (NULL = missing), or
                                 NULL when the spec has no key */
  /* Row keys: what identifies a row across reads of different logical
   * dates (train_keys.jsonl, the validate gate's held-out rows).  The
   * columns are the table's primary key minus the columns that hold one
   * value over the whole set (the snapshot date the filter pins, e.g.
   * base_dt), so the same source record read for two dates has the same
   * row key; without a primary key, source.key.  n_row_key_cols == 0
   * (and row_keys NULL) when the table has neither. */
  size_t n_row_key_cols;
  char row_key_cols[FSTORE_MAX_KEY_COLS][72]; /* column names, key order */
  const char **row_keys;      /* n_rows x n_row_key_cols values, row-major
                                 (NULL = SQL NULL), text as read */
  size_t n_distinct_strings;  /* interned strings */
  size_t arena_bytes;         /* bytes held by the string arena */
  char sql[FSTORE_SQL_MAX];   /* the query run (for logs and meta.json) */
  double read_s;              /* wall time of the query and fetch */
  struct fstore_arena *arena; /* private */
};

/* Read the training set of spec for logical date ds ("YYYY-MM-DD", a
 * valid calendar date).  *out is a new set (fstore_set_free).  cancel may
 * be NULL.  Errors (e->msg names the table, and the row and column where
 * a value is bad):
 *   ERR_INVAL     bad ds; filter does not render; a numeric column holds
 *                 text that is not a number; a label that is NULL or not
 *                 one of the spec's classes ("label 'Fair' in column
 *                 credit_score (row 17, customer_id=4096) is not one of
 *                 the classes Poor, Standard, Good"); more than
 *                 FSTORE_MAX_ROWS rows
 *   ERR_NOTFOUND  zero rows: "no training rows in TABLE for base_dt=DS"
 *                 (the filter's text after "for")
 *   ERR_DB, ERR_DB_CONN, ERR_TIMEOUT (pool), ERR_CANCELED, ERR_NOMEM. */
MLOPSD_WUR enum err_code fstore_read_training(struct db_pool *db,
                                              const struct spec *spec,
                                              const char *ds,
                                              fstore_cancel_fn cancel,
                                              void *cancel_ud,
                                              struct fstore_set **out,
                                              struct err *e);

/* fstore_read_training of one shard: only the rows with
 * MOD(source.key, shards) = rank (distributed training, each worker reads
 * its own).  shards 1 reads everything.  ERR_INVAL when shards > 1 and the
 * spec has no source.key. */
MLOPSD_WUR enum err_code fstore_read_training_shard(
    struct db_pool *db, const struct spec *spec, const char *ds, int shards,
    int rank, fstore_cancel_fn cancel, void *cancel_ud,
    struct fstore_set **out, struct err *e);

void fstore_set_free(struct fstore_set *s); /* NULL-safe */

/* SHA-256 of the set in a canonical, documented form (docs/training.md,
 * "Training data hash"), as 64 hex digits: for each feature in spec order
 * its name and a newline, then its n_rows values (numeric: 8-byte
 * little-endian IEEE-754 double, missing as the quiet NaN
 * 0x7ff8000000000000; string: 4-byte little-endian length then the bytes,
 * missing as length 0xffffffff); then the target column name, a newline
 * and the n_rows labels (class label as a string as above; regression:
 * doubles).  Row order is the read order.  The prefix is the 15 bytes
 * "mlopsd.data.v1\n". */
void fstore_set_sha256(const struct fstore_set *s, const struct spec *spec,
                       char out[SHA256_HEX_LEN]);

/* One entity's latest features: the row of spec's table whose key column
 * equals key with the greatest primary key (for the course table: the
 * newest base_dt, then the newest id).  *out is a new request object
 * ({"customer_id": "4096", "age": 18, ...}: numeric features as numbers,
 * NULL as null, the key as read) for prep_transform_json / predict;
 * cJSON_Delete it.  Errors: ERR_INVAL (spec has no source.key),
 * ERR_NOTFOUND ("no row in TABLE with customer_id=KEY"), ERR_DB,
 * ERR_DB_CONN, ERR_TIMEOUT, ERR_NOMEM. */
MLOPSD_WUR enum err_code fstore_lookup(struct db_pool *db,
                                       const struct spec *spec,
                                       const char *key, cJSON **out,
                                       struct err *e);

/* How long fstore waits for a pool connection, ms. */
#define FSTORE_ACQUIRE_MS 10000

/* A key as read from the table as JSON: a number when it is a plain
 * integer (at most 15 digits, may be negative; the course sends
 * customer_id as a number), else the text.  New item (cJSON_Delete),
 * NULL on ENOMEM. */
cJSON *fstore_key_json(const char *k);

#endif
