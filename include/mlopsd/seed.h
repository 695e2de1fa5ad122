/* seed.h - loading the sample credit-score data (`mlopsd db seed`).
 *
 * seed_load() reads customer_info.csv, credit_score.csv and
 * credit_score_features.csv from a directory (default sql/data) into the
 * course tables of the same names.  Each table is loaded in its own
 * transaction with multi-row INSERT ... ON DUPLICATE KEY UPDATE (a no-op
 * update), so a second run adds nothing and a bad row anywhere in a file
 * leaves that table as it was.  Duplicates are the only thing ignored:
 * unlike INSERT IGNORE, a value the column cannot hold is still an error.
 *
 * Values: an empty field is NULL (never 0 or ''); numbers are checked here
 * so that a bad one is reported as FILE:LINE: column NAME; `ssn` given as
 * float text ("957109944.0") is stored as the integer; dates are text in
 * the course schema and load as they are (also the 92 '2025-02-29' rows).
 *
 * The CSV reader (RFC 4180: comma separated, fields in double quotes may
 * hold commas, newlines and "" for a quote; LF or CRLF line ends; a UTF-8
 * BOM is skipped; wholly empty lines are skipped) is exposed for tests.
 *
 * Thread rule: any thread; a seed_csv by one thread at a time.
 */
#ifndef MLOPSD_SEED_H
#define MLOPSD_SEED_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mlopsd/db.h"
#include "mlopsd/err.h"

#define SEED_DIR_DEFAULT "sql/data"
#define SEED_NTABLES 3

/* Outcome for one table. */
struct seed_result {
  const char *table;  /* static name, e.g. "customer_info" */
  int64_t rows;       /* data rows read from the file */
  int64_t inserted;   /* rows new in the table (rows - already present) */
  double ms;          /* time to parse and load the table */
};

/* Called after each table is committed (may be NULL). */
typedef void (*seed_table_fn)(void *user, const struct seed_result *r);

/* Load the three files of dir (NULL or "": SEED_DIR_DEFAULT) into the
 * database c is connected to, in the order customer_info, credit_score,
 * credit_score_features.  All three files must exist (checked before
 * anything is loaded).  res (may be NULL) gets SEED_NTABLES results.
 * Errors: ERR_IO (file), ERR_PARSE (CSV syntax, wrong column count, bad
 * header), ERR_INVAL (a value that does not fit its column), all as
 * "FILE:LINE: ..." naming the column; ERR_DB/ERR_DB_CONN from the server
 * (a missing table says to run `mlopsd db init`).  On error the failing
 * table is rolled back; tables loaded before it stay loaded. */
enum err_code seed_load(struct db_conn *c, const char *dir, seed_table_fn cb,
                        void *user, struct seed_result *res,
                        struct err *e) MLOPSD_WUR;

/* ----------------------------------------------------------- CSV reader */

struct seed_csv;

/* Open path for reading.  ERR_IO with the path and reason. */
enum err_code seed_csv_open(struct seed_csv **out, const char *path,
                            struct err *e) MLOPSD_WUR;
/* Read from f (borrowed; not closed by seed_csv_close); name is copied and
 * used in messages. */
enum err_code seed_csv_from(struct seed_csv **out, FILE *f, const char *name,
                            struct err *e) MLOPSD_WUR;
void seed_csv_close(struct seed_csv *r); /* NULL ok */

/* Read the next record.  *nfields gets its field count, 0 at end of file.
 * ERR_PARSE "NAME:LINE: ..." for an unterminated quote, text after a
 * closing quote, a quote inside an unquoted field, a record over 1 MiB or
 * over 1024 fields; ERR_IO on a read error. */
enum err_code seed_csv_next(struct seed_csv *r, int *nfields,
                            struct err *e) MLOPSD_WUR;

/* Field i of the last record: NUL-terminated, borrowed until the next
 * seed_csv_next.  *len (may be NULL) gets its length, *quoted (may be
 * NULL) whether it was in quotes.  NULL if i is out of range. */
const char *seed_csv_field(const struct seed_csv *r, int i, size_t *len,
                           int *quoted);

/* 1-based line where the last record started. */
long seed_csv_line(const struct seed_csv *r);

/* ------------------------------------------------------- value parsing */

/* A decimal number (optional sign, digits, optional fraction and
 * exponent), the whole string, finite.  0 if ok, -1 otherwise. */
int seed_parse_f64(const char *s, double *out);

/* An integer, also written as float text with a zero fraction
 * ("957109944.0", "12.000"), the whole string, within int64.  0 if ok. */
int seed_parse_i64(const char *s, int64_t *out);

#endif
