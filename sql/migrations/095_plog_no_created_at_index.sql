-- 095_plog_no_created_at_index.sql - the prediction log without its
-- created_at index (issue 16, docs/serving.md "Issue 16, third round").
--
-- Why: every logged prediction paid for a third B-tree (after the primary
-- key and the exactly-once key), and since 040 partitions the table by
-- UNIX_TIMESTAMP(created_at) (daily partitions on UTC midnights by
-- default, src/logpart.c) the time windows read by mlopsd are answered by
-- partition pruning instead: the label feedback (src/task_feedback.c,
-- created_at >= day AND < day) reads exactly its days' partitions, drift
-- (src/task_drift.c) reads the newest rows by the primary key's id, and
-- compare (src/compare.c) joins on the exactly-once key.  An ad hoc window
-- shorter than a partition (README's "last hour") reads that partition
-- whole; add the index back with CREATE INDEX
-- credit_predictions_api_log_created_at ON credit_predictions_api_log
-- (created_at) if such queries matter more than the insert cost.
--
-- Measured (bench/plog_size.sh through the daemon's writer, LZ4 pages,
-- 50,000 rows, two sessions of four rounds taking turns, load 12-17):
-- MariaDB CPU per row (insert and page flush) lower without the index in
-- all eight rounds, by 1.2-5.8 us; medians 18.2 -> 14.9 and 17.4 -> 14.9
-- us; 513 -> 503 B/row on disk.  With 31 daily partitions (a month's
-- retention) the same as with three.  The course's columns, their types
-- and the two keys stay as they are.
--
-- An in-place ALTER (no table copy).  Re-runnable: IF EXISTS.

DROP INDEX IF EXISTS `credit_predictions_api_log_created_at`
  ON `credit_predictions_api_log`;
