#!/usr/bin/env bash
# Refresh-ahead: the share of reads that are hits right after writes. 200
# tenants are read once (so they count as read recently); then, ROUNDS times,
# a back-office write changes a random tenant and a reader asks for it DELAY
# seconds later. With config_guard.refresh_ahead on, the background worker
# (cleanup_interval 1 s here) has rebuilt the tenant by then; off, the reader
# finds it stale and waits for the builder (a 50 ms builder). Both modes on one
# cluster, rounds interleaved.
#
#   test/bench/refresh_bench.sh [ROUNDS] [DELAY]   (defaults: 30 2)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
ROUNDS=${1:-30}
DELAY=${2:-2}

cg_temp_cluster refreshbench "config_guard.cleanup_interval = '1s'"
cg_log "refresh-ahead: $ROUNDS writes per mode, each read ${DELAY} s later"
cg_psql <<'SQL'
CREATE EXTENSION config_guard;
CREATE TABLE items (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO items SELECT t, g, 0 FROM generate_series(1, 200) t, generate_series(1, 20) g;
CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE plpgsql STABLE AS $$
BEGIN
  PERFORM pg_sleep(0.05);
  RETURN jsonb_build_object('v', (SELECT sum(v) FROM items WHERE tenant_id = tenant));
END $$;
SELECT config_guard.define('items', 'build(int)', ARRAY['items']::regclass[]);
SELECT count(config_guard.get('items', t)) FROM generate_series(1, 200) t;
SQL

declare -A hits reads wait_ms
for mode in on off; do hits[$mode]=0; reads[$mode]=0; wait_ms[$mode]=0; done
for round in $(seq "$ROUNDS"); do
  for mode in on off; do
    cg_psql -c "ALTER SYSTEM SET config_guard.refresh_ahead = $mode" -c "SELECT pg_reload_conf()" >/dev/null
    tenant=$((RANDOM % 200 + 1))
    cg_psql -c "UPDATE items SET v = v + 1 WHERE tenant_id = $tenant AND id = 1" >/dev/null
    sleep "$DELAY"
    # a hit: the read found a fresh document (hits moved, misses did not)
    read -r hit ms < <(cg_psql -At -F ' ' <<SQL
SELECT hits FROM config_guard.config_stats WHERE config = 'items' \gset before_
SELECT clock_timestamp() AS t0 \gset
SELECT config_guard.get('items', $tenant) IS NOT NULL \g /dev/null
SELECT (SELECT hits FROM config_guard.config_stats WHERE config = 'items') - :before_hits,
       round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1);
SQL
    )
    hits[$mode]=$((hits[$mode] + hit))
    reads[$mode]=$((reads[$mode] + 1))
    wait_ms[$mode]=$(calc "${wait_ms[$mode]} + $ms")
  done
done
cg_psql -At -c "SELECT 'background builds: ' || background_builds || ', wasted refreshes: ' || wasted_refreshes
                  FROM config_guard.config_stats WHERE config = 'items'"
echo
echo "Reads ${DELAY} s after a write to the tenant ($ROUNDS per mode, interleaved):"
printf '%-22s %8s %8s %10s %16s\n' refresh_ahead reads hits hit_share avg_read_ms
for mode in on off; do
  printf '%-22s %8d %8d %10.2f %16.1f\n' "$mode" "${reads[$mode]}" "${hits[$mode]}" \
    "$(calc "${hits[$mode]} / ${reads[$mode]}")" "$(calc "${wait_ms[$mode]} / ${reads[$mode]}")"
done
