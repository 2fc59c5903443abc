// Which work takes an admission slot, and when it goes back (see
// admission.hpp); the queue itself is admission_queue.cpp's.
#include "admission.hpp"
#include "pg_compat.hpp"

#include "admission_queue.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "optimizer/planner.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
}

namespace config_guard {
namespace {

planner_hook_type prev_planner = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

// This backend: how deep it is in work that holds its slot (a statement's
// execution, a utility statement), and the subtransaction the slot was taken
// in.
int nesting = 0;
SubTransactionId slot_subxact = InvalidSubTransactionId;
// The top-level executions that share the slot this backend holds: several
// portals may be open at once (the extended protocol), and the slot goes back
// when the last one is done or suspended, never while another still runs.
constexpr int kMaxHolders = 16;
const void* holders[kMaxHolders];
int nholders = 0;

// A slot is held while the backend works on a top-level statement: while its
// execution runs (ExecutorRun, ExecutorFinish: a FETCH takes one for its own
// run, a suspended portal or an idle transaction holds none), and for the
// whole of a utility statement that does work (DO, CALL, COPY, CREATE INDEX,
// VACUUM ...). Work nested inside takes no second slot.

// Takes the slot for the outermost piece of work. The caller runs the work
// with `nesting` raised (undone however the work ends), then calls
// ReleaseSlot() if this returned true; on an error the abort callbacks give
// the slot back.
bool TakeSlotForWork() {
  if (nesting > 0 || !AdmissionQueueReady() || IsParallelWorker()) return false;
  RoleLimit* e = LimitForThisSession();
  if (e == nullptr) return false;
  // Before the wait: an error or a cancel while queued gives the place back
  // with the (sub)transaction that waited.
  slot_subxact = GetCurrentSubTransactionId();
  AcquireSlot(e);
  return true;
}

// Runs work(arg) one level deeper; `nesting` comes back on every exit path.
template <typename Work>
void Nested(Work work) {
  nesting++;
  PG_TRY();
  { work(); }
  PG_FINALLY();
  { nesting--; }
  PG_END_TRY();
}

int HolderIndex(const void* query) {
  for (int i = 0; i < nholders; ++i) {
    if (holders[i] == query) return i;
  }
  return -1;
}

// A top-level execution starts or resumes work: it shares the slot, taking it
// if no other execution holds it.
void HoldFor(const void* query) {
  if (nesting > 0 || HolderIndex(query) >= 0) return;
  if (nholders == 0 && !TakeSlotForWork()) return;  // not limited
  if (nholders == kMaxHolders) return;              // works under the slot the others hold
  holders[nholders++] = query;
}

// It is done, or suspended until its next fetch: the slot goes back with the
// last holder.
void LetGo(const void* query) {
  const int i = HolderIndex(query);
  if (i < 0) return;
  holders[i] = holders[--nholders];
  if (nholders == 0) ReleaseSlot();
}

void ForgetHolders() { nholders = 0; }

// Planning is work too: constant folding runs immutable functions, and a
// large join search takes its time. A top-level statement's planning holds
// the slot like its execution; planning nested in work (SPI in a function, a
// utility statement's query) runs under the slot that work holds.
const char planning_token = 0;

//
// The slot taken for planning passes to the statement's execution, which
// follows (ExecutorRun, or the utility statement that runs next): the
// statement is admitted once, and no other statement of the role can take
// the slot in between. A plan never executed keeps it to the end of the
// transaction (an extended-protocol Bind with no Execute).
PlannedStmt* PlannerHook(Query* parse, const char* query, int options, ParamListInfo params) {
  // Planning nested in work (a function folded at planning runs its own
  // queries) takes nothing: `nesting` is raised while this one runs.
  if (nesting == 0) HoldFor(&planning_token);
  PlannedStmt* planned = nullptr;
  Nested([&] {
    planned = prev_planner != nullptr ? prev_planner(parse, query, options, params)
                                      : standard_planner(parse, query, options, params);
  });
  return planned;
}

// The work that follows planning holds the slot now.
void HandOverFromPlanning() { LetGo(&planning_token); }

void ExecutorRunHook(CG_EXECUTOR_RUN_PARAMS) {
  // A WITH HOLD cursor's query runs at the top level only when COMMIT
  // persists it (a FETCH holds the slot itself): COMMIT never waits in the
  // queue for that.
  const bool persisting_at_commit = ActivePortal != nullptr && (ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0;
  if (!persisting_at_commit) {
    HoldFor(query);
    if (nesting == 0) HandOverFromPlanning();
  }
  Nested([&] {
    if (prev_executor_run)
      prev_executor_run(CG_EXECUTOR_RUN_ARGS);
    else
      standard_ExecutorRun(CG_EXECUTOR_RUN_ARGS);
  });
  // A run of a limited number of rows may leave the portal suspended, and a
  // query's portal may stay open, idle, after its last row: neither holds a
  // slot (a next fetch takes one again). A data-modifying statement, or a
  // SELECT with a data-modifying WITH (whose writes run in ExecutorFinish),
  // keeps it to its ExecutorFinish, which follows at once.
  const bool writes_at_finish = query->operation != CMD_SELECT || query->plannedstmt->hasModifyingCTE;
  if (count != 0 || !writes_at_finish) LetGo(query);
}

// Never takes a slot: a portal closed at COMMIT (or by a CLOSE) finishes here,
// and COMMIT must never wait in the queue.
void ExecutorFinishHook(QueryDesc* query) {
  Nested([&] {
    if (prev_executor_finish)
      prev_executor_finish(query);
    else
      standard_ExecutorFinish(query);
  });
  LetGo(query);
}

void ExecutorEndHook(QueryDesc* query) {
  if (prev_executor_end)
    prev_executor_end(query);
  else
    standard_ExecutorEnd(query);
  LetGo(query);
}

// Transaction and session control take no slot: they do no work, and
// COMMIT or ROLLBACK must never wait behind the role's other statements.
bool IsExempt(const Node* stmt) {
  switch (nodeTag(stmt)) {
    case T_TransactionStmt:
    case T_VariableSetStmt:
    case T_VariableShowStmt:
    case T_DiscardStmt:
    case T_PrepareStmt:
    case T_DeallocateStmt:
    case T_ListenStmt:
    case T_UnlistenStmt:
    case T_ClosePortalStmt:
      return true;
    default:
      return false;
  }
}

void ProcessUtilityHook(PlannedStmt* pstmt, const char* query, bool read_only_tree, ProcessUtilityContext context,
                        ParamListInfo params, QueryEnvironment* env, DestReceiver* dest, QueryCompletion* qc) {
  // The utility statement holds the slot itself, alongside any execution
  // that holds it already: closing one of those inside (CLOSE in a DO block)
  // cannot leave its work without a slot.
  const bool exempt = IsExempt(pstmt->utilityStmt);
  if (!exempt) {
    HoldFor(pstmt);
    if (nesting == 0) HandOverFromPlanning();
  }
  Nested([&] {
    if (prev_process_utility != nullptr)
      prev_process_utility(pstmt, query, read_only_tree, context, params, env, dest, qc);
    else
      standard_ProcessUtility(pstmt, query, read_only_tree, context, params, env, dest, qc);
  });
  // A CALL whose procedure committed runs on in a new transaction: the slot
  // is still this statement's, released here.
  if (!exempt) LetGo(pstmt);
}

// Errors, cancels and FATALs: the work that held or awaited a slot is gone,
// and LetGo() will not run for it.
void XactCallback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
      // Between statements nothing holds a slot; an error ends the statement,
      // and unwinding it brought `nesting` back to 0 before the abort. Inside
      // a statement (a procedure that commits or rolls back), the statement
      // goes on: its slot now belongs to the next transaction's top.
      if (nesting == 0) {
        ForgetHolders();
        ReleaseSlot();
      } else {
        slot_subxact = TopSubTransactionId;
      }
      break;
    default:
      break;
  }
}

// A subtransaction that aborts takes with it the slot taken inside it (the
// work that took it is gone).
void SubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB && slot_subxact != InvalidSubTransactionId && slot_subxact >= subid) {
    ForgetHolders();
    ReleaseSlot();
    slot_subxact = InvalidSubTransactionId;
  }
}

}  // namespace

void InitAdmission() {
  InitAdmissionQueue();
  InitRoleLimits();
  prev_planner = planner_hook;
  planner_hook = PlannerHook;
  prev_executor_run = ExecutorRun_hook;
  ExecutorRun_hook = ExecutorRunHook;
  prev_executor_end = ExecutorEnd_hook;
  ExecutorEnd_hook = ExecutorEndHook;
  prev_executor_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = ExecutorFinishHook;
  prev_process_utility = ProcessUtility_hook;
  ProcessUtility_hook = ProcessUtilityHook;
  RegisterXactCallback(XactCallback, nullptr);
  RegisterSubXactCallback(SubXactCallback, nullptr);
}

}  // namespace config_guard
