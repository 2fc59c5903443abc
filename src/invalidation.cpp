#include "invalidation.hpp"

#include "builder.hpp"
#include "canonical_key.hpp"
#include "command_flag.hpp"
#include "builder_identity.hpp"
#include "gateway.hpp"
#include "module.hpp"
#include "registry.hpp"
#include "mark_append.hpp"
#include "mark_writers.hpp"
#include "identity.hpp"
#include "source_chain.hpp"
#include "tenant.hpp"

extern "C" {
#include "catalog/pg_inherits.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "tcop/utility.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "access/htup_details.h"
#include "catalog/pg_class_d.h"
#include "utils/array.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
}

namespace config_guard {
namespace {

struct TriggerKind {
  const char* suffix;
  const char* event;
  const char* referencing;  // transition tables the statement exposes
};

constexpr TriggerKind kEvents[] = {
    {"insert", "INSERT", "REFERENCING NEW TABLE AS config_guard_new"},
    {"update", "UPDATE", "REFERENCING OLD TABLE AS config_guard_old NEW TABLE AS config_guard_new"},
    {"delete", "DELETE", "REFERENCING OLD TABLE AS config_guard_old"},
    {"truncate", "TRUNCATE", ""},
};

// The logical replication apply worker fires row triggers only (and TRUNCATE
// statement triggers): each ordinary table under a config also has a row
// trigger that fires only there, where session_replication_role is replica.
// Elsewhere it stays quiet and the statement triggers do the work.
constexpr const char* kReplicaSuffix = "replica";

char* TriggerName(int32 config_id, const char* suffix) { return psprintf("config_guard_%d_%s", config_id, suffix); }

const char* EventSuffix(TriggerEvent event) {
  if (TRIGGER_FIRED_FOR_ROW(event)) return kReplicaSuffix;
  if (TRIGGER_FIRED_BY_INSERT(event)) return "insert";
  if (TRIGGER_FIRED_BY_UPDATE(event)) return "update";
  if (TRIGGER_FIRED_BY_DELETE(event)) return "delete";
  return "truncate";
}

// -- Which triggers are config_guard's own -------------------------------------------
// Verified once per trigger and registry generation: a trigger of a config on
// one of its registered sources, with the name and arguments define() gives.
struct VerifiedTrigger {
  Oid tgoid;  // hash key
  Oid relid;
  uint64 generation;
  bool config_exists;
  // Under a child source: the child source (its chain is read at every
  // statement, source_chain.hpp).
  bool child;
  Oid child_source;
  // The tenant column as last seen (TenantColumnOf): its number, its key
  // type, and a slot for reading it from transition tables, made in
  // verified_cxt for a copy of the table's row type.
  AttrNumber attnum;
  Oid type;
  KeyType key;
  TupleTableSlot* slot;
};
// The entries and what they keep, forgotten together.
MemoryContext verified_cxt = nullptr;
HTAB* verified = nullptr;
uint64 verified_generation = 0;

[[noreturn]] void RefuseTrigger(const Trigger* trigger, Relation rel, int32 config_id) {
  ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                  errmsg("trigger \"%s\" on table \"%s\" is not an invalidation trigger of config %d", trigger->tgname,
                         RelationGetRelationName(rel), config_id),
                  errdetail("config_guard.invalidation_trigger() acts only through the triggers "
                            "config_guard.define() installs on the config's sources."),
                  errhint("Drop the trigger.")));
}

void DropSlot(VerifiedTrigger* entry) {
  if (entry->slot == nullptr) return;
  TupleDesc desc = entry->slot->tts_tupleDescriptor;
  ExecDropSingleTupleTableSlot(entry->slot);
  FreeTupleDesc(desc);
  entry->slot = nullptr;
}

// nullptr when the config the trigger names no longer exists (nothing to
// invalidate, and a write must not fail because of it); raises when the
// trigger is not one config_guard installed on a source of that config.
VerifiedTrigger* VerifyTrigger(const TriggerData* data, int32 config_id) {
  const Trigger* trigger = data->tg_trigger;
  Relation rel = data->tg_relation;
  ConfigsTable();  // resolves the registry, so that its invalidations reach RegistryGeneration()
  // Entries of another generation are never used again (those of dropped
  // triggers never even looked up): all go at once.
  if (verified != nullptr && verified_generation != RegistryGeneration()) {
    MemoryContextDelete(verified_cxt);  // (the hash's own context is its child)
    verified_cxt = nullptr;
    verified = nullptr;
  }
  verified_generation = RegistryGeneration();
  if (verified == nullptr) {
    verified_cxt = AllocSetContextCreate(CacheMemoryContext, "config_guard verified triggers", ALLOCSET_SMALL_SIZES);
    HASHCTL ctl = {};
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(VerifiedTrigger);
    ctl.hcxt = verified_cxt;
    verified = hash_create("config_guard verified triggers", 16, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  bool found = false;
  auto* entry = static_cast<VerifiedTrigger*>(hash_search(verified, &trigger->tgoid, HASH_ENTER, &found));
  if (found && entry->relid == RelationGetRelid(rel) && entry->generation == RegistryGeneration())
    return entry->config_exists ? entry : nullptr;
  if (found) DropSlot(entry);
  hash_search(verified, &trigger->tgoid, HASH_REMOVE, nullptr);

  if (strcmp(trigger->tgname, TriggerName(config_id, EventSuffix(data->tg_event))) != 0)
    RefuseTrigger(trigger, rel, config_id);
  // (The only SPI on the trigger's path, once per trigger and registry
  // generation.)
  SPI_connect();
  Datum args[2] = {Int32GetDatum(config_id), ObjectIdGetDatum(RelationGetRelid(rel))};
  const bool config_exists = RunAsOwner(Stmt::kSourceColumn, args) > 0;
  bool matches = true;
  Oid child_source = InvalidOid;
  if (config_exists) {
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull = false;
    const Name column = DatumGetName(SPI_getbinval(row, desc, 1, &isnull));
    const bool is_source = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
    const char* via = SPI_getvalue(row, desc, 5);  // nullptr unless under a child source
    matches = is_source && strcmp(NameStr(*column), trigger->tgargs[1]) == 0 &&
              (via == nullptr ? trigger->tgnargs == 2 : trigger->tgnargs == 3 && strcmp(via, trigger->tgargs[2]) == 0);
    if (via != nullptr) child_source = DatumGetObjectId(SPI_getbinval(row, desc, 6, &isnull));
  }
  SPI_finish();
  if (!matches) RefuseTrigger(trigger, rel, config_id);
  entry = static_cast<VerifiedTrigger*>(hash_search(verified, &trigger->tgoid, HASH_ENTER, &found));
  entry->relid = RelationGetRelid(rel);
  entry->generation = RegistryGeneration();
  entry->config_exists = config_exists;
  entry->child = trigger->tgnargs == 3;
  entry->child_source = child_source;
  entry->attnum = InvalidAttrNumber;
  entry->type = InvalidOid;
  entry->slot = nullptr;
  return config_exists ? entry : nullptr;
}

// Whether tuples of `now` deform like those of `before` up to attribute
// `upto`: the same storage of every attribute before it and of it.
bool SameLayoutUpTo(TupleDesc before, TupleDesc now, AttrNumber upto) {
  if (before->natts != now->natts) return false;
  for (int a = 0; a < upto; ++a) {
    const Form_pg_attribute x = TupleDescAttr(before, a);
    const Form_pg_attribute y = TupleDescAttr(now, a);
    if (x->atttypid != y->atttypid || x->attlen != y->attlen || x->attbyval != y->attbyval ||
        x->attalign != y->attalign || x->attisdropped != y->attisdropped || x->atthasmissing != y->atthasmissing)
      return false;
  }
  return true;
}

// The trigger's tenant column in the table as it is now (a column renamed,
// dropped or retyped since is looked up again): false if it has none, which
// dependencies.cpp prevents short of a temporary schema's cleanup.
bool TenantColumnOf(VerifiedTrigger* entry, Relation rel, const char* tenant_column, bool with_slot) {
  TupleDesc desc = RelationGetDescr(rel);
  const bool same = entry->attnum != InvalidAttrNumber && entry->attnum <= desc->natts &&
                    !TupleDescAttr(desc, entry->attnum - 1)->attisdropped &&
                    TupleDescAttr(desc, entry->attnum - 1)->atttypid == entry->type &&
                    strcmp(NameStr(TupleDescAttr(desc, entry->attnum - 1)->attname), tenant_column) == 0;
  if (!same) {
    DropSlot(entry);
    entry->attnum = InvalidAttrNumber;  // (until the key type is described)
    const AttrNumber attnum = get_attnum(RelationGetRelid(rel), tenant_column);
    if (attnum == InvalidAttrNumber) return false;
    entry->type = TupleDescAttr(desc, attnum - 1)->atttypid;
    DescribeKeyType(entry->type, &entry->key, verified_cxt);
    entry->attnum = attnum;
  }
  if (with_slot && (entry->slot == nullptr || !SameLayoutUpTo(entry->slot->tts_tupleDescriptor, desc, entry->attnum))) {
    DropSlot(entry);
    MemoryContext old = MemoryContextSwitchTo(verified_cxt);
    // (A copy: not reference-counted, so the slot pins nothing. With the
    // columns' missing values: a row stored before its tenant column was
    // added with a default reads that default, as through the table.)
    entry->slot = MakeSingleTupleTableSlot(CreateTupleDescCopyConstr(desc), &TTSOpsMinimalTuple);
    MemoryContextSwitchTo(old);
  }
  return true;
}

// -- The tenants a statement touched ----------------------------------------------------
// A set of C strings (the keys are pointers; hashing and equality look at the
// text they point to).
uint32 HashKeyText(const void* key, Size) {
  const char* text = *static_cast<const char* const*>(key);
  return hash_bytes(reinterpret_cast<const unsigned char*>(text), static_cast<int>(strlen(text)));
}

int CompareKeyText(const void* a, const void* b, Size) {
  return strcmp(*static_cast<const char* const*>(a), *static_cast<const char* const*>(b));
}

// The tenants to mark (nullptr: every tenant).
struct Tenants {
  const char** keys;
  int count;
};

const char* const kEveryTenant[1] = {nullptr};
Tenants EveryTenant() { return {const_cast<const char**>(kEveryTenant), 1}; }

struct TenantSet {
  HTAB* seen;  // made at the second distinct tenant: most statements touch one
  const char* first;
  const char** keys;
  int count;
  int capacity;
  const char* last;  // a run of rows of one tenant costs one comparison each
  const char* inline_keys[4];
  // The image of the last row's tenant (canonical_key.hpp: equal images,
  // equal keys), when short: a run of rows of one tenant (an UPDATE's old
  // and new row) computes its key once.
  int last_image_len;  // -1: none
  char last_image[32];
};

void InitTenantSet(TenantSet* set) {
  *set = {};
  set->last_image_len = -1;
  set->keys = set->inline_keys;
  set->capacity = lengthof(set->inline_keys);
}

// Whether `text` was in the set already; enters it.
bool Seen(TenantSet* set, const char* text) {
  if (set->count == 0) {
    set->first = text;
    return false;
  }
  if (set->seen == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(char*);
    ctl.entrysize = sizeof(char*);
    ctl.hash = HashKeyText;
    ctl.match = CompareKeyText;
    ctl.hcxt = CurrentMemoryContext;
    set->seen =
        hash_create("config_guard changed tenants", 64, &ctl, HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
    hash_search(set->seen, &set->first, HASH_ENTER, nullptr);
  }
  bool found = false;
  hash_search(set->seen, &text, HASH_ENTER, &found);
  return found;
}

void AddTenant(TenantSet* set, char* text) {
  if (set->last != nullptr && strcmp(set->last, text) == 0) {
    pfree(text);
    return;
  }
  if (Seen(set, text)) {
    pfree(text);
    return;
  }
  if (set->count == set->capacity) {
    auto* grown = static_cast<const char**>(palloc(sizeof(char*) * set->capacity * 2));
    memcpy(grown, set->keys, sizeof(char*) * set->count);
    if (set->keys != set->inline_keys) pfree(set->keys);
    set->keys = grown;
    set->capacity *= 2;
  }
  set->keys[set->count++] = text;
  set->last = text;
}

// Whether the value's image is the last row's; remembers it.
bool SameAsLast(TenantSet* set, const KeyType& key, Datum value) {
  if (key.typbyval) {
    // (The image of a by-value datum is its bytes: the datum compares.)
    static_assert(sizeof(Datum) <= sizeof(TenantSet::last_image));
    const bool same =
        set->last_image_len == static_cast<int>(sizeof(Datum)) && memcmp(set->last_image, &value, sizeof(Datum)) == 0;
    memcpy(set->last_image, &value, sizeof(Datum));
    set->last_image_len = sizeof(Datum);
    return same;
  }
  const KeyImage image = ImageOf(key, value);
  const bool same =
      set->last_image_len == static_cast<int>(image.len) && memcmp(set->last_image, image.data, image.len) == 0;
  set->last_image_len = -1;
  if (image.len <= sizeof set->last_image) {
    memcpy(set->last_image, image.data, image.len);
    set->last_image_len = static_cast<int>(image.len);
  }
  return same;
}

// Reads a transition table through a read pointer of its own, as a
// NamedTuplestoreScan does, so that other triggers' reads are undisturbed.
void CollectTenants(Tuplestorestate* store, TupleTableSlot* slot, AttrNumber attnum, KeyType* key, TenantSet* set) {
  if (store == nullptr) return;
  const int pointer = tuplestore_alloc_read_pointer(store, EXEC_FLAG_REWIND);
  tuplestore_select_read_pointer(store, pointer);
  tuplestore_rescan(store);
  while (tuplestore_gettupleslot(store, true, false, slot)) {
    bool isnull = false;
    const Datum value = slot_getattr(slot, attnum, &isnull);
    CHECK_FOR_INTERRUPTS();
    if (isnull) continue;  // a NULL tenant is no tenant (a NULL mark would mean every tenant)
    if (SameAsLast(set, *key, value)) continue;
    char* text = TenantKeyText(key, value);
    // A key get() refuses as too long has no document to invalidate.
    if (strlen(text) <= static_cast<size_t>(kMaxTenantKeyBytes)) AddTenant(set, text);
  }
  ExecClearTuple(slot);  // (it pointed into the store)
  tuplestore_select_read_pointer(store, 0);
}

// The tenant of one row, canonical, or nullptr (a NULL tenant, a key too
// long for get()).
const char* RowTenant(HeapTuple tuple, TupleDesc desc, AttrNumber attnum, KeyType* key) {
  if (tuple == nullptr) return nullptr;
  bool isnull = false;
  const Datum value = heap_getattr(tuple, attnum, desc, &isnull);
  if (isnull) return nullptr;
  char* text = TenantKeyText(key, value);
  return strlen(text) <= static_cast<size_t>(kMaxTenantKeyBytes) ? text : nullptr;
}

// The transaction is counted as a mark writer of the config before its first
// mark (mark_writers.hpp), here in the statement: the count may need to look
// up the registry, which the commit, where deferred marks are written, cannot.
void AppendMarks(int32 config_id, Tenants tenants) {
  NoteMarkWriter(config_id);
  AppendMarkRows(config_id, tenants.keys, tenants.count);
}

// A row trigger: the tenants of the old and new row.
void MarkRowTenants(const TriggerData* data, int32 config_id, VerifiedTrigger* verified_trigger) {
  Relation rel = data->tg_relation;
  // (On a shared source, the tenant column is '': every tenant.)
  if (!TenantColumnOf(verified_trigger, rel, data->tg_trigger->tgargs[1], false))
    return AppendMarks(config_id, EveryTenant());
  HeapTuple rows[2] = {data->tg_trigtuple, TRIGGER_FIRED_BY_UPDATE(data->tg_event) ? data->tg_newtuple : nullptr};
  for (HeapTuple row : rows) {
    const char* tenant = RowTenant(row, RelationGetDescr(rel), verified_trigger->attnum, &verified_trigger->key);
    // Every row marks (the mark's unique key keeps one per transaction): a
    // get() in between may have folded the transaction's marks into a
    // stored document, so no earlier mark can be trusted to still be there.
    if (tenant != nullptr) AppendMarks(config_id, {&tenant, 1});
  }
}

bool HasRows(Tuplestorestate* store) { return store != nullptr && tuplestore_tuple_count(store) > 0; }

// Marks the tenants of the statement's transition tables.
void MarkChangedTenants(const TriggerData* data, int32 config_id, VerifiedTrigger* verified_trigger) {
  const char* tenant_column = data->tg_trigger->tgargs[1];
  // A shared source: a statement that changed any row invalidates every
  // tenant (one that changed none, nothing).
  if (tenant_column[0] == '\0') {
    if (HasRows(data->tg_newtable) || HasRows(data->tg_oldtable)) AppendMarks(config_id, EveryTenant());
    return;
  }
  // Without its tenant column the statement invalidates every tenant: a
  // write never fails because of config_guard.
  if (!TenantColumnOf(verified_trigger, data->tg_relation, tenant_column, true))
    return AppendMarks(config_id, EveryTenant());
  // The same canonical key get() computes (canonical_key.hpp), whatever the
  // writer's settings.
  TenantSet set;
  InitTenantSet(&set);
  CollectTenants(data->tg_newtable, verified_trigger->slot, verified_trigger->attnum, &verified_trigger->key, &set);
  CollectTenants(data->tg_oldtable, verified_trigger->slot, verified_trigger->attnum, &verified_trigger->key, &set);
  AppendMarks(config_id, {set.keys, set.count});
}

// -- The tenants of a child source's changed rows ---------------------------------------
// (source_chain.hpp) Not in a subtransaction: like a foreign key check's, its
// lock waits and errors are the statement's.
struct ChildTenantsFound {
  TenantSet set;
  KeyType key;
  Oid key_type;
};

void AddChildTenant(void* arg, Datum tenant, Oid type) {
  auto* found = static_cast<ChildTenantsFound*>(arg);
  if (found->key_type != type) {
    DescribeKeyType(type, &found->key, CurrentMemoryContext);
    found->key_type = type;
  }
  char* text = TenantKeyText(&found->key, tenant);
  if (strlen(text) <= static_cast<size_t>(kMaxTenantKeyBytes)) AddTenant(&found->set, text);
}

// (In the caller's memory context.)
Tenants ChildTenants(const TriggerData* data, int32 config_id, const VerifiedTrigger* trigger) {
  MemoryContext caller = CurrentMemoryContext;
  Datum chain_args[2] = {Int32GetDatum(config_id), ObjectIdGetDatum(trigger->child_source)};
  List* chain = NIL;
  SPI_connect();
  const uint64 n = RunAsOwner(Stmt::kChain, chain_args);
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    chain =
        lappend_oid(chain, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
  }
  ChildTenantsFound found = {};
  InitTenantSet(&found.set);
  const char* broken = nullptr;
  const bool complete = FindChildTenants(data, chain, data->tg_trigger->tgargs[1], AddChildTenant, &found, &broken);
  if (broken != nullptr)
    ereport(WARNING, (errmsg("config_guard cannot find the tenants of the rows changed in %s",
                             RelationGetRelationName(data->tg_relation)),
                      errdetail("%s; every tenant of the config is invalidated instead.", broken),
                      errhint("Undefine the config and define it again.")));
  // A new row whose chain was not found in full (a deferred foreign key, a
  // parent the transaction does not see) could belong to any tenant.
  Tenants result = EveryTenant();
  if (complete) {
    result = {static_cast<const char**>(MemoryContextAlloc(caller, sizeof(char*) * Max(found.set.count, 1))),
              found.set.count};
    for (int i = 0; i < found.set.count; ++i) result.keys[i] = MemoryContextStrdup(caller, found.set.keys[i]);
  }
  SPI_finish();
  return result;
}

CommandFlag internal_trigger_ddl;

void TriggerDdl(const char* sql) {
  const CommandFlag previous = internal_trigger_ddl.Raise();
  UtilityAsOwner(sql);
  internal_trigger_ddl.Restore(previous);
}

}  // namespace

bool InternalTriggerDdl() { return internal_trigger_ddl.on; }

void InitInvalidation() { internal_trigger_ddl.ClearOnAbort(); }

void InvalidateConfig(int32 config_id) { AppendMarks(config_id, EveryTenant()); }

namespace {

// The triggers of one relation; a statement writing straight into a
// partition or an inheritance child fires its own statement triggers, not its
// parent's, so every one of them has them.
// Drops a trigger of the relation if it exists (quietly: no NOTICE).
void DropIfExists(Oid relid, const char* table, const char* trigger) {
  if (OidIsValid(get_trigger_oid(relid, trigger, true)))
    TriggerDdl(psprintf("DROP TRIGGER %s ON %s", quote_identifier(trigger), table));
}

// Made again if they exist (a relation under two sources of the config).
void InstallTriggersOn(int32 config_id, Oid relid, const char* tenant_column, const char* via) {
  const char* table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
  const char* args =
      psprintf("%s, %s%s", quote_literal_cstr(psprintf("%d", config_id)), quote_literal_cstr(tenant_column),
               via != nullptr ? psprintf(", %s", quote_literal_cstr(via)) : "");
  for (const TriggerKind& e : kEvents) {
    DropIfExists(relid, table, TriggerName(config_id, e.suffix));
    const char* name = quote_identifier(TriggerName(config_id, e.suffix));
    TriggerDdl(
        psprintf("CREATE TRIGGER %s AFTER %s ON %s %s FOR EACH STATEMENT "
                 "EXECUTE FUNCTION config_guard.invalidation_trigger(%s)",
                 name, e.event, table, e.referencing, args));
    // ALWAYS: writes made with session_replication_role = replica invalidate
    // too.
    TriggerDdl(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER %s", table, name));
  }
  // (A partitioned table's row trigger would be cloned onto its partitions:
  // each ordinary table gets its own.)
  if (get_rel_relkind(relid) != RELKIND_RELATION) return;
  DropIfExists(relid, table, TriggerName(config_id, kReplicaSuffix));
  const char* name = quote_identifier(TriggerName(config_id, kReplicaSuffix));
  TriggerDdl(
      psprintf("CREATE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW "
               "EXECUTE FUNCTION config_guard.invalidation_trigger(%s)",
               name, table, args));
  TriggerDdl(psprintf("ALTER TABLE %s ENABLE REPLICA TRIGGER %s", table, name));
}

// The relation and its partitions and inheritance children, at any depth.
List* WithDescendants(Oid relid) {
  if (get_rel_name(relid) == nullptr) return NIL;
  return find_all_inheritors(relid, AccessShareLock, nullptr);
}

// A relation under a source whose changes no trigger would see (a foreign
// table) or that loses its rows without one firing (unlogged: a crash;
// temporary: the session's end) is refused.
// (With `warn_only`, as install_triggers() on a config made before 0.4, it is
// said with a WARNING and skipped: false.)
bool CheckCoverable(Oid relid, bool warn_only) {
  const char kind = get_rel_relkind(relid);
  const char persistence = get_rel_persistence(relid);
  if ((kind == RELKIND_RELATION || kind == RELKIND_PARTITIONED_TABLE) && persistence == RELPERSISTENCE_PERMANENT)
    return true;
  ereport(warn_only ? WARNING : ERROR,
          (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
           errmsg("table %s cannot be a partition or inheritance child of a config's source",
                  quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid))),
           errdetail("It is a foreign, unlogged or temporary table: its rows can change without an "
                     "invalidation trigger firing.")));
  return false;
}

}  // namespace

void ReinstallTriggersOn(int32 config_id, Oid relid, const char* tenant_column, const char* via) {
  InstallTriggersOn(config_id, relid, tenant_column, via);
}

void InstallTriggers(int32 config_id, Oid relid, const char* tenant_column, bool warn_only, const char* via) {
  ListCell* lc;
  foreach (lc, WithDescendants(relid)) {
    if (CheckCoverable(lfirst_oid(lc), warn_only)) InstallTriggersOn(config_id, lfirst_oid(lc), tenant_column, via);
  }
}

bool IsReplicaTriggerName(const char* name) {
  int32 config_id = 0;
  char suffix[16];
  return sscanf(name, "config_guard_%d_%15s", &config_id, suffix) == 2 && strcmp(suffix, kReplicaSuffix) == 0;
}

void RestoreTriggerMode(Oid relid, const char* name) {
  const char* table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
  TriggerDdl(psprintf("ALTER TABLE %s ENABLE %s TRIGGER %s", table, IsReplicaTriggerName(name) ? "REPLICA" : "ALWAYS",
                      quote_identifier(name)));
}

void DropTriggersOn(int32 config_id, Oid relid) {
  if (get_rel_name(relid) == nullptr) return;
  const char* table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid));
  for (const TriggerKind& e : kEvents) DropIfExists(relid, table, TriggerName(config_id, e.suffix));
  DropIfExists(relid, table, TriggerName(config_id, kReplicaSuffix));
}

void DropTriggers(int32 config_id, Oid relid) {
  ListCell* lc;
  foreach (lc, WithDescendants(relid)) DropTriggersOn(config_id, lfirst_oid(lc));
}

// The trigger works without shared_preload_libraries too: writes to a source
// must never fail because of the cache.
CG_FUNCTION(config_guard_invalidation_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("config_guard.invalidation_trigger() must be called as a trigger")));
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  const Trigger* trigger = data->tg_trigger;
  if (!TRIGGER_FIRED_AFTER(data->tg_event) || (trigger->tgnargs != 2 && trigger->tgnargs != 3))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("config_guard.invalidation_trigger() must be an AFTER trigger with two or three "
                           "arguments")));
  const int32 config_id = pg_strtoint32(trigger->tgargs[0]);

  if (VerifiedTrigger* verified_trigger = VerifyTrigger(data, config_id)) {
    if (verified_trigger->child) {
      // (A logical replication subscriber's row trigger, and TRUNCATE, mark
      // every tenant: the rows' parents are not looked up there.)
      AppendMarks(config_id, TRIGGER_FIRED_FOR_ROW(data->tg_event) || TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)
                                 ? EveryTenant()
                                 : ChildTenants(data, config_id, verified_trigger));
    } else if (TRIGGER_FIRED_FOR_ROW(data->tg_event)) {
      MarkRowTenants(data, config_id, verified_trigger);
    } else if (TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)) {
      AppendMarks(config_id, EveryTenant());
    } else {
      MarkChangedTenants(data, config_id, verified_trigger);
    }
    NoteSourceWrite(config_id);
  }
  return PointerGetDatum(nullptr);
}

// invalidate(config, tenant) and invalidate_all(config): one mark, in the
// caller's transaction, for one tenant or for every tenant. Forcing rebuilds
// is the owner's decision: a read grant does not allow it.
static void InvalidateFromSql(FunctionCallInfo fcinfo, bool one_tenant) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  SPI_connect();
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  const char* function = one_tenant ? "invalidate" : "invalidate_all";
  RequireOwnership(*def, function);
  // What the executor would refuse for an INSERT of the mark (a trigger's
  // statement has passed these checks already).
  PreventCommandIfReadOnly(psprintf("config_guard.%s()", function));
  PreventCommandIfParallelMode(psprintf("config_guard.%s()", function));
  const char* tenant = one_tenant ? TenantFromArgument(fcinfo, 1, *def).text : nullptr;
  NoteMarkWriter(def->config_id);
  AppendMarkRowsNow(def->config_id, &tenant, 1);
  ReleaseConfig();
  SPI_finish();
}

CG_FUNCTION(config_guard_invalidate) {
  InvalidateFromSql(fcinfo, true);
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_invalidate_all) {
  InvalidateFromSql(fcinfo, false);
  PG_RETURN_VOID();
}

// Used by the 0.2 update: works on the registry of any version since 0.1.
CG_FUNCTION(config_guard_install_triggers) {
  RequirePreloaded();
  SPI_connect();
  Datum name[2] = {PG_GETARG_DATUM(0), BuilderHome()};
  if (RunAsOwner(Stmt::kFindConfig, name) == 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                    errmsg("config \"%s\" does not exist", text_to_cstring(PG_GETARG_TEXT_PP(0)))));
  SPITupleTable* found = SPI_tuptable;
  bool isnull = false;
  const int32 config_id = DatumGetInt32(SPI_getbinval(found->vals[0], found->tupdesc, 1, &isnull));
  const char* tenant_column =
      pstrdup(NameStr(*DatumGetName(SPI_getbinval(found->vals[0], found->tupdesc, 3, &isnull))));
  const Datum shared = SPI_getbinval(found->vals[0], found->tupdesc, 5, &isnull);
  Datum* shared_elems = nullptr;
  int nshared = 0;
  if (!isnull)
    deconstruct_array(DatumGetArrayTypeP(shared), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &shared_elems, nullptr,
                      &nshared);
  const Datum sources = SPI_getbinval(found->vals[0], found->tupdesc, 4, &isnull);
  if (!isnull) {
    Datum* elems = nullptr;
    int n = 0;
    deconstruct_array(DatumGetArrayTypeP(sources), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, nullptr, &n);
    for (int i = 0; i < n; ++i) {
      bool is_shared = false;
      for (int j = 0; j < nshared; ++j) is_shared |= shared_elems[j] == elems[i];
      // define() refuses these since 0.4; a config made before keeps working
      // as it did, and is told.
      if (has_superclass(DatumGetObjectId(elems[i])))
        ereport(WARNING, (errmsg("source %s of config \"%s\" is a partition or an inheritance child",
                                 get_rel_name(DatumGetObjectId(elems[i])), text_to_cstring(PG_GETARG_TEXT_PP(0))),
                          errdetail("Writes through its parent do not invalidate the config's documents."),
                          errhint("Undefine the config and define it over the topmost parent.")));
      DropTriggers(config_id, DatumGetObjectId(elems[i]));
      InstallTriggers(config_id, DatumGetObjectId(elems[i]), is_shared ? "" : tenant_column, true);
    }
  }
  SPI_finish();
  PG_RETURN_VOID();
}

}  // namespace config_guard
