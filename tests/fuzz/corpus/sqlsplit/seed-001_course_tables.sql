-- 001_course_tables.sql - the course's feature-store tables.
--
-- Names, columns, types, keys and partitioning are those of the course's
-- DDL (advanced-mlops db/docker-entrypoint-initdb.d/01_create_table.sql),
-- so the course's SQL (feature extraction, label joins, the API log) runs
-- unchanged.  Differences, all deliberate:
--   * CREATE TABLE IF NOT EXISTS instead of DROP + CREATE: a migration never
--     destroys data, and an existing course database is adopted as it is;
--   * no CREATE DATABASE / USE: `mlopsd db init` connects to the configured
--     database (creating it if missing) and runs this file there;
--   * two indexes the course lacks: credit_score(customer_id, date) for the
--     label joins of live metrics, credit_predictions_api_log(created_at)
--     for the drift and metrics windows.  CREATE INDEX IF NOT EXISTS adds
--     them to a pre-existing course table too.
--
-- Statements end with ';' at the end of a line (see docs/schema.md).
-- Once applied, this file must not change: its sha256 is recorded in
-- schema_version and `mlopsd db init` refuses a modified file.

CREATE TABLE IF NOT EXISTS `customer_info` (
  `id` varchar(10) NOT NULL,
  `customer_id` varchar(10) NOT NULL,
  `date` varchar(10) NOT NULL,
  `name` varchar(50) DEFAULT NULL,
  `ssn` bigint DEFAULT NULL,
  PRIMARY KEY (`id`, `customer_id`, `date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY KEY(`date`)
PARTITIONS 8;

CREATE TABLE IF NOT EXISTS `credit_score` (
  `id` varchar(10) NOT NULL,
  `customer_id` varchar(10) NOT NULL,
  `date` varchar(10) NOT NULL,
  `credit_score` varchar(10) NOT NULL,
  PRIMARY KEY (`id`, `customer_id`, `date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY KEY(`date`)
PARTITIONS 8;

CREATE INDEX IF NOT EXISTS `credit_score_customer_date`
  ON `credit_score` (`customer_id`, `date`);

CREATE TABLE IF NOT EXISTS `credit_score_features` (
  `id` varchar(10) NOT NULL,
  `customer_id` varchar(10) NOT NULL,
  `date` varchar(10) NOT NULL,
  `name` varchar(50) DEFAULT NULL,
  `age` float DEFAULT NULL,
  `ssn` bigint DEFAULT NULL,
  `occupation` varchar(50) DEFAULT NULL,
  `annual_income` float DEFAULT NULL,
  `monthly_inhand_salary` float DEFAULT NULL,
  `num_bank_accounts` float DEFAULT NULL,
  `num_credit_card` float DEFAULT NULL,
  `interest_rate` float DEFAULT NULL,
  `num_of_loan` float DEFAULT NULL,
  `type_of_loan` text DEFAULT NULL,
  `delay_from_due_date` float DEFAULT NULL,
  `num_of_delayed_payment` float DEFAULT NULL,
  `changed_credit_limit` float DEFAULT NULL,
  `num_credit_inquiries` float DEFAULT NULL,
  `credit_mix` varchar(20) DEFAULT NULL,
  `outstanding_debt` float DEFAULT NULL,
  `credit_utilization_ratio` float DEFAULT NULL,
  `credit_history_age` float DEFAULT NULL,
  `payment_of_min_amount` varchar(10) DEFAULT NULL,
  `total_emi_per_month` float DEFAULT NULL,
  `amount_invested_monthly` float DEFAULT NULL,
  `payment_behaviour` varchar(50) DEFAULT NULL,
  `monthly_balance` float DEFAULT NULL,
  PRIMARY KEY (`id`, `customer_id`, `date`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY KEY(`date`)
PARTITIONS 8;

CREATE TABLE IF NOT EXISTS `credit_score_features_target` (
  `base_dt` varchar(10) NOT NULL,
  `id` varchar(10) NOT NULL,
  `customer_id` varchar(10) NOT NULL,
  `date` varchar(10) NOT NULL,
  `age` float DEFAULT NULL,
  `occupation` varchar(50) DEFAULT NULL,
  `annual_income` float DEFAULT NULL,
  `monthly_inhand_salary` float DEFAULT NULL,
  `num_bank_accounts` float DEFAULT NULL,
  `num_credit_card` float DEFAULT NULL,
  `interest_rate` float DEFAULT NULL,
  `num_of_loan` float DEFAULT NULL,
  `type_of_loan` text DEFAULT NULL,
  `delay_from_due_date` float DEFAULT NULL,
  `num_of_delayed_payment` float DEFAULT NULL,
  `changed_credit_limit` float DEFAULT NULL,
  `num_credit_inquiries` float DEFAULT NULL,
  `credit_mix` varchar(20) DEFAULT NULL,
  `outstanding_debt` float DEFAULT NULL,
  `credit_utilization_ratio` float DEFAULT NULL,
  `credit_history_age` float DEFAULT NULL,
  `payment_of_min_amount` varchar(10) DEFAULT NULL,
  `total_emi_per_month` float DEFAULT NULL,
  `amount_invested_monthly` float DEFAULT NULL,
  `payment_behaviour` varchar(50) DEFAULT NULL,
  `monthly_balance` float DEFAULT NULL,
  `credit_score` varchar(10) NOT NULL,
  PRIMARY KEY (`base_dt`, `id`, `customer_id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
PARTITION BY KEY(`base_dt`)
PARTITIONS 7;

CREATE TABLE IF NOT EXISTS `credit_predictions_api_log` (
  `id` bigint(20) NOT NULL AUTO_INCREMENT,
  `customer_id` varchar(10) NOT NULL,
  `features` json NOT NULL,
  `prediction` varchar(10) NOT NULL,
  `confidence` float NOT NULL,
  `elapsed_ms` int NOT NULL,
  `created_at` TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE INDEX IF NOT EXISTS `credit_predictions_api_log_created_at`
  ON `credit_predictions_api_log` (`created_at`);
