-- Export versions: export_page serves a config's readers from one stored
-- version of the tenant's rows per walk. Walks of an unchanged tenant read
-- its sources once; writes never make a walk restart; a version's rows are
-- shown only to a caller who could read them all itself.
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE ev_owner;
CREATE ROLE ev_reader;       -- grant_read and SELECT
CREATE ROLE ev_table_only;   -- SELECT, no grant_read
CREATE ROLE ev_grant_only;   -- grant_read, no SELECT
CREATE SCHEMA ev AUTHORIZATION ev_owner;
GRANT USAGE ON SCHEMA ev TO PUBLIC;
SET ROLE ev_owner;
SET search_path = ev;
CREATE TABLE flags (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, at timestamptz NOT NULL DEFAULT '2026-01-01 12:00+00',
                    PRIMARY KEY (tenant_id, id));
CREATE TABLE rules (tenant_id int NOT NULL, id int NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO flags (tenant_id, id, v) SELECT t, g, 0 FROM generate_series(1, 3) t, generate_series(1, 10) g;
INSERT INTO rules SELECT t, g, 'rule ' || g FROM generate_series(1, 3) t, generate_series(1, 5) g;
CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('ev', 'ev.build(int)', ARRAY['ev.flags', 'ev.rules']::regclass[]);
GRANT SELECT ON flags, rules TO ev_reader, ev_table_only;
SELECT config_guard.grant_read('ev', 'ev_reader');
SELECT config_guard.grant_read('ev', 'ev_grant_only');
RESET ROLE;
RESET search_path;
SET config_guard.rebuild_wait_timeout = 0;
-- (version numbers in the messages below do not depend on earlier tests)
ALTER SEQUENCE config_guard.export_version_ids RESTART;

CREATE TABLE walk (seq serial, source regclass, item jsonb, cursor text);
CREATE FUNCTION page(tenant int, size int) RETURNS bigint LANGUAGE sql AS $$
  WITH p AS (INSERT INTO walk (source, item, cursor)
             SELECT source, item, cursor
               FROM config_guard.export_page('ev', tenant, (SELECT cursor FROM walk ORDER BY seq DESC LIMIT 1), size)
             RETURNING 1)
  SELECT count(*) FROM p $$;
GRANT ALL ON walk, walk_seq_seq TO PUBLIC;
GRANT EXECUTE ON FUNCTION page(int, int) TO PUBLIC;
CREATE VIEW versions AS
  SELECT versions, current_versions, rows FROM config_guard.export_version_stats WHERE config = 'ev';

-- The owner's walk: the sources in order, then primary-key order, one version
SET ROLE ev_owner;
SELECT page(1, 4), page(1, 4), page(1, 4), page(1, 4), page(1, 4);
SELECT source, item ->> 'id' AS id FROM walk ORDER BY seq LIMIT 3;
SELECT source, count(*) FROM walk GROUP BY source ORDER BY source::text;
RESET ROLE;
SELECT * FROM versions;
-- (a cursor of this walk, for the checks below)
SELECT cursor AS version_cursor FROM walk ORDER BY seq LIMIT 1 OFFSET 2 \gset
TRUNCATE walk;

-- Walks of an unchanged tenant read no source: still one version
SET ROLE ev_owner;
SELECT count(*) FROM config_guard.export_page('ev', 1, NULL, 100);
SELECT count(*) FROM config_guard.export_page('ev', 1, NULL, 100);
RESET ROLE;
SELECT * FROM versions;

-- Writes between pages: the walk goes on in its version (no 40001), every
-- row once, at the values of the walk's first page; the next walk reads a
-- new version, which supersedes the old
SET ROLE ev_owner;
SELECT page(1, 6);
UPDATE ev.flags SET v = 1 WHERE tenant_id = 1 AND id IN (1, 10);
DELETE FROM ev.flags WHERE tenant_id = 1 AND id = 9;
INSERT INTO ev.flags (tenant_id, id, v) VALUES (1, 11, 1);
SELECT page(1, 6), page(1, 6), page(1, 6), page(1, 6);
SELECT count(*) AS rows, count(DISTINCT item) AS distinct_rows,
       count(*) FILTER (WHERE item ->> 'v' = '1') AS new_values,
       count(*) FILTER (WHERE item ->> 'id' = '9' AND source = 'ev.flags'::regclass) AS deleted_row_still_in_walk
  FROM walk;
TRUNCATE walk;
SELECT count(*) FILTER (WHERE item ->> 'v' = '1') AS new_values, count(*) AS rows
  FROM config_guard.export_page('ev', 1, NULL, 100);
RESET ROLE;
SELECT * FROM versions;
-- the version every row came from is the tenant's own: another tenant's
-- walk makes its own
SET ROLE ev_owner;
SELECT count(*) FROM config_guard.export_page('ev', 2, NULL, 100);
RESET ROLE;
SELECT * FROM versions;
-- a cursor of tenant 1 is refused for tenant 2
SELECT count(*) FROM config_guard.export_page('ev', 2, :'version_cursor', 10);
\echo :LAST_ERROR_SQLSTATE

-- Items are made as the owner under pinned settings, whoever materializes
SET TimeZone = 'Asia/Tokyo';
SET ROLE ev_owner;
SELECT item ->> 'at' AS at FROM config_guard.export_page('ev', 3, NULL, 1);
RESET ROLE;
RESET TimeZone;

-- Who is served from versions: a reader who may also SELECT every source
SET ROLE ev_reader;
SELECT count(*) FROM config_guard.export_page('ev', 1, NULL, 100);
RESET ROLE;
SELECT * FROM versions;
-- a caller with SELECT but no grant_read reads the sources itself: no
-- version made, and its walk notices changes (40001)
SET ROLE ev_table_only;
SELECT count(*) FROM config_guard.export_page('ev', 3, NULL, 100);
SELECT cursor AS live_cursor FROM config_guard.export_page('ev', 3, NULL, 2) OFFSET 1 \gset
RESET ROLE;
UPDATE ev.flags SET v = 2 WHERE tenant_id = 3 AND id = 1;
SET ROLE ev_table_only;
SELECT count(*) FROM config_guard.export_page('ev', 3, :'live_cursor', 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- a grant_read without SELECT on the sources exports nothing
SET ROLE ev_grant_only;
SELECT count(*) FROM config_guard.export_page('ev', 1, NULL, 100);
\echo :LAST_ERROR_SQLSTATE
-- not even with a reader's cursor
SELECT count(*) FROM config_guard.export_page('ev', 1, :'version_cursor', 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT * FROM versions;
-- row-level security on a source: every caller reads the sources itself
ALTER TABLE ev.rules ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_first ON ev.rules USING (id = 1);
SET ROLE ev_reader;
SELECT source, count(*) FROM config_guard.export_page('ev', 1, NULL, 100) GROUP BY source ORDER BY source::text;
SELECT count(*) FROM config_guard.export_page('ev', 1, :'version_cursor', 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER TABLE ev.rules DISABLE ROW LEVEL SECURITY;
-- a revoked grant stops a walk at its next page
SET ROLE ev_reader;
SELECT cursor AS reader_cursor FROM config_guard.export_page('ev', 1, NULL, 2) OFFSET 1 \gset
RESET ROLE;
SET ROLE ev_owner;
SELECT config_guard.revoke_read('ev', 'ev_reader');
RESET ROLE;
SET ROLE ev_reader;
SELECT count(*) FROM config_guard.export_page('ev', 1, :'reader_cursor', 100);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
-- config_guard.export_versions = off: the owner reads the sources too
SET config_guard.export_versions = off;
SET ROLE ev_owner;
SELECT count(*) FROM config_guard.export_page('ev', 2, NULL, 100);
RESET ROLE;
RESET config_guard.export_versions;
SELECT * FROM versions;

-- REPEATABLE READ: a fresh version serves; without one the walk reads the
-- sources under the transaction's snapshot (nothing is stored)
SET ROLE ev_owner;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT count(*) FROM config_guard.export_page('ev', 2, NULL, 100);
UPDATE ev.flags SET v = 5 WHERE tenant_id = 2 AND id = 1;
SELECT count(*) FILTER (WHERE item ->> 'v' = '5') AS own_write_seen FROM config_guard.export_page('ev', 2, NULL, 100);
COMMIT;
RESET ROLE;
SELECT * FROM versions;

-- A transaction that wrote to the tenant's sources (or altered one) makes no
-- version: what it has not committed is never shared, and its later writes
-- are not hidden behind its one mark
SET ROLE ev_owner;
BEGIN;
UPDATE ev.flags SET v = 7 WHERE tenant_id = 2 AND id = 2;
SELECT count(*) FILTER (WHERE item ->> 'v' = '7') AS own_write_seen FROM config_guard.export_page('ev', 2, NULL, 100);
UPDATE ev.flags SET v = 8 WHERE tenant_id = 2 AND id = 2;
INSERT INTO ev.flags (tenant_id, id, v) VALUES (2, 77, 8);
SELECT count(*) FILTER (WHERE item ->> 'v' = '8') AS later_writes_seen FROM config_guard.export_page('ev', 2, NULL, 100);
COMMIT;
RESET ROLE;
SELECT * FROM versions;
SELECT config_guard.grant_read('ev', 'ev_reader');
SET ROLE ev_reader;
SELECT count(*) FILTER (WHERE item ->> 'v' = '8') AS committed_writes_seen,
       count(*) FILTER (WHERE item ->> 'v' = '7') AS never_committed_value
  FROM config_guard.export_page('ev', 2, NULL, 100);
RESET ROLE;
SELECT * FROM versions;
-- (also when a get() in between folded the transaction's own marks away)
SET ROLE ev_owner;
BEGIN;
UPDATE ev.flags SET v = 9 WHERE tenant_id = 2 AND id = 3;
SELECT config_guard.get('ev', 2) IS NOT NULL AS got;
SELECT count(*) FILTER (WHERE item ->> 'v' = '9') AS own_write_seen FROM config_guard.export_page('ev', 2, NULL, 100);
COMMIT;
RESET ROLE;
SELECT * FROM versions;
SET ROLE ev_owner;
BEGIN;
ALTER TABLE ev.rules ADD COLUMN note text DEFAULT 'new';
SELECT count(*) FILTER (WHERE item ? 'note') AS own_ddl_seen FROM config_guard.export_page('ev', 2, NULL, 100);
COMMIT;
SELECT count(*) FILTER (WHERE item ? 'note') AS committed_ddl_seen FROM config_guard.export_page('ev', 2, NULL, 100);
RESET ROLE;
SELECT * FROM versions;
-- walks of tenants without rows leave no version behind
SELECT versions AS before_empty FROM versions \gset
SET ROLE ev_owner;
SELECT count(*) FROM generate_series(1000, 1099) g CROSS JOIN LATERAL config_guard.export_page('ev', g, NULL, 10);
RESET ROLE;
SELECT versions - :before_empty AS versions_of_empty_tenants FROM versions;

-- A cursor of a version that is gone: 40001, start again
SET ROLE ev_owner;
SELECT cursor AS gone_cursor FROM config_guard.export_page('ev', 3, NULL, 2) OFFSET 1 \gset
RESET ROLE;
DELETE FROM config_guard.export_rows r USING config_guard.export_versions v
 WHERE r.version = v.version AND v.tenant = '3';
DELETE FROM config_guard.export_versions WHERE tenant = '3';
SET ROLE ev_owner;
SELECT count(*) FROM config_guard.export_page('ev', 3, :'gone_cursor', 100);
\echo :LAST_ERROR_SQLSTATE
-- a forged version cursor: 22023
SELECT count(*) FROM config_guard.export_page('ev', 3, overlay(:'gone_cursor' placing
         CASE substr(:'gone_cursor', 20, 1) WHEN 'A' THEN 'B' ELSE 'A' END from 20 for 1), 100);
\echo :LAST_ERROR_SQLSTATE
-- a tenant with no rows has an empty version
SELECT count(*) FROM config_guard.export_page('ev', 404, NULL, 100);
RESET ROLE;

-- undefine takes the versions and their rows with it
SET ROLE ev_owner;
SELECT config_guard.undefine('ev');
RESET ROLE;
SELECT count(*) AS versions_left FROM config_guard.export_versions;
SELECT count(*) AS rows_left FROM config_guard.export_rows;

DROP VIEW versions;
DROP TABLE walk;
DROP FUNCTION page(int, int);
DROP SCHEMA ev CASCADE;
DROP ROLE ev_owner, ev_reader, ev_table_only, ev_grant_only;
RESET client_min_messages;
