-- 040_plog_partitions.sql - the prediction log, partitioned by time and
-- page-compressed (issue 20, docs/operations.md "Disk").
--
-- Why:
--   * Retention in O(1): rows leave by whole partitions (ALTER TABLE ...
--     DROP PARTITION unlinks one file) instead of DELETEs that write undo
--     for every row.  RANGE on UNIX_TIMESTAMP(created_at) (created_at is a
--     TIMESTAMP, so the function is allowed and the bounds are UTC epoch
--     seconds, whatever the session's time_zone).  The daemon (src/logpart.c)
--     splits `pmax` into the next partitions ahead of time and drops the
--     ones behind the retention window; this file only creates `pmax`, the
--     catch-all, because a migration cannot know today's date.
--   * Every unique key of a partitioned table must hold the partitioning
--     column, hence PRIMARY KEY (id, created_at) and UNIQUE (log_source,
--     log_seq, created_at).  Exactly-once still holds: the writer (src/plog.c)
--     sets created_at itself, from the answer's time, and keeps it in the
--     spool record, so a replayed row carries the same created_at as the
--     first copy, falls in the same partition and hits the same key.
--   * PAGE_COMPRESSED with level 1: bench/bench_plog_size.c measured 1,259
--     bytes per row on disk (1,040 data + indexes) before, 264 after, for
--     about 10 us more of MariaDB CPU per row (spent when pages are written,
--     off the insert).  ROW_FORMAT=COMPRESSED cost 2-7 times the CPU for less;
--     a COMPRESSED column kept only a third.  The columns and the JSON type
--     stay as they are: JSON_EXTRACT(features, ...) works unchanged.
--     Needs a file system with hole punching (ext4, xfs, btrfs); elsewhere
--     MariaDB stores the pages uncompressed and says so in its error log.
--
-- On a populated table this ALTER copies the table once (and the daemon's
-- first split copies the rows held in `pmax` once more).  Re-runnable: the
-- statement describes the end state.

ALTER TABLE `credit_predictions_api_log`
  DROP PRIMARY KEY,
  ADD PRIMARY KEY (`id`, `created_at`),
  DROP INDEX IF EXISTS `credit_predictions_api_log_seq`,
  ADD UNIQUE KEY `credit_predictions_api_log_seq`
    (`log_source`, `log_seq`, `created_at`),
  PAGE_COMPRESSED = 1,
  PAGE_COMPRESSION_LEVEL = 1
  PARTITION BY RANGE (UNIX_TIMESTAMP(`created_at`))
  (PARTITION `pmax` VALUES LESS THAN MAXVALUE);
