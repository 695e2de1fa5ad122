/* vec.c - the reserve step behind VEC_RESERVE / VEC_PUSH (vec.h). */
#include "mlopsd/vec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FIRST_ELEMS 16
#define FIRST_BYTES 256

int vec_reserve_(void *pp, size_t *cap, size_t need, size_t elem)
{
  if (need <= *cap)
    return 0;
  if (elem == 0)
    return -1;
  size_t nc = *cap;
  if (nc == 0) {
    nc = FIRST_BYTES / elem;
    if (nc < FIRST_ELEMS)
      nc = FIRST_ELEMS;
  }
  while (nc < need)
    nc = nc > SIZE_MAX / 2 ? need : nc * 2;
  if (nc > SIZE_MAX / elem)
    return -1;
  /* pp is a T ** seen as void *: the pointer is moved with memcpy, so no
   * T * object is ever accessed through a void * lvalue. */
  void *old, *np;
  memcpy(&old, pp, sizeof(old));
  np = realloc(old, nc * elem);
  if (!np)
    return -1;
  memcpy(pp, &np, sizeof(np));
  *cap = nc;
  return 0;
}
