-- config_guard.define() and undefine(): what a valid config is, and a clear
-- error with its SQLSTATE for everything that is not.
-- Errors are followed by their SQLSTATE.
\set ECHO all
SET client_min_messages = warning;

CREATE SCHEMA def;
SET search_path = def, public;

CREATE TABLE flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, name text,
                    PRIMARY KEY (tenant_id, flag_id));
CREATE TABLE segments (segment_id int PRIMARY KEY, tenant_id bigint NOT NULL, rule text);
CREATE INDEX segments_tenant ON segments (tenant_id, segment_id);
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE
  AS $$ SELECT jsonb_build_object('tenant', tenant) $$;

-- a valid config
SELECT config_guard.define('shop', 'build(bigint)', ARRAY['flags', 'segments']::regclass[]);
-- a config is owned by its builder's owner
SELECT c.name, c.builder_signature, c.tenant_column, c.tenant_type, p.proowner = current_user::regrole AS owned
  FROM config_guard.configs c JOIN pg_proc p ON p.oid = c.builder;
SELECT c.name, s.position, s.source
  FROM config_guard.config_sources s JOIN config_guard.configs c USING (config_id) ORDER BY 1, 2;

-- a duplicate name
SELECT config_guard.define('shop', 'build(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- names: empty, too long, null
SELECT config_guard.define('', 'build(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define(repeat('x', 64), 'build(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define(NULL, 'build(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a builder that is not (tenant type) RETURNS jsonb
CREATE FUNCTION build_text(tenant bigint) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;
CREATE FUNCTION build_int(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION build_two(tenant bigint, extra int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE FUNCTION build_set(tenant bigint) RETURNS SETOF jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('bad', 'build_text(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build_int(int)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build_two(bigint,int)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build_set(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- sources: missing table, missing tenant column, not a table, empty, repeated, null
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['no_such_table']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE no_tenant (id int PRIMARY KEY, customer bigint);
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['no_tenant']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE VIEW flags_view AS SELECT * FROM flags;
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['flags_view']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build(bigint)', ARRAY[]::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['flags', 'flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['flags', NULL]::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- tenant columns of different types across sources
CREATE TABLE goals (tenant_id int NOT NULL, goal_id int NOT NULL, PRIMARY KEY (tenant_id, goal_id));
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['flags', 'goals']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a source without a primary key
CREATE TABLE no_pk (tenant_id bigint, v text);
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['no_pk']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

-- a source without the supporting index: the HINT gives the exact statement
CREATE TABLE experiments (id bigint PRIMARY KEY, tenant_id bigint NOT NULL, name text);
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['experiments']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE "Odd Table" ("Tenant" bigint NOT NULL, "Key" text NOT NULL, PRIMARY KEY ("Key"));
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['"Odd Table"']::regclass[], 'Tenant');
\echo :LAST_ERROR_SQLSTATE
-- indexes that do not serve the order: wrong column order, descending, partial
CREATE INDEX experiments_wrong ON experiments (id, tenant_id);
CREATE INDEX experiments_desc ON experiments (tenant_id, id DESC);
CREATE INDEX experiments_partial ON experiments (tenant_id, id) WHERE name IS NOT NULL;
SELECT config_guard.define('bad', 'build(bigint)', ARRAY['experiments']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
-- the index the hint asked for makes it valid
CREATE INDEX ON experiments (tenant_id, id);
SELECT config_guard.define('experiments', 'build(bigint)', ARRAY['experiments']::regclass[]);
CREATE INDEX ON "Odd Table" ("Tenant", "Key");
SELECT config_guard.define('odd', 'build(bigint)', ARRAY['"Odd Table"']::regclass[], 'Tenant');

-- only the owner of the builder and of every source may define
CREATE ROLE cg_def_other;
GRANT USAGE, CREATE ON SCHEMA def TO cg_def_other;
GRANT SELECT ON ALL TABLES IN SCHEMA def TO cg_def_other;
SET ROLE cg_def_other;
CREATE FUNCTION other_build(tenant bigint) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE TABLE other_flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, PRIMARY KEY (tenant_id, flag_id));
-- their builder over a table they do not own
SELECT config_guard.define('theirs', 'other_build(bigint)', ARRAY['flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
-- their table with a builder they do not own
SELECT config_guard.define('theirs', 'build(bigint)', ARRAY['other_flags']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
-- both their own
SELECT config_guard.define('theirs', 'other_build(bigint)', ARRAY['other_flags']::regclass[]);
-- and nobody writes the registry directly
INSERT INTO config_guard.configs (config_id, name, builder, tenant_column, tenant_type)
  VALUES (99, 'forged', 'build(bigint)'::regprocedure, 'tenant_id', 'bigint');
\echo :LAST_ERROR_SQLSTATE
DELETE FROM config_guard.configs;
\echo :LAST_ERROR_SQLSTATE
-- nor undefines another role's config
SELECT config_guard.undefine('shop');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- a superuser may undefine any config
SELECT config_guard.undefine('theirs');
DROP FUNCTION other_build(bigint);
DROP TABLE other_flags;

-- undefine
SELECT config_guard.undefine('experiments');
SELECT config_guard.undefine('experiments');
\echo :LAST_ERROR_SQLSTATE
SELECT name FROM config_guard.configs ORDER BY name;
SELECT count(*) AS orphan_sources FROM config_guard.config_sources s
 WHERE NOT EXISTS (SELECT FROM config_guard.configs c WHERE c.config_id = s.config_id);

-- the GUC prefix is reserved
SET config_guard.no_such_setting = 1;
\echo :LAST_ERROR_SQLSTATE
SHOW config_guard.max_page_size;

SELECT config_guard.undefine(name) FROM config_guard.configs ORDER BY name;
DROP SCHEMA def CASCADE;
DROP ROLE cg_def_other;
RESET client_min_messages;
