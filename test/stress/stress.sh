#!/usr/bin/env bash
# Stress test of a large configuration (`make stress`): one tenant with
# STRESS_ROWS (default 1,000,000) rows across three sources. Measures the full
# export walk, a get() rebuild, and the rebuilding backend's peak private
# memory (RssAnon, sampled from /proc every 20 ms).
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
ROWS=${STRESS_ROWS:-1000000}

cg_temp_cluster stress "shared_buffers = '1GB'" "max_wal_size = '4GB'"

cg_log "creating one tenant with $ROWS configuration rows"
cg_psql -v rows="$ROWS" <<'SQL'
CREATE EXTENSION config_guard;
CREATE TABLE flags (tenant_id bigint NOT NULL, id bigint NOT NULL, rule jsonb NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE experiments (tenant_id bigint NOT NULL, id bigint NOT NULL, name text NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE segments (tenant_id bigint NOT NULL, id bigint NOT NULL, country text NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO flags SELECT 1, g, jsonb_build_object('rollout', g % 100, 'on', g % 2 = 0) FROM generate_series(1, :rows * 2 / 5) g;
INSERT INTO experiments SELECT 1, g, 'experiment ' || g FROM generate_series(1, :rows * 2 / 5) g;
INSERT INTO segments SELECT 1, g, 'FR' FROM generate_series(1, :rows / 5) g;
VACUUM ANALYZE;
CREATE FUNCTION build(tenant bigint) RETURNS jsonb LANGUAGE sql STABLE AS $$
  SELECT jsonb_build_object(
    'flags', (SELECT jsonb_agg(jsonb_build_array(id, rule) ORDER BY id) FROM flags WHERE tenant_id = tenant),
    'experiments', (SELECT jsonb_agg(jsonb_build_array(id, name) ORDER BY id) FROM experiments WHERE tenant_id = tenant),
    'segments', (SELECT jsonb_agg(jsonb_build_array(id, country) ORDER BY id) FROM segments WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('big', 'build(bigint)', ARRAY['flags', 'experiments', 'segments']::regclass[]);
SQL

cg_log "full export walk, page size 1000"
cg_psql <<'SQL'
\pset footer off
DO $$
DECLARE after text; r record; got int; pages int := 0; total bigint := 0; t0 timestamptz := clock_timestamp();
BEGIN
  LOOP
    got := 0;
    FOR r IN SELECT * FROM config_guard.export_page('big', 1::bigint, after, 1000) LOOP got := got + 1; after := r.cursor; END LOOP;
    EXIT WHEN got = 0;
    pages := pages + 1; total := total + got;
  END LOOP;
  RAISE NOTICE 'export walk: % rows in % pages, % s', total, pages, round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2);
END $$;
SQL

cg_log "get() rebuild, sampling the backend's private memory"
( cg_as_postgres env PGAPPNAME=stress_rebuild psql -X -q -At -h "$WORK" -p "$PORT" -d postgres \
    -c "SELECT pg_sleep(0.5)" \
    -c "SELECT 'rebuild: ' || pg_column_size(d) || ' bytes stored, ' || octet_length(d::text) || ' bytes as text' FROM config_guard.get('big', 1::bigint) d" \
    -c "SELECT 'build time: ' || round(max_build_ms::numeric) || ' ms' FROM config_guard.config_stats" >"$WORK/rebuild.out" ) &
rebuild=$!
pid=""
for _ in $(seq 1 100); do
  pid=$(cg_psql -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'stress_rebuild' AND pid <> pg_backend_pid()" 2>/dev/null || true)
  [ -n "$pid" ] && break
  sleep 0.05
done
base=$(awk '/RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
peak=$base
while kill -0 "$rebuild" 2>/dev/null; do
  now=$(awk '/RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  [ "${now:-0}" -gt "$peak" ] && peak=$now
  sleep 0.02
done
wait "$rebuild"
cat "$WORK/rebuild.out"
echo "backend private memory (RssAnon): $((base / 1024)) MB before the rebuild, peak $((peak / 1024)) MB during it"
cg_psql -At -c "SELECT 'hit after the rebuild: ' || round(extract(epoch FROM clock_timestamp() - now()) * 1000) || ' ms' FROM (SELECT config_guard.get('big', 1::bigint)) g"
