-- Partitions and inheritance children of a source: a write straight into
-- one, a partition created, attached, detached or dropped, a child that joins
-- or leaves: get() always equals a direct builder call.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA prt;
CREATE TABLE prt.items (tenant_id int NOT NULL, region text NOT NULL, id int NOT NULL,
                        PRIMARY KEY (tenant_id, region, id)) PARTITION BY LIST (region);
CREATE TABLE prt.eu PARTITION OF prt.items FOR VALUES IN ('eu');
CREATE TABLE prt.us PARTITION OF prt.items FOR VALUES IN ('us');
INSERT INTO prt.items VALUES (1, 'eu', 1), (1, 'us', 1), (2, 'eu', 1);
CREATE FUNCTION prt.build(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('rows', (SELECT jsonb_agg(jsonb_build_array(region, id) ORDER BY region, id)
                                       FROM prt.items WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('prt', 'prt.build(int)', ARRAY['prt.items']::regclass[]);
-- the judge: get() against the builder, for every tenant, and the warm-up
CREATE FUNCTION prt.fresh() RETURNS bool LANGUAGE sql AS
$$ SELECT bool_and(config_guard.get('prt', t) = prt.build(t)) FROM generate_series(1, 3) t $$;
CREATE VIEW prt.triggers AS
  SELECT c.relname, count(t.oid) AS n FROM pg_class c
    LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgname LIKE 'config_guard_%'
   WHERE c.relnamespace = 'prt'::regnamespace AND c.relkind IN ('r', 'p') GROUP BY c.relname ORDER BY c.relname;
SELECT * FROM prt.triggers;
SELECT prt.fresh();
-- writes straight into a partition
INSERT INTO prt.eu VALUES (1, 'eu', 2);
SELECT prt.fresh();
UPDATE prt.us SET id = 5 WHERE tenant_id = 1;
SELECT prt.fresh();
DELETE FROM prt.eu WHERE tenant_id = 2;
SELECT prt.fresh();
COPY prt.us FROM STDIN;
3	us	1
\.
SELECT prt.fresh();
TRUNCATE prt.us;
SELECT prt.fresh();
-- a partition created later, and one under it
CREATE TABLE prt.ap PARTITION OF prt.items FOR VALUES IN ('ap') PARTITION BY LIST (tenant_id);
CREATE TABLE prt.ap1 PARTITION OF prt.ap FOR VALUES IN (1);
SELECT * FROM prt.triggers;
SELECT prt.fresh();
INSERT INTO prt.ap1 VALUES (1, 'ap', 7);
SELECT prt.fresh();
-- a loaded table attached: its rows are the config's now
CREATE TABLE prt.sa (LIKE prt.items);
INSERT INTO prt.sa VALUES (2, 'sa', 1), (3, 'sa', 2);
SELECT prt.fresh();
ALTER TABLE prt.items ATTACH PARTITION prt.sa FOR VALUES IN ('sa');
SELECT prt.fresh();
INSERT INTO prt.sa VALUES (2, 'sa', 3);
SELECT prt.fresh();
-- detached: its rows leave, its triggers go, writes to it are its own
ALTER TABLE prt.items DETACH PARTITION prt.sa;
SELECT prt.fresh();
SELECT * FROM prt.triggers;
INSERT INTO prt.sa VALUES (2, 'sa', 4);
SELECT prt.fresh();
-- attached again, detached concurrently (two transactions)
ALTER TABLE prt.items ATTACH PARTITION prt.sa FOR VALUES IN ('sa');
SELECT prt.fresh();
ALTER TABLE prt.items DETACH PARTITION prt.sa CONCURRENTLY;
SELECT prt.fresh();
SELECT n FROM prt.triggers WHERE relname = 'sa';
-- a partition dropped
DROP TABLE prt.eu;
SELECT prt.fresh();
-- a config's trigger on a partition cannot be dropped, renamed or disabled
-- alone
SELECT 'config_guard_' || config_id || '_insert' AS trg FROM config_guard.configs WHERE name = 'prt' \gset
DROP TRIGGER :"trg" ON prt.us;
\echo :LAST_ERROR_SQLSTATE
ALTER TRIGGER :"trg" ON prt.us RENAME TO quiet;
\echo :LAST_ERROR_SQLSTATE
-- the row trigger for the logical replication apply worker stays in replica
-- mode: ENABLE TRIGGER (ALL), as a data-only restore ends, puts it back there
SELECT 'config_guard_' || config_id || '_replica' AS rtrg FROM config_guard.configs WHERE name = 'prt' \gset
ALTER TABLE prt.us ENABLE TRIGGER :"rtrg";
SELECT tgenabled FROM pg_trigger WHERE tgname = :'rtrg' AND tgrelid = 'prt.us'::regclass;
SET client_min_messages = error;
ALTER TABLE prt.us DISABLE TRIGGER ALL;
RESET client_min_messages;
SET client_min_messages = warning;
ALTER TABLE prt.us ENABLE TRIGGER ALL;
SELECT tgname ~ '_replica$' AS row_trigger, tgenabled FROM pg_trigger
 WHERE tgrelid = 'prt.us'::regclass AND tgname LIKE 'config_guard_%' ORDER BY tgname;
INSERT INTO prt.us VALUES (3, 'us', 40);
SELECT prt.fresh();
-- (the statement triggers are back to ALWAYS too: a TRUNCATE in replica mode,
-- as the apply worker runs it, invalidates)
SELECT prt.fresh();
SET session_replication_role = replica;
TRUNCATE prt.us;
RESET session_replication_role;
SELECT prt.fresh();
-- tables are followed by what was created, not by name: CREATE TABLE IF NOT
-- EXISTS of an existing table does nothing, and a partition renamed by an
-- event trigger as it is created still gets the triggers
CREATE TABLE IF NOT EXISTS prt.us PARTITION OF prt.items FOR VALUES IN ('zz');
CREATE FUNCTION prt.rename_new() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_class WHERE oid = 'prt.oc'::regclass::oid) THEN
    ALTER TABLE prt.oc RENAME TO oc_renamed;
  END IF;
END $$;
CREATE EVENT TRIGGER prt_rename ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION prt.rename_new();
CREATE TABLE prt.oc PARTITION OF prt.items FOR VALUES IN ('oc');
DROP EVENT TRIGGER prt_rename;
-- a partition written into by an event trigger as it is created, before its
-- triggers are there: the config is invalidated
CREATE FUNCTION prt.fill_new() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'prt.fi') THEN
    INSERT INTO prt.fi VALUES (3, 'fi', 1);
  END IF;
END $$;
CREATE EVENT TRIGGER prt_fill ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION prt.fill_new();
SELECT prt.fresh();
CREATE TABLE prt.fi PARTITION OF prt.items FOR VALUES IN ('fi');
DROP EVENT TRIGGER prt_fill;
SELECT prt.fresh();
SELECT n FROM prt.triggers WHERE relname = 'oc_renamed';
SELECT prt.fresh();
INSERT INTO prt.oc_renamed VALUES (1, 'oc', 1);
SELECT prt.fresh();
CREATE ROLE prt_owner;
GRANT USAGE ON SCHEMA prt TO prt_owner;
ALTER TABLE prt.us OWNER TO prt_owner;
SET ROLE prt_owner;
ALTER TABLE prt.us DISABLE TRIGGER :"trg";
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER TABLE prt.us OWNER TO CURRENT_USER;
REVOKE USAGE ON SCHEMA prt FROM prt_owner;
DROP ROLE prt_owner;
-- a table whose rows could change unseen cannot join
CREATE UNLOGGED TABLE prt.un PARTITION OF prt.items FOR VALUES IN ('un');
\echo :LAST_ERROR_SQLSTATE
ALTER TABLE prt.us SET UNLOGGED;
\echo :LAST_ERROR_SQLSTATE
SELECT prt.fresh();
-- a partition cannot be a source (writes through its parent fire its
-- parent's statement triggers), nor can a source become one
CREATE FUNCTION prt.build_us(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT to_jsonb(count(*)) FROM prt.us WHERE tenant_id = tenant $$;
SELECT config_guard.define('prt_us', 'prt.build_us(int)', ARRAY['prt.us']::regclass[]);
\echo :LAST_ERROR_SQLSTATE
CREATE TABLE prt.solo (LIKE prt.items INCLUDING ALL);
CREATE FUNCTION prt.build_solo(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT to_jsonb(count(*)) FROM prt.solo WHERE tenant_id = tenant $$;
SELECT config_guard.define('prt_solo', 'prt.build_solo(int)', ARRAY['prt.solo']::regclass[]);
ALTER TABLE prt.items ATTACH PARTITION prt.solo FOR VALUES IN ('solo');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_inherits WHERE inhrelid = 'prt.solo'::regclass;
SELECT config_guard.undefine('prt_solo');
DROP TABLE prt.solo;
-- inheritance children
CREATE TABLE prt.base (tenant_id int NOT NULL, id int NOT NULL, v int, PRIMARY KEY (tenant_id, id));
CREATE TABLE prt.child (w int) INHERITS (prt.base);
CREATE FUNCTION prt.build_base(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('sum', (SELECT sum(v) FROM prt.base WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('prt_base', 'prt.build_base(int)', ARRAY['prt.base']::regclass[]);
CREATE FUNCTION prt.fresh_base() RETURNS bool LANGUAGE sql AS
$$ SELECT bool_and(config_guard.get('prt_base', t) = prt.build_base(t)) FROM generate_series(1, 3) t $$;
SELECT prt.fresh_base();
INSERT INTO prt.child VALUES (1, 1, 10, 0);
SELECT prt.fresh_base();
CREATE TABLE prt.other (tenant_id int NOT NULL, id int NOT NULL, v int);
INSERT INTO prt.other VALUES (1, 2, 100);
ALTER TABLE prt.other INHERIT prt.base;
SELECT prt.fresh_base();
UPDATE prt.other SET v = 200;
SELECT prt.fresh_base();
ALTER TABLE prt.child NO INHERIT prt.base;
SELECT prt.fresh_base();
UPDATE prt.child SET v = 20;
SELECT prt.fresh_base();
-- a foreign table cannot inherit from a source: its rows change unseen
CREATE FOREIGN DATA WRAPPER prt_fdw;
CREATE SERVER prt_server FOREIGN DATA WRAPPER prt_fdw;
CREATE FOREIGN TABLE prt.ft () INHERITS (prt.base) SERVER prt_server;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM pg_class WHERE relname = 'ft' AND relnamespace = 'prt'::regnamespace;
DROP SERVER prt_server;
DROP FOREIGN DATA WRAPPER prt_fdw;
SELECT * FROM prt.triggers;
-- undefine takes every trigger along
SELECT config_guard.undefine('prt'), config_guard.undefine('prt_base');
SELECT * FROM prt.triggers;
DROP SCHEMA prt CASCADE;
RESET client_min_messages;
