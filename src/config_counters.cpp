// Statistics of each config, in its shared entry: event counts are atomics
// bumped without any lock on the hit path; build times and the rate alarm sit
// under the entry's spinlock. A reference that went out of date while a
// count was made only misplaces that count: nothing here needs the
// generation check.
//
// They survive a clean restart: the postmaster writes them to
// $PGDATA/config_guard_stats when it shuts down and reads them back when it
// next sets up shared memory, then removes the file, so that a crash (which
// writes nothing) starts from zero rather than from an older copy.
#include "config_entries.hpp"  // first: it includes the core headers

#include "gucs.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/ipc.h"
}

namespace config_guard {

static_assert(static_cast<int>(Counter::kWastedRefresh) + 1 == kCounterKinds, "one atomic per Counter");

namespace {

constexpr const char* kStatsFile = "config_guard_stats";
constexpr uint32 kStatsMagic = 0xC06A5701;
constexpr uint32 kStatsVersion = 2;  // 2: background builds, wasted refreshes (0.5)

struct SavedCounters {
  ConfigSlotKey key;
  uint64 events[kCounterKinds];
  uint64 builder_runs;
  double total_build_ms;
  double max_build_ms;
  TimestampTz stats_reset;
};

shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

// At a clean shutdown of the postmaster (code 0): every slot's statistics.
void SaveStatistics(int code, Datum) {
  if (code != 0) return;
  const char* tmp = psprintf("%s.tmp", kStatsFile);
  FILE* f = AllocateFile(tmp, PG_BINARY_W);
  bool ok = f != nullptr;
  int32 n = 0;
  for (int i = 0; i < ConfigEntryCount(); ++i) n += ConfigEntryAt(i)->in_use ? 1 : 0;
  ok = ok && fwrite(&kStatsMagic, sizeof kStatsMagic, 1, f) == 1 &&
       fwrite(&kStatsVersion, sizeof kStatsVersion, 1, f) == 1 && fwrite(&n, sizeof n, 1, f) == 1;
  for (int i = 0; ok && i < ConfigEntryCount(); ++i) {
    ConfigEntry* e = ConfigEntryAt(i);
    if (!e->in_use) continue;
    SavedCounters saved = {};
    saved.key = e->key;
    for (int k = 0; k < kCounterKinds; ++k) saved.events[k] = pg_atomic_read_u64(&e->events[k]);
    saved.builder_runs = e->builder_runs;
    saved.total_build_ms = e->total_build_ms;
    saved.max_build_ms = e->max_build_ms;
    saved.stats_reset = e->stats_reset;
    ok = fwrite(&saved, sizeof saved, 1, f) == 1;
  }
  if (f != nullptr && FreeFile(f) != 0) ok = false;
  if (ok) ok = durable_rename(tmp, kStatsFile, LOG) == 0;
  if (!ok) {
    ereport(LOG, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", kStatsFile)));
    unlink(tmp);
  }
}

void LoadStatistics() {
  FILE* f = AllocateFile(kStatsFile, PG_BINARY_R);
  if (f == nullptr) return;
  uint32 magic = 0;
  uint32 version = 0;
  int32 n = 0;
  bool ok = fread(&magic, sizeof magic, 1, f) == 1 && fread(&version, sizeof version, 1, f) == 1 &&
            fread(&n, sizeof n, 1, f) == 1 && magic == kStatsMagic && version == kStatsVersion && n >= 0;
  for (int32 i = 0; ok && i < n; ++i) {
    SavedCounters saved;
    if (fread(&saved, sizeof saved, 1, f) != 1) {
      ok = false;
      break;
    }
    ConfigEntry* e = RestoreConfigEntry(saved.key);
    if (e == nullptr) continue;  // a smaller table now: the rest start from zero
    for (int k = 0; k < kCounterKinds; ++k) pg_atomic_write_u64(&e->events[k], saved.events[k]);
    e->builder_runs = saved.builder_runs;
    e->total_build_ms = saved.total_build_ms;
    e->max_build_ms = saved.max_build_ms;
    e->stats_reset = saved.stats_reset;
  }
  FreeFile(f);
  if (!ok) ereport(LOG, (errmsg("config_guard: \"%s\" is damaged; statistics start from zero", kStatsFile)));
  unlink(kStatsFile);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  // Only the postmaster, once shared memory is fresh: at start and after a
  // crash (when the file is gone already).
  if (IsUnderPostmaster) return;
  LoadStatistics();
  on_shmem_exit(SaveStatistics, 0);
}

}  // namespace

void InitConfigCounters() {
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

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
    c.background_builds = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kBackgroundBuild)]);
    c.wasted_refreshes = pg_atomic_read_u64(&e->events[static_cast<int>(Counter::kWastedRefresh)]);
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
