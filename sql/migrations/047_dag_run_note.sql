-- 047_dag_run_note.sql - Airflow's run note (issue 18): the `note` a
-- trigger (POST /api/v2/dags/{dag_id}/dagRuns) or a PATCH of the run
-- stores and the admin API answers in every DAG run object
-- (docs/admin-api.md).  NULL: no note.
--
-- Re-runnable: ADD ... IF NOT EXISTS.

ALTER TABLE `dag_run`
  ADD COLUMN IF NOT EXISTS `note` varchar(1000) DEFAULT NULL;
