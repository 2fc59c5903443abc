// The admission queue: the shared table of limited roles, the per-backend
// slot states, and the FIFO queue a statement waits in for a slot (rules in
// core/admission.hpp). Which work takes a slot, and when it goes back, is
// admission.cpp's; staging limit changes with transactions is
// role_limits.cpp's.
#pragma once

#include "pg.hpp"

namespace config_guard {

struct RoleLimit;

// A change of one role's limit, applied at commit.
struct LimitChange {
  Oid role;
  bool drop;
  int max_active;
  int max_queued;
  int queue_timeout_ms;
};

// Counters of one limited role, as role_stats shows them.
struct RoleCounters {
  Oid role;
  int max_active, max_queued, queue_timeout_ms, active, queued;
  uint64 admitted, ever_queued, wait_timeouts, queue_full;
  double avg_wait_ms, max_wait_ms;
};

// Its shared memory, requested and initialised by its own hooks; the limits
// file is read whenever it is initialised (at start and after a crash).
void InitAdmissionQueue();
bool AdmissionQueueReady();

// The limit of the role this session authenticated as, or nullptr.
RoleLimit* LimitForThisSession();
// Takes a slot of `limit` for this backend, waiting in the queue: ereports
// when the queue is full (53400) or the wait times out (55P03). The slot or
// the place in the queue is given back by ReleaseSlot(), also at exit.
void AcquireSlot(RoleLimit* limit);
void ReleaseSlot();

// Applies committed changes, wakes the waiters of the roles changed, and
// rewrites the limits file; false if some role found no room.
bool ApplyLimitChanges(const LimitChange* changes, int n);
bool RoleIsLimited(Oid role);
// Copies of every limited role's counters (palloc'd).
int SnapshotRoleCounters(RoleCounters** out);

}  // namespace config_guard
