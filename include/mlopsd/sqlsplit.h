/* sqlsplit.h - split a SQL script into statements, MariaDB lexing rules.
 *
 * The sql task runs a script statement by statement (one round trip each,
 * rows affected logged per statement), so the script must be cut on the `;`
 * that end statements and on no other: not inside 'strings' ('' and \'
 * escapes), "strings", `identifiers` (`` escape), -- comments (a `--`
 * followed by a blank or the end, as in MariaDB), # comments and block
 * comments.  Empty statements and statements made only of comments are
 * dropped.  Executable comments (slash-star-! and slash-star-M!) count as
 * code, as MariaDB runs them.  The mysql client's DELIMITER command is not
 * SQL and is rejected with its line, so stored-procedure bodies containing
 * `;` cannot be created through a split script.
 *
 * The scanner is exported too: tmpl uses it to know whether a template tag
 * stands inside a quoted string or a comment.
 *
 * Thread rule: pure functions, any thread.
 */
#ifndef MLOPSD_SQLSPLIT_H
#define MLOPSD_SQLSPLIT_H

#include <stddef.h>

#include "mlopsd/err.h"

enum sqlsplit_ctx {
  SQLSPLIT_CODE = 0,
  SQLSPLIT_SQUOTE,        /* inside '...' */
  SQLSPLIT_DQUOTE,        /* inside "..." */
  SQLSPLIT_BACKTICK,      /* inside `...` */
  SQLSPLIT_LINE_COMMENT,  /* after -- or # up to the end of the line */
  SQLSPLIT_BLOCK_COMMENT, /* inside a block comment */
};

/* Incremental scanner over a whole text held by the caller (borrowed). */
struct sqlsplit_scan {
  const char *s;
  size_t len;
  size_t pos;             /* bytes consumed */
  enum sqlsplit_ctx ctx;  /* context after the consumed bytes */
  int line;               /* 1-based line of s[pos] */
  int ctx_line;           /* line where the current quote/comment began */
  int exec_comment;       /* current block comment is executable */
};

void sqlsplit_scan_init(struct sqlsplit_scan *sc, const char *s, size_t len);

/* Advance to byte offset off (>= the previous call's) and return the
 * context the byte at off is read in: CODE for the opening quote of a
 * string, SQUOTE for the bytes after it up to its closing quote.  An
 * escape pair ('' or \x) is consumed whole, so an off inside it reports
 * the string. */
enum sqlsplit_ctx sqlsplit_scan_to(struct sqlsplit_scan *sc, size_t off);

/* Name of a context for messages ("a '...' string", "a -- comment"). */
const char *sqlsplit_ctx_name(enum sqlsplit_ctx ctx);

/* One statement: sql is a NUL-terminated copy without the `;`, leading
 * blanks/comments and trailing blanks. */
struct sqlsplit_stmt {
  char *sql;
  int line;       /* 1-based line of its first character in the script */
  size_t off;     /* byte offset of that character in the script */
  int nparams;    /* `?` placeholders outside strings and comments */
};

struct sqlsplit_list {
  struct sqlsplit_stmt *v;
  size_t n;
};

/* Split sql (NUL-terminated).  On success *out holds the statements
 * (possibly none); free with sqlsplit_list_free.  ERR_PARSE "line N: a
 * '...' string is never closed" (or comment / DELIMITER), ERR_NOMEM.  On
 * error *out is empty. */
enum err_code sqlsplit_split(const char *sql, struct sqlsplit_list *out,
                             struct err *e) MLOPSD_WUR;
void sqlsplit_list_free(struct sqlsplit_list *l); /* NULL-safe, resets */

#endif
