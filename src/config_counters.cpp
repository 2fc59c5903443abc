// Statistics of each config, in its shared entry: event counts are atomics
// bumped without any lock on the hit path; build times and the rate alarm sit
// under the entry's spinlock. A reference that went out of date while a
// count was made only misplaces that count: nothing here needs the
// generation check.
#include "config_entries.hpp"  // first: it includes the core headers

#include "gucs.hpp"

namespace config_guard {

static_assert(static_cast<int>(Counter::kBuilderFailure) + 1 == kCounterKinds, "one atomic per Counter");

void CountEvent(int32 config_id, Counter counter) {
  ConfigEntry* e = FindConfigEntry(config_id).entry;
  pg_atomic_fetch_add_u64(&e->events[static_cast<int>(counter)], 1);
}

bool CountBuilderRun(int32 config_id, double build_ms, int64* runs_this_minute) {
  ConfigEntry* e = FindConfigEntry(config_id).entry;
  const int64 now_s = GetCurrentTimestamp() / USECS_PER_SEC;
  SpinLockAcquire(&e->mutex);
  e->builder_runs++;
  e->total_build_ms += build_ms;
  if (build_ms > e->max_build_ms) e->max_build_ms = build_ms;
  const bool alert = core::RecordRunAndCheck(&e->alarm, now_s, rebuild_alert_per_minute);
  *runs_this_minute = e->alarm.runs_in_window;
  SpinLockRelease(&e->mutex);
  return alert;
}

int SnapshotCounters(int32** config_ids, ConfigCounters** counters) {
  const int capacity = ConfigEntryCount();
  *config_ids = static_cast<int32*>(palloc(sizeof(int32) * capacity));
  *counters = static_cast<ConfigCounters*>(palloc(sizeof(ConfigCounters) * capacity));
  int count = 0;
  ForEachConfigEntry([&](ConfigEntry* e) {
    ConfigCounters& c = (*counters)[count];
    c.hits = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kHit)]);
    c.stale_hits = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kStaleHit)]);
    c.misses = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kMiss)]);
    c.coalesced_waits = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kCoalescedWait)]);
    c.wait_timeouts = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kWaitTimeout)]);
    c.backoff_refusals = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kBackoffRefusal)]);
    c.builder_failures = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kBuilderFailure)]);
    c.self_writes = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kSelfWrite)]);
    SpinLockAcquire(&e->mutex);
    c.builder_runs = e->builder_runs;
    c.total_build_ms = e->total_build_ms;
    c.max_build_ms = e->max_build_ms;
    c.stats_reset = e->stats_reset;
    SpinLockRelease(&e->mutex);
    (*config_ids)[count] = e->key.config_id;
    count++;
  });
  return count;
}

void ResetCounters() {
  const TimestampTz now = GetCurrentTimestamp();
  ForEachConfigEntry([&](ConfigEntry* e) { ResetEntryStatistics(e, now); });
}

}  // namespace config_guard
