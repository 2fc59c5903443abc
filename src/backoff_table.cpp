// The backoff table. One LWLock (tranche "config_guard backoff") protects the
// hash table and every field of its entries: look-ups take it shared, inserts
// and deletes exclusive. Advisory state: a crash resets it, and freshness
// never depends on it.
#include "core/backoff.hpp"  // first: core headers precede postgres.h
#include "backoff_table.hpp"

#include <type_traits>

#include "gucs.hpp"

extern "C" {
#include "common/pg_prng.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
}

namespace config_guard {
namespace {

static_assert(std::is_standard_layout_v<BackoffState>, "shared memory holds plain structs");
static_assert(sizeof(TenantSlotKey) == 16, "hash keys have no padding");

constexpr const char* kTranche = "config_guard backoff";

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;
LWLock* lock = nullptr;
HTAB* table = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(hash_estimate_size(max_tracked_tenants, sizeof(BackoffState)));
  RequestNamedLWLockTranche(kTranche, 1);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  HASHCTL info = {};
  info.keysize = sizeof(TenantSlotKey);
  info.entrysize = sizeof(BackoffState);
  table = ShmemInitHash("config_guard backoff", max_tracked_tenants, max_tracked_tenants, &info,
                        HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  LWLockRelease(AddinShmemInitLock);
}

// Makes room for one more entry: an entry whose backoff is over, or else the
// one due soonest, among at most kEvictionSample entries, so that the
// exclusive lock is held for a bounded time however large the table is.
constexpr int kEvictionSample = 64;

void EvictOne() {
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, table);
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
  if (victim != nullptr) hash_search(table, &victim->key, HASH_REMOVE, nullptr);
}

}  // namespace

void InitBackoffTable() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

bool ActiveBackoff(const TenantSlotKey& key, BackoffState* state) {
  LWLockAcquire(lock, LW_SHARED);
  auto* s = static_cast<BackoffState*>(hash_search(table, &key, HASH_FIND, nullptr));
  const bool active = s != nullptr && s->next_attempt > GetCurrentTimestamp();
  if (active) *state = *s;
  LWLockRelease(lock);
  return active;
}

BackoffState RecordBuilderFailure(const TenantSlotKey& key, const char* message) {
  LWLockAcquire(lock, LW_EXCLUSIVE);
  bool found = false;
  auto* s = static_cast<BackoffState*>(hash_search(table, &key, HASH_ENTER_NULL, &found));
  if (s == nullptr) {
    EvictOne();
    s = static_cast<BackoffState*>(hash_search(table, &key, HASH_ENTER, &found));
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
  const bool present = hash_search(table, &key, HASH_FIND, nullptr) != nullptr;
  LWLockRelease(lock);
  if (!present) return;
  LWLockAcquire(lock, LW_EXCLUSIVE);
  hash_search(table, &key, HASH_REMOVE, nullptr);
  LWLockRelease(lock);
}

}  // namespace config_guard
