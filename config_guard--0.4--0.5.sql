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

-- Background builds: tenants queued for the background worker, by
-- config_guard.warm() (after a deploy, a restore, a failover) and by
-- refresh-ahead (stored documents a commit made stale). Not readable by
-- callers; config_guard.warm_progress shows how far each config is.
CREATE TABLE config_guard.warm_queue (
    config_id integer NOT NULL REFERENCES config_guard.configs ON DELETE CASCADE,
    tenant    text NOT NULL,
    queued_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
    PRIMARY KEY (config_id, tenant)
);
CREATE INDEX warm_queue_order ON config_guard.warm_queue (queued_at);
COMMENT ON TABLE config_guard.warm_queue IS 'tenants waiting for a background build';
REVOKE ALL ON config_guard.warm_queue FROM PUBLIC;

CREATE FUNCTION config_guard.warm(config text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'config_guard_warm'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.warm(text) IS
  'queue every tenant of a config for a background build, at config_guard.background_build_rate; returns how many were queued (the config''s owner)';

CREATE VIEW config_guard.warm_progress AS
SELECT c.name AS config, pg_catalog.count(q.tenant) AS queued, pg_catalog.min(q.queued_at) AS oldest_queued_at
  FROM config_guard.configs c
  LEFT JOIN config_guard.warm_queue q ON q.config_id OPERATOR(pg_catalog.=) c.config_id
 GROUP BY c.name;
COMMENT ON VIEW config_guard.warm_progress IS 'per config: tenants still queued for a background build';
GRANT SELECT ON config_guard.warm_progress TO PUBLIC;

-- Statistics of background builds: how many the worker made, and how many of
-- them were replaced before anyone read them (wasted refreshes).
ALTER TABLE config_guard.documents ADD COLUMN background boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN config_guard.documents.background IS 'stored by a background build (warm-up, refresh-ahead)';
DROP VIEW config_guard.config_stats;
DROP FUNCTION config_guard.config_counters();
CREATE FUNCTION config_guard.config_counters(
    OUT config_id integer, OUT hits bigint, OUT stale_hits bigint, OUT misses bigint,
    OUT builder_runs bigint, OUT builder_failures bigint, OUT coalesced_waits bigint,
    OUT wait_timeouts bigint, OUT backoff_refusals bigint, OUT total_build_ms float8,
    OUT max_build_ms float8, OUT stats_reset timestamptz, OUT self_writes bigint,
    OUT background_builds bigint, OUT wasted_refreshes bigint)
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
       k.stats_reset,
       coalesce(k.background_builds, 0) AS background_builds,
       coalesce(k.wasted_refreshes, 0) AS wasted_refreshes
  FROM config_guard.configs c
  LEFT JOIN config_guard.config_counters() k USING (config_id)
  LEFT JOIN config_guard.document_totals() d USING (config_id);
COMMENT ON VIEW config_guard.config_stats IS 'per config: cache hits, misses, builder runs and failures, waits, stored documents, background builds';
GRANT SELECT ON config_guard.config_stats TO PUBLIC;

-- Whether a reader asked for a tenant since a time (the background eviction's
-- filter, from shared memory). Not for callers.
CREATE FUNCTION config_guard.read_since(config_id integer, tenant text, since timestamptz)
RETURNS boolean
AS 'MODULE_PATHNAME', 'config_guard_read_since'
LANGUAGE C STABLE STRICT;
REVOKE ALL ON FUNCTION config_guard.read_since(integer, text, timestamptz) FROM PUBLIC;
