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

namespace config_guard {

// Its transaction callback (it remembers the marks of the transaction).
void InitMarkAppend();

// `tenants`: `n` canonical tenant keys, nullptr for every tenant. The caller
// has counted the transaction as a mark writer of the config
// (NoteMarkWriter(), mark_writers.hpp).
// A trigger's marks of tenants are written when the transaction commits,
// unless another mark covers them then (mark_skip.hpp), or when it prepares.
void AppendMarkRows(int32 config_id, const char* const* tenants, int n);
// A build of this transaction stored the tenant's document, folding the
// transaction's marks of it (its writes are in the document): a trigger's
// mark of it waiting for the commit is not written unless a later write asks
// again, or the subtransaction of the store rolls back.
void FoldPendingMark(int32 config_id, const char* tenant);
// Whether a trigger's mark of the tenant waits for this transaction's commit
// (no store of this transaction folded it since): its stored document is
// stale to this transaction, as if the mark were in the table.
bool MarkPending(int32 config_id, const char* tenant);
// Writes the transaction's pending mark of the tenant now, if any: a reader
// of the tenant's generation (export walks and versions) counts it, as it
// counts the marks in the table.
// Returns whether it wrote one (not yet visible to the current command).
bool WritePendingMark(int32 config_id, const char* tenant);
// Written now, covered or not (invalidate()).
void AppendMarkRowsNow(int32 config_id, const char* const* tenants, int n);

// Whether this transaction may have written a mark of the tenant or of the
// whole config (true when in doubt: past the remembered marks). A rebuild
// folding the transaction's own marks does not make it forget them.
bool TransactionMayHaveMarked(int32 config_id, const char* tenant);

}  // namespace config_guard
