// The document store: config_guard.documents and its freshness test against
// config_guard.invalidations.
//
// A document records the snapshot its builder ran under. It is fresh for a
// reader while every invalidation the reader can see was already visible in
// that snapshot. A rebuild that started before a writer committed therefore
// stays stale once the writer has committed (fencing), however late it
// finishes.
#pragma once

#include "registry.hpp"

extern "C" {
#include "storage/itemptr.h"
#include "utils/snapshot.h"
}

namespace config_guard {

// Which version of a stored document a reader saw (a rebuild makes another).
struct DocumentVersion {
  ItemPointerData tid;
  TransactionId xmin;
};

struct StoredDocument {
  bool found;
  bool fresh;
  Datum document;  // jsonb, copied into the caller's memory context
  int64 age_us;    // since the snapshot it was built from
  DocumentVersion version;
};

// Reads the tenant's document and judges its freshness under `snapshot`:
// the statement's for a first look, a later one after waiting for a rebuild.
// Index scans, no SPI: this is the hit path.
// With `known_fresh`, a document of that very version is taken as fresh
// without looking at the marks (the caller vouches for it, see cache.cpp).
StoredDocument LookupDocument(const ConfigDef& def, const char* tenant, Snapshot snapshot,
                              const DocumentVersion* known_fresh = nullptr);

// Stores a document built under `snapshot` (pg_snapshot) at `built_at`, and
// folds the invalidations that snapshot covered into its `compacted` count.
// Returns whether it replaced a document a background build stored (and
// when that one was built): a refresh nobody read, if no read came since.
bool StoreDocument(const ConfigDef& def, const char* tenant, Datum document, Datum snapshot, TimestampTz built_at,
                   double build_ms, bool background, TimestampTz* replaced_built_at);

// A number that changes whenever the tenant's configuration is invalidated
// (compaction keeps it unchanged): export_page's change detection.
int64 TenantGeneration(const ConfigDef& def, const char* tenant);
// Whether a mark of the tenant (not a config-wide one) is visible under
// `snapshot`: it is stale, and writes to it may be covered (mark_skip.hpp).
bool TenantHasMarks(const ConfigDef& def, const char* tenant, Snapshot snapshot);

// Removes a config's invalidation marks (undefine; its documents cascade).
void ForgetConfig(int32 config_id);

}  // namespace config_guard
