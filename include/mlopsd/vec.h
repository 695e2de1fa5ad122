/* vec.h - growing arrays: one reserve step instead of a hand-written
 * realloc-and-double at every array that grows.
 *
 * The array stays the caller's plain `T *p; size_t n, cap;` (no wrapper
 * struct, so indexing and passing the array around are unchanged); the
 * macros only grow it:
 *
 *   struct item *items = NULL;
 *   size_t n = 0, cap = 0;
 *   if (VEC_PUSH(items, n, cap, it))
 *     return err_set(e, ERR_NOMEM, "out of memory");
 *   ...
 *   free(items);
 *
 * Growth doubles (amortised O(1) per element), starting at 16 elements or
 * 256 bytes, whichever is more; a size that would overflow size_t fails
 * instead of wrapping.  The array is freed with free().  Elements are not
 * owned: freeing what they point to is the caller's job (redis adlist
 * only frees values given a free callback, and this has none).
 *
 * Thread rule: an array belongs to its caller; the macros keep no state.
 */
#ifndef MLOPSD_VEC_H
#define MLOPSD_VEC_H

#include <stddef.h>

#include "mlopsd/err.h"

/* Make room in the array *pp (capacity *cap elements of elem bytes) for at
 * least need elements; pp is the address of the array pointer.  Returns 0,
 * or -1 on overflow or out of memory, and then *pp and *cap are unchanged
 * (the array is still valid and still the caller's).  Use VEC_RESERVE. */
MLOPSD_WUR int vec_reserve_(void *pp, size_t *cap, size_t need, size_t elem);

/* VEC_RESERVE(p, cap, need): p is a T * lvalue, cap a size_t lvalue.
 * 0 or -1 as vec_reserve_.  The check that there is room already is
 * inline, so a reserve on a hot path that rarely grows costs a compare.
 * The arguments may be evaluated more than once. */
#define VEC_RESERVE(p, cap, need)                                           \
  ((size_t)(need) <= (cap) ? 0                                              \
                           : vec_reserve_(&(p), &(cap), (need), sizeof(*(p))))

/* VEC_PUSH(p, n, cap, v): append v at p[n] and count it in n (size_t).
 * 0, or -1 (nothing appended, p unchanged). */
#define VEC_PUSH(p, n, cap, v)                                              \
  (VEC_RESERVE(p, cap, (n) + 1) ? -1 : ((p)[(n)++] = (v), 0))

#endif
