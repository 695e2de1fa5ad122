-- 090_live_metrics_recall.sql - per-class recall beside accuracy and
-- macro-F1 in live_metrics (issue 13, docs/monitoring.md "The metrics"):
-- {"Good": {"n": 60, "recall": 0.5}, ...}, one member per class that was
-- a label that day (n: its labelled predictions, recall: the share of them
-- the version got right).  NULL on rows written before.

ALTER TABLE `live_metrics`
  ADD COLUMN IF NOT EXISTS `recall` longtext DEFAULT NULL
    CHECK (`recall` IS NULL OR JSON_VALID(`recall`));
