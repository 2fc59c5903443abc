#include "privileged.hpp"

#include "registry.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "nodes/parsenodes.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

struct SavedUser {
  Oid user;
  int context;
};

SavedUser SwitchTo(Oid role) {
  SavedUser saved;
  GetUserIdAndSecContext(&saved.user, &saved.context);
  SetUserIdAndSecContext(role, saved.context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
  return saved;
}

void Restore(const SavedUser& saved) { SetUserIdAndSecContext(saved.user, saved.context); }

void Check(int rc, int expected) {
  if (rc != expected) elog(ERROR, "config_guard internal query failed: %s", SPI_result_code_string(rc));
}

}  // namespace

namespace {
Oid cached_owner = InvalidOid;
}

void ForgetExtensionOwner() { cached_owner = InvalidOid; }

Oid ExtensionOwner() {
  if (OidIsValid(cached_owner)) return cached_owner;
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(ConfigsTable()));
  if (!HeapTupleIsValid(tuple)) elog(ERROR, "cache lookup failed for config_guard.configs");
  const Oid owner = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relowner;
  ReleaseSysCache(tuple);
  cached_owner = owner;
  return owner;
}

void ExecuteAs(Oid role, const char* sql, int nargs, Oid* types, Datum* values, const char* nulls, int expected) {
  const SavedUser saved = SwitchTo(role);
  const int rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);
  Restore(saved);
  Check(rc, expected);
}

void ExecutePlanAs(Oid role, SPIPlanPtr plan, Datum* values, const char* nulls, bool read_only, int expected) {
  const SavedUser saved = SwitchTo(role);
  const int rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
  Restore(saved);
  Check(rc, expected);
}

SPIPlanPtr KeptPlan(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types) {
  if (*slot == nullptr) {
    // Fixed queries on our own indexed tables: the generic plan is the right
    // one, and planning on every call would cost more than the query.
    SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    *slot = plan;
  }
  return *slot;
}

}  // namespace config_guard
