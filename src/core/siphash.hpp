// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function
// with a 128-bit key and a 64-bit output, built for authenticating short
// messages. config_guard uses it as the MAC of its export cursors, so that
// only the server that holds the key can issue one.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstddef>
#include <cstdint>

namespace config_guard::core {

constexpr std::size_t kSipKeySize = 16;

// Incremental form: Update() any number of times, then Final() once.
class SipHash24 {
 public:
  explicit SipHash24(const std::uint8_t (&key)[kSipKeySize]);
  void Update(const void* data, std::size_t len);
  std::uint64_t Final();

 private:
  void Round();
  void Compress(std::uint64_t m);

  std::uint64_t v0_, v1_, v2_, v3_;
  std::uint64_t pending_ = 0;  // bytes not yet compressed, little-endian
  std::size_t total_ = 0;      // message length so far
};

}  // namespace config_guard::core
