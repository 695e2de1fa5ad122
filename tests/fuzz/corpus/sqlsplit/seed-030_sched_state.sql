-- 030_sched_state.sql - what the DAG scheduler keeps besides runs and task
-- instances (docs/scheduler.md).
--
--   dag.last_scheduled_date  the latest cron fire time (UTC) a run was
--                            created for: catch-up starts after it, and a
--                            second daemon never creates it again;
--   dag.import_error         why the DAG's file stopped loading (the last
--                            good version keeps running), NULL when fine;
--   dag_run_dag_state        counts queued/running runs of one DAG
--                            (max_active_runs) and finds the oldest queued
--                            one without reading the DAG's history.
--
-- Re-runnable: ADD ... IF NOT EXISTS.

ALTER TABLE `dag`
  ADD COLUMN IF NOT EXISTS `last_scheduled_date` datetime DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `import_error` text DEFAULT NULL;

ALTER TABLE `dag_run`
  ADD INDEX IF NOT EXISTS `dag_run_dag_state` (`dag_id`, `state`, `logical_date`);
