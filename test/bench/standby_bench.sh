#!/usr/bin/env bash
# Builder runs per invalidation with readers on two hot standbys, with
# config_guard.standby_rebuild on and off (test/bench/standby_bench.pl, on
# clusters of the TAP framework, stopped when it ends).
#
#   test/bench/standby_bench.sh [ROUNDS] [READERS_PER_STANDBY]   (defaults: 5 16)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
cg_ensure_packages
cg_build_install
WORK=$(cg_workdir standbybench)
trap 'rm -rf "$WORK"' EXIT
cp "$CG_ROOT/test/bench/standby_bench.pl" "$WORK/" && chown -R postgres: "$WORK" 2>/dev/null || true
PGXS_DIR=$(dirname "$(dirname "$("$CG_PG_BIN/pg_config" --pgxs)")")
cd "$WORK"
cg_as_postgres env TESTDIR="$WORK" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
  perl -I "$PGXS_DIR/test/perl" "$WORK/standby_bench.pl" "${1:-5}" "${2:-16}" "$WORK/report.txt"
cat "$WORK/report.txt"
