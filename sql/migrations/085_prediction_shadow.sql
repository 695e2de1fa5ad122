-- 085_prediction_shadow.sql - the shadow challenger's predictions (issue
-- 13 part 6, docs/serving.md "Shadow challenger").
--
-- With models.shadow on, the server also runs every answered item through
-- the version aliased `staging` and the prediction log writer
-- (src/plog.c) stores that answer here, in the transaction that stores
-- the item's row of credit_predictions_api_log, under the same
-- (log_source, log_seq): the link to the logged row, and the key that
-- makes a replayed batch harmless (ON DUPLICATE KEY UPDATE) as for the
-- log itself.  created_at and model_name repeat the logged row's so a
-- window needs no join; model_version is the shadow's version (the
-- production version is the logged row's).  confidence is NULL for a
-- regression model.
--
-- Not partitioned: `mlopsd models compare` reads it by (model_name,
-- created_at).  Re-runnable (IF NOT EXISTS).

CREATE TABLE IF NOT EXISTS `prediction_shadow` (
  `log_source` bigint NOT NULL,
  `log_seq` bigint NOT NULL,
  `created_at` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `model_name` varchar(128) NOT NULL,
  `model_version` int NOT NULL,
  `prediction` varchar(10) NOT NULL,
  `confidence` double DEFAULT NULL,
  PRIMARY KEY (`log_source`, `log_seq`),
  KEY `prediction_shadow_model` (`model_name`, `created_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
