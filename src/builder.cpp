#include "builder.hpp"

#include "privileged.hpp"
#include "subtransaction.hpp"

extern "C" {
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

SPIPlanPtr BuilderPlan(ConfigDef* def) {
  if (def->builder_plan != nullptr) return def->builder_plan;
  // The snapshot and the time are taken before the builder runs: whatever the
  // builder then reads is at least that new.
  char* sql = psprintf(
      "SELECT pg_catalog.pg_current_snapshot(), pg_catalog.clock_timestamp(), %s($1::%s)",
      quote_qualified_identifier(get_namespace_name(get_func_namespace(def->builder)), get_func_name(def->builder)),
      format_type_be_qualified(def->tenant_type));
  Oid types[1] = {def->tenant_type};
  SPIPlanPtr plan = SPI_prepare(sql, 1, types);
  if (plan == nullptr) elog(ERROR, "preparing the builder call failed: %s", SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  def->builder_plan = plan;
  return plan;
}

// The builder runs with the owner's rights, so the caller's search_path must
// not decide what its unqualified names mean: it sees pg_catalog, its own
// schema, then pg_temp (which never shadows functions or operators).
void PinSearchPath(const ConfigDef& def) {
  const char* path =
      psprintf("pg_catalog, %s, pg_temp", quote_identifier(get_namespace_name(get_func_namespace(def.builder))));
  set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

void CallBuilder(ConfigDef* def, const TenantKey& tenant, BuildResult* result, MemoryContext result_cxt) {
  const TimestampTz start = GetCurrentTimestamp();
  const int guc_level = NewGUCNestLevel();
  PinSearchPath(*def);
  Datum values[1] = {tenant.value};
  ExecutePlanAs(def->owner, BuilderPlan(def), values, nullptr, false, SPI_OK_SELECT);
  AtEOXact_GUC(true, guc_level);
  HeapTuple row = SPI_tuptable->vals[0];
  TupleDesc desc = SPI_tuptable->tupdesc;
  bool isnull = false;
  const Datum document = SPI_getbinval(row, desc, 3, &isnull);
  if (isnull)
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("builder of config \"%s\" returned NULL for tenant %s", def->name, tenant.text)));
  MemoryContext old = MemoryContextSwitchTo(result_cxt);
  result->snapshot = datumCopy(SPI_getbinval(row, desc, 1, &isnull), false, -1);
  result->built_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 2, &isnull));
  result->document = datumCopy(document, false, -1);
  MemoryContextSwitchTo(old);
  result->build_ms = static_cast<double>(GetCurrentTimestamp() - start) / 1000.0;
}

bool IsInterruption(int sqlerrcode) {
  return sqlerrcode == ERRCODE_QUERY_CANCELED || sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
         sqlerrcode == ERRCODE_CRASH_SHUTDOWN || sqlerrcode == ERRCODE_CANNOT_CONNECT_NOW;
}

struct BuildCall {
  ConfigDef* def;
  const TenantKey* tenant;
  BuildResult* result;
  MemoryContext result_cxt;
};

void CallBuilderThunk(void* arg) {
  auto* call = static_cast<BuildCall*>(arg);
  CallBuilder(call->def, *call->tenant, call->result, call->result_cxt);
}

}  // namespace

BuildResult RunBuilder(ConfigDef* def, const TenantKey& tenant) {
  BuildResult result = {};
  BuildCall call = {def, &tenant, &result, CurrentMemoryContext};
  ErrorData* error = RunInSubtransaction(CallBuilderThunk, &call);
  if (error != nullptr && IsInterruption(error->sqlerrcode)) ReThrowError(error);
  result.ok = error == nullptr;
  result.error = error;
  return result;
}

}  // namespace config_guard
