/* task_clean.c - the `db_clean` task type: `mlopsd db clean` as a DAG task
 * (config/dags/mlopsd_maintenance.yaml runs it daily), so the scheduler's
 * own tables stay bounded without a cron job next to the daemon.
 *
 * Fields: `older_than_days` (default 30; the age of rows that go, see
 * dbclean.h for which rows), `dry_run` (count only), `batch` (rows per
 * DELETE).  The counts go to the task log.
 */
#include <stdio.h>

#include "mlopsd/dbclean.h"
#include "mlopsd/task.h"

#define CLEAN_DAYS_DEFAULT 30

static const struct task_field clean_fields[] = {
    {.name = "older_than_days", .kind = TASK_F_INT},
    {.name = "dry_run", .kind = TASK_F_BOOL},
    {.name = "batch", .kind = TASK_F_INT},
    {.name = NULL},
};

static enum err_code read_opts(const struct task_ctx *t,
                               struct dbclean_opts *o, struct err *e)
{
  long days, batch;
  enum err_code rc;
  if ((rc = task_field_int(t, "older_than_days", CLEAN_DAYS_DEFAULT, 1,
                           36500, &days, e)) ||
      (rc = task_field_int(t, "batch", DBCLEAN_BATCH_DEFAULT, 1, 100000,
                           &batch, e)) ||
      (rc = task_field_bool(t, "dry_run", 0, &o->dry_run, e)))
    return rc;
  o->older_than_s = (int64_t)days * 86400;
  o->batch = (int)batch;
  return ERR_OK;
}

static enum err_code clean_check(const struct task_ctx *t, struct err *e)
{
  struct dbclean_opts o = {0};
  return read_opts(t, &o, e);
}

static enum err_code clean_run(struct task_ctx *t, struct err *e)
{
  struct dbclean_opts o = {0};
  struct dbclean_result r;
  enum err_code rc = read_opts(t, &o, e);
  if (rc != ERR_OK)
    return rc;
  if (!t->db)
    return err_set(e, ERR_STATE, "db_clean: no database");
  rc = dbclean_run(t->db, &o, &r, e);
  task_logf(t,
            "%s older than %s UTC: dag_run %lld, task_instance %lld, "
            "task_log %lld, drift_report %lld rows",
            o.dry_run ? "would remove" : "removed", r.cutoff,
            (long long)r.dag_run, (long long)r.task_instance,
            (long long)r.task_log, (long long)r.drift_report);
  if (!o.dry_run)
    task_logf(t, "%lld statements (%lld retried), longest %.0f ms, %.1f s",
              (long long)r.statements, (long long)r.retries, r.max_stmt_ms,
              r.ms / 1e3);
  return rc;
}

const struct task_type task_type_db_clean = {
    .name = "db_clean",
    .fields = clean_fields,
    .check = clean_check,
    .run = clean_run,
};
