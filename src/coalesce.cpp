#include "coalesce.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/proc.h"
#include "utils/resowner.h"
}

namespace config_guard {
namespace {

// Distinguishes config_guard's advisory locks from pg_advisory_lock's (1, 2).
constexpr uint16 kLockClass = 3;

}  // namespace

LOCKTAG RebuildLock(int32 config_id, std::uint64_t tenant_hash) {
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(config_id),
                       static_cast<uint32>(tenant_hash ^ (tenant_hash >> 32)), kLockClass);
  return tag;
}

bool TryLead(const LOCKTAG& tag) { return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL; }

void StopLeading(const LOCKTAG& tag) { LockRelease(&tag, ExclusiveLock, false); }

bool WaitForLeader(const LOCKTAG& tag, int timeout_ms) {
  if (timeout_ms <= 0) {
    if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL) return false;
    LockRelease(&tag, ShareLock, false);
    return true;
  }

  // lock_timeout bounds the wait; its error is caught in a subtransaction,
  // which also cleans up the lock-wait state.
  MemoryContext caller_cxt = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  const int saved_timeout = LockTimeout;
  bool acquired = false;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(caller_cxt);
  PG_TRY();
  {
    LockTimeout = timeout_ms;
    LockAcquire(&tag, ShareLock, false, false);
    LockTimeout = saved_timeout;
    LockRelease(&tag, ShareLock, false);
    ReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(caller_cxt);
    CurrentResourceOwner = caller_owner;
    acquired = true;
  }
  PG_CATCH();
  {
    LockTimeout = saved_timeout;
    MemoryContextSwitchTo(caller_cxt);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    MemoryContextSwitchTo(caller_cxt);
    CurrentResourceOwner = caller_owner;
    if (error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE) ReThrowError(error);
  }
  PG_END_TRY();
  return acquired;
}

}  // namespace config_guard
