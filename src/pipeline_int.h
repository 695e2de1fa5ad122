/* pipeline_int.h - friend interface of the training pipeline's files.
 * Not for other modules.
 *
 *   pipeline.c        pipeline_train's stages, meta.json, row keys and
 *                     validation rows, the local trial search
 *   pipeline_ref.c    reference.json (the drift reference)
 *   pipeline_split.c  the three-way split and the calibration step
 *   pipeline_dist.c   shared trials (trialq.h), distributed training
 *                     (workers: N), helpers and worker ranks of other runs
 *
 * Thread rule: as in pipeline.c; struct ptrain's fields after "shared by
 * the trial threads" are under mu.
 */
#ifndef MLOPSD_PIPELINE_INT_H
#define MLOPSD_PIPELINE_INT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mlopsd/err.h"
#include "mlopsd/fstore.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/train.h"
#include "mlopsd/trialq.h"

/* What pipeline_train's stages share; freed by ptrain_free. */
struct ptrain {
  struct registry *reg;
  struct db_pool *db;
  const struct spec *sp;
  const struct pipeline_opts *o;
  struct pipeline_result *res;
  struct err *e;
  char prefix[PIPELINE_RUN_ID_MAX + 1];
  /* read, split, preprocessing */
  struct fstore_set *s;        /* until the artefacts are written */
  struct prep *prep;
  size_t *tr, *va, *ga, n_tr, n_va, n_ga;
  float *xtr, *xva, *xga, *ytr, *yva, *yga;
  float *wtr, *wva;            /* weights: balanced, else NULL */
  double *class_w;             /* weights: balanced: per class, else NULL */
  char **names;
  size_t nout;
  char sql[FSTORE_SQL_MAX];    /* the training query, for meta.json */
  struct registry_draft *draft;
  double t_art;                /* seconds writing the artefacts */
  /* the grid */
  const char *objective, *eval_metric;
  struct train_kv *kv;
  size_t n_base, total;
  int nbr, esr, nthread, width;
  enum train_select sel;
  struct train_data td;
  int parallel;                /* trials at once */
  /* shared trials (trialq.h): the search row and this run's claim name */
  int shared, lease_s;
  int64_t sid;
  char owner[TRIALQ_OWNER_MAX + 1];
  double search_hb;            /* last search heartbeat (under mu) */
  /* distributed training (workers: N): this rank's shard of the rows */
  int shards, rank;
  char (*trial_sha)[SHA256_HEX_LEN]; /* model SHA-256 per trial */
  pid_t tracker;               /* rank 0: the python tracker, or 0 */
  int comm;                    /* this thread joined the collective */
  cJSON *dist;                 /* rank 0: meta.json's "distributed" */
  /* shared by the trial threads, under mu */
  pthread_mutex_t mu;
  size_t next, done;           /* next grid point to start, trials done */
  int failed;                  /* a trial failed: start no more */
  /* the best trial so far */
  int have_best;
  struct train_result best;
  size_t best_i;
  char best_run[PIPELINE_RUN_ID_MAX + 16];
  /* the kept model on the training and gate splits (NaN: not scored) */
  struct train_metrics m_train, m_gate;
  cJSON *best_params, *best_metrics;
};

/* One trial being trained: its claim (shared trials) and what it gives. */
struct ptrial {
  struct ptrain *T;
  size_t t;
  /* shared trials: the claimed row, renewed from the cancel poll */
  int64_t sid;
  int row;                     /* its row: the trial, or a worker's rank */
  const char *owner;
  double hb_at;
  int lost;
  /* the outcome */
  struct train_result r;
  cJSON *pj, *mj;
  double secs;
  char desc[512];
  char run_id[PIPELINE_RUN_ID_MAX + 16];
};

struct ptrain_worker {
  struct ptrain *T;
  enum err_code rc;
  struct err e;
};

/* ---- pipeline.c ---- */

/* Seconds on the monotonic clock. */
double pipeline_mono_s(void);
/* One line to the run's log callback (o->log), if any. */
void pipeline_plog(const struct pipeline_opts *o, const char *fmt, ...)
    MLOPSD_PRINTF(2, 3);
/* Adds number v as o[k]; NaN and infinities as null.  0 or -1. */
int pipeline_add_num(cJSON *o, const char *k, double v);
/* The path of file in draft d into buf. */
enum err_code pipeline_draft_path(struct registry_draft *d, const char *file,
                                  char *buf, size_t cap, struct err *e);
/* Writes doc to path (pretty or compact). */
enum err_code pipeline_write_json(const char *path, const cJSON *doc,
                                  int pretty, struct err *e);
/* The stages and trial steps of pipeline_train that the other files run
 * (helpers and worker ranks run the same stages as the run). */
void ptrain_free(struct ptrain *T);
enum err_code ptrain_read(struct ptrain *T);
enum err_code ptrain_prepare(struct ptrain *T);
enum err_code ptrain_grid(struct ptrain *T);
enum err_code ptrain_record(struct ptrain *T, size_t t, const char *run_id,
                            struct train_result *r, cJSON *pj, cJSON *mj,
                            struct err *e);
enum err_code ptrain_fit(struct ptrial *P, struct err *e);
void ptrain_trial_log(struct ptrain *T, size_t t, const char *desc,
                      const struct pipeline_trial *pt, double secs,
                      const char *by);
enum err_code ptrain_model_sha(struct ptrain *T, size_t t,
                               const struct train_result *r, struct err *e);
/* Whether a trial thread stops: a trial failed or the run is cancelled. */
int ptrain_stopping(struct ptrain *T);

/* ---- pipeline_ref.c ---- */

/* reference.json of rows idx[0..n) of s; NULL when out of memory. */
cJSON *pipeline_build_reference(const struct spec *sp,
                                const struct fstore_set *s,
                                const size_t *idx, size_t n);

/* ---- pipeline_split.c ---- */

/* Splits s into T's training, validation and gate rows. */
enum err_code pipeline_split_three(const struct spec *sp,
                                   const struct fstore_set *s,
                                   struct ptrain *T, struct err *e);
/* Metrics of the kept model on rows x (n x nout); n == 0: all NaN. */
enum err_code pipeline_split_metrics(struct ptrain *T, const float *x,
                                     const float *y, size_t n,
                                     struct train_metrics *m);
/* Fits and writes calibration.json; *out: meta.json's "calibration". */
enum err_code ptrain_calibrate(struct ptrain *T, cJSON **out);

/* ---- pipeline_dist.c ---- */

/* Heartbeats the search row every lease/3 (shared or distributed). */
void ptrain_search_alive(struct ptrain *T);
/* A trial thread of a shared search: claims trials until none is left. */
void *ptrain_shared_worker(struct ptrain_worker *w);
/* Creates or joins the search row and its trials. */
enum err_code ptrain_shared_search(struct ptrain *T);
/* Reads every trial's outcome back and keeps the best. */
enum err_code ptrain_shared_collect(struct ptrain *T);
/* Distributed training: start the tracker and ranks, join the collective. */
enum err_code ptrain_dist_start(struct ptrain *T);
/* Distributed training: wait for the ranks, leave the collective. */
enum err_code ptrain_dist_finish(struct ptrain *T);
/* Distributed training on failure: leave, stop the tracker. */
void ptrain_dist_abort(struct ptrain *T);

#endif
