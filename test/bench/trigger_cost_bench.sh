#!/usr/bin/env bash
# What the invalidation triggers cost a single-row UPDATE, in instructions:
# a single-user backend under callgrind runs the same prepared UPDATE on a
# plain table, on one with a do-nothing C statement trigger with transition
# tables (what any such trigger costs), and on a config's source. The figure
# is the difference between a run of 2,500 updates and one of 500, each after
# every tenant was written once, divided by 2,000: deterministic, unlike
# throughput on a shared machine (write_overhead_bench.sh measures that).
#
#   test/bench/trigger_cost_bench.sh [TENANTS]   (default: 1000)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
TENANTS=${1:-1000}
CG_PACKAGES+=(valgrind)

cg_temp_cluster trigger_cost
cg_psql -v tenants="$TENANTS" >/dev/null <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION config_guard;
CREATE TABLE plain (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO plain SELECT g, 1, 0 FROM generate_series(1, :tenants) g;
CREATE TABLE noop (LIKE plain INCLUDING ALL);
INSERT INTO noop SELECT * FROM plain;
CREATE TABLE source (LIKE plain INCLUDING ALL);
INSERT INTO source SELECT * FROM plain;
-- config_guard's trigger function named for a config that does not exist does nothing
CREATE TRIGGER config_guard_999999_update AFTER UPDATE ON noop REFERENCING OLD TABLE AS o NEW TABLE AS n
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger('999999', 'tenant_id');
CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
SELECT config_guard.define('cfg', 'build(int)', ARRAY['source']::regclass[]);
SELECT count(config_guard.get('cfg', g)) FROM generate_series(1, :tenants) g;
VACUUM FREEZE ANALYZE plain, noop, source;
SQL
cg_cluster_stop "$WORK"
cp -a "$WORK/data" "$WORK/pristine"

statements() {  # statements TABLE N: every tenant once, then N at random
  awk -v table="$1" -v n="$2" -v tenants="$TENANTS" 'BEGIN {
    srand(7)
    printf "PREPARE u(int) AS UPDATE %s SET v = v + 1 WHERE tenant_id = $1 AND id = 1\n", table
    for (t = 1; t <= tenants; t++) printf "EXECUTE u(%d)\n", t
    for (i = 0; i < n; i++) printf "EXECUTE u(%d)\n", int(rand() * tenants) + 1 }'
}
instructions() {  # instructions TABLE N -> instructions of the whole run
  rm -rf "$WORK/data"
  cp -a "$WORK/pristine" "$WORK/data"
  statements "$1" "$2" >"$WORK/statements.sql"
  cg_as_postgres valgrind --tool=callgrind --callgrind-out-file="$WORK/callgrind.out" \
    postgres --single -D "$WORK/data" -c config_guard.refresh_ahead=off postgres <"$WORK/statements.sql" >/dev/null 2>&1
  sed -n 's/^summary: \([0-9]*\).*/\1/p;s/^totals: \([0-9]*\).*/\1/p' "$WORK/callgrind.out" | head -1
}

echo "Instructions per single-row UPDATE by primary key, $TENANTS tenants, each written once before (callgrind, single-user backend):"
printf '%-44s %14s %10s\n' table instructions vs_plain
base=0
for table in plain noop source; do
  per=$(( ($(instructions "$table" 2500) - $(instructions "$table" 500)) / 2000 ))
  [ "$table" = plain ] && base=$per
  case $table in
    plain) label="plain table" ;;
    noop) label="do-nothing C trigger with transition tables" ;;
    source) label="a config's source" ;;
  esac
  printf '%-44s %14d %10s\n' "$label" "$per" "+$((per - base))"
done
