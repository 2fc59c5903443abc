// Per-role admission control: a limited role runs at most max_active
// top-level statements at once, cluster-wide; the rest wait in a FIFO queue
// of at most max_queued, for at most queue_timeout.
//
// A statement is charged to the role the session authenticated as, which
// neither SET ROLE nor SET SESSION AUTHORIZATION changes. Every top-level
// statement that does work takes a slot for its planning and its execution,
// utility statements included (a function's inner queries take none; COMMIT,
// SET, SHOW and the rest of transaction and session control take none). Limits live in shared memory,
// persist in $PGDATA/config_guard_role_limits (read whenever shared memory
// is initialised: at start and after a crash) and in the config_guard.role_limits table.
#pragma once

#include "pg.hpp"

namespace config_guard {

// The admission queue (admission_queue.hpp), role limits (role_limits.cpp),
// and the planner, executor and utility hooks and transaction callbacks that
// take and give back slots.
void InitAdmission();
void InitRoleLimits();

}  // namespace config_guard
