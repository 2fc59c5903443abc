// Hashing used by the cursor format and the tenant binding.
//
// Pure C++: no Postgres header may be included before this file.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstddef>
#include <cstdint>

namespace config_guard::core {

// A 64-bit non-cryptographic hash with full avalanche. It detects altered or
// truncated cursors; it is not a MAC (the tenant filter of every query comes
// from the call, never from the cursor, so a forged cursor cannot widen access).
std::uint64_t Hash64(const void* data, std::size_t len, std::uint64_t seed);

}  // namespace config_guard::core
