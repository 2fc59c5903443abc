\echo Use "ALTER EXTENSION config_guard UPDATE TO '0.3'" to load this file. \quit

-- Per-role admission control ---------------------------------------------------------
-- The limits in force live in shared memory and in $PGDATA/config_guard_role_limits
-- (cluster-wide, read at start and after a crash); this table records the
-- limits set from this database, for pg_dump and for reading.

CREATE TABLE config_guard.role_limits (
    role          regrole PRIMARY KEY,
    max_active    integer NOT NULL CHECK (max_active >= 1),
    max_queued    integer NOT NULL CHECK (max_queued >= 0),
    queue_timeout interval NOT NULL
);
COMMENT ON TABLE config_guard.role_limits IS 'limits set with config_guard.set_role_limit() from this database';
SELECT pg_catalog.pg_extension_config_dump('config_guard.role_limits', '');
REVOKE ALL ON config_guard.role_limits FROM PUBLIC;
GRANT SELECT ON config_guard.role_limits TO PUBLIC;

CREATE FUNCTION config_guard.set_role_limit(role regrole, max_active integer, max_queued integer DEFAULT 64,
                                            queue_timeout interval DEFAULT '5s')
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_set_role_limit'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.set_role_limit(regrole, integer, integer, interval) IS
  'run at most max_active statements of the role at once, queue up to max_queued for up to queue_timeout';
REVOKE ALL ON FUNCTION config_guard.set_role_limit(regrole, integer, integer, interval) FROM PUBLIC;

CREATE FUNCTION config_guard.drop_role_limit(role regrole)
RETURNS void
AS 'MODULE_PATHNAME', 'config_guard_drop_role_limit'
LANGUAGE C VOLATILE
SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION config_guard.drop_role_limit(regrole) IS 'remove a role''s limit; queued statements run at once';
REVOKE ALL ON FUNCTION config_guard.drop_role_limit(regrole) FROM PUBLIC;

CREATE FUNCTION config_guard.role_counters(
    OUT role oid, OUT max_active integer, OUT max_queued integer, OUT queue_timeout_ms integer,
    OUT active integer, OUT queued integer, OUT admitted bigint, OUT ever_queued bigint,
    OUT wait_timeouts bigint, OUT queue_full bigint, OUT avg_wait_ms float8, OUT max_wait_ms float8)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'config_guard_role_counters'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION config_guard.role_counters() IS 'the shared-memory state behind config_guard.role_stats';

CREATE VIEW config_guard.role_stats AS
SELECT r.role::regrole AS role, r.max_active, r.max_queued,
       pg_catalog.make_interval(secs => r.queue_timeout_ms / 1000.0) AS queue_timeout,
       r.active, r.queued, r.admitted, r.ever_queued, r.wait_timeouts, r.queue_full,
       r.avg_wait_ms, r.max_wait_ms
  FROM config_guard.role_counters() r;
COMMENT ON VIEW config_guard.role_stats IS 'per limited role: its limit, statements running and queued, counters';
GRANT SELECT ON config_guard.role_stats TO PUBLIC;
