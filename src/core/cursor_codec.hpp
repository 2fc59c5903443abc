// The export cursor: an opaque, versioned, authenticated token that names the
// position after the last row returned, bound to one config definition, one
// tenant and one database.
//
// Text form: base64url (no padding) of
//   u8  version            (kCursorVersion)
//   u32 config_id          (registry id; a redefined config gets a new id)
//   u64 tenant_hash        (Hash64 of the tenant's canonical text)
//   u64 generation         (the tenant's configuration generation, 0 if unknown)
//   u16 source_index       (position of the source in the config, from 0)
//   u16 nkeys              (primary-key columns that follow)
//   nkeys x { u32 length, bytes }   (each key's image: the bytes of its datum)
//   u64 mac                (SipHash-2-4 under the server's secret key of
//                           everything before it, then the binding)
// All integers little-endian. The binding is what the caller ties the cursor
// to beyond its own bytes (the database and the config definition's
// identity): it is authenticated but not carried. Without the key nobody can
// issue a cursor, alter one, or move one to another database or definition.
// Decoding never reads outside its input, accepts only the canonical text of
// a valid token, and allocates nothing.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstddef>
#include <cstdint>

#include "core/siphash.hpp"

namespace config_guard::core {

constexpr std::uint8_t kCursorVersion = 2;
constexpr std::size_t kMaxCursorKeys = 32;
// Longer inputs are refused before any decoding work.
constexpr std::size_t kMaxCursorTextLength = 65536;

struct KeyText {
  const char* data;
  std::uint32_t len;
};

// The server's secret and what a cursor is bound to besides its own bytes.
struct CursorAuth {
  const std::uint8_t (*key)[kSipKeySize];
  const void* binding;
  std::size_t binding_len;
};

struct CursorFields {
  std::uint32_t config_id = 0;
  std::uint64_t tenant_hash = 0;
  std::uint64_t generation = 0;
  std::uint16_t source_index = 0;
  std::uint16_t nkeys = 0;
  KeyText keys[kMaxCursorKeys] = {};
};

enum class CursorError {
  kNone,
  kEmpty,
  kTooLong,
  kBadCharacter,
  kBadLength,
  kTooShort,
  kUnknownVersion,
  kNotAuthentic,
  kMalformed,
};

// Human-readable reason, lower case, for an error DETAIL.
const char* CursorErrorMessage(CursorError error);

// Bytes of the binary form and characters of the text form of `fields`.
std::size_t CursorBinarySize(const CursorFields& fields);
std::size_t CursorTextSize(const CursorFields& fields);

// Writes exactly CursorTextSize(fields) characters (no terminator) to `out`,
// using `scratch` (CursorBinarySize(fields) bytes) for the binary form.
// Requires fields.nkeys <= kMaxCursorKeys.
void EncodeCursor(const CursorFields& fields, const CursorAuth& auth, unsigned char* scratch, char* out);

// Scratch bytes DecodeCursor needs for an input of `text_len` characters.
std::size_t CursorScratchSize(std::size_t text_len);

// Decodes `text`; on success the key pointers in `out` point into `scratch`.
// kNotAuthentic means well formed but not issued under `auth`: `out` is then
// filled too, untrusted, so that the caller can say which binding differs.
CursorError DecodeCursor(const char* text, std::size_t text_len, const CursorAuth& auth, unsigned char* scratch,
                         CursorFields* out);

}  // namespace config_guard::core
