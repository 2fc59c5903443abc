// Read access to a config: its owner, roles granted with grant_read(), and
// their members. Documents may hold rows that row-level security would hide
// from other roles, so get() and invalidate() refuse everyone else.
#include "module.hpp"
#include "privileged.hpp"
#include "registry.hpp"

extern "C" {
#include "catalog/pg_type_d.h"
#include "utils/acl.h"
}

namespace config_guard {
namespace {

bool IsGrantedReader(int32 config_id, Oid user) {
  static SPIPlanPtr plan = nullptr;
  SPI_connect();
  Oid types[2] = {INT4OID, OIDOID};
  KeptPlan(&plan,
           "SELECT 1 FROM config_guard.readers r WHERE r.config_id = $1 "
           "AND pg_catalog.pg_has_role($2, r.reader::pg_catalog.oid, 'USAGE') LIMIT 1",
           2, types);
  Datum values[2] = {Int32GetDatum(config_id), ObjectIdGetDatum(user)};
  const int rc = SPI_execute_plan(plan, values, nullptr, true, 1);
  if (rc != SPI_OK_SELECT) elog(ERROR, "reader lookup failed: %s", SPI_result_code_string(rc));
  const bool granted = SPI_processed > 0;
  SPI_finish();
  return granted;
}

ConfigDef* OwnedConfig(FunctionCallInfo fcinfo) {
  RequirePreloaded();
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config and role must not be null")));
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  if (!has_privs_of_role(GetUserId(), def->owner))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be owner of config \"%s\"", def->name)));
  return def;
}

}  // namespace

void RequireReadAccess(ConfigDef* def) {
  const Oid user = GetUserId();
  if (def->read_checked_user == user) return;
  if (!has_privs_of_role(user, def->owner) && !IsGrantedReader(def->config_id, user))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied for config \"%s\"", def->name),
                    errhint("The config's owner can allow it with config_guard.grant_read('%s', '%s').", def->name,
                            GetUserNameFromId(user, false))));
  def->read_checked_user = user;
}

CG_FUNCTION(config_guard_grant_read) {
  SPI_connect();
  ConfigDef* def = OwnedConfig(fcinfo);
  Oid types[2] = {INT4OID, REGROLEOID};
  Datum values[2] = {Int32GetDatum(def->config_id), PG_GETARG_DATUM(1)};
  ExecuteAs(ExtensionOwner(),
            "INSERT INTO config_guard.readers (config_id, reader) VALUES ($1, $2) ON CONFLICT DO NOTHING", 2, types,
            values, nullptr, SPI_OK_INSERT);
  ReleaseConfig();
  SPI_finish();
  InvalidateRegistry();
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_revoke_read) {
  SPI_connect();
  ConfigDef* def = OwnedConfig(fcinfo);
  Oid types[2] = {INT4OID, REGROLEOID};
  Datum values[2] = {Int32GetDatum(def->config_id), PG_GETARG_DATUM(1)};
  ExecuteAs(ExtensionOwner(), "DELETE FROM config_guard.readers WHERE config_id = $1 AND reader = $2", 2, types, values,
            nullptr, SPI_OK_DELETE);
  ReleaseConfig();
  SPI_finish();
  InvalidateRegistry();
  PG_RETURN_VOID();
}

}  // namespace config_guard
