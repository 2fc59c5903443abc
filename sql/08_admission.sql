-- Admission control: setting and dropping limits, what takes a slot, and the
-- role a statement is charged to.
\set ECHO all
SET client_min_messages = warning;
CREATE ROLE cg_limited LOGIN;
CREATE ROLE cg_other;
GRANT cg_other TO cg_limited;
CREATE ROLE cg_plain LOGIN;

-- bad input
SELECT config_guard.set_role_limit('cg_limited', 0);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.set_role_limit('cg_limited', 2, -1);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.set_role_limit('cg_limited', 2, 4, '0 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.set_role_limit('cg_limited', NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.set_role_limit('no_such_role', 2);
\echo :LAST_ERROR_SQLSTATE
SELECT config_guard.drop_role_limit('cg_plain');
\echo :LAST_ERROR_SQLSTATE

-- only superusers, or roles granted EXECUTE, manage limits
\c - cg_plain
SET client_min_messages = warning;
SELECT config_guard.set_role_limit('cg_plain', 100);
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM config_guard.role_stats;
\c - postgres
SET client_min_messages = warning;

SELECT config_guard.set_role_limit('cg_limited', 1, 0, '100ms');
SELECT role, max_active, max_queued, queue_timeout, active, queued FROM config_guard.role_stats;
SELECT role, max_active, max_queued, queue_timeout FROM config_guard.role_limits;
-- a limit set in a rolled-back transaction never applies
BEGIN;
SELECT config_guard.set_role_limit('cg_plain', 1);
ROLLBACK;
SELECT count(*) AS plain_limited FROM config_guard.role_stats WHERE role = 'cg_plain'::regrole;

\c - cg_limited
SET client_min_messages = warning;
-- the statement that reads role_stats holds the role's only slot
SELECT active, queued FROM config_guard.role_stats WHERE role = 'cg_limited'::regrole;
-- inner statements of a function take no second slot (with one slot and an
-- empty queue, a second slot would be refused at once)
CREATE FUNCTION pg_temp.inner_queries() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE n bigint := 0;
BEGIN
  FOR i IN 1..5 LOOP n := n + (SELECT count(*) FROM generate_series(1, 10)); END LOOP;
  RETURN n;
END $$;
SELECT pg_temp.inner_queries();
-- transaction control and SHOW take none; an idle transaction holds none
BEGIN;
SHOW config_guard.max_page_size;
SELECT 1 AS in_transaction;
COMMIT;
-- SET ROLE does not move the charge: it stays with the login role
SET ROLE cg_other;
SELECT current_user, (SELECT active FROM config_guard.role_stats WHERE role = 'cg_limited'::regrole) AS charged;
RESET ROLE;
-- an error releases the slot
SELECT 1 / g FROM generate_series(0, 1) g;
\echo :LAST_ERROR_SQLSTATE
-- so does an error inside a savepoint
BEGIN;
SAVEPOINT s;
SELECT 1 / g FROM generate_series(0, 1) g;
ROLLBACK TO SAVEPOINT s;
SELECT 'after savepoint' AS still_runs;
COMMIT;
\c - postgres
SET client_min_messages = warning;
-- eight statements took a slot: seven ran through the executor at the top
-- level, and CREATE FUNCTION is a utility statement that does work
SELECT active, queued, admitted, queue_full, wait_timeouts
  FROM config_guard.role_stats WHERE role = 'cg_limited'::regrole;

SELECT config_guard.drop_role_limit('cg_limited');
SELECT count(*) FROM config_guard.role_stats;
SELECT count(*) FROM config_guard.role_limits;
DROP ROLE cg_limited, cg_other, cg_plain;
RESET client_min_messages;
