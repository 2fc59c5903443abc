// Per-role admission control: a limited role runs at most max_active
// top-level statements at once, cluster-wide; the rest wait in a FIFO queue
// of at most max_queued, for at most queue_timeout.
//
// A statement is charged to the role the session authenticated as, which
// neither SET ROLE nor SET SESSION AUTHORIZATION changes. Only statements that
// run through the executor at the top level take a slot (a function's inner
// queries do not; COMMIT, SET, SHOW do not). Limits live in shared memory,
// persist in $PGDATA/config_guard_role_limits (read whenever shared memory
// is initialised: at start and after a crash) and in the config_guard.role_limits table.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Its shared memory (requested and initialised by its own hooks), executor and
// utility hooks, and transaction callbacks.
void InitAdmission();

}  // namespace config_guard
