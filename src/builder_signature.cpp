// Keeps each config's builder signature current.
//
// A config stores its builder as an oid and a schema-qualified signature
// (config_guard.configs.builder, .builder_signature): pg_upgrade keeps no
// function oid and refuses tables holding a regprocedure, and a dump carries
// oids as numbers. The oid is trusted while the function it names has the
// stored signature; otherwise the signature names the builder (gateway.cpp,
// CG_BUILDER). So a rename that changes the signature (of the function, its
// schema or its argument type, or moving one of them to another schema) must
// carry the signature along: before such a statement, stale oids are repaired
// from their signatures; after it, the signatures of the configs whose oid
// was right are printed again from the oid.
#include "builder_signature.hpp"

#include "gateway.hpp"
#include "registry.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type_d.h"
#include "lib/stringinfo.h"
#include "tcop/utility.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace config_guard {
namespace {

ProcessUtility_hook_type prev_process_utility = nullptr;

// Whether the statement may change how a function's signature prints.
bool MayRenameSignature(const Node* stmt) { return IsA(stmt, RenameStmt) || IsA(stmt, AlterObjectSchemaStmt); }

// Whether this database has config_guard 0.4's configs table.
bool SignaturesStored() {
  const Oid nsp = ExtensionNamespace();
  if (!OidIsValid(nsp)) return false;
  const Oid configs = get_relname_relid("configs", nsp);
  return OidIsValid(configs) && get_attnum(configs, "builder_signature") != InvalidAttrNumber;
}

// The configs whose builder oid is right, after repairing the stale ones:
// an int4[] in TopTransactionContext, or 0 when there are none.
Datum RepairBuilders() {
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  Datum ids = 0;
  if (RunAsOwner(Stmt::kRepairBuilders, nullptr) == 1) {
    bool isnull = true;
    const Datum value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    if (!isnull) {
      MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
      ids = PointerGetDatum(DatumGetArrayTypePCopy(value));
      MemoryContextSwitchTo(old);
    }
  }
  PopActiveSnapshot();
  SPI_finish();
  return ids;
}

void Resign(Datum ids) {
  SPI_connect();
  PushActiveSnapshot(GetTransactionSnapshot());
  Datum args[1] = {ids};
  if (RunAsOwner(Stmt::kResignBuilders, args) > 0) InvalidateRegistry();
  PopActiveSnapshot();
  SPI_finish();
}

void ProcessUtility(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                    ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  // Every utility statement comes here (BEGIN, SET ...): the cheap test first.
  const bool watch = MayRenameSignature(pstmt->utilityStmt) && IsTransactionState() && !RecoveryInProgress() &&
                     !XactReadOnly && SignaturesStored();
  const Datum ids = watch ? RepairBuilders() : 0;
  if (prev_process_utility != nullptr)
    prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  else
    standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  if (ids != 0) {
    CommandCounterIncrement();
    Resign(ids);
  }
}

}  // namespace

void InitBuilderSignatures() {
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtility;
}

}  // namespace config_guard
