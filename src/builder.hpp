// Running a config's builder the way REFRESH MATERIALIZED VIEW runs its query:
// called by its oid (nothing is resolved or planned as the caller), as the
// config's owner with SECURITY_RESTRICTED_OPERATION (row-level security is
// evaluated for the owner, and the builder cannot change the session's
// identity), inside a GUC nest level rolled back when it ends, on success or
// error, so that no setting it makes survives it. The settings that shape a
// document's text, how the builder's SQL reads, or whether it can run at all
// are pinned (search_path to pg_catalog, the builder's schema and pg_temp;
// TimeZone, DateStyle, IntervalStyle, extra_float_digits, bytea_output and
// the rest listed in builder.cpp), so a stored document never depends on
// which session built it, and no caller can make it fail for everyone.
//
// It runs in a subtransaction so that a failure can be recorded and answered
// without aborting the caller. Query cancels and shutdowns are not builder
// failures: they propagate unchanged, except a cancel by statement_timeout,
// which RunBuilder() returns (timed_out) so that it is recorded first.
#pragma once

#include "tenant.hpp"

namespace config_guard {

struct BuildResult {
  bool ok;
  // The builder was cut off by the caller's statement_timeout: it could not
  // finish within its callers' limits, which backs off like a failure (the
  // caller still gets its cancel, rethrown by the caller of RunBuilder).
  bool timed_out;
  // The builder wrote to a source of its own config (its marks for the
  // tenant it built are folded into the stored document, see StoreDocument).
  bool wrote_own_sources;
  Datum document;  // jsonb, in the caller's memory context
  Datum snapshot;  // pg_snapshot the builder ran under
  TimestampTz built_at;
  double build_ms;
  ErrorData* error;  // when !ok: the builder's error, SQLSTATE, detail and all
};

BuildResult RunBuilder(ConfigDef* def, const TenantKey& tenant);

// The config whose builder's own code is running in this backend right now
// (the innermost, when a builder calls get()), or nullptr: none, or
// config_guard's own statements are running inside it.
const ConfigDef* BuilderCodeRunning();

// The read check refused `relid` to the running builder: its build fails even
// if the builder catches the error.
void NoteRefusedRead(Oid relid);

// Called by the invalidation trigger for every statement that marks
// config_id: notes a write by a running builder to its own config's sources.
void NoteSourceWrite(int32 config_id);

}  // namespace config_guard
