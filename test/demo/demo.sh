#!/usr/bin/env bash
# The demo command (`make demo`): builds and installs config_guard, starts a
# temporary cluster, creates a multi-tenant configuration schema, defines a
# config over it and exports its largest tenant page by page, next to OFFSET
# paging of the same rows. Stops the cluster when done or interrupted.
#
#   DEMO_TENANTS (default 2000) small tenants; DEMO_LARGE (default 200000) rows of the large one
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
TENANTS=${DEMO_TENANTS:-2000}
LARGE=${DEMO_LARGE:-200000}

cg_temp_cluster demo "shared_buffers = '512MB'"
cp "$CG_ROOT"/test/demo/*.sql "$WORK/" && chmod 644 "$WORK"/*.sql
psql_demo() { cg_as_postgres psql -X -q -h "$WORK" -p "$PORT" -d postgres "$@"; }

cg_log "creating the sample database: $TENANTS tenants, and tenant 1 with $LARGE configuration rows"
psql_demo -c 'CREATE EXTENSION config_guard' -v tenants="$TENANTS" -v large="$LARGE" -f "$WORK/schema.sql" >/dev/null
psql_demo -c "SELECT config_name, source, first_page FROM (SELECT 'customer_config' AS config_name, *
              FROM config_guard.export_sql('customer_config')) q"
cg_log "exporting tenant 1 with export_page, and with OFFSET paging"
psql_demo -f "$WORK/export_pages.sql"
