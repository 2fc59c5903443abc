// Canonical keys: a tenant value, or an export key value, as bytes that are
// the same in every session whatever its settings (TimeZone, DateStyle,
// extra_float_digits, client_encoding ...), so that writers and readers agree.
//
// The key is the value's image: the bytes of its datum, the very bytes btree
// deduplication compares. A type is accepted as a tenant or key column only
// when equal values have equal images (its btree operator class's equalimage
// support function says so, for the column's collation): integers, uuid,
// date, timestamps, enums, text and varchar under a deterministic collation.
// numeric (1.0 = 1.00), float8 (0 = -0), inet and text under a
// nondeterministic collation are refused at define().
//
// A tenant's key is stored as text: for the types whose output is already
// canonical (integers, oid, uuid, bool, text, varchar) that output, readable
// and the same as before 0.4; for the others \x and the image in hex.
#pragma once

#include "pg.hpp"

namespace config_guard {

struct KeyType {
  Oid type;  // the column's type (a domain's base type decides)
  int16 typlen;
  bool typbyval;
  bool readable;  // output text is the canonical key
  FmgrInfo output;
};

// 0A000 unless equal values of `type` under `collation` have equal images
// (42809 for a temporary type); `column` and `relation` name the column.
void RequireEqualImage(Oid type, Oid collation, const char* column, const char* relation);

void DescribeKeyType(Oid type, KeyType* key, MemoryContext cxt);

// The tenant key text of a (non-null) value of the type.
char* TenantKeyText(KeyType* key, Datum value);

// The image of a value, and a value from its image (for export cursors,
// whose MAC vouches for the bytes).
struct KeyImage {
  const char* data;
  uint32 len;
};
KeyImage ImageOf(const KeyType& key, Datum value);
Datum ValueFromImage(const KeyType& key, const char* data, uint32 len);

}  // namespace config_guard
