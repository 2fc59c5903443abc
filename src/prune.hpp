// Pruning the marks of tenants that have no document, without a race.
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

}  // namespace config_guard
