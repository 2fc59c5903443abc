// At most config_guard.max_rebuilds_per_config builders of a config run at
// once, cluster-wide: a counting semaphore in the config's shared entry.
#pragma once

#include "pg.hpp"

namespace config_guard {

void InitBuilderSlots();

// A slot to run one builder of the config; waits up to timeout_ms. The slot
// is returned by ReleaseBuilderSlot() (the innermost one held); the abort of
// the subtransaction that took it, or the end of the transaction, returns it
// otherwise.
bool AcquireBuilderSlot(int32 config_id, int timeout_ms);
void ReleaseBuilderSlot();

}  // namespace config_guard
