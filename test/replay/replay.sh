#!/usr/bin/env bash
# The demo command (`make demo`): replays the incident on a temporary cluster,
# without and with config_guard, prints both phases' tables and their ratios,
# and plots login latency over time.
#
# Settings (environment): REPLAY_TENANTS (2000), REPLAY_LARGEST (100000 rows),
# REPLAY_CLIENTS (32), REPLAY_DURATION (60 s per phase), REPLAY_LIMIT (4),
# REPLAY_OUT (doc/replay). Stops its server when done or interrupted.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
TENANTS=${REPLAY_TENANTS:-2000}
LARGEST=${REPLAY_LARGEST:-100000}
CLIENTS=${REPLAY_CLIENTS:-32}
DURATION=${REPLAY_DURATION:-60}
LIMIT=${REPLAY_LIMIT:-4}
OUT=${REPLAY_OUT:-$CG_ROOT/doc/replay}

cg_temp_cluster replay "shared_buffers = '256MB'" "max_connections = 100" "log_min_messages = warning"
cp "$CG_ROOT/test/replay/schema.sql" "$WORK/" && chmod 644 "$WORK/schema.sql"

cg_log "creating $TENANTS tenants (log-normal sizes, the largest $LARGEST rows) and a login table"
cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres -c 'CREATE EXTENSION config_guard' \
  -v tenants="$TENANTS" -v largest="$LARGEST" -f "$WORK/schema.sql" >/dev/null

mkdir -p "$OUT"
/usr/bin/python3 "$CG_ROOT/test/replay/replay.py" --host "$WORK" --port "$PORT" --clients "$CLIENTS" \
  --duration "$DURATION" --limit "$LIMIT" --out "$OUT"

gnuplot <<GNUPLOT
set terminal pngcairo size 1100,520 font ",10" noenhanced
set output "$OUT/login_latency.png"
set title "Login latency during a configuration rebuild storm ($CLIENTS rebuild clients, $TENANTS tenants)"
set xlabel "seconds into the phase"
set ylabel "login query latency (ms, log scale)"
set logscale y
set grid
set key top right
plot "$OUT/login_without.dat" using 1:2 with points pt 7 ps 0.3 lc rgb "#d62728" title "without config_guard", \
     "$OUT/login_with.dat" using 1:2 with points pt 7 ps 0.3 lc rgb "#1f77b4" title "with config_guard"
GNUPLOT
cg_log "plot: $OUT/login_latency.png"
cg_log "table: $OUT/replay_table.txt"
