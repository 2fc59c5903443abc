-- export_page notices a tenant whose configuration changed between two pages
-- of one walk: SQLSTATE 40001, restart from the first page.
\set ECHO all
SET client_min_messages = warning;
-- (walks that read the sources page by page: a walk of an export version
-- never sees a change, 18_export_versions)
SET config_guard.export_versions = off;
CREATE SCHEMA chg;
SET search_path = chg, public;
CREATE TABLE flags (tenant_id bigint NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO flags SELECT t, g FROM generate_series(1, 2) t, generate_series(1, 10) g;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql AS $$ SELECT jsonb_build_object('n', tenant) $$;
SELECT config_guard.define('chg', 'build(bigint)', ARRAY['flags']::regclass[]);

SELECT cursor AS c FROM config_guard.export_page('chg', 1, NULL, 3) OFFSET 2 \gset
-- a write to another tenant does not disturb the walk
INSERT INTO flags VALUES (2, 11);
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
-- a rebuild of the document in between does not either
SELECT config_guard.get('chg', 1) IS NOT NULL AS rebuilt;
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
-- a committed write to the tenant does
UPDATE flags SET id = 100 WHERE tenant_id = 1 AND id = 10;
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
\echo :LAST_ERROR_SQLSTATE
-- and so does an explicit invalidation, or one of the whole config
SELECT cursor AS c FROM config_guard.export_page('chg', 1, NULL, 3) OFFSET 2 \gset
SELECT config_guard.invalidate('chg', 1);
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
\echo :LAST_ERROR_SQLSTATE
SELECT cursor AS c FROM config_guard.export_page('chg', 1, NULL, 3) OFFSET 2 \gset
SELECT config_guard.invalidate_all('chg');
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
\echo :LAST_ERROR_SQLSTATE
-- restarting from the first page walks the new configuration
SELECT count(*) FROM config_guard.export_page('chg', 1, NULL, 100);

-- a write covered by a mark no rebuild has folded (the tenant is stale since
-- the invalidations above) still ends the walk: its first page fenced the
-- tenant, so the write after it writes a mark
SELECT cursor AS c FROM config_guard.export_page('chg', 1, NULL, 3) OFFSET 2 \gset
UPDATE flags SET id = 101 WHERE tenant_id = 1 AND id = 100;
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
\echo :LAST_ERROR_SQLSTATE
-- a walk begun in a transaction that wrote the tenant counts that write
-- (0.6: its mark, otherwise written at the commit, is written at once):
-- rolled back, the walk's next page is refused
BEGIN;
INSERT INTO flags VALUES (1, 0);
SELECT cursor AS c FROM config_guard.export_page('chg', 1, NULL, 3) OFFSET 2 \gset
ROLLBACK;
SELECT count(*) FROM config_guard.export_page('chg', 1, :'c', 3);
\echo :LAST_ERROR_SQLSTATE

SELECT config_guard.undefine('chg');
DROP SCHEMA chg CASCADE;
RESET client_min_messages;
