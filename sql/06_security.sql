-- Least privilege: the builder runs as the config's owner, so row-level
-- security is evaluated for the owner and every caller gets the same
-- document; reading a config needs its ownership or a grant_read().
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE cg_owner;
CREATE ROLE cg_reader_a;
CREATE ROLE cg_reader_b;
CREATE ROLE cg_group;
CREATE ROLE cg_member IN ROLE cg_group;
CREATE ROLE cg_stranger;
CREATE SCHEMA sec AUTHORIZATION cg_owner;
GRANT USAGE ON SCHEMA sec TO PUBLIC;

SET ROLE cg_owner;
CREATE TABLE sec.secrets (tenant_id int NOT NULL, id int NOT NULL, visible_to name NOT NULL, value text NOT NULL,
                          PRIMARY KEY (tenant_id, id));
INSERT INTO sec.secrets VALUES (1, 1, 'cg_owner', 'owner row 1'), (1, 2, 'cg_owner', 'owner row 2'),
                               (1, 3, 'cg_reader_a', 'only for a');
ALTER TABLE sec.secrets ENABLE ROW LEVEL SECURITY;
ALTER TABLE sec.secrets FORCE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON sec.secrets USING (visible_to = current_user);
GRANT SELECT ON sec.secrets TO cg_reader_a, cg_reader_b;
-- (its table name is unqualified on purpose: the builder runs with its own
-- schema on the search_path, whatever the caller's is)
SET search_path = sec;
CREATE FUNCTION sec.build(tenant int) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object('as', current_user,
                            'values', (SELECT jsonb_agg(value ORDER BY id) FROM secrets WHERE tenant_id = tenant)) $$;
RESET search_path;
SELECT config_guard.define('secrets', 'sec.build(int)', ARRAY['sec.secrets']::regclass[]);
-- the owner may read its own config
SELECT config_guard.get('secrets', 1) ->> 'as' AS built_as;
SELECT config_guard.invalidate('secrets', 1);
-- only the owner grants
SELECT config_guard.grant_read('secrets', 'cg_reader_a');
SELECT config_guard.grant_read('secrets', 'cg_reader_b');
SELECT config_guard.grant_read('secrets', 'cg_group');
RESET ROLE;

-- reader a asks first: the builder still runs as the owner, with the owner's
-- rows, never a's private row
SET ROLE cg_reader_a;
SELECT config_guard.get('secrets', 1) AS seen_by_a;
-- a's own query sees a different set: the document is not a's view
SELECT value FROM sec.secrets ORDER BY id;
RESET ROLE;
SET ROLE cg_reader_b;
SELECT config_guard.get('secrets', 1) AS seen_by_b;
RESET ROLE;
-- members of a granted role may read
SET ROLE cg_member;
SELECT config_guard.get('secrets', 1) ->> 'as' AS member_reads;
RESET ROLE;

-- the caller's search_path cannot redirect the owner's builder to the
-- caller's objects: it runs with pg_catalog, its own schema and pg_temp
CREATE SCHEMA evil;
CREATE TABLE evil.secrets (tenant_id int, id int, visible_to name, value text);
INSERT INTO evil.secrets VALUES (1, 1, 'cg_owner', 'planted by the caller');
GRANT USAGE ON SCHEMA evil TO PUBLIC;
GRANT SELECT ON evil.secrets TO PUBLIC;
SELECT config_guard.invalidate('secrets', 1);
SET ROLE cg_reader_b;
SET search_path = evil, sec, public;
SELECT config_guard.get('secrets', 1) AS not_hijacked;
-- forcing rebuilds is the owner's decision, not a reader's
SELECT config_guard.invalidate('secrets', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.invalidate_all('secrets');
\echo :LAST_ERROR_SQLSTATE
RESET search_path;
RESET ROLE;
DROP SCHEMA evil CASCADE;

-- without a grant: 42501 for get and invalidate; export_page runs with the
-- caller's own table rights, which the stranger lacks as well
SET ROLE cg_stranger;
SELECT config_guard.get('secrets', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.invalidate('secrets', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.export_page('secrets', 1);
\echo :LAST_ERROR_SQLSTATE
-- nor can it grant itself, read the store, or write it
SELECT config_guard.grant_read('secrets', 'cg_stranger');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.documents;
\echo :LAST_ERROR_SQLSTATE
INSERT INTO config_guard.invalidations (config_id, tenant) VALUES (1, '1');
\echo :LAST_ERROR_SQLSTATE
UPDATE config_guard.documents SET document = '{}';
\echo :LAST_ERROR_SQLSTATE
-- statistics are public, their reset is not
SELECT config, documents > 0 AS has_documents FROM config_guard.config_stats WHERE config = 'secrets';
SELECT config_guard.reset_stats();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- revoking takes effect at once, also in sessions that already read
SET ROLE cg_owner;
SELECT config_guard.revoke_read('secrets', 'cg_reader_b');
RESET ROLE;
SET ROLE cg_reader_b;
SELECT config_guard.get('secrets', 1);
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT reader FROM config_guard.readers ORDER BY reader::text;

-- a superuser resets statistics
SELECT config_guard.reset_stats();
SELECT hits, misses, builder_runs FROM config_guard.config_stats WHERE config = 'secrets';

SET ROLE cg_owner;
SELECT config_guard.undefine('secrets');
RESET ROLE;
DROP SCHEMA sec CASCADE;
DROP ROLE cg_owner, cg_reader_a, cg_reader_b, cg_member, cg_group, cg_stranger;
RESET client_min_messages;
