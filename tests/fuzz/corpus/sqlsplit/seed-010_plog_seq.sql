-- 010_plog_seq.sql - exactly-once keys for the prediction log.
--
-- mlopsd's prediction log writer (src/plog.c, docs/serving.md) numbers
-- every row it writes: log_source is the random id of the writer's spool
-- directory (one per daemon installation), log_seq a number that never
-- repeats for that source, also across restarts.  Rows are inserted with
-- ON DUPLICATE KEY UPDATE log_seq = log_seq, so a batch replayed from the
-- spool after a lost COMMIT answer or a crash cannot appear twice.
--
-- model_name / model_version say which model answered: the course's
-- table is shared by every model mlopsd serves.  All four columns are
-- NULL-able and come after the course's columns, so the course's queries
-- and rows written by other tools (NULL keys never collide in a UNIQUE
-- index) keep working unchanged.
--
-- Re-runnable: IF NOT EXISTS on every part (see docs/schema.md).

ALTER TABLE `credit_predictions_api_log`
  ADD COLUMN IF NOT EXISTS `model_name` varchar(128) DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `model_version` int DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `log_source` bigint DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `log_seq` bigint DEFAULT NULL;

CREATE UNIQUE INDEX IF NOT EXISTS `credit_predictions_api_log_seq`
  ON `credit_predictions_api_log` (`log_source`, `log_seq`);
