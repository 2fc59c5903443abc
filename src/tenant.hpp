// A tenant key as the caller passed it (anyelement), converted to the type of
// the config's tenant column, with its canonical text and the hash a cursor
// is bound to.
#pragma once

#include <cstdint>

#include "registry.hpp"

namespace config_guard {

// Longer keys could not be indexed in config_guard.documents: get() refuses
// them (54000), and the trigger skips them (no document can exist for them).
constexpr int kMaxTenantKeyBytes = 2048;

struct TenantKey {
  Datum value;
  char* text;     // the canonical key (canonical_key.hpp): what documents and marks are keyed by
  char* display;  // the value as its type prints it, for messages
  std::uint64_t hash;
};

// The value of `text` as `type`, by the type's input function. Input of a
// type that is not built in may run code its owner wrote (a domain's CHECK
// constraints call functions), so it runs as the config's owner inside an
// IdentityScope, never with the caller's rights.
Datum InputValue(const ConfigDef& def, Oid type, char* text);

// Reads argument `argno`; NULL gives 22004, a value that does not convert to
// the tenant column's type gives that type's input error, with context.
TenantKey TenantFromArgument(FunctionCallInfo fcinfo, int argno, ConfigDef& def);

// The hash of a tenant's key text (TenantKey::hash).
uint64 TenantHash(const char* text);

}  // namespace config_guard
