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

-- an inheritance parent: its rename would recurse into its child
CREATE TABLE dep.parent (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE dep.child (PRIMARY KEY (tenant_id, id)) INHERITS (dep.parent);
SELECT config_guard.define('child', 'dep.build(int)', ARRAY['dep.parent']::regclass[]);
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
-- a renamed schema: this session's cached export plans are prepared again
SELECT count(*) AS rows_before FROM config_guard.export_page('plain', 1);
RESET ROLE;
ALTER SCHEMA dep RENAME TO dep_moved;
SELECT count(*) AS rows_after FROM config_guard.export_page('plain', 1);
SELECT source FROM config_guard.export_sql('plain');
ALTER SCHEMA dep_moved RENAME TO dep;
SET ROLE cg_dep_owner;

-- DDL that rewrites or reinterprets a source's rows without firing a trigger
-- invalidates every tenant of the config
CREATE TABLE dep.moves (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO dep.moves VALUES (1, 1, 'one');
CREATE TYPE dep.mood AS ENUM ('calm', 'busy');
ALTER TABLE dep.moves ADD COLUMN mood dep.mood NOT NULL DEFAULT 'calm';
CREATE FUNCTION dep.build_moves(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rows', (SELECT jsonb_agg(jsonb_build_object('v', v, 'mood', mood) ORDER BY id)
                                       FROM dep.moves WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('moves', 'dep.build_moves(int)', ARRAY['dep.moves']::regclass[]);
SELECT config_guard.get('moves', 1) AS tenant_1, config_guard.get('moves', 2) AS tenant_2;
ALTER TABLE dep.moves ALTER COLUMN tenant_id TYPE int USING tenant_id + 1;
SELECT config_guard.get('moves', 1) AS tenant_1, config_guard.get('moves', 2) AS tenant_2;
ALTER TYPE dep.mood RENAME VALUE 'calm' TO 'serene';
SELECT config_guard.get('moves', 2) AS tenant_2;
ALTER TABLE dep.moves ALTER COLUMN v TYPE text USING upper(v);
SELECT config_guard.get('moves', 2) AS tenant_2;
ALTER TABLE dep.moves ADD COLUMN extra int NOT NULL DEFAULT 7;
RESET ROLE;
SELECT count(*) AS config_wide_marks FROM config_guard.invalidations i JOIN config_guard.configs c USING (config_id)
 WHERE c.name = 'moves' AND i.tenant IS NULL;
SET ROLE cg_dep_owner;
-- the triggers keep where the tenant column is: a write after the columns
-- before it changed, or one of them was dropped, still finds its tenant
CREATE TABLE dep.layout (pad int, tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO dep.layout VALUES (10, 1, 1, 0), (20, 2, 1, 0);
CREATE FUNCTION dep.build_layout(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT coalesce(jsonb_agg(v), '[]') FROM dep.layout WHERE tenant_id = tenant $$;
SELECT config_guard.define('layout', 'dep.build_layout(int)', ARRAY['dep.layout']::regclass[]);
UPDATE dep.layout SET v = 1 WHERE tenant_id = 1;
SELECT config_guard.get('layout', 1) AS tenant_1, config_guard.get('layout', 2) AS tenant_2;
ALTER TABLE dep.layout ALTER COLUMN pad TYPE text USING repeat('p', pad);
SELECT config_guard.get('layout', 1) AS tenant_1, config_guard.get('layout', 2) AS tenant_2;
UPDATE dep.layout SET v = 2 WHERE tenant_id = 2;
SELECT config_guard.get('layout', 1) AS tenant_1, config_guard.get('layout', 2) AS tenant_2;
ALTER TABLE dep.layout DROP COLUMN pad;
SELECT config_guard.get('layout', 1) AS tenant_1, config_guard.get('layout', 2) AS tenant_2;
DELETE FROM dep.layout WHERE tenant_id = 1;
SELECT config_guard.get('layout', 1) AS tenant_1, config_guard.get('layout', 2) AS tenant_2;
-- a tenant column added with a default to rows already there: the rows
-- stored before read the default, through the parent and straight into a
-- partition
CREATE TABLE dep.late (id int NOT NULL, v text NOT NULL);
INSERT INTO dep.late VALUES (1, 'a'), (2, 'b');
ALTER TABLE dep.late ADD COLUMN tenant_id int NOT NULL DEFAULT 7;
ALTER TABLE dep.late ADD PRIMARY KEY (tenant_id, id);
CREATE FUNCTION dep.build_late(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT coalesce(jsonb_agg(v ORDER BY id), '[]') FROM dep.late WHERE tenant_id = tenant $$;
SELECT config_guard.define('late', 'dep.build_late(int)', ARRAY['dep.late']::regclass[]);
SELECT config_guard.get('late', 7) AS tenant_7;
DELETE FROM dep.late WHERE id = 1;
SELECT config_guard.get('late', 7) AS tenant_7, dep.build_late(7) AS builder_7;
UPDATE dep.late SET tenant_id = 8 WHERE id = 2;
SELECT config_guard.get('late', 7) AS tenant_7, config_guard.get('late', 8) AS tenant_8;
CREATE TABLE dep.late_parts (tenant_id int NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id))
  PARTITION BY LIST (tenant_id);
CREATE TABLE dep.late_one (id int NOT NULL, v text NOT NULL);
INSERT INTO dep.late_one VALUES (1, 'x'), (2, 'y');
ALTER TABLE dep.late_one ADD COLUMN tenant_id int NOT NULL DEFAULT 1;
ALTER TABLE dep.late_parts ATTACH PARTITION dep.late_one FOR VALUES IN (1);
CREATE FUNCTION dep.build_late_parts(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT coalesce(jsonb_agg(v ORDER BY id), '[]') FROM dep.late_parts WHERE tenant_id = tenant $$;
SELECT config_guard.define('late_parts', 'dep.build_late_parts(int)', ARRAY['dep.late_parts']::regclass[]);
SELECT config_guard.get('late_parts', 1) AS tenant_1;
DELETE FROM dep.late_one WHERE id = 1;
SELECT config_guard.get('late_parts', 1) AS tenant_1, dep.build_late_parts(1) AS builder_1;
-- an enum tenant exports page by page
CREATE TABLE dep.by_mood (tenant_id dep.mood NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO dep.by_mood SELECT 'busy', g FROM generate_series(1, 3) g;
CREATE FUNCTION dep.build_mood(tenant dep.mood) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('by_mood', 'dep.build_mood(dep.mood)', ARRAY['dep.by_mood']::regclass[]);
SELECT cursor AS mc FROM config_guard.export_page('by_mood', 'busy'::text, NULL, 2) OFFSET 1 \gset
SELECT item FROM config_guard.export_page('by_mood', 'busy'::text, :'mc', 2);

-- a key column whose type goes with the session's temporary schema is refused
CREATE DOMAIN pg_temp.fleeting_id AS int;
CREATE TABLE dep.tempkeyed (tenant_id pg_temp.fleeting_id NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION dep.build_tempkeyed(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('tempkeyed', 'dep.build_tempkeyed(int)', ARRAY['dep.tempkeyed']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
DROP TABLE dep.tempkeyed;

-- ... also through a domain over the type, an array of it, or a composite
-- type that contains it; dropping another column, or a policy change, too
CREATE DOMAIN dep.mood_d AS dep.mood;
CREATE TYPE dep.pair AS (x int, m dep.mood);
CREATE TABLE dep.deep (tenant_id int NOT NULL, id int NOT NULL, md dep.mood_d, ms dep.mood[], p dep.pair,
                       spare int, PRIMARY KEY (tenant_id, id));
INSERT INTO dep.deep VALUES (1, 1, 'busy', '{busy}', ROW(1, 'busy'), 0);
CREATE FUNCTION dep.build_deep(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT coalesce(jsonb_agg(to_jsonb(d) - 'tenant_id' - 'id' ORDER BY id), '[]') FROM dep.deep d WHERE tenant_id = tenant $$;
SELECT config_guard.define('deep', 'dep.build_deep(int)', ARRAY['dep.deep']::regclass[]);
SELECT config_guard.get('deep', 1);
ALTER TYPE dep.mood RENAME VALUE 'busy' TO 'swamped';
SELECT config_guard.get('deep', 1);
ALTER TYPE dep.pair RENAME ATTRIBUTE x TO n;
SELECT config_guard.get('deep', 1);
ALTER TABLE dep.deep DROP COLUMN spare;
SELECT config_guard.get('deep', 1);
CREATE POLICY none_visible ON dep.deep USING (false);
ALTER TABLE dep.deep ENABLE ROW LEVEL SECURITY;
SELECT config_guard.get('deep', 1) AS policy_not_forced_on_the_owner;
ALTER TABLE dep.deep FORCE ROW LEVEL SECURITY;
SELECT config_guard.get('deep', 1) AS under_the_policy;
DROP POLICY none_visible ON dep.deep;
CREATE POLICY all_visible ON dep.deep USING (true);
SELECT config_guard.get('deep', 1) AS under_another;
ALTER TABLE dep.deep NO FORCE ROW LEVEL SECURITY;
ALTER TABLE dep.deep DISABLE ROW LEVEL SECURITY;

-- a config's triggers cannot be dropped, renamed or disabled; ENABLE ALWAYS
-- (for a logical subscriber) is allowed
SELECT format('config_guard_%s_insert', config_id) AS ins_trigger FROM config_guard.configs WHERE name = 'deep' \gset
DROP TRIGGER :"ins_trigger" ON dep.deep;
\echo :LAST_ERROR_SQLSTATE
ALTER TRIGGER :"ins_trigger" ON dep.deep RENAME TO quiet;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE dep.deep DISABLE TRIGGER :"ins_trigger";
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE dep.deep DISABLE TRIGGER ALL;
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE dep.deep ENABLE REPLICA TRIGGER :"ins_trigger";
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE dep.deep ENABLE ALWAYS TRIGGER :"ins_trigger";
INSERT INTO dep.deep (tenant_id, id) VALUES (1, 2);
SELECT jsonb_array_length(config_guard.get('deep', 1)) AS rows_after_insert;

-- nor replaced by a trigger running another function, nor dropped while an
-- event trigger's exception block aborts a subtransaction of its own
CREATE FUNCTION dep.quiet() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE OR REPLACE TRIGGER :"ins_trigger" AFTER INSERT ON dep.deep FOR EACH STATEMENT EXECUTE FUNCTION dep.quiet();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE FUNCTION dep.swallow() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM 1 / 0; EXCEPTION WHEN OTHERS THEN NULL; END $$;
CREATE EVENT TRIGGER swallow ON ddl_command_start EXECUTE FUNCTION dep.swallow();
SET ROLE cg_dep_owner;
DROP TRIGGER :"ins_trigger" ON dep.deep;
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
DROP EVENT TRIGGER swallow;
DROP FUNCTION dep.swallow();
SET ROLE cg_dep_owner;
-- a source cannot become unlogged either
ALTER TABLE dep.deep SET UNLOGGED;
\echo :LAST_ERROR_SQLSTATE

-- writes applied as on a logical replication subscriber invalidate too (the
-- triggers fire ALWAYS)
RESET ROLE;
SET session_replication_role = replica;
INSERT INTO dep.deep (tenant_id, id) VALUES (1, 3);
RESET session_replication_role;
SELECT jsonb_array_length(config_guard.get('deep', 1)) AS rows_after_replica_insert;
-- a superuser may disable one (pg_restore --disable-triggers does), with a WARNING
ALTER TABLE dep.deep DISABLE TRIGGER :"ins_trigger";
ALTER TABLE dep.deep ENABLE ALWAYS TRIGGER :"ins_trigger";
SET ROLE cg_dep_owner;

-- an unlogged table cannot be a source: a crash would empty it silently
CREATE UNLOGGED TABLE dep.scratchpad (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT config_guard.define('scratchpad', 'dep.build(int)', ARRAY['dep.scratchpad']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a builder replaced (a deploy) invalidates its configs
SELECT config_guard.get('plain', 1) AS before_deploy;
CREATE OR REPLACE FUNCTION dep.build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"deployed": 2}'::jsonb $$;
SELECT config_guard.get('plain', 1) AS after_deploy;

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
SELECT config_guard.undefine(name) FROM config_guard.configs WHERE name IN ('typed', 'child', 'plain', 'moves', 'layout', 'late', 'late_parts', 'by_mood', 'deep')
 ORDER BY name;
RESET ROLE;
DROP SCHEMA dep CASCADE;
DROP ROLE cg_dep_owner;
RESET client_min_messages;
