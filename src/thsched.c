/* thsched.c - nice and time slice of the calling thread (see thsched.h).
 *
 * glibc before 2.41 has no sched_setattr wrapper, so the system call is
 * made directly with the kernel's first layout of struct sched_attr
 * (SCHED_ATTR_SIZE_VER0, 48 bytes), which every kernel since 3.14 takes.
 * On Linux 6.12 and later sched_runtime of a SCHED_OTHER thread is its
 * slice (clamped by the kernel to 0.1-100 ms; 0 restores the default);
 * earlier kernels ignore it for that policy, so the call is safe there.
 */
#include "mlopsd/thsched.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

struct thsched_attr { /* the kernel's struct sched_attr, VER0 */
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

static int setattr_self(int nice, int slice_us)
{
  struct thsched_attr a;
  memset(&a, 0, sizeof(a));
  a.size = sizeof(a);
  a.sched_policy = 0; /* SCHED_OTHER */
  a.sched_nice = nice;
  a.sched_runtime = (uint64_t)slice_us * 1000;
  return (int)syscall(SYS_sched_setattr, 0, &a, 0);
}

enum err_code thsched_set(int nice, int slice_us, struct err *e)
{
  if (nice < THSCHED_NICE_MIN || nice > THSCHED_NICE_MAX)
    return err_set(e, ERR_INVAL, "thread nice %d out of range (%d..%d)",
                   nice, THSCHED_NICE_MIN, THSCHED_NICE_MAX);
  if (slice_us < 0 || slice_us > THSCHED_SLICE_MAX_US)
    return err_set(e, ERR_INVAL, "thread slice %d us out of range (0..%d)",
                   slice_us, THSCHED_SLICE_MAX_US);
  if (setattr_self(nice, slice_us) == 0)
    return ERR_OK;
  int en = errno;
  if (en == ENOSYS)
    return err_set(e, ERR_UNSUPPORTED,
                   "sched_setattr: not supported by this kernel");
  if (en != EPERM && en != EACCES)
    return err_set(e, ERR_IO, "sched_setattr(nice %d, slice %d us): %s",
                   nice, slice_us, strerror(en));
  /* A lower nice than the thread has needs a privilege; keep the nice it
   * has (getpriority reads the calling thread's with its tid) and still
   * set the slice, which needs none. */
  errno = 0;
  int cur = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
  if (errno != 0)
    cur = 0;
  int rc = setattr_self(cur, slice_us);
  return err_set(e, ERR_STATE,
                 "nice %d refused (%s: lowering a thread's nice needs "
                 "CAP_SYS_NICE or an RLIMIT_NICE that allows it, e.g. "
                 "systemd LimitNICE=%d); %s at nice %d",
                 nice, strerror(en), nice,
                 rc == 0 && slice_us > 0 ? "the slice was set alone"
                                         : "nothing was changed",
                 cur);
}
