/* monitor_fx.h - the set-up the monitoring tests share (test_drift.c,
 * test_logpart.c): a temp directory with a config file, a fresh database
 * made by `mlopsd db init` and `db seed`, the course's request lines, the
 * features of 2025-09-01 and a version of the course model trained by the
 * pipeline and made production, plus a task context for the monitor DAG's
 * check task.  fx_spec_whole_day (also used by test_pipeline.c) turns the
 * course spec into a two-way split of the whole day.
 *
 *   static struct fx_mon M;
 *   if (fx_mon_setup(&M, "it_drift", 3) ||
 *       fx_mon_model(&M, "it_drift", NULL)) return 1;
 *   struct fx_tc *c = fx_mon_tc(&M, "{\"model\": ...}", "2025-09-01");
 *   ... fx_mon_done(&M);
 *
 * Ownership: M owns its pool, its lines and its temp directory;
 * fx_mon_done frees them (MLOPSD_KEEP_TMP=1 keeps the directory).  Test
 * thread only.
 */
#ifndef MLOPSD_TEST_MONITOR_FX_H
#define MLOPSD_TEST_MONITOR_FX_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "task_ctx.h"
#include "mlopsd/cfg.h"
#include "mlopsd/db.h"
#include "mlopsd/pipeline.h"
#include "mlopsd/registry.h"
#include "mlopsd/spec.h"

#define FX_MON_MODEL "credit_score_classification"
#define FX_MON_DS "2025-09-01" /* the day the model is trained on */

struct fx_mon {
  char src[512], bin[512]; /* MLOPSD_SRC, MLOPSD_BIN */
  char tmp[256];           /* this test's temp directory */
  char cfg_path[300], reg[300], log[300]; /* in tmp; log: the CLI's output */
  struct cfg cfg;          /* defaults, registry_dir = reg */
  struct db_pool *pool;    /* on the fresh database */
  char **lines;            /* predict_requests.jsonl, the "data" objects */
  size_t nlines;
};

/* The environment tests/run.sh gives, a temp directory (/tmp/mlopsd-it-
 * DB.XXXXXX), its mlopsd.yaml for database DB (specs from the tree,
 * registry and dags_dir in the temp directory, MLOPSD_DATABASE_NAME set to
 * DB), DB dropped and made again by `db init` and `db seed` (their output
 * in m->log) and a pool of POOL_SIZE connections on it.  0, or -1 with
 * what failed on stderr. */
static inline int fx_mon_setup(struct fx_mon *m, const char *db,
                               int pool_size)
{
  char tag[64], sql[200], cmd[8192];
  memset(m, 0, sizeof(*m));
  if (fx_env(db, m->src, sizeof(m->src), m->bin, sizeof(m->bin)))
    return -1;
  snprintf(tag, sizeof(tag), "it-%s", db);
  if (fx_tmpdir(m->tmp, sizeof(m->tmp), tag))
    return -1;
  snprintf(m->reg, sizeof(m->reg), "%s/registry", m->tmp);
  snprintf(m->cfg_path, sizeof(m->cfg_path), "%s/mlopsd.yaml", m->tmp);
  snprintf(m->log, sizeof(m->log), "%s/cmd.log", m->tmp);
  setenv("MLOPSD_DATABASE_NAME", db, 1);
  FILE *f = fopen(m->cfg_path, "w");
  if (!f) {
    perror(m->cfg_path);
    return -1;
  }
  fprintf(f,
          "database:\n  name: %s\n"
          "models:\n  specs_dir: %s/config/models\n  registry_dir: %s\n"
          "scheduler:\n  dags_dir: %s/dags\n",
          db, m->src, m->reg, m->tmp);
  if (fclose(f) != 0) {
    perror(m->cfg_path);
    return -1;
  }
  cfg_defaults(&m->cfg);
  snprintf(m->cfg.models_registry_dir, sizeof(m->cfg.models_registry_dir),
           "%.300s", m->reg);
  struct db_pool *p0 = fx_pool(NULL, 1);
  snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS `%s`", db);
  int dropped = p0 && fx_exec(p0, sql, 0) == 0;
  db_pool_destroy(p0);
  if (!dropped)
    return -1;
  snprintf(cmd, sizeof(cmd),
           "cd %s && %s -c %s db init >>%s 2>&1 && "
           "%s -c %s db seed --dir %s/sql/data >>%s 2>&1",
           m->src, m->bin, m->cfg_path, m->log, m->bin, m->cfg_path, m->src,
           m->log);
  if (fx_run_cmd(cmd) != 0) {
    fprintf(stderr, "db init/seed of %s failed, see %s\n", db, m->log);
    return -1;
  }
  m->pool = fx_pool(db, pool_size);
  return m->pool ? 0 : -1;
}

/* SP trained on the whole day with the two-way split: no gate split, no
 * grouping, no window (the course spec's gate split and 28-day window
 * train on fewer rows). */
static inline void fx_spec_whole_day(struct spec *sp)
{
  sp->gate_fraction = 0;
  free(sp->group_by);
  sp->group_by = NULL;
  free(sp->window.column);
  sp->window.column = NULL;
  sp->window.days = 0;
}

/* The request lines (at least 2,000), the features of FX_MON_DS and one
 * version of FX_MON_MODEL trained on them by the pipeline (one trial, 10
 * rounds, DAG DAG_ID, run DAG_ID_train) and made production.  ADJUST (may
 * be NULL) changes the loaded spec before the training.  0, or -1 with
 * what failed on stderr. */
static inline int fx_mon_model(struct fx_mon *m, const char *dag_id,
                               void (*adjust)(struct spec *))
{
  char path[700], run_id[200];
  struct spec *sp = NULL;
  struct registry *reg = NULL;
  struct pipeline_result res;
  struct err e = {0};
  m->lines = fx_request_lines(2000, &m->nlines);
  if (!m->lines || fx_extract_features(m->pool, m->src, FX_MON_DS))
    return -1;
  memset(&res, 0, sizeof(res));
  snprintf(path, sizeof(path), "%s/config/models/" FX_MON_MODEL ".yaml",
           m->src);
  snprintf(run_id, sizeof(run_id), "%s_train", dag_id);
  struct pipeline_opts o = {0};
  o.ds = FX_MON_DS;
  o.dag_id = dag_id;
  o.dag_run_id = run_id;
  o.nthread = 1;
  o.max_trials = 1;
  o.num_boost_round = 10;
  o.early_stopping_rounds = -1;
  int r = -1;
  if (spec_load(path, &sp, &e) == ERR_OK && adjust)
    adjust(sp);
  if (!sp || registry_open(m->reg, &reg, &e) ||
      pipeline_train(reg, m->pool, sp, &o, &res, &e) ||
      registry_alias_set(reg, FX_MON_MODEL, REGISTRY_PRODUCTION, res.version,
                         NULL, &e))
    fprintf(stderr, "train %s for %s: %s\n", FX_MON_MODEL, dag_id, e.msg);
  else
    r = 0;
  pipeline_result_free(&res);
  registry_close(reg);
  spec_destroy(sp);
  return r;
}

/* A context for the monitor DAG's check task at logical date DS, with
 * FIELDS (JSON text) and m's config (free with fx_tc_free); NULL when the
 * fields do not parse. */
static inline struct fx_tc *fx_mon_tc(struct fx_mon *m, const char *fields,
                                      const char *ds)
{
  struct fx_tc *c = fx_tc_new(fields, NULL, m->pool);
  if (!c)
    return NULL;
  c->t.dag_id = "credit_score_monitor";
  c->t.run_id = "scheduled__test";
  c->t.task_id = "check";
  c->t.ds = ds;
  c->t.cfg = &m->cfg;
  return c;
}

static inline void fx_mon_done(struct fx_mon *m)
{
  db_pool_destroy(m->pool);
  for (size_t i = 0; i < m->nlines; i++)
    free(m->lines[i]);
  free(m->lines);
  fx_rmtree(m->tmp);
  memset(m, 0, sizeof(*m));
}

#endif
