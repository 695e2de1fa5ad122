-- 051_train_workers.sql - distributed training (`train` with `workers: N`,
-- docs/training.md "Distributed training") as a kind of train_search.
--
--   kind       'grid' (050: shared trials, one row per grid point) or
--              'workers' (one train_trial row per rank: rank 0 is the
--              coordinating run, state 'coord'; ranks 1..N-1 are claimed
--              by other daemons' trial helpers);
--   workers    N, the number of ranks (each reads MOD(key, N) = rank);
--   tracker    host:port of the XGBoost (rabit) tracker rank 0 started;
--   prep_json  rank 0's fitted preprocessing, so every rank builds the same
--              columns.
--
-- Re-runnable: ADD COLUMN IF NOT EXISTS.

ALTER TABLE `train_search`
  ADD COLUMN IF NOT EXISTS `kind` varchar(8) NOT NULL DEFAULT 'grid',
  ADD COLUMN IF NOT EXISTS `workers` int NOT NULL DEFAULT 0,
  ADD COLUMN IF NOT EXISTS `tracker` varchar(255) DEFAULT NULL,
  ADD COLUMN IF NOT EXISTS `prep_json` longtext DEFAULT NULL;
