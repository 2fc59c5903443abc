#include "core/backoff.hpp"

#include <gtest/gtest.h>

using namespace config_guard::core;

TEST(Backoff, DoublesFromBaseAndCaps) {
  // With unit_random = 1 the delay is the full exponential value.
  EXPECT_EQ(BackoffDelayMs(1, 1000, 60000, 0.999999), 999);
  EXPECT_EQ(BackoffDelayMs(2, 1000, 60000, 1.0), 2000);
  EXPECT_EQ(BackoffDelayMs(3, 1000, 60000, 1.0), 4000);
  EXPECT_EQ(BackoffDelayMs(7, 1000, 60000, 1.0), 60000);
  EXPECT_EQ(BackoffDelayMs(1000, 1000, 60000, 1.0), 60000);
}

TEST(Backoff, JitterKeepsAtLeastHalf) {
  for (int f = 1; f < 10; ++f) {
    for (double r : {0.0, 0.25, 0.5, 0.99}) {
      const auto full = BackoffDelayMs(f, 500, 30000, 1.0);
      const auto d = BackoffDelayMs(f, 500, 30000, r);
      EXPECT_GE(d, full / 2) << f << " " << r;
      EXPECT_LE(d, full) << f << " " << r;
    }
  }
  EXPECT_LT(BackoffDelayMs(4, 1000, 60000, 0.0), BackoffDelayMs(4, 1000, 60000, 0.9));
}

TEST(Backoff, NoFailuresOrDisabledMeansNoDelay) {
  EXPECT_EQ(BackoffDelayMs(0, 1000, 60000, 0.5), 0);
  EXPECT_EQ(BackoffDelayMs(3, 0, 60000, 0.5), 0);
}

TEST(RateAlarm, WarnsOnceAMinuteAboveThreshold) {
  RateAlarm a;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(RecordRunAndCheck(&a, 100, 5));
  EXPECT_TRUE(RecordRunAndCheck(&a, 100, 5));   // sixth run in the window
  EXPECT_FALSE(RecordRunAndCheck(&a, 110, 5));  // already warned this minute
  // A new window starts counting again.
  EXPECT_FALSE(RecordRunAndCheck(&a, 161, 5));
  for (int i = 0; i < 4; ++i) RecordRunAndCheck(&a, 162, 5);
  EXPECT_TRUE(RecordRunAndCheck(&a, 163, 5));
}

TEST(RateAlarm, ZeroThresholdDisables) {
  RateAlarm a;
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(RecordRunAndCheck(&a, 5, 0));
}
