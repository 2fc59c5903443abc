// Hashing of tenant keys (the rebuild lock, backoff slots, the cursor's tenant).
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstddef>
#include <cstdint>

namespace config_guard::core {

// A 64-bit non-cryptographic hash with full avalanche. Not a MAC: what must
// be unforgeable is authenticated with SipHash24 under a secret key.
std::uint64_t Hash64(const void* data, std::size_t len, std::uint64_t seed);

}  // namespace config_guard::core
