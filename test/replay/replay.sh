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
  TENANTS=${REPLAY_TENANTS:-1000}
  LARGEST=${REPLAY_LARGEST:-50000}
  ARGS="${REPLAY_ARGS:-}"
fi

cg_temp_cluster replay "shared_buffers = '256MB'" "max_connections = 100" "log_min_messages = warning" \
  "config_guard.background_build_rate = 50"
# The run writes into the work directory; a full run that succeeds is then
# copied to doc/replay (a failed one leaves the last good figures alone).
OUT=$WORK/out
if [ $SHORT = 1 ]; then DEST=${REPLAY_OUT:-}; else DEST=${REPLAY_OUT:-$CG_ROOT/doc/replay}; fi
cp "$CG_ROOT/test/replay/schema.sql" "$WORK/" && chmod 644 "$WORK/schema.sql"

cg_log "creating $TENANTS tenants (log-normal sizes, the largest $LARGEST rows) and a login table"
cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres -c 'CREATE EXTENSION config_guard' \
  -v tenants="$TENANTS" -v largest="$LARGEST" -f "$WORK/schema.sql" >/dev/null

mkdir -p "$OUT"
rc=0
# shellcheck disable=SC2086
RESTART="bash -c 'source $CG_ROOT/test/lib/common.sh; cg_as_postgres pg_ctl -D $WORK/data -l $WORK/server.log -m fast -w restart >/dev/null'"
/usr/bin/python3 "$CG_ROOT/test/replay/replay.py" --host "$WORK" --port "$PORT" --out "$OUT" --restart-cmd "$RESTART" $ARGS ||
  rc=$?
[ -f "$OUT/events.dat" ] || exit "$rc"

MACHINE="$(. /etc/os-release && echo "$PRETTY_NAME"), $(nproc) cores, PostgreSQL $CG_PG_MAJOR"
gnuplot -e "out='$OUT'; tenants=$TENANTS; machine='$MACHINE'" "$CG_ROOT/test/replay/plot.gp"
if [ -n "$DEST" ] && [ "$rc" = 0 ]; then
  mkdir -p "$DEST"
  cp "$OUT"/summary.json "$OUT"/replay_table.txt "$OUT"/replay.png "$OUT"/*.dat "$DEST"/
  OUT=$DEST
fi
cg_log "summary: $OUT/summary.json, table: $OUT/replay_table.txt, plot: $OUT/replay.png"
crashes=$(cg_crashes_in_log "$WORK/server.log")
if [ -n "$crashes" ]; then
  echo "$crashes"
  echo "CHECK FAILED: the server crashed during the replay"
  rc=1
fi
exit $rc
