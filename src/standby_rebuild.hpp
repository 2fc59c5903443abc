// Rebuilds asked of the primary by a hot standby.
//
// A standby cannot store a document. Building a stale tenant there for every
// caller, on every standby, is the amplification config_guard exists to stop;
// so one session per standby and tenant (the tenant's rebuild lock, held on
// the standby) asks the primary for the tenant with config_guard.get(), over
// a libpq connection to the server primary_conninfo names (or
// config_guard.primary_conninfo). The primary coalesces the requests of every
// standby into one builder run and stores the document; the asking session
// then waits until the standby has replayed the primary's WAL up to the
// request's end and reads the document from its own tables, as do the
// sessions that waited for it. Everything is bounded by
// config_guard.rebuild_wait_timeout.
#pragma once

#include "registry.hpp"
#include "tenant.hpp"

extern "C" {
#include "datatype/timestamp.h"
}

namespace config_guard {

enum class PrimaryAnswer {
  kReplayed,     // the primary rebuilt (or had) the document, and it has been replayed here
  kUnavailable,  // no conninfo, standby_rebuild off, the primary refusing or failing (before the deadline)
  kTimedOut,     // no answer, connection or replay before the deadline: the primary is busy
};

// Asks the primary (or, cascading, the upstream standby, which asks its own)
// for the tenant and waits until this standby has replayed the result, until
// `deadline`. Interruptible; the connection is closed on every exit path.
PrimaryAnswer AskPrimaryToRebuild(const ConfigDef& def, const TenantKey& tenant, TimestampTz deadline);

}  // namespace config_guard
