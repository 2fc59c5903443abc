-- A multi-tenant configuration schema, as a SaaS back office has it:
-- experiments, feature flags and segments per customer (tenant).
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA IF NOT EXISTS app;
SET search_path = app, public;

CREATE TABLE tenants (
  tenant_id bigint PRIMARY KEY,
  name      text NOT NULL
);
CREATE TABLE experiments (
  experiment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id     bigint NOT NULL REFERENCES tenants,
  name          text NOT NULL,
  status        text NOT NULL,
  variations    jsonb NOT NULL
);
CREATE INDEX experiments_tenant ON experiments (tenant_id, experiment_id);
CREATE TABLE feature_flags (
  tenant_id bigint NOT NULL REFERENCES tenants,
  flag_key  text NOT NULL,
  enabled   boolean NOT NULL,
  rollout   int NOT NULL,
  PRIMARY KEY (tenant_id, flag_key)
);
CREATE TABLE segments (
  segment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id  bigint NOT NULL REFERENCES tenants,
  rule       jsonb NOT NULL
);
CREATE INDEX segments_tenant ON segments (tenant_id, segment_id);

-- The configuration document of one tenant, as the service builds it.
CREATE FUNCTION build_config(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'tenant', tenant,
    'experiments', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY experiment_id), '[]') FROM experiments e WHERE tenant_id = tenant),
    'flags', (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY flag_key), '[]') FROM feature_flags f WHERE tenant_id = tenant),
    'segments', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY segment_id), '[]') FROM segments s WHERE tenant_id = tenant))
$$;

-- :tenants small tenants plus tenant 1, the large one (:large rows in all).
INSERT INTO tenants SELECT t, 'customer ' || t FROM generate_series(1, :tenants + 1) t;
INSERT INTO experiments (tenant_id, name, status, variations)
SELECT t, 'experiment ' || g, CASE WHEN g % 4 = 0 THEN 'running' ELSE 'paused' END,
       jsonb_build_array(jsonb_build_object('name', 'A', 'weight', 50), jsonb_build_object('name', 'B', 'weight', 50))
  FROM generate_series(2, :tenants + 1) t, generate_series(1, 20) g;
INSERT INTO experiments (tenant_id, name, status, variations)
SELECT 1, 'experiment ' || g, 'running', jsonb_build_array(jsonb_build_object('name', 'A', 'weight', 100))
  FROM generate_series(1, :large / 2) g;
INSERT INTO feature_flags
SELECT t, 'flag_' || lpad(g::text, 7, '0'), g % 2 = 0, g % 100
  FROM generate_series(2, :tenants + 1) t, generate_series(1, 30) g;
INSERT INTO feature_flags
SELECT 1, 'flag_' || lpad(g::text, 7, '0'), g % 2 = 0, g % 100 FROM generate_series(1, :large / 4) g;
INSERT INTO segments (tenant_id, rule)
SELECT t, jsonb_build_object('country', 'FR', 'min_visits', g) FROM generate_series(2, :tenants + 1) t, generate_series(1, 10) g;
INSERT INTO segments (tenant_id, rule)
SELECT 1, jsonb_build_object('country', 'FR', 'min_visits', g) FROM generate_series(1, :large / 4) g;
VACUUM ANALYZE;

SELECT config_guard.define('customer_config', 'app.build_config(bigint)',
                           ARRAY['app.experiments', 'app.feature_flags', 'app.segments']::regclass[]);
