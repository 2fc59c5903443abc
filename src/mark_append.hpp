// Appending invalidation marks: one row of config_guard.invalidations per
// tenant (a NULL tenant: every tenant of the config), stamped with the
// writing transaction's id and start time, at most one per tenant and
// transaction.
//
// The rows go straight into the table and its indexes, as the logical
// replication apply worker writes a row: no SPI, no planner, no change of
// identity or settings, and nothing a role can define runs (the table has no
// triggers, no defaults evaluated, no constraints but NOT NULL). A mark the
// transaction already holds (visible to itself, not deleted by a rebuild it
// ran) is found by one probe of the unique index and not written again; a
// mark the transaction never wrote needs no probe.
#pragma once

#include "pg.hpp"

extern "C" {
#include "utils/array.h"
}

namespace config_guard {

// Its transaction callback (it remembers the marks of the transaction).
void InitMarkAppend();

// `tenants`: text[] of canonical tenant keys, a NULL element for every tenant.
void AppendMarkRows(int32 config_id, ArrayType* tenants);

// Whether this transaction may have written a mark of the tenant or of the
// whole config (true when in doubt: past the remembered marks). A rebuild
// folding the transaction's own marks does not make it forget them.
bool TransactionMayHaveMarked(int32 config_id, const char* tenant);

}  // namespace config_guard
