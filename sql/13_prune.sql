-- prune_invalidations() keeps the marks table bounded: marks of tenants that
-- were written but never read, and config-wide marks (TRUNCATE,
-- invalidate_all) once every stored document of the config has seen them.
-- It never removes a mark that a stored document still needs.
\set ECHO all
SET client_min_messages = warning;
-- (export walks that read the sources page by page: they count the marks)
SET config_guard.export_versions = off;
CREATE SCHEMA prn;
CREATE TABLE prn.items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO prn.items VALUES (1, 1), (2, 1);
CREATE FUNCTION prn.build(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('n', (SELECT count(*) FROM prn.items WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('prn', 'prn.build(int)', ARRAY['prn.items']::regclass[]);
CREATE VIEW prn.marks AS
  SELECT count(*) FILTER (WHERE i.tenant IS NULL) AS config_wide, count(*) FILTER (WHERE i.tenant IS NOT NULL) AS tenant
    FROM config_guard.invalidations i JOIN config_guard.configs c USING (config_id) WHERE c.name = 'prn';
SELECT config_guard.get('prn', 1), config_guard.get('prn', 2);
SELECT config_guard.invalidate_all('prn');
SELECT config_guard.invalidate_all('prn');
INSERT INTO prn.items VALUES (3, 1);
SELECT * FROM prn.marks;
-- tenant 2 has not been rebuilt since: the config-wide marks stay
SELECT config_guard.get('prn', 1);
SELECT config_guard.prune_invalidations('0');
SELECT * FROM prn.marks;
-- once every document has seen them, they go
SELECT config_guard.get('prn', 2);
SELECT config_guard.prune_invalidations('0');
SELECT * FROM prn.marks;
SELECT config_guard.get('prn', 1), config_guard.get('prn', 2), config_guard.get('prn', 3);
SELECT builder_runs FROM config_guard.config_stats WHERE config = 'prn';
-- an export walk notices a prune followed by a write (the counts of marks
-- would otherwise come out even)
-- (tenant 5 has no document, so the prune takes its mark)
INSERT INTO prn.items VALUES (5, 1), (5, 2), (5, 3);
SELECT cursor AS c FROM config_guard.export_page('prn', 5, NULL, 1) \gset
SELECT config_guard.prune_invalidations('0') >= 1 AS pruned;
UPDATE prn.items SET id = 4 WHERE tenant_id = 5 AND id = 3;
SELECT count(*) FROM config_guard.export_page('prn', 5, :'c', 10);
\echo :LAST_ERROR_SQLSTATE
-- the marks' indexes under maintenance: another index on the table (as
-- REINDEX CONCURRENTLY builds one) is written too, and after a REINDEX
-- CONCURRENTLY (new index oids) this session writes and reads on
CREATE INDEX marks_extra ON config_guard.invalidations (at);
INSERT INTO prn.items VALUES (6, 1);
SELECT count(*) AS marked FROM config_guard.invalidations WHERE tenant = '6';
SELECT config_guard.get('prn', 6) = prn.build(6) AS fresh;
DROP INDEX config_guard.marks_extra;
REINDEX TABLE CONCURRENTLY config_guard.invalidations;
REINDEX TABLE CONCURRENTLY config_guard.documents;
INSERT INTO prn.items VALUES (6, 2);
SELECT config_guard.get('prn', 6) = prn.build(6) AS fresh;
SELECT config_guard.undefine('prn');
DROP SCHEMA prn CASCADE;
RESET client_min_messages;
