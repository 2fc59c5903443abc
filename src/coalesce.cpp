#include "core/hash.hpp"  // first: core headers precede postgres.h
#include "coalesce.hpp"

#include "subtransaction.hpp"

extern "C" {
#include "storage/proc.h"
}

namespace config_guard {
namespace {

// Distinguishes config_guard's advisory locks from pg_advisory_lock's (1, 2).
constexpr uint16 kLockClass = 3;
constexpr std::uint64_t kLockSeed = 0x72656275696C6473ULL;    // "rebuilds"
constexpr std::uint64_t kExportSeed = 0x6578706F72747321ULL;  // "exports!"

struct TimedWait {
  const LOCKTAG* tag;
  int timeout_ms;
};

// lock_timeout bounds the wait (the caller restores it, error or not).
void WaitInShareMode(void* arg) {
  auto* wait = static_cast<TimedWait*>(arg);
  LockTimeout = wait->timeout_ms;
  LockAcquire(wait->tag, ShareLock, false, false);
  LockRelease(wait->tag, ShareLock, false);
}

LOCKTAG TenantLock(int32 config_id, std::uint64_t tenant_hash, std::uint64_t seed) {
  // The tag has room for 64 bits besides the database and the class: a hash
  // of the config and the tenant's full 64-bit hash, so that two tenants share
  // a lock only if 64-bit hashes collide.
  struct {
    std::uint64_t tenant_hash;
    std::int32_t config_id;
    std::int32_t zero;
  } key = {tenant_hash, config_id, 0};
  const std::uint64_t h = core::Hash64(&key, sizeof key, seed);
  LOCKTAG tag;
  SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, static_cast<uint32>(h >> 32), static_cast<uint32>(h), kLockClass);
  return tag;
}

}  // namespace

LOCKTAG RebuildLock(int32 config_id, std::uint64_t tenant_hash) {
  return TenantLock(config_id, tenant_hash, kLockSeed);
}

LOCKTAG ExportLock(int32 config_id, std::uint64_t tenant_hash) {
  return TenantLock(config_id, tenant_hash, kExportSeed);
}

bool TryLead(const LOCKTAG& tag) { return LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL; }

void StopLeading(const LOCKTAG& tag) { LockRelease(&tag, ExclusiveLock, false); }

bool WaitForLeader(const LOCKTAG& tag, int timeout_ms, bool deadlock_ends_wait) {
  if (timeout_ms <= 0) {
    if (LockAcquire(&tag, ShareLock, false, true) == LOCKACQUIRE_NOT_AVAIL) return false;
    LockRelease(&tag, ShareLock, false);
    return true;
  }

  // The lock timeout's error is caught in a subtransaction, which also cleans
  // up the lock-wait state.
  const int saved_timeout = LockTimeout;
  TimedWait wait = {&tag, timeout_ms};
  ErrorData* error = RunInSubtransaction(WaitInShareMode, &wait);
  LockTimeout = saved_timeout;
  if (error != nullptr && error->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE &&
      !(deadlock_ends_wait && error->sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED))
    ReThrowError(error);
  return error == nullptr;
}

}  // namespace config_guard
