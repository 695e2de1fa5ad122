/* cron.c - cron expressions, IANA time zones and fire-time search.
 *
 * Why our own zone reader: the C library only evaluates zones through the
 * process-wide TZ variable (setenv + tzset + localtime_r), which is neither
 * thread safe nor able to hold two zones at once.  The compiled zone files
 * (RFC 8536 "TZif") are simple: a list of transition instants with the UTC
 * offset after each, and a POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3")
 * for the years after the list.  We expand that rule into more transitions
 * at load time so every lookup is one binary search in one sorted array.
 *
 * Fire times are searched on "wall seconds" (local civil time counted like
 * a UTC epoch, no offsets): the next matching wall minute is found field by
 * field (month, day, hour, minute), then mapped to an instant with the DST
 * rule of cron.h.  That mapping is monotonic, which is what makes "the
 * first matching wall time after the current wall time" the right answer
 * except inside a repeated (fall-back) hour, handled explicitly.
 */
#include "mlopsd/cron.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mlopsd/fsx.h"

/* ------------------------------------------------------------------ */
/* civil calendar (proleptic Gregorian, H. Hinnant's algorithms)       */

static int64_t floor_div(int64_t a, int64_t b)
{
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0)))
    q--;
  return q;
}

int64_t cron_days_from_civil(int y, int mon, int d)
{
  int64_t yy = (int64_t)y - (mon <= 2);
  int64_t era = floor_div(yy, 400);
  int64_t yoe = yy - era * 400;
  int64_t doy = (153 * (mon + (mon > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void cron_civil_from_days(int64_t days, int *y, int *mon, int *d)
{
  int64_t z = days + 719468;
  int64_t era = floor_div(z, 146097);
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *mon = m;
  *y = (int)(yoe + era * 400 + (m <= 2));
}

static int is_leap(int y)
{
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int cron_days_in_month(int y, int mon)
{
  static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (mon < 1 || mon > 12)
    return 0;
  return mon == 2 && is_leap(y) ? 29 : dim[mon - 1];
}

static int weekday(int64_t days) /* 0 = Sunday; 1970-01-01 was Thursday */
{
  return (int)(((days % 7) + 11) % 7);
}

/* ------------------------------------------------------------------ */
/* expression parser                                                   */

struct field_def {
  const char *name;
  int min, max;
  const char *const *names; /* 3-letter names for min.., or NULL */
};

static const char *const month_names[] = {"JAN", "FEB", "MAR", "APR",
                                          "MAY", "JUN", "JUL", "AUG",
                                          "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const dow_names[] = {"SUN", "MON", "TUE", "WED",
                                        "THU", "FRI", "SAT", NULL};

static const struct field_def fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, dow_names},
};

/* Read a number or a name at *p (up to end).  Returns 0 and sets *v, or -1
 * with e filled. */
static int parse_value(const char *text, const struct field_def *fd,
                       const char **p, const char *end, int *v,
                       struct err *e)
{
  const char *s = *p;
  if (s < end && isdigit((unsigned char)*s)) {
    long n = 0;
    while (s < end && isdigit((unsigned char)*s)) {
      if (n < 100000)
        n = n * 10 + (*s - '0');
      s++;
    }
    if (n < fd->min || n > fd->max) {
      err_set(e, ERR_PARSE, "schedule '%s': %s %ld out of range %d-%d", text,
              fd->name, n, fd->min, fd->max);
      return -1;
    }
    *v = (int)n;
    *p = s;
    return 0;
  }
  const char *w = s;
  while (s < end && isalpha((unsigned char)*s))
    s++;
  if (fd->names && s - w == 3) {
    for (int i = 0; fd->names[i]; i++)
      if (strncasecmp(w, fd->names[i], 3) == 0) {
        *v = fd->min + i;
        *p = s;
        return 0;
      }
  }
  /* show the offending token up to the next separator */
  const char *t = w;
  while (t < end && *t != '-' && *t != '/' && *t != ',')
    t++;
  if (t == w)
    t = w < end ? w + 1 : w;
  if (t == w)
    err_set(e, ERR_PARSE, "schedule '%s': %s has an empty value", text,
            fd->name);
  else
    err_set(e, ERR_PARSE, "schedule '%s': %s '%.*s' is not a %s", text,
            fd->name, (int)(t - w), w,
            fd->names ? "number or name" : "number");
  return -1;
}

static int parse_field(const char *text, const struct field_def *fd,
                       const char *f, const char *end, uint64_t *bits,
                       struct err *e)
{
  *bits = 0;
  const char *p = f;
  for (;;) {
    const char *item = p;
    int lo, hi, step = 1;
    if (p < end && *p == ',') {
      err_set(e, ERR_PARSE, "schedule '%s': %s has an empty list item",
              text, fd->name);
      return -1;
    }
    if (p < end && *p == '*') {
      lo = fd->min;
      hi = fd->max == 7 ? 6 : fd->max;
      p++;
    } else {
      if (parse_value(text, fd, &p, end, &lo, e) < 0)
        return -1;
      hi = lo;
      if (p < end && *p == '-') {
        p++;
        if (parse_value(text, fd, &p, end, &hi, e) < 0)
          return -1;
        if (hi < lo) {
          err_set(e, ERR_PARSE,
                  "schedule '%s': %s range %.*s is backwards (write it as "
                  "a list)",
                  text, fd->name, (int)(p - item), item);
          return -1;
        }
      } else if (p < end && *p == '/') {
        hi = fd->max; /* "5/15" = 5-max/15 */
      }
    }
    if (p < end && *p == '/') {
      p++;
      long n = 0;
      const char *d0 = p;
      while (p < end && isdigit((unsigned char)*p)) {
        if (n < 100000)
          n = n * 10 + (*p - '0');
        p++;
      }
      if (p == d0 || n < 1) {
        err_set(e, ERR_PARSE,
                "schedule '%s': %s step in '%.*s' must be a number >= 1",
                text, fd->name, (int)(p - item + (p == d0 && p < end)),
                item);
        return -1;
      }
      step = n > fd->max + 1 ? fd->max + 1 : (int)n;
    }
    if (p < end && *p != ',') {
      err_set(e, ERR_PARSE, "schedule '%s': %s has unexpected '%c' in '%.*s'",
              text, fd->name, *p, (int)(end - item), item);
      return -1;
    }
    for (int v = lo; v <= hi; v += step)
      *bits |= (uint64_t)1 << (v == 7 && fd->max == 7 ? 0 : v);
    if (p >= end)
      return 0;
    p++; /* ',' */
    if (p >= end) {
      err_set(e, ERR_PARSE, "schedule '%s': %s has an empty list item",
              text, fd->name);
      return -1;
    }
  }
}

static const struct {
  const char *name;
  const char *expr;
} macros[] = {
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"}, {"@weekly", "0 0 * * 0"},
    {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static enum err_code parse_fields(struct cron_expr *out, const char *text,
                                  const char *s, struct err *e)
{
  const char *beg[6], *end[6];
  int n = 0;
  const char *p = s;
  for (;;) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    if (n < 6)
      beg[n] = p;
    while (*p && *p != ' ' && *p != '\t')
      p++;
    if (n < 6)
      end[n] = p;
    n++;
  }
  if (n != 5)
    return err_set(e, ERR_PARSE,
                   "schedule '%s': expected 5 fields (minute hour "
                   "day-of-month month day-of-week), got %d",
                   text, n);
  uint64_t b[5];
  for (int i = 0; i < 5; i++)
    if (parse_field(text, &fields[i], beg[i], end[i], &b[i], e) < 0)
      return ERR_PARSE;
  memset(out, 0, sizeof(*out));
  out->minute = b[0];
  out->hour = (uint32_t)b[1];
  out->dom = (uint32_t)b[2];
  out->month = (uint16_t)b[3];
  out->dow = (uint8_t)b[4];
  out->dom_star = *beg[2] == '*';
  out->dow_star = *beg[4] == '*';
  return ERR_OK;
}

enum err_code cron_parse(struct cron_expr *out, const char *text,
                         struct err *e)
{
  if (!text)
    return err_set(e, ERR_PARSE, "schedule is empty");
  const char *s = text;
  while (*s == ' ' || *s == '\t')
    s++;
  if (!*s)
    return err_set(e, ERR_PARSE, "schedule '%s' is empty", text);
  if (*s == '@') {
    size_t len = strcspn(s, " \t");
    const char *rest = s + len;
    while (*rest == ' ' || *rest == '\t')
      rest++;
    for (size_t i = 0; i < sizeof(macros) / sizeof(macros[0]); i++)
      if (strlen(macros[i].name) == len &&
          strncasecmp(s, macros[i].name, len) == 0 && !*rest)
        return parse_fields(out, text, macros[i].expr, e);
    return err_set(e, ERR_PARSE,
                   "schedule '%s': unknown macro '%.*s' (use @hourly, "
                   "@daily, @midnight, @weekly, @monthly, @yearly or "
                   "@annually)",
                   text, (int)len, s);
  }
  return parse_fields(out, text, s, e);
}

static int day_match(const struct cron_expr *c, int y, int mon, int d)
{
  int dom_ok = (c->dom >> d) & 1;
  int dow_ok = (c->dow >> weekday(cron_days_from_civil(y, mon, d))) & 1;
  if (c->dom_star || c->dow_star)
    return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

int cron_match(const struct cron_expr *c, int y, int mon, int d, int h,
               int mi)
{
  if (mon < 1 || mon > 12 || d < 1 || d > cron_days_in_month(y, mon) ||
      h < 0 || h > 23 || mi < 0 || mi > 59)
    return 0;
  return ((c->month >> mon) & 1) && ((c->hour >> h) & 1) &&
         ((c->minute >> mi) & 1) && day_match(c, y, mon, d);
}

/* Smallest set bit in [from, to], or -1. */
static int next_bit(uint64_t bits, int from, int to)
{
  for (int i = from < 0 ? 0 : from; i <= to; i++)
    if ((bits >> i) & 1)
      return i;
  return -1;
}

/* Largest set bit in [from, to] scanning down from `to`, or -1. */
static int prev_bit(uint64_t bits, int from, int to)
{
  for (int i = to; i >= from; i--)
    if ((bits >> i) & 1)
      return i;
  return -1;
}

static int64_t wall_of(int y, int mon, int d, int h, int mi)
{
  return cron_days_from_civil(y, mon, d) * 86400 + h * 3600 + mi * 60;
}

static void wall_split(int64_t w, int *y, int *mon, int *d, int *h, int *mi)
{
  int64_t days = floor_div(w, 86400);
  int64_t secs = w - days * 86400;
  cron_civil_from_days(days, y, mon, d);
  *h = (int)(secs / 3600);
  *mi = (int)(secs % 3600 / 60);
}

/* Smallest matching wall minute >= start (start minute aligned).
 * Field by field: a mismatch in a field resets the smaller ones. */
static int wall_next(const struct cron_expr *c, int64_t start, int64_t *out)
{
  int y, mon, d, h, mi;
  wall_split(start, &y, &mon, &d, &h, &mi);
  int ylimit = y + CRON_SEARCH_YEARS;
  int h0 = next_bit(c->hour, 0, 23), m0 = next_bit(c->minute, 0, 59);
  int mon0 = next_bit(c->month, 1, 12);
  if (h0 < 0 || m0 < 0 || mon0 < 0)
    return 0;
  for (;;) {
    if (y > ylimit || y > 9999)
      return 0;
    if (!((c->month >> mon) & 1)) {
      int nm = next_bit(c->month, mon + 1, 12);
      if (nm < 0) {
        y++;
        nm = mon0;
      }
      mon = nm;
      d = 1, h = h0, mi = m0;
      continue;
    }
    if (d > cron_days_in_month(y, mon)) {
      if (++mon > 12)
        mon = 1, y++;
      d = 1, h = h0, mi = m0;
      continue;
    }
    if (!day_match(c, y, mon, d)) {
      d++, h = h0, mi = m0;
      continue;
    }
    if (!((c->hour >> h) & 1)) {
      int nh = next_bit(c->hour, h + 1, 23);
      if (nh < 0) {
        d++, h = h0, mi = m0;
        continue;
      }
      h = nh, mi = m0;
    }
    int nmi = next_bit(c->minute, mi, 59);
    if (nmi < 0) {
      int nh = next_bit(c->hour, h + 1, 23);
      if (nh < 0)
        d++, h = h0;
      else
        h = nh;
      mi = m0;
      continue;
    }
    *out = wall_of(y, mon, d, h, nmi);
    return 1;
  }
}

/* Largest matching wall minute <= start (start minute aligned). */
static int wall_prev(const struct cron_expr *c, int64_t start, int64_t *out)
{
  int y, mon, d, h, mi;
  wall_split(start, &y, &mon, &d, &h, &mi);
  int ylimit = y - CRON_SEARCH_YEARS;
  int h1 = prev_bit(c->hour, 0, 23), m1 = prev_bit(c->minute, 0, 59);
  int mon1 = prev_bit(c->month, 1, 12);
  if (h1 < 0 || m1 < 0 || mon1 < 0)
    return 0;
  for (;;) {
    if (y < ylimit || y < 1)
      return 0;
    if (!((c->month >> mon) & 1)) {
      int pm = prev_bit(c->month, 1, mon - 1);
      if (pm < 0) {
        y--;
        pm = mon1;
      }
      mon = pm;
      d = cron_days_in_month(y, mon), h = h1, mi = m1;
      continue;
    }
    if (d < 1) {
      if (--mon < 1)
        mon = 12, y--;
      d = cron_days_in_month(y, mon), h = h1, mi = m1;
      continue;
    }
    if (!day_match(c, y, mon, d)) {
      d--, h = h1, mi = m1;
      continue;
    }
    if (!((c->hour >> h) & 1)) {
      int ph = prev_bit(c->hour, 0, h - 1);
      if (ph < 0) {
        d--, h = h1, mi = m1;
        continue;
      }
      h = ph, mi = m1;
    }
    int pmi = prev_bit(c->minute, 0, mi);
    if (pmi < 0) {
      int ph = prev_bit(c->hour, 0, h - 1);
      if (ph < 0)
        d--, h = h1;
      else
        h = ph;
      mi = m1;
      continue;
    }
    *out = wall_of(y, mon, d, h, pmi);
    return 1;
  }
}

/* ------------------------------------------------------------------ */
/* time zones                                                          */

#define TZ_FILE_MAX (1 << 20)
#define TZ_MAX_TRANS 20000
#define TZ_RULE_LAST_YEAR 2400
#define TZ_NEAR (2 * 86400) /* every UTC offset is within +-26 h */

struct cron_tz {
  char *name;
  int off0;       /* offset before the first transition */
  size_t n;       /* transitions */
  int64_t *at;    /* instants, strictly increasing */
  int *off;       /* offset from at[i] on */
};

/* Offset in effect during period p (-1 = before the first transition). */
static int period_off(const struct cron_tz *tz, ptrdiff_t p)
{
  return p < 0 ? tz->off0 : tz->off[p];
}

/* Index of the last transition <= t, or -1. */
static ptrdiff_t period_of(const struct cron_tz *tz, int64_t t)
{
  size_t lo = 0, hi = tz->n; /* first index with at > t */
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (tz->at[mid] <= t)
      lo = mid + 1;
    else
      hi = mid;
  }
  return (ptrdiff_t)lo - 1;
}

int cron_tz_offset(const struct cron_tz *tz, time_t t)
{
  if (!tz)
    return 0;
  return period_off(tz, period_of(tz, (int64_t)t));
}

const char *cron_tz_name(const struct cron_tz *tz)
{
  return tz ? tz->name : "UTC";
}

/* Wall seconds -> instant with the DST rule of cron.h. */
static int64_t tz_resolve(const struct cron_tz *tz, int64_t w)
{
  if (!tz || tz->n == 0)
    return w - (tz ? tz->off0 : 0);
  ptrdiff_t p0 = period_of(tz, w - TZ_NEAR);
  for (ptrdiff_t p = p0; p < (ptrdiff_t)tz->n; p++) {
    if (p >= 0 && tz->at[p] > w + TZ_NEAR)
      break;
    int64_t t = w - period_off(tz, p);
    if ((p < 0 || t >= tz->at[p]) &&
        (p + 1 >= (ptrdiff_t)tz->n || t < tz->at[p + 1]))
      return t; /* periods are in order: the first valid is the earliest */
  }
  /* no instant shows this wall time: it is in a gap; the gap of
   * transition i covers [at + off_before, at + off_after) */
  for (ptrdiff_t p = p0 < 0 ? 0 : p0; p < (ptrdiff_t)tz->n; p++) {
    if (tz->at[p] > w + TZ_NEAR)
      break;
    int before = period_off(tz, p - 1), after = tz->off[p];
    if (tz->at[p] + before <= w && w < tz->at[p] + after)
      return tz->at[p];
  }
  return w - period_off(tz, period_of(tz, w)); /* not reached */
}

time_t cron_tz_resolve(const struct cron_tz *tz, int y, int mon, int d,
                       int h, int mi, int s)
{
  return (time_t)tz_resolve(tz, wall_of(y, mon, d, h, mi) + s);
}

void cron_tz_civil(const struct cron_tz *tz, time_t t, struct cron_civil *out)
{
  int off = cron_tz_offset(tz, t);
  int64_t w = (int64_t)t + off;
  int64_t days = floor_div(w, 86400);
  int64_t secs = w - days * 86400;
  cron_civil_from_days(days, &out->year, &out->month, &out->day);
  out->hour = (int)(secs / 3600);
  out->minute = (int)(secs % 3600 / 60);
  out->second = (int)(secs % 60);
  out->wday = weekday(days);
  out->offset = off;
}

void cron_tz_destroy(struct cron_tz *tz)
{
  if (!tz)
    return;
  free(tz->name);
  free(tz->at);
  free(tz->off);
  free(tz);
}

/* --- POSIX TZ string (the TZif footer) --- */

#define PX_OFF_MAX 93600 /* an offset's limit, seconds (+-26 h) */

struct posix_rule {
  char kind; /* 'J' Julian 1-365 no leap day, 'D' day 0-365, 'M' m.w.d */
  int a, b, c;
  int secs; /* local time of day of the change, may be <0 or >24h */
};

struct posix_tz {
  int std_off, dst_off; /* seconds east */
  int has_dst;
  struct posix_rule start, end;
};

static int px_name(const char **p)
{
  const char *s = *p;
  if (*s == '<') {
    while (*s && *s != '>')
      s++;
    if (*s != '>')
      return -1;
    *p = s + 1;
    return 0;
  }
  const char *b = s;
  while (isalpha((unsigned char)*s))
    s++;
  if (s - b < 3)
    return -1;
  *p = s;
  return 0;
}

/* [+-]hh[:mm[:ss]], hours up to 167 */
static int px_time(const char **p, int *secs)
{
  const char *s = *p;
  int sign = 1;
  if (*s == '+' || *s == '-')
    sign = *s++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*s))
    return -1;
  int part[3] = {0, 0, 0};
  for (int i = 0; i < 3; i++) {
    int v = 0, nd = 0;
    while (isdigit((unsigned char)*s) && nd < 3)
      v = v * 10 + (*s++ - '0'), nd++;
    if (nd == 0)
      return -1;
    part[i] = v;
    if (*s != ':' || i == 2)
      break;
    s++;
  }
  if (part[0] > 167 || part[1] > 59 || part[2] > 59)
    return -1;
  *secs = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
  *p = s;
  return 0;
}

static int px_num(const char **p, int *v)
{
  const char *s = *p;
  int n = 0, nd = 0;
  while (isdigit((unsigned char)*s) && nd < 4)
    n = n * 10 + (*s++ - '0'), nd++;
  if (nd == 0)
    return -1;
  *v = n;
  *p = s;
  return 0;
}

static int px_rule(const char **p, struct posix_rule *r)
{
  const char *s = *p;
  memset(r, 0, sizeof(*r));
  if (*s == 'M') {
    s++;
    r->kind = 'M';
    if (px_num(&s, &r->a) || *s++ != '.' || px_num(&s, &r->b) ||
        *s++ != '.' || px_num(&s, &r->c))
      return -1;
    if (r->a < 1 || r->a > 12 || r->b < 1 || r->b > 5 || r->c > 6)
      return -1;
  } else if (*s == 'J') {
    s++;
    r->kind = 'J';
    if (px_num(&s, &r->a) || r->a < 1 || r->a > 365)
      return -1;
  } else {
    r->kind = 'D';
    if (px_num(&s, &r->a) || r->a > 365)
      return -1;
  }
  r->secs = 7200;
  if (*s == '/') {
    s++;
    if (px_time(&s, &r->secs))
      return -1;
  }
  *p = s;
  return 0;
}

static int px_parse(const char *s, struct posix_tz *z)
{
  int v;
  memset(z, 0, sizeof(*z));
  /* px_time takes the rule times' 167 hours (RFC 8536); an offset is
   * held to the +-26 h the file's own offsets are held to */
  if (px_name(&s) || px_time(&s, &v) || v < -PX_OFF_MAX || v > PX_OFF_MAX)
    return -1;
  z->std_off = -v; /* POSIX offsets are west-positive */
  if (!*s)
    return 0;
  if (px_name(&s))
    return -1;
  z->has_dst = 1;
  z->dst_off = z->std_off + 3600;
  if (*s && *s != ',') {
    if (px_time(&s, &v) || v < -PX_OFF_MAX || v > PX_OFF_MAX)
      return -1;
    z->dst_off = -v;
  }
  if (!*s)
    s = ",M3.2.0,M11.1.0"; /* POSIX default rule (US) */
  if (*s++ != ',' || px_rule(&s, &z->start) || *s++ != ',' ||
      px_rule(&s, &z->end) || *s)
    return -1;
  return 0;
}

/* Wall seconds at which rule r changes the clock in year y. */
static int64_t rule_wall(const struct posix_rule *r, int y)
{
  int64_t days;
  if (r->kind == 'J') {
    days = cron_days_from_civil(y, 1, 1) + r->a - 1 +
           (is_leap(y) && r->a >= 60);
  } else if (r->kind == 'D') {
    days = cron_days_from_civil(y, 1, 1) + r->a;
  } else {
    int64_t first = cron_days_from_civil(y, r->a, 1);
    int day = (r->c - weekday(first) + 7) % 7 + 7 * (r->b - 1);
    while (day >= cron_days_in_month(y, r->a))
      day -= 7; /* week 5 = the last one */
    days = first + day;
  }
  return days * 86400 + r->secs;
}

struct gen_tr {
  int64_t at;
  int off;
  int seq;
};

static int gen_cmp(const void *a, const void *b)
{
  const struct gen_tr *x = a, *y = b;
  if (x->at != y->at)
    return x->at < y->at ? -1 : 1;
  return x->seq - y->seq;
}

/* Append the footer rule's transitions after the listed ones. */
static enum err_code tz_expand(struct cron_tz *tz, const struct posix_tz *z,
                               struct err *e)
{
  int y0 = 1900;
  int64_t last = INT64_MIN;
  if (tz->n > 0) {
    int y, m, d;
    last = tz->at[tz->n - 1];
    cron_civil_from_days(floor_div(last, 86400), &y, &m, &d);
    y0 = y - 1;
  }
  /* a last transition far in the past (a damaged file: year -10^11) must
   * not size the table; no DST rule is older than 1900 */
  if (y0 < 1900)
    y0 = 1900;
  if (y0 > TZ_RULE_LAST_YEAR)
    return ERR_OK;
  size_t ng = 2 * (size_t)(TZ_RULE_LAST_YEAR - y0 + 1);
  struct gen_tr *g = malloc(ng * sizeof(*g));
  int64_t *at = realloc(tz->at, (tz->n + ng) * sizeof(*at));
  if (at)
    tz->at = at;
  int *off = realloc(tz->off, (tz->n + ng) * sizeof(*off));
  if (off)
    tz->off = off;
  if (!g || !at || !off) {
    free(g);
    return err_set(e, ERR_NOMEM, "time zone '%s': out of memory", tz->name);
  }
  size_t k = 0;
  for (int y = y0; y <= TZ_RULE_LAST_YEAR; y++) {
    g[k].at = rule_wall(&z->start, y) - z->std_off;
    g[k].off = z->dst_off;
    g[k].seq = (int)k;
    k++;
    g[k].at = rule_wall(&z->end, y) - z->dst_off;
    g[k].off = z->std_off;
    g[k].seq = (int)k;
    k++;
  }
  qsort(g, k, sizeof(*g), gen_cmp);
  size_t n0 = tz->n;
  for (size_t i = 0; i < k; i++) {
    if (g[i].at <= last)
      continue;
    if (tz->n > n0 && tz->at[tz->n - 1] == g[i].at) {
      tz->off[tz->n - 1] = g[i].off; /* same instant: the later rule wins */
      continue;
    }
    tz->at[tz->n] = g[i].at;
    tz->off[tz->n] = g[i].off;
    tz->n++;
  }
  free(g);
  return ERR_OK;
}

/* Drop transitions that do not change the offset (isdst or name only). */
static void tz_compact(struct cron_tz *tz)
{
  size_t k = 0;
  int prev = tz->off0;
  for (size_t i = 0; i < tz->n; i++) {
    if (tz->off[i] == prev)
      continue;
    tz->at[k] = tz->at[i];
    tz->off[k] = tz->off[i];
    prev = tz->off[i];
    k++;
  }
  tz->n = k;
}

static uint32_t be32(const unsigned char *p)
{
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
         p[3];
}

static int64_t be64(const unsigned char *p)
{
  return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* Parse a TZif image into tz (name already set). */
static enum err_code tz_parse(struct cron_tz *tz, const unsigned char *buf,
                              size_t len, struct err *e)
{
  const char *nm = tz->name;
  if (len < 44 || memcmp(buf, "TZif", 4) != 0)
    return err_set(e, ERR_PARSE, "time zone '%s': not a TZif file", nm);
  int version = buf[4];
  size_t pos = 0;
  int tsize = 4;
  uint32_t cnt[6];
  for (int pass = 0;; pass++) {
    if (len - pos < 44)
      return err_set(e, ERR_PARSE, "time zone '%s': truncated header", nm);
    for (int i = 0; i < 6; i++)
      cnt[i] = be32(buf + pos + 20 + 4 * i);
    pos += 44;
    if (cnt[3] > TZ_MAX_TRANS || cnt[4] > 256 || cnt[5] > 4096 ||
        cnt[2] > 4096 || cnt[0] > 256 || cnt[1] > 256)
      return err_set(e, ERR_PARSE, "time zone '%s': implausible counts", nm);
    size_t body = (size_t)cnt[3] * tsize + cnt[3] + (size_t)cnt[4] * 6 +
                  cnt[5] + (size_t)cnt[2] * (tsize + 4) + cnt[1] + cnt[0];
    if (len - pos < body)
      return err_set(e, ERR_PARSE, "time zone '%s': truncated data", nm);
    if (pass == 0 && version >= '2') {
      pos += body; /* skip the 32-bit block, use the 64-bit one */
      tsize = 8;
      if (len - pos < 4 || memcmp(buf + pos, "TZif", 4) != 0)
        return err_set(e, ERR_PARSE, "time zone '%s': bad second header",
                       nm);
      continue;
    }
    break;
  }
  uint32_t isutcnt = cnt[0], isstdcnt = cnt[1], leapcnt = cnt[2];
  uint32_t timecnt = cnt[3], typecnt = cnt[4], charcnt = cnt[5];
  (void)isutcnt;
  (void)isstdcnt;
  (void)charcnt;
  if (leapcnt > 0)
    return err_set(e, ERR_PARSE,
                   "time zone '%s': leap-second zones are not supported", nm);
  if (typecnt < 1)
    return err_set(e, ERR_PARSE, "time zone '%s': no time types", nm);
  const unsigned char *times = buf + pos;
  const unsigned char *idx = times + (size_t)timecnt * tsize;
  const unsigned char *types = idx + timecnt;
  int tofs[256];
  for (uint32_t i = 0; i < typecnt; i++) {
    int32_t o = (int32_t)be32(types + 6 * i);
    if (o < -PX_OFF_MAX || o > PX_OFF_MAX)
      return err_set(e, ERR_PARSE, "time zone '%s': offset out of range", nm);
    tofs[i] = o;
  }
  tz->off0 = tofs[0];
  tz->at = malloc((timecnt ? timecnt : 1) * sizeof(*tz->at));
  tz->off = malloc((timecnt ? timecnt : 1) * sizeof(*tz->off));
  if (!tz->at || !tz->off)
    return err_set(e, ERR_NOMEM, "time zone '%s': out of memory", nm);
  tz->n = 0;
  for (uint32_t i = 0; i < timecnt; i++) {
    int64_t t = tsize == 8 ? be64(times + 8 * (size_t)i)
                           : (int64_t)(int32_t)be32(times + 4 * (size_t)i);
    if (idx[i] >= typecnt)
      return err_set(e, ERR_PARSE, "time zone '%s': bad type index", nm);
    if (tz->n > 0 && t <= tz->at[tz->n - 1])
      return err_set(e, ERR_PARSE, "time zone '%s': unsorted transitions",
                     nm);
    tz->at[tz->n] = t;
    tz->off[tz->n] = tofs[idx[i]];
    tz->n++;
  }
  /* footer (version 2+): "\nTZ-STRING\n" after the 64-bit block */
  if (version >= '2') {
    size_t fpos = pos + (size_t)timecnt * tsize + timecnt +
                  (size_t)typecnt * 6 + charcnt +
                  (size_t)leapcnt * (tsize + 4) + isstdcnt + isutcnt;
    if (fpos < len && buf[fpos] == '\n') {
      const unsigned char *f = buf + fpos + 1;
      const unsigned char *nl = memchr(f, '\n', len - fpos - 1);
      if (nl && nl > f && nl - f < 128) {
        char rule[128];
        memcpy(rule, f, (size_t)(nl - f));
        rule[nl - f] = '\0';
        struct posix_tz z;
        if (px_parse(rule, &z) != 0)
          return err_set(e, ERR_PARSE, "time zone '%s': bad footer rule '%s'",
                         nm, rule);
        if (tz->n == 0)
          tz->off0 = z.std_off;
        if (z.has_dst) {
          enum err_code rc = tz_expand(tz, &z, e);
          if (rc)
            return rc;
        }
      }
    }
  }
  tz_compact(tz);
  return ERR_OK;
}

static int tz_name_ok(const char *name)
{
  size_t len = strlen(name);
  if (len == 0 || len > 200 || name[0] == '/' || name[0] == '.')
    return 0;
  for (const char *p = name; *p; p++)
    if (!isalnum((unsigned char)*p) && !strchr("_+-./", *p))
      return 0;
  return strstr(name, "..") == NULL && strstr(name, "/.") == NULL;
}

enum err_code cron_tz_load(struct cron_tz **out, const char *name,
                           struct err *e)
{
  if (!name || !tz_name_ok(name))
    return err_set(e, ERR_INVAL,
                   "time zone '%s': not a zone name like Asia/Seoul",
                   name ? name : "(null)");
  struct cron_tz *tz = calloc(1, sizeof(*tz));
  if (!tz || !(tz->name = strdup(name))) {
    free(tz);
    return err_set(e, ERR_NOMEM, "time zone '%s': out of memory", name);
  }
  const char *dir = getenv("TZDIR");
  if (!dir || !*dir)
    dir = "/usr/share/zoneinfo";
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  char *buf = NULL;
  size_t len = 0;
  enum err_code rc = fsx_read(path, TZ_FILE_MAX, 0, &buf, &len, e);
  if (rc && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
    err_clear(e);
    *out = tz; /* no tzdata installed: UTC needs none */
    return ERR_OK;
  }
  if (rc)
    err_prefix(e, "time zone '%s'", name);
  else
    rc = tz_parse(tz, (const unsigned char *)buf, len, e);
  free(buf);
  if (rc) {
    cron_tz_destroy(tz);
    return rc;
  }
  *out = tz;
  return ERR_OK;
}

/* ------------------------------------------------------------------ */
/* fire times                                                          */

enum err_code cron_next(const struct cron_expr *c, const struct cron_tz *tz,
                        time_t after, time_t *out, struct err *e)
{
  int64_t a = (int64_t)after;
  int64_t w = a + cron_tz_offset(tz, after);
  for (int guard = 0; guard < 64; guard++) {
    int64_t start = floor_div(w, 60) * 60 + 60, lw;
    if (!wall_next(c, start, &lw))
      break;
    int64_t t = tz_resolve(tz, lw);
    if (t > a) {
      *out = (time_t)t;
      return ERR_OK;
    }
    /* lw is a repeated wall time whose first occurrence is already past:
     * `after` lies in the second pass of a fall-back hour.  Skip to the
     * end of the repeated range [at + off_after, at + off_before). */
    ptrdiff_t q = period_of(tz, a);
    int64_t wend = q >= 0 ? tz->at[q] + period_off(tz, q - 1) - 1 : lw;
    w = wend > lw ? wend : lw;
  }
  return err_set(e, ERR_NOTFOUND,
                 "schedule never fires within %d years after the given time",
                 CRON_SEARCH_YEARS);
}

enum err_code cron_prev(const struct cron_expr *c, const struct cron_tz *tz,
                        time_t at, time_t *out, struct err *e)
{
  int64_t a = (int64_t)at;
  int64_t w = a + cron_tz_offset(tz, at);
  if (tz) {
    /* just after a fall-back, wall times later than w may still have
     * their (only firing) first occurrence before `at` */
    ptrdiff_t q = period_of(tz, a);
    if (q >= 0) {
      int64_t wend = tz->at[q] + period_off(tz, q - 1) - 1;
      if (wend > w)
        w = wend;
    }
  }
  for (int guard = 0; guard < 64; guard++) {
    int64_t lw;
    if (!wall_prev(c, floor_div(w, 60) * 60, &lw))
      break;
    int64_t t = tz_resolve(tz, lw);
    if (t <= a) {
      *out = (time_t)t;
      return ERR_OK;
    }
    w = lw - 60;
  }
  return err_set(e, ERR_NOTFOUND,
                 "schedule has no fire time within %d years before the "
                 "given time",
                 CRON_SEARCH_YEARS);
}

/* ------------------------------------------------------------------ */
/* formatting                                                          */

/* Write v as exactly `width` decimal digits (v >= 0, taken modulo). */
static char *put_num(char *p, int v, int width)
{
  for (int i = width - 1; i >= 0; i--) {
    p[i] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + width;
}

static char *put_date(char *p, const struct cron_civil *c)
{
  p = put_num(p, c->year < 0 ? 0 : c->year, 4);
  *p++ = '-';
  p = put_num(p, c->month, 2);
  *p++ = '-';
  return put_num(p, c->day, 2);
}

void cron_fmt_date(const struct cron_tz *tz, time_t t, char out[CRON_DATE_LEN])
{
  struct cron_civil c;
  cron_tz_civil(tz, t, &c);
  *put_date(out, &c) = '\0';
}

void cron_fmt_iso(const struct cron_tz *tz, time_t t, char out[CRON_ISO_LEN])
{
  struct cron_civil c;
  cron_tz_civil(tz, t, &c);
  int off = c.offset < 0 ? -c.offset : c.offset;
  char *p = put_date(out, &c);
  *p++ = 'T';
  p = put_num(p, c.hour, 2);
  *p++ = ':';
  p = put_num(p, c.minute, 2);
  *p++ = ':';
  p = put_num(p, c.second, 2);
  *p++ = c.offset < 0 ? '-' : '+';
  p = put_num(p, off / 3600, 2);
  *p++ = ':';
  p = put_num(p, off % 3600 / 60, 2);
  *p = '\0';
}

enum err_code cron_parse_date(const char *s, int *y, int *mon, int *d)
{
  if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
    return ERR_INVAL;
  for (int i = 0; i < 10; i++)
    if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
      return ERR_INVAL;
  int yy = atoi(s), mm = atoi(s + 5), dd = atoi(s + 8);
  if (yy < 1 || mm < 1 || mm > 12 || dd < 1 ||
      dd > cron_days_in_month(yy, mm))
    return ERR_INVAL;
  *y = yy;
  *mon = mm;
  *d = dd;
  return ERR_OK;
}
