-- What a builder reads is checked while it runs: a relation no trigger of
-- the config covers fails the build (55000, naming it), unless it is a
-- source, a partition or child of one, or a shared source, whose every change
-- invalidates every tenant. get() always equals a direct builder call.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA rd;
CREATE TABLE rd.flags (tenant_id int NOT NULL, id int NOT NULL, plan text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rd.plans (plan text PRIMARY KEY, quota int NOT NULL);
CREATE TABLE rd.notes (note text);
INSERT INTO rd.plans VALUES ('free', 10), ('pro', 100);
INSERT INTO rd.flags VALUES (1, 1, 'free'), (2, 1, 'pro'), (3, 1, 'pro');
INSERT INTO rd.notes VALUES ('unwatched');
CREATE FUNCTION rd.build(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('quota', (SELECT sum(p.quota) FROM rd.flags f JOIN rd.plans p USING (plan)
                                        WHERE f.tenant_id = tenant)) $$;

-- the first failure of a statement, SQLSTATE and detail
CREATE FUNCTION rd.failure(statement text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  EXECUTE statement;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ' ' || regexp_replace(detail, '^Last error[^:]*: ', '');
END $$;
-- plans is read by every tenant but is no source: the build fails, naming it
SELECT config_guard.define('rd', 'rd.build(int)', ARRAY['rd.flags']::regclass[]);
SELECT rd.failure($$SELECT config_guard.get('rd', 1)$$);
SELECT builder_failures FROM config_guard.config_stats WHERE config = 'rd';
SELECT config_guard.undefine('rd');

-- a shared source: any change invalidates every tenant
SELECT config_guard.define('rd', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.plans']::regclass[]);
SELECT source, position, shared FROM config_guard.config_sources
 WHERE config_id = (SELECT config_id FROM config_guard.configs WHERE name = 'rd') ORDER BY position;
CREATE FUNCTION rd.fresh() RETURNS bool LANGUAGE sql AS
$$ SELECT bool_and(config_guard.get('rd', t) = rd.build(t)) FROM generate_series(1, 3) t $$;
SELECT rd.fresh();
UPDATE rd.plans SET quota = 200 WHERE plan = 'pro';
SELECT rd.fresh();
SELECT config_guard.get('rd', 2), config_guard.get('rd', 3);
-- a statement that changes no row of it invalidates nothing
SELECT builder_runs AS runs_before FROM config_guard.config_stats WHERE config = 'rd' \gset
UPDATE rd.plans SET quota = 0 WHERE plan = 'none';
SELECT rd.fresh();
SELECT builder_runs - :runs_before AS rebuilt_after_no_op FROM config_guard.config_stats WHERE config = 'rd';
INSERT INTO rd.plans VALUES ('team', 50);
UPDATE rd.flags SET plan = 'team' WHERE tenant_id = 3;
SELECT rd.fresh();
DELETE FROM rd.flags WHERE tenant_id = 3;
DELETE FROM rd.plans WHERE plan = 'team';
SELECT rd.fresh();
TRUNCATE rd.plans;
SELECT rd.fresh();
INSERT INTO rd.plans VALUES ('free', 10), ('pro', 100);
SELECT rd.fresh();
-- a table under both a source and a shared source (multiple inheritance)
-- marks every tenant; once under the source alone, its own tenants
CREATE TABLE rd.both () INHERITS (rd.flags, rd.plans);
INSERT INTO rd.both VALUES (1, 50, 'pro', 7);
SELECT rd.fresh();
ALTER TABLE rd.both NO INHERIT rd.plans;
INSERT INTO rd.both VALUES (2, 51, 'free', 0);
SELECT rd.fresh();
ALTER TABLE rd.both INHERIT rd.plans;
UPDATE rd.both SET quota = 1;
SELECT rd.fresh();
DROP TABLE rd.both;
SELECT rd.fresh();
-- its tenant column is nobody's: a column of that name may go
ALTER TABLE rd.plans ADD COLUMN tenant_id int;
ALTER TABLE rd.plans DROP COLUMN tenant_id;
-- the table itself may not
DROP TABLE rd.plans;
-- partitions of a shared source are covered, also when attached later
CREATE TABLE rd.regions (region text NOT NULL, factor int NOT NULL) PARTITION BY LIST (region);
CREATE TABLE rd.regions_eu PARTITION OF rd.regions FOR VALUES IN ('eu');
INSERT INTO rd.regions VALUES ('eu', 1);
CREATE FUNCTION rd.build_regional(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('n', (SELECT count(*) FROM rd.flags WHERE tenant_id = tenant),
                             'factor', (SELECT sum(factor) FROM rd.regions)) $$;
SELECT config_guard.define('regional', 'rd.build_regional(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.regions']::regclass[]);
CREATE FUNCTION rd.regional_fresh() RETURNS bool LANGUAGE sql AS
$$ SELECT bool_and(config_guard.get('regional', t) = rd.build_regional(t)) FROM generate_series(1, 3) t $$;
SELECT rd.regional_fresh();
CREATE TABLE rd.regions_us (region text NOT NULL, factor int NOT NULL);
ALTER TABLE rd.regions ATTACH PARTITION rd.regions_us FOR VALUES IN ('us');
SELECT rd.regional_fresh();
INSERT INTO rd.regions_us VALUES ('us', 5);
SELECT rd.regional_fresh();
UPDATE rd.regions_eu SET factor = 7;
SELECT rd.regional_fresh();
SELECT config_guard.get('regional', 1);
-- reading a partition directly is reading the source
CREATE OR REPLACE FUNCTION rd.build_regional(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('n', (SELECT count(*) FROM rd.flags WHERE tenant_id = tenant),
                             'factor', (SELECT sum(factor) FROM rd.regions_us)) $$;
SELECT rd.regional_fresh();

-- what shared_sources refuses
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.flags']::regclass[]);
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.regions_eu']::regclass[]);
CREATE UNLOGGED TABLE rd.scratch (x int);
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.scratch']::regclass[]);
CREATE VIEW rd.plans_view AS SELECT * FROM rd.plans;
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY['rd.plans_view']::regclass[]);
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id',
                           ARRAY[NULL]::regclass[]);
SELECT config_guard.define('bad', 'rd.build(int)', ARRAY['rd.flags']::regclass[], 'tenant_id', NULL);
CREATE ROLE rd_stranger;
GRANT USAGE, CREATE ON SCHEMA rd TO rd_stranger;
CREATE TABLE rd.theirs (x int);
SET ROLE rd_stranger;
CREATE TABLE rd.mine (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION rd.build_mine(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('theirs', 'rd.build_mine(int)', ARRAY['rd.mine']::regclass[], 'tenant_id',
                           ARRAY['rd.theirs']::regclass[]);
RESET ROLE;

-- what a builder may not read, whatever the path
CREATE TABLE rd.items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO rd.items VALUES (1, 1);
CREATE MATERIALIZED VIEW rd.summary AS SELECT count(*) AS n FROM rd.items;
CREATE FUNCTION rd.build_reads(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  what text := (SELECT note FROM rd.notes WHERE note LIKE 'read:%' LIMIT 1);
  result jsonb;
BEGIN
  EXECUTE 'SELECT to_jsonb(x) FROM (' || coalesce(substr(what, 6), 'SELECT 1') || ') x LIMIT 1' INTO result;
  RETURN coalesce(result, 'null'::jsonb);
END $$;
-- (the switch is a shared source)
SELECT config_guard.define('reads', 'rd.build_reads(int)', ARRAY['rd.items']::regclass[], 'tenant_id',
                           ARRAY['rd.notes']::regclass[]);
-- (each try asks for a tenant of its own: a failure puts one in backoff)
CREATE SEQUENCE rd.tenants;
CREATE FUNCTION rd.try(what text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  detail text;
BEGIN
  DELETE FROM rd.notes WHERE note LIKE 'read:%';
  INSERT INTO rd.notes VALUES ('read:' || what);
  RETURN config_guard.get('reads', nextval('rd.tenants')::int)::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RETURN SQLSTATE || ' ' || regexp_replace(regexp_replace(detail, '^Last error[^:]*: ', ''), 'pg_temp_[0-9]+', 'pg_temp');
END $$;
CREATE VIEW rd.items_view AS SELECT * FROM rd.items;
CREATE VIEW rd.mixed_view AS SELECT i.*, p.quota FROM rd.items i CROSS JOIN rd.plans p;
CREATE TEMPORARY TABLE scratch_temp (x int);
SELECT rd.try('SELECT count(*) FROM rd.items');              -- a source
SELECT rd.try('SELECT count(*) FROM rd.items_view');         -- a view of a source
SELECT rd.try('SELECT count(*) FROM rd.mixed_view');         -- a view that also reads plans
SELECT rd.try('SELECT count(*) FROM rd.summary');            -- a materialized view
SELECT rd.try('SELECT count(*) FROM pg_catalog.pg_class');   -- a catalog
SELECT rd.try('SELECT count(*) FROM pg_temp.scratch_temp');  -- a temporary table
SELECT rd.try('SELECT obj_description(1::oid)');             -- a catalog, through a function
SELECT rd.try('SELECT count(*) FROM rd.flags');              -- another config's source
SELECT rd.try('SELECT config_guard.get(''rd'', 1)');         -- through another config's get()
SELECT rd.try('SELECT count(*) FROM rd.items WHERE EXISTS (SELECT FROM rd.plans)');  -- a sublink
SELECT rd.try('WITH p AS (SELECT * FROM rd.plans) SELECT count(*) FROM p');        -- a CTE
-- a row-level security policy that reads another table is read too (for a
-- builder whose owner is subject to it)
SET ROLE rd_stranger;
CREATE TABLE rd.stranger_items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE rd.stranger_gate (open boolean);
INSERT INTO rd.stranger_items VALUES (1, 1);
INSERT INTO rd.stranger_gate VALUES (true);
ALTER TABLE rd.stranger_items ENABLE ROW LEVEL SECURITY;
ALTER TABLE rd.stranger_items FORCE ROW LEVEL SECURITY;
CREATE POLICY gated ON rd.stranger_items USING (EXISTS (SELECT FROM rd.stranger_gate WHERE open));
CREATE FUNCTION rd.build_stranger(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('n', (SELECT count(*) FROM rd.stranger_items WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('stranger', 'rd.build_stranger(int)', ARRAY['rd.stranger_items']::regclass[]);
SELECT rd.failure($$SELECT config_guard.get('stranger', 1)$$);
SELECT config_guard.undefine('stranger');
SELECT config_guard.define('stranger', 'rd.build_stranger(int)', ARRAY['rd.stranger_items']::regclass[],
                           shared_sources => ARRAY['rd.stranger_gate']::regclass[]);
SELECT config_guard.get('stranger', 1);
UPDATE rd.stranger_gate SET open = false;
SELECT config_guard.get('stranger', 1);
SELECT config_guard.undefine('stranger');
RESET ROLE;
-- a SECURITY DEFINER function the builder calls is the builder too
CREATE FUNCTION rd.peek() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS $$ SELECT count(*) FROM rd.plans $$;
SELECT rd.try('SELECT rd.peek()');
-- another config whose sources this one covers is fine
CREATE FUNCTION rd.build_items(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('n', (SELECT count(*) FROM rd.items WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('items_only', 'rd.build_items(int)', ARRAY['rd.items']::regclass[]);
SELECT rd.try('SELECT config_guard.get(''items_only'', 1)');
-- a builder that catches the refusal still fails its build
CREATE FUNCTION rd.build_swallow(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
  q int;
BEGIN
  BEGIN
    SELECT quota INTO q FROM rd.plans LIMIT 1;
  EXCEPTION WHEN OTHERS THEN
    q := 0;
  END;
  RETURN jsonb_build_object('quota', q);
END $$;
SELECT config_guard.define('swallow', 'rd.build_swallow(int)', ARRAY['rd.items']::regclass[]);
SELECT rd.failure($$SELECT config_guard.get('swallow', 1)$$);
SELECT count(*) FROM config_guard.documents d JOIN config_guard.configs c USING (config_id) WHERE c.name = 'swallow';
-- ... also when it catches it around a get() of another config that read it
CREATE FUNCTION rd.build_swallow_nested(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  RETURN config_guard.get('swallow', tenant);
EXCEPTION WHEN OTHERS THEN
  RETURN '{"caught": true}';
END $$;
SELECT config_guard.define('swallow_nested', 'rd.build_swallow_nested(int)', ARRAY['rd.items']::regclass[]);
SELECT rd.failure($$SELECT config_guard.get('swallow_nested', 1)$$);
-- get() inside a builder runs the other builder: never a stored, last good or
-- max_stale answer older than this build
CREATE TABLE rd.inner_items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO rd.inner_items VALUES (1, 1, 1);
CREATE FUNCTION rd.build_inner(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM rd.inner_items WHERE tenant_id = tenant), 'version', 1) $$;
SELECT config_guard.define('inner', 'rd.build_inner(int)', ARRAY['rd.inner_items']::regclass[]);
CREATE FUNCTION rd.build_outer(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('inner', config_guard.get('inner', tenant, max_stale => '1 hour')) $$;
SELECT config_guard.define('outer', 'rd.build_outer(int)', ARRAY['rd.inner_items']::regclass[]);
CREATE FUNCTION rd.outer_fresh() RETURNS bool LANGUAGE sql AS
$$ SELECT config_guard.get('outer', 1) = jsonb_build_object('inner', rd.build_inner(1)) $$;
SELECT config_guard.get('inner', 1), config_guard.get('outer', 1);
-- the inner builder replaced: the outer config is invalidated too
CREATE OR REPLACE FUNCTION rd.build_inner(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('v', (SELECT sum(v) FROM rd.inner_items WHERE tenant_id = tenant), 'version', 2) $$;
SELECT rd.outer_fresh();
-- a max_stale inside a builder does not apply: its answer is built now
UPDATE rd.inner_items SET v = 500;
SELECT config_guard.get('inner', 1, max_stale => '1 hour');
SELECT rd.outer_fresh();
-- the inner builder failing: so does the outer build (no last good document
-- of either is taken here)
SET config_guard.stale_if_error = 0;
CREATE OR REPLACE FUNCTION rd.build_inner(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('v', (SELECT sum(v) / 0 FROM rd.inner_items WHERE tenant_id = tenant)) $$;
SELECT rd.failure($$SELECT config_guard.get('outer', 1)$$);
RESET config_guard.stale_if_error;
-- config_guard's own statements inside a build are not the builder's reads
SELECT rd.try('SELECT 1');
-- the check is gone once the builder returns
SELECT count(*) > 0 FROM pg_catalog.pg_class;

SELECT config_guard.undefine(name) FROM config_guard.configs
 WHERE name IN ('rd', 'regional', 'reads', 'items_only', 'swallow', 'swallow_nested', 'inner', 'outer');
SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'config_guard_%'
   AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'rd'::regnamespace);
DROP SCHEMA rd CASCADE;
DROP OWNED BY rd_stranger;
DROP ROLE rd_stranger;
