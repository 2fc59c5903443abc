# Shared by the test, demo and benchmark scripts: install what is missing,
# build and install the extension, and run throwaway clusters as the postgres
# user (the server refuses to run as root).
#
# Usage: source test/lib/common.sh

CG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The major the suites run on: the host's 15, or another in a chroot of the
# test matrix (test/matrix/matrix.sh), which also leaves the fuzzer out
# (CG_FUZZ=0: src/core is the same code on every major).
CG_PG_MAJOR=${CG_PG_MAJOR:-15}
CG_PG_BIN=/usr/lib/postgresql/$CG_PG_MAJOR/bin
CG_PACKAGES=(postgresql-$CG_PG_MAJOR postgresql-server-dev-$CG_PG_MAJOR postgresql-client-$CG_PG_MAJOR
             make g++ cmake libgtest-dev libboost-dev libpq-dev libipc-run-perl
             pgbouncer gnuplot-nox python3 python3-psycopg2 python3-psycopg prometheus-sql-exporter)
[ "${CG_FUZZ:-1}" = 1 ] && CG_PACKAGES+=(clang libclang-rt-14-dev)

cg_log() { printf '== %s\n' "$*" >&2; }

# Installs the Debian packages that are missing (needs root the first time).
cg_ensure_packages() {
  local missing=()
  for p in "${CG_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    return 1
  fi
  cg_log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# Builds with warnings as errors and installs into the server's directories.
cg_build_install() {
  cg_log "building and installing config_guard"
  make -C "$CG_ROOT" -s -j"$(nproc)" WERROR=1 PG_CONFIG="$CG_PG_BIN/pg_config" &&
    make -C "$CG_ROOT" -s install PG_CONFIG="$CG_PG_BIN/pg_config" >/dev/null
}

# Runs a command as the postgres user with the server binaries on PATH.
cg_as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- env PATH="$CG_PG_BIN:$PATH" "$@"
  else
    env PATH="$CG_PG_BIN:$PATH" "$@"
  fi
}

# A fresh work directory the postgres user owns.
cg_workdir() {
  local dir
  dir=$(mktemp -d "/tmp/config_guard_${1:-run}.XXXXXX")
  chmod 755 "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  echo "$dir"
}

# A free TCP port on 127.0.0.1.
cg_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# cg_cluster_start DIR PORT [extra postgresql.conf lines...]: initdb and start
# a cluster with config_guard preloaded, its socket in DIR.
cg_cluster_start() {
  local dir=$1 port=$2
  shift 2
  cg_as_postgres initdb -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  {
    echo "shared_preload_libraries = 'config_guard'"
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$dir'"
    echo "max_connections = 200"
    echo "fsync = off"
    echo "log_line_prefix = '%m [%p] %q%a '"
    for line in "$@"; do echo "$line"; done
  } >>"$dir/data/postgresql.conf"
  cg_as_postgres pg_ctl -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null
}

cg_cluster_stop() {
  local dir=$1
  [ -f "$dir/data/postmaster.pid" ] && cg_as_postgres pg_ctl -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1
  return 0
}

# Lines of the server log that show a backend crash or a PANIC.
cg_crashes_in_log() {
  grep -E "terminated by signal|PANIC:|was terminated by|server process .* exited with exit code [^0]" "$1" || true
}

# cg_temp_cluster NAME [extra postgresql.conf lines...]: installs what is
# missing, builds and installs config_guard, then starts a throwaway cluster
# (globals WORK and PORT) that is stopped when the script exits or is
# interrupted.
cg_temp_cluster() {
  local name=$1
  shift
  cg_ensure_packages
  cg_build_install
  WORK=$(cg_workdir "$name")
  PORT=$(cg_free_port)
  trap 'cg_cluster_stop "$WORK"; cg_log "'"$name"' cluster stopped"' EXIT
  trap 'exit 130' INT TERM
  cg_cluster_start "$WORK" "$PORT" "$@"
}

# psql as postgres on the temporary cluster, stopping at the first error.
cg_psql() { cg_as_postgres psql -X -q -v ON_ERROR_STOP=1 -h "$WORK" -p "$PORT" -d postgres "$@"; }

# Arithmetic on decimals: calc "1.5 / 3".
calc() { awk "BEGIN { print $* }"; }
