#!/usr/bin/env bash
# Admission control benchmarks, ratios measured side by side in one run:
#  1. overhead: pgbench select-only as a limited role whose limit is above its
#     client count, against an unlimited role, same clients;
#  2. protection: 64 clients of the limited role run a heavy query while a
#     bystander role runs a small indexed lookup; the bystander's latency with
#     a limit of 2 against no limit.
#
#   test/bench/admission_bench.sh [SECONDS] [CLIENTS]   (defaults: 10 8)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
SECS=${1:-10}
CLIENTS=${2:-8}

cg_temp_cluster bench "shared_buffers = '512MB'" "max_connections = 200"
bench() {  # bench ROLE CLIENTS SECONDS ARGS... -> tps
  local role=$1 clients=$2 secs=$3
  shift 3
  cg_as_postgres pgbench -n -h "$WORK" -p "$PORT" -U "$role" -c "$clients" -j 2 -T "$secs" "$@" postgres 2>/dev/null |
    sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

cg_as_postgres pgbench -i -q -s 10 -h "$WORK" -p "$PORT" postgres >/dev/null 2>&1
cg_psql <<'SQL'
CREATE EXTENSION config_guard;
CREATE ROLE limited LOGIN;
CREATE ROLE unlimited LOGIN;
CREATE ROLE bystander LOGIN;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO limited, unlimited, bystander;
SELECT config_guard.set_role_limit('limited', 100, 100, '60s');
SQL

echo
echo "Overhead: pgbench -S, $CLIENTS clients, ${SECS} s per run, two interleaved rounds:"
l=0; u=0
for round in 1 2; do
  l=$(calc "$l + $(bench limited "$CLIENTS" "$SECS" -S -M prepared)")
  u=$(calc "$u + $(bench unlimited "$CLIENTS" "$SECS" -S -M prepared)")
done
printf '%-34s %10.0f tps\n' "limited role (limit 100)" "$(calc "$l / 2")"
printf '%-34s %10.0f tps\n' "unlimited role" "$(calc "$u / 2")"
printf '%-34s %10.3f\n' "ratio limited / unlimited" "$(calc "$l / $u")"

cat >"$WORK/heavy.sql" <<'SQL'
SELECT count(*), sum(abalance) FROM pgbench_accounts WHERE filler <> 'x';
SQL
cat >"$WORK/lookup.sql" <<'SQL'
\set aid random(1, 1000000)
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
SQL
chmod 644 "$WORK"/*.sql

# p50 and p99 of the bystander's per-transaction latencies (ms) from pgbench logs
percentiles() {
  cat "$1".* | awk '{ print $3 / 1000 }' | sort -n | awk '{ v[NR] = $1 } END {
    printf "%.2f %.2f %d", v[int(NR * 0.50) + 1], v[int(NR * 0.99) + 1], NR }'
}
protect() {  # protect LABEL -> prints p50 p99 count
  local label=$1
  cg_as_postgres pgbench -n -h "$WORK" -p "$PORT" -U limited -c 64 -j 4 -T "$SECS" -f "$WORK/heavy.sql" postgres \
    >"$WORK/heavy_$label.out" 2>&1 &
  local heavy=$!
  sleep 1
  (cd "$WORK" && cg_as_postgres pgbench -n -h "$WORK" -p "$PORT" -U bystander -c 2 -j 1 -T $((SECS > 3 ? SECS - 2 : 1)) \
    -f "$WORK/lookup.sql" -l --log-prefix="$WORK/bys_$label" postgres >/dev/null 2>&1)
  wait "$heavy"
  percentiles "$WORK/bys_$label"
}

echo
echo "Protection: 64 clients of 'limited' run a full scan of pgbench_accounts (scale 10) while 2 bystander"
echo "clients run an indexed lookup, ${SECS} s:"
cg_psql -c "SELECT config_guard.drop_role_limit('limited')" >/dev/null
read -r free_p50 free_p99 free_n <<<"$(protect nolimit)"
cg_psql -c "SELECT config_guard.set_role_limit('limited', 2, 100, '60s')" >/dev/null
read -r lim_p50 lim_p99 lim_n <<<"$(protect limit2)"
printf '%-28s %10s %10s %12s\n' "limited role's limit" "p50 ms" "p99 ms" transactions
printf '%-28s %10s %10s %12s\n' "none" "$free_p50" "$free_p99" "$free_n"
printf '%-28s %10s %10s %12s\n' "2" "$lim_p50" "$lim_p99" "$lim_n"
printf '%-28s %10.3f\n' "bystander p99, limit 2 / none" "$(calc "$lim_p99 / $free_p99")"
cg_psql -c "SELECT role, max_active, admitted, ever_queued, round(avg_wait_ms::numeric) AS avg_wait_ms FROM config_guard.role_stats"
