// Shared memory of config_guard.
//
// Locking contract. One LWLock (tranche "config_guard") protects the
// structure of both hash tables and every field of BackoffState:
//   - look-ups take it shared, inserts and deletes exclusive (re-checking
//     after the promotion);
//   - BackoffState fields are read under the shared lock, written under the
//     exclusive lock.
// Each CounterEntry has a spinlock guarding its counters, taken while holding
// the LWLock (shared is enough): lock order LWLock, then spinlock. Nothing
// under a spinlock can ereport; formatting happens after copying out.
//
// Everything here is advisory state: a crash resets it with the rest of shared
// memory, and correctness (freshness, one rebuild at a time) never depends on
// it.
#include "core/backoff.hpp"  // first: core headers precede postgres.h
#include "shmem.hpp"

#include <type_traits>

#include "gucs.hpp"
#include "module.hpp"

extern "C" {
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
}

namespace config_guard {
namespace {

struct CounterEntry {
  ConfigSlotKey key;
  slock_t mutex;
  ConfigCounters counters;
  core::RateAlarm alarm;
};

static_assert(std::is_standard_layout_v<BackoffState>, "shared memory holds plain structs");
static_assert(std::is_standard_layout_v<CounterEntry>, "shared memory holds plain structs");
static_assert(sizeof(TenantSlotKey) == 16, "hash keys have no padding");
static_assert(sizeof(ConfigSlotKey) == 8, "hash keys have no padding");

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

LWLock* lock = nullptr;
HTAB* backoff_table = nullptr;
HTAB* counter_table = nullptr;

constexpr const char* kTranche = "config_guard";

Size SharedSize() {
  return add_size(hash_estimate_size(max_tracked_tenants, sizeof(BackoffState)),
                  hash_estimate_size(max_tracked_configs, sizeof(CounterEntry)));
}

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche(kTranche, 1);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  HASHCTL info = {};
  info.keysize = sizeof(TenantSlotKey);
  info.entrysize = sizeof(BackoffState);
  backoff_table = ShmemInitHash("config_guard backoff", max_tracked_tenants, max_tracked_tenants, &info,
                                HASH_ELEM | HASH_BLOBS);
  info.keysize = sizeof(ConfigSlotKey);
  info.entrysize = sizeof(CounterEntry);
  counter_table = ShmemInitHash("config_guard counters", max_tracked_configs, max_tracked_configs, &info,
                                HASH_ELEM | HASH_BLOBS);
  LWLockRelease(AddinShmemInitLock);
}

// Makes room for one more backoff entry by dropping the one due soonest.
void EvictOneBackoff() {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, backoff_table);
  BackoffState* victim = nullptr;
  while (auto* s = static_cast<BackoffState*>(hash_seq_search(&it))) {
    if (victim == nullptr || s->next_attempt < victim->next_attempt) victim = s;
  }
  if (victim != nullptr) hash_search(backoff_table, &victim->key, HASH_REMOVE, nullptr);
}

// The counters of a config, created on first use; nullptr if the table is full.
CounterEntry* CounterEntryFor(int32 config_id) {
  ConfigSlotKey key = {MyDatabaseId, config_id};
  auto* e = static_cast<CounterEntry*>(hash_search(counter_table, &key, HASH_FIND, nullptr));
  if (e != nullptr) return e;
  LWLockRelease(lock);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  bool found = false;
  e = static_cast<CounterEntry*>(hash_search(counter_table, &key, HASH_ENTER_NULL, &found));
  if (e != nullptr && !found) {
    SpinLockInit(&e->mutex);
    e->counters = {};
    e->counters.stats_reset = GetCurrentTimestamp();
    e->alarm = {};
  }
  return e;
}

}  // namespace

void InitSharedMemory() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

bool ActiveBackoff(const TenantSlotKey& key, BackoffState* state) {
  LWLockAcquire(lock, LW_SHARED);
  auto* s = static_cast<BackoffState*>(hash_search(backoff_table, &key, HASH_FIND, nullptr));
  const bool active = s != nullptr && s->next_attempt > GetCurrentTimestamp();
  if (active) *state = *s;
  LWLockRelease(lock);
  return active;
}

BackoffState RecordBuilderFailure(const TenantSlotKey& key, const char* message) {
  LWLockAcquire(lock, LW_EXCLUSIVE);
  bool found = false;
  auto* s = static_cast<BackoffState*>(hash_search(backoff_table, &key, HASH_ENTER_NULL, &found));
  if (s == nullptr) {
    EvictOneBackoff();
    s = static_cast<BackoffState*>(hash_search(backoff_table, &key, HASH_ENTER, &found));
  }
  if (!found) s->failures = 0;
  s->failures++;
  const TimestampTz now = GetCurrentTimestamp();
  const int64 delay_ms = core::BackoffDelayMs(s->failures, backoff_base_ms, backoff_max_ms, pg_prng_double(&pg_global_prng_state));
  s->last_failure = now;
  s->next_attempt = TimestampTzPlusMilliseconds(now, delay_ms);
  strlcpy(s->last_error, message, kErrorTextSize);
  BackoffState copy = *s;
  LWLockRelease(lock);
  return copy;
}

void ClearBackoff(const TenantSlotKey& key) {
  LWLockAcquire(lock, LW_SHARED);
  const bool present = hash_search(backoff_table, &key, HASH_FIND, nullptr) != nullptr;
  LWLockRelease(lock);
  if (!present) return;
  LWLockAcquire(lock, LW_EXCLUSIVE);
  hash_search(backoff_table, &key, HASH_REMOVE, nullptr);
  LWLockRelease(lock);
}

void CountEvent(int32 config_id, Counter counter) {
  LWLockAcquire(lock, LW_SHARED);
  CounterEntry* e = CounterEntryFor(config_id);
  if (e != nullptr) {
    SpinLockAcquire(&e->mutex);
    ConfigCounters& c = e->counters;
    switch (counter) {
      case Counter::kHit: c.hits++; break;
      case Counter::kStaleHit: c.stale_hits++; break;
      case Counter::kMiss: c.misses++; break;
      case Counter::kCoalescedWait: c.coalesced_waits++; break;
      case Counter::kWaitTimeout: c.wait_timeouts++; break;
      case Counter::kBackoffRefusal: c.backoff_refusals++; break;
      case Counter::kBuilderFailure: c.builder_failures++; break;
    }
    SpinLockRelease(&e->mutex);
  }
  LWLockRelease(lock);
}

bool CountBuilderRun(int32 config_id, double build_ms, int64* runs_this_minute) {
  bool alert = false;
  LWLockAcquire(lock, LW_SHARED);
  CounterEntry* e = CounterEntryFor(config_id);
  if (e != nullptr) {
    const int64 now_s = GetCurrentTimestamp() / USECS_PER_SEC;
    SpinLockAcquire(&e->mutex);
    e->counters.builder_runs++;
    e->counters.total_build_ms += build_ms;
    if (build_ms > e->counters.max_build_ms) e->counters.max_build_ms = build_ms;
    alert = core::RecordRunAndCheck(&e->alarm, now_s, rebuild_alert_per_minute);
    *runs_this_minute = e->alarm.runs_in_window;
    SpinLockRelease(&e->mutex);
  }
  LWLockRelease(lock);
  return alert;
}

int SnapshotCounters(int32** config_ids, ConfigCounters** counters) {
  LWLockAcquire(lock, LW_SHARED);
  const long n = hash_get_num_entries(counter_table);
  *config_ids = static_cast<int32*>(palloc(sizeof(int32) * (n + 1)));
  *counters = static_cast<ConfigCounters*>(palloc(sizeof(ConfigCounters) * (n + 1)));
  int count = 0;
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, counter_table);
  while (auto* e = static_cast<CounterEntry*>(hash_seq_search(&it))) {
    if (e->key.dboid != MyDatabaseId || count > n) continue;
    SpinLockAcquire(&e->mutex);
    (*counters)[count] = e->counters;
    SpinLockRelease(&e->mutex);
    (*config_ids)[count] = e->key.config_id;
    count++;
  }
  LWLockRelease(lock);
  return count;
}

void ResetCounters() {
  const TimestampTz now = GetCurrentTimestamp();
  LWLockAcquire(lock, LW_SHARED);
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, counter_table);
  while (auto* e = static_cast<CounterEntry*>(hash_seq_search(&it))) {
    if (e->key.dboid != MyDatabaseId) continue;
    SpinLockAcquire(&e->mutex);
    e->counters = {};
    e->counters.stats_reset = now;
    SpinLockRelease(&e->mutex);
  }
  LWLockRelease(lock);
}

}  // namespace config_guard
