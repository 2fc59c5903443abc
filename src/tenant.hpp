// A tenant key as the caller passed it (anyelement), converted to the type of
// the config's tenant column, with its canonical text and the hash a cursor
// is bound to.
#pragma once

#include <cstdint>

#include "registry.hpp"

namespace config_guard {

struct TenantKey {
  Datum value;
  char* text;  // canonical text of the tenant column's type
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

}  // namespace config_guard
