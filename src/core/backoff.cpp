#include "core/backoff.hpp"

#include <algorithm>

namespace config_guard::core {

std::int64_t BackoffDelayMs(int failures, std::int64_t base_ms, std::int64_t max_ms, double unit_random) {
  if (failures < 1 || base_ms <= 0 || max_ms <= 0) return 0;
  std::int64_t delay = std::min(base_ms, max_ms);
  for (int i = 1; i < failures && delay < max_ms; ++i) delay = std::min(delay * 2, max_ms);
  const double r = std::clamp(unit_random, 0.0, 1.0);
  const std::int64_t half = delay / 2;
  return half + static_cast<std::int64_t>(static_cast<double>(delay - half) * r);
}

bool RecordRunAndCheck(RateAlarm* alarm, std::int64_t now_s, std::int64_t threshold) {
  if (now_s - alarm->window_start_s >= 60 || now_s < alarm->window_start_s) {
    alarm->window_start_s = now_s;
    alarm->runs_in_window = 0;
  }
  ++alarm->runs_in_window;
  if (threshold <= 0 || alarm->runs_in_window <= threshold) return false;
  if (now_s - alarm->last_alert_s < 60) return false;
  alarm->last_alert_s = now_s;
  return true;
}

}  // namespace config_guard::core
