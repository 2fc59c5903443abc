-- A config names its builder by oid and by schema-qualified signature, so
-- that pg_upgrade (which keeps no function oid and refuses tables holding a
-- regprocedure) and a restore find it. Renames of the function, its schema or
-- its argument type carry the signature along; a stored oid that names
-- another function (as after pg_upgrade) is never trusted: the signature
-- decides, and the next rename repairs the oid.
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE cg_id_owner;
CREATE ROLE cg_id_other;
CREATE SCHEMA idn AUTHORIZATION cg_id_owner;
CREATE SCHEMA idn_other AUTHORIZATION cg_id_other;
CREATE SCHEMA idt AUTHORIZATION cg_id_owner;
SET ROLE cg_id_owner;
CREATE DOMAIN idn.tenant AS int;
CREATE TABLE idt.items (tenant_id idn.tenant NOT NULL, id int NOT NULL, v text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO idt.items VALUES (1, 1, 'one');
CREATE FUNCTION idn.build(t idn.tenant) RETURNS jsonb LANGUAGE sql STABLE
  AS $$ SELECT jsonb_build_object('v', (SELECT v FROM idt.items WHERE tenant_id = t), 'by', current_user) $$;
SELECT config_guard.define('idn', 'idn.build(idn.tenant)', ARRAY['idt.items']::regclass[]);
RESET ROLE;
SELECT builder_signature, builder = 'idn.build(idn.tenant)'::regprocedure AS oid_right
  FROM config_guard.configs WHERE name = 'idn';
SELECT config_guard.get('idn', 1);

-- renames carry the signature along
SET ROLE cg_id_owner;
ALTER FUNCTION idn.build(idn.tenant) RENAME TO build2;
ALTER DOMAIN idn.tenant RENAME TO tenant_key;
RESET ROLE;
ALTER SCHEMA idn RENAME TO idn2;
SELECT builder_signature FROM config_guard.configs WHERE name = 'idn';
CREATE SCHEMA idn3 AUTHORIZATION cg_id_owner;
SET ROLE cg_id_owner;
ALTER FUNCTION idn2.build2(idn2.tenant_key) SET SCHEMA idn3;
RESET ROLE;
SELECT builder_signature, builder = 'idn3.build2(idn2.tenant_key)'::regprocedure AS oid_right
  FROM config_guard.configs WHERE name = 'idn';
SELECT config_guard.get('idn', 1);
-- and the builder still cannot be dropped
SET ROLE cg_id_owner;
DROP FUNCTION idn3.build2(idn2.tenant_key);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- a row from elsewhere (as pg_upgrade or a restore leaves it: another home,
-- and an oid that here names another role's function): the signature decides
-- who builds and who owns the config, and the row adopts its builder
SET ROLE cg_id_other;
CREATE FUNCTION idn_other.impostor(t int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"v": "forged"}'::jsonb $$;
RESET ROLE;
SET ROLE cg_id_owner;
SELECT config_guard.define('ref', 'idn3.build2(idn2.tenant_key)', ARRAY['idt.items']::regclass[]);
RESET ROLE;
UPDATE config_guard.configs SET builder = 'idn_other.impostor(int)'::regprocedure, builder_home = '1:1'
 WHERE name = 'idn';
-- while it is from elsewhere, DDL checks match it by signature
SET ROLE cg_id_other;
DROP FUNCTION idn_other.impostor(int);  -- not a builder
CREATE FUNCTION idn_other.impostor(t int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"v": "forged"}'::jsonb $$;
SET ROLE cg_id_owner;
DROP FUNCTION idn3.build2(idn2.tenant_key);  -- still the builder
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE VIEW idn_home AS
  SELECT builder_signature, builder = 'idn3.build2(idn2.tenant_key)'::regprocedure AS oid_right,
         builder_home = (SELECT builder_home FROM config_guard.configs WHERE name = 'ref') AS at_home
    FROM config_guard.configs WHERE name = 'idn';
UPDATE config_guard.configs SET builder = 'idn_other.impostor(int)'::regprocedure WHERE name = 'idn';
\c
SET client_min_messages = warning;
SELECT config_guard.invalidate('idn', 1);
SELECT config_guard.get('idn', 1);
SELECT * FROM idn_home;
SET ROLE cg_id_other;
SELECT config_guard.invalidate('idn', 1);  -- not the owner
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.undefine('idn');  -- not the owner
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- at home, an oid and a signature that disagree: a signature that names
-- nothing (a rename whose re-signing missed the row) is printed again from
-- the oid; one that names another function (a row of a physical copy of this
-- cluster) is refused, never guessed
UPDATE config_guard.configs SET builder_signature = 'idn3.old_name(idn2.tenant_key)' WHERE name = 'idn';
\c
SELECT config_guard.get('idn', 1);
SELECT * FROM idn_home;
UPDATE config_guard.configs SET builder = 'idn_other.impostor(int)'::regprocedure WHERE name = 'idn';
\c
SELECT config_guard.get('idn', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE config_guard.configs SET builder = 'idn3.build2(idn2.tenant_key)'::regprocedure WHERE name = 'idn';
\c
SET client_min_messages = warning;

-- a row from elsewhere that a rename meets first: adopted, then carried along
UPDATE config_guard.configs SET builder = 4000000000, builder_home = '1:1' WHERE name = 'idn';
ALTER SCHEMA idn3 RENAME TO idn4;
SELECT builder_signature, builder = 'idn4.build2(idn2.tenant_key)'::regprocedure AS oid_right
  FROM config_guard.configs WHERE name = 'idn';
UPDATE idt.items SET v = 'uno';
SELECT config_guard.get('idn', 1);

-- a row from elsewhere whose signature names nothing, or a type that is
-- gone: a clear error for that config only, never another function, and no
-- other statement of the database is hindered
UPDATE config_guard.configs SET builder = 4000000000, builder_home = '1:1', builder_signature = 'idn4.gone(integer)'
 WHERE name = 'idn';
\c
SELECT config_guard.get('idn', 1);
\echo :LAST_ERROR_SQLSTATE
UPDATE config_guard.configs SET builder_signature = 'idn4.build2(nosuch.type)' WHERE name = 'idn';
\c
SELECT config_guard.get('idn', 1);
\echo :LAST_ERROR_SQLSTATE
SET ROLE cg_id_other;
CREATE FUNCTION idn_other.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
ALTER FUNCTION idn_other.f() RENAME TO g;
DROP FUNCTION idn_other.g();
RESET ROLE;
SELECT config_guard.undefine('idn');
SELECT config_guard.undefine('ref');
DROP VIEW idn_home;
DROP SCHEMA idt, idn2, idn4, idn_other CASCADE;
DROP ROLE cg_id_owner;
DROP ROLE cg_id_other;
