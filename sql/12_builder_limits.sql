-- A builder that cannot finish within its callers' statement_timeout backs
-- off like a failing one: the next callers get a fast answer instead of
-- restarting it again and again.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA lim;
CREATE TABLE lim.items (tenant_id int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO lim.items VALUES (1, 1);
CREATE FUNCTION lim.slow_build(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.5); RETURN jsonb_build_object('n', (SELECT count(*) FROM lim.items WHERE tenant_id = tenant)); END $$;
SELECT config_guard.define('slow', 'lim.slow_build(int)', ARRAY['lim.items']::regclass[]);
SET statement_timeout = '100ms';
SELECT config_guard.get('slow', 1);
\echo :LAST_ERROR_SQLSTATE
RESET statement_timeout;
SELECT builder_runs, builder_failures FROM config_guard.config_stats WHERE config = 'slow';
-- within the backoff window: a fast error naming the reason, no new run
DO $$
DECLARE detail text;
BEGIN
  PERFORM config_guard.get('slow', 1);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS detail = PG_EXCEPTION_DETAIL;
  RAISE WARNING '% %', SQLSTATE, detail;
END $$;
SELECT builder_runs, builder_failures, backoff_refusals FROM config_guard.config_stats WHERE config = 'slow';

SELECT config_guard.undefine('slow');
DROP SCHEMA lim CASCADE;
RESET client_min_messages;
