// Admission control policy: whether a statement of a limited role runs now,
// waits in the role's FIFO queue, or is refused. Pure: the caller supplies
// the counts it read under its lock.
#pragma once
#ifdef PG_VERSION_NUM
#error "src/core is Postgres-free: include core headers before postgres.h"
#endif

#include <cstdint>

namespace config_guard::core {

enum class Admission { kRun, kQueue, kRefuse };

// A newcomer: runs only if a slot is free and nobody is queued ahead of it
// (FIFO); otherwise it queues, unless the queue is full.
Admission AdmitNewcomer(int active, int max_active, int queued, int max_queued);

// A queued statement: runs once a slot is free and it is the oldest waiter.
bool MayLeaveQueue(int active, int max_active, bool is_oldest_waiter);

}  // namespace config_guard::core
