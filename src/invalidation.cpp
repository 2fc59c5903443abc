#include "invalidation.hpp"

#include <initializer_list>

#include "module.hpp"
#include "privileged.hpp"
#include "registry.hpp"
#include "shmem.hpp"
#include "tenant.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "lib/stringinfo.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
}

namespace config_guard {
namespace {

constexpr const char* kNewTable = "config_guard_new";
constexpr const char* kOldTable = "config_guard_old";

struct TriggerEvent {
  const char* suffix;
  const char* event;
  const char* referencing;  // transition tables the statement exposes
};

constexpr TriggerEvent kEvents[] = {
    {"insert", "INSERT", "REFERENCING NEW TABLE AS config_guard_new"},
    {"update", "UPDATE", "REFERENCING OLD TABLE AS config_guard_old NEW TABLE AS config_guard_new"},
    {"delete", "DELETE", "REFERENCING OLD TABLE AS config_guard_old"},
    {"truncate", "TRUNCATE", ""},
};

char* TriggerName(int32 config_id, const char* suffix) { return psprintf("config_guard_%d_%s", config_id, suffix); }

// Plans of the trigger's INSERT, per trigger, kept for the backend's life.
struct TriggerPlan {
  Oid tgoid;  // hash key
  Oid relid;
  SPIPlanPtr plan;
};
HTAB* trigger_plans = nullptr;

SPIPlanPtr PlanFor(const Trigger* trigger, Oid relid, const TriggerData* data, const char* tenant_column) {
  if (trigger_plans == nullptr) {
    HASHCTL ctl = {};
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(TriggerPlan);
    trigger_plans = hash_create("config_guard trigger plans", 16, &ctl, HASH_ELEM | HASH_BLOBS);
  }
  bool found = false;
  auto* entry = static_cast<TriggerPlan*>(hash_search(trigger_plans, &trigger->tgoid, HASH_ENTER, &found));
  if (found && entry->relid == relid && entry->plan != nullptr) return entry->plan;
  if (found && entry->plan != nullptr) SPI_freeplan(entry->plan);
  entry->plan = nullptr;
  entry->relid = relid;

  // Distinct tenants of the statement's rows, as text; NULL tenants are no
  // tenant at all (a NULL mark would mean "every tenant").
  const char* col = quote_identifier(tenant_column);
  StringInfoData sql;
  initStringInfo(&sql);
  appendStringInfoString(&sql, "INSERT INTO config_guard.invalidations (config_id, tenant) ");
  if (TRIGGER_FIRED_BY_TRUNCATE(data->tg_event)) {
    appendStringInfoString(&sql, "VALUES ($1, NULL)");
  } else {
    appendStringInfoString(&sql, "SELECT DISTINCT $1, t.tenant FROM (");
    bool first = true;
    for (const char* table : {data->tg_newtable ? kNewTable : nullptr, data->tg_oldtable ? kOldTable : nullptr}) {
      if (table == nullptr) continue;
      appendStringInfo(&sql, "%sSELECT r.%s::pg_catalog.text AS tenant FROM %s r", first ? "" : " UNION ALL ", col,
                       table);
      first = false;
    }
    appendStringInfoString(&sql, ") t WHERE t.tenant IS NOT NULL");
  }
  appendStringInfoString(&sql, " ON CONFLICT DO NOTHING");
  Oid types[1] = {INT4OID};
  SPIPlanPtr plan = SPI_prepare(sql.data, 1, types);
  if (plan == nullptr) elog(ERROR, "preparing the invalidation query failed: %s", SPI_result_code_string(SPI_result));
  SPI_keepplan(plan);
  entry->plan = plan;
  return plan;
}

void AppendInvalidation(int32 config_id, const char* tenant_text) {
  NoteMarkWriter(config_id);
  Oid types[2] = {INT4OID, TEXTOID};
  Datum values[2] = {Int32GetDatum(config_id), tenant_text ? CStringGetTextDatum(tenant_text) : Datum(0)};
  const char nulls[2] = {' ', tenant_text ? ' ' : 'n'};
  ExecuteAs(ExtensionOwner(),
            "INSERT INTO config_guard.invalidations (config_id, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2,
            types, values, nulls, SPI_OK_INSERT);
}

}  // namespace

void InstallTriggers(int32 config_id, Oid source, const char* tenant_column) {
  const char* table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(source)), get_rel_name(source));
  for (const TriggerEvent& e : kEvents) {
    char* sql = psprintf(
        "CREATE TRIGGER %s AFTER %s ON %s %s FOR EACH STATEMENT "
        "EXECUTE FUNCTION config_guard.invalidation_trigger(%s, %s)",
        quote_identifier(TriggerName(config_id, e.suffix)), e.event, table, e.referencing,
        quote_literal_cstr(psprintf("%d", config_id)), quote_literal_cstr(tenant_column));
    const int rc = SPI_execute(sql, false, 0);
    if (rc != SPI_OK_UTILITY) elog(ERROR, "creating invalidation trigger failed: %s", SPI_result_code_string(rc));
  }
}

void DropTriggers(int32 config_id, Oid source) {
  if (get_rel_name(source) == nullptr) return;
  const char* table = quote_qualified_identifier(get_namespace_name(get_rel_namespace(source)), get_rel_name(source));
  for (const TriggerEvent& e : kEvents) {
    char* sql = psprintf("DROP TRIGGER IF EXISTS %s ON %s", quote_identifier(TriggerName(config_id, e.suffix)), table);
    const int rc = SPI_execute(sql, false, 0);
    if (rc != SPI_OK_UTILITY) elog(ERROR, "dropping invalidation trigger failed: %s", SPI_result_code_string(rc));
  }
}

// The trigger works without shared_preload_libraries too: writes to a source
// must never fail because of the cache.
CG_FUNCTION(config_guard_invalidation_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("config_guard.invalidation_trigger() must be called as a trigger")));
  auto* data = reinterpret_cast<TriggerData*>(fcinfo->context);
  const Trigger* trigger = data->tg_trigger;
  if (!TRIGGER_FIRED_FOR_STATEMENT(data->tg_event) || !TRIGGER_FIRED_AFTER(data->tg_event) || trigger->tgnargs != 2)
    ereport(ERROR,
            (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
             errmsg("config_guard.invalidation_trigger() must be an AFTER statement trigger with two arguments")));
  const int32 config_id = pg_strtoint32(trigger->tgargs[0]);

  SPI_connect();
  if (SPI_register_trigger_data(data) != SPI_OK_TD_REGISTER) elog(ERROR, "registering transition tables failed");
  SPIPlanPtr plan = PlanFor(trigger, RelationGetRelid(data->tg_relation), data, trigger->tgargs[1]);
  NoteMarkWriter(config_id);
  Datum values[1] = {Int32GetDatum(config_id)};
  ExecutePlanAs(ExtensionOwner(), plan, values, nullptr, false, SPI_OK_INSERT);
  SPI_finish();
  return PointerGetDatum(nullptr);
}

// invalidate(config, tenant) and invalidate_all(config): one mark, in the
// caller's transaction, for one tenant or (NULL) for every tenant.
static void InvalidateFromSql(FunctionCallInfo fcinfo, bool one_tenant) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config must not be null")));
  SPI_connect();
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  RequireReadAccess(def);
  AppendInvalidation(def->config_id, one_tenant ? TenantFromArgument(fcinfo, 1, *def).text : nullptr);
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

CG_FUNCTION(config_guard_install_triggers) {
  RequirePreloaded();
  SPI_connect();
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  for (int i = 0; i < def->nsources; ++i) {
    DropTriggers(def->config_id, def->sources[i].shape.relid);
    InstallTriggers(def->config_id, def->sources[i].shape.relid, def->tenant_column);
  }
  ReleaseConfig();
  SPI_finish();
  PG_RETURN_VOID();
}

}  // namespace config_guard
