#include "core/interval.hpp"

namespace config_guard::core {

bool IntervalMicroseconds(std::int32_t months, std::int32_t days, std::int64_t time, std::int64_t* out) {
  constexpr std::int64_t kDayUs = 24LL * 3600 * 1000000;
  std::int64_t month_days = 0;
  std::int64_t total_days = 0;
  std::int64_t days_us = 0;
  if (__builtin_mul_overflow(static_cast<std::int64_t>(months), 30, &month_days)) return false;
  if (__builtin_add_overflow(month_days, static_cast<std::int64_t>(days), &total_days)) return false;
  if (__builtin_mul_overflow(total_days, kDayUs, &days_us)) return false;
  return !__builtin_add_overflow(days_us, time, out);
}

}  // namespace config_guard::core
