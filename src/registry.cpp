#include "registry.hpp"

#include "module.hpp"
#include "builder_identity.hpp"
#include "gateway.hpp"
#include "identity.hpp"

extern "C" {
#include "access/genam.h"
#include "utils/regproc.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type_d.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

namespace config_guard {
namespace {

MemoryContext registry_cxt = nullptr;
HTAB* configs = nullptr;
bool cache_stale = false;
int active_calls = 0;
Oid registry_namespace = InvalidOid;
Oid configs_table = InvalidOid;
Oid sources_table = InvalidOid;
bool schema_checked = false;
uint64 registry_generation = 0;
CacheRelations cache_relations = {};

void FlushCache() {
  if (configs != nullptr) {
    HASH_SEQ_STATUS it;
    hash_seq_init(&it, configs);
    while (auto* def = static_cast<ConfigDef*>(hash_seq_search(&it))) {
      for (int i = 0; i < def->nsources; ++i) {
        if (def->sources[i].first_page_plan) SPI_freeplan(def->sources[i].first_page_plan);
        if (def->sources[i].next_page_plan) SPI_freeplan(def->sources[i].next_page_plan);
      }
    }
  }
  configs = nullptr;
  if (registry_cxt != nullptr) MemoryContextReset(registry_cxt);
  cache_stale = false;
}

bool IsCachedSource(Oid relid) {
  if (configs == nullptr) return false;
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, configs);
  while (auto* def = static_cast<ConfigDef*>(hash_seq_search(&it))) {
    for (int i = 0; i < def->nsources; ++i) {
      if (def->sources[i].shape.relid == relid) {
        hash_seq_term(&it);
        return true;
      }
    }
  }
  return false;
}

// Runs inside invalidation processing: only marks, never frees (a plan may be
// executing right now).
void RelcacheCallback(Datum, Oid relid) {
  if (relid == InvalidOid || relid == configs_table || relid == sources_table) {
    registry_namespace = configs_table = sources_table = InvalidOid;
    schema_checked = false;
    cache_relations = {};
    ForgetExtensionOwner();
    cache_stale = true;
    ++registry_generation;
  } else if (IsCachedSource(relid)) {
    cache_stale = true;
  }
  // The cache's tables and indexes (a REINDEX CONCURRENTLY gives an index a
  // new oid): looked up again at their next use.
  if (relid == cache_relations.documents || relid == cache_relations.documents_pkey ||
      relid == cache_relations.invalidations || relid == cache_relations.invalidations_key ||
      relid == cache_relations.invalidations_config_wide)
    cache_relations = {};
}

// Role membership decides read access, a builder's owner is its config's
// owner, and export plans name their tables' schemas: ConfigDefs remember all
// three.
void CatalogCallback(Datum, int, uint32) { cache_stale = true; }

// A call that fails inside a subtransaction never reaches ReleaseConfig():
// each subtransaction remembers the count it started with, and an abort
// restores it, so the cache can be refreshed again (a revoke_read, for one,
// takes effect) in the rest of the transaction.
struct SubxactCalls {
  SubTransactionId subid;
  int active_calls;
  SubxactCalls* outer;
};
SubxactCalls* subxact_calls = nullptr;

void SubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_START_SUB) {
    auto* entry = static_cast<SubxactCalls*>(MemoryContextAlloc(TopTransactionContext, sizeof(SubxactCalls)));
    *entry = {subid, active_calls, subxact_calls};
    subxact_calls = entry;
  } else if ((event == SUBXACT_EVENT_COMMIT_SUB || event == SUBXACT_EVENT_ABORT_SUB) && subxact_calls != nullptr &&
             subxact_calls->subid == subid) {
    if (event == SUBXACT_EVENT_ABORT_SUB) active_calls = subxact_calls->active_calls;
    SubxactCalls* done = subxact_calls;
    subxact_calls = done->outer;
    pfree(done);
  }
}

void XactCallback(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
      event == XACT_EVENT_PARALLEL_COMMIT) {
    active_calls = 0;
    subxact_calls = nullptr;  // freed with TopTransactionContext
  } else if (event == XACT_EVENT_PREPARE) {
    active_calls = 0;
    subxact_calls = nullptr;
  }
}

HTAB* ConfigHash() {
  if (configs == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = NAMEDATALEN;
    ctl.entrysize = sizeof(ConfigDef);
    ctl.hcxt = registry_cxt;
    configs = hash_create("config_guard registry", 16, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
  }
  return configs;
}

void LoadSources(ConfigDef* def, Datum source_array) {
  ArrayType* arr = DatumGetArrayTypeP(source_array);
  Datum* elems = nullptr;
  int n = 0;
  deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, nullptr, &n);

  def->sources = static_cast<SourceDef*>(MemoryContextAllocZero(registry_cxt, sizeof(SourceDef) * n));
  MemoryContext old = MemoryContextSwitchTo(registry_cxt);
  for (int i = 0; i < n; ++i) {
    SourceDef* src = &def->sources[i];
    if (get_rel_name(DatumGetObjectId(elems[i])) == nullptr)
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("a source table of config \"%s\" no longer exists", def->name),
                      errhint("Undefine the config and define it again with its current sources.")));
    const Oid relid = DatumGetObjectId(elems[i]);
    bool child = false;
    for (int c = 0; c < def->nchildren; ++c) child |= def->children[c] == relid;
    if (child) {
      Datum args[2] = {Int32GetDatum(def->config_id), ObjectIdGetDatum(relid)};
      List* chain = NIL;
      const uint64 links = RunAsOwner(Stmt::kChain, args);
      MemoryContextSwitchTo(registry_cxt);  // (SPI calls return in SPI's own context)
      for (uint64 l = 0; l < links; ++l) {
        bool link_isnull = false;
        chain = lappend_oid(
            chain, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[l], SPI_tuptable->tupdesc, 1, &link_isnull)));
      }
      DescribeChildSource(relid, chain, def->tenant_column, def->tenant_type, &src->shape);
    } else {
      DescribeSource(relid, def->tenant_column, &src->shape);
    }
    if (src->shape.tenant_type != def->tenant_type)
      ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                      errmsg("tenant column of source %s changed type since config \"%s\" was defined",
                             src->shape.qualified_name, def->name),
                      errhint("Undefine and define the config again.")));
    // to_jsonb() is polymorphic: it reads its argument's type from the call
    // expression, which a direct call must therefore supply.
    fmgr_info_cxt(F_TO_JSONB, &src->row_to_jsonb, registry_cxt);
    src->row_to_jsonb.fn_expr = reinterpret_cast<Node*>(
        makeFuncExpr(F_TO_JSONB, JSONBOID, list_make1(makeNullConst(get_rel_type_id(src->shape.relid), -1, InvalidOid)),
                     InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
    for (int k = 0; k < src->shape.nkeys; ++k) DescribeKeyType(src->shape.key_types[k], &src->keys[k], registry_cxt);
  }
  MemoryContextSwitchTo(old);
  def->nsources = n;
}

// An array of relation oids (NULL: none), copied into the registry's memory.
int LoadOids(Datum array, bool isnull, Oid** out) {
  *out = nullptr;
  if (isnull) return 0;
  Datum* elems = nullptr;
  int n = 0;
  deconstruct_array(DatumGetArrayTypeP(array), OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, nullptr, &n);
  *out = static_cast<Oid*>(MemoryContextAlloc(registry_cxt, sizeof(Oid) * n));
  for (int i = 0; i < n; ++i) (*out)[i] = DatumGetObjectId(elems[i]);
  return n;
}

// Runs its own SPI connection, so that a cached config costs no SPI at all.
ConfigDef* LoadConfig(const char* name) {
  SPI_connect();
  Datum args[2] = {CStringGetTextDatum(name), BuilderHome()};
  if (RunAsOwner(Stmt::kLoadConfig, args) == 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("config \"%s\" does not exist", name),
                    errhint("Configs are listed in config_guard.configs; create one with config_guard.define().")));

  HeapTuple tuple = SPI_tuptable->vals[0];
  TupleDesc desc = SPI_tuptable->tupdesc;
  bool isnull = false;
  ConfigDef tmp = {};
  strlcpy(tmp.name, name, NAMEDATALEN);
  tmp.config_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
  tmp.builder = DatumGetObjectId(SPI_getbinval(tuple, desc, 2, &isnull));
  if (isnull) {
    // A row from another cluster or database (pg_upgrade, a restore): the
    // function its signature names is its builder from now on.
    tmp.builder = ResolveSignature(TextDatumGetCString(SPI_getbinval(tuple, desc, 7, &isnull)));
    if (OidIsValid(tmp.builder)) AdoptBuilder(tmp.config_id, tmp.builder, false);
  } else if (DatumGetBool(SPI_getbinval(tuple, desc, 8, &isnull))) {
    // The builder prints another signature than the stored one: renamed by a
    // transaction the rename's re-signing did not see, or a row whose oid is
    // not what it seems (a dump of a physical copy of this cluster). If the
    // stored signature names another function, the two disagree: refused.
    const char* signature = TextDatumGetCString(SPI_getbinval(tuple, desc, 7, &isnull));
    const Oid named = ResolveSignature(signature);
    if (OidIsValid(named) && named != tmp.builder)
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("builder of config \"%s\" is ambiguous", name),
               errdetail("Its stored oid names %s, its stored signature names %s.", format_procedure(tmp.builder),
                         format_procedure(named)),
               errhint("Undefine the config and define it again with its builder.")));
    ResignBuilders(false);
  }
  strlcpy(tmp.tenant_column, NameStr(*DatumGetName(SPI_getbinval(tuple, desc, 3, &isnull))), NAMEDATALEN);
  tmp.tenant_type = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
  tmp.definition_id = *DatumGetUUIDP(SPI_getbinval(tuple, desc, 5, &isnull));
  tmp.owner = ConfigOwner(name, tmp.builder);
  DescribeKeyType(tmp.tenant_type, &tmp.tenant_key, registry_cxt);
  // Whatever describing the sources might run (nothing, as written), it runs
  // as the config's owner, never as the caller.
  const Datum shared = SPI_getbinval(tuple, desc, 9, &isnull);
  tmp.nshared = LoadOids(shared, isnull, &tmp.shared_sources);
  const Datum children = SPI_getbinval(tuple, desc, 10, &isnull);
  tmp.nchildren = LoadOids(children, isnull, &tmp.children);
  const Datum sources = SPI_getbinval(tuple, desc, 6, &isnull);
  IdentityScope scope(tmp.owner, true);
  scope.Pin("search_path", kSafeSearchPath);
  LoadSources(&tmp, sources);
  scope.Leave();

  // Entered only once fully loaded: a failed load leaves no half entry.
  bool found = false;
  auto* def = static_cast<ConfigDef*>(hash_search(ConfigHash(), name, HASH_ENTER, &found));
  *def = tmp;
  SPI_finish();
  return def;
}

}  // namespace

void InitRegistryCache() {
  registry_cxt = AllocSetContextCreate(CacheMemoryContext, "config_guard registry", ALLOCSET_SMALL_SIZES);
  CacheRegisterRelcacheCallback(RelcacheCallback, 0);
  CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, CatalogCallback, 0);
  CacheRegisterSyscacheCallback(PROCOID, CatalogCallback, 0);
  // Export plans and the builder's search_path name schemas: a renamed one
  // needs them built again.
  CacheRegisterSyscacheCallback(NAMESPACEOID, CatalogCallback, 0);
  RegisterXactCallback(XactCallback, nullptr);
  RegisterSubXactCallback(SubXactCallback, nullptr);
}

// The look-ups below may process invalidation messages, and RelcacheCallback
// then clears these globals: each result is computed into locals and
// published only once complete, and callers keep copies.
Oid ExtensionNamespace() {
  const Oid extension = get_extension_oid("config_guard", true);
  if (!OidIsValid(extension)) return InvalidOid;
  Oid nsp = InvalidOid;
  Relation extensions = table_open(ExtensionRelationId, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(extension));
  SysScanDesc scan = systable_beginscan(extensions, ExtensionOidIndexId, true, nullptr, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (HeapTupleIsValid(tuple)) nsp = reinterpret_cast<Form_pg_extension>(GETSTRUCT(tuple))->extnamespace;
  systable_endscan(scan);
  table_close(extensions, AccessShareLock);
  return nsp;
}

Oid RegistryNamespace() {
  if (!OidIsValid(registry_namespace)) {
    // The extension's own schema: a schema that merely has its name (in a
    // database without the extension) is nobody's registry.
    const Oid nsp = ExtensionNamespace();
    if (!OidIsValid(nsp))
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("extension config_guard is not installed in this database"),
                      errhint("Run CREATE EXTENSION config_guard.")));
    registry_namespace = nsp;
  }
  return registry_namespace;
}

Oid ConfigsTable() {
  if (!OidIsValid(configs_table)) {
    const Oid nsp = RegistryNamespace();
    const Oid configs = get_relname_relid("configs", nsp);
    const Oid sources = get_relname_relid("config_sources", nsp);
    if (!OidIsValid(configs) || !OidIsValid(sources))
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("config_guard's registry tables are missing"),
               errhint("Reinstall the extension with DROP EXTENSION and CREATE EXTENSION.")));
    sources_table = sources;
    configs_table = configs;
    return configs;
  }
  return configs_table;
}

void RequireCurrentSchema() {
  if (schema_checked) return;
  // config_sources.shared arrived with 0.5, the version this library implements.
  ConfigsTable();
  if (get_attnum(sources_table, "shared") == InvalidAttrNumber)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("extension config_guard in this database is older than its library"),
                    errhint("Run ALTER EXTENSION config_guard UPDATE.")));
  schema_checked = true;
}

bool ExtensionIsCurrent() {
  const Oid nsp = ExtensionNamespace();
  const Oid sources = OidIsValid(nsp) ? get_relname_relid("config_sources", nsp) : InvalidOid;
  // config_sources.shared arrived last, with 0.5.
  return OidIsValid(sources) && get_attnum(sources, "shared") != InvalidAttrNumber;
}

uint64 RegistryGeneration() { return registry_generation; }

Oid ConfigOwner(const char* config, Oid builder) {
  HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(builder));
  if (!HeapTupleIsValid(tuple))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("builder function of config \"%s\" no longer exists", config),
                    errhint("Undefine the config and define it again with its current builder.")));
  const Oid owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple))->proowner;
  ReleaseSysCache(tuple);
  return owner;
}

CacheRelations CacheTables() {
  if (!OidIsValid(cache_relations.invalidations_key)) {
    ConfigsTable();  // registers the registry oids the invalidation callback watches
    const Oid nsp = RegistryNamespace();
    CacheRelations r;
    r.documents = get_relname_relid("documents", nsp);
    r.documents_pkey = get_relname_relid("documents_pkey", nsp);
    r.invalidations = get_relname_relid("invalidations", nsp);
    r.invalidations_key = get_relname_relid("invalidations_key", nsp);
    r.invalidations_config_wide = get_relname_relid("invalidations_config_wide", nsp);
    if (!OidIsValid(r.documents) || !OidIsValid(r.documents_pkey) || !OidIsValid(r.invalidations) ||
        !OidIsValid(r.invalidations_key) || !OidIsValid(r.invalidations_config_wide))
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("config_guard's cache tables are missing"),
               errhint("Update the extension with ALTER EXTENSION config_guard UPDATE.")));
    cache_relations = r;
    return r;
  }
  return cache_relations;
}

bool CacheTablesPresent() {
  return OidIsValid(cache_relations.invalidations_key) || OidIsValid(get_extension_oid("config_guard", true));
}

void ValidateConfigName(const char* name) {
  const size_t len = strlen(name);
  if (len == 0 || len >= NAMEDATALEN)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid config name \"%s\"", name),
                    errdetail("A config name has 1 to %d bytes.", NAMEDATALEN - 1)));
}

ConfigDef* AcquireConfig(const char* name) {
  ValidateConfigName(name);
  // What committed since this transaction last looked (a revoke_read, an
  // undefine) applies to this call, not only to the next transaction.
  AcceptInvalidationMessages();
  // Only here, before any ConfigDef is handed out, may a stale cache be freed.
  if (cache_stale && active_calls == 0) FlushCache();
  RequireCurrentSchema();  // also resolves the registry oids the invalidation callback compares against
  auto* def = static_cast<ConfigDef*>(hash_search(ConfigHash(), name, HASH_FIND, nullptr));
  if (def == nullptr) def = LoadConfig(name);
  ++active_calls;
  return def;
}

void ReleaseConfig() {
  if (active_calls > 0) --active_calls;
}

void InvalidateRegistry() { CacheInvalidateRelcacheByRelid(ConfigsTable()); }

}  // namespace config_guard
