// Per-role admission control (see admission.hpp).
//
// Locking contract. One LWLock ("config_guard admission") protects the role
// table (entries are created, never removed: a dropped limit is marked
// unlimited, so condition variables and pointers stay valid) and the
// per-backend array. limits_version is an atomic bumped after every change
// to the limits, so backends whose role is unlimited check it without a lock.
// Waiters sleep on their role's condition variable; every release, limit
// change or departure from the queue broadcasts on it.
#include "core/admission.hpp"  // first: core headers precede postgres.h
#include "core/interval.hpp"
#include "admission.hpp"

#include <climits>

#include "gucs.hpp"

#include <type_traits>
#include "module.hpp"
#include "gateway.hpp"

extern "C" {
#include "access/parallel.h"
#include "access/twophase.h"
#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "optimizer/planner.h"
#include "port/atomics.h"
#include "storage/condition_variable.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
#include "utils/wait_event.h"
}

namespace config_guard {
namespace {

constexpr int kMaxLimitedRoles = 1000;
constexpr const char* kLimitsFile = "config_guard_role_limits";
constexpr const char* kTranche = "config_guard admission";

struct RoleLimit {
  Oid role;  // hash key
  bool limited;
  int max_active;
  int max_queued;
  int queue_timeout_ms;
  int active;
  int queued;
  uint64 next_ticket;
  uint64 admitted;
  uint64 ever_queued;
  uint64 wait_timeouts;
  uint64 queue_full;
  uint64 ran_after_wait;
  double total_wait_ms;
  double max_wait_ms;
  ConditionVariable cv;
};

struct BackendSlot {
  Oid role;
  uint64 ticket;
  bool waiting;
  bool holding;
};

struct AdmissionShared {
  pg_atomic_uint64 limits_version;
  BackendSlot backends[FLEXIBLE_ARRAY_MEMBER];
};

static_assert(std::is_standard_layout_v<RoleLimit>, "shared memory holds plain structs");
static_assert(std::is_standard_layout_v<BackendSlot>, "shared memory holds plain structs");

LWLock* lock = nullptr;
AdmissionShared* shared = nullptr;
HTAB* roles = nullptr;

planner_hook_type prev_planner = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

// This backend: how deep it is in work that holds its slot (a statement's
// execution, a utility statement), the subtransaction the slot was taken in,
// whether its exit callback is registered, and which limit applies to it
// (cached until limits_version moves).
int nesting = 0;
SubTransactionId slot_subxact = InvalidSubTransactionId;
bool exit_callback_registered = false;
// The top-level executions that share the slot this backend holds: several
// portals may be open at once (the extended protocol), and the slot goes back
// when the last one is done or suspended, never while another still runs.
constexpr int kMaxHolders = 16;
const void* holders[kMaxHolders];
int nholders = 0;
RoleLimit* my_limit = nullptr;
uint64 my_limit_version = UINT64_MAX;

// Limit changes of the current transaction, applied at commit.
struct PendingLimit {
  Oid role;
  bool drop;
  int max_active;
  int max_queued;
  int queue_timeout_ms;
  SubTransactionId subxact;  // a rollback to before it discards it
};
constexpr int kMaxPending = 64;
PendingLimit pending[kMaxPending];
int npending = 0;

int SlotCount() { return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts; }

BackendSlot* MySlot() { return &shared->backends[MyProc->pgprocno]; }

// -- persistence -----------------------------------------------------------------

// Rewrites the limits file from shared memory. Runs after commit: failures
// are reported, never raised.
// Two sessions committing changes at once each write a whole file, under the
// lock exclusively, to a temporary file of their own, renamed into place
// before the lock is released: the file is always one complete snapshot.
void SaveLimitsFile() {
  char tmp[MAXPGPATH];
  snprintf(tmp, sizeof tmp, "%s.%d.tmp", kLimitsFile, MyProcPid);
  LWLockAcquire(lock, LW_EXCLUSIVE);
  FILE* f = AllocateFile(tmp, "w");
  bool ok = f != nullptr;
  if (ok) {
    HASH_SEQ_STATUS it;
    hash_seq_init(&it, roles);
    while (auto* e = static_cast<RoleLimit*>(hash_seq_search(&it))) {
      if (e->limited) fprintf(f, "%u %d %d %d\n", e->role, e->max_active, e->max_queued, e->queue_timeout_ms);
    }
    ok = FreeFile(f) == 0 && durable_rename(tmp, kLimitsFile, LOG) == 0;
  }
  LWLockRelease(lock);
  if (!ok)
    ereport(WARNING, (errcode_for_file_access(), errmsg("could not write \"%s\": %m", kLimitsFile),
                      errdetail("The changed role limits are in force but will not survive a restart.")));
}

RoleLimit* EnterRole(Oid role) {
  bool found = false;
  auto* e = static_cast<RoleLimit*>(hash_search(roles, &role, HASH_ENTER_NULL, &found));
  if (e != nullptr && !found) {
    e->limited = false;
    e->active = e->queued = 0;
    e->next_ticket = 0;
    e->admitted = e->ever_queued = e->wait_timeouts = e->queue_full = e->ran_after_wait = 0;
    e->total_wait_ms = e->max_wait_ms = 0;
    ConditionVariableInit(&e->cv);
  }
  return e;
}

// Reads the limits file into fresh shared memory (postmaster, at start and
// after a crash). A malformed line is logged and skipped.
void LoadLimitsFile() {
  FILE* f = AllocateFile(kLimitsFile, "r");
  if (f == nullptr) return;
  unsigned role = 0;
  int max_active = 0, max_queued = 0, timeout_ms = 0;
  char line[256];
  int lineno = 0;
  while (fgets(line, sizeof line, f) != nullptr) {
    ++lineno;
    char extra = 0;
    if (sscanf(line, "%u %d %d %d %c", &role, &max_active, &max_queued, &timeout_ms, &extra) != 4 || max_active < 1 ||
        max_queued < 0 || timeout_ms < 1) {
      ereport(LOG, (errmsg("config_guard: line %d of \"%s\" is damaged and was skipped: %s", lineno, kLimitsFile, line),
                    errhint("Set the limit again with config_guard.set_role_limit().")));
      continue;
    }
    RoleLimit* e = EnterRole(role);
    if (e == nullptr) break;
    e->limited = true;
    e->max_active = max_active;
    e->max_queued = max_queued;
    e->queue_timeout_ms = timeout_ms;
  }
  FreeFile(f);
}

// -- slots ---------------------------------------------------------------------------

RoleLimit* LimitForThisSession() {
  const uint64 version = pg_atomic_read_u64(&shared->limits_version);
  if (version != my_limit_version) {
    const Oid role = GetAuthenticatedUserId();
    LWLockAcquire(lock, LW_SHARED);
    my_limit = static_cast<RoleLimit*>(hash_search(roles, &role, HASH_FIND, nullptr));
    LWLockRelease(lock);
    my_limit_version = version;
  }
  return my_limit != nullptr && my_limit->limited ? my_limit : nullptr;
}

bool IsOldestWaiter(const RoleLimit* e, const BackendSlot* me) {
  for (int i = 0, n = SlotCount(); i < n; ++i) {
    const BackendSlot& other = shared->backends[i];
    if (other.waiting && other.role == e->role && other.ticket < me->ticket) return false;
  }
  return true;
}

// Leaves the queue or gives the slot back; broadcasts so the next may go.
void ReleaseSlot() {
  BackendSlot* me = MySlot();
  if (!me->waiting && !me->holding) return;
  LWLockAcquire(lock, LW_EXCLUSIVE);
  auto* e = static_cast<RoleLimit*>(hash_search(roles, &me->role, HASH_FIND, nullptr));
  if (e != nullptr) {
    if (me->waiting) e->queued--;
    if (me->holding) e->active--;
  }
  me->waiting = me->holding = false;
  LWLockRelease(lock);
  if (e != nullptr) ConditionVariableBroadcast(&e->cv);
}

struct Counts {
  int active, max_active, queued, max_queued, timeout_ms;
};

Counts CopyCounts(const RoleLimit* e) {
  return {e->active, e->max_active, e->queued, e->max_queued, e->queue_timeout_ms};
}

[[noreturn]] void RefuseFull(const RoleLimit* e, Counts c) {
  ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
                  errmsg("too many statements of role \"%s\" are waiting", GetUserNameFromId(e->role, false)),
                  errdetail("%d statements run (limit %d) and %d wait (queue limit %d).", c.active, c.max_active,
                            c.queued, c.max_queued),
                  errhint("Retry later with backoff, or raise the limit with config_guard.set_role_limit().")));
}

[[noreturn]] void RefuseTimeout(const RoleLimit* e, Counts c, double waited_ms) {
  ereport(ERROR,
          (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
           errmsg("statement of role \"%s\" waited %.0f ms for a slot", GetUserNameFromId(e->role, false), waited_ms),
           errdetail("%d statements run (limit %d) and %d wait; the queue timeout is %d ms.", c.active, c.max_active,
                     c.queued, c.timeout_ms),
           errhint("Retry later with backoff, or raise the limit with config_guard.set_role_limit().")));
}

void AdmissionShmemExit(int, Datum);

void AcquireSlot(RoleLimit* e) {
  // Registered here, in the backend: callbacks registered in the postmaster
  // are discarded by every child it starts.
  if (!exit_callback_registered) {
    before_shmem_exit(AdmissionShmemExit, 0);
    exit_callback_registered = true;
  }
  BackendSlot* me = MySlot();
  LWLockAcquire(lock, LW_EXCLUSIVE);
  if (!e->limited) {  // dropped since this session last looked
    LWLockRelease(lock);
    return;
  }
  const core::Admission decision = core::AdmitNewcomer(e->active, e->max_active, e->queued, e->max_queued);
  if (decision == core::Admission::kRun) {
    e->active++;
    e->admitted++;
    me->role = e->role;
    me->holding = true;
    LWLockRelease(lock);
    slot_subxact = GetCurrentSubTransactionId();
    return;
  }
  if (decision == core::Admission::kRefuse) {
    e->queue_full++;
    const Counts c = CopyCounts(e);
    LWLockRelease(lock);
    RefuseFull(e, c);
  }
  me->role = e->role;
  me->ticket = e->next_ticket++;
  me->waiting = true;
  e->queued++;
  e->ever_queued++;
  LWLockRelease(lock);
  slot_subxact = GetCurrentSubTransactionId();

  const TimestampTz start = GetCurrentTimestamp();
  ConditionVariablePrepareToSleep(&e->cv);
  for (;;) {
    LWLockAcquire(lock, LW_EXCLUSIVE);
    const double waited_ms = static_cast<double>(GetCurrentTimestamp() - start) / 1000.0;
    if (!e->limited || core::MayLeaveQueue(e->active, e->max_active, IsOldestWaiter(e, me))) {
      e->queued--;
      e->active++;
      e->admitted++;
      e->ran_after_wait++;
      e->total_wait_ms += waited_ms;
      if (waited_ms > e->max_wait_ms) e->max_wait_ms = waited_ms;
      me->waiting = false;
      me->holding = true;
      LWLockRelease(lock);
      break;
    }
    const long remaining = e->queue_timeout_ms - static_cast<long>(waited_ms);
    if (remaining <= 0) {
      e->queued--;
      e->wait_timeouts++;
      me->waiting = false;
      const Counts c = CopyCounts(e);
      LWLockRelease(lock);
      ConditionVariableCancelSleep();
      ConditionVariableBroadcast(&e->cv);  // the next waiter may now be the oldest
      RefuseTimeout(e, c, waited_ms);
    }
    LWLockRelease(lock);
    ConditionVariableTimedSleep(&e->cv, remaining, PG_WAIT_EXTENSION);
  }
  ConditionVariableCancelSleep();
  ConditionVariableBroadcast(&e->cv);
}

// -- hooks ------------------------------------------------------------------------------
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
  if (nesting > 0 || shared == nullptr || MyProc == nullptr || IsParallelWorker()) return false;
  RoleLimit* e = LimitForThisSession();
  if (e == nullptr) return false;
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

void ExecutorRunHook(QueryDesc* query, ScanDirection direction, uint64 count, bool execute_once) {
  // A WITH HOLD cursor's query runs at the top level only when COMMIT
  // persists it (a FETCH holds the slot itself): COMMIT never waits in the
  // queue for that.
  const bool persisting_at_commit = ActivePortal != nullptr && (ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0;
  if (!persisting_at_commit) HoldFor(query);
  Nested([&] {
    if (prev_executor_run)
      prev_executor_run(query, direction, count, execute_once);
    else
      standard_ExecutorRun(query, direction, count, execute_once);
  });
  // A run of a limited number of rows may leave the portal suspended, and a
  // query's portal may stay open, idle, after its last row: neither holds a
  // slot (a next fetch takes one again). A data-modifying statement, or a
  // SELECT with a data-modifying WITH (whose writes run in ExecutorFinish),
  // keeps it to its ExecutorFinish, which follows at once.
  const bool writes_at_finish = query->operation != CMD_SELECT || query->plannedstmt->hasModifyingCTE;
  if (count != 0 || !writes_at_finish) LetGo(query);
}

// Planning is work too: constant folding runs immutable functions, and a
// large join search takes its time. A top-level statement's planning holds
// the slot like its execution; planning nested in work (SPI in a function, a
// utility statement's query) runs under the slot that work holds.
const char planning_token = 0;

PlannedStmt* PlannerHook(Query* parse, const char* query, int options, ParamListInfo params) {
  // Only the outermost planning holds and lets go: a planning nested in it
  // (a function folded at planning runs its own queries) must not release it.
  const bool outermost = nesting == 0 && HolderIndex(&planning_token) < 0;
  if (outermost) HoldFor(&planning_token);
  PlannedStmt* planned = nullptr;
  Nested([&] {
    planned = prev_planner != nullptr ? prev_planner(parse, query, options, params)
                                      : standard_planner(parse, query, options, params);
  });
  if (outermost) LetGo(&planning_token);
  return planned;
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
  if (!exempt) HoldFor(pstmt);
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
// and LeaveWork() will not run for it.
void AdmissionXactCallback(XactEvent event, void*) {
  switch (event) {
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
      // An error ends the statement, and unwinding it brought `nesting` back
      // to 0 before the abort. Inside a statement (a procedure's ROLLBACK),
      // the statement goes on: its slot now belongs to the next transaction.
      if (nesting == 0) {
        ForgetHolders();
        ReleaseSlot();
      } else {
        slot_subxact = TopSubTransactionId;
      }
      npending = 0;
      break;
    case XACT_EVENT_PRE_PREPARE:
      if (npending > 0)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("cannot PREPARE a transaction that has changed role limits"),
                        errdetail("Role limits apply at commit; a prepared transaction commits elsewhere.")));
      break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT: {
      // Between statements nothing holds a slot. Inside one (a procedure
      // that commits), the slot now belongs to the next transaction's top.
      if (nesting == 0) {
        ForgetHolders();
        ReleaseSlot();
      } else {
        slot_subxact = TopSubTransactionId;
      }
      if (npending == 0) break;
      LWLockAcquire(lock, LW_EXCLUSIVE);
      bool full = false;
      for (int i = 0; i < npending; ++i) {
        RoleLimit* e = EnterRole(pending[i].role);
        if (e == nullptr) {
          full = true;
          continue;
        }
        e->limited = !pending[i].drop;
        e->max_active = pending[i].max_active;
        e->max_queued = pending[i].max_queued;
        e->queue_timeout_ms = pending[i].queue_timeout_ms;
      }
      LWLockRelease(lock);
      pg_atomic_fetch_add_u64(&shared->limits_version, 1);
      for (int i = 0; i < npending; ++i) {
        auto* e = static_cast<RoleLimit*>(hash_search(roles, &pending[i].role, HASH_FIND, nullptr));
        if (e != nullptr) ConditionVariableBroadcast(&e->cv);
      }
      npending = 0;
      if (full) ereport(WARNING, (errmsg("config_guard: too many limited roles, some limits were not applied")));
      SaveLimitsFile();
      break;
    }
    default:
      break;
  }
}

// A subtransaction that aborts takes with it the slot taken inside it (the
// work that took it is gone) and the limit changes staged inside it; one that
// commits hands its changes to its parent.
void AdmissionSubXactCallback(SubXactEvent event, SubTransactionId subid, SubTransactionId parent, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) {
    if (slot_subxact != InvalidSubTransactionId && slot_subxact >= subid) {
      ForgetHolders();
      ReleaseSlot();
      slot_subxact = InvalidSubTransactionId;
    }
    int kept = 0;
    for (int i = 0; i < npending; ++i) {
      if (pending[i].subxact < subid) pending[kept++] = pending[i];
    }
    npending = kept;
  } else if (event == SUBXACT_EVENT_COMMIT_SUB) {
    for (int i = 0; i < npending; ++i) {
      if (pending[i].subxact == subid) pending[i].subxact = parent;
    }
  }
}

void AdmissionShmemExit(int, Datum) {
  if (shared != nullptr && MyProc != nullptr) ReleaseSlot();
}

Size AdmissionShmemSize() {
  return add_size(add_size(offsetof(AdmissionShared, backends), mul_size(SlotCount(), sizeof(BackendSlot))),
                  hash_estimate_size(kMaxLimitedRoles, sizeof(RoleLimit)));
}

int TimeoutMs(const Interval* span) {
  int64 us = 0;
  if (!core::IntervalMicroseconds(span->month, span->day, span->time, &us) || us < 1000 ||
      us > static_cast<int64>(24) * 3600 * 1000000)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("queue_timeout must be between 1 millisecond and 1 day")));
  return static_cast<int>(us / 1000);
}

void Stage(PendingLimit change) {
  change.subxact = GetCurrentSubTransactionId();
  // Appended, never merged: a rollback to a savepoint must find the change
  // made before it. At commit the last change of a role wins.

  if (npending == kMaxPending)
    ereport(ERROR, (errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED), errmsg("too many role limit changes in one transaction")));
  pending[npending++] = change;
}

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void AdmissionShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(AdmissionShmemSize());
  RequestNamedLWLockTranche(kTranche, 1);
}

void AdmissionShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  shared = static_cast<AdmissionShared*>(ShmemInitStruct(
      "config_guard admission",
      add_size(offsetof(AdmissionShared, backends), mul_size(SlotCount(), sizeof(BackendSlot))), &found));
  HASHCTL info = {};
  info.keysize = sizeof(Oid);
  info.entrysize = sizeof(RoleLimit);
  roles = ShmemInitHash("config_guard role limits", kMaxLimitedRoles, kMaxLimitedRoles, &info,
                        HASH_ELEM | HASH_BLOBS | HASH_FIXED_SIZE);
  if (!found) {
    pg_atomic_init_u64(&shared->limits_version, 0);
    for (int i = 0, n = SlotCount(); i < n; ++i) shared->backends[i] = {InvalidOid, 0, false, false};
    LoadLimitsFile();
  }
  LWLockRelease(AddinShmemInitLock);
}

}  // namespace

void InitAdmission() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = AdmissionShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = AdmissionShmemStartup;
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
  RegisterXactCallback(AdmissionXactCallback, nullptr);
  RegisterSubXactCallback(AdmissionSubXactCallback, nullptr);
}

// -- SQL ------------------------------------------------------------------------------------

CG_FUNCTION(config_guard_set_role_limit) {
  RequirePreloaded();
  for (int i = 0; i < 4; ++i) {
    if (PG_ARGISNULL(i))
      ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("arguments of set_role_limit must not be null")));
  }
  PendingLimit change = {
      PG_GETARG_OID(0),       false, PG_GETARG_INT32(1), PG_GETARG_INT32(2), TimeoutMs(PG_GETARG_INTERVAL_P(3)),
      InvalidSubTransactionId};
  if (change.max_active < 1)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_active must be at least 1")));
  if (change.max_queued < 0)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("max_queued must not be negative")));

  SPI_connect();
  Datum values[4] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), PG_GETARG_DATUM(3)};
  RunAsOwner(Stmt::kSetRoleLimit, values);
  SPI_finish();
  Stage(change);
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_drop_role_limit) {
  RequirePreloaded();
  if (PG_ARGISNULL(0)) ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("role must not be null")));
  const Oid role = PG_GETARG_OID(0);
  LWLockAcquire(lock, LW_SHARED);
  auto* e = static_cast<RoleLimit*>(hash_search(roles, &role, HASH_FIND, nullptr));
  const bool limited = e != nullptr && e->limited;
  LWLockRelease(lock);

  SPI_connect();
  Datum values[1] = {PG_GETARG_DATUM(0)};
  const uint64 deleted = RunAsOwner(Stmt::kDropRoleLimit, values);
  SPI_finish();
  if (!limited && deleted == 0)
    ereport(ERROR,
            (errcode(ERRCODE_UNDEFINED_OBJECT), errmsg("role \"%s\" has no limit", GetUserNameFromId(role, false))));
  Stage({role, true, 0, 0, 0, InvalidSubTransactionId});
  PG_RETURN_VOID();
}

CG_FUNCTION(config_guard_role_counters) {
  RequirePreloaded();
  InitMaterializedSRF(fcinfo, 0);
  auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  // Copy under the lock, format after.
  RoleLimit* copies = static_cast<RoleLimit*>(palloc(sizeof(RoleLimit) * kMaxLimitedRoles));
  int n = 0;
  LWLockAcquire(lock, LW_SHARED);
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, roles);
  while (auto* e = static_cast<RoleLimit*>(hash_seq_search(&it))) {
    if (e->limited && n < kMaxLimitedRoles) copies[n++] = *e;
  }
  LWLockRelease(lock);
  for (int i = 0; i < n; ++i) {
    const RoleLimit& e = copies[i];
    Datum values[12] = {
        ObjectIdGetDatum(e.role),
        Int32GetDatum(e.max_active),
        Int32GetDatum(e.max_queued),
        Int32GetDatum(e.queue_timeout_ms),
        Int32GetDatum(e.active),
        Int32GetDatum(e.queued),
        Int64GetDatum(static_cast<int64>(e.admitted)),
        Int64GetDatum(static_cast<int64>(e.ever_queued)),
        Int64GetDatum(static_cast<int64>(e.wait_timeouts)),
        Int64GetDatum(static_cast<int64>(e.queue_full)),
        Float8GetDatum(e.ran_after_wait > 0 ? e.total_wait_ms / static_cast<double>(e.ran_after_wait) : 0),
        Float8GetDatum(e.max_wait_ms)};
    bool nulls[12] = {};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  }
  return static_cast<Datum>(0);
}

}  // namespace config_guard
