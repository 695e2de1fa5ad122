-- 060_registry_objects.sql - the model registry on object storage
-- (models.registry_url: s3://BUCKET/PREFIX; docs/registry.md).
--
-- Object stores have no rename and no lock, so what the directory
-- registry gets from rename(2) and flock(2) lives here:
--   registry_model    one row per model; last_version is the counter that
--                     numbers versions: a commit locks the row
--                     (SELECT ... FOR UPDATE), so concurrent writers on any
--                     number of hosts get N+1, N+2... without gaps or
--                     duplicates, and a writer that dies before COMMIT
--                     uses up no number;
--   registry_version  a version exists once its row is committed: files
--                     (uploaded first under PREFIX/NAME/drafts/DRAFT/) are
--                     listed in manifest with their size and sha256, which
--                     readers and caches verify;
--   registry_alias    alias -> version; serial grows on every change, so
--                     a replica polls (version, serial) to see a swap.
-- Not used by the directory registry (the default). Re-runnable.

CREATE TABLE IF NOT EXISTS `registry_model` (
  `model` varchar(128) NOT NULL,
  `last_version` int NOT NULL DEFAULT 0,
  `created_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`model`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `registry_version` (
  `model` varchar(128) NOT NULL,
  `version` int NOT NULL,
  `draft` varchar(64) NOT NULL,
  `manifest` mediumtext NOT NULL,
  `created_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`model`, `version`),
  CONSTRAINT `registry_version_ck` CHECK (`version` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE IF NOT EXISTS `registry_alias` (
  `model` varchar(128) NOT NULL,
  `alias` varchar(128) NOT NULL,
  `version` int NOT NULL,
  `serial` bigint NOT NULL DEFAULT 1,
  `updated_at` datetime(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  PRIMARY KEY (`model`, `alias`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
