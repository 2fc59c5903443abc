// The backoff state of failing tenants, in a fixed-size shared table of
// config_guard.max_tracked_tenants entries (an entry whose backoff is over,
// or else the one due soonest, makes room for a new one).
#pragma once

#include "pg.hpp"

extern "C" {
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

void InitBackoffTable();

// Returns true and fills *state if the tenant is backing off now.
bool ActiveBackoff(const TenantSlotKey& key, BackoffState* state);
// Records a failure and returns the state to report (next attempt, error).
BackoffState RecordBuilderFailure(const TenantSlotKey& key, const char* message);
void ClearBackoff(const TenantSlotKey& key);

}  // namespace config_guard
