#!/usr/bin/env bash
# Export walks under writes. WALKERS sessions each walk one tenant of ROWS rows
# (pages of 1000, one transaction per page, as a service does) while another
# session updates two of the tenant's rows together every 100 ms. Run twice on
# one cluster: with export versions (the default) and reading the sources page
# by page (config_guard.export_versions = off, where a walk that sees 40001
# starts again), each for at most SECONDS. Prints, per mode: walks completed,
# restarts, rows the walkers read, rows read from the sources per walk, and
# whether every completed walk saw each row once and the two rows at one value.
#
#   test/bench/export_walk_bench.sh [ROWS] [WALKERS] [SECONDS]   (defaults: 200000 4 60)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
ROWS=${1:-200000}
WALKERS=${2:-4}
SECS=${3:-60}

cg_temp_cluster walkbench "shared_buffers = '512MB'" "max_wal_size = '4GB'" "max_connections = 50"
cg_log "export walks: tenant of $ROWS rows, $WALKERS walkers, a write every 100 ms, at most $SECS s per mode"

cg_psql -v rows="$ROWS" <<'SQL'
CREATE EXTENSION config_guard;
CREATE TABLE big (tenant_id bigint NOT NULL, id int NOT NULL, v int NOT NULL, body text NOT NULL,
                  PRIMARY KEY (tenant_id, id));
INSERT INTO big SELECT 1, g, 0, md5(g::text) FROM generate_series(1, :rows) g;
INSERT INTO big SELECT 2, g, 0, md5(g::text) FROM generate_series(1, 100) g;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('big', 'build(bigint)', ARRAY['big']::regclass[]);
VACUUM ANALYZE big;
CREATE TABLE results (mode text, walker int, completed bool, restarts int, rows_read bigint, rows_kept bigint,
                      distinct_ids bigint, pair_values int, seconds float8);
-- One walk: a page per transaction; on 40001 the walk starts again.
CREATE PROCEDURE walk(mode text, walker int, deadline timestamptz, last_id int) LANGUAGE plpgsql AS $$
DECLARE
  after text;
  n bigint;
  restarts int := 0;
  rows_read bigint := 0;
  done bool := false;
  failed bool;
  started timestamptz := clock_timestamp();
BEGIN
  CREATE TEMP TABLE seen (id int, v int);
  CREATE TEMP TABLE pg (item jsonb, cursor text, n bigint);
  COMMIT;
  WHILE clock_timestamp() < deadline LOOP
    failed := false;
    BEGIN
      INSERT INTO pg SELECT e.item, e.cursor, e.n
        FROM config_guard.export_page('big', 1::bigint, after, 1000) WITH ORDINALITY AS e(source, item, cursor, n);
    EXCEPTION WHEN serialization_failure THEN
      failed := true;
    END;
    IF failed THEN
      restarts := restarts + 1;
      after := NULL;
      TRUNCATE seen;
    ELSE
      GET DIAGNOSTICS n = ROW_COUNT;
      rows_read := rows_read + n;
      IF n = 0 THEN
        done := true;
        EXIT;
      END IF;
      INSERT INTO seen SELECT (item ->> 'id')::int, (item ->> 'v')::int FROM pg;
      SELECT cursor INTO after FROM pg ORDER BY pg.n DESC LIMIT 1;
      DELETE FROM pg;
    END IF;
    COMMIT;
  END LOOP;
  INSERT INTO results
  SELECT mode, walker, done, restarts, rows_read, count(*), count(DISTINCT id),
         count(DISTINCT v) FILTER (WHERE id IN (1, last_id)),
         extract(epoch FROM clock_timestamp() - started)
    FROM seen;
  COMMIT;
END $$;
CREATE PROCEDURE write_pairs(deadline timestamptz, last_id int) LANGUAGE plpgsql AS $$
BEGIN
  WHILE clock_timestamp() < deadline LOOP
    UPDATE big SET v = v + 1 WHERE tenant_id = 1 AND id IN (1, last_id);
    COMMIT;
    PERFORM pg_sleep(0.1);
  END LOOP;
END $$;
SQL

run_mode() {  # run_mode MODE SETTING
  local mode=$1 setting=$2
  local deadline
  deadline=$(cg_psql -At -c "SELECT clock_timestamp() + interval '$SECS seconds'")
  cg_psql -c "SELECT config_guard.invalidate('big', 1)" >/dev/null
  local writes_before versions_before
  writes_before=$(cg_psql -At -c "SELECT v FROM big WHERE tenant_id = 1 AND id = 1")
  versions_before=$(cg_psql -At -c "SELECT COALESCE(sum(row_count), 0) FROM config_guard.export_versions")
  cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres \
    -c "CALL write_pairs('$deadline', $ROWS)" >/dev/null &
  local writer=$! pids=()
  for w in $(seq "$WALKERS"); do
    PGOPTIONS="-c config_guard.export_versions=$setting -c config_guard.rebuild_wait_timeout=60s" \
      cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres \
      -c "CALL walk('$mode', $w, '$deadline', $ROWS)" >/dev/null &
    pids+=($!)
  done
  wait "${pids[@]}"
  kill "$writer" 2>/dev/null || true
  wait "$writer" 2>/dev/null || true
  local writes materialized
  writes=$(cg_psql -At -c "SELECT v FROM big WHERE tenant_id = 1 AND id = 1")
  # rows read from the sources: the versions made, or every row a walker read
  materialized=$(cg_psql -At -c "SELECT COALESCE(sum(row_count), 0) - $versions_before FROM config_guard.export_versions")
  # (superseded versions are kept for the TTL: none is dropped during a run)
  cg_psql -At -c "
    SELECT count(*) FILTER (WHERE completed), sum(restarts), sum(rows_read),
           COALESCE(round((CASE WHEN '$setting' = 'on' THEN $materialized ELSE sum(rows_read) END)::numeric
                          / NULLIF(count(*) FILTER (WHERE completed), 0))::text, 'no walk done'),
           bool_and(NOT completed OR (rows_kept = $((ROWS + 0)) AND distinct_ids = $ROWS AND pair_values = 1)),
           round(max(seconds)::numeric, 1)
      FROM results WHERE mode = '$mode'" | {
    IFS='|' read -r completed restarts rows_read per_walk consistent seconds
    printf '%-26s %9s %9s %13s %17s %11s %8s %7s\n' "$mode" "$completed/$WALKERS" "$restarts" "$rows_read" \
      "$per_walk" "$consistent" "$seconds" "$((writes - writes_before))"
  }
}

echo
echo "Export walks of a $ROWS-row tenant under writes ($WALKERS walkers, pages of 1000, a write of two rows every 100 ms, at most $SECS s):"
printf '%-26s %9s %9s %13s %17s %11s %8s %7s\n' mode completed restarts rows_read source_rows/walk consistent seconds writes
run_mode "export versions" on
run_mode "page by page (0.5)" off
