/* train.h - XGBoost training (only train.c and predict.c include the
 * XGBoost C API). */
#ifndef MLOPSD_TRAIN_H
#define MLOPSD_TRAIN_H

/* "MAJOR.MINOR.PATCH" of the XGBoost library in use (static string). */
const char *train_xgb_version(void);

#endif
