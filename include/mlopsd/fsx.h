/* fsx.h - the file helpers every module needs, kept in one place.
 *
 * A capped whole-file read, an atomic replace (temp file, fsync, rename,
 * fsync of the directory) and the one check for names that become path
 * components (model, alias, run, spec names).  Before this module each
 * of them had private copies that differed in their caps, their error
 * codes and whether the directory was synced (curl lib/curlx/, redis
 * sds.c: small helpers live once).
 *
 * Errors name the path; the caller prefixes where the path came from
 * ("database.password_file: ...").
 *
 * Thread rule: every function may be called from any thread; none keeps
 * state between calls.
 */
#ifndef MLOPSD_FSX_H
#define MLOPSD_FSX_H

#include <stddef.h>

#include "mlopsd/err.h"

/* Longest name fsx_name_valid accepts, in bytes (no NUL). */
#define FSX_NAME_MAX 128

/* Flags for fsx_read. */
enum {
  /* Also read pipes, character devices and sockets to their end (still
   * capped); without it only regular files are read, so a FIFO planted
   * where a data file belongs cannot block the reader. */
  FSX_ANY_FILE = 1u << 0,
  /* The path "-" reads standard input (implies FSX_ANY_FILE for it). */
  FSX_STDIN = 1u << 1,
  /* A NUL byte inside the content is an error (ERR_PARSE): for text that
   * is later handled as a C string, where a NUL would cut it silently. */
  FSX_NO_NUL = 1u << 2,
  /* The content is a secret (a password file): every buffer is wiped
   * before it is freed, also the partial ones on failure. */
  FSX_SECRET = 1u << 3,
};

/* Read all of path, at most cap bytes, into a new buffer: *out gets it
 * (NUL-terminated, free() it; wipe it first with FSX_SECRET), *len its
 * length without the terminator (len may be NULL).  On failure *out is
 * NULL and nothing is left allocated.
 *
 * The cap is checked before reading (by the file's size) and while
 * reading (a file that grows, a pipe), so no more than cap + 1 bytes are
 * ever held.  Messages name the path:
 *   ERR_NOTFOUND  "cannot open PATH: No such file or directory" (also
 *                 ENOTDIR)
 *   ERR_IO        "cannot open PATH: REASON", "cannot read PATH: REASON",
 *                 "PATH is a directory", "PATH is not a regular file",
 *                 "PATH is larger than CAP bytes"
 *   ERR_PARSE     "PATH holds a NUL byte" (FSX_NO_NUL)
 *   ERR_NOMEM     "out of memory reading PATH"
 * Thread rule: any thread. */
MLOPSD_WUR enum err_code fsx_read(const char *path, size_t cap,
                                  unsigned flags, char **out, size_t *len,
                                  struct err *e);

struct cJSON;

/* fsx_read (flags 0) of path, at most cap bytes, parsed as one JSON
 * document: *out (free with cJSON_Delete; NULL on failure).  Errors:
 * fsx_read's, and ERR_PARSE "PATH: invalid JSON at byte N of LEN (corrupt
 * or truncated)" naming where the parser stopped.  Thread rule: any
 * thread. */
MLOPSD_WUR enum err_code fsx_read_json(const char *path, size_t cap,
                                       struct cJSON **out, struct err *e);

/* Replace path with len bytes of data atomically: the data goes to a temp
 * file beside path (same directory, so the rename cannot cross file
 * systems), which is fsync'd, given mode 0644 and renamed over path; then
 * the directory is fsync'd so the rename survives a crash.  A reader, or
 * the file after a crash at any point, sees the old content or the whole
 * new content, never a mix.  On failure the temp file is removed and path
 * is untouched (a writer killed half-way may leave its ".NAME.tmp-XXXXXX"
 * beside path; path itself is still whole).  Errors: ERR_INVAL (path too long), ERR_IO ("write PATH:
 * REASON", "create temp for PATH: REASON").  Thread rule: any thread; two
 * writers of one path race, the last rename wins whole. */
MLOPSD_WUR enum err_code fsx_write_atomic(const char *path, const void *data,
                                          size_t len, struct err *e);

/* fsync the directory dir, so that entries created, renamed or removed in
 * it are durable.  Returns 0, or -1 with errno set. */
int fsx_fsync_dir(const char *dir);

/* 1 if s may be a model, alias, run id, spec or registry file name: it
 * matches [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} and holds no "..", so it can
 * be used as one path component and never escapes its directory.  0 for
 * NULL.  Thread rule: any thread. */
int fsx_name_valid(const char *s);

#endif
