// Covered writes (see mark_skip.hpp and core/mark_cover.hpp).
#include "core/mark_cover.hpp"  // first: core headers come before postgres.h

#include <algorithm>

#include "mark_skip.hpp"

#include "module.hpp"
#include "pg_compat.hpp"

extern "C" {
#include "access/transam.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

// Keys hash into this many buckets of a few covered keys each (1.5 MB);
// tenants that share one share its fences, which only costs marks.
constexpr uint32 kBuckets = 16384;
// How long a fence waits for the skippers registered before it (each is
// between its PRE_COMMIT and the end of its commit).
constexpr long kFenceWaitMs = 1000;

struct Bucket {
  slock_t mutex;
  core::CoverBucket cover;
};
struct SkipState {
  pg_atomic_uint64 epoch;  // moved at the start and at the end of every bulk deletion of marks
  pg_atomic_uint32 bulk;   // bulk deletions in progress
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
    for (Bucket& b : state->buckets) {
      SpinLockInit(&b.mutex);
      b.cover = core::CoverBucket();
    }
  }
  LWLockRelease(AddinShmemInitLock);
}

bool Active() { return loaded_at_startup && state != nullptr; }

uint64 KeyOf(int32 config_id, const char* tenant) {
  const uint64 seed = (static_cast<uint64>(MyDatabaseId) << 32) | static_cast<uint32>(config_id);
  return hash_bytes_extended(reinterpret_cast<const unsigned char*>(tenant), static_cast<int>(strlen(tenant)), seed);
}

Bucket& BucketOf(uint64 key) { return state->buckets[key % kBuckets]; }

// What this transaction did, completed or undone when it ends. Past the
// room a write does not skip, a durable mark covers nothing, and a build
// fences every bucket (the epoch, as a bulk deletion).
constexpr int kRoom = 64;
struct Durable {
  uint64 key;
  uint64 seq;
  uint64 epoch;
  SubTransactionId subxact;  // a rollback to before it takes the mark away
};
uint64 skipped[kRoom];
int nskipped = 0;
Durable durable[kRoom];
int ndurable = 0;
uint64 building[kRoom];
int nbuilding = 0;
int bulk_held = 0;  // bulk deletions (and builds past the room) of this transaction

// The transaction's durable marks cover their keys, now that they are visible.
void Cover() {
  const uint64 epoch_now = pg_atomic_read_u64(&state->epoch);
  const uint32 bulk = pg_atomic_read_u32(&state->bulk);
  for (int i = 0; i < ndurable; ++i) {
    Bucket& b = BucketOf(durable[i].key);
    SpinLockAcquire(&b.mutex);
    core::CoverAtCommit(&b.cover, durable[i].key, durable[i].seq, durable[i].epoch, epoch_now, bulk);
    SpinLockRelease(&b.mutex);
  }
}

void EndTransaction(bool committed) {
  // Covering first: a build of this transaction that folded one of its own
  // marks ends it right after.
  if (committed) Cover();
  ndurable = 0;
  for (int i = 0; i < nskipped; ++i) {
    Bucket& b = BucketOf(skipped[i]);
    SpinLockAcquire(&b.mutex);
    Assert(b.cover.skippers > 0);
    if (b.cover.skippers > 0) --b.cover.skippers;
    SpinLockRelease(&b.mutex);
  }
  nskipped = 0;
  for (int i = 0; i < nbuilding; ++i) {
    Bucket& b = BucketOf(building[i]);
    SpinLockAcquire(&b.mutex);
    core::EndBuild(&b.cover);
    SpinLockRelease(&b.mutex);
  }
  nbuilding = 0;
  for (; bulk_held > 0; --bulk_held) {
    pg_atomic_fetch_add_u64(&state->epoch, 1);
    pg_atomic_fetch_sub_u32(&state->bulk, 1);
  }
}

void XactCallback(XactEvent event, void*) {
  if (state == nullptr) return;
  if (event == XACT_EVENT_COMMIT)
    EndTransaction(true);
  else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE)
    EndTransaction(false);  // (a prepared transaction wrote every mark: it covers nothing)
}

// A subtransaction's rollback takes away the marks written in it and in the
// subtransactions started after it (their ids are larger): they cover
// nothing. (Its builds stay fenced until the transaction ends.)
void SubXactCallback(SubXactEvent event, SubTransactionId subxact, SubTransactionId, void*) {
  if (event != SUBXACT_EVENT_ABORT_SUB) return;
  int kept = 0;
  for (int i = 0; i < ndurable; ++i) {
    if (durable[i].subxact < subxact) durable[kept++] = durable[i];
  }
  ndurable = kept;
}

void HoldBulk() {
  ++bulk_held;
  pg_atomic_fetch_add_u32(&state->bulk, 1);
  pg_atomic_fetch_add_u64(&state->epoch, 1);
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
  if (!Active() || nskipped == kRoom) return false;
  const uint64 key = KeyOf(config_id, tenant);
  const uint64 epoch = pg_atomic_read_u64(&state->epoch);
  const uint64 xid = U64FromFullTransactionId(GetTopFullTransactionId());
  Bucket& b = BucketOf(key);
  SpinLockAcquire(&b.mutex);
  const bool skip = core::MaySkip(b.cover, key, epoch);
  if (skip) {
    ++b.cover.skippers;
    b.cover.last_skipper = std::max(b.cover.last_skipper, xid);
    skipped[nskipped++] = key;
  }
  SpinLockRelease(&b.mutex);
  return skip;
}

void NoteDurableMark(int32 config_id, const char* tenant) {
  if (!Active() || ndurable == kRoom) return;
  const uint64 key = KeyOf(config_id, tenant);
  Durable d = {key, 0, pg_atomic_read_u64(&state->epoch), GetCurrentSubTransactionId()};
  Bucket& b = BucketOf(key);
  SpinLockAcquire(&b.mutex);
  d.seq = b.cover.seq;
  SpinLockRelease(&b.mutex);
  durable[ndurable++] = d;
}

bool FenceSkippers(int32 config_id, const char* tenant) {
  if (!Active()) return true;
  const uint64 key = KeyOf(config_id, tenant);
  Bucket& b = BucketOf(key);
  if (nbuilding == kRoom) {
    HoldBulk();  // every covering ends
  } else {
    SpinLockAcquire(&b.mutex);
    core::StartBuild(&b.cover);
    SpinLockRelease(&b.mutex);
    building[nbuilding++] = key;
  }
  // This transaction's own registrations in the bucket (none but in a
  // callback after PRE_COMMIT): its builds see its writes.
  uint32 own = 0;
  for (int i = 0; i < nskipped; ++i) own += skipped[i] % kBuckets == key % kBuckets ? 1 : 0;
  const TimestampTz start = GetCurrentTimestamp();
  for (;;) {
    SpinLockAcquire(&b.mutex);
    const uint32 others = b.cover.skippers - own;
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
  if (!Active()) return false;
  Bucket& b = BucketOf(KeyOf(config_id, tenant));
  SpinLockAcquire(&b.mutex);
  const uint64 last = b.cover.last_skipper;
  SpinLockRelease(&b.mutex);
  // Every skipper so far ended before the snapshot was taken, or maybe not.
  return last != 0 && !TransactionIdPrecedes(XidFromFullTransactionId(FullTransactionIdFromU64(last)), snapshot->xmin);
}

void FenceAllCoverings() {
  if (Active()) HoldBulk();
}

}  // namespace config_guard
