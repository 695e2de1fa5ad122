/* calib.h - calibrated confidence: temperature scaling (issue 13,
 * docs/training.md "Calibration").
 *
 * A version's class probabilities p (softmax of margins z) become
 * softmax(z / T), computed from p alone as p_k^(1/T) / sum_j p_j^(1/T)
 * (binary: the two classes 1 - p and p).  T is fitted at training time
 * on the gate split (the validation split without one) by minimising the
 * mean negative log-likelihood, stored as the version's calibration.json
 * and applied by model_predict, so the server, offline predict, batch
 * scoring and the gate all answer with the same calibrated numbers; the
 * arg max (the predicted class) never changes.
 *
 * All functions are pure (any thread).
 */
#ifndef MLOPSD_CALIB_H
#define MLOPSD_CALIB_H

#include <stddef.h>

#define CALIB_FILE "calibration.json"
#define CALIB_BINS 15          /* equal-width confidence bins of the ECE */
#define CALIB_T_MIN 0.05
#define CALIB_T_MAX 20.0

/* Apply temperature t in place to n rows of k values (k == 1: one binary
 * probability per row).  t == 1 changes nothing. */
void calib_apply(float *p, size_t n, size_t k, double t);

/* Mean negative log-likelihood of labels y (class index as float) under
 * p tempered by t (probabilities clipped to [1e-15, 1 - 1e-15]). */
double calib_nll(const float *p, const float *y, size_t n, size_t k,
                 double t);

/* The t in [CALIB_T_MIN, CALIB_T_MAX] minimising calib_nll (golden
 * section on log t: the NLL is convex in 1/t). */
double calib_fit_temperature(const float *p, const float *y, size_t n,
                             size_t k);

struct calib_bin {
  double confidence; /* mean top probability in the bin */
  double accuracy;   /* share of rows whose top class is the label */
  size_t count;
};

/* Expected calibration error over CALIB_BINS equal-width bins of the top
 * probability (bin b holds (b/B, (b+1)/B], the first also 0): sum over
 * bins of count/n * |accuracy - confidence|; and the multi-class Brier
 * score mean_i sum_k (p_ik - [y_i = k])^2 (binary: over both classes).
 * bins (may be NULL) gets CALIB_BINS entries. */
void calib_stats(const float *p, const float *y, size_t n, size_t k,
                 double *ece, double *brier, struct calib_bin *bins);

#endif
