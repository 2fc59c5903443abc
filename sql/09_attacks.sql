-- The attacks of issue 8, each written as the attack. An unprivileged role
-- (cg_attacker: nothing but CONNECT and its own schemas) plants hostile code
-- that, whenever it runs as anyone else, records who ran it in mine.pwned and
-- tries to make cg_attacker superuser. After every attack, attack_outcome()
-- shows whether that happened (and undoes it, so each attack counts alone).
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE cg_attacker LOGIN;
CREATE ROLE cg_victim;
CREATE ROLE cg_victim2;
CREATE ROLE cg_reader;
CREATE SCHEMA mine AUTHORIZATION cg_attacker;
CREATE SCHEMA liar AUTHORIZATION cg_attacker;
CREATE FUNCTION public.attack_outcome(OUT superuser boolean, OUT role_settings text[], OUT hostile_code_ran_as text)
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  SELECT rolsuper, rolconfig INTO superuser, role_settings FROM pg_roles WHERE rolname = 'cg_attacker';
  SELECT coalesce(string_agg(DISTINCT who || ': ' || what, ', ' ORDER BY who || ': ' || what), 'nobody')
    INTO hostile_code_ran_as FROM mine.pwned;
  ALTER ROLE cg_attacker NOSUPERUSER;
  ALTER ROLE cg_attacker RESET ALL;
  TRUNCATE mine.pwned;
END $$;

-- The attacker's toolkit ------------------------------------------------------
SET ROLE cg_attacker;
CREATE TABLE mine.pwned (who name, what text);
GRANT USAGE ON SCHEMA mine, liar TO PUBLIC;
GRANT INSERT ON mine.pwned TO PUBLIC;
CREATE FUNCTION mine.gotcha(what text) RETURNS void LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
  IF current_user <> 'cg_attacker' THEN
    INSERT INTO mine.pwned VALUES (current_user, what);
    BEGIN EXECUTE 'ALTER ROLE cg_attacker SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
    BEGIN EXECUTE 'ALTER ROLE cg_attacker SET search_path = mine, pg_catalog'; EXCEPTION WHEN OTHERS THEN NULL; END;
  END IF;
END $$;
-- comparison (and integer arithmetic) operators of the common key types,
-- each one honest apart from its side effect
DO $$
DECLARE op text; typ text; i int := 0;
BEGIN
  FOR op, typ IN SELECT o, t FROM unnest(ARRAY['int4', 'int8', 'text', 'oid', 'name']) t,
                                  unnest(ARRAY['=', '<>', '<', '>', '<=', '>=', '+', '-']) o
                  WHERE o NOT IN ('+', '-') OR t IN ('int4', 'int8') LOOP
    i := i + 1;
    EXECUTE format('CREATE FUNCTION mine.op%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql AS '
                   '$f$ BEGIN PERFORM mine.gotcha(%L); RETURN a OPERATOR(pg_catalog.%s) b; END $f$',
                   i, typ, typ, CASE WHEN op IN ('+', '-') THEN typ ELSE 'boolean' END, op || ' ' || typ, op);
    EXECUTE format('CREATE OPERATOR mine.%s (FUNCTION = mine.op%s, LEFTARG = %s, RIGHTARG = %s)', op, i, typ, typ);
  END LOOP;
END $$;
-- lookalikes of functions an implementation may call unqualified
DO $$
DECLARE fn text; args text; ret text; call text;
BEGIN
  FOR fn, args, ret, call IN VALUES
      ('now', '', 'timestamptz', 'pg_catalog.now()'),
      ('nextval', 'regclass', 'bigint', 'pg_catalog.nextval($1)'),
      ('to_jsonb', 'anyelement', 'jsonb', 'pg_catalog.to_jsonb($1)'),
      ('pg_current_snapshot', '', 'pg_snapshot', 'pg_catalog.pg_current_snapshot()'),
      ('pg_visible_in_snapshot', 'xid8, pg_snapshot', 'boolean', 'pg_catalog.pg_visible_in_snapshot($1, $2)'),
      ('pg_has_role', 'oid, oid, text', 'boolean', 'pg_catalog.pg_has_role($1, $2, $3)'),
      ('pg_has_role', 'name, name, text', 'boolean', 'pg_catalog.pg_has_role($1, $2, $3)'),
      ('lower', 'text', 'text', 'pg_catalog.lower($1)'),
      ('upper', 'text', 'text', 'pg_catalog.upper($1)'),
      ('jsonb_build_object', 'VARIADIC text[]', 'jsonb', 'pg_catalog.jsonb_build_object(VARIADIC $1)'),
      ('count_step', 'bigint', 'bigint', '$1 OPERATOR(pg_catalog.+) 1'),
      ('array_agg_step', 'anyarray, anynonarray', 'anyarray', 'pg_catalog.array_append($1, $2)') LOOP
    EXECUTE format('CREATE FUNCTION mine.%I(%s) RETURNS %s LANGUAGE plpgsql AS '
                   '$f$ BEGIN PERFORM mine.gotcha(%L); RETURN %s; END $f$', fn, args, ret, fn || '()', call);
  END LOOP;
END $$;
CREATE FUNCTION mine.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS
$$ BEGIN PERFORM mine.gotcha('unnest()'); RETURN QUERY SELECT pg_catalog.unnest($1); END $$;
CREATE AGGREGATE mine.count(*) (SFUNC = mine.count_step, STYPE = bigint, INITCOND = '0');
CREATE AGGREGATE mine.array_agg(anynonarray) (SFUNC = mine.array_agg_step, STYPE = anyarray);
-- a lying equality for the read-access check: "the private config is one I may read"
CREATE FUNCTION liar.eq(a int4, b int4) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mine.gotcha('liar = int4');
  IF current_user OPERATOR(pg_catalog.=) 'cg_attacker' AND b OPERATOR(pg_catalog.=)
     (SELECT config_id FROM config_guard.configs WHERE name OPERATOR(pg_catalog.=) 'v_private') THEN
    RETURN true;
  END IF;
  RETURN a OPERATOR(pg_catalog.=) b;
END $$;
CREATE OPERATOR liar.= (FUNCTION = liar.eq, LEFTARG = int4, RIGHTARG = int4);
CREATE TABLE mine.own (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION mine.build_own(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('own', tenant) $$;
SELECT config_guard.define('atk_own', 'mine.build_own(int)', ARRAY['mine.own']::regclass[]);
RESET ROLE;

-- The victim's configs: over an int and a text tenant column (cg_attacker may
-- read them), and a private one
CREATE SCHEMA vic AUTHORIZATION cg_victim;
GRANT USAGE ON SCHEMA vic TO PUBLIC;
SET ROLE cg_victim;
CREATE TABLE vic.by_int (tenant_id int, id int, note text, PRIMARY KEY (tenant_id, id));
CREATE TABLE vic.by_text (tenant_id text, id int, note text, PRIMARY KEY (tenant_id, id));
CREATE TABLE vic.private (tenant_id int, id int, note text, PRIMARY KEY (tenant_id, id));
INSERT INTO vic.private VALUES (1, 1, 'the victim''s secret');
CREATE FUNCTION vic.build_int(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('as', current_user, 'notes', (SELECT jsonb_agg(note ORDER BY id) FROM vic.by_int WHERE tenant_id = tenant)) $$;
CREATE FUNCTION vic.build_text(tenant text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('as', current_user, 'notes', (SELECT jsonb_agg(note ORDER BY id) FROM vic.by_text WHERE tenant_id = tenant)) $$;
CREATE FUNCTION vic.build_private(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('notes', (SELECT jsonb_agg(note ORDER BY id) FROM vic.private WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('v_int', 'vic.build_int(int)', ARRAY['vic.by_int']::regclass[]);
SELECT config_guard.define('v_text', 'vic.build_text(text)', ARRAY['vic.by_text']::regclass[]);
SELECT config_guard.define('v_private', 'vic.build_private(int)', ARRAY['vic.private']::regclass[]);
INSERT INTO vic.by_int VALUES (1, 1, 'int one'), (1, 2, 'int two');
INSERT INTO vic.by_text VALUES ('acme', 1, 'text one'), ('acme', 2, 'text two');
SELECT config_guard.grant_read('v_int', 'cg_attacker');
SELECT config_guard.grant_read('v_text', 'cg_attacker');
GRANT SELECT ON vic.by_int, vic.by_text TO cg_attacker;
RESET ROLE;

-- 1. The caller's search_path shadows the operators of the extension's own
-- statements ---------------------------------------------------------------------
SET ROLE cg_attacker;
SELECT config_guard.get('v_private', 1);
\echo :LAST_ERROR_SQLSTATE
-- the lying operator in front: still no read access
SET search_path = liar, mine, pg_catalog;
SELECT config_guard.get('v_private', 1);
\echo :LAST_ERROR_SQLSTATE
-- honest operators that run the attacker's code if the extension uses them
SET search_path = mine, pg_catalog;
SELECT item FROM config_guard.export_page('v_int', 1) ORDER BY item;
SELECT item FROM config_guard.export_page('v_text', 'acme'::text) ORDER BY item;
SELECT config_guard.get('v_int', 1) AS int_tenant;
SELECT config_guard.get('v_text', 'acme'::text) AS text_tenant;
SELECT config_guard.get('v_int', '2'::text) AS int_config_text_tenant;
SELECT config_guard.invalidate('atk_own', 1);
SELECT config_guard.get('atk_own', 1) AS own;
RESET search_path;
RESET ROLE;
SELECT * FROM attack_outcome();

-- 2. A cast the tenant type's owner defines, run by the invalidation trigger ----
SET ROLE cg_attacker;
CREATE TYPE mine.tkey AS ENUM ('a', 'b');
CREATE FUNCTION mine.evil_cast(k mine.tkey) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM mine.gotcha('cast mine.tkey AS text');
  RETURN pg_catalog.textin(pg_catalog.enum_out(k));
END $$;
CREATE CAST (mine.tkey AS text) WITH FUNCTION mine.evil_cast(mine.tkey);
CREATE TABLE mine.t (tenant_id mine.tkey, id int, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION mine.build_t(tenant mine.tkey) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rows', (SELECT count(*) FROM mine.t WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('atk_enum', 'mine.build_t(mine.tkey)', ARRAY['mine.t']::regclass[]);
SELECT config_guard.get('atk_enum', 'a'::mine.tkey) AS before_insert;
INSERT INTO mine.t VALUES ('a', 1);
SELECT config_guard.get('atk_enum', 'a'::mine.tkey) AS after_insert;
RESET ROLE;
SELECT * FROM attack_outcome();

-- 3. Settings made by a builder must not reach the caller; the builder runs
-- under fixed settings, whatever the caller's ---------------------------------------
SET ROLE cg_victim;
CREATE TABLE vic.settings_src (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION vic.build_settings(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_catalog.set_config('search_path', 'mine, pg_catalog', false);
  PERFORM pg_catalog.set_config('statement_timeout', '1234ms', true);
  RETURN pg_catalog.jsonb_build_object(
    'TimeZone', pg_catalog.current_setting('TimeZone'), 'DateStyle', pg_catalog.current_setting('DateStyle'),
    'IntervalStyle', pg_catalog.current_setting('IntervalStyle'),
    'extra_float_digits', pg_catalog.current_setting('extra_float_digits'),
    'search_path', pg_catalog.current_setting('search_path'));
END $$;
SELECT config_guard.define('v_settings', 'vic.build_settings(int)', ARRAY['vic.settings_src']::regclass[]);
RESET ROLE;
SET TimeZone = 'America/New_York'; SET DateStyle = 'German'; SET extra_float_digits = 3;
BEGIN;
SELECT config_guard.get('v_settings', 1) AS document;
SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout;
SELECT lower('CALLER') AS lower;
COMMIT;
SELECT current_setting('search_path') AS search_path, current_setting('statement_timeout') AS statement_timeout;
SELECT lower('CALLER') AS lower;
RESET search_path;
RESET TimeZone; RESET DateStyle; RESET extra_float_digits;
SELECT * FROM attack_outcome();

-- 4. A reader without USAGE on the builder's schema: the builder is resolved
-- and run as its owner, and nobody is put into backoff -----------------------------
CREATE SCHEMA vhid AUTHORIZATION cg_victim;
SET ROLE cg_victim;
CREATE TABLE vhid.src (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO vhid.src VALUES (1, 1);
CREATE FUNCTION vhid.build(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('as', current_user, 'rows', (SELECT count(*) FROM vhid.src WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('v_hidden', 'vhid.build(int)', ARRAY['vhid.src']::regclass[]);
SELECT config_guard.grant_read('v_hidden', 'cg_reader');
RESET ROLE;
SET ROLE cg_reader;
SELECT config_guard.get('v_hidden', 1) AS seen_by_reader;
RESET ROLE;
SET ROLE cg_victim;
SELECT config_guard.get('v_hidden', 1) AS seen_by_owner;
RESET ROLE;
SELECT builder_runs, builder_failures, backoff_refusals FROM config_guard.config_stats WHERE config = 'v_hidden';

-- 5. Forged invalidations -----------------------------------------------------------
SET ROLE cg_victim;
SELECT config_guard.grant_read('v_int', 'cg_reader');
RESET ROLE;
SELECT config_id AS victim_id FROM config_guard.configs WHERE name = 'v_int' \gset
SELECT count(*) AS marks_before FROM config_guard.invalidations WHERE config_id = :victim_id \gset
-- the trigger function attached to the attacker's own table, naming the victim's
-- config: only config_guard may attach it
SET ROLE cg_attacker;
CREATE TABLE mine.decoy (tenant_id int, id int);
CREATE TRIGGER forged_insert AFTER INSERT ON mine.decoy REFERENCING NEW TABLE AS config_guard_new
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger(:'victim_id', 'tenant_id');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- and should a privileged role attach it anyway (with the name define() gives),
-- it refuses to act on a table that is not a source of that config
SELECT format('config_guard_%s_insert', :victim_id) AS ins_name, format('config_guard_%s_truncate', :victim_id) AS tr_name \gset
CREATE TRIGGER :"ins_name" AFTER INSERT ON mine.decoy REFERENCING NEW TABLE AS config_guard_new
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger(:'victim_id', 'tenant_id');
CREATE TRIGGER :"tr_name" AFTER TRUNCATE ON mine.decoy
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger(:'victim_id', 'tenant_id');
-- nor on a real source of the config, under another name
CREATE TRIGGER lookalike AFTER INSERT ON vic.by_int REFERENCING NEW TABLE AS config_guard_new
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger(:'victim_id', 'tenant_id');
SET ROLE cg_attacker;
\set VERBOSITY sqlstate
INSERT INTO mine.decoy VALUES (1, 1), (2, 1);
TRUNCATE mine.decoy;
\set VERBOSITY default
RESET ROLE;
SET ROLE cg_victim;
\set VERBOSITY sqlstate
INSERT INTO vic.by_int VALUES (7, 1, 'through the lookalike');
\set VERBOSITY default
RESET ROLE;
DROP TRIGGER lookalike ON vic.by_int;
DROP TRIGGER :"ins_name" ON mine.decoy;
DROP TRIGGER :"tr_name" ON mine.decoy;
-- a trigger of a config that no longer exists does nothing: writes never fail
-- because of config_guard
CREATE TRIGGER config_guard_999999_insert AFTER INSERT ON mine.decoy REFERENCING NEW TABLE AS config_guard_new
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger('999999', 'tenant_id');
SET ROLE cg_attacker;
INSERT INTO mine.decoy VALUES (1, 1);
RESET ROLE;
SELECT count(*) AS marks_of_no_config FROM config_guard.invalidations WHERE config_id = 999999;
-- a reader may read, not force rebuilds
SET ROLE cg_reader;
SELECT config_guard.invalidate('v_int', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.invalidate_all('v_int');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT count(*) - :marks_before AS forged_marks FROM config_guard.invalidations WHERE config_id = :victim_id;
SELECT * FROM attack_outcome();

-- 7. Cursors must mean what the server issued ----------------------------------------
SELECT current_database() AS regress_db \gset
CREATE SCHEMA walk;
CREATE TABLE walk.items (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO walk.items SELECT 1, g FROM generate_series(1, 6) g;
CREATE FUNCTION walk.build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('walk', 'walk.build(int)', ARRAY['walk.items']::regclass[]);
SELECT config_id AS walk_id FROM config_guard.configs WHERE name = 'walk' \gset
SELECT cursor AS c FROM config_guard.export_page('walk', 1, NULL, 1) \gset
SELECT item FROM config_guard.export_page('walk', 1, :'c', 2);
-- altered in one character
SELECT count(*) FROM config_guard.export_page('walk', 1,
  overlay(:'c' PLACING CASE WHEN substr(:'c', 12, 1) = 'A' THEN 'B' ELSE 'A' END FROM 12 FOR 1), 2);
\echo :LAST_ERROR_SQLSTATE
-- forged: the key changed from 1 to 4 and the (public, unkeyed) checksum recomputed
CREATE FUNCTION pg_temp.xr(a numeric, b numeric) RETURNS numeric LANGUAGE sql AS $$
  SELECT x::int8 + CASE WHEN x::int8 < 0 THEN 18446744073709551616 ELSE 0 END
    FROM (SELECT (CASE WHEN a >= 9223372036854775808 THEN a - 18446744073709551616 ELSE a END)::int8::bit(64)
               # (CASE WHEN b >= 9223372036854775808 THEN b - 18446744073709551616 ELSE b END)::int8::bit(64) AS x) s $$;
CREATE FUNCTION pg_temp.mix(x numeric) RETURNS numeric LANGUAGE plpgsql AS $$
BEGIN
  x := mod(pg_temp.xr(x, div(x, 2::numeric ^ 30)) * 13787848793156543929, 18446744073709551616);
  x := mod(pg_temp.xr(x, div(x, 2::numeric ^ 27)) * 10723151780598845931, 18446744073709551616);
  RETURN pg_temp.xr(x, div(x, 2::numeric ^ 31));
END $$;
CREATE FUNCTION pg_temp.forge(c text, key_byte int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  raw bytea := decode(rpad(translate(c, '-_', '+/'), (length(c) + 3) / 4 * 4, '='), 'base64');
  body bytea := set_byte(substr(raw, 1, length(raw) - 8), 29, key_byte);
  n int := length(body); i int := 0; v numeric; h numeric;
  m1 numeric := 11400714819323198485; m numeric := 18446744073709551616;
BEGIN
  h := pg_temp.mix(pg_temp.xr(7165066918303850343, mod(n * m1, m)));
  WHILE n - i >= 8 LOOP
    v := 0;
    FOR k IN REVERSE 7..0 LOOP v := v * 256 + get_byte(body, i + k); END LOOP;
    h := pg_temp.mix(pg_temp.xr(h, mod(v * m1, m)));
    i := i + 8;
  END LOOP;
  v := 0;
  FOR k IN REVERSE n - i - 1..0 LOOP v := v * 256 + get_byte(body, i + k); END LOOP;
  h := pg_temp.mix(pg_temp.xr(h, mod((v + n - i) * m1, m)));
  FOR k IN 0..7 LOOP body := body || decode(lpad(to_hex(mod(div(h, 256::numeric ^ k), 256)::int), 2, '0'), 'hex'); END LOOP;
  RETURN rtrim(translate(encode(body, 'base64'), E'+/\n', '-_'), '=');
END $$;
SELECT item FROM config_guard.export_page('walk', 1, pg_temp.forge(:'c', ascii('4')), 2);
\echo :LAST_ERROR_SQLSTATE
-- a cursor of an identical config, with the same id, in another database
CREATE DATABASE cg_attacks_other;
\c cg_attacks_other
SET client_min_messages = warning;
CREATE EXTENSION config_guard;
CREATE SCHEMA walk;
CREATE TABLE walk.items (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO walk.items SELECT 1, g FROM generate_series(1, 6) g;
CREATE FUNCTION walk.build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT setval('config_guard.config_id_seq', :walk_id, false) = :walk_id AS aligned;
SELECT config_guard.define('walk', 'walk.build(int)', ARRAY['walk.items']::regclass[]);
SELECT config_id = :walk_id AS same_config_id FROM config_guard.configs WHERE name = 'walk';
SELECT cursor AS other_c FROM config_guard.export_page('walk', 1, NULL, 1) \gset
-- ... and kept across DROP EXTENSION ... CASCADE and an identical new define
DROP EXTENSION config_guard CASCADE;
CREATE EXTENSION config_guard;
SELECT setval('config_guard.config_id_seq', :walk_id, false) = :walk_id AS aligned;
SELECT config_guard.define('walk', 'walk.build(int)', ARRAY['walk.items']::regclass[]);
SELECT config_id = :walk_id AS same_config_id FROM config_guard.configs WHERE name = 'walk';
SELECT item FROM config_guard.export_page('walk', 1, :'other_c', 2);
\echo :LAST_ERROR_SQLSTATE
\c :regress_db
SET client_min_messages = warning;
SELECT item FROM config_guard.export_page('walk', 1, :'other_c', 2);
\echo :LAST_ERROR_SQLSTATE
DROP DATABASE cg_attacks_other;
SELECT config_guard.undefine('walk');
DROP SCHEMA walk CASCADE;

-- 8. Everything the attacker may call, with its hostile schema first in its
-- search_path ------------------------------------------------------------------------
SET ROLE cg_attacker;
SET search_path = mine, pg_catalog;
CREATE TABLE mine.g (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
CREATE FUNCTION mine.build_g(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('ids', (SELECT jsonb_agg(id ORDER BY id) FROM g WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('atk_generic', 'mine.build_g(int)', ARRAY['mine.g']::regclass[]);
INSERT INTO mine.g VALUES (1, 1), (1, 2), (2, 1);
UPDATE mine.g SET id = 3 WHERE tenant_id = 2;
DELETE FROM mine.g WHERE tenant_id = 2;
SELECT config_guard.get('atk_generic', 1) AS doc;
SELECT config_guard.get('atk_generic', '2'::text, max_stale => '1 minute') AS doc;
SELECT cursor AS gc FROM config_guard.export_page('atk_generic', 1, NULL, 1) \gset
SELECT item FROM config_guard.export_page('atk_generic', 1, :'gc', 10);
SELECT count(*) AS queries FROM config_guard.export_sql('atk_generic');
SELECT config_guard.invalidate('atk_generic', 1);
SELECT config_guard.invalidate_all('atk_generic');
SELECT config_guard.get('atk_generic', 1) AS doc;
SELECT config_guard.get('atk_enum', 'a'::mine.tkey) AS doc;
SELECT config_guard.get('v_text', 'acme'::text) ->> 'as' AS v_text_built_as;
SELECT config_guard.grant_read('atk_generic', 'cg_reader');
SELECT config_guard.revoke_read('atk_generic', 'cg_reader');
SELECT config, builder_failures FROM config_guard.config_stats WHERE config LIKE 'atk%' ORDER BY config;
SELECT count(*) >= 0 AS readable FROM config_guard.role_stats;
TRUNCATE mine.g;
SELECT config_guard.undefine('atk_generic');
-- and what is not PUBLIC's to call is refused
\set VERBOSITY sqlstate
SELECT config_guard.set_role_limit('cg_attacker', 100);
SELECT config_guard.drop_role_limit('cg_victim');
SELECT config_guard.reset_stats();
SELECT config_guard.prune_invalidations('0');
SELECT config_guard.install_triggers('v_int');
\set VERBOSITY default
RESET search_path;
RESET ROLE;
SELECT * FROM attack_outcome();

-- 6. Dependencies: the objects a config needs cannot be dropped from under it -------
-- (last, because without the fix its final step crashed the backend)
SELECT config_guard.undefine(name) FROM config_guard.configs WHERE name LIKE 'v\_%' ORDER BY name;
DROP SCHEMA vic, vhid CASCADE;
CREATE SCHEMA vdep;
GRANT USAGE, CREATE ON SCHEMA vdep TO cg_victim, cg_victim2;
SET ROLE cg_victim;
CREATE TABLE vdep.src (tenant_id int, id int, PRIMARY KEY (tenant_id, id));
INSERT INTO vdep.src VALUES (1, 1);
CREATE FUNCTION vdep.build(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('as', current_user, 'rows', (SELECT count(*) FROM vdep.src WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('dep_cfg', 'vdep.build(int)', ARRAY['vdep.src']::regclass[]);
SELECT config_guard.get('dep_cfg', 1) AS document;
-- each attempt runs in a transaction that is rolled back: without the fix it
-- succeeded, and the next attempt starts from the same objects
BEGIN;
DROP TABLE vdep.src;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
INSERT INTO vdep.src VALUES (1, 2);
SELECT config_guard.get('dep_cfg', 1) AS document;
BEGIN;
ALTER TABLE vdep.src DROP COLUMN tenant_id;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
INSERT INTO vdep.src VALUES (1, 3);
SELECT config_guard.get('dep_cfg', 1) AS document;
BEGIN;
ALTER TABLE vdep.src RENAME COLUMN tenant_id TO x;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
INSERT INTO vdep.src VALUES (1, 4);
SELECT config_guard.get('dep_cfg', 1) AS document;
RESET ROLE;
\set VERBOSITY terse
DROP ROLE cg_victim;
\echo :LAST_ERROR_SQLSTATE
\set VERBOSITY default
BEGIN;
DROP OWNED BY cg_victim;
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;
INSERT INTO vdep.src VALUES (1, 5);
SELECT config_guard.get('dep_cfg', 1) AS document;
-- the config follows REASSIGN OWNED; then the old owner can go
REASSIGN OWNED BY cg_victim TO cg_victim2;
SELECT p.proowner::regrole AS owner FROM config_guard.configs c JOIN pg_proc p ON p.oid = c.builder
 WHERE c.name = 'dep_cfg';
SELECT config_guard.invalidate('dep_cfg', 1);
SELECT config_guard.get('dep_cfg', 1) AS document;
DROP OWNED BY cg_victim;
DROP ROLE cg_victim;
SELECT config_guard.invalidate('dep_cfg', 1);
SELECT config_guard.get('dep_cfg', 1) AS document;
-- DROP FUNCTION of the builder; then a rebuild in a new session
SET ROLE cg_victim2;
DROP FUNCTION vdep.build(int);
\echo :LAST_ERROR_SQLSTATE
INSERT INTO vdep.src VALUES (2, 1);
RESET ROLE;
\c
SET client_min_messages = warning;
SELECT config_guard.get('dep_cfg', 2) AS document;
SELECT * FROM attack_outcome();

-- 9. Calling into the attacker's config as a superuser: its builder, and the
-- CHECK of the domain its tenants and keys have, run as the config's owner ---
SET ROLE cg_attacker;
CREATE FUNCTION mine.check_did(v int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN PERFORM mine.gotcha('domain check mine.did'); RETURN true; END $$;
CREATE DOMAIN mine.did AS int CHECK (mine.check_did(VALUE));
CREATE TABLE mine.dom (tenant_id mine.did, id mine.did, PRIMARY KEY (tenant_id, id));
INSERT INTO mine.dom VALUES (1, 1), (1, 2), (1, 3);
CREATE FUNCTION mine.build_dom(tenant mine.did) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM mine.gotcha('builder mine.build_dom'); RETURN jsonb_build_object('rows', 3); END $$;
SELECT config_guard.define('atk_dom', 'mine.build_dom(mine.did)', ARRAY['mine.dom']::regclass[]);
SELECT config_guard.grant_read('atk_dom', 'postgres');
GRANT SELECT ON mine.dom TO PUBLIC;
RESET ROLE;
SELECT * FROM attack_outcome();
SELECT config_guard.get('atk_dom', 1) AS document;
SELECT cursor AS dom_c FROM config_guard.export_page('atk_dom', 1, NULL, 1) \gset
SELECT count(*) AS rest FROM config_guard.export_page('atk_dom', 1, :'dom_c', 10);
SELECT * FROM attack_outcome();
SELECT config_guard.undefine('atk_dom');
-- rows exported to a superuser become jsonb through the cast to json that the
-- attacker wrote for its enum: that cast runs as the config's owner too
SET ROLE cg_attacker;
CREATE FUNCTION mine.evil_json(k mine.tkey) RETURNS json LANGUAGE plpgsql AS $$
BEGIN PERFORM mine.gotcha('cast mine.tkey AS json'); RETURN pg_catalog.to_json(pg_catalog.textin(pg_catalog.enum_out(k))); END $$;
CREATE CAST (mine.tkey AS json) WITH FUNCTION mine.evil_json(mine.tkey);
CREATE TABLE mine.flagged (tenant_id int, id int, kind mine.tkey, PRIMARY KEY (tenant_id, id));
INSERT INTO mine.flagged VALUES (1, 1, 'a'), (1, 2, 'b');
CREATE FUNCTION mine.build_flagged(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('atk_json', 'mine.build_flagged(int)', ARRAY['mine.flagged']::regclass[]);
GRANT SELECT ON mine.flagged TO PUBLIC;
RESET ROLE;
SELECT item FROM config_guard.export_page('atk_json', 1) ORDER BY item::text;
SELECT * FROM attack_outcome();
SELECT config_guard.undefine('atk_json');

-- a partial index whose predicate calls the attacker's "immutable" function:
-- loading the config for a superuser's get() must not evaluate it
SET ROLE cg_attacker;
CREATE FUNCTION mine.lie(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM mine.gotcha('index predicate mine.lie'); RETURN $1; END $$;
CREATE TABLE mine.pred (tenant_id int NOT NULL, id int NOT NULL);
CREATE UNIQUE INDEX pred_partial ON mine.pred (tenant_id, id) WHERE mine.lie(1) = 1;
ALTER TABLE mine.pred ADD PRIMARY KEY (tenant_id, id);
CREATE FUNCTION mine.build_pred(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"pred": true}'::jsonb $$;
SELECT config_guard.define('atk_pred', 'mine.build_pred(int)', ARRAY['mine.pred']::regclass[]);
SELECT config_guard.grant_read('atk_pred', 'postgres');
RESET ROLE;
SELECT * FROM attack_outcome();
\c
SET client_min_messages = warning;
SELECT config_guard.get('atk_pred', 1) AS document;
SELECT * FROM attack_outcome();
SELECT config_guard.undefine('atk_pred');

-- a schema that is merely named config_guard, in a database without the
-- extension, is not config_guard's registry: its views never run in others' DDL
CREATE DATABASE cg_attacks_noext;
\c cg_attacks_noext
SET client_min_messages = warning;
CREATE SCHEMA config_guard AUTHORIZATION cg_attacker;
SET ROLE cg_attacker;
CREATE FUNCTION config_guard.spy() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the attacker''s code ran as %', current_user; END $$;
CREATE VIEW config_guard.configs AS SELECT 1 AS config_id, 'x'::text AS name WHERE config_guard.spy();
CREATE VIEW config_guard.config_sources AS SELECT 1 AS config_id WHERE config_guard.spy();
RESET ROLE;
CREATE FUNCTION public.victim_function() RETURNS int LANGUAGE sql AS $$ SELECT 1 $$;
DROP FUNCTION public.victim_function();
\c :regress_db
SET client_min_messages = warning;
DROP DATABASE cg_attacks_noext;

-- 10. A reader's own settings must not shape the shared document, nor make
-- the builder fail for everyone ---------------------------------------------------
CREATE ROLE cg_set_owner;
CREATE SCHEMA vset AUTHORIZATION cg_set_owner;
GRANT USAGE ON SCHEMA vset TO PUBLIC;
SET ROLE cg_set_owner;
CREATE TABLE vset.src (tenant_id int, id int, blob bytea, visible boolean, PRIMARY KEY (tenant_id, id));
INSERT INTO vset.src VALUES (1, 1, '\x0304', true), (1, 2, '\x05', true);
ALTER TABLE vset.src ENABLE ROW LEVEL SECURITY;
ALTER TABLE vset.src FORCE ROW LEVEL SECURITY;
CREATE POLICY visible ON vset.src USING (visible);
CREATE FUNCTION vset.build(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE first_id int;
BEGIN
  -- two rows: an error under plpgsql.extra_errors = too_many_rows
  SELECT id INTO first_id FROM vset.src WHERE tenant_id = tenant ORDER BY id;
  RETURN jsonb_build_object(
    'blobs', (SELECT jsonb_agg(blob::text ORDER BY id) FROM vset.src WHERE tenant_id = tenant),
    'quoted', quote_ident('id'),
    'pattern', 'x\d',
    'first', first_id,
    'number', to_char(1234.5, 'FM9G999D0'),
    'at', '2024-01-01 12:00 EST'::timestamptz,
    'words', to_tsvector('The running cats'),
    'secret', current_setting('app.secret', true));
END $$;
SELECT config_guard.define('v_settings2', 'vset.build(int)', ARRAY['vset.src']::regclass[]);
SELECT config_guard.grant_read('v_settings2', 'cg_reader');
RESET ROLE;
SET ROLE cg_reader;
SET bytea_output = 'escape';
SET standard_conforming_strings = off;
SET quote_all_identifiers = on;
SET plpgsql.extra_errors = 'too_many_rows';
SET row_security = off;
SET lock_timeout = '1ms';
SET timezone_abbreviations = 'India';
SET default_text_search_config = 'pg_catalog.simple';
SET app.secret = 'the reader''s session token';
SELECT config_guard.get('v_settings2', 1) AS seen_by_reader;
RESET bytea_output;
RESET standard_conforming_strings;
RESET quote_all_identifiers;
RESET plpgsql.extra_errors;
RESET row_security;
RESET lock_timeout;
RESET timezone_abbreviations;
RESET default_text_search_config;
RESET app.secret;
RESET ROLE;
SET ROLE cg_set_owner;
SELECT config_guard.get('v_settings2', 1) AS seen_by_owner;
RESET ROLE;
SELECT builder_runs, builder_failures FROM config_guard.config_stats WHERE config = 'v_settings2';

-- 11. A revoke takes effect in a reader's open transaction, also after the
-- reader caught an error of config_guard's ---------------------------------------
BEGIN;
SET ROLE cg_reader;
SELECT config_guard.get('v_settings2', 1) IS NOT NULL AS reads;
DO $$ BEGIN PERFORM config_guard.get('v_settings2', 'not a number'::text); EXCEPTION WHEN OTHERS THEN NULL; END $$;
RESET ROLE;
SET ROLE cg_set_owner;
SELECT config_guard.revoke_read('v_settings2', 'cg_reader');
RESET ROLE;
SET ROLE cg_reader;
SELECT config_guard.get('v_settings2', 1);
ROLLBACK;
SET ROLE cg_set_owner;
SELECT config_guard.undefine('v_settings2');
RESET ROLE;
DROP SCHEMA vset CASCADE;
DROP ROLE cg_set_owner;


-- Clean up
SELECT config_guard.undefine('dep_cfg');
SELECT config_guard.undefine('atk_own');
SELECT config_guard.undefine('atk_enum');
DROP SCHEMA vdep, mine, liar CASCADE;
DROP FUNCTION public.attack_outcome();
DROP OWNED BY cg_attacker, cg_victim2, cg_reader;
DROP ROLE cg_attacker, cg_victim2, cg_reader;
DROP ROLE IF EXISTS cg_victim;
RESET client_min_messages;
