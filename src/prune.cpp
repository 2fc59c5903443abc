#include "prune.hpp"

#include "gateway.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "storage/lock.h"
}

namespace config_guard {
namespace {

// Distinguishes the fence from pg_advisory_lock's classes (1, 2) and the
// rebuild locks (3).
constexpr uint16 kFenceClass = 4;

LOCKTAG PruneFence() {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, 0, 0, kFenceClass);
  return tag;
}

}  // namespace

void HoldPruneFence() {
  const LOCKTAG tag = PruneFence();
  LockAcquire(&tag, ShareLock, false, false);
}

CG_FUNCTION(config_guard_prune_invalidations) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("older_than must not be null")));
  RequireCurrentSchema();
  const LOCKTAG tag = PruneFence();
  LockAcquire(&tag, ExclusiveLock, false, false);
  SPI_connect();
  Datum values[1] = {PG_GETARG_DATUM(0)};
  RunAsOwner(Stmt::kPrune, values);
  bool isnull = false;
  const int64 pruned = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
  SPI_finish();
  PG_RETURN_INT64(pruned);
}

}  // namespace config_guard
