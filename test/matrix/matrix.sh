#!/usr/bin/env bash
# The test matrix: config_guard built with warnings as errors and every suite
# of the test command (test/run_tests.sh: unit, regress, isolation, TAP) run
# against PostgreSQL 17 (Debian 13) and 18 (Debian unstable), each in a chroot
# made from Debian's own archive with debootstrap, without touching the host;
# then its Debian package built, installed and checked (installcheck). The chroots are cached in
# CG_CHROOT_DIR (default /var/cache/config_guard) and made again when missing.
# Prints one line per major and suite; exits non-zero on any failure.
#
#   test/matrix/matrix.sh [MAJOR...]     (default: 15 17 18; 15, the host's, only for its package)
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=${CG_CHROOT_DIR:-/var/cache/config_guard}
MAJORS=${*:-15 17 18}
HOST_MAJOR=15  # its suites are `make test`'s, on the host: here only its package
failed=0

suite_of() { case $1 in 15) echo bookworm ;; 17) echo trixie ;; 18) echo sid ;; *) echo "no Debian suite for PostgreSQL $1" >&2; return 1 ;; esac; }

# What the test command needs on a major (test/lib/common.sh, less the
# fuzzer's clang) and what the package build needs.
chroot_packages() {
  echo "postgresql-$1 postgresql-server-dev-$1 postgresql-client-$1 g++ make cmake libgtest-dev libboost-dev" \
       "libpq-dev libipc-run-perl pgbouncer gnuplot-nox python3 python3-psycopg2 python3-psycopg" \
       "prometheus-sql-exporter build-essential debhelper dpkg-dev postgresql-server-dev-all"
}

ensure_chroot() {  # ensure_chroot MAJOR -> the chroot's directory, ready
  local major=$1 suite dir
  suite=$(suite_of "$major") || return 1
  dir="$ROOT/$suite"
  if [ ! -x "$dir/usr/lib/postgresql/$major/bin/pg_config" ]; then
    command -v debootstrap >/dev/null || apt-get install -y -qq debootstrap >/dev/null
    mkdir -p "$ROOT"
    [ -d "$dir/usr" ] || debootstrap --variant=minbase "$suite" "$dir" >"$ROOT/$suite.debootstrap.log" 2>&1 || return 1
  fi
  cp /etc/resolv.conf "$dir/etc/"
  mount_in "$dir"
  # What is missing (not merely unknown: also known to dpkg but not
  # installed), also in a chroot cached by an earlier version of this script.
  # shellcheck disable=SC2046
  if chroot "$dir" dpkg-query -W -f='${db:Status-Abbrev}\n' $(chroot_packages "$major") 2>&1 | grep -qv '^ii'; then
    chroot "$dir" bash -c "apt-get -o Acquire::Check-Valid-Until=false update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(chroot_packages "$major")" \
      >"$ROOT/$suite.install.log" 2>&1 || return 1
  fi
  echo "$dir"
}

mount_in() {
  mountpoint -q "$1/proc" || mount -t proc proc "$1/proc"
  mkdir -p "$1/dev/shm"
  mountpoint -q "$1/dev/shm" || mount -t tmpfs tmpfs "$1/dev/shm"
}

record() {  # record MAJOR SUITE OK
  if [ "$3" = ok ]; then echo "PostgreSQL $1: $2 ok"; else echo "PostgreSQL $1: $2 FAILED"; failed=$((failed + 1)); fi
}

for major in $MAJORS; do
  # (A chroot that cannot be made, Debian's archive out of reach, is said and
  # skipped: the host's suites are the gate; a build or suite that fails is not.)
  dir=$(ensure_chroot "$major") || { echo "PostgreSQL $major: chroot unavailable, skipped (see $ROOT)"; continue; }
  mount_in "$dir"
  rm -rf "$dir/build" && mkdir -p "$dir/build"
  git ls-files -z | xargs -0 tar -c | tar -x -C "$dir/build"
  if chroot "$dir" bash -c "cd /build && make -s -j2 WERROR=1 PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config &&
      make -s install PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config" >"$ROOT/build-$major.log" 2>&1; then
    record "$major" build ok
  else
    record "$major" build failed; tail -20 "$ROOT/build-$major.log"; continue
  fi
  if [ "$major" = "$HOST_MAJOR" ]; then
    echo "PostgreSQL $major: suites run on the host by make test"
  else
  # Every suite of `make test` (unit, regress, isolation, TAP with PgBouncer,
  # standbys, drivers and the exporter, the server log, the replay's short
  # check), run by the test command itself on this major; the fuzzer stays on
  # the host.
  chroot "$dir" bash -c "cd /build && CG_PG_MAJOR=$major CG_FUZZ=0 bash test/run_tests.sh" \
    >"$ROOT/suites-$major.log" 2>&1
  for suite in unit regress isolation tap server-log replay; do
    line=$(grep -E "^== $suite: [0-9]+ passed, [0-9]+ failed" "$ROOT/suites-$major.log" | tail -1)
    if [ -n "$line" ] && echo "$line" | grep -q ", 0 failed"; then
      record "$major" "$suite (${line#== $suite: })" ok
    else
      record "$major" "$suite ${line:+(${line#== $suite: })}" failed
    fi
  done
  grep -E "^test/t/.* (Dubious|Failed)|^not ok|^FAILED" "$ROOT/suites-$major.log" | sed "s/^/  [$major] /"
  fi

  # The Debian package (debian/, pg_buildext): built, then installed in place
  # of the build's own install (make uninstall), and the regression suite run
  # against the installed package on a cluster that preloads it.
  rm -rf "$dir/pkg" && mkdir -p "$dir/pkg/src" && git ls-files -z | xargs -0 tar -c | tar -x -C "$dir/pkg/src"
  if chroot "$dir" bash -c "export DEBIAN_FRONTEND=noninteractive
      cd /pkg/src && pg_buildext updatecontrol && dpkg-buildpackage -us -uc -b &&
      cd /build && make -s uninstall PG_CONFIG=/usr/lib/postgresql/$major/bin/pg_config &&
      test ! -e /usr/lib/postgresql/$major/lib/config_guard.so &&
      dpkg -i /pkg/postgresql-$major-config-guard_*_*.deb &&
      test -e /usr/lib/postgresql/$major/lib/config_guard.so" >"$ROOT/package-$major.log" 2>&1; then
    record "$major" package-build ok
    chroot "$dir" bash -s "$major" >"$ROOT/installcheck-$major.log" 2>&1 <<'INNER'
major=$1
B=/usr/lib/postgresql/$major/bin; PGXS=/usr/lib/postgresql/$major/lib/pgxs/src/test; D=/tmp/cgpkg$major
rm -rf $D && mkdir -p $D && cp -r /build/sql /build/expected $D/ && chown -R postgres: $D
su postgres -c "$B/initdb -D $D/data -A trust -U postgres -E UTF8 --locale=C --no-sync" >/dev/null
printf "shared_preload_libraries = 'config_guard'\nport = 555$major\nunix_socket_directories = '$D'\nfsync = off\nconfig_guard.refresh_ahead = off\n" >>$D/data/postgresql.conf
su postgres -c "$B/pg_ctl -D $D/data -l $D/server.log -w start" >/dev/null
trap 'su postgres -c "$B/pg_ctl -D $D/data -m fast -w stop" >/dev/null; dpkg -r postgresql-$major-config-guard >/dev/null' EXIT
cd $D
su postgres -c "$PGXS/regress/pg_regress --bindir=$B --inputdir=. --outputdir=$D/regress --host=$D --port=555$major \
  --user=postgres --dbname=cgpkg --load-extension=config_guard $(ls sql/*.sql | xargs -n1 basename | sed 's/\.sql$//' | sort | tr '\n' ' ')"
echo "installcheck rc=$?"
INNER
    if grep -q "^installcheck rc=0" "$ROOT/installcheck-$major.log"; then record "$major" installcheck ok; else
      record "$major" installcheck failed; grep -E "^not ok" "$ROOT/installcheck-$major.log" | sed "s/^/  [$major] /"; fi
  else
    record "$major" package-build failed; tail -15 "$ROOT/package-$major.log"
  fi
done
echo "matrix: $failed failed"
[ "$failed" -eq 0 ]
