#include "core/siphash.hpp"

namespace config_guard::core {
namespace {

std::uint64_t Rotl(std::uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

std::uint64_t Load64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

SipHash24::SipHash24(const std::uint8_t (&key)[kSipKeySize], bool wide) : wide_(wide) {
  const std::uint64_t k0 = Load64(key);
  const std::uint64_t k1 = Load64(key + 8);
  v0_ = k0 ^ 0x736f6d6570736575ULL;
  v1_ = k1 ^ 0x646f72616e646f6dULL;
  v2_ = k0 ^ 0x6c7967656e657261ULL;
  v3_ = k1 ^ 0x7465646279746573ULL;
  if (wide_) v1_ ^= 0xee;
}

void SipHash24::Round() {
  v0_ += v1_;
  v1_ = Rotl(v1_, 13);
  v1_ ^= v0_;
  v0_ = Rotl(v0_, 32);
  v2_ += v3_;
  v3_ = Rotl(v3_, 16);
  v3_ ^= v2_;
  v0_ += v3_;
  v3_ = Rotl(v3_, 21);
  v3_ ^= v0_;
  v2_ += v1_;
  v1_ = Rotl(v1_, 17);
  v1_ ^= v2_;
  v2_ = Rotl(v2_, 32);
}

void SipHash24::Compress(std::uint64_t m) {
  v3_ ^= m;
  Round();
  Round();
  v0_ ^= m;
}

void SipHash24::Update(const void* data, std::size_t len) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  for (std::size_t i = 0; i < len; ++i) {
    pending_ |= static_cast<std::uint64_t>(p[i]) << (8 * (total_ % 8));
    ++total_;
    if (total_ % 8 == 0) {
      Compress(pending_);
      pending_ = 0;
    }
  }
}

std::uint64_t SipHash24::Final() {
  Compress(pending_ | (static_cast<std::uint64_t>(total_ & 0xff) << 56));
  v2_ ^= wide_ ? 0xee : 0xff;
  for (int i = 0; i < 4; ++i) Round();
  return v0_ ^ v1_ ^ v2_ ^ v3_;
}

Sip128 SipHash24::Final128() {
  Sip128 out;
  out.low = Final();
  v1_ ^= 0xdd;
  for (int i = 0; i < 4; ++i) Round();
  out.high = v0_ ^ v1_ ^ v2_ ^ v3_;
  return out;
}

}  // namespace config_guard::core
