#include "core/siphash.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

using config_guard::core::kSipKeySize;
using config_guard::core::SipHash24;

namespace {

std::uint64_t OneShot(const std::uint8_t (&key)[kSipKeySize], const std::vector<std::uint8_t>& message) {
  SipHash24 h(key);
  h.Update(message.data(), message.size());
  return h.Final();
}

struct ReferenceKey {
  std::uint8_t bytes[kSipKeySize];
  ReferenceKey() {
    for (std::size_t i = 0; i < kSipKeySize; ++i) bytes[i] = static_cast<std::uint8_t>(i);
  }
};

}  // namespace

// The reference vectors of the SipHash paper: key 00 01 .. 0f, message
// 00 01 .. (n-1).
TEST(SipHash24, ReferenceVectors) {
  const ReferenceKey key;
  std::vector<std::uint8_t> message;
  EXPECT_EQ(OneShot(key.bytes, message), 0x726fdb47dd0e0e31ULL);
  for (std::uint8_t i = 0; i < 15; ++i) message.push_back(i);
  EXPECT_EQ(OneShot(key.bytes, message), 0xa129ca6149be45e5ULL);
}

TEST(SipHash24, IncrementalEqualsOneShot) {
  const ReferenceKey key;
  std::vector<std::uint8_t> message;
  for (int i = 0; i < 100; ++i) message.push_back(static_cast<std::uint8_t>(i * 7));
  const std::uint64_t whole = OneShot(key.bytes, message);
  for (std::size_t split = 0; split <= message.size(); split += 3) {
    SipHash24 h(key.bytes);
    h.Update(message.data(), split);
    h.Update(message.data() + split, message.size() - split);
    EXPECT_EQ(h.Final(), whole) << "split at " << split;
  }
}

TEST(SipHash24, EveryKeyBitMatters) {
  const ReferenceKey key;
  const std::vector<std::uint8_t> message = {'c', 'u', 'r', 's', 'o', 'r'};
  const std::uint64_t base = OneShot(key.bytes, message);
  for (std::size_t bit = 0; bit < kSipKeySize * 8; ++bit) {
    ReferenceKey flipped;
    flipped.bytes[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    EXPECT_NE(OneShot(flipped.bytes, message), base) << "bit " << bit;
  }
}
