// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed pseudorandom function
// with a 128-bit key and a 64-bit output, built for authenticating short
// messages. config_guard uses it as the MAC of its export cursors, so that
// only the server that holds the key can issue one, and in its 128-bit output
// form (the reference implementation's, with its vectors) as the digest of a
// covered tenant, which no role can aim at another tenant's.
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

struct Sip128 {
  std::uint64_t low;   // the first 8 bytes of the reference output, little-endian
  std::uint64_t high;  // the last 8
};

// Incremental form: Update() any number of times, then Final() once (or,
// made `wide`, Final128() once).
class SipHash24 {
 public:
  explicit SipHash24(const std::uint8_t (&key)[kSipKeySize], bool wide = false);
  void Update(const void* data, std::size_t len);
  std::uint64_t Final();
  Sip128 Final128();

 private:
  void Round();
  void Compress(std::uint64_t m);

  std::uint64_t v0_, v1_, v2_, v3_;
  std::uint64_t pending_ = 0;  // bytes not yet compressed, little-endian
  std::size_t total_ = 0;      // message length so far
  bool wide_;
};

}  // namespace config_guard::core
