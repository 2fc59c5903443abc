// Builder slots: a counting semaphore (running_builders) in each config's
// shared entry, with a condition variable to wait on, and the per-backend
// ledger of the slots held (core/slot_ledger.hpp), returned at the end of
// each build, by the abort of the subtransaction that took them, or at the
// end of the transaction.
#include "core/slot_ledger.hpp"  // first: core headers precede postgres.h
#include "config_entries.hpp"
#include "pg_compat.hpp"
#include "builder_slots.hpp"

#include "gucs.hpp"

extern "C" {
#include "access/xact.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

core::SlotLedger held;

void ReturnSlot(std::uintptr_t slot) {
  auto* e = reinterpret_cast<ConfigEntry*>(slot);
  pg_atomic_fetch_sub_u32(&e->running_builders, 1);
  // (The ledger and the record of overflow builds are both stacks: the
  // overflow slot returned is the latest recorded.)
  if (e == OverflowEntry()) EndOverflowBuild();
  ConditionVariableBroadcast(&e->builder_cv);
}

void ReturnSlots(std::uintptr_t* slots, size_t n) {
  for (size_t i = 0; i < n; ++i) ReturnSlot(slots[i]);
}

void SubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  std::uintptr_t slots[core::SlotLedger::kCapacity];
  ReturnSlots(slots, held.ReleaseFrom(subid, slots));
}

void XactCallback(XactEvent event, void*) {
  if (event != XACT_EVENT_ABORT && event != XACT_EVENT_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
      event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PREPARE)
    return;
  std::uintptr_t slots[core::SlotLedger::kCapacity];
  ReturnSlots(slots, held.ReleaseAll(slots));
}

enum class Take { kTaken, kFull, kMoved };

// Takes a slot of the entry `ref` designates, if it still designates it: the
// check and the increment are atomic with respect to a reclaim of the entry
// (which needs the lock exclusive and no running builder).
Take TryTake(const ConfigRef& ref) {
  LWLockAcquire(ConfigEntriesLock(), LW_SHARED);
  Take result = Take::kMoved;
  if (StillCurrent(ref)) {
    result = Take::kFull;
    // A build nested in one of this backend's that holds a slot of the entry
    // (a builder calling get(), of the same config or of another sharing the
    // overflow entry) takes one without waiting: the outer one waits for it.
    const bool nested = held.Holds(reinterpret_cast<std::uintptr_t>(ref.entry));
    uint32 running = pg_atomic_read_u32(&ref.entry->running_builders);
    while (nested || running < static_cast<uint32>(max_rebuilds_per_config)) {
      if (pg_atomic_compare_exchange_u32(&ref.entry->running_builders, &running, running + 1)) {
        if (ref.overflow) NoteOverflowBuild(ref.config_id);
        result = Take::kTaken;
        break;
      }
    }
  }
  LWLockRelease(ConfigEntriesLock());
  return result;
}

}  // namespace

void InitBuilderSlots() {
  RegisterXactCallback(XactCallback, nullptr);
  RegisterSubXactCallback(SubXactCallback, nullptr);
}

bool AcquireBuilderSlot(int32 config_id, int timeout_ms) {
  if (max_rebuilds_per_config <= 0) return true;
  const TimestampTz start = GetCurrentTimestamp();
  ConfigRef ref = FindConfigEntry(config_id);
  Take take = TryTake(ref);
  bool sleeping = false;
  while (take != Take::kTaken) {
    if (take == Take::kMoved) {
      if (sleeping) ConditionVariableCancelSleep();
      sleeping = false;
      ref = FindConfigEntry(config_id);
    } else {
      const long remaining = timeout_ms - static_cast<long>((GetCurrentTimestamp() - start) / 1000);
      if (remaining <= 0) break;
      if (!sleeping) {
        ConditionVariablePrepareToSleep(&ref.entry->builder_cv);
        sleeping = true;
      } else {
        static uint32 slot_event = 0;
        ConditionVariableTimedSleep(&ref.entry->builder_cv, remaining,
                                    compat::WaitEvent(&slot_event, "ConfigGuardBuilderSlot"));
      }
    }
    take = TryTake(ref);
  }
  if (sleeping) ConditionVariableCancelSleep();
  if (take != Take::kTaken) return false;
  if (!held.Push(reinterpret_cast<std::uintptr_t>(ref.entry), GetCurrentSubTransactionId())) {
    ReturnSlot(reinterpret_cast<std::uintptr_t>(ref.entry));
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
                    errmsg("builders nested more than %zu deep", core::SlotLedger::kCapacity),
                    errdetail("A builder calls config_guard.get() that runs a builder that calls it again ...")));
  }
  return true;
}

void ReleaseBuilderSlot() {
  std::uintptr_t slot = 0;
  if (held.Pop(&slot)) ReturnSlot(slot);
}

}  // namespace config_guard
