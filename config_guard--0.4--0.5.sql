\echo Use "ALTER EXTENSION config_guard UPDATE TO '0.5'" to load this file. \quit

-- Shared sources: tables every tenant's document reads (countries, plans).
-- They have no tenant column; any change to one marks every tenant of the
-- config stale. They are not exported.
ALTER TABLE config_guard.config_sources ADD COLUMN shared boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN config_guard.config_sources.shared IS
  'a table read by every tenant''s document: any change to it invalidates the whole config';

-- A builder may read only what the config's triggers cover: its sources (and
-- their partitions and children) and its shared sources. define() takes the
-- shared sources.
DROP FUNCTION config_guard.define(text, regprocedure, regclass[], name);
CREATE FUNCTION config_guard.define(config text, builder regprocedure, sources regclass[],
                                    tenant_column name DEFAULT 'tenant_id',
                                    shared_sources regclass[] DEFAULT '{}')
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_define'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.define(text, regprocedure, regclass[], name, regclass[]) IS
  'define a config: a builder (tenant) -> jsonb over source tables keyed by tenant_column, and shared tables read by every tenant';

-- Child sources: tables without the tenant column that reach a source which
-- has it through foreign keys (variations -> experiments.account_id). `via`
-- names the foreign key of the child to its parent source; define() finds it.
ALTER TABLE config_guard.config_sources ADD COLUMN via name;
COMMENT ON COLUMN config_guard.config_sources.via IS
  'for a child source: its foreign key to the parent source it reaches its tenant through';

-- Compaction: the background cleanup folds a tenant's committed marks into
-- one row that stands for all of them (weight), so that a tenant written
-- often and read rarely keeps one mark, not one per write transaction. Export
-- walks count marks by weight: a compaction changes no walk's view.
ALTER TABLE config_guard.invalidations ADD COLUMN weight bigint NOT NULL DEFAULT 1;
COMMENT ON COLUMN config_guard.invalidations.weight IS 'the write transactions this mark stands for, after compaction';
