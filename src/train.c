/* train.c - XGBoost training through its C API. */
#include "mlopsd/train.h"

#include <stdio.h>
#include <xgboost/c_api.h>

const char *train_xgb_version(void)
{
  static char buf[32];
  int maj = 0, min = 0, pat = 0;
  XGBoostVersion(&maj, &min, &pat);
  snprintf(buf, sizeof(buf), "%d.%d.%d", maj, min, pat);
  return buf;
}
