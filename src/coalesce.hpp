// One rebuild per invalidation: the session that finds a tenant stale takes
// the tenant's rebuild lock (a heavyweight advisory lock, class 3, on
// database, config id and tenant hash) in exclusive mode without waiting and
// becomes its leader until its transaction ends. Everyone else waits for the
// lock in share mode, bounded by config_guard.rebuild_wait_timeout, then looks
// again. Being a heavyweight lock, the wait shows in pg_locks and
// pg_stat_activity, is cancellable, takes part in deadlock detection, and
// ends whatever happens to the leader (error, cancel, terminate, crash).
#pragma once

#include <cstdint>

#include "pg.hpp"

extern "C" {
#include "storage/lock.h"
}

namespace config_guard {

LOCKTAG RebuildLock(int32 config_id, std::uint64_t tenant_hash);
// The same for making the tenant's export version (export_versions.hpp): a
// lock of its own, so that get() and export walks never wait for each other.
LOCKTAG ExportLock(int32 config_id, std::uint64_t tenant_hash);

// Becomes the leader if nobody is; the lock is held to the end of the transaction.
bool TryLead(const LOCKTAG& tag);
void StopLeading(const LOCKTAG& tag);

// Waits until the current leader's transaction has ended. False on timeout.
// With `deadlock_ends_wait`, a deadlock found while waiting ends the wait
// too (false) instead of failing the statement.
bool WaitForLeader(const LOCKTAG& tag, int timeout_ms, bool deadlock_ends_wait = false);

}  // namespace config_guard
