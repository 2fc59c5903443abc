// Backoff for failing builders and the rebuild-rate alarm: pure policy,
// no clock and no randomness of its own, so both are unit tested exactly.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstdint>

namespace config_guard::core {

// Delay before the next builder run after `failures` consecutive failures
// (>= 1): base * 2^(failures-1), capped at max_ms, with "equal jitter": half
// of it fixed, half scaled by `unit_random` in [0, 1). Callers that failed
// together therefore spread out, and none retries sooner than half the delay.
std::int64_t BackoffDelayMs(int failures, std::int64_t base_ms, std::int64_t max_ms, double unit_random);

// Counts builder runs per one-minute window and says when to warn: at most
// once a minute, when the window's runs exceed the threshold (0 disables).
struct RateAlarm {
  std::int64_t window_start_s = 0;
  std::int64_t runs_in_window = 0;
  std::int64_t last_alert_s = INT64_MIN / 2;
};

// Records one run at `now_s`; returns true when a warning is due now.
bool RecordRunAndCheck(RateAlarm* alarm, std::int64_t now_s, std::int64_t threshold);

}  // namespace config_guard::core
