// Pruning the marks of tenants that have no document, and compacting the
// marks of every tenant, without a race.
//
// prune_invalidations() deletes the marks of tenants without a stored
// document. A rebuild that took its snapshot before such a mark's writer
// committed, and stores after the prune, would store a document that misses
// the write, with the mark that says so gone: stale for good. So every
// rebuild that stores holds the database's prune fence in share mode from
// before its snapshot to the end of its transaction, and a prune takes it in
// exclusive mode without queueing (it retries for a few seconds, then skips
// this run): it runs only when no rebuild is in flight, and the rebuilds that
// start meanwhile wait for its short DELETE. Rebuilds never wait for each
// other here.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Held until the end of the transaction.
void HoldPruneFence();

// Deletes at most `batch` marks of each kind (0: all) older than
// `older_than` (an interval Datum) under the fence; -1 when rebuilds kept
// the fence for a few seconds. The caller is in a transaction, with the
// extension's objects current.
int64 PruneMarks(Datum older_than, int64 batch);
// Whether PruneMarks() would find anything (without the fence): the
// background cleanup takes the fence only then.
bool AnythingToPrune(Datum older_than);

// Compaction, under the same fence: the committed marks of at most `groups`
// tenants that their stored documents have not seen (all of them where there
// is none) become one mark each, the newest, standing for them all. Returns
// how many rows went, -1 when rebuilds kept the fence. A stale document
// stays stale; a rebuild that starts after it sees every write.
int64 CompactMarks(int64 groups);
bool AnythingToCompact();

}  // namespace config_guard
