-- 050_train_trials.sql - grid-search trials as claimable work items
-- (docs/training.md "Shared trials"; Airflow's dynamic task mapping).
--
--   train_search  one grid search of a `train` run with shared trials:
--                 the model, logical date and what every daemon that
--                 helps must reproduce (spec and data sha256, rounds); the
--                 coordinating daemon (owner) heartbeats it while it
--                 waits; helpers take trials only of searches in state
--                 'running' with a fresh heartbeat.
--   train_trial   one grid point of a search, claimed like a task
--                 instance (FOR UPDATE SKIP LOCKED, claimed_by +
--                 heartbeat_at as the lease); a finished trial holds its
--                 metrics (JSON), params (JSON) and the kept model
--                 (UBJSON, hex) so the coordinator can register the best
--                 one whichever daemon trained it.
--
-- Re-runnable: CREATE TABLE IF NOT EXISTS.

CREATE TABLE IF NOT EXISTS `train_search` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `model` varchar(128) NOT NULL,
  `ds` date NOT NULL,
  `run_prefix` varchar(160) NOT NULL,
  `spec_sha256` char(64) NOT NULL,
  `data_sha256` char(64) NOT NULL,
  `trials` int NOT NULL,
  `num_boost_round` int NOT NULL,
  `early_stopping_rounds` int NOT NULL,
  `state` varchar(16) NOT NULL DEFAULT 'running',
  `owner` varchar(255) NOT NULL,
  `heartbeat_at` datetime(6) NOT NULL,
  `created_at` datetime(6) NOT NULL,
  `end_date` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `train_search_state` (`state`, `heartbeat_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `train_trial` (
  `search_id` bigint NOT NULL,
  `trial` int NOT NULL,
  `state` varchar(16) NOT NULL DEFAULT 'queued',
  `try_number` int NOT NULL DEFAULT 0,
  `claimed_by` varchar(255) DEFAULT NULL,
  `hostname` varchar(255) DEFAULT NULL,
  `heartbeat_at` datetime(6) DEFAULT NULL,
  `start_date` datetime(6) DEFAULT NULL,
  `end_date` datetime(6) DEFAULT NULL,
  `seconds` double DEFAULT NULL,
  `metrics` longtext DEFAULT NULL,
  `params` longtext DEFAULT NULL,
  `model_hex` longtext DEFAULT NULL,
  `error` text DEFAULT NULL,
  PRIMARY KEY (`search_id`, `trial`),
  KEY `train_trial_state` (`state`, `heartbeat_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
