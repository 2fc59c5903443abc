// The statistics of each config behind config_stats: event counts and build
// times, kept in the config's shared entry (config_entries.hpp). A config
// sharing the overflow entry has no statistics of its own.
#pragma once

#include "pg.hpp"

extern "C" {
#include "utils/timestamp.h"
}

namespace config_guard {

struct ConfigCounters {
  uint64 hits;
  uint64 stale_hits;
  uint64 misses;
  uint64 builder_runs;
  uint64 builder_failures;
  uint64 coalesced_waits;
  uint64 wait_timeouts;
  uint64 backoff_refusals;
  uint64 self_writes;
  uint64 background_builds;  // builds of the background worker (warm-up, refresh-ahead)
  uint64 wasted_refreshes;   // background builds replaced before anyone read them
  double total_build_ms;
  double max_build_ms;
  TimestampTz stats_reset;
};

enum class Counter {
  kHit,
  kStaleHit,
  kMiss,
  kCoalescedWait,
  kWaitTimeout,
  kBackoffRefusal,
  kSelfWrite,
  kBuilderFailure,
  kBackgroundBuild,
  kWastedRefresh
};
constexpr int kCounterKinds = 10;

// Its shared memory startup hook: statistics saved at the last clean
// shutdown come back (after InitConfigEntries()).
void InitConfigCounters();

// Counters of one config of the current database.
void CountEvent(int32 config_id, Counter counter);
// Records a builder run; returns true when the rebuild-rate warning is due.
bool CountBuilderRun(int32 config_id, double build_ms, int64* runs_this_minute);

// Copies of every config's counters in the current database (palloc'd).
int SnapshotCounters(int32** config_ids, ConfigCounters** counters);
void ResetCounters();

}  // namespace config_guard
