/* plog_int.h - the prediction log's row and spool record formats
 * (src/plog_rec.c), shared by the writer (src/plog.c) and its tests.  Friend header: not
 * part of the public interface.
 *
 * When MariaDB does not take a batch, plog.c appends it to the spool as
 * one record and replays it later; the spool checks each record's CRC,
 * this format says what the bytes are.  A record is
 *   u32 magic "PLG1", u32 rows,
 *   then per row a 44-byte header - u64 seq, u64 created_us, f64 conf
 *   (its bits), u32 elapsed_ms, u32 model_version, u16 cid_len,
 *   u16 pred_len, u16 model_len, 2 bytes 0, u32 feat_len - followed by
 *   the customer id, prediction, model name and features texts,
 * all in host byte order: the spool directory is read back by a
 * daemon on the same machine.
 *
 * A row with a shadow prediction (plog_row.shadow_version > 0) carries
 * it in its model text, after the name: "NAME" PLOG_SHADOW_SEP "VERSION"
 * SEP "CONFIDENCE" SEP "PREDICTION" (confidence %.17g, "nan" when not
 * finite).  Model names cannot hold the separator (fsx_name_valid), so
 * rows written before shadows existed read the same, and neither the
 * buffer file (pbuf.h) nor this record changed their layout.
 *
 * Thread rule: no state; any thread, each buffer used by one at a time.
 */
#ifndef MLOPSD_PLOG_INT_H
#define MLOPSD_PLOG_INT_H

#include <stddef.h>

#include <stdint.h>

#include "mlopsd/pbuf.h"

struct plog_row;

#define PLOG_REC_MAGIC 0x31474c50u /* "PLG1" */
#define PLOG_REC_ROW_HDR 44        /* fixed bytes per row */
#define PLOG_SHADOW_SEP '\x1f'     /* model text: name, then the shadow */
#define PLOG_MODEL_NAME_MAX 128    /* bytes of the name kept */
#define PLOG_MODEL_TEXT_MAX 256    /* name and shadow tail */

/* The shadow part of a model text m[0..len): *name_len gets the name's
 * length; returns 1 and fills *version, *conf, *pred, *pred_len when a
 * well-formed shadow tail follows, else 0. */
int plog_model_split(const char *m, size_t len, size_t *name_len,
                     int *version, double *conf, const char **pred,
                     size_t *pred_len);

/* The row r as it goes into the buffer: strings cut to their columns
 * at UTF-8 boundaries; a shadow prediction is appended to the model
 * text (above), built in mt (PLOG_MODEL_TEXT_MAX bytes, the caller's).
 * w's texts point into r's and mt. */
void plog_row_view(const struct plog_row *r, struct pbuf_row *w, char *mt);

/* Bytes the view w takes in a buffer chunk (pbuf_row_size). */
size_t plog_view_size(const struct pbuf_row *w);

/* created_us as MariaDB's DATETIME text "YYYY-MM-DD HH:MM:SS" (UTC) in
 * out (24 bytes); the last second's text is kept per thread, as the rows
 * of one flush mostly share it. */
void plog_fmt_ts(char *out, int64_t us);

/* The JSON text src[0..len) without the blanks between its tokens
 * (space, tab, CR, LF outside strings; strings copied as they are) into
 * dst, which has room for len + PLOG_COMPACT_SLACK bytes (it stores 16
 * bytes at a time; those past the result are scratch); returns the new
 * length (<= len).  src must
 * be one valid JSON text (a logged item is: reqjson checked it), else
 * the result is unspecified but stays within len bytes.  What the log
 * stores in `features`: the same JSON value, so JSON_EXTRACT gives the
 * same results, in fewer bytes for MariaDB to scan, copy, log and page
 * (docs/performance.md "Issue 16, fourth round: MariaDB's row"). */
#define PLOG_COMPACT_SLACK 16
size_t plog_json_compact(char *dst, const char *src, size_t len);

/* Encode rows v[0..n) into *buf (grown as needed: *buf and *cap are the
 * caller's, freed with free()).  Returns the record's length, or 0 when
 * out of memory (*buf and *cap unchanged then).  The text lengths must
 * fit their fields (cid, pred, model under 64 KiB: plog.c cuts them
 * when a row is appended). */
size_t plog_rec_encode(char **buf, size_t *cap, const struct pbuf_row *v,
                       size_t n);

/* Decode the record data[0..len) into *views (grown as needed, the
 * caller's, freed with free()); the views' texts point into data, which
 * must outlive them.  Returns the row count, or -1 when the bytes are not
 * one whole record of this format (bad magic, a row cut short, bytes left
 * over) or out of memory. */
long plog_rec_decode(struct pbuf_row **views, size_t *cap, const void *data,
                     size_t len);

#endif
