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

-- a stored oid naming another role's function, as pg_upgrade can leave it:
-- the signature decides who builds and who owns the config
SET ROLE cg_id_other;
CREATE FUNCTION idn_other.impostor(t int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"v": "forged"}'::jsonb $$;
RESET ROLE;
UPDATE config_guard.configs SET builder = 'idn_other.impostor(int)'::regprocedure WHERE name = 'idn';
\c
SELECT config_guard.invalidate('idn', 1);
SELECT config_guard.get('idn', 1);
SET ROLE cg_id_other;
SELECT config_guard.invalidate('idn', 1);  -- not the owner
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.undefine('idn');  -- not the owner
\echo :LAST_ERROR_SQLSTATE
DROP FUNCTION idn_other.impostor(int);  -- not a builder
SET ROLE cg_id_owner;
DROP FUNCTION idn3.build2(idn2.tenant_key);  -- still the builder
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- an oid naming no function at all
UPDATE config_guard.configs SET builder = 4000000000 WHERE name = 'idn';
\c
SELECT config_guard.invalidate('idn', 1);
SELECT config_guard.get('idn', 1);
-- the next rename repairs the oid, then carries the signature
ALTER SCHEMA idn3 RENAME TO idn4;
SELECT builder_signature, builder = 'idn4.build2(idn2.tenant_key)'::regprocedure AS oid_right
  FROM config_guard.configs WHERE name = 'idn';
UPDATE idt.items SET v = 'uno';
SELECT config_guard.get('idn', 1);

-- a signature that names nothing: a clear error, never another function
UPDATE config_guard.configs SET builder = 4000000000, builder_signature = 'idn4.gone(integer)' WHERE name = 'idn';
\c
SELECT config_guard.get('idn', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.undefine('idn');
DROP SCHEMA idt, idn2, idn4, idn_other CASCADE;
DROP ROLE cg_id_owner;
DROP ROLE cg_id_other;
