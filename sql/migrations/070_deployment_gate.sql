-- 070_deployment_gate.sql - the validate gate's numbers beside each
-- decision (issue 13, docs/training.md "The gate"): the paired test's row
-- count, the accuracy difference (candidate - production), its interval,
-- the exact McNemar p-value, the level and max_regression it was decided
-- with, the power-derived row count, both scores, the metric and the
-- test.  NULL on rows not written by the paired gate (manual promotions,
-- rollbacks, the point rule).  Action 'pass': a candidate the gate
-- passed (alias staging moved), so every decision is a row.

ALTER TABLE `deployment`
  ADD COLUMN IF NOT EXISTS `gate_n` int DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_difference` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_ci_low` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_ci_high` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_p_value` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_level` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_max_regression` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_min_rows` int DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_candidate_score` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_production_score` double DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_metric` varchar(32) DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `gate_method` varchar(64) DEFAULT NULL;

-- The action check restated in one statement (dropped if there, added
-- again with 'pass'): running it twice gives the same table.
ALTER TABLE `deployment` DROP CONSTRAINT IF EXISTS `deployment_action_ck`,
  ADD CONSTRAINT `deployment_action_ck`
  CHECK (`action` IN ('deploy', 'promote', 'rollback', 'skip', 'pass'));
