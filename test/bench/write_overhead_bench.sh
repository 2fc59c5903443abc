#!/usr/bin/env bash
# What the invalidation triggers cost a single-row UPDATE by primary key, in
# throughput (pgbench -M prepared), against the same table without a config,
# in the same run:
#   - churn: 1,000 tenants, every document stored first: after its first
#     write a tenant's document is stale, and the writes that follow until its
#     next rebuild are covered (no mark);
#   - first writes: 1,000,000 tenants: almost every write is its tenant's
#     first since a rebuild, and appends its mark.
# Beside them, a table with a do-nothing C statement trigger with transition
# tables: what any such trigger costs, config_guard or not.
# Each round runs every table once, in an order that rotates between rounds;
# the figure is the median of the rounds' ratios (and the ratio of the means).
# trigger_cost_bench.sh counts the same in instructions, deterministically.
#
#   test/bench/write_overhead_bench.sh [SECONDS_PER_RUN] [CLIENTS] [ROUNDS]   (defaults: 10 4 7)
set -euo pipefail
source "$(dirname "$0")/../lib/common.sh"
SECS=${1:-10}
CLIENTS=${2:-4}
ROUNDS=${3:-7}

cg_temp_cluster write_overhead "shared_buffers = '1GB'" "max_wal_size = '4GB'"
cg_psql >/dev/null <<'SQL'
SET client_min_messages = error;
CREATE EXTENSION config_guard;
CREATE FUNCTION build(tenant int) RETURNS jsonb LANGUAGE sql AS $$ SELECT '{}'::jsonb $$;
CREATE TABLE plain_1k (tenant_id int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant_id, id));
INSERT INTO plain_1k SELECT g, 1, 0 FROM generate_series(1, 1000) g;
CREATE TABLE noop_1k (LIKE plain_1k INCLUDING ALL);
INSERT INTO noop_1k SELECT * FROM plain_1k;
-- config_guard's trigger function named for a config that does not exist does nothing
CREATE TRIGGER config_guard_999999_update AFTER UPDATE ON noop_1k REFERENCING OLD TABLE AS o NEW TABLE AS n
  FOR EACH STATEMENT EXECUTE FUNCTION config_guard.invalidation_trigger('999999', 'tenant_id');
CREATE TABLE churn_1k (LIKE plain_1k INCLUDING ALL);
INSERT INTO churn_1k SELECT * FROM plain_1k;
SELECT config_guard.define('churn', 'build(int)', ARRAY['churn_1k']::regclass[]);
SELECT count(config_guard.get('churn', g)) FROM generate_series(1, 1000) g;
CREATE TABLE plain_1m (LIKE plain_1k INCLUDING ALL);
INSERT INTO plain_1m SELECT g, 1, 0 FROM generate_series(1, 1000000) g;
CREATE TABLE first_1m (LIKE plain_1k INCLUDING ALL);
INSERT INTO first_1m SELECT * FROM plain_1m;
SELECT config_guard.define('first', 'build(int)', ARRAY['first_1m']::regclass[]);
VACUUM ANALYZE;
CHECKPOINT;
SQL

tables=(plain_1k noop_1k churn_1k plain_1m first_1m)
for t in "${tables[@]}"; do
  tenants=$([ "${t#*_}" = 1m ] && echo 1000000 || echo 1000)
  printf '\\set t random(1, %d)\nUPDATE %s SET v = v + 1 WHERE tenant_id = :t AND id = 1;\n' "$tenants" "$t" >"$WORK/$t.sql"
done
chmod 644 "$WORK"/*.sql
tps() {
  cg_as_postgres pgbench -n -M prepared -h "$WORK" -p "$PORT" -c "$CLIENTS" -j 2 -T "$SECS" -f "$WORK/$1.sql" postgres \
    2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p'
}

declare -A sum ratios
for t in "${tables[@]}"; do sum[$t]=0; done
for round in $(seq 1 "$ROUNDS"); do
  declare -A got=()
  n=${#tables[@]}
  for i in $(seq 0 $((n - 1))); do
    t=${tables[$(((i + round) % n))]}
    got[$t]=$(tps "$t")
    sum[$t]=$(calc "${sum[$t]} + ${got[$t]}")
  done
  for t in noop_1k churn_1k; do ratios[$t]="${ratios[$t]:-} $(calc "${got[$t]} / ${got[plain_1k]}")"; done
  ratios[first_1m]="${ratios[first_1m]:-} $(calc "${got[first_1m]} / ${got[plain_1m]}")"
  cg_log "round $round: $(for t in "${tables[@]}"; do printf '%s %.0f  ' "$t" "${got[$t]}"; done)"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "Single-row UPDATE by primary key, pgbench -M prepared, $CLIENTS clients, $SECS s per run, $ROUNDS rounds (order rotating):"
printf '%-52s %10s %10s %8s %8s\n' table mean_tps plain_tps median mean
row() {  # row LABEL TABLE PLAIN
  local mean plain
  mean=$(calc "${sum[$2]} / $ROUNDS")
  plain=$(calc "${sum[$3]} / $ROUNDS")
  # shellcheck disable=SC2086
  printf '%-52s %10.0f %10.0f %8.3f %8.3f\n' "$1" "$mean" "$plain" "$(median ${ratios[$2]})" "$(calc "$mean / $plain")"
}
row "do-nothing trigger with transition tables (1,000)" noop_1k plain_1k
row "config source, churn (1,000 tenants)" churn_1k plain_1k
row "config source, first writes (1,000,000 tenants)" first_1m plain_1m
marks=$(cg_psql -At -c "SELECT count(*) FROM config_guard.invalidations i JOIN config_guard.configs c USING (config_id) WHERE c.name = 'churn'")
echo "marks of the churn config left: $marks (1,000 tenants)"
