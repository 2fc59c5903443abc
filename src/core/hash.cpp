#include "core/hash.hpp"

#include <cstring>

namespace config_guard::core {
namespace {

constexpr std::uint64_t kMul1 = 0x9E3779B97F4A7C15ULL;
constexpr std::uint64_t kMul2 = 0xBF58476D1CE4E5B9ULL;
constexpr std::uint64_t kMul3 = 0x94D049BB133111EBULL;

std::uint64_t Mix(std::uint64_t x) {
  x ^= x >> 30;
  x *= kMul2;
  x ^= x >> 27;
  x *= kMul3;
  x ^= x >> 31;
  return x;
}

std::uint64_t Load64(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

std::uint64_t Hash64(const void* data, std::size_t len, std::uint64_t seed) {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint64_t h = Mix(seed ^ (static_cast<std::uint64_t>(len) * kMul1));
  while (len >= 8) {
    h = Mix(h ^ (Load64(p) * kMul1));
    p += 8;
    len -= 8;
  }
  std::uint64_t tail = 0;
  for (std::size_t i = 0; i < len; ++i) tail |= static_cast<std::uint64_t>(p[i]) << (8 * i);
  // The tail is mixed with its length so that "a" and "a\0" differ.
  return Mix(h ^ ((tail + len) * kMul1));
}

}  // namespace config_guard::core
