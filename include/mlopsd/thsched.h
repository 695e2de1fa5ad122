/* thsched.h - CPU scheduling of the calling thread: its nice value and
 * the kernel's time slice (Linux sched_setattr(2), SCHED_OTHER).
 *
 * Why: on a machine whose cores the daemon shares with MariaDB (and, in a
 * bench, with the client), an HTTP thread woken by a request waited for a
 * core behind a thread that ran for milliseconds without a break (a
 * MariaDB statement or background thread): the kernel (EEVDF) lets the
 * running thread finish its slice first.  A thread with a short slice may
 * preempt a running one with a longer slice when it wakes (Linux 6.12 and
 * later; older kernels ignore the slice); a lower nice gives it the
 * weight to do so more often (docs/performance.md, "Issue 16, fifth round:
 * the tail").
 *
 * Thread rule: acts on the calling thread only; any thread.
 */
#ifndef MLOPSD_THSCHED_H
#define MLOPSD_THSCHED_H

#include "mlopsd/err.h"

#define THSCHED_NICE_MIN (-20)
#define THSCHED_NICE_MAX 19
#define THSCHED_SLICE_MAX_US 100000 /* the kernel's own limit (100 ms) */

/* Set the calling thread's nice to nice (-20..19) and its slice to
 * slice_us microseconds (0 = the kernel's default; the kernel raises a
 * slice below 100 us to 100 us).  The thread stays SCHED_OTHER.
 *
 * ERR_OK when both were applied.  ERR_INVAL for values out of range
 * (nothing changed).  ERR_STATE when the kernel refused the nice (a nice
 * below the thread's current one needs CAP_SYS_NICE or an RLIMIT_NICE that
 * allows it, e.g. systemd's LimitNICE=): the slice is then applied alone,
 * at the current nice, and e says so.  ERR_UNSUPPORTED when the kernel
 * has no sched_setattr (before Linux 3.14); ERR_IO for another refusal,
 * with errno's text in e. */
enum err_code thsched_set(int nice, int slice_us, struct err *e) MLOPSD_WUR;

#endif
