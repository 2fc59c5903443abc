#include "core/hash.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

using config_guard::core::Hash64;

TEST(Hash64, DeterministicAndSeeded) {
  EXPECT_EQ(Hash64("tenant", 6, 1), Hash64("tenant", 6, 1));
  EXPECT_NE(Hash64("tenant", 6, 1), Hash64("tenant", 6, 2));
}

TEST(Hash64, DistinguishesLengthsAndTrailingZeros) {
  const char buf[2] = {'a', '\0'};
  EXPECT_NE(Hash64(buf, 1, 0), Hash64(buf, 2, 0));
  EXPECT_NE(Hash64("", 0, 0), Hash64(buf + 1, 1, 0));
}

TEST(Hash64, NoCollisionsOnSequentialKeys) {
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 100000; ++i) {
    const std::string s = std::to_string(i);
    ASSERT_TRUE(seen.insert(Hash64(s.data(), s.size(), 0)).second) << s;
  }
}
