#include "read_check.hpp"
#include "pg_compat.hpp"

#include "builder.hpp"
#include "registry.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/catalog.h"
#include "catalog/indexing.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_inherits.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
}

namespace config_guard {
namespace {

ExecutorCheckPerms_hook_type previous_check_perms = nullptr;

bool IsListed(const ConfigDef& def, Oid relid) {
  for (int i = 0; i < def.nsources; ++i) {
    if (def.sources[i].shape.relid == relid) return true;
  }
  for (int i = 0; i < def.nshared; ++i) {
    if (def.shared_sources[i] == relid) return true;
  }
  for (int i = 0; i < def.nchildren; ++i) {
    if (def.children[i] == relid) return true;
  }
  return false;
}

// Whether the config's triggers see every change of `relid`: it is a source
// or a shared source, or a partition or inheritance child of one at any depth
// (which define() and the partition hooks gave the triggers).
bool Covers(const ConfigDef& def, Oid relid, int depth = 0) {
  if (IsListed(def, relid)) return true;
  if (depth > 64) return false;  // no deeper tree exists; a loop cannot either
  Relation inherits = table_open(InheritsRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_inherits_inhrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(inherits, InheritsRelidSeqnoIndexId, true, nullptr, 1, &key);
  bool covered = false;
  while (HeapTuple tuple = systable_getnext(scan)) {
    const Oid parent = reinterpret_cast<Form_pg_inherits>(GETSTRUCT(tuple))->inhparent;
    if ((covered = Covers(def, parent, depth + 1))) break;
  }
  systable_endscan(scan);
  table_close(inherits, AccessShareLock);
  return covered;
}

// (A relation dropped since the config was cached has no name left.)
const char* QualifiedName(Oid relid) {
  const char* name = get_rel_name(relid);
  const char* schema = name != nullptr ? get_namespace_name(get_rel_namespace(relid)) : nullptr;
  if (name == nullptr || schema == nullptr) return psprintf("with oid %u", relid);
  return quote_qualified_identifier(schema, name);
}

}  // namespace

[[noreturn]] void RefuseRead(const ConfigDef& def, Oid relid) {
  // A builder that catches the error still fails its build (builder.cpp).
  NoteRefusedRead(relid);
  const char kind = get_rel_relkind(relid);
  const bool coverable = (kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE) &&
                         get_rel_persistence(relid) == RELPERSISTENCE_PERMANENT && !IsCatalogRelationOid(relid);
  if (coverable)
    ereport(ERROR,
            (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
             errmsg("builder of config \"%s\" reads table %s, which is not a source of the config", def.name,
                    QualifiedName(relid)),
             errdetail("No invalidation trigger of the config sees its changes: documents built from it would go "
                       "stale."),
             errhint("Define the config with the table among its sources (it has the tenant column) or its "
                     "shared_sources (every change to it invalidates every tenant).")));
  ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                  errmsg("builder of config \"%s\" reads relation %s, which cannot be a source", def.name,
                         QualifiedName(relid)),
                  errdetail("It is a materialized view, a foreign, unlogged or temporary table, a sequence or a "
                            "catalog: its changes fire no trigger, so documents built from it would go stale.")));
}

namespace {

// Every relation a statement reads (the range table entries that need SELECT:
// tables named in the query, in the views it reads, in row-level security
// policies), while a builder's own code runs.
bool CheckBuilderReads(CG_CHECK_PERMS_PARAMS) {
  if (previous_check_perms != nullptr && !previous_check_perms(CG_CHECK_PERMS_ARGS)) return false;
  const ConfigDef* def = BuilderCodeRunning();
  if (def == nullptr) return true;
  compat::ForEachRelationRead(range_table, CG_CHECK_PERMS_INFOS, [&](Oid relid, char relkind) {
    // A view's own tables follow it in the range table.
    if (relkind != RELKIND_VIEW && !Covers(*def, relid)) RefuseRead(*def, relid);
  });
  return true;
}

}  // namespace

void InitReadCheck() {
  previous_check_perms = ExecutorCheckPerms_hook;
  ExecutorCheckPerms_hook = CheckBuilderReads;
}

void CheckNestedConfig(const ConfigDef& inner) {
  const ConfigDef* outer = BuilderCodeRunning();
  if (outer == nullptr || outer->config_id == inner.config_id) return;
  for (int i = 0; i < inner.nsources; ++i) {
    if (!Covers(*outer, inner.sources[i].shape.relid)) RefuseRead(*outer, inner.sources[i].shape.relid);
  }
  for (int i = 0; i < inner.nshared; ++i) {
    if (!Covers(*outer, inner.shared_sources[i])) RefuseRead(*outer, inner.shared_sources[i]);
  }
  for (int i = 0; i < inner.nchildren; ++i) {
    if (!Covers(*outer, inner.children[i])) RefuseRead(*outer, inner.children[i]);
  }
}

}  // namespace config_guard
