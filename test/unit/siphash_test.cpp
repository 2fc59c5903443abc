#include "core/siphash.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
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

// The 128-bit output's vectors of the reference implementation (vectors.h,
// vectors_sip128), the same key and messages, as the bytes it outputs.
TEST(SipHash24, ReferenceVectors128) {
  const ReferenceKey key;
  const char* const expected[] = {"a3817f04ba25a8e66df67214c7550293", "da87c1d86b99af44347659119b22fc45",
                                  "8177228da4a45dc7fca38bdef60affe4", "9c70b60c5267a94e5f33b6b02985ed51",
                                  "f88164c12d9c8faf7d0f6e7c7bcd5579", "1368875980776f8854527a07690e9627",
                                  "14eeca338b208613485ea0308fd7a15e", "a1f1ebbed8dbc153c0b84aa61ff08239",
                                  "3b62a9ba6258f5610f83e264f31497b4", "264499060ad9baabc47f8b02bb6d71ed"};
  std::vector<std::uint8_t> message;
  for (const char* hex : expected) {
    SipHash24 h(key.bytes, true);
    h.Update(message.data(), message.size());
    const config_guard::core::Sip128 out = h.Final128();
    char got[33];
    for (int i = 0; i < 16; ++i)
      snprintf(got + 2 * i, 3, "%02x", static_cast<unsigned>(((i < 8 ? out.low : out.high) >> (8 * (i % 8))) & 0xff));
    EXPECT_STREQ(got, hex) << "length " << message.size();
    message.push_back(static_cast<std::uint8_t>(message.size()));
  }
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
