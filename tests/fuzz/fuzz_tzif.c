/* fuzz_tzif.c - libFuzzer target for the time-zone file reader of the
 * scheduler (cron_tz_load, cron.h): mlopsd parses compiled TZif files
 * itself (transitions and the POSIX footer rule), so a damaged or
 * unexpected file under $TZDIR goes through its own code.
 *
 * Input: the bytes of a TZif file, written as $TZDIR/Fuzz/Zone (TZDIR is
 * the scratch directory) and loaded.  A zone that loads drives the
 * fire-time search of a few schedules from a few instants.  Checked beyond
 * "no crash": offsets stay within +-26 h, local time round-trips through
 * cron_tz_resolve outside transitions, and the fire-time contract of
 * fuzz_cron (next > t, next(next - 1) == next, prev(next) == next).
 */
#include "fuzz.h"

#include "mlopsd/cron.h"

static char path[600];
static struct cron_expr exprs[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  static const char *const sched[] = {"0 3 * * *", "*/15 * * * *",
                                      "30 2 * 3,10 SUN", "0 0 29 2 *"};
  char p[600];
  (void)argc;
  (void)argv;
  fuzz_quiet();
  const char *d = fuzz_dir("tzif");
  setenv("TZDIR", d, 1);
  snprintf(p, sizeof(p), "%s/Fuzz", d);
  FUZZ_CHECK(mkdir(p, 0700) == 0);
  snprintf(path, sizeof(path), "%s/Fuzz/Zone", d);
  for (int i = 0; i < 4; i++) {
    struct err e = {0};
    FUZZ_CHECK(cron_parse(&exprs[i], sched[i], &e) == ERR_OK);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct cron_tz *tz = NULL;
  struct err e = {0};
  fuzz_write(path, data, size);
  if (cron_tz_load(&tz, "Fuzz/Zone", &e) != ERR_OK) {
    FUZZ_CHECK(tz == NULL && e.msg[0]);
    return 0;
  }
  FUZZ_CHECK(strcmp(cron_tz_name(tz), "Fuzz/Zone") == 0);
  static const time_t at[] = {-2208988800, 0, 1743296400, 1761440400,
                              4102444800, 13569465600};
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
    int off = cron_tz_offset(tz, at[i]);
    FUZZ_CHECK(off >= -93600 && off <= 93600);
    struct cron_civil cv;
    cron_tz_civil(tz, at[i], &cv);
    FUZZ_CHECK(cv.month >= 1 && cv.month <= 12 && cv.day >= 1 &&
               cv.day <= 31 && cv.hour >= 0 && cv.hour < 24);
    /* away from transitions local time maps back to the same instant */
    if (cron_tz_offset(tz, at[i] - 86400 * 2) == off &&
        cron_tz_offset(tz, at[i] + 86400 * 2) == off)
      FUZZ_CHECK(cron_tz_resolve(tz, cv.year, cv.month, cv.day, cv.hour,
                                 cv.minute, cv.second) == at[i]);
    if (at[i] > 4102444800) /* the search is for real dates */
      continue;
    for (int k = 0; k < 4; k++) {
      time_t next, x;
      if (cron_next(&exprs[k], tz, at[i], &next, &e) != ERR_OK)
        continue;
      FUZZ_CHECK(next > at[i]);
      FUZZ_CHECK(cron_next(&exprs[k], tz, next - 1, &x, &e) == ERR_OK &&
                 x == next);
      FUZZ_CHECK(cron_prev(&exprs[k], tz, next, &x, &e) == ERR_OK &&
                 x == next);
    }
  }
  cron_tz_destroy(tz);
  return 0;
}
