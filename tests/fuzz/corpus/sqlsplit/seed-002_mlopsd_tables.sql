-- 002_mlopsd_tables.sql - mlopsd's own state: DAGs, runs, task instances,
-- task logs, deployments, drift reports and live metrics.
--
-- Conventions:
--   * every DATETIME holds UTC (mlopsd computes and writes the values; the
--     DEFAULT CURRENT_TIMESTAMP columns follow the session time zone, which
--     mlopsd sets to '+00:00');
--   * states are short strings guarded by CHECK constraints (MariaDB
--     enforces them), so a bad state is an error, not a silent '' as with
--     ENUM in non-strict mode, and a new state is one ALTER TABLE;
--   * ids of DAGs, runs and tasks are varchar(250) like Airflow's;
--   * no foreign keys: runs, task instances and logs are written by the
--     scheduler in a fixed order and deleted (if ever) as a whole, and FK
--     checks would add lock waits on the hot claim/heartbeat paths.
--
-- Statements end with ';' at the end of a line (see docs/schema.md).

-- One row per DAG file seen; holds the pause flag across restarts.
CREATE TABLE IF NOT EXISTS `dag` (
  `dag_id` varchar(250) NOT NULL,
  `is_paused` tinyint(1) NOT NULL DEFAULT 0,
  `last_parsed_at` datetime(6) DEFAULT NULL,
  `fileloc` varchar(1024) DEFAULT NULL,
  PRIMARY KEY (`dag_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per DAG run.  UNIQUE (dag_id, logical_date): a logical date runs
-- once, whoever (scheduler, manual trigger, backfill) asks first.
-- claimed_by/heartbeat_at: the daemon that drives the run and its lease.
CREATE TABLE IF NOT EXISTS `dag_run` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `run_id` varchar(250) NOT NULL,
  `dag_id` varchar(250) NOT NULL,
  `logical_date` datetime NOT NULL,
  `run_type` varchar(16) NOT NULL,
  `state` varchar(16) NOT NULL DEFAULT 'queued',
  `conf` json DEFAULT NULL,
  `queued_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `start_date` datetime(6) DEFAULT NULL,
  `end_date` datetime(6) DEFAULT NULL,
  `external_trigger` tinyint(1) NOT NULL DEFAULT 0,
  `claimed_by` varchar(255) DEFAULT NULL,
  `heartbeat_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `dag_run_run_id` (`run_id`),
  UNIQUE KEY `dag_run_dag_logical` (`dag_id`, `logical_date`),
  KEY `dag_run_dag_id` (`dag_id`, `id`),
  KEY `dag_run_state_queued` (`state`, `queued_at`),
  CONSTRAINT `dag_run_run_type_ck`
    CHECK (`run_type` IN ('scheduled', 'manual', 'backfill')),
  CONSTRAINT `dag_run_state_ck`
    CHECK (`state` IN ('queued', 'running', 'success', 'failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per task of a run; try_number counts attempts (0 = not started).
-- next_try_at: when an up_for_retry task may run again.
CREATE TABLE IF NOT EXISTS `task_instance` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `run_id` varchar(250) NOT NULL,
  `dag_id` varchar(250) NOT NULL,
  `task_id` varchar(250) NOT NULL,
  `try_number` int NOT NULL DEFAULT 0,
  `max_tries` int NOT NULL DEFAULT 1,
  `state` varchar(16) NOT NULL DEFAULT 'scheduled',
  `start_date` datetime(6) DEFAULT NULL,
  `end_date` datetime(6) DEFAULT NULL,
  `duration` double DEFAULT NULL,
  `hostname` varchar(255) DEFAULT NULL,
  `pid` int DEFAULT NULL,
  `claimed_by` varchar(255) DEFAULT NULL,
  `heartbeat_at` datetime(6) DEFAULT NULL,
  `next_try_at` datetime(6) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `task_instance_run_task` (`run_id`, `task_id`),
  KEY `task_instance_state_next` (`state`, `next_try_at`),
  KEY `task_instance_dag_run` (`dag_id`, `run_id`),
  CONSTRAINT `task_instance_state_ck`
    CHECK (`state` IN ('scheduled', 'queued', 'running', 'success',
                       'failed', 'up_for_retry', 'skipped',
                       'upstream_failed'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Task output, one row per line, read back in id order per attempt.
CREATE TABLE IF NOT EXISTS `task_log` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `run_id` varchar(250) NOT NULL,
  `task_id` varchar(250) NOT NULL,
  `try_number` int NOT NULL,
  `ts` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `stream` varchar(8) NOT NULL DEFAULT 'log',
  `line` text NOT NULL,
  PRIMARY KEY (`id`),
  KEY `task_log_attempt` (`run_id`, `task_id`, `try_number`, `id`),
  CONSTRAINT `task_log_stream_ck`
    CHECK (`stream` IN ('stdout', 'stderr', 'log'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Every alias change of the model registry (and every decision not to
-- change it): who moved which alias of which model from what to what, why.
CREATE TABLE IF NOT EXISTS `deployment` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `model` varchar(128) NOT NULL,
  `alias` varchar(64) NOT NULL,
  `from_version` int DEFAULT NULL,
  `to_version` int DEFAULT NULL,
  `action` varchar(16) NOT NULL,
  `reason` varchar(1024) DEFAULT NULL,
  `actor` varchar(255) DEFAULT NULL,
  `dag_run_id` bigint DEFAULT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`id`),
  KEY `deployment_model` (`model`, `id`),
  CONSTRAINT `deployment_action_ck`
    CHECK (`action` IN ('deploy', 'promote', 'rollback', 'skip'))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Result of one drift check: per-feature scores (PSI) as JSON, the worst
-- score and the verdict the drift task reached.
CREATE TABLE IF NOT EXISTS `drift_report` (
  `id` bigint NOT NULL AUTO_INCREMENT,
  `model` varchar(128) NOT NULL,
  `version` int DEFAULT NULL,
  `window_rows` int NOT NULL DEFAULT 0,
  `scores` json DEFAULT NULL,
  `max_score` double DEFAULT NULL,
  `verdict` varchar(32) NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`id`),
  KEY `drift_report_model` (`model`, `id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Accuracy of served predictions once labels arrive, per model version and
-- day (UTC): n labelled predictions, accuracy and macro F1 over them.
CREATE TABLE IF NOT EXISTS `live_metrics` (
  `model` varchar(128) NOT NULL,
  `version` int NOT NULL,
  `day` date NOT NULL,
  `n` int NOT NULL DEFAULT 0,
  `accuracy` double DEFAULT NULL,
  `f1_macro` double DEFAULT NULL,
  PRIMARY KEY (`model`, `version`, `day`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
