// Running a config's builder: as the config's owner (like a materialized
// view's refresh, so row-level security is evaluated for the owner), with a
// search_path of pg_catalog, the builder's schema and pg_temp, in a
// subtransaction so that a failure can be recorded and answered without
// aborting the caller. Query cancels and shutdowns are not builder failures:
// they propagate unchanged.
#pragma once

#include "tenant.hpp"

namespace config_guard {

struct BuildResult {
  bool ok;
  Datum document;  // jsonb, in the caller's memory context
  Datum snapshot;  // pg_snapshot the builder ran under
  TimestampTz built_at;
  double build_ms;
  ErrorData* error;  // when !ok: the builder's error, SQLSTATE, detail and all
};

BuildResult RunBuilder(ConfigDef* def, const TenantKey& tenant);

}  // namespace config_guard
