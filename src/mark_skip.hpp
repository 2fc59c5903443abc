// Covered writes: one durable invalidation mark per invalidation, not one per
// write transaction.
//
// A trigger's marks of tenants wait for the transaction's commit
// (mark_append.hpp). There, a tenant whose stored document is already stale
// through a committed mark that no build has folded since is "covered": the
// transaction registers as a skipper of it until its commit is visible and
// writes no mark; any other mark is written. Why this never leaves a document
// stale (the pure rule is core/mark_cover.hpp):
//
// - A key is covered by a mark Y only if, since Y was written, no build of
//   the key's bucket started, ended or ran, and no bulk deletion of marks
//   (prune, compaction, undefine) did. So every stored document was built
//   from a snapshot taken before Y was written (Y is stale to it), Y is
//   still in the table, and a write that skips adds nothing a reader needs.
// - A build that will store what it reads (get(), warm(), background builds,
//   an export version, the first page of a walk that detects changes) fences
//   the bucket before taking its snapshot: covering ends, and the build waits
//   for the skippers registered before, whose commits are then in its
//   snapshot. While it runs nothing is covered, and at its end the bucket is
//   fenced again. A skipper exists only between PRE_COMMIT and the end of
//   its commit, so the wait is short; a build that still cannot fence within
//   a second does not store what it built.
// - Two-phase commit writes every deferred mark at PREPARE: shared memory
//   does not outlive a restart, prepared transactions do.
// - A crash loses the coverings (writes after the restart write their marks)
//   and the skippers in progress (which had not committed, or had: then
//   their writes are in every later snapshot, and the documents before were
//   stale through a mark in the table).
// - Standbys read the table only, where every stale document has a mark that
//   makes it so, as on the primary.
#pragma once

#include "pg.hpp"

extern "C" {
#include "utils/snapshot.h"
}

namespace config_guard {

// Its shared memory and transaction callback.
void InitMarkSkip();

// At PRE_COMMIT: whether the tenant's mark may go unwritten; if so the
// transaction is registered as a skipper until its commit is visible.
bool TrySkipMark(int32 config_id, const char* tenant);
// A durable mark of the tenant was written: at commit it covers the tenant if
// nothing fenced it since.
void NoteDurableMark(int32 config_id, const char* tenant);

// Fences the tenant's bucket before a snapshot whose reads will be stored;
// false if skippers registered before did not end within the wait.
bool FenceSkippers(int32 config_id, const char* tenant);
// Whether a covered write of the tenant may be missing from `snapshot`
// (taken before a fence).
bool CoveredWriteMayBeUnseen(int32 config_id, const char* tenant, Snapshot snapshot);
// Ends every covering until this transaction ends: before marks are deleted
// other than by a build's fold (prune, compaction, undefine).
void FenceAllCoverings();

}  // namespace config_guard
