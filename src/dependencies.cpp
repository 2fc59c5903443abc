// What a config depends on, enforced: its builder function, its source
// tables and their tenant columns.
//
// A config is a row of config_guard.configs, not a catalog object, so
// pg_depend cannot record these dependencies. The object access hook sees
// every drop, however it is reached (DROP FUNCTION, DROP TABLE, DROP SCHEMA
// ... CASCADE, DROP OWNED, ALTER TABLE ... DROP COLUMN, dropping a type that
// a tenant column has), and the utility hook sees a rename of a tenant
// column; each is refused with 2BP01 and a message that names the config.
// The owner needs nothing here: a config is owned by its builder's owner, so
// Postgres itself refuses DROP ROLE of that role, and REASSIGN OWNED carries
// the config along with the builder.
//
// define() locks the builder and the sources until it commits, and the checks
// here read the registry under a fresh snapshot after the drop's own lock was
// granted, so a drop that races a define() either waits and then sees it, or
// commits first and define() fails.
#include "gateway.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_proc_d.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

object_access_hook_type prev_object_access = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

// The extension's namespace in this database, or InvalidOid where it is not
// installed (or is being dropped): then nothing depends on anything.
Oid InstalledNamespace() {
  const Oid nsp = get_namespace_oid("config_guard", true);
  if (!OidIsValid(nsp) || !OidIsValid(get_relname_relid("configs", nsp)) ||
      !OidIsValid(get_relname_relid("config_sources", nsp)))
    return InvalidOid;
  return nsp;
}

// Objects that can never be a builder or a source: the extension's own, and
// temporary ones (dropped at every session's end).
bool Exempt(Oid object_namespace, Oid extension_namespace) {
  return object_namespace == extension_namespace || isAnyTempNamespace(object_namespace);
}

[[noreturn]] void Refuse(const char* what, const char* verb, const char* config, const char* how) {
  ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                  errmsg("cannot %s %s because config \"%s\" depends on it", verb, what, config), errdetail("%s", how),
                  errhint("Undefine the config first with config_guard.undefine('%s').", config)));
}

// Name of the first config whose builder is `function`, or nullptr.
char* ConfigOfBuilder(Oid function) {
  Datum args[1] = {ObjectIdGetDatum(function)};
  if (RunAsOwner(Stmt::kConfigsOfBuilder, args) == 0) return nullptr;
  return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

// Name of the first config that has `relid` as a source and, when `column`
// is given, that column as its tenant column; nullptr if none.
char* ConfigOfSource(Oid relid, const char* column) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  const uint64 n = RunAsOwner(Stmt::kConfigsOfSource, args);
  for (uint64 i = 0; i < n; ++i) {
    if (column == nullptr || strcmp(SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2), column) == 0)
      return SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
  }
  return nullptr;
}

// Looks the registry up under a fresh snapshot (see the top of the file).
template <typename Check>
void WithRegistry(Check check) {
  SPI_connect();
  PushActiveSnapshot(GetLatestSnapshot());
  check();
  PopActiveSnapshot();
  SPI_finish();
}

void CheckDrop(Oid class_id, Oid object_id, int sub_id) {
  if (class_id != ProcedureRelationId && class_id != RelationRelationId) return;
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace)) return;
  const ObjectAddress object = {class_id, object_id, sub_id};

  if (class_id == ProcedureRelationId) {
    if (Exempt(get_func_namespace(object_id), extension_namespace)) return;
    WithRegistry([&] {
      if (char* config = ConfigOfBuilder(object_id))
        Refuse(getObjectDescription(&object, false), "drop", config,
               "The function is the config's builder: get() calls it to rebuild every document.");
    });
    return;
  }
  if (Exempt(get_rel_namespace(object_id), extension_namespace)) return;
  WithRegistry([&] {
    if (sub_id == 0) {
      if (char* config = ConfigOfSource(object_id, nullptr))
        Refuse(getObjectDescription(&object, false), "drop", config,
               "The table is a source of the config: its triggers keep the config's documents fresh.");
    } else if (const char* column = get_attname(object_id, sub_id, true)) {
      if (char* config = ConfigOfSource(object_id, column))
        Refuse(getObjectDescription(&object, false), "drop", config, "The column is the config's tenant column.");
    }
  });
}

void ObjectAccess(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (prev_object_access != nullptr) prev_object_access(access, class_id, object_id, sub_id, arg);
  if (access == OAT_DROP) CheckDrop(class_id, object_id, sub_id);
}

void CheckRename(const RenameStmt* stmt) {
  if (stmt->renameType != OBJECT_COLUMN || stmt->relation == nullptr) return;
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace)) return;
  // No lock here: the rename takes its own, and checks ownership first.
  const Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
  if (!OidIsValid(relid) || Exempt(get_rel_namespace(relid), extension_namespace)) return;
  WithRegistry([&] {
    if (char* config = ConfigOfSource(relid, stmt->subname)) {
      const ObjectAddress column = {RelationRelationId, relid, get_attnum(relid, stmt->subname)};
      Refuse(getObjectDescription(&column, false), "rename", config, "The column is the config's tenant column.");
    }
  });
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  if (IsA(pstmt->utilityStmt, RenameStmt)) CheckRename(castNode(RenameStmt, pstmt->utilityStmt));
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
}

}  // namespace

void InitDependencies() {
  prev_object_access = object_access_hook;
  object_access_hook = ObjectAccess;
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
}

}  // namespace config_guard
