// Builder identity across pg_upgrade and restores (see builder_identity.hpp).
#include "builder_identity.hpp"

#include "gateway.hpp"
#include "identity.hpp"
#include "registry.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;

// Statements that may change how a function's signature prints: renaming or
// moving a function, a schema, a type or a domain (or an extension's objects).
bool MayChangeSignatures(const Node* stmt) {
  if (IsA(stmt, RenameStmt)) {
    switch (castNode(RenameStmt, stmt)->renameType) {
      case OBJECT_FUNCTION:
      case OBJECT_PROCEDURE:
      case OBJECT_ROUTINE:
      case OBJECT_SCHEMA:
      case OBJECT_TYPE:
      case OBJECT_DOMAIN:
        return true;
      default:
        return false;
    }
  }
  if (IsA(stmt, AlterObjectSchemaStmt)) {
    switch (castNode(AlterObjectSchemaStmt, stmt)->objectType) {
      case OBJECT_FUNCTION:
      case OBJECT_PROCEDURE:
      case OBJECT_ROUTINE:
      case OBJECT_TYPE:
      case OBJECT_DOMAIN:
      case OBJECT_EXTENSION:
        return true;
      default:
        return false;
    }
  }
  return false;
}

// Whether this database has config_guard 0.4's configs table.
bool IdentityStored() {
  const Oid nsp = ExtensionNamespace();
  if (!OidIsValid(nsp)) return false;
  const Oid configs = get_relname_relid("configs", nsp);
  return OidIsValid(configs) && get_attnum(configs, "builder_home") != InvalidAttrNumber;
}

bool CanWrite() { return IsTransactionState() && !RecoveryInProgress() && !XactReadOnly; }

// Rows from elsewhere adopt their builders (before a rename: their
// signatures name the functions as the dump or the upgrade left them).
void AdoptForeignBuilders() {
  SPI_connect();
  Datum home[1] = {BuilderHome()};
  const uint64 n = RunAsOwner(Stmt::kForeignBuilders, home, nullptr, GetLatestSnapshot());
  SPITupleTable* rows = SPI_tuptable;
  for (uint64 i = 0; i < n; ++i) {
    bool isnull = false;
    const int32 config_id = DatumGetInt32(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
    const Oid builder = ResolveSignature(TextDatumGetCString(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull)));
    if (OidIsValid(builder)) AdoptBuilder(config_id, builder);
  }
  SPI_finish();
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  // Every utility statement comes here (BEGIN, SET ...): the cheap test first.
  const bool watch = MayChangeSignatures(pstmt->utilityStmt) && CanWrite() && IdentityStored();
  if (watch) AdoptForeignBuilders();
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  if (watch) ResignBuilders();
}

}  // namespace

void InitBuilderIdentity() {
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
}

Datum BuilderHome() {
  return CStringGetTextDatum(psprintf(UINT64_FORMAT ":%u", GetSystemIdentifier(), ConfigsTable()));
}

Oid ResolveSignature(const char* signature) {
  // A signature may name a type or a schema that is gone, which to_regprocedure
  // reports as an error in PostgreSQL 15: looked up in a subtransaction.
  MemoryContext caller_cxt = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  Oid found = InvalidOid;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(caller_cxt);
  PG_TRY();
  {
    const int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", kSafeSearchPath, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                            false);
    const Datum result = DirectFunctionCall1(to_regprocedure, CStringGetTextDatum(signature));
    found = DatumGetObjectId(result);
    AtEOXact_GUC(true, nest);
    ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_cxt);
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    found = InvalidOid;
  }
  PG_END_TRY();
  MemoryContextSwitchTo(caller_cxt);
  CurrentResourceOwner = caller_owner;
  return found;
}

void AdoptBuilder(int32 config_id, Oid builder) {
  if (!CanWrite()) return;
  SPI_connect();
  Datum args[3] = {Int32GetDatum(config_id), ObjectIdGetDatum(builder), BuilderHome()};
  RunAsOwner(Stmt::kAdoptBuilder, args, nullptr, GetLatestSnapshot());
  SPI_finish();
}

void ResignBuilders() {
  if (!CanWrite()) return;
  CommandCounterIncrement();
  SPI_connect();
  // A fresh snapshot, whatever the isolation level: configs defined by
  // transactions that committed while this statement waited, or after this
  // transaction's snapshot, are carried along too.
  Datum home[1] = {BuilderHome()};
  if (RunAsOwner(Stmt::kResignBuilders, home, nullptr, GetLatestSnapshot()) > 0) InvalidateRegistry();
  SPI_finish();
}

}  // namespace config_guard
