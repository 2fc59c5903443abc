#!/usr/bin/env bash
# The demo command (`make demo`): replays the incident on a temporary cluster,
# without and with config_guard (test/replay/replay.py says how), prints the
# progress, both phases' table and their ratios, writes summary.json and plots
# login latency, failed logins and the rebuild traffic over time.
#
#   bash test/replay/replay.sh           the full run (about 6 minutes), into doc/replay
#   bash test/replay/replay.sh --short   about a minute, checks that config_guard protected
#                                        login (part of make test), into a temporary directory
#
# Settings (environment): REPLAY_TENANTS, REPLAY_LARGEST (rows of the largest
# tenant), REPLAY_OUT; anything else replay.py takes goes in REPLAY_ARGS
# (for instance REPLAY_ARGS="--instances 8 --duration 200"). Stops its server
# and every client when done or interrupted.
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
SHORT=0
[ "${1:-}" = --short ] && SHORT=1
if [ $SHORT = 1 ]; then
  TENANTS=${REPLAY_TENANTS:-400}
  LARGEST=${REPLAY_LARGEST:-20000}
  ARGS="--baseline 3 --duration 33 --progress 5 --check ${REPLAY_ARGS:-}"
else
  TENANTS=${REPLAY_TENANTS:-2000}
  LARGEST=${REPLAY_LARGEST:-100000}
  ARGS="${REPLAY_ARGS:-}"
fi

cg_temp_cluster replay "shared_buffers = '256MB'" "max_connections = 100" "log_min_messages = warning" \
  "config_guard.background_build_rate = 100"
if [ $SHORT = 1 ]; then OUT=${REPLAY_OUT:-$WORK/out}; else OUT=${REPLAY_OUT:-$CG_ROOT/doc/replay}; fi
cp "$CG_ROOT/test/replay/schema.sql" "$WORK/" && chmod 644 "$WORK/schema.sql"

cg_log "creating $TENANTS tenants (log-normal sizes, the largest $LARGEST rows) and a login table"
cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres -c 'CREATE EXTENSION config_guard' \
  -v tenants="$TENANTS" -v largest="$LARGEST" -f "$WORK/schema.sql" >/dev/null

mkdir -p "$OUT"
rc=0
# shellcheck disable=SC2086
/usr/bin/python3 "$CG_ROOT/test/replay/replay.py" --host "$WORK" --port "$PORT" --out "$OUT" $ARGS || rc=$?
[ -f "$OUT/events.dat" ] || exit "$rc"

BUDGET_MS=1000
gnuplot <<GNUPLOT
set terminal pngcairo size 1200,900 font ",10" noenhanced
set output "$OUT/replay.png"
set multiplot layout 3,1 title "The incident replayed: $TENANTS tenants, 4 service instances start cold (Debian 12, 2 cores)"
set grid
set key top left
set xrange [0:*]
events = system("cut -d' ' -f1 $OUT/events.dat | head -1")
set arrow 1 from events, graph 0 to events, graph 1 nohead dt 2 lc rgb "#444444"
set label 1 "cache loss, restart, warm-up (with)" at events, graph 0.95 offset 0.5,0
set ylabel "login latency (ms, log)"
set logscale y
set yrange [0.1:3000]
plot "$OUT/login_without.dat" using 1:(\$3 == 1 ? \$2 : 1/0) with points pt 7 ps 0.25 lc rgb "#d62728" title "without: login", \
     "$OUT/login_without.dat" using 1:(\$3 == 0 ? $BUDGET_MS * 1.5 : 1/0) with points pt 2 ps 0.4 lc rgb "#8b0000" title "without: failed login", \
     "$OUT/login_with.dat" using 1:(\$3 == 1 ? \$2 : 1/0) with points pt 7 ps 0.25 lc rgb "#1f77b4" title "with config_guard: login", \
     "$OUT/login_with.dat" using 1:(\$3 == 0 ? $BUDGET_MS * 1.5 : 1/0) with points pt 2 ps 0.4 lc rgb "#000080" title "with: failed login"
unset logscale y
set yrange [0:*]
set ylabel "failed logins per second"
plot "$OUT/series_without.dat" using 1:2 with steps lw 2 lc rgb "#d62728" title "without", \
     "$OUT/series_with.dat" using 1:2 with steps lw 2 lc rgb "#1f77b4" title "with config_guard"
set ylabel "rebuild requests per second"
set y2label "service connections"
set y2tics
set xlabel "seconds into the phase"
plot "$OUT/series_without.dat" using 1:3 with lines lc rgb "#d62728" title "without: requests/s", \
     "$OUT/series_without.dat" using 1:4 with lines dt 3 lc rgb "#d62728" title "without: retries/s", \
     "$OUT/series_with.dat" using 1:3 with lines lc rgb "#1f77b4" title "with: requests/s", \
     "$OUT/series_without.dat" using 1:5 axes x1y2 with lines lw 2 lc rgb "#ff7f0e" title "without: connections", \
     "$OUT/series_with.dat" using 1:5 axes x1y2 with lines lw 2 lc rgb "#2ca02c" title "with: connections"
unset multiplot
GNUPLOT
cg_log "summary: $OUT/summary.json, table: $OUT/replay_table.txt, plot: $OUT/replay.png"
exit $rc
