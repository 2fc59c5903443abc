// config_guard's background work: a launcher (one per cluster, started after
// recovery, so never on a standby) that every config_guard.cleanup_interval
// starts one cleanup worker per database in turn. A worker connects to its
// database and, where config_guard is installed and up to date, prunes the
// marks of tenants without a document that are older than
// config_guard.cleanup_age (config_guard.prune_invalidations(), whose fence
// keeps it correct against rebuilds in flight). Both show in pg_stat_activity.
#pragma once

#include "pg.hpp"

namespace config_guard {

void InitBackground();

}  // namespace config_guard
