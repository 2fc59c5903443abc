-- config_guard.get(): stored documents, invalidation by triggers in the
-- writing transaction, builder failures and backoff, isolation levels.
\set ECHO all
SET client_min_messages = warning;
CREATE SCHEMA cache;
SET search_path = cache, public;

CREATE TABLE flags (tenant_id bigint NOT NULL, flag_id int NOT NULL, name text NOT NULL,
                    PRIMARY KEY (tenant_id, flag_id));
CREATE TABLE rules (rule_id int PRIMARY KEY, tenant_id bigint NOT NULL, body text NOT NULL);
CREATE INDEX ON rules (tenant_id, rule_id);
INSERT INTO flags SELECT t, f, 'flag' || f FROM generate_series(1, 3) t, generate_series(1, 3) f;
INSERT INTO rules SELECT t * 10 + r, t, 'rule' || r FROM generate_series(1, 3) t, generate_series(1, 2) r;
-- builder runs are counted by a sequence: it survives rollbacks
CREATE SEQUENCE builder_runs;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object(
    'run', nextval('cache.builder_runs'),
    'flags', (SELECT jsonb_agg(name ORDER BY flag_id) FROM cache.flags WHERE tenant_id = tenant),
    'rules', (SELECT jsonb_agg(body ORDER BY rule_id) FROM cache.rules WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('shop', 'build(bigint)', ARRAY['flags', 'rules']::regclass[]);
CREATE FUNCTION runs() RETURNS bigint LANGUAGE sql AS $$
  SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM cache.builder_runs $$;

-- define installed a trigger per event on every source
SELECT tgrelid::regclass AS source, count(*) AS triggers,
       string_agg(substring(tgname from '[a-z]+$'), ',' ORDER BY tgname) AS events
  FROM pg_trigger WHERE tgname LIKE 'config_guard_%' GROUP BY 1 ORDER BY 1;

-- a miss builds and stores; the next call is a hit
SELECT config_guard.get('shop', 1);
SELECT config_guard.get('shop', 1);
SELECT runs();

-- a committed write invalidates exactly the tenant it touched
UPDATE flags SET name = 'renamed' WHERE tenant_id = 1 AND flag_id = 2;
SELECT config_guard.get('shop', 2) ->> 'run' AS tenant2_run, runs();
SELECT config_guard.get('shop', 1);
SELECT config_guard.get('shop', 2) ->> 'run' AS tenant2_run_again, runs();

-- a rolled-back write invalidates nothing
BEGIN;
DELETE FROM rules WHERE tenant_id = 1;
ROLLBACK;
SELECT config_guard.get('shop', 1) ->> 'run' AS run, runs();

-- inside the writing transaction, get() sees the transaction's own write;
-- its rollback takes the rebuilt document with it
BEGIN;
INSERT INTO rules VALUES (19, 1, 'uncommitted');
SELECT config_guard.get('shop', 1) -> 'rules' AS rules_in_transaction;
ROLLBACK;
SELECT config_guard.get('shop', 1) -> 'rules' AS rules_after_rollback;

-- a row moved from one tenant to another invalidates both
SELECT config_guard.get('shop', 3) ->> 'run' AS tenant3_run;
SELECT runs() AS runs_before_move \gset
UPDATE rules SET tenant_id = 3 WHERE rule_id = 21;
SELECT config_guard.get('shop', 2) -> 'rules' AS tenant2_rules, config_guard.get('shop', 3) -> 'rules' AS tenant3_rules;
SELECT runs() - :runs_before_move AS rebuilds_after_move;

-- a bulk statement marks each distinct tenant once, not each row (the marks
-- are written when the transaction commits)
SELECT config_guard.get('shop', t) IS NOT NULL AS read FROM generate_series(1, 3) t;
BEGIN;
SELECT pg_current_xact_id() AS bulk_xid \gset
INSERT INTO flags SELECT 1 + g % 3, 100 + g, 'bulk' FROM generate_series(1, 3000) g;
-- two statements of one transaction leave one mark per tenant
UPDATE flags SET name = name || '!' WHERE flag_id > 100;
SELECT count(*) AS marks_before_commit FROM config_guard.invalidations WHERE xid = :'bulk_xid';
-- (the transaction's own reads see its writes meanwhile; this one stores
-- tenant 2's document with them, which folds tenant 2's mark)
SELECT config_guard.get('shop', 2) -> 'flags' = build(2) -> 'flags' AS own_writes_seen;
COMMIT;
SELECT count(*) AS marks, count(DISTINCT tenant) AS tenants FROM config_guard.invalidations WHERE xid = :'bulk_xid';
-- a write to tenants already stale through a mark no build has folded since
-- adds none: their documents are stale either way (tenants 1 and 3; tenant
-- 2's document was built since)
BEGIN;
SELECT pg_current_xact_id() AS covered_xid \gset
UPDATE flags SET name = name || '?' WHERE flag_id > 100;
COMMIT;
SELECT count(*) AS marks_of_covered_writes FROM config_guard.invalidations WHERE xid = :'covered_xid';
SELECT bool_and(config_guard.get('shop', t) -> 'flags' = build(t) -> 'flags') AS fresh FROM generate_series(1, 3) t;
-- a transaction that writes, reads the tenant's generation (an export walk:
-- its mark is written at once), stores the tenant's document (which folds
-- that mark) and writes again: the second write is marked at the commit
BEGIN;
UPDATE flags SET name = name || '1' WHERE tenant_id = 2 AND flag_id > 100;
SELECT count(*) > 0 AS walked FROM config_guard.export_page('shop', 2, NULL, 1);
SELECT config_guard.get('shop', 2) -> 'flags' = build(2) -> 'flags' AS own_writes_seen;
UPDATE flags SET name = name || '2' WHERE tenant_id = 2 AND flag_id > 100;
SELECT config_guard.get('shop', 2) -> 'flags' = build(2) -> 'flags' AS second_write_seen;
COMMIT;
SELECT config_guard.get('shop', 2) -> 'flags' = build(2) -> 'flags' AS fresh_after_commit;
-- the builds folded the marks: the next write marks again
BEGIN;
SELECT pg_current_xact_id() AS after_build_xid \gset
UPDATE flags SET name = name || '+' WHERE flag_id > 100;
COMMIT;
SELECT count(*) AS marks_after_builds FROM config_guard.invalidations WHERE xid = :'after_build_xid';

-- TRUNCATE invalidates every tenant of the config
SELECT config_guard.get('shop', 1) IS NOT NULL AS warm, config_guard.get('shop', 2) IS NOT NULL AS warm;
SELECT runs() AS runs_before_truncate \gset
TRUNCATE rules;
SELECT config_guard.get('shop', 1) -> 'rules' AS t1_rules, config_guard.get('shop', 2) -> 'rules' AS t2_rules;
SELECT runs() - :runs_before_truncate AS rebuilds_after_truncate;

-- invalidate() and invalidate_all()
SELECT runs() AS r0 \gset
SELECT config_guard.invalidate('shop', 1);
SELECT config_guard.get('shop', 1) IS NOT NULL, config_guard.get('shop', 2) IS NOT NULL, runs() - :r0 AS rebuilds;
SELECT config_guard.invalidate_all('shop');
SELECT config_guard.get('shop', 1) IS NOT NULL, config_guard.get('shop', 2) IS NOT NULL, runs() - :r0 AS rebuilds;
SELECT config_guard.invalidate('shop', 'x'::text);
\echo :LAST_ERROR_SQLSTATE
-- a read-only transaction writes no marks
BEGIN READ ONLY;
SELECT config_guard.invalidate('shop', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- the invalidations a rebuild covered are folded away
SELECT count(*) AS marks_left FROM config_guard.invalidations WHERE tenant IN ('1', '2');

-- REPEATABLE READ: a stale document is rebuilt under the transaction's
-- snapshot and returned, but not stored (a later reader could not trust it)
UPDATE flags SET name = 'rr' WHERE tenant_id = 2 AND flag_id = 1;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT config_guard.get('shop', 2) -> 'flags' -> 0 AS in_repeatable_read;
COMMIT;
SELECT count(*) AS still_stale FROM config_guard.invalidations WHERE tenant = '2';
SELECT config_guard.get('shop', 2) -> 'flags' -> 0 AS after;
SELECT count(*) AS folded FROM config_guard.invalidations WHERE tenant = '2';
-- a fresh stored document is served in REPEATABLE READ without a builder run
SELECT runs() AS r1 \gset
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT config_guard.get('shop', 2) -> 'flags' -> 0 AS in_serializable;
COMMIT;
SELECT runs() - :r1 AS rebuilds;

-- bad input
SELECT config_guard.get('shop', NULL::bigint);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.get(NULL, 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.get('nope', 1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.get('shop', 'one'::text);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.get('shop', 1, '-1 second');
\echo :LAST_ERROR_SQLSTATE

-- a tenant with no rows still gets its builder's document
SELECT config_guard.get('shop', 999) - 'run';

-- Failing builders ----------------------------------------------------------------
ALTER SYSTEM SET config_guard.backoff_base = '1s';
ALTER SYSTEM SET config_guard.backoff_max = '1s';
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SHOW config_guard.backoff_base;

CREATE TABLE switches (tenant_id bigint PRIMARY KEY, fail boolean NOT NULL);
INSERT INTO switches VALUES (1, false), (2, true);
CREATE FUNCTION build_flaky(tenant bigint) RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
  PERFORM nextval('cache.builder_runs');
  IF (SELECT fail FROM cache.switches WHERE tenant_id = tenant) THEN
    RAISE EXCEPTION 'upstream table is corrupt for tenant %', tenant USING ERRCODE = 'XX001';
  END IF;
  IF tenant = 3 THEN RETURN NULL; END IF;
  RETURN jsonb_build_object('tenant', tenant, 'at', (SELECT count(*) FROM cache.switches));
END $$;
SELECT config_guard.define('flaky', 'build_flaky(bigint)', ARRAY['switches']::regclass[]);

-- Reports a get() error as SQLSTATE, message, detail and whether a hint names
-- the next attempt (its time varies).
CREATE FUNCTION try_get(config text, tenant bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE s text; m text; d text; h text;
BEGIN
  RETURN config_guard.get(config, tenant)::text;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS s = RETURNED_SQLSTATE, m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
  RETURN format('%s: %s / %s / hint names next attempt: %s', s, m, d, h LIKE 'The next attempt is allowed after %');
END $$;

-- no document yet: a fast error carrying the builder's message
SELECT runs() AS r2 \gset
SELECT try_get('flaky', 2);
-- during the backoff nobody runs the builder, however many ask
SELECT try_get('flaky', 2) FROM generate_series(1, 5);
SELECT runs() - :r2 AS builder_runs;
-- a builder that returns NULL is a failure too
SELECT try_get('flaky', 3);
-- after the backoff window the builder runs again
UPDATE switches SET fail = false WHERE tenant_id = 2;
SELECT pg_sleep(1.1);
SELECT try_get('flaky', 2);

-- with a last good document: served while the builder fails (stale_if_error)
SELECT config_guard.get('flaky', 1);
UPDATE switches SET fail = true WHERE tenant_id = 1;
SELECT config_guard.get('flaky', 1) AS last_good;
-- with stale_if_error = 0 the caller gets the error instead
SET config_guard.stale_if_error = 0;
SELECT try_get('flaky', 1);
RESET config_guard.stale_if_error;

SELECT config, hits, stale_hits, misses, builder_runs, builder_failures, backoff_refusals, documents
  FROM config_guard.config_stats WHERE config = 'flaky';

ALTER SYSTEM RESET config_guard.backoff_base;
ALTER SYSTEM RESET config_guard.backoff_max;
SELECT pg_reload_conf();

-- abnormal rebuild traffic: a WARNING once the runs of a minute exceed
-- config_guard.rebuild_alert_per_minute, and only once that minute
ALTER SYSTEM SET config_guard.rebuild_alert_per_minute = 3;
SELECT pg_reload_conf();
SELECT pg_sleep(0.2);
SELECT config_guard.define('alerting', 'build(bigint)', ARRAY['rules', 'flags']::regclass[]);
CREATE FUNCTION rebuild(tenant bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM config_guard.invalidate('alerting', tenant);
  PERFORM config_guard.get('alerting', tenant);
END $$;
SET client_min_messages = warning;
-- runs 1 to 3: quiet; run 4: the warning; runs 5 to 8: quiet again
SELECT count(rebuild(t)) FROM generate_series(1, 3) t;
SELECT count(rebuild(t)) FROM generate_series(1, 5) t;
SELECT builder_runs FROM config_guard.config_stats WHERE config = 'alerting';
SELECT config_guard.undefine('alerting');
ALTER SYSTEM RESET config_guard.rebuild_alert_per_minute;
SELECT pg_reload_conf();

-- marks of tenants that were written but never read are pruned once old
INSERT INTO flags SELECT 77, g, 'never read' FROM generate_series(1, 5) g;
UPDATE flags SET name = 'again' WHERE tenant_id = 77;
-- (the second write is covered by the first one's mark)
SELECT count(*) AS marks_of_unread_tenant FROM config_guard.invalidations WHERE tenant = '77';
-- (invalidate() writes its mark whatever covers the tenant)
SELECT config_guard.invalidate('shop', 77);
-- (too young to prune; its two marks fold into one: 1 row less)
SELECT config_guard.prune_invalidations('1 hour') AS pruned_young;
SELECT config_guard.prune_invalidations('0') AS pruned;
SELECT count(*) AS marks_of_read_tenants_kept FROM config_guard.invalidations WHERE tenant <> '77';

-- undefine drops the triggers and the stored documents
SELECT config_guard.undefine('flaky');
SELECT config_guard.undefine('shop');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgname LIKE 'config_guard_%';
SELECT count(*) AS documents_left FROM config_guard.documents;
SELECT count(*) AS marks_left FROM config_guard.invalidations;
DROP SCHEMA cache CASCADE;
RESET client_min_messages;
