-- 080_dag_run_logical_us.sql - Airflow 3 trigger semantics (issue 18).
--
-- logical_date stays the scheduling key in whole seconds (ds, ts and the
-- run's templates derive from it).  Two columns carry what an Airflow 3
-- client gave on POST /api/v2/dags/{dag_id}/dagRuns:
--   logical_date_us   the fraction of a second of the logical date
--                     (0..999999), kept and answered back;
--   logical_date_null 1 when the client sent "logical_date": null; the run
--                     is scheduled at its run_after (the trigger's
--                     instant, logical_date + logical_date_us) and the API
--                     answers "logical_date": null.
-- The unique key now includes the fraction, so two triggers without a
-- date in the same second are two runs (as in Airflow 3), while a logical
-- date in whole seconds (scheduler, backfill, CLI) still runs once.
--
-- Re-runnable: ADD ... IF NOT EXISTS, DROP ... IF EXISTS.

ALTER TABLE `dag_run`
  ADD COLUMN IF NOT EXISTS `logical_date_us` int unsigned NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS `logical_date_null` tinyint(1) NOT NULL DEFAULT 0,
  ADD UNIQUE KEY IF NOT EXISTS `dag_run_dag_logical_us`
    (`dag_id`, `logical_date`, `logical_date_us`),
  DROP INDEX IF EXISTS `dag_run_dag_logical`;
