// The differences between the PostgreSQL majors config_guard builds against
// (15, 17 and 18), in one place: the rest of the code calls these and never
// tests PG_VERSION_NUM itself.
#pragma once

#include "pg.hpp"

extern "C" {
#include "access/genam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "executor/executor.h"
#include "nodes/parsenodes.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/guc_tables.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/wait_event.h"
}

namespace config_guard::compat {

// A backend's slot in the proc array (PGPROC.pgprocno until 17).
inline int ProcNumberOf(PGPROC* proc) {
#if PG_VERSION_NUM >= 170000
  return GetNumberFromPGProc(proc);
#else
  return proc->pgprocno;
#endif
}

// Ownership and privilege checks (object_ownercheck/object_aclcheck from 16).
inline bool OwnsFunction(Oid function, Oid role) {
#if PG_VERSION_NUM >= 160000
  return object_ownercheck(ProcedureRelationId, function, role);
#else
  return pg_proc_ownercheck(function, role);
#endif
}

inline bool OwnsRelation(Oid relid, Oid role) {
#if PG_VERSION_NUM >= 160000
  return object_ownercheck(RelationRelationId, relid, role);
#else
  return pg_class_ownercheck(relid, role);
#endif
}

inline AclResult FunctionAclCheck(Oid function, Oid role, AclMode mode) {
#if PG_VERSION_NUM >= 160000
  return object_aclcheck(ProcedureRelationId, function, role, mode);
#else
  return pg_proc_aclcheck(function, role, mode);
#endif
}

// The primary key's index (a deferrable one is not the key, from 18 asked).
inline Oid PrimaryKeyIndex(Relation rel) {
#if PG_VERSION_NUM >= 180000
  return RelationGetPrimaryKeyIndex(rel, false);
#else
  return RelationGetPrimaryKeyIndex(rel);
#endif
}

// ExecutorRun hooks: 18 dropped execute_once.
#if PG_VERSION_NUM >= 180000
#define CG_EXECUTOR_RUN_PARAMS QueryDesc *query, ScanDirection direction, uint64 count
#define CG_EXECUTOR_RUN_ARGS query, direction, count
#else
#define CG_EXECUTOR_RUN_PARAMS QueryDesc *query, ScanDirection direction, uint64 count, bool execute_once
#define CG_EXECUTOR_RUN_ARGS query, direction, count, execute_once
#endif

// The executor's permission check hook: from 16 the permissions live in
// RTEPermissionInfo entries beside the range table. `ForEachRelationRead`
// calls `read(relid)` for every relation the statement reads (needs SELECT),
// views included.
#if PG_VERSION_NUM >= 160000
#define CG_CHECK_PERMS_PARAMS List *range_table, List *permission_infos, bool ereport_on_violation
#define CG_CHECK_PERMS_ARGS range_table, permission_infos, ereport_on_violation
#define CG_CHECK_PERMS_INFOS permission_infos
template <typename Read>
void ForEachRelationRead(List* range_table, List* permission_infos, Read read) {
  (void)range_table;
  ListCell* lc;
  foreach (lc, permission_infos) {
    const auto* info = static_cast<const RTEPermissionInfo*>(lfirst(lc));
    if ((info->requiredPerms & ACL_SELECT) != 0) read(info->relid, get_rel_relkind(info->relid));
  }
}
#else
#define CG_CHECK_PERMS_PARAMS List *range_table, bool ereport_on_violation
#define CG_CHECK_PERMS_ARGS range_table, ereport_on_violation
#define CG_CHECK_PERMS_INFOS NIL
template <typename Read>
void ForEachRelationRead(List* range_table, List* /* permission_infos */, Read read) {
  ListCell* lc;
  foreach (lc, range_table) {
    const auto* rte = static_cast<const RangeTblEntry*>(lfirst(lc));
    if (rte->rtekind == RTE_RELATION && (rte->requiredPerms & ACL_SELECT) != 0) read(rte->relid, rte->relkind);
  }
}
#endif

// Index entries for a new heap tuple in every index of the table (16 added
// the summarizing-only flag).
inline void InsertIndexTuples(ResultRelInfo* result, TupleTableSlot* slot, EState* estate) {
#if PG_VERSION_NUM >= 160000
  ExecInsertIndexTuples(result, slot, estate, false, false, nullptr, NIL, false);
#else
  ExecInsertIndexTuples(result, slot, estate, false, false, nullptr, NIL);
#endif
}

// An index scan (18 added the scan's instrumentation, none here).
inline IndexScanDesc BeginIndexScan(Relation heap, Relation index, Snapshot snapshot, int nkeys) {
#if PG_VERSION_NUM >= 180000
  return index_beginscan(heap, index, snapshot, nullptr, nkeys, 0);
#else
  return index_beginscan(heap, index, snapshot, nkeys, 0);
#endif
}

// Every setting the server knows, and how many (get_guc_variables() counts
// them itself from 16).
inline struct config_generic** GucVariables(int* count) {
#if PG_VERSION_NUM >= 160000
  return get_guc_variables(count);
#else
  *count = GetNumConfigOptions();
  return get_guc_variables();
#endif
}

// A wait event of config_guard's own, named in pg_stat_activity from 17
// (before, every such wait shows as Extension). Registered at the first wait
// of a backend, remembered in `*cache`.
inline uint32 WaitEvent(uint32* cache, const char* name) {
#if PG_VERSION_NUM >= 170000
  if (*cache == 0) *cache = WaitEventExtensionNew(name);
  return *cache;
#else
  (void)cache;
  (void)name;
  return PG_WAIT_EXTENSION;
#endif
}

}  // namespace config_guard::compat
