// Mark writers (see mark_writers.hpp and the fast path in cache.cpp).
//
// A writer bumps `marking` of its config's entry before its first mark and,
// when its transaction ends, `mark_epoch` then `marking` back. The bump is
// made under the entries' lock with the generation checked, so it lands on
// the entry readers of the config look at, and the entry cannot be reclaimed
// while the count is up.
#include "config_entries.hpp"  // first: it includes the core headers
#include "mark_writers.hpp"

#include "gateway.hpp"
#include "module.hpp"

extern "C" {
#include "access/twophase.h"
#include "access/xact.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
}

namespace config_guard {
namespace {

// Prepared transactions may have written marks that no backend counted:
// those recovered at a start or after a crash (the counts in shared memory
// start from zero). While any may exist, no config's hits skip the probes.
struct MarkState {
  pg_atomic_uint32 prepared_may_exist;
};
MarkState* mark_state = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(sizeof(MarkState));
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  mark_state = static_cast<MarkState*>(ShmemInitStruct("config_guard mark state", sizeof(MarkState), &found));
  if (!found) pg_atomic_init_u32(&mark_state->prepared_may_exist, max_prepared_xacts > 0 ? 1 : 0);
  LWLockRelease(AddinShmemInitLock);
}

// Entries this transaction counted itself on, each once.
constexpr int kMaxMarkedConfigs = 64;
ConfigEntry* marked[kMaxMarkedConfigs];
int nmarked = 0;

// Counts this transaction as a writer of the entry `ref` designates, if it
// still designates it.
bool CountWriter(const ConfigRef& ref) {
  LWLockAcquire(ConfigEntriesLock(), LW_SHARED);
  const bool current = StillCurrent(ref);
  if (current) pg_atomic_fetch_add_u32(&ref.entry->marking, 1);
  LWLockRelease(ConfigEntriesLock());
  return current;
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

void XactCallback(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
      event == XACT_EVENT_PARALLEL_COMMIT)
    EndMarkWriters(false);
  else if (event == XACT_EVENT_PREPARE)
    EndMarkWriters(true);
}

}  // namespace

void InitMarkWriters() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
  RegisterXactCallback(XactCallback, nullptr);
}

void NoteMarkWriter(int32 config_id) {
  if (!loaded_at_startup) return;
  ConfigRef ref = FindConfigEntry(config_id);
  for (int i = 0; i < nmarked; ++i) {
    if (marked[i] == ref.entry) return;
  }
  while (!CountWriter(ref)) ref = FindConfigEntry(config_id);
  if (nmarked == kMaxMarkedConfigs) {
    // Cannot remember more: counted and never uncounted, so the fast path of
    // this config stays off until a restart (safe, only slower), and the
    // entry is never reclaimed.
    return;
  }
  marked[nmarked++] = ref.entry;
}

void EndMarkWriters(bool prepared) {
  for (int i = 0; i < nmarked; ++i) {
    ConfigEntry* e = marked[i];
    // A prepared transaction's marks become visible at COMMIT PREPARED, maybe
    // in another session: leave it counted as in progress (the fast path of
    // the config stays off until a restart).
    if (prepared) continue;
    pg_atomic_fetch_add_u64(&e->mark_epoch, 1);  // first the epoch, then the count
    pg_atomic_fetch_sub_u32(&e->marking, 1);
  }
  nmarked = 0;
}

MarkEpoch ReadMarkEpoch(int32 config_id) {
  if (RecoveredPreparedPending()) return {false, 0, 0};
  for (;;) {
    const ConfigRef ref = FindConfigEntry(config_id);
    if (ref.overflow) return {false, 0, 0};  // shared by several configs: always probe
    ConfigEntry* e = ref.entry;
    ConfigEntry* overflow = OverflowEntry();
    const bool watches = e->watches_overflow;
    // The counts before the epochs (see cache.cpp for why this order).
    const uint32 marking = pg_atomic_fetch_add_u32(&e->marking, 0);
    const uint32 overflow_marking = watches ? pg_atomic_fetch_add_u32(&overflow->marking, 0) : 0;
    pg_memory_barrier();
    const uint64 epoch = pg_atomic_fetch_add_u64(&e->mark_epoch, 0);
    const uint64 overflow_epoch = watches ? pg_atomic_fetch_add_u64(&overflow->mark_epoch, 0) : 0;
    pg_memory_barrier();
    if (!StillCurrent(ref)) continue;  // reclaimed meanwhile: what was read may be another config's
    const core::MarkReading reading = core::ReadMarks(marking, epoch, watches, overflow_marking, overflow_epoch);
    return {reading.quiet, reading.epoch, ref.generation};
  }
}

}  // namespace config_guard
