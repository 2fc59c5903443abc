#include "registry.hpp"

#include "module.hpp"
#include "privileged.hpp"
#include "shmem.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "utils/array.h"
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
SPIPlanPtr load_plan = nullptr;
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
      if (def->builder_plan) SPI_freeplan(def->builder_plan);
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
    cache_relations = {};
    ForgetExtensionOwner();
    cache_stale = true;
  } else if (IsCachedSource(relid)) {
    cache_stale = true;
  }
}

// Role membership decides read access, which ConfigDefs remember.
void MembershipCallback(Datum, int, uint32) { cache_stale = true; }

void XactCallback(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
      event == XACT_EVENT_PARALLEL_COMMIT) {
    active_calls = 0;
    ReleaseBuilderSlot();  // a builder interrupted by an error or a cancel
    EndMarkWriters(false);
  } else if (event == XACT_EVENT_PREPARE) {
    EndMarkWriters(true);
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
    DescribeSource(DatumGetObjectId(elems[i]), def->tenant_column, &src->shape);
    if (src->shape.tenant_type != def->tenant_type)
      ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                      errmsg("tenant column of source %s changed type since config \"%s\" was defined",
                             src->shape.qualified_name, def->name),
                      errhint("Undefine and define the config again.")));
    for (int k = 0; k < src->shape.nkeys; ++k) {
      Oid output = InvalidOid;
      bool varlena = false;
      getTypeOutputInfo(src->shape.key_types[k], &output, &varlena);
      fmgr_info_cxt(output, &src->key_output[k], registry_cxt);
      getTypeInputInfo(src->shape.key_types[k], &src->key_input[k], &src->key_ioparam[k]);
    }
  }
  MemoryContextSwitchTo(old);
  def->nsources = n;
}

// Runs its own SPI connection, so that a cached config costs no SPI at all.
ConfigDef* LoadConfig(const char* name) {
  SPI_connect();
  if (load_plan == nullptr) {
    Oid argtypes[1] = {TEXTOID};
    SPIPlanPtr plan = SPI_prepare(
        "SELECT c.config_id, c.builder::pg_catalog.oid, c.tenant_column, c.tenant_type::pg_catalog.oid, "
        "       c.owner::pg_catalog.oid, "
        "       pg_catalog.array_agg(s.source::pg_catalog.oid ORDER BY s.position) "
        "FROM config_guard.configs c JOIN config_guard.config_sources s ON s.config_id = c.config_id "
        "WHERE c.name = $1 GROUP BY c.config_id",
        1, argtypes);
    if (plan == nullptr) elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
    SPI_keepplan(plan);
    load_plan = plan;
  }
  Datum args[1] = {CStringGetTextDatum(name)};
  const int rc = SPI_execute_plan(load_plan, args, nullptr, true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "loading config \"%s\" failed: %s", name, SPI_result_code_string(rc));
  if (SPI_processed == 0)
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("config \"%s\" does not exist", name),
                    errhint("Configs are listed in config_guard.configs; create one with config_guard.define().")));

  HeapTuple tuple = SPI_tuptable->vals[0];
  TupleDesc desc = SPI_tuptable->tupdesc;
  bool isnull = false;
  ConfigDef tmp = {};
  strlcpy(tmp.name, name, NAMEDATALEN);
  tmp.config_id = DatumGetInt32(SPI_getbinval(tuple, desc, 1, &isnull));
  tmp.builder = DatumGetObjectId(SPI_getbinval(tuple, desc, 2, &isnull));
  strlcpy(tmp.tenant_column, NameStr(*DatumGetName(SPI_getbinval(tuple, desc, 3, &isnull))), NAMEDATALEN);
  tmp.tenant_type = DatumGetObjectId(SPI_getbinval(tuple, desc, 4, &isnull));
  tmp.owner = DatumGetObjectId(SPI_getbinval(tuple, desc, 5, &isnull));
  Oid output = InvalidOid;
  bool varlena = false;
  getTypeOutputInfo(tmp.tenant_type, &output, &varlena);
  fmgr_info_cxt(output, &tmp.tenant_output, registry_cxt);
  LoadSources(&tmp, SPI_getbinval(tuple, desc, 6, &isnull));

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
  CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, MembershipCallback, 0);
  RegisterXactCallback(XactCallback, nullptr);
}

Oid RegistryNamespace() {
  if (!OidIsValid(registry_namespace)) {
    registry_namespace = get_namespace_oid("config_guard", true);
    if (!OidIsValid(registry_namespace))
      ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                      errmsg("extension config_guard is not installed in this database"),
                      errhint("Run CREATE EXTENSION config_guard.")));
  }
  return registry_namespace;
}

Oid ConfigsTable() {
  if (!OidIsValid(configs_table)) {
    const Oid nsp = RegistryNamespace();
    configs_table = get_relname_relid("configs", nsp);
    sources_table = get_relname_relid("config_sources", nsp);
    if (!OidIsValid(configs_table) || !OidIsValid(sources_table))
      ereport(ERROR,
              (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE), errmsg("config_guard's registry tables are missing"),
               errhint("Reinstall the extension with DROP EXTENSION and CREATE EXTENSION.")));
  }
  return configs_table;
}

bool CacheInstalled() { return OidIsValid(get_relname_relid("documents", RegistryNamespace())); }

const CacheRelations& CacheTables() {
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
  }
  return cache_relations;
}

void ValidateConfigName(const char* name) {
  const size_t len = strlen(name);
  if (len == 0 || len >= NAMEDATALEN)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid config name \"%s\"", name),
                    errdetail("A config name has 1 to %d bytes.", NAMEDATALEN - 1)));
}

ConfigDef* AcquireConfig(const char* name) {
  ValidateConfigName(name);
  // Only here, before any ConfigDef is handed out, may a stale cache be freed.
  if (cache_stale && active_calls == 0) FlushCache();
  ConfigsTable();  // resolves the registry oids the invalidation callback compares against
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
