#!/usr/bin/env bash
# Cache benchmarks, each a ratio measured side by side in one run:
#  1. get() hits against a plain primary-key fetch of the same jsonb from an
#     ordinary table, pgbench at the same client count, 2 KB and 1 MB documents;
#  2. a stampede: 64 clients ask for one tenant right after an invalidation,
#     builder runs with config_guard against the naive way (every client builds);
#  3. the invalidation triggers' cost on a 100,000-row UPDATE
#     (single-row writes: write_overhead_bench.sh).
#
#   test/bench/cache_bench.sh [SECONDS_PER_RUN] [CLIENTS]   (defaults: 10 8)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
SECS=${1:-10}
CLIENTS=${2:-8}

cg_temp_cluster bench "shared_buffers = '1GB'" "max_connections = 200" "max_wal_size = '4GB'"
pgbench_tps() {  # pgbench_tps SCRIPT CLIENTS SECONDS -> tps
  cg_as_postgres pgbench -n -M prepared -h "$WORK" -p "$PORT" -c "$2" -j 2 -T "$3" -f "$1" postgres 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

cg_psql <<'SQL'
CREATE EXTENSION config_guard;
CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, body text NOT NULL, PRIMARY KEY (tenant_id, id));
-- tenant 1: about 2 KB of document; tenant 2: about 1 MB
INSERT INTO items SELECT 1, g, repeat('x', 40) FROM generate_series(1, 40) g;
INSERT INTO items SELECT 2, g, md5(g::text) || md5((g * 7)::text) FROM generate_series(1, 16000) g;
CREATE SEQUENCE builder_runs;
CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql AS $$
  SELECT jsonb_build_object('run', nextval('builder_runs'),
                            'items', (SELECT jsonb_agg(jsonb_build_array(id, body) ORDER BY id) FROM items WHERE tenant_id = tenant)) $$;
SELECT config_guard.define('bench', 'build(int)', ARRAY['items']::regclass[]);
CREATE TABLE plain_docs (tenant_id int PRIMARY KEY, doc jsonb NOT NULL);
INSERT INTO plain_docs SELECT t, config_guard.get('bench', t) FROM generate_series(1, 2) t;
ANALYZE;
SQL
cg_psql -At -c "SELECT tenant_id, pg_column_size(doc), octet_length(doc::text) FROM plain_docs ORDER BY 1" |
  while IFS='|' read -r t stored text; do cg_log "tenant $t document: $text bytes as text, $stored stored"; done

for t in 1 2; do
  echo "SELECT config_guard.get('bench', $t);" >"$WORK/get_$t.sql"
  echo "SELECT doc FROM plain_docs WHERE tenant_id = $t;" >"$WORK/plain_$t.sql"
done
chmod 644 "$WORK"/*.sql

echo
echo "get() hits against a primary-key fetch of the same jsonb ($CLIENTS clients, ${SECS} s per run, runs interleaved):"
printf '%-10s %12s %12s %8s\n' document get_tps plain_tps ratio
for t in 1 2; do
  g=0; p=0
  for round in 1 2; do
    g=$(calc "$g + $(pgbench_tps "$WORK/get_$t.sql" "$CLIENTS" "$SECS")")
    p=$(calc "$p + $(pgbench_tps "$WORK/plain_$t.sql" "$CLIENTS" "$SECS")")
  done
  label=$([ "$t" = 1 ] && echo "2 KB" || echo "1 MB")
  printf '%-10s %12.0f %12.0f %8.2f\n' "$label" "$(calc "$g / 2")" "$(calc "$p / 2")" "$(calc "$g / $p")"
done
cg_psql -At -c "SELECT 'runs during the hit benchmark: ' || builder_runs FROM config_guard.config_stats"

echo
echo "Stampede: 64 clients ask for tenant 2 right after an invalidation (5 invalidations):"
cat >"$WORK/naive.sql" <<'SQL'
SELECT build(2);
SQL
echo "SELECT config_guard.get('bench', 2);" >"$WORK/stampede.sql"
chmod 644 "$WORK"/*.sql
cg_runs=0; naive_runs=0
for round in 1 2 3 4 5; do
  cg_psql -c "SELECT config_guard.invalidate('bench', 2)" >/dev/null
  before=$(cg_psql -At -c "SELECT last_value FROM builder_runs")
  cg_as_postgres pgbench -n -h "$WORK" -p "$PORT" -c 64 -j 4 -t 1 -f "$WORK/stampede.sql" postgres >/dev/null 2>&1
  after=$(cg_psql -At -c "SELECT last_value FROM builder_runs")
  cg_runs=$((cg_runs + after - before))
  before=$after
  cg_as_postgres pgbench -n -h "$WORK" -p "$PORT" -c 64 -j 4 -t 1 -f "$WORK/naive.sql" postgres >/dev/null 2>&1
  after=$(cg_psql -At -c "SELECT last_value FROM builder_runs")
  naive_runs=$((naive_runs + after - before))
done
printf '%-28s %8s\n' way "builder runs per invalidation"
printf '%-28s %8.1f\n' "config_guard.get()" "$(calc "$cg_runs / 5")"
printf '%-28s %8.1f\n' "naive (every client builds)" "$(calc "$naive_runs / 5")"

echo
echo "Invalidation triggers on a 100,000-row UPDATE (median of 5, interleaved):"
cg_psql <<'SQL'
CREATE TABLE big (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO big SELECT g % 100, g, 0 FROM generate_series(1, 100000) g;
CREATE TABLE big_plain (LIKE big INCLUDING ALL);
INSERT INTO big_plain SELECT * FROM big;
CREATE FUNCTION build_big(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('big', 'build_big(int)', ARRAY['big']::regclass[]);
VACUUM ANALYZE big, big_plain;
SQL
cg_psql <<'SQL'
CREATE FUNCTION pg_temp.time_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN EXECUTE sql; RETURN extract(epoch FROM clock_timestamp() - t0) * 1000; END $$;
CREATE TEMP TABLE t (with_triggers float8, without float8);
DO $$ BEGIN FOR i IN 1..5 LOOP
  INSERT INTO t SELECT pg_temp.time_ms('UPDATE big SET v = v + 1'), pg_temp.time_ms('UPDATE big_plain SET v = v + 1');
END LOOP; END $$;
SELECT round(percentile_cont(0.5) WITHIN GROUP (ORDER BY with_triggers)::numeric, 1) AS with_triggers_ms,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY without)::numeric, 1) AS without_ms,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY with_triggers)
            / percentile_cont(0.5) WITHIN GROUP (ORDER BY without))::numeric, 2) AS ratio,
       (SELECT count(*) FROM config_guard.invalidations i JOIN config_guard.configs c USING (config_id)
         WHERE c.name = 'big') AS marks_left
  FROM t;
SQL
