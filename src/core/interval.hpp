// Checked arithmetic on Postgres intervals, which Postgres stores as months,
// days and microseconds. Durations count a month as 30 days and a day as 24
// hours, as Postgres does when it turns an interval into a timeout.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstdint>

namespace config_guard::core {

// The interval's length in microseconds; false if it does not fit in 64 bits.
bool IntervalMicroseconds(std::int32_t months, std::int32_t days, std::int64_t time, std::int64_t* out);

}  // namespace config_guard::core
