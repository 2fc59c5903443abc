// Covered writes (see mark_skip.hpp and core/mark_cover.hpp).
#include "core/mark_cover.hpp"  // first: core headers come before postgres.h
#include "core/siphash.hpp"

#include <algorithm>

#include "mark_skip.hpp"

#include "gucs.hpp"
#include "module.hpp"
#include "pg_compat.hpp"
#include "registry.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

// Keys hash into this many buckets of a few covered keys each (4.3 MB).
// Tenants that share one share its fences, which only costs marks.
constexpr uint32 kBuckets = 8192;
// How long a fence waits for the skippers of its key registered before it
// (each is between its PRE_COMMIT and the end of its commit).
constexpr long kFenceWaitMs = 1000;

struct Bucket {
  slock_t mutex;
  core::CoverBucket cover;
};
struct SkipState {
  pg_atomic_uint64 epoch;     // moved at the start and at the end of every bulk deletion of marks
  pg_atomic_uint32 bulk;      // bulk deletions in progress
  pg_atomic_uint32 skipping;  // writers committing without a mark, every key
  // The key of the tenant digests, drawn at start: no role can choose a
  // tenant name whose digest is another's.
  uint8 digest_key[core::kSipKeySize];
  Bucket buckets[kBuckets];
};
SkipState* state = nullptr;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(sizeof(SkipState));
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  state = static_cast<SkipState*>(ShmemInitStruct("config_guard covered writes", sizeof(SkipState), &found));
  if (!found) {
    pg_atomic_init_u64(&state->epoch, 0);
    pg_atomic_init_u32(&state->bulk, 0);
    pg_atomic_init_u32(&state->skipping, 0);
    if (!pg_strong_random(state->digest_key, sizeof state->digest_key))
      ereport(FATAL, (errmsg("config_guard could not generate random keys for covered writes")));
    for (Bucket& b : state->buckets) {
      SpinLockInit(&b.mutex);
      b.cover = core::CoverBucket();
    }
  }
  LWLockRelease(AddinShmemInitLock);
}

bool Active() { return loaded_at_startup && state != nullptr && !IsParallelWorker(); }

core::CoverKey KeyOf(int32 config_id, const char* tenant) {
  core::CoverKey key;
  key.database = MyDatabaseId;
  key.marks_table = CacheTables().invalidations;
  key.config = config_id;
  core::SipHash24 h(state->digest_key, true);
  h.Update(tenant, strlen(tenant));
  const core::Sip128 digest = h.Final128();
  key.digest[0] = digest.low;
  key.digest[1] = digest.high;
  return key;
}

Bucket& BucketOf(const core::CoverKey& key) { return state->buckets[key.digest[0] % kBuckets]; }

// A list of this backend's, in TopMemoryContext, emptied when its
// transaction ends (it keeps its room).
template <typename T>
struct List {
  T* items = nullptr;
  int count = 0;
  int room = 0;
  void Add(const T& item) {
    if (count == room) {
      const int grown = room == 0 ? 16 : room * 2;
      items = static_cast<T*>(items == nullptr ? MemoryContextAlloc(TopMemoryContext, sizeof(T) * grown)
                                               : repalloc(items, sizeof(T) * grown));
      room = grown;
    }
    items[count++] = item;
  }
};

struct Durable {
  core::CoverKey key;
  uint64 seq;
  uint64 epoch;
  SubTransactionId subxact;  // a rollback to before it takes the mark away
};
struct Skipped {
  core::CoverKey key;
  uint64 xid;
};
List<Skipped> skipped;
List<Durable> durable;
List<core::CoverKey> building;
int bulk_held = 0;  // bulk deletions of this transaction

// The transaction's durable marks cover their keys, now that they are visible.
void Cover() {
  for (int i = 0; i < durable.count; ++i) {
    const Durable& d = durable.items[i];
    Bucket& b = BucketOf(d.key);
    SpinLockAcquire(&b.mutex);
    core::CoverAtCommit(&b.cover, d.key, d.seq, d.epoch, pg_atomic_read_u64(&state->epoch),
                        pg_atomic_read_u32(&state->bulk));
    SpinLockRelease(&b.mutex);
  }
}

void EndTransaction(bool committed) {
  // Covering first: a build of this transaction that folded one of its own
  // marks ends it right after.
  if (committed) Cover();
  durable.count = 0;
  // (Remembered whatever the outcome: a commit reported as an abort, by
  // another library's callback failing, must not be forgotten.)
  for (int i = 0; i < skipped.count; ++i) {
    Bucket& b = BucketOf(skipped.items[i].key);
    SpinLockAcquire(&b.mutex);
    core::EndSkip(&b.cover, skipped.items[i].key);
    core::RememberSkip(&b.cover, skipped.items[i].key, skipped.items[i].xid);
    SpinLockRelease(&b.mutex);
    pg_atomic_fetch_sub_u32(&state->skipping, 1);
  }
  skipped.count = 0;
  for (int i = 0; i < building.count; ++i) {
    Bucket& b = BucketOf(building.items[i]);
    SpinLockAcquire(&b.mutex);
    core::EndBuild(&b.cover);
    SpinLockRelease(&b.mutex);
  }
  building.count = 0;
  for (; bulk_held > 0; --bulk_held) {
    pg_atomic_fetch_add_u64(&state->epoch, 1);
    pg_atomic_fetch_sub_u32(&state->bulk, 1);
  }
}

void XactCallback(XactEvent event, void*) {
  if (state == nullptr) return;
  if (event == XACT_EVENT_COMMIT)
    EndTransaction(true);
  else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE || event == XACT_EVENT_PARALLEL_COMMIT ||
           event == XACT_EVENT_PARALLEL_ABORT)
    EndTransaction(false);  // (a prepared transaction wrote every mark: it covers nothing)
}

// A subtransaction's rollback takes away the marks written in it and in the
// subtransactions started after it (their ids are larger): they cover
// nothing. (Its builds stay fenced until the transaction ends.)
void SubXactCallback(SubXactEvent event, SubTransactionId subxact, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  int kept = 0;
  for (int i = 0; i < durable.count; ++i) {
    if (durable.items[i].subxact < subxact) durable.items[kept++] = durable.items[i];
  }
  durable.count = kept;
}

}  // namespace

void InitMarkSkip() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
  RegisterXactCallback(XactCallback, nullptr);
  RegisterSubXactCallback(SubXactCallback, nullptr);
}

bool TrySkipMark(int32 config_id, const char* tenant) {
  // Under SERIALIZABLE the mark is also the read-write dependency a
  // reader of the document takes part in: always written.
  if (!Active() || !covered_writes || IsolationIsSerializable()) return false;
  const core::CoverKey key = KeyOf(config_id, tenant);
  skipped.Add(
      {key, U64FromFullTransactionId(GetTopFullTransactionId())});  // (room first: nothing may fail once counted)
  --skipped.count;
  Bucket& b = BucketOf(key);
  SpinLockAcquire(&b.mutex);
  // (The epoch read under the lock: a fence of the bucket, or a bulk
  // deletion that moved it before, is seen.)
  const bool skip = core::TrySkip(&b.cover, key, pg_atomic_read_u64(&state->epoch));
  if (skip) {
    ++skipped.count;
    pg_atomic_fetch_add_u32(&state->skipping, 1);
  }
  SpinLockRelease(&b.mutex);
  return skip;
}

void NoteDurableMark(int32 config_id, const char* tenant) {
  if (!Active()) return;
  const core::CoverKey key = KeyOf(config_id, tenant);
  Durable d = {key, 0, 0, GetCurrentSubTransactionId()};
  Bucket& b = BucketOf(key);
  SpinLockAcquire(&b.mutex);
  d.seq = b.cover.seq;
  d.epoch = pg_atomic_read_u64(&state->epoch);
  SpinLockRelease(&b.mutex);
  durable.Add(d);
}

bool FenceSkippers(int32 config_id, const char* tenant) {
  if (!loaded_at_startup || state == nullptr) return true;
  if (IsParallelWorker()) return false;  // (its transaction's end is the leader's)
  const core::CoverKey key = KeyOf(config_id, tenant);
  Bucket& b = BucketOf(key);
  building.Add(key);  // (room first: nothing may fail once counted)
  --building.count;
  SpinLockAcquire(&b.mutex);
  core::StartBuild(&b.cover);
  ++building.count;
  SpinLockRelease(&b.mutex);
  // This transaction's own registrations (none but in a callback after its
  // PRE_COMMIT): its builds see its writes.
  uint32 own = 0;
  for (int i = 0; i < skipped.count; ++i) own += skipped.items[i].key == key ? 1 : 0;
  const TimestampTz start = GetCurrentTimestamp();
  for (;;) {
    SpinLockAcquire(&b.mutex);
    const uint32 others = core::SkippersOf(b.cover, key) - own;
    SpinLockRelease(&b.mutex);
    if (others == 0) return true;
    if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), kFenceWaitMs)) return false;
    static uint32 fence_event = 0;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1,
                    compat::WaitEvent(&fence_event, "ConfigGuardCoveredWrites"));
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
}

bool CoveredWriteMayBeUnseen(int32 config_id, const char* tenant, Snapshot snapshot) {
  if (!loaded_at_startup || state == nullptr) return false;
  const core::CoverKey key = KeyOf(config_id, tenant);
  Bucket& b = BucketOf(key);
  SpinLockAcquire(&b.mutex);
  const core::CoverBucket cover = b.cover;
  SpinLockRelease(&b.mutex);
  // A skipper in progress, or a recent one the snapshot does not see; of
  // the older ones only the newest is known: one the snapshot's xmin may not
  // be past.
  if (core::SkippersOf(cover, key) > 0) return true;
  // (In 64 bits: the snapshot's xmin, in the epoch it belongs to.)
  const FullTransactionId next = ReadNextFullTransactionId();
  const uint64 xmin = U64FromFullTransactionId(FullTransactionIdFromEpochAndXid(
      EpochFromFullTransactionId(next) - (snapshot->xmin > XidFromFullTransactionId(next) ? 1 : 0), snapshot->xmin));
  for (const core::CoverBucket::Skip& s : cover.recent_skips) {
    if (s.xid == 0 || s.xid < xmin || s.key_word != key.digest[0]) continue;
    if (XidInMVCCSnapshot(XidFromFullTransactionId(FullTransactionIdFromU64(s.xid)), snapshot)) return true;
  }
  return cover.older_skips_below >= xmin;
}

void FenceAllCoverings() {
  if (!loaded_at_startup || state == nullptr) return;
  ++bulk_held;
  pg_atomic_fetch_add_u32(&state->bulk, 1);
  pg_atomic_fetch_add_u64(&state->epoch, 1);
  // The writers committing without a mark commit before the marks that
  // covered them go (for a hot standby, which sees no skipper): a second at
  // most, then the deletion goes on (a standby's walk of a tenant without a
  // document could then start between the two).
  const TimestampTz start = GetCurrentTimestamp();
  while (pg_atomic_read_u32(&state->skipping) > static_cast<uint32>(skipped.count) &&
         !TimestampDifferenceExceeds(start, GetCurrentTimestamp(), kFenceWaitMs)) {
    static uint32 bulk_event = 0;
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1,
                    compat::WaitEvent(&bulk_event, "ConfigGuardCoveredWrites"));
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
}

}  // namespace config_guard
