#!/usr/bin/env bash
# Keyset export benchmark: first vs last page, full walk vs one ordered query,
# and OFFSET paging of the same rows, on a temporary cluster.
#
#   test/bench/export_bench.sh [ROWS] [ROUNDS]    (defaults: 1000000 3)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
ROWS=${1:-1000000}
ROUNDS=${2:-3}

cg_temp_cluster bench "shared_buffers = '1GB'" "max_wal_size = '4GB'"
cp "$CG_ROOT/test/bench/export_bench.sql" "$WORK/" && chmod 644 "$WORK/export_bench.sql"

cg_log "export benchmark: tenant of $ROWS rows, page size 1000, $ROUNDS rounds"
cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres -c 'CREATE EXTENSION config_guard' \
  -v rows="$ROWS" -v rounds="$ROUNDS" -f "$WORK/export_bench.sql"
