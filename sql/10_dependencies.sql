-- What a config uses cannot change from under it, on any path: renames that
-- reach a tenant column through inheritance or a typed table, type changes,
-- temporary objects. And nothing config_guard refuses may block the cleanup
-- of a session's temporary schema.
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE cg_dep_owner;
CREATE SCHEMA dep AUTHORIZATION cg_dep_owner;
SET ROLE cg_dep_owner;
CREATE FUNCTION dep.build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;

-- a typed table: its column is renamed through ALTER TYPE ... CASCADE
CREATE TYPE dep.rowt AS (tenant_id int, id int);
CREATE TABLE dep.typed OF dep.rowt (PRIMARY KEY (tenant_id, id));
SELECT config_guard.define('typed', 'dep.build(int)', ARRAY['dep.typed']::regclass[]);
ALTER TYPE dep.rowt RENAME ATTRIBUTE tenant_id TO tid CASCADE;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO dep.typed VALUES (1, 1);

-- an inheritance child: the parent's rename recurses into it
CREATE TABLE dep.parent (tenant_id int NOT NULL, id int NOT NULL);
CREATE TABLE dep.child (PRIMARY KEY (tenant_id, id)) INHERITS (dep.parent);
SELECT config_guard.define('child', 'dep.build(int)', ARRAY['dep.child']::regclass[]);
ALTER TABLE dep.parent RENAME COLUMN tenant_id TO tid;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO dep.child VALUES (1, 1);

-- the tenant column's type cannot change; other changes of it can
CREATE TABLE dep.plain (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT config_guard.define('plain', 'dep.build(int)', ARRAY['dep.plain']::regclass[]);
ALTER TABLE dep.plain ALTER COLUMN tenant_id TYPE bigint;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE dep.plain ALTER COLUMN tenant_id SET STATISTICS 200;
ALTER TABLE dep.plain RENAME COLUMN id TO item_id;
ALTER TABLE dep.plain RENAME TO plain_renamed;
INSERT INTO dep.plain_renamed VALUES (1, 1);
SELECT config_guard.get('plain', 1);

-- a builder in a temporary schema is refused: a config outlives the session
CREATE FUNCTION pg_temp.fleeting(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('fleeting', 'pg_temp.fleeting(int)', ARRAY['dep.plain_renamed']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a builder that depends on a temporary table goes with it when the session
-- ends: the cleanup is never refused, and the config is left for a superuser
-- to undefine
CREATE TABLE dep.src (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TEMP TABLE scratch (tenant_id int);
CREATE FUNCTION dep.tied(tenant int) RETURNS jsonb LANGUAGE sql
BEGIN ATOMIC SELECT jsonb_build_object('n', count(*)) FROM pg_temp.scratch WHERE tenant_id = tenant; END;
SELECT config_guard.define('tied', 'dep.tied(int)', ARRAY['dep.src']::regclass[]);
RESET ROLE;
\c
SET client_min_messages = warning;
-- wait for the old session's exit to finish its cleanup
DO $$
BEGIN
  FOR i IN 1..200 LOOP
    EXIT WHEN NOT EXISTS (SELECT FROM pg_proc WHERE proname = 'tied');
    PERFORM pg_sleep(0.05);
  END LOOP;
END $$;
SELECT count(*) AS tied_builder_left FROM pg_proc WHERE proname = 'tied';
-- the next session's temporary tables work
CREATE TEMP TABLE after_cleanup (x int);
INSERT INTO dep.src VALUES (1, 1);
SELECT config_guard.get('tied', 1);
\echo :LAST_ERROR_SQLSTATE
SET ROLE cg_dep_owner;
SELECT config_guard.undefine('tied');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT config_guard.undefine('tied');

SET ROLE cg_dep_owner;
SELECT config_guard.undefine(name) FROM config_guard.configs WHERE name IN ('typed', 'child', 'plain') ORDER BY name;
RESET ROLE;
DROP SCHEMA dep CASCADE;
DROP ROLE cg_dep_owner;
RESET client_min_messages;
