#!/usr/bin/env bash
# config_guard beside pg_ivm on PostgreSQL 18, in the Debian unstable chroot
# of the test matrix (test/matrix/matrix.sh makes it; postgresql-18-pg-ivm is
# added here). The same table three times, 1,000 tenants of 100 rows: plain,
# under a pg_ivm IMMV of each tenant's sum and count, and as the source of a
# config_guard config whose document is the same aggregate. Measured side by
# side in one run:
#   - single-row UPDATE throughput (pgbench, interleaved rounds), each against
#     the plain table;
#   - a 100,000-row UPDATE (median of 3), each against the plain table;
#   - reading one tenant's aggregate: the IMMV's row against get().
#
#   test/bench/ivm_bench.sh [SECONDS_PER_RUN] [CLIENTS]   (defaults: 10 4)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-10}
CLIENTS=${2:-4}
ROOT=${CG_CHROOT_DIR:-/var/cache/config_guard}
DIR="$ROOT/sid"
[ -x "$DIR/usr/lib/postgresql/18/bin/pg_config" ] || bash test/matrix/matrix.sh 18 >/dev/null || true
[ -x "$DIR/usr/lib/postgresql/18/bin/pg_config" ] || { echo "no PostgreSQL 18 chroot in $DIR" >&2; exit 1; }
mountpoint -q "$DIR/proc" || mount -t proc proc "$DIR/proc"
mkdir -p "$DIR/dev/shm"; mountpoint -q "$DIR/dev/shm" || mount -t tmpfs tmpfs "$DIR/dev/shm"
rm -rf "$DIR/bench" && mkdir -p "$DIR/bench" && git ls-files -z | xargs -0 tar -c | tar -x -C "$DIR/bench"
chroot "$DIR" bash -s "$SECS" "$CLIENTS" <<'INNER'
set -euo pipefail
SECS=$1; CLIENTS=$2
export DEBIAN_FRONTEND=noninteractive
dpkg -s postgresql-18-pg-ivm >/dev/null 2>&1 || apt-get install -y -qq postgresql-18-pg-ivm >/dev/null
cd /bench && make -s -j2 PG_CONFIG=/usr/lib/postgresql/18/bin/pg_config >/dev/null &&
  make -s install PG_CONFIG=/usr/lib/postgresql/18/bin/pg_config >/dev/null
B=/usr/lib/postgresql/18/bin; D=/tmp/ivmbench
rm -rf $D && mkdir -p $D && chown postgres: $D
su postgres -c "$B/initdb -D $D/data -A trust -U postgres -E UTF8 --locale=C --no-sync" >/dev/null
cat >>$D/data/postgresql.conf <<CONF
shared_preload_libraries = 'config_guard, pg_ivm'
port = 55480
unix_socket_directories = '$D'
fsync = off
shared_buffers = '512MB'
max_wal_size = '4GB'
config_guard.refresh_ahead = off
config_guard.rebuild_alert_per_minute = 100000
CONF
su postgres -c "$B/pg_ctl -D $D/data -l $D/server.log -w start" >/dev/null
trap 'su postgres -c "$B/pg_ctl -D $D/data -m fast -w stop" >/dev/null' EXIT
P() { su postgres -c "$B/psql -X -q -At -h $D -p 55480 -d postgres $*"; }
P <<'SQL'
CREATE EXTENSION config_guard;
CREATE EXTENSION pg_ivm;
CREATE TABLE t_plain (tenant int NOT NULL, id int NOT NULL, v int NOT NULL, PRIMARY KEY (tenant, id));
INSERT INTO t_plain SELECT t, i, 0 FROM generate_series(1, 1000) t, generate_series(1, 100) i;
CREATE TABLE t_ivm (LIKE t_plain INCLUDING ALL);
INSERT INTO t_ivm SELECT * FROM t_plain;
CREATE TABLE t_cg (LIKE t_plain INCLUDING ALL);
INSERT INTO t_cg SELECT * FROM t_plain;
SELECT pgivm.create_immv('agg_ivm', 'SELECT tenant, sum(v) AS total, count(*) AS n FROM t_ivm GROUP BY tenant');
CREATE INDEX ON agg_ivm (tenant);
CREATE FUNCTION build_agg(t int) RETURNS jsonb LANGUAGE sql STABLE AS
  $$ SELECT jsonb_build_object('total', sum(v), 'n', count(*)) FROM t_cg WHERE tenant = t $$;
SELECT config_guard.define('agg', 'build_agg(int)', ARRAY['t_cg']::regclass[], 'tenant');
VACUUM ANALYZE;
SQL
for name in plain ivm cg; do
  printf '\\set t random(1, 1000)\n\\set i random(1, 100)\nUPDATE t_%s SET v = v + 1 WHERE tenant = :t AND id = :i;\n' $name >$D/update_$name.sql
done
printf '\\set t random(1, 1000)\nSELECT total, n FROM agg_ivm WHERE tenant = :t;\n' >$D/read_ivm.sql
printf '\\set t random(1, 1000)\nSELECT config_guard.get(%s, :t);\n' "'agg'" >$D/read_cg.sql
chown postgres: $D/*.sql
tps() { su postgres -c "$B/pgbench -n -M prepared -h $D -p 55480 -c $CLIENTS -j 2 -T $SECS -f $1 postgres" 2>/dev/null |
  sed -n 's/^tps = \([0-9.]*\).*/\1/p'; }
calc() { awk "BEGIN { printf \"%.2f\", $1 }"; }
# warm every tenant's document, so that reads are hits and writes invalidate stored documents
P -c "\"SELECT count(config_guard.get('agg', t)) FROM generate_series(1, 1000) t\"" >/dev/null

echo "PostgreSQL $(P -c "'SHOW server_version'"), pg_ivm $(P -c "\"SELECT extversion FROM pg_extension WHERE extname = 'pg_ivm'\""), config_guard $(P -c "\"SELECT extversion FROM pg_extension WHERE extname = 'config_guard'\"")"
echo "single-row UPDATE, $CLIENTS clients, $SECS s per run, 3 interleaved rounds (tps):"
p=0; i=0; c=0
for round in 1 2 3; do
  p=$(calc "$p + $(tps $D/update_plain.sql)"); i=$(calc "$i + $(tps $D/update_ivm.sql)"); c=$(calc "$c + $(tps $D/update_cg.sql)")
done
printf '  %-14s %10.0f\n  %-14s %10.0f  ratio %s\n  %-14s %10.0f  ratio %s\n' plain "$(calc "$p / 3")" \
  pg_ivm "$(calc "$i / 3")" "$(calc "$i / $p")" config_guard "$(calc "$c / 3")" "$(calc "$c / $p")"

echo "100,000-row UPDATE (3 interleaved rounds, median, ms):"
bulk() {  # bulk TABLE -> ms
  P -c "\"EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) UPDATE $1 SET v = v + 1\"" | sed -n 's/^Execution Time: \([0-9.]*\) ms/\1/p'
}
: >$D/bulk_plain; : >$D/bulk_ivm; : >$D/bulk_cg
for round in 1 2 3; do
  P -c "'CHECKPOINT'"; bulk t_plain >>$D/bulk_plain
  P -c "'CHECKPOINT'"; bulk t_ivm >>$D/bulk_ivm
  P -c "'CHECKPOINT'"; bulk t_cg >>$D/bulk_cg
done
median() { sort -n "$1" | sed -n 2p; }
bp=$(median $D/bulk_plain); bi=$(median $D/bulk_ivm); bc=$(median $D/bulk_cg)
printf '  %-14s %10.1f\n  %-14s %10.1f  ratio %s\n  %-14s %10.1f  ratio %s\n' plain "$bp" pg_ivm "$bi" "$(calc "$bi / $bp")" \
  config_guard "$bc" "$(calc "$bc / $bp")"

echo "reading one tenant's aggregate, $CLIENTS clients, $SECS s per run, 2 interleaved rounds (tps):"
P -c "\"SELECT count(config_guard.get('agg', t)) FROM generate_series(1, 1000) t\"" >/dev/null
ri=0; rc=0
for round in 1 2; do ri=$(calc "$ri + $(tps $D/read_ivm.sql)"); rc=$(calc "$rc + $(tps $D/read_cg.sql)"); done
printf '  %-14s %10.0f\n  %-14s %10.0f  ratio %s\n' "pg_ivm row" "$(calc "$ri / 2")" "config_guard get()" "$(calc "$rc / 2")" \
  "$(calc "$rc / $ri")"
INNER
