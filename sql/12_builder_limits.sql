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

-- Builder slots are never leaked: not by a builder that calls get() (a tenant
-- document that embeds a shared one), nor by a cancel that an exception block
-- catches. Ten of each in one transaction, with max_rebuilds_per_config = 8:
-- a leak would leave no slot for the last ones (55P03).
SET config_guard.rebuild_wait_timeout = '200ms';
CREATE FUNCTION lim.build_shared(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{"plan": "gold"}'::jsonb $$;
SELECT config_guard.define('shared', 'lim.build_shared(int)', ARRAY['lim.items']::regclass[]);
CREATE FUNCTION lim.build_embedding(tenant int) RETURNS jsonb LANGUAGE sql AS
$$ SELECT jsonb_build_object('tenant', tenant, 'shared', config_guard.get('shared', 0)) $$;
SELECT config_guard.define('embedding', 'lim.build_embedding(int)', ARRAY['lim.items']::regclass[]);
DO $$
BEGIN
  FOR i IN 1..10 LOOP
    PERFORM config_guard.invalidate_all('shared');
    PERFORM config_guard.invalidate_all('embedding');
    PERFORM config_guard.get('embedding', 1);
  END LOOP;
END $$;
SELECT config_guard.get('embedding', 1);

CREATE TABLE lim.switch (cancel boolean NOT NULL);
INSERT INTO lim.switch VALUES (true);
CREATE FUNCTION lim.build_cancelled(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT cancel FROM lim.switch) THEN
    PERFORM pg_cancel_backend(pg_backend_pid());
    PERFORM pg_sleep(5);
  END IF;
  RETURN '{"built": true}'::jsonb;
END $$;
SELECT config_guard.define('cancelled', 'lim.build_cancelled(int)', ARRAY['lim.items']::regclass[],
                           shared_sources => ARRAY['lim.switch']::regclass[]);
DO $$
DECLARE caught int := 0;
BEGIN
  FOR i IN 1..10 LOOP
    BEGIN
      PERFORM config_guard.get('cancelled', 1);
    EXCEPTION WHEN query_canceled THEN
      caught := caught + 1;
    END;
  END LOOP;
  RAISE WARNING 'cancels caught: %', caught;
  UPDATE lim.switch SET cancel = false;
  RAISE WARNING 'then: %', config_guard.get('cancelled', 1);
END $$;
RESET config_guard.rebuild_wait_timeout;

-- A builder that writes to its own sources does not invalidate itself: one
-- build, a WARNING and a counter, and the next calls are hits.
CREATE TABLE lim.reads (tenant_id int NOT NULL, id int NOT NULL, n int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO lim.reads VALUES (1, 1, 0), (2, 1, 0);
CREATE FUNCTION lim.build_counting(tenant int) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  UPDATE lim.reads SET n = n + 1 WHERE tenant_id = tenant;
  RETURN jsonb_build_object('n', (SELECT n FROM lim.reads WHERE tenant_id = tenant AND id = 1));
END $$;
SELECT config_guard.define('counting', 'lim.build_counting(int)', ARRAY['lim.reads']::regclass[]);
SELECT config_guard.get('counting', 1);
SELECT config_guard.get('counting', 1);
SELECT config_guard.get('counting', 1);
SELECT builder_runs, self_writes FROM config_guard.config_stats WHERE config = 'counting';
-- a write of the caller's own transaction before get() is part of the build
BEGIN;
UPDATE lim.reads SET n = 100 WHERE tenant_id = 2;
SELECT config_guard.get('counting', 2);
COMMIT;
SELECT config_guard.get('counting', 2);
SELECT builder_runs FROM config_guard.config_stats WHERE config = 'counting';

SELECT config_guard.undefine(name) FROM config_guard.configs WHERE name IN ('slow', 'shared', 'embedding', 'cancelled', 'counting')
 ORDER BY name;
DROP SCHEMA lim CASCADE;
RESET client_min_messages;
