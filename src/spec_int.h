/* spec_int.h - friend interface of spec.c (loading) and spec_query.c
 * (lookups, request validation).  Not for other modules: they use
 * spec.h. */
#ifndef MLOPSD_SPEC_INT_H
#define MLOPSD_SPEC_INT_H

#include "mlopsd/spec.h"

#define SPEC_FEATURES_MAX 4096

/* Build s->fmap, the feature-name index of spec_feature_index (at least
 * twice as many slots as features).  0 ok, -1 out of memory. */
int spec_fmap_build(struct spec *s);

#endif
