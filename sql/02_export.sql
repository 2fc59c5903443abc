-- config_guard.export_page(): a tenant's rows from every source, in source
-- order then primary-key order, page by page, for several key types.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA exp;
SET search_path = exp, public;

-- Walks a whole tenant and numbers the rows in the order they came.
CREATE FUNCTION walk(config text, tenant anyelement, page_size int)
RETURNS TABLE (page int, n bigint, source regclass, item jsonb) LANGUAGE plpgsql AS $$
DECLARE
  after text;
  r record;
  got int;
BEGIN
  page := 0;
  n := 0;
  LOOP
    page := page + 1;
    got := 0;
    FOR r IN SELECT * FROM config_guard.export_page(config, tenant, after, page_size) LOOP
      got := got + 1;
      n := n + 1;
      source := r.source;
      item := r.item;
      after := r.cursor;
      RETURN NEXT;
    END LOOP;
    EXIT WHEN got = 0;
    IF got > page_size THEN RAISE EXCEPTION 'page % had % rows, more than %', page, got, page_size; END IF;
  END LOOP;
END $$;

-- bigint tenants; one source keyed (tenant_id, flag_id), one keyed by its own id
CREATE TABLE flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, name text,
                    PRIMARY KEY (tenant_id, flag_id));
CREATE TABLE segments (segment_id bigint PRIMARY KEY, tenant_id bigint NOT NULL, rule text);
CREATE INDEX ON segments (tenant_id, segment_id);
INSERT INTO flags SELECT t, f, 'flag ' || f FROM generate_series(1, 3) t, generate_series(1, 4) f;
INSERT INTO segments SELECT t * 100 + s, t, 'rule ' || s FROM generate_series(1, 3) t, generate_series(1, 3) s;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('shop', 'build(bigint)', ARRAY['flags', 'segments']::regclass[]);

-- page by page: a page may span sources; the empty page ends the walk
SELECT page, n, source, item FROM walk('shop', 2::bigint, 3);

-- an integer literal converts to the bigint tenant column
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 100);
-- so does a text literal
SELECT count(*) FROM config_guard.export_page('shop', '2'::text, NULL, 100);

-- every row exactly once and in order, for a larger tenant and an odd page size
INSERT INTO flags SELECT 9, f, 'flag ' || f FROM generate_series(1, 2500) f;
INSERT INTO segments SELECT 100000 + s, 9, 'rule ' || s FROM generate_series(1, 1700) s;
SELECT count(*) AS rows,
       count(DISTINCT item) AS distinct_rows,
       max(page) AS pages,
       array_agg(item ORDER BY n) = (
         SELECT array_agg(item ORDER BY src, k) FROM (
           SELECT 1 AS src, flag_id::bigint AS k, to_jsonb(f) AS item FROM flags f WHERE tenant_id = 9
           UNION ALL
           SELECT 2, segment_id, to_jsonb(s) FROM segments s WHERE tenant_id = 9) expected
       ) AS same_rows_same_order
  FROM walk('shop', 9::bigint, 333);

-- a tenant with no rows gives an empty page
SELECT count(*) FROM config_guard.export_page('shop', 12345, NULL, 10);

-- integer tenants
CREATE TABLE goals (tenant_id int NOT NULL, goal_id int NOT NULL, PRIMARY KEY (tenant_id, goal_id));
INSERT INTO goals SELECT t, g FROM generate_series(1, 2) t, generate_series(1, 5) g;
CREATE FUNCTION build_int(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('goals', 'build_int(int)', ARRAY['goals']::regclass[]);
SELECT page, n, item FROM walk('goals', 2, 2);

-- uuid tenants
CREATE TABLE experiments (account uuid NOT NULL, id bigint NOT NULL, PRIMARY KEY (id));
CREATE INDEX ON experiments (account, id);
INSERT INTO experiments VALUES ('00000000-0000-0000-0000-00000000000a', 3),
  ('00000000-0000-0000-0000-00000000000a', 1), ('00000000-0000-0000-0000-00000000000b', 2);
CREATE FUNCTION build_uuid(tenant uuid) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('experiments', 'build_uuid(uuid)', ARRAY['experiments']::regclass[], 'account');
SELECT page, n, item FROM walk('experiments', '00000000-0000-0000-0000-00000000000A'::uuid, 1);
-- an upper-case text literal reaches the same tenant
SELECT count(*) FROM config_guard.export_page('experiments', '00000000-0000-0000-0000-00000000000A'::text);

-- text tenants and a composite primary key of text and integer
CREATE TABLE rules (org text NOT NULL, area text NOT NULL, seq int NOT NULL, body text,
                    PRIMARY KEY (org, area, seq));
INSERT INTO rules SELECT 'acme', a, s, a || s FROM unnest(ARRAY['b', 'a', 'Z', 'é']) a, generate_series(1, 2) s;
INSERT INTO rules VALUES ('other', 'a', 1, 'not acme');
CREATE FUNCTION build_text(tenant text) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('rules', 'build_text(text)', ARRAY['rules']::regclass[], 'org');
SELECT page, n, item ->> 'area' AS area, item ->> 'seq' AS seq FROM walk('rules', 'acme'::text, 3);
SELECT array_agg(item ORDER BY n) = (SELECT array_agg(to_jsonb(r) ORDER BY area, seq) FROM rules r WHERE org = 'acme')
       AS same_order_as_order_by
  FROM walk('rules', 'acme'::text, 2);

-- a source keyed by the tenant alone: one row per tenant
CREATE TABLE settings (tenant_id bigint PRIMARY KEY, theme text);
INSERT INTO settings VALUES (2, 'dark'), (3, 'light');
SELECT config_guard.define('with_settings', 'build(bigint)', ARRAY['settings', 'flags']::regclass[]);
SELECT page, n, source, item FROM walk('with_settings', 2::bigint, 2);

-- page_size must be within 1..config_guard.max_page_size
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 0);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, -5);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 10001);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SET config_guard.max_page_size = 5;
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 5);
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 6);
\echo :LAST_ERROR_SQLSTATE
RESET config_guard.max_page_size;
-- only a superuser may raise the cap
CREATE ROLE cg_exp_user;
GRANT USAGE ON SCHEMA exp TO cg_exp_user;
GRANT SELECT ON flags, segments TO cg_exp_user;
SET ROLE cg_exp_user;
SET config_guard.max_page_size = 100000;
\echo :LAST_ERROR_SQLSTATE
-- the export runs with the caller's rights
SELECT count(*) FROM config_guard.export_page('shop', 2, NULL, 100);
SELECT count(*) FROM config_guard.export_page('goals', 2, NULL, 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- unknown configs, null arguments, tenants of the wrong type
SELECT count(*) FROM config_guard.export_page('no_such_config', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page(NULL, 2);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', NULL::bigint);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', 'acme'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('shop', 2.5);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('experiments', 42);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('goals', 99999999999);
\echo :LAST_ERROR_SQLSTATE

-- a source cannot be dropped while a config uses it (dependencies.sql has the rest)
CREATE TABLE doomed (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT config_guard.define('doomed', 'build(bigint)', ARRAY['doomed']::regclass[]);
DROP TABLE doomed;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('doomed', 1);
-- a temporary table cannot be a source: a config outlives the session
CREATE TEMP TABLE fleeting (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
SELECT config_guard.define('fleeting', 'build(bigint)', ARRAY['fleeting']::regclass[]);
\echo :LAST_ERROR_SQLSTATE

SELECT config_guard.undefine(name) FROM config_guard.configs ORDER BY name;
DROP SCHEMA exp CASCADE;
DROP ROLE cg_exp_user;
RESET client_min_messages;
