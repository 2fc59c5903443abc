\echo Use "ALTER EXTENSION config_guard UPDATE TO '0.4'" to load this file. \quit

-- The trust model (README, "Security") -------------------------------------------------
-- A config is owned by its builder's owner: it follows ALTER FUNCTION ... OWNER
-- TO and REASSIGN OWNED, and DROP ROLE of that role is refused while it owns
-- the builder. The owner recorded at define time is no longer needed.
ALTER TABLE config_guard.configs DROP COLUMN owner;

-- Prunes of a config's marks, counted so that an export walk in progress
-- notices a prune followed by writes (it compares counts of marks).
ALTER TABLE config_guard.configs ADD COLUMN prunes bigint NOT NULL DEFAULT 0;

-- Export cursors are bound to one definition of a config: a config defined
-- again, even under the same id after DROP EXTENSION, is another one.
ALTER TABLE config_guard.configs
  ADD COLUMN definition_id uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid();
COMMENT ON COLUMN config_guard.configs.definition_id IS 'identity of this definition; export cursors are bound to it';

-- Only config_guard attaches its trigger function (as the extension's owner,
-- on the sources of a config); the function also refuses to act anywhere else.
REVOKE ALL ON FUNCTION config_guard.invalidation_trigger() FROM PUBLIC;

COMMENT ON FUNCTION config_guard.invalidate(text, anyelement) IS
  'mark one tenant''s document stale, in the calling transaction (the config''s owner)';
COMMENT ON FUNCTION config_guard.invalidate_all(text) IS
  'mark every tenant''s document of a config stale, in the calling transaction (the config''s owner)';

-- Tenant keys are canonical from 0.4: the same whatever the session's
-- settings. For integers, oid, uuid, bool, text and varchar they are the
-- type's output, as before; for other tenant types they changed, so the
-- documents and marks of those configs are dropped (rebuilt on first use).
WITH changed AS (
  SELECT c.config_id FROM config_guard.configs c JOIN pg_catalog.pg_type t ON t.oid = c.tenant_type
   WHERE (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END)
         NOT IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'oid'::regtype, 'uuid'::regtype,
                 'bool'::regtype, 'text'::regtype, 'varchar'::regtype)),
dropped_marks AS (DELETE FROM config_guard.invalidations i USING changed WHERE i.config_id = changed.config_id)
DELETE FROM config_guard.documents d USING changed WHERE d.config_id = changed.config_id;

-- Pruning waits for the rebuilds in flight, which could otherwise store a
-- document that misses a write whose mark the prune removed (src/prune.hpp).
CREATE OR REPLACE FUNCTION config_guard.prune_invalidations(older_than interval DEFAULT '1 hour')
RETURNS bigint
AS 'MODULE_PATHNAME', 'config_guard_prune_invalidations'
LANGUAGE C VOLATILE;

-- Statistics: builds whose builder wrote to the config's own sources.
DROP VIEW config_guard.config_stats;
DROP FUNCTION config_guard.config_counters();
CREATE FUNCTION config_guard.config_counters(
    OUT config_id integer, OUT hits bigint, OUT stale_hits bigint, OUT misses bigint,
    OUT builder_runs bigint, OUT builder_failures bigint, OUT coalesced_waits bigint,
    OUT wait_timeouts bigint, OUT backoff_refusals bigint, OUT total_build_ms float8,
    OUT max_build_ms float8, OUT stats_reset timestamptz, OUT self_writes bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'config_guard_config_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.config_counters() IS 'the shared-memory counters behind config_guard.config_stats';

CREATE VIEW config_guard.config_stats AS
SELECT c.name AS config,
       coalesce(k.hits, 0) AS hits,
       coalesce(k.stale_hits, 0) AS stale_hits,
       coalesce(k.misses, 0) AS misses,
       coalesce(k.builder_runs, 0) AS builder_runs,
       coalesce(k.builder_failures, 0) AS builder_failures,
       coalesce(k.coalesced_waits, 0) AS coalesced_waits,
       coalesce(k.wait_timeouts, 0) AS wait_timeouts,
       coalesce(k.backoff_refusals, 0) AS backoff_refusals,
       coalesce(k.self_writes, 0) AS self_writes,
       CASE WHEN k.builder_runs > 0 THEN k.total_build_ms / k.builder_runs END AS avg_build_ms,
       k.max_build_ms,
       coalesce(d.documents, 0) AS documents,
       coalesce(d.document_bytes, 0) AS document_bytes,
       k.stats_reset
  FROM config_guard.configs c
  LEFT JOIN config_guard.config_counters() k USING (config_id)
  LEFT JOIN config_guard.document_totals() d USING (config_id);
COMMENT ON VIEW config_guard.config_stats IS 'per config: cache hits, misses, builder runs and failures, waits, stored documents';
GRANT SELECT ON config_guard.config_stats TO PUBLIC;

-- Drivers send parameters untyped (psycopg 3, node-postgres, pgbench -M
-- prepared, a quoted literal in psql): these overloads take the tenant as
-- text, which the same C functions convert to the tenant column's type.
CREATE FUNCTION config_guard.get(config text, tenant text, max_stale interval DEFAULT '0')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'config_guard_get'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.get(text, text, interval) IS
  'get() for a tenant passed as text or as an untyped parameter';

CREATE FUNCTION config_guard.export_page(config text, tenant text, after text DEFAULT NULL,
                                         page_size integer DEFAULT 1000)
RETURNS TABLE (source regclass, item jsonb, cursor text)
AS 'MODULE_PATHNAME', 'config_guard_export_page'
LANGUAGE C STABLE ROWS 1000;
COMMENT ON FUNCTION config_guard.export_page(text, text, text, integer) IS
  'export_page() for a tenant passed as text or as an untyped parameter';

CREATE FUNCTION config_guard.invalidate(config text, tenant text)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_invalidate'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.invalidate(text, text) IS
  'invalidate() for a tenant passed as text or as an untyped parameter';

-- pg_upgrade refuses a cluster whose tables hold a regprocedure (function
-- oids are not kept across it), and a dump carries oids as numbers. The
-- builder is kept as its oid, its schema-qualified signature and the home of
-- that oid (the cluster's system identifier, the database's oid and this
-- table's oid): in its
-- home the oid is the builder, whatever its name; a row from elsewhere
-- (pg_upgrade, a restore) adopts the function its signature names at its
-- first use. config_guard keeps the signature current through renames.
ALTER TABLE config_guard.configs ALTER COLUMN builder TYPE oid USING builder::oid;
ALTER TABLE config_guard.configs ADD COLUMN builder_signature text, ADD COLUMN builder_home text;
SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);  -- restored when the script ends
UPDATE config_guard.configs
   SET builder_signature = builder::regprocedure::text,
       builder_home = (SELECT system_identifier FROM pg_control_system())::text || ':' ||
                      (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())::text || ':' ||
                      'config_guard.configs'::regclass::oid::text;
ALTER TABLE config_guard.configs ALTER COLUMN builder_signature SET NOT NULL,
                                 ALTER COLUMN builder_home SET NOT NULL;
COMMENT ON COLUMN config_guard.configs.builder IS 'the builder''s oid, valid where builder_home says';
COMMENT ON COLUMN config_guard.configs.builder_signature IS 'the builder, schema-qualified, as regprocedure prints it';
COMMENT ON COLUMN config_guard.configs.builder_home IS 'system identifier:database oid:configs table oid where the oid is valid';

-- The invalidation triggers of existing configs are made again: as 0.4
-- creates them, firing ALWAYS (also on a logical replication subscriber).
SELECT config_guard.install_triggers(name) FROM config_guard.configs;
