// Builder identity across pg_upgrade and restores (see builder_identity.hpp).
#include "builder_identity.hpp"

#include "gateway.hpp"
#include "identity.hpp"
#include "registry.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/extension.h"
#include "storage/lmgr.h"
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

// A cancel, a statement timeout or a shutdown that lands in a lookup is never
// swallowed with the lookup's own errors.
bool IsInterruption(const ErrorData* error) {
  return ERRCODE_TO_CATEGORY(error->sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION;
}

// Runs `work` in a subtransaction: where `quiet`, its errors (other than an
// interruption) are swallowed and false is returned; else they are raised
// after the subtransaction is rolled back.
template <typename Work>
bool InSubtransaction(bool quiet, Work work) {
  MemoryContext caller_cxt = CurrentMemoryContext;
  ResourceOwner caller_owner = CurrentResourceOwner;
  bool done = true;
  BeginInternalSubTransaction(nullptr);
  MemoryContextSwitchTo(caller_cxt);
  PG_TRY();
  {
    work();
    ReleaseCurrentSubTransaction();
  }
  PG_CATCH();
  {
    MemoryContextSwitchTo(caller_cxt);
    ErrorData* error = CopyErrorData();
    FlushErrorState();
    RollbackAndReleaseCurrentSubTransaction();
    CurrentResourceOwner = caller_owner;
    if (!quiet || IsInterruption(error)) ReThrowError(error);
    FreeErrorData(error);
    done = false;
  }
  PG_END_TRY();
  MemoryContextSwitchTo(caller_cxt);
  CurrentResourceOwner = caller_owner;
  return done;
}

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

bool CanWrite() { return IsTransactionState() && !RecoveryInProgress() && !XactReadOnly; }

// A lock on the extension's own object: define() takes it RowExclusive (so
// defines run side by side), a rename Share (so renames run side by side);
// the two conflict, and each holds it to the end of its transaction.
void LockSignatures(LOCKMODE mode) {
  const Oid extension = get_extension_oid("config_guard", true);
  if (OidIsValid(extension)) LockDatabaseObject(ExtensionRelationId, extension, 0, mode);
}

// The rows from elsewhere and the functions their signatures name now, before
// a rename (palloc'd; n set).
struct Foreign {
  int32 config_id;
  Oid builder;
  char* signature;
};

Foreign* ForeignBuilders(int* n) {
  SPI_connect();
  Datum home[1] = {BuilderHome()};
  const uint64 rows = RunAsOwner(Stmt::kForeignBuilders, home, nullptr, GetLatestSnapshot());
  Foreign* found = static_cast<Foreign*>(MemoryContextAlloc(CurTransactionContext, sizeof(Foreign) * (rows + 1)));
  for (uint64 i = 0; i < rows; ++i) {
    bool isnull = false;
    found[i].config_id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
    found[i].signature = MemoryContextStrdup(
        CurTransactionContext,
        TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull)));
  }
  SPI_finish();
  for (uint64 i = 0; i < rows; ++i) found[i].builder = ResolveSignature(found[i].signature);
  *n = static_cast<int>(rows);
  return found;
}

// After the rename: a row from elsewhere whose signature no longer names the
// function it named before was renamed by this statement; it adopts that
// function (only the rows this rename touched are written, so the renaming
// transaction holds no lock on any other config).
void AdoptRenamed(const Foreign* before, int n) {
  for (int i = 0; i < n; ++i) {
    if (!OidIsValid(before[i].builder)) continue;
    if (ResolveSignature(before[i].signature) == before[i].builder) continue;
    AdoptBuilder(before[i].config_id, before[i].builder, true);
  }
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  // Every utility statement comes here (BEGIN, SET ...): the cheap test first.
  const bool watch = MayChangeSignatures(pstmt->utilityStmt) && CanWrite() && ExtensionIsCurrent();
  // Waits for configs being defined: the re-signing below must see them.
  if (watch) LockSignatures(ShareLock);
  int nforeign = 0;
  const Foreign* foreign = watch ? ForeignBuilders(&nforeign) : nullptr;
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  if (!watch) return;
  CommandCounterIncrement();
  AdoptRenamed(foreign, nforeign);
  ResignBuilders(true);
}

}  // namespace

void InitBuilderIdentity() {
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
}

void LockSignaturesForDefine() { LockSignatures(RowExclusiveLock); }

Datum BuilderHome() {
  // (signed, as pg_control_system() shows it to the 0.3 -> 0.4 update script)
  return CStringGetTextDatum(
      psprintf(INT64_FORMAT ":%u:%u", static_cast<int64>(GetSystemIdentifier()), MyDatabaseId, ConfigsTable()));
}

Oid ResolveSignature(const char* signature) {
  // A signature may name a type or a schema that is gone, which to_regprocedure
  // reports as an error in PostgreSQL 15: looked up in a subtransaction.
  Oid found = InvalidOid;
  InSubtransaction(true, [&] {
    // As the extension's owner: a name lookup needs USAGE on the schemas it
    // passes, which the caller (a granted reader) may lack. Nothing a role
    // defines runs in it. The subtransaction's abort restores the user.
    Oid saved_user = InvalidOid;
    int saved_context = 0;
    GetUserIdAndSecContext(&saved_user, &saved_context);
    SetUserIdAndSecContext(ExtensionOwner(), saved_context | SECURITY_RESTRICTED_OPERATION);
    const int nest = NewGUCNestLevel();
    (void)set_config_option("search_path", kSafeSearchPath, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                            false);
    found = DatumGetObjectId(DirectFunctionCall1(to_regprocedure, CStringGetTextDatum(signature)));
    AtEOXact_GUC(true, nest);
    SetUserIdAndSecContext(saved_user, saved_context);
  });
  return found;
}

void AdoptBuilder(int32 config_id, Oid builder, bool wait) {
  if (!CanWrite()) return;
  InSubtransaction(!wait, [&] {
    SPI_connect();
    Datum args[3] = {Int32GetDatum(config_id), ObjectIdGetDatum(builder), BuilderHome()};
    RunAsOwner(wait ? Stmt::kAdoptBuilderWait : Stmt::kAdoptBuilder, args, nullptr, GetLatestSnapshot());
    SPI_finish();
  });
}

void ResignBuilders(bool wait) {
  if (!CanWrite()) return;
  // A fresh snapshot, whatever the isolation level: configs defined by
  // transactions that committed while this statement waited, or after this
  // transaction's snapshot, are carried along too.
  bool resigned = false;
  InSubtransaction(!wait, [&] {
    SPI_connect();
    Datum home[1] = {BuilderHome()};
    resigned = RunAsOwner(wait ? Stmt::kResignBuilders : Stmt::kResignBuildersSkipLocked, home, nullptr,
                          GetLatestSnapshot()) > 0;
    SPI_finish();
  });
  if (resigned) InvalidateRegistry();
}

}  // namespace config_guard
