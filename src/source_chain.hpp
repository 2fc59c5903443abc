// Child sources: tables without the tenant column that reach it through a
// chain of foreign keys to another source (variations -> experiments, whose
// account_id is the tenant). define() finds each child's foreign key to a
// parent source; the child's invalidation trigger finds the tenants of the
// rows a statement changed by joining its transition tables up that chain.
//
// Concurrency: the lookup locks the parent rows it passes FOR KEY SHARE, the
// lock a foreign key check takes, and define() requires every parent to have
// a unique index containing the column that ties it to its tenant (the tenant
// column, or its own foreign key to its parent): changing that column is then
// a key update, which waits for the lock. So a parent moving to another
// tenant either waits for the child's transaction (and marks both tenants
// after it) or has committed, and the lookup sees its new tenant. A changed
// row whose parent the lookup does not find (a deferred foreign key, a
// parent the transaction's snapshot does not show, a middle row that moved
// under the lookup) invalidates every tenant instead: never a silent miss.
#pragma once

#include "pg.hpp"

extern "C" {
#include "access/attnum.h"
#include "commands/trigger.h"
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
// another child that does, nearest first. Says which with a NOTICE. 42703
// naming the table if one has none, 0A000 if one has several, 55000 with the
// CREATE UNIQUE INDEX to run if a parent lacks the unique index above.
void ResolveChildren(const Oid* with_tenant, int ntenant, const Oid* children, int nchildren, ChildLink* links,
                     const char* tenant_column);

// The tenants of the rows a statement changed in a table under a child
// source, through `chain` (the oids of the foreign keys, nearest first): level
// by level, each locking the parents it finds FOR KEY SHARE as the parent
// table's owner, as a foreign key check does (one table per statement, so a
// parent that moved while the lookup waited for it is seen as it is now).
// Calls `add` with each tenant. False when a new row's chain was not found
// in full (every tenant must be invalidated), or the chain cannot be
// followed (`*broken` says why). The caller is connected to SPI.
bool FindChildTenants(const TriggerData* data, List* chain, const char* tenant_column,
                      void (*add)(void* arg, Datum tenant, Oid type), void* arg, const char** broken);

// How an export page of a child source (alias `s`) reaches the tenant: the
// parents joined up the chain, and the expression naming the tenant. 55000
// if the chain cannot be followed.
struct ChainPath {
  const char* joins;
  const char* tenant;
  int nkeys;  // the child's columns of its foreign key (the keyset starts with them)
  AttrNumber child_keys[INDEX_MAX_KEYS];
};
ChainPath BuildChainPath(List* chain, const char* tenant_column);

// The chain of `child` from define()'s links, nearest first.
List* ChainOf(Oid child, const ChildLink* links, int nlinks);

}  // namespace config_guard
