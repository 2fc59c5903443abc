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
#include "command_flag.hpp"
#include "builder_identity.hpp"
#include "gateway.hpp"
#include "invalidation.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "catalog/pg_class_d.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type_d.h"
#include "nodes/makefuncs.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

object_access_hook_type prev_object_access = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

// DROP EXTENSION config_guard drops the invalidation triggers along with
// their function: the only drop of them not refused besides config_guard's
// own (undefine, install_triggers), which InternalTriggerDdl() tells.
CommandFlag dropping_extension;
// On while an explicit DROP TRIGGER runs: a config's trigger on a partition
// or inheritance child goes with its table when that is dropped, never alone.
CommandFlag dropping_trigger;

// The extension's namespace in this database, or InvalidOid where it is not
// installed (or is being dropped): then nothing depends on anything.
Oid InstalledNamespace() {
  const Oid nsp = ExtensionNamespace();
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
  Datum args[2] = {ObjectIdGetDatum(function), BuilderHome()};
  if (RunAsOwner(Stmt::kConfigsOfBuilder, args) == 0) return nullptr;
  return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

// Name of the first config that has `relid` as a source and, when `column`
// is given, that column as its tenant column (a shared source has none);
// nullptr if none. With a column, *tenant_type is set to the config's tenant
// type.
char* ConfigOfSource(Oid relid, const char* column, Oid* tenant_type = nullptr) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  const uint64 n = RunAsOwner(Stmt::kConfigsOfSource, args);
  for (uint64 i = 0; i < n; ++i) {
    HeapTuple row = SPI_tuptable->vals[i];
    bool isnull = false;
    const bool shared = DatumGetBool(SPI_getbinval(row, SPI_tuptable->tupdesc, 5, &isnull)) && !isnull;
    if (column == nullptr || (!shared && strcmp(SPI_getvalue(row, SPI_tuptable->tupdesc, 2), column) == 0)) {
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
  Oid collation;
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
    now.collation = att->attcollation;
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

// The configs a registry query returned, by the column holding their ids.
List* ConfigIds(uint64 n, int column) {
  List* ids = NIL;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    ids = lappend_int(ids, DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, column, &isnull)));
  }
  return ids;
}

// The configs with a source above `relid`: it is one of its partitions or
// inheritance children, at any depth.
List* ConfigsAbove(Oid relid) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  return ConfigIds(RunAsOwner(Stmt::kConfigsAbove, args), 1);
}

// The name of a config with a source above `relid`, or nullptr.
char* ConfigAbove(Oid relid) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  if (RunAsOwner(Stmt::kConfigsAbove, args) == 0) return nullptr;
  return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
}

// Every config with `relid` as a source, or above it: all its tenants are
// stale.
void InvalidateConfigsOfSource(Oid relid) {
  Datum args[1] = {ObjectIdGetDatum(relid)};
  List* ids = list_concat(ConfigIds(RunAsOwner(Stmt::kConfigsOfSource, args), 4), ConfigsAbove(relid));
  ListCell* lc;
  foreach (lc, ids) InvalidateConfig(lfirst_int(lc));
}

// config_guard.invalidation_trigger(), in the extension's schema.
Oid OurTriggerFunction(Oid extension_namespace) {
  Oid argtypes[1] = {};
  return LookupFuncName(
      list_make2(makeString(get_namespace_name(extension_namespace)), makeString(pstrdup("invalidation_trigger"))), 0,
      argtypes, true);
}

// ENABLE TRIGGER ALL or USER (as a data-only restore ends) sets a config's
// triggers to fire on origin only: the row trigger for the apply worker then
// never fires, the statement triggers miss TRUNCATE under the apply worker.
// Each is put back in its mode after the statement.
void RestoreTriggerModes(Oid relid) {
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace) || get_rel_name(relid) == nullptr) return;
  const Oid ours = OurTriggerFunction(extension_namespace);
  List* names = NIL;
  Relation triggers = table_open(TriggerRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(triggers, TriggerRelidNameIndexId, true, nullptr, 1, &key);
  for (HeapTuple tuple; HeapTupleIsValid(tuple = systable_getnext(scan));) {
    auto* form = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
    if (form->tgenabled == TRIGGER_FIRES_ON_ORIGIN && form->tgfoid == ours)
      names = lappend(names, pstrdup(NameStr(form->tgname)));
  }
  systable_endscan(scan);
  table_close(triggers, AccessShareLock);
  ListCell* lc;
  if (names == NIL) return;
  WithRegistry([&] {
    foreach (lc, names) RestoreTriggerMode(relid, static_cast<char*>(lfirst(lc)));
  });
}

// A trigger's row, as the catalog caches show it (the state the current
// command found) or, with SnapshotSelf, as the command has left it.
struct TriggerRow {
  bool found;
  NameData name;
  Oid relid;
  char enabled;
  Oid function;
};

// Calls `read` with the row `oid` of a catalog (found through its oid index)
// as `snapshot` shows it, if there is one.
template <typename Read>
void ReadCatalogRow(Oid catalog, Oid oid_index, AttrNumber oid_column, Oid oid, Snapshot snapshot, Read read) {
  Relation rel = table_open(catalog, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, oid_column, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(oid));
  SysScanDesc scan = systable_beginscan(rel, oid_index, true, snapshot, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) read(tuple);
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
}

TriggerRow ReadTrigger(Oid trigger, Snapshot snapshot) {
  TriggerRow row = {};
  ReadCatalogRow(TriggerRelationId, TriggerOidIndexId, Anum_pg_trigger_oid, trigger, snapshot, [&](HeapTuple tuple) {
    auto* form = reinterpret_cast<Form_pg_trigger>(GETSTRUCT(tuple));
    row = {true, form->tgname, form->tgrelid, form->tgenabled, form->tgfoid};
  });
  return row;
}

// The config whose invalidation trigger this is (config_guard_<id>_<event>
// on one of its sources or on a partition or child of one), or nullptr;
// `direct` tells whether the trigger's table is a source itself.
char* ConfigOfTrigger(const TriggerRow& row, bool* direct = nullptr) {
  int32 config_id = 0;
  char event[16];
  if (!row.found || sscanf(NameStr(row.name), "config_guard_%d_%15s", &config_id, event) != 2) return nullptr;
  Datum args[2] = {Int32GetDatum(config_id), ObjectIdGetDatum(row.relid)};
  if (RunAsOwner(Stmt::kSourceColumn, args) == 0) return nullptr;
  bool isnull = false;
  if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull))) return nullptr;
  if (direct != nullptr)
    *direct = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
  return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
}

// The table a row-level security policy is on (InvalidOid if none is found).
Oid PolicyTable(Oid policy) {
  Oid relid = InvalidOid;
  Relation policies = table_open(PolicyRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_policy_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(policy));
  SysScanDesc scan = systable_beginscan(policies, PolicyOidIndexId, true, SnapshotSelf, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) relid = reinterpret_cast<Form_pg_policy>(GETSTRUCT(tuple))->polrelid;
  systable_endscan(scan);
  table_close(policies, AccessShareLock);
  return relid;
}

[[noreturn]] void RefuseTrigger(const TriggerRow& row, const char* verb, const char* config) {
  ereport(ERROR, (errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
                  errmsg("cannot %s an invalidation trigger of config \"%s\" on table %s", verb, config,
                         get_rel_name(row.relid)),
                  errdetail("Its triggers invalidate the config's documents when the table is written; "
                            "ENABLE ALWAYS TRIGGER is allowed."),
                  errhint("Undefine the config first with config_guard.undefine('%s').", config)));
}

// A config's trigger renamed, disabled, or set to fire only on a logical
// replica would stop invalidating (or, renamed, fail every write): refused.
// ENABLE ALWAYS (for logical subscribers) is allowed.
void CheckTriggerChange(Oid trigger) {
  if (!OidIsValid(InstalledNamespace()) || InternalTriggerDdl()) return;
  const TriggerRow before = ReadTrigger(trigger, nullptr);
  WithRegistry([&] {
    char* config = ConfigOfTrigger(before);
    if (config == nullptr) return;
    const TriggerRow now = ReadTrigger(trigger, SnapshotSelf);
    if (strcmp(NameStr(now.name), NameStr(before.name)) != 0) RefuseTrigger(before, "rename", config);
    // The statement triggers must fire outside replica mode. (One set to fire
    // on origin only is put back after the statement: RestoreTriggerModes.)
    if (now.enabled == TRIGGER_FIRES_ON_REPLICA && !IsReplicaTriggerName(NameStr(before.name)))
      RefuseTrigger(before, "disable", config);
    if (now.enabled == TRIGGER_DISABLED) {
      // A superuser may, as pg_restore --disable-triggers does for a
      // data-only restore: said loudly, never silently.
      if (!superuser()) RefuseTrigger(before, "disable", config);
      ereport(WARNING, (errmsg("an invalidation trigger of config \"%s\" on table %s is disabled", config,
                               get_rel_name(before.relid)),
                        errdetail("Writes to the table do not invalidate the config's documents while it is."),
                        errhint("Enable it again (ENABLE ALWAYS TRIGGER), then run "
                                "config_guard.invalidate_all('%s').",
                                config)));
    }
  });
}

// -- The foreign keys of child sources -------------------------------------------------
// A foreign key's table and name, as the catalog caches show it (the state
// the current command found) or, with SnapshotSelf, as the command has left
// it.
struct ForeignKeyRow {
  bool found;
  Oid relid;
  NameData name;
};

ForeignKeyRow ReadForeignKey(Oid constraint, Snapshot snapshot) {
  ForeignKeyRow row = {};
  ReadCatalogRow(ConstraintRelationId, ConstraintOidIndexId, Anum_pg_constraint_oid, constraint, snapshot,
                 [&](HeapTuple tuple) {
                   auto* form = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tuple));
                   if (form->contype == CONSTRAINT_FOREIGN) row = {true, form->conrelid, form->conname};
                 });
  return row;
}

// The first config whose child source reaches its tenant through this
// foreign key, or nullptr.
char* ConfigOfForeignKey(const ForeignKeyRow& row) {
  if (!row.found) return nullptr;
  Datum args[2] = {ObjectIdGetDatum(row.relid), NameGetDatum(&row.name)};
  if (RunAsOwner(Stmt::kConfigsOfForeignKey, args) == 0) return nullptr;
  return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

// A child source's foreign key dropped (also with its column or its parent
// table, CASCADE) or renamed: the child would lose its way to its tenant.
void CheckForeignKey(Oid constraint, bool dropping) {
  const ForeignKeyRow before = ReadForeignKey(constraint, nullptr);
  if (!before.found) return;
  WithRegistry([&] {
    char* config = ConfigOfForeignKey(before);
    if (config == nullptr) return;
    const char* what =
        psprintf("foreign key %s of table %s", quote_identifier(NameStr(before.name)), get_rel_name(before.relid));
    const char* why = "A source of the config reaches its tenant through it.";
    if (dropping) Refuse(what, "drop", config, why);
    const ForeignKeyRow now = ReadForeignKey(constraint, SnapshotSelf);
    if (now.found && strcmp(NameStr(now.name), NameStr(before.name)) != 0) Refuse(what, "rename", config, why);
  });
}

// A foreign key added to a child source, to another source of its config:
// a second way to a tenant, which the trigger would not follow (refused as
// define() refuses it).
void CheckForeignKeyCreate(Oid constraint) {
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace)) return;
  Oid child = InvalidOid;
  Oid parent = InvalidOid;
  NameData name = {};
  ReadCatalogRow(ConstraintRelationId, ConstraintOidIndexId, Anum_pg_constraint_oid, constraint, SnapshotSelf,
                 [&](HeapTuple tuple) {
                   auto* form = reinterpret_cast<Form_pg_constraint>(GETSTRUCT(tuple));
                   if (form->contype != CONSTRAINT_FOREIGN) return;
                   child = form->conrelid;
                   parent = form->confrelid;
                   name = form->conname;
                 });
  if (!OidIsValid(child) || Exempt(get_rel_namespace(child), extension_namespace)) return;
  WithRegistry([&] {
    Datum args[2] = {ObjectIdGetDatum(child), ObjectIdGetDatum(parent)};
    if (RunAsOwner(Stmt::kConfigsOfSecondWay, args) == 0) return;
    const char* config = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("foreign key %s would give child source %s of config \"%s\" a second way to a tenant",
                           quote_identifier(NameStr(name)), get_rel_name(child), config),
                    errdetail("Table %s is another source of the config: a row could belong to a tenant through "
                              "either foreign key, and its trigger follows one.",
                              get_rel_name(parent)),
                    errhint("Undefine the config, add the foreign key, and define it with the table as a shared "
                            "source.")));
  });
}

// Anything else altered on a source table itself (row-level security
// switched, options, a rewrite): its configs are invalidated, in the DDL's
// transaction. DDL is rare; a stale document is not an option.
void CheckTableChange(Oid relid) {
  // (config_guard's own trigger DDL changes nothing a builder reads; from 17
  // enabling a trigger reports the table altered.)
  if (InternalTriggerDdl()) return;
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace) || Exempt(get_rel_namespace(relid), extension_namespace)) return;
  WithRegistry([&] {
    if (get_rel_persistence(relid) == RELPERSISTENCE_UNLOGGED) {
      char* config = ConfigOfSource(relid, nullptr);
      if (config == nullptr) config = ConfigAbove(relid);
      if (config != nullptr) {
        const ObjectAddress object = {RelationRelationId, relid, 0};
        Refuse(getObjectDescription(&object, false), "make unlogged", config,
               "A crash would empty the table without invalidating the documents built from it.");
      }
    }
    InvalidateConfigsOfSource(relid);
  });
}

// CREATE OR REPLACE TRIGGER over a config's trigger, with another function:
// refused. (Re-creating it as it was, as pg_restore does, is allowed: the
// trigger function itself checks what it is given.)
void CheckTriggerCreate(Oid trigger) {
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace) || InternalTriggerDdl()) return;
  const TriggerRow row = ReadTrigger(trigger, SnapshotSelf);
  if (!row.found || row.function == OurTriggerFunction(extension_namespace)) return;
  WithRegistry([&] {
    if (char* config = ConfigOfTrigger(row)) RefuseTrigger(row, "replace", config);
  });
}

// DROP TABLE of a source: refused before anything is dropped, so that the
// message names the table (the triggers it would take along come first).
void CheckDropTables(const DropStmt* stmt) {
  if (stmt->removeType != OBJECT_TABLE || !OidIsValid(InstalledNamespace())) return;
  ListCell* lc;
  foreach (lc, stmt->objects) {
    const Oid relid = RangeVarGetRelid(makeRangeVarFromNameList(static_cast<List*>(lfirst(lc))), NoLock, true);
    if (!OidIsValid(relid)) continue;
    WithRegistry([&] {
      if (char* config = ConfigOfSource(relid, nullptr)) {
        const ObjectAddress object = {RelationRelationId, relid, 0};
        Refuse(getObjectDescription(&object, false), "drop", config,
               "The table is a source of the config: its triggers keep the config's documents fresh.");
      }
    });
  }
}

void CheckDrop(Oid class_id, Oid object_id, int sub_id, const ObjectAccessDrop* drop) {
  if (class_id != ProcedureRelationId && class_id != RelationRelationId && class_id != TriggerRelationId &&
      class_id != PolicyRelationId && class_id != ConstraintRelationId)
    return;
  if (drop != nullptr && (drop->dropflags & PERFORM_DELETION_INTERNAL) != 0) return;
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace)) return;
  const ObjectAddress object = {class_id, object_id, sub_id};
  if (class_id == ConstraintRelationId) {
    if (!dropping_extension.on) CheckForeignKey(object_id, true);
    return;
  }

  if (class_id == TriggerRelationId) {
    if (dropping_extension.on || InternalTriggerDdl()) return;
    const TriggerRow row = ReadTrigger(object_id, nullptr);
    WithRegistry([&] {
      bool direct = false;
      char* config = ConfigOfTrigger(row, &direct);
      if (config != nullptr && (direct || dropping_trigger.on)) RefuseTrigger(row, "drop", config);
    });
    return;
  }
  if (class_id == PolicyRelationId) {
    const Oid relid = PolicyTable(object_id);
    if (OidIsValid(relid)) WithRegistry([&] { InvalidateConfigsOfSource(relid); });
    return;
  }

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
      // A partition or child of a source: its rows leave the config.
      InvalidateConfigsOfSource(object_id);
    } else if (const char* column = get_attname(object_id, sub_id, true)) {
      if (char* config = ConfigOfSource(object_id, column))
        Refuse(getObjectDescription(&object, false), "drop", config, "The column is the config's tenant column.");
      // Another column: the rows read differently now (no trigger fires).
      InvalidateConfigsOfSource(object_id);
    }
  });
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
      Oid type_before = InvalidOid;
      int32 typmod_before = 0;
      Oid collation_before = InvalidOid;
      get_atttypetypmodcoll(relid, attnum, &type_before, &typmod_before, &collation_before);
      if (now.type != tenant_type || now.collation != collation_before)
        Refuse(getObjectDescription(&object, false), "change the type of", config,
               "The column is the config's tenant column: its documents and marks are keyed by its values.");
    }
    InvalidateConfigsOfSource(relid);
  });
}

// A builder replaced (CREATE OR REPLACE FUNCTION, every deploy): the
// documents it built are stale, every tenant of its configs is invalidated in
// the deploying transaction.
void CheckFunctionReplaced(Oid function) {
  const Oid extension_namespace = InstalledNamespace();
  if (!OidIsValid(extension_namespace) || Exempt(get_func_namespace(function), extension_namespace)) return;
  WithRegistry([&] {
    Datum args[2] = {ObjectIdGetDatum(function), BuilderHome()};
    List* configs = ConfigIds(RunAsOwner(Stmt::kConfigsOfBuilder, args), 2);
    ListCell* c;
    foreach (c, configs) {
      const int32 config_id = lfirst_int(c);
      InvalidateConfig(config_id);
      // A builder that calls get() of this config embeds what this builder
      // makes; it can only be one whose config covers this one's sources.
      Datum covering_args[1] = {Int32GetDatum(config_id)};
      List* covering = ConfigIds(RunAsOwner(Stmt::kConfigsCovering, covering_args), 1);
      ListCell* lc;
      foreach (lc, covering) InvalidateConfig(lfirst_int(lc));
    }
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

// Tables created since the last look (by the object access hook), whatever
// the statement did to them after (an event trigger renaming one, say).
List* created_tables = NIL;  // in TopTransactionContext

void NoteCreatedTable(Oid relid) {
  MemoryContext previous = MemoryContextSwitchTo(TopTransactionContext);
  created_tables = lappend_oid(created_tables, relid);
  MemoryContextSwitchTo(previous);
}

void ObjectAccess(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void* arg) {
  if (prev_object_access != nullptr) prev_object_access(access, class_id, object_id, sub_id, arg);
  if (access == OAT_DROP) CheckDrop(class_id, object_id, sub_id, static_cast<ObjectAccessDrop*>(arg));
  if (access == OAT_POST_CREATE && class_id == RelationRelationId && sub_id == 0 && !InternalTriggerDdl())
    NoteCreatedTable(object_id);
  if (access != OAT_POST_ALTER && access != OAT_POST_CREATE) return;
  if (class_id == RelationRelationId && sub_id > 0) {
    // A composite type's attributes are the columns of its own pg_class entry.
    if (get_rel_relkind(object_id) == RELKIND_COMPOSITE_TYPE)
      CheckTypeChange(get_rel_type_id(object_id));
    else
      CheckColumnChange(object_id, sub_id, access == OAT_POST_CREATE);
  } else if (class_id == RelationRelationId && access == OAT_POST_ALTER) {
    CheckTableChange(object_id);
  } else if (class_id == ProcedureRelationId && access == OAT_POST_CREATE) {
    CheckFunctionReplaced(object_id);
  } else if (class_id == TypeRelationId && access == OAT_POST_ALTER) {
    CheckTypeChange(object_id);
  } else if (class_id == TriggerRelationId && access == OAT_POST_ALTER) {
    CheckTriggerChange(object_id);
  } else if (class_id == ConstraintRelationId && access == OAT_POST_ALTER && OidIsValid(InstalledNamespace())) {
    CheckForeignKey(object_id, false);
  } else if (class_id == ConstraintRelationId && access == OAT_POST_CREATE) {
    CheckForeignKeyCreate(object_id);
  } else if (class_id == TriggerRelationId) {
    CheckTriggerCreate(object_id);
  } else if (class_id == PolicyRelationId) {
    const Oid relid = PolicyTable(object_id);
    if (OidIsValid(relid) && OidIsValid(InstalledNamespace())) WithRegistry([&] { InvalidateConfigsOfSource(relid); });
  }
}

// -- Partitions and inheritance children ------------------------------------------
// A statement writing straight into a partition or an inheritance child fires
// that table's statement triggers, not its parent's: every table under a
// source carries the config's triggers too. A table joining the tree gets
// them (and the config is invalidated: the rows it brings are new to it); a
// table leaving it loses them (and the config is invalidated: its rows are
// gone from the parent).
struct TreeChange {
  List* joining = NIL;          // relids attached or made children (found before the statement runs)
  List* leaving = NIL;          // relids detached or no longer inheriting
  List* leaving_configs = NIL;  // for each, the configs above it before (a List of ints)
};

TreeChange PlanTreeChange(Node* stmt) {
  TreeChange change;
  // (Tables created are noted by the object access hook: created_tables.)
  // Every utility statement comes here (BEGIN, SET ...): the cheap test first.
  if (!IsA(stmt, AlterTableStmt) || !OidIsValid(InstalledNamespace())) return change;
  auto* alter = castNode(AlterTableStmt, stmt);
  List* joining = NIL;
  List* leaving = NIL;
  ListCell* lc;
  foreach (lc, alter->cmds) {
    auto* cmd = static_cast<AlterTableCmd*>(lfirst(lc));
    switch (cmd->subtype) {
      case AT_AttachPartition:
        joining = lappend(joining, castNode(PartitionCmd, cmd->def)->name);
        break;
      case AT_AddInherit:
        joining = lappend(joining, alter->relation);
        break;
      case AT_DetachPartition:
      case AT_DetachPartitionFinalize:
        leaving = lappend(leaving, castNode(PartitionCmd, cmd->def)->name);
        break;
      case AT_DropInherit:
        leaving = lappend(leaving, alter->relation);
        break;
      default:
        break;
    }
  }
  // Found by name before the statement runs: afterwards an event trigger may
  // have renamed them.
  foreach (lc, joining) {
    const Oid relid = RangeVarGetRelid(static_cast<RangeVar*>(lfirst(lc)), NoLock, true);
    if (OidIsValid(relid)) change.joining = lappend_oid(change.joining, relid);
  }
  // The configs above a leaving table, read while it is still under them;
  // invalidated now as well, for DETACH ... CONCURRENTLY, which commits
  // between its two halves.
  MemoryContext outer = CurrentMemoryContext;
  foreach (lc, leaving) {
    const Oid relid = RangeVarGetRelid(static_cast<RangeVar*>(lfirst(lc)), NoLock, true);
    if (!OidIsValid(relid)) continue;
    WithRegistry([&] {
      List* configs = ConfigsAbove(relid);
      ListCell* c;
      foreach (c, configs) InvalidateConfig(lfirst_int(c));
      MemoryContext previous = MemoryContextSwitchTo(outer);
      change.leaving = lappend_oid(change.leaving, relid);
      change.leaving_configs = lappend(change.leaving_configs, list_copy(configs));
      MemoryContextSwitchTo(previous);
    });
  }
  return change;
}

// A table that joined a source's tree: it gets the triggers of every config
// above it; one that brings rows (attached, not created) invalidates them.
void CoverJoined(Oid relid, bool brings_rows) {
  WithRegistry([&] {
    // A source under another table would miss the writes made through it.
    List* tables = find_all_inheritors(relid, AccessShareLock, nullptr);
    ListCell* t;
    foreach (t, tables) {
      if (char* config = ConfigOfSource(lfirst_oid(t), nullptr))
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("table %s is a source of config \"%s\" and cannot become a partition or an "
                               "inheritance child",
                               get_rel_name(lfirst_oid(t)), config),
                        errdetail("Writes through its parent would not invalidate the config's documents."),
                        errhint("Undefine the config first with config_guard.undefine('%s'), then define it "
                                "over the parent.",
                                config)));
    }
    Datum args[1] = {ObjectIdGetDatum(relid)};
    const uint64 n = RunAsOwner(Stmt::kConfigsAbove, args);
    List* configs = ConfigIds(n, 1);
    List* columns = NIL;
    List* vias = NIL;
    for (uint64 i = 0; i < n; ++i) {
      columns = lappend(columns, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2));
      vias = lappend(vias, SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 4));  // nullptr: none
    }
    for (uint64 i = 0; i < n; ++i) {
      const int32 config_id = list_nth_int(configs, static_cast<int>(i));
      InstallTriggers(config_id, relid, static_cast<char*>(list_nth(columns, static_cast<int>(i))), false,
                      static_cast<char*>(list_nth(vias, static_cast<int>(i))));
      if (brings_rows) InvalidateConfig(config_id);
    }
  });
}

// Whether a table has a row of its own, in the current transaction's view: a
// table created by the statement is empty unless the statement (an event
// trigger, say) wrote into it before its triggers were there.
bool HasRows(Oid relid) {
  if (get_rel_relkind(relid) != RELKIND_RELATION) return false;  // no storage of its own
  Relation rel = table_open(relid, AccessShareLock);
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
  TupleTableSlot* slot = table_slot_create(rel, nullptr);
  const bool any = table_scan_getnextslot(scan, ForwardScanDirection, slot);
  ExecDropSingleTupleTableSlot(slot);
  table_endscan(scan);
  UnregisterSnapshot(snapshot);
  table_close(rel, AccessShareLock);
  return any;
}

void ApplyTreeChange(const TreeChange& change) {
  List* created = created_tables;
  created_tables = NIL;
  if (change.joining == NIL && change.leaving == NIL && created == NIL) return;
  if (!OidIsValid(InstalledNamespace())) return;
  CommandCounterIncrement();  // see what the statement did
  ListCell* lc;
  foreach (lc, created) {
    // A new table under a source (PARTITION OF, INHERITS).
    const Oid relid = lfirst_oid(lc);
    const char kind = get_rel_relkind(relid);
    if ((kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE || kind == RELKIND_FOREIGN_TABLE) &&
        has_superclass(relid))
      CoverJoined(relid, HasRows(relid));
  }
  foreach (lc, change.joining) {
    if (get_rel_name(lfirst_oid(lc)) != nullptr) CoverJoined(lfirst_oid(lc), true);
  }
  ListCell* configs;
  forboth(lc, change.leaving, configs, change.leaving_configs) {
    const Oid relid = lfirst_oid(lc);
    if (get_rel_name(relid) == nullptr) continue;
    WithRegistry([&] {
      List* tables = find_all_inheritors(relid, AccessShareLock, nullptr);
      ListCell* c;
      foreach (c, static_cast<List*>(lfirst(configs))) {
        const int32 config_id = lfirst_int(c);
        ListCell* t;
        foreach (t, tables) {
          // Still under a source of the config (another parent) or one itself:
          // kept, made again as what still covers it asks (a table that was
          // also under a shared source no longer marks every tenant).
          Datum args[2] = {Int32GetDatum(config_id), ObjectIdGetDatum(lfirst_oid(t))};
          bool isnull = false;
          if (RunAsOwner(Stmt::kSourceColumn, args) > 0 &&
              DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull))) {
            if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull)))
              ReinstallTriggersOn(config_id, lfirst_oid(t),
                                  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
                                  SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5));
            continue;
          }
          DropTriggersOn(config_id, lfirst_oid(t));
        }
        InvalidateConfig(config_id);
      }
    });
  }
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  const bool drops_us = IsA(pstmt->utilityStmt, DropStmt) &&
                        castNode(DropStmt, pstmt->utilityStmt)->removeType == OBJECT_EXTENSION && [&] {
                          ListCell* lc;
                          foreach (lc, castNode(DropStmt, pstmt->utilityStmt)->objects) {
                            if (strcmp(strVal(lfirst(lc)), "config_guard") == 0) return true;
                          }
                          return false;
                        }();
  if (IsA(pstmt->utilityStmt, DropStmt)) CheckDropTables(castNode(DropStmt, pstmt->utilityStmt));
  const CommandFlag previous = dropping_extension;
  if (drops_us) dropping_extension.Raise();
  const CommandFlag previous_trigger = dropping_trigger;
  if (IsA(pstmt->utilityStmt, DropStmt) && castNode(DropStmt, pstmt->utilityStmt)->removeType == OBJECT_TRIGGER)
    dropping_trigger.Raise();
  const TreeChange tree_change = PlanTreeChange(pstmt->utilityStmt);
  // Taken before: the statement may be freed by the time it returns.
  RangeVar* altered =
      IsA(pstmt->utilityStmt, AlterTableStmt)
          ? static_cast<RangeVar*>(copyObjectImpl(castNode(AlterTableStmt, pstmt->utilityStmt)->relation))
          : nullptr;
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  dropping_extension.Restore(previous);
  dropping_trigger.Restore(previous_trigger);
  ApplyTreeChange(tree_change);
  // Not every ALTER TABLE reaches the object access hook (ENABLE or FORCE ROW
  // LEVEL SECURITY, for one): whatever it changed, a source's configs are
  // invalidated.
  if (altered != nullptr && !InternalTriggerDdl()) {
    const Oid relid = RangeVarGetRelid(altered, NoLock, true);
    if (OidIsValid(relid)) {
      CheckTableChange(relid);
      RestoreTriggerModes(relid);
    }
  }
}

void ResetDropping(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT ||
      event == XACT_EVENT_PREPARE) {
    dropping_extension.OnAbort(InvalidSubTransactionId);
    dropping_trigger.OnAbort(InvalidSubTransactionId);
    created_tables = NIL;  // (its memory goes with the transaction)
  }
}

void ResetDroppingSub(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    dropping_extension.OnAbort(subid);
    dropping_trigger.OnAbort(subid);
  }
}

}  // namespace

void InitDependencies() {
  prev_object_access = object_access_hook;
  object_access_hook = ObjectAccess;
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
  RegisterXactCallback(ResetDropping, nullptr);
  RegisterSubXactCallback(ResetDroppingSub, nullptr);
}

}  // namespace config_guard
