// Background builds: config_guard.warm(config) queues every tenant of a
// config (after a deploy, a restore, a failover), refresh-ahead queues the
// stored documents a committed write made stale if they were built within
// config_guard.refresh_ahead_window, and the background worker works the
// queue off at config_guard.background_build_rate, oldest first, through
// get(): with its coalescing, its cap on builders per config and its backoff.
#pragma once

#include "pg.hpp"

namespace config_guard {

// In the background worker, in a transaction: queues the stale stored
// documents read within config_guard.refresh_ahead_window (at most
// `limit`); returns how many.
int64 EnqueueStale(int64 limit);

// In the background worker, in a transaction: deletes at most `limit`
// stored documents built longer ago than config_guard.evict_unread_after
// that nobody read since (a later get() builds them again); returns how many.
int64 EvictUnread(int64 limit);

// Whether this backend runs a background build's get() (not a read).
bool BackgroundBuildRunning();

// In the background worker, outside a transaction: builds queued tenants,
// each in a transaction of its own, until the queue is empty, `max_builds`
// are done or `budget_ms` has passed; returns how many it built. A build that
// fails is logged and dropped from the queue (the tenant backs off as for
// any reader).
int64 RunQueuedBuilds(int64 max_builds, long budget_ms);

}  // namespace config_guard
