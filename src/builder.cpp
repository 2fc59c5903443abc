#include "builder.hpp"
#include "pg_compat.hpp"

#include "gateway.hpp"
#include "identity.hpp"
#include "read_check.hpp"
#include "subtransaction.hpp"

extern "C" {
#include "access/xact.h"
#include "storage/proc.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_proc.h"
#include "utils/acl.h"
#include "access/transam.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace config_guard {
namespace {

// The server's text search configuration as postgresql.conf sets it, read by
// the postmaster at preload: a role's or a session's own choice (ALTER ROLE
// ... SET, SET) must not decide how a shared document parses text.
char server_text_search_config[2 * NAMEDATALEN] = "pg_catalog.simple";

// The builder proper, as the owner: returns its document, or (Datum) 0 for NULL.
Datum InvokeAsOwner(const ConfigDef& def, const TenantKey& tenant) {
  const char* schema = get_namespace_name(get_func_namespace(def.builder));
  if (schema == nullptr)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("builder function of config \"%s\" no longer exists", def.name)));
  IdentityScope scope(def.owner, true);
  scope.Pin("search_path", psprintf("pg_catalog, %s, pg_temp", quote_identifier(schema)));
  scope.PinDeterministicOutput();
  scope.Pin("default_text_search_config", server_text_search_config);

  if (compat::FunctionAclCheck(def.builder, def.owner, ACL_EXECUTE) != ACLCHECK_OK)
    aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_FUNCTION, get_func_name(def.builder));
  InvokeFunctionExecuteHook(def.builder);
  FmgrInfo flinfo;
  fmgr_info(def.builder, &flinfo);
  LOCAL_FCINFO(fcinfo, 1);
  InitFunctionCallInfoData(*fcinfo, &flinfo, 1, get_typcollation(def.tenant_type), nullptr, nullptr);
  fcinfo->args[0].value = tenant.value;
  fcinfo->args[0].isnull = false;
  Datum document = FunctionCallInvoke(fcinfo);
  if (fcinfo->isnull) document = static_cast<Datum>(0);
  scope.Leave();
  return document;
}

// pg_current_snapshot() leaves the calling transaction out of its list of
// transactions in progress, so once a later transaction has ended (xmax past
// this one) the snapshot calls this transaction's id visible: a mark it
// writes after the document is stored would then count as covered. The
// document's snapshot lists this transaction as in progress instead (its
// writes before the build are in the document, and their marks are folded
// away when it is stored). A transaction id assigned after the snapshot is
// past its xmax already.
Datum WithOwnTransactionInProgress(Datum snapshot) {
  const FullTransactionId own = GetTopFullTransactionIdIfAny();
  if (!FullTransactionIdIsValid(own)) return snapshot;
  const char* text = DatumGetCString(DirectFunctionCall1(pg_snapshot_out, snapshot));
  uint64 xmin = 0;
  uint64 xmax = 0;
  int consumed = 0;
  if (sscanf(text, UINT64_FORMAT ":" UINT64_FORMAT ":%n", &xmin, &xmax, &consumed) != 2)
    elog(ERROR, "unexpected snapshot \"%s\"", text);
  const uint64 xid = U64FromFullTransactionId(own);
  if (xid >= xmax) return snapshot;
  // The list is sorted: insert this transaction's id in its place.
  StringInfoData list;
  initStringInfo(&list);
  bool placed = false;
  const char* p = text + consumed;
  while (*p != '\0') {
    char* end = nullptr;
    const uint64 other = strtoull(p, &end, 10);
    if (!placed && xid <= other) {
      if (xid < other) appendStringInfo(&list, "%s" UINT64_FORMAT, list.len > 0 ? "," : "", xid);
      placed = true;
    }
    appendStringInfo(&list, "%s" UINT64_FORMAT, list.len > 0 ? "," : "", other);
    p = *end == ',' ? end + 1 : end;
  }
  if (!placed) appendStringInfo(&list, "%s" UINT64_FORMAT, list.len > 0 ? "," : "", xid);
  const char* updated = psprintf(UINT64_FORMAT ":" UINT64_FORMAT ":%s", xid < xmin ? xid : xmin, xmax, list.data);
  return DirectFunctionCall1(pg_snapshot_in, CStringGetDatum(updated));
}

// The builds in progress in this backend, innermost first (a builder may call
// get()).
struct BuildInProgress {
  const ConfigDef* def;
  int32 config_id;
  bool wrote_own_sources;
  Oid refused_read;  // a relation the read check refused, even if the builder caught the error
  BuildInProgress* outer;
};
BuildInProgress* current_build = nullptr;

void CallBuilder(ConfigDef* def, const TenantKey& tenant, BuildResult* result, MemoryContext result_cxt) {
  const TimestampTz start = GetCurrentTimestamp();
  // As for a statement that may write: the builder sees this transaction's
  // own writes and, in READ COMMITTED, everything committed until now. The
  // snapshot is recorded before the builder runs, so whatever it reads is at
  // least that new.
  CommandCounterIncrement();
  PushActiveSnapshot(GetTransactionSnapshot());
  const Datum snapshot = WithOwnTransactionInProgress(OidFunctionCall0(F_PG_CURRENT_SNAPSHOT));
  const TimestampTz built_at = GetCurrentTimestamp();
  const Datum document = InvokeAsOwner(*def, tenant);
  if (OidIsValid(current_build->refused_read)) RefuseRead(*def, current_build->refused_read);
  PopActiveSnapshot();
  if (document == static_cast<Datum>(0))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("builder of config \"%s\" returned NULL for tenant %s", def->name, tenant.display)));
  MemoryContext old = MemoryContextSwitchTo(result_cxt);
  result->snapshot = datumCopy(snapshot, false, -1);
  result->built_at = built_at;
  // A copy with no toast pointer left: the document outlives the builder.
  result->document = PointerGetDatum(PG_DETOAST_DATUM_COPY(document));
  MemoryContextSwitchTo(old);
  result->build_ms = static_cast<double>(GetCurrentTimestamp() - start) / 1000.0;
}

bool IsInterruption(int sqlerrcode) {
  return sqlerrcode == ERRCODE_QUERY_CANCELED || sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
         sqlerrcode == ERRCODE_CRASH_SHUTDOWN || sqlerrcode == ERRCODE_CANNOT_CONNECT_NOW;
}

struct BuildCall {
  ConfigDef* def;
  const TenantKey* tenant;
  BuildResult* result;
  MemoryContext result_cxt;
};

void CallBuilderThunk(void* arg) {
  auto* call = static_cast<BuildCall*>(arg);
  CallBuilder(call->def, *call->tenant, call->result, call->result_cxt);
}

}  // namespace

void InitBuilder() {
  if (const char* value = GetConfigOption("default_text_search_config", true, false))
    strlcpy(server_text_search_config, value, sizeof server_text_search_config);
}

void NoteSourceWrite(int32 config_id) {
  for (BuildInProgress* b = current_build; b != nullptr; b = b->outer) {
    if (b->config_id == config_id) b->wrote_own_sources = true;
  }
}

void NoteRefusedRead(Oid relid) {
  // Every enclosing build read it too, through the one that did.
  for (BuildInProgress* b = current_build; b != nullptr; b = b->outer) {
    if (!OidIsValid(b->refused_read)) b->refused_read = relid;
  }
}

const ConfigDef* BuilderCodeRunning() {
  return current_build != nullptr && !InGateway() ? current_build->def : nullptr;
}

BuildResult RunBuilder(ConfigDef* def, const TenantKey& tenant) {
  BuildResult result = {};
  BuildCall call = {def, &tenant, &result, CurrentMemoryContext};
  BuildInProgress build = {def, def->config_id, false, InvalidOid, current_build};
  current_build = &build;
  // Catches every error, so the stack is restored before any is rethrown.
  ErrorData* error = RunInSubtransaction(CallBuilderThunk, &call);
  current_build = build.outer;
  result.wrote_own_sources = build.wrote_own_sources;
  result.ok = error == nullptr;
  result.error = error;
  result.timed_out =
      error != nullptr && error->sqlerrcode == ERRCODE_QUERY_CANCELED && StatementTimeout > 0 &&
      TimestampDifferenceExceeds(GetCurrentStatementStartTimestamp(), GetCurrentTimestamp(), StatementTimeout);
  if (error != nullptr && IsInterruption(error->sqlerrcode) && !result.timed_out) ReThrowError(error);
  return result;
}

}  // namespace config_guard
