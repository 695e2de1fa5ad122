/* plog_fx.h - the prediction log with MariaDB "down", for the unit tests
 * of plog (test_plog.c, test_plog_pace.c): a pool pointing at a closed
 * port, a temp directory for the spools, one row, and a log's options
 * with its spool in a sub-directory.
 *
 *   if (fx_plog_setup("plog") != 0) return 1;
 *   struct plog_opts o; char path[128];
 *   fx_plog_opts(&o, "a", path);      (then the test's own settings)
 *   struct plog *p = fx_plog_create(&o, 1);   (1: started)
 *   ... fx_plog_teardown();
 *
 * Ownership: the pool and the directory are this header's statics, made
 * by fx_plog_setup and removed by fx_plog_teardown.  Test thread only.
 */
#ifndef MLOPSD_TEST_PLOG_FX_H
#define MLOPSD_TEST_PLOG_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "mlopsd/db.h"
#include "mlopsd/log.h"
#include "mlopsd/plog.h"

static char fx_plog_dir[64];
static struct db_pool *fx_plog_pool;

/* The temp directory /tmp/mlopsd-test-NAME.XXXXXX and a one-connection
 * pool to 127.0.0.1:1, where nothing listens.  -1 (said on stderr) when
 * either fails. */
static inline int fx_plog_setup(const char *name)
{
  struct db_opts o = {.host = "127.0.0.1",
                      .port = 1, /* nothing listens there */
                      .user = "nobody",
                      .password = "x",
                      .database = "none",
                      .size = 1,
                      .connect_timeout_s = 1};
  struct err e = {0};
  log_set_level(LOG_ERROR);
  snprintf(fx_plog_dir, sizeof(fx_plog_dir), "/tmp/mlopsd-test-%s.XXXXXX",
           name);
  if (!mkdtemp(fx_plog_dir) || db_pool_create(&fx_plog_pool, &o, &e)) {
    fprintf(stderr, "set-up failed: %s\n", e.msg[0] ? e.msg : fx_plog_dir);
    return -1;
  }
  return 0;
}

static inline void fx_plog_teardown(void)
{
  db_pool_destroy(fx_plog_pool);
  fx_rmtree(fx_plog_dir);
}

/* A prediction row of customer cid with features feat (both borrowed). */
static inline struct plog_row fx_plog_row(const char *cid, const char *feat)
{
  struct plog_row r = {.customer_id = cid,
                       .customer_id_len = strlen(cid),
                       .features = feat,
                       .features_len = strlen(feat),
                       .prediction = "Standard",
                       .confidence = 0.75,
                       .elapsed_ms = 1,
                       .created_us = 1764136800000000LL,
                       .model = "m",
                       .model_version = 3};
  return r;
}

/* The defaults on the pool, the spool in fx_plog_dir/sub (path holds it:
 * it must outlive the create), acquire_ms 20. */
static inline void fx_plog_opts(struct plog_opts *o, const char *sub,
                                char path[128])
{
  snprintf(path, 128, "%s/%s", fx_plog_dir, sub);
  plog_opts_defaults(o);
  o->pool = fx_plog_pool;
  o->spool_dir = path;
  o->acquire_ms = 20;
}

/* plog_create (and plog_start when start); NULL, said on stderr, when
 * either fails. */
static inline struct plog *fx_plog_create(const struct plog_opts *o,
                                          int start)
{
  struct plog *p = NULL;
  struct err e = {0};
  if (plog_create(&p, o, &e) != ERR_OK) {
    fprintf(stderr, "plog_create: %s\n", e.msg);
    return NULL;
  }
  if (start && plog_start(p, &e) != ERR_OK) {
    fprintf(stderr, "plog_start: %s\n", e.msg);
    plog_destroy(p);
    return NULL;
  }
  return p;
}

#endif
