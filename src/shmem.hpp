// config_guard's shared memory: the backoff state of failing tenants and the
// counters behind config_stats. Coalescing of rebuilds needs no shared memory
// of its own: it uses heavyweight advisory locks (see coalesce.hpp).
#pragma once

#include "pg.hpp"

extern "C" {
#include "storage/spin.h"
#include "common/pg_prng.h"
#include "utils/timestamp.h"
}

namespace config_guard {

constexpr int kErrorTextSize = 256;

struct TenantSlotKey {
  Oid dboid;
  int32 config_id;
  uint64 tenant_hash;
};

// A tenant whose builder failed: nobody runs it again before next_attempt.
struct BackoffState {
  TenantSlotKey key;
  int failures;
  TimestampTz next_attempt;
  TimestampTz last_failure;
  char last_error[kErrorTextSize];
};

struct ConfigSlotKey {
  Oid dboid;
  int32 config_id;
};

struct ConfigCounters {
  uint64 hits;
  uint64 stale_hits;
  uint64 misses;
  uint64 builder_runs;
  uint64 builder_failures;
  uint64 coalesced_waits;
  uint64 wait_timeouts;
  uint64 backoff_refusals;
  uint64 self_writes;
  double total_build_ms;
  double max_build_ms;
  TimestampTz stats_reset;
};

enum class Counter {
  kHit,
  kStaleHit,
  kMiss,
  kCoalescedWait,
  kWaitTimeout,
  kBackoffRefusal,
  kSelfWrite,
  kBuilderFailure
};
constexpr int kCounterKinds = 8;

void InitSharedMemory();

// Backoff: returns true and fills *state if the tenant is backing off now.
bool ActiveBackoff(const TenantSlotKey& key, BackoffState* state);
// Records a failure and returns the state to report (next attempt, error).
BackoffState RecordBuilderFailure(const TenantSlotKey& key, const char* message);
void ClearBackoff(const TenantSlotKey& key);

// Counters of one config of the current database.
void CountEvent(int32 config_id, Counter counter);
// Records a builder run; returns true when the rebuild-rate warning is due.
bool CountBuilderRun(int32 config_id, double build_ms, int64* runs_this_minute);

// A slot to run one builder of the config (config_guard.max_rebuilds_per_config
// at once, cluster-wide); waits up to timeout_ms. The slot is returned by
// ReleaseBuilderSlot() (the innermost one held); the abort of the
// subtransaction that took it, or the end of the transaction, returns it
// otherwise.
bool AcquireBuilderSlot(int32 config_id, int timeout_ms);
void ReleaseBuilderSlot();

// Invalidation-mark writers of a config. A transaction that writes marks
// calls NoteMarkWriter() before its first mark; EndMarkWriters() runs when it
// ends. ReadMarkEpoch() tells a reader whether no such transaction is in
// progress (quiet) and how many have ended (epoch).
struct MarkEpoch {
  bool quiet;
  uint64 epoch;
};
void NoteMarkWriter(int32 config_id);
void EndMarkWriters(bool prepared);
MarkEpoch ReadMarkEpoch(int32 config_id);

// Copies of every config's counters in the current database (palloc'd).
int SnapshotCounters(int32** config_ids, ConfigCounters** counters);
void ResetCounters();

}  // namespace config_guard
