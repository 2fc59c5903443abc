// Child sources: tables without the tenant column that reach it through a
// chain of foreign keys to another source (variations -> experiments, whose
// account_id is the tenant). define() finds each child's foreign key to a
// parent source; the child's invalidation trigger finds the tenants of the
// rows a statement changed by joining its transition tables up that chain,
// locking the parent rows it passes (FOR SHARE): a parent moving to another
// tenant at the same time either waits for the child's transaction, whose
// marks are then already written, or has committed, and the lookup sees the
// parent's new tenant.
#pragma once

#include "pg.hpp"

extern "C" {
#include "nodes/pg_list.h"
}

namespace config_guard {

struct ChildLink {
  Oid child;
  Oid parent;
  Oid constraint;
  char name[NAMEDATALEN];  // the foreign key's name on the child
};

// For each of `children` (sources without the tenant column), the foreign
// key it reaches its tenant through: to a source in `with_tenant`, or to
// another child that does, nearest first; ties go to the first name in
// order. Says which with a NOTICE. 42703 naming the table if one has none.
void ResolveChildren(const Oid* with_tenant, int ntenant, const Oid* children, int nchildren, ChildLink* links,
                     const char* tenant_column);

// The query giving the tenant of every row in the transition tables
// config_guard_new / config_guard_old (whichever the statement has) of a
// table under child source `source`, through `chain` (the oids of the foreign
// keys, nearest first), locking the parent rows. nullptr if the chain no
// longer leads to a table with the tenant column (a parent redefined).
char* ChainLookupSql(List* chain, const char* tenant_column, bool with_new, bool with_old);

}  // namespace config_guard
