/* cron.h - 5-field cron expressions evaluated in an IANA time zone.
 *
 * Syntax (one expression, fields separated by blanks):
 *
 *   minute(0-59) hour(0-23) day-of-month(1-31) month(1-12) day-of-week(0-7)
 *
 * Each field is a comma list of items: `*`, `N`, `A-B`, each with an
 * optional step `/S` (star-slash-15 = every 15, 1-10/2, 5/15 =
 * 5-max/15).  Months may be written JAN-DEC and weekdays SUN-SAT (any
 * case); day-of-week 7 is Sunday like 0.  Macros:
 * @hourly, @daily = @midnight, @weekly, @monthly, @yearly = @annually.
 *
 * Day rule (Vixie cron): if day-of-month or day-of-week begins with `*`
 * (also star-slash-N), a day must match both fields; if both are
 * restricted, a day matching either fires ("0 0 13 * FRI" = every 13th
 * and every Friday).
 *
 * Time zones: cron_tz_load() reads the compiled zone file
 * $TZDIR/NAME (default /usr/share/zoneinfo/NAME) itself, transitions plus
 * the POSIX footer rule for the years after the last listed transition
 * (expanded up to year 2400; later instants keep the last offset).  No
 * setenv("TZ")/localtime: a loaded zone is immutable and thread safe.
 *
 * DST rule: the fire times are the local wall-clock minutes matching the
 * expression, each mapped to one instant:
 *  - a wall time that does not exist (spring-forward gap, Berlin
 *    2025-03-30 02:00-02:59) fires at the first instant after the gap
 *    (03:00 local); several gap minutes collapse into that one run;
 *  - a wall time that occurs twice (fall-back overlap, Berlin 2025-10-26
 *    02:00-02:59) fires once, at its first occurrence (summer time); the
 *    repeated hour does not fire again (an every-15-minutes job pauses
 *    for that hour instead of running twice).
 * The fire instants are strictly increasing; cron_next/cron_prev walk them.
 *
 * Thread rule: every function may be called from any thread; a loaded
 * cron_tz and a parsed cron_expr are read-only and may be shared.
 */
#ifndef MLOPSD_CRON_H
#define MLOPSD_CRON_H

#include <stdint.h>
#include <time.h>

#include "mlopsd/err.h"

/* A next/prev search gives up (ERR_NOTFOUND) after this many years.  The
 * longest real gap is 40 years: Feb 29 that must also be one weekday
 * (day-of-week written as a star step makes both day fields apply), e.g.
 * Monday Feb 29 2072 -> 2112 across 2100, so a schedule that fires at
 * all is always found. */
#define CRON_SEARCH_YEARS 40

/* A parsed expression: plain value, no resources; copy freely.
 * Read-only for users; filled by cron_parse. */
struct cron_expr {
  uint64_t minute;  /* bit n: minute n (0-59) */
  uint32_t hour;    /* bit n: hour n (0-23) */
  uint32_t dom;     /* bit n: day-of-month n (1-31) */
  uint16_t month;   /* bit n: month n (1-12) */
  uint8_t dow;      /* bit n: weekday n (0 = Sunday .. 6) */
  uint8_t dom_star; /* day-of-month field began with '*' */
  uint8_t dow_star; /* day-of-week field began with '*' */
};

/* Parse text into out.  ERR_PARSE with e = "schedule 'TEXT': minute 61 out
 * of range 0-59" (field named, value quoted) on a bad expression. */
enum err_code cron_parse(struct cron_expr *out, const char *text,
                         struct err *e) MLOPSD_WUR;

/* 1 if the local wall time (y, mon 1-12, d, h, mi) matches c. */
int cron_match(const struct cron_expr *c, int y, int mon, int d, int h,
               int mi);

/* ---- time zones --------------------------------------------------- */

struct cron_tz; /* opaque, immutable once loaded */

/* Load zone NAME ("Asia/Seoul", "UTC", "America/New_York").  NAME must be
 * a relative path without ".." ([A-Za-z0-9_+-./]).  "UTC" and "Etc/UTC"
 * work without tzdata.  ERR_NOTFOUND (no such zone), ERR_INVAL (bad name),
 * ERR_PARSE (corrupt file), ERR_NOMEM.  *out is set only on success. */
enum err_code cron_tz_load(struct cron_tz **out, const char *name,
                           struct err *e) MLOPSD_WUR;
void cron_tz_destroy(struct cron_tz *tz); /* NULL-safe */

/* The name given to cron_tz_load (borrowed, lives as long as tz).
 * In every function below tz == NULL means UTC. */
const char *cron_tz_name(const struct cron_tz *tz);

/* Offset from UTC in seconds (east positive) in effect at instant t. */
int cron_tz_offset(const struct cron_tz *tz, time_t t);

/* Broken-down local time. */
struct cron_civil {
  int year, month, day;      /* month 1-12, day 1-31 */
  int hour, minute, second;
  int wday;                  /* 0 = Sunday */
  int offset;                /* seconds east of UTC */
};
void cron_tz_civil(const struct cron_tz *tz, time_t t, struct cron_civil *out);

/* Local wall time -> instant, with the DST rule above (gap: first instant
 * after it; overlap: first occurrence).  Fields are not range-checked
 * beyond what the arithmetic needs: pass a valid date. */
time_t cron_tz_resolve(const struct cron_tz *tz, int y, int mon, int d,
                       int h, int mi, int s);

/* ---- fire times --------------------------------------------------- */

/* The first fire time strictly after `after`.  ERR_NOTFOUND if none
 * within CRON_SEARCH_YEARS ("0 0 30 2 *" never fires). */
enum err_code cron_next(const struct cron_expr *c, const struct cron_tz *tz,
                        time_t after, time_t *out, struct err *e) MLOPSD_WUR;

/* The latest fire time <= at (for catchup: false, "the latest missed
 * one").  ERR_NOTFOUND if none within CRON_SEARCH_YEARS before `at`. */
enum err_code cron_prev(const struct cron_expr *c, const struct cron_tz *tz,
                        time_t at, time_t *out, struct err *e) MLOPSD_WUR;

/* ---- formatting and dates ----------------------------------------- */

#define CRON_DATE_LEN 11 /* "2025-09-01" + NUL */
#define CRON_ISO_LEN 32  /* "2025-09-01T00:00:00+09:00" + NUL, room to spare */

/* t as a local date "YYYY-MM-DD" in tz. */
void cron_fmt_date(const struct cron_tz *tz, time_t t, char out[CRON_DATE_LEN]);
/* t as local ISO 8601 with offset, "2025-03-30T03:00:00+02:00". */
void cron_fmt_iso(const struct cron_tz *tz, time_t t, char out[CRON_ISO_LEN]);

/* Strict "YYYY-MM-DD" (a real date, year 1-9999).  ERR_INVAL otherwise. */
enum err_code cron_parse_date(const char *s, int *y, int *mon,
                              int *d) MLOPSD_WUR;

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int64_t cron_days_from_civil(int y, int mon, int d);
void cron_civil_from_days(int64_t days, int *y, int *mon, int *d);
int cron_days_in_month(int y, int mon);

#endif
