/* numfmt.h - number to text for the request path: the same characters
 * as printf's "%lld" and "%.9g", without the cost of printf.
 *
 * A logged /predict formats its customer id and its confidence (or
 * regression value) for every answer; glibc's snprintf took about 700
 * instructions for the integer and 1,400 for the %.9g (callgrind, issue
 * 16), a twentieth of the handler.  These write the identical text.
 *
 * Thread rule: none (no state); any thread.
 */
#ifndef MLOPSD_NUMFMT_H
#define MLOPSD_NUMFMT_H

#include <stddef.h>
#include <stdint.h>

/* Room numfmt_i64 and numfmt_g9 need, with the terminating NUL. */
#define NUMFMT_CAP 32

/* v in decimal, as snprintf("%lld") writes it, NUL-terminated, into out
 * (NUMFMT_CAP bytes).  Returns the length. */
size_t numfmt_i64(char *out, int64_t v);

/* v as snprintf("%.9g") writes it (in the C locale), NUL-terminated, into
 * out (NUMFMT_CAP bytes).  Returns the length.  Values with 1e-4 <= |v| <
 * 1e8 are converted exactly here (correctly rounded to 9 significant
 * digits, ties to even, as glibc does in the default rounding mode);
 * others go to snprintf. */
size_t numfmt_g9(char *out, double v);

#endif
