// The admission queue (see admission_queue.hpp).
//
// Locking contract. One LWLock ("config_guard admission") protects the role
// table (entries are created, never removed: a dropped limit is marked
// unlimited, so pointers stay valid) and the per-backend array, whose slots
// other backends write too (a hand-over): they are read under the lock.
// limits_version is an atomic bumped after every change to the limits, so
// backends whose role is unlimited check it without a lock.
//
// A slot is handed over, not competed for: whoever frees one (a statement
// ending, a limit raised or dropped) gives it to the oldest waiter under the
// lock and sets that backend's latch. One release wakes one waiter, so a
// queue of hundreds costs no more CPU than a queue of one (a broadcast woke
// every waiter on every release, and a long queue kept the cores busy).
#include "core/admission.hpp"  // first: core headers precede postgres.h
#include "admission_queue.hpp"
#include "pg_compat.hpp"

#include <climits>
#include <type_traits>

extern "C" {
#include "access/twophase.h"
#include "port/atomics.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
}

namespace config_guard {

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
};

namespace {

constexpr int kMaxLimitedRoles = 1000;
constexpr const char* kLimitsFile = "config_guard_role_limits";
constexpr const char* kTranche = "config_guard admission";

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

// This backend: whether its exit callback is registered, and which limit
// applies to it (cached until limits_version moves).
bool exit_callback_registered = false;
// Whether this backend is queued or holds a slot (its own record: the shared
// slot may be written by a backend handing it a slot, so it is read under
// the lock only).
bool my_slot_taken = false;
RoleLimit* my_limit = nullptr;
uint64 my_limit_version = UINT64_MAX;

int SlotCount() { return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts; }

BackendSlot* MySlot() { return &shared->backends[compat::ProcNumberOf(MyProc)]; }

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

// The oldest waiter of the role, or -1. Caller holds the lock.
int OldestWaiter(const RoleLimit* e) {
  int oldest = -1;
  for (int i = 0, n = SlotCount(); i < n; ++i) {
    const BackendSlot& other = shared->backends[i];
    if (other.waiting && other.role == e->role && (oldest < 0 || other.ticket < shared->backends[oldest].ticket))
      oldest = i;
  }
  return oldest;
}

// Hands the free slots of the role (all of them once its limit is dropped)
// to its oldest waiters and sets their latches (as SyncRepWakeQueue does,
// under the lock). Caller holds the lock exclusively.
void HandOverFreeSlots(RoleLimit* e) {
  while (e->queued > 0 && (!e->limited || core::MayLeaveQueue(e->active, e->max_active, true))) {
    const int next = OldestWaiter(e);
    if (next < 0) break;
    BackendSlot& waiter = shared->backends[next];
    waiter.waiting = false;
    waiter.holding = true;
    e->queued--;
    e->active++;
    SetLatch(&GetPGProcByNumber(next)->procLatch);
  }
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

Size StateSize() { return add_size(offsetof(AdmissionShared, backends), mul_size(SlotCount(), sizeof(BackendSlot))); }

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

void ShmemRequest() {
  if (prev_shmem_request_hook) prev_shmem_request_hook();
  RequestAddinShmemSpace(add_size(StateSize(), hash_estimate_size(kMaxLimitedRoles, sizeof(RoleLimit))));
  RequestNamedLWLockTranche(kTranche, 1);
}

void ShmemStartup() {
  if (prev_shmem_startup_hook) prev_shmem_startup_hook();
  LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
  bool found = false;
  lock = &GetNamedLWLockTranche(kTranche)->lock;
  shared = static_cast<AdmissionShared*>(ShmemInitStruct("config_guard admission", StateSize(), &found));
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

void InitAdmissionQueue() {
  prev_shmem_request_hook = shmem_request_hook;
  shmem_request_hook = ShmemRequest;
  prev_shmem_startup_hook = shmem_startup_hook;
  shmem_startup_hook = ShmemStartup;
}

bool AdmissionQueueReady() { return shared != nullptr && MyProc != nullptr; }

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

// Leaves the queue, or gives the slot back to the oldest waiter.
void ReleaseSlot() {
  if (!my_slot_taken) return;
  my_slot_taken = false;
  BackendSlot* me = MySlot();
  LWLockAcquire(lock, LW_EXCLUSIVE);
  auto* e = static_cast<RoleLimit*>(hash_search(roles, &me->role, HASH_FIND, nullptr));
  if (e != nullptr) {
    if (me->waiting) e->queued--;
    if (me->holding) {
      e->active--;
      HandOverFreeSlots(e);
    }
  }
  me->waiting = me->holding = false;
  LWLockRelease(lock);
}

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
    my_slot_taken = true;
    LWLockRelease(lock);
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
  my_slot_taken = true;
  e->queued++;
  e->ever_queued++;
  LWLockRelease(lock);

  // Sleeps until a releasing backend hands this one a slot (holding set,
  // then the latch), the queue timeout passes, or an interrupt: a cancel or
  // terminate raised here leaves through ReleaseSlot, which gives back a slot
  // handed over in the meantime.
  const TimestampTz start = GetCurrentTimestamp();
  static uint32 queued_event = 0;
  for (;;) {
    LWLockAcquire(lock, LW_EXCLUSIVE);
    const double waited_ms = static_cast<double>(GetCurrentTimestamp() - start) / 1000.0;
    if (me->holding) {
      e->admitted++;
      e->ran_after_wait++;
      e->total_wait_ms += waited_ms;
      if (waited_ms > e->max_wait_ms) e->max_wait_ms = waited_ms;
      LWLockRelease(lock);
      return;
    }
    const long remaining = e->queue_timeout_ms - static_cast<long>(waited_ms);
    if (remaining <= 0) {
      e->queued--;
      e->wait_timeouts++;
      me->waiting = false;
      my_slot_taken = false;
      const Counts c = CopyCounts(e);
      LWLockRelease(lock);
      RefuseTimeout(e, c, waited_ms);
    }
    LWLockRelease(lock);
    (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, remaining,
                    compat::WaitEvent(&queued_event, "ConfigGuardAdmissionQueue"));
    ResetLatch(MyLatch);
    CHECK_FOR_INTERRUPTS();
  }
}

namespace {

void AdmissionShmemExit(int, Datum) {
  if (AdmissionQueueReady()) ReleaseSlot();
}

}  // namespace

bool ApplyLimitChanges(const LimitChange* changes, int n) {
  LWLockAcquire(lock, LW_EXCLUSIVE);
  bool full = false;
  for (int i = 0; i < n; ++i) {
    RoleLimit* e = EnterRole(changes[i].role);
    if (e == nullptr) {
      full = true;
      continue;
    }
    e->limited = !changes[i].drop;
    e->max_active = changes[i].max_active;
    e->max_queued = changes[i].max_queued;
    e->queue_timeout_ms = changes[i].queue_timeout_ms;
  }
  // Once every change is in (the last of a role's wins): a raised or dropped
  // limit frees slots at once, and every waiter of a changed role wakes to
  // read its queue timeout again.
  for (int i = 0; i < n; ++i) {
    auto* e = static_cast<RoleLimit*>(hash_search(roles, &changes[i].role, HASH_FIND, nullptr));
    if (e == nullptr) continue;
    HandOverFreeSlots(e);
    for (int b = 0, slots = SlotCount(); b < slots; ++b) {
      if (shared->backends[b].waiting && shared->backends[b].role == e->role)
        SetLatch(&GetPGProcByNumber(b)->procLatch);
    }
  }
  LWLockRelease(lock);
  pg_atomic_fetch_add_u64(&shared->limits_version, 1);
  SaveLimitsFile();
  return !full;
}

bool RoleIsLimited(Oid role) {
  LWLockAcquire(lock, LW_SHARED);
  auto* e = static_cast<RoleLimit*>(hash_search(roles, &role, HASH_FIND, nullptr));
  const bool limited = e != nullptr && e->limited;
  LWLockRelease(lock);
  return limited;
}

int SnapshotRoleCounters(RoleCounters** out) {
  *out = static_cast<RoleCounters*>(palloc(sizeof(RoleCounters) * kMaxLimitedRoles));
  int n = 0;
  LWLockAcquire(lock, LW_SHARED);
  HASH_SEQ_STATUS it;
  hash_seq_init(&it, roles);
  while (auto* e = static_cast<RoleLimit*>(hash_seq_search(&it))) {
    if (!e->limited || n == kMaxLimitedRoles) continue;
    (*out)[n++] = {e->role,
                   e->max_active,
                   e->max_queued,
                   e->queue_timeout_ms,
                   e->active,
                   e->queued,
                   e->admitted,
                   e->ever_queued,
                   e->wait_timeouts,
                   e->queue_full,
                   e->ran_after_wait > 0 ? e->total_wait_ms / static_cast<double>(e->ran_after_wait) : 0,
                   e->max_wait_ms};
  }
  LWLockRelease(lock);
  return n;
}

}  // namespace config_guard
