// What a config depends on, enforced: its builder function, its source
// tables and their tenant columns.
//
// A config is a row of config_guard.configs, not a catalog object, so
// pg_depend cannot record these dependencies. The object access hook sees
// every drop, however it is reached (DROP FUNCTION, DROP TABLE, DROP SCHEMA
// ... CASCADE, DROP OWNED, ALTER TABLE ... DROP COLUMN, dropping a type that
// a tenant column has), and every change of a column however it is reached
// (RENAME COLUMN, a rename recursing to inheritance children, ALTER TYPE ...
// RENAME ATTRIBUTE ... CASCADE on typed tables, ALTER COLUMN ... TYPE); a
// drop, rename or type change of what a config uses is refused with 2BP01
// and a message that names the config. Internal drops (the cleanup of a
// temporary schema at the end of a session) are never refused: they must not
// fail, and a config left without its builder can still be undefined.
// The owner needs nothing here: a config is owned by its builder's owner, so
// Postgres itself refuses DROP ROLE of that role, and REASSIGN OWNED carries
// the config along with the builder.
//
// define() locks the builder and the sources until it commits, and the checks
// here read the registry under a fresh snapshot after the drop's own lock was
// granted, so a drop that races a define() either waits and then sees it, or
// commits first and define() fails.
#include "gateway.hpp"
#include "invalidation.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_proc_d.h"
#include "catalog/pg_type_d.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

object_access_hook_type prev_object_access = nullptr;

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
// is given, that column as its tenant column; nullptr if none. With a column,
// *tenant_type is set to the config's tenant type.
char* ConfigOfSource(Oid relid, const char* column, Oid* tenant_type = nullptr) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  const uint64 n = RunAsOwner(Stmt::kConfigsOfSource, args);
  for (uint64 i = 0; i < n; ++i) {
    HeapTuple row = SPI_tuptable->vals[i];
    if (column == nullptr || strcmp(SPI_getvalue(row, SPI_tuptable->tupdesc, 2), column) == 0) {
      bool isnull = false;
      if (tenant_type != nullptr)
        *tenant_type = DatumGetObjectId(SPI_getbinval(row, SPI_tuptable->tupdesc, 3, &isnull));
      return SPI_getvalue(row, SPI_tuptable->tupdesc, 1);
    }
  }
  return nullptr;
}

// A column as the current command has left it, before any command counter
// increment makes the change visible to the catalog caches (which still show
// it as the command found it).
struct ColumnNow {
  NameData name;
  Oid type;
};

ColumnNow CurrentColumn(Oid relid, AttrNumber attnum) {
  ColumnNow now = {};
  Relation attributes = table_open(AttributeRelationId, AccessShareLock);
  ScanKeyData keys[2];
  ScanKeyInit(&keys[0], Anum_pg_attribute_attrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  ScanKeyInit(&keys[1], Anum_pg_attribute_attnum, BTEqualStrategyNumber, F_INT2EQ, Int16GetDatum(attnum));
  SysScanDesc scan = systable_beginscan(attributes, AttributeRelidNumIndexId, true, SnapshotSelf, 2, keys);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) {
    auto* att = reinterpret_cast<Form_pg_attribute>(GETSTRUCT(tuple));
    now.name = att->attname;
    now.type = att->atttypid;
  }
  systable_endscan(scan);
  table_close(attributes, AccessShareLock);
  return now;
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

void CheckDrop(Oid class_id, Oid object_id, int sub_id, const ObjectAccessDrop* drop) {
  if (class_id != ProcedureRelationId && class_id != RelationRelationId) return;
  if (drop != nullptr && (drop->dropflags & PERFORM_DELETION_INTERNAL) != 0) return;
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

// Every config with `relid` as a source: all its tenants are stale.
void InvalidateConfigsOfSource(Oid relid) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  const uint64 n = RunAsOwner(Stmt::kConfigsOfSource, args);
  SPITupleTable* configs = SPI_tuptable;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    InvalidateConfig(DatumGetInt32(SPI_getbinval(configs->vals[i], configs->tupdesc, 4, &isnull)));
  }
}

// A column of a table was added or altered. A tenant column that now has
// another name or type is refused. Anything else on a source may have
// rewritten or reinterpreted its rows without a trigger firing (ALTER COLUMN
// ... TYPE ... USING, ADD COLUMN ... DEFAULT): every tenant of its configs is
// invalidated, in the DDL's transaction.
void CheckColumnChange(Oid relid, AttrNumber attnum, bool created) {
  if (attnum <= 0) return;
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace) || Exempt(get_rel_namespace(relid), extension_namespace)) return;
  const char* column = created ? nullptr : get_attname(relid, attnum, true);  // as the command found it
  WithRegistry([&] {
    Oid tenant_type = InvalidOid;
    if (char* config = column != nullptr ? ConfigOfSource(relid, column, &tenant_type) : nullptr) {
      const ColumnNow now = CurrentColumn(relid, attnum);
      const ObjectAddress object = {RelationRelationId, relid, attnum};
      if (strcmp(NameStr(now.name), column) != 0)
        Refuse(getObjectDescription(&object, false), "rename", config, "The column is the config's tenant column.");
      if (now.type != tenant_type)
        Refuse(getObjectDescription(&object, false), "change the type of", config,
               "The column is the config's tenant column: its documents and marks are keyed by its values.");
    }
    InvalidateConfigsOfSource(relid);
  });
}

// A type was altered (an enum's label renamed, a composite's attribute): the
// rows of every source with a column of it may read differently now.
void CheckTypeChange(Oid type) {
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace)) return;
  WithRegistry([&] {
    Datum args[1] = {ObjectIdGetDatum(type)};
    const uint64 n = RunAsOwner(Stmt::kConfigsOfType, args);
    SPITupleTable* configs = SPI_tuptable;
    for (uint64 i = 0; i < n; ++i) {
      bool isnull = false;
      InvalidateConfig(DatumGetInt32(SPI_getbinval(configs->vals[i], configs->tupdesc, 1, &isnull)));
    }
  });
}

void ObjectAccess(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (prev_object_access != nullptr) prev_object_access(access, class_id, object_id, sub_id, arg);
  if (access == OAT_DROP) CheckDrop(class_id, object_id, sub_id, static_cast<ObjectAccessDrop*>(arg));
  const bool column = class_id == RelationRelationId && sub_id > 0;
  if ((access == OAT_POST_ALTER || access == OAT_POST_CREATE) && column)
    CheckColumnChange(object_id, sub_id, access == OAT_POST_CREATE);
  if (access == OAT_POST_ALTER && class_id == TypeRelationId) CheckTypeChange(object_id);
}

}  // namespace

void InitDependencies() {
  prev_object_access = object_access_hook;
  object_access_hook = ObjectAccess;
}

}  // namespace config_guard
