/* test_cron.c - cron expressions, time zones and fire times.
 *
 * The table of known answers was cross-checked against an independent
 * minute-by-minute evaluator written with python3's zoneinfo (same DST
 * rule: a gap fires once at the first instant after it, an overlap fires
 * at the first occurrence only), and the Feb 29 / never-firing cases by
 * calendar reasoning.
 */
#include "check.h"
#include "mlopsd/cron.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* "YYYY-MM-DDTHH:MM:SS+HH:MM" -> instant */
static time_t iso(const char *s)
{
  int y, mo, d, h, mi, se, oh, om;
  char sign;
  if (sscanf(s, "%d-%d-%dT%d:%d:%d%c%d:%d", &y, &mo, &d, &h, &mi, &se, &sign,
             &oh, &om) != 9)
    return (time_t)-1;
  int64_t off = (oh * 3600 + om * 60) * (sign == '-' ? -1 : 1);
  return (time_t)(cron_days_from_civil(y, mo, d) * 86400 + h * 3600 +
                  mi * 60 + se - off);
}

struct known {
  const char *op, *expr, *zone, *from, *want; /* want NULL: not found */
};

static const struct known table[] = {
    {"next", "*/15 * * * *", "UTC", "2025-01-01T00:00:00+00:00",
     "2025-01-01T00:15:00+00:00"},
    {"next", "*/15 * * * *", "UTC", "2025-01-01T00:07:30+00:00",
     "2025-01-01T00:15:00+00:00"},
    {"next", "0 * * * *", "UTC", "2025-12-31T23:00:00+00:00",
     "2026-01-01T00:00:00+00:00"},
    {"next", "1-10/2 * * * *", "UTC", "2025-01-01T00:09:00+00:00",
     "2025-01-01T01:01:00+00:00"},
    {"next", "5/15 * * * *", "UTC", "2025-01-01T00:50:00+00:00",
     "2025-01-01T01:05:00+00:00"},
    {"next", "0 0 31 * *", "UTC", "2025-04-01T00:00:00+00:00",
     "2025-05-31T00:00:00+00:00"},
    {"next", "0 0 31 * *", "UTC", "2025-01-31T00:00:00+00:00",
     "2025-03-31T00:00:00+00:00"},
    {"next", "0 12 13 * FRI", "UTC", "2025-06-01T00:00:00+00:00",
     "2025-06-06T12:00:00+00:00"},
    {"next", "0 12 13 * FRI", "UTC", "2025-06-06T12:00:00+00:00",
     "2025-06-13T12:00:00+00:00"},
    {"next", "0 0 */2 * MON", "UTC", "2025-06-01T00:00:00+00:00",
     "2025-06-09T00:00:00+00:00"},
    {"next", "0 0 1 * MON", "UTC", "2025-06-01T00:00:00+00:00",
     "2025-06-02T00:00:00+00:00"},
    {"next", "30 9 * * MON-FRI", "UTC", "2025-06-06T10:00:00+00:00",
     "2025-06-09T09:30:00+00:00"},
    {"next", "0 0 * * 7", "UTC", "2025-06-02T00:00:00+00:00",
     "2025-06-08T00:00:00+00:00"},
    {"next", "0 0 1 JAN,jul *", "UTC", "2025-02-01T00:00:00+00:00",
     "2025-07-01T00:00:00+00:00"},
    {"next", "0 0 * * sat,SUN", "UTC", "2025-06-02T00:00:00+00:00",
     "2025-06-07T00:00:00+00:00"},
    {"next", "0 0 * * 5-7", "UTC", "2025-06-02T00:00:00+00:00",
     "2025-06-06T00:00:00+00:00"},
    {"next", "@weekly", "UTC", "2025-06-04T00:00:00+00:00",
     "2025-06-08T00:00:00+00:00"},
    {"next", "@monthly", "UTC", "2025-06-15T00:00:00+00:00",
     "2025-07-01T00:00:00+00:00"},
    {"next", "@yearly", "UTC", "2025-06-15T00:00:00+00:00",
     "2026-01-01T00:00:00+00:00"},
    {"next", "@hourly", "UTC", "2025-06-15T10:59:59+00:00",
     "2025-06-15T11:00:00+00:00"},
    {"next", "59 23 31 12 *", "UTC", "2025-12-31T23:59:00+00:00",
     "2026-12-31T23:59:00+00:00"},
    {"next", "@daily", "Asia/Seoul", "2025-09-01T00:00:00+09:00",
     "2025-09-02T00:00:00+09:00"},
    {"next", "0 9 * * *", "Asia/Seoul", "2025-08-31T23:59:59+00:00",
     "2025-09-01T09:00:00+09:00"},
    {"next", "0 0 1 * *", "Asia/Seoul", "2025-08-31T15:00:00+00:00",
     "2025-10-01T00:00:00+09:00"},
    {"next", "30 2 * * *", "Europe/Berlin", "2025-03-29T03:00:00+01:00",
     "2025-03-30T03:00:00+02:00"},
    {"next", "30 2 * * *", "Europe/Berlin", "2025-03-30T03:00:00+02:00",
     "2025-03-31T02:30:00+02:00"},
    {"next", "0 * * * *", "Europe/Berlin", "2025-03-30T01:00:00+01:00",
     "2025-03-30T03:00:00+02:00"},
    {"next", "0 * * * *", "Europe/Berlin", "2025-03-30T03:00:00+02:00",
     "2025-03-30T04:00:00+02:00"},
    {"next", "*/15 * * * *", "Europe/Berlin", "2025-03-30T01:50:00+01:00",
     "2025-03-30T03:00:00+02:00"},
    {"next", "30 2 * * *", "Europe/Berlin", "2025-10-25T12:00:00+02:00",
     "2025-10-26T02:30:00+02:00"},
    {"next", "30 2 * * *", "Europe/Berlin", "2025-10-26T02:30:00+02:00",
     "2025-10-27T02:30:00+01:00"},
    {"next", "*/15 * * * *", "Europe/Berlin", "2025-10-26T02:45:00+02:00",
     "2025-10-26T03:00:00+01:00"},
    {"next", "*/15 * * * *", "Europe/Berlin", "2025-10-26T02:10:00+01:00",
     "2025-10-26T03:00:00+01:00"},
    {"next", "30 2 * * *", "Europe/Berlin", "2050-03-26T12:00:00+01:00",
     "2050-03-27T03:00:00+02:00"},
    {"next", "30 2 * * *", "America/New_York", "2025-03-08T12:00:00-05:00",
     "2025-03-09T03:00:00-04:00"},
    {"next", "30 1 * * *", "America/New_York", "2025-11-02T00:00:00-04:00",
     "2025-11-02T01:30:00-04:00"},
    {"next", "30 1 * * *", "America/New_York", "2025-11-02T01:30:00-04:00",
     "2025-11-03T01:30:00-05:00"},
    {"next", "0 0 * * *", "America/New_York", "2025-11-02T00:00:00-04:00",
     "2025-11-03T00:00:00-05:00"},
    {"next", "30 2 * * *", "Australia/Sydney", "2025-10-04T12:00:00+10:00",
     "2025-10-05T03:00:00+11:00"},
    {"prev", "0 0 * * *", "Asia/Seoul", "2025-09-03T10:00:00+09:00",
     "2025-09-03T00:00:00+09:00"},
    {"prev", "0 0 * * *", "Asia/Seoul", "2025-09-03T00:00:00+09:00",
     "2025-09-03T00:00:00+09:00"},
    {"prev", "0 0 31 * *", "UTC", "2025-05-15T00:00:00+00:00",
     "2025-03-31T00:00:00+00:00"},
    {"prev", "30 2 * * *", "Europe/Berlin", "2025-03-30T04:00:00+02:00",
     "2025-03-30T03:00:00+02:00"},
    {"prev", "30 2 * * *", "Europe/Berlin", "2025-10-26T02:40:00+01:00",
     "2025-10-26T02:30:00+02:00"},
    {"prev", "*/15 * * * *", "Europe/Berlin", "2025-10-26T02:20:00+01:00",
     "2025-10-26T02:45:00+02:00"},
    {"prev", "0 9 * * MON-FRI", "UTC", "2025-06-08T12:00:00+00:00",
     "2025-06-06T09:00:00+00:00"},
    {"prev", "0 * * * *", "America/New_York", "2025-11-02T01:30:00-05:00",
     "2025-11-02T01:00:00-04:00"},
    /* Feb 29 and never-firing expressions (calendar reasoning) */
    {"next", "0 0 29 2 *", "UTC", "2025-01-01T00:00:00+00:00",
     "2028-02-29T00:00:00+00:00"},
    {"next", "0 0 29 2 *", "UTC", "2096-03-01T00:00:00+00:00",
     "2104-02-29T00:00:00+00:00"}, /* 2100 is not a leap year */
    {"prev", "0 0 29 2 *", "UTC", "2025-01-01T00:00:00+00:00",
     "2024-02-29T00:00:00+00:00"},
    {"next", "0 0 30 2 *", "UTC", "2025-01-01T00:00:00+00:00", NULL},
    {"prev", "0 0 31 4,6,9,11 *", "Asia/Seoul", "2025-01-01T00:00:00+09:00",
     NULL},
    {"next", "0 0 29 2 MON", "UTC", "2025-01-01T00:00:00+00:00",
     "2025-02-03T00:00:00+00:00"}, /* both restricted: either matches */
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

static struct cron_tz *load(const char *zone)
{
  struct cron_tz *tz = NULL;
  struct err e = {0};
  if (cron_tz_load(&tz, zone, &e) != ERR_OK)
    fprintf(stderr, "  cannot load %s: %s\n", zone, e.msg);
  return tz;
}

TEST(known_answers)
{
  CHECK(NTABLE >= 40);
  for (size_t i = 0; i < NTABLE; i++) {
    const struct known *k = &table[i];
    struct cron_expr c;
    struct err e = {0};
    struct cron_tz *tz = load(k->zone);
    REQUIRE(tz);
    CHECK_EQ_INT(cron_parse(&c, k->expr, &e), ERR_OK);
    time_t out = 0, from = iso(k->from);
    enum err_code rc = k->op[0] == 'n' ? cron_next(&c, tz, from, &out, &e)
                                       : cron_prev(&c, tz, from, &out, &e);
    if (!k->want) {
      if (rc != ERR_NOTFOUND)
        fprintf(stderr, "  case %zu: %s %s: expected not found\n", i, k->op,
                k->expr);
      CHECK_EQ_INT(rc, ERR_NOTFOUND);
    } else {
      char got[CRON_ISO_LEN];
      CHECK_EQ_INT(rc, ERR_OK);
      cron_fmt_iso(tz, out, got);
      if (strcmp(got, k->want) != 0)
        fprintf(stderr, "  case %zu: %s '%s' %s from %s\n", i, k->op, k->expr,
                k->zone, k->from);
      CHECK_EQ_STR(got, k->want);
      CHECK_EQ_INT(out, iso(k->want));
    }
    cron_tz_destroy(tz);
  }
}

static void parse_err(const char *expr, const char *want)
{
  struct cron_expr c;
  struct err e = {0};
  CHECK_EQ_INT(cron_parse(&c, expr, &e), ERR_PARSE);
  CHECK_EQ_STR(e.msg, want);
}

TEST(parse_errors)
{
  parse_err("61 * * * *", "schedule '61 * * * *': minute 61 out of range 0-59");
  parse_err("* 24 * * *", "schedule '* 24 * * *': hour 24 out of range 0-23");
  parse_err("0 0 0 * *",
            "schedule '0 0 0 * *': day-of-month 0 out of range 1-31");
  parse_err("0 0 * 13 *", "schedule '0 0 * 13 *': month 13 out of range 1-12");
  parse_err("0 0 * * 8",
            "schedule '0 0 * * 8': day-of-week 8 out of range 0-7");
  parse_err("0 0 * *", "schedule '0 0 * *': expected 5 fields (minute hour "
                       "day-of-month month day-of-week), got 4");
  parse_err("0 0 * * * *", "schedule '0 0 * * * *': expected 5 fields "
                           "(minute hour day-of-month month day-of-week), "
                           "got 6");
  parse_err("0 0 * * FOO",
            "schedule '0 0 * * FOO': day-of-week 'FOO' is not a number or "
            "name");
  parse_err("0 0 * MONDAY *",
            "schedule '0 0 * MONDAY *': month 'MONDAY' is not a number or "
            "name");
  parse_err("x * * * *", "schedule 'x * * * *': minute 'x' is not a number");
  parse_err("*/0 * * * *",
            "schedule '*/0 * * * *': minute step in '*/0' must be a number "
            ">= 1");
  parse_err("0 10-2 * * *",
            "schedule '0 10-2 * * *': hour range 10-2 is backwards (write it "
            "as a list)");
  parse_err("1,,2 * * * *",
            "schedule '1,,2 * * * *': minute has an empty list item");
  parse_err("1, * * * *", "schedule '1, * * * *': minute has an empty list "
                          "item");
  parse_err("@reboot", "schedule '@reboot': unknown macro '@reboot' (use "
                       "@hourly, @daily, @midnight, @weekly, @monthly, "
                       "@yearly or @annually)");
  parse_err("0 0 L * *",
            "schedule '0 0 L * *': day-of-month 'L' is not a number");
  parse_err("", "schedule '' is empty");
  parse_err("5-7-9 * * * *",
            "schedule '5-7-9 * * * *': minute has unexpected '-' in '5-7-9'");
}

TEST(parse_bits)
{
  struct cron_expr c;
  struct err e = {0};
  REQUIRE(cron_parse(&c, "*/15 1-10/3 1,15 jan-MAR,Dec mon-fri", &e) == 0);
  CHECK(c.minute == ((1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45)));
  CHECK(c.hour == ((1u << 1) | (1u << 4) | (1u << 7) | (1u << 10)));
  CHECK(c.dom == ((1u << 1) | (1u << 15)));
  CHECK(c.month == ((1u << 1) | (1u << 2) | (1u << 3) | (1u << 12)));
  CHECK(c.dow == 0x3e);
  CHECK(!c.dom_star && !c.dow_star);
  REQUIRE(cron_parse(&c, "  @DAILY  ", &e) == 0);
  CHECK(c.minute == 1 && c.hour == 1 && c.dom_star && c.dow_star);
  REQUIRE(cron_parse(&c, "0 0 * * 7", &e) == 0);
  CHECK(c.dow == 1); /* 7 is Sunday */
  REQUIRE(cron_parse(&c, "0 0 * * 0-7", &e) == 0);
  CHECK(c.dow == 0x7f);
  REQUIRE(cron_parse(&c, "0\t0\t*/2 * *", &e) == 0);
  CHECK(c.dom_star && c.dow_star);
  CHECK(c.dom == 0xAAAAAAAAu); /* odd days 1..31 */
  REQUIRE(cron_parse(&c, "50/20 * * * *", &e) == 0);
  CHECK(c.minute == (1ull << 50)); /* step beyond the range: start only */
  CHECK(cron_match(&c, 2025, 1, 1, 0, 50));
  CHECK(!cron_match(&c, 2025, 1, 1, 0, 10));
  CHECK(!cron_match(&c, 2025, 2, 30, 0, 50));
}

TEST(tz_load)
{
  struct cron_tz *tz = NULL;
  struct err e = {0};
  CHECK_EQ_INT(cron_tz_load(&tz, "Mars/Olympus_Mons", &e), ERR_NOTFOUND);
  CHECK(strstr(e.msg, "Mars/Olympus_Mons") != NULL);
  CHECK(tz == NULL);
  CHECK_EQ_INT(cron_tz_load(&tz, "../../etc/passwd", &e), ERR_INVAL);
  CHECK_EQ_INT(cron_tz_load(&tz, "/etc/localtime", &e), ERR_INVAL);
  CHECK_EQ_INT(cron_tz_load(&tz, "", &e), ERR_INVAL);
  CHECK_EQ_INT(cron_tz_load(&tz, "Asia/Seoul", &e), ERR_OK);
  REQUIRE(tz);
  CHECK_EQ_STR(cron_tz_name(tz), "Asia/Seoul");
  CHECK_EQ_INT(cron_tz_offset(tz, iso("2025-06-01T00:00:00+00:00")), 9 * 3600);
  /* Seoul had DST in 1988 (the Olympics): the table must have it */
  CHECK_EQ_INT(cron_tz_offset(tz, iso("1988-06-01T00:00:00+00:00")),
               10 * 3600);
  cron_tz_destroy(tz);
  tz = NULL;
  cron_tz_destroy(NULL);
  CHECK_EQ_STR(cron_tz_name(NULL), "UTC");

  /* a directory is not a zone file */
  CHECK(cron_tz_load(&tz, "Europe", &e) != ERR_OK);
  CHECK(tz == NULL);

  /* far future: offsets come from the footer rule */
  REQUIRE(cron_tz_load(&tz, "America/New_York", &e) == ERR_OK);
  CHECK_EQ_INT(cron_tz_offset(tz, iso("2099-07-04T12:00:00+00:00")),
               -4 * 3600);
  CHECK_EQ_INT(cron_tz_offset(tz, iso("2099-12-25T12:00:00+00:00")),
               -5 * 3600);
  struct cron_civil cv;
  cron_tz_civil(tz, iso("2025-11-02T05:30:00+00:00"), &cv);
  CHECK(cv.year == 2025 && cv.month == 11 && cv.day == 2 && cv.hour == 1 &&
        cv.minute == 30 && cv.offset == -4 * 3600 && cv.wday == 0);
  cron_tz_destroy(tz);
}

/* A TZif version 2 file with one type (UTC, offset 0) in both blocks and
 * footer: the footer's rule decides every instant after the (absent)
 * transitions. */
static int write_tzif(const char *path, const char *footer)
{
  static const unsigned char block[] = {
      'T', 'Z', 'i', 'f', '2', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
      0, 0, 0, 0,  /* isutcnt */
      0, 0, 0, 0,  /* isstdcnt */
      0, 0, 0, 0,  /* leapcnt */
      0, 0, 0, 0,  /* timecnt */
      0, 0, 0, 1,  /* typecnt */
      0, 0, 0, 4,  /* charcnt */
      0, 0, 0, 0, 0, 0, /* utoff 0, isdst 0, desigidx 0 */
      'U', 'T', 'C', 0};
  FILE *f = fopen(path, "wb");
  if (!f)
    return -1;
  int ok = fwrite(block, sizeof(block), 1, f) == 1 &&
           fwrite(block, sizeof(block), 1, f) == 1 &&
           fprintf(f, "\n%s\n", footer) > 0;
  return fclose(f) == 0 && ok ? 0 : -1;
}

/* The footer's offsets are held to +-26 h like the file's own (fuzz_tzif
 * found "UTC42" loaded as UTC-42 h); its rule times keep RFC 8536's 167
 * hours. */
TEST(tz_footer_offsets)
{
  char dir[] = "/tmp/mlopsd-test-tzif.XXXXXX", sub[64], path[96];
  REQUIRE(mkdtemp(dir));
  snprintf(sub, sizeof(sub), "%s/T", dir);
  REQUIRE(mkdir(sub, 0700) == 0);
  snprintf(path, sizeof(path), "%s/Zone", sub);
  const char *old = getenv("TZDIR");
  char *keep = old ? strdup(old) : NULL;
  REQUIRE(setenv("TZDIR", dir, 1) == 0);
  static const struct {
    const char *footer;
    int ok, off; /* off: UTC offset in 2100, when ok */
  } cases[] = {
      {"UTC0", 1, 0},
      {"<+14>-14", 1, 14 * 3600},
      {"XXX-26", 1, 26 * 3600},
      {"UTC42", 0, 0},
      {"XXX-27", 0, 0},
      {"EST5EDT27", 0, 0},
      {"EST5EDT,M3.2.0/-167,M11.1.0/167", 1, -4 * 3600},
      {"EST5EDT,M3.2.0/168,M11.1.0", 0, 0},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    REQUIRE(write_tzif(path, cases[i].footer) == 0);
    struct cron_tz *tz = NULL;
    struct err e = {0};
    enum err_code rc = cron_tz_load(&tz, "T/Zone", &e);
    if (!cases[i].ok) {
      CHECK_EQ_INT(rc, ERR_PARSE);
      CHECK(strstr(e.msg, "bad footer rule") != NULL);
      CHECK(tz == NULL);
      continue;
    }
    CHECK_EQ_INT(rc, ERR_OK);
    if (tz)
      CHECK_EQ_INT(cron_tz_offset(tz, iso("2100-07-01T12:00:00+00:00")),
                   cases[i].off);
    cron_tz_destroy(tz);
  }
  if (keep)
    setenv("TZDIR", keep, 1);
  else
    unsetenv("TZDIR");
  free(keep);
  unlink(path);
  rmdir(sub);
  rmdir(dir);
}

TEST(tz_resolve)
{
  struct cron_tz *tz = load("Europe/Berlin");
  REQUIRE(tz);
  char buf[CRON_ISO_LEN];
  /* gap: 02:30 does not exist, maps to the first instant after it */
  cron_fmt_iso(tz, cron_tz_resolve(tz, 2025, 3, 30, 2, 30, 0), buf);
  CHECK_EQ_STR(buf, "2025-03-30T03:00:00+02:00");
  /* overlap: first occurrence */
  cron_fmt_iso(tz, cron_tz_resolve(tz, 2025, 10, 26, 2, 30, 0), buf);
  CHECK_EQ_STR(buf, "2025-10-26T02:30:00+02:00");
  cron_fmt_iso(tz, cron_tz_resolve(tz, 2025, 10, 26, 3, 0, 0), buf);
  CHECK_EQ_STR(buf, "2025-10-26T03:00:00+01:00");
  cron_fmt_iso(tz, cron_tz_resolve(tz, 2025, 7, 1, 0, 0, 0), buf);
  CHECK_EQ_STR(buf, "2025-07-01T00:00:00+02:00");
  cron_fmt_date(tz, iso("2025-06-30T22:30:00+00:00"), buf);
  CHECK_EQ_STR(buf, "2025-07-01");
  cron_fmt_iso(NULL, 0, buf);
  CHECK_EQ_STR(buf, "1970-01-01T00:00:00+00:00");
  cron_tz_destroy(tz);

  tz = load("America/St_Johns"); /* -03:30 / -02:30 */
  REQUIRE(tz);
  cron_fmt_iso(tz, iso("2025-01-15T12:00:00+00:00"), buf);
  CHECK_EQ_STR(buf, "2025-01-15T08:30:00-03:30");
  cron_tz_destroy(tz);
}

/* Walking forward with cron_next visits strictly increasing instants and
 * cron_prev of each one is itself; over a whole year across both DST
 * changes an hourly job fires 8760 - 1 times in Berlin (the repeated hour
 * fires once) and a daily one 365 times. */
TEST(walk_year)
{
  struct cron_tz *tz = load("Europe/Berlin");
  REQUIRE(tz);
  struct cron_expr hourly, daily230;
  struct err e = {0};
  REQUIRE(cron_parse(&hourly, "@hourly", &e) == 0);
  REQUIRE(cron_parse(&daily230, "30 2 * * *", &e) == 0);
  time_t start = iso("2025-01-01T00:00:00+01:00");
  time_t end = iso("2026-01-01T00:00:00+01:00");
  int n = 0, bad = 0;
  for (time_t t = start;;) {
    time_t nx, pv;
    if (cron_next(&hourly, tz, t, &nx, &e) != ERR_OK || nx <= t) {
      bad++;
      break;
    }
    if (nx >= end)
      break;
    if (cron_prev(&hourly, tz, nx, &pv, &e) != ERR_OK || pv != nx)
      bad++;
    if (cron_prev(&hourly, tz, nx - 1, &pv, &e) != ERR_OK || pv >= nx)
      bad++;
    n++;
    t = nx;
  }
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(n, 8760 - 1 - 1); /* minus the skipped repeat; start excl. */
  n = 0;
  for (time_t t = start;;) {
    time_t nx;
    if (cron_next(&daily230, tz, t, &nx, &e) != ERR_OK || nx >= end)
      break;
    n++;
    t = nx;
  }
  CHECK_EQ_INT(n, 365);
  cron_tz_destroy(tz);
}

TEST(dates)
{
  int y, m, d;
  CHECK_EQ_INT(cron_parse_date("2024-02-29", &y, &m, &d), ERR_OK);
  CHECK(y == 2024 && m == 2 && d == 29);
  CHECK_EQ_INT(cron_parse_date("2025-02-29", &y, &m, &d), ERR_INVAL);
  CHECK_EQ_INT(cron_parse_date("2025-9-01", &y, &m, &d), ERR_INVAL);
  CHECK_EQ_INT(cron_parse_date("2025-09-01x", &y, &m, &d), ERR_INVAL);
  CHECK_EQ_INT(cron_parse_date("2025-13-01", &y, &m, &d), ERR_INVAL);
  CHECK_EQ_INT(cron_parse_date(NULL, &y, &m, &d), ERR_INVAL);
  CHECK_EQ_INT(cron_days_from_civil(1970, 1, 1), 0);
  CHECK_EQ_INT(cron_days_from_civil(2000, 3, 1), 11017);
  CHECK_EQ_INT(cron_days_from_civil(1969, 12, 31), -1);
  cron_civil_from_days(-719468, &y, &m, &d);
  CHECK(y == 0 && m == 3 && d == 1);
  for (int64_t k = -800000; k < 3000000; k += 997) {
    cron_civil_from_days(k, &y, &m, &d);
    if (cron_days_from_civil(y, m, d) != k) {
      CHECK(0);
      break;
    }
  }
  CHECK_EQ_INT(cron_days_in_month(2100, 2), 28);
  CHECK_EQ_INT(cron_days_in_month(2000, 2), 29);
}

int main(void)
{
  RUN(known_answers);
  RUN(parse_errors);
  RUN(parse_bits);
  RUN(tz_load);
  RUN(tz_footer_offsets);
  RUN(tz_resolve);
  RUN(walk_year);
  RUN(dates);
  return check_done();
}
