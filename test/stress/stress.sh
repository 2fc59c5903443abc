#!/usr/bin/env bash
# Stress test of a large configuration (`make stress`): one tenant with
# STRESS_ROWS (default 1,000,000) rows across three sources. Measures the full
# export walk (its first page makes the export version) and a get() rebuild,
# and each backend's peak private memory (RssAnon, sampled from /proc every
# 20 ms).
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

# peak_memory APPNAME PSQL_ARGS...: runs psql in the background as APPNAME and
# samples its backend's private memory (RssAnon) every 20 ms until it ends;
# prints "BASE PEAK" in MB, psql's output going to $WORK/APPNAME.out.
peak_memory() {
  local app=$1
  shift
  ( cg_as_postgres env PGAPPNAME="$app" psql -X -q -At -h "$WORK" -p "$PORT" -d postgres -c "SELECT pg_sleep(0.5)" \
      "$@" >"$WORK/$app.out" ) &
  local job=$! pid="" base peak now
  for _ in $(seq 1 100); do
    pid=$(cg_psql -At -c "SELECT pid FROM pg_stat_activity WHERE application_name = '$app' AND pid <> pg_backend_pid()" 2>/dev/null || true)
    [ -n "$pid" ] && break
    sleep 0.05
  done
  base=$(awk '/RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
  peak=$base
  while kill -0 "$job" 2>/dev/null; do
    now=$(awk '/RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${now:-0}" -gt "$peak" ] && peak=$now
    sleep 0.02
  done
  wait "$job"
  echo "$((base / 1024)) $((peak / 1024))"
}

# The first page of the walk makes the tenant's export version: every row
# read from the sources and stored, one batch of rows in memory at a time.
cg_log "full export walk, page size 1000, sampling the backend's private memory"
read -r base peak < <(peak_memory stress_export -c "
DO \$\$
DECLARE after text; r record; got int; pages int := 0; total bigint := 0; t0 timestamptz := clock_timestamp();
        first_page float8;
BEGIN
  LOOP
    got := 0;
    FOR r IN SELECT * FROM config_guard.export_page('big', 1::bigint, after, 1000) LOOP got := got + 1; after := r.cursor; END LOOP;
    IF pages = 0 THEN first_page := extract(epoch FROM clock_timestamp() - t0); END IF;
    EXIT WHEN got = 0;
    pages := pages + 1; total := total + got;
  END LOOP;
  RAISE NOTICE 'export walk: % rows in % pages, % s (% s of them the first page, which made the export version)',
    total, pages, round(extract(epoch FROM clock_timestamp() - t0)::numeric, 2), round(first_page::numeric, 2);
END \$\$;")
cat "$WORK/stress_export.out"
echo "export version of $ROWS rows: backend private memory (RssAnon) $base MB before, peak $peak MB during the walk"

cg_log "get() rebuild, sampling the backend's private memory"
read -r base peak < <(peak_memory stress_rebuild \
  -c "SELECT 'rebuild: ' || pg_column_size(d) || ' bytes stored, ' || octet_length(d::text) || ' bytes as text' FROM config_guard.get('big', 1::bigint) d" \
  -c "SELECT 'build time: ' || round(max_build_ms::numeric) || ' ms' FROM config_guard.config_stats")
cat "$WORK/stress_rebuild.out"
echo "backend private memory (RssAnon): $base MB before the rebuild, peak $peak MB during it"
cg_psql -At -c "SELECT 'hit after the rebuild: ' || round(extract(epoch FROM clock_timestamp() - now()) * 1000) || ' ms' FROM (SELECT config_guard.get('big', 1::bigint)) g"
