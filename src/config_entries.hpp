// Per-config state in shared memory: one slot per config in use, in a table
// of config_guard.max_tracked_configs slots, plus one overflow entry shared by
// the configs that find no slot (rules in core/config_slots.hpp).
//
// A slot holds the config's statistics (config_counters.hpp), its running
// builders (builder_slots.hpp) and its mark writers (mark_writers.hpp). A slot
// is reclaimed for another config only when its own config is gone and
// nothing is in progress on it; its generation then changes, so a reference
// is checked against the generation it was taken with before anything that
// must land on the right config (taking a builder slot, counting a mark
// writer) and looked up again if it changed.
#pragma once

#include "core/backoff.hpp"  // first: core headers precede postgres.h
#include "core/config_slots.hpp"
#include "config_counters.hpp"

extern "C" {
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
}

namespace config_guard {

struct ConfigSlotKey {
  Oid dboid;
  int32 config_id;
};

struct ConfigEntry {
  // Under the table's lock.
  ConfigSlotKey key;
  bool in_use;
  bool watches_overflow;  // taken after the overflow entry was first used
  // Changes (under the lock, exclusive) whenever the slot changes config.
  pg_atomic_uint64 generation;
  // Statistics: event counts are atomics; build times, the reset time and the
  // rate alarm are guarded by `mutex` (nothing under it can ereport).
  pg_atomic_uint64 events[kCounterKinds];
  slock_t mutex;
  double total_build_ms;
  double max_build_ms;
  uint64 builder_runs;
  TimestampTz stats_reset;
  core::RateAlarm alarm;
  // Builder runs in progress, capped by config_guard.max_rebuilds_per_config.
  pg_atomic_uint32 running_builders;
  ConditionVariable builder_cv;
  // Mark writers: transactions in progress that wrote marks for the config;
  // `mark_epoch` grows when each ends.
  pg_atomic_uint32 marking;
  pg_atomic_uint64 mark_epoch;
};

struct ConfigRef {
  ConfigEntry* entry;
  uint64 generation;
  bool overflow;
  int32 config_id;
};

void InitConfigEntries();

// The entry of a config of the current database: its own slot, or the
// overflow entry when the table is full. Never fails.
ConfigRef FindConfigEntry(int32 config_id);
// Whether `ref` still designates its config's entry; false makes the next
// FindConfigEntry() look it up again. Call under ConfigEntriesLock() when
// acting on the answer must be atomic with it, and always for a reference to
// the overflow entry (it is current while the config has no slot).
bool StillCurrent(const ConfigRef& ref);
LWLock* ConfigEntriesLock();
// This backend starts a builder of `config_id` on the overflow entry (under
// the lock, shared), or ends its latest one there: a config leaves the
// overflow entry for a slot of its own only while none of its builders runs
// there, so that its cap holds across the move.
void NoteOverflowBuild(int32 config_id);
void EndOverflowBuild();
ConfigEntry* OverflowEntry();
void ResetEntryStatistics(ConfigEntry* e, TimestampTz now);
// At start, in the postmaster, before any backend: a slot for a config whose
// statistics were saved at the last shutdown (nullptr if none is free).
ConfigEntry* RestoreConfigEntry(const ConfigSlotKey& key);

// Calls fn(entry) for every slot of the current database, under the lock in
// shared mode (fn must not ereport).
template <typename Fn>
void ForEachConfigEntry(Fn fn);
ConfigEntry* ConfigEntryAt(int index);
int ConfigEntryCount();

template <typename Fn>
void ForEachConfigEntry(Fn fn) {
  LWLockAcquire(ConfigEntriesLock(), LW_SHARED);
  for (int i = 0; i < ConfigEntryCount(); ++i) {
    ConfigEntry* e = ConfigEntryAt(i);
    if (e->in_use && e->key.dboid == MyDatabaseId) fn(e);
  }
  LWLockRelease(ConfigEntriesLock());
}

}  // namespace config_guard
