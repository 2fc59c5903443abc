// The SQL of one export page of one source, and its prepared plan.
//
//   SELECT s, s.k1, ... FROM source s
//   WHERE s.tenant = $1 [AND (s.k1, ...) > ($3, ...)]
//   ORDER BY s.tenant, s.k1, ... LIMIT $2
//
// With the index define() requires, this is one btree seek to the start key
// followed by an in-order scan of at most $2 entries: no Sort, no OFFSET.
// Identifiers are quoted and operators schema-qualified, so neither unusual
// names nor the caller's search_path change what runs.
#pragma once

#include "registry.hpp"

namespace config_guard {

char* PageQuery(const ConfigDef& def, const SourceDef& src, bool after_key);

// Prepared once per backend, always planned generically, and kept with the
// cached ConfigDef.
SPIPlanPtr PagePlan(const ConfigDef& def, SourceDef* src, bool after_key);

}  // namespace config_guard
