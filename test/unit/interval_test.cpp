#include "core/interval.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

using config_guard::core::IntervalMicroseconds;

TEST(Interval, CountsMonthsAsThirtyDays) {
  std::int64_t us = 0;
  ASSERT_TRUE(IntervalMicroseconds(1, 2, 3, &us));
  EXPECT_EQ(us, 32LL * 86400 * 1000000 + 3);
  ASSERT_TRUE(IntervalMicroseconds(0, 0, -5, &us));
  EXPECT_EQ(us, -5);
}

TEST(Interval, RefusesWhatDoesNotFit) {
  std::int64_t us = 0;
  const std::int32_t max32 = std::numeric_limits<std::int32_t>::max();
  const std::int64_t max64 = std::numeric_limits<std::int64_t>::max();
  EXPECT_FALSE(IntervalMicroseconds(max32, 0, 0, &us));
  EXPECT_FALSE(IntervalMicroseconds(0, max32, 0, &us));
  EXPECT_FALSE(IntervalMicroseconds(0, 1, max64, &us));
  EXPECT_FALSE(IntervalMicroseconds(0, -1, std::numeric_limits<std::int64_t>::min(), &us));
  ASSERT_TRUE(IntervalMicroseconds(0, 0, max64, &us));
  EXPECT_EQ(us, max64);
  // 292,000 years still fit; a million years of months do not
  ASSERT_TRUE(IntervalMicroseconds(12 * 290000, 0, 0, &us));
  EXPECT_FALSE(IntervalMicroseconds(12 * 1000000, 0, 0, &us));
}
