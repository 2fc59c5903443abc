-- The replay's database: a multi-tenant configuration schema whose tenant
-- sizes follow a log-normal distribution, the largest tenant with :largest
-- rows across its sources, and the indexes a DBA would have.
\set ON_ERROR_STOP on
SET client_min_messages = warning;
CREATE SCHEMA app;
SET search_path = app, public;

CREATE TABLE tenants (tenant_id bigint PRIMARY KEY, name text NOT NULL, size int NOT NULL);
CREATE TABLE experiments (
  experiment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id bigint NOT NULL, name text NOT NULL, status text NOT NULL, variations jsonb NOT NULL);
CREATE INDEX experiments_tenant ON experiments (tenant_id, experiment_id);
CREATE TABLE feature_flags (
  tenant_id bigint NOT NULL, flag_key text NOT NULL, enabled boolean NOT NULL, rollout int NOT NULL,
  PRIMARY KEY (tenant_id, flag_key));
CREATE TABLE segments (
  segment_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant_id bigint NOT NULL, rule jsonb NOT NULL);
CREATE INDEX segments_tenant ON segments (tenant_id, segment_id);
-- the login workload's table
CREATE TABLE users (user_id bigint PRIMARY KEY, email text NOT NULL UNIQUE, tenant_id bigint NOT NULL,
                    password_hash text NOT NULL);

-- Tenant sizes: exp(mu + sigma * z) over evenly spaced normal quantiles
-- (deterministic), scaled so that the largest tenant has :largest rows.
INSERT INTO tenants
SELECT t, 'customer ' || t, greatest(1, round(exp(ln(:largest) - 3.3 * 1.45 + 1.45 * z))::int)
  FROM (SELECT t, -- the normal quantile of p, by Shore's (1982) approximation
               CASE WHEN p < 0.5 THEN -5.5556 * (1 - (p / (1 - p)) ^ 0.1186)
                    ELSE 5.5556 * (1 - ((1 - p) / p) ^ 0.1186) END AS z
          FROM (SELECT t, (:tenants - t + 0.5) / :tenants AS p FROM generate_series(1, :tenants) t) q) z;
UPDATE tenants SET size = :largest WHERE tenant_id = 1;

INSERT INTO experiments (tenant_id, name, status, variations)
SELECT t.tenant_id, 'experiment ' || g, CASE WHEN g % 4 = 0 THEN 'running' ELSE 'paused' END,
       jsonb_build_array(jsonb_build_object('name', 'A', 'weight', 50), jsonb_build_object('name', 'B', 'weight', 50))
  FROM tenants t, generate_series(1, greatest(1, t.size * 2 / 5)) g;
INSERT INTO feature_flags
SELECT t.tenant_id, 'flag_' || lpad(g::text, 7, '0'), g % 2 = 0, g % 100
  FROM tenants t, generate_series(1, greatest(1, t.size * 2 / 5)) g;
INSERT INTO segments (tenant_id, rule)
SELECT t.tenant_id, jsonb_build_object('country', 'FR', 'min_visits', g)
  FROM tenants t, generate_series(1, greatest(1, t.size / 5)) g;
INSERT INTO users SELECT u, 'user' || u || '@example.com', 1 + u % :tenants, md5(u::text) FROM generate_series(1, 200000) u;
VACUUM ANALYZE;

-- The configuration document, built set-wise in one pass per source.
CREATE FUNCTION build_config(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'tenant', tenant,
    'experiments', (SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY experiment_id), '[]') FROM app.experiments e WHERE tenant_id = tenant),
    'flags', (SELECT coalesce(jsonb_agg(to_jsonb(f) ORDER BY flag_key), '[]') FROM app.feature_flags f WHERE tenant_id = tenant),
    'segments', (SELECT coalesce(jsonb_agg(to_jsonb(s) ORDER BY segment_id), '[]') FROM app.segments s WHERE tenant_id = tenant))
$$;
SELECT config_guard.define('customer_config', 'app.build_config(bigint)',
                           ARRAY['app.experiments', 'app.feature_flags', 'app.segments']::regclass[]);

CREATE ROLE rebuild_svc LOGIN;
CREATE ROLE login_app LOGIN;
CREATE ROLE backoffice LOGIN;
GRANT USAGE ON SCHEMA app TO rebuild_svc, login_app, backoffice;
GRANT SELECT, UPDATE ON app.feature_flags TO backoffice;
GRANT SELECT ON ALL TABLES IN SCHEMA app TO rebuild_svc;
GRANT SELECT ON app.users TO login_app;
SELECT config_guard.grant_read('customer_config', 'rebuild_svc');
