/* schema.h - versioned SQL migrations (`mlopsd db init`).
 *
 * Migrations are files NNN_name.sql in one directory (default
 * sql/migrations; see schema_dir()).  NNN is the version, a positive
 * integer; the files are applied in version order, each once.  The table
 * schema_version (version, name, checksum, applied_at) records what was
 * applied, with the sha256 of the file: a file changed after it was applied
 * is an error naming it, never silently re-run or ignored.
 *
 * The files are the source of truth: nothing is embedded in the binary, so
 * an install or a container points the runner at its own copy.
 *
 * A file is split into statements by sqlsplit (sqlsplit.h: at every ';'
 * outside quotes and comments, MariaDB's lexing rules; no DELIMITER), and
 * the statements run one by one.  DDL commits implicitly in MariaDB, so a
 * migration is not atomic: a file that fails half-way is not recorded and
 * runs again from its start next time.  Migrations must therefore be
 * re-runnable (CREATE TABLE IF NOT EXISTS, CREATE INDEX IF NOT EXISTS...).
 *
 * Concurrent runners on one database (also through different nodes of a
 * Galera cluster) are serialised by the row `schema` of table
 * schema_lock (a 600 s lease taken by a committed UPDATE; schema.c).
 * Thread rule: all functions may be called from any thread; a db_conn by
 * one thread at a time (see db.h).
 */
#ifndef MLOPSD_SCHEMA_H
#define MLOPSD_SCHEMA_H

#include "mlopsd/db.h"
#include "mlopsd/err.h"

#define SCHEMA_DIR_DEFAULT "sql/migrations"
#define SCHEMA_DIR_ENV "MLOPSD_SQL_DIR"

/* One migration file. */
struct schema_file {
  int version;          /* NNN of the file name */
  char name[256];       /* file name, e.g. "001_course_tables.sql" */
  char path[1024];      /* dir + "/" + name */
  char checksum[65];    /* sha256 of the file's bytes, lower-case hex */
};

/* The directory to read: explicit if non-NULL and non-empty, else
 * $MLOPSD_SQL_DIR if set and non-empty, else SCHEMA_DIR_DEFAULT.  Returns
 * one of those strings (borrowed: the argument, the environment or a
 * static). */
const char *schema_dir(const char *explicit_dir);

/* List the migrations of dir, sorted by version, checksums computed.
 * *out is malloc'ed (free() it), *n its length (0 is possible).  Files not
 * ending in ".sql" and hidden files are ignored; a .sql file whose name is
 * not NNN_name.sql (name: [A-Za-z0-9_-]) or a version used twice is
 * ERR_INVAL; a missing directory ERR_IO. */
enum err_code schema_scan(const char *dir, struct schema_file **out, int *n,
                          struct err *e) MLOPSD_WUR;

/* Called once per migration applied (user, the file, statements run,
 * milliseconds taken).  May be NULL. */
typedef void (*schema_applied_fn)(void *user, const struct schema_file *f,
                                  int nstatements, double ms);

struct schema_result {
  int applied;  /* migrations applied by this call */
  int version;  /* highest version recorded afterwards (0: none) */
  int total;    /* migrations recorded afterwards */
};

/* Bring the database c is connected to up to date with the files of dir:
 * create schema_version if missing, check every recorded migration against
 * its file (ERR_INVAL "DIR/NAME: checksum mismatch ..." if changed,
 * ERR_NOTFOUND if the file is gone), then apply the missing ones in version
 * order, recording each after its last statement succeeded.  A failing
 * statement gives its server error prefixed with "FILE:LINE: " (ERR_DB or
 * ERR_DB_CONN).  ERR_TIMEOUT if another runner holds the lock for 60 s.
 * res may be NULL. */
enum err_code schema_migrate(struct db_conn *c, const char *dir,
                             schema_applied_fn cb, void *user,
                             struct schema_result *res,
                             struct err *e) MLOPSD_WUR;

/* Read-only check for the daemon at start-up: *current gets the highest
 * recorded version (0 if schema_version is missing or empty), *pending the
 * number of files of dir not recorded yet.  Checksum mismatches and
 * missing files are errors as in schema_migrate. */
enum err_code schema_status(struct db_conn *c, const char *dir,
                            int *current, int *pending,
                            struct err *e) MLOPSD_WUR;

#endif
