// Read access to a config: its owner, roles granted with grant_read(), and
// their members. Documents may hold rows that row-level security would hide
// from other roles, so get() refuses everyone else. Forcing rebuilds
// (invalidate, invalidate_all), granting and revoking take ownership.
#include "gateway.hpp"
#include "module.hpp"
#include "registry.hpp"

extern "C" {
#include "utils/acl.h"
}

namespace config_guard {
namespace {

bool IsGrantedReader(int32 config_id, Oid user) {
  SPI_connect();
  Datum values[1] = {Int32GetDatum(config_id)};
  const uint64 n = RunAsOwner(Stmt::kReaders, values);
  bool granted = false;
  for (uint64 i = 0; i < n && !granted; ++i) {
    bool isnull = false;
    granted = has_privs_of_role(
        user, DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull)));
  }
  SPI_finish();
  return granted;
}

void ChangeGrant(FunctionCallInfo fcinfo, Stmt stmt, const char* action) {
  RequirePreloaded();
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("config and role must not be null")));
  SPI_connect();
  ConfigDef* def = AcquireConfig(text_to_cstring(PG_GETARG_TEXT_PP(0)));
  RequireOwnership(*def, action);
  Datum values[2] = {Int32GetDatum(def->config_id), PG_GETARG_DATUM(1)};
  RunAsOwner(stmt, values);
  ReleaseConfig();
  SPI_finish();
  InvalidateRegistry();
}

}  // namespace

void RequireOwnership(const ConfigDef& def, const char* action) {
  if (!has_privs_of_role(GetUserId(), def.owner))
    ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("must be owner of config \"%s\"", def.name),
                    errdetail("%s needs ownership of the config: the owner of its builder function, or a member of "
                              "that role.",
                              action)));
}

bool HasReadAccess(ConfigDef* def) {
  const Oid user = GetUserId();
  return def->read_checked_user == user || has_privs_of_role(user, def->owner) || IsGrantedReader(def->config_id, user);
}

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
  ChangeGrant(fcinfo, Stmt::kGrantRead, "grant_read");
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_revoke_read) {
  ChangeGrant(fcinfo, Stmt::kRevokeRead, "revoke_read");
  PG_RETURN_VOID();
}

}  // namespace config_guard
