#!/usr/bin/env bash
# Keyset export benchmark: first vs last page, full walk vs one ordered query,
# and OFFSET paging of the same rows, on a temporary cluster. VERSIONS off
# (the default) pages the sources themselves; on, the pages come from the
# tenant's export version.
#
#   test/bench/export_bench.sh [ROWS] [ROUNDS] [VERSIONS]    (defaults: 1000000 3 off)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
ROWS=${1:-1000000}
ROUNDS=${2:-3}
VERSIONS=${3:-off}

cg_temp_cluster bench "shared_buffers = '1GB'" "max_wal_size = '4GB'"
cp "$CG_ROOT/test/bench/export_bench.sql" "$WORK/" && chmod 644 "$WORK/export_bench.sql"

cg_log "export benchmark: tenant of $ROWS rows, page size 1000, $ROUNDS rounds, export versions $VERSIONS"
cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres -c 'CREATE EXTENSION config_guard' \
  -v rows="$ROWS" -v rounds="$ROUNDS" -v versions="$VERSIONS" -f "$WORK/export_bench.sql"
