\echo Use "ALTER EXTENSION config_guard UPDATE TO '0.6'" to load this file. \quit

-- Export versions: export_page serves a walk from one stored version of the
-- tenant's rows, read from the sources once per invalidation by one leader.
-- Every page of a walk comes from the same version, so writes never make a
-- walk restart, and walks of an unchanged tenant never read its sources
-- again. A version superseded by a newer one stays readable for
-- config_guard.export_version_ttl, then the background cleanup drops it.
CREATE SEQUENCE config_guard.export_version_ids;
CREATE TABLE config_guard.export_versions (
    version       bigint PRIMARY KEY,
    config_id     integer NOT NULL REFERENCES config_guard.configs ON DELETE CASCADE,
    tenant        text NOT NULL,
    generation    bigint NOT NULL,
    row_count     bigint NOT NULL,
    built_at      timestamptz NOT NULL,
    build_ms      double precision NOT NULL,
    superseded_at timestamptz
);
CREATE INDEX export_versions_tenant ON config_guard.export_versions (config_id, tenant, version);
CREATE INDEX export_versions_superseded ON config_guard.export_versions (superseded_at)
  WHERE superseded_at IS NOT NULL;
COMMENT ON TABLE config_guard.export_versions IS
  'stored versions of tenants'' exported rows; generation is the tenant''s when the rows were read';

CREATE TABLE config_guard.export_rows (
    version bigint NOT NULL,
    seq     bigint NOT NULL,
    source  smallint NOT NULL,
    item    jsonb NOT NULL,
    PRIMARY KEY (version, seq)
);
COMMENT ON TABLE config_guard.export_rows IS
  'the rows of each export version in export order (source: position of the source in the config, from 0)';
REVOKE ALL ON config_guard.export_versions, config_guard.export_rows, config_guard.export_version_ids FROM PUBLIC;

CREATE VIEW config_guard.export_version_stats AS
SELECT c.name AS config,
       pg_catalog.count(v.version) AS versions,
       pg_catalog.count(v.version) FILTER (WHERE v.superseded_at IS NULL) AS current_versions,
       COALESCE(pg_catalog.sum(v.row_count), 0)::pg_catalog.int8 AS rows,
       pg_catalog.min(v.superseded_at) AS oldest_superseded_at,
       pg_catalog.max(v.built_at) AS last_built_at
  FROM config_guard.configs c
  LEFT JOIN config_guard.export_versions v ON v.config_id OPERATOR(pg_catalog.=) c.config_id
 GROUP BY c.name;
COMMENT ON VIEW config_guard.export_version_stats IS
  'per config: stored export versions (current ones and superseded ones kept for walks in progress) and their rows';
GRANT SELECT ON config_guard.export_version_stats TO PUBLIC;
