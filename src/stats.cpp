// config_guard.config_counters() behind the config_stats view, and
// config_guard.reset_stats().
#include "module.hpp"
#include "config_counters.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/tuplestore.h"
}

namespace config_guard {

CG_FUNCTION(config_guard_config_counters) {
  RequirePreloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  int32* ids = nullptr;
  ConfigCounters* counters = nullptr;
  const int n = SnapshotCounters(&ids, &counters);
  for (int i = 0; i < n; ++i) {
    const ConfigCounters& c = counters[i];
    Datum values[15] = {Int32GetDatum(ids[i]),
                        Int64GetDatum(static_cast<int64>(c.hits)),
                        Int64GetDatum(static_cast<int64>(c.stale_hits)),
                        Int64GetDatum(static_cast<int64>(c.misses)),
                        Int64GetDatum(static_cast<int64>(c.builder_runs)),
                        Int64GetDatum(static_cast<int64>(c.builder_failures)),
                        Int64GetDatum(static_cast<int64>(c.coalesced_waits)),
                        Int64GetDatum(static_cast<int64>(c.wait_timeouts)),
                        Int64GetDatum(static_cast<int64>(c.backoff_refusals)),
                        Float8GetDatum(c.total_build_ms),
                        Float8GetDatum(c.max_build_ms),
                        TimestampTzGetDatum(c.stats_reset),
                        Int64GetDatum(static_cast<int64>(c.self_writes)),
                        Int64GetDatum(static_cast<int64>(c.background_builds)),
                        Int64GetDatum(static_cast<int64>(c.wasted_refreshes))};
    bool nulls[15] = {};
    nulls[10] = c.builder_runs == 0;
    // The shape the SQL declares: 0.4 added self_writes at the end, 0.5 the
    // background builds and wasted refreshes (an older declaration takes the
    // columns it has).
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

CG_FUNCTION(config_guard_reset_stats) {
  RequirePreloaded();
  ResetCounters();
  PG_RETURN_VOID();
}

}  // namespace config_guard
