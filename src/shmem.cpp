// Shared memory of config_guard.
//
// Locking contract. One LWLock (tranche "config_guard") protects the
// structure of both hash tables and every field of BackoffState:
//   - look-ups take it shared, inserts and deletes exclusive (re-checking
//     after the promotion);
//   - BackoffState fields are read under the shared lock, written under the
//     exclusive lock.
// A CounterEntry, once created, is never removed, so backends keep pointers
// to it (running_builders is a counting semaphore over it, with builder_cv): its event counts are atomics updated
// without locks, and its build times and rate alarm are guarded by its spinlock (taken with or without the LWLock; when
// both, LWLock first). Nothing under a spinlock can ereport; formatting happens after copying out.
//
// Everything here is advisory state: a crash resets it with the rest of shared
// memory, and correctness (freshness, one rebuild at a time) never depends on
// it.
#include "core/backoff.hpp"  // first: core headers precede postgres.h
#include "core/slot_ledger.hpp"
#include "shmem.hpp"

#include <type_traits>

#include "gateway.hpp"
#include "gucs.hpp"
#include "module.hpp"

extern "C" {
#include "access/twophase.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "utils/wait_event.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
}

namespace config_guard {
namespace {

// Event counts are atomics, bumped without any lock on the hit path; build
// times, the reset time and the rate alarm sit under the entry's spinlock.
struct CounterEntry {
  ConfigSlotKey key;
  pg_atomic_uint64 events[kCounterKinds];
  slock_t mutex;
  double total_build_ms;
  double max_build_ms;
  uint64 builder_runs;
  TimestampTz stats_reset;
  core::RateAlarm alarm;
  // Builder runs in progress, capped by config_guard.max_rebuilds_per_config.
  pg_atomic_uint32 running_builders;
  // Writers of invalidation marks: `marking` counts transactions in progress
  // that wrote marks for this config; `mark_epoch` is bumped when each ends.
  pg_atomic_uint32 marking;
  pg_atomic_uint64 mark_epoch;
  ConditionVariable builder_cv;
};

static_assert(std::is_standard_layout_v<BackoffState>, "shared memory holds plain structs");
static_assert(std::is_standard_layout_v<CounterEntry>, "shared memory holds plain structs");
static_assert(std::is_trivially_destructible_v<CounterEntry>, "shared memory holds plain structs");
static_assert(static_cast<int>(Counter::kBuilderFailure) + 1 == kCounterKinds, "one atomic per Counter");
static_assert(sizeof(TenantSlotKey) == 16, "hash keys have no padding");
static_assert(sizeof(ConfigSlotKey) == 8, "hash keys have no padding");

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

LWLock* lock = nullptr;
HTAB* backoff_table = nullptr;
HTAB* counter_table = nullptr;

constexpr const char* kTranche = "config_guard";

// Prepared transactions may have written marks that no backend counted:
// those recovered at a start or after a crash (the counts in shared memory
// start from zero). While any may exist, no config's hits skip the probes.
struct MarkState {
  pg_atomic_uint32 prepared_may_exist;
};
MarkState* mark_state = nullptr;

// The tables are fixed-size: never more than max_tracked_* entries, never
// Postgres' spare shared memory. Configs beyond max_tracked_configs share this
// one entry, so that no protection is switched off for them: their builders
// share one cap, and a mark writer of any of them makes all of them probe
// their marks. Only their statistics are missing from config_stats.
CounterEntry* overflow_entry = nullptr;
pg_atomic_uint32* overflow_warned = nullptr;

Size SharedSize() {
  return add_size(add_size(add_size(hash_estimate_size(max_tracked_tenants, sizeof(BackoffState)),
                                    hash_estimate_size(max_tracked_configs, sizeof(CounterEntry))),
                           sizeof(MarkState)),
                  add_size(sizeof(CounterEntry), sizeof(pg_atomic_uint32)));
}

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(SharedSize());
  RequestNamedLWLockTranche(kTranche, 1);
}

void InitEntry(CounterEntry* e);

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  HASHCTL info = {};
  info.keysize = sizeof(TenantSlotKey);
  info.entrysize = sizeof(BackoffState);
  backoff_table = ShmemInitHash("config_guard backoff", max_tracked_tenants, max_tracked_tenants, &info,
                                HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  info.keysize = sizeof(ConfigSlotKey);
  info.entrysize = sizeof(CounterEntry);
  counter_table = ShmemInitHash("config_guard counters", max_tracked_configs, max_tracked_configs, &info,
                                HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  bool found = false;
  mark_state = static_cast<MarkState*>(ShmemInitStruct("config_guard mark state", sizeof(MarkState), &found));
  if (!found) pg_atomic_init_u32(&mark_state->prepared_may_exist, max_prepared_xacts > 0 ? 1 : 0);
  overflow_entry =
      static_cast<CounterEntry*>(ShmemInitStruct("config_guard overflow counters", sizeof(CounterEntry), &found));
  if (!found) InitEntry(overflow_entry);
  overflow_warned =
      static_cast<pg_atomic_uint32*>(ShmemInitStruct("config_guard overflow warned", sizeof(pg_atomic_uint32), &found));
  if (!found) pg_atomic_init_u32(overflow_warned, 0);
  LWLockRelease(AddinShmemInitLock);
}

// Makes room for one more backoff entry: an entry whose backoff is over, or
// else the one due soonest, among at most kEvictionSample entries, so that the
// exclusive lock is held for a bounded time however large the table is.
constexpr int kEvictionSample = 64;

void EvictOneBackoff() {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, backoff_table);
  BackoffState* victim = nullptr;
  const TimestampTz now = GetCurrentTimestamp();
  int seen = 0;
  while (auto* s = static_cast<BackoffState*>(hash_seq_search(&it))) {
    if (victim == nullptr || s->next_attempt < victim->next_attempt) victim = s;
    if (s->next_attempt <= now || ++seen == kEvictionSample) {
      hash_seq_term(&it);
      break;
    }
  }
  if (victim != nullptr) hash_search(backoff_table, &victim->key, HASH_REMOVE, nullptr);
}

// This backend's pointers to counter entries: entries never move or go away
// (a reset zeroes them), so after the first look-up no lock is needed.
HTAB* local_entries = nullptr;

struct LocalEntry {
  int32 config_id;
  CounterEntry* entry;
};

void ResetEntry(CounterEntry* e, TimestampTz now) {
  for (auto& v : e->events) pg_atomic_write_u64(&v, 0);
  SpinLockAcquire(&e->mutex);
  e->total_build_ms = 0;
  e->max_build_ms = 0;
  e->builder_runs = 0;
  e->stats_reset = now;
  SpinLockRelease(&e->mutex);
}

// The counters of a config, created on first use; nullptr if the table is
// full. Called with `lock` held in shared mode; may promote it to exclusive.
void InitEntry(CounterEntry* e) {
  for (auto& v : e->events) pg_atomic_init_u64(&v, 0);
  pg_atomic_init_u32(&e->running_builders, 0);
  pg_atomic_init_u32(&e->marking, 0);
  pg_atomic_init_u64(&e->mark_epoch, 0);
  ConditionVariableInit(&e->builder_cv);
  SpinLockInit(&e->mutex);
  e->alarm = {};
  ResetEntry(e, GetCurrentTimestamp());
}

CounterEntry* CounterEntryFor(int32 config_id) {
  ConfigSlotKey key = {MyDatabaseId, config_id};
  auto* e = static_cast<CounterEntry*>(hash_search(counter_table, &key, HASH_FIND, nullptr));
  if (e != nullptr) return e;
  LWLockRelease(lock);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  bool found = false;
  e = static_cast<CounterEntry*>(hash_search(counter_table, &key, HASH_ENTER_NULL, &found));
  if (e == nullptr) {
    if (pg_atomic_exchange_u32(overflow_warned, 1) == 0)
      ereport(WARNING, (errmsg("config_guard.max_tracked_configs (%d) is reached", max_tracked_configs),
                        errdetail("Further configs share one entry: their protections hold, their statistics are "
                                  "not kept."),
                        errhint("Raise config_guard.max_tracked_configs and restart.")));
    return overflow_entry;
  }
  if (!found) InitEntry(e);
  return e;
}

CounterEntry* LocalCounterEntry(int32 config_id) {
  if (local_entries == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(int32);
    ctl.entrysize = sizeof(LocalEntry);
    local_entries = hash_create("config_guard counter pointers", 16, &ctl, HASH_ELEM | HASH_BLOBS);
  }
  bool found = false;
  auto* local = static_cast<LocalEntry*>(hash_search(local_entries, &config_id, HASH_ENTER, &found));
  if (!found || local->entry == nullptr) {
    LWLockAcquire(lock, LW_SHARED);
    local->entry = CounterEntryFor(config_id);
    LWLockRelease(lock);
  }
  return local->entry;
}

}  // namespace

void BuilderSlotsXactCallback(XactEvent event, void*);
void BuilderSlotsSubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*);

void InitSharedMemory() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
  RegisterXactCallback(BuilderSlotsXactCallback, nullptr);
  RegisterSubXactCallback(BuilderSlotsSubXactCallback, nullptr);
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
  const int64 delay_ms =
      core::BackoffDelayMs(s->failures, backoff_base_ms, backoff_max_ms, pg_prng_double(&pg_global_prng_state));
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
  CounterEntry* e = LocalCounterEntry(config_id);
  if (e != nullptr) pg_atomic_fetch_add_u64(&e->events[static_cast<int>(counter)], 1);
}

bool CountBuilderRun(int32 config_id, double build_ms, int64* runs_this_minute) {
  CounterEntry* e = LocalCounterEntry(config_id);
  if (e == nullptr) return false;
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

// Configs this transaction wrote marks for, each counted once in `marking`.
constexpr int kMaxMarkedConfigs = 64;
CounterEntry* marked[kMaxMarkedConfigs];
int nmarked = 0;
bool marked_overflow = false;

void NoteMarkWriter(int32 config_id) {
  if (!loaded_at_startup) return;
  CounterEntry* e = LocalCounterEntry(config_id);
  if (e == nullptr) return;
  for (int i = 0; i < nmarked; ++i) {
    if (marked[i] == e) return;
  }
  if (nmarked == kMaxMarkedConfigs) {
    // Cannot track more: bump without remembering, so the fast path of this
    // config stays off until a restart (safe, only slower).
    pg_atomic_fetch_add_u32(&e->marking, 1);
    marked_overflow = true;
    return;
  }
  pg_atomic_fetch_add_u32(&e->marking, 1);
  marked[nmarked++] = e;
}

void EndMarkWriters(bool prepared) {
  for (int i = 0; i < nmarked; ++i) {
    CounterEntry* e = marked[i];
    // A prepared transaction's marks become visible at COMMIT PREPARED, maybe
    // in another session: leave it counted as in progress (the fast path of
    // the config stays off until a restart).
    if (prepared) continue;
    pg_atomic_fetch_add_u64(&e->mark_epoch, 1);  // first the epoch, then the count
    pg_atomic_fetch_sub_u32(&e->marking, 1);
  }
  nmarked = 0;
  marked_overflow = false;
}

// Whether prepared transactions recovered at start may still be pending:
// looked up at most once a second per backend until there are none.
bool RecoveredPreparedPending() {
  static TimestampTz last_look = 0;
  if (pg_atomic_read_u32(&mark_state->prepared_may_exist) == 0) return false;
  const TimestampTz now = GetCurrentTimestamp();
  if (now - last_look < USECS_PER_SEC) return true;
  last_look = now;
  SPI_connect();
  const bool pending = RunAsOwner(Stmt::kPreparedTransactions, nullptr) > 0;
  SPI_finish();
  // Any transaction prepared from now on is counted by NoteMarkWriter().
  if (!pending) pg_atomic_write_u32(&mark_state->prepared_may_exist, 0);
  return pending;
}

MarkEpoch ReadMarkEpoch(int32 config_id) {
  CounterEntry* e = LocalCounterEntry(config_id);
  if (e == nullptr || RecoveredPreparedPending()) return {false, 0};
  // The count before the epoch (see cache.cpp for why this order).
  const uint32 marking = pg_atomic_fetch_add_u32(&e->marking, 0);
  pg_memory_barrier();
  const uint64 epoch = pg_atomic_fetch_add_u64(&e->mark_epoch, 0);
  return {marking == 0, epoch};
}

// The builder slots this backend holds (core/slot_ledger.hpp), returned at
// the end of each build, by the abort of the subtransaction that took them,
// or at the end of the transaction.
core::SlotLedger held_builder_slots;

void ReturnSlot(std::uintptr_t slot) {
  auto* e = reinterpret_cast<CounterEntry*>(slot);
  pg_atomic_fetch_sub_u32(&e->running_builders, 1);
  ConditionVariableBroadcast(&e->builder_cv);
}

void ReturnSlots(std::uintptr_t* slots, size_t n) {
  for (size_t i = 0; i < n; ++i) ReturnSlot(slots[i]);
}

void BuilderSlotsSubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  std::uintptr_t slots[core::SlotLedger::kCapacity];
  ReturnSlots(slots, held_builder_slots.ReleaseFrom(subid, slots));
}

void BuilderSlotsXactCallback(XactEvent event, void*) {
  if (event != XACT_EVENT_ABORT && event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PREPARE)
    return;
  std::uintptr_t slots[core::SlotLedger::kCapacity];
  ReturnSlots(slots, held_builder_slots.ReleaseAll(slots));
}

bool TryTakeBuilderSlot(CounterEntry* e) {
  uint32 running = pg_atomic_read_u32(&e->running_builders);
  while (running < static_cast<uint32>(max_rebuilds_per_config)) {
    if (pg_atomic_compare_exchange_u32(&e->running_builders, &running, running + 1)) return true;
  }
  return false;
}

bool AcquireBuilderSlot(int32 config_id, int timeout_ms) {
  CounterEntry* e = LocalCounterEntry(config_id);
  if (e == nullptr || max_rebuilds_per_config <= 0) return true;
  const TimestampTz start = GetCurrentTimestamp();
  bool acquired = TryTakeBuilderSlot(e);
  if (!acquired) {
    ConditionVariablePrepareToSleep(&e->builder_cv);
    while (!(acquired = TryTakeBuilderSlot(e))) {
      const long remaining = timeout_ms - static_cast<long>((GetCurrentTimestamp() - start) / 1000);
      if (remaining <= 0) break;
      ConditionVariableTimedSleep(&e->builder_cv, remaining, PG_WAIT_EXTENSION);
    }
    ConditionVariableCancelSleep();
  }
  if (acquired && !held_builder_slots.Push(reinterpret_cast<std::uintptr_t>(e), GetCurrentSubTransactionId())) {
    ReturnSlot(reinterpret_cast<std::uintptr_t>(e));
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("builders nested more than %zu deep", core::SlotLedger::kCapacity),
                    errdetail("A builder calls config_guard.get() that runs a builder that calls it again ...")));
  }
  return acquired;
}

void ReleaseBuilderSlot() {
  std::uintptr_t slot = 0;
  if (held_builder_slots.Pop(&slot)) ReturnSlot(slot);
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
    ResetEntry(e, now);
  }
  LWLockRelease(lock);
}

}  // namespace config_guard
