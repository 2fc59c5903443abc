// Which tenants were read recently: a fixed table in shared memory of the
// last time get() was asked for a (database, config, tenant), indexed by
// their hash (lossy: two tenants sharing a slot both look read, which costs
// at most a needless background build). Refresh-ahead rebuilds only the
// stale documents read within config_guard.refresh_ahead_window; the
// background builds themselves are not reads.
#pragma once

#include "pg.hpp"

namespace config_guard {

void InitRecentReads();

// get() was asked for the tenant (a store to shared memory at most once a
// second per slot).
void NoteRead(int32 config_id, uint64 tenant_hash);

// Whether the tenant was read at or after `since`.
bool ReadSince(int32 config_id, uint64 tenant_hash, TimestampTz since);

}  // namespace config_guard
