/* bscore.h - batch scoring of any size: records (JSON lines, CSV lines,
 * SQL result rows) are scored in blocks of BSCORE_BLOCK with the very
 * bundle the server serves (serving_model_load: the server's loader,
 * the version's preprocessing, the verified native evaluator), so the
 * answers equal /predict's, in memory that does not grow with the input.
 *
 * A record becomes one request item: its fields by name; for a field
 * that is a numeric feature of the spec a text value is read as a number
 * (CSV, SQL); an empty value (CSV cannot tell it from NULL) and SQL
 * NULL are a missing value, as an absent member of a request; fields
 * that are neither features nor the spec's key are ignored (a feature
 * table's target and date columns).  A JSON line is either the item
 * itself or a request body {"data": {...}}.  A record that fails the
 * spec's checks gets an answer with an "error" (every bad field, as the
 * 400 of /predict names them) and the others are scored.
 *
 * Thread rule: one struct bscore per thread; the model bundle may be
 * shared.
 */
#ifndef MLOPSD_BSCORE_H
#define MLOPSD_BSCORE_H

#include <stdint.h>
#include <stdio.h>

#include "mlopsd/err.h"

struct bscore;
struct serving_model;
struct cJSON;

#define BSCORE_BLOCK 1024       /* records scored together */
#define BSCORE_LINE_MAX (16u << 20) /* longest input line */

enum bscore_format { BSCORE_JSONL = 0, BSCORE_CSV = 1 };

/* One answer (borrowed until the next block). */
struct bscore_answer {
  const char *customer_id; /* the key as text, NULL when absent */
  int customer_id_is_number; /* a JSON number in the input */
  const char *label;       /* class label; NULL for regression or error */
  double confidence;       /* probability of label */
  double value;            /* regression prediction */
  const char *error;       /* NULL, or why the record was not scored */
  uint64_t record;         /* 1-based record number (line of data) */
};

/* Called once per record, in input order.  Return 0 to go on. */
typedef int (*bscore_emit_fn)(void *arg, const struct bscore_answer *a);

struct bscore_stats {
  uint64_t records, scored, invalid;
};

/* m: a reference the caller keeps for the life of the bscore. */
enum err_code bscore_create(struct bscore **out,
                            const struct serving_model *m,
                            bscore_emit_fn emit, void *arg,
                            struct err *e) MLOPSD_WUR;
void bscore_destroy(struct bscore *b); /* NULL-safe; does not flush */

/* Add one record as (name, text) pairs; vals[i] NULL = missing. */
enum err_code bscore_add_text(struct bscore *b, const char *const *names,
                              const char *const *vals, int n,
                              struct err *e) MLOPSD_WUR;

/* Add one record as a JSON text (an item or {"data": item}); a line
 * that is not a JSON object is answered with an error, not failed. */
enum err_code bscore_add_json(struct bscore *b, const char *text, size_t len,
                              struct err *e) MLOPSD_WUR;

/* Score and emit what is pending.  Errors: ERR_NOMEM, model errors,
 * ERR_CANCELED when emit stopped. */
enum err_code bscore_flush(struct bscore *b, struct err *e) MLOPSD_WUR;

void bscore_get_stats(const struct bscore *b, struct bscore_stats *st);

/* The whole stream: read records from in (CSV: the first line names the
 * columns; RFC 4180 quoting), write one answer per record to out as JSON
 * lines {"customer_id":..,"predict":..,"confidence":..,"model_version":..}
 * (or {"customer_id":..,"record":N,"error":".."}, N the 1-based
 * data record) or as CSV with the header
 * customer_id,predict,confidence,model_version,error.  where names the
 * input in messages.  Errors: ERR_PARSE (a line longer than
 * BSCORE_LINE_MAX, a CSV row with more fields than the header), ERR_IO,
 * ERR_NOMEM. */
enum err_code bscore_stream(const struct serving_model *m, FILE *in,
                            const char *where, enum bscore_format in_fmt,
                            FILE *out, enum bscore_format out_fmt,
                            struct bscore_stats *st, struct err *e)
    MLOPSD_WUR;

#endif
