// What config_guard needs to know about one source table: its tenant column,
// the primary-key columns that order a tenant's rows (the "keyset"), and proof
// that a btree index serves (tenant, keyset...) so every export page is one
// index seek. Used by define() to validate and by the registry to reload.
#pragma once

#include "pg.hpp"

extern "C" {
#include "access/attnum.h"
#include "nodes/pg_list.h"
}

namespace config_guard {

struct SourceShape {
  Oid relid;
  char* qualified_name;  // quoted, schema-qualified: safe to paste into SQL
  // A child source reaches its tenant through its parents (source_chain.hpp):
  // its rows `s` join `tenant_joins`, and `tenant_expr` names their tenant
  // (for other sources, "" and s.<tenant column>).
  bool child;
  const char* tenant_joins;
  const char* tenant_expr;
  AttrNumber tenant_attnum;  // InvalidAttrNumber for a child
  Oid tenant_type;
  int nkeys;  // primary-key columns other than the tenant column (a child: its foreign key's first)
  AttrNumber key_attnums[INDEX_MAX_KEYS];
  Oid key_types[INDEX_MAX_KEYS];
  char* key_names[INDEX_MAX_KEYS];  // quoted identifiers
};

// Fills `shape` for `relid`, or raises a clear error (wrong relkind, missing
// tenant column, no primary key, no supporting index: the HINT then gives the
// exact CREATE INDEX). Allocates in CurrentMemoryContext.
void DescribeSource(Oid relid, const char* tenant_column, SourceShape* shape);

// Fills `shape` for a child source reaching its tenant through `chain`, or
// raises (no primary key, no index on its foreign key's columns followed by
// the primary key's others: the HINT gives the CREATE INDEX).
void DescribeChildSource(Oid relid, List* chain, const char* tenant_column, Oid tenant_type, SourceShape* shape);

// Checks a shared source (a table every tenant reads, without a tenant
// column): a permanent ordinary or partitioned table, not a partition.
void DescribeSharedSource(Oid relid);

}  // namespace config_guard
