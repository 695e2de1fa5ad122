/* fuzz_cron.c - libFuzzer target for the cron parser and the fire-time
 * search (cron.h), in fixed time zones.
 *
 * Input: [4 bytes: instant][1 byte: zone][expression text].  The instant
 * is a second in 1990..2100; the zone one of UTC, Europe/Berlin,
 * America/New_York, Asia/Seoul, Australia/Lord_Howe (half-hour DST).  The
 * text goes to cron_parse and, when it parses, cron_next/cron_prev run
 * from the instant.  Also tried: cron_parse_date on the text.  Checked
 * beyond "no crash" (the fire times are a fixed increasing set, so):
 *   next > t, prev <= t, next(next - 1) == next, prev(next) == next,
 *   next(prev) == next, and in UTC the fire time matches the expression.
 */
#include "fuzz.h"

#include "mlopsd/cron.h"

static struct cron_tz *zones[5];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  static const char *const names[] = {"Europe/Berlin", "America/New_York",
                                      "Asia/Seoul", "Australia/Lord_Howe"};
  (void)argc;
  (void)argv;
  fuzz_quiet();
  for (int i = 0; i < 4; i++) {
    struct err e = {0};
    if (cron_tz_load(&zones[i + 1], names[i], &e) != ERR_OK) {
      fprintf(stderr, "fuzz_cron: %s (install tzdata)\n", e.msg);
      abort();
    }
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 5)
    return 0;
  uint32_t r = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
               (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
  /* 1990-01-01 plus up to ~110 years, at minute and odd-second places */
  time_t t = (time_t)631152000 + (time_t)(r % (110u * 366u * 86400u / 7u)) * 7;
  struct cron_tz *tz = zones[data[4] % 5];
  char *text = fuzz_strndup(data + 5, size - 5);

  int y, mon, d;
  if (cron_parse_date(text, &y, &mon, &d) == ERR_OK)
    FUZZ_CHECK(y >= 1 && y <= 9999 && mon >= 1 && mon <= 12 && d >= 1 &&
               d <= cron_days_in_month(y, mon));

  struct cron_expr c;
  struct err e = {0};
  if (cron_parse(&c, text, &e) != ERR_OK) {
    FUZZ_CHECK(e.msg[0]);
    free(text);
    return 0;
  }
  free(text);
  FUZZ_CHECK(c.minute && c.hour && c.dom && c.month && c.dow);
  FUZZ_CHECK(!(c.minute >> 60) && !(c.hour >> 24) && !(c.dom & 1) &&
             !(c.month & 1) && !(c.dow >> 7));

  time_t next, prev, x;
  enum err_code rn = cron_next(&c, tz, t, &next, &e);
  enum err_code rp = cron_prev(&c, tz, t, &prev, &e);
  FUZZ_CHECK(rn == ERR_OK || rn == ERR_NOTFOUND);
  FUZZ_CHECK(rp == ERR_OK || rp == ERR_NOTFOUND);
  if (rp == ERR_OK) {
    FUZZ_CHECK(prev <= t);
    FUZZ_CHECK(cron_prev(&c, tz, prev, &x, &e) == ERR_OK && x == prev);
  }
  if (rn != ERR_OK)
    return 0;
  FUZZ_CHECK(next > t);
  FUZZ_CHECK(cron_next(&c, tz, next - 1, &x, &e) == ERR_OK && x == next);
  FUZZ_CHECK(cron_prev(&c, tz, next, &x, &e) == ERR_OK && x == next);
  if (rp == ERR_OK)
    FUZZ_CHECK(cron_next(&c, tz, prev, &x, &e) == ERR_OK && x == next);

  struct cron_civil cv;
  cron_tz_civil(tz, next, &cv);
  if (!tz)
    FUZZ_CHECK(cron_match(&c, cv.year, cv.month, cv.day, cv.hour,
                          cv.minute) && cv.second == 0);
  char iso[CRON_ISO_LEN], date[CRON_DATE_LEN];
  cron_fmt_iso(tz, next, iso);
  cron_fmt_date(tz, next, date);
  FUZZ_CHECK(strlen(date) == 10 && strncmp(iso, date, 10) == 0);
  return 0;
}
