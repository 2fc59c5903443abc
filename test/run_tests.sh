#!/usr/bin/env bash
# The test command (`make test`): installs what is missing, builds, runs the
# unit tests and the fuzzer, starts a temporary cluster with config_guard
# preloaded, runs the pg_regress, isolation and TAP suites against it, checks
# the server log for crashes, stops the cluster (also on failure), replays the
# incident in its short mode (test/replay/replay.sh --short, its own cluster)
# and prints "N passed, N failed". Exits non-zero on any failure.
#
# FUZZ_SECONDS (default 30) bounds the fuzzer run.
set -uo pipefail
source "$(dirname "$0")/lib/common.sh"

PASSED=0
FAILED=0
FAILURES=()
WORK=""

record() {  # record SUITE PASSED FAILED
  PASSED=$((PASSED + $2))
  FAILED=$((FAILED + $3))
  [ "$3" -gt 0 ] && FAILURES+=("$1: $3 failed")
  cg_log "$1: $2 passed, $3 failed"
}

cleanup() {
  [ -n "$WORK" ] && cg_cluster_stop "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cg_ensure_packages || { echo "0 passed, 1 failed"; exit 1; }
cd "$CG_ROOT"

if ! cg_build_install; then
  record build 0 1
  echo "$PASSED passed, $FAILED failed"
  exit 1
fi

# -- unit tests of src/core ----------------------------------------------------
cg_log "unit tests (CMake + GoogleTest)"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=Debug >build.log 2>&1 && cmake --build build -j"$(nproc)" >>build.log 2>&1; then
  (cd build && ctest --output-on-failure) | tee build/ctest.log
  total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' build/ctest.log)
  failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' build/ctest.log)
  record unit "$(( ${total:-0} - ${failed:-0} ))" "${failed:-1}"
else
  cat build.log
  record unit 0 1
fi

# -- fuzzer (on the host: CG_FUZZ=0 in the matrix's chroots) ------------------------
if [ "${CG_FUZZ:-1}" != 1 ]; then
  cg_log "fuzzer left out (CG_FUZZ=0)"
elif cg_log "fuzzing the cursor decoder for ${FUZZ_SECONDS:-30} s" && CXX=clang++ cmake -S . -B build-fuzz -DCONFIG_GUARD_FUZZ=ON >build-fuzz.log 2>&1 &&
   cmake --build build-fuzz --target fuzz_cursor_decode -j"$(nproc)" >>build-fuzz.log 2>&1; then
  corpus=$(mktemp -d)
  cp test/fuzz/corpus/* "$corpus"/ 2>/dev/null
  if ./build-fuzz/fuzz_cursor_decode -max_total_time="${FUZZ_SECONDS:-30}" -timeout=5 "$corpus" >build-fuzz/fuzz.log 2>&1; then
    tail -n 1 build-fuzz/fuzz.log
    record fuzz 1 0
  else
    tail -n 30 build-fuzz/fuzz.log
    record fuzz 0 1
  fi
  rm -rf "$corpus"
else
  cat build-fuzz.log
  record fuzz 0 1
fi

# -- server suites ----------------------------------------------------------------
WORK=$(cg_workdir test)
PORT=$(cg_free_port)
cp -r sql expected test README.md monitoring META.json config_guard.control config_guard--*.sql "$WORK"/
[ "$(id -u)" -eq 0 ] && chown -R postgres: "$WORK"
cg_log "starting a cluster in $WORK on port $PORT"
# (refresh-ahead off: background rebuilds would move the counters the suites assert)
if ! cg_cluster_start "$WORK" "$PORT" "config_guard.refresh_ahead = off"; then
  record cluster 0 1
  echo "$PASSED passed, $FAILED failed"
  exit 1
fi
export PGHOST=$WORK PGPORT=$PORT PGUSER=postgres
PGXS_DIR=$(dirname "$(dirname "$("$CG_PG_BIN/pg_config" --pgxs)")")

count_regress() {  # count_regress SUITE LOG   (15's "test x ... ok" and 16+'s "ok 1 - x" lines)
  local ok bad
  ok=$(grep -cE '\.\.\. ok|^ok [0-9]+ ' "$2")
  bad=$(grep -cE '\.\.\. FAILED|\.\.\. failed|^not ok [0-9]+ ' "$2")
  [ "$ok" -eq 0 ] && [ "$bad" -eq 0 ] && bad=1
  record "$1" "$ok" "$bad"
}

cg_log "pg_regress"
(cd "$WORK" && cg_as_postgres "$PGXS_DIR/test/regress/pg_regress" --inputdir=. --outputdir=regress_out \
   --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname=config_guard_regress --load-extension=config_guard \
   $(ls sql/*.sql | xargs -n1 basename | sed 's/\.sql$//' | sort)) | tee "$WORK/regress.log"
count_regress regress "$WORK/regress.log"
[ -f "$WORK/regress_out/regression.diffs" ] && cat "$WORK/regress_out/regression.diffs"

cg_log "isolation"
(cd "$WORK" && cg_as_postgres "$PGXS_DIR/test/isolation/pg_isolation_regress" --inputdir=test/isolation \
   --outputdir=isolation_out --host="$PGHOST" --port="$PGPORT" --user=postgres --dbname=config_guard_isolation \
   --load-extension=config_guard \
   $(ls test/isolation/specs/*.spec | xargs -n1 basename | sed 's/\.spec$//' | sort)) | tee "$WORK/isolation.log"
count_regress isolation "$WORK/isolation.log"
[ -f "$WORK/isolation_out/regression.diffs" ] && cat "$WORK/isolation_out/regression.diffs"

cg_log "TAP"
cg_as_postgres mkdir -p "$WORK/tap"
(cd "$WORK" && cg_as_postgres env TESTDIR="$WORK/tap" PG_REGRESS="$PGXS_DIR/test/regress/pg_regress" \
   prove -I "$PGXS_DIR/test/perl" -I test/perl test/t/*.pl) 2>&1 | tee "$WORK/tap.log"
tap_ok=$(grep -cE '^test/t/\S+\.pl \.+ ok' "$WORK/tap.log")
tap_total=$(ls test/t/*.pl | wc -l)
record tap "$tap_ok" "$((tap_total - tap_ok))"
if [ "$tap_ok" -ne "$tap_total" ]; then
  for f in "$WORK"/tap/tmp_check/log/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 40 "$f"; }; done
fi

# -- the shared server must not have crashed (TAP tests check their own nodes) ---------
cg_cluster_stop "$WORK"
crashes=$(cg_crashes_in_log "$WORK/server.log")
if [ -n "$crashes" ]; then
  echo "$crashes"
  record server-log 0 1
else
  record server-log 1 0
fi

# -- the mission: the incident's replay, short (its own cluster) ---------------------------
cg_log "replay (short): with config_guard no login fails, one build per invalidation"
if bash test/replay/replay.sh --short >"$WORK/replay.log" 2>&1; then
  grep -E "^CHECK" "$WORK/replay.log"
  record replay 1 0
else
  tail -n 40 "$WORK/replay.log"
  record replay 0 1
fi

[ ${#FAILURES[@]} -gt 0 ] && printf 'FAILED: %s\n' "${FAILURES[@]}"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
