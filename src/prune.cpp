#include "prune.hpp"
#include "mark_skip.hpp"
#include "pg_compat.hpp"

#include "gateway.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "pgstat.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

// Distinguishes the fence from pg_advisory_lock's classes (1, 2) and the
// rebuild locks (3).
constexpr uint16 kFenceClass = 4;
constexpr int kFenceAttempts = 50;
constexpr long kFenceRetryUs = 50 * 1000;  // 2.5 s in all
constexpr int64 kAllGroups = PG_INT64_MAX;
uint32 fence_event = 0;

LOCKTAG PruneFence() {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, kFenceClass);
  return tag;
}

}  // namespace

void HoldPruneFence() {
  // Waited for without the caller's lock_timeout: a prune holds the fence
  // for one short batch, and a reader's tight lock_timeout (meant for its
  // own statements) must not turn that into a failed get().
  const LOCKTAG tag = PruneFence();
  while (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL) {
    CHECK_FOR_INTERRUPTS();
    pgstat_report_wait_start(compat::WaitEvent(&fence_event, "ConfigGuardPruneFence"));
    pg_usleep(1000L);
    pgstat_report_wait_end();
  }
}

bool AnythingToPrune(Datum older_than) {
  SPI_connect();
  Datum values[1] = {older_than};
  const bool any = RunAsOwner(Stmt::kPrunable, values) > 0;
  SPI_finish();
  return any;
}

namespace {

// Runs `stmt` (which returns one count) with the fence held; -1 if rebuilds
// kept it. Taken without queueing: a prune waiting for a long rebuild
// transaction would make every other rebuild of the database queue behind
// it. It tries for a while, then leaves the work to its next run.
int64 UnderFence(Stmt stmt, Datum* values, const char* nulls) {
  const LOCKTAG tag = PruneFence();
  for (int attempt = 0; LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL; ++attempt) {
    if (attempt == kFenceAttempts) return -1;
    CHECK_FOR_INTERRUPTS();
    pgstat_report_wait_start(compat::WaitEvent(&fence_event, "ConfigGuardPruneFence"));
    pg_usleep(kFenceRetryUs);
    pgstat_report_wait_end();
  }
  // Rows another transaction holds are skipped (SKIP LOCKED); anything else
  // it could wait for here (a configs row an open undefine holds) waits a
  // second at most: with the fence held, every rebuild waits too.
  const int guc_level = NewGUCNestLevel();
  set_config_option("lock_timeout", "1s", PGC_SUSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
  SPI_connect();
  RunAsOwner(stmt, values, nulls);
  bool isnull = false;
  const int64 count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  SPI_finish();
  AtEOXact_GUC(true, guc_level);
  // Given back now, not at the end of the transaction: a rebuild that starts
  // from here takes its snapshot after this statement's, and so sees every
  // write whose mark it removed. (An error before this point releases it
  // with the transaction.)
  LockRelease(&tag, ExclusiveLock, false);
  return count;
}

}  // namespace

int64 PruneMarks(Datum older_than, int64 batch) {
  FenceAllCoverings();  // (mark_skip.hpp)
  Datum values[2] = {older_than, Int64GetDatum(batch)};
  const char nulls[2] = {' ', batch > 0 ? ' ' : 'n'};
  return UnderFence(Stmt::kPrune, values, nulls);
}

int64 CompactMarks(int64 groups) {
  FenceAllCoverings();
  Datum values[1] = {Int64GetDatum(groups)};
  return UnderFence(Stmt::kCompact, values, nullptr);
}

bool AnythingToCompact() {
  SPI_connect();
  const bool any = RunAsOwner(Stmt::kCompactable, nullptr) > 0;
  SPI_finish();
  return any;
}

CG_FUNCTION(config_guard_prune_invalidations) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("older_than must not be null")));
  RequireCurrentSchema();
  const int64 pruned = PruneMarks(PG_GETARG_DATUM(0), 0);
  const int64 compacted = pruned < 0 ? -1 : CompactMarks(kAllGroups);
  if (pruned < 0 || compacted < 0) {
    ereport(NOTICE, (errmsg("rebuilds are in flight: nothing pruned this time"),
                     errhint("Run config_guard.prune_invalidations() again later.")));
    PG_RETURN_INT64(0);
  }
  PG_RETURN_INT64(pruned + compacted);
}

}  // namespace config_guard
