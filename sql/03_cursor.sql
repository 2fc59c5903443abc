-- Export cursors are opaque, versioned and bound to their config and tenant:
-- anything else gives SQLSTATE 22023, never a crash, never other rows.
\set ECHO all
SET client_min_messages = warning;
-- (the cursors of walks that read the sources page by page: those of export
-- versions are in 18_export_versions)
SET config_guard.export_versions = off;
CREATE SCHEMA cur;
SET search_path = cur, public;

CREATE TABLE flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, PRIMARY KEY (tenant_id, flag_id));
INSERT INTO flags SELECT t, f FROM generate_series(1, 2) t, generate_series(1, 10) f;
CREATE TABLE goals (tenant_id bigint NOT NULL, goal_id int NOT NULL, PRIMARY KEY (tenant_id, goal_id));
INSERT INTO goals SELECT t, g FROM generate_series(1, 2) t, generate_series(1, 10) g;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('flags', 'build(bigint)', ARRAY['flags']::regclass[]);
SELECT config_guard.define('goals', 'build(bigint)', ARRAY['goals']::regclass[]);

-- the cursor after the third row of tenant 1
SELECT cursor AS c FROM config_guard.export_page('flags', 1, NULL, 3) OFFSET 2 \gset
SELECT item FROM config_guard.export_page('flags', 1, :'c', 2);
-- it is URL-safe text
SELECT :'c' ~ '^[A-Za-z0-9_-]+$' AS url_safe;

-- another tenant's cursor
SELECT count(*) FROM config_guard.export_page('flags', 2, :'c', 2);
\echo :LAST_ERROR_SQLSTATE
-- another config's cursor
SELECT count(*) FROM config_guard.export_page('goals', 1, :'c', 2);
\echo :LAST_ERROR_SQLSTATE
-- truncated by one character, by four, and to nothing (which check notices a
-- truncation depends on the cursor's MAC, different in every cluster: only
-- the SQLSTATE is stable)
\set VERBOSITY sqlstate
SELECT count(*) FROM config_guard.export_page('flags', 1, left(:'c', -1), 2);
SELECT count(*) FROM config_guard.export_page('flags', 1, left(:'c', -4), 2);
\set VERBOSITY default
SELECT count(*) FROM config_guard.export_page('flags', 1, '', 2);
\echo :LAST_ERROR_SQLSTATE
-- extended
SELECT count(*) FROM config_guard.export_page('flags', 1, :'c' || 'AAAA', 2);
\echo :LAST_ERROR_SQLSTATE
-- altered: every single-character change anywhere in the cursor is refused
CREATE FUNCTION try_cursor(config text, tenant bigint, c text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM count(*) FROM config_guard.export_page(config, tenant, c, 2);
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT result, count(*)
  FROM (SELECT try_cursor('flags', 1, overlay(:'c' PLACING
                 CASE WHEN substr(:'c', i, 1) = 'A' THEN 'B' ELSE 'A' END FROM i FOR 1)) AS result
          FROM generate_series(1, length(:'c')) i) altered
 GROUP BY result;
-- the unaltered cursor is still accepted by the same function
SELECT try_cursor('flags', 1, :'c');
-- a random string, characters outside the alphabet, a very long string
SELECT count(*) FROM config_guard.export_page('flags', 1, 'hello world', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('flags', 1, 'c3VyZWx5IG5vdCBhIGN1cnNvcg', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT try_cursor('flags', 1, repeat('A', 100000));
SELECT try_cursor('flags', 1, md5(g::text)) AS result, count(*) FROM generate_series(1, 200) g GROUP BY 1;
-- a cursor of an earlier definition of the same config name
SELECT config_guard.undefine('flags');
SELECT config_guard.define('flags', 'build(bigint)', ARRAY['flags']::regclass[]);
SELECT count(*) FROM config_guard.export_page('flags', 1, :'c', 2);
\echo :LAST_ERROR_SQLSTATE
-- a cursor whose source's primary key changed shape since
SELECT cursor AS g FROM config_guard.export_page('goals', 1, NULL, 1) \gset
ALTER TABLE goals ADD COLUMN extra int NOT NULL DEFAULT 0;
ALTER TABLE goals DROP CONSTRAINT goals_pkey, ADD PRIMARY KEY (tenant_id, goal_id, extra);
SELECT count(*) FROM config_guard.export_page('goals', 1, :'g', 2);
\echo :LAST_ERROR_SQLSTATE
-- and a walk of the changed table from the first page works
SELECT count(*) FROM config_guard.export_page('goals', 1, NULL, 100);

SELECT config_guard.undefine(name) FROM config_guard.configs ORDER BY name;
DROP SCHEMA cur CASCADE;
RESET client_min_messages;
