/* trialw.h - a scheduler daemon's trial helpers: threads that claim
 * trials of other daemons' shared grid searches (trialq.h) and train them
 * (docs/training.md "Shared trials").
 *
 * Each helper thread polls for a claimable trial of a running search
 * whose coordinator is alive and is not a run of this process, reads and
 * preprocesses that search's training rows once (kept while it keeps
 * getting trials of the same search), checks that spec and data are the
 * ones the coordinator used (else it gives the trial back and leaves the
 * search alone), trains the trial and stores the outcome in its row.
 *
 * Thread rule: create and destroy from one thread (the daemon's main
 * thread); the helpers use only their own state and the pool.
 */
#ifndef MLOPSD_TRIALW_H
#define MLOPSD_TRIALW_H

#include "mlopsd/err.h"

struct db_pool;
struct trialw;

struct trialw_opts {
  struct db_pool *db;      /* borrowed; outlives the helpers */
  const char *specs_dir;   /* copied */
  int threads;             /* helper threads, >= 1 */
  int nthread;             /* XGBoost threads per trial */
  int lease_s;             /* claim lease (scheduler.lease_s) */
  int poll_ms;             /* between polls when idle; 0 = 1000 */
};

enum err_code trialw_create(struct trialw **out, const struct trialw_opts *o,
                            struct err *e) MLOPSD_WUR;

/* Stop: a trial being trained is given back at its next round; joins the
 * threads.  NULL ok. */
void trialw_destroy(struct trialw *w);

#endif
