// The cluster's secret key for export cursors.
//
// Kept in $PGDATA/config_guard_cursor.key (mode 0600, created on the first
// start with pg_strong_random) and read by the postmaster at preload, so
// every backend inherits it and no SQL function returns it. A base backup
// copies it, so a standby or a promoted node accepts the primary's cursors.
#pragma once

#include "core/siphash.hpp"
#include "pg.hpp"

namespace config_guard {

const std::uint8_t (&CursorSecret())[core::kSipKeySize];

}  // namespace config_guard
