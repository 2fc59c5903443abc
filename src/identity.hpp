// Crossing a privilege boundary, the way REFRESH MATERIALIZED VIEW runs a
// view's query as its owner: switch to the role with
// SECURITY_RESTRICTED_OPERATION (no SET ROLE, no temporary objects, nothing
// that outlives the operation), open a GUC nest level, pin the settings the
// code must not take from the caller, and on the way out roll the nest level
// back, so that no setting made inside survives, then restore the caller.
//
// If the code inside raises, the (sub)transaction abort does the same
// restoring; Leave() is for the way out without an error.
#pragma once

#include "pg.hpp"

namespace config_guard {

// Functions and operators from pg_catalog only; pg_temp last, where it never
// shadows a table.
constexpr const char* kSafeSearchPath = "pg_catalog, pg_temp";

class IdentityScope {
 public:
  // With `forget_session_settings`, everything the caller SET in its session
  // (custom app.* settings holding request context among them) reads as the
  // server's and the role's defaults inside: code of another role can
  // neither see it nor depend on it. Restored with the rest on the way out.
  explicit IdentityScope(Oid role, bool forget_session_settings = false);
  // The way a foreign key check reads the referenced table: as its owner,
  // whose non-forced row-level security does not apply.
  static IdentityScope AsTableOwner(Oid owner);
  // Pins a setting for the scope (GUC_ACTION_SAVE at the scope's level).
  void Pin(const char* name, const char* value);
  // Pins what decides how values become text (TimeZone UTC, DateStyle ISO,
  // bytea_output hex ...) and what could make the code fail for one caller
  // only (row_security, lock_timeout ...): the list is in identity.cpp.
  void PinDeterministicOutput();
  void Leave();

 private:
  IdentityScope(Oid role, int extra_context);
  Oid saved_user_;
  int saved_context_;
  int guc_level_;
};

}  // namespace config_guard
