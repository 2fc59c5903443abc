\echo Use "ALTER EXTENSION config_guard UPDATE TO '0.2'" to load this file. \quit

-- Materialized configuration cache --------------------------------------------
-- Written only by the extension's functions (as the tables' owner). Not dumped:
-- documents and invalidations refer to transaction ids of this cluster, and
-- a restored database rebuilds its documents on first use.

-- One document per (config, tenant). `snapshot` is the snapshot the builder
-- ran under: the document is fresh while every invalidation the reader can
-- see was already visible in it. `compacted` counts the invalidations that
-- rebuilds have folded into this row (see export_page's change detection).
CREATE TABLE config_guard.documents (
    config_id integer NOT NULL REFERENCES config_guard.configs ON DELETE CASCADE,
    tenant    text NOT NULL,
    document  jsonb NOT NULL,
    built_at  timestamptz NOT NULL,
    snapshot  pg_snapshot NOT NULL,
    build_ms  float8 NOT NULL,
    compacted bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (config_id, tenant)
);
COMMENT ON TABLE config_guard.documents IS 'the stored configuration document of each tenant';

-- Appended by the source triggers in the writing transaction: never updated,
-- so writers of one tenant never wait for each other. A NULL tenant stands
-- for every tenant of the config (TRUNCATE, invalidate_all).
CREATE TABLE config_guard.invalidations (
    config_id integer NOT NULL,
    tenant    text,
    xid       xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    at        timestamptz NOT NULL DEFAULT pg_catalog.now()
);
CREATE UNIQUE INDEX invalidations_key ON config_guard.invalidations (config_id, tenant, xid) NULLS NOT DISTINCT;
-- Config-wide marks are rare: their own partial index is empty most of the
-- time, which makes get()'s probe for them nearly free.
CREATE INDEX invalidations_config_wide ON config_guard.invalidations (config_id) WHERE tenant IS NULL;
COMMENT ON TABLE config_guard.invalidations IS 'tenants changed by committed or running transactions, until a rebuild folds them in';

-- Roles allowed to read a config's documents besides its owner.
CREATE TABLE config_guard.readers (
    config_id integer NOT NULL REFERENCES config_guard.configs ON DELETE CASCADE,
    reader    regrole NOT NULL,
    PRIMARY KEY (config_id, reader)
);
COMMENT ON TABLE config_guard.readers IS 'roles granted read access to a config with config_guard.grant_read()';
SELECT pg_catalog.pg_extension_config_dump('config_guard.readers', '');

REVOKE ALL ON config_guard.documents, config_guard.invalidations, config_guard.readers FROM PUBLIC;
GRANT SELECT ON config_guard.readers TO PUBLIC;

-- Invalidation ---------------------------------------------------------------------

CREATE FUNCTION config_guard.invalidation_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'config_guard_invalidation_trigger'
LANGUAGE C;
COMMENT ON FUNCTION config_guard.invalidation_trigger() IS
  'statement trigger installed on config sources: invalidates the tenants a statement touched';

CREATE FUNCTION config_guard.invalidate(config text, tenant anyelement)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_invalidate'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.invalidate(text, anyelement) IS
  'mark one tenant''s document stale, in the calling transaction';

CREATE FUNCTION config_guard.invalidate_all(config text)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_invalidate_all'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.invalidate_all(text) IS
  'mark every tenant''s document of a config stale, in the calling transaction';

-- Reading -------------------------------------------------------------------------------

CREATE FUNCTION config_guard.get(config text, tenant anyelement, max_stale interval DEFAULT '0')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'config_guard_get'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.get(text, anyelement, interval) IS
  'the tenant''s configuration document: stored if fresh, else rebuilt once however many callers ask';

CREATE FUNCTION config_guard.grant_read(config text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_grant_read'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.grant_read(text, regrole) IS 'allow a role to read a config with get()';

CREATE FUNCTION config_guard.revoke_read(config text, role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_revoke_read'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.revoke_read(text, regrole) IS 'withdraw a grant_read()';

-- Statistics ---------------------------------------------------------------------------

CREATE FUNCTION config_guard.config_counters(
    OUT config_id integer, OUT hits bigint, OUT stale_hits bigint, OUT misses bigint,
    OUT builder_runs bigint, OUT builder_failures bigint, OUT coalesced_waits bigint,
    OUT wait_timeouts bigint, OUT backoff_refusals bigint, OUT total_build_ms float8,
    OUT max_build_ms float8, OUT stats_reset timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'config_guard_config_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.config_counters() IS 'the shared-memory counters behind config_guard.config_stats';

CREATE FUNCTION config_guard.document_totals(OUT config_id integer, OUT documents bigint, OUT document_bytes bigint)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$ SELECT config_id, count(*), sum(pg_column_size(document))::bigint FROM config_guard.documents GROUP BY config_id $$;
COMMENT ON FUNCTION config_guard.document_totals() IS 'stored documents per config and their bytes (sizes only, never contents)';

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

CREATE FUNCTION config_guard.reset_stats()
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_reset_stats'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.reset_stats() IS 'zero the counters of config_guard.config_stats in this database';
REVOKE ALL ON FUNCTION config_guard.reset_stats() FROM PUBLIC;

-- Configs defined with 0.1 have no invalidation triggers yet: install them.
CREATE FUNCTION config_guard.install_triggers(config text)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_install_triggers'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION config_guard.install_triggers(text) FROM PUBLIC;
COMMENT ON FUNCTION config_guard.install_triggers(text) IS 'create the invalidation triggers of a config (used by the 0.2 upgrade)';
SELECT config_guard.install_triggers(name) FROM config_guard.configs;

-- Maintenance -------------------------------------------------------------------
-- A tenant that is written but never read keeps its marks until its first
-- rebuild. This removes the marks of tenants without a document once they
-- are older than any rebuild could still be running from.
CREATE FUNCTION config_guard.prune_invalidations(older_than interval DEFAULT '1 hour')
RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
  WITH pruned AS (
    DELETE FROM config_guard.invalidations i
     WHERE i.tenant IS NOT NULL
       AND i.at < pg_catalog.now() - older_than
       AND NOT EXISTS (SELECT FROM config_guard.documents d WHERE d.config_id = i.config_id AND d.tenant = i.tenant)
    RETURNING 1)
  SELECT pg_catalog.count(*) FROM pruned
$$;
COMMENT ON FUNCTION config_guard.prune_invalidations(interval) IS
  'delete the invalidation marks of tenants that have no stored document, once older than older_than';
REVOKE ALL ON FUNCTION config_guard.prune_invalidations(interval) FROM PUBLIC;
